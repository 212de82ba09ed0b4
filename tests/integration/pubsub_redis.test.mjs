// Multi-node PubSub over Redis (REDIS_URL): two streampai servers, one real redis-server.
// A socket on node B gets, in order and with increasing seq, what node A publishes; both
// nodes see ONE seq order per topic; resume on B gets exactly the missed messages; Redis
// killed mid-run: both nodes keep serving HTTP and local sockets, log the outage, and
// deliver across nodes again once Redis is back (its counters lost: seqs still increase).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import net from 'node:net';
import { startServer, startRedis, waitFor, sleep, freePort, assertCleanExit, assertNoSecretsInLog } from '../lib/harness.mjs';
import { openWs, sendJson, next } from '../lib/wsutil.mjs';

const HISTORY = 50;
let redis, A, B, pubA, pubB;

const redisUp = (port) => new Promise((res) => {
  const s = net.connect(port, '127.0.0.1', () => { s.end(); res(true); });
  s.on('error', () => res(false));
});

// same port as before, so REDIS_URL stays valid
async function restartRedis(port, extra = []) {
  const proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', ...extra], { stdio: 'ignore' });
  await waitFor(() => redisUp(port), { what: 'redis restart' });
  return { port, proc, stop: () => proc.kill('SIGTERM') };
}

const metric = async (srv, name) => {
  const body = await (await fetch(srv.url + '/metrics')).text();
  const m = body.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : null;
};
const connected = async (srv) => (await metric(srv, 'streampai_redis_connected')) === 1;

before(async () => {
  redis = await startRedis();
  const env = { PUBLIC_URL: 'http://localhost:5999', EVENT_HISTORY_SIZE: String(HISTORY), REDIS_URL: redis.url };
  [A, B] = await Promise.all([startServer({ env }), startServer({ env })]);
  await waitFor(async () => (await connected(A)) && (await connected(B)), { what: 'both nodes connected to redis' });
  pubA = await openWs(A);
  pubB = await openWs(B);
});

after(async () => { // cleanup only: the last test asserts the clean exits
  pubA?.close();
  pubB?.close();
  for (const srv of [A, B]) if (srv) await srv.stop();
  redis?.stop();
});

const publish = (ws, topic, n) => sendJson(ws, { type: 'publish', topic, event: 'chat_message', payload: { n } });
const chats = (ws, topic) => ws.inbox.filter((m) => m.event === 'chat_message' && m.topic === topic);

async function subscribe(srv, user, topic) {
  const ws = await openWs(srv, { path: `/socket?test_user=${user}` });
  sendJson(ws, { type: 'subscribe', topic });
  await next(ws, (m) => m.event === 'subscribed' && m.topic === topic);
  return ws;
}

test('node B receives what node A publishes, in order, one seq order on both nodes', async () => {
  const topic = 'chat:erin';
  const onB = await subscribe(B, 'erin', topic);
  const onA = await subscribe(A, 'erin', topic);
  for (let i = 1; i <= 10; i++) publish(pubA, topic, i);
  await waitFor(() => chats(onB, topic).length === 10 && chats(onA, topic).length === 10, { what: '10 messages on both nodes' });
  assert.deepEqual(chats(onB, topic).map((m) => [m.seq, m.payload.n]), Array.from({ length: 10 }, (_, i) => [i + 1, i + 1]));
  assert.deepEqual(chats(onA, topic).map((m) => [m.seq, m.payload.n]), chats(onB, topic).map((m) => [m.seq, m.payload.n]));

  // both nodes publishing concurrently on the same topic: one order, no gaps, same on both
  for (let i = 0; i < 20; i++) publish(i % 2 ? pubB : pubA, topic, 100 + i);
  await waitFor(() => chats(onB, topic).length === 30 && chats(onA, topic).length === 30, { what: '30 messages on both nodes' });
  const seqB = chats(onB, topic).map((m) => m.seq);
  assert.deepEqual(seqB, Array.from({ length: 30 }, (_, i) => i + 1), 'contiguous increasing seq');
  assert.deepEqual(chats(onA, topic).map((m) => [m.seq, m.payload.n]), chats(onB, topic).map((m) => [m.seq, m.payload.n]));
  // each node's own publishes keep their relative order
  const fromA = chats(onB, topic).map((m) => m.payload.n).filter((n) => n >= 100 && n % 2 === 0);
  assert.deepEqual(fromA, [...fromA].sort((x, y) => x - y));
  await sleep(100);
  assert.equal(chats(onB, topic).length, 30, 'no duplicates');
  onA.close();
  onB.close();
});

