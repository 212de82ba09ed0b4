// bench/relay: CPU and memory per output of a codec-copy fan-out, side by side:
//   (a) streampai relay, (b) nginx + libnginx-mod-rtmp `push`, (c) one `ffmpeg -c copy` per
//   destination. Same source: a 1080p30 H.264 ~6 Mbit/s + AAC FLV looped with -re -c copy.
//   Destinations: one nginx-rtmp sink (not measured) with rtmp_stat; before any window the bench
//   polls the sink until every destination stream of that setup is receiving (bytes_in growing,
//   video codec parsed), and fails if one is not within BENCH_FORWARD_TIMEOUT_MS; then a fixed
//   2 s settle, then the window. Only the relaying processes are measured: CPU from
//   /proc/PID/task/*/schedstat in ns; memory as RSS (VmRSS) and private (Private_Clean+Dirty
//   from smaps_rollup), both summed over the process and its children (nginx: master + worker)
//   by the same functions for every contender.
// Latency operating points: the relay is measured at each tick of BENCH_TICKS (default 200 =
//   its default RELAY_TICK_MS, and 40) in the same run; nginx-rtmp `push` forwards each message
//   as it arrives (no tick), so the relay/nginx ratio is printed per tick.
// Also: time from adding an output (Start) to that destination's first keyframe, and (d) the
//   kernel floor (bench/relay/floor.c): one process that only recv()s the same stream once per
//   tick and write()s it to N discard sockets — what moving these bytes costs before any relay
//   logic; a CPU target below it cannot be met on this machine.
// Env: BENCH_OUTPUTS=1,4,16,64  BENCH_SECONDS=15 (measurement window)  BENCH_SKIP=ffmpeg,nginx,floor
//      BENCH_TICKS=200,40 (relay and floor ticks, ms; each measured in the same run)
//      BENCH_FORWARD_TIMEOUT_MS (sink confirmation timeout; default 30 s + 1 s per destination; exceeded = bench fails)
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
process.env.STREAMPAI_BIN = process.env.STREAMPAI_BIN || path.join(ROOT, 'build/release/streampai');
const { startRelay, startJsSink, freePort, waitFor, sleep, tmpDir, listening } = await import('../../tests/media/relay_lib.mjs');

const OUTPUTS = (process.env.BENCH_OUTPUTS || '1,4,16,64').split(',').map(Number);
const WINDOW = Number(process.env.BENCH_SECONDS || 15);
const TICKS = (process.env.BENCH_TICKS || '200,40').split(',').map(Number).filter((x) => x > 0);
// sink confirmation timeout: 30 s + 1 s per destination (64 ffmpeg processes starting on a loaded
// 2-core box took over 30 s), or BENCH_FORWARD_TIMEOUT_MS
const forwardTimeout = (n) => Number(process.env.BENCH_FORWARD_TIMEOUT_MS || 30000 + 1000 * n);
const SETTLE_MS = 2000; // after forwarding is confirmed, before the window (same for everyone)
const SKIP = new Set((process.env.BENCH_SKIP || '').split(',').filter(Boolean));
const work = tmpDir('sp-bench-');
const children = new Set();

// Every child keeps the tail of its stderr and its exit status, so a setup that breaks is
// reported with the reason.
function run(cmd, args, opts = {}) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
  children.add(p);
  p.errTail = '';
  p.stderr?.on('data', (d) => { p.errTail = (p.errTail + d.toString()).slice(-600); });
  p.on('exit', (code, sig) => { children.delete(p); p.exitInfo = `${cmd} pid ${p.pid} exited code ${code} signal ${sig}: ${p.errTail.trim() || '(no stderr)'}`; });
  return p;
}
// nginx masters get SIGTERM so their workers exit with them; everything else SIGKILL
const stopAll = () => { for (const p of children) { try { p.kill(p.spawnargs[0] === 'nginx' ? 'SIGTERM' : 'SIGKILL'); } catch {} } };
process.on('exit', stopAll);

