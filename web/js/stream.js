// stream.js: the dashboard's stream page (mounted into <main id="app">).
// Ingest URL + stream key (hidden until revealed, copy buttons), input status,
// state badge, Start (only when ready) / Stop (while streaming), a countdown
// while the input is lost, destinations (checkboxes, add/remove custom RTMP),
// per-destination output status, live event feed and stream history.
// Live updates come over /socket (topics user_stream:{id}, cloudflare_input:{id},
// stream_lifecycle:{id}); the socket reconnects with backoff and resumes each
// topic from the last seq it saw, so no update is lost across a drop.
// Other dashboard modules (platforms.js, chat.js) join more topics on the same socket with
// subscribeTopic(topic, handler); connected platform accounts appear among the destinations
// with their platform's name and icon (no key, not removable here).
import { get, post, put, del, ApiError } from './api.js';
import { renderCategoryFields, chosenCategories, categoriesSaved } from './categories.js';
import { destStatus, destStatusNode } from './dest_status.js';
import { editDestination, regenerateKey } from './dest_edit.js';
import { renderRecording } from './rec_status.js';

const $ = (sel, root = document) => root.querySelector(sel);

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const STATE_LABEL = { offline: 'Offline', ready: 'Ready', streaming: 'Live', ending: 'Ending' };
const INPUT_LABEL = {
  none: 'Never connected', connected: 'Connected', disconnected: 'Disconnected',
  errored: 'Error', unknown: 'Unknown (media API unreachable)',
};

const page = {
  user: null,
  status: null,        // last GET /api/stream or state_changed payload
  destinations: [],
  selected: new Set(),
  keyShown: false,
  seqs: {},            // topic -> last seq
  ws: null,
  wsAttempt: 0,
  countdownTimer: null,
  feed: [],
  clockSkew: 0,        // server_time - Date.now()
  handlers: new Map(), // extra topic -> Set of handler(m) (subscribeTopic)
  mounted: false,
};

// Platform names as shown to people (the server's display_name wins when it sends one).
export const PLATFORM_NAMES = { twitch: 'Twitch', youtube: 'YouTube', kick: 'Kick', facebook: 'Facebook' };
export function platformName(p, fallback) {
  return fallback || PLATFORM_NAMES[p] || (p ? p.charAt(0).toUpperCase() + p.slice(1) : '');
}

// A small platform badge (CSS-coloured, one letter): <span class="pf-icon" data-platform>.
export function platformIcon(p) {
  const name = platformName(p);
  return el('span', { class: 'pf-icon', 'data-platform': p, title: name, 'aria-label': name, role: 'img', text: (name || '?').charAt(0) });
}

