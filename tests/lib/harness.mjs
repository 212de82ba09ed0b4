// Test harness: starts the real streampai binary (ASan build) on a free port
// with a temp DATA_DIR, and real PostgreSQL / Redis servers, and stops them by pid.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.STREAMPAI_BIN || path.join(ROOT, 'build/asan/streampai');

export function tmpDir(prefix = 'sp-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// A free TCP port for a server a test starts. Picked at random BELOW the kernel's ephemeral
// range (32768-60999), so outgoing connections and other tests' bind(0) servers never land on
// it between this check and the real bind; never handed out twice by this process.
const handedOut = new Set();
export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = 15000 + Math.floor(Math.random() * 17000);
    if (handedOut.has(port)) continue;
    const ok = await new Promise((resolve) => {
      const s = net.createServer();
      s.unref();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) { handedOut.add(port); return port; }
  }
  throw new Error('no free port found');
}

// What the sanitizers print when they find something (ASan, LSan, UBSan). The asan build
// exits non-zero then too, but the text is checked on its own so a report is never missed.
export const SANITIZER_REPORT = /ERROR: (?:LeakSanitizer|AddressSanitizer)|SUMMARY: (?:Address|Leak|UndefinedBehavior)Sanitizer|runtime error:/;

// Asserts a process we stopped exited cleanly: exit code 0, no signal, no sanitizer report in
// its output. r = {code, sig}; output = its stdout+stderr (string or array of lines).
export function assertCleanExit(r, output, what = 'server') {
  const text = Array.isArray(output) ? output.join('\n') : String(output ?? '');
  const tail = text.slice(-4000);
  const m = text.match(SANITIZER_REPORT);
  assert.ok(!m, `${what}: sanitizer report (${m && m[0]}) in its output:\n${tail}`);
  assert.equal(r.sig ?? null, null, `${what} ended by signal ${r.sig}:\n${tail}`);
  assert.equal(r.code, 0, `${what} exit code ${r.code}:\n${tail}`);
}

