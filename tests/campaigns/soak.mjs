// make soak: a release `streampai serve` (SQLite, MEDIA_BACKEND=cloudflare on the fake) for
// SOAK_SECONDS (3600) with SOAK_USERS (200) users and SOAK_SOCKETS (2,000) sockets: per user, half
// dashboard sockets (user_stream:{id}) and half widget-like sockets (chat:{id} + alertbox:{id};
// the server has no widget tokens yet, so they authenticate like a dashboard), SOAK_SLOW_PCT (5 %)
// of them stop reading; every user's stream is started and stopped in a loop (one toggle every
// SOAK_TOGGLE_MS, 100 ms, round robin: 200 streams going up and down, each a state_changed to its
// sockets), the metadata is updated between toggles, and every SOAK_STORM_S (60 s; 20 s when
// SOAK_SECONDS < 600) a reconnect storm closes SOAK_STORM_PCT (25 %) of the sockets at once and
// reopens them. /metrics is read every second (loop lag sample; C heap in use and held free by
// malloc, SQLite memory: growth of live objects vs the allocator) and /healthz timed, RSS and fds.
// Prints a table over time (RSS, fds, sockets open, loop lag p99/max over the interval, healthz
// p99, starts/stops, errors) and the verdict: RSS growth after warm-up (first 20 %) <= 5 %, no fd
// leak (fds at the end <= fds after warm-up + 2 % + 16), loop-lag p99 < 10 ms, and once every
// stream is stopped the media plane drains to 0 outputs within 60 s. One summary line.
import WebSocket from 'ws';
import { startFakeCloudflare } from '../fakes/cloudflare.mjs';
import {
  ROOT, spawnSp, rq, waitHealthy, registerMany, openSocket, freePort, sleep, tmpDir, parseMetrics, rssOf, fdsOf, pct, pauseWatch,
} from './lib.mjs';
import path from 'node:path';
import fs from 'node:fs';

const SECS = Number(process.env.SOAK_SECONDS || 3600);
const NUSERS = Number(process.env.SOAK_USERS || 200);
const NSOCK = Number(process.env.SOAK_SOCKETS || 2000);
const SLOW_PCT = Number(process.env.SOAK_SLOW_PCT || 5);
const TOGGLE_MS = Number(process.env.SOAK_TOGGLE_MS || 100);
const STORM_S = Number(process.env.SOAK_STORM_S || (SECS < 600 ? 20 : 60));
const STORM_PCT = Number(process.env.SOAK_STORM_PCT || 25);
const ROWS = Number(process.env.SOAK_ROWS || 12);
const log = (...a) => console.error('[soak]', ...a);
const ADMIN_TOKEN = 'soak-admin-token-0001';

