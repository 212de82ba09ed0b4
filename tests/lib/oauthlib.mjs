// Helpers for the OAuth flow tests (platforms_connect, signin): a browser-like cookie jar that
// follows redirects by hand, and the three legs of a flow (start -> provider -> callback).
import http from 'node:http';
import assert from 'node:assert/strict';
import { parseSetCookies, freshIp } from './authlib.mjs';

// One browser: its own cookies and source address. get() never follows redirects.
export function browser(srv, { ip = freshIp() } = {}) {
  const jar = new Map();
  const b = {
    jar, ip,
    request(method, p, { body, headers = {} } = {}) {
      return new Promise((resolve, reject) => {
        const h = { ...headers };
        if (jar.size) h.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
        let data;
        if (body !== undefined) {
          data = typeof body === 'string' ? body : JSON.stringify(body);
          h['content-type'] = 'application/json';
          h['content-length'] = Buffer.byteLength(data);
        }
        if (jar.has('sp_csrf') && method !== 'GET') h['x-csrf-token'] = jar.get('sp_csrf');
        const r = http.request({ host: '127.0.0.1', port: srv.port, method, path: p, headers: h, localAddress: ip, agent: false, timeout: 20000 }, (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            const set = parseSetCookies(res.headers['set-cookie']);
            for (const [k, v] of Object.entries(set)) {
              if (v.attrs.includes('max-age=0') || v.value === '') jar.delete(k); else jar.set(k, v.value);
            }
            let json; try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
            resolve({ status: res.statusCode, headers: res.headers, text, json, set, location: res.headers.location });
          });
        });
        r.on('timeout', () => r.destroy(new Error('request timeout')));
        r.on('error', reject);
        if (data !== undefined) r.write(data);
        r.end();
      });
    },
    get(p, o) { return b.request('GET', p, o); },
  };
  return b;
}

// GET on the provider (a fake), without following; returns {status, location}.
export async function providerGet(url) {
  const res = await fetch(url, { redirect: 'manual' });
  await res.text();
  return { status: res.status, location: res.headers.get('location') };
}

// Path + query of an absolute URL on our server.
export function localPath(u) {
  const x = new URL(u);
  return x.pathname + x.search;
}

// Leg 1: GET /auth/{p}/{kind} -> 302 to the provider; returns the provider URL.
export async function startFlow(b, platform, kind) {
  const r = await b.get(`/auth/${platform}/${kind}`);
  assert.equal(r.status, 302, `${kind} start: ${r.status} ${r.text}`);
  assert.ok(r.location && /^https?:\/\//.test(r.location), `${kind} start goes to the provider: ${r.location}`);
  return r.location;
}

// Leg 2: the provider answers with a redirect to our callback; returns the callback path.
export async function atProvider(authorizeUrl) {
  const p = await providerGet(authorizeUrl);
  assert.equal(p.status, 302, `provider authorize: ${p.status}`);
  return localPath(p.location);
}

// The whole flow; returns the callback's answer (a 302 to /dashboard or /login).
export async function runFlow(b, platform, kind) {
  const cb = await atProvider(await startFlow(b, platform, kind));
  return b.get(cb);
}

// The error code of a redirect to /dashboard?error= or /login?error=, or null.
export function redirectError(r) {
  assert.equal(r.status, 302, `expected a redirect, got ${r.status} ${r.text}`);
  return new URL(r.location, 'http://x').searchParams.get('error');
}
