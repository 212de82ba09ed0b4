// widget_settings.js: /dashboard/widgets (web/dashboard/widgets.html). Per widget (AlertBox,
// chat overlay): its OBS URL with Copy and Rotate, the settings form for every config field
// (docs/widgets.md "Config schemas"), Save (PUT /api/widgets/{type}/config; a 422 shows its
// field's error), and a LIVE PREVIEW: an iframe of the real widget page (?preview=1) that gets
// the form's unsaved config on every change and fake data (web/js/widgets/fake.js) through
// postMessage, and the real test alerts / test chat from the server over its own socket.
// AlertBox queue controls (pause/resume, skip, clear; the queue's `state` frames) and the
// recent alerts from the event list with Replay.
import { get, post, put, cookie, ApiError } from './api.js';
import { el, ALERT_TYPES, PLATFORMS, WidgetSocket } from './widgets/common.js';
import { fakeShow, fakeChatMessage } from './widgets/fake.js';

const $ = (sel, root = document) => root.querySelector(sel);

const TYPE_LABEL = {
  follow: 'Follow', subscription: 'Subscription', gift_subscription: 'Gift subs', cheer: 'Cheer',
  raid: 'Raid', super_chat: 'Super Chat', member: 'Member', donation: 'Donation',
};
const ANIMS = ['fade', 'slide_up', 'slide_down', 'slide_left', 'slide_right', 'zoom', 'bounce', 'none'];
const FONTS = ['sans-serif', 'serif', 'monospace', 'Arial', 'Verdana', 'Georgia', 'Impact', 'Trebuchet MS', 'Courier New'];

// Field descriptors: path (dotted, as the server's 422 `field`), label, kind and limits.
const ALERTBOX_GENERAL = [
  { path: 'font', label: 'Font', kind: 'font' },
  { path: 'font_size', label: 'Font size (px)', kind: 'int', min: 8, max: 200 },
  { path: 'text_color', label: 'Text colour', kind: 'color' },
  { path: 'accent_color', label: 'Accent colour (names, amounts)', kind: 'color' },
  { path: 'layout', label: 'Image', kind: 'select', options: [['above', 'above the text'], ['beside', 'beside the text']] },
  { path: 'gap_ms', label: 'Gap between alerts (ms)', kind: 'int', min: 0, max: 60000 },
  { path: 'show_message', label: "Show the viewer's message", kind: 'bool' },
  { path: 'filter.links', label: 'Mask links in messages', kind: 'bool' },
  { path: 'filter.words', label: 'Masked words (one per line)', kind: 'words' },
];
const ALERTBOX_TYPE = [
  { key: 'enabled', label: 'Enabled', kind: 'bool' },
  { key: 'template', label: 'Message', kind: 'text', max: 1024, hint: 'Variables: {name} {count} {amount} {currency} {message} {tier} {platform}' },
  { key: 'duration_ms', label: 'Duration (ms)', kind: 'int', min: 1000, max: 60000 },
  { key: 'animation_in', label: 'Animation in', kind: 'select', options: ANIMS.map((a) => [a, a]) },
  { key: 'animation_out', label: 'Animation out', kind: 'select', options: ANIMS.map((a) => [a, a]) },
  { key: 'image_url', label: 'Image or GIF', kind: 'upload', accept: 'image/png,image/gif,image/jpeg,image/webp' },
  { key: 'sound_url', label: 'Sound', kind: 'upload', accept: 'audio/mpeg,audio/ogg,audio/wav' },
  { key: 'volume', label: 'Volume', kind: 'range', min: 0, max: 100 },
  { key: 'min_amount', label: 'Minimum amount', kind: 'num', min: 0, max: 1000000, only: ['cheer', 'donation', 'super_chat'] },
];
const CHAT_FIELDS = [
  { path: 'max_messages', label: 'Max messages', kind: 'int', min: 1, max: 100 },
  { path: 'lifetime_ms', label: 'Fade out after (ms, 0 = never)', kind: 'int', min: 0, max: 3600000 },
  { path: 'twitch_safe', label: 'Twitch-safe: show only Twitch messages', kind: 'bool' },
  { path: 'platforms', label: 'Platforms shown (none = all)', kind: 'platforms' },
  { path: 'hide_commands', label: 'Hide !commands', kind: 'bool' },
  { path: 'bots', label: 'Hidden bots (one per line)', kind: 'words' },
  { path: 'filter.links', label: 'Hide messages with links', kind: 'bool' },
  { path: 'filter.words', label: 'Hide messages with these words (one per line)', kind: 'words' },
  { path: 'font', label: 'Font', kind: 'font' },
  { path: 'font_size', label: 'Font size (px)', kind: 'int', min: 8, max: 120 },
  { path: 'show_badges', label: 'Show badges', kind: 'bool' },
  { path: 'show_platform_icons', label: 'Show platform icons', kind: 'bool' },
  { path: 'text_color', label: 'Text colour', kind: 'color' },
  { path: 'background', label: 'Line background (transparent, #RRGGBB or #RRGGBBAA)', kind: 'text', max: 11 },
];

