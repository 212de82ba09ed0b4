// Browser test in real Chromium (issue 13): the stream settings panel turns auto go-live on
// for one destination, the encoder connects and the stream goes live by itself, the user
// stops it, and the event log (plain words) is still on the page after a reload.
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

const logText = (page) => page.evaluate(() => [...document.querySelectorAll('#event-log li')].map((li) => li.textContent).join('\n'));

test('settings panel: auto go-live, then the event log survives a reload', async () => {
  const u = await newUser(ctx);
  const uid = await inputUid(u);
  const d = await u.addDest('Auto server');
  const other = await u.addDest('Other server');
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
  await page.locator('#stream-settings').waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#auto-dest-list input').length === 2);
  assert.equal(await page.locator('#auto-start').isChecked(), false, 'off by default');
  assert.equal(await page.locator('#disconnect-protection').isChecked(), true, 'on by default');
  await page.waitForFunction(() => /will appear here/.test(document.querySelector('#event-log')?.textContent || ''));

  // on, with nothing selected: refused in the page
  await page.check('#auto-start');
  await page.click('#settings-save');
  await page.waitForFunction(() => /at least one destination/.test(document.querySelector('#settings-error').textContent));
  await page.check(`#auto-dest-list input[data-id="${d.id}"]`);
  await page.click('#settings-save');
  await page.waitForFunction(() => document.querySelector('#settings-saved').textContent === 'Saved');
  const saved = (await u.api('GET', '/api/stream/settings')).json;
  assert.deepEqual(saved, { auto_start: true, auto_start_destinations: [d.id], disconnect_protection: true });

  // the encoder connects: live by itself, to the selected destination only
  await setInput(ctx, uid, 'connected');
  await page.waitForFunction(() => document.querySelector('#state-badge').textContent === 'Live', null, { timeout: 15000 });
  await waitFor(() => outputsOf(ctx, uid).length === 1, { what: 'one output' });
  const st = await u.stream();
  assert.deepEqual(st.outputs.map((o) => o.destination_id), [d.id]);
  assert.ok(!st.outputs.some((o) => o.destination_id === other.id));
  await page.waitForFunction(() => /Auto go-live/.test(document.querySelector('#event-log').textContent));

  await page.click('#stop-stream');
  await page.waitForFunction(() => /You stopped the stream/.test(document.querySelector('#event-log').textContent));
  const before = await logText(page);
  assert.match(before, /Encoder connected/);
  assert.match(before, /Stream started to 1 destination/);
  assert.doesNotMatch(before, /user_stop/);

  await page.reload();
  await page.locator('#event-log').waitFor();
  await page.waitForFunction(() => /You stopped the stream/.test(document.querySelector('#event-log')?.textContent || ''));
  const after = await logText(page);
  for (const line of ['You stopped the stream', 'Auto go-live', 'Stream started to 1 destination', 'Encoder connected'])
    assert.ok(after.includes(line), `"${line}" after reload:\n${after}`);
  // newest first: the stop is above the start
  assert.ok(after.indexOf('You stopped the stream') < after.indexOf('Stream started'));
  // the settings panel shows what was saved
  assert.equal(await page.locator('#auto-start').isChecked(), true);
  assert.equal(await page.locator(`#auto-dest-list input[data-id="${d.id}"]`).isChecked(), true);
  assert.equal(await page.locator(`#auto-dest-list input[data-id="${other.id}"]`).isChecked(), false);
  // the selection is gone: the next connection does not go live, and the panel says why
  assert.equal((await u.api('DELETE', `/api/destinations/${d.id}`)).status, 204);
  await setInput(ctx, uid, 'disconnected');
  await page.waitForFunction(() => document.querySelector('#state-badge').textContent === 'Offline');
  await setInput(ctx, uid, 'connected');
  await page.waitForFunction(() => /Auto go-live did not start/.test(document.querySelector('#auto-start-problem').textContent)
    && !document.querySelector('#auto-start-problem').hidden);
  await page.waitForFunction(() => /Auto go-live did not start/.test(document.querySelector('#event-log').textContent));
  assert.equal(await page.locator('#state-badge').textContent(), 'Ready');
  await page.screenshot({ path: path.join(OUT, 'stream-settings.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await bctx.close();
});

testCleanExit(() => ctx);
