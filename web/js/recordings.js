// recordings.js: recordings in the stream history (GET /api/recordings): each past stream
// with a recording shows its size, duration and a download link; recordings that match no
// stream are listed below; the user's recording setting (PUT /api/stream/recording) and the
// current recording's state (an error such as a full disk shows here).
import { get, put } from './api.js';
import { el, formatBytes } from './stream.js';

const $ = (sel, root = document) => root.querySelector(sel);
const rec = { mounted: false, list: [], setting: null, busy: false };

function duration(ms) {
  const s = Math.round((ms || 0) / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
}

function recNode(r) {
  const parts = [el('span', { text: `Recording: ${formatBytes(r.bytes)}, ${duration(r.duration_ms)}` })];
  if (r.state === 'recording' || r.state === 'paused') parts.push(el('span', { class: 'hint', text: ` (${r.state})` }));
  if (r.error) parts.push(el('span', { class: 'form-error', text: ` ${r.error}` }));
  if (r.playback && r.playback.hls) {
    parts.push(' ', el('a', { href: r.playback.hls, target: '_blank', rel: 'noopener', text: 'Watch' }));
  } else if (r.bytes > 0) {
    parts.push(' ', el('a', { class: 'button small', href: `/api/recordings/${encodeURIComponent(r.id)}/file`, download: '', text: 'Download' }));
  }
  return el('div', { class: 'recording', 'data-rec': r.id }, ...parts);
}

function decorate() {
  const hist = $('#history');
  if (!hist) return;
  const byStream = new Map();
  for (const r of rec.list) if (r.stream_id && !byStream.has(r.stream_id)) byStream.set(r.stream_id, r);
  for (const li of hist.querySelectorAll('li[data-id]')) {
    const r = byStream.get(li.dataset.id);
    const old = li.querySelector(':scope > .recording');
    if (!r) { if (old) old.remove(); continue; }
    if (old && old.dataset.rec === r.id) continue;
    if (old) old.remove();
    li.append(recNode(r));
  }
  let other = $('#recordings-other');
  const loose = rec.list.filter((r) => !r.stream_id);
  if (!loose.length) { if (other) other.remove(); return; }
  if (!other) {
    other = el('div', { id: 'recordings-other', class: 'recordings-other' });
    hist.after(other);
  }
  other.replaceChildren(el('h3', { text: 'Other recordings' }),
    el('ul', {}, ...loose.map((r) => el('li', {}, el('span', { text: new Date(r.started_ms).toLocaleString() + ' ' }), recNode(r)))));
}

function settingNode() {
  const s = rec.setting;
  const sel = el('select', { id: 'recording-mode', 'aria-label': 'Recording' },
    el('option', { value: '', text: `Server default (${s.default})` }),
    el('option', { value: 'automatic', text: 'Record every stream' }),
    el('option', { value: 'off', text: 'Do not record' }));
  sel.value = s.user_mode || '';
  sel.addEventListener('change', async () => {
    try {
      rec.setting = await put('/api/stream/recording', { mode: sel.value || null });
      render();
    } catch (e) { msg.textContent = e.message; }
  });
  const msg = el('span', { class: 'form-error' });
  const cur = s.current;
  const state = cur && cur.error ? el('span', { class: 'form-error', text: cur.error })
    : cur && cur.state === 'recording' ? el('span', { class: 'hint', text: `Recording now (${formatBytes(cur.bytes)})` })
      : el('span', { class: 'hint', text: s.backend === 'relay' && s.retentionDays ? `Recordings are kept ${s.retentionDays} days.` : '' });
  return el('div', { id: 'recording-setting', class: 'recording-setting' },
    el('label', { for: 'recording-mode', text: 'Recording ' }), sel, ' ', state, ' ', msg);
}

function render() {
  const hist = $('#history');
  if (!hist || !rec.setting) return;
  const old = $('#recording-setting');
  const node = settingNode();
  if (old) old.replaceWith(node); else hist.before(node);
}

async function refresh() {
  if (rec.busy) return;
  rec.busy = true;
  try {
    const [l, s] = await Promise.all([get('/api/recordings'), get('/api/stream/recording')]);
    rec.list = l.recordings || [];
    rec.setting = s;
    render();
    decorate();
  } catch { /* recordings are optional on the page */ }
  rec.busy = false;
}

function mount() {
  if (rec.mounted) return;
  rec.mounted = true;
  const hist = $('#history');
  if (hist) new MutationObserver(decorate).observe(hist, { childList: true });
  document.addEventListener('sp:stream', (ev) => {
    const st = ev.detail && ev.detail.state;
    if (st !== rec.lastState) { rec.lastState = st; setTimeout(refresh, 1500); }
  });
  refresh();
}

document.addEventListener('sp:stream-mounted', mount);
if (window.streampaiStream && window.streampaiStream.mounted) mount();
