// Email/query, Email/queryChanges, Mailbox/query, Mailbox/queryChanges,
// Thread/get and Thread/changes with jmap-jam against a real `mailkeep serve`
// (started by tests/jmap_test.py over mail synced from a real Dovecot).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import JamClient from "jmap-jam";

const env = process.env;
const session = env.MK_SESSION_URL;
const alice = new JamClient({ sessionUrl: session, bearerToken: env.MK_TOKEN_ALICE });
const bob = new JamClient({ sessionUrl: session, bearerToken: env.MK_TOKEN_BOB });
// Account ids come from the sessions (one JMAP account per external account).
const A = { accountId: await alice.getPrimaryAccount() };
const B = await bob.getPrimaryAccount();
// Account ids are per user ("A<n>" of the user's own store): alice's id may
// also name one of bob's accounts, which then holds only bob's mail. An id
// that is none of bob's must be accountNotFound.
const NOT_BOBS = Object.keys((await bob.session).accounts).includes(A.accountId) ? "A999999" : A.accountId;

async function mailboxes() {
  const [mb] = await alice.api.Mailbox.get({ ...A, ids: null });
  return mb.list;
}
async function inbox() {
  return (await mailboxes()).find((m) => m.role === "inbox");
}
async function query(args) {
  const [r] = await alice.api.Email.query({ ...A, ...args });
  return r;
}
async function get(ids, properties) {
  const [r] = await alice.api.Email.get({ ...A, ids, properties });
  const byId = new Map(r.list.map((e) => [e.id, e]));
  return ids.map((id) => byId.get(id));
}
const rejectsWith = (p, type) => assert.rejects(p, (e) => e.type === type || assert.fail(`got ${e.type}`));

test("the session names the collations and sorts", async () => {
  const s = await alice.session;
  assert.deepEqual([...s.capabilities["urn:ietf:params:jmap:core"].collationAlgorithms].sort(),
    ["i;ascii-casemap", "i;ascii-numeric", "i;unicode-casemap"]);
  const opts = s.accounts[A.accountId].accountCapabilities["urn:ietf:params:jmap:mail"].emailQuerySortOptions;
  for (const p of ["receivedAt", "sentAt", "size", "from", "to", "subject", "hasKeyword"]) assert.ok(opts.includes(p), p);
});

test("Email/query sorts: receivedAt, sentAt, size, from, subject", async () => {
  const box = await inbox();
  const f = { inMailbox: box.id };
  const all = await query({ filter: f, sort: [{ property: "receivedAt", isAscending: true }], calculateTotal: true });
  assert.equal(all.total, box.totalEmails);
  assert.equal(all.canCalculateChanges, true);
  const received = (await get(all.ids, ["receivedAt"])).map((e) => e.receivedAt);
  assert.deepEqual([...received].sort(), received);

  const bySize = await query({ filter: f, sort: [{ property: "size", isAscending: false }], limit: 20 });
  const sizes = (await get(bySize.ids, ["size"])).map((e) => e.size);
  assert.deepEqual([...sizes].sort((a, b) => b - a), sizes);

  const bySent = await query({ filter: f, sort: [{ property: "sentAt" }], limit: 20 });
  const sent = (await get(bySent.ids, ["sentAt"])).map((e) => e.sentAt ?? "");
  assert.deepEqual([...sent].sort(), sent);

  for (const property of ["from", "to", "subject"]) {
    for (const collation of ["i;unicode-casemap", "i;ascii-casemap", "i;ascii-numeric"]) {
      const r = await query({ filter: f, sort: [{ property, collation }, { property: "size" }], limit: 5 });
      assert.equal(r.ids.length, Math.min(5, box.totalEmails), `${property} ${collation}`);
    }
  }
  const byFrom = await query({ filter: f, sort: [{ property: "from" }] });
  const names = (await get(byFrom.ids, ["from"])).map((e) =>
    (e.from?.[0]?.name || e.from?.[0]?.email || "").toLowerCase());
  const ascii = names.filter((n) => /^[a-z0-9 ]*$/.test(n));
  assert.deepEqual([...ascii].sort(), ascii, "from (ASCII names) not in order");

  await rejectsWith(query({ sort: [{ property: "nope" }] }), "unsupportedSort");
  await rejectsWith(query({ sort: [{ property: "size", collation: "i;octet-x" }] }), "unsupportedSort");
  await rejectsWith(query({ sort: [{ property: "hasKeyword" }] }), "invalidArguments");
});

