//! CloudWatch metrics of the Lambda functions, in Embedded Metric Format (EMF): one JSON line on
//! stdout per record, which CloudWatch Logs turns into metrics of namespace [`NAMESPACE`] (no
//! agent and no API call: Lambda ships stdout to the function's log group).
//!
//! Only the Lambda adapters (`functions/*`) emit these; the local stack has its own Prometheus
//! metrics (`local/src/metrics.rs`). Every record carries the dimension `Function` (the Lambda
//! function's name, from `AWS_LAMBDA_FUNCTION_NAME`, so two stacks in one account stay apart);
//! an error record also carries `ErrorType` and is published both per `(Function, ErrorType)`
//! and per `Function`. The metrics (docs/aws-deploy.md#metrics):
//!
//! | name | unit | emitted by |
//! |---|---|---|
//! | [`RENDERS`] | Count | precompute (variants written), transform (one per render) |
//! | [`RENDER_TIME`] | Milliseconds | precompute, transform |
//! | [`BYTES_WRITTEN`] | Bytes | precompute, transform (when the render was stored) |
//! | [`ON_DEMAND_MISSES`] | Count | transform (every request: the derived bucket missed) |
//! | [`ERRORS`] | Count | every function, with `ErrorType` |
//! | [`TAKEDOWNS`], [`ASSETS_REMOVED`] | Count | takedown (finished requests, their assets) |

use crate::pipeline::RenderReport;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// The CloudWatch namespace of every Pixelfront metric.
pub const NAMESPACE: &str = "Pixelfront";

/// Renders done, Count: the precompute render step counts the variants it wrote, the transformer
/// one per derivative it rendered (not one it found stored).
pub const RENDERS: &str = "Renders";
/// Render time, Milliseconds: decode + resize + encode (precompute: the decode plus every
/// variant's resize and encode, summed; transform: the one render).
pub const RENDER_TIME: &str = "RenderTime";
/// Encoded bytes written to the derived bucket, Bytes.
pub const BYTES_WRITTEN: &str = "BytesWritten";
/// Requests that reached the transformer, Count: each is a miss of the derived bucket that
/// CloudFront's origin group sent on, whatever the answer.
pub const ON_DEMAND_MISSES: &str = "OnDemandMisses";
/// Failures, Count, with the `ErrorType` dimension: the Lambda `errorType` of a failed task
/// (precompute, takedown), or the transformer's server-side answers (5xx) and unrenderable
/// originals (422). Refusals of the viewer's request (400, 403, 404, 429) are not errors.
pub const ERRORS: &str = "Errors";
/// Takedown and erasure requests finished (their `finish` step), Count.
pub const TAKEDOWNS: &str = "Takedowns";
/// Assets removed by the finished takedown and erasure requests, Count.
pub const ASSETS_REMOVED: &str = "AssetsRemoved";

/// Dimension naming the Lambda function.
pub const FUNCTION_DIMENSION: &str = "Function";
/// Dimension naming the error type of an [`ERRORS`] record.
pub const ERROR_TYPE_DIMENSION: &str = "ErrorType";

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of events.
    Count,
    /// A duration in milliseconds.
    Milliseconds,
    /// A size in bytes.
    Bytes,
}

impl Unit {
    /// The unit's CloudWatch name.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
        }
    }
}

/// One EMF record: a function, an optional error type, and metric values.
#[derive(Debug, Clone, PartialEq)]
pub struct Emf {
    function: String,
    error_type: Option<String>,
    metrics: Vec<(&'static str, Unit, f64)>,
}

impl Emf {
    /// An empty record for `function` (the value of the `Function` dimension).
    pub fn new(function: impl Into<String>) -> Emf {
        Emf {
            function: function.into(),
            error_type: None,
            metrics: Vec::new(),
        }
    }

    /// One [`ERRORS`] of `error_type` (e.g. `StoreUnavailable`) in `function`.
    pub fn error(function: impl Into<String>, error_type: impl Into<String>) -> Emf {
        Emf {
            error_type: Some(error_type.into()),
            ..Emf::new(function)
        }
        .with(ERRORS, Unit::Count, 1.0)
    }

