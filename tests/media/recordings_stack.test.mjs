// Recordings through the control plane (src/web/sp_routes_recordings.c) with the built-in
// relay and real ffmpeg: RECORDING_MODE reaches the relay's input, the history lists the
// recording with its size and duration, the owner downloads it (full, Range 206, 416),
// nobody else can, a user's own setting overrides the default, and retention deletes a
// back-dated recording at start.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, freePort, tmpDir, waitFor, sleep } from '../lib/harness.mjs';
import { newUser, waitState } from '../lib/livelib.mjs';
import { execFileSync } from 'node:child_process';
import { startRelay, startSink, publish, probe, killAll, TOKEN, WEBHOOK_SECRET } from './relay_lib.mjs';

after(() => killAll());

async function bootStack(extra = {}) {
  const cpPort = await freePort();
  const rtmpPort = await freePort();
  const dataDir = tmpDir('sp-recstack-');
  const recEnv = { RECORDING_MODE: 'automatic', RECORDING_TIMEOUT_SECONDS: '2', ...extra };
  const relay = await startRelay({
    dataDir,
    env: { RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}`, ...recEnv },
  });
  const cpEnv = {
    HTTP_LISTEN: `127.0.0.1:${cpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}`,
    MEDIA_BACKEND: 'local', RELAY_API_TOKEN: TOKEN, RELAY_API_LISTEN: `127.0.0.1:${relay.port}`,
    RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, CLOUDFLARE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STREAM_DISCONNECT_TIMEOUT: '3000', CLOUDFLARE_INPUT_POLL_INTERVAL: '1000', LOG_LEVEL: 'info',
    ...recEnv,
  };
  const srv = await startServer({ env: cpEnv, dataDir });
  return { relay, srv, rtmpPort, dataDir };
}

async function get(u, p, headers = {}) {
  const res = await fetch(u.base + p, { headers: { authorization: `Bearer ${u.token}`, ...headers } });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

test('record a stream, list it in the history, download it (Range), owner only, user setting', { timeout: 120000 }, async () => {
  const ctx = await bootStack();
  const dir = tmpDir('sp-recstack-media-');
  try {
    const u = await newUser(ctx);
    u.base = ctx.srv.url;
    const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.rtmp_url && s; }, { what: 'live input' });
    const uid = st.input.input_uid;
    // RECORDING_MODE / RECORDING_TIMEOUT_SECONDS were sent with the live input
    const rin = (await ctx.relay.api('GET', `/${uid}`)).json.result;
    assert.equal(rin.recording.mode, 'automatic');
    assert.equal(rin.recording.timeoutSeconds, 2);
    const setting = await u.api('GET', '/api/stream/recording');
    assert.equal(setting.status, 200, setting.text);
    assert.equal(setting.json.mode, 'automatic');
    assert.equal(setting.json.user_mode, undefined);
    assert.equal(setting.json.input_mode, 'automatic');

    const sinkPort = await freePort();
    const d = await u.addDest('sink', `rtmp://127.0.0.1:${sinkPort}/live`, 'DESTKEY');
    const sink = await startSink(dir, 'dest', sinkPort, 'DESTKEY');
    const base = st.input.rtmp_url.endsWith('/') ? st.input.rtmp_url : st.input.rtmp_url + '/';
    const pub = publish(base + st.input.stream_key, 5);
    await waitState(u, 'ready', { timeout: 15000 });
    const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(start.status, 200, start.text);
    const live = await u.api('GET', '/api/stream/recording');
    assert.equal(live.json.current?.state, 'recording', JSON.stringify(live.json));
    // the stream page's view: GET /api/stream has the current recording too
    const sr = await waitFor(async () => { const s = await u.stream(); return s.recording?.active === true && s.recording; },
      { what: 'recording active in GET /api/stream', timeout: 10000 });
    assert.equal(sr.mode, 'automatic');
    assert.equal(sr.error, undefined);
    assert.equal((await pub.exited).code, 0, pub.log());
    await sink.exited;
    const stop = await u.api('POST', '/api/stream/stop');
    assert.equal(stop.status, 200, stop.text);
    // the relay ends the recording after its 2 s timeout
    await waitFor(async () => (await u.api('GET', '/api/stream/recording')).json.current?.state === 'ended',
      { what: 'recording ended', timeout: 15000 });
    // the relay's recording webhooks in the persistent event log, in plain words
    const evs = await waitFor(async () => {
      const e = (await u.api('GET', '/api/stream/events?limit=50')).json.events;
      return e.some((x) => x.type === 'recording_saved') && e;
    }, { what: 'recording_saved in the event log', timeout: 10000 });
    assert.equal(evs.find((x) => x.type === 'recording_started').message, 'Recording started');
    assert.match(evs.find((x) => x.type === 'recording_saved').message, /^Recording saved \(\d+ (kB|MB), [4-6] s\)$/);
    assert.equal((await u.stream()).recording.active, false);

    const hist = await u.api('GET', '/api/streams');
    const streamId = hist.json.streams[0].id;
    const list = await u.api('GET', '/api/recordings');
    assert.equal(list.status, 200, list.text);
    assert.equal(list.json.backend, 'relay');
    assert.equal(list.json.recordings.length, 1);
    const rec = list.json.recordings[0];
    const file = path.join(ctx.dataDir, 'recordings', rec.file);
    const bytes = fs.readFileSync(file);
    assert.equal(rec.stream_id, streamId, 'matched to the stream it overlaps');
    assert.equal(rec.bytes, bytes.length);
    assert.ok(rec.duration_ms >= 4000 && rec.duration_ms <= 6000, `duration_ms ${rec.duration_ms}`);
    assert.equal(rec.state, 'ended');

    // download: whole file, then ranges
    let r = await get(u, `/api/streams/${streamId}/recording`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-length'), String(bytes.length));
    assert.equal(r.headers.get('accept-ranges'), 'bytes');
    assert.equal(r.headers.get('content-type'), 'video/x-flv');
    assert.ok(r.body.equals(bytes), 'downloaded bytes equal the file');
    r = await get(u, `/api/streams/${streamId}/recording`, { range: 'bytes=100-1099' });
    assert.equal(r.status, 206);
    assert.equal(r.headers.get('content-range'), `bytes 100-1099/${bytes.length}`);
    assert.equal(r.headers.get('content-length'), '1000');
    assert.ok(r.body.equals(bytes.subarray(100, 1100)));
    r = await get(u, `/api/streams/${streamId}/recording`, { range: 'bytes=-50' });
    assert.equal(r.status, 206);
    assert.ok(r.body.equals(bytes.subarray(bytes.length - 50)));
    r = await get(u, `/api/recordings/${rec.id}/file`, { range: `bytes=${bytes.length - 10}-` });
    assert.equal(r.status, 206);
    assert.ok(r.body.equals(bytes.subarray(bytes.length - 10)));
    r = await get(u, `/api/streams/${streamId}/recording`, { range: `bytes=${bytes.length}-` });
    assert.equal(r.status, 416);
    assert.equal(r.headers.get('content-range'), `bytes */${bytes.length}`);

    // owner only
    const v = await newUser(ctx);
    v.base = ctx.srv.url;
    assert.equal((await get(v, `/api/streams/${streamId}/recording`)).status, 404);
    assert.equal((await get(v, `/api/recordings/${rec.id}/file`)).status, 404);
    assert.equal((await v.api('GET', '/api/recordings')).json.recordings.length, 0);
    assert.equal((await fetch(`${u.base}/api/streams/${streamId}/recording`)).status, 401);

    // the user's own setting overrides the default and reaches the relay's input
    assert.equal((await u.api('PUT', '/api/stream/recording', { mode: 'sometimes' })).status, 422);
    const put = await u.api('PUT', '/api/stream/recording', { mode: 'off' });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.json.mode, 'off');
    assert.equal(put.json.applied, true);
    assert.equal((await ctx.relay.api('GET', `/${uid}`)).json.result.recording.mode, 'off');
    const back = await u.api('GET', '/api/stream/recording');
    assert.equal(back.json.user_mode, 'off');
    assert.equal(back.json.default, 'automatic');
    const reset = await u.api('PUT', '/api/stream/recording', { mode: null });
    assert.equal(reset.json.mode, 'automatic');
    assert.equal((await ctx.relay.api('GET', `/${uid}`)).json.result.recording.mode, 'automatic');
    await ctx.srv.stopClean();
    await ctx.relay.stopClean();
  } finally {
    killAll();
  }
});

