//! Guards on the function file itself: the CloudFront size limit, a runtime-2.0 module with a
//! top-level async `handler`, the two imports the runtime offers (and the harness rewrites),
//! none of the syntax the runtime cannot take, and the exact shape of the rewritten request
//! and of the 400 response.

import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FUNCTION_PATH, runViewerRequest } from '../harness.mjs';

const bytes = readFileSync(FUNCTION_PATH);
const text = bytes.toString('utf8');
// The code with comments removed (the file has no `//` inside strings or regexes).
const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');

test('viewer-request.js is at most 10 KB (CloudFront Functions limit)', () => {
  assert.ok(bytes.length <= 10240, `${bytes.length} bytes`);
});

test('parses as a runtime-2.0 module and defines async handler(event)', (t) => {
  // `node --check` on a .mjs copy parses the file as an ES module (imports are not resolved).
  const dir = mkdtempSync(join(tmpdir(), 'pixelfront-fn-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const copy = join(dir, 'viewer-request.mjs');
  writeFileSync(copy, text);
  const r = spawnSync(process.execPath, ['--check', copy], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(code, /^async function handler\(event\) \{$/m);
});

test('the only imports are cloudfront and crypto, first in the file, default form', () => {
  assert.ok(text.startsWith("import cf from 'cloudfront';\nimport crypto from 'crypto';\n"));
  assert.equal(code.match(/\bimport\b/g).length, 2);
  // The store is bound once, without an id (the function has exactly one associated store).
  assert.equal(code.match(/\bcf\.kvs\(\)/g).length, 1);
});

test('async only for the handler and the KeyValueStore reads; no exports, classes, generators', () => {
  assert.deepEqual(code.match(/\basync\b.*/g).map((l) => /^async function \w+\(/.test(l)), [true, true]);
  for (const line of code.match(/\bawait\b.*/g)) assert.match(line, /^await (kvs\.(get|exists)|policyOf)\(/);
  for (const [what, re] of [
    ['export', /\bexport\b/],
    ['require', /\brequire\s*\(/],
    ['module.exports', /\bmodule\.exports\b/],
    ['class', /\bclass\b/],
    ['generator', /\bfunction\s*\*|\byield\b/],
    ['eval', /\beval\s*\(|\bnew\s+Function\b/],
    ['regex lookbehind', /\(\?<[=!]/],
    ['promise combinators or chains', /\bPromise\b|\.then\(|\.catch\(/],
    ['node globals', /\b(process|Buffer|globalThis)\b/],
  ]) {
    assert.doesNotMatch(code, re, `found ${what}`);
  }
});

test('the policy block is present exactly once', () => {
  assert.equal(text.split('// BEGIN GENERATED POLICY').length, 2);
  assert.equal(text.split('// END GENERATED POLICY').length, 2);
});

test('success: only uri, querystring and x-pixelfront-request change', async () => {
  const out = await runViewerRequest({
    uri: '/img/acme/v3/photos/cat.jpg',
    querystring: 'W=287&utm_source=x&fmt=WEBP',
    accept: 'image/avif',
    headers: { 'User-Agent': 'test' },
  });
  assert.deepEqual(out, {
    method: 'GET',
    uri: '/acme/v3/photos/cat.jpg/w320-q80.webp',
    querystring: {},
    headers: {
      host: { value: 'd111111abcdef8.cloudfront.net' },
      accept: { value: 'image/avif' },
      'user-agent': { value: 'test' },
      'x-pixelfront-request': { value: '/img/acme/v3/photos/cat.jpg?W=287&utm_source=x&fmt=WEBP' },
    },
    cookies: {},
  });
});

test('reject: a complete 400 response with a plain-text body', async () => {
  const out = await runViewerRequest({ uri: '/img/acme/v1/a.jpg', querystring: 'fmt=gif' });
  assert.deepEqual(out, {
    statusCode: 400,
    statusDescription: 'Bad Request',
    headers: {
      'content-type': { value: 'text/plain; charset=utf-8' },
      'cache-control': { value: 'public, max-age=10' },
    },
    body: { encoding: 'text', data: 'bad fmt: expected jpeg, jpg, webp, avif, png or auto' },
  });
});
