#!/usr/bin/env python3
"""Faults a sync must survive without losing mail, against a real Dovecot.

  enospc               the data directory on a small tmpfs: syncs (initial,
                       incremental, UIDVALIDITY repair) run into a full disk
                       at many different points; once space is freed, one
                       more sync must bring every message, byte-exact, with
                       its flags and INTERNALDATE (skipped, exit 77, where a
                       tmpfs cannot be mounted)
  enospc-condstore,    the same, fewer points, against a server offering
  enospc-plain         only CONDSTORE, or neither CONDSTORE nor QRESYNC
  nil-body             a scripted server sends NIL for one body: the UID is
                       not skipped, the next sync fetches it
  uidvalidity-clash    two folders with the same UIDVALIDITY (Courier gives
                       every folder made in the same second the same one):
                       X deleted and Y created is no rename of X to Y
  repair-date          after a UIDVALIDITY change the re-paired messages take
                       the server's INTERNALDATE

usage: sync_faults_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import base64, datetime, hashlib, os, random, re, sqlite3, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sync_test  # noqa: E402
from sync_test import BIN, Fixture, FakeServer, append, check, ensure_hub_user, run, run_scenarios  # noqa: E402
import imapctl  # noqa: E402

SKIP = 77


class Skip(Exception):
    pass


def message(rng, i, size, folder):
    """A message of about size bytes that compresses badly (random base64)."""
    body = base64.encodebytes(rng.randbytes(size * 3 // 4)).replace(b"\n", b"\r\n")
    return (b"From: a%d@example.org\r\nTo: alice@example.org\r\nSubject: %s %d\r\n"
            b"Message-ID: <%s-%d@example.org>\r\nDate: Mon, 1 Jun 2020 10:00:00 +0000\r\n"
            b"\r\n" % (i, folder.encode(), i, folder.encode(), i)) + body


def append_dated(fx, folder, raw, when, flags=None):
    c = fx.conn()
    typ, _ = c.append(imapctl.quote(folder), flags, imapctl_time(when), raw)
    check(typ == "OK", "append to %s failed" % folder)
    c.logout()


def imapctl_time(when):
    return '"%s"' % time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(when))


def server_dates(fx):
    """{folder: {uid: INTERNALDATE as seconds since the epoch}}"""
    c = fx.conn()
    out = {}
    for name in imapctl.folders(c):
        c.select(imapctl.quote(name), readonly=True)
        typ, data = c.uid("FETCH", "1:*", "(UID INTERNALDATE)")
        dates = {}
        for item in data:
            if not item:
                continue
            line = item.decode() if isinstance(item, bytes) else item[0].decode()
            m = re.search(r'UID (\d+).*INTERNALDATE "([^"]+)"', line) or \
                re.search(r'INTERNALDATE "([^"]+)".*UID (\d+)', line)
            if not m:
                continue
            uid, d = (m.group(1), m.group(2)) if m.group(1).isdigit() else (m.group(2), m.group(1))
            dates[int(uid)] = int(datetime.datetime.strptime(d.strip(), "%d-%b-%Y %H:%M:%S %z").timestamp())
        out[name] = dates
    c.logout()
    return out


def store_dates(fx):
    db = sqlite3.connect(os.path.join(fx.data, "users", "alice", "store.db"))
    out = {}
    for mid, name in db.execute("SELECT id, name FROM mailboxes"):
        out[name] = dict(db.execute("SELECT uid, internaldate FROM messages WHERE mailbox_id = ?",
                                    (mid,)).fetchall())
    db.close()
    return out


def assert_exact(fx, what):
    """Same folders, same messages byte-exact with flags, keywords and
    INTERNALDATE as the server."""
    fx.assert_in_sync(what)
    s, h = server_dates(fx), store_dates(fx)
    for name in s:
        check(s[name] == h.get(name), "%s: INTERNALDATEs of %s differ: server %s hub %s"
              % (what, name, sorted(s[name].items())[:4], sorted(h.get(name, {}).items())[:4]))


# --- disk full ---------------------------------------------------------------

class Tmpfs:
    def __init__(self, path, size_mb):
        self.path = path
        os.makedirs(path, exist_ok=True)
        if os.geteuid() != 0:
            raise Skip("mounting a tmpfs needs root")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % size_mb,
                            "tmpfs", path], capture_output=True, text=True)
        if r.returncode != 0:
            raise Skip("cannot mount a tmpfs: " + r.stderr.strip())
        self.filler = os.path.join(path, "filler")

    def free(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave):
        """Take all space but `leave` bytes."""
        self.unfill()
        n = self.free() - leave
        if n > 0:
            fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, n)
            finally:
                os.close(fd)

    def unfill(self):
        if os.path.exists(self.filler):
            os.unlink(self.filler)

    def umount(self):
        subprocess.run(["umount", self.path], capture_output=True)


def reset_data(fx, data):
    subprocess.run(["rm", "-rf", data])
    fx.data = data
    run([BIN, "--data", data, "init"])
    ensure_hub_user(data)


CONDSTORE_CAPS = ("IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE SORT SPECIAL-USE NAMESPACE UIDPLUS "
                  "LIST-EXTENDED LIST-STATUS ESEARCH CONDSTORE AUTH=PLAIN")
PLAIN_CAPS = "IMAP4rev1 LITERAL+ AUTH=PLAIN"


def t_enospc(tmp):
    enospc(tmp, "enospc", (), 14, [0, 16384, 65536, 200000, 1200000, 2500000], [0, 65536, 1500000])


def t_enospc_condstore(tmp):
    enospc(tmp, "enospc-condstore", ("--capability", CONDSTORE_CAPS), 5, [0, 65536, 1200000],
           [0, 1500000])


def t_enospc_plain(tmp):
    enospc(tmp, "enospc-plain", ("--capability", PLAIN_CAPS), 5, [0, 65536, 1200000],
           [0, 1500000])


def enospc(tmp, name, caps, initial_steps, incremental_free, repair_free):
    fx = Fixture(tmp, name, *caps, count=0)
    fs = None
    try:
        fs = Tmpfs(os.path.join(tmp, name + "-mnt"), 48)
        rng = random.Random(9)
        base = 1600000000
        # Three folders: small messages, medium ones, and one folder larger
        # than the store's page cache (8 MiB), so writes spill into the WAL
        # in the middle of a transaction, not only at its commit.
        c = fx.conn()
        for f in ("Medium", "Big"):
            c.create(f)
        c.logout()
        corpus = [("INBOX", 10, 3000), ("Medium", 8, 150000), ("Big", 10, 1000000)]
        i = 0
        for folder, n, size in corpus:
            for _ in range(n):
                i += 1
                append_dated(fx, folder, message(rng, i, size, folder), base + i * 3600,
                             "(\\Seen)" if i % 3 == 0 else None)
        data = os.path.join(fs.path, "data")
        # Size the space the initial sync needs, then sweep the free space
        # below it so the disk fills at many points: while creating the
        # folders, inside each folder's fetch, at each commit.
        reset_data(fx, data)
        before = fs.free()
        fx.sync()
        need = before - fs.free()
        assert_exact(fx, "initial sync with room")
        steps = [int(need * k / initial_steps) for k in range(initial_steps)]
        failures = 0
        for leave in steps:
            reset_data(fx, data)
            fs.fill(leave)
            r = fx.sync(expect=None)
            failures += r.returncode != 0
            fs.unfill()
            fx.sync()
            assert_exact(fx, "initial sync into %d free bytes, then room" % leave)
        check(failures >= len(steps) // 2, "the disk was rarely full (%d of %d runs failed)"
              % (failures, len(steps)))
        # Incremental: new mail in two folders, flag changes, an expunge;
        # synced into a full disk at different points, then with room.
        for k, leave in enumerate(incremental_free):
            c = fx.conn()
            c.select("INBOX")
            c.uid("STORE", "1:*", "+FLAGS" if k % 2 == 0 else "-FLAGS", "(\\Flagged kw%d)" % k)
            typ, data_ = c.uid("SEARCH", "ALL")
            uids = data_[0].split()
            if len(uids) > 4:
                c.uid("STORE", uids[0], "+FLAGS", "(\\Deleted)")
                c.expunge()
            c.logout()
            for j in range(3):
                i += 1
                append_dated(fx, "INBOX", message(rng, i, 3000, "INBOX"), base + i * 3600)
            i += 1
            append_dated(fx, "Big", message(rng, i, 1000000, "Big"), base + i * 3600)
            fs.fill(leave)
            r = fx.sync(expect=None)
            fs.unfill()
            fx.sync()
            assert_exact(fx, "incremental sync %d into %d free bytes, then room" % (k, leave))
        # UIDVALIDITY change: re-pairing plus fetching what is new, into a
        # full disk, then with room.
        for k, leave in enumerate(repair_free):
            fx.doveadm("mailbox", "update", "-u", "alice", "--uid-validity",
                       str(777000 + k), "Medium")
            i += 1
            append_dated(fx, "Medium", message(rng, i, 150000, "Medium"), base + i * 3600)
            fs.fill(leave)
            fx.sync(expect=None)
            fs.unfill()
            fx.sync()
            assert_exact(fx, "UIDVALIDITY repair %d into %d free bytes, then room" % (k, leave))
    finally:
        fx.stop()
        if fs is not None:
            fs.umount()


# --- a message body that does not arrive ---------------------------------------

class NilBodyServer(FakeServer):
    """Sends NIL instead of the body of one UID, once."""

    def __init__(self, fx, folders, nil_uid):
        super().__init__(fx, folders)
        self.nil_uid = nil_uid

    def session(self, s):
        orig = s.sendall

        def sendall(data):
            if self.nil_uid is not None:
                box = self.folders["INBOX"]
                body = box[self.nil_uid]
                lit = b"BODY[] {%d}\r\n" % len(body) + body
                pos = data.find(b"(UID %d FLAGS" % self.nil_uid)
                if pos >= 0 and lit in data[pos:]:
                    data = data[:pos] + data[pos:].replace(lit, b"BODY[] NIL", 1)
                    self.nil_uid = None
            return orig(data)
        s.sendall = sendall
        return super().session(s)


def t_nil_body(tmp):
    fx = Fixture(tmp, "nil", count=0)
    fx.stop()
    box = {u: b"Subject: %d\r\n\r\nbody %d\r\n" % (u, u) for u in range(1, 9)}
    srv = NilBodyServer(fx, {"INBOX": box}, 4)
    try:
        r = sync_test.fake_sync(fx, srv, expect=1)
        check("NIL" in r.stderr, "NIL body not reported: " + r.stderr)
        sync_test.fake_sync(fx, srv)
        have = fx.store_state()["INBOX"]
        check(sorted(have) == sorted(box), "UIDs missing after the NIL body: %s" %
              sorted(set(box) - set(have)))
        for u, raw in box.items():
            check(have[u][2] == hashlib.sha256(raw).hexdigest(), "UID %d differs" % u)
    finally:
        srv.close()


# --- folders sharing a UIDVALIDITY ---------------------------------------------

def uidvalidity(fx, folder):
    c = fx.conn()
    typ, data = c.status(imapctl.quote(folder), "(UIDVALIDITY)")
    c.logout()
    return int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))


def t_uidvalidity_clash(tmp):
    fx = Fixture(tmp, "clash", count=0)
    try:
        c = fx.conn()
        c.create("X")
        c.logout()
        for k in range(3):
            append(fx, "X", b"Subject: x%d\r\nMessage-ID: <x%d@x>\r\n\r\nmail of X %d\r\n" % (k, k, k))
        fx.sync()
        assert_exact(fx, "X synced")
        # Within the same second (as Courier names it): Y with three other
        # messages and X's UIDVALIDITY, and X deleted.
        v = uidvalidity(fx, "X")
        c = fx.conn()
        c.create("Y")
        c.logout()
        for k in range(3):
            append(fx, "Y", b"Subject: y%d\r\nMessage-ID: <y%d@y>\r\n\r\nother mail of Y %d\r\n" % (k, k, k))
        fx.doveadm("mailbox", "update", "-u", "alice", "--uid-validity", str(v), "Y")
        check(uidvalidity(fx, "Y") == v, "could not give Y the UIDVALIDITY of X")
        c = fx.conn()
        c.delete("X")
        c.logout()
        r = fx.sync()
        check("~1" not in r.stdout, "X deleted and Y created taken for a rename: " + r.stdout)
        assert_exact(fx, "after X deleted and Y created with the same UIDVALIDITY")
        # A real rename with the same UIDVALIDITY is still one (no download).
        c = fx.conn()
        c.rename("Y", "Z")
        c.logout()
        r = fx.sync()
        check("~1" in r.stdout and "0 new messages" in r.stdout,
              "a real rename not taken as one: " + r.stdout)
        assert_exact(fx, "after renaming Y to Z")
    finally:
        fx.stop()


# --- re-paired messages take the server's INTERNALDATE ---------------------------

def t_repair_date(tmp):
    fx = Fixture(tmp, "repair-date", count=0)
    try:
        for k in range(6):
            append_dated(fx, "INBOX", b"Subject: d%d\r\n\r\ndated %d\r\n" % (k, k),
                         1500000000 + k * 86400)
        fx.sync()
        assert_exact(fx, "initial")
        # A server rebuild: the messages come back with new UIDs and new
        # internal dates (as a restore from backup gives them) under a new
        # UIDVALIDITY.
        c = fx.conn()
        c.select("INBOX")
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
        raws = [item[1] for item in data if isinstance(item, tuple)]
        c.uid("STORE", "1:*", "+FLAGS", "(\\Deleted)")
        c.expunge()
        c.logout()
        for k, raw in enumerate(raws):
            append_dated(fx, "INBOX", raw, 1600000000 + k * 3600)
        fx.doveadm("mailbox", "update", "-u", "alice", "--uid-validity", "4242", "INBOX")
        r = fx.sync()
        check("re-paired" in r.stdout and "0 new messages" in r.stdout,
              "not re-paired: " + r.stdout)
        assert_exact(fx, "after the UIDVALIDITY change")
    finally:
        fx.stop()


SCENARIOS = {
    "enospc": t_enospc,
    "enospc-condstore": t_enospc_condstore,
    "enospc-plain": t_enospc_plain,
    "nil-body": t_nil_body,
    "uidvalidity-clash": t_uidvalidity_clash,
    "repair-date": t_repair_date,
}


def main():
    names = sys.argv[1:] or list(SCENARIOS)
    if any(n.startswith("enospc") for n in names):
        # Skipped as a whole (exit 77) only when nothing else was asked for.
        probe = os.path.join("/tmp", "mk-tmpfs-probe-%d" % os.getpid())
        try:
            Tmpfs(probe, 1).umount()
        except Skip as e:
            print("skip enospc scenarios: %s" % e)
            names = [n for n in names if not n.startswith("enospc")]
            if not names:
                sys.exit(SKIP)
        finally:
            try:
                os.rmdir(probe)
            except OSError:
                pass
    run_scenarios(SCENARIOS, "mk-sync-faults-", names)


if __name__ == "__main__":
    main()
