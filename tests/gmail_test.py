#!/usr/bin/env python3
"""Gmail specifics of the sync against a scripted fake Gmail
(tests/fixture/fakegmail.py: X-GM-EXT-1, X-GM-MSGID/THRID/LABELS, \\All), with
the real mailkeep binary: labels become memberships of one Email whose body
is downloaded once; a first sync under a daily download budget stops cleanly,
newest first, and resumes on a later day with nothing lost; the outbox files
no Sent copy for an account whose server files it.

The Dovecot fixture is started only for its test CA and certificate (and
the outbox scenario's SMTP server uses the same CA).

usage: gmail_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import os, re, sqlite3, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import BIN, SRC, Fixture, check, run, run_scenarios  # noqa: E402

sys.path.insert(0, os.path.join(SRC, "tests", "fixture"))
from fakegmail import ALL, FakeGmail  # noqa: E402
from smtp_test import Smtpd  # noqa: E402


def raw(n, size=0, subject=None):
    body = ("line %d of message %d\r\n" % (n, n)) * max(1, size // 24)
    return ("From: sender%d@example.org\r\nTo: alice@gmail.com\r\nSubject: %s\r\n"
            "Message-ID: <m%d@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n%s"
            % (n, subject or "message %d" % n, n, body)).encode()


class Gmail:
    """A hub with user alice and one stored account on the fake Gmail."""

    def __init__(self, tmp, name):
        self.fx = Fixture(tmp, name, count=0)
        self.g = FakeGmail(os.path.join(self.fx.dir, "server.pem"),
                           os.path.join(self.fx.dir, "server.key"))
        self.data = self.fx.data
        self.mk("user", "add", "alice")
        self.mk("account", "add", "--user", "alice", "--imap",
                "imaps://127.0.0.1:%d" % self.g.port, "--login", "alice",
                "--password-file", self.fx.env["PASS_FILE"], "--ca-file", self.fx.env["CA_FILE"],
                "--consent", "--no-check")

    def mk(self, *args, expect=0):
        return run([BIN, "--data", self.data, *args], expect=expect)

    def sync(self, expect=0):
        return self.mk("sync", "--user", "alice", "--quiet", expect=expect)

    def db(self):
        return sqlite3.connect(os.path.join(self.data, "users", "alice", "store.db"))

    def emails(self):
        """{gm_msgid: (email id, sorted mailbox names, blob sha size)}"""
        con = self.db()
        out = {}
        for eid, msgid in con.execute("SELECT id, gm_msgid FROM emails"):
            names = sorted(r[0] for r in con.execute(
                "SELECT b.name FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
                "WHERE m.email_id = ?", (eid,)))
            out[msgid] = (eid, names)
        con.close()
        return out

    def stop(self):
        self.g.close()
        self.fx.stop()


def t_labels(tmp):
    """A message in INBOX and two labels is one Email in INBOX, both label
    mailboxes and All Mail; every body crosses the wire once, also when a
    label is added later (a new UID in that folder) and across syncs."""
    h = Gmail(tmp, "labels")
    try:
        g = h.g
        a = g.add(raw(1), labels=["\\Inbox", "Work", "Travel"], flags=["\\Seen"])
        b = g.add(raw(2), labels=["\\Inbox"])
        c = g.add(raw(3), labels=["Work"])          # archived, labelled
        d = g.add(raw(4), labels=[])                # archived: All Mail only
        r = h.sync()
        check("synced" in r.stdout, r.stdout)
        e = h.emails()
        check(sorted(e) == sorted([a.msgid, b.msgid, c.msgid, d.msgid]),
              "emails by X-GM-MSGID: %s" % e)
        check(e[a.msgid][1] == sorted(["INBOX", "Work", "Travel", ALL]), "a: %s" % (e[a.msgid],))
        check(e[b.msgid][1] == sorted(["INBOX", ALL]), "b: %s" % (e[b.msgid],))
        check(e[c.msgid][1] == sorted(["Work", ALL]), "c: %s" % (e[c.msgid],))
        check(e[d.msgid][1] == [ALL], "d: %s" % (e[d.msgid],))
        check(all(n == 1 for n in g.body_fetches.values()) and len(g.body_fetches) == 4,
              "bodies fetched: %s" % g.body_fetches)
        con = h.db()
        role = con.execute("SELECT role FROM mailboxes WHERE name = ?", (ALL,)).fetchone()
        check(role == ("All",), "All Mail role: %s" % (role,))
        n = con.execute("SELECT count(*) FROM emails").fetchone()[0]
        check(n == 4, "%d Emails for 4 messages" % n)
        con.close()
        # The FETCH of new messages asks for X-GM-MSGID with their UIDs.
        scans = [l for l in g.transcript if "RFC822.SIZE" in l and "X-GM-MSGID" in l]
        check(scans, "no X-GM-MSGID in the size scan: %s" % g.transcript)
        # Later: Gmail labels b "Travel" (a new UID there) and a new mail.
        g.label(b, "Travel")
        f = g.add(raw(5), labels=["\\Inbox", "Work"])
        h.sync()
        e = h.emails()
        check(e[b.msgid][1] == sorted(["INBOX", "Travel", ALL]), "b later: %s" % (e[b.msgid],))
        check(e[f.msgid][1] == sorted(["INBOX", "Work", ALL]), "f: %s" % (e[f.msgid],))
        check(g.body_fetches == {m.msgid: 1 for m in (a, b, c, d, f)},
              "bodies fetched after the second sync: %s" % g.body_fetches)
        # X-GM-THRID: a reply Gmail put in a's conversation, with nothing
        # in its headers that links it, joins a's thread.
        t = g.add(raw(6, subject="a different subject"), labels=["\\Inbox"], thrid=a.thrid)
        h.sync()
        con = h.db()
        th = dict(con.execute("SELECT gm_msgid, thread_id FROM emails"))
        check(th[t.msgid] == th[a.msgid] and th[b.msgid] != th[a.msgid],
              "threads by X-GM-THRID: %s" % th)
        gone = con.execute("SELECT count(*) FROM threads WHERE id NOT IN "
                           "(SELECT thread_id FROM emails)").fetchone()[0]
        check(gone == 0, "%d empty threads left" % gone)
        con.close()
        # Nothing new: no body at all, and one connection at a time.
        h.sync()
        check(sum(g.body_fetches.values()) == 6, "a no-change sync fetched bodies")
        check(g.max_sessions == 1, "sessions at once: %d" % g.max_sessions)
    finally:
        h.stop()


def t_pacing(tmp):
    """A first sync under a daily download budget stops cleanly when it is
    spent, INBOX first and newest first; the same day nothing more is
    downloaded; each later day goes on; in the end the store holds every
    message once, no body was downloaded twice, and progress is shown."""
    h = Gmail(tmp, "pacing")
    try:
        g = h.g
        msgs = [g.add(raw(i, size=4000), labels=["\\Inbox"] + (["Work"] if i % 3 == 0 else []))
                for i in range(1, 41)]
        archived = [g.add(raw(100 + i, size=4000), labels=[]) for i in range(10)]
        size = max(len(m.raw) for m in msgs + archived)
        budget = 10 * size + size // 2   # ten messages a day
        r = h.mk("account", "set", "--user", "alice", "1", "--download-budget", str(budget))
        check("download budget: %.1f kB a day" % (budget / 1e3) in r.stdout, r.stdout)
        r = h.sync()
        check("daily download budget spent" in r.stdout, "not paced: " + r.stdout)
        check(g.bytes_sent_bodies <= budget, "day 1: %d bytes > budget %d"
              % (g.bytes_sent_bodies, budget))
        got = set(g.body_fetches)
        check(len(got) >= 10 and got == {m.msgid for m in msgs[-len(got):]}, "day 1 is not the newest INBOX mail: %s"
              % sorted(msgs.index(m) for m in msgs if m.msgid in got))
        con = h.db()
        held = con.execute("SELECT count(*) FROM messages").fetchone()[0]
        con.close()
        check(held >= 10, "held after day 1: %d" % held)
        r = h.mk("account", "list", "--user", "alice")
        check(re.search(r"synced \d+ of 103 messages", r.stdout) and "paced" in r.stdout,
              "account list: " + r.stdout)
        # The same day: nothing more.
        before = dict(g.body_fetches)
        h.sync()
        check(g.body_fetches == before, "the same day downloaded more")
        days = 1
        while True:
            con = h.db()
            con.execute("UPDATE accounts SET dl_day = dl_day - 1")
            con.commit()
            con.close()
            day_bytes = g.bytes_sent_bodies
            r = h.sync()
            days += 1
            check(g.bytes_sent_bodies - day_bytes <= budget, "day %d over budget" % days)
            if "daily download budget spent" not in r.stdout:
                break
            check(days < 20, "pacing never ends")
        check(days in (5, 6), "%d days for 50 messages at 10-11 a day" % days)
        check(set(g.body_fetches) == {m.msgid for m in msgs + archived} and
              all(n == 1 for n in g.body_fetches.values()), "bodies: %s" % g.body_fetches)
        e = h.emails()
        for m in msgs + archived:
            want = sorted([ALL] + [g.folder_of(l) for l in m.labels])
            check(e[m.msgid][1] == want, "%s: %s want %s" % (m.msgid, e[m.msgid], want))
        r = h.mk("account", "list", "--user", "alice")
        check("synced 103 of 103 messages" in r.stdout and "paced" not in r.stdout,
              "account list at the end: " + r.stdout)
    finally:
        h.stop()


def t_outbox_no_sent_copy(tmp):
    """An account on a server offering X-GM-EXT-1 (auto) or set with
    --server-files-sent yes gets no APPENDed Sent copy; with no, it does."""
    h = Gmail(tmp, "outbox")
    s = Smtpd(h.fx, tmp, "outbox", "implicit-tls")
    try:
        msg = (b"From: alice@gmail.com\r\nTo: bob@example.org\r\nSubject: hi\r\n"
               b"Message-ID: <out1@example.org>\r\n\r\nhello\r\n")
        h.mk("account", "set", "--user", "alice", "1", "--smtp", s.url(), "--password-file",
             h.fx.env["PASS_FILE"], "--no-check")
        h.sync()  # learns X-GM-EXT-1
        r = h.mk("account", "list", "--user", "alice")
        check("auto (filed by the server: X-GM-EXT-1)" in r.stdout, r.stdout)
        send(h, msg)
        check(len(s.received()) == 1, "not sent: %s" % s.received())
        rows = outbox_rows(h)
        check(rows[-1] == "provider", "auto: sent copy %s" % rows)
        check(g_appends(h) == [], "APPENDed: %s" % g_appends(h))
        # Explicitly no: the outbox files it.
        h.mk("account", "set", "--user", "alice", "1", "--server-files-sent", "no")
        send(h, msg.replace(b"out1", b"out2"))
        rows = outbox_rows(h)
        check(rows[-1] == "appended", "no: sent copy %s" % rows)
        check([n for n, _ in g_appends(h)] == ["[Gmail]/Sent Mail"], "%s" % g_appends(h))
        # Explicitly yes.
        h.mk("account", "set", "--user", "alice", "1", "--server-files-sent", "yes")
        send(h, msg.replace(b"out1", b"out3"))
        check(outbox_rows(h)[-1] == "provider" and len(g_appends(h)) == 1, "yes")
    finally:
        s.stop()
        h.stop()


def t_kill(tmp):
    """Killed right after each durable commit of a paced Gmail sync (label
    joins, newest-first batches, the budget's stop), then resumed day by
    day: the store ends exactly as the server is, one Email per message."""
    import shutil
    h = Gmail(tmp, "kill")
    try:
        g = h.g
        msgs = [g.add(raw(i, size=3000), labels=["\\Inbox"] + (["Work"] if i % 2 else []))
                for i in range(1, 13)]
        msgs += [g.add(raw(50 + i, size=3000), labels=["Travel"]) for i in range(4)]
        size = max(len(m.raw) for m in msgs)
        h.mk("account", "set", "--user", "alice", "1", "--download-budget", str(5 * size))
        snap = h.data + "-snap"
        shutil.copytree(h.data, snap)
        n = 0
        while True:
            n += 1
            check(n < 200, "never finished")
            shutil.rmtree(h.data)
            shutil.copytree(snap, h.data)
            env = dict(os.environ, MK_CRASH_AFTER_COMMIT=str(n))
            r = subprocess.run([BIN, "--data", h.data, "sync", "--user", "alice", "--quiet"],
                               env=env, capture_output=True, stdin=subprocess.DEVNULL,
                               timeout=120)
            killed = r.returncode in (-9, 137)
            check(killed or r.returncode == 0, "run %d: %d %s" % (n, r.returncode, r.stderr))
            for day in range(20):
                out = h.sync().stdout
                if "daily download budget spent" not in out:
                    break
                con = h.db()
                con.execute("UPDATE accounts SET dl_day = dl_day - 1")
                con.commit()
                con.close()
            e = h.emails()
            check(len(e) == len(msgs), "kill %d: %d Emails for %d messages" % (n, len(e), len(msgs)))
            for m in msgs:
                want = sorted([ALL] + [g.folder_of(l) for l in m.labels])
                check(e.get(m.msgid, (0, []))[1] == want, "kill %d: %s: %s want %s"
                      % (n, m.msgid, e.get(m.msgid), want))
            con = h.db()
            bad = con.execute("SELECT count(*) FROM messages m JOIN blobs b ON b.id = m.blob_id "
                              "WHERE b.size != length(b.data)").fetchone()[0]
            con.close()
            check(bad == 0, "kill %d: damaged blobs" % n)
            if not killed:
                break
        check(n > 3, "only %d commits to kill at (a MK_TEST_HOOKS build?)" % n)
    finally:
        h.stop()


def send(h, msg):
    r = subprocess.run([BIN, "--data", h.data, "send", "--user", "alice", "--account", "1"],
                       input=msg, capture_output=True, timeout=120)
    check(r.returncode == 0, "send: %s" % r.stderr)


def outbox_rows(h):
    con = h.db()
    rows = [r[0] for r in con.execute("SELECT sent_copy FROM outbox ORDER BY id")]
    con.close()
    return rows


def g_appends(h):
    return list(h.g.appends)


SCENARIOS = {
    "labels": t_labels,
    "pacing": t_pacing,
    "outbox": t_outbox_no_sent_copy,
    "kill": t_kill,
}

if __name__ == "__main__":
    run_scenarios(SCENARIOS, "mk-gmail-test-", sys.argv[1:])
