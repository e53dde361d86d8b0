#!/usr/bin/env python3
"""OAuth 2 accounts end to end with real parts on loopback: an authorization
server (oidc-provider from npm, tests/oauth/server.mjs) issuing JWT access
tokens and rotating refresh tokens, a real Dovecot whose oauth2 passdb
validates them (local JWT validation with the provider's key) for
OAUTHBEARER and XOAUTH2, and the real mailkeep binary.

usage: oauth_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
Exits 77 when node or the npm modules are missing.
"""
import base64, http.cookiejar, json, os, re, shutil, sqlite3, subprocess, sys, time
import urllib.error, urllib.parse, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import BIN, SRC, Fixture, check, run, run_scenarios  # noqa: E402

SERVER = os.path.join(SRC, "tests", "oauth", "server.mjs")
CLIENT_ID = "mailkeep-test"
CLIENT_SECRET = "test-client-secret-not-a-token"


class Provider:
    """oidc-provider on 127.0.0.1, its keys written for Dovecot."""

    def __init__(self, tmp, name, ttl=3600):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.keys = os.path.join(self.dir, "keys")
        self.token_log = os.path.join(self.dir, "tokens")
        # typ "JWT": Dovecot 2.3's local validation does not take RFC
        # 9068's "at+jwt".
        env = dict(os.environ, OAUTH_ACCOUNT="alice", OAUTH_ACCESS_TTL=str(ttl),
                   OAUTH_JWT_TYP="JWT",
                   OAUTH_KEY_DIR=self.keys, OAUTH_TOKEN_LOG=self.token_log)
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(["node", SERVER], stdout=subprocess.PIPE,
                                     stderr=self.log, stdin=subprocess.DEVNULL, env=env,
                                     text=True)
        line = self.proc.stdout.readline()
        check(line.startswith("{"), "authorization server did not start")
        self.issuer = json.loads(line)["issuer"]

    def conf(self, name="test", scopes="openid offline_access mail", token_path="/token"):
        return "".join("oauth.%s.%s = %s\n" % (name, k, v) for k, v in [
            ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET),
            ("token_url", self.issuer + token_path),
            ("authorization_url", self.issuer + "/auth"),
            ("device_url", self.issuer + "/device/auth"),
            ("revocation_url", self.issuer + "/token/revocation"),
            ("scopes", scopes)])

    def tokens(self):
        if not os.path.exists(self.token_log):
            return []
        return [t for t in open(self.token_log).read().split("\n") if t]

    def post(self, path, **form):
        data = urllib.parse.urlencode(dict(form, client_id=CLIENT_ID,
                                           client_secret=CLIENT_SECRET)).encode()
        try:
            with urllib.request.urlopen(self.issuer + path, data, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def browse(url):
    """The user's browser: follow the sign-in's redirects with cookies, to
    the redirect URI (mailkeep's loopback receiver)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(url, timeout=20) as r:
        return r.read().decode(errors="replace")


def code_flow_tokens(p, scopes="openid offline_access mail"):
    """What a user's device does on its own: the code flow with PKCE, up to
    the tokens (the redirect goes to a port nobody listens on; the code is
    taken from the Location header)."""
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    import hashlib
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "http://127.0.0.1:9/"
    url = p.issuer + "/auth?" + urllib.parse.urlencode(dict(
        response_type="code", client_id=CLIENT_ID, redirect_uri=redirect, scope=scopes,
        state="s", code_challenge=challenge, code_challenge_method="S256", prompt="consent"))

    class Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            if newurl.startswith(redirect):
                raise StopIteration(newurl)
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), Stop())
    try:
        opener.open(url, timeout=20)
        raise AssertionError("the sign-in did not come back")
    except StopIteration as e:
        code = urllib.parse.parse_qs(urllib.parse.urlparse(str(e)).query)["code"][0]
    status, tok = p.post("/token", grant_type="authorization_code", code=code,
                         redirect_uri=redirect, code_verifier=verifier)
    check(status == 200, "code exchange: %s" % tok)
    return tok


class Hub:
    def __init__(self, tmp, name, p, extra_conf="", mechanisms="xoauth2 oauthbearer"):
        self.fx = Fixture(tmp, name, "--oauth-keys", p.keys, "--oauth-mechanisms", mechanisms,
                          count=30)
        self.dir = self.fx.data
        self.p = p
        self.outputs = []
        with open(os.path.join(self.dir, "mailkeep.conf"), "a") as f:
            f.write(p.conf() + extra_conf)
        self.mk("user", "add", "u")

    def mk(self, *args, expect=0):
        r = run([BIN, "--data", self.dir, *args], expect=expect)
        self.outputs += [r.stdout, r.stderr]
        return r

    def add_loopback(self, provider="test", verb=("account", "add"), extra=(), expect=0):
        """account add --oauth with the loopback flow; this test is the
        browser."""
        argv = [BIN, "--data", self.dir, *verb, "--user", "u"]
        if verb[1] == "add":
            argv += ["--oauth", provider, "--login", "alice", "--imap", self.fx.url(),
                     "--ca-file", self.fx.env["CA_FILE"], "--consent"]
        argv += list(extra)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
        url = None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("http://127.0.0.1:") and "/auth?" in line:
                url = line.strip()
                break
        check(url is not None, "no sign-in address printed: %s" % "".join(lines))
        check("code_challenge_method=S256" in url, "no PKCE in " + url)
        browse(url)
        out, err = proc.communicate(timeout=60)
        self.outputs += ["".join(lines) + out, err]
        check(proc.returncode == expect,
              "exit %d (expected %d): %s %s" % (proc.returncode, expect, out, err))
        m = re.search(r"added OAuth account (\d+)", out)
        return (int(m.group(1)) if m else None), out + err

    def sync(self, expect=0):
        return self.mk("sync", "--user", "u", "--quiet", expect=expect)

    def audit(self):
        r = self.mk("audit", "--user", "u")
        return r.stdout.splitlines()

    def db(self):
        return sqlite3.connect(os.path.join(self.dir, "hub.db"))

    def messages(self):
        db = sqlite3.connect(os.path.join(self.dir, "users", "u", "store.db"))
        n = db.execute("SELECT count(*) FROM messages").fetchone()[0]
        db.close()
        return n

    def stop(self):
        self.fx.stop()


def scenario_sync_rotation_revocation(tmp):
    """Sign in (loopback), sync with the token, rotation on every refresh,
    a revoked grant: needs sign-in, a notice, no further provider calls;
    sign in again; removal revokes; the canary."""
    p = Provider(tmp, "as1")
    h = Hub(tmp, "rot", p)
    try:
        acct, out = h.add_loopback()
        check(acct is not None, out)
        check("IMAP login checked" in out, out)
        row = h.db().execute("SELECT auth, oauth_provider, secret_version FROM accounts").fetchone()
        check(row[0] == "oauth2" and row[1] == "test", row)
        kinds = [r[0] for r in h.db().execute("SELECT kind FROM secrets")]
        check(kinds == ["oauth-refresh-token"], kinds)
        v0 = row[2]

        h.sync()
        check(h.messages() > 0, "nothing synced")
        log = "\n".join(h.audit())
        check("oauth.refresh" in log and "OAUTHBEARER" in log, log[-2000:])
        check('"rotated":"yes"' in open(os.path.join(h.dir, "users", "u", "audit.log")).read(),
              "refresh did not rotate")
        v1 = h.db().execute("SELECT secret_version FROM accounts").fetchone()[0]
        check(v1 > v0, "rotation not resealed (%d -> %d)" % (v0, v1))
        # Another sync: the rotated token works (and rotates again).
        h.sync()
        v2 = h.db().execute("SELECT secret_version FROM accounts").fetchone()[0]
        check(v2 > v1, "second rotation not resealed")

        # The provider revokes the grant (the user withdrew consent).
        before = h.messages()
        refresh = [t for t in p.tokens() if not t.startswith("eyJ")][-1]
        status, _ = p.post("/token/revocation", token=refresh, token_type_hint="refresh_token")
        check(status == 200, "revocation")
        r = h.sync(expect=None)
        check(r.returncode != 0, "sync with a revoked grant succeeded")
        check("invalid_grant" in r.stderr and "sign in again" in r.stderr, r.stderr)
        since = h.db().execute("SELECT needs_signin FROM accounts").fetchone()[0]
        check(since > 0, "not marked as needing sign-in")
        check(h.messages() == before + 1, "no sign-in notice delivered")
        refreshes = sum("oauth.refresh" in l for l in h.audit())
        decrypts = sum("credential.decrypt" in l for l in h.audit())
        for _ in range(3):
            r = h.sync(expect=None)
            check(r.returncode != 0 and "paused" in r.stderr, r.stderr)
        check(sum("oauth.refresh" in l for l in h.audit()) == refreshes,
              "the provider was asked again while sign-in is needed")
        check(sum("credential.decrypt" in l for l in h.audit()) == decrypts,
              "the refresh token was opened again while sign-in is needed")
        listing = h.mk("account", "list", "--user", "u").stdout
        check("needs sign-in since" in listing and "account signin --user u" in listing,
              listing)

        # Sign in again: sync resumes.
        h.add_loopback(verb=("account", "signin"), extra=[str(acct)])
        check(h.db().execute("SELECT needs_signin FROM accounts").fetchone()[0] == 0,
              "needs_signin not cleared")
        h.sync()

        # Canary: no token the provider handed out is anywhere in the data
        # directory, the outputs, or the environment and command line of a
        # running mailkeep.
        serve = subprocess.Popen([BIN, "--data", h.dir, "serve", "--listen", "127.0.0.1:0",
                                  "--sync-interval", "1", "--access-log", "/dev/null"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL)
        time.sleep(4)  # it syncs (refreshing) meanwhile
        proc = []
        for f in ("cmdline", "environ"):
            try:
                proc.append(open("/proc/%d/%s" % (serve.pid, f), "rb").read())
            except OSError:
                pass
        serve.terminate()
        _, serr = serve.communicate(timeout=30)
        tokens = p.tokens()
        check(len(tokens) >= 6, "too few tokens issued: %d" % len(tokens))
        blobs = [open(os.path.join(dp, f), "rb").read()
                 for dp, _, fns in os.walk(h.dir) for f in fns]
        blobs += proc + [serr] + [o.encode() for o in h.outputs]
        for t in tokens:
            forms = [t.encode(), base64.b64encode(t.encode())]
            for blob in blobs:
                for f in forms:
                    check(f not in blob, "a token leaked (%d bytes)" % len(t))

        # Removal revokes the refresh token at the provider.
        r = h.mk("account", "remove", "--user", "u", str(acct), "--all-devices")
        check("revoked at test" in r.stdout, r.stdout)
        last = [t for t in p.tokens() if not t.startswith("eyJ")][-1]
        status, body = p.post("/token", grant_type="refresh_token", refresh_token=last)
        check(status == 400 and body.get("error") == "invalid_grant",
              "refresh token still valid after removal: %s" % body)
    finally:
        h.stop()
        p.stop()


def scenario_short_lived_tokens(tmp):
    """Access tokens that expire within seconds: every sync gets a fresh one
    (a token expiring during a long sync is refreshed for the next session;
    Dovecot checks exp itself)."""
    p = Provider(tmp, "as2", ttl=3)
    h = Hub(tmp, "short", p)
    try:
        acct, out = h.add_loopback()
        check(acct is not None, out)
        for _ in range(3):
            h.sync()
            time.sleep(4)  # the last token has expired
        raw = open(os.path.join(h.dir, "users", "u", "audit.log")).read().splitlines()
        n = sum('"oauth.refresh"' in l and '"result":"ok"' in l for l in raw)
        check(n >= 3, "expected a refresh per sync, got %d" % n)
    finally:
        h.stop()
        p.stop()


def scenario_errors(tmp):
    """A grant without the mail scope is refused by the server with its
    reason; a provider answering with an HTML page; a token file."""
    p = Provider(tmp, "as3")
    conf = (p.conf("noscope", scopes="openid offline_access") +
            p.conf("broken", token_path="/test/html"))
    h = Hub(tmp, "errs", p, extra_conf=conf)
    try:
        acct, out = h.add_loopback(provider="noscope", expect=1)
        check(acct is None, out)
        check("refused the access token" in out, out)
        print("  wrong scope says: " + [l for l in out.splitlines() if "refused" in l][0])
        check(h.db().execute("SELECT count(*) FROM accounts").fetchone()[0] == 0,
              "an account was stored")
        # A token file a device produced, through a provider answering with
        # an HTML error page: a clear, temporary error, nothing stored.
        tok = code_flow_tokens(p)
        tf = os.path.join(tmp, "errs-tokens.json")
        with open(tf, "w") as f:
            json.dump({"refresh_token": tok["refresh_token"]}, f)
        r = h.mk("account", "add", "--user", "u", "--oauth", "broken", "--login", "alice",
                 "--imap", h.fx.url(), "--ca-file", h.fx.env["CA_FILE"], "--consent",
                 "--flow", "token-file", tf, expect=1)
        check("HTML page" in r.stderr, r.stderr)
        check(tok["refresh_token"] not in r.stderr + r.stdout, "token in the output")
        # The same file with the working provider: added, and syncs.
        r = h.mk("account", "add", "--user", "u", "--oauth", "test", "--login", "alice",
                 "--imap", h.fx.url(), "--ca-file", h.fx.env["CA_FILE"], "--consent",
                 "--flow", "token-file", tf)
        check("added OAuth account" in r.stdout, r.stdout)
        h.sync()
        check(h.messages() > 0, "nothing synced")
        # mailkeep.conf changed to another token endpoint: nothing is sent.
        conf_path = os.path.join(h.dir, "mailkeep.conf")
        text = open(conf_path).read().replace("oauth.test.token_url = " + p.issuer + "/token",
                                              "oauth.test.token_url = " + p.issuer + "/evil")
        open(conf_path, "w").write(text)
        r = h.sync(expect=None)
        check(r.returncode != 0 and "not the one the account signed in with" in r.stderr,
              r.stderr)
    finally:
        h.stop()
        p.stop()


class Smtpd:
    """tests/fixture/smtpd.py (aiosmtpd) taking XOAUTH2/OAUTHBEARER tokens
    checked against the provider's key."""

    def __init__(self, fx, p, out):
        self.out = out
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(SRC, "tests", "fixture", "smtpd.py"), out,
             "--cert", os.path.join(fx.dir, "server.pem"), "--key",
             os.path.join(fx.dir, "server.key"), "--implicit-tls", "--user", "alice",
             "--oauth-keys", p.keys],
            stdout=subprocess.PIPE, stderr=open(out + ".log", "w"), stdin=subprocess.DEVNULL,
            text=True)
        m = re.match(r"ready (\d+)", self.proc.stdout.readline())
        check(m is not None, "smtpd did not start: " + open(out + ".log").read())
        self.url = "submissions://127.0.0.1:%s" % m.group(1)

    def received(self):
        recs = []
        for name in sorted(os.listdir(self.out)):
            if name.endswith(".json"):
                recs.append(json.load(open(os.path.join(self.out, name))))
        return recs

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


