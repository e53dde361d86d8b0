#!/usr/bin/env python3
"""Replay latency: a device change through JMAP, visible on the provider.

    bench/replay-latency.py [--changes N] [--keep]

Environment: MK_BIN (default build/mailkeep).

Setup: one Dovecot (tests/fixture/dovecot.sh) with N + 10 messages in INBOX
and a folder Moved; a hub user with the account, synced once; `mailkeep
serve --sync-interval 0` (no scheduled sync: only the daemon's replay on
device changes can carry a change to the server).

Each of the N changes (default 50) alternates: a keyword ($latN) on one
message, and a move of another INBOX -> Moved, each one JMAP Email/set
request by the device. What is timed: from just before the request is sent
to the moment an independent imaplib client (its own connection, polling
every 10 ms) sees the change on the server: the keyword in the message's
FLAGS, or the message present in Moved (its Message-ID, seen by a
second connection that sits in Moved). The figures: p50 and p99 over the N changes (target: p50
<= 1 s), and the API request alone.
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
os.environ.setdefault("MK_BIN", os.path.join(ROOT, "build", "mailkeep"))
from replay_test import Hub, check  # noqa: E402
from sync_test import Fixture  # noqa: E402


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=50)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--timeout", type=float, default=30.0, help="per change, seconds")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mk-replay-latency-")
    os.chmod(tmp, 0o755)
    fx = Fixture(tmp, "lat", count=0)
    out = subprocess.run(["bash", os.path.join(ROOT, "tests", "fixture", "dovecot.sh"), "seed",
                          fx.dir, "--count", str(a.changes + 10), "--seed", "7",
                          "--folders", "INBOX:100"], capture_output=True, text=True)
    check(out.returncode == 0, "seed: " + out.stderr[-2000:])
    hub = None
    try:
        c = fx.conn()
        c.create("Moved")
        c.select("INBOX", readonly=True)
        mv = fx.conn()
        mv.select("Moved", readonly=True)
        typ, data = c.uid("SEARCH", "ALL")
        uids = sorted(int(x) for x in data[0].split())
        msgid = {}
        for u in uids:
            typ, d = c.uid("FETCH", str(u), "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            msgid[u] = d[0][1].decode().split(":", 1)[1].strip()
        hub = Hub(fx, tmp, "lat")
        db = hub.db()
        by_uid = dict(db.execute(
            "SELECT m.uid, m.email_id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
            "WHERE x.name = 'INBOX' AND x.account_id = "
            "(SELECT id FROM accounts WHERE key != 'hub:local' LIMIT 1)"))
        db.close()
        moved_id = hub.mailboxes()["Moved"]
        lat, api = {"keyword": [], "move": []}, []
        for i in range(a.changes):
            u = uids[i]
            kind = "keyword" if i % 2 == 0 else "move"
            upd = ({"keywords/$lat%d" % i: True} if kind == "keyword"
                   else {"mailboxIds": {moved_id: True}})
            t0 = time.perf_counter()
            hub.set_email(update={"E%d" % by_uid[u]: upd})
            api.append(time.perf_counter() - t0)
            while True:
                if kind == "keyword":
                    typ, d = c.uid("FETCH", str(u), "(FLAGS)")
                    seen = any(b"$lat%d" % i in (x if isinstance(x, bytes) else b"")
                               for x in d if x)
                else:
                    # The second connection sits in Moved; NOOP shows it
                    # what arrived.
                    mv.noop()
                    typ, d2 = mv.uid("SEARCH", "HEADER", "Message-ID", msgid[u].strip("<>"))
                    seen = d2[0].strip() != b""
                if seen:
                    break
                check(time.perf_counter() - t0 < a.timeout, "change %d (%s) not on the server" % (i, kind))
                time.sleep(0.01)
            lat[kind].append(time.perf_counter() - t0)
        all_ = lat["keyword"] + lat["move"]
        print("replay latency over %d changes (device JMAP Email/set -> visible on Dovecot):" % len(all_))
        for k, v in [("all", all_), ("keyword", lat["keyword"]), ("move", lat["move"])]:
            print("  %-8s p50 %.3f s  p99 %.3f s  max %.3f s  (n=%d)" % (k, pct(v, 50), pct(v, 99), max(v), len(v)))
        print("  api request alone: p50 %.3f s  p99 %.3f s" % (pct(api, 50), pct(api, 99)))
        print("target p50 <= 1 s: %s" % ("met" if pct(all_, 50) <= 1.0 else "NOT met"))
        c.logout()
        mv.logout()
    except AssertionError:
        if hub is not None and hub.serve is not None:
            s = hub.serve
            hub.stop()
            print("serve said:\n" + s.stdout.read()[-3000:] + s.stderr.read()[-3000:])
        raise
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
