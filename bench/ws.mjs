// bench/ws: N idle WebSocket connections held by this load generator against
// (a) streampai and (b) a Node `ws` server (the peer), measured in the same run.
// Prints the server-side RSS growth per connection for both and the ratio.
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

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-bench-ws-'));
  const port = await freePort();
  const env = {
    ...process.env, STREAMPAI_ENV: 'test', LOG_LEVEL: 'warn', HTTP_LISTEN: `127.0.0.1:${port}`, DATA_DIR: dataDir,
    WEB_DIR: path.join(ROOT, 'web'), MAX_CONNECTIONS: '200000', WS_PING_INTERVAL: '600000', WS_IDLE_TIMEOUT: '600000',
  };
  const srv = spawn(path.join(ROOT, 'build/release/streampai'), ['serve'], { env, stdio: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(() => fetch(base + '/healthz').then((r) => r.ok), { what: 'streampai' });
  // Authenticate like a dashboard would, when accounts exist.
  let query = '';
  const reg = await fetch(base + '/api/auth/register', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'bench@example.com', password: 'bench-password-1' }) }).catch(() => null);
  if (reg && reg.status === 201) {
    const cookie = reg.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const csrf = (cookie.match(/sp_csrf=([^;]+)/) || [])[1] || '';
    const tok = await fetch(base + '/api/auth/token', { method: 'POST', headers: { cookie, 'x-csrf-token': csrf } });
    if (tok.ok) query = '?token=' + encodeURIComponent((await tok.json()).token);
  }
  // The peer: a Node ws server in its own process.
  const peerPort = await freePort();
  const peer = spawn(process.execPath, ['-e', `
    const { WebSocketServer } = require(${JSON.stringify(path.join(ROOT, 'node_modules/ws'))});
    new WebSocketServer({ host: '127.0.0.1', port: ${peerPort}, perMessageDeflate: false });
    console.log('ready');`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => peer.stdout.once('data', r));
  const results = [];
  for (const n of Ns) {
    const a = await measure('streampai', srv.pid, `ws://127.0.0.1:${port}/socket${query}`, n);
    const b = await measure('node-ws', peer.pid, `ws://127.0.0.1:${peerPort}/`, n);
    results.push({ n, a, b });
  }
  console.log('\nbench/ws summary (server-side RSS per idle connection)');
  for (const { n, a, b } of results) {
    console.log(`  N=${String(n).padStart(6)}  streampai ${(a.per / 1024).toFixed(2)} KiB  node-ws ${(b.per / 1024).toFixed(2)} KiB  ` +
      `ratio ${(a.per / b.per).toFixed(2)}x  target <= 4 KiB: ${a.per <= 4096 ? 'OK' : 'ABOVE TARGET'}`);
  }
  srv.kill('SIGTERM');
  peer.kill('SIGTERM');
}
main().catch((e) => { console.error(e); process.exit(1); });
