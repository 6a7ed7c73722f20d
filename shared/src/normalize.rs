//! Request normalization (docs/url-grammar.md): path + query + `Accept` → canonical request → derived
//! object key, or a typed rejection with a short reason.
//!
//! Pure code. The same rules run in the CloudFront Function (`edge/viewer-request.js`); one
//! vectors file (`tests/vectors/normalize.json`) drives the tests of both, and the rejection
//! reasons are part of that contract, byte for byte.
//!
//! Values are taken exactly as they appear in the raw query string: nothing is percent-decoded,
//! so `w=%33%32` is not an integer and is rejected, and `%77=320` is an unknown parameter and
//! is dropped.

use crate::policy::{Format, Policy};
use std::fmt;

/// A validated `/img/{tenant}/v{N}/{key}` path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssetPath {
    /// Tenant id, `[a-z0-9][a-z0-9-]{0,62}`.
    pub tenant: String,
    /// Version of the original, 1..=999,999,999.
    pub version: u32,
    /// Asset key: `/`-separated segments of `[A-Za-z0-9._~-]`, at most 512 bytes.
    pub key: String,
}

impl AssetPath {
    /// The asset's identity without a version, `{tenant}/{key}` (the original's S3 key).
    pub fn asset_id(&self) -> String {
        format!("{}/{}", self.tenant, self.key)
    }

    /// The derived-object prefix of this version, `{tenant}/v{N}/{key}`.
    pub fn version_prefix(&self) -> String {
        format!("{}/v{}/{}", self.tenant, self.version, self.key)
    }
}

/// The canonical form of the four parameters that affect the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Canonical {
    /// Output format (`auto` already resolved).
    pub fmt: Format,
    /// Width in pixels, a breakpoint, if requested.
    pub w: Option<u32>,
    /// Height in pixels, a breakpoint, if requested.
    pub h: Option<u32>,
    /// Quality step 30..=100; `None` exactly when `fmt` is PNG.
    pub q: Option<u8>,
}

impl Canonical {
    /// The canonical query string: `fmt`, `h`, `q`, `w` in that order, absent ones omitted.
    pub fn query(&self) -> String {
        let mut parts = vec![format!("fmt={}", self.fmt.as_str())];
        if let Some(h) = self.h {
            parts.push(format!("h={h}"));
        }
        if let Some(q) = self.q {
            parts.push(format!("q={q}"));
        }
        if let Some(w) = self.w {
            parts.push(format!("w={w}"));
        }
        parts.join("&")
    }

    /// The derivative name, e.g. `w320-q80.webp`, `w640.png`, `orig.png`.
    pub fn derivative_name(&self) -> String {
        let mut parts = Vec::with_capacity(3);
        if let Some(w) = self.w {
            parts.push(format!("w{w}"));
        }
        if let Some(h) = self.h {
            parts.push(format!("h{h}"));
        }
        if let Some(q) = self.q {
            parts.push(format!("q{q}"));
        }
        let stem = if parts.is_empty() {
            "orig".to_string()
        } else {
            parts.join("-")
        };
        format!("{stem}.{}", self.fmt.as_str())
    }

    /// The canonical request a derivative name stands for (`w320-q80.webp` → `fmt=webp`,
    /// `q=80`, `w=320`): the inverse of [`Canonical::derivative_name`], through the same
    /// normalization as a request; `None` for a name it never produces.
    pub fn from_derivative_name(name: &str) -> Option<Canonical> {
        let (stem, fmt) = name.rsplit_once('.')?;
        let mut query = format!("fmt={fmt}");
        if stem != "orig" {
            for part in stem.split('-') {
                let (param, value) = part.split_at_checked(1)?;
                if !matches!(param, "w" | "h" | "q") {
                    return None;
                }
                query.push_str(&format!("&{param}={value}"));
            }
        }
        let canonical = canonicalize_query(&query, None).ok()?;
        (canonical.derivative_name() == name).then_some(canonical)
    }
}

