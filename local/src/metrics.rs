//! Prometheus metrics of the local stack (`GET /metrics`, text format 0.0.4).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the render-duration histogram, seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram with fixed buckets.
#[derive(Debug, Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, millis: u64) {
        let secs = millis as f64 / 1000.0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(millis * 1000, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            let n = self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {n}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// How an image request ended, for `pixelfront_edge_requests_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served from the in-memory cache.
    Hit,
    /// Served from a stored derivative or a render.
    Miss,
    /// Answered with an error (400, 403, 404, 429, …).
    Reject,
}

/// Which kind of render, for `pixelfront_renders_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderKind {
    /// One of the 8 standard variants, at upload.
    Standard,
    /// A non-standard request, on its first miss.
    OnDemand,
}

/// Every counter the local stack exports.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; 3],
    renders: [AtomicU64; 2],
    durations: [Histogram; 2],
    bytes_served: AtomicU64,
    uploads: AtomicU64,
}

impl Metrics {
    /// Counts one image request.
    pub fn request(&self, outcome: Outcome, bytes: usize) {
        self.requests[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.bytes_served.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts one render of `millis` milliseconds.
    pub fn render(&self, kind: RenderKind, millis: u64) {
        self.renders[kind as usize].fetch_add(1, Ordering::Relaxed);
        self.durations[kind as usize].observe(millis);
    }

    /// Counts one accepted upload.
    pub fn upload(&self) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with `cache_bytes` as a gauge.
    pub fn render_text(&self, cache_bytes: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP pixelfront_edge_requests_total Image requests by result.\n");
        out.push_str("# TYPE pixelfront_edge_requests_total counter\n");
        for (i, result) in ["hit", "miss", "reject"].iter().enumerate() {
            let n = self.requests[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "pixelfront_edge_requests_total{{result=\"{result}\"}} {n}"
            );
        }
        out.push_str("# HELP pixelfront_renders_total Variants rendered, by kind.\n");
        out.push_str("# TYPE pixelfront_renders_total counter\n");
        for (i, kind) in ["standard", "on_demand"].iter().enumerate() {
            let n = self.renders[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "pixelfront_renders_total{{kind=\"{kind}\"}} {n}");
        }
        out.push_str("# HELP pixelfront_render_duration_seconds Render time of one variant (decode share included for on-demand renders).\n");
        out.push_str("# TYPE pixelfront_render_duration_seconds histogram\n");
        for (i, kind) in ["standard", "on_demand"].iter().enumerate() {
            self.durations[i].write(
                &mut out,
                "pixelfront_render_duration_seconds",
                &format!("kind=\"{kind}\""),
            );
        }
        out.push_str("# HELP pixelfront_bytes_served_total Image bytes sent in response bodies.\n");
        out.push_str("# TYPE pixelfront_bytes_served_total counter\n");
        let n = self.bytes_served.load(Ordering::Relaxed);
        let _ = writeln!(out, "pixelfront_bytes_served_total {n}");
        out.push_str("# HELP pixelfront_uploads_total Originals accepted.\n");
        out.push_str("# TYPE pixelfront_uploads_total counter\n");
        let n = self.uploads.load(Ordering::Relaxed);
        let _ = writeln!(out, "pixelfront_uploads_total {n}");
        out.push_str("# HELP pixelfront_cache_bytes Bytes held by the in-memory cache.\n");
        out.push_str("# TYPE pixelfront_cache_bytes gauge\n");
        let _ = writeln!(out, "pixelfront_cache_bytes {cache_bytes}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histogram_in_prometheus_text() {
        let m = Metrics::default();
        m.request(Outcome::Hit, 100);
        m.request(Outcome::Reject, 0);
        m.render(RenderKind::OnDemand, 30);
        let text = m.render_text(7);
        for line in [
            "pixelfront_edge_requests_total{result=\"hit\"} 1",
            "pixelfront_edge_requests_total{result=\"miss\"} 0",
            "pixelfront_edge_requests_total{result=\"reject\"} 1",
            "pixelfront_renders_total{kind=\"on_demand\"} 1",
            "pixelfront_render_duration_seconds_bucket{kind=\"on_demand\",le=\"0.025\"} 0",
            "pixelfront_render_duration_seconds_bucket{kind=\"on_demand\",le=\"0.05\"} 1",
            "pixelfront_render_duration_seconds_count{kind=\"on_demand\"} 1",
            "pixelfront_bytes_served_total 100",
            "pixelfront_cache_bytes 7",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
