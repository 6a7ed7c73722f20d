//! The EMF records as CloudWatch reads them: one JSON line, an `_aws.CloudWatchMetrics`
//! directive whose every dimension and metric name is a member of the line.

use super::*;
use serde_json::json;

/// Writes `record` as the function would and parses the one line back.
fn line(record: &Emf) -> Value {
    let mut out = Vec::new();
    record.write_to(&mut out, 1_767_225_600_000).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches('\n').count(), 1, "one line: {text}");
    assert!(text.ends_with('\n'));
    serde_json::from_str(text.trim_end()).unwrap()
}

/// Checks the EMF specification's rules on `v` and returns (dimension sets, metric name -> unit).
fn directive(v: &Value) -> (Vec<Vec<String>>, Vec<(String, String)>) {
    let aws = &v["_aws"];
    assert_eq!(aws["Timestamp"], json!(1_767_225_600_000u64));
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives.len(), 1);
    let d = &directives[0];
    assert_eq!(d["Namespace"], "Pixelfront");
    let dims: Vec<Vec<String>> = d["Dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|set| {
            let set: Vec<String> = set
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect();
            // Every dimension is a string member of the root.
            for k in &set {
                assert!(v[k].is_string(), "dimension {k} missing in {v}");
            }
            set
        })
        .collect();
    let metrics: Vec<(String, String)> = d["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["Name"].as_str().unwrap().to_string();
            // Every metric is a number member of the root.
            assert!(v[&name].is_number(), "metric {name} missing in {v}");
            (name, m["Unit"].as_str().unwrap().to_string())
        })
        .collect();
    (dims, metrics)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn a_transform_render_is_one_line_with_the_function_dimension() {
    let record = Emf::new("pixelfront-TransformFunction-abc")
        .with(ON_DEMAND_MISSES, Unit::Count, 1.0)
        .with(RENDERS, Unit::Count, 1.0)
        .with(RENDER_TIME, Unit::Milliseconds, 412.0)
        .with(BYTES_WRITTEN, Unit::Bytes, 18_233.0);
    let v = line(&record);
    let (dims, metrics) = directive(&v);
    assert_eq!(dims, vec![vec!["Function".to_string()]]);
    assert_eq!(
        metrics,
        pairs(&[
            ("OnDemandMisses", "Count"),
            ("Renders", "Count"),
            ("RenderTime", "Milliseconds"),
            ("BytesWritten", "Bytes"),
        ])
    );
    assert_eq!(v["Function"], "pixelfront-TransformFunction-abc");
    assert_eq!(v["RenderTime"], json!(412.0));
    assert_eq!(v["BytesWritten"], json!(18_233.0));
    assert!(v.get("ErrorType").is_none());
}

#[test]
fn an_error_is_published_per_error_type_and_per_function() {
    let v = line(&Emf::error("precompute", "StoreUnavailable"));
    let (dims, metrics) = directive(&v);
    assert_eq!(
        dims,
        vec![
            vec!["Function".to_string(), "ErrorType".to_string()],
            vec!["Function".to_string()]
        ]
    );
    assert_eq!(metrics, pairs(&[("Errors", "Count")]));
    assert_eq!(v["ErrorType"], "StoreUnavailable");
    assert_eq!(v["Errors"], json!(1.0));
}

#[test]
fn an_empty_record_writes_nothing_and_a_repeated_name_replaces_the_value() {
    let mut out = Vec::new();
    Emf::new("takedown").write_to(&mut out, 0).unwrap();
    assert!(out.is_empty());
    let record = Emf::new("t")
        .with(RENDERS, Unit::Count, 1.0)
        .with(RENDERS, Unit::Count, 3.0);
    let (_, metrics) = directive(&line(&record));
    assert_eq!(metrics, pairs(&[("Renders", "Count")]));
    assert_eq!(line(&record)["Renders"], json!(3.0));
}

/// A render step's JSON result, as `pipeline::task::handle` returns it.
fn render_result(skipped: bool) -> Value {
    let variant = |name: &str, bytes: u64, ms: u64| {
        json!({"name": name, "derivative": format!("{name}.webp"), "width": 320, "height": 200,
               "bytes": bytes, "render_ms": ms, "object_key": format!("acme/v1/p.jpg/{name}.webp"),
               "content_type": "image/webp"})
    };
    json!({
        "tenant": "acme", "key": "p.jpg", "version": 1, "status": "ready", "skipped": skipped,
        "original": {"width": 640, "height": 400, "format": "jpeg"},
        "decode_ms": 30, "total_ms": 250,
        "variants": if skipped { json!([]) } else { json!([variant("sm", 1000, 20), variant("md", 4000, 50)]) },
    })
}

#[test]
fn a_precompute_render_counts_variants_time_and_bytes() {
    let v = line(&precompute_result("precompute", &render_result(false)));
    let (dims, metrics) = directive(&v);
    assert_eq!(dims, vec![vec!["Function".to_string()]]);
    assert_eq!(
        metrics,
        pairs(&[
            ("Renders", "Count"),
            ("RenderTime", "Milliseconds"),
            ("BytesWritten", "Bytes"),
        ])
    );
    assert_eq!(
        (&v["Renders"], &v["RenderTime"], &v["BytesWritten"]),
        (&json!(2.0), &json!(100.0), &json!(5000.0))
    );
    // A bare event's outcome carries the report under `render`.
    let outcome = json!({"job": {}, "render": render_result(false)});
    assert_eq!(line(&precompute_result("precompute", &outcome)), v);
}

#[test]
fn other_precompute_steps_and_skipped_renders_publish_nothing() {
    assert!(precompute_result("p", &render_result(true)).is_empty());
    assert!(precompute_result("p", &json!({"job": {}, "render": null})).is_empty());
    assert!(precompute_result("p", &json!({"total": 3, "cursor": null})).is_empty());
    assert!(precompute_result("p", &json!({"variants": "not a list", "decode_ms": 1})).is_empty());
}

#[test]
fn a_finished_takedown_counts_once_with_its_assets() {
    let summary = json!({"request_id": "r1", "assets": ["acme/a.jpg", "acme/b.jpg"], "deleted": 7});
    let v = line(&takedown_result("takedown", "finish", &summary));
    let (_, metrics) = directive(&v);
    assert_eq!(
        metrics,
        pairs(&[("Takedowns", "Count"), ("AssetsRemoved", "Count")])
    );
    assert_eq!(
        (&v["Takedowns"], &v["AssetsRemoved"]),
        (&json!(1.0), &json!(2.0))
    );
    assert!(takedown_result("takedown", "purge", &summary).is_empty());
}

#[test]
fn the_function_dimension_falls_back_to_the_binary_name() {
    // Lambda always sets AWS_LAMBDA_FUNCTION_NAME; the test process does not.
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none() {
        assert_eq!(function_name("transform"), "transform");
    }
}
