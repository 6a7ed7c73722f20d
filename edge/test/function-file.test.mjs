//! Guards on the function file itself: the CloudFront size limit on the minified copy the
//! template embeds (current with its source), a runtime-2.0 module with a top-level async
//! `handler` (source and minified copy), the two imports the runtime offers (and the harness rewrites),
//! none of the syntax the runtime cannot take, and the exact shape of the rewritten request
//! and of the 400 response.

import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MINIFIED_FUNCTION_PATH, SOURCE_FUNCTION_PATH, runViewerRequest } from '../harness.mjs';
import { minifyFunction } from '../minify.mjs';

// The structure checks read the source; the behaviour tests below run FUNCTION_PATH (the
// source, or the minified copy under PIXELFRONT_EDGE_FUNCTION).
const text = readFileSync(SOURCE_FUNCTION_PATH, 'utf8');
const minified = readFileSync(MINIFIED_FUNCTION_PATH, 'utf8');
// The code with comments removed (the file has no `//` inside strings or regexes).
const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');

test('the minified copy the template embeds is at most 10 KB (CloudFront Functions limit)', () => {
  const bytes = Buffer.byteLength(minified);
  assert.ok(bytes <= 10240, `${bytes} bytes`);
});

test('the minified copy is the minified source (node edge/minify.mjs)', async () => {
  assert.equal(minified, await minifyFunction(text), 'run node edge/minify.mjs');
});

test('source and minified copy parse as runtime-2.0 modules and define async handler', (t) => {
  // `node --check` on a .mjs copy parses the file as an ES module (imports are not resolved).
  const dir = mkdtempSync(join(tmpdir(), 'pixelfront-fn-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, body] of [['source', text], ['minified', minified]]) {
    const copy = join(dir, `${name}.mjs`);
    writeFileSync(copy, body);
    const r = spawnSync(process.execPath, ['--check', copy], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    assert.ok(body.startsWith("import cf from 'cloudfront';\nimport crypto from 'crypto';\n"), name);
    assert.match(body, /(^|[;}\n])async function handler\(\w+\)\{?/m, name);
  }
  assert.match(code, /^async function handler\(event\) \{$/m);
  assert.doesNotMatch(minified, /[^\x09\x0a\x20-\x7e]/, 'ASCII only: the YAML block carries it verbatim');
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
