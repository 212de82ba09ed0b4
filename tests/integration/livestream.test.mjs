// The livestream manager against the fake Cloudflare: every state transition
// and 409, webhooks (auth, duplicates, stale), the disconnect grace window,
// partial and total output failure, an API outage, two users at once,
// destinations (sealed keys, masking, reveal, limits, tenant isolation).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootLive, newUser, inputUid, setInput, waitState, outputsOf, postWebhook, cfEvent, admin,
  sleep, waitFor, WEBHOOK_SECRET,
  testCleanExit,
} from '../lib/livelib.mjs';

function assertErr(r, status, code) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error?.code, code, r.text);
  assert.equal(typeof r.json.error.message, 'string');
}

describe('livestream (fake Cloudflare, webhooks on)', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ env: { MAX_PLATFORMS_PER_USER: '3' } }); });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  test('every transition, 409s, stream record and events', async () => {
    const creates = () => ctx.cf.calls.filter((c) => c.method === 'POST' && /live_inputs$/.test(c.path)).length;
    const createsBefore = creates();
    const u = await newUser(ctx);
    const s0 = await u.stream();
    assert.equal(s0.state, 'offline');
    assert.equal(s0.input.provider, 'cloudflare');
    assert.equal(s0.input.status, 'none');
    assert.match(s0.input.rtmp_url, /^rtmps:\/\//);
    assert.ok(s0.input.stream_key.length > 10);
    const uid = s0.input.input_uid;
    // the input is created once and stored: same uid on the next read, one create call
    assert.equal((await u.stream()).input.input_uid, uid);
    assert.equal(creates() - createsBefore, 1, 'exactly one live input created for the user');

    assertErr(await u.api('POST', '/api/stream/start', { destinations: [] }), 409, 'not_ready');
    assertErr(await u.api('POST', '/api/stream/stop'), 409, 'not_streaming');

    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    assertErr(await u.api('POST', '/api/stream/stop'), 409, 'not_streaming');
    // ready, but nothing selected: refused, and nothing changes (no "live" to nowhere)
    assertErr(await u.api('POST', '/api/stream/start', { destinations: [] }), 422, 'no_destinations');
    assertErr(await u.api('POST', '/api/stream/start', {}), 422, 'no_destinations');
    assert.equal((await u.stream()).state, 'ready');

    const d = await u.addDest('one');
    assertErr(await u.api('POST', '/api/stream/start', { destinations: ['0b7a3c53-4f43-4d8e-8e1e-000000000000'] }), 422, 'unknown_destination');
    assert.equal((await u.stream()).state, 'ready', 'a refused start changes nothing');
    const meta = await u.api('PUT', '/api/stream/metadata', { title: 'My show', description: 'd' });
    assert.equal(meta.status, 200, meta.text);

    const st = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(st.status, 200, st.text);
    assert.equal(st.json.state, 'streaming');
    assert.match(st.json.stream_id, /^[0-9a-f-]{36}$/);
    assert.equal(st.json.outputs.length, 1);
    assert.equal(st.json.outputs[0].status, 'active');
    const outs = outputsOf(ctx, uid);
    assert.equal(outs.length, 1);
    assert.equal(outs[0].url, 'rtmp://127.0.0.1:1935/live');
    assert.equal(outs[0].streamKey, d.key, 'the unsealed key reaches the media API');

    assertErr(await u.api('POST', '/api/stream/start', { destinations: [d.id] }), 409, 'already_streaming');
    assertErr(await u.api('DELETE', `/api/destinations/${d.id}`), 409, 'in_use');
    const live = await u.stream();
    assert.equal(live.stream_id, st.json.stream_id);
    assert.equal(live.title, 'My show');

    const stop = await u.api('POST', '/api/stream/stop');
    assert.equal(stop.status, 200, stop.text);
    assert.equal(stop.json.end_reason, 'user_stop');
    const after1 = await waitState(u, 'ready'); // input still connected
    assert.equal(after1.stream_id, null);
    assert.equal(outputsOf(ctx, uid).length, 0, 'outputs deleted at stop');
    assertErr(await u.api('POST', '/api/stream/stop'), 409, 'not_streaming');

    await setInput(ctx, uid, 'disconnected');
    await waitState(u, 'offline');

    const hist = await u.api('GET', '/api/streams');
    assert.equal(hist.status, 200);
    const row = hist.json.streams.find((x) => x.id === st.json.stream_id);
    assert.ok(row, 'stream in history');
    assert.equal(row.end_reason, 'user_stop');
    assert.equal(row.state, 'ended');
    assert.equal(row.title, 'My show');
    assert.ok(row.ended_at >= row.started_at);
    const one = await u.api('GET', `/api/streams/${st.json.stream_id}`);
    assert.equal(one.status, 200);
    assert.equal(one.json.outputs.length, 1);
    assert.equal(one.json.outputs[0].state, 'closed');
    const ev = await waitFor(async () => {
      const e = await u.api('GET', `/api/events?stream_id=${st.json.stream_id}`);
      return e.json.events.some((x) => x.type === 'stream_ended') && e;
    }, { what: 'events' });
    const types = ev.json.events.map((x) => x.type);
    assert.ok(types.includes('stream_started'));
    // another user cannot read it
    const other = await newUser(ctx);
    assertErr(await other.api('GET', `/api/streams/${st.json.stream_id}`), 404, 'not_found');
  });

  test('webhook: any wrong secret refused alike, duplicates idempotent, stale ignored', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    // wrong or missing secret: 401, nothing changes. Near misses (one byte off at either end,
    // a prefix, the secret plus a byte) get the very same answer as an unrelated value.
    // (The comparison itself is sodium_memcmp; its timing is not measurable through HTTP.)
    const early = new Date();
    let r = await postWebhook(ctx, cfEvent(uid, 'connected', early), 'wrong-secret-wrong-secret-00001');
    assertErr(r, 401, 'unauthorized');
    const refusal = r.text;
    const last = WEBHOOK_SECRET.slice(-1) === 'x' ? 'y' : 'x';
    for (const bad of [`${WEBHOOK_SECRET.slice(0, -1)}${last}`, `X${WEBHOOK_SECRET.slice(1)}`,
      WEBHOOK_SECRET.slice(0, -1), `${WEBHOOK_SECRET}0`, WEBHOOK_SECRET.toUpperCase(), '']) {
      r = await postWebhook(ctx, cfEvent(uid, 'connected', early), bad);
      assert.equal(r.status, 401, `${JSON.stringify(bad)}: ${r.text}`);
      assert.equal(r.text, refusal, `${JSON.stringify(bad)}: the same refusal`);
    }
    r = await postWebhook(ctx, cfEvent(uid, 'connected', early), null);
    assertErr(r, 401, 'unauthorized');
    await sleep(500);
    assert.equal((await u.stream()).state, 'offline');
    // the fake's own state agrees with the notifications we forge (its poll answers then
    // report statusEnteredAt <= t0, so polling cannot race the webhooks below)
    await ctx.cf.setInputState(uid, 'connected', { webhook: false });
    await sleep(2);
    const t0 = new Date();
    // applied, then duplicate
    r = await postWebhook(ctx, cfEvent(uid, 'connected', t0));
    assert.equal(r.status, 200, r.text);
    // 'duplicate' only if a poll saw the fake's state first (a busy machine)
    assert.ok(['applied', 'duplicate'].includes(r.json.result), r.text);
    assert.equal((await u.stream()).state, 'ready');
    r = await postWebhook(ctx, cfEvent(uid, 'connected', t0));
    assert.equal(r.json.result, 'duplicate');
    // malformed and non-live payloads
    assert.equal((await postWebhook(ctx, '{"data": 12')).status, 400);
    r = await postWebhook(ctx, { text: 'Hello World! This is a test message' });
    assert.equal(r.status, 200);
    assert.equal(r.json.result, 'ignored');
    r = await postWebhook(ctx, cfEvent('ffffffffffffffffffffffffffffffff', 'connected'));
    assert.equal(r.json.result, 'unknown_input');
    // an event older than the current state is ignored
    r = await postWebhook(ctx, cfEvent(uid, 'disconnected', new Date(t0.getTime() - 60000)));
    assert.equal(r.json.result, 'stale');
    assert.equal((await u.stream()).state, 'ready');
    // errored counts as input lost
    await ctx.cf.setInputState(uid, 'errored', { webhook: false });
    await sleep(5);
    r = await postWebhook(ctx, cfEvent(uid, 'errored', new Date()));
    assert.ok(['applied', 'duplicate'].includes(r.json.result), r.text); // a poll may come first
    const s = await u.stream();
    assert.equal(s.state, 'offline');
    assert.equal(s.input.status, 'errored');
  });

  test('grace window: reconnect cancels, timeout ends the stream with disconnect_timeout', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest('g');
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    const st = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(st.status, 200, st.text);
    const t = Date.now();
    await setInput(ctx, uid, 'disconnected');
    const lost = await waitFor(async () => { const s = await u.stream(); return s.disconnect_deadline && s; }, { what: 'deadline' });
    assert.equal(lost.state, 'streaming');
    assert.ok(lost.disconnect_deadline >= t + 1400 && lost.disconnect_deadline <= Date.now() + 1600, `deadline ${lost.disconnect_deadline - t}`);
    await setInput(ctx, uid, 'connected');
    const back = await waitFor(async () => { const s = await u.stream(); return s.disconnect_deadline === null && s; }, { what: 'cancel' });
    assert.equal(back.state, 'streaming');
    await sleep(1700); // longer than the window: the cancelled countdown does nothing
    assert.equal((await u.stream()).state, 'streaming');
    // lose it for good
    await setInput(ctx, uid, 'disconnected');
    const end = await waitState(u, 'offline', { timeout: 6000 });
    assert.equal(end.end_reason, 'disconnect_timeout');
    assert.equal(outputsOf(ctx, uid).length, 0);
    const one = await u.api('GET', `/api/streams/${st.json.stream_id}`);
    assert.equal(one.json.end_reason, 'disconnect_timeout');
  });

  test('partial output failure keeps streaming and retries; total failure falls back to ready', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const a = await u.addDest('a', 'rtmp://127.0.0.1:1935/a');
    const b = await u.addDest('b', 'rtmp://127.0.0.1:1935/b');
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    ctx.cf.injectFault({ kind: 'envelope', count: 1, method: 'POST', pathIncludes: `${uid}/outputs`, code: 10006, message: 'bad output url' });
    const st = await u.api('POST', '/api/stream/start', { destinations: [a.id, b.id] });
    assert.equal(st.status, 200, st.text);
    assert.equal(st.json.state, 'streaming');
    assert.equal(st.json.partial_failure, true);
    const failed = st.json.outputs.filter((o) => o.status === 'retrying');
    assert.equal(failed.length, 1);
    assert.match(failed[0].error, /10006/);
    // the failed destination is retried (backoff) and becomes active; never duplicated
    await waitFor(async () => (await u.stream()).outputs.every((o) => o.status === 'active'), { timeout: 8000, what: 'retry' });
    assert.equal(outputsOf(ctx, uid).length, 2);
    assert.equal(new Set(outputsOf(ctx, uid).map((o) => o.url)).size, 2);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
    assert.equal(outputsOf(ctx, uid).length, 0);

    // every output fails: 502 with the errors, back to ready, stream closed with error
    ctx.cf.injectFault({ kind: 'envelope', count: 2, method: 'POST', pathIncludes: `${uid}/outputs`, code: 10007, message: 'nope' });
    const bad = await u.api('POST', '/api/stream/start', { destinations: [a.id, b.id] });
    assert.equal(bad.status, 502, bad.text);
    assert.equal(bad.json.error.code, 'all_outputs_failed');
    assert.equal(bad.json.error.outputs.length, 2);
    for (const o of bad.json.error.outputs) {
      assert.equal(o.status, 'failed');
      assert.match(o.error, /10007/);
    }
    const s = await u.stream();
    assert.equal(s.state, 'ready');
    assert.equal(outputsOf(ctx, uid).length, 0);
    const hist = await u.api('GET', '/api/streams');
    assert.equal(hist.json.streams[0].end_reason, 'error');
  });

  test('two users stream at once without interference', async () => {
    const [u1, u2] = await Promise.all([newUser(ctx), newUser(ctx)]);
    const [i1, i2] = await Promise.all([inputUid(u1), inputUid(u2)]);
    assert.notEqual(i1, i2);
    const [d1, d2] = await Promise.all([u1.addDest('x'), u2.addDest('y')]);
    await Promise.all([setInput(ctx, i1, 'connected'), setInput(ctx, i2, 'connected')]);
    await Promise.all([waitState(u1, 'ready'), waitState(u2, 'ready')]);
    const [s1, s2] = await Promise.all([
      u1.api('POST', '/api/stream/start', { destinations: [d1.id] }),
      u2.api('POST', '/api/stream/start', { destinations: [d2.id] }),
    ]);
    assert.equal(s1.status, 200, s1.text);
    assert.equal(s2.status, 200, s2.text);
    assert.notEqual(s1.json.stream_id, s2.json.stream_id);
    assert.equal(outputsOf(ctx, i1).length, 1);
    assert.equal(outputsOf(ctx, i2).length, 1);
    // user 2 may not use user 1's destination
    assertErr(await u2.api('POST', '/api/stream/start', { destinations: [d1.id] }), 409, 'already_streaming');
    // stopping one leaves the other untouched
    assert.equal((await u1.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u1, 'ready');
    const s2b = await u2.stream();
    assert.equal(s2b.state, 'streaming');
    assert.equal(s2b.stream_id, s2.json.stream_id);
    assert.equal(outputsOf(ctx, i1).length, 0);
    assert.equal(outputsOf(ctx, i2).length, 1);
    await setInput(ctx, i1, 'disconnected');
    await waitState(u1, 'offline');
    assert.equal((await u2.stream()).state, 'streaming');
    assert.equal((await u2.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u2, 'ready');
    // a destination of another user is unknown to this one
    assertErr(await u2.api('POST', '/api/stream/start', { destinations: [d1.id] }), 422, 'unknown_destination');
  });

  test('destinations: masked keys, reveal, patch, delete, limit, isolation', async () => {
    const u = await newUser(ctx);
    const other = await newUser(ctx);
    const d = await u.addDest('mine', 'rtmps://127.0.0.1:443/app', 'super-secret-key-1');
    const list = await u.api('GET', '/api/destinations');
    assert.equal(list.json.destinations.length, 1);
    assert.equal(list.json.destinations[0].stream_key, '********');
    assert.ok(!list.text.includes('super-secret-key-1'));
    const rev = await u.api('POST', `/api/destinations/${d.id}/reveal`);
    assert.equal(rev.status, 200);
    assert.equal(rev.json.stream_key, 'super-secret-key-1');
    assertErr(await other.api('POST', `/api/destinations/${d.id}/reveal`), 404, 'not_found');
    assertErr(await other.api('DELETE', `/api/destinations/${d.id}`), 404, 'not_found');
    assertErr(await other.api('PATCH', `/api/destinations/${d.id}`, { name: 'x' }), 404, 'not_found');
    assert.equal((await other.api('GET', '/api/destinations')).json.destinations.length, 0);
    const p = await u.api('PATCH', `/api/destinations/${d.id}`, { name: 'renamed', stream_key: 'new-key-2', enabled: false });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.json.name, 'renamed');
    assert.equal(p.json.enabled, false);
    assert.equal((await u.api('POST', `/api/destinations/${d.id}/reveal`)).json.stream_key, 'new-key-2');
    assertErr(await u.api('POST', '/api/destinations', { platform: 'twitch', name: 'n', url: 'rtmp://127.0.0.1/x', stream_key: 'k' }), 422, 'unsupported_platform');
    assertErr(await u.api('POST', '/api/destinations', { platform: 'custom', name: 'n', url: 'http://127.0.0.1/x', stream_key: 'k' }), 422, 'invalid_url');
    assertErr(await u.api('POST', '/api/destinations', { platform: 'custom', name: 'n', url: 'rtmp:///nohost', stream_key: 'k' }), 422, 'invalid_url');
    assertErr(await u.api('POST', '/api/destinations', { platform: 'custom', name: '', url: 'rtmp://127.0.0.1/x', stream_key: 'k' }), 422, 'invalid_name');
    assertErr(await u.api('POST', '/api/destinations', { platform: 'custom', name: 'n', url: 'rtmp://127.0.0.1/x' }), 422, 'invalid');
    await u.addDest('two');
    await u.addDest('three');
    assertErr(await u.api('POST', '/api/destinations', { platform: 'custom', name: 'four', url: 'rtmp://127.0.0.1/x', stream_key: 'k' }), 409, 'too_many_destinations');
    // a disabled destination cannot be started
    const uid = await inputUid(u);
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    assertErr(await u.api('POST', '/api/stream/start', { destinations: [d.id] }), 422, 'destination_disabled');
    const del = await u.api('DELETE', `/api/destinations/${d.id}`);
    assert.equal(del.status, 204);
    assertErr(await u.api('DELETE', `/api/destinations/${d.id}`), 404, 'not_found');
    // the sealed key is not stored in clear
    assert.ok(!ctx.logText().includes('super-secret-key-1'), 'stream key never logged');
  });

  test('admin debug endpoint: token required, views', async () => {
    assert.equal((await admin(ctx, 'counts', null)).status, 401);
    assert.equal((await admin(ctx, 'counts', 'not-the-admin-token-000')).status, 401);
    const c = await admin(ctx, 'counts');
    assert.equal(c.status, 200);
    assert.ok(c.json.data.user_stream_manager >= 1);
    assert.equal(typeof c.json.data.states.streaming, 'number');
    const m = await admin(ctx, 'managers');
    assert.ok(Array.isArray(m.json.data));
    assert.ok(m.json.data.every((x) => typeof x.state === 'string'));
    const us = await admin(ctx, 'users');
    assert.ok(us.json.data.every((x) => typeof x === 'string'));
    const p = await admin(ctx, 'presence');
    assert.ok(Array.isArray(p.json.data));
    assert.equal((await admin(ctx, 'bogus')).status, 422);
    // the CLI: streampai debug WHAT
    const { execFileSync } = await import('node:child_process');
    const { BIN } = await import('../lib/harness.mjs');
    const out = execFileSync(BIN, ['debug', 'counts'], { env: { PATH: process.env.PATH, STREAMPAI_ENV: 'test', HTTP_LISTEN: `127.0.0.1:${ctx.port}`, ADMIN_TOKEN: ctx.env.ADMIN_TOKEN, DATA_DIR: ctx.dataDir, ASAN_OPTIONS: 'detect_leaks=0' } }).toString();
    assert.ok(JSON.parse(out).user_stream_manager >= 1, out);
    const users = JSON.parse(execFileSync(BIN, ['debug', 'users'], { env: { PATH: process.env.PATH, STREAMPAI_ENV: 'test', HTTP_LISTEN: `127.0.0.1:${ctx.port}`, ADMIN_TOKEN: ctx.env.ADMIN_TOKEN, DATA_DIR: ctx.dataDir, ASAN_OPTIONS: 'detect_leaks=0' } }).toString());
    assert.ok(Array.isArray(users));
    let bad = null;
    try { execFileSync(BIN, ['debug', 'counts'], { stdio: 'pipe', env: { PATH: process.env.PATH, STREAMPAI_ENV: 'test', HTTP_LISTEN: `127.0.0.1:${ctx.port}`, ADMIN_TOKEN: 'wrong-token-wrong-token', DATA_DIR: ctx.dataDir, ASAN_OPTIONS: 'detect_leaks=0' } }); } catch (e) { bad = e; }
    assert.equal(bad?.status, 1, 'wrong token: exit 1');
    const metrics = await (await fetch(ctx.srv.url + '/metrics')).text();
    assert.match(metrics, /streampai_livestream_managers \d+/);
    assert.match(metrics, /streampai_livestream_state_users\{state="streaming"\} \d+/);
    assert.match(metrics, /streampai_livestream_stream_state_server_calls_total \d+/);
    assert.match(metrics, /streampai_livestream_webhooks_unauthorized_total [1-9]/);
    assert.match(metrics, /streampai_livestream_webhooks_applied_total [1-9]/);
    assert.match(metrics, /streampai_livestream_webhooks_duplicate_total [1-9]/);
    assert.match(metrics, /streampai_livestream_webhooks_stale_total [1-9]/);
    assert.match(metrics, /cloudflare/, 'media client metrics exposed too');
  });

  testCleanExit(() => ctx);
});

