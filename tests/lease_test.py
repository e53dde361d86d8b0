#!/usr/bin/env python3
"""Unlock leases (docs/vault.md, "Leases"): a zero-access user's key is held
by `serve` only while they are signed in with their hub password, against a
real Dovecot with the real mailkeep binary.

usage: lease_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import base64, ctypes, ctypes.util, json, os, re, signal, socket, sqlite3, subprocess, sys
import threading, time
import urllib.request, urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import BIN, Fixture, append, check, run, run_scenarios  # noqa: E402

BIN = os.path.abspath(BIN)
PASSPHRASE = "carol's lease canary passphrase 7f3e"


class SlowProxy:
    """A loopback relay passing at most `rate` bytes a second from the
    server (None: no limit), so that a sync lasts long enough for a lease
    to run out in the middle of it."""

    def __init__(self, port, rate):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.backend, self.rate = int(port), rate
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                cl, _ = self.srv.accept()
            except OSError:
                return
            be = socket.create_connection(("127.0.0.1", self.backend))
            threading.Thread(target=self.pump, args=(cl, be, False), daemon=True).start()
            threading.Thread(target=self.pump, args=(be, cl, True), daemon=True).start()

    def pump(self, a, b, slow):
        try:
            while True:
                d = a.recv(8192)
                if not d:
                    break
                b.sendall(d)
                if slow and self.rate:
                    time.sleep(len(d) / self.rate)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()


class Hub:
    def __init__(self, tmp, name, count=10, lease_seconds=None, rate=None):
        self.tmp = tmp
        self.fx = Fixture(tmp, name, "--users", "2", count=count)
        self.proxy = SlowProxy(self.fx.env["IMAPS_PORT"], None)
        url = "imaps://127.0.0.1:%d" % self.proxy.port
        self.dir = self.fx.data
        if lease_seconds is not None:
            with open(os.path.join(self.dir, "mailkeep.conf"), "a") as f:
                f.write("lease_seconds = %d\n" % lease_seconds)
        self.pp = os.path.join(tmp, name + "-carol.pass")
        open(self.pp, "w").write(PASSPHRASE)
        self.mk("user", "add", "carol", "--zero-access", "--password-file", self.pp)
        self.mk("account", "add", "--user", "carol", "--imap", url, "--login", "alice",
                "--password-file", os.path.join(self.fx.dir, "alice.pass"),
                "--ca-file", self.fx.env["CA_FILE"], "--consent", "--passphrase-file", self.pp)
        self.proxy.rate = rate
        self.serve = None
        self.out = os.path.join(tmp, name + "-serve.out")
        self.err = os.path.join(tmp, name + "-serve.err")
        self.access = os.path.join(tmp, name + "-access.log")

    def mk(self, *args, expect=0):
        return run([BIN, "--data", self.dir, *args], expect=expect)

    def start(self, interval=2):
        self.serve = subprocess.Popen(
            [BIN, "--data", self.dir, "serve", "--listen", "127.0.0.1:0", "--sync-interval",
             str(interval), "--access-log", self.access],
            stdout=open(self.out, "a"), stderr=open(self.err, "a"), stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            m = re.search(r"serving (\S+) ", open(self.out).read())
            if m:
                self.url = m.group(1)
                return
            check(self.serve.poll() is None, "serve exited: " + open(self.err).read())
            time.sleep(0.1)
        raise AssertionError("serve did not start")

    def stop_serve(self):
        if self.serve is not None:
            self.serve.send_signal(signal.SIGTERM)
            rc = self.serve.wait(timeout=60)
            self.serve = None
            check(rc == 0, "serve exited %d: %s" % (rc, open(self.err).read()[-2000:]))

    def request(self, path, method="GET", token=None, password=None, expect=200):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=b"" if method == "POST" else None)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        else:
            cred = base64.b64encode(("carol:" + (password or PASSPHRASE)).encode()).decode()
            req.add_header("Authorization", "Basic " + cred)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        check(status == expect, "%s %s: %d (expected %d) %s" % (method, path, status, expect, body))
        return json.loads(body) if body else None

    def signin(self, device=None):
        q = "?device=" + device if device else ""
        return self.request("/mailkeep/signin" + q, method="POST")

    def signout(self, token):
        return self.request("/mailkeep/signout", method="POST", token=token)

    def unlocked_until(self, token):
        s = self.request("/.well-known/jmap", token=token)
        return s["capabilities"]["urn:mailkeep:lease"]["unlockedUntil"]

    def audit(self):
        return self.mk("audit", "--user", "carol").stdout.splitlines()

    def events(self, name):
        return [l for l in self.audit() if (" " + name + " ") in l or l.split()[3:4] == [name]]

    def count(self):
        path = os.path.join(self.dir, "users", "carol", "store.db")
        if not os.path.exists(path):
            return 0
        db = sqlite3.connect(path)
        try:
            return db.execute("SELECT count(*) FROM messages").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
        finally:
            db.close()

    def logins(self):
        """Sync logins (provider push's own, mechanism=push, are not syncs)."""
        return len([l for l in self.events("provider.login") if "mechanism=push" not in l])

    def wait(self, cond, what, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return
            check(self.serve is None or self.serve.poll() is None,
                  "serve died: " + open(self.err).read()[-2000:])
            time.sleep(0.3)
        raise AssertionError("timed out: " + what)

    def new_mail(self, n, tag):
        import imapctl
        c = imapctl.connect(self.fx.dir, "alice", "imaps")
        for i in range(n):
            raw = ("From: x@example.org\r\nTo: bob@example.org\r\nSubject: %s %d\r\n"
                   "Message-ID: <%s-%d@example.org>\r\n\r\nbody %d\r\n" % (tag, i, tag, i, i)).encode()
            typ, _ = c.append("INBOX", None, None, raw)
            check(typ == "OK", "append")
        c.logout()

    def server_total(self):
        import imapctl
        c = imapctl.connect(self.fx.dir, "alice", "imaps")
        total = 0
        for name in imapctl.folders(c):
            typ, data = c.select(imapctl.quote(name), readonly=True)
            if typ == "OK":
                total += int(data[0])
        c.logout()
        return total

    def close(self):
        if self.serve is not None and self.serve.poll() is None:
            self.serve.kill()
            self.serve.wait()
        self.fx.stop()


def kek_bytes(h):
    """carol's KEK, derived here as the vault does (Argon2id over the
    passphrase with the salt and limits of her kdf blob), for the canary."""
    db = sqlite3.connect(os.path.join(h.dir, "hub.db"))
    blob = db.execute("SELECT kdf FROM users WHERE name = 'carol'").fetchone()[0]
    db.close()
    ops = int.from_bytes(blob[1:5], "big")
    mem = int.from_bytes(blob[5:9], "big") * 1024
    salt = blob[9:25]
    lib = ctypes.CDLL(ctypes.util.find_library("sodium"))
    check(lib.sodium_init() >= 0, "sodium_init")
    out = ctypes.create_string_buffer(32)
    pw = PASSPHRASE.encode()
    alg = lib.crypto_pwhash_alg_argon2id13()
    r = lib.crypto_pwhash(out, ctypes.c_ulonglong(32), pw, ctypes.c_ulonglong(len(pw)), salt,
                          ctypes.c_ulonglong(ops), ctypes.c_size_t(mem), ctypes.c_int(alg))
    check(r == 0, "crypto_pwhash")
    return out.raw


def canary(h, pid=None):
    """Neither the passphrase nor the key bytes in any file of the data
    directory, serve's output, the access log, or serve's argv/environment."""
    pp = PASSPHRASE.encode()
    key = kek_bytes(h)
    needles = [pp, base64.b64encode(pp), pp.hex().encode(), key, key.hex().encode(),
               base64.b64encode(key), base64.b64encode(b"carol:" + pp)]
    paths = [h.out, h.err, h.access]
    for dp, _, fns in os.walk(h.dir):
        paths += [os.path.join(dp, f) for f in fns]
    for path in paths:
        data = open(path, "rb").read()
        for n in needles:
            check(n not in data, "secret found in %s" % path)
    if pid is not None:
        for what in ("cmdline", "environ"):
            data = open("/proc/%d/%s" % (pid, what), "rb").read()
            for n in needles:
                check(n not in data, "secret in serve's %s" % what)


# --- scenarios -------------------------------------------------------------

def t_signin_sync_signout(tmp):
    """No background sync before sign-in; after it, mail arrives without a
    passphrase; a second device extends the lease; signing out the last
    device wipes it and syncing stops; device revocation wipes; SIGTERM
    wipes; the canary."""
    h = Hub(tmp, "lease")
    try:
        h.start(interval=2)
        time.sleep(5)
        check(h.count() == 0 and h.logins() == 0, "zero-access user synced before sign-in")
        check("not signed in" in open(h.out).read(), "scheduler did not say why it skipped")
        a = h.signin("laptop")
        check(a["zeroAccess"] and a["unlockedUntil"] is not None, "signin: %s" % a)
        check(len(h.events("lease.unlocked")) == 1, "no lease.unlocked entry")
        total = h.server_total()
        h.wait(lambda: h.count() == total, "first sync after sign-in (%d)" % total)
        h.new_mail(3, "fresh")
        h.wait(lambda: h.count() == total + 3, "new mail while unlocked")
        check(h.unlocked_until(a["token"]) is not None, "session does not show the lease")
        # A second device: the same lease, extended, still one unlock.
        b = h.signin("phone")
        check(len(h.events("lease.unlocked")) == 1, "second sign-in unlocked again")
        check(b["unlockedUntil"] >= a["unlockedUntil"], "latest expiry does not win")
        h.signout(a["token"])
        check(h.unlocked_until(b["token"]) is not None, "lease wiped while a device holds it")
        h.request("/.well-known/jmap", token=a["token"], expect=401)
        h.signout(b["token"])
        wiped = h.events("lease.wiped")
        check(len(wiped) == 1 and "signout" in wiped[0], "sign-out: %s" % wiped)
        # The warm sync session (svc-pool.h) of the syncs while unlocked
        # logs out with the lease: at the sign-out, or at the account
        # worker's next sweep when a sync running then parked it again.
        h.wait(lambda: re.search(r"wiped \(signout\), [1-9]\d* warm sync session|"
                                 r"warm sessions: [1-9]\d* logged out", open(h.out).read())
               is not None, "the warm session logged out at the lease's end")
        time.sleep(3)  # a round that started before the wipe ends
        logins = h.logins()
        h.new_mail(2, "after-signout")
        time.sleep(6)
        check(h.logins() == logins and h.count() == total + 3, "synced after sign-out")
        # Revocation of the only device holding the lease.
        c = h.signin("tablet")
        h.wait(lambda: h.count() == total + 5, "sync after the new sign-in")
        h.mk("device", "revoke", "--user", "carol", "tablet")
        h.wait(lambda: any("revoked" in l for l in h.events("lease.wiped")), "revocation wipe", 10)
        h.request("/.well-known/jmap", token=c["token"], expect=401)
        # SIGTERM with a lease live.
        h.signin("desk")
        canary(h, h.serve.pid)
        h.stop_serve()
        last = h.audit()[-1]
        check("lease.wiped" in last and "shutdown" in last, "shutdown: " + last)
        canary(h)
        check(run([BIN, "--data", h.dir, "audit", "--user", "carol", "--verify"]).returncode == 0,
              "audit chain")
    finally:
        h.close()


def t_expiry_mid_sync(tmp):
    """A short lease runs out while the first (large) sync runs: the sync
    ends cleanly, nothing is lost, no sync starts afterwards; a later sync
    with the passphrase completes the store."""
    h = Hub(tmp, "expiry", count=600, lease_seconds=10, rate=250_000)
    try:
        h.start(interval=2)
        total = h.server_total()
        h.signin("laptop")
        h.wait(lambda: any("expired" in l for l in h.events("lease.wiped")), "expiry", 30)
        at_expiry = h.count()
        print("  %d of %d messages in the store when the lease expired" % (at_expiry, total))
        check(at_expiry < total, "the sync was not running when the lease expired")
        # The running sync finishes with its copy of the key: everything
        # arrives, and no sync starts after it.
        h.wait(lambda: h.count() == total, "the running sync finished", 180)
        time.sleep(3)
        logins = h.logins()
        check(logins == 1, "%d logins: a sync started after expiry" % logins)
        time.sleep(6)
        check(h.logins() == logins, "a sync started after expiry")
        h.stop_serve()
        h.proxy.rate = None
        # Nothing lost: the store is consistent and the rest comes with a
        # passphrase sync.
        h.mk("sync", "--user", "carol", "--quiet", "--passphrase-file", h.pp)
        check(h.count() == total, "store != server after expiry")
        canary(h)
    finally:
        h.close()

def t_password_change(tmp):
    """A zero-access user changes their hub password (also their passphrase)
    from a device while serve holds their lease: the account keys are
    rewrapped, the lease takes the new key (background sync goes on), the
    old password opens nothing any more, the new one does, in serve and in
    the CLI; the CLI's `user password` needs the old one."""
    new, newer = "carol's new passphrase 91b2", "carol's third passphrase 4c0d"
    h = Hub(tmp, "passwd")
    try:
        h.start(interval=2)
        a = h.signin("laptop")
        total = h.server_total()
        h.wait(lambda: h.count() == total, "first sync after sign-in")
        body = json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:mailkeep:manage"],
                           "methodCalls": [["User/changePassword",
                                            {"accountId": "mailkeep", "old": "wrong one",
                                             "new": new}, "0"],
                                           ["User/changePassword",
                                            {"accountId": "mailkeep", "old": PASSPHRASE,
                                             "new": new}, "1"]]}).encode()
        req = urllib.request.Request(h.url + "/jmap/api", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + a["token"],
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            res = json.loads(r.read())["methodResponses"]
        check(res[0][0] == "error" and res[0][1]["type"] == "forbidden", "wrong old: %s" % res[0])
        check(res[1][0] == "User/changePassword" and res[1][1]["changed"], "change: %s" % res[1])
        db = sqlite3.connect(os.path.join(h.dir, "hub.db"))
        kv = db.execute("SELECT key_version FROM accounts").fetchone()[0]
        db.close()
        check(kv == 2, "key_version %d after the change" % kv)
        # The lease holds the new key: background sync goes on.
        h.new_mail(2, "after-change")
        h.wait(lambda: h.count() == total + 2, "sync with the rekeyed lease")
        h.request("/mailkeep/signin", method="POST", expect=401)
        h.request("/mailkeep/signin", method="POST", password=new)
        check(any("via=web" in l for l in h.events("user.password")), "no user.password entry")
        h.stop_serve()
        old_pp, new_pp, newer_pp = h.pp, os.path.join(tmp, "new.pass"), os.path.join(tmp, "newer.pass")
        open(new_pp, "w").write(new)
        open(newer_pp, "w").write(newer)
        r = h.mk("sync", "--user", "carol", "--quiet", "--passphrase-file", old_pp, expect=None)
        check(r.returncode != 0, "the old passphrase still opens the keys")
        h.mk("sync", "--user", "carol", "--quiet", "--passphrase-file", new_pp)
        r = h.mk("user", "password", "carol", "--password-file", newer_pp, expect=None)
        check(r.returncode != 0 and "old password is needed" in r.stderr, r.stderr)
        r = h.mk("user", "password", "carol", "--password-file", newer_pp,
                 "--old-password-file", old_pp, expect=None)
        check(r.returncode != 0 and "old password is wrong" in r.stderr, r.stderr)
        r = h.mk("user", "password", "carol", "--password-file", newer_pp,
                 "--old-password-file", new_pp)
        check("rewrapped" in r.stdout, r.stdout)
        h.new_mail(1, "after-cli-change")
        h.mk("sync", "--user", "carol", "--quiet", "--passphrase-file", newer_pp)
        check(h.count() == total + 3, "sync with the third passphrase")
        check(run([BIN, "--data", h.dir, "audit", "--user", "carol", "--verify"]).returncode == 0,
              "audit chain")
        for path in [h.out, h.err, h.access]:
            data = open(path, "rb").read()
            for secret in (new, newer):
                check(secret.encode() not in data, "a passphrase in %s" % path)
    finally:
        h.close()


SCENARIOS = {
    "signin_sync_signout": t_signin_sync_signout,
    "expiry_mid_sync": t_expiry_mid_sync,
    "password_change": t_password_change,
}


def main():
    run_scenarios(SCENARIOS, "mk-lease-test-", sys.argv[1:])


if __name__ == "__main__":
    main()