function alertboxFields() {
  const out = [...ALERTBOX_GENERAL];
  for (const t of ALERT_TYPES) {
    for (const f of ALERTBOX_TYPE) {
      if (f.only && !f.only.includes(t)) continue;
      out.push({ ...f, path: `types.${t}.${f.key}`, group: t });
    }
    out.push({ path: `priorities.${t}`, label: 'Priority', kind: 'int', min: 0, max: 1000, group: t });
  }
  return out;
}

const FIELDS = { alertbox: alertboxFields(), chat: CHAT_FIELDS };

const st = {
  user: null,
  w: {},          // type -> {url, config, defaults, iframe, ready, fakeTimer}
  socket: null,
  queue: null,    // last AlertBox queue state
};
window.spWidgetSettings = st; // for tests and debugging

// ---- config paths ---------------------------------------------------------------------------

function getPath(o, path) {
  let v = o;
  for (const k of path.split('.')) { if (v === null || typeof v !== 'object') return undefined; v = v[k]; }
  return v;
}

function setPath(o, path, v) {
  const ks = path.split('.');
  let cur = o;
  for (const k of ks.slice(0, -1)) {
    if (cur[k] === null || typeof cur[k] !== 'object') cur[k] = {};
    cur = cur[k];
  }
  cur[ks[ks.length - 1]] = v;
}

const fieldId = (type, path) => `${type}-${path.replace(/\./g, '-')}`;

// ---- form -----------------------------------------------------------------------------------

function inputFor(type, f) {
  const id = fieldId(type, f.path);
  const common = { id, name: f.path, 'data-kind': f.kind };
  switch (f.kind) {
    case 'bool': return el('input', { ...common, type: 'checkbox' });
    case 'int': return el('input', { ...common, type: 'number', min: String(f.min), max: String(f.max), step: '1' });
    case 'num': return el('input', { ...common, type: 'number', min: String(f.min), max: String(f.max), step: 'any' });
    case 'range': return el('input', { ...common, type: 'range', min: String(f.min), max: String(f.max), step: '1' });
    case 'color': return el('input', { ...common, type: 'color' });
    case 'select': return el('select', common, ...f.options.map(([v, t]) => el('option', { value: v, text: t })));
    case 'font': {
      const dl = `${id}-list`;
      return el('span', { class: 'font-field' }, el('input', { ...common, maxlength: '64', list: dl }),
        el('datalist', { id: dl }, ...FONTS.map((x) => el('option', { value: x }))));
    }
    case 'words': return el('textarea', { ...common, rows: '3' });
    case 'platforms':
      return el('span', { ...common, class: 'platform-checks', role: 'group' }, ...PLATFORMS.map((p) => el('label', { class: 'inline' },
        el('input', { type: 'checkbox', value: p, 'data-platform-check': f.path }), ` ${p}`)));
    case 'upload': {
      const file = el('input', { type: 'file', accept: f.accept, class: 'upload-file', 'aria-label': `Upload ${f.label}` });
      const url = el('input', { ...common, maxlength: '256', placeholder: 'none' });
      file.addEventListener('change', () => upload(type, file, url));
      const clear = el('button', { type: 'button', class: 'button small', text: 'Remove' });
      clear.addEventListener('click', () => { url.value = ''; url.dispatchEvent(new Event('input', { bubbles: true })); });
      return el('span', { class: 'upload-field' }, url, file, clear);
    }
    default: return el('input', { ...common, maxlength: String(f.max || 256) });
  }
}

