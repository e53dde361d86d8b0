// Shared helpers of the browser tests (tests/web/*.test.mjs): Debian's
// chromium driven by playwright-core against the real `mailkeep serve`,
// Dovecot and SMTP server that tests/web_test.py (run by tests/test-web.sh)
// started and described in MK_WEB_* environment variables.
//
//   import { env, launch, signIn, jmap, deliver, sync, received, imapctl,
//            axe, screenshot, waitFor, mailbox } from "./lib.mjs";
//
// A test file typically does:
//   const { browser, page } = await launch();
//   after(() => browser.close());
//   await signIn(page);             // env().user / env().password
//   await page.locator('[data-testid="msg-row"]').first().click();
//
// Nothing here fetches anything from anywhere but loopback.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SRC = path.resolve(HERE, "..", "..");

function need(name) {
	const v = process.env[name];
	if (v === undefined || v === "")
		throw new Error(`${name} is not set: run the browser tests through tests/test-web.sh ` +
			`(ctest -R test-web), which starts Dovecot, the SMTP server and serve`);
	return v;
}

let cachedEnv = null;
// The world the shell wrapper made. Every field is a string (or number where
// it says so). The hub user `user` has one account (the Dovecot user
// imapLogin, IMAP over imapUrl, SMTP over smtpUrl), synced; `user2` is a
// second hub user with a password and no account yet (for adding one through
// the web: the Dovecot user imapLogin2 / imapPassword2 is free for it).
export function env() {
	if (cachedEnv)
		return cachedEnv;
	cachedEnv = {
		url: need("MK_WEB_URL"),                 // "http://127.0.0.1:PORT/" (the web app)
		sessionUrl: need("MK_WEB_SESSION_URL"),  // the JMAP session resource
		user: need("MK_WEB_USER"),               // hub user name ("alice")
		password: need("MK_WEB_PASSWORD"),       // its hub password
		token: need("MK_WEB_TOKEN"),             // a device token of user (Bearer), for checks beside the UI
		user2: need("MK_WEB_USER2"),             // a second hub user ("bob"), no account
		password2: need("MK_WEB_PASSWORD2"),
		token2: need("MK_WEB_TOKEN2"),
		imapUrl: need("MK_WEB_IMAP_URL"),        // "imaps://127.0.0.1:PORT" (Dovecot, the test CA)
		imapPort: Number(need("MK_WEB_IMAP_PORT")),
		imapLogin: need("MK_WEB_IMAP_LOGIN"),    // Dovecot user of user's account
		imapPassword: need("MK_WEB_IMAP_PASSWORD"),
		imapLogin2: need("MK_WEB_IMAP_LOGIN2"),  // a Dovecot user no hub account uses yet
		imapPassword2: need("MK_WEB_IMAP_PASSWORD2"),
		caFile: need("MK_WEB_CA_FILE"),          // the test CA (serve trusts it through SSL_CERT_DIR)
		smtpUrl: need("MK_WEB_SMTP_URL"),        // "submissions://127.0.0.1:PORT" (login imapLogin, same password)
		smtpDir: need("MK_WEB_SMTP_DIR"),        // one NNNNNN.json per accepted message (see received())
		fixtureDir: need("MK_WEB_FIXTURE"),      // the Dovecot fixture directory
		bin: need("MK_WEB_BIN"),                 // the mailkeep binary serve runs
		data: need("MK_WEB_DATA"),               // serve's --data directory
		webRoot: need("MK_WEB_ROOT"),            // the built web app serve serves
		inboxCount: Number(need("MK_WEB_INBOX_COUNT")), // messages in user's INBOX at start
		tmp: need("MK_WEB_TMP"),                 // a scratch directory removed after the run
	};
	return cachedEnv;
}

