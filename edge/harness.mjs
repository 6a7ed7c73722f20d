//! A local stand-in for the CloudFront Functions runtime (cloudfront-js-2.0).
//!
//! Loads the real `viewer-request.js` (or `viewer-response.js`) text (no copy of its logic),
//! evaluates it as a strict-mode script in a fresh `node:vm` context per call, builds the
//! viewer-request (or viewer-response) event the way CloudFront does, awaits the handler and
//! returns its result as plain JSON data.
//!
//! Runtime 2.0 modules: `node:vm` scripts have no `import`, so each top-level line
//! `import NAME from 'MODULE';` is rewritten in place (same line numbers) to
//! `var NAME = <module>;`, and only two modules exist, as in CloudFront:
//!   - `cloudfront`: `cf.kvs()` / `cf.kvs(id)` give a fake KeyValueStore handle (`fakeKvs`)
//!     with the documented helpers `get(key, {format})`, `exists(key)` and `meta()`; `get`
//!     rejects for a missing key, as the real one does. The fake store is a loaded one: it
//!     holds the default policy `#default` = `{}` unless the test gives its own or asks for a
//!     store never loaded (`fakeKvs(entries, {loaded: false})`).
//!   - `crypto`: `createHash` / `createHmac` from node:crypto, limited to what the CloudFront
//!     docs list (md5, sha1, sha256; digest encodings hex, base64, base64url).
//! The clock can be frozen (`now`, Unix seconds): in CloudFront every `Date.now()` of one run
//! returns the time the run started.
//!
//! Event shape (CloudFront Functions event structure, version 1.0): `request.uri` is the path
//! as sent; `request.querystring` has one field per distinct name, `{value}`, with the raw
//! (still percent-encoded) value, and when one spelling of a name repeats, `value` is the first
//! value and `multiValue` lists all of them in order; header names are lower-cased.

import { readFileSync } from 'node:fs';
import nodeCrypto from 'node:crypto';
import vm from 'node:vm';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The viewer-request function's readable source. */
export const SOURCE_FUNCTION_PATH = fileURLToPath(new URL('./viewer-request.js', import.meta.url));
/** Its minified copy, the code the template embeds (`edge/minify.mjs`). */
export const MINIFIED_FUNCTION_PATH = fileURLToPath(new URL('./viewer-request.min.js', import.meta.url));
/**
 * The function file the tests run: the source, or the file `PIXELFRONT_EDGE_FUNCTION` names
 * (CI runs the tests a second time on the minified copy).
 */
export const FUNCTION_PATH = process.env.PIXELFRONT_EDGE_FUNCTION
  ? fileURLToPath(new URL(process.env.PIXELFRONT_EDGE_FUNCTION, pathToFileURL(`${process.cwd()}/`)))
  : SOURCE_FUNCTION_PATH;
export const RESPONSE_FUNCTION_PATH = fileURLToPath(new URL('./viewer-response.js', import.meta.url));

const scripts = new Map();

// `import NAME from 'MODULE';` alone on a line, the only import form the file may use.
const IMPORT = /^import ([A-Za-z_$][\w$]*) from '([^']*)';[ \t]*$/gm;
const LOADER = '__pixelfrontHarnessImport';

/** Compile the function file once per path (strict mode, as the runtime enforces). */
function script(path) {
  if (!scripts.has(path)) {
    const code = readFileSync(path, 'utf8').replace(
      IMPORT,
      (_, name, module) => `var ${name} = ${LOADER}(${JSON.stringify(module)});`,
    );
    if (/^\s*import\b/m.test(code)) throw new Error(`${path}: unsupported import form`);
    // The prepended directive sits on line 0 so stack traces keep the file's line numbers.
    scripts.set(path, new vm.Script(`'use strict';\n${code}`, { filename: path, lineOffset: -1 }));
  }
  return scripts.get(path);
}

/** The key of the default policy, for tenants without an entry of their own. */
export const DEFAULT_KEY = '#default';

/**
 * A fake KeyValueStore handle over `entries` (a Map or a plain object of key -> stored string;
 * a non-string value is stored as its JSON). `loaded` (default true): a store that
 * `pixelfront tenant --aws init` has loaded, so `#default` is `{}` unless `entries` names it;
 * false: exactly `entries` (`{}`: a store never loaded). `error` (optional) makes every call
 * reject with it, like an unreachable store. `calls` records each call as [method, key].
 */
