//! A local stand-in for the CloudFront Functions runtime.
//!
//! Loads the real `viewer-request.js` text (no copy of its logic), evaluates it as a strict-mode
//! script in a fresh `node:vm` context per call (the runtime has no module system: the file
//! just defines `handler`), builds the viewer-request event the way CloudFront does and returns
//! the handler's result as plain JSON data.
//!
//! Event shape (CloudFront Functions event structure, version 1.0): `request.uri` is the path
//! as sent; `request.querystring` has one field per distinct name, `{value}`, with the raw
//! (still percent-encoded) value, and when one spelling of a name repeats, `value` is the first
//! value and `multiValue` lists all of them in order; header names are lower-cased.

import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';

export const FUNCTION_PATH = fileURLToPath(new URL('./viewer-request.js', import.meta.url));

const scripts = new Map();

/** Compile the function file once per path (strict mode, as the runtime enforces). */
function script(path) {
  if (!scripts.has(path)) {
    const code = readFileSync(path, 'utf8');
    // The prepended directive sits on line 0 so stack traces keep the file's line numbers.
    scripts.set(path, new vm.Script(`'use strict';\n${code}`, { filename: path, lineOffset: -1 }));
  }
  return scripts.get(path);
}

/**
 * Evaluate the function file in a fresh context and return that context (its globals:
 * `handler`, `normalize`, `POLICY`, ...), for tests that exercise the pieces directly.
 */
export function loadFunction(path = FUNCTION_PATH) {
  const context = vm.createContext({ console });
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
 * values; `accept` (optional) is the Accept header.
 */
export function buildEvent({ uri, querystring = '', accept, headers = {} }) {
  const hs = {};
  addValue(hs, 'host', 'd111111abcdef8.cloudfront.net');
  if (accept !== undefined && accept !== null) addValue(hs, 'accept', accept);
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
 * Run the real function on one request: `{uri, querystring (raw, no '?'), accept, headers}`.
 * Returns the handler's result (a request or a response) as plain data, the way CloudFront
 * would serialize it.
 */
export function runViewerRequest(input, path = FUNCTION_PATH) {
  const context = loadFunction(path);
  const result = context.handler(buildEvent(input));
  return JSON.parse(JSON.stringify(result));
}