test('a failing disk: the recording error shows in GET /api/stream/recording, the destination gets every frame', { timeout: 90000 }, async () => {
  const ctx = await bootStack({ RECORDING_TIMEOUT_SECONDS: '60' });
  const dir = tmpDir('sp-recstack-disk-');
  try {
    const u = await newUser(ctx);
    u.base = ctx.srv.url;
    const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.rtmp_url && s; }, { what: 'live input' });
    const sinkPort = await freePort();
    const d = await u.addDest('sink', `rtmp://127.0.0.1:${sinkPort}/live`, 'DESTKEY');
    const sink = await startSink(dir, 'dest', sinkPort, 'DESTKEY');
    // the relay's writes past 60 kB fail with EFBIG (soft limit of its process)
    execFileSync('prlimit', [`--pid=${ctx.relay.proc.pid}`, '--fsize=60000:unlimited']);
    const base = st.input.rtmp_url.endsWith('/') ? st.input.rtmp_url : st.input.rtmp_url + '/';
    const pub = publish(base + st.input.stream_key, 8);
    await waitState(u, 'ready', { timeout: 15000 });
    const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
    assert.equal(start.status, 200, start.text);
    const cur = await waitFor(async () => {
      const c = (await u.api('GET', '/api/stream/recording')).json.current;
      return c?.state === 'error' && c;
    }, { what: 'recording error in the API', timeout: 20000 });
    assert.match(cur.error, /recording stopped: file too large/i);
    assert.equal((await u.stream()).state, 'streaming', 'the stream goes on');
    // GET /api/stream shows the error (the stream page), the event log says it in plain words
    const sr = await waitFor(async () => { const s = await u.stream(); return s.recording?.error && s.recording; },
      { what: 'recording error in GET /api/stream', timeout: 10000 });
    assert.equal(sr.active, false);
    assert.equal(sr.mode, 'automatic');
    assert.match(sr.error, /recording stopped: file too large/i);
    const evs = await waitFor(async () => {
      const e = (await u.api('GET', '/api/stream/events?limit=50')).json.events;
      return e.some((x) => x.type === 'recording_failed') && e;
    }, { what: 'recording_failed in the event log', timeout: 10000 });
    assert.equal(evs.filter((x) => x.type === 'recording_failed').length, 1, 'logged once');
    assert.match(evs.find((x) => x.type === 'recording_failed').message, /^Recording stopped: file too large/i);
    assert.equal((await pub.exited).code, 0, pub.log());
    await sink.exited;
    const p = probe(sink.out);
    assert.ok(p.video >= 30 * 4, `destination video packets ${p.video}`);
    assert.equal(p.firstVideoKey, true);
    const outs = (await ctx.relay.api('GET', `/${st.input.input_uid}/outputs`)).json.result;
    for (const o of outs) assert.equal(o.dropped_gops, 0);
    execFileSync('prlimit', [`--pid=${ctx.relay.proc.pid}`, '--fsize=unlimited:unlimited']);
    await u.api('POST', '/api/stream/stop');
    await ctx.srv.stopClean();
    await ctx.relay.stopClean();
  } finally {
    killAll();
  }
});

