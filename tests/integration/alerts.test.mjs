// The AlertQueue, wired (docs/alerts.md, docs/widgets.md): alerts handed over exactly as the
// platform supervisor does (the TEST_MODE route POST /api/_test/alerts publishes `alert` and
// pushes into the queue), shown one at a time on alertbox:{uid} as `show` with the test tick
// (ALERT_PROCESSING_INTERVAL 10 ms): order by priority then arrival, pacing (duration + gap),
// flood merge (follows, gift bombs), dedupe by id, bounds with drop counting in /metrics,
// per-type filters, controls (pause/resume/skip/clear/replay/test), and kill -9 with alerts
// queued: after the restart each accepted alert is shown exactly once.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tmpDir } from '../lib/harness.mjs';
import { dbExec } from '../lib/authlib.mjs';
import {
  bootLive, newUser, dashSocket, waitFor, sleep, testCleanExit, inputUid, setInput, waitState,
} from '../lib/livelib.mjs';
import { startFakeTwitch } from '../fakes/twitch.mjs';

let n = 0;
const alert = (type, extra = {}) => ({
  id: `ev-${Date.now().toString(36)}-${++n}`, type, platform: 'twitch', name: `viewer${n}`, ts: Date.now(), ...extra,
});

async function setup(ctx) {
  const u = await newUser(ctx);
  const sock = await dashSocket(ctx, u);
  const topic = `alertbox:${u.id}`;
  sock.send({ type: 'subscribe', topic });
  await sock.next((m) => m.topic === topic && m.event === 'subscribed');
  u.topic = topic;
  u.sock = sock;
  u.push = async (...alerts) => {
    const r = await u.api('POST', '/api/_test/alerts', { alerts });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.accepted, alerts.length);
  };
  u.shows = () => sock.msgs.filter((m) => m.topic === topic && m.event === 'show');
  u.ctl = async (what, body) => u.api('POST', `/api/widgets/alertbox/${what}`, body);
  u.config = async (patch) => {
    const r = await u.api('PUT', '/api/widgets/alertbox/config', patch);
    assert.equal(r.status, 200, r.text);
    return r.json.config;
  };
  u.state = async () => (await u.api('GET', '/api/widgets/alertbox/state')).json;
  await u.config({ gap_ms: 0 }); // a skip lets the next one show at the next tick
  // Shows until `count` have arrived, skipping each so the next comes at once.
  u.drain = async (count, { skip = true, timeout = 8000 } = {}) => {
    const got = [];
    let idx = u.shows().length; // shows may arrive faster than this loop: count them by index
    while (got.length < count) {
      await waitFor(() => u.shows().length > idx || null, { timeout, what: `show #${got.length + 1}` });
      const s = u.shows()[idx++];
      got.push(s.payload);
      if (skip) {
        const r = await u.ctl('skip');
        // the alert may have ended by itself already: 409 then, never another error
        assert.ok(r.status === 200 || r.status === 409, `skip ${r.status} ${r.text}`);
      }
    }
    return got;
  };
  return u;
}

async function metric(ctx, result) {
  const t = await (await fetch(`${ctx.srv.url}/metrics`)).text();
  const m = t.match(new RegExp(`^streampai_alerts_total\\{result="${result}"\\} (\\d+)$`, 'm'));
  assert.ok(m, `metric ${result} missing`);
  return Number(m[1]);
}

