// bench/relay: CPU and memory per output of a codec-copy fan-out, side by side:
//   (a) streampai relay, (b) nginx + libnginx-mod-rtmp `push`, (c) one `ffmpeg -c copy` per
//   destination. Same source: a 1080p30 H.264 ~6 Mbit/s + AAC FLV looped with -re -c copy.
//   Destinations: one nginx-rtmp sink (not measured). Only the relaying processes are measured
//   (CPU from /proc/PID/task/*/schedstat in ns, private memory from /proc/PID/smaps_rollup).
// Also: time from adding an output (Start) to that destination's first keyframe, and (d) the
//   kernel floor (bench/relay/floor.c): one process that only recv()s the same stream once per
//   tick and write()s it to N discard sockets — what moving these bytes costs before any relay
//   logic; a CPU target below it cannot be met on this machine.
// Env: BENCH_OUTPUTS=1,4,16,64  BENCH_SECONDS=10 (measurement window)  BENCH_SKIP=ffmpeg,nginx,floor
//      RELAY_TICK_MS (the relay's and the floor's tick; default 200 as the relay's)
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
process.env.STREAMPAI_BIN = process.env.STREAMPAI_BIN || path.join(ROOT, 'build/release/streampai');
const { startRelay, startJsSink, freePort, waitFor, sleep, tmpDir, listening } = await import('../../tests/media/relay_lib.mjs');

const OUTPUTS = (process.env.BENCH_OUTPUTS || '1,4,16,64').split(',').map(Number);
const WINDOW = Number(process.env.BENCH_SECONDS || 10);
const SKIP = new Set((process.env.BENCH_SKIP || '').split(',').filter(Boolean));
const work = tmpDir('sp-bench-');
const children = new Set();

