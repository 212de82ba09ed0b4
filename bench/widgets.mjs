// bench/widgets: OBS widget sockets at scale (issue 11 benchmark), release build.
// U users (default 5000; BENCH_WIDGET_USERS) each with an alert box and a chat overlay socket
// (/socket?widget_token=, subscribed to alertbox:{uid} / chat:{uid}) on one fresh streampai.
// Users, sessions and widget tokens are seeded straight into SQLite (registering 5000 users
// would measure argon2id); session JWTs are signed with the server's own key from DATA_DIR.
// Measured:
//   - server RSS growth per widget socket (VmRSS before the first open, 1.5 s after the last);
//   - a burst: every user gets one test chat message and one test alert in the same second
//     (POST /api/widgets/chat/test and /api/widgets/alertbox/test, 64 in flight);
//       chat: publish -> arrival on the widget socket (arrival wall clock - the message's ts,
//             which the server stamps just before it publishes), p50/p99/max;
//       alert: request accepted -> `show` arrival (queue tick ALERT_PROCESSING_INTERVAL=10 +
//             the durable "shown" commit), p50/p99/max;
//   - the floor of this client: the same number of frames pushed by a Node `ws` server to the
//     same number of sockets in this process, send -> arrival p50/p99 (what the load
//     generator itself adds);
//   - server CPU (utime+stime) for the whole burst per 1,000 alerts+messages.
// Usage: node bench/widgets.mjs [users]
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { freePort, sleep, waitFor } from '../tests/lib/harness.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const U = Number(process.argv[2] || process.env.BENCH_WIDGET_USERS || 5000);

const rssOf = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)[1]) * 1024;
const cpuOf = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, USER_HZ 100
};
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN; };
const b64u = (b) => Buffer.from(b).toString('base64url');
const jwt = (key, sub, sid) => {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify({ sub, sid, iat: now, exp: now + 3600, typ: 'session' }))}`;
  return `${input}.${crypto.createHmac('sha256', key).update(input).digest('base64url')}`;
};

async function startStreampai(dataDir) {
  const port = await freePort();
  const env = {
    ...process.env, STREAMPAI_ENV: 'test', LOG_LEVEL: 'warn', HTTP_LISTEN: `127.0.0.1:${port}`, DATA_DIR: dataDir,
    WEB_DIR: path.join(ROOT, 'web'), MAX_CONNECTIONS: '200000', MAX_SOCKETS_PER_USER: '100000', WS_PING_INTERVAL: '300000', WS_IDLE_TIMEOUT: '600000',
    ALERT_PROCESSING_INTERVAL: '10', EVENT_HISTORY_SIZE: '16',
  };
  const proc = spawn(path.join(ROOT, 'build/release/streampai'), ['serve'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(() => {
    if (proc.exitCode !== null) throw new Error(`streampai exited at start: code ${proc.exitCode}`);
    return fetch(base + '/healthz').then((r) => r.ok).catch(() => false);
  }, { what: 'streampai', timeout: 20000 });
  return { proc, port, base };
}

async function stopClean(proc) {
  const exited = new Promise((r) => proc.once('exit', (code, sig) => r({ code, sig })));
  process.kill(proc.pid, 'SIGTERM');
  const r = await Promise.race([exited, sleep(15000).then(() => null)]);
  if (!r) { process.kill(proc.pid, 'SIGKILL'); throw new Error('streampai did not exit within 15 s of SIGTERM'); }
  if (r.code !== 0 || r.sig) throw new Error(`streampai exited uncleanly: code ${r.code} signal ${r.sig}`);
}

// users, sessions and both widget tokens per user, in one transaction
function seed(dataDir, n) {
  const now = Date.now();
  const users = [];
  const sql = ['BEGIN;'];
  for (let i = 0; i < n; i++) {
    const id = crypto.randomUUID(); const sid = crypto.randomUUID();
    const tok = { alertbox: crypto.randomBytes(32).toString('hex'), chat: crypto.randomBytes(32).toString('hex') };
    users.push({ id, sid, tok });
    sql.push(`INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES ('${id}', 'w${i}@bench.example', 'x', ${now}, ${now});`);
    sql.push(`INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ('${sid}', '${id}', ${now}, ${now + 3600000});`);
    for (const t of ['alertbox', 'chat']) {
      const h = crypto.createHash('sha256').update(tok[t]).digest('hex');
      sql.push(`INSERT INTO widget_tokens (token_hash, user_id, widget_type, created_at) VALUES ('${h}', '${id}', '${t}', ${now});`);
    }
  }
  sql.push('COMMIT;');
  execFileSync('sqlite3', ['-cmd', '.timeout 10000', path.join(dataDir, 'streampai.db')], { input: sql.join('\n') });
  return users;
}

function openWidget(port, tok, topic, onMsg) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket?widget_token=${tok}`, { perMessageDeflate: false });
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      if (m.event === 'subscribed') { resolve(ws); return; }
      onMsg(m);
    });
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', topic })));
    ws.on('error', () => resolve(null));
  });
}

async function openAll(port, users, onMsg) {
  const socks = [];
  const jobs = [];
  for (const u of users) {
    jobs.push([u.tok.alertbox, `alertbox:${u.id}`]);
    jobs.push([u.tok.chat, `chat:${u.id}`]);
  }
  for (let i = 0; i < jobs.length; i += 500) {
    const got = await Promise.all(jobs.slice(i, i + 500).map(([t, topic]) => openWidget(port, t, topic, onMsg)));
    socks.push(...got.filter(Boolean));
  }
  return socks;
}

