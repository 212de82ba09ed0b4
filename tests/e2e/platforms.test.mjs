// Browser test in real Chromium: the dashboard's platforms panel and the unified chat against
// the real server and the fake Twitch. Connect Twitch (denied first, then approved) through
// the fake's authorize page, see it connected and listed as a destination, go live (fake
// Cloudflare input), receive a chat message with its emote in the unified chat, reply from the
// page (the fake receives reply_parent_message_id), see a dropped send's reason, an alert line,
// a refused token (needs_reauth -> Reconnect), then disconnect (the fake sees the revoke). First, the chat column's rendering on its own:
// frames published on the user's chat/alertbox topics with the test-mode socket publish
// (markup in every field stays text, only http(s) emotes become images, deletions, the
// 500-line cap, scroll pinning).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from '../lib/harness.mjs';
import { bootLive, newUser, inputUid, setInput, outputsOf, waitFor, testCleanExit, dashSocket } from '../lib/livelib.mjs';
import { startFakeTwitch } from '../fakes/twitch.mjs';

const OUT = path.join(ROOT, 'tests/out');
const BROADCASTER = '141981764'; // the fake's default user (TwitchDev), who approves the authorize
// an image served for the Twitch emote CDN (the browser has no Internet)
const EMOTE = '<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><circle cx="14" cy="14" r="12" fill="gold"/></svg>';

let ctx, tw, browser, bctx, page, u;
const errors = [];

before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  tw = await startFakeTwitch({ keepaliveSeconds: 10 });
  ctx = await bootLive({
    env: {
      STREAM_DISCONNECT_TIMEOUT: '20000',
      PLATFORM_VIEWERS_INTERVAL: '1000', // a Helix call every second while live (needs_reauth test)
      TWITCH_CLIENT_ID: tw.clientId,
      TWITCH_CLIENT_SECRET: tw.clientSecret,
      TWITCH_AUTH_URL: tw.authUrl,
      TWITCH_API_URL: tw.apiUrl,
      TWITCH_EVENTSUB_WS_URL: tw.wsUrl,
      TWITCH_INGEST_URL: 'rtmp://127.0.0.1:1935/app',
    },
  });
  ctx.secrets.add(tw.clientSecret);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  u = await newUser(ctx);
  bctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await bctx.addCookies(u.cookie.split('; ').map((kv) => {
    const i = kv.indexOf('=');
    return { name: kv.slice(0, i), value: kv.slice(i + 1), url: ctx.srv.url };
  }));
  await bctx.route('https://static-cdn.jtvnw.net/**', (r) => r.fulfill({ status: 200, contentType: 'image/svg+xml', body: EMOTE }));
  page = await bctx.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
});

after(async () => { // cleanup only: the last test asserts the clean exit
  if (browser) await browser.close();
  if (ctx) await ctx.stop();
  if (tw) await tw.stop();
});

// a chat line's text with each emote image read as its alt text
const lineText = (loc) => loc.locator('.chat-text').evaluate((n) => [...n.childNodes].map((c) => (c.nodeName === 'IMG' ? c.alt : c.textContent)).join(''));

const twitchRow = () => page.locator('#platform-list li[data-platform="twitch"]');