function fieldNode(type, f) {
  const id = fieldId(type, f.path);
  const box = el('div', { class: `wfield wfield-${f.kind}`, 'data-field': f.path });
  box.append(el('label', { for: id, text: f.label }), inputFor(type, f));
  if (f.hint) box.append(el('p', { class: 'hint', text: f.hint }));
  box.append(el('p', { class: 'field-error', 'data-error-for': f.path, role: 'alert' }));
  return box;
}

function control(form, path) {
  return form.querySelector(`[name="${CSS.escape(path)}"]`);
}

function fillForm(type) {
  const form = $(`#${type}-form`);
  const cfg = st.w[type].config || {};
  for (const f of FIELDS[type]) {
    const v = getPath(cfg, f.path);
    if (f.kind === 'platforms') {
      for (const cb of form.querySelectorAll(`[data-platform-check="${f.path}"]`)) cb.checked = Array.isArray(v) && v.includes(cb.value);
      continue;
    }
    const c = control(form, f.path);
    if (!c) continue;
    if (f.kind === 'bool') c.checked = v === true;
    else if (f.kind === 'words') c.value = Array.isArray(v) ? v.join('\n') : '';
    else c.value = v === undefined || v === null ? '' : String(v);
  }
}

// The form as a config object (fields left empty or not a number are left out: the server
// keeps their saved value).
function readForm(type) {
  const form = $(`#${type}-form`);
  const out = {};
  for (const f of FIELDS[type]) {
    if (f.kind === 'platforms') {
      setPath(out, f.path, [...form.querySelectorAll(`[data-platform-check="${f.path}"]`)].filter((c) => c.checked).map((c) => c.value));
      continue;
    }
    const c = control(form, f.path);
    if (!c) continue;
    if (f.kind === 'bool') setPath(out, f.path, c.checked);
    else if (f.kind === 'int' || f.kind === 'range' || f.kind === 'num') {
      if (c.value.trim() === '') continue;
      const n = Number(c.value);
      if (!Number.isFinite(n)) continue;
      setPath(out, f.path, n);
    } else if (f.kind === 'words') {
      setPath(out, f.path, c.value.split('\n').map((x) => x.trim()).filter(Boolean));
    } else setPath(out, f.path, c.value);
  }
  return out;
}

function merge(base, over) {
  if (over === null || typeof over !== 'object' || Array.isArray(over)) return over;
  const out = { ...(base && typeof base === 'object' && !Array.isArray(base) ? base : {}) };
  for (const [k, v] of Object.entries(over)) out[k] = merge(out[k], v);
  return out;
}

function clearErrors(type) {
  const form = $(`#${type}-form`);
  for (const p of form.querySelectorAll('.field-error')) p.textContent = '';
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  $(`#${type}-form-error`).textContent = '';
}

function showFieldError(type, field, message) {
  const form = $(`#${type}-form`);
  const slot = field ? form.querySelector(`[data-error-for="${CSS.escape(field)}"]`) : null;
  if (!slot) { $(`#${type}-form-error`).textContent = field ? `${field}: ${message}` : message; return; }
  slot.textContent = message;
  const c = control(form, field);
  if (c) {
    c.setAttribute('aria-invalid', 'true');
    const det = c.closest('details');
    if (det) det.open = true;
    c.focus();
  }
}

