// Real JMAP clients (jmap-jam, eventsource) against a running `mailkeep serve`.
// Started by tests/jmap_test.py, which passes the session URL, tokens and
// helper commands in the environment.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import JamClient from "jmap-jam";
import { EventSource } from "eventsource";

const env = process.env;
const session = env.MK_SESSION_URL;
const alice = new JamClient({ sessionUrl: session, bearerToken: env.MK_TOKEN_ALICE });
const bob = new JamClient({ sessionUrl: session, bearerToken: env.MK_TOKEN_BOB });
// Account ids come from the sessions (one JMAP account per external account).
const A = await alice.getPrimaryAccount();
const B = await bob.getPrimaryAccount();
// Account ids are per user ("A<n>" of the user's own store): alice's id may
// also name one of bob's accounts, which then holds only bob's mail. An id
// that is none of bob's must be accountNotFound.
const NOT_BOBS = Object.keys((await bob.session).accounts).includes(A) ? "A999999" : A;

function api(token, body) {
  return fetch(new URL("/jmap/api/", session), {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body,
  });
}

test("session names the account and absolute URLs", async () => {
  const s = await alice.session;
  assert.equal(s.username, "alice");
  // One JMAP account per external account, "A<n>", and the hub's own
  // notices account "mailkeep"; the external one is primary.
  assert.match(A, /^A\d+$/);
  assert.equal(s.accounts[A].name, "alice@127.0.0.1");
  assert.equal(s.accounts[A].isPersonal, true);
  const names = Object.values(s.accounts).map((a) => a.name).sort();
  assert.deepEqual(names, ["alice@127.0.0.1", "mailkeep"]);
  assert.ok(s.accounts[A].accountCapabilities["urn:ietf:params:jmap:submission"]);
  assert.equal(s.accounts[A].accountCapabilities["urn:ietf:params:jmap:mail"].maxMailboxesPerEmail, null);
  const notices = Object.keys(s.accounts).find((id) => s.accounts[id].name === "mailkeep");
  assert.equal(s.accounts[notices].accountCapabilities["urn:ietf:params:jmap:submission"], undefined);
  assert.ok(s.capabilities["urn:ietf:params:jmap:core"].maxCallsInRequest > 0);
  assert.match(s.apiUrl, /^http:\/\/127\.0\.0\.1:\d+\/jmap\/api\/$/);
  assert.equal(s.accounts[A].isReadOnly, false);
  // Bob has no external account: his notices account is his primary one.
  const sb = await bob.session;
  assert.equal(sb.accounts[B].name, "mailkeep");
  assert.deepEqual(Object.keys(sb.accounts), [B]);
});

test("Mailbox/get lists the synced folders with counts", async () => {
  const [r] = await alice.api.Mailbox.get({ accountId: A, ids: null });
  const inbox = r.list.find((m) => m.role === "inbox");
  assert.ok(inbox, "no inbox");
  assert.equal(inbox.totalEmails, Number(env.MK_INBOX_COUNT));
  assert.ok(r.list.some((m) => m.role === "sent"));
  assert.equal(typeof r.state, "string");
});

test("Email/query with a result reference into Email/get", async () => {
  const [mb] = await alice.api.Mailbox.get({ accountId: A, ids: null });
  const inbox = mb.list.find((m) => m.role === "inbox");
  const [{ ids, emails }] = await alice.requestMany((t) => {
    const ids = t.Email.query({
      accountId: A,
      filter: { inMailbox: inbox.id },
      sort: [{ property: "receivedAt", isAscending: false }],
      limit: 10,
      calculateTotal: true,
    });
    const emails = t.Email.get({
      accountId: A,
      ids: ids.$ref("/ids"),
      properties: ["subject", "from", "receivedAt", "preview", "blobId", "size", "mailboxIds"],
    });
    return { ids, emails };
  });
  assert.equal(ids.total, inbox.totalEmails);
  assert.equal(ids.ids.length, Math.min(10, inbox.totalEmails));
  assert.equal(emails.list.length, ids.ids.length);
  const dates = emails.list.map((e) => e.receivedAt);
  assert.deepEqual([...dates].sort().reverse(), dates, "not newest first");
  for (const e of emails.list) {
    assert.ok(e.mailboxIds[inbox.id]);
    assert.equal(typeof e.preview, "string");
  }
  // Paging: position continues where the first page ended.
  const [page2] = await alice.api.Email.query({
    accountId: A, filter: { inMailbox: inbox.id },
    sort: [{ property: "receivedAt", isAscending: false }], position: 5, limit: 5,
  });
  assert.deepEqual(page2.ids, ids.ids.slice(5, 10));
  // The bytes download as stored.
  const first = emails.list[0];
  const resp = await alice.downloadBlob({
    accountId: A, blobId: first.blobId, mimeType: "message/rfc822", fileName: "m.eml",
  });
  const bytes = new Uint8Array(await resp.arrayBuffer());
  assert.equal(bytes.length, first.size);
});

test("errors are RFC 8620 errors", async () => {
  await assert.rejects(alice.request(["Nope/get", { accountId: A }]), (e) => e.type === "unknownMethod");
  await assert.rejects(alice.api.Email.get({ accountId: A }), (e) => e.type === "requestTooLarge");
  const r = await api(env.MK_TOKEN_ALICE, "{not json");
  assert.equal(r.status, 400);
  assert.match((await r.json()).type, /notJSON$/);
  const r2 = await fetch(session);
  assert.equal(r2.status, 401);
  assert.match(r2.headers.get("www-authenticate"), /Bearer/);
});

