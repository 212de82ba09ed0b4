// Issue 12, finding 3: WebSockets must not escape MAX_CONNECTIONS. Upgraded sockets keep
// counting in the node's connection limit, one account is capped by MAX_SOCKETS_PER_USER
// (503 too_many_sockets before the upgrade), and a reserve of descriptors is kept so that a
// flood of connections is answered (503) or closed at once instead of emptying the fd table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import path from 'node:path';
import WebSocket from 'ws';
import { BIN, ROOT, startServer, tmpDir, waitFor, sleep, assertCleanExit } from '../lib/harness.mjs';
import { ORIGIN } from '../lib/wsutil.mjs';
import { bootServer, register, rq } from '../lib/authlib.mjs';

// Opens a socket; resolves {status: 101, ws} or {status, body, headers} when refused.
function open(srv, p, { origin = ORIGIN, headers = {} } = {}) {
  const ws = new WebSocket(srv.url.replace('http://', 'ws://') + p, { origin, headers });
  ws.on('error', () => {});
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    ws.once('error', (e) => resolve({ status: 0, error: e.message }));
  });
}

async function metrics(srv) {
  return (await fetch(srv.url + '/metrics')).text();
}

function counter(text, re) {
  const m = text.match(re);
  return m ? Number(m[1]) : NaN;
}

test('upgraded sockets count in MAX_CONNECTIONS: the 21st connection is refused 503', async () => {
  const srv = await startServer({
    env: { PUBLIC_URL: ORIGIN + '/', MAX_CONNECTIONS: '20', MAX_SOCKETS_PER_USER: '100' },
  });
  const socks = [];
  try {
    for (let i = 0; i < 20; i++) {
      const r = await open(srv, `/socket?test_user=u${i % 3}`);
      assert.equal(r.status, 101, `socket ${i}: ${r.status} ${r.body || r.error || ''}`);
      socks.push(r.ws);
    }
    // 20 sockets hold the 20 connections: another socket and a plain request are refused
    const extra = await open(srv, '/socket?test_user=other');
    assert.equal(extra.status, 503, `the 21st socket: ${extra.status}`);
    assert.match(extra.body, /too_many_connections/);
    const plain = await fetch(srv.url + '/healthz').catch((e) => ({ status: 0, error: e }));
    assert.equal(plain.status, 503, 'a plain request while 20 sockets are open');
    // closing sockets gives the connections back
    for (const ws of socks.splice(0, 5)) { ws.close(); await ws.closed; }
    await waitFor(async () => (await fetch(srv.url + '/healthz')).status === 200, { what: 'a slot again', timeout: 5000 });
    const again = await open(srv, '/socket?test_user=other');
    assert.equal(again.status, 101);
    socks.push(again.ws);
    const m = await metrics(srv);
    assert.ok(counter(m, /streampai_http_refused_total\{reason="max_connections"\} (\d+)/) >= 2, m);
    assert.equal(counter(m, /streampai_http_upgraded_connections (\d+)/), 16);
  } finally {
    for (const ws of socks) ws.terminate();
  }
  await srv.stopClean();
});

test('MAX_SOCKETS_PER_USER (default 50): one more socket of the account is 503 too_many_sockets', async () => {
  const srv = await startServer({ env: { PUBLIC_URL: ORIGIN + '/' } });
  const socks = [];
  try {
    for (let i = 0; i < 50; i++) {
      const r = await open(srv, '/socket?test_user=heavy');
      assert.equal(r.status, 101, `socket ${i}: ${r.status}`);
      socks.push(r.ws);
    }
    const over = await open(srv, '/socket?test_user=heavy');
    assert.equal(over.status, 503);
    assert.equal(JSON.parse(over.body).error.code, 'too_many_sockets');
    assert.ok(Number(over.headers['retry-after']) >= 1, 'Retry-After');
    // another account is not affected
    const other = await open(srv, '/socket?test_user=light');
    assert.equal(other.status, 101);
    socks.push(other.ws);
    // one closed: one more may open
    const first = socks.shift();
    first.close();
    await first.closed;
    await waitFor(async () => {
      const r = await open(srv, '/socket?test_user=heavy');
      if (r.status === 101) { socks.push(r.ws); return true; }
      return false;
    }, { what: 'a socket after one closed', timeout: 5000 });
    const m = await metrics(srv);
    assert.ok(counter(m, /streampai_ws_refused_total\{reason="user_limit"\} (\d+)/) >= 1, m);
  } finally {
    for (const ws of socks) ws.terminate();
  }
  await srv.stopClean();
});