describe('AlertQueue', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ env: { LOG_LEVEL: 'info' } }); });

  test('every alert is published as `alert` on arrival and shown once as `show` with its text', async () => {
    const u = await setup(ctx);
    const a = alert('donation', { name: 'Alice', amount: 4.5, currency: 'USD', message: 'hi' });
    await u.push(a);
    const [s] = await u.drain(1);
    const arrived = u.sock.msgs.find((m) => m.topic === u.topic && m.event === 'alert');
    assert.equal(arrived.payload.id, a.id);
    assert.equal(s.alert.id, a.id);
    assert.equal(s.alert.type, 'donation');
    assert.equal(s.text, 'Alice donated 4.50 USD!');
    assert.equal(s.alert.message, 'hi');
    assert.deepEqual(s.names, ['Alice']);
    assert.equal(s.count, 1);
    assert.equal(s.test, false);
    assert.equal(s.replay, false);
    assert.equal(s.duration_ms, 5000);
    assert.ok(Number.isInteger(s.key) && s.key > 0);
    const st = u.sock.msgs.filter((m) => m.topic === u.topic && m.event === 'state');
    assert.ok(st.some((m) => m.payload.current === s.key), 'a state names the alert on screen');
  });

  test('order: priority (donation = cheer > raid > subscription > member > follow), then arrival', async () => {
    const u = await setup(ctx);
    assert.equal((await u.ctl('pause')).json.paused, true);
    const follow = alert('follow'); const member = alert('member'); const sub = alert('subscription', { tier: 1 });
    const raid = alert('raid', { count: 10 }); const d1 = alert('donation', { amount: 5, currency: 'EUR' });
    const cheer = alert('cheer', { amount: 200 }); const d2 = alert('donation', { amount: 1, currency: 'EUR' });
    await u.push(follow, member, sub, raid, d1, cheer, d2);
    await sleep(150);
    assert.equal(u.shows().length, 0, 'nothing shows while paused');
    assert.equal((await u.state()).queued, 7);
    await u.ctl('resume');
    const got = await u.drain(7);
    assert.deepEqual(got.map((s) => s.alert.id), [d1.id, cheer.id, d2.id, raid.id, sub.id, member.id, follow.id]);
  });

  test('pacing: one at a time for its duration, then the gap', async () => {
    const u = await setup(ctx);
    await u.config({ gap_ms: 400, types: { subscription: { duration_ms: 1000 } } });
    const t0 = Date.now();
    await u.push(alert('subscription'), alert('subscription'), alert('subscription'));
    const times = [];
    await waitFor(() => {
      while (times.length < u.shows().length) times.push(Date.now());
      return times.length >= 3 || null;
    }, { timeout: 8000, interval: 5, what: 'three shows' });
    assert.ok(times[0] - t0 < 500, `first shows at once (${times[0] - t0} ms)`);
    for (let i = 1; i < 3; i++) {
      const d = times[i] - times[i - 1];
      assert.ok(d >= 1350 && d < 1900, `show ${i} after ${d} ms (1000 duration + 400 gap)`);
    }
    assert.ok(u.shows().every((s) => s.payload.duration_ms === 1000));
  });

  test('floods merge: 12 follows show once as "12 new followers!", a gift bomb of 50 once with its count', async () => {
    const u = await setup(ctx);
    await u.ctl('pause');
    const follows = Array.from({ length: 12 }, (_, i) => alert('follow', { name: `f${i}` }));
    const gifts = Array.from({ length: 50 }, () => alert('gift_subscription', { name: 'Santa', count: 1, tier: 1 }));
    await u.push(...follows, ...gifts);
    const st = await u.state();
    assert.equal(st.queued, 2);
    assert.equal(st.stats.merged, 11 + 49);
    await u.ctl('resume');
    const got = await u.drain(2);
    assert.equal(got[0].alert.type, 'gift_subscription');
    assert.equal(got[0].count, 50);
    assert.equal(got[0].text, 'Santa gifted 50 subs!');
    assert.equal(got[1].alert.type, 'follow');
    assert.equal(got[1].count, 12);
    assert.equal(got[1].text, '12 new followers!');
    assert.deepEqual(got[1].names, ['f0', 'f1', 'f2', 'f3', 'f4']);
    await sleep(200);
    assert.equal(u.shows().length, 2, 'nothing else shows');
  });

  test('duplicates by platform event id never show twice (waiting, on screen, shown)', async () => {
    const u = await setup(ctx);
    const a = alert('raid', { count: 3 });
    await u.push(a, a);
    await u.drain(1, { skip: false });
    await u.push(a); // while on screen
    await u.ctl('skip');
    await u.push(a); // after it was shown
    await sleep(300);
    assert.equal(u.shows().length, 1);
    assert.equal((await u.state()).stats.duplicates, 3);
  });

  test('per-type filters: a disabled type and amounts under min_amount are not queued', async () => {
    const u = await setup(ctx);
    await u.config({ types: { cheer: { min_amount: 100 }, donation: { min_amount: 2 }, member: { enabled: false } } });
    const before = await metric(ctx, 'filtered');
    const ok = alert('cheer', { amount: 100 });
    await u.push(alert('cheer', { amount: 99 }), alert('donation', { amount: 1.99, currency: 'USD' }), alert('member'), ok);
    const got = await u.drain(1);
    assert.equal(got[0].alert.id, ok.id);
    await sleep(200);
    assert.equal(u.shows().length, 1);
    assert.equal((await u.state()).stats.filtered, 3);
    assert.equal(await metric(ctx, 'filtered') - before, 3);
  });

  test('controls: pause, resume, skip, clear (each publishes state; skip/clear their own events)', async () => {
    const u = await setup(ctx);
    await u.ctl('pause');
    await u.push(alert('raid', { count: 1 }), alert('raid', { count: 2 }), alert('raid', { count: 3 }));
    let r = await u.ctl('skip');
    assert.equal(r.status, 409, 'nothing on screen');
    r = await u.ctl('resume');
    assert.equal(r.json.paused, false);
    const [first] = await u.drain(1, { skip: false });
    r = await u.ctl('skip');
    assert.equal(r.status, 200);
    const sk = await u.sock.next((m) => m.topic === u.topic && m.event === 'skip');
    assert.equal(sk.payload.key, first.key);
    await waitFor(() => u.shows().length === 2 || null, { what: 'the next after skip' });
    await u.ctl('pause');
    r = await u.ctl('clear');
    assert.equal(r.status, 200);
    assert.equal(r.json.queued, 0);
    await u.sock.next((m) => m.topic === u.topic && m.event === 'clear');
    await u.ctl('resume');
    await sleep(300);
    assert.equal(u.shows().length, 2, 'the cleared alert never shows');
    const st = await u.state();
    assert.equal(st.stats.cleared, 1);
    const states = u.sock.msgs.filter((m) => m.topic === u.topic && m.event === 'state');
    assert.ok(states.some((m) => m.payload.paused === true) && states.some((m) => m.payload.paused === false));
  });

  test('test alerts: every type shows with test: true; an unknown type is 422', async () => {
    const u = await setup(ctx);
    const types = ['follow', 'subscription', 'gift_subscription', 'cheer', 'raid', 'super_chat', 'member', 'donation'];
    await u.ctl('pause');
    for (const type of types) {
      const r = await u.ctl('test', { type });
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.key > 0);
    }
    assert.equal((await u.ctl('test', { type: 'hug' })).status, 422);
    assert.equal((await u.ctl('test', {})).status, 422);
    await u.ctl('resume');
    const got = await u.drain(8);
    assert.deepEqual(new Set(got.map((s) => s.alert.type)), new Set(types));
    assert.ok(got.every((s) => s.test === true && s.text.startsWith('TestUser')));
    assert.equal(got.find((s) => s.alert.type === 'raid').text, 'TestUser is raiding with 42 viewers!');
  });

  test('replay: a persisted alert event shows again (replay: true); unknown or another user\'s event 404', async () => {
    const u = await setup(ctx);
    const other = await newUser(ctx);
    const a = alert('cheer', { name: 'Bob', amount: 300 });
    const evId = `11111111-2222-4333-8444-${Date.now().toString(16).padStart(12, '0').slice(-12)}`;
    const payload = JSON.stringify(a).replace(/'/g, "''");
    dbExec(ctx.srv, `INSERT INTO events (id, user_id, platform, platform_event_id, type, payload, seq, created_at) VALUES ('${evId}', '${u.id}', 'twitch', '${a.id}', 'alert', '${payload}', 1, ${Date.now()})`);
    let r = await u.ctl('replay', { event_id: evId });
    assert.equal(r.status, 200, r.text);
    const [s] = await u.drain(1);
    assert.equal(s.replay, true);
    assert.equal(s.alert.id, a.id);
    assert.equal(s.text, 'Bob cheered 300 bits!');
    r = await u.ctl('replay', { event_id: '00000000-0000-4000-8000-000000000000' });
    assert.equal(r.status, 404);
    r = await other.api('POST', '/api/widgets/alertbox/replay', { event_id: evId });
    assert.equal(r.status, 404, 'another user\'s event');
    assert.equal((await u.ctl('replay', {})).status, 422);
  });

  test('the message filter masks links and words; show_message false drops the message', async () => {
    const u = await setup(ctx);
    await u.config({ filter: { links: true, words: ['darn'] } });
    await u.push(alert('donation', { amount: 3, currency: 'USD', message: 'go to evil.com you DARN thing' }));
    let [s] = await u.drain(1);
    assert.equal(s.alert.message, 'go to *** you *** thing');
    await u.config({ show_message: false });
    await u.push(alert('donation', { amount: 3, currency: 'USD', message: 'secret' }));
    [s] = await u.drain(1);
    assert.equal(s.alert.message, undefined);
  });

  testCleanExit(() => ctx);
});

