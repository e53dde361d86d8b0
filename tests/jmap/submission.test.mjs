// JMAP EmailSubmission against a running `mailkeep serve` with a real SMTP
// server. Started by tests/smtp_test.py (scenario jmap_submission), which
// passes MK_SUBMISSION_* in the environment; skipped when run by
// tests/jmap_test.py, whose account has no SMTP server.
import { test } from "node:test";
import assert from "node:assert/strict";

const env = process.env;
const skip = env.MK_SUBMISSION_SESSION_URL ? false : "run by tests/smtp_test.py only";
const using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
  "urn:ietf:params:jmap:submission"];

async function call(methodCalls) {
  const r = await fetch(new URL("/jmap/api/", env.MK_SUBMISSION_SESSION_URL), {
    method: "POST",
    headers: { Authorization: `Bearer ${env.MK_SUBMISSION_TOKEN}`,
      "Content-Type": "application/json" },
    body: JSON.stringify({ using, methodCalls }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).methodResponses;
}

test("EmailSubmission: create, sent by serve, get/changes/query, destroy", { skip }, async () => {
  const s = await (await fetch(env.MK_SUBMISSION_SESSION_URL, {
    headers: { Authorization: `Bearer ${env.MK_SUBMISSION_TOKEN}` } })).json();
  assert.ok(s.capabilities["urn:ietf:params:jmap:submission"]);
  // The account id comes from the session (one JMAP account per external account).
  const A = s.primaryAccounts["urn:ietf:params:jmap:mail"];
  assert.equal(s.primaryAccounts["urn:ietf:params:jmap:submission"], A);

  const [[, q]] = await call([["Email/query", { accountId: A, filter: null }, "q"]]);
  const [[, g]] = await call([["Email/get",
    { accountId: A, ids: q.ids, properties: ["subject"] }, "g"]]);
  const email = g.list.find((e) => e.subject === env.MK_SUBMISSION_SUBJECT);
  assert.ok(email, "the draft is not in the store");

  const [[, st0]] = await call([["EmailSubmission/get", { accountId: A, ids: [] }, "0"]]);
  const [[name, set]] = await call([["EmailSubmission/set", { accountId: A,
    create: { c1: { identityId: "I1", emailId: email.id } } }, "1"]]);
  assert.equal(name, "EmailSubmission/set");
  const created = set.created.c1;
  assert.match(created.id, /^S\d+$/);
  assert.equal(created.undoStatus, "pending");
  assert.deepEqual(created.envelope.rcptTo.map((r) => r.email).sort(),
    ["bob@example.net", "hidden@example.net"]);

  // serve's outbox thread sends it within a few seconds.
  let sub;
  for (let i = 0; i < 100; i++) {
    const [[, got]] = await call([["EmailSubmission/get",
      { accountId: A, ids: [created.id] }, "g"]]);
    sub = got.list[0];
    if (sub.undoStatus === "final") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(sub.undoStatus, "final");
  assert.equal(sub.identityId, "I1");
  assert.equal(sub.emailId, email.id);
  assert.match(sub.deliveryStatus["bob@example.net"].smtpReply, /^250 /);
  assert.equal(sub.deliveryStatus["bob@example.net"].delivered, "queued");

  const [[, ch]] = await call([["EmailSubmission/changes",
    { accountId: A, sinceState: st0.state }, "c"]]);
  assert.deepEqual(ch.created, [created.id]);
  const [[, qq]] = await call([["EmailSubmission/query",
    { accountId: A, filter: { undoStatus: "final", emailIds: [email.id] } }, "q"]]);
  assert.deepEqual(qq.ids, [created.id]);

  // Refusals: a foreign envelope sender, an unknown identity.
  const [[, bad]] = await call([["EmailSubmission/set", { accountId: A, create: {
    a: { identityId: "I99", emailId: email.id },
    b: { identityId: "I1", emailId: "E999999" },
    c: { identityId: "I1", emailId: email.id,
      envelope: { mailFrom: { email: "x@example.org" }, rcptTo: [] } },
  } }, "b"]]);
  assert.equal(bad.notCreated.a.type, "invalidProperties");
  assert.equal(bad.notCreated.b.type, "invalidProperties");
  assert.equal(bad.notCreated.c.type, "noRecipients");
  // A draft made through the API, submitted with onSuccessUpdateEmail: the
  // implicit Email/set follows the EmailSubmission/set response.
  const [[, full]] = await call([["Email/get",
    { accountId: A, ids: [email.id], properties: ["mailboxIds"] }, "m"]]);
  const [[, draft]] = await call([["Email/set", { accountId: A, create: { d: {
    mailboxIds: full.list[0].mailboxIds, keywords: { $draft: true },
    from: [{ email: "alice@example.net" }], to: [{ email: "bob@example.net" }],
    subject: "draft through JMAP", bodyValues: { b: { value: "hello from a draft" } },
    textBody: [{ partId: "b", type: "text/plain" }] } } }, "d"]]);
  const draftId = draft.created.d.id;
  const responses = await call([["EmailSubmission/set", { accountId: A,
    create: { x: { identityId: "I1", emailId: draftId } },
    onSuccessUpdateEmail: { "#x": { "keywords/$draft": null, "keywords/$seen": true } },
    onSuccessDestroyEmail: ["#nosuch"] }, "e"]]);
  assert.deepEqual(responses.map((r) => [r[0], r[2]]), [["EmailSubmission/set", "e"], ["Email/set", "e"]]);
  assert.ok(responses[0][1].created.x.id);
  assert.ok(draftId in responses[1][1].updated);
  const [[, kw]] = await call([["Email/get",
    { accountId: A, ids: [draftId], properties: ["keywords"] }, "k"]]);
  assert.deepEqual(kw.list[0].keywords, { $seen: true });
  const [[, cancel]] = await call([["EmailSubmission/set", { accountId: A,
    update: { [created.id]: { undoStatus: "canceled" } } }, "u"]]);
  assert.equal(cancel.notUpdated[created.id].type, "cannotUnsend");

  const [[, d]] = await call([["EmailSubmission/set",
    { accountId: A, destroy: [created.id] }, "d"]]);
  assert.deepEqual(d.destroyed, [created.id]);
  const [[, after]] = await call([["EmailSubmission/get",
    { accountId: A, ids: [created.id] }, "a"]]);
  assert.deepEqual(after.notFound, [created.id]);
  const [[, ch2]] = await call([["EmailSubmission/changes",
    { accountId: A, sinceState: set.newState }, "c"]]);
  assert.ok(ch2.destroyed.includes(created.id));
});
