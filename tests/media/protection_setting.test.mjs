// Issue 13: the user's disconnect_protection setting (PUT /api/stream/settings) drives the
// built-in relay's input (docs/relay.md "Disconnect protection"). `streampai serve`
// (MEDIA_BACKEND=local) drives `streampai relay`; ffmpeg publishes, a recording RTMP destination
// (the JS sink) counts its connections. Everything is done through the control plane; the relay
// API is only read to check what it was told.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, freePort, tmpDir, waitFor, sleep, assertNoSecretsInLog } from '../lib/harness.mjs';
import { newUser } from '../lib/livelib.mjs';
import { startRelay, startJsSink, publish, killAll, TOKEN, WEBHOOK_SECRET } from './relay_lib.mjs';

after(() => killAll());

async function bootStack() {
  const cpPort = await freePort();
  const rtmpPort = await freePort();
  const relayEnv = { RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}` };
  const relay = await startRelay({ env: relayEnv, dataDir: tmpDir('sp-prot-relay-') });
  const cpEnv = {
    HTTP_LISTEN: `127.0.0.1:${cpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}`,
    MEDIA_BACKEND: 'local', RELAY_API_TOKEN: TOKEN, RELAY_API_LISTEN: `127.0.0.1:${relay.port}`,
    RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, CLOUDFLARE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STREAM_DISCONNECT_TIMEOUT: '15000', CLOUDFLARE_INPUT_POLL_INTERVAL: '1000', LOG_LEVEL: 'info',
  };
  const dataDir = tmpDir('sp-prot-');
  const srv = await startServer({ env: cpEnv, dataDir });
  return { relay, srv, cpEnv, dataDir, relayEnv };
}

const relayProtection = async (ctx, uid) => (await ctx.relay.api('GET', `/${uid}`)).json.result.disconnectProtection;

async function setProtection(ctx, u, uid, on) {
  const put = await u.api('PUT', '/api/stream/settings', { disconnect_protection: on });
  assert.equal(put.status, 200, put.text);
  assert.equal(put.json.disconnect_protection, on);
  await waitFor(async () => (await relayProtection(ctx, uid)) === on,
    { timeout: 10000, what: `relay input disconnectProtection=${on}` });
}

// The user goes live to the sink; then the encoder is killed (no FCUnpublish): a drop.
async function liveThenDrop(ctx, u, st, sink) {
  const d = await u.addDest('sink', `rtmp://127.0.0.1:${sink.port}/live`, 'DESTKEY');
  const base = st.input.rtmp_url.endsWith('/') ? st.input.rtmp_url : st.input.rtmp_url + '/';
  const pub = publish(base + st.input.stream_key, 60);
  await waitFor(async () => (await u.stream()).input.status === 'connected', { timeout: 15000, what: 'encoder connected' });
  const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
  assert.equal(start.status, 200, start.text);
  const uid = st.input.input_uid;
  await waitFor(async () => {
    const list = (await ctx.relay.api('GET', `/${uid}/outputs`)).json.result || [];
    return list.length === 1 && list[0].status === 'forwarding';
  }, { timeout: 15000, what: 'relay output forwarding' });
  await sleep(2000);
  assert.equal(sink.open, 1);
  const t0 = Date.now();
  pub.kill('SIGKILL');
  await pub.exited;
  return t0;
}

async function finish(ctx, st) {
  await ctx.srv.stopClean();
  await ctx.relay.stopClean();
  assertNoSecretsInLog([...ctx.srv.logs, ...ctx.relay.logs], [st.input.stream_key, 'DESTKEY', TOKEN, WEBHOOK_SECRET],
    { known: [/module=http msg="listening"/, /module=relay msg="rtmp listening"/] });
}

