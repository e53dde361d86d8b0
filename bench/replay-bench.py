#!/usr/bin/env python3
"""Replay benchmark: device changes carried to a real Dovecot by mailkeep,
against a minimal imaplib client sending the same batched commands, in the
same run against the same server.

    bench/replay-bench.py [--count N] [--tier QRESYNC|CONDSTORE|plain] [--keep]

Environment: MK_BIN (default build/mailkeep).

Setup: one Dovecot (tests/fixture/dovecot.sh) seeded with 4 x N messages in
INBOX (N = 1000 by default) and empty folders M1.. and R1..; a hub user with the
account, synced; `mailkeep serve` for the device API. Two phases, each once
by mailkeep and once by the minimal client, on different messages of the
same folder:

  keywords  N keyword changes: JMAP Email/set requests (500 each, the
            server's maxObjectsInSet) adds $bench to N messages; `mailkeep
            sync` replays them. The reference client sends what the replay
            sends: SELECT INBOX (CONDSTORE), then per 1000 UIDs one
            UID STORE set (UNCHANGEDSINCE m) +FLAGS.SILENT ($bench).
  moves     N moves: Email/set mailboxIds, INBOX -> M1 in the first round,
            M1 -> M2 in the second...; the replay sends per 1000: UID SEARCH
            UID set (which of them the server still has), UID MOVE set Mk.
            The reference client sends the same (INBOX -> R1 -> R2 ...).

--tier nouidplus hides UIDPLUS and MOVE from mailkeep (COPY, STORE \Deleted,
SEARCH DELETED, EXPUNGE, and the new UIDs found by one header FETCH); the
reference still sends UID MOVE there, so only mailkeep's time means much.

Each phase runs --rounds times (default 3; a new keyword, the next folder)
and the best time of each side counts: the machine is shared, and the best
run is the one least disturbed.

What is timed: mailkeep_s is the replay alone, as `mailkeep sync` reports it
("replayed ... X s": from reading the pending changes to the last commit,
with every SQLite commit of the changes' state and the UID pairing);
reference_s is from the SELECT to the last answer (its connection and login
are not timed, nor are mailkeep's). ratio = mailkeep_s / reference_s;
target <= 1.5. The device API time (the JMAP requests) is shown apart.
"""
import argparse, os, re, shutil, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
os.environ.setdefault("MK_BIN", os.path.join(ROOT, "build", "mailkeep"))
import replay_test  # noqa: E402
from replay_test import CAPS, Hub, check  # noqa: E402
from sync_test import Fixture  # noqa: E402

BATCH = 1000  # changes per command, as the replay batches them
API_BATCH = 500  # objects per Email/set (the server's maxObjectsInSet)


def uidset(uids):
    out, i = [], 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        out.append(str(uids[i]) if i == j else "%d:%d" % (uids[i], uids[j]))
        i = j + 1
    return ",".join(out)


def replay_seconds(out):
    m = re.search(r"replayed .*?: (\d+) device changes in (\d+) commands.*?, ([0-9.]+) s", out)
    check(m is not None, "no replay line in: " + out)
    return int(m.group(1)), int(m.group(2)), float(m.group(3))


def reference_keywords(fx, uids, condstore, keyword):
    c = fx.conn()
    t0 = time.perf_counter()
    typ, data = c._simple_command("SELECT", "INBOX", "(CONDSTORE)") if condstore else c.select("INBOX")
    hms = 0
    if condstore:
        typ, data = c._untagged_response(typ, data, "OK")
        for d in data or []:
            m = re.search(rb"HIGHESTMODSEQ (\d+)", d or b"")
            if m:
                hms = int(m.group(1))
        c.state = "SELECTED"
    for i in range(0, len(uids), BATCH):
        s = uidset(uids[i:i + BATCH])
        args = ("(UNCHANGEDSINCE %d)" % hms, "+FLAGS.SILENT") if hms else ("+FLAGS.SILENT",)
        typ, _ = c.uid("STORE", s, *args, "(%s)" % keyword)
        check(typ == "OK", "reference STORE")
    t = time.perf_counter() - t0
    c.logout()
    return t


def reference_moves(fx, source, uids, target):
    c = fx.conn()
    t0 = time.perf_counter()
    typ, _ = c.select(source)
    check(typ == "OK", "select")
    for i in range(0, len(uids), BATCH):
        s = uidset(uids[i:i + BATCH])
        typ, _ = c.uid("SEARCH", "UID", s)
        check(typ == "OK", "reference SEARCH")
        typ, _ = c.uid("MOVE", s, target)
        check(typ == "OK", "reference MOVE")
    t = time.perf_counter() - t0
    c.logout()
    return t


