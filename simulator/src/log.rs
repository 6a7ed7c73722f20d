//! Replay of a CloudFront standard access log: the legacy tab-separated format, and what
//! standard logging v2 writes to S3 in its "W3C" (`#Fields` header, then lines) and "JSON" (one
//! object of field name → value per line) output formats. Plain or gzip files and folders of
//! them are opened by [`crate::log_files`].
//!
//! A log file starts with `#Version: 1.0` and `#Fields: date time x-edge-location sc-bytes ...`
//! and has one tab-separated line per request (space-separated lines are accepted too). Columns are found by name from the `#Fields`
//! line (the documented 33-field order is assumed when it is missing), so a v2 log with a
//! subset or another order of fields also works, as long as it has `cs-uri-stem`. Used:
//!
//! | field | use |
//! |---|---|
//! | `date` | requests per day (distinct dates) |
//! | `x-edge-location` | the edge cache (by its airport code, `IAD89-C1` -> `IAD`) and the pricing region |
//! | `sc-bytes` | the response size, for the cache and the egress |
//! | `cs-method` | only `GET` and `HEAD` are replayed |
//! | `cs-uri-stem`, `cs-uri-query` | the request (`-` means no query) |
//! | `c-ip`, `cs(User-Agent)` | a stable pseudo-client for the assumed `Accept` |
//!
//! Standard logs do not record the `Accept` header, so `fmt=auto` cannot be resolved from the
//! log: each client (`c-ip` + user agent) is assigned an AVIF, WebP or JPEG-only `Accept` by a
//! seeded hash, in the proportions of `--accept-mix`, and keeps it for the whole log.
//!
//! Paths that are not pixelfront URLs (`/img/{tenant}/v{N}/{key}`) are mapped onto the
//! pseudo-tenant `log` (`/img/log/v1/{path}`, characters outside `[A-Za-z0-9._~-]` as `_`), so
//! that a log of an existing image service can be replayed to see what pixelfront would do
//! with it; `--param-alias width=w` renames its parameters.

use super::pricing::{region_index, NREGIONS};
use super::rng::mix64;
use super::workload::{accept_header, Request, Sizes};
use std::collections::HashMap;

/// The documented field order of a standard log line (used when `#Fields` is missing).
const DEFAULT_FIELDS: &str = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) \
    cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type \
    x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol \
    ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields \
    c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len \
    sc-range-start sc-range-end";

/// Column positions of the fields the replay uses.
#[derive(Debug, Clone, Copy)]
struct Columns {
    date: Option<usize>,
    edge: Option<usize>,
    bytes: Option<usize>,
    ip: Option<usize>,
    method: Option<usize>,
    stem: usize,
    query: Option<usize>,
    agent: Option<usize>,
}

impl Columns {
    fn from_fields(fields: &str) -> Option<Columns> {
        Columns::from_names(&fields.split_whitespace().collect::<Vec<_>>())
    }

    fn from_names(names: &[&str]) -> Option<Columns> {
        let at = |n: &str| names.iter().position(|f| *f == n);
        Some(Columns {
            date: at("date"),
            edge: at("x-edge-location"),
            bytes: at("sc-bytes"),
            ip: at("c-ip"),
            method: at("cs-method"),
            stem: at("cs-uri-stem")?,
            query: at("cs-uri-query"),
            agent: at("cs(User-Agent)"),
        })
    }
}

/// How log lines become requests.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Seed of the Accept assignment.
    pub seed: u64,
    /// Shares of AVIF, WebP and JPEG-only clients.
    pub accept_mix: [f64; 3],
    /// Pricing region of an edge whose airport code is not in the built-in table.
    pub default_region: usize,
    /// Parameter renames (`width` -> `w`), applied to every query before any scenario.
    pub aliases: Vec<(String, String)>,
}

/// What the reader saw, besides the requests.
#[derive(Debug, Clone, Default)]
pub struct LogStats {
    /// Data lines read.
    pub lines: u64,
    /// Lines skipped because they had too few fields or a bad `sc-bytes`.
    pub malformed: u64,
    /// Requests other than GET and HEAD (skipped).
    pub other_methods: u64,
    /// Requests whose path was mapped onto the pseudo-tenant `log`.
    pub mapped_paths: u64,
    /// The `date` of the last request read (empty without a date field).
    pub last_date: String,
    /// Edge caches (airport codes) in order of first appearance.
    pub edges: Vec<String>,
}

