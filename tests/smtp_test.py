#!/usr/bin/env python3
"""Integration tests of `mailkeep send`, `outbox` and the outbox thread of
`serve` against a real SMTP server on loopback (aiosmtpd, started by
tests/fixture/smtpd.py with the Dovecot fixture's test CA) and the real
Dovecot of tests/fixture/dovecot.sh for the Sent copy.

usage: smtp_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import base64, glob, json, os, re, signal, sqlite3, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import BIN, SRC, Fixture, check, run_scenarios  # noqa: E402
import imapctl  # noqa: E402

SMTPD = os.path.join(SRC, "tests", "fixture", "smtpd.py")
PY = "/usr/bin/python3"  # python3-aiosmtpd is installed for the system Python

MSG = (b"From: Alice <alice@example.org>\r\n"
       b"To: Bob <bob@example.net>, carol@example.net\r\n"
       b"Cc: \"Dan, the man\" <dan@example.net>\r\n"
       b"Bcc: secret@example.net,\r\n\tBob <bob@example.net>\r\n"
       b"Subject: =?utf-8?q?h=C3=A9llo?=\r\n"
       b"X-Keep: yes\r\n"
       b"\r\n"
       b"first line\r\n"
       b".a line with a leading dot\r\n"
       b"\xc3\xa9 8-bit body\r\n")


def mk(data, *args, expect=0, stdin=b""):
    r = subprocess.run([BIN, "--data", data, *args], input=stdin, capture_output=True,
                       timeout=300)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    if expect is not None and r.returncode != expect:
        raise AssertionError("mailkeep %s exited %d (expected %d)\nstdout: %s\nstderr: %s"
                             % (" ".join(args[:3]), r.returncode, expect, out, err))
    return out, err


class Smtpd:
    """aiosmtpd on loopback: mode implicit-tls, starttls or plain."""

    def __init__(self, fx, tmp, name, mode, cert="server", *extra):
        self.out = os.path.join(tmp, name + "-smtp")
        d = fx.dir
        self.p = subprocess.Popen([PY, SMTPD, self.out, "--cert", os.path.join(d, cert + ".pem"),
                                   "--key", os.path.join(d, cert + ".key"), "--" + mode,
                                   "--user", "alice", "--password-file",
                                   os.path.join(d, "alice.pass"), *extra],
                                  stdout=subprocess.PIPE, stderr=open(self.out + ".log", "w"),
                                  text=True)
        line = self.p.stdout.readline()
        m = re.match(r"ready (\d+)", line)
        check(m is not None, "smtpd did not start: %s %s" % (line, open(self.out + ".log").read()))
        self.port = int(m.group(1))
        self.scheme = "submissions" if mode == "implicit-tls" else "smtp"

    def url(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    def received(self):
        recs = []
        for path in sorted(glob.glob(os.path.join(self.out, "*.json"))):
            with open(path) as f:
                recs.append(json.load(f))
        return recs

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


class Hub:
    """A hub with user alice and one account (the fixture's alice) whose
    SMTP server is smtpd."""

    def __init__(self, fx, tmp, name, smtpd, login="alice", check_login=True):
        self.fx = fx
        self.dir = os.path.join(tmp, name + "-hub")
        mk(self.dir, "init")
        mk(self.dir, "user", "add", "alice")
        mk(self.dir, "account", "add", "--user", "alice", "--imap", fx.url(), "--smtp",
           smtpd.url(), "--login", login, "--password-file", fx.env["PASS_FILE"],
           "--ca-file", fx.env["CA_FILE"], "--consent", *(() if check_login else ("--no-check",)))

    def send(self, msg, *args, expect=0):
        return mk(self.dir, "send", "--user", "alice", "--account", "1", *args, stdin=msg,
                  expect=expect)

    def outbox(self, *args, expect=0):
        return mk(self.dir, "outbox", "--user", "alice", *args, expect=expect)

    def store(self):
        return sqlite3.connect(os.path.join(self.dir, "users", "alice", "store.db"))

    def outbox_rows(self):
        if not os.path.exists(os.path.join(self.dir, "users", "alice", "store.db")):
            return []
        db = self.store()
        rows = db.execute("SELECT id, state, attempts, last_reply, sent_copy FROM outbox "
                          "ORDER BY id").fetchall()
        db.close()
        return rows

    def notices(self):
        db = self.store()
        rows = db.execute("SELECT b.data FROM messages m JOIN blobs b ON b.id = m.blob_id "
                          "JOIN mailboxes x ON x.id = m.mailbox_id JOIN accounts a "
                          "ON a.id = x.account_id WHERE a.key = 'hub:local'").fetchall()
        db.close()
        return [bytes(r[0]) for r in rows]

    def audit(self):
        out, _ = mk(self.dir, "audit", "--user", "alice")
        return out


_fx = None


def fixture(tmp):
    global _fx
    if _fx is None:
        _fx = Fixture(tmp, "dc", count=0)
    return _fx


def headers_of(data):
    return data.split("\r\n\r\n", 1)[0]


# --- scenarios -------------------------------------------------------------

def t_starttls_envelope_bcc(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "st", "starttls")
    try:
        h = Hub(fx, tmp, "st", s)
        out, _ = h.send(MSG)
        check(re.search(r"^sent 1 to 4 recipients", out, re.M), out)
        recs = s.received()
        check(len(recs) == 1, "received %d" % len(recs))
        r = recs[0]
        check(r["mail_from"] == "alice@example.org", "MAIL FROM " + r["mail_from"])
        # To, Cc and Bcc (folded, with a display name, duplicates once).
        check(sorted(r["rcpt_tos"]) == ["bob@example.net", "carol@example.net",
                                        "dan@example.net", "secret@example.net"],
              "RCPT TO %s" % r["rcpt_tos"])
        check(r["tls"] and r["login"] == "alice" and r["mechanism"] in ("PLAIN", "LOGIN"),
              "session: tls %s login %s mech %s" % (r["tls"], r["login"], r["mechanism"]))
        check(any(o.startswith("SIZE=") for o in r["mail_options"]), "no SIZE= %s" % r["mail_options"])
        data = r["data"]
        hdr = headers_of(data)
        check("bcc" not in hdr.lower() and "secret@" not in data, "Bcc leaked: " + hdr)
        check(re.search(r"^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r?$", hdr, re.M), hdr)
        check(re.search(r"^Message-ID: <[0-9a-f]{32}@example\.org>\r?$", hdr, re.M), hdr)
        # Everything else byte-exact, in order.
        sent = data.encode("latin-1")
        expect = MSG.replace(b"Bcc: secret@example.net,\r\n\tBob <bob@example.net>\r\n", b"")
        check(sent.endswith(expect), "bytes differ:\n%r\n%r" % (sent, expect))
        # Audit: the credential was opened for sending, then the provider login.
        a = h.audit()
        check(re.search(r"credential\.decrypt.*purpose=send", a) or
              ("credential.decrypt" in a and "send" in a), a)
        # The password is nowhere in the data directory.
        pw = open(fx.env["PASS_FILE"], "rb").read()
        forms = [pw, base64.b64encode(pw), base64.b64encode(b"\0alice\0" + pw)]
        for dp, _, fns in os.walk(h.dir):
            for fn in fns:
                blob = open(os.path.join(dp, fn), "rb").read()
                check(not any(f in blob for f in forms), "password in " + fn)
        rows = h.outbox_rows()
        check(rows[0][1] == 2 and "250" in rows[0][3], "outbox %s" % rows)
        out, _ = h.outbox()
        check(re.search(r"^1 sent account=1 attempts=1 .*reply=\"250", out, re.M), out)
    finally:
        s.stop()


def t_implicit_tls_sent_copy(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "tls", "implicit-tls")
    try:
        h = Hub(fx, tmp, "tls", s)
        msg = MSG.replace(b"X-Keep: yes", b"X-Keep: sent-copy-%d" % time.time_ns())
        h.send(msg, "--to", "only@example.com")
        recs = s.received()
        check(len(recs) == 1 and recs[0]["rcpt_tos"] == ["only@example.com"], "%s" % recs)
        check(recs[0]["tls"], "not TLS")
        rows = h.outbox_rows()
        check(rows[0][4] == "appended", "sent copy: %s" % rows)
        # On the provider: in Sent, seen, the bytes sent.
        c = fx.conn()
        typ, _ = c.select("Sent", readonly=True)
        check(typ == "OK", "no Sent folder on the server")
        typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        bodies = [d[1] for d in data if isinstance(d, tuple)]
        check(any(recs[0]["data"].encode("latin-1") == b for b in bodies),
              "Sent copy differs from what was sent")
        check("\\Seen" in data[0][0].decode(), "Sent copy not \\Seen")
        c.logout()
        # And in the hosted Sent mailbox after the next sync.
        mk(h.dir, "sync", "--user", "alice", "--quiet")
        db = h.store()
        n = db.execute("SELECT count(*) FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
                       "JOIN blobs b ON b.id = m.blob_id WHERE x.role = 'Sent' AND "
                       "instr(b.data, ?) > 0", (msg.split(b"\r\n")[6],)).fetchone()[0]
        db.close()
        check(n == 1, "hosted Sent copies: %d" % n)
        # The provider files sent mail itself: no APPEND.
        h.outbox("sent-copy", "1", "provider")
        h.send(msg)
        check(h.outbox_rows()[1][4] == "provider", "%s" % h.outbox_rows())
    finally:
        s.stop()


def t_untrusted_certificate(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "untrusted", "implicit-tls", "untrusted")
    try:
        # account add would refuse this server (its login check fails):
        # --no-check stores it anyway, so the send path's refusal is tested.
        h = Hub(fx, tmp, "untrusted", s, check_login=False)
        out, _ = h.send(MSG, expect=1)
        check(re.search(r"failed 1: .*(certificate|SSL)", out, re.I), out)
        check(s.received() == [], "sent despite an untrusted certificate")
        check(h.outbox_rows()[0][1] == 3, "%s" % h.outbox_rows())
        check(any(b"Not sent" in n for n in h.notices()), "no notice")
    finally:
        s.stop()


def t_no_starttls_refused(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "plain", "plain")
    try:
        h = Hub(fx, tmp, "plain", s, check_login=False)  # as above
        out, _ = h.send(MSG, expect=1)
        check(re.search(r"failed 1: .*(STARTTLS|SSL|TLS)", out, re.I), out)
        check(s.received() == [], "sent in clear text")
    finally:
        s.stop()


def t_temporary_then_success(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "temp", "starttls")
    try:
        h = Hub(fx, tmp, "temp", s)
        out, _ = h.send(MSG, "--to", "temp-fail-once@example.net", "--retry-base", "3")
        check(re.search(r"queued 1: attempt 1 failed \(451 4\.3\.0 try again later", out), out)
        rows = h.outbox_rows()
        check(rows[0][1] == 0 and rows[0][2] == 1 and rows[0][3].startswith("451"), "%s" % rows)
        out, _ = h.outbox("run")
        check("0 sent" in out, "sent before its time: " + out)
        time.sleep(3.2)
        out, _ = h.outbox("run")
        check("1 sent" in out, out)
        check(len(s.received()) == 1, "received %d" % len(s.received()))
        rows = h.outbox_rows()
        check(rows[0][1] == 2 and rows[0][2] == 2, "%s" % rows)
    finally:
        s.stop()


def t_permanent_failure_notice(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "perm", "starttls")
    try:
        h = Hub(fx, tmp, "perm", s)
        out, _ = h.send(MSG, "--to", "perm-fail@example.net", "--to", "ok@example.net",
                        expect=1)
        check(re.search(r"failed 1: 550 5\.1\.1 mailbox unavailable", out), out)
        check(s.received() == [], "partly sent")
        rows = h.outbox_rows()
        check(rows[0][1] == 3 and rows[0][3].startswith("550"), "%s" % rows)
        notes = h.notices()
        check(len(notes) == 1 and b"550 5.1.1" in notes[0] and b"perm-fail@example.net" in notes[0]
              and "héllo".encode() in notes[0] or b"llo" in notes[0], "notice: %r" % notes)
        out, _ = h.outbox()
        check(re.search(r"^1 failed .*reply=\"550 5\.1\.1", out, re.M), out)
        # retry queues it again; cancel deletes it; a sent one cannot be cancelled.
        out, _ = h.outbox("retry", "1")
        check("queued again 1" in out, out)
        h.outbox("cancel", "1")
        check(h.outbox_rows() == [], "not cancelled")
        h.send(MSG, "--to", "ok@example.net")
        h.outbox("cancel", "2", expect=1)
    finally:
        s.stop()


def t_kill_during_send(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "kill", "starttls")
    try:
        h = Hub(fx, tmp, "kill", s)
        msg = MSG.replace(b"X-Keep: yes", b"X-Test-Slow: 2")
        p = subprocess.Popen([BIN, "--data", h.dir, "send", "--user", "alice", "--account", "1"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write(msg)
        p.stdin.close()
        time.sleep(1.0)  # inside the slow DATA: the server has the bytes, no 250 yet
        p.send_signal(signal.SIGKILL)
        p.wait()
        rows = h.outbox_rows()
        check(len(rows) == 1 and rows[0][1] == 1, "after the kill: %s" % rows)
        out, _ = h.outbox("run")
        check("1 sent" in out, out)
        time.sleep(2.5)  # let the first, orphaned DATA finish on the server
        n = len(s.received())
        # Nothing lost; at most the documented duplicate (killed between the
        # end of DATA and the commit of 'sent').
        check(1 <= n <= 2, "received %d copies" % n)
        rows = h.outbox_rows()
        check(rows[0][1] == 2 and rows[0][2] == 2, "%s" % rows)
        # Killed before anything was sent: queued, sent exactly once later.
        p = subprocess.Popen([BIN, "--data", h.dir, "send", "--user", "alice", "--account", "1",
                              "--queue-only"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        p.communicate(MSG.replace(b"X-Keep: yes", b"X-Keep: second"))
        before = len(s.received())
        h.outbox("run")
        check(len(s.received()) == before + 1, "queued message not sent exactly once")
    finally:
        s.stop()


def t_size_exceeded(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "size", "starttls", "server", "--size", "2000")
    try:
        h = Hub(fx, tmp, "size", s)
        big = MSG + b"x" * 76 + b"\r\n"
        big = big + (b"y" * 76 + b"\r\n") * 60
        out, _ = h.send(big, expect=1)
        check(re.search(r"failed 1: 552", out), out)
        check(s.received() == [], "sent despite SIZE")
        h.send(MSG)  # a small one still goes
        check(len(s.received()) == 1, "small message not sent")
    finally:
        s.stop()


def t_bad_input_refused(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "bad", "starttls")
    try:
        h = Hub(fx, tmp, "bad", s)
        _, err = h.send(MSG, "--to", "a@example.net\r\nRCPT TO:<evil@example.net>", expect=2)
        check("bad --to" in err, err)
        h.send(MSG, "--to", "not an address", expect=2)
        h.send(MSG, "--to", "<a@example.net>", expect=2)
        _, err = h.send(MSG.replace(b"X-Keep: yes\r\n", b"X-Keep: yes\r\nRCPT TO:<e@x.org>\r\n"),
                        expect=1)
        check("refused" in err, err)
        _, err = h.send(MSG.replace(b"first line", b"first\0line"), expect=1)
        check("NUL" in err, err)
        _, err = h.send(MSG.replace(b"carol@example.net", b"carol@exa mple.net"), expect=1)
        check("refused" in err, err)
        _, err = h.send(b"From: alice@example.org\r\nSubject: x\r\n\r\nno recipients\r\n", expect=1)
        check("no recipients" in err, err)
        _, err = h.send(b"From: alice@example.org\r\nTo: b@example.net\r\n" + b"X: " + b"a" * 1200
                        + b"\r\n\r\nbody\r\n", expect=1)
        check("998" in err, err)
        check(h.outbox_rows() == [] and s.received() == [], "something was queued or sent")
    finally:
        s.stop()


def t_serve_outbox_thread(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "serve", "starttls")
    serve = None
    try:
        h = Hub(fx, tmp, "serve", s)
        h.send(MSG, "--queue-only")
        serve = subprocess.Popen([BIN, "--data", h.dir, "serve", "--listen", "127.0.0.1:0",
                                  "--sync-interval", "0"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        for _ in range(100):
            if s.received():
                break
            time.sleep(0.1)
        check(len(s.received()) == 1, "serve did not send the queued message")
        for _ in range(50):
            if h.outbox_rows()[0][1] == 2:
                break
            time.sleep(0.1)
        check(h.outbox_rows()[0][1] == 2, "%s" % h.outbox_rows())
        serve.send_signal(signal.SIGTERM)
        check(serve.wait(timeout=20) == 0, "serve did not stop cleanly")
        serve = None
    finally:
        if serve is not None:
            serve.kill()
        s.stop()


def t_sent_copy_synchronizing_literal(tmp):
    # A server without LITERAL+: APPEND waits for the "+" continuation.
    fx = Fixture(tmp, "dc-nolit", "--capability", "IMAP4rev1 SASL-IR SPECIAL-USE UIDPLUS", count=0)
    s = Smtpd(fx, tmp, "nolit", "starttls")
    try:
        c = fx.conn()
        caps = c.capabilities
        c.logout()
        check("LITERAL+" not in caps, "LITERAL+ still offered: %s" % (caps,))
        h = Hub(fx, tmp, "nolit", s)
        msg = MSG.replace(b"X-Keep: yes", b"X-Keep: sync-literal")
        h.send(msg)
        check(h.outbox_rows()[0][4] == "appended", "%s" % h.outbox_rows())
        c = fx.conn()
        typ, _ = c.select("Sent", readonly=True)
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
        c.logout()
        bodies = [d[1] for d in data if isinstance(d, tuple)]
        check(bodies == [s.received()[0]["data"].encode("latin-1")], "Sent copy: %r" % bodies)
    finally:
        s.stop()
        fx.stop()


def t_account_removal_empties_outbox(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "rm", "starttls")
    try:
        h = Hub(fx, tmp, "rm", s)
        canary = b"OUTBOX-CANARY-%d" % time.time_ns()
        h.send(MSG.replace(b"first line", canary), "--queue-only")
        mk(h.dir, "outbox", "--user", "alice", "sent-copy", "1", "provider")
        out, _ = mk(h.dir, "account", "remove", "--user", "alice", "1", "--all-devices")
        check(h.outbox_rows() == [], "outbox rows left: %s" % h.outbox_rows())
        db = h.store()
        check(db.execute("SELECT count(*) FROM outbox_accounts").fetchone()[0] == 0, "setting left")
        db.close()
        for dp, _, fns in os.walk(h.dir):
            for fn in fns:
                check(canary not in open(os.path.join(dp, fn), "rb").read(), "canary in " + fn)
        check(s.received() == [], "sent")
    finally:
        s.stop()


def t_jmap_submission(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "jmap", "starttls")
    serve = None
    try:
        h = Hub(fx, tmp, "jmap", s)
        subject = "jmap submission %d" % time.time_ns()
        draft = ("From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n"
                 "Bcc: hidden@example.net\r\nSubject: %s\r\n\r\ndraft body\r\n" % subject).encode()
        c = fx.conn()
        typ, _ = c.append("INBOX", None, None, draft)
        check(typ == "OK", "append")
        c.logout()
        mk(h.dir, "sync", "--user", "alice", "--quiet")
        out, _ = mk(h.dir, "device", "add", "--user", "alice", "laptop")
        token = out.strip().splitlines()[-1]
        serve = subprocess.Popen([BIN, "--data", h.dir, "serve", "--listen", "127.0.0.1:0",
                                  "--sync-interval", "0"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        line = serve.stdout.readline()
        m = re.search(r"session at (\S+?)\)", line)
        check(m is not None, "serve did not start: " + line)
        jdir = os.path.join(SRC, "tests", "jmap")
        env = dict(os.environ, MK_SUBMISSION_SESSION_URL=m.group(1), MK_SUBMISSION_TOKEN=token,
                   MK_SUBMISSION_SUBJECT=subject)
        r = subprocess.run(["node", "--test", "--test-reporter=spec",
                            os.path.join(jdir, "submission.test.mjs")], env=env, cwd=jdir,
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 0 and "pass 1" in r.stdout and "skipped 0" in r.stdout,
              "node tests failed:\n" + r.stdout[-3000:] + r.stderr[-2000:])
        # The submission of the test's draft (it also submits one made through
        # the API, which the outbox may or may not have sent by now).
        recs = [r for r in s.received() if subject in r["data"]]
        check(len(recs) == 1, "received %d" % len(recs))
        check(sorted(recs[0]["rcpt_tos"]) == ["bob@example.net", "hidden@example.net"],
              "%s" % recs[0]["rcpt_tos"])
        check("hidden@" not in recs[0]["data"] and subject in recs[0]["data"], "bytes")
        serve.send_signal(signal.SIGTERM)
        check(serve.wait(timeout=20) == 0, "serve did not stop cleanly")
        serve = None
    finally:
        if serve is not None:
            serve.kill()
        s.stop()


SCENARIOS = {name[2:]: fn for name, fn in globals().items() if name.startswith("t_")}

if __name__ == "__main__":
    try:
        run_scenarios(SCENARIOS, "mk-smtp-", sys.argv[1:])
    finally:
        if _fx is not None:
            _fx.stop()
