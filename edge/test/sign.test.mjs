//! Signed URLs, tenant policy from the KeyValueStore and the Referer check (docs/signing.md) in the real
//! CloudFront Function: every case of tests/vectors/sign.json (generated with Python's hmac;
//! the Rust shared/src/sign.rs runs the same file) through the event harness with a fake
//! KeyValueStore and a frozen clock, then the rotation walk, the policy defaults (the `#default`
//! entry) and failures (fail closed: a store never loaded is a 503), the check order, and edge
//! cases of the scheme. Also `edge/sign.mjs`, the signing CLI twin.

import test from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runViewerRequest, loadFunction, fakeKvs, splitUri } from '../harness.mjs';
import { signUri, main as signMain } from '../sign.mjs';

const VECTORS = JSON.parse(readFileSync(new URL('../../tests/vectors/sign.json', import.meta.url), 'utf8'));
const NOW = VECTORS.now;
const P = '/img/acme/v3/products/red-shoe.jpg';
const Q = 'w=300&fmt=webp&utm_source=mail';
const OLD = ['k2026a', 's3cr3t-old-4f9c'];
const NEW = ['k2026b', 's3cr3t-new-77aa'];
const SIGN_CLI = fileURLToPath(new URL('../sign.mjs', import.meta.url));

/** The tenant of an /img/{tenant}/... path. */
const tenantOf = (uri) => uri.split('/')[2];

/** Run `uri` ('<path>?<query>') through the function; `kvs` maps tenant -> policy. */
function run(uri, { kvs = {}, referer, now = NOW, headers } = {}) {
  return runViewerRequest({ ...splitUri(uri), referer, headers, kvs, now });
}

/** The exact 403 the function answers. */
const forbidden = (reason) => ({
  statusCode: 403,
  statusDescription: 'Forbidden',
  headers: {
    'content-type': { value: 'text/plain; charset=utf-8' },
    'cache-control': { value: 'no-store' },
  },
  body: { encoding: 'text', data: reason },
});

/** A fourth, test-side implementation of the scheme (node:crypto), for hand-made cases. */
function hmacSig(secret, path, signed, exp, kid) {
  return createHmac('sha256', secret).update(`PF1\n${path}\n${signed}\n${exp}\n${kid}`).digest('base64url');
}

/** Sign with the CLI twin's function (the edge's own code). */
function signed(uri, [kid, secret], exp) {
  const r = signUri(uri, { kid, secret, exp });
  assert.ok(r.uri, JSON.stringify(r));
  return r.uri;
}

const SIGNED = { sign: true, keys: Object.fromEntries([OLD, NEW]), referers: ['shop.example.com', '*.acme.example'] };

test('vector file is well formed', () => {
  assert.ok(VECTORS.cases.length >= 31, `only ${VECTORS.cases.length} cases`);
  const names = new Set();
  for (const c of VECTORS.cases) {
    assert.ok(!names.has(c.name), `duplicate name ${c.name}`);
    names.add(c.name);
    assert.equal(typeof c.uri, 'string', c.name);
    assert.equal(typeof c.expect, 'string', c.name);
    assert.ok(c.referer === null || typeof c.referer === 'string', c.name);
    assert.equal(typeof c.tenant.sign, 'boolean', c.name);
  }
});

for (const c of VECTORS.cases) {
  test(`vector: ${c.name}`, async () => {
    // The case's policy is the KVS entry of the tenant its path names (acme, or globex for the
    // cross-tenant case): the function reads the policy of the tenant in the path.
    const out = await run(c.uri, { kvs: { [tenantOf(c.uri)]: JSON.stringify(c.tenant) }, referer: c.referer ?? undefined });
    if (c.expect === 'ok') {
      // The normal rewrite: what the same request gives with no policy at all.
      const open = await run(c.uri, { referer: c.referer ?? undefined });
      assert.equal(out.statusCode, undefined, JSON.stringify(out.body));
      assert.deepEqual(out, open);
      assert.match(out.uri, /^\/acme\/v3\/products\/red-shoe\.jpg\/[a-z0-9-]+\.(jpeg|webp|avif|png)$/);
      assert.deepEqual(out.querystring, {});
    } else {
      assert.deepEqual(out, forbidden(c.expect));
    }
  });
}

