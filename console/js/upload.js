// upload.js: the Upload page (#/upload): drop or pick images, each gets an upload URL from the
// API, is PUT with a progress bar (at most 3 at once), then followed until it is rendered.

import { h, replace, announce, field, limiter, sleep } from './dom.js';
import { session, tenantRequest, lookupAsset, reasonFromText, errorText, ApiError } from './api.js';

export const title = 'Upload';
const TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'];
const queue = limiter(3);
let list = null; // the upload list outlives the page, so uploads can be followed after a detour
let lastPrefix = '';

/// Draws the upload page into `main`.
export function render(main) {
  list ??= h('ul', { id: 'uploads', class: 'uploads', 'aria-label': 'Uploads' });
  const files = h('input', { id: 'upload-files', type: 'file', multiple: true, accept: TYPES.join(',') });
  const prefix = h('input', { id: 'upload-prefix', type: 'text', value: lastPrefix || null, placeholder: 'e.g. products/2026/', autocomplete: 'off', spellcheck: 'false' });
  const zone = h('div', { id: 'dropzone', class: 'dropzone', tabindex: 0, role: 'button', 'aria-describedby': 'dropzone-hint' },
    h('span', { class: 'dropzone-title', text: 'Drop images here or choose files' }),
    h('span', { id: 'dropzone-hint', class: 'muted', text: 'JPEG, PNG, GIF or WebP · Enter or Space opens the file picker' }));

  const start = (picked) => {
    lastPrefix = prefix.value;
    const added = [...picked].map((file) => enqueue(file, cleanPrefix(prefix.value) + cleanName(file.name)));
    if (added.length) announce(`${added.length} file${added.length > 1 ? 's' : ''} queued`);
  };
  zone.addEventListener('click', () => files.click());
  zone.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      files.click();
    }
  });
  zone.addEventListener('dragover', (ev) => { ev.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    start(ev.dataTransfer.files);
  });
  files.addEventListener('change', () => {
    start(files.files);
    files.value = '';
  });

  replace(main,
    h('h1', { text: 'Upload' }),
    h('p', { class: 'muted', text: `New images for tenant ${session.tenant}. Each one is stored as the next version of its key and rendered into the eight standard variants.` }),
    h('div', { class: 'upload-form' },
      field('Key prefix (optional)', prefix, 'Put in front of each file name; end it with / for a folder. Characters other than A–Z a–z 0–9 . _ ~ - / become -.'),
      zone,
      field('Or choose files', files)),
    h('h2', { text: 'Uploads' }),
    list.children.length ? null : h('p', { class: 'muted', id: 'uploads-empty', text: 'Nothing uploaded yet in this session.' }),
    list);
}

function cleanPrefix(p) {
  return p.trim().replace(/[^A-Za-z0-9._~/-]/g, '-');
}

function cleanName(name) {
  return name.replace(/[^A-Za-z0-9._~-]/g, '-');
}

/// Adds a row for `file` to the list and queues its upload under `key`.
function enqueue(file, key) {
  document.getElementById('uploads-empty')?.remove();
  const bar = h('progress', { max: file.size || 1, value: 0, 'aria-label': `Upload of ${file.name}` });
  const status = h('span', { class: 'upload-status', 'data-state': 'waiting', text: 'waiting' });
  const result = h('div', { class: 'upload-result' });
  const li = h('li', { class: 'upload', 'data-key': key },
    h('div', { class: 'upload-main' },
      h('span', { class: 'upload-name', text: file.name }),
      key !== file.name ? h('span', { class: 'upload-key', text: `→ ${key}` }) : null,
      bar, status),
    result);
  list.append(li);
  const tenant = session.tenant;
  const set = (state, text) => {
    status.dataset.state = state;
    status.textContent = text || state;
  };
  (async () => {
    try {
      if (!TYPES.includes(file.type)) throw new Error(`${file.type || 'this file type'} is not accepted: JPEG, PNG, GIF or WebP only`);
      // At most 3 transfers at once; following the render does not hold a slot.
      const put = await queue(async () => {
        set('uploading');
        const grant = await tenantRequest('/uploads', {
          method: 'POST', tenant, body: { key, content_type: file.type, content_length: file.size },
        });
        return send(grant.upload, file, (loaded, total) => { bar.max = total; bar.value = loaded; });
      });
      bar.value = bar.max;
      set('rendering');
      announce(`${key}: uploaded, rendering`);
      const m = await settle(key, tenant, put && put.version);
      if (m.status === 'ready') {
        set('ready');
        const thumb = (m.variants || []).find((v) => v.name === 'thumb');
        replace(result,
          thumb ? h('img', { src: thumb.url, alt: `${key}, thumb variant`, width: 80, height: 80, referrerpolicy: 'no-referrer' }) : null,
          h('a', { href: `#/asset/${encodeURIComponent(key)}`, text: `Open ${key} (v${m.version})` }));
      } else {
        set('failed', `failed: ${m.error || m.status}`);
      }
    } catch (e) {
      set('failed', `failed: ${errorText(e)}`);
    }
    announce(`${key}: ${status.textContent}`);
  })();
  return li;
}

/// PUTs `file` to the upload grant's URL with its headers; resolves to the JSON answer (or {}).
function send(upload, file, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(upload.method || 'PUT', upload.url);
    for (const [name, value] of Object.entries(upload.headers || {})) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) progress(e.loaded, e.total); });
    xhr.addEventListener('load', () => {
      if (xhr.status < 200 || xhr.status > 299) {
        reject(new ApiError(xhr.status, reasonFromText(xhr.responseText) || xhr.statusText || 'upload refused'));
        return;
      }
      try { resolve(JSON.parse(xhr.responseText || '{}')); } catch { resolve({}); }
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'upload failed: network error')));
    xhr.send(file);
  });
}

/// Follows the uploaded version until it is no longer rendering. Without a version in the PUT's
/// answer (an S3 presigned PUT has none), the newest version is followed, allowing the pipeline
/// up to a minute to record it.
async function settle(key, tenant, version) {
  for (let tries = 0; ; tries++) {
    try {
      const m = await lookupAsset(key, { version, wait: 20, tenant });
      if (m.status !== 'rendering') return m;
    } catch (e) {
      if (!(e.status === 404 && !version && tries < 30)) throw e;
      await sleep(2000);
    }
  }
}
