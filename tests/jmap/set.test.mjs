// The writing half of the JMAP mail API against a running `mailkeep serve`
// (started by tests/jmap_test.py): uploads, Email/import, Email/set,
// Mailbox/set, Identity/get, isolation between users, and that a
// server-to-hub sync (`mailkeep sync`) neither undoes nor duplicates what
// was changed through the API. Leaves the INBOX as it found it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import JamClient from "jmap-jam";
import { EventSource } from "eventsource";

const env = process.env;
const session = env.MK_SESSION_URL;
const alice = new JamClient({ sessionUrl: session, bearerToken: env.MK_TOKEN_ALICE });
const bob = new JamClient({ sessionUrl: session, bearerToken: env.MK_TOKEN_BOB });
const A = "alice";

async function mailboxes() {
  const [r] = await alice.api.Mailbox.get({ accountId: A, ids: null });
  return r.list;
}

async function emailsIn(mailboxId, properties = ["subject", "keywords", "mailboxIds", "messageId"]) {
  const [q] = await alice.api.Email.query({ accountId: A, filter: { inMailbox: mailboxId }, limit: 1000 });
  if (q.ids.length === 0) return [];
  const [g] = await alice.api.Email.get({ accountId: A, ids: q.ids, properties });
  return g.list;
}

async function state() {
  const [r] = await alice.api.Email.get({ accountId: A, ids: [] });
  return r.state;
}

const rawMessage = (subject, id) =>
  `From: Carol <carol@example.org>\r\nTo: alice@example.org\r\nSubject: ${subject}\r\n` +
  `Message-ID: <${id}@example.org>\r\nDate: Tue, 01 Oct 2024 10:00:00 +0000\r\n\r\nHello ${subject}\r\n`;

test("the session is writable and says what the hub can do", async () => {
  const s = await alice.session;
  assert.equal(s.accounts.alice.isReadOnly, false);
  const mail = s.accounts.alice.accountCapabilities["urn:ietf:params:jmap:mail"];
  assert.equal(mail.maxMailboxesPerEmail, 1);
  assert.ok(s.capabilities["urn:ietf:params:jmap:core"].maxSizeUpload > 0);
  assert.ok(s.capabilities["urn:ietf:params:jmap:submission"]);
});

test("an upload above maxSizeUpload is refused with 413", async () => {
  const s = await alice.session;
  const max = s.capabilities["urn:ietf:params:jmap:core"].maxSizeUpload;
  // The server answers before reading the body and closes the connection,
  // which fetch reports as a failed write: curl shows the status (the token
  // goes in on stdin, not in argv).
  writeFileSync("/tmp/mk-set-big.bin", Buffer.alloc(max + 1));
  const status = execSync(`curl -s -o /dev/null -w '%{http_code}' -H @- --data-binary @/tmp/mk-set-big.bin ` +
    `'${new URL("/jmap/upload/alice/", session)}'`, { input: `Authorization: Bearer ${env.MK_TOKEN_ALICE}\n` }).toString();
  assert.equal(status, "413");
  const ok = await fetch(new URL("/jmap/upload/alice/", session), { method: "POST",
    headers: { Authorization: `Bearer ${env.MK_TOKEN_ALICE}`, "Content-Type": "text/plain" }, body: "small" });
  assert.equal(ok.status, 201);
  assert.deepEqual(Object.keys(await ok.json()).sort(), ["accountId", "blobId", "size", "type"]);
});

