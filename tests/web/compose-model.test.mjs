// Unit tests of web/src/compose/model.ts (addresses, reply/forward drafts,
// the Email create object), compiled with the web app's esbuild. No
// browser, no server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
let m;
try {
  const esbuild = createRequire(path.join(root, "web", "package.json"))("esbuild");
  const src = readFileSync(path.join(root, "web/src/compose/model.ts"), "utf8");
  const { code } = esbuild.transformSync(src, { loader: "ts", format: "esm", target: "es2020" });
  m = await import("data:text/javascript;base64," + Buffer.from(code).toString("base64"));
} catch (e) {
  m = null;
  console.log("# skipped: web/node_modules has no esbuild (" + e.message + ")");
}
const skip = m ? false : "web/node_modules missing (scripts/build-web.sh installs it)";

const S = {
  wrote: (d, w) => `On ${d}, ${w} wrote:`,
  forwarded: "Forwarded message",
  from: "From",
  date: "Date",
  subject: "Subject",
  to: "To",
  cc: "Cc",
};
const fmt = (iso) => iso.slice(0, 10);
const me = { id: "I1", accountId: "A1", name: "Alice Example", email: "alice@example.org", textSignature: "" };
const orig = {
  id: "E5",
  from: [{ name: "Bob", email: "bob@example.net" }],
  to: [{ name: "Alice", email: "Alice@Example.org" }, { email: "carol@example.net" }],
  cc: [{ name: "Dan, the \"man\"", email: "dan@example.net" }, { email: "bob@example.net" }],
  subject: "Re: AW: plans",
  messageId: ["m5@example.net"],
  references: ["m1@example.net", "m3@example.net"],
  sentAt: "2026-12-01T10:00:00Z",
  text: "line one\n> earlier\nline three\n",
  attachments: [{ blobId: "B7_2", name: "a.pdf", type: "application/pdf", size: 10 }],
};

test("parseAddresses: names, quotes, separators, bad entries", { skip }, () => {
  const r = m.parseAddresses('Ann <ann@x.org>, "Doe, John" <jd@y.org>; bob@z.org, nonsense, <>');
  assert.deepEqual(r.list, [
    { name: "Ann", email: "ann@x.org" },
    { name: "Doe, John", email: "jd@y.org" },
    { email: "bob@z.org" },
  ]);
  assert.deepEqual(r.bad, ["nonsense", "<>"]);
  assert.deepEqual(m.parseAddresses("  ").list, []);
  // formatAddress quotes what needs it and parses back to the same.
  const a = { name: 'Dan, the "man"', email: "dan@example.net" };
  assert.deepEqual(m.parseAddresses(m.formatAddress(a)).list, [a]);
});

test("reply, reply-all: recipients without my own address, subject, threading, quote", { skip }, () => {
  const r = m.startDraft("reply", orig, me, ["alice@example.org"], S, fmt);
  assert.equal(r.to, "Bob <bob@example.net>");
  assert.equal(r.cc, "");
  assert.equal(r.subject, "Re: plans");
  assert.deepEqual(r.inReplyTo, ["m5@example.net"]);
  assert.deepEqual(r.references, ["m1@example.net", "m3@example.net", "m5@example.net"]);
  assert.match(r.body, /On 2026-12-01, Bob <bob@example.net> wrote:\n> line one\n>> earlier\n> line three/);
  const all = m.startDraft("replyAll", orig, me, ["alice@example.org"], S, fmt);
  assert.equal(all.to, "Bob <bob@example.net>");
  assert.equal(all.cc, 'carol@example.net, "Dan, the \\"man\\"" <dan@example.net>');
  // Reply-To wins over From.
  const rt = m.startDraft("reply", { ...orig, replyTo: [{ email: "list@example.net" }] }, me, [], S, fmt);
  assert.equal(rt.to, "list@example.net");
  // A reply to my own message goes to its recipients.
  const mine = m.startDraft("reply", { ...orig, from: [{ email: "alice@example.org" }] }, me, ["alice@example.org"], S, fmt);
  assert.equal(mine.to, "Alice <Alice@Example.org>, carol@example.net");
});

test("forward: subject, header block, body, attachments kept", { skip }, () => {
  const f = m.startDraft("forward", orig, { ...me, textSignature: "Alice" }, [], S, fmt);
  assert.equal(f.subject, "Fwd: Re: AW: plans");
  assert.equal(f.to, "");
  assert.match(f.body, /^\n\n-- \nAlice\n\n---------- Forwarded message ----------\nFrom: Bob <bob@example.net>\nDate: 2026-12-01\nSubject: Re: AW: plans\n/);
  assert.match(f.body, /line three\n$/);
  assert.deepEqual(f.attachments, [{ blobId: "B7_2", name: "a.pdf", type: "application/pdf", size: 10 }]);
  assert.equal(m.forwardSubject("Fwd: x"), "Fwd: x");
  assert.equal(m.replySubject("RE: re: x"), "Re: x");
  assert.equal(m.replySubject(""), "Re: ");
});

test("emailObject: the JMAP create object", { skip }, () => {
  const d = {
    to: "Bob <bob@example.net>",
    cc: "",
    bcc: "hidden@example.net",
    subject: "hi",
    body: "hello",
    attachments: [{ blobId: "B9", name: "x.txt", type: "text/plain", size: 3 }],
    inReplyTo: ["m5@example.net"],
    references: ["m5@example.net"],
  };
  const e = m.emailObject(d, me, "M3");
  assert.deepEqual(e, {
    mailboxIds: { M3: true },
    keywords: { $draft: true, $seen: true },
    subject: "hi",
    bodyValues: { body: { value: "hello\n" } },
    textBody: [{ partId: "body", type: "text/plain" }],
    from: [{ name: "Alice Example", email: "alice@example.org" }],
    to: [{ name: "Bob", email: "bob@example.net" }],
    bcc: [{ email: "hidden@example.net" }],
    inReplyTo: ["m5@example.net"],
    references: ["m5@example.net"],
    attachments: [{ blobId: "B9", type: "text/plain", name: "x.txt", disposition: "attachment" }],
  });
  // A draft round-trips what was typed: one line end added, the server adds one only
  // where none is, draftFromEmail takes one off (trailing line ends the user typed stay).
  for (const body of ["", "x", "x\n", "x\n\n", "a\nb"]) {
    const v = m.emailObject({ ...d, body }, me, "M3").bodyValues.body.value;
    const stored = (v.endsWith("\n") ? v : v + "\n").replace(/\n/g, "\r\n");
    const back = m.draftFromEmail({ to: [], cc: null, bcc: null, subject: "hi", text: stored.replace(/\r\n/g, "\n"),
      attachments: [], inReplyTo: null, references: null });
    assert.equal(back.body, body, JSON.stringify(body));
  }
  assert.deepEqual(m.checkDraft(d), { bad: [], count: 2 });
  assert.deepEqual(m.checkDraft({ ...d, to: "x", bcc: "" }), { bad: ["x"], count: 0 });
  assert.equal(m.isEmpty({ ...d, to: "", bcc: "", subject: "", body: "\n\n-- \nsig", attachments: [] }, "\n\n-- \nsig"), true);
});
