#!/usr/bin/env python3
"""Warm sync sessions against none, in one run (bench/warm-sync.sh).

For each mode, a fresh Dovecot (tests/fixture/dovecot.sh) with one account,
a hub with serve and provider push (tests/warm_test.py's harness), one
EventSource; then N deliveries one at a time (APPEND from a separate IMAP
client, then wait for the StateChange). Measured per mode:

  latency  APPEND sent -> StateChange received, p50 / p90 / max
  logins   the sync logins the audit log records (provider.login, push's own
           not counted) and the credentials opened, during the samples
  cpu      serve's user + system CPU seconds during the samples

Modes: warm (sync_keep_seconds = 120, the default) and cold
(sync_keep_seconds = 0: every sync logs in, as before the pool). The ratios
are warm / cold.

usage: warm-sync.py [--count N]   (env MK_BIN: the mailkeep binary)
"""
import argparse, os, socket, sys, tempfile, time, shutil, urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import warm_test  # noqa: E402
import replay_test  # noqa: E402


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(es):
    es.settimeout(0.05)
    try:
        while es.recv(65536):
            pass
    except OSError:
        pass


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def run_mode(tmp, name, conf, count):
    w = warm_test.Warm(tmp, name, conf=conf)
    try:
        hub = w.hub
        u = urllib.parse.urlsplit(hub.api_url)
        es = socket.create_connection((u.hostname, u.port))
        es.sendall(("GET /jmap/eventsource/?types=*&closeafter=no&ping=0 HTTP/1.1\r\nHost: x\r\n"
                    "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n"
                    % hub.token).encode())
        es.settimeout(30)
        first = es.recv(4096)
        assert b" 200 " in first.split(b"\r\n", 1)[0], first
        # One delivery first: push's own first connection may have made a
        # sync, and the warm mode's first sync logs in; neither is sampled.
        w.deliver()
        time.sleep(0.5)
        drain(es)
        base = w.counts()
        cpu0 = cpu_seconds(hub.serve.pid)
        lat, missed = [], 0
        for i in range(count):
            c = w.fx.conn()
            t0 = time.time()
            c.append("INBOX", None, None,
                     replay_test.raw_message("bench %s %d" % (name, i), "b-%s-%d" % (name, i)))
            c.logout()
            got, buf = None, b""
            es.settimeout(0.5)
            while time.time() - t0 < 30:
                try:
                    data = es.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                buf += data
                if b"StateChange" in buf:
                    got = time.time()
                    break
            if got is None:
                missed += 1
            else:
                lat.append(got - t0)
            time.sleep(0.3)  # the sync's tail (the session parked), then drain
            drain(es)
        cpu = cpu_seconds(hub.serve.pid) - cpu0
        d = w.since(base)
        es.close()
        return {"p50": pct(lat, 50), "p90": pct(lat, 90), "max": max(lat), "missed": missed,
                "logins": d["sync"], "decrypts": d["decrypt"], "cpu": cpu, "n": count}
    finally:
        w.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=50)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mk-warm-bench-")
    os.chmod(tmp, 0o755)
    try:
        warm = run_mode(tmp, "warm", "sync_keep_seconds = 120\n", a.count)
        cold = run_mode(tmp, "cold", "sync_keep_seconds = 0\n", a.count)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("warm sync sessions: %d deliveries one at a time, push on, one account" % a.count)
    print("%-34s %12s %12s %8s" % ("", "keep 120 s", "keep 0", "ratio"))
    rows = [("push latency p50 (s)", "p50", "%.3f"), ("push latency p90 (s)", "p90", "%.3f"),
            ("push latency max (s)", "max", "%.3f"), ("sync logins", "logins", "%d"),
            ("credentials opened", "decrypts", "%d"), ("serve CPU (s)", "cpu", "%.2f"),
            ("StateChange missing within 30 s", "missed", "%d")]
    for label, k, fmt in rows:
        ratio = "%.2f" % (warm[k] / cold[k]) if cold[k] else "-"
        print("%-34s %12s %12s %8s" % (label, fmt % warm[k], fmt % cold[k], ratio))


if __name__ == "__main__":
    main()
