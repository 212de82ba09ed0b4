// HTTP server integration tests: the real binary on a free port.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, sleep, waitFor, assertCleanExit, SANITIZER_REPORT } from '../lib/harness.mjs';

let srv;
before(async () => {
  srv = await startServer({ env: { HTTP_HEADER_TIMEOUT: '700', HTTP_IDLE_TIMEOUT: '1500', MAX_BODY_SIZE: '65536' } });
});
after(async () => { if (srv) await srv.stop(); }); // cleanup only: the clean exit is the last test

// Sends raw bytes on one connection; resolves with everything received until close or quiet time.
function raw(port, data, { quietMs = 400, waitClose = false, timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0), timer, closed = false;
    const done = () => { clearTimeout(timer); s.destroy(); resolve({ text: buf.toString('latin1'), closed }); };
    const arm = () => { clearTimeout(timer); if (!waitClose) timer = setTimeout(done, quietMs); };
    s.on('connect', () => { if (data) s.write(data); arm(); });
    s.on('data', (d) => { buf = Buffer.concat([buf, d]); arm(); });
    s.on('close', () => { closed = true; done(); });
    s.on('error', (e) => { if (!closed) reject(e); });
    setTimeout(done, timeout);
  });
}
const statuses = (text) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

test('healthz, readyz and metrics', async () => {
  const h = await fetch(srv.url + '/healthz');
  assert.equal(h.status, 200);
  assert.equal(await h.text(), 'ok\n');
  const r = await fetch(srv.url + '/readyz');
  assert.equal(r.status, 200);
  const rj = await r.json();
  assert.equal(rj.status, 'ready');
  const m = await (await fetch(srv.url + '/metrics')).text();
  assert.match(m, /streampai_http_requests_total\{route="\/healthz",status="200"\} \d+/);
  assert.match(m, /streampai_http_request_duration_seconds_bucket\{le="\+Inf"\} \d+/);
  assert.match(m, /streampai_process_resident_memory_bytes [1-9]\d+/);
  assert.match(m, /streampai_http_open_connections \d+/);
  assert.match(m, /streampai_event_loop_lag_seconds /);
});

test('keep-alive: many requests on one connection, pipelined answers in order', async () => {
  let req = '';
  for (let i = 0; i < 50; i++) req += `GET /api/_test/items/n${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
  const { text, closed } = await raw(srv.port, req);
  assert.equal(closed, false, 'connection stayed open');
  const ids = [...text.matchAll(/\{"id":"n(\d+)"\}/g)].map((m) => Number(m[1]));
  assert.deepEqual(ids, [...Array(50).keys()]);
});

test('404 and 405 with Allow, JSON error bodies', async () => {
  const a = await fetch(srv.url + '/api/nope');
  assert.equal(a.status, 404);
  assert.equal((await a.json()).error.code, 'not_found');
  const b = await fetch(srv.url + '/api/_test/items/1', { method: 'PUT' });
  assert.equal(b.status, 405);
  assert.equal(b.headers.get('allow'), 'GET, DELETE, HEAD');
  assert.equal((await b.json()).error.code, 'method_not_allowed');
});

test('a browser gets an HTML 404 page for an unknown URL; API clients keep JSON', async () => {
  const nav = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'; // Chromium's
  for (const p of ['/no/such/page', '/api/nope', '/js/missing.js']) {
    const r = await fetch(srv.url + p, { headers: { accept: nav } });
    assert.equal(r.status, 404, p);
    assert.match(r.headers.get('content-type'), /^text\/html/, p);
    const body = await r.text();
    assert.match(body, /<h1>Page not found<\/h1>/, p);
    assert.match(body, /href="\/dashboard"/, p);
  }
  for (const accept of ['application/json', '*/*', undefined]) {
    const r = await fetch(srv.url + '/no/such/page', { headers: accept ? { accept } : {} });
    assert.equal(r.status, 404);
    assert.equal((await r.json()).error.code, 'not_found', String(accept));
  }
});

test('HEAD has headers and no body', async () => {
  const { text } = await raw(srv.port, 'HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, /Content-Length: 3\r\n/);
  assert.ok(text.endsWith('\r\n\r\n'), 'no body after the head');
});

test('chunked request body', async () => {
  const body = 'a'.repeat(3000);
  const chunks = `${(1000).toString(16)}\r\n${body.slice(0, 1000)}\r\n${(2000).toString(16)}\r\n${body.slice(1000)}\r\n0\r\n\r\n`;
  const { text } = await raw(srv.port, `POST /api/_test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`);
  assert.match(text, /"bytes":3000/);
});

test('request line + headers over 16 KiB -> 431 and close', async () => {
  const { text, closed } = await raw(srv.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(17000)}\r\n\r\n`, { waitClose: true });
  assert.deepEqual(statuses(text), [431]);
  assert.match(text, /"code":"headers_too_large"/);
  assert.equal(closed, true);
  const many = Array.from({ length: 150 }, (_, i) => `X-H${i}: v`).join('\r\n');
  const r2 = await raw(srv.port, `GET /healthz HTTP/1.1\r\nHost: x\r\n${many}\r\n\r\n`, { waitClose: true });
  assert.deepEqual(statuses(r2.text), [431]);
});

