// Recordings of the built-in relay (src/relay/sp_recorder.c) with real ffmpeg publishers:
// one file across a reconnect within the timeout, a new file after it, ffprobe on the
// result, the recording webhooks, and a failing disk that stops the recording (visible in
// the API) while the live output gets every frame.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  startRelay, startSink, publish, probe, startWebhookSink, tmpDir, freePort, waitFor, sleep,
  WEBHOOK_SECRET, killAll,
} from './relay_lib.mjs';

afterEach(() => killAll());

const recDir = (dataDir, user) => path.join(dataDir, 'recordings', user);
const flvs = (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.flv')).sort() : []);
const events = (wh, name) => wh.events.filter((e) => e.body?.data?.event_type === name);

async function createRecordedInput(relay, user, timeoutSeconds) {
  const r = await relay.api('POST', '', {
    meta: { name: 'rec', user_id: user }, recording: { mode: 'automatic', timeoutSeconds },
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.result.recording.mode, 'automatic');
  assert.equal(r.json.result.recording.timeoutSeconds, timeoutSeconds);
  return r.json.result;
}

test('a reconnect within the timeout continues the same file; ffprobe: both streams, duration', { timeout: 90000 }, async () => {
  const wh = await startWebhookSink();
  const relay = await startRelay({ env: { RELAY_WEBHOOK_URL: wh.url } });
  try {
    const input = await createRecordedInput(relay, 'user-a', 5);
    const url = `rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`;
    let pub = publish(url, 4);
    assert.equal((await pub.exited).code, 0, pub.log());
    await waitFor(async () => (await relay.input(input.uid)).recording.current?.state === 'paused', { what: 'paused' });
    pub = publish(url, 4);
    await waitFor(async () => (await relay.input(input.uid)).recording.current?.state === 'recording', { what: 'resumed' });
    assert.equal((await pub.exited).code, 0, pub.log());
    // the timeout (5 s) ends it: one file, one started and one ended webhook
    await waitFor(() => events(wh, 'live_input.recording_ended').length === 1, { what: 'recording_ended', timeout: 15000 });
    const dir = recDir(relay.dataDir, 'user-a');
    const files = flvs(dir);
    assert.equal(files.length, 1, `one recording file: ${files}`);
    assert.equal(events(wh, 'live_input.recording_started').length, 1);
    const ended = events(wh, 'live_input.recording_ended')[0];
    assert.equal(ended.auth, WEBHOOK_SECRET);
    assert.equal(ended.body.data.input_id, input.uid);
    const rec = ended.body.data.recording;
    const file = path.join(dir, files[0]);
    assert.equal(rec.file, `user-a/${files[0]}`);
    assert.equal(rec.state, 'ended');
    assert.equal(rec.bytes, fs.statSync(file).size, 'bytes written = file size');
    assert.ok(rec.duration_ms >= 7000 && rec.duration_ms <= 9000, `duration_ms ${rec.duration_ms}`);
    const p = probe(file);
    assert.ok(p.duration >= 7 && p.duration <= 9, `ffprobe duration ${p.duration}`);
    assert.ok(p.video >= 7 * 30 - 30 && p.video <= 8 * 30 + 1, `video packets ${p.video}`);
    assert.ok(p.audio >= 7 * 43 && p.audio <= 8 * 44 + 2, `audio packets ${p.audio}`);
    assert.ok(p.firstVideoKey, 'starts on a keyframe');
    // timestamps continue across the reconnect: no jump back, no gap of more than a second
    const pts = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time',
      '-of', 'csv=p=0', file]).toString().trim().split('\n').filter((l) => /^\d/.test(l)).map((l) => Number(l.split(',')[0]));
    assert.ok(pts.length >= p.video - 1, `pts of every video packet: ${pts.length} vs ${p.video}`);
    for (let i = 1; i < pts.length; i++) {
      assert.ok(pts[i] >= pts[i - 1] - 0.2 && pts[i] - pts[i - 1] < 1, `pts ${pts[i - 1]} -> ${pts[i]} at ${i}`);
    }
    const side = JSON.parse(fs.readFileSync(file.replace(/\.flv$/, '.json'), 'utf8'));
    assert.equal(side.state, 'ended');
    assert.equal(side.input_uid, input.uid);
    assert.equal(side.bytes, rec.bytes);
    const after = await relay.input(input.uid);
    assert.equal(after.recording.current.state, 'ended');
    const metrics = await (await fetch(`${relay.url}/metrics`)).text();
    assert.match(metrics, /^streampai_relay_recordings_started_total 1$/m);
  } finally {
    wh.close();
    await relay.stopClean();
  }
});

