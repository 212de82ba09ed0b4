// make slow-readers: SR_SOCKETS (10,000) sockets of user A that stop reading (the client pauses
// its TCP socket after subscribing) while messages flow to them, and SR_FAST (50) fast readers of
// user B. Messages: PUT /api/stream/metadata with a SR_MSG_BYTES (4,000; at most 5,000)
// description, for A as fast as the server answers and for B SR_RATE (10) per second, for
// SR_SECONDS (60); each is one state_changed fanned out to every socket of that user. The
// per-socket queue cap is WS_MAX_QUEUE = SR_QUEUE (65,536 bytes; production default 1 MiB): once
// the kernel buffers of a stopped reader are full, its queue grows to the cap and the server
// closes it (1008). Phase 1 measures the fast readers alone (PUT -> receipt), phase 2 with the
// stopped readers. Prints max RSS / sockets against the cap, how many stopped readers the server
// closed, the fast readers' latency in both phases, the server thread's CPU per message, and one
// summary line. Verdict: messages reached the stopped readers, RSS growth during the flow per
// stopped reader <= cap + 16 KiB, every fast reader still open and receiving every message,
// fast-reader p99 in phase 2 < SR_FAST_P99_MS (250 ms); INVALID when the host paused the run.
import WebSocket from 'ws';
import path from 'node:path';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { startFakeCloudflare } from '../fakes/cloudflare.mjs';
import { ROOT, spawnSp, rq, waitHealthy, registerMany, openSocket, freePort, sleep, tmpDir, rssOf, pct, pauseWatch, parseMetrics } from './lib.mjs';

const N = Number(process.env.SR_SOCKETS || 10000);
const FAST = Number(process.env.SR_FAST || 50);
const MSG = Number(process.env.SR_MSG_BYTES || 4000);
const RATE = Number(process.env.SR_RATE || 10);
const SECS = Number(process.env.SR_SECONDS || 60);
const QCAP = Number(process.env.SR_QUEUE || 65536);
const P99_MAX = Number(process.env.SR_FAST_P99_MS || 250);
const log = (...a) => console.error('[slow-readers]', ...a);
const sched = (pid) => { try { return fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number); } catch { return [0, 0, 0]; } };

const dir = tmpDir('sp-slow-');
const port = await freePort();
const cf = await startFakeCloudflare({});
const srv = spawnSp(['serve'], {
  STREAMPAI_ENV: 'test', LOG_LEVEL: 'warn', DATA_DIR: dir, HTTP_LISTEN: `127.0.0.1:${port}`, PUBLIC_URL: `http://127.0.0.1:${port}`,
  WEB_DIR: path.join(ROOT, 'web'), MEDIA_BACKEND: 'cloudflare', CLOUDFLARE_API_BASE_URL: cf.url, CLOUDFLARE_ACCOUNT_ID: cf.accountId,
  CLOUDFLARE_API_TOKEN: cf.token, CLOUDFLARE_WEBHOOK_SECRET: 'slow-webhook-secret-01', MAX_CONNECTIONS: '100000', MAX_SOCKETS_PER_USER: '100000',
  MAX_USER_STREAMS: '100000', MAX_CONCURRENT_USERS: '100000', WS_MAX_QUEUE: String(QCAP),
}, `${dir}.serve.log`);

