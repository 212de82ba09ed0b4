// rec_status.js: the current recording on the stream page (GET /api/stream's "recording":
// {mode, active, state?, error?}), shown next to the input status: "Recording", a red
// "Recording stopped: …" when it failed (a full disk), nothing when recording is off.
export function renderRecording(s) {
  const anchor = document.querySelector('#input-status');
  if (!anchor) return;
  let node = document.querySelector('#recording-status');
  if (!node) {
    node = document.createElement('span');
    node.id = 'recording-status';
    node.className = 'badge small';
    anchor.after(' ', node);
  }
  const r = s && s.recording;
  let text = '';
  let state = 'off';
  if (r && r.error) {
    text = 'Recording stopped: ' + String(r.error).replace(/^recording stopped:\s*/i, '');
    state = 'error';
  } else if (r && r.active) {
    text = 'Recording';
    state = 'recording';
  }
  node.dataset.state = state;
  node.textContent = text;
  node.hidden = !text;
  node.title = r && r.mode ? `Recording mode: ${r.mode}` : '';
}
