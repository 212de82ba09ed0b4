// Helpers for the relay media tests: start `streampai relay`, call its
// Cloudflare-compatible API, run ffmpeg publishers/sinks and ffprobe.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { startServer, tmpDir, freePort, waitFor, sleep } from '../lib/harness.mjs';

export { tmpDir, freePort, waitFor, sleep };
export const TOKEN = 'relay-test-token-0123456789';
export const WEBHOOK_SECRET = 'wh-secret-abcdef-0123';

export async function startRelay({ env = {}, dataDir } = {}) {
  const srv = await startServer({
    args: ['relay'],
    dataDir,
    env: {
      RELAY_API_LISTEN: '127.0.0.1:0', RELAY_RTMP_LISTEN: '127.0.0.1:0',
      RELAY_API_TOKEN: TOKEN, CLOUDFLARE_WEBHOOK_SECRET: WEBHOOK_SECRET, ...env,
    },
  });
  const m = srv.logText().match(/module=relay msg="rtmp listening" addr=127\.0\.0\.1:(\d+)/);
  srv.rtmpPort = Number(m[1]);
  srv.api = async (method, p, body) => {
    const res = await fetch(`${srv.url}/client/v4/accounts/acc1/stream/live_inputs${p}`, {
      method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    return { status: res.status, json };
  };
  srv.createInput = async () => (await srv.api('POST', '', { meta: { name: 'test' } })).json.result;
  srv.addOutput = async (uid, url, streamKey) =>
    (await srv.api('POST', `/${uid}/outputs`, { url, streamKey })).json.result;
  srv.outputs = async (uid) => (await srv.api('GET', `/${uid}/outputs`)).json.result;
  srv.input = async (uid) => (await srv.api('GET', `/${uid}`)).json.result;
  return srv;
}

// An `ffmpeg -listen 1` RTMP sink writing an FLV file.
export async function startSink(dir, name, port, key = 'SINKKEY') {
  const out = path.join(dir, `${name}.flv`);
  const log = [];
  const proc = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'warning', '-listen', '1',
    '-i', `rtmp://127.0.0.1:${port}/live/${key}`, '-c', 'copy', '-f', 'flv', '-y', out],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', (d) => log.push(d.toString()));
  const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  await waitFor(() => listening(port), { what: `sink ${name} listening` });
  return { proc, out, port, exited, log: () => log.join(''), kill: (s = 'SIGKILL') => { try { proc.kill(s); } catch {} } };
}

export function listening(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let t = '';
    try { t = fs.readFileSync(f, 'utf8'); } catch { continue; }
    for (const l of t.split('\n').slice(1)) {
      const c = l.trim().split(/\s+/);
      if (c.length > 3 && c[1].endsWith(':' + hex) && c[3] === '0A') return true;
    }
  }
  return false;
}

// ffmpeg publisher (testsrc + sine, x264 yuv420p + aac, GOP 30 = 1 s).
export function publish(url, seconds, { extra = [] } = {}) {
  const log = [];
  const proc = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'warning', '-re',
    '-f', 'lavfi', '-i', 'testsrc=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine',
    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '30',
    '-c:a', 'aac', '-t', String(seconds), ...extra, '-f', 'flv', url], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', (d) => log.push(d.toString()));
  const t0 = Date.now();
  const exited = new Promise((r) => proc.on('exit', (code) => r({ code, ms: Date.now() - t0 })));
  return { proc, exited, log: () => log.join(''), kill: (s = 'SIGKILL') => { try { proc.kill(s); } catch {} } };
}

export function probe(file) {
  const count = (sel) => Number(execFileSync('ffprobe', ['-v', 'error', '-select_streams', sel, '-count_packets',
    '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', file]).toString().trim() || 0);
  const pk = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,flags',
    '-of', 'csv=p=0', file]).toString().trim().split('\n').filter(Boolean);
  const dur = Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]).toString().trim());
  return { video: count('v:0'), audio: count('a:0'), firstVideoKey: pk.length > 0 && pk[0].split(',')[1].startsWith('K'), firstPts: pk.length ? Number(pk[0].split(',')[0]) : NaN, duration: dur };
}

// Receives the relay's webhooks.
export async function startWebhookSink() {
  const events = [];
  const server = http.createServer((req, res) => {
    let b = '';
    req.on('data', (d) => { b += d; });
    req.on('end', () => {
      try { events.push({ auth: req.headers['cf-webhook-auth'], body: JSON.parse(b) }); } catch { events.push({ bad: b }); }
      res.writeHead(200); res.end('ok');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { events, url: `http://127.0.0.1:${server.address().port}/webhooks/cloudflare`, close: () => server.close() };
}

export function makeCert(dir, name) {
  const key = path.join(dir, `${name}.key`), crt = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const both = path.join(dir, `${name}.both.pem`);
  fs.writeFileSync(both, fs.readFileSync(crt, 'utf8') + fs.readFileSync(key, 'utf8'));
  return { crt, both };
}

// socat TLS terminator in front of a plain RTMP sink (one connection).
export async function startTlsProxy(port, certBoth, targetPort) {
  const proc = spawn('socat', [`openssl-listen:${port},bind=127.0.0.1,reuseaddr,cert=${certBoth},verify=0`,
    `tcp:127.0.0.1:${targetPort}`], { stdio: 'ignore' });
  await waitFor(() => listening(port), { what: 'socat listening' });
  return { proc, kill: () => { try { proc.kill('SIGKILL'); } catch {} } };
}
