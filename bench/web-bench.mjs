// The web app's figures on a large mailbox (run by bench/web-bench.sh, which
// seeds the hub, starts serve --web-root and sets MK_BENCH_*):
//   bundle sizes (gzip -9), first inbox render after sign-in (warm cache)
//   against the bare JMAP round trips of the same run, message open p50,
//   and the JMAP requests each screen makes with their sizes.
// Timings are taken inside the page (performance.now(), a MutationObserver
// for the first row, then one animation frame for the paint), not through
// the DevTools protocol's polling.
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { launch, sel } from "../tests/web/lib.mjs";

const E = process.env;
const URL0 = E.MK_BENCH_URL;
const USER = E.MK_BENCH_USER, PASSWORD = E.MK_BENCH_PASSWORD, TOKEN = E.MK_BENCH_TOKEN;
const WEB = E.MK_BENCH_WEB_ROOT;
const COUNT = Number(E.MK_BENCH_COUNT || 0);
const RUNS = Number(E.MK_BENCH_RUNS || 10);
const OPENS = Number(E.MK_BENCH_OPENS || 30);

const out = [];
function say(line = "") {
	out.push(line);
	console.log(line);
}
const median = (xs) => {
	const s = [...xs].sort((a, b) => a - b);
	return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const pct = (xs, p) => {
	const s = [...xs].sort((a, b) => a - b);
	return s.length ? s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)] : NaN;
};
const ms = (x) => (Number.isFinite(x) ? x.toFixed(1).padStart(7) + " ms" : "      - ms");
const kb = (x) => (x / 1024).toFixed(1) + " KB";
const verdict = (ok) => (ok ? "ok" : "MISSED");

// --- 1. bundle --------------------------------------------------------------
function bundle() {
	say("== bundle (gzip -9)");
	const sums = { js: [0, 0], css: [0, 0], other: [0, 0] };
	const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) =>
		e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]);
	for (const f of walk(WEB).sort()) {
		const data = fs.readFileSync(f);
		const gz = zlib.gzipSync(data, { level: 9 }).length;
		const ext = path.extname(f).slice(1);
		const k = ext === "js" ? "js" : ext === "css" ? "css" : "other";
		sums[k][0] += data.length;
		sums[k][1] += gz;
		say(`  ${path.relative(WEB, f).padEnd(34)} ${kb(data.length).padStart(10)}  gzip ${kb(gz).padStart(9)}`);
	}
	say(`  script total ${kb(sums.js[0])}, gzip ${kb(sums.js[1])}; style gzip ${kb(sums.css[1])}` +
		`   target: script <= 150 KB gzip: ${verdict(sums.js[1] <= 150 * 1024)}`);
	return sums;
}

// --- the page probe ---------------------------------------------------------
// Installed before any script of the app on every navigation: notes when the
// first message row appears (DOM) and the frame after it (paint).
function probe() {
	window.__mk = { rows: null, paint: null };
	const look = () => {
		if (window.__mk.rows === null && document.querySelector('[data-testid="msg-row"]')) {
			window.__mk.rows = performance.now();
			requestAnimationFrame(() => setTimeout(() => { window.__mk.paint = performance.now(); }, 0));
			obs.disconnect();
		}
	};
	const obs = new MutationObserver(look);
	const start = () => obs.observe(document.documentElement, { childList: true, subtree: true });
	if (document.documentElement)
		start();
	else
		document.addEventListener("readystatechange", start, { once: true });
}

// Every request to the server but the static files, with sizes: a screen's
// "JMAP requests". Returns {entries, stop}.
function recordRequests(page) {
	const entries = [];
	const on = async (req) => {
		const u = new URL(req.url());
		if (u.pathname === "/" || u.pathname === "/index.html" || u.pathname.startsWith("/assets/"))
			return;
		let what = `${req.method()} ${u.pathname}`;
		const body = req.postData() || "";
		try {
			const j = JSON.parse(body);
			if (j.methodCalls)
				what = j.methodCalls.map((c) => c[0]).join(" + ");
		} catch { /* not JSON */ }
		let sizes = { requestBodySize: body.length, responseBodySize: 0 };
		let responseBytes = 0;
		try {
			sizes = await req.sizes();
			responseBytes = (await (await req.response()).body()).length;
		} catch { /* gone */ }
		const t = req.timing();
		entries.push({ what, method: req.method(), path: u.pathname, body, requestBytes: Buffer.byteLength(body),
			responseBytes, wireBytes: sizes.responseBodySize, ms: t.responseEnd >= 0 ? t.responseEnd : NaN });
	};
	page.on("requestfinished", on);
	return { entries, stop: () => page.off("requestfinished", on) };
}

