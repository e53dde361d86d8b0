// PDF preview in the real browser: a mail with a PDF attachment (a page filled
// red with "Hello mailkeep") shows a Preview button; it opens the in-app
// viewer, a modal dialog framing GET /jmap/preview/..., where Chromium's own
// PDF viewer renders the page under the route's headers (its extension frame
// is there and the red page is on the screen); Escape closes it and focus
// goes back; "Open in new tab" renders it too, without an opener; a non-PDF
// declared as application/pdf is refused (415) and gets no viewer.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import zlib from "node:zlib";
import { axe, deliver, env, formatViolations, launch, mailAccountId, pageErrors, screenshot, sel,
	signIn, waitFor } from "./lib.mjs";

const stamp = Date.now();
const subject = `Quarterly report ${stamp}`;
const VIEWER = "chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/";

// A one-page PDF, filled red, with a line of text.
function redPdf() {
	const text = "Hello mailkeep";
	const content = `1 0 0 rg 0 0 612 792 re f 0 0 0 rg BT /F1 36 Tf 72 700 Td (${text}) Tj ET`;
	const objs = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R " +
		"/Resources << /Font << /F1 5 0 R >> >> >>",
		`<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"];
	let out = "%PDF-1.4\n";
	const offs = [];
	objs.forEach((o, i) => { offs.push(out.length); out += `${i + 1} 0 obj\n${o}\nendobj\n`; });
	const x = out.length;
	out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n` +
		offs.map((o) => String(o).padStart(10, "0") + " 00000 n \n").join("");
	out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${x}\n%%EOF\n`;
	return Buffer.from(out, "latin1");
}

// The share of strongly red pixels in a PNG screenshot (8-bit RGB/RGBA, as
// Chromium writes them).
function redShare(png) {
	let p = 8, w = 0, h = 0, ct = 0;
	const chunks = [];
	while (p < png.length) {
		const len = png.readUInt32BE(p), type = png.toString("ascii", p + 4, p + 8);
		const data = png.subarray(p + 8, p + 8 + len);
		if (type === "IHDR") { w = data.readUInt32BE(0); h = data.readUInt32BE(4); ct = data[9]; }
		if (type === "IDAT") chunks.push(data);
		p += 12 + len;
	}
	const raw = zlib.inflateSync(Buffer.concat(chunks));
	const bpp = ct === 6 ? 4 : 3, stride = w * bpp, out = Buffer.alloc(h * stride);
	for (let y = 0; y < h; y++) {
		const f = raw[y * (stride + 1)];
		for (let x = 0; x < stride; x++) {
			const v = raw[y * (stride + 1) + 1 + x];
			const a = x >= bpp ? out[y * stride + x - bpp] : 0;
			const b = y > 0 ? out[(y - 1) * stride + x] : 0;
			const c = x >= bpp && y > 0 ? out[(y - 1) * stride + x - bpp] : 0;
			let r;
			if (f === 0) r = v;
			else if (f === 1) r = v + a;
			else if (f === 2) r = v + b;
			else if (f === 3) r = v + ((a + b) >> 1);
			else {
				const pp = a + b - c, pa = Math.abs(pp - a), pb = Math.abs(pp - b), pc = Math.abs(pp - c);
				r = v + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
			}
			out[y * stride + x] = r & 255;
		}
	}
	let red = 0;
	for (let i = 0; i < w * h; i++)
		if (out[i * bpp] > 200 && out[i * bpp + 1] < 60 && out[i * bpp + 2] < 60)
			red++;
	return red / (w * h);
}

// Waits until Chromium's viewer shows the red page in this page (its
// extension frame is in the frame tree and red covers at least `share` of
// the screenshot).
async function viewerShows(pg, share, what) {
	let last = 0;
	await waitFor(async () => {
		if (!pg.frames().some((f) => f.url().startsWith(VIEWER)))
			return false;
		last = redShare(await pg.screenshot());
		return last >= share;
	}, { timeout: 30000, what: `${what}: the PDF viewer shows the page` });
}

const HEADERS = {
	"content-type": "application/pdf",
	"content-disposition": "inline",
	"content-security-policy": "sandbox; default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
	"x-frame-options": "SAMEORIGIN",
	"x-content-type-options": "nosniff",
	"cache-control": "private, no-store",
};

let browser, context, page;

before(async () => {
	const b = "b-" + stamp;
	const pdf = redPdf().toString("base64").replace(/.{76}/g, "$&\r\n");
	const fake = Buffer.from("<!doctype html><script>parent.postMessage('ran','*')</script>")
		.toString("base64");
	deliver(`From: Grace <grace@example.com>\r\nTo: alice@example.org\r\nSubject: ${subject}\r\n` +
		`Date: ${new Date().toUTCString().replace("GMT", "+0000")}\r\n` +
		`Message-ID: <report-${stamp}@example.com>\r\nMIME-Version: 1.0\r\n` +
		`Content-Type: multipart/mixed; boundary=${b}\r\n\r\n--${b}\r\n` +
		`Content-Type: text/plain; charset=utf-8\r\n\r\nThe report is attached.\r\n` +
		`--${b}\r\nContent-Type: application/pdf; name=report.pdf\r\n` +
		`Content-Disposition: attachment; filename=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n${pdf}\r\n` +
		`--${b}\r\nContent-Type: application/pdf; name=fake.pdf\r\n` +
		`Content-Disposition: attachment; filename=fake.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n${fake}\r\n` +
		`--${b}\r\nContent-Type: text/plain; name=notes.txt\r\n` +
		`Content-Disposition: attachment; filename=notes.txt\r\n\r\nnot a pdf\r\n--${b}--\r\n`);
	({ browser, context, page } = await launch());
	await signIn(page);
});

after(async () => {
	if (browser)
		await browser.close();
});

async function openReport() {
	// A test that failed may have left the viewer open.
	if (await page.locator(sel("pdf-viewer")).count())
		await page.keyboard.press("Escape");
	const row = page.locator(sel("msg-row"), { hasText: subject }).first();
	await row.waitFor({ timeout: 15000 });
	await row.click();
	await page.locator(sel("reader-subject"), { hasText: subject }).waitFor({ timeout: 10000 });
	await page.locator(sel("attachment")).first().waitFor({ timeout: 10000 });
}

const attachment = (name) => page.locator(sel("attachment"), { hasText: name }).first();

test("only PDF attachments offer Preview", async () => {
	await openReport();
	assert.equal(await attachment("report.pdf").locator(sel("attachment-preview")).count(), 1);
	assert.equal(await attachment("notes.txt").locator(sel("attachment-preview")).count(), 0);
	assert.equal(await attachment("notes.txt").locator(sel("attachment-download")).count(), 1);
});

test("Preview opens the viewer: Chromium's PDF viewer renders the page in the dialog", async () => {
	await openReport();
	const button = attachment("report.pdf").locator(sel("attachment-preview"));
	assert.equal(await button.getAttribute("aria-label"), "Preview report.pdf");
	// By keyboard: focus the button, Enter.
	await button.focus();
	const seen = [];
	const onResp = async (r) => {
		if (new URL(r.url()).pathname.startsWith("/jmap/preview/"))
			seen.push({ type: r.request().resourceType(), nav: r.request().isNavigationRequest(),
				status: r.status(), headers: await r.allHeaders() });
	};
	page.on("response", onResp);
	await page.keyboard.press("Enter");
	await waitFor(() => seen.some((r) => r.nav), { what: "the frame's request of the preview" });
	page.off("response", onResp);
	const nav = seen.find((r) => r.nav);
	assert.equal(nav.status, 200, JSON.stringify(seen));
	for (const [k, v] of Object.entries(HEADERS))
		assert.equal(nav.headers[k], v, k + ": " + JSON.stringify(seen));
	const dialog = page.locator(sel("pdf-viewer"));
	await dialog.waitFor({ state: "visible" });
	// A modal dialog: labelled, the Close button focused, the frame without
	// a sandbox attribute (it would stop the viewer), on the preview route.
	assert.equal(await dialog.evaluate((d) => d.open && d.matches(":modal")), true);
	assert.match(await page.locator("#" + await dialog.getAttribute("aria-labelledby")).innerText(),
		/report\.pdf/);
	assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("data-testid")), "pdf-close");
	const frame = page.locator(sel("pdf-frame"));
	assert.equal(await frame.getAttribute("sandbox"), null);
	const src = await frame.getAttribute("src");
	assert.match(src, /^\/jmap\/preview\/[^/]+\/[^/]+\/report\.pdf$/);
	await viewerShows(page, 0.15, "in-app viewer");
	await screenshot(page, "pdf-preview");
	// axe on the page with the dialog open (the PDF frame itself is Chromium's).
	const vs = await axe(page);
	assert.deepEqual(vs, [], formatViolations(vs));
	// The app's shortcuts do not act behind the dialog ("u" would close the message).
	await page.keyboard.press("u");
	await page.waitForTimeout(300);
	assert.equal(await dialog.isVisible(), true);
	assert.equal(await page.locator(sel("reader-subject"), { hasText: subject }).count(), 1);
	// Escape closes it (and only it: the message stays open); focus is back
	// on the Preview button.
	await page.keyboard.press("Escape");
	await dialog.waitFor({ state: "detached" });
	assert.equal(await page.locator(sel("reader-subject"), { hasText: subject }).count(), 1);
	await waitFor(() => page.evaluate(() => document.activeElement?.getAttribute("data-testid") ===
		"attachment-preview"), { timeout: 3000, what: "focus back on the Preview button" });
	assert.deepEqual(pageErrors(page), []);
});

test("Open in new tab renders it at the top level, without an opener", async () => {
	await openReport();
	await attachment("report.pdf").locator(sel("attachment-preview")).click();
	await page.locator(sel("pdf-viewer")).waitFor({ state: "visible" });
	const link = page.locator(sel("pdf-open-tab"));
	assert.deepEqual((await link.getAttribute("rel")).split(" ").sort(), ["noopener", "noreferrer"]);
	assert.equal(await link.getAttribute("target"), "_blank");
	const [tab] = await Promise.all([
		context.waitForEvent("page"),
		page.locator(sel("pdf-open-tab")).click(),
	]);
	await tab.waitForLoadState();
	assert.match(new URL(tab.url()).pathname, /^\/jmap\/preview\/.+\/report\.pdf$/);
	await viewerShows(tab, 0.3, "new tab");
	await tab.close();
	await page.locator(sel("pdf-close")).click();
	await page.locator(sel("pdf-viewer")).waitFor({ state: "detached" });
	assert.deepEqual(pageErrors(page), []);
});

test("a non-PDF declared as application/pdf is refused and never runs", async () => {
	await openReport();
	let ran = false;
	await page.exposeFunction("mkPreviewRan", () => { ran = true; });
	await page.evaluate(() => window.addEventListener("message", (e) => {
		if (e.data === "ran")
			window.mkPreviewRan();
	}));
	const [resp] = await Promise.all([
		page.waitForResponse((r) => new URL(r.url()).pathname.startsWith("/jmap/preview/")),
		attachment("fake.pdf").locator(sel("attachment-preview")).click(),
	]);
	assert.equal(resp.status(), 415);
	assert.match((await resp.json()).detail, /only PDF files can be previewed/);
	assert.equal(resp.headers()["content-type"], "application/problem+json");
	await page.waitForTimeout(1000);
	assert.equal(ran, false, "the fake PDF's script ran");
	assert.equal(page.frames().some((f) => f.url().startsWith(VIEWER)), false);
	await page.keyboard.press("Escape");
	await page.locator(sel("pdf-viewer")).waitFor({ state: "detached" });
	// The same refusal with a device token and any ?type=.
	const acc = await mailAccountId();
	const r = await fetch(env().url.replace(/\/$/, "") + new URL(resp.url()).pathname + "?type=application/pdf",
		{ headers: { Authorization: "Bearer " + env().token } });
	assert.equal(r.status, 415);
	assert.ok(acc);
	// The refusal shows in the frame as the problem's text, which is expected.
	assert.deepEqual(pageErrors(page).filter((e) => !/^http: 415 GET \/jmap\/preview\//.test(e)), []);
});
