// chat.js: the unified chat column of the stream page (<aside id="chat-column">).
// Every connected platform's chat arrives on the socket topic chat:{user_id} (events `message`
// and `deleted`), alerts on alertbox:{user_id} (event `alert`, shown as highlighted lines).
// Lines are built with createElement/textContent only: nothing from a message is ever parsed
// as HTML. The list keeps the last MAX_LINES lines and stays pinned to the bottom unless the
// reader scrolled up. The send box posts POST /api/chat {text, platforms?, reply_to?} and
// shows each platform's answer under the sent line.
import { post, ApiError } from './api.js';
import { el, platformIcon, platformName, subscribeTopic } from './stream.js';

const $ = (sel, root = document) => root.querySelector(sel);

export const MAX_LINES = 500;
export const MAX_TEXT = 500;
const PIN_SLACK = 32; // px from the bottom that still counts as "at the bottom"

const chat = {
  user: null,
  lines: new Map(),   // message id -> {li, msg}
  platforms: [],      // connected platform rows (from platforms.js)
  replyTo: null,      // {id, platform, name}
  unread: 0,
  streaming: false,
  sending: false,
};

// Readable fallback colours for authors without one (picked by a hash of the name).
const PALETTE = ['#ff7f50', '#9acd32', '#1e90ff', '#ff69b4', '#daa520', '#5f9ea0', '#d2691e', '#b388ff', '#2ecc71', '#ff4500'];
export function authorColor(author) {
  const c = author && typeof author.color === 'string' ? author.color : '';
  if (/^#[0-9a-fA-F]{6}$/.test(c)) return c;
  const key = String((author && (author.name || author.display_name || author.id)) || '');
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

// Only http(s) image URLs become <img>; anything else stays text.
function safeImageUrl(u) {
  if (typeof u !== 'string' || u.length > 2048) return null;
  try {
    const url = new URL(u, location.href);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

const BADGE_LABEL = { broadcaster: 'Broadcaster', moderator: 'Moderator', vip: 'VIP', subscriber: 'Subscriber', founder: 'Founder', partner: 'Verified', staff: 'Staff', member: 'Member', owner: 'Owner' };
const BADGE_SHORT = { broadcaster: 'host', moderator: 'mod', vip: 'vip', subscriber: 'sub', founder: 'founder', partner: '✓', staff: 'staff', member: 'member', owner: 'owner' };

function str(v, max = 8192) { return typeof v === 'string' ? v.slice(0, max) : ''; }

function textNodes(m) {
  const frags = Array.isArray(m.fragments) && m.fragments.length ? m.fragments : [{ type: 'text', text: m.text }];
  const out = [];
  for (const f of frags) {
    if (!f || typeof f !== 'object') continue;
    const t = str(f.text);
    if (f.type === 'emote') {
      const src = safeImageUrl(f.emote_url);
      if (src) {
        out.push(el('img', { class: 'chat-emote', src, alt: t, title: t, loading: 'lazy', referrerpolicy: 'no-referrer' }));
        continue;
      }
    }
    if (f.type === 'mention') { out.push(el('span', { class: 'chat-mention', text: t })); continue; }
    out.push(document.createTextNode(t));
  }
  return out;
}

function timeNode(ts) {
  const d = new Date(typeof ts === 'number' ? ts : Date.now());
  return el('time', { class: 'chat-time', datetime: d.toISOString(), text: d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) });
}

function messageNode(m) {
  const a = m.author && typeof m.author === 'object' ? m.author : {};
  const name = str(a.display_name, 256) || str(a.name, 256) || 'someone';
  const li = el('li', { class: 'chat-line', 'data-id': str(m.id, 128), 'data-platform': str(m.platform, 15) });
  li.append(timeNode(m.ts), platformIcon(str(m.platform, 15)));
  for (const b of (Array.isArray(a.badges) ? a.badges : []).slice(0, 4)) {
    const set = b && typeof b.set_id === 'string' ? b.set_id : '';
    if (BADGE_SHORT[set]) li.append(el('span', { class: 'chat-badge', 'data-badge': set, title: BADGE_LABEL[set], text: BADGE_SHORT[set] }));
  }
  const author = el('span', { class: 'chat-author', text: name });
  author.style.color = authorColor(a);
  if (a.name && a.name !== name) author.title = `@${a.name}`;
  li.append(author);
  if (m.reply_to) {
    const parent = chat.lines.get(m.reply_to);
    const pname = parent ? parent.name : '';
    li.append(el('span', { class: 'chat-replying', text: pname ? ` ↪ ${pname}` : ' ↪' }));
  }
  li.append(el('span', { class: 'chat-sep', text: ': ' }), el('span', { class: 'chat-text' }, ...textNodes(m)));
  const reply = el('button', {
    type: 'button', class: 'chat-reply', 'aria-label': `Reply to ${name}`, title: `Reply to ${name} on ${platformName(m.platform)}`, text: 'Reply',
  });
  reply.addEventListener('click', () => setReply({ id: str(m.id, 128), platform: str(m.platform, 15), name }));
  li.append(reply);
  return { li, name };
}

const ALERT_TEXT = {
  follow: (a) => `${a.name} followed`,
  subscription: (a) => `${a.name} subscribed${a.tier ? ` (tier ${a.tier})` : ''}${a.count ? ` · ${a.count} months` : ''}`,
  gift_subscription: (a) => `${a.name} gifted ${a.count || 1} sub${a.count === 1 ? '' : 's'}${a.tier ? ` (tier ${a.tier})` : ''}`,
  cheer: (a) => `${a.name} cheered ${a.amount ?? ''} ${a.currency || 'bits'}`,
  raid: (a) => `${a.name} is raiding with ${a.count ?? 0} viewer${a.count === 1 ? '' : 's'}`,
  super_chat: (a) => `${a.name} sent a Super Chat: ${a.amount ?? ''} ${a.currency || ''}`,
  member: (a) => `${a.name} became a member`,
  donation: (a) => `${a.name} donated ${a.amount ?? ''} ${a.currency || ''}`,
};

function alertNode(a) {
  const type = str(a.type, 32);
  const name = str(a.name, 256) || 'Someone';
  const f = ALERT_TEXT[type];
  const text = f ? f({ ...a, name }).replace(/\s+$/, '') : `${name}: ${type}`;
  const li = el('li', { class: 'chat-line chat-alert', 'data-alert': type, 'data-id': `alert:${str(a.id, 128)}`, 'data-platform': str(a.platform, 15) },
    timeNode(a.ts), platformIcon(str(a.platform, 15)), el('span', { class: 'chat-alert-text', text }));
  if (typeof a.message === 'string' && a.message) li.append(el('span', { class: 'chat-alert-msg', text: ` “${str(a.message)}”` }));
  return li;
}

// ---- the list -------------------------------------------------------------

function atBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight <= PIN_SLACK;
}

function append(li, id, name, msg) {
  const list = $('#chat-list');
  if (!list) return;
  const pinned = atBottom(list);
  if (id) {
    const old = chat.lines.get(id);
    if (old) return; // the same message twice (a resume replays what we saw): keep one
    chat.lines.set(id, { li, name, msg });
  }
  list.append(li);
  while (list.children.length > MAX_LINES) {
    const first = list.firstElementChild;
    if (first.dataset.id) chat.lines.delete(first.dataset.id);
    first.remove();
  }
  $('#chat-empty').hidden = true;
  if (pinned) list.scrollTop = list.scrollHeight;
  else {
    chat.unread++;
    const more = $('#chat-more');
    more.textContent = `${chat.unread} new message${chat.unread === 1 ? '' : 's'} below`;
    more.hidden = false;
  }
}

function onChat(m) {
  if (m.event === 'gap') {
    const li = el('li', { class: 'chat-line chat-system', text: 'Some messages were missed while the connection was down.' });
    append(li);
    return;
  }
  const p = m.payload;
  if (!p || typeof p !== 'object') return;
  if (m.event === 'message') {
    const id = str(p.id, 128);
    if (id && chat.lines.has(id)) return;
    const { li, name } = messageNode(p);
    append(li, id, name, p);
  } else if (m.event === 'deleted') {
    const line = chat.lines.get(str(p.id, 128));
    if (!line) return;
    line.li.classList.add('deleted');
    line.li.setAttribute('aria-label', 'message deleted by a moderator');
    line.li.title = 'Deleted by a moderator';
    const btn = $('.chat-reply', line.li);
    if (btn) btn.remove();
    if (chat.replyTo && chat.replyTo.id === p.id) setReply(null);
  }
}

function onAlert(m) {
  if (m.event !== 'alert' || !m.payload || typeof m.payload !== 'object') return;
  const id = `alert:${str(m.payload.id, 128)}`;
  if (chat.lines.has(id)) return;
  append(alertNode(m.payload), id, '', m.payload);
}

// ---- sending --------------------------------------------------------------

function setReply(r) {
  chat.replyTo = r;
  const bar = $('#chat-replybar');
  if (!bar) return;
  if (!r) {
    bar.hidden = true;
    $('#chat-target').disabled = false;
    return;
  }
  $('#chat-reply-name').textContent = `Replying to ${r.name} on ${platformName(r.platform)}`;
  bar.hidden = false;
  $('#chat-target').disabled = true; // a reply goes to the message's own platform
  $('#chat-input').focus();
}

function targetsLabel(platforms) {
  if (!platforms) return 'All platforms';
  return platforms.map((p) => platformName(p)).join(', ');
}

function fateNode(results) {
  const ul = el('ul', { class: 'chat-fate' });
  for (const r of results) {
    if (!r || typeof r.platform !== 'string') continue;
    const name = platformName(r.platform);
    const reason = typeof r.reason === 'string' ? r.reason
      : r.reason && typeof r.reason === 'object' ? (r.reason.message || r.reason.code || '') : '';
    ul.append(el('li', { 'data-platform': r.platform, 'data-sent': r.sent ? 'true' : 'false' },
      platformIcon(r.platform), ' ', r.sent ? `${name}: sent ✓` : `${name}: not sent ✗${reason ? ` (${reason})` : ''}`));
  }
  if (!ul.children.length) ul.append(el('li', { 'data-sent': 'false', text: 'No platform took the message.' }));
  return ul;
}

function describeError(e) {
  if (!(e instanceof ApiError)) return String(e.message || e);
  if (e.status === 429) return `Too many messages: try again in ${e.retryAfter || 30} s.`;
  if (e.status === 0) return e.message;
  if (e.status >= 500) return `The server could not send it (${e.status}): ${e.message}`;
  return e.message || `Error ${e.status}`;
}

async function send(ev) {
  ev.preventDefault();
  if (chat.sending) return;
  const input = $('#chat-input');
  const text = input.value.trim();
  const errNode = $('#chat-error');
  errNode.textContent = '';
  if (!text) return;
  if ([...text].length > MAX_TEXT) { errNode.textContent = `At most ${MAX_TEXT} characters.`; return; }
  const body = { text };
  const reply = chat.replyTo;
  if (reply) {
    body.platforms = [reply.platform];
    body.reply_to = reply.id;
  } else {
    const t = $('#chat-target').value;
    if (t && t !== 'all') body.platforms = [t];
  }
  const line = el('li', { class: 'chat-line outgoing', 'data-state': 'sending' },
    timeNode(Date.now()), el('span', { class: 'chat-author own', text: 'You' }),
    el('span', { class: 'chat-to', text: reply ? ` ↪ ${reply.name} (${platformName(reply.platform)})` : ` → ${targetsLabel(body.platforms)}` }),
    el('span', { class: 'chat-sep', text: ': ' }), el('span', { class: 'chat-text', text }));
  const fate = el('div', { class: 'chat-fate-slot', text: 'Sending…' });
  line.append(fate);
  chat.sending = true;
  $('#chat-send').disabled = true;
  // the user just acted: follow the conversation to the bottom
  const list = $('#chat-list');
  list.scrollTop = list.scrollHeight;
  append(line);
  try {
    const r = await post('/api/chat', body);
    const results = (r && Array.isArray(r.results)) ? r.results : [];
    fate.replaceChildren(fateNode(results));
    line.dataset.state = results.length && results.every((x) => x && x.sent) ? 'sent' : results.some((x) => x && x.sent) ? 'partial' : 'failed';
    input.value = '';
    updateCount();
    setReply(null);
  } catch (e) {
    const msg = describeError(e);
    const results = e instanceof ApiError && e.body && Array.isArray(e.body.results) ? e.body.results : null;
    if (results && results.length) fate.replaceChildren(fateNode(results), el('span', { class: 'chat-fate-error', role: 'alert', text: msg }));
    else fate.replaceChildren(el('span', { class: 'chat-fate-error', role: 'alert', text: `Not sent: ${msg}` }));
    line.dataset.state = 'failed';
    errNode.textContent = msg;
  } finally {
    chat.sending = false;
    $('#chat-send').disabled = false;
    list.scrollTop = list.scrollHeight;
    input.focus();
  }
}

function updateCount() {
  const n = [...$('#chat-input').value].length;
  const c = $('#chat-count');
  c.textContent = `${n}/${MAX_TEXT}`;
  c.dataset.over = n > MAX_TEXT ? 'true' : 'false';
}

// ---- platforms and stream state --------------------------------------------

function renderTargets() {
  const sel = $('#chat-target');
  if (!sel) return;
  const prev = sel.value;
  const usable = chat.platforms.filter((p) => p.connected && p.status !== 'needs_reauth');
  sel.replaceChildren(el('option', { value: 'all', text: 'All platforms' }),
    ...usable.map((p) => el('option', { value: p.platform, text: platformName(p.platform, p.display_name) })));
  if ([...sel.options].some((o) => o.value === prev)) sel.value = prev;
  const none = usable.length === 0;
  $('#chat-input').disabled = none;
  $('#chat-send').disabled = none || chat.sending;
  renderHint();
}

function renderHint() {
  const hint = $('#chat-hint');
  if (!hint) return;
  const connected = chat.platforms.some((p) => p.connected);
  if (!connected) hint.textContent = 'Connect a platform (Platforms, above) to see and send its chat here.';
  else if (!chat.streaming) hint.textContent = 'Chat from your connected platforms appears here while you are live.';
  else hint.textContent = '';
  hint.hidden = !hint.textContent;
  $('#chat-column').dataset.live = chat.streaming ? 'true' : 'false';
}

function template() {
  return [
    el('h2', { text: 'Chat' }),
    el('p', { id: 'chat-hint', class: 'hint chat-hint' }),
    el('div', { class: 'chat-scroll' },
      el('ol', { id: 'chat-list', class: 'chat-list', role: 'log', 'aria-live': 'polite', 'aria-label': 'Chat messages' }),
      el('p', { id: 'chat-empty', class: 'hint chat-empty', text: 'No messages yet: chat from your connected platforms (Twitch, YouTube…) and alerts (follows, subs, donations) will appear here.' }),
      el('button', { id: 'chat-more', type: 'button', class: 'button small chat-more', hidden: true })),
    el('div', { id: 'chat-replybar', class: 'chat-replybar', hidden: true },
      el('span', { id: 'chat-reply-name' }),
      el('button', { id: 'chat-reply-cancel', type: 'button', class: 'button small', text: 'Cancel' })),
    el('form', { id: 'chat-form', class: 'chat-form', autocomplete: 'off' },
      el('label', { for: 'chat-target', class: 'sr-only', text: 'Send to' }),
      el('select', { id: 'chat-target', name: 'target' }),
      el('label', { for: 'chat-input', class: 'sr-only', text: 'Message' }),
      el('input', { id: 'chat-input', name: 'text', maxlength: String(MAX_TEXT), placeholder: 'Send a message', enterkeyhint: 'send' }),
      el('span', { id: 'chat-count', class: 'chat-count hint', text: `0/${MAX_TEXT}` }),
      el('button', { id: 'chat-send', type: 'submit', class: 'button primary', text: 'Send' })),
    el('p', { id: 'chat-error', class: 'form-error', role: 'alert' }),
  ];
}

function mount(user) {
  if (chat.user) return;
  const col = $('#chat-column');
  if (!col) return;
  chat.user = user;
  col.replaceChildren(...template());
  $('#chat-form').addEventListener('submit', send);
  $('#chat-input').addEventListener('input', updateCount);
  $('#chat-input').addEventListener('keydown', (e) => { if (e.key === 'Escape' && chat.replyTo) setReply(null); });
  $('#chat-reply-cancel').addEventListener('click', () => setReply(null));
  const list = $('#chat-list');
  list.addEventListener('scroll', () => {
    if (atBottom(list)) { chat.unread = 0; $('#chat-more').hidden = true; }
  });
  $('#chat-more').addEventListener('click', () => {
    list.scrollTop = list.scrollHeight;
    chat.unread = 0;
    $('#chat-more').hidden = true;
  });
  chat.platforms = window.spPlatforms || [];
  const st = window.streampaiStream && window.streampaiStream.status;
  chat.streaming = !!(st && st.state === 'streaming');
  renderTargets();
  subscribeTopic(`chat:${user.id}`, onChat);
  subscribeTopic(`alertbox:${user.id}`, onAlert);
  window.streampaiChat = chat; // for tests and debugging
}

document.addEventListener('sp:platforms', (ev) => { chat.platforms = ev.detail || []; renderTargets(); });
document.addEventListener('sp:stream', (ev) => {
  const live = !!(ev.detail && ev.detail.state === 'streaming');
  if (live !== chat.streaming) { chat.streaming = live; renderHint(); }
});
document.addEventListener('sp:stream-mounted', (ev) => mount(ev.detail.user));
if (window.streampaiStream && window.streampaiStream.mounted) mount(window.streampaiStream.user);
