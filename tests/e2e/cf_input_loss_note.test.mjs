// Browser test in real Chromium: on the Cloudflare backend (the fake Cloudflare) the stream
// page says in one line what happens when the encoder drops (no slate on Cloudflare:
// web/js/cf_input_loss_note.js), and the page has no script error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { bootLive, newUser, inputUid, testCleanExit } from '../lib/livelib.mjs';

let ctx, browser;

before(async () => {
  ctx = await bootLive();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (ctx) await ctx.stop();
});

test('Cloudflare backend: the input-loss note is shown on the stream page', async () => {
  const u = await newUser(ctx);
  await inputUid(u); // the live input exists (on the fake Cloudflare: live.cloudflare.com)
  const bctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  await bctx.addCookies(u.cookie.split('; ').map((kv) => {
    const i = kv.indexOf('=');
    return { name: kv.slice(0, i), value: kv.slice(i + 1), url: ctx.srv.url };
  }));
  const page = await bctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(ctx.srv.url + '/dashboard');
  const note = page.locator('#cf-input-loss-note');
  await note.waitFor({ state: 'visible', timeout: 10000 });
  const text = await note.textContent();
  assert.match(text, /On Cloudflare there is no "be right back" slate/);
  assert.equal(await page.locator('#cf-input-loss-note').count(), 1, 'exactly one note');
  // it sits right under the disconnect protection switch of the settings panel
  await page.waitForFunction(() => {
    const n = document.getElementById('cf-input-loss-note');
    const prev = n && n.previousElementSibling;
    return !!prev && prev.contains(document.getElementById('disconnect-protection'));
  }, null, { timeout: 10000 });
  assert.equal(await page.locator('#stream-settings #cf-input-loss-note').count(), 1,
    'inside the settings panel');
  assert.deepEqual(errors, []);
  await bctx.close();
});

testCleanExit(() => ctx);
