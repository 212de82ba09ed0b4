// categories.js: the category picker beside the stream title, one field per connected platform
// that has categories (Twitch today). Typing searches GET /api/platforms/{p}/categories?query=
// (debounced); the chosen category's id goes with the title in PUT /api/stream/metadata as
// {categories: {platform: id}} ("" unsets it). Streampai pushes it to the platform at go-live
// and at once while live.
import { get } from './api.js';

const PICKABLE = { twitch: 'Twitch category' };
const state = {
  names: new Map(),   // `${platform}:${id}` -> name (what searches told us)
  byName: new Map(),  // `${platform}:${name}` -> id
  timers: new Map(),
  seq: 0,
};

function field(root, platform) {
  return root.querySelector(`input[data-category="${platform}"]`);
}

async function search(input, platform) {
  const q = input.value.trim();
  if (q.length < 2) return;
  const mine = ++state.seq;
  let list = [];
  try {
    list = (await get(`/api/platforms/${platform}/categories?query=${encodeURIComponent(q)}`)).categories || [];
  } catch {
    return; // the picker is a help: a failed search leaves the field as typed
  }
  if (mine !== state.seq) return;
  const dl = document.getElementById(`cat-list-${platform}`);
  dl.replaceChildren();
  for (const c of list) {
    if (typeof c.id !== 'string' || typeof c.name !== 'string') continue;
    state.names.set(`${platform}:${c.id}`, c.name);
    state.byName.set(`${platform}:${c.name}`, c.id);
    const o = document.createElement('option');
    o.value = c.name;
    dl.append(o);
  }
}

// Shows one field per connected platform among `platforms` (names); keeps typed values.
export function renderCategoryFields(root, platforms, current = {}) {
  const wanted = platforms.filter((p) => PICKABLE[p]);
  for (const f of [...root.querySelectorAll('[data-category-wrap]')]) {
    if (!wanted.includes(f.dataset.categoryWrap)) f.remove();
  }
  for (const p of wanted) {
    let input = field(root, p);
    if (!input) {
      const wrap = document.createElement('span');
      wrap.dataset.categoryWrap = p;
      wrap.className = 'category-field';
      input = document.createElement('input');
      input.dataset.category = p;
      input.setAttribute('list', `cat-list-${p}`);
      input.placeholder = PICKABLE[p];
      input.setAttribute('aria-label', PICKABLE[p]);
      input.maxLength = 100;
      input.addEventListener('input', () => {
        input.dataset.touched = '1';
        clearTimeout(state.timers.get(p));
        state.timers.set(p, setTimeout(() => search(input, p), 250));
      });
      const dl = document.createElement('datalist');
      dl.id = `cat-list-${p}`;
      wrap.append(input, dl);
      root.append(wrap);
    }
    const id = current[p];
    if (document.activeElement !== input && id !== undefined && !input.dataset.touched) {
      input.value = id ? (state.names.get(`${p}:${id}`) || id) : '';
    }
  }
}

// After a save: the fields show what the server has again.
export function categoriesSaved(root) {
  for (const input of root.querySelectorAll('input[data-category]')) delete input.dataset.touched;
}

// {platform: id} for the fields the user changed: a known name -> its id, "" -> unset, an id
// typed as such (digits) -> that id. Throws with a clear message for an unknown name.
export function chosenCategories(root) {
  const out = {};
  for (const input of root.querySelectorAll('input[data-category][data-touched]')) {
    const p = input.dataset.category;
    const v = input.value.trim();
    if (v === '') { out[p] = ''; continue; }
    const id = state.byName.get(`${p}:${v}`) || (/^[0-9]{1,20}$/.test(v) ? v : null);
    if (!id) throw new Error(`Pick a ${PICKABLE[p]} from the list`);
    out[p] = id;
  }
  return out;
}
