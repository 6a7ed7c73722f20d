//! The viewer-response CloudFront Function (`edge/viewer-response.js`): `Vary: Accept` exactly on
//! the answers whose format came from Accept (the `vary` field of tests/vectors/normalize.json,
//! which the Rust mapping follows too), whichever form of the request CloudFront hands it (the
//! viewer's, or the viewer-request function's rewrite); an origin's other Vary names kept; the
//! file within the runtime's limits.

import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RESPONSE_FUNCTION_PATH, runViewerRequest, runViewerResponse } from '../harness.mjs';

const bytes = readFileSync(RESPONSE_FUNCTION_PATH);
const text = bytes.toString('utf8');
const code = text.replace(/(^|\s)\/\/.*$/gm, '$1');
const { cases } = JSON.parse(
  readFileSync(new URL('../../tests/vectors/normalize.json', import.meta.url), 'utf8'),
);
const PATH = '/img/acme/v1/photos/cat.jpg';

/** The Vary value of a response ('' when absent). */
const vary = (res) => res.headers.vary?.value ?? '';

test('viewer-response.js is at most 10 KB, a runtime-2.0 module with a plain handler', (t) => {
  assert.ok(bytes.length <= 10240, `${bytes.length} bytes`);
  const dir = mkdtempSync(join(tmpdir(), 'pixelfront-fn-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const copy = join(dir, 'viewer-response.mjs');
  writeFileSync(copy, text);
  const r = spawnSync(process.execPath, ['--check', copy], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(code, /^function handler\(event\) \{$/m);
  for (const re of [/\bimport\b/, /\bexport\b/, /\basync\b|\bawait\b/, /\bclass\b/, /\b(process|Buffer|globalThis)\b/]) {
    assert.doesNotMatch(code, re);
  }
});

test('every accepted vector: Vary: Accept exactly when its format came from Accept', async () => {
  let auto = 0;
  for (const c of cases.filter((c) => 'key' in c)) {
    assert.equal(typeof c.vary, 'boolean', `${c.name}: vary`);
    const viewer = { uri: c.path, querystring: c.query, accept: c.accept };
    const rewritten = await runViewerRequest(viewer);
    assert.equal(rewritten.uri, `/${c.key}`, c.name);
    // CloudFront may hand the function the rewritten request or the viewer's: same answer.
    for (const request of [{ event: rewritten }, viewer]) {
      const out = await runViewerResponse({ request, response: { statusCode: 200 } });
      assert.equal(vary(out), c.vary ? 'Accept' : '', `${c.name} ${request.event ? 'rewritten' : 'viewer'}`);
      // The stored object's own Vary names stay; a cached Accept goes when it does not apply.
      const withOrigin = await runViewerResponse({
        request,
        response: { statusCode: 200, headers: { vary: 'Origin, accept' } },
      });
      assert.equal(vary(withOrigin), c.vary ? 'Origin, Accept' : 'Origin', c.name);
    }
    auto += c.vary;
  }
  assert.ok(auto >= 20, `only ${auto} fmt=auto vectors`);
});

test('304 and other answers below 400 vary; errors do not gain Accept', async () => {
  const request = { uri: PATH, querystring: 'w=320' };
  for (const [statusCode, want] of [
    [200, 'Accept'],
    [206, 'Accept'],
    [304, 'Accept'],
    [307, 'Accept'],
    [400, ''],
    [403, ''],
    [404, ''],
    [503, ''],
  ]) {
    const out = await runViewerResponse({ request, response: { statusCode } });
    assert.equal(vary(out), want, String(statusCode));
  }
  const err = await runViewerResponse({ request, response: { statusCode: 404, headers: { vary: 'Accept' } } });
  assert.equal(err.headers.vary, undefined, 'an Accept the error does not depend on is removed');
});

test('a client-sent x-pixelfront-request never decides it for the viewer\'s own request', async () => {
  const spoofed = { uri: PATH, querystring: 'w=320', headers: { 'x-pixelfront-request': `${PATH}?fmt=webp` } };
  assert.equal(vary(await runViewerResponse({ request: spoofed, response: { statusCode: 200 } })), 'Accept');
  const explicit = { uri: PATH, querystring: 'fmt=WEBP', headers: { 'x-pixelfront-request': PATH } };
  assert.equal(vary(await runViewerResponse({ request: explicit, response: { statusCode: 200 } })), '');
  // A rewritten request without the header (never produced by the viewer-request function):
  // the safe side, Vary: Accept.
  const bare = { event: { method: 'GET', uri: '/acme/v1/photos/cat.jpg/q80.webp', querystring: {}, headers: {}, cookies: {} } };
  assert.equal(vary(await runViewerResponse({ request: bare, response: { statusCode: 200 } })), 'Accept');
});

test('Vary values: several fields merge, case and spaces normalized, * left alone', async () => {
  const request = { uri: PATH, querystring: 'fmt=auto' };
  for (const [given, want] of [
    [undefined, 'Accept'],
    ['Accept', 'Accept'],
    ['ACCEPT', 'Accept'],
    [['Origin', 'Access-Control-Request-Method'], 'Origin, Access-Control-Request-Method, Accept'],
    [' Origin ,, Accept-Encoding ', 'Origin, Accept-Encoding, Accept'],
    ['*', '*'],
  ]) {
    const headers = given === undefined ? {} : { vary: given };
    const out = await runViewerResponse({ request, response: { statusCode: 200, headers } });
    assert.equal(vary(out), want, JSON.stringify(given));
  }
  const explicit = { uri: PATH, querystring: 'fmt=png' };
  const out = await runViewerResponse({ request: explicit, response: { statusCode: 200, headers: { vary: 'Accept' } } });
  assert.equal(out.headers.vary, undefined);
});
