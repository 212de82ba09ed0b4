// Crash safety of the livestream manager: kill -9 at each step of start and
// stop, then restart: the same stream id, and on the fake Cloudflare exactly
// one output per destination while streaming, none after stop (no
// duplicates, no orphans).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootLive, newUser, inputUid, setInput, waitState, outputsOf, waitFor, sleep,
  testCleanExit,
} from '../lib/livelib.mjs';

const postOutputCalls = (ctx, uid) => ctx.cf.calls.filter((c) => c.method === 'POST' && c.path.endsWith(`${uid}/outputs`));

async function kill9(ctx) {
  const r = await ctx.srv.stop('SIGKILL');
  assert.equal(r.sig, 'SIGKILL');
}

describe('livestream: kill -9 and restart reconciliation', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ env: { STREAM_DISCONNECT_TIMEOUT: '60000' } }); });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  async function readyUser(name) {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest(name, `rtmp://127.0.0.1:1935/${name}`);
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    return { u, uid, d };
  }

  test('killed after the output API call, before its confirmation: adopted, not duplicated', async () => {
    const { u, uid, d } = await readyUser('adopt');
    ctx.cf.injectFault({ kind: 'slow', delayMs: 1200, count: 1, method: 'POST', pathIncludes: `${uid}/outputs` });
    const pending = u.api('POST', '/api/stream/start', { destinations: [d.id] }).catch(() => null);
    await waitFor(() => postOutputCalls(ctx, uid).length === 1, { what: 'output POST sent' });
    const mid = await u.stream();
    assert.equal(mid.state, 'streaming');
    assert.equal(mid.starting, true);
    const streamId = mid.stream_id;
    await kill9(ctx);
    await pending;
    await sleep(1400); // the fake completes the create after we died
    assert.equal(outputsOf(ctx, uid).length, 1);
    await ctx.restart();
    const s = await waitFor(async () => { const x = await u.stream(); return x.outputs.length === 1 && x.outputs[0].status === 'active' && x; }, { what: 'adopted' });
    assert.equal(s.state, 'streaming');
    assert.equal(s.stream_id, streamId, 'same stream id after restart');
    assert.equal(outputsOf(ctx, uid).length, 1, 'no duplicate output');
    assert.equal(postOutputCalls(ctx, uid).length, 1, 'adopted by url+key, not created again');
    assert.equal(s.outputs[0].output_uid, outputsOf(ctx, uid)[0].uid);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
    assert.equal(outputsOf(ctx, uid).length, 0);
  });

  test('killed while the output API call never arrived: recreated exactly once', async () => {
    const { u, uid, d } = await readyUser('recreate');
    ctx.cf.injectFault({ kind: 'hang', count: 1, method: 'POST', pathIncludes: `${uid}/outputs` });
    const pending = u.api('POST', '/api/stream/start', { destinations: [d.id] }).catch(() => null);
    await waitFor(() => postOutputCalls(ctx, uid).length === 1, { what: 'output POST sent' });
    const streamId = (await u.stream()).stream_id;
    await kill9(ctx);
    await pending;
    assert.equal(outputsOf(ctx, uid).length, 0);
    await ctx.restart();
    const s = await waitFor(async () => { const x = await u.stream(); return x.outputs[0]?.status === 'active' && x; }, { what: 'recreated' });
    assert.equal(s.stream_id, streamId);
    assert.equal(outputsOf(ctx, uid).length, 1);
    assert.equal(postOutputCalls(ctx, uid).length, 2);
    await sleep(600);
    assert.equal(outputsOf(ctx, uid).length, 1, 'still exactly one');
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
    assert.equal(outputsOf(ctx, uid).length, 0);
  });

  test('killed during stop: cleanup finishes after restart, stream closed with user_stop', async () => {
    const { u, uid, d } = await readyUser('stopper');
    const st = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(st.status, 200, st.text);
    assert.equal(outputsOf(ctx, uid).length, 1);
    ctx.cf.injectFault({ kind: 'hang', count: 1, method: 'DELETE', pathIncludes: `${uid}/outputs` });
    const stop = await u.api('POST', '/api/stream/stop');
    assert.equal(stop.status, 200);
    assert.equal(stop.json.state, 'ending');
    await waitFor(() => ctx.cf.calls.some((c) => c.method === 'DELETE' && c.path.includes(uid)), { what: 'DELETE sent' });
    await kill9(ctx);
    assert.equal(outputsOf(ctx, uid).length, 1, 'the hung delete did nothing');
    await ctx.restart();
    const s = await waitState(u, 'ready');
    assert.equal(s.stream_id, null);
    assert.equal(outputsOf(ctx, uid).length, 0, 'no orphan');
    const one = await u.api('GET', `/api/streams/${st.json.stream_id}`);
    assert.equal(one.json.state, 'ended');
    assert.equal(one.json.end_reason, 'user_stop');
    assert.ok(one.json.outputs.every((o) => o.state === 'closed'));
  });

  test('killed while streaming: same stream, deadline kept, orphans deleted', async () => {
    const { u, uid, d } = await readyUser('live');
    const st = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(st.status, 200, st.text);
    await setInput(ctx, uid, 'disconnected');
    const lost = await waitFor(async () => { const x = await u.stream(); return x.disconnect_deadline && x; }, { what: 'deadline' });
    await kill9(ctx);
    // an output nobody owns appears on the input meanwhile
    const r = await fetch(`${ctx.cf.url}/accounts/${ctx.cf.accountId}/stream/live_inputs/${uid}/outputs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ctx.cf.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'rtmp://127.0.0.1:1935/stray', streamKey: 'stray-key' }),
    });
    assert.equal(r.status, 200);
    assert.equal(outputsOf(ctx, uid).length, 2);
    await ctx.restart();
    const s = await waitFor(async () => { const x = await u.stream(); return outputsOf(ctx, uid).length === 1 && x; }, { what: 'orphan deleted' });
    assert.equal(s.state, 'streaming');
    assert.equal(s.stream_id, st.json.stream_id);
    assert.equal(s.disconnect_deadline, lost.disconnect_deadline, 'same deadline');
    assert.equal(outputsOf(ctx, uid)[0].url, `rtmp://127.0.0.1:1935/live`);
    await setInput(ctx, uid, 'connected');
    await waitFor(async () => (await u.stream()).disconnect_deadline === null, { what: 'reconnect cancels' });
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
    assert.equal(outputsOf(ctx, uid).length, 0);
  });

  test('SIGTERM while an output call hangs: clean exit (no leak), restart reconciles', async () => {
    const { u, uid, d } = await readyUser('term');
    ctx.cf.injectFault({ kind: 'hang', count: 1, method: 'POST', pathIncludes: `${uid}/outputs` });
    const pending = u.api('POST', '/api/stream/start', { destinations: [d.id] }).catch(() => null);
    await waitFor(() => postOutputCalls(ctx, uid).length === 1, { what: 'output POST sent' });
    const streamId = (await u.stream()).stream_id;
    const r = await ctx.srv.stop('SIGTERM');
    assert.equal(r.code, 0, `exit ${r.code}/${r.sig}\n${ctx.logText().slice(-3000)}`);
    const answer = await pending;
    assert.ok(answer === null || answer.status === 503, 'the pending start is answered or cut');
    await ctx.restart();
    const s = await waitFor(async () => { const x = await u.stream(); return x.outputs[0]?.status === 'active' && x; }, { what: 'recreated' });
    assert.equal(s.stream_id, streamId);
    assert.equal(outputsOf(ctx, uid).length, 1);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
    assert.equal(outputsOf(ctx, uid).length, 0);
  });

  testCleanExit(() => ctx);
});