test('after the timeout a new connection starts a new file; mode off records nothing', { timeout: 60000 }, async () => {
  const relay = await startRelay();
  try {
    const input = await createRecordedInput(relay, 'user-b', 1);
    const url = `rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`;
    let pub = publish(url, 2);
    assert.equal((await pub.exited).code, 0, pub.log());
    await waitFor(async () => (await relay.input(input.uid)).recording.current?.state === 'ended', { what: 'ended after 1 s' });
    pub = publish(url, 2);
    assert.equal((await pub.exited).code, 0, pub.log());
    await waitFor(async () => (await relay.input(input.uid)).recording.current?.state === 'ended', { what: 'second ended' });
    assert.equal(flvs(recDir(relay.dataDir, 'user-b')).length, 2);
    // PUT mode off: the next stream is not recorded; the setting persists in relay.json
    const put = await relay.api('PUT', `/${input.uid}`, { recording: { mode: 'off' } });
    assert.equal(put.status, 200);
    assert.equal(put.json.result.recording.mode, 'off');
    const bad = await relay.api('PUT', `/${input.uid}`, { recording: { mode: 'sometimes' } });
    assert.equal(bad.status, 400);
    pub = publish(url, 2);
    assert.equal((await pub.exited).code, 0, pub.log());
    await sleep(300);
    assert.equal(flvs(recDir(relay.dataDir, 'user-b')).length, 2, 'mode off: no new file');
    const state = JSON.parse(fs.readFileSync(path.join(relay.dataDir, 'relay.json'), 'utf8'));
    assert.equal(state.inputs[0].recording.mode, 'off');
  } finally {
    await relay.stopClean();
  }
});

test('a disk that fails (file size limit) stops the recording with an error; the output gets everything', { timeout: 60000 }, async () => {
  const dir = tmpDir('sp-rec-');
  const relay = await startRelay();
  try {
    const input = await createRecordedInput(relay, 'user-c', 60);
    // every write past 60 kB fails with EFBIG from now on (the state file is far smaller)
    execFileSync('prlimit', [`--pid=${relay.proc.pid}`, '--fsize=60000:unlimited']);
    const port = await freePort();
    const sink = await startSink(dir, 'out', port);
    await relay.addOutput(input.uid, `rtmp://127.0.0.1:${port}/live`, 'SINKKEY');
    const pub = publish(`rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`, 6);
    const cur = await waitFor(async () => {
      const c = (await relay.input(input.uid)).recording.current;
      return c?.state === 'error' && c;
    }, { what: 'recording error visible in the API' }).catch((e) => {
      throw new Error(`${e.message}\n${execFileSync('prlimit', [`--pid=${relay.proc.pid}`, '--fsize']).toString()} ${JSON.stringify(flvs(recDir(relay.dataDir, 'user-c')).map((f) => fs.statSync(path.join(recDir(relay.dataDir, 'user-c'), f)).size))}\n${relay.logText().split('\n').filter((l) => /record|fsize|error/i.test(l)).join('\n')}`);
    });
    assert.match(cur.error, /recording stopped: .*(too large|EFBIG)/i);
    assert.equal((await pub.exited).code, 0, pub.log());
    assert.equal(await sink.exited, 0, sink.log());
    const p = probe(sink.out);
    assert.ok(p.video >= 6 * 30 - 30, `output video packets ${p.video}`);
    assert.ok(Math.abs(p.duration - 6) <= 1.05, `output duration ${p.duration}`);
    const outs = await relay.outputs(input.uid);
    assert.equal(outs[0].reconnects, 0);
    assert.equal(outs[0].dropped_gops, 0);
    const files = flvs(recDir(relay.dataDir, 'user-c'));
    assert.equal(files.length, 1);
    assert.ok(fs.statSync(path.join(recDir(relay.dataDir, 'user-c'), files[0])).size <= 60000);
    assert.match(relay.logText(), /msg="recording failed"/);
    const metrics = await (await fetch(`${relay.url}/metrics`)).text();
    assert.match(metrics, /^streampai_relay_recording_errors_total 1$/m);
    execFileSync('prlimit', [`--pid=${relay.proc.pid}`, '--fsize=unlimited:unlimited']);
  } finally {
    await relay.stopClean();
  }
});
