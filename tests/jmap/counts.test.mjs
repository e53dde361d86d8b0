// Mailbox counts (RFC 8621 section 2) through a real `mailkeep serve`
// (started by tests/jmap_test.py): totalThreads counts threads, not emails;
// unreadEmails leaves out drafts; unreadThreads counts threads with an
// email in the mailbox that has neither $seen nor $draft (the Email's
// keywords: an Email in two mailboxes is read in both once it is seen in
// one). Changes made here
// (Email/set) and on the server (a synced Dovecot folder). Works in
// mailboxes of its own and removes them at the end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import JamClient from "jmap-jam";

const env = process.env;
const alice = new JamClient({ sessionUrl: env.MK_SESSION_URL, bearerToken: env.MK_TOKEN_ALICE });
const A = await alice.getPrimaryAccount();

async function mailbox(id) {
  const [r] = await alice.api.Mailbox.get({ accountId: A, ids: [id] });
  assert.equal(r.list.length, 1);
  const { totalEmails, unreadEmails, totalThreads, unreadThreads } = r.list[0];
  return { totalEmails, unreadEmails, totalThreads, unreadThreads };
}

const raw = (subject, id, replyTo) =>
  `From: Carol <carol@example.org>\r\nTo: alice@example.org\r\nSubject: ${subject}\r\n` +
  `Message-ID: <${id}@counts.example.org>\r\n` +
  (replyTo ? `In-Reply-To: <${replyTo}@counts.example.org>\r\n` +
    `References: <${replyTo}@counts.example.org>\r\n` : "") +
  `Date: Tue, 01 Oct 2024 10:00:00 +0000\r\n\r\nHello ${subject}\r\n`;

async function setKeyword(id, keyword, on) {
  const [r] = await alice.api.Email.set({ accountId: A, update: { [id]: { [`keywords/${keyword}`]: on ? true : null } } });
  assert.deepEqual(r.updated, { [id]: null }, JSON.stringify(r));
}

test("a thread of two in a mailbox: thread counts, unread on $seen, a draft is not unread", async () => {
  const [mb] = await alice.api.Mailbox.set({ accountId: A, create: { box: { name: "Counts" } } });
  const box = mb.created.box.id;
  assert.deepEqual(await mailbox(box), { totalEmails: 0, unreadEmails: 0, totalThreads: 0, unreadThreads: 0 });

  // A question, its reply, a draft of a second reply (all one thread), and
  // an unrelated read message.
  const messages = {
    q: [raw("Counts plan", "q"), {}],
    r: [raw("Re: Counts plan", "r", "q"), {}],
    d: [raw("Re: Counts plan", "d", "q"), { $draft: true }],
    o: [raw("Something else", "o"), { $seen: true }],
  };
  const emails = {};
  for (const [key, [text, keywords]] of Object.entries(messages)) {
    const up = await alice.uploadBlob(A, new Blob([text], { type: "message/rfc822" }));
    emails[key] = { blobId: up.blobId, mailboxIds: { [box]: true }, keywords };
  }
  const [imp] = await alice.api.Email.import({ accountId: A, emails });
  for (const key of Object.keys(messages)) assert.ok(imp.created[key], JSON.stringify(imp));
  const id = Object.fromEntries(Object.keys(messages).map((k) => [k, imp.created[k].id]));

  // A real thread: the store threaded the reply and the draft with the question.
  const [g] = await alice.api.Email.get({ accountId: A, ids: Object.values(id), properties: ["threadId"] });
  const thread = Object.fromEntries(g.list.map((e) => [e.id, e.threadId]));
  assert.equal(thread[id.r], thread[id.q]);
  assert.equal(thread[id.d], thread[id.q]);
  assert.notEqual(thread[id.o], thread[id.q]);

  // 4 emails in 2 threads; unread: q and r (d is a draft, o is read).
  let c = await mailbox(box);
  assert.deepEqual(c, { totalEmails: 4, unreadEmails: 2, totalThreads: 2, unreadThreads: 1 });
  assert.ok(c.totalThreads < c.totalEmails);

  // $seen on one of the two: the thread is still unread.
  await setKeyword(id.q, "$seen", true);
  assert.deepEqual(await mailbox(box), { totalEmails: 4, unreadEmails: 1, totalThreads: 2, unreadThreads: 1 });
  // On both: the thread is read, though its draft has no $seen.
  await setKeyword(id.r, "$seen", true);
  assert.deepEqual(await mailbox(box), { totalEmails: 4, unreadEmails: 0, totalThreads: 2, unreadThreads: 0 });
  // The draft loses $draft: now it is unread, and so is its thread.
  await setKeyword(id.d, "$draft", false);
  assert.deepEqual(await mailbox(box), { totalEmails: 4, unreadEmails: 1, totalThreads: 2, unreadThreads: 1 });
  // The other message unread again: a second unread thread.
  await setKeyword(id.o, "$seen", false);
  assert.deepEqual(await mailbox(box), { totalEmails: 4, unreadEmails: 2, totalThreads: 2, unreadThreads: 2 });

  // The unrelated message moves out: one thread left here, one there.
  const inbox = (await alice.api.Mailbox.get({ accountId: A, ids: null }))[0].list.find((m) => m.role === "inbox");
  const [mv] = await alice.api.Mailbox.set({ accountId: A, create: { other: { name: "Counts other" } } });
  const other = mv.created.other.id;
  const [s] = await alice.api.Email.set({ accountId: A, update: { [id.o]: { mailboxIds: { [other]: true } } } });
  assert.deepEqual(s.updated, { [id.o]: null }, JSON.stringify(s));
  assert.deepEqual(await mailbox(box), { totalEmails: 3, unreadEmails: 1, totalThreads: 1, unreadThreads: 1 });
  assert.deepEqual(await mailbox(other), { totalEmails: 1, unreadEmails: 1, totalThreads: 1, unreadThreads: 1 });
  assert.ok(inbox);

  // Destroyed: the counts go with the emails.
  const [x] = await alice.api.Email.set({ accountId: A, destroy: [id.r] });
  assert.deepEqual(x.destroyed, [id.r]);
  assert.deepEqual(await mailbox(box), { totalEmails: 2, unreadEmails: 1, totalThreads: 1, unreadThreads: 1 });

  const [d] = await alice.api.Mailbox.set({ accountId: A, destroy: [box, other], onDestroyRemoveEmails: true });
  assert.deepEqual([...d.destroyed].sort(), [box, other].sort(), JSON.stringify(d));
});

