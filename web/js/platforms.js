// platforms.js: the dashboard's platform accounts panel (<section id="platforms-panel">).
// GET /api/platforms gives one row per platform; Connect / Reconnect are plain links to
// /auth/{platform}/connect (the server answers with a redirect to the provider), Disconnect is
// DELETE /api/platforms/{platform}. The provider's answer comes back as
// /dashboard?connected={platform} or ?error=<code>&platform={platform}: shown as a notice, then
// the URL is cleaned. Live monitor status arrives on the socket topic
// platform:{platform}:{user_id} (event `status`).
// Other modules learn the list from the `sp:platforms` document event (detail: the rows) and
// from window.spPlatforms.
import { get, del, ApiError } from './api.js';
import { el, platformIcon, platformName, subscribeTopic } from './stream.js';

const $ = (sel, root = document) => root.querySelector(sel);

const state = {
  user: null,
  rows: [],
  live: {},        // platform -> last status event payload {status, error?}
  joined: new Set(),
  confirming: null, // platform whose Disconnect waits for a second click
  confirmTimer: null,
  available: true,
};

const ERROR_TEXT = {
  access_denied: (p) => `You declined the authorization on ${p}. Nothing was connected.`,
  state_invalid: () => 'That connection link was not valid or was already used. Start again with Connect.',
  state_expired: () => 'The connection attempt took longer than 10 minutes and expired. Start again with Connect.',
  state_mismatch: () => 'That connection was started from another session. Start again with Connect from this page.',
  token_exchange_failed: (p) => `${p} did not accept the authorization. Please try connecting again in a moment.`,
  account_lookup_failed: (p) => `${p} accepted the authorization but your account could not be read. Please try again.`,
  not_configured: (p) => `${p} is not configured on this server, so it cannot be connected.`,
  account_in_use: (p) => `That ${p} account is already connected to another Streampai user.`,
  provider_error: (p) => `${p} reported an error during authorization. Please try again.`,
  server_error: () => 'Something went wrong on our side while connecting. Please try again.',
  unavailable: (p) => `${p} could not be reached. Please try again in a moment.`,
};
Object.assign(ERROR_TEXT, {
  token_failed: ERROR_TEXT.token_exchange_failed,
  lookup_failed: ERROR_TEXT.account_lookup_failed,
  save_failed: () => 'The account could not be saved. Nothing was connected; please try again.',
  internal: ERROR_TEXT.server_error,
  busy: () => 'The server is busy with other connection attempts. Please try again in a moment.',
  rate_limited: () => 'Too many connection attempts. Wait a minute and try again.',
  shutting_down: () => 'The server was restarting. Please try connecting again.',
  invalid_request: (p) => `${p} sent back an incomplete answer. Start again with Connect.`,
});
ERROR_TEXT.invalid_state = ERROR_TEXT.state_invalid;
ERROR_TEXT.provider_unavailable = ERROR_TEXT.unavailable;
ERROR_TEXT.account_taken = ERROR_TEXT.account_in_use;

// Human text for an ?error= code (codes only: free text from the URL is never shown).
export function connectErrorText(code, platform) {
  const p = platformName(platform) || 'The platform';
  const f = ERROR_TEXT[code];
  if (f) return f(p);
  return `Connecting ${p} failed (${code}).`;
}

const STATUS_TEXT = {
  connecting: 'Chat: connecting…', connected: 'Chat: connected', degraded: 'Chat: degraded',
  needs_reauth: 'Needs reconnect', stopped: 'Chat: idle (starts when you go live)',
};

function notice(kind, text) {
  const n = $('#platform-notice');
  if (!n) return;
  n.replaceChildren(el('span', { class: 'notice-text', text }),
    el('button', { type: 'button', class: 'button small notice-close', 'aria-label': 'Dismiss', text: '×', onclick: () => { n.hidden = true; } }));
  n.dataset.kind = kind;
  n.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  n.hidden = false;
}

