#!/usr/bin/env python3
"""Integration tests of what the CLI checks and says (issue #9 items 15-17):
account add logs in before storing and refuses duplicates; errors that say
what to do (untrusted certificate, TLS/clear-text port mix-ups, serve's
listen errors, another user's or a read-only data directory); device
sign-ins and API use count as activity, serve runs the lifecycle, and a
one-off sync for an unknown user is refused. Real Dovecot, real SMTP server,
the real mailkeep binary.

usage: cli_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import json, os, re, select, shutil, socket, sqlite3, subprocess, sys, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import BIN, Fixture, check, run, run_scenarios  # noqa: E402
from accounts_test import DAY, Hub  # noqa: E402
from smtp_test import Smtpd  # noqa: E402


def counts(h):
    db = h.db()
    n = (db.execute("SELECT count(*) FROM accounts").fetchone()[0],
         db.execute("SELECT count(*) FROM secrets").fetchone()[0])
    db.close()
    return n


def t_account_add_checks(tmp):
    """Item 15: a wrong password, an unreachable server or a refused SMTP
    login stores nothing; a duplicate (same login on the same server) is
    refused naming the account; --no-check stores without connecting."""
    h = Hub(tmp, "add", users=2, count=0)
    s = Smtpd(h.fx, tmp, "add", "starttls")  # accepts alice's login only
    try:
        h.add_user("alice")
        wrong = os.path.join(tmp, "wrong.pass")
        open(wrong, "w").write("not the password")
        r = h.mk("account", "add", "--user", "alice", "--imap", h.fx.url(), "--login", "alice",
                 "--password-file", wrong, "--ca-file", h.fx.env["CA_FILE"], "--consent", expect=1)
        check("refused the login" in r.stderr and "nothing was stored" in r.stderr, r.stderr)
        check("not the password" not in r.stderr + r.stdout, "password in the output")
        check(counts(h) == (0, 0), "wrong password stored: %s" % (counts(h),))
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            dead = "imaps://127.0.0.1:%d" % closed.getsockname()[1]
        r = h.mk("account", "add", "--user", "alice", "--imap", dead, "--login", "alice",
                 "--password-file", h.pw("alice"), "--consent", expect=1)
        check("cannot connect" in r.stderr and "nothing was stored" in r.stderr, r.stderr)
        check(counts(h) == (0, 0), "unreachable server stored")
        # SMTP is checked too: bob's IMAP login is fine, his SMTP login not.
        r = h.add_account("alice", "bob", "--smtp", s.url(), "--consent", expect=1)
        check("cannot log in to " + s.url() in r.stderr, r.stderr)
        check(counts(h) == (0, 0), "refused SMTP login stored")
        # An SMTP server with an untrusted certificate: named, with what to do.
        u = Smtpd(h.fx, tmp, "add-untrusted", "implicit-tls", "untrusted")
        try:
            r = h.add_account("alice", "alice", "--smtp", u.url(), "--consent", expect=1)
            check("--ca-file" in r.stderr and "nothing was stored" in r.stderr, r.stderr)
        finally:
            u.stop()
        r = h.add_account("alice", "alice", "--smtp", s.url(), "--consent")
        check("IMAP and SMTP login checked" in r.stdout, r.stdout)
        check(s.received() == [], "the SMTP check sent something")
        # Duplicates: the same server and login, however written.
        for url, login in ((h.fx.url(), "alice"), (h.fx.url() + "/", "ALICE")):
            r = h.mk("account", "add", "--user", "alice", "--imap", url, "--login", login,
                     "--password-file", h.pw("alice"), "--ca-file", h.fx.env["CA_FILE"],
                     "--consent", expect=1)
            check("already has account 1" in r.stderr, r.stderr)
        check(counts(h)[0] == 1, "duplicate stored")
        # Another user may have the same login; a different login is no duplicate.
        h.add_user("carol")
        h.add_account("carol", "alice", "--consent")
        h.add_account("alice", "bob", "--consent")
        # Offline setup: --no-check stores without connecting.
        r = h.mk("account", "add", "--user", "carol", "--imap", dead, "--login", "carol",
                 "--password-file", wrong, "--consent", "--no-check")
        check("login not checked" in r.stdout, r.stdout)
        check(counts(h)[0] == 4, "accounts: %s" % (counts(h),))
        check("login_checked=no" in h.mk("audit", "--user", "carol").stdout, "audit")
        # account password and account set log in first too: a wrong password
        # or a server that is not there changes nothing.
        r = h.mk("account", "password", "--user", "alice", "1", "--password-file", wrong,
                 expect=1)
        check("refused the login" in r.stderr and "nothing was stored" in r.stderr, r.stderr)
        r = h.mk("account", "set", "--user", "alice", "1", "--imap", dead, "--password-file",
                 h.pw("alice"), expect=1)
        check("cannot connect" in r.stderr, r.stderr)
        check("account.changed" not in h.mk("audit", "--user", "alice").stdout,
              "a refused change was recorded")
        h.mk("account", "password", "--user", "alice", "1", "--password-file", h.pw("alice"))
        h.sync("alice")
    finally:
        s.stop()
        h.stop()


def t_tls_hints(tmp):
    """Item 16: an untrusted certificate names --ca-file; imap:// to a TLS
    port ends within seconds saying use imaps://; imaps:// to a clear-text
    port says use imap://."""
    fx = Fixture(tmp, "hints", count=0)
    try:
        r = fx.sync(url=fx.url("untrusted"), expect=1)
        check("--ca-file" in r.stderr, "untrusted certificate: " + r.stderr)
        t0 = time.time()
        r = fx.sync(url="imap://127.0.0.1:%s" % fx.env["IMAPS_PORT"], expect=1)
        took = time.time() - t0
        check("use imaps://127.0.0.1:%s" % fx.env["IMAPS_PORT"] in r.stderr, r.stderr)
        check(took < 30, "imap:// to a TLS port took %.0f s" % took)
        r = fx.sync(url="imaps://127.0.0.1:%s" % fx.env["IMAP_PORT"], expect=1)
        check("use imap://127.0.0.1:%s" % fx.env["IMAP_PORT"] in r.stderr, r.stderr)
    finally:
        fx.stop()


