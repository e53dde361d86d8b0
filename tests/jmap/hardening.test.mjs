// Issue #9 items 1 and 13 against a running `mailkeep serve` (started by
// tests/jmap_test.py): typed-argument requests that used to kill the server,
// and the HTTP/JMAP details RFC 8620 and RFC 8621 ask for.
import { test } from "node:test";
import assert from "node:assert/strict";

const env = process.env;
const session = env.MK_SESSION_URL;
async function primaryOf(token, url = env.MK_SESSION_URL) {
  const s = await (await fetch(url, { headers: { Authorization: `Bearer ${token}` } })).json();
  return s.primaryAccounts["urn:ietf:params:jmap:mail"];
}
// The account id comes from the session (one JMAP account per external account).
const A = await primaryOf(env.MK_TOKEN_ALICE);
const using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
  "urn:ietf:params:jmap:submission"];

function post(body, headers = {}) {
  return fetch(new URL("/jmap/api/", session), {
    method: "POST",
    headers: { Authorization: `Bearer ${env.MK_TOKEN_ALICE}`,
      "Content-Type": "application/json", ...headers },
    body,
  });
}

async function call(methodCalls) {
  const r = await post(JSON.stringify({ using, methodCalls }));
  assert.equal(r.status, 200);
  return (await r.json()).methodResponses;
}

async function alive() {
  const r = await fetch(session, { headers: { Authorization: `Bearer ${env.MK_TOKEN_ALICE}` } });
  assert.equal(r.status, 200, "serve no longer answers");
  await r.json();
}

test("non-string ids are invalidArguments and serve stays up", async () => {
  const bad = [
    ["Email/get", { accountId: A, ids: [null] }],
    ["Email/get", { accountId: A, ids: [{ x: 1 }] }],
    ["Email/get", { accountId: A, ids: [5] }],
    ["Email/get", { accountId: A, ids: ["E1"], properties: [null] }],
    ["Email/get", { accountId: A, ids: ["E1"], bodyProperties: [7] }],
    ["Mailbox/get", { accountId: A, ids: [5] }],
    ["Mailbox/get", { accountId: A, ids: [[]] }],
    ["SearchSnippet/get", { accountId: A, emailIds: [null] }],
    ["SearchSnippet/get", { accountId: A, emailIds: [true] }],
    ["Thread/get", { accountId: A, ids: [1.5] }],
    ["Identity/get", { accountId: A, ids: [1] }],
    ["Identity/get", { accountId: A, properties: [null] }],
    ["EmailSubmission/get", { accountId: A, ids: [null] }],
    ["EmailSubmission/query", { accountId: A, filter: { emailIds: [null] } }],
    ["Email/parse", { accountId: A, blobIds: [false] }],
  ];
  for (const [name, args] of bad) {
    const [[resp, body]] = await call([[name, args, "0"]]);
    assert.equal(resp, "error", `${name} ${JSON.stringify(args)}`);
    assert.equal(body.type, "invalidArguments", `${name} ${JSON.stringify(args)}`);
    await alive();
  }
});

test("a /set destroy entry that is not an id is answered in notDestroyed", async () => {
  const [[n1, e], [n2, m]] = await call([
    ["Email/set", { accountId: A, destroy: [null, { x: 1 }, "E999999999"] }, "0"],
    ["Mailbox/set", { accountId: A, destroy: [5, "M999999999"] }, "1"],
  ]);
  assert.equal(n1, "Email/set");
  assert.deepEqual(e.destroyed, []);
  assert.deepEqual(Object.keys(e.notDestroyed).sort(), ["E999999999", "null", '{"x":1}']);
  assert.equal(e.notDestroyed.null.type, "invalidArguments");
  assert.equal(e.notDestroyed.E999999999.type, "notFound");
  assert.equal(n2, "Mailbox/set");
  assert.equal(m.notDestroyed["5"].type, "invalidArguments");
  assert.equal(m.notDestroyed.M999999999.type, "notFound");
  await alive();
});

test("Mailbox/get returns only the asked properties (and id)", async () => {
  const [[, r]] = await call([["Mailbox/get", { accountId: A, properties: ["name", "role"] }, "0"]]);
  assert.ok(r.list.length > 0);
  for (const m of r.list)
    assert.deepEqual(Object.keys(m).sort(), ["id", "name", "role"]);
  const [[name, e]] = await call([["Mailbox/get", { accountId: A, properties: ["nope"] }, "0"]]);
  assert.equal(name, "error");
  assert.equal(e.type, "invalidArguments");
});