test('body over the route limit -> 413 (declared and chunked)', async () => {
  const r1 = await fetch(srv.url + '/api/_test/echo', { method: 'POST', body: 'x'.repeat(70000) });
  assert.equal(r1.status, 413);
  assert.equal((await r1.json()).error.code, 'payload_too_large');
  const r2 = await fetch(srv.url + '/api/_test/echo_small', { method: 'POST', body: 'x'.repeat(1025) });
  assert.equal(r2.status, 413);
  const ok = await fetch(srv.url + '/api/_test/echo_small', { method: 'POST', body: 'x'.repeat(1024) });
  assert.equal(ok.status, 200);
  const chunk = 'y'.repeat(800);
  const { text } = await raw(srv.port, `POST /api/_test/echo_small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n${chunk}\r\n320\r\n${chunk}\r\n0\r\n\r\n`, { waitClose: true });
  assert.deepEqual(statuses(text), [413]);
});

test('request smuggling: CL+TE and duplicate CL -> 400, nothing smuggled', async () => {
  const smuggle = 'POST /api/_test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/_test/items/smuggled HTTP/1.1\r\n\r\n';
  const a = await raw(srv.port, smuggle, { waitClose: true });
  assert.deepEqual(statuses(a.text), [400]);
  assert.doesNotMatch(a.text, /smuggled/);
  const b = await raw(srv.port, 'POST /api/_test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', { waitClose: true });
  assert.deepEqual(statuses(b.text), [400]);
  const c = await raw(srv.port, 'POST /api/_test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nabc', { waitClose: true });
  assert.deepEqual(statuses(c.text), [400]);
});

test('slowloris: headers not complete within the header timeout -> closed', async () => {
  const t0 = Date.now();
  const s = net.connect(srv.port, '127.0.0.1');
  await new Promise((r) => s.on('connect', r));
  s.write('GET /healthz HTTP/1.1\r\n');
  const drip = setInterval(() => { try { s.write('X-A: b\r\n'); } catch {} }, 150);
  await new Promise((r) => s.on('close', r));
  clearInterval(drip);
  const ms = Date.now() - t0;
  assert.ok(ms >= 600 && ms < 3000, `closed after ${ms} ms`);
});

