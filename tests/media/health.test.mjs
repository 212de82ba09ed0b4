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
import { chromium } from 'playwright-core';
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
  let browser = null;
  try {
    const { u, st, url } = await liveUser(ctx);
    const sinkPort = await freePort(); // nothing listens there yet
    const d = await u.addDest('down-then-up', `rtmp://127.0.0.1:${sinkPort}/live`, 'DESTKEY');
    const ws = await dashSocket(ctx, u);
    const topic = `user_stream:${u.id}`;
    ws.send({ type: 'subscribe', topic });
    await ws.next((m) => m.event === 'subscribed' && m.topic === topic);
    // the stream page, in Chromium, follows the same changes over its own socket
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const bctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    await bctx.addCookies(u.cookie.split('; ').map((kv) => {
      const i = kv.indexOf('=');
      return { name: kv.slice(0, i), value: kv.slice(i + 1), url: ctx.srv.url };
    }));
    const page = await bctx.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(ctx.srv.url + '/dashboard');
    await page.locator('#state-badge').waitFor();
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
    const row = page.locator(`#destinations li[data-id="${d.id}"]`);
    // one status in plain words, with the relay's last error as the reason (dest_status.js)
    await row.locator('.dest-status[data-status="error"]').waitFor({ timeout: 10000 });
    assert.equal(await row.locator('.dest-status').count(), 1, 'one status per destination');
    assert.equal(await row.locator('.dest-status').textContent(), `Error: ${bad.health.last_error}`, 'last_error shown as text');

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
    await row.locator('.dest-status[data-status="live"]').waitFor({ timeout: 10000 });
    assert.equal(await row.locator('.dest-status').textContent(), 'Live');
    assert.doesNotMatch(await row.textContent(), /Error|active|Idle/, 'nothing contradicts Live');
    // bytes sent, refreshed while live
    await page.waitForFunction((id) => /^[\d.]+ (kB|MB|GB) sent$/.test(
      document.querySelector(`#destinations li[data-id="${id}"] .dest-bytes`)?.textContent || ''), d.id, { timeout: 10000 });
    assert.deepEqual(pageErrors, []);
    await ws.close();
    const stop = await u.api('POST', '/api/stream/stop');
    assert.equal(stop.status, 200, stop.text);
    // both processes exit cleanly (ASan/LSan report as a non-zero exit)
    await ctx.srv.stopClean();
    await ctx.relay.stopClean();
  } finally {
    if (browser) await browser.close();
    if (pub) pub.stop();
    if (sinks) sinks.stop();
    await ctx.stop();
  }
});

// Streams with one destination and waits until it forwards; returns what the restart tests need.
async function streaming(ctx, dir) {
  const { u, st, url } = await liveUser(ctx);
  const sinkPort = await freePort();
  const d = await u.addDest('dest', `rtmp://127.0.0.1:${sinkPort}/live`, 'DESTKEY');
  const sinks = sinkLoop(dir, sinkPort, 'DESTKEY');
  await sinks.ready;
  const pub = publishLoop(url);
  await waitState(u, 'ready', { timeout: 15000 });
  const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
  assert.equal(start.status, 200, start.text);
  await waitFor(async () => outputOf(await u.stream(), d.id)?.health?.status === 'forwarding',
    { timeout: 15000, what: 'forwarding' });
  return { u, st, d, sinks, pub, streamId: start.json.stream_id, inputUid: st.input.input_uid };
}

