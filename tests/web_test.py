#!/usr/bin/env python3
"""Runs the browser tests (tests/web/*.test.mjs: playwright-core driving
Debian's chromium) against the web app served by a real `mailkeep serve
--web-root`, whose user's mail was synced from a real Dovecot and whose
account sends through a real SMTP server (tests/fixture/smtpd.py).

usage: web_test.py [FILE.test.mjs...]   (only these files; default all)

The web app is built into a scratch directory with scripts/build-web.sh.
What the tests get is in MK_WEB_* variables (read by tests/web/lib.mjs's
env()). MK_SCREENSHOTS=1: the tests also write docs/screenshots/*.png.

When tests/oauth/node_modules has oidc-provider (npm ci there), the OAuth
parts start too: an authorization server (tests/oauth/server.mjs, through
oauth_test.py's Provider), a second Dovecot whose oauth2 passdb checks its
JWTs, the provider's oauth.test.* lines in the hub's mailkeep.conf, and a
third hub user with no account (MK_WEB_OAUTH_*: lib.mjs's oauthEnv()).
"""
import os, re, shutil, signal, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import BIN, SRC, Fixture, check, run  # noqa: E402

BIN = os.path.abspath(BIN)
WDIR = os.path.join(SRC, "tests", "web")
SMTPD = os.path.join(SRC, "tests", "fixture", "smtpd.py")
HUB_PASSWORD = "alice's hub password"
HUB_PASSWORD2 = "bob's hub password"
HUB_PASSWORD3 = "carol's hub password"
OAUTH_MODULES = os.path.join(SRC, "tests", "oauth", "node_modules")


def build_web(out, log):
    """scripts/build-web.sh OUT; its output goes to log (shown on failure)."""
    with open(log, "w") as f:
        r = subprocess.run(["bash", os.path.join(SRC, "scripts", "build-web.sh"), out],
                           cwd=SRC, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    check(r.returncode == 0, "scripts/build-web.sh failed:\n" + open(log).read()[-4000:])
    check(os.path.exists(os.path.join(out, "index.html")), "the web build made no index.html")


def npm_ci(d):
    mods, lock = os.path.join(d, "node_modules"), os.path.join(d, "package-lock.json")
    if (not os.path.isdir(os.path.join(mods, "playwright-core"))
            or os.path.getmtime(lock) > os.path.getmtime(mods)):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=d,
                           stdin=subprocess.DEVNULL)
        check(r.returncode == 0, "npm ci in %s failed" % d)
        os.utime(mods)


def cert_dir(tmp, *ca_files):
    """A hashed certificate directory holding only the fixtures' test CAs, for
    serve's SSL_CERT_DIR: accounts added through the web (no --ca-file there)
    then trust Dovecot and the SMTP server. (Every fixture makes its own CA
    under the same name: HASH.0, HASH.1, ...)"""
    d = os.path.join(tmp, "certs")
    os.makedirs(d)
    for i, ca_file in enumerate(ca_files):
        name = "mailkeep-test-ca-%d.pem" % i
        shutil.copy(ca_file, os.path.join(d, name))
        h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", ca_file],
                           capture_output=True, text=True, check=True).stdout.strip()
        n = 0
        while os.path.lexists(os.path.join(d, "%s.%d" % (h, n))):
            n += 1
        os.symlink(name, os.path.join(d, "%s.%d" % (h, n)))
    return d


def oauth_available():
    return (shutil.which("node") is not None
            and os.path.isdir(os.path.join(OAUTH_MODULES, "oidc-provider")))