export function fakeKvs(entries = new Map(), { error, loaded = true } = {}) {
  const map = entries instanceof Map ? new Map(entries) : new Map(Object.entries(entries));
  if (loaded && !map.has(DEFAULT_KEY)) map.set(DEFAULT_KEY, '{}');
  for (const [k, v] of map) if (typeof v !== 'string') map.set(k, JSON.stringify(v));
  const calls = [];
  return {
    calls,
    async get(key, options = {}) {
      calls.push(['get', key]);
      if (error) throw error;
      if (!map.has(key)) throw new Error(`KeyNotFound: ${key}`);
      const raw = map.get(key);
      const format = options.format ?? 'string';
      if (format === 'string') return raw;
      if (format === 'json') return JSON.parse(raw);
      if (format === 'bytes') return Buffer.from(raw, 'utf8');
      throw new Error(`unknown format ${format}`);
    },
    async exists(key) {
      calls.push(['exists', key]);
      if (error) throw error;
      return map.has(key);
    },
    async meta() {
      calls.push(['meta']);
      if (error) throw error;
      return { creationDateTime: '', lastUpdatedDateTime: '', keyCount: map.size };
    },
  };
}

/** The `crypto` module as cloudfront-js-2.0 documents it, backed by node:crypto. */
const ALGORITHMS = ['md5', 'sha1', 'sha256'];
const ENCODINGS = ['hex', 'base64', 'base64url'];
function wrapDigest(inner) {
  const obj = {
    update(data) {
      inner.update(data);
      return obj;
    },
    digest(encoding) {
      if (encoding === undefined) return inner.digest();
      if (!ENCODINGS.includes(encoding)) throw new Error(`unsupported encoding ${encoding}`);
      return inner.digest(encoding);
    },
  };
  return obj;
}
const CRYPTO = Object.freeze({
  createHash(algorithm) {
    if (!ALGORITHMS.includes(algorithm)) throw new Error(`unsupported algorithm ${algorithm}`);
    return wrapDigest(nodeCrypto.createHash(algorithm));
  },
  createHmac(algorithm, key) {
    if (!ALGORITHMS.includes(algorithm)) throw new Error(`unsupported algorithm ${algorithm}`);
    return wrapDigest(nodeCrypto.createHmac(algorithm, key));
  },
});

/** Accept a Map/object of entries (a loaded store) or a ready handle (anything with get and exists). */
function kvsHandle(kvs) {
  if (kvs && typeof kvs.get === 'function' && typeof kvs.exists === 'function' && !(kvs instanceof Map)) {
    return kvs;
  }
  return fakeKvs(kvs ?? new Map());
}

/**
 * Evaluate the function file in a fresh context and return that context (its globals:
 * `handler`, `normalize`, `POLICY`, ...), for tests that exercise the pieces directly.
 * `kvs`: the KeyValueStore (see `kvsHandle`; default: loaded, no tenant entry); `now`: freeze
 * `Date.now()` at these Unix seconds (default: the real clock).
 */
export function loadFunction(path = FUNCTION_PATH, { kvs, now } = {}) {
  const handle = kvsHandle(kvs);
  const modules = {
    cloudfront: Object.freeze({
      // The function is associated with exactly one store: any id names it.
      kvs: () => handle,
    }),
    crypto: CRYPTO,
  };
  const context = vm.createContext({
    console,
    [LOADER]: (name) => {
      if (!Object.hasOwn(modules, name)) throw new Error(`no module '${name}' in cloudfront-js-2.0`);
      return modules[name];
    },
  });
  if (now !== undefined) {
    if (!Number.isInteger(now)) throw new Error('now: Unix seconds, an integer');
    vm.runInContext(`Date.now = function () { return ${now * 1000}; };`, context);
  }
  script(path).runInContext(context);
  if (typeof context.handler !== 'function') throw new Error(`${path} defines no handler`);
  return context;
}

/** Define an own, enumerable field even for names such as `__proto__`. */
function setField(obj, name, value) {
  Object.defineProperty(obj, name, { value, enumerable: true, writable: true, configurable: true });
}

