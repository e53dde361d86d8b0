#!/usr/bin/env python3
"""Integration tests of `mailkeep send`, `outbox` and the outbox thread of
`serve` against a real SMTP server on loopback (aiosmtpd, started by
tests/fixture/smtpd.py with the Dovecot fixture's test CA) and the real
Dovecot of tests/fixture/dovecot.sh for the Sent copy.

usage: smtp_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import base64, glob, json, os, re, shutil, signal, sqlite3, subprocess, sys, time

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

    def __init__(self, fx, tmp, name, smtpd, login="alice", imap_url=None, check_login=True):
        self.fx = fx
        self.dir = os.path.join(tmp, name + "-hub")
        mk(self.dir, "init")
        mk(self.dir, "user", "add", "alice")
        mk(self.dir, "account", "add", "--user", "alice", "--imap", imap_url or fx.url(), "--smtp",
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
        try:
            rows = db.execute("SELECT id, state, attempts, last_reply, sent_copy, copy_attempts, "
                              "copy_error FROM outbox ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # a store from before the Sent copy's own state
            rows = db.execute("SELECT id, state, attempts, last_reply, sent_copy, NULL, NULL "
                              "FROM outbox ORDER BY id").fetchall()
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
        # Kill inside the slow DATA (the server has the bytes, no 250 yet):
        # once the message is claimed (state 1, attempt 1), the session is
        # under way; a fixed sleep could land before the store exists on a
        # loaded machine.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                rows = h.outbox_rows()
            except sqlite3.OperationalError:
                rows = []
            if len(rows) == 1 and rows[0][1] == 1 and rows[0][2] == 1:
                break
            time.sleep(0.05)
        time.sleep(0.8)
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
        marker = b"X-Keep: serve-%d" % time.time_ns()
        h.send(MSG.replace(b"X-Keep: yes", marker), "--queue-only")
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
        # The outbox thread files the Sent copy too, and resumes one left
        # pending (here: as if a process had been killed after the APPEND).
        for _ in range(50):
            if h.outbox_rows()[0][4] == "appended":
                break
            time.sleep(0.1)
        check(h.outbox_rows()[0][4] == "appended", "%s" % h.outbox_rows())
        db = h.store()
        db.execute("UPDATE outbox SET sent_copy = '', copy_next = 0 WHERE id = 1")
        db.commit()
        db.close()
        for _ in range(100):
            if h.outbox_rows()[0][4] == "appended":
                break
            time.sleep(0.1)
        rows = h.outbox_rows()
        check(rows[0][4] == "appended" and rows[0][5] == 2, "%s" % rows)
        check(sent_copies(fx, marker) == received_with(s, marker), "Sent copies differ")
        serve.send_signal(signal.SIGTERM)
        check(serve.wait(timeout=20) == 0, "serve did not stop cleanly")
        serve = None
    finally:
        if serve is not None:
            serve.kill()
        s.stop()


def t_serve_status_send_failure(tmp):
    """ExternalAccount/get (urn:mailkeep:manage) tells a send that failed
    for good: the server's reply, after serve's outbox thread tried."""
    import urllib.request
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "status", "starttls")
    serve = None
    try:
        h = Hub(fx, tmp, "status", s)
        h.send(MSG, "--to", "perm-fail@example.net", "--queue-only")
        out, _ = mk(h.dir, "device", "add", "--user", "alice", "laptop")
        token = out.strip().splitlines()[-1]
        serve = subprocess.Popen([BIN, "--data", h.dir, "serve", "--listen", "127.0.0.1:0",
                                  "--sync-interval", "0"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True,
                                 env=dict(os.environ, MK_NO_PROVIDER_PUSH="1"))
        line = serve.stdout.readline()
        m = re.search(r"session at (\S+?)\)", line)
        check(m is not None, "serve did not start: " + line)
        api = m.group(1).replace("/.well-known/jmap", "/jmap/api/")
        for _ in range(100):
            if h.outbox_rows() and h.outbox_rows()[0][1] == 3:
                break
            time.sleep(0.1)
        check(h.outbox_rows()[0][1] == 3, "not failed: %s" % h.outbox_rows())
        body = json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:mailkeep:manage"],
                           "methodCalls": [["ExternalAccount/get",
                                            {"accountId": "mailkeep", "ids": None}, "0"]]})
        req = urllib.request.Request(api, body.encode(), headers={
            "Authorization": "Bearer " + token, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            name, res, _ = json.loads(r.read())["methodResponses"][0]
        check(name == "ExternalAccount/get", "%s" % res)
        a = res["list"][0]
        check(a["lastError"] is not None and "could not be sent: 550 5.1.1" in a["lastError"]
              and a["lastErrorAt"] is not None and a["pushState"] is None,
              "lastError of the send: %s" % a)
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


# --- the Sent copy: durable, resumed, retried, found, never twice --------------

FAKEIMAP = os.path.join(SRC, "tests", "fixture", "fakeimap.py")


class FakeImap:
    """tests/fixture/fakeimap.py: every login answered with reply for the
    first `fail` sessions (all when -1), then passed through to fx's imaps."""

    def __init__(self, fx, tmp, name, reply, fail=-1):
        self.count_file = os.path.join(tmp, name + "-imap-count")
        self.p = subprocess.Popen([PY, FAKEIMAP, "--cert", os.path.join(fx.dir, "server.pem"),
                                   "--key", os.path.join(fx.dir, "server.key"),
                                   "--login-reply", reply, "--fail", str(fail),
                                   "--backend", fx.env["IMAPS_PORT"],
                                   "--count-file", self.count_file],
                                  stdout=subprocess.PIPE, text=True)
        m = re.match(r"ready (\d+)", self.p.stdout.readline())
        check(m is not None, "fakeimap did not start")
        self.port = int(m.group(1))

    def url(self):
        return "imaps://127.0.0.1:%d" % self.port

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=10)