/// A fully normalized request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Normalized {
    /// Which asset and version.
    pub asset: AssetPath,
    /// Which rendering of it.
    pub canonical: Canonical,
    /// Whether the format came from `Accept` (`fmt` absent or `auto`): the answer then varies
    /// on `Accept` (`Vary: Accept`, docs/url-grammar.md), though the derivative does not.
    pub fmt_from_accept: bool,
}

impl Normalized {
    /// The derived object key `{tenant}/v{N}/{key}/{derivative-name}` (docs/aws-deploy.md).
    pub fn derived_key(&self) -> String {
        format!(
            "{}/{}",
            self.asset.version_prefix(),
            self.canonical.derivative_name()
        )
    }
}

/// Which parameter a value rejection is about (in name order: the order values are checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// Device pixel ratio (folded into `w` and `h`).
    Dpr,
    /// Output format.
    Fmt,
    /// Height.
    H,
    /// Quality.
    Q,
    /// Width.
    W,
}

impl Param {
    fn name(self) -> &'static str {
        match self {
            Param::Dpr => "dpr",
            Param::Fmt => "fmt",
            Param::H => "h",
            Param::Q => "q",
            Param::W => "w",
        }
    }

    fn from_lower(name: &str) -> Option<Param> {
        match name {
            "dpr" => Some(Param::Dpr),
            "fmt" => Some(Param::Fmt),
            "h" => Some(Param::H),
            "q" => Some(Param::Q),
            "w" => Some(Param::W),
            _ => None,
        }
    }
}

/// Why a request was rejected (HTTP 400). `Display` is the short plain-text reason returned to
/// the viewer; the edge function produces the same strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// The path is not `/img/{tenant}/v{N}/{key}`.
    BadPath,
    /// The tenant segment breaks `[a-z0-9][a-z0-9-]{0,62}`.
    BadTenant,
    /// The version segment is not `v` + a positive integer without leading zeros (< 10^9).
    BadVersion,
    /// A key segment is empty, `.`/`..`, or has a character outside `[A-Za-z0-9._~-]`.
    BadKey,
    /// The key is longer than the policy's `max_key_bytes`.
    KeyTooLong,
    /// An allowlisted parameter appears more than once (names compared case-insensitively).
    Duplicate(Param),
    /// An allowlisted parameter has an empty, non-integer, out-of-range or unknown value.
    BadValue(Param),
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = Policy::get();
        match self {
            Reject::BadPath => f.write_str("bad path: expected /img/{tenant}/v{N}/{key}"),
            Reject::BadTenant => f.write_str("bad tenant"),
            Reject::BadVersion => f.write_str("bad version"),
            Reject::BadKey => f.write_str("bad key"),
            Reject::KeyTooLong => write!(f, "key longer than {} bytes", p.max_key_bytes),
            Reject::Duplicate(param) => write!(f, "duplicate parameter {}", param.name()),
            Reject::BadValue(Param::Fmt) => {
                f.write_str("bad fmt: expected jpeg, jpg, webp, avif, png or auto")
            }
            Reject::BadValue(Param::Q) => f.write_str("bad q: expected an integer 1..100"),
            Reject::BadValue(Param::Dpr) => {
                f.write_str("bad dpr: expected a number 1..10 with at most 3 decimals")
            }
            Reject::BadValue(param) => write!(
                f,
                "bad {}: expected an integer 1..{}",
                param.name(),
                p.max_dimension_param
            ),
        }
    }
}

/// Normalize a request URI (`/img/...?...`, the query optional) with its `Accept` header.
pub fn normalize_uri(uri: &str, accept: Option<&str>) -> Result<Normalized, Reject> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    normalize(path, query, accept)
}

/// Normalize a path and a raw query string (without `?`) with its `Accept` header.
pub fn normalize(path: &str, query: &str, accept: Option<&str>) -> Result<Normalized, Reject> {
    let asset = parse_path(path)?;
    let (canonical, fmt_from_accept) = canonicalize(query, accept)?;
    Ok(Normalized {
        asset,
        canonical,
        fmt_from_accept,
    })
}

