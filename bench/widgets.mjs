// bench/widgets: OBS widget sockets at scale (issue 11 benchmark), release build.
// U users (default 5000; BENCH_WIDGET_USERS) each with an alert box and a chat overlay socket
// (/socket?widget_token=, subscribed to alertbox:{uid} / chat:{uid}) on one fresh streampai
// (STREAMPAI_ENV=test: the server stamps published_at_ns / released_at_ns, CLOCK_REALTIME ns).
// The sockets are held by bench/widgets_rx (C, kernel receive timestamps SO_TIMESTAMPNS), so
// the receiver's own scheduling is not in the numbers.
// Users, sessions and widget tokens are seeded straight into SQLite (registering 5000 users
// would measure argon2id); session JWTs are signed with the server's own key from DATA_DIR.
// Measured:
//   - server RSS growth per widget socket (VmRSS before the first open, 1.5 s after the last);
//   - a burst: every user gets one test chat message and one test alert in the same burst
//     (POST /api/widgets/chat/test and /api/widgets/alertbox/test, 64 in flight; the HTTP
//     intake is NOT in the latency: each number starts at a stamp the server takes after it):
//       chat:  published_at_ns (just before the publish) -> kernel arrival, p50/p99/max;
//       alert: released_at_ns (the AlertQueue tick released the show) -> arrival (includes the
//              durable "shown" commit), and published_at_ns (after the commit) -> arrival;
//   - the send() floor of the same run: bench/widgets_rx floor, one plain send() of a message
//     of the same sizes to each of as many loopback sockets, send -> kernel arrival;
//   - server CPU (utime+stime) for the whole burst per 1,000 requests.
// Usage: node bench/widgets.mjs [users]   (bench/widgets.sh builds build/bench/widgets_rx)
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
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

// bench/widgets_rx holding every widget socket; lines() resolves on each output line
function startRx(port, users, dataDir) {
  const cfg = path.join(dataDir, 'rx.conf');
  const rows = [];
  for (const u of users) {
    rows.push(`${port}\t/socket?widget_token=${u.tok.alertbox}\t${JSON.stringify({ type: 'subscribe', topic: `alertbox:${u.id}` })}`);
    rows.push(`${port}\t/socket?widget_token=${u.tok.chat}\t${JSON.stringify({ type: 'subscribe', topic: `chat:${u.id}` })}`);
  }
  fs.writeFileSync(cfg, rows.join('\n') + '\n');
  const proc = spawn(path.join(ROOT, 'build/bench/widgets_rx'), ['rx', cfg], { stdio: ['pipe', 'pipe', 'inherit'] });
  const rx = { proc, ready: 0, msgs: [], closed: 0 };
  readline.createInterface({ input: proc.stdout }).on('line', (l) => {
    const f = l.split(' ');
    if (f[0] === 'READY') rx.ready = Number(f[1]);
    else if (f[0] === 'X') rx.closed++;
    else if (f[0] === 'M') rx.msgs.push({ sock: Number(f[1]), event: f[2], rx: BigInt(f[3]), pub: BigInt(f[4]), rel: BigInt(f[5]), bytes: Number(f[6]) });
  });
  return rx;
}