// Every mailbox's four counts, worked out from its emails.
async function countedFromEmails(m) {
  const [q] = await alice.api.Email.query({ accountId: A, filter: { inMailbox: m.id }, limit: 1000, calculateTotal: true });
  assert.equal(q.total, q.ids.length, "more than one page");
  const list = q.ids.length === 0 ? [] :
    (await alice.api.Email.get({ accountId: A, ids: q.ids, properties: ["threadId", "keywords"] }))[0].list;
  const unread = list.filter((e) => !e.keywords.$seen && !e.keywords.$draft);
  return {
    totalEmails: list.length,
    unreadEmails: unread.length,
    totalThreads: new Set(list.map((e) => e.threadId)).size,
    unreadThreads: new Set(unread.map((e) => e.threadId)).size,
  };
}

test("synced from Dovecot: a thread in a server folder, flags changed on the server", async () => {
  // A server folder of its own (removed at the end): a question and its
  // reply, a \Draft reply, and a read message of another thread.
  const dir = mkdtempSync(join(tmpdir(), "mk-counts-"));
  const files = [["q", raw("Synced plan", "sq"), ""], ["r", raw("Re: Synced plan", "sr", "sq"), ""],
    ["d", raw("Re: Synced plan", "sd", "sq"), "\\Draft"], ["o", raw("Synced other", "so"), "\\Seen"]];
  const imapctl = (args) => execFileSync("sh", ["-c", `${env.MK_IMAPCTL} ${args}`]).toString();
  imapctl("create CountsSynced");
  const uid = {};
  for (const [key, text, flags] of files) {
    writeFileSync(join(dir, key), text);
    uid[key] = imapctl(`append CountsSynced '${join(dir, key)}' ${flags ? `'${flags}'` : ""}`).trim();
  }
  rmSync(dir, { recursive: true });
  const sync = () => execFileSync("sh", ["-c", env.MK_SYNC_CMD], { stdio: "inherit" });
  sync();
  const find = async () => (await alice.api.Mailbox.get({ accountId: A, ids: null }))[0].list.find((m) => m.name === "CountsSynced");
  let m = await find();
  assert.ok(m, "the synced folder is not there");
  const counts = ({ totalEmails, unreadEmails, totalThreads, unreadThreads }) => ({ totalEmails, unreadEmails, totalThreads, unreadThreads });
  assert.deepEqual(counts(m), { totalEmails: 4, unreadEmails: 2, totalThreads: 2, unreadThreads: 1 });
  assert.deepEqual(counts(m), await countedFromEmails(m));

  // \Seen set on the server on both unread messages of the thread.
  imapctl(`flags CountsSynced ${uid.q} add '\\Seen'`);
  imapctl(`flags CountsSynced ${uid.r} add '\\Seen'`);
  sync();
  m = await find();
  assert.deepEqual(counts(m), { totalEmails: 4, unreadEmails: 0, totalThreads: 2, unreadThreads: 0 });
  // And the other message unread again.
  imapctl(`flags CountsSynced ${uid.o} remove '\\Seen'`);
  sync();
  m = await find();
  assert.deepEqual(counts(m), { totalEmails: 4, unreadEmails: 1, totalThreads: 2, unreadThreads: 1 });

  // The same message (same bytes: one Email) also in a second folder,
  // \Seen there only: the Email shows $seen, so it is read in both.
  const copyDir = mkdtempSync(join(tmpdir(), "mk-counts-"));
  writeFileSync(join(copyDir, "o"), files[3][1]);
  imapctl("create CountsSynced2");
  imapctl(`append CountsSynced2 '${join(copyDir, "o")}' '\\Seen'`);
  rmSync(copyDir, { recursive: true });
  sync();
  m = await find();
  const m2 = (await alice.api.Mailbox.get({ accountId: A, ids: null }))[0].list.find((b) => b.name === "CountsSynced2");
  assert.ok(m2, "the second synced folder is not there");
  assert.deepEqual(counts(m), { totalEmails: 4, unreadEmails: 0, totalThreads: 2, unreadThreads: 0 });
  assert.deepEqual(counts(m2), { totalEmails: 1, unreadEmails: 0, totalThreads: 1, unreadThreads: 0 });

  // Every mailbox of the account agrees with its emails.
  for (const box of (await alice.api.Mailbox.get({ accountId: A, ids: null }))[0].list)
    assert.deepEqual(counts(box), await countedFromEmails(box), box.name);

  imapctl("delete CountsSynced");
  imapctl("delete CountsSynced2");
  sync();
  assert.equal(await find(), undefined);
});
