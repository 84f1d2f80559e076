//! Serving HTTP/1.1 connections, with the bounds `axum::serve` does not set: at most
//! `http_connections_max` connections at once (past it the node stops accepting until one
//! closes, and the kernel's backlog holds the rest), and `http_header_read_ms_max` for a
//! client to send its request headers, so that slow clients (slowloris) cannot hold the
//! descriptors libp2p and sled need. The router is axum's; this only accepts and drives
//! connections, and gives each request its peer address (`ConnectInfo`) for rate limiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use super::AppState;

/// How long a stopping node waits for open requests to finish.
const DRAIN: Duration = Duration::from_secs(10);

pub(super) async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let connections_max = state.limits.http_connections_max.max(1);
    let header_read = Duration::from_millis(state.limits.http_header_read_ms_max);
    let app = super::router(state);
    let slots = Arc::new(Semaphore::new(connections_max));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // A slot first: at the cap, accept nothing until a connection closes.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s?,
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors, or the peer reset before we took it: wait a
                    // moment rather than spin.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = app
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                req
            });
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%remote, error = %e, "HTTP connection ended");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    // Stop: no new connections; open ones finish their request, for at most DRAIN.
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many_owned(connections_max as u32)).await;
    Ok(())
}