test('resume on node B after a drop gets exactly the missed messages', async () => {
  const topic = 'user_stream:fred';
  let ws = await subscribe(B, 'fred', topic);
  for (let i = 1; i <= 3; i++) publish(pubA, topic, i);
  await waitFor(() => chats(ws, topic).length === 3, { what: 'first 3' });
  const last = chats(ws, topic).at(-1).seq;
  assert.equal(last, 3);
  ws.close();
  await ws.closed;

  for (let i = 4; i <= 7; i++) publish(pubA, topic, i);
  await waitFor(async () => (await metric(B, 'streampai_pubsub_published_total')) >= 7 + 30, { what: 'B received' });
  await sleep(100);

  ws = await openWs(B, { path: '/socket?test_user=fred' });
  sendJson(ws, { type: 'resume', topic, after_seq: last });
  const done = await next(ws, (m) => m.event === 'resumed');
  assert.deepEqual(done.payload, { after_seq: 3, replayed: 4, seq: 7, gap: false });
  assert.deepEqual(chats(ws, topic).map((m) => [m.seq, m.payload.n]), [[4, 4], [5, 5], [6, 6], [7, 7]]);
  assert.equal(ws.inbox.filter((m) => m.event === 'gap').length, 0);
  ws.inbox.length = 0;
  publish(pubA, topic, 8);
  const live = await next(ws, (m) => m.event === 'chat_message');
  assert.equal(live.seq, 8);
  ws.close();
});

test('redis killed: nodes keep serving, log the outage, recover after restart', async () => {
  const topic = 'alertbox:gina';
  const onA = await subscribe(A, 'gina', topic);
  const onB = await subscribe(B, 'gina', topic);
  publish(pubA, topic, 1);
  await waitFor(() => chats(onB, topic).length === 1 && chats(onA, topic).length === 1, { what: 'first message' });

  const port = redis.port;
  redis.proc.kill('SIGKILL');
  await waitFor(async () => !(await connected(A)) && !(await connected(B)), { what: 'both nodes see the outage' });
  for (const srv of [A, B]) {
    assert.match(srv.logText(), /module=redis msg="redis connection lost"/);
    const h = await fetch(srv.url + '/healthz');
    assert.equal(h.status, 200, 'HTTP keeps working');
  }
  // local delivery keeps working while Redis is down (the seq continues locally)
  publish(pubA, topic, 2);
  const local = await next(onA, (m) => m.event === 'chat_message' && m.payload.n === 2, 'local delivery on A');
  assert.equal(local.seq, 2);
  publish(pubB, topic, 3);
  const localB = await next(onB, (m) => m.event === 'chat_message' && m.payload.n === 3, 'local delivery on B');
  assert.equal(localB.seq, 2);
  await sleep(300);
  assert.equal(chats(onB, topic).filter((m) => m.payload.n === 2).length, 0, 'A-only message did not reach B');
  // a reconnect attempt never stalls the loop: pings keep answering
  const t0 = Date.now();
  sendJson(onA, { type: 'ping' });
  await next(onA, (m) => m.event === 'pong');
  assert.ok(Date.now() - t0 < 1000);

  redis = await restartRedis(port);
  await waitFor(async () => (await connected(A)) && (await connected(B)), { timeout: 20000, what: 'both nodes reconnected' });
  for (const srv of [A, B]) assert.match(srv.logText(), /module=redis msg="redis connected"[^\n]*\n[\s\S]*module=redis msg="redis connected"/);

  onA.inbox.length = 0;
  onB.inbox.length = 0;
  publish(pubA, topic, 10);
  publish(pubB, topic, 11);
  await waitFor(() => chats(onB, topic).length === 2 && chats(onA, topic).length === 2, { timeout: 5000, what: 'cross-node delivery after recovery' });
  const a = chats(onA, topic), b = chats(onB, topic);
  assert.deepEqual(a.map((m) => [m.seq, m.payload.n]), b.map((m) => [m.seq, m.payload.n]), 'same order on both nodes');
  assert.ok(a[0].seq > 2, `seq keeps increasing after Redis lost its counters (got ${a[0].seq})`);
  assert.equal(a[1].seq, a[0].seq + 1);
  onA.close();
  onB.close();
});

test('redis killed during a burst: the publishing node delivers every message exactly once, in order', async () => {
  const topic = 'stream_lifecycle:jo';
  const onA = await subscribe(A, 'jo', topic);
  const N = 400;
  for (let i = 1; i <= N; i++) {
    publish(pubA, topic, i);
    if (i === N / 2) { await sleep(5); redis.proc.kill('SIGKILL'); }
  }
  await waitFor(() => chats(onA, topic).length >= N, { timeout: 10000, what: `${N} messages on A` });
  await sleep(200);
  const got = chats(onA, topic);
  assert.equal(got.length, N, 'no duplicates');
  assert.deepEqual(got.map((m) => m.payload.n), Array.from({ length: N }, (_, i) => i + 1), 'publish order kept');
  for (let i = 1; i < got.length; i++) assert.ok(got[i].seq > got[i - 1].seq, `seq increases at ${i}`);
  const port = redis.port;
  await waitFor(async () => !(await connected(A)), { what: 'A sees the outage' });
  redis = await restartRedis(port);
  await waitFor(async () => (await connected(A)) && (await connected(B)), { timeout: 20000, what: 'reconnected' });
  onA.close();
});