/// Reads standard-log lines into [`Request`]s.
pub struct LogReader {
    cfg: LogConfig,
    columns: Columns,
    edge_index: HashMap<String, usize>,
    /// The region of each edge.
    pub edge_regions: Vec<usize>,
    /// Counters.
    pub stats: LogStats,
}

impl LogReader {
    /// A reader with the default field order until a `#Fields` line says otherwise.
    pub fn new(cfg: LogConfig) -> LogReader {
        let columns = Columns::from_fields(DEFAULT_FIELDS);
        LogReader {
            cfg,
            // The default list contains cs-uri-stem.
            columns: columns.unwrap_or(Columns {
                date: None,
                edge: None,
                bytes: None,
                ip: None,
                method: None,
                stem: 7,
                query: None,
                agent: None,
            }),
            edge_index: HashMap::new(),
            edge_regions: Vec::new(),
            stats: LogStats::default(),
        }
    }

    /// One line: a header, a request, or nothing (blank, skipped). A `#Fields` line without
    /// `cs-uri-stem` is an error (the log cannot be replayed); bad data lines are counted and
    /// skipped.
    pub fn line(&mut self, line: &str) -> Result<Option<Request>, LogError> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok(None);
        }
        if let Some(header) = line.strip_prefix('#') {
            if let Some(fields) = header.strip_prefix("Fields:") {
                self.columns = Columns::from_fields(fields).ok_or(LogError::NoUriStem)?;
            }
            return Ok(None);
        }
        self.stats.lines += 1;
        if line.starts_with('{') {
            return Ok(self.json_line(line));
        }
        // Tab-separated (legacy); logging v2 can also write space-separated W3C lines.
        // CloudFront percent-encodes spaces inside fields, so either split is safe.
        let cols: Vec<&str> = if line.contains('\t') {
            line.split('\t').collect()
        } else {
            line.split(' ').filter(|c| !c.is_empty()).collect()
        };
        Ok(self.request(&cols, self.columns))
    }

    /// One record of standard logging v2's JSON output: an object of field name → value (a
    /// string, or a number), the same field names as `#Fields`. A line that is not such an
    /// object, or has no `cs-uri-stem`, is counted malformed.
    fn json_line(&mut self, line: &str) -> Option<Request> {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str(line) else {
            self.stats.malformed += 1;
            return None;
        };
        let (names, values): (Vec<&str>, Vec<String>) = map
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "-".to_string(),
                    other => other.to_string(),
                };
                (k.as_str(), v)
            })
            .unzip();
        let Some(columns) = Columns::from_names(&names) else {
            self.stats.malformed += 1;
            return None;
        };
        let cols: Vec<&str> = values.iter().map(String::as_str).collect();
        self.request(&cols, columns)
    }

    /// The request of one line's fields, read through `c`; `None` (counted) when it is
    /// malformed or not a GET or HEAD.
    fn request(&mut self, cols: &[&str], c: Columns) -> Option<Request> {
        let get = |i: Option<usize>| i.and_then(|i| cols.get(i).copied());
        let Some(stem) = cols.get(c.stem).copied() else {
            self.stats.malformed += 1;
            return None;
        };
        let bytes = match get(c.bytes) {
            Some(b) => match b.parse::<u64>() {
                Ok(b) => b,
                Err(_) => {
                    self.stats.malformed += 1;
                    return None;
                }
            },
            None if c.bytes.is_some() => {
                self.stats.malformed += 1;
                return None;
            }
            None => 0,
        };
        if let Some(method) = get(c.method) {
            if method != "GET" && method != "HEAD" {
                self.stats.other_methods += 1;
                return None;
            }
        }
        let query = match get(c.query) {
            None | Some("-") => String::new(),
            Some(q) => self.alias(q),
        };
        let path = if pixelfront_shared::normalize::parse_path(stem).is_ok() {
            stem.to_string()
        } else {
            self.stats.mapped_paths += 1;
            map_path(stem)
        };
        if let Some(date) = get(c.date) {
            if self.stats.last_date != date {
                self.stats.last_date = date.to_string();
            }
        }
        let edge_name = get(c.edge).map(airport).unwrap_or("-").to_string();
        let edge = match self.edge_index.get(&edge_name) {
            Some(&e) => e,
            None => {
                let e = self.edge_regions.len();
                let region = region_of_airport(&edge_name).unwrap_or(self.cfg.default_region);
                self.edge_regions.push(region);
                self.edge_index.insert(edge_name.clone(), e);
                self.stats.edges.push(edge_name);
                e
            }
        };
        let client = super::cache::key_hash(&[
            get(c.ip).unwrap_or("").as_bytes(),
            get(c.agent).unwrap_or("").as_bytes(),
        ]);
        let pick = mix64(client ^ self.cfg.seed);
        let class = accept_class(pick, &self.cfg.accept_mix);
        Some(Request {
            path,
            query,
            accept: accept_header(class, pick >> 32),
            edge,
            region: self.edge_regions[edge],
            sizes: Sizes::Logged(bytes),
        })
    }

    fn alias(&self, query: &str) -> String {
        if self.cfg.aliases.is_empty() {
            return query.to_string();
        }
        query
            .split('&')
            .map(|piece| {
                let (name, rest) = match piece.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (piece, None),
                };
                let name = self
                    .cfg
                    .aliases
                    .iter()
                    .find(|(from, _)| from == name)
                    .map_or(name, |(_, to)| to.as_str());
                match rest {
                    Some(v) => format!("{name}={v}"),
                    None => name.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Why a log cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The `#Fields` header lacks the request path.
    #[error("the #Fields header has no cs-uri-stem field")]
    NoUriStem,
}

/// The client class for a hash value, in proportion to `mix` (AVIF, WebP, JPEG).
fn accept_class(pick: u64, mix: &[f64; 3]) -> usize {
    let total: f64 = mix.iter().sum();
    let mut x = (pick >> 11) as f64 / (1u64 << 53) as f64 * total;
    for (i, w) in mix.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    2
}

/// `IAD89-C1` -> `IAD`: the leading letters of an edge location name.
fn airport(edge: &str) -> &str {
    let end = edge
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(edge.len());
    if end == 0 {
        edge
    } else {
        &edge[..end]
    }
}

/// `/{anything}` -> `/img/log/v1/{anything, made a valid key}`.
fn map_path(stem: &str) -> String {
    let mut key = String::with_capacity(stem.len());
    for seg in stem.split('/').filter(|s| !s.is_empty()) {
        if !key.is_empty() {
            key.push('/');
        }
        if seg == "." || seg == ".." {
            key.push('_');
            continue;
        }
        key.extend(seg.chars().map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-') {
                c
            } else {
                '_'
            }
        }));
    }
    if key.is_empty() {
        key.push('_');
    }
    let max = pixelfront_shared::Policy::get().max_key_bytes;
    if key.len() > max {
        // Keep the key unique by hashing what does not fit.
        let h = super::cache::key_hash(&[key.as_bytes()]);
        key.truncate(max - 17);
        key.push_str(&format!("~{h:016x}"));
    }
    format!("/img/log/v1/{key}")
}

