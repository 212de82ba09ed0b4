// Browser tests (Chromium) of a first stream's rough edges (issue 13 items 3, 7, 11, 12),
// against the fake Cloudflare:
//  - the first-run checklist ticks itself from real state (destination added, encoder
//    connected, live) and the empty lists say what will appear there;
//  - one plain-words status per destination through start / input loss / stop;
//  - destination edit (name, URL, key write-only) and "regenerate my stream key" behind a
//    confirm dialog (the old live input deleted at the media service);
//  - the dashboard pages at 390x844: no horizontal scroll, screenshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from '../lib/harness.mjs';
import { bootLive, newUser, inputUid, setInput, outputsOf, waitFor, waitState, testCleanExit } from '../lib/livelib.mjs';

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

async function openDashboard(u, viewport = { width: 1200, height: 900 }, url = '/dashboard') {
  const bctx = await browser.newContext({ viewport });
  await bctx.addCookies(u.cookie.split('; ').map((kv) => {
    const i = kv.indexOf('=');
    return { name: kv.slice(0, i), value: kv.slice(i + 1), url: ctx.srv.url };
  }));
  const page = await bctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(ctx.srv.url + url);
  return { bctx, page, errors };
}

const stepDone = (page, id) => page.locator(`#checklist li[data-step="${id}"]`).getAttribute('data-done');

test('first-run checklist ticks itself; empty states say what will appear', async () => {
  const u = await newUser(ctx);
  const { bctx, page, errors } = await openDashboard(u);
  await page.locator('#checklist').waitFor();
  await page.waitForFunction(() => document.querySelector('#conn-status')?.dataset.state === 'open');
  assert.equal(await page.locator('#checklist li').count(), 3);
  assert.equal(await stepDone(page, 'ingest'), 'false');
  assert.equal(await stepDone(page, 'destination'), 'false');
  assert.equal(await stepDone(page, 'live'), 'false');
  assert.match(await page.locator('#checklist .checklist-progress').textContent(), /0 of 3 done/);
  assert.match(await page.locator('#checklist').textContent(), /Point OBS at the ingest[\s\S]*Add or connect a destination[\s\S]*Go live/);

  // empty states: what will appear there
  assert.match(await page.locator('#no-dest').textContent(), /will appear here/);
  const before = (sel) => page.evaluate((s) => getComputedStyle(document.querySelector(s), '::before').content, sel);
  assert.match(await before('#feed'), /Stream events will appear here/);
  assert.match(await before('#history'), /past streams will appear here/);
  await page.locator('#chat-empty').waitFor();
  assert.match(await page.locator('#chat-empty').textContent(), /will appear here/);
  await page.screenshot({ path: path.join(OUT, 'first-run-empty.png'), fullPage: true });

  // a destination: ticked without a reload
  await page.fill('#dest-name', 'My server');
  await page.fill('#dest-url', 'rtmp://127.0.0.1:1935/live');
  await page.fill('#dest-key', 'first-run-key-1');
  await page.click('#dest-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#checklist li[data-step="destination"]')?.dataset.done === 'true');
  assert.equal(await stepDone(page, 'ingest'), 'false');
  assert.equal(await page.locator('#no-dest').isVisible(), false);
  // one status, in plain words, while not live
  assert.equal(await page.locator('#destinations .dest-status').textContent(), 'Not live');

  // the encoder connects (over the socket): ingest ticked
  const uid = await inputUid(u);
  await setInput(ctx, uid, 'connected');
  await page.waitForFunction(() => document.querySelector('#checklist li[data-step="ingest"]')?.dataset.done === 'true');
  assert.equal(await stepDone(page, 'live'), 'false');

  // live: all three ticked, "All set", the checklist can be hidden
  await page.waitForFunction(() => document.querySelector('#state-badge').textContent === 'Ready');
  await page.click('#start-stream');
  await page.waitForFunction(() => document.querySelector('#checklist li[data-step="live"]')?.dataset.done === 'true');
  assert.match(await page.locator('#checklist .checklist-progress').textContent(), /All set/);
  await page.waitForFunction(() => document.querySelector('#destinations .dest-status')?.textContent === 'Live');
  assert.equal(outputsOf(ctx, uid).length, 1);
  await page.screenshot({ path: path.join(OUT, 'first-run-live.png'), fullPage: true });
  await page.click('#checklist .checklist-dismiss');
  assert.equal(await page.locator('#checklist').isVisible(), false);

  // input lost then the stop: never a stale status
  await setInput(ctx, uid, 'disconnected');
  await page.waitForFunction(() => document.querySelector('#destinations .dest-status')?.textContent === 'Waiting for the encoder');
  await setInput(ctx, uid, 'connected');
  await page.click('#stop-stream');
  await page.waitForFunction(() => document.querySelector('#destinations .dest-status')?.textContent === 'Not live');
  assert.doesNotMatch(await page.locator('#destinations li').first().textContent(), /closed|active|Idle/);

  // after a reload: still hidden (remembered), the past stream keeps the steps ticked
  await page.reload();
  await page.locator('#stream-page').waitFor();
  await page.waitForFunction(() => document.querySelector('#checklist')?.dataset.done === '3');
  assert.equal(await page.locator('#checklist').isVisible(), false);
  await page.waitForFunction(() => document.querySelector('#history li'));
  assert.deepEqual(errors, []);
  await bctx.close();
});

