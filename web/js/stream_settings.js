// stream_settings.js: the stream settings panel on the stream page (GET/PUT
// /api/stream/settings): "go live automatically when my encoder connects" with the
// destinations it goes live to, and disconnect protection. Mounted after the Destinations
// card once stream.js has mounted (sp:stream-mounted); the destination list follows the
// page's (sp:stream). Also shows the input's last known status time under the input label.
import { get, put, ApiError } from './api.js';
import './events_log.js';

const $ = (sel, root = document) => root.querySelector(sel);

// this module's stylesheet (the shared pages stay untouched)
if (!document.querySelector('link[href="/css/stream_settings.css"]')) {
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = '/css/stream_settings.css';
  document.head.append(link);
}
const st = { settings: null, destinations: [], card: null, dirty: false };

function h(tag, attrs = {}, ...children) {
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

function template() {
  return h('div', { class: 'card stream-settings', id: 'stream-settings' },
    h('h2', { text: 'Stream settings' }),
    h('form', { id: 'settings-form' },
      h('label', { class: 'switch-row' },
        h('input', { id: 'auto-start', type: 'checkbox' }),
        ' Go live automatically when my encoder connects'),
      h('fieldset', { id: 'auto-dests', class: 'auto-dests' },
        h('legend', { text: 'Go live to' }),
        h('div', { id: 'auto-dest-list' }),
        h('p', { id: 'auto-dest-empty', class: 'hint', text: 'Add a destination first: auto go-live needs at least one.' })),
      h('label', { class: 'switch-row' },
        h('input', { id: 'disconnect-protection', type: 'checkbox' }),
        ' Disconnect protection: keep my destinations connected while the encoder is briefly lost'),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'button', id: 'settings-save', text: 'Save settings' }),
        h('span', { id: 'settings-saved', class: 'hint', role: 'status' })),
      h('p', { id: 'settings-error', class: 'form-error', role: 'alert' }),
      h('p', { id: 'auto-start-problem', class: 'warn', hidden: true })));
}

function renderDests() {
  const list = $('#auto-dest-list');
  if (!list || !st.settings) return;
  const chosen = new Set(st.dirty ? [...list.querySelectorAll('input:checked')].map((c) => c.value)
    : st.settings.auto_start_destinations);
  list.replaceChildren(...st.destinations.map((d) => h('label', { class: 'auto-dest' },
    h('input', { type: 'checkbox', value: d.id, 'data-id': d.id, checked: chosen.has(d.id) }),
    ` ${d.name || d.platform || d.id}`)));
  $('#auto-dest-empty').hidden = st.destinations.length > 0;
  $('#auto-dests').disabled = !$('#auto-start').checked;
}

function render() {
  if (!st.card || !st.settings) return;
  if (!st.dirty) {
    $('#auto-start').checked = !!st.settings.auto_start;
    $('#disconnect-protection').checked = !!st.settings.disconnect_protection;
  }
  renderDests();
}

async function save(ev) {
  ev.preventDefault();
  const body = {
    auto_start: $('#auto-start').checked,
    auto_start_destinations: [...document.querySelectorAll('#auto-dest-list input:checked')].map((c) => c.value),
    disconnect_protection: $('#disconnect-protection').checked,
  };
  $('#settings-error').textContent = '';
  $('#settings-saved').textContent = '';
  if (body.auto_start && body.auto_start_destinations.length === 0) {
    $('#settings-error').textContent = 'Select at least one destination for auto go-live.';
    return;
  }
  try {
    st.settings = await put('/api/stream/settings', body);
    st.dirty = false;
    $('#settings-saved').textContent = 'Saved';
    render();
  } catch (e) {
    $('#settings-error').textContent = e instanceof ApiError ? e.message : String(e.message || e);
  }
}

// A refused or failed auto go-live (GET /api/stream's `error`) stays visible in the panel.
function autoStartProblem(s) {
  const node = $('#auto-start-problem');
  if (!node || !s) return;
  const msg = typeof s.error === 'string' && s.error.startsWith('Auto go-live') ? s.error : '';
  node.textContent = msg;
  node.hidden = !msg;
}

function lastStatusHint(s) {
  const is = $('#input-status');
  if (!is || !s || !s.input) return;
  let hint = $('#input-since');
  if (!hint) {
    hint = h('span', { id: 'input-since', class: 'hint' });
    is.after(hint);
  }
  const since = s.input.status_since;
  const last = s.input.last_status;
  if (!since || !last) { hint.textContent = ''; return; }
  const at = new Date(since).toLocaleString();
  hint.textContent = last === s.input.status ? ` since ${at}` : ` (last known: ${last} since ${at})`;
}

async function mount() {
  if (st.card) return;
  const dests = $('#dest-form');
  const anchor = dests && dests.closest('.card');
  if (!anchor) return;
  st.card = template();
  anchor.after(st.card);
  $('#settings-form').addEventListener('submit', save);
  $('#settings-form').addEventListener('change', () => {
    st.dirty = true;
    $('#settings-saved').textContent = '';
    $('#auto-dests').disabled = !$('#auto-start').checked;
  });
  const page = window.streampaiStream;
  if (page) {
    st.destinations = page.destinations || [];
    lastStatusHint(page.status);
    autoStartProblem(page.status);
  }
  try {
    st.settings = await get('/api/stream/settings');
  } catch (e) {
    $('#settings-error').textContent = e instanceof ApiError ? e.message : 'Settings could not be loaded.';
    return;
  }
  render();
}

document.addEventListener('sp:stream', (ev) => {
  const s = ev.detail;
  const page = window.streampaiStream;
  if (page && page.destinations) st.destinations = page.destinations;
  lastStatusHint(s);
  renderDests();
});
// the socket's state_changed payload carries `error` only while there is one (the page's
// merged status would keep an old one)
document.addEventListener('sp:socket-message', (ev) => {
  const m = ev.detail;
  if (m && m.event === 'state_changed' && m.topic && m.topic.startsWith('user_stream:')) autoStartProblem(m.payload);
});
document.addEventListener('sp:stream-mounted', mount);
if (window.streampaiStream && window.streampaiStream.mounted) mount();

export function streamSettings() { return st; }