test('rotation: add the new key, move signers over, retire the old key', async () => {
  const exp = NOW + 3600;
  const byOld = signed(`${P}?${Q}`, OLD, exp);
  const byNew = signed(`${P}?${Q}`, NEW, exp);
  const states = [
    ['before: old key only', { [OLD[0]]: OLD[1] }, ['ok', 'unknown key']],
    ['overlap: both keys', { [OLD[0]]: OLD[1], [NEW[0]]: NEW[1] }, ['ok', 'ok']],
    ['after: new key only', { [NEW[0]]: NEW[1] }, ['unknown key', 'ok']],
  ];
  for (const [state, keys, [wantOld, wantNew]] of states) {
    const kvs = { acme: { sign: true, keys } };
    for (const [uri, want] of [[byOld, wantOld], [byNew, wantNew]]) {
      const out = await run(uri, { kvs });
      if (want === 'ok') assert.equal(out.statusCode, undefined, `${state}: ${JSON.stringify(out.body)}`);
      else assert.deepEqual(out, forbidden(want), state);
    }
  }
});

test('a tenant without a KVS entry gets #default; {} is the defaults: no signing, any Referer', async () => {
  const kvs = { globex: SIGNED, '#default': {} }; // someone else's policy must not apply
  for (const [uri, referer] of [
    [`${P}?${Q}`, undefined],
    [`${P}?${Q}&exp=1&kid=x&sig=y&exp=2`, undefined],
    [`${P}?${Q}`, 'https://evil.example.net/'],
    [`${P}?${Q}`, 'not a url'],
  ]) {
    const out = await run(uri, { kvs, referer });
    assert.equal(out.uri, '/acme/v3/products/red-shoe.jpg/w320-q80.webp', uri);
  }
});

test('absent policy fields default; an empty entry is the defaults', async () => {
  for (const policy of [{}, { sign: false }, { keys: { a: 'b' } }, { referers: [] }, { unknown: 1 }]) {
    const out = await run(`${P}?${Q}`, { kvs: { acme: policy }, referer: 'https://evil.example/' });
    assert.equal(out.statusCode, undefined, JSON.stringify(policy));
  }
  const refOnly = { acme: { referers: ['shop.example.com'] } };
  assert.deepEqual(await run(`${P}?${Q}`, { kvs: refOnly, referer: 'https://evil.example/' }), forbidden('hotlink refused'));
  assert.deepEqual(await run(`${P}?${Q}`, { kvs: { acme: { sign: true } } }), forbidden('signature required'));
  const url = signed(`${P}?${Q}`, OLD, NOW + 60);
  assert.deepEqual(await run(url, { kvs: { acme: { sign: true } } }), forbidden('unknown key'));
});

const UNAVAILABLE = {
  statusCode: 503,
  statusDescription: 'Service Unavailable',
  headers: {
    'content-type': { value: 'text/plain; charset=utf-8' },
    'cache-control': { value: 'no-store' },
  },
  body: { encoding: 'text', data: 'policy unavailable' },
};

const NOT_LOADED = { ...UNAVAILABLE, body: { encoding: 'text', data: 'tenant policies not loaded' } };

test('a store never loaded (no #default) is a 503 for every tenant, signed or not', async () => {
  const url = signed(`${P}?${Q}`, OLD, NOW + 60);
  for (const store of [{}, { globex: SIGNED }]) {
    for (const uri of [`${P}?${Q}`, url, '/img/demo/v1/a.jpg', '/img/x/v1/a.jpg?w=0']) {
      for (const referer of [undefined, 'https://shop.example.com/', 'https://evil.example/']) {
        const kvs = fakeKvs(store, { loaded: false });
        assert.deepEqual(await run(uri, { kvs, referer }), NOT_LOADED, `${JSON.stringify(store)} ${uri} ${referer}`);
      }
    }
  }
  // A tenant with its own entry is served by it even before #default is loaded.
  const partial = fakeKvs({ acme: SIGNED }, { loaded: false });
  assert.equal((await run(url, { kvs: partial })).uri, '/acme/v3/products/red-shoe.jpg/w320-q80.webp');
  assert.deepEqual(await run(`${P}?${Q}`, { kvs: partial }), forbidden('signature required'));
});

