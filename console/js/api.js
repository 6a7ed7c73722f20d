// api.js: the session (key, API address, tenant in sessionStorage) and a fetch wrapper for the
// Pixelfront API: adds `Authorization: Bearer`, sends and parses JSON, turns `{"error"}` answers
// into ApiError with the server's short reason.

const KEY = 'pixelfront.key';
const API = 'pixelfront.api';
const TENANT = 'pixelfront.tenant';

/// The signed-in state. `key`, `api` and `tenant` live in sessionStorage; `caller` is the
/// answer of `GET /api/v1/whoami` (`{caller: "admin"}` or `{caller: "tenant", tenant, kid}`).
export const session = {
  caller: null,
  get key() { return sessionStorage.getItem(KEY) || ''; },
  set key(v) { store(KEY, v); },
  get api() { return sessionStorage.getItem(API) || ''; },
  set api(v) { store(API, (v || '').trim().replace(/\/+$/, '')); },
  get tenant() {
    if (this.caller?.caller === 'tenant') return this.caller.tenant;
    return sessionStorage.getItem(TENANT) || '';
  },
  set tenant(v) { store(TENANT, v); },
  get isAdmin() { return this.caller?.caller === 'admin'; },
  /// Forgets the key, the API address and the tenant.
  clear() {
    this.caller = null;
    [KEY, API, TENANT].forEach((k) => sessionStorage.removeItem(k));
  },
};

function store(name, value) {
  if (value) sessionStorage.setItem(name, value);
  else sessionStorage.removeItem(name);
}

/// An API answer with a 4xx/5xx status (`status`, and the server's reason as `message`), or a
/// network failure (`status` 0).
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/// The absolute or origin-relative address of an API path (the typed API base, else this site).
export function apiUrl(path) {
  return session.api + path;
}

/// A key as a URL path: each `/`-separated segment percent-encoded, the slashes kept.
export function keyPath(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}

/// The user-facing text of an error: "reason (status)".
export function errorText(e) {
  if (e instanceof ApiError && e.status) return `${e.message} (${e.status})`;
  return e?.message || String(e);
}

/// The reason in an error body: the `error` of JSON, else the (trimmed) text itself.
export function reasonFromText(text) {
  try {
    const data = JSON.parse(text);
    if (data && typeof data.error === 'string') return data.error;
  } catch { /* not JSON */ }
  return (text || '').trim().slice(0, 300);
}

async function reasonOf(res) {
  return reasonFromText(await res.text().catch(() => '')) || res.statusText || 'request failed';
}

/// Calls the API: `request('/api/v1/whoami')`. Options: `method`, `body` (sent as JSON),
/// `signal`, `key` (another bearer key than the session's). Resolves to the parsed JSON (or
/// null for an empty body); rejects with ApiError.
export async function request(path, { method = 'GET', body, signal, key } = {}) {
  const headers = { Accept: 'application/json' };
  const bearer = key ?? session.key;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(apiUrl(path), {
      method, headers, signal, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    const cross = session.api && new URL(session.api, location.href).origin !== location.origin;
    throw new ApiError(0, `cannot reach ${session.api || location.origin} (${e.message}${cross ? '; the API must allow this site by CORS' : ''})`);
  }
  if (!res.ok) throw new ApiError(res.status, await reasonOf(res));
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/// Calls a route of the current tenant (or of `opts.tenant`): `tenantRequest('/assets?limit=24')`
/// is `/api/v1/tenants/{tenant}/assets?limit=24`.
export function tenantRequest(suffix, opts = {}) {
  const tenant = opts.tenant || session.tenant;
  return request(`/api/v1/tenants/${encodeURIComponent(tenant)}${suffix}`, opts);
}

/// Lists assets: resolves to `{assets: [{key, version, status}], next_cursor}`.
export function listAssets({ prefix = '', limit = 24, cursor = null, signal } = {}) {
  const q = new URLSearchParams({ prefix, limit: String(limit) });
  if (cursor) q.set('cursor', cursor);
  return tenantRequest(`/assets?${q}`, { signal });
}

/// Looks an asset up (its manifest): `version` (default newest), `wait` (0–20 s while rendering).
export function lookupAsset(key, { version, wait, signal, tenant } = {}) {
  const q = new URLSearchParams();
  if (version) q.set('version', String(version));
  if (wait) q.set('wait', String(wait));
  const qs = q.toString();
  return tenantRequest(`/assets/${keyPath(key)}${qs ? `?${qs}` : ''}`, { signal, tenant });
}

/// The format of a variant: its derivative name's extension ("webp", "avif", "jpeg", "png").
export function variantFormat(v) {
  const m = /\.([a-z0-9]+)$/i.exec(v.derivative || '');
  return m ? m[1].toLowerCase() : '';
}
