#!/usr/bin/env python3
"""Kill at every commit (as isync's run-tests.pl does): the process is ended
with SIGKILL right after its Nth durable commit (MK_CRASH_AFTER_COMMIT=N,
test builds), for every N of

  initial       the first sync of a stored account
  incremental   a sync after new mail, flag and keyword changes, expunges, a
                folder renamed and one deleted on the server
  remove        `account remove --user U ID --all-devices`

Each kill is followed by a resume (the same command without the variable)
that must succeed; then the hub must hold what the server has, byte-exact,
with flags, keywords and INTERNALDATE (sync), or nothing of the account
and no credential (removal), the store must pass integrity_check with no
half-stored message, and `audit --verify` must pass.

Bounds (CI budget): a corpus of 3 folders and 20 small messages keeps a run
in the tens of commits; every N is tried up to MAX_N (60), beyond that every
STRIDE-th (5), and the loop ends when a run finishes without being killed.

usage: sync_crash_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import hashlib, os, shutil, sqlite3, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import BIN, Fixture, check, run, run_scenarios  # noqa: E402
from sync_faults_test import append_dated, server_dates  # noqa: E402
import imapctl  # noqa: E402

MAX_N, STRIDE, HARD_LIMIT = 60, 5, 400
KEY = "account:1"


def crash_points():
    n = 1
    while n <= HARD_LIMIT:
        yield n
        n += 1 if n < MAX_N else STRIDE


class Hub:
    def __init__(self, tmp, name):
        self.fx = Fixture(tmp, name, count=0)
        self.dir = self.fx.data
        self.tmp = tmp
        c = self.fx.conn()
        for f in ("Work", "Old"):
            c.create(f)
        c.logout()
        base = 1577836800
        for i in range(20):
            folder = ("INBOX", "Work", "Old")[i % 3]
            raw = (b"From: s%d@example.org\r\nSubject: crash corpus %d\r\n"
                   b"Message-ID: <c%d@example.org>\r\n\r\nbody %d\r\n" % (i, i, i, i)) + b"x" * (i * 97)
            append_dated(self.fx, folder, raw, base + i * 86400,
                         "(\\Seen $Label%d)" % (i % 2) if i % 4 == 0 else None)
        self.mk("user", "add", "alice")
        self.mk("account", "add", "--user", "alice", "--imap", self.fx.url(), "--login", "alice",
                "--password-file", os.path.join(self.fx.dir, "alice.pass"),
                "--ca-file", self.fx.env["CA_FILE"], "--consent")

    def argv(self, *args):
        return [BIN, "--data", self.dir, *args]

    def mk(self, *args, expect=0):
        return run(self.argv(*args), expect=expect)

    def run_killed(self, n, *args):
        env = dict(os.environ, MK_CRASH_AFTER_COMMIT=str(n))
        return subprocess.run(self.argv(*args), capture_output=True, text=True, env=env,
                              timeout=300)

    def snapshot(self, name):
        path = os.path.join(self.tmp, name)
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(self.dir, path, symlinks=True)
        return path

    def restore(self, snap):
        shutil.rmtree(self.dir)
        shutil.copytree(snap, self.dir, symlinks=True)

    def store_path(self):
        return os.path.join(self.dir, "users", "alice", "store.db")

    def store_state(self):
        """{folder: {uid: (flags, keywords, sha256, internaldate)}} of the account."""
        db = sqlite3.connect(self.store_path())
        state = {}
        for mid, name in db.execute("SELECT b.id, b.name FROM mailboxes b JOIN accounts a "
                                    "ON a.id = b.account_id WHERE a.key = ?", (KEY,)):
            state[name] = {uid: (fl, kw, hashlib.sha256(data).hexdigest(), date)
                           for uid, fl, kw, data, date in db.execute(
                               "SELECT m.uid, m.flags, m.keywords, bl.data, m.internaldate "
                               "FROM messages m JOIN blobs bl ON bl.id = m.blob_id "
                               "WHERE m.mailbox_id = ?", (mid,))}
        db.close()
        return state

    def server_state(self):
        s, d = self.fx.server_state(), server_dates(self.fx)
        return {f: {u: v + (d[f][u],) for u, v in msgs.items()} for f, msgs in s.items()}

    def check_store_sound(self, what):
        db = sqlite3.connect(self.store_path())
        check(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", what + ": store damaged")
        orphans = db.execute("SELECT count(*) FROM blobs WHERE id NOT IN "
                             "(SELECT blob_id FROM messages) AND id NOT IN "
                             "(SELECT blob_id FROM uploads)").fetchone()[0]
        db.close()
        check(orphans == 0, "%s: %d half-stored message(s)" % (what, orphans))

    def check_audit(self, what):
        r = run(self.argv("audit", "--user", "alice", "--verify"), expect=None)
        check(r.returncode == 0, "%s: audit --verify failed: %s %s" % (what, r.stdout[-300:], r.stderr[-300:]))

    def check_exact(self, what):
        s, h = self.server_state(), self.store_state()
        check(sorted(s) == sorted(h), "%s: folders differ: server %s hub %s" % (what, sorted(s), sorted(h)))
        for f in s:
            if s[f] != h[f]:
                diff = sorted(u for u in set(s[f]) | set(h[f]) if s[f].get(u) != h[f].get(u))
                raise AssertionError("%s: folder %s differs at UIDs %s: server %s hub %s" % (
                    what, f, diff[:5], s[f].get(diff[0]), h[f].get(diff[0])))
        self.check_store_sound(what)
        self.check_audit(what)

    def stop(self):
        self.fx.stop()


def kill_loop(h, snap, args, after_resume, what):
    """Restore snap, run args killed after commit N, resume, check; for every
    crash point until a run completes. Returns the number of kills."""
    kills = 0
    for n in crash_points():
        h.restore(snap)
        r = h.run_killed(n, *args)
        if r.returncode == 0:
            break
        check(r.returncode == -9, "%s: run killed at commit %d exited %d, not by the kill: %s"
              % (what, n, r.returncode, r.stderr[-500:]))
        kills += 1
        r = run(h.argv(*args), expect=None)
        check(r.returncode == 0, "%s: resume after the kill at commit %d failed (%d): %s"
              % (what, n, r.returncode, r.stderr[-500:]))
        after_resume("%s, killed after commit %d and resumed" % (what, n))
    else:
        raise AssertionError("%s: still killed after %d commits" % (what, HARD_LIMIT))
    check(kills > 0, what + ": no commit to kill at (is this a MK_TEST_HOOKS build?)")
    after_resume(what + ", not killed")
    print("     %s: killed and resumed at %d commits" % (what, kills), flush=True)
    return kills


SYNC = ("sync", "--user", "alice", "--quiet")


def t_initial(tmp):
    h = Hub(tmp, "crash-initial")
    try:
        snap = h.snapshot("crash-initial-snap")
        kill_loop(h, snap, SYNC, h.check_exact, "initial sync")
    finally:
        h.stop()


def t_incremental(tmp):
    h = Hub(tmp, "crash-incremental")
    try:
        h.mk(*SYNC)
        h.check_exact("initial sync")
        snap = h.snapshot("crash-incremental-snap")
        # Changes another client makes: new mail in two folders, flags and
        # keywords, expunges, a folder renamed and one deleted.
        c = h.fx.conn()
        c.select("INBOX")
        c.uid("STORE", "1:2", "+FLAGS", "(\\Flagged Work)")
        c.uid("STORE", "3", "-FLAGS", "(\\Seen $Label0)")
        c.uid("STORE", "4", "+FLAGS", "(\\Deleted)")
        c.expunge()
        c.create("Fresh")
        c.rename("Work", "Work2")
        c.delete("Old")
        c.logout()
        for i in range(3):
            append_dated(h.fx, "INBOX", b"Subject: new %d\r\n\r\nnew mail %d\r\n" % (i, i),
                         1600000000 + i)
        append_dated(h.fx, "Work2", b"Subject: w\r\n\r\nnew in the renamed folder\r\n", 1600000100)
        append_dated(h.fx, "Fresh", b"Subject: f\r\n\r\nnew folder\r\n", 1600000200, "(\\Seen)")
        kill_loop(h, snap, SYNC, h.check_exact, "incremental sync")
    finally:
        h.stop()


def t_remove(tmp):
    h = Hub(tmp, "crash-remove")
    try:
        h.mk(*SYNC)
        h.check_exact("initial sync")
        snap = h.snapshot("crash-remove-snap")
        bodies = [b"crash corpus %d" % i for i in (3, 11, 17)]

        def removed(what):
            db = sqlite3.connect(h.store_path())
            n = db.execute("SELECT count(*) FROM mailboxes b JOIN accounts a ON "
                           "a.id = b.account_id WHERE a.key = ?", (KEY,)).fetchone()[0]
            msgs = db.execute("SELECT count(*) FROM messages").fetchone()[0]
            db.close()
            check(n == 0 and msgs == 0, "%s: %d folders, %d messages left" % (what, n, msgs))
            hub = sqlite3.connect(os.path.join(h.dir, "hub.db"))
            secrets = hub.execute("SELECT count(*) FROM secrets").fetchone()[0]
            accounts = hub.execute("SELECT count(*) FROM accounts").fetchone()[0]
            hub.close()
            check(secrets == 0 and accounts == 0,
                  "%s: %d credentials, %d accounts left" % (what, secrets, accounts))
            for dp, _, files in os.walk(h.dir):
                for f in files:
                    data = open(os.path.join(dp, f), "rb").read()
                    for b in bodies:
                        check(b not in data, "%s: mail left in %s" % (what, os.path.join(dp, f)))
            h.check_store_sound(what)
            h.check_audit(what)

        kill_loop(h, snap, ("account", "remove", "--user", "alice", "1", "--all-devices"),
                  removed, "account removal")
    finally:
        h.stop()


SCENARIOS = {
    "initial": t_initial,
    "incremental": t_incremental,
    "remove": t_remove,
}


def main():
    run_scenarios(SCENARIOS, "mk-sync-crash-", sys.argv[1:])


if __name__ == "__main__":
    main()
