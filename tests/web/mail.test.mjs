// The mail screens (web/src/mail): folder tree with unread counts, the virtual message
// list (a window of rows, never the whole folder), threads, the reader (mark read,
// attachments with download + image preview, remote images per sender), search with
// highlighted snippets, live updates through the event stream, the notices badge, the
// keyboard, German strings and an unknown route.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import fs from "node:fs";
import { deliver, env, jmap, launch, mailAccountId, mailbox, mk, pageErrors, recordJmap, sel, signIn,
	tmpFile, waitFor } from "./lib.mjs";

const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";
const stamp = Date.now();
const date = (agoSeconds = 0) => new Date(Date.now() - agoSeconds * 1000).toUTCString().replace("GMT", "+0000");

let browser, context, page, acc, inboxId;

// A "remote" server on loopback for the remote-image test: it counts what it is asked for.
const hits = [];
const remote = http.createServer((req, res) => {
	hits.push(req.url);
	res.writeHead(200, { "Content-Type": "image/png", "Cache-Control": "no-store" });
	res.end(Buffer.from(PNG, "base64"));
});

async function inbox() {
	const r = await jmap([["Mailbox/query", { accountId: acc, filter: { role: "inbox" } }, "q"],
		["Mailbox/get", { accountId: acc, "#ids": { resultOf: "q", name: "Mailbox/query", path: "/ids" } }, "g"]]);
	return r[1][1].list[0];
}

async function openInbox() {
	await mailbox(page, { role: "inbox" }).click();
	await page.locator(sel("msg-row")).first().waitFor({ timeout: 15000 });
}

async function openBySubject(subject) {
	const row = page.locator(sel("msg-row"), { hasText: subject }).first();
	await row.waitFor({ timeout: 15000 });
	await row.click();
	await page.locator(sel("reader-subject"), { hasText: subject }).waitFor({ timeout: 10000 });
	return row;
}

before(async () => {
	await new Promise((r) => remote.listen(0, "127.0.0.1", r));
	const port = remote.address().port;
	acc = await mailAccountId();
	// A thread of three, an attachment mail, and two mails of one sender with a remote image.
	const thread = `thread-${stamp}`;
	deliver(`From: Dan <dan@example.com>\r\nTo: alice@example.org\r\nSubject: Lunch ${stamp}\r\n` +
		`Date: ${date(300)}\r\nMessage-ID: <${thread}-1@example.com>\r\n\r\nShall we meet at noon?\r\n`, { doSync: false });
	deliver(`From: Alice <alice@example.org>\r\nTo: dan@example.com\r\nSubject: Re: Lunch ${stamp}\r\n` +
		`Date: ${date(200)}\r\nMessage-ID: <${thread}-2@example.org>\r\nIn-Reply-To: <${thread}-1@example.com>\r\n` +
		`References: <${thread}-1@example.com>\r\n\r\nYes, noon works.\r\n`, { doSync: false });
	deliver(`From: Dan <dan@example.com>\r\nTo: alice@example.org\r\nSubject: Re: Lunch ${stamp}\r\n` +
		`Date: ${date(100)}\r\nMessage-ID: <${thread}-3@example.com>\r\nIn-Reply-To: <${thread}-2@example.org>\r\n` +
		`References: <${thread}-1@example.com> <${thread}-2@example.org>\r\n\r\nSee you there, bring the zanzibarian map.\r\n`,
	{ doSync: false });
	const b = "b-" + stamp;
	deliver(`From: Carol <carol@example.com>\r\nTo: alice@example.org\r\nSubject: Photos ${stamp}\r\n` +
		`Date: ${date(50)}\r\nMessage-ID: <photos-${stamp}@example.com>\r\nMIME-Version: 1.0\r\n` +
		`Content-Type: multipart/mixed; boundary=${b}\r\n\r\n--${b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n` +
		`The photo is attached.\r\n--${b}\r\nContent-Type: image/png; name=dot.png\r\n` +
		`Content-Disposition: attachment; filename=dot.png\r\nContent-Transfer-Encoding: base64\r\n\r\n${PNG}\r\n--${b}--\r\n`,
	{ doSync: false });
	for (const n of [1, 2])
		deliver(`From: Shop <shop@example.net>\r\nTo: alice@example.org\r\nSubject: Offer ${n} ${stamp}\r\n` +
			`Date: ${date(40 - n)}\r\nMessage-ID: <offer-${n}-${stamp}@example.net>\r\nMIME-Version: 1.0\r\n` +
			`Content-Type: text/html; charset=utf-8\r\n\r\n<p style="color: rgb(200, 0, 0)" id="offer">Offer ${n}</p>` +
			`<img src="http://127.0.0.1:${port}/pixel-${n}.png" alt="pixel">\r\n`, { doSync: n === 2 });
	inboxId = (await inbox()).id;
	({ browser, context, page } = await launch());
	await signIn(page);
});