test("upload, then Email/import into a new mailbox, then Email/get", async () => {
  const raw = rawMessage("imported one", "imp1");
  const up = await alice.uploadBlob(A, new Blob([raw], { type: "message/rfc822" }));
  assert.equal(up.accountId, A);
  assert.equal(up.size, Buffer.byteLength(raw));
  assert.equal(up.type, "message/rfc822");
  assert.match(up.blobId, /^B\d+$/);
  const before = await state();
  const [res] = await alice.requestMany((t) => {
    const mb = t.Mailbox.set({ accountId: A, create: { box: { name: "Imported" } } });
    const imp = t.Email.import({
      accountId: A,
      emails: { m1: { blobId: up.blobId, mailboxIds: { "#box": true }, keywords: { $seen: true }, receivedAt: "2024-10-01T10:00:00Z" } },
    });
    return { mb, imp };
  });
  assert.ok(res.mb.created.box.id, JSON.stringify(res.mb));
  const created = res.imp.created.m1;
  assert.ok(created, JSON.stringify(res.imp));
  assert.equal(created.blobId, up.blobId);
  assert.equal(res.mb.oldState, before);
  assert.equal(res.imp.oldState, res.mb.newState);
  assert.notEqual(res.imp.newState, before);
  const [g] = await alice.api.Email.get({ accountId: A, ids: [created.id],
    properties: ["subject", "keywords", "mailboxIds", "receivedAt", "from"] });
  assert.equal(g.list[0].subject, "imported one");
  assert.deepEqual(g.list[0].keywords, { $seen: true });
  assert.deepEqual(g.list[0].mailboxIds, { [res.mb.created.box.id]: true });
  assert.equal(g.list[0].receivedAt, "2024-10-01T10:00:00Z");
  assert.equal(g.list[0].from[0].email, "carol@example.org");
  // An unknown blob, and a blob that is not a message.
  const junk = await alice.uploadBlob(A, new Blob(["\x00\x01 no header here"]));
  const [bad] = await alice.api.Email.import({ accountId: A, emails: {
    x: { blobId: "B999999999", mailboxIds: { [res.mb.created.box.id]: true } },
    y: { blobId: junk.blobId, mailboxIds: { [res.mb.created.box.id]: true } },
  } });
  // RFC 8621 4.8: a missing blob is invalidProperties on blobId.
  assert.equal(bad.notCreated.x.type, "invalidProperties");
  assert.deepEqual(bad.notCreated.x.properties, ["blobId"]);
  assert.equal(bad.notCreated.y.type, "invalidEmail");
});

