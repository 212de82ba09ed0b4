// Browser test in real Chromium (web/js/recordings.js): a past stream in the history shows
// its recording (size, duration, Watch link for Cloudflare), a recording that matches no
// stream is listed under "Other recordings", and the recording selector saves the user's
// mode (sent to the live input at the fake Cloudflare).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from '../lib/harness.mjs';
import { bootLive, newUser, inputUid, setInput, waitState } from '../lib/livelib.mjs';

const OUT = path.join(ROOT, 'tests/out');
let ctx, browser;

after(async () => { // cleanup only: the test asserts the clean exit
  if (browser) await browser.close();
  if (ctx) await ctx.stop();
});

async function addVideo(uid, body) {
  const r = await fetch(`${ctx.cf.controlUrl}/inputs/${uid}/videos`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(r.status, 200);
  return r.json();
}

test('history shows recordings; the recording selector saves the mode', { timeout: 60000 }, async () => {
  fs.mkdirSync(OUT, { recursive: true });
  ctx = await bootLive({ env: { RECORDING_MODE: 'automatic' } });
  const u = await newUser(ctx);
  const uid = await inputUid(u);
  const d = await u.addDest('d1', 'rtmp://127.0.0.1:1935/live');
  await setInput(ctx, uid, 'connected');
  await waitState(u, 'ready');
  const start = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
  assert.equal(start.status, 200, start.text);
  await addVideo(uid, { duration: 75, size: 2 * 1024 * 1024, state: 'ready' });
  assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
  await waitState(u, 'ready');
  // one from long ago: no stream matches it
  const old = new Date(Date.now() - 30 * 86400000).toISOString();
  await addVideo(uid, { duration: 12, size: 1000, state: 'ready', created: old, modified: old });

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const bctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const cookies = u.cookie.split('; ').map((c) => c.split('=')).map(([name, value]) => ({ name, value, url: ctx.srv.url }));
  await bctx.addCookies(cookies);
  const page = await bctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(ctx.srv.url + '/dashboard');
  const rec = page.locator(`#history li[data-id="${start.json.stream_id}"] .recording`);
  await rec.waitFor({ timeout: 15000 });
  const text = await rec.innerText();
  assert.match(text, /Recording: 2\.1 MB, 1:15/, text);
  assert.match(await rec.locator('a', { hasText: 'Watch' }).getAttribute('href'), /\.m3u8$/);
  const other = page.locator('#recordings-other li');
  await other.first().waitFor();
  assert.equal(await other.count(), 1);
  assert.match(await other.first().innerText(), /0:12/);
  const sel = page.locator('#recording-mode');
  assert.equal(await sel.inputValue(), '', 'the server default is selected');
  await page.screenshot({ path: path.join(OUT, 'recordings-history.png'), fullPage: true });

  await sel.selectOption('off');
  await page.waitForFunction(() => document.querySelector('#recording-mode')?.value === 'off');
  const inputs = await (await fetch(`${ctx.cf.controlUrl}/inputs`)).json();
  await (async () => {
    for (let i = 0; i < 50; i++) {
      const all = await (await fetch(`${ctx.cf.controlUrl}/inputs`)).json();
      if (all.find((x) => x.uid === uid).recording.mode === 'off') return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`mode not sent to the input: ${JSON.stringify(inputs.find((x) => x.uid === uid).recording)}`);
  })();
  const back = await u.api('GET', '/api/stream/recording');
  assert.equal(back.json.user_mode, 'off');
  assert.deepEqual(errors, []);
  await bctx.close();
  await browser.close();
  browser = null;
  const c = ctx;
  ctx = null;
  await c.stopClean();
});

// The current recording in GET /api/stream (from the input's poll) and on the stream page:
// "Recording" while it runs, "Recording stopped: ..." when it failed (the built-in relay's
// `recording.current`, put on the fake input here); the event log says it in plain words.
test('the stream page shows the current recording and its error', { timeout: 60000 }, async () => {
  const c = await bootLive({ env: { RECORDING_MODE: 'automatic' } });
  let b = null;
  try {
    const u = await newUser(c);
    const uid = await inputUid(u);
    const setCurrent = async (current) => {
      const r = await fetch(`${c.cf.url}/accounts/${c.cf.accountId}/stream/live_inputs/${uid}`, {
        method: 'PUT', headers: { authorization: `Bearer ${c.cf.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ recording: { mode: 'automatic', current } }),
      });
      assert.equal(r.status, 200);
    };
    b = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const bctx = await b.newContext({ viewport: { width: 1100, height: 900 } });
    const cookies = u.cookie.split('; ').map((x) => x.split('=')).map(([name, value]) => ({ name, value, url: c.srv.url }));
    await bctx.addCookies(cookies);
    const page = await bctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(c.srv.url + '/dashboard');
    await page.locator('#input-status').waitFor();

    await setCurrent({ state: 'recording', bytes: 1000, duration_ms: 2000 });
    await page.waitForFunction(() => document.querySelector('#recording-status')?.textContent === 'Recording', null, { timeout: 15000 });
    const s1 = await u.stream();
    assert.deepEqual(s1.recording, { mode: 'automatic', active: true, state: 'recording' });

    await setCurrent({ state: 'error', bytes: 1000, duration_ms: 2000, error: 'recording stopped: No space left on device' });
    await page.waitForFunction(() => /^Recording stopped: No space left on device$/.test(document.querySelector('#recording-status')?.textContent || ''), null, { timeout: 15000 });
    assert.equal(await page.locator('#recording-status').getAttribute('data-state'), 'error');
    const s2 = await u.stream();
    assert.equal(s2.recording.active, false);
    assert.equal(s2.recording.error, 'recording stopped: No space left on device');
    const evs = (await u.api('GET', '/api/stream/events?limit=50')).json.events.filter((e) => e.type === 'recording_failed');
    assert.equal(evs.length, 1);
    assert.equal(evs[0].message, 'Recording stopped: disk full');
    assert.deepEqual(errors, []);
    await bctx.close();
  } finally {
    if (b) await b.close();
  }
  await c.stopClean();
});
