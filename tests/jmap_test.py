#!/usr/bin/env python3
"""Runs the Node JMAP client tests (tests/jmap/*.test.mjs, jmap-jam and
eventsource from npm) against a real `mailkeep serve` whose user's mail was
synced from a real Dovecot."""
import os, re, signal, subprocess, sys, tempfile, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import BIN, SRC, Fixture, check, run  # noqa: E402

BIN = os.path.abspath(BIN)


def renumber(fixture_dir, folder):
    """Give FOLDER a new UIDVALIDITY and new UIDs, as a server rebuild would
    (see sync_test.t_uidvalidity)."""
    import imapctl
    from sync_test import FIXTURE
    def doveadm(*args):
        r = subprocess.run(["bash", FIXTURE, "doveadm", fixture_dir, *args], capture_output=True, text=True)
        check(r.returncode == 0, "doveadm: " + r.stderr)
    doveadm("mailbox", "update", "-u", "alice", "--uid-validity", "12345", folder)
    c = imapctl.connect(fixture_dir, "alice", "imaps")
    c.select(imapctl.quote(folder))
    c.create("RenumberTmp")
    c.uid("MOVE", "1:*", "RenumberTmp")
    c.select("RenumberTmp")
    c.uid("MOVE", "1:*", imapctl.quote(folder))
    c.select("INBOX")
    c.delete("RenumberTmp")
    c.logout()
    doveadm("mailbox", "update", "-u", "alice", "--uid-validity", "54321", folder)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--renumber":
        sys.path.insert(0, os.path.join(SRC, "tests", "fixture"))
        renumber(sys.argv[2], sys.argv[3])
        return
    jdir = os.path.join(SRC, "tests", "jmap")
    if not os.path.isdir(os.path.join(jdir, "node_modules", "jmap-jam")):
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=jdir)
        check(r.returncode == 0, "npm install failed")
    tmp = tempfile.mkdtemp(prefix="mk-jmap-test-")
    os.chmod(tmp, 0o755)
    fx = Fixture(tmp, "jmap", "--users", "2", count=60)
    serve = None
    try:
        mk = lambda *a, **k: run([BIN, "--data", fx.data, *a], **k)
        hubpw = os.path.join(tmp, "alice-hub.pass")
        open(hubpw, "w").write("alice hub password")
        mk("user", "add", "alice", "--password-file", hubpw)
        mk("user", "add", "bob")
        mk("account", "add", "--user", "alice", "--imap", fx.url(), "--login", "alice",
           "--password-file", fx.env["PASS_FILE"], "--ca-file", fx.env["CA_FILE"], "--consent")
        # Hand-written messages for specific tests (tests/jmap/messages/*.eml),
        # appended with an old internal date so they are not the newest.
        mdir = os.path.join(jdir, "messages")
        msgs = sorted(f for f in os.listdir(mdir) if f.endswith(".eml")) if os.path.isdir(mdir) else []
        if msgs:
            c = fx.conn()
            for f in msgs:
                raw = open(os.path.join(jdir, "messages", f), "rb").read()
                typ, _ = c.append("INBOX", None, '"01-Jan-2001 00:00:00 +0000"', raw)
                check(typ == "OK", "append " + f)
            c.logout()
        mk("sync", "--user", "alice", "--quiet")
        # Carol: her own hub user on the same Dovecot mailbox, for the removal test.
        mk("user", "add", "carol")
        mk("account", "add", "--user", "carol", "--imap", fx.url(), "--login", "alice",
           "--password-file", fx.env["PASS_FILE"], "--ca-file", fx.env["CA_FILE"], "--consent")
        mk("sync", "--user", "carol", "--quiet")
        carol_account = mk("account", "list", "--user", "carol").stdout.splitlines()[1].split()[0]
        # Dave: one hub user with two external accounts, the Dovecot users
        # alice and bob (tests/jmap/accounts.test.mjs). Bob's mailbox has a
        # hierarchy (Projects.Alpha, '.' is the fixture's separator) and
        # mail of its own.
        sys.path.insert(0, os.path.join(SRC, "tests", "fixture"))
        import imapctl
        c = imapctl.connect(fx.dir, "bob", "imaps")
        # Deep.Nested alone: its parent is no folder (\\NonExistent or not
        # listed), shown as a mailbox that holds no mail.
        for name in ("Projects", "Projects.Alpha", "Deep.Nested"):
            typ, _ = c.create(name)
            check(typ == "OK", "create " + name)
        for i in range(3):
            raw = ("From: Bob <bob@example.org>\r\nTo: bob@example.org\r\n"
                   "Subject: bob's mail %d\r\nMessage-ID: <bob-%d@example.org>\r\n\r\nhi %d\r\n"
                   % (i, i, i)).encode()
            typ, _ = c.append("INBOX" if i < 2 else "Projects.Alpha", None, None, raw)
            check(typ == "OK", "append to bob")
        c.logout()
        mk("user", "add", "dave")
        for login in ("alice", "bob"):
            mk("account", "add", "--user", "dave", "--imap", fx.url(), "--login", login,
               "--password-file", os.path.join(fx.dir, login + ".pass"),
               "--ca-file", fx.env["CA_FILE"], "--consent")
        mk("sync", "--user", "dave", "--quiet")
        dave_accounts = [l.split()[0] for l in mk("account", "list", "--user", "dave").stdout.splitlines()[1:] if l[:1].isdigit()]
        # Erin: a hub user without accounts who manages hers over JMAP
        # (tests/jmap/manage.test.mjs, urn:mailkeep:manage), signing in
        # with Basic and her hub password.
        erinpw = os.path.join(tmp, "erin-hub.pass")
        open(erinpw, "w").write("erin hub password")
        mk("user", "add", "erin", "--password-file", erinpw)
        # Zed: zero-access; his key opens only while he is signed in.
        zedpw = os.path.join(tmp, "zed-hub.pass")
        open(zedpw, "w").write("zed passphrase 4c1e")
        mk("user", "add", "zed", "--zero-access", "--password-file", zedpw)
        # serve trusts the fixture's CA as a system CA (SSL_CERT_DIR), as
        # an account added over JMAP names no CA file.
        certs = os.path.join(tmp, "certs")
        os.mkdir(certs)
        h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", fx.env["CA_FILE"]],
                           capture_output=True, text=True, check=True).stdout.strip()
        shutil.copy(fx.env["CA_FILE"], os.path.join(certs, h + ".0"))
        tok = lambda user, dev: mk("device", "add", "--user", user, dev).stdout.strip().splitlines()[-1]
        tokens = {"alice": tok("alice", "laptop"), "bob": tok("bob", "phone"),
                  "revoke": tok("alice", "old-phone"), "carol": tok("carol", "tablet"),
                  "dave": tok("dave", "desktop")}
        inbox = len(fx.store_state()["INBOX"])
        serve = subprocess.Popen([BIN, "--data", fx.data, "serve", "--listen", "127.0.0.1:0",
                                  "--sync-interval", "0", "--no-replay",
                                  "--access-log", os.path.join(tmp, "access.log")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 # These tests look at the hub and the server between
                                 # syncs they run; provider push would sync (and replay)
                                 # in between. Push has its own tests (push_test.py).
                                 env=dict(os.environ, MK_NO_PROVIDER_PUSH="1", SSL_CERT_DIR=certs))
        # The "serving" line, after any notes serve logs before it (the
        # web app's root).
        line, m = "", None
        for _ in range(10):
            line = serve.stdout.readline()
            m = re.search(r"session at (\S+?)\)", line)
            if m is not None or line == "":
                break
        check(m is not None, "serve did not start: %s %s" % (line, serve.stderr.read() if serve.poll() is not None else ""))
        new_mail = ("python3 -c \"import sys; sys.path.insert(0, '%s'); import imapctl; "
                    "c = imapctl.connect('%s', 'alice', 'imaps'); "
                    "c.append('INBOX', None, None, b'Subject: pushed\\\\r\\\\n\\\\r\\\\nhi\\\\r\\\\n'); c.logout()\" && "
                    "%s --data %s sync --user alice --quiet >/dev/null"
                    % (os.path.join(SRC, "tests", "fixture"), fx.dir, BIN, fx.data))
        env = dict(os.environ, MK_SESSION_URL=m.group(1), MK_TOKEN_ALICE=tokens["alice"],
                   MK_TOKEN_BOB=tokens["bob"], MK_TOKEN_REVOKE=tokens["revoke"],
                   MK_TOKEN_CAROL=tokens["carol"], MK_TOKEN_DAVE=tokens["dave"],
                   MK_DAVE_ACCOUNTS=" ".join(dave_accounts),
                   MK_PRIMARY_CMD="%s --data %s account primary --user dave" % (BIN, fx.data),
                   MK_REMOVE_CAROL_CMD="%s --data %s account remove --user carol %s --all-devices >/dev/null"
                   % (BIN, fx.data, carol_account),
                   MK_INBOX_COUNT=str(inbox), MK_NEW_MAIL_CMD=new_mail,
                   MK_HUB_PASSWORD="alice hub password",
                   MK_ERIN_PASSWORD="erin hub password", MK_IMAP_URL=fx.url(),
                   MK_ZED_PASSWORD="zed passphrase 4c1e",
                   MK_BOB_PASSWORD=open(os.path.join(fx.dir, "bob.pass")).read().strip(),
                   MK_AUDIT_CMD="%s --data %s audit --user erin" % (BIN, fx.data),
                   MK_SYNC_CMD="%s --data %s sync --user alice --quiet >/dev/null" % (BIN, fx.data),
                   MK_IMAPCTL="python3 %s %s" % (os.path.join(SRC, "tests", "fixture", "imapctl.py"), fx.dir),
                   MK_RENUMBER_CMD="python3 %s --renumber %s" % (os.path.abspath(__file__), fx.dir),
                   MK_REVOKE_CMD="%s --data %s device revoke --user alice old-phone >/dev/null" % (BIN, fx.data))
        # One node run per file, in name order: zz-signin-limit.test.mjs blocks
        # this address for a minute and must come last (a single node --test
        # run may order or overlap files as it likes).
        tests = sorted(os.path.join(jdir, f) for f in os.listdir(jdir) if f.endswith(".test.mjs"))
        if len(sys.argv) > 1:  # only the named files (and none other)
            tests = [t for t in tests if os.path.basename(t) in sys.argv[1:]]
        returncode = 0
        for t in tests:
            r = subprocess.run(["node", "--test", "--test-reporter=spec", t], env=env, cwd=jdir)
            returncode = returncode or r.returncode
        log = open(os.path.join(tmp, "access.log")).read()
        for t in tokens.values():
            check(t not in log, "a token is in the access log")
        check("alice/laptop" in log, "requests not tied to devices in the access log")
        # Changes through the API are in the user's audit log, tied to the device.
        if any(os.path.basename(t) == "set.test.mjs" for t in tests):
            audit = mk("audit", "--user", "alice").stdout
            check(re.search(r"api\.change.*laptop", audit) is not None and "Email/set" in audit,
                  "API changes not in the audit log with their device:\n" + audit[-2000:])
        serve.send_signal(signal.SIGTERM)
        check(serve.wait(timeout=20) == 0, "serve did not stop cleanly")
        serve = None
        sys.exit(returncode)
    finally:
        if serve is not None:
            serve.kill()
        fx.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
