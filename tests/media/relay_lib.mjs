// Helpers for the relay media tests: start `streampai relay`, call its
// Cloudflare-compatible API, run ffmpeg publishers/sinks and ffprobe.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { startServer, tmpDir, freePort, waitFor, sleep } from '../lib/harness.mjs';

export { tmpDir, freePort, waitFor, sleep };

// Every helper process, so a failed test cannot leave one running (afterEach -> killAll).
const procs = new Set();
function track(p) {
  procs.add(p);
  p.on('exit', () => procs.delete(p));
  return p;
}
export function killAll() {
  for (const p of procs) { try { p.kill('SIGKILL'); } catch {} }
}
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
  const proc = track(spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'warning', '-listen', '1',
    '-i', `rtmp://127.0.0.1:${port}/live/${key}`, '-c', 'copy', '-f', 'flv', '-y', out],
  { stdio: ['ignore', 'ignore', 'pipe'] }));
  proc.stderr.on('data', (d) => log.push(d.toString()));
  const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  // -listen 1 closes its listener after the first accept: a connection also counts
  await waitFor(() => {
    if (proc.exitCode !== null) throw new Error(`sink ${name} exited before listening on ${port}: ${log.join('')}`);
    return listening(port) || listening(port, '01');
  }, { what: `sink ${name} listening` });
  return { proc, out, port, exited, log: () => log.join(''), kill: (s = 'SIGKILL') => { try { proc.kill(s); } catch {} } };
}

export function listening(port, state = '0A') {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let t = '';
    try { t = fs.readFileSync(f, 'utf8'); } catch { continue; }
    for (const l of t.split('\n').slice(1)) {
      const c = l.trim().split(/\s+/);
      if (c.length > 3 && c[1].endsWith(':' + hex) && c[3] === state) return true;
    }
  }
  return false;
}

// ffmpeg publisher (testsrc + sine, x264 yuv420p + aac, GOP 30 = 1 s).
export function publish(url, seconds, { extra = [] } = {}) {
  const log = [];
  const proc = track(spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'warning', '-re',
    '-f', 'lavfi', '-i', 'testsrc=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine',
    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '30',
    '-c:a', 'aac', '-t', String(seconds), ...extra, '-f', 'flv', url], { stdio: ['ignore', 'ignore', 'pipe'] }));
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
// failFirst: answer that many requests with 503 first (to exercise retries).
export async function startWebhookSink({ failFirst = 0 } = {}) {
  const events = [];
  let seen = 0;
  const server = http.createServer((req, res) => {
    let b = '';
    req.on('data', (d) => { b += d; });
    req.on('end', () => {
      if (seen++ < failFirst) { res.writeHead(503); res.end('busy'); return; }
      try { events.push({ auth: req.headers['cf-webhook-auth'], body: JSON.parse(b) }); } catch { events.push({ bad: b }); }
      res.writeHead(200); res.end('ok');
    });
  });
  server.requests = () => seen;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { events, requests: () => seen, url: `http://127.0.0.1:${server.address().port}/webhooks/cloudflare`, close: () => server.close() };
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
  const proc = track(spawn('socat', [`openssl-listen:${port},bind=127.0.0.1,reuseaddr,cert=${certBoth},verify=0`,
    `tcp:127.0.0.1:${targetPort}`], { stdio: 'ignore' }));
  await waitFor(() => {
    // The port must be ours: a socat that failed to bind exits, while someone else listens.
    if (proc.exitCode !== null) throw new Error(`socat exited before listening on ${port}`);
    return listening(port);
  }, { what: 'socat listening' });
  await sleep(30);
  if (proc.exitCode !== null) throw new Error(`socat exited right after start on ${port}`);
  return { proc, kill: () => { try { proc.kill('SIGKILL'); } catch {} } };
}

// ---- a minimal RTMP server sink in JS: records every media message it receives ----
const amf = {
  str(s) { const b = Buffer.alloc(3 + Buffer.byteLength(s)); b[0] = 2; b.writeUInt16BE(Buffer.byteLength(s), 1); b.write(s, 3); return b; },
  num(n) { const b = Buffer.alloc(9); b[0] = 0; b.writeDoubleBE(n, 1); return b; },
  nul() { return Buffer.from([5]); },
  obj(o) {
    const parts = [Buffer.from([3])];
    for (const [k, v] of Object.entries(o)) {
      const kb = Buffer.alloc(2 + k.length); kb.writeUInt16BE(k.length); kb.write(k, 2);
      parts.push(kb, typeof v === 'number' ? amf.num(v) : amf.str(String(v)));
    }
    parts.push(Buffer.from([0, 0, 9]));
    return Buffer.concat(parts);
  },
};
export { amf };

