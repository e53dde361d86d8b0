// Email/get (every RFC 8621 4.1 property), part downloads and Email/parse
// with jmap-jam against a real `mailkeep serve`. The messages come from
// tests/jmap/messages/*.eml, appended to the Dovecot INBOX by
// tests/jmap_test.py with a 2001 internal date (the oldest in the box).
import { test } from "node:test";
import assert from "node:assert/strict";
import JamClient from "jmap-jam";

const env = process.env;
const session = env.MK_SESSION_URL;
const alice = new JamClient({ sessionUrl: session, bearerToken: env.MK_TOKEN_ALICE });
const bob = new JamClient({ sessionUrl: session, bearerToken: env.MK_TOKEN_BOB });
// Account ids come from the sessions (one JMAP account per external account).
const A = await alice.getPrimaryAccount();
const B = await bob.getPrimaryAccount();

async function fixtureEmails() {
  const [mb] = await alice.api.Mailbox.get({ accountId: A, ids: null });
  const inbox = mb.list.find((m) => m.role === "inbox");
  const [q] = await alice.api.Email.query({
    accountId: A, filter: { inMailbox: inbox.id },
    sort: [{ property: "receivedAt", isAscending: true }], limit: 10,
  });
  const [got] = await alice.api.Email.get({ accountId: A, ids: q.ids, properties: ["subject"] });
  const bySubject = {};
  for (const e of got.list)
    if (e.subject && e.subject.startsWith("[email-get]")) bySubject[e.subject] = e.id;
  return bySubject;
}

async function download(client, blobId, type) {
  const url = new URL(`/jmap/download/${client === alice ? A : B}/${blobId}/x?type=${type ?? ""}`, session);
  const token = client === alice ? env.MK_TOKEN_ALICE : env.MK_TOKEN_BOB;
  return fetch(url, { headers: { Authorization: `Bearer ${token}` } });
}

test("Email/get: default properties of a nested message", async () => {
  const ids = await fixtureEmails();
  const id = ids["[email-get] Grüße"];
  assert.ok(id, `fixture message missing: ${JSON.stringify(ids)}`);
  const [r] = await alice.api.Email.get({ accountId: A, ids: [id] });
  const e = r.list[0];
  for (const p of ["id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt",
    "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo",
    "subject", "sentAt", "hasAttachment", "preview", "bodyValues", "textBody", "htmlBody",
    "attachments"])
    assert.ok(p in e, `default property ${p} missing`);
  assert.equal(e.receivedAt, "2001-01-01T00:00:00Z");
  assert.equal(e.sentAt, "2021-06-01T10:00:00+02:00");
  assert.deepEqual(e.messageId, ["m1@x"]);
  assert.equal(e.inReplyTo, null);
  assert.deepEqual(e.from.map((a) => a.email), ["a@x.org", "c@x.org", "d@x.org"]);
  assert.equal(e.from[2].name, "Dü");
  assert.equal(e.preview, "Hallö world");
  assert.equal(e.hasAttachment, true);
  assert.deepEqual(e.textBody.map((p) => p.partId), ["1.1"]);
  assert.deepEqual(e.htmlBody.map((p) => p.partId), ["1.2"]);
  assert.deepEqual(e.attachments.map((p) => p.type), ["application/pdf", "message/rfc822"]);
  assert.equal(e.attachments[0].name, "ü.pdf");
  assert.equal(e.attachments[0].size, 4);
  assert.deepEqual(e.bodyValues, {});
  for (const p of [...e.textBody, ...e.attachments])
    assert.match(p.blobId, /^[A-Za-z0-9_-]+$/, "part blob ids are JMAP Ids");
});

test("Email/get: headers, header forms, bodyStructure and body values", async () => {
  const ids = await fixtureEmails();
  const id = ids["[email-get] Grüße"];
  const [r] = await alice.api.Email.get({
    accountId: A, ids: [id],
    properties: ["headers", "bodyStructure", "bodyValues", "header:From:asGroupedAddresses",
      "header:Subject:asRaw", "header:message-id:asMessageIds:all", "header:X-Missing"],
    bodyProperties: ["partId", "blobId", "type", "size", "header:Content-Type:asRaw"],
    fetchAllBodyValues: true, maxBodyValueBytes: 5,
  });
  const e = r.list[0];
  assert.ok(e.id, "id is always returned");
  assert.equal(e.subject, undefined);
  assert.equal(e.headers[1].name, "Subject");
  assert.equal(e["header:Subject:asRaw"], " [email-get] =?utf-8?b?R3LDvMOfZQ==?=");
  assert.deepEqual(e["header:message-id:asMessageIds:all"], [["m1@x"]]);
  assert.equal(e["header:X-Missing"], null);
  const groups = e["header:From:asGroupedAddresses"];
  assert.equal(groups[0].name, null);
  assert.equal(groups[1].name, "Friends");
  assert.equal(groups[1].addresses.length, 2);
  assert.equal(e.bodyStructure.type, "multipart/mixed");
  assert.equal(e.bodyStructure.subParts[0].subParts[0]["header:Content-Type:asRaw"],
    " text/plain; charset=iso-8859-1");
  // Truncated at 5 bytes without splitting "ö" (2 bytes at offsets 4-5).
  assert.deepEqual(e.bodyValues["1.1"], { value: "Hall", isEncodingProblem: false, isTruncated: true });
  assert.equal(e.bodyValues["1.2"].value, "<p>Ha");
  await assert.rejects(alice.api.Email.get({ accountId: A, ids: [id], properties: ["header:Subject:asAddresses"] }),
    (err) => err.type === "invalidArguments");
  await assert.rejects(alice.api.Email.get({ accountId: A, ids: [id], bodyProperties: ["bogus"] }),
    (err) => err.type === "invalidArguments");
});

