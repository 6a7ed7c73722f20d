//! Routing (docs/aws-deploy.md, "The edge"): an admitted request leaves the function as the derivative object key with
//! an empty query string, carrying header `x-pixelfront-request` with the viewer's request (the
//! original path, then `?` and the handler's raw `name=value` pairs joined by `&` when there are
//! any), which the on-demand transformer re-validates. Rejected requests (400/403/503) carry no
//! rewrite. Round trip: the header, run through the function again, gives the same derivative.

import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildEvent, loadFunction, runViewerRequest, splitUri, fakeKvs } from '../harness.mjs';

const HEADER = 'x-pixelfront-request';
const { cases: NORMALIZE } = JSON.parse(
  readFileSync(new URL('../../tests/vectors/normalize.json', import.meta.url), 'utf8'),
);
const SIGN = JSON.parse(readFileSync(new URL('../../tests/vectors/sign.json', import.meta.url), 'utf8'));
const NOW = SIGN.now;
const P = '/img/acme/v3/photos/cat.jpg';

/** Run `uri` ('<path>?<query>') through the function. */
function run(uri, opts = {}) {
  return runViewerRequest({ ...splitUri(uri), ...opts });
}

/** The header the function set, or undefined. */
const header = (out) => out.headers && out.headers[HEADER];

test('admitted: derivative URI, empty query string, the exact viewer request in the header', async () => {
  for (const [query, uri, value] of [
    // Junk parameters and raw letter case are kept, in order.
    ['W=287&utm_source=x&fmt=WEBP', '/acme/v3/photos/cat.jpg/w320-q80.webp', `${P}?W=287&utm_source=x&fmt=WEBP`],
    // No query at all, or only empty pieces: the path alone, no '?'.
    ['', '/acme/v3/photos/cat.jpg/q80.jpeg', P],
    ['&&', '/acme/v3/photos/cat.jpg/q80.jpeg', P],
    // Empty pieces are not pieces; a bare name is name= (value '').
    ['&w=320&&debug&', '/acme/v3/photos/cat.jpg/w320-q80.jpeg', `${P}?w=320&debug=`],
    // Values stay raw (nothing decoded or re-encoded), '=' inside a value included.
    ['utm=%20a%26b&w=320&x=a=b', '/acme/v3/photos/cat.jpg/w320-q80.jpeg', `${P}?utm=%20a%26b&w=320&x=a=b`],
    // A repeated non-allowlisted name (multiValue) keeps all its values, grouped as the
    // handler's pairs are (CloudFront gives one field per spelling, in first-appearance order).
    ['utm=1&w=300&utm=2&fmt=png', '/acme/v3/photos/cat.jpg/w320.png', `${P}?utm=1&utm=2&w=300&fmt=png`],
    ['Utm=1&utm=2&UTM=3&utm=4', '/acme/v3/photos/cat.jpg/q80.jpeg', `${P}?Utm=1&utm=2&utm=4&UTM=3`],
  ]) {
    const out = await run(query ? `${P}?${query}` : P);
    assert.equal(out.statusCode, undefined, `${query}: ${JSON.stringify(out.body)}`);
    assert.equal(out.uri, uri, query);
    assert.deepEqual(out.querystring, {}, query);
    assert.deepEqual(header(out), { value }, query);
  }
});

test('the handler sees multiValue for the repeated name (so the header covers that case)', () => {
  const qs = buildEvent({ uri: P, querystring: 'utm=1&w=300&utm=2' }).request.querystring;
  assert.deepEqual(qs.utm.multiValue, [{ value: '1' }, { value: '2' }]);
});

test('admitted: only uri, querystring and the header change; other headers untouched', async () => {
  const out = await run(`${P}?w=320&fmt=webp`, { accept: 'image/avif', headers: { 'User-Agent': 'test' } });
  assert.deepEqual(out, {
    method: 'GET',
    uri: '/acme/v3/photos/cat.jpg/w320-q80.webp',
    querystring: {},
    headers: {
      host: { value: 'd111111abcdef8.cloudfront.net' },
      accept: { value: 'image/avif' },
      'user-agent': { value: 'test' },
      [HEADER]: { value: `${P}?w=320&fmt=webp` },
    },
    cookies: {},
  });
});

