// Regression (chaos finding 7, docs/campaigns.md), with the real relay: the control plane is
// killed while a user is `ending`, after the encoder reconnected unseen (the relay's
// `connected` webhook failed and is retried after the restart). Recovery used to take the
// stream_state row's `updated_at` (our write time) as the time of the last input event: the
// relay's retry and every poll (the input connected since before that write) were dropped as
// stale, the user stayed `offline` with the encoder live and start answered 409 not_ready.
// Two small HTTP proxies make the window deterministic: one between the relay and the control
// plane's webhook route (refuses while told to, like a control plane that is down), one between
// the control plane and the relay API (makes the output delete slow, so the kill lands in
// `ending`).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, freePort, tmpDir, waitFor, sleep } from '../lib/harness.mjs';
import { newUser, waitState } from '../lib/livelib.mjs';
import { startRelay, publish, killAll, TOKEN, WEBHOOK_SECRET } from './relay_lib.mjs';

after(() => killAll());

// Forwards every request to 127.0.0.1:target; rule(req) may answer instead ({status}) or
// delay ({delayMs}). Returns {port, close()}.
async function proxy(target, rule) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', async () => {
      const r = rule(req) || {};
      if (r.status) { res.writeHead(r.status); res.end('held by the test'); return; }
      if (r.delayMs) await sleep(r.delayMs);
      const up = http.request({ host: '127.0.0.1', port: target(), method: req.method, path: req.url, headers: req.headers },
        (ur) => { res.writeHead(ur.statusCode, ur.headers); ur.pipe(res); });
      up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, close: () => server.close() };
}

test('relay: kill -9 while ending after an unseen reconnect: recovered into ready, start accepted', { timeout: 120000 }, async () => {
  const cpPort = await freePort();
  const rtmpPort = await freePort();
  const apiPort = await freePort();
  const hooks = { hold: false, held: 0, passed: [] };
  const api = { slowDeletes: false, deletes: 0 };
  const whProxy = await proxy(() => cpPort, (req) => {
    if (hooks.hold) { hooks.held++; return { status: 503 }; }
    hooks.passed.push(req.url);
    return null;
  });
  const apiProxy = await proxy(() => apiPort, (req) => {
    if (req.method === 'DELETE' && req.url.includes('/outputs/')) {
      api.deletes++;
      if (api.slowDeletes) return { delayMs: 6000 };
    }
    return null;
  });
  const relay = await startRelay({
    env: { RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, RELAY_API_LISTEN: `127.0.0.1:${apiPort}`,
      PUBLIC_URL: `http://127.0.0.1:${whProxy.port}` },
    dataDir: tmpDir('sp-recend-relay-'),
  });
  const cpEnv = {
    HTTP_LISTEN: `127.0.0.1:${cpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}`,
    MEDIA_BACKEND: 'local', RELAY_API_TOKEN: TOKEN, RELAY_API_LISTEN: `127.0.0.1:${apiProxy.port}`,
    RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, CLOUDFLARE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STREAM_DISCONNECT_TIMEOUT: '60000', CLOUDFLARE_INPUT_POLL_INTERVAL: '60000', LOG_LEVEL: 'info',
  };
  const dataDir = tmpDir('sp-recend-cp-');
  const ctx = { srv: await startServer({ env: cpEnv, dataDir }) };
  let pub = null;
  try {
    const u = await newUser(ctx);
    const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.rtmp_url && s; }, { what: 'live input' });
    const url = (st.input.rtmp_url.endsWith('/') ? st.input.rtmp_url : st.input.rtmp_url + '/') + st.input.stream_key;
    const deadPort = await freePort(); // nothing listens: the relay output retries, which is fine
    const d = await u.addDest('dest', `rtmp://127.0.0.1:${deadPort}/live`, 'DESTKEY');
    pub = publish(url, 110);
    await waitState(u, 'ready', { timeout: 20000 });
    const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(start.status, 200, start.text);
    await waitFor(async () => { const x = await u.stream(); return x.outputs[0]?.state === 'active' && x; }, { timeout: 15000, what: 'output active' });
    // the encoder drops (the webhook arrives: grace window), then reconnects while the control
    // plane's webhook route refuses: the relay keeps the `connected` webhook for its retries
    pub.kill();
    await waitFor(async () => { const x = await u.stream(); return x.input?.status === 'disconnected' && x; }, { timeout: 15000, what: 'input disconnected' });
    hooks.hold = true;
    pub = publish(url, 110);
    await waitFor(async () => (await relay.input(st.input.input_uid))?.status?.current?.state === 'connected', { timeout: 15000, what: 'relay input connected' });
    await waitFor(() => hooks.held > 0, { timeout: 10000, what: 'connected webhook refused once' });
    // stop: `ending` is written with the input still `disconnected`; the delete is slow
    api.slowDeletes = true;
    const stop = await u.api('POST', '/api/stream/stop');
    assert.equal(stop.status, 200, stop.text);
    assert.equal(stop.json.state, 'ending');
    await waitFor(() => api.deletes > 0, { what: 'output delete in flight' });
    assert.equal((await ctx.srv.stop('SIGKILL')).sig, 'SIGKILL');
    api.slowDeletes = false;
    ctx.srv = await startServer({ env: cpEnv, dataDir });
    hooks.hold = false; // the relay's next retry reaches the restarted control plane
    await waitFor(() => /msg="state recovered" state=ending/.test(ctx.srv.logs.join('\n')), { what: 'ending recovered' });
    const s = await waitState(u, 'ready', { timeout: 20000 });
    assert.equal(s.input.status, 'connected');
    const log = ctx.srv.logs.join('\n');
    assert.doesNotMatch(log, /msg="stale input event ignored"/, 'no input event taken for stale');
    const again = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(again.status, 200, again.text);
    await waitFor(async () => { const x = await u.stream(); return x.outputs[0]?.state === 'active' && x; }, { timeout: 15000, what: 'output active again' });
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready', { timeout: 15000 });
    pub.kill();
    pub = null;
    await ctx.srv.stopClean(); // code 0, no ASan/LSan/UBSan report
    await relay.stopClean();
  } finally {
    if (pub) pub.kill();
    try { await ctx.srv.stop(); } catch {}
    try { await relay.stop(); } catch {}
    whProxy.close();
    apiProxy.close();
  }
});