async function save(type, ev) {
  ev.preventDefault();
  clearErrors(type);
  const btn = $(`#${type}-form button[type=submit]`);
  const status = $(`#${type}-saved`);
  btn.disabled = true;
  status.textContent = 'Saving…';
  try {
    const r = await put(`/api/widgets/${type}/config`, readForm(type));
    st.w[type].config = r.config;
    fillForm(type);
    status.textContent = 'Saved';
    previewConfig(type);
  } catch (e) {
    status.textContent = '';
    if (e instanceof ApiError && e.status === 422) {
      // {error:{code, message, field}} or the flat {error, field, message}
      const b = e.body || {};
      const field = e.field || (typeof b.field === 'string' ? b.field : null);
      showFieldError(type, field, (typeof b.message === 'string' && b.message) || e.message || 'invalid value');
    } else showFieldError(type, null, e.message || String(e));
  } finally {
    btn.disabled = false;
  }
}

async function upload(type, file, urlInput) {
  const f = file.files && file.files[0];
  if (!f) return;
  const headers = { 'Content-Type': f.type || 'application/octet-stream', Accept: 'application/json' };
  const csrf = cookie('sp_csrf');
  if (csrf) headers['X-CSRF-Token'] = csrf;
  const slot = urlInput.closest('.wfield').querySelector('.field-error');
  slot.textContent = 'Uploading…';
  try {
    const r = await fetch('/api/widgets/uploads', { method: 'POST', headers, body: f, credentials: 'same-origin' });
    const j = await r.json().catch(() => null);
    if (!r.ok) {
      const msg = r.status === 413 ? 'The file is too large.' : r.status === 415 ? 'This file type is not accepted.' : (j && j.error && j.error.message) || `Upload failed (${r.status})`;
      throw new Error(msg);
    }
    urlInput.value = j.url;
    slot.textContent = '';
    urlInput.dispatchEvent(new Event('input', { bubbles: true }));
  } catch (e) {
    slot.textContent = e.message;
  } finally {
    file.value = '';
  }
}

// ---- preview --------------------------------------------------------------------------------

function previewPost(type, msg) {
  const w = st.w[type];
  if (!w || !w.ready || !w.iframe.contentWindow) return;
  w.iframe.contentWindow.postMessage(msg, location.origin);
}

// The unsaved form over the saved config, into the preview.
function previewConfig(type) {
  previewPost(type, { type: 'config', config: merge(st.w[type].config || {}, readForm(type)) });
}

function previewSrc(url) {
  try {
    const u = new URL(url, location.origin);
    u.searchParams.set('preview', '1');
    return u.pathname + u.search; // same origin as this page
  } catch { return 'about:blank'; }
}

function loadPreview(type) {
  const w = st.w[type];
  w.ready = false;
  w.iframe.src = previewSrc(w.url);
}

window.addEventListener('message', (ev) => {
  if (ev.origin !== location.origin || !ev.data || ev.data.type !== 'widget-ready') return;
  for (const [type, w] of Object.entries(st.w)) {
    if (w.iframe && ev.source === w.iframe.contentWindow) {
      w.ready = true;
      w.iframe.dataset.ready = '1';
      previewConfig(type);
    }
  }
});

// One fake alert per click, the next type each time (the preview's own queue is cleared first,
// so a click shows at once).
let fakeNext = 0;
function fakeAlert() {
  const cfg = merge(st.w.alertbox.config || {}, readForm('alertbox'));
  const t = ALERT_TYPES[fakeNext++ % ALERT_TYPES.length];
  previewPost('alertbox', { type: 'clear' });
  previewPost('alertbox', { type: 'show', payload: fakeShow(t, cfg) });
}

function toggleFakeChat(btn) {
  const w = st.w.chat;
  if (w.fakeTimer) {
    clearInterval(w.fakeTimer);
    w.fakeTimer = null;
    btn.textContent = 'Start fake chat';
    return;
  }
  const send = () => previewPost('chat', { type: 'message', payload: fakeChatMessage() });
  send();
  w.fakeTimer = setInterval(send, 1200);
  btn.textContent = 'Stop fake chat';
}