test("a download answers with the media type given in ?type=", async () => {
  const [[, q], [, g]] = await call([
    ["Email/query", { accountId: A, limit: 1 }, "q"],
    ["Email/get", { accountId: A, "#ids": { resultOf: "q", name: "Email/query", path: "/ids" },
      properties: ["blobId"] }, "g"],
  ]);
  assert.equal(q.ids.length, 1);
  const blob = g.list[0].blobId;
  const url = (type) => new URL(`/jmap/download/${A}/${blob}/m.eml?type=${type}`, session);
  const auth = { headers: { Authorization: `Bearer ${env.MK_TOKEN_ALICE}` } };
  let r = await fetch(url(encodeURIComponent("text/plain")), auth);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/plain");
  await r.arrayBuffer();
  r = await fetch(url(encodeURIComponent("text/plain; charset=utf-8")), auth);
  assert.equal(r.headers.get("content-type"), "text/plain; charset=utf-8");
  await r.arrayBuffer();
  r = await fetch(url("message/rfc822"), auth);
  assert.equal(r.headers.get("content-type"), "message/rfc822");
  await r.arrayBuffer();
  // Mail never runs in the hub's origin: sandboxed, not sniffed, saved
  // rather than shown unless it is a raster image.
  r = await fetch(url(encodeURIComponent("text/html")), auth);
  assert.equal(r.headers.get("content-security-policy"), "sandbox; default-src 'none'");
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
  assert.equal(r.headers.get("content-disposition"), "attachment");
  await r.arrayBuffer();
  r = await fetch(url(encodeURIComponent("image/svg+xml")), auth);
  assert.equal(r.headers.get("content-disposition"), "attachment");
  await r.arrayBuffer();
  r = await fetch(url(encodeURIComponent("image/png")), auth);
  assert.equal(r.headers.get("content-disposition"), "inline");
  assert.equal(r.headers.get("content-security-policy"), "sandbox; default-src 'none'");
  await r.arrayBuffer();
});

test("a POST that is not declared JSON is a 400 notJSON problem", async () => {
  const body = JSON.stringify({ using, methodCalls: [["Core/echo", {}, "0"]] });
  for (const ct of ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"]) {
    const r = await post(body, { "Content-Type": ct });
    assert.equal(r.status, 400, ct);
    assert.equal(r.headers.get("content-type"), "application/problem+json");
    const p = await r.json();
    assert.equal(p.type, "urn:ietf:params:jmap:error:notJSON");
    assert.equal(p.status, 400);
  }
  const ok = await post(body, { "Content-Type": "application/json; charset=utf-8" });
  assert.equal(ok.status, 200);
  await ok.json();
});

test("the 401 answer is an RFC 7807 problem", async () => {
  // No credentials at all (a wrong one would count towards the sign-in limit).
  const r = await fetch(session);
  assert.equal(r.status, 401);
  assert.equal(r.headers.get("content-type"), "application/problem+json");
  const p = await r.json();
  assert.equal(p.status, 401);
  assert.equal(typeof p.type, "string");
  assert.ok(r.headers.get("www-authenticate"));
});

test("Email/import of a missing blob is invalidProperties on blobId", async () => {
  const [[, mb]] = await call([["Mailbox/get", { accountId: A, properties: ["role"] }, "0"]]);
  const inbox = mb.list.find((m) => m.role === "inbox");
  const [[, r]] = await call([["Email/import", { accountId: A, emails: {
    x: { blobId: "B999999999", mailboxIds: { [inbox.id]: true } } } }, "0"]]);
  assert.equal(r.notCreated.x.type, "invalidProperties");
  assert.deepEqual(r.notCreated.x.properties, ["blobId"]);
});

test("Identity/set: the display name is kept, listed by /changes and used for drafts", async () => {
  const [[, g0]] = await call([["Identity/get", { accountId: A }, "0"]]);
  const ident = g0.list[0];
  assert.match(ident.id, /^I\d+$/);
  const [[, set], [, g1], [, ch]] = await call([
    ["Identity/set", { accountId: A, ifInState: g0.state,
      update: { [ident.id]: { name: "Alice Hub", htmlSignature: "<b>A</b>" } },
      create: { c: { email: "x@example.org" } } }, "0"],
    ["Identity/get", { accountId: A, ids: [ident.id] }, "1"],
    ["Identity/changes", { accountId: A, sinceState: g0.state }, "2"],
  ]);
  assert.deepEqual(set.updated, { [ident.id]: null });
  assert.equal(set.notCreated.c.type, "forbidden");
  assert.equal(g1.list[0].name, "Alice Hub");
  assert.equal(g1.list[0].htmlSignature, "<b>A</b>");
  assert.deepEqual(ch.updated, [ident.id]);
  assert.equal(ch.newState, g1.state);
  const [[, bad]] = await call([["Identity/set", { accountId: A,
    update: { [ident.id]: { name: "x\r\nBcc: evil@example.org" } } }, "0"]]);
  assert.equal(bad.notUpdated[ident.id].type, "invalidProperties");
  // A draft without "from" is written with the identity's From, name included,
  // when the identity's address can be one: here the account's login has no
  // domain and its server is 127.0.0.1, so the address is alice@[127.0.0.1]
  // and the draft keeps no From (tests/test-jmap-identity.c covers a domain).
  const [[, mb]] = await call([["Mailbox/get", { accountId: A, properties: ["role"] }, "0"]]);
  const drafts = mb.list.find((m) => m.role === "drafts") ?? mb.list.find((m) => m.role === "inbox");
  const [[, c], [, e]] = await call([
    ["Email/set", { accountId: A, create: { d: { mailboxIds: { [drafts.id]: true },
      subject: "identity draft", to: [{ email: "bob@example.net" }] } } }, "0"],
    ["Email/get", { accountId: A, ids: ["#d"], properties: ["from"] }, "1"],
  ]);
  assert.ok(c.created.d, JSON.stringify(c));
  assert.deepEqual(e.list[0].from,
    ident.email.includes("@[") ? null : [{ name: "Alice Hub", email: ident.email }]);
  await call([["Email/set", { accountId: A, destroy: [c.created.d.id] }, "0"]]);
  // Leave the identity as the other test files expect it.
  const [[, back]] = await call([["Identity/set", { accountId: A,
    update: { [ident.id]: { name: "", htmlSignature: "" } } }, "0"]]);
  assert.deepEqual(back.updated, { [ident.id]: null });
});