test("Email/query filters partition the mailbox; operators; errors", async () => {
  const box = await inbox();
  const total = async (filter) => (await query({ filter, calculateTotal: true, limit: 0 })).total;
  const inBox = { inMailbox: box.id };
  const n = await total(inBox);
  const seen = await total({ ...inBox, hasKeyword: "$seen" });
  const unseen = await total({ ...inBox, notKeyword: "$seen" });
  assert.equal(seen + unseen, n);
  assert.equal(await total({ operator: "AND", conditions: [inBox, { operator: "NOT", conditions: [{ hasKeyword: "$Seen" }] }] }), unseen);
  assert.equal(await total({ operator: "OR", conditions: [{ ...inBox, hasKeyword: "$seen" }, { ...inBox, notKeyword: "$seen" }] }), n);
  const big = await total({ ...inBox, minSize: 3000 });
  const small = await total({ ...inBox, maxSize: 3000 });
  assert.equal(big + small, n);
  const att = await total({ ...inBox, hasAttachment: true });
  assert.equal(att + (await total({ ...inBox, hasAttachment: false })), n);
  const mid = (await query({ filter: inBox, sort: [{ property: "receivedAt" }] }));
  const pivot = (await get([mid.ids[Math.floor(mid.ids.length / 2)]], ["receivedAt"]))[0].receivedAt;
  assert.equal((await total({ ...inBox, before: pivot })) + (await total({ ...inBox, after: pivot })), n);
  const threadKw = await total({ ...inBox, someInThreadHaveKeyword: "$seen" });
  assert.ok(threadKw >= seen);
  assert.equal(threadKw + (await total({ ...inBox, noneInThreadHaveKeyword: "$seen" })), n);
  assert.ok((await total({ ...inBox, allInThreadHaveKeyword: "$seen" })) <= seen);
  const withId = await total({ ...inBox, header: ["Message-ID"] });
  assert.ok(withId > 0 && withId <= n);
  const [first] = await get([mid.ids[0]], ["subject"]);
  if (first.subject) {
    const word = first.subject.split(/\s+/).find((w) => w.length > 3) ?? first.subject;
    assert.ok((await total({ ...inBox, header: ["subject", word.toUpperCase()] })) >= 1);
  }
  assert.equal(await total({ inMailboxOtherThan: [box.id], inMailbox: box.id }), 0);
  assert.equal(await total({ inMailbox: "M999999999" }), 0);
  // Full-text conditions run over the index (a word no message has: nothing).
  assert.equal(await total({ ...inBox, subject: "qqzzxxnotaword" }), 0);
  await rejectsWith(query({ filter: { nope: 1 } }), "unsupportedFilter");
  await rejectsWith(query({ filter: { hasKeyword: "a b" } }), "invalidArguments");
  await rejectsWith(query({ filter: { before: "yesterday" } }), "invalidArguments");
  let deep = inBox;
  for (let i = 0; i < 15; i++) deep = { operator: "AND", conditions: [deep] };
  await rejectsWith(query({ filter: deep }), "unsupportedFilter");
});

test("Email/query windows: position, negative position, anchor, limit cap", async () => {
  const box = await inbox();
  const f = { inMailbox: box.id };
  const all = (await query({ filter: f })).ids;
  assert.ok(all.length >= 10);
  const tail = await query({ filter: f, position: -3, limit: 10 });
  assert.deepEqual(tail.ids, all.slice(-3));
  assert.equal(tail.position, all.length - 3);
  const around = await query({ filter: f, anchor: all[5], anchorOffset: -2, limit: 3 });
  assert.deepEqual(around.ids, all.slice(3, 6));
  assert.equal(around.position, 3);
  await rejectsWith(query({ filter: f, anchor: "E999999999" }), "anchorNotFound");
  const capped = await query({ filter: f, limit: 100000 });
  assert.equal(capped.limit, 1000);
});

