// Platforms while live, end to end: the real server + the fake Cloudflare (outputs) + the fake
// Twitch (OAuth, Helix, EventSub WebSocket). A connected Twitch account is a destination; going
// live starts its monitor (EventSub socket + subscriptions), pushes the title and samples
// viewers; every event type reaches its dashboard topic exactly once (duplicates dropped); chat
// is sent (and replied to) through POST /api/chat with each platform's fate; the webhook
// transport is verified (signature, replay window, challenge); a Twitch outage never touches
// the stream. Needs the Twitch platform (vtable + monitor), the accounts and the connect flow.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { startPostgres } from '../lib/harness.mjs';
import {
  bootLive, newUser, inputUid, setInput, waitState, outputsOf, dashSocket, waitFor, sleep,
  testCleanExit, admin,
} from '../lib/livelib.mjs';
import { startFakeTwitch } from '../fakes/twitch.mjs';

const WH_SECRET = 'twitch-webhook-secret-for-tests-01';
const INGEST = 'rtmp://127.0.0.1:1935/app';
const TW_USER = '141981764'; // the fake's default broadcaster (twitchdev)

function twitchEnv(tw, extra = {}) {
  return {
    TWITCH_CLIENT_ID: tw.clientId,
    TWITCH_CLIENT_SECRET: tw.clientSecret,
    TWITCH_AUTH_URL: tw.authUrl,
    TWITCH_API_URL: tw.apiUrl,
    TWITCH_EVENTSUB_WS_URL: tw.wsUrl,
    TWITCH_INGEST_URL: INGEST,
    PLATFORM_VIEWERS_INTERVAL: '400',
    ...extra,
  };
}

// The OAuth connect flow through the fake (auto-approve as twUser), as the user's browser: its
// session cookies plus whatever the flow sets (the state is bound to the browser).
async function connectTwitch(ctx, u, tw, twUser = TW_USER) {
  tw.setAuthorize('approve', twUser);
  const base = ctx.srv.url;
  const jar = new Map(u.cookie.split('; ').map((c) => c.split('=')));
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const keep = (r) => { for (const c of r.headers.getSetCookie()) { const [kv] = c.split(';'); const i = kv.indexOf('='); jar.set(kv.slice(0, i), kv.slice(i + 1)); } };
  let r = await fetch(`${base}/auth/twitch/connect`, { headers: { cookie: cookie() }, redirect: 'manual' });
  assert.equal(r.status, 302, `connect: ${r.status} ${await r.text()}`);
  keep(r);
  r = await fetch(r.headers.get('location'), { redirect: 'manual' });
  assert.equal(r.status, 302, 'the fake authorizes');
  const cb = r.headers.get('location');
  assert.ok(cb.startsWith(`${base}/auth/twitch/callback`), cb);
  r = await fetch(cb, { headers: { cookie: cookie() }, redirect: 'manual' });
  assert.equal(r.status, 302);
  assert.match(r.headers.get('location'), /connected=twitch/);
}

function sign(secret, id, ts, body) {
  return 'sha256=' + crypto.createHmac('sha256', secret).update(id + ts + body).digest('hex');
}

async function postTwitchWebhook(ctx, { type = 'notification', body, id = crypto.randomUUID(), ts = new Date().toISOString(), secret = WH_SECRET, signature } = {}) {
  const text = JSON.stringify(body);
  const r = await fetch(`${ctx.srv.url}/webhooks/twitch`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'twitch-eventsub-message-id': id,
      'twitch-eventsub-message-timestamp': ts,
      'twitch-eventsub-message-signature': signature || sign(secret, id, ts, text),
      'twitch-eventsub-message-type': type,
      'twitch-eventsub-message-retry': '0',
      'twitch-eventsub-subscription-type': body.subscription?.type || 'channel.follow',
      'twitch-eventsub-subscription-version': body.subscription?.version || '2',
    },
    body: text,
  });
  return { status: r.status, text: await r.text(), type: r.headers.get('content-type') };
}

function whSub(type, version = '1') {
  return { id: crypto.randomUUID(), status: 'enabled', type, version, cost: 0,
    condition: { broadcaster_user_id: TW_USER },
    transport: { method: 'webhook', callback: 'https://example.com/webhooks/twitch' },
    created_at: new Date().toISOString() };
}