// The OAuth part of the world, or null when web_test.py started none (no
// tests/oauth/node_modules): an authorization server (oidc-provider, its
// pages answer by themselves for its one account) whose app the hub has as
// provider `provider` in mailkeep.conf; a second Dovecot (imapUrl, the test
// CA trusted by serve) whose user `login` signs in with that server's
// tokens only; and a hub user `user` (password, token) with no account yet.
export function oauthEnv() {
	if (!process.env.MK_WEB_OAUTH_IMAP)
		return null;
	return {
		provider: need("MK_WEB_OAUTH_PROVIDER"),       // "test": oauth.test.* in mailkeep.conf
		issuer: need("MK_WEB_OAUTH_ISSUER"),           // "http://127.0.0.1:PORT"
		clientId: need("MK_WEB_OAUTH_CLIENT_ID"),
		clientSecret: need("MK_WEB_OAUTH_CLIENT_SECRET"),
		tokenLog: need("MK_WEB_OAUTH_TOKEN_LOG"),      // every token the server handed out, one a line
		imapUrl: need("MK_WEB_OAUTH_IMAP"),            // "imaps://127.0.0.1:PORT"
		login: need("MK_WEB_OAUTH_LOGIN"),             // its Dovecot user ("alice")
		fixtureDir: need("MK_WEB_OAUTH_FIXTURE"),
		user: need("MK_WEB_OAUTH_USER"),               // hub user ("carol"), no account at start
		password: need("MK_WEB_OAUTH_PASSWORD"),
		token: need("MK_WEB_OAUTH_TOKEN"),             // a device token of user
		certDir: need("MK_WEB_OAUTH_CERT_DIR"),        // serve's SSL_CERT_DIR (both test CAs), for the CLI
	};
}

// Revokes every refresh token the authorization server handed out (the user
// withdrew the hub's access at the provider). Returns how many it revoked.
export async function oauthRevokeAll() {
	const o = oauthEnv();
	const tokens = fs.existsSync(o.tokenLog)
		? fs.readFileSync(o.tokenLog, "utf8").split("\n").filter((t) => t && !t.startsWith("eyJ"))
		: [];
	let n = 0;
	for (const token of tokens) {
		const r = await fetch(o.issuer + "/token/revocation", {
			method: "POST",
			headers: { "Content-Type": "application/x-www-form-urlencoded" },
			body: new URLSearchParams({ token, token_type_hint: "refresh_token",
				client_id: o.clientId, client_secret: o.clientSecret }),
		});
		if (r.ok)
			n++;
	}
	return n;
}

// Chromium from Debian (/usr/bin/chromium, or MK_CHROMIUM), headless.
// --no-sandbox only as root (chromium refuses to start sandboxed as root).
// Options: viewport {width, height} (default 1280x800), colorScheme
// ("light"|"dark"), locale (default "en-US"), and anything else for
// browser.newContext(). Returns {browser, context, page}; close the browser
// when done (after(() => browser.close())).
export async function launch(opts = {}) {
	const { viewport = { width: 1280, height: 800 }, colorScheme = "light", locale = "en-US",
		...rest } = opts;
	const args = [];
	if (typeof process.getuid === "function" && process.getuid() === 0)
		args.push("--no-sandbox");
	const browser = await chromium.launch({
		executablePath: process.env.MK_CHROMIUM || "/usr/bin/chromium",
		headless: true,
		args,
	});
	const context = await browser.newContext({ viewport, colorScheme, locale, ...rest });
	const page = await context.newPage();
	watchPage(page);
	return { browser, context, page };
}

// Every page's uncaught errors and console errors are collected, so a test
// can assert none happened: pageErrors(page) → ["pageerror: ..." |
// "console: TEXT @ URL"]. Left out: what a mail shown in the reader caused
// (messages from about:srcdoc, e.g. the CSP blocking its remote images: that
// is the reader working), and the 401 of the app asking whether it is signed
// in (GET /mailkeep/session) while it is not, a sign-in's 503 that signIn()
// tried again, and the browser's own request
// for /favicon.ico. pageErrors(page, {all: true})
// gives everything.
const errorsOf = new WeakMap();
function watchPage(page) {
	const errs = [];
	errorsOf.set(page, errs);
	page.on("pageerror", (e) => errs.push({ text: "pageerror: " + (e && e.message), url: "" }));
	page.on("console", (m) => {
		if (m.type() === "error")
			errs.push({ text: "console: " + m.text(), url: (m.location() && m.location().url) || "" });
	});
	page.on("response", (r) => {
		if (r.status() >= 400)
			errs.push({ text: `http: ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`, url: r.url(), status: r.status() });
	});
}
export function pageErrors(page, { all = false } = {}) {
	const errs = errorsOf.get(page) || [];
	const expected = (e) => e.url === "about:srcdoc" ||
		/^console: Failed to load resource/.test(e.text) || // said again as http: below
		(e.status === 401 && /^http: 401 GET \/mailkeep\/session$/.test(e.text)) ||
		/^http: 503 POST \/mailkeep\/session$/.test(e.text) || // tried again by signIn()
		/^http: 40[14] GET \/favicon\.ico$/.test(e.text); // the browser's own guess
	return errs.filter((e) => all || !expected(e)).map((e) => e.text + (e.url && !e.text.startsWith("http:") ? " @ " + e.url : ""));
}

export const sel = (testid) => `[data-testid="${testid}"]`;

