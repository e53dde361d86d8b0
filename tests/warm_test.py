#!/usr/bin/env python3
"""Warm sync sessions in serve (src/service/svc-pool.c) against a real
Dovecot: with provider push on, each new message makes the account worker
sync; the first sync logs in, the next ones reuse its parked session.

Logins are counted in the audit log (provider.login; provider push's own
login says mechanism=push and is not counted) and, independently, in
Dovecot's log (every login there, ours and the test's own APPENDs).

Scenarios:
  reuse    3 messages one after another: each arrives (JMAP), ONE sync
           login for the 3 syncs and one credential opened; then the
           account's password set again by the CLI: the next sync logs in
           anew (the old session is not used), the one after reuses again;
           the session kicked at the server (doveadm kick): the next sync
           still works, with a fresh login
           the parked session logs out at SIGTERM
  off      sync_keep_seconds = 0: every sync logs in (the old behaviour); on
           again, reused; the account removed: its session logs out at once

usage: warm_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import json, os, re, subprocess, sys, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replay_test  # noqa: E402
from sync_test import BIN, Fixture, check, run_scenarios  # noqa: E402

TIMEOUT = 60  # seconds; generous for a loaded CI machine


def wait(cond, what, timeout=TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out: " + what)


class Warm:
    """A hub with the fixture's account and serve with provider push."""

    def __init__(self, tmp, name, conf=""):
        self.fx = Fixture(tmp, name, count=3)
        self.hub = replay_test.Hub(self.fx, tmp, name, push=True)
        self.n = 0
        # Counted from serve's start (restart: push's first connection may
        # itself make the worker sync; that sync is one of serve's).
        self.restart(conf)

    def audit(self):
        """The audit log's lines, read once: every count of one counts()
        comes from the same reading (a sync in flight between two readings
        would make them disagree)."""
        return self.hub.mk("audit", "--user", "alice").stdout.splitlines()

    @staticmethod
    def events(lines, event):
        return [l for l in lines if (" " + event + " ") in l or l.split()[3:4] == [event]]

    def push_logins(self):
        return self.counts()["push"]

    def dovecot_logins(self):
        path = os.path.join(self.fx.dir, "dovecot.log")
        if not os.path.exists(path):
            return None
        with open(path, errors="replace") as f:
            return sum(1 for line in f if "imap-login: Info: Login:" in line)

    def deliver(self):
        """One new message on the server; returns once JMAP shows it."""
        self.n += 1
        msgid = "warm-%d-%d" % (os.getpid(), self.n)
        c = self.fx.conn()
        typ, _ = c.append("INBOX", None, None,
                          replay_test.raw_message("warm %d" % self.n, msgid))
        c.logout()
        check(typ == "OK", "APPEND failed")
        key = "%s@example.org" % msgid
        wait(lambda: key in self.hub.emails("INBOX"), "message %d arrives over JMAP" % self.n)

    def restart(self, conf):
        """serve again with conf as its mailkeep.conf lines; the counts
        start here (self.base)."""
        self.hub.stop()
        path = os.path.join(self.fx.data, "mailkeep.conf")
        lines = open(path).read().splitlines(True) if os.path.exists(path) else []
        lines = [l for l in lines if not l.startswith("sync_keep_")]
        with open(path, "w") as f:
            f.write("".join(lines) + conf)
        self.base = self.counts()
        self.hub.serve = subprocess.Popen(
            [BIN, "--data", self.fx.data, "serve", "--listen", "127.0.0.1:0",
             "--sync-interval", "0", "--no-replay"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL)
        line = self.hub.serve.stdout.readline()
        m = re.search(r"session at (\S+?)\)", line)
        check(m is not None, "serve did not start: " + line)
        self.hub.session = self.hub.get(m.group(1))
        self.hub.api_url = self.hub.session["apiUrl"]
        wait(lambda: self.push_logins() > self.base["push"], "provider push logged in")

    def counts(self):
        lines = self.audit()
        logins = self.events(lines, "provider.login")
        return {"sync": len([l for l in logins if "mechanism=push" not in l]),
                "push": len([l for l in logins if "mechanism=push" in l]),
                "decrypt": len(self.events(lines, "credential.decrypt")),
                "dovecot": self.dovecot_logins(), "appends": self.n}

    def since(self, base):
        """Logins and credentials opened since base (counts())."""
        now = self.counts()
        d = {k: (now[k] - base[k]) if now[k] is not None else None for k in now}
        # Push opens the credential for each of its logins too.
        d["decrypt"] -= d["push"]
        return d

    def settled_since(self, base):
        """since(base) once the last sync ended: deliver() returns when the
        message shows over JMAP, before that sync parks its session; the
        sync's login (if any) is audited before then. With the pool on."""
        wait(lambda: self.metric("mailkeep_warm_sessions") == 1, "the session parked")
        return self.since(base)

    def wait_dovecot(self, base, want):
        """Dovecot writes its log asynchronously: wait for want logins since
        base; more than want is a failure at once."""
        def seen():
            n = self.since(base)["dovecot"]
            check(n <= want, "Dovecot saw %d logins, more than %d" % (n, want))
            return n == want
        wait(seen, "Dovecot's log shows %d logins" % want)

    def stop_serve(self):
        """SIGTERM; serve's log (its standard output and error)."""
        srv = self.hub.serve
        self.hub.stop()
        log = srv.stdout.read() + srv.stderr.read() if srv is not None else ""
        check("Sanitizer" not in log, "serve (a sanitizer build): %s" % log[-3000:])
        return log

    def manage(self, method, args):
        body = {"using": ["urn:ietf:params:jmap:core", "urn:mailkeep:manage"],
                "methodCalls": [[method, dict(args, accountId="mailkeep"), "0"]]}
        name, res, _ = self.hub.request(self.hub.api_url,
                                        json.dumps(body).encode())["methodResponses"][0]
        check(name == method, "%s: %s" % (method, res))
        return res

    def metric(self, name):
        """A sample of serve's /metrics (loopback: no token needed)."""
        base = self.hub.api_url.split("/jmap")[0]
        with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
            text = r.read().decode()
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        check(m is not None, "no %s in /metrics" % name)
        return float(m.group(1))

    def stop(self):
        self.hub.stop()
        self.fx.stop()


# The exact counts below (one sync login) hold because serve runs with
# --sync-interval 0: the account worker (push events) is the only syncer, so
# no scheduler round syncs (and logs in) in between.
def t_reuse(tmp):
    w = Warm(tmp, "reuse")
    try:
        for _ in range(3):
            w.deliver()
        d = w.settled_since(w.base)
        check(d["sync"] == 1, "3 push-triggered syncs: %d sync logins, not 1" % d["sync"])
        check(d["decrypt"] == 1, "3 syncs: %d credentials opened, not 1" % d["decrypt"])
        if d["dovecot"] is not None:
            # APPENDs, push and the one sync login.
            w.wait_dovecot(w.base, d["appends"] + d["push"] + 1)

        # A new password (the same text: a new sealed version) from the
        # command line, while serve runs: the parked session is not used.
        w.hub.mk("account", "password", "--user", "alice", "1", "--password-file",
                 w.fx.env["PASS_FILE"], "--no-check")
        base = w.counts()
        w.deliver()
        check(w.settled_since(base)["sync"] == 1, "after account password: no fresh login")
        w.deliver()
        check(w.settled_since(base)["sync"] == 1,
              "after account password: the new session not reused")

        # The parked session is ended at the server (and push's with it):
        # the NOOP fails, the next sync logs in anew and still works.
        base = w.counts()
        w.fx.doveadm("kick", "alice")
        wait(lambda: w.push_logins() > base["push"], "provider push back after the kick")
        w.deliver()
        d = w.settled_since(base)
        check(d["sync"] == 1, "after a kick: %d sync logins, not 1" % d["sync"])
        w.deliver()
        check(w.settled_since(base)["sync"] == 1, "after a kick: the new session not reused")

        # SIGTERM: the parked session logs out.
        log = w.stop_serve()
        check("warm sessions: 1 logged out (stopping)" in log,
              "stop: the parked session not logged out: %s" % log[-2000:])
    finally:
        w.stop()


def t_off(tmp):
    w = Warm(tmp, "off", conf="sync_keep_seconds = 0\n")
    try:
        for _ in range(3):
            w.deliver()
        # Push's first connection may add a sync of its own: 3 or 4. A sync
        # may still be running (its login audited, its credential not yet or
        # the other way round): wait until they agree.
        wait(lambda: w.since(w.base)["sync"] >= 3, "3 sync logins for 3 syncs")
        def agree():
            d = w.since(w.base)
            return d["decrypt"] == d["sync"]
        wait(agree, "sync_keep_seconds = 0: one credential a login")
        # On again (the default) after a restart: reused.
        w.restart("")
        for _ in range(2):
            w.deliver()
        check(w.settled_since(w.base)["sync"] == 1, "sync_keep_seconds default: not reused")

        # The account removed (ExternalAccount/set destroy): its parked
        # session logs out at once; nothing is left for the stop. (The
        # last sync parks its session just after its mail shows: wait.)
        wait(lambda: w.metric("mailkeep_warm_sessions") == 1, "the session parked")
        check(w.metric("mailkeep_warm_session_reuses_total") >= 1, "no reuse in /metrics")
        ids = [a["id"] for a in w.manage("ExternalAccount/get", {"ids": None})["list"]]
        check(len(ids) == 1, "ExternalAccount/get: %s" % ids)
        res = w.manage("ExternalAccount/set", {"destroy": ids})
        check(res.get("destroyed") == ids, "ExternalAccount/set destroy: %s" % res)
        wait(lambda: w.metric("mailkeep_warm_sessions") == 0, "no session kept after the removal")
        log = w.stop_serve()
        check("warm sync session logged out (account removed)" in log,
              "removal: the parked session not logged out: %s" % log[-2000:])
        check("logged out (stopping)" not in log, "removal: a session still parked at stop")
    finally:
        w.stop()


SCENARIOS = {"reuse": t_reuse, "off": t_off}

if __name__ == "__main__":
    run_scenarios(SCENARIOS, "mk-warm-test-", sys.argv[1:])
