// events_log.js: the stream page's event log, persisted on the server. On mount it loads the
// newest events (GET /api/stream/events?limit=50) into the Events card, so the log survives a
// reload; new ones arrive as `stream_event` frames on stream_lifecycle:{id} (forwarded by stream.js
// as `sp:socket-message`). Every line is the server's plain-words message ("You stopped the
// stream", "Encoder disconnected", "<destination>: connection error (...)").
import { get } from './api.js';

const MAX = 50;
const state = { items: [], ids: new Set(), list: null };

function render() {
  const ul = state.list;
  if (!ul) return;
  const rows = state.items.map((e) => {
    const li = document.createElement('li');
    li.dataset.type = e.type;
    li.dataset.id = e.id;
    const t = document.createElement('time');
    const at = new Date(e.created_at);
    t.dateTime = at.toISOString();
    t.textContent = at.toLocaleString();
    li.append(t, ' ', e.message);
    return li;
  });
  if (rows.length === 0) {
    const li = document.createElement('li');
    li.className = 'hint empty';
    li.textContent = 'Encoder connections, starts, stops and destination errors will appear here.';
    rows.push(li);
  }
  ul.replaceChildren(...rows);
}

function add(e, atEnd = false) {
  if (!e || !e.id || !e.message || state.ids.has(e.id)) return;
  state.ids.add(e.id);
  if (atEnd) state.items.push(e);
  else state.items.unshift(e);
  state.items.sort((a, b) => b.created_at - a.created_at);
  while (state.items.length > MAX) state.ids.delete(state.items.pop().id);
}

async function load() {
  try {
    const r = await get(`/api/stream/events?limit=${MAX}`);
    for (const e of r.events || []) add(e, true);
  } catch (e) { /* the live feed still works */ }
  render();
}

function mount() {
  if (state.list) return;
  const feed = document.querySelector('#feed');
  if (!feed) return;
  // the persisted log replaces the page-local feed in the Events card
  const ul = document.createElement('ul');
  ul.id = 'event-log';
  ul.className = 'feed';
  ul.setAttribute('aria-live', 'polite');
  feed.hidden = true;
  feed.after(ul);
  state.list = ul;
  render();
  load();
}

document.addEventListener('sp:socket-message', (ev) => {
  const m = ev.detail;
  if (!m || !m.topic || !m.topic.startsWith('stream_lifecycle:') || m.event !== 'stream_event') return;
  add(m.payload);
  render();
});
document.addEventListener('sp:stream-mounted', mount);
if (window.streampaiStream && window.streampaiStream.mounted) mount();

export function eventLog() { return state; }