/** Add one occurrence of a name to a querystring/headers object, CloudFront style. */
function addValue(obj, name, value) {
  if (!Object.prototype.hasOwnProperty.call(obj, name)) {
    setField(obj, name, { value });
    return;
  }
  const field = obj[name];
  if (!field.multiValue) field.multiValue = [{ value: field.value }];
  field.multiValue.push({ value });
}

/**
 * The raw query string (no `?`) as CloudFront's `querystring` object: pieces split on `&`,
 * empty pieces skipped, the name before the first `=`, the value after it (`''` without one),
 * nothing decoded. Names keep their case, so `W=1&w=2` gives two fields.
 */
export function parseQuerystring(raw) {
  const qs = {};
  for (const piece of raw.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    addValue(qs, eq < 0 ? piece : piece.slice(0, eq), eq < 0 ? '' : piece.slice(eq + 1));
  }
  return qs;
}

/** The same query as ordered [name, value] pairs, in the raw order (for direct tests). */
export function queryPairs(raw) {
  return raw
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? [p, ''] : [p.slice(0, eq), p.slice(eq + 1)];
    });
}

/**
 * Build the viewer-request event. `headers` maps names (any case) to a value or an array of
 * values; `accept` and `referer` (optional) are the Accept and Referer headers.
 */
export function buildEvent({ uri, querystring = '', accept, referer, headers = {} }) {
  const hs = {};
  addValue(hs, 'host', 'd111111abcdef8.cloudfront.net');
  if (accept !== undefined && accept !== null) addValue(hs, 'accept', accept);
  if (referer !== undefined && referer !== null) addValue(hs, 'referer', referer);
  for (const [name, v] of Object.entries(headers)) {
    for (const value of Array.isArray(v) ? v : [v]) addValue(hs, name.toLowerCase(), value);
  }
  return {
    version: '1.0',
    context: {
      distributionDomainName: 'd111111abcdef8.cloudfront.net',
      distributionId: 'EDFDVBD6EXAMPLE',
      eventType: 'viewer-request',
      requestId: 'pixelfront-harness',
    },
    viewer: { ip: '198.51.100.11' },
    request: {
      method: 'GET',
      uri,
      querystring: parseQuerystring(querystring),
      headers: hs,
      cookies: {},
    },
  };
}

/**
 * Run the real function on one request: `{uri, querystring (raw, no '?'), accept, referer,
 * headers, kvs, now}` (`kvs` and `now` as for `loadFunction`). Resolves to the handler's result
 * (a request or a response) as plain data, the way CloudFront would serialize it.
 */
export async function runViewerRequest(input, path = FUNCTION_PATH) {
  const context = loadFunction(path, { kvs: input.kvs, now: input.now });
  const result = await context.handler(buildEvent(input));
  return JSON.parse(JSON.stringify(result));
}

/**
 * Run the real viewer-response function: `request` is the request as CloudFront hands it to
 * that function (the viewer's `{uri, querystring, accept, referer, headers}` as for
 * `runViewerRequest`, or the viewer-request function's result, a request object, passed as
 * `{event: ...}`), `response` is `{statusCode, headers}` with `headers` as for the request
 * (name -> value or array of values). Resolves to the returned response as plain data.
 */
export async function runViewerResponse({ request, response }, path = RESPONSE_FUNCTION_PATH) {
  const req = request.event ?? buildEvent(request).request;
  const hs = {};
  for (const [name, v] of Object.entries(response.headers ?? {})) {
    for (const value of Array.isArray(v) ? v : [v]) addValue(hs, name.toLowerCase(), value);
  }
  const status = response.statusCode ?? 200;
  const event = {
    version: '1.0',
    context: {
      distributionDomainName: 'd111111abcdef8.cloudfront.net',
      distributionId: 'EDFDVBD6EXAMPLE',
      eventType: 'viewer-response',
      requestId: 'pixelfront-harness',
    },
    viewer: { ip: '198.51.100.11' },
    request: JSON.parse(JSON.stringify(req)),
    response: { statusCode: status, statusDescription: status === 200 ? 'OK' : '', headers: hs, cookies: {} },
  };
  const result = await loadFunction(path).handler(event);
  return JSON.parse(JSON.stringify(result));
}

/** Split `'<path>?<query>'` on the first '?' (no '?': empty query). */
export function splitUri(uri) {
  const q = uri.indexOf('?');
  return q < 0 ? { uri, querystring: '' } : { uri: uri.slice(0, q), querystring: uri.slice(q + 1) };
}