describe('livestream: polling only (no webhooks)', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ webhooks: false }); });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  test('the poller finds connect and disconnect', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    await setInput(ctx, uid, 'connected', false);
    await waitState(u, 'ready', { timeout: 5000 });
    await setInput(ctx, uid, 'disconnected', false);
    await waitState(u, 'offline', { timeout: 5000 });
    assert.ok(ctx.cf.calls.some((c) => c.method === 'GET' && c.path.endsWith(uid)), 'polled');
  });

  test('API outage: breaker opens, state kept as unknown, no stream ended by errors', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest('o');
    await setInput(ctx, uid, 'connected', false);
    await waitState(u, 'ready', { timeout: 5000 });
    const st = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(st.status, 200, st.text);
    ctx.cf.injectFault({ kind: '500', count: 10000, method: 'GET' });
    const unk = await waitFor(async () => { const s = await u.stream(); return s.input.status === 'unknown' && s; }, { timeout: 8000, what: 'unknown' });
    assert.equal(unk.state, 'streaming');
    assert.equal(unk.disconnect_deadline, null, 'no countdown from API errors');
    await waitFor(async () => (await u.stream()).degraded === true, { timeout: 8000, what: 'breaker open (degraded)' });
    await sleep(2000); // longer than STREAM_DISCONNECT_TIMEOUT
    assert.equal((await u.stream()).state, 'streaming');
    assert.equal(outputsOf(ctx, uid).length, 1);
    ctx.cf.clearFaults();
    // recovers after the breaker's half-open probe
    const ok = await waitFor(async () => { const s = await u.stream(); return s.input.status === 'connected' && s; }, { timeout: 40000, what: 'recovered' });
    assert.equal(ok.state, 'streaming');
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready', { timeout: 8000 });
  });

  testCleanExit(() => ctx);
});

