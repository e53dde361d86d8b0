#!/usr/bin/env python3
"""Benchmark 2 of issue #11: the cost of an idle account.

N accounts idle (TLS + IDLE) against bench/push-idle-server.py, driven by
bench/push-probe (src/push directly: not serve, whose account setup for
10,000 users is not what is measured here). Reports RSS growth per idle
account (slope between a small and the full run), CPU while idle,
descriptors, then restarts the server and reports the reconnect: the
highest logins in any one second against the configured connect rate, and
the time until all N idle again.

usage: push-idle-bench.py [--accounts N] [--rate R] [--idle-seconds S]
       (env MK_PROBE: push-probe binary; default build/push-probe)
"""
import argparse, os, resource, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.environ.get("MK_PROBE", os.path.join(HERE, "..", "build", "push-probe"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(port, d, countfile):
    return subprocess.Popen([sys.executable, os.path.join(HERE, "push-idle-server.py"), str(port),
                             os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"), countfile])


class Run:
    def __init__(self, n, port, d, rate):
        pw = os.path.join(d, "pw")
        self.p = subprocess.Popen([PROBE, "--stats", "--rate", str(rate), "--backoff-min", "1000",
                                   "--backoff-max", "10000"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        for i in range(1, n + 1):
            self.p.stdin.write("%d imaps://127.0.0.1:%d u%d %s %s\n"
                               % (i, port, i, pw, os.path.join(d, "cert.pem")))
        self.p.stdin.write("-\n")
        self.p.stdin.flush()
        self.n = n

    def stats(self):
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise SystemExit("push-probe ended")
            if line.startswith("stats "):
                return dict(kv.split("=") for kv in line.split()[1:])

    def wait_idle(self, timeout):
        t0 = time.time()
        while time.time() - t0 < timeout:
            s = self.stats()
            if int(s["idle"]) >= self.n:
                return time.time() - t0
        return None

    def close(self):
        self.p.kill()
        self.p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--idle-seconds", type=int, default=20)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < a.accounts + 100:
        raise SystemExit("RLIMIT_NOFILE hard limit %d too low for %d accounts" % (hard, a.accounts))
    d = tempfile.mkdtemp(prefix="mk-pushbench-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", os.path.join(d, "key.pem"),
                    "-out", os.path.join(d, "cert.pem")], check=True, capture_output=True)
    with open(os.path.join(d, "pw"), "w") as f:
        f.write("secret")
    port = free_port()
    countfile = os.path.join(d, "logins")
    srv = start_server(port, d, countfile)
    time.sleep(1)
    small = min(100, a.accounts // 10)
    r = Run(small, port, d, a.rate)
    r.wait_idle(120)
    time.sleep(2)
    rss_small = rss_kb(r.p.pid)
    r.close()
    srv.kill()
    srv.wait()
    srv = start_server(port, d, countfile)
    time.sleep(1)
    r = Run(a.accounts, port, d, a.rate)
    t_up = r.wait_idle(a.accounts / a.rate * 3 + 120)
    print("%d accounts idle after %.1f s (connect rate %d/s)" % (a.accounts, t_up or -1, a.rate))
    time.sleep(3)
    rss_full = rss_kb(r.p.pid)
    fds = len(os.listdir("/proc/%d/fd" % r.p.pid))
    c0 = cpu_s(r.p.pid)
    time.sleep(a.idle_seconds)
    c1 = cpu_s(r.p.pid)
    per = (rss_full - rss_small) / (a.accounts - small)
    print("RSS: %d KB with %d accounts, %d KB with %d: %.1f KB per idle account"
          % (rss_small, small, rss_full, a.accounts, per))
    print("descriptors: %d (%.2f per account)" % (fds, fds / a.accounts))
    print("CPU while idle: %.2f s over %d s (%.3f%%)"
          % (c1 - c0, a.idle_seconds, (c1 - c0) / a.idle_seconds * 100))
    # Server restart: every connection drops at once.
    srv.kill()
    srv.wait()
    mark = time.time()
    time.sleep(1)
    t_drop = time.time()
    while time.time() - t_drop < 60 and int(r.stats()["idle"]) >= a.accounts:
        pass
    srv = start_server(port, d, countfile)
    mark = time.time()
    t_back = r.wait_idle(a.accounts / a.rate * 3 + 300)
    time.sleep(1.5)
    rows = []
    with open(countfile) as f:
        for line in f:
            t, n = line.split()
            if float(t) >= mark:
                rows.append((float(t), int(n)))
    peak = 0.0
    for (t0, n0), (t1, n1) in zip(rows, rows[1:]):
        if n1 >= n0 and t1 > t0:
            peak = max(peak, (n1 - n0) / (t1 - t0))
    print("server restart: all %d idle again after %s s; peak %.0f logins/s (limit %d/s)"
          % (a.accounts, "%.1f" % t_back if t_back else "NOT", peak, a.rate))
    r.close()
    srv.kill()
    srv.wait()


if __name__ == "__main__":
    main()
