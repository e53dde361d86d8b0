#!/usr/bin/env python3
"""Integration tests of account add --email and account import: a local
autoconfig HTTP server and a local DNS responder on 127.0.0.1 (the test-only
overrides MK_TEST_SETUP_AUTOCONFIG, MK_TEST_SETUP_DNS, MK_TEST_SETUP_GUESS),
never the internet.

usage: setup_test.py   (env MK_BIN: the mailkeep binary)
"""
import http.server, os, re, shutil, socket, socketserver, struct, subprocess, sys, tempfile
import threading

BIN = os.environ.get("MK_BIN", "build/mailkeep")
SRC = os.path.dirname(os.path.abspath(__file__))

AUTOCONFIG = open(os.path.join(SRC, "data/setup/config-v1.1.xml"), "rb").read()
ISPDB = b"""<?xml version="1.0"?>
<clientConfig version="1.1"><emailProvider id="isp.example">
<displayName>ISP from the ISPDB</displayName>
<incomingServer type="imap"><hostname>imap.isp.example</hostname><port>993</port>
<socketType>SSL</socketType><username>%EMAILLOCALPART%</username>
<authentication>password-cleartext</authentication></incomingServer>
</emailProvider></clientConfig>"""


class Web(http.server.BaseHTTPRequestHandler):
    seen = []
    dove = None  # the autoconfig of the real Dovecot, once it runs

    def do_GET(self):
        Web.seen.append(self.path)
        body = None
        if self.path.startswith("/autoconfig.auto.example/mail/config-v1.1.xml"):
            body = AUTOCONFIG
        elif self.path == "/ispdb/isp.example":
            body = ISPDB
        elif self.path.startswith("/autoconfig.dove.example/") and Web.dove is not None:
            body = Web.dove
        elif self.path.startswith("/autoconfig.huge.example/"):
            body = b"<clientConfig>" + b" " * 70000 + b"</clientConfig>"
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def dns_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


# name -> list of (type, rdata)
RECORDS = {
    "_imaps._tcp.srv.example": [(33, struct.pack("!HHH", 10, 5, 9993) + dns_name("imap.srv.example"))],
    "_submissions._tcp.srv.example": [(33, struct.pack("!HHH", 0, 0, 0) + dns_name("."))],
    "_submission._tcp.srv.example": [(33, struct.pack("!HHH", 0, 0, 587) + dns_name("smtp.srv.example"))],
    "contoso.example": [(15, struct.pack("!H", 0) + dns_name("contoso-example.mail.protection.outlook.com"))],
}


def dns_serve(sock):
    while True:
        try:
            q, addr = sock.recvfrom(512)
        except OSError:
            return
        if len(q) < 12:
            continue
        i, labels = 12, []
        while q[i] != 0:
            labels.append(q[i + 1:i + 1 + q[i]].decode())
            i += 1 + q[i]
        qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        answers = [r for r in RECORDS.get(name, []) if r[0] == qtype]
        rcode = 0 if name in RECORDS else 3
        head = q[:2] + struct.pack("!HHHHH", 0x8180 | rcode, 1, len(answers), 0, 0)
        body = b"".join(b"\xc0\x0c" + struct.pack("!HHIH", t, 1, 60, len(rd)) + rd
                        for t, rd in answers)
        sock.sendto(head + question + body, addr)


failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def dovecot_scenario(tmp, mk, pw):
    """The connection test of account add on found settings: autoconfig
    names a real Dovecot on 127.0.0.1; the right password is accepted and
    the account stored, a wrong one refused with nothing stored."""
    sys.path.insert(0, SRC)
    try:
        from sync_test import Fixture
        fx = Fixture(tmp, "dovecot", count=0)
    except Exception as e:  # no Dovecot on this machine
        print("skip dovecot scenario: %s" % str(e)[:200])
        return
    try:
        Web.dove = (b"<clientConfig version='1.1'><emailProvider id='dove.example'>"
                    b"<displayName>Loopback Dovecot</displayName><incomingServer type='imap'>"
                    b"<hostname>127.0.0.1</hostname><port>%s</port><socketType>SSL</socketType>"
                    b"<username>%%EMAILLOCALPART%%</username></incomingServer>"
                    b"</emailProvider></clientConfig>" % fx.env["IMAPS_PORT"].encode())
        args = ("account", "add", "--user", "alice", "--email", "alice@dove.example",
                "--ca-file", fx.env["CA_FILE"], "--consent")
        rc, out = mk(*args, "--password-file", pw)
        check(rc == 1 and "refused the login of alice" in out and "nothing was stored" in out,
              "dovecot: wrong password refused by the connection test")
        rc, out = mk(*args, "--password-file", fx.env["PASS_FILE"])
        check(rc == 0 and "IMAP login checked" in out and
              "imaps://127.0.0.1:%s" % fx.env["IMAPS_PORT"] in out,
              "dovecot: found settings pass the connection test, account added")
        m = re.search(r"added account (\d+)", out)
        rc, out = mk("sync", "--user", "alice", "--account", m.group(1) if m else "0", "--quiet")
        check(rc == 0, "dovecot: the added account syncs")
    finally:
        subprocess.run(["bash", os.path.join(SRC, "fixture", "dovecot.sh"), "stop", fx.dir],
                       capture_output=True)


