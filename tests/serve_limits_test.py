#!/usr/bin/env python3
"""`mailkeep serve` under hostile clients (issue #9, items 11, 12, and device
revocation): a real serve on 127.0.0.1, real sockets. No mail server needed.

usage: serve_limits_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)

Client sockets bind to other loopback addresses (127.0.0.2, 127.0.0.3, ...),
which Linux routes to lo without any setup, to look like other hosts."""
import base64, http.client, json, os, re, shutil, signal, socket, subprocess, sys
import tempfile, threading, time

SRC = os.environ.get("MK_SRC") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(os.environ.get("MK_BIN") or os.path.join(SRC, "build", "mailkeep"))
MiB = 1024 * 1024


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Hub:
    """A data directory with users alice..erin (hub passwords) and devices."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.data = os.path.join(tmp, "data")
        self.mk("init")
        self.passwords = {}
        for u in ["alice", "bob", "carol", "dave", "erin"]:
            pw = "%s's hub password" % u
            f = os.path.join(tmp, u + ".pass")
            with open(f, "w") as fh:
                fh.write(pw)
            self.mk("user", "add", u, "--password-file", f)
            self.passwords[u] = pw
        self.tokens = {}
        self.serve = None
        self.port = None

    def mk(self, *args):
        r = subprocess.run([BIN, "--data", self.data, *args], capture_output=True, text=True)
        check(r.returncode == 0, "mailkeep %s: %s" % (" ".join(args), r.stderr))
        return r.stdout

    def device(self, user, name):
        tok = self.mk("device", "add", "--user", user, name).strip().splitlines()[-1]
        self.tokens[(user, name)] = tok
        return tok

    def start(self, *extra):
        self.stop()
        self.serve = subprocess.Popen(
            [BIN, "--data", self.data, "serve", "--listen", "127.0.0.1:0", "--sync-interval", "0",
             "--access-log", os.path.join(self.tmp, "access.log"), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.serve.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        check(m is not None, "serve did not start: %r %s" % (
            line, self.serve.stderr.read() if self.serve.poll() is not None else ""))
        self.port = int(m.group(1))

    def stop(self):
        if self.serve is not None:
            serve, self.serve = self.serve, None
            serve.send_signal(signal.SIGTERM)
            try:
                rc = serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
                rc = "killed after 30 s"
            err = serve.stderr.read()
            check(rc == 0, "serve did not stop cleanly (%s): %s" % (rc, err[-3000:]))

    def status_field(self, name):
        with open("/proc/%d/status" % self.serve.pid) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def request(self, path, auth=None, source="127.0.0.1", headers=None, method="GET", body=None,
                timeout=60):
        """(status, headers, body, seconds)."""
        t0 = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                       source_address=(source, 0))
        h = dict(headers or {})
        if auth is not None:
            h["Authorization"] = auth
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), data, time.monotonic() - t0
        finally:
            c.close()


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def bearer(tok):
    return "Bearer " + tok


def in_threads(n, fn):
    out = [None] * n
    def run(i):
        try:
            out[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


# --- item 11: sign-in ------------------------------------------------------------

def t_signin_does_not_stall_others(hub):
    """60 concurrent wrong passwords for alice (from 60 addresses) while bob's
    device keeps making requests: bob stays fast (the Argon2id checks run
    outside the hub lock, and only the allowed attempts hash at all)."""
    tok = hub.device("bob", "stall-phone")
    hub.start()
    stop = threading.Event()
    attack = [None, None]  # start, end (monotonic)
    lat = []  # (start, seconds) of each of bob's requests
    def bob():
        while not stop.is_set():
            t0 = time.monotonic()
            s, _, _, dt = hub.request("/.well-known/jmap", bearer(tok), source="127.0.0.250")
            check(s == 200, "bob's request got %d" % s)
            lat.append((t0, dt))
    tb = threading.Thread(target=bob)
    tb.start()
    time.sleep(0.3)
    attack[0] = time.monotonic()
    res = in_threads(60, lambda i: hub.request("/.well-known/jmap", basic("alice", "wrong %d" % i),
                                               source="127.0.1.%d" % (i + 1))[0])
    attack[1] = time.monotonic()
    time.sleep(0.3)
    stop.set()
    tb.join()
    check(all(isinstance(r, int) for r in res), "attack requests failed: %r" % res[:5])
    # Bob's requests that overlapped the attack (a sequential client: one
    # stalled request is one sample).
    during = sorted(dt for t0, dt in lat if t0 + dt >= attack[0] and t0 <= attack[1])
    check(len(during) > 0, "bob made no request during the attack")
    p99 = during[max(0, int(len(during) * 0.99) - 1)]
    print("  attack %.1f s; bob during it: %d requests, median %.3f s, p99 %.3f s, max %.3f s; "
          "alice's: %s" % (attack[1] - attack[0], len(during), during[len(during) // 2], p99,
                           during[-1], {s: res.count(s) for s in sorted(set(res))}))
    # Generous for a loaded 2-core CI machine; before the fix: 9-30 s.
    check(p99 < 1.0 and during[-1] < 5.0,
          "bob's latency (p99 %.2f s, max %.2f s) while alice's password was guessed" % (p99, during[-1]))


def t_concurrent_attempts_limited(hub):
    """100 concurrent wrong passwords for carol from one address: the limit is
    counted before the check, so at most 10 are checked and the rest get 429
    with Retry-After; afterwards even the right password gets 429."""
    hub.start()
    res = in_threads(100, lambda i: hub.request("/.well-known/jmap", basic("carol", "wrong %d" % i),
                                                source="127.0.0.5"))
    # Connections beyond the per-address cap are closed unanswered.
    statuses = [r[0] if isinstance(r, tuple) else "closed" for r in res]
    print("  statuses: %s" % {s: statuses.count(s) for s in set(statuses)})
    check(statuses.count(429) >= 1, "none of 100 concurrent guesses got 429")
    check(statuses.count(429) + statuses.count("closed") >= 90,
          "only %d of 100 concurrent guesses refused" % (100 - statuses.count(401)))
    check(statuses.count(401) <= 10, "%d guesses were checked" % statuses.count(401))
    r429 = next(r for r in res if isinstance(r, tuple) and r[0] == 429)
    check(0 < int(r429[1].get("Retry-After", "0")) <= 60, "429 without Retry-After: %r" % r429[1])
    s = hub.request("/.well-known/jmap", basic("carol", hub.passwords["carol"]), source="127.0.0.5")[0]
    check(s == 429, "the right password from a blocked address got %d" % s)
    # Another address, another user: not blocked by carol's guesser.
    s = hub.request("/.well-known/jmap", basic("erin", hub.passwords["erin"]), source="127.0.0.6")[0]
    check(s == 200, "erin from another address got %d" % s)


def t_forwarded_rotation_limited(hub):
    """Behind --trusted-proxy a guesser rotates X-Forwarded-For: the per-user
    limit still stops it after 10 guesses."""
    hub.start("--trusted-proxy", "127.0.0.1")
    statuses = []
    for i in range(40):
        s = hub.request("/.well-known/jmap", basic("dave", "wrong %d" % i),
                        headers={"X-Forwarded-For": "198.51.100.%d" % (i + 1)})[0]
        statuses.append(s)
    print("  statuses: %s" % statuses)
    check(statuses.count(401) <= 10 and statuses.count(429) >= 30,
          "rotating X-Forwarded-For got %d guesses checked" % statuses.count(401))
    # Nothing counted against dave's own address from someone else's rotation:
    # another user from another forwarded address still signs in.
    s = hub.request("/.well-known/jmap", basic("erin", hub.passwords["erin"]),
                    headers={"X-Forwarded-For": "203.0.113.9"})[0]
    check(s == 200, "erin through the proxy got %d" % s)


def t_ipv6_prefix_rotation_limited(hub):
    """Addresses of one IPv6 /64 (forwarded by the trusted proxy) count as one
    address: guessing at many users from a /64 stops after 10."""
    hub.start("--trusted-proxy", "127.0.0.1")
    users = ["alice", "bob", "carol", "dave", "erin"]
    statuses = []
    for i in range(30):
        s = hub.request("/.well-known/jmap", basic(users[i % 5], "wrong %d" % i),
                        headers={"X-Forwarded-For": "2001:db8:1:2:%x::%x" % (i, i + 1)})[0]
        statuses.append(s)
    print("  statuses: %s" % statuses)
    check(statuses.count(401) <= 10 and statuses.count(429) >= 20,
          "rotating a /64 got %d guesses checked" % statuses.count(401))
    s = hub.request("/.well-known/jmap", basic("erin", hub.passwords["erin"]),
                    headers={"X-Forwarded-For": "2001:db8:1:3::1"})[0]
    check(s in (200, 429), "another /64 got %d" % s)


# --- item 12: memory and connections ----------------------------------------------

def raw_connect(hub, source):
    s = socket.create_connection(("127.0.0.1", hub.port), timeout=30, source_address=(source, 0))
    return s


def t_unauthenticated_bodies_not_buffered(hub):
    """120 clients (from 120 addresses) each send a 10 MiB body without
    credentials: each gets 401 before its body is read, and serve's peak RSS
    stays far below the 1.2 GB the bodies would take."""
    hub.start()
    body = b"x" * (10 * MiB)
    head = ("POST /jmap/upload/alice/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: %d\r\n\r\n" % len(body)).encode()
    def client(i):
        s = raw_connect(hub, "127.0.2.%d" % (i + 1))
        try:
            s.sendall(head)
            sent = 0
            try:
                while sent < len(body):
                    sent += s.send(body[sent:sent + 256 * 1024])
            except OSError:
                pass  # the server closed the connection: fine
            try:
                reply = s.recv(4096)
            except OSError:
                reply = b""
            return reply.split(b"\r\n", 1)[0].decode(errors="replace"), sent
        finally:
            s.close()
    res = in_threads(120, client)
    hwm = hub.status_field("VmHWM")
    lines = [r[0] if isinstance(r, tuple) else repr(r) for r in res]
    summary = {s: lines.count(s) for s in set(lines)}
    print("  replies: %s; peak RSS %.0f MiB" % (summary, hwm / MiB))
    check(sum(1 for l in lines if " 401 " in l) >= 100, "unauthenticated bodies not refused: %s" % summary)
    check(hwm < 200 * MiB, "serve's peak RSS %.0f MiB with unauthenticated bodies" % (hwm / MiB))


def t_authenticated_bodies_bounded(hub):
    """Authenticated clients that send part of a 10 MiB body and stall: the
    bodies held at once are bounded by --max-body-memory; beyond it 503."""
    tok = hub.device("alice", "body-phone")
    hub.start("--max-body-memory", str(32 * MiB))
    head = ("POST /jmap/upload/alice/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Length: %d\r\n\r\n" % (tok, 10 * MiB)).encode()
    socks, replies = [], []
    for i in range(12):
        s = raw_connect(hub, "127.0.3.%d" % (i + 1))
        s.sendall(head)
        s.settimeout(0.5)
        try:  # a refusal comes right after the head
            replies.append(s.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace"))
        except socket.timeout:
            try:
                s.sendall(b"y" * (8 * MiB))
                replies.append("(held)")
            except OSError as e:
                replies.append("(%s)" % e)
        except OSError as e:
            replies.append("(%s)" % e)
        socks.append(s)
    time.sleep(0.5)
    rss = hub.status_field("VmRSS")
    for s in socks:
        s.close()
    print("  replies: %s; RSS %.0f MiB" % (replies, rss / MiB))
    check(sum(1 for r in replies if " 503 " in r) >= 8, "no 503 beyond the body memory: %s" % replies)
    check(rss < 150 * MiB, "serve's RSS %.0f MiB with stalled bodies" % (rss / MiB))


def t_slowloris_does_not_lock_out(hub):
    """128 connections from one address trickle request heads: a client from
    another address is still served (per-address cap), and a trickling head
    is cut by the header deadline, however slowly it comes."""
    hub.start()
    tok = hub.device("erin", "slow-phone") if ("erin", "slow-phone") not in hub.tokens else hub.tokens[("erin", "slow-phone")]
    lorises = []
    for i in range(128):
        try:
            s = raw_connect(hub, "127.0.0.1")
            s.sendall(b"GET /.well-known/jmap HTTP/1.1\r\nHost: x\r\n")
            lorises.append(s)
        except OSError:
            pass
    stop = threading.Event()
    def trickle():
        while not stop.is_set():
            for s in lorises:
                try:
                    s.send(b"X")
                except OSError:
                    pass
            stop.wait(1)
    tt = threading.Thread(target=trickle)
    tt.start()
    try:
        time.sleep(1)
        served = 0
        for i in range(6):
            try:
                s, _, _, _ = hub.request("/.well-known/jmap", bearer(tok), source="127.0.0.2", timeout=5)
                served += s == 200
            except OSError:
                pass
        print("  %d slowloris connections; legitimate served: %d of 6" % (len(lorises), served))
        check(served == 6, "only %d of 6 legitimate requests served under slowloris" % served)
    finally:
        stop.set()
        tt.join()
        for s in lorises:
            s.close()

    # One trickling head from another address: cut within the deadline (10 s).
    s = raw_connect(hub, "127.0.0.3")
    s.sendall(b"GET /.well-known/jmap HTTP/1.1\r\n")
    t0 = time.monotonic()
    closed = None
    s.settimeout(0.2)
    while time.monotonic() - t0 < 25:
        try:
            s.send(b"X")
            if s.recv(4096) == b"":
                closed = time.monotonic() - t0
                break
        except socket.timeout:
            pass
        except OSError:
            closed = time.monotonic() - t0
            break
        time.sleep(0.8)
    s.close()
    print("  trickling head cut after %s s" % ("%.1f" % closed if closed else "never (25 s)"))
    check(closed is not None and closed < 14, "a trickling request head was not cut by the deadline")


# --- device revocation ------------------------------------------------------------

def t_revocation_at_once(hub):
    """`device revoke` (another process writing hub.db): the device's next
    request fails and its open event stream ends at once, also while
    someone is guessing passwords."""
    tok = hub.device("alice", "revoked-phone")
    hub.start()
    s, _, _, _ = hub.request("/.well-known/jmap", bearer(tok))
    check(s == 200, "device not signed in before revocation: %d" % s)
    es = raw_connect(hub, "127.0.0.7")
    es.sendall(("GET /jmap/eventsource/?types=*&closeafter=no&ping=0 HTTP/1.1\r\nHost: x\r\n"
                "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n" % tok).encode())
    es.settimeout(10)
    first = es.recv(4096)
    check(b" 200 " in first.split(b"\r\n", 1)[0], "event stream not opened: %r" % first[:100])
    # Load: concurrent wrong passwords (before, every check held the hub lock).
    stop = threading.Event()
    def guess(i):
        n = 0
        while not stop.is_set() and n < 30:
            hub.request("/.well-known/jmap", basic("bob", "wrong %d %d" % (i, n)),
                        source="127.0.4.%d" % (i * 30 + n + 1))
            n += 1
    guessers = [threading.Thread(target=guess, args=(i,)) for i in range(6)]
    for g in guessers:
        g.start()
    time.sleep(0.5)
    hub.mk("device", "revoke", "--user", "alice", "revoked-phone")
    t0 = time.monotonic()
    s, _, _, dt = hub.request("/.well-known/jmap", bearer(tok))
    next_request = time.monotonic() - t0
    es.settimeout(0.1)
    closed = None
    while time.monotonic() - t0 < 15:
        try:
            if es.recv(4096) == b"":
                closed = time.monotonic() - t0
                break
        except socket.timeout:
            pass
        except OSError:
            closed = time.monotonic() - t0
            break
    es.close()
    stop.set()
    for g in guessers:
        g.join()
    print("  next request %d after %.2f s; stream closed after %s s" % (
        s, next_request, "%.2f" % closed if closed is not None else "never (15 s)"))
    check(s == 401, "revoked device's next request got %d" % s)
    check(next_request < 1.0, "revoked device's next request took %.2f s" % next_request)
    check(closed is not None and closed < 1.5, "revoked device's stream stayed open")


def t_unknown_user_costs_the_same(hub):
    """A sign-in as a user the hub does not have takes as long as a wrong
    password of one it has (the same Argon2id work), so its time does not
    tell which users exist."""
    hub.start()
    def timed(user, source):
        s, _, _, t = hub.request("/.well-known/jmap", basic(user, "a wrong password"),
                                 source=source)
        check(s == 401, "%s got %d" % (user, s))
        return t
    # One address per attempt keeps the per-address limit out of it. Known
    # and unknown alternate, so a change in the machine's load (CI runs
    # other tests beside this one) weighs on both alike.
    known, unknown = [], []
    for i in range(1, 8):
        known.append(timed("dave", "127.0.1.%d" % i))
        unknown.append(timed("nobody%d" % i, "127.0.2.%d" % i))
    known.sort()
    unknown.sort()
    print("  median: known %.3f s, unknown %.3f s" % (known[3], unknown[3]))
    check(unknown[3] >= known[3] * 0.5,
          "an unknown user answers in %.3f s, a known one in %.3f s" % (unknown[3], known[3]))


SCENARIOS = [t_signin_does_not_stall_others, t_concurrent_attempts_limited,
             t_forwarded_rotation_limited, t_ipv6_prefix_rotation_limited,
             t_unauthenticated_bodies_not_buffered, t_authenticated_bodies_bounded,
             t_slowloris_does_not_lock_out, t_revocation_at_once,
             t_unknown_user_costs_the_same]


def main():
    wanted = sys.argv[1:]
    tmp = tempfile.mkdtemp(prefix="mk-serve-limits-")
    failed = []
    hub = None
    try:
        hub = Hub(tmp)
        for t in SCENARIOS:
            if wanted and t.__name__ not in wanted and t.__name__[2:] not in wanted:
                continue
            print("%s:" % t.__name__, flush=True)
            try:
                t(hub)
                print("  ok", flush=True)
            except Exception as e:  # noqa: BLE001 - every scenario is reported
                print("  FAILED: %s" % e, flush=True)
                failed.append(t.__name__)
            finally:
                hub.stop()
    finally:
        if hub is not None:
            hub.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        print("failed: %s" % ", ".join(failed))
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
