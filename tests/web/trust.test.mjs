// The trust pages end to end, as the second hub user (user2, who starts with
// no account): add an account through the consent page (the exact
// disclosure, an unticked consent, Add disabled until it is ticked, the
// connection test), the consent record and the audit log (verified), add a
// device (token shown once and as a QR code; the token works) and revoke it
// (the token stops working), the web sessions with this one marked, remove
// the account and read the receipt (shown, the same as the hub's, and
// downloadable). axe-core on each page. MK_SCREENSHOTS=1: docs/screenshots.
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, test } from "node:test";
import { axe, env, formatViolations, jmap, launch, pageErrors, screenshot, sel, signIn,
	waitFor } from "./lib.mjs";

let browser, page;
before(async () => {
	({ browser, page } = await launch({ acceptDownloads: true }));
	await signIn(page, env().user2, env().password2);
});
after(async () => {
	await browser?.close();
});

const token2 = () => env().token2;

async function call(method, args = {}) {
	const r = await jmap([[method, { accountId: "mailkeep", ...args }, "t"]], { token: token2() });
	assert.equal(r[0][0], method, `${method}: ${JSON.stringify(r[0])}`);
	return r[0][1];
}

// The pages this file tests; the shell around them (top bar, navigation) is
// the smoke test's.
async function noSeriousViolations(where) {
	const vs = await axe(page, { exclude: [".topbar"] });
	assert.equal(vs.length, 0, `axe-core on ${where}:\n${formatViolations(vs)}`);
}

async function open(route) {
	await page.locator(sel(`nav-${route}`)).first().click();
	await page.locator("h1").first().waitFor();
}

function accountRow(login) {
	return page.locator(`${sel("account-row")}[data-login="${login}"]`);
}

