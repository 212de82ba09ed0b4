// charts.js: viewers on the dashboard stream page. A "Viewers" card with the live count (total
// and per platform, from user_stream:{uid}:statistics `viewers` {total, platforms:{p: n}, ts})
// and a chart of the current stream (seeded from GET /api/streams/{id} `viewers`, then live);
// after a stream ends, its summary (duration, peak/average viewers, new followers/subs, chat
// messages, per platform). Each past stream in the history gets a Details button with the same
// summary and its chart. Charts are uPlot (npm `uplot`, pinned in package.json, served from
// /js/vendor/uPlot.esm.js: no CDN).
import uPlot from './vendor/uPlot.esm.js';
import { get } from './api.js';
import { el, subscribeTopic, platformName } from './stream.js';

const $ = (sel, root = document) => root.querySelector(sel);
const POINTS_MAX = 7200; // live points kept (2 h of 1 s samples)
const COLORS = { total: '#e8eaf0', twitch: '#9146ff', youtube: '#ff3b3b', kick: '#53fc18', facebook: '#1877f2' };
const FALLBACK = ['#ffb347', '#00ced1', '#ff69b4', '#9acd32'];

const live = {
  user: null,
  streamId: null,
  state: null,
  series: { ts: [], total: [], platforms: {} },
  chart: null,
  chartKeys: '',
};
window.spCharts = live; // for tests and debugging

function colorOf(key, i) { return COLORS[key] || FALLBACK[i % FALLBACK.length]; }

// uPlot data and series from {ts, total, platforms}.
function plotData(s) {
  const names = Object.keys(s.platforms || {}).sort();
  const data = [s.ts.map((t) => t / 1000), s.total.slice(), ...names.map((n) => s.platforms[n].slice())];
  const series = [{}, { label: 'Total', stroke: colorOf('total', 0), width: 2 },
    ...names.map((n, i) => ({ label: platformName(n), stroke: colorOf(n, i), width: 1.5 }))];
  return { data, series, key: names.join(',') };
}

function chartOpts(width, series) {
  return {
    width, height: 200, series, legend: { show: true },
    scales: { y: { range: (u, min, max) => [0, Math.max(5, Math.ceil(max * 1.1))] } },
    axes: [{ stroke: '#9aa2b5', grid: { stroke: '#262b3a' } }, { stroke: '#9aa2b5', grid: { stroke: '#262b3a' } }],
  };
}

// Draws (or redraws) a chart of s into box; returns the uPlot instance.
export function drawChart(box, s, prev) {
  const { data, series, key } = plotData(s);
  const width = Math.max(280, box.clientWidth || 600);
  if (prev && prev.__key === key) {
    prev.setData(data);
    return prev;
  }
  if (prev) prev.destroy();
  box.replaceChildren();
  const u = new uPlot(chartOpts(width, series), data, box);
  u.__key = key;
  return u;
}

// ---- live viewers ---------------------------------------------------------------------------

function renderNow(v) {
  const total = $('#viewers-total');
  if (!total) return;
  total.textContent = v && typeof v.total === 'number' ? String(v.total) : '–';
  const per = $('#viewers-platforms');
  const plats = (v && v.platforms) || {};
  per.replaceChildren(...Object.keys(plats).sort().map((p) => el('span', { class: 'viewers-platform', 'data-platform': p, text: `${platformName(p)}: ${plats[p]}` })));
}

function redrawLive() {
  const box = $('#viewer-chart');
  if (!box) return;
  if (!live.series.ts.length) { box.hidden = true; return; }
  box.hidden = false;
  live.chart = drawChart(box, live.series, live.chart);
}

function addSample(v) {
  if (!v || typeof v.total !== 'number') return;
  const s = live.series;
  const ts = typeof v.ts === 'number' ? v.ts : Date.now();
  if (s.ts.length && ts <= s.ts[s.ts.length - 1]) return; // a resume may repeat frames
  const n = s.ts.length;
  s.ts.push(ts);
  s.total.push(v.total);
  const plats = v.platforms || {};
  for (const p of Object.keys(plats)) if (!s.platforms[p]) s.platforms[p] = new Array(n).fill(null);
  for (const p of Object.keys(s.platforms)) s.platforms[p].push(typeof plats[p] === 'number' ? plats[p] : null);
  if (s.ts.length > POINTS_MAX) {
    s.ts.shift(); s.total.shift();
    for (const p of Object.keys(s.platforms)) s.platforms[p].shift();
  }
  renderNow(v);
  redrawLive();
}

async function seedLive(streamId) {
  try {
    const r = await get(`/api/streams/${encodeURIComponent(streamId)}`);
    if (live.streamId !== streamId || !r.viewers) return;
    const seeded = r.viewers;
    const s = live.series;
    // samples that arrived over the socket meanwhile stay (newer than the stored ones)
    const after = s.ts.length ? s.ts[0] : Infinity;
    const keep = seeded.ts.map((t, i) => i).filter((i) => seeded.ts[i] < after);
    const merged = { ts: keep.map((i) => seeded.ts[i]), total: keep.map((i) => seeded.total[i]), platforms: {} };
    const names = new Set([...Object.keys(seeded.platforms || {}), ...Object.keys(s.platforms)]);
    for (const p of names) {
      const a = (seeded.platforms || {})[p];
      merged.platforms[p] = keep.map((i) => (a ? a[i] : null)).concat(s.platforms[p] || new Array(s.ts.length).fill(null));
    }
    merged.ts.push(...s.ts);
    merged.total.push(...s.total);
    live.series = merged;
    redrawLive();
  } catch { /* the chart starts from the live samples */ }
}

// ---- summaries ------------------------------------------------------------------------------

