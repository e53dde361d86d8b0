#!/usr/bin/env python3
"""Integration tests of the daemon (`mailkeep serve`, src/daemon/): its logs,
/healthz and /metrics, the replay of device changes at once, and SIGTERM
with work in flight, against a real Dovecot (tests/fixture/dovecot.sh) and a
real SMTP server (tests/fixture/smtpd.py) on loopback.

usage: daemon_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import json, os, re, signal, subprocess, sys, time, urllib.error, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import BIN, Fixture, check, run, run_scenarios  # noqa: E402
import replay_test  # noqa: E402
import smtp_test  # noqa: E402

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (info|error)( user=[a-z0-9._-]+)?"
                      r"( account=\d+)? \S")


def start(data, *extra):
    p = subprocess.Popen([BIN, "--data", data, "serve", "--listen", "127.0.0.1:0",
                          "--access-log", os.devnull, *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
    line = p.stdout.readline()
    m = re.search(r"serving (http://127\.0\.0\.1:\d+)", line)
    check(m is not None, "serve did not start: %r" % line)
    check(LOG_LINE.match(line) is not None, "log line format: %r" % line)
    return p, m.group(1)


def stop(p, bound=60):
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("serve did not stop within %d s" % bound)
    out, err = p.stdout.read(), p.stderr.read()
    check(rc == 0, "serve exited %d: %s" % (rc, err))
    # Every line of the daemon's log (stdout, and stderr but for the access
    # log's lines when it goes there).
    for line in out.splitlines() + [x for x in err.splitlines() if " mailkeep: " in x]:
        check(LOG_LINE.match(line) is not None, "log line format: %r" % line)
    return out, err, time.monotonic() - t0


def get(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*)\})? (\S+)$')


def parse_metrics(text):
    """A small parser of the Prometheus text format (0.0.4): every line a
    HELP, a TYPE or a sample of a family whose TYPE came first; values are
    floats; histograms have cumulative buckets ending in +Inf == _count.
    Returns {family: [(name, {label: value}, float)]}."""
    check(text.endswith("\n"), "the text ends with a newline")
    types, fams = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            check(len(line.split(" ", 3)) == 4, "HELP: %r" % line)
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            check(typ in ("counter", "gauge", "histogram", "summary", "untyped"), line)
            check(name not in types, "TYPE twice: " + name)
            types[name] = typ
            fams[name] = []
            continue
        m = SAMPLE.match(line)
        check(m is not None, "sample: %r" % line)
        name, labels, value = m.group(1), m.group(3), m.group(5)
        fam = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        check(fam in types, "sample before its TYPE: %r" % line)
        lab = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', labels or ""))
        fams[fam].append((name, lab, float(value)))
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        series = {}
        for name, lab, v in fams[fam]:
            key = tuple(sorted((k, x) for k, x in lab.items() if k != "le"))
            series.setdefault(key, {"b": [], "count": None})
            if name.endswith("_bucket"):
                series[key]["b"].append((lab["le"], v))
            elif name.endswith("_count"):
                series[key]["count"] = v
        for key, s in series.items():
            vals = [v for _, v in s["b"]]
            check(vals == sorted(vals), "%s %s: buckets not cumulative" % (fam, key))
            check(s["b"][-1][0] == "+Inf" and s["b"][-1][1] == s["count"], "%s %s: +Inf" % (fam, key))
    return fams


def t_healthz_metrics(tmp):
    data = os.path.join(tmp, "hm")
    run([BIN, "--data", data, "init"])
    p, base = start(data, "--sync-interval", "0")
    try:
        st, ctype, body = get(base + "/healthz")
        h = json.loads(body)
        check(st == 200 and ctype.startswith("application/json"), "healthz %d %s" % (st, ctype))
        check(h["ok"] is True and h["hub"] is True and h["store"] is True and h["uptime"] >= 0, body)
        check(get(base + "/jmap/api/")[0] == 401, "the API still needs a sign-in")
        st, ctype, body = get(base + "/metrics")  # loopback: allowed without a token
        check(st == 200 and ctype.startswith("text/plain; version=0.0.4"), "metrics %d %s" % (st, ctype))
        fams = parse_metrics(body)
        for fam in ("mailkeep_sync_runs_total", "mailkeep_sync_errors_total",
                    "mailkeep_replay_runs_total", "mailkeep_replay_changes_total",
                    "mailkeep_replay_failures_total", "mailkeep_push_connections",
                    "mailkeep_outbox_queued", "mailkeep_outbox_failures_total",
                    "mailkeep_http_request_duration_seconds", "mailkeep_open_stores"):
            check(fam in fams, "no %s in the metrics" % fam)
        api = [v for n, lab, v in fams["mailkeep_http_request_duration_seconds"]
               if n.endswith("_count") and lab["route"] == "healthz"]
        check(api == [1.0], "healthz requests counted: %s" % api)
    finally:
        stop(p)
    # With a metrics_token: the token, and nothing else, reads the metrics.
    token = "m3tr1cs-t0ken-0123456789"
    with open(os.path.join(data, "mailkeep.conf"), "a") as f:
        f.write("metrics_token = %s\n" % token)
    p, base = start(data, "--sync-interval", "0")
    try:
        check(get(base + "/metrics")[0] == 401, "metrics without the token")
        check(get(base + "/metrics", "x" * len(token))[0] == 401, "metrics with a wrong token")
        st, _, body = get(base + "/metrics", token)
        check(st == 200, "metrics with the token: %d" % st)
        parse_metrics(body)
        check(get(base + "/healthz")[0] == 200, "healthz needs no token")
    finally:
        out, err, _ = stop(p)
    check(token not in out + err, "the token in the logs")


def t_replay_at_once(tmp):
    fx = Fixture(tmp, "ra", count=20)
    hub = None
    try:
        hub = replay_test.Hub(fx, tmp, "ra", replay_now=True)  # serve with --sync-interval 0
        c = fx.conn()
        c.select("INBOX", readonly=True)
        uid = int(c.uid("SEARCH", "ALL")[1][0].split()[0])
        db = hub.db()
        eid = db.execute("SELECT m.email_id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
                         "WHERE x.name = 'INBOX' AND m.uid = ? AND x.account_id = (SELECT id FROM "
                         "accounts WHERE key != 'hub:local' LIMIT 1)", (uid,)).fetchone()[0]
        db.close()
        t0 = time.monotonic()
        hub.set_email(update={"E%d" % eid: {"keywords/$atonce": True}})
        while b"$atonce" not in b" ".join(x if isinstance(x, bytes) else b""
                                          for x in c.uid("FETCH", str(uid), "(FLAGS)")[1]):
            check(time.monotonic() - t0 < 10, "the keyword never reached the server")
            time.sleep(0.02)
        c.logout()
        s = hub.serve
        hub.serve = None
        out, _, _ = stop(s)
        check(re.search(r"user=alice account=1 replayed alice, account 1: 1 device changes", out),
              "no replay line: " + out)
    finally:
        if hub is not None:
            hub.stop()
        fx.stop()


def t_sigterm_during_sync(tmp):
    fx = Fixture(tmp, "ts", count=1500)
    try:
        data = fx.data
        run([BIN, "--data", data, "user", "add", "alice"])
        run([BIN, "--data", data, "account", "add", "--user", "alice", "--imap", fx.url(),
             "--login", "alice", "--password-file", fx.env["PASS_FILE"], "--ca-file",
             fx.env["CA_FILE"], "--consent"])
        p, _ = start(data, "--sync-interval", "1")
        time.sleep(1.5)  # the first scheduled sync is under way (1,500 messages)
        out, err, secs = stop(p, bound=120)
        check("signal 15, stopping" in out and "stopped" in out, out)
        # Nothing lost: a sync afterwards ends with the hub as the server.
        r = run([BIN, "--data", data, "sync", "--user", "alice"])
        check("synced alice" in r.stdout, r.stdout)
        c = fx.conn()
        c.select("INBOX", readonly=True)
        server = len(c.uid("SEARCH", "ALL")[1][0].split())
        c.logout()
        db = replay_test.sqlite3.connect(os.path.join(data, "users", "alice", "store.db"))
        hub = db.execute("SELECT count(*) FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
                         "WHERE x.name = 'INBOX' AND x.account_id = (SELECT id FROM accounts "
                         "WHERE key != 'hub:local' LIMIT 1)").fetchone()[0]
        db.close()
        check(hub == server, "hub %d, server %d messages in INBOX" % (hub, server))
        print("  stopped %.1f s after SIGTERM during the sync" % secs)
    finally:
        fx.stop()


def t_sigterm_during_send(tmp):
    fx = Fixture(tmp, "tsend", count=0)
    s = smtp_test.Smtpd(fx, tmp, "tsend", "starttls")
    try:
        h = smtp_test.Hub(fx, tmp, "tsend", s)
        h.send(smtp_test.MSG.replace(b"X-Keep: yes", b"X-Test-Slow: 2"), "--queue-only")
        p, _ = start(h.dir, "--sync-interval", "0")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # claimed: the SMTP session is under way
            try:
                rows = h.outbox_rows()
            except replay_test.sqlite3.OperationalError:
                rows = []
            if rows and rows[0][1] == 1:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # inside the slow DATA
        out, err, secs = stop(p, bound=60)
        rows = h.outbox_rows()
        check(rows[0][1] == 2, "the send in flight did not finish: %s" % rows)
        check(len(s.received()) == 1, "received %d" % len(s.received()))
        # And nothing sent twice when serve starts again.
        p, _ = start(h.dir, "--sync-interval", "0")
        time.sleep(3)
        stop(p)
        check(len(s.received()) == 1, "sent again: %d" % len(s.received()))
        print("  stopped %.1f s after SIGTERM during the send" % secs)
    finally:
        s.stop()
        fx.stop()


SCENARIOS = {
    "healthz_metrics": t_healthz_metrics,
    "replay_at_once": t_replay_at_once,
    "sigterm_during_sync": t_sigterm_during_sync,
    "sigterm_during_send": t_sigterm_during_send,
}

if __name__ == "__main__":
    run_scenarios(SCENARIOS, "mk-daemon-test-", sys.argv[1:])
