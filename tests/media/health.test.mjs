// Per-destination output health and relay restarts, with real media:
// `streampai serve` (MEDIA_BACKEND=local) + `streampai relay` + ffmpeg as OBS and as
// destinations.
//  - health: a destination whose listener is down shows `error` with the relay's
//    last_error in GET /api/stream outputs[], then `forwarding` (and bytes) once it is up;
//    the change is published on the user's socket topic.
//  - relay kill -9 + restart on the same DATA_DIR: inputs/outputs come back from
//    relay.json, the publisher (restarted in a loop, like OBS) reconnects within the
//    grace window, the stream stays `streaming` with the same id, media reaches the
//    destination again.
//  - relay restarted without its state: the control plane restores the live input (same
//    uid and key) and recreates the missing output (no duplicate).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { newUser, waitState, dashSocket } from '../lib/livelib.mjs';
import { probe, killAll } from './relay_lib.mjs';
import { bootStack, publishLoop, sinkLoop, outputOf, waitFor, sleep, freePort, tmpDir } from './health_lib.mjs';

after(() => killAll());

async function liveUser(ctx) {
  const u = await newUser(ctx);
  const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.rtmp_url && s; }, { what: 'live input' });
  const base = st.input.rtmp_url.endsWith('/') ? st.input.rtmp_url : st.input.rtmp_url + '/';
  return { u, st, url: base + st.input.stream_key };
}

test('output health: error with last_error while the destination is down, forwarding once it is up', { timeout: 60000 }, async () => {
  const ctx = await bootStack();
  const dir = tmpDir('sp-health-media-');
  let pub = null;
  let sinks = null;
  try {
    const { u, st, url } = await liveUser(ctx);
    const sinkPort = await freePort(); // nothing listens there yet
    const d = await u.addDest('down-then-up', `rtmp://127.0.0.1:${sinkPort}/live`, 'DESTKEY');
    const ws = await dashSocket(ctx, u);
    const topic = `user_stream:${u.id}`;
    ws.send({ type: 'subscribe', topic });
    await ws.next((m) => m.event === 'subscribed' && m.topic === topic);
    pub = publishLoop(url);
    await waitState(u, 'ready', { timeout: 15000 });
    const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(start.status, 200, start.text);

    const bad = await waitFor(async () => {
      const o = outputOf(await u.stream(), d.id);
      return o?.health?.status === 'error' && o;
    }, { timeout: 15000, what: 'health error in GET /api/stream' });
    assert.equal(bad.state, 'active', 'the DB row is active: the relay accepted the output');
    assert.equal(bad.destination_id, d.id);
    assert.equal(bad.name, 'down-then-up');
    assert.ok(typeof bad.health.last_error === 'string' && bad.health.last_error.length > 0, 'last_error shown');
    assert.match(bad.health.last_error, /refused|connect/i);
    assert.equal(typeof bad.health.reconnects, 'number');
    // the same through the relay's own API
    const relayOut = (await ctx.relay.outputs(st.input.input_uid))[0];
    assert.equal(relayOut.uid, bad.output_uid);
    // published on the user's topic
    await waitFor(() => ws.msgs.some((m) => m.event === 'state_changed' && m.payload?.reason === 'output_health' &&
      (m.payload.outputs || []).some((o) => o.destination_id === d.id && o.health?.status === 'error')),
    { timeout: 5000, what: 'output_health published with error' });

    sinks = sinkLoop(dir, sinkPort, 'DESTKEY');
    await sinks.ready;
    const good = await waitFor(async () => {
      const o = outputOf(await u.stream(), d.id);
      return o?.health?.status === 'forwarding' && o.health.bytes > 50000 && o;
    }, { timeout: 30000, what: 'health forwarding with bytes' });
    assert.equal(good.state, 'active');
    assert.equal(good.health.last_error ?? null, null, 'no error while forwarding');
    await waitFor(() => ws.msgs.some((m) => m.event === 'state_changed' && m.payload?.reason === 'output_health' &&
      (m.payload.outputs || []).some((o) => o.destination_id === d.id && o.health?.status === 'forwarding')),
    { timeout: 5000, what: 'output_health published with forwarding' });
    await ws.close();
    const stop = await u.api('POST', '/api/stream/stop');
    assert.equal(stop.status, 200, stop.text);
  } finally {
    if (pub) pub.stop();
    if (sinks) sinks.stop();
    await ctx.stop();
  }
});