test('#default {"sign": true}: a tenant without an entry must sign (and has no keys)', async () => {
  const kvs = { '#default': { sign: true } };
  assert.deepEqual(await run(`${P}?${Q}`, { kvs }), forbidden('signature required'));
  assert.deepEqual(await run('/img/newcomer/v1/a.jpg', { kvs }), forbidden('signature required'));
  assert.deepEqual(await run(signed(`${P}?${Q}`, OLD, NOW + 60), { kvs }), forbidden('unknown key'));
  // The other fields apply as well.
  const refs = { '#default': { referers: ['shop.example.com'] } };
  assert.deepEqual(await run(`${P}?${Q}`, { kvs: refs, referer: 'https://evil.example/' }), forbidden('hotlink refused'));
  assert.equal((await run(`${P}?${Q}`, { kvs: refs, referer: 'https://shop.example.com/' })).statusCode, undefined);
});

test("a tenant's own entry wins over #default, in both directions", async () => {
  const open = { acme: {}, '#default': { sign: true } };
  assert.equal((await run(`${P}?${Q}`, { kvs: open })).uri, '/acme/v3/products/red-shoe.jpg/w320-q80.webp');
  assert.deepEqual(await run('/img/globex/v1/a.jpg', { kvs: open }), forbidden('signature required'));
  const strict = { acme: SIGNED, '#default': {} };
  assert.deepEqual(await run(`${P}?${Q}`, { kvs: strict }), forbidden('signature required'));
  assert.equal((await run('/img/globex/v1/a.jpg', { kvs: strict })).uri, '/globex/v1/a.jpg/q80.jpeg');
  // Even a tenant entry that cannot be read: 503, never #default in its place.
  assert.deepEqual(await run(`${P}?${Q}`, { kvs: { acme: '{"sign": tru' } }), UNAVAILABLE);
});

test('an unreadable or malformed #default is a 503 policy unavailable', async () => {
  for (const value of ['{"sign": tru', 'null', '[]', '{"sign":"yes"}']) {
    assert.deepEqual(await run(`${P}?${Q}`, { kvs: { '#default': value } }), UNAVAILABLE, value);
  }
});

test('a KVS failure is a 503, never a silent open', async () => {
  const down = fakeKvs({ acme: SIGNED }, { error: new Error('KVS unavailable') });
  assert.deepEqual(await run(`${P}?${Q}`, { kvs: down }), UNAVAILABLE);
  // Also for a tenant that would have had no entry: the function cannot know.
  const downEmpty = fakeKvs({}, { error: new Error('KVS unavailable') });
  assert.deepEqual(await run(`${P}?${Q}`, { kvs: downEmpty }), UNAVAILABLE);
  // get fails but the key exists (an unreadable value, e.g. not JSON): 503.
  assert.deepEqual(await run(`${P}?${Q}`, { kvs: { acme: '{"sign": tru' } }), UNAVAILABLE);
});

test('a policy of the wrong shape is a 503 (as Rust serde would refuse it)', async () => {
  for (const value of [
    'null',
    '[]',
    '"text"',
    '1',
    '{"sign":"yes"}',
    '{"sign":null}',
    '{"keys":[]}',
    '{"keys":null}',
    '{"keys":{"k":1}}',
    '{"referers":"shop.example.com"}',
    '{"referers":[1]}',
  ]) {
    assert.deepEqual(await run(`${P}?${Q}`, { kvs: { acme: value } }), UNAVAILABLE, value);
  }
});

