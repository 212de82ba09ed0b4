// dest_edit.js: edit a custom destination (name, URL, stream key) in a dialog.
// PATCH /api/destinations/{id} sends only what changed; the stream key is write-only: the
// field starts empty ("unchanged") and is sent only when something is typed in it. After a
// save the stream page reloads its destinations (sp:destinations-changed).
// Also the stream key's "Regenerate" button (POST /api/stream/key/regenerate behind a
// confirm dialog): the old key stops working at once, OBS must be given the new one.
import { patch, post } from './api.js';

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function dialog(id, title, body, okText, okClass = 'button primary') {
  document.getElementById(id)?.remove();
  const err = el('p', { class: 'form-error', role: 'alert' });
  const ok = el('button', { type: 'submit', class: okClass, text: okText, value: 'ok' });
  const cancel = el('button', { type: 'button', class: 'button', text: 'Cancel' });
  const form = el('form', { method: 'dialog', class: 'sp-dialog-form' },
    el('h2', { text: title }), ...body, err, el('div', { class: 'actions' }, ok, cancel));
  const dlg = el('dialog', { id, class: 'sp-dialog card' }, form);
  cancel.addEventListener('click', () => dlg.close('cancel'));
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  return { dlg, form, err, ok };
}

// Opens the edit dialog of destination d ({id, name, url}).
export function editDestination(d) {
  const name = el('input', { id: 'edit-dest-name', name: 'name', maxlength: '100', required: true });
  name.value = d.name || '';
  const url = el('input', { id: 'edit-dest-url', name: 'url', required: true });
  url.value = d.url || '';
  const key = el('input', { id: 'edit-dest-key', name: 'stream_key', type: 'password', autocomplete: 'off',
    placeholder: 'unchanged' });
  const { dlg, form, err, ok } = dialog('dest-edit', `Edit ${d.name || 'destination'}`, [
    el('label', { for: 'edit-dest-name', text: 'Name' }), name,
    el('label', { for: 'edit-dest-url', text: 'RTMP(S) URL' }), url,
    el('label', { for: 'edit-dest-key', text: 'Stream key' }), key,
    el('p', { class: 'hint', text: 'The key is never shown; leave it empty to keep the current one.' }),
  ], 'Save');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = {};
    if (name.value.trim() !== (d.name || '')) body.name = name.value.trim();
    if (url.value.trim() !== (d.url || '')) body.url = url.value.trim();
    if (key.value) body.stream_key = key.value;
    if (!Object.keys(body).length) { dlg.close('unchanged'); return; }
    ok.disabled = true;
    err.textContent = '';
    try {
      await patch(`/api/destinations/${encodeURIComponent(d.id)}`, body);
      key.value = '';
      dlg.close('saved');
      document.dispatchEvent(new CustomEvent('sp:destinations-changed'));
    } catch (e) {
      err.textContent = e.message || String(e);
    } finally {
      ok.disabled = false;
    }
  });
  return dlg;
}

// Opens the confirm dialog of "regenerate my stream key"; on confirm asks the server and
// dispatches sp:stream-key-changed with the answer (the page then shows the new key).
export function regenerateKey() {
  const { dlg, form, err, ok } = dialog('key-regenerate', 'Regenerate your stream key?', [
    el('p', { text: 'Your current stream key stops working immediately: an encoder using it is disconnected and refused. You must paste the new key into OBS (Settings > Stream) before you go live again.' }),
  ], 'Regenerate key', 'button danger');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    ok.disabled = true;
    err.textContent = '';
    try {
      const r = await post('/api/stream/key/regenerate');
      dlg.close('done');
      document.dispatchEvent(new CustomEvent('sp:stream-key-changed', { detail: r }));
      document.dispatchEvent(new CustomEvent('sp:destinations-changed'));
    } catch (e) {
      err.textContent = e.message || String(e);
    } finally {
      ok.disabled = false;
    }
  });
  return dlg;
}