function fmtDuration(ms) {
  const s = Math.max(0, Math.round((Number(ms) || 0) / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${String(m).padStart(2, '0')} min` : `${m} min ${String(s % 60).padStart(2, '0')} s`;
}

export function summaryNode(sum) {
  const cell = (k, label, v) => el('div', { 'data-stat': k }, el('strong', { text: String(v) }), el('span', { text: label }));
  const box = el('div', { class: 'stream-summary' },
    el('div', { class: 'summary-grid' },
      cell('duration', 'duration', fmtDuration(sum.duration_ms)),
      cell('peak', 'peak viewers', sum.peak_viewers ?? 0),
      cell('avg', 'average viewers', sum.avg_viewers ?? 0),
      cell('followers', 'new followers', sum.new_followers ?? 0),
      cell('subs', 'new subs', sum.new_subscribers ?? 0),
      cell('chat', 'chat messages', sum.chat_messages ?? 0)));
  const plats = sum.platforms || {};
  const names = Object.keys(plats).sort();
  if (names.length) {
    const cols = [['peak_viewers', 'Peak'], ['avg_viewers', 'Avg'], ['new_followers', 'Follows'], ['new_subscribers', 'Subs'], ['chat_messages', 'Chat']];
    box.append(el('table', { class: 'summary-platforms' },
      el('thead', {}, el('tr', {}, el('th', { text: 'Platform' }), ...cols.map(([, t]) => el('th', { text: t })))),
      el('tbody', {}, ...names.map((p) => el('tr', { 'data-platform': p }, el('td', { text: platformName(p) }),
        ...cols.map(([k]) => el('td', { text: String(plats[p][k] ?? 0) })))))));
  }
  return box;
}

async function showLastSummary(streamId) {
  const slot = $('#last-summary');
  if (!slot) return;
  try {
    const r = await get(`/api/streams/${encodeURIComponent(streamId)}`);
    if (!r.summary) return;
    slot.replaceChildren(el('h3', { text: `Stream summary: ${r.title || 'Untitled'}` }), summaryNode(r.summary));
    slot.hidden = false;
  } catch { /* optional */ }
}

// ---- history details ------------------------------------------------------------------------

async function toggleDetails(li, btn) {
  let box = li.querySelector('.history-details');
  if (box) { box.remove(); btn.textContent = 'Details'; return; }
  btn.textContent = 'Hide';
  box = el('div', { class: 'history-details' }, el('p', { class: 'hint', text: 'Loading…' }));
  li.append(box);
  try {
    const r = await get(`/api/streams/${encodeURIComponent(li.dataset.id)}`);
    const chart = el('div', { class: 'viewer-chart history-chart' });
    box.replaceChildren(summaryNode(r.summary || {}), chart);
    if (r.viewers && r.viewers.ts && r.viewers.ts.length) drawChart(chart, r.viewers, null);
    else chart.replaceChildren(el('p', { class: 'hint', text: 'No viewer samples for this stream.' }));
  } catch (e) {
    box.replaceChildren(el('p', { class: 'form-error', text: e.message }));
  }
}

function decorateHistory() {
  const list = $('#history');
  if (!list) return;
  for (const li of list.querySelectorAll('li[data-id]')) {
    if (li.querySelector('.history-more')) continue;
    const btn = el('button', { type: 'button', class: 'button small history-more', text: 'Details' });
    btn.addEventListener('click', () => toggleDetails(li, btn));
    li.append(' ', btn);
  }
}

// ---- mount ----------------------------------------------------------------------------------

function onStream(s) {
  if (!s) return;
  const wasLive = live.state === 'streaming';
  const prevId = live.streamId;
  live.state = s.state;
  if (s.state === 'streaming' && s.stream_id && s.stream_id !== live.streamId) {
    live.streamId = s.stream_id;
    live.series = { ts: [], total: [], platforms: {} };
    if (live.chart) { live.chart.destroy(); live.chart = null; }
    $('#last-summary').hidden = true;
    redrawLive();
    seedLive(s.stream_id);
  }
  if (s.stats && s.stats.viewers && s.state === 'streaming') renderNow(s.stats.viewers);
  if (wasLive && s.state !== 'streaming' && prevId) {
    renderNow(null);
    setTimeout(() => showLastSummary(prevId), 500); // after the final peak/avg write
  }
}

function mount(user, page) {
  if (live.user) return;
  live.user = user;
  const card = el('div', { class: 'card viewers-card', id: 'viewers-card' },
    el('h2', { text: 'Viewers' }),
    el('div', { class: 'viewers-now' },
      el('span', { id: 'viewers-total', class: 'viewers-total', text: '–' }),
      el('span', { id: 'viewers-platforms', class: 'viewers-platforms' })),
    el('div', { id: 'viewer-chart', class: 'viewer-chart', hidden: true }),
    el('div', { id: 'last-summary', class: 'last-summary', hidden: true }));
  const main = $('#stream-page .stream-main');
  const firstGrid = main && main.querySelector('.stream-grid');
  if (firstGrid) firstGrid.after(card); else if (main) main.append(card);
  subscribeTopic(`user_stream:${user.id}:statistics`, (m) => { if (m.event === 'viewers') addSample(m.payload); });
  document.addEventListener('sp:stream', (ev) => onStream(ev.detail));
  if (page && page.status) onStream(page.status);
  const hist = $('#history');
  if (hist) new MutationObserver(decorateHistory).observe(hist, { childList: true });
  decorateHistory();
  window.addEventListener('resize', () => { if (live.chart) live.chart.setSize({ width: Math.max(280, $('#viewer-chart').clientWidth), height: 200 }); });
}

document.addEventListener('sp:stream-mounted', (ev) => mount(ev.detail.user, ev.detail.page));
if (window.streampaiStream && window.streampaiStream.mounted) mount(window.streampaiStream.user, window.streampaiStream);
