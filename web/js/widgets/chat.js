// widgets/chat.js: the chat overlay OBS page (/widgets/chat?token=...). Transparent, newest
// line at the bottom, at most max_messages lines, each fading out after lifetime_ms (0 =
// never). A line: platform icon (local SVG), badges, the author in their colour, the text with
// emotes as images (only the emote_url the server sent, http(s) only) and mentions. Hidden:
// other platforms than `platforms` (empty = all), everything but Twitch in Twitch-safe mode,
// `!commands`, authors in `bots`, messages with a link or a filter word. `deleted` removes a
// line; `config` (widget_config:chat:{uid}) re-applies the config to the lines on screen.
// As the dashboard's live preview (?preview=1) it also takes configs and fake messages from its
// parent window (postMessage).
import {
  el, isPreview, startWidget, hasLink, hasWord, safeColor, safeFont,
  clampInt, PLATFORMS,
} from './common.js';

const FADE_MS = 1000;
const KEEP_MAX = 100; // raw messages kept to re-apply a new config
const BADGES = {
  broadcaster: 'HOST', moderator: 'MOD', vip: 'VIP', subscriber: 'SUB', founder: 'SUB',
  member: 'MEMBER', verified: '✓', partner: '✓', staff: 'STAFF',
};

const w = {
  config: {},
  userId: null,
  kept: [],          // [{m, at}] newest last
  lines: new Map(),  // id -> {li, fadeTimer, removeTimer}
  seen: new Set(),
  socket: null,
  status: 'starting',
};
window.spWidget = w; // for tests and debugging

const list = document.getElementById('chat');
const PALETTE = ['#ff4500', '#1e90ff', '#2e8b57', '#daa520', '#ff69b4', '#9acd32', '#00ced1', '#ff7f50', '#b22222', '#8a2be2'];