async function burst(port, users) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const post = (p, token, body) => new Promise((resolve) => {
    const data = JSON.stringify(body);
    const r = http.request({ host: '127.0.0.1', port, method: 'POST', path: p, agent,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
    (res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode, at: Date.now() })); });
    r.on('error', () => resolve({ status: 0, at: Date.now() }));
    r.end(data);
  });
  const accepted = new Map(); // uid -> time the alert request was answered
  let fails = 0;
  const tasks = users.flatMap((u) => [
    async () => { const r = await post('/api/widgets/chat/test', u.jwt, { text: 'bench' }); if (r.status !== 200) fails++; },
    async () => { const r = await post('/api/widgets/alertbox/test', u.jwt, { type: 'follow' }); if (r.status !== 200) fails++; else accepted.set(u.id, r.at); },
  ]);
  const t0 = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => { while (next < tasks.length) await tasks[next++](); }));
  agent.destroy();
  return { ms: Date.now() - t0, fails, accepted };
}

// the load generator's own floor: a Node ws server in this process sends one frame to each of
// N sockets; send -> arrival
async function floor(n) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise((r) => wss.on('listening', r));
  const port = wss.address().port;
  const lat = [];
  const socks = [];
  for (let i = 0; i < n; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 500); j++) {
      batch.push(new Promise((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
        ws.on('message', (d) => lat.push(Date.now() - JSON.parse(d.toString()).ts));
        ws.on('open', () => resolve(ws));
        ws.on('error', () => resolve(null));
      }));
    }
    socks.push(...(await Promise.all(batch)).filter(Boolean));
  }
  await sleep(500);
  for (const c of wss.clients) c.send(JSON.stringify({ ts: Date.now(), payload: 'x'.repeat(200) }));
  await waitFor(() => lat.length >= socks.length || null, { timeout: 30000, what: 'floor frames' });
  for (const s of socks) s.terminate();
  await new Promise((r) => wss.close(r));
  return lat;
}

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-bench-widgets-'));
  const sp = await startStreampai(dataDir);
  let failed = null;
  try {
    const users = seed(dataDir, U);
    const key = fs.readFileSync(path.join(dataDir, 'token_signing.key'));
    for (const u of users) u.jwt = jwt(key, u.id, u.sid);
    const chatLat = []; const showAt = new Map();
    const onMsg = (m) => {
      const now = Date.now();
      if (m.event === 'message' && m.topic.startsWith('chat:')) chatLat.push(now - m.payload.ts);
      else if (m.event === 'show') showAt.set(m.topic.slice('alertbox:'.length), now);
    };
    await sleep(500);
    const rss0 = rssOf(sp.proc.pid);
    const t0 = Date.now();
    const socks = await openAll(sp.port, users, onMsg);
    await sleep(1500);
    const rss1 = rssOf(sp.proc.pid);
    const perSock = (rss1 - rss0) / Math.max(1, socks.length);
    console.log(`widgets: users=${U} sockets=${socks.length}/${2 * U} open_time=${((Date.now() - t0) / 1000).toFixed(1)}s ` +
      `rss_growth=${((rss1 - rss0) / 1048576).toFixed(1)}MiB per_socket=${(perSock / 1024).toFixed(2)}KiB (target <= 2 KiB: ${perSock <= 2048 ? 'OK' : 'ABOVE TARGET'})`);
    const cpu0 = cpuOf(sp.proc.pid);
    const b = await burst(sp.port, users);
    await waitFor(() => (chatLat.length >= U && showAt.size >= b.accepted.size) || null, { timeout: 60000, what: 'every chat message and show' });
    const cpu1 = cpuOf(sp.proc.pid);
    const alertLat = [...b.accepted].filter(([uid]) => showAt.has(uid)).map(([uid, at]) => showAt.get(uid) - at);
    console.log(`widgets: burst of ${U} chat messages + ${U} alerts sent in ${b.ms} ms (${b.fails} failed requests)`);
    console.log(`widgets: chat publish->arrival ms p50=${pct(chatLat, 0.5)} p99=${pct(chatLat, 0.99)} max=${Math.max(...chatLat)} (n=${chatLat.length}; target p99 <= 10 ms)`);
    console.log(`widgets: alert accepted->show ms p50=${pct(alertLat, 0.5)} p99=${pct(alertLat, 0.99)} max=${Math.max(...alertLat)} (n=${alertLat.length}; includes the 10 ms tick and the shown-mark commit)`);
    console.log(`widgets: server CPU for the burst ${((cpu1 - cpu0) * 1000).toFixed(0)} ms = ${((cpu1 - cpu0) * 1e6 / (2 * U / 1000) / 1000).toFixed(1)} ms per 1,000 requests (HTTP + auth + queue + fan-out)`);
    for (const s of socks) s.terminate();
    await sleep(500);
    const fl = await floor(socks.length);
    console.log(`widgets: client floor (Node ws -> ${fl.length} sockets in this process) ms p50=${pct(fl, 0.5)} p99=${pct(fl, 0.99)} max=${Math.max(...fl)}`);
  } catch (e) {
    failed = e;
  }
  await stopClean(sp.proc);
  fs.rmSync(dataDir, { recursive: true, force: true });
  if (failed) throw failed;
}
main().catch((e) => { console.error(e); process.exit(1); });
