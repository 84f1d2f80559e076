//! Request bodies: a whole body within `http_body_read_ms_max`, counted from when its
//! headers were read, and a length announced past the route's limit refused before a byte
//! of it is read.
//!
//! tower-http's `RequestBodyTimeoutLayer`, used before, restarts its timer on every frame:
//! a client that sends one byte a second never trips it, and holds a connection slot (and
//! a handler) for as long as its announced length lasts: a 4 MiB body at a byte a second
//! is six weeks. Here the deadline is one instant for the whole body; past it, the next
//! read fails, the extractor answers the API's error (`malformed_body`, with the reason),
//! and the connection is closed. The deadline only ends a body; it never cuts an answer
//! the node is still computing.
//!
//! An answer given before its request's body was read to the end (a refusal for the
//! announced length, a route that reads no body, a body past its deadline) says
//! `Connection: close`: hyper closes such a connection after the answer, and without the
//! header a client would put it back in its pool and send its next request down a socket
//! the node is closing ("connection closed before message completed").

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use huren_api::ErrorCode;
use hyper::body::{Frame, SizeHint};

use super::error::ApiError;

/// Why a body was cut off.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0} ms (http_body_read_ms_max)")]
pub(crate) struct BodyTooSlow(u128);

/// `inner`, failing once `deadline` has passed while it is still arriving.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    /// Set once the body has been read to its end.
    ended: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = self.get_mut();
        // What has arrived is taken first; the deadline counts only while waiting.
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.ended.store(true, Ordering::Relaxed);
                Poll::Ready(None)
            }
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Some(Err(BodyTooSlow(this.limit.as_millis()).into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Refuses (413 `body_too_large`) a request whose `Content-Length` announces more than
/// `limit` bytes: without this the extractor would wait for the body, holding a connection
/// slot until `http_body_read_ms_max`, only to refuse it when the limit is crossed.
pub(crate) fn announced_within(req: Request, limit: usize) -> Result<Request, ApiError> {
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match announced {
        Some(n) if n > limit as u64 => Err(ApiError::new(
            ErrorCode::BodyTooLarge,
            format!("the body announces {n} bytes; this route takes at most {limit}"),
        )),
        _ => Ok(req),
    }
}

/// Gives the request's body a deadline `limit` from now, and closes the connection after
/// an answer given before the body was read to its end.
pub(crate) async fn bounded(limit: Duration, req: Request, next: Next) -> Response {
    let (req, ended) = with_deadline(req, limit);
    let mut response = next.run(req).await;
    if ended.is_some_and(|e| !e.load(Ordering::Relaxed)) {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The request with its body given a deadline `limit` from now, and the flag set when
/// that body has been read to its end (none for a request without a body).
fn with_deadline(req: Request, limit: Duration) -> (Request, Option<Arc<AtomicBool>>) {
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        return (Request::from_parts(parts, body), None);
    }
    let ended = Arc::new(AtomicBool::new(false));
    let body = DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(limit)),
        limit,
        ended: ended.clone(),
    };
    (Request::from_parts(parts, Body::new(body)), Some(ended))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    /// A body that trickles (a byte every 30 ms) fails at the deadline, though no single
    /// gap between its bytes comes near it; one that arrives in time is read whole.
    #[tokio::test]
    async fn the_deadline_is_for_the_whole_body_not_each_piece() {
        let trickle = |n: usize| {
            Body::from_stream(futures::stream::iter(0..n).then(|_| async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                Ok::<_, std::io::Error>(Bytes::from_static(b"x"))
            }))
        };
        let req = |body| with_deadline(Request::new(body), Duration::from_millis(200)).0;
        let slow = axum::body::to_bytes(req(trickle(100)).into_body(), 1 << 20).await;
        let e = slow.expect_err("a 3 s trickle passes a 200 ms deadline");
        assert!(
            e.to_string().contains("did not arrive within 200 ms"),
            "{e}"
        );
        let quick = axum::body::to_bytes(req(trickle(3)).into_body(), 1 << 20).await;
        assert_eq!(quick.expect("in time").len(), 3);
    }

    /// An answer given before its body was read to the end closes the connection; one
    /// that read its body, or had none, keeps it.
    #[tokio::test]
    async fn an_answer_before_the_body_was_read_closes_the_connection() {
        use tower::ServiceExt;
        let app = axum::Router::new()
            .route("/ignores", axum::routing::post(|| async { "ok" }))
            .route(
                "/reads",
                axum::routing::post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(axum::middleware::from_fn(|req, next| {
                bounded(Duration::from_secs(5), req, next)
            }));
        let check = |path: &'static str, body: &'static str, closes: bool| {
            let app = app.clone();
            async move {
                let req = Request::post(path).body(Body::from(body)).expect("request");
                let r = app.oneshot(req).await.expect("answer");
                let close = r.headers().get(axum::http::header::CONNECTION);
                assert_eq!(close.is_some(), closes, "{path} with {body:?}");
            }
        };
        check("/ignores", "unread", true).await;
        check("/reads", "read", false).await;
        check("/ignores", "", false).await;
    }
}
