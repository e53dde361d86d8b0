// Writing and acting on mail in a real browser (h-compose): compose with
// attachments and see them arrive at the SMTP server, drafts saved as you
// type and replaced, reply and forward, identities' display names, flag /
// read / archive / delete / spam / move and the flags on the Dovecot
// server, keyboard shortcuts and their help, German strings.
//
// Named mail-compose so that it runs after harness.test.mjs, which expects
// an SMTP server that has received nothing yet.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  axe, deliver, env, formatViolations, imapctl, jmap, launch, mailAccountId, mailbox,
  pageErrors, received, screenshot, sel, signIn, sync, waitFor,
} from "./lib.mjs";

let browser, page, acc, roles;
const stamp = Date.now().toString(36);

async function mailboxRoles() {
  const [[, r]] = await jmap([["Mailbox/get", { accountId: acc, properties: ["id", "name", "role"] }, "m"]]);
  const out = {};
  for (const m of r.list) {
    if (m.role) out[m.role] = m.id;
    out["name:" + m.name] = m.id;
  }
  return out;
}

// Emails of a mailbox whose subject is exactly (or contains) this.
async function inMailbox(mailboxId, subject) {
  const [[, q], [, g]] = await jmap([
    ["Email/query", { accountId: acc, filter: { inMailbox: mailboxId }, limit: 500 }, "q"],
    ["Email/get", { accountId: acc, "#ids": { resultOf: "q", name: "Email/query", path: "/ids" },
      properties: ["id", "subject", "keywords", "mailboxIds", "messageId"] }, "g"],
  ]);
  assert.ok(q.ids);
  return g.list.filter((e) => (e.subject || "").includes(subject));
}

async function emailById(id, properties = ["id", "keywords", "mailboxIds", "subject"]) {
  const [[, g]] = await jmap([["Email/get", { accountId: acc, ids: [id], properties,
    fetchTextBodyValues: true }, "g"]]);
  return g.list[0];
}

function sentTo(subject) {
  return received().filter((m) => m.data.includes(subject));
}

// axe-core on one part of the page (the compose window, the help dialog):
// the rest of the screen is the smoke test's.
async function axeWithin(selector, p = page) {
  await axe(p); // loads axe-core into the page
  const vs = await p.evaluate(async (s) => {
    const r = await window.axe.run({ include: [[s]] }, { iframes: false, resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => n.target.join(" ")) }));
  }, selector);
  return vs.filter((v) => v.impact === "serious" || v.impact === "critical");
}

// A compose window a failed test left open would cover what the next one clicks.
async function closeCompose() {
  const c = page.locator(sel("compose"));
  if (await c.count()) {
    await page.locator(".mk-compose-x").click();
    await c.waitFor({ state: "detached" });
  }
}

// Opens the compose window: the Compose button when the app shows one, else "c".
async function openNew() {
  await closeCompose();
  const btn = page.locator(sel("compose-open"));
  if (await btn.count()) await btn.first().click();
  else {
    await page.locator("body").click({ position: { x: 1, y: 1 } }).catch(() => {});
    await page.keyboard.press("c");
  }
  await page.locator(sel("compose-to")).waitFor({ timeout: 15000 });
  await fromAddress();
}

// The harness's account signs in as "alice" on 127.0.0.1: its identity's
// address (alice@[127.0.0.1]) is none the server writes into a From, so the
// compose window asks for the address to send from (and remembers it).
async function fromAddress() {
  const f = page.locator(sel("compose-from-address"));
  if (await f.count() && (await f.inputValue()) === "") await f.fill("alice@example.org");
}

async function gotoInbox() {
  await mailbox(page, { role: "inbox" }).click();
  await page.locator(sel("msg-row")).first().waitFor({ timeout: 15000 });
}

// Opens the message with this subject from the inbox (it was just delivered:
// the newest, at the top). Returns its email id.
async function openMessage(subject) {
  await closeCompose();
  await gotoInbox();
  const row = page.locator(sel("msg-row"), { hasText: subject }).first();
  await row.waitFor({ timeout: 20000 });
  const id = await row.getAttribute("data-id");
  await row.click();
  await page.locator(sel("reader-subject")).filter({ hasText: subject }).first().waitFor({ timeout: 15000 });
  return id;
}

