// cf_input_loss_note.js: on the Cloudflare media backend, one line in the stream settings
// panel saying what happens when the encoder drops (Cloudflare has no "be right back" slate:
// disconnect protection is the built-in relay's; see docs/relay.md "Disconnect protection").
// The backend is GET /api/stream's `media_backend` (`local` | `cloudflare`, sent by the server
// since issue 13), else (an older server) the ingest host (Cloudflare's inputs are on
// live.cloudflare.com). Placed under the disconnect
// protection switch of the settings panel (stream_settings.js), or under the input status
// when that panel is not there; follows every stream update (sp:stream).
const NOTE_ID = 'cf-input-loss-note';
export const CF_INPUT_LOSS_TEXT = 'On Cloudflare there is no "be right back" slate: if your ' +
  'encoder drops, your destinations stop receiving video until it reconnects; the stream ' +
  'itself is kept for the grace window.';

export function isCloudflare(status) {
  if (!status) return false;
  if (typeof status.media_backend === 'string') return status.media_backend === 'cloudflare';
  const url = status.input && status.input.rtmp_url;
  if (typeof url !== 'string') return false;
  try {
    const host = new URL(url.replace(/^rtmps?:/, 'http:')).hostname;
    return host === 'cloudflare.com' || host.endsWith('.cloudflare.com');
  } catch {
    return false;
  }
}

function anchor() {
  const sw = document.getElementById('disconnect-protection');
  if (sw) return sw.closest('label') || sw;
  const is = document.getElementById('input-status');
  return is && (is.closest('.status-row') || is);
}

function render(status) {
  let note = document.getElementById(NOTE_ID);
  if (!isCloudflare(status)) {
    if (note) note.remove();
    return;
  }
  const at = anchor();
  if (!at) return;
  if (!note) {
    note = document.createElement('p');
    note.id = NOTE_ID;
    note.className = 'hint';
    note.textContent = CF_INPUT_LOSS_TEXT;
  }
  if (at.nextElementSibling !== note) at.after(note);
}

let last = null;
document.addEventListener('sp:stream', (ev) => { last = ev.detail; render(last); });
// the settings panel mounts after the page: place the note again once it is there
document.addEventListener('sp:stream-mounted', () => setTimeout(() => render(last), 0));
if (window.streampaiStream && window.streampaiStream.status) {
  last = window.streampaiStream.status;
  render(last);
}
