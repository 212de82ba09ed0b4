// The whole stack with real media: `streampai serve` (MEDIA_BACKEND=local) driving
// `streampai relay` through its Cloudflare-compatible API, ffmpeg as OBS and ffmpeg
// sinks as destinations. Checks the relay's webhooks move the user's state, Start
// creates one relay output per destination, media reaches the destination, Stop
// deletes the outputs, and a control-plane restart does not interrupt media.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, freePort, tmpDir, waitFor, sleep, assertNoSecretsInLog } from '../lib/harness.mjs';
import { newUser, waitState } from '../lib/livelib.mjs';
import { startRelay, startSink, publish, probe, killAll, TOKEN, WEBHOOK_SECRET } from './relay_lib.mjs';

after(() => killAll());

async function bootStack() {
  const cpPort = await freePort();
  const rtmpPort = await freePort();
  const relay = await startRelay({
    env: { RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}` },
  });
  const cpEnv = {
    HTTP_LISTEN: `127.0.0.1:${cpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}`,
    MEDIA_BACKEND: 'local', RELAY_API_TOKEN: TOKEN, RELAY_API_LISTEN: `127.0.0.1:${relay.port}`,
    RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, CLOUDFLARE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STREAM_DISCONNECT_TIMEOUT: '3000', CLOUDFLARE_INPUT_POLL_INTERVAL: '1000', LOG_LEVEL: 'info',
  };
  const dataDir = tmpDir('sp-stack-');
  const ctx = { relay, rtmpPort, dataDir, cpEnv };
  ctx.srv = await startServer({ env: cpEnv, dataDir });
  ctx.restart = async () => { ctx.srv = await startServer({ env: cpEnv, dataDir }); };
  return ctx;
}

test('OBS -> relay -> destination, driven by the control plane', { timeout: 120000 }, async () => {
  const ctx = await bootStack();
  const dir = tmpDir('sp-stack-media-');
  try {
    const u = await newUser(ctx);
    const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.rtmp_url && s; }, { what: 'live input' });
    assert.equal(st.state, 'offline');
    assert.match(st.input.rtmp_url, new RegExp(`^rtmp://127\\.0\\.0\\.1:${ctx.rtmpPort}/live`));
    assert.ok(st.input.stream_key && st.input.stream_key.length >= 16, 'stream key shown to its owner');
    const sinkPort = await freePort();
    const d = await u.addDest('sink', `rtmp://127.0.0.1:${sinkPort}/live`, 'DESTKEY');
    const sink = await startSink(dir, 'dest', sinkPort, 'DESTKEY');

    // OBS connects: the relay's webhook (cf-webhook-auth) makes the user ready.
    const base = st.input.rtmp_url.endsWith('/') ? st.input.rtmp_url : st.input.rtmp_url + '/';
    const pub = publish(base + st.input.stream_key, 12);
    await waitState(u, 'ready', { timeout: 15000 });

    const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(start.status, 200, start.text);
    assert.equal(start.json.state, 'streaming');
    const uid = st.input.input_uid;
    const outs = await waitFor(async () => {
      const r = await ctx.relay.api('GET', `/${uid}/outputs`);
      const list = r.json.result || [];
      return list.length === 1 && list[0].status === 'forwarding' && list;
    }, { timeout: 15000, what: 'relay output forwarding' });
    assert.equal(outs[0].url, `rtmp://127.0.0.1:${sinkPort}/live`);

    // Stop while media flows: the output is deleted on the relay, the state goes offline.
    await sleep(5000);
    const stop = await u.api('POST', '/api/stream/stop');
    assert.equal(stop.status, 200, stop.text);
    await waitFor(async () => (await ctx.relay.api('GET', `/${uid}/outputs`)).json.result.length === 0,
      { timeout: 10000, what: 'outputs deleted' });
    await waitFor(async () => ['offline', 'ready'].includes((await u.stream()).state), { what: 'stream ended' });
    await sink.exited;
    const p = probe(sink.out);
    assert.ok(p.video >= 60, `destination got ${p.video} video packets`);
    assert.ok(p.audio >= 80, `destination got ${p.audio} audio packets`);
    assert.equal(p.firstVideoKey, true, 'first video packet at the destination is a keyframe');
    assert.doesNotMatch(sink.log(), /Unexpected stream|App field don't match/);
    const hist = await u.api('GET', '/api/streams');
    assert.equal(hist.status, 200);
    pub.kill();
    await ctx.srv.stopClean();
    await ctx.relay.stopClean();
    assertNoSecretsInLog([...ctx.srv.logs, ...ctx.relay.logs], [st.input.stream_key, 'DESTKEY', TOKEN, WEBHOOK_SECRET],
      { known: [/module=http msg="listening"/, /module=relay msg="rtmp listening"/] });
  } finally {
    await ctx.srv.stop();
    await ctx.relay.stop();
  }
});

test('a control-plane crash does not interrupt media through the relay', { timeout: 120000 }, async () => {
  const ctx = await bootStack();
  const dir = tmpDir('sp-stack-media-');
  try {
    const u = await newUser(ctx);
    const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.rtmp_url && s; }, { what: 'live input' });
    const sinkPort = await freePort();
    const d = await u.addDest('sink', `rtmp://127.0.0.1:${sinkPort}/live`, 'DESTKEY');
    const sink = await startSink(dir, 'dest', sinkPort, 'DESTKEY');
    const base = st.input.rtmp_url.endsWith('/') ? st.input.rtmp_url : st.input.rtmp_url + '/';
    const pub = publish(base + st.input.stream_key, 14);
    await waitState(u, 'ready', { timeout: 15000 });
    const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(start.status, 200, start.text);
    const streamId = start.json.stream_id;
    await sleep(3000);
    await ctx.srv.kill9();
    await sleep(2000); // media keeps flowing while the control plane is down
    await ctx.restart();
    const after = await waitFor(async () => { const s = await u.stream(); return s.state === 'streaming' && s; }, { what: 'recovered' });
    assert.equal(after.stream_id, streamId, 'same stream after restart');
    const outs = (await ctx.relay.api('GET', `/${st.input.input_uid}/outputs`)).json.result;
    assert.equal(outs.length, 1, 'no duplicate output after reconciliation');
    await pub.exited;
    await u.api('POST', '/api/stream/stop');
    await sink.exited;
    const p = probe(sink.out);
    // 14 s of source at 30 fps; the destination must have (nearly) all of it: no gap from the crash.
    assert.ok(p.duration >= 12, `destination duration ${p.duration}s`);
    assert.ok(p.video >= 12 * 30 - 30, `destination got ${p.video} video packets`);
    assert.equal(p.firstVideoKey, true);
    await ctx.srv.stopClean();
    await ctx.relay.stopClean();
  } finally {
    await ctx.srv.stop();
    await ctx.relay.stop();
  }
});
