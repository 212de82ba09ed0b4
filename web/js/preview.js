// preview.js: a live preview of the encoder's input on the dashboard stream page. The server
// proxies the built-in relay's HTTP-FLV (GET /api/stream/preview/{input_uid}, the owner's
// session only); mpegts.js (npm `mpegts.js`, pinned in package.json, served from
// /js/vendor/mpegts.js: no CDN) plays it through Media Source Extensions. Muted by default,
// no transcoding; started by the owner, stopped when the input disconnects.
import { el } from './stream.js';

const $ = (sel, root = document) => root.querySelector(sel);

const pv = { player: null, uid: null, status: null, loading: null };
window.spPreview = pv; // for tests and debugging

function loadPlayer() {
  if (window.mpegts) return Promise.resolve(window.mpegts);
  if (!pv.loading) {
    pv.loading = new Promise((resolve, reject) => {
      // a UMD bundle: a classic script defines window.mpegts
      const s = document.createElement('script');
      s.src = '/js/vendor/mpegts.js';
      s.onload = () => (window.mpegts ? resolve(window.mpegts) : reject(new Error('mpegts.js did not load')));
      s.onerror = () => reject(new Error('mpegts.js did not load'));
      document.head.append(s);
    });
  }
  return pv.loading;
}

function available(s) {
  return !!(s && s.input && s.input.status === 'connected' && s.input.backend === 'local' && s.input.input_uid);
}

function stop() {
  if (pv.player) {
    try { pv.player.pause(); } catch { /* already stopped */ }
    pv.player.unload();
    pv.player.detachMediaElement();
    pv.player.destroy();
    pv.player = null;
  }
  pv.uid = null;
  const btn = $('#preview-toggle');
  if (btn) btn.textContent = 'Show preview';
  const v = $('#preview-video');
  if (v) v.hidden = true;
}

async function start() {
  const s = pv.status;
  const msg = $('#preview-msg');
  if (!available(s)) return;
  let mpegts;
  try {
    mpegts = await loadPlayer();
  } catch (e) {
    msg.textContent = e.message;
    return;
  }
  if (!mpegts.isSupported()) {
    msg.textContent = 'This browser cannot play the preview (no Media Source Extensions).';
    return;
  }
  stop();
  const video = $('#preview-video');
  video.muted = true;
  video.hidden = false;
  pv.uid = s.input.input_uid;
  pv.player = mpegts.createPlayer({ type: 'flv', isLive: true, hasAudio: true, hasVideo: true,
    url: `/api/stream/preview/${encodeURIComponent(pv.uid)}` },
  { enableWorker: false, liveBufferLatencyChasing: true, lazyLoad: false, withCredentials: true });
  pv.player.on(mpegts.Events.ERROR, (type, detail) => {
    msg.textContent = `Preview stopped (${detail || type}).`;
    stop();
  });
  pv.player.attachMediaElement(video);
  pv.player.load();
  msg.textContent = '';
  $('#preview-toggle').textContent = 'Hide preview';
  try { await video.play(); } catch { /* autoplay refused: the controls start it */ }
}

function render(s) {
  pv.status = s;
  const card = $('#input-preview');
  if (!card) return;
  const ok = available(s);
  $('#preview-toggle').disabled = !ok;
  if (!ok) {
    if (pv.player) stop();
    $('#preview-msg').textContent = s && s.input && s.input.backend === 'cloudflare'
      ? 'The preview is available with the built-in relay only.'
      : 'The preview is available while your encoder is connected.';
  } else if (pv.uid && pv.uid !== s.input.input_uid) {
    stop();
  } else if (!pv.player) {
    $('#preview-msg').textContent = '';
  }
}

function mount(status) {
  if ($('#input-preview')) return;
  const card = el('section', { id: 'input-preview', class: 'card input-preview', 'aria-labelledby': 'preview-title' },
    el('h2', { id: 'preview-title', text: 'Preview' }),
    el('video', { id: 'preview-video', class: 'preview-video', muted: true, playsinline: true, controls: true, hidden: true }),
    el('p', { id: 'preview-msg', class: 'muted' }),
    el('button', { id: 'preview-toggle', type: 'button', class: 'button', text: 'Show preview',
      onclick: () => (pv.player ? stop() : start()) }));
  const health = $('#input-health');
  const anchor = $('#input-status');
  const host = health || (anchor ? anchor.closest('section, .card') : null);
  if (host) host.after(card); else ($('#app') || document.body).append(card);
  // the `muted` attribute set from script is only the default: the element itself starts muted
  // from the moment it exists, not once the player has loaded
  $('#preview-video').muted = true;
  render(status);
}

document.addEventListener('sp:stream-mounted', (ev) => mount(ev.detail.page.status));
document.addEventListener('sp:stream', (ev) => render(ev.detail));
window.addEventListener('pagehide', stop);