const countOn = (sock, topic, event, pred = () => true) =>
  sock.msgs.filter((m) => m.topic === topic && m.event === event && pred(m.payload)).length;

describe('platforms while live (fake Twitch + fake Cloudflare)', () => {
  let ctx; let tw; let u; let sock; let dest; let uid; let streamId;
  const earlier = []; // messages of the dashboard sockets closed before the last one
  before(async () => {
    tw = await startFakeTwitch({ keepaliveSeconds: 2 });
    ctx = await bootLive({ env: twitchEnv(tw, { TWITCH_WEBHOOK_SECRET: WH_SECRET }) });
    ctx.secrets.add(tw.clientSecret);
    ctx.secrets.add(WH_SECRET);
    u = await newUser(ctx);
  });
  after(async () => { await ctx?.stop(); await tw?.stop(); });

  test('webhook: no platform needed for signature, replay window and challenge', async () => {
    const body = { subscription: whSub('channel.follow', '2'), challenge: 'pogchamp-kappa-360noscope-vohiyo' };
    let r = await postTwitchWebhook(ctx, { type: 'webhook_callback_verification', body });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'pogchamp-kappa-360noscope-vohiyo');
    assert.match(r.type, /^text\/plain/);
    r = await postTwitchWebhook(ctx, { type: 'webhook_callback_verification', body, secret: 'not-the-secret-at-all' });
    assert.equal(r.status, 403, 'bad signature');
    const old = new Date(Date.now() - 11 * 60 * 1000).toISOString();
    r = await postTwitchWebhook(ctx, { type: 'webhook_callback_verification', body, ts: old });
    assert.equal(r.status, 403, 'older than 10 minutes');
    r = await postTwitchWebhook(ctx, { type: 'revocation', body: { subscription: { ...whSub('channel.follow', '2'), status: 'authorization_revoked' } } });
    assert.equal(r.status, 204);
    assert.match(ctx.logText(), /twitch webhook subscription revoked/);
  });

  test('POST /api/chat validates its input', async () => {
    for (const body of [{}, { text: '' }, { text: 'x'.repeat(501) }, { text: 'hi', platforms: 'twitch' },
      { text: 'hi', platforms: ['nope'] }, { text: 'hi', reply_to: '' }]) {
      const r = await u.api('POST', '/api/chat', body);
      assert.equal(r.status, 422, `${JSON.stringify(body).slice(0, 60)}: ${r.text}`);
    }
    const r = await u.api('POST', '/api/chat', { text: 'nobody to send to' });
    assert.equal(r.status, 404, 'nothing connected yet');
  });

  test('a connected Twitch account is a destination (no key, not editable here)', async () => {
    await connectTwitch(ctx, u, tw);
    const r = await u.api('GET', '/api/destinations');
    assert.equal(r.status, 200, r.text);
    dest = r.json.destinations.find((d) => d.platform === 'twitch');
    assert.ok(dest, r.text);
    assert.equal(dest.managed, true);
    assert.equal(dest.stream_key, null, 'no stored key: fetched from Twitch at each start');
    assert.equal(dest.url, 'platform:twitch');
    const inStatus = (await u.stream()).destinations.find((d) => d.id === dest.id);
    assert.equal(inStatus.managed, true);
    assert.equal(inStatus.stream_key, null, 'GET /api/stream shows no key for it either');
    assert.equal((await u.api('PATCH', `/api/destinations/${dest.id}`, { name: 'x' })).status, 409);
    assert.equal((await u.api('DELETE', `/api/destinations/${dest.id}`)).status, 409);
    assert.equal((await u.api('POST', `/api/destinations/${dest.id}/reveal`)).status, 409);
  });

  test('category picker: GET /api/platforms/twitch/categories?query=', async () => {
    const r = await u.api('GET', '/api/platforms/twitch/categories?query=fort');
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.categories.find((c) => c.id === '33214' && c.name === 'Fortnite'), r.text);
    assert.equal((await u.api('GET', '/api/platforms/twitch/categories')).status, 422);
    assert.equal((await u.api('GET', '/api/platforms/nope/categories?query=x')).status, 404);
    assert.ok(tw.calls.find((c) => c.path.includes('/search/categories')));
  });

  test('no ingest from Twitch at Start: that output fails like any other (partial_failure)', async () => {
    uid = await inputUid(u);
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    const custom = await u.addDest('custom-one');
    tw.injectFault({ kind: '5xx', count: 1, status: 503, pathIncludes: '/streams/key' });
    const st = await u.api('POST', '/api/stream/start', { destinations: [dest.id, custom.id] });
    assert.equal(st.status, 200, st.text);
    assert.equal(st.json.partial_failure, true, st.text);
    const byDest = Object.fromEntries(st.json.outputs.map((o) => [o.destination_id, o]));
    assert.equal(byDest[custom.id].status, 'active');
    assert.notEqual(byDest[dest.id].status, 'active');
    assert.match(byDest[dest.id].error || '', /platform ingest unavailable/);
    assert.equal(outputsOf(ctx, uid).filter((o) => o.url === INGEST).length, 0, 'no Twitch output created');
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
    await waitState(u, 'ready');
    assert.equal((await u.api('DELETE', `/api/destinations/${custom.id}`)).status, 204);
  });

  test('going live: ingest fetched, monitor + subscriptions, title pushed', async () => {
    await waitState(u, 'ready');
    const bad = await u.api('PUT', '/api/stream/metadata', { title: 'x', categories: { twitch: '1; DROP' } });
    assert.equal(bad.status, 422, bad.text);
    const md = await u.api('PUT', '/api/stream/metadata', { title: 'Go live title', categories: { twitch: '509658' } });
    assert.equal(md.status, 200, md.text);
    assert.deepEqual(md.json.categories, { twitch: '509658' });
    sock = await dashSocket(ctx, u);
    for (const t of [`chat:${u.id}`, `alertbox:${u.id}`, `platform:twitch:${u.id}`, `user_stream:${u.id}:statistics`]) {
      sock.send({ type: 'subscribe', topic: t });
      await sock.next((m) => m.topic === t && m.event === 'subscribed');
    }
    const st = await u.api('POST', '/api/stream/start', { destinations: [dest.id] });
    assert.equal(st.status, 200, st.text);
    streamId = st.json.stream_id;
    const outs = outputsOf(ctx, uid);
    assert.equal(outs.length, 1);
    assert.equal(outs[0].url, INGEST);
    const key = tw.user(TW_USER).streamKey;
    ctx.secrets.add(key);
    assert.equal(outs[0].streamKey, key, 'the key from /helix/streams/key reaches the output');
    await tw.waitForSession();
    for (const type of ['channel.chat.message', 'channel.follow', 'channel.subscribe', 'channel.subscription.gift',
      'channel.subscription.message', 'channel.cheer', 'channel.raid', 'stream.online', 'stream.offline',
      'channel.chat.message_delete']) {
      await tw.waitForSubscription((s) => s.type === type && s.status === 'enabled');
    }
    await sock.next((m) => m.topic === `platform:twitch:${u.id}` && m.event === 'status' && m.payload.status === 'connected');
    const patch = await waitFor(() => tw.calls.find((c) => c.method === 'PATCH' && c.path.includes('/channels') &&
      JSON.stringify(c.body || '').includes('Go live title')), { what: 'title PATCH at go-live' });
    const pb = typeof patch.body === 'string' ? JSON.parse(patch.body) : patch.body;
    assert.equal(pb.game_id, '509658', 'the chosen category is pushed with the title');
    assert.equal(tw.user(TW_USER).channel.game_id, '509658');
  });

  test('every event type reaches its topic exactly once (duplicates dropped)', async () => {
    tw.emit('channel.chat.message', { message_id: 'chat-1', message: { text: 'hello streamer', fragments: [{ type: 'text', text: 'hello streamer' }] } }, { duplicates: 2 });
    const alerts = [
      ['channel.follow', 'follow'], ['channel.subscribe', 'subscription'], ['channel.subscription.gift', 'gift_subscription'],
      ['channel.subscription.message', 'subscription'], ['channel.cheer', 'cheer'], ['channel.raid', 'raid'],
    ];
    const ids = [];
    for (const [type] of alerts) ids.push(...tw.emit(type, {}, { duplicates: 1 }));
    await sock.next((m) => m.topic === `chat:${u.id}` && m.event === 'message' && m.payload.id === 'chat-1');
    for (const id of ids) await sock.next((m) => m.topic === `alertbox:${u.id}` && m.payload.id === id);
    await sleep(300);
    assert.equal(countOn(sock, `chat:${u.id}`, 'message', (p) => p.id === 'chat-1'), 1);
    const chat = sock.msgs.find((m) => m.topic === `chat:${u.id}` && m.payload.id === 'chat-1').payload;
    assert.equal(chat.platform, 'twitch');
    assert.equal(chat.text, 'hello streamer');
    assert.equal(chat.raw, undefined, 'raw is not published');
    for (let i = 0; i < ids.length; i++) {
      assert.equal(countOn(sock, `alertbox:${u.id}`, 'alert', (p) => p.id === ids[i]), 1, alerts[i][0]);
      assert.equal(sock.msgs.find((m) => m.payload?.id === ids[i]).payload.type, alerts[i][1]);
    }
  });

  test('a moderator removal reaches chat as `deleted`, once (socket and webhook)', async () => {
    await tw.waitForSubscription((s) => s.type === 'channel.chat.message_delete' && s.status === 'enabled');
    tw.emit('channel.chat.message', { message_id: 'chat-del-1', message: { text: 'spam', fragments: [{ type: 'text', text: 'spam' }] } });
    await sock.next((m) => m.topic === `chat:${u.id}` && m.event === 'message' && m.payload.id === 'chat-del-1');
    tw.emit('channel.chat.message_delete', { message_id: 'chat-del-1' }, { duplicates: 1 });
    const del = await sock.next((m) => m.topic === `chat:${u.id}` && m.event === 'deleted' && m.payload.id === 'chat-del-1');
    assert.equal(del.payload.platform, 'twitch');
    // the same removal by webhook (another transport, another notification id) is not shown twice
    const ev = { broadcaster_user_id: TW_USER, broadcaster_user_login: 'twitchdev', broadcaster_user_name: 'TwitchDev',
      target_user_id: '777', target_user_login: 'spammer', target_user_name: 'Spammer', message_id: 'chat-del-1' };
    const body = { subscription: whSub('channel.chat.message_delete'), event: ev };
    assert.equal((await postTwitchWebhook(ctx, { body })).status, 204);
    await sleep(300);
    assert.equal(countOn(sock, `chat:${u.id}`, 'deleted', (p) => p.id === 'chat-del-1'), 1);
  });

  test('webhook notification for the live broadcaster: delivered once, replays dropped', async () => {
    const ev = { user_id: '555', user_login: 'hooky', user_name: 'Hooky', broadcaster_user_id: TW_USER,
      broadcaster_user_login: 'twitchdev', broadcaster_user_name: 'TwitchDev', followed_at: new Date().toISOString() };
    const id = crypto.randomUUID();
    const body = { subscription: whSub('channel.follow', '2'), event: ev };
    assert.equal((await postTwitchWebhook(ctx, { body, id })).status, 204);
    assert.equal((await postTwitchWebhook(ctx, { body, id })).status, 204, 'a redelivery is accepted');
    await sock.next((m) => m.topic === `alertbox:${u.id}` && m.payload.id === id);
    await sleep(200);
    assert.equal(countOn(sock, `alertbox:${u.id}`, 'alert', (p) => p.id === id), 1);
    assert.equal(countOn(sock, `alertbox:${u.id}`, 'alert', (p) => p.name === 'Hooky'), 1);
  });

  test('title pushed again on a metadata change while live', async () => {
    assert.equal((await u.api('PUT', '/api/stream/metadata', { title: 'Second title', categories: { twitch: '27471' } })).status, 200);
    await waitFor(() => tw.calls.find((c) => c.method === 'PATCH' && c.path.includes('/channels') &&
      JSON.stringify(c.body || '').includes('Second title')), { what: 'title PATCH while live' });
    await waitFor(() => tw.user(TW_USER).channel.game_id === '27471', { what: 'category changed on Twitch' });
  });

  test('POST /api/chat: sent, reply on the parent platform, is_sent:false surfaced', async () => {
    let r = await u.api('POST', '/api/chat', { text: 'hello chat' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.results.length, 1);
    assert.equal(r.json.results[0].platform, 'twitch');
    assert.equal(r.json.results[0].sent, true);
    assert.ok(r.json.results[0].message_id);
    assert.ok(tw.chatMessages.find((m) => m.message === 'hello chat'));

    r = await u.api('POST', '/api/chat', { text: 'thanks!', reply_to: 'chat-1' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.results[0].sent, true);
    const sent = tw.chatMessages.find((m) => m.message === 'thanks!');
    assert.ok(sent);
    assert.equal(sent.reply_parent_message_id, 'chat-1');

    assert.equal((await u.api('POST', '/api/chat', { text: 'x', reply_to: 'no-such-message' })).status, 404);

    tw.dropNextChat(1, { code: 'msg_duplicate', message: 'The message is a duplicate.' });
    r = await u.api('POST', '/api/chat', { text: 'again', platforms: ['twitch'] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.results[0].sent, false);
    assert.match(r.json.results[0].reason, /duplicate/i, 'the platform\'s drop reason');
  });

  test('viewers sampled on the statistics topic', async () => {
    tw.setLive(TW_USER, { viewer_count: 7 });
    await sock.next((m) => m.topic === `user_stream:${u.id}:statistics` && m.event === 'viewers' && m.payload.total === 7);
    tw.setViewers(TW_USER, 13);
    const v = await sock.next((m) => m.topic === `user_stream:${u.id}:statistics` && m.payload?.total === 13);
    assert.equal(v.payload.platforms.twitch, 13);
    // GET /api/stream's stats: the last sample and the peak so far
    const st = await waitFor(async () => {
      const r = await u.api('GET', '/api/stream');
      return r.json?.stats?.viewers?.total === 13 && r.json.stats;
    }, { what: 'stats in GET /api/stream' });
    assert.equal(st.viewers.platforms.twitch, 13);
    assert.equal(st.peak_viewers, 13);
  });

  test('a Twitch outage (5xx, dropped socket) never stops the stream', async () => {
    // Helix 5xx on the viewers call and a dropped EventSub socket: the monitor reconnects and
    // resubscribes, chat flows again, the stream never notices
    const sessions = tw.sessions().length;
    tw.injectFault({ kind: '5xx', count: 3, status: 503, pathIncludes: '/helix/streams' });
    tw.dropSocket();
    await sleep(1200);
    assert.equal((await u.stream()).state, 'streaming');
    await waitFor(() => tw.sessions().length > sessions && tw.sessions().some((s) => s.status !== 'closed'),
      { timeout: 15000, what: 'the monitor reconnects' });
    await tw.waitForSubscription((s) => s.type === 'channel.chat.message' && s.status === 'enabled', 20000);
    tw.emit('channel.chat.message', { message_id: 'chat-after', message: { text: 'still here', fragments: [{ type: 'text', text: 'still here' }] } });
    await sock.next((m) => m.topic === `chat:${u.id}` && m.payload.id === 'chat-after', 10000);
    const st = await u.stream();
    assert.equal(st.state, 'streaming');
    assert.equal(st.outputs[0].status, 'active', 'the Twitch output is untouched');
  });

  test('a server restart while live: the monitor is back (recovery), events flow again', async () => {
    await sock.close();
    earlier.push(...sock.msgs);
    const r = await ctx.srv.stop();
    assert.equal(r.code, 0, 'clean exit of the first server');
    const sessions = tw.sessions().length;
    await ctx.restart();
    sock = await dashSocket(ctx, u);
    for (const t of [`chat:${u.id}`, `alertbox:${u.id}`, `platform:twitch:${u.id}`, `user_stream:${u.id}:statistics`]) {
      sock.send({ type: 'subscribe', topic: t });
      await sock.next((m) => m.topic === t && m.event === 'subscribed');
    }
    assert.equal((await waitState(u, 'streaming')).stream_id, streamId, 'the same stream, recovered');
    await waitFor(() => tw.sessions().length > sessions && tw.sessions().some((s) => s.status !== 'closed'),
      { timeout: 15000, what: 'a new EventSub session after the restart' });
    await tw.waitForSubscription((s) => s.type === 'channel.chat.message' && s.status === 'enabled', 20000);
    tw.emit('channel.chat.message', { message_id: 'chat-recovered', message: { text: 'back', fragments: [{ type: 'text', text: 'back' }] } });
    await sock.next((m) => m.topic === `chat:${u.id}` && m.payload.id === 'chat-recovered', 10000);
    // the parent of a reply is found in the events table after the restart (memory is gone)
    const rr = await u.api('POST', '/api/chat', { text: 'after restart', reply_to: 'chat-1' });
    assert.equal(rr.status, 200, rr.text);
    assert.equal(tw.chatMessages.find((m) => m.message === 'after restart')?.reply_parent_message_id, 'chat-1');
  });

  test('a refused token: needs_reauth on the platform topic, the stream goes on', async () => {
    tw.failNextRefresh(5);
    tw.expireToken(); // the next Helix call (viewers, every 400 ms) gets 401, the refresh fails
    await sock.next((m) => m.topic === `platform:twitch:${u.id}` && m.payload?.status === 'needs_reauth', 10000);
    const st = await u.stream();
    assert.equal(st.state, 'streaming');
    assert.equal(st.outputs[0].status, 'active');
  });

  test('stop: monitor stopped, peak and average viewers written', async () => {
    // the monitor is in the Registry under the seed's key {platform_monitor, user_id, platform}
    assert.equal((await admin(ctx, 'counts')).json.data.platform_monitor, 1);
    const stop = await u.api('POST', '/api/stream/stop');
    assert.equal(stop.status, 200, stop.text);
    await sock.next((m) => m.topic === `platform:twitch:${u.id}` && m.payload?.status === 'stopped');
    const s = await waitFor(async () => {
      const r = await u.api('GET', `/api/streams/${streamId}`);
      return r.json?.peak_viewers > 0 && r.json;
    }, { what: 'peak viewers' });
    // every sample was published on the statistics topic (the sockets saw them all)
    const totals = [...earlier, ...sock.msgs].filter((m) => m.topic === `user_stream:${u.id}:statistics` && m.event === 'viewers')
      .map((m) => m.payload.total);
    assert.ok(totals.length >= 2, JSON.stringify(totals));
    assert.equal(s.peak_viewers, Math.max(...totals));
    assert.equal(s.peak_viewers, 13);
    assert.equal(s.avg_viewers, Math.round(totals.reduce((a, b) => a + b, 0) / totals.length), JSON.stringify(totals));
    assert.equal((await admin(ctx, 'counts')).json.data.platform_monitor, 0, 'unregistered at the end');
    await sock.close();
  });

  testCleanExit(() => ctx);
});

describe('webhooks without TWITCH_WEBHOOK_SECRET', () => {
  let ctx;
  before(async () => { ctx = await bootLive({}); await newUser(ctx); });
  after(() => ctx?.stop());
  test('POST /webhooks/twitch is 404', async () => {
    const r = await postTwitchWebhook(ctx, { type: 'webhook_callback_verification', body: { subscription: whSub('channel.follow', '2'), challenge: 'abc' } });
    assert.equal(r.status, 404);
  });
  testCleanExit(() => ctx);
});

test('the supervisor\'s SQL on PostgreSQL 15 (unit suite psup_pg)', { timeout: 300000 }, async () => {
  const bin = 'build/asan/unit_tests';
  assert.ok(fs.existsSync(bin), 'build/asan/unit_tests missing: run make asan');
  const pg = await startPostgres();
  try {
    const r = spawnSync(bin, ['--filter', 'psup_pg/*', '--jobs', '1'], {
      env: { ...process.env, SP_TEST_PG_URL: pg.url }, encoding: 'utf8', timeout: 240000,
    });
    const out = (r.stdout || '') + (r.stderr || '');
    const m = out.match(/Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)/);
    assert.ok(m, out);
    assert.equal(Number(m[2]), 1, `the pg test ran and passed: ${m[0]}\n${out.slice(-3000)}`);
    assert.equal(Number(m[3]) + Number(m[4]), 0, out.slice(-3000));
    assert.doesNotMatch(out, /AddressSanitizer|LeakSanitizer|runtime error/);
    assert.equal(r.status, 0, out.slice(-3000));
  } finally {
    pg.stop();
  }
});
