// Regression (found by make chaos, docs/campaigns.md): a reconciliation whose "list outputs"
// call failed is retried 2 s later; while the retried call was in flight, the manager's timer
// was re-armed at 0 ms from its own callback (the past retry deadline it skips while
// reconciling) and libuv ran it again in the same pass, forever: the whole server stopped
// answering at 100 % CPU. Here: a user who is `ready` (so recovered with a reconciliation at
// start-up), kill -9, the first list call after the restart fails (500 to every client retry), and the server must
// still answer, finish the retried reconciliation and exit cleanly.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootLive, newUser, inputUid, setInput, waitState, waitFor, sleep, testCleanExit,
} from '../lib/livelib.mjs';

async function healthz(url, ms) {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), ms);
  try {
    const r = await fetch(`${url}/healthz`, { signal: ac.signal });
    return r.status;
  } catch {
    return 0;
  } finally {
    clearTimeout(t);
  }
}

describe('livestream: a failed reconciliation is retried without stalling the loop', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ env: { STREAM_DISCONNECT_TIMEOUT: '60000' } }); });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  test('list outputs fails once after a restart: retried, the server keeps answering', { timeout: 60000 }, async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    const r = await ctx.srv.stop('SIGKILL');
    assert.equal(r.sig, 'SIGKILL');
    // the recovery reconciliation's list call fails once; the retry (2 s later) is slow, so it
    // is in flight while its own deadline is in the past
    ctx.cf.injectFault({ kind: '500', count: 4, method: 'GET', pathIncludes: `${uid}/outputs` }); // 1 + 3 client retries
    ctx.cf.injectFault({ kind: 'slow', delayMs: 1500, count: 1, method: 'GET', pathIncludes: `${uid}/outputs` });
    await ctx.restart();
    await waitFor(() => /msg="reconcile: list outputs failed"/.test(ctx.logText()), { timeout: 15000, what: 'the failed list call' });
    await sleep(2500); // the retry fires and its list call is in flight
    const statuses = [];
    for (let i = 0; i < 5; i++) { statuses.push(await healthz(ctx.srv.url, 2000)); await sleep(200); }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200], 'the server answers while the retried reconciliation runs');
    // the retried reconciliation completes: the user is still ready, the server still answers
    const st = await waitState(u, 'ready', { timeout: 10000 });
    assert.equal(st.state, 'ready');
    const gets = ctx.cf.calls.filter((c) => c.method === 'GET' && c.path.endsWith(`${uid}/outputs`));
    assert.ok(gets.length >= 2, `the list call was retried (${gets.length} calls)`);
  });

  testCleanExit(() => ctx);
});
