// The built-in RTMP relay (`streampai relay`) with real ffmpeg publishers and
// `ffmpeg -listen 1` destinations: fan-out, isolation, reconnect, RTMPS,
// bad input, persistence, webhooks. Each test streams 5-10 s of media.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  startRelay, startSink, publish, probe, startWebhookSink, makeCert, startTlsProxy,
  tmpDir, freePort, waitFor, sleep, WEBHOOK_SECRET, TOKEN, startJsSink, rtmpChunk, amf, killAll,
} from './relay_lib.mjs';

afterEach(() => killAll());

const FPS = 30;
const GOP = 30; // -g 30: one keyframe per second

function assertCounts(p, seconds, name) {
  const srcVideo = seconds * FPS;
  const srcAudio = Math.round(seconds * 44100 / 1024);
  assert.ok(p.video >= srcVideo - GOP && p.video <= srcVideo + 1, `${name}: video packets ${p.video} vs source ${srcVideo}`);
  assert.ok(p.audio >= srcAudio - 44 && p.audio <= srcAudio + 2, `${name}: audio packets ${p.audio} vs source ~${srcAudio}`);
  assert.ok(Math.abs(p.duration - seconds) <= 1.05, `${name}: duration ${p.duration} vs ${seconds}`);
  assert.ok(p.firstVideoKey, `${name}: first video packet must be a keyframe`);
}

test('fan-out to three destinations, API state, webhooks, metrics', { timeout: 60000 }, async () => {
  const dir = tmpDir('sp-relay-');
  const wh = await startWebhookSink();
  const relay = await startRelay({ env: { RELAY_WEBHOOK_URL: wh.url } });
  try {
    const input = await relay.createInput();
    assert.match(input.uid, /^[0-9a-f]{32}$/);
    assert.equal(input.status, null, 'status is null before the first connect');
    assert.ok(input.rtmps.url.startsWith('rtmp'));
    const sinks = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      sinks.push(await startSink(dir, `s${i}`, port));
      const o = await relay.addOutput(input.uid, `rtmp://127.0.0.1:${port}/live`, 'SINKKEY');
      assert.equal(o.status, 'idle');
      assert.equal(o.enabled, true);
    }
    const pub = publish(`rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`, 6);
    await waitFor(async () => (await relay.input(input.uid)).status?.current?.state === 'connected', { what: 'connected' });
    await waitFor(async () => (await relay.outputs(input.uid)).every((o) => o.status === 'forwarding'), { what: 'forwarding' });
    // the codecs are known once the first audio and video messages are in (an output may
    // forward before that: it starts on the sequence headers)
    const live = await waitFor(async () => {
      const i = await relay.input(input.uid);
      return i.stats.videoCodec && i.stats.audioCodec && i;
    }, { what: 'codecs detected while live' });
    const r = await pub.exited;
    assert.equal(r.code, 0, pub.log());
    for (const s of sinks) assert.equal(await s.exited, 0, s.log());
    const outs = await relay.outputs(input.uid);
    for (const o of outs) {
      assert.ok(o.bytes > 100000, `bytes sent ${o.bytes}`);
      assert.equal(o.reconnects, 0);
      assert.equal(o.status, 'idle');
    }
    for (const [i, s] of sinks.entries()) {
      assertCounts(probe(s.out), 6, `sink ${i}`);
      assert.doesNotMatch(s.log(), /Unexpected stream|App field don't match/, 'relay used the destination key and app');
    }
    assert.equal(live.stats.videoCodec, 'h264');
    assert.equal(live.stats.audioCodec, 'aac');
    assert.equal(live.stats.width, 640);
    assert.equal(live.stats.height, 360);
    const after = await relay.input(input.uid);
    assert.equal(after.status.current.state, 'disconnected');
    await waitFor(() => wh.events.length >= 2, { what: 'webhooks' });
    assert.deepEqual(wh.events.map((e) => e.body.data.event_type), ['live_input.connected', 'live_input.disconnected']);
    for (const e of wh.events) {
      assert.equal(e.auth, WEBHOOK_SECRET);
      assert.equal(e.body.data.input_id, input.uid);
      assert.equal(e.body.data.notification_name, 'Stream Live Input');
      assert.equal(typeof e.body.ts, 'number');
    }
    const metrics = await (await fetch(`${relay.url}/metrics`)).text();
    const out = Number(metrics.match(/^streampai_relay_bytes_out_total (\d+)/m)[1]);
    assert.ok(out > 300000, `bytes out ${out}`);
    assert.match(metrics, /^streampai_relay_outputs\{state="idle"\} 3$/m);
    assert.doesNotMatch(relay.logText(), new RegExp(input.rtmps.streamKey), 'stream key never logged');
    // API auth
    const unauth = await fetch(`${relay.url}/client/v4/accounts/a/stream/live_inputs`, { headers: { authorization: 'Bearer wrong' } });
    assert.equal(unauth.status, 403);
    assert.equal((await unauth.json()).success, false);
  } finally {
    wh.close();
    await relay.stopClean();
  }
});

