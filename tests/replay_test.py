#!/usr/bin/env python3
"""Integration tests of the replay of device changes to the provider.

Device changes are made the way a device makes them: JMAP requests to a real
`mailkeep serve` (Email/set, Email/import, Mailbox/set). `mailkeep sync` then
carries them to a real Dovecot (tests/fixture/dovecot.sh) before its
server-to-hub pass; Python's imaplib, an independent client, checks what the
server has, and the hub's store must then match the server UID for UID.

Scenarios: every change kind on each tier (QRESYNC, CONDSTORE, plain) and on
a Dovecot whose capabilities hide UIDPLUS and MOVE; each conflict rule of
docs/sync.md; a kill at every commit of a replay (MK_CRASH_AFTER_COMMIT).

usage: replay_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import base64, json, os, re, signal, sqlite3, subprocess, sys, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sync_test  # noqa: E402
from sync_test import BIN, Fixture, check, imapctl, run, run_scenarios  # noqa: E402

CAPS = {
    "QRESYNC": None,  # the fixture's default: everything Dovecot has
    "CONDSTORE": "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE SORT SPECIAL-USE NAMESPACE UIDPLUS "
                 "MOVE LIST-EXTENDED LIST-STATUS ESEARCH CONDSTORE AUTH=PLAIN",
    "plain": "IMAP4rev1 LITERAL+ UIDPLUS MOVE AUTH=PLAIN",
    "nouidplus": "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE SORT SPECIAL-USE NAMESPACE "
                 "LIST-EXTENDED LIST-STATUS ESEARCH CONDSTORE QRESYNC AUTH=PLAIN",
}


def raw_message(subject, msgid, body="hello\r\n"):
    return ("From: Dev <dev@example.org>\r\nTo: alice@example.org\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.org>\r\nDate: Mon, 07 Oct 2024 10:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n%s" % (subject, msgid, body)).encode()


class Hub:
    """A hub user with the fixture's account, a device, and serve running."""

    def __init__(self, fx, tmp, name, replay_now=False, push=False):
        self.fx = fx
        self.data = fx.data
        hubpw = os.path.join(tmp, name + "-hub.pass")
        with open(hubpw, "w") as f:
            f.write("alice hub password")
        self.mk("user", "add", "alice", "--password-file", hubpw)
        self.mk("account", "add", "--user", "alice", "--imap", fx.url(), "--login", "alice",
                "--password-file", fx.env["PASS_FILE"], "--ca-file", fx.env["CA_FILE"], "--consent")
        self.sync()
        self.token = self.mk("device", "add", "--user", "alice", "laptop").stdout.strip().splitlines()[-1]
        self.serve = subprocess.Popen([BIN, "--data", self.data, "serve", "--listen", "127.0.0.1:0",
                                       "--sync-interval", "0",
                                       *(() if replay_now else ("--no-replay",))],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      stdin=subprocess.DEVNULL,
                                      # Provider push would sync between the steps these
                                      # scenarios take (push_test.py asks for it).
                                      env=os.environ if push
                                      else dict(os.environ, MK_NO_PROVIDER_PUSH="1"))
        line = self.serve.stdout.readline()
        m = re.search(r"session at (\S+?)\)", line)
        check(m is not None, "serve did not start: " + line)
        self.session = self.get(m.group(1))
        self.api_url = self.session["apiUrl"]
        self.upload_url = self.session["uploadUrl"]
        self.account = self.session["primaryAccounts"]["urn:ietf:params:jmap:mail"]

    def mk(self, *args, **kw):
        return run([BIN, "--data", self.data, *args], **kw)

    def sync(self, env=None, expect=0):
        # --full: the plain tier's STATUS shortcut would leave a flag change
        # the server made alone (no count changed) for a later scan.
        r = subprocess.run([BIN, "--data", self.data, "sync", "--user", "alice", "--full"],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           env=env, timeout=600)
        if expect is not None and r.returncode != expect:
            raise AssertionError("sync exited %d: %s %s" % (r.returncode, r.stdout, r.stderr))
        return r

    def stop(self):
        if self.serve is not None:
            self.serve.send_signal(signal.SIGTERM)
            try:
                self.serve.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.serve.kill()
            self.serve = None

    def request(self, url, data=None, ctype="application/json"):
        req = urllib.request.Request(url, data=data, headers={
            "Authorization": "Bearer " + self.token, "Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def get(self, url):
        return self.request(url)

    def call(self, method, args):
        args = dict(args, accountId=self.account)
        body = {"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
                "methodCalls": [[method, args, "c"]]}
        r = self.request(self.api_url, json.dumps(body).encode())
        name, res, _ = r["methodResponses"][0]
        check(name == method, "%s: %s" % (method, res))
        return res

    def upload(self, raw):
        url = self.upload_url.replace("{accountId}", self.account)
        return self.request(url, raw, "message/rfc822")["blobId"]

    def mailboxes(self):
        res = self.call("Mailbox/get", {"ids": None, "properties": ["name", "parentId"]})
        return {m["name"]: m["id"] for m in res["list"]}

    def emails(self, mailbox):
        ids = self.call("Email/query", {"filter": {"inMailbox": self.mailboxes()[mailbox]},
                                        "limit": 1000})["ids"]
        res = self.call("Email/get", {"ids": ids, "properties": ["messageId", "subject", "keywords",
                                                                 "mailboxIds"]})
        return {e["messageId"][0] if e.get("messageId") else e["id"]: e for e in res["list"]}

    def set_email(self, update=None, destroy=None):
        res = self.call("Email/set", {"update": update or {}, "destroy": destroy or []})
        check(not res.get("notUpdated") and not res.get("notDestroyed"), "Email/set: %s" % res)
        return res

    def import_email(self, raw, mailbox, keywords=None):
        blob = self.upload(raw)
        res = self.call("Email/import", {"emails": {"m": {
            "blobId": blob, "mailboxIds": {self.mailboxes()[mailbox]: True},
            "keywords": keywords or {}, "receivedAt": "2024-10-07T10:00:00Z"}}})
        check("m" in res.get("created", {}), "Email/import: %s" % res)
        return res["created"]["m"]["id"]

    def mailbox_set(self, create=None, update=None, destroy=None):
        res = self.call("Mailbox/set", {"create": create or {}, "update": update or {},
                                        "destroy": destroy or []})
        return res

    def db(self):
        return sqlite3.connect(os.path.join(self.data, "users", "alice", "store.db"))

    def pending(self):
        db = self.db()
        try:
            return db.execute("SELECT kind, state, error FROM local_changes").fetchall()
        finally:
            db.close()

    def notices(self):
        db = self.db()
        try:
            rows = db.execute(
                "SELECT b.data FROM messages m JOIN blobs b ON b.id = m.blob_id "
                "JOIN mailboxes x ON x.id = m.mailbox_id JOIN accounts a ON a.id = x.account_id "
                "WHERE a.key = 'hub:local'").fetchall()
            return [bytes(r[0]) for r in rows]
        finally:
            db.close()


# --- what the server has (imaplib) ----------------------------------------

def server_find(fx, folder, msgid):
    """{uid: flags} of the messages with this Message-ID in folder."""
    c = fx.conn()
    try:
        typ, _ = c.select(imapctl.quote(folder), readonly=True)
        if typ != "OK":
            return None
        typ, data = c.uid("SEARCH", "HEADER", "Message-ID", '"%s"' % msgid)
        uids = data[0].split() if data and data[0] else []
        out = {}
        for u in uids:
            typ, d = c.uid("FETCH", u, "(FLAGS)")
            m = re.search(rb"FLAGS \(([^)]*)\)", d[0])
            out[int(u)] = set(m.group(1).decode().split()) if m else set()
        return out
    finally:
        c.logout()


def server_folders(fx):
    c = fx.conn()
    try:
        return set(imapctl.folders(c))
    finally:
        c.logout()


def server_subscribed(fx):
    c = fx.conn()
    try:
        typ, data = c.lsub('""', "*")
        names = set()
        for line in data:
            if line:
                m = re.search(rb'"[^"]*" "?([^"]*)"?$', line)
                if m:
                    names.add(m.group(1).decode())
        return names
    finally:
        c.logout()


def server_msgids(fx, folder):
    """Message-IDs in folder, with repetitions."""
    c = fx.conn()
    try:
        typ, _ = c.select(imapctl.quote(folder), readonly=True)
        check(typ == "OK", "select " + folder)
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        ids = []
        for item in data:
            if isinstance(item, tuple):
                m = re.search(rb"<([^>]*)>", item[1])
                ids.append(m.group(1).decode() if m else "")
        return ids
    finally:
        c.logout()


def imap(fx, folder, *cmds):
    """Run imaplib commands as another client of the server would."""
    c = fx.conn()
    try:
        if folder is not None:
            typ, _ = c.select(imapctl.quote(folder))
            check(typ == "OK", "select " + folder)
        for cmd in cmds:
            cmd(c)
    finally:
        c.logout()


def uid_of(fx, folder, msgid):
    found = server_find(fx, folder, msgid)
    check(found, "%s not in %s" % (msgid, folder))
    return min(found)


def account_store_state(fx):
    """sync_test's store_state without the hub's own notices account."""
    import hashlib
    db = sqlite3.connect(os.path.join(fx.data, "users", "alice", "store.db"))
    state = {}
    for mid, name in db.execute("SELECT x.id, x.name FROM mailboxes x JOIN accounts a "
                                "ON a.id = x.account_id WHERE a.key != 'hub:local' AND x.noselect = 0"):
        msgs = {}
        for uid, flags, kw, data in db.execute(
                "SELECT m.uid, m.flags, m.keywords, b.data FROM messages m "
                "JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ?", (mid,)):
            msgs[uid] = (flags, kw, hashlib.sha256(data).hexdigest())
        state[name] = msgs
    db.close()
    return state


def make_fixture(tmp, name, tier, count=20):
    caps = CAPS[tier]
    args = ("--capability", caps) if caps else ()
    fx = Fixture(tmp, name, *args, count=count)
    fx.store_state = lambda: account_store_state(fx)
    # Folders the scenarios use, made before the first sync.
    c = fx.conn()
    for f in ("Archive", "Old", "Empty", "Work"):
        c.create(imapctl.quote(f))
    c.logout()
    return fx


def assert_replayed(hub, what):
    p = hub.pending()
    check(p == [], "%s: changes left: %s" % (what, p))


# --- every kind on one tier ------------------------------------------------

def kinds(tmp, tier):
    fx = make_fixture(tmp, "kinds-" + tier, tier)
    hub = None
    try:
        hub = Hub(fx, tmp, "kinds-" + tier)
        inbox = hub.emails("INBOX")
        ids = sorted(inbox)  # message ids of the seeded messages
        check(len(ids) >= 12, "seeded messages: %d" % len(ids))
        eid = {m: inbox[m]["id"] for m in ids}
        boxes = hub.mailboxes()
        # keywords: set and clear flags and a keyword, on several messages
        # (one batch per change), and clear one that was set.
        upd = {}
        for m in ids[0:3]:
            upd[eid[m]] = {"keywords/$flagged": True, "keywords/$label1": True}
        upd[eid[ids[3]]] = {"keywords/$seen": True}
        hub.set_email(update=upd)
        hub.set_email(update={eid[ids[3]]: {"keywords/$seen": None}})
        # move two to Archive
        hub.set_email(update={eid[m]: {"mailboxIds": {boxes["Archive"]: True}} for m in ids[4:6]})
        # destroy two
        hub.set_email(destroy=[eid[m] for m in ids[6:8]])
        # import one into Archive (seen)
        imp = hub.import_email(raw_message("imported", "imp-" + tier), "Archive", {"$seen": True})
        # mailbox create, then a message into it
        r = hub.mailbox_set(create={"n": {"name": "NewBox"}})
        check("n" in r.get("created", {}), "Mailbox/set create: %s" % r)
        hub.import_email(raw_message("into new", "new-" + tier), "NewBox")
        # a move into the new mailbox too
        hub.set_email(update={eid[ids[8]]: {"mailboxIds": {hub.mailboxes()["NewBox"]: True}}})
        # copy: ids[9] also in Archive; expunge: ids[10] copied to Work,
        # then taken out of INBOX (it stays in Work).
        hub.set_email(update={eid[ids[9]]: {"mailboxIds/" + boxes["Archive"]: True}})
        hub.set_email(update={eid[ids[10]]: {"mailboxIds/" + boxes["Work"]: True}})
        hub.set_email(update={eid[ids[10]]: {"mailboxIds/" + boxes["INBOX"]: None}})
        # a name beyond ASCII goes to the server in modified UTF-7
        r = hub.mailbox_set(create={"u": {"name": "Café"}})
        check("u" in r.get("created", {}), "Mailbox/set create Café: %s" % r)
        hub.import_email(raw_message("into utf8", "utf8-" + tier), "Café")
        r = hub.mailbox_set(create={"k": {"name": "Neü & Co", "parentId": hub.mailboxes()["Café"]}})
        check("k" in r.get("created", {}), "Mailbox/set create under Café: %s" % r)
        c = fx.conn()
        try:
            c.create('"Entw&APw-rfe"')
            c.create('"&ZeVnLIqe-"')
        finally:
            c.logout()
        # moved away and back before the replay: nothing to do on the server
        hub.set_email(update={eid[ids[11]]: {"mailboxIds": {boxes["Work"]: True}}})
        hub.set_email(update={eid[ids[11]]: {"mailboxIds": {boxes["INBOX"]: True}}})
        back_uid = uid_of(fx, "INBOX", ids[11])
        # rename, destroy an empty folder, unsubscribe
        r = hub.mailbox_set(update={boxes["Old"]: {"name": "Older"}})
        check(boxes["Old"] in r.get("updated", {}), "rename: %s" % r)
        r = hub.mailbox_set(destroy=[boxes["Empty"]])
        check(boxes["Empty"] in r.get("destroyed", []), "destroy: %s" % r)
        r = hub.mailbox_set(update={boxes["Work"]: {"isSubscribed": False}})
        check(boxes["Work"] in r.get("updated", {}), "props: %s" % r)
        check(len(hub.pending()) > 10, "changes recorded: %s" % hub.pending())

        out = hub.sync()
        check(tier.replace("nouidplus", "QRESYNC") in out.stdout, "tier: " + out.stdout)
        assert_replayed(hub, tier)
        # The server has every change (imaplib).
        for m in ids[0:3]:
            f = server_find(fx, "INBOX", m)
            check(f and all({"\\Flagged", "$label1"} <= v for v in f.values()),
                  "%s flags: %s" % (m, f))
        f = server_find(fx, "INBOX", ids[3])
        check(f and all("\\Seen" not in v for v in f.values()), "seen cleared: %s" % f)
        for m in ids[4:6]:
            check(not server_find(fx, "INBOX", m), "%s still in INBOX" % m)
            check(len(server_find(fx, "Archive", m)) == 1, "%s not once in Archive" % m)
        for m in ids[6:8]:
            check(not server_find(fx, "INBOX", m), "%s not destroyed" % m)
        f = server_find(fx, "Archive", "imp-%s@example.org" % tier)
        check(f and len(f) == 1 and "\\Seen" in list(f.values())[0], "import: %s" % f)
        folders = server_folders(fx)
        check("NewBox" in folders and "Older" in folders and "Old" not in folders
              and "Empty" not in folders, "folders: %s" % folders)
        check(len(server_find(fx, "NewBox", "new-%s@example.org" % tier)) == 1, "new box mail")
        check("Caf&AOk-" in folders, "UTF-8 name on the server: %s" % sorted(folders))
        check(len(server_find(fx, "Caf&AOk-", "utf8-%s@example.org" % tier)) == 1, "mail in Café")
        check(any(f.startswith("Caf&AOk-") and f.endswith("Ne&APw- &- Co") and len(f) == 22
                  for f in folders), "child of Café on the server: %s" % sorted(folders))
        names = hub.mailboxes()
        check({"Café", "Neü & Co", "Entwürfe", "日本語"} <= set(names) and
              not any("&" in n and n != "Neü & Co" for n in names),
              "names shown to devices: %s" % sorted(names))
        check(len(server_find(fx, "NewBox", ids[8])) == 1, "moved into new box")
        check("Work" not in server_subscribed(fx), "Work still subscribed")
        check(list(server_find(fx, "INBOX", ids[11])) == [back_uid] and not server_find(fx, "Work", ids[11]),
              "moved back: %s" % server_find(fx, "INBOX", ids[11]))
        check(len(server_find(fx, "INBOX", ids[9])) == 1 and len(server_find(fx, "Archive", ids[9])) == 1,
              "copy: INBOX %s Archive %s" % (server_find(fx, "INBOX", ids[9]), server_find(fx, "Archive", ids[9])))
        check(not server_find(fx, "INBOX", ids[10]) and len(server_find(fx, "Work", ids[10])) == 1,
              "expunge: INBOX %s Work %s" % (server_find(fx, "INBOX", ids[10]), server_find(fx, "Work", ids[10])))
        # The hub matches the server UID for UID, and kept its ids.
        fx.assert_in_sync("kinds " + tier)
        arch = hub.emails("Archive")
        for m in ids[4:6]:
            check(arch[m]["id"] == eid[m], "moved message got a new id: %s" % arch[m])
        check(any(e["id"] == imp for e in arch.values()), "imported message got a new id")
        check(arch[ids[9]]["id"] == eid[ids[9]] and len(arch[ids[9]]["mailboxIds"]) == 2,
              "copied message is not one Email in two mailboxes: %s" % arch[ids[9]])
        # A second sync changes nothing.
        out = hub.sync()
        check(re.search(r" 0 new messages", out.stdout), "second sync fetched: " + out.stdout)
        fx.assert_in_sync("kinds again " + tier)
    finally:
        if hub is not None:
            hub.stop()
        fx.stop()


def t_kinds_qresync(tmp):
    kinds(tmp, "QRESYNC")


def t_kinds_condstore(tmp):
    kinds(tmp, "CONDSTORE")


def t_kinds_plain(tmp):
    kinds(tmp, "plain")


def t_kinds_nouidplus(tmp):
    kinds(tmp, "nouidplus")


# --- conflicts -------------------------------------------------------------

def conflicts(tmp, tier):
    fx = make_fixture(tmp, "conflicts-" + tier, tier)
    hub = None
    try:
        for f in ("Gone", "Both", "Full", "R2", "Taken", "R1"):
            imap(fx, None, lambda c, f=f: c.create(f))
        imap(fx, None, lambda c: c.append("R1", None, None, raw_message("r1", "r1-" + tier)))
        hub = Hub(fx, tmp, "conflicts-" + tier)
        inbox = hub.emails("INBOX")
        ids = sorted(inbox)
        eid = {m: inbox[m]["id"] for m in ids}
        boxes = hub.mailboxes()
        # 1. Flags changed on both sides.
        a = ids[0]
        imap(fx, "INBOX", lambda c: c.uid("STORE", str(uid_of(fx, "INBOX", a)), "+FLAGS", "(\\Answered)"))
        hub.set_email(update={eid[a]: {"keywords/$flagged": True}})
        to_delta(hub, eid[a], "+\\Flagged")
        # 2. Device destroy vs server flag change: the destroy wins.
        b = ids[1]
        imap(fx, "INBOX", lambda c: c.uid("STORE", str(uid_of(fx, "INBOX", b)), "+FLAGS", "(\\Flagged)"))
        hub.set_email(destroy=[eid[b]])
        # 3. Server expunge vs device keyword change: the expunge wins.
        cm = ids[2]
        u = uid_of(fx, "INBOX", cm)
        imap(fx, "INBOX", lambda c: c.uid("STORE", str(u), "+FLAGS", "(\\Deleted)"), lambda c: c.expunge())
        hub.set_email(update={eid[cm]: {"keywords/$seen": True}})
        # 4. Server expunge vs device move: the hub's bytes go to the target.
        d = ids[3]
        u = uid_of(fx, "INBOX", d)
        imap(fx, "INBOX", lambda c: c.uid("STORE", str(u), "+FLAGS", "(\\Deleted)"), lambda c: c.expunge())
        hub.set_email(update={eid[d]: {"mailboxIds": {boxes["Archive"]: True}}})
        # 5. Device mailbox destroy vs new mail on the server there.
        hub.mailbox_set(destroy=[boxes["Full"]])
        imap(fx, None, lambda c: c.append("Full", None, None, raw_message("late", "late-" + tier)))
        # 6. Server deleted a folder the device put a message into.
        e = ids[4]
        hub.set_email(update={eid[e]: {"mailboxIds": {boxes["Gone"]: True}}})
        imap(fx, None, lambda c: c.delete("Gone"))
        # 7. Renamed here onto a name the server has: fails, nothing moved.
        hub.mailbox_set(update={boxes["R2"]: {"name": "Taken2"}})
        imap(fx, None, lambda c: c.create("Taken2"),
             lambda c: c.append("Taken2", None, None, raw_message("taken", "taken-" + tier)))
        # 8. Created on both sides under one name.
        r = hub.mailbox_set(create={"x": {"name": "Twice"}})
        check("x" in r.get("created", {}), "create Twice: %s" % r)
        imap(fx, None, lambda c: c.create("Twice"),
             lambda c: c.append("Twice", None, None, raw_message("twice", "twice-" + tier)))

        # 9. Renamed on both sides: the device's name, from the server's.
        hub.mailbox_set(update={boxes["R1"]: {"name": "R1dev"}})
        imap(fx, None, lambda c: c.rename("R1", "R1srv"))

        hub.sync()
        # 9: one folder, the device's name, its mail.
        folders = server_folders(fx)
        check("R1dev" in folders and "R1" not in folders and "R1srv" not in folders,
              "renamed on both sides: %s" % sorted(folders))
        check(server_msgids(fx, "R1dev") == ["r1-%s@example.org" % tier], "R1dev mail")
        # 1: both flags.
        f = server_find(fx, "INBOX", a)
        check(f and {"\\Answered", "\\Flagged"} <= list(f.values())[0], "merge: %s" % f)
        # 2: gone.
        check(not server_find(fx, "INBOX", b), "destroy lost to a flag change")
        # 3: still gone, no error.
        check(not server_find(fx, "INBOX", cm), "expunged message came back")
        # 4: appended to Archive from the hub's bytes.
        check(len(server_find(fx, "Archive", d) or {}) == 1, "move after server expunge lost")
        # 5: Full kept with its mail, a notice, and on the hub again.
        check("Full" in server_folders(fx), "Full deleted with new mail in it")
        notes = hub.notices()
        check(any(b"Full" in n and b"not empty" in n for n in notes), "no notice for Full: %s" % notes)
        # 6: Gone made again with the message.
        check(len(server_find(fx, "Gone", e) or {}) == 1, "message into a deleted folder lost")
        # 7: failed with a notice, R2 unchanged.
        folders = server_folders(fx)
        check("R2" in folders and len(server_msgids(fx, "Taken2")) == 1, "rename onto a taken name: %s" % folders)
        check(any(b"mailbox-rename" in n for n in notes), "no notice for the rename")
        # 8: one folder, the hub pairs with it.
        check(len(server_msgids(fx, "Twice")) == 1, "Twice")
        fails = [p for p in hub.pending() if p[1] != "failed"]
        check(fails == [], "changes left: %s" % fails)
        fx.assert_in_sync("conflicts " + tier)
    finally:
        if hub is not None:
            hub.stop()
        fx.stop()


def t_conflicts_qresync(tmp):
    conflicts(tmp, "QRESYNC")


def t_conflicts_plain(tmp):
    conflicts(tmp, "plain")


def t_conflicts_nouidplus(tmp):
    conflicts(tmp, "nouidplus")


# --- flags merge per flag with delta records --------------------------------

def to_delta(hub, email_id, delta):
    """The store records what a keyword change changed ("+\\Flagged -$x"):
    check that it did."""
    db = hub.db()
    rows = [r[0] for r in db.execute("SELECT detail FROM local_changes WHERE kind = 'keywords'")]
    db.close()
    check(delta in rows, "keyword change recorded as %s, not %s" % (rows, delta))


def to_absolute(hub, email_id, detail):
    """Stores made before schema 3 hold keyword changes in the absolute form
    ("<flags> <keywords>"): turn the pending one of email_id into that."""
    db = hub.db()
    db.execute("UPDATE local_changes SET detail = ? WHERE kind = 'keywords' AND state = '' "
               "AND object_id IN (SELECT id FROM messages WHERE email_id = ?)",
               (detail, int(email_id.lstrip("E"))))
    db.commit()
    db.close()


def t_delta_keywords(tmp):
    """Keyword records in the delta form ("+\\Flagged -$x", written by the
    store for schema 3) merge with a concurrent server change flag by flag;
    here the delta is put into the record the device change made."""
    for tier in ("QRESYNC", "plain"):
        fx = make_fixture(tmp, "delta-" + tier, tier)
        hub = None
        try:
            hub = Hub(fx, tmp, "delta-" + tier)
            inbox = hub.emails("INBOX")
            ids = sorted(inbox)
            m = ids[0]
            imap(fx, "INBOX", lambda c: c.uid("STORE", str(uid_of(fx, "INBOX", m)), "+FLAGS", "(\\Answered $srv)"))
            hub.set_email(update={inbox[m]["id"]: {"keywords/$flagged": True, "keywords/$dev": True}})
            to_delta(hub, inbox[m]["id"], "+\\Flagged +$dev")
            # A removal merges too: the device clears $gone, the server
            # adds $other meanwhile.
            g = ids[1]
            imap(fx, "INBOX", lambda c: c.uid("STORE", str(uid_of(fx, "INBOX", g)), "+FLAGS", "($gone)"))
            hub.sync()
            imap(fx, "INBOX", lambda c: c.uid("STORE", str(uid_of(fx, "INBOX", g)), "+FLAGS", "($other)"))
            hub.set_email(update={hub.emails("INBOX")[g]["id"]: {"keywords/$gone": None}})
            to_delta(hub, hub.emails("INBOX")[g]["id"], "-$gone")
            # The old absolute form: on a tier with CONDSTORE the device's
            # flags join the server's concurrent ones.
            o = ids[2]
            imap(fx, "INBOX", lambda c: c.uid("STORE", str(uid_of(fx, "INBOX", o)), "+FLAGS", "($srv2)"))
            hub.set_email(update={inbox[o]["id"]: {"keywords/$dev2": True}})
            to_absolute(hub, inbox[o]["id"], "0 $dev2")
            hub.sync()
            f = list(server_find(fx, "INBOX", m).values())[0]
            check({"\\Answered", "$srv", "\\Flagged", "$dev"} <= f, "%s merge: %s" % (tier, f))
            f = list(server_find(fx, "INBOX", g).values())[0]
            check("$other" in f and "$gone" not in f, "%s removal merge: %s" % (tier, f))
            f = list(server_find(fx, "INBOX", o).values())[0]
            if tier != "plain":
                check({"$srv2", "$dev2"} <= f, "%s absolute merge: %s" % (tier, f))
            else:  # no modseq: the device's flags replace the server's
                check("$dev2" in f, "%s absolute: %s" % (tier, f))
            fx.assert_in_sync("delta " + tier)
        finally:
            if hub is not None:
                hub.stop()
            fx.stop()


# --- kill at every commit ----------------------------------------------------

def crash_setup(tmp, name, tier):
    """A fixture and hub with a replay to make: an APPEND (import), a MOVE
    batch, keyword changes, a COPY batch and a destroy. Returns (fx, hub,
    verify)."""
    fx = make_fixture(tmp, name, tier, count=12)
    hub = Hub(fx, tmp, name)
    inbox = hub.emails("INBOX")
    ids = sorted(inbox)
    eid = {m: inbox[m]["id"] for m in ids}
    boxes = hub.mailboxes()
    hub.import_email(raw_message("crash import", "crash-imp"), "Work", {"$seen": True})
    hub.set_email(update={eid[m]: {"mailboxIds": {boxes["Archive"]: True}} for m in ids[0:3]})
    hub.set_email(update={eid[m]: {"keywords/$flagged": True} for m in ids[3:6]})
    hub.set_email(update={eid[m]: {"mailboxIds/" + boxes["Work"]: True} for m in ids[7:9]})
    hub.set_email(destroy=[eid[ids[6]]])
    hub.stop()

    def verify(what):
        hub.sync()
        assert_replayed(hub, what)
        check(server_msgids(fx, "Work").count("crash-imp@example.org") == 1,
              "%s: import duplicated or lost" % what)
        arch = server_msgids(fx, "Archive")
        for m in ids[0:3]:
            check(arch.count(m) == 1, "%s: move of %s: %d copies" % (what, m, arch.count(m)))
            check(not server_find(fx, "INBOX", m), "%s: %s still in INBOX" % (what, m))
        for m in ids[3:6]:
            f = server_find(fx, "INBOX", m)
            check(f and "\\Flagged" in list(f.values())[0], "%s: flag lost on %s" % (what, m))
        check(not server_find(fx, "INBOX", ids[6]), "%s: destroy lost" % what)
        work = server_msgids(fx, "Work")
        for m in ids[7:9]:
            check(work.count(m) == 1 and len(server_find(fx, "INBOX", m)) == 1,
                  "%s: copy of %s: %d in Work" % (what, m, work.count(m)))
        fx.assert_in_sync(what)
    return fx, hub, verify


def crash_run(hub, n):
    env = dict(os.environ, MK_CRASH_AFTER_COMMIT=str(n))
    r = hub.sync(env=env, expect=None)
    if os.environ.get("MK_VERBOSE"):
        print("  run %d: exit %d, pending %s" % (n, r.returncode, hub.pending()), flush=True)
    check(r.returncode in (0, -signal.SIGKILL), "run %d exited %d: %s" % (n, r.returncode, r.stderr))
    return r.returncode == 0


def t_crash(tmp):
    """One replay killed at its first commit, resumed and killed at its
    second, and so on until a run ends (isync's pattern)."""
    fx, hub, verify = crash_setup(tmp, "crash", "QRESYNC")
    try:
        n = 1
        while not crash_run(hub, n):
            n += 1
            check(n < 200, "never finished")
        check(n > 3, "no commit was interrupted")
        verify("crash loop")
        print("  crash loop: %d runs" % n, flush=True)
    finally:
        hub.stop()
        fx.stop()


def crash_each(tmp, tier):
    """Every crash point on its own: a fresh replay killed right after its
    Nth commit (a commit of the store, hub.db or the audit log, or the
    server's answer to an APPEND, COPY or MOVE), then a run without a kill:
    no duplicate on the server, no change lost."""
    n = 1
    while True:
        fx, hub, verify = crash_setup(tmp, "crash-%s-%d" % (tier, n), tier)
        try:
            finished = crash_run(hub, n)
            verify("%s killed after commit %d" % (tier, n))
        finally:
            hub.stop()
            fx.stop()
        if finished:
            break
        n += 1
        check(n < 100, "never finished")
    print("  %s: %d crash points" % (tier, n - 1), flush=True)


def t_crash_each(tmp):
    crash_each(tmp, "QRESYNC")


def t_crash_each_nouidplus(tmp):
    crash_each(tmp, "nouidplus")


SCENARIOS = {
    "kinds_qresync": t_kinds_qresync,
    "kinds_condstore": t_kinds_condstore,
    "kinds_plain": t_kinds_plain,
    "kinds_nouidplus": t_kinds_nouidplus,
    "conflicts_qresync": t_conflicts_qresync,
    "conflicts_plain": t_conflicts_plain,
    "conflicts_nouidplus": t_conflicts_nouidplus,
    "delta_keywords": t_delta_keywords,
    "crash": t_crash,
    "crash_each": t_crash_each,
    "crash_each_nouidplus": t_crash_each_nouidplus,
}

if __name__ == "__main__":
    run_scenarios(SCENARIOS, "mk-replay-test-", sys.argv[1:])
