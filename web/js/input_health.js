// input_health.js: the encoder's input health on the dashboard stream page (GET /api/stream
// `input.health`, pushed on user_stream:{uid} state_changed): video codec, size, frame rate,
// bitrate and keyframe interval, audio codec, sample rate, channels and bitrate, uptime, and
// the server's warnings (keyframe interval over 4 s, bitrate over a destination's limit, audio
// missing). Null health (not connected, or Cloudflare Stream, whose API reports none) shows why.
import { el } from './stream.js';

const $ = (sel, root = document) => root.querySelector(sel);

function fmt(v, unit, digits = 0) {
  return typeof v === 'number' ? `${v.toFixed(digits)}${unit}` : '—';
}

function uptime(ms) {
  if (typeof ms !== 'number') return '—';
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

function row(label, value, key) {
  return el('div', { class: 'health-row' }, el('dt', { text: label }), el('dd', { text: value, 'data-k': key }));
}

export function renderHealth(card, status) {
  const input = status && status.input;
  const h = input ? input.health : null;
  const body = $('.health-body', card);
  const warn = $('.health-warnings', card);
  warn.replaceChildren();
  if (!input || input.status !== 'connected') {
    body.replaceChildren(el('p', { class: 'muted', text: 'Shown while your encoder is connected.' }));
    card.dataset.state = 'idle';
    return;
  }
  if (!h) {
    const msg = input.backend === 'cloudflare'
      ? 'Cloudflare Stream does not report input health.'
      : 'Measuring… (the first values come within a few seconds)';
    body.replaceChildren(el('p', { class: 'muted', text: msg }));
    card.dataset.state = 'none';
    return;
  }
  card.dataset.state = 'live';
  const v = h.video;
  const a = h.audio;
  body.replaceChildren(el('dl', { class: 'health-grid' },
    row('Video', v ? v.codec : 'none', 'video-codec'),
    row('Resolution', v && v.width && v.height ? `${v.width}×${v.height}` : '—', 'resolution'),
    row('Frame rate', v ? fmt(v.fps, ' fps', 1) : '—', 'fps'),
    row('Video bitrate', v ? fmt(v.bitrateKbps, ' kbit/s') : '—', 'video-bitrate'),
    row('Keyframe interval', v && typeof v.keyframeIntervalMs === 'number' ? fmt(v.keyframeIntervalMs / 1000, ' s', 1) : '—', 'keyframe'),
    row('Audio', a ? a.codec : 'none', 'audio-codec'),
    row('Audio format', a ? `${fmt(a.sampleRate && a.sampleRate / 1000, ' kHz', 1)}, ${a.channels === 1 ? 'mono' : a.channels === 2 ? 'stereo' : a.channels ? `${a.channels} ch` : '—'}` : '—', 'audio-format'),
    row('Audio bitrate', a ? fmt(a.bitrateKbps, ' kbit/s') : '—', 'audio-bitrate'),
    row('Total bitrate', fmt(h.bitrateKbps, ' kbit/s'), 'bitrate'),
    row('Uptime', uptime(h.uptimeMs), 'uptime'),
    row('Late frames', typeof h.lateFrames === 'number' ? String(h.lateFrames) : '—', 'late')));
  for (const w of h.warnings || []) {
    warn.append(el('li', { class: 'health-warning', 'data-code': w.code, text: w.message }));
  }
}

function mount() {
  if ($('#input-health')) return;
  const card = el('section', { id: 'input-health', class: 'card input-health', 'aria-labelledby': 'input-health-title' },
    el('h2', { id: 'input-health-title', text: 'Input health' }),
    el('ul', { class: 'health-warnings', role: 'alert' }),
    el('div', { class: 'health-body' }));
  const anchor = $('#input-status');
  const host = anchor ? anchor.closest('section, .card') : null;
  if (host) host.after(card); else ($('#app') || document.body).append(card);
  return card;
}

document.addEventListener('sp:stream-mounted', (ev) => {
  const card = mount();
  if (card) renderHealth(card, ev.detail.page.status);
});
document.addEventListener('sp:stream', (ev) => {
  const card = $('#input-health');
  if (card) renderHealth(card, ev.detail);
});