async function reply(kind) {
  const ids = { r: "compose-reply", a: "compose-reply-all", f: "compose-forward" };
  const btn = page.locator(sel(ids[kind]));
  if (await btn.count()) await btn.first().click();
  else await page.keyboard.press(kind);
  await page.locator(sel("compose-to")).waitFor({ timeout: 15000 });
  await fromAddress();
}

async function send() {
  await page.locator(sel("compose-send")).click();
  try {
    await page.locator(sel("compose")).waitFor({ state: "detached", timeout: 20000 });
  } catch (e) {
    const status = await page.locator(sel("compose-status")).innerText().catch(() => "?");
    const problem = await page.locator(".mk-compose-error").allInnerTexts().catch(() => []);
    const toasts = await page.locator(".toast").allInnerTexts().catch(() => []);
    throw new Error(`not sent: status "${status}", ${JSON.stringify(problem)}, toasts ${JSON.stringify(toasts)}`);
  }
}

// Uncaught errors in the page (console messages about HTTP statuses are the
// app's business: a 401 before sign-in is how it learns there is no session).
const uncaught = () => pageErrors(page).filter((e) => e.startsWith("pageerror"));

before(async () => {
  // Drafts, Trash and Junk as a provider has them (the fixture's Dovecot
  // gives them their SPECIAL-USE), so drafts are saved and delete and spam
  // have somewhere to go.
  for (const name of ["Drafts", "Trash", "Junk"]) {
    try {
      imapctl(["create", name]);
    } catch { /* exists already */ }
  }
  sync();
  acc = await mailAccountId();
  roles = await mailboxRoles();
  assert.ok(roles.drafts && roles.trash && roles.junk && roles.archive && roles.sent, JSON.stringify(roles));
  ({ browser, page } = await launch());
  page.on("dialog", (d) => d.accept());
  await signIn(page);
});

after(async () => {
  await browser?.close();
});

test("compose: display name, recipients, two attachments; the SMTP server gets it, Sent holds one copy", async () => {
  const subject = `Quarterly figures ${stamp}`;
  await gotoInbox();
  await openNew();
  const a11y = await axeWithin("#mk-compose-host");
  assert.equal(a11y.length, 0, "axe-core on the compose window:\n" + formatViolations(a11y));
  // The identity, with a display name set here (Identity/set).
  const from = page.locator(sel("compose-from"));
  assert.match(await from.locator("option").first().innerText(), /@/);
  await page.locator(sel("compose-edit-name")).click();
  await page.locator(sel("compose-name")).fill("Alice Liddell");
  await page.locator(sel("compose-name-save")).click();
  await waitFor(async () => /Alice Liddell </.test(await from.locator("option:checked").innerText()),
    { what: "the display name in From" });
  const [[, ident]] = await jmap([["Identity/get", { accountId: acc }, "i"]]);
  assert.equal(ident.list[0].name, "Alice Liddell");

  await page.locator(sel("compose-to")).fill("Bob Example <bob@example.net>, carol@example.net");
  await page.locator(sel("compose-subject")).fill(subject);
  await page.locator(sel("compose-body")).fill("Hello Bob,\n\nthe figures are attached.\n\nAlice");
  const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64");
  await page.locator(sel("compose-attach")).setInputFiles([
    { name: "figures.csv", mimeType: "text/csv", buffer: Buffer.from("quarter,total\nQ3,1234\n") },
    { name: "chart.png", mimeType: "image/png", buffer: png },
  ]);
  await waitFor(async () => (await page.locator(sel("compose-attachment")).count()) === 2,
    { what: "two attachments uploaded" });
  await screenshot(page, "compose");
  await send();

  const [msg] = await waitFor(() => { const m = sentTo(subject); return m.length ? m : null; },
    { timeout: 30000, what: "the message at the SMTP server" });
  assert.deepEqual([...msg.rcpt_tos].sort(), ["bob@example.net", "carol@example.net"]);
  assert.match(msg.data, /^From: "?Alice Liddell"? <alice@example.org>/m);
  assert.equal(msg.mail_from, "alice@example.org");
  assert.match(msg.data, /^To: Bob Example <bob@example.net>, carol@example.net/m);
  assert.match(msg.data, /filename="?figures\.csv"?/);
  assert.match(msg.data, /filename="?chart\.png"?/);
  assert.ok(msg.data.includes(Buffer.from("quarter,total\nQ3,1234\n").toString("base64")), "the CSV's bytes");
  assert.ok(msg.data.replace(/\r?\n/g, "").includes(png.toString("base64")), "the PNG's bytes");
  assert.match(msg.data, /the figures are attached/);
  // The outbox files the Sent copy: after a sync exactly one (the draft
  // the app sent from is destroyed, not moved there as a second copy).
  await waitFor(async () => {
    sync();
    return (await inMailbox(roles.sent, subject)).length >= 1;
  }, { timeout: 30000, interval: 1000, what: "the Sent copy" });
  assert.equal((await inMailbox(roles.sent, subject)).length, 1);
  assert.equal((await inMailbox(roles.drafts, subject)).length, 0);
  assert.deepEqual(uncaught(), []);
});