test('destination edit: name, URL and a write-only key', async () => {
  const u = await newUser(ctx);
  const d = await u.addDest('Old name', 'rtmp://127.0.0.1:1935/live', 'edit-key-1');
  const { bctx, page, errors } = await openDashboard(u);
  const row = page.locator(`#destinations li[data-id="${d.id}"]`);
  await row.waitFor();
  await row.locator('.dest-edit').click();
  const dlg = page.locator('#dest-edit');
  await dlg.waitFor();
  assert.equal(await page.locator('#edit-dest-name').inputValue(), 'Old name');
  assert.equal(await page.locator('#edit-dest-key').inputValue(), '', 'the key is never shown');
  assert.equal(await page.locator('#edit-dest-key').getAttribute('type'), 'password');
  await page.fill('#edit-dest-name', 'New name');
  await page.fill('#edit-dest-url', 'rtmp://127.0.0.1:1936/app');
  await page.fill('#edit-dest-key', 'edit-key-2');
  ctx.secrets.add('edit-key-2');
  await dlg.locator('button[type=submit]').click();
  await page.waitForFunction((id) => document.querySelector(`#destinations li[data-id="${id}"] label`)?.textContent === 'New name', d.id);
  assert.equal(await dlg.count(), 0, 'the dialog closed');
  const list = (await u.api('GET', '/api/destinations')).json.destinations;
  const saved = list.find((x) => x.id === d.id);
  assert.equal(saved.name, 'New name');
  assert.equal(saved.url, 'rtmp://127.0.0.1:1936/app');
  assert.equal(saved.stream_key, '********');
  const rev = await u.api('POST', `/api/destinations/${d.id}/reveal`);
  assert.equal(rev.json.stream_key, 'edit-key-2');

  // name only: the key is kept (the empty field is not sent)
  await row.locator('.dest-edit').click();
  await page.fill('#edit-dest-name', 'Third');
  await page.locator('#dest-edit button[type=submit]').click();
  await page.waitForFunction((id) => document.querySelector(`#destinations li[data-id="${id}"] label`)?.textContent === 'Third', d.id);
  assert.equal((await u.api('POST', `/api/destinations/${d.id}/reveal`)).json.stream_key, 'edit-key-2');

  // an invalid URL: the error is shown in the dialog, nothing changes
  await row.locator('.dest-edit').click();
  await page.fill('#edit-dest-url', 'http://not-rtmp');
  await page.locator('#dest-edit button[type=submit]').click();
  await page.waitForFunction(() => document.querySelector('#dest-edit .form-error')?.textContent.length > 0);
  await page.locator('#dest-edit button[type=button]').click();
  assert.equal((await u.api('GET', '/api/destinations')).json.destinations.find((x) => x.id === d.id).url, 'rtmp://127.0.0.1:1936/app');
  assert.deepEqual(errors.filter((e) => !/status of 4\d\d/.test(e)), []);
  await bctx.close();
});

