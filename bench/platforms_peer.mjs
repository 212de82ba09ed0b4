// bench/platforms_peer: the Node `ws` relay bench/platforms.mjs measures Streampai against.
// One process doing the same socket work as Streampai's Twitch monitors + chat fan-out:
//   - a dashboard WebSocket server: each client sends {"type":"subscribe","topic":"chat:<id>"}
//     (answered {"topic":...,"event":"subscribed","payload":{},"seq":null}), as on /socket;
//   - on "start" (a line on stdin), one EventSub WebSocket client per user to the fake Twitch;
//     on session_welcome it creates the same ten subscriptions Streampai creates
//     (POST /helix/eventsub/subscriptions, Bearer + Client-Id, keep-alive HTTP agent);
//   - a keepalive watchdog (one 1 s interval over all sessions: silence past
//     keepalive_timeout_seconds + 5 s reconnects), session_reconnect followed (old socket
//     kept until the new welcome), message ids de-duplicated (bounded set);
//   - each channel.chat.message notification is mapped to the normalised chat JSON (the shape
//     Streampai publishes, docs/platforms.md) and sent as
//     {"topic":"chat:<id>","event":"message","payload":{...},"seq":n} to the user's socket.
// It does not persist anything (Streampai writes each message to `events` before publishing).
//
// Usage: node bench/platforms_peer.mjs <config.json>
//   config: {wsUrl, apiUrl, clientId, users:[{id, twitchId, token}]}
//   stdout: "ready port=<P>", after "start": "up <n>" once every user has its subscriptions
//   (sessions are opened 50 at a time), "failed user <id>: ..." when one was refused 5 times. SIGTERM: closes everything, exit 0.
import fs from 'node:fs';
import http from 'node:http';
import readline from 'node:readline';
import { WebSocketServer, WebSocket } from 'ws';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const api = new URL(cfg.apiUrl);
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
const EMOTE = (id) => `https://static-cdn.jtvnw.net/emoticons/v2/${id}/default/dark/1.0`;
const SUBS = (tid) => [
  ['channel.chat.message', '1', { broadcaster_user_id: tid, user_id: tid }],
  ['channel.chat.message_delete', '1', { broadcaster_user_id: tid, user_id: tid }],
  ['channel.follow', '2', { broadcaster_user_id: tid, moderator_user_id: tid }],
  ['channel.subscribe', '1', { broadcaster_user_id: tid }],
  ['channel.subscription.gift', '1', { broadcaster_user_id: tid }],
  ['channel.subscription.message', '1', { broadcaster_user_id: tid }],
  ['channel.cheer', '1', { broadcaster_user_id: tid }],
  ['channel.raid', '1', { to_broadcaster_user_id: tid }],
  ['stream.online', '1', { broadcaster_user_id: tid }],
  ['stream.offline', '1', { broadcaster_user_id: tid }],
];

// ---- dashboard side ------------------------------------------------------------------------
const dash = new Map(); // topic -> Set of sockets
const seqs = new Map(); // topic -> seq
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 });
wss.on('connection', (ws) => {
  const mine = new Set();
  ws.on('message', (d) => {
    let m;
    try { m = JSON.parse(d.toString()); } catch { ws.close(1007); return; }
    if (m && m.type === 'subscribe' && typeof m.topic === 'string' && m.topic.startsWith('chat:') && m.topic.length < 80) {
      if (!dash.has(m.topic)) dash.set(m.topic, new Set());
      dash.get(m.topic).add(ws);
      mine.add(m.topic);
      ws.send(JSON.stringify({ topic: m.topic, event: 'subscribed', payload: { seq: seqs.get(m.topic) || 0 }, seq: null }));
    }
  });
  ws.on('close', () => { for (const t of mine) dash.get(t)?.delete(ws); });
  ws.on('error', () => {});
});
function publish(topic, event, payload) {
  const seq = (seqs.get(topic) || 0) + 1;
  seqs.set(topic, seq);
  const set = dash.get(topic);
  if (!set || !set.size) return;
  const raw = JSON.stringify({ topic, event, payload, seq });
  for (const ws of set) ws.send(raw);
}