test('KVS reads: one for a configured tenant, three for a newcomer, none for a bad path', async () => {
  const kvs = fakeKvs({ acme: SIGNED });
  await run(signed(`${P}?${Q}`, OLD, NOW + 60), { kvs });
  assert.deepEqual(kvs.calls, [['get', 'acme']]);
  // No entry: get and exists tell "missing" from a failure, then one get of #default.
  const loaded = fakeKvs({});
  assert.equal((await run(`${P}?${Q}`, { kvs: loaded })).statusCode, undefined);
  assert.deepEqual(loaded.calls, [['get', 'acme'], ['exists', 'acme'], ['get', '#default']]);
  // Never loaded: the same for #default as well.
  const empty = fakeKvs({}, { loaded: false });
  await run(`${P}?${Q}`, { kvs: empty });
  assert.deepEqual(empty.calls, [['get', 'acme'], ['exists', 'acme'], ['get', '#default'], ['exists', '#default']]);
  const unused = fakeKvs({}, { error: new Error('KVS unavailable') });
  const out = await run('/img/Acme/v3/a.jpg?w=300', { kvs: unused });
  assert.equal(out.statusCode, 400);
  // #default is no tenant id: a path cannot name it.
  for (const tenant of ['#default', '%23default']) {
    assert.deepEqual((await run(`/img/${tenant}/v3/a.jpg`, { kvs: unused })).body.data, 'bad tenant');
  }
  assert.deepEqual(unused.calls, []);
});

test('check order: a bad path is 400 before any policy; the signature before the query', async () => {
  const kvs = { acme: SIGNED };
  for (const [uri, reason] of [
    ['/img/acme/v0/products/red-shoe.jpg?w=300', 'bad version'],
    ['/img/acme/v3/products/../x.jpg', 'bad key'],
    ['/images/acme/v3/a.jpg', 'bad path: expected /img/{tenant}/v{N}/{key}'],
  ]) {
    const out = await run(uri, { kvs, referer: 'https://evil.example/' });
    assert.equal(out.statusCode, 400, uri);
    assert.deepEqual(out.body, { encoding: 'text', data: reason });
  }
  // A bad query on an unsigned URL: the signature check refuses first.
  assert.deepEqual(await run(`${P}?w=0`, { kvs }), forbidden('signature required'));
  // A bad query in a validly signed URL: the normalization 400 (the signature covers it).
  const bad = `${P}?w=0&exp=${NOW + 60}&kid=${OLD[0]}&sig=${hmacSig(OLD[1], P, 'w=0', NOW + 60, OLD[0])}`;
  const out = await run(bad, { kvs });
  assert.equal(out.statusCode, 400);
  assert.deepEqual(out.body, { encoding: 'text', data: 'bad w: expected an integer 1..8192' });
  // The Referer is checked after the signature.
  assert.deepEqual(await run(`${P}?${Q}`, { kvs, referer: 'https://evil.example/' }), forbidden('signature required'));
});

test('signature parameters never reach the cache key', async () => {
  const url = signed(`${P}?${Q}`, NEW, NOW + 60);
  const out = await run(url, { kvs: { acme: SIGNED } });
  assert.deepEqual(out.querystring, {});
  // Same request as the unsigned URL's but for the routing header, which carries them as sent.
  const plain = await run(`${P}?${Q}`);
  assert.equal(out.headers['x-pixelfront-request'].value, url);
  out.headers['x-pixelfront-request'] = plain.headers['x-pixelfront-request'];
  assert.deepEqual(out, plain);
});

