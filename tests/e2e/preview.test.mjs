// Browser test in real Chromium: the live preview on the stream page. ffmpeg publishes to the
// built-in relay; the owner's page plays GET /api/stream/preview/{uid} (HTTP-FLV proxied from
// the relay) with mpegts.js, and the <video>'s currentTime advances. Another user gets 404,
// no session 401; the preview ends when the encoder goes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startServer, freePort, tmpDir, waitFor, sleep, assertNoSecretsInLog } from '../lib/harness.mjs';
import { newUser, waitState } from '../lib/livelib.mjs';
import { startRelay, publish, killAll, TOKEN, WEBHOOK_SECRET } from '../media/relay_lib.mjs';

// GET the preview as u; reads its first 64 KiB; returns {res, got, reader}
async function openPreview(srv, u, uid, signal) {
  const res = await fetch(`${srv.url}/api/stream/preview/${uid}`, {
    headers: { authorization: `Bearer ${u.token}` }, signal,
  });
  assert.equal(res.status, 200, res.status === 200 ? '' : await res.text());
  const reader = res.body.getReader();
  let got = Buffer.alloc(0);
  while (got.length < 64 * 1024) {
    const { value, done } = await reader.read();
    if (done) break;
    got = Buffer.concat([got, Buffer.from(value)]);
  }
  return { res, got, reader };
}

// Reads until the stream ends; resolves true, or false after ms.
async function endsWithin(reader, ms) {
  let late = false;
  const t = setTimeout(() => { late = true; reader.cancel().catch(() => {}); }, ms);
  try {
    for (;;) { const { done } = await reader.read(); if (done) return !late; }
  } catch { return !late; } finally { clearTimeout(t); }
}

let browser;
const servers = [];
after(async () => { // cleanup after a failure only: the test asserts the clean exits
  if (browser) await browser.close();
  killAll();
  for (const s of servers) if (s.exitCode === null && !s.exitSignal) await s.kill9();
});

test('preview: the owner watches the input, another user cannot', { timeout: 120000 }, async () => {
  const cpPort = await freePort();
  const rtmpPort = await freePort();
  const relay = await startRelay({
    env: { RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}` },
  });
  const srv = await startServer({
    env: {
      HTTP_LISTEN: `127.0.0.1:${cpPort}`, PUBLIC_URL: `http://127.0.0.1:${cpPort}`,
      MEDIA_BACKEND: 'local', RELAY_API_TOKEN: TOKEN, RELAY_API_LISTEN: `127.0.0.1:${relay.port}`,
      RELAY_RTMP_LISTEN: `127.0.0.1:${rtmpPort}`, CLOUDFLARE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      CLOUDFLARE_INPUT_POLL_INTERVAL: '1000', LOG_LEVEL: 'info',
    },
    dataDir: tmpDir('sp-preview-'),
  });
  servers.push(relay, srv);
  const ctx = { srv };
  const u = await newUser(ctx);
  const other = await newUser(ctx);
  const st = await waitFor(async () => { const s = await u.stream(); return s?.input?.rtmp_url && s; }, { what: 'live input' });
  const uid = st.input.input_uid;
  const base = st.input.rtmp_url.endsWith('/') ? st.input.rtmp_url : st.input.rtmp_url + '/';

  // not connected yet: 404 even for the owner
  assert.equal((await u.api('GET', `/api/stream/preview/${uid}`)).status, 404);
  const pub = publish(base + st.input.stream_key, 60);
  await waitState(u, 'ready', { timeout: 15000 });
  await waitFor(async () => (await u.stream()).input.health?.audio, { timeout: 15000, what: 'media flowing' });

  // another user: 404 (the input is not theirs); no session: 401
  const o = await other.api('GET', `/api/stream/preview/${uid}`);
  assert.equal(o.status, 404, o.text);
  assert.equal(o.json.error.code, 'not_found');
  assert.equal((await fetch(`${srv.url}/api/stream/preview/${uid}`)).status, 401);

  // the owner gets an FLV stream (read its start, then leave)
  const ac = new AbortController();
  const { res, got } = await openPreview(srv, u, uid, ac.signal);
  assert.equal(res.headers.get('content-type'), 'video/x-flv');
  ac.abort();
  assert.equal(got.subarray(0, 3).toString(), 'FLV');
  assert.equal(got[4] & 5, 5, 'audio and video flags');
  assert.equal(got[13], 18, 'metadata first');

  // the dashboard plays it
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
  });
  const bctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  await bctx.addCookies(u.cookie.split('; ').map((kv) => {
    const i = kv.indexOf('=');
    return { name: kv.slice(0, i), value: kv.slice(i + 1), url: srv.url };
  }));
  const page = await bctx.newPage();
  const errors = [];
  const consoleLog = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => consoleLog.push(`${m.type()}: ${m.text()}`));
  await page.goto(srv.url + '/dashboard');
  await page.waitForFunction(() => document.querySelector('#preview-toggle') && !document.querySelector('#preview-toggle').disabled,
    null, { timeout: 15000 });
  // the health card is there too, with the measured size
  await page.waitForFunction(() => document.querySelector('#input-health [data-k="resolution"]')?.textContent === '640×360',
    null, { timeout: 20000 });
  await page.click('#preview-toggle');
  const video = page.locator('#preview-video');
  assert.equal(await video.evaluate((v) => v.muted), true, 'muted by default');
  await page.waitForFunction(() => document.querySelector('#preview-video').currentTime > 1, null, { timeout: 20000 })
    .catch(async (e) => {
      const diag = await page.evaluate(() => {
        const v = document.querySelector('#preview-video');
        return { msg: document.querySelector('#preview-msg').textContent, readyState: v.readyState,
          t: v.currentTime, paused: v.paused, err: v.error && v.error.message, buffered: v.buffered.length };
      });
      throw new Error(`${e.message} ${JSON.stringify(diag)}\n${consoleLog.slice(-30).join('\n')}`);
    });
  const t1 = await video.evaluate((v) => v.currentTime);
  await sleep(2500);
  const t2 = await video.evaluate((v) => v.currentTime);
  assert.ok(t2 > t1 + 1, `currentTime advances: ${t1} -> ${t2}`);
  assert.ok(await video.evaluate((v) => v.videoWidth) === 640);
  // one viewer on the relay while the page plays
  assert.match(relay.logText(), /msg="preview viewer" input=[0-9a-f]+ viewers=1/);

  // the encoder goes: the page stops the preview, a direct viewer's stream ends
  const second = await openPreview(srv, u, uid);
  pub.kill();
  assert.equal(await endsWithin(second.reader, 15000), true, 'the preview ends with the publisher');
  await page.waitForFunction(() => document.querySelector('#preview-toggle').disabled, null, { timeout: 20000 });
  assert.deepEqual(errors, []);
  await bctx.close();
  await browser.close();
  browser = null;

  // the control plane stops while a preview streams: it closes it and exits clean
  const pub2 = publish(base + st.input.stream_key, 60);
  await waitFor(async () => (await u.stream()).input.health?.audio, { timeout: 20000, what: 'media again' });
  const third = await openPreview(srv, u, uid);
  assert.equal(third.got.subarray(0, 3).toString(), 'FLV');
  const ended = endsWithin(third.reader, 15000);
  await srv.stopClean();
  assert.equal(await ended, true, 'the proxied preview ends when the control plane stops');
  pub2.kill();
  await relay.stopClean();
  assertNoSecretsInLog([...srv.logs, ...relay.logs], [st.input.stream_key, TOKEN, WEBHOOK_SECRET]);
});
