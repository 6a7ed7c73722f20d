//! Guards on the function file itself: the CloudFront size limit, a plain strict-mode script
//! with a top-level `handler`, none of the syntax the runtime (or a script without modules)
//! cannot take, and the exact shape of the rewritten request and of the 400 response.

import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { FUNCTION_PATH, runViewerRequest } from '../harness.mjs';

const bytes = readFileSync(FUNCTION_PATH);
const text = bytes.toString('utf8');
// The code with comments removed (the file has no `//` inside strings or regexes).
const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');

test('viewer-request.js is at most 10 KB (CloudFront Functions limit)', () => {
  assert.ok(bytes.length <= 10240, `${bytes.length} bytes`);
});

test('compiles as a classic strict-mode script and defines handler(event)', () => {
  assert.doesNotThrow(() => new vm.Script(`'use strict';\n${text}`));
  assert.match(code, /^function handler\(event\) \{$/m);
});

test('uses no modules, classes, async code, generators or lookbehind', () => {
  for (const [what, re] of [
    ['import', /\bimport\b/],
    ['export', /\bexport\b/],
    ['require', /\brequire\s*\(/],
    ['module.exports', /\bmodule\.exports\b/],
    ['class', /\bclass\b/],
    ['async', /\basync\b/],
    ['await', /\bawait\b/],
    ['generator', /\bfunction\s*\*|\byield\b/],
    ['eval', /\beval\s*\(|\bnew\s+Function\b/],
    ['regex lookbehind', /\(\?<[=!]/],
    ['node globals', /\b(process|Buffer|globalThis)\b/],
  ]) {
    assert.doesNotMatch(code, re, `found ${what}`);
  }
});

test('the policy block is present exactly once', () => {
  assert.equal(text.split('// BEGIN GENERATED POLICY').length, 2);
  assert.equal(text.split('// END GENERATED POLICY').length, 2);
});

test('success: only uri and querystring change', () => {
  const out = runViewerRequest({
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
    },
    cookies: {},
  });
});

test('reject: a complete 400 response with a plain-text body', () => {
  const out = runViewerRequest({ uri: '/img/acme/v1/a.jpg', querystring: 'fmt=gif' });
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
