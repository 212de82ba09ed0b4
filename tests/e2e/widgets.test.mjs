// Browser tests in real Chromium (1920x1080) for issue 11's front end, against the real server
// (and the fake Cloudflare and fake Twitch for the viewer chart):
// - the AlertBox page added as OBS would (the URL from GET /api/widgets): each test alert type
//   appears with its configured text (read back from screenshot pixels in the configured colour),
//   then disappears, and the page background stays transparent (alpha 0) throughout;
// - the chat overlay: newest at the bottom, in order, lines fade out after their lifetime,
//   !commands and bots hidden, Twitch-safe mode shows only Twitch messages;
// - /dashboard/widgets: the live preview follows unsaved edits, a 422 shows its field, a saved
//   setting reaches the open OBS page within a second, test alerts through the real queue,
//   pause/resume/skip, fake data only in the preview, rotating the URL cuts the old page off;
// - the viewer count and chart on the stream page (live samples from the fake Twitch), the
//   stream summary and the history chart from GET /api/streams/{id}.
// Screenshots in tests/out/widgets-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { chromium } from 'playwright-core';
import { ROOT } from '../lib/harness.mjs';
import { bootLive, newUser, inputUid, setInput, waitState, waitFor, sleep, testCleanExit, dashSocket } from '../lib/livelib.mjs';
import { startFakeTwitch } from '../fakes/twitch.mjs';

const OUT = path.join(ROOT, 'tests/out');
const TW_USER = '141981764'; // the fake's default broadcaster (TwitchDev)
const TYPES = ['follow', 'subscription', 'gift_subscription', 'cheer', 'raid', 'super_chat', 'member', 'donation'];
const EMOTE = '<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><circle cx="14" cy="14" r="12" fill="gold"/></svg>';
const CHROME_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--autoplay-policy=no-user-gesture-required'];

let ctx, tw, browser, u;

// ---- helpers --------------------------------------------------------------------------------

// Decodes a PNG (8-bit RGB or RGBA, not interlaced: what Chromium writes) into RGBA pixels.
function decodePng(buf) {
  assert.equal(buf.toString('latin1', 1, 4), 'PNG');
  let off = 8;
  let width = 0, height = 0, ctype = 0;
  const idat = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      assert.equal(data[8], 8, 'bit depth 8');
      ctype = data[9];
      assert.equal(data[12], 0, 'not interlaced');
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const bpp = ctype === 6 ? 4 : ctype === 2 ? 3 : 0;
  assert.ok(bpp, `colour type ${ctype}`);
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const px = Buffer.alloc(width * height * 4);
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? line[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      let v = line[i];
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) { const p = a + b - c; const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c); v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
      line[i] = v & 255;
    }
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      px[o] = line[x * bpp]; px[o + 1] = line[x * bpp + 1]; px[o + 2] = line[x * bpp + 2];
      px[o + 3] = bpp === 4 ? line[x * bpp + 3] : 255;
    }
    prev = line;
  }
  return { width, height, px };
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// A solid-colour RGBA PNG of w x h (for the upload of an alert image).
function solidPng(w, h, [r, g, b]) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 6; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  const row = Buffer.alloc(1 + w * 4);
  for (let x = 0; x < w; x++) row.set([r, g, b, 255], 1 + x * 4);
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// A short silent 8 kHz mono WAV (for the upload of an alert sound).
function silentWav(samples = 800) {
  const b = Buffer.alloc(44 + samples);
  b.write('RIFF', 0, 'latin1'); b.writeUInt32LE(36 + samples, 4); b.write('WAVE', 8, 'latin1');
  b.write('fmt ', 12, 'latin1'); b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(8000, 24); b.writeUInt32LE(8000, 28); b.writeUInt16LE(1, 32); b.writeUInt16LE(8, 34);
  b.write('data', 36, 'latin1'); b.writeUInt32LE(samples, 40); b.fill(128, 44);
  return b;
}

// Pixel statistics of a transparent-background screenshot: how many are not fully transparent,
// how many are (nearly) the given colour and opaque.
async function shot(page, name, color) {
  const buf = await page.screenshot({ omitBackground: true, path: name ? path.join(OUT, `widgets-${name}.png`) : undefined });
  const img = decodePng(buf);
  let visible = 0, colored = 0;
  const [r, g, b] = color ? [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16)) : [0, 0, 0];
  for (let i = 0; i < img.px.length; i += 4) {
    if (img.px[i + 3] === 0) continue;
    visible++;
    if (color && img.px[i + 3] > 240 && Math.abs(img.px[i] - r) < 24 && Math.abs(img.px[i + 1] - g) < 24 && Math.abs(img.px[i + 2] - b) < 24) colored++;
  }
  const corner = (x, y) => img.px[(y * img.width + x) * 4 + 3];
  return { ...img, visible, colored, corners: [corner(0, 0), corner(img.width - 1, 0), corner(0, img.height - 1), corner(img.width - 1, img.height - 1)] };
}