function runFloor(n, sizes) {
  return new Promise((resolve, reject) => {
    const proc = spawn(path.join(ROOT, 'build/bench/widgets_rx'), ['floor', String(n), ...sizes.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lat = [];
    let done = -1;
    readline.createInterface({ input: proc.stdout }).on('line', (l) => {
      const f = l.split(' ');
      if (f[0] === 'F') lat.push(Number(f[2]) / 1e6);
      else if (f[0] === 'DONE') done = Number(f[1]);
    });
    proc.on('exit', (code) => (code === 0 && done === n ? resolve(lat) : reject(new Error(`floor: exit ${code}, ${done}/${n} messages`))));
  });
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

const ms = (ns) => Number(ns) / 1e6;
const fmt = (a) => `p50=${pct(a, 0.5).toFixed(3)} p99=${pct(a, 0.99).toFixed(3)} max=${Math.max(...a).toFixed(3)}`;
const median = (a) => pct(a, 0.5);

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-bench-widgets-'));
  const sp = await startStreampai(dataDir);
  let failed = null;
  let rx = null;
  try {
    const users = seed(dataDir, U);
    const key = fs.readFileSync(path.join(dataDir, 'token_signing.key'));
    for (const u of users) u.jwt = jwt(key, u.id, u.sid);
    await sleep(500);
    const rss0 = rssOf(sp.proc.pid);
    const t0 = Date.now();
    rx = startRx(sp.port, users, dataDir);
    await waitFor(() => {
      if (rx.proc.exitCode !== null) throw new Error(`widgets_rx exited: code ${rx.proc.exitCode}`);
      return rx.ready > 0 || null;
    }, { timeout: 300000, interval: 200, what: 'every widget socket open and subscribed' });
    const openS = (Date.now() - t0) / 1000;
    await sleep(1500);
    const rss1 = rssOf(sp.proc.pid);
    const perSock = (rss1 - rss0) / Math.max(1, rx.ready);
    console.log(`widgets: users=${U} sockets=${rx.ready}/${2 * U} open_time=${openS.toFixed(1)}s ` +
      `rss_growth=${((rss1 - rss0) / 1048576).toFixed(1)}MiB per_socket=${(perSock / 1024).toFixed(2)}KiB (target <= 2 KiB: ${perSock <= 2048 ? 'OK' : 'ABOVE TARGET'})`);
    const cpu0 = cpuOf(sp.proc.pid);
    const b = await burst(sp.port, users);
    const chats = () => rx.msgs.filter((m) => m.event === 'message');
    const shows = () => rx.msgs.filter((m) => m.event === 'show');
    await waitFor(() => (chats().length >= U && shows().length >= b.accepted.size) || null, { timeout: 120000, what: 'every chat message and show' });
    const cpu1 = cpuOf(sp.proc.pid);
    if (rx.closed) throw new Error(`${rx.closed} widget sockets closed during the burst`);
    const chatLat = chats().map((m) => ms(m.rx - m.pub));
    const showPub = shows().map((m) => ms(m.rx - m.pub));
    const showRel = shows().map((m) => ms(m.rx - m.rel));
    const commit = shows().map((m) => ms(m.pub - m.rel));
    console.log(`widgets: burst of ${U} chat messages + ${U} alerts sent in ${b.ms} ms (${b.fails} failed requests)`);
    console.log(`widgets: chat published->arrival ms ${fmt(chatLat)} (n=${chatLat.length}; target p99 <= 10 ms: ${pct(chatLat, 0.99) <= 10 ? 'OK' : 'NOT MET'})`);
    console.log(`widgets: alert released->arrival ms ${fmt(showRel)} (n=${showRel.length}; the queue's tick released it; includes the durable shown commit; target p99 <= 10 ms: ${pct(showRel, 0.99) <= 10 ? 'OK' : 'NOT MET'})`);
    console.log(`widgets: alert published->arrival ms ${fmt(showPub)} (after the commit); released->published (commit) ms ${fmt(commit)}`);
    console.log(`widgets: server CPU for the burst ${((cpu1 - cpu0) * 1000).toFixed(0)} ms = ${((cpu1 - cpu0) * 1e6 / (2 * U / 1000) / 1000).toFixed(1)} ms per 1,000 requests (HTTP + auth + queue + fan-out)`);
    const sizes = [median(chats().map((m) => m.bytes)), median(shows().map((m) => m.bytes))];
    rx.proc.stdin.end();
    await new Promise((r) => (rx.proc.exitCode !== null ? r() : rx.proc.once('exit', r)));
    rx = null;
    await sleep(500);
    const fl = await runFloor(2 * U, sizes);
    console.log(`widgets: send() floor (${fl.length} loopback sockets, one send() each of ${sizes.join('/')} bytes) send->arrival ms ${fmt(fl)}`);
  } catch (e) {
    failed = e;
  }
  if (rx) rx.proc.kill('SIGTERM');
  await stopClean(sp.proc);
  fs.rmSync(dataDir, { recursive: true, force: true });
  if (failed) throw failed;
}
main().catch((e) => { console.error(e); process.exit(1); });
