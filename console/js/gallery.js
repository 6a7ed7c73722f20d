// gallery.js: the Gallery page (#/gallery): the tenant's assets as cards with thumbnails, a key
// prefix filter, 24 per page with "Load more".

import { h, replace, announce, badge, breakable, debounce, limiter, field, errorBox, isAbort } from './dom.js';
import { session, listAssets, lookupAsset, errorText } from './api.js';

export const title = 'Gallery';
const PAGE = 24;
const REMOVED = ['taken_down', 'erased'];
let lastPrefix = ''; // kept while the tab lives, so going back to the gallery keeps the filter

/// Draws the gallery into `main`; `signal` aborts its listings and lookups when the page is left.
export async function render(main, { signal }) {
  const input = h('input', { id: 'prefix', type: 'search', value: lastPrefix || null, placeholder: 'e.g. photos/', autocomplete: 'off', spellcheck: 'false' });
  const list = h('ul', { id: 'gallery', class: 'gallery', 'aria-label': 'Assets' });
  const note = h('div', { class: 'gallery-note' });
  const more = h('button', { id: 'more', type: 'button', class: 'btn secondary', hidden: true, text: 'Load more' });
  replace(main,
    h('div', { class: 'page-head' },
      h('h1', { text: 'Gallery' }),
      h('a', { class: 'btn', href: '#/upload', text: 'Upload images' })),
    h('p', { class: 'muted', text: `Assets of tenant ${session.tenant} in key order, each at its newest version.` }),
    h('div', { class: 'filter' }, field('Filter by key prefix', input)),
    note, list,
    h('div', { class: 'more-row' }, more));

  const lookups = limiter(6);
  // Cards still rendering wait for their version one at a time (`wait=20`), so the browser's
  // few connections to the server stay free for thumbnails.
  const waits = limiter(1);
  let run = null;
  let cursor = null;
  signal.addEventListener('abort', () => run?.abort());

  async function load(reset, focusNew) {
    if (reset) {
      run?.abort();
      run = new AbortController();
      cursor = null;
      list.replaceChildren();
      note.replaceChildren(h('p', { class: 'muted', text: 'Loading…' }));
      more.hidden = true;
    }
    const sig = run.signal;
    more.disabled = true;
    try {
      const page = await listAssets({ prefix: input.value, limit: PAGE, cursor, signal: sig });
      if (sig.aborted) return;
      note.replaceChildren();
      cursor = page.next_cursor;
      if (reset && !page.assets.length) note.append(emptyState(input.value));
      const cards = page.assets.map((a) => card(a));
      list.append(...cards);
      page.assets.forEach((a, i) => {
        if (!REMOVED.includes(a.status)) lookups(() => fill(cards[i], a, sig, waits));
      });
      more.hidden = !cursor;
      if (focusNew && cards.length) cards[0].querySelector('a').focus();
      announce(`${list.children.length} assets shown${cursor ? ', more to load' : ''}`);
    } catch (e) {
      if (!isAbort(e)) note.replaceChildren(errorBox(errorText(e)));
    } finally {
      more.disabled = false;
    }
  }

  input.addEventListener('input', debounce(() => {
    if (signal.aborted) return;
    lastPrefix = input.value;
    load(true);
  }, 300));
  more.addEventListener('click', () => load(false, true));
  await load(true);
}

/// One asset card: placeholder thumbnail, key (the link), version and status.
function card(a) {
  const href = `#/asset/${encodeURIComponent(a.key)}`;
  return h('li', { class: 'asset', 'data-key': a.key, 'data-status': a.status },
    h('div', { class: 'thumb' }, placeholder(a.status)),
    h('div', { class: 'asset-body' },
      h('a', { class: 'asset-link', href }, breakable(a.key)),
      h('div', { class: 'asset-meta' }, h('span', { class: 'version', text: `v${a.version}` }), badge(a.status))));
}

function placeholder(status) {
  const text = { taken_down: 'taken down', erased: 'erased', rendering: 'rendering…', failed: 'no image' }[status] || '';
  return h('div', { class: 'placeholder', 'data-status': status, text });
}

/// Looks the asset up and puts its thumb variant (or its failure reason) into the card; a
/// version still rendering is looked up again through `waits` until it settles.
async function fill(li, a, signal, waits, wait = 0) {
  if (signal.aborted) return;
  let m;
  try {
    m = await lookupAsset(a.key, { version: wait ? a.version : undefined, wait, signal });
  } catch (e) {
    if (!isAbort(e)) li.querySelector('.asset-body').append(h('p', { class: 'lookup-error', text: errorText(e) }));
    return;
  }
  if (m.status !== a.status) {
    li.dataset.status = m.status;
    li.querySelector('.status').replaceWith(badge(m.status));
  }
  const thumbBox = li.querySelector('.thumb');
  const thumb = (m.variants || []).find((v) => v.name === 'thumb');
  if (thumb && !REMOVED.includes(m.status)) {
    const img = h('img', { src: thumb.url, alt: `${a.key}, thumb variant`, width: thumb.width, height: thumb.height, referrerpolicy: 'no-referrer', decoding: 'async' });
    img.addEventListener('error', () => replace(thumbBox, h('div', { class: 'placeholder', text: 'image unavailable' })));
    replace(thumbBox, img);
  } else {
    replace(thumbBox, placeholder(m.status));
  }
  if (m.status === 'failed') li.querySelector('.asset-body').append(h('p', { class: 'asset-error', text: m.error || 'failed' }));
  if (m.status === 'rendering') {
    waits(() => fill(li, { ...a, status: m.status, version: m.version }, signal, waits, 20));
  } else if (wait) {
    announce(`${a.key} is ${m.status.replace('_', ' ')}`);
  }
}

function emptyState(prefix) {
  if (prefix) {
    return h('div', { class: 'empty' },
      h('h2', { text: 'No matching assets' }),
      h('p', { text: `No key of tenant ${session.tenant} starts with “${prefix}”.` }));
  }
  return h('div', { class: 'empty' },
    h('h2', { text: 'No images yet' }),
    h('p', {}, `Tenant ${session.tenant} has no assets. `, h('a', { href: '#/upload', text: 'Upload your first images' }), ' and they appear here once rendered.'));
}
