// WebSocket test helpers: a message inbox over the `ws` client and a raw
// handshake over net for header-level checks.
import net from 'node:net';
import crypto from 'node:crypto';
import WebSocket from 'ws';
import { waitFor } from './harness.mjs';

export const ORIGIN = 'http://localhost:5999';

// Opens a socket; resolves once open. Messages (parsed JSON) collect in ws.inbox.
export function openWs(srv, { path = '/socket?test_user=anon', origin = ORIGIN, ...opts } = {}) {
  const url = srv.url.replace('http://', 'ws://') + path;
  const ws = new WebSocket(url, { ...(origin ? { origin } : {}), ...opts });
  ws.inbox = [];
  ws.closeInfo = null;
  ws.on('message', (data, isBinary) => {
    const s = data.toString();
    try { ws.inbox.push(JSON.parse(s)); } catch { ws.inbox.push({ raw: s, isBinary }); }
  });
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => {
    ws.closeInfo = { code, reason: reason.toString() };
    resolve(ws.closeInfo);
  }));
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode, headers: res.headers })));
    ws.once('error', reject);
  });
}

export const sendJson = (ws, o) => ws.send(JSON.stringify(o));

// Waits for a message matching pred; removes and returns it.
export async function next(ws, pred = () => true, what = 'message', timeout = 5000) {
  return waitFor(() => {
    const i = ws.inbox.findIndex(pred);
    if (i < 0) return null;
    return ws.inbox.splice(i, 1)[0];
  }, { timeout, interval: 10, what });
}

export function wsKey() {
  return crypto.randomBytes(16).toString('base64');
}

// Raw HTTP upgrade request; resolves {status, headers, socket, rest}.
export function rawHandshake(port, headers) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.on('error', reject);
    sock.on('connect', () => {
      let req = 'GET /socket?test_user=anon HTTP/1.1\r\nHost: 127.0.0.1\r\n';
      for (const [k, v] of Object.entries(headers)) if (v !== undefined) req += `${k}: ${v}\r\n`;
      sock.write(req + '\r\n');
    });
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      sock.off('data', onData);
      const head = buf.subarray(0, i).toString();
      const [line, ...hl] = head.split('\r\n');
      const hdrs = {};
      for (const h of hl) { const j = h.indexOf(':'); hdrs[h.slice(0, j).trim().toLowerCase()] = h.slice(j + 1).trim(); }
      resolve({ status: Number(line.split(' ')[1]), headers: hdrs, socket: sock, rest: buf.subarray(i + 4) });
    };
    sock.on('data', onData);
  });
}

export const goodHeaders = (extra = {}) => ({
  Upgrade: 'websocket',
  Connection: 'Upgrade',
  'Sec-WebSocket-Version': '13',
  'Sec-WebSocket-Key': wsKey(),
  ...extra,
});