after(async () => {
	await browser?.close();
	remote.close();
});

test("the folder tree shows the inbox with the server's unread count", async () => {
	const box = mailbox(page, { role: "inbox" });
	await box.waitFor({ timeout: 15000 });
	const server = await inbox();
	await waitFor(async () => Number(await box.getAttribute("data-unread")) === server.unreadEmails,
		{ what: `the inbox's unread count ${server.unreadEmails}` });
	assert.ok(server.unreadEmails > 0);
	assert.equal(await box.getAttribute("data-name"), "INBOX");
	// The notices account ("mailkeep") is in the tree and the badge is there.
	await page.locator(sel("notice-badge")).waitFor({ timeout: 10000 });
});

test("the list is virtual: a window of rows, fetched by position, and scrolling reaches the end", async () => {
	const rec = recordJmap(page);
	await openInbox();
	const server = await inbox();
	const total = server.totalThreads || server.totalEmails;
	// A click on the inbox while it is shown may render the list again: wait for rows.
	const rows = await waitFor(async () => await page.locator(sel("msg-row")).count(), { what: "rows" });
	assert.ok(rows > 0 && rows < total, `rows in the DOM: ${rows}, messages: ${total}`);
	// Every Email/query asked for a window.
	await waitFor(() => rec.entries.some((e) => e.methods.startsWith("Email/query")), { what: "an Email/query" });
	rec.stop();
	const scroll = page.locator(sel("msg-list"));
	await scroll.evaluate((el) => (el.scrollTop = el.scrollHeight));
	const lastIndex = await waitFor(async () => {
		const idx = await page.locator(sel("msg-row")).evaluateAll((as) => as.map((a) => Number(a.getAttribute("data-index"))));
		const max = Math.max(...idx);
		return max >= 0 && (await page.locator(`${sel("msg-row")}[data-index="${max}"]`).count()) ? max + 1 : 0;
	}, { what: "the last rows after scrolling" });
	const shown = await page.locator('[role="status"], .list-status').first().innerText();
	assert.ok(lastIndex > rows - 1, `after scrolling the last index is ${lastIndex}`);
	assert.match(shown, /\d/);
	await scroll.evaluate((el) => (el.scrollTop = 0));
});

test("a thread is one row; the reader shows its messages; opening marks read", async () => {
	await openInbox();
	const rows = page.locator(sel("msg-row"), { hasText: `Lunch ${stamp}` });
	await rows.first().waitFor({ timeout: 15000 });
	await waitFor(async () => (await rows.count()) === 1, { what: "the thread collapsed into one row" });
	assert.equal(await rows.first().getAttribute("data-unread"), "true");
	const id = await rows.first().getAttribute("data-id");
	await rows.first().click();
	await page.locator(sel("reader-subject"), { hasText: `Lunch ${stamp}` }).waitFor();
	await waitFor(async () => (await page.locator("article.message").count()) === 3, { what: "three messages in the thread" });
	const body = page.frameLocator(sel("reader-frame")).locator("body");
	await waitFor(async () => /zanzibarian map/.test(await body.innerText()), { what: "the newest message's body" });
	// Marked read on the server, and the row says so.
	await waitFor(async () => {
		const [[, got]] = await jmap([["Email/get", { accountId: acc, ids: [id], properties: ["keywords"] }, "g"]]);
		return got.list[0].keywords.$seen === true;
	}, { what: "$seen on the server" });
	await waitFor(async () => (await page.locator(`${sel("msg-row")}[data-id="${id}"]`).getAttribute("data-unread")) === "false",
		{ what: "the row shown as read" });
	// An earlier message of the thread expands on click.
	await page.locator("article.message .msg-toggle", { hasText: "Alice" }).first().click();
	await waitFor(async () => (await page.locator(sel("reader-frame")).count()) === 2, { what: "the second message expanded" });
});

