//! Serving HTTP/1.1 connections, with the bounds `axum::serve` does not set: at most
//! `http_connections_max` connections at once (past it the node stops accepting until one
//! closes, and the kernel's backlog holds the rest), and `http_header_read_ms_max` for a
//! client to send its request headers, so that slow clients (slowloris) cannot hold the
//! descriptors libp2p and sled need. The router is axum's; this only accepts and drives
//! connections, and gives each request its peer address (`ConnectInfo`) for rate limiting.
//!
//! A connection the node closes while the client is still sending (a body refused unread
//! for its announced length, a body past its deadline) is closed lingering: the node ends
//! its side, then reads and discards what still arrives, for at most `LINGER` and
//! `LINGER_BYTES_MAX`, before it lets go of the socket. Closing a socket with unread bytes
//! makes the kernel send a reset, and a reset can reach the client before it has read the
//! answer already sent (it sees "connection reset" instead of `413 body_too_large`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use super::AppState;

/// How long a stopping node waits for open requests to finish.
const DRAIN: Duration = Duration::from_secs(10);
/// How long a closed connection still reads (and discards) what its client sends.
const LINGER: Duration = Duration::from_secs(2);
/// How many bytes a closed connection reads and discards at most.
const LINGER_BYTES_MAX: u64 = 1 << 20;

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
            let stream = Lingering {
                stream: Some(stream),
                slot: Some(slot),
            };
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

/// A connection's socket that, when hyper lets go of it, closes lingering (see the module
/// note). It holds the connection's slot until the lingering ends, so lingering sockets
/// count against `http_connections_max` like open ones.
struct Lingering {
    stream: Option<TcpStream>,
    slot: Option<OwnedSemaphorePermit>,
}

impl Lingering {
    fn stream(&mut self) -> &mut TcpStream {
        self.stream
            .as_mut()
            .expect("the socket is only taken on drop")
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let (Some(mut stream), slot) = (self.stream.take(), self.slot.take()) else {
            return;
        };
        // Dropped outside a runtime (the node is stopping): close at once.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let _slot = slot;
            let _ = stream.shutdown().await;
            let mut sink = [0u8; 8192];
            let mut left = LINGER_BYTES_MAX;
            let _ = tokio::time::timeout(LINGER, async {
                while left > 0 {
                    match stream.read(&mut sink).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n as u64),
                    }
                }
            })
            .await;
        });
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().stream()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.get_mut().stream()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().stream()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().stream()).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.get_mut().stream()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }
}