function template() {
  return el('section', { class: 'stream-page', id: 'stream-page' },
    el('div', { class: 'stream-main' },
    el('div', { class: 'stream-grid' },
      el('div', { class: 'card stream-status' },
        el('h2', { text: 'Stream' }),
        el('div', { class: 'status-row' },
          el('span', { id: 'state-badge', class: 'badge', 'data-state': 'offline', text: 'Offline' }),
          el('span', { class: 'input-label', text: 'Input: ' }),
          el('span', { id: 'input-status', 'data-status': 'none', text: '…' })),
        el('p', { id: 'countdown', class: 'countdown', hidden: true }),
        el('p', { id: 'degraded', class: 'warn', hidden: true, text: 'The media service is having trouble; the last known state is shown.' }),
        el('p', { id: 'stream-error', class: 'form-error', role: 'alert' }),
        el('div', { class: 'actions' },
          el('button', { id: 'start-stream', type: 'button', class: 'button primary', hidden: true, text: 'Start Stream' }),
          el('button', { id: 'stop-stream', type: 'button', class: 'button danger', hidden: true, text: 'Stop Stream' })),
        el('p', { id: 'conn-status', class: 'hint', text: 'Connecting…' })),
      el('div', { class: 'card ingest' },
        el('h2', { text: 'Ingest' }),
        el('label', { for: 'ingest-url', text: 'RTMP URL' }),
        el('div', { class: 'copy-row' },
          el('input', { id: 'ingest-url', readonly: true, value: '' }),
          el('button', { id: 'copy-url', type: 'button', class: 'button', text: 'Copy' })),
        el('label', { for: 'stream-key', text: 'Stream key' }),
        el('div', { class: 'copy-row' },
          el('input', { id: 'stream-key', readonly: true, type: 'password', value: '' }),
          el('button', { id: 'reveal-key', type: 'button', class: 'button', text: 'Reveal' }),
          el('button', { id: 'copy-key', type: 'button', class: 'button', text: 'Copy' }),
          el('button', { id: 'regen-key', type: 'button', class: 'button', text: 'Regenerate', onclick: () => regenerateKey() })),
        el('p', { class: 'hint', text: 'Point your encoder (OBS…) at this URL with this key.' }))),
    el('div', { class: 'card' },
      el('h2', { text: 'Title' }),
      el('form', { id: 'meta-form', class: 'inline-form' },
        el('input', { id: 'meta-title', name: 'title', maxlength: '140', placeholder: 'Stream title' }),
        el('span', { id: 'meta-categories', class: 'meta-categories' }),
        el('button', { type: 'submit', class: 'button', text: 'Save' }),
        el('span', { id: 'meta-saved', class: 'hint' }))),
    el('div', { class: 'card' },
      el('h2', { text: 'Destinations' }),
      el('ul', { id: 'destinations', class: 'dest-list' }),
      el('p', { id: 'no-dest', class: 'hint', text: 'No destinations yet. Platform accounts you connect and custom RTMP(S) servers you add below will appear here, each with its live status.' }),
      el('form', { id: 'dest-form', class: 'dest-form' },
        el('input', { id: 'dest-name', name: 'name', placeholder: 'Name', required: true, maxlength: '100' }),
        el('input', { id: 'dest-url', name: 'url', placeholder: 'rtmp://host/app', required: true }),
        el('input', { id: 'dest-key', name: 'stream_key', placeholder: 'Stream key', required: true, type: 'password' }),
        el('button', { type: 'submit', class: 'button', text: 'Add destination' })),
      el('p', { id: 'dest-error', class: 'form-error', role: 'alert' })),
    el('div', { class: 'stream-grid' },
      el('div', { class: 'card' },
        el('h2', { text: 'Events' }),
        el('ul', { id: 'feed', class: 'feed' })),
      el('div', { class: 'card' },
        el('h2', { text: 'History' }),
        el('ul', { id: 'history', class: 'history' })))),
    // the unified chat (chat.js) mounts here
    el('aside', { id: 'chat-column', class: 'card chat-column', 'aria-label': 'Chat' }));
}

function showError(sel, e) {
  const node = $(sel);
  if (!node) return;
  node.textContent = e ? (e instanceof ApiError ? e.message : String(e.message || e)) : '';
}

// ---- rendering ------------------------------------------------------------

function render() {
  const s = page.status;
  if (!s) return;
  const badge = $('#state-badge');
  badge.dataset.state = s.state;
  badge.textContent = STATE_LABEL[s.state] || s.state;
  if (s.state === 'streaming' && s.starting) badge.textContent = 'Starting…';
  const inputStatus = s.input ? s.input.status : 'none';
  const is = $('#input-status');
  is.dataset.status = inputStatus;
  is.textContent = s.input ? (INPUT_LABEL[inputStatus] || inputStatus) : 'No live input yet';
  $('#start-stream').hidden = s.state !== 'ready';
  $('#stop-stream').hidden = s.state !== 'streaming';
  $('#stop-stream').disabled = !!s.starting;
  const onAir = s.state === 'streaming' || s.state === 'ending';
  Object.assign($('#regen-key'), { disabled: onAir, title: onAir ? 'Stop the stream before regenerating the stream key (OBS streams with the current key)' : 'Get a new stream key; the current one stops working at once' });
  $('#degraded').hidden = !(s.degraded || inputStatus === 'unknown');
  if (s.input) {
    if (s.input.rtmp_url) $('#ingest-url').value = s.input.rtmp_url;
    if (s.input.stream_key) $('#stream-key').value = s.input.stream_key;
  }
  const title = $('#meta-title');
  if (document.activeElement !== title && s.title !== undefined) title.value = s.title || '';
  renderCountdown();
  renderDestinations();
  renderRecording(s);
}

function renderCountdown() {
  const s = page.status;
  const node = $('#countdown');
  clearInterval(page.countdownTimer);
  page.countdownTimer = null;
  if (!s || s.state !== 'streaming' || !s.disconnect_deadline) {
    node.hidden = true;
    return;
  }
  const tick = () => {
    const left = Math.max(0, s.disconnect_deadline - (Date.now() + page.clockSkew));
    const sec = Math.ceil(left / 1000);
    node.hidden = false;
    node.textContent = `Input lost: the stream ends in ${Math.floor(sec / 60)}:${String(sec % 60).padStart(2, '0')} unless the encoder reconnects.`;
  };
  tick();
  page.countdownTimer = setInterval(tick, 250);
}

