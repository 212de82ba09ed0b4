// Helpers for the livestream integration tests: a server wired to the fake
// Cloudflare (webhooks pointing back at the server), users with Bearer tokens,
// dashboard sockets, and fake-control shortcuts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import {
  startServer, startPostgres, freePort, waitFor, sleep, tmpDir, assertCleanExit, assertNoSecretsInLog,
} from './harness.mjs';
import { startFakeCloudflare } from '../fakes/cloudflare.mjs';

export const WEBHOOK_SECRET = 'cf-webhook-secret-for-tests-0001';
export const ADMIN_TOKEN = 'admin-token-for-tests-0001';

export const LIVE_ENV = {
  MEDIA_BACKEND: 'cloudflare',
  CLOUDFLARE_WEBHOOK_SECRET: WEBHOOK_SECRET,
  STREAM_DISCONNECT_TIMEOUT: '1500',
  PRESENCE_CLEANUP_TIMEOUT: '300',
  CLOUDFLARE_INPUT_POLL_INTERVAL: '400',
  ALLOW_PRIVATE_DESTINATIONS: 'true',
  ADMIN_TOKEN,
  LOG_LEVEL: 'info',
};

// Boots the fake Cloudflare and the server. Returns {srv, cf, port, dataDir, restart(), stop()}.
export async function bootLive({ env = {}, webhooks = true, dataDir, postgres = false } = {}) {
  const pg = postgres ? await startPostgres() : null;
  if (pg) env = { ...env, DATABASE_URL: pg.url };
  const port = await freePort();
  const cf = await startFakeCloudflare({
    webhookUrl: webhooks ? `http://127.0.0.1:${port}/webhooks/cloudflare` : null,
    webhookSecret: WEBHOOK_SECRET,
  });
  dataDir = dataDir || tmpDir('sp-live-');
  const fullEnv = {
    ...LIVE_ENV,
    HTTP_LISTEN: `127.0.0.1:${port}`,
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    CLOUDFLARE_API_BASE_URL: cf.url,
    CLOUDFLARE_ACCOUNT_ID: cf.accountId,
    CLOUDFLARE_API_TOKEN: cf.token,
    ...env,
  };
  // every secret the server is handed or hands out (see newUser, addDest, stream) and
  // every server process started on this context, for the log canary
  const secrets = new Set([WEBHOOK_SECRET, ADMIN_TOKEN, cf.token]);
  const ctx = { cf, port, dataDir, env: fullEnv, srv: null, secrets, servers: [] };
  ctx.srv = await startServer({ env: fullEnv, dataDir });
  ctx.servers.push(ctx.srv);
  ctx.restart = async () => {
    ctx.srv = await startServer({ env: fullEnv, dataDir });
    ctx.servers.push(ctx.srv);
    return ctx.srv;
  };
  let stopped = false;
  const stopOthers = async () => {
    if (stopped) return;
    stopped = true;
    await cf.stop();
    if (pg) pg.stop();
  };
  // Stops everything; resolves to the server's {code, sig, ms}. No assertion (cleanup).
  ctx.stop = async () => {
    const r = await ctx.srv.stop();
    await stopOthers();
    return r;
  };
  // Stops everything and asserts the server exited cleanly (code 0, no sanitizer report).
  ctx.stopClean = async () => {
    const r = await ctx.stop();
    assertCleanExit(r, ctx.srv.logs, 'streampai serve');
    return r;
  };
  ctx.logText = () => ctx.srv.logs.join('\n');
  // The log of every server process of this context (restarts included).
  ctx.allLogText = () => ctx.servers.map((s) => s.logs.join('\n')).join('\n');
  // No secret seen by this context in any of its servers' logs (whole logs searched).
  ctx.assertNoSecretsInLog = (extra = []) => assertNoSecretsInLog(ctx.allLogText(), [...secrets, ...extra], {
    known: [/module=http msg="listening"/, /module=auth msg="user registered"/,
      /msg="request" method=POST path="\/api\/auth\/register" status=201/],
    what: 'server log',
  });
  return ctx;
}

// The last test of a describe() that booted ctx: stops the server and asserts a clean exit
// and (canary) that no secret it saw reached its log. A test, not an after() hook: a failing
// hook inside describe() is not counted as a failed test by node:test.
export function testCleanExit(getCtx, { canary = true } = {}) {
  test(`the server exits cleanly (no ASan/LSan report)${canary ? '; no secret in its log' : ''}`, async () => {
    const ctx = getCtx();
    assert.ok(ctx, 'the server was never started');
    await ctx.stopClean();
    if (canary) ctx.assertNoSecretsInLog();
  });
}

let seq = 0;

