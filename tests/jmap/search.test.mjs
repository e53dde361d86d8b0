// SearchSnippet/get (RFC 8621 section 5) with jmap-jam against a running
// `mailkeep serve` (started by tests/jmap_test.py). The serve's background
// indexer indexes the synced mailbox after start-up; the tests wait for it.
import { test } from "node:test";
import assert from "node:assert/strict";
import JamClient from "jmap-jam";

const env = process.env;
const session = env.MK_SESSION_URL;
// jmap.test.mjs ends with sign-in failures from this address, which the
// serve answers with 429 for a minute: wait for that to pass first.
for (let i = 0; ; i++) {
  const r = await fetch(session, { headers: { Authorization: `Bearer ${env.MK_TOKEN_ALICE}` } });
  if (r.status !== 429) break;
  assert.ok(i < 90, "still rate-limited after 90 s");
  await new Promise((res) => setTimeout(res, 1000));
}
const alice = new JamClient({ sessionUrl: session, bearerToken: env.MK_TOKEN_ALICE });
const bob = new JamClient({ sessionUrl: session, bearerToken: env.MK_TOKEN_BOB });
// Account ids come from the sessions (one JMAP account per external account).
const A = await alice.getPrimaryAccount();
const B = await bob.getPrimaryAccount();
await alice.session; // the clients read the API URL from it
await bob.session;

async function newest(n) {
  const [mb] = await alice.api.Mailbox.get({ accountId: A, ids: null });
  const inbox = mb.list.find((m) => m.role === "inbox");
  const [{ emails }] = await alice.requestMany((t) => {
    const ids = t.Email.query({
      accountId: A, filter: { inMailbox: inbox.id },
      sort: [{ property: "receivedAt", isAscending: false }], limit: n,
    });
    const emails = t.Email.get({
      accountId: A, ids: ids.$ref("/ids"), properties: ["subject", "preview"],
    });
    return { ids, emails };
  });
  return emails.list;
}

// A word of at least 4 letters from s (lower case), or undefined.
function word(s) {
  return (s ?? "").toLowerCase().split(/[^\p{L}\p{N}]+/u).find((w) => w.length >= 4 && /^[a-z]+$/.test(w));
}

async function snippets(filter, emailIds, client = alice, accountId = A) {
  const [r] = await client.api.SearchSnippet.get({ accountId, filter, emailIds });
  return r;
}

async function rejectsWith(promise, type) {
  await assert.rejects(promise, (e) => JSON.stringify(e).includes(`"${type}"`));
}

