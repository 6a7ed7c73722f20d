import cf from 'cloudfront';
import crypto from 'crypto';
//! Pixelfront viewer-request CloudFront Function (cloudfront-js-2.0, <= 10 KB), docs/url-grammar.md, docs/signing.md:
//! path, tenant policy (KeyValueStore: signature, Referer), then the query -> derived object
//! key, and header x-pixelfront-request = the viewer's path?name=value&... for the transformer
//! to re-check; else 400/403/503 with the reason. Mirrors shared/src/{normalize,sign}.rs.

// The one store associated with the function: tenant id -> policy JSON.
var kvs = cf.kvs();

// BEGIN GENERATED POLICY by edge/gen-policy.mjs from shared/policy.json
var POLICY = {"breakpoints":[16,32,48,64,96,128,160,240,320,480,640,768,960,1080,1280,1440,1600,1920,2048,2560],"quality_steps":[30,40,50,60,70,75,80,85,90,95,100],"default_quality":{"jpeg":80,"webp":80,"avif":60},"max_dimension_param":8192,"max_key_bytes":512};
// END GENERATED POLICY

// Space and tab at either end: the only whitespace a usable Accept can hold.
var TRIM = /^[\t ]+|[\t ]+$/g;

// A rejection is thrown as {reject} and caught by guard().
function fail(reason) { throw { reject: reason }; }

function guard(f) {
  try {
    return f();
  } catch (e) {
    if (e && typeof e.reject === 'string') return { reject: e.reject };
    throw e;
  }
}

// ASCII-only lower-casing (Rust to_ascii_lowercase).
function lc(s) {
  return s.replace(/[A-Z]+/g, function (m) { return m.toLowerCase(); });
}

// '/img/{t}/v{N}/{key}' -> '{t}/v{N}/{key}', in parse_path's check order.
function parsePath(path) {
  var rest = path.slice(5);
  var a = rest.indexOf('/');
  var b = a < 0 ? -1 : rest.indexOf('/', a + 1);
  if (path.slice(0, 5) !== '/img/' || b < 0) fail('bad path: expected /img/{tenant}/v{N}/{key}');
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(rest.slice(0, a))) fail('bad tenant');
  if (!/^v[1-9][0-9]{0,8}$/.test(rest.slice(a + 1, b))) fail('bad version');
  var key = rest.slice(b + 1);
  // UTF-8 length in bytes (a surrogate pair is 2 + 2).
  for (var n = 0, i = 0; i < key.length; i++) {
    var c = key.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 || (c >= 0xd800 && c < 0xe000) ? 2 : 3;
  }
  if (n > POLICY.max_key_bytes) fail('key longer than ' + POLICY.max_key_bytes + ' bytes');
  key.split('/').forEach(function (s) {
    if (s === '.' || s === '..' || !/^[A-Za-z0-9._~-]+$/.test(s)) fail('bad key');
  });
  return rest;
}

// 1..9 ASCII digits (leading zeros fine), value in 1..max.
function int(v, max, name) {
  if (!/^[0-9]{1,9}$/.test(v) || +v < 1 || +v > max) {
    fail('bad ' + name + ': expected an integer 1..' + max);
  }
  return +v;
}

// dpr: 1-2 digits, optionally . and 1-3 digits, 1..10; up to the next of 1, 1.5, 2, 3 (in
// halves: 2, 3, 4, 6), above 3: 3.
function dpr(v) {
  var m = /^([0-9]{1,2})(?:\.([0-9]{1,3}))?$/.exec(v);
  var milli = m ? +m[1] * 1000 + +((m[2] || '') + '000').slice(0, 3) : 0;
  if (milli < 1000 || milli > 10000) fail('bad dpr: expected a number 1..10 with at most 3 decimals');
  return snap(milli, [1000, 1500, 2000, 3000]) / 500;
}

// Up to the next step; above the largest, the largest.
function snap(n, steps) {
  for (var i = 0; i < steps.length; i++) if (steps[i] >= n) return steps[i];
  return steps[steps.length - 1];
}

// Accept lists `type` (lower case) in a range without a zero q-value.
function accepts(accept, type) {
  return accept.split(',').some(function (range) {
    var p = range.split(';');
    return lc(p[0].replace(TRIM, '')) === type && !p.slice(1).some(function (x) {
      return /^[qQ]=0(\.0{0,3})?$/.test(x.replace(TRIM, ''));
    });
  });
}

