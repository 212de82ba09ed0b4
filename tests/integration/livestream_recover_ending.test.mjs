// Regression (chaos finding 7, docs/campaigns.md): a kill -9 while a user was `ending` (outputs
// being deleted) left the recovered user `offline` although the encoder was connected. Recovery
// took the stream_state row's `updated_at` (our receive/write time) as the time of the last input
// event and compared the provider's event times against it: the poll after the restart (the
// input connected since before that write) and the provider's retry of the lost `connected`
// notification were both dropped as stale, and `POST /api/stream/start` answered 409 not_ready
// until the encoder reconnected. Here the window is made deterministic: the `connected`
// notification is lost (sent again only after the restart), the output delete is slow, and the
// control plane is killed while the user is `ending`.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootLive, newUser, inputUid, setInput, waitState, waitFor, sleep, testCleanExit, postWebhook,
  cfEvent,
} from '../lib/livelib.mjs';

describe('livestream: recovery from `ending` with the input connected', () => {
  let ctx;
  // a long poll interval: after the first poll of a freshly loaded manager, only the webhooks and
  // the restart's own poll tell the server about the input
  before(async () => {
    ctx = await bootLive({
      env: { STREAM_DISCONNECT_TIMEOUT: '60000', CLOUDFLARE_INPUT_POLL_INTERVAL: '60000' },
    });
  });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  test('kill -9 while ending, encoder reconnected before: recovered into ready, start accepted', { timeout: 90000 }, async () => {
    const u = await newUser(ctx);
    const d = await u.addDest('a');
    const uid = await inputUid(u);
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    const st = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(st.status, 200, st.text);
    await waitFor(async () => { const x = await u.stream(); return x.outputs[0]?.status === 'active' && x; }, { what: 'output active' });
    // the encoder drops (notified), then comes back: the provider's `connected` notification is
    // lost for now; the server still believes `disconnected` (grace window running)
    await setInput(ctx, uid, 'disconnected');
    await waitFor(async () => { const x = await u.stream(); return x.input?.status === 'disconnected' && x; }, { what: 'input disconnected' });
    await setInput(ctx, uid, 'connected', false);
    const connectedAt = new Date(ctx.cf.getInput(uid).status.current.statusEnteredAt);
    await sleep(50); // every later write of ours is stamped after the provider's event time
    // the stop: `ending` is written (with the input `disconnected`), the output delete is slow
    ctx.cf.injectFault({ kind: 'slow', delayMs: 6000, count: 1, method: 'DELETE', pathIncludes: `${uid}/outputs/` });
    const stop = await u.api('POST', '/api/stream/stop');
    assert.equal(stop.status, 200, stop.text);
    assert.equal(stop.json.state, 'ending');
    await waitFor(() => ctx.cf.calls.some((c) => c.method === 'DELETE' && c.path.includes(`${uid}/outputs/`)), { what: 'output delete in flight' });
    const k = await ctx.srv.stop('SIGKILL');
    assert.equal(k.sig, 'SIGKILL');
    ctx.cf.clearFaults();
    await ctx.restart();
    await waitFor(() => /msg="state recovered" state=ending/.test(ctx.logText()), { what: 'ending recovered' });
    // the provider retries the lost notification, with its own event time
    const wh = await postWebhook(ctx, cfEvent(uid, 'connected', connectedAt));
    assert.equal(wh.status, 200, wh.text);
    assert.notEqual(wh.json.result, 'stale', 'the retried notification is not older than what the server knows');
    const s = await waitState(u, 'ready', { timeout: 10000 });
    assert.equal(s.input.status, 'connected');
    assert.deepEqual(ctx.cf.getInput(uid).outputs, [], 'the ended stream\'s output is gone');
    // the user can go live again at once
    const again = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(again.status, 200, again.text);
    await waitFor(async () => { const x = await u.stream(); return x.outputs[0]?.status === 'active' && x; }, { what: 'output active again' });
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready', { timeout: 10000 });
  });

  test('kill -9 while ending, no notification after the restart: the restart\'s poll finds the encoder', { timeout: 90000 }, async () => {
    const u = await newUser(ctx);
    const d = await u.addDest('b');
    const uid = await inputUid(u);
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    assert.equal((await u.api('POST', '/api/stream/start', { destinations: [d.id] })).status, 200);
    await waitFor(async () => { const x = await u.stream(); return x.outputs[0]?.status === 'active' && x; }, { what: 'output active' });
    await setInput(ctx, uid, 'disconnected');
    await waitFor(async () => { const x = await u.stream(); return x.input?.status === 'disconnected' && x; }, { what: 'input disconnected' });
    await setInput(ctx, uid, 'connected', false); // never notified
    await sleep(50);
    ctx.cf.injectFault({ kind: 'slow', delayMs: 6000, count: 1, method: 'DELETE', pathIncludes: `${uid}/outputs/` });
    const stop = await u.api('POST', '/api/stream/stop');
    assert.equal(stop.status, 200, stop.text);
    await waitFor(() => ctx.cf.calls.some((c) => c.method === 'DELETE' && c.path.includes(`${uid}/outputs/`)), { what: 'output delete in flight' });
    assert.equal((await ctx.srv.stop('SIGKILL')).sig, 'SIGKILL');
    ctx.cf.clearFaults();
    await ctx.restart();
    // nobody looks at the stream for a while: the recovered manager must not be dropped before
    // it knows the input, and the stored state must say ready
    await sleep(3000);
    const s = await waitState(u, 'ready', { timeout: 10000 });
    assert.equal(s.input.status, 'connected');
    const again = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(again.status, 200, again.text);
    await waitFor(async () => { const x = await u.stream(); return x.outputs[0]?.status === 'active' && x; }, { what: 'output active again' });
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready', { timeout: 10000 });
  });

  testCleanExit(() => ctx);
});
