// widgets/common.js: what the OBS widget pages (alertbox, chat) share: the token from the URL,
// the config fetch, the widget socket (subscribe, reconnect with backoff, resume by seq), the
// client-side template renderer and the word/link filter. Everything from the server or a
// viewer is inserted as text (textContent), never as HTML. docs/widgets.md is the contract.

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export const ALERT_TYPES = ['follow', 'subscription', 'gift_subscription', 'cheer', 'raid',
  'super_chat', 'member', 'donation'];
export const PLATFORMS = ['twitch', 'youtube', 'kick', 'facebook'];

// The widget token from the page URL (?token=...), or null.
export function urlToken() {
  const t = new URLSearchParams(location.search).get('token');
  return t && /^[A-Za-z0-9_-]{16,128}$/.test(t) ? t : null;
}

// True when the page runs as the dashboard's live preview (an iframe of the same origin with
// ?preview=1): it then also takes configs and fake frames from its parent (postMessage).
export function isPreview() {
  return new URLSearchParams(location.search).get('preview') === '1' && window.parent !== window;
}

// Only a same-origin path (an upload URL such as /uploads/...) may be loaded by a widget.
export function localUrl(u) {
  return typeof u === 'string' && u.length > 1 && u.length <= 256 && u[0] === '/' && u[1] !== '/' &&
    !u.includes('\\') ? u : '';
}

export const COLOR_RE = /^#[0-9a-fA-F]{6}$/;
export const FONT_RE = /^[A-Za-z0-9 ,_'-]{1,64}$/;
export const safeColor = (c, d) => (typeof c === 'string' && COLOR_RE.test(c) ? c : d);
export const safeFont = (f) => (typeof f === 'string' && FONT_RE.test(f) ? f : 'sans-serif');
export const clampInt = (v, lo, hi, d) => (Number.isInteger(v) ? Math.min(hi, Math.max(lo, v)) : d);

// ---- template renderer (the same rules as sp_alert_template, docs/alerts.md) ----------------

const VARS = new Set(['name', 'amount', 'currency', 'count', 'tier', 'message', 'platform', 'type']);

function fmtAmount(a) {
  if (typeof a !== 'number' || !Number.isFinite(a)) return '';
  return Number.isInteger(a) ? String(a) : a.toFixed(2);
}

// The value of one template variable for an alert ('' when absent).
export function alertVar(name, alert, count) {
  switch (name) {
    case 'amount': return fmtAmount(alert.amount);
    case 'count': {
      const c = count === undefined ? alert.count : count;
      return typeof c === 'number' && Number.isFinite(c) ? String(c) : '';
    }
    case 'tier': return typeof alert.tier === 'number' ? String(alert.tier) : '';
    default: return typeof alert[name] === 'string' ? alert[name] : '';
  }
}

// Splits a template into parts: {text} literal text and {var, value} variables. An unknown
// variable, an unclosed "{" or a lone "}" stays literal text (as the server renders it);
// "{{" and "}}" are literal braces. Values are never re-expanded.
export function renderTemplate(tpl, alert, count) {
  const parts = [];
  let lit = '';
  const s = String(tpl || '');
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '{' && s[i + 1] === '{') { lit += '{'; i++; continue; }
    if (c === '}' && s[i + 1] === '}') { lit += '}'; i++; continue; }
    if (c === '{') {
      const end = s.indexOf('}', i + 1);
      const name = end > 0 ? s.slice(i + 1, end) : null;
      if (name !== null && VARS.has(name)) {
        if (lit) parts.push({ text: lit });
        lit = '';
        parts.push({ var: name, value: alertVar(name, alert, count) });
        i = end;
        continue;
      }
    }
    lit += c;
  }
  if (lit) parts.push({ text: lit });
  return parts;
}

export const partsText = (parts) => parts.map((p) => (p.var ? p.value : p.text)).join('');

// ---- word / link filter ---------------------------------------------------------------------

const LINK_RE = /\b(?:https?:\/\/|www\.)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|tv|gg|io|ly|me|co|xyz|info|ru|de|uk)\b(?:\/\S*)?/gi;

export function hasLink(text) {
  LINK_RE.lastIndex = 0;
  return LINK_RE.test(String(text || ''));
}

