#!/usr/bin/env python3
"""Integration tests of `mailkeep sync` and `export` against a real Dovecot.

Each scenario starts from the fixture (tests/fixture/dovecot.sh), changes the
account as another client would (imapctl helpers, doveadm), runs the real
mailkeep binary and compares the hosted store (read with Python's sqlite3)
with what the server serves (read with Python's imaplib).

usage: sync_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import glob, hashlib, os, re, shutil, socket, sqlite3, subprocess, sys, tempfile, threading, time

SRC = os.environ.get("MK_SRC") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("MK_BIN") or os.path.join(SRC, "build", "mailkeep")
FIXTURE = os.path.join(SRC, "tests", "fixture", "dovecot.sh")
sys.path.insert(0, os.path.join(SRC, "tests", "fixture"))
import imapctl  # noqa: E402

FLAG_BITS = {"\\Seen": 1, "\\Answered": 2, "\\Flagged": 4, "\\Deleted": 8, "\\Draft": 16}


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Fixture:
    def __init__(self, tmp, name, *start_args, count=120):
        self.dir = os.path.join(tmp, name)
        out = subprocess.run(["bash", FIXTURE, "start", self.dir, *start_args],
                             capture_output=True, text=True)
        check(out.returncode == 0, "fixture start failed: " + out.stderr[-2000:])
        self.env = imapctl.read_env(self.dir)
        if count:
            extras = os.path.join(SRC, "tests", "data", "malformed-*.eml")
            out = subprocess.run(["bash", FIXTURE, "seed", self.dir, "--count", str(count),
                                  "--seed", "7", "--extras", extras],
                                 capture_output=True, text=True)
            if out.returncode != 0:  # older fixture without --extras
                out = subprocess.run(["bash", FIXTURE, "seed", self.dir, "--count", str(count),
                                      "--seed", "7"], capture_output=True, text=True)
            check(out.returncode == 0, "seed failed: " + out.stderr[-2000:])
        self.data = os.path.join(tmp, name + "-data")
        run([BIN, "--data", self.data, "init"])

    def url(self, kind="imaps", host="127.0.0.1"):
        if kind == "imaps":
            return "imaps://%s:%s" % (host, self.env["IMAPS_PORT"])
        if kind == "starttls":
            return "imap://%s:%s" % (host, self.env["IMAP_PORT"])
        return "imaps://%s:%s" % (host, self.env["UNTRUSTED_PORT"])

    def sync(self, url=None, expect=0, extra=()):
        ensure_hub_user(self.data)
        r = run([BIN, "--data", self.data, "sync", "--user", "alice", "--imap", url or self.url(),
                 "--login", "alice", "--password-file", self.env["PASS_FILE"],
                 "--ca-file", self.env["CA_FILE"], "--quiet", *extra], expect=expect)
        return r

    def conn(self):
        return imapctl.connect(self.dir, "alice", "imaps")

    def doveadm(self, *args):
        out = subprocess.run(["bash", FIXTURE, "doveadm", self.dir, *args],
                             capture_output=True, text=True)
        check(out.returncode == 0, "doveadm %s: %s" % (args, out.stderr))

    def stop(self):
        subprocess.run(["bash", FIXTURE, "stop", self.dir], capture_output=True)

    # What the server has: {folder: {uid: (flags, keywords, sha256)}}
    def server_state(self):
        c = self.conn()
        state = {}
        for name in imapctl.folders(c):
            typ, _ = c.select(imapctl.quote(name), readonly=True)
            check(typ == "OK", "select " + name)
            msgs = {}
            typ, data = c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head = item[0].decode()
                uid = int(re.search(r"UID (\d+)", head).group(1))
                fl = re.search(r"FLAGS \(([^)]*)\)", head).group(1).split()
                bits = sum(FLAG_BITS.get(f, 0) for f in fl)
                kws = " ".join(sorted(set(f for f in fl if not f.startswith("\\"))))
                msgs[uid] = (bits, kws, hashlib.sha256(item[1]).hexdigest())
            state[name] = msgs
        c.logout()
        return state

    def store_state(self):
        db = sqlite3.connect(os.path.join(self.data, "users", "alice", "store.db"))
        state = {}
        # Folders that can hold mail; \Noselect ones and unlisted parents
        # are kept as noselect mailboxes (checked in t_initial_and_incremental).
        for mid, name in db.execute("SELECT id, name FROM mailboxes WHERE noselect = 0"):
            msgs = {}
            for uid, flags, kw, data in db.execute(
                    "SELECT m.uid, m.flags, m.keywords, b.data FROM messages m "
                    "JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ?", (mid,)):
                msgs[uid] = (flags, kw, hashlib.sha256(data).hexdigest())
            state[name] = msgs
        db.close()
        return state

    def assert_in_sync(self, what):
        s, h = self.server_state(), self.store_state()
        check(sorted(s) == sorted(h), "%s: folders differ: server %s hub %s" % (what, sorted(s), sorted(h)))
        for name in s:
            if s[name] != h[name]:
                only_s = set(s[name]) - set(h[name])
                only_h = set(h[name]) - set(s[name])
                diff = [u for u in s[name] if u in h[name] and s[name][u] != h[name][u]]
                raise AssertionError("%s: folder %s differs: missing %s extra %s different %s (%s vs %s)"
                                     % (what, name, sorted(only_s)[:5], sorted(only_h)[:5], diff[:5],
                                        [s[name][u] for u in diff[:1]], [h[name][u] for u in diff[:1]]))


def ensure_hub_user(data, name="alice"):
    """A sync needs a hub user to sync into (it refuses to make a store
    nothing lists or purges): add name unless it is there. A user's folder
    means the user is there, without opening hub.db (a test may have filled
    the disk on purpose)."""
    if os.path.isdir(os.path.join(data, "users", name)):
        return
    r = run([BIN, "--data", data, "user", "list"])
    if not any(line.split()[:1] == [name] for line in r.stdout.splitlines()[1:]):
        run([BIN, "--data", data, "user", "add", name])


def run(argv, expect=0, stdin=None):
    """Run argv; stdin is the given text, or /dev/null (never the terminal)."""
    r = subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=600,
                       **({} if stdin is not None else {"stdin": subprocess.DEVNULL}))
    if expect is not None and r.returncode != expect:
        raise AssertionError("%s exited %d (expected %d)\nstdout: %s\nstderr: %s"
                             % (" ".join(argv[:4]), r.returncode, expect, r.stdout, r.stderr))
    return r


def append(fx, folder, raw, flags=""):
    c = fx.conn()
    typ, data = c.append(imapctl.quote(folder), flags or None, None, raw)
    check(typ == "OK", "append failed")
    c.logout()


# --- scenarios -------------------------------------------------------------

def t_initial_and_incremental(tmp):
    fx = Fixture(tmp, "inc")
    try:
        # Malformed messages (no headers, broken MIME, 8-bit junk, no
        # Message-ID, no body) are stored byte-exact like any other.
        odd = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(SRC, "tests", "data", "malformed-*.eml")))]
        check(len(odd) >= 4, "malformed samples missing")
        for raw in odd:
            append(fx, "INBOX", raw)
        r = fx.sync()
        stored = set(h for m in fx.store_state().values() for (_, _, h) in m.values())
        served = [h for (_, _, h) in fx.server_state()["INBOX"].values()]
        check(all(h in stored for h in served), "a malformed message was not stored as served")
        check("QRESYNC" in r.stdout, "tier reported: " + r.stdout)
        fx.assert_in_sync("initial sync")
        check(os.stat(fx.data).st_mode & 0o777 == 0o700, "data dir not 0700")
        db = os.path.join(fx.data, "users", "alice", "store.db")
        # The parent the server does not list is a mailbox that holds no mail.
        con = sqlite3.connect(db)
        noselect = [r[0] for r in con.execute("SELECT name FROM mailboxes WHERE noselect = 1")]
        con.close()
        check(noselect == ["Projects"], "noselect parents: %s" % noselect)
        check(os.stat(db).st_mode & 0o777 == 0o600, "store not 0600")
        # Nothing changed: nothing selected, nothing fetched.
        r = fx.sync()
        check("(0 checked)" in r.stdout and "0 new messages" in r.stdout, r.stdout)
        # New mail, flags and keywords, expunges, folders created/renamed/deleted.
        c = fx.conn()
        c.select("INBOX")
        c.uid("STORE", "1:3", "+FLAGS", "(\\Flagged $Label1 Work)")
        c.uid("STORE", "4", "-FLAGS", "(\\Seen)")
        c.uid("STORE", "5,6", "+FLAGS", "(\\Deleted)")
        c.expunge()
        c.create("Newbox")
        c.create("Gone")
        c.logout()
        append(fx, "Newbox", b"Subject: new\r\n\r\nhello new folder\r\n", "(\\Seen)")
        append(fx, "INBOX", b"Subject: fresh\r\nMessage-ID: <fresh@x>\r\n\r\nfresh mail\r\n")
        fx.sync()
        fx.assert_in_sync("after changes")
        c = fx.conn()
        c.rename("Archive", "Archive2024")
        c.delete("Gone")
        c.logout()
        r = fx.sync()
        check("~1" in r.stdout and "-1" in r.stdout, "rename/delete not seen as such: " + r.stdout)
        fx.assert_in_sync("after rename and delete")
        # Export is byte-exact and servable: compare with the store.
        out = os.path.join(tmp, "export")
        run([BIN, "--data", fx.data, "export", "--user", "alice", "--maildir", out])
        hub = fx.store_state()
        exported = {}
        for dp, _, files in os.walk(out):  # glob skips the hidden .Folder dirs
            for f in files if os.path.basename(dp) == "cur" else ():
                path = os.path.join(dp, f)
                exported.setdefault(hashlib.sha256(open(path, "rb").read()).hexdigest(), path)
        for name, msgs in hub.items():
            for uid, (flags, kw, h) in msgs.items():
                check(h in exported, "message %s/%d missing from export" % (name, uid))
        check(os.path.isdir(os.path.join(out, ".Archive2024", "cur")), "folder layout")
        # Flags and keywords in the names: UIDs 1-3 of INBOX were flagged with
        # two keywords, so their names carry F and two keyword letters.
        names = os.listdir(os.path.join(out, "cur"))
        check(any(re.search(r":2,F[a-z]{2}S?$", n) or re.search(r":2,FR?S?[a-z]*$", n) for n in names),
              "flags not in file names: %s" % names[:5])
        check(os.path.exists(os.path.join(out, "dovecot-keywords")), "dovecot-keywords missing")
        # Dovecot serves the export as it is: same folders, same messages
        # with the same flags and keywords.
        fx2dir = os.path.join(tmp, "export-served")
        os.makedirs(os.path.join(fx2dir, "mail", "alice"))
        shutil.copytree(out, os.path.join(fx2dir, "mail", "alice", "Maildir"))
        fx2 = Fixture.__new__(Fixture)
        fx2.dir = fx2dir
        r2 = subprocess.run(["bash", FIXTURE, "start", fx2dir], capture_output=True, text=True)
        check(r2.returncode == 0, "serving the export failed: " + r2.stderr[-1500:])
        try:
            fx2.env = imapctl.read_env(fx2dir)
            orig, served2 = fx.server_state(), fx2.server_state()
            check(sorted(orig) == sorted(served2), "exported folders: %s vs %s" % (sorted(orig), sorted(served2)))
            for name in orig:
                check(sorted(orig[name].values()) == sorted(served2[name].values()),
                      "export of %s differs when served by Dovecot" % name)
        finally:
            fx2.stop()
        # Another export into the same place is refused.
        r = run([BIN, "--data", fx.data, "export", "--user", "alice", "--maildir", out], expect=1)
        check("not empty" in r.stderr, r.stderr)
    finally:
        fx.stop()


def t_tiers(tmp):
    for cap, tier in (("IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE SORT SPECIAL-USE "
                       "NAMESPACE UIDPLUS LIST-EXTENDED LIST-STATUS ESEARCH CONDSTORE AUTH=PLAIN",
                       "CONDSTORE"),
                      ("IMAP4rev1 LITERAL+ AUTH=PLAIN", "plain")):
        fx = Fixture(tmp, "tier-" + tier, "--capability", cap, count=60)
        try:
            r = fx.sync()
            check(tier in r.stdout, "expected tier %s: %s" % (tier, r.stdout))
            fx.assert_in_sync(tier + " initial")
            c = fx.conn()
            c.select("INBOX")
            c.uid("STORE", "2", "+FLAGS", "(\\Answered kw1)")
            c.uid("STORE", "7,8", "+FLAGS", "(\\Deleted)")
            c.expunge()
            c.logout()
            append(fx, "INBOX", b"Subject: t\r\n\r\ntier test\r\n")
            fx.sync()
            fx.assert_in_sync(tier + " incremental")
        finally:
            fx.stop()


def t_uidvalidity(tmp):
    fx = Fixture(tmp, "uidv", count=80)
    try:
        # A header larger than the parser keeps inline (64 KiB) is streamed
        # and hashed while re-pairing.
        big = b"".join(b"X-Filler-%05d: %s\r\n" % (i, b"y" * 60) for i in range(1500))
        append(fx, "INBOX", b"Subject: big header\r\n" + big + b"\r\nbody\r\n")
        fx.sync()
        fx.doveadm("mailbox", "update", "-u", "alice", "--uid-validity", "12345", "INBOX")
        # Dovecot keeps UIDs on a bare UIDVALIDITY bump; renumber them too by
        # moving the messages away and back, as a server rebuild would.
        c = fx.conn()
        c.select("INBOX")
        c.create("Tmp")
        c.uid("MOVE", "1:*", "Tmp")
        c.select("Tmp")
        c.uid("MOVE", "1:*", "INBOX")
        c.logout()
        fx.doveadm("mailbox", "update", "-u", "alice", "--uid-validity", "54321", "INBOX")
        r = fx.sync()
        check("0 new messages" in r.stdout and "re-paired" in r.stdout,
              "UIDVALIDITY change re-downloaded or not re-paired: " + r.stdout)
        fx.assert_in_sync("after UIDVALIDITY change")
    finally:
        fx.stop()


class CutProxy:
    """A loopback relay that cuts the connection after `limit` bytes from
    the server: a fault a real server cannot be made to produce."""

    def __init__(self, port, limit):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.backend, self.limit = int(port), limit
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                cl, _ = self.srv.accept()
            except OSError:
                return
            be = socket.create_connection(("127.0.0.1", self.backend))
            threading.Thread(target=self.pump, args=(cl, be, None), daemon=True).start()
            threading.Thread(target=self.pump, args=(be, cl, self.limit), daemon=True).start()

    def pump(self, a, b, limit):
        sent = 0
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                if limit is not None and sent + len(d) >= limit:
                    b.sendall(d[:max(0, limit - sent)])
                    break
                b.sendall(d)
                sent += len(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.srv.close()


def t_drop_and_resume(tmp):
    fx = Fixture(tmp, "drop", count=300)
    try:
        proxy = CutProxy(fx.env["IMAPS_PORT"], 2_500_000)
        r = fx.sync(url="imaps://127.0.0.1:%d" % proxy.port, expect=1)
        check("closed the connection" in r.stderr or "failed" in r.stderr, r.stderr)
        partial = sum(len(m) for m in fx.store_state().values())
        check(partial > 0, "nothing kept from before the drop")
        proxy.limit = None  # same address (the account's identity), no cut
        r = fx.sync(url="imaps://127.0.0.1:%d" % proxy.port)
        proxy.close()
        fx.assert_in_sync("after resume")
        total = sum(len(m) for m in fx.store_state().values())
        check(("%d new messages" % (total - partial)) in r.stdout,
              "resume fetched again what it had: %s (had %d of %d)" % (r.stdout, partial, total))
    finally:
        fx.stop()


def t_kill_and_resume(tmp):
    """The process killed (SIGKILL) in the middle of a sync loses nothing
    committed: the next sync fetches only what was not stored yet, and the
    store is consistent (no half-stored message)."""
    fx = Fixture(tmp, "kill", count=2500)
    try:
        ensure_hub_user(fx.data)
        db = os.path.join(fx.data, "users", "alice", "store.db")
        argv = [BIN, "--data", fx.data, "sync", "--user", "alice", "--imap", fx.url(), "--login",
                "alice", "--password-file", fx.env["PASS_FILE"], "--ca-file", fx.env["CA_FILE"],
                "--quiet"]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        stored = 0
        while time.time() < deadline and p.poll() is None:
            try:
                c = sqlite3.connect(db, timeout=1)
                stored = c.execute("SELECT count(*) FROM messages").fetchone()[0]
                c.close()
            except sqlite3.Error:
                stored = 0
            if stored > 0:
                break
            time.sleep(0.02)
        p.kill()
        p.wait()
        check(stored > 0, "nothing committed before the kill")
        c = sqlite3.connect(db)
        check(c.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "store damaged")
        partial = c.execute("SELECT count(*) FROM messages").fetchone()[0]
        orphans = c.execute("SELECT count(*) FROM blobs WHERE id NOT IN (SELECT blob_id FROM messages)").fetchone()[0]
        c.close()
        check(orphans == 0, "half-stored message bytes after the kill: %d" % orphans)
        r = fx.sync()
        total = sum(len(m) for m in fx.store_state().values())
        check(partial < total, "the kill came after the sync had finished (%d of %d)" % (partial, total))
        check(("%d new messages" % (total - partial)) in r.stdout,
              "resume fetched again what was committed: %s (had %d of %d)" % (r.stdout, partial, total))
        fx.assert_in_sync("after kill and resume")
    finally:
        fx.stop()


def t_tls(tmp):
    fx = Fixture(tmp, "tls", count=20)
    try:
        r = fx.sync(url=fx.url("untrusted"), expect=1)
        check("certificate" in r.stderr, "untrusted cert: " + r.stderr)
        r = fx.sync(url=fx.url("imaps", host="localhost"), expect=1)
        check("mismatch" in r.stderr, "wrong host name: " + r.stderr)
        check(not os.path.exists(os.path.join(fx.data, "users", "alice", "store.db")) or
              not fx.store_state().get("INBOX"), "data stored over a refused connection")
        r = fx.sync(url=fx.url("starttls"))
        fx.assert_in_sync("STARTTLS")
        # The password may come on stdin; a wrong one is a clear error.
        pw_text = open(fx.env["PASS_FILE"]).read()
        argv = [BIN, "--data", fx.data, "sync", "--user", "alice", "--imap", fx.url("starttls"),
                "--login", "alice", "--password-file", "-", "--ca-file", fx.env["CA_FILE"], "--quiet"]
        run(argv, stdin=pw_text + "\n")
        r = run(argv, stdin="wrong-password\n", expect=1)
        check("authentication failed" in r.stderr and "wrong-password" not in r.stderr, r.stderr)
        # The password never lands in the data directory.
        pw = open(fx.env["PASS_FILE"], "rb").read()
        for dp, _, files in os.walk(fx.data):
            for f in files:
                path = os.path.join(dp, f)
                check(pw not in open(path, "rb").read(), "password found in " + path)
    finally:
        fx.stop()


def t_bad_server(tmp):
    """A scripted server sending garbage mid-FETCH: clear error, the store
    keeps what it had, the command exits 1."""
    fx = Fixture(tmp, "bad", count=10)
    fx.stop()
    data = fx.data
    ensure_hub_user(data)
    script = [b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] hi\r\n"]
    # A TLS server is needed (we refuse plaintext): wrap with Python ssl.
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(fx.dir, "server.pem"), os.path.join(fx.dir, "server.key"))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve(replies):
        cl, _ = srv.accept()
        s = ctx.wrap_socket(cl, server_side=True)
        f = s.makefile("rb")
        s.sendall(script[0])
        while True:
            line = f.readline()
            if not line:
                break
            tag, cmd = line.split(b" ", 2)[:2]
            cmd = cmd.strip().upper()
            body = replies(cmd, line)
            s.sendall(body.replace(b"TAG", tag))
            if cmd == b"LOGOUT":
                break
        s.close()

    def replies(cmd, line):
        if cmd == b"AUTHENTICATE":
            return b"TAG OK [CAPABILITY IMAP4rev1] ok\r\n"
        if cmd == b"LIST":
            return b'* LIST () "/" INBOX\r\nTAG OK done\r\n'
        if cmd == b"STATUS":
            return b"* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 9)\r\nTAG OK done\r\n"
        if cmd == b"EXAMINE":
            return b"* 2 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n* OK [UIDNEXT 3] x\r\nTAG OK done\r\n"
        if cmd == b"UID" and b"RFC822.SIZE" in line:
            return b"* 1 FETCH (UID 1 RFC822.SIZE 5)\r\n* 2 FETCH (UID 2 RFC822.SIZE 5)\r\nTAG OK done\r\n"
        if cmd == b"UID":
            return (b'* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE "01-Jan-2020 00:00:00 +0000" '
                    b'BODY[] {5}\r\nhello)\r\n* 2 FETCH (UID 2 FLAGS (\\Seen) ((( garbage\x00\r\n')
        return b"TAG OK done\r\n"

    t = threading.Thread(target=serve, args=(replies,), daemon=True)
    t.start()
    r = run([BIN, "--data", data, "sync", "--user", "alice", "--imap",
             "imaps://127.0.0.1:%d" % port, "--login", "alice", "--password-file",
             fx.env["PASS_FILE"], "--ca-file", fx.env["CA_FILE"], "--quiet"], expect=1)
    check("bad response from server" in r.stderr, "garbage not reported clearly: " + r.stderr)
    db = sqlite3.connect(os.path.join(data, "users", "alice", "store.db"))
    n = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    check(n == 1, "message before the garbage not kept (%d)" % n)
    srv.close()


class FakeServer:
    """A scripted IMAP server over TLS (the fixture's certificate) holding
    folders in memory, for faults a real server cannot be made to produce:
    a folder list or UID listing that comes back short once."""

    def __init__(self, fx, folders, caps="IMAP4rev1 SASL-IR AUTH=PLAIN"):
        import ssl
        self.folders = folders            # name -> {uid: bytes}
        self.caps = caps
        self.list_hook = None             # fn(call_no, names) -> names
        self.fetch_flags_hook = None      # fn(folder, uids) -> uids
        self.list_calls = 0
        self.refuse = set()               # folders whose EXAMINE gets NO
        self.noselect = set()             # folders listed as \\Noselect
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(fx.dir, "server.pem"),
                                 os.path.join(fx.dir, "server.key"))
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                cl, _ = self.srv.accept()
            except OSError:
                return
            try:
                self.session(self.ctx.wrap_socket(cl, server_side=True))
            except (OSError, ValueError):
                pass

    @staticmethod
    def uidset(spec, uids):
        out = set()
        for part in spec.split(","):
            a, _, b = part.partition(":")
            hi = max(uids) if uids else 0
            lo_v = hi if a == "*" else int(a)
            hi_v = lo_v if not b else (hi if b == "*" else int(b))
            lo_v, hi_v = min(lo_v, hi_v), max(lo_v, hi_v)
            out |= {u for u in uids if lo_v <= u <= hi_v}
        return sorted(out)

    def session(self, s):
        f = s.makefile("rb")
        s.sendall(b"* OK [CAPABILITY %s] fake\r\n" % self.caps.encode())
        sel = None
        while True:
            line = f.readline()
            if not line:
                return
            words = line.decode().strip().split(" ")
            tag, cmd = words[0], words[1].upper()
            out = []
            if cmd == "AUTHENTICATE" or cmd == "LOGIN":
                out.append("%s OK [CAPABILITY %s] in" % (tag, self.caps))
            elif cmd == "CAPABILITY":
                out += ["* CAPABILITY " + self.caps, tag + " OK"]
            elif cmd == "LIST":
                self.list_calls += 1
                names = sorted(self.folders)
                if self.list_hook:
                    names = self.list_hook(self.list_calls, names)
                out += ['* LIST (%s) "/" "%s"' % ("\\Noselect" if n in self.noselect else "", n)
                        for n in names] + [tag + " OK"]
            elif cmd == "STATUS":
                n = words[2].strip('"')
                uids = sorted(self.folders.get(n, {}))
                out += ['* STATUS "%s" (MESSAGES %d UIDNEXT %d UIDVALIDITY 7)'
                        % (n, len(uids), (max(uids) if uids else 0) + 1), tag + " OK"]
            elif cmd in ("EXAMINE", "SELECT") and words[2].strip('"') in self.refuse:
                out.append(tag + " NO [SERVERBUG] cannot open " + words[2].strip('"'))
            elif cmd in ("EXAMINE", "SELECT"):
                sel = words[2].strip('"')
                uids = sorted(self.folders[sel])
                out += ["* %d EXISTS" % len(uids), "* OK [UIDVALIDITY 7] v",
                        "* OK [UIDNEXT %d] n" % ((max(uids) if uids else 0) + 1), tag + " OK"]
            elif cmd == "UID" and words[2].upper() == "SEARCH":
                uids = sorted(self.folders[sel])
                rng = words[-1]
                out += ["* SEARCH " + " ".join(str(u) for u in self.uidset(rng, uids)), tag + " OK"]
            elif cmd == "UID" and words[2].upper() == "FETCH":
                box = self.folders[sel]
                uids = self.uidset(words[3], sorted(box))
                items = " ".join(words[4:])
                if "BODY.PEEK[]" in items:
                    data = b""
                    for u in uids:
                        seq = sorted(box).index(u) + 1
                        data += (b'* %d FETCH (UID %d FLAGS () INTERNALDATE "01-Jan-2020 00:00:00 +0000" '
                                 b'BODY[] {%d}\r\n' % (seq, u, len(box[u]))) + box[u] + b")\r\n"
                    s.sendall(data)
                else:
                    if "RFC822.SIZE" not in items and self.fetch_flags_hook:
                        uids = self.fetch_flags_hook(sel, uids)
                    for u in uids:
                        seq = sorted(box).index(u) + 1
                        out.append("* %d FETCH (UID %d FLAGS () RFC822.SIZE %d)" % (seq, u, len(box[u])))
                out.append(tag + " OK")
            elif cmd == "LOGOUT":
                s.sendall(("* BYE\r\n%s OK\r\n" % tag).encode())
                return
            else:
                out.append(tag + " OK")
            s.sendall(("".join(x + "\r\n" for x in out)).encode())

    def close(self):
        self.srv.close()


def fake_sync(fx, srv, expect=0):
    return fx.sync(url="imaps://127.0.0.1:%d" % srv.port, expect=expect)


def hub_counts(fx):
    return {n: len(m) for n, m in fx.store_state().items()}


def t_second_look_folders(tmp):
    """A folder list that suddenly comes back nearly empty is looked at a
    second time; if the two looks disagree nothing is deleted."""
    fx = Fixture(tmp, "look-folders", count=0)
    fx.stop()
    msg = lambda i: b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i)
    folders = {n: {u: msg(u) for u in range(1, 6)} for n in ("INBOX", "A", "B", "C", "D")}
    srv = FakeServer(fx, folders)
    fake_sync(fx, srv)
    check(hub_counts(fx) == {n: 5 for n in folders}, "initial: %s" % hub_counts(fx))
    # The first look sees only INBOX, the second everything: keep all.
    srv.list_hook = lambda n, names: ["INBOX"] if n % 2 == 0 else names
    srv.list_calls = 1
    r = fake_sync(fx, srv, expect=1)
    check("two looks" in r.stderr, r.stderr)
    check(hub_counts(fx) == {n: 5 for n in folders}, "flapping list deleted folders")
    # Both looks agree the folders are gone: now they go.
    srv.list_hook = lambda n, names: ["INBOX"]
    fake_sync(fx, srv)
    check(hub_counts(fx) == {"INBOX": 5}, "confirmed deletion not applied: %s" % hub_counts(fx))
    srv.close()


def t_second_look_uids(tmp):
    """Plain tier: a UID listing that suddenly misses most messages is checked
    with UID SEARCH before anything is removed."""
    fx = Fixture(tmp, "look-uids", count=0)
    fx.stop()
    box = {u: b"Subject: %d\r\n\r\nx\r\n" % u for u in range(1, 31)}
    srv = FakeServer(fx, {"INBOX": box})
    fake_sync(fx, srv)
    check(hub_counts(fx) == {"INBOX": 30}, "initial")
    srv.fetch_flags_hook = lambda folder, uids: uids[:2]  # a glitching listing
    fake_sync(fx, srv)
    check(hub_counts(fx) == {"INBOX": 30}, "short listing wiped messages: %s" % hub_counts(fx))
    srv.fetch_flags_hook = None
    for u in range(3, 31):  # a real mass expunge is confirmed by the second look
        del box[u]
    fake_sync(fx, srv)
    check(hub_counts(fx) == {"INBOX": 2}, "confirmed expunge not applied: %s" % hub_counts(fx))
    srv.close()


def t_server_no(tmp):
    """A folder the server refuses (NO) fails with a clear error naming it;
    the other folders are synced; a later sync completes it."""
    fx = Fixture(tmp, "server-no", count=0)
    fx.stop()
    folders = {n: {u: b"Subject: %d\r\n\r\n%s\r\n" % (u, n.encode()) for u in range(1, 4)}
               for n in ("INBOX", "A", "B")}
    srv = FakeServer(fx, folders)
    srv.refuse = {"A"}
    r = fake_sync(fx, srv, expect=1)
    check("A:" in r.stderr and "NO" in r.stderr and "cannot open A" in r.stderr, r.stderr)
    check(hub_counts(fx) == {"INBOX": 3, "A": 0, "B": 3}, "others not synced: %s" % hub_counts(fx))
    srv.refuse = set()
    fake_sync(fx, srv)
    check(hub_counts(fx) == {"INBOX": 3, "A": 3, "B": 3}, "not resumed: %s" % hub_counts(fx))
    srv.close()


def t_compress_and_progress(tmp):
    """COMPRESS=DEFLATE when asked for (auto skips it on loopback), and the
    progress line on a terminal (run under script(1) for a pty)."""
    fx = Fixture(tmp, "compress", count=150)
    try:
        r = fx.sync(extra=("--compress", "yes"))
        check("compressed" in r.stdout, "COMPRESS not used: " + r.stdout)
        fx.assert_in_sync("with COMPRESS=DEFLATE")
        data2 = fx.data + "-tty"
        run([BIN, "--data", data2, "init"])
        ensure_hub_user(data2)
        cmd = " ".join([BIN, "--data", data2, "sync", "--user", "alice", "--imap", fx.url(),
                        "--login", "alice", "--password-file", fx.env["PASS_FILE"],
                        "--ca-file", fx.env["CA_FILE"]])
        out = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                             timeout=300)
        check(out.returncode == 0, "sync on a pty failed: %r" % out.stdout[-500:])
        check(b"msgs" in out.stdout and b"MB/s" in out.stdout, "no progress line on a tty")
        check(b"synced alice" in out.stdout, "no summary")
        r = run([BIN, "--data", data2, "sync", "--user", "alice", "--imap", fx.url(), "--login",
                 "alice", "--password-file", fx.env["PASS_FILE"], "--ca-file", fx.env["CA_FILE"]])
        check("msgs" not in r.stderr, "progress shown without a terminal")
        check("compressed" not in r.stdout, "auto mode compressed on loopback: " + r.stdout)
    finally:
        fx.stop()


def serve_export(tmp, name, out, *start_args):
    """Start a Dovecot (the fixture, with start_args) on a copy of the export
    at out as alice's Maildir; returns the stoppable Fixture."""
    fxdir = os.path.join(tmp, name)
    os.makedirs(os.path.join(fxdir, "mail", "alice"))
    shutil.copytree(out, os.path.join(fxdir, "mail", "alice", "Maildir"))
    fx = Fixture.__new__(Fixture)
    fx.dir = fxdir
    r = subprocess.run(["bash", FIXTURE, "start", fxdir, *start_args], capture_output=True, text=True)
    check(r.returncode == 0, "serving the export failed: " + r.stderr[-1500:])
    fx.env = imapctl.read_env(fxdir)
    return fx


def t_export_names_keywords(tmp):
    """Issue #9 item 8: distinct folders stay distinct ("a.b", "a_b" and the
    hierarchy "a/b" on a server with '/' as separator), each with its own
    keywords; keywords beyond Dovecot's 26 per folder are named on stderr and
    the export exits 1. Served back by Dovecot with the listescape plugin,
    every folder name, message, flag and keyword is the same."""
    fx = Fixture(tmp, "names", "--listescape", "--users", "2", count=0)
    try:
        folders = {"a.b": "DotKw", "a_b": "UnderKw", "a/b": "ChildKw", "~tilde": "TildeKw",
                   "back\\slash": "SlashKw", "x.y/z": "DeepKw"}
        c = fx.conn()
        for name in folders:
            typ, data = c.create(imapctl.quote(name))
            check(typ == "OK", "create %s: %s" % (name, data))
        c.logout()
        for name, kw in folders.items():
            append(fx, name, ("Subject: in %s\r\n\r\nbody of %s\r\n" % (name, name)).encode(),
                   "(\\Seen %s)" % kw)
        # 15 keywords on alice's INBOX and 15 others on bob's: merged into
        # one hosted INBOX, 30 keywords, 4 more than a maildir folder holds.
        for i in range(15):
            append(fx, "INBOX", ("Subject: a%d\r\n\r\nalice %d\r\n" % (i, i)).encode(),
                   "(\\Flagged alice%02d)" % i)
        b = imapctl.connect(fx.dir, "bob", "imaps")
        for i in range(15):
            typ, _ = b.append("INBOX", "(bob%02d)" % i, None,
                              ("Subject: b%d\r\n\r\nbob %d\r\n" % (i, i)).encode())
            check(typ == "OK", "append for bob")
        b.logout()
        fx.sync()
        run([BIN, "--data", fx.data, "sync", "--user", "alice", "--imap", fx.url(),
             "--login", "bob", "--password-file", os.path.join(fx.dir, "bob.pass"),
             "--ca-file", fx.env["CA_FILE"], "--quiet"])
        out = os.path.join(tmp, "names-export")
        r = run([BIN, "--data", fx.data, "export", "--user", "alice", "--maildir", out], expect=1)
        lost = re.findall(r'^folder "INBOX" uid \d+ \(([^)]*)\): keyword "([^"]*)"$', r.stderr, re.M)
        check(len(lost) == 4 and "4 keywords not written" in r.stderr,
              "unwritten keywords not reported exactly: " + r.stderr)
        for path, kw in lost:
            check(os.path.exists(path), "reported file %s missing" % path)
        lost_kws = set(kw for _, kw in lost)
        dirs = sorted(d for d in os.listdir(out) if d.startswith("."))
        check(len(dirs) == len(set(dirs)) and len(dirs) >= len(folders),
              "folders merged: %s" % dirs)
        orig = fx.server_state()
        bob = imapctl.connect(fx.dir, "bob", "imaps")
        bob.select("INBOX", readonly=True)
        typ, data = bob.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        bob.logout()
        for item in data:
            if isinstance(item, tuple):
                fl = re.search(r"FLAGS \(([^)]*)\)", item[0].decode()).group(1).split()
                bits = sum(FLAG_BITS.get(f, 0) for f in fl)
                kws = " ".join(sorted(f for f in fl if not f.startswith("\\")))
                orig["INBOX"][-len(orig["INBOX"]) - 1] = (bits, kws, hashlib.sha256(item[1]).hexdigest())
        served = serve_export(tmp, "names-served", out, "--listescape")
        try:
            got = served.server_state()
            c = served.conn()
            typ, data = c.lsub()
            c.logout()
            subscribed = set()
            for line in data:
                m = imapctl.LIST_RE.match(line) if isinstance(line, bytes) else None
                if m:
                    n = m.group("name")
                    if n.startswith(b'"'):
                        n = n[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
                    subscribed.add(n.decode())
        finally:
            served.stop()
        check(set(folders) <= subscribed, "subscriptions: %s" % sorted(subscribed))
        check(sorted(orig) == sorted(got), "folder names: %s vs %s" % (sorted(orig), sorted(got)))
        for name in orig:
            want = sorted((f, " ".join(k for k in kw.split() if k not in lost_kws), h)
                          for f, kw, h in orig[name].values())
            check(want == sorted(got[name].values()),
                  "folder %s differs when served: %s vs %s" % (name, want[:3], sorted(got[name].values())[:3]))
        for name, kw in folders.items():
            check([k for _, k, _ in got[name].values()] == [kw], "keyword of %s: %s" % (name, got[name]))
    finally:
        fx.stop()


def t_noselect_parent(tmp):
    """A folder that cannot hold mail (a parent the server lists as
    \\Noselect or not at all) is a noselect mailbox in the hub: made up for
    an unlisted parent, selectable with its mail once the server creates it.
    (Dovecot lists a deleted folder that has children without \\Noselect, and
    STATUS/SELECT then fail: not a way to test the other direction.)"""
    fx = Fixture(tmp, "nosel", count=0)
    try:
        c = fx.conn()
        for name in ("Parent", "Parent.Child", "Top.Sub"):
            typ, _ = c.create(imapctl.quote(name))
            check(typ == "OK", "create " + name)
        c.logout()
        append(fx, "Parent", b"Subject: in parent\r\n\r\nx\r\n")
        append(fx, "Top.Sub", b"Subject: in sub\r\n\r\ny\r\n")
        fx.sync()
        fx.assert_in_sync("initial")
        db = os.path.join(fx.data, "users", "alice", "store.db")

        def boxes():
            con = sqlite3.connect(db)
            rows = {n: (ns, cnt) for n, ns, cnt in con.execute(
                "SELECT b.name, b.noselect, (SELECT count(*) FROM messages m "
                "WHERE m.mailbox_id = b.id) FROM mailboxes b")}
            con.close()
            return rows
        got = boxes()
        check(got.get("Parent") == (0, 1) and got.get("Top.Sub") == (0, 1), "before: %s" % got)
        check(got.get("Top") == (1, 0), "the unlisted parent: %s" % got)
        top_id = sqlite3.connect(db).execute("SELECT id FROM mailboxes WHERE name = 'Top'").fetchone()[0]
        # Nothing changed: the made-up parent stays as it is.
        fx.sync()
        check(boxes() == got, "a second sync changed the mailboxes: %s" % boxes())
        c = fx.conn()
        typ, _ = c.create("Top")
        c.logout()
        check(typ == "OK", "create Top")
        append(fx, "Top", b"Subject: now in top\r\n\r\nz\r\n")
        fx.sync()
        fx.assert_in_sync("after the parent was created on the server")
        got = boxes()
        check(got.get("Top") == (0, 1), "after the server made it: %s" % got)
        again = sqlite3.connect(db).execute("SELECT id FROM mailboxes WHERE name = 'Top'").fetchone()[0]
        check(again == top_id, "the mailbox was made again instead of becoming selectable")
    finally:
        fx.stop()


def t_noselect_flag(tmp):
    """A folder the server starts listing as \\Noselect (its mail gone on
    the server) becomes a noselect mailbox without its server messages, the
    same mailbox; listed selectable again, it is synced in full."""
    fx = Fixture(tmp, "nosel-flag", count=0)
    fx.stop()
    folders = {"INBOX": {1: b"Subject: i\r\n\r\ni\r\n"}, "A": {1: b"Subject: a\r\n\r\na\r\n"},
               "A/B": {1: b"Subject: b\r\n\r\nb\r\n"}}
    srv = FakeServer(fx, folders)
    db = os.path.join(fx.data, "users", "alice", "store.db")

    def boxes():
        con = sqlite3.connect(db)
        rows = {n: (i, ns, cnt) for i, n, ns, cnt in con.execute(
            "SELECT b.id, b.name, b.noselect, (SELECT count(*) FROM messages m "
            "WHERE m.mailbox_id = b.id) FROM mailboxes b")}
        con.close()
        return rows
    try:
        fake_sync(fx, srv)
        before = boxes()
        check(before["A"][1:] == (0, 1) and before["A/B"][1:] == (0, 1), "first: %s" % before)
        srv.noselect = {"A"}
        fake_sync(fx, srv)
        got = boxes()
        check(got["A"] == (before["A"][0], 1, 0) and got["A/B"][1:] == (0, 1), "noselect: %s" % got)
        srv.noselect = set()
        fake_sync(fx, srv)
        got = boxes()
        check(got["A"] == (before["A"][0], 0, 1), "selectable again: %s" % got)
    finally:
        srv.close()


SCENARIOS = {
    "incremental": t_initial_and_incremental,
    "tiers": t_tiers,
    "uidvalidity": t_uidvalidity,
    "drop": t_drop_and_resume,
    "kill": t_kill_and_resume,
    "tls": t_tls,
    "bad-server": t_bad_server,
    "second-look-folders": t_second_look_folders,
    "second-look-uids": t_second_look_uids,
    "compress-progress": t_compress_and_progress,
    "server-no": t_server_no,
    "export-names-keywords": t_export_names_keywords,
    "noselect-parent": t_noselect_parent,
    "noselect-flag": t_noselect_flag,
}


def run_scenarios(scenarios, prefix, names):
    """Run the named scenarios (all when none are named) in one temporary
    directory, report each, and exit 0 only if all passed."""
    names = names or list(scenarios)
    tmp = tempfile.mkdtemp(prefix=prefix)
    os.chmod(tmp, 0o755)
    passed, failed = 0, []
    for n in names:
        t0 = time.time()
        try:
            scenarios[n](tmp)
            passed += 1
            print("ok   %s (%.1f s)" % (n, time.time() - t0), flush=True)
        except Exception as e:  # report and go on with the next scenario
            failed.append(n)
            print("FAIL %s: %s" % (n, e), flush=True)
    if not failed:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("kept %s for inspection" % tmp)
    print("%d passed, %d failed" % (passed, len(failed)))
    sys.exit(1 if failed else 0)


def main():
    run_scenarios(SCENARIOS, "mk-sync-test-", sys.argv[1:])


if __name__ == "__main__":
    main()