test('redis metrics', async () => {
  for (const srv of [A, B]) {
    assert.equal(await metric(srv, 'streampai_redis_connected'), 1);
    assert.ok((await metric(srv, 'streampai_redis_received_total')) > 0);
    assert.ok((await metric(srv, 'streampai_redis_local_only_total')) >= 1);
  }
});

test('garbage on the bus channel is counted and ignored', async () => {
  const topic = 'chat:hank';
  const onB = await subscribe(B, 'hank', topic);
  for (const junk of ['hello', 'SP1 0 0123456789abcdef 1 chat:hank {"event":"x"}', 'SP1 5 0123456789abcdef 1 chat:hank not-json}'])
    execFileSync('redis-cli', ['-p', String(redis.port), 'PUBLISH', 'streampai:bus', junk]);
  await waitFor(async () => (await metric(B, 'streampai_redis_bad_messages_total')) >= 3, { what: 'bad messages counted' });
  publish(pubA, topic, 1);
  const m = await next(onB, (x) => x.event === 'chat_message', 'delivery after garbage');
  assert.equal(m.seq, 1);
  assert.equal(chats(onB, topic).length, 0);
  onB.close();
});

test('AUTH: right password connects, wrong one is refused and never logged', async () => {
  const port = await freePort();
  const r = await restartRedis(port, ['--requirepass', 'Sekr3t-pw']);
  const env = { PUBLIC_URL: 'http://localhost:5999' };
  const good = await startServer({ env: { ...env, REDIS_URL: `redis://:Sekr3t-pw@127.0.0.1:${port}/1` } });
  const bad = await startServer({ env: { ...env, REDIS_URL: `redis://:wrong-pw-123@127.0.0.1:${port}` } });
  try {
    await waitFor(() => connected(good), { what: 'authenticated node connected' });
    await waitFor(() => /msg="redis connect failed"[^\n]*AUTH refused/.test(bad.logText()), { what: 'auth failure logged' });
    assert.equal(await metric(bad, 'streampai_redis_connected'), 0);
    // the node without Redis still delivers locally
    const ws = await subscribe(bad, 'ivy', 'chat:ivy');
    sendJson(ws, { type: 'publish', topic: 'chat:ivy', event: 'chat_message', payload: { n: 1 } });
    assert.equal((await next(ws, (m) => m.event === 'chat_message')).seq, 1);
    ws.close();
    // counters live in the selected db (/1)
    const ws2 = await subscribe(good, 'ivy', 'chat:ivy');
    sendJson(ws2, { type: 'publish', topic: 'chat:ivy', event: 'chat_message', payload: { n: 1 } });
    assert.equal((await next(ws2, (m) => m.event === 'chat_message')).seq, 1);
    ws2.close();
    const v = execFileSync('redis-cli', ['-p', String(port), '-a', 'Sekr3t-pw', '--no-auth-warning', '-n', '1', 'GET', 'streampai:seq:chat:ivy']).toString().trim();
    assert.equal(v, '1');
    for (const srv of [good, bad]) {
      const x = await srv.stop();
      assertCleanExit(x, srv.logs);
      assertNoSecretsInLog(srv.logs, ['Sekr3t-pw', 'wrong-pw-123'], { known: [/module=http msg="listening"/, /module=redis/] });
    }
  } finally {
    for (const srv of [good, bad]) await srv.stop();
    r.stop();
  }
});

test('a Redis that accepts but never answers: connect timeout, the loop keeps serving', async () => {
  const socks = [];
  const black = net.createServer((s) => { socks.push(s); s.on('error', () => {}); });
  await new Promise((res) => black.listen(0, '127.0.0.1', res));
  const srv = await startServer({ env: { PUBLIC_URL: 'http://localhost:5999', REDIS_URL: `redis://127.0.0.1:${black.address().port}` } });
  try {
    const t0 = Date.now();
    while (Date.now() - t0 < 1500) {
      const s = Date.now();
      assert.equal((await fetch(srv.url + '/healthz')).status, 200);
      assert.ok(Date.now() - s < 500, 'HTTP answers while Redis hangs');
      await sleep(100);
    }
    await waitFor(() => /msg="redis connect failed"[^\n]*reason="connect timed out"/.test(srv.logText()), { timeout: 8000, what: 'connect timeout' });
    assert.equal(await metric(srv, 'streampai_redis_connected'), 0);
    assertCleanExit(await srv.stop(), srv.logs);
  } finally {
    await srv.stop();
    for (const s of socks) s.destroy();
    black.close();
  }
});

test('both nodes exit cleanly (no ASan/LSan report)', async () => {
  pubA.close();
  pubB.close();
  for (const srv of [A, B]) {
    const r = await srv.stop();
    if (process.env.SP_TEST_LOGS) console.log(srv.logs.filter((l) => /module=(redis|pubsub|main)/.test(l)).join('\n'));
    assertCleanExit(r, srv.logs);
  }
});