/// Validate `/img/{tenant}/v{N}/{key}` (docs/url-grammar.md). Checks run in a fixed order (prefix and
/// segment count, tenant, version, key length, key segments) so that the first failure is the
/// reason, identically at the edge.
pub fn parse_path(path: &str) -> Result<AssetPath, Reject> {
    let rest = path.strip_prefix("/img/").ok_or(Reject::BadPath)?;
    let mut parts = rest.splitn(3, '/');
    let (tenant, version, key) = match (parts.next(), parts.next(), parts.next()) {
        (Some(t), Some(v), Some(k)) => (t, v, k),
        _ => return Err(Reject::BadPath),
    };
    if !valid_tenant(tenant) {
        return Err(Reject::BadTenant);
    }
    let version = parse_version(version).ok_or(Reject::BadVersion)?;
    if key.len() > Policy::get().max_key_bytes {
        return Err(Reject::KeyTooLong);
    }
    if !valid_key(key) {
        return Err(Reject::BadKey);
    }
    Ok(AssetPath {
        tenant: tenant.to_string(),
        version,
        key: key.to_string(),
    })
}

/// `[a-z0-9][a-z0-9-]{0,62}`.
pub fn valid_tenant(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// One or more `/`-separated segments of `[A-Za-z0-9._~-]`, none empty, `.` or `..`, at most
/// `max_key_bytes` bytes.
pub fn valid_key(key: &str) -> bool {
    key.len() <= Policy::get().max_key_bytes
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'~' | b'-'))
        })
}

fn parse_version(seg: &str) -> Option<u32> {
    let digits = seg.strip_prefix('v')?;
    let ok = !digits.is_empty()
        && digits.len() <= 9
        && !digits.starts_with('0')
        && digits.bytes().all(|c| c.is_ascii_digit());
    if ok {
        digits.parse().ok()
    } else {
        None
    }
}

/// Canonicalize a raw query string (without `?`) and resolve `fmt=auto` from `Accept`.
pub fn canonicalize_query(query: &str, accept: Option<&str>) -> Result<Canonical, Reject> {
    canonicalize(query, accept).map(|(canonical, _)| canonical)
}

/// [`canonicalize_query`], and whether the format came from `Accept`.
fn canonicalize(query: &str, accept: Option<&str>) -> Result<(Canonical, bool), Reject> {
    // Collect the allowlisted parameters; remember the first duplicate by first appearance.
    let mut seen: [(Option<&str>, usize, usize); 5] = [(None, 0, usize::MAX); 5];
    for (idx, piece) in query.split('&').filter(|p| !p.is_empty()).enumerate() {
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        let Some(param) = Param::from_lower(&name.to_ascii_lowercase()) else {
            continue;
        };
        let slot = &mut seen[param as usize];
        if slot.1 == 0 {
            slot.0 = Some(value);
            slot.2 = idx;
        }
        slot.1 += 1;
    }
    if let Some((i, _)) = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.1 > 1)
        .min_by_key(|(_, s)| s.2)
    {
        let param = [Param::Dpr, Param::Fmt, Param::H, Param::Q, Param::W][i];
        return Err(Reject::Duplicate(param));
    }
    let [dpr, fmt, h, q, w] = seen.map(|s| s.0);
    let policy = Policy::get();
    let dpr_halves = dpr
        .map(|v| parse_dpr(v).ok_or(Reject::BadValue(Param::Dpr)))
        .transpose()?
        .unwrap_or(2);

    let fmt_lower = fmt.map(str::to_ascii_lowercase);
    let fmt_from_accept = matches!(fmt_lower.as_deref(), None | Some("auto"));
    let fmt = match fmt_lower.as_deref() {
        None | Some("auto") => resolve_auto(accept),
        Some("jpeg" | "jpg") => Format::Jpeg,
        Some("webp") => Format::Webp,
        Some("avif") => Format::Avif,
        Some("png") => Format::Png,
        Some(_) => return Err(Reject::BadValue(Param::Fmt)),
    };
    // A dimension times the DPR (rounded up), then snapped: `w=320&dpr=2` is `w=640`.
    let dim = |v: Option<&str>, p: Param| -> Result<Option<u32>, Reject> {
        v.map(|v| {
            parse_int(v, policy.max_dimension_param)
                .map(|px| policy.snap_dimension(times_dpr(px, dpr_halves)))
                .ok_or(Reject::BadValue(p))
        })
        .transpose()
    };
    let h = dim(h, Param::H)?;
    let q = q
        .map(|v| parse_int(v, 100).ok_or(Reject::BadValue(Param::Q)))
        .transpose()?;
    let w = dim(w, Param::W)?;

    let q = if fmt.has_quality() {
        q.and_then(|q| u8::try_from(q).ok())
            .map(|q| policy.snap_quality(q))
            .or_else(|| policy.default_quality(fmt))
    } else {
        None
    };
    Ok((Canonical { fmt, w, h, q }, fmt_from_accept))
}

