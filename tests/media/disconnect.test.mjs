// Disconnect protection in the built-in relay: when the encoder drops, every destination stays
// connected and gets the "be right back" slate (assets/slates) with continuous timestamps; when
// the encoder is back the relay splices back at its first keyframe. Real ffmpeg publishers, the
// relay (ASan build), and a recording RTMP destination (the JS sink: it records every media
// message it receives and counts its connections); the recording is checked with ffprobe.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import {
  startRelay, publish, startJsSink, tmpDir, waitFor, sleep, killAll, rtmpChunk, amf,
} from './relay_lib.mjs';

afterEach(() => killAll());

// The destination's recording as an FLV file (audio and video messages as received).
function writeFlv(file, messages) {
  const parts = [Buffer.from([0x46, 0x4c, 0x56, 1, 5, 0, 0, 0, 9, 0, 0, 0, 0])];
  for (const m of messages) {
    if (m.type !== 8 && m.type !== 9) continue;
    const h = Buffer.alloc(11);
    h[0] = m.type;
    h.writeUIntBE(m.payload.length, 1, 3);
    h.writeUIntBE(m.ts & 0xffffff, 4, 3);
    h[7] = (m.ts >>> 24) & 0xff;
    const prev = Buffer.alloc(4);
    prev.writeUInt32BE(11 + m.payload.length);
    parts.push(h, m.payload, prev);
  }
  fs.writeFileSync(file, Buffer.concat(parts));
}

function ffprobeJson(args) {
  return JSON.parse(execFileSync('ffprobe', ['-v', 'error', ...args, '-of', 'json'],
    { maxBuffer: 64 * 1024 * 1024 }).toString());
}

function maxGap(times) {
  let g = 0;
  for (let i = 1; i < times.length; i++) g = Math.max(g, times[i] - times[i - 1]);
  return g;
}

// Runs of equal values: [[value, count], ...]
function runs(values) {
  const out = [];
  for (const v of values) {
    if (out.length && out[out.length - 1][0] === v) out[out.length - 1][1]++;
    else out.push([v, 1]);
  }
  return out;
}

async function liveOutput(relay, sink) {
  const input = await relay.createInput();
  assert.equal(input.disconnectProtection, true, 'disconnect protection is on by default');
  assert.equal(input.slate, null);
  const out = await relay.addOutput(input.uid, `rtmp://127.0.0.1:${sink.port}/live`, 'DESTKEY');
  const url = `rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`;
  return { input, out, url };
}

const WIDTH = (m) => m.width;