test("opening a message: its body once, one mark-read, the rest only fetching neighbours ahead; its StateChange refetches nothing", async () => {
	const subject = `One request ${stamp}`;
	deliver(`From: Erin <erin@example.com>\r\nTo: alice@example.org\r\nSubject: ${subject}\r\n` +
		`Date: ${date()}\r\nMessage-ID: <one-${stamp}@example.com>\r\n\r\nJust the one round trip.\r\n`);
	await openInbox();
	const row = page.locator(sel("msg-row"), { hasText: subject }).first();
	await row.waitFor({ timeout: 15000 });
	assert.equal(await row.getAttribute("data-unread"), "true");
	const id = await row.getAttribute("data-id");
	await page.waitForTimeout(1000); // the sync's own StateChange settles first
	const rec = recordJmap(page);
	const other = [];
	const calls = [];
	const onRequest = (req) => {
		const p = new URL(req.url()).pathname;
		if (p.startsWith("/mailkeep/session") || p.startsWith("/.well-known/jmap")) other.push(p);
		if (/\/jmap\/api\/?$/.test(p))
			calls.push(JSON.parse(req.postData() || "{}").methodCalls || []);
	};
	page.on("request", onRequest);
	try {
		await row.click();
		const body = page.frameLocator(sel("reader-frame")).locator("body");
		await waitFor(async () => /one round trip/.test(await body.innerText()), { what: "the body" });
		await waitFor(async () => {
			const [[, got]] = await jmap([["Email/get", { accountId: acc, ids: [id], properties: ["keywords"] }, "g"]]);
			return got.list[0].keywords.$seen === true;
		}, { what: "$seen on the server" });
		await waitFor(async () => (await row.getAttribute("data-unread")) === "false", { what: "the row shown as read" });
		await page.waitForTimeout(2000); // the StateChange of the mark-read arrives
	} finally {
		rec.stop();
		page.off("request", onRequest);
	}
	// The reader asks for the body (read only) and, in parallel, marks it read (with the
	// headers and counts after the mark); the list fetches the rows next to it ahead
	// (read only). Nothing else: no refetch after the mark-read's StateChange.
	const all = JSON.stringify(rec.entries.map((e) => e.methods));
	const names = (c) => c.map((m) => m[0]).join(",");
	const marks = calls.filter((c) => c.some((m) => m[0] === "Email/set"));
	assert.equal(marks.length, 1, "mark-read requests: " + all);
	assert.equal(names(marks[0]), "Email/get,Email/set,Thread/get,Email/get,Mailbox/get");
	assert.deepEqual(marks[0][0][1].ids, [id]);
	const reads = calls.filter((c) => !c.some((m) => m[0] === "Email/set"));
	for (const c of reads)
		assert.equal(names(c), "Email/get,Thread/get,Email/get", "a request besides the open's: " + all);
	assert.equal(reads.filter((c) => c[0][1].ids.includes(id)).length, 1, "the body asked for once: " + all);
	assert.ok(reads.length <= 3, "requests: " + all);
	assert.deepEqual(other, [], "session requests");
});

test("the message next to the open one was fetched ahead: it opens without asking for its body", async () => {
	const subjects = [`Ahead one ${stamp}`, `Ahead two ${stamp}`];
	for (const [i, subject] of subjects.entries())
		deliver(`From: Frank <frank@example.com>\r\nTo: alice@example.org\r\nSubject: ${subject}\r\n` +
			`Date: ${date()}\r\nMessage-ID: <ahead-${i}-${stamp}@example.com>\r\n\r\nAhead body ${i}.\r\n`);
	await openInbox();
	const rows = subjects.map((s) => page.locator(sel("msg-row"), { hasText: s }).first());
	for (const r of rows)
		await r.waitFor({ timeout: 15000 });
	// The newer (the first row of the two) opens; the older is the next row.
	const [first, next] = Number(await rows[0].getAttribute("data-index")) < Number(await rows[1].getAttribute("data-index")) ? rows : [rows[1], rows[0]];
	assert.equal(Math.abs(Number(await rows[0].getAttribute("data-index")) - Number(await rows[1].getAttribute("data-index"))), 1, "the two are next to each other");
	await first.click();
	await page.locator(".reader[data-shown]").waitFor();
	await page.waitForTimeout(1500); // the mark-read, then the neighbours fetched ahead
	const calls = [];
	const onRequest = (req) => {
		if (/\/jmap\/api\/?$/.test(new URL(req.url()).pathname))
			calls.push(JSON.parse(req.postData() || "{}").methodCalls || []);
	};
	page.on("request", onRequest);
	try {
		const id = await next.getAttribute("data-id");
		await page.evaluate((id) => document.querySelector(`[data-testid="msg-row"][data-id="${id}"]`).click(), id);
		await page.locator(`.reader[data-shown="kept"]`).waitFor({ timeout: 5000 });
		const body = page.frameLocator(sel("reader-frame")).locator("body");
		await waitFor(async () => /Ahead body/.test(await body.innerText()), { what: "the body" });
		await page.waitForTimeout(500);
		const bodies = calls.filter((c) => c.some((m) => m[0] === "Email/get" && m[1].ids?.includes(id) && m[1].fetchTextBodyValues));
		assert.deepEqual(bodies, [], "the body was asked for again");
		assert.equal(calls.filter((c) => c.some((m) => m[0] === "Email/set")).length, 1, "the mark-read");
	} finally {
		page.off("request", onRequest);
	}
});