test("a message the SMTP server refuses: the toast says so with its reply, and a notice is left", async () => {
  const subject = `Refused ${stamp}`;
  await gotoInbox();
  await openNew();
  await page.locator(sel("compose-to")).fill("perm-fail@example.net");
  await page.locator(sel("compose-subject")).fill(subject);
  await page.locator(sel("compose-body")).fill("This one bounces at RCPT.");
  await send();
  // "Sending…" at once; then what the outbox met (the fixture answers 550 to RCPT).
  const toast = page.locator(".toast", { hasText: subject });
  await toast.waitFor({ timeout: 30000 });
  const text = await toast.innerText();
  assert.match(text, /not sent/i);
  assert.match(text, /550/);
  assert.equal(sentTo(subject).length, 0, "the SMTP server kept nothing");
  const [[, subs]] = await jmap([["EmailSubmission/get", { accountId: acc }, "s"]]);
  const failed = subs.list.filter((x) => x.undoStatus === "final" &&
    Object.values(x.deliveryStatus).some((d) => d.delivered === "no"));
  assert.ok(failed.length >= 1, "the submission is final and not delivered");
  assert.deepEqual(uncaught(), []);
});

test("drafts: saved as you type, replaced on each save, gone once sent; discard removes one", async () => {
  const subject = `Draft in progress ${stamp}`;
  await openNew();
  await page.locator(sel("compose-to")).fill("dan@example.net");
  await page.locator(sel("compose-subject")).fill(subject);
  await page.locator(sel("compose-body")).fill("first words");
  const first = await waitFor(async () => {
    const d = await inMailbox(roles.drafts, subject);
    return d.length === 1 ? d[0] : null;
  }, { what: "the first draft" });
  assert.equal(first.keywords.$draft, true);
  await waitFor(async () => /saved/i.test(await page.locator(sel("compose-status")).innerText()),
    { what: "the saved status" });
  await page.locator(sel("compose-body")).press("End");
  await page.keyboard.type(" and more words");
  const second = await waitFor(async () => {
    const d = await inMailbox(roles.drafts, subject);
    return d.length === 1 && d[0].id !== first.id ? d[0] : null;
  }, { what: "the draft replaced" });
  const body = await emailById(second.id, ["id", "textBody", "bodyValues"]);
  assert.match(Object.values(body.bodyValues)[0].value, /first words and more words/);
  // Closing keeps it.
  await page.locator(".mk-compose-x").click();
  await page.locator(sel("compose")).waitFor({ state: "detached" });
  assert.equal((await inMailbox(roles.drafts, subject)).length, 1);
  // It opens again from the Drafts folder, to go on writing.
  await mailbox(page, { role: "drafts" }).click();
  await page.locator(sel("msg-row"), { hasText: subject }).first().click();
  await page.locator(sel("compose-edit-draft")).first().click();
  await page.locator(sel("compose-subject")).waitFor();
  assert.equal(await page.locator(sel("compose-subject")).inputValue(), subject);
  assert.equal(await page.locator(sel("compose-to")).inputValue(), "dan@example.net");
  assert.equal(await page.locator(sel("compose-body")).inputValue(), "first words and more words");
  await page.locator(sel("compose-body")).press("End");
  await page.keyboard.type(", then some");
  const third = await waitFor(async () => {
    const d = await inMailbox(roles.drafts, subject);
    return d.length === 1 && d[0].id !== second.id ? d[0] : null;
  }, { what: "the reopened draft replaced" });
  const body3 = await emailById(third.id, ["id", "textBody", "bodyValues"]);
  assert.equal(Object.values(body3.bodyValues)[0].value.trim(), "first words and more words, then some");
  await closeCompose();
  await gotoInbox();

  // A second one, sent: its draft goes.
  const subject2 = `Draft then sent ${stamp}`;
  await openNew();
  await page.locator(sel("compose-to")).fill("erin@example.net");
  await page.locator(sel("compose-subject")).fill(subject2);
  await page.locator(sel("compose-body")).fill("sent from a draft");
  await waitFor(async () => (await inMailbox(roles.drafts, subject2)).length === 1, { what: "draft 2" });
  await send();
  await waitFor(() => sentTo(subject2).length === 1, { timeout: 30000, what: "draft 2 sent" });
  assert.equal((await inMailbox(roles.drafts, subject2)).length, 0);

  // A third, discarded.
  const subject3 = `Draft discarded ${stamp}`;
  await openNew();
  await page.locator(sel("compose-subject")).fill(subject3);
  await waitFor(async () => (await inMailbox(roles.drafts, subject3)).length === 1, { what: "draft 3" });
  await page.locator(sel("compose-discard")).click();
  await page.locator(sel("compose")).waitFor({ state: "detached" });
  await waitFor(async () => (await inMailbox(roles.drafts, subject3)).length === 0, { what: "draft 3 gone" });
  assert.equal(sentTo(subject3).length, 0);
  // Clean up the kept draft.
  const kept = await inMailbox(roles.drafts, subject);
  await jmap([["Email/set", { accountId: acc, destroy: kept.map((e) => e.id) }, "d"]]);
});

