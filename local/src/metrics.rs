//! Prometheus metrics of the local stack (`GET /metrics`, text format 0.0.4), kept and
//! encoded by `prometheus-client`.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of `GET /metrics`.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds of the render-duration histogram, seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

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

/// How a backfill left one version, for `pixelfront_backfill_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backfilled {
    /// Rendered again with the current catalogue.
    Rendered,
    /// Already current.
    Current,
    /// No longer `ready`: left alone.
    Skipped,
    /// The render failed.
    Failed,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Every metric the local stack exports. Each label value's series is created up front (so it
/// reads 0 before its first event) and held, so that counting is one atomic add.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: [Counter; 3],
    renders: [Counter; 2],
    durations: [Histogram; 2],
    backfills: [Counter; 4],
    bytes_served: Counter,
    uploads: Counter,
    cache_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<ResultLabel, Counter>::default();
        let renders = Family::<KindLabel, Counter>::default();
        let durations =
            Family::<KindLabel, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        let backfills = Family::<OutcomeLabel, Counter>::default();
        let kinds = ["standard", "on_demand"];
        let mut metrics = Metrics {
            requests: ["hit", "miss", "reject"]
                .map(|result| requests.get_or_create(&ResultLabel { result }).clone()),
            renders: kinds.map(|kind| renders.get_or_create(&KindLabel { kind }).clone()),
            durations: kinds.map(|kind| durations.get_or_create(&KindLabel { kind }).clone()),
            backfills: ["rendered", "current", "skipped", "failed"]
                .map(|outcome| backfills.get_or_create(&OutcomeLabel { outcome }).clone()),
            bytes_served: Counter::default(),
            uploads: Counter::default(),
            cache_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "pixelfront_edge_requests",
            "Image requests by result",
            requests,
        );
        registry.register("pixelfront_renders", "Variants rendered, by kind", renders);
        registry.register(
            "pixelfront_render_duration_seconds",
            "Render time of one variant (decode share included for on-demand renders)",
            durations,
        );
        registry.register(
            "pixelfront_bytes_served",
            "Image bytes sent in response bodies",
            metrics.bytes_served.clone(),
        );
        registry.register(
            "pixelfront_uploads",
            "Originals accepted",
            metrics.uploads.clone(),
        );
        registry.register(
            "pixelfront_cache_bytes",
            "Bytes held by the in-memory cache",
            metrics.cache_bytes.clone(),
        );
        registry.register(
            "pixelfront_backfill",
            "Versions checked by backfills, by outcome",
            backfills,
        );
        metrics
    }
}

impl Metrics {
    /// Counts one image request that sent `bytes` of body.
    pub fn request(&self, outcome: Outcome, bytes: usize) {
        self.requests[outcome as usize].inc();
        self.bytes_served.inc_by(bytes as u64);
    }

    /// Counts one render of `millis` milliseconds.
    pub fn render(&self, kind: RenderKind, millis: u64) {
        self.renders[kind as usize].inc();
        self.durations[kind as usize].observe(millis as f64 / 1000.0);
    }

    /// Counts one accepted upload.
    pub fn upload(&self) {
        self.uploads.inc();
    }

    /// Counts one version checked by a backfill.
    pub fn backfill(&self, outcome: Backfilled) {
        self.backfills[outcome as usize].inc();
    }

    /// The Prometheus text exposition, with `cache_bytes` as the cache gauge.
    pub fn render_text(&self, cache_bytes: u64) -> String {
        self.cache_bytes
            .set(i64::try_from(cache_bytes).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
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
        m.backfill(Backfilled::Current);
        let text = m.render_text(7);
        for line in [
            "# TYPE pixelfront_edge_requests_total counter",
            "pixelfront_edge_requests_total{result=\"hit\"} 1",
            "pixelfront_edge_requests_total{result=\"miss\"} 0",
            "pixelfront_edge_requests_total{result=\"reject\"} 1",
            "pixelfront_renders_total{kind=\"standard\"} 0",
            "pixelfront_renders_total{kind=\"on_demand\"} 1",
            "# TYPE pixelfront_render_duration_seconds histogram",
            "pixelfront_render_duration_seconds_bucket{kind=\"on_demand\",le=\"0.025\"} 0",
            "pixelfront_render_duration_seconds_bucket{kind=\"on_demand\",le=\"0.05\"} 1",
            "pixelfront_render_duration_seconds_bucket{kind=\"on_demand\",le=\"1\"} 1",
            "pixelfront_render_duration_seconds_bucket{kind=\"on_demand\",le=\"+Inf\"} 1",
            "pixelfront_render_duration_seconds_sum{kind=\"on_demand\"} 0.03",
            "pixelfront_render_duration_seconds_count{kind=\"on_demand\"} 1",
            "pixelfront_bytes_served_total 100",
            "pixelfront_uploads_total 0",
            "# TYPE pixelfront_cache_bytes gauge",
            "pixelfront_cache_bytes 7",
            "pixelfront_backfill_total{outcome=\"current\"} 1",
            "pixelfront_backfill_total{outcome=\"failed\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
