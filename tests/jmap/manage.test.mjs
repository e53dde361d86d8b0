// The management capability urn:mailkeep:manage (docs/jmap.md), against a
// running `mailkeep serve` started by tests/jmap_test.py: hub user erin,
// signed in with Basic and her hub password, adds the real Dovecot user bob
// with consent, tests it, sees her consent, audit log and policy, adds and
// revokes a device and removes the account again with a receipt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execSync } from "node:child_process";

const env = process.env;
const session = env.MK_SESSION_URL;
const MANAGE = "urn:mailkeep:manage";
const using = ["urn:ietf:params:jmap:core", MANAGE];
const basic = "Basic " + Buffer.from("erin:" + env.MK_ERIN_PASSWORD).toString("base64");
const settings = { imapUrl: env.MK_IMAP_URL, smtpUrl: null, login: "bob" };

async function getSession(auth = basic) {
  const r = await fetch(session, { headers: { Authorization: auth } });
  assert.equal(r.status, 200);
  return r.json();
}

async function call(methodCalls, auth = basic) {
  const r = await fetch(new URL("/jmap/api/", session), {
    method: "POST",
    headers: { Authorization: auth, "Content-Type": "application/json" },
    body: JSON.stringify({ using, methodCalls }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).methodResponses;
}

async function one(name, args, auth = basic) {
  const [[n, r]] = await call([[name, { accountId: "mailkeep", ...args }, "0"]], auth);
  assert.equal(n, name, JSON.stringify(r));
  return r;
}

async function accounts() {
  return (await one("ExternalAccount/get", { ids: null })).list;
}

async function disclose() {
  return one("ExternalAccount/disclose", { ...settings, kind: "password" });
}

test("the session announces the capability on the notices account", async () => {
  const s = await getSession();
  assert.deepEqual(s.capabilities[MANAGE], {});
  const [id] = Object.keys(s.accounts);
  assert.equal(s.accounts[id].name, "mailkeep");
  assert.deepEqual(s.accounts[id].accountCapabilities[MANAGE], {});
  // The notices account's own id works as well as "mailkeep".
  const [[n, r]] = await call([["Policy/get", { accountId: id }, "0"]]);
  assert.equal(n, "Policy/get", JSON.stringify(r));
  const [[e, err]] = await call([["Policy/get", { accountId: "A999999" }, "0"]]);
  assert.equal(e, "error");
  assert.equal(err.type, "accountNotFound");
  // Without the capability in "using", the methods are unknown.
  const r2 = await fetch(new URL("/jmap/api/", session), {
    method: "POST",
    headers: { Authorization: basic, "Content-Type": "application/json" },
    body: JSON.stringify({ using: ["urn:ietf:params:jmap:core"],
      methodCalls: [["Policy/get", { accountId: "mailkeep" }, "0"]] }),
  });
  const [[u, uerr]] = (await r2.json()).methodResponses;
  assert.equal(u, "error");
  assert.equal(uerr.type, "unknownMethod");
});

test("the policy states what is stored, where, for how long", async () => {
  const p = await one("Policy/get", {});
  assert.equal(p.purgeAfterDays, 365);
  assert.equal(p.inactiveWarnAfterDays, 335);
  assert.equal(p.zeroAccess, false);
  assert.ok(p.stored.length >= 3);
  for (const s of p.stored)
    for (const k of ["what", "where", "whoCanRead", "keptFor"])
      assert.ok(typeof s[k] === "string" && s[k].length > 10, k);
  assert.ok(p.stored.some((s) => /password/.test(s.what) && /master key/.test(s.whoCanRead)));
});

test("discovery finds a built-in profile's settings (no network)", async () => {
  const d = await one("ExternalAccount/discover", { email: "someone@gmail.com" });
  assert.equal(d.imapUrl, "imaps://imap.gmail.com:993");
  assert.equal(d.smtpUrl, "submissions://smtp.gmail.com:465");
  assert.equal(d.login, "someone@gmail.com");
  assert.equal(d.oauthProvider, "google");
  assert.ok(d.sources.some((l) => /Gmail/.test(l)), JSON.stringify(d.sources));
  const bad = await call([["ExternalAccount/discover", { accountId: "mailkeep", email: "nope" }, "0"]]);
  assert.equal(bad[0][1].type, "invalidArguments");
});

test("the disclosure is the CLI's text and its id is its SHA-256", async () => {
  const d = await disclose();
  assert.match(d.text, /^mailkeep: adding a mail account for hub user erin\n/);
  assert.ok(d.text.includes(`- Log in to ${settings.imapUrl} (IMAP) as bob.`));
  assert.ok(d.text.includes("How to remove it all"));
  assert.equal(d.disclosureId, createHash("sha256").update(d.text).digest("hex"));
  const bad = await call([["ExternalAccount/disclose",
    { accountId: "mailkeep", imapUrl: "http://x", login: "bob" }, "0"]]);
  assert.equal(bad[0][0], "error");
  assert.equal(bad[0][1].type, "invalidArguments");
});

test("adding is refused without consent, or for another disclosure", async () => {
  const d = await disclose();
  const r = await one("ExternalAccount/set", { create: {
    a: { ...settings, password: env.MK_BOB_PASSWORD, disclosureId: d.disclosureId },
    b: { ...settings, password: env.MK_BOB_PASSWORD, disclosureId: d.disclosureId, consent: "yes" },
    c: { ...settings, password: env.MK_BOB_PASSWORD, disclosureId: "0".repeat(64), consent: true },
    d: { ...settings, smtpUrl: "smtp://127.0.0.1:1", password: env.MK_BOB_PASSWORD,
      disclosureId: d.disclosureId, consent: true },
  } });
  assert.deepEqual(Object.keys(r.created), []);
  for (const k of ["a", "b", "c", "d"]) {
    assert.equal(r.notCreated[k].type, "invalidProperties", k);
    assert.ok(r.notCreated[k].description.length > 0);
  }
  assert.match(r.notCreated.a.description, /consent/);
  assert.match(r.notCreated.c.description, /disclos/);
  assert.deepEqual(await accounts(), []);
  assert.deepEqual((await one("Consent/get", {})).list, []);
});

test("the connection test says whether the login works", async () => {
  const bad = await one("ExternalAccount/test", { ...settings, password: "wrong" });
  assert.equal(bad.ok, false);
  assert.match(bad.error, /refused the login of bob/);
  const good = await one("ExternalAccount/test", { ...settings, password: env.MK_BOB_PASSWORD });
  assert.deepEqual([good.ok, good.error], [true, null]);
});

test("add with consent, devices, audit, then removal with a receipt", async () => {
  // A wrong password: refused by the connection test, nothing stored.
  const d = await disclose();
  const create = { ...settings, password: env.MK_BOB_PASSWORD, disclosureId: d.disclosureId,
    consent: true };
  const wrong = await one("ExternalAccount/set", { create: { x: { ...create, password: "no" } } });
  assert.match(wrong.notCreated.x.description, /refused the login of bob.*nothing was stored/);
  assert.deepEqual(await accounts(), []);

  const added = await one("ExternalAccount/set", { create: { x: create } });
  assert.deepEqual(Object.keys(added.notCreated), [], JSON.stringify(added.notCreated));
  const { id, hubId } = added.created.x;
  assert.match(id, /^A\d+$/);
  assert.ok(hubId > 0);
  // The id is the account's JMAP accountId in the session.
  const s = await getSession();
  assert.equal(s.accounts[id].name, "bob@127.0.0.1");
  const list = await accounts();
  assert.equal(list.length, 1);
  const a = list[0];
  assert.deepEqual([a.id, a.hubId, a.login, a.email, a.imapUrl, a.smtpUrl, a.kind, a.needsSignIn,
    a.isPrimary], [id, hubId, "bob", null, settings.imapUrl, null, "password", false, true]);
  assert.match(a.addedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const byId = await one("ExternalAccount/get", { ids: [id, "A999999"] });
  assert.deepEqual([byId.list.map((x) => x.id), byId.notFound], [[id], ["A999999"]]);
  // The same login on the same server again: refused.
  const again = await one("ExternalAccount/set", { create: { y: create } });
  assert.equal(again.notCreated.y.type, "alreadyExists");
  // The consent, with the disclosure's id and the tool.
  const consents = (await one("Consent/get", {})).list;
  assert.equal(consents.length, 1);
  assert.deepEqual([consents[0].hubAccountId, consents[0].login, consents[0].tool,
    consents[0].disclosure], [hubId, "bob", "web", d.disclosureId]);
  // A stored account tests with its stored password; updates.
  assert.deepEqual((await one("ExternalAccount/test", { id })).ok, true);
  const upd = await one("ExternalAccount/set", { update: {
    [id]: { password: env.MK_BOB_PASSWORD, isPrimary: true } } });
  assert.deepEqual(upd.updated, { [id]: null }, JSON.stringify(upd.notUpdated));
  const badUpd = await one("ExternalAccount/set", { update: { [id]: { password: "nope" } } });
  assert.match(badUpd.notUpdated[id].description, /refused the login/);

  // Devices: a token shown once that works until revoked.
  const dev = await one("Device/set", { create: { p: { name: "erin-phone" } } });
  const { id: devId, token } = dev.created.p;
  assert.match(token, /^mk_/);
  const bearer = "Bearer " + token;
  assert.equal((await fetch(session, { headers: { Authorization: bearer } })).status, 200);
  const devices = (await one("Device/get", {}, bearer)).list;
  assert.deepEqual(devices.map((x) => [x.id, x.name]), [[devId, "erin-phone"]]);
  assert.ok(devices[0].createdAt);
  const gone = await one("Device/set", { destroy: [devId, "D999999"] });
  assert.deepEqual(gone.destroyed, [devId]);
  assert.equal(gone.notDestroyed.D999999.type, "notFound");
  assert.equal((await fetch(session, { headers: { Authorization: bearer } })).status, 401);
  assert.deepEqual((await one("Device/get", {})).list, []);

  // The audit log: verified, newest first, filtered, paged.
  const log = await one("AuditLog/get", { limit: 500 });
  assert.equal(log.verified, true);
  assert.equal(log.verifyError, null);
  assert.equal(log.entries.length, log.total);
  const events = log.entries.map((e) => e.event);
  for (const e of ["consent.given", "account.added", "device.added", "device.revoked",
    "account.changed", "credential.decrypt"])
    assert.ok(events.includes(e), e);
  const times = log.entries.map((e) => e.at);
  assert.deepEqual([...times].sort().reverse(), times);
  assert.equal(log.entries[0].event, "device.revoked");
  const consent = await one("AuditLog/get", { filter: { event: "consent.given" } });
  assert.equal(consent.total, 1);
  assert.deepEqual(consent.entries[0].details, { disclosure: d.disclosureId, tool: "web" });
  assert.equal(consent.entries[0].account, String(hubId));
  const page = await one("AuditLog/get", { position: 1, limit: 2 });
  assert.deepEqual(page.entries, log.entries.slice(1, 3));
  assert.equal(page.total, log.total);
  const none = await one("AuditLog/get", { filter: { before: "2001-01-01T00:00:00Z" } });
  assert.deepEqual([none.total, none.entries], [0, []]);
  // The CLI sees the same log.
  const cli = execSync(env.MK_AUDIT_CMD).toString();
  assert.match(cli, /consent\.given .*tool=web/);

  // Removal from all devices, with its receipt.
  const rm = await one("ExternalAccount/set", { destroy: [id] });
  assert.deepEqual(rm.destroyed, [id]);
  assert.match(rm.receipts[id],
    new RegExp(`^receipt: account ${hubId} of erin removed from all devices at `));
  assert.deepEqual(await accounts(), []);
  const receipts = (await one("Receipt/get", {})).list;
  assert.equal(receipts.length, 1);
  assert.equal(receipts[0].text, rm.receipts[id]);
  assert.match(receipts[0].id, /^R\d+$/);
  const s2 = await getSession();
  assert.equal(s2.accounts[id], undefined);
  assert.notEqual(s2.state, s.state);
  const rm2 = await one("ExternalAccount/set", { destroy: [id] });
  assert.equal(rm2.notDestroyed[id].type, "notFound");
  assert.equal((await one("AuditLog/get", {})).verified, true);
});

// Polls ExternalAccount/get until pred(account) holds (the account worker
// syncs in the background), at most 20 s.
async function waitFor(id, pred) {
  const until = Date.now() + 20000;
  let a;
  while (Date.now() < until) {
    a = (await one("ExternalAccount/get", { ids: [id] })).list[0];
    if (a && pred(a)) return a;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail("the account's status never got there: " + JSON.stringify(a));
}

test("status: the first sync's outcome, a failed login's error, no push here",
  { timeout: 120000 }, async () => {
  // An event stream open all along: adding an account with one open once
  // deadlocked serve (the request, the push thread and the hub's lock);
  // the timeout above fails the test if anything hangs.
  const s = await getSession();
  const esUrl = s.eventSourceUrl.replace("{types}", "*").replace("{closeafter}", "no")
    .replace("{ping}", "0");
  const ctl = new AbortController();
  const stream = await fetch(esUrl, { signal: ctl.signal,
    headers: { Authorization: basic, Accept: "text/event-stream" } });
  assert.equal(stream.status, 200);
  const d = await disclose();
  const create = { ...settings, password: env.MK_BOB_PASSWORD, disclosureId: d.disclosureId,
    consent: true };
  // A wrong password the add does not test: the first sync (the account
  // worker's) fails, and says why.
  const bad = await one("ExternalAccount/set", {
    create: { b: { ...create, password: "not bob's password", test: false } } });
  assert.deepEqual(bad.notCreated, {});
  const badId = bad.created.b.id;
  const failed = await waitFor(badId, (a) => a.lastError !== null);
  assert.equal(failed.lastSyncAt, null);
  assert.match(failed.lastError, /login/i);
  assert.doesNotMatch(failed.lastError, /^erin, account/);
  assert.doesNotMatch(failed.lastError, /not bob's password/);
  assert.match(failed.lastErrorAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  // Provider push is off in this serve (MK_NO_PROVIDER_PUSH): null.
  assert.equal(failed.pushState, null);
  assert.equal(failed.needsSignIn, false);
  const rm = await one("ExternalAccount/set", { destroy: [badId] });
  assert.deepEqual(rm.destroyed, [badId]);

  // The right password: the first sync goes through; no error.
  const before = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const good = await one("ExternalAccount/set", { create: { g: create } });
  assert.deepEqual(good.notCreated, {});
  const goodId = good.created.g.id;
  const synced = await waitFor(goodId, (a) => a.lastSyncAt !== null);
  assert.ok(synced.lastSyncAt >= before, `${synced.lastSyncAt} >= ${before}`);
  assert.deepEqual([synced.lastError, synced.lastErrorAt, synced.pushState], [null, null, null]);
  assert.ok(synced.syncProgress === null || synced.syncProgress.downloaded >= 0);
  const rm2 = await one("ExternalAccount/set", { destroy: [goodId] });
  assert.deepEqual(rm2.destroyed, [goodId]);
  ctl.abort();
});

test("web sessions: listed with the current one marked, revoked", async () => {
  const signIn = async () => {
    const r = await fetch(new URL("/mailkeep/session", session), {
      method: "POST",
      headers: { "Content-Type": "application/json", "User-Agent": "manage-test" },
      body: JSON.stringify({ username: "erin", password: env.MK_ERIN_PASSWORD }),
    });
    assert.equal(r.status, 200);
    const body = await r.json();
    return { cookie: r.headers.get("set-cookie").split(";")[0], csrf: body.csrf,
      id: "W" + body.sessionId };
  };
  const withCookie = (s, methodCalls) => fetch(new URL("/jmap/api/", session), {
    method: "POST",
    headers: { Cookie: s.cookie, "X-Mailkeep-CSRF": s.csrf, "Content-Type": "application/json" },
    body: JSON.stringify({ using, methodCalls }),
  });
  const a = await signIn();
  const b = await signIn();
  let r = await withCookie(a, [["WebSession/get", { accountId: "mailkeep" }, "0"]]);
  assert.equal(r.status, 200);
  const [[n, got]] = (await r.json()).methodResponses;
  assert.equal(n, "WebSession/get", JSON.stringify(got));
  const byId = Object.fromEntries(got.list.map((s) => [s.id, s]));
  assert.equal(byId[a.id].isCurrent, true);
  assert.equal(byId[b.id].isCurrent, false);
  assert.equal(byId[b.id].userAgent, "manage-test");
  for (const k of ["createdAt", "lastUsedAt", "expiresAt"])
    assert.match(byId[a.id][k], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, k);
  assert.ok(byId[a.id].expiresAt > byId[a.id].createdAt);
  // Another session revoked from this one: its cookie stops working.
  r = await withCookie(a, [["WebSession/set", { accountId: "mailkeep", destroy: [b.id, "W999999"] }, "0"]]);
  const [[, set]] = (await r.json()).methodResponses;
  assert.deepEqual(set.destroyed, [b.id]);
  assert.equal(set.notDestroyed.W999999.type, "notFound");
  assert.equal((await fetch(new URL("/mailkeep/session", session),
    { headers: { Cookie: b.cookie } })).status, 401);
  // The current one too.
  r = await withCookie(a, [["WebSession/set", { accountId: "mailkeep", destroy: [a.id] }, "0"]]);
  assert.deepEqual((await r.json()).methodResponses[0][1].destroyed, [a.id]);
  assert.equal((await withCookie(a, [["Policy/get", { accountId: "mailkeep" }, "0"]])).status, 401);
  assert.deepEqual((await one("WebSession/get", {})).list, []);
  const log = await one("AuditLog/get", { limit: 10 });
  assert.equal(log.verified, true);
});

test("the hub password changes; the old one stops working", async () => {
  const change = (old, nw, auth = basic) => call([["User/changePassword",
    { accountId: "mailkeep", old, new: nw }, "0"]], auth);
  let [[n, r]] = await change("wrong password", "a new password");
  assert.deepEqual([n, r.type], ["error", "forbidden"]);
  [[n, r]] = await change(env.MK_ERIN_PASSWORD, "short");
  assert.deepEqual([n, r.type], ["error", "invalidArguments"]);
  [[n, r]] = await change(env.MK_ERIN_PASSWORD, "a new password");
  assert.equal(n, "User/changePassword", JSON.stringify(r));
  assert.equal(r.changed, true);
  assert.equal((await fetch(session, { headers: { Authorization: basic } })).status, 401);
  const nb = "Basic " + Buffer.from("erin:a new password").toString("base64");
  const log = await one("AuditLog/get", { filter: { event: "user.password" } }, nb);
  assert.equal(log.total, 1);
  assert.deepEqual(log.entries[0].details, { via: "web" });
  [[n, r]] = await change("a new password", env.MK_ERIN_PASSWORD, nb);
  assert.equal(r.changed, true);
  assert.equal((await fetch(session, { headers: { Authorization: basic } })).status, 200);
});

test("zero-access: adding needs the key a sign-in unlocks", async () => {
  const zb = "Basic " + Buffer.from("zed:" + env.MK_ZED_PASSWORD).toString("base64");
  assert.equal((await one("Policy/get", {}, zb)).zeroAccess, true);
  const d = await one("ExternalAccount/disclose", { ...settings, kind: "password" }, zb);
  assert.match(d.text, /Who can decrypt it: only zed/);
  const create = { ...settings, password: env.MK_BOB_PASSWORD, disclosureId: d.disclosureId,
    consent: true };
  // Basic opens no lease: the key is locked.
  const locked = await one("ExternalAccount/set", { create: { z: create } }, zb);
  assert.equal(locked.notCreated.z.type, "forbidden");
  assert.match(locked.notCreated.z.description, /sign in/);
  // A web sign-in opens the lease; the add goes through.
  const r = await fetch(new URL("/mailkeep/session", session), {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: "zed", password: env.MK_ZED_PASSWORD }),
  });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.ok(body.unlockedUntil);
  const cookie = r.headers.get("set-cookie").split(";")[0];
  const withCookie = async (name, args) => {
    const res = await fetch(new URL("/jmap/api/", session), {
      method: "POST",
      headers: { Cookie: cookie, "X-Mailkeep-CSRF": body.csrf, "Content-Type": "application/json" },
      body: JSON.stringify({ using, methodCalls: [[name, { accountId: "mailkeep", ...args }, "0"]] }),
    });
    assert.equal(res.status, 200);
    const [[n, out]] = (await res.json()).methodResponses;
    assert.equal(n, name, JSON.stringify(out));
    return out;
  };
  const added = await withCookie("ExternalAccount/set", { create: { z: create } });
  assert.deepEqual(added.notCreated, {});
  const { id } = added.created.z;
  assert.equal((await withCookie("ExternalAccount/test", { id })).ok, true);
  // The password is also the passphrase: changing it rewraps the account
  // keys, and the lease takes the new key (the connection test still opens
  // the stored password); then back, for what follows.
  const pw = await call([["User/changePassword",
    { accountId: "mailkeep", old: env.MK_ZED_PASSWORD, new: "another passphrase" }, "0"]], zb);
  assert.equal(pw[0][1].changed, true, JSON.stringify(pw));
  assert.equal((await withCookie("ExternalAccount/test", { id })).ok, true);
  const zb2 = "Basic " + Buffer.from("zed:another passphrase").toString("base64");
  const back = await call([["User/changePassword",
    { accountId: "mailkeep", old: "another passphrase", new: env.MK_ZED_PASSWORD }, "0"]], zb2);
  assert.equal(back[0][1].changed, true, JSON.stringify(back));
  const rm = await withCookie("ExternalAccount/set", { destroy: [id] });
  assert.match(rm.receipts[id], /of zed removed from all devices/);
  // Signing this session out (revoking it) wipes the lease.
  await withCookie("WebSession/set", { destroy: ["W" + body.sessionId] });
  const again = await one("ExternalAccount/set", { create: { z: create } }, zb);
  assert.equal(again.notCreated.z.type, "forbidden");
});
