// dom.js: small DOM helpers shared by every page. Everything that shows data builds nodes with
// createElement and textContent; nothing here (or anywhere in the console) uses innerHTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

/// Appends children to `el`: strings and numbers become text nodes, arrays are flattened,
/// null/undefined/false are skipped. Returns `el`.
export function append(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/// Creates an HTML element. `props`: `class`, `text` (textContent), `on<event>` (a listener,
/// e.g. `onclick`), anything else is set as an attribute (`true` gives an empty attribute,
/// null/false leaves it out).
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return append(el, children);
}

/// Creates an SVG element with the given attributes.
export function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) el.setAttribute(k, String(v));
  return el;
}

/// Removes every child of `el` and appends `children` instead.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/// Says `message` through the page's polite live region (screen readers announce it).
export function announce(message) {
  const live = document.getElementById('live');
  if (!live) return;
  live.textContent = '';
  // A fresh text node after a tick makes repeated identical messages announced again.
  setTimeout(() => { live.textContent = message; }, 50);
}

/// A key as text with line-break opportunities (<wbr>) after `/`, `_`, `-` and `.`; its
/// textContent is the key itself.
export function breakable(text) {
  const frag = document.createDocumentFragment();
  for (const part of String(text).split(/(?<=[/_.-])/)) frag.append(part, document.createElement('wbr'));
  frag.lastChild?.remove();
  return frag;
}

/// A status badge: `<span class="status" data-status="ready">ready</span>`.
export function badge(status) {
  return h('span', { class: 'status', 'data-status': status, text: String(status).replace('_', ' ') });
}

/// Formats a byte count: "812 B", "7.4 KB", "1.2 MB".
export function fmtBytes(n) {
  if (n == null || Number.isNaN(n)) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/// Returns a function that calls `fn` once `ms` milliseconds have passed without another call.
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/// Returns `run(task)`: runs async `task()` functions with at most `n` in flight at once.
export function limiter(n) {
  let active = 0;
  const queue = [];
  const next = () => {
    while (active < n && queue.length) {
      const { task, resolve, reject } = queue.shift();
      active++;
      Promise.resolve().then(task).then(resolve, reject).finally(() => { active--; next(); });
    }
  };
  return (task) => new Promise((resolve, reject) => { queue.push({ task, resolve, reject }); next(); });
}

/// Resolves after `ms` milliseconds, or rejects with an AbortError when `signal` aborts first.
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('aborted', 'AbortError')); }, { once: true });
  });
}

/// A labelled form field: `<div class="field"><label for=id>label</label>control hint</div>`.
export function field(label, control, hint) {
  return h('div', { class: 'field' },
    h('label', { for: control.id, text: label }),
    control,
    hint ? h('p', { class: 'hint', text: hint }) : null);
}

/// An error paragraph (`role="alert"`), or null when `message` is empty.
export function errorBox(message, id) {
  return message ? h('p', { class: 'error', role: 'alert', id, text: message }) : null;
}

/// True for the error a fetch (or `sleep`) throws when its AbortSignal fires.
export function isAbort(e) {
  return e && e.name === 'AbortError';
}