test("attachments: a download link that answers, an image preview that loads", async () => {
	await openInbox();
	await openBySubject(`Photos ${stamp}`);
	const att = page.locator(sel("attachment"), { hasText: "dot.png" });
	await att.waitFor({ timeout: 10000 });
	const img = att.locator("img.preview");
	await waitFor(async () => img.evaluate((el) => el.complete && el.naturalWidth > 0), { what: "the image preview" });
	const href = await att.locator(sel("attachment-download")).getAttribute("href");
	assert.ok(href && href.includes("/jmap/download/"), href);
	assert.equal(await att.locator(sel("attachment-download")).getAttribute("download"), "dot.png");
	const status = await page.evaluate(async (u) => (await fetch(u, { credentials: "same-origin" })).status, href);
	assert.equal(status, 200);
});

test("remote images: blocked, allowed for a sender, then shown for the sender's other mail", async () => {
	const requests = hits;
	await openInbox();
	await openBySubject(`Offer 1 ${stamp}`);
	const frame = page.frameLocator(sel("reader-frame"));
	await frame.locator("#offer").waitFor();
	// The mail's inline style is applied (through the CSSOM, the app's CSP refuses style attributes).
	await waitFor(async () => (await frame.locator("#offer").evaluate((el) => getComputedStyle(el).color)) === "rgb(200, 0, 0)",
		{ what: "the mail's inline style" });
	await page.waitForTimeout(500);
	assert.deepEqual(requests, [], "a remote image was requested while blocked");
	await page.locator(sel("allow-images-sender")).click();
	await waitFor(() => requests.some((u) => u.includes("pixel-1.png")), { what: "the remote image after allowing" });
	await openBySubject(`Offer 2 ${stamp}`);
	await waitFor(() => requests.some((u) => u.includes("pixel-2.png")), { what: "the sender's other mail's image" });
	assert.equal(await page.locator(sel("allow-images")).count(), 0);
});

