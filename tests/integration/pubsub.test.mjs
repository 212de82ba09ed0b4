// PubSub over the socket: subscribe to own topics only, per-topic seq, drop the socket,
// publish more, reconnect with resume and get exactly the missed messages; gap reporting.
// Publishing uses the test-mode {"type":"publish"} socket message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sleep } from '../lib/harness.mjs';
import { openWs, sendJson, next } from '../lib/wsutil.mjs';

const HISTORY = 5;
let srv, publisher;

before(async () => {
  srv = await startServer({ env: { PUBLIC_URL: 'http://localhost:5999', EVENT_HISTORY_SIZE: String(HISTORY) } });
  publisher = await openWs(srv);
});

after(async () => {
  publisher?.close();
  if (srv) await srv.stop(); // cleanup only: the last test asserts the clean exit
});

const publish = (topic, n) => sendJson(publisher, { type: 'publish', topic, event: 'chat_message', payload: { n } });

test('a socket joins only its own user topics', async () => {
  const ws = await openWs(srv, { path: '/socket?test_user=alice' });
  sendJson(ws, { type: 'subscribe', topic: 'chat:alice' });
  const ok = await next(ws, (m) => m.event === 'subscribed');
  assert.equal(ok.topic, 'chat:alice');
  for (const topic of ['chat:bob', 'livestream:global', 'users_presence', 'nope:alice', 'user_stream:alice2']) {
    sendJson(ws, { type: 'subscribe', topic });
    const e = await next(ws, (m) => m.event === 'subscribe_error' && m.topic === topic, topic);
    assert.ok(['forbidden', 'invalid topic'].includes(e.payload.reason), e.payload.reason);
  }
  const anon = await openWs(srv);
  sendJson(anon, { type: 'subscribe', topic: 'chat:alice' });
  assert.equal((await next(anon, (m) => m.event === 'subscribe_error')).payload.reason, 'forbidden');
  // bob's messages never reach alice
  publish('chat:bob', 1);
  publish('chat:alice', 1);
  const m = await next(ws, (x) => x.event === 'chat_message');
  assert.equal(m.topic, 'chat:alice');
  await sleep(100);
  assert.equal(ws.inbox.filter((x) => x.topic === 'chat:bob').length, 0);
  ws.close();
  anon.close();
});

test('drop, publish more, resume: exactly the missed messages, in order', async () => {
  const topic = 'user_stream:carol';
  let ws = await openWs(srv, { path: '/socket?test_user=carol' });
  sendJson(ws, { type: 'subscribe', topic });
  assert.equal((await next(ws, (m) => m.event === 'subscribed')).payload.seq, 0);
  for (let i = 1; i <= 3; i++) publish(topic, i);
  const seen = [];
  for (let i = 1; i <= 3; i++) seen.push(await next(ws, (m) => m.event === 'chat_message'));
  assert.deepEqual(seen.map((m) => [m.topic, m.seq, m.payload.n]), [[topic, 1, 1], [topic, 2, 2], [topic, 3, 3]]);
  const last = seen.at(-1).seq;
  ws.close();
  await ws.closed;

  publish(topic, 4);
  publish(topic, 5);
  await sleep(100);

  ws = await openWs(srv, { path: '/socket?test_user=carol' });
  sendJson(ws, { type: 'resume', topic, after_seq: last });
  const done = await next(ws, (m) => m.event === 'resumed');
  assert.deepEqual(done.payload, { after_seq: 3, replayed: 2, seq: 5, gap: false });
  const missed = ws.inbox.filter((m) => m.event === 'chat_message');
  assert.deepEqual(missed.map((m) => [m.seq, m.payload.n]), [[4, 4], [5, 5]]);
  assert.equal(ws.inbox.filter((m) => m.event === 'gap').length, 0);
  ws.inbox.length = 0;
  // resume also subscribed: live messages continue with the next seq
  publish(topic, 6);
  const live = await next(ws, (m) => m.event === 'chat_message');
  assert.equal(live.seq, 6);
  await sleep(100);
  assert.equal(ws.inbox.filter((m) => m.event === 'chat_message').length, 0, 'no duplicates');
  ws.close();
});

test('resume past the history size reports a gap, then replays what is kept', async () => {
  const topic = 'alertbox:dave';
  for (let i = 1; i <= 12; i++) publish(topic, i);
  await sleep(150);
  const ws = await openWs(srv, { path: '/socket?test_user=dave' });
  sendJson(ws, { type: 'resume', topic, after_seq: 2 });
  const done = await next(ws, (m) => m.event === 'resumed');
  assert.equal(done.payload.gap, true);
  assert.equal(done.payload.replayed, HISTORY);
  const idx = (ev) => ws.inbox.findIndex((m) => m.event === ev);
  assert.ok(idx('gap') >= 0 && idx('gap') < idx('chat_message'), 'gap notice comes first');
  const gap = ws.inbox[idx('gap')];
  assert.equal(gap.payload.oldest_seq, 12 - HISTORY + 1);
  assert.equal(gap.payload.missed_from, 3);
  assert.deepEqual(ws.inbox.filter((m) => m.event === 'chat_message').map((m) => m.seq), [8, 9, 10, 11, 12]);
  ws.close();
});

test('pubsub metrics', async () => {
  const body = await (await fetch(srv.url + '/metrics')).text();
  assert.match(body, /^streampai_pubsub_published_total [1-9]\d*$/m);
  assert.match(body, /^streampai_pubsub_replayed_total [1-9]\d*$/m);
  assert.match(body, /^streampai_pubsub_gaps_total [1-9]\d*$/m);
});

test('the server exits cleanly (no ASan/LSan report)', async () => {
  publisher.close();
  await srv.stopClean();
});
