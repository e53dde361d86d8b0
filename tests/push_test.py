#!/usr/bin/env python3
"""Integration tests of push from the provider (src/push) against a real
Dovecot on loopback (tests/fixture/dovecot.sh), driven through
bench/push-probe (which runs the push loop and prints its callbacks).

Scenarios:
  append     APPEND on the server -> changed(INBOX) within 2 s, NOTIFY and
             IDLE + STATUS sweep (another folder) both
  badpass    wrong password -> stopped, reported, one login, no retries
  bye        BYE mid-IDLE (doveadm kick) -> reconnect, still pushes
  restart    server restart during IDLE -> every account back, at most the
             configured connect rate, still pushes
  netcut     a TCP proxy that drops every connection, then one that
             blackholes it (holds it open, forwards nothing) -> reconnect
  silent     a provider that accepts and never answers -> deadline, retry
             with backoff

usage: push_test.py [SCENARIO...]  (env MK_PROBE: the push-probe binary)
"""
import imaplib, json, os, socket, ssl, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixture", "dovecot.sh")
PROBE = os.environ.get("MK_PROBE") or os.path.join(
    os.path.dirname(os.environ.get("MK_BIN", os.path.join(HERE, "..", "build", "mailkeep"))),
    "push-probe")

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class Dovecot:
    def __init__(self, users=3):
        self.dir = tempfile.mkdtemp(prefix="mk-push-")
        os.rmdir(self.dir)
        out = subprocess.run(["bash", FIXTURE, "start", self.dir, "--users", str(users)],
                             check=True, capture_output=True, text=True).stdout
        self.env = {}
        for line in out.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                self.env[k] = v.strip('"')
        self.port = int(self.env["IMAPS_PORT"])
        self.ca = self.env["CA_FILE"]

    def pw(self, user):
        return os.path.join(self.dir, user + ".pass")

    def client(self, user):
        ctx = ssl.create_default_context(cafile=self.ca)
        m = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=ctx)
        m.login(user, open(self.pw(user)).read())
        return m

    def append(self, user, folder="INBOX"):
        m = self.client(user)
        if folder != "INBOX":
            m.create(folder)
        t = time.time()
        typ, _ = m.append(folder, None, None, b"Subject: push\r\n\r\nbody\r\n")
        m.logout()
        assert typ == "OK"
        return t

    def logins(self):
        with open(os.path.join(self.dir, "dovecot.log"), errors="replace") as f:
            return sum(1 for line in f if "imap-login: Info: Login:" in line)

    def doveadm(self, *args):
        subprocess.run(["bash", FIXTURE, "doveadm", self.dir] + list(args), check=False,
                       capture_output=True)

    def restart(self):
        conf = self.env["CONF"]
        subprocess.run(["doveadm", "-c", conf, "stop"], check=False, capture_output=True)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                time.sleep(0.1)
            except OSError:
                break
        subprocess.run(["dovecot", "-c", conf], check=True)

    def stop(self):
        subprocess.run(["bash", FIXTURE, "stop", self.dir], check=False, capture_output=True)