test('encoder dropped for 20 s: the destination stays connected on the slate, then gets the encoder back without a timestamp gap', { timeout: 150000 }, async (t) => {
  const dir = tmpDir('sp-slate-');
  const sink = await startJsSink();
  const relay = await startRelay();
  try {
    assert.match(relay.logText(), /msg="slates loaded" dir="assets\/slates" count=4/);
    const { input, url } = await liveOutput(relay, sink);
    const pub1 = publish(url, 120);
    await waitFor(async () => (await relay.outputs(input.uid))[0].status === 'forwarding', { what: 'forwarding' });
    await sleep(6000);
    const tKill = Date.now();
    pub1.kill('SIGKILL');
    await pub1.exited;
    // on the slate: the input is disconnected, the output still forwarding on its one connection
    const during = await waitFor(async () => {
      const i = await relay.input(input.uid);
      return i.status.current.state === 'disconnected' && i.slate && i;
    }, { what: 'input on the slate' });
    assert.equal(during.slate.active, true);
    assert.equal(during.slate.width, 1280, 'the slate nearest to 640x360@30 is 1280x720');
    assert.equal(during.slate.height, 720);
    assert.equal(during.slate.fps, 30);
    for (let i = 0; i < 4; i++) {
      await sleep(4000);
      const o = (await relay.outputs(input.uid))[0];
      assert.equal(o.status, 'forwarding', `output still forwarding ${(Date.now() - tKill) / 1000} s into the drop`);
      assert.equal(o.reconnects, 0);
      assert.equal(sink.conns, 1, 'no new destination connection');
      assert.equal(sink.open, 1, 'the destination connection is still open');
    }
    await sleep(Math.max(0, 20000 - (Date.now() - tKill)));
    const tBack = Date.now();
    const pub2 = publish(url, 10);
    await waitFor(async () => {
      const i = await relay.input(input.uid);
      return i.status.current.state === 'connected' && i.slate === null;
    }, { what: 'back on the encoder', timeout: 10000 });
    await sleep(6000);
    assert.equal(sink.conns, 1, 'one destination connection for the whole stream');
    assert.equal(sink.open, 1, 'the destination connection never closed');
    assert.equal((await relay.outputs(input.uid))[0].reconnects, 0);
    // a deliberate stop (ffmpeg ends: FCUnpublish, deleteStream) closes the outputs at once
    assert.equal((await pub2.exited).code, 0, pub2.log());
    await waitFor(() => sink.open === 0, { what: 'destination closed after the deliberate stop', timeout: 8000 });
    const log = relay.logText();
    assert.match(log, /msg="input on the slate" input=\w+ outputs=1 slate=1280x720@30/);
    assert.match(log, /msg="output back on the publisher"/);

    // the destination's timeline: strictly by the clock, no gap over 1 s, slate in the middle
    const media = sink.messages.filter((m) => m.type === 8 || m.type === 9);
    const rec = path.join(dir, 'dest.flv');
    writeFlv(rec, media);
    const pk = ffprobeJson(['-show_entries', 'packet=codec_type,pts_time', rec]).packets;
    const diag = [];
    for (const kind of ['video', 'audio']) {
      const pts = pk.filter((p) => p.codec_type === kind).map((p) => Number(p.pts_time));
      assert.ok(pts.length > 100, `${kind} packets: ${pts.length}`);
      for (let i = 1; i < pts.length; i++) assert.ok(pts[i] >= pts[i - 1], `${kind} pts goes back at ${pts[i - 1]} -> ${pts[i]}`);
      const g = maxGap(pts);
      diag.push(`${kind}: ${pts.length} packets, largest gap ${g.toFixed(3)} s`);
      assert.ok(g <= 1.0, `${kind}: largest timestamp gap ${g.toFixed(3)} s (limit 1 s)`);
    }
    // output time advanced with real time across the drop (no jump, no stall)
    const vt = media.filter((m) => m.type === 9);
    const span = (vt[vt.length - 1].ts - vt[0].ts) / 1000, wall = (vt[vt.length - 1].at - vt[0].at) / 1000;
    assert.ok(Math.abs(span - wall) < 2.5, `timestamps span ${span.toFixed(1)} s over ${wall.toFixed(1)} s of wall time`);
    // the frames: the encoder's 640x360, then the slate's 1280x720 for the drop, then 640x360
    const fr = ffprobeJson(['-select_streams', 'v', '-show_entries', 'frame=pts_time,width,height', rec]).frames;
    const r = runs(fr.map(WIDTH));
    assert.deepEqual(r.map((x) => x[0]), [640, 1280, 640], `frame sizes in order: ${JSON.stringify(r)}`);
    const dropS = (tBack - tKill) / 1000;
    assert.ok(r[1][1] >= (dropS - 3) * 30, `slate frames ${r[1][1]} for a ${dropS.toFixed(1)} s drop`);
    assert.ok(r[0][1] >= 120 && r[2][1] >= 120, `encoder frames before ${r[0][1]} and after ${r[2][1]}`);
    const slateFrames = fr.filter((f) => f.width === 1280);
    assert.ok(slateFrames.every((f) => f.height === 720));
    const s0 = Number(slateFrames[0].pts_time), s1 = Number(slateFrames[slateFrames.length - 1].pts_time);
    diag.push(`frames ${JSON.stringify(r)}, drop ${dropS.toFixed(1)} s, slate on air ${(s1 - s0).toFixed(1)} s, ` +
      `timestamps ${span.toFixed(1)} s over ${wall.toFixed(1)} s wall`);
    for (const d of diag) t.diagnostic(d);
    assert.ok(Math.abs((s1 - s0) - dropS) < 3, `slate on air ${(s1 - s0).toFixed(1)} s for a ${dropS.toFixed(1)} s drop`);
    await relay.stopClean();
  } finally {
    await relay.stop();
    await sink.close();
  }
});

test('the slate ends with the grace window (STREAM_DISCONNECT_TIMEOUT): then the outputs close', { timeout: 60000 }, async () => {
  const sink = await startJsSink();
  const relay = await startRelay({ env: { STREAM_DISCONNECT_TIMEOUT: '4000' } });
  try {
    const { input, url } = await liveOutput(relay, sink);
    const pub = publish(url, 60);
    await waitFor(async () => (await relay.outputs(input.uid))[0].status === 'forwarding', { what: 'forwarding' });
    await sleep(3000);
    const t0 = Date.now();
    pub.kill('SIGKILL');
    await pub.exited;
    await waitFor(async () => (await relay.input(input.uid)).slate, { what: 'on the slate' });
    await sleep(2000);
    assert.equal(sink.open, 1, 'still connected inside the grace window');
    await waitFor(() => sink.open === 0, { what: 'destination closed after the grace window', timeout: 10000 });
    const after = (Date.now() - t0) / 1000;
    assert.ok(after >= 3.5 && after < 8, `closed ${after.toFixed(1)} s after the drop (grace 4 s)`);
    const i = await relay.input(input.uid);
    assert.equal(i.slate, null);
    assert.equal(i.status.current.state, 'disconnected');
    assert.equal((await relay.outputs(input.uid))[0].status, 'idle');
    assert.match(relay.logText(), /msg="slate over: grace window ended"/);
    assert.equal(sink.conns, 1);
    await relay.stopClean();
  } finally {
    await relay.stop();
    await sink.close();
  }
});

