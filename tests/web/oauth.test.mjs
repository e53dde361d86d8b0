// OAuth accounts from the web app, in the real browser, against a real
// authorization server (oidc-provider: tests/oauth/server.mjs) and a Dovecot
// that takes only its tokens (tests/web_test.py starts both when
// tests/oauth/node_modules exists; otherwise these tests skip). As the third
// hub user (oauthEnv().user, no account at start):
//   - the add page's OAuth path: the method select, no password, the hub's
//     exact OAuth disclosure, an unticked consent that the sign-in buttons
//     wait for; axe-core;
//   - the redirect flow: "Sign in at test" opens the provider in a new tab,
//     which ends on the hub's callback page saying added; this tab follows
//     to the accounts page; the account is an OAuth one, consented from the
//     web, and its mail is synced;
//   - the provider revokes the hub's access: the account needs sign-in;
//     "Sign in again" with the device flow (the code shown; Cancel stops the
//     flow; again, and the code approved in another page of the browser);
//   - a sign-in refused at the provider: failed in both tabs, Try again;
//   - removed, and added again with the device flow;
//   - a provider the hub has no app for: said plainly, the password path
//     stays open;
//   - the OAuth path in German.
// Nothing is fetched from anywhere but loopback (the provider's own pages
// @import a web font: such requests are aborted).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { spawnSync } from "node:child_process";
import { axe, env, formatViolations, jmap, launch, oauthEnv, oauthRevokeAll,
	pageErrors, screenshot, sel, signIn, waitFor } from "./lib.mjs";

const o = oauthEnv();
const skip = o ? false : "no OAuth test server (npm ci in tests/oauth)";

let browser, context, page;
before(async () => {
	if (!o)
		return;
	({ browser, context, page } = await launch());
	await context.route((url) => url.hostname !== "127.0.0.1" && url.hostname !== "localhost",
		(route) => route.abort());
	await signIn(page, o.user, o.password);
});
after(async () => {
	await browser?.close();
});

async function call(method, args = {}) {
	const r = await jmap([[method, { accountId: "mailkeep", ...args }, "t"]], { token: o.token });
	assert.equal(r[0][0], method, `${method}: ${JSON.stringify(r[0])}`);
	return r[0][1];
}

async function accounts() {
	return (await call("ExternalAccount/get", { ids: null })).list;
}

// The user's mail account id now (lib.mjs's session() keeps the first
// answer, from before the account was added).
async function freshMailAccountId() {
	const r = await fetch(env().sessionUrl, { headers: { Authorization: "Bearer " + o.token } });
	assert.ok(r.ok, `session: HTTP ${r.status}`);
	return (await r.json()).primaryAccounts["urn:ietf:params:jmap:mail"];
}

async function noSeriousViolations(where) {
	const vs = await axe(page, { exclude: [".topbar"] });
	assert.equal(vs.length, 0, `axe-core on ${where}:\n${formatViolations(vs)}`);
}

function accountRow(login) {
	return page.locator(`${sel("account-row")}[data-login="${login}"]`);
}

// The app's own errors on this page (the provider's tabs are not the app).
function appErrors() {
	return pageErrors(page);
}

async function openAddPage() {
	await page.locator(sel("nav-accounts")).first().click();
	await page.locator(sel("account-add")).click();
	await page.locator(sel("account-imap")).waitFor();
}

// Fills the add page's OAuth path up to the disclosure; returns the hub's
// disclosure for the same settings.
async function fillOAuth() {
	const method = page.locator(sel("account-method"));
	await method.waitFor();
	const options = await method.locator("option").evaluateAll((os) => os.map((x) => x.value));
	assert.ok(options.includes(o.provider), `no ${o.provider} in the method select: ${options}`);
	await method.selectOption(o.provider);
	assert.equal(await page.locator(sel("account-password-input")).count(), 0,
		"the OAuth path asks for a password");
	await page.locator(sel("account-imap")).fill(o.imapUrl);
	await page.locator(sel("account-login")).fill(o.login);
	await page.locator(sel("account-disclose")).click();
	await page.locator(sel("disclosure-text")).waitFor();
	return call("ExternalAccount/disclose", { kind: "oauth", oauthProvider: o.provider,
		imapUrl: o.imapUrl, smtpUrl: null, login: o.login });
}

