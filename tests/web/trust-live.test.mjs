// The trust pages and new mail (StateChange). New mail (a sync) moves every
// account's state, so the app's event stream says so on each one. The
// accounts page reloads its list then (an account's status follows its
// syncs), at most every few seconds; the other trust pages (devices, audit,
// privacy) load once and on the user's actions, and a StateChange from new
// mail makes them ask nothing. Requests are counted with playwright's request
// events; that the app has taken a StateChange shows by the notices badge
// reading the notices account's mailboxes again (Mailbox/get).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { deliver, env, launch, pageErrors, sel, signIn, waitFor } from "./lib.mjs";

let browser, page;
before(async () => {
	({ browser, page } = await launch());
	await signIn(page);
});
after(async () => {
	await browser?.close();
});

// The JMAP API requests the page makes from now on, in the order they are
// made ("Device/get", "Mailbox/get,Mailbox/get"...), and the marker requests
// (see settle).
function recordRequests() {
	const seen = [];
	const on = (req) => {
		const u = new URL(req.url());
		if (u.pathname === "/mailkeep/session" && u.searchParams.has("marker")) {
			seen.push("marker:" + u.searchParams.get("marker"));
			return;
		}
		if (!/\/jmap\/api\/?$/.test(u.pathname))
			return;
		let methods = "?";
		try {
			methods = JSON.parse(req.postData() || "").methodCalls.map((c) => c[0]).join(",");
		} catch { /* not JSON */ }
		seen.push(methods);
	};
	page.on("request", on);
	return { seen, stop: () => page.off("request", on) };
}

// Every request the app started before this one is in rec.seen once this
// request is: the page makes one of its own and waits for it to be seen.
let markers = 0;
async function settle(rec) {
	const m = String(++markers);
	await page.evaluate((m) => fetch("/mailkeep/session?marker=" + m, { credentials: "same-origin" })
		.then((r) => r.status), m);
	await waitFor(() => rec.seen.includes("marker:" + m), { timeout: 30000, what: "the marker request" });
}

let n = 0;
function newMail() {
	n++;
	deliver(`From: live@example.org\r\nTo: ${env().imapLogin}@example.org\r\n` +
		`Subject: trust live ${n} ${Date.now()}\r\nMessage-ID: <trust-live-${n}-${Date.now()}@example.org>\r\n` +
		`\r\nnew mail ${n}\r\n`);
}

async function open(route) {
	await page.locator(sel(`nav-${route}`)).first().click();
	await page.waitForURL(new RegExp(`#/${route}$`));
	await page.locator("h1.trust-title").first().waitFor();
	// Loaded: no loading or error state left on the page.
	await waitFor(async () => (await page.locator(".trust-loading, .trust-error").count()) === 0,
		{ timeout: 30000, what: `the ${route} page to load` });
}

for (const route of ["devices", "audit", "privacy"]) {
	test(`the ${route} page does not ask again on new mail`, async () => {
		await open(route);
		const rec = recordRequests();
		try {
			await settle(rec); // what the page's first load started is in before this
			rec.seen.length = 0;
			newMail();
			// The app took the StateChange: the notices badge asked for its mailboxes.
			await waitFor(() => rec.seen.some((m) => m.split(",").includes("Mailbox/get")),
				{ timeout: 30000, what: "the app to take the StateChange of the new mail" });
			await settle(rec);
			const other = rec.seen.filter((m) => !m.startsWith("marker:") &&
				!m.split(",").every((x) => x === "Mailbox/get"));
			assert.deepEqual(other, [], `the ${route} page asked again on new mail: ${rec.seen.join(" | ")}`);
		} finally {
			rec.stop();
		}
	});
}

test("the accounts page follows the syncs, at most every few seconds", async () => {
	await open("accounts");
	const status = page.locator(`${sel("account-row")}[data-login="${env().imapLogin}"] ${sel("account-status")}`);
	await status.waitFor();
	const held = async () => Number(await status.getAttribute("data-held"));
	const before = await held();
	assert.ok(before > 0, `data-held: ${await status.getAttribute("data-held")}`);
	// When the app asks for the accounts, by the page's clock (node's would be
	// late: deliver() blocks it while the page goes on).
	await page.evaluate(() => {
		const f = window.fetch;
		window.__accountGets = [];
		window.fetch = function (url, init) {
			if (init && typeof init.body === "string" && init.body.includes("ExternalAccount/get"))
				window.__accountGets.push(performance.now());
			return f.apply(this, arguments);
		};
	});
	// Three new messages, each its own sync: several StateChanges.
	for (let i = 0; i < 3; i++)
		newMail();
	await waitFor(async () => (await held()) >= before + 3,
		{ timeout: 45000, what: `the status to show ${before + 3} messages held` });
	const gets = await page.evaluate(() => window.__accountGets);
	assert.ok(gets.length >= 1, "no reload of the accounts");
	// At most one reload per 4 s (the page's ACCOUNTS_LIVE_MS, counted from
	// when a reload starts; its request may leave a little later, so some
	// slack). Without the limit the syncs' StateChanges come about 1 s apart.
	for (let i = 1; i < gets.length; i++)
		assert.ok(gets[i] - gets[i - 1] >= 3000,
			`reloads ${gets[i] - gets[i - 1]} ms apart: ${gets.map((t) => Math.round(t - gets[0])).join(", ")}`);
	assert.deepEqual(pageErrors(page), []);
});