test('disconnectProtection off (PUT): an encoder drop closes the outputs at once, as before', { timeout: 60000 }, async () => {
  const sink = await startJsSink();
  const relay = await startRelay();
  try {
    const { input, url } = await liveOutput(relay, sink);
    const put = await relay.api('PUT', `/${input.uid}`, { disconnectProtection: false });
    assert.equal(put.status, 200);
    assert.equal(put.json.result.disconnectProtection, false);
    const pub = publish(url, 60);
    await waitFor(async () => (await relay.outputs(input.uid))[0].status === 'forwarding', { what: 'forwarding' });
    await sleep(2000);
    const t0 = Date.now();
    pub.kill('SIGKILL');
    await pub.exited;
    await waitFor(() => sink.open === 0, { what: 'destination closed', timeout: 5000 });
    assert.ok(Date.now() - t0 < 3000, 'closed at once');
    assert.equal((await relay.input(input.uid)).slate, null);
    assert.doesNotMatch(relay.logText(), /msg="input on the slate"/);
    const list = (await relay.api('GET', '')).json.result.liveInputs;
    assert.equal(list.find((x) => x.uid === input.uid).disconnectProtection, false);
    const created = await relay.api('POST', '', { disconnectProtection: false });
    assert.equal(created.json.result.disconnectProtection, false, 'settable at creation');
    await relay.stopClean();
  } finally {
    await relay.stop();
    await sink.close();
  }
});

test('turning protection off while on the slate closes the outputs; persisted in relay.json', { timeout: 60000 }, async () => {
  const sink = await startJsSink();
  const dataDir = tmpDir('sp-slate-data-');
  let relay = await startRelay({ dataDir });
  try {
    const { input, url } = await liveOutput(relay, sink);
    const pub = publish(url, 60);
    await waitFor(async () => (await relay.outputs(input.uid))[0].status === 'forwarding', { what: 'forwarding' });
    await sleep(2000);
    pub.kill('SIGKILL');
    await pub.exited;
    await waitFor(async () => (await relay.input(input.uid)).slate, { what: 'on the slate' });
    await sleep(1000);
    assert.equal(sink.open, 1);
    const put = await relay.api('PUT', `/${input.uid}`, { disconnectProtection: false });
    assert.equal(put.status, 200);
    assert.equal(put.json.result.slate, null);
    await waitFor(() => sink.open === 0, { what: 'destination closed', timeout: 5000 });
    await relay.stopClean();
    relay = await startRelay({ dataDir });
    assert.equal((await relay.input(input.uid)).disconnectProtection, false, 'persisted');
    await relay.stopClean();
  } finally {
    await relay.stop();
    await sink.close();
  }
});

test('deleting an input on the slate closes its destination; SIGTERM on the slate exits cleanly', { timeout: 60000 }, async () => {
  const sink = await startJsSink();
  const relay = await startRelay();
  try {
    const a = await liveOutput(relay, sink);
    const b = await liveOutput(relay, sink);
    const pa = publish(a.url, 60), pb = publish(b.url, 60);
    await waitFor(async () => (await relay.outputs(a.input.uid))[0].status === 'forwarding' &&
      (await relay.outputs(b.input.uid))[0].status === 'forwarding', { what: 'both forwarding' });
    await sleep(2000);
    pa.kill('SIGKILL');
    pb.kill('SIGKILL');
    await Promise.all([pa.exited, pb.exited]);
    await waitFor(async () => (await relay.input(a.input.uid)).slate && (await relay.input(b.input.uid)).slate,
      { what: 'both on the slate' });
    await sleep(1000);
    assert.equal(sink.open, 2);
    assert.equal((await relay.api('DELETE', `/${a.input.uid}`)).status, 200);
    await waitFor(() => sink.open === 1, { what: 'the deleted input\'s destination closed', timeout: 5000 });
    await sleep(1000);
    assert.equal(sink.open, 1, 'the other input stays on the slate');
    await relay.stopClean();
    await waitFor(() => sink.open === 0, { what: 'destination closed at shutdown', timeout: 5000 });
    assert.equal(sink.conns, 2);
  } finally {
    await relay.stop();
    await sink.close();
  }
});

