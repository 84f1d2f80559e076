//! A real department node for the CLI's online tests: `huren-node`'s own router, its
//! sled store in a temporary directory and its block producer, served over HTTP on
//! 127.0.0.1, in the test process.
//!
//! What the real node cannot produce on demand (a 5xx, a 429, a connection dropped in the
//! middle of an answer, a slow answer) comes from `Fault`s set on a thin layer in front
//! of the real router. The layer also records every request, so a test can check what
//! the CLI sent. It never answers a request on the node's behalf except with a fault,
//! and it knows nothing of the API's shapes: there is no second implementation of the
//! node here.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use huren_api::{ErrorBody, ErrorCode, ErrorDetail};
use huren_testkit::{Founded, NodeOptions};

/// A request as the node received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What goes wrong with the requests a `Fault` matches.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this error (with its status) without passing the request on: what a
    /// proxy or a rate limiter in front of the node does.
    Refuse(ErrorCode),
    /// Pass the request to the node, which acts on it, then answer a 500 instead of its
    /// answer: the client cannot know what was done.
    FailAfter,
    /// Pass the request to the node, then send the head of its answer and cut the
    /// connection in the middle of the body.
    DropMidAnswer,
    /// Wait this long, then pass the request on.
    Delay(Duration),
}

/// A fault for the requests whose path ends with `path_suffix` and whose body contains
/// `body_contains`, applied at most `times` times.
#[derive(Debug, Clone)]
pub struct Rule {
    pub path_suffix: &'static str,
    pub body_contains: &'static str,
    pub fault: Fault,
    pub times: usize,
}

#[derive(Default)]
struct Layer {
    seen: Mutex<Vec<Seen>>,
    rules: Mutex<Vec<Rule>>,
}

/// A running node; stopped when dropped (its data directory is in the founded network's
/// directory, removed with it).
pub struct LiveNode {
    pub url: String,
    layer: Arc<Layer>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveNode {
    /// The gd.transport node of `founded`, with `limits` added to its config's
    /// `[limits]`.
    pub fn start(founded: &Founded, limits: &str) -> Self {
        let text = founded
            .config_text(
                "gd.transport",
                &NodeOptions {
                    limits: format!("batch_window_ms = 1\n{limits}"),
                    ..Default::default()
                },
            )
            .expect("config");
        let cfg: huren_node::config::Config = toml::from_str(&text).expect("config parses");
        let layer = Arc::new(Layer::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let l = layer.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let assembled = huren_node::node::assemble(&cfg).expect("assemble the node");
                let router = huren_node::api::router(assembled.state)
                    .layer(axum::middleware::from_fn_with_state(l, faults));
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let addr = listener.local_addr().expect("address");
                ready_tx.send(addr).expect("report address");
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await
                .expect("serve");
            });
        });
        let addr = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the node starts");
        Self {
            url: format!("http://{addr}"),
            layer,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.layer.seen.lock().expect("lock").clone()
    }

    pub fn add_rule(&self, rule: Rule) {
        self.layer.rules.lock().expect("lock").push(rule);
    }
}

impl Drop for LiveNode {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The fault layer: records the request, applies the first matching rule.
async fn faults(State(layer): State<Arc<Layer>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    // Bodies in these tests are small; a bound keeps a runaway test from eating memory.
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path = parts.uri.path().to_owned();
    layer.seen.lock().expect("lock").push(Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: parts.headers.clone(),
        body: bytes.clone(),
    });
    let fault = {
        let mut rules = layer.rules.lock().expect("lock");
        let text = String::from_utf8_lossy(&bytes);
        rules
            .iter_mut()
            .find(|r| {
                r.times > 0 && path.ends_with(r.path_suffix) && text.contains(r.body_contains)
            })
            .map(|r| {
                r.times -= 1;
                r.fault.clone()
            })
    };
    let req = Request::from_parts(parts, Body::from(bytes));
    match fault {
        None => next.run(req).await,
        Some(Fault::Refuse(code)) => error(code, "injected by the test"),
        Some(Fault::FailAfter) => {
            let _ = next.run(req).await;
            error(ErrorCode::Internal, "internal error; see the node's log")
        }
        Some(Fault::DropMidAnswer) => {
            let answer = next.run(req).await;
            let (parts, body) = answer.into_parts();
            let bytes = axum::body::to_bytes(body, 64 << 20)
                .await
                .unwrap_or_default();
            let half = bytes.slice(..bytes.len() / 2);
            let stream = futures::stream::iter(vec![
                Ok::<Bytes, std::io::Error>(half),
                Err(std::io::Error::other("connection cut by the test")),
            ]);
            let mut cut = Response::from_parts(parts, Body::from_stream(stream));
            // Keep the full length in the head, so the client expects more than it gets.
            cut.headers_mut().insert(
                axum::http::header::CONTENT_LENGTH,
                bytes.len().to_string().parse().expect("length"),
            );
            cut
        }
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            next.run(req).await
        }
    }
}

fn error(code: ErrorCode, message: &str) -> Response {
    (
        StatusCode::from_u16(code.http_status()).expect("status"),
        axum::Json(ErrorBody {
            error: ErrorDetail::new(code, message),
        }),
    )
        .into_response()
}