test('unified chat: lines from the chat and alertbox topics, markup stays text, deletion, cap, pinning', async () => {
  const v = await newUser(ctx);
  const vctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await vctx.addCookies(v.cookie.split('; ').map((kv) => {
    const i = kv.indexOf('=');
    return { name: kv.slice(0, i), value: kv.slice(i + 1), url: ctx.srv.url };
  }));
  await vctx.route('https://static-cdn.jtvnw.net/**', (r) => r.fulfill({ status: 200, contentType: 'image/svg+xml', body: EMOTE }));
  const p = await vctx.newPage();
  const jsErrors = [];
  const dialogs = [];
  p.on('pageerror', (e) => jsErrors.push(String(e)));
  p.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await p.goto(ctx.srv.url + '/dashboard');
  const chatTopic = `chat:${v.id}`;
  await p.waitForFunction((t) => window.streampaiStream?.seqs?.[t] !== undefined, chatTopic);
  await p.waitForFunction((t) => window.streampaiStream?.seqs?.[t] !== undefined, `alertbox:${v.id}`);
  const sock = await dashSocket(ctx, v);
  const pub = (topic, event, payload) => sock.send({ type: 'publish', topic, event, payload });
  const msg = (id, text, extra = {}) => ({
    id, platform: 'twitch', text, ts: Date.now(), fragments: [{ type: 'text', text }],
    author: { id: `a-${id}`, name: `user_${id}`, display_name: `User ${id}`, color: '#1E90FF', badges: [] }, ...extra,
  });

  // markup everywhere: name, text, emote text; a javascript: emote URL stays text
  const evil = '<img src=x onerror="window.__xss=1">';
  pub(chatTopic, 'message', msg('evil1', 'x', {
    author: { id: '1', name: 'evil', display_name: evil, color: '', badges: [{ set_id: 'moderator', id: '1' }] },
    text: '<script>window.__xss=2</script> Kappa @me nope',
    fragments: [
      { type: 'text', text: '<script>window.__xss=2</script> ' },
      { type: 'emote', text: 'Kappa', emote_url: 'https://static-cdn.jtvnw.net/emoticons/v2/25/default/dark/1.0' },
      { type: 'text', text: ' ' },
      { type: 'mention', text: '@me' },
      { type: 'emote', text: ' nope', emote_url: 'javascript:window.__xss=3' },
    ],
  }));
  const evilLine = p.locator('#chat-list li[data-id="evil1"]');
  await evilLine.waitFor();
  assert.equal(await evilLine.locator('.chat-author').textContent(), evil);
  assert.equal(await lineText(evilLine), '<script>window.__xss=2</script> Kappa @me nope');
  assert.equal(await evilLine.locator('script').count(), 0);
  assert.equal(await evilLine.locator('img').count(), 1, 'only the https emote is an image');
  assert.equal(await evilLine.locator('img').getAttribute('alt'), 'Kappa');
  assert.equal(await evilLine.locator('.chat-mention').textContent(), '@me');
  assert.equal(await evilLine.locator('.chat-badge[data-badge="moderator"]').count(), 1);
  const fallback = await evilLine.locator('.chat-author').evaluate((n) => n.style.color);
  assert.match(fallback, /^rgb\(/, 'an author without a colour gets one');
  assert.equal(await p.evaluate(() => window.__xss), undefined);

  // the same id again (a replay) is not shown twice; a deletion strikes the line
  pub(chatTopic, 'message', msg('evil1', 'again'));
  pub(chatTopic, 'message', msg('keep1', 'hello there'));
  await p.locator('#chat-list li[data-id="keep1"]').waitFor();
  assert.equal(await p.locator('#chat-list li[data-id="evil1"]').count(), 1);
  pub(chatTopic, 'deleted', { id: 'evil1', platform: 'twitch', ts: Date.now() });
  await p.locator('#chat-list li[data-id="evil1"].deleted').waitFor();
  assert.equal(await evilLine.locator('.chat-reply').count(), 0, 'no reply to a deleted message');
  assert.equal(await evilLine.locator('.chat-text').evaluate((n) => getComputedStyle(n).textDecorationLine), 'line-through');

  // alerts are highlighted lines
  pub(`alertbox:${v.id}`, 'alert', { id: 'al1', type: 'raid', platform: 'twitch', name: 'Cool_User', count: 9001, ts: Date.now() });
  pub(`alertbox:${v.id}`, 'alert', { id: 'al2', type: 'gift_subscription', platform: 'twitch', name: 'Giver', count: 5, tier: 1, ts: Date.now() });
  await p.locator('#chat-list li.chat-alert[data-alert="gift_subscription"]').waitFor();
  assert.match(await p.locator('#chat-list li.chat-alert[data-alert="raid"]').textContent(), /Cool_User is raiding with 9001 viewers/);
  assert.match(await p.locator('#chat-list li.chat-alert[data-alert="gift_subscription"]').textContent(), /Giver gifted 5 subs \(tier 1\)/);

  // 520 more lines: the list keeps 500 and stays at the bottom
  for (let i = 0; i < 520; i++) pub(chatTopic, 'message', msg(`n${i}`, `line ${i}`));
  await p.locator('#chat-list li[data-id="n519"]').waitFor();
  assert.equal(await p.locator('#chat-list > li').count(), 500);
  assert.equal(await p.locator('#chat-list > li').first().getAttribute('data-id'), 'n20');
  const gap = () => p.evaluate(() => { const l = document.querySelector('#chat-list'); return l.scrollHeight - l.scrollTop - l.clientHeight; });
  assert.ok(await gap() <= 32, 'pinned to the bottom');
  assert.equal(await p.locator('#chat-more').isVisible(), false);

  // scrolled up: new lines do not move the view, a button offers the way down
  await p.evaluate(() => { document.querySelector('#chat-list').scrollTop = 0; });
  pub(chatTopic, 'message', msg('late1', 'late line'));
  await p.locator('#chat-list li[data-id="late1"]').waitFor({ state: 'attached' });
  await p.locator('#chat-more').filter({ hasText: '1 new message below' }).waitFor();
  assert.equal(await p.evaluate(() => document.querySelector('#chat-list').scrollTop), 0);
  await p.click('#chat-more');
  assert.ok(await gap() <= 32);
  assert.equal(await p.locator('#chat-more').isVisible(), false);

  assert.deepEqual(jsErrors, []);
  assert.deepEqual(dialogs, []);
  assert.equal(await p.evaluate(() => window.__xss), undefined);
  await p.screenshot({ path: path.join(OUT, 'platforms-chat-render.png') });
  await sock.close();
  await vctx.close();
});

test('connect Twitch: a denial is explained, an approval connects it and lists it as a destination', async () => {
  await page.goto(ctx.srv.url + '/dashboard');
  await twitchRow().locator('a[data-action="connect"]').waitFor();
  assert.match(await twitchRow().textContent(), /Not connected/);
  assert.equal(await twitchRow().locator('a[data-action="connect"]').getAttribute('href'), '/auth/twitch/connect');

  // the user says no on Twitch: back on the dashboard with a clear notice, nothing stored
  await tw.setAuthorize('deny');
  await twitchRow().locator('a[data-action="connect"]').click();
  await page.locator('#platform-notice[data-kind="error"]').filter({ hasText: 'You declined the authorization on Twitch' }).waitFor();
  await page.waitForFunction(() => location.pathname === '/dashboard' && location.search === '');
  await twitchRow().locator('a[data-action="connect"]').waitFor();
  let r = await u.api('GET', '/api/platforms');
  assert.equal(r.status, 200);
  const list = (x) => (Array.isArray(x) ? x : x.platforms);
  assert.equal(list(r.json).find((p) => p.platform === 'twitch').connected, false);

  // approved: the fake's authorize redirects back, the server exchanges the code
  await tw.setAuthorize('approve');
  await twitchRow().locator('a[data-action="connect"]').click();
  await page.locator('#platform-notice[data-kind="ok"]').filter({ hasText: 'Twitch connected.' }).waitFor();
  await page.waitForFunction(() => location.pathname === '/dashboard' && location.search === '');
  await twitchRow().filter({ hasText: 'Connected as TwitchDev' }).waitFor();
  assert.equal(await twitchRow().getAttribute('data-status'), 'ok');
  assert.equal(await twitchRow().locator('a[data-action="connect"]').count(), 0, 'no Connect once connected');
  assert.equal(await twitchRow().locator('button[data-action="disconnect"]').count(), 1);
  r = await u.api('GET', '/api/platforms');
  const tp = list(r.json).find((p) => p.platform === 'twitch');
  assert.equal(tp.connected, true);
  assert.equal(tp.account.login, 'twitchdev');
  assert.ok(tw.calls.some((c) => c.path === '/oauth2/token' && c.status === 200), 'the code was exchanged at the fake');

  // the connected account is a destination: platform icon and name, no key, no Remove
  const dest = page.locator('#destinations li[data-platform="twitch"]');
  await dest.waitFor();
  assert.match(await dest.textContent(), /Twitch/);
  assert.equal(await dest.locator('.pf-icon[data-platform="twitch"]').count(), 1);
  assert.equal(await dest.locator('button').count(), 0, 'not removable from the stream page');
  assert.equal(await dest.locator('input[type="password"]').count(), 0, 'no key field');
  assert.equal(await dest.locator('input[type="checkbox"]').isChecked(), true);

  // live status on platform:twitch:{id} (published here with the test-mode socket publish):
  // degraded shows a badge and the reason, connected clears it
  const sock = await dashSocket(ctx, u);
  const status = (payload) => sock.send({ type: 'publish', topic: `platform:twitch:${u.id}`, event: 'status', payload });
  status({ platform: 'twitch', status: 'degraded', error: 'EventSub keeps dropping' });
  await twitchRow().locator('.pf-state[data-state="degraded"]').waitFor();
  assert.equal(await twitchRow().getAttribute('data-status'), 'degraded');
  assert.match(await twitchRow().locator('.platform-error').textContent(), /EventSub keeps dropping/);
  status({ platform: 'twitch', status: 'connected' });
  await page.waitForFunction(() => document.querySelector('#platform-list li[data-platform="twitch"]').dataset.status === 'ok');
  assert.equal(await twitchRow().locator('.pf-state').count(), 0);
  await sock.close();

  // not live yet: the chat column explains itself
  assert.match(await page.locator('#chat-hint').textContent(), /while you are live/);
  assert.deepEqual(await page.locator('#chat-target option').evaluateAll((os) => os.map((o) => o.value)), ['all', 'twitch']);
});

test('title and a Twitch category picked from the search, pushed to Twitch at go-live', async () => {
  const cat = page.locator('#meta-categories input[data-category="twitch"]');
  await cat.waitFor();
  await page.fill('#meta-title', 'Building things live');
  await cat.pressSequentially('Fortn', { delay: 20 });
  await page.waitForFunction(() => [...document.querySelectorAll('#cat-list-twitch option')].some((o) => o.value === 'Fortnite'));
  await cat.fill('Fortnite');
  await page.click('#meta-form button[type="submit"]');
  await page.locator('#meta-saved').filter({ hasText: 'Saved' }).waitFor();
  const st = await u.api('GET', '/api/stream');
  assert.deepEqual(st.json.categories, { twitch: '33214' });
  assert.equal(st.json.title, 'Building things live');
  // a name that is not in the list is refused in the page, nothing is sent
  await cat.fill('No such game at all');
  await page.click('#meta-form button[type="submit"]');
  await page.locator('#meta-saved').filter({ hasText: 'Pick a Twitch category from the list' }).waitFor();
  assert.deepEqual((await u.api('GET', '/api/stream')).json.categories, { twitch: '33214' });
  await cat.fill('Fortnite');
});

test('live: chat with an emote in the unified chat, a reply from the page lands on Twitch, a drop shows its reason', async () => {
  const uid = await inputUid(u);
  await setInput(ctx, uid, 'connected');
  await page.waitForFunction(() => document.querySelector('#state-badge').textContent === 'Ready');
  await page.click('#start-stream');
  await page.waitForFunction(() => document.querySelector('#state-badge').textContent === 'Live');
  // the Twitch output got the ingest and the key from Helix
  const key = tw.user(BROADCASTER).streamKey;
  await waitFor(() => outputsOf(ctx, uid).some((o) => o.streamKey === key), { what: 'a Twitch output with the Helix key' });
  await waitFor(() => tw.user(BROADCASTER).channel.game_id === '33214' &&
    tw.user(BROADCASTER).channel.title === 'Building things live', { what: 'title and category on Twitch at go-live' });
  await page.waitForFunction(() => document.querySelector('#chat-hint').hidden);
  // the monitor reports itself connected on platform:twitch:{id}
  await twitchRow().locator('.pf-live[data-status="connected"]').waitFor({ timeout: 20000 });

  // the monitor subscribed on the fake's EventSub socket
  await tw.waitForSubscription((s) => s.type === 'channel.chat.message' && s.status === 'enabled', 20000);
  const msgId = crypto.randomUUID();
  tw.emit('channel.chat.message', { message_id: msgId });
  const line = page.locator(`#chat-list li[data-id="${msgId}"]`);
  await line.waitFor({ timeout: 15000 });
  assert.equal(await line.getAttribute('data-platform'), 'twitch');
  assert.equal(await line.locator('.pf-icon[data-platform="twitch"]').count(), 1);
  assert.equal(await line.locator('.chat-author').textContent(), 'Viewer32');
  assert.equal(await line.locator('.chat-author').evaluate((n) => getComputedStyle(n).color), 'rgb(0, 255, 127)');
  const emote = line.locator('img.chat-emote');
  assert.equal(await emote.getAttribute('alt'), 'Kappa');
  assert.match(await emote.getAttribute('src'), /^https:\/\/static-cdn\.jtvnw\.net\/emoticons\/v2\/25\//);
  await page.waitForFunction((id) => document.querySelector(`#chat-list li[data-id="${id}"] img.chat-emote`).naturalWidth > 0, msgId);
  assert.equal(await line.locator('.chat-mention').textContent(), '@twitchdev');
  assert.equal(await lineText(line), 'Hi chat Kappa @twitchdev');

  // reply to it: "Replying to Viewer32", Enter sends, the fake gets a native reply
  await line.hover();
  await line.locator('button.chat-reply').click();
  await page.locator('#chat-replybar').filter({ hasText: 'Replying to Viewer32' }).waitFor();
  await page.fill('#chat-input', 'thanks for the hello');
  await page.press('#chat-input', 'Enter');
  const sent = await waitFor(() => tw.chatMessages.find((m) => m.message === 'thanks for the hello'), { what: 'the reply at the fake' });
  assert.equal(sent.reply_parent_message_id, msgId);
  assert.equal(sent.broadcaster_id, BROADCASTER);
  const out = page.locator('#chat-list li.outgoing').last();
  await page.locator('#chat-list li.outgoing[data-state="sent"]').waitFor();
  assert.match(await out.locator('.chat-fate li[data-platform="twitch"][data-sent="true"]').textContent(), /Twitch: sent/);
  assert.equal(await page.locator('#chat-replybar').isVisible(), false, 'the reply bar closes after sending');
  assert.equal(await page.locator('#chat-input').inputValue(), '');
  // Twitch echoes the sent message: it comes back as a reply line
  await page.locator('#chat-list li.chat-line:not(.outgoing)').filter({ hasText: 'thanks for the hello' })
    .filter({ hasText: '↪ Viewer32' }).waitFor({ timeout: 15000 });

  // a send Twitch drops: the line says so with the platform's reason
  await tw.dropNextChat(1);
  await page.selectOption('#chat-target', 'twitch');
  await page.fill('#chat-input', 'this one is held');
  await page.press('#chat-input', 'Enter');
  await page.locator('#chat-list li.outgoing[data-state="failed"]').waitFor();
  const fate = await page.locator('#chat-list li.outgoing[data-state="failed"] .chat-fate li[data-platform="twitch"]').textContent();
  assert.match(fate, /Twitch: not sent/);
  assert.match(fate, /checked by mods|msg_rejected/);
  const held = tw.chatMessages.find((m) => m.message === 'this one is held');
  assert.ok(held && held.is_sent === false && held.reply_parent_message_id === null);
  await page.screenshot({ path: path.join(OUT, 'platforms-chat.png'), fullPage: true });
});

test('live: a follow shows as an alert line; a refused token turns the row into a flagged Reconnect', async () => {
  await tw.waitForSubscription((s) => s.type === 'channel.follow' && s.status === 'enabled', 20000);
  tw.emit('channel.follow', { user_name: 'New_Fan', user_login: 'new_fan', user_id: '777' });
  const alert = page.locator('#chat-list li.chat-alert[data-alert="follow"]');
  await alert.waitFor({ timeout: 15000 });
  assert.match(await alert.textContent(), /New_Fan followed/);
  assert.equal(await alert.getAttribute('data-platform'), 'twitch');

  // Twitch refuses the token and its refresh: the server marks the account needs_reauth and
  // says so on platform:twitch:{id}; the row flags it with a Reconnect link, Twitch leaves the
  // chat targets, the stream goes on
  tw.failNextRefresh(5);
  tw.expireToken(); // the next Helix call (viewers, every second) gets 401, the refresh fails
  const reconnect = twitchRow().locator('a[data-action="connect"]');
  await reconnect.waitFor({ timeout: 15000 });
  assert.equal(await reconnect.textContent(), 'Reconnect Twitch');
  assert.equal(await reconnect.getAttribute('href'), '/auth/twitch/connect');
  assert.equal(await twitchRow().getAttribute('data-status'), 'needs_reauth');
  assert.equal(await twitchRow().locator('.pf-state[data-state="needs_reauth"]').count(), 1);
  assert.equal(await twitchRow().locator('button[data-action="disconnect"]').count(), 1);
  assert.deepEqual(await page.locator('#chat-target option').evaluateAll((os) => os.map((o) => o.value)), ['all']);
  assert.equal(await page.locator('#state-badge').textContent(), 'Live');
});

test('stop, then Disconnect: revoked at the fake, gone from the destinations and the chat targets', async () => {
  await page.click('#stop-stream');
  await page.waitForFunction(() => ['Ready', 'Offline'].includes(document.querySelector('#state-badge').textContent));

  const btn = twitchRow().locator('button[data-action="disconnect"]');
  await btn.click();
  assert.match(await btn.textContent(), /Really disconnect Twitch\?/);
  await btn.click();
  await page.locator('#platform-notice[data-kind="ok"]').filter({ hasText: 'Twitch disconnected.' }).waitFor();
  await twitchRow().filter({ hasText: 'Not connected' }).waitFor();
  assert.equal(await twitchRow().locator('a[data-action="connect"]').textContent(), 'Connect Twitch');
  assert.equal(await twitchRow().getAttribute('data-status'), 'disconnected');
  await waitFor(() => tw.calls.some((c) => c.method === 'POST' && c.path === '/oauth2/revoke'), { what: 'revoke at the fake' });
  await page.waitForFunction(() => !document.querySelector('#destinations li[data-platform="twitch"]'));
  const r = await u.api('GET', '/api/platforms');
  const rows = Array.isArray(r.json) ? r.json : r.json.platforms;
  assert.equal(rows.find((p) => p.platform === 'twitch').connected, false);
  assert.deepEqual(await page.locator('#chat-target option').evaluateAll((os) => os.map((o) => o.value)), ['all']);
  assert.match(await page.locator('#chat-hint').textContent(), /Connect a platform/);
  await page.screenshot({ path: path.join(OUT, 'platforms-panel.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await bctx.close();
});

test('sign in with Twitch from the login page: the offered providers, a denial explained, an approval signs in', async () => {
  const sctx = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const p = await sctx.newPage();
  const perr = [];
  p.on('pageerror', (e) => perr.push(String(e)));
  await p.goto(`${ctx.srv.url}/login`);
  const tbtn = p.locator('#providers a.provider-twitch');
  await tbtn.waitFor();
  assert.equal(await tbtn.textContent(), 'Continue with Twitch');
  assert.equal(await p.locator('#providers a.provider-google').count(), 0, 'Google is not configured here');
  await tw.setAuthorize('deny');
  await tbtn.click();
  await p.waitForURL((url) => url.pathname === '/login');
  await p.locator('.form-error').filter({ hasText: 'You declined the sign-in.' }).waitFor();
  assert.equal(new URL(p.url()).search, '', 'the error code is cleaned from the URL');
  const viewer = tw.addUser({ login: 'signinviewer', display_name: 'SigninViewer', email: 'signin-viewer@example.com' });
  await tw.setAuthorize('approve', viewer.id);
  await p.locator('#providers a.provider-twitch').click();
  await p.waitForURL((url) => url.pathname === '/dashboard');
  const me = await p.evaluate(async () => (await fetch('/api/me')).json());
  assert.equal((me.user || me).email, 'signin-viewer@example.com');
  await tw.setAuthorize('approve');
  assert.deepEqual(perr, []);
  await sctx.close();
});

testCleanExit(() => ctx);
