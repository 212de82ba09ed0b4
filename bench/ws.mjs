// bench/ws: N idle WebSocket connections held by this load generator against
// (a) streampai and (b) a Node `ws` server (the peer), measured in the same run.
// Prints the server-side RSS growth per connection for both and the ratio.
// Each size N runs on fresh server processes: for every N a new streampai (`serve`, release
// build, its own empty DATA_DIR) and a new peer are started, measured, then stopped by pid
// with SIGTERM; each must exit cleanly (exit code 0, no signal, within 15 s) or the bench fails.
// RSS (VmRSS) is read 0.5 s after the server is up, and again 1.5 s after the N-th open.
// Usage: node bench/ws.mjs [N...]   (default 10000 50000 100000)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { freePort, sleep, waitFor } from '../tests/lib/harness.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const counts = process.argv.slice(2).map(Number).filter(Boolean);
const Ns = counts.length ? counts : [10000, 50000, 100000];

const rssOf = (pid) => {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]) * 1024;
};

async function openMany(url, n, headers = {}) {
  const socks = [];
  let opened = 0, failed = 0;
  const batch = 500;
  for (let i = 0; i < n; i += batch) {
    const ps = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      // Spread over source addresses: one address has ~28k ephemeral ports.
      const localAddress = `127.0.0.${2 + Math.floor(j / 25000)}`;
      ps.push(new Promise((resolve) => {
        const ws = new WebSocket(url, { headers, localAddress, perMessageDeflate: false });
        ws.on('open', () => { opened++; socks.push(ws); resolve(); });
        ws.on('error', () => { failed++; resolve(); });
      }));
    }
    await Promise.all(ps);
  }
  return { socks, opened, failed };
}

async function measure(name, pid, url, n, headers) {
  await sleep(500);
  const before = rssOf(pid);
  const t0 = Date.now();
  const { socks, opened, failed } = await openMany(url, n, headers);
  await sleep(1500);
  const after = rssOf(pid);
  const per = (after - before) / Math.max(1, opened);
  console.log(`${name.padEnd(12)} N=${String(n).padStart(6)} opened=${opened} failed=${failed} ` +
    `open_time=${((Date.now() - t0) / 1000).toFixed(1)}s rss_growth=${((after - before) / 1048576).toFixed(1)}MiB per_conn=${(per / 1024).toFixed(2)}KiB`);
  for (const s of socks) s.terminate();
  await sleep(1000);
  return { per, opened };
}

// Stops a child by its pid with SIGTERM and asserts a clean exit (code 0, no signal).
async function stopClean(name, proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    throw new Error(`${name} (pid ${proc.pid}) had already exited: code ${proc.exitCode} signal ${proc.signalCode}`);
  }
  const exited = new Promise((r) => proc.once('exit', (code, sig) => r({ code, sig })));
  const t0 = Date.now();
  process.kill(proc.pid, 'SIGTERM');
  let timer;
  const r = await Promise.race([exited, new Promise((res) => { timer = setTimeout(() => res(null), 15000); })]);
  clearTimeout(timer);
  if (!r) {
    process.kill(proc.pid, 'SIGKILL');
    await exited;
    throw new Error(`${name} (pid ${proc.pid}) did not exit within 15 s of SIGTERM (killed)`);
  }
  if (r.code !== 0 || r.sig) throw new Error(`${name} (pid ${proc.pid}) exited uncleanly: code ${r.code} signal ${r.sig}`);
  return Date.now() - t0;
}

// A fresh streampai: new DATA_DIR and port; authenticates like a dashboard would, when
// accounts exist. Returns {proc, url, dataDir}.
async function startStreampai() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-bench-ws-'));
  const port = await freePort();
  const env = {
    ...process.env, STREAMPAI_ENV: 'test', LOG_LEVEL: 'warn', HTTP_LISTEN: `127.0.0.1:${port}`, DATA_DIR: dataDir,
    WEB_DIR: path.join(ROOT, 'web'), MAX_CONNECTIONS: '200000', MAX_SOCKETS_PER_USER: '100000', WS_PING_INTERVAL: '300000', WS_IDLE_TIMEOUT: '600000',
  };
  const proc = spawn(path.join(ROOT, 'build/release/streampai'), ['serve'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(() => {
    if (proc.exitCode !== null) throw new Error(`streampai exited at start: code ${proc.exitCode}`);
    return fetch(base + '/healthz').then((r) => r.ok).catch(() => false);
  }, { what: 'streampai', timeout: 20000 });
  let query = '';
  const reg = await fetch(base + '/api/auth/register', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'bench@example.com', password: 'bench-password-1' }) }).catch(() => null);
  if (reg && reg.status === 201) {
    const cookie = reg.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const csrf = (cookie.match(/sp_csrf=([^;]+)/) || [])[1] || '';
    const tok = await fetch(base + '/api/auth/token', { method: 'POST', headers: { cookie, 'x-csrf-token': csrf } });
    if (tok.ok) query = '?token=' + encodeURIComponent((await tok.json()).token);
  }
  return { proc, url: `ws://127.0.0.1:${port}/socket${query}`, dataDir };
}

// A fresh peer: a Node ws server in its own process; exits 0 on SIGTERM after closing.
async function startPeer() {
  const port = await freePort();
  const proc = spawn(process.execPath, ['-e', `
    const { WebSocketServer } = require(${JSON.stringify(path.join(ROOT, 'node_modules/ws'))});
    const wss = new WebSocketServer({ host: '127.0.0.1', port: ${port}, perMessageDeflate: false });
    wss.on('listening', () => console.log('ready'));
    process.on('SIGTERM', () => { for (const c of wss.clients) c.terminate(); wss.close(() => process.exit(0)); });`],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    proc.stdout.once('data', resolve);
    proc.once('exit', (code) => reject(new Error(`node-ws peer exited at start: code ${code}`)));
  });
  return { proc, url: `ws://127.0.0.1:${port}/` };
}

async function main() {
  const results = [];
  for (const n of Ns) {
    const sp = await startStreampai();
    let a;
    try {
      a = await measure('streampai', sp.proc.pid, sp.url, n);
    } finally {
      a = { ...a, stopMs: await stopClean(`streampai N=${n}`, sp.proc) };
      fs.rmSync(sp.dataDir, { recursive: true, force: true });
    }
    const peer = await startPeer();
    let b;
    try {
      b = await measure('node-ws', peer.proc.pid, peer.url, n);
    } finally {
      b = { ...b, stopMs: await stopClean(`node-ws N=${n}`, peer.proc) };
    }
    console.log(`  N=${n}: streampai pid ${sp.proc.pid} exited 0 after SIGTERM in ${a.stopMs} ms; node-ws pid ${peer.proc.pid} exited 0 in ${b.stopMs} ms`);
    results.push({ n, a, b });
  }
  console.log('\nbench/ws summary (server-side RSS per idle connection; fresh server processes for every N)');
  for (const { n, a, b } of results) {
    console.log(`  N=${String(n).padStart(6)}  streampai ${(a.per / 1024).toFixed(2)} KiB (${a.opened} opened)  node-ws ${(b.per / 1024).toFixed(2)} KiB (${b.opened} opened)  ` +
      `ratio ${(a.per / b.per).toFixed(2)}x  target <= 4 KiB: ${a.per <= 4096 ? 'OK' : 'ABOVE TARGET'}`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