function escapeRe(w) { return w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

function wordsRe(words) {
  const list = (Array.isArray(words) ? words : []).filter((w) => typeof w === 'string' && w.trim());
  if (!list.length) return null;
  return new RegExp(list.map((w) => escapeRe(w.trim())).join('|'), 'gi');
}

export function hasWord(text, words) {
  const re = wordsRe(words);
  return !!re && re.test(String(text || ''));
}

// Masks links and filter words with *** (the alert box's viewer messages).
export function maskText(text, filter) {
  let t = String(text || '');
  if (!filter) return t;
  if (filter.links) t = t.replace(LINK_RE, '***');
  const re = wordsRe(filter.words);
  if (re) t = t.replace(re, '***');
  return t;
}

// ---- config and socket ----------------------------------------------------------------------

export async function fetchConfig(type, token) {
  const r = await fetch(`/widgets/${type}/config?token=${encodeURIComponent(token)}`,
    { credentials: 'omit', headers: { Accept: 'application/json' } });
  if (!r.ok) {
    const e = new Error(r.status === 404 ? 'unknown or rotated widget token' : `config ${r.status}`);
    e.status = r.status;
    throw e;
  }
  return r.json();
}

// A widget socket: subscribes to `topics`, hands every frame to onFrame(m), reconnects with
// backoff (0.5 s doubling to 10 s, jitter) and resumes each topic after the last seq seen, so a
// network blip loses nothing still in the server's history. State 'open' once every topic is
// joined (subscribed or resumed). Close 4001 (token rotated) or a
// refused upgrade after a rotation stops it (onDead).
export class WidgetSocket {
  constructor(path, topics, onFrame, { onState, onDead } = {}) {
    this.path = path;
    this.topics = topics;
    this.onFrame = onFrame;
    this.onState = onState || (() => {});
    this.onDead = onDead || (() => {});
    this.seqs = {};
    this.attempt = 0;
    this.ws = null;
    this.stopped = false;
    this.timer = null;
  }

  start() { this.connect(); return this; }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  }

  connect() {
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}${this.path}`);
    this.ws = ws;
    let opened = false;
    const joined = new Set();
    ws.addEventListener('open', () => {
      opened = true;
      this.attempt = 0;
      this.onState('joining');
      for (const t of this.topics) {
        if (this.seqs[t] !== undefined) ws.send(JSON.stringify({ type: 'resume', topic: t, after_seq: this.seqs[t] }));
        else ws.send(JSON.stringify({ type: 'subscribe', topic: t }));
      }
    });
    ws.addEventListener('message', (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (!m || typeof m.topic !== 'string') return;
      if (m.event === 'subscribed' || m.event === 'resumed') {
        if (m.event === 'subscribed' && m.payload && typeof m.payload.seq === 'number' && this.seqs[m.topic] === undefined) this.seqs[m.topic] = m.payload.seq;
        joined.add(m.topic);
        if (joined.size === this.topics.length) this.onState('open'); // every topic joined
        return;
      }
      if (m.event === 'subscribe_error') { console.warn(`widget socket: ${m.topic} refused`); return; }
      if (typeof m.seq === 'number') this.seqs[m.topic] = m.seq;
      try { this.onFrame(m); } catch (e) { console.warn('widget frame', e); }
    });
    ws.addEventListener('error', () => { /* the close event follows */ });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onState('closed');
      if (ev.code === 4001) { this.stopped = true; this.onDead('rotated'); return; }
      if (this.stopped) return;
      if (!opened && this.attempt >= 3) {
        // refused several times in a row: maybe the token was rotated while we were away
        this.checkAlive();
      }
      const base = Math.min(10000, 500 * 2 ** this.attempt++);
      this.timer = setTimeout(() => this.connect(), base / 2 + Math.random() * base / 2);
    });
  }

  async checkAlive() {
    if (!this.aliveCheck) return;
    try {
      if (!(await this.aliveCheck())) { this.stopped = true; clearTimeout(this.timer); this.onDead('rotated'); }
    } catch { /* the server is down: keep trying */ }
  }
}

/* The start of a widget page: token from the URL, config, then the scoped socket on the
   widget's two topics ({type}:{user} and widget_config:{type}:{user}). w.status and
   body[data-socket] show where it stands (no_token, bad_token, open, rotated, ...). */
export async function startWidget(w, type, label, applyConfig, onFrame) {
  const token = urlToken();
  if (!token) { w.status = 'no_token'; console.warn(`${label}: no widget token in the URL`); return; }
  let info;
  try {
    info = await fetchConfig(type, token);
  } catch (e) {
    w.status = 'bad_token';
    console.warn(`${label}: ${e.message}`);
    return;
  }
  w.userId = info.user_id;
  applyConfig(info.config);
  const topics = [`${type}:${info.user_id}`, `widget_config:${type}:${info.user_id}`];
  const path = typeof info.socket_url === 'string' && info.socket_url.startsWith('/socket?')
    ? info.socket_url : `/socket?widget_token=${encodeURIComponent(token)}`;
  w.socket = new WidgetSocket(path, topics, onFrame, {
    onState: (st) => { w.status = st; document.body.dataset.socket = st; },
    onDead: () => { w.status = 'rotated'; document.body.dataset.socket = 'rotated'; },
  });
  w.socket.aliveCheck = async () => {
    try { await fetchConfig(type, token); return true; } catch (e) { if (e.status === 404) return false; throw e; }
  };
  w.socket.start();
}
