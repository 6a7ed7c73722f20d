//! Start-up helpers shared by the Lambda functions (feature `aws`): JSON logs that carry the
//! Lambda request id, configuration from the environment, and the rayon pool sized from the
//! function's memory.

use crate::render::sizing::threads_for_lambda_memory;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The target of the span `lambda_runtime` opens around each invocation, named
/// `Lambda runtime invoke` with the field `requestId`.
pub const INVOKE_SPAN_TARGET: &str = "lambda_runtime::layers::trace";

/// The log filter: `rust_log` (the `RUST_LOG` syntax; `None` = errors only), with the
/// invocation span always on, whatever the level, so that every line logged during an
/// invocation names its request id.
pub fn log_filter(rust_log: Option<&str>) -> EnvFilter {
    let filter = EnvFilter::builder()
        .with_default_directive(tracing::Level::ERROR.into())
        .parse_lossy(rust_log.unwrap_or(""));
    match format!("{INVOKE_SPAN_TARGET}=info").parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// The JSON log subscriber writing to `writer`: one object per line, no timestamp (CloudWatch
/// stamps each line), and during an invocation
/// `"spans":[{"requestId":"…","name":"Lambda runtime invoke"}]`.
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(true)
        .without_time()
        .with_writer(writer)
        .finish()
}

/// JSON logs on stdout (CloudWatch), filtered by `RUST_LOG`, each line of an invocation carrying
/// its request id ([`json_subscriber`]). Does nothing when a subscriber is already set.
pub fn init_tracing() {
    let rust_log = std::env::var("RUST_LOG").ok();
    let subscriber = json_subscriber(log_filter(rust_log.as_deref()), std::io::stdout);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// A required environment variable, with a clear start-up error when it is unset or empty.
pub fn required_env(name: &str) -> Result<String, String> {
    optional_env(name).ok_or_else(|| format!("environment variable {name} is not set"))
}

/// An optional environment variable; empty counts as unset.
pub fn optional_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Render threads: `PIXELFRONT_THREADS`, else from `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (vCPUs
/// scale with memory), else every core.
pub fn render_threads() -> usize {
    let parse = |name: &str| optional_env(name).and_then(|v| v.parse::<u32>().ok());
    if let Some(n) = parse("PIXELFRONT_THREADS").filter(|&n| n > 0) {
        return n as usize;
    }
    match parse("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
        Some(mb) => threads_for_lambda_memory(mb),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Builds the global rayon pool with [`render_threads`] threads; returns the count.
pub fn init_rayon() -> Result<usize, rayon::ThreadPoolBuildError> {
    let threads = render_threads();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    Ok(threads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A log sink the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Sink {
        type Writer = Sink;
        fn make_writer(&'w self) -> Sink {
            self.clone()
        }
    }

    /// The lines logged at `rust_log` by a warning inside the span lambda_runtime opens.
    fn logged(rust_log: &str) -> Vec<serde_json::Value> {
        let sink = Sink::default();
        let subscriber = json_subscriber(log_filter(Some(rust_log)), sink.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                target: "lambda_runtime::layers::trace",
                "Lambda runtime invoke",
                requestId = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
            );
            let _entered = span.enter();
            tracing::warn!(error_type = "StoreUnavailable", "task failed");
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn every_line_of_an_invocation_names_its_request_id_at_any_level() {
        for level in ["info", "warn", "pixelfront_shared=warn"] {
            let lines = logged(level);
            assert_eq!(lines.len(), 1, "{level}: {lines:?}");
            let line = &lines[0];
            assert_eq!(line["level"], "WARN");
            assert_eq!(line["fields"]["message"], "task failed");
            assert_eq!(
                line["spans"][0]["requestId"], "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
                "{level}: {line}"
            );
        }
    }

    #[test]
    fn the_filter_still_drops_what_rust_log_leaves_out() {
        assert!(logged("error").is_empty());
    }
}
