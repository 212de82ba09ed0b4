// Paced fan-out over real sockets (sp_pubsub: at most 64 sockets during a publish, the rest a
// few hundred per loop turn): a topic with hundreds of sockets gets every message in order,
// sockets closed or resuming mid fan-out are handled, another user's small topic is answered
// while the large fan-out is still under way. Publishing uses the test-mode
// {"type":"publish"} socket message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sleep, waitFor } from '../lib/harness.mjs';
import { openWs, sendJson, next } from '../lib/wsutil.mjs';

const BIG = 600;
let srv, publisher;
const big = [];

const metric = async (name) => {
  const body = await (await fetch(srv.url + '/metrics')).text();
  const m = body.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
};

before(async () => {
  srv = await startServer({ env: { PUBLIC_URL: 'http://localhost:5999', EVENT_HISTORY_SIZE: '50', MAX_SOCKETS_PER_USER: '2000' } });
  publisher = await openWs(srv);
  for (let i = 0; i < BIG; i += 100) {
    const batch = await Promise.all(Array.from({ length: 100 }, () => openWs(srv, { path: '/socket?test_user=big' })));
    for (const ws of batch) sendJson(ws, { type: 'subscribe', topic: 'chat:big' });
    await Promise.all(batch.map((ws) => next(ws, (m) => m.event === 'subscribed', 'subscribed', 20000)));
    big.push(...batch);
  }
});

after(async () => {
  for (const ws of big) ws.terminate();
  publisher?.close();
  if (srv) await srv.stop(); // cleanup only: the last test asserts the clean exit
});

const publish = (topic, n) => sendJson(publisher, { type: 'publish', topic, event: 'chat_message', payload: { n, pad: 'x'.repeat(2000) } });
const msgs = (ws, topic = 'chat:big') => ws.inbox.filter((m) => m.event === 'chat_message' && m.topic === topic);

test('every socket of a large topic gets every message once, in order; closed ones are skipped', async () => {
  const d0 = await metric('streampai_pubsub_fanout_deferred_total');
  for (let i = 1; i <= 20; i++) publish('chat:big', i);
  // 100 sockets go away while the fan-out runs
  const gone = big.splice(0, 100);
  for (const ws of gone) ws.terminate();
  await waitFor(() => big.every((ws) => msgs(ws).length >= 20) || null, { timeout: 30000, interval: 50, what: 'all messages' });
  await sleep(200);
  for (const ws of big) {
    const got = msgs(ws);
    assert.deepEqual(got.map((m) => [m.seq, m.payload.n]), Array.from({ length: 20 }, (_, k) => [k + 1, k + 1]));
    ws.inbox.length = 0;
  }
  // the sockets were served after the publishes returned, not all during them
  assert.ok(await metric('streampai_pubsub_fanout_deferred_total') > d0, 'paced fan-out used');
});

test('a small topic is answered while a large fan-out is under way', async () => {
  const small = await openWs(srv, { path: '/socket?test_user=small' });
  sendJson(small, { type: 'subscribe', topic: 'chat:small' });
  await next(small, (m) => m.event === 'subscribed');
  // many large messages queued, then one for the small topic: the server sends the small one
  // before it has finished the large topic's fan-out (it counts its deferred deliveries)
  const before = await metric('streampai_pubsub_fanout_deferred_total');
  for (let i = 21; i <= 60; i++) publish('chat:big', i);
  publish('chat:small', 1);
  const t0 = Date.now();
  await next(small, (m) => m.event === 'chat_message', 'small message', 10000);
  const smallMs = Date.now() - t0;
  await waitFor(() => big.every((ws) => msgs(ws).length >= 40) || null, { timeout: 60000, interval: 50, what: 'large fan-out' });
  const bigMs = Date.now() - t0;
  const after = await metric('streampai_pubsub_fanout_deferred_total');
  assert.ok(after > before, 'the large topic was served across loop turns');
  assert.ok(smallMs <= bigMs, `small ${smallMs} ms, large ${bigMs} ms`);
  for (const ws of big) {
    assert.deepEqual(msgs(ws).map((m) => m.seq), Array.from({ length: 40 }, (_, k) => k + 21));
    ws.inbox.length = 0;
  }
  small.close();
});

test('a socket that resumes mid fan-out gets each message once, in order', async () => {
  const late = await openWs(srv, { path: '/socket?test_user=big' });
  for (let i = 61; i <= 80; i++) publish('chat:big', i);
  // resume from 60 while the twenty are being fanned out: replay + live, no duplicate, no hole
  sendJson(late, { type: 'resume', topic: 'chat:big', after_seq: 60 });
  await next(late, (m) => m.event === 'resumed');
  for (let i = 81; i <= 85; i++) publish('chat:big', i);
  await waitFor(() => msgs(late).length >= 25 || null, { timeout: 30000, interval: 50, what: 'late socket' });
  await waitFor(() => big.every((ws) => msgs(ws).length >= 25) || null, { timeout: 30000, interval: 50, what: 'large fan-out' });
  await sleep(300);
  assert.deepEqual(msgs(late).map((m) => m.seq), Array.from({ length: 25 }, (_, k) => k + 61));
  for (const ws of big) assert.deepEqual(msgs(ws).map((m) => m.seq), Array.from({ length: 25 }, (_, k) => k + 61));
  late.close();
});

test('the server exits cleanly (no ASan/LSan report)', async () => {
  for (const ws of big) ws.terminate();
  big.length = 0;
  publisher.close();
  await srv.stopClean();
});