function printRequests(title, entries) {
	say(`  ${title}: ${entries.length} request${entries.length === 1 ? "" : "s"}`);
	for (const e of entries)
		say(`    ${e.what.slice(0, 56).padEnd(56)} req ${String(e.requestBytes).padStart(6)} B  resp ${String(e.responseBytes).padStart(7)} B ${ms(e.ms)}` +
			(e.wireBytes && e.wireBytes !== e.responseBytes ? ` (${e.wireBytes} B on the wire)` : ""));
}

// --- bare JMAP round trips ---------------------------------------------------
const H = { Authorization: "Bearer " + TOKEN, "Content-Type": "application/json" };
async function timed(fn) {
	const t0 = performance.now();
	await fn();
	return performance.now() - t0;
}
async function bareMinimal() {
	// What any client must ask to show the top of an inbox: the session, then
	// the mailboxes + the newest 50 ids + their list properties in one request.
	let session;
	const tSession = await timed(async () => {
		session = await (await fetch(new URL("/.well-known/jmap", URL0), { headers: H })).json();
	});
	const acc = session.primaryAccounts["urn:ietf:params:jmap:mail"];
	// Mailbox ids first (the app knows them from its folder list too).
	let inbox;
	const tMb = await timed(async () => {
		const r = await (await fetch(session.apiUrl, { method: "POST", headers: H, body: JSON.stringify({
			using: ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
			methodCalls: [["Mailbox/get", { accountId: acc, ids: null }, "m"]] }) })).json();
		inbox = r.methodResponses[0][1].list.find((m) => m.role === "inbox");
	});
	let n = 0;
	const tList = await timed(async () => {
		const r = await (await fetch(session.apiUrl, { method: "POST", headers: H, body: JSON.stringify({
			using: ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
			methodCalls: [
				["Email/query", { accountId: acc, filter: { inMailbox: inbox.id }, position: 0, limit: 50,
					sort: [{ property: "receivedAt", isAscending: false }], calculateTotal: true }, "q"],
				["Email/get", { accountId: acc, "#ids": { resultOf: "q", name: "Email/query", path: "/ids" },
					properties: ["threadId", "mailboxIds", "keywords", "from", "subject", "receivedAt", "preview", "hasAttachment", "size"] }, "g"],
			] }) })).json();
		n = r.methodResponses[1][1].list.length;
	});
	// The same with threads collapsed (one row per thread, as the app lists).
	const tThreads = await timed(async () => {
		const r = await (await fetch(session.apiUrl, { method: "POST", headers: H, body: JSON.stringify({
			using: ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
			methodCalls: [
				["Email/query", { accountId: acc, filter: { inMailbox: inbox.id }, position: 0, limit: 50, collapseThreads: true,
					sort: [{ property: "receivedAt", isAscending: false }], calculateTotal: true }, "q"],
				["Email/get", { accountId: acc, "#ids": { resultOf: "q", name: "Email/query", path: "/ids" },
					properties: ["threadId", "mailboxIds", "keywords", "from", "subject", "receivedAt", "preview", "hasAttachment", "size"] }, "g"],
			] }) })).json();
		void r;
	});
	return { tSession, tMb, tList, tThreads, total: tSession + tMb + tList, n, total_emails: inbox.totalEmails };
}

// What any client must ask to show one message: its headers, body values
// and body structure, and its thread, in one request.
async function bareMessage(id) {
	const session = await (await fetch(new URL("/.well-known/jmap", URL0), { headers: H })).json();
	const acc = session.primaryAccounts["urn:ietf:params:jmap:mail"];
	return timed(async () => {
		const r = await fetch(session.apiUrl, { method: "POST", headers: H, body: JSON.stringify({
			using: ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
			methodCalls: [
				["Email/get", { accountId: acc, ids: [id], properties: ["id", "threadId", "mailboxIds", "keywords", "from", "to",
					"cc", "replyTo", "subject", "receivedAt", "sentAt", "htmlBody", "textBody", "attachments", "bodyValues"],
				fetchHTMLBodyValues: true, fetchTextBodyValues: true, maxBodyValueBytes: 262144 }, "e"],
				["Thread/get", { accountId: acc, "#ids": { resultOf: "e", name: "Email/get", path: "/list/*/threadId" } }, "t"],
			] }) });
		await r.arrayBuffer();
	});
}

