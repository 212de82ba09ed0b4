// Browser test in real Chromium: the dashboard stream page driven through
// offline -> ready -> streaming (countdown while the input is lost) -> offline
// against the fake Cloudflare, with live updates over the socket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from '../lib/harness.mjs';
import { bootLive, newUser, inputUid, setInput, outputsOf, waitFor, testCleanExit } from '../lib/livelib.mjs';

const OUT = path.join(ROOT, 'tests/out');
let ctx, browser;

before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  ctx = await bootLive({ env: { STREAM_DISCONNECT_TIMEOUT: '20000' } });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => { // cleanup only: the last test asserts the clean exit
  if (browser) await browser.close();
  if (ctx) await ctx.stop();
});

test('stream page: ready -> streaming -> offline, live over the socket', async () => {
  const u = await newUser(ctx);
  const bctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const cookies = u.cookie.split('; ').map((kv) => {
    const i = kv.indexOf('=');
    return { name: kv.slice(0, i), value: kv.slice(i + 1), url: ctx.srv.url };
  });
  await bctx.addCookies(cookies);
  const page = await bctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  await page.goto(ctx.srv.url + '/dashboard');
  const badge = page.locator('#state-badge');
  await badge.waitFor();
  await page.waitForFunction(() => document.querySelector('#state-badge')?.textContent === 'Offline');
  assert.equal(await page.locator('#start-stream').isVisible(), false, 'no Start while offline');
  assert.equal(await page.locator('#stop-stream').isVisible(), false);
  await page.waitForFunction(() => document.querySelector('#conn-status')?.dataset.state === 'open');

  // ingest: URL shown, key hidden until revealed
  const uid = await inputUid(u);
  await page.waitForFunction(() => document.querySelector('#ingest-url').value.startsWith('rtmps://'));
  assert.equal(await page.locator('#stream-key').getAttribute('type'), 'password');
  await page.click('#reveal-key');
  assert.equal(await page.locator('#stream-key').getAttribute('type'), 'text');
  assert.ok((await page.locator('#stream-key').inputValue()).length > 10);
  await page.click('#reveal-key');

  // add a custom destination through the form
  await page.fill('#dest-name', 'My server');
  await page.fill('#dest-url', 'rtmp://127.0.0.1:1935/live');
  await page.fill('#dest-key', 'browser-key-1');
  await page.click('#dest-form button[type=submit]');
  await page.locator('#destinations li').first().waitFor();
  assert.equal(await page.locator('#destinations li input[type=checkbox]').first().isChecked(), true);

  // the encoder connects: Ready (pushed over the socket, no reload)
  await setInput(ctx, uid, 'connected');
  await page.waitForFunction(() => document.querySelector('#state-badge').textContent === 'Ready');
  assert.equal(await page.locator('#start-stream').isVisible(), true);

  // the socket drops; changes happen meanwhile; the page resumes from its last seq
  await page.evaluate(() => window.streampaiStream.ws.close());
  await page.waitForFunction(() => document.querySelector('#conn-status').dataset.state === 'closed');
  await setInput(ctx, uid, 'disconnected');
  await setInput(ctx, uid, 'connected');
  await page.waitForFunction(() => document.querySelector('#conn-status').dataset.state === 'open', null, { timeout: 15000 });
  await page.waitForFunction(() => /State: Ready → Offline[\s\S]*State: Offline → Ready/.test(
    [...document.querySelectorAll('#feed li')].reverse().map((li) => li.textContent).join('\n')));
  assert.equal(await badge.textContent(), 'Ready');

  await page.fill('#meta-title', 'Browser show');
  await page.click('#meta-form button[type=submit]');

  await page.click('#start-stream');
  await page.waitForFunction(() => document.querySelector('#state-badge').textContent === 'Live');
  assert.equal(await page.locator('#stop-stream').isVisible(), true);
  assert.equal(await page.locator('#start-stream').isVisible(), false);
  // one status per destination, in plain words (dest_status.js)
  await page.waitForFunction(() => document.querySelector('#destinations .dest-status')?.textContent === 'Live');
  assert.equal(await page.locator('#destinations li').first().locator('.dest-status').count(), 1);
  assert.doesNotMatch(await page.locator('#destinations li').first().textContent(), /active|Idle|Error/);
  assert.equal(outputsOf(ctx, uid).length, 1);
  assert.equal(outputsOf(ctx, uid)[0].streamKey, 'browser-key-1');

  // input lost: countdown; back: countdown gone
  await setInput(ctx, uid, 'disconnected');
  await page.waitForFunction(() => !document.querySelector('#countdown').hidden);
  await page.waitForFunction(() => document.querySelector('#destinations .dest-status')?.textContent === 'Waiting for the encoder');
  assert.match(await page.locator('#countdown').textContent(), /ends in 0:(1|2)\d/);
  await page.screenshot({ path: path.join(OUT, 'stream-countdown.png') });
  await setInput(ctx, uid, 'connected');
  await page.waitForFunction(() => document.querySelector('#countdown').hidden);
  await page.waitForFunction(() => document.querySelector('#destinations .dest-status')?.textContent === 'Live');

  await page.click('#stop-stream');
  await page.waitForFunction(() => document.querySelector('#state-badge').textContent === 'Ready');
  await waitFor(() => outputsOf(ctx, uid).length === 0, { what: 'outputs deleted' });
  // never stale after the end: no "closed"/"active" left behind
  await page.waitForFunction(() => document.querySelector('#destinations .dest-status')?.textContent === 'Not live');
  assert.doesNotMatch(await page.locator('#destinations li').first().textContent(), /closed|active/);
  await setInput(ctx, uid, 'disconnected');
  await page.waitForFunction(() => document.querySelector('#state-badge').textContent === 'Offline');

  // history and feed
  await page.waitForFunction(() => document.querySelector('#history li')?.textContent.includes('Browser show'));
  assert.match(await page.locator('#history li').first().textContent(), /ended \(user_stop\)/);
  const feed = await page.locator('#feed').textContent();
  assert.match(feed, /Stream started/);
  assert.match(feed, /Stream ended \(user_stop\)/);
  await page.screenshot({ path: path.join(OUT, 'stream-page.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await bctx.close();
});

testCleanExit(() => ctx);