test('exp, kid, sig: exact lower-case names; repeats before absence; formats', async () => {
  const kvs = { acme: SIGNED };
  const exp = NOW + 60;
  const good = signed(`${P}?${Q}`, OLD, exp);
  const sig = good.slice(good.indexOf('sig=') + 4);
  for (const [query, reason] of [
    [`${Q}&EXP=${exp}&kid=${OLD[0]}&sig=${sig}`, 'signature required'],
    [`${Q}&exp=${exp}&Kid=${OLD[0]}&sig=${sig}`, 'signature required'],
    [`${Q}&exp=${exp}&exp=${exp}`, 'bad signature parameters'], // repeated, kid/sig absent
    [`${Q}&exp=${exp}&kid=${OLD[0]}&sig`, 'bad signature parameters'], // bare sig: empty
    [`${Q}&exp=${exp}&kid=${OLD[0]}&sig=`, 'bad signature parameters'],
    [`${Q}&exp=&kid=${OLD[0]}&sig=${sig}`, 'bad signature parameters'],
    [`${Q}&exp=+${exp}&kid=${OLD[0]}&sig=${sig}`, 'bad signature parameters'],
    [`${Q}&exp=${exp}0&kid=${OLD[0]}&sig=${sig}`, 'bad signature parameters'], // 11 digits
    [`${Q}&exp=${exp}&kid=${'k'.repeat(65)}&sig=${sig}`, 'bad signature parameters'],
    [`${Q}&exp=${exp}&kid=k.1&sig=${sig}`, 'bad signature parameters'],
    [`${Q}&exp=${exp}&kid=k%31&sig=${sig}`, 'bad signature parameters'],
    [`${Q}&exp=${exp}&kid=${'k'.repeat(64)}&sig=${sig}`, 'unknown key'],
    [`${Q}&exp=${exp}&EXP=1&Sig=x&kid=${OLD[0]}&KID=y&sig=${sig}`, ''], // other spellings are junk
    [`${Q}&exp=${exp}&kid=${OLD[0]}&sig=${sig}=`, 'bad signature'], // padded form is not accepted
    [`${Q}&exp=${exp}&kid=${OLD[0]}&sig=${sig.slice(0, -1)}`, 'bad signature'],
  ]) {
    const out = await run(`${P}?${query}`, { kvs });
    if (reason) assert.deepEqual(out, forbidden(reason), query);
    else assert.equal(out.uri, '/acme/v3/products/red-shoe.jpg/w320-q80.webp', query);
  }
});

test('key ids that name Object.prototype members are unknown keys, not crashes', async () => {
  const kvs = { acme: SIGNED };
  for (const kid of ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'valueOf']) {
    const uri = `${P}?${Q}&exp=${NOW + 60}&kid=${kid}&sig=AAAA`;
    assert.deepEqual(await run(uri, { kvs }), forbidden('unknown key'), kid);
  }
  // A key literally named __proto__ in the KVS JSON works like any other.
  const proto = { acme: `{"sign":true,"keys":{"__proto__":"s"}}` };
  const uri = `${P}?${Q}&exp=${NOW + 60}&kid=__proto__&sig=${hmacSig('s', P, 'w=300&fmt=webp', NOW + 60, '__proto__')}`;
  assert.equal((await run(uri, { kvs: proto })).statusCode, undefined);
});

test('exp is signed as a number: leading zeros are not part of the string to sign', async () => {
  const kvs = { acme: { sign: true, keys: { k: 's' } } };
  const now = 1000;
  const asNumber = hmacSig('s', P, '', 5000, 'k');
  const asSent = hmacSig('s', P, '', '0000005000', 'k');
  assert.equal((await run(`${P}?exp=0000005000&kid=k&sig=${asNumber}`, { kvs, now })).statusCode, undefined);
  assert.deepEqual(await run(`${P}?exp=0000005000&kid=k&sig=${asSent}`, { kvs, now }), forbidden('bad signature'));
  assert.deepEqual(await run(`${P}?exp=0000001000&kid=k&sig=${asNumber}`, { kvs, now }), forbidden('expired'));
});

test('signed params: raw and case-preserved, only w/h/fmt/q, in the order sent', async () => {
  const kvs = { acme: { sign: true, keys: { k: 's' } } };
  const exp = NOW + 60;
  const query = 'W=300&utm=1&FMT=Webp&q=%38%30&x=y';
  const sig = hmacSig('s', P, 'W=300&FMT=Webp&q=%38%30', exp, 'k');
  const out = await run(`${P}?${query}&exp=${exp}&kid=k&sig=${sig}`, { kvs });
  assert.equal(out.statusCode, 400); // %38%30 is not decoded: q is not an integer
  assert.deepEqual(out.body, { encoding: 'text', data: 'bad q: expected an integer 1..100' });
  const ok = 'W=300&utm=1&FMT=Webp&q=80';
  const okSig = hmacSig('s', P, 'W=300&FMT=Webp&q=80', exp, 'k');
  assert.equal((await run(`${P}?${ok}&exp=${exp}&kid=k&sig=${okSig}`, { kvs })).uri, '/acme/v3/products/red-shoe.jpg/w320-q80.webp');
  // Unsigned junk may come anywhere, even between the signature parameters.
  const junk = `${P}?utm=0&${ok}&exp=${exp}&a=b&kid=k&c&sig=${okSig}&z=9`;
  assert.equal((await run(junk, { kvs })).uri, '/acme/v3/products/red-shoe.jpg/w320-q80.webp');
});

