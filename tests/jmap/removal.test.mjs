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
    const before = first.changed.carol.Email;
    const next = nextState(es, 15000);
    execFileSync("sh", ["-c", env.MK_REMOVE_CAROL_CMD], { stdio: "inherit" });
    const change = await next;
    assert.notEqual(change.changed.carol.Email, before);
    // A device resyncing from its state learns exactly what to drop.
    const [ec] = await carol.api.Email.changes({ accountId: C, sinceState: before, maxChanges: 1000 });
    for (const id of q.ids) assert.ok(ec.destroyed.includes(id), `${id} reported destroyed`);
    const [mc] = await carol.api.Mailbox.changes({ accountId: C, sinceState: before });
    for (const b of boxes.list) assert.ok(mc.destroyed.includes(b.id), `${b.id} reported destroyed`);
    const [got] = await carol.api.Email.get({ accountId: C, ids: q.ids, properties: ["subject"] });
    assert.deepEqual(got.list, []);
    assert.deepEqual([...got.notFound].sort(), [...q.ids].sort());
    const [after] = await carol.api.Email.query({ accountId: C });
    assert.deepEqual(after.ids, []);
    const r = await fetch(new URL(`/jmap/download/carol/${q.ids[0].replace(/^E/, "B")}/x`, session),
      { headers: { Authorization: `Bearer ${env.MK_TOKEN_CAROL}` } });
    assert.equal(r.status, 404);
  } finally {
    es.close();
  }
});