// The provider's device pages in another page of the same browser: the
// code filled in from the address, Continue, confirm, until it says so.
async function approveDevice(url) {
	const other = await context.newPage();
	try {
		await other.goto(url);
		for (let i = 0; i < 6; i++) {
			if (/Sign-in Success/.test(await other.title()))
				return;
			const next = other.locator("button", { hasText: "Continue" }).first();
			await next.waitFor({ timeout: 15000 });
			await Promise.all([other.waitForNavigation({ timeout: 15000 }), next.click()]);
		}
		throw new Error("the device sign-in did not finish: " + (await other.content()).slice(-600));
	} finally {
		await other.close();
	}
}

test("the add page's OAuth path: no password, the exact disclosure, consent first", { skip }, async () => {
	const providers = (await call("OAuthProvider/get")).list;
	const p = providers.find((x) => x.id === o.provider);
	assert.ok(p, `OAuthProvider/get has no ${o.provider}: ${JSON.stringify(providers)}`);
	assert.deepEqual([...p.flows].sort(), ["device", "redirect"]);
	assert.ok(!JSON.stringify(providers).includes(o.clientSecret), "the client secret is shown");

	await openAddPage();
	const d = await fillOAuth();
	assert.equal(await page.locator(sel("disclosure-text")).textContent(), d.text);
	const check = page.locator(sel("consent-check"));
	assert.equal(await check.isChecked(), false, "the consent must start unticked");
	for (const b of ["oauth-signin", "oauth-device"])
		assert.equal(await page.locator(sel(b)).isDisabled(), true, `${b} is enabled before consent`);
	assert.match(await page.locator(sel("oauth-signin")).textContent(), new RegExp(`Sign in at ${o.provider}`));
	await noSeriousViolations("the OAuth add page with the disclosure");
	await screenshot(page, "trust-add-oauth", { fullPage: true });

	// Editing a disclosed setting withdraws the disclosure and the consent.
	await check.check();
	await page.locator(sel("account-login")).fill(o.login + "x");
	assert.equal(await page.locator(sel("disclosure-text")).count(), 0);
	assert.equal(await page.locator(sel("oauth-signin")).count(), 0);
});

test("a sign-in refused at the provider: said in both tabs, and Try again", { skip }, async () => {
	await openAddPage();
	await fillOAuth();
	await page.locator(sel("consent-check")).check();
	// The user says no at the provider: it sends them back to the
	// redirect_uri with error=access_denied instead of a code.
	const authorize = (url) => url.href.startsWith(o.issuer + "/auth?");
	await context.route(authorize, (route) => {
		const u = new URL(route.request().url());
		const back = new URL(u.searchParams.get("redirect_uri"));
		back.searchParams.set("state", u.searchParams.get("state") || "");
		back.searchParams.set("error", "access_denied");
		back.searchParams.set("error_description", "the user said no <b>thanks</b>");
		return route.fulfill({ status: 303, headers: { Location: back.href } });
	});
	try {
		const [tab] = await Promise.all([
			context.waitForEvent("page", { timeout: 15000 }),
			page.locator(sel("oauth-signin")).click(),
		]);
		const result = tab.locator("#mk-oauth-result");
		await result.waitFor({ timeout: 60000 });
		assert.equal(await result.getAttribute("data-state"), "failed");
		assert.equal(await tab.locator("b").count(), 0, "the provider's text is not escaped");
		await tab.close();
	} finally {
		await context.unroute(authorize);
	}
	const err = page.locator(sel("oauth-error"));
	await err.waitFor({ timeout: 15000 });
	assert.match(await err.textContent(), /access_denied/);
	assert.equal(await page.locator(sel("oauth-flow")).getAttribute("data-state"), "failed");
	assert.equal((await accounts()).length, 0, "an account was added");
	await noSeriousViolations("a refused sign-in");
	await page.locator(sel("oauth-retry")).click();
	await page.locator(sel("oauth-signin")).waitFor();
	assert.equal(await page.locator(sel("oauth-signin")).isDisabled(), false);
	assert.deepEqual(appErrors(), []);
});