// The app's own requests of a screen, sent again from node (Bearer instead of
// the cookie, no browser): the server's and the network's share of the screen.
async function bareReplay(entries) {
	let total = 0;
	for (const e of entries) {
		if (e.path === "/mailkeep/session")
			continue; // the sign-in itself (Argon2id), timed separately
		const init = { method: e.method, headers: H };
		if (e.method === "POST")
			init.body = e.body;
		total += await timed(async () => {
			const r = await fetch(new URL(e.path, URL0), init);
			await r.arrayBuffer();
		});
	}
	return total;
}

// --- 2. first render after sign-in --------------------------------------------
async function signInOnce(page, context) {
	await context.clearCookies();
	await page.goto(URL0);
	await page.locator(sel("signin-user")).waitFor();
	await page.locator(sel("signin-user")).fill(USER);
	await page.locator(sel("signin-password")).fill(PASSWORD);
	const rec = recordRequests(page);
	const t0 = await page.evaluate(() => performance.now());
	await page.locator(sel("signin-submit")).click();
	let automatic = true;
	try {
		await page.waitForFunction(() => window.__mk && window.__mk.paint !== null, null, { timeout: 15000 });
	} catch {
		// The app does not open the inbox by itself: open it (and say so).
		automatic = false;
		await page.locator(`${sel("mailbox")}[data-role="inbox"]`).first().click();
		await page.waitForFunction(() => window.__mk && window.__mk.paint !== null, null, { timeout: 15000 });
	}
	// Let the screen's follow-up requests (counts, the rest of a window) end.
	await page.waitForLoadState("networkidle").catch(() => {});
	rec.stop();
	const r = await page.evaluate((t0) => {
		const signin = performance.getEntriesByType("resource")
			.filter((e) => new URL(e.name).pathname === "/mailkeep/session" && e.startTime >= t0);
		const end = signin.length ? signin[signin.length - 1].responseEnd : null;
		return { click: t0, signedIn: end, rows: window.__mk.rows, paint: window.__mk.paint };
	}, t0);
	return { ...r, automatic, entries: rec.entries };
}

async function reloadSignedIn(page) {
	const rec = recordRequests(page);
	await page.goto(URL0);
	await page.waitForFunction(() => window.__mk && window.__mk.paint !== null, null, { timeout: 15000 });
	await page.waitForLoadState("networkidle").catch(() => {});
	rec.stop();
	const r = await page.evaluate(() => ({ paint: window.__mk.paint, rows: window.__mk.rows,
		nav: performance.getEntriesByType("navigation")[0]?.responseEnd }));
	return { ...r, entries: rec.entries };
}