test("add an account through the consent page", async () => {
	const e = env();
	await open("accounts");
	await page.locator(sel("account-add")).click();
	await page.locator(sel("account-imap")).waitFor();
	await page.locator(sel("account-imap")).fill(e.imapUrl);
	await page.locator(sel("account-login")).fill(e.imapLogin2);
	// A wrong password fails the connection test, said on the page.
	await page.locator(sel("account-password-input")).fill("not the password");
	await page.locator(sel("account-add-test")).click();
	const result = page.locator(sel("account-test-result"));
	await result.waitFor({ timeout: 20000 });
	assert.equal(await result.getAttribute("data-ok"), "false");
	await page.locator(sel("account-password-input")).fill(e.imapPassword2);
	await page.locator(sel("account-add-test")).click();
	await waitFor(async () => (await result.getAttribute("data-ok")) === "true",
		{ timeout: 20000, what: "the connection test to pass" });

	await page.locator(sel("account-disclose")).click();
	const shown = page.locator(sel("disclosure-text"));
	await shown.waitFor();
	const text = await shown.textContent();
	// Exactly the hub's disclosure for these settings.
	const d = await call("ExternalAccount/disclose",
		{ imapUrl: e.imapUrl, smtpUrl: null, login: e.imapLogin2, kind: "password" });
	assert.equal(text, d.text);
	assert.match(text, new RegExp(`hub user ${e.user2}\\b`));

	const check = page.locator(sel("consent-check"));
	const submit = page.locator(sel("account-add-submit"));
	assert.equal(await check.isChecked(), false, "the consent must start unticked");
	assert.equal(await submit.isDisabled(), true, "Add must be disabled before consent");
	await noSeriousViolations("the add-account page with the disclosure");
	await screenshot(page, "trust-add-account", { fullPage: true });

	// Changing what the disclosure describes withdraws it.
	await page.locator(sel("account-login")).fill(e.imapLogin2 + "x");
	assert.equal(await shown.count(), 0, "the disclosure stays after the login changed");
	await page.locator(sel("account-login")).fill(e.imapLogin2);
	await page.locator(sel("account-disclose")).click();
	await shown.waitFor();
	assert.equal(await check.isChecked(), false);

	await check.check();
	assert.equal(await submit.isDisabled(), false);
	await submit.click();
	await accountRow(e.imapLogin2).waitFor({ timeout: 30000 });
	assert.match(page.url(), /#\/accounts$/);

	const accounts = (await call("ExternalAccount/get", { ids: null })).list;
	assert.equal(accounts.length, 1);
	assert.equal(accounts[0].login, e.imapLogin2);
	const consents = (await call("Consent/get")).list;
	const c = consents.find((x) => x.login === e.imapLogin2);
	assert.ok(c, "no consent record");
	// The hub records the id (SHA-256) of the text consented to.
	assert.equal(c.disclosure, d.disclosureId, "the consent record holds another disclosure");
	assert.match(c.tool, /web/);
	await noSeriousViolations("the accounts page");
	await screenshot(page, "trust-accounts");
});

test("the account's connection test from the list", async () => {
	const row = accountRow(env().imapLogin2);
	await row.locator(sel("account-test")).click();
	const result = row.locator(sel("account-test-result"));
	await result.waitFor({ timeout: 20000 });
	assert.equal(await result.getAttribute("data-ok"), "true", await result.textContent());
});

test("the consent and what the hub stores", async () => {
	await open("privacy");
	const row = page.locator(`${sel("consent-row")}[data-login="${env().imapLogin2}"]`);
	await row.waitFor();
	await row.locator("summary").click();
	const consents = (await call("Consent/get")).list;
	const shownId = (await row.locator(sel("consent-disclosure-id")).textContent()).trim();
	assert.equal(shownId, consents.find((x) => x.login === env().imapLogin2).disclosure);
	assert.ok(await page.locator(sel("stored-row")).count() > 0, "no stored rows");
	await noSeriousViolations("the privacy page");
	await screenshot(page, "trust-privacy", { fullPage: true });
});

test("the audit log: verified, filtered, the addition in it", async () => {
	await open("audit");
	const v = page.locator(sel("audit-verified"));
	await v.waitFor();
	assert.equal(await v.getAttribute("data-verified"), "true", await v.textContent());
	await page.locator(sel("audit-row")).first().waitFor();
	const events = await page.locator(sel("audit-row")).evaluateAll((rs) => rs.map((r) => r.dataset.event));
	assert.ok(events.includes("account.added"), `events: ${events}`);
	assert.ok(events.includes("consent.given"), `events: ${events}`);
	await noSeriousViolations("the audit log");
	await screenshot(page, "trust-audit");

	await page.locator(sel("audit-filter-event")).selectOption("consent.given");
	await page.locator(sel("audit-filter-apply")).click();
	await waitFor(async () => {
		const ev = await page.locator(sel("audit-row")).evaluateAll((rs) => rs.map((r) => r.dataset.event));
		return ev.length > 0 && ev.every((x) => x === "consent.given");
	}, { what: "only consent.given rows" });
	const server = await call("AuditLog/get", { filter: { event: "consent.given" }, position: 0, limit: 50 });
	assert.equal(await page.locator(sel("audit-row")).count(), server.entries.length);
});

test("add a device: the token once and as a QR code; revoke it", async () => {
	await open("devices");
	await page.locator(sel("device-name")).fill("trust-test-phone");
	await page.locator(sel("device-add")).click();
	const tokenEl = page.locator(sel("device-token"));
	await tokenEl.waitFor();
	const token = (await tokenEl.textContent()).trim();
	assert.match(token, /^[A-Za-z0-9_-]{20,}$/);
	const qr = page.locator(sel("device-qr"));
	assert.ok(await qr.isVisible(), "no QR code");
	assert.ok(Number(await qr.getAttribute("data-modules")) >= 21);
	await noSeriousViolations("the devices page with a new token");
	await screenshot(page, "trust-device-token");

	// The token works as a device's.
	const s = await fetch(env().sessionUrl, { headers: { Authorization: "Bearer " + token } });
	assert.equal(s.status, 200);

	await page.locator(sel("device-token-done")).click();
	assert.equal(await tokenEl.count(), 0, "the token is still shown");
	const row = page.locator(`${sel("device-row")}[data-name="trust-test-phone"]`);
	await row.waitFor();
	// The device list never carries a token.
	const list = (await call("Device/get", { ids: null })).list;
	assert.ok(list.some((x) => x.name === "trust-test-phone"));
	assert.ok(!JSON.stringify(list).includes(token));

	await row.locator(sel("device-revoke")).click();
	await page.locator(sel("device-revoke-dialog-confirm")).click();
	await row.waitFor({ state: "detached" });
	const s2 = await fetch(env().sessionUrl, { headers: { Authorization: "Bearer " + token } });
	assert.equal(s2.status, 401);
});

test("the web sessions list marks this one", async () => {
	const rows = page.locator(sel("session-row"));
	await rows.first().waitFor();
	assert.equal(await page.locator(`${sel("session-row")}[data-current="true"]`).count(), 1);
});

test("remove the account from all devices and read the receipt", async () => {
	const login = env().imapLogin2;
	await open("accounts");
	const row = accountRow(login);
	await row.waitFor();
	await row.locator(sel("account-remove")).click();
	const confirm = page.locator(sel("account-remove-dialog-confirm"));
	await confirm.waitFor();
	await noSeriousViolations("the removal dialog");
	await confirm.click();
	const receipt = page.locator(sel("receipt-text"));
	await receipt.waitFor({ timeout: 30000 });
	const text = (await receipt.textContent()).trim();
	assert.ok(text.length > 0, "an empty receipt");
	await row.waitFor({ state: "detached" });
	assert.equal((await call("ExternalAccount/get", { ids: null })).list.length, 0);
	const receipts = (await call("Receipt/get")).list;
	assert.ok(receipts.length >= 1);
	assert.equal(receipts[0].text.trim(), text, "the shown receipt is not the hub's newest");

	const [download] = await Promise.all([
		page.waitForEvent("download"),
		page.locator(sel("receipt-download")).click(),
	]);
	assert.match(download.suggestedFilename(), /\.txt$/);
	const file = await download.path();
	assert.equal(fs.readFileSync(file, "utf8").trim(), text);
	await noSeriousViolations("the accounts page with the receipt");
	await screenshot(page, "trust-receipt");

	// The receipts list keeps it.
	await page.locator(sel("receipt-row")).first().waitFor();
});

test("change the hub password (and back)", async () => {
	await open("devices");
	const form = page.locator(sel("hubpw-form"));
	await form.waitFor();
	const change = async (old, pw) => {
		await page.locator("#trust-hubpw-old").fill(old);
		await page.locator("#trust-hubpw-new").fill(pw);
		await page.locator("#trust-hubpw-again").fill(pw);
		// Typing cleared the last outcome.
		await page.locator(sel("hubpw-done")).waitFor({ state: "detached" });
		await page.locator(sel("hubpw-submit")).click();
	};
	await change("not the password", "a new password 1");
	await form.locator('[role="alert"]').waitFor();
	assert.equal(await page.locator(sel("hubpw-done")).count(), 0);
	await change(env().password2, "a new password 1");
	await page.locator(sel("hubpw-done")).waitFor();
	// The old password no longer signs in, the new one does.
	const signin = (password) => fetch(new URL("/mailkeep/session", env().url), {
		method: "POST", headers: { "Content-Type": "application/json" },
		body: JSON.stringify({ username: env().user2, password }) });
	assert.equal((await signin(env().password2)).status, 401);
	assert.equal((await signin("a new password 1")).status, 200);
	await change("a new password 1", env().password2);
	await page.locator(sel("hubpw-done")).waitFor();
	assert.equal((await signin(env().password2)).status, 200);
});

test("the trust pages at phone width in dark mode: no serious axe-core findings", async () => {
	const phone = await launch({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
	try {
		const p = phone.page;
		await p.goto(env().url);
		await p.locator(sel("signin-user")).fill(env().user2);
		await p.locator(sel("signin-password")).fill(env().password2);
		await p.locator(sel("signin-submit")).click();
		await p.locator(sel("signin-submit")).waitFor({ state: "detached" });
		for (const [route, ready] of [["accounts", "account-add"], ["accounts/add", "account-imap"],
			["devices", "device-add"], ["audit", "audit-verified"], ["privacy", "stored-row"]]) {
			await p.goto(new URL("#/" + route, env().url).href);
			await p.locator(sel(ready)).first().waitFor();
			const vs = await axe(p, { exclude: [".topbar"] });
			assert.equal(vs.length, 0, `axe-core on #/${route} (phone, dark):\n${formatViolations(vs)}`);
			if (route === "devices")
				await screenshot(p, "trust-devices-phone-dark");
		}
	} finally {
		await phone.browser.close();
	}
});

test("no script errors on the trust pages", () => {
	// The browser logs each refused request (the sign-in page's first
	// session check answers 401) as a console error: only script errors count.
	assert.deepEqual(pageErrors(page).filter((e) => !/Failed to load resource/.test(e)), []);
});