test("add an account with the redirect flow: a new tab, back on the callback page", { skip }, async () => {
	await openAddPage();
	await fillOAuth();
	await page.locator(sel("consent-check")).check();
	const [tab] = await Promise.all([
		context.waitForEvent("page", { timeout: 15000 }),
		page.locator(sel("oauth-signin")).click(),
	]);
	await page.locator(sel("oauth-waiting")).waitFor();
	// The provider answers by itself; the tab ends on the hub's callback.
	const result = tab.locator("#mk-oauth-result");
	await result.waitFor({ timeout: 60000 });
	assert.equal(await result.getAttribute("data-state"), "added", await tab.content());
	assert.match(new URL(tab.url()).pathname, /^\/mailkeep\/oauth\/callback$/);
	assert.match(await tab.locator("h1").textContent(), /Account added/);
	await tab.close();

	// This tab saw it and went to the account.
	await accountRow(o.login).waitFor({ timeout: 30000 });
	assert.match(page.url(), /#\/accounts$/);
	const list = await accounts();
	assert.equal(list.length, 1);
	assert.equal(list[0].kind, "oauth");
	assert.equal(list[0].oauthProvider, o.provider);
	assert.equal(list[0].needsSignIn, false);
	const c = (await call("Consent/get")).list.find((x) => x.login === o.login);
	assert.ok(c, "no consent record");
	assert.match(c.tool, /web/);

	// serve syncs the new account by itself.
	const total = await waitFor(async () => {
		const accountId = await freshMailAccountId();
		if (!accountId)
			return false;
		const r = await jmap([["Email/query", { accountId, calculateTotal: true, limit: 1 }, "q"]],
			{ token: o.token });
		return r[0][0] === "Email/query" && r[0][1].total > 0 && r[0][1].total;
	}, { timeout: 60000, what: "the OAuth account's mail to be synced" });
	assert.ok(total > 0);
	assert.deepEqual(appErrors(), []);
	await screenshot(page, "trust-accounts-oauth");
});

test("sign in again with a code on another device (and cancel first)", { skip }, async () => {
	// The user withdraws the hub's access at the provider: the next sync
	// finds out and the account needs sign-in.
	assert.ok(await oauthRevokeAll() > 0, "nothing to revoke");
	const r = spawnSync(env().bin, ["--data", env().data, "sync", "--user", o.user, "--quiet"],
		{ stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
	assert.notEqual(r.status, 0, "a sync with the revoked grant worked");
	assert.match(r.stderr, /invalid_grant/);
	await waitFor(async () => (await accounts())[0].needsSignIn,
		{ timeout: 20000, what: "the account to need sign-in" });

	await page.reload();
	await page.locator(sel("nav-accounts")).first().click();
	const row = accountRow(o.login);
	await row.locator('[data-status="needs-sign-in"]').waitFor({ timeout: 20000 });
	const again = row.locator(sel("oauth-signin-again"));
	await again.click();
	const device = row.locator(sel("oauth-device"));
	await device.waitFor();
	await noSeriousViolations("the sign-in-again panel");

	// Start, then cancel: the flow is cancelled on the hub.
	const started = page.waitForResponse(async (r) => /\/jmap\/api\/?$/.test(new URL(r.url()).pathname) &&
		(r.request().postData() || "").includes("ExternalAccount/oauthStart"));
	await device.click();
	const first = JSON.parse(await (await started).text()).methodResponses[0];
	assert.equal(first[0], "ExternalAccount/oauthStart", JSON.stringify(first));
	const code = row.locator(sel("oauth-user-code"));
	await code.waitFor();
	assert.equal((await code.textContent()).trim(), first[1].userCode);
	assert.equal(await row.locator(sel("oauth-verification")).getAttribute("href"),
		new URL(first[1].verificationUri).href);
	await noSeriousViolations("the device code");
	await screenshot(page, "trust-oauth-device-code");
	await row.locator(sel("oauth-cancel")).click();
	await device.waitFor();
	const st = await call("ExternalAccount/oauthStatus", { flowId: first[1].flowId }).catch((e) => e);
	assert.ok(st.state === "cancelled" || st.state === undefined,
		`a cancelled flow is ${JSON.stringify(st)}`);
	assert.equal((await accounts())[0].needsSignIn, true);

	// Again, and approve the code in another page of the browser.
	await device.click();
	await code.waitFor();
	const complete = await row.locator(sel("oauth-verification-complete")).getAttribute("href");
	assert.ok(complete, "no verificationUriComplete link");
	await approveDevice(complete);
	await row.locator('[data-status="needs-sign-in"]').waitFor({ state: "detached", timeout: 60000 });
	assert.equal(await row.locator(sel("oauth-signin-again")).count(), 0);
	const [a] = await accounts();
	assert.equal(a.needsSignIn, false);
	// The new grant works: a sync refreshes and logs in with it.
	const again2 = spawnSync(env().bin, ["--data", env().data, "sync", "--user", o.user, "--quiet"],
		{ stdio: ["ignore", "ignore", "pipe"], encoding: "utf8",
			env: { ...process.env, SSL_CERT_DIR: o.certDir } });
	assert.equal(again2.status, 0, again2.stderr);
	assert.deepEqual(appErrors(), []);
});

test("add an account with a code on another device", { skip }, async () => {
	// Removed first (the same Dovecot user again).
	const [old] = await accounts();
	const r = await call("ExternalAccount/set", { destroy: [old.id] });
	assert.deepEqual(r.destroyed, [old.id], JSON.stringify(r));
	await openAddPage();
	await fillOAuth();
	await page.locator(sel("consent-check")).check();
	await page.locator(sel("oauth-device")).click();
	const code = page.locator(sel("oauth-user-code"));
	await code.waitFor();
	assert.match((await code.textContent()).trim(), /^[A-Z0-9-]{6,}$/);
	// What the sign-in was started with stays as it is meanwhile.
	assert.equal(await page.locator(sel("account-login")).isDisabled(), true);
	assert.equal(await page.locator(sel("consent-check")).isDisabled(), true);
	await approveDevice(await page.locator(sel("oauth-verification-complete")).getAttribute("href"));
	await accountRow(o.login).waitFor({ timeout: 60000 });
	assert.match(page.url(), /#\/accounts$/);
	const list = await accounts();
	assert.equal(list.length, 1);
	assert.equal(list[0].kind, "oauth");
	assert.deepEqual(appErrors(), []);
});

test("a provider this hub has no app for: said plainly, the password path stays", { skip }, async () => {
	await openAddPage();
	// A lookup that finds a provider the hub has no app for (the test hub
	// only knows "test"): the answer another hub would give, made here (a
	// real lookup of gmail.com would leave loopback).
	await page.route(/\/jmap\/api\/?$/, async (route) => {
		const body = route.request().postData() || "";
		if (!body.includes("ExternalAccount/discover"))
			return route.continue();
		await route.fulfill({ status: 200, contentType: "application/json", json: {
			methodResponses: [["ExternalAccount/discover", { accountId: "mailkeep",
				imapUrl: "imaps://imap.gmail.com:993", smtpUrl: "smtps://smtp.gmail.com:465",
				login: "someone@gmail.com", sources: ["builtin"], oauthProvider: "google",
				oauthConfigured: false }, "m"]] } });
	});
	try {
		await page.locator(sel("account-email")).fill("someone@gmail.com");
		await page.locator(sel("account-discover")).click();
		const note = page.locator(sel("account-oauth-noapp"));
		await note.waitFor();
		assert.match(await note.textContent(), /no app registered with google/);
		assert.match(await note.textContent(), /app password/);
		// The password path is open: the method is Password, the field is there.
		if (await page.locator(sel("account-method")).count())
			assert.equal(await page.locator(sel("account-method")).inputValue(), "");
		await page.locator(sel("account-password-input")).waitFor();
		await noSeriousViolations("the add page with a provider without an app");
	} finally {
		await page.unroute(/\/jmap\/api\/?$/);
	}
});

test("German: the OAuth path speaks German", { skip }, async () => {
	const de = await browser.newContext({ locale: "de-DE", viewport: { width: 1280, height: 800 } });
	try {
		const p = await de.newPage();
		await p.goto(env().url);
		await signIn(p, o.user, o.password);
		await p.locator(sel("nav-accounts")).first().click();
		await p.locator(sel("account-add")).click();
		const method = p.locator(sel("account-method"));
		await method.waitFor();
		assert.match(await method.locator(`option[value="${o.provider}"]`).textContent(),
			new RegExp(`Mit ${o.provider} anmelden`));
		await method.selectOption(o.provider);
		await p.locator(sel("account-imap")).fill(o.imapUrl);
		await p.locator(sel("account-login")).fill(o.login + "-de");
		await p.locator(sel("account-disclose")).click();
		await p.locator(sel("disclosure-text")).waitFor();
		assert.match(await p.locator(sel("oauth-signin")).textContent(), new RegExp(`Bei ${o.provider} anmelden`));
		assert.match(await p.locator(sel("oauth-device")).textContent(), /Code auf einem anderen Gerät/);
		assert.deepEqual(pageErrors(p), []);
	} finally {
		await de.close();
	}
});