test('a killed destination errors and reconnects; the others continue', { timeout: 60000 }, async () => {
  const dir = tmpDir('sp-relay-');
  const relay = await startRelay();
  try {
    const input = await relay.createInput();
    const pa = await freePort(), pb = await freePort();
    let a = await startSink(dir, 'a1', pa);
    const b = await startSink(dir, 'b', pb);
    const oa = await relay.addOutput(input.uid, `rtmp://127.0.0.1:${pa}/live`, 'SINKKEY');
    await relay.addOutput(input.uid, `rtmp://127.0.0.1:${pb}/live`, 'SINKKEY');
    const pub = publish(`rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`, 10);
    await waitFor(async () => (await relay.outputs(input.uid)).every((o) => o.status === 'forwarding'), { what: 'forwarding' });
    await sleep(1500);
    a.kill();
    await a.exited;
    const errored = await waitFor(async () => {
      const o = (await relay.outputs(input.uid)).find((x) => x.uid === oa.uid);
      return o.status === 'error' || o.status === 'connecting' ? o : null;
    }, { what: 'output A error' });
    assert.ok(errored.last_error && errored.last_error.length > 0, 'last_error set');
    assert.equal((await relay.outputs(input.uid)).find((x) => x.uid !== oa.uid).status, 'forwarding');
    await sleep(500);
    a = await startSink(dir, 'a2', pa);
    const back = await waitFor(async () => {
      const o = (await relay.outputs(input.uid)).find((x) => x.uid === oa.uid);
      return o.status === 'forwarding' ? o : null;
    }, { what: 'output A forwarding again', timeout: 8000 });
    assert.ok(back.reconnects >= 1, `reconnects ${back.reconnects}`);
    assert.equal(back.last_error, undefined);
    assert.equal((await pub.exited).code, 0);
    assert.equal(await b.exited, 0);
    assert.equal(await a.exited, 0);
    assertCounts(probe(b.out), 10, 'healthy sink');
    const pa2 = probe(a.out);
    assert.ok(pa2.firstVideoKey, 'resumed destination starts on a keyframe');
    assert.ok(pa2.video > 30, `resumed destination got video (${pa2.video})`);
    assert.match(relay.logText(), /msg="output error"/);
  } finally {
    await relay.stopClean();
  }
});

test('a stalled destination does not slow the input or the others', { timeout: 60000 }, async () => {
  const dir = tmpDir('sp-relay-');
  const relay = await startRelay({ env: { RELAY_OUTPUT_QUEUE_MS: '1000', RELAY_OUTPUT_QUEUE_BYTES: '65536' } });
  try {
    const input = await relay.createInput();
    const pa = await freePort(), pb = await freePort();
    const a = await startSink(dir, 'stall', pa);
    const b = await startSink(dir, 'ok', pb);
    const oa = await relay.addOutput(input.uid, `rtmp://127.0.0.1:${pa}/live`, 'SINKKEY');
    await relay.addOutput(input.uid, `rtmp://127.0.0.1:${pb}/live`, 'SINKKEY');
    // a noisy source so the stalled socket's kernel buffers fill quickly
    const pub = publish(`rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`, 8,
      { extra: ['-b:v', '8M', '-maxrate', '8M', '-bufsize', '2M', '-vf', 'noise=alls=80:allf=t'] });
    await waitFor(async () => (await relay.outputs(input.uid)).every((o) => o.status === 'forwarding'), { what: 'forwarding' });
    a.proc.kill('SIGSTOP');
    const r = await pub.exited;
    assert.equal(r.code, 0);
    assert.ok(r.ms < 8000 + 6000, `publisher took ${r.ms} ms for 8 s of media`);
    assert.equal(await b.exited, 0);
    assertCounts(probe(b.out), 8, 'healthy sink');
    const o = (await relay.outputs(input.uid)).find((x) => x.uid === oa.uid);
    assert.ok(o.dropped_gops >= 1, `stalled output dropped whole GOPs (${JSON.stringify(o)})`);
    a.proc.kill('SIGCONT');
    a.kill();
  } finally {
    await relay.stopClean();
  }
});

