// widgets/alertbox.js: the AlertBox OBS page (/widgets/alertbox?token=...). Transparent,
// 1920x1080-safe, nothing loaded from outside the server. Reads its config with the token,
// joins alertbox:{uid} and widget_config:alertbox:{uid} on /socket?widget_token=, and shows
// each `show` frame (one at a time, in arrival order) for its duration_ms with the type's
// in/out animation, image, sound and message template; `skip` hides the one on screen, `clear`
// drops what waits here, `config` applies a new config without a reload. The message is
// rendered here from the type's template (variables {name} {count} {amount} {currency}
// {message} {tier} {platform} {type}) with textContent only. As the dashboard's live preview
// (?preview=1 in a same-origin iframe) it also takes configs and fake shows from its parent.
import {
  el, isPreview, localUrl, startWidget, renderTemplate, maskText,
  safeColor, safeFont, clampInt, ALERT_TYPES,
} from './common.js';

const ANIMS = new Set(['fade', 'slide_up', 'slide_down', 'slide_left', 'slide_right', 'zoom', 'bounce', 'none']);
const ANIM_MS = 600;
const SEEN_MAX = 500;

const w = {
  config: null,
  userId: null,
  queue: [],        // show payloads waiting here (the server paces; this covers resume bursts)
  current: null,    // {payload, node, hideTimer, outTimer, audio}
  seen: new Set(),  // keys already shown or queued (a resume may repeat frames)
  shown: 0,
  socket: null,
  status: 'starting',
};
window.spWidget = w; // for tests and debugging

const stage = document.getElementById('stage');

function typeCfg(type) {
  const t = w.config && w.config.types && w.config.types[type];
  return t && typeof t === 'object' ? t : {};
}

function applyStyle() {
  const c = w.config || {};
  const s = stage.style;
  s.setProperty('--font', safeFont(c.font));
  s.setProperty('--font-size', `${clampInt(c.font_size, 8, 200, 36)}px`);
  s.setProperty('--text-color', safeColor(c.text_color, '#ffffff'));
  s.setProperty('--accent-color', safeColor(c.accent_color, '#9146ff'));
  stage.dataset.layout = c.layout === 'beside' ? 'beside' : 'above';
}

export function applyConfig(cfg) {
  if (!cfg || typeof cfg !== 'object') return;
  w.config = cfg;
  applyStyle();
  if (w.current) fillAlert(w.current.node, w.current.payload); // the alert on screen follows
  document.body.dataset.configApplied = String(Date.now());
}

// Message text of a show: the type's template rendered with the alert, as the server renders
// `text` ({count} is the alert's count, empty when it has none; a merged follow reads
// "{count} new followers!").
function messageParts(p) {
  const a = p.alert || {};
  const count = typeof a.count === 'number' ? a.count : undefined;
  let tpl = typeCfg(a.type).template;
  if (a.type === 'follow' && typeof p.count === 'number' && p.count > 1) tpl = '{count} new followers!';
  if (typeof tpl !== 'string' || !tpl) return p.text ? [{ text: String(p.text) }] : renderTemplate('{name}', a, count);
  return renderTemplate(tpl, a, count);
}

function fillAlert(node, p) {
  const a = p.alert || {};
  const tc = typeCfg(a.type);
  const img = localUrl(tc.image_url);
  const body = el('div', { class: 'alert-body' });
  const text = el('div', { class: 'alert-text' });
  for (const part of messageParts(p)) {
    text.append(part.var ? el('span', { class: 'var', 'data-var': part.var, text: part.value }) : part.text);
  }
  body.append(text);
  const showMsg = w.config ? w.config.show_message !== false : true;
  if (showMsg && typeof a.message === 'string' && a.message.trim()) {
    body.append(el('div', { class: 'alert-message', text: maskText(a.message, w.config && w.config.filter) }));
  }
  const kids = [];
  if (img) kids.push(el('img', { class: 'alert-image', src: img, alt: '' }));
  kids.push(body);
  node.replaceChildren(...kids);
}

function anim(name) { return ANIMS.has(name) ? name : 'fade'; }

