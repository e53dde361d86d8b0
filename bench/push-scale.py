#!/usr/bin/env python3
"""Benchmark 1 of issue #11: push latency at scale (run by bench/push-scale.sh).

N accounts (N Dovecot users on a real Dovecot on loopback with
imap_hibernate on, tests/fixture/dovecot.sh --hibernate) belong to U hub
users (account i to hub user i mod U); serve runs with provider push, one
idle connection per account. For each of S samples spread over the
accounts, a separate imaplib client APPENDs a message to one account's
INBOX and the time until a StateChange arrives on an EventSource of the
hub user owning it is measured: p50 (target <= 1 s) and p99 (<= 2 s).
Samples are taken one at a time, each on an account idle for longer than
the hibernate timeout (so its Dovecot connection is hibernated when the
mail arrives). Also printed: how many of the N connections idle, how many
imap processes Dovecot keeps (the others are hibernated), serve's RSS.

usage: push-scale.py --accounts N --hub-users U --samples S [--notify]
                     [--hibernate SECONDS] [--keep DIR]
  env MK_BIN: the mailkeep binary (default build/mailkeep)
"""
import argparse, http.client, imaplib, json, os, re, shutil, signal, ssl, statistics
import subprocess, sys, tempfile, threading, time, urllib.parse, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "tests", "fixture", "dovecot.sh")
BIN = os.environ.get("MK_BIN", os.path.join(HERE, "..", "build", "mailkeep"))

# Dovecot 2.3's capabilities after login, without NOTIFY: a connection with
# NOTIFY set cannot hibernate, so by default the bench hides it and push
# idles with IDLE + sweeps (--notify keeps Dovecot's own list).
CAPS_NO_NOTIFY = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY "
                  "THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND "
                  "URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED "
                  "I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH "
                  "LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE "
                  "SAVEDATE LITERAL+ SPECIAL-USE")

procs = []


def log(*a):
    print(*a, flush=True)


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, **kw)


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def dovecot_procs(instance):
    """(imap processes, imap-hibernate processes, their RSS in KB) of the instance."""
    imap = hib = rss = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        # Titles read "dovecot-INSTANCE/imap ...".
        head, _, rest = cmd.partition("/")
        if not head.endswith(instance) or not rest:
            continue
        name = rest.split()[0]
        if name == "imap":
            imap += 1
        elif name == "imap-hibernate":
            hib += 1
        else:
            continue
        rss += rss_kb(int(pid))
    return imap, hib, rss


def dovecot_log_counts(path):
    """(logins, failed unhibernations) in Dovecot's log so far."""
    logins = fails = 0
    with open(path, errors="replace") as f:
        for line in f:
            if "imap-login: Info: Login:" in line:
                logins += 1
            elif "Failed to unhibernate" in line:
                fails += 1
    return logins, fails


def metrics(base):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(r'^mailkeep_push_connections\{state="(\w+)"\} (\d+)$', text, re.M):
        out[m.group(1)] = int(m.group(2))
    return out


