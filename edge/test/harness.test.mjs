//! The CloudFront-event harness builds events the way CloudFront does, and the handler reads
//! them correctly: raw values, one field per spelling of a name, multiValue for repeats. A
//! seeded random sweep checks that going through the querystring object (which loses the
//! interleaving of different names) gives the same answer as the raw query order.

import test from 'node:test';
import assert from 'node:assert/strict';
import {
  buildEvent,
  parseQuerystring,
  queryPairs,
  runViewerRequest,
  loadFunction,
} from '../harness.mjs';

const PATH = '/img/acme/v1/photos/cat.jpg';

test('querystring object: raw values, case-distinct names, multiValue, bare names', () => {
  const qs = parseQuerystring('w=%33%32&W=1&w=2&&debug&q=&a=b=c');
  assert.deepEqual(Object.keys(qs), ['w', 'W', 'debug', 'q', 'a']);
  assert.deepEqual(qs.w, { value: '%33%32', multiValue: [{ value: '%33%32' }, { value: '2' }] });
  assert.deepEqual(qs.W, { value: '1' });
  assert.deepEqual(qs.debug, { value: '' });
  assert.deepEqual(qs.q, { value: '' });
  assert.deepEqual(qs.a, { value: 'b=c' });
  assert.deepEqual(parseQuerystring(''), {});
});

test('querystring object: a __proto__ name is an ordinary field', async () => {
  const qs = parseQuerystring('__proto__=1&w=320');
  assert.deepEqual(Object.keys(qs), ['__proto__', 'w']);
  const out = await runViewerRequest({ uri: PATH, querystring: '__proto__=1&w=320&constructor=x' });
  assert.equal(out.uri, '/acme/v1/photos/cat.jpg/w320-q80.jpeg');
});

test('event: viewer-request shape with lower-case header names', () => {
  const e = buildEvent({ uri: PATH, querystring: 'w=1', accept: 'image/webp', headers: { 'X-A': ['1', '2'] } });
  assert.equal(e.version, '1.0');
  assert.equal(e.context.eventType, 'viewer-request');
  assert.equal(e.request.method, 'GET');
  assert.equal(e.request.uri, PATH);
  assert.deepEqual(e.request.headers.accept, { value: 'image/webp' });
  assert.deepEqual(e.request.headers['x-a'], { value: '1', multiValue: [{ value: '1' }, { value: '2' }] });
  assert.equal(buildEvent({ uri: PATH }).request.headers.accept, undefined);
});

test('duplicates across letter case arrive as two fields and are still duplicates', async () => {
  for (const [query, reason] of [
    ['W=1&w=2', 'duplicate parameter w'],
    ['w=1&W=2&fMt=png&FMT=png', 'duplicate parameter w'],
    ['Q=1&h=1&q=2&H=3', 'duplicate parameter q'],
  ]) {
    const out = await runViewerRequest({ uri: PATH, querystring: query });
    assert.deepEqual(out.body, { encoding: 'text', data: reason }, query);
  }
});

test('several Accept headers count as one comma-joined list', async () => {
  const out = await runViewerRequest({ uri: PATH, headers: { accept: ['image/jpeg', 'image/avif'] } });
  assert.equal(out.uri, '/acme/v1/photos/cat.jpg/q60.avif');
});

test('one unusable byte in any of several Accept headers makes them all absent', async () => {
  const out = await runViewerRequest({ uri: PATH, headers: { accept: ['image/avif', 'caf\u00e9'] } });
  assert.equal(out.uri, '/acme/v1/photos/cat.jpg/q80.jpeg');
});