// A browser context logged in as user v (dashboard pages).
async function dashContext(v, viewport = { width: 1400, height: 1000 }) {
  const c = await browser.newContext({ viewport });
  await c.addCookies(v.cookie.split('; ').map((kv) => {
    const i = kv.indexOf('=');
    return { name: kv.slice(0, i), value: kv.slice(i + 1), url: ctx.srv.url };
  }));
  // the emote CDN of the fake's chat messages (the browser has no Internet)
  await c.route('https://static-cdn.jtvnw.net/**', (r) => r.fulfill({ status: 200, contentType: 'image/svg+xml', body: EMOTE }));
  return c;
}

// A page that records console errors and page errors.
async function watchedPage(c) {
  const p = await c.newPage();
  p.errors = [];
  p.on('pageerror', (e) => p.errors.push(String(e)));
  p.on('console', (m) => { if (m.type() === 'error') p.errors.push(m.text()); });
  return p;
}

// An OBS browser source: a fresh context without cookies at 1920x1080; every request it makes
// is recorded (nothing may leave the server).
async function obsPage(url) {
  const c = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  await c.route('https://static-cdn.jtvnw.net/**', (r) => r.fulfill({ status: 200, contentType: 'image/svg+xml', body: EMOTE }));
  const p = await watchedPage(c);
  p.requests = [];
  p.on('request', (r) => p.requests.push(r.url()));
  await p.goto(url);
  await p.waitForFunction(() => document.body.dataset.socket === 'open', null, { timeout: 10000 });
  return p;
}

async function widgetUrls(v) {
  const r = await v.api('GET', '/api/widgets');
  assert.equal(r.status, 200, r.text);
  const rows = Array.isArray(r.json) ? r.json : r.json.widgets;
  return Object.fromEntries(rows.map((w) => [w.type, w.url]));
}

async function putConfig(v, type, body) {
  const r = await v.api('PUT', `/api/widgets/${type}/config`, body);
  assert.equal(r.status, 200, r.text);
  return r.json.config;
}

// The OAuth connect flow through the fake (auto-approve), as the user's browser.
async function connectTwitch(v) {
  tw.setAuthorize('approve', TW_USER);
  const base = ctx.srv.url;
  const jar = new Map(v.cookie.split('; ').map((c) => c.split('=')));
  const cookie = () => [...jar].map(([k, val]) => `${k}=${val}`).join('; ');
  const keep = (r) => { for (const c of r.headers.getSetCookie()) { const [kv] = c.split(';'); const i = kv.indexOf('='); jar.set(kv.slice(0, i), kv.slice(i + 1)); } };
  let r = await fetch(`${base}/auth/twitch/connect`, { headers: { cookie: cookie() }, redirect: 'manual' });
  assert.equal(r.status, 302);
  keep(r);
  r = await fetch(r.headers.get('location'), { redirect: 'manual' });
  r = await fetch(r.headers.get('location'), { headers: { cookie: cookie() }, redirect: 'manual' });
  assert.equal(r.status, 302);
  assert.match(r.headers.get('location'), /connected=twitch/);
}

// ---- setup ----------------------------------------------------------------------------------

before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  tw = await startFakeTwitch({ keepaliveSeconds: 10 });
  ctx = await bootLive({
    env: {
      STREAM_DISCONNECT_TIMEOUT: '20000',
      PLATFORM_VIEWERS_INTERVAL: '300',
      TWITCH_CLIENT_ID: tw.clientId,
      TWITCH_CLIENT_SECRET: tw.clientSecret,
      TWITCH_AUTH_URL: tw.authUrl,
      TWITCH_API_URL: tw.apiUrl,
      TWITCH_EVENTSUB_WS_URL: tw.wsUrl,
      TWITCH_INGEST_URL: 'rtmp://127.0.0.1:1935/app',
    },
  });
  ctx.secrets.add(tw.clientSecret);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROME_ARGS });
  u = await newUser(ctx);
});

after(async () => { // cleanup only: the last test asserts the clean exit
  if (browser) await browser.close();
  if (ctx) await ctx.stop();
  if (tw) await tw.stop();
});

// ---- AlertBox -------------------------------------------------------------------------------

const GREEN = '#00ff00';

