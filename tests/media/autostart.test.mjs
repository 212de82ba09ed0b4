// Issue 13 with real media: auto go-live through the built-in relay. `streampai serve`
// (MEDIA_BACKEND=local) drives `streampai relay`; ffmpeg publishes as OBS; with auto go-live
// on for one of two destinations, publishing alone makes the stream go live and the media
// reach that destination (ffprobe), never the other. Then the control plane and the relay
// restart: the input still reads its last known status, not "Never connected".
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, freePort, tmpDir, waitFor, sleep, assertNoSecretsInLog } from '../lib/harness.mjs';
import { newUser, waitState } from '../lib/livelib.mjs';
import { startRelay, startSink, publish, probe, killAll, listening, TOKEN, WEBHOOK_SECRET } from './relay_lib.mjs';

after(() => killAll());

async function bootStack() {
  const cpPort = await freePort();
  const rtmpPort = await freePort();
  const relayDir = tmpDir('sp-auto-relay-');
  const relayEnv = { RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}` };
  const relay = await startRelay({ env: relayEnv, dataDir: relayDir });
  const cpEnv = {
    HTTP_LISTEN: `127.0.0.1:${cpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}`,
    MEDIA_BACKEND: 'local', RELAY_API_TOKEN: TOKEN, RELAY_API_LISTEN: `127.0.0.1:${relay.port}`,
    RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, CLOUDFLARE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STREAM_DISCONNECT_TIMEOUT: '3000', CLOUDFLARE_INPUT_POLL_INTERVAL: '1000', LOG_LEVEL: 'info',
  };
  const dataDir = tmpDir('sp-auto-');
  const ctx = { relay, rtmpPort, dataDir, cpEnv, relayDir, relayEnv };
  ctx.srv = await startServer({ env: cpEnv, dataDir });
  ctx.restart = async () => { ctx.srv = await startServer({ env: cpEnv, dataDir }); };
  return ctx;
}

test('publish -> auto go-live -> media at the selected destination only', { timeout: 150000 }, async () => {
  const ctx = await bootStack();
  const dir = tmpDir('sp-auto-media-');
  try {
    const u = await newUser(ctx);
    const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.rtmp_url && s; }, { what: 'live input' });
    assert.equal(st.input.status, 'none');
    const sinkPort = await freePort();
    const otherPort = await freePort();
    const d = await u.addDest('sink', `rtmp://127.0.0.1:${sinkPort}/live`, 'DESTKEY');
    const other = await u.addDest('other', `rtmp://127.0.0.1:${otherPort}/live`, 'OTHERKEY');
    const put = await u.api('PUT', '/api/stream/settings', { auto_start: true, auto_start_destinations: [d.id] });
    assert.equal(put.status, 200, put.text);
    const sink = await startSink(dir, 'dest', sinkPort, 'DESTKEY');

    // OBS connects: nobody presses Start
    const base = st.input.rtmp_url.endsWith('/') ? st.input.rtmp_url : st.input.rtmp_url + '/';
    const pub = publish(base + st.input.stream_key, 10);
    const live = await waitFor(async () => { const s = await u.stream(); return s.state === 'streaming' && !s.starting && s; },
      { timeout: 20000, what: 'auto go-live' });
    assert.deepEqual(live.outputs.map((o) => o.destination_id), [d.id]);
    const uid = st.input.input_uid;
    const outs = await waitFor(async () => {
      const list = (await ctx.relay.api('GET', `/${uid}/outputs`)).json.result || [];
      return list.length === 1 && list[0].status === 'forwarding' && list;
    }, { timeout: 15000, what: 'relay output forwarding' });
    assert.equal(outs[0].url, `rtmp://127.0.0.1:${sinkPort}/live`);
    assert.equal(listening(otherPort), false, 'nothing for the destination not selected');
    assert.ok(!live.outputs.some((o) => o.destination_id === other.id));

    await pub.exited;
    // the encoder is gone: the grace window (3 s) ends the stream
    await waitFor(async () => ['offline', 'ready'].includes((await u.stream()).state), { timeout: 20000, what: 'stream ended' });
    await sink.exited;
    const p = probe(sink.out);
    assert.ok(p.video >= 120, `destination got ${p.video} video packets`);
    assert.ok(p.audio >= 150, `destination got ${p.audio} audio packets`);
    assert.equal(p.firstVideoKey, true, 'first video packet at the destination is a keyframe');
    const events = (await u.api('GET', '/api/stream/events?limit=50')).json.events;
    const types = events.map((e) => e.type);
    for (const t of ['input_connected', 'auto_start', 'stream_started', 'input_disconnected', 'stream_ended'])
      assert.ok(types.includes(t), `${t} in ${types.join(',')}`);
    assert.match(events.find((e) => e.type === 'stream_ended').message, /^Encoder disconnected for 3 s/);

    // both processes restart (make run after a crash): the input keeps its last known status
    await ctx.srv.kill9();
    await ctx.relay.kill9();
    ctx.relay = await startRelay({ env: { ...ctx.relayEnv, RELAY_API_LISTEN: `127.0.0.1:${ctx.relay.port}` }, dataDir: ctx.relayDir });
    await ctx.restart();
    const seen = [];
    await waitFor(async () => { const s = await u.stream(); seen.push(s.input.status); return seen.length >= 6; },
      { timeout: 20000, what: 'statuses after restart', interval: 700 });
    assert.ok(!seen.includes('none'), `never "Never connected" after the restart: ${seen.join(',')}`);
    assert.equal(seen.at(-1), 'disconnected');

    await ctx.srv.stopClean();
    await ctx.relay.stopClean();
    assertNoSecretsInLog([...ctx.srv.logs, ...ctx.relay.logs], [st.input.stream_key, 'DESTKEY', 'OTHERKEY', TOKEN, WEBHOOK_SECRET],
      { known: [/module=http msg="listening"/, /module=relay msg="rtmp listening"/] });
  } finally {
    await ctx.srv.stop();
    await ctx.relay.stop();
  }
});
