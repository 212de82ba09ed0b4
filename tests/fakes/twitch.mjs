// Fake Twitch (OAuth id.twitch.tv, Helix, EventSub WebSocket + webhook transport) for tests.
//
// Shapes and behaviour follow research/platform-apis.md §A and §E:
//  Faithful: token bodies {access_token, refresh_token, expires_in, scope:[...], token_type:"bearer"};
//   OAuth error bodies {"status":400,"message":"Invalid refresh token"} / "Invalid authorization code" /
//   /validate 401 {"status":401,"message":"invalid access token"}; authorize deny redirect
//   error=access_denied&error_description=The+user+denied+you+access&state=...; refresh-token rotation
//   (a used refresh token answers 400 invalid_grant-equivalent "Invalid refresh token"); Helix needs
//   Authorization: Bearer + Client-Id, 401 {"error":"Unauthorized","status":401,"message":"Invalid OAuth token"};
//   token bucket per client id (+ user for user tokens), 800 points/min by default, Ratelimit-Limit /
//   -Remaining / -Reset (epoch seconds) on every Helix answer, 429 when empty; /helix/streams returns only
//   live streams ({"data":[],"pagination":{}} when offline); PATCH /channels → 204; chat/messages
//   {message_id,is_sent,drop_reason}; eventsub/subscriptions create (202) / list / delete (204) with
//   cost / total / total_cost / max_total_cost, 409 on duplicates, websocket session_id checked against live
//   sessions, webhook callback verification challenge; EventSub WS envelopes (session_welcome,
//   session_keepalive, notification, session_reconnect, revocation) with nanosecond timestamps, close codes
//   4000–4007 (4001 on inbound data, 4003 when unused, 4004 when reconnect grace expires, 4007 on a bad
//   reconnect); after a non-reconnect disconnect the session's subscriptions are disabled (status from the
//   close-code table); webhook POSTs with the seven Twitch-Eventsub-* headers and
//   sha256=HMAC-SHA256(secret, id + timestamp + body).
//  Simplified / from memory (not in the notes; tests should branch on status, not text): the Client-Id
//   401 texts ("Client ID is missing", "Client ID and OAuth token do not match"), 403/409/400 texts,
//   PKCE (Twitch does not document PKCE for its code flow; we verify S256/plain when a challenge is given),
//   the session id stays the same across session_reconnect, no ping/pong (4002) checking, the 3-sockets-per-user
//   and 300-subscriptions-per-socket limits are not enforced (max_total_cost is), webhook callbacks
//   may be plain http on any port, the bucket refills continuously, scopes checked only for the endpoints
//   listed below, sending a chat message echoes it as channel.chat.message (echoChat, like the real thing).
//
// Use as a module:
//   const tw = await startFakeTwitch({ port, clientId, clientSecret, keepaliveSeconds, unusedTimeoutMs, ... });
//   tw.url (base), tw.authUrl (…/oauth2), tw.apiUrl (…/helix), tw.wsUrl (ws://…/ws), tw.controlUrl (…/_control)
// or standalone: node tests/fakes/twitch.mjs --port N [--client-id I --client-secret S]
//   prints one line: FAKE_TWITCH_LISTENING port=<P> url=<base>
//
// Options: clientId, clientSecret, redirectUris (array; default: any), keepaliveSeconds (10),
//   unusedTimeoutMs (10000; 0 disables 4003), reconnectGraceMs (30000), accessTtl (14124 s),
//   rateLimit ({limit:800, windowMs:60000} or false), rotateRefresh (true), enforceScopes (true),
//   echoChat (true), webhookRetries (2), users ([{id, login, display_name, ...}]).
//
// JS control methods (each also reachable as POST /_control/<name> with body {"args":[...]}):
//   addUser({id?, login, display_name?, email?, broadcaster_type?}) → user
//   setLive(userId, {viewer_count?, title?, game_id?, started_at?, notify?}) / setOffline(userId, {notify?})
//     (notify: also emit stream.online / stream.offline) / setViewers(userId, n) / user(id) → view incl. channel, stream
//   setAuthorize('approve'|'deny', userId?)   which user approves the next /oauth2/authorize, or deny
//   issueToken({userId?, scopes?, ttl?}) → {access_token, refresh_token}   mint without the OAuth dance
//   expireToken(accessTokenOrUserId?)         (no arg: all tokens) next Helix call → 401 Invalid OAuth token
//   failNextRefresh(n=1)                      next n refresh grants → 400 Invalid refresh token
//   setRotateRefresh(bool)
//   injectFault({kind:'5xx'|'429'|'delay'|'drop', count=1, status=500, resetSec=2, ms, pathIncludes, method})
//   setDelay(ms)                              every answer delayed
//   setRateLimit({limit, windowMs}|false)
//   dropNextChat(n=1, {code, message})        next chat sends answer is_sent:false
//   emit(type, eventOverrides?, {duplicates?, broadcasterId?}) → [message_id...]   to every enabled matching sub
//   sessions() / subscriptions()              views of the live state
//   waitForSession(pred?) / waitForSubscription(pred?) / waitFor(fn, timeoutMs)
//   sendReconnect(sessionId?) → reconnect_url;  setReconnectGrace(ms)
//   closeSession(sessionId?, code=4000) ; dropSocket(sessionId?) (no close frame) ; setSilent(sessionId?, bool)
//   duplicateNext(n=1)                        the next n notifications (ws and webhook) are delivered twice
//   revoke(subscriptionId, status='authorization_revoked')
//   setWebhookReorder(bool) ; releaseWebhooks() (held deliveries sent in reverse order) ; flushWebhooks()
//   setKeepalive(sec) ; setUnusedTimeout(ms)
//   calls (array: {method, path, query, headers, body, status, at, fault}), resetCalls(), counters(),
//   chatMessages (array), webhookDeliveries (array), reset(), stop()
import http from 'node:http';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { readBody, takeFault } from './http_util.mjs';
import { WebSocketServer } from 'ws';


const SUB_TYPES = {
  'channel.chat.message': { version: '1', cond: ['broadcaster_user_id', 'user_id'], scope: 'user:read:chat' },
  'channel.chat.message_delete': { version: '1', cond: ['broadcaster_user_id', 'user_id'], scope: 'user:read:chat' },
  'channel.chat.notification': { version: '1', cond: ['broadcaster_user_id', 'user_id'], scope: 'user:read:chat' },
  'channel.follow': { version: '2', cond: ['broadcaster_user_id', 'moderator_user_id'], scope: 'moderator:read:followers' },
  'channel.subscribe': { version: '1', cond: ['broadcaster_user_id'], scope: 'channel:read:subscriptions' },
  'channel.subscription.gift': { version: '1', cond: ['broadcaster_user_id'], scope: 'channel:read:subscriptions' },
  'channel.subscription.message': { version: '1', cond: ['broadcaster_user_id'], scope: 'channel:read:subscriptions' },
  'channel.cheer': { version: '1', cond: ['broadcaster_user_id'], scope: 'bits:read' },
  'channel.raid': { version: '1', cond: [], anyOf: ['to_broadcaster_user_id', 'from_broadcaster_user_id'] },
  'channel.update': { version: '2', cond: ['broadcaster_user_id'] },
  'stream.online': { version: '1', cond: ['broadcaster_user_id'] },
  'stream.offline': { version: '1', cond: ['broadcaster_user_id'] },
};