/// The steps a `dpr` snaps up to, in halves: 1, 1.5, 2, 3.
const DPR_STEPS_HALVES: [u32; 4] = [2, 3, 4, 6];

/// `dpr`: 1-2 digits, optionally `.` and 1-3 digits, in `1..=10`; snapped up to the next of
/// 1, 1.5, 2, 3 (above 3: 3). Answers the step in halves (`2` = 1x, `3` = 1.5x, …).
fn parse_dpr(v: &str) -> Option<u32> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits =
        |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(int, 2) || (v.contains('.') && !digits(frac, 3)) {
        return None;
    }
    // Thousandths, exactly.
    let frac_thousandths: u32 = format!("{frac:0<3}").parse().ok()?;
    let milli = int.parse::<u32>().ok()? * 1000 + frac_thousandths;
    if !(1000..=10_000).contains(&milli) {
        return None;
    }
    let steps = DPR_STEPS_HALVES;
    Some(
        steps
            .iter()
            .copied()
            .find(|&halves| halves * 500 >= milli)
            .unwrap_or(steps[steps.len() - 1]),
    )
}

/// `px` times a DPR given in halves, rounded up.
fn times_dpr(px: u32, halves: u32) -> u32 {
    (px * halves).div_ceil(2)
}

/// A decimal integer of ASCII digits (leading zeros allowed) in `1..=max`.
fn parse_int(v: &str, max: u32) -> Option<u32> {
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u32 = v.parse().ok()?;
    (1..=max).contains(&n).then_some(n)
}

/// Whether `value` is a usable `Accept` value: only tab and visible ASCII or space (the bytes
/// `http::HeaderValue::to_str` accepts). Any other byte makes the whole header count as absent,
/// at the edge and here alike (docs/url-grammar.md).
pub fn usable_accept(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// The `Accept` header as normalization reads it, from its raw field values in the order
/// received: joined with `,` (as the edge function joins a repeated header); `None` (absent)
/// when there is no field, or when any byte is not [usable](usable_accept).
pub fn accept_header<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
    let mut joined: Option<Vec<u8>> = None;
    for value in values {
        if !usable_accept(value) {
            return None;
        }
        match joined.as_mut() {
            Some(j) => {
                j.push(b',');
                j.extend_from_slice(value);
            }
            None => joined = Some(value.to_vec()),
        }
    }
    // Usable bytes are ASCII: valid UTF-8.
    joined.and_then(|j| String::from_utf8(j).ok())
}

/// `s` without spaces and tabs at either end (the only whitespace a usable `Accept` holds).
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Resolve `fmt=auto`: `image/avif` in `Accept` → AVIF, else `image/webp` → WebP, else JPEG.
///
/// A value that is not [usable](usable_accept) counts as absent. Ranges are split on `,`, then
/// on `;`; the media type and the parameters are trimmed of spaces and tabs; types are compared
/// ASCII-case-insensitively; a range with `q=0` (`Q=0`, up to three zero decimals) counts as
/// refused. Wildcards (`image/*`, `*/*`) do not select a modern format.
pub fn resolve_auto(accept: Option<&str>) -> Format {
    let accept = accept.filter(|a| usable_accept(a.as_bytes())).unwrap_or("");
    let accepts = |wanted: &str| -> bool {
        accept.split(',').any(|range| {
            let mut it = range.split(';');
            let ty = trim_ows(it.next().unwrap_or(""));
            ty.eq_ignore_ascii_case(wanted)
                && !it.any(|param| {
                    let param = trim_ows(param);
                    param
                        .strip_prefix("q=")
                        .or_else(|| param.strip_prefix("Q="))
                        .is_some_and(is_zero_qvalue)
                })
        })
    };
    if accepts("image/avif") {
        Format::Avif
    } else if accepts("image/webp") {
        Format::Webp
    } else {
        Format::Jpeg
    }
}