// ?connected=twitch / ?error=access_denied&platform=twitch -> a notice; then a clean URL.
function readUrlNotice() {
  const q = new URLSearchParams(location.search);
  const clean = (v, re) => (v && re.test(v) ? v : null);
  const connected = clean(q.get('connected'), /^[a-z0-9_-]{1,15}$/);
  const error = clean(q.get('error'), /^[a-z0-9_]{1,40}$/);
  const platform = clean(q.get('platform'), /^[a-z0-9_-]{1,15}$/);
  if (connected) notice('ok', `${platformName(connected)} connected.`);
  else if (error) notice('error', connectErrorText(error, platform));
  else if (q.has('error')) notice('error', 'Connecting the platform failed.');
  if (q.has('connected') || q.has('error') || q.has('platform')) {
    for (const k of ['connected', 'error', 'platform', 'error_description']) q.delete(k);
    const rest = q.toString();
    history.replaceState(history.state, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  }
}

// The effective status of a row: the socket's latest word on needs_reauth / degraded wins.
function rowStatus(r) {
  const l = state.live[r.platform];
  if (l && (l.status === 'needs_reauth' || l.status === 'degraded')) return l.status;
  if (l && r.status === 'degraded' && (l.status === 'connected' || l.status === 'connecting')) return 'ok';
  return r.status || 'ok';
}

function connectLink(r, label, cls) {
  return el('a', { class: `button ${cls}`, href: `/auth/${encodeURIComponent(r.platform)}/connect`, 'data-action': 'connect', text: label });
}

function rowNode(r) {
  const name = platformName(r.platform, r.display_name);
  const status = r.connected ? rowStatus(r) : 'disconnected';
  const configured = r.configured !== false;
  const li = el('li', { class: 'platform-row', 'data-platform': r.platform, 'data-status': configured ? status : 'not_configured' },
    platformIcon(r.platform), el('strong', { class: 'platform-name', text: name }));
  const info = el('span', { class: 'platform-info' });
  const actions = el('span', { class: 'platform-actions' });
  li.append(info, actions);
  if (!configured) {
    li.classList.add('unconfigured');
    info.append(el('span', { class: 'hint', text: 'Not configured on this server' }));
    return li;
  }
  if (!r.connected) {
    info.append(el('span', { class: 'hint', text: 'Not connected' }));
    actions.append(connectLink(r, `Connect ${name}`, 'primary'));
    return li;
  }
  const acct = r.account || {};
  const who = acct.display_name || acct.login || 'connected';
  info.append(el('span', { class: 'platform-account', text: `Connected as ${who}` }));
  if (acct.login && acct.login !== who) info.append(el('span', { class: 'hint', text: ` (@${acct.login})` }));
  if (status === 'needs_reauth') {
    info.append(el('span', { class: 'pill pf-state', 'data-state': 'needs_reauth', text: 'Reconnect needed' }),
      el('span', { class: 'platform-warn', text: `${name} no longer accepts our authorization: chat and events are paused until you reconnect.` }));
    actions.append(connectLink(r, `Reconnect ${name}`, 'warn-button'));
  } else if (status === 'degraded') {
    info.append(el('span', { class: 'pill pf-state', 'data-state': 'degraded', text: 'degraded' }));
  }
  const l = state.live[r.platform];
  if (l && status !== 'needs_reauth') {
    info.append(el('span', { class: 'pf-live', 'data-status': l.status, text: STATUS_TEXT[l.status] || l.status }));
  }
  if (l && l.error && (status === 'degraded' || status === 'needs_reauth' || l.status === 'degraded')) {
    info.append(el('span', { class: 'platform-error', text: l.error }));
  }
  if (r.expires_at || (r.scopes && r.scopes.length)) {
    const scopes = Array.isArray(r.scopes) ? r.scopes.join(' ') : String(r.scopes || '');
    li.title = `Permissions: ${scopes || 'none'}`;
  }
  const confirming = state.confirming === r.platform;
  actions.append(el('button', {
    type: 'button', class: `button small${confirming ? ' danger' : ''}`, 'data-action': 'disconnect',
    text: confirming ? `Really disconnect ${name}?` : 'Disconnect', onclick: () => disconnect(r),
  }));
  return li;
}

function render() {
  const list = $('#platform-list');
  if (!list) return;
  list.replaceChildren(...state.rows.map(rowNode));
  $('#platforms-empty').hidden = state.rows.length > 0;
}

function publish() {
  const rows = state.rows.map((r) => ({ ...r, status: r.connected ? rowStatus(r) : r.status }));
  window.spPlatforms = rows;
  document.dispatchEvent(new CustomEvent('sp:platforms', { detail: rows }));
}

function joinTopics() {
  for (const r of state.rows) {
    if (r.configured === false || state.joined.has(r.platform)) continue;
    state.joined.add(r.platform);
    subscribeTopic(`platform:${r.platform}:${state.user.id}`, onStatus);
  }
}

function onStatus(m) {
  if (m.event !== 'status' || !m.payload || typeof m.payload.platform !== 'string') return;
  const p = m.payload;
  const before = state.live[p.platform];
  state.live[p.platform] = { status: p.status, error: typeof p.error === 'string' ? p.error : '' };
  const row = state.rows.find((r) => r.platform === p.platform);
  if (row && p.status === 'needs_reauth') row.status = 'needs_reauth';
  if (row && p.status === 'degraded') row.status = 'degraded';
  if (row && (p.status === 'connected') && row.status === 'degraded') row.status = 'ok';
  render();
  if (!before || before.status !== p.status) publish();
}

async function load() {
  const err = $('#platforms-error');
  try {
    const r = await get('/api/platforms');
    state.rows = (Array.isArray(r) ? r : (r && r.platforms) || []).filter((x) => x && typeof x.platform === 'string');
    state.available = true;
    err.textContent = '';
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      state.available = false;
      err.textContent = '';
      $('#platforms-empty').textContent = 'Platform accounts are not available on this server yet.';
      $('#platforms-empty').hidden = false;
    } else {
      err.textContent = `Could not load your platform accounts: ${e.message}`;
    }
  }
  render();
  joinTopics();
  publish();
}

