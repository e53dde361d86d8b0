// The web app end to end: sign in, the inbox lists the synced mail, a
// message opens, the session survives a reload, a wrong password is refused,
// and axe-core finds no serious or critical violation on the main screens
// (light, dark, phone width). MK_SCREENSHOTS=1: docs/screenshots/*.png.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { axe, deliver, env, formatViolations, launch, mailbox, pageErrors, screenshot, sel, signIn,
	waitFor } from "./lib.mjs";

let browser, context, page;
// A plain message of our own, the newest in the inbox (other test files put
// mail of theirs in too).
const subject = `Lunch on Friday? (${Date.now().toString(36).slice(-5)})`;
const text = "Shall we meet at noon by the fountain? The usual place.";
// A few ordinary mails above it, so that the screenshots show an inbox as
// people have it.
const ordinary = [
	["Maria Schneider <maria@example.de>", "Grüße aus Berlin", "Liebe Alice,\n\ndie Konferenz war großartig. Bis bald!\n\nMaria"],
	["GitHub <noreply@example.com>", "[mailkeep] Pull request #42: faster folder sync", "A new pull request is waiting for your review."],
	["Tom Baker <tom@example.co.uk>", "Quarterly report – draft for review", "Hi Alice,\n\nthe draft is attached as usual. Comments by Thursday?\n\nTom"],
	["Kenji Sato <kenji@example.jp>", "東京での打ち合わせ", "来週の火曜日はいかがでしょうか。"],
	["Library <notices@library.example.org>", "Your books are due on Friday", "Two items are due on Friday: renew them online."],
];
before(async () => {
	ordinary.forEach(([from, subj, body], i) => deliver([
		`From: ${from}`,
		"To: Alice Example <alice@example.org>",
		`Subject: =?utf-8?B?${Buffer.from(subj).toString("base64")}?=`,
		`Date: ${new Date(Date.now() - (ordinary.length - i) * 600000).toUTCString().replace("GMT", "+0000")}`,
		`Message-ID: <ordinary-${i}-${Date.now()}@example.org>`,
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: 8bit",
		"",
		body.replace(/\n/g, "\r\n"),
		"",
	].join("\r\n"), { doSync: false }));
	deliver([
		"From: Bob Example <bob@example.org>",
		"To: Alice Example <alice@example.org>",
		`Subject: ${subject}`,
		`Date: ${new Date().toUTCString().replace("GMT", "+0000")}`,
		`Message-ID: <smoke-${Date.now()}@example.org>`,
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"",
		text,
		"",
	].join("\r\n"));
	({ browser, context, page } = await launch());
});
after(async () => {
	await browser?.close();
});

// axe-core's findings on every screen, asserted by the last test (so an
// accessibility finding does not hide whether the screens work).
const a11y = [];
async function noSeriousViolations(p, where) {
	const vs = await axe(p);
	if (vs.length)
		a11y.push(`on ${where}:\n${formatViolations(vs)}`);
}

test("the sign-in page is served with the CSP and is accessible", async () => {
	const resp = await page.goto(env().url);
	assert.equal(resp.status(), 200);
	const h = resp.headers();
	assert.match(h["content-security-policy"] || "", /script-src 'self'/);
	assert.equal(h["x-content-type-options"], "nosniff");
	await page.locator(sel("signin-user")).waitFor();
	await noSeriousViolations(page, "the sign-in page");
	await screenshot(page, "signin");
});

test("a wrong password is refused and the form stays", async () => {
	await page.goto(env().url);
	await page.locator(sel("signin-user")).fill(env().user);
	await page.locator(sel("signin-password")).fill("not the password");
	const [resp] = await Promise.all([
		page.waitForResponse((r) => new URL(r.url()).pathname === "/mailkeep/session" &&
			r.request().method() === "POST"),
		page.locator(sel("signin-submit")).click(),
	]);
	assert.equal(resp.status(), 401);
	// An error is said (role=alert or an element whose text says so), and
	// the form is still there.
	await page.locator('[role="alert"]').first().waitFor({ timeout: 5000 });
	assert.ok(await page.locator(sel("signin-submit")).isVisible());
	const cookies = await context.cookies();
	assert.ok(!cookies.some((c) => c.name === "mk_session"), "a cookie after a wrong password");
});

