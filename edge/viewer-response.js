//! Pixelfront viewer-response CloudFront Function (cloudfront-js-2.0, <= 10 KB), docs/url-grammar.md:
//! an answer (status below 400) whose format came from Accept (no fmt, or fmt=auto in any case)
//! gets Vary: Accept, so that a shared cache after CloudFront keeps one copy per Accept; any
//! other answer loses Accept from Vary (the stored derivative is one object for both kinds).
//! The viewer's query: the request's own while its uri is still /img/...; once the
//! viewer-request function has rewritten it, the x-pixelfront-request header that function set
//! (replacing any the client sent). The Rust twin is shared/src/delivery/http.rs.

// ASCII-only lower-casing (as the viewer-request function).
function lc(s) {
  return s.replace(/[A-Z]+/g, function (m) { return m.toLowerCase(); });
}

// The viewer's query as [name, value] pairs, in order.
function viewerPairs(req) {
  var pairs = [], qs = req.querystring || {}, fwd = req.headers['x-pixelfront-request'], name, q;
  if (req.uri.slice(0, 5) === '/img/') {
    for (name in qs) {
      (qs[name].multiValue || [qs[name]]).forEach(function (x) { pairs.push([name, x.value]); });
    }
  } else if (fwd) {
    q = fwd.value.indexOf('?');
    (q < 0 ? '' : fwd.value.slice(q + 1)).split('&').forEach(function (p) {
      var e = p.indexOf('=');
      if (p) pairs.push(e < 0 ? [p, ''] : [p.slice(0, e), p.slice(e + 1)]);
    });
  }
  return pairs;
}

// Whether the format came from Accept: no fmt, or the first fmt is `auto` (any case).
function fromAccept(req) {
  var f = viewerPairs(req).filter(function (p) { return lc(p[0]) === 'fmt'; })[0];
  return !f || lc(f[1]) === 'auto';
}

function handler(event) {
  var res = event.response, h = res.headers, v = h.vary;
  var names = v ? (v.multiValue || [v]).map(function (x) { return x.value; }).join(',').split(',') : [];
  names = names.map(function (n) { return n.trim(); }).filter(function (n) { return n && lc(n) !== 'accept'; });
  // Vary: * already says every header matters.
  if (names.indexOf('*') >= 0) return res;
  if (res.statusCode < 400 && fromAccept(event.request)) names.push('Accept');
  if (names.length) h.vary = { value: names.join(', ') };
  else delete h.vary;
  return res;
}