MSG = (b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: oauth send\r\n"
       b"Message-ID: <oauth-send-1@example.org>\r\n\r\nSent with a bearer token.\r\n")


def scenario_send(tmp):
    """Send through an SMTP server that takes only bearer tokens (libcurl
    picks OAUTHBEARER or XOAUTH2 from its AUTH list); a revoked grant holds
    the message in the outbox without asking the provider again."""
    p = Provider(tmp, "as4")
    h = Hub(tmp, "send", p)
    smtpd = Smtpd(h.fx, p, os.path.join(tmp, "send-smtp"))
    try:
        acct, out = h.add_loopback(extra=["--smtp", smtpd.url])
        check(acct is not None and "IMAP and SMTP login checked" in out, out)
        r = run([BIN, "--data", h.dir, "send", "--user", "u", "--account", str(acct)],
                stdin=MSG.decode())
        recs = smtpd.received()
        check(len(recs) == 1, "not received: %s %s" % (r.stdout, r.stderr))
        check(recs[0]["login"] == "alice" and recs[0]["mechanism"] in ("OAUTHBEARER", "XOAUTH2"),
              "session %s" % recs[0])
        # Revoke: the next message waits, and says why.
        refresh = [t for t in p.tokens() if not t.startswith("eyJ")][-1]
        p.post("/token/revocation", token=refresh, token_type_hint="refresh_token")
        r = run([BIN, "--data", h.dir, "send", "--user", "u", "--account", str(acct)],
                stdin=MSG.decode().replace("oauth-send-1", "oauth-send-2"), expect=None)
        check(len(smtpd.received()) == 1, "sent with a revoked grant")
        r2 = h.mk("outbox", "--user", "u", expect=None)
        check("sign-in" in r.stdout + r.stderr + r2.stdout, r.stdout + r.stderr + r2.stdout)
    finally:
        smtpd.stop()
        h.stop()
        p.stop()