// Signs in through the sign-in page: opens env().url, fills signin-user and
// signin-password, presses signin-submit, and waits until the form is gone
// and the app's navigation is shown. Returns the page. A 503 (every Argon2id
// turn taken for 10 s: a loaded machine) is tried again, twice.
export async function signIn(page, user = env().user, password = env().password,
	{ timeout = 30000 } = {}) {
	if (!page.url().startsWith(env().url))
		await page.goto(env().url);
	for (let attempt = 1; ; attempt++) {
		await page.locator(sel("signin-user")).fill(user);
		await page.locator(sel("signin-password")).fill(password);
		const [resp] = await Promise.all([
			page.waitForResponse((r) => new URL(r.url()).pathname === "/mailkeep/session" &&
				r.request().method() === "POST", { timeout }),
			page.locator(sel("signin-submit")).click(),
		]);
		if (resp.status() === 503 && attempt < 3) {
			await page.waitForTimeout(2000);
			continue;
		}
		if (resp.status() !== 200)
			throw new Error(`signIn(${user}): POST /mailkeep/session answered ${resp.status()}: ${await resp.text()}`);
		break;
	}
	await page.locator(sel("signin-submit")).waitFor({ state: "detached", timeout });
	await page.locator('[data-testid^="nav-"]').first().waitFor({ state: "visible", timeout });
	return page;
}

// The mailbox entry of the folder tree with this role ("inbox", "sent", ...)
// or, given {name}, this name.
export function mailbox(page, { role, name } = { role: "inbox" }) {
	if (name !== undefined)
		return page.locator(`${sel("mailbox")}[data-name="${name}"]`).first();
	return page.locator(`${sel("mailbox")}[data-role="${role}"]`).first();
}

// --- the server beside the browser -----------------------------------------

let sessionCache = new Map();
// The JMAP session object for a token (default env().token), over Bearer.
export async function session(token = env().token) {
	if (sessionCache.has(token))
		return sessionCache.get(token);
	const r = await fetch(env().sessionUrl, { headers: { Authorization: "Bearer " + token } });
	if (!r.ok)
		throw new Error(`session: HTTP ${r.status}`);
	const s = await r.json();
	sessionCache.set(token, s);
	return s;
}

// A JMAP request with a device token (default env().token): calls is
// [[name, args, tag], ...]; using defaults to the mail and core
// capabilities plus "urn:mailkeep:manage" when the server has it. Returns the
// methodResponses. For checking the server's side of what the UI did.
export async function jmap(calls, { token = env().token, using } = {}) {
	const s = await session(token);
	using = using || ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
		"urn:ietf:params:jmap:submission",
		...(s.capabilities["urn:mailkeep:manage"] ? ["urn:mailkeep:manage"] : [])]
		.filter((c) => s.capabilities[c]);
	const r = await fetch(s.apiUrl, {
		method: "POST",
		headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
		body: JSON.stringify({ using, methodCalls: calls }),
	});
	if (!r.ok)
		throw new Error(`jmap: HTTP ${r.status}: ${await r.text()}`);
	return (await r.json()).methodResponses;
}

// The primary mail account id of a token's user.
export async function mailAccountId(token = env().token) {
	return (await session(token)).primaryAccounts["urn:ietf:params:jmap:mail"];
}

// Runs `python3 tests/fixture/imapctl.py FIXTURE --user U ARGS...` (Dovecot as
// another client would see it) and returns its stdout.
export function imapctl(args, { user = env().imapLogin, input } = {}) {
	return execFileSync("python3", [path.join(SRC, "tests", "fixture", "imapctl.py"),
		env().fixtureDir, "--user", user, ...args], { input, encoding: "utf8" });
}

// mailkeep CLI against serve's data directory (beside the running serve, as
// an administrator would): returns stdout.
export function mk(args, { input } = {}) {
	return execFileSync(env().bin, ["--data", env().data, ...args],
		{ input: input ?? "", encoding: "utf8" });
}

// Syncs a hub user's accounts now (`mailkeep sync`); serve sees the changes
// and pushes StateChange to the web app's event stream.
export function sync(user = env().user) {
	mk(["sync", "--user", user, "--quiet"]);
}

// Puts a message (string or Buffer, CRLF line ends preferred) into a folder
// of the Dovecot user (default imapLogin) as another client would, then syncs
// the hub user. Returns the new IMAP UID.
export function deliver(raw, { folder = "INBOX", login = env().imapLogin, user = env().user,
	doSync = true } = {}) {
	const f = path.join(env().tmp, `deliver-${process.pid}-${Date.now()}-${Math.random()}.eml`);
	fs.writeFileSync(f, typeof raw === "string" ? raw.replace(/\r?\n/g, "\r\n") : raw);
	try {
		const uid = imapctl(["append", folder, f], { user: login }).trim();
		if (doSync)
			sync(user);
		return Number(uid);
	} finally {
		fs.rmSync(f, { force: true });
	}
}