// --- 3. message open ------------------------------------------------------------
// Clicks a row and waits until the reader frame shows its message, then one frame for
// the paint. Times are from the click. Two kinds of reader frame are told apart: one
// the app writes into (its data-email-id attribute names the message written, in the
// same task as the write), and a srcdoc frame (new srcdoc, then its load event).
// `pick`: {seq: i} the i-th row of one-message threads in the DOM (cycling), or
// {index: n} the row at list position n. Returns also how the reader got the message
// (its data-shown: "kept" = fetched ahead or opened before, "fetched" = asked for on
// the click; none for an app without it).
async function openRow(page, pick) {
	return page.evaluate((pick) => new Promise((resolve, reject) => {
		// Rows of one-message threads, so that each open shows a new frame (a
		// thread's reader may keep the frames of its other messages).
		const rows = [...document.querySelectorAll('[data-testid="msg-row"]')]
			.filter((r) => !r.querySelector(".thread-count"));
		if (!rows.length)
			return reject(new Error("no rows"));
		let row;
		if (pick.index !== undefined) {
			row = rows.find((r) => Number(r.getAttribute("data-index")) === pick.index);
			if (!row)
				return reject(new Error(`no row at ${pick.index}`));
		} else {
			const i = pick.seq;
			// Not the message open now (the list's window moves as rows are read).
			row = rows[i % rows.length];
			for (let k = 1; k < rows.length && location.hash.includes("/" + row.getAttribute("data-id") + "/"); k++)
				row = rows[(i + k) % rows.length];
		}
		const id = row.getAttribute("data-id");
		const state = (f) => f.getAttribute("data-email-id") ?? f.getAttribute("srcdoc");
		const oldFrames = new Map([...document.querySelectorAll('[data-testid="reader-frame"]')].map((f) => [f, state(f)]));
		const oldFrame = document.querySelector('[data-testid="reader-frame"]');
		let watching = null, done = false, shown = null;
		const finish = (how) => {
			if (done)
				return;
			done = true;
			obs.disconnect();
			const loaded = performance.now() - t0;
			const source = document.querySelector(".reader")?.getAttribute("data-shown") || null;
			requestAnimationFrame(() => setTimeout(() => resolve({ id, index: Number(row.getAttribute("data-index")), shown,
				loaded, paint: performance.now() - t0, how, source }), 0));
		};
		const check = () => {
			const frames = [...document.querySelectorAll('[data-testid="reader-frame"]')];
			const written = frames.find((f) => f.getAttribute("data-email-id") === id && (!oldFrames.has(f) || oldFrames.get(f) !== id));
			if (written) {
				shown = performance.now() - t0;
				finish("written");
				return;
			}
			const f = frames.find((f) => !f.hasAttribute("data-email-id") && f.hasAttribute("srcdoc") &&
				(!oldFrames.has(f) || oldFrames.get(f) !== f.getAttribute("srcdoc")));
			if (!f || f === watching)
				return;
			watching = f;
			shown = performance.now() - t0;
			f.addEventListener("load", () => finish("load"), { once: true });
		};
		const obs = new MutationObserver(check);
		obs.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["srcdoc", "src", "data-email-id"] });
		const t0 = performance.now();
		row.click();
		check();
		setTimeout(() => {
			if (!done && watching)
				finish("no load event within 3 s");
		}, 3000);
		setTimeout(() => {
			if (!done) {
				done = true;
				obs.disconnect();
				const f = document.querySelector('[data-testid="reader-frame"]');
				reject(new Error(`the message did not open within 10 s (row ${JSON.stringify(pick)} ${id}, ` +
					`location ${location.hash}, frame ${f ? "same " + (f === oldFrame) : "none"}, ` +
					`subject ${document.querySelector('[data-testid="reader-subject"]')?.textContent})`));
			}
		}, 10000);
	}), pick);
}

// Scrolls the message list so that list position n is at the top, and waits for
// the rows from n to n + 20 to be there (not placeholders).
async function scrollListTo(page, n) {
	await page.evaluate((n) => {
		const row = document.querySelector('[data-testid="msg-row"]');
		let el = row && row.parentElement;
		while (el && !(el.scrollHeight > el.clientHeight + 10 && /(auto|scroll)/.test(getComputedStyle(el).overflowY)))
			el = el.parentElement;
		if (el)
			el.scrollTop = n * 72;
	}, n);
	await page.waitForFunction((n) => {
		const have = new Set([...document.querySelectorAll('[data-testid="msg-row"]')].map((r) => Number(r.getAttribute("data-index"))));
		for (let i = n; i < n + 12; i++)
			if (!have.has(i))
				return false;
		return true;
	}, n, { timeout: 15000 });
	await page.waitForLoadState("networkidle").catch(() => {});
}