/// The CloudFront pricing region of an edge location's airport code, for the larger
/// CloudFront locations; others fall back to `--log-default-region`.
pub fn region_of_airport(code: &str) -> Option<usize> {
    const TABLE: [(&str, &[&str]); NREGIONS] = [
        (
            "na",
            &[
                "ATL", "BNA", "BOS", "CMH", "DEN", "DFW", "DTW", "EWR", "HIO", "IAD", "IAH", "IND",
                "JAX", "JFK", "LAS", "LAX", "MCI", "MIA", "MSP", "ORD", "PDX", "PHL", "PHX", "PIT",
                "SEA", "SFO", "SJC", "SLC", "TPA", "YTO", "YUL", "YVR", "YYZ", "QRO", "MEX", "GDL",
                "MTY", "ANC", "HNL", "OMA", "CLT", "AUS", "SAN", "SMF",
            ],
        ),
        (
            "eu",
            &[
                "AMS", "ARN", "ATH", "BCN", "BER", "BRU", "BUD", "CDG", "CPH", "DUB", "DUS", "FCO",
                "FRA", "HAM", "HEL", "LHR", "LIS", "MAD", "MAN", "MRS", "MUC", "MXP", "OSL", "OTP",
                "PMO", "PRG", "SOF", "TXL", "VIE", "WAW", "ZAG", "ZRH", "TLV", "IST", "LED", "BTS",
                "EDI", "LYS", "BLL", "TLL", "RIX", "VNO", "LJU", "BEG",
            ],
        ),
        (
            "za_me",
            &[
                "JNB", "CPT", "NBO", "LOS", "DXB", "FJR", "BAH", "DOH", "MCT", "JED", "RUH", "KWI",
                "CAI", "DMM", "AUH",
            ],
        ),
        (
            "sa",
            &[
                "GRU", "GIG", "EZE", "SCL", "BOG", "LIM", "FOR", "POA", "UIO", "MDE",
            ],
        ),
        ("jp", &["NRT", "HND", "KIX", "ITM", "FUK", "OKA"]),
        ("au", &["SYD", "MEL", "PER", "BNE", "AKL", "CBR", "ADL"]),
        (
            "ap",
            &[
                "HKG", "SIN", "ICN", "GMP", "TPE", "BKK", "MNL", "CGK", "KUL", "SGN", "HAN", "CEB",
                "PUS",
            ],
        ),
        (
            "in",
            &[
                "BOM", "DEL", "MAA", "BLR", "HYD", "CCU", "PNQ", "AMD", "CCJ", "BBI",
            ],
        ),
    ];
    let code = code.to_ascii_uppercase();
    TABLE
        .iter()
        .find(|(_, codes)| codes.contains(&code.as_str()))
        .and_then(|(key, _)| region_index(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> LogReader {
        LogReader::new(LogConfig {
            seed: 1,
            accept_mix: [0.7, 0.2, 0.1],
            default_region: 0,
            aliases: vec![("width".into(), "w".into())],
        })
    }

    const HEADER: &str = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n";

    fn line(edge: &str, bytes: &str, method: &str, stem: &str, query: &str) -> String {
        [
            "2026-11-24",
            "10:00:00",
            edge,
            bytes,
            "192.0.2.1",
            method,
            "d111.cloudfront.net",
            stem,
            "200",
            "-",
            "Mozilla/5.0",
            query,
            "-",
            "Hit",
            "id",
            "img.example.com",
            "https",
            "300",
            "0.001",
            "-",
            "TLSv1.3",
            "TLS_AES_128_GCM_SHA256",
            "Hit",
            "HTTP/2.0",
            "-",
            "-",
            "443",
            "0.001",
            "Hit",
            "image/webp",
            bytes,
            "-",
            "-",
        ]
        .join("\t")
    }

    fn read_all(text: &str) -> (LogReader, Vec<Request>) {
        let mut r = reader();
        let out = text.lines().filter_map(|l| r.line(l).unwrap()).collect();
        (r, out)
    }

    #[test]
    fn reads_the_documented_format() {
        let text = format!(
            "{HEADER}{}\n{}\n{}\n{}\nshort line\n",
            line(
                "IAD89-C1",
                "31000",
                "GET",
                "/img/acme/v1/a.jpg",
                "w=300&utm_source=x"
            ),
            line("FRA56-P3", "29000", "HEAD", "/img/acme/v1/a.jpg", "-"),
            line("IAD12-C2", "1200", "POST", "/img/acme/v1/a.jpg", "-"),
            line("XYZ1", "abc", "GET", "/img/acme/v1/a.jpg", "-"),
        );
        let (r, reqs) = read_all(&text);
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].query, "w=300&utm_source=x");
        assert_eq!(reqs[1].query, "");
        assert_eq!(reqs[0].sizes, Sizes::Logged(31000));
        assert_eq!((reqs[0].edge, reqs[1].edge), (0, 1));
        assert_eq!(reqs[0].region, region_index("na").unwrap());
        assert_eq!(reqs[1].region, region_index("eu").unwrap());
        assert_eq!(r.stats.lines, 5);
        assert_eq!(r.stats.malformed, 2);
        assert_eq!(r.stats.other_methods, 1);
        assert_eq!(r.stats.edges, vec!["IAD", "FRA"]);
        assert_eq!(r.stats.last_date, "2026-11-24");
    }

    #[test]
    fn fields_header_reorders_columns() {
        let text = "#Fields: cs-uri-query cs-uri-stem sc-bytes\nw=1\t/img/a/v1/k.jpg\t10\n";
        let (_, reqs) = read_all(text);
        assert_eq!(reqs[0].path, "/img/a/v1/k.jpg");
        assert_eq!(reqs[0].query, "w=1");
        assert_eq!(reqs[0].sizes, Sizes::Logged(10));
        let mut r = reader();
        assert!(matches!(
            r.line("#Fields: date time"),
            Err(LogError::NoUriStem)
        ));
    }

    #[test]
    fn space_separated_lines_are_read() {
        let text = "#Fields: date x-edge-location sc-bytes cs-method cs-uri-stem cs-uri-query\n\
                    2026-11-24 NRT12-C1 900 GET /img/a/v1/k.jpg w=1&utm_source=a%20b\n";
        let (_, reqs) = read_all(text);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].query, "w=1&utm_source=a%20b");
        assert_eq!(reqs[0].sizes, Sizes::Logged(900));
        assert_eq!(reqs[0].region, region_index("jp").unwrap());
    }

    #[test]
    fn foreign_paths_and_params_are_mapped() {
        assert_eq!(
            map_path("/images/2024/cat photo.jpg"),
            "/img/log/v1/images/2024/cat_photo.jpg"
        );
        assert_eq!(map_path("/"), "/img/log/v1/_");
        assert_eq!(map_path("/a/../b"), "/img/log/v1/a/_/b");
        let long = format!("/{}", "x".repeat(600));
        let mapped = map_path(&long);
        assert!(
            pixelfront_shared::normalize::parse_path(&mapped).is_ok(),
            "{mapped}"
        );
        let text = format!(
            "{HEADER}{}\n",
            line("LHR1", "5", "GET", "/images/cat.jpg", "width=300&fmt=webp")
        );
        let (r, reqs) = read_all(&text);
        assert_eq!(reqs[0].path, "/img/log/v1/images/cat.jpg");
        assert_eq!(reqs[0].query, "w=300&fmt=webp");
        assert_eq!(r.stats.mapped_paths, 1);
    }

    #[test]
    fn accept_is_stable_per_client_and_follows_the_mix() {
        let mut counts = [0u32; 3];
        for i in 0..30_000u64 {
            counts[accept_class(mix64(i), &[0.7, 0.2, 0.1])] += 1;
        }
        assert!((20_000..22_000).contains(&counts[0]), "{counts:?}");
        assert!((2_500..3_500).contains(&counts[2]), "{counts:?}");
        let text = format!(
            "{HEADER}{}\n{}\n",
            line("IAD1", "5", "GET", "/img/a/v1/k.jpg", "-"),
            line("SFO1", "5", "GET", "/img/a/v1/k.jpg", "-")
        );
        let (_, reqs) = read_all(&text);
        assert_eq!(reqs[0].accept, reqs[1].accept);
    }

    #[test]
    fn airports_map_to_pricing_regions() {
        assert_eq!(airport("IAD89-C1"), "IAD");
        assert_eq!(airport("HIO50-C1"), "HIO");
        assert_eq!(region_of_airport("NRT"), region_index("jp"));
        assert_eq!(region_of_airport("bom"), region_index("in"));
        assert_eq!(region_of_airport("GRU"), region_index("sa"));
        assert_eq!(region_of_airport("QQQ"), None);
    }

    #[test]
    fn json_records_of_logging_v2_replay_as_their_tab_separated_twins() {
        let tab = format!(
            "{HEADER}{}\n",
            line(
                "IAD89-C1",
                "1234",
                "GET",
                "/img/a/v1/k.jpg",
                "width=300&fmt=webp"
            )
        );
        let json = concat!(
            r#"{"date":"2026-11-24","time":"10:00:00","x-edge-location":"IAD89-C1","sc-bytes":1234,"#,
            r#""c-ip":"192.0.2.1","cs-method":"GET","cs-uri-stem":"/img/a/v1/k.jpg","#,
            r#""cs(User-Agent)":"Mozilla/5.0","cs-uri-query":"width=300&fmt=webp"}"#,
            "\n",
            r#"{"date":"2026-11-24","cs-method":"POST","cs-uri-stem":"/img/a/v1/k.jpg"}"#,
            "\n",
            r#"{"date":"2026-11-24","sc-bytes":"12"}"#,
            "\n",
            r#"["not", "an", "object"]"#,
            "\n{broken\n"
        );
        let (_, from_tab) = read_all(&tab);
        let (r, from_json) = read_all(json);
        assert_eq!(from_json.len(), 1);
        assert_eq!(format!("{:?}", from_json[0]), format!("{:?}", from_tab[0]));
        assert_eq!(from_json[0].query, "w=300&fmt=webp");
        assert_eq!((r.stats.lines, r.stats.other_methods), (5, 1));
        assert_eq!(
            r.stats.malformed, 3,
            "no cs-uri-stem, not an object, broken JSON"
        );
        assert_eq!(r.stats.last_date, "2026-11-24");
    }
}