// Registers a user; returns {id, email, token, cookie, csrf, api(method, path, body)}.
export async function newUser(ctx) {
  const base = () => ctx.srv.url;
  const email = `live${Date.now().toString(36)}${++seq}@example.com`;
  let r = await fetch(base() + '/api/auth/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: base() },
    body: JSON.stringify({ email, password: 'correct horse battery', display_name: 'Live' }),
  });
  if (r.status !== 201) throw new Error(`register ${r.status} ${await r.text()}`);
  const user = (await r.json()).user;
  const jar = Object.fromEntries(r.headers.getSetCookie().map((c) => c.split(';')[0].split('=')));
  const cookie = Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; ');
  r = await fetch(base() + '/api/auth/token', {
    method: 'POST',
    headers: { cookie, 'x-csrf-token': jar.sp_csrf, origin: base() },
  });
  if (r.status !== 200) throw new Error(`token ${r.status} ${await r.text()}`);
  const token = (await r.json()).token;
  const u = { id: user.id, email, token, cookie, csrf: jar.sp_csrf };
  if (ctx.secrets) for (const v of [token, jar.sp_session, jar.sp_csrf, 'correct horse battery']) if (v) ctx.secrets.add(v);
  u.api = async (method, path, body) => {
    const res = await fetch(base() + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not json */ }
    return { status: res.status, json, text };
  };
  u.stream = async () => {
    const st = (await u.api('GET', '/api/stream')).json;
    if (ctx.secrets && st?.input?.stream_key) ctx.secrets.add(st.input.stream_key);
    return st;
  };
  u.addDest = async (name, url = 'rtmp://127.0.0.1:1935/live', key = `key-${name}-${seq}`) => {
    if (ctx.secrets) ctx.secrets.add(key);
    const r2 = await u.api('POST', '/api/destinations', { platform: 'custom', name, url, stream_key: key });
    if (r2.status !== 201) throw new Error(`add destination ${r2.status} ${r2.text}`);
    return { ...r2.json, key };
  };
  return u;
}

export async function inputUid(u) {
  const s = await waitFor(async () => { const st = await u.stream(); return st?.input?.input_uid && st; }, { what: 'live input' });
  return s.input.input_uid;
}

// Sets the fake input state; webhook=true makes the fake POST the notification to the server.
export async function setInput(ctx, uid, state, webhook = true) {
  return ctx.cf.setInputState(uid, state, { webhook });
}

export async function waitState(u, state, opts = {}) {
  return waitFor(async () => { const s = await u.stream(); return s.state === state && s; },
    { timeout: 8000, what: `state ${state}`, ...opts });
}

export function outputsOf(ctx, uid) {
  const inp = ctx.cf.getInput(uid);
  return inp ? inp.outputs : [];
}

// Sends a raw Cloudflare notification to the server.
export async function postWebhook(ctx, body, secret = WEBHOOK_SECRET) {
  const headers = { 'content-type': 'application/json' };
  if (secret !== null) headers['cf-webhook-auth'] = secret;
  const r = await fetch(ctx.srv.url + '/webhooks/cloudflare', {
    method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* ignore */ }
  return { status: r.status, json, text };
}

export function cfEvent(uid, type, updatedAt = new Date()) {
  const iso = updatedAt.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
  return {
    name: 'Live Webhook Test',
    text: `Notification type: Stream Live Input\nInput ID: ${uid}\nEvent type: live_input.${type}\nUpdated at: ${iso}`,
    data: { notification_name: 'Stream Live Input', input_id: uid, event_type: `live_input.${type}`, updated_at: iso },
    ts: Math.floor(updatedAt.getTime() / 1000),
  };
}

export async function admin(ctx, what, token = ADMIN_TOKEN) {
  const r = await fetch(`${ctx.srv.url}/api/admin/debug?what=${what}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: r.status, json: await r.json().catch(() => null) };
}

// A dashboard socket: collects every frame; subscribe/resume helpers.
export async function dashSocket(ctx, u) {
  const ws = new WebSocket(`ws://127.0.0.1:${ctx.port}/socket?token=${u.token}`, { origin: ctx.srv.url });
  const msgs = [];
  const waiters = [];
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    msgs.push(m);
    for (const w of [...waiters]) if (w.pred(m)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); ws.once('unexpected-response', (_q, res) => reject(new Error(`ws ${res.statusCode}`))); });
  const s = {
    ws, msgs,
    next: (pred, timeout = 8000) => {
      const found = msgs.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        waiters.push(w);
        setTimeout(() => { const i = waiters.indexOf(w); if (i >= 0) { waiters.splice(i, 1); reject(new Error('ws message timeout')); } }, timeout);
      });
    },
    send: (o) => ws.send(JSON.stringify(o)),
    close: () => new Promise((resolve) => { if (ws.readyState === WebSocket.CLOSED) return resolve(); ws.once('close', resolve); ws.close(); }),
  };
  return s;
}

export { sleep, waitFor };