describe('AlertQueue bounds (ALERT_QUEUE_SIZE=5)', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ env: { ALERT_QUEUE_SIZE: '5' } }); });

  test('a full queue drops the oldest lowest priority, counted per user and in /metrics', async () => {
    const u = await setup(ctx);
    await u.ctl('pause');
    const subs = Array.from({ length: 8 }, () => alert('subscription', { tier: 1 }));
    await u.push(...subs);
    let st = await u.state();
    assert.equal(st.queued, 5);
    assert.equal(st.stats.dropped, 3);
    const don = alert('donation', { amount: 10, currency: 'USD' });
    await u.push(don, alert('follow')); // the follow is lower than everything waiting: dropped
    st = await u.state();
    assert.equal(st.queued, 5);
    assert.equal(st.stats.dropped, 5);
    assert.equal(await metric(ctx, 'dropped'), 5);
    await u.ctl('resume');
    const got = await u.drain(5);
    assert.deepEqual(got.map((s) => s.alert.id), [don.id, ...subs.slice(4).map((a) => a.id)]);
  });

  testCleanExit(() => ctx);
});

describe('AlertQueue durability (kill -9)', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ dataDir: tmpDir('sp-alerts-') }); });

  test('alerts queued before kill -9 show after the restart, each accepted alert exactly once', async () => {
    let u = await setup(ctx);
    await u.config({ gap_ms: 0, types: { subscription: { duration_ms: 1000 } } });
    const subs = Array.from({ length: 5 }, (_, i) => alert('subscription', { name: `s${i}` }));
    await u.push(...subs);
    await waitFor(() => u.shows().length >= 2 || null, { timeout: 5000, what: 'two shows' });
    await sleep(300); // between two shows (1000 ms each)
    const before = u.shows().map((m) => m.payload.alert.id);
    await ctx.srv.kill9();
    await ctx.restart();
    const sock = await dashSocket(ctx, u);
    // resume from 0: what this process published before the socket came is replayed too
    sock.send({ type: 'resume', topic: u.topic, after_seq: 0 });
    u.sock = sock;
    const after = [];
    await waitFor(() => {
      const s = sock.msgs.filter((m) => m.topic === u.topic && m.event === 'show');
      after.splice(0, after.length, ...s.map((m) => m.payload.alert.id));
      return before.length + after.length >= 5 || null;
    }, { timeout: 10000, what: 'the rest after the restart' });
    await sleep(1500); // nothing more comes
    const all = [...before, ...sock.msgs.filter((m) => m.topic === u.topic && m.event === 'show').map((m) => m.payload.alert.id)];
    assert.deepEqual([...all].sort(), subs.map((a) => a.id).sort(), `shown: ${all.join(',')}`);
    // the ids stay known: a redelivery after the restart is a duplicate
    u = Object.assign(u, { sock });
    await u.push(subs[0]);
    await sleep(300);
    assert.equal(sock.msgs.filter((m) => m.topic === u.topic && m.event === 'show').length, after.length);
    assert.equal((await u.state()).stats.duplicates, 1);
  });

  testCleanExit(() => ctx);
});