test('regenerate my stream key: confirm dialog, new key shown, old input deleted at the media service', async () => {
  const u = await newUser(ctx);
  const { bctx, page, errors } = await openDashboard(u);
  const uid = await inputUid(u);
  const oldKey = (await u.stream()).input.stream_key;
  await page.waitForFunction((k) => document.querySelector('#stream-key')?.value === k, oldKey);
  // cancel: nothing happens
  await page.click('#regen-key');
  await page.locator('#key-regenerate').waitFor();
  assert.match(await page.locator('#key-regenerate').textContent(), /stops working immediately/);
  await page.locator('#key-regenerate button[type=button]').click();
  assert.equal((await u.stream()).input.stream_key, oldKey);
  assert.ok(ctx.cf.getInput(uid), 'the input still exists after cancel');
  // confirm
  await page.click('#regen-key');
  await page.locator('#key-regenerate button[type=submit]').click();
  await page.waitForFunction((k) => { const v = document.querySelector('#stream-key')?.value; return v && v !== k; }, oldKey);
  const now = await u.stream();
  assert.notEqual(now.input.stream_key, oldKey);
  assert.notEqual(now.input.input_uid, uid);
  assert.equal(await page.locator('#stream-key').inputValue(), now.input.stream_key);
  assert.equal(ctx.cf.getInput(uid), null, 'the old live input is deleted at Cloudflare');
  assert.ok(ctx.cf.getInput(now.input.input_uid), 'the new one exists');
  // live: the button is disabled and its title says why; enabled again after the stop
  assert.equal(await page.locator('#regen-key').isDisabled(), false);
  await setInput(ctx, now.input.input_uid, 'connected');
  await waitState(u, 'ready');
  const d = await u.addDest('regen-live');
  const st = await u.api('POST', '/api/stream/start', { destinations: [d.id] });
  assert.equal(st.status, 200, st.text);
  await page.waitForFunction(() => document.querySelector('#regen-key')?.disabled === true);
  assert.match(await page.locator('#regen-key').getAttribute('title'), /Stop the stream before regenerating/);
  assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
  await page.waitForFunction(() => document.querySelector('#regen-key')?.disabled === false);
  assert.deepEqual(errors, []);
  await bctx.close();
});

test('phone (390x844): no horizontal scroll on the dashboard pages', async () => {
  const u = await newUser(ctx);
  // long content that used to push the page sideways
  await u.addDest('A destination with a rather long name for a phone', 'rtmp://127.0.0.1:1935/live/a/very/long/application/path/for/testing', 'phone-key-1');
  for (const [url, shot, ready] of [
    ['/dashboard', 'mobile-dashboard.png', '#stream-page'],
    ['/dashboard/widgets', 'mobile-widgets.png', '#widgets-app'],
  ]) {
    const { bctx, page, errors } = await openDashboard(u, { width: 390, height: 844 }, url);
    await page.locator(ready).first().waitFor();
    await page.waitForFunction(() => !document.querySelector('#shell').hidden);
    if (url === '/dashboard') {
      await page.locator('#destinations li').first().waitFor();
      await page.locator('#checklist').waitFor();
    }
    else await page.waitForFunction(() => !/Loading widgets/.test(document.querySelector('#widgets-app').textContent));
    await page.waitForTimeout(300);
    const m = await page.evaluate(() => ({
      sw: document.scrollingElement.scrollWidth,
      cw: document.scrollingElement.clientWidth,
      wide: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 391)
        .slice(0, 5).map((e) => `${e.tagName}#${e.id}.${e.className}`),
    }));
    await page.screenshot({ path: path.join(OUT, shot), fullPage: true });
    assert.ok(m.sw <= 390, `${url}: scrollWidth ${m.sw} > 390 (${m.wide.join(', ')})`);
    assert.deepEqual(errors, []);
    await bctx.close();
  }
});

testCleanExit(() => ctx);
