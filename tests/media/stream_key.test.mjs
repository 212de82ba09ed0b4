// "Regenerate my stream key" with real media (issue 13 item 11): `streampai serve`
// (MEDIA_BACKEND=local) + `streampai relay` + ffmpeg as OBS.
//  - POST /api/stream/key/regenerate while the encoder is connected (ready): a new key, the
//    old live input is deleted from the relay before the answer; the publisher on the old key
//    is cut, a new RTMP publish with the old key is refused, the new key is accepted.
//  - refused (409 live) while streaming; the first stream's key is unchanged then.
// Also: the destination status reaches "forwarding" within a few seconds of the start and of
// the encoder's return after a drop (item 3: after an output is created or the input comes
// back, health is refreshed every second until it settles, not once per 15 s poll period).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { newUser, waitState } from '../lib/livelib.mjs';
import { publish, killAll, startSink } from './relay_lib.mjs';
import { bootStack, outputOf, sinkLoop, waitFor, sleep, freePort, tmpDir } from './health_lib.mjs';

after(() => killAll());

const ingestUrl = (input) => (input.rtmp_url.endsWith('/') ? input.rtmp_url : input.rtmp_url + '/') + input.stream_key;

test('regenerate the stream key: the old key is refused by the relay at once, the new one works', { timeout: 90000 }, async () => {
  const ctx = await bootStack({ disconnectTimeout: 15000 });
  const pubs = [];
  try {
    const u = await newUser(ctx);
    const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.rtmp_url && s; }, { what: 'live input' });
    const oldUrl = ingestUrl(st.input);
    const oldUid = st.input.input_uid;

    // OBS connected with the old key: ready
    const p1 = publish(oldUrl, 60);
    pubs.push(p1);
    await waitState(u, 'ready', { timeout: 15000 });

    const r = await u.api('POST', '/api/stream/key/regenerate');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.old_key_revoked, true);
    const nk = r.json.input;
    assert.ok(nk.stream_key && nk.stream_key !== st.input.stream_key, 'a new key');
    assert.notEqual(nk.input_uid, oldUid, 'a new live input');
    // the old input is gone from the relay already (the answer came after the delete)
    const gone = await ctx.relay.api('GET', `/${oldUid}`);
    assert.equal(gone.status, 404);
    // the encoder on the old key was cut; the stream is no longer ready
    const ex = await Promise.race([p1.exited, sleep(10000).then(() => null)]);
    assert.ok(ex, 'the publisher on the old key was disconnected');
    const s2 = await waitState(u, 'offline', { timeout: 10000 });
    assert.equal(s2.input.stream_key, nk.stream_key, 'GET /api/stream shows the new key');
    assert.equal(s2.input.input_uid, nk.input_uid);

    // a new publish with the old key is refused
    const p2 = publish(oldUrl, 20);
    pubs.push(p2);
    const ex2 = await Promise.race([p2.exited, sleep(10000).then(() => null)]);
    assert.ok(ex2, 'ffmpeg with the old key gave up');
    assert.notEqual(ex2.code, 0, 'refused');
    assert.equal((await u.stream()).state, 'offline');

    // the new key is accepted: ready, then live with a destination that forwards quickly
    const sinkPort = await freePort();
    const sink = await startSink(tmpDir('sp-key-sink-'), 'dest', sinkPort, 'DESTKEY');
    const d = await u.addDest('sink', `rtmp://127.0.0.1:${sinkPort}/live`, 'DESTKEY');
    const p3 = publish(ingestUrl(nk), 60);
    pubs.push(p3);
    await waitState(u, 'ready', { timeout: 15000 });
    const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(start.status, 200, start.text);

    // while live the key cannot be regenerated
    const busy = await u.api('POST', '/api/stream/key/regenerate');
    assert.equal(busy.status, 409, busy.text);
    assert.equal(busy.json.error.code, 'live');
    assert.equal((await u.stream()).input.stream_key, nk.stream_key, 'key unchanged while live');

    const stop = await u.api('POST', '/api/stream/stop');
    assert.equal(stop.status, 200, stop.text);
    sink.kill();
    for (const p of pubs) p.kill();
    await ctx.srv.stopClean();
    await ctx.relay.stopClean();
  } finally {
    for (const p of pubs) p.kill();
    await ctx.stop();
  }
});

test('destination status: forwarding within a few seconds of the start and of the encoder coming back (no long "idle")', { timeout: 90000 }, async () => {
  // the default poll period (15 s), not the tests' 1 s: the first refresh must come early anyway
  const ctx = await bootStack({ disconnectTimeout: 60000, env: { CLOUDFLARE_INPUT_POLL_INTERVAL: '15000' } });
  let pub = null;
  let sink = null;
  try {
    const u = await newUser(ctx);
    const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.rtmp_url && s; }, { what: 'live input' });
    const sinkPort = await freePort();
    sink = sinkLoop(tmpDir('sp-quick-sink-'), sinkPort, 'DESTKEY'); // accepts again after each connection
    await sink.ready;
    const d = await u.addDest('sink', `rtmp://127.0.0.1:${sinkPort}/live`, 'DESTKEY');
    // without disconnect protection the relay's outputs really go idle while the encoder is away
    // (the user's setting, and the relay input's own flag in case the setting is not pushed)
    const set = await u.api('PUT', '/api/stream/settings', { disconnect_protection: false });
    assert.equal(set.status, 200, set.text);
    const rp = await ctx.relay.api('PUT', `/${st.input.input_uid}`, { disconnectProtection: false });
    assert.equal(rp.status, 200);
    assert.equal(rp.json.result.disconnectProtection, false);
    pub = publish(ingestUrl(st.input), 60);
    await waitState(u, 'ready', { timeout: 30000, interval: 200 });
    const t0 = Date.now();
    const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(start.status, 200, start.text);
    await waitFor(async () => outputOf(await u.stream(), d.id)?.health?.status === 'forwarding',
      { timeout: 6000, interval: 200, what: 'forwarding within 6 s of the start' });
    const ms = Date.now() - t0;
    assert.ok(ms < 6000, `forwarding shown after ${ms} ms`);

    // the encoder drops: the relay's outputs go idle (seen by a refresh), then it comes back:
    // "forwarding" again within a few seconds, not a whole poll period (15 s) later
    pub.kill();
    await waitFor(async () => outputOf(await u.stream(), d.id)?.health?.status === 'idle',
      { timeout: 40000, interval: 100, what: 'idle seen while the encoder is away' });
    const t1 = Date.now();
    pub = publish(ingestUrl(st.input), 60);
    await waitFor(async () => outputOf(await u.stream(), d.id)?.health?.status === 'forwarding',
      { timeout: 7000, interval: 200, what: 'forwarding within 7 s of the encoder coming back' });
    assert.equal((await u.stream()).state, 'streaming');
    const ms2 = Date.now() - t1;
    assert.ok(ms2 < 7000, `forwarding shown ${ms2} ms after the encoder came back`);
    const stop = await u.api('POST', '/api/stream/stop');
    assert.equal(stop.status, 200, stop.text);
    await ctx.srv.stopClean();
    await ctx.relay.stopClean();
  } finally {
    if (pub) pub.kill();
    if (sink) sink.stop();
    await ctx.stop();
  }
});