async function disconnect(r) {
  const name = platformName(r.platform, r.display_name);
  if (state.confirming !== r.platform) {
    state.confirming = r.platform;
    clearTimeout(state.confirmTimer);
    state.confirmTimer = setTimeout(() => { state.confirming = null; render(); }, 5000);
    render();
    return;
  }
  clearTimeout(state.confirmTimer);
  state.confirming = null;
  const err = $('#platforms-error');
  err.textContent = '';
  try {
    await del(`/api/platforms/${encodeURIComponent(r.platform)}`);
    delete state.live[r.platform];
    notice('ok', `${name} disconnected.`);
    document.dispatchEvent(new CustomEvent('sp:platforms-changed', { detail: { platform: r.platform } }));
  } catch (e) {
    err.textContent = `Could not disconnect ${name}: ${e.message}`;
  }
  await load();
}

function template() {
  return el('div', { class: 'card platforms-card' },
    el('h2', { id: 'platforms-title', text: 'Platforms' }),
    el('p', { id: 'platform-notice', class: 'platform-notice', hidden: true }),
    el('ul', { id: 'platform-list', class: 'platform-list' }),
    el('p', { id: 'platforms-empty', class: 'hint', hidden: true, text: 'No platforms are available.' }),
    el('p', { id: 'platforms-error', class: 'form-error', role: 'alert' }),
    el('p', { class: 'hint', text: 'A connected account streams without pasting a key and brings its chat and events into the dashboard.' }));
}

function mount(user) {
  if (state.user) return;
  const root = $('#platforms-panel');
  if (!root) return;
  state.user = user;
  root.replaceChildren(template());
  root.hidden = false;
  readUrlNotice();
  load();
  window.streampaiPlatforms = state; // for tests and debugging
}

document.addEventListener('sp:user', (ev) => mount(ev.detail));
if (window.spUser) mount(window.spUser);
