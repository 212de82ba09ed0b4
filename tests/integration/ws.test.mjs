// WebSocket server (GET /socket): handshake and its errors, Origin policy, diag topic,
// server pings, idle timeout, 1009/1007 closes, slow reader cut with 1008 while a fast
// reader keeps receiving a broadcast flood, graceful shutdown with 1001.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, sleep, assertCleanExit } from '../lib/harness.mjs';
import { ORIGIN, openWs, sendJson, next, rawHandshake, goodHeaders } from '../lib/wsutil.mjs';

const PING_MS = 200;
const IDLE_MS = 800;
let srv;

before(async () => {
  srv = await startServer({
    env: {
      PUBLIC_URL: ORIGIN + '/',
      ALLOWED_ORIGINS: 'https://obs.example.com',
      WS_PING_INTERVAL: String(PING_MS),
      WS_IDLE_TIMEOUT: String(IDLE_MS),
      WS_MAX_QUEUE: String(256 * 1024),
    },
  });
});

after(async () => {
  if (srv) await srv.stop(); // cleanup only: the last test asserts the clean exit
});

test('handshake ok: 101, accept key, echo and ping on the diag topic', async () => {
  const r = await rawHandshake(srv.port, goodHeaders({ 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', Origin: ORIGIN }));
  assert.equal(r.status, 101);
  assert.equal(r.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  assert.equal(r.headers.upgrade.toLowerCase(), 'websocket');
  r.socket.destroy();

  const ws = await openWs(srv);
  sendJson(ws, { type: 'echo', payload: { a: [1, 'two'], u: 'héllo' } });
  const m = await next(ws, (x) => x.event === 'echo');
  assert.deepEqual(m, { topic: 'diag', event: 'echo', payload: { a: [1, 'two'], u: 'héllo' }, seq: 1 });
  sendJson(ws, { type: 'ping' });
  const p = await next(ws, (x) => x.event === 'pong');
  assert.equal(p.topic, 'diag');
  assert.equal(p.seq, 2);
  ws.send('not json');
  const e = await next(ws, (x) => x.event === 'error');
  assert.equal(e.topic, 'diag');
  ws.close(1000);
  assert.equal((await ws.closed).code, 1000);
});

test('a frame sent in the same packet as the handshake is not lost', async () => {
  const net = await import('node:net');
  const sock = net.connect(srv.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const payload = Buffer.from(JSON.stringify({ type: 'echo', payload: 'early' }));
  const mask = Buffer.from([1, 2, 3, 4]);
  const frame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))]);
  const req = 'GET /socket?test_user=anon HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
  sock.write(Buffer.concat([Buffer.from(req), frame]));
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
  await waitFor(() => buf.includes('"event":"echo"'), { timeout: 5000, what: 'echo of the early frame' });
  const body = buf.subarray(buf.indexOf('\r\n\r\n') + 4);
  assert.equal(body[0], 0x81);
  assert.deepEqual(JSON.parse(body.subarray(2, 2 + body[1]).toString()), { topic: 'diag', event: 'echo', payload: 'early', seq: 1 });
  sock.destroy();
});

test('bad or missing Sec-WebSocket-Key -> 400', async () => {
  for (const key of ['short', 'dGhlIHNhbXBsZSBub25jZSEh', undefined]) {
    const r = await rawHandshake(srv.port, goodHeaders({ 'Sec-WebSocket-Key': key }));
    assert.equal(r.status, 400, `key ${key}`);
    r.socket.destroy();
  }
});

test('bad version -> 426 with Sec-WebSocket-Version: 13; missing -> 400', async () => {
  let r = await rawHandshake(srv.port, goodHeaders({ 'Sec-WebSocket-Version': '8' }));
  assert.equal(r.status, 426);
  assert.equal(r.headers['sec-websocket-version'], '13');
  r.socket.destroy();
  r = await rawHandshake(srv.port, goodHeaders({ 'Sec-WebSocket-Version': undefined }));
  assert.equal(r.status, 400);
  r.socket.destroy();
  r = await rawHandshake(srv.port, goodHeaders({ Upgrade: 'h2c' }));
  assert.equal(r.status, 400);
  r.socket.destroy();
});

test('Origin: foreign, null and file:// -> 403; allowed or absent -> 101', async () => {
  for (const origin of ['https://evil.example', 'null', 'file://', 'http://localhost:5998', 'http://localhost:5999.evil.example']) {
    await assert.rejects(openWs(srv, { origin }), (e) => e.status === 403, origin);
  }
  for (const origin of [ORIGIN, 'https://obs.example.com', 'HTTP://LOCALHOST:5999', undefined]) {
    const ws = await openWs(srv, { origin });
    ws.close();
    await ws.closed;
  }
  assert.match(srv.logText(), /module=ws msg="handshake rejected" status=403 reason=origin/);
});

test('server pings every interval; a pong-answering client outlives the idle timeout', async () => {
  const ws = await openWs(srv);
  let pings = 0;
  ws.on('ping', () => pings++);
  await sleep(IDLE_MS * 2);
  assert.ok(pings >= 3, `pings=${pings}`);
  assert.equal(ws.readyState, ws.OPEN);
  ws.close();
  await ws.closed;
});

test('a silent peer is closed after the idle timeout', async () => {
  const r = await rawHandshake(srv.port, goodHeaders({ Origin: ORIGIN }));
  assert.equal(r.status, 101);
  const t0 = Date.now();
  const chunks = [r.rest];
  r.socket.on('data', (d) => chunks.push(d));
  await new Promise((resolve) => r.socket.on('close', resolve));
  const ms = Date.now() - t0;
  assert.ok(ms >= IDLE_MS - 50 && ms < IDLE_MS + 1500, `closed after ${ms} ms`);
  // the last frame is a close frame with 1001
  const all = Buffer.concat(chunks);
  const i = all.lastIndexOf(Buffer.from([0x88]));
  assert.ok(i >= 0, 'close frame sent');
  assert.equal(all.readUInt16BE(i + 2), 1001);
  assert.match(srv.logText(), /msg="idle timeout"/);
});

test('message over the max size -> close 1009', async () => {
  const ws = await openWs(srv);
  ws.send('x'.repeat(70 * 1024));
  assert.equal((await ws.closed).code, 1009);
});

test('invalid UTF-8 in a text frame -> close 1007', async () => {
  const ws = await openWs(srv);
  ws.send(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), { binary: false });
  assert.equal((await ws.closed).code, 1007);
});