test("part download serves decoded bytes to the owner only", async () => {
  const ids = await fixtureEmails();
  const [r] = await alice.api.Email.get({
    accountId: A, ids: [ids["[email-get] inline"]],
    properties: ["htmlBody", "textBody", "attachments", "hasAttachment", "preview", "to"],
  });
  const e = r.list[0];
  assert.equal(e.hasAttachment, false, "an inline image is not an attachment to offer");
  assert.equal(e.preview, "Café");
  assert.deepEqual(e.to, []);
  const img = e.attachments[0];
  assert.equal(img.cid, "i1@x");
  assert.equal(img.name, "dot.png");
  const resp = await alice.downloadBlob({ accountId: A, blobId: img.blobId, mimeType: "image/png", fileName: "dot.png" });
  const bytes = new Uint8Array(await resp.arrayBuffer());
  assert.deepEqual([...bytes], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(bytes.length, img.size);
  assert.equal(resp.headers.get("content-type"), "image/png");
  const html = await download(alice, e.htmlBody[0].blobId);
  assert.equal(html.status, 200);
  assert.equal(html.headers.get("content-type"), "text/html");
  assert.equal(await html.text(), '<p>Café <img src="cid:i1@x"></p>');
  // Bob cannot, neither under his account nor under alice's.
  assert.equal((await download(bob, img.blobId)).status, 404);
  const asBob = await fetch(new URL(`/jmap/download/${A}/${img.blobId}/x`, session),
    { headers: { Authorization: `Bearer ${env.MK_TOKEN_BOB}` } });
  assert.equal(asBob.status, 404);
  assert.equal((await download(alice, img.blobId.replace(/_\d+$/, "_9"))).status, 404);
  assert.equal((await download(alice, "B1_1..2")).status, 404);
});

test("Email/parse: an attached message, notParsable and notFound", async () => {
  const ids = await fixtureEmails();
  const [g] = await alice.api.Email.get({ accountId: A, ids: [ids["[email-get] Grüße"]], properties: ["attachments", "blobId"] });
  const rfc822 = g.list[0].attachments.find((p) => p.type === "message/rfc822");
  const pdf = g.list[0].attachments.find((p) => p.type === "application/pdf");
  const [p] = await alice.api.Email.parse({
    accountId: A, blobIds: [rfc822.blobId, g.list[0].blobId, pdf.blobId, "B999999999"],
    properties: ["subject", "from", "textBody", "bodyValues", "id", "keywords"],
    fetchTextBodyValues: true,
  });
  const inner = p.parsed[rfc822.blobId];
  assert.equal(inner.subject, "[email-get] inner");
  assert.deepEqual(inner.from, [{ name: null, email: "inner@x.org" }]);
  assert.equal(inner.id, null);
  assert.equal(inner.keywords, null);
  assert.equal(inner.bodyValues[inner.textBody[0].partId].value, "inner body");
  // The embedded message's part downloads too.
  const body = await download(alice, inner.textBody[0].blobId);
  assert.equal(await body.text(), "inner body");
  assert.equal(p.parsed[g.list[0].blobId].subject, "[email-get] Grüße");
  assert.deepEqual(p.notParsable, [pdf.blobId]);
  assert.deepEqual(p.notFound, ["B999999999"]);
  // Another user cannot parse alice's blobs.
  const [pb] = await bob.api.Email.parse({ accountId: B, blobIds: [rfc822.blobId] });
  assert.deepEqual(pb.notFound, [rfc822.blobId]);
});

test("repeated Email/get is answered from the parse cache with the same result", async () => {
  const ids = Object.values(await fixtureEmails());
  const args = { accountId: A, ids, properties: ["preview", "bodyStructure", "textBody"] };
  const [a] = await alice.api.Email.get(args);
  const [b] = await alice.api.Email.get(args);
  assert.deepEqual(a, b);
});