def sent_copies(fx, marker, folder="Sent"):
    """The bodies in the server's folder that contain marker."""
    c = fx.conn()
    typ, _ = c.select(imapctl.quote(folder), readonly=True)
    bodies = []
    if typ == "OK":
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
        bodies = [d[1] for d in data if isinstance(d, tuple) and marker in d[1]]
    c.logout()
    return bodies


def received_with(s, marker):
    return [r["data"].encode("latin-1") for r in s.received()
            if marker.decode() in r["data"]]


def t_sent_copy_inbox_prefix(tmp):
    # Courier's layout: folders under "INBOX.", no SPECIAL-USE; "Sent" alone is
    # refused ("nonexistent namespace"; Courier: "Invalid mailbox name").
    fx = Fixture(tmp, "dc-prefix", "--inbox-prefix", count=0)
    s = Smtpd(fx, tmp, "prefix", "starttls")
    try:
        marker = b"X-Keep: prefix-%d" % time.time_ns()
        # An existing "Sent Messages" under the prefix is the Sent folder.
        c = fx.conn()
        check(c.create(imapctl.quote("INBOX.Sent Messages"))[0] == "OK", "create")
        c.logout()
        h0 = Hub(fx, tmp, "prefix0", s)
        h0.send(MSG.replace(b"X-Keep: yes", marker + b"-0"))
        check(h0.outbox_rows()[0][4] == "appended", "%s" % h0.outbox_rows())
        copies = sent_copies(fx, marker, "INBOX.Sent Messages")
        check(copies == received_with(s, marker), "INBOX.Sent Messages: %d" % len(copies))
        c = fx.conn()
        check(c.delete(imapctl.quote("INBOX.Sent Messages"))[0] == "OK", "delete")
        c.logout()
        # None: INBOX.Sent is created.
        h = Hub(fx, tmp, "prefix", s)
        h.send(MSG.replace(b"X-Keep: yes", marker + b"-1"))
        rows = h.outbox_rows()
        check(rows[0][4] == "appended", "sent copy: %s" % rows)
        # A second hub finds the INBOX.Sent that now exists (NAMESPACE + LIST).
        h2 = Hub(fx, tmp, "prefix2", s)
        h2.send(MSG.replace(b"X-Keep: yes", marker + b"-2"))
        check(h2.outbox_rows()[0][4] == "appended", "%s" % h2.outbox_rows())
        copies = sent_copies(fx, marker, "INBOX.Sent")
        got = [g for g in received_with(s, marker) if marker + b"-0" not in g]
        check(sorted(copies) == sorted(got) and len(copies) == 2,
              "INBOX.Sent holds %d copies" % len(copies))
        c = fx.conn()
        typ, names = c.list()
        c.logout()
        names = sorted(n.decode().rsplit(" ", 1)[-1] for n in names)
        check(names == ["INBOX", "INBOX.Sent"], "folders: %s" % names)
    finally:
        s.stop()
        fx.stop()