// ---- actions --------------------------------------------------------------------------------

function note(type, text, isError = false) {
  const n = $(`#${type}-note`);
  n.textContent = text;
  n.dataset.kind = isError ? 'error' : 'ok';
}

async function copyUrl(type, btn) {
  try { await navigator.clipboard.writeText(st.w[type].url); btn.textContent = 'Copied'; } catch { btn.textContent = 'Copy failed'; }
  setTimeout(() => { btn.textContent = 'Copy'; }, 1200);
}

async function rotate(type, btn) {
  if (btn.dataset.confirm !== '1') {
    btn.dataset.confirm = '1';
    btn.textContent = 'Really rotate? The old URL stops working';
    setTimeout(() => { btn.dataset.confirm = ''; btn.textContent = 'Rotate URL'; }, 5000);
    return;
  }
  btn.dataset.confirm = '';
  btn.textContent = 'Rotate URL';
  try {
    const r = await post(`/api/widgets/${type}/token`);
    st.w[type].url = r.url;
    $(`#${type}-url`).value = r.url;
    loadPreview(type);
    note(type, 'New URL: update the browser source in OBS.');
  } catch (e) { note(type, e.message, true); }
}

async function testAlert(type) {
  try {
    await post('/api/widgets/alertbox/test', { type });
    note('alertbox', `Test ${TYPE_LABEL[type]} alert queued.`);
    loadQueueState(); // a push is not a control: no `state` frame for it
  } catch (e) { note('alertbox', e.message, true); }
}

async function queueControl(action) {
  try {
    renderQueue(await post(`/api/widgets/alertbox/${action}`));
  } catch (e) {
    note('alertbox', e.code === 'nothing_showing' || e.status === 409 ? 'No alert is on screen.' : e.message, e.status !== 409);
  }
}

async function testChat(ev) {
  ev.preventDefault();
  const body = {};
  const p = $('#test-chat-platform').value;
  const n = $('#test-chat-name').value.trim();
  const t = $('#test-chat-text').value.trim();
  if (p) body.platform = p;
  if (n) body.name = n;
  if (t) body.text = t;
  try {
    await post('/api/widgets/chat/test', body);
    note('chat', 'Test message sent.');
  } catch (e) { note('chat', e.message, true); }
}

async function loadQueueState() {
  try { renderQueue(await get('/api/widgets/alertbox/state')); } catch { /* the frames keep it current */ }
}

function renderQueue(s) {
  if (!s || typeof s !== 'object') return;
  st.queue = s;
  const node = $('#queue-state');
  node.dataset.paused = s.paused ? '1' : '0';
  node.textContent = `${s.paused ? 'Paused' : 'Running'} · ${Number(s.queued) || 0} waiting · ${s.current === null || s.current === undefined ? 'nothing on screen' : 'an alert is on screen'}`;
  $('#queue-pause').hidden = !!s.paused;
  $('#queue-resume').hidden = !s.paused;
}

function alertLabel(a) {
  const amount = typeof a.amount === 'number' ? ` ${a.amount}${a.currency ? ` ${a.currency}` : ''}` : '';
  const count = typeof a.count === 'number' ? ` ×${a.count}` : '';
  return `${TYPE_LABEL[a.type] || a.type}: ${a.name || '?'}${amount}${count}`;
}

