#!/usr/bin/env python3
"""Benchmark 2 of issue #11: the cost of an idle account.

N accounts idle (implicit TLS, LOGIN, EXAMINE, LIST + STATUS sweep, IDLE)
against bench/idle-server (C, epoll), driven by bench/push-probe, which runs
src/push's loop exactly as serve does (serve's own account setup for 10,000
users is not what is measured here). In one run:

  1. RSS of push-probe with SMALL accounts idle, then with N: the growth
     per idle account is the slope between the two (target <= 64 KB);
  2. descriptors of both processes (from /proc/PID/fd);
  3. CPU of push-probe over --idle-seconds with everything idle (from
     /proc/PID/stat; target ~0);
  4. the server is killed (SIGKILL: every connection drops at once, as in
     a crash) and started again on the same port after --down-seconds;
     every account must come back to IDLE, and the server's accepts per
     second must never exceed the configured connect rate.

usage: idle-bench.py [--accounts N] [--small N] [--rate R] [--idle-seconds S]
                     [--down-seconds S]
  env MK_PROBE (default build/push-probe), MK_IDLE_SERVER (build/idle-server)
"""
import argparse, os, resource, shutil, signal, socket, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "..", "build")
PROBE = os.environ.get("MK_PROBE", os.path.join(BUILD, "push-probe"))
SERVER = os.environ.get("MK_IDLE_SERVER", os.path.join(BUILD, "idle-server"))

