// Shared helpers of the campaigns (make chaos / soak / slow-readers): processes started from the
// release build with their logs in files, HTTP with a keep-alive agent, users, /metrics parsing.
import { spawn, execFileSync } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ROOT, freePort, sleep, waitFor, tmpDir } from '../lib/harness.mjs';

export { ROOT, freePort, sleep, waitFor, tmpDir };
export const BIN = process.env.STREAMPAI_BIN || path.join(ROOT, 'build/release/streampai');

// Deterministic PRNG (mulberry32) so a run can be repeated with CAMPAIGN_SEED.
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  next.pick = (arr) => arr[Math.floor(next() * arr.length)];
  next.chance = (p) => next() < p;
  return next;
}

// A streampai process (serve or relay) with stdout+stderr appended to logFile.
export function spawnSp(args, env, logFile, { preload } = {}) {
  const fd = fs.openSync(logFile, 'a');
  const fullEnv = { PATH: process.env.PATH, ...env };
  if (preload) fullEnv.LD_PRELOAD = preload;
  const p = spawn(BIN, args, { env: fullEnv, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  p.exited = new Promise((r) => p.once('exit', (code, sig) => r({ code, sig })));
  p.kill9 = async () => { if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL'); return p.exited; };
  p.term = async (ms = 15000) => {
    if (p.exitCode !== null || p.signalCode !== null) return p.exited;
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), ms);
    const r = await p.exited;
    clearTimeout(t);
    return r;
  };
  return p;
}

export const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

// One HTTP request; never throws: {status, json, text, ms} or {status: 0, err}.
export function rq(port, method, p, body, headers = {}, { timeout = 20000, ag = agent, localAddress } = {}) {
  return new Promise((resolve) => {
    const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    if (data !== undefined) { h['content-type'] = h['content-type'] || 'application/json'; h['content-length'] = Buffer.byteLength(data); }
    const t0 = performance.now();
    let done = false;
    const fin = (v) => { if (!done) { done = true; resolve({ ...v, ms: performance.now() - t0 }); } };
    const r = http.request({ host: '127.0.0.1', port, method, path: p, headers: h, agent: ag, localAddress }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try { json = text ? JSON.parse(text) : null; } catch { /* not json */ }
        fin({ status: res.statusCode, text, json, headers: res.headers });
      });
      res.on('error', (e) => fin({ status: 0, err: e.message }));
      res.on('close', () => fin({ status: 0, err: 'connection closed before the end of the answer' }));
    });
    // a hard deadline for the whole exchange (setTimeout on the request is an idle timer that
    // starts only once a socket is assigned)
    const hard = setTimeout(() => { r.destroy(new Error('timeout')); fin({ status: 0, err: 'timeout' }); }, timeout);
    hard.unref();
    r.on('close', () => clearTimeout(hard));
    r.setTimeout(timeout, () => { r.destroy(new Error('timeout')); });
    r.on('error', (e) => fin({ status: 0, err: e.message }));
    r.end(data);
  });
}

export async function waitHealthy(port, proc, timeout = 30000) {
  await waitFor(async () => {
    if (proc && (proc.exitCode !== null || proc.signalCode !== null)) throw new Error(`process exited ${proc.exitCode}/${proc.signalCode}`);
    return (await rq(port, 'GET', '/healthz', undefined, {}, { timeout: 2000 })).status === 200;
  }, { timeout, interval: 100, what: `healthz on ${port}` });
}

// Registers a user through the API and gets a Bearer token. Returns null when refused/failed.
let userSeq = 0;
// localAddress: a 127.x.y.z source address (registration is throttled per client address).
export async function registerUser(port, tag = 'c', localAddress = undefined) {
  const email = `${tag}${process.pid}x${Date.now().toString(36)}${++userSeq}@example.com`;
  const origin = `http://127.0.0.1:${port}`;
  const r = await rq(port, 'POST', '/api/auth/register', { email, password: 'correct horse battery', display_name: 'Campaign' }, { origin }, { localAddress });
  if (r.status !== 201) return { email, status: r.status, err: r.err || r.text };
  const u = { email, status: 201, id: r.json.user.id };
  const t = await tokenFrom(port, r.headers['set-cookie'], localAddress);
  if (t) u.token = t;
  return u;
}