function run(cmd, args, opts = {}) {
  const p = spawn(cmd, args, { stdio: 'ignore', ...opts });
  children.add(p);
  p.on('exit', () => children.delete(p));
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
  return { cpu, mem };
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

async function nginx(name, port, body) {
  const dir = path.join(work, name);
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process on; worker_processes 1; pid nginx.pid; error_log error.log warn;
events { worker_connections 1024; }
rtmp { server { listen 127.0.0.1:${port}; chunk_size 4096;
  application live { live on; record off; ${body} } } }
`);
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
const TICK = Number(process.env.RELAY_TICK_MS || 200); // the relay's default media tick
const net = await import('node:net');
async function discardSink() {
  const srv = net.createServer((s) => { s.on('data', () => {}); s.on('error', () => {}); });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return srv;
}

const src = await source();
const floorBin = SKIP.has('floor') ? null : buildFloor();
const discard = floorBin ? await discardSink() : null;
const sinkPort = await freePort();
await nginx('sink', sinkPort, '');
const results = [];

for (const n of OUTPUTS) {
  const row = { n };
  // (a) streampai relay
  {
    const relay = await startRelay({ env: { LOG_LEVEL: 'info', RELAY_TICK_MS: String(TICK) } });
    const input = await relay.createInput();
    const pub = publisher(src, `rtmp://127.0.0.1:${relay.rtmpPort}/live/${input.rtmps.streamKey}`);
    children.add(pub);
    await waitFor(async () => (await relay.input(input.uid)).status?.current?.state === 'connected', { what: 'live', timeout: 15000 });
    await sleep(2500);
    const base = await measure(() => [relay.proc.pid]);
    for (let i = 0; i < n; i++) {
      if (!(await relay.addOutput(input.uid, `rtmp://127.0.0.1:${sinkPort}/live`, `r${i}`))) throw new Error('output not created');
    }
    try {
      await waitFor(async () => (await relay.outputs(input.uid)).every((o) => o.status === 'forwarding'), { what: 'forwarding', timeout: 30000 });
    } catch (e) {
      console.error(JSON.stringify(await relay.outputs(input.uid)).slice(0, 2000));
      console.error(relay.logText().split('\n').slice(-20).join('\n'));
      throw e;
    }
    await sleep(2000);
    const m = await measure(() => [relay.proc.pid]);
    // time from Start (POST output) to the first keyframe at a new destination
    const js = await startJsSink();
    const t0 = Date.now();
    await relay.addOutput(input.uid, `rtmp://127.0.0.1:${js.port}/live`, 'ttfk');
    const isKey = (x) => x.type === 9 && (x.payload[0] >> 4) === 1 && x.payload[1] === 1;
    try {
      await waitFor(() => js.messages.some(isKey), { what: 'first keyframe', interval: 2, timeout: 10000 });
      row.ttfk = js.messages.find(isKey).at - t0;
    } catch {
      row.ttfk = `none in 10 s (${JSON.stringify((await relay.outputs(input.uid)).at(-1))})`;
    }
    const outs = await relay.outputs(input.uid);
    row.relayDrops = outs.reduce((a, o) => a + o.dropped_gops, 0);
    row.relay = { cpu: m.cpu / n, mem: m.mem / n, cpuMarginal: (m.cpu - base.cpu) / n, memMarginal: (m.mem - base.mem) / n, total: m.cpu };
    pub.kill('SIGKILL');
    await relay.stop();
    js.server.close();
  }
  // (b) nginx-rtmp push
  if (!SKIP.has('nginx')) {
    const port = await freePort();
    const pushes = Array.from({ length: n }, (_, i) => `push rtmp://127.0.0.1:${sinkPort}/live/n${i};`).join(' ');
    const ng = await nginx(`relay${n}`, port, pushes);
    const pub = publisher(src, `rtmp://127.0.0.1:${port}/live/src`);
    await sleep(4500);
    const m = await measure(() => [ng.pid, ...childPids(ng.pid)]);
    row.nginx = { cpu: m.cpu / n, mem: m.mem / n, total: m.cpu };
    pub.kill('SIGKILL');
    ng.kill('SIGTERM');
    await sleep(300);
  }
  // (c) one ffmpeg -c copy per destination, pulling from a plain nginx-rtmp source
  if (!SKIP.has('ffmpeg')) {
    const port = await freePort();
    const ng = await nginx(`src${n}`, port, '');
    const pub = publisher(src, `rtmp://127.0.0.1:${port}/live/src`);
    await sleep(1500);
    const ff = [];
    for (let i = 0; i < n; i++) {
      ff.push(run('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', `rtmp://127.0.0.1:${port}/live/src`,
        '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${sinkPort}/live/f${i}`]));
    }
    await sleep(4000);
    const m = await measure(() => ff.map((p) => p.pid));
    row.ffmpeg = { cpu: m.cpu / n, mem: m.mem / n, total: m.cpu };
    for (const p of ff) p.kill('SIGKILL');
    pub.kill('SIGKILL');
    ng.kill('SIGTERM');
    await sleep(300);
  }
  // (d) kernel floor: the same bytes, one recv per tick, one send per output, nothing else
  if (floorBin) {
    const port = await freePort();
    const fl = run(floorBin, [String(port), String(discard.address().port), String(n), String(TICK)]);
    await waitFor(() => listening(port), { what: 'floor listening' });
    const feed = run('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', src, '-c', 'copy', '-f', 'flv', `tcp://127.0.0.1:${port}`]);
    await sleep(3000);
    const m = await measure(() => [fl.pid]);
    row.floor = { cpu: m.cpu / n, total: m.cpu };
    feed.kill('SIGKILL');
    fl.kill('SIGKILL');
    await sleep(300);
  }
  results.push(row);
  console.error(`n=${n} done ${JSON.stringify(row)}`);
}

const f2 = (x) => (x === undefined ? '-' : x.toFixed(2));
const r2 = (a, b) => (a === undefined || b === undefined || b === 0 ? '-' : (a / b).toFixed(2));
console.log(`\nrelay benchmark: 1080p30 ~6 Mbit/s H.264+AAC, -re -c copy, loopback, ${WINDOW} s window; CPU = % of one core; relay tick ${TICK} ms`);
console.log('outputs | CPU/output: relay (marginal)  nginx  ffmpeg  floor | relay/nginx relay/ffmpeg relay/floor | priv KB/output: relay (marginal)  nginx  ffmpeg | relay/ffmpeg | first keyframe ms');
for (const r of results) {
  console.log(`${String(r.n).padStart(7)} | ${f2(r.relay.cpu)} (${f2(r.relay.cpuMarginal)})  ${f2(r.nginx?.cpu)}  ${f2(r.ffmpeg?.cpu)}  ${f2(r.floor?.cpu)} | ${r2(r.relay.cpu, r.nginx?.cpu)} ${r2(r.relay.cpu, r.ffmpeg?.cpu)} ${r2(r.relay.cpu, r.floor?.cpu)} | ${Math.round(r.relay.mem)} (${Math.round(r.relay.memMarginal)})  ${r.nginx ? Math.round(r.nginx.mem) : '-'}  ${r.ffmpeg ? Math.round(r.ffmpeg.mem) : '-'} | ${r2(r.relay.memMarginal, r.ffmpeg?.mem)} | ${r.ttfk}${r.relayDrops ? ` (drops ${r.relayDrops})` : ''}`);
}
console.log('targets: CPU/output <= 0.5x nginx-rtmp and <= 0.1x ffmpeg; memory/output <= 1/50 of ffmpeg (0.02); first keyframe <= 200 ms');
console.log('floor: the kernel cost of the same bytes at the same tick (no relay logic); relay/floor near 1 means only the kernel is left');
if (discard) discard.close();
stopAll();
process.exit(0);