// The newest persisted alerts: GET /api/events pages oldest first (after_seq), so read forward
// (at most 20 pages of 500) keeping the last 20 alerts.
async function loadEvents() {
  let alerts = [];
  let after = 0;
  for (let page = 0; page < 20; page++) {
    let r;
    try { r = await get(`/api/events?limit=500&after_seq=${after}`); } catch { return; }
    const evs = r.events || [];
    alerts = alerts.concat(evs.filter((e) => e.type === 'alert' && e.payload && typeof e.payload === 'object')).slice(-20);
    if (evs.length < 500) break;
    after = evs[evs.length - 1].seq;
  }
  alerts.reverse();
  const list = $('#recent-alerts');
  list.replaceChildren(...alerts.map((e) => {
    const btn = el('button', { type: 'button', class: 'button small', text: 'Replay' });
    btn.addEventListener('click', async () => {
      try { await post('/api/widgets/alertbox/replay', { event_id: e.id }); note('alertbox', 'Replay queued.'); } catch (err) { note('alertbox', err.message, true); }
    });
    return el('li', { 'data-id': e.id }, el('span', { text: alertLabel(e.payload) }), ' ',
      el('time', { class: 'hint', text: new Date(e.created_at).toLocaleTimeString() }), btn);
  }));
  $('#no-recent').hidden = alerts.length > 0;
}

// ---- page -----------------------------------------------------------------------------------

function widgetSection(type, title, extra) {
  const form = el('form', { id: `${type}-form`, class: 'widget-form', novalidate: true });
  const groups = new Map();
  for (const f of FIELDS[type]) {
    if (!f.group) { form.append(fieldNode(type, f)); continue; }
    let g = groups.get(f.group);
    if (!g) {
      g = el('div', { class: 'type-fields' });
      groups.set(f.group, g);
      form.append(el('details', { class: 'type-group', 'data-type': f.group }, el('summary', { text: TYPE_LABEL[f.group] }), g));
    }
    g.append(fieldNode(type, f));
  }
  form.append(el('p', { id: `${type}-form-error`, class: 'form-error', role: 'alert' }),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'button primary', text: 'Save' }),
      el('span', { id: `${type}-saved`, class: 'hint', role: 'status' })));
  form.addEventListener('submit', (ev) => save(type, ev));
  form.addEventListener('input', () => previewConfig(type));
  form.addEventListener('change', () => previewConfig(type));
  const iframe = el('iframe', { id: `${type}-preview`, class: 'preview-frame', title: `${title} preview`, width: '1920', height: '1080' });
  st.w[type].iframe = iframe;
  const copyBtn = el('button', { type: 'button', class: 'button', id: `${type}-copy`, text: 'Copy' });
  copyBtn.addEventListener('click', () => copyUrl(type, copyBtn));
  const rotBtn = el('button', { type: 'button', class: 'button', id: `${type}-rotate`, text: 'Rotate URL' });
  rotBtn.addEventListener('click', () => rotate(type, rotBtn));
  return el('section', { class: 'card widget-card', id: `widget-${type}`, 'data-widget': type },
    el('h2', { text: title }),
    el('label', { for: `${type}-url`, text: 'Browser source URL (OBS: 1920×1080)' }),
    el('div', { class: 'copy-row' }, el('input', { id: `${type}-url`, readonly: true, value: st.w[type].url || '' }), copyBtn, rotBtn),
    el('p', { id: `${type}-note`, class: 'hint', role: 'status' }),
    el('div', { class: 'widget-layout' },
      form,
      el('div', { class: 'preview-col' },
        el('h3', { text: 'Live preview' }),
        el('div', { class: 'preview-box' }, iframe),
        extra)));
}