// The real input: a platform's alert (fake Twitch, EventSub by webhook) enters the queue through
// the supervisor's hook; its persisted event can be replayed from GET /api/events.
describe('AlertQueue fed by a platform (fake Twitch)', () => {
  const WH_SECRET = 'twitch-webhook-secret-for-alerts-1';
  const TW_USER = '141981764';
  let ctx; let tw;
  before(async () => {
    tw = await startFakeTwitch({ keepaliveSeconds: 2 });
    ctx = await bootLive({ env: {
      TWITCH_CLIENT_ID: tw.clientId, TWITCH_CLIENT_SECRET: tw.clientSecret, TWITCH_AUTH_URL: tw.authUrl,
      TWITCH_API_URL: tw.apiUrl, TWITCH_EVENTSUB_WS_URL: tw.wsUrl, TWITCH_INGEST_URL: 'rtmp://127.0.0.1:1935/app',
      TWITCH_WEBHOOK_SECRET: WH_SECRET, TWITCH_EVENTSUB_TRANSPORT: 'webhook',
    } });
    ctx.secrets.add(tw.clientSecret);
    ctx.secrets.add(WH_SECRET);
  });
  after(async () => { await tw?.stop(); });

  test('a follow and a cheer from Twitch show once each (a redelivery does not); replay by event id', async () => {
    const u = await setup(ctx);
    tw.setAuthorize('approve', TW_USER);
    const jar = new Map(u.cookie.split('; ').map((c) => c.split('=')));
    const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const keep = (r) => { for (const c of r.headers.getSetCookie()) { const [kv] = c.split(';'); const i = kv.indexOf('='); jar.set(kv.slice(0, i), kv.slice(i + 1)); } };
    let r = await fetch(`${ctx.srv.url}/auth/twitch/connect`, { headers: { cookie: cookie() }, redirect: 'manual' });
    assert.equal(r.status, 302);
    keep(r);
    r = await fetch(r.headers.get('location'), { redirect: 'manual' });
    r = await fetch(r.headers.get('location'), { headers: { cookie: cookie() }, redirect: 'manual' });
    assert.match(r.headers.get('location'), /connected=twitch/);
    const dest = (await u.api('GET', '/api/destinations')).json.destinations.find((d) => d.platform === 'twitch');
    const uid = await inputUid(u);
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    assert.equal((await u.api('POST', '/api/stream/start', { destinations: [dest.id] })).status, 200);
    const key = tw.user(TW_USER).streamKey;
    if (key) ctx.secrets.add(key);
    for (const type of ['channel.follow', 'channel.cheer']) {
      await tw.waitForSubscription((s) => s.type === type && s.status === 'enabled' && s.transport.method === 'webhook');
    }
    await u.ctl('pause'); // both queued before either shows: then priority decides
    const [followId] = tw.emit('channel.follow', { user_name: 'Hooked' }, { duplicates: 1 });
    const [cheerId] = tw.emit('channel.cheer', { bits: 250 });
    for (const id of [followId, cheerId]) await u.sock.next((m) => m.topic === u.topic && m.event === 'alert' && m.payload.id === id);
    await waitFor(async () => (await u.state()).queued === 2 || null, { what: 'both queued' });
    await u.ctl('resume');
    const got = await u.drain(2);
    assert.deepEqual(got.map((s) => s.alert.type), ['cheer', 'follow'], 'priority order');
    assert.equal(got[1].alert.id, followId);
    assert.equal(got[1].text, 'Hooked just followed!');
    assert.equal(got[0].alert.id, cheerId);
    assert.equal(got[0].alert.amount, 250);
    await sleep(300);
    assert.equal(u.shows().length, 2, 'the duplicate delivery never shows');
    let ev;
    await waitFor(async () => {
      const list = (await u.api('GET', '/api/events?limit=50')).json;
      const items = Array.isArray(list) ? list : (list.events || []);
      ev = items.find((e) => (e.payload && e.payload.id === followId) || e.platform_event_id === followId);
      return ev || null;
    }, { what: 'the follow persisted in /api/events' });
    r = await u.ctl('replay', { event_id: ev.id });
    assert.equal(r.status, 200, r.text);
    const [again] = await u.drain(1);
    assert.equal(again.alert.id, followId);
    assert.equal(again.replay, true);
    assert.equal((await u.api('POST', '/api/stream/stop')).status, 200);
  });

  testCleanExit(() => ctx);
});

