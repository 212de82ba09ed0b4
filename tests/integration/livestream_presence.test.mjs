// Presence and the dashboard socket: multi-tab sessions, the cleanup window,
// a live stream surviving the dashboard closing, and resume after a socket
// drop with no message lost.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootLive, newUser, inputUid, setInput, waitState, admin, dashSocket, waitFor, sleep,
  testCleanExit,
} from '../lib/livelib.mjs';

describe('livestream presence and dashboard resume', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ env: { PRESENCE_CLEANUP_TIMEOUT: '400' } }); });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  const presenceOf = async (u) => (await admin(ctx, 'presence')).json.data.find((p) => p.user_id === u.id);
  const managed = async (u) => (await admin(ctx, 'users')).json.data.includes(u.id);

  test('multi-tab: one manager, cleanup after the window, rejoin cancels', async () => {
    const u = await newUser(ctx);
    const startedBefore = (await admin(ctx, 'counts')).json.data.user_stream_manager;
    const t1 = await dashSocket(ctx, u);
    const t2 = await dashSocket(ctx, u);
    await waitFor(async () => (await presenceOf(u))?.sessions === 2, { what: '2 sessions' });
    assert.ok(await managed(u));
    assert.equal((await admin(ctx, 'counts')).json.data.user_stream_manager, startedBefore + 1, 'one manager for two tabs');
    await t1.close();
    await waitFor(async () => (await presenceOf(u))?.sessions === 1, { what: '1 session' });
    await t2.close();
    await waitFor(async () => (await presenceOf(u))?.cleanup_pending === true, { what: 'cleanup pending' });
    // rejoin inside the window
    const t3 = await dashSocket(ctx, u);
    await sleep(700);
    assert.ok(await managed(u), 'kept: a session came back');
    assert.equal((await presenceOf(u)).sessions, 1);
    await t3.close();
    await waitFor(async () => !(await managed(u)), { timeout: 3000, what: 'manager stopped' });
    assert.equal(await presenceOf(u), undefined);
  });

  test('a ready or live stream keeps its manager when the dashboard closes', async () => {
    const u = await newUser(ctx);
    const t = await dashSocket(ctx, u);
    const uid = await inputUid(u);
    await setInput(ctx, uid, 'connected');
    await waitState(u, 'ready');
    await t.close();
    await sleep(900);
    assert.ok(await managed(u), 'ready: not stopped for absence');
    await setInput(ctx, uid, 'disconnected');
    await waitFor(async () => !(await managed(u)), { timeout: 4000, what: 'stopped once offline' });
  });

  test('socket auth: a bad token or no credential is refused (401) and never counts as presence', async () => {
    const u = await newUser(ctx);
    await assert.rejects(dashSocket(ctx, { ...u, token: u.token.slice(0, -4) + 'AAAA' }), /ws 401/);
    await assert.rejects(dashSocket(ctx, { ...u, token: '' }), /ws 401/);
    assert.equal(await presenceOf(u), undefined);
  });

  test('resume after a socket drop: no message lost, in order', async () => {
    const u = await newUser(ctx);
    const uid = await inputUid(u);
    const topic = `user_stream:${u.id}`;
    const a = await dashSocket(ctx, u);
    a.send({ type: 'subscribe', topic });
    await a.next((m) => m.event === 'subscribed' && m.topic === topic);
    await setInput(ctx, uid, 'connected');
    const first = await a.next((m) => m.topic === topic && m.event === 'state_changed' && m.payload.state === 'ready');
    const lastSeq = first.seq;
    await a.close();
    // changes while no socket is open
    const titles = ['one', 'two', 'three'];
    for (const title of titles) assert.equal((await u.api('PUT', '/api/stream/metadata', { title })).status, 200);
    await setInput(ctx, uid, 'disconnected');
    await waitState(u, 'offline');
    const b = await dashSocket(ctx, u);
    b.send({ type: 'resume', topic, after_seq: lastSeq });
    const done = await b.next((m) => m.topic === topic && m.event === 'resumed');
    const replay = b.msgs.filter((m) => m.topic === topic && m.event === 'state_changed');
    assert.ok(replay.length >= 4, `replayed ${replay.length}`);
    assert.equal(done.payload.replayed, replay.length);
    replay.forEach((m, i) => assert.equal(m.seq, lastSeq + 1 + i, 'contiguous seqs'));
    assert.deepEqual(replay.filter((m) => m.payload.reason === 'metadata').map((m) => m.payload.title), titles);
    assert.equal(replay[replay.length - 1].payload.state, 'offline');
    assert.ok(!JSON.stringify(replay).includes('"stream_key"'), 'no stream key over the socket');
    await b.close();
  });

  testCleanExit(() => ctx);
});

describe('presence over MAX_CONCURRENT_USERS', () => {
  let ctx;
  before(async () => { ctx = await bootLive({ env: { MAX_CONCURRENT_USERS: '1', PRESENCE_CLEANUP_TIMEOUT: '200' } }); });
  after(() => ctx?.stop()); // cleanup only: the clean exit is asserted by the last test

  test('the user over the limit gets close 1013 with a reason; others unaffected', async () => {
    const a = await newUser(ctx);
    const b = await newUser(ctx);
    const ta = await dashSocket(ctx, a);
    await waitFor(async () => (await admin(ctx, 'users')).json.data.includes(a.id), { what: 'a managed' });
    const tb = await dashSocket(ctx, b);
    const closed = await new Promise((resolve) => tb.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    assert.equal(closed.code, 1013);
    assert.match(closed.reason, /MAX_CONCURRENT_USERS/);
    assert.ok(!(await admin(ctx, 'users')).json.data.includes(b.id));
    // a's socket still works
    ta.send({ type: 'ping' });
    await ta.next((m) => m.event === 'pong');
    await ta.close();
    await waitFor(async () => !(await admin(ctx, 'users')).json.data.includes(a.id), { what: 'a cleaned up' });
    const tb2 = await dashSocket(ctx, b);
    await waitFor(async () => (await admin(ctx, 'users')).json.data.includes(b.id), { what: 'b admitted' });
    await tb2.close();
  });

  testCleanExit(() => ctx);
});