class Probe:
    """push-probe with accounts; its output lines collected in a thread."""

    def __init__(self, accounts, *opts):
        self.p = subprocess.Popen([PROBE] + list(opts), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for a in accounts:
            self.p.stdin.write(" ".join(str(x) for x in a) + "\n")
        self.p.stdin.write("-\n")
        self.p.stdin.flush()
        self.lines = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            with self.lock:
                self.lines.append((time.time(), line.rstrip("\n")))

    def wait(self, pred, timeout):
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                for t, line in self.lines:
                    if pred(line):
                        return t, line
            time.sleep(0.02)
        return None

    def count(self, pred):
        with self.lock:
            return sum(1 for _, line in self.lines if pred(line))

    def mark(self):
        with self.lock:
            n = len(self.lines)
        return n

    def wait_after(self, n, pred, timeout):
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                for t, line in self.lines[n:]:
                    if pred(line):
                        return t, line
            time.sleep(0.02)
        return None

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def acct(d, i, user, port=None, url=None):
    return (i, url or "imaps://127.0.0.1:%d" % (port or d.port), user, d.pw(user), d.ca)


def wait_logged_in(probe, ids, timeout=10):
    for i in ids:
        if probe.wait(lambda l, i=i: l == "login %d ok" % i, timeout) is None:
            return False
    time.sleep(0.5)  # EXAMINE, NOTIFY/LIST, IDLE
    return True


def s_append(d):
    for mode in ([], ["--no-notify", "--sweep", "1"]):
        name = "NOTIFY" if not mode else "IDLE+sweep"
        p = Probe([acct(d, 1, "alice"), acct(d, 2, "bob")], *mode)
        check(wait_logged_in(p, [1, 2]), "%s: both accounts log in" % name)
        n = p.mark()
        t0 = d.append("alice")
        hit = p.wait_after(n, lambda l: l.startswith("changed 1 INBOX"), 2)
        check(hit is not None and hit[0] - t0 <= 2, "%s: APPEND to INBOX -> changed within 2 s (%s)"
              % (name, "%.0f ms" % ((hit[0] - t0) * 1000) if hit else "none"))
        check(p.count(lambda l: l.startswith("changed 2 ")) == 0,
              "%s: no change reported for the other account" % name)
        n = p.mark()
        folder = "Box" + ("N" if not mode else "S")
        d.append("bob", folder)
        hit = p.wait_after(n, lambda l: l.startswith("changed 2 " + folder), 4)
        check(hit is not None, "%s: APPEND to another folder -> changed(%s)" % (name, folder))
        p.close()


def s_badpass(d):
    bad = os.path.join(d.dir, "wrong.pass")
    with open(bad, "w") as f:
        f.write("not-the-password")
    p = Probe([(5, "imaps://127.0.0.1:%d" % d.port, "carol", bad, d.ca)],
              "--backoff-min", "100", "--backoff-max", "200")
    hit = p.wait(lambda l: l.startswith("report 5 stopped"), 10)
    check(hit is not None and "AUTHENTICATIONFAILED" in hit[1],
          "wrong password -> stopped and reported (%s)" % (hit[1] if hit else "nothing"))
    time.sleep(3)
    check(p.count(lambda l: l.startswith("login 5")) == 1,
          "wrong password: one login, no retries (%d)" % p.count(lambda l: l.startswith("login 5")))
    p.close()


def s_bye(d):
    p = Probe([acct(d, 1, "alice")], "--backoff-min", "200", "--backoff-max", "1000")
    check(wait_logged_in(p, [1]), "bye: logged in")
    n = p.mark()
    d.doveadm("kick", "alice")
    hit = p.wait_after(n, lambda l: l == "login 1 ok", 10)
    check(hit is not None, "bye: BYE mid-IDLE -> reconnected")
    time.sleep(0.7)
    n = p.mark()
    t0 = d.append("alice")
    hit = p.wait_after(n, lambda l: l.startswith("changed 1 INBOX"), 2)
    check(hit is not None, "bye: pushes after the reconnect (%s)"
          % ("%.0f ms" % ((hit[0] - t0) * 1000) if hit else "none"))
    p.close()


def s_restart(d):
    users = d.env["USERS"].split()
    accts = [acct(d, i + 1, u) for i, u in enumerate(users)] * 1
    # Several connections per user: 3 users x 4 = 12 accounts.
    accts = [(k * 10 + a[0],) + a[1:] for k in range(4) for a in accts]
    rate = 4
    p = Probe(accts, "--rate", str(rate), "--backoff-min", "200", "--backoff-max", "2000")
    ids = [a[0] for a in accts]
    check(wait_logged_in(p, ids, 15), "restart: %d accounts logged in" % len(ids))
    n = p.mark()
    d.restart()
    logins = []
    end = time.time() + 20
    while time.time() < end and len(logins) < len(ids):
        time.sleep(0.2)
        with p.lock:
            logins = [t for t, l in p.lines[n:] if l.startswith("login ") and l.endswith(" ok")]
    check(len(logins) >= len(ids), "restart: all %d reconnected (%d)" % (len(ids), len(logins)))
    if len(logins) >= 2:
        span = max(logins) - min(logins)
        # rate/s: N logins need at least (N-1)/rate seconds.
        check(span >= (len(logins) - 1) / rate * 0.9,
              "restart: reconnects spread at <= %d/s (%d in %.2f s)" % (rate, len(logins), span))
    time.sleep(1)
    n = p.mark()
    t0 = d.append("alice")
    hit = p.wait_after(n, lambda l: l.startswith("changed 1 INBOX"), 2)
    check(hit is not None, "restart: still pushes (%s)"
          % ("%.0f ms" % ((hit[0] - t0) * 1000) if hit else "none"))
    p.close()


class Proxy:
    """TCP proxy to the server; drop() closes every connection, blackhole()
    stops forwarding but holds the sockets open."""

    def __init__(self, backend):
        self.backend = backend
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.conns = []
        self.holed = False
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.backend))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns.append((c, b))
            for x, y in ((c, b), (b, c)):
                threading.Thread(target=self._pipe, args=(x, y), daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                while self.holed:
                    time.sleep(0.05)
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for c, b in conns:
            for s in (c, b):
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    s.close()
                except OSError:
                    pass

    def blackhole(self, on):
        self.holed = on


def s_netcut(d):
    px = Proxy(d.port)
    p = Probe([acct(d, 1, "alice", port=px.port)], "--backoff-min", "200", "--backoff-max",
              "1000", "--renew", "2", "--timeout", "2000")
    check(wait_logged_in(p, [1]), "netcut: logged in through the proxy")
    n = p.mark()
    px.drop()
    hit = p.wait_after(n, lambda l: l == "login 1 ok", 10)
    check(hit is not None, "netcut: connection reset -> reconnected")
    time.sleep(0.7)
    n = p.mark()
    px.blackhole(True)
    hit = p.wait_after(n, lambda l: l.startswith("report 1 retry") and "did not answer" in l, 10)
    check(hit is not None, "netcut: blackholed connection found dead at the next renewal (%s)"
          % (hit[1] if hit else "none"))
    px.drop()
    px.blackhole(False)
    hit = p.wait_after(n, lambda l: l == "login 1 ok", 10)
    check(hit is not None, "netcut: reconnected after the blackhole")
    time.sleep(0.7)
    n = p.mark()
    d.append("alice")
    hit = p.wait_after(n, lambda l: l.startswith("changed 1 INBOX"), 2)
    check(hit is not None, "netcut: still pushes")
    p.close()


def s_silent(d):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held = []
    accepted = []

    def acc():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            held.append(c)
            accepted.append(time.time())
    threading.Thread(target=acc, daemon=True).start()
    port = srv.getsockname()[1]
    t0 = time.time()
    p = Probe([acct(d, 1, "alice", port=port)], "--timeout", "1000", "--backoff-min", "500",
              "--backoff-max", "1000")
    hit = p.wait(lambda l: l.startswith("report 1 retry") and "did not answer" in l, 5)
    check(hit is not None and hit[0] - t0 < 3, "silent: deadline hit (%s)"
          % (hit[1] if hit else "none"))
    time.sleep(4)
    check(2 <= len(accepted) <= 6, "silent: retried with backoff (%d connects in ~5 s)"
          % len(accepted))
    p.close()
    srv.close()


def s_serve(d):
    """The whole path: APPEND on the provider -> serve's provider push ->
    the account worker's sync -> StateChange on the device's EventSource."""
    import re, urllib.parse
    sys.path.insert(0, HERE)
    import sync_test, replay_test  # noqa: E402
    if not os.path.exists(sync_test.BIN):
        print("skip serve: no mailkeep binary")
        return
    tmp = tempfile.mkdtemp(prefix="mk-push-serve-")
    fx = sync_test.Fixture(tmp, "serve", count=5)
    hub = None
    try:
        hub = replay_test.Hub(fx, tmp, "h", push=True)
        u = urllib.parse.urlsplit(hub.api_url)
        es = socket.create_connection((u.hostname, u.port))
        es.sendall(("GET /jmap/eventsource/?types=*&closeafter=no&ping=0 HTTP/1.1\r\nHost: x\r\n"
                    "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n"
                    % hub.token).encode())
        es.settimeout(10)
        first = es.recv(4096)
        check(b" 200 " in first.split(b"\r\n", 1)[0], "serve: event stream open")
        # Let provider push log in and go idle.
        time.sleep(2.5)
        es.settimeout(0.05)
        try:
            while es.recv(65536):
                pass
        except OSError:
            pass
        lat = []
        for i in range(5):
            c = fx.conn()
            t0 = time.time()
            c.append("INBOX", None, None, b"Subject: push %d\r\n\r\nbody\r\n" % i)
            c.logout()
            got = None
            buf = b""
            while time.time() - t0 < 5:
                try:
                    data = es.recv(65536)
                except socket.timeout:
                    continue
                buf += data
                if b"StateChange" in buf:
                    got = time.time()
                    break
            lat.append(got - t0 if got else None)
            time.sleep(0.3)
            try:
                while es.recv(65536):
                    pass
            except OSError:
                pass
        ok = [x for x in lat if x is not None]
        check(len(ok) == len(lat) and max(ok) <= 2,
              "serve: APPEND -> StateChange on the EventSource within 2 s (%s)"
              % ", ".join("%.0f ms" % (x * 1000) if x else "none" for x in lat))
        es.close()
        # ExternalAccount/get (urn:mailkeep:manage) tells what push and the
        # account worker did: watching, the last sync, no error.
        body = {"using": ["urn:ietf:params:jmap:core", "urn:mailkeep:manage"],
                "methodCalls": [["ExternalAccount/get", {"accountId": "mailkeep", "ids": None},
                                 "0"]]}
        name, res, _ = hub.request(hub.api_url, json.dumps(body).encode())["methodResponses"][0]
        check(name == "ExternalAccount/get" and len(res["list"]) == 1,
              "serve: ExternalAccount/get lists the account%s"
              % ("" if name == "ExternalAccount/get" else ": %s" % res))
        a = res["list"][0]
        check(a["pushState"] == "idle", "serve: pushState idle (%s)" % a["pushState"])
        check(a["lastSyncAt"] is not None and a["lastError"] is None,
              "serve: a last sync, no error (%s, %s)" % (a["lastSyncAt"], a["lastError"]))
    finally:
        if hub is not None:
            srv = hub.serve
            hub.stop()
            if failures and srv is not None:
                print("serve log:", srv.stdout.read()[-3000:], srv.stderr.read()[-3000:])
        fx.stop() if hasattr(fx, "stop") else None


SCENARIOS = {"serve": s_serve, "append": s_append, "badpass": s_badpass, "bye": s_bye, "restart": s_restart,
             "netcut": s_netcut, "silent": s_silent}


def main():
    if not os.path.exists(PROBE):
        print("skip: %s not built" % PROBE)
        sys.exit(77)
    names = sys.argv[1:] or list(SCENARIOS)
    d = Dovecot()
    try:
        for n in names:
            print("== " + n, flush=True)
            SCENARIOS[n](d)
    finally:
        d.stop()
    if failures:
        print("%d failed" % len(failures))
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