test('rtmps destination verified against RELAY_CA_FILE; a wrong certificate is refused', { timeout: 60000 }, async () => {
  const dir = tmpDir('sp-relay-');
  const good = makeCert(dir, 'good');
  const bad = makeCert(dir, 'bad');
  const relay = await startRelay({ env: { RELAY_CA_FILE: good.crt } });
  try {
    const input = await relay.createInput();
    const p1 = await freePort(), p2 = await freePort(), t1 = await freePort(), t2 = await freePort();
    const s1 = await startSink(dir, 'tls_ok', p1);
    const s2 = await startSink(dir, 'tls_bad', p2);
    const x1 = await startTlsProxy(t1, good.both, p1);
    const x2 = await startTlsProxy(t2, bad.both, p2);
    await relay.addOutput(input.uid, `rtmps://127.0.0.1:${t1}/live`, 'SINKKEY');
    const ob = await relay.addOutput(input.uid, `rtmps://127.0.0.1:${t2}/live`, 'SINKKEY');
    const pub = publish(`rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`, 5);
    const bo = await waitFor(async () => {
      const o = (await relay.outputs(input.uid)).find((x) => x.uid === ob.uid);
      return o.status === 'error' ? o : null;
    }, { what: 'wrong cert error' });
    assert.match(bo.last_error, /certificate/i);
    assert.equal((await pub.exited).code, 0);
    assert.equal(await s1.exited, 0, s1.log() + '\nrelay:\n' + relay.logs.filter((l) => /output|tls|push/i.test(l)).join('\n'));
    assertCounts(probe(s1.out), 5, 'rtmps sink');
    s2.kill(); x1.kill(); x2.kill();
  } finally {
    await relay.stopClean();
  }
});

// ---- raw RTMP client for malformed input ----
function rawSession(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    s.on('error', () => {});
    s.on('connect', () => {
      const c1 = Buffer.alloc(1537);
      c1[0] = 3;
      s.write(c1);
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!done && buf.length >= 3073) {
        done = true;
        s.write(buf.subarray(1, 1537)); // C2 = S1
        resolve(s);
      }
    });
    setTimeout(() => reject(new Error('handshake timeout')), 5000);
  });
}

function chunkMsg(type, payload, csid = 3) {
  const parts = [];
  const h = Buffer.alloc(12);
  h[0] = csid; h.writeUIntBE(0, 1, 3); h.writeUIntBE(payload.length, 4, 3); h[7] = type; h.writeUInt32LE(0, 8);
  parts.push(h);
  for (let i = 0; i < payload.length; i += 128) {
    if (i > 0) parts.push(Buffer.from([0xC0 | csid]));
    parts.push(payload.subarray(i, i + 128));
  }
  return Buffer.concat(parts);
}

const amfStr = (s) => { const b = Buffer.alloc(3 + s.length); b[0] = 2; b.writeUInt16BE(s.length, 1); b.write(s, 3); return b; };
const amfNum = (n) => { const b = Buffer.alloc(9); b[0] = 0; b.writeDoubleBE(n, 1); return b; };

function closed(sock, ms = 5000) {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    sock.on('close', () => { clearTimeout(t); resolve(true); });
  });
}

