// Recordings on Cloudflare (fake Cloudflare, tests/fakes/cloudflare.mjs): the live input is
// created with RECORDING_MODE / RECORDING_TIMEOUT_SECONDS, a user's own mode is sent with a
// PUT, and the input's videos are listed as recordings matched to the stream history.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootLive, newUser, inputUid, setInput, waitState } from '../lib/livelib.mjs';

test('Cloudflare: recording settings on create and per user; videos listed as recordings', { timeout: 60000 }, async () => {
  const ctx = await bootLive({ env: { RECORDING_MODE: 'automatic', RECORDING_TIMEOUT_SECONDS: '3600' } });
  try {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const create = ctx.cf.calls.find((c) => c.method === 'POST' && /\/live_inputs$/.test(c.path));
    assert.deepEqual((typeof create.body === 'string' ? JSON.parse(create.body) : create.body).recording, { mode: 'automatic', timeoutSeconds: 3600 });
    let rec = await u.api('GET', '/api/stream/recording');
    assert.equal(rec.status, 200, rec.text);
    assert.equal(rec.json.backend, 'cloudflare');
    assert.equal(rec.json.input_mode, 'automatic');

    // a stream with a destination, then a recording of it at Cloudflare
    const d = await u.addDest('d1', 'rtmp://127.0.0.1:1935/live');
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(start.status, 200, start.text);
    const add = await fetch(`${ctx.cf.controlUrl}/inputs/${uid}/videos`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ duration: 12.5, size: 123456, state: 'live-inprogress' }),
    });
    assert.equal(add.status, 200);
    const video = await add.json();
    const list = await u.api('GET', '/api/recordings');
    assert.equal(list.status, 200, list.text);
    assert.equal(list.json.backend, 'cloudflare');
    assert.equal(list.json.recordings.length, 1);
    const r = list.json.recordings[0];
    assert.equal(r.id, video.uid);
    assert.equal(r.bytes, 123456);
    assert.equal(r.duration_ms, 12500);
    assert.equal(r.state, 'live-inprogress');
    assert.equal(r.stream_id, start.json.stream_id, 'matched to the running stream');
    assert.match(r.playback.hls, /\.m3u8$/);
    // no file to download from Cloudflare here
    const dl = await u.api('GET', `/api/streams/${start.json.stream_id}/recording`);
    assert.equal(dl.status, 404);

    // the user's own setting is sent to the input at once
    const put = await u.api('PUT', '/api/stream/recording', { mode: 'off' });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.json.applied, true);
    const inputs = await (await fetch(`${ctx.cf.controlUrl}/inputs`)).json();
    assert.equal(inputs.find((i) => i.uid === uid).recording.mode, 'off');
    rec = await u.api('GET', '/api/stream/recording');
    assert.equal(rec.json.mode, 'off');
    assert.equal(rec.json.input_mode, 'off');
    // the input loses the user's mode (as a re-created input would): the next GET sends it again
    const reset = await fetch(`${ctx.cf.url}/accounts/${ctx.cf.accountId}/stream/live_inputs/${uid}`, {
      method: 'PUT', headers: { authorization: `Bearer ${ctx.cf.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ recording: { mode: 'automatic' } }),
    });
    assert.equal(reset.status, 200);
    rec = await u.api('GET', '/api/stream/recording');
    assert.equal(rec.json.input_mode, 'automatic', 'what the input had');
    let healed = false;
    for (let i = 0; i < 50 && !healed; i++) {
      const all = await (await fetch(`${ctx.cf.controlUrl}/inputs`)).json();
      healed = all.find((x) => x.uid === uid).recording.mode === 'off';
      if (!healed) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(healed, 'the user\'s mode was sent to the input again');

    // another user sees none of it
    const v = await newUser(ctx);
    await inputUid(v);
    assert.equal((await v.api('GET', '/api/recordings')).json.recordings.length, 0);
    assert.equal((await v.api('GET', `/api/streams/${start.json.stream_id}/recording`)).status, 404);
  } finally {
    await ctx.stopClean();
  }
});