test('Accept parsing mirrors Rust: case, q=0 forms, whitespace, wildcards, unusable bytes', () => {
  const fn = loadFunction();
  for (const [accept, fmt] of [
    [undefined, 'jpeg'],
    ['', 'jpeg'],
    ['*/*', 'jpeg'],
    ['IMAGE/AVIF', 'avif'],
    [' image/avif ; Q=0.000 , image/webp ;q=0.5', 'webp'],
    ['image/avif;q=0.', 'jpeg'],
    ['image/avif;q=0.0000', 'avif'],
    ['image/avif;q=00', 'avif'],
    ['image/avif;q= 0', 'avif'],
    ['image/avif;q=0;q=1', 'jpeg'],
    ['image/avif;q=0, image/avif', 'avif'],
    ['\timage/avif\t', 'avif'],
    // Any character outside tab, space and visible ASCII: the header counts as absent.
    ['\u00a0image/avif\u3000', 'jpeg'],
    ['\u0085image/avif', 'jpeg'],
    ['\ufeffimage/avif', 'jpeg'],
    ['image/avif\r\n', 'jpeg'],
    ['image/avif,\u00e9', 'jpeg'],
    ['image/webp,\u0000', 'jpeg'],
    ['image/webp,\u007f', 'jpeg'],
    ['image/avifx', 'jpeg'],
  ]) {
    assert.equal(fn.normalize(PATH, [], accept).key.split('.').pop(), fmt, JSON.stringify(accept));
  }
});

test('non-ASCII lengths count UTF-8 bytes (Rust str::len)', () => {
  const fn = loadFunction();
  const reason = (key) => fn.normalize(`/img/acme/v1/${key}`, [], '').reject;
  assert.equal(reason('é'.repeat(256)), 'bad key'); // 512 bytes
  assert.equal(reason('é'.repeat(257)), 'key longer than 512 bytes'); // 514 bytes
  assert.equal(reason('a'.repeat(341) + '€'.repeat(57)), 'bad key'); // 341 + 171 = 512
  assert.equal(reason('😀'.repeat(128)), 'bad key'); // 512
  assert.equal(reason('😀'.repeat(128) + 'a'), 'key longer than 512 bytes');
});

test('ASCII-only case folding of names and fmt values', () => {
  const fn = loadFunction();
  // Only A-Z fold: a non-ASCII letter never makes a name or a format match.
  assert.equal(fn.normalize(PATH, [['FMT', 'P\u0130NG']], '').reject.startsWith('bad fmt'), true);
  assert.equal(fn.normalize(PATH, [['\u0130', '1'], ['fmt', 'PNG']], '').key.endsWith('orig.png'), true);
});

// Small deterministic PRNG (mulberry32) for the sweep.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('handler (querystring object) agrees with raw-order normalize on random queries', async () => {
  const pick = (r, xs) => xs[Math.floor(r() * xs.length)];
  const names = ['w', 'W', 'h', 'H', 'q', 'Q', 'fmt', 'FMT', 'Fmt', 'x', 'utm', '5', '%77', ''];
  const values = ['320', '0', '1', '8192', '8193', 'abc', '', 'webp', 'PNG', 'auto', 'jpg', '80', '007'];
  const accepts = [undefined, 'image/avif', 'image/webp,*/*', 'image/avif;q=0,image/webp'];
  const r = rng(20240601);
  const fn = loadFunction();
  for (let i = 0; i < 400; i++) {
    const n = Math.floor(r() * 6);
    const pieces = [];
    for (let j = 0; j < n; j++) {
      const name = pick(r, names);
      pieces.push(r() < 0.1 ? name : `${name}=${pick(r, values)}`);
      if (r() < 0.1) pieces.push('');
    }
    const query = pieces.join('&');
    const accept = pick(r, accepts);
    const direct = fn.normalize(PATH, queryPairs(query), accept);
    const out = await runViewerRequest({ uri: PATH, querystring: query, accept });
    const viaHandler = out.statusCode ? { reject: out.body.data } : { key: out.uri.slice(1) };
    const want = direct.reject !== undefined ? { reject: direct.reject } : { key: direct.key };
    assert.deepEqual(viaHandler, want, `${query} / ${accept}`);
  }
});