test('bad input is rejected with a log line and no crash', { timeout: 60000 }, async () => {
  const relay = await startRelay();
  try {
    const input = await relay.createInput();
    // wrong key
    const wrong = publish(`rtmp://127.0.0.1:${relay.rtmpPort}/live/not-a-key`, 3);
    assert.notEqual((await wrong.exited).code, 0);
    assert.match(relay.logText(), /msg="publish rejected".*reason=unknown_stream_key/);
    // second publisher on a live key
    const first = publish(`rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`, 6);
    await waitFor(async () => (await relay.input(input.uid)).status?.current?.state === 'connected', { what: 'connected' });
    const second = publish(`rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`, 3);
    const r2 = await second.exited;
    assert.notEqual(r2.code, 0);
    assert.match(second.log(), /already publishing/i);
    assert.match(relay.logText(), /reason=already_publishing/);
    assert.equal((await relay.input(input.uid)).status.current.state, 'connected', 'first publisher undisturbed');
    // garbage bytes instead of a handshake
    const g = net.connect(relay.rtmpPort, '127.0.0.1');
    g.on('error', () => {});
    g.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.ok(await closed(g), 'garbage connection closed');
    // Set Chunk Size 2147483647
    let s = await rawSession(relay.rtmpPort);
    const scs = Buffer.alloc(4); scs.writeUInt32BE(0x7fffffff);
    s.write(chunkMsg(1, scs, 2));
    assert.ok(await closed(s), 'huge chunk size closed');
    // huge AMF string (long string of 1 MB inside connect)
    s = await rawSession(relay.rtmpPort);
    const big = Buffer.alloc(5 + 1000000, 0x41); big[0] = 0x0c; big.writeUInt32BE(1000000, 1);
    s.write(chunkMsg(20, Buffer.concat([amfStr('connect'), amfNum(1), big])));
    assert.ok(await closed(s), 'huge AMF string closed');
    // deeply nested AMF objects
    s = await rawSession(relay.rtmpPort);
    const nest = [];
    for (let i = 0; i < 200; i++) nest.push(Buffer.from([0x03, 0x00, 0x01, 0x61]));
    s.write(chunkMsg(20, Buffer.concat([amfStr('connect'), amfNum(1), ...nest])));
    assert.ok(await closed(s), 'deep AMF closed');
    const logs = relay.logText();
    assert.match(logs, /msg="protocol error from publisher".*err=SP_ETOOBIG/);
    assert.ok((logs.match(/msg="protocol error from publisher"/g) || []).length >= 4, 'each bad session logged');
    assert.equal((await first.exited).code, 0, 'first publisher completed');
    const m = await (await fetch(`${relay.url}/metrics`)).text();
    assert.match(m, /^streampai_relay_ingest_rejected_total 2$/m);
  } finally {
    await relay.stopClean();
  }
});

test('live inputs and outputs persist across restarts', { timeout: 30000 }, async () => {
  const dataDir = tmpDir('sp-relay-data-');
  let relay = await startRelay({ dataDir });
  const input = await relay.createInput();
  const out = await relay.addOutput(input.uid, 'rtmp://127.0.0.1:1/live', 'DESTKEY');
  await relay.api('PUT', `/${input.uid}`, { meta: { name: 'renamed' } });
  await sleep(300);
  await relay.stopClean();
  relay = await startRelay({ dataDir });
  try {
    const again = await relay.input(input.uid);
    assert.equal(again.rtmps.streamKey, input.rtmps.streamKey);
    assert.equal(again.meta.name, 'renamed');
    const outs = await relay.outputs(input.uid);
    assert.deepEqual(outs.map((o) => [o.uid, o.url, o.streamKey, o.enabled]), [[out.uid, out.url, 'DESTKEY', true]]);
    const list = (await relay.api('GET', '')).json.result;
    assert.equal(list.total, 1);
    assert.equal(list.liveInputs[0].uid, input.uid);
    assert.equal((await relay.api('PUT', `/${input.uid}/outputs/${out.uid}`, { enabled: false })).json.result.enabled, false);
    assert.equal((await relay.api('DELETE', `/${input.uid}/outputs/${out.uid}`)).json.success, true);
    assert.equal((await relay.api('DELETE', `/${input.uid}`)).json.success, true);
    assert.equal((await relay.api('GET', `/${input.uid}`)).status, 404);
  } finally {
    await relay.stopClean();
  }
});