test('disconnect_protection off (PUT /api/stream/settings): the destination closes when the encoder drops, no slate', { timeout: 90000 }, async () => {
  const ctx = await bootStack();
  const sink = await startJsSink();
  try {
    const u = await newUser(ctx);
    const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.input_uid && s; }, { what: 'live input' });
    assert.equal(st.media_backend, 'local', 'GET /api/stream says which media backend');
    const uid = st.input.input_uid;
    assert.equal(await relayProtection(ctx, uid), true, 'the relay input starts with the default (on)');
    await setProtection(ctx, u, uid, false);
    const t0 = await liveThenDrop(ctx, u, st, sink);
    await waitFor(() => sink.open === 0, { timeout: 6000, what: 'destination closed' });
    assert.ok(Date.now() - t0 < 5000, `closed ${(Date.now() - t0) / 1000} s after the drop`);
    assert.equal((await ctx.relay.api('GET', `/${uid}`)).json.result.slate, null, 'no slate');
    assert.doesNotMatch(ctx.relay.logText(), /msg="input on the slate"/);
    assert.match(ctx.srv.logs.join('\n'), /msg="disconnect protection applied to the live input" on=0/);
    await u.api('POST', '/api/stream/stop');
    // the control plane restarts: the user's manager, loaded with the setting off, tells the
    // relay again (idempotent)
    await ctx.srv.stopClean();
    ctx.srv = await startServer({ env: ctx.cpEnv, dataDir: ctx.dataDir });
    await u.stream();
    await waitFor(() => ctx.srv.logs.some((l) => /msg="disconnect protection applied to the live input" on=0/.test(l)),
      { timeout: 10000, what: 'setting sent on load' });
    // the relay loses its state (a new data dir): the control plane restores the input with
    // its uid and key, then turns its protection off again
    await ctx.relay.kill9();
    ctx.relay = await startRelay({ env: { ...ctx.relayEnv, RELAY_API_LISTEN: `127.0.0.1:${ctx.relay.port}` },
      dataDir: tmpDir('sp-prot-relay2-') });
    await waitFor(async () => {
      const r = await ctx.relay.api('GET', `/${uid}`);
      return r.status === 200 && r.json.result.disconnectProtection === false;
    }, { timeout: 20000, what: 'restored input with disconnectProtection=false' });
    assert.match(ctx.srv.logs.join('\n'), /msg="live input restored on the media service"/);
    await finish(ctx, st);
  } finally {
    await ctx.srv.stop();
    await ctx.relay.stop();
    await sink.close();
  }
});

test('disconnect_protection on (default; off then on again through the settings): the slate keeps the destination connected', { timeout: 90000 }, async () => {
  const ctx = await bootStack();
  const sink = await startJsSink();
  try {
    const u = await newUser(ctx);
    const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.input_uid && s; }, { what: 'live input' });
    const uid = st.input.input_uid;
    const got = await u.api('GET', '/api/stream/settings');
    assert.equal(got.json.disconnect_protection, true, 'on by default');
    assert.equal(await relayProtection(ctx, uid), true);
    await setProtection(ctx, u, uid, false);
    await setProtection(ctx, u, uid, true);
    await liveThenDrop(ctx, u, st, sink);
    const during = await waitFor(async () => {
      const i = (await ctx.relay.api('GET', `/${uid}`)).json.result;
      return i.slate && i;
    }, { timeout: 8000, what: 'input on the slate' });
    assert.equal(during.slate.active, true);
    await sleep(5000);
    assert.equal(sink.open, 1, 'the destination connection is still open on the slate');
    assert.equal(sink.conns, 1, 'no new destination connection');
    const cp = await u.stream();
    assert.equal(cp.state, 'streaming', 'the stream is kept');
    assert.ok(cp.disconnect_deadline > Date.now(), 'the control plane is in its grace window');
    assert.match(ctx.relay.logText(), /msg="input on the slate"/);
    await u.api('POST', '/api/stream/stop');
    await waitFor(() => sink.open === 0, { timeout: 10000, what: 'destination closed after stop' });
    await finish(ctx, st);
  } finally {
    await ctx.srv.stop();
    await ctx.relay.stop();
    await sink.close();
  }
});