def main():
    tmp = tempfile.mkdtemp(prefix="mk-setup-")
    web = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Web)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("127.0.0.1", 0))
    threading.Thread(target=dns_serve, args=(dns,), daemon=True).start()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: refuses
    env = dict(os.environ,
               MK_TEST_SETUP_AUTOCONFIG="http://127.0.0.1:%d" % web.server_address[1],
               MK_TEST_SETUP_DNS="127.0.0.1:%d" % dns.getsockname()[1],
               MK_TEST_SETUP_GUESS="127.0.0.1:%d:%d" % (listener.getsockname()[1],
                                                       closed.getsockname()[1]),
               MK_TEST_SETUP_TIMEOUT_MS="3000")
    data = os.path.join(tmp, "hub")
    pw = os.path.join(tmp, "pw")
    with open(pw, "w") as f:
        f.write("s3cret-canary\n")

    def mk(*args):
        p = subprocess.run([BIN, "--data", data, *args], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout + p.stderr

    try:
        rc, out = mk("init")
        check(rc == 0, "init")
        mk("user", "add", "alice")

        def add(email, *extra):
            return mk("account", "add", "--user", "alice", "--email", email,
                      "--password-file", pw, "--consent", "--no-check", *extra)

        # A profile: no network at all.
        Web.seen.clear()
        rc, out = add("someone@fastmail.com")
        check(rc == 0 and "imaps://imap.fastmail.com:993" in out and "provider profile 'fastmail'" in out,
              "profile: fastmail by domain")
        check(Web.seen == [], "profile: no autoconfig request")
        check("Who can read the mail kept on this hub" in out and "not encrypted at rest" in out
              and "inactive_purge_days = 365" in out, "disclosure: who reads the mail, lifecycle")

        # OAuth-only profile: the command to run, nothing stored.
        rc, out = add("x@hotmail.com")
        check(rc == 2 and "--oauth microsoft" in out and "nothing was stored" in out,
              "profile: OAuth-only prints the account add --oauth command")

        # The domain's autoconfig.
        rc, out = add("carol@auto.example")
        check(rc == 0 and "imaps://imaps.example.com:993" in out and "smtp://smtp.example.com:587" in out,
              "autoconfig: TLS IMAP server and STARTTLS SMTP")
        check("from autoconfig http://127.0.0.1" in out and "Example & Co Mail" in out,
              "autoconfig: source and provider shown")
        check(any("emailaddress=carol" in s for s in Web.seen), "autoconfig: address sent to the domain's own server")

        # The ISPDB, after the domain's own URLs failed; placeholder expanded.
        Web.seen.clear()
        rc, out = add("dave@isp.example")
        check(rc == 0 and "imaps://imap.isp.example:993" in out and "login: dave\n" in out,
              "ISPDB: found, %EMAILLOCALPART% expanded")
        check(len(Web.seen) == 3 and "HTTP 404" in out, "ISPDB: tried after both domain URLs, shown")
        check(not any("dave" in s for s in Web.seen[1:]), "ISPDB and well-known: the domain only")

        # Overrides win over what was found.
        rc, out = add("erin@auto.example", "--imap", "imap://override.example:1143", "--login", "erin2")
        check(rc == 0 and "given with --imap" in out and "Log in to imap://override.example:1143 (IMAP) as erin2" in out,
              "override: --imap and --login win")

        # A document too large is refused, not parsed.
        rc, out = add("f@huge.example")
        check("larger than 65536" in out and "guess: imap.huge.example" in out,
              "autoconfig: size bound, then the guess")

        # Microsoft 365 by MX record.
        rc, out = add("g@contoso.example")
        check(rc == 2 and "profile 'microsoft365'" in out and "mail for contoso.example goes to" in out,
              "MX: Microsoft 365 custom domain")

        # RFC 6186 SRV: IMAP from _imaps, SMTP from _submission (the "." target means none).
        rc, out = add("h@srv.example")
        check(rc == 0 and "imaps://imap.srv.example:9993" in out and "smtp://smtp.srv.example:587" in out,
              "SRV: _imaps and _submission")
        check("DNS SRV record _imaps._tcp.srv.example" in out, "SRV: source shown")

        # Guess: imap.<domain> accepts connections, SMTP refuses.
        rc, out = add("i@guess.example")
        check(rc == 0 and "guess: imap.guess.example port" in out and "(none found" in out,
              "guess: connected IMAP, no SMTP")

        rc, out = mk("account", "list", "--user", "alice")
        # Seven: the huge document's domain fell through to the guess.
        rows = [l for l in out.splitlines() if l[:1].isdigit()]
        check(len(rows) == 7, "seven accounts added")

        # Import from Thunderbird and mbsync.
        tb = os.path.join(tmp, "tb-profile")
        os.mkdir(tb)
        shutil.copy(os.path.join(SRC, "data/setup/prefs.js"), os.path.join(tb, "prefs.js"))
        rc, out = mk("account", "import", "--user", "alice", "--thunderbird", tb)
        check(rc == 0 and "1. Alice at example.org" in out and
              "--imap imaps://imap.example.org:993 --login alice --smtp submissions://smtp.example.org:465" in out,
              "import thunderbird: proposed accounts listed")
        rc, out = mk("account", "import", "--user", "alice", "--thunderbird", tb, "--add", "2",
                     "--password-file", pw, "--consent", "--no-check")
        check(rc == 0 and "added account" in out and "- Imported from %s/prefs.js (Thunderbird server server3)" % tb in out,
              "import thunderbird: --add 2, the source in the disclosure")
        # The sample's CertificateFile, pointed at a CA file of this test.
        ca = os.path.join(tmp, "ca.pem")
        with open(ca, "w") as f:
            f.write("not read: the login is not checked here\n")
        rc_file = os.path.join(tmp, "mbsyncrc")
        with open(os.path.join(SRC, "data/setup/mbsyncrc")) as f:
            sample = f.read()
        with open(rc_file, "w") as f:
            f.write(sample.replace("/etc/ssl/certs/ca-certificates.crt", ca))
        rc, out = mk("account", "import", "--user", "alice", "--mbsyncrc", rc_file, "--add", "1",
                     "--password-file", pw, "--consent", "--no-check")
        check(rc == 0 and "imaps://imap.work.example:993" in out and "--ca-file " + ca in out,
              "import mbsync: listed and added")
        rc, out = mk("account", "import", "--user", "alice", "--mbsyncrc", rc_file, "--add", "9",
                     "--password-file", pw, "--consent", "--no-check")
        check(rc == 2 and "not one of the proposed accounts" in out, "import: --add out of range")
        rc, out = mk("account", "import", "--user", "alice", "--mbsyncrc", rc_file, "--add", "2")
        check(rc == 2 and "never imported" in out, "import: --add needs --password-file")
        check("hunter2" not in out and "pass show" not in out, "import mbsync: Pass/PassCmd never shown")
        rc, out = mk("account", "list", "--user", "alice")
        check("imap://mail.example.net:143" in out and "imap.work.example" in out, "imported accounts stored")
        for root, _, files in os.walk(data):
            for fn in files:
                with open(os.path.join(root, fn), "rb") as f:
                    blob = f.read()
                check(b"hunter2" not in blob and b"s3cret-canary" not in blob,
                      "no password in clear in " + fn)
        dovecot_scenario(tmp, mk, pw)
    finally:
        web.shutdown()
        dns.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("setup_test: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