test('SIGTERM while live stops cleanly (publisher and destinations closed, exit 0)', { timeout: 30000 }, async () => {
  const dir = tmpDir('sp-relay-');
  const relay = await startRelay();
  const input = await relay.createInput();
  const port = await freePort();
  const sink = await startSink(dir, 'term', port);
  await relay.addOutput(input.uid, `rtmp://127.0.0.1:${port}/live`, 'SINKKEY');
  const pub = publish(`rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`, 20);
  await waitFor(async () => (await relay.outputs(input.uid)).every((o) => o.status === 'forwarding'), { what: 'forwarding' });
  await sleep(1000);
  const st = await relay.stopClean('SIGTERM');
  assert.ok(st.ms < 5000, `stop took ${st.ms} ms`);
  assert.equal(await sink.exited, 0);
  const r = await pub.exited;
  assert.ok(r.ms < 15000, 'publisher noticed the relay going away');
  assert.ok(probe(sink.out).firstVideoKey);
});

test('Enhanced RTMP (HEVC FourCC) passthrough; a late output starts on the cached keyframe at once', { timeout: 30000 }, async () => {
  const relay = await startRelay();
  const sinkA = await startJsSink();
  const sinkB = await startJsSink();
  try {
    const input = await relay.createInput();
    await relay.addOutput(input.uid, `rtmp://127.0.0.1:${sinkA.port}/app`, 'KA');
    const s = await rawSession(relay.rtmpPort);
    let rx = Buffer.alloc(0);
    s.on('data', (d) => { rx = Buffer.concat([rx, d]); });
    const key = (k) => { const b = Buffer.alloc(2 + k.length); b.writeUInt16BE(k.length); b.write(k, 2); return b; };
    const fourcc = Buffer.concat([Buffer.from([0x0a, 0, 0, 0, 2]), amf.str('hvc1'), amf.str('av01')]);
    const connectObj = Buffer.concat([Buffer.from([3]), key('app'), amf.str('live'), key('tcUrl'),
      amf.str(`rtmp://127.0.0.1:${relay.rtmpPort}/live`), key('fourCcList'), fourcc, Buffer.from([0, 0, 9])]);
    s.write(rtmpChunk(3, 20, 0, Buffer.concat([amf.str('connect'), amf.num(1), connectObj])));
    await waitFor(() => rx.includes('NetConnection.Connect.Success'), { what: 'connect result' });
    assert.ok(rx.includes('fourCcList') && rx.includes('hvc1'), 'server echoes fourCcList');
    s.write(rtmpChunk(3, 20, 0, Buffer.concat([amf.str('createStream'), amf.num(2), amf.nul()])));
    s.write(rtmpChunk(8, 20, 1, Buffer.concat([amf.str('publish'), amf.num(3), amf.nul(), amf.str(input.rtmps.streamKey), amf.str('live')])));
    await waitFor(() => rx.includes('NetStream.Publish.Start'), { what: 'publish start' });
    const seq = Buffer.concat([Buffer.from([0x90]), Buffer.from('hvc1'), Buffer.from('HEVC-CONFIG-RECORD')]);
    const frame = (k, n) => Buffer.concat([Buffer.from([k ? 0x91 : 0xA1]), Buffer.from('hvc1'), Buffer.from([0, 0, 0]), Buffer.alloc(200, n)]);
    s.write(rtmpChunk(6, 9, 1, seq, 0));
    await waitFor(async () => (await relay.outputs(input.uid))[0].status === 'forwarding', { what: 'A forwarding' });
    let ts = 0;
    for (let gop = 0; gop < 2; gop++) for (let i = 0; i < 10; i++, ts += 33) s.write(rtmpChunk(6, 9, 1, frame(i === 0, gop * 10 + i), ts));
    await waitFor(() => sinkA.messages.filter((m) => m.type === 9).length >= 21, { what: 'A got all video' });
    const va = sinkA.messages.filter((m) => m.type === 9);
    assert.deepEqual(va[0].payload, seq, 'sequence start forwarded byte for byte');
    assert.equal(va[1].payload[0], 0x91, 'then the keyframe');
    assert.equal(va[1].ts, 0, 'timestamps rebased to the first keyframe');
    const info = await relay.input(input.uid);
    assert.equal(info.stats.videoCodec, 'hevc');
    // a late output: sequence header + cached GOP from its keyframe, immediately
    const t0 = Date.now();
    await relay.addOutput(input.uid, `rtmp://127.0.0.1:${sinkB.port}/app`, 'KB');
    await waitFor(() => sinkB.messages.some((m) => m.type === 9 && m.payload[0] === 0x91), { what: 'B keyframe', interval: 5 });
    const firstKeyMs = sinkB.messages.find((m) => m.type === 9 && m.payload[0] === 0x91).at - t0;
    assert.ok(firstKeyMs <= 200, `first keyframe after ${firstKeyMs} ms`);
    const vb = sinkB.messages.filter((m) => m.type === 9);
    assert.deepEqual(vb[0].payload, seq);
    assert.equal(vb[1].payload[0], 0x91);
    assert.equal(vb[1].payload[8], 10, 'starts at the latest keyframe (second GOP)');
    assert.equal(vb.length, 11, 'sequence header + the 10 frames of the cached GOP');
    assert.deepEqual(sinkB.commands.slice(0, 2), ['connect', 'releaseStream']);
    assert.ok(sinkB.commands.includes('publish'));
    s.destroy();
    await waitFor(async () => (await relay.input(input.uid)).status.current.state === 'disconnected', { what: 'disconnected' });
  } finally {
    await sinkA.close(); await sinkB.close();
    await relay.stopClean();
  }
});

