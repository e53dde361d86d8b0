#!/usr/bin/env python3
"""Integration tests of stored accounts: sealed credentials, consent, the
audit log, removal from all devices, zero-access and the inactivity
lifecycle, against a real Dovecot with the real mailkeep binary.

usage: accounts_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import base64, os, re, shutil, sqlite3, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import BIN, Fixture, append, check, run, run_scenarios  # noqa: E402

DAY = 86400


class Hub:
    """A hub data directory with the fixture's users as accounts."""

    def __init__(self, tmp, name, users=2, count=20):
        self.fx = Fixture(tmp, name, "--users", str(users), count=count)
        self.dir = self.fx.data  # made by Fixture (init)
        self.tmp = tmp

    def mk(self, *args, expect=0, stdin=None):
        return run([BIN, "--data", self.dir, *args], expect=expect, stdin=stdin)

    def pw(self, user):
        return os.path.join(self.fx.dir, user + ".pass")

    def add_user(self, name, *extra):
        self.mk("user", "add", name, *extra)

    def add_account(self, user, login, *extra, expect=0):
        return self.mk("account", "add", "--user", user, "--imap", self.fx.url(), "--login", login,
                       "--password-file", self.pw(login), "--ca-file", self.fx.env["CA_FILE"],
                       *extra, expect=expect)

    def sync(self, user, *extra, expect=0):
        return self.mk("sync", "--user", user, "--quiet", *extra, expect=expect)

    def db(self):
        return sqlite3.connect(os.path.join(self.dir, "hub.db"))

    def audit_events(self, user):
        r = self.mk("audit", "--user", user)
        return [line.split()[3] for line in r.stdout.splitlines() if line.strip()]

    def files(self):
        for dp, dns, fns in os.walk(self.dir):
            for f in fns:
                yield os.path.join(dp, f)

    def find(self, needles):
        hits = []
        for path in self.files():
            data = open(path, "rb").read()
            hits += [(path, n) for n in needles if n in data]
        return hits

    def stop(self):
        self.fx.stop()


def forms(secret):
    """A secret as raw bytes, base64 (alone and inside SASL PLAIN) and hex."""
    s = secret.encode()
    out = [s, base64.b64encode(s), s.hex().encode(), s.hex().upper().encode()]
    for login in (b"alice", b"bob"):
        out.append(base64.b64encode(b"\0" + login + b"\0" + s))
    return out


