// Issue 13 on PostgreSQL (migration 0005, the same SQL as SQLite): settings saved and read
// back across a restart, auto go-live on the connect webhook, the event log in plain words
// and bounded per user, the last known input status after a restart.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootLive, newUser, inputUid, setInput, waitState, postWebhook, cfEvent, waitFor, sleep,
  testCleanExit,
} from '../lib/livelib.mjs';

describe('stream settings on PostgreSQL', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ postgres: true, env: { STREAM_DISCONNECT_TIMEOUT: '60000' } }); });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  test('settings, auto go-live, event log, input status across a restart', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest('pg');
    assert.deepEqual((await u.api('GET', '/api/stream/settings')).json,
      { auto_start: false, auto_start_destinations: [], disconnect_protection: true });
    const p = await u.api('PUT', '/api/stream/settings', { auto_start: true, auto_start_destinations: [d.id], disconnect_protection: false });
    assert.equal(p.status, 200, p.text);
    const bad = await u.api('PUT', '/api/stream/settings', { auto_start_destinations: ['0b7a3c53-4f43-4d8e-8e1e-000000000000'] });
    assert.equal(bad.status, 422, bad.text);
    assert.equal(bad.json.error.field, 'auto_start_destinations');

    await setInput(ctx, uid, 'connected');
    const s = await waitFor(async () => { const x = await u.stream(); return x.state === 'streaming' && !x.starting && x; }, { what: 'auto streaming' });
    assert.deepEqual(s.outputs.map((o) => o.destination_id), [d.id]);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
    await setInput(ctx, uid, 'disconnected');
    await waitState(u, 'offline');
    const ev = await waitFor(async () => {
      const r = await u.api('GET', '/api/stream/events?limit=20');
      return r.json.events.some((e) => e.type === 'input_disconnected') && r.json.events;
    }, { what: 'events' });
    const msgs = ev.map((e) => e.message).filter(Boolean);
    for (const m of ['Encoder disconnected', 'You stopped the stream', 'Stream started to 1 destination', 'Encoder connected'])
      assert.ok(msgs.includes(m), `${m} in ${msgs.join(' | ')}`);
    assert.ok(msgs.some((m) => m.startsWith('Auto go-live')));

    // bounded: 60 more cycles (240 events) keep the newest 200 (auto go-live off for them)
    assert.equal((await u.api('PUT', '/api/stream/settings', { auto_start: false })).status, 200);
    for (let i = 0; i < 60; i++) {
      await sleep(3);
      assert.equal((await postWebhook(ctx, cfEvent(uid, 'connected', new Date()))).json.result, 'applied');
      await sleep(3);
      assert.equal((await postWebhook(ctx, cfEvent(uid, 'disconnected', new Date()))).json.result, 'applied');
    }
    const countAll = async () => {
      let after = 0, n = 0;
      for (;;) {
        const r = await u.api('GET', `/api/events?after_seq=${after}&limit=100`);
        if (r.json.events.length === 0) return n;
        n += r.json.events.filter((e) => e.platform === 'streampai').length;
        after = r.json.events.at(-1).seq;
      }
    };
    await waitFor(async () => (await countAll()) >= 200, { what: '200 events written' });
    await sleep(500);
    assert.equal(await countAll(), 200);

    const before = (await u.stream()).input;
    await ctx.srv.stop('SIGKILL');
    ctx.cf.forgetInputStatus(uid);
    ctx.cf.injectFault({ kind: '503', count: 2, method: 'GET', pathIncludes: uid });
    await ctx.restart();
    assert.deepEqual((await u.api('GET', '/api/stream/settings')).json,
      { auto_start: false, auto_start_destinations: [d.id], disconnect_protection: false });
    const seen = [];
    await waitFor(async () => {
      seen.push((await u.stream()).input.status);
      return ctx.cf.calls.filter((c) => c.method === 'GET' && c.path.endsWith(uid) && c.status === 200).length >= 2;
    }, { what: 'polls answered', timeout: 15000 });
    const after = (await u.stream()).input;
    assert.equal(after.status, 'disconnected', seen.join(','));
    assert.ok(!seen.includes('none'), seen.join(','));
    assert.equal(after.status_since, before.status_since);
  });

  testCleanExit(() => ctx);
});