// (path, raw [name, value] pairs, Accept) -> {key, canonical} or {reject}.
function normalize(path, pairs, accept) {
  return guard(function () {
    var prefix = parsePath(path);
    // Allowlisted names: first value and count, by first appearance.
    var seen = {}, order = [];
    pairs.forEach(function (p) {
      var k = lc(p[0]);
      if (['dpr', 'fmt', 'h', 'q', 'w'].indexOf(k) < 0) return;
      if (seen[k]) seen[k].n++;
      else {
        seen[k] = { v: p[1], n: 1 };
        order.push(k);
      }
    });
    order.forEach(function (k) {
      if (seen[k].n > 1) fail('duplicate parameter ' + k);
    });
    // Then the values: dpr, fmt, h, q, w. dpr snaps up to 1, 1.5, 2 or 3 (in halves: d).
    var d = seen.dpr ? dpr(seen.dpr.v) : 2;
    // fmt=auto: avif, else webp, else jpeg.
    var f = seen.fmt ? lc(seen.fmt.v) : 'auto';
    var fmt = f === 'jpg' ? 'jpeg' : /^(jpeg|webp|avif|png)$/.test(f) ? f : '';
    if (f === 'auto') {
      // Anything but tab and visible ASCII or space: no Accept (as Rust, byte for byte).
      accept = /^[\t -~]*$/.test(accept || '') ? accept || '' : '';
      fmt = accepts(accept, 'image/avif') ? 'avif' : accepts(accept, 'image/webp') ? 'webp' : 'jpeg';
    }
    if (!fmt) fail('bad fmt: expected jpeg, jpg, webp, avif, png or auto');
    var max = POLICY.max_dimension_param, bp = POLICY.breakpoints;
    // A dimension times the DPR, rounded up, then snapped: w=320&dpr=2 is w=640.
    var h = seen.h ? snap(Math.ceil(int(seen.h.v, max, 'h') * d / 2), bp) : 0;
    var q = seen.q ? int(seen.q.v, 100, 'q') : 0;
    var w = seen.w ? snap(Math.ceil(int(seen.w.v, max, 'w') * d / 2), bp) : 0;
    q = fmt === 'png' ? 0 : q ? snap(q, POLICY.quality_steps) : POLICY.default_quality[fmt];
    var parts = [w && 'w' + w, h && 'h' + h, q && 'q' + q].filter(Boolean);
    return {
      key: prefix + '/' + (parts.join('-') || 'orig') + '.' + fmt,
      canonical: 'fmt=' + fmt + (h ? '&h=' + h : '') + (q ? '&q=' + q : '') + (w ? '&w=' + w : '')
    };
  });
}

// Pairs as 'name=value' joined by '&'.
function join(pairs) {
  return pairs.map(function (p) { return p[0] + '=' + p[1]; }).join('&');
}

// Pieces named w, h, fmt, q or dpr (any case), as sent, in order.
function signedParams(pairs) {
  return join(pairs.filter(function (p) { return /^(w|h|fmt|q|dpr)$/.test(lc(p[0])); }));
}

// Unpadded base64url HMAC-SHA256, keyed with the secret's UTF-8 bytes.
function sign(secret, path, signed, exp, kid) {
  return crypto.createHmac('sha256', secret)
    .update('PF1\n' + path + '\n' + signed + '\n' + exp + '\n' + kid)
    .digest('base64url').replace(/=+$/, '');
}