class Smtpd:
    def __init__(self, fx, tmp):
        self.out = os.path.join(tmp, "smtp")
        self.log = os.path.join(tmp, "smtp.log")
        self.p = subprocess.Popen(["/usr/bin/python3", SMTPD, self.out,
                                   "--cert", os.path.join(fx.dir, "server.pem"),
                                   "--key", os.path.join(fx.dir, "server.key"), "--implicit-tls",
                                   "--user", "alice", "--password-file", os.path.join(fx.dir, "alice.pass")],
                                  stdout=subprocess.PIPE, stderr=open(self.log, "w"), text=True,
                                  stdin=subprocess.DEVNULL)
        line = self.p.stdout.readline()
        m = re.match(r"ready (\d+)", line)
        check(m is not None, "smtpd did not start: %s %s" % (line, open(self.log).read()))
        self.url = "submissions://127.0.0.1:%s" % m.group(1)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def main():
    files = sys.argv[1:]
    npm_ci(WDIR)
    tmp = tempfile.mkdtemp(prefix="mk-web-test-")
    os.chmod(tmp, 0o755)
    fx = smtpd = serve = provider = ofx = None
    try:
        t0 = time.time()
        web = os.path.join(tmp, "web")
        build_web(web, os.path.join(tmp, "build-web.log"))
        print("web_test: web app built in %.1f s" % (time.time() - t0), flush=True)
        fx = Fixture(tmp, "imap", "--users", "2", count=40)
        smtpd = Smtpd(fx, tmp)
        mk = lambda *a, **k: run([BIN, "--data", fx.data, *a], **k)
        users = [("alice", HUB_PASSWORD), ("bob", HUB_PASSWORD2)]
        oauth_env = {}
        if oauth_available():
            # Imported here: oauth_test.py is only needed with its modules.
            from oauth_test import CLIENT_ID, CLIENT_SECRET, Provider
            provider = Provider(tmp, "oauth-as")
            ofx = Fixture(tmp, "oauth-imap", "--oauth-keys", provider.keys,
                          "--oauth-mechanisms", "xoauth2 oauthbearer", count=12)
            with open(os.path.join(fx.data, "mailkeep.conf"), "a") as f:
                f.write(provider.conf())
            users.append(("carol", HUB_PASSWORD3))
            oauth_env = dict(MK_WEB_OAUTH_PROVIDER="test", MK_WEB_OAUTH_ISSUER=provider.issuer,
                             MK_WEB_OAUTH_CLIENT_ID=CLIENT_ID,
                             MK_WEB_OAUTH_CLIENT_SECRET=CLIENT_SECRET,
                             MK_WEB_OAUTH_TOKEN_LOG=provider.token_log,
                             MK_WEB_OAUTH_IMAP=ofx.url(), MK_WEB_OAUTH_LOGIN="alice",
                             MK_WEB_OAUTH_FIXTURE=ofx.dir,
                             MK_WEB_OAUTH_USER="carol", MK_WEB_OAUTH_PASSWORD=HUB_PASSWORD3)
        else:
            # In CI scripts/setup.sh installs them: their absence is a failure there.
            check(not os.environ.get("CI"),
                  "no tests/oauth/node_modules/oidc-provider (scripts/setup.sh installs it)")
            print("web_test: no tests/oauth/node_modules/oidc-provider: the OAuth tests skip",
                  flush=True)
        for user, pw in users:
            pwf = os.path.join(tmp, user + "-hub.pass")
            with open(pwf, "w") as f:
                f.write(pw)
            mk("user", "add", user, "--password-file", pwf)
        mk("account", "add", "--user", "alice", "--imap", fx.url(), "--smtp", smtpd.url,
           "--login", "alice", "--password-file", fx.env["PASS_FILE"],
           "--ca-file", fx.env["CA_FILE"], "--consent")
        mk("sync", "--user", "alice", "--quiet")
        tok = lambda user, dev: mk("device", "add", "--user", user, dev).stdout.strip().splitlines()[-1]
        tokens = {user: tok(user, "web-tests") for user, _ in users}
        if provider is not None:
            oauth_env["MK_WEB_OAUTH_TOKEN"] = tokens["carol"]
        inbox = len(fx.store_state()["INBOX"])
        certs = cert_dir(tmp, fx.env["CA_FILE"], *([ofx.env["CA_FILE"]] if ofx else []))
        if provider is not None:
            oauth_env["MK_WEB_OAUTH_CERT_DIR"] = certs
        access_log = os.path.join(tmp, "access.log")
        serve_err = open(os.path.join(tmp, "serve.log"), "w")
        serve = subprocess.Popen([BIN, "--data", fx.data, "serve", "--listen", "127.0.0.1:0",
                                  "--sync-interval", "0", "--web-root", web,
                                  "--access-log", access_log],
                                 stdout=subprocess.PIPE, stderr=serve_err, text=True,
                                 stdin=subprocess.DEVNULL,
                                 # The tests sync when they put mail in (lib.mjs
                                 # deliver()); provider push would sync in between.
                                 env=dict(os.environ, MK_NO_PROVIDER_PUSH="1",
                                          SSL_CERT_DIR=certs))
        # serve prints what it loaded (the web app...) before "serving URL
        # (JMAP session at URL)".
        lines = []
        m = None
        while m is None and len(lines) < 20:
            line = serve.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"session at (\S+?)\)", line)
        check(m is not None, "serve did not start: %s %s" % ("".join(lines), open(serve_err.name).read()[-3000:]))
        # Keep reading what serve prints, so that it never blocks on a full pipe.
        serve_out = open(os.path.join(tmp, "serve.out"), "w")
        serve_out.writelines(lines)
        threading.Thread(target=lambda: shutil.copyfileobj(serve.stdout, serve_out), daemon=True).start()
        session_url = m.group(1)
        base = re.match(r"(https?://[^/]+)/", session_url).group(1) + "/"
        env = dict(os.environ,
                   MK_WEB_URL=base, MK_WEB_SESSION_URL=session_url,
                   MK_WEB_USER="alice", MK_WEB_PASSWORD=HUB_PASSWORD, MK_WEB_TOKEN=tokens["alice"],
                   MK_WEB_USER2="bob", MK_WEB_PASSWORD2=HUB_PASSWORD2, MK_WEB_TOKEN2=tokens["bob"],
                   MK_WEB_IMAP_URL=fx.url(), MK_WEB_IMAP_PORT=fx.env["IMAPS_PORT"],
                   MK_WEB_IMAP_LOGIN="alice",
                   MK_WEB_IMAP_PASSWORD=open(fx.env["PASS_FILE"]).read(),
                   MK_WEB_IMAP_LOGIN2="bob",
                   MK_WEB_IMAP_PASSWORD2=open(os.path.join(fx.dir, "bob.pass")).read(),
                   MK_WEB_CA_FILE=fx.env["CA_FILE"], MK_WEB_SMTP_URL=smtpd.url,
                   MK_WEB_SMTP_DIR=smtpd.out, MK_WEB_FIXTURE=fx.dir, MK_WEB_BIN=BIN,
                   MK_WEB_DATA=fx.data, MK_WEB_ROOT=web, MK_WEB_INBOX_COUNT=str(inbox),
                   MK_WEB_TMP=tmp, **oauth_env)
        tests = sorted(f for f in os.listdir(WDIR) if f.endswith(".test.mjs"))
        if files:
            names = [os.path.basename(f) for f in files]
            missing = [n for n in names if n not in tests]
            check(not missing, "no such test file: %s" % missing)
            tests = [t for t in tests if t in names]
        # One file at a time: they share one serve, one mailbox and two cores.
        r = subprocess.run(["node", "--test", "--test-concurrency=1", "--test-reporter=spec",
                            *tests], env=env, cwd=WDIR, stdin=subprocess.DEVNULL)
        returncode = r.returncode
        log = open(access_log).read()
        oauth_secrets = provider.tokens() if provider is not None else []
        for secret in (*tokens.values(), HUB_PASSWORD, HUB_PASSWORD2, HUB_PASSWORD3,
                       *oauth_secrets):
            check(secret not in log, "a token or password is in the access log")
        for line in log.splitlines():
            if "/mailkeep/oauth/callback" in line:
                check("code=" not in line and "state=" not in line,
                      "the OAuth callback's code or state is in the access log")
        serve.send_signal(signal.SIGTERM)
        rc = serve.wait(timeout=30)
        serve = None
        if rc != 0:
            print("web_test: serve exited %d:\n%s" % (rc, open(serve_err.name).read()[-4000:]))
            returncode = returncode or 1
        if returncode != 0:
            print("web_test: serve's log:\n" + open(serve_err.name).read()[-3000:])
            serve_out.flush()
            print("web_test: serve's output:\n" + open(serve_out.name).read()[-2000:])
        sys.exit(returncode)
    finally:
        if serve is not None:
            serve.kill()
        if smtpd is not None:
            smtpd.stop()
        if fx is not None:
            fx.stop()
        if ofx is not None:
            ofx.stop()
        if provider is not None:
            provider.stop()
        if os.environ.get("MK_WEB_KEEP"):
            print("web_test: kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