def t_sent_copy_resumes_after_kill(tmp):
    # Killed after the server's 250 and 'sent', before the APPEND: the copy is
    # pending, and the next run files it (once).
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "copykill", "starttls")
    try:
        h = Hub(fx, tmp, "copykill", s)
        marker = b"X-Keep: copykill-%d" % time.time_ns()
        h.send(MSG.replace(b"X-Keep: yes", marker), "--queue-only")
        killed_after_sent = False
        for n in range(1, 40):
            env = dict(os.environ, MK_CRASH_AFTER_COMMIT=str(n))
            r = subprocess.run([BIN, "--data", h.dir, "outbox", "--user", "alice", "run"],
                               env=env, capture_output=True, timeout=120)
            check(r.returncode in (0, -9), "outbox run exited %d: %s" % (r.returncode, r.stderr))
            rows = h.outbox_rows()
            if r.returncode == -9 and rows[0][1] == 2 and rows[0][4] == "":
                killed_after_sent = True
                break
            check(r.returncode == -9, "never killed between 'sent' and the Sent copy")
        check(killed_after_sent, "no kill point left the copy pending: %s" % h.outbox_rows())
        check(sent_copies(fx, marker) == [], "copy filed before the kill")
        out, _ = h.outbox("run")
        check(re.search(r"1 filed", out), out)
        rows = h.outbox_rows()
        check(rows[0][4] == "appended", "%s" % rows)
        check(sent_copies(fx, marker) == received_with(s, marker) and
              len(received_with(s, marker)) == 1, "Sent copy not filed exactly once")
    finally:
        s.stop()


def t_sent_copy_retried_with_backoff(tmp):
    # The IMAP server refuses the first login for a temporary reason: the Sent
    # copy stays pending, is not due at once, and is filed after the backoff.
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "copyretry", "starttls")
    fake = FakeImap(fx, tmp, "copyretry", "NO [UNAVAILABLE] Temporary authentication failure",
                    fail=1)
    try:
        h = Hub(fx, tmp, "copyretry", s, imap_url=fake.url(), check_login=False)
        marker = b"X-Keep: copyretry-%d" % time.time_ns()
        out, err = h.send(MSG.replace(b"X-Keep: yes", marker), "--retry-base", "2")
        check(re.search(r"^sent 1 ", out, re.M), out)
        check(re.search(r"alice, account 1: outbox 1: Sent copy attempt 1 failed \(.*temporary"
                        r".*UNAVAILABLE.*next attempt in 2 s", err), err)
        rows = h.outbox_rows()
        check(rows[0][1] == 2 and rows[0][4] == "" and rows[0][5] == 1 and
              "temporary" in rows[0][6], "%s" % rows)
        out, _ = h.outbox("list")
        check("sent-copy=pending copy-attempts=1" in out, out)
        out, _ = h.outbox("--retry-base", "2", "run")
        check("0 filed" in out, "filed before its time: " + out)
        time.sleep(2.2)
        out, _ = h.outbox("--retry-base", "2", "run")
        check("1 filed" in out, out)
        rows = h.outbox_rows()
        check(rows[0][4] == "appended" and rows[0][5] == 2, "%s" % rows)
        check(sent_copies(fx, marker) == received_with(s, marker), "Sent copy differs")
    finally:
        fake.stop()
        s.stop()


def t_sent_copy_not_filed_twice(tmp):
    # An attempt that APPENDed and was killed before recording it: the next
    # attempt finds the copy by Message-ID and does not APPEND again.
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "copytwice", "starttls")
    try:
        h = Hub(fx, tmp, "copytwice", s)
        marker = b"X-Keep: copytwice-%d" % time.time_ns()
        h.send(MSG.replace(b"X-Keep: yes", marker))
        check(len(sent_copies(fx, marker)) == 1, "no first copy")
        db = h.store()
        db.execute("UPDATE outbox SET sent_copy = '', copy_next = 0 WHERE id = 1")
        db.commit()
        db.close()
        out, _ = h.outbox("run")
        check("1 filed" in out, out)
        check(h.outbox_rows()[0][4] == "appended", "%s" % h.outbox_rows())
        check(len(sent_copies(fx, marker)) == 1, "filed twice: %d" % len(sent_copies(fx, marker)))
    finally:
        s.stop()