// Secret-in-log canary. Fails when the log is empty or lacks a line it is known to contain
// (so a renamed message or a log that was never captured cannot turn the check off), then
// searches the whole log for each secret.
export function assertNoSecretsInLog(output, secrets, { known = [], what = 'log' } = {}) {
  const text = Array.isArray(output) ? output.join('\n') : String(output ?? '');
  assert.ok(text.trim().length > 0, `${what} is empty: nothing to check`);
  for (const re of known) assert.ok(re.test(text), `${what} lacks a line it must contain (${re}): the canary would check nothing`);
  const list = [...secrets];
  assert.ok(list.length > 0, 'no secrets to look for');
  for (const s of list) {
    assert.ok(typeof s === 'string' && s.length >= 3, `canary ${JSON.stringify(s)} is too short to mean anything`);
    const i = text.indexOf(s);
    if (i >= 0) {
      const from = text.lastIndexOf('\n', i) + 1;
      const to = text.indexOf('\n', i);
      assert.fail(`secret ${JSON.stringify(s.slice(0, 12))}... found in the ${what}: ${text.slice(from, to < 0 ? undefined : to).slice(0, 400)}`);
    }
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(fn, { timeout = 10000, interval = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    await sleep(interval);
  }
  throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
}

// Starts `streampai <args>`; resolves once the log says which port it listens on.
// Log lines are collected in srv.logs (array of strings).
export async function startServer({ env = {}, args = ['serve'], dataDir, readyPattern, timeout = 15000 } = {}) {
  dataDir = dataDir || tmpDir('sp-data-');
  const fullEnv = {
    PATH: process.env.PATH,
    STREAMPAI_ENV: 'test',
    HTTP_LISTEN: '127.0.0.1:0',
    DATA_DIR: dataDir,
    WEB_DIR: path.join(ROOT, 'web'),
    LOG_LEVEL: 'debug',
    ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=86',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    ...env,
  };
  const proc = spawn(BIN, args, { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const srv = { proc, dataDir, env: fullEnv, logs: [], port: 0, url: '', exitCode: null, exitSignal: null };
  let buf = '';
  const onData = (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { srv.logs.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
  };
  // 'close', not 'exit': LeakSanitizer writes its report as the process exits, so the output
  // is complete only once stdout and stderr are closed.
  const exited = new Promise((resolve) => proc.on('close', (code, sig) => {
    if (buf) { srv.logs.push(buf); buf = ''; }
    srv.exitCode = code; srv.exitSignal = sig; resolve({ code, sig });
  }));
  srv.exited = exited;
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const pattern = readyPattern || /module=http msg="listening" addr=127\.0\.0\.1:(\d+)/;
  try {
    let early = null; // waitFor() retries on a throw: an early exit ends the wait at once instead
    await waitFor(() => {
      if (srv.exitCode !== null || srv.exitSignal) { early = new Error(`server exited early (${srv.exitCode}/${srv.exitSignal}):\n${srv.logs.join('\n')}`); return true; }
      for (const l of srv.logs) { const m = l.match(pattern); if (m) { srv.port = Number(m[1]); return true; } }
      return false;
    }, { timeout, what: 'server start' });
    if (early) throw early;
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  srv.url = `http://127.0.0.1:${srv.port}`;
  // Stops with SIGTERM (or the given signal); resolves to {code, sig, ms}.
  srv.stop = async (sig = 'SIGTERM') => {
    if (srv.exitCode !== null || srv.exitSignal) return { code: srv.exitCode, sig: srv.exitSignal, ms: 0 };
    const t0 = Date.now();
    proc.kill(sig);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
    const r = await exited;
    clearTimeout(timer);
    return { ...r, ms: Date.now() - t0 };
  };
  // Stops it and asserts a clean exit (code 0, no signal, no ASan/LSan/UBSan report).
  srv.stopClean = async (sig = 'SIGTERM') => {
    const r = await srv.stop(sig);
    assertCleanExit(r, srv.logs, `${args[0]} on port ${srv.port}`);
    return r;
  };
  srv.kill9 = async () => { proc.kill('SIGKILL'); await exited; };
  srv.logText = () => srv.logs.join('\n');
  return srv;
}

// A real PostgreSQL 15 server in a temp dir, run as the postgres user. Returns {url, stop()}.
export async function startPostgres() {
  const bin = '/usr/lib/postgresql/15/bin';
  const dir = tmpDir('sp-pg-');
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  const port = await freePort();
  const asPg = (cmd, args) => (process.getuid && process.getuid() === 0)
    ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'pipe' })
    : execFileSync(cmd, args, { stdio: 'pipe' });
  execFileSync('chown', ['postgres:postgres', dir]);
  asPg(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  asPg(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', '-o',
    `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off`, 'start']);
  const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  asPg('/usr/bin/psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-c', 'CREATE DATABASE streampai']);
  return {
    port, pid, dir,
    url: `postgres://postgres@127.0.0.1:${port}/streampai`,
    stop: () => { try { asPg(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', 'stop']); } catch { try { process.kill(pid, 'SIGKILL'); } catch {} } },
    kill: () => { try { process.kill(pid, 'SIGKILL'); } catch {} },
    start: () => asPg(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', '-o',
      `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off`, 'start']),
  };
}

// A real redis-server on a free port. Returns {url, port, stop()}.
export async function startRedis() {
  const port = await freePort();
  const proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await waitFor(() => new Promise((res) => { const s = net.connect(port, '127.0.0.1', () => { s.end(); res(true); }); s.on('error', () => res(false)); }), { what: 'redis' });
  return { port, url: `redis://127.0.0.1:${port}`, proc, stop: () => { proc.kill('SIGTERM'); } };
}

// fetch with a cookie jar, CSRF header and Origin handled like a browser page would.
export function client(baseUrl) {
  const jar = new Map();
  const c = {
    jar,
    async req(method, p, body, headers = {}) {
      const h = { ...headers };
      if (jar.size) h.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      if (body !== undefined && typeof body !== 'string') { h['content-type'] = 'application/json'; body = JSON.stringify(body); }
      const res = await fetch(baseUrl + p, { method, body, headers: h, redirect: 'manual' });
      for (const sc of res.headers.getSetCookie ? res.headers.getSetCookie() : []) {
        const [kv] = sc.split(';');
        const eq = kv.indexOf('=');
        const k = kv.slice(0, eq).trim(), v = kv.slice(eq + 1).trim();
        if (/max-age=0/i.test(sc) || v === '') jar.delete(k); else jar.set(k, v);
      }
      const text = await res.text();
      let json; try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
      return { status: res.status, headers: res.headers, text, json };
    },
  };
  return c;
}