test("reply and reply-all: recipients, Re: subject, quoted text, threading headers, $answered", async () => {
  const subject = `Lunch on Friday ${stamp}`;
  deliver(`From: Carol Sender <carol@example.net>\r\nTo: alice@example.org, Dan <dan@example.net>\r\n` +
    `Cc: erin@example.net\r\nSubject: ${subject}\r\nMessage-ID: <lunch-${stamp}@example.net>\r\n` +
    `Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nShall we meet at noon?\r\n`);
  const id = await openMessage(subject);
  await reply("r");
  assert.equal(await page.locator(sel("compose-to")).inputValue(), "Carol Sender <carol@example.net>");
  assert.equal(await page.locator(sel("compose-subject")).inputValue(), `Re: ${subject}`);
  assert.match(await page.locator(sel("compose-body")).inputValue(), /wrote:\n> Shall we meet at noon\?/);
  await page.locator(sel("compose-body")).focus();
  await page.keyboard.press("Control+Home");
  await page.keyboard.type("Yes, noon is fine.");
  await send();
  const [msg] = await waitFor(() => { const m = sentTo(`Re: ${subject}`); return m.length ? m : null; },
    { timeout: 30000, what: "the reply at the SMTP server" });
  assert.deepEqual(msg.rcpt_tos, ["carol@example.net"]);
  assert.match(msg.data, new RegExp(`^In-Reply-To: <lunch-${stamp}@example.net>`, "m"));
  assert.match(msg.data, new RegExp(`^References: <lunch-${stamp}@example.net>`, "m"));
  assert.match(msg.data, /^Yes, noon is fine\./m);
  assert.match(msg.data, /^> Shall we meet at noon\?/m);
  await waitFor(async () => (await emailById(id)).keywords.$answered === true, { what: "$answered" });

  // Reply-all: everyone but me.
  await reply("a");
  assert.equal(await page.locator(sel("compose-to")).inputValue(), "Carol Sender <carol@example.net>");
  const cc = await page.locator(sel("compose-cc")).inputValue();
  assert.equal(cc, "Dan <dan@example.net>, erin@example.net");
  await page.locator(".mk-compose-x").click();
  await page.locator(sel("compose")).waitFor({ state: "detached" });
});