function outputFor(destId) {
  const outs = (page.status && page.status.outputs) || [];
  return outs.find((o) => o.destination_id === destId);
}

// Bytes as a short human string (1.2 MB).
export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return '';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function renderDestinations() {
  const linkedNames = page.destinations.filter((d) => d.platform && d.platform !== 'custom').map((d) => d.platform);
  renderCategoryFields($('#meta-categories'), linkedNames, (page.status && page.status.categories) || {});
  const list = $('#destinations');
  list.replaceChildren();
  $('#no-dest').hidden = page.destinations.length > 0;
  const live = page.status && (page.status.state === 'streaming' || page.status.state === 'ending');
  for (const d of page.destinations) {
    const out = outputFor(d.id);
    const linked = !!d.platform && d.platform !== 'custom';
    const cb = el('input', { type: 'checkbox', id: `dest-${d.id}`, 'data-id': d.id, disabled: live || d.enabled === false });
    cb.checked = page.selected.has(d.id);
    cb.addEventListener('change', () => { if (cb.checked) page.selected.add(d.id); else page.selected.delete(d.id); });
    const status = destStatusNode(page.status, out); // one status, in plain words
    if (linked) {
      // a connected platform account: its ingest and key come from the platform at Start;
      // it is managed in the Platforms panel, not here
      list.append(el('li', { 'data-id': d.id, 'data-platform': d.platform, class: 'dest-linked' },
        cb, el('label', { for: `dest-${d.id}` }, platformIcon(d.platform), ' ', d.name || platformName(d.platform)),
        el('span', { class: 'dest-url', text: `${platformName(d.platform)} account: ingest and key come from ${platformName(d.platform)} at Start` }),
        status, el('span', { class: 'dest-managed hint', text: 'via Platforms' })));
      continue;
    }
    const rm = el('button', { type: 'button', class: 'button small', text: 'Remove', disabled: live });
    rm.addEventListener('click', () => removeDestination(d));
    const edit = el('button', { type: 'button', class: 'button small dest-edit', text: 'Edit', disabled: live, onclick: () => editDestination(d) });
    list.append(el('li', { 'data-id': d.id, 'data-platform': d.platform || 'custom' },
      cb, el('label', { for: `dest-${d.id}`, text: `${d.name}` }),
      el('span', { class: 'dest-url', text: d.url }), status, el('span', { class: 'dest-actions' }, edit, rm)));
  }
}

function addFeed(text) {
  page.feed.unshift({ at: new Date(), text });
  page.feed.length = Math.min(page.feed.length, 50);
  const ol = $('#feed');
  ol.replaceChildren(...page.feed.map((f) => el('li', {},
    el('time', { text: f.at.toLocaleTimeString() }), ' ', f.text)));
}

async function loadHistory() {
  try {
    const r = await get('/api/streams?limit=20');
    $('#history').replaceChildren(...r.streams.map((s) => el('li', { 'data-id': s.id },
      el('strong', { text: s.title || 'Untitled' }), ' ',
      el('span', { text: s.started_at ? new Date(s.started_at).toLocaleString() : '' }), ' ',
      el('span', { class: 'badge small', 'data-state': s.state, text: s.state === 'ended' ? `ended (${s.end_reason || '?'})` : s.state }))));
  } catch (e) { /* history is optional */ }
}

// ---- data -----------------------------------------------------------------

// While live, GET /api/stream every few seconds for the byte counters (health status
// changes themselves arrive over the socket).
function healthRefresh() {
  const live = page.status && page.status.state === 'streaming';
  if (live && !page.healthTimer) page.healthTimer = setInterval(() => { if (!document.hidden) refresh(); }, 5000);
  if (!live && page.healthTimer) { clearInterval(page.healthTimer); page.healthTimer = null; }
}