function nameColor(a) {
  if (a && typeof a.color === 'string' && /^#[0-9a-fA-F]{6}$/.test(a.color)) return a.color;
  const s = String((a && (a.name || a.display_name)) || '');
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

function applyStyle() {
  const c = w.config || {};
  const s = list.style;
  s.setProperty('--font', safeFont(c.font));
  s.setProperty('--font-size', `${clampInt(c.font_size, 8, 120, 24)}px`);
  s.setProperty('--text-color', safeColor(c.text_color, '#ffffff'));
  const bg = typeof c.background === 'string' && /^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$/.test(c.background) ? c.background : 'transparent';
  s.setProperty('--chat-bg', bg);
}

// Whether the config lets this message onto the overlay.
export function visible(m, c = w.config) {
  if (!m || typeof m !== 'object') return false;
  const platform = String(m.platform || '');
  if (c.twitch_safe) { if (platform !== 'twitch') return false; }
  else if (Array.isArray(c.platforms) && c.platforms.length && !c.platforms.includes(platform)) return false;
  const text = typeof m.text === 'string' ? m.text : '';
  if (c.hide_commands !== false && text.trimStart().startsWith('!')) return false;
  const a = m.author || {};
  const names = [a.name, a.display_name].filter((n) => typeof n === 'string').map((n) => n.toLowerCase());
  if (Array.isArray(c.bots) && c.bots.some((b) => typeof b === 'string' && names.includes(b.toLowerCase()))) return false;
  const f = c.filter || {};
  if (f.links && hasLink(text)) return false;
  if (hasWord(text, f.words)) return false;
  return true;
}

function fragmentsOf(m) {
  if (Array.isArray(m.fragments) && m.fragments.length) return m.fragments;
  return [{ type: 'text', text: typeof m.text === 'string' ? m.text : '' }];
}

function lineNode(m) {
  const c = w.config || {};
  const a = m.author || {};
  const platform = PLATFORMS.includes(m.platform) ? m.platform : null;
  const li = el('li', { class: 'chat-line', 'data-id': String(m.id), 'data-platform': String(m.platform || '') });
  if (c.show_platform_icons !== false && platform) {
    li.append(el('img', { class: 'pf', src: `/widgets/icons/${platform}.svg`, alt: platform }));
  }
  if (c.show_badges !== false && Array.isArray(a.badges)) {
    for (const b of a.badges.slice(0, 4)) {
      const id = b && typeof b.set_id === 'string' ? b.set_id : '';
      if (BADGES[id]) li.append(el('span', { class: 'badge', 'data-badge': id, text: BADGES[id] }));
    }
  }
  const author = el('span', { class: 'author', text: String(a.display_name || a.name || '?') });
  author.style.color = nameColor(a);
  li.append(author, el('span', { class: 'sep', text: ': ' }));
  const text = el('span', { class: 'text' });
  for (const f of fragmentsOf(m)) {
    const t = f && typeof f.text === 'string' ? f.text : '';
    if (f && f.type === 'emote' && typeof f.emote_url === 'string' && /^https?:\/\//i.test(f.emote_url)) {
      text.append(el('img', { class: 'emote', src: f.emote_url, alt: t, title: t }));
    } else if (f && f.type === 'mention') {
      text.append(el('span', { class: 'mention', text: t }));
    } else {
      text.append(t);
    }
  }
  li.append(text);
  return li;
}

function dropLine(id) {
  const l = w.lines.get(id);
  if (!l) return;
  clearTimeout(l.fadeTimer);
  clearTimeout(l.removeTimer);
  l.li.remove();
  w.lines.delete(id);
}

function addLine(m, at) {
  const id = String(m.id);
  if (w.lines.has(id) || !visible(m)) return;
  const lifetime = clampInt(w.config.lifetime_ms, 0, 3600000, 30000);
  const left = lifetime > 0 ? lifetime - (Date.now() - at) : Infinity;
  if (left <= 0) return;
  const li = lineNode(m);
  const l = { li, fadeTimer: null, removeTimer: null };
  if (Number.isFinite(left)) {
    l.fadeTimer = setTimeout(() => {
      li.classList.add('fading');
      l.removeTimer = setTimeout(() => {
        dropLine(id);
        w.kept = w.kept.filter((k) => String(k.m.id) !== id); // faded out for good
      }, FADE_MS);
    }, left);
  }
  list.append(li);
  w.lines.set(id, l);
  const max = clampInt(w.config.max_messages, 1, 100, 10);
  while (w.lines.size > max) dropLine(w.lines.keys().next().value);
}

export function onMessage(m) {
  if (!m || typeof m !== 'object' || m.id === undefined || m.id === null) return;
  const id = String(m.id);
  if (w.seen.has(id)) return; // a resume may repeat frames
  w.seen.add(id);
  if (w.seen.size > 2000) w.seen.delete(w.seen.values().next().value);
  const at = Date.now();
  w.kept.push({ m, at });
  if (w.kept.length > KEEP_MAX) w.kept.shift();
  addLine(m, at);
}

function onDeleted(p) {
  if (!p || p.id === undefined) return;
  const id = String(p.id);
  w.kept = w.kept.filter((k) => String(k.m.id) !== id);
  dropLine(id);
}

// A new config: restyle and rebuild the lines from the kept messages still within lifetime.
export function applyConfig(cfg) {
  if (!cfg || typeof cfg !== 'object') return;
  w.config = cfg;
  applyStyle();
  for (const id of [...w.lines.keys()]) dropLine(id);
  for (const k of w.kept) addLine(k.m, k.at);
  document.body.dataset.configApplied = String(Date.now());
}

function onFrame(m) {
  if (m.event === 'config' && m.topic.startsWith('widget_config:')) applyConfig(m.payload);
  else if (m.event === 'message') onMessage(m.payload);
  else if (m.event === 'deleted') onDeleted(m.payload);
}

function previewBridge() {
  if (!isPreview()) return;
  window.addEventListener('message', (ev) => {
    if (ev.origin !== location.origin || ev.source !== window.parent) return;
    const d = ev.data;
    if (!d || typeof d !== 'object') return;
    if (d.type === 'config') applyConfig(d.config);
    else if (d.type === 'message') onMessage(d.payload);
    else if (d.type === 'deleted') onDeleted(d.payload);
  });
  window.parent.postMessage({ type: 'widget-ready', widget: 'chat' }, location.origin);
}

async function main() {
  applyStyle();
  previewBridge();
  await startWidget(w, 'chat', 'chat overlay', applyConfig, onFrame);
}

main();
