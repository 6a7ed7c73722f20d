//! Start-up helpers shared by the Lambda functions (feature `aws`): JSON logs, configuration
//! from the environment, and the rayon pool sized from the function's memory.

use crate::render::sizing::threads_for_lambda_memory;

/// JSON logs on stdout (CloudWatch), filtered by `RUST_LOG`.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_current_span(false)
        .without_time()
        .init();
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