test("a device of one user never sees another user's objects", async () => {
  await assert.rejects(bob.api.Mailbox.get({ accountId: NOT_BOBS, ids: null }),
    (e) => e.type === "accountNotFound");
  const [mine] = await alice.api.Email.query({ accountId: A, limit: 3 });
  const [theirs] = await bob.api.Email.get({ accountId: B, ids: mine.ids });
  assert.deepEqual(theirs.list, []);
  assert.deepEqual(theirs.notFound, mine.ids);
  const [aliceMail] = await alice.api.Email.get({ accountId: A, ids: [mine.ids[0]], properties: ["blobId"] });
  const url = new URL(`/jmap/download/${B}/${aliceMail.list[0].blobId}/x`, session);
  const r = await fetch(url, { headers: { Authorization: `Bearer ${env.MK_TOKEN_BOB}` } });
  assert.equal(r.status, 404);
  const r2 = await fetch(new URL(`/jmap/download/${A}/${aliceMail.list[0].blobId}/x`, session),
    { headers: { Authorization: `Bearer ${env.MK_TOKEN_BOB}` } });
  assert.equal(r2.status, 404);
});

function stream(token, query = "types=*&closeafter=no&ping=5") {
  const url = new URL(`/jmap/eventsource/?${query}`, session);
  return new EventSource(url, {
    fetch: (input, init) =>
      fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` } }),
  });
}

function nextState(es, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no state event")), timeoutMs);
    es.addEventListener("state", (ev) => { clearTimeout(t); resolve(JSON.parse(ev.data)); }, { once: true });
  });
}

test("push: a StateChange on connect and after new mail arrives", async () => {
  const es = stream(env.MK_TOKEN_ALICE);
  const onlyMailbox = stream(env.MK_TOKEN_ALICE, "types=Mailbox%2CNoSuchType&closeafter=no&ping=0");
  // Long polling: no opening state; the first change ends the response.
  // Its headers come once serve has taken its baseline state: wait for them
  // before making new mail, or the change may land before the poll.
  const longPollHead = fetch(new URL("/jmap/eventsource/?types=Email&closeafter=state&ping=0", session),
    { headers: { Authorization: `Bearer ${env.MK_TOKEN_ALICE}` }, signal: AbortSignal.timeout(60000) });
  // Listen on both before waiting: an event with no listener yet is lost.
  const firstP = nextState(es, 5000);
  const firstMailboxP = nextState(onlyMailbox, 5000);
  try {
    const first = await firstP;
    assert.equal(first["@type"], "StateChange");
    const firstMailbox = await firstMailboxP;
    assert.deepEqual(Object.keys(firstMailbox.changed[A]), ["Mailbox"]);
    const before = first.changed[A].Email;
    const longPoll = (await longPollHead).text();
    const next = nextState(es, 15000);
    const nextMailbox = nextState(onlyMailbox, 15000);
    execFileSync("sh", ["-c", env.MK_NEW_MAIL_CMD], { stdio: "inherit" });
    const change = await next;
    assert.notEqual(change.changed[A].Email, before);
    assert.deepEqual(Object.keys((await nextMailbox).changed[A]), ["Mailbox"]);
    const polled = (await longPoll).split("\n").filter((l) => l.startsWith("data:"));
    assert.equal(polled.length, 1, "closeafter=state pushes one state and ends");
    const pushed = JSON.parse(polled[0].slice(5));
    assert.deepEqual(Object.keys(pushed.changed[A]), ["Email"]);
    assert.equal(pushed.changed[A].Email, change.changed[A].Email);
    // /changes from the state before tells exactly what is new.
    const [ec] = await alice.api.Email.changes({ accountId: A, sinceState: before });
    assert.equal(ec.created.length, 1);
    assert.deepEqual(ec.destroyed, []);
    assert.equal(ec.newState, change.changed[A].Email);
    const [got] = await alice.api.Email.get({ accountId: A, ids: ec.created, properties: ["subject"] });
    assert.equal(got.list[0].subject, "pushed");
    const [mc] = await alice.api.Mailbox.changes({ accountId: A, sinceState: before });
    const [mb] = await alice.api.Mailbox.get({ accountId: A, ids: null });
    assert.deepEqual(mc.updated, [mb.list.find((m) => m.role === "inbox").id]);
    await assert.rejects(alice.api.Email.changes({ accountId: A, sinceState: "999999999" }),
      (e) => e.type === "cannotCalculateChanges");
  } finally {
    es.close();
    onlyMailbox.close();
  }
});

test("revoking a device ends its open push stream at once", async () => {
  const es = stream(env.MK_TOKEN_REVOKE);
  await nextState(es, 5000);
  const closed = new Promise((resolve) => {
    es.addEventListener("error", () => resolve(Date.now()));
  });
  const t0 = Date.now();
  execFileSync("sh", ["-c", env.MK_REVOKE_CMD], { stdio: "inherit" });
  const t1 = await closed;
  es.close();
  assert.ok(t1 - t0 < 3000, `stream ended after ${t1 - t0} ms`);
  const r = await api(env.MK_TOKEN_REVOKE, JSON.stringify({ using: [], methodCalls: [] }));
  assert.equal(r.status, 401);
});