function applyStatus(s, source) {
  if (typeof s.server_time === 'number') page.clockSkew = s.server_time - Date.now();
  const prev = page.status;
  // the socket payload has no stream key and no destinations: keep what we have
  if (prev && prev.input && s.input && !s.input.stream_key) s.input.stream_key = prev.input.stream_key;
  page.status = { ...prev, ...s };
  if (s.destinations) {
    page.destinations = s.destinations;
    // a destination that is gone (a disconnected platform account) is no longer selected
    for (const id of [...page.selected]) if (!s.destinations.some((d) => d.id === id)) page.selected.delete(id);
  }
  if (prev && prev.state !== s.state && source === 'ws') {
    addFeed(`State: ${STATE_LABEL[prev.state] || prev.state} → ${STATE_LABEL[s.state] || s.state}${s.reason ? ` (${s.reason})` : ''}`);
    if (s.state === 'offline' || s.state === 'ready') loadHistory();
  }
  if (source === 'ws' && s.reason === 'output_health') {
    for (const o of s.outputs || []) {
      const before = ((prev && prev.outputs) || []).find((x) => x.id === o.id);
      const a = before ? destStatus(prev, before).label : null;
      const b = destStatus(page.status, o).label;
      if (a !== b) addFeed(`${o.name || 'Destination'}: ${b}`);
    }
  }
  render();
  healthRefresh();
  document.dispatchEvent(new CustomEvent('sp:stream', { detail: page.status }));
}

async function refresh() {
  try {
    applyStatus(await get('/api/stream'), 'http');
    showError('#stream-error', null);
  } catch (e) {
    showError('#stream-error', e);
  }
}

async function start() {
  const btn = $('#start-stream');
  btn.disabled = true;
  showError('#stream-error', null);
  try {
    const r = await post('/api/stream/start', { destinations: [...page.selected] });
    if (r.partial_failure) addFeed('Some destinations failed; retrying them.');
    await refresh();
  } catch (e) {
    await refresh();
    showError('#stream-error', e); // after the refresh, which clears the error line
  } finally {
    btn.disabled = false;
  }
}

async function stop() {
  const btn = $('#stop-stream');
  btn.disabled = true;
  showError('#stream-error', null);
  try {
    await post('/api/stream/stop');
    await refresh();
  } catch (e) {
    showError('#stream-error', e);
  } finally {
    btn.disabled = false;
  }
}

async function addDestination(ev) {
  ev.preventDefault();
  showError('#dest-error', null);
  const body = {
    platform: 'custom',
    name: $('#dest-name').value.trim(),
    url: $('#dest-url').value.trim(),
    stream_key: $('#dest-key').value,
  };
  try {
    const d = await post('/api/destinations', body);
    page.destinations.push(d);
    page.selected.add(d.id);
    $('#dest-form').reset();
    addFeed(`Destination added: ${d.name}`);
    renderDestinations();
  } catch (e) {
    showError('#dest-error', e);
  }
}

async function removeDestination(d) {
  showError('#dest-error', null);
  try {
    await del(`/api/destinations/${encodeURIComponent(d.id)}`);
    page.destinations = page.destinations.filter((x) => x.id !== d.id);
    page.selected.delete(d.id);
    renderDestinations();
  } catch (e) {
    showError('#dest-error', e);
  }
}

async function saveMeta(ev) {
  ev.preventDefault();
  try {
    const body = { title: $('#meta-title').value.trim() };
    const categories = chosenCategories($('#meta-categories'));
    if (Object.keys(categories).length) body.categories = categories;
    const r = await put('/api/stream/metadata', body);
    categoriesSaved($('#meta-categories'));
    if (page.status) { page.status.categories = r.categories || page.status.categories; }
    $('#meta-saved').textContent = 'Saved';
    setTimeout(() => { $('#meta-saved').textContent = ''; }, 1500);
  } catch (e) {
    $('#meta-saved').textContent = e.message;
  }
}

async function copy(text, btn) {
  try {
    await navigator.clipboard.writeText(text);
    btn.textContent = 'Copied';
  } catch {
    btn.textContent = 'Copy failed';
  }
  setTimeout(() => { btn.textContent = 'Copy'; }, 1200);
}

// ---- socket ---------------------------------------------------------------

function topics() {
  const id = page.user.id;
  return [`user_stream:${id}`, `cloudflare_input:${id}`, `stream_lifecycle:${id}`, ...page.handlers.keys()];
}

function sendJoin(ws, t) {
  if (page.seqs[t] !== undefined) ws.send(JSON.stringify({ type: 'resume', topic: t, after_seq: page.seqs[t] }));
  else ws.send(JSON.stringify({ type: 'subscribe', topic: t }));
}