// CPU time in ns of every thread of pid, from /proc/PID/task/*/schedstat (the scheduler's
// run-time clock): /proc/PID/stat counts in 10 ms ticks, too coarse for a relay that uses
// a fraction of a percent of a core per output.
function cpuNs(pid) {
  let ns = 0;
  let tasks = [];
  try { tasks = fs.readdirSync(`/proc/${pid}/task`); } catch { return 0; }
  for (const t of tasks) {
    try { ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch {}
  }
  return ns;
}
function privKB(pid) {
  try {
    const t = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    let kb = 0;
    for (const m of t.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+) kB/gm)) kb += Number(m[1]);
    return kb;
  } catch { return 0; }
}
function rssKB(pid) {
  try { return Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m)[1]); } catch { return 0; }
}
function childPids(pid) {
  try { return execFileSync('ps', ['--ppid', String(pid), '-o', 'pid=']).toString().split('\n').map((x) => Number(x.trim())).filter(Boolean); } catch { return []; }
}
async function measure(pidsFn) {
  const pids = pidsFn();
  const t0 = pids.map(cpuNs);
  const w0 = process.hrtime.bigint();
  await sleep(WINDOW * 1000);
  const t1 = pids.map(cpuNs);
  const wall = Number(process.hrtime.bigint() - w0);
  const cpu = t1.reduce((a, v, i) => a + (v - t0[i]), 0) / wall * 100; // % of one core
  const mem = pids.reduce((a, p) => a + privKB(p), 0);
  const rss = pids.reduce((a, p) => a + rssKB(p), 0);
  return { cpu, mem, rss, procs: pids.length };
}

async function source() {
  const dir = path.join(ROOT, 'build/bench');
  fs.mkdirSync(dir, { recursive: true });
  const f = path.join(dir, 'src1080.flv');
  if (!fs.existsSync(f)) {
    console.error('encoding the 1080p30 6 Mbit/s source (once)...');
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=30,noise=alls=12:allf=t',
      '-f', 'lavfi', '-i', 'sine', '-t', '10', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '60',
      '-b:v', '6M', '-maxrate', '6M', '-bufsize', '6M', '-c:a', 'aac', '-b:a', '128k', f]);
  }
  return f;
}

function publisher(src, url) {
  return run('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', src, '-c', 'copy', '-f', 'flv', url]);
}

