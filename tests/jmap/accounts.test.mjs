// One JMAP account per external account (issue #10), against a running
// `mailkeep serve` started by tests/jmap_test.py: hub user dave has two
// external accounts, the real Dovecot users alice and bob.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execSync } from "node:child_process";

const env = process.env;
const session = env.MK_SESSION_URL;
const using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
  "urn:ietf:params:jmap:submission"];
const [hubAlice, hubBob] = env.MK_DAVE_ACCOUNTS.split(" "); // hub account ids, in added order

async function getSession() {
  const r = await fetch(session, { headers: { Authorization: `Bearer ${env.MK_TOKEN_DAVE}` } });
  assert.equal(r.status, 200);
  return r.json();
}

async function call(methodCalls) {
  const r = await fetch(new URL("/jmap/api/", session), {
    method: "POST",
    headers: { Authorization: `Bearer ${env.MK_TOKEN_DAVE}`, "Content-Type": "application/json" },
    body: JSON.stringify({ using, methodCalls }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).methodResponses;
}

async function one(name, args) {
  const [[n, r]] = await call([[name, args, "0"]]);
  assert.equal(n, name, JSON.stringify(r));
  return r;
}

const s0 = await getSession();
const byName = (name) => Object.keys(s0.accounts).find((id) => s0.accounts[id].name === name);
const ALICE = byName("alice@127.0.0.1");
const BOB = byName("bob@127.0.0.1");

test("two external accounts are two JMAP accounts, plus the notices account", () => {
  assert.ok(ALICE && BOB, JSON.stringify(s0.accounts));
  assert.notEqual(ALICE, BOB);
  assert.equal(Object.keys(s0.accounts).length, 3);
  assert.ok(byName("mailkeep"));
  for (const id of [ALICE, BOB]) {
    const caps = s0.accounts[id].accountCapabilities;
    assert.equal(caps["urn:ietf:params:jmap:mail"].maxMailboxesPerEmail, null);
    assert.ok(caps["urn:ietf:params:jmap:submission"]);
    assert.equal(s0.accounts[id].isPersonal, true);
  }
  // The first account added is primary until the user chooses another.
  assert.equal(s0.primaryAccounts["urn:ietf:params:jmap:mail"], ALICE);
});

test("each account has its own tree with one inbox", async () => {
  const a = await one("Mailbox/get", { accountId: ALICE, ids: null });
  const b = await one("Mailbox/get", { accountId: BOB, ids: null });
  assert.equal(a.accountId, ALICE);
  assert.equal(b.accountId, BOB);
  for (const r of [a, b]) {
    assert.equal(r.list.filter((m) => m.role === "inbox").length, 1);
    const roles = r.list.map((m) => m.role).filter((x) => x !== null);
    assert.equal(new Set(roles).size, roles.length, "a role twice in one account");
  }
  const aIds = new Set(a.list.map((m) => m.id));
  assert.ok(b.list.every((m) => !aIds.has(m.id)), "the trees share mailboxes");
  // Bob's inbox: his two messages, not alice's sixty.
  const bInbox = b.list.find((m) => m.role === "inbox");
  assert.equal(bInbox.totalEmails, 2);
  // A mailbox of one account is not found through the other.
  const cross = await one("Mailbox/get", { accountId: ALICE, ids: [bInbox.id] });
  assert.deepEqual(cross.notFound, [bInbox.id]);
});

test("a server folder hierarchy is a mailbox tree", async () => {
  const b = await one("Mailbox/get", { accountId: BOB, ids: null });
  const projects = b.list.find((m) => m.name === "Projects" && m.parentId === null);
  assert.ok(projects, JSON.stringify(b.list.map((m) => [m.name, m.parentId])));
  const alpha = b.list.find((m) => m.name === "Alpha");
  assert.ok(alpha, "Projects.Alpha is not shown as Alpha");
  assert.equal(alpha.parentId, projects.id);
  assert.equal(alpha.totalEmails, 1);
  assert.equal(alpha.myRights.mayAddItems, true);
  // A parent the server has no folder for: shown, holds no mail, no role.
  const nested = b.list.find((m) => m.name === "Nested");
  assert.ok(nested, "Deep.Nested is not shown as Nested");
  const deep = b.list.find((m) => m.id === nested.parentId);
  assert.equal(deep.name, "Deep");
  assert.equal(deep.parentId, null);
  assert.equal(deep.role, null);
  assert.equal(deep.myRights.mayAddItems, false);
  assert.equal(deep.myRights.maySetKeywords, false);
  assert.equal(nested.myRights.mayAddItems, true);
  // A child created through JMAP gets its full server name with the
  // account's delimiter, and shows under its parent.
  const set = await one("Mailbox/set", { accountId: BOB,
    create: { beta: { name: "Beta", parentId: projects.id } } });
  const beta = set.created.beta;
  assert.ok(beta, JSON.stringify(set.notCreated));
  const [got] = (await one("Mailbox/get", { accountId: BOB, ids: [beta.id] })).list;
  assert.equal(got.name, "Beta");
  assert.equal(got.parentId, projects.id);
  // A name with the delimiter in it is refused.
  const bad = await one("Mailbox/set", { accountId: BOB,
    create: { x: { name: "a.b", parentId: projects.id } } });
  assert.equal(bad.notCreated.x.type, "invalidProperties");
  // The other account's mailbox is no parent here.
  const a = await one("Mailbox/get", { accountId: ALICE, ids: null });
  const aInbox = a.list.find((m) => m.role === "inbox");
  const cross = await one("Mailbox/set", { accountId: BOB,
    create: { y: { name: "Gamma", parentId: aInbox.id } } });
  assert.equal(cross.notCreated.y.type, "invalidProperties");
  const clean = await one("Mailbox/set", { accountId: BOB, destroy: [beta.id] });
  assert.deepEqual(clean.destroyed, [beta.id]);
});

test("Email/query and Mailbox/query stay in their account", async () => {
  const b = await one("Mailbox/query", { accountId: BOB });
  const bBoxes = await one("Mailbox/get", { accountId: BOB, ids: null });
  assert.equal(b.ids.length, bBoxes.list.length);
  const a = await one("Mailbox/query", { accountId: ALICE });
  assert.ok(a.ids.every((id) => !b.ids.includes(id)));
});

test("/changes of an account report only its own objects", async () => {
  const s0 = (await one("Mailbox/get", { accountId: ALICE, ids: [] })).state;
  const e0 = (await one("Email/get", { accountId: ALICE, ids: [] })).state;
  const made = await one("Mailbox/set", { accountId: BOB, create: { k: { name: "Kept apart" } } });
  const id = made.created.k.id;
  const a = await one("Mailbox/changes", { accountId: ALICE, sinceState: s0 });
  const b = await one("Mailbox/changes", { accountId: BOB, sinceState: s0 });
  assert.deepEqual(a.created, []);
  assert.deepEqual(b.created, [id]);
  const ae = await one("Email/changes", { accountId: ALICE, sinceState: e0 });
  assert.deepEqual([...ae.created, ...ae.updated, ...ae.destroyed], []);
  await one("Mailbox/set", { accountId: BOB, destroy: [id] });
  const a2 = await one("Mailbox/changes", { accountId: ALICE, sinceState: s0 });
  assert.deepEqual(a2.destroyed, []);
  // A state the server never gave out is refused the same way everywhere.
  for (const [m, arg] of [["Mailbox/changes", "sinceState"], ["Email/changes", "sinceState"],
    ["Identity/changes", "sinceState"], ["EmailSubmission/changes", "sinceState"]]) {
    const [[t, r]] = await call([[m, { accountId: ALICE, [arg]: "+1" }, "0"]]);
    assert.equal(t, "error");
    assert.equal(r.type, "cannotCalculateChanges", m);
    const [[t2, r2]] = await call([[m, { accountId: ALICE, [arg]: "1", maxChanges: 0 }, "0"]]);
    assert.equal(t2, "error");
    assert.equal(r2.type, "invalidArguments", m);
  }
});

test("Identity/get shows the account's own identity only", async () => {
  const a = await one("Identity/get", { accountId: ALICE, ids: null });
  const b = await one("Identity/get", { accountId: BOB, ids: null });
  assert.deepEqual(a.list.map((i) => i.id), [`I${hubAlice}`]);
  assert.deepEqual(b.list.map((i) => i.id), [`I${hubBob}`]);
  const n = await one("Identity/get", { accountId: byName("mailkeep"), ids: null });
  assert.deepEqual(n.list, []);
});

test("downloads are scoped to the account, uploads to the user", async () => {
  const q = await one("Email/query", { accountId: BOB,
    filter: { inMailbox: (await one("Mailbox/get", { accountId: BOB, ids: null })).list
      .find((m) => m.role === "inbox").id } });
  const [e] = (await one("Email/get", { accountId: BOB, ids: q.ids.slice(0, 1),
    properties: ["blobId"] })).list;
  const url = (acct) => new URL(`/jmap/download/${acct}/${e.blobId}/m.eml`, session);
  const auth = { headers: { Authorization: `Bearer ${env.MK_TOKEN_DAVE}` } };
  assert.equal((await fetch(url(BOB), auth)).status, 200);
  assert.equal((await fetch(url(ALICE), auth)).status, 404);
  assert.equal((await fetch(url("A999999"), auth)).status, 404);
  const up = await fetch(new URL(`/jmap/upload/${ALICE}/`, session), { method: "POST",
    headers: { Authorization: `Bearer ${env.MK_TOKEN_DAVE}`, "Content-Type": "text/plain" },
    body: "an upload" });
  assert.equal(up.status, 201);
  const u = await up.json();
  assert.equal(u.accountId, ALICE);
  // An upload is the user's: any of the user's accounts may read it.
  assert.equal((await fetch(new URL(`/jmap/download/${BOB}/${u.blobId}/x`, session), auth)).status, 200);
  const bad = await fetch(new URL(`/jmap/upload/A999999/`, session), { method: "POST",
    headers: { Authorization: `Bearer ${env.MK_TOKEN_DAVE}`, "Content-Type": "text/plain" },
    body: "x" });
  assert.equal(bad.status, 404);
});

test("Email/copy copies between the user's accounts", async () => {
  const bBoxes = (await one("Mailbox/get", { accountId: BOB, ids: null })).list;
  const alpha = bBoxes.find((m) => m.name === "Alpha");
  const aBoxes = (await one("Mailbox/get", { accountId: ALICE, ids: null })).list;
  const aInbox = aBoxes.find((m) => m.role === "inbox");
  const q = await one("Email/query", { accountId: BOB, filter: { inMailbox: alpha.id } });
  assert.equal(q.ids.length, 1);
  const [src] = (await one("Email/get", { accountId: BOB, ids: q.ids,
    properties: ["subject", "blobId", "size"] })).list;
  const r = await call([["Email/copy", { fromAccountId: BOB, accountId: ALICE,
    create: { c1: { id: src.id, mailboxIds: { [aInbox.id]: true }, keywords: { $seen: true } },
      c2: { id: "E999999", mailboxIds: { [aInbox.id]: true } } } }, "0"]]);
  assert.equal(r[0][0], "Email/copy", JSON.stringify(r));
  const copy = r[0][1];
  assert.equal(copy.fromAccountId, BOB);
  assert.equal(copy.accountId, ALICE);
  assert.ok(copy.created.c1, JSON.stringify(copy.notCreated));
  assert.equal(copy.notCreated.c2.type, "notFound");
  const [got] = (await one("Email/get", { accountId: ALICE, ids: [copy.created.c1.id],
    properties: ["subject", "mailboxIds", "keywords", "size"] })).list;
  assert.equal(got.subject, src.subject);
  assert.equal(got.size, src.size);
  assert.deepEqual(got.mailboxIds, { [aInbox.id]: true });
  assert.equal(got.keywords.$seen, true);
  // The original stays (no onSuccessDestroyOriginal).
  assert.equal((await one("Email/get", { accountId: BOB, ids: [src.id], properties: [] })).list.length, 1);

  // Move: onSuccessDestroyOriginal destroys it through an implicit Email/set.
  const bInbox = bBoxes.find((m) => m.role === "inbox");
  const bq = await one("Email/query", { accountId: BOB, filter: { inMailbox: bInbox.id } });
  const moved = await call([["Email/copy", { fromAccountId: BOB, accountId: ALICE,
    onSuccessDestroyOriginal: true,
    create: { m1: { id: bq.ids[0], mailboxIds: { [aInbox.id]: true } } } }, "1"]]);
  assert.deepEqual(moved.map((m) => m[0]), ["Email/copy", "Email/set"]);
  assert.equal(moved[1][2], "1");
  assert.ok(moved[0][1].created.m1);
  assert.deepEqual(moved[1][1].destroyed, [bq.ids[0]]);
  assert.equal(moved[1][1].accountId, BOB);
  const gone = await one("Email/get", { accountId: BOB, ids: [bq.ids[0]], properties: [] });
  assert.deepEqual(gone.notFound, [bq.ids[0]]);

  // Same account: invalidArguments (RFC 8620 5.4).
  const [[t, same]] = await call([["Email/copy", { fromAccountId: BOB, accountId: BOB,
    create: { x: { id: src.id, mailboxIds: { [alpha.id]: true } } } }, "2"]]);
  assert.equal(t, "error");
  assert.equal(same.type, "invalidArguments");
});

test("Blob/copy makes a blob readable in the other account", async () => {
  const bBoxes = (await one("Mailbox/get", { accountId: BOB, ids: null })).list;
  const alpha = bBoxes.find((m) => m.name === "Alpha");
  const q = await one("Email/query", { accountId: BOB, filter: { inMailbox: alpha.id } });
  const [src] = (await one("Email/get", { accountId: BOB, ids: q.ids, properties: ["blobId"] })).list;
  const r = await one("Blob/copy", { fromAccountId: BOB, accountId: byName("mailkeep"),
    blobIds: [src.blobId, "B999999"] });
  assert.deepEqual(Object.keys(r.copied), [src.blobId]);
  assert.equal(r.notCopied.B999999.type, "blobNotFound");
  const auth = { headers: { Authorization: `Bearer ${env.MK_TOKEN_DAVE}` } };
  const d = await fetch(new URL(`/jmap/download/${byName("mailkeep")}/${r.copied[src.blobId]}/m.eml`,
    session), auth);
  assert.equal(d.status, 200);
});

test("primaryAccounts follows `mailkeep account primary`", async () => {
  const before = await getSession();
  // API responses carry the session's state.
  const r = await fetch(new URL("/jmap/api/", session), { method: "POST",
    headers: { Authorization: `Bearer ${env.MK_TOKEN_DAVE}`, "Content-Type": "application/json" },
    body: JSON.stringify({ using, methodCalls: [["Core/echo", {}, "0"]] }) });
  assert.equal((await r.json()).sessionState, before.state);
  execSync(`${env.MK_PRIMARY_CMD} ${hubBob}`);
  const s = await getSession();
  assert.equal(s.primaryAccounts["urn:ietf:params:jmap:mail"], BOB);
  // The session changed, so its state did (RFC 8620 2).
  assert.notEqual(s.state, before.state);
  assert.equal(s.primaryAccounts["urn:ietf:params:jmap:submission"], BOB);
  execSync(`${env.MK_PRIMARY_CMD} ${hubAlice}`);
  assert.equal((await getSession()).primaryAccounts["urn:ietf:params:jmap:mail"], ALICE);
  assert.throws(() => execSync(`${env.MK_PRIMARY_CMD} 999999`, { stdio: "pipe" }));
});
