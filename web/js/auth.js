// auth.js: the landing, sign-up, log-in and dashboard-shell pages.
// Each page sets <body data-page="...">; this module wires that page.
import { ApiError, currentUser, get, post } from './api.js';

const $ = (sel, root = document) => root.querySelector(sel);

function clearErrors(form) {
  for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const fe = $('.form-error', form);
  if (fe) { fe.textContent = ''; fe.hidden = true; }
}

// Shows an error under the named field, or for the whole form.
function showError(form, field, message) {
  const input = field ? form.elements.namedItem(field) : null;
  const slot = field ? $(`#${field}-error`, form) : null;
  if (input && slot) {
    slot.textContent = message;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  const fe = $('.form-error', form);
  fe.textContent = message;
  fe.hidden = false;
}

function errorField(err, page) {
  if (err.field) return err.field;
  if (page === 'signup' && err.status === 409) return 'email';
  return null;
}

function describe(err) {
  if (err.status === 429) {
    const s = err.retryAfter || 60;
    return `Too many attempts. Try again in ${s} second${s === 1 ? '' : 's'}.`;
  }
  if (err.status >= 500) return 'The server is having trouble. Please try again in a moment.';
  return err.message;
}

// Every field problem found before sending, shown at once (not only the first one).
class FieldErrors extends Error {
  constructor(list) { super('invalid form'); this.list = list; }
}

function checkFields(fd, { password8 }) {
  const list = [];
  const email = String(fd.get('email') || '').trim();
  if (!email) list.push(['email', 'Enter your email address.']);
  else if (!/^[^\s@]+@[^\s@]+$/.test(email)) list.push(['email', 'Enter a valid email address.']);
  const pw = String(fd.get('password') || '');
  if (!pw) list.push(['password', 'Enter a password.']);
  else if (password8 && pw.length < 8) list.push(['password', 'Password must be at least 8 characters.']);
  if (list.length) throw new FieldErrors(list);
}

function wireForm(form, page, submit) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const button = $('button[type=submit]', form);
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      await submit(new FormData(form));
      location.assign('/dashboard');
    } catch (err) {
      if (err instanceof FieldErrors) {
        for (const [field, msg] of [...err.list].reverse()) showError(form, field, msg); // focus ends on the first
        return;
      }
      if (!(err instanceof ApiError)) throw err;
      showError(form, errorField(err, page), describe(err));
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  });
}

async function landing() {
  const user = await currentUser().catch(() => null);
  if (user) location.replace('/dashboard');
  else $('#guest').hidden = false;
}

function signup() {
  const form = $('#signup-form');
  providers(form);
  wireForm(form, 'signup', async (fd) => {
    checkFields(fd, { password8: true });
    const body = { email: String(fd.get('email')).trim(), password: fd.get('password') };
    const name = String(fd.get('display_name') || '').trim();
    if (name) body.display_name = name;
    await post('/api/auth/register', body);
  });
}

// Sign-in errors from /auth/{provider}/callback land here as ?error=CODE&provider=P.
const SIGNIN_ERRORS = {
  access_denied: 'You declined the sign-in.',
  invalid_state: 'That sign-in link is no longer valid. Please try again.',
  state_mismatch: 'That sign-in was started in another browser. Please try again here.',
  state_expired: 'The sign-in took too long. Please try again.',
  token_failed: 'The provider refused the sign-in. Please try again.',
  provider_unavailable: 'The provider is not answering right now. Please try again later.',
  invalid_id_token: 'The sign-in could not be verified.',
  not_configured: 'This sign-in method is not available on this server.',
  rate_limited: 'Too many attempts. Please wait a minute.',
};

// "Sign in with Twitch / Google" buttons for the providers the server offers, and the
// outcome of a failed attempt (the URL's text is never shown: only known codes map to text).
async function providers(form) {
  const params = new URLSearchParams(location.search);
  const code = params.get('error');
  if (code) {
    const known = Object.prototype.hasOwnProperty.call(SIGNIN_ERRORS, code);
    showError(form, null, known ? SIGNIN_ERRORS[code] : 'The sign-in did not complete. Please try again.');
    history.replaceState(null, '', location.pathname);
  }
  let list = [];
  try {
    list = (await get('/api/auth/providers')).providers || [];
  } catch {
    return;
  }
  const box = $('#providers');
  if (!box || !list.length) return;
  for (const p of list) {
    const a = document.createElement('a');
    a.className = `button wide provider provider-${p.name}`;
    a.href = p.url;
    a.textContent = `Continue with ${p.display_name}`;
    box.append(a);
  }
  box.hidden = false;
}

function login() {
  const form = $('#login-form');
  providers(form);
  wireForm(form, 'login', async (fd) => {
    checkFields(fd, { password8: false });
    await post('/api/auth/login', { email: String(fd.get('email')).trim(), password: fd.get('password') });
  });
}

async function dashboard() {
  let user;
  try {
    user = await currentUser();
  } catch {
    $('#status').textContent = 'The server is having trouble. Reload to try again.';
    return;
  }
  if (!user) { location.replace('/login'); return; }
  $('#user-name').textContent = user.display_name || user.email;
  $('#user-email').textContent = user.email;
  document.body.dataset.userId = user.id;
  $('#shell').hidden = false;
  $('#logout').addEventListener('click', async () => {
    try { await post('/api/auth/logout'); } catch { /* the session is gone either way */ }
    location.assign('/login');
  });
  // Other dashboard modules (the stream page) wait for this.
  window.spUser = user;
  document.dispatchEvent(new CustomEvent('sp:user', { detail: user }));
}

const pages = { landing, signup, login, dashboard };
const page = document.body.dataset.page;
if (pages[page]) pages[page]();
