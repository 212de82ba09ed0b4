// Browser test in real Chromium: sign up, log out, log in, see the dashboard
// shell with the user's name; field errors appear next to the field.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from '../lib/harness.mjs';
import { bootServer } from '../lib/authlib.mjs';

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

test('sign up, log out, log in, dashboard shell with the name', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const page = await ctx.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('response', (r) => { if (r.status() === 404) consoleErrors.push('404 ' + r.url()); });
  const email = `e2e${Date.now()}@example.com`;

  // landing -> sign up
  await page.goto(srv.url + '/');
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.waitForURL('**/signup');

  // an empty form flags every field at once, not only the password
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.locator('#email-error').filter({ hasText: /enter your email/i }).waitFor();
  await page.locator('#password-error').filter({ hasText: /enter a password/i }).waitFor();
  assert.equal(await page.getByLabel('Email').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'email', 'focus on the first bad field');

  // field errors next to the field: too-short password, then a malformed email (client checks)
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Display name').fill('Ada Lovelace');
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.locator('#password-error').filter({ hasText: 'at least 8' }).waitFor();
  assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true');
  await page.getByLabel('Email').fill('not-an-email');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.locator('#email-error').filter({ hasText: /valid email/i }).waitFor();
  await page.screenshot({ path: path.join(OUT, 'auth-signup-errors.png') });

  // real sign-up
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL('**/dashboard');
  await page.locator('#user-name').filter({ hasText: 'Ada Lovelace' }).waitFor();
  assert.ok(await page.locator('main#app').count(), 'the app area exists');

  // session cookie is HttpOnly (not visible to JS), csrf cookie is
  const jsCookies = await page.evaluate(() => document.cookie);
  assert.ok(!/sp_session=/.test(jsCookies));
  assert.ok(/sp_csrf=/.test(jsCookies));

  // log out -> login page; the dashboard now bounces to login
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL('**/login');
  await page.goto(srv.url + '/dashboard');
  await page.waitForURL('**/login');

  // duplicate sign-up shows 409 under the email field
  await page.goto(srv.url + '/signup');
  await page.getByLabel('Email').fill(email.toUpperCase());
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.locator('#email-error').filter({ hasText: /already exists/ }).waitFor();

  // wrong password: a form-level error
  await page.goto(srv.url + '/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('.form-error').filter({ hasText: 'Invalid email or password' }).waitFor();

  // log in
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL('**/dashboard');
  await page.locator('#user-name').filter({ hasText: 'Ada Lovelace' }).waitFor();
  assert.equal(await page.locator('#user-email').textContent(), email);
  await page.screenshot({ path: path.join(OUT, 'auth-dashboard.png') });

  // landing redirects a logged-in user to the dashboard
  await page.goto(srv.url + '/');
  await page.waitForURL('**/dashboard');

  await page.goto(srv.url + '/login');
  await page.screenshot({ path: path.join(OUT, 'auth-login.png') });
  assert.deepEqual(consoleErrors.filter((e) => !/status of 40[19]|status of 422/.test(e)), []);
  await ctx.close();
});

test('the server exits cleanly (no ASan/LSan report)', async () => {
  await srv.stopClean();
});