function alertboxExtra() {
  const fake = el('button', { type: 'button', class: 'button', id: 'alertbox-fake', text: 'Preview a fake alert' });
  fake.addEventListener('click', fakeAlert);
  const tests = ALERT_TYPES.map((t) => {
    const b = el('button', { type: 'button', class: 'button small', 'data-test-type': t, text: `Test ${TYPE_LABEL[t]}` });
    b.addEventListener('click', () => testAlert(t));
    return b;
  });
  const ctl = (id, text, action) => {
    const b = el('button', { type: 'button', class: 'button small', id, text });
    b.addEventListener('click', () => queueControl(action));
    return b;
  };
  return el('div', { class: 'preview-tools' },
    el('p', { class: 'hint', text: 'Fake alerts play in this preview only. Test alerts go through your real queue: they also show in OBS.' }),
    fake,
    el('div', { class: 'test-buttons' }, ...tests),
    el('h3', { text: 'Queue' }),
    el('p', { id: 'queue-state', class: 'hint', text: '…' }),
    el('div', { class: 'queue-controls' }, ctl('queue-pause', 'Pause', 'pause'), ctl('queue-resume', 'Resume', 'resume'),
      ctl('queue-skip', 'Skip', 'skip'), ctl('queue-clear', 'Clear', 'clear')),
    el('h3', { text: 'Recent alerts' }),
    el('ul', { id: 'recent-alerts', class: 'recent-alerts' }),
    el('p', { id: 'no-recent', class: 'hint', text: 'No alerts yet.' }));
}

function chatExtra() {
  const fake = el('button', { type: 'button', class: 'button', id: 'chat-fake', text: 'Start fake chat' });
  fake.addEventListener('click', () => toggleFakeChat(fake));
  const form = el('form', { id: 'test-chat-form', class: 'inline-form' },
    el('select', { id: 'test-chat-platform', 'aria-label': 'Platform' }, ...PLATFORMS.map((p) => el('option', { value: p, text: p }))),
    el('input', { id: 'test-chat-name', placeholder: 'TestUser', maxlength: '25', 'aria-label': 'Name' }),
    el('input', { id: 'test-chat-text', placeholder: 'Hello from the test chat!', maxlength: '500', 'aria-label': 'Text' }),
    el('button', { type: 'submit', class: 'button', text: 'Send test chat' }));
  form.addEventListener('submit', testChat);
  return el('div', { class: 'preview-tools' },
    el('p', { class: 'hint', text: 'Fake chat plays in this preview only. A test chat message goes to your real overlay too.' }),
    fake, form);
}

function onFrame(m) {
  if (!st.user || m.topic !== `alertbox:${st.user.id}`) return;
  if (m.event === 'state') renderQueue(m.payload);
  else if (m.event === 'alert') setTimeout(loadEvents, 1000); // persisted meanwhile
}

async function mount(user) {
  if (st.user) return;
  st.user = user;
  const app = $('#widgets-app');
  let list;
  try {
    list = await get('/api/widgets');
  } catch (e) {
    app.replaceChildren(el('p', { class: 'form-error', role: 'alert', text: `Widgets are unavailable: ${e.message}` }));
    return;
  }
  const rows = Array.isArray(list) ? list : (list && list.widgets) || [];
  for (const type of ['alertbox', 'chat']) {
    const row = rows.find((r) => r.type === type) || {};
    st.w[type] = { url: row.url || '', config: null, defaults: null, iframe: null, ready: false, fakeTimer: null };
    try {
      const c = await get(`/api/widgets/${type}/config`);
      st.w[type].config = c.config;
      st.w[type].defaults = c.defaults;
    } catch { st.w[type].config = {}; }
  }
  app.replaceChildren(
    widgetSection('alertbox', 'AlertBox', alertboxExtra()),
    widgetSection('chat', 'Chat overlay', chatExtra()));
  for (const type of ['alertbox', 'chat']) {
    fillForm(type);
    loadPreview(type);
    // the widget page is 1920x1080: scale it to the preview box
    const box = st.w[type].iframe.parentNode;
    const fit = () => { st.w[type].iframe.style.transform = `scale(${(box.clientWidth || 576) / 1920})`; };
    new ResizeObserver(fit).observe(box);
    fit();
  }
  renderQueue({ paused: false, queued: 0, current: null });
  loadQueueState();
  loadEvents();
  st.socket = new WidgetSocket('/socket', [`alertbox:${user.id}`], onFrame, {
    onState: (s) => { document.body.dataset.socket = s; },
  }).start();
}

document.addEventListener('sp:user', (ev) => mount(ev.detail));
if (window.spUser) mount(window.spUser);