    /// The record with one more value (`name` once per record: a repeated name replaces it).
    pub fn with(mut self, name: &'static str, unit: Unit, value: f64) -> Emf {
        self.metrics.retain(|(n, _, _)| *n != name);
        self.metrics.push((name, unit, value));
        self
    }

    /// `true` when the record holds no value (emitting it would publish nothing).
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The EMF object: `_aws` (`Timestamp` in milliseconds since the epoch, one
    /// `CloudWatchMetrics` directive) and the dimension and metric values as members.
    pub fn to_json(&self, timestamp_ms: u64) -> Value {
        let dimensions = match &self.error_type {
            Some(_) => json!([
                [FUNCTION_DIMENSION, ERROR_TYPE_DIMENSION],
                [FUNCTION_DIMENSION]
            ]),
            None => json!([[FUNCTION_DIMENSION]]),
        };
        let definitions: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit.as_str() }))
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": dimensions,
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert(FUNCTION_DIMENSION.into(), json!(self.function));
        if let Some(t) = &self.error_type {
            root.insert(ERROR_TYPE_DIMENSION.into(), json!(t));
        }
        for (name, _, value) in &self.metrics {
            root.insert((*name).into(), json!(value));
        }
        Value::Object(root)
    }

    /// Writes the record as one line to `out`; nothing for an empty record.
    pub fn write_to(&self, out: &mut impl Write, timestamp_ms: u64) -> std::io::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let line = self.to_json(timestamp_ms).to_string();
        writeln!(out, "{line}")
    }

    /// Prints the record on stdout, stamped now. A failed write is dropped: a metric is never
    /// worth failing an invocation for.
    pub fn emit(&self) {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let _ = self.write_to(&mut std::io::stdout().lock(), now_ms);
    }
}

/// The `Function` dimension: `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda), else `fallback` (the
/// binary's name, e.g. when run by hand).
pub fn function_name(fallback: &str) -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| fallback.to_string())
}

/// The record of a precompute render step (or of a bare event's render): variants written,
/// decode plus render time, bytes written. Empty when the step rendered nothing (skipped).
pub fn render_report(function: &str, report: &RenderReport) -> Emf {
    let record = Emf::new(function);
    if report.skipped || report.variants.is_empty() {
        return record;
    }
    let render_ms = report.variants.iter().fold(report.decode_ms, |t, v| {
        t.saturating_add(v.variant.render_ms)
    });
    let bytes = report
        .variants
        .iter()
        .fold(0u64, |t, v| t.saturating_add(v.variant.bytes));
    record
        .with(RENDERS, Unit::Count, report.variants.len() as f64)
        .with(RENDER_TIME, Unit::Milliseconds, render_ms as f64)
        .with(BYTES_WRITTEN, Unit::Bytes, bytes as f64)
}

/// The record of a precompute task's JSON result: the render step's report, or the `render`
/// of a bare event's outcome; empty for every other step.
pub fn precompute_result(function: &str, result: &Value) -> Emf {
    let report = result
        .get("render")
        .filter(|r| !r.is_null())
        .unwrap_or(result);
    if report.get("variants").is_none() || report.get("decode_ms").is_none() {
        return Emf::new(function);
    }
    match serde_json::from_value::<RenderReport>(report.clone()) {
        Ok(r) => render_report(function, &r),
        Err(_) => Emf::new(function),
    }
}

/// The record of a takedown task's JSON result: for the `finish` step ([`crate::removal`]'s
/// summary), one [`TAKEDOWNS`] and its assets; empty for every other step.
pub fn takedown_result(function: &str, step: &str, result: &Value) -> Emf {
    if step != "finish" {
        return Emf::new(function);
    }
    let assets = result
        .get("assets")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    Emf::new(function).with(TAKEDOWNS, Unit::Count, 1.0).with(
        ASSETS_REMOVED,
        Unit::Count,
        assets as f64,
    )
}

#[cfg(test)]
mod tests;