test('webhooks are retried when the control plane answers 5xx', { timeout: 30000 }, async () => {
  const wh = await startWebhookSink({ failFirst: 2 });
  const relay = await startRelay({ env: { RELAY_WEBHOOK_URL: wh.url } });
  try {
    const input = await relay.createInput();
    const s = await rawSession(relay.rtmpPort);
    let rx = Buffer.alloc(0);
    s.on('data', (d) => { rx = Buffer.concat([rx, d]); });
    s.write(rtmpChunk(3, 20, 0, Buffer.concat([amf.str('connect'), amf.num(1), amf.obj({ app: 'live' })])));
    s.write(rtmpChunk(3, 20, 0, Buffer.concat([amf.str('createStream'), amf.num(2), amf.nul()])));
    s.write(rtmpChunk(8, 20, 1, Buffer.concat([amf.str('publish'), amf.num(3), amf.nul(), amf.str(input.rtmps.streamKey), amf.str('live')])));
    await waitFor(() => rx.includes('NetStream.Publish.Start'), { what: 'publish start' });
    await waitFor(() => wh.events.length >= 1, { what: 'connected webhook after retries', timeout: 10000 });
    s.destroy();
    await waitFor(() => wh.events.length >= 2, { what: 'disconnected webhook', timeout: 10000 });
    assert.deepEqual(wh.events.map((e) => e.body.data.event_type), ['live_input.connected', 'live_input.disconnected']);
    assert.equal(wh.requests(), 4, 'two failed attempts, then one delivery per event');
    assert.match(relay.logText(), /msg="webhook failed".*status=503.*retry=1/);
  } finally {
    wh.close();
    await relay.stopClean();
  }
});

// Publishes over a raw RTMP session (no encoder): returns {sock, rx(), video(ts, key, n)}.
async function rawPublisher(relay, streamKey) {
  const s = await rawSession(relay.rtmpPort);
  let rx = Buffer.alloc(0);
  s.on('data', (d) => { rx = Buffer.concat([rx, d]); });
  s.write(rtmpChunk(3, 20, 0, Buffer.concat([amf.str('connect'), amf.num(1), amf.obj({ app: 'live' })])));
  s.write(rtmpChunk(3, 20, 0, Buffer.concat([amf.str('createStream'), amf.num(2), amf.nul()])));
  s.write(rtmpChunk(8, 20, 1, Buffer.concat([amf.str('publish'), amf.num(3), amf.nul(), amf.str(streamKey), amf.str('live')])));
  await waitFor(() => rx.includes('NetStream.Publish.Start'), { what: 'publish start' });
  return {
    sock: s,
    rx: () => rx,
    avcSeq: () => s.write(rtmpChunk(6, 9, 1, Buffer.from([0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e]), 0)),
    video: (ts, key, n) => s.write(rtmpChunk(6, 9, 1, Buffer.concat([Buffer.from([key ? 0x17 : 0x27, 1, 0, 0, 0]), Buffer.alloc(300, n & 0xff)]), ts)),
  };
}