// ---- mapping (channel.chat.message -> normalised chat message) -----------------------------
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const str = (v, cap) => (typeof v === 'string' && Buffer.byteLength(v) <= cap ? v : null);
function mapChat(meta, ev) {
  if (!ev || typeof ev !== 'object') return null;
  const id = ev.message_id;
  if (typeof id !== 'string' || !ID_RE.test(id)) return null;
  const msg = ev.message;
  const text = msg && str(msg.text, 8192);
  const aid = str(ev.chatter_user_id, 128);
  const login = str(ev.chatter_user_login, 128);
  const name = str(ev.chatter_user_name, 256);
  if (text === null || aid === null || login === null || name === null) return null;
  const ts = Date.parse(meta.message_timestamp);
  if (!Number.isFinite(ts)) return null;
  const badges = [];
  for (const b of Array.isArray(ev.badges) ? ev.badges : []) {
    if (badges.length >= 16) break;
    if (b && typeof b.set_id === 'string' && typeof b.id === 'string') badges.push({ set_id: b.set_id, id: b.id });
  }
  const fragments = [];
  const frs = Array.isArray(msg.fragments) ? msg.fragments : [];
  if (frs.length > 256) return null;
  for (const f of frs) {
    if (!f || typeof f.text !== 'string') return null;
    if (f.type === 'emote' && f.emote && typeof f.emote.id === 'string') fragments.push({ type: 'emote', text: f.text, emote_url: EMOTE(f.emote.id) });
    else if (f.type === 'mention') fragments.push({ type: 'mention', text: f.text });
    else fragments.push({ type: 'text', text: f.text });
  }
  if (!fragments.length) fragments.push({ type: 'text', text });
  const out = { id, platform: 'twitch',
    author: { id: aid, name: login, display_name: name || login,
      color: typeof ev.color === 'string' && /^#[0-9A-Fa-f]{6}$/.test(ev.color) ? ev.color : '', badges },
    text, fragments };
  if (ev.reply && typeof ev.reply.parent_message_id === 'string') out.reply_to = ev.reply.parent_message_id;
  out.ts = ts;
  return out;
}

// ---- EventSub side -------------------------------------------------------------------------
const seen = new Set(); // notification ids, bounded (oldest dropped)
const SEEN_CAP = 20000;
function firstTime(id) {
  if (seen.has(id)) return false;
  seen.add(id);
  if (seen.size > SEEN_CAP) seen.delete(seen.values().next().value);
  return true;
}
function helix(method, p, token, body) {
  return new Promise((resolve) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers = { authorization: `Bearer ${token}`, 'client-id': cfg.clientId };
    if (data !== undefined) { headers['content-type'] = 'application/json'; headers['content-length'] = Buffer.byteLength(data); }
    const r = http.request({ host: api.hostname, port: api.port, method, path: `${api.pathname}${p}`, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    r.on('error', () => resolve(0));
    r.end(data);
  });
}

const sessions = []; // one per user
const CONNECTING = 50; // sessions subscribing at once (Twitch closes a session unused for 10 s)
let upCount = 0;
let reported = false;
let stopping = false;
const queue = [];
let inFlight = 0;
function pump() {
  while (inFlight < CONNECTING && queue.length) { inFlight++; connect(queue.shift(), cfg.wsUrl); }
}
function setUp(s, up) {
  if (s.up === up) return;
  s.up = up;
  upCount += up ? 1 : -1;
  if (!reported && upCount === cfg.users.length) { reported = true; process.stdout.write(`up ${upCount}\n`); }
}
function subscribed(s, ws, ok) {
  if (s.starting) { s.starting = false; inFlight--; pump(); }
  if (ws !== s.ws) return; // that session is gone already (and is being replaced)
  if (ok) { setUp(s, true); return; }
  if (++s.failures >= 5) { process.stdout.write(`failed user ${s.id}: subscriptions refused 5 times\n`); return; }
  ws.terminate(); // a new session, subscribed again
}
function connect(s, url) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const prev = s.ws;
  s.pending = ws;
  ws.on('message', (d) => {
    s.last = Date.now();
    let m;
    try { m = JSON.parse(d.toString()); } catch { ws.terminate(); return; }
    const meta = m && m.metadata;
    const type = meta && meta.message_type;
    if (type === 'session_welcome') {
      s.ws = ws;
      s.pending = null;
      s.ka = (m.payload.session.keepalive_timeout_seconds || 10) * 1000;
      if (prev && prev !== ws) prev.close(1000); // after a reconnect: the old one goes now
      if (!s.subscribed) {
        s.subscribed = true;
        const sid = m.payload.session.id;
        Promise.all(SUBS(s.twitchId).map(([type, version, condition]) => helix('POST', '/eventsub/subscriptions', s.token,
          { type, version, condition, transport: { method: 'websocket', session_id: sid } })))
          .then((sts) => subscribed(s, ws, sts.every((x) => x === 202)));
      }
    } else if (type === 'notification') {
      if (!firstTime(meta.message_id)) return;
      if (meta.subscription_type !== 'channel.chat.message') return;
      const c = mapChat(meta, m.payload && m.payload.event);
      if (c) publish(`chat:${s.id}`, 'message', c);
    } else if (type === 'session_reconnect') {
      connect(s, m.payload.session.reconnect_url);
    }
  });
  ws.on('close', () => {
    if (stopping) return;
    const retry = () => setTimeout(() => connect(s, cfg.wsUrl), 1000 + Math.random() * 1000);
    if (s.ws === ws) {
      s.ws = null;
      s.subscribed = false;
      setUp(s, false);
      if (!s.pending) retry();
    } else if (s.pending === ws) { // never welcomed
      s.pending = null;
      if (!s.ws) retry();
    }
  });
  ws.on('error', () => {});
}
setInterval(() => {
  const now = Date.now();
  for (const s of sessions) {
    if (s.ws && s.ka && now - s.last > s.ka + 5000) { s.ws.terminate(); }
  }
}, 1000).unref();

function start() {
  for (const u of cfg.users) {
    const s = { id: u.id, twitchId: u.twitchId, token: u.token, ws: null, pending: null, last: Date.now(), ka: 0,
      subscribed: false, up: false, starting: true, failures: 0 };
    sessions.push(s);
    queue.push(s);
  }
  pump();
}

wss.on('listening', () => process.stdout.write(`ready port=${wss.address().port}\n`));
readline.createInterface({ input: process.stdin }).on('line', (l) => { if (l.trim() === 'start') start(); });
process.on('SIGTERM', () => {
  stopping = true;
  for (const s of sessions) { s.ws?.terminate(); s.pending?.terminate(); }
  for (const c of wss.clients) c.terminate();
  agent.destroy();
  wss.close(() => process.exit(0));
});