test('known limit: a repeated allowlisted name interleaved with another loses its raw order', async () => {
  // CloudFront hands the function one field per name, so `w=1&fmt=webp&w=2` arrives as
  // w=[1,2], fmt=webp: the rebuilt signed params differ from the raw ones. Such a query is a
  // duplicate (a 400 in Rust after a valid signature); the edge refuses it with 403 instead.
  const kvs = { acme: { sign: true, keys: { k: 's' } } };
  const exp = NOW + 60;
  const sig = hmacSig('s', P, 'w=1&fmt=webp&w=2', exp, 'k');
  assert.deepEqual(await run(`${P}?w=1&fmt=webp&w=2&exp=${exp}&kid=k&sig=${sig}`, { kvs }), forbidden('bad signature'));
  // Not interleaved: the raw order survives and normalization gives its 400.
  const sig2 = hmacSig('s', P, 'w=1&w=2&fmt=webp', exp, 'k');
  const out = await run(`${P}?w=1&w=2&fmt=webp&exp=${exp}&kid=k&sig=${sig2}`, { kvs });
  assert.deepEqual(out.body, { encoding: 'text', data: 'duplicate parameter w' });
});

test('Referer host: scheme required, cut at / ? # :, ASCII case-folded, wildcard needs a label', async () => {
  const kvs = { acme: { referers: ['Shop.Example.com', '*.ACME.example', '*.'] } };
  for (const [referer, ok] of [
    ['https://shop.example.com', true],
    ['https://SHOP.EXAMPLE.COM?x', true],
    ['https://shop.example.com#frag', true],
    ['https://shop.example.com:443/', true],
    ['android-app://shop.example.com/', true],
    ['://shop.example.com/', true], // an empty scheme still has '://' (as in Rust)
    ['https://a.b.acme.example/', true],
    ['https://x.acme.example', true],
    ['https://acme.example/', false], // the bare suffix
    ['https://.acme.example/', false], // empty label
    ['https://xacme.example/', false],
    ['shop.example.com', false], // no scheme
    ['xxshop.example.com', false], // no scheme, even when a tail would match
    ['', false],
    ['https:///shop.example.com', false], // empty host
    ['https://user@shop.example.com/', false],
    ['https://shop.example.com.evil.net/', false],
    ['https://shop.example.co/', false],
    ['https://SHOP.EXAMPLE.\u212Aom/', false], // Kelvin sign: not ASCII, no folding
    ['https://dot./', true], // '*.' allows any host ending in '.' with a label before it
    ['https://./', false],
  ]) {
    const out = await run(`${P}?${Q}`, { kvs, referer });
    if (ok) assert.equal(out.statusCode, undefined, `${referer} refused`);
    else assert.deepEqual(out, forbidden('hotlink refused'), referer);
  }
  // No Referer header: allowed. Several: the first counts.
  assert.equal((await run(`${P}?${Q}`, { kvs })).statusCode, undefined);
  const two = await run(`${P}?${Q}`, { kvs, headers: { referer: ['https://evil.example/', 'https://shop.example.com/'] } });
  assert.deepEqual(two, forbidden('hotlink refused'));
});

test('constant-time comparison: equal, different lengths, last character', () => {
  const fn = loadFunction();
  assert.equal(fn.same('abc', 'abc'), true);
  assert.equal(fn.same('', ''), true);
  assert.equal(fn.same('abc', 'abd'), false);
  assert.equal(fn.same('abc', 'ab'), false);
  assert.equal(fn.same('Abc', 'abc'), false);
});

