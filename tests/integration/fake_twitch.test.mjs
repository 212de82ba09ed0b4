// Self-test of tests/fakes/twitch.mjs: OAuth (PKCE, rotation), Helix auth/rate limits/shapes,
// EventSub WebSocket (welcome, subscriptions, notifications, keepalive, reconnect, close codes)
// and the webhook transport (challenge, HMAC signature, duplicates, reordering).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import WebSocket from 'ws';
import { startFakeTwitch } from '../fakes/twitch.mjs';

const ALL_SCOPES = ['channel:manage:broadcast', 'channel:read:stream_key', 'user:write:chat', 'user:read:chat',
  'moderator:read:followers', 'channel:read:subscriptions', 'bits:read', 'user:read:email'];

async function helix(tw, method, path, token, body, clientId = tw.clientId) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (clientId) headers['client-id'] = clientId;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${tw.apiUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: text ? JSON.parse(text) : null };
}
async function tokenPost(tw, form) {
  const r = await fetch(`${tw.authUrl}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString() });
  return { status: r.status, json: await r.json() };
}

// wait for a condition (polling), failing after timeoutMs
async function until(fn, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

// A WebSocket client that queues parsed messages and lets the test wait for the next one / the close.
function wsClient(url) {
  const ws = new WebSocket(url);
  const queue = [];
  const all = [];
  let wake = null;
  let closed = null;
  const closedP = new Promise((resolve) => ws.on('close', (code, reason) => { closed = { code, reason: String(reason) }; resolve(closed); if (wake) wake(); }));
  ws.on('message', (d) => { const m = JSON.parse(String(d)); queue.push(m); all.push(m); if (wake) wake(); });
  ws.on('error', () => {});
  async function next(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (!queue.length) {
      if (closed) throw new Error(`socket closed ${closed.code}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timeout waiting for a message');
      await new Promise((r) => { const t = setTimeout(r, left); wake = () => { clearTimeout(t); wake = null; r(); }; });
    }
    return queue.shift();
  }
  async function nextOfType(type, timeoutMs = 5000) {
    for (;;) { const m = await next(timeoutMs); if (m.metadata.message_type === type) return m; }
  }
  return { ws, next, nextOfType, all, queue, closed: closedP, close: () => ws.close() };
}