// No early exit.
function same(a, b) {
  if (a.length !== b.length) return false;
  for (var d = 0, i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}

// Host after '://' up to / ? # : equals an entry, or is 'label.suffix' for '*.suffix'.
function refererOk(ref, allowed) {
  var i = ref.indexOf('://'), rest = ref.slice(i + 3), end = rest.search(/[\/?#:]/);
  var host = lc(end < 0 ? rest : rest.slice(0, end));
  return i >= 0 && host !== '' && allowed.some(function (e) {
    e = lc(e);
    return e.slice(0, 2) === '*.' ? host.length > e.length - 1 && host.slice(1 - e.length) === e.slice(1) : host === e;
  });
}

// As Rust's TenantPolicy: absent fields default, wrong types fail.
function validPolicy(p) {
  var obj = function (x) { return !!x && typeof x === 'object' && !Array.isArray(x); };
  var str = function (x) { return typeof x === 'string'; }, k = obj(p) && p.keys, r = p && p.referers;
  return obj(p) && (p.sign === undefined || typeof p.sign === 'boolean') &&
    (k === undefined || (obj(k) && Object.keys(k).every(function (n) { return str(k[n]); }))) &&
    (r === undefined || (Array.isArray(r) && r.every(str)));
}

// -> the 403 reason, '' when allowed.
function forbidden(p, path, pairs, referer, now) {
  if (p.sign) {
    var n = {}, v = {}, keys = p.keys || {};
    pairs.forEach(function (q) {
      if (/^(exp|kid|sig)$/.test(q[0])) {
        n[q[0]] = (n[q[0]] || 0) + 1;
        v[q[0]] = q[1];
      }
    });
    if (n.exp > 1 || n.kid > 1 || n.sig > 1) return 'bad signature parameters';
    if (!n.exp || !n.kid || !n.sig) return 'signature required';
    if (!/^[0-9]{1,10}$/.test(v.exp) || !/^[A-Za-z0-9_-]{1,64}$/.test(v.kid) || !v.sig) {
      return 'bad signature parameters';
    }
    if (now >= +v.exp) return 'expired';
    if (!Object.prototype.hasOwnProperty.call(keys, v.kid)) return 'unknown key';
    // exp as a number (no leading zeros), as Rust formats the parsed u64.
    if (!same(sign(keys[v.kid], path, signedParams(pairs), +v.exp, v.kid), v.sig)) return 'bad signature';
  }
  var r = p.referers || [];
  return r.length && referer !== undefined && !refererOk(referer, r) ? 'hotlink refused' : '';
}

// The tenant's entry, else '#default' (no tenant id); neither: undefined (a store never
// loaded). get() throws for a missing key and for failures alike; exists() tells them apart:
// a failure throws (503).
async function policyOf(tenant) {
  var keys = [tenant, '#default'];
  for (var i = 0; i < 2; i++) {
    try {
      return await kvs.get(keys[i], { format: 'json' });
    } catch (e) {
      if (await kvs.exists(keys[i])) throw e;
    }
  }
}

function respond(code, text, reason) {
  return { statusCode: code, statusDescription: text, headers: {
    'content-type': { value: 'text/plain; charset=utf-8' },
    'cache-control': { value: code === 400 ? 'public, max-age=10' : 'no-store' }
  }, body: { encoding: 'text', data: reason } };
}

async function handler(event) {
  var req = event.request, qs = req.querystring, pairs = [], name, p;
  // Fields come in first-appearance order, a repeated spelling as multiValue.
  for (name in qs) {
    (qs[name].multiValue || [qs[name]]).forEach(function (x) { pairs.push([name, x.value]); });
  }
  var a = req.headers.accept, ref = req.headers.referer;
  a = a ? (a.multiValue || [a]).map(function (x) { return x.value; }).join(',') : '';

  // Path first (its 400 wins), then the tenant's policy, then the query.
  var t = guard(function () { return { tenant: parsePath(req.uri).split('/')[0] }; });
  if (t.reject !== undefined) return respond(400, 'Bad Request', t.reject);
  try {
    p = await policyOf(t.tenant);
  } catch (e) {
    p = null;
  }
  // Fail closed: no entry at all is 503, not the defaults.
  if (p === undefined) return respond(503, 'Service Unavailable', 'tenant policies not loaded');
  if (!validPolicy(p)) return respond(503, 'Service Unavailable', 'policy unavailable');
  var why = forbidden(p, req.uri, pairs, ref ? ref.value : undefined, Math.floor(Date.now() / 1000));
  if (why) return respond(403, 'Forbidden', why);

  var r = normalize(req.uri, pairs, a);
  if (r.reject !== undefined) return respond(400, 'Bad Request', r.reject);
  // The viewer's request for the transformer (replaces a client-sent one).
  req.headers['x-pixelfront-request'] = { value: req.uri + (pairs.length ? '?' + join(pairs) : '') };
  req.uri = '/' + r.key;
  req.querystring = {};
  return req;
}