test('idle keep-alive connection closed after the idle timeout', async () => {
  const t0 = Date.now();
  const { text, closed } = await raw(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', { waitClose: true });
  assert.deepEqual(statuses(text), [200]);
  assert.equal(closed, true);
  const ms = Date.now() - t0;
  assert.ok(ms >= 1300 && ms < 4000, `idle close after ${ms} ms`);
});

test('static files: MIME, ETag/304, HEAD, no traversal', async () => {
  const r = await fetch(srv.url + '/');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  const etag = r.headers.get('etag');
  assert.ok(etag);
  const r304 = await fetch(srv.url + '/', { headers: { 'if-none-match': etag } });
  assert.equal(r304.status, 304);
  const css = fs.readdirSync(path.join(srv.env.WEB_DIR)).find((f) => f.endsWith('.html'));
  assert.ok(css);
  for (const p of ['/../Makefile', '/%2e%2e/Makefile', '/..%2fMakefile', '/.git/config', '/nope.js']) {
    const { text } = await raw(srv.port, `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.deepEqual(statuses(text), [404], p);
    assert.doesNotMatch(text, /CC-ASAN|\[core\]/);
  }
});

test('access log: one line per request, no query secrets', async () => {
  await fetch(srv.url + '/api/_test/items/logme?token=SECRET-CANARY-123');
  await waitFor(() => srv.logs.some((l) => l.includes('path="/api/_test/items/logme"')), { what: 'access log line' });
  const line = srv.logs.find((l) => l.includes('path="/api/_test/items/logme"'));
  assert.match(line, /method=GET .*status=200 bytes=\d+ us=\d+/);
  assert.ok(!srv.logText().includes('SECRET-CANARY-123'));
});

test('MAX_CONNECTIONS: extra connections get 503 and close', async () => {
  const s2 = await startServer({ env: { MAX_CONNECTIONS: '3' } });
  try {
    const socks = [];
    for (let i = 0; i < 3; i++) { const s = net.connect(s2.port, '127.0.0.1'); await new Promise((r) => s.on('connect', r)); socks.push(s); }
    await sleep(100);
    const { text, closed } = await raw(s2.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', { waitClose: true });
    assert.deepEqual(statuses(text), [503]);
    assert.equal(closed, true);
    socks.forEach((s) => s.destroy());
    await sleep(200);
    const ok = await fetch(s2.url + '/healthz');
    assert.equal(ok.status, 200);
    await s2.stopClean();
  } finally { await s2.stop(); }
});

test('graceful shutdown: new connections refused during the drain, in-flight request finishes, clean exit well within 5 s', async () => {
  const s2 = await startServer();
  try {
    let settled = false;
    const inflight = fetch(s2.url + '/api/_test/slow?ms=1500').then((r) => r.json()).finally(() => { settled = true; });
    await sleep(150);
    const t0 = Date.now();
    s2.proc.kill('SIGTERM');
    await waitFor(() => s2.logs.some((l) => /module=main msg="shutting down"/.test(l)), { timeout: 1000, what: 'shutdown begun' });
    // while the server drains (still running, the slow request still in flight): refused
    const err = await new Promise((resolve) => {
      const c = net.connect(s2.port, '127.0.0.1');
      c.on('connect', () => { c.destroy(); resolve(null); });
      c.on('error', (e) => resolve(e));
    });
    assert.equal(settled, false, 'checked while the in-flight request was still running');
    assert.equal(s2.exitCode, null, 'checked before the server exited');
    assert.equal(err?.code, 'ECONNREFUSED', `a new connection during the drain: ${err ? err.code : 'accepted'}`);
    assert.deepEqual(await inflight, { slow: true });
    const r = await s2.exited;
    const ms = Date.now() - t0;
    assertCleanExit(r, s2.logs);
    assert.ok(ms < 5000, `shutdown took ${ms} ms`);
    assert.ok(s2.logs.some((l) => /msg="shutdown complete"/.test(l)));
  } finally { await s2.stop('SIGKILL'); }
});

test('SIGHUP reopens LOG_FILE (logrotate)', async () => {
  const dir = fs.mkdtempSync('/tmp/sp-log-');
  const file = path.join(dir, 'streampai.log');
  // The listening line goes to the file, so wait on the file instead of stderr.
  const { spawn } = await import('node:child_process');
  const { BIN } = await import('../lib/harness.mjs');
  const p = spawn(BIN, ['serve'], { env: { ...process.env, STREAMPAI_ENV: 'test', HTTP_LISTEN: '127.0.0.1:0', DATA_DIR: dir, LOG_FILE: file }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  const closed = new Promise((resolve) => p.on('close', (code, sig) => resolve({ code, sig })));
  try {
    const port = await waitFor(() => { const m = fs.existsSync(file) && fs.readFileSync(file, 'utf8').match(/addr=127\.0\.0\.1:(\d+)/); return m && Number(m[1]); }, { what: 'log file' });
    fs.renameSync(file, file + '.1');
    p.kill('SIGHUP');
    await waitFor(() => fs.existsSync(file), { what: 'reopened file' });
    await fetch(`http://127.0.0.1:${port}/api/_test/items/after-rotate`);
    await waitFor(() => fs.readFileSync(file, 'utf8').includes('after-rotate'), { what: 'new line in new file' });
    p.kill('SIGTERM');
    const r = await closed;
    assertCleanExit(r, `${fs.readFileSync(file + '.1', 'utf8')}${fs.readFileSync(file, 'utf8')}${out}`);
  } finally { if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL'); }
});

test('bad configuration exits 2 naming the variable; check-config', async () => {
  const { spawnSync } = await import('node:child_process');
  const { BIN } = await import('../lib/harness.mjs');
  const bad = spawnSync(BIN, ['serve'], { env: { PATH: process.env.PATH, HTTP_LISTEN: 'nope' }, encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /HTTP_LISTEN: expected host:port/);
  assert.doesNotMatch(bad.stderr, SANITIZER_REPORT);
  const prod = spawnSync(BIN, ['check-config'], { env: { PATH: process.env.PATH, STREAMPAI_ENV: 'prod' }, encoding: 'utf8' });
  assert.equal(prod.status, 2);
  assert.match(prod.stdout, /❌ TOKEN_SIGNING_SECRET/);
  assert.doesNotMatch(prod.stderr, SANITIZER_REPORT);
  const dev = spawnSync(BIN, ['check-config'], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
  assert.equal(dev.status, 0);
  assert.match(dev.stdout, /✅ HTTP_LISTEN/);
  const help = spawnSync(BIN, ['serve', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /usage: streampai serve/);
  const unknown = spawnSync(BIN, ['frobnicate'], { encoding: 'utf8' });
  assert.equal(unknown.status, 2);
});

test('the server exits cleanly (no ASan/LSan report)', async () => {
  await srv.stopClean();
});
