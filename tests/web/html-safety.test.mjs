// An HTML mail with scripts and remote content, read in the web app: no
// script of the mail runs (inline, event handler, javascript: URL, nested
// frame), nothing is loaded from the remote server while images are blocked;
// after "allow images" the image loads, and still no script runs.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { deliver, launch, sel, signIn, waitFor } from "./lib.mjs";

// A tiny "remote" web server on loopback that counts what it is asked for.
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=", "base64");
const hits = [];
const server = http.createServer((req, res) => {
	hits.push(req.url);
	if (req.url.startsWith("/x.png")) {
		res.writeHead(200, { "Content-Type": "image/png", "Cache-Control": "no-store" });
		res.end(PNG);
	} else {
		res.writeHead(200, { "Content-Type": "text/plain" });
		res.end("remote\n");
	}
});

let browser, page, port;
const subject = `HTML safety check ${Date.now()}`;

before(async () => {
	await new Promise((r) => server.listen(0, "127.0.0.1", r));
	port = server.address().port;
	const remote = `http://127.0.0.1:${port}`;
	// Every way a mail could run script or reach out. A script that ran
	// tells the parent window (postMessage crosses the sandbox's origin) and
	// asks the remote server for /ran-*.
	const ran = (how) => `parent.postMessage('mk-ran-${how}','*');top.postMessage('mk-ran-${how}','*');` +
		`(new Image()).src='${remote}/ran-${how}';`;
	const html = `<!DOCTYPE html><html><head>
<meta http-equiv="refresh" content="0;url=${remote}/refresh">
<link rel="stylesheet" href="${remote}/style.css">
<style>.bg { background-image: url(${remote}/bg.png); } @import url(${remote}/import.css);</style>
<script>${ran("script")}</script>
<base href="${remote}/base/">
</head><body onload="${ran("onload")}">
<p id="marker">Visible text of the HTML safety mail.</p>
<img id="remote" src="${remote}/x.png" alt="remote image" width="10" height="10">
<img src="nonexistent:x" onerror="${ran("onerror")}" alt="">
<div class="bg">background</div>
<a href="javascript:${ran("href")}" id="jslink">a javascript: link</a>
<svg><script>${ran("svg")}</script><image href="${remote}/svg.png"/></svg>
<iframe src="${remote}/frame.html"></iframe>
<iframe srcdoc="<script>${ran("srcdoc").replace(/"/g, "&quot;")}</script>"></iframe>
<object data="${remote}/object.swf"></object>
<form action="${remote}/form"><input name="q" value="x"><button>go</button></form>
<video src="${remote}/video.mp4" autoplay></video>
<audio src="${remote}/audio.mp3" autoplay></audio>
</body></html>`;
	const raw = [
		"From: Mallory <mallory@example.net>",
		"To: alice@example.org",
		`Subject: ${subject}`,
		`Date: ${new Date().toUTCString().replace("GMT", "+0000")}`,
		`Message-ID: <html-safety-${Date.now()}@example.net>`,
		"MIME-Version: 1.0",
		"Content-Type: text/html; charset=utf-8",
		"Content-Transfer-Encoding: 8bit",
		"",
		html,
		"",
	].join("\r\n");
	deliver(raw);
	({ browser, page } = await launch());
	// Messages a script of the mail would send to the app's window.
	await page.addInitScript(() => {
		window.__mkMessages = [];
		window.addEventListener("message", (e) => {
			if (typeof e.data === "string" && e.data.startsWith("mk-ran-"))
				window.__mkMessages.push(e.data);
		});
	});
	await signIn(page);
});

after(async () => {
	await browser?.close();
	server.close();
});

async function openMail() {
	const row = page.locator(sel("msg-row"), { hasText: subject }).first();
	await row.waitFor({ timeout: 15000 });
	await row.click();
	await page.locator(sel("reader-subject"), { hasText: subject }).waitFor({ timeout: 10000 });
	const body = page.frameLocator(sel("reader-frame")).locator("#marker, p", { hasText: "Visible text of the HTML safety mail" });
	await body.first().waitFor({ timeout: 10000 });
}