// Joins one more topic on the dashboard socket (resumed across reconnects like the stream
// topics); handler(m) gets each {topic, event, payload, seq} frame of it, `gap` notices too.
// Returns a function that stops the handler (the topic stays joined).
export function subscribeTopic(topic, handler) {
  let set = page.handlers.get(topic);
  if (!set) {
    set = new Set();
    page.handlers.set(topic, set);
    if (page.ws && page.ws.readyState === WebSocket.OPEN) sendJoin(page.ws, topic);
  }
  set.add(handler);
  return () => set.delete(handler);
}

function onMessage(m) {
  if (!m || !m.topic) return;
  document.dispatchEvent(new CustomEvent('sp:socket-message', { detail: m }));
  if (typeof m.seq === 'number') page.seqs[m.topic] = m.seq;
  const hs = page.handlers.get(m.topic);
  if (hs) {
    for (const h of [...hs]) {
      try { h(m); } catch (e) { console.error(e); }
    }
    return;
  }
  if (m.event === 'gap') { refresh(); return; }
  if (m.topic.startsWith('user_stream:') && m.event === 'state_changed') applyStatus(m.payload, 'ws');
  else if (m.topic.startsWith('cloudflare_input:') && m.event === 'input_status') addFeed(`Input ${INPUT_LABEL[m.payload.status] || m.payload.status}`);
  else if (m.topic.startsWith('stream_lifecycle:')) {
    if (m.event === 'stream_started') addFeed('Stream started');
    if (m.event === 'stream_ended') addFeed(`Stream ended (${m.payload.end_reason})`);
  }
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/socket`);
  page.ws = ws;
  const conn = $('#conn-status');
  ws.addEventListener('open', () => {
    page.wsAttempt = 0;
    conn.textContent = 'Live updates connected';
    conn.dataset.state = 'open';
    for (const t of topics()) sendJoin(ws, t);
    refresh();
  });
  ws.addEventListener('message', (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    if (m.event === 'subscribed' && m.payload && typeof m.payload.seq === 'number' && page.seqs[m.topic] === undefined) {
      page.seqs[m.topic] = m.payload.seq;
      return;
    }
    onMessage(m);
  });
  ws.addEventListener('close', (ev) => {
    if (page.ws !== ws) return;
    page.ws = null;
    conn.dataset.state = 'closed';
    const base = Math.min(10000, 500 * 2 ** page.wsAttempt++);
    const delay = base / 2 + Math.random() * base / 2;
    conn.textContent = ev.code === 1013
      ? `Server busy (${ev.reason || 'try again later'}); retrying in ${Math.round(delay / 1000)} s`
      : `Live updates disconnected; reconnecting in ${Math.round(delay / 1000)} s`;
    setTimeout(connect, delay);
  });
}

// ---- mount ----------------------------------------------------------------

async function mount(user) {
  if (page.user) return;
  page.user = user;
  const app = $('#app');
  if (!app) return;
  app.replaceChildren(template());
  $('#start-stream').addEventListener('click', start);
  $('#stop-stream').addEventListener('click', stop);
  $('#dest-form').addEventListener('submit', addDestination);
  $('#meta-form').addEventListener('submit', saveMeta);
  $('#copy-url').addEventListener('click', (e) => copy($('#ingest-url').value, e.currentTarget));
  $('#copy-key').addEventListener('click', (e) => copy($('#stream-key').value, e.currentTarget));
  $('#reveal-key').addEventListener('click', (e) => {
    page.keyShown = !page.keyShown;
    $('#stream-key').type = page.keyShown ? 'text' : 'password';
    e.currentTarget.textContent = page.keyShown ? 'Hide' : 'Reveal';
  });
  await refresh();
  for (const d of page.destinations) if (d.enabled !== false) page.selected.add(d.id);
  renderDestinations();
  loadHistory();
  connect();
  window.streampaiStream = page; // for tests and debugging
  page.mounted = true;
  document.dispatchEvent(new CustomEvent('sp:stream-mounted', { detail: { user, page } }));
}

// A connected or disconnected platform account changes the destination list.
document.addEventListener('sp:platforms-changed', () => { if (page.mounted) refresh(); });
// a destination edited, the stream key regenerated (dest_edit.js)
document.addEventListener('sp:destinations-changed', () => { if (page.mounted) refresh(); });

export function streamPage() { return page; }

document.addEventListener('sp:user', (ev) => mount(ev.detail));
if (window.spUser) mount(window.spUser);