test("search: results with highlighted snippets", async () => {
	await openInbox();
	const input = page.locator(sel("search-input"));
	await input.fill("zanzibarian");
	await input.press("Enter");
	// The inbox also lists this message: wait for the search's own list.
	await waitFor(async () => /#\/search\/zanzibarian/.test(page.url()), { what: "the search route" });
	const row = page.locator(sel("msg-row"), { hasText: `Lunch ${stamp}` }).first();
	await row.waitFor({ timeout: 15000 });
	await waitFor(async () => (await page.locator(sel("msg-row")).count()) === 1,
		{ what: "exactly one result" });
	await waitFor(async () => /zanzibarian/i.test(await row.locator("mark").first().innerText().catch(() => "")),
		{ what: "a <mark> in the snippet" });
	assert.match(page.url(), /#\/search\/zanzibarian/);
});

test("live updates: a new message appears without a reload", async () => {
	await openInbox();
	const subject = `Live ${stamp}`;
	await page.waitForTimeout(500); // the event stream is open
	deliver(`From: Live <live@example.com>\r\nTo: alice@example.org\r\nSubject: ${subject}\r\nDate: ${date(0)}\r\n` +
		`Message-ID: <live-${stamp}@example.com>\r\n\r\nhello\r\n`);
	await page.locator(sel("msg-row"), { hasText: subject }).first().waitFor({ timeout: 15000 });
});

test("the keyboard: arrows move between rows, Enter opens, the reader's back returns", async () => {
	await openInbox();
	const first = page.locator(`${sel("msg-row")}[data-index="0"]`);
	await first.focus();
	await page.keyboard.press("ArrowDown");
	await waitFor(async () => page.evaluate(() => document.activeElement?.getAttribute("data-index") === "1"),
		{ what: "focus on the second row" });
	const id = await page.evaluate(() => document.activeElement.getAttribute("data-id"));
	await page.keyboard.press("Enter");
	await page.locator(sel("reader-subject")).waitFor();
	assert.ok(page.url().includes(encodeURIComponent(id)));
	await page.locator(sel("reader-close")).click();
	await waitFor(async () => page.evaluate((i) => document.activeElement?.getAttribute("data-id") === i, id),
		{ what: "focus back on the row" });
});

test("a phone's width shows one pane at a time", async () => {
	await page.setViewportSize({ width: 390, height: 844 });
	try {
		// The list is the first screen (the folders are behind a button).
		await page.goto(env().url + "#/mail");
		await page.locator(sel("msg-row")).first().waitFor({ timeout: 15000 });
		assert.equal(await mailbox(page, { role: "inbox" }).isVisible(), false, "the folders are hidden");
		await page.getByRole("button", { name: /Folders/ }).click();
		await mailbox(page, { role: "inbox" }).click();
		await page.locator(sel("msg-row")).first().click();
		await page.locator(sel("reader-subject")).waitFor();
		assert.equal(await page.locator(sel("msg-list")).isVisible(), false, "the list is hidden while reading");
		await page.locator(sel("reader-close")).click();
		await page.locator(sel("msg-list")).waitFor({ state: "visible" });
	} finally {
		await page.setViewportSize({ width: 1280, height: 800 });
	}
});

test("German strings", async () => {
	const de = await browser.newContext({ locale: "de-DE", viewport: { width: 1280, height: 800 } });
	try {
		const p = await de.newPage();
		await p.goto(env().url);
		await p.locator(sel("signin-submit"), { hasText: "Anmelden" }).waitFor();
		await signIn(p);
		await p.locator(sel("mailbox"), { hasText: "Posteingang" }).first().waitFor();
	} finally {
		await de.close();
	}
});

test("the unified inbox merges two accounts by date", async () => {
	// A second account for the same hub user (the Dovecot user imapLogin2), removed again after.
	const pw = tmpFile(`imap2-${stamp}.pass`);
	fs.writeFileSync(pw, env().imapPassword2, { mode: 0o600 });
	mk(["account", "add", "--user", env().user, "--imap", env().imapUrl, "--login", env().imapLogin2,
		"--password-file", pw, "--ca-file", env().caFile, "--consent"]);
	const list = mk(["account", "list", "--user", env().user]);
	const line = list.split("\n").find((l) => l.includes(env().imapLogin2));
	const hubId = line && line.trim().split(/\s+/)[0];
	try {
		deliver(`From: Zed <zed@example.com>\r\nTo: ${env().imapLogin2}@example.org\r\nSubject: Second account ${stamp}\r\n` +
			`Date: ${date(5)}\r\nMessage-ID: <second-${stamp}@example.com>\r\n\r\nfrom the other account\r\n`,
		{ login: env().imapLogin2 });
		await page.goto(env().url + "#/mail");
		await page.reload();
		const all = page.locator(`${sel("mailbox")}[data-name="*"]`);
		await all.waitFor({ timeout: 15000 });
		await all.click();
		await page.locator(sel("msg-row"), { hasText: `Second account ${stamp}` }).first().waitFor({ timeout: 15000 });
		await page.locator(sel("msg-row"), { hasText: `Live ${stamp}` }).first().waitFor({ timeout: 15000 });
		const rows = await page.locator(sel("msg-row")).evaluateAll((as) => as
			.map((a) => ({ i: Number(a.dataset.index), acc: a.dataset.account, t: a.querySelector("time")?.getAttribute("datetime") }))
			.sort((x, y) => x.i - y.i));
		assert.ok(new Set(rows.map((r) => r.acc)).size === 2, "rows of both accounts");
		for (let k = 1; k < rows.length; k++)
			assert.ok(rows[k - 1].t >= rows[k].t, `newest first at ${k}: ${rows[k - 1].t} < ${rows[k].t}`);
	} finally {
		if (hubId)
			mk(["account", "remove", "--user", env().user, hubId, "--all-devices"]);
	}
});

test("sign out: back to the sign-in page, the cookie no longer works", async () => {
	await page.goto(env().url + "#/mail");
	await page.locator(sel("signout")).click();
	await page.locator(sel("signin-submit")).waitFor({ timeout: 10000 });
	const status = await page.evaluate(async () => (await fetch("/mailkeep/session", { credentials: "same-origin" })).status);
	assert.equal(status, 401);
	await page.reload();
	await page.locator(sel("signin-submit")).waitFor({ timeout: 10000 });
});

test("no script errors on the way", async () => {
	const errs = pageErrors(page).filter((e) => !/401|Unauthorized/.test(e));
	assert.deepEqual(errs, []);
	assert.ok(inboxId);
});