// The messages the SMTP server accepted so far, oldest first: [{mail_from,
// rcpt_tos, login, data}] (data: the message as latin-1 text).
export function received() {
	const dir = env().smtpDir;
	if (!fs.existsSync(dir))
		return [];
	return fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort()
		.map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")));
}

// Polls fn (sync or async) until it returns a truthy value; returns it.
// Throws after timeout ms with what.
export async function waitFor(fn, { timeout = 15000, interval = 200, what = "condition" } = {}) {
	const end = Date.now() + timeout;
	let last;
	for (;;) {
		try {
			last = await fn();
			if (last)
				return last;
		} catch (e) {
			last = e;
		}
		if (Date.now() > end)
			throw new Error(`timed out waiting for ${what}` + (last instanceof Error ? `: ${last.message}` : ""));
		await new Promise((r) => setTimeout(r, interval));
	}
}

// --- accessibility and screenshots -----------------------------------------

const AXE_SOURCE = fs.readFileSync(path.join(HERE, "node_modules", "axe-core", "axe.min.js"), "utf8");

// Runs axe-core on the page's current state (the main document; sandboxed
// mail frames run no script, so they are left out) and returns the
// violations of impact "serious" or "critical" as
// [{id, impact, help, nodes: [target...]}]. axe is evaluated through the
// DevTools protocol, so the app's CSP (script-src 'self') is left as it is.
// opts: {exclude: [selector...], impacts: ["serious","critical"]}.
export async function axe(page, { exclude = [], impacts = ["serious", "critical"] } = {}) {
	const loaded = await page.evaluate(() => typeof window.axe !== "undefined");
	if (!loaded)
		await page.evaluate(AXE_SOURCE);
	const result = await page.evaluate(async ({ exclude }) => {
		const ctx = exclude.length ? { include: [document], exclude: exclude.map((s) => [s]) } : document;
		const r = await window.axe.run(ctx, { iframes: false, resultTypes: ["violations"] });
		return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
			nodes: v.nodes.map((n) => n.target.join(" ")) }));
	}, { exclude });
	return result.filter((v) => impacts.includes(v.impact));
}

// Formats axe() violations for an assertion message.
export function formatViolations(vs) {
	return vs.map((v) => `${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.slice(0, 5).join("\n    ")}`).join("\n");
}

// When MK_SCREENSHOTS=1: saves a PNG of the page (viewport, or fullPage) as
// docs/screenshots/NAME.png (or MK_SCREENSHOT_DIR). Otherwise does nothing.
export async function screenshot(page, name, { fullPage = false } = {}) {
	if (process.env.MK_SCREENSHOTS !== "1")
		return null;
	const dir = process.env.MK_SCREENSHOT_DIR || path.join(SRC, "docs", "screenshots");
	fs.mkdirSync(dir, { recursive: true });
	const file = path.join(dir, name.replace(/[^A-Za-z0-9._-]/g, "_") + ".png");
	// Caret and animations make screenshots differ from run to run.
	await page.screenshot({ path: file, fullPage, animations: "disabled", caret: "hide" });
	return file;
}

// --- requests ---------------------------------------------------------------

// Records the JMAP API requests a page makes from now on: returns
// {entries, stop()}; entries are {method: "Email/query,Email/get",
// requestBytes, responseBytes, ms}. For the benchmark and for tests that
// count requests.
export function recordJmap(page) {
	const entries = [];
	const onFinished = async (req) => {
		if (!/\/jmap\/api\/?$/.test(new URL(req.url()).pathname))
			return;
		let methods = "?";
		const body = req.postData() || "";
		try {
			methods = JSON.parse(body).methodCalls.map((c) => c[0]).join(",");
		} catch { /* not JSON */ }
		const resp = await req.response();
		let responseBytes = 0;
		try {
			responseBytes = (await resp.body()).length;
		} catch { /* gone */ }
		const t = req.timing();
		entries.push({ methods, requestBytes: Buffer.byteLength(body), responseBytes,
			ms: t.responseEnd >= 0 ? t.responseEnd : null });
	};
	page.on("requestfinished", onFinished);
	return { entries, stop: () => page.off("requestfinished", onFinished) };
}

// A scratch file path under env().tmp.
export function tmpFile(name) {
	return path.join(env().tmp || os.tmpdir(), name);
}