// a webhook receiver verifying the signature independently
async function webhookReceiver(secret, { answerChallenge = true } = {}) {
  const got = [];
  const ctl = { failNotifications: 0 };
  const srv = http.createServer((req, res) => {
    let b = '';
    req.on('data', (c) => { b += c; });
    req.on('end', () => {
      const h = req.headers;
      const expect = 'sha256=' + crypto.createHmac('sha256', secret)
        .update(h['twitch-eventsub-message-id'] + h['twitch-eventsub-message-timestamp'] + b).digest('hex');
      const given = Buffer.from(h['twitch-eventsub-message-signature'] || '');
      const sigOk = given.length === expect.length && crypto.timingSafeEqual(Buffer.from(expect), given);
      const body = JSON.parse(b);
      got.push({ headers: h, body, sigOk });
      if (h['twitch-eventsub-message-type'] === 'webhook_callback_verification' && answerChallenge) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.end(body.challenge);
      }
      if (ctl.failNotifications > 0) { ctl.failNotifications -= 1; res.writeHead(500); return res.end(); }
      res.writeHead(answerChallenge ? 204 : 403);
      res.end();
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { got, ctl, url: `http://127.0.0.1:${srv.address().port}/webhooks/twitch`, close: () => new Promise((r) => srv.close(r)) };
}

async function userWsSetup(tw, types, opts = {}) {
  const { access_token: tok } = tw.issueToken({ userId: '141981764', scopes: ALL_SCOPES });
  const c = wsClient(opts.url || tw.wsUrl);
  const welcome = await c.next();
  const sid = welcome.payload.session.id;
  const created = [];
  for (const type of types) {
    const version = type === 'channel.follow' ? '2' : '1';
    const condition = type === 'channel.raid' ? { to_broadcaster_user_id: '141981764' }
      : type === 'channel.follow' ? { broadcaster_user_id: '141981764', moderator_user_id: '141981764' }
        : type === 'channel.chat.message' ? { broadcaster_user_id: '141981764', user_id: '141981764' }
          : { broadcaster_user_id: '141981764' };
    const r = await helix(tw, 'POST', '/eventsub/subscriptions', tok, { type, version, condition, transport: { method: 'websocket', session_id: sid } });
    assert.equal(r.status, 202, r.text);
    created.push(r.json.data[0]);
  }
  return { tok, c, welcome, sid, created };
}

test('OAuth code flow with PKCE S256, single-use code, redirect_uri and secret checked', async () => {
  const tw = await startFakeTwitch();
  try {
    const verifier = crypto.randomBytes(32).toString('base64url');
    const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
    const redirect = 'http://127.0.0.1:9/auth/twitch/callback';
    const q = new URLSearchParams({ client_id: tw.clientId, redirect_uri: redirect, response_type: 'code',
      scope: 'user:read:chat user:write:chat', state: 'st-123', code_challenge: challenge, code_challenge_method: 'S256' });
    const a = await fetch(`${tw.authUrl}/authorize?${q}`, { redirect: 'manual' });
    assert.equal(a.status, 302);
    const loc = new URL(a.headers.get('location'));
    assert.equal(loc.origin + loc.pathname, redirect);
    assert.equal(loc.searchParams.get('state'), 'st-123');
    const code = loc.searchParams.get('code');
    assert.ok(code);

    const form = { client_id: tw.clientId, client_secret: tw.clientSecret, code, grant_type: 'authorization_code', redirect_uri: redirect };
    // wrong verifier: refused, and the code is burnt
    const wrong = await tokenPost(tw, { ...form, code_verifier: 'x'.repeat(43) });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.json.status, 400);

    const a2 = await fetch(`${tw.authUrl}/authorize?${q}`, { redirect: 'manual' });
    const code2 = new URL(a2.headers.get('location')).searchParams.get('code');
    const badSecret = await tokenPost(tw, { ...form, code: code2, client_secret: 'nope', code_verifier: verifier });
    assert.equal(badSecret.status, 403);
    assert.deepEqual(badSecret.json, { status: 403, message: 'invalid client secret' });

    const a3 = await fetch(`${tw.authUrl}/authorize?${q}`, { redirect: 'manual' });
    const code3 = new URL(a3.headers.get('location')).searchParams.get('code');
    const badRedirect = await tokenPost(tw, { ...form, code: code3, redirect_uri: 'http://127.0.0.1:9/other', code_verifier: verifier });
    assert.equal(badRedirect.status, 400);

    const a4 = await fetch(`${tw.authUrl}/authorize?${q}`, { redirect: 'manual' });
    const code4 = new URL(a4.headers.get('location')).searchParams.get('code');
    const ok = await tokenPost(tw, { ...form, code: code4, code_verifier: verifier });
    assert.equal(ok.status, 200);
    assert.deepEqual(Object.keys(ok.json).sort(), ['access_token', 'expires_in', 'refresh_token', 'scope', 'token_type']);
    assert.equal(ok.json.token_type, 'bearer');
    assert.deepEqual(ok.json.scope, ['user:read:chat', 'user:write:chat']);
    assert.ok(ok.json.expires_in > 3600);
    const again = await tokenPost(tw, { ...form, code: code4, code_verifier: verifier });
    assert.deepEqual(again.json, { status: 400, message: 'Invalid authorization code' });

    // the token works on Helix and on /validate
    const me = await helix(tw, 'GET', '/users', ok.json.access_token);
    assert.equal(me.status, 200);
    assert.equal(me.json.data[0].login, 'twitchdev');
    assert.equal(me.json.data[0].email, undefined, 'no email without user:read:email');
    const v = await fetch(`${tw.authUrl}/validate`, { headers: { authorization: `OAuth ${ok.json.access_token}` } });
    const vj = await v.json();
    assert.equal(v.status, 200);
    assert.equal(vj.user_id, '141981764');
    assert.equal(vj.login, 'twitchdev');
    assert.deepEqual(vj.scopes, ['user:read:chat', 'user:write:chat']);

    // deny
    tw.setAuthorize('deny');
    const d = await fetch(`${tw.authUrl}/authorize?${q}`, { redirect: 'manual' });
    const dl = new URL(d.headers.get('location'));
    assert.equal(dl.searchParams.get('error'), 'access_denied');
    assert.equal(dl.searchParams.get('error_description'), 'The user denied you access');
    assert.equal(dl.searchParams.get('state'), 'st-123');
    assert.equal(dl.searchParams.get('code'), null);

    // revoke → validate 401
    const rv = await fetch(`${tw.authUrl}/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: tw.clientId, token: ok.json.access_token }) });
    assert.equal(rv.status, 200);
    const v2 = await fetch(`${tw.authUrl}/validate`, { headers: { authorization: `OAuth ${ok.json.access_token}` } });
    assert.equal(v2.status, 401);
    assert.deepEqual(await v2.json(), { status: 401, message: 'invalid access token' });
    // the request log has the token calls
    assert.equal(tw.calls.filter((c) => c.path === '/oauth2/token').length, 5);
    assert.equal(tw.calls.find((c) => c.path === '/oauth2/token').headers['content-type'], 'application/x-www-form-urlencoded');
  } finally {
    await tw.stop();
  }
});

test('refresh rotation: a used refresh token answers 400 Invalid refresh token; failNextRefresh; client credentials', async () => {
  const tw = await startFakeTwitch();
  try {
    const t0 = tw.issueToken({ userId: '141981764', scopes: ['user:read:chat'] });
    const form = (rt) => ({ grant_type: 'refresh_token', refresh_token: rt, client_id: tw.clientId, client_secret: tw.clientSecret });
    const r1 = await tokenPost(tw, form(t0.refresh_token));
    assert.equal(r1.status, 200);
    assert.notEqual(r1.json.refresh_token, t0.refresh_token);
    assert.deepEqual(r1.json.scope, ['user:read:chat']);
    assert.equal(r1.json.token_type, 'bearer');
    const reuse = await tokenPost(tw, form(t0.refresh_token));
    assert.equal(reuse.status, 400);
    assert.deepEqual(reuse.json, { status: 400, message: 'Invalid refresh token' });
    const r2 = await tokenPost(tw, form(r1.json.refresh_token));
    assert.equal(r2.status, 200);

    // the refresh grant also accepts query-string parameters (twurple style)
    const qs = new URLSearchParams(form(r2.json.refresh_token));
    const r3 = await fetch(`${tw.authUrl}/token?${qs}`, { method: 'POST' });
    assert.equal(r3.status, 200);
    const r3j = await r3.json();

    tw.failNextRefresh();
    const forced = await tokenPost(tw, form(r3j.refresh_token));
    assert.deepEqual(forced.json, { status: 400, message: 'Invalid refresh token' });
    assert.equal((await tokenPost(tw, form(r3j.refresh_token))).status, 400, 'the grant is gone for good');

    // without rotation the same refresh token comes back and stays valid
    tw.setRotateRefresh(false);
    const t1 = tw.issueToken({ userId: '141981764', scopes: [] });
    const n1 = await tokenPost(tw, form(t1.refresh_token));
    assert.equal(n1.json.refresh_token, t1.refresh_token);
    assert.equal((await tokenPost(tw, form(t1.refresh_token))).status, 200);

    const cc = await tokenPost(tw, { grant_type: 'client_credentials', client_id: tw.clientId, client_secret: tw.clientSecret });
    assert.equal(cc.status, 200);
    assert.equal(cc.json.token_type, 'bearer');
    assert.equal(cc.json.refresh_token, undefined);
    const appUsers = await helix(tw, 'GET', '/users?login=twitchdev', cc.json.access_token);
    assert.equal(appUsers.json.data[0].id, '141981764');
    assert.equal(tw.counters().grant_refresh_token, 8);
  } finally {
    await tw.stop();
  }
});

test('Helix auth: 401 shapes for expiry, missing token, Client-Id; controls over HTTP', async () => {
  const tw = await startFakeTwitch();
  try {
    const { access_token: tok } = tw.issueToken({ userId: '141981764', scopes: ALL_SCOPES });
    assert.equal((await helix(tw, 'GET', '/users', tok)).status, 200);
    const noTok = await helix(tw, 'GET', '/users', null);
    assert.equal(noTok.status, 401);
    assert.deepEqual(noTok.json, { error: 'Unauthorized', status: 401, message: 'OAuth token is missing' });
    assert.equal(noTok.headers.get('ratelimit-limit'), '800', 'rate-limit headers on 401s too');
    const noCid = await helix(tw, 'GET', '/users', tok, undefined, null);
    assert.equal(noCid.status, 401);
    assert.equal(noCid.json.error, 'Unauthorized');
    const badCid = await helix(tw, 'GET', '/users', tok, undefined, 'someoneelse');
    assert.equal(badCid.status, 401);

    await fetch(`${tw.controlUrl}/expireToken`, { method: 'POST', body: JSON.stringify({ args: [tok] }) });
    const exp = await helix(tw, 'GET', '/users', tok);
    assert.equal(exp.status, 401);
    assert.deepEqual(exp.json, { error: 'Unauthorized', status: 401, message: 'Invalid OAuth token' });

    const { access_token: few } = tw.issueToken({ userId: '141981764', scopes: [] });
    const ms = await helix(tw, 'PATCH', '/channels?broadcaster_id=141981764', few, { title: 'x' });
    assert.deepEqual(ms.json, { error: 'Unauthorized', status: 401, message: 'Missing scope: channel:manage:broadcast' });

    // injected faults: 5xx for N calls, then fine; slow answers; dropped connection
    const { access_token: t2 } = tw.issueToken({ userId: '141981764', scopes: ALL_SCOPES });
    tw.injectFault({ kind: '5xx', status: 503, count: 2, pathIncludes: '/helix/streams' });
    assert.equal((await helix(tw, 'GET', '/streams?user_id=141981764', t2)).status, 503);
    assert.equal((await helix(tw, 'GET', '/streams?user_id=141981764', t2)).status, 503);
    assert.equal((await helix(tw, 'GET', '/streams?user_id=141981764', t2)).status, 200);
    tw.injectFault({ kind: 'delay', ms: 250 });
    const t0 = Date.now();
    assert.equal((await helix(tw, 'GET', '/users', t2)).status, 200);
    assert.ok(Date.now() - t0 >= 240);
    tw.injectFault({ kind: 'drop' });
    await assert.rejects(helix(tw, 'GET', '/users', t2));
    const calls = await (await fetch(`${tw.controlUrl}/calls`)).json();
    const faults = calls.map((c) => c.fault ?? null).filter(Boolean);
    assert.deepEqual(faults, ['5xx', '5xx', 'delay', 'drop']);
    assert.equal(calls.find((c) => c.path === '/helix/users').headers['client-id'], tw.clientId);
  } finally {
    await tw.stop();
  }
});

test('rate limit headers on every answer, 429 when the bucket is empty, injected 429 with Ratelimit-Reset', async () => {
  const tw = await startFakeTwitch({ rateLimit: { limit: 5, windowMs: 60000 } });
  try {
    const { access_token: tok } = tw.issueToken({ userId: '141981764', scopes: ALL_SCOPES });
    const { access_token: other } = tw.issueToken({ userId: tw.addUser({ login: 'other' }).id, scopes: [] });
    const remaining = [];
    for (let i = 0; i < 5; i++) {
      const r = await helix(tw, 'GET', '/users', tok);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('ratelimit-limit'), '5');
      assert.ok(Number(r.headers.get('ratelimit-reset')) >= Math.floor(Date.now() / 1000));
      remaining.push(Number(r.headers.get('ratelimit-remaining')));
    }
    assert.deepEqual(remaining, [4, 3, 2, 1, 0]);
    const r = await helix(tw, 'GET', '/users', tok);
    assert.equal(r.status, 429);
    assert.equal(r.json.status, 429);
    assert.equal(r.json.error, 'Too Many Requests');
    assert.equal(r.headers.get('ratelimit-remaining'), '0');
    assert.ok(Number(r.headers.get('ratelimit-reset')) > Date.now() / 1000);
    // another user of the same client has its own bucket
    assert.equal((await helix(tw, 'GET', '/users', other)).status, 200);

    tw.setRateLimit({ limit: 800 });
    const ok = await helix(tw, 'GET', '/users', tok);
    assert.equal(ok.headers.get('ratelimit-limit'), '800');
    tw.injectFault({ kind: '429', resetSec: 7 });
    const inj = await helix(tw, 'GET', '/users', tok);
    assert.equal(inj.status, 429);
    assert.equal(inj.headers.get('ratelimit-remaining'), '0');
    const reset = Number(inj.headers.get('ratelimit-reset'));
    assert.ok(reset >= Math.floor(Date.now() / 1000) + 5 && reset <= Math.ceil(Date.now() / 1000) + 8, String(reset));
  } finally {
    await tw.stop();
  }
});

test('Helix users, streams, streams/key, channels, search/categories, chat/messages', async () => {
  const tw = await startFakeTwitch({ echoChat: false });
  try {
    const { access_token: tok } = tw.issueToken({ userId: '141981764', scopes: ALL_SCOPES });
    const u = await helix(tw, 'GET', '/users', tok);
    assert.equal(u.json.data[0].email, 'twitchdev@example.test');
    assert.equal(u.json.data[0].broadcaster_type, 'partner');
    const off = await helix(tw, 'GET', '/streams?user_id=141981764', tok);
    assert.deepEqual(off.json, { data: [], pagination: {} });
    tw.setLive('141981764', { viewer_count: 42, title: 'hello' });
    const on = await helix(tw, 'GET', '/streams?user_id=141981764', tok);
    assert.equal(on.json.data[0].type, 'live');
    assert.equal(on.json.data[0].viewer_count, 42);
    assert.equal(on.json.data[0].title, 'hello');
    assert.match(on.json.data[0].started_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    tw.setViewers('141981764', 7);
    assert.equal((await helix(tw, 'GET', '/streams?user_id=141981764', tok)).json.data[0].viewer_count, 7);

    const key = await helix(tw, 'GET', '/streams/key?broadcaster_id=141981764', tok);
    assert.match(key.json.data[0].stream_key, /^live_141981764_/);
    assert.equal((await helix(tw, 'GET', '/streams/key?broadcaster_id=1', tok)).status, 403);

    const p = await helix(tw, 'PATCH', '/channels?broadcaster_id=141981764', tok, { title: 'new title', game_id: '33214' });
    assert.equal(p.status, 204);
    assert.equal(p.text, '');
    const ch = tw.user('141981764').channel;
    assert.equal(ch.title, 'new title');
    assert.equal(ch.game_name, 'Fortnite');
    assert.equal((await helix(tw, 'PATCH', '/channels?broadcaster_id=141981764', tok, { title: '' })).status, 400);

    const s = await helix(tw, 'GET', '/search/categories?query=fort', tok);
    assert.deepEqual(s.json.data.map((g) => g.name), ['Fortnite']);
    assert.ok(s.json.data[0].box_art_url);

    const c1 = await helix(tw, 'POST', '/chat/messages', tok, { broadcaster_id: '141981764', sender_id: '141981764', message: 'hi' });
    assert.equal(c1.json.data[0].is_sent, true);
    assert.ok(c1.json.data[0].message_id);
    tw.dropNextChat();
    const c2 = await helix(tw, 'POST', '/chat/messages', tok, { broadcaster_id: '141981764', sender_id: '141981764', message: 'held', reply_parent_message_id: 'abc' });
    assert.deepEqual(c2.json.data[0], { message_id: '', is_sent: false, drop_reason: { code: 'msg_rejected', message: 'Your message is being checked by mods and has not been sent.' } });
    assert.equal(tw.chatMessages.length, 2);
    assert.equal(tw.chatMessages[1].reply_parent_message_id, 'abc');
    assert.equal(tw.counters()['POST /chat/messages'], 2);
  } finally {
    await tw.stop();
  }
});

test('EventSub WebSocket: welcome, subscribe with session_id, notification once in the real envelope, 409, revocation', async () => {
  const tw = await startFakeTwitch();
  let c;
  try {
    const types = ['channel.chat.message', 'channel.follow', 'channel.subscribe', 'channel.subscription.gift',
      'channel.subscription.message', 'channel.cheer', 'channel.raid', 'stream.online', 'stream.offline'];
    const s = await userWsSetup(tw, types);
    c = s.c;
    assert.equal(s.welcome.metadata.message_type, 'session_welcome');
    assert.equal(s.welcome.payload.session.status, 'connected');
    assert.equal(s.welcome.payload.session.keepalive_timeout_seconds, 10);
    assert.equal(s.welcome.payload.session.reconnect_url, null);
    assert.match(s.welcome.metadata.message_timestamp, /\.\d{9}Z$/);
    assert.equal(s.created[1].version, '2');
    assert.equal(s.created[0].status, 'enabled');
    assert.equal(s.created[0].transport.session_id, s.sid);
    assert.equal(s.created[0].cost, 0);

    // bad session id, duplicate
    const bad = await helix(tw, 'POST', '/eventsub/subscriptions', s.tok, { type: 'stream.online', version: '1',
      condition: { broadcaster_user_id: '141981764' }, transport: { method: 'websocket', session_id: 'nope' } });
    assert.equal(bad.status, 400);
    const dup = await helix(tw, 'POST', '/eventsub/subscriptions', s.tok, { type: 'stream.online', version: '1',
      condition: { broadcaster_user_id: '141981764' }, transport: { method: 'websocket', session_id: s.sid } });
    assert.equal(dup.status, 409);
    const list = await helix(tw, 'GET', '/eventsub/subscriptions', s.tok);
    assert.equal(list.json.total, 9);
    assert.equal(list.json.total_cost, 0);
    assert.equal(list.json.max_total_cost, 10);

    for (const type of types) {
      const [id] = tw.emit(type);
      const m = await c.next();
      assert.equal(m.metadata.message_id, id);
      assert.equal(m.metadata.message_type, 'notification');
      assert.equal(m.metadata.subscription_type, type);
      assert.equal(m.metadata.subscription_version, type === 'channel.follow' ? '2' : '1');
      assert.equal(m.payload.subscription.type, type);
      assert.equal(m.payload.subscription.transport.session_id, s.sid);
      assert.ok(m.payload.event);
      if (type === 'channel.raid') assert.equal(m.payload.event.to_broadcaster_user_id, '141981764');
      else assert.equal(m.payload.event.broadcaster_user_id, '141981764');
    }
    // chat message details
    tw.emit('channel.chat.message', { reply: true });
    const chat = await c.next();
    const ev = chat.payload.event;
    assert.deepEqual(ev.message.fragments.map((f) => f.type), ['text', 'emote', 'text', 'mention']);
    assert.equal(ev.message.fragments[1].emote.id, '25');
    assert.equal(ev.badges[0].set_id, 'moderator');
    assert.ok(ev.reply.parent_message_id);
    // nothing else came in between: the next message is a fresh marker
    const [marker] = tw.emit('stream.offline');
    assert.equal((await c.next()).metadata.message_id, marker, 'each notification exactly once');

    // stream.online / offline follow setLive / setOffline with notify, scripted over HTTP control too
    tw.setLive('141981764', { notify: true, viewer_count: 3 });
    const onl = await c.next();
    assert.equal(onl.metadata.subscription_type, 'stream.online');
    assert.equal(onl.payload.event.type, 'live');
    assert.equal(onl.payload.event.id, tw.user('141981764').stream.id);
    const r = await fetch(`${tw.controlUrl}/emit`, { method: 'POST',
      body: JSON.stringify({ args: ['channel.raid', { viewers: 12 }, { broadcasterId: '141981764' }] }) });
    const [raidId] = (await r.json()).result;
    const raid = await c.next();
    assert.equal(raid.metadata.message_id, raidId);
    assert.equal(raid.payload.event.viewers, 12);
    assert.deepEqual(tw.emit('channel.raid', {}, { broadcasterId: '999' }), [], 'other broadcasters get nothing');

    // sending chat echoes as channel.chat.message
    const sent = await helix(tw, 'POST', '/chat/messages', s.tok, { broadcaster_id: '141981764', sender_id: '141981764', message: 'echo me' });
    const echo = await c.next();
    assert.equal(echo.payload.event.message.text, 'echo me');
    assert.equal(echo.payload.event.message_id, sent.json.data[0].message_id);

    // duplicates
    tw.duplicateNext(1);
    const [dupId] = tw.emit('channel.follow');
    const d1 = await c.next();
    const d2 = await c.next();
    assert.equal(d1.metadata.message_id, dupId);
    assert.equal(d2.metadata.message_id, dupId);
    tw.emit('channel.cheer', { bits: 5 }, { duplicates: 2 });
    const ids = [await c.next(), await c.next(), await c.next()].map((m) => m.metadata.message_id);
    assert.equal(new Set(ids).size, 1);

    // revocation
    const follow = s.created[1];
    tw.revoke(follow.id);
    const rv = await c.next();
    assert.equal(rv.metadata.message_type, 'revocation');
    assert.equal(rv.metadata.subscription_type, 'channel.follow');
    assert.equal(rv.payload.subscription.status, 'authorization_revoked');
    assert.equal(rv.payload.event, undefined);
    assert.deepEqual(tw.emit('channel.follow'), [], 'nothing to a revoked subscription');

    // delete
    const del = await helix(tw, 'DELETE', `/eventsub/subscriptions?id=${s.created[2].id}`, s.tok);
    assert.equal(del.status, 204);
    assert.equal((await helix(tw, 'DELETE', `/eventsub/subscriptions?id=${s.created[2].id}`, s.tok)).status, 404);

    // client data frame → 4001, subscriptions disabled
    c.ws.send('hello');
    const cl = await c.closed;
    assert.equal(cl.code, 4001);
    const after = await helix(tw, 'GET', `/eventsub/subscriptions?subscription_id=${s.created[0].id}`, s.tok);
    assert.equal(after.json.data[0].status, 'websocket_received_inbound_traffic');
  } finally {
    c?.close();
    await tw.stop();
  }
});

test('EventSub keepalive when idle, silence on command, 4003 when unused, close codes on command, dropped socket', async () => {
  const tw = await startFakeTwitch({ keepaliveSeconds: 0.3, unusedTimeoutMs: 300 });
  const clients = [];
  try {
    // keepalive_timeout_seconds in the query is clamped to 10..600 like Twitch
    const q = wsClient(`${tw.wsUrl}?keepalive_timeout_seconds=3`);
    clients.push(q);
    assert.equal((await q.next()).payload.session.keepalive_timeout_seconds, 10);
    assert.equal((await q.closed).code, 4003, 'no subscription within the unused timeout');

    tw.setUnusedTimeout(0);
    const s = await userWsSetup(tw, ['stream.online']);
    clients.push(s.c);
    const ka = await s.c.next(2000);
    assert.equal(ka.metadata.message_type, 'session_keepalive');
    assert.deepEqual(ka.payload, {});
    const ka2 = await s.c.next(2000);
    assert.equal(ka2.metadata.message_type, 'session_keepalive');
    assert.notEqual(ka2.metadata.message_id, ka.metadata.message_id);

    tw.setSilent(s.sid, true);
    // wait until every keepalive the fake sent before going silent has arrived, then expect none
    const sent = tw.counters().keepalives;
    await until(() => s.c.all.filter((m) => m.metadata.message_type === 'session_keepalive').length >= sent);
    s.c.queue.length = 0;
    // the next keepalive would be due within 240 ms; a silent socket stays quiet for three times that
    await assert.rejects(s.c.next(800), /timeout/);
    tw.setSilent(s.sid, false);
    assert.equal((await s.c.next(2000)).metadata.message_type, 'session_keepalive');

    for (const code of [4000, 4002, 4005, 4006, 4007]) {
      const x = await userWsSetup(tw, ['stream.online']);
      clients.push(x.c);
      await fetch(`${tw.controlUrl}/closeSession`, { method: 'POST', body: JSON.stringify({ args: [x.sid, code] }) });
      assert.equal((await x.c.closed).code, code);
    }
    const y = await userWsSetup(tw, ['stream.online']);
    clients.push(y.c);
    tw.dropSocket(y.sid);
    assert.equal((await y.c.closed).code, 1006, 'no close frame');
    const sub = tw.subscriptions().find((z) => z.id === y.created[0].id);
    assert.equal(sub.status, 'websocket_network_error');
    // a subscription for a closed session is refused
    const r = await helix(tw, 'POST', '/eventsub/subscriptions', y.tok, { type: 'stream.offline', version: '1',
      condition: { broadcaster_user_id: '141981764' }, transport: { method: 'websocket', session_id: y.sid } });
    assert.equal(r.status, 400);
  } finally {
    for (const c of clients) c.close();
    await tw.stop();
  }
});

test('EventSub session_reconnect: new socket keeps the subscriptions; 4004 when the client stays; 4007 on a bad reconnect', async () => {
  const tw = await startFakeTwitch();
  const clients = [];
  try {
    const s = await userWsSetup(tw, ['channel.follow']);
    clients.push(s.c);
    const url = tw.sendReconnect(s.sid);
    const rc = await s.c.next();
    assert.equal(rc.metadata.message_type, 'session_reconnect');
    assert.equal(rc.payload.session.status, 'reconnecting');
    assert.equal(rc.payload.session.keepalive_timeout_seconds, null);
    assert.equal(rc.payload.session.reconnect_url, url);
    // notifications still reach the old socket until the new one is welcomed
    const [before] = tw.emit('channel.follow');
    assert.equal((await s.c.next()).metadata.message_id, before);

    const n = wsClient(url);
    clients.push(n);
    const w = await n.next();
    assert.equal(w.metadata.message_type, 'session_welcome');
    assert.equal(w.payload.session.id, s.sid);
    s.c.close();
    await s.c.closed;
    const [afterId] = tw.emit('channel.follow');
    const m = await n.next();
    assert.equal(m.metadata.message_id, afterId);
    assert.equal(s.c.queue.length, 0);
    assert.equal(tw.subscriptions()[0].status, 'enabled');
    // resubscribing on the moved session is a duplicate
    const dup = await helix(tw, 'POST', '/eventsub/subscriptions', s.tok, { type: 'channel.follow', version: '2',
      condition: { broadcaster_user_id: '141981764', moderator_user_id: '141981764' }, transport: { method: 'websocket', session_id: s.sid } });
    assert.equal(dup.status, 409);

    // reusing the reconnect URL → 4007
    const again = wsClient(url);
    clients.push(again);
    assert.equal((await again.closed).code, 4007);

    // client does not move → old socket closed with 4004 after the grace time (30 s, shortened)
    tw.setReconnectGrace(300);
    tw.sendReconnect(s.sid);
    assert.equal((await n.next()).metadata.message_type, 'session_reconnect');
    assert.equal((await n.closed).code, 4004);
    assert.equal(tw.counters().ws_reconnects, 1);
  } finally {
    for (const c of clients) c.close();
    await tw.stop();
  }
});

test('webhook transport: challenge, HMAC signature, retries, duplicates, reordering, revocation', async () => {
  const tw = await startFakeTwitch();
  const secret = 'webhook-secret-0123456789';
  const rx = await webhookReceiver(secret);
  const refuse = await webhookReceiver(secret, { answerChallenge: false });
  try {
    const cc = await tokenPost(tw, { grant_type: 'client_credentials', client_id: tw.clientId, client_secret: tw.clientSecret });
    const app = cc.json.access_token;
    // a user token cannot create webhook subscriptions, an app token cannot create websocket ones
    const { access_token: user } = tw.issueToken({ userId: '141981764', scopes: ALL_SCOPES });
    const body = { type: 'channel.cheer', version: '1', condition: { broadcaster_user_id: '141981764' },
      transport: { method: 'webhook', callback: rx.url, secret } };
    assert.equal((await helix(tw, 'POST', '/eventsub/subscriptions', user, body)).status, 400);
    assert.equal((await helix(tw, 'POST', '/eventsub/subscriptions', app, { ...body, transport: { ...body.transport, secret: 'short' } })).status, 400);

    const cr = await helix(tw, 'POST', '/eventsub/subscriptions', app, body);
    assert.equal(cr.status, 202);
    const sub = cr.json.data[0];
    assert.equal(sub.status, 'webhook_callback_verification_pending');
    assert.equal(sub.transport.callback, rx.url);
    assert.equal(sub.transport.secret, undefined, 'the secret is never echoed');
    assert.equal(cr.json.max_total_cost, 10000);
    await tw.waitForSubscription((x) => x.id === sub.id && x.status === 'enabled');
    assert.equal(rx.got.length, 1);
    const ch = rx.got[0];
    assert.equal(ch.headers['twitch-eventsub-message-type'], 'webhook_callback_verification');
    assert.equal(ch.sigOk, true);
    assert.ok(ch.body.challenge);
    assert.equal(ch.body.subscription.id, sub.id);
    assert.equal(ch.body.subscription.status, 'webhook_callback_verification_pending');
    assert.equal((await helix(tw, 'POST', '/eventsub/subscriptions', app, body)).status, 409);

    // a callback that does not echo the challenge → verification failed
    const cr2 = await helix(tw, 'POST', '/eventsub/subscriptions', app, { ...body, transport: { ...body.transport, callback: refuse.url } });
    await tw.waitForSubscription((x) => x.id === cr2.json.data[0].id && x.status === 'webhook_callback_verification_failed');

    // a signed notification, verified independently
    const [id] = tw.emit('channel.cheer', { bits: 250 });
    await tw.flushWebhooks();
    const n = rx.got[1];
    const h = n.headers;
    assert.equal(n.sigOk, true);
    assert.equal(h['twitch-eventsub-message-id'], id);
    assert.equal(h['twitch-eventsub-message-retry'], '0');
    assert.equal(h['twitch-eventsub-message-type'], 'notification');
    assert.equal(h['twitch-eventsub-subscription-type'], 'channel.cheer');
    assert.equal(h['twitch-eventsub-subscription-version'], '1');
    assert.match(h['twitch-eventsub-message-timestamp'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.match(h['twitch-eventsub-message-signature'], /^sha256=[0-9a-f]{64}$/);
    assert.equal(n.body.event.bits, 250);
    assert.equal(n.body.subscription.id, sub.id);
    assert.equal(rx.got.length, 2);

    // duplicates keep the id
    tw.duplicateNext(1);
    const [dupId] = tw.emit('channel.cheer');
    await tw.flushWebhooks();
    assert.deepEqual(rx.got.slice(2).map((g) => g.headers['twitch-eventsub-message-id']), [dupId, dupId]);

    // reordering: held, then delivered newest first
    tw.setWebhookReorder(true);
    const [a] = tw.emit('channel.cheer', { bits: 1 });
    const [b] = tw.emit('channel.cheer', { bits: 2 });
    await tw.releaseWebhooks();
    assert.deepEqual(rx.got.slice(4).map((g) => g.headers['twitch-eventsub-message-id']), [b, a]);
    tw.setWebhookReorder(false);

    // revocation
    tw.revoke(sub.id, 'user_removed');
    await tw.flushWebhooks();
    const rv = rx.got[6];
    assert.equal(rv.headers['twitch-eventsub-message-type'], 'revocation');
    assert.equal(rv.body.subscription.status, 'user_removed');
    assert.equal(rv.sigOk, true);

    // a failing callback is retried with the same id and Twitch-Eventsub-Message-Retry counting up
    const cr3 = await helix(tw, 'POST', '/eventsub/subscriptions', app, { ...body, type: 'stream.online', version: '1' });
    await tw.waitForSubscription((x) => x.id === cr3.json.data[0].id && x.status === 'enabled');
    rx.ctl.failNotifications = 2;
    const [rid] = tw.emit('stream.online');
    await tw.flushWebhooks();
    const tries = rx.got.filter((g) => g.headers['twitch-eventsub-message-id'] === rid);
    assert.deepEqual(tries.map((g) => g.headers['twitch-eventsub-message-retry']), ['0', '1', '2']);
    assert.ok(tries.every((g) => g.sigOk));
    assert.deepEqual(tw.webhookDeliveries.filter((d) => d.message_id === rid).map((d) => d.status), [500, 500, 204]);

    const list = await helix(tw, 'GET', '/eventsub/subscriptions', app);
    assert.equal(list.json.total, 3);
    assert.equal(tw.webhookDeliveries.length, 12);
  } finally {
    await tw.stop();
    await rx.close();
    await refuse.close();
  }
});
