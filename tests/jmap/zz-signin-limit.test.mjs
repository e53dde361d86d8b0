// Runs last (tests/jmap_test.py runs the files one at a time, sorted by
// name): it leaves this address blocked for a minute.
import { test } from "node:test";
import assert from "node:assert/strict";

const env = process.env;
const session = env.MK_SESSION_URL;

test("Basic sign-in with the hub password; failed sign-ins are rate-limited", async () => {
  const basic = (pw) => "Basic " + Buffer.from(`alice:${pw}`).toString("base64");
  const ok = await fetch(session, { headers: { Authorization: basic(env.MK_HUB_PASSWORD) } });
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).username, "alice");
  const statuses = [];
  for (let i = 0; i < 12; i++) {
    const r = await fetch(session, { headers: { Authorization: basic("wrong " + i) } });
    statuses.push(r.status);
  }
  // Ten failures a minute per address (one came from the revoked token).
  const first429 = statuses.indexOf(429);
  assert.equal(statuses[0], 401);
  assert.ok(first429 > 0 && first429 <= 10, `blocked after ${first429} failures: ${statuses}`);
  assert.ok(statuses.slice(first429).every((s) => s === 429));
  const blocked = await fetch(session, { headers: { Authorization: basic(env.MK_HUB_PASSWORD) } });
  assert.equal(blocked.status, 429, "a blocked address must not be able to keep guessing");
});