test('MAX_SOCKETS_PER_USER counts a real account\'s sockets, whatever the credential', async () => {
  const srv = await bootServer({ MAX_SOCKETS_PER_USER: '3' });
  const socks = [];
  try {
    const a = await register(srv, `lim${Date.now()}@example.com`);
    const tok = await rq(srv, 'POST', '/api/auth/token', { cookies: a.cookies, headers: { 'x-csrf-token': a.cookies.sp_csrf } });
    assert.equal(tok.status, 200, tok.text);
    const cookie = `sp_session=${a.cookies.sp_session}`;
    for (const [p, h] of [[`/socket?token=${tok.json.token}`, {}], ['/socket', { cookie }], [`/socket?token=${tok.json.token}`, {}]]) {
      const r = await open(srv, p, { origin: srv.url, headers: h });
      assert.equal(r.status, 101);
      socks.push(r.ws);
    }
    const over = await open(srv, '/socket', { origin: srv.url, headers: { cookie } });
    assert.equal(over.status, 503);
    assert.match(over.body, /too_many_sockets/);
    const b = await register(srv, `lim-b${Date.now()}@example.com`);
    const ob = await open(srv, '/socket', { origin: srv.url, headers: { cookie: `sp_session=${b.cookies.sp_session}` } });
    assert.equal(ob.status, 101, 'another account');
    socks.push(ob.ws);
  } finally {
    for (const ws of socks) ws.terminate();
  }
  await srv.stopClean();
});

// `streampai serve` under a small RLIMIT_NOFILE (sh's ulimit, then exec: same pid).
async function startWithNofile(nofile, env = {}) {
  const dataDir = tmpDir('sp-data-');
  const fullEnv = {
    PATH: process.env.PATH, STREAMPAI_ENV: 'test', HTTP_LISTEN: '127.0.0.1:0', DATA_DIR: dataDir,
    WEB_DIR: path.join(ROOT, 'web'), LOG_LEVEL: 'info',
    ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=86',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1', ...env,
  };
  const proc = spawn('sh', ['-c', `ulimit -n ${nofile} && exec "$0" serve`, BIN], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const srv = { proc, logs: [], exit: null };
  let buf = '';
  const onData = (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { srv.logs.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  srv.exited = new Promise((resolve) => proc.on('close', (code, sig) => {
    if (buf) srv.logs.push(buf);
    srv.exit = { code, sig };
    resolve(srv.exit);
  }));
  await waitFor(() => {
    if (srv.exit) throw new Error(`exited early: ${srv.logs.join('\n')}`);
    for (const l of srv.logs) { const m = l.match(/module=http msg="listening" addr=127\.0\.0\.1:(\d+)/); if (m) { srv.port = Number(m[1]); return true; } }
    return false;
  }, { what: 'server start', timeout: 15000 });
  srv.url = `http://127.0.0.1:${srv.port}`;
  srv.stopClean = async () => {
    const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
    proc.kill('SIGTERM');
    const r = await srv.exited;
    clearTimeout(t);
    assertCleanExit(r, srv.logs);
  };
  return srv;
}

test('descriptor reserve: under RLIMIT_NOFILE 256 a flood of 300 connections is answered or closed, never EMFILE', async () => {
  const srv = await startWithNofile(256);
  const conns = [];
  let answered = [];
  try {
    // the budget is fitted to the limit: 256 - 64 reserved
    assert.ok(srv.logs.some((l) => /MAX_CONNECTIONS lowered to fit the descriptor limit.*max_connections=192 configured=10000 nofile=256 reserve=64/.test(l)),
      srv.logs.filter((l) => /module=http/.test(l)).join('\n'));
    for (let i = 0; i < 300; i++) {
      const c = net.connect(srv.port, '127.0.0.1');
      c.data = '';
      c.ended = false;
      c.on('data', (d) => { c.data += d; });
      c.on('close', () => { c.ended = true; });
      c.on('error', () => {});
      await new Promise((r) => { c.once('connect', r); c.once('error', r); });
      conns.push(c);
    }
    await waitFor(() => conns.slice(192).every((c) => c.ended), { what: 'every connection over the budget closed', timeout: 8000 });
    answered = conns.filter((c) => c.data.startsWith('HTTP/1.1 503'));
    assert.ok(answered.length >= 10, `over the budget, the first ones get a 503 (got ${answered.length})`);
    assert.ok(answered.every((c) => /too_many_connections/.test(c.data)));
    assert.ok(conns.slice(0, 192).every((c) => !c.ended && c.data === ''), 'the 192 admitted connections are untouched');
    assert.ok(!srv.logs.some((l) => /msg="accept failed"/.test(l)), 'accept never failed: the reserve held');
  } finally {
    for (const c of conns) c.destroy();
  }
  await waitFor(async () => (await fetch(srv.url + '/healthz').catch(() => ({ status: 0 }))).status === 200,
    { what: 'service after the flood', timeout: 10000 });
  // every connection over the budget was refused one way or the other: answered 503 (while
  // under budget + reserve/4) or closed at once; how many of each depends on how fast the
  // answered ones finish their lingering close
  const m = await (await fetch(srv.url + '/metrics')).text();
  const refused = counter(m, /streampai_http_refused_total\{reason="max_connections"\} (\d+)/);
  const dropped = counter(m, /streampai_http_refused_total\{reason="fd_reserve"\} (\d+)/);
  assert.equal(refused + dropped, 300 - 192, m);
  assert.equal(refused, answered.length, 'each 503 counted was received');
  assert.equal(counter(m, /streampai_http_refused_total\{reason="accept_error"\} (\d+)/), 0);
  assert.equal(counter(m, /streampai_http_max_connections (\d+)/), 192);
  await srv.stopClean();
});
