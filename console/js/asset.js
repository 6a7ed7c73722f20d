// asset.js: the Asset page (#/asset/{key}): one asset's versions, its eight variants side by
// side, the original's format and size, the manifest JSON and a copyable <picture> snippet.

import { h, replace, announce, badge, breakable, fmtBytes, field, errorBox, isAbort } from './dom.js';
import { session, lookupAsset, variantFormat, errorText, ApiError } from './api.js';

export const title = 'Asset';
const SIZES = '(max-width: 640px) 100vw, 640px';

/// Draws the asset named by `rest` (the URI-encoded key); `params.version` picks a version.
export async function render(main, { rest, params, signal }) {
  let key = rest;
  try { key = decodeURIComponent(rest); } catch { /* keep it raw */ }
  document.title = `${key} · Pixelfront`;
  replace(main, h('p', { class: 'muted', text: `Loading ${key}…` }));
  const latest = await lookupAsset(key, { signal }).catch((e) => {
    throw e.status === 404 ? new ApiError(404, `no asset “${key}” in tenant ${session.tenant}`) : e;
  });
  const wanted = Number(params.get('version')) || latest.version;

  const versions = h('select', { id: 'version' });
  for (let v = latest.version; v >= 1; v--) versions.append(h('option', { value: v, text: v === latest.version ? `v${v} (newest)` : `v${v}` }));
  versions.value = String(wanted);
  const head = h('div', { class: 'asset-head' });
  const playLink = h('a', { class: 'btn secondary', text: 'Open in playground' });
  const takeLink = h('a', { class: 'btn danger', href: `#/takedown?key=${encodeURIComponent(key)}`, text: 'Take down' });
  const body = h('div', { id: 'asset-body' });
  replace(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/gallery', text: 'Gallery' }), ' / ', key),
    head,
    h('div', { class: 'toolbar' }, field('Version', versions), playLink, takeLink),
    body);

  let run = null;
  signal.addEventListener('abort', () => run?.abort());
  async function show(version, m) {
    run?.abort();
    run = new AbortController();
    const sig = run.signal;
    playLink.href = `#/playground?key=${encodeURIComponent(key)}&version=${version}`;
    try {
      m ??= await lookupAsset(key, { version, signal: sig });
      draw(head, body, m);
      while (m.status === 'rendering' && !sig.aborted) {
        m = await lookupAsset(key, { version, wait: 20, signal: sig });
        if (m.status !== 'rendering') {
          draw(head, body, m);
          announce(`Version ${version} is ${m.status}`);
        }
      }
    } catch (e) {
      if (!isAbort(e)) replace(body, errorBox(`Version ${version}: ${errorText(e)}`));
    }
  }
  versions.addEventListener('change', () => {
    announce(`Showing version ${versions.value}`);
    show(Number(versions.value));
  });
  await show(wanted, wanted === latest.version ? latest : undefined);
}

/// Fills the heading and the body for the manifest `m`.
function draw(head, body, m) {
  replace(head, h('h1', { class: 'key-title' }, breakable(m.key)), badge(m.status));
  const o = m.original || {};
  const facts = h('dl', { class: 'facts' },
    fact('Version', `v${m.version}`),
    fact('Original', o.format ? `${o.format.toUpperCase()} · ${o.width}×${o.height}` : '—'),
    fact('Created', m.created_at || '—'),
    fact('Updated', m.updated_at || '—'));
  const variants = m.variants || [];
  replace(body,
    facts,
    m.status === 'failed' ? errorBox(`Rendering failed: ${m.error || 'no reason given'}`) : null,
    m.status === 'rendering' ? h('p', { class: 'notice', text: 'Rendering… this page updates when the variants are ready.' }) : null,
    ['taken_down', 'erased'].includes(m.status) ? h('p', { class: 'notice', text: `This version was ${m.status.replace('_', ' ')}: its images are no longer served.` }) : null,
    h('h2', { text: 'Variants' }),
    h('div', { id: 'variants', class: 'variants' }, variants.map((v) => figure(m.key, v))),
    variants.length ? null : h('p', { class: 'muted', text: 'No variants for this version.' }),
    variants.length ? snippetSection(m) : null,
    h('h2', { text: 'Manifest' }),
    h('pre', { id: 'manifest', class: 'code', text: JSON.stringify(m, null, 2) }));
}

function fact(name, value) {
  return h('div', {}, h('dt', { text: name }), h('dd', { text: value }));
}

function figure(key, v) {
  return h('figure', { class: 'variant', 'data-name': v.name },
    h('div', { class: 'variant-img' },
      h('img', { src: v.url, alt: `${key}, ${v.name} variant`, width: v.width, height: v.height, referrerpolicy: 'no-referrer' })),
    h('figcaption', { text: `${v.name} · ${v.width}×${v.height} · ${variantFormat(v).toUpperCase()} · ${fmtBytes(v.bytes)}` }));
}

/// A `<picture>` for the tenant's frontend: AVIF and WebP sources by width, the JPEG as `<img>`.
export function snippet(variants) {
  const attr = (s) => String(s).replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  const sized = variants.filter((v) => v.name !== 'thumb');
  const srcset = (fmt) => sized.filter((v) => variantFormat(v) === fmt)
    .sort((a, b) => a.width - b.width)
    .map((v) => `${attr(v.url)} ${v.width}w`);
  const img = variants.find((v) => v.name === 'md-jpeg') || sized.find((v) => variantFormat(v) === 'jpeg') || sized[0] || variants[0];
  const lines = ['<picture>'];
  for (const fmt of ['avif', 'webp']) {
    const set = srcset(fmt);
    if (set.length) lines.push(`  <source type="image/${fmt}" sizes="${SIZES}"`, `          srcset="${set.join(',\n                  ')}">`);
  }
  lines.push(`  <img src="${attr(img.url)}" width="${img.width}" height="${img.height}"`,
    `       alt="" loading="lazy" decoding="async">`, '</picture>');
  return lines.join('\n');
}

function snippetSection(m) {
  const text = h('textarea', { id: 'snippet', readonly: true, rows: 12, spellcheck: 'false' });
  text.value = snippet(m.variants);
  const copy = h('button', { id: 'copy-snippet', type: 'button', class: 'btn', text: 'Copy' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text.value);
    } catch {
      text.focus();
      text.select();
      document.execCommand('copy');
    }
    copy.textContent = 'Copied';
    announce('Snippet copied to the clipboard');
    setTimeout(() => { copy.textContent = 'Copy'; }, 2000);
  });
  const signed = m.variants.some((v) => /[?&]sig=/.test(v.url));
  return h('section', { class: 'snippet' },
    h('h2', { text: 'Embed it' }),
    h('p', { class: 'muted', text: 'A responsive <picture> for your frontend: AVIF, then WebP by width, the JPEG as fallback.' }),
    signed ? h('p', { class: 'notice', text: 'This tenant signs its URLs: these are valid for 24 hours. Sign URLs in your backend for production pages.' }) : null,
    h('label', { for: 'snippet', class: 'sr-only', text: 'HTML snippet' }),
    text,
    h('div', { class: 'row' }, copy));
}
