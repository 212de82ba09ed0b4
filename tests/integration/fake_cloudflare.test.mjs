// Self-test of tests/fakes/cloudflare.mjs: shapes, auth, faults, webhooks, call recording.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startFakeCloudflare } from '../fakes/cloudflare.mjs';

async function api(cf, method, path, body, token = cf.token) {
  const headers = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${cf.url}/accounts/${cf.accountId}/stream/live_inputs${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* malformed on purpose */ }
  return { status: r.status, json, text, headers: r.headers };
}

test('live input and outputs follow the real shapes', async () => {
  const cf = await startFakeCloudflare();
  try {
    const c = await api(cf, 'POST', '', { meta: { name: 'u1' }, recording: { mode: 'off' } });
    assert.equal(c.status, 200);
    assert.equal(c.json.success, true);
    assert.deepEqual(c.json.errors, []);
    const inp = c.json.result;
    assert.match(inp.uid, /^[0-9a-f]{32}$/);
    assert.equal(inp.status, null);
    assert.equal(inp.rtmps.url, 'rtmps://live.cloudflare.com:443/live/');
    assert.match(inp.rtmps.streamKey, /^[0-9a-f]{32}k[0-9a-f]{32}$/);
    assert.equal(inp.recording.mode, 'off');

    await cf.setInputState(inp.uid, 'connected');
    const g = await api(cf, 'GET', `/${inp.uid}`);
    assert.equal(g.json.result.status.current.state, 'connected');
    assert.deepEqual(g.json.result.status.history, []);

    const list = await api(cf, 'GET', '');
    assert.equal(list.json.result.total, 1);
    assert.equal(list.json.result.liveInputs[0].status, undefined, 'no status in list items');

    const o = await api(cf, 'POST', `/${inp.uid}/outputs`, { url: 'rtmp://a/live2', streamKey: 'k' });
    assert.equal(o.json.result.enabled, true);
    const p = await api(cf, 'PUT', `/${inp.uid}/outputs/${o.json.result.uid}`, { enabled: false });
    assert.equal(p.json.result.enabled, false);
    const lo = await api(cf, 'GET', `/${inp.uid}/outputs`);
    assert.equal(lo.json.result.length, 1);
    const d = await api(cf, 'DELETE', `/${inp.uid}/outputs/${o.json.result.uid}`);
    assert.equal(d.status, 200);
    const nf = await api(cf, 'DELETE', `/${inp.uid}/outputs/${o.json.result.uid}`);
    assert.equal(nf.status, 404);
    assert.equal(nf.json.success, false);
    assert.equal(cf.outputCreates().length, 1);
  } finally {
    await cf.stop();
  }
});

test('auth errors use Cloudflare codes', async () => {
  const cf = await startFakeCloudflare();
  try {
    const none = await api(cf, 'GET', '', undefined, null);
    assert.equal(none.status, 400);
    assert.equal(none.json.errors[0].code, 6003);
    const bad = await api(cf, 'GET', '', undefined, 'nope');
    assert.equal(bad.status, 403);
    assert.equal(bad.json.errors[0].code, 10000);
  } finally {
    await cf.stop();
  }
});

test('faults for the next N calls, over HTTP control too', async () => {
  const cf = await startFakeCloudflare();
  try {
    cf.injectFault({ kind: '500', count: 2 });
    assert.equal((await api(cf, 'GET', '')).status, 500);
    assert.equal((await api(cf, 'GET', '')).status, 500);
    assert.equal((await api(cf, 'GET', '')).status, 200);
    await fetch(`${cf.controlUrl}/fault`, { method: 'POST', body: JSON.stringify({ kind: '429', retryAfter: 3 }) });
    const rl = await api(cf, 'GET', '');
    assert.equal(rl.status, 429);
    assert.equal(rl.headers.get('retry-after'), '3');
    cf.injectFault({ kind: 'malformed' });
    const m = await api(cf, 'GET', '');
    assert.equal(m.json, null);
    cf.injectFault({ kind: 'slow', delayMs: 300 });
    const t0 = Date.now();
    assert.equal((await api(cf, 'GET', '')).status, 200);
    assert.ok(Date.now() - t0 >= 280);
    cf.injectFault({ kind: 'drop' });
    await assert.rejects(api(cf, 'GET', ''));
    const calls = await (await fetch(`${cf.controlUrl}/calls`)).json();
    assert.equal(calls.length, 7);
    assert.deepEqual(calls.map((c) => c.fault ?? null), ['500', '500', null, '429', 'malformed', 'slow', 'drop']);
    assert.deepEqual(calls.slice(0, 4).map((c) => c.status), [500, 500, 200, 429]);
  } finally {
    await cf.stop();
  }
});

test('state changes POST the Notifications webhook with cf-webhook-auth', async () => {
  const got = [];
  const srv = http.createServer((req, res) => {
    let b = '';
    req.on('data', (c) => { b += c; });
    req.on('end', () => { got.push({ headers: req.headers, body: JSON.parse(b) }); res.end('ok'); });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const cf = await startFakeCloudflare({
    webhookUrl: `http://127.0.0.1:${srv.address().port}/webhooks/cloudflare`,
    webhookSecret: 'whsec-test-123456',
  });
  try {
    const c = await api(cf, 'POST', '', { meta: { name: 'w' } });
    const uid = c.json.result.uid;
    const st = await cf.setInputState(uid, 'connected', { webhook: true });
    assert.equal(st, 200);
    await fetch(`${cf.controlUrl}/inputs/${uid}/state`, { method: 'POST', body: JSON.stringify({ state: 'errored', webhook: true }) });
    await cf.setInputState(uid, 'disconnected'); // no webhook
    assert.equal(got.length, 2);
    assert.equal(got[0].headers['cf-webhook-auth'], 'whsec-test-123456');
    assert.equal(got[0].body.data.input_id, uid);
    assert.equal(got[0].body.data.event_type, 'live_input.connected');
    assert.match(got[0].body.data.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.equal(typeof got[0].body.ts, 'number');
    assert.equal(got[1].body.data.event_type, 'live_input.errored');
    assert.equal(got[1].body.data.live_input_errored.error.code, 'ERR_GOP_OUT_OF_RANGE');
    const g = await api(cf, 'GET', `/${uid}`);
    assert.equal(g.json.result.status.current.state, 'disconnected');
    assert.equal(g.json.result.status.current.reason, 'client_disconnect');
  } finally {
    await cf.stop();
    srv.close();
  }
});

test('optional account rate limit answers 429 with Retry-After', async () => {
  const cf = await startFakeCloudflare({ rateLimit: { limit: 3, windowMs: 2000 } });
  try {
    for (let i = 0; i < 3; i++) assert.equal((await api(cf, 'GET', '')).status, 200);
    const r = await api(cf, 'GET', '');
    assert.equal(r.status, 429);
    assert.equal(r.json.errors[0].code, 971);
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    await fetch(`${cf.controlUrl}/ratelimit`, { method: 'POST', body: '{}' });
    assert.equal((await api(cf, 'GET', '')).status, 200);
  } finally {
    await cf.stop();
  }
});