// After a relay restart: the stream is still the same, the output forwards again and a
// destination connection made after the restart receives real media.
async function assertRecovered(ctx, s, sinksBefore, t0) {
  const { u, d } = s;
  // the restarted relay itself: the input is live again and its one output forwards
  const outs = await waitFor(async () => {
    const cur = await u.stream();
    assert.equal(cur.state, 'streaming', 'the stream never left streaming');
    assert.equal(cur.stream_id, s.streamId, 'same stream id');
    const list = await ctx.relay.outputs(s.inputUid);
    return list && list.length >= 1 && list.every((x) => x.status === 'forwarding') && list;
  }, { timeout: 25000, what: 'relay output forwarding after the restart' });
  assert.equal(outs.length, 1, 'exactly one output on the relay (no duplicate)');
  assert.equal((await ctx.relay.input(s.inputUid)).status.current.state, 'connected');
  // and the control plane shows that output as forwarding, with the input connected
  const o = await waitFor(async () => {
    const cur = await u.stream();
    assert.equal(cur.state, 'streaming', 'the stream never left streaming');
    assert.equal(cur.stream_id, s.streamId, 'same stream id');
    const out = outputOf(cur, d.id);
    return out?.output_uid === outs[0].uid && out.health?.status === 'forwarding' &&
      cur.input.status === 'connected' && out;
  }, { timeout: 20000, what: 'control plane sees the output forwarding' }); // inside the 40 s budget below
  assert.equal(o.state, 'active');
  assert.equal((await ctx.relay.outputs(s.inputUid)).length, 1, 'still no duplicate');
  // a destination connection opened after the restart gets media (keyframe first)
  await waitFor(() => s.sinks.sinks.length > sinksBefore, { timeout: 10000, what: 'destination reconnected' });
  const sink = s.sinks.sinks[s.sinks.sinks.length - 1];
  await sleep(3000);
  const stop = await u.api('POST', '/api/stream/stop');
  assert.equal(stop.status, 200, stop.text);
  await Promise.race([sink.exited, sleep(8000)]);
  const p = probe(sink.out);
  assert.ok(p.video >= 45, `destination got ${p.video} video packets after the restart`);
  assert.equal(p.firstVideoKey, true, 'starts on a keyframe');
  const ended = await waitFor(async () => { const c = await u.stream(); return ['offline', 'ready'].includes(c.state) && c; }, { what: 'ended' });
  const hist = (await u.api('GET', `/api/streams/${s.streamId}`)).json;
  assert.notEqual(hist.end_reason, 'disconnect_timeout', 'not ended by the grace window');
  assert.ok(Date.now() - t0 < 40000, 'recovery well within the time budget');
  return ended;
}

test('relay kill -9 and restart on the same DATA_DIR: same stream, media flows again', { timeout: 90000 }, async () => {
  const ctx = await bootStack({ disconnectTimeout: 15000 });
  const dir = tmpDir('sp-health-media-');
  let s = null;
  try {
    s = await streaming(ctx, dir);
    assert.ok(fs.existsSync(path.join(ctx.relayDir, 'relay.json')));
    const sinksBefore = s.sinks.sinks.length;
    const runsBefore = s.pub.runs;
    await ctx.relay.kill9();
    const t0 = Date.now();
    await sleep(1500); // the publisher fails and retries meanwhile
    await ctx.restartRelay();
    await waitFor(() => s.pub.runs > runsBefore, { what: 'publisher restarted' });
    await assertRecovered(ctx, s, sinksBefore, t0);
    assert.match(ctx.relay.logText(), /msg="state loaded" inputs=1/);
    // both processes exit cleanly (ASan/LSan report as a non-zero exit)
    await ctx.srv.stopClean();
    await ctx.relay.stopClean();
  } finally {
    if (s) { s.pub.stop(); s.sinks.stop(); }
    await ctx.stop();
  }
});

test('relay restarted without its state: the input is restored and the missing output recreated', { timeout: 90000 }, async () => {
  const ctx = await bootStack({ disconnectTimeout: 15000 });
  const dir = tmpDir('sp-health-media-');
  let s = null;
  try {
    s = await streaming(ctx, dir);
    const before = outputOf(await s.u.stream(), s.d.id);
    const sinksBefore = s.sinks.sinks.length;
    await ctx.relay.kill9();
    const t0 = Date.now();
    fs.rmSync(path.join(ctx.relayDir, 'relay.json'));
    await sleep(1000);
    await ctx.restartRelay();
    assert.doesNotMatch(ctx.relay.logText(), /msg="state loaded" inputs=1/);
    const ended = await assertRecovered(ctx, s, sinksBefore, t0);
    assert.ok(ended);
    // the control plane put the input back with the same identity and made a new output
    const cp = ctx.srv.logText();
    assert.match(cp, /msg="live input restored on the media service" input=/);
    assert.match(cp, /msg="output lost by the media service"/);
    assert.match(ctx.relay.logText(), new RegExp(`msg="live input restored" input=${s.inputUid}`));
    const hist = (await s.u.api('GET', `/api/streams/${s.streamId}`)).json;
    assert.equal(hist.id ?? s.streamId, s.streamId);
    assert.ok(before.output_uid, 'had an output before');
    for (const l of [...ctx.srv.logs, ...ctx.relay.logs]) assert.ok(!l.includes(s.st.input.stream_key), 'stream key in a log line');
    // both processes exit cleanly (ASan/LSan report as a non-zero exit)
    await ctx.srv.stopClean();
    await ctx.relay.stopClean();
  } finally {
    if (s) { s.pub.stop(); s.sinks.stop(); }
    await ctx.stop();
  }
});