test('AlertBox as an OBS browser source: every test alert type shows its configured text, then goes; transparent throughout', async () => {
  const urls = await widgetUrls(u);
  assert.match(urls.alertbox, /\/widgets\/alertbox\?token=/);
  const types = {};
  for (const t of TYPES) {
    types[t] = { template: `{name} ${t.toUpperCase()} {count} <b>`, duration_ms: 3000, animation_in: 'fade', animation_out: 'fade' };
  }
  await putConfig(u, 'alertbox', { types, text_color: GREEN, accent_color: GREEN, font_size: 72, gap_ms: 0, show_message: false });

  const page = await obsPage(urls.alertbox);
  const idle = await shot(page, 'alertbox-idle');
  assert.equal(idle.width, 1920);
  assert.equal(idle.height, 1080);
  assert.equal(idle.visible, 0, 'nothing drawn while idle: a fully transparent page');

  for (const t of TYPES) {
    const r = await u.api('POST', '/api/widgets/alertbox/test', { type: t });
    assert.equal(r.status, 200, `${t}: ${r.text}`);
    const alert = page.locator(`#stage .alert[data-type="${t}"]`);
    await alert.waitFor({ timeout: 5000 });
    const text = await alert.locator('.alert-text').textContent();
    assert.ok(text.includes(` ${t.toUpperCase()} `), `${t}: "${text}"`);
    assert.ok(text.endsWith(' <b>'), 'markup in a template stays text');
    assert.equal(text, await page.evaluate(() => window.spWidget.current.payload.text), 'rendered as the server renders it');
    assert.equal(await alert.locator('b').count(), 0);
    await sleep(700); // the in-animation (600 ms) is over
    const on = await shot(page, t === 'follow' ? 'alertbox-follow' : null, GREEN);
    assert.ok(on.colored > 500, `${t}: the text is drawn in the configured colour (${on.colored} px)`);
    assert.deepEqual(on.corners, [0, 0, 0, 0], `${t}: the background stays transparent`);
    assert.ok(on.visible < on.width * on.height * 0.2, `${t}: only the alert is drawn (${on.visible} px)`);
    await page.waitForFunction(() => !document.querySelector('#stage .alert'), null, { timeout: 8000 });
    const off = await shot(page, null, GREEN);
    assert.equal(off.visible, 0, `${t}: gone, nothing left on the page`);
  }
  assert.deepEqual(page.errors, []);
  const foreign = page.requests.filter((r) => !r.startsWith(ctx.srv.url) && !r.startsWith(`ws://127.0.0.1:${ctx.port}`));
  assert.deepEqual(foreign, [], 'the page loads nothing from outside the server');
  await page.context().close();
});