test("the mail's scripts do not run and nothing remote loads", async () => {
	await openMail();
	// Give anything that would load or run time to do so.
	await page.waitForTimeout(1500);
	const js = page.frameLocator(sel("reader-frame")).locator("#jslink, a", { hasText: "a javascript: link" });
	if (await js.count())
		await js.first().click({ timeout: 2000 }).catch(() => {});
	await page.waitForTimeout(500);
	assert.deepEqual(await page.evaluate(() => window.__mkMessages), [], "a script of the mail ran");
	assert.deepEqual(hits, [], "the remote server was asked for something while images are blocked");
	// The frame is sandboxed without scripts, and its CSP is in place.
	const sandbox = await page.locator(sel("reader-frame")).getAttribute("sandbox");
	assert.ok(sandbox !== null && !/allow-scripts/.test(sandbox), `sandbox=${sandbox}`);
	assert.ok(!/allow-same-origin/.test(sandbox) || !/allow-scripts/.test(sandbox));
});

// The reader writes the mail into its frame's own document (no src, no srcdoc): that
// document must be made without scripting (the sandbox is there before the frame is),
// with the CSP first in its head. Checked by writing what DOMPurify would never let
// through straight into the frame: none of it runs.
test("the reader's frame: sandboxed without scripts, its CSP first, nothing written into it runs", async () => {
	const frame = page.locator(sel("reader-frame"));
	const attrs = await frame.evaluate((f) => ({ sandbox: f.getAttribute("sandbox"), src: f.getAttribute("src"),
		srcdoc: f.getAttribute("srcdoc"), head: [...f.contentDocument.head.children].map((e) => e.outerHTML) }));
	assert.ok(attrs.sandbox !== null && !/allow-scripts/.test(attrs.sandbox), `sandbox=${attrs.sandbox}`);
	assert.equal(attrs.src, null);
	assert.equal(attrs.srcdoc, null);
	assert.match(attrs.head[0] || "", /^<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data: blob: cid:; style-src 'unsafe-inline'">$/);
	await frame.evaluate((f) => {
		const doc = f.contentDocument;
		const ran = "parent.postMessage('mk-ran-written','*')";
		const s = doc.createElement("script");
		s.textContent = ran;
		doc.body.appendChild(s);
		const div = doc.createElement("div");
		div.innerHTML = `<img src="nonexistent:x" onerror="${ran}"><svg onload="${ran}"></svg>`;
		doc.body.appendChild(div);
		const a = doc.createElement("a");
		a.setAttribute("href", "javascript:" + ran);
		a.setAttribute("target", "_self");
		doc.body.appendChild(a);
		a.click();
	});
	// The app's own script (allowed by the inherited CSP's script-src 'self'): only the
	// sandbox stops it, and a document without scripting does not even fetch it.
	const appScript = await page.evaluate(() => document.querySelector("script[src]").src);
	const fetched = [];
	const onRequest = (req) => req.url() === appScript && req.frame() !== page.mainFrame() && fetched.push(req.url());
	page.on("request", onRequest);
	await frame.evaluate((f, src) => {
		const s = f.contentDocument.createElement("script");
		s.src = src;
		f.contentDocument.body.appendChild(s);
	}, appScript);
	await page.waitForTimeout(1000);
	page.off("request", onRequest);
	assert.deepEqual(fetched, [], "the frame fetched a script (it has scripting)");
	assert.deepEqual(await page.evaluate(() => window.__mkMessages), [], "a script written into the reader's frame ran");
	assert.equal(await frame.evaluate((f) => typeof f.contentWindow.eval === "function" &&
		(() => { try { return f.contentWindow.eval("1 + 1"); } catch { return "refused"; } })()), "refused",
	"the frame's document allows scripts");
	assert.deepEqual(hits, [], "the remote server was asked for something while images are blocked");
});

test("after allowing images the image loads, and still no script runs", async () => {
	const allow = page.locator(sel("allow-images")).first();
	await allow.waitFor({ timeout: 5000 });
	await allow.click();
	await waitFor(() => hits.some((h) => h.startsWith("/x.png")), { timeout: 10000, what: "the remote image request" });
	await page.waitForTimeout(1000);
	assert.deepEqual(await page.evaluate(() => window.__mkMessages), [], "a script of the mail ran");
	const ran = hits.filter((h) => h.startsWith("/ran-") || h.startsWith("/frame") || h.startsWith("/refresh") ||
		h.startsWith("/form") || h.startsWith("/object") || h.startsWith("/style") || h.startsWith("/import"));
	assert.deepEqual(ran, [], "more than images was loaded");
});

test("the app's own window was never navigated away", async () => {
	assert.ok(page.url().startsWith(new URL(page.url()).origin));
	assert.equal(new URL(page.url()).port !== String(port), true);
});
