// EventSub by webhook, end to end: the real server with TWITCH_EVENTSUB_TRANSPORT=webhook and its
// own plain-http URL as PUBLIC_URL (allowed outside prod), the fake Twitch and the fake
// Cloudflare. Going live creates every subscription with the app access token (client
// credentials) and transport webhook; the fake verifies the callback (challenge answered by
// POST /webhooks/twitch) and the subscriptions become enabled; no EventSub WebSocket is opened;
// signed deliveries reach the dashboard exactly once (duplicates and redeliveries dropped); the
// end of the stream deletes the subscriptions at the fake. check-config: webhook needs a secret,
// and an https PUBLIC_URL in prod.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { BIN, tmpDir } from '../lib/harness.mjs';
import {
  bootLive, newUser, inputUid, setInput, waitState, dashSocket, waitFor, sleep, testCleanExit,
} from '../lib/livelib.mjs';
import { startFakeTwitch } from '../fakes/twitch.mjs';

const WH_SECRET = 'twitch-webhook-secret-for-tests-02';
const TW_USER = '141981764'; // the fake's default broadcaster (twitchdev)
const TYPES = ['channel.chat.message', 'channel.follow', 'channel.subscribe', 'channel.subscription.gift',
  'channel.subscription.message', 'channel.cheer', 'channel.raid', 'stream.online', 'stream.offline',
  'channel.chat.message_delete'];

async function connectTwitch(ctx, u, tw) {
  tw.setAuthorize('approve', TW_USER);
  const base = ctx.srv.url;
  const jar = new Map(u.cookie.split('; ').map((c) => c.split('=')));
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const keep = (r) => { for (const c of r.headers.getSetCookie()) { const [kv] = c.split(';'); const i = kv.indexOf('='); jar.set(kv.slice(0, i), kv.slice(i + 1)); } };
  let r = await fetch(`${base}/auth/twitch/connect`, { headers: { cookie: cookie() }, redirect: 'manual' });
  assert.equal(r.status, 302, `connect: ${r.status} ${await r.text()}`);
  keep(r);
  r = await fetch(r.headers.get('location'), { redirect: 'manual' });
  assert.equal(r.status, 302, 'the fake authorizes');
  r = await fetch(r.headers.get('location'), { headers: { cookie: cookie() }, redirect: 'manual' });
  assert.equal(r.status, 302);
  assert.match(r.headers.get('location'), /connected=twitch/);
}

const countOn = (sock, topic, event, pred = () => true) =>
  sock.msgs.filter((m) => m.topic === topic && m.event === event && pred(m.payload)).length;
const webhookSubs = (tw) => tw.subscriptions().filter((s) => s.transport.method === 'webhook');