async function nginx(name, port, body, statPort = 0) {
  const dir = path.join(work, name);
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const http = statPort ? `http { access_log off; client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp;
  uwsgi_temp_path tmp; scgi_temp_path tmp; server { listen 127.0.0.1:${statPort}; location /stat { rtmp_stat all; } } }
` : '';
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process on; worker_processes 1; pid nginx.pid; error_log error.log warn;
events { worker_connections 1024; }
rtmp { server { listen 127.0.0.1:${port}; chunk_size 4096;
  application live { live on; record off; ${body} } } }
${http}`);
  const p = run('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')]);
  await waitFor(() => listening(port), { what: `nginx ${name}` });
  return p;
}

// (d) the floor program, built once
function buildFloor() {
  const bin = path.join(ROOT, 'build/bench/floor');
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin, path.join(ROOT, 'bench/relay/floor.c')]);
  return bin;
}
const net = await import('node:net');
// The floor's destination: counts the bytes of every open connection.
async function discardSink() {
  const conns = new Set();
  const srv = net.createServer((s) => {
    const c = { bytes: 0 };
    conns.add(c);
    s.on('data', (d) => { c.bytes += d.length; });
    s.on('error', () => {});
    s.on('close', () => conns.delete(c));
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  srv.conns = conns;
  return srv;
}

// The sink's streams from its rtmp_stat page: name -> {bytes, video}.
async function sinkStreams() {
  const out = new Map();
  const text = await (await fetch(`http://127.0.0.1:${statPort}/stat`)).text();
  for (const m of text.matchAll(/<stream>\s*<name>([^<]*)<\/name>([\s\S]*?)<\/stream>/g)) {
    const bytes = Number((m[2].match(/<bytes_in>(\d+)<\/bytes_in>/) || [])[1] || 0);
    out.set(m[1], { bytes, video: /<video>[\s\S]*?<codec>[^<]+<\/codec>/.test(m[2]) });
  }
  return out;
}
// Polls until every named sink stream is receiving: video codec parsed from the stream and
// bytes_in grown since the previous poll. Throws (the bench fails) after FORWARD_TIMEOUT.
async function confirmForwarding(names, what, procs = []) {
  const t0 = Date.now();
  const FORWARD_TIMEOUT = forwardTimeout(names.length);
  const prev = new Map();
  for (;;) {
    const dead = procs.filter((p) => p.exitInfo);
    if (dead.length) throw new Error(`${what}: ${dead.length} of the processes feeding the destinations exited before forwarding was confirmed; first: ${dead[0].exitInfo}`);
    const st = await sinkStreams();
    const pending = names.filter((nm) => {
      const x = st.get(nm);
      const ok = x && x.video && prev.has(nm) && x.bytes > prev.get(nm);
      if (x) prev.set(nm, x.bytes);
      return !ok;
    });
    if (!pending.length) return Date.now() - t0;
    if (Date.now() - t0 > FORWARD_TIMEOUT) {
      throw new Error(`${what}: ${pending.length}/${names.length} destinations not receiving at the sink after ${FORWARD_TIMEOUT} ms ` +
        `(${pending.slice(0, 8).map((nm) => `${nm}:${st.has(nm) ? `${st.get(nm).bytes}B` : 'absent'}`).join(' ')})`);
    }
    await sleep(250);
  }
}
// The same for the floor's discard sink: n connections, each with bytes growing.
async function confirmDiscard(n, what, procs = []) {
  const t0 = Date.now();
  const FORWARD_TIMEOUT = forwardTimeout(n);
  let prev = null;
  for (;;) {
    const dead = procs.filter((p) => p.exitInfo);
    if (dead.length) throw new Error(`${what}: ${dead[0].exitInfo}`);
    const now = [...discard.conns].map((c) => c.bytes);
    if (prev && now.length >= n && now.filter((b, i) => b > (prev[i] ?? 0)).length >= n) return Date.now() - t0;
    if (Date.now() - t0 > FORWARD_TIMEOUT) throw new Error(`${what}: ${now.filter((b) => b > 0).length}/${n} floor destinations receiving after ${FORWARD_TIMEOUT} ms`);
    prev = now;
    await sleep(250);
  }
}
const range = (n, f) => Array.from({ length: n }, (_, i) => f(i));

const src = await source();
const floorBin = SKIP.has('floor') ? null : buildFloor();
const discard = floorBin ? await discardSink() : null;
const sinkPort = await freePort();
const statPort = await freePort();
await nginx('sink', sinkPort, '', statPort);
await waitFor(() => listening(statPort), { what: 'nginx sink stat' });
const results = [];

