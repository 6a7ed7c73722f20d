//! The shared normalization vectors (tests/vectors/normalize.json) through the real
//! CloudFront Function: every case through the CloudFront-event harness (handler), and again
//! through the function's own `normalize` on the raw query pairs (to check `canonical` too).
//! The Rust shared crate runs the same file, so passing here means the edge and Rust agree.

import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runViewerRequest, loadFunction, queryPairs } from '../harness.mjs';

const { cases } = JSON.parse(
  readFileSync(new URL('../../tests/vectors/normalize.json', import.meta.url), 'utf8'),
);

test('vector file is well formed', () => {
  assert.ok(cases.length >= 120, `only ${cases.length} cases`);
  const names = new Set();
  for (const c of cases) {
    assert.equal(typeof c.path, 'string', c.name);
    assert.equal(typeof c.query, 'string', c.name);
    assert.equal('key' in c, !('reject' in c), `${c.name}: exactly one of key/reject`);
    if ('key' in c) assert.equal(typeof c.canonical, 'string', c.name);
    // Whether the answer varies on Accept (checked by viewer-response.test.mjs and in Rust).
    if ('key' in c) assert.equal(typeof c.vary, 'boolean', c.name);
    assert.ok(!names.has(c.name), `duplicate name ${c.name}`);
    names.add(c.name);
  }
});

for (const c of cases) {
  test(`handler: ${c.name}`, async () => {
    const out = await runViewerRequest({ uri: c.path, querystring: c.query, accept: c.accept });
    if ('key' in c) {
      assert.equal(out.statusCode, undefined, `rejected: ${JSON.stringify(out.body)}`);
      assert.equal(out.uri, `/${c.key}`);
      assert.deepEqual(out.querystring, {});
      assert.equal(out.method, 'GET');
    } else {
      assert.equal(out.statusCode, 400);
      assert.equal(out.statusDescription, 'Bad Request');
      assert.deepEqual(out.body, { encoding: 'text', data: c.reject });
    }
  });
}

test('normalize() on raw-order pairs matches key, canonical and reason', () => {
  const fn = loadFunction();
  for (const c of cases) {
    const r = JSON.parse(JSON.stringify(fn.normalize(c.path, queryPairs(c.query), c.accept)));
    const want = 'key' in c ? { key: c.key, canonical: c.canonical } : { reject: c.reject };
    assert.deepEqual(r, want, c.name);
  }
});