test("collapseThreads and Thread/get", async () => {
  const box = await inbox();
  const f = { inMailbox: box.id };
  const flat = await query({ filter: f, calculateTotal: true });
  const collapsed = await query({ filter: f, collapseThreads: true, calculateTotal: true });
  assert.equal(collapsed.ids.length, collapsed.total);
  assert.ok(collapsed.total <= flat.total);
  const emails = await get(flat.ids, ["threadId", "receivedAt", "messageId"]);
  const threadIds = (await get(collapsed.ids, ["threadId"])).map((e) => e.threadId);
  assert.equal(new Set(threadIds).size, threadIds.length, "one email per thread");
  assert.equal(new Set(emails.map((e) => e.threadId)).size, collapsed.total);
  for (const e of emails) assert.match(e.threadId, /^T\d+$/);
  const some = [...new Set(emails.map((e) => e.threadId))].slice(0, 20);
  const [threads] = await alice.api.Thread.get({ ...A, ids: [...some, "T999999999", "nope"] });
  assert.deepEqual(threads.notFound, ["T999999999", "nope"]);
  for (const t of threads.list) {
    const members = await get(t.emailIds, ["threadId", "receivedAt"]);
    for (const m of members) assert.equal(m.threadId, t.id);
    const dates = members.map((m) => m.receivedAt);
    assert.deepEqual([...dates].sort(), dates, "emailIds oldest first");
  }
  const [tc] = await alice.api.Thread.changes({ ...A, sinceState: "0" });
  assert.ok(tc.created.includes(threads.list[0].id));
  await rejectsWith(alice.api.Thread.changes({ ...A, sinceState: "99999999999" }), "cannotCalculateChanges");
});

test("Email/queryChanges: nothing, everything, new mail, limits", async () => {
  const boxes = await mailboxes();
  const box = boxes.find((m) => m.role === "inbox");
  const args = { filter: { inMailbox: box.id }, sort: [{ property: "receivedAt", isAscending: false }] };
  const q = await query({ ...args, calculateTotal: true });
  const [none] = await alice.api.Email.queryChanges({ ...A, ...args, sinceQueryState: q.queryState });
  assert.deepEqual(none.removed, []);
  assert.deepEqual(none.added, []);
  assert.equal(none.newQueryState, q.queryState);
  const [from0] = await alice.api.Email.queryChanges({ ...A, ...args, sinceQueryState: "0", calculateTotal: true });
  assert.deepEqual(from0.added.map((a) => a.id), q.ids);
  assert.deepEqual(from0.added.map((a) => a.index), q.ids.map((_, i) => i));
  assert.equal(from0.total, q.total);
  await rejectsWith(alice.api.Email.queryChanges({ ...A, ...args, sinceQueryState: "0", maxChanges: 1 }), "tooManyChanges");
  await rejectsWith(alice.api.Email.queryChanges({ ...A, ...args, sinceQueryState: "99999999999" }), "cannotCalculateChanges");

  // New mail in another folder than the INBOX (other test files count the
  // INBOX): a reply to an INBOX message, so it joins that message's thread.
  const sent = boxes.find((m) => m.role === "sent");
  const candidates = await get(q.ids, ["subject", "messageId", "threadId"]);
  const orig = candidates.find((e) => e.messageId && /^[A-Za-z0-9 ,.]+$/.test(e.subject ?? "") &&
    /^[A-Za-z0-9.@_-]+$/.test(e.messageId[0]));
  assert.ok(orig, "no INBOX message to reply to");
  const cmd = env.MK_NEW_MAIL_CMD.replace("'INBOX'", `'${sent.name}'`).replace("Subject: pushed",
    `Subject: Re: ${orig.subject}\\\\r\\\\nIn-Reply-To: <${orig.messageId[0]}>`);
  assert.ok(cmd.includes(`'${sent.name}'`) && cmd.includes("In-Reply-To"), "the new-mail command changed shape");
  const sargs = { filter: { inMailbox: sent.id }, sort: [{ property: "receivedAt", isAscending: false }], collapseThreads: true };
  const before = await query(sargs);
  const [t0] = await alice.api.Thread.changes({ ...A, sinceState: before.queryState });
  assert.deepEqual(t0.updated, []);
  execFileSync("sh", ["-c", cmd], { stdio: "inherit" });
  const [qc] = await alice.api.Email.queryChanges({ ...A, ...sargs, sinceQueryState: before.queryState });
  assert.equal(qc.added.length, 1);
  assert.equal(qc.added[0].index, 0, "the newest mail comes first");
  // The INBOX message whose thread changed is not listed: its mailbox keeps
  // it out of these results.
  assert.deepEqual(qc.removed, []);
  const [e] = await get([qc.added[0].id], ["subject", "threadId"]);
  assert.equal(e.subject, `Re: ${orig.subject}`);
  assert.equal(e.threadId, orig.threadId, "the reply did not join its thread");
  const [tc] = await alice.api.Thread.changes({ ...A, sinceState: before.queryState });
  assert.deepEqual(tc.created, []);
  assert.deepEqual(tc.updated, [orig.threadId]);
  const [t] = await alice.api.Thread.get({ ...A, ids: [orig.threadId] });
  assert.deepEqual(t.list[0].emailIds.slice(-1), [e.id]);
  assert.ok(t.list[0].emailIds.includes(orig.id));
  const after = await query(sargs);
  const applied = before.ids.filter((id) => !qc.removed.includes(id));
  for (const a of qc.added) applied.splice(a.index, 0, a.id);
  assert.deepEqual(applied.slice(0, after.ids.length), after.ids);
  assert.equal(after.ids[0], e.id);
});