/// `0`, `0.`, `0.0`, `0.00` or `0.000` (RFC 9110 qvalue of zero).
fn is_zero_qvalue(v: &str) -> bool {
    match v.strip_prefix('0') {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('.')
            .is_some_and(|d| d.len() <= 3 && d.bytes().all(|c| c == b'0')),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example() {
        let n = normalize_uri(
            "/img/acme/v3/photos/cat.jpg?W=287&utm_source=x&fmt=WEBP",
            Some("image/avif,image/webp,*/*"),
        )
        .unwrap();
        assert_eq!(n.canonical.query(), "fmt=webp&q=80&w=320");
        assert_eq!(n.derived_key(), "acme/v3/photos/cat.jpg/w320-q80.webp");
    }

    #[test]
    fn derivative_names_table() {
        let c = |fmt, w, h, q| Canonical { fmt, w, h, q };
        for (canonical, want) in [
            (c(Format::Webp, Some(320), None, Some(80)), "w320-q80.webp"),
            (
                c(Format::Webp, Some(160), Some(160), Some(75)),
                "w160-h160-q75.webp",
            ),
            (c(Format::Jpeg, None, None, Some(80)), "q80.jpeg"),
            (c(Format::Png, Some(640), None, None), "w640.png"),
            (c(Format::Png, None, None, None), "orig.png"),
            (c(Format::Avif, None, Some(96), Some(60)), "h96-q60.avif"),
        ] {
            assert_eq!(canonical.derivative_name(), want);
            assert_eq!(Canonical::from_derivative_name(want), Some(canonical));
        }
        for never in [
            "w320.gif",
            "w321.webp",
            "q80-w320.webp",
            "orig.webp",
            "x1.png",
            "w.png",
            "w320",
            "é.png",
        ] {
            assert_eq!(Canonical::from_derivative_name(never), None, "{never}");
        }
    }

    #[test]
    fn accept_resolution_table() {
        for (accept, want) in [
            (None, Format::Jpeg),
            (Some(""), Format::Jpeg),
            (Some("*/*"), Format::Jpeg),
            (Some("image/webp"), Format::Webp),
            (Some("image/avif,image/webp"), Format::Avif),
            (Some("IMAGE/AVIF"), Format::Avif),
            (Some("image/avif;q=0, image/webp;q=0.8"), Format::Webp),
            (Some("image/avif;q=0.000,image/webp;q=0"), Format::Jpeg),
            (Some("image/avif;q=0.1"), Format::Avif),
            (Some("image/avifx"), Format::Jpeg),
            (Some("\timage/webp\t;\tq=1"), Format::Webp),
            // Any byte outside tab, space and visible ASCII: no Accept at all.
            (Some("image/avif,caf\u{e9}"), Format::Jpeg),
            (Some("\u{a0}image/avif"), Format::Jpeg),
            (Some("image/webp\r\n"), Format::Jpeg),
            (Some("image/webp,\0"), Format::Jpeg),
            (Some("image/webp,\u{7f}"), Format::Jpeg),
        ] {
            assert_eq!(resolve_auto(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn accept_header_joins_fields_and_drops_unusable_ones() {
        let h = |values: &[&[u8]]| accept_header(values.iter().copied());
        assert_eq!(h(&[]), None);
        assert_eq!(h(&[b""]), Some(String::new()));
        assert_eq!(h(&[b"image/webp"]), Some("image/webp".into()));
        assert_eq!(
            h(&[b"text/html", b"\timage/avif ;q=1"]),
            Some("text/html,\timage/avif ;q=1".into())
        );
        for bad in [
            &b"caf\xe9"[..],
            b"\xc3\xa9",
            b"a\0",
            b"a\r\n",
            b"\x7f",
            b"\x0b",
        ] {
            assert_eq!(h(&[b"image/avif", bad]), None, "{bad:?}");
            assert!(!usable_accept(bad));
        }
        // Every byte: usable exactly when `HeaderValue::to_str` would succeed.
        for b in 0..=u8::MAX {
            let visible = b == b'\t' || (0x20..0x7f).contains(&b);
            assert_eq!(usable_accept(&[b]), visible, "{b:#04x}");
        }
    }

    #[test]
    fn the_format_came_from_accept_only_without_fmt_or_with_auto() {
        for (query, want) in [
            ("", true),
            ("w=320", true),
            ("fmt=auto", true),
            ("FMT=AuTo&w=1", true),
            ("fmt=webp", false),
            ("fmt=JPG", false),
            ("Fmt=png", false),
        ] {
            let n = normalize("/img/acme/v1/a.jpg", query, Some("image/webp")).unwrap();
            assert_eq!(n.fmt_from_accept, want, "{query}");
        }
    }

    #[test]
    fn rejects_table() {
        for (uri, want) in [
            ("/img/acme/v1", Reject::BadPath),
            ("/images/acme/v1/a.jpg", Reject::BadPath),
            ("/img/Acme/v1/a.jpg", Reject::BadTenant),
            ("/img/-acme/v1/a.jpg", Reject::BadTenant),
            ("/img/acme/v01/a.jpg", Reject::BadVersion),
            ("/img/acme/v0/a.jpg", Reject::BadVersion),
            ("/img/acme/1/a.jpg", Reject::BadVersion),
            ("/img/acme/v1/a/../b.jpg", Reject::BadKey),
            ("/img/acme/v1/a//b.jpg", Reject::BadKey),
            ("/img/acme/v1/a%2Fb.jpg", Reject::BadKey),
            ("/img/acme/v1/a.jpg/", Reject::BadKey),
            ("/img/acme/v1/a.jpg?w=0", Reject::BadValue(Param::W)),
            ("/img/acme/v1/a.jpg?w=8193", Reject::BadValue(Param::W)),
            ("/img/acme/v1/a.jpg?h=-5", Reject::BadValue(Param::H)),
            ("/img/acme/v1/a.jpg?q=1.5", Reject::BadValue(Param::Q)),
            ("/img/acme/v1/a.jpg?q=", Reject::BadValue(Param::Q)),
            ("/img/acme/v1/a.jpg?fmt=gif", Reject::BadValue(Param::Fmt)),
            ("/img/acme/v1/a.jpg?w=1&W=1", Reject::Duplicate(Param::W)),
            (
                "/img/acme/v1/a.jpg?W=1&h=1&h=2&w=2",
                Reject::Duplicate(Param::W),
            ),
        ] {
            assert_eq!(normalize_uri(uri, None), Err(want), "{uri}");
        }
        let long = format!("/img/acme/v1/{}", "a".repeat(513));
        assert_eq!(normalize_uri(&long, None), Err(Reject::KeyTooLong));
        let ok = format!("/img/acme/v1/{}", "a".repeat(512));
        assert!(normalize_uri(&ok, None).is_ok());
    }

    #[test]
    fn dpr_parses_snaps_and_multiplies() {
        for (v, halves) in [
            ("1", Some(2)),
            ("1.0", Some(2)),
            ("01", Some(2)),
            ("1.001", Some(3)),
            ("1.5", Some(3)),
            ("2", Some(4)),
            ("2.625", Some(6)),
            ("3", Some(6)),
            ("10", Some(6)),
            ("10.000", Some(6)),
            ("0.999", None),
            ("10.001", None),
            ("2.", None),
            (".5", None),
            ("2.0001", None),
            ("100", None),
            ("+2", None),
            ("", None),
            ("two", None),
        ] {
            assert_eq!(parse_dpr(v), halves, "{v:?}");
        }
        assert_eq!(times_dpr(101, 3), 152, "151.5 rounds up");
        assert_eq!(times_dpr(8192, 6), 24_576);
        let n = normalize("/img/a/v1/k.jpg", "w=320&dpr=2&fmt=webp", None);
        let same = normalize("/img/a/v1/k.jpg", "w=640&fmt=webp", None);
        assert_eq!(n.map(|n| n.derived_key()), same.map(|n| n.derived_key()));
    }
}