describe('livestream: SSRF refusals and MAX_CONCURRENT_USERS', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ env: { ALLOW_PRIVATE_DESTINATIONS: 'false', MAX_CONCURRENT_USERS: '1' } }); });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  test('private, loopback and link-local destinations are refused', async () => {
    const u = await newUser(ctx);
    for (const url of ['rtmp://127.0.0.1/live', 'rtmp://10.1.2.3/live', 'rtmps://169.254.169.254/x',
      'rtmp://[::1]/live', 'rtmp://192.168.0.10:1935/live', 'rtmp://localhost/live']) {
      const r = await u.api('POST', '/api/destinations', { platform: 'custom', name: 'n', url, stream_key: 'k' });
      assert.equal(r.status, 422, `${url}: ${r.text}`);
      assert.ok(['forbidden_destination', 'invalid_url'].includes(r.json.error.code), `${url}: ${r.text}`);
      // the refusal says how to allow a local server (issue 13 #9)
      if (r.json.error.code === 'forbidden_destination') assert.match(r.json.error.message, /ALLOW_PRIVATE_DESTINATIONS=true/, url);
    }
    assert.equal((await u.api('GET', '/api/destinations')).json.destinations.length, 0);
  });

  test('over MAX_CONCURRENT_USERS: a clear 503', async () => {
    const a = await newUser(ctx);
    const b = await newUser(ctx);
    // the SSRF test's user may still hold the only slot until its cleanup window passes
    await waitFor(async () => (await a.api('GET', '/api/stream')).status === 200, { timeout: 5000, what: 'slot' });
    const r = await b.api('GET', '/api/stream');
    assertErr(r, 503, 'too_many_users');
    // a's manager goes away after PRESENCE_CLEANUP_TIMEOUT (offline, no session): b gets in
    await waitFor(async () => (await b.api('GET', '/api/stream')).status === 200, { timeout: 5000, what: 'b admitted' });
  });

  testCleanExit(() => ctx);
});

describe('livestream: the call budget favours interactive calls over polling', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ env: { CLOUDFLARE_CALL_BUDGET: '24', CLOUDFLARE_INPUT_POLL_INTERVAL: '100' } }); });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  test('polls stop at the reserve without marking the input unknown; start still works', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const d = await u.addDest('b');
    await setInput(ctx, uid, 'connected'); // webhook: no API call needed
    await waitState(u, 'ready');
    const metric = async () => Number((await (await fetch(ctx.srv.url + '/metrics')).text())
      .match(/streampai_livestream_input_polls_skipped_budget_total (\d+)/)[1]);
    await waitFor(async () => (await metric()) > 0, { timeout: 10000, what: 'polls refused by the budget' });
    const polls = ctx.cf.calls.filter((c) => c.method === 'GET' && c.path.endsWith(uid)).length;
    assert.ok(polls >= 1 && polls < 24, `polls ${polls}: some, and under the budget`);
    const s = await u.stream();
    assert.equal(s.input.status, 'connected', 'a refused poll is not an outage');
    const st = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(st.status, 200, st.text);
    assert.equal(outputsOf(ctx, uid).length, 1);
  });

  testCleanExit(() => ctx);
});