// Poll until the indexer has reached the email (its subject gets marked).
async function waitIndexed(email, w) {
  for (let i = 0; i < 100; i++) {
    const r = await snippets({ subject: w }, [email.id]);
    if (r.list[0].subject !== null) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.fail("the indexer did not index " + email.id + " within 10 s");
}

test("SearchSnippet/get marks subject matches, escapes the rest", async () => {
  const list = await newest(20);
  const e = list.find((m) => word(m.subject));
  assert.ok(e, "no email with a subject word");
  const w = word(e.subject);
  await waitIndexed(e, w);
  const r = await snippets({ text: w }, [e.id]);
  assert.equal(r.accountId, A);
  assert.equal(r.notFound, null);
  assert.equal(r.list.length, 1);
  assert.equal(r.list[0].emailId, e.id);
  assert.match(r.list[0].subject, new RegExp(`<mark>${w}</mark>`, "i"));
  // Without the marks it is the subject, HTML-escaped.
  const esc = e.subject.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  assert.equal(r.list[0].subject.replace(/<\/?mark>/g, ""), esc);
});

test("body matches give a preview of at most 255 octets; other fields stay null", async () => {
  const list = await newest(30);
  const e = list.find((m) => word(m.preview));
  assert.ok(e, "no email with a preview word");
  await waitIndexed(list.find((m) => word(m.subject)), word(list.find((m) => word(m.subject)).subject));
  const w = word(e.preview);
  const r = await snippets({ body: w }, [e.id]);
  const s = r.list[0];
  assert.equal(s.subject, null, "a body condition marks no subject");
  assert.ok(s.preview, "no preview for a body match");
  assert.match(s.preview, new RegExp(`<mark>${w}`, "i"));
  assert.ok(Buffer.byteLength(s.preview) <= 255, "preview too long: " + Buffer.byteLength(s.preview));
  assert.ok(!/<(?!\/?mark>)/.test(s.preview), "unescaped markup in " + s.preview);
  // Conditions under NOT are not marked; nested AND/OR are.
  const neg = await snippets({ operator: "NOT", conditions: [{ body: w }] }, [e.id]);
  assert.equal(neg.list[0].preview, null);
  const nested = await snippets({ operator: "AND", conditions: [
    { operator: "OR", conditions: [{ body: w }, { from: "nobody-such" }] }, { hasKeyword: "$seen" }] }, [e.id]);
  assert.match(nested.list[0].preview, /<mark>/);
  // No text condition at all: nothing to mark.
  const none = await snippets(null, [e.id]);
  assert.deepEqual(none.list[0], { emailId: e.id, subject: null, preview: null });
  // A word the email lacks.
  const miss = await snippets({ text: "zzqqxxnotthere" }, [e.id]);
  assert.deepEqual(miss.list[0], { emailId: e.id, subject: null, preview: null });
});

test("query syntax in the text is only words", async () => {
  const [e] = await newest(1);
  for (const text of ['"', "NEAR(", "subject:x", "{body}:", "*", "a OR b", "'", "", "   ", "-x ^y"]) {
    const r = await snippets({ text }, [e.id]);
    assert.equal(r.list.length, 1, text);
  }
});

test("unknown ids and another user's ids are notFound; limits hold", async () => {
  const list = await newest(3);
  const ids = list.map((m) => m.id);
  const r = await snippets({ text: "x" }, [...ids, "E999999999", "Mnope", "#nosuch"]);
  assert.deepEqual(r.list.map((s) => s.emailId), ids);
  assert.deepEqual(r.notFound, ["E999999999", "Mnope", "#nosuch"]);
  // bob's store has none of alice's emails, and bob cannot name alice's account.
  const theirs = await snippets({ text: "x" }, ids, bob, B);
  assert.deepEqual(theirs.list, []);
  assert.deepEqual(theirs.notFound, ids);
  await rejectsWith(snippets({ text: "x" }, ids, bob, "A999999"), "accountNotFound");
  await rejectsWith(snippets({ text: "x" }, null), "invalidArguments");
  await rejectsWith(snippets({ text: 5 }, ids), "invalidArguments");
  await rejectsWith(snippets({ text: "x".repeat(2000) }, ids), "invalidArguments");
  const many = Array.from({ length: 501 }, (_, i) => "E" + (i + 1));
  await rejectsWith(snippets({ text: "x" }, many), "requestTooLarge");
});

test("Email/query full-text conditions find the indexed email, newest first", async () => {
  const list = await newest(20);
  const e = list.find((m) => word(m.subject));
  const w = word(e.subject);
  await waitIndexed(e, w);
  const [mb] = await alice.api.Mailbox.get({ accountId: A, ids: null });
  const inbox = mb.list.find((m) => m.role === "inbox");
  const q = async (filter) => (await alice.api.Email.query({
    accountId: A, filter, sort: [{ property: "receivedAt", isAscending: false }],
    calculateTotal: true,
  }))[0];
  for (const filter of [{ text: w }, { subject: w.toUpperCase() }, { inMailbox: inbox.id, text: w }]) {
    const r = await q(filter);
    assert.ok(r.ids.includes(e.id), `${JSON.stringify(filter)} finds ${e.id}`);
  }
  const none = await q({ operator: "AND", conditions: [{ text: w }, { operator: "NOT", conditions: [{ text: w }] }] });
  assert.equal(none.total, 0);
  assert.equal((await q({ subject: "qqzzxxnotaword" })).total, 0);
  // Bob's search never finds Alice's mail.
  const [b] = await bob.api.Email.query({ accountId: B, filter: { text: w } });
  assert.deepEqual(b.ids, []);
});