class Stream(threading.Thread):
    """An EventSource of one hub user: (arrival time, state) of each StateChange."""

    def __init__(self, base, token):
        super().__init__(daemon=True)
        self.url = urllib.parse.urlparse(base)
        self.token = token
        self.events = []
        self.cv = threading.Condition()
        self.start()

    def run(self):
        c = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=3600)
        c.request("GET", "/jmap/eventsource?types=*&closeafter=no&ping=30",
                  headers={"Authorization": "Bearer " + self.token})
        r = c.getresponse()
        event = None
        while True:
            line = r.fp.readline()
            if not line:
                return
            line = line.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "state":
                t = time.time()
                d = json.loads(line[5:])
                states = {s for acc in d.get("changed", {}).values() for s in acc.values()}
                with self.cv:
                    self.events.append((t, max(states, default="")))
                    self.cv.notify_all()

    def wait_after(self, t0, timeout):
        end = time.time() + timeout
        with self.cv:
            while True:
                for t, st in self.events:
                    if t >= t0:
                        return t, st
                left = end - time.time()
                if left <= 0:
                    return None
                self.cv.wait(left)


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--hub-users", type=int, default=10)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--hibernate", type=int, default=5)
    ap.add_argument("--notify", action="store_true")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--keep", default=None)
    a = ap.parse_args()
    tmp = a.keep or tempfile.mkdtemp(prefix="mk-pushscale-")
    os.makedirs(tmp, exist_ok=True)
    fxdir = os.path.join(tmp, "dovecot")
    data = os.path.join(tmp, "data")
    serve = None
    # Every imap process in IDLE holds an inotify instance, all of them as
    # the one mail user: past the kernel's default of 128 per user Dovecot
    # falls back to polling every 30 s ("Inotify instance limit ...
    # exceeded") and cannot hibernate. Raised for the run, restored after.
    inotify = "/proc/sys/fs/inotify/max_user_instances"
    inotify_old = None
    try:
        with open(inotify) as f:
            cur = int(f.read())
        if cur < 2 * a.accounts + 512:
            with open(inotify, "w") as f:
                f.write(str(2 * a.accounts + 512))
            inotify_old = cur
            log("fs.inotify.max_user_instances %d -> %d for the run" % (cur, 2 * a.accounts + 512))
    except OSError as e:
        log("warning: cannot raise %s (%s): Dovecot may poll instead of IDLE" % (inotify, e))
    try:
        t_setup = time.time()
        args = ["bash", FIXTURE, "start", fxdir, "--users", str(a.accounts), "--hibernate",
                str(a.hibernate), "--no-compress"]
        if not a.notify:
            args += ["--capability", CAPS_NO_NOTIFY]
        out = run(args).stdout
        env = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
        port, ca = int(env["IMAPS_PORT"]), env["CA_FILE"]
        users = env["USERS"].strip('"').split()
        instance = None
        with open(env["CONF"]) as f:
            for line in f:
                if line.startswith("instance_name = "):
                    instance = line.split("=", 1)[1].strip()
        log("Dovecot: %d users, imap_hibernate_timeout %d s, NOTIFY %s"
            % (len(users), a.hibernate, "offered" if a.notify else "not offered"))

        run([BIN, "--data", data, "init"])
        hubpw = os.path.join(tmp, "hub.pass")
        with open(hubpw, "w") as f:
            f.write("bench hub password")
        hubs = ["h%d" % u for u in range(a.hub_users)]
        for h in hubs:
            run([BIN, "--data", data, "user", "add", h, "--password-file", hubpw])
        # Accounts, a.jobs hub users at a time (hub.db serializes the writes).
        owner = {}

        def add_for(hi):
            for i in range(hi, a.accounts, a.hub_users):
                u = users[i]
                owner[u] = hubs[hi]
                run([BIN, "--data", data, "account", "add", "--user", hubs[hi], "--imap",
                     "imaps://127.0.0.1:%d" % port, "--login", u, "--password-file",
                     os.path.join(fxdir, u + ".pass"), "--ca-file", ca, "--consent",
                     "--no-check"])
            run([BIN, "--data", data, "sync", "--user", hubs[hi]], timeout=1800)

        pending = list(range(a.hub_users))
        errors = []

        def worker():
            while pending:
                try:
                    hi = pending.pop()
                except IndexError:
                    return
                try:
                    add_for(hi)
                except subprocess.CalledProcessError as e:
                    errors.append("%s: %s %s" % (e.cmd, e.stdout, e.stderr))
        ts = [threading.Thread(target=worker) for _ in range(a.jobs)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            raise SystemExit("setup failed: " + errors[0])
        tokens = {h: run([BIN, "--data", data, "device", "add", "--user", h, "bench"])
                  .stdout.strip().splitlines()[-1] for h in hubs}
        log("hub: %d users, %d accounts added and synced once in %.0f s"
            % (len(hubs), a.accounts, time.time() - t_setup))

        serve = subprocess.Popen([BIN, "--data", data, "serve", "--listen", "127.0.0.1:0",
                                  "--sync-interval", "0", "--access-log", "/dev/null",
                                  "--max-connections", str(a.hub_users + 32)],
                                 stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "serve.log"), "w"),
                                 stdin=subprocess.DEVNULL, text=True)
        procs.append(serve)
        line = serve.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if not m:
            raise SystemExit("serve did not start: " + line)
        base = m.group(1)
        # serve logs to stdout: keep reading it (a full pipe would stall serve).
        def drain(f, out):
            for l in f:
                out.write(l)
        threading.Thread(target=drain, args=(serve.stdout, open(os.path.join(tmp, "serve.out"), "w", buffering=1)),
                         daemon=True).start()
        t0 = time.time()
        idle_after = None
        while time.time() - t0 < a.accounts / 10 + 120:
            st = metrics(base)
            if st.get("idle", 0) >= a.accounts:
                idle_after = time.time() - t0
                break
            time.sleep(1)
        st = metrics(base)
        log("serve: %d of %d push connections idle %s" % (
            st.get("idle", 0), a.accounts,
            "after %.1f s" % idle_after if idle_after else "(not all: %s)" % st))
        # Let every connection pass the hibernate timeout, then look.
        time.sleep(a.hibernate + 5)
        imap_p, hib_p, dv_rss = dovecot_procs(instance)
        serve_rss = rss_kb(serve.pid)
        serve_fds = len(os.listdir("/proc/%d/fd" % serve.pid))
        log("Dovecot while idle: %d imap processes, %d imap-hibernate (%.0f MB together); "
            "serve: %.1f MB RSS, %d descriptors" % (imap_p, hib_p, dv_rss / 1024,
                                                     serve_rss / 1024, serve_fds))

        dvlog = os.path.join(fxdir, "dovecot.log")
        logins0, fails0 = dovecot_log_counts(dvlog)
        streams = {h: Stream(base, tokens[h]) for h in hubs}
        time.sleep(2)
        lat, missed, append_ms = [], 0, []
        t_samples0 = time.time()
        step = 7919 % a.accounts or 1  # a prime stride spreads the samples
        ctx = ssl.create_default_context(cafile=ca)
        cli = {}
        for k in range(a.samples):
            u = users[(k * step) % a.accounts]
            h = owner[u]
            s = streams[h]
            c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
            c.login(u, open(os.path.join(fxdir, u + ".pass")).read())
            time.sleep(0.3)  # let earlier StateChanges settle
            with s.cv:
                s.events.clear()
            t_app = time.time()
            typ, _ = c.append("INBOX", None, None,
                              b"Subject: push %d\r\nMessage-ID: <push-%d@bench>\r\n\r\nbody\r\n"
                              % (k, k))
            append_ms.append((time.time() - t_app) * 1000)
            got = s.wait_after(t_app, 10)
            c.logout()
            if typ != "OK" or got is None:
                missed += 1
            else:
                lat.append(got[0] - t_app)
            if (k + 1) % 50 == 0:
                log("  %d samples, p50 so far %.3f s" % (k + 1, statistics.median(lat) if lat else -1))
        del cli
        st = metrics(base)
        serve_rss2 = rss_kb(serve.pid)
        logins1, fails1 = dovecot_log_counts(dvlog)
        t_samples = time.time() - t_samples0
        log("")
        log("%-46s %12s %12s" % ("figure", "measured", "target"))
        if lat:
            p50, p90, p99 = pct(lat, .5), pct(lat, .9), pct(lat, .99)
            log("%-46s %10.3f s %10.3f s  %s" % ("push latency p50 (APPEND -> StateChange)", p50, 1.0,
                                                   "ok" if p50 <= 1 else "OVER"))
            log("%-46s %10.3f s" % ("push latency p90", p90))
            log("%-46s %10.3f s %10.3f s  %s" % ("push latency p99", p99, 2.0,
                                                   "ok" if p99 <= 2 and not missed else "OVER"))
            log("%-46s %10.3f s" % ("push latency max", max(lat)))
            log("%-46s %10.1f ms" % ("APPEND alone, median (in the latency)",
                                     statistics.median(append_ms)))
        log("%-46s %12d %12d" % ("samples (over distinct accounts)", len(lat), a.samples))
        log("%-46s %12d %12d" % ("samples with no StateChange within 10 s", missed, 0))
        log("%-46s %12d %12d" % ("push connections idle at the end", st.get("idle", 0), a.accounts))
        # Dovecot's logins minus the bench's own: serve's one-folder syncs
        # (one login each) plus any push reconnects.
        log("%-46s %12d %12d" % ("serve logins during the samples (%.0f s)" % t_samples,
                                 logins1 - logins0 - a.samples, a.samples))
        log("%-46s %12d %12d" % ("Dovecot: failed unhibernations (samples)", fails1 - fails0, 0))
        log("%-46s %12d %12d" % ("Dovecot: failed unhibernations (whole run)", fails1, 0))
        log("%-46s %12d" % ("Dovecot imap processes while idle", imap_p))
        log("%-46s %12d" % ("Dovecot imap-hibernate processes", hib_p))
        log("%-46s %10.1f MB" % ("serve RSS with %d accounts idle" % a.accounts, serve_rss / 1024))
        log("%-46s %10.1f MB" % ("serve RSS after the samples", serve_rss2 / 1024))
    finally:
        if serve is not None and serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
        subprocess.run(["bash", FIXTURE, "stop", fxdir], capture_output=True)
        if inotify_old is not None:
            with open(inotify, "w") as f:
                f.write(str(inotify_old))
        if a.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
