#!/usr/bin/env python3
"""The plain tier (no CONDSTORE/QRESYNC, as Microsoft's servers) against a
real Dovecot with those capabilities hidden: a folder whose STATUS
(UIDVALIDITY, UIDNEXT, MESSAGES, UNSEEN) did not change since a full flag
scan less than the interval ago is not selected; \\Seen changes, arrivals and
expunges change STATUS and arrive at once; other flag changes arrive with
the next full scan (the interval, simulated by setting the scan time back).

usage: plain_tier_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import os, re, sqlite3, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import Fixture, append, check, run_scenarios  # noqa: E402

PLAIN = "IMAP4rev1 LITERAL+ AUTH=PLAIN SPECIAL-USE"


def skipped(out):
    m = re.search(r"\((\d+) unchanged by STATUS, not scanned\)", out)
    return int(m.group(1)) if m else 0


def age_scans(fx, seconds):
    con = sqlite3.connect(os.path.join(fx.data, "users", "alice", "store.db"))
    con.execute("UPDATE mailboxes SET plain_scan_at = plain_scan_at - ?", (seconds,))
    con.commit()
    con.close()


def t_skip_and_interval(tmp):
    fx = Fixture(tmp, "plain", "--capability", PLAIN, count=80)
    try:
        r = fx.sync()
        check("plain" in r.stdout, r.stdout)
        fx.assert_in_sync("initial")
        nfolders = int(re.search(r": (\d+) folders", r.stdout).group(1))
        # Nothing changed: no folder is selected.
        r = fx.sync()
        check(skipped(r.stdout) == nfolders and "(0 checked)" in r.stdout,
              "no-change sync selected folders: " + r.stdout)
        # \Seen changed: UNSEEN differs, the folder is scanned at once.
        c = fx.conn()
        c.select("INBOX")
        typ, data = c.uid("SEARCH", None, "UNSEEN")
        uid = data[0].split()[0].decode()
        c.uid("STORE", uid, "+FLAGS", "(\\Seen)")
        c.logout()
        r = fx.sync()
        check(skipped(r.stdout) == nfolders - 1, "after \\Seen: " + r.stdout)
        fx.assert_in_sync("\\Seen change")
        # \Flagged and a keyword: STATUS is the same; not before the full scan.
        c = fx.conn()
        c.select("INBOX")
        c.uid("STORE", "1:3", "+FLAGS", "(\\Flagged kwplain)")
        c.logout()
        r = fx.sync()
        check(skipped(r.stdout) == nfolders, "flag-only change scanned early: " + r.stdout)
        try:
            fx.assert_in_sync("flag change before the interval")
            raise AssertionError("the flag change arrived without a scan?")
        except AssertionError as e:
            check("INBOX differs" in str(e), str(e))
        age_scans(fx, 16 * 60)
        r = fx.sync()
        check(skipped(r.stdout) == 0, "full scan after the interval: " + r.stdout)
        fx.assert_in_sync("after the full scan")
        # An expunge and an arrival change MESSAGES/UIDNEXT.
        c = fx.conn()
        c.select("INBOX")
        c.uid("STORE", "4", "+FLAGS", "(\\Deleted)")
        c.expunge()
        c.logout()
        r = fx.sync()
        fx.assert_in_sync("expunge")
        append(fx, "INBOX", b"Subject: plain\r\n\r\nplain tier arrival\r\n")
        r = fx.sync()
        check(skipped(r.stdout) == nfolders - 1, "arrival: " + r.stdout)
        fx.assert_in_sync("arrival")
        # Arrivals alone (the counts add up) skip the FLAGS scan of the
        # known messages: a \Flagged change made meanwhile waits for the
        # full scan, the new mail does not.
        c = fx.conn()
        c.select("INBOX")
        c.uid("STORE", "5", "+FLAGS", "(\\Flagged)")
        c.logout()
        append(fx, "INBOX", b"Subject: plain 2\r\n\r\nsecond arrival\r\n")
        append(fx, "INBOX", b"Subject: plain 3\r\n\r\nthird arrival\r\n", "\\Seen")
        r = fx.sync()
        check("2 new messages" in r.stdout, r.stdout)
        s_state, h_state = fx.server_state()["INBOX"], fx.store_state()["INBOX"]
        check(sorted(s_state) == sorted(h_state), "arrivals missing")
        check(s_state[5] != h_state[5], "the known messages were scanned after all")
        age_scans(fx, 16 * 60)
        fx.sync()
        fx.assert_in_sync("full scan after arrivals")
        # Arrivals with an expunge or a \Seen change of a known message:
        # the counts do not add up, so the full scan runs at once.
        c = fx.conn()
        c.select("INBOX")
        c.uid("STORE", "6", "+FLAGS", "(\\Deleted)")
        c.expunge()
        c.logout()
        append(fx, "INBOX", b"Subject: plain 4\r\n\r\nfourth\r\n")
        fx.sync()
        fx.assert_in_sync("arrival and expunge")
        c = fx.conn()
        c.select("INBOX")
        typ, data = c.uid("SEARCH", None, "SEEN")
        c.uid("STORE", data[0].split()[0].decode(), "-FLAGS", "(\\Seen)")
        c.logout()
        append(fx, "INBOX", b"Subject: plain 5\r\n\r\nfifth\r\n")
        fx.sync()
        fx.assert_in_sync("arrival and \\Seen change")
    finally:
        fx.stop()


SCENARIOS = {"skip-and-interval": t_skip_and_interval}

if __name__ == "__main__":
    run_scenarios(SCENARIOS, "mk-plain-test-", sys.argv[1:])
