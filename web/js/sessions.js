// sessions.js: the account area's "Sessions" menu on the dashboard. Lists the account's
// active sessions and tokens (GET /api/sessions: device, IP, last use), revokes one
// (DELETE /api/sessions/{id}) and logs out everywhere (DELETE /api/sessions). Revoking the
// current session (or everywhere) ends on the login page. Every text is set with
// textContent: a user agent is whatever the client sent.
import { get, del } from './api.js';

const $ = (s) => document.querySelector(s);

// "Firefox on Linux", "obs-browser-source", ... from a user agent (best effort, short).
function device(ua, kind) {
  if (!ua) return kind === 'bearer' ? 'API token' : 'Unknown device';
  const browser = /Edg\//.test(ua) ? 'Edge' : /OPR\//.test(ua) ? 'Opera'
    : /Firefox\//.test(ua) ? 'Firefox' : /Chrome\//.test(ua) ? 'Chrome'
      : /Safari\//.test(ua) ? 'Safari' : null;
  const os = /Windows/.test(ua) ? 'Windows' : /Android/.test(ua) ? 'Android'
    : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : null;
  if (browser) return os ? `${browser} on ${os}` : browser;
  return ua.length > 48 ? `${ua.slice(0, 47)}…` : ua;
}

function when(ts) {
  if (!ts) return 'never';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? '?' : d.toLocaleString();
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function render(panel) {
  panel.replaceChildren(el('p', 'hint', 'Loading…'));
  let list;
  try {
    list = (await get('/api/sessions')).sessions || [];
  } catch (e) {
    if (e.status === 401) { location.assign('/login'); return; }
    panel.replaceChildren(el('p', 'form-error', e.message || 'Cannot load the sessions.'));
    return;
  }
  const ul = el('ul', 'sessions-list');
  for (const s of list) {
    const li = el('li');
    const info = el('div');
    const name = el('div', 'device', device(s.user_agent, s.kind));
    if (s.kind === 'bearer') name.append(el('span', 'tag', 'token'));
    if (s.current) name.append(el('span', 'tag current', 'this device'));
    info.append(name, el('div', 'meta',
      `${s.ip || 'unknown IP'} · signed in ${when(s.created_at)} · last used ${when(s.last_used_at)}`));
    const btn = el('button', 'button', 'Revoke');
    btn.type = 'button';
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      try {
        await del(`/api/sessions/${encodeURIComponent(s.id)}`);
      } catch (e) {
        if (e.status !== 404) { btn.disabled = false; alert(e.message); return; }
      }
      if (s.current) { location.assign('/login'); return; }
      render(panel);
    });
    li.append(info, btn);
    ul.append(li);
  }
  const all = el('button', 'button danger', 'Log out everywhere');
  all.type = 'button';
  all.addEventListener('click', async () => {
    if (!confirm('Log out every device and revoke every token (OBS docks, scripts) of this account?')) return;
    all.disabled = true;
    try { await del('/api/sessions'); } catch { /* the session is gone either way */ }
    location.assign('/login');
  });
  panel.replaceChildren(ul, all);
}

function init() {
  const menu = $('#sessions');
  const panel = $('#sessions-panel');
  if (!menu || !panel) return;
  menu.addEventListener('toggle', () => { if (menu.open) render(panel); });
}

if (window.spUser) init();
else document.addEventListener('sp:user', init, { once: true });