def serve_fails(data, *args):
    r = subprocess.run([BIN, "--data", data, "serve", "--sync-interval", "0", *args],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 1, "serve exit %d: %s" % (r.returncode, r.stderr))
    return r.stderr


def t_serve_listen_errors(tmp):
    """Item 16: serve tells an address in use from a refused TLS key."""
    fx = Fixture(tmp, "listen", count=0)
    fx.stop()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        err = serve_fails(fx.data, "--listen", "127.0.0.1:%d" % port)
        check("in use" in err and "TLS" not in err, "address in use: " + err)
    # A certificate with another certificate's key (both valid PEM).
    err = serve_fails(fx.data, "--listen", "127.0.0.1:0",
                      "--tls-cert", os.path.join(fx.dir, "server.pem"),
                      "--tls-key", os.path.join(fx.dir, "untrusted.key"))
    check("refused" in err and "key" in err and "in use" not in err, "bad key: " + err)


def as_nobody(argv):
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv],
                          capture_output=True, text=True, timeout=60)


def t_data_dir_access(tmp):
    """Item 16: another user's data directory names its owner; a read-only
    one still serves the read-only commands."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        print("skip data-dir-access: needs root and setpriv to act as another user")
        return
    fx = Fixture(tmp, "dd", count=0)
    fx.stop()
    run([BIN, "--data", fx.data, "user", "add", "alice"])
    r = as_nobody([BIN, "--data", fx.data, "user", "list"])
    check(r.returncode == 1 and "belongs to user root" in r.stderr and "init" not in r.stderr,
          "another user's data dir: " + r.stderr)
    os.chmod(fx.data, 0o755)  # others may enter, the files stay 0600
    r = as_nobody([BIN, "--data", fx.data, "user", "list"])
    check(r.returncode == 1 and "belongs to user root" in r.stderr, "readable dir: " + r.stderr)
    os.chmod(fx.data, 0o700)
    ro = os.path.join(tmp, "dd-readonly")
    shutil.copytree(fx.data, ro)
    for dp, dns, fns in os.walk(ro):
        for p in [dp] + [os.path.join(dp, f) for f in fns]:
            os.chown(p, 65534, 65534)
            os.chmod(p, 0o500 if os.path.isdir(p) else 0o400)
    for cmd in (["user", "list"], ["account", "list", "--user", "alice"],
                ["audit", "--user", "alice"], ["audit", "--user", "alice", "--verify"]):
        r = as_nobody([BIN, "--data", ro, *cmd])
        check(r.returncode == 0, "read-only %s: %s" % (" ".join(cmd), r.stderr))
    check("alice" in as_nobody([BIN, "--data", ro, "user", "list"]).stdout, "user list")
    r = as_nobody([BIN, "--data", ro, "user", "add", "bob"])
    check(r.returncode == 1 and "may only read" in r.stderr, "write in read-only dir: " + r.stderr)


def read_until(proc, text, timeout=30):
    """serve's stdout (unbuffered reads) until text appears or timeout."""
    out, deadline = "", time.time() + timeout
    while text not in out and time.time() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0, deadline - time.time()))
        if ready:
            data = os.read(proc.stdout.fileno(), 65536)
            if not data:
                break
            out += data.decode(errors="replace")
    return out