async function main() {
	say(`web-bench: ${COUNT} messages in INBOX, ${RUNS} runs, ${OPENS} message opens`);
	const sums = bundle();
	const { browser, context, page } = await launch({ viewport: { width: 1280, height: 900 } });
	await context.addInitScript(probe);
	try {
		// Warm-up: the browser's cache (assets), the server's page cache and
		// parse caches, one full sign-in.
		await signInOnce(page, context);

		say("");
		say("== first render of the inbox after sign-in (warm cache)");
		const runs = [];
		for (let i = 0; i < RUNS; i++)
			runs.push(await signInOnce(page, context));
		const render = runs.map((r) => r.paint - r.signedIn);
		const click = runs.map((r) => r.paint - r.click);
		const signin = runs.map((r) => r.signedIn - r.click);
		const bare = [], replay = [], bareThreads = [];
		for (let i = 0; i < RUNS; i++) {
			const b = await bareMinimal();
			bare.push(b.total);
			bareThreads.push(b.tSession + b.tMb + b.tThreads);
			replay.push(await bareReplay(runs[i].entries));
		}
		const b1 = await bareMinimal();
		say(`  sign-in response to inbox painted     p50 ${ms(median(render))}  p95 ${ms(pct(render, 95))}` +
			`   target <= 300 ms: ${verdict(median(render) <= 300)}`);
		say(`  click on "sign in" to inbox painted   p50 ${ms(median(click))}   (the sign-in POST itself, Argon2id: p50 ${ms(median(signin))})`);
		say(`  bare JMAP, minimal (session + Mailbox/get + Email/query+get 50), node fetch:  p50 ${ms(median(bare))}` +
			`  (session ${ms(b1.tSession)}, mailboxes ${ms(b1.tMb)}, 50 rows ${ms(b1.tList)}; ${b1.total_emails} in INBOX)`);
		say(`  bare JMAP, the same with collapseThreads (one row per thread, as the app):     p50 ${ms(median(bareThreads))}`);
		say(`  bare JMAP, the app's own requests of the screen replayed in a row:           p50 ${ms(median(replay))}`);
		say(`  render / bare minimal: ${(median(render) / median(bare)).toFixed(2)}   render / bare with threads: ${(median(render) / median(bareThreads)).toFixed(2)}` +
			`   render / the same requests bare: ${(median(render) / median(replay)).toFixed(2)}`);
		if (!runs[0].automatic)
			say("  (the app did not open the inbox after sign-in by itself: the time includes a click on the inbox)");

		const reloads = [];
		for (let i = 0; i < RUNS; i++)
			reloads.push(await reloadSignedIn(page));
		say(`  opening the app signed in (reload, the cookie): navigation to inbox painted p50 ${ms(median(reloads.map((r) => r.paint)))}`);

		say("");
		say("== message open (click on a row to the message shown in the reader)");
		say("  warm: the rows in order from the top (each the one after the one open, as with the keyboard or");
		say("  reading down a list: what the app fetched ahead), then cold: rows far from any opened before,");
		say("  every third position from row 100 on (nothing fetched ahead)");
		const opens = [];
		const openRec = recordRequests(page);
		let firstOpenEntries = null;
		// Opens with a pause between them, as a reader's (and the app's fetching ahead) has.
		const PAUSE = Number(E.MK_BENCH_OPEN_PAUSE_MS || 300);
		for (let i = 0; i < OPENS; i++) {
			const rows = await page.locator(sel("msg-row")).count();
			if (rows === 0) {
				// A one-pane layout: back to the list.
				await page.goBack();
				await page.locator(sel("msg-row")).first().waitFor();
			}
			opens.push(await openRow(page, { seq: i }));
			if (i === 0) {
				await page.waitForLoadState("networkidle").catch(() => {});
				firstOpenEntries = [...openRec.entries];
			}
			await page.waitForTimeout(PAUSE);
		}
		openRec.stop();
		const cold = [];
		for (let base = 100; cold.length < OPENS && base < 100 + 60 * 30; base += 30) {
			await scrollListTo(page, base);
			for (let n = base; n < base + 30 && cold.length < OPENS; n += 3) {
				const ok = await page.evaluate((n) => {
					const r = document.querySelector(`[data-testid="msg-row"][data-index="${n}"]`);
					return !!r && !r.querySelector(".thread-count");
				}, n);
				if (!ok)
					continue;
				cold.push(await openRow(page, { index: n }));
				await page.waitForTimeout(PAUSE);
			}
		}
		const seen = new Set();
		const first = opens.filter((o) => !seen.has(o.id) && seen.add(o.id));
		const again = opens.slice(first.length);
		const loaded = opens.map((o) => o.paint);
		const p = (xs) => `p50 ${ms(median(xs))}  p95 ${ms(pct(xs, 95))}`;
		const by = (list, src) => list.filter((o) => (o.source || "fetched") === src).map((o) => o.paint);
		say(`  click to message painted, rows in order (${loaded.length})  ${p(loaded)}` +
			`   target p50 <= 100 ms: ${verdict(median(loaded) <= 100)}`);
		say(`    first opens (${first.length}): fetched on the click (${by(first, "fetched").length}) ${p(by(first, "fetched"))}`);
		say(`                     fetched ahead (${by(first, "kept").length}) ${p(by(first, "kept"))}`);
		say(`    opened again (${again.length})                          ${p(again.map((o) => o.paint))}`);
		const coldPaint = cold.map((o) => o.paint);
		say(`  click to message painted, cold: far rows (${cold.length})    ${p(coldPaint)}` +
			(cold.some((o) => o.source === "kept") ? `  (${cold.filter((o) => o.source === "kept").length} were kept: none should)` : ""));
		const all = [...loaded, ...coldPaint];
		say(`  click to message painted, all opens (${all.length})         ${p(all)}`);
		say(`  click to the message in the reader frame, p50: in order ${ms(median(opens.map((o) => o.shown)))}, cold ${ms(median(cold.map((o) => o.shown)))}`);
		const bareOpen = [];
		for (const o of cold.slice(0, 20))
			bareOpen.push(await bareMessage(o.id));
		say(`  bare JMAP: Email/get of the message with its body values (and Thread/get), node fetch: p50 ${ms(median(bareOpen))}` +
			`   cold open / bare: ${(median(coldPaint) / median(bareOpen)).toFixed(2)}`);
		const how = [...new Set([...opens, ...cold].map((o) => o.how))];
		say(`  (the reader frame: ${how.join(", ")})`);

		say("");
		say("== JMAP requests per screen, in the order they ended (request body, response body, time from request start to response end; from the browser's request events)");
		const last = runs[runs.length - 1];
		printRequests("sign-in to the inbox", last.entries);
		printRequests("opening the app signed in (reload)", reloads[reloads.length - 1].entries);
		printRequests("opening a message (the first)", firstOpenEntries || []);
		await screens(page);

		say("");
		say(`summary: script ${kb(sums.js[1])} gzip (<= 150 KB: ${verdict(sums.js[1] <= 150 * 1024)}); ` +
			`first render ${median(render).toFixed(0)} ms (<= 300 ms: ${verdict(median(render) <= 300)}), ` +
			`${(median(render) / median(bare)).toFixed(1)}x the bare round trips; ` +
			`message open p50 ${median(loaded).toFixed(0)} ms (<= 100 ms: ${verdict(median(loaded) <= 100)}), ` +
			`cold ${median(coldPaint).toFixed(0)} ms`);
	} finally {
		await browser.close();
	}
}