test('disabling, re-enabling and deleting an output closes and reopens its connection', { timeout: 30000 }, async () => {
  const relay = await startRelay();
  const sink = await startJsSink();
  try {
    const input = await relay.createInput();
    const out = await relay.addOutput(input.uid, `rtmp://127.0.0.1:${sink.port}/live`, 'K');
    const pub = await rawPublisher(relay, input.rtmps.streamKey);
    pub.avcSeq();
    let ts = 0;
    for (let i = 0; i < 5; i++, ts += 33) pub.video(ts, i === 0, i);
    await waitFor(() => sink.messages.filter((m) => m.type === 9).length >= 6, { what: 'forwarded' });
    const put = await relay.api('PUT', `/${input.uid}/outputs/${out.uid}`, { enabled: false });
    assert.equal(put.json.result.enabled, false);
    assert.equal(put.json.result.status, 'idle');
    await waitFor(() => sink.open === 0, { what: 'destination connection closed on disable' });
    for (let i = 5; i < 8; i++, ts += 33) pub.video(ts, false, i);
    await sleep(200);
    assert.equal(sink.conns, 1, 'no reconnect while disabled');
    await relay.api('PUT', `/${input.uid}/outputs/${out.uid}`, { enabled: true });
    await waitFor(() => sink.conns === 2 && sink.open === 1, { what: 'reconnected on enable' });
    await waitFor(async () => (await relay.outputs(input.uid))[0].status === 'forwarding', { what: 'forwarding again' });
    // the second connection starts with the sequence header and the cached GOP from its keyframe
    await waitFor(() => sink.messages.filter((m) => m.type === 9).length >= 6 + 1 + 8, { what: 'replay' });
    const second = sink.messages.filter((m) => m.type === 9).slice(6);
    assert.deepEqual([second[0].payload[0], second[0].payload[1]], [0x17, 0], 'sequence header first');
    assert.deepEqual([second[1].payload[0], second[1].payload[1]], [0x17, 1], 'then the keyframe');
    assert.equal(second[1].ts, 0, 'rebased');
    const del = await relay.api('DELETE', `/${input.uid}/outputs/${out.uid}`);
    assert.equal(del.json.success, true);
    await waitFor(() => sink.open === 0, { what: 'destination connection closed on delete' });
    assert.deepEqual(await relay.outputs(input.uid), []);
    pub.sock.destroy();
  } finally {
    await sink.close();
    await relay.stopClean();
  }
});

test('a client that never completes the handshake is dropped after 10 s', { timeout: 30000 }, async () => {
  const relay = await startRelay();
  try {
    const s = net.connect(relay.rtmpPort, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.on('connect', r));
    s.write(Buffer.from([3, 0, 0])); // C0 and a sliver of C1, then silence
    const t0 = Date.now();
    assert.ok(await closed(s, 15000), 'closed');
    const ms = Date.now() - t0;
    assert.ok(ms >= 9000 && ms <= 12500, `dropped after ${ms} ms`);
    assert.match(relay.logText(), /msg="handshake timeout"/);
  } finally {
    await relay.stopClean();
  }
});

test('a publisher that stops sending media is dropped after 30 s and the input goes disconnected', { timeout: 60000 }, async () => {
  const relay = await startRelay();
  try {
    const input = await relay.createInput();
    const pub = await rawPublisher(relay, input.rtmps.streamKey);
    pub.sock.on('error', () => {});
    pub.avcSeq();
    pub.video(0, true, 0);
    const t0 = Date.now();
    await waitFor(async () => (await relay.input(input.uid)).status?.current?.state === 'connected', { what: 'connected' });
    assert.ok(await closed(pub.sock, 40000), 'idle publisher closed');
    const ms = Date.now() - t0;
    assert.ok(ms >= 29000 && ms <= 36000, `dropped after ${ms} ms`);
    assert.match(relay.logText(), /msg="publisher idle"/);
    await waitFor(async () => (await relay.input(input.uid)).status?.current?.state === 'disconnected', { what: 'disconnected' });
  } finally {
    await relay.stopClean();
  }
});

