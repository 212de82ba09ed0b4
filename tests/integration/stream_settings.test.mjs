// Issue 13: stream settings (GET/PUT /api/stream/settings), auto go-live against the fake
// Cloudflare (webhook and poll, duplicates and reordered notifications, no destination,
// deleted destination, a failed start, kill -9 during an auto start), the persistent event
// log (GET /api/stream/events: plain words, bounded per user) and the input's last known
// status after a restart (never "Never connected" once it was seen).
import { describe, test, before, after } from 'node:test';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import assert from 'node:assert/strict';
import {
  bootLive, newUser, inputUid, setInput, waitState, outputsOf, postWebhook, cfEvent,
  sleep, waitFor, testCleanExit,
} from '../lib/livelib.mjs';

function assertErr(r, status, code, field) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error?.code, code, r.text);
  if (field !== undefined) assert.equal(r.json.error.field, field, r.text);
}

const outputPosts = (ctx, uid) => ctx.cf.calls.filter((c) => c.method === 'POST' && c.path.endsWith(`${uid}/outputs`));
const events = async (u, limit = 50) => {
  const r = await u.api('GET', `/api/stream/events?limit=${limit}`);
  assert.equal(r.status, 200, r.text);
  return r.json.events;
};
const hasEvent = async (u, type) => (await events(u)).find((e) => e.type === type);