// Other screens: scrolling far into the list, search, the other pages of
// the navigation.
async function screens(page) {
	// Scroll to the middle of the list: the virtual list fetches that window.
	const rec = recordRequests(page);
	const before = new Set(await page.locator(sel("msg-row")).evaluateAll((rs) => rs.map((r) => r.getAttribute("data-id"))));
	const t = await page.evaluate(async () => {
		const row = document.querySelector('[data-testid="msg-row"]');
		let el = row && row.parentElement;
		while (el && !(el.scrollHeight > el.clientHeight + 10 && /(auto|scroll)/.test(getComputedStyle(el).overflowY)))
			el = el.parentElement;
		if (!el)
			return null;
		const t0 = performance.now();
		el.scrollTop = el.scrollHeight / 2;
		return { t0, height: el.scrollHeight };
	});
	if (t) {
		try {
			await page.waitForFunction((before) => [...document.querySelectorAll('[data-testid="msg-row"]')]
				.some((r) => r.getAttribute("data-id") && !before.includes(r.getAttribute("data-id")) &&
					r.getBoundingClientRect().top >= 0 && r.getBoundingClientRect().top < window.innerHeight),
				[...before], { timeout: 10000 });
			const t1 = await page.evaluate(() => performance.now());
			await page.waitForLoadState("networkidle").catch(() => {});
			rec.stop();
			say(`  scrolling to the middle of the list (${t.height}px): new rows after ${(t1 - t.t0).toFixed(0)} ms`);
			printRequests("scrolling to the middle of the list", rec.entries);
		} catch (e) {
			rec.stop();
			say(`  scrolling to the middle of the list: no new rows (${e.message.split("\n")[0]})`);
		}
	} else {
		rec.stop();
		say("  scrolling: no scrollable list found");
	}
	// Search.
	const search = page.locator(sel("search-input")).first();
	if (await search.count()) {
		const rs = recordRequests(page);
		const t0 = Date.now();
		await search.fill("invoice budget");
		await search.press("Enter");
		await page.waitForLoadState("networkidle").catch(() => {});
		await page.locator(sel("msg-row")).first().waitFor({ timeout: 10000 }).catch(() => {});
		rs.stop();
		say(`  search "invoice budget": rows after ${Date.now() - t0} ms (node-side clock)`);
		printRequests("search", rs.entries);
	}
	// Every page of the navigation.
	const navs = await page.locator('[data-testid^="nav-"]').evaluateAll((ns) => ns.map((n) => n.getAttribute("data-testid")));
	for (const id of [...new Set(navs)]) {
		const r = recordRequests(page);
		await page.locator(sel(id)).first().click().catch(() => {});
		await page.waitForLoadState("networkidle").catch(() => {});
		await page.waitForTimeout(300);
		r.stop();
		printRequests(`page ${id.replace(/^nav-/, "")}`, r.entries);
	}
}

main().catch((e) => {
	console.error("web-bench:", e);
	process.exit(1);
});