test('a publisher breaking the protocol while live: input errored, live_input.errored webhook', { timeout: 30000 }, async () => {
  const wh = await startWebhookSink();
  const relay = await startRelay({ env: { RELAY_WEBHOOK_URL: wh.url } });
  try {
    const input = await relay.createInput();
    const pub = await rawPublisher(relay, input.rtmps.streamKey);
    pub.sock.on('error', () => {});
    pub.avcSeq();
    pub.video(0, true, 0);
    await waitFor(() => wh.events.some((e) => e.body?.data?.event_type === 'live_input.connected'), { what: 'connected webhook' });
    // Set Chunk Size with the top bit set is invalid (RTMP: 31-bit value): a protocol error.
    const p = Buffer.alloc(4); p.writeUInt32BE(0x80000000);
    pub.sock.write(rtmpChunk(2, 1, 0, p));
    pub.video(33, false, 1);
    assert.ok(await closed(pub.sock, 5000), 'publisher closed');
    const ev = await waitFor(() => wh.events.find((e) => e.body?.data?.event_type === 'live_input.errored'), { what: 'errored webhook' });
    assert.equal(ev.auth, WEBHOOK_SECRET);
    assert.equal(ev.body.data.input_id, input.uid);
    assert.equal(ev.body.data.live_input_errored.error.code, 'ERR_PROTOCOL');
    const st = (await relay.input(input.uid)).status.current;
    assert.equal(st.state, 'errored');
    assert.match(relay.logText(), /msg="input errored"/);
  } finally {
    wh.close();
    await relay.stopClean();
  }
});

// The media tick (RELAY_TICK_MS): publishers are read and outputs written once per tick, and a
// publisher socket only wakes the relay between ticks once SO_RCVLOWAT (512 KiB) is buffered.
// An 8 Mbit/s CBR publisher with a 1 s tick crosses that mark inside every tick, so both read
// paths run; a late output must still start at once, not on the next tick.
test('media tick: 8 Mbit/s with a 1 s tick loses nothing; a late output starts at once', { timeout: 60000 }, async () => {
  const dir = tmpDir('sp-tick-');
  const relay = await startRelay({ env: { RELAY_TICK_MS: '1000' } });
  const late = await startJsSink();
  try {
    const input = await relay.createInput();
    const port = await freePort();
    const sink = await startSink(dir, 'tick', port);
    await relay.addOutput(input.uid, `rtmp://127.0.0.1:${port}/live`, 'SINKKEY');
    const seconds = 10;
    const pub = publish(`rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`, seconds, {
      extra: ['-b:v', '8M', '-minrate', '8M', '-maxrate', '8M', '-bufsize', '1M', '-x264-params', 'nal-hrd=cbr'],
    });
    await waitFor(async () => (await relay.outputs(input.uid))[0].status === 'forwarding', { what: 'forwarding' });
    // The bitrate is measured over 2 s windows that open on the first 1 s stats tick after the
    // publish (the first may hold the encoder's start-up): the test's premise is a window above
    // the low-water mark per tick while the publisher runs.
    const kbps = [];
    await waitFor(async () => {
      const k = (await relay.input(input.uid)).stats.bitrateKbps;
      if (kbps[kbps.length - 1] !== k) kbps.push(k);
      return k > 6000;
    }, { what: 'a publisher bitrate window above 6000 kbit/s', timeout: 8000 }).catch((e) => {
      throw new Error(`${e.message}; windows seen: ${kbps.join(', ')} kbit/s`);
    });
    const t0 = Date.now();
    await relay.addOutput(input.uid, `rtmp://127.0.0.1:${late.port}/live`, 'LATE');
    const isKey = (m) => m.type === 9 && (m.payload[0] >> 4) === 1 && m.payload[1] === 1;
    await waitFor(() => late.messages.some(isKey), { what: 'late keyframe', interval: 5 });
    const firstKeyMs = late.messages.find(isKey).at - t0;
    assert.ok(firstKeyMs < 500, `late output's first keyframe after ${firstKeyMs} ms (tick is 1000 ms)`);
    const r = await pub.exited;
    assert.equal(r.code, 0, pub.log());
    assert.equal(await sink.exited, 0, sink.log());
    assertCounts(probe(sink.out), seconds, 'sink');
    const outs = await relay.outputs(input.uid);
    assert.equal(outs.reduce((a, o) => a + o.dropped_gops, 0), 0, 'no GOP dropped');
    assert.ok(outs[0].bytes > seconds * 0.8 * 1e6, `bytes forwarded ${outs[0].bytes}`);
  } finally {
    await late.close();
    await relay.stopClean();
  }
});
