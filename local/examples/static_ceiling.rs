//! The cache-hit ceiling of the local stack's HTTP layer: hyper's HTTP/1.1 connection handling,
//! as `local/src/server.rs` uses it, answering every request with one fixed body and nothing
//! else (no routing, normalization, cache lookup or headers beyond the body's). No server built
//! on hyper's buffered writes can serve cache hits faster than this on the same machine; see
//! BENCHMARKS.md ("The nginx ratio"), which runs it with wrk beside the local stack and nginx.
//!
//! ```sh
//! cargo run --release -p pixelfront-local --example static_ceiling -- <file> [<addr>]
//! ```
//!
//! Serves the bytes of `<file>` on `<addr>` (default 127.0.0.1:0, printed on stdout) until
//! killed.

use axum::body::Body;
use bytes::Bytes;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args.next().ok_or("usage: static_ceiling <file> [<addr>]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_string());
    let body = Bytes::from(std::fs::read(&file)?);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let body = body.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_req| {
                let body = body.clone();
                async move {
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "image/webp")
                            .body(Body::from(body))
                            .unwrap_or_default(),
                    )
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