test("Mailbox/query and Mailbox/queryChanges", async () => {
  const boxes = await mailboxes();
  const [r] = await alice.api.Mailbox.query({ ...A, filter: { role: "inbox" } });
  assert.deepEqual(r.ids, [boxes.find((m) => m.role === "inbox").id]);
  const [noRole] = await alice.api.Mailbox.query({ ...A, filter: { hasAnyRole: false }, sort: [{ property: "name" }] });
  const expect = boxes.filter((m) => m.role === null).sort((a, b) =>
    a.name.toLowerCase() < b.name.toLowerCase() ? -1 : a.name.toLowerCase() > b.name.toLowerCase() ? 1 : 0);
  assert.deepEqual(noRole.ids, expect.map((m) => m.id));
  const [top] = await alice.api.Mailbox.query({ ...A, filter: { parentId: null }, calculateTotal: true });
  assert.equal(top.total, boxes.filter((m) => m.parentId === null).length);
  const [all] = await alice.api.Mailbox.query({ ...A, sort: [{ property: "sortOrder" }, { property: "name" }] });
  assert.equal(all.ids[0], boxes.find((m) => m.role === "inbox").id);
  const [byName] = await alice.api.Mailbox.query({ ...A, filter: { name: boxes[0].name.toUpperCase() } });
  assert.ok(byName.ids.includes(boxes[0].id));
  const [none] = await alice.api.Mailbox.queryChanges({ ...A, sinceQueryState: all.queryState,
    sort: [{ property: "sortOrder" }, { property: "name" }] });
  assert.deepEqual(none.added, []);
  const [from0] = await alice.api.Mailbox.queryChanges({ ...A, sinceQueryState: "0",
    sort: [{ property: "sortOrder" }, { property: "name" }] });
  assert.deepEqual(from0.added.map((a) => a.id), all.ids);
  const [tree] = await alice.api.Mailbox.query({ ...A, sortAsTree: true, sort: [{ property: "name", isAscending: false }] });
  assert.equal(tree.ids.length, boxes.length);
  for (const m of boxes)
    if (m.parentId) assert.ok(tree.ids.indexOf(m.parentId) < tree.ids.indexOf(m.id), "parent after child");
  const [ft] = await alice.api.Mailbox.query({ ...A, filterAsTree: true, filter: { hasAnyRole: false } });
  const [flat] = await alice.api.Mailbox.query({ ...A, filter: { hasAnyRole: false } });
  assert.ok(ft.ids.every((id) => flat.ids.includes(id)));
  await rejectsWith(alice.api.Mailbox.query({ ...A, sort: [{ property: "totalEmails" }] }), "unsupportedSort");
  await rejectsWith(alice.api.Mailbox.query({ ...A, filter: { nope: true } }), "unsupportedFilter");
});

test("another user's mailbox, email and thread ids reveal nothing", async () => {
  const box = await inbox();
  const mine = await query({ filter: { inMailbox: box.id }, limit: 5 });
  const [threads] = await get(mine.ids.slice(0, 1), ["threadId"]);
  const [q] = await bob.api.Email.query({ accountId: B, filter: { inMailbox: box.id }, calculateTotal: true });
  assert.deepEqual(q.ids, []);
  assert.equal(q.total, 0);
  await assert.rejects(bob.api.Email.query({ accountId: B, anchor: mine.ids[0] }),
    (e) => e.type === "anchorNotFound");
  const [t] = await bob.api.Thread.get({ accountId: B, ids: [threads.threadId] });
  assert.deepEqual(t.list, []);
  const [qc] = await bob.api.Email.queryChanges({ accountId: B, sinceQueryState: "0",
    filter: { inMailbox: box.id } });
  assert.deepEqual(qc.added, []);
  const [mq] = await bob.api.Mailbox.query({ accountId: B, filter: { parentId: box.id } });
  assert.deepEqual(mq.ids, []);
  await assert.rejects(bob.api.Email.query({ accountId: NOT_BOBS }), (e) => e.type === "accountNotFound");
  await assert.rejects(bob.api.Thread.get({ accountId: NOT_BOBS, ids: [threads.threadId] }),
    (e) => e.type === "accountNotFound");
});
