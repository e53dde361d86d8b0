#!/usr/bin/env python3
"""serve's scheduler beside provider push, against a real Dovecot with the
real mailkeep binary:

  pushed     accounts whose push connection is idle are not logged in to by
             the scheduled rounds (Dovecot's log counts the logins), new mail
             still arrives (push); with push off every round logs in to every
             account; a short full_sync_interval brings the safety-net syncs
  lease      a zero-access user's sign-in (the unlock lease) starts push for
             their account, new mail arrives without a scheduled round; the
             sign-out (the wipe) stops it
  settings   the push settings: bad values refused with what to use
  reconcile  accounts added, changed and removed by the CLI while serve runs:
             the next round starts, restarts or stops their push

usage: scheduler_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import base64, json, os, re, signal, sqlite3, subprocess, sys, time
import urllib.request, urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import BIN, Fixture, check, run, run_scenarios  # noqa: E402

BIN = os.path.abspath(BIN)
ACCOUNTS = ["alice", "bob", "carol"]


class Serve:
    def __init__(self, data, tmp, name, *args, env=None):
        self.out = os.path.join(tmp, name + ".out")
        self.err = os.path.join(tmp, name + ".err")
        self.p = subprocess.Popen(
            [BIN, "--data", data, "serve", "--listen", "127.0.0.1:0", *args],
            stdout=open(self.out, "w"), stderr=open(self.err, "w"),
            stdin=subprocess.DEVNULL, env=env or os.environ)
        self.wait(lambda: re.search(r"serving (\S+) ", self.text()), "serve start", 20)
        self.url = re.search(r"serving (\S+) ", self.text()).group(1)

    def text(self):
        return open(self.out).read()

    def wait(self, cond, what, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return
            check(self.p.poll() is None, "serve died: " + open(self.err).read()[-2000:])
            time.sleep(0.2)
        raise AssertionError("timed out: %s\n%s" % (what, self.text()[-3000:]))

    def metric(self, name):
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as r:
            text = r.read().decode()
        m = re.search("^" + re.escape(name) + r" (\d+)$", text, re.M)
        return int(m.group(1)) if m else 0

    def idle(self):
        return self.metric('mailkeep_push_connections{state="idle"}')

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=60)
        check(rc == 0, "serve exited %d: %s" % (rc, open(self.err).read()[-2000:]))


def logins(fx):
    """Logins Dovecot accepted so far (its log)."""
    with open(os.path.join(fx.dir, "dovecot.log"), errors="replace") as f:
        return sum(1 for line in f if "imap-login: Info: Login:" in line)


def count(data, user):
    path = os.path.join(data, "users", user, "store.db")
    if not os.path.exists(path):
        return 0
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT count(*) FROM messages").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def new_mail(fx, login, tag):
    import imapctl
    c = imapctl.connect(fx.dir, login, "imaps")
    raw = ("From: x@example.org\r\nTo: %s@example.org\r\nSubject: %s\r\n"
           "Message-ID: <%s@example.org>\r\n\r\nbody\r\n" % (login, tag, tag)).encode()
    typ, _ = c.append("INBOX", None, None, raw)
    check(typ == "OK", "append")
    c.logout()


def mk(data, *args, expect=0):
    return run([BIN, "--data", data, *args], expect=expect)


def add_accounts(fx, data, user, logins_, extra=()):
    for login in logins_:
        mk(data, "account", "add", "--user", user, "--imap", fx.url(), "--login", login,
           "--password-file", os.path.join(fx.dir, login + ".pass"),
           "--ca-file", fx.env["CA_FILE"], "--consent", *extra)


# --- scenarios -------------------------------------------------------------

def t_pushed(tmp):
    fx = Fixture(tmp, "pushed", "--users", str(len(ACCOUNTS)), count=20)
    data = fx.data
    try:
        pw = os.path.join(tmp, "hub.pass")
        open(pw, "w").write("hub password of dora")
        mk(data, "user", "add", "dora", "--password-file", pw)
        add_accounts(fx, data, "dora", ACCOUNTS)
        n = len(ACCOUNTS)
        interval = 2

        # Push on: after the first round, no round logs in.
        s = Serve(data, tmp, "push-on", "--sync-interval", str(interval),
                  "--full-sync-interval", "3600")
        s.wait(lambda: ", %d left to provider push" % n in s.text(),
               "the scheduler leaves the pushed accounts alone")
        check(s.idle() == n, "push connections idle: %d" % s.idle())
        l0 = logins(fx)
        time.sleep(3 * interval + 0.5)
        with_push = logins(fx) - l0
        print("  push on:  %d logins in 3 intervals (%d accounts)" % (with_push, n))
        check(with_push == 0, "%d logins while push watched every account" % with_push)
        # New mail still comes, through push.
        before = count(data, "dora")
        new_mail(fx, "bob", "pushed-1")
        s.wait(lambda: count(data, "dora") == before + 1, "new mail through push", 15)
        s.stop()

        # Push off: every round logs in to every account. (Logins count
        # the syncs here: no warm sessions, which would spare the logins.)
        s = Serve(data, tmp, "push-off", "--sync-interval", str(interval), "--push", "off",
                  "--sync-keep-seconds", "0")
        s.wait(lambda: s.text().count("synced") >= n, "the first round")
        time.sleep(1)
        l0 = logins(fx)
        time.sleep(3 * interval + 0.5)
        without = logins(fx) - l0
        print("  push off: %d logins in 3 intervals (%d accounts)" % (without, n))
        check(without >= 2 * n, "only %d logins without push" % without)
        check(", 0 left to provider push" in s.text() and
              re.search(r", [1-9]\d* left to provider push", s.text()) is None,
              "push off but accounts skipped")
        s.stop()

        # The safety net: a full sync of each pushed account every
        # full_sync_interval, not every round.
        s = Serve(data, tmp, "safety", "--sync-interval", "1", "--full-sync-interval", "5",
                  "--sync-keep-seconds", "0")
        s.wait(lambda: ", %d left to provider push" % n in s.text(), "pushed accounts")
        l0 = logins(fx)
        time.sleep(12)
        net = logins(fx) - l0
        print("  full_sync_interval 5 s, rounds every 1 s: %d logins in 12 s" % net)
        check(n <= net <= 3 * n, "%d logins: the safety net is not every 5 s" % net)
        s.stop()
    finally:
        fx.stop()


def account_ids(data, user):
    out = mk(data, "account", "list", "--user", user).stdout
    return [int(x) for x in re.findall(r"^\s*(\d+)\b", out, re.M)]


def t_reconcile(tmp):
    fx = Fixture(tmp, "reconcile", "--users", "2", count=5)
    data = fx.data
    try:
        pw = os.path.join(tmp, "hub.pass")
        open(pw, "w").write("hub password of erin")
        mk(data, "user", "add", "erin", "--password-file", pw)
        add_accounts(fx, data, "erin", ["alice"])
        first = account_ids(data, "erin")
        check(len(first) == 1, "account list: %s" % first)
        s = Serve(data, tmp, "reconcile", "--sync-interval", "2", "--full-sync-interval", "3600")
        s.wait(lambda: ", 1 left to provider push" in s.text(), "alice pushed")

        # Added by the CLI while serve runs: the next round starts its push.
        add_accounts(fx, data, "erin", ["bob"])
        s.wait(lambda: "push: 1 started, 0 restarted, 0 stopped" in s.text(),
               "the round starts the new account's push", 15)
        s.wait(lambda: s.idle() == 2, "two push connections idle", 15)
        s.wait(lambda: ", 2 left to provider push" in s.text(), "both left to push", 15)
        before = count(data, "erin")
        new_mail(fx, "bob", "reconcile-1")
        s.wait(lambda: count(data, "erin") == before + 1, "bob's new mail through push", 15)

        # Changed by the CLI (a new password): the round reconnects it.
        bob = [i for i in account_ids(data, "erin") if i not in first][0]
        mk(data, "account", "password", "--user", "erin", str(bob), "--password-file",
           os.path.join(fx.dir, "bob.pass"))
        s.wait(lambda: "push: 0 started, 1 restarted, 0 stopped" in s.text(),
               "the round restarts the changed account's push", 15)
        s.wait(lambda: s.idle() == 2, "two push connections idle again", 15)

        # Removed by the CLI: the round stops its push.
        mk(data, "account", "remove", "--user", "erin", str(first[0]), "--all-devices")
        s.wait(lambda: "push: 0 started, 0 restarted, 1 stopped" in s.text(),
               "the round stops the removed account's push", 15)
        s.wait(lambda: s.idle() == 1, "one push connection left", 15)
        check("the account is gone: push stopped" in s.text(), "no log line for the stop")
        # Rounds without a change say nothing about push.
        n = s.text().count("push: ")
        time.sleep(5)
        check(s.text().count("push: ") == n, "push reconciled again without a change")
        s.stop()
    finally:
        fx.stop()


PASSPHRASE = "zed's passphrase for the lease-push test"


def t_lease(tmp):
    fx = Fixture(tmp, "lease", "--users", "1", count=10)
    data = fx.data
    try:
        pp = os.path.join(tmp, "zed.pass")
        open(pp, "w").write(PASSPHRASE)
        mk(data, "user", "add", "zed", "--zero-access", "--password-file", pp)
        add_accounts(fx, data, "zed", ["alice"], extra=("--passphrase-file", pp))
        s = Serve(data, tmp, "lease", "--sync-interval", "3600")
        time.sleep(2)
        check(s.idle() == 0, "a locked zero-access user's account is pushed")

        def call(path, token=None):
            req = urllib.request.Request(s.url + path, method="POST", data=b"")
            req.add_header("Authorization", "Bearer " + token if token else
                           "Basic " + base64.b64encode(("zed:" + PASSPHRASE).encode()).decode())
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())

        a = call("/mailkeep/signin?device=phone")
        check(a["unlockedUntil"] is not None, "no lease: %s" % a)
        s.wait(lambda: "provider push: zed unlocked: pushing 1 account" in s.text(),
               "push started by the lease", 10)
        s.wait(lambda: s.idle() == 1, "the push connection idle", 20)
        audit = mk(data, "audit", "--user", "zed").stdout
        check(re.search(r"provider\.login .*mechanism=push", audit) is not None,
              "no push login audited:\n" + audit)
        # The sign-in's round synced the account; new mail comes by push
        # (the next scheduled round is an hour away).
        s.wait(lambda: count(data, "zed") > 0, "the sign-in's sync", 60)
        time.sleep(1)
        before = count(data, "zed")
        new_mail(fx, "alice", "lease-1")
        s.wait(lambda: count(data, "zed") == before + 1, "new mail through push", 15)
        # Sign-out wipes the lease: push stops, nothing more is synced.
        call("/mailkeep/signout", token=a["token"])
        s.wait(lambda: "provider push: zed locked" in s.text(), "push stopped by the wipe", 10)
        s.wait(lambda: s.idle() == 0, "the push connection closed", 10)
        new_mail(fx, "alice", "lease-2")
        time.sleep(5)
        check(count(data, "zed") == before + 1, "synced after the wipe")
        s.stop()
    finally:
        fx.stop()


def t_settings(tmp):
    data = os.path.join(tmp, "settings-data")
    mk(data, "init")
    for args, want in ((("--push", "maybe"), "use on or off"),
                       (("--full-sync-interval", "0"), "1 to 2592000"),
                       (("--push-sweep-interval", "5"), "10 to 86400"),
                       (("--push-connect-rate", "0"), "1 to 10000"),
                       (("--push-idle-restart", "1800"), "10 to 1740")):
        r = mk(data, "serve", *args, expect=2)
        check(want in r.stderr, "%s: %s" % (args, r.stderr))
    conf = os.path.join(data, "mailkeep.conf")
    base = open(conf).read()
    open(conf, "w").write(base + "push = sometimes\n")
    r = mk(data, "serve", expect=2)
    check("mailkeep.conf" in r.stderr and "push" in r.stderr, r.stderr)
    open(conf, "w").write(base + "push = off\nfull_sync_interval = 600\n")
    s = Serve(data, tmp, "settings")
    time.sleep(1)
    check("provider push:" not in s.text(), "push = off in mailkeep.conf: push ran")
    s.stop()


SCENARIOS = {"pushed": t_pushed, "lease": t_lease, "settings": t_settings,
             "reconcile": t_reconcile}


def main():
    run_scenarios(SCENARIOS, "mk-scheduler-test-", sys.argv[1:])


if __name__ == "__main__":
    main()