describe('Twitch EventSub by webhook (fake Twitch + fake Cloudflare)', () => {
  let ctx; let tw; let u; let sock; let dest; let uid;
  before(async () => {
    tw = await startFakeTwitch({ keepaliveSeconds: 2 });
    ctx = await bootLive({ env: {
      TWITCH_CLIENT_ID: tw.clientId,
      TWITCH_CLIENT_SECRET: tw.clientSecret,
      TWITCH_AUTH_URL: tw.authUrl,
      TWITCH_API_URL: tw.apiUrl,
      TWITCH_EVENTSUB_WS_URL: tw.wsUrl,
      TWITCH_INGEST_URL: 'rtmp://127.0.0.1:1935/app',
      TWITCH_WEBHOOK_SECRET: WH_SECRET,
      TWITCH_EVENTSUB_TRANSPORT: 'webhook',
    } });
    ctx.secrets.add(tw.clientSecret);
    ctx.secrets.add(WH_SECRET);
    u = await newUser(ctx);
  });
  after(async () => { await ctx?.stop(); await tw?.stop(); });

  test('the callback is the server\'s own (plain http) PUBLIC_URL', () => {
    assert.equal(ctx.env.PUBLIC_URL, ctx.srv.url, 'bootLive: PUBLIC_URL matches HTTP_LISTEN');
    assert.match(ctx.srv.url, /^http:\/\//);
  });

  test('going live: every subscription by webhook with the app token, verified, no socket', async () => {
    await connectTwitch(ctx, u, tw);
    const r = await u.api('GET', '/api/destinations');
    dest = r.json.destinations.find((d) => d.platform === 'twitch');
    assert.ok(dest, r.text);
    uid = await inputUid(u);
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    sock = await dashSocket(ctx, u);
    for (const t of [`chat:${u.id}`, `alertbox:${u.id}`, `platform:twitch:${u.id}`]) {
      sock.send({ type: 'subscribe', topic: t });
      await sock.next((m) => m.topic === t && m.event === 'subscribed');
    }
    const grantsBefore = tw.calls.filter((c) => c.path.endsWith('/token') && String(c.body).includes('client_credentials')).length;
    assert.equal(grantsBefore, 0, 'no app token before anything needs one');
    const st = await u.api('POST', '/api/stream/start', { destinations: [dest.id] });
    assert.equal(st.status, 200, st.text);
    const key = tw.user(TW_USER).streamKey;
    if (key) ctx.secrets.add(key);
    for (const type of TYPES) {
      await tw.waitForSubscription((s) => s.type === type && s.status === 'enabled' && s.transport.method === 'webhook');
    }
    await sock.next((m) => m.topic === `platform:twitch:${u.id}` && m.event === 'status' && m.payload.status === 'connected');
    const subs = webhookSubs(tw);
    assert.equal(subs.length, TYPES.length, JSON.stringify(subs.map((s) => [s.type, s.status])));
    for (const s of subs) {
      assert.equal(s.transport.callback, `${ctx.srv.url}/webhooks/twitch`);
      assert.equal(s.status, 'enabled');
    }
    // each callback was verified by the server: the challenge came back raw as text/plain
    const verifs = tw.webhookDeliveries.filter((d) => d.type === 'webhook_callback_verification');
    assert.equal(verifs.length, TYPES.length);
    for (const v of verifs) {
      assert.equal(v.status, 200);
      assert.equal(v.response, JSON.parse(v.body).challenge);
      assert.match(v.responseType, /^text\/plain/);
    }
    // created with the app token (client credentials, one grant), Client-Id on each
    const grants = tw.calls.filter((c) => c.path.endsWith('/token') && String(c.body).includes('client_credentials'));
    assert.equal(grants.length, 1, 'one app token for every subscription');
    const posts = tw.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/eventsub/subscriptions'));
    assert.equal(posts.length, TYPES.length);
    const bearers = new Set(posts.map((c) => c.headers.authorization));
    assert.equal(bearers.size, 1);
    const appToken = [...bearers][0].replace(/^Bearer /, '');
    ctx.secrets.add(appToken);
    for (const c of posts) assert.equal(c.headers['client-id'], tw.clientId);
    // and no EventSub WebSocket at all
    await sleep(300);
    assert.equal(tw.sessions().length, 0, 'no EventSub WebSocket session in webhook mode');
    assert.equal(tw.subscriptions().filter((s) => s.transport.method === 'websocket').length, 0);
  });

  test('a chat message and a follow reach the dashboard once (duplicates dropped)', async () => {
    const [chatId] = tw.emit('channel.chat.message',
      { message_id: 'wh-chat-1', message: { text: 'hello by webhook', fragments: [{ type: 'text', text: 'hello by webhook' }] } },
      { duplicates: 2 });
    assert.ok(chatId);
    const [followId] = tw.emit('channel.follow', { user_name: 'Hooked' }, { duplicates: 1 });
    assert.ok(followId);
    const chat = await sock.next((m) => m.topic === `chat:${u.id}` && m.event === 'message' && m.payload.id === 'wh-chat-1');
    assert.equal(chat.payload.text, 'hello by webhook');
    assert.equal(chat.payload.platform, 'twitch');
    const follow = await sock.next((m) => m.topic === `alertbox:${u.id}` && m.payload.id === followId);
    assert.equal(follow.payload.type, 'follow');
    const copies = () => tw.webhookDeliveries.filter((d) => d.type === 'notification' && (d.message_id === chatId || d.message_id === followId));
    await waitFor(() => copies().length === 5 && copies().every((d) => d.status !== 0), { what: 'every copy answered' });
    for (const d of copies()) assert.equal(d.status, 204, 'each copy accepted (so none is retried)');
    await sleep(300);
    assert.equal(countOn(sock, `chat:${u.id}`, 'message', (p) => p.id === 'wh-chat-1'), 1);
    assert.equal(countOn(sock, `alertbox:${u.id}`, 'alert', (p) => p.id === followId), 1);
  });

  test('a late copy of a delivered message (as a retry looks: same id) is dropped', async () => {
    // held, then released in reverse order: the same message id twice, one after another event
    tw.setWebhookReorder(true);
    const [id] = tw.emit('channel.cheer', { bits: 250 }, { duplicates: 1 });
    const [id2] = tw.emit('channel.raid', { viewers: 9 });
    tw.releaseWebhooks();
    tw.setWebhookReorder(false);
    await sock.next((m) => m.topic === `alertbox:${u.id}` && m.payload.id === id);
    await sock.next((m) => m.topic === `alertbox:${u.id}` && m.payload.id === id2);
    await sleep(300);
    assert.equal(countOn(sock, `alertbox:${u.id}`, 'alert', (p) => p.id === id), 1);
    assert.equal(countOn(sock, `alertbox:${u.id}`, 'alert', (p) => p.id === id2), 1);
  });

  test('the end of the stream deletes the subscriptions at Twitch', async () => {
    assert.equal(webhookSubs(tw).length, TYPES.length);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitFor(() => webhookSubs(tw).length === 0, { what: 'subscriptions deleted', timeout: 15000 });
    const dels = tw.calls.filter((c) => c.method === 'DELETE' && c.path.endsWith('/eventsub/subscriptions'));
    assert.equal(dels.length, TYPES.length);
    for (const d of dels) assert.equal(d.status, 204);
    await sock.next((m) => m.topic === `platform:twitch:${u.id}` && m.event === 'status' && m.payload.status === 'stopped');
    // a delivery for a subscription that no longer exists cannot happen; one for no live
    // stream is accepted and routed nowhere
    assert.equal(tw.emit('channel.follow').length, 0, 'nothing left to deliver to');
    await sock.close();
  });

  test('live again: the subscriptions come back (then the server stops while live)', async () => {
    await waitState(u, 'ready');
    const st = await u.api('POST', '/api/stream/start', { destinations: [dest.id] });
    assert.equal(st.status, 200, st.text);
    await waitFor(() => webhookSubs(tw).filter((s) => s.status === 'enabled').length === TYPES.length,
      { what: 'subscriptions re-created and verified', timeout: 15000 });
    const grants = tw.calls.filter((c) => c.path.endsWith('/token') && String(c.body).includes('client_credentials'));
    assert.equal(grants.length, 1, 'the app token is cached across streams');
    assert.equal(tw.sessions().length, 0);
  });

  test('a revocation by webhook (authorization_revoked) marks Twitch needs_reauth; the stream goes on', async () => {
    const s2 = await dashSocket(ctx, u);
    const topic = `platform:twitch:${u.id}`;
    s2.send({ type: 'subscribe', topic });
    await s2.next((m) => m.topic === topic && m.event === 'subscribed');
    const sub = webhookSubs(tw).find((x) => x.type === 'channel.follow' && x.status === 'enabled');
    assert.ok(sub, 'an enabled follow subscription');
    tw.revoke(sub.id, 'authorization_revoked');
    const st = await s2.next((m) => m.topic === topic && m.event === 'status' && m.payload.status === 'needs_reauth');
    assert.match(st.payload.error || '', /authorization_revoked/);
    assert.equal((await u.api('GET', '/api/stream')).json.state, 'streaming', 'the stream itself is untouched');
    await s2.close();
  });

  // shutdown with a webhook monitor running: its deletions are canceled with the HTTP client,
  // nothing leaks, no secret (app token included) in the log
  testCleanExit(() => ctx);
});

// `streampai check-config` with env: {code, out}.
function checkConfig(env) {
  const dataDir = tmpDir('sp-whcfg-');
  const r = spawnSync(BIN, ['check-config'], {
    env: { PATH: process.env.PATH, DATA_DIR: dataDir, ASAN_OPTIONS: 'detect_leaks=1:exitcode=86', ...env },
    encoding: 'utf8', timeout: 20000,
  });
  fs.rmSync(dataDir, { recursive: true, force: true });
  return { code: r.status, out: (r.stdout || '') + (r.stderr || '') };
}

const PROD = {
  STREAMPAI_ENV: 'prod',
  TOKEN_SIGNING_SECRET: 'x'.repeat(48),
  SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
  RELAY_API_TOKEN: 'relay-token-for-tests-0123456789',
  TWITCH_CLIENT_ID: 'cid0123456789', TWITCH_CLIENT_SECRET: 'csecret0123456789',
  TWITCH_WEBHOOK_SECRET: WH_SECRET,
};
const transportLine = (out) => out.split('\n').find((l) => l.includes('TWITCH_EVENTSUB_TRANSPORT')) || '';

describe('check-config: TWITCH_EVENTSUB_TRANSPORT', () => {
  test('prod: webhook with a plain-http PUBLIC_URL is refused', () => {
    const r = checkConfig({ ...PROD, PUBLIC_URL: 'http://streampai.example', TWITCH_EVENTSUB_TRANSPORT: 'webhook' });
    assert.notEqual(r.code, 0, r.out);
    assert.match(transportLine(r.out), /❌.*https PUBLIC_URL in prod/, r.out);
  });
  test('prod: https PUBLIC_URL + secret: auto resolves to webhook, accepted', () => {
    const r = checkConfig({ ...PROD, PUBLIC_URL: 'https://streampai.example' });
    assert.equal(r.code, 0, r.out);
    assert.match(transportLine(r.out), /✅.*webhook \(auto\)/, r.out);
    const ws = checkConfig({ ...PROD, PUBLIC_URL: 'https://streampai.example', TWITCH_EVENTSUB_TRANSPORT: 'websocket' });
    assert.equal(ws.code, 0, ws.out);
    assert.match(transportLine(ws.out), /✅.*websocket \(forced\)/, ws.out);
  });
  test('test env: webhook with plain http is allowed; without a secret it is an error', () => {
    const ok = checkConfig({ STREAMPAI_ENV: 'test', PUBLIC_URL: 'http://127.0.0.1:4000', TWITCH_EVENTSUB_TRANSPORT: 'webhook',
      TWITCH_WEBHOOK_SECRET: WH_SECRET });
    assert.equal(ok.code, 0, ok.out);
    assert.match(transportLine(ok.out), /✅.*webhook \(forced\)/, ok.out);
    const auto = checkConfig({ STREAMPAI_ENV: 'test', PUBLIC_URL: 'http://127.0.0.1:4000', TWITCH_WEBHOOK_SECRET: WH_SECRET,
      TWITCH_CLIENT_ID: 'cid0123456789', TWITCH_CLIENT_SECRET: 'csecret0123456789' });
    assert.match(transportLine(auto.out), /✅.*websocket \(auto\)/, 'auto with plain http: the WebSocket');
    const bad = checkConfig({ STREAMPAI_ENV: 'test', TWITCH_EVENTSUB_TRANSPORT: 'webhook' });
    assert.notEqual(bad.code, 0, bad.out);
    assert.match(transportLine(bad.out), /❌.*needs TWITCH_WEBHOOK_SECRET/, bad.out);
    const typo = checkConfig({ STREAMPAI_ENV: 'test', TWITCH_EVENTSUB_TRANSPORT: 'pigeon' });
    assert.notEqual(typo.code, 0, typo.out);
    assert.match(typo.out, /TWITCH_EVENTSUB_TRANSPORT/);
  });
});