test('AlertBox: the viewer message is masked on the page too; a dropped socket resumes without losing an alert', async () => {
  const urls = await widgetUrls(u);
  await putConfig(u, 'alertbox', { show_message: true, filter: { links: true, words: ['darn'] },
    types: { donation: { template: '{name} donated {amount} {currency}!' } } });
  const page = await obsPage(urls.alertbox);
  // a show frame as the queue publishes it (test-mode socket publish), its message unfiltered
  const sock = await dashSocket(ctx, u);
  sock.send({
    type: 'publish', topic: `alertbox:${u.id}`, event: 'show',
    payload: { key: 900001, alert: { id: 'm1', type: 'donation', platform: 'streampai', name: 'Mask<b>er', amount: 4.5, currency: 'EUR', message: 'see https://evil.example/x now, DARN it', ts: Date.now() },
      names: ['Mask<b>er'], count: 1, test: true, replay: false, duration_ms: 4000 },
  });
  const shown = page.locator('#stage .alert[data-key="900001"]');
  await shown.waitFor({ timeout: 5000 });
  assert.equal(await shown.locator('.alert-message').textContent(), 'see *** now, *** it');
  assert.equal(await shown.locator('.var[data-var="name"]').textContent(), 'Mask<b>er');
  assert.equal(await shown.locator('.var[data-var="amount"]').textContent(), '4.50');
  assert.equal(await shown.locator('b').count(), 0);
  await page.waitForFunction(() => !document.querySelector('#stage .alert'), null, { timeout: 8000 });
  await sock.close();

  // the socket drops; an alert is queued meanwhile; the page reconnects and resumes by seq
  await page.evaluate(() => window.spWidget.socket.ws.close());
  await page.waitForFunction(() => document.body.dataset.socket === 'closed');
  const r = await u.api('POST', '/api/widgets/alertbox/test', { type: 'cheer' });
  assert.equal(r.status, 200, r.text);
  await page.locator('#stage .alert[data-type="cheer"]').waitFor({ timeout: 10000 });
  assert.equal(await page.evaluate(() => document.body.dataset.socket), 'open');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

// ---- chat overlay ---------------------------------------------------------------------------

test('chat overlay: newest at the bottom, fades out, hides !commands and bots; Twitch-safe shows only Twitch', async () => {
  const urls = await widgetUrls(u);
  await putConfig(u, 'chat', { lifetime_ms: 8000, max_messages: 10, hide_commands: true, bots: ['nightbot'], twitch_safe: false, platforms: [], font_size: 40 });
  const page = await obsPage(urls.chat);
  const send = async (platform, name, text) => {
    const r = await u.api('POST', '/api/widgets/chat/test', { platform, name, text });
    assert.equal(r.status, 200, r.text);
    return r.json.message;
  };
  await send('twitch', 'Alice', 'first <i>one</i>');
  await send('youtube', 'Bob', 'second');
  await send('twitch', 'Carol', '!uptime');
  await send('kick', 'Nightbot', 'I am a bot');
  await send('twitch', 'Dave', 'third');
  await page.locator('#chat li', { hasText: 'third' }).waitFor();
  await sleep(200);
  const lines = () => page.locator('#chat li').evaluateAll((ls) => ls.map((l) => l.querySelector('.text').textContent));
  assert.deepEqual(await lines(), ['first <i>one</i>', 'second', 'third'], 'in order; the command and the bot hidden; markup stays text');
  const ys = await page.locator('#chat li').evaluateAll((ls) => ls.map((l) => l.getBoundingClientRect().bottom));
  assert.ok(ys[0] < ys[1] && ys[1] < ys[2], 'newest at the bottom');
  assert.ok(ys[2] > 1000 && ys[2] <= 1080, `the last line sits at the bottom of the 1080 px page (${ys[2]})`);
  assert.equal(await page.locator('#chat li[data-platform="youtube"] img.pf[src="/widgets/icons/youtube.svg"]').count(), 1, 'platform icon (local SVG)');
  // emotes as images (only the http(s) URL the server sent), badges, the author's colour
  const pubSock = await dashSocket(ctx, u);
  pubSock.send({ type: 'publish', topic: `chat:${u.id}`, event: 'message', payload: {
    id: 'emote-1', platform: 'twitch', ts: Date.now(), text: 'hi Kappa nope',
    author: { id: 'e1', name: 'emoter', display_name: 'Emo<ter>', color: '#FF00FF', badges: [{ set_id: 'moderator', id: '1' }, { set_id: 'subscriber', id: '6' }] },
    fragments: [{ type: 'text', text: 'hi ' }, { type: 'emote', text: 'Kappa', emote_url: 'https://static-cdn.jtvnw.net/emoticons/v2/25/default/dark/1.0' },
      { type: 'emote', text: ' nope', emote_url: 'javascript:alert(1)' }],
  } });
  const eline = page.locator('#chat li[data-id="emote-1"]');
  await eline.waitFor();
  assert.equal(await eline.locator('img.emote').count(), 1);
  assert.equal(await eline.locator('img.emote').getAttribute('alt'), 'Kappa');
  await page.waitForFunction(() => document.querySelector('#chat li[data-id="emote-1"] img.emote').naturalWidth > 0);
  assert.equal(await eline.locator('.text').textContent(), 'hi  nope');
  assert.equal(await eline.locator('.author').textContent(), 'Emo<ter>');
  assert.equal(await eline.locator('.author').evaluate((n) => getComputedStyle(n).color), 'rgb(255, 0, 255)');
  assert.deepEqual(await eline.locator('.badge').evaluateAll((bs) => bs.map((b) => b.dataset.badge)), ['moderator', 'subscriber']);
  await pubSock.close();
  const s = await shot(page, 'chat');
  assert.deepEqual(s.corners, [0, 0, 0, 0], 'transparent background');
  assert.ok(s.visible > 1000, 'lines drawn');
  // the lifetime (8 s): all still there, then fading, then gone (1 s fade)
  const sent = Date.now();
  assert.equal(await page.locator('#chat li').count(), 4);
  assert.equal(await page.locator('#chat li.fading').count(), 0);
  await page.locator('#chat li.fading').first().waitFor({ timeout: 10000 });
  assert.ok(Date.now() - sent > 1000, 'not faded at once');
  await page.waitForFunction(() => document.querySelectorAll('#chat li').length === 0, null, { timeout: 10000 });
  assert.equal((await shot(page)).visible, 0, 'all faded: nothing left');

  // Twitch-safe: a saved config reaches the page; only Twitch messages from then on
  await putConfig(u, 'chat', { twitch_safe: true, lifetime_ms: 0 });
  await page.waitForFunction(() => window.spWidget.config.twitch_safe === true, null, { timeout: 2000 });
  await send('youtube', 'Yuki', 'from youtube');
  await send('kick', 'Kim', 'from kick');
  const tom = await send('twitch', 'Tom', 'from twitch');
  await page.locator('#chat li', { hasText: 'from twitch' }).waitFor();
  await sleep(300);
  assert.deepEqual(await lines(), ['from twitch']);
  assert.deepEqual(await page.locator('#chat li').evaluateAll((ls) => ls.map((l) => l.dataset.platform)), ['twitch']);
  await shot(page, 'chat-twitch-safe');
  // `deleted` removes the line (published as the platforms do, with the test-mode socket publish)
  const sock = await dashSocket(ctx, u);
  sock.send({ type: 'publish', topic: `chat:${u.id}`, event: 'deleted', payload: { id: tom.id, platform: 'twitch', ts: Date.now() } });
  await page.waitForFunction(() => document.querySelectorAll('#chat li').length === 0, null, { timeout: 3000 });
  await sock.close();

  // the platform filter: only the chosen platforms
  await putConfig(u, 'chat', { twitch_safe: false, platforms: ['youtube', 'kick'] });
  await page.waitForFunction(() => window.spWidget.config.twitch_safe === false, null, { timeout: 2000 });
  await send('twitch', 'Tina', 'tw filtered');
  await send('kick', 'Kai', 'kick shown');
  await send('youtube', 'Yan', 'yt shown');
  await page.locator('#chat li', { hasText: 'yt shown' }).waitFor();
  await sleep(300);
  // the lines Twitch-safe hid come back (a config applies to what is on screen; they never
  // fade: lifetime 0); the faded and the deleted ones do not
  assert.deepEqual(await lines(), ['from youtube', 'from kick', 'kick shown', 'yt shown']);
  assert.deepEqual(page.errors, []);
  await putConfig(u, 'chat', { twitch_safe: false, platforms: [], lifetime_ms: 30000 });
  await page.context().close();
});

// ---- dashboard settings ---------------------------------------------------------------------

test('dashboard /dashboard/widgets: live preview, field errors, a saved setting reaches the OBS page within a second, test alerts and queue controls, rotation', async () => {
  const v = await newUser(ctx);
  const urls = await widgetUrls(v);
  await putConfig(v, 'alertbox', { gap_ms: 0 });
  const obs = await obsPage(urls.alertbox);
  const dctx = await dashContext(v);
  const dash = await watchedPage(dctx);
  await dash.goto(ctx.srv.url + '/dashboard/widgets');
  await dash.locator('#alertbox-url').waitFor();
  assert.equal(await dash.locator('#alertbox-url').inputValue(), urls.alertbox);
  assert.equal(await dash.locator('#chat-url').inputValue(), urls.chat);
  await dash.waitForFunction(() => document.querySelector('#alertbox-preview').dataset.ready === '1', null, { timeout: 10000 });
  await dash.waitForFunction(() => document.body.dataset.socket === 'open');
  const frame = dash.frameLocator('#alertbox-preview');
  const previewFont = () => dash.frame({ url: /\/widgets\/alertbox\?/ }).evaluate(() => getComputedStyle(document.getElementById('stage')).fontSize);

  // every config field has a control
  for (const f of ['font', 'font_size', 'text_color', 'accent_color', 'layout', 'gap_ms', 'show_message', 'filter.links', 'filter.words',
    'types.follow.template', 'types.follow.duration_ms', 'types.follow.animation_in', 'types.follow.animation_out', 'types.follow.image_url',
    'types.follow.sound_url', 'types.follow.volume', 'types.follow.enabled', 'types.cheer.min_amount', 'priorities.donation']) {
    assert.equal(await dash.locator(`#alertbox-form [name="${f}"]`).count(), 1, `alertbox field ${f}`);
  }
  for (const f of ['max_messages', 'lifetime_ms', 'twitch_safe', 'hide_commands', 'bots', 'filter.links', 'filter.words', 'font', 'font_size',
    'show_badges', 'show_platform_icons', 'text_color', 'background']) {
    assert.equal(await dash.locator(`#chat-form [name="${f}"]`).count(), 1, `chat field ${f}`);
  }
  assert.equal(await dash.locator('#chat-form [data-platform-check="platforms"]').count(), 4);

  // the preview follows the unsaved form
  await dash.fill('#alertbox-font_size', '120');
  await dash.waitForFunction(() => true);
  await waitFor(async () => (await previewFont()) === '120px', { what: 'preview font size', timeout: 3000 });
  assert.notEqual(await obs.evaluate(() => getComputedStyle(document.getElementById('stage')).fontSize), '120px', 'not saved yet: OBS unchanged');

  // fake data plays in the preview only
  await dash.click('#alertbox-fake');
  await frame.locator('#stage .alert[data-type="follow"]').waitFor({ timeout: 3000 });
  await dash.click('#alertbox-fake');
  await frame.locator('#stage .alert[data-type="subscription"]').waitFor({ timeout: 3000 });
  assert.equal(await frame.locator('#stage .alert').count(), 1, 'one at a time');
  assert.equal(await obs.locator('#stage .alert').count(), 0, 'fake alerts stay in the preview');
  await frame.locator('#stage .alert').waitFor({ state: 'detached', timeout: 8000 });

  // a bad value: 422 with its field shown next to it
  await dash.click('#alertbox-form details[data-type="follow"] summary');
  await dash.fill('#alertbox-types-follow-duration_ms', '50');
  await dash.click('#alertbox-form button[type="submit"]');
  const err = dash.locator('#alertbox-form [data-error-for="types.follow.duration_ms"]');
  await dash.waitForFunction(() => document.querySelector('#alertbox-form [data-error-for="types.follow.duration_ms"]').textContent !== '');
  assert.equal(await dash.locator('#alertbox-types-follow-duration_ms').getAttribute('aria-invalid'), 'true');
  assert.ok((await err.textContent()).length > 0);
  await dash.fill('#alertbox-types-follow-duration_ms', '3000');

  // saved: the OBS page follows within a second, no reload
  const loadsBefore = await obs.evaluate(() => performance.getEntriesByType('navigation').length);
  await dash.fill('#alertbox-text_color', '#00ff00');
  const t0 = Date.now();
  await dash.click('#alertbox-form button[type="submit"]');
  await obs.waitForFunction(() => getComputedStyle(document.getElementById('stage')).fontSize === '120px', null, { timeout: 1000 });
  const took = Date.now() - t0;
  assert.ok(took < 1000, `reached the OBS page in ${took} ms`);
  await dash.locator('#alertbox-saved').filter({ hasText: 'Saved' }).waitFor();
  assert.equal(await err.textContent(), '', 'the field error is cleared');
  assert.equal(await obs.evaluate(() => getComputedStyle(document.getElementById('stage')).color), 'rgb(0, 255, 0)');
  assert.equal(await obs.evaluate(() => performance.getEntriesByType('navigation').length), loadsBefore);
  const saved = (await v.api('GET', '/api/widgets/alertbox/config')).json.config;
  assert.equal(saved.font_size, 120);
  assert.equal(saved.types.follow.duration_ms, 3000);

  // an image and a sound uploaded from the form, saved: the OBS page shows the image above the
  // text and plays the sound at the configured volume
  const follow = dash.locator('#alertbox-form details[data-type="follow"]');
  await follow.locator('[data-field="types.follow.image_url"] input[type="file"]').setInputFiles(
    { name: 'red.png', mimeType: 'image/png', buffer: solidPng(160, 120, [255, 0, 0]) });
  await dash.waitForFunction(() => document.querySelector('#alertbox-types-follow-image_url').value.startsWith('/uploads/'));
  await follow.locator('[data-field="types.follow.sound_url"] input[type="file"]').setInputFiles(
    { name: 'ding.wav', mimeType: 'audio/wav', buffer: silentWav() });
  await dash.waitForFunction(() => document.querySelector('#alertbox-types-follow-sound_url').value.startsWith('/uploads/'));
  await dash.fill('#alertbox-types-follow-volume', '30');
  // a file of a refused type: the server's answer under the field, the URL unchanged
  const imgUrl = await dash.locator('#alertbox-types-follow-image_url').inputValue();
  await follow.locator('[data-field="types.follow.image_url"] input[type="file"]').setInputFiles(
    { name: 'evil.png', mimeType: 'image/png', buffer: Buffer.from('<script>alert(1)</script>') });
  await dash.locator('[data-error-for="types.follow.image_url"]').filter({ hasText: /not accepted/ }).waitFor();
  assert.equal(await dash.locator('#alertbox-types-follow-image_url').inputValue(), imgUrl);
  await dash.click('#alertbox-form button[type="submit"]');
  await dash.locator('#alertbox-saved').filter({ hasText: 'Saved' }).waitFor();
  assert.equal((await v.api('GET', '/api/widgets/alertbox/config')).json.config.types.follow.image_url, imgUrl);
  await obs.waitForFunction((u2) => window.spWidget.config.types.follow.image_url === u2, imgUrl, { timeout: 2000 });
  await dash.click('button[data-test-type="follow"]');
  const img = obs.locator('#stage .alert[data-type="follow"] img.alert-image');
  await img.waitFor({ timeout: 5000 });
  assert.equal(await img.getAttribute('src'), imgUrl);
  await obs.waitForFunction(() => document.querySelector('#stage img.alert-image')?.naturalWidth === 160);
  const ib = await img.boundingBox();
  const tb = await obs.locator('#stage .alert[data-type="follow"] .alert-text').boundingBox();
  assert.ok(ib.y + ib.height <= tb.y + 1, 'layout above: the image above the text');
  assert.equal(await obs.evaluate(() => window.spWidget.current.audio && window.spWidget.current.audio.volume), 0.3);
  await sleep(700);
  const red = await shot(obs, 'alertbox-image', '#ff0000');
  assert.ok(red.colored >= 160 * 120 * 0.9, `the image is drawn (${red.colored} red px)`);
  await obs.waitForFunction(() => !document.querySelector('#stage .alert'), null, { timeout: 8000 });

  // a test alert from the dashboard goes through the real queue: OBS and the preview show it
  await dash.click('button[data-test-type="raid"]');
  await obs.locator('#stage .alert[data-type="raid"]').waitFor({ timeout: 5000 });
  await frame.locator('#stage .alert[data-type="raid"]').waitFor({ timeout: 5000 });
  // skip: the OBS page hides it at once
  await dash.click('#queue-skip');
  await obs.waitForFunction(() => !document.querySelector('#stage .alert[data-type="raid"]'), null, { timeout: 2000 });

  // pause: a test alert waits; resume: it shows
  await dash.click('#queue-pause');
  await dash.waitForFunction(() => document.querySelector('#queue-state').dataset.paused === '1');
  await dash.click('button[data-test-type="donation"]');
  await dash.waitForFunction(() => /1 waiting/.test(document.querySelector('#queue-state').textContent), null, { timeout: 3000 });
  await sleep(500);
  assert.equal(await obs.locator('#stage .alert[data-type="donation"]').count(), 0, 'paused: nothing shows');
  await dash.click('#queue-resume');
  await obs.locator('#stage .alert[data-type="donation"]').waitFor({ timeout: 3000 });
  await dash.screenshot({ path: path.join(OUT, 'widgets-dashboard.png'), fullPage: true });

  // send test chat: the chat preview shows it
  await dash.fill('#test-chat-text', 'hello from the dashboard');
  await dash.click('#test-chat-form button[type="submit"]');
  await dash.frameLocator('#chat-preview').locator('#chat li', { hasText: 'hello from the dashboard' }).waitFor({ timeout: 5000 });

  // rotate (two clicks): a new URL, the open OBS page is cut off, the preview uses the new one
  await dash.click('#alertbox-rotate');
  await dash.click('#alertbox-rotate');
  await dash.waitForFunction((old) => document.querySelector('#alertbox-url').value !== old, urls.alertbox);
  const fresh = await dash.locator('#alertbox-url').inputValue();
  assert.equal((await widgetUrls(v)).alertbox, fresh);
  await obs.waitForFunction(() => document.body.dataset.socket !== 'open', null, { timeout: 5000 });
  assert.equal((await fetch(urls.alertbox)).status, 404, 'the old URL is refused');
  await dash.waitForFunction(() => document.querySelector('#alertbox-preview').dataset.ready === '1');

  // the browser logs the deliberate 422 (bad duration) and 415 (bad upload) as failed resources,
  // and a 409 when the raid had already ended by itself before Skip (a slow machine): nothing else
  assert.deepEqual(dash.errors.filter((e) => !/status of (422|415|409)/.test(e)), []);
  assert.deepEqual(obs.errors.filter((e) => !/WebSocket|401|404/.test(e)), []);
  await obs.context().close();
  await dctx.close();
});

// ---- viewers --------------------------------------------------------------------------------

test('stream page: live viewer count and chart, the summary after the end, the chart of a past stream', async () => {
  const v = await newUser(ctx);
  await connectTwitch(v);
  const dest = (await v.api('GET', '/api/destinations')).json.destinations.find((d) => d.platform === 'twitch');
  assert.ok(dest, 'Twitch is a destination');
  const uid = await inputUid(v);
  await setInput(ctx, uid, 'connected');
  await waitState(v, 'ready');
  await v.api('PUT', '/api/stream/metadata', { title: 'Chart stream' });
  const dctx = await dashContext(v, { width: 1400, height: 1200 });
  const page = await watchedPage(dctx);
  await page.goto(ctx.srv.url + '/dashboard');
  await page.locator('#viewers-card').waitFor();
  await page.waitForFunction(() => document.querySelector('#conn-status')?.dataset.state === 'open');

  tw.setLive(TW_USER, { viewer_count: 7 });
  const st = await v.api('POST', '/api/stream/start', { destinations: [dest.id] });
  assert.equal(st.status, 200, st.text);
  const streamId = st.json.stream_id;
  await page.waitForFunction(() => document.querySelector('#viewers-total').textContent === '7', null, { timeout: 15000 });
  tw.setViewers(TW_USER, 13);
  await page.waitForFunction(() => document.querySelector('#viewers-total').textContent === '13', null, { timeout: 5000 });
  assert.equal(await page.locator('#viewers-platforms [data-platform="twitch"]').textContent(), 'Twitch: 13');
  const inked = (sel) => page.locator(sel).evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n++;
    return n;
  });
  await page.waitForFunction(() => window.spCharts.series.ts.length >= 3, null, { timeout: 10000 });
  const liveInk = await inked('#viewer-chart canvas');
  assert.ok(liveInk > 500, `the live chart draws (${liveInk} px)`);

  // chat and a follow while live, for the summary
  await tw.waitForSubscription((s) => s.type === 'channel.chat.message' && s.status === 'enabled', 20000);
  await tw.waitForSubscription((s) => s.type === 'channel.follow' && s.status === 'enabled', 20000);
  for (let i = 0; i < 3; i++) tw.emit('channel.chat.message', { message_id: crypto.randomUUID() });
  tw.emit('channel.follow', { user_name: 'Chart_Fan', user_login: 'chart_fan', user_id: '778' });
  await sleep(1200);
  await page.screenshot({ path: path.join(OUT, 'widgets-viewers-live.png'), fullPage: true });

  assert.equal((await v.api('POST', '/api/stream/stop')).status, 200);
  // the summary of the stream that just ended
  await page.locator('#last-summary:not([hidden])').waitFor({ timeout: 10000 });
  assert.match(await page.locator('#last-summary h3').textContent(), /Chart stream/);
  assert.equal(await page.locator('#last-summary [data-stat="peak"] strong').textContent(), '13');
  assert.equal(await page.locator('#last-summary [data-stat="chat"] strong').textContent(), '3');
  assert.equal(await page.locator('#last-summary [data-stat="followers"] strong').textContent(), '1');
  assert.equal(await page.locator('#last-summary tr[data-platform="twitch"] td').first().textContent(), 'Twitch');

  // the API: samples as a chart series, the summary per platform
  const r = await v.api('GET', `/api/streams/${streamId}`);
  assert.equal(r.status, 200, r.text);
  const vw = r.json.viewers;
  assert.ok(vw.ts.length >= 3, r.text);
  assert.equal(vw.ts.length, vw.total.length);
  assert.equal(vw.platforms.twitch.length, vw.ts.length);
  assert.deepEqual(vw.total, vw.platforms.twitch, 'one platform: total = twitch');
  assert.ok(vw.ts.every((t, i) => i === 0 || t > vw.ts[i - 1]), 'ascending');
  const sum = r.json.summary;
  assert.equal(sum.peak_viewers, 13);
  assert.equal(sum.avg_viewers, Math.round(vw.total.reduce((a, b) => a + b, 0) / vw.total.length));
  assert.equal(sum.chat_messages, 3);
  assert.equal(sum.new_followers, 1);
  assert.equal(sum.platforms.twitch.chat_messages, 3);
  assert.equal(sum.platforms.twitch.peak_viewers, 13);
  assert.ok(sum.duration_ms > 0 && sum.duration_ms < 120000, String(sum.duration_ms));
  const other = await newUser(ctx);
  assert.equal((await other.api('GET', `/api/streams/${streamId}`)).status, 404, "another user's stream stays hidden");

  // the history: Details opens the summary and the chart of that stream
  const li = page.locator(`#history li[data-id="${streamId}"]`);
  await li.locator('.history-more').click();
  await li.locator('.history-details canvas').waitFor({ timeout: 5000 });
  assert.equal(await li.locator('.history-details [data-stat="peak"] strong').textContent(), '13');
  const histInk = await inked(`#history li[data-id="${streamId}"] .history-details canvas`);
  assert.ok(histInk > 500, `the history chart draws (${histInk} px)`);
  await page.screenshot({ path: path.join(OUT, 'widgets-viewers-history.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  tw.setOffline(TW_USER);

  // the follow is in the widgets page's recent alerts; Replay shows it again on the OBS page
  const obs = await obsPage((await widgetUrls(v)).alertbox);
  const wp = await watchedPage(dctx);
  await wp.goto(ctx.srv.url + '/dashboard/widgets');
  const row = wp.locator('#recent-alerts li', { hasText: 'Chart_Fan' });
  await row.waitFor({ timeout: 5000 });
  assert.match(await row.textContent(), /Follow: Chart_Fan/);
  await row.locator('button').click();
  await obs.locator('#stage .alert[data-type="follow"]', { hasText: 'Chart_Fan just followed!' }).waitFor({ timeout: 5000 });
  assert.deepEqual(wp.errors, []);
  assert.deepEqual(obs.errors, []);
  await obs.context().close();
  await dctx.close();
});

test('the vendored uPlot is the pinned npm package, byte for byte', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.match(pkg.devDependencies.uplot, /^\d+\.\d+\.\d+$/, 'pinned to an exact version');
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  assert.equal(lock.packages['node_modules/uplot'].version, pkg.devDependencies.uplot);
  const dist = path.join(ROOT, 'node_modules/uplot/dist');
  assert.ok(fs.readFileSync(path.join(ROOT, 'web/js/vendor/uPlot.esm.js')).equals(fs.readFileSync(path.join(dist, 'uPlot.esm.js'))));
  assert.ok(fs.readFileSync(path.join(ROOT, 'web/css/uPlot.min.css')).equals(fs.readFileSync(path.join(dist, 'uPlot.min.css'))));
});

testCleanExit(() => ctx);