const CLOSE_STATUS = {
  4000: 'websocket_internal_error', 4001: 'websocket_received_inbound_traffic',
  4002: 'websocket_failed_ping_pong', 4003: 'websocket_connection_unused', 4005: 'websocket_network_timeout',
  4006: 'websocket_network_error', 1000: 'websocket_disconnected',
};
const CLOSE_REASON = {
  4000: 'internal server error', 4001: 'sent inbound traffic', 4002: 'failed ping pong',
  4003: 'connection unused', 4004: 'reconnect grace time expired', 4005: 'network timeout',
  4006: 'network error', 4007: 'invalid reconnect',
};

const GAMES = [
  { id: '509658', name: 'Just Chatting', box_art_url: 'https://static-cdn.jtvnw.net/ttv-boxart/509658-{width}x{height}.jpg' },
  { id: '33214', name: 'Fortnite', box_art_url: 'https://static-cdn.jtvnw.net/ttv-boxart/33214-{width}x{height}.jpg' },
  { id: '494131', name: 'Little Nightmares', box_art_url: 'https://static-cdn.jtvnw.net/ttv-boxart/494131-{width}x{height}.jpg' },
  { id: '21779', name: 'League of Legends', box_art_url: 'https://static-cdn.jtvnw.net/ttv-boxart/21779-{width}x{height}.jpg' },
  { id: '27471', name: 'Minecraft', box_art_url: 'https://static-cdn.jtvnw.net/ttv-boxart/27471-{width}x{height}.jpg' },
  { id: '509660', name: 'Art', box_art_url: 'https://static-cdn.jtvnw.net/ttv-boxart/509660-{width}x{height}.jpg' },
];

function rnd(n = 15) {
  return crypto.randomBytes(n).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 30).padEnd(30, '0');
}
// RFC 3339 with nanoseconds, as EventSub sends them
function nowNano() {
  const ns = String(Math.floor(Math.random() * 1e6)).padStart(6, '0');
  return new Date().toISOString().replace(/\.(\d{3})Z$/, `.$1${ns}Z`);
}
function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