// A hand-driven RTMP publisher: handshake, connect, createStream, publish.
async function rawPublisher(port, streamKey) {
  const s = await new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0), done = false;
    c.on('error', () => {});
    c.on('connect', () => { const c1 = Buffer.alloc(1537); c1[0] = 3; c.write(c1); });
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!done && buf.length >= 3073) { done = true; c.write(buf.subarray(1, 1537)); resolve(c); }
    });
    setTimeout(() => reject(new Error('handshake timeout')), 5000);
  });
  let rx = Buffer.alloc(0);
  s.on('data', (d) => { rx = Buffer.concat([rx, d]); });
  const app = Buffer.concat([Buffer.from([3, 0, 3]), Buffer.from('app'), amf.str('live'), Buffer.from([0, 0, 9])]);
  s.write(rtmpChunk(3, 20, 0, Buffer.concat([amf.str('connect'), amf.num(1), app])));
  await waitFor(() => rx.includes('NetConnection.Connect.Success'), { what: 'connect result' });
  s.write(rtmpChunk(3, 20, 0, Buffer.concat([amf.str('createStream'), amf.num(2), amf.nul()])));
  s.write(rtmpChunk(8, 20, 1, Buffer.concat([amf.str('publish'), amf.num(3), amf.nul(), amf.str(streamKey), amf.str('live')])));
  await waitFor(() => rx.includes('NetStream.Publish.Start'), { what: 'publish start' });
  return s;
}

test('an encoder back without a keyframe: its outputs are reconnected after 10 s; a non-H.264 input gets no slate', { timeout: 90000 }, async () => {
  const sink = await startJsSink();
  const other = await startJsSink();
  const relay = await startRelay();
  try {
    // H.263 (legacy codec 2): no slate, the destination closes at once
    const h263 = await liveOutput(relay, other);
    const p = await rawPublisher(relay.rtmpPort, h263.input.rtmps.streamKey);
    let ts = 0;
    const frame263 = (key) => Buffer.concat([Buffer.from([key ? 0x12 : 0x22]), Buffer.alloc(300, 7)]);
    for (let i = 0; i < 30; i++, ts += 33) p.write(rtmpChunk(6, 9, 1, frame263(i % 15 === 0), ts));
    await waitFor(async () => (await relay.outputs(h263.input.uid))[0].status === 'forwarding', { what: 'h263 forwarding' });
    await waitFor(() => other.messages.some((m) => m.type === 9), { what: 'h263 media at the destination' });
    p.destroy();
    await waitFor(() => other.open === 0, { what: 'h263 destination closed at once', timeout: 5000 });
    assert.equal((await relay.input(h263.input.uid)).slate, null);

    // H.264 encoder drops, comes back sending only inter frames
    const { input, url } = await liveOutput(relay, sink);
    const pub = publish(url, 60);
    await waitFor(async () => (await relay.outputs(input.uid))[0].status === 'forwarding', { what: 'forwarding' });
    await sleep(2000);
    pub.kill('SIGKILL');
    await pub.exited;
    await waitFor(async () => (await relay.input(input.uid)).slate, { what: 'on the slate' });
    const back = await rawPublisher(relay.rtmpPort, input.rtmps.streamKey);
    back.write(rtmpChunk(6, 9, 1, Buffer.from([0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF]), 0));
    const t0 = Date.now();
    let vts = 0;
    const timer = setInterval(() => {
      vts += 33;
      back.write(rtmpChunk(6, 9, 1, Buffer.from([0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x9a]), vts));
    }, 33);
    try {
      await sleep(6000);
      assert.equal(sink.open, 1, 'still on the slate while waiting for a keyframe');
      assert.ok((await relay.input(input.uid)).slate, 'still on the slate');
      await waitFor(() => sink.conns === 2, { what: 'output reconnected', timeout: 10000 });
      const after = (Date.now() - t0) / 1000;
      assert.ok(after >= 9 && after < 14, `reconnected ${after.toFixed(1)} s after the encoder came back`);
      assert.match(relay.logText(), /msg="no keyframe from the encoder after the slate: outputs restarted"/);
      assert.equal((await relay.input(input.uid)).slate, null);
      // the new connection starts on the encoder's next keyframe
      const n = sink.messages.length;
      back.write(rtmpChunk(6, 9, 1, Buffer.from([0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88]), vts + 40));
      await waitFor(() => sink.messages.slice(n).some((m) => m.type === 9 && m.payload[0] === 0x17 && m.payload[1] === 1),
        { what: 'keyframe at the reconnected destination' });
    } finally {
      clearInterval(timer);
    }
    back.destroy();
    await relay.stopClean();
  } finally {
    await relay.stop();
    await sink.close();
    await other.close();
  }
});
