// Browser test in real Chromium: the dashboard's "Sessions" menu lists this browser and a
// token, revokes the token, and "Log out everywhere" ends on the login page with every
// session gone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from '../lib/harness.mjs';
import { bootServer, register, rq } from '../lib/authlib.mjs';

const OUT = path.join(ROOT, 'tests/out');
let srv, browser;

before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  srv = await bootServer();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => { // cleanup only: the last test asserts the clean exit
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

test('Sessions menu: list, revoke a token, log out everywhere', async () => {
  const a = await register(srv, `e2e-sess${Date.now()}@example.com`);
  assert.equal(a.res.status, 201);
  const tok = await rq(srv, 'POST', '/api/auth/token', {
    cookies: a.cookies, headers: { 'x-csrf-token': a.cookies.sp_csrf, 'user-agent': 'obs-dock-script' },
  });
  assert.equal(tok.status, 200);
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  await ctx.addCookies(Object.entries(a.cookies).map(([name, value]) => ({ name, value, url: srv.url })));
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (d) => d.accept());
  await page.goto(srv.url + '/dashboard');
  await page.locator('#shell').waitFor();

  await page.getByText('Sessions', { exact: true }).click();
  const items = page.locator('.sessions-list li');
  await items.first().waitFor();
  assert.equal(await items.count(), 2);
  await page.locator('.sessions-list li', { hasText: 'this device' }).waitFor();
  const tokenRow = page.locator('.sessions-list li', { hasText: 'obs-dock-script' });
  await tokenRow.locator('.tag', { hasText: 'token' }).waitFor();
  await page.screenshot({ path: path.join(OUT, 'sessions-menu.png') });

  await tokenRow.getByRole('button', { name: 'Revoke' }).click();
  await page.waitForFunction(() => document.querySelectorAll('.sessions-list li').length === 1);
  assert.equal((await rq(srv, 'GET', '/api/me', { headers: { authorization: `Bearer ${tok.json.token}` } })).status, 401);

  await page.getByRole('button', { name: 'Log out everywhere' }).click();
  await page.waitForURL('**/login');
  assert.equal((await rq(srv, 'GET', '/api/me', { cookies: a.cookies })).status, 401);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('the server exits cleanly (no ASan/LSan report)', async () => {
  await srv.stopClean();
});
