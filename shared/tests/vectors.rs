//! The shared normalization vectors (`tests/vectors/normalize.json`) through the Rust
//! normalizer. The CloudFront Functions run the same file (`edge/test/vectors.test.mjs`,
//! `edge/test/viewer-response.test.mjs`), so both implementations agree byte for byte on keys,
//! canonical queries, 400 reasons and whether the answer varies on `Accept`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test"
)]

use pixelfront_shared::normalize;
use serde_json::Value;

const VECTORS: &str = include_str!("../../tests/vectors/normalize.json");

#[test]
fn every_vector_matches() {
    let doc: Value = serde_json::from_str(VECTORS).expect("vectors parse");
    let cases = doc["cases"].as_array().expect("cases array");
    assert!(
        cases.len() >= 120,
        "the vector file lost cases: {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let path = case["path"].as_str().expect("path");
        let query = case["query"].as_str().expect("query");
        let accept = case.get("accept").and_then(Value::as_str);
        let got = normalize(path, query, accept);
        match (case.get("key"), case.get("reject"), got) {
            (Some(key), None, Ok(n)) => {
                if n.derived_key() != key.as_str().unwrap_or_default()
                    || n.canonical.query() != case["canonical"].as_str().unwrap_or_default()
                    || Some(n.fmt_from_accept) != case["vary"].as_bool()
                {
                    failures.push(format!(
                        "{name}: got {} ({}, fmt from Accept: {})",
                        n.derived_key(),
                        n.canonical.query(),
                        n.fmt_from_accept
                    ));
                }
            }
            (None, Some(reason), Err(r)) => {
                if r.to_string() != reason.as_str().unwrap_or_default() {
                    failures.push(format!("{name}: got reason {r:?} = {r}"));
                }
            }
            (_, _, got) => failures.push(format!("{name}: got {got:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn catalogue_derivative_names_match_spec() {
    use pixelfront_shared::render::Target;
    let names: Vec<String> = pixelfront_shared::Policy::get()
        .variants
        .iter()
        .map(|v| Target::from(v).canonical().derivative_name())
        .collect();
    assert_eq!(
        names,
        [
            "w160-h160-q75.webp",
            "w320-q80.webp",
            "w320-q60.avif",
            "w640-q80.webp",
            "w640-q60.avif",
            "w640-q80.jpeg",
            "w1280-q80.webp",
            "w1280-q60.avif"
        ]
    );
}