def scenario_xoauth2(tmp):
    """A server offering only XOAUTH2 (as Gmail and Outlook do): added from a
    token file a device produced, synced with XOAUTH2, pushed with XOAUTH2."""
    p = Provider(tmp, "as5")
    h = Hub(tmp, "xo", p, mechanisms="xoauth2")
    try:
        tok = code_flow_tokens(p)
        tf = os.path.join(tmp, "xo-tokens.json")
        with open(tf, "w") as f:
            json.dump({"refresh_token": tok["refresh_token"], "access_token": tok["access_token"],
                       "expires_in": tok["expires_in"]}, f)
        r = h.mk("account", "add", "--user", "u", "--oauth", "test", "--login", "alice",
                 "--imap", h.fx.url(), "--ca-file", h.fx.env["CA_FILE"], "--consent",
                 "--flow", "token-file", tf)
        check("added OAuth account" in r.stdout, r.stdout)
        h.sync()
        check(h.messages() > 0, "nothing synced")
        check("XOAUTH2" in "\n".join(h.audit()), "not XOAUTH2")
        # Provider push logs in with XOAUTH2 too, and new mail comes by push.
        log = os.path.join(tmp, "xo-serve.log")
        serve = subprocess.Popen([BIN, "--data", h.dir, "serve", "--listen", "127.0.0.1:0",
                                  "--sync-interval", "3600", "--access-log", "/dev/null"],
                                 stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        try:
            def pushed_in():
                return any('"provider.login"' in l and '"mechanism":"push"' in l and
                           '"result":"ok"' in l
                           for l in open(os.path.join(h.dir, "users", "u", "audit.log")))
            deadline = time.time() + 20
            while time.time() < deadline and not pushed_in():
                time.sleep(0.3)
            check(pushed_in(), "push did not log in with XOAUTH2: " + open(log).read()[-2000:])
            time.sleep(1)
            before = h.messages()
            c = h.fx.conn()
            c.append("INBOX", None, None, b"Subject: xo push\r\n\r\nbody\r\n")
            c.logout()
            deadline = time.time() + 10
            while time.time() < deadline and h.messages() != before + 1:
                time.sleep(0.2)
            check(h.messages() == before + 1, "no new mail through push with XOAUTH2")
        finally:
            serve.terminate()
            check(serve.wait(timeout=30) == 0, "serve exit")
    finally:
        h.stop()
        p.stop()


def device_approve(url):
    """The user on another device: open the verification address, confirm
    the code (the page's form, hidden fields as given), sign in."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(url, timeout=20) as r:
        page = r.read().decode()
        base = r.geturl()
    # The code input page (the code filled in from the address), then the
    # confirmation page; each a form of the provider's own making.
    # Then a page that posts itself back (JavaScript would submit it).
    for _ in range(5):
        form = re.search(r'<form([^>]*)action="([^"]+)"[^>]*>(.*?)</form>', page, re.S)
        if form is None:
            return page
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                                 form.group(3)))
        code = re.search(r'value="([^"]*)"[^>]*name="user_code"', form.group(3))
        if "deviceInputForm" in form.group(1):
            check(code is not None, "the code was not filled in")
            fields["user_code"] = code.group(1)
        data = urllib.parse.urlencode(fields).encode()
        with opener.open(urllib.parse.urljoin(base, form.group(2)), data, timeout=20) as r:
            page = r.read().decode()
            base = r.geturl()
    raise AssertionError("the device sign-in did not finish")


def scenario_device_flow(tmp):
    """RFC 8628 through the CLI: the hub prints a code, the user approves it
    elsewhere, the hub's polling gets the tokens."""
    p = Provider(tmp, "as6")
    h = Hub(tmp, "dev", p)
    try:
        proc = subprocess.Popen([BIN, "--data", h.dir, "account", "add", "--user", "u",
                                 "--oauth", "test", "--login", "alice", "--imap", h.fx.url(),
                                 "--ca-file", h.fx.env["CA_FILE"], "--consent", "--flow",
                                 "device"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
        url = None
        for line in proc.stdout:
            m = re.match(r"To sign in, open (\S+) and enter the code (\S+)", line)
            if m:
                url = m.group(1)
                break
        check(url is not None, "no device code printed")
        page = device_approve(url)
        check("Sign-in Success" in page or "success" in page.lower(), page[-600:])
        out, err = proc.communicate(timeout=120)
        check(proc.returncode == 0 and "added OAuth account" in out, out + err)
        h.sync()
        check(h.messages() > 0, "nothing synced")
    finally:
        h.stop()
        p.stop()


def scenario_push(tmp):
    """Provider push for an OAuth account under serve: it logs in with an
    access token (OAUTHBEARER) and new mail comes by push, not by a round; a
    reconnect logs in with a fresh token (these expire within the refresh
    margin, so every login refreshes); a revoked grant stops push for the
    account with a notice, and nothing asks the provider again."""
    p = Provider(tmp, "as-push", ttl=60)
    h = Hub(tmp, "push", p)
    serve = None
    log = os.path.join(tmp, "push-serve.log")
    audit = os.path.join(h.dir, "users", "u", "audit.log")

    def text():
        return open(log, errors="replace").read()

    def wait(cond, what, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return
            check(serve.poll() is None, "serve died: " + text()[-2000:])
            time.sleep(0.2)
        check(False, "timed out: %s\n%s" % (what, text()[-3000:]))

    def refreshes():
        return open(audit).read().count('"oauth.refresh"')

    def push_logins():
        return sum('"provider.login"' in l and '"mechanism":"push"' in l and '"result":"ok"' in l
                   for l in open(audit).read().splitlines())

    def kick():  # nothing to kick exits non-zero: not checked
        subprocess.run(["bash", os.path.join(SRC, "tests", "fixture", "dovecot.sh"), "doveadm",
                        h.fx.dir, "kick", "alice"], capture_output=True)

    def new_mail(tag):
        c = h.fx.conn()
        c.append("INBOX", None, None, b"Subject: %s\r\nMessage-ID: <%s@x>\r\n\r\nbody\r\n"
                 % (tag.encode(), tag.encode()))
        c.logout()

    try:
        acct, out = h.add_loopback()
        check(acct is not None, out)
        h.sync()
        serve = subprocess.Popen([BIN, "--data", h.dir, "serve", "--listen", "127.0.0.1:0",
                                  "--sync-interval", "3600", "--access-log", "/dev/null"],
                                 stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        wait(lambda: "scheduler: round" in text(), "the first round")
        check("1 left to provider push" in text() or push_logins() >= 1,
              "the OAuth account is not pushed: " + text()[-2000:])
        wait(lambda: push_logins() >= 1, "push logged in")
        time.sleep(1)
        before = h.messages()
        new_mail("push-1")
        wait(lambda: h.messages() == before + 1, "new mail through push", 10)

        # A reconnect (the server drops the connection): a fresh token.
        r0, l0 = refreshes(), push_logins()
        kick()
        wait(lambda: push_logins() > l0, "push logged in again", 20)
        check(refreshes() > r0, "the reconnect did not refresh the expired token")
        time.sleep(1)
        before = h.messages()
        new_mail("push-2")
        wait(lambda: h.messages() == before + 1, "new mail through push after the reconnect", 10)

        # The provider revokes the grant; the next login stops push.
        before = h.messages()
        refresh = [t for t in p.tokens() if not t.startswith("eyJ")][-1]
        status, _ = p.post("/token/revocation", token=refresh, token_type_hint="refresh_token")
        check(status == 200, "revocation")
        kick()
        wait(lambda: "provider push stopped" in text(), "push stopped for the revoked grant", 20)
        check("invalid_grant" in text(), text()[-2000:])
        since = h.db().execute("SELECT needs_signin FROM accounts").fetchone()[0]
        check(since > 0, "not marked as needing sign-in")
        wait(lambda: h.messages() == before + 1, "the sign-in notice", 10)
        r1 = refreshes()
        kick()
        time.sleep(5)
        check(refreshes() == r1, "the provider was asked again after the grant went")
        check(text().count("provider push stopped") == 1, "push retried: " + text()[-2000:])
        serve.terminate()
        check(serve.wait(timeout=30) == 0, "serve exit")

        # A serve with rounds: the account needing sign-in is not pushed; signed
        # in again (CLI) while serve runs, the next round pushes it.
        log = os.path.join(tmp, "push-serve2.log")
        serve = subprocess.Popen([BIN, "--data", h.dir, "serve", "--listen", "127.0.0.1:0",
                                  "--sync-interval", "2", "--access-log", "/dev/null"],
                                 stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        wait(lambda: "scheduler: round" in text(), "the first round")
        check("not until the account is signed in again" in text(), text()[-2000:])
        l0 = push_logins()
        h.add_loopback(verb=("account", "signin"), extra=[str(acct)])
        wait(lambda: "push: 1 started" in text(), "the round starts push after the sign-in")
        wait(lambda: push_logins() > l0, "push logged in after the sign-in")
        wait(lambda: ", 1 left to provider push" in text(), "left to push")
        before = h.messages()
        new_mail("push-3")
        wait(lambda: h.messages() == before + 1, "new mail after the sign-in", 10)
        serve.terminate()
        check(serve.wait(timeout=30) == 0, "serve exit")
        serve = None
    finally:
        if serve is not None:
            serve.kill()
            serve.wait()
        h.stop()
        p.stop()



# ---- OAuth accounts from the web (ExternalAccount/oauthStart, the callback) ----

WEB_USER, WEB_PW = "w", "web-user-password-1"
MANAGE = ["urn:ietf:params:jmap:core", "urn:mailkeep:manage"]


class Serve:
    """mailkeep serve on 127.0.0.1:0 for the web scenarios. Its public URL is
    its own address, so the redirect URI is <that>/mailkeep/oauth/callback.
    SSL_CERT_DIR holds only the fixture's CA (the web adds accounts without a
    CA file), as web_test.py's cert_dir does."""

    def __init__(self, tmp, h, name):
        self.h = h
        self.log = os.path.join(tmp, name + ".log")
        certs = os.path.join(tmp, name + "-certs")
        os.makedirs(certs)
        ca = h.fx.env["CA_FILE"]
        shutil.copy(ca, os.path.join(certs, "mailkeep-test-ca.pem"))
        hsh = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", ca],
                             capture_output=True, text=True, check=True).stdout.strip()
        os.symlink("mailkeep-test-ca.pem", os.path.join(certs, hsh + ".0"))
        self.proc = subprocess.Popen(
            [BIN, "--data", h.dir, "serve", "--listen", "127.0.0.1:0", "--sync-interval",
             "3600", "--access-log", "/dev/null"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ, SSL_CERT_DIR=certs))
        self.url = None
        deadline = time.time() + 20
        while time.time() < deadline and self.url is None:
            m = re.search(r"serving (http://127\.0\.0\.1:\d+) ", self.text())
            if m:
                self.url = m.group(1)
            else:
                check(self.proc.poll() is None, "serve died: " + self.text()[-2000:])
                time.sleep(0.1)
        check(self.url is not None, "serve did not start: " + self.text()[-2000:])
        self.auth = "Basic " + base64.b64encode(
            ("%s:%s" % (WEB_USER, WEB_PW)).encode()).decode()

    def text(self):
        return open(self.log, errors="replace").read()

    def call(self, method, args, auth=None):
        """One management call: (response name, arguments)."""
        body = json.dumps({"using": MANAGE, "methodCalls": [
            [method, dict({"accountId": "mailkeep"}, **args), "c0"]]}).encode()
        req = urllib.request.Request(self.url + "/jmap/api", body, method="POST", headers={
            "Content-Type": "application/json", "Authorization": auth or self.auth})
        with urllib.request.urlopen(req, timeout=60) as r:
            name, res, _ = json.loads(r.read())["methodResponses"][0]
        return name, res

    def ok(self, method, args, auth=None):
        name, res = self.call(method, args, auth)
        check(name == method, "%s: %s" % (method, res))
        return res

    def error(self, method, args, auth=None):
        name, res = self.call(method, args, auth)
        check(name == "error", "%s succeeded: %s" % (method, res))
        return res

    def get(self, path):
        """GET path without credentials: (status, headers, body)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()

    def status(self, flow, final=True, timeout=90):
        """oauthStatus, waited for until final (not waiting/finishing)."""
        deadline = time.time() + timeout
        while True:
            res = self.ok("ExternalAccount/oauthStatus", {"flowId": flow})
            if not final or res["state"] not in ("waiting", "finishing"):
                return res
            check(time.time() < deadline, "flow still %s" % res["state"])
            check(self.proc.poll() is None, "serve died: " + self.text()[-2000:])
            time.sleep(0.3)

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.terminate()
        check(self.proc.wait(timeout=timeout) == 0, "serve exit: " + self.text()[-2000:])


def web_hub(tmp, name, p, extra_conf=""):
    """A hub with the password user w (the provider as "test" and as
    "google", so discovery of a gmail.com address finds a configured app)."""
    h = Hub(tmp, name, p, extra_conf=p.conf(name="google") + extra_conf)
    pwf = os.path.join(tmp, name + "-w.pass")
    with open(pwf, "w") as f:
        f.write(WEB_PW + "\n")
    h.mk("user", "add", WEB_USER, "--password-file", pwf)
    return h


def web_messages(h):
    path = os.path.join(h.dir, "users", WEB_USER, "store.db")
    if not os.path.exists(path):
        return 0
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT count(*) FROM messages").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        db.close()


def web_audit(h):
    path = os.path.join(h.dir, "users", WEB_USER, "audit.log")
    return open(path).read() if os.path.exists(path) else ""


def web_start(s, h, flow="redirect", provider="test", **extra):
    """disclose, then oauthStart for alice's new account; the start's answer."""
    settings = {"oauthProvider": provider, "imapUrl": h.fx.url(), "smtpUrl": None,
                "login": "alice"}
    d = s.ok("ExternalAccount/disclose", dict(settings, kind="oauth"))
    args = dict(settings, flow=flow, consent=True, disclosureId=d["disclosureId"])
    args.update(extra)
    return s.ok("ExternalAccount/oauthStart", args)


def wait_for(cond, what, s, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        check(s.proc.poll() is None, "serve died: " + s.text()[-2000:])
        time.sleep(0.2)
    check(False, "timed out: %s\n%s" % (what, s.text()[-3000:]))


def scenario_web_redirect(tmp):
    """The web's add: discover, OAuthProvider/get, the disclosure, oauthStart
    (redirect), the browser through the provider back to serve's callback,
    the page and oauthStatus say added, serve syncs the account at once; the
    audit has the consent (tool web) and the add (flow redirect)."""
    p = Provider(tmp, "asw1")
    h = web_hub(tmp, "wred", p)
    s = Serve(tmp, h, "wred-serve")
    try:
        found = s.ok("ExternalAccount/discover", {"email": "alice@gmail.com"})
        check(found["oauthProvider"] == "google" and found["oauthConfigured"] is True, found)
        prov = s.ok("OAuthProvider/get", {})
        ids = {x["id"]: x for x in prov["list"]}
        check(set(ids) == {"test", "google"}, prov)
        check(ids["test"]["flows"] == ["redirect", "device"], prov)
        check(ids["test"]["scopes"] == "openid offline_access mail", prov)
        check(CLIENT_SECRET not in json.dumps(prov), "the client secret in OAuthProvider/get")
        d = s.ok("ExternalAccount/disclose", {"kind": "oauth", "oauthProvider": "test",
                                              "imapUrl": h.fx.url(), "smtpUrl": None,
                                              "login": "alice"})
        check("adding an OAuth mail account for hub user w" in d["text"], d["text"])
        check("web app (Accounts)" in d["text"], d["text"])
        check(re.fullmatch(r"[0-9a-f]{64}", d["disclosureId"]), d)
        start = web_start(s, h)
        check(start["flow"] == "redirect" and start["userCode"] is None, start)
        url = start["authorizationUrl"]
        q = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
        check(q["redirect_uri"] == [s.url + "/mailkeep/oauth/callback"], q)
        check(q["login_hint"] == ["alice"] and q["code_challenge_method"] == ["S256"], q)
        check(s.status(start["flowId"], final=False)["state"] == "waiting", "not waiting")
        page = browse(url)
        check('id="mk-oauth-result" data-state="added"' in page, page)
        check("<h1>Account added</h1>" in page and "alice" in page, page)
        check("<script" not in page, page)
        st = s.status(start["flowId"])
        check(st["state"] == "added" and st["error"] is None, st)
        check(re.fullmatch(r"A\d+", st["account"] or ""), st)
        accts = s.ok("ExternalAccount/get", {"ids": [st["account"]]})["list"]
        check(len(accts) == 1 and accts[0]["kind"] == "oauth"
              and accts[0]["oauthProvider"] == "test", accts)
        wait_for(lambda: web_messages(h) > 0, "serve syncs the new account", s, 60)
        log = web_audit(h)
        check(re.search(r'"consent\.given".*"tool":"web"', log), log[-2000:])
        check(re.search(r'"account\.added".*"flow":"redirect"', log), log[-2000:])
        check('"disclosure":"%s"' % d["disclosureId"] in log, "consent to another text")
        # The state is single-use: the same callback again is refused.
        st_param = q["state"][0]
        code, hd, body = s.get("/mailkeep/oauth/callback?state=%s&code=x" % st_param)
        check(code == 400 and 'data-state="expired"' in body, (code, body))
        # The same account again: alreadyExists before anything starts.
        e = s.error("ExternalAccount/oauthStart", {
            "flow": "redirect", "oauthProvider": "test", "imapUrl": h.fx.url(),
            "smtpUrl": None, "login": "alice", "consent": True,
            "disclosureId": d["disclosureId"]})
        check(e["type"] == "alreadyExists", e)
        s.stop()
        s = None
    finally:
        if s is not None:
            s.proc.kill()
            s.proc.wait()
        h.stop()
        p.stop()


def scenario_web_device(tmp):
    """The web's add with the device flow: the code comes back from
    oauthStart, the user approves it on another device, serve's polling
    thread adds the account."""
    p = Provider(tmp, "asw2")
    h = web_hub(tmp, "wdev", p)
    s = Serve(tmp, h, "wdev-serve")
    try:
        start = web_start(s, h, flow="device")
        check(start["flow"] == "device" and start["authorizationUrl"] is None, start)
        check(start["userCode"] and start["verificationUri"].startswith(p.issuer), start)
        check(start["verificationUriComplete"], start)
        page = device_approve(start["verificationUriComplete"])
        check("success" in page.lower(), page[-600:])
        st = s.status(start["flowId"])
        check(st["state"] == "added" and re.fullmatch(r"A\d+", st["account"] or ""), st)
        check(re.search(r'"account\.added".*"flow":"device"', web_audit(h)), web_audit(h))
        wait_for(lambda: web_messages(h) > 0, "serve syncs the new account", s, 60)
        s.stop()
        s = None
    finally:
        if s is not None:
            s.proc.kill()
            s.proc.wait()
        h.stop()
        p.stop()


def scenario_web_signin_again(tmp):
    """The provider revokes the grant: the account needs sign-in; signing it
    in again from the web (oauthStart signIn) clears that and sync resumes."""
    p = Provider(tmp, "asw3")
    h = web_hub(tmp, "wsig", p)
    s = Serve(tmp, h, "wsig-serve")
    try:
        start = web_start(s, h)
        browse(start["authorizationUrl"])
        acct = s.status(start["flowId"])["account"]
        check(acct, "not added")
        wait_for(lambda: web_messages(h) > 0, "the first sync", s, 60)
        refresh = [t for t in p.tokens() if not t.startswith("eyJ")][-1]
        status, _ = p.post("/token/revocation", token=refresh, token_type_hint="refresh_token")
        check(status == 200, "revocation")
        r = h.mk("sync", "--user", WEB_USER, "--quiet", expect=None)
        check(r.returncode != 0 and "invalid_grant" in r.stderr, r.stderr)
        a = s.ok("ExternalAccount/get", {"ids": [acct]})["list"][0]
        check(a["needsSignIn"] is True, a)
        # New mail while the account waits: the sign-in's sync brings it.
        before = web_messages(h)
        c = h.fx.conn()
        c.append("INBOX", None, None, b"Subject: again\r\nMessage-ID: <again@x>\r\n\r\nb\r\n")
        c.logout()
        e = s.error("ExternalAccount/oauthStart", {"flow": "redirect", "signIn": "A999"})
        check(e["type"] == "invalidArguments", e)
        start = s.ok("ExternalAccount/oauthStart", {"flow": "redirect", "signIn": acct})
        q = urllib.parse.parse_qs(urllib.parse.urlparse(start["authorizationUrl"]).query)
        check(q["login_hint"] == ["alice"], q)
        page = browse(start["authorizationUrl"])
        check('data-state="signedIn"' in page and "Signed in again" in page, page)
        st = s.status(start["flowId"])
        check(st["state"] == "signedIn" and st["account"] == acct, st)
        a = s.ok("ExternalAccount/get", {"ids": [acct]})["list"][0]
        check(a["needsSignIn"] is False, a)
        check('"oauth.signin"' in web_audit(h) and '"signed-in"' in web_audit(h),
              web_audit(h)[-2000:])
        # Sync resumes: serve syncs the account right after the sign-in.
        wait_for(lambda: web_messages(h) == before + 1, "the sync after the sign-in", s, 60)
        s.stop()
        s = None
    finally:
        if s is not None:
            s.proc.kill()
            s.proc.wait()
        h.stop()
        p.stop()


def scenario_web_errors(tmp):
    """What goes wrong says so: an unconfigured provider, a stale disclosure,
    an unknown or used callback state (400), the provider's access_denied
    (failed, escaped), another user's flow, the per-user bound, a cancelled
    device flow, and SIGTERM during a device poll exits at once."""
    p = Provider(tmp, "asw4")
    h = web_hub(tmp, "werr", p, extra_conf="oauth.nodevice.client_id = x\n"
                "oauth.nodevice.token_url = %s/token\n" % p.issuer)
    s = Serve(tmp, h, "werr-serve")
    try:
        settings = {"imapUrl": h.fx.url(), "smtpUrl": None, "login": "alice"}
        e = s.error("ExternalAccount/disclose", dict(settings, kind="oauth",
                                                     oauthProvider="nope"))
        check(e["type"] == "invalidArguments" and "this hub has no OAuth app for nope"
              in e["description"] and "oauth.nope.client_id" in e["description"], e)
        e = s.error("ExternalAccount/oauthStart", dict(settings, flow="redirect",
                                                       oauthProvider="nope", consent=True,
                                                       disclosureId="0" * 64))
        check(e["type"] == "invalidArguments" and "no OAuth app" in e["description"], e)
        found = s.ok("ExternalAccount/discover", {"email": "bob@outlook.com"})
        check(found["oauthConfigured"] is False, found)
        e = s.error("ExternalAccount/oauthStart", dict(settings, flow="redirect",
                                                       oauthProvider="test", consent=True,
                                                       disclosureId="0" * 64))
        check(e["type"] == "invalidArguments" and "disclosureId" in e["description"], e)
        e = s.error("ExternalAccount/oauthStart", dict(settings, flow="device",
                                                       oauthProvider="nodevice",
                                                       consent=True, disclosureId="0" * 64))
        check(e["type"] == "invalidArguments" and "device" in e["description"], e)
        e = s.error("ExternalAccount/oauthStart", dict(settings, flow="carrier-pigeon",
                                                       oauthProvider="test"))
        check(e["type"] == "invalidArguments", e)
        # An unknown state: 400, the page says to start again, no caching.
        code, hd, body = s.get("/mailkeep/oauth/callback?state=nope&code=abc")
        check(code == 400 and 'data-state="expired"' in body and "start again" in body,
              (code, body))
        check(hd.get("cache-control") == "no-store" and
              hd.get("referrer-policy") == "no-referrer" and
              "default-src 'none'" in hd.get("content-security-policy", "") and
              hd.get("content-type", "").startswith("text/html"), hd)
        code, _, body = s.get("/mailkeep/oauth/callback")
        check(code == 400, body)
        # The provider's error: the flow fails, the text is escaped.
        start = web_start(s, h)
        state = urllib.parse.parse_qs(
            urllib.parse.urlparse(start["authorizationUrl"]).query)["state"][0]
        code, _, body = s.get("/mailkeep/oauth/callback?" + urllib.parse.urlencode(
            {"state": state, "error": "access_denied",
             "error_description": "<script>alert(1)</script> no"}))
        check(code == 200 and 'data-state="failed"' in body and "access_denied" in body, body)
        check("<script>" not in body and "&lt;script&gt;" in body, body)
        st = s.status(start["flowId"])
        check(st["state"] == "failed" and "access_denied" in st["error"], st)
        # Another user cannot see the flow.
        pwf = os.path.join(tmp, "werr-v.pass")
        with open(pwf, "w") as f:
            f.write("other-user-password\n")
        h.mk("user", "add", "v", "--password-file", pwf)
        other = "Basic " + base64.b64encode(b"v:other-user-password").decode()
        e = s.error("ExternalAccount/oauthStatus", {"flowId": start["flowId"]}, auth=other)
        check(e["type"] == "notFound", e)
        e = s.error("ExternalAccount/oauthCancel", {"flowId": start["flowId"]}, auth=other)
        check(e["type"] == "notFound", e)
        e = s.error("ExternalAccount/oauthStatus", {"flowId": "F" + "0" * 32})
        check(e["type"] == "notFound", e)
        # A zero-access user whose key is locked (Basic, no unlock lease):
        # refused before anything starts.
        zpf = os.path.join(tmp, "werr-z.pass")
        with open(zpf, "w") as f:
            f.write("zero-access-passphrase\n")
        h.mk("user", "add", "z", "--zero-access", "--password-file", zpf)
        zauth = "Basic " + base64.b64encode(b"z:zero-access-passphrase").decode()
        zset = dict(settings, oauthProvider="test")
        d = s.ok("ExternalAccount/disclose", dict(zset, kind="oauth"), auth=zauth)
        check("Who can decrypt it: only z" in d["text"], d["text"])
        e = s.error("ExternalAccount/oauthStart", dict(zset, flow="redirect", consent=True,
                                                       disclosureId=d["disclosureId"]),
                    auth=zauth)
        check(e["type"] == "forbidden" and "your key is locked" in e["description"], e)
        # Three pending sign-ins a user: a fourth drops the oldest.
        flows = [web_start(s, h)["flowId"] for _ in range(4)]
        check(s.status(flows[0], final=False)["state"] == "cancelled", "the oldest stays")
        check(all(s.status(f, final=False)["state"] == "waiting" for f in flows[1:]),
              "a newer one went")
        # Cancel a device flow: it stops polling at once.
        dev = web_start(s, h, flow="device")
        res = s.ok("ExternalAccount/oauthCancel", {"flowId": dev["flowId"]})
        check(res["state"] == "cancelled", res)
        st = s.status(dev["flowId"])
        check(st["state"] == "cancelled", st)
        # SIGTERM while a device flow polls: serve exits promptly.
        dev = web_start(s, h, flow="device")
        time.sleep(1)
        t0 = time.time()
        s.proc.terminate()
        check(s.proc.wait(timeout=30) == 0, "serve exit: " + s.text()[-2000:])
        check(time.time() - t0 < 4, "serve took %.1f s to stop" % (time.time() - t0))
        check(CLIENT_SECRET not in s.text() and "code_verifier" not in s.text(), "a secret logged")
        s = None
    finally:
        if s is not None:
            s.proc.kill()
            s.proc.wait()
        h.stop()
        p.stop()

SCENARIOS = {
    "push": scenario_push,
    "device_flow": scenario_device_flow,
    "xoauth2": scenario_xoauth2,
    "send": scenario_send,
    "sync_rotation_revocation": scenario_sync_rotation_revocation,
    "short_lived_tokens": scenario_short_lived_tokens,
    "errors": scenario_errors,
    "web_redirect": scenario_web_redirect,
    "web_device": scenario_web_device,
    "web_signin_again": scenario_web_signin_again,
    "web_errors": scenario_web_errors,
}

if __name__ == "__main__":
    if shutil.which("node") is None or not os.path.isdir(
            os.path.join(SRC, "tests", "oauth", "node_modules", "oidc-provider")):
        print("skip: node or tests/oauth/node_modules missing (scripts/setup.sh)")
        sys.exit(77)
    run_scenarios(SCENARIOS, "mk-oauth-", sys.argv[1:])
