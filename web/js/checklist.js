// checklist.js: the first-run checklist on the stream page and the empty states of its
// lists. Three steps, each ticked from real state (never from a click):
//   1. "Point OBS at the ingest"      the live input has connected at least once
//                                     (input.status connected/disconnected) or a stream exists
//   2. "Add or connect a destination" the user has at least one destination
//                                     (custom RTMP or a connected platform account)
//   3. "Go live"                      the stream is live now or a past stream exists
// It re-evaluates on every stream update (sp:stream), when the destination list changes and
// when a stream ends. Once all three are done it says so and can be dismissed (remembered
// in localStorage per user). checklistSteps() is pure, for tests.
import { get } from './api.js';

export function checklistSteps({ status, destinations, hadStream }) {
  const input = status && status.input ? status.input.status : 'none';
  const state = status ? status.state : 'offline';
  const live = state === 'streaming' || state === 'ending';
  return [
    {
      id: 'ingest', title: 'Point OBS at the ingest',
      hint: 'In OBS: Settings > Stream > Service "Custom", paste the RTMP URL and stream key shown under Ingest, then Start Streaming.',
      done: input === 'connected' || input === 'disconnected' || state === 'ready' || live || !!hadStream,
    },
    {
      id: 'destination', title: 'Add or connect a destination',
      hint: 'Connect Twitch or YouTube under Platforms, or add a custom RTMP(S) server under Destinations.',
      done: Array.isArray(destinations) && destinations.length > 0,
    },
    {
      id: 'live', title: 'Go live',
      hint: 'When OBS is connected the stream is Ready: tick the destinations and press Start Stream.',
      done: live || !!hadStream,
    },
  ];
}

// Empty states: what each list will show once there is something.
const EMPTY = {
  '#feed': 'Stream events will appear here: the encoder connecting or dropping, destinations going live or failing, start and stop.',
  '#history': 'Your past streams will appear here, with their title, start time and how they ended.',
};

const st = { user: null, page: null, hadStream: false, root: null, observer: null };

function dismissKey() { return `sp:checklist-dismissed:${st.user ? st.user.id : ''}`; }

function node(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render() {
  if (!st.root || !st.page) return;
  const steps = checklistSteps({ status: st.page.status, destinations: st.page.destinations, hadStream: st.hadStream });
  const done = steps.filter((s) => s.done).length;
  const all = done === steps.length;
  let dismissed = false;
  try { dismissed = all && localStorage.getItem(dismissKey()) === '1'; } catch { /* private mode */ }
  st.root.hidden = dismissed;
  st.root.dataset.done = String(done);
  st.root.querySelector('.checklist-progress').textContent = all
    ? 'All set: you have streamed with Streampai.'
    : `${done} of ${steps.length} done`;
  st.root.querySelector('.checklist-dismiss').hidden = !all;
  const ol = st.root.querySelector('ol');
  ol.replaceChildren(...steps.map((s) => {
    const li = node('li', 'checklist-step');
    li.dataset.step = s.id;
    li.dataset.done = s.done ? 'true' : 'false';
    const mark = node('span', 'checklist-mark', s.done ? '✓' : '');
    mark.setAttribute('aria-hidden', 'true');
    const body = node('div', 'checklist-body');
    body.append(node('strong', 'checklist-title', s.title));
    if (!s.done) body.append(node('p', 'hint', s.hint));
    const sr = node('span', 'sr-only', s.done ? ' (done)' : ' (to do)');
    li.append(mark, body, sr);
    return li;
  }));
}

async function loadHadStream() {
  try {
    const r = await get('/api/streams?limit=1');
    st.hadStream = Array.isArray(r.streams) && r.streams.length > 0;
  } catch { /* keep what we have */ }
  render();
}

function mount(user, page) {
  if (st.root || !document.querySelector('#stream-page')) return;
  st.user = user;
  st.page = page;
  const root = node('section', 'card checklist');
  root.id = 'checklist';
  root.setAttribute('aria-labelledby', 'checklist-title');
  const h = node('h2', null, 'Get started');
  h.id = 'checklist-title';
  const progress = node('p', 'hint checklist-progress');
  progress.setAttribute('role', 'status');
  const dismiss = node('button', 'button small checklist-dismiss', 'Hide');
  dismiss.type = 'button';
  dismiss.addEventListener('click', () => {
    try { localStorage.setItem(dismissKey(), '1'); } catch { /* private mode */ }
    root.hidden = true;
  });
  root.append(h, progress, node('ol', 'checklist-steps'), dismiss);
  const main = document.querySelector('#stream-page .stream-main') || document.querySelector('#stream-page');
  main.prepend(root);
  st.root = root;
  for (const [sel, text] of Object.entries(EMPTY)) {
    const list = document.querySelector(sel);
    if (list) list.dataset.empty = text;
  }
  // the destination list changes without a stream update (add / remove)
  const dests = document.querySelector('#destinations');
  if (dests) {
    st.observer = new MutationObserver(() => render());
    st.observer.observe(dests, { childList: true });
  }
  render();
  loadHadStream();
}

document.addEventListener('sp:stream', (ev) => {
  if (!st.root) return;
  const s = ev.detail;
  // a stream that ended (or went live) counts as "streamed once"
  if (s && (s.state === 'streaming' || s.state === 'ending') && !st.hadStream) st.hadStream = true;
  render();
});
document.addEventListener('sp:stream-mounted', (ev) => mount(ev.detail.user, ev.detail.page));
if (window.streampaiStream && window.streampaiStream.mounted) mount(window.streampaiStream.user, window.streampaiStream);