test("sign in: an HttpOnly SameSite=Strict session cookie, the inbox lists the synced mail", async () => {
	await signIn(page);
	const cookie = (await context.cookies()).find((c) => c.name === "mk_session");
	assert.ok(cookie, "no mk_session cookie");
	assert.equal(cookie.httpOnly, true);
	assert.equal(cookie.sameSite, "Strict");
	assert.equal(await page.evaluate(() => document.cookie.includes("mk_session")), false);
	const inbox = mailbox(page, { role: "inbox" });
	await inbox.waitFor({ timeout: 15000 });
	await inbox.click();
	const rows = page.locator(sel("msg-row"));
	await rows.first().waitFor({ timeout: 15000 });
	// A virtual list renders a window, not necessarily all of them; the
	// newest first.
	// (the click may render the list again: wait for its rows, do not count the old ones)
	await waitFor(async () => (await rows.count()) > 0, { what: "rows in the inbox" });
	assert.ok(await rows.first().getAttribute("data-id"), "msg-row without data-id");
	await page.locator(sel("msg-row"), { hasText: subject }).first().waitFor({ timeout: 10000 });
	await noSeriousViolations(page, "the inbox");
	await screenshot(page, "inbox");
});

test("a message opens in the sandboxed reader", async () => {
	const row = page.locator(sel("msg-row"), { hasText: subject }).first();
	await row.waitFor({ timeout: 10000 });
	assert.equal(await row.getAttribute("data-unread"), "true", "a new message is not shown unread");
	await row.click();
	await page.locator(sel("reader-subject"), { hasText: subject }).waitFor({ timeout: 10000 });
	const frame = page.locator(sel("reader-frame"));
	await frame.waitFor();
	const sandbox = await frame.getAttribute("sandbox");
	assert.ok(sandbox !== null, "the reader frame has no sandbox attribute");
	assert.ok(!/allow-scripts/.test(sandbox), `the reader frame allows scripts: ${sandbox}`);
	// The body is in the frame.
	await page.frameLocator(sel("reader-frame")).getByText("meet at noon by the fountain").waitFor({ timeout: 10000 });
	await noSeriousViolations(page, "the reader");
	await screenshot(page, "reader");
});

test("the session survives a reload (the cookie signs in)", async () => {
	await page.reload();
	await page.locator('[data-testid^="nav-"]').first().waitFor({ timeout: 15000 });
	assert.equal(await page.locator(sel("signin-submit")).count(), 0);
});

test("every page of the navigation opens and is accessible", async () => {
	const navs = page.locator('[data-testid^="nav-"]');
	const ids = [];
	for (let i = 0; i < await navs.count(); i++) {
		const id = await navs.nth(i).getAttribute("data-testid");
		if (await navs.nth(i).isVisible())
			ids.push(id);
	}
	assert.ok(ids.length > 0);
	for (const id of ids) {
		await page.locator(sel(id)).first().click();
		await page.waitForLoadState("networkidle");
		await noSeriousViolations(page, `the page behind ${id}`);
		// (Each area's own tests take the screenshots of its pages.)
	}
});

test("dark mode and a phone's width are accessible", async () => {
	await page.emulateMedia({ colorScheme: "dark" });
	await page.goto(env().url);
	await mailbox(page, { role: "inbox" }).click();
	await page.locator(sel("msg-row")).first().waitFor();
	await noSeriousViolations(page, "the inbox in dark mode");
	await screenshot(page, "inbox-dark");
	await page.emulateMedia({ colorScheme: "light" });
	await page.setViewportSize({ width: 390, height: 844 });
	await page.goto(env().url);
	await page.locator(sel("msg-row")).first().waitFor({ timeout: 15000 }).catch(async () => {
		// On a phone the folder list may be the first screen.
		await mailbox(page, { role: "inbox" }).click();
		await page.locator(sel("msg-row")).first().waitFor();
	});
	// Nothing wider than the screen.
	const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
	assert.ok(overflow <= 1, `the page is ${overflow}px wider than a phone's screen`);
	await noSeriousViolations(page, "the inbox at a phone's width");
	await screenshot(page, "inbox-phone");
	await page.setViewportSize({ width: 1280, height: 800 });
});

test("no script errors on the way", async () => {
	// (The wrong password's 401 above was asked for.)
	const errs = pageErrors(page).filter((e) => e !== "http: 401 POST /mailkeep/session");
	assert.deepEqual(errs, []);
});

test("axe-core: no serious or critical violation on the main screens", () => {
	assert.deepEqual(a11y, []);
});