// The same SQL on PostgreSQL: migration 0003, the durable queue across kill -9, configs,
// widget tokens (create, list, rotate).
describe('AlertQueue and widgets on PostgreSQL', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ postgres: true, dataDir: tmpDir('sp-alerts-pg-') }); });

  test('tokens, config, queued alerts survive kill -9 and show exactly once', async () => {
    let u = await setup(ctx);
    let r = await u.api('GET', '/api/widgets');
    assert.equal(r.status, 200, r.text);
    const tok = new URL(r.json.find((w) => w.type === 'alertbox').url).searchParams.get('token');
    ctx.secrets.add(tok);
    assert.equal((await fetch(`${ctx.srv.url}/widgets/alertbox/config?token=${tok}`)).status, 200);
    r = await u.api('POST', '/api/widgets/alertbox/token');
    assert.equal(r.status, 200, r.text);
    ctx.secrets.add(new URL(r.json.url).searchParams.get('token'));
    assert.equal((await fetch(`${ctx.srv.url}/widgets/alertbox/config?token=${tok}`)).status, 404);
    await u.config({ gap_ms: 0, types: { raid: { duration_ms: 1000, template: 'Raid by {name}' } } });
    const raids = Array.from({ length: 4 }, (_, i) => alert('raid', { name: `r${i}`, count: i + 1 }));
    await u.push(...raids);
    await waitFor(() => u.shows().length >= 1 || null, { what: 'the first show' });
    assert.equal(u.shows()[0].payload.text, 'Raid by r0');
    await sleep(400);
    const before = u.shows().map((m) => m.payload.alert.id);
    await ctx.srv.kill9();
    await ctx.restart();
    const sock = await dashSocket(ctx, u);
    sock.send({ type: 'resume', topic: u.topic, after_seq: 0 });
    const shown = () => sock.msgs.filter((m) => m.topic === u.topic && m.event === 'show').map((m) => m.payload);
    await waitFor(() => before.length + shown().length >= 4 || null, { timeout: 15000, what: 'the rest after the restart' });
    await sleep(1200);
    const all = [...before, ...shown().map((s) => s.alert.id)];
    assert.deepEqual([...all].sort(), raids.map((a) => a.id).sort(), `shown: ${all.join(',')}`);
    assert.ok(shown().every((s) => s.text.startsWith('Raid by ')), 'the saved config is used after the restart');
    u = Object.assign(u, { sock });
    assert.equal((await u.state()).stats.restored, 4 - before.length);
  });

  testCleanExit(() => ctx);
});
