// playground.js: the Playground page (#/playground?key=…&version=…): build an image URL from
// controls or a raw query, fetch it, show the image and what the edge answered (normalized key,
// size, render time, cache result, type) or the reason it was refused.

import { h, replace, announce, fmtBytes, debounce, field, isAbort } from './dom.js';
import { session, listAssets, keyPath, apiUrl, errorText } from './api.js';

export const title = 'Playground';
const SIGNING = /signature|expired|unknown key/i;
// What an <img> sends, so that fmt=auto picks what a page would get (fetch() sends */*).
const IMG_ACCEPT = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';

/// Splits a raw query into `[name, value|null]` pairs, without decoding anything.
export function parsePairs(query) {
  return query.replace(/^\?/, '').split('&').filter(Boolean).map((p) => {
    const i = p.indexOf('=');
    return i < 0 ? [p, null] : [p.slice(0, i), p.slice(i + 1)];
  });
}

/// Joins pairs back into a query string.
export function formatPairs(pairs) {
  return pairs.map(([k, v]) => (v === null ? k : `${k}=${v}`)).join('&');
}

/// Sets (or, for an empty value, removes) the first parameter called `name` in any letter case.
function setPair(pairs, name, value) {
  const i = pairs.findIndex(([k]) => k.toLowerCase() === name);
  if (value === '' || value == null) { if (i >= 0) pairs.splice(i, 1); } else if (i >= 0) pairs[i][1] = value;
  else pairs.push([name, value]);
}