test("a draft created from JMAP properties reads back with Email/get", async () => {
  const [mk] = await alice.api.Mailbox.set({ accountId: A, create: { d: { name: "My drafts" } } });
  const boxes = await mailboxes();
  const drafts = boxes.find((m) => m.id === mk.created.d.id);
  const att = await alice.uploadBlob(A, new Blob(["PDFDATA\x00\x01\x02"], { type: "application/pdf" }));
  const [r] = await alice.api.Email.set({ accountId: A, create: { d1: {
    mailboxIds: { [drafts.id]: true },
    keywords: { $draft: true, $seen: true },
    from: [{ name: "Alice Ä", email: "alice@example.org" }],
    to: [{ name: null, email: "bob@example.org" }],
    cc: [{ name: "Carol", email: "carol@example.org" }],
    subject: "Draft: grüße",
    sentAt: "2024-10-02T08:30:00Z",
    messageId: ["draft1@example.org"],
    inReplyTo: ["imp1@example.org"],
    references: ["imp1@example.org"],
    "header:X-Mailer:asText": "jam test",
    textBody: [{ partId: "t", type: "text/plain" }],
    htmlBody: [{ partId: "h", type: "text/html" }],
    bodyValues: { t: { value: "Hello Bob, ça va?\n" }, h: { value: "<p>Hello Bob</p>" } },
    attachments: [{ blobId: att.blobId, type: "application/pdf", name: "doc.pdf" }],
  } } });
  const c = r.created?.d1;
  assert.ok(c, JSON.stringify(r.notCreated));
  assert.match(c.id, /^E\d+$/);
  assert.ok(c.size > 0);
  const [g] = await alice.api.Email.get({ accountId: A, ids: [c.id], properties: [
    "subject", "from", "to", "cc", "messageId", "inReplyTo", "references", "sentAt", "keywords",
    "mailboxIds", "hasAttachment", "preview", "blobId", "size"] });
  const e = g.list[0];
  assert.equal(e.subject, "Draft: grüße");
  assert.deepEqual(e.from, [{ name: "Alice Ä", email: "alice@example.org" }]);
  assert.equal(e.to[0].email, "bob@example.org");
  assert.equal(e.cc[0].name, "Carol");
  assert.deepEqual(e.messageId, ["draft1@example.org"]);
  assert.deepEqual(e.inReplyTo, ["imp1@example.org"]);
  assert.deepEqual(e.references, ["imp1@example.org"]);
  assert.equal(e.sentAt, "2024-10-02T08:30:00Z");
  assert.deepEqual(e.keywords, { $draft: true, $seen: true });
  assert.deepEqual(e.mailboxIds, { [drafts.id]: true });
  assert.equal(e.hasAttachment, true);
  assert.match(e.preview, /Hello Bob/);
  const bytes = Buffer.from(await (await alice.downloadBlob({ accountId: A, blobId: e.blobId,
    mimeType: "message/rfc822", fileName: "d.eml" })).arrayBuffer()).toString("latin1");
  assert.equal(bytes.length, e.size);
  assert.match(bytes, /^X-Mailer: jam test\r$/m);
  assert.match(bytes, /Content-Type: multipart\/mixed/);
  assert.match(bytes, /filename="?doc\.pdf/);
  assert.ok(!/[^\r]\n/.test(bytes), "bare LF in the message");
  // Refusals with the RFC's SetErrors.
  const [bad] = await alice.api.Email.set({ accountId: A, create: {
    two: { mailboxIds: { [drafts.id]: true, [boxes[0].id]: true }, subject: "x" },
    none: { mailboxIds: {}, subject: "x" },
    inj: { mailboxIds: { [drafts.id]: true }, subject: "a\r\nBcc: evil@example.org" },
    hdr: { mailboxIds: { [drafts.id]: true }, headers: [{ name: "X", value: "y" }] },
    blob: { mailboxIds: { [drafts.id]: true }, attachments: [{ blobId: "B999999999" }] },
    addr: { mailboxIds: { [drafts.id]: true }, to: [{ email: "not an address" }] },
  } });
  // An Email may be in several mailboxes (schema 3): created in both.
  assert.ok(bad.created.two, JSON.stringify(bad.notCreated.two));
  const [two] = await alice.api.Email.get({ accountId: A, ids: [bad.created.two.id], properties: ["mailboxIds"] });
  assert.deepEqual(two.list[0].mailboxIds, { [drafts.id]: true, [boxes[0].id]: true });
  await alice.api.Email.set({ accountId: A, destroy: [bad.created.two.id] });
  assert.equal(bad.notCreated.none.type, "invalidProperties");
  assert.deepEqual(bad.notCreated.inj.properties, ["subject"]);
  assert.deepEqual(bad.notCreated.hdr.properties, ["headers"]);
  assert.equal(bad.notCreated.blob.type, "blobNotFound");
  assert.deepEqual(bad.notCreated.addr.properties, ["to"]);
  assert.deepEqual(Object.keys(bad.created), ["two"]);
});

test("keyword updates (whole and by path) show in Email/changes and state", async () => {
  const boxes = await mailboxes();
  const imported = boxes.find((m) => m.name === "Imported");
  const [e] = await emailsIn(imported.id);
  const s0 = await state();
  const [r1] = await alice.api.Email.set({ accountId: A, ifInState: s0,
    update: { [e.id]: { "keywords/$flagged": true, "keywords/$seen": null } } });
  assert.deepEqual(r1.updated, { [e.id]: null });
  const [ch] = await alice.api.Email.changes({ accountId: A, sinceState: s0 });
  assert.deepEqual(ch.updated, [e.id]);
  assert.deepEqual(ch.created, []);
  assert.equal(ch.newState, r1.newState);
  const [g] = await alice.api.Email.get({ accountId: A, ids: [e.id], properties: ["keywords"] });
  assert.deepEqual(g.list[0].keywords, { $flagged: true });
  const [r2] = await alice.api.Email.set({ accountId: A, update: { [e.id]: { keywords: { $seen: true, work: true } } } });
  assert.deepEqual(r2.updated, { [e.id]: null });
  const [g2] = await alice.api.Email.get({ accountId: A, ids: [e.id], properties: ["keywords"] });
  assert.deepEqual(g2.list[0].keywords, { $seen: true, work: true });
  // ifInState that no longer holds.
  await assert.rejects(alice.api.Email.set({ accountId: A, ifInState: s0, update: { [e.id]: { keywords: {} } } }),
    (err) => err.type === "stateMismatch");
  const [bad] = await alice.api.Email.set({ accountId: A, update: {
    [e.id]: { subject: "no" }, E999999999: { keywords: {} } } });
  assert.deepEqual(bad.notUpdated[e.id].properties, ["subject"]);
  assert.equal(bad.notUpdated.E999999999.type, "notFound");
});

test("push: a change made through the API sends a StateChange", async () => {
  const url = new URL("/jmap/eventsource/?types=*&closeafter=no&ping=0", session);
  const es = new EventSource(url, { fetch: (input, init) =>
    fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${env.MK_TOKEN_ALICE}` } }) });
  const next = (ms) => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no state event")), ms);
    es.addEventListener("state", (ev) => { clearTimeout(t); resolve(JSON.parse(ev.data)); }, { once: true });
  });
  try {
    await next(5000);
    const boxes = await mailboxes();
    const [e] = await emailsIn(boxes.find((m) => m.name === "Imported").id);
    const change = next(5000);
    const [r] = await alice.api.Email.set({ accountId: A, update: { [e.id]: { "keywords/pushed": true } } });
    const ev = await change;
    assert.equal(ev.changed.alice.Email, r.newState);
    assert.equal(ev.changed.alice.Mailbox, r.newState);
  } finally {
    es.close();
  }
});

test("move within the account, a second mailbox, destroy with a tombstone", async () => {
  const boxes = await mailboxes();
  const imported = boxes.find((m) => m.name === "Imported");
  const [r0] = await alice.api.Mailbox.set({ accountId: A, create: { t: { name: "Moved here" } } });
  const target = r0.created.t.id;
  const [e] = await emailsIn(imported.id);
  const s0 = await state();
  // A second mailbox (schema 3): the Email is in both.
  const [two] = await alice.api.Email.set({ accountId: A, update: { [e.id]: { [`mailboxIds/${target}`]: true } } });
  assert.deepEqual(two.updated, { [e.id]: null });
  const [g2] = await alice.api.Email.get({ accountId: A, ids: [e.id], properties: ["mailboxIds"] });
  assert.deepEqual(g2.list[0].mailboxIds, { [imported.id]: true, [target]: true });
  const [mv] = await alice.api.Email.set({ accountId: A,
    update: { [e.id]: { [`mailboxIds/${imported.id}`]: null, [`mailboxIds/${target}`]: true } } });
  assert.deepEqual(mv.updated, { [e.id]: null });
  const [g] = await alice.api.Email.get({ accountId: A, ids: [e.id], properties: ["mailboxIds"] });
  assert.deepEqual(g.list[0].mailboxIds, { [target]: true });
  const [mc] = await alice.api.Mailbox.changes({ accountId: A, sinceState: s0 });
  assert.deepEqual([...mc.updated].sort(), [imported.id, target].sort());
  const s1 = await state();
  const [d] = await alice.api.Email.set({ accountId: A, destroy: [e.id, "E999999999"] });
  assert.deepEqual(d.destroyed, [e.id]);
  assert.equal(d.notDestroyed.E999999999.type, "notFound");
  const [ch] = await alice.api.Email.changes({ accountId: A, sinceState: s1 });
  assert.deepEqual(ch.destroyed, [e.id]);
  const [gone] = await alice.api.Email.get({ accountId: A, ids: [e.id] });
  assert.deepEqual(gone.notFound, [e.id]);
});

test("Mailbox/set: create a child, rename, refuse a non-empty destroy, destroy", async () => {
  const [r] = await alice.api.Mailbox.set({ accountId: A, create: {
    p: { name: "Plans", sortOrder: 3 },
    c: { name: "Alpha", parentId: "#p", isSubscribed: false },
    bad: { name: "x", role: "trash" },
  } });
  assert.ok(r.created.p && r.created.c, JSON.stringify(r));
  const p = r.created.p.id, c = r.created.c.id;
  assert.equal(r.notCreated.bad.type, "invalidProperties");
  let list = await mailboxes();
  const child = list.find((m) => m.id === c);
  assert.equal(child.parentId, p);
  assert.equal(child.name, "Alpha");
  assert.equal(child.isSubscribed, false);
  assert.equal(list.find((m) => m.id === p).sortOrder, 3);
  const s0 = await state();
  const [u] = await alice.api.Mailbox.set({ accountId: A, update: { [c]: { name: "Beta" } } });
  assert.deepEqual(u.updated, { [c]: null });
  const [mc] = await alice.api.Mailbox.changes({ accountId: A, sinceState: s0 });
  assert.deepEqual(mc.updated, [c]);
  list = await mailboxes();
  assert.equal(list.find((m) => m.id === c).name, "Beta");
  // Renaming the parent takes the child along; moving under itself is refused.
  const [u2] = await alice.api.Mailbox.set({ accountId: A, update: { [p]: { name: "Plans 2" } } });
  assert.deepEqual(u2.updated, { [p]: null }, JSON.stringify(u2));
  const [u3] = await alice.api.Mailbox.set({ accountId: A, update: { [p]: { parentId: c } } });
  assert.equal(u3.notUpdated[p].type, "invalidProperties");
  list = await mailboxes();
  assert.equal(list.find((m) => m.id === p).name, "Plans 2");
  assert.equal(list.find((m) => m.id === c).parentId, p);
  assert.equal(list.find((m) => m.id === c).name, "Beta");
  // The parent has a child; the child gets a message.
  const up = await alice.uploadBlob(A, new Blob([rawMessage("in beta", "beta1")]));
  await alice.api.Email.import({ accountId: A, emails: { b: { blobId: up.blobId, mailboxIds: { [c]: true } } } });
  const [d1] = await alice.api.Mailbox.set({ accountId: A, destroy: [p, c] });
  assert.equal(d1.notDestroyed[p].type, "mailboxHasChild");
  assert.equal(d1.notDestroyed[c].type, "mailboxHasEmail");
  const s1 = await state();
  const [d2] = await alice.api.Mailbox.set({ accountId: A, destroy: [c], onDestroyRemoveEmails: true });
  assert.deepEqual(d2.destroyed, [c]);
  const [d3] = await alice.api.Mailbox.set({ accountId: A, destroy: [p] });
  assert.deepEqual(d3.destroyed, [p]);
  const [mc2] = await alice.api.Mailbox.changes({ accountId: A, sinceState: s1 });
  assert.deepEqual([...mc2.destroyed].sort(), [c, p].sort());
  const inbox = list.find((m) => m.role === "inbox");
  const [d4] = await alice.api.Mailbox.set({ accountId: A, destroy: [inbox.id], update: { [inbox.id]: { name: "Other" } } });
  assert.equal(d4.notDestroyed[inbox.id].type, "forbidden");
  assert.equal(d4.notUpdated[inbox.id].type, "forbidden");
});

test("Identity/get: one identity per hub account", async () => {
  const [r] = await alice.api.Identity.get({ accountId: A, ids: null });
  assert.equal(r.list.length, 1);
  const id = r.list[0];
  assert.match(id.id, /^I\d+$/);
  assert.equal(id.name, "");
  assert.equal(id.mayDelete, false);
  assert.match(id.email, /^alice@/);
  const [none] = await alice.api.Identity.get({ accountId: A, ids: ["I999999"] });
  assert.deepEqual(none.notFound, ["I999999"]);
  const [same] = await alice.api.Identity.changes({ accountId: A, sinceState: r.state });
  assert.equal(same.newState, r.state);
  await assert.rejects(alice.api.Identity.changes({ accountId: A, sinceState: "old" }),
    (e) => e.type === "cannotCalculateChanges");
  const [b] = await bob.api.Identity.get({ accountId: "bob", ids: null });
  assert.deepEqual(b.list, []);
});

test("another user's ids are notFound and never touched", async () => {
  const boxes = await mailboxes();
  const drafts = boxes.find((m) => m.name === "My drafts");
  const mine = await emailsIn(drafts.id, ["keywords"]);
  const ids = mine.map((e) => e.id);
  await assert.rejects(bob.api.Email.set({ accountId: A, destroy: ids }), (e) => e.type === "accountNotFound");
  const [r] = await bob.api.Email.set({ accountId: "bob",
    update: Object.fromEntries(ids.map((id) => [id, { keywords: {} }])), destroy: ids });
  for (const id of ids) {
    assert.equal(r.notUpdated[id].type, "notFound");
    assert.equal(r.notDestroyed[id].type, "notFound");
  }
  const [m] = await bob.api.Mailbox.set({ accountId: "bob", destroy: [drafts.id], update: { [drafts.id]: { name: "x" } } });
  assert.equal(m.notDestroyed[drafts.id].type, "notFound");
  assert.equal(m.notUpdated[drafts.id].type, "notFound");
  const [imp] = await bob.api.Email.import({ accountId: "bob", emails: { x: { blobId: "B1", mailboxIds: { [drafts.id]: true } } } });
  assert.ok(imp.notCreated.x);
  const up = await fetch(new URL("/jmap/upload/alice/", session), { method: "POST",
    headers: { Authorization: `Bearer ${env.MK_TOKEN_BOB}` }, body: "x" });
  assert.equal(up.status, 404);
  const after = await emailsIn(drafts.id, ["keywords"]);
  assert.deepEqual(after, mine);
});

test("a sync from the server neither undoes nor duplicates changes made here", async () => {
  // A server folder to destroy through the API.
  execSync(`${env.MK_IMAPCTL} create Doomed && printf 'Subject: doomed\\r\\n\\r\\nx\\r\\n' > /tmp/mk-set-doomed.eml && ` +
    `${env.MK_IMAPCTL} append Doomed /tmp/mk-set-doomed.eml >/dev/null && ${env.MK_SYNC_CMD}`, { stdio: "inherit" });
  const boxes = await mailboxes();
  // A server folder with messages that is not the INBOX.
  const special = ["inbox", "drafts", "junk", "trash"];
  const counts = boxes.filter((m) => !special.includes(m.role) && m.totalEmails >= 3);
  assert.ok(counts.length >= 1, "the fixture has no non-inbox folder with mail");
  const src = counts.sort((a, b) => b.totalEmails - a.totalEmails)[0];
  const other = boxes.find((m) => m.id !== src.id && !special.includes(m.role) &&
    m.name !== "Imported" && m.name !== "Moved here" && m.name !== "My drafts" && m.name !== "Doomed" &&
    !m.name.includes(".") && !m.parentId &&
    // a folder that holds mail: not a parent the server lists \Noselect or not at all
    !boxes.some((c) => c.parentId === m.id));
  assert.ok(other);
  const before = await emailsIn(src.id);
  // From the middle of the folder (the newest is also the last UID, which
  // a "n:*" scan touches separately).
  const mid = Math.floor(before.length / 2);
  const [a, b, c] = before.slice(mid - 1, mid + 2);
  // Changes made here: keywords, a move, a destroy, a new mailbox, a
  // rename of a server mailbox and the destruction of another.
  await alice.api.Email.set({ accountId: A, update: {
    [a.id]: { keywords: { $flagged: true, localonly: true } },
    [b.id]: { mailboxIds: { [other.id]: true } },
  }, destroy: [c.id] });
  const [mk] = await alice.api.Mailbox.set({ accountId: A, create: { n: { name: "Made here" } },
    update: { [other.id]: { name: other.name + " renamed" } } });
  assert.ok(mk.created.n, JSON.stringify(mk));
  const made = mk.created.n.id;
  assert.deepEqual(mk.updated, { [other.id]: null }, JSON.stringify([mk, other]));
  const victim = boxes.find((m) => m.name === "Doomed");
  assert.ok(victim && victim.id !== other.id && victim.id !== src.id);
  const [dv] = await alice.api.Mailbox.set({ accountId: A, destroy: [victim.id], onDestroyRemoveEmails: true });
  assert.deepEqual(dv.destroyed, [victim.id]);
  // Made again under the same name: the server folder's mail stays away.
  const [again] = await alice.api.Mailbox.set({ accountId: A, create: { d: { name: "Doomed" } } });
  const doomed2 = again.created.d.id;
  // Meanwhile on the server: every message of the folder gets a keyword,
  // and new mail arrives there.
  execSync(`${env.MK_IMAPCTL} flags '${src.name}' 1:* add '$fromserver'`, { stdio: "inherit" });
  execSync(`printf 'Subject: new on server\\r\\n\\r\\nhi\\r\\n' > /tmp/mk-set-new.eml && ` +
    `${env.MK_IMAPCTL} append '${src.name}' /tmp/mk-set-new.eml >/dev/null`, { stdio: "inherit" });
  execSync(env.MK_SYNC_CMD, { stdio: "inherit" });
  execSync(env.MK_SYNC_CMD, { stdio: "inherit" });

  const after = await emailsIn(src.id);
  const byId = Object.fromEntries(after.map((e) => [e.id, e]));
  // The sync ran: the new mail is in, the server's keyword on the others.
  assert.ok(after.some((e) => e.subject === "new on server"), "the sync did not fetch new mail");
  const untouched = after.filter((e) => e.id !== a.id && e.subject !== "new on server");
  assert.ok(untouched.length > 0 && untouched.every((e) => e.keywords.$fromserver), "server keywords not synced");
  // The keyword change made here stands.
  assert.deepEqual(byId[a.id].keywords, { $flagged: true, localonly: true });
  // Moved and destroyed messages are not fetched again.
  assert.equal(after.length, before.length - 2 + 1);
  const ids = (l) => l.map((e) => JSON.stringify(e.messageId) + e.subject);
  assert.ok(!ids(after).includes(ids([b])[0]), "the moved message came back");
  assert.ok(!ids(after).includes(ids([c])[0]), "the destroyed message came back");
  const [gb] = await alice.api.Email.get({ accountId: A, ids: [b.id, c.id], properties: ["mailboxIds"] });
  assert.deepEqual(gb.list.map((e) => e.id), [b.id]);
  assert.deepEqual(gb.list[0].mailboxIds, { [other.id]: true });
  assert.deepEqual(gb.notFound, [c.id]);
  // Mailboxes: the one made here stays, the rename stands, the destroyed
  // one is not created again, nothing is duplicated.
  const list = await mailboxes();
  assert.ok(list.some((m) => m.id === made), "the mailbox made here was deleted");
  assert.equal(list.find((m) => m.id === other.id).name, other.name + " renamed");
  assert.ok(!list.some((m) => m.name === other.name && !m.parentId), "the renamed mailbox came back");
  assert.deepEqual(list.filter((m) => m.name === victim.name).map((m) => [m.id, m.totalEmails]),
    [[doomed2, 0]], "the destroyed mailbox came back");
  const names = list.map((m) => `${m.parentId}/${m.name}`);
  assert.equal(new Set(names).size, names.length, "duplicate mailboxes");
  assert.equal(list.find((m) => m.id === other.id).totalEmails, other.totalEmails + 1);
  // The server was not touched: the changes wait for the two-way sync.
  const server = Object.fromEntries(execSync(`${env.MK_IMAPCTL} list`).toString().trim().split("\n")
    .map((l) => { const f = l.split(" "); return [f.slice(0, -3).join(" "), Number(f.at(-1))]; }));
  assert.equal(server[src.name], before.length + 1);
  assert.ok("Doomed" in server && other.name in server && !("Made here" in server));

  // The server renumbers the folder (new UIDVALIDITY, new UIDs): the
  // re-pairing keeps the keyword change and does not fetch the moved and
  // destroyed messages again.
  execSync(`${env.MK_RENUMBER_CMD} '${src.name}' && ${env.MK_SYNC_CMD}`, { stdio: "inherit" });
  const renumbered = await emailsIn(src.id);
  assert.equal(renumbered.length, after.length, "messages were fetched again or lost");
  assert.deepEqual(renumbered.map((e) => e.id).sort(), after.map((e) => e.id).sort());
  assert.deepEqual(renumbered.find((e) => e.id === a.id).keywords, { $flagged: true, localonly: true });
});
