//! The local stack's HTTP/1.1 server: hyper's connection handling under an accept loop of our
//! own, so that hostile clients cannot hold the process (docs/local-stack.md, "Limits"):
//!
//! - **header timeout**: a connection has this long to send a complete request head, timed
//!   from the moment it waits for one, so it is also the keep-alive idle timeout (hyper's
//!   `header_read_timeout`: one knob for both);
//! - **write timeout**: a client that takes no byte of its answer for this long is cut off
//!   (`tokio-io-timeout`; the clock restarts at every write that makes progress), so a reader
//!   that stalls cannot hold a connection slot;
//! - **body timeout**: a handler that reads a body gets all of it within this, else `408`
//!   ([`crate::routes::App::read_body`]);
//! - **connection cap**: at most this many connections are served at once; beyond it new ones
//!   wait in the kernel's accept backlog until a slot frees;
//! - **bounded shutdown**: on the signal the listener closes, idle connections close, requests
//!   in flight get until the shutdown deadline to finish, then every connection still open is
//!   dropped, whatever its client does.

use crate::routes::{route, App};
use axum::body::Body;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_io_timeout::TimeoutStream;

/// The connection limits of [`run`].
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time to receive a request head, and a keep-alive connection's idle time.
    pub header_timeout: Duration,
    /// Longest a write may wait for the client to take bytes.
    pub write_timeout: Duration,
    /// Connections served at once (at least 1).
    pub max_connections: usize,
    /// From the shutdown signal to the forced close of every connection.
    pub shutdown_timeout: Duration,
}

/// Serves `listener` until `signal` completes, then drains the connections until the shutdown
/// deadline, which it returns (background work may use what is left of it).
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    limits: ConnLimits,
    signal: impl Future<Output = ()>,
) -> Instant {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let http = Arc::new(http);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(signal);
    loop {
        while conns.try_join_next().is_some() {}
        let slot = tokio::select! {
            () = &mut signal => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.write_timeout));
        let conn = connection(
            Box::pin(stream),
            peer,
            app.clone(),
            http.clone(),
            stop_rx.clone(),
            slot,
        );
        conns.spawn(conn);
    }
    let deadline = Instant::now() + limits.shutdown_timeout;
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout_at(deadline, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = conns.len(),
            "shutdown deadline: closing the connections still open"
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
    deadline
}

/// Serves one connection until it closes, or closes it gracefully once `stop` turns true.
async fn connection(
    stream: Pin<Box<TimeoutStream<TcpStream>>>,
    peer: SocketAddr,
    app: Arc<App>,
    http: Arc<http1::Builder>,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(route(app, peer, req.map(Body::new)).await) }
    });
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection closed");
    }
}