def start_serve(h):
    serve = subprocess.Popen([BIN, "--data", h.dir, "serve", "--listen", "127.0.0.1:0",
                              "--sync-interval", "0", "--access-log", "/dev/null"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = read_until(serve, "lifecycle:")
    m = re.search(r"session at (\S+?)\)", out)
    check(m is not None, "serve did not start: " + out)
    return serve, m.group(1), out


def last_active(h, user):
    db = h.db()
    v = db.execute("SELECT last_active, warned_days FROM users WHERE name = ?", (user,)).fetchone()
    db.close()
    return v


def set_active(h, user, when, warned=None):
    db = h.db()
    db.execute("UPDATE users SET last_active = ? WHERE name = ?", (when, user))
    if warned is not None:
        db.execute("UPDATE users SET warned_days = ? WHERE name = ?", (warned, user))
    db.commit()
    db.close()


def t_device_activity_lifecycle(tmp):
    """Item 17: a device signing in is activity (it restarts the period and
    clears a warning), at most one write per user per 15 minutes; serve runs
    the lifecycle when it starts, with its warnings and purges."""
    h = Hub(tmp, "life", users=1, count=0)
    serve = None
    try:
        for u in ("dave", "erin", "fred"):
            h.add_user(u)
        token = h.mk("device", "add", "--user", "dave", "phone").stdout.strip().splitlines()[-1]
        now = int(time.time())
        set_active(h, "dave", now - 340 * DAY, warned=30)
        set_active(h, "erin", now - 340 * DAY)
        set_active(h, "fred", now - 400 * DAY)
        serve, session, out = start_serve(h)
        # The lifecycle round at start: erin warned, fred purged (dave was
        # warned already, so nothing more for him yet).
        check("warning erin: 25 days" in out and "purging fred" in out, "serve lifecycle: " + out)
        check("lifecycle.warning" in h.audit_events("erin"), "erin's warning not audited")
        check(not os.path.exists(os.path.join(h.dir, "users", "fred")), "fred not purged")
        # dave reads mail on his phone only: the sign-in counts.
        req = urllib.request.Request(session, headers={"Authorization": "Bearer " + token})
        check(urllib.request.urlopen(req, timeout=30).status == 200, "session")
        la, warned = last_active(h, "dave")
        check(now - 5 <= la and warned == 0, "device sign-in not activity: %s %s" % (la, warned))
        # ... and 'device list' says when the phone was last used.
        listed = h.mk("device", "list", "--user", "dave").stdout
        phone = [l for l in listed.splitlines() if l.startswith("phone ")]
        check(phone and not phone[0].rstrip().endswith("never"), "device list: " + listed)
        r = h.mk("lifecycle", "run", "--dry-run")
        check("dave" not in r.stdout, "dave still due: " + r.stdout)
        # Cheap: a request within 15 minutes of the last recorded one writes nothing.
        set_active(h, "dave", now - 60)
        urllib.request.urlopen(req, timeout=30).read()
        check(last_active(h, "dave")[0] == now - 60, "activity written on every request")
        set_active(h, "dave", now - 16 * 60)
        urllib.request.urlopen(req, timeout=30).read()
        check(last_active(h, "dave")[0] >= now, "activity not recorded after 16 minutes")
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(timeout=20)
        h.stop()


def t_sync_unknown_user(tmp):
    """Item 17: a one-off sync for a user the hub does not have is refused
    and leaves no store behind."""
    fx = Fixture(tmp, "ghost", count=3)
    try:
        r = run([BIN, "--data", fx.data, "sync", "--user", "ghost", "--imap", fx.url(),
                 "--login", "alice", "--password-file", fx.env["PASS_FILE"],
                 "--ca-file", fx.env["CA_FILE"], "--quiet"], expect=1)
        check("no hub user 'ghost'" in r.stderr and "user add" in r.stderr, r.stderr)
        check(not os.path.exists(os.path.join(fx.data, "users", "ghost")), "orphan store made")
        fx.sync()  # the same for a hub user works (adds alice first)
        check(os.path.exists(os.path.join(fx.data, "users", "alice", "store.db")), "no store")
    finally:
        fx.stop()


def open_store_files(pid, user):
    """The user's store.db files serve holds open, deleted or not."""
    found = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if "/users/%s/store.db" % user in target:
            found.append(target)
    return found


def jmap_call(session, token, calls):
    req = urllib.request.Request(session, headers={"Authorization": "Bearer " + token})
    sess = json.loads(urllib.request.urlopen(req, timeout=30).read())
    acct = sess["primaryAccounts"]["urn:ietf:params:jmap:mail"]
    body = json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
                       "methodCalls": [[m, dict(a, accountId=acct), c] for m, a, c in calls]})
    req = urllib.request.Request(sess["apiUrl"], data=body.encode(), method="POST",
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read())