try {
  await waitHealthy(port, srv);
  const [u, a] = await registerMany(port, 2, 'slow');
  const topic = `user_stream:${u.id}`;
  const topicA = `user_stream:${a.id}`;
  const sent = new Map(); // title -> send time
  const fast = [];
  const onFast = (s, d) => {
    const t = performance.now();
    const m = d.toString();
    const i = m.indexOf('"title":"sr-');
    if (i < 0) return;
    const title = m.slice(i + 9, m.indexOf('"', i + 9));
    if (sent.has(title)) { s.lat.push(t - sent.get(title)); s.got.add(title); }
  };
  for (let i = 0; i < FAST; i++) {
    const s = await openSocket(WebSocket, port, u.token, [topic], `127.66.0.${2 + i}`, onFast);
    if (!s.open) throw new Error('fast reader did not open');
    s.lat = []; s.got = new Set();
    fast.push(s);
  }
  let seq = 0;
  const flow = async (secs, phase) => {
    const end = performance.now() + secs * 1000;
    const desc = 'x'.repeat(200);
    let n = 0, errs = 0;
    while (performance.now() < end) {
      const title = `sr-${phase}-${++seq}`;
      sent.set(title, performance.now());
      const r = await rq(port, 'PUT', '/api/stream/metadata', { title, description: desc }, { authorization: `Bearer ${u.token}` });
      if (r.status === 200) n++; else errs++;
      await sleep(Math.max(0, 1000 / RATE - r.ms));
    }
    return { n, errs };
  };
  const fastLat = () => {
    const all = fast.flatMap((s) => s.lat);
    for (const s of fast) { s.lat = []; }
    return all;
  };
  const paused = pauseWatch();
  // phase 1: fast readers alone
  await sleep(500);
  const p1 = await flow(Math.min(10, SECS), 'a');
  await sleep(500);
  const lat1 = fastLat();
  // stopped readers
  const rss0 = rssOf(srv.pid);
  const slow = [];
  const t0 = performance.now();
  for (let i = 0; i < N; i += 500) {
    const batch = await Promise.all(Array.from({ length: Math.min(500, N - i) }, (_, k) => {
      const j = i + k;
      return openSocket(WebSocket, port, a.token, [topicA], `127.67.${Math.floor(j / 250) % 250}.${2 + (j % 250)}`);
    }));
    for (const s of batch) { if (s.open) s.ws._socket.pause(); slow.push(s); }
  }
  const opened = slow.filter((s) => s.open).length;
  await sleep(1000);
  const rss1 = rssOf(srv.pid);
  log(`${opened}/${N} stopped readers open in ${((performance.now() - t0) / 1000).toFixed(1)} s; idle cost ${((rss1 - rss0) / Math.max(1, opened) / 1024).toFixed(1)} KiB per socket`);
  let maxRss = rss1;
  const sampler = setInterval(() => { maxRss = Math.max(maxRss, rssOf(srv.pid)); }, 200);
  const met0 = parseMetrics((await rq(port, 'GET', '/metrics')).text);
  const sch0 = sched(srv.pid);
  const tw0 = performance.now();
  let flowA = true, nA = 0, errA = '';
  const aLoop = (async () => {
    const desc = 'y'.repeat(MSG);
    while (flowA) {
      const r = await rq(port, 'PUT', '/api/stream/metadata', { title: `a-${nA}`, description: desc }, { authorization: `Bearer ${a.token}` });
      if (r.status === 200) nA++;
      else { errA = `${r.status} ${r.text || r.err}`.slice(0, 160); await sleep(100); }
    }
  })();
  const p2 = await flow(SECS, 'b');
  flowA = false;
  await aLoop;
  const sch1 = sched(srv.pid);
  const wallMs = performance.now() - tw0;
  const cpuMs = (sch1[0] - sch0[0]) / 1e6, waitMs = (sch1[1] - sch0[1]) / 1e6;
  await sleep(1000);
  clearInterval(sampler);
  maxRss = Math.max(maxRss, rssOf(srv.pid));
  const lat2 = fastLat();
  // a paused client never reads the close: the server's own counter says how many it cut
  const met = parseMetrics((await rq(port, 'GET', '/metrics')).text);
  const closedByServer = met.get('streampai_ws_slow_closed_total') ?? NaN;
  // what the bus handed to sockets during phase 2 (fast + stopped readers; after a stopped
  // reader is cut its topic has fewer sockets) and how much of it the paced fan-out did
  const delta = (k) => (met.get(k) ?? NaN) - (met0.get(k) ?? NaN);
  const delivered = delta('streampai_pubsub_delivered_total');
  const deferred = delta('streampai_pubsub_fanout_deferred_total'); // sockets visited, not frames
  const codes = { 1008: closedByServer };
  const fastClosed = fast.filter((s) => s.closed !== null).length;
  const expected = p1.n + p2.n;
  const fastMissing = fast.filter((s) => s.got.size < expected).length;
  const perSock = (maxRss - rss1) / Math.max(1, opened);
  const rssOk = perSock <= QCAP + 16384;
  const p99 = pct(lat2, 99);
  if (!nA) log(`no message reached the stopped readers: PUT /api/stream/metadata answered ${errA}`);
  const ok = nA > 0 && rssOk && fastClosed === 0 && fastMissing === 0 && p99 < P99_MAX && p1.errs + p2.errs === 0;
  log(`server RSS: before the stopped readers ${(rss0 / 1048576).toFixed(1)} MiB, with them idle ${(rss1 / 1048576).toFixed(1)} MiB, max during the flow ${(maxRss / 1048576).toFixed(1)} MiB`);
  log(`server main thread during phase 2: ${cpuMs.toFixed(0)} ms on a CPU, ${waitMs.toFixed(0)} ms runnable but waiting for one, over ${wallMs.toFixed(0)} ms; ${(cpuMs / Math.max(1, nA + p2.n)).toFixed(1)} ms of CPU per published message`);
  log(`${nA} messages of ${MSG} B to the stopped readers (${(nA * MSG / 1024).toFixed(0)} KiB offered per socket); closed by the server: ${closedByServer}/${opened} (close codes ${JSON.stringify(codes)}); frames queued on sockets ${delivered}; socket visits of the paced fan-out after the publish returned ${deferred} (sockets being closed included)`);
  log(`fast readers (${FAST}): phase 1 alone p50 ${pct(lat1, 50).toFixed(1)} p99 ${pct(lat1, 99).toFixed(1)} ms; phase 2 with ${opened} stopped readers p50 ${pct(lat2, 50).toFixed(1)} p99 ${p99.toFixed(1)} ms max ${Math.max(...lat2).toFixed(1)} ms; closed ${fastClosed}, missing messages ${fastMissing}`);
  for (const s of [...slow, ...fast]) s.ws.terminate();
  paused.stop();
  const t = await srv.term();
  console.log(`slow-readers: stopped=${opened} fast=${FAST} fast_messages=${p1.n}+${p2.n} stopped_messages=${nA} x ${MSG} B queue_cap=${QCAP} max_rss=${(maxRss / 1048576).toFixed(1)} MiB ` +
    `growth/socket=${(perSock / 1024).toFixed(1)} KiB (<= cap+16 KiB ${rssOk ? 'OK' : 'FAIL'}) closed_by_server=${closedByServer} socket_frames=${delivered} cpu_per_frame=${(cpuMs * 1000 / Math.max(1, delivered)).toFixed(1)}us(PUTs included) cpu_per_msg=${(cpuMs / Math.max(1, nA + p2.n)).toFixed(1)}ms runq_wait=${(waitMs / wallMs * 100).toFixed(0)}% ` +
    `fast p99 ${pct(lat1, 99).toFixed(1)}->${p99.toFixed(1)} ms fast_closed=${fastClosed} fast_missing=${fastMissing} exit=${t.code} host_pauses=${paused.count} (${(paused.ms / 1000).toFixed(0)} s) ` +
    `verdict=${paused.count ? 'INVALID (the host paused the processes)' : ok && t.code === 0 ? 'PASS' : 'FAIL'}`);
  process.exitCode = ok && t.code === 0 ? 0 : 1;
} catch (e) {
  log('aborted:', e.stack || e);
  console.log(`slow-readers: aborted: ${e.message} verdict=FAIL`);
  process.exitCode = 2;
} finally {
  await srv.kill9();
  await cf.stop();
  setTimeout(() => process.exit(), 500).unref();
}
