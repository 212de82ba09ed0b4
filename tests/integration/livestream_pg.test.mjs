// The livestream manager on PostgreSQL 15 (the same SQL as SQLite): a full
// stream cycle with a partial failure, destinations, and a kill -9 between the
// output API call and its confirmation (adopted after restart, no duplicate).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootLive, newUser, inputUid, setInput, waitState, outputsOf, waitFor, sleep,
  testCleanExit,
} from '../lib/livelib.mjs';

describe('livestream on PostgreSQL', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ postgres: true, env: { STREAM_DISCONNECT_TIMEOUT: '60000' } }); });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  test('cycle with partial failure, history, events, destinations', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const a = await u.addDest('a', 'rtmp://127.0.0.1:1935/a', 'key-a');
    const b = await u.addDest('b', 'rtmp://127.0.0.1:1935/b', 'key-b');
    assert.equal((await u.api('POST', `/api/destinations/${a.id}/reveal`)).json.stream_key, 'key-a');
    const p = await u.api('PATCH', `/api/destinations/${b.id}`, { name: 'bee' });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.json.name, 'bee');
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    assert.equal((await u.api('PUT', '/api/stream/metadata', { title: 'pg show' })).status, 200);
    ctx.cf.injectFault({ kind: 'envelope', count: 1, method: 'POST', pathIncludes: `${uid}/outputs`, code: 10006, message: 'bad' });
    const st = await u.api('POST', '/api/stream/start', { destinations: [a.id, b.id] });
    assert.equal(st.status, 200, st.text);
    assert.equal(st.json.partial_failure, true);
    await waitFor(async () => (await u.stream()).outputs.every((o) => o.status === 'active'), { timeout: 8000, what: 'retry' });
    assert.equal(outputsOf(ctx, uid).length, 2);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
    assert.equal(outputsOf(ctx, uid).length, 0);
    const one = await u.api('GET', `/api/streams/${st.json.stream_id}`);
    assert.equal(one.status, 200, one.text);
    assert.equal(one.json.end_reason, 'user_stop');
    assert.equal(one.json.title, 'pg show');
    assert.ok(Array.isArray(one.json.destinations) && one.json.destinations.length === 2, one.text);
    assert.equal(one.json.outputs.length, 2);
    const ev = await waitFor(async () => {
      const e = await u.api('GET', `/api/events?stream_id=${st.json.stream_id}`);
      return e.json.events.some((x) => x.type === 'stream_ended') && e;
    }, { what: 'events' });
    assert.equal(typeof ev.json.events[0].payload, 'object');
    assert.equal((await u.api('DELETE', `/api/destinations/${a.id}`)).status, 204);
  });

  test('kill -9 after the output call: adopted after restart', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest('k', 'rtmp://127.0.0.1:1935/k', 'key-k');
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    ctx.cf.injectFault({ kind: 'slow', delayMs: 1200, count: 1, method: 'POST', pathIncludes: `${uid}/outputs` });
    const pending = u.api('POST', '/api/stream/start', { destinations: [d.id] }).catch(() => null);
    await waitFor(() => ctx.cf.calls.some((c) => c.method === 'POST' && c.path.endsWith(`${uid}/outputs`)), { what: 'POST sent' });
    const sid = (await u.stream()).stream_id;
    await ctx.srv.stop('SIGKILL');
    await pending;
    await sleep(1400);
    await ctx.restart();
    const s = await waitFor(async () => { const x = await u.stream(); return x.outputs[0]?.status === 'active' && x; }, { what: 'adopted' });
    assert.equal(s.stream_id, sid);
    assert.equal(outputsOf(ctx, uid).length, 1);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
    assert.equal(outputsOf(ctx, uid).length, 0);
  });

  testCleanExit(() => ctx);
});