def t_purge_while_serving(tmp):
    """A user purged while serve has their store open (the lifecycle, run by
    serve or by another process): serve lets go of the deleted files within
    seconds, so the purged mail is not kept readable through an open handle,
    and a new user of the same name gets a store of their own instead of
    writes into the deleted one."""
    h = Hub(tmp, "purge", users=1, count=0)
    serve = None
    try:
        h.add_user("gina")
        token = h.mk("device", "add", "--user", "gina", "phone").stdout.strip().splitlines()[-1]
        serve, session, _ = start_serve(h)
        jmap_call(session, token, [["Mailbox/get", {"ids": None}, "0"]])
        check(open_store_files(serve.pid, "gina"), "serve has not opened gina's store")
        far = int(time.time()) + 800 * DAY
        r = h.mk("lifecycle", "run", "--now", str(far))
        check("purging gina" in r.stdout, "not purged: " + r.stdout)
        deadline = time.time() + 10
        while time.time() < deadline and open_store_files(serve.pid, "gina"):
            time.sleep(0.2)
        check(not open_store_files(serve.pid, "gina"),
              "serve keeps the purged store open: %s" % open_store_files(serve.pid, "gina"))
        check(not os.path.exists(os.path.join(h.dir, "users", "gina", "store.db")),
              "the purged store came back")
        check(not [e for e in os.listdir(os.path.join(h.dir, "users")) if e.startswith(".")],
              "a purge left: %s" % os.listdir(os.path.join(h.dir, "users")))
        # Files of an earlier user of a name (a deletion cut short by an older
        # mailkeep) are never handed to a new user of that name.
        os.makedirs(os.path.join(h.dir, "users", "zed"))
        open(os.path.join(h.dir, "users", "zed", "store.db"), "w").write("old mail")
        r = h.mk("user", "add", "zed", expect=1)
        check("earlier user" in r.stderr, r.stderr)
        # A new gina: her changes land in her own new store.
        h.add_user("gina")
        token = h.mk("device", "add", "--user", "gina", "tablet").stdout.strip().splitlines()[-1]
        resp = jmap_call(session, token, [["Mailbox/set", {"create": {"m": {"name": "Fresh"}}},
                                           "0"]])
        check("m" in resp["methodResponses"][0][1].get("created", {}), "create: %s" % resp)
        db = sqlite3.connect(os.path.join(h.dir, "users", "gina", "store.db"))
        names = [r[0] for r in db.execute("SELECT name FROM mailboxes")]
        db.close()
        check("Fresh" in names, "the new user's change went elsewhere: %s" % names)
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(timeout=20)
        h.stop()


SCENARIOS = {
    "account-add-checks": t_account_add_checks,
    "tls-hints": t_tls_hints,
    "serve-listen-errors": t_serve_listen_errors,
    "data-dir-access": t_data_dir_access,
    "device-activity-lifecycle": t_device_activity_lifecycle,
    "sync-unknown-user": t_sync_unknown_user,
    "purge-while-serving": t_purge_while_serving,
}


def main():
    run_scenarios(SCENARIOS, "mk-cli-test-", sys.argv[1:])


if __name__ == "__main__":
    main()
