// Helpers for the auth tests: raw HTTP with a chosen source address (127.x.y.z,
// for per-IP rate limits), cookie parsing, JWT forging, direct DB access.
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startServer, freePort } from './harness.mjs';

// Starts the server with PUBLIC_URL = its own origin (so same-origin checks can be tested).
export async function bootServer(env = {}, opts = {}) {
  const port = await freePort();
  return startServer({
    ...opts,
    env: { HTTP_LISTEN: `127.0.0.1:${port}`, PUBLIC_URL: `http://127.0.0.1:${port}`, ...env },
  });
}

let ipCounter = 0;
// A fresh loopback source address per call (Linux routes all of 127/8 to lo).
export function freshIp() {
  ipCounter++;
  return `127.${100 + ((ipCounter >> 16) & 0x7f)}.${(ipCounter >> 8) & 0xff}.${(ipCounter & 0xff) || 1}`;
}

export function parseSetCookies(list) {
  const out = {};
  for (const sc of list || []) {
    const parts = sc.split(';').map((s) => s.trim());
    const [kv, ...attrs] = parts;
    const i = kv.indexOf('=');
    out[kv.slice(0, i)] = { value: kv.slice(i + 1), attrs: attrs.map((a) => a.toLowerCase()), raw: sc };
  }
  return out;
}

// One request. opts: body (object or string), headers, cookies {name: value}, ip (source address).
export function rq(srv, method, p, opts = {}) {
  const { body, headers = {}, cookies, ip = freshIp(), timeout = 20000 } = opts;
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    let data;
    if (body !== undefined) {
      data = typeof body === 'string' ? body : JSON.stringify(body);
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
      h['content-length'] = Buffer.byteLength(data);
    }
    if (cookies) h.cookie = Object.entries(cookies).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`).join('; ');
    const r = http.request({ host: '127.0.0.1', port: srv.port, method, path: p, headers: h, localAddress: ip, agent: false, timeout }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        const set = parseSetCookies(res.headers['set-cookie']);
        resolve({ status: res.statusCode, headers: res.headers, text, json, set });
      });
    });
    r.on('timeout', () => r.destroy(new Error('request timeout')));
    r.on('error', reject);
    if (data !== undefined) r.write(data);
    r.end();
  });
}

// Registers; returns {res, user, cookies: {sp_session, sp_csrf}}.
export async function register(srv, email, password = 'correct horse battery', display_name, ip) {
  const body = { email, password };
  if (display_name !== undefined) body.display_name = display_name;
  const res = await rq(srv, 'POST', '/api/auth/register', { body, ip });
  return { res, user: res.json && res.json.user, cookies: sessionCookies(res) };
}

export async function login(srv, email, password = 'correct horse battery', ip) {
  const res = await rq(srv, 'POST', '/api/auth/login', { body: { email, password }, ip });
  return { res, user: res.json && res.json.user, cookies: sessionCookies(res) };
}

export function sessionCookies(res) {
  const c = {};
  if (res.set.sp_session) c.sp_session = res.set.sp_session.value;
  if (res.set.sp_csrf) c.sp_csrf = res.set.sp_csrf.value;
  return c;
}

// ---- JWT ----------------------------------------------------------------------------------
const b64u = (b) => Buffer.from(b).toString('base64url');
export function jwtDecode(tok) {
  const [h, p] = tok.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
}
// alg: 'sha256' | 'sha512' | null (empty signature)
export function jwtSign(header, payload, key, alg = 'sha256') {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  const sig = alg ? crypto.createHmac(alg, key).update(input).digest('base64url') : '';
  return `${input}.${sig}`;
}
export function signingKey(srv) {
  return fs.readFileSync(path.join(srv.dataDir, 'token_signing.key'));
}

// ---- direct database access (to delete a user behind the server's back) --------------------
export function dbExec(srv, sql, pgUrl) {
  if (pgUrl) {
    return execFileSync('psql', [pgUrl, '-v', 'ON_ERROR_STOP=1', '-tAc', sql], { encoding: 'utf8' });
  }
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', path.join(srv.dataDir, 'streampai.db'), sql], { encoding: 'utf8' });
}