export function rtmpChunk(csid, type, msid, payload, ts = 0, chunkSize = 128) {
  const h = Buffer.alloc(12);
  h[0] = csid; h.writeUIntBE(Math.min(ts, 0xffffff), 1, 3); h.writeUIntBE(payload.length, 4, 3); h[7] = type; h.writeUInt32LE(msid, 8);
  const parts = [h];
  for (let i = 0; i < payload.length; i += chunkSize) {
    if (i > 0) parts.push(Buffer.from([0xC0 | csid]));
    parts.push(payload.subarray(i, i + chunkSize));
  }
  return Buffer.concat(parts);
}

function readAmfHead(p) {
  // returns [name, txn] from a command payload
  let name = '', txn = 0, o = 0;
  if (p[o] === 2) { const l = p.readUInt16BE(o + 1); name = p.toString('utf8', o + 3, o + 3 + l); o += 3 + l; }
  if (p[o] === 0) txn = p.readDoubleBE(o + 1);
  return [name, txn];
}

export async function startJsSink() {
  const sink = { messages: [], commands: [], conns: 0, open: 0 };
  const socks = new Set();
  const server = net.createServer((sock) => {
    sink.conns++;
    sink.open++;
    socks.add(sock);
    sock.on('close', () => { sink.open--; socks.delete(sock); });
    let buf = Buffer.alloc(0), stage = 0, chunkSize = 128;
    const cs = new Map();
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (stage === 0) {
          if (buf.length < 1537) return;
          const s = Buffer.alloc(3073); s[0] = 3; buf.copy(s, 1537, 1, 1537);
          sock.write(s); buf = buf.subarray(1537); stage = 1; continue;
        }
        if (stage === 1) { if (buf.length < 1536) return; buf = buf.subarray(1536); stage = 2; continue; }
        if (buf.length < 1) return;
        const fmt = buf[0] >> 6; let csid = buf[0] & 0x3f, o = 1;
        if (csid === 0) { if (buf.length < 2) return; csid = 64 + buf[1]; o = 2; } else if (csid === 1) { if (buf.length < 3) return; csid = 64 + buf[1] + buf[2] * 256; o = 3; }
        const hl = [11, 7, 3, 0][fmt];
        if (buf.length < o + hl) return;
        let st = cs.get(csid) || { ts: 0, len: 0, type: 0, msid: 0, parts: [], got: 0, ext: false };
        let tsf = st.ts, len = st.len, type = st.type, msid = st.msid, ext = st.ext;
        if (fmt <= 2) { tsf = buf.readUIntBE(o, 3); ext = tsf === 0xffffff; }
        if (fmt <= 1) { len = buf.readUIntBE(o + 3, 3); type = buf[o + 6]; }
        if (fmt === 0) msid = buf.readUInt32LE(o + 7);
        o += hl;
        if (ext) { if (buf.length < o + 4) return; tsf = buf.readUInt32BE(o); o += 4; }
        const want = Math.min(chunkSize, len - (st.got || 0));
        if (buf.length < o + want) return;
        if (st.got === 0) { st = { ts: fmt === 0 ? tsf : st.ts + tsf, len, type, msid, parts: [], got: 0, ext }; }
        st.parts.push(buf.subarray(o, o + want)); st.got += want; st.ext = ext;
        buf = buf.subarray(o + want);
        cs.set(csid, st);
        if (st.got < st.len) continue;
        const payload = Buffer.concat(st.parts);
        st.got = 0; st.parts = [];
        if (type === 1) chunkSize = payload.readUInt32BE(0) & 0x7fffffff;
        else if (type === 20) {
          const [name, txn] = readAmfHead(payload);
          sink.commands.push(name);
          if (name === 'connect') sock.write(rtmpChunk(3, 20, 0, Buffer.concat([amf.str('_result'), amf.num(txn), amf.obj({ fmsVer: 'FMS/3,0,1,123' }), amf.obj({ level: 'status', code: 'NetConnection.Connect.Success' })])));
          else if (name === 'createStream') sock.write(rtmpChunk(3, 20, 0, Buffer.concat([amf.str('_result'), amf.num(txn), amf.nul(), amf.num(1)])));
          else if (name === 'publish') sock.write(rtmpChunk(5, 20, 1, Buffer.concat([amf.str('onStatus'), amf.num(0), amf.nul(), amf.obj({ level: 'status', code: 'NetStream.Publish.Start' })])));
        } else if (type === 8 || type === 9 || type === 18) {
          sink.messages.push({ type, ts: st.ts, payload, at: Date.now() });
        }
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  sink.port = server.address().port;
  sink.close = () => new Promise((r) => { for (const k of socks) k.destroy(); server.close(r); });
  sink.server = server;
  return sink;
}
