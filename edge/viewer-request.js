//! Pixelfront viewer-request CloudFront Function (cloudfront-js-2.0, ES5, <= 10 KB), SPEC §3:
//! rewrites /img/{tenant}/v{N}/{key}?w&h&fmt&q to the derived object key, or answers 400 with
//! the reason. Mirrors shared/src/normalize.rs exactly; tests/vectors/normalize.json for both.

// BEGIN GENERATED POLICY by edge/gen-policy.mjs from shared/policy.json
var POLICY = {"breakpoints":[16,32,48,64,96,128,160,240,320,480,640,768,960,1080,1280,1440,1600,1920,2048,2560],"quality_steps":[30,40,50,60,70,75,80,85,90,95,100],"default_quality":{"jpeg":80,"webp":80,"avif":60},"max_dimension_param":8192,"max_key_bytes":512};
// END GENERATED POLICY

// Rust str::trim's whitespace (JS trim() adds U+FEFF, lacks U+0085).
var WS = '[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+';
var TRIM = new RegExp('^' + WS + '|' + WS + '$', 'g');

// A rejection is thrown as {reject} and caught in normalize().
function fail(reason) { throw { reject: reason }; }

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
  try {
    var prefix = parsePath(path);
    // Allowlisted names: first value and count, by first appearance.
    var seen = {}, order = [];
    pairs.forEach(function (p) {
      var k = lc(p[0]);
      if (['fmt', 'h', 'q', 'w'].indexOf(k) < 0) return;
      if (seen[k]) seen[k].n++;
      else {
        seen[k] = { v: p[1], n: 1 };
        order.push(k);
      }
    });
    order.forEach(function (k) {
      if (seen[k].n > 1) fail('duplicate parameter ' + k);
    });
    // Then the values: fmt, h, q, w. fmt=auto: avif, else webp, else jpeg.
    var f = seen.fmt ? lc(seen.fmt.v) : 'auto';
    var fmt = f === 'jpg' ? 'jpeg' : /^(jpeg|webp|avif|png)$/.test(f) ? f : '';
    if (f === 'auto') {
      accept = accept || '';
      fmt = accepts(accept, 'image/avif') ? 'avif' : accepts(accept, 'image/webp') ? 'webp' : 'jpeg';
    }
    if (!fmt) fail('bad fmt: expected jpeg, jpg, webp, avif, png or auto');
    var max = POLICY.max_dimension_param, bp = POLICY.breakpoints;
    var h = seen.h ? snap(int(seen.h.v, max, 'h'), bp) : 0;
    var q = seen.q ? int(seen.q.v, 100, 'q') : 0;
    var w = seen.w ? snap(int(seen.w.v, max, 'w'), bp) : 0;
    q = fmt === 'png' ? 0 : q ? snap(q, POLICY.quality_steps) : POLICY.default_quality[fmt];
    var parts = [w && 'w' + w, h && 'h' + h, q && 'q' + q].filter(Boolean);
    return {
      key: prefix + '/' + (parts.join('-') || 'orig') + '.' + fmt,
      canonical: 'fmt=' + fmt + (h ? '&h=' + h : '') + (q ? '&q=' + q : '') + (w ? '&w=' + w : '')
    };
  } catch (e) {
    if (e && typeof e.reject === 'string') return { reject: e.reject };
    throw e;
  }
}

function handler(event) {
  var req = event.request, qs = req.querystring, pairs = [], name;
  // Fields come in first-appearance order, a repeated spelling as multiValue.
  for (name in qs) {
    (qs[name].multiValue || [qs[name]]).forEach(function (x) { pairs.push([name, x.value]); });
  }
  var a = req.headers.accept;
  a = a ? (a.multiValue || [a]).map(function (x) { return x.value; }).join(',') : '';

  var r = normalize(req.uri, pairs, a);
  if (r.reject !== undefined) {
    return { statusCode: 400, statusDescription: 'Bad Request', headers: {
      'content-type': { value: 'text/plain; charset=utf-8' },
      'cache-control': { value: 'public, max-age=10' }
    }, body: { encoding: 'text', data: r.reject } };
  }
  req.uri = '/' + r.key;
  req.querystring = {};
  return req;
}
