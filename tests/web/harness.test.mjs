// The harness itself (lib.mjs): chromium starts, the world web_test.py made
// is there (a synced account, device tokens, the SMTP server), and
// deliver() puts mail where the API sees it. If this fails, look here
// before at the app's tests.
import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";
import { deliver, env, jmap, launch, mailAccountId, received, session } from "./lib.mjs";

test("chromium starts headless and renders", async () => {
	const { browser, page } = await launch();
	try {
		await page.setContent("<main><h1>mailkeep</h1></main>");
		assert.equal(await page.textContent("h1"), "mailkeep");
	} finally {
		await browser.close();
	}
});

test("the environment is complete", () => {
	const e = env();
	assert.match(e.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
	assert.ok(fs.existsSync(e.smtpDir) || fs.existsSync(e.tmp));
	assert.ok(fs.existsSync(e.webRoot + "/index.html"));
	assert.ok(e.inboxCount > 0);
	assert.equal(received().length, 0);
});

test("the device tokens reach the API; deliver() syncs new mail in", async () => {
	const s = await session();
	assert.equal(s.username, env().user);
	const acc = await mailAccountId();
	const count = async () => {
		const [[, mb]] = await jmap([["Mailbox/query", { accountId: acc, filter: { role: "inbox" } }, "q"]]);
		const [[, got]] = await jmap([["Mailbox/get", { accountId: acc, ids: mb.ids }, "g"]]);
		return got.list[0].totalEmails;
	};
	const before = await count();
	assert.equal(before, env().inboxCount);
	deliver("From: Hub Admin <admin@example.org>\r\nTo: alice@example.org\r\n" +
		"Subject: Welcome to your mailkeep hub\r\n\r\nYour mail is here now, on the web too.\r\n");
	assert.equal(await count(), before + 1);
	const s2 = await session(env().token2);
	assert.equal(s2.username, env().user2);
});

test("the web root is served at /", async () => {
	const r = await fetch(env().url);
	assert.equal(r.status, 200);
	assert.match(await r.text(), /<html/i);
});