def server_uids(fx, folder="INBOX"):
    c = fx.conn()
    c.select(folder, readonly=True)
    typ, data = c.uid("SEARCH", "ALL")
    c.logout()
    return sorted(int(x) for x in data[0].split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--tier", default="QRESYNC", choices=["QRESYNC", "CONDSTORE", "plain", "nouidplus"])
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="each phase this often; the best counts")
    a = ap.parse_args()
    n = a.count
    tmp = tempfile.mkdtemp(prefix="mk-replay-bench-")
    os.chmod(tmp, 0o755)
    caps = CAPS[a.tier]
    fx = Fixture(tmp, "bench", *(("--capability", caps) if caps else ()), count=0)
    out = subprocess.run(["bash", os.path.join(ROOT, "tests", "fixture", "dovecot.sh"), "seed", fx.dir,
                          "--count", str(4 * n), "--seed", "7", "--folders", "INBOX:100"],
                         capture_output=True, text=True)
    check(out.returncode == 0, "seed: " + out.stderr[-2000:])
    hub = None
    try:
        rounds = a.rounds
        c = fx.conn()
        for k in range(1, rounds + 1):
            c.create("M%d" % k)
            c.create("R%d" % k)
        c.logout()
        t0 = time.perf_counter()
        hub = Hub(fx, tmp, "bench")
        print("setup: %d messages, initial sync and serve in %.1f s" % (4 * n, time.perf_counter() - t0))
        uids = server_uids(fx)
        check(len(uids) >= 4 * n, "seeded %d" % len(uids))
        mk_kw, mk_mv = uids[0:n], uids[n:2 * n]
        ref_kw, ref_mv = uids[2 * n:3 * n], uids[3 * n:4 * n]
        # Email ids of the hub's INBOX messages by server UID.
        db = hub.db()
        by_uid = dict(db.execute(
            "SELECT m.uid, m.email_id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
            "WHERE x.name = 'INBOX' AND x.account_id = (SELECT id FROM accounts WHERE key != 'hub:local' LIMIT 1)"))
        db.close()
        boxes = hub.mailboxes()
        best = {}

        def note(phase, cmds, mk_s, ref_s, api):
            b = best.get(phase)
            best[phase] = (cmds, min(mk_s, b[1]) if b else mk_s, min(ref_s, b[2]) if b else ref_s,
                           min(api, b[3]) if b else api)
            print("  %s round: mailkeep %.3f s, reference %.3f s" % (phase, mk_s, ref_s), flush=True)

        ref_source = "INBOX"
        for k in range(1, rounds + 1):
            # keywords: a new keyword on the same messages each round
            t0 = time.perf_counter()
            for i in range(0, n, API_BATCH):
                hub.set_email(update={"E%d" % by_uid[u]: {"keywords/$bench%d" % k: True}
                                      for u in mk_kw[i:i + API_BATCH]})
            api = time.perf_counter() - t0
            done, cmds, mk_s = replay_seconds(hub.sync().stdout)
            check(done == n, "replayed %d of %d" % (done, n))
            ref_s = reference_keywords(fx, ref_kw, a.tier != "plain", "$bench%d" % k)
            note("keywords", cmds, mk_s, ref_s, api)
            # moves: INBOX -> M1 -> M2 ... (and R1, R2 ... for the reference)
            t0 = time.perf_counter()
            for i in range(0, n, API_BATCH):
                hub.set_email(update={"E%d" % by_uid[u]: {"mailboxIds": {boxes["M%d" % k]: True}}
                                      for u in mk_mv[i:i + API_BATCH]})
            api = time.perf_counter() - t0
            done, cmds, mk_s = replay_seconds(hub.sync().stdout)
            check(done == n, "replayed %d of %d" % (done, n))
            src_uids = ref_mv if k == 1 else server_uids(fx, ref_source)
            ref_s = reference_moves(fx, ref_source, src_uids, "R%d" % k)
            ref_source = "R%d" % k
            note("moves", cmds, mk_s, ref_s, api)
        results = [(p,) + (n,) + best[p] for p in ("keywords", "moves")]

        # The hub and the server agree afterwards (the replay paired every
        # moved message with its new UID; the reference client's changes
        # came in through the sync).
        hub.sync()
        fx.assert_in_sync("after the bench")

        print("tier %s" % a.tier)
        print("%-9s %6s %5s %11s %12s %6s %10s" % ("phase", "changes", "cmds", "mailkeep_s", "reference_s",
                                                  "ratio", "jmap_api_s"))
        print("(best of %d rounds each)" % rounds)
        for name, cnt, cmds, mk_s, ref_s, api in results:
            print("%-9s %6d %5d %11.3f %12.3f %6.2f %10.3f" % (name, cnt, cmds, mk_s, ref_s, mk_s / ref_s, api))
    finally:
        if hub is not None:
            hub.stop()
        fx.stop()
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)


if __name__ == "__main__":
    main()