test('the function signs like Python and node:crypto (string to sign, unpadded base64url)', () => {
  const fn = loadFunction();
  const s = fn.sign('s3cr3t-old-4f9c', P, 'w=300&fmt=webp', NOW + 3600, 'k2026a');
  assert.equal(s, VECTORS.cases[0].uri.split('sig=')[1]);
  assert.equal(s, hmacSig('s3cr3t-old-4f9c', P, 'w=300&fmt=webp', NOW + 3600, 'k2026a'));
  assert.doesNotMatch(s, /[=+/]/);
  // Non-ASCII secrets are keyed with their UTF-8 bytes.
  assert.equal(fn.sign('clé€', P, '', 1, 'k'), hmacSig(Buffer.from('clé€', 'utf8'), P, '', 1, 'k'));
});

// ---- edge/sign.mjs, the CLI twin of `pixelfront sign` ----

test('signUri reproduces every signed vector URL from its unsigned form', () => {
  let n = 0;
  for (const c of VECTORS.cases) {
    if (c.expect !== 'ok' || !c.tenant.sign || /utm_campaign/.test(c.uri)) continue;
    const m = /[?&]exp=(\d+)&kid=([^&]+)&sig=[^&]+$/.exec(c.uri);
    const base = c.uri.replace(/&?exp=.*$/, '');
    const secret = c.tenant.keys[m[2]];
    assert.equal(signUri(base, { kid: m[2], secret, exp: +m[1] }).uri, c.uri, c.name);
    n++;
  }
  assert.ok(n >= 4, `${n} vectors`);
});

test('signUri: drops old exp/kid/sig pieces, keeps the rest in order, always writes "?"', () => {
  const r = signUri(`${P}?sig=old&utm=1&&exp=9&W=300&kid=x&EXP=keep&q=80`, { kid: 'k', secret: 's', exp: 77 });
  const sig = hmacSig('s', P, 'W=300&q=80', 77, 'k');
  assert.equal(r.uri, `${P}?utm=1&W=300&EXP=keep&q=80&exp=77&kid=k&sig=${sig}`);
  assert.equal(signUri(P, { kid: 'k', secret: 's', exp: 77 }).uri, `${P}?exp=77&kid=k&sig=${hmacSig('s', P, '', 77, 'k')}`);
  assert.deepEqual(signUri(`${P}?w=1&W=2`, { kid: 'k', secret: 's', exp: 1 }), { reject: 'duplicate parameter w' });
  assert.deepEqual(signUri('/img/Acme/v1/a.jpg', { kid: 'k', secret: 's', exp: 1 }), { reject: 'bad tenant' });
  assert.match(signUri(P, { kid: 'k.1', secret: 's', exp: 1 }).error, /key id/);
  assert.match(signUri(P, { kid: 'k', secret: '', exp: 1 }).error, /secret/);
});

test('a URL signed by the CLI verifies at the edge until it expires', async () => {
  const kvs = { acme: SIGNED };
  const uri = signed(`${P}?${Q}&cachebust=1`, NEW, NOW + 10);
  assert.equal((await run(uri, { kvs, now: NOW + 9 })).uri, '/acme/v3/products/red-shoe.jpg/w320-q80.webp');
  assert.deepEqual(await run(uri, { kvs, now: NOW + 10 }), forbidden('expired'));
});

/** Run the CLI with PIXELFRONT_SIGNING_SECRET unset unless `env` sets it. */
function cli(args, env = {}) {
  const base = { ...process.env };
  delete base.PIXELFRONT_SIGNING_SECRET;
  return spawnSync(process.execPath, [SIGN_CLI, ...args], { encoding: 'utf8', env: { ...base, ...env } });
}

/** `main` in-process with the vectors' clock: {status, stdout, stderr}. */
function signInProcess(args, env = {}) {
  const out = [];
  const err = [];
  const status = signMain(args, { env, now: NOW, out: { write: (s) => out.push(s) }, err: { write: (s) => err.push(s) } });
  return { status, stdout: out.join(''), stderr: err.join('') };
}