def t_kill_at_every_commit_outbox(tmp):
    # Kill `outbox run` after its Nth durable commit, for every N, resume, and
    # compare with the servers: each message received (a duplicate only in the
    # documented window), exactly one byte-exact copy of each in Sent, nothing
    # left 'sent' without its copy.
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "kac", "starttls")
    max_n = int(os.environ.get("MK_KILL_MAX", "80"))  # bound for CI
    dups = 0
    try:
        n = 0
        while True:
            n += 1
            check(n <= max_n, "outbox run still killed after %d commits" % max_n)
            h = Hub(fx, tmp, "kac%d" % n, s)
            marker = b"X-Keep: kac-%d-%d" % (n, time.time_ns())
            msgs = [MSG.replace(b"X-Keep: yes", marker + b"-%d" % i) for i in range(2)]
            for m in msgs:
                h.send(m, "--queue-only")
            env = dict(os.environ, MK_CRASH_AFTER_COMMIT=str(n))
            r = subprocess.run([BIN, "--data", h.dir, "outbox", "--user", "alice", "run"],
                               env=env, capture_output=True, timeout=120)
            check(r.returncode in (0, -9), "N=%d: exited %d: %s" % (n, r.returncode, r.stderr))
            if r.returncode == -9:
                out, _ = h.outbox("run")
            rows = h.outbox_rows()
            check(all(row[1] == 2 and row[4] == "appended" for row in rows),
                  "N=%d: after the resume: %s" % (n, rows))
            got = received_with(s, marker)
            copies = sent_copies(fx, marker)
            for i in range(len(msgs)):
                mine = marker + b"-%d\r\n" % i
                sent_i = [g for g in got if mine in g]
                copies_i = [c for c in copies if mine in c]
                check(len(sent_i) >= 1, "N=%d: message %d never reached the server" % (n, i))
                check(len(copies_i) == 1 and copies_i[0] in sent_i,
                      "N=%d: message %d has %d Sent copies" % (n, i, len(copies_i)))
                dups += len(sent_i) - 1
            check(dups <= n, "more duplicates than kills")
            shutil.rmtree(h.dir)
            if r.returncode == 0:
                break
        print("     kill-at-every-commit: %d kill points, %d duplicate submissions" % (n - 1, dups))
        check(dups == 0, "duplicates at commit points: %d" % dups)
    finally:
        s.stop()


# --- temporary login failures ([UNAVAILABLE]) ------------------------------------

def t_sync_login_unavailable(tmp):
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "unavail", "starttls")
    fake = FakeImap(fx, tmp, "unavail", "NO [UNAVAILABLE] Temporary authentication failure",
                    fail=1)
    try:
        h = Hub(fx, tmp, "unavail", s, imap_url=fake.url(), check_login=False)
        _, err = mk(h.dir, "sync", "--user", "alice", "--quiet", expect=75)
        check(re.search(r"alice, account 1: .*temporary authentication failure.*UNAVAILABLE", err)
              and "check the login and password" not in err, err)
        # Tried again later, it works (the fake now passes through to Dovecot).
        mk(h.dir, "sync", "--user", "alice", "--quiet")
    finally:
        fake.stop()
        s.stop()
    fake = FakeImap(fx, tmp, "authfail", "NO [AUTHENTICATIONFAILED] Authentication failed")
    try:
        h = Hub(fx, tmp, "authfail", s, imap_url=fake.url(), check_login=False)
        _, err = mk(h.dir, "sync", "--user", "alice", "--quiet", expect=1)
        check(re.search(r"alice, account 1: .*authentication failed .*check the login and "
                        r"password.*AUTHENTICATIONFAILED", err), err)
    finally:
        fake.stop()


def t_smtp_auth_temporary(tmp):
    # 454 to AUTH is temporary: queued again with backoff, and the message
    # names the user and the account.
    fx = fixture(tmp)
    s = Smtpd(fx, tmp, "auth454", "starttls")
    try:
        h = Hub(fx, tmp, "auth454", s, login="temp-auth-fail", check_login=False)
        out, _ = h.send(MSG, "--retry-base", "5")
        check(re.search(r"alice, account 1: queued 1: attempt 1 failed \(454 4\.7\.0 Temporary "
                        r"authentication failure.*next attempt in 5 s", out), out)
        rows = h.outbox_rows()
        check(rows[0][1] == 0 and rows[0][2] == 1, "%s" % rows)
        check(s.received() == [], "sent without authentication")
        check(re.search(r"provider\.login.*result=failed", h.audit()), h.audit())
    finally:
        s.stop()


SCENARIOS = {name[2:]: fn for name, fn in globals().items() if name.startswith("t_")}

def stop_shared_fixture():
    global _fx
    if _fx is not None:
        _fx.stop()
        _fx = None


if __name__ == "__main__":
    # The shared Dovecot stops at the end of the last scenario: run_scenarios
    # removes the temporary directory (and with it dovecot.conf, which
    # `dovecot.sh stop` needs) before it returns.
    names = sys.argv[1:] or list(SCENARIOS)
    scenarios = dict(SCENARIOS)
    last = scenarios.get(names[-1])

    def last_then_stop(tmp, fn=last):
        try:
            fn(tmp)
        finally:
            stop_shared_fixture()

    if last is not None:
        scenarios[names[-1]] = last_then_stop
    try:
        run_scenarios(scenarios, "mk-smtp-", names)
    finally:
        stop_shared_fixture()
