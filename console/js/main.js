// main.js: the console's entry point: sign-in (a key typed in, or `#token=` from the local
// stack's start-up link), the header (tenant picker, who is signed in, sign out) and the hash
// router that draws one page module into <main>.

import { h, replace, announce, field, isAbort } from './dom.js';
import { session, request, errorText } from './api.js';
import * as gallery from './gallery.js';
import * as asset from './asset.js';
import * as upload from './upload.js';
import * as playground from './playground.js';
import * as takedown from './takedown.js';
import * as tenants from './tenants.js';
import * as metrics from './metrics.js';

const pages = { gallery, asset, upload, playground, takedown, tenants, metrics };
const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const sessionBox = document.getElementById('session');
const tenantSelect = document.getElementById('tenant');
const tenantForm = document.getElementById('tenant-form');
const tenantOther = document.getElementById('tenant-other');
const whoami = document.getElementById('whoami');

let pageControl = null; // aborts the shown page's work (fetches, polling) when it is left
let firstRender = true;

/// Splits `#/name/rest?query` into `{name, rest, params}`.
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const [name, ...rest] = path.split('/');
  return { name, rest: rest.join('/'), params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
}

/// Draws the page the hash names (the gallery for an unknown one).
async function route() {
  if (!session.caller) return;
  let r = parseHash();
  if (!pages[r.name]) {
    history.replaceState(null, '', '#/gallery');
    r = parseHash();
  }
  pageControl?.abort();
  const control = new AbortController();
  pageControl = control;
  const page = pages[r.name];
  for (const a of nav.querySelectorAll('a[data-route]')) {
    if (a.dataset.route === r.name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${page.title} · Pixelfront`;
  main.replaceChildren();
  if (!firstRender) {
    window.scrollTo(0, 0);
    main.focus();
  }
  firstRender = false;
  try {
    await page.render(main, { ...r, signal: control.signal });
  } catch (e) {
    if (isAbort(e) || pageControl !== control) return;
    replace(main,
      h('h1', { text: page.title }),
      h('p', { class: 'error', role: 'alert', text: errorText(e) }),
      h('p', {}, h('a', { href: '#/gallery', text: 'Back to the gallery' })));
  }
}

/// Shows the sign-in form (with `message` as its error, if any) and hides the navigation.
function showSignIn(message) {
  pageControl?.abort();
  session.caller = null;
  nav.hidden = true;
  sessionBox.hidden = true;
  document.title = 'Sign in · Pixelfront';
  const key = h('input', { id: 'signin-key', type: 'password', required: true, autocomplete: 'off', spellcheck: 'false' });
  const api = h('input', { id: 'signin-api', type: 'url', placeholder: location.origin, value: session.api || null });
  const error = h('p', { id: 'signin-error', class: 'error', role: 'alert', hidden: !message, text: message || '' });
  const submit = h('button', { id: 'signin-submit', type: 'submit', class: 'btn', text: 'Sign in' });
  const form = h('form', { id: 'signin-form', class: 'card signin' },
    h('h1', { text: 'Sign in to Pixelfront' }),
    h('p', { class: 'muted', text: 'Use a tenant API key (pfk_…) or the admin token. It is kept in this browser tab only (session storage) and sent only to the API.' }),
    field('API key or admin token', key),
    field('API address (optional)', api, `Leave blank to use this site (${location.origin}).`),
    error, submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      session.api = api.value;
      const who = await request('/api/v1/whoami', { key: key.value.trim() });
      session.key = key.value.trim();
      announce('Signed in');
      await start(who);
    } catch (e) {
      error.textContent = e.status === 401 ? `Sign-in refused: ${e.message}` : errorText(e);
      error.hidden = false;
      submit.disabled = false;
      key.focus();
    }
  });
  replace(main, form);
  if (!firstRender) key.focus();
}

/// Starts the signed-in console for the whoami answer `who`.
async function start(who) {
  session.caller = who;
  whoami.textContent = who.caller === 'admin' ? 'admin' : `tenant ${who.tenant}`;
  for (const el of nav.querySelectorAll('[data-admin]')) el.hidden = !session.isAdmin;
  nav.hidden = false;
  sessionBox.hidden = false;
  await fillTenants();
  route();
}

/// Fills the tenant picker: an admin's from `GET /api/v1/tenants` (default `demo`, else the
/// first); a tenant key's fixed to its own tenant.
async function fillTenants() {
  const other = document.getElementById('tenant-other-wrap');
  if (!session.isAdmin) {
    replace(tenantSelect, h('option', { value: session.tenant, text: session.tenant }));
    tenantSelect.disabled = true;
    other.hidden = true;
    return;
  }
  tenantSelect.disabled = false;
  other.hidden = false;
  let ids = [];
  try {
    ids = (await request('/api/v1/tenants')).tenants.map((t) => t.tenant);
  } catch (e) {
    announce(`Could not list tenants: ${errorText(e)}`);
  }
  let chosen = session.tenant;
  if (!chosen) chosen = ids.includes('demo') ? 'demo' : (ids[0] || 'demo');
  if (!ids.includes(chosen)) ids.push(chosen);
  replace(tenantSelect, ids.sort().map((id) => h('option', { value: id, text: id })));
  tenantSelect.value = chosen;
  session.tenant = chosen;
}

/// Switches the console to tenant `id` and redraws the page.
function useTenant(id) {
  if (![...tenantSelect.options].some((o) => o.value === id)) tenantSelect.append(h('option', { value: id, text: id }));
  tenantSelect.value = id;
  session.tenant = id;
  announce(`Tenant ${id}`);
  route();
}

function boot() {
  document.getElementById('skip-link').addEventListener('click', (ev) => {
    ev.preventDefault(); // the hash is the router's: focus <main> instead of navigating
    main.focus();
    main.scrollIntoView();
  });
  document.getElementById('signout').addEventListener('click', () => {
    session.clear();
    showSignIn();
    announce('Signed out');
  });
  tenantSelect.addEventListener('change', () => useTenant(tenantSelect.value));
  tenantForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = tenantOther.value.trim();
    if (!TENANT_ID.test(id)) {
      announce('A tenant id is 1 to 63 of a-z, 0-9 and -, not starting with -');
      tenantOther.focus();
      return;
    }
    tenantOther.value = '';
    useTenant(id);
  });
  window.addEventListener('pf:tenants-changed', () => { if (session.isAdmin) fillTenants(); });
  window.addEventListener('hashchange', () => (takeToken() ? resume() : route()));
  takeToken();
  resume();
}

/// Takes the key from a `#token=…` link (the local stack prints one), then goes to the gallery.
function takeToken() {
  if (!location.hash.startsWith('#token=')) return false;
  const raw = location.hash.slice('#token='.length);
  try { session.key = decodeURIComponent(raw); } catch { session.key = raw; }
  session.api = '';
  history.replaceState(null, '', '#/gallery');
  return true;
}

/// Signs in with the stored key (asking whoami), or shows the sign-in form without one.
function resume() {
  if (!session.key) {
    showSignIn();
    return;
  }
  replace(main, h('p', { class: 'muted', text: 'Signing in…' }));
  request('/api/v1/whoami').then(start, (e) => {
    if (e.status === 401) session.key = '';
    showSignIn(errorText(e));
  });
}

boot();