for (const n of OUTPUTS) {
  const row = { n, relay: {}, floor: {}, confirm: {} };
  // (a) streampai relay, once per tick
  for (const tick of TICKS) {
    const relay = await startRelay({ env: { LOG_LEVEL: 'info', RELAY_TICK_MS: String(tick) } });
    children.add(relay.proc); // killed on a failed run too
    relay.proc.on('exit', () => children.delete(relay.proc));
    const input = await relay.createInput();
    const pub = publisher(src, `rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`);
    children.add(pub);
    await waitFor(async () => (await relay.input(input.uid)).status?.current?.state === 'connected', { what: 'live', timeout: 15000 });
    await sleep(2500);
    const base = await measure(() => [relay.proc.pid]);
    const names = range(n, (i) => `r${tick}o${n}x${i}`);
    for (const nm of names) {
      if (!(await relay.addOutput(input.uid, `rtmp://127.0.0.1:${sinkPort}/live`, nm))) throw new Error('output not created');
    }
    try {
      await waitFor(async () => (await relay.outputs(input.uid)).every((o) => o.status === 'forwarding'), { what: 'forwarding', timeout: 30000 });
      row.confirm[`relay${tick}`] = await confirmForwarding(names, `relay tick ${tick} ms, ${n} outputs`);
    } catch (e) {
      console.error(JSON.stringify(await relay.outputs(input.uid)).slice(0, 2000));
      console.error(relay.logText().split('\n').slice(-20).join('\n'));
      throw e;
    }
    await sleep(SETTLE_MS);
    const m = await measure(() => [relay.proc.pid]);
    // time from Start (POST output) to the first keyframe at a new destination
    const js = await startJsSink();
    const t0 = Date.now();
    await relay.addOutput(input.uid, `rtmp://127.0.0.1:${js.port}/live`, 'ttfk');
    const isKey = (x) => x.type === 9 && (x.payload[0] >> 4) === 1 && x.payload[1] === 1;
    let ttfk;
    try {
      await waitFor(() => js.messages.some(isKey), { what: 'first keyframe', interval: 2, timeout: 10000 });
      ttfk = js.messages.find(isKey).at - t0;
    } catch {
      ttfk = `none in 10 s (${JSON.stringify((await relay.outputs(input.uid)).at(-1))})`;
    }
    const outs = await relay.outputs(input.uid);
    row.relay[tick] = { cpu: m.cpu / n, mem: m.mem / n, cpuMarginal: (m.cpu - base.cpu) / n, memMarginal: (m.mem - base.mem) / n,
      total: m.cpu, rss: m.rss, priv: m.mem, ttfk, drops: outs.reduce((a, o) => a + o.dropped_gops, 0) };
    pub.kill('SIGKILL');
    await relay.stop();
    js.server.close();
  }
  // (b) nginx-rtmp push: forwards every message as it arrives (no tick)
  if (!SKIP.has('nginx')) {
    const port = await freePort();
    const names = range(n, (i) => `ngo${n}x${i}`);
    const pushes = names.map((nm) => `push rtmp://127.0.0.1:${sinkPort}/live/${nm};`).join(' ');
    const ng = await nginx(`relay${n}`, port, pushes);
    const pub = publisher(src, `rtmp://127.0.0.1:${port}/live/src`);
    row.confirm.nginx = await confirmForwarding(names, `nginx-rtmp push, ${n} outputs`, [pub, ng]);
    await sleep(SETTLE_MS);
    const m = await measure(() => [ng.pid, ...childPids(ng.pid)]);
    row.nginx = { cpu: m.cpu / n, mem: m.mem / n, total: m.cpu, rss: m.rss, priv: m.mem, procs: m.procs };
    pub.kill('SIGKILL');
    ng.kill('SIGTERM');
    await sleep(300);
  }
  // (c) one ffmpeg -c copy per destination, pulling from a plain nginx-rtmp source
  if (!SKIP.has('ffmpeg')) {
    const port = await freePort();
    const ng = await nginx(`src${n}`, port, '');
    const pub = publisher(src, `rtmp://127.0.0.1:${port}/live/src`);
    await sleep(1500); // the pulls need the source stream to exist
    const names = range(n, (i) => `ffo${n}x${i}`);
    const ff = names.map((nm) => run('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', `rtmp://127.0.0.1:${port}/live/src`,
      '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${sinkPort}/live/${nm}`]));
    row.confirm.ffmpeg = await confirmForwarding(names, `ffmpeg per destination, ${n} outputs`, [...ff, pub, ng]);
    await sleep(SETTLE_MS);
    const m = await measure(() => ff.map((p) => p.pid));
    row.ffmpeg = { cpu: m.cpu / n, mem: m.mem / n, total: m.cpu, rss: m.rss / n, priv: m.mem / n };
    for (const p of ff) p.kill('SIGKILL');
    pub.kill('SIGKILL');
    ng.kill('SIGTERM');
    await sleep(300);
  }
  // (d) kernel floor at each tick: the same bytes, one recv per tick, one send per output, nothing else
  if (floorBin) {
    for (const tick of TICKS) {
      const port = await freePort();
      const fl = run(floorBin, [String(port), String(discard.address().port), String(n), String(tick)]);
      await waitFor(() => listening(port), { what: 'floor listening' });
      const feed = run('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', src, '-c', 'copy', '-f', 'flv', `tcp://127.0.0.1:${port}`]);
      row.confirm[`floor${tick}`] = await confirmDiscard(n, `floor tick ${tick} ms, ${n} outputs`, [fl, feed]);
      await sleep(SETTLE_MS);
      const m = await measure(() => [fl.pid]);
      row.floor[tick] = { cpu: m.cpu / n, total: m.cpu };
      feed.kill('SIGKILL');
      fl.kill('SIGKILL');
      await sleep(300);
    }
  }
  results.push(row);
  console.error(`n=${n} done ${JSON.stringify(row)}`);
}

const f2 = (x) => (x === undefined ? '-' : x.toFixed(2));
const r2 = (a, b) => (a === undefined || b === undefined || b === 0 ? '-' : (a / b).toFixed(2));
const kb = (x) => (x === undefined ? '-' : String(Math.round(x)));
console.log(`\nrelay benchmark: 1080p30 ~6 Mbit/s H.264+AAC, -re -c copy, loopback, ${WINDOW} s window after forwarding confirmed at the sink + ${SETTLE_MS / 1000} s settle; CPU = % of one core`);
console.log(`latency operating points: relay media tick ${TICKS.join(' and ')} ms (RELAY_TICK_MS; the floor at the same tick); nginx-rtmp push forwards each message at once (no tick)`);
console.log('outputs tick | CPU/output: relay (marginal)  nginx  ffmpeg  floor | relay/nginx relay/ffmpeg relay/floor | priv KB/output: relay (marginal)  ffmpeg | relay/ffmpeg | first keyframe ms');
for (const r of results) {
  for (const tick of TICKS) {
    const a = r.relay[tick];
    console.log(`${String(r.n).padStart(7)} ${String(tick).padStart(4)} | ${f2(a.cpu)} (${f2(a.cpuMarginal)})  ${f2(r.nginx?.cpu)}  ${f2(r.ffmpeg?.cpu)}  ${f2(r.floor[tick]?.cpu)} | ${r2(a.cpu, r.nginx?.cpu)} ${r2(a.cpu, r.ffmpeg?.cpu)} ${r2(a.cpu, r.floor[tick]?.cpu)} | ${kb(a.mem)} (${kb(a.memMarginal)})  ${kb(r.ffmpeg?.priv)} | ${r2(a.memMarginal, r.ffmpeg?.priv)} | ${a.ttfk}${a.drops ? ` (drops ${a.drops})` : ''}`);
  }
}
console.log('memory, whole process(es) at the end of the window, KB: RSS (private)');
console.log(`outputs | ${TICKS.map((t) => `relay@${t}`).join('  ')}  nginx-rtmp (master+worker)  ffmpeg per destination`);
for (const r of results) {
  console.log(`${String(r.n).padStart(7)} | ${TICKS.map((t) => `${kb(r.relay[t].rss)} (${kb(r.relay[t].priv)})`).join('  ')}  ${r.nginx ? `${kb(r.nginx.rss)} (${kb(r.nginx.priv)}) [${r.nginx.procs} procs]` : '-'}  ${r.ffmpeg ? `${kb(r.ffmpeg.rss)} (${kb(r.ffmpeg.priv)})` : '-'}`);
}
console.log(`forwarding confirmed at the sink after (ms): ${results.map((r) => `n=${r.n} ${Object.entries(r.confirm).map(([k, v]) => `${k} ${v}`).join(', ')}`).join('; ')}`);
console.log('targets: CPU/output <= 0.5x nginx-rtmp and <= 0.1x ffmpeg; memory/output <= 1/50 of ffmpeg (0.02); first keyframe <= 200 ms');
console.log('floor: the kernel cost of the same bytes at the same tick (no relay logic); relay/floor near 1 means only the kernel is left');
if (discard) discard.close();
stopAll();
process.exit(0);
