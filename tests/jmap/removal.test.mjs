// Removing an account from all devices reaches the devices: a push, and the
// mail is gone from every method. Carol is a hub user of her own whose
// account is the same Dovecot mailbox as Alice's, so this leaves Alice alone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import JamClient from "jmap-jam";
import { EventSource } from "eventsource";

const env = process.env;
const session = env.MK_SESSION_URL;
const carol = new JamClient({ sessionUrl: session, bearerToken: env.MK_TOKEN_CAROL });
const C = await carol.getPrimaryAccount();

function nextState(es, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no state event")), timeoutMs);
    es.addEventListener("state", (ev) => { clearTimeout(t); resolve(JSON.parse(ev.data)); }, { once: true });
  });
}

test("account removal pushes a change and the mail is gone from the API", async () => {
  const [q] = await carol.api.Email.query({ accountId: C, limit: 5 });
  assert.ok(q.ids.length > 0, "carol has synced mail");
  const [boxes] = await carol.api.Mailbox.get({ accountId: C, ids: null });
  const es = new EventSource(new URL("/jmap/eventsource/?types=*&closeafter=no&ping=0", session), {
    fetch: (input, init) =>
      fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${env.MK_TOKEN_CAROL}` } }),
  });
  try {
    const first = await nextState(es, 5000);
    assert.ok(first.changed[C].Email);
    const next = nextState(es, 15000);
    execFileSync("sh", ["-c", env.MK_REMOVE_CAROL_CMD], { stdio: "inherit" });
    const change = await next;
    // The removed account is gone from the session (one JMAP account per
    // external account): a device refetching the session drops it; the
    // change reaches it through the user's other account (the notices one).
    assert.equal(change.changed[C], undefined);
    const notices = Object.keys(change.changed);
    assert.equal(notices.length, 1);
    const s = await (await fetch(session, { headers: { Authorization: `Bearer ${env.MK_TOKEN_CAROL}` } })).json();
    assert.deepEqual(Object.keys(s.accounts), notices);
    assert.equal(s.accounts[notices[0]].name, "mailkeep");
    assert.equal(s.primaryAccounts["urn:ietf:params:jmap:mail"], notices[0]);
    // Nothing of it answers any more, under its id or the other account's.
    await assert.rejects(carol.api.Email.query({ accountId: C }), (e) => e.type === "accountNotFound");
    await assert.rejects(carol.api.Mailbox.get({ accountId: C, ids: null }),
      (e) => e.type === "accountNotFound");
    const [got] = await carol.api.Email.get({ accountId: notices[0], ids: q.ids, properties: ["subject"] });
    assert.deepEqual(got.list, []);
    assert.deepEqual([...got.notFound].sort(), [...q.ids].sort());
    const [mb] = await carol.api.Mailbox.get({ accountId: notices[0], ids: boxes.list.map((b) => b.id) });
    assert.deepEqual(mb.list, []);
    for (const acct of [C, notices[0]]) {
      const r = await fetch(new URL(`/jmap/download/${acct}/${q.ids[0].replace(/^E/, "B")}/x`, session),
        { headers: { Authorization: `Bearer ${env.MK_TOKEN_CAROL}` } });
      assert.equal(r.status, 404);
    }
  } finally {
    es.close();
  }
});