procs = []


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


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Server:
    def __init__(self, port, d):
        self.statsfile = os.path.join(d, "server-stats")
        self.p = subprocess.Popen([SERVER, str(port), os.path.join(d, "cert.pem"),
                                   os.path.join(d, "key.pem"), self.statsfile],
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        procs.append(self.p)
        line = self.p.stdout.readline()
        if not line.startswith("listening"):
            raise SystemExit("idle-server did not start")

    def kill(self):
        self.p.kill()
        self.p.wait()

    def rows(self, since):
        """(second, accepts, logins, open, idling) lines from `since` on."""
        out = []
        with open(self.statsfile) as f:
            for line in f:
                v = [int(x) for x in line.split()]
                if v[0] >= since:
                    out.append(v)
        return out


class Probe:
    def __init__(self, n, port, d, rate):
        pw = os.path.join(d, "pw")
        self.p = subprocess.Popen([PROBE, "--stats", "--rate", str(rate)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(self.p)
        for i in range(1, n + 1):
            self.p.stdin.write("%d imaps://127.0.0.1:%d u%d %s %s\n"
                               % (i, port, i, pw, os.path.join(d, "cert.pem")))
        self.p.stdin.write("-\n")
        self.p.stdin.flush()
        self.n = n
        self.last = {}
        self.reports = 0
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            if line.startswith("stats "):
                with self.cv:
                    self.last = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
                    self.cv.notify_all()
            elif line.startswith("report "):
                self.reports += 1

    def wait(self, pred, timeout):
        t0 = time.time()
        with self.cv:
            while time.time() - t0 < timeout:
                if self.last and pred(self.last):
                    return time.time() - t0
                self.cv.wait(1)
        return None

    def close(self):
        self.p.kill()
        self.p.wait()


def peaks(rows, window=5):
    """The most accepts in one second, and the highest average over any
    `window` consecutive seconds (seconds without a row had none)."""
    per = {row[0]: row[1] for row in rows}
    if not per:
        return 0, 0.0
    lo, hi = min(per), max(per)
    best = 0.0
    for t in range(lo, max(lo, hi - window + 1) + 1):
        best = max(best, sum(per.get(t + i, 0) for i in range(window)) / window)
    return max(per.values()), best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--idle-seconds", type=int, default=30)
    ap.add_argument("--down-seconds", type=float, default=2.0)
    a = ap.parse_args()
    for b in (PROBE, SERVER):
        if not os.access(b, os.X_OK):
            raise SystemExit("%s missing: cmake --build build --target push-probe idle-server" % b)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < a.accounts + 100:
        raise SystemExit("RLIMIT_NOFILE hard limit %d too low for %d accounts" % (hard, a.accounts))
    small = min(a.small, a.accounts // 2)
    d = tempfile.mkdtemp(prefix="mk-idlebench-")
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", os.path.join(d, "key.pem"), "-out", os.path.join(d, "cert.pem")],
                       check=True, capture_output=True)
        with open(os.path.join(d, "pw"), "w") as f:
            f.write("secret")
        port = free_port()
        up_limit = a.accounts / a.rate * 2 + 60
        print("idle-bench: %d accounts (and %d for the slope), connect rate %d/s, "
              "2 cores shared" % (a.accounts, small, a.rate), flush=True)

        # 1. The small run, for the slope.
        srv = Server(port, d)
        r = Probe(small, port, d, a.rate)
        if r.wait(lambda s: s["idle"] >= small, small / a.rate * 2 + 60) is None:
            raise SystemExit("the %d accounts did not all reach IDLE: %s" % (small, r.last))
        time.sleep(3)
        rss_small = rss_kb(r.p.pid)
        r.close()
        srv.kill()
        r0 = Probe(0, port, d, a.rate)
        time.sleep(1.5)
        rss_empty = rss_kb(r0.p.pid)
        r0.close()

        # 2. The full run.
        srv = Server(port, d)
        t0 = time.time()
        r = Probe(a.accounts, port, d, a.rate)
        t_up = r.wait(lambda s: s["idle"] >= a.accounts, up_limit)
        if t_up is None:
            raise SystemExit("only %s of %d accounts reached IDLE" % (r.last, a.accounts))
        time.sleep(3)
        rss_full = rss_kb(r.p.pid)
        fds_probe, fds_srv = nfds(r.p.pid), nfds(srv.p.pid)
        rss_srv = rss_kb(srv.p.pid)
        c0, s0, w0 = cpu_s(r.p.pid), cpu_s(srv.p.pid), time.time()
        logins0 = r.last["logins"]
        time.sleep(a.idle_seconds)
        c1, s1, w1 = cpu_s(r.p.pid), cpu_s(srv.p.pid), time.time()
        logins1 = r.last["logins"]
        per = (rss_full - rss_small) / (a.accounts - small)
        startup_peak, startup_avg = peaks(srv.rows(int(t0)))

        # 3. Server restart.
        srv.kill()
        t_kill = time.time()
        down = r.wait(lambda s: s["idle"] == 0, 60)
        time.sleep(max(0.0, a.down_seconds - (time.time() - t_kill)))
        srv = Server(port, d)
        t_start = time.time()
        t_back = r.wait(lambda s: s["idle"] >= a.accounts, up_limit + 300)
        time.sleep(2)
        rows = srv.rows(int(t_start))
        peak, peak_avg = peaks(rows)
        accepts = sum(row[1] for row in rows)
        srv_idling = rows[-1][4] if rows else 0
        st = r.last

        def verdict(ok):
            return "ok" if ok else "OVER"

        print()
        print("%-44s %14s %14s" % ("figure", "measured", "target"))
        print("%-44s %11.1f KB %11d KB  %s" % ("RSS growth per idle account", per, 64,
                                               verdict(per <= 64)))
        print("%-44s %11.1f MB" % ("push-probe RSS, %d accounts idle" % a.accounts,
                                   rss_full / 1024))
        print("%-44s %11.1f MB" % ("push-probe RSS, %d accounts idle" % small, rss_small / 1024))
        print("%-44s %11.1f MB" % ("push-probe RSS, no account", rss_empty / 1024))
        print("%-44s %14d %14s" % ("push-probe descriptors", fds_probe,
                                   "%.2f/account" % (fds_probe / a.accounts)))
        print("%-44s %14d" % ("idle-server descriptors", fds_srv))
        print("%-44s %11.1f MB" % ("idle-server RSS", rss_srv / 1024))
        cpu_pct = (c1 - c0) / (w1 - w0) * 100
        print("%-44s %12.3f %% %14s  %s" % ("push-probe CPU while idle (%.0f s)" % (w1 - w0),
                                             cpu_pct, "~0", verdict(cpu_pct < 1)))
        print("%-44s %12.3f %%" % ("idle-server CPU while idle", (s1 - s0) / (w1 - w0) * 100))
        print("%-44s %14d %14d" % ("logins while idle", logins1 - logins0, 0))
        print("%-44s %12.1f s %12.1f s" % ("all idle after start", t_up, a.accounts / a.rate))
        print("%-44s %12d/s %12d/s" % ("start: most accepts in one second", startup_peak, a.rate))
        print("%-44s %10.1f/s %12d/s  %s" % ("start: most accepts a second over 5 s", startup_avg,
                                             a.rate, verdict(startup_avg <= a.rate)))
        print("%-44s %14s" % ("restart: all dropped after", "%.1f s" % down if down is not None
                              else "NOT"))
        print("%-44s %14s %12.1f s  %s" % ("restart: all %d idle again after" % a.accounts,
                                            "%.1f s" % t_back if t_back is not None else "NOT",
                                            a.accounts / a.rate,
                                            verdict(t_back is not None)))
        print("%-44s %12d/s %12d/s" % ("restart: most accepts in one second", peak, a.rate))
        print("%-44s %10.1f/s %12d/s  %s" % ("restart: most accepts a second over 5 s", peak_avg,
                                             a.rate, verdict(peak_avg <= a.rate)))
        print("%-44s %14d %14d" % ("restart: accepts in all", accepts, a.accounts))
        print("%-44s %14d %14d" % ("restart: idling at the server", srv_idling, a.accounts))
        print("%-44s %14s" % ("push-probe states at the end",
                              " ".join("%s=%d" % kv for kv in st.items() if kv[0] != "logins")))
        srv.kill()
        r.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
