// Input health with real media: ffmpeg publishes to the built-in relay, the relay measures the
// stream from its FLV tags (relay API `health`), the control plane polls it and shows
// `input.health` with warnings in GET /api/stream. A 10 s GOP (-g 300 at 30 fps) gives the
// keyframe_interval warning with the measured values; a stream without audio gives
// audio_missing; the values match what ffmpeg sent (codec, size, frame rate, audio format).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, freePort, tmpDir, waitFor, assertNoSecretsInLog } from '../lib/harness.mjs';
import { newUser, waitState } from '../lib/livelib.mjs';
import { startRelay, publish, killAll, TOKEN, WEBHOOK_SECRET } from './relay_lib.mjs';

after(() => killAll());

async function bootStack() {
  const cpPort = await freePort();
  const rtmpPort = await freePort();
  const relay = await startRelay({
    env: { RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}` },
  });
  const env = {
    HTTP_LISTEN: `127.0.0.1:${cpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}`,
    MEDIA_BACKEND: 'local', RELAY_API_TOKEN: TOKEN, RELAY_API_LISTEN: `127.0.0.1:${relay.port}`,
    RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, CLOUDFLARE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STREAM_DISCONNECT_TIMEOUT: '3000', CLOUDFLARE_INPUT_POLL_INTERVAL: '1000', LOG_LEVEL: 'info',
  };
  const srv = await startServer({ env, dataDir: tmpDir('sp-health-') });
  return { relay, srv };
}

const warning = (h, code) => (h?.warnings || []).find((w) => w.code === code);

test('input health: 10 s GOP warns with the measured values; no audio warns', { timeout: 120000 }, async () => {
  const ctx = await bootStack();
  const u = await newUser(ctx);
  const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.rtmp_url && s; }, { what: 'live input' });
  assert.equal(st.input.health, null, 'no health before the encoder connects');
  const base = st.input.rtmp_url.endsWith('/') ? st.input.rtmp_url : st.input.rtmp_url + '/';
  const uid = st.input.input_uid;

  // 1. a 10 s GOP at 30 fps, 640x360, AAC
  const pub = publish(base + st.input.stream_key, 25, { extra: ['-g', '300', '-keyint_min', '300', '-sc_threshold', '0'] });
  await waitState(u, 'ready', { timeout: 15000 });
  const h = await waitFor(async () => {
    const s = await u.stream();
    const hh = s?.input?.health;
    return hh && typeof hh.video?.keyframeIntervalMs === 'number' && warning(hh, 'keyframe_interval') && hh;
  }, { timeout: 30000, what: 'keyframe interval warning' });
  assert.equal(h.video.codec, 'h264');
  assert.equal(h.video.width, 640);
  assert.equal(h.video.height, 360);
  assert.ok(Math.abs(h.video.fps - 30) < 2, `fps ${h.video.fps}`);
  assert.ok(h.video.keyframeIntervalMs >= 9500 && h.video.keyframeIntervalMs <= 10500,
    `keyframe interval ${h.video.keyframeIntervalMs} ms`);
  const kw = warning(h, 'keyframe_interval');
  assert.equal(kw.value_ms, h.video.keyframeIntervalMs);
  assert.equal(kw.limit_ms, 4000);
  assert.match(kw.message, /4 s/);
  assert.equal(h.audio.codec, 'aac');
  assert.equal(h.audio.sampleRate, 44100); // lavfi sine: 44.1 kHz mono
  assert.equal(h.audio.channels, 1);
  assert.ok(h.video.bitrateKbps > 0 && h.audio.bitrateKbps > 0 && h.bitrateKbps > h.video.bitrateKbps);
  assert.ok(h.uptimeMs >= 5000, `uptime ${h.uptimeMs}`);
  assert.equal(warning(h, 'audio_missing'), undefined);
  // the relay's own view (the extension field the control plane reads)
  const rh = (await ctx.relay.input(uid)).health;
  assert.equal(rh.video.width, 640);
  assert.equal(rh.video.profile > 0, true);
  pub.kill();
  await waitFor(async () => (await u.stream()).input.health === null, { timeout: 15000, what: 'health gone after disconnect' });
  assert.equal((await ctx.relay.input(uid)).health, null);

  // 2. video only, 1 s GOP: audio_missing, no keyframe warning
  const pub2 = publish(base + st.input.stream_key, 20, { extra: ['-an'] });
  const h2 = await waitFor(async () => {
    const hh = (await u.stream())?.input?.health;
    return hh && hh.video?.keyframeIntervalMs > 0 && hh && warning(hh, 'audio_missing') && hh;
  }, { timeout: 20000, what: 'audio_missing warning' });
  assert.equal(h2.audio, null);
  assert.equal(warning(h2, 'keyframe_interval'), undefined, 'a 1 s GOP is fine');
  assert.ok(h2.video.keyframeIntervalMs <= 1100, `keyframe interval ${h2.video.keyframeIntervalMs}`);
  pub2.kill();

  await ctx.srv.stopClean();
  await ctx.relay.stopClean();
  assertNoSecretsInLog([...ctx.srv.logs, ...ctx.relay.logs], [st.input.stream_key, TOKEN, WEBHOOK_SECRET]);
});