/// Draws the playground into `main`.
export async function render(main, { params, signal }) {
  replace(main, h('h1', { text: 'Playground' }), h('p', { class: 'muted', text: 'Loading assets…' }));
  const { assets } = await listAssets({ limit: 1000, signal });
  const wantedKey = params.get('key');
  if (wantedKey && !assets.some((a) => a.key === wantedKey)) assets.unshift({ key: wantedKey, version: 1, status: '' });
  if (!assets.length) {
    replace(main, h('h1', { text: 'Playground' }),
      h('p', {}, `Tenant ${session.tenant} has no assets yet. `, h('a', { href: '#/upload', text: 'Upload one' }), ' to try it here.'));
    return;
  }

  const key = h('select', { id: 'pg-key' }, assets.map((a) => h('option', { value: a.key, text: a.status ? `${a.key} (v${a.version}, ${a.status})` : a.key })));
  key.value = wantedKey || assets[0].key;
  const version = h('input', { id: 'pg-version', type: 'number', min: 1, step: 1, inputmode: 'numeric' });
  version.value = params.get('version') || String(assets.find((a) => a.key === key.value).version);
  const controls = {
    w: h('input', { id: 'pg-w', type: 'number', min: 1, max: 8192, value: 640, inputmode: 'numeric' }),
    h: h('input', { id: 'pg-h', type: 'number', min: 1, max: 8192, inputmode: 'numeric' }),
    fmt: h('select', { id: 'pg-fmt' }, ['auto', 'webp', 'avif', 'jpeg', 'png'].map((f) => h('option', { value: f, text: f }))),
    q: h('input', { id: 'pg-q', type: 'range', min: 1, max: 100, value: 80 }),
    dpr: h('select', { id: 'pg-dpr' }, h('option', { value: '', text: '(not set: 1)' }),
      ['1', '1.5', '2', '3'].map((d) => h('option', { value: d, text: `${d}x` }))),
  };
  const qValue = h('output', { id: 'pg-q-value', for: 'pg-q', text: '80' });
  const query = h('input', { id: 'pg-query', type: 'text', spellcheck: 'false', autocomplete: 'off', value: 'w=640&q=80' });
  const url = h('code', { id: 'pg-url' });
  const open = h('a', { href: '#', target: '_blank', rel: 'noopener noreferrer', text: 'Open in a new tab' });
  const image = h('img', { id: 'pg-image', alt: '', hidden: true });
  const error = h('p', { id: 'pg-error', class: 'error', role: 'alert', hidden: true });
  const hint = h('p', { id: 'pg-hint', class: 'notice', hidden: true });
  const stat = (id) => h('span', { id, text: '—' });
  const stats = { normalized: stat('pg-normalized'), bytes: stat('pg-bytes'), time: stat('pg-time'), cache: stat('pg-cache'), type: stat('pg-type'), dims: stat('pg-dims') };
  const imageBox = h('div', { class: 'pg-image-box', hidden: true }, image);

  const dl = h('dl', { class: 'facts pg-stats' },
    [['Normalized key', stats.normalized], ['Size', stats.bytes], ['Time', stats.time], ['X-Cache', stats.cache],
      ['Content-Type', stats.type], ['Dimensions', stats.dims]].map(([n, el]) => h('div', {}, h('dt', { text: n }), h('dd', {}, el))));
  replace(main,
    h('h1', { text: 'Playground' }),
    h('p', { class: 'muted', text: 'Try any image request and see how the edge normalizes, caches and renders it.' }),
    h('div', { class: 'pg' },
      h('form', { class: 'pg-controls card', id: 'pg-form' },
        field('Asset', key), field('Version', version),
        h('div', { class: 'two' }, field('Width (w)', controls.w), field('Height (h)', controls.h)),
        field('Format (fmt)', controls.fmt, 'auto is resolved from Accept; the playground sends what an <img> sends.'),
        h('div', { class: 'field' }, h('label', { for: 'pg-q' }, 'Quality (q): ', qValue), controls.q),
        field('Device pixel ratio (dpr)', controls.dpr, 'Folded into w and h before snapping: w=320&dpr=2 is the w=640 object.'),
        field('Query', query, 'Mirrors the controls; edit it to send anything, e.g. w=abc or W=287&utm_source=x.')),
      h('div', { class: 'pg-output', 'aria-busy': 'false' },
        h('p', { class: 'pg-url' }, url, ' ', open),
        error, hint, dl, imageBox)));
  const output = main.querySelector('.pg-output');

  let inflight = null;
  let blobUrl = null;
  signal.addEventListener('abort', () => {
    inflight?.abort();
    if (blobUrl) URL.revokeObjectURL(blobUrl);
  });

  const buildUrl = () => {
    const q = query.value.replace(/^\?/, '');
    const path = `/img/${encodeURIComponent(session.tenant)}/v${version.value.trim()}/${keyPath(key.value)}${q ? `?${q}` : ''}`;
    return new URL(apiUrl(path), location.href).href;
  };
  const clearStats = () => Object.values(stats).forEach((s) => { s.textContent = '—'; });

  async function go() {
    inflight?.abort();
    const control = new AbortController();
    inflight = control;
    const target = buildUrl();
    url.textContent = target;
    open.href = target;
    output.setAttribute('aria-busy', 'true');
    const t0 = performance.now();
    try {
      const res = await fetch(target, { cache: 'no-cache', signal: control.signal, referrerPolicy: 'no-referrer', headers: { Accept: IMG_ACCEPT } });
      if (!res.ok) {
        const body = (await res.text()).trim();
        showError(`${res.status}: ${body || res.statusText}`, res.status === 403 && SIGNING.test(body)
          ? `Tenant ${session.tenant} signs its URLs, so an unsigned URL is refused. Sign one with pixelfront sign, or turn signing off on the Tenants page.`
          : '');
        return;
      }
      const blob = await res.blob();
      const total = performance.now() - t0;
      if (control.signal.aborted) return;
      if (blobUrl) URL.revokeObjectURL(blobUrl);
      blobUrl = URL.createObjectURL(blob);
      image.src = blobUrl;
      image.alt = `${key.value}, rendered for ${query.value || 'no parameters'}`;
      image.hidden = false;
      imageBox.hidden = false;
      error.hidden = true;
      error.textContent = '';
      hint.hidden = true;
      const render = /(?:^|,)\s*render;(?:[^,]*;)?\s*dur=([\d.]+)/.exec(res.headers.get('server-timing') || '');
      stats.normalized.textContent = res.headers.get('x-pixelfront-key') || '—';
      stats.bytes.textContent = `${blob.size} bytes (${fmtBytes(blob.size)})`;
      stats.time.textContent = `${render ? `render ${Number(render[1]).toFixed(1)} ms` : '—'} · total ${total.toFixed(0)} ms`;
      stats.cache.textContent = res.headers.get('x-cache') || '—';
      stats.type.textContent = res.headers.get('content-type') || '—';
      stats.dims.textContent = '—';
      image.decode().then(() => { stats.dims.textContent = `${image.naturalWidth}×${image.naturalHeight}`; }, () => {});
      announce(`Loaded ${fmtBytes(blob.size)}, ${stats.cache.textContent}`);
    } catch (e) {
      if (!isAbort(e)) showError(`network error: ${errorText(e)}`, '');
    } finally {
      if (inflight === control) output.setAttribute('aria-busy', 'false');
    }
  }

  function showError(text, hintText) {
    image.hidden = true;
    imageBox.hidden = true;
    clearStats();
    error.textContent = text;
    error.hidden = false;
    hint.textContent = hintText;
    hint.hidden = !hintText;
  }

  const schedule = debounce(() => { if (!signal.aborted) go(); }, 250);
  for (const [name, el] of Object.entries(controls)) {
    el.addEventListener(el.tagName === 'SELECT' ? 'change' : 'input', () => {
      if (name === 'q') qValue.textContent = el.value;
      const pairs = parsePairs(query.value);
      setPair(pairs, name, name === 'fmt' && el.value === 'auto' ? '' : el.value);
      query.value = formatPairs(pairs);
      schedule();
    });
  }
  query.addEventListener('input', () => {
    const pairs = parsePairs(query.value);
    const get = (n) => { const p = pairs.find(([k]) => k.toLowerCase() === n); return p ? (p[1] ?? '') : ''; };
    const num = (v, max) => (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= max ? String(Number(v)) : '');
    controls.w.value = num(get('w'), 8192);
    controls.h.value = num(get('h'), 8192);
    const f = get('fmt').toLowerCase().replace(/^jpg$/, 'jpeg');
    controls.fmt.value = ['webp', 'avif', 'jpeg', 'png'].includes(f) ? f : 'auto';
    if (num(get('q'), 100)) { controls.q.value = num(get('q'), 100); qValue.textContent = controls.q.value; }
    controls.dpr.value = ['1', '1.5', '2', '3'].includes(get('dpr')) ? get('dpr') : '';
    schedule();
  });
  key.addEventListener('change', () => {
    const a = assets.find((x) => x.key === key.value);
    if (a) version.value = String(a.version);
    schedule();
  });
  version.addEventListener('input', schedule);
  main.querySelector('#pg-form').addEventListener('submit', (ev) => { ev.preventDefault(); go(); });
  go();
}
