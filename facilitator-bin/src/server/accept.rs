//! The accept loop: HTTP/1.1 connections served by hyper under the connection limits of
//! `[limits]`.
//!
//! - At most `max_connections` connections are served at once: the loop takes a place before it
//!   accepts, so further clients wait in the kernel's listen backlog and never cost a file
//!   descriptor of this process. The limit is lowered at start-up to what the open-file limit
//!   leaves room for (after raising the soft limit toward the hard one where it can).
//! - A connection that has not sent a whole request head within `header_read_timeout_ms` of its
//!   start, or of its previous answer, is closed: trickled headers and idle connections hold their
//!   place for that long at most. Request heads are capped at [`MAX_HEAD_BYTES`].
//! - Each request carries its peer address ([`ConnectInfo`]) for the per-client limit.
//!
//! Shutdown stops accepting, lets each connection finish the request it is serving, closes idle
//! ones, and returns once every connection has ended.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::AppState;

/// The largest request head (request line and headers) read; a longer one is answered 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// File descriptors kept for everything but client connections (RPC and store connections, log
/// files, the listener).
const RESERVED_FDS: u64 = 256;

/// Raises the soft open-file limit toward what `wanted` connections need (never above the hard
/// limit), and returns how many connections the resulting limit leaves room for.
#[cfg(unix)]
fn fit_open_files(wanted: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return wanted;
    };
    let needed = (wanted as u64).saturating_add(RESERVED_FDS);
    let mut soft = soft;
    if soft < needed {
        let raised = needed.min(hard);
        if setrlimit(Resource::RLIMIT_NOFILE, raised, hard).is_ok() {
            soft = raised;
        }
    }
    let room = usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    wanted.min(room.max(1))
}

#[cfg(not(unix))]
fn fit_open_files(wanted: usize) -> usize {
    wanted
}

/// Whether an accept error concerns only the connection being accepted (the next one may do).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionAborted
            | ErrorKind::ConnectionReset
            | ErrorKind::Interrupted
    )
}

/// Serves the router over `state` on `listener` until `shutdown` resolves, then finishes the
/// requests in progress.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits.clone();
    let guards = Arc::clone(&state.guards);
    let router = super::router(state);
    let max = fit_open_files(limits.max_connections);
    if max < limits.max_connections {
        tracing::warn!(
            configured = limits.max_connections,
            serving = max,
            "[limits] max_connections lowered to what the open-file limit (ulimit -n) allows"
        );
    }
    let places = Arc::new(Semaphore::new(max));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_buf_size(MAX_HEAD_BYTES);
    let http = Arc::new(http);
    // Closed when shutdown starts: every connection then finishes its request and closes.
    let (stop_tx, stop_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let place = tokio::select! {
            place = Arc::clone(&places).acquire_owned() => match place {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of descriptors or memory: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let open = guards.open_connection();
        let (router, http, stop) = (router.clone(), Arc::clone(&http), stop_rx.clone());
        tokio::spawn(async move {
            serve_connection(&http, stream, peer, router, stop).await;
            drop(open);
            drop(place);
        });
    }
    drop(listener);
    drop(stop_tx);
    // Every connection holds a place until it ends.
    let _all = places.acquire_many_owned(max_permits(max)).await;
    Ok(())
}

fn max_permits(max: usize) -> u32 {
    u32::try_from(max).unwrap_or(u32::MAX)
}

async fn serve_connection(
    http: &hyper::server::conn::http1::Builder,
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    mut stop: watch::Receiver<()>,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move { tower::Service::call(&mut router, request).await }
    });
    let connection = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended");
            }
            return;
        }
        _ = stop.changed() => {}
    }
    connection.as_mut().graceful_shutdown();
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "connection ended");
    }
}