test("forward: Fwd: subject, the original's attachment goes along", async () => {
  const subject = `Plan attached ${stamp}`;
  const plan = "step 1: think\nstep 2: do\n";
  deliver(`From: Frank <frank@example.net>\r\nTo: alice@example.org\r\nSubject: ${subject}\r\n` +
    `Message-ID: <plan-${stamp}@example.net>\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n` +
    `Here is the plan.\r\n--b1\r\nContent-Type: text/plain; name="plan.txt"\r\n` +
    `Content-Disposition: attachment; filename="plan.txt"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
    `${Buffer.from(plan).toString("base64")}\r\n--b1--\r\n`);
  const id = await openMessage(subject);
  await reply("f");
  assert.equal(await page.locator(sel("compose-subject")).inputValue(), `Fwd: ${subject}`);
  assert.equal(await page.locator(sel("compose-to")).inputValue(), "");
  assert.match(await page.locator(sel("compose-body")).inputValue(), /Forwarded message[\s\S]*From: Frank <frank@example.net>[\s\S]*Here is the plan\./);
  await page.locator(`${sel("compose-attachment")}[data-name="plan.txt"]`).waitFor({ timeout: 15000 });
  await page.locator(sel("compose-to")).fill("grace@example.net");
  await send();
  const [msg] = await waitFor(() => { const m = sentTo(`Fwd: ${subject}`); return m.length ? m : null; },
    { timeout: 30000, what: "the forward at the SMTP server" });
  assert.deepEqual(msg.rcpt_tos, ["grace@example.net"]);
  assert.match(msg.data, /filename="?plan\.txt"?/);
  assert.ok(msg.data.includes(Buffer.from(plan).toString("base64")), "the attachment's bytes");
  await waitFor(async () => (await emailById(id)).keywords.$forwarded === true, { what: "$forwarded" });
});

// The IMAP flags of a UID in a folder, from Dovecot (as another client sees them).
function imapFlags(folder, uid) {
  const line = imapctl(["uids", folder]).split("\n").find((l) => l.split(" ")[0] === String(uid));
  return line === undefined ? null : line.split(" ").slice(1).join(" ");
}

test("flag and unread: the ActionBar, the keyboard, and the flags on the Dovecot server", async () => {
  const subject = `Flag me ${stamp}`;
  const uid = deliver(`From: Heidi <heidi@example.net>\r\nTo: alice@example.org\r\nSubject: ${subject}\r\n` +
    `Message-ID: <flag-${stamp}@example.net>\r\n\r\nimportant\r\n`);
  const id = await openMessage(subject);
  const flag = page.locator(sel("action-flag")).first();
  assert.equal(await flag.getAttribute("aria-pressed"), "false");
  await flag.click();
  await waitFor(async () => (await flag.getAttribute("aria-pressed")) === "true", { what: "the flag button pressed" });
  assert.equal((await emailById(id)).keywords.$flagged, true);
  await screenshot(page, "reader-actions");
  sync();
  await waitFor(() => /\\Flagged/.test(imapFlags("INBOX", uid) || ""), { what: "\\Flagged on Dovecot" });

  // Read (opening marks it read, or the button does), then unread.
  const read = page.locator(sel("action-read")).first();
  if ((await read.getAttribute("data-seen")) === "false") await read.click();
  await waitFor(async () => (await emailById(id)).keywords.$seen === true, { what: "$seen" });
  await read.click();
  await waitFor(async () => !(await emailById(id)).keywords.$seen, { what: "$seen removed" });
  // "s" takes the flag off again (focus out of any frame first).
  await page.locator(sel("reader-subject")).first().click();
  await page.keyboard.press("s");
  await waitFor(async () => !(await emailById(id)).keywords.$flagged, { what: "unflagged by s" });
  sync();
  await waitFor(() => {
    const f = imapFlags("INBOX", uid);
    return f !== null && !/\\Flagged/.test(f) && !/\\Seen/.test(f);
  }, { what: "no \\Flagged, no \\Seen on Dovecot" });
  assert.deepEqual(uncaught(), []);
});

test("archive, delete, spam and move put the message in the folder of that role", async () => {
  const cases = [
    ["action-archive", "archive"],
    ["action-delete", "trash"],
    ["action-spam", "junk"],
  ];
  for (const [button, role] of cases) {
    const subject = `To ${role} ${stamp}`;
    deliver(`From: Ivan <ivan@example.net>\r\nTo: alice@example.org\r\nSubject: ${subject}\r\n\r\nx\r\n`);
    const id = await openMessage(subject);
    await page.locator(sel(button)).first().click();
    await waitFor(async () => (await emailById(id)).mailboxIds[roles[role]] === true, { what: `in ${role}` });
    const boxes = Object.keys((await emailById(id)).mailboxIds);
    assert.deepEqual(boxes, [roles[role]]);
    // The reader closes: the message left this list.
    await waitFor(async () => !(await page.locator(sel("reader-subject")).filter({ hasText: subject }).count()),
      { what: "the reader closed" });
  }
  // Deleting in Trash destroys (after the confirmation, accepted here).
  const trashed = (await inMailbox(roles.trash, `To trash ${stamp}`))[0];
  await page.goto(env().url + `#/mail/${acc}/${roles.trash}/${trashed.id}/${acc}`);
  await page.locator(sel("action-delete")).first().click();
  await waitFor(async () => (await inMailbox(roles.trash, `To trash ${stamp}`)).length === 0, { what: "destroyed" });

  // Move through the menu.
  const subject = `Move me ${stamp}`;
  deliver(`From: Judy <judy@example.net>\r\nTo: alice@example.org\r\nSubject: ${subject}\r\n\r\nx\r\n`);
  const id = await openMessage(subject);
  const target = roles["name:Alpha"] || roles.archive;
  await page.locator(sel("action-move")).first().selectOption(target);
  await waitFor(async () => (await emailById(id)).mailboxIds[target] === true, { what: "moved" });
  // The two-way sync carries the moves to Dovecot.
  sync();
  const junk = imapctl(["list"]).split("\n").find((l) => l.startsWith("Junk "));
  assert.ok(junk && Number(junk.split(" ")[3]) >= 1, "Junk on Dovecot: " + junk);
  assert.deepEqual(uncaught(), []);
});

test("keyboard: ? shows the help, Escape closes it; j/k move, o opens, u goes back", async () => {
  await closeCompose();
  await gotoInbox();
  await page.locator(sel("msg-row")).first().focus();
  await page.keyboard.press("?");
  const help = page.locator(sel("keys-help"));
  await help.waitFor();
  assert.match(await help.innerText(), /Keyboard shortcuts/);
  const a11y = await axeWithin("#mk-keys-host");
  assert.equal(a11y.length, 0, "axe-core on the shortcut help:\n" + formatViolations(a11y));
  await page.keyboard.press("Escape");
  await help.waitFor({ state: "detached" });
  await page.locator(sel("msg-row")).first().focus();
  const idx = () => page.evaluate(() => document.activeElement?.getAttribute("data-index"));
  await page.keyboard.press("j");
  await waitFor(async () => (await idx()) === "1", { what: "j moved down" });
  await page.keyboard.press("j");
  await waitFor(async () => (await idx()) === "2", { what: "j moved down again" });
  await page.keyboard.press("k");
  await waitFor(async () => (await idx()) === "1", { what: "k moved up" });
  const id = await page.evaluate(() => document.activeElement?.getAttribute("data-id"));
  await page.keyboard.press("o");
  await waitFor(() => page.url().includes(encodeURIComponent(id)) || page.url().includes(id), { what: "o opened it" });
  await page.locator(sel("reader-subject")).first().click();
  await page.keyboard.press("u");
  await waitFor(() => !page.url().includes(id), { what: "u went back" });
});

test("German: the compose window speaks German", async () => {
  const de = await launch({ locale: "de-DE" });
  try {
    await signIn(de.page);
    const btn = de.page.locator(sel("compose-open"));
    if (await btn.count()) await btn.first().click();
    else await de.page.keyboard.press("c");
    await de.page.locator(sel("compose-to")).waitFor();
    assert.match(await de.page.locator(sel("compose")).innerText(), /Neue Nachricht[\s\S]*Betreff/);
    assert.equal(await de.page.locator(sel("compose-send")).innerText(), "Senden");
  } finally {
    await de.browser.close();
  }
});

test("a phone's width in dark mode: the compose window fills the screen and stays accessible", async () => {
  const ph = await launch({ colorScheme: "dark" });
  try {
    await signIn(ph.page); // at a desktop's width: signIn() waits for the navigation
    await ph.page.setViewportSize({ width: 390, height: 844 });
    await ph.page.locator(sel("compose-open")).first().click();
    const c = ph.page.locator(sel("compose"));
    await ph.page.locator(sel("compose-to")).waitFor();
    const box = await c.boundingBox();
    assert.ok(box && box.x <= 1 && box.width >= 388, "full width: " + JSON.stringify(box));
    const vs = await axeWithin("#mk-compose-host", ph.page);
    assert.equal(vs.length, 0, "axe-core on the compose window (phone, dark):\n" + formatViolations(vs));
    await screenshot(ph.page, "compose-phone-dark");
  } finally {
    await ph.browser.close();
  }
});
