// bench/policy.mjs — the bits of docs/url-grammar.md and docs/rendering.md the bench scripts need, read from the single
// source of truth /work/main/shared/policy.json (../shared/policy.json from here): the
// standard catalogue, and the canonicalisation of a `w/h/fmt/q` query (snap w/h UP to a
// breakpoint, q UP to a quality step, defaults filled in, derivative name), so that sharp renders
// exactly the canonical output pixelfront renders for the same query.
//
// This is a bench helper, not the product's normaliser (that is edge/viewer-request.js and the
// Rust shared crate): it only has to agree with them on valid queries. run.mjs checks that both
// sides produce the same derivative file name.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const POLICY_PATH = join(here, '..', 'shared', 'policy.json');
export const policy = JSON.parse(readFileSync(POLICY_PATH, 'utf8'));

const FORMATS = { jpeg: 'jpeg', jpg: 'jpeg', webp: 'webp', avif: 'avif', png: 'png', auto: 'auto' };

function snapUp(value, steps) {
  for (const s of steps) if (s >= value) return s;
  return steps[steps.length - 1];
}

/** Derivative name (docs/url-grammar.md) of a canonical request {w?, h?, fmt, q?}. */
export function derivativeName({ w, h, fmt, q }) {
  const parts = [];
  if (w) parts.push(`w${w}`);
  if (h) parts.push(`h${h}`);
  if (fmt !== 'png' && q) parts.push(`q${q}`);
  return `${parts.length ? parts.join('-') : 'orig'}.${fmt}`;
}

/**
 * Canonicalise a query string ('w=500&fmt=jpeg&q=90') as a client without an Accept header
 * would get it (fmt=auto -> jpeg). Throws Error with a reason on an invalid query.
 * Returns {w?, h?, fmt, q?, name}.
 */
export function canonicalize(query) {
  const seen = new Map();
  for (const pair of query.replace(/^\?/, '').split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1));
    if (!['w', 'h', 'fmt', 'q'].includes(key)) continue; // every other parameter is dropped
    if (seen.has(key)) throw new Error(`parameter ${key} given twice`);
    seen.set(key, value);
  }
  const int = (key, max) => {
    const v = seen.get(key);
    if (!/^[0-9]+$/.test(v)) throw new Error(`${key} must be a decimal integer`);
    const n = Number(v);
    if (n < 1 || n > max) throw new Error(`${key} out of range`);
    return n;
  };
  const out = {};
  if (seen.has('w')) out.w = snapUp(int('w', policy.max_dimension_param), policy.breakpoints);
  if (seen.has('h')) out.h = snapUp(int('h', policy.max_dimension_param), policy.breakpoints);
  const fmtIn = seen.has('fmt') ? seen.get('fmt').toLowerCase() : 'auto';
  if (!(fmtIn in FORMATS)) throw new Error(`unknown fmt ${seen.get('fmt')}`);
  out.fmt = FORMATS[fmtIn] === 'auto' ? 'jpeg' : FORMATS[fmtIn];
  if (out.fmt !== 'png') {
    const q = seen.has('q') ? int('q', 100) : policy.default_quality[out.fmt];
    out.q = snapUp(q, policy.quality_steps);
  }
  out.name = derivativeName(out);
  return out;
}

/** The standard catalogue with derivative names: [{name, w, h?, fmt, q, file}]. */
export function catalogue() {
  return policy.variants.map((v) => ({ ...v, file: derivativeName(v) }));
}