test('retention deletes recordings older than RECORDING_RETENTION_DAYS, keeps newer ones', { timeout: 30000 }, async () => {
  const dataDir = tmpDir('sp-recret-');
  const udir = path.join(dataDir, 'recordings', 'someone');
  fs.mkdirSync(udir, { recursive: true });
  const old = 'a'.repeat(32), fresh = 'b'.repeat(32);
  for (const id of [old, fresh]) {
    fs.writeFileSync(path.join(udir, `${id}.flv`), Buffer.from('FLV\x01\x05\0\0\0\x09\0\0\0\0'));
    fs.writeFileSync(path.join(udir, `${id}.json`), JSON.stringify({ uid: id, state: 'ended' }));
  }
  const days40 = (Date.now() - 40 * 86400000) / 1000;
  fs.utimesSync(path.join(udir, `${old}.flv`), days40, days40);
  const days20 = (Date.now() - 20 * 86400000) / 1000;
  fs.utimesSync(path.join(udir, `${fresh}.flv`), days20, days20);
  const srv = await startServer({ dataDir, env: { MEDIA_BACKEND: 'local', RELAY_API_TOKEN: TOKEN, RECORDING_RETENTION_DAYS: '30' } });
  try {
    await waitFor(() => !fs.existsSync(path.join(udir, `${old}.flv`)), { what: 'old recording deleted', timeout: 10000 });
    assert.equal(fs.existsSync(path.join(udir, `${old}.json`)), false, 'its sidecar too');
    assert.equal(fs.existsSync(path.join(udir, `${fresh}.flv`)), true, '20 days old: kept');
    assert.equal(fs.existsSync(path.join(udir, `${fresh}.json`)), true);
    assert.ok(srv.logs.some((l) => /msg="retention deleted recordings" count=1 days=30/.test(l)));
    await sleep(100);
  } finally {
    await srv.stopClean();
  }
});