test('slow reader is cut with 1008 while a fast reader receives the whole flood', async () => {
  const fast = await openWs(srv);
  const slow = await openWs(srv);
  slow._socket.pause();
  const COUNT = 2500, SIZE = 8192;
  let got = 0, lastSeq = 0, inOrder = true;
  fast.on('message', (d) => {
    const m = JSON.parse(d.toString());
    if (m.event !== 'flood') return;
    if (m.seq !== lastSeq + 1 && lastSeq !== 0) inOrder = false;
    lastSeq = m.seq;
    if (m.payload.length === SIZE) got++;
  });
  fast.inbox = { push() {} }; // keep memory flat: counted above
  sendJson(fast, { type: 'flood', count: COUNT, size: SIZE, per_tick: 4 });
  await waitFor(() => /msg="slow reader closed"/.test(srv.logText()), { timeout: 20000, what: 'slow reader cut' });
  slow._socket.resume();
  const info = await slow.closed;
  assert.equal(info.code, 1008);
  await waitFor(() => got === COUNT, { timeout: 20000, what: `fast reader got ${got}/${COUNT}` });
  assert.ok(inOrder);
  assert.equal(fast.readyState, fast.OPEN);
  assert.match(srv.logText(), /msg="slow reader closed" .*max_queue=262144 code=1008/);
  fast.close();
  await fast.closed;
});

test('a slow reader that never reads again is dropped after the close timeout', async () => {
  const slow = await openWs(srv);
  slow._socket.pause();
  const before = srv.logs.length;
  const flooder = await openWs(srv);
  flooder.inbox = { push() {} };
  sendJson(flooder, { type: 'flood', count: 2500, size: 8192, per_tick: 4 });
  const cut = await waitFor(() => srv.logs.slice(before).find((l) => /msg="slow reader closed"/.test(l)), { timeout: 20000, what: 'cut' });
  const conn = cut.match(/conn=(\d+)/)[1];
  const t0 = Date.now();
  await waitFor(() => srv.logs.slice(before).some((l) => new RegExp(`msg="closed" conn=${conn} code=1008`).test(l)), { timeout: 5000, what: 'server dropped the socket' });
  assert.ok(Date.now() - t0 < 3500);
  slow.terminate();
  flooder.close();
  await flooder.closed;
});

test('metrics expose open sockets, messages and closes by code', async () => {
  const res = await fetch(srv.url + '/metrics');
  const body = await res.text();
  assert.match(body, /^streampai_ws_open \d+$/m);
  assert.match(body, /^streampai_ws_messages_total\{dir="in"\} [1-9]\d*$/m);
  assert.match(body, /^streampai_ws_closes_total\{code="1009"\} [1-9]/m);
  assert.match(body, /^streampai_ws_closes_total\{code="1007"\} [1-9]/m);
  assert.match(body, /^streampai_ws_slow_closed_total [1-9]/m);
});

test('graceful shutdown closes sockets with 1001 and exits 0', async () => {
  const a = await openWs(srv);
  const b = await openWs(srv);
  const r = await srv.stop('SIGTERM');
  assert.equal((await a.closed).code, 1001);
  assert.equal((await b.closed).code, 1001);
  assertCleanExit(r, srv.logs);
  assert.ok(r.ms < 5000, `shutdown took ${r.ms} ms`);
  assert.match(srv.logText(), /module=ws msg="closing all" count=2 code=1001/);
});