async function tokenFrom(port, setCookie, localAddress) {
  const origin = `http://127.0.0.1:${port}`;
  const jar = Object.fromEntries((setCookie || []).map((c) => c.split(';')[0].split('=')));
  const cookie = Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; ');
  const t = await rq(port, 'POST', '/api/auth/token', undefined, { cookie, 'x-csrf-token': jar.sp_csrf, origin }, { localAddress });
  return t.status === 200 ? t.json.token : null;
}

export async function loginToken(port, email) {
  const origin = `http://127.0.0.1:${port}`;
  const r = await rq(port, 'POST', '/api/auth/login', { email, password: 'correct horse battery' }, { origin });
  if (r.status !== 200) return null;
  return tokenFrom(port, r.headers['set-cookie']);
}

// Prometheus text -> Map(name{labels} -> value)
export function parseMetrics(text) {
  const m = new Map();
  for (const line of String(text || '').split('\n')) {
    if (!line || line[0] === '#') continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

export const rssOf = (pid) => {
  try { return Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)[1]) * 1024; } catch { return NaN; }
};
export const fdsOf = (pid) => { try { return fs.readdirSync(`/proc/${pid}/fd`).length; } catch { return NaN; } };
export const pct = (arr, p) => {
  const s = [...arr].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] : NaN;
};

export function sqlite(db, sql) {
  return execFileSync('sqlite3', ['-batch', '-json', db, sql], { encoding: 'utf8', timeout: 30000 }).trim();
}
export function sqliteRows(db, sql) {
  const out = sqlite(db, sql);
  return out ? JSON.parse(out) : [];
}
export const q = (s) => `'${String(s).replace(/'/g, "''")}'`;

// A small H.264/AAC FLV clip, encoded once per run, republished with -c copy (cheap).
export function makeClip(dir) {
  const out = path.join(dir, 'clip.flv');
  execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=15',
    '-f', 'lavfi', '-i', 'sine', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '15', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '32k', '-t', '4', '-f', 'flv', '-y', out], { stdio: 'ignore' });
  return out;
}
export function publishLoop(clip, url) {
  const p = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip,
    '-c', 'copy', '-f', 'flv', url], { stdio: 'ignore' });
  p.exited = new Promise((r) => p.once('exit', (code, sig) => r({ code, sig })));
  return p;
}

// Registers n users (concurrency 4, each from its own 127.77.x.y address). Throws on a failure.
export async function registerMany(port, n, tag) {
  const users = new Array(n);
  let next = 0;
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (next < n) {
      const i = next++;
      const u = await registerUser(port, tag, `127.77.${Math.floor(i / 250) % 250}.${2 + (i % 250)}`);
      if (!u.token) throw new Error(`register ${i}: ${u.status} ${u.err}`);
      users[i] = u;
    }
  }));
  return users;
}

// A WebSocket on /socket?token= from a 127.a.b.c source address, subscribed to topics; counts
// messages, keeps arrival times of matching ones through onMsg.
export async function openSocket(WebSocket, port, token, topics, localAddress, onMsg) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket?token=${token}`,
      { localAddress, perMessageDeflate: false, origin: `http://127.0.0.1:${port}` });
    const s = { ws, msgs: 0, closed: null, open: false };
    ws.on('message', (d) => { s.msgs++; if (onMsg) onMsg(s, d); });
    ws.on('open', () => {
      s.open = true;
      for (const t of topics) ws.send(JSON.stringify({ type: 'subscribe', topic: t }));
      resolve(s);
    });
    ws.on('close', (code) => { s.closed = code; if (!s.open) resolve(s); });
    ws.on('error', () => { if (!s.open) { s.closed = s.closed || -1; resolve(s); } });
  });
}

// Host pauses: on a shared machine the campaign's processes can be stopped (SIGSTOP, a frozen
// cgroup) or starved for seconds; a timer that fires more than gapMs late says so. Returns
// {count, ms, stop()}; a campaign whose run was paused prints it and does not trust its timings.
export function pauseWatch(gapMs = 3000) {
  const w = { count: 0, ms: 0 };
  let last = Date.now();
  const t = setInterval(() => {
    const now = Date.now();
    const late = now - last - 200;
    if (late > gapMs) { w.count++; w.ms += late; }
    last = now;
  }, 200);
  w.stop = () => clearInterval(t);
  return w;
}