function playSound(p) {
  const tc = typeCfg(p.alert && p.alert.type);
  const url = localUrl(tc.sound_url);
  if (!url) return null;
  try {
    const audio = new Audio(url);
    audio.volume = clampInt(tc.volume, 0, 100, 50) / 100;
    const r = audio.play();
    if (r && r.catch) r.catch(() => { /* autoplay refused (a normal browser): silent */ });
    return audio;
  } catch { return null; }
}

function showNext() {
  if (w.current || !w.queue.length) return;
  const p = w.queue.shift();
  const a = p.alert || {};
  const tc = typeCfg(a.type);
  const node = el('div', {
    class: `alert in-${anim(tc.animation_in)}`, 'data-key': String(p.key), 'data-type': a.type || '',
    role: 'status', 'aria-live': 'polite',
  });
  node.style.setProperty('--anim-ms', `${ANIM_MS}ms`);
  fillAlert(node, p);
  stage.replaceChildren(node);
  const dur = clampInt(p.duration_ms, 500, 120000, clampInt(tc.duration_ms, 1000, 60000, 5000));
  const cur = { payload: p, node, audio: playSound(p), hideTimer: null, outTimer: null };
  cur.hideTimer = setTimeout(() => hideCurrent(), dur);
  w.current = cur;
  w.shown++;
  document.body.dataset.showing = String(p.key);
}

function hideCurrent(now = false) {
  const cur = w.current;
  if (!cur) return;
  clearTimeout(cur.hideTimer);
  if (cur.outTimer) return; // already leaving
  const out = anim(typeCfg(cur.payload.alert && cur.payload.alert.type).animation_out);
  const finish = () => {
    if (cur.audio) { try { cur.audio.pause(); } catch { /* ignore */ } }
    if (cur.node.parentNode) cur.node.remove();
    if (w.current === cur) w.current = null;
    delete document.body.dataset.showing;
    showNext();
  };
  if (now || out === 'none') { cur.outTimer = -1; finish(); return; }
  cur.node.className = `alert out-${out}`;
  cur.outTimer = setTimeout(finish, ANIM_MS);
}

export function onShow(p) {
  if (!p || typeof p !== 'object' || !p.alert) return;
  const key = String(p.key);
  if (w.seen.has(key)) return;
  w.seen.add(key);
  if (w.seen.size > SEEN_MAX) w.seen.delete(w.seen.values().next().value);
  const a = p.alert;
  if (!ALERT_TYPES.includes(a.type)) return;
  if (typeCfg(a.type).enabled === false && !p.test && !p.replay) return;
  w.queue.push(p);
  showNext();
}

function onSkip(p) {
  const key = p && p.key !== undefined ? String(p.key) : null;
  if (w.current && (key === null || String(w.current.payload.key) === key)) hideCurrent(true);
  else if (key !== null) w.queue = w.queue.filter((q) => String(q.key) !== key);
}

function onClear() { w.queue = []; }

function onFrame(m) {
  if (m.event === 'config' && m.topic.startsWith('widget_config:')) applyConfig(m.payload);
  else if (m.event === 'show') onShow(m.payload);
  else if (m.event === 'skip') onSkip(m.payload);
  else if (m.event === 'clear') onClear();
  else if (m.event === 'gap') { /* history lost while away: nothing to catch up on screen */ }
}

function previewBridge() {
  if (!isPreview()) return;
  window.addEventListener('message', (ev) => {
    if (ev.origin !== location.origin || ev.source !== window.parent) return;
    const d = ev.data;
    if (!d || typeof d !== 'object') return;
    if (d.type === 'config') applyConfig(d.config);
    else if (d.type === 'show') onShow(d.payload);
    else if (d.type === 'skip') onSkip(d.payload);
    else if (d.type === 'clear') { onClear(); hideCurrent(true); }
  });
  window.parent.postMessage({ type: 'widget-ready', widget: 'alertbox' }, location.origin);
}

async function main() {
  applyStyle();
  previewBridge();
  await startWidget(w, 'alertbox', 'alertbox', applyConfig, onFrame);
}

main();