describe('stream settings and auto go-live (fake Cloudflare)', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ env: { STREAM_DISCONNECT_TIMEOUT: '60000' } }); });
  after(() => ctx?.stop()); // cleanup only: the last test asserts the clean exit

  test('defaults, validation (422 with the field), saved across a restart', async () => {
    const u = await newUser(ctx);
    const g = await u.api('GET', '/api/stream/settings');
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.json, { auto_start: false, auto_start_destinations: [], disconnect_protection: true });
    const d = await u.addDest('val');
    assertErr(await u.api('PUT', '/api/stream/settings', { auto_start: 'yes' }), 422, 'invalid', 'auto_start');
    assertErr(await u.api('PUT', '/api/stream/settings', { disconnect_protection: 1 }), 422, 'invalid', 'disconnect_protection');
    assertErr(await u.api('PUT', '/api/stream/settings', { auto_start_destinations: d.id }), 422, 'invalid', 'auto_start_destinations');
    assertErr(await u.api('PUT', '/api/stream/settings', { auto_start_destinations: [7] }), 422, 'invalid', 'auto_start_destinations');
    assertErr(await u.api('PUT', '/api/stream/settings', { auto_start_destinations: [d.id, d.id] }), 422, 'invalid', 'auto_start_destinations');
    assertErr(await u.api('PUT', '/api/stream/settings', { auto_start_destinations: Array.from({ length: 33 }, (_, i) => `id-${i}`) }), 422, 'invalid', 'auto_start_destinations');
    assertErr(await u.api('PUT', '/api/stream/settings', { auto_start_destinations: ['0b7a3c53-4f43-4d8e-8e1e-000000000000'] }), 422, 'unknown_destination', 'auto_start_destinations');
    assertErr(await u.api('PUT', '/api/stream/settings', { colour: 'red' }), 422, 'invalid', 'colour');
    assert.equal((await u.api('PUT', '/api/stream/settings', [true])).status, 400, 'not an object');
    // another user's destination is unknown to this one
    const other = await newUser(ctx);
    assertErr(await other.api('PUT', '/api/stream/settings', { auto_start_destinations: [d.id] }), 422, 'unknown_destination', 'auto_start_destinations');
    assert.deepEqual((await u.api('GET', '/api/stream/settings')).json.auto_start, false, 'refused PUTs change nothing');

    const p = await u.api('PUT', '/api/stream/settings', { auto_start: true, auto_start_destinations: [d.id], disconnect_protection: false });
    assert.equal(p.status, 200, p.text);
    assert.deepEqual(p.json, { auto_start: true, auto_start_destinations: [d.id], disconnect_protection: false });
    // a partial PUT keeps the other fields
    const p2 = await u.api('PUT', '/api/stream/settings', { auto_start: false });
    assert.deepEqual(p2.json, { auto_start: false, auto_start_destinations: [d.id], disconnect_protection: false });
    assert.equal((await u.api('GET', '/api/stream/settings', undefined)).json.disconnect_protection, false);
    assert.deepEqual((await other.api('GET', '/api/stream/settings')).json.disconnect_protection, true, 'per user');
    await ctx.srv.stop('SIGKILL');
    await ctx.restart();
    const g2 = await u.api('GET', '/api/stream/settings');
    assert.deepEqual(g2.json, { auto_start: false, auto_start_destinations: [d.id], disconnect_protection: false });
  });

  test('auto go-live on the connect webhook; duplicate and reordered webhooks start nothing twice', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest('auto');
    const off = await u.addDest('notselected');
    assert.equal((await u.api('PUT', '/api/stream/settings', { auto_start: true, auto_start_destinations: [d.id] })).status, 200);
    await setInput(ctx, uid, 'connected', false); // what the polls see (no webhook from the fake)
    const t0 = new Date();
    const wh = await postWebhook(ctx, cfEvent(uid, 'connected', t0));
    assert.equal(wh.status, 200, wh.text);
    const s = await waitFor(async () => { const x = await u.stream(); return x.state === 'streaming' && !x.starting && x; }, { what: 'auto streaming' });
    assert.equal(s.outputs.length, 1);
    assert.equal(s.outputs[0].destination_id, d.id, 'only the selected destination');
    assert.notEqual(s.outputs[0].destination_id, off.id);
    assert.equal(outputsOf(ctx, uid).length, 1);
    // the same notification again, and an older disconnect arriving late
    assert.equal((await postWebhook(ctx, cfEvent(uid, 'connected', t0))).json.result, 'duplicate');
    assert.equal((await postWebhook(ctx, cfEvent(uid, 'disconnected', new Date(t0.getTime() - 5000)))).json.result, 'stale');
    assert.equal((await postWebhook(ctx, cfEvent(uid, 'connected', new Date(t0.getTime() + 10)))).json.result, 'duplicate');
    await sleep(500);
    const s2 = await u.stream();
    assert.equal(s2.stream_id, s.stream_id, 'same stream');
    assert.equal(outputPosts(ctx, uid).length, 1, 'one output create');
    const hist = (await u.api('GET', '/api/streams')).json.streams;
    assert.equal(hist.length, 1, 'one stream recorded');
    const ev = await hasEvent(u, 'auto_start');
    assert.ok(ev, 'auto_start event');
    assert.match(ev.message, /Auto go-live/);
    // a user stop is not undone by auto go-live while the encoder stays connected
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
    await sleep(500);
    assert.equal((await u.stream()).state, 'ready');
    assert.equal(outputPosts(ctx, uid).length, 1);
    // reconnecting the encoder starts again (a new connection)
    await setInput(ctx, uid, 'disconnected');
    await waitState(u, 'offline');
    await setInput(ctx, uid, 'connected');
    const s3 = await waitFor(async () => { const x = await u.stream(); return x.state === 'streaming' && !x.starting && x; }, { what: 'auto streaming again' });
    assert.notEqual(s3.stream_id, s.stream_id);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
  });

  test('auto go-live off: a connecting encoder only makes the stream ready', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest('manual');
    assert.equal((await u.api('PUT', '/api/stream/settings', { auto_start: false, auto_start_destinations: [d.id] })).status, 200);
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    await sleep(600);
    assert.equal((await u.stream()).state, 'ready');
    assert.equal(outputPosts(ctx, uid).length, 0);
  });

  test('nothing selected, or the selection deleted: not started, the event says why', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    assert.equal((await u.api('PUT', '/api/stream/settings', { auto_start: true, auto_start_destinations: [] })).status, 200);
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    const ev = await waitFor(() => hasEvent(u, 'auto_start_skipped'), { what: 'skipped event' });
    assert.match(ev.message, /no destination is selected/);
    const st = await u.stream();
    assert.equal(st.state, 'ready');
    assert.match(st.error, /Auto go-live did not start/);

    const v = await newUser(ctx);
    const vuid = await inputUid(v);
    const d = await v.addDest('gone');
    assert.equal((await v.api('PUT', '/api/stream/settings', { auto_start: true, auto_start_destinations: [d.id] })).status, 200);
    assert.equal((await v.api('DELETE', `/api/destinations/${d.id}`)).status, 204);
    await setInput(ctx, vuid, 'connected');
    await waitState(v, 'ready');
    const ev2 = await waitFor(() => hasEvent(v, 'auto_start_skipped'), { what: 'skipped event' });
    assert.match(ev2.message, /deleted or disabled/);
    assert.equal((await v.stream()).state, 'ready');
    assert.equal(outputPosts(ctx, vuid).length, 0);
  });

  test('a failed auto start is shown as such (event and state message)', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest('broken');
    assert.equal((await u.api('PUT', '/api/stream/settings', { auto_start: true, auto_start_destinations: [d.id] })).status, 200);
    ctx.cf.injectFault({ kind: 'envelope', count: 50, method: 'POST', pathIncludes: `${uid}/outputs`, code: 10004, message: 'Output refused' });
    await setInput(ctx, uid, 'connected');
    const ev = await waitFor(() => hasEvent(u, 'auto_start_failed'), { what: 'failed event', timeout: 20000 });
    assert.match(ev.message, /^Auto go-live failed: /);
    const st = await u.stream();
    assert.match(st.error, /^Auto go-live failed/);
    assert.notEqual(st.state, 'streaming');
    const fail = (await events(u)).find((e) => e.type === 'output_failed');
    assert.ok(fail, 'the destination failure is logged');
    assert.match(fail.message, /^broken: could not be started/);
    ctx.cf.clearFaults();
  });

  test('kill -9 while the auto start creates its output: one stream, one output after restart', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest('crash');
    assert.equal((await u.api('PUT', '/api/stream/settings', { auto_start: true, auto_start_destinations: [d.id] })).status, 200);
    ctx.cf.injectFault({ kind: 'hang', count: 1, method: 'POST', pathIncludes: `${uid}/outputs` });
    await setInput(ctx, uid, 'connected');
    await waitFor(() => outputPosts(ctx, uid).length === 1, { what: 'output POST sent' });
    const mid = await u.stream();
    assert.equal(mid.state, 'streaming');
    await ctx.srv.stop('SIGKILL');
    await ctx.restart();
    const s = await waitFor(async () => { const x = await u.stream(); return x.outputs[0]?.status === 'active' && x; }, { what: 'recreated', timeout: 15000 });
    assert.equal(s.stream_id, mid.stream_id, 'the same stream: not started twice');
    await sleep(800);
    assert.equal(outputsOf(ctx, uid).length, 1);
    assert.equal((await u.api('GET', '/api/streams')).json.streams.length, 1);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
  });

  test('kill -9 after the auto go-live intent was stored: started once after restart, or dropped', async () => {
    const sql = (q) => execFileSync('sqlite3', ['-cmd', '.timeout 5000', path.join(ctx.dataDir, 'streampai.db'), q], { encoding: 'utf8' }).trim();
    // A: ready with the encoder connected, the intent stored, the start never made
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest('owed');
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    assert.equal((await u.api('PUT', '/api/stream/settings', { auto_start: true, auto_start_destinations: [d.id] })).status, 200);
    await sleep(300);
    assert.equal((await u.stream()).state, 'ready', 'turning it on does not start a connected encoder');
    // B: offline (the encoder left) with an intent left behind
    const v = await newUser(ctx);
    const vuid = await inputUid(v);
    const vd = await v.addDest('stale');
    assert.equal((await v.api('PUT', '/api/stream/settings', { auto_start: true, auto_start_destinations: [vd.id] })).status, 200);
    await ctx.srv.stop('SIGKILL');
    sql(`UPDATE stream_settings SET auto_start_pending = 1 WHERE user_id IN ('${u.id}', '${v.id}')`);
    await ctx.restart();
    const s = await waitFor(async () => { const x = await u.stream(); return x.state === 'streaming' && !x.starting && x; }, { what: 'owed start made', timeout: 15000 });
    assert.deepEqual(s.outputs.map((o) => o.destination_id), [d.id]);
    assert.equal((await v.stream()).state, 'offline');
    await waitFor(() => sql(`SELECT auto_start_pending FROM stream_settings WHERE user_id IN ('${u.id}', '${v.id}') ORDER BY user_id`) === '0\n0', { what: 'intents cleared' });
    await sleep(500);
    assert.equal(outputPosts(ctx, uid).length, 1, 'started once');
    assert.equal(outputPosts(ctx, vuid).length, 0, 'the stale intent started nothing');
    assert.equal((await u.api('GET', '/api/streams')).json.streams.length, 1);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
  });

  test('auto go-live on a poll (no webhook)', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest('polled');
    assert.equal((await u.api('PUT', '/api/stream/settings', { auto_start: true, auto_start_destinations: [d.id] })).status, 200);
    await setInput(ctx, uid, 'connected', false);
    const s = await waitFor(async () => { const x = await u.stream(); return x.state === 'streaming' && !x.starting && x; }, { what: 'auto streaming by poll' });
    assert.equal(s.outputs.length, 1);
    assert.equal(outputPosts(ctx, uid).length, 1);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
  });

  test('event log: plain words, newest first, limit checked, bounded per user', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest('log');
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    assert.equal((await u.api('POST', '/api/stream/start', { destinations: [d.id] })).status, 200);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
    const ev = await waitFor(async () => { const e = await events(u); return e.some((x) => x.type === 'stream_ended') && e; }, { what: 'stream_ended logged' });
    const byType = Object.fromEntries(ev.map((e) => [e.type, e]));
    assert.equal(byType.stream_ended.message, 'You stopped the stream');
    assert.equal(byType.stream_started.message, 'Stream started to 1 destination');
    assert.equal(byType.input_connected.message, 'Encoder connected');
    for (const e of ev) {
      if (e.message) assert.doesNotMatch(e.message, /user_stop|disconnect_timeout/);
      assert.equal(typeof e.created_at, 'number');
    }
    for (let i = 1; i < ev.length; i++) assert.ok(ev[i - 1].seq > ev[i].seq, 'newest first');
    assertErr(await u.api('GET', '/api/stream/events?limit=0'), 422, 'invalid', 'limit');
    assertErr(await u.api('GET', '/api/stream/events?limit=201'), 422, 'invalid', 'limit');
    assertErr(await u.api('GET', '/api/stream/events?limit=abc'), 422, 'invalid', 'limit');
    assert.equal((await events(u, 1)).length, 1);
    // another user sees none of them
    const other = await newUser(ctx);
    assert.equal((await events(other)).length, 0);
    assert.equal((await fetch(ctx.srv.url + '/api/stream/events')).status, 401);

    // retention: 60 encoder disconnect/connect cycles (4 events each, 240) keep the newest 200
    // (the server takes a notification from the future as now: space them out for real)
    for (let i = 0; i < 60; i++) {
      await sleep(3);
      assert.equal((await postWebhook(ctx, cfEvent(uid, 'disconnected', new Date()))).json.result, 'applied');
      await sleep(3);
      assert.equal((await postWebhook(ctx, cfEvent(uid, 'connected', new Date()))).json.result, 'applied');
    }
    // every streampai event of the user, paged through GET /api/events (written in batches:
    // wait for the last ones, then the count stays at 200)
    const countAll = async () => {
      let after = 0, n = 0;
      for (;;) {
        const r = await u.api('GET', `/api/events?after_seq=${after}&limit=100`);
        assert.equal(r.status, 200, r.text);
        if (r.json.events.length === 0) return n;
        n += r.json.events.filter((e) => e.platform === 'streampai').length;
        after = r.json.events.at(-1).seq;
      }
    };
    await waitFor(async () => (await countAll()) >= 200, { what: '200 events written' });
    await sleep(500);
    assert.equal(await countAll(), 200, 'the newest 200 kept');
    const newest = await events(u, 200);
    assert.equal(newest[0].type === 'state_changed' || newest[0].type === 'input_connected', true);
    assert.ok(!newest.some((e) => e.type === 'stream_ended'), 'the oldest (the stream) went first');
  });

  test('the last known input status survives a restart of the server and of the media service', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    await setInput(ctx, uid, 'disconnected');
    await waitState(u, 'offline');
    const before = (await u.stream()).input;
    assert.equal(before.status, 'disconnected');
    assert.equal(before.last_status, 'disconnected');
    assert.equal(typeof before.status_since, 'number');
    await ctx.srv.stop('SIGKILL');
    // the media service restarts too (like the built-in relay without its state): it no
    // longer knows the input ever connected, and it is unreachable for a moment
    ctx.cf.forgetInputStatus(uid);
    ctx.cf.injectFault({ kind: '503', count: 2, method: 'GET', pathIncludes: uid });
    await ctx.restart();
    const seen = [];
    await waitFor(async () => {
      const s = await u.stream();
      seen.push(s.input.status);
      return ctx.cf.calls.filter((c) => c.method === 'GET' && c.path.endsWith(uid) && c.status === 200).length >= 2;
    }, { what: 'polls answered', timeout: 15000 });
    const after = (await u.stream()).input;
    assert.equal(after.status, 'disconnected', `statuses seen: ${seen.join(',')}`);
    assert.ok(!seen.includes('none'), `never "Never connected": ${seen.join(',')}`);
    assert.equal(after.last_status, 'disconnected');
    assert.equal(after.status_since, before.status_since, 'since when, unchanged');
  });

  testCleanExit(() => ctx);
});