export async function startFakeTwitch(opts = {}) {
  const clientId = opts.clientId || 'fakeclientid0123456789abcdefgh';
  const clientSecret = opts.clientSecret || 'fakeclientsecret0123456789abcd';
  const redirectUris = opts.redirectUris || null;
  let keepaliveSeconds = opts.keepaliveSeconds ?? 10;
  let unusedTimeoutMs = opts.unusedTimeoutMs ?? 10000;
  let reconnectGraceMs = opts.reconnectGraceMs ?? 30000;
  const accessTtl = opts.accessTtl ?? 14124;
  let rateLimit = opts.rateLimit === false ? null : { limit: 800, windowMs: 60000, ...(opts.rateLimit || {}) };
  let rotateRefresh = opts.rotateRefresh ?? true;
  const enforceScopes = opts.enforceScopes ?? true;
  const echoChat = opts.echoChat ?? true;
  const webhookRetries = opts.webhookRetries ?? 2;

  const users = new Map();
  const codes = new Map();
  const tokens = new Map(); // access -> {clientId, userId, scopes, expiresAt, refresh}
  const refreshes = new Map(); // refresh -> {clientId, userId, scopes, valid, access}
  const buckets = new Map();
  const faults = [];
  const calls = [];
  const counters = {};
  const chatMessages = [];
  const webhookDeliveries = [];
  const heldWebhooks = [];
  const inflight = new Set();
  const sessions = new Map(); // session id -> session
  const reconnectTickets = new Map(); // ticket -> session id
  const subs = new Map();
  const subsByType = new Map(); // type -> Set of subscriptions (emit without scanning everything)
  const indexSub = (sub) => { if (!subsByType.has(sub.type)) subsByType.set(sub.type, new Set()); subsByType.get(sub.type).add(sub); };
  const unindexSub = (sub) => { subsByType.get(sub.type)?.delete(sub); };
  const sockets = new Set();
  const waiters = new Set();
  let authorize = { mode: 'approve', userId: null };
  let failRefresh = 0;
  let delayMs = 0;
  let dupNext = 0;
  let reorder = false;
  let chatDrops = [];
  let nextUserId = 100000001;
  let stopped = false;
  const stopAc = new AbortController();

  function bump(k, n = 1) { counters[k] = (counters[k] || 0) + n; }
  function notifyWaiters() { for (const w of [...waiters]) w(); }
  function waitFor(fn, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const v0 = fn();
      if (v0) return resolve(v0);
      let t = null;
      const w = () => {
        const v = fn();
        if (v) { waiters.delete(w); clearTimeout(t); resolve(v); }
      };
      t = setTimeout(() => { waiters.delete(w); reject(new Error('fake twitch: waitFor timed out')); }, timeoutMs);
      waiters.add(w);
    });
  }

  // ---------- users ----------
  function addUser(u = {}) {
    const id = String(u.id || nextUserId++);
    const login = (u.login || `user${id}`).toLowerCase();
    const user = {
      id, login, display_name: u.display_name || login, type: '', broadcaster_type: u.broadcaster_type ?? 'affiliate',
      description: u.description ?? '', profile_image_url: `https://static-cdn.jtvnw.net/jtv_user_pictures/${login}-profile_image-300x300.png`,
      offline_image_url: '', view_count: 0, email: u.email ?? `${login}@example.test`,
      created_at: u.created_at || '2016-12-14T20:32:28.894263Z',
      channel: { title: u.title ?? '', game_id: '', game_name: '', broadcaster_language: 'en', tags: [], delay: 0 },
      stream: null, streamKey: `live_${id}_${rnd()}`,
    };
    users.set(id, user);
    return userView(user, true);
  }
  function userView(u, withEmail) {
    const v = { id: u.id, login: u.login, display_name: u.display_name, type: u.type, broadcaster_type: u.broadcaster_type,
      description: u.description, profile_image_url: u.profile_image_url, offline_image_url: u.offline_image_url,
      view_count: u.view_count, created_at: u.created_at };
    if (withEmail) v.email = u.email;
    return v;
  }
  function getUser(id) {
    const u = users.get(String(id));
    if (!u) throw new Error(`fake twitch: no user ${id}`);
    return u;
  }
  function setLive(userId, o = {}) {
    const u = getUser(userId);
    if (o.title !== undefined) u.channel.title = o.title;
    if (o.game_id !== undefined) setGame(u, o.game_id);
    u.stream = { id: String(40000000000 + Math.floor(Math.random() * 1e9)), viewer_count: o.viewer_count ?? 0,
      started_at: o.started_at || new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') };
    if (o.notify) emit('stream.online', { id: u.stream.id, started_at: nowNano() }, { broadcasterId: u.id });
    return u.stream;
  }
  function setOffline(userId, o = {}) {
    const u = getUser(userId);
    u.stream = null;
    if (o.notify) emit('stream.offline', {}, { broadcasterId: u.id });
  }
  function setViewers(userId, n) {
    const u = getUser(userId);
    if (!u.stream) throw new Error('fake twitch: user not live');
    u.stream.viewer_count = n;
  }
  function setGame(u, gid) {
    if (gid === '0' || gid === '') { u.channel.game_id = ''; u.channel.game_name = ''; return true; }
    const g = GAMES.find((x) => x.id === String(gid));
    if (!g) return false;
    u.channel.game_id = g.id; u.channel.game_name = g.name;
    return true;
  }
  for (const u of opts.users || [{ id: '141981764', login: 'twitchdev', display_name: 'TwitchDev', broadcaster_type: 'partner' }]) addUser(u);

  // ---------- tokens ----------
  function issueToken({ userId = null, scopes = [], ttl = accessTtl, cid = clientId, refresh = true } = {}) {
    const access = rnd();
    const t = { clientId: cid, userId: userId === null ? null : String(userId), scopes: [...scopes], expiresAt: Date.now() + ttl * 1000, refresh: null };
    tokens.set(access, t);
    const out = { access_token: access, expires_in: ttl };
    if (refresh && userId !== null) {
      const r = `${rnd(24)}${rnd(24)}`.slice(0, 50);
      refreshes.set(r, { clientId: cid, userId: t.userId, scopes: t.scopes, valid: true, access });
      t.refresh = r;
      out.refresh_token = r;
    }
    return out;
  }
  function expireToken(which) {
    for (const [a, t] of tokens) {
      if (which === undefined || which === null || a === which || t.userId === String(which)) t.expiresAt = Date.now() - 1;
    }
  }
  function liveToken(access) {
    const t = tokens.get(access);
    if (!t || t.expiresAt <= Date.now()) return null;
    return t;
  }

  // ---------- http helpers ----------
  function send(res, status, obj, headers = {}) {
    const body = obj === null || obj === undefined ? '' : typeof obj === 'string' ? obj : JSON.stringify(obj);
    const h = { ...headers };
    if (body) { h['content-type'] = h['content-type'] || 'application/json'; }
    h['content-length'] = Buffer.byteLength(body);
    res.writeHead(status, h);
    res.end(body);
  }
  function injectFault(f) {
    faults.push({ kind: String(f.kind), count: f.count || 1, status: f.status || 500, resetSec: f.resetSec ?? 2,
      ms: f.ms ?? 1000, pathIncludes: f.pathIncludes, method: f.method });
  }

  // ---------- OAuth ----------
  function params(url, raw, req) {
    const p = new URLSearchParams(url.search);
    const ct = req.headers['content-type'] || '';
    if (raw) {
      if (ct.includes('application/json')) {
        try { for (const [k, v] of Object.entries(JSON.parse(raw))) p.set(k, String(v)); } catch { /* ignore */ }
      } else {
        for (const [k, v] of new URLSearchParams(raw)) p.set(k, v);
      }
    }
    return p;
  }
  const oauthErr = (res, status, message) => send(res, status, { status, message });

  function handleAuthorize(req, res, url) {
    const q = url.searchParams;
    const cid = q.get('client_id');
    const ru = q.get('redirect_uri');
    if (cid !== clientId) return oauthErr(res, 400, 'invalid client');
    if (!ru || (redirectUris && !redirectUris.includes(ru))) return oauthErr(res, 400, 'Parameter redirect_uri does not match registered URI');
    if (q.get('response_type') !== 'code') return oauthErr(res, 400, 'unsupported response_type');
    const state = q.get('state') || '';
    const loc = new URL(ru);
    if (authorize.mode === 'deny') {
      loc.searchParams.set('error', 'access_denied');
      loc.searchParams.set('error_description', 'The user denied you access');
      loc.searchParams.set('state', state);
      bump('authorize_denied');
      return send(res, 302, null, { location: loc.toString() });
    }
    const challenge = q.get('code_challenge');
    const method = q.get('code_challenge_method') || (challenge ? 'plain' : null);
    if (challenge && method !== 'S256' && method !== 'plain') return oauthErr(res, 400, 'invalid code_challenge_method');
    const userId = authorize.userId || [...users.keys()][0];
    const scopes = (q.get('scope') || '').split(/[ +]/).filter(Boolean);
    const code = rnd();
    codes.set(code, { clientId: cid, redirectUri: ru, userId, scopes, challenge, method, used: false, exp: Date.now() + 600000 });
    loc.searchParams.set('code', code);
    loc.searchParams.set('scope', scopes.join(' '));
    loc.searchParams.set('state', state);
    bump('authorize_approved');
    return send(res, 302, null, { location: loc.toString() });
  }

  function tokenBody(t) {
    return { access_token: t.access_token, expires_in: t.expires_in, refresh_token: t.refresh_token, scope: t.scopes, token_type: 'bearer' };
  }

  function handleToken(req, res, url, raw) {
    const p = params(url, raw, req);
    const gt = p.get('grant_type');
    const cid = p.get('client_id');
    if (cid !== clientId) return oauthErr(res, 400, 'invalid client');
    if (p.get('client_secret') !== clientSecret) return oauthErr(res, 403, 'invalid client secret');
    bump(`grant_${gt}`);
    if (gt === 'authorization_code') {
      const c = codes.get(p.get('code') || '');
      if (!c || c.used || c.exp < Date.now() || c.clientId !== cid) return oauthErr(res, 400, 'Invalid authorization code');
      c.used = true; // single use, even when the rest fails
      if (p.get('redirect_uri') !== c.redirectUri) return oauthErr(res, 400, 'Parameter redirect_uri does not match registered URI');
      if (c.challenge) {
        const v = p.get('code_verifier') || '';
        const calc = c.method === 'S256' ? b64url(crypto.createHash('sha256').update(v).digest()) : v;
        if (!v || calc !== c.challenge) return oauthErr(res, 400, 'Invalid code verifier');
      }
      const t = issueToken({ userId: c.userId, scopes: c.scopes });
      return send(res, 200, tokenBody({ ...t, scopes: c.scopes }));
    }
    if (gt === 'refresh_token') {
      const r = refreshes.get(p.get('refresh_token') || '');
      if (failRefresh > 0) {
        failRefresh -= 1;
        if (r) r.valid = false;
        return oauthErr(res, 400, 'Invalid refresh token');
      }
      if (!r || !r.valid || r.clientId !== cid) return oauthErr(res, 400, 'Invalid refresh token');
      if (rotateRefresh) {
        r.valid = false;
        const t = issueToken({ userId: r.userId, scopes: r.scopes });
        return send(res, 200, tokenBody({ ...t, scopes: r.scopes }));
      }
      const t = issueToken({ userId: r.userId, scopes: r.scopes, refresh: false });
      tokens.get(t.access_token).refresh = p.get('refresh_token');
      return send(res, 200, tokenBody({ ...t, refresh_token: p.get('refresh_token'), scopes: r.scopes }));
    }
    if (gt === 'client_credentials') {
      const t = issueToken({ userId: null, scopes: [], ttl: 5011271, refresh: false });
      return send(res, 200, { access_token: t.access_token, expires_in: t.expires_in, token_type: 'bearer' });
    }
    return oauthErr(res, 400, 'Invalid grant_type');
  }

  function handleRevoke(req, res, url, raw) {
    const p = params(url, raw, req);
    if (p.get('client_id') !== clientId) return oauthErr(res, 404, 'client does not exist');
    const tok = p.get('token') || '';
    const t = tokens.get(tok);
    if (t) {
      tokens.delete(tok);
      if (t.refresh && refreshes.has(t.refresh)) refreshes.get(t.refresh).valid = false;
    } else if (refreshes.has(tok)) {
      const r = refreshes.get(tok);
      r.valid = false;
      tokens.delete(r.access);
    } else {
      return oauthErr(res, 400, 'Invalid token');
    }
    bump('revoked');
    return send(res, 200, null);
  }

  function handleValidate(req, res) {
    const a = req.headers.authorization || '';
    const m = a.match(/^(?:OAuth|Bearer)\s+(\S+)$/i);
    if (!m) return oauthErr(res, 401, 'missing authorization token');
    const t = liveToken(m[1]);
    if (!t) return oauthErr(res, 401, 'invalid access token');
    const body = { client_id: t.clientId };
    if (t.userId) { body.login = users.get(t.userId)?.login; }
    body.scopes = t.scopes;
    if (t.userId) body.user_id = t.userId;
    body.expires_in = Math.max(0, Math.floor((t.expiresAt - Date.now()) / 1000));
    return send(res, 200, body);
  }

  // ---------- Helix ----------
  const unauthorized = (message) => ({ error: 'Unauthorized', status: 401, message });
  const helixErr = (status, error, message) => ({ error, status, message });

  function bucketFor(key) {
    const now = Date.now();
    let b = buckets.get(key);
    if (!b) { b = { tokens: rateLimit.limit, at: now }; buckets.set(key, b); }
    const rate = rateLimit.limit / rateLimit.windowMs;
    b.tokens = Math.min(rateLimit.limit, b.tokens + (now - b.at) * rate);
    b.at = now;
    return b;
  }
  function rlHeaders(b) {
    const rate = rateLimit.limit / rateLimit.windowMs;
    const fullIn = (rateLimit.limit - b.tokens) / rate;
    return {
      'ratelimit-limit': String(rateLimit.limit),
      'ratelimit-remaining': String(Math.max(0, Math.floor(b.tokens))),
      'ratelimit-reset': String(Math.ceil((Date.now() + Math.max(fullIn, b.tokens < 1 ? (1 - b.tokens) / rate : 0)) / 1000)),
    };
  }

  function subView(s) {
    const transport = s.transport.method === 'websocket'
      ? { method: 'websocket', session_id: s.transport.session_id, connected_at: s.transport.connected_at }
      : { method: 'webhook', callback: s.transport.callback };
    if (s.transport.disconnected_at) transport.disconnected_at = s.transport.disconnected_at;
    return { id: s.id, status: s.status, type: s.type, version: s.version, condition: s.condition,
      created_at: s.created_at, transport, cost: s.cost };
  }
  function costOf(owner, transportMethod) {
    let total = 0;
    for (const s of subs.values()) {
      if (s.clientId !== owner.clientId) continue;
      if (transportMethod === 'websocket' && s.userId !== owner.userId) continue;
      if (s.status === 'enabled' || s.status === 'webhook_callback_verification_pending') total += s.cost;
    }
    return total;
  }

  async function handleHelix(req, res, url, raw, call) {
    const a = req.headers.authorization || '';
    const cidHdr = req.headers['client-id'];
    let t = null;
    let hdrs = {};
    const m = a.match(/^Bearer\s+(\S+)$/i);
    // rate-limit headers are on every answer; auth failures show the client's bucket without spending it
    const anonHdrs = () => (rateLimit ? rlHeaders(bucketFor(`${cidHdr || ''}:`)) : {});
    if (!m) return send(res, 401, unauthorized('OAuth token is missing'), anonHdrs());
    if (!cidHdr) return send(res, 401, unauthorized('Client ID is missing'), anonHdrs());
    t = liveToken(m[1]);
    if (!t) return send(res, 401, unauthorized('Invalid OAuth token'), anonHdrs());
    if (t.clientId !== cidHdr) return send(res, 401, unauthorized('Client ID and OAuth token do not match'), anonHdrs());
    call.userId = t.userId;
    if (rateLimit) {
      const b = bucketFor(`${t.clientId}:${t.userId || ''}`);
      if (b.tokens < 1) {
        call.fault = 'ratelimit';
        return send(res, 429, helixErr(429, 'Too Many Requests', 'Too Many Requests'), rlHeaders(b));
      }
      b.tokens -= 1;
      hdrs = rlHeaders(b);
    }
    const path = url.pathname.slice('/helix'.length);
    const q = url.searchParams;
    const need = (scope) => {
      if (!enforceScopes || t.scopes.includes(scope)) return false;
      send(res, 401, unauthorized(`Missing scope: ${scope}`), hdrs);
      return true;
    };
    const bad = (msg) => send(res, 400, helixErr(400, 'Bad Request', msg), hdrs);
    const forbidden = (msg) => send(res, 403, helixErr(403, 'Forbidden', msg), hdrs);
    let body = null;
    if (raw) {
      try { body = JSON.parse(raw); } catch { return bad('Malformed request body'); }
    }
    const key = `${req.method} ${path}`;
    bump(key);

    if (key === 'GET /users') {
      const ids = q.getAll('id'); const logins = q.getAll('login').map((l) => l.toLowerCase());
      let list;
      if (!ids.length && !logins.length) {
        if (!t.userId) return bad('The ID or login query parameter is required when using an app access token');
        list = [users.get(t.userId)].filter(Boolean);
      } else {
        list = [...users.values()].filter((u) => ids.includes(u.id) || logins.includes(u.login));
      }
      return send(res, 200, { data: list.map((u) => userView(u, u.id === t.userId && t.scopes.includes('user:read:email'))) }, hdrs);
    }
    if (key === 'GET /streams') {
      const ids = q.getAll('user_id'); const logins = q.getAll('user_login').map((l) => l.toLowerCase());
      const list = [...users.values()].filter((u) => u.stream && ((!ids.length && !logins.length) || ids.includes(u.id) || logins.includes(u.login)));
      return send(res, 200, { data: list.map((u) => ({
        id: u.stream.id, user_id: u.id, user_login: u.login, user_name: u.display_name, game_id: u.channel.game_id,
        game_name: u.channel.game_name, type: 'live', title: u.channel.title, tags: u.channel.tags,
        viewer_count: u.stream.viewer_count, started_at: u.stream.started_at, language: u.channel.broadcaster_language,
        thumbnail_url: `https://static-cdn.jtvnw.net/previews-ttv/live_user_${u.login}-{width}x{height}.jpg`,
        tag_ids: [], is_mature: false })), pagination: {} }, hdrs);
    }
    if (key === 'GET /streams/key') {
      if (need('channel:read:stream_key')) return;
      const bid = q.get('broadcaster_id');
      if (!bid) return bad('Missing required parameter "broadcaster_id"');
      if (bid !== t.userId || !users.has(bid)) return forbidden('The ID in broadcaster_id must match the user ID found in the request\'s OAuth token.');
      return send(res, 200, { data: [{ stream_key: users.get(bid).streamKey }] }, hdrs);
    }
    if (key === 'GET /channels') {
      const list = q.getAll('broadcaster_id').map((id) => users.get(id)).filter(Boolean);
      return send(res, 200, { data: list.map((u) => ({ broadcaster_id: u.id, broadcaster_login: u.login, broadcaster_name: u.display_name,
        broadcaster_language: u.channel.broadcaster_language, game_id: u.channel.game_id, game_name: u.channel.game_name,
        title: u.channel.title, delay: u.channel.delay, tags: u.channel.tags, content_classification_labels: [], is_branded_content: false })) }, hdrs);
    }
    if (key === 'PATCH /channels') {
      if (need('channel:manage:broadcast')) return;
      const bid = q.get('broadcaster_id');
      if (!bid) return bad('Missing required parameter "broadcaster_id"');
      if (bid !== t.userId || !users.has(bid)) return forbidden('The ID in broadcaster_id must match the user ID found in the request\'s OAuth token.');
      const b = body || {};
      const u = users.get(bid);
      if (b.title !== undefined && (typeof b.title !== 'string' || b.title === '')) return bad('The title field may not contain an empty string.');
      if (b.title !== undefined && b.title.length > 140) return bad('The title field may not exceed 140 characters.');
      if (b.game_id !== undefined && !GAMES.some((g) => g.id === String(b.game_id)) && b.game_id !== '0' && b.game_id !== '') return bad('The ID in game_id is not valid.');
      if (b.title !== undefined) u.channel.title = b.title;
      if (b.game_id !== undefined) setGame(u, String(b.game_id));
      if (b.broadcaster_language !== undefined) u.channel.broadcaster_language = b.broadcaster_language;
      if (Array.isArray(b.tags)) u.channel.tags = b.tags;
      call.channelUpdate = { ...b };
      return send(res, 204, null, hdrs);
    }
    if (key === 'GET /search/categories') {
      const query = q.get('query');
      if (!query) return bad('Missing required parameter "query"');
      const first = Math.min(100, Number(q.get('first') || 20));
      const ql = query.toLowerCase();
      const list = GAMES.filter((g) => g.name.toLowerCase().includes(ql)).slice(0, first);
      return send(res, 200, { data: list, pagination: {} }, hdrs);
    }
    if (key === 'POST /chat/messages') {
      if (need('user:write:chat')) return;
      const b = body || {};
      if (!b.broadcaster_id || !b.sender_id || typeof b.message !== 'string') return bad('Missing required parameter');
      if (t.userId && b.sender_id !== t.userId) return forbidden('The sender must match the user ID in the user access token.');
      if (b.message.length > 500) return bad('The message is too long.');
      const rec = { broadcaster_id: b.broadcaster_id, sender_id: b.sender_id, message: b.message,
        reply_parent_message_id: b.reply_parent_message_id ?? null, at: Date.now() };
      chatMessages.push(rec);
      notifyWaiters();
      if (chatDrops.length) {
        const d = chatDrops.shift();
        rec.is_sent = false;
        return send(res, 200, { data: [{ message_id: '', is_sent: false, drop_reason: d }] }, hdrs);
      }
      rec.is_sent = true;
      rec.message_id = crypto.randomUUID();
      if (echoChat) {
        const sender = users.get(b.sender_id);
        const reply = b.reply_parent_message_id ? { parent_message_id: b.reply_parent_message_id, parent_message_body: '',
          parent_user_id: '', parent_user_name: '', parent_user_login: '', thread_message_id: b.reply_parent_message_id,
          thread_user_id: '', thread_user_name: '', thread_user_login: '' } : null;
        setImmediate(() => emit('channel.chat.message', { message_id: rec.message_id, chatter_user_id: b.sender_id,
          chatter_user_login: sender?.login ?? '', chatter_user_name: sender?.display_name ?? '',
          message: { text: b.message, fragments: [{ type: 'text', text: b.message, cheermote: null, emote: null, mention: null }] },
          badges: [{ set_id: 'broadcaster', id: '1', info: '' }], reply }, { broadcasterId: b.broadcaster_id }));
      }
      return send(res, 200, { data: [{ message_id: rec.message_id, is_sent: true, drop_reason: null }] }, hdrs);
    }
    if (key === 'POST /eventsub/subscriptions') return createSub(res, t, body, hdrs, bad);
    if (key === 'GET /eventsub/subscriptions') {
      let list = [...subs.values()].filter((s) => s.clientId === t.clientId && (s.transport.method === 'webhook' ? !t.userId : s.userId === t.userId));
      if (q.get('status')) list = list.filter((s) => s.status === q.get('status'));
      if (q.get('type')) list = list.filter((s) => s.type === q.get('type'));
      if (q.get('subscription_id')) list = list.filter((s) => s.id === q.get('subscription_id'));
      const owner = { clientId: t.clientId, userId: t.userId };
      const ws = !!t.userId;
      return send(res, 200, { data: list.map(subView), total: list.length, total_cost: costOf(owner, ws ? 'websocket' : 'webhook'),
        max_total_cost: ws ? 10 : 10000, pagination: {} }, hdrs);
    }
    if (key === 'DELETE /eventsub/subscriptions') {
      const s = subs.get(q.get('id') || '');
      if (!q.get('id')) return bad('Missing required parameter "id"');
      if (!s || s.clientId !== t.clientId) return send(res, 404, helixErr(404, 'Not Found', 'subscription not found'), hdrs);
      subs.delete(s.id);
      unindexSub(s);
      const sess = s.transport.session_id && sessions.get(s.transport.session_id);
      if (sess) sess.subs.delete(s.id);
      notifyWaiters();
      return send(res, 204, null, hdrs);
    }
    bump('helix_not_found');
    return send(res, 404, helixErr(404, 'Not Found', ''), hdrs);
  }

  function createSub(res, t, b, hdrs, bad) {
    if (!b || typeof b !== 'object') return bad('Malformed request body');
    const def = SUB_TYPES[b.type];
    if (!def || def.version !== String(b.version)) return bad('The combination of values in the type and version fields is not valid');
    const cond = b.condition || {};
    for (const k of def.cond) if (!cond[k]) return bad(`The condition field is missing ${k}`);
    if (def.anyOf && !def.anyOf.some((k) => cond[k])) return bad(`The condition field requires one of ${def.anyOf.join(', ')}`);
    const tr = b.transport || {};
    let transport;
    if (tr.method === 'websocket') {
      if (!t.userId) return bad('invalid transport and auth combination');
      const sess = sessions.get(tr.session_id || '');
      if (!sess || sess.closed) return bad('websocket transport session does not exist or has already disconnected');
      transport = { method: 'websocket', session_id: sess.id, connected_at: sess.connectedAt };
    } else if (tr.method === 'webhook') {
      if (t.userId) return bad('invalid transport and auth combination');
      if (typeof tr.callback !== 'string' || !/^https?:\/\//.test(tr.callback)) return bad('The callback field is not valid');
      if (typeof tr.secret !== 'string' || tr.secret.length < 10 || tr.secret.length > 100) return bad('The secret field must be between 10 and 100 characters');
      transport = { method: 'webhook', callback: tr.callback, secret: tr.secret };
    } else {
      return bad('The transport method is not valid');
    }
    if (enforceScopes && def.scope && t.userId && !t.scopes.includes(def.scope)) {
      return send(res, 403, helixErr(403, 'Forbidden', 'subscription missing proper authorization'), hdrs);
    }
    const condJson = JSON.stringify(Object.keys(cond).sort().map((k) => [k, String(cond[k])]));
    for (const s of subs.values()) {
      if (s.type !== b.type || s.version !== def.version || s.condJson !== condJson) continue;
      if (!(s.status === 'enabled' || s.status === 'webhook_callback_verification_pending')) continue;
      const same = transport.method === 'websocket' ? s.transport.session_id === transport.session_id : s.transport.callback === transport.callback;
      if (same) return send(res, 409, helixErr(409, 'Conflict', 'subscription already exists'), hdrs);
    }
    const owner = { clientId: t.clientId, userId: t.userId };
    const bcast = cond.broadcaster_user_id || cond.to_broadcaster_user_id || cond.from_broadcaster_user_id;
    const cost = transport.method === 'websocket' ? (bcast === t.userId ? 0 : 1) : (bcast && tokenUserAuthorized(bcast) ? 0 : 1);
    const max = transport.method === 'websocket' ? 10 : 10000;
    if (costOf(owner, transport.method) + cost > max) return send(res, 429, helixErr(429, 'Too Many Requests', 'max total cost exceeded'), hdrs);
    const s = { id: crypto.randomUUID(), status: transport.method === 'websocket' ? 'enabled' : 'webhook_callback_verification_pending',
      type: b.type, version: def.version, condition: Object.fromEntries(Object.entries(cond).map(([k, v]) => [k, String(v)])), condJson,
      created_at: nowNano(), transport, cost, clientId: t.clientId, userId: t.userId };
    subs.set(s.id, s);
    indexSub(s);
    if (transport.method === 'websocket') {
      const sess = sessions.get(transport.session_id);
      sess.subs.add(s.id);
      if (sess.unusedTimer) { clearTimeout(sess.unusedTimer); sess.unusedTimer = null; }
    } else {
      track(verifyWebhook(s));
    }
    bump('subscriptions_created');
    notifyWaiters();
    const mine = [...subs.values()].filter((x) => x.clientId === t.clientId && (x.transport.method === 'webhook' ? !t.userId : x.userId === t.userId));
    return send(res, 202, { data: [subView(s)], total: mine.length,
      total_cost: costOf(owner, transport.method), max_total_cost: max }, hdrs);
  }
  function tokenUserAuthorized(uid) {
    for (const t of tokens.values()) if (t.userId === uid && t.clientId === clientId) return true;
    return false;
  }

  // ---------- webhook transport ----------
  function track(p) {
    inflight.add(p);
    p.finally(() => { inflight.delete(p); notifyWaiters(); });
    return p;
  }
  async function postWebhook(s, type, id, bodyObj, retry = 0) {
    const body = JSON.stringify(bodyObj);
    const ts = nowNano();
    const sig = 'sha256=' + crypto.createHmac('sha256', s.transport.secret).update(id + ts + body).digest('hex');
    const headers = {
      'content-type': 'application/json',
      'twitch-eventsub-message-id': id,
      'twitch-eventsub-message-retry': String(retry),
      'twitch-eventsub-message-type': type,
      'twitch-eventsub-message-signature': sig,
      'twitch-eventsub-message-timestamp': ts,
      'twitch-eventsub-subscription-type': s.type,
      'twitch-eventsub-subscription-version': s.version,
    };
    const rec = { subscription_id: s.id, type, message_id: id, retry, timestamp: ts, body, signature: sig, status: 0, response: null };
    webhookDeliveries.push(rec);
    bump(`webhook_${type}`);
    try {
      const r = await fetch(s.transport.callback, { method: 'POST', headers, body, signal: AbortSignal.any([stopAc.signal, AbortSignal.timeout(10000)]) });
      rec.status = r.status;
      rec.response = await r.text();
      rec.responseType = r.headers.get('content-type');
    } catch (e) {
      rec.status = -1;
      rec.response = String(e);
    }
    notifyWaiters();
    return rec;
  }
  async function verifyWebhook(s) {
    const challenge = `${rnd()}-${rnd(6)}`;
    const rec = await postWebhook(s, 'webhook_callback_verification', crypto.randomUUID(), { challenge, subscription: subView(s) });
    if (!subs.has(s.id)) return;
    s.status = rec.status >= 200 && rec.status < 300 && rec.response === challenge ? 'enabled' : 'webhook_callback_verification_failed';
    notifyWaiters();
  }
  async function deliverWebhook(s, id, bodyObj) {
    for (let i = 0; i <= webhookRetries; i++) {
      const rec = await postWebhook(s, 'notification', id, bodyObj, i);
      if (rec.status >= 200 && rec.status < 300) return;
      if (stopped) return;
    }
  }

  // ---------- EventSub WebSocket ----------
  const wss = new WebSocketServer({ noServer: true });
  function frame(type, payload, sub) {
    const metadata = { message_id: crypto.randomUUID(), message_type: type, message_timestamp: nowNano() };
    if (sub) { metadata.subscription_type = sub.type; metadata.subscription_version = sub.version; }
    return { metadata, payload };
  }
  function wsSend(sess, obj, conn = sess.conn) {
    if (!conn || conn.readyState !== 1) return false;
    conn.send(JSON.stringify(obj));
    sess.lastSent = Date.now();
    armKeepalive(sess);
    return true;
  }
  function armKeepalive(sess) {
    clearTimeout(sess.kaTimer);
    if (sess.closed) return;
    // sent a little before the timeout, as Twitch does
    sess.kaTimer = setTimeout(() => {
      if (sess.closed) return;
      if (sess.silent) { armKeepalive(sess); return; }
      bump('keepalives');
      wsSend(sess, frame('session_keepalive', {}));
    }, Math.max(20, sess.keepalive * 1000 * 0.8));
  }
  function sessionPayload(sess, status, reconnectUrl = null) {
    return { session: { id: sess.id, status, connected_at: sess.connectedAt,
      keepalive_timeout_seconds: status === 'reconnecting' ? null : sess.keepalive, reconnect_url: reconnectUrl, recovery_url: null } };
  }
  function disableSubs(sess, code) {
    const st = CLOSE_STATUS[code] || 'websocket_disconnected';
    for (const id of sess.subs) {
      const s = subs.get(id);
      if (s && s.status === 'enabled') { s.status = st; s.transport.disconnected_at = nowNano(); }
    }
  }
  function endSession(sess, code) {
    if (sess.closed) return;
    sess.closed = true;
    sess.closeCode = code;
    clearTimeout(sess.kaTimer); clearTimeout(sess.unusedTimer); clearTimeout(sess.graceTimer);
    if (code !== 4004) disableSubs(sess, code);
    notifyWaiters();
  }
  function onConnection(conn, req) {
    const url = new URL(req.url, 'http://x');
    bump('ws_connections');
    sockets.add(conn);
    const ticket = url.searchParams.get('reconnect');
    let sess;
    if (ticket !== null) {
      const sid = reconnectTickets.get(ticket);
      reconnectTickets.delete(ticket);
      sess = sid && sessions.get(sid);
      if (!sess || sess.closed || sess.status !== 'reconnecting') {
        conn.close(4007, CLOSE_REASON[4007]);
        return;
      }
      clearTimeout(sess.graceTimer);
      sess.oldConns.add(sess.conn);
      sess.conn = conn;
      sess.status = 'connected';
      bump('ws_reconnects');
    } else {
      let ka = keepaliveSeconds;
      const qk = url.searchParams.get('keepalive_timeout_seconds');
      if (qk !== null && Number.isFinite(Number(qk))) ka = Math.min(600, Math.max(10, Math.floor(Number(qk))));
      sess = { id: 'AQoQ' + crypto.randomBytes(18).toString('base64url').replace(/[-_]/g, 'A'), conn, oldConns: new Set(), status: 'connected',
        connectedAt: nowNano(), keepalive: ka, subs: new Set(), silent: false, closed: false, lastSent: 0 };
      sessions.set(sess.id, sess);
      if (unusedTimeoutMs > 0) {
        sess.unusedTimer = setTimeout(() => {
          if (sess.subs.size === 0 && !sess.closed) closeSession(sess.id, 4003);
        }, unusedTimeoutMs);
      }
    }
    const s = sess;
    conn.on('message', () => {
      // clients must not send data frames
      if (s.conn === conn) closeSession(s.id, 4001);
      else conn.close(4001, CLOSE_REASON[4001]);
    });
    conn.on('close', (code) => {
      sockets.delete(conn);
      if (s.conn === conn) endSession(s, typeof code === 'number' && code >= 4000 ? code : 1000);
      else s.oldConns.delete(conn);
      notifyWaiters();
    });
    conn.on('error', () => {});
    wsSend(s, frame('session_welcome', sessionPayload(s, 'connected')));
    s.welcomes = (s.welcomes || 0) + 1;
    notifyWaiters();
  }
  function pickSession(id) {
    if (id) {
      const s = sessions.get(id);
      if (!s) throw new Error(`fake twitch: no session ${id}`);
      return s;
    }
    const live = [...sessions.values()].filter((s) => !s.closed);
    if (!live.length) throw new Error('fake twitch: no live session');
    return live[live.length - 1];
  }
  function closeSession(id, code = 4000) {
    const s = pickSession(id);
    const conn = s.conn;
    endSession(s, code);
    if (conn && conn.readyState <= 1) conn.close(code, CLOSE_REASON[code] || '');
  }
  function dropSocket(id) {
    const s = pickSession(id);
    const conn = s.conn;
    endSession(s, 4006);
    if (conn) conn.terminate();
  }
  function sendReconnect(id) {
    const s = pickSession(id);
    const ticket = crypto.randomUUID();
    reconnectTickets.set(ticket, s.id);
    const rurl = `ws://127.0.0.1:${port}/ws?reconnect=${ticket}&id=${encodeURIComponent(s.id)}`;
    s.status = 'reconnecting';
    wsSend(s, frame('session_reconnect', sessionPayload(s, 'reconnecting', rurl)));
    const old = s.conn;
    s.graceTimer = setTimeout(() => {
      if (s.conn === old && s.status === 'reconnecting' && !s.closed) {
        reconnectTickets.delete(ticket);
        endSession(s, 4004);
        old.close(4004, CLOSE_REASON[4004]);
      }
    }, reconnectGraceMs);
    bump('ws_reconnect_sent');
    return rurl;
  }

  // ---------- events ----------
  function defaultEvent(type, cond) {
    const bid = cond.broadcaster_user_id || cond.to_broadcaster_user_id || [...users.keys()][0];
    const bu = users.get(bid) || { id: bid, login: `user${bid}`, display_name: `user${bid}` };
    const bc = { broadcaster_user_id: bu.id, broadcaster_user_login: bu.login, broadcaster_user_name: bu.display_name };
    const viewer = { user_id: '1337', user_login: 'awesome_user', user_name: 'Awesome_User' };
    switch (type) {
      case 'channel.chat.message':
        return { ...bc, chatter_user_id: '4145994', chatter_user_login: 'viewer32', chatter_user_name: 'Viewer32',
          message_id: crypto.randomUUID(),
          message: { text: 'Hi chat Kappa @streamer', fragments: [
            { type: 'text', text: 'Hi chat ', cheermote: null, emote: null, mention: null },
            { type: 'emote', text: 'Kappa', cheermote: null, emote: { id: '25', emote_set_id: '0', owner_id: '0', format: ['static'] }, mention: null },
            { type: 'text', text: ' ', cheermote: null, emote: null, mention: null },
            { type: 'mention', text: `@${bu.login}`, cheermote: null, emote: null, mention: { user_id: bu.id, user_name: bu.display_name, user_login: bu.login } },
          ] },
          color: '#00FF7F',
          badges: [{ set_id: 'moderator', id: '1', info: '' }, { set_id: 'subscriber', id: '12', info: '16' }, { set_id: 'sub-gifter', id: '1', info: '' }],
          message_type: 'text', cheer: null, reply: null, channel_points_custom_reward_id: null,
          source_broadcaster_user_id: null, source_broadcaster_user_login: null, source_broadcaster_user_name: null,
          source_message_id: null, source_badges: null };
      case 'channel.follow':
        return { ...viewer, ...bc, followed_at: nowNano() };
      case 'channel.subscribe':
        return { ...viewer, ...bc, tier: '1000', is_gift: false };
      case 'channel.subscription.gift':
        return { ...viewer, ...bc, total: 5, tier: '1000', cumulative_total: 12, is_anonymous: false };
      case 'channel.subscription.message':
        return { ...viewer, ...bc, tier: '1000', message: { text: 'Love the stream! Kappa', emotes: [{ begin: 17, end: 21, id: '25' }] },
          cumulative_months: 15, streak_months: 3, duration_months: 1 };
      case 'channel.cheer':
        return { is_anonymous: false, ...viewer, ...bc, message: 'cheer1000 pogchamp', bits: 1000 };
      case 'channel.raid':
        return { from_broadcaster_user_id: '1234', from_broadcaster_user_login: 'cool_user', from_broadcaster_user_name: 'Cool_User',
          to_broadcaster_user_id: bu.id, to_broadcaster_user_login: bu.login, to_broadcaster_user_name: bu.display_name, viewers: 9001 };
      case 'stream.online':
        return { id: String(40000000000 + Math.floor(Math.random() * 1e9)), ...bc, type: 'live', started_at: nowNano() };
      case 'stream.offline':
        return { ...bc };
      default:
        return { ...bc };
    }
  }
  function condMatches(s, broadcasterId) {
    if (!broadcasterId) return true;
    const c = s.condition;
    return (c.broadcaster_user_id || c.to_broadcaster_user_id || c.from_broadcaster_user_id) === String(broadcasterId);
  }
  function emit(type, overrides = {}, o = {}) {
    const ids = [];
    for (const s of subsByType.get(type) || []) {
      if (s.status !== 'enabled' || !condMatches(s, o.broadcasterId)) continue;
      const ev = { ...defaultEvent(type, s.condition), ...overrides };
      if (type === 'channel.chat.message' && overrides.reply === true) {
        ev.reply = { parent_message_id: crypto.randomUUID(), parent_message_body: 'first message', parent_user_id: '1337',
          parent_user_name: 'Awesome_User', parent_user_login: 'awesome_user', thread_message_id: crypto.randomUUID(),
          thread_user_id: '1337', thread_user_name: 'Awesome_User', thread_user_login: 'awesome_user' };
      }
      let copies = 1 + (o.duplicates || 0);
      if (dupNext > 0) { dupNext -= 1; copies += 1; }
      const f = frame('notification', { subscription: subView(s), event: ev }, s);
      ids.push(f.metadata.message_id);
      bump(`notify_${type}`);
      if (s.transport.method === 'websocket') {
        const sess = sessions.get(s.transport.session_id);
        if (!sess || sess.closed) continue;
        for (let i = 0; i < copies; i++) wsSend(sess, f);
      } else {
        const body = { subscription: subView(s), event: ev };
        for (let i = 0; i < copies; i++) {
          if (reorder) heldWebhooks.push([s, f.metadata.message_id, body]);
          else track(deliverWebhook(s, f.metadata.message_id, body));
        }
      }
    }
    return ids;
  }
  function revoke(subId, status = 'authorization_revoked') {
    const s = subs.get(subId);
    if (!s) throw new Error(`fake twitch: no subscription ${subId}`);
    s.status = status;
    const f = frame('revocation', { subscription: subView(s) }, s);
    if (s.transport.method === 'websocket') {
      const sess = sessions.get(s.transport.session_id);
      if (sess && !sess.closed) wsSend(sess, f);
      if (sess) sess.subs.delete(s.id);
    } else {
      track(postWebhook(s, 'revocation', f.metadata.message_id, { subscription: subView(s) }));
    }
    bump('revocations');
    notifyWaiters();
    return f.metadata.message_id;
  }
  async function releaseWebhooks() {
    const items = heldWebhooks.splice(0).reverse();
    for (const [s, id, body] of items) await deliverWebhook(s, id, body);
  }
  async function flushWebhooks() {
    while (inflight.size) await Promise.allSettled([...inflight]);
  }

  // ---------- dispatch ----------
  const control = {
    addUser, setLive, setOffline, setViewers, issueToken, expireToken, injectFault, emit, revoke, sendReconnect,
    closeSession, dropSocket, releaseWebhooks, flushWebhooks,
    setAuthorize: (mode, userId) => { authorize = { mode, userId: userId ? String(userId) : null }; },
    failNextRefresh: (n = 1) => { failRefresh = n; },
    setRotateRefresh: (v) => { rotateRefresh = !!v; },
    setDelay: (ms) => { delayMs = ms; },
    setRateLimit: (rl) => { rateLimit = rl ? { limit: 800, windowMs: 60000, ...rl } : null; buckets.clear(); },
    dropNextChat: (n = 1, reason = { code: 'msg_rejected', message: 'Your message is being checked by mods and has not been sent.' }) => {
      for (let i = 0; i < n; i++) chatDrops.push(reason);
    },
    setSilent: (id, v = true) => { pickSession(id).silent = !!v; },
    duplicateNext: (n = 1) => { dupNext = n; },
    setWebhookReorder: (v) => { reorder = !!v; },
    setKeepalive: (sec) => { keepaliveSeconds = sec; },
    setUnusedTimeout: (ms) => { unusedTimeoutMs = ms; },
    setReconnectGrace: (ms) => { reconnectGraceMs = ms; },
    sessions: () => [...sessions.values()].map((s) => ({ id: s.id, status: s.closed ? 'closed' : s.status, closeCode: s.closeCode ?? null,
      keepalive_timeout_seconds: s.keepalive, subscriptions: [...s.subs], silent: s.silent, welcomes: s.welcomes || 0 })),
    subscriptions: () => [...subs.values()].map((s) => ({ ...subView(s), user_id: s.userId })),
    counters: () => ({ ...counters }),
    resetCalls: () => { calls.length = 0; },
    reset: () => {
      calls.length = 0; faults.length = 0; chatMessages.length = 0; webhookDeliveries.length = 0; heldWebhooks.length = 0;
      for (const k of Object.keys(counters)) delete counters[k];
      chatDrops = []; failRefresh = 0; delayMs = 0; dupNext = 0; buckets.clear();
    },
  };

  async function handleControl(req, res, path, raw) {
    const name = path.slice('/_control/'.length);
    if (req.method === 'GET' && name === 'calls') return send(res, 200, calls);
    if (req.method === 'GET' && name === 'counters') return send(res, 200, counters);
    if (req.method === 'GET' && name === 'sessions') return send(res, 200, control.sessions());
    if (req.method === 'GET' && name === 'subscriptions') return send(res, 200, control.subscriptions());
    if (req.method === 'GET' && name === 'chat') return send(res, 200, chatMessages);
    if (req.method === 'GET' && name === 'webhooks') return send(res, 200, webhookDeliveries);
    if (req.method === 'GET' && name === 'users') return send(res, 200, [...users.values()].map((u) => ({ ...userView(u, true), channel: u.channel, stream: u.stream })));
    if (req.method !== 'POST' || !Object.hasOwn(control, name)) return send(res, 404, { error: 'unknown control' });
    let args = [];
    if (raw) {
      try { args = JSON.parse(raw).args || []; } catch { return send(res, 400, { error: 'bad json' }); }
    }
    const out = await control[name](...args);
    return send(res, 200, { result: out ?? null });
  }

  const handler = async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const path = url.pathname;
    let raw = '';
    try { raw = await readBody(req); } catch { return; }
    if (path.startsWith('/_control/')) {
      try { return await handleControl(req, res, path, raw); } catch (e) { return send(res, 500, { error: String(e.message || e) }); }
    }
    const call = { method: req.method, path, query: Object.fromEntries(url.searchParams), headers: { ...req.headers },
      body: raw || null, status: 0, at: Date.now() };
    calls.push(call);
    res.on('finish', () => { call.status = res.statusCode; notifyWaiters(); });
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    const f = takeFault(faults, req.method, path);
    if (f) {
      call.fault = f.kind;
      if (f.kind === '5xx') {
        const st = f.status;
        const names = { 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };
        return send(res, st, { error: names[st] || 'Internal Server Error', status: st, message: '' });
      }
      if (f.kind === '429') {
        const reset = Math.ceil(Date.now() / 1000) + f.resetSec;
        return send(res, 429, helixErr(429, 'Too Many Requests', 'Too Many Requests'),
          { 'ratelimit-limit': String(rateLimit?.limit ?? 800), 'ratelimit-remaining': '0', 'ratelimit-reset': String(reset) });
      }
      if (f.kind === 'drop') { req.socket.destroy(); return; }
      if (f.kind === 'delay') await new Promise((r) => setTimeout(r, f.ms));
    }
    try {
      if (req.method === 'GET' && path === '/oauth2/authorize') return handleAuthorize(req, res, url);
      if (req.method === 'POST' && path === '/oauth2/token') return handleToken(req, res, url, raw);
      if (req.method === 'POST' && path === '/oauth2/revoke') return handleRevoke(req, res, url, raw);
      if (req.method === 'GET' && path === '/oauth2/validate') return handleValidate(req, res);
      if (path.startsWith('/helix/')) return await handleHelix(req, res, url, raw, call);
      return send(res, 404, { error: 'Not Found', status: 404, message: '' });
    } catch (e) {
      return send(res, 500, { error: 'Internal Server Error', status: 500, message: 'fake: ' + e.message });
    }
  };

  const server = http.createServer(handler);
  const tcp = new Set();
  server.on('connection', (s) => { tcp.add(s); s.on('close', () => tcp.delete(s)); });
  server.on('upgrade', (req, socket, head) => {
    const p = new URL(req.url, 'http://x').pathname;
    if (p !== '/ws') { socket.destroy(); return; }
    wss.handleUpgrade(req, socket, head, (conn) => onConnection(conn, req));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port || 0, '127.0.0.1', resolve);
  });
  const port = server.address().port;
  const base = `http://127.0.0.1:${port}`;

  return {
    port, url: base, authUrl: `${base}/oauth2`, apiUrl: `${base}/helix`, wsUrl: `ws://127.0.0.1:${port}/ws`,
    controlUrl: `${base}/_control`, clientId, clientSecret,
    calls, chatMessages, webhookDeliveries,
    ...control,
    user: (id) => { const u = getUser(id); return { ...userView(u, true), channel: { ...u.channel }, stream: u.stream && { ...u.stream }, streamKey: u.streamKey }; },
    waitFor,
    waitForSession: (pred = () => true, ms) => waitFor(() => control.sessions().find((s) => s.status !== 'closed' && pred(s)), ms),
    waitForSubscription: (pred = () => true, ms) => waitFor(() => control.subscriptions().find(pred), ms),
    stop: async () => {
      stopped = true;
      stopAc.abort();
      for (const s of sessions.values()) { clearTimeout(s.kaTimer); clearTimeout(s.unusedTimer); clearTimeout(s.graceTimer); s.closed = true; }
      for (const c of sockets) c.terminate();
      wss.close();
      await Promise.allSettled([...inflight]);
      for (const s of tcp) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function argVal(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const tw = await startFakeTwitch({
    port: Number(argVal('--port') || 0),
    clientId: argVal('--client-id'),
    clientSecret: argVal('--client-secret'),
  });
  process.stdout.write(`FAKE_TWITCH_LISTENING port=${tw.port} url=${tw.url}\n`);
  const stop = async () => { await tw.stop(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