const dir = tmpDir('sp-soak-');
const port = await freePort();
const cf = await startFakeCloudflare({ webhookUrl: `http://127.0.0.1:${port}/webhooks/cloudflare`, webhookSecret: 'soak-webhook-secret-01' });
const env = {
  STREAMPAI_ENV: 'test', LOG_LEVEL: 'warn', DATA_DIR: dir, HTTP_LISTEN: `127.0.0.1:${port}`, PUBLIC_URL: `http://127.0.0.1:${port}`,
  WEB_DIR: path.join(ROOT, 'web'), MEDIA_BACKEND: 'cloudflare', CLOUDFLARE_API_BASE_URL: cf.url, CLOUDFLARE_ACCOUNT_ID: cf.accountId,
  CLOUDFLARE_API_TOKEN: cf.token, CLOUDFLARE_WEBHOOK_SECRET: 'soak-webhook-secret-01', ALLOW_PRIVATE_DESTINATIONS: 'true', ADMIN_TOKEN,
  MAX_CONNECTIONS: '100000', MAX_SOCKETS_PER_USER: '100000', MAX_USER_STREAMS: '100000', MAX_CONCURRENT_USERS: '100000', CLOUDFLARE_INPUT_POLL_INTERVAL: '15000',
  // the fake has no account limit: the soak is about the server's resources, not Cloudflare's budget
  CLOUDFLARE_CALL_BUDGET: '100000',
  // per-topic resume history (server default 100): it fills for minutes before RSS can be flat;
  // a short run sets it low so its warm-up covers the fill
  ...(process.env.SOAK_EVENT_HISTORY ? { EVENT_HISTORY_SIZE: process.env.SOAK_EVENT_HISTORY } : {}),
  // and its byte cap (server default 64 KiB per topic): at this rate (1,000 topics, ~3 messages
  // per topic a minute, ~4 KB status snapshots) 64 KiB takes ~35 min to fill, longer than the
  // warm-up, so the soak sizes it at 16 KiB (the heap levels off after ~20 min of a 1-hour run): what it looks for is growth
  // beyond the bounded caches. SOAK_EVENT_HISTORY_BYTES=65536 runs the server default.
  EVENT_HISTORY_BYTES: process.env.SOAK_EVENT_HISTORY_BYTES || '16384',
};
const srv = spawnSp(['serve'], env, `${dir}.serve.log`);
let failed = null;
const errors = { http: 0, start: 0, stop: 0, sockFail: 0, closedByServer: 0 };
const closeCodes = {};
// The server's main thread: CPU time and time spent runnable but waiting for a CPU (schedstat),
// so a loop-lag sample can be told apart from a starved process on a shared machine.
const sched = (pid) => { try { return fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number); } catch { return [0, 0, 0]; } };
try {
  await waitHealthy(port, srv);
  const t0 = Date.now();
  const users = await registerMany(port, NUSERS, 'soak');
  log(`${NUSERS} users registered in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const auth = (u) => ({ authorization: `Bearer ${u.token}` });
  // a destination and a connected input per user
  await Promise.all(users.map(async (u, i) => {
    await sleep(i * 5);
    const d = await rq(port, 'POST', '/api/destinations', { platform: 'custom', name: 'soak', url: 'rtmp://127.0.0.1:1935/live', stream_key: `soak-${i}` }, auth(u));
    if (d.status !== 201) throw new Error(`destination ${d.status} ${d.text}`);
    u.dest = d.json.id;
    const st = await rq(port, 'GET', '/api/stream', undefined, auth(u));
    u.uid = st.json?.input?.input_uid;
    if (!u.uid) throw new Error(`no input: ${st.text}`);
    await cf.setInputState(u.uid, 'connected', { webhook: true });
  }));
  // sockets
  const socks = [];
  const spec = (i) => {
    const u = users[i % NUSERS];
    const widget = Math.floor(i / NUSERS) % 2 === 1;
    return { u, topics: widget ? [`chat:${u.id}`, `alertbox:${u.id}`] : [`user_stream:${u.id}`], slow: (i % 100) < SLOW_PCT,
      addr: `127.88.${Math.floor(i / 250) % 250}.${2 + (i % 250)}` };
  };
  const open = async (i) => {
    const sp = spec(i);
    const s = await openSocket(WebSocket, port, sp.u.token, sp.topics, sp.addr);
    if (!s.open) errors.sockFail++;
    else if (sp.slow) s.ws._socket.pause();
    s.ws.on('close', (code) => { if (!s.closing) { errors.closedByServer++; closeCodes[code] = (closeCodes[code] || 0) + 1; } });
    socks[i] = s;
  };
  for (let i = 0; i < NSOCK; i += 200) await Promise.all(Array.from({ length: Math.min(200, NSOCK - i) }, (_, k) => open(i + k)));
  log(`${NSOCK} sockets opened (${errors.sockFail} failed)`);

  // the loops
  let running = true;
  const counts = { starts: 0, stops: 0, meta: 0 };
  const toggler = (async () => {
    let i = 0;
    while (running) {
      const u = users[i++ % NUSERS];
      const r = u.live
        ? await rq(port, 'POST', '/api/stream/stop', undefined, auth(u))
        : await rq(port, 'POST', '/api/stream/start', { destinations: [u.dest] }, auth(u));
      if (r.status === 200) { u.live = !u.live; counts[u.live ? 'starts' : 'stops']++; } else if (r.status === 409) {
        const st = await rq(port, 'GET', '/api/stream', undefined, auth(u));
        u.live = st.json?.state === 'streaming';
      } else errors[u.live ? 'stop' : 'start']++;
      const m = await rq(port, 'PUT', '/api/stream/metadata', { title: `soak ${i}` }, auth(users[(i * 7) % NUSERS]));
      if (m.status === 200) counts.meta++; else errors.http++;
      await sleep(TOGGLE_MS);
    }
  })();
  const storm = (async () => {
    while (running) {
      for (let w = 0; w < STORM_S * 10 && running; w++) await sleep(100);
      if (!running) break;
      const idx = [];
      for (let i = 0; i < NSOCK; i++) if (Math.random() * 100 < STORM_PCT) idx.push(i);
      for (const i of idx) { socks[i].closing = true; socks[i].ws.terminate(); }
      await Promise.all(idx.map((i) => open(i)));
      counts.storms = (counts.storms || 0) + 1;
      counts.reconnects = (counts.reconnects || 0) + idx.length;
    }
  })();
  // sampling
  const samples = [];
  const rows = [];
  const rowEvery = Math.max(5, Math.floor(SECS / ROWS));
  const tStart = Date.now();
  const paused = pauseWatch();
  let lastRow = tStart;
  let win = { lag: [], hz: [], sch: sched(srv.pid), t: Date.now() };
  console.error('  time   RSS MiB  heap MiB  free MiB  sqlite MiB   fds  sockets  lag p99 ms  lag max ms  healthz p99 ms  cpu %  runq wait %  starts  stops  storms  errors');
  while (Date.now() - tStart < SECS * 1000) {
    await sleep(1000);
    const hz = await rq(port, 'GET', '/healthz', undefined, {}, { timeout: 5000, ag: false });
    const m = parseMetrics((await rq(port, 'GET', '/metrics', undefined, {}, { timeout: 5000, ag: false })).text);
    const lag = (m.get('streampai_event_loop_lag_seconds') ?? NaN) * 1000;
    // the C heap (glibc mallinfo2): in use by live objects vs held free by malloc
    const heap = m.get('streampai_malloc_bytes{kind="in_use"}') ?? NaN;
    const heapFree = m.get('streampai_malloc_bytes{kind="free"}') ?? NaN;
    const sqlite = m.get('streampai_sqlite_memory_bytes') ?? NaN;
    const s = { t: (Date.now() - tStart) / 1000, rss: rssOf(srv.pid), fds: fdsOf(srv.pid), lag, hz: hz.ms, heap, heapFree, sqlite, open: socks.filter((x) => x && x.ws.readyState === 1).length };
    samples.push(s);
    if (Number.isFinite(lag)) win.lag.push(lag); // a failed /metrics read (pause) gives no sample
    win.hz.push(hz.ms);
    if (Date.now() - lastRow >= rowEvery * 1000 || Date.now() - tStart >= SECS * 1000) {
      const sc = sched(srv.pid);
      const wall = (Date.now() - win.t) * 1e6;
      const row = { t: s.t, rss: s.rss, heap: s.heap, heapFree: s.heapFree, sqlite: s.sqlite, fds: s.fds, open: s.open, lag99: pct(win.lag, 99), lagMax: Math.max(...win.lag), hz99: pct(win.hz, 99),
        cpu: (sc[0] - win.sch[0]) / wall * 100, wait: (sc[1] - win.sch[1]) / wall * 100,
        starts: counts.starts, stops: counts.stops, storms: counts.storms || 0, errs: errors.http + errors.start + errors.stop };
      rows.push(row);
      console.error(`${String(Math.round(row.t)).padStart(6)}s ${(row.rss / 1048576).toFixed(1).padStart(8)} ${(row.heap / 1048576).toFixed(1).padStart(9)} ${(row.heapFree / 1048576).toFixed(1).padStart(9)} ${(row.sqlite / 1048576).toFixed(1).padStart(11)} ${String(row.fds).padStart(5)} ${String(row.open).padStart(8)} ` +
        `${row.lag99.toFixed(1).padStart(11)} ${row.lagMax.toFixed(1).padStart(11)} ${row.hz99.toFixed(1).padStart(15)} ${row.cpu.toFixed(1).padStart(6)} ${row.wait.toFixed(1).padStart(12)} ${String(row.starts).padStart(7)} ${String(row.stops).padStart(6)} ${String(row.storms).padStart(7)} ${String(row.errs).padStart(7)}`);
      lastRow = Date.now();
      win = { lag: [], hz: [], sch: sc, t: Date.now() };
    }
  }
  running = false;
  await toggler; await storm;
  // end state: every stream stopped, then the media plane must drain to 0 outputs (an output
  // left behind is an orphan: it would keep pushing to the platform and cost money)
  for (const u of users) {
    const st = await rq(port, 'GET', '/api/stream', undefined, auth(u));
    if (st.json?.state === 'streaming') await rq(port, 'POST', '/api/stream/stop', undefined, auth(u));
  }
  const outputsLeft = () => cf.inputs().reduce((n, i) => n + (i.outputs ? i.outputs.length : 0), 0);
  const tDrain = Date.now();
  while (outputsLeft() > 0 && Date.now() - tDrain < 60000) await sleep(500);
  const orphans = outputsLeft();
  const drainMs = Date.now() - tDrain;
  // verdict (after warm-up: the first 20 % of the run)
  const warmT = SECS * 0.2;
  const after = samples.filter((s) => s.t >= warmT);
  const w0 = after[0];
  const wEnd = samples[samples.length - 1];
  // RSS at the end of warm-up: max over the 10 s after it (one sample is noisy), end: max over the last 10 s
  const rssWarm = Math.max(...after.slice(0, 10).map((s) => s.rss));
  const rssEnd = Math.max(...samples.slice(-10).map((s) => s.rss));
  const growth = (rssEnd - rssWarm) / rssWarm * 100;
  // the same for the heap in use (live objects): growth there is a structure, not the allocator
  const heapWarm = Math.max(...after.slice(0, 10).map((s) => s.heap).filter(Number.isFinite));
  const heapEnd = Math.max(...samples.slice(-10).map((s) => s.heap).filter(Number.isFinite));
  const fdLeak = wEnd.fds - w0.fds;
  const fdOk = wEnd.fds <= w0.fds * 1.02 + 16;
  const lags = after.map((s) => s.lag).filter(Number.isFinite);
  const lag99 = pct(lags, 99);
  const lagOk = lag99 < 10;
  const rssOk = growth <= 5;
  for (const s of socks) { s.closing = true; s.ws.terminate(); }
  const stop = await srv.term();
  if (stop.code !== 0) failed = `serve exit ${stop.code}/${stop.sig} on SIGTERM`;
  paused.stop();
  const hostPaused = paused.count > 0;
  const verdict = rssOk && fdOk && lagOk && !failed && errors.start + errors.stop === 0 && orphans === 0;
  console.log(`soak: ${SECS}s${process.env.SOAK_EVENT_HISTORY ? ` history=${process.env.SOAK_EVENT_HISTORY}` : ''} history_bytes=${env.EVENT_HISTORY_BYTES} users=${NUSERS} sockets=${NSOCK} (slow ${SLOW_PCT}%) starts=${counts.starts} stops=${counts.stops} storms=${counts.storms || 0} reconnects=${counts.reconnects || 0} ` +
    `rss ${(rssWarm / 1048576).toFixed(1)}->${(rssEnd / 1048576).toFixed(1)} MiB (${growth >= 0 ? '+' : ''}${growth.toFixed(1)}%, <=5% ${rssOk ? 'OK' : 'FAIL'}) ` +
    `heap_in_use ${(heapWarm / 1048576).toFixed(1)}->${(heapEnd / 1048576).toFixed(1)} MiB ` +
    `fds ${w0.fds}->${wEnd.fds} (${fdLeak >= 0 ? '+' : ''}${fdLeak}, ${fdOk ? 'OK' : 'LEAK'}) loop-lag p99 ${lag99.toFixed(1)} ms max ${Math.max(...lags).toFixed(1)} ms (<10 ms ${lagOk ? 'OK' : 'FAIL'}) ` +
    `healthz p99 ${pct(after.map((s) => s.hz), 99).toFixed(1)} ms errors=${JSON.stringify(errors)} close_codes=${JSON.stringify(closeCodes)} max_runq_wait=${Math.max(...rows.map((r) => r.wait)).toFixed(0)}%${failed ? ` ${failed}` : ''} orphan_outputs=${orphans} (drained in ${drainMs} ms) host_pauses=${paused.count} (${(paused.ms / 1000).toFixed(0)} s) verdict=${hostPaused ? 'INVALID (the host paused the processes)' : verdict ? 'PASS' : 'FAIL'}`);
  process.exitCode = verdict && !hostPaused ? 0 : 1;
} catch (e) {
  log('aborted:', e.stack || e);
  console.log(`soak: aborted: ${e.message} verdict=FAIL`);
  process.exitCode = 2;
} finally {
  await srv.kill9();
  await cf.stop();
  setTimeout(() => process.exit(), 500).unref();
}