def index_until(h, user, word, timeout=60):
    """Run `serve` (its background indexer) until word is in user's
    full-text index, then stop it."""
    serve = subprocess.Popen([BIN, "--data", h.dir, "serve", "--listen", "127.0.0.1:0",
                              "--sync-interval", "0", "--access-log", "/dev/null"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        path = os.path.join(h.dir, "users", user, "store.db")
        deadline = time.time() + timeout
        while True:
            if serve.poll() is not None:
                check(False, "serve stopped: %s" % serve.stderr.read())
            check(time.time() < deadline, "%s not indexed within %d s" % (word, timeout))
            try:
                db = sqlite3.connect(path)
                n = db.execute("SELECT count(*) FROM email_fts WHERE email_fts MATCH ?",
                               ('"%s"' % word,)).fetchone()[0]
                db.close()
                if n > 0:
                    break
            except sqlite3.OperationalError:
                pass  # the table is made when serve first opens the store
            time.sleep(0.2)
    finally:
        serve.terminate()
        serve.wait(timeout=20)


def t_canaries(tmp):
    h = Hub(tmp, "canary")
    try:
        password = open(h.pw("alice")).read()  # random per run: the canary
        canary = "MSG-CANARY-%d" % time.time_ns()
        word = "fxcanary%d" % time.time_ns()  # one token, spelled as the index keeps it
        append(h.fx, "INBOX", ("Subject: canary\r\n\r\n%s %s\r\n" % (canary, word)).encode())
        h.add_user("alice")
        r = h.add_account("alice", "alice", "--consent")
        check("added account 1" in r.stdout, r.stdout)
        h.add_account("alice", "bob", "--consent")
        h.sync("alice")
        h.sync("alice")
        check(h.find(forms(password)) == [], "password canary found: %s" % h.find(forms(password))[:3])
        check(h.find([canary.encode()]) != [], "message canary not stored (the scan is blind)")
        index_until(h, "alice", word)
        check(h.find([word.encode()]) != [], "indexed canary not stored (the scan is blind)")
        r = h.mk("account", "remove", "--user", "alice", "1", expect=2)
        check("--all-devices" in r.stderr, "removal without --all-devices: " + r.stderr)
        r = h.mk("account", "remove", "--user", "alice", "1", "--all-devices")
        check("receipt:" in r.stdout, r.stdout)
        m = re.search(r"(\d+) sealed credentials.*?(\d+) messages in (\d+) folders", r.stdout)
        check(m and int(m.group(1)) == 1 and int(m.group(2)) > 20 and int(m.group(3)) >= 4,
              "receipt counts: " + r.stdout)
        check(h.find([canary.encode()]) == [], "message canary left after removal: %s" % h.find([canary.encode()]))
        check(h.find([word.encode()]) == [], "indexed text left after removal: %s" % h.find([word.encode()]))
        check(h.find(forms(password)) == [], "password canary after removal")
        db = h.db()
        check(db.execute("SELECT count(*) FROM secrets WHERE account_id = 1").fetchone()[0] == 0, "secrets left")
        check(db.execute("SELECT count(*) FROM accounts WHERE id = 1").fetchone()[0] == 0, "account row left")
        db.close()
        check("account.removed" in h.audit_events("alice"), "removal not audited")
        # The other account is untouched and still syncs.
        r = h.sync("alice")
        check(r.stdout.count("synced alice") == 1, r.stdout)
        for path in h.files():
            if path.endswith("-wal"):
                check(os.path.getsize(path) == 0, "WAL not truncated: " + path)
    finally:
        h.stop()


def t_consent(tmp):
    h = Hub(tmp, "consent", users=1, count=5)
    try:
        h.add_user("alice")
        r = h.add_account("alice", "alice", expect=1)  # no terminal, no --consent
        check("no consent" in r.stderr and "Disclosure id:" in r.stdout, r.stderr)
        check("XChaCha20-Poly1305" in r.stdout and "master key" in r.stdout and
              h.fx.url() in r.stdout and h.dir in r.stdout and "remove" in r.stdout,
              "disclosure incomplete: " + r.stdout)
        db = h.db()
        check(db.execute("SELECT count(*) FROM accounts").fetchone()[0] == 0, "declined but stored")
        check(db.execute("SELECT count(*) FROM secrets").fetchone()[0] == 0, "declined but stored")
        db.close()
        cmd = " ".join([BIN, "--data", h.dir, "account", "add", "--user", "alice", "--imap", h.fx.url(),
                        "--login", "alice", "--password-file", h.pw("alice"), "--ca-file",
                        h.fx.env["CA_FILE"]])
        out = subprocess.run(["script", "-qec", cmd, "/dev/null"], input=b"no\n", capture_output=True, timeout=60)
        check(out.returncode != 0 and b"nothing was stored" in out.stdout, out.stdout[-300:])
        out = subprocess.run(["script", "-qec", cmd, "/dev/null"], input=b"yes\n", capture_output=True, timeout=60)
        check(out.returncode == 0 and b"consent recorded" in out.stdout, out.stdout[-300:])
        did = re.search(rb"Disclosure id: ([0-9a-f]{64})", out.stdout).group(1).decode()
        db = h.db()
        rows = db.execute("SELECT disclosure_id, tool FROM consents").fetchall()
        db.close()
        check(rows == [(did, "mailkeep-cli interactive")], "consent record: %s" % rows)
        check("consent.given" in h.audit_events("alice"), "consent not audited")
    finally:
        h.stop()


def t_audit(tmp):
    h = Hub(tmp, "audit", users=1, count=5)
    try:
        h.add_user("alice")
        h.add_account("alice", "alice", "--consent")
        before = h.audit_events("alice").count("credential.decrypt")
        h.sync("alice")
        h.sync("alice")
        ev = h.audit_events("alice")
        check(ev.count("credential.decrypt") - before == 2, "not exactly one entry per decryption: %s" % ev)
        check(ev.count("provider.login") == 2, "logins not audited: %s" % ev)
        r = h.mk("audit", "--user", "alice")
        check("result=ok" in r.stdout and "purpose=sync" in r.stdout, r.stdout)
        r = h.mk("audit", "--user", "alice", "--verify")
        check("intact" in r.stdout, r.stdout)
        log = os.path.join(h.dir, "users", "alice", "audit.log")
        orig = open(log, "rb").read()
        for pos in list(range(0, len(orig), max(1, len(orig) // 40))) + [len(orig) - 2]:
            data = bytearray(orig)
            data[pos] ^= 0x20 if data[pos] != 0x0a else 0x01
            open(log, "wb").write(data)
            r = h.mk("audit", "--user", "alice", "--verify", expect=1)
            check("NOT intact" in r.stderr, "byte %d changed but verified" % pos)
        lines = orig.splitlines(keepends=True)
        for bad in (b"".join(lines[:-1]), b"".join(lines[:2] + lines[3:]),
                    b"".join([lines[1], lines[0]] + lines[2:])):
            open(log, "wb").write(bad)
            h.mk("audit", "--user", "alice", "--verify", expect=1)
        open(log, "wb").write(orig)
        h.mk("audit", "--user", "alice", "--verify")
    finally:
        h.stop()


def t_zero_access(tmp):
    h = Hub(tmp, "zero", users=2, count=10)
    try:
        pp = os.path.join(tmp, "carol.pass")
        open(pp, "w").write("carol's long passphrase")
        h.mk("user", "add", "carol", "--zero-access", "--password-file", pp)
        r = h.add_account("carol", "bob", "--consent", expect=2)  # needs the passphrase
        r = h.add_account("carol", "bob", "--consent", "--passphrase-file", pp)
        check("only carol" in r.stdout, "zero-access disclosure: " + r.stdout)
        r = h.sync("carol", expect=1)
        check("zero-access" in r.stderr and "passphrase" in r.stderr, r.stderr)
        wrong = os.path.join(tmp, "wrong.pass")
        open(wrong, "w").write("not it")
        r = h.sync("carol", "--passphrase-file", wrong, expect=1)
        check("wrong passphrase" in r.stderr, r.stderr)
        r = h.sync("carol", "--passphrase-file", pp)
        check("synced carol" in r.stdout, r.stdout)
        ev = h.audit_events("carol")
        check("user.signin" in ev and ev.count("credential.decrypt") == 1, ev)
        # With the master key and the whole data directory but without the
        # passphrase, the credential stays shut (tests/test-hub.c also tries
        # the master-derived key directly).
        copy = os.path.join(tmp, "stolen")
        shutil.copytree(h.dir, copy)
        r = run([BIN, "--data", copy, "sync", "--user", "carol", "--quiet"], expect=1)
        check("zero-access" in r.stderr, r.stderr)
    finally:
        h.stop()


def t_tamper_and_keys(tmp):
    h = Hub(tmp, "tamper", users=2, count=10)
    try:
        h.add_user("alice")
        h.add_account("alice", "alice", "--consent")
        h.add_account("alice", "bob", "--consent")
        db = h.db()
        blob = bytearray(db.execute("SELECT blob FROM secrets WHERE account_id = 1").fetchone()[0])
        blob[30] ^= 1
        db.execute("UPDATE secrets SET blob = ? WHERE account_id = 1", (bytes(blob),))
        db.commit()
        db.close()
        r = h.sync("alice", expect=1)
        check("sealed credential" in r.stderr and "account 1" in r.stderr, r.stderr)
        check("synced alice" in r.stdout, "the other account stopped too: " + r.stdout)
        # Master key missing or damaged: a clear error, nothing overwritten.
        key = os.path.join(h.dir, "master.key")
        hubdb = open(os.path.join(h.dir, "hub.db"), "rb").read()
        os.rename(key, key + ".away")
        r = h.sync("alice", expect=1)
        check("master key" in r.stderr, r.stderr)
        check(not os.path.exists(key), "a new master key was made")
        data = bytearray(open(key + ".away", "rb").read())
        data[40] = ord("0") if data[40] != ord("0") else ord("1")
        open(key, "wb").write(data)
        os.chmod(key, 0o600)
        r = h.sync("alice", expect=1)
        check("damaged" in r.stderr, r.stderr)
        check(open(os.path.join(h.dir, "hub.db"), "rb").read() == hubdb, "hub.db changed")
        os.replace(key + ".away", key)
        os.chmod(key, 0o644)
        r = h.sync("alice", expect=1)
        check("readable by others" in r.stderr, r.stderr)
        os.chmod(key, 0o600)
        h.sync("alice", "--account", "2")
        # The master key as a systemd credential ($CREDENTIALS_DIRECTORY/NAME).
        creds = os.path.join(h.tmp, "credentials")
        os.makedirs(creds, mode=0o700)
        os.rename(key, os.path.join(creds, "mailkeep-master-key"))
        conf = os.path.join(h.dir, "mailkeep.conf")
        with open(conf, "a") as f:
            f.write("master_key_credential = mailkeep-master-key\n")
        argv = [BIN, "--data", h.dir, "sync", "--user", "alice", "--account", "2", "--quiet"]
        r = subprocess.run(argv, capture_output=True, text=True,
                           env=dict(os.environ, CREDENTIALS_DIRECTORY=creds))
        check(r.returncode == 0 and "synced alice" in r.stdout, "credential: " + r.stderr)
        r = subprocess.run(argv, capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"})
        check(r.returncode == 1 and ("master key" in r.stderr.lower() or "credential" in r.stderr.lower()),
              "no credentials directory: " + r.stderr)
    finally:
        h.stop()


def t_permissions(tmp):
    h = Hub(tmp, "perms", users=1, count=5)
    try:
        h.add_user("alice")
        h.add_account("alice", "alice", "--consent")
        h.sync("alice")
        for dp, dns, fns in os.walk(h.dir):
            check(os.stat(dp).st_mode & 0o777 == 0o700, "directory %s not 0700" % dp)
            for f in fns:
                p = os.path.join(dp, f)
                check(os.stat(p).st_mode & 0o777 == 0o600, "file %s not 0600" % p)
    finally:
        h.stop()


def t_lifecycle(tmp):
    h = Hub(tmp, "life", users=1, count=5)
    try:
        h.add_user("alice")
        h.add_user("dave")
        h.add_account("alice", "alice", "--consent")
        now = int(time.time())

        def set_active(user, days_ago):
            db = h.db()
            db.execute("UPDATE users SET last_active = ? WHERE name = ?", (now - days_ago * DAY, user))
            db.commit()
            db.close()

        set_active("dave", 340)
        r = h.mk("lifecycle", "run", "--dry-run")
        check("would warn dave" in r.stdout and "alice" not in r.stdout, r.stdout)
        check("lifecycle.warning" not in h.audit_events("dave"), "dry run acted")
        r = h.mk("lifecycle", "run")
        check("warning dave: 25 days" in r.stdout, r.stdout)
        check("lifecycle.warning" in h.audit_events("dave"), "warning not audited")
        store = sqlite3.connect(os.path.join(h.dir, "users", "dave", "store.db"))
        notes = [bytes(b) for (b,) in store.execute(
            "SELECT b.data FROM messages m JOIN blobs b ON b.id = m.blob_id "
            "JOIN mailboxes x ON x.id = m.mailbox_id WHERE x.name = 'INBOX'")]
        store.close()
        check(len(notes) == 1 and b"deleted in 25 days" in notes[0], "no notice in the inbox: %s" % notes)
        r = h.mk("lifecycle", "run")
        check("dave" not in r.stdout, "warned twice: " + r.stdout)
        set_active("dave", 360)
        db = h.db()
        db.execute("UPDATE users SET warned_days = 30 WHERE name = 'dave'")
        db.commit()
        db.close()
        r = h.mk("lifecycle", "run")
        check("warning dave: 5 days" in r.stdout, r.stdout)
        set_active("dave", 366)
        r = h.mk("lifecycle", "run", "--dry-run")
        check("would purge dave" in r.stdout, r.stdout)
        check(os.path.isdir(os.path.join(h.dir, "users", "dave")), "dry run purged")
        r = h.mk("lifecycle", "run")
        check("purging dave" in r.stdout and "receipt:" in r.stdout, r.stdout)
        check(not os.path.exists(os.path.join(h.dir, "users", "dave")), "dave's data left")
        r = h.mk("user", "list")
        check("dave" not in r.stdout and "alice" in r.stdout, r.stdout)
        # A sync is activity: it restarts alice's period.
        set_active("alice", 340)
        h.sync("alice")
        r = h.mk("lifecycle", "run", "--dry-run")
        check("alice" not in r.stdout, "sync did not count as activity: " + r.stdout)
        # And deleting a user by hand leaves nothing of them either.
        r = h.mk("user", "delete", "alice")
        check("receipt:" in r.stdout, r.stdout)
        check(not os.path.exists(os.path.join(h.dir, "users", "alice")), "alice's data left")
        db = h.db()
        check(db.execute("SELECT count(*) FROM secrets").fetchone()[0] == 0, "secrets left")
        db.close()
    finally:
        h.stop()


SCENARIOS = {
    "canaries": t_canaries,
    "consent": t_consent,
    "audit": t_audit,
    "zero-access": t_zero_access,
    "tamper-keys": t_tamper_and_keys,
    "permissions": t_permissions,
    "lifecycle": t_lifecycle,
}


def main():
    run_scenarios(SCENARIOS, "mk-accounts-test-", sys.argv[1:])


if __name__ == "__main__":
    main()