test('signed: exp, kid, sig and junk are kept as sent', async () => {
  for (const c of SIGN.cases.filter((c) => c.expect === 'ok' && c.tenant.sign)) {
    const out = await run(c.uri, { kvs: { acme: c.tenant }, referer: c.referer ?? undefined, now: NOW });
    assert.equal(out.statusCode, undefined, c.name);
    assert.deepEqual(out.querystring, {}, c.name);
    assert.deepEqual(header(out), { value: c.uri }, c.name);
    assert.match(header(out).value, /[?&]exp=\d+&kid=[^&]+&sig=[^&]+/, c.name);
  }
});

test('a client-sent x-pixelfront-request is overwritten (single and repeated)', async () => {
  for (const sent of ['/img/globex/v1/secret.jpg?w=16', ['/img/a/v1/b.jpg', '/img/c/v1/d.jpg']]) {
    const out = await run(`${P}?w=320`, { headers: { 'X-Pixelfront-Request': sent } });
    assert.equal(out.uri, '/acme/v3/photos/cat.jpg/w320-q80.jpeg');
    assert.deepEqual(header(out), { value: `${P}?w=320` });
  }
});

test('rejected: 400 (path, query), 403 (signature, hotlink), 503 (store) carry no rewrite', async () => {
  const client = { headers: { [HEADER]: '/img/acme/v3/photos/cat.jpg' } };
  const down = fakeKvs(new Map(), { error: new Error('store unreachable') });
  for (const [uri, opts, code, reason] of [
    ['/img/Acme/v1/a.jpg?w=320', {}, 400, 'bad tenant'],
    ['/images/acme/v1/a.jpg', {}, 400, 'bad path: expected /img/{tenant}/v{N}/{key}'],
    [`${P}?w=0`, {}, 400, 'bad w: expected an integer 1..8192'],
    [`${P}?w=320`, { kvs: { acme: { sign: true, keys: { k: 's' } } } }, 403, 'signature required'],
    [`${P}?w=320`, { kvs: { acme: { referers: ['shop.example.com'] } }, referer: 'https://evil.example/' }, 403, 'hotlink refused'],
    [`${P}?w=320`, { kvs: down }, 503, 'policy unavailable'],
    [`${P}?w=320`, { kvs: { acme: '{"sign":"yes"}' } }, 503, 'policy unavailable'],
  ]) {
    const out = await run(uri, { ...client, ...opts });
    assert.equal(out.statusCode, code, uri);
    assert.deepEqual(out.body, { encoding: 'text', data: reason }, uri);
    assert.deepEqual(Object.keys(out).sort(), ['body', 'headers', 'statusCode', 'statusDescription'], uri);
    assert.deepEqual(Object.keys(out.headers).sort(), ['cache-control', 'content-type'], uri);
  }
});

test('round trip: every accepted normalize vector, re-run from its header, gives the same URI', async () => {
  const fn = loadFunction();
  let n = 0;
  for (const c of NORMALIZE.filter((c) => 'key' in c)) {
    const first = await runViewerRequest({ uri: c.path, querystring: c.query, accept: c.accept });
    assert.equal(first.uri, `/${c.key}`, c.name);
    const sent = header(first).value;
    assert.ok(sent.startsWith(c.path), c.name);
    const again = await runViewerRequest({ ...splitUri(sent), accept: c.accept });
    assert.equal(again.uri, first.uri, `${c.name}: ${sent}`);
    assert.deepEqual(again.querystring, {}, c.name);
    // The header of the header is the header: the pairs survive the trip unchanged.
    assert.deepEqual(header(again), { value: sent }, c.name);
    // And the transformer's check: normalize(path, pairs) is exactly the rewritten key.
    const q = splitUri(sent);
    const pairs = q.querystring === '' ? [] : q.querystring.split('&').map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i), p.slice(i + 1)];
    });
    assert.equal(fn.normalize(q.uri, pairs, c.accept).key, c.key, c.name);
    n++;
  }
  assert.ok(n >= 30, `${n} accepted vectors`);
});

test('round trip: accepted signed vectors still verify from the header', async () => {
  let n = 0;
  for (const c of SIGN.cases.filter((c) => c.expect === 'ok')) {
    const opts = { kvs: { acme: c.tenant }, referer: c.referer ?? undefined, now: NOW };
    const first = await run(c.uri, opts);
    const again = await run(header(first).value, opts);
    assert.equal(again.statusCode, undefined, c.name);
    assert.equal(again.uri, first.uri, c.name);
    assert.deepEqual(header(again), header(first), c.name);
    n++;
  }
  assert.ok(n >= 8, `${n} accepted signed vectors`);
});