test('CLI: prints the signed URI; --exp, --expires-at, --expires-in, env secret', () => {
  const want = `${VECTORS.cases[0].uri}\n`;
  for (const args of [
    ['--kid', OLD[0], '--secret', OLD[1], '--exp', String(NOW + 3600), `${P}?${Q}`],
    [`--kid=${OLD[0]}`, `--secret=${OLD[1]}`, `--expires-at=${NOW + 3600}`, `${P}?${Q}`],
    ['--kid', OLD[0], '--secret', OLD[1], '--expires-in', '3600', `${P}?${Q}`],
    ['--kid', OLD[0], '--secret', OLD[1], `${P}?${Q}`], // the default lifetime is one hour
  ]) {
    assert.deepEqual(signInProcess(args), { status: 0, stdout: want, stderr: '' }, args.join(' '));
  }
  const env = signInProcess(['--kid', OLD[0], '--exp', String(NOW + 3600), `${P}?${Q}`], { PIXELFRONT_SIGNING_SECRET: OLD[1] });
  assert.equal(env.stdout, want);
  // The process itself, on the real clock.
  const r = cli(['--kid', OLD[0], '--secret', OLD[1], '--exp', '9999999999', `${P}?${Q}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /&exp=9999999999&kid=k2026a&sig=[A-Za-z0-9_-]{43}\n$/);
});

test('CLI: an expiry the edge would never accept is refused (exit 2), as by pixelfront sign', () => {
  for (const [args, reason] of [
    [['--exp', '10000000000'], 'expiry 10000000000 is beyond what the edge accepts (at most 9999999999, 10 digits)'],
    [['--expires-in', String(9999999999 - NOW + 1)], 'expiry 10000000000 is beyond what the edge accepts (at most 9999999999, 10 digits)'],
    [['--exp', String(NOW)], `expiry ${NOW} is not in the future (now is ${NOW})`],
    [['--exp', '0'], `expiry 0 is not in the future (now is ${NOW})`],
    [['--expires-in', '0'], `expiry ${NOW} is not in the future (now is ${NOW})`],
  ]) {
    const r = signInProcess(['--kid', OLD[0], '--secret', OLD[1], ...args, `${P}?${Q}`]);
    assert.deepEqual(r, { status: 2, stdout: '', stderr: `${reason}\n` }, args.join(' '));
  }
  assert.equal(signInProcess(['--kid', OLD[0], '--secret', OLD[1], '--exp', '9999999999', `${P}?${Q}`]).status, 0);
});

test('CLI: a URL the edge rejects prints the 400 reason and exits 2', () => {
  const r = cli(['--kid', 'k', '--secret', 's', '/img/acme/v1/a.jpg?fmt=gif']);
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'bad fmt: expected jpeg, jpg, webp, avif, png or auto\n');
  const kid = cli(['--kid', 'bad kid', '--secret', 's', P]);
  assert.equal(kid.status, 2);
  assert.equal(kid.stderr, 'error: key id must be 1-64 characters of [A-Za-z0-9_-]\n');
});

test('CLI: usage errors exit 2 with the usage line; --help exits 0', () => {
  const usage = "usage: node edge/sign.mjs --kid <kid> --secret <secret> [--exp <unix> | --expires-in <secs>] '<path>?<query>'\n";
  for (const args of [
    [],
    ['--secret', 's', P],
    ['--kid', 'k', P],
    ['--kid', 'k', '--secret', 's'],
    ['--kid', 'k', '--secret', 's', P, P],
    ['--kid', 'k', '--secret', 's', '--exp', '1', '--expires-in', '2', P],
    ['--kid', 'k', '--secret', 's', '--exp', 'soon', P],
    ['--kid', 'k', '--secret', 's', '--expires-in', '-5', P],
    ['--kid', 'k', '--kid', 'k', '--secret', 's', P],
    ['--kid', 'k', '--secret', 's', '--bogus', P],
    ['--kid'],
  ]) {
    const r = cli(args);
    assert.equal(r.status, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: /);
    assert.ok(r.stderr.endsWith(usage), r.stderr);
  }
  const help = cli(['--help']);
  assert.equal(help.status, 0);
  assert.equal(help.stdout, usage);
});
