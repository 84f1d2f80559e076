//! The HTTP API.
//!
//! API Boundary: only this module knows HTTP and JSON. Handlers translate requests into
//! calls on the store and the producer handle, and their outcomes into JSON or
//! `ApiError`. Department routes need a bearer token of this node's own officers; public
//! routes (verify, status, chains) are rate-limited per client address and carry no
//! personal data except what the presented credential itself discloses.

mod auth;
mod bodies;
mod bundle;
mod card;
mod checkpoints;
mod department;
pub mod error;
mod governance;
mod images;
mod lineage;
mod public;
mod ratelimit;
mod serve;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::{on, MethodFilter};
use axum::Router;
use huren_core::{DepartmentId, Network, RegionCode};
use utoipa::OpenApi;

use crate::config::Limits;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::net::NetHandle;
use crate::producer::ProducerHandle;
use crate::sigcheck::SignatureChecker;
use crate::store::Store;

use auth::BearerScheme;
pub use auth::{generate_token, Token};

/// Everything a handler may touch. Axum clones the state for every request and every
/// middleware, so it is one `Arc`: one reference count, not a dozen.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The node's parts, shared by every handler.
pub struct Shared {
    pub store: Arc<Store>,
    /// For equivocation evidence, which only the ledger can prove again.
    pub ledger: Arc<Ledger>,
    /// `None` on an observer node: it issues nothing.
    pub producer: Option<ProducerHandle>,
    pub department: Option<DepartmentId>,
    /// The verifying region for the recognition policy.
    pub region: RegionCode,
    pub tokens: Vec<Token>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    pub limiter: ratelimit::RateLimiter,
    /// The node's one clock.
    pub clock: crate::clock::SharedClock,
    /// The network actor, when networking runs.
    pub network: Option<NetHandle>,
    /// Checkpoints held: what verdicts' "as of" and bundles rest on.
    pub checkpoints: Arc<crate::checkpoints::Checkpoints>,
    /// Checks credential signatures for the verify API, in batches.
    pub signatures: SignatureChecker,
    /// Bounds the photos decoded at once.
    pub(crate) images: images::ImageGate,
    /// The credentials a governance export vouches for, computed once per state
    /// (`governance::vouched`: a scan of the compromised departments' chains).
    pub(crate) vouched: governance::VouchedCache,
}

/// What the node assembles for its API.
pub struct Parts {
    pub store: Arc<Store>,
    pub ledger: Arc<Ledger>,
    /// `None` on an observer node.
    pub producer: Option<ProducerHandle>,
    pub department: Option<DepartmentId>,
    pub region: RegionCode,
    pub tokens: Vec<Token>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    pub network: Option<NetHandle>,
    pub clock: crate::clock::SharedClock,
    pub checkpoints: Arc<crate::checkpoints::Checkpoints>,
}

impl Shared {
    /// The network in force now (genesis and the governance records held): read per
    /// request, so a record applies to the next request without a restart.
    pub fn net(&self) -> Arc<Network> {
        self.ledger.network()
    }
}

impl AppState {
    /// The API's state, with its rate limiter and signature checker threads started.
    pub fn new(p: Parts) -> std::io::Result<Self> {
        let limiter = ratelimit::RateLimiter::new(
            p.limits.public_requests_per_minute,
            p.limits.rate_clients_max,
        );
        // Half the cores: the HTTP and decoding work of the same requests needs the rest,
        // and fewer checker threads make bigger (cheaper per signature) batches. On the
        // 2-core benchmark machine one thread gave 32k signature-path verifications/s, two
        // gave 29k.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (cores / 2).max(1);
        let signatures = SignatureChecker::spawn(threads, p.metrics.clone())?;
        let images = images::ImageGate::new(
            p.limits.image_decodes_max,
            p.limits.image_queue_max,
            std::time::Duration::from_millis(p.limits.image_queue_wait_ms),
        );
        Ok(Self(Arc::new(Shared {
            store: p.store,
            ledger: p.ledger,
            producer: p.producer,
            department: p.department,
            region: p.region,
            tokens: p.tokens,
            limits: p.limits,
            metrics: p.metrics,
            limiter,
            clock: p.clock,
            network: p.network,
            checkpoints: p.checkpoints,
            signatures,
            images,
            vouched: governance::VouchedCache::default(),
        })))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Huren node API", description = "Issue, manage and verify electronic licences (电子证照) on a Huren department node."),
    paths(
        department::issue,
        department::issue_batch,
        department::suspend,
        department::reinstate,
        department::revoke,
        department::renew,
        department::renew_batch,
        department::reissue,
        department::amend,
        department::transfer,
        department::accept_transfer,
        department::annul,
        department::qr_png,
        card::card_svg,
        card::card_html,
        card::card_png,
        public::status,
        public::history,
        public::verify_qr,
        public::chains,
        public::evidence,
        checkpoints::checkpoints,
        bundle::bundle,
        public::peers,
        governance::network,
        governance::export,
        governance::submit,
        public::healthz,
        public::metrics,
        openapi_json,
        crate::web::index,
        crate::web::asset,
    ),
    modifiers(&BearerScheme),
    tags((name = "department", description = "The department's own officers (bearer token)"),
         (name = "public", description = "Anyone: rate-limited, no personal data"),
         (name = "page", description = "The service-window page (窗口核验页) and its assets"))
)]
pub struct ApiDoc;

/// Every route `router()` registers, as (method, path).
///
/// Axum's `Router` cannot list its routes, so without this table nothing could show that
/// `ApiDoc` names every route the node serves: a route added to `router()` but not to the
/// document would go unnoticed. `router()` registers every route through
/// `ListedRoutes::listed`, which refuses (in debug builds, so in every test that builds
/// a router) a route that is not here, and `openapi_tests` checks that this table and the
/// document's paths are the same set and that each of them reaches a handler.
/// Public so that the multi-process abuse suite (tests/tests/abuse.rs) can try every route.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/licences"),
    ("POST", "/v1/licences:batch"),
    ("POST", "/v1/licences/{id}/suspend"),
    ("POST", "/v1/licences/{id}/reinstate"),
    ("POST", "/v1/licences/{id}/revoke"),
    ("POST", "/v1/licences/{id}/renew"),
    ("POST", "/v1/licences:renew"),
    ("POST", "/v1/licences/{id}/reissue"),
    ("POST", "/v1/licences/{id}/amend"),
    ("POST", "/v1/licences/{id}/transfer"),
    ("POST", "/v1/transfers"),
    ("POST", "/v1/licences/{id}/annul"),
    ("GET", "/v1/licences/{id}/qr.png"),
    ("GET", "/v1/licences/{id}/card.svg"),
    ("GET", "/v1/licences/{id}/card.html"),
    ("GET", "/v1/licences/{id}/card.png"),
    ("GET", "/v1/licences/{id}"),
    ("GET", "/v1/licences/{id}/history"),
    ("POST", "/v1/verify"),
    ("GET", "/v1/chains"),
    ("GET", "/v1/evidence"),
    ("GET", "/v1/checkpoints"),
    ("GET", "/v1/bundle"),
    ("GET", "/v1/peers"),
    ("GET", "/v1/network"),
    ("GET", "/v1/governance"),
    ("POST", "/v1/governance"),
    ("GET", "/healthz"),
    ("GET", "/"),
    ("GET", "/assets/{file}"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

/// Route registration that keeps `ROUTES` true: the only way `router()` adds a route.
trait ListedRoutes {
    /// Serves `method path` with `handler`; panics in debug builds when `(method, path)`
    /// is not in `ROUTES`. The method filter is derived from the same string that is
    /// checked, so the table cannot name one method while the router serves another.
    fn listed<H, T>(self, method: &'static str, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static;
}

impl ListedRoutes for Router<AppState> {
    fn listed<H, T>(self, method: &'static str, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        debug_assert!(
            ROUTES.contains(&(method, path)),
            "{method} {path} is served but missing from api::ROUTES; \
             add it there and its handler to ApiDoc"
        );
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            other => unreachable!("router() registers no {other} route; extend this match"),
        };
        self.route(path, on(filter, handler))
    }
}

pub fn router(state: AppState) -> Router {
    // The state is one Arc: a clone to read the limits from while the router is built.
    let shared = state.clone();
    let limits = &shared.limits;
    let body_read = std::time::Duration::from_millis(limits.http_body_read_ms_max);
    let department_body_max = limits.body_bytes_max;
    // A photo, plus room for the multipart framing around it.
    let public_body_max = limits.image_bytes_max + 64 * 1024;
    let department = Router::new()
        .listed("POST", "/v1/licences", department::issue)
        .listed("POST", "/v1/licences:batch", department::issue_batch)
        .listed("POST", "/v1/licences/{id}/suspend", department::suspend)
        .listed("POST", "/v1/licences/{id}/reinstate", department::reinstate)
        .listed("POST", "/v1/licences/{id}/revoke", department::revoke)
        .listed("POST", "/v1/licences/{id}/renew", department::renew)
        .listed("POST", "/v1/licences:renew", department::renew_batch)
        .listed("POST", "/v1/licences/{id}/reissue", department::reissue)
        .listed("POST", "/v1/licences/{id}/amend", department::amend)
        .listed("POST", "/v1/licences/{id}/transfer", department::transfer)
        .listed("POST", "/v1/transfers", department::accept_transfer)
        .listed("POST", "/v1/licences/{id}/annul", department::annul)
        .listed("GET", "/v1/licences/{id}/qr.png", department::qr_png)
        .listed("GET", "/v1/licences/{id}/card.svg", card::card_svg)
        .listed("GET", "/v1/licences/{id}/card.html", card::card_html)
        .listed("GET", "/v1/licences/{id}/card.png", card::card_png)
        .listed("POST", "/v1/governance", governance::submit)
        .layer(DefaultBodyLimit::max(limits.body_bytes_max))
        .layer(axum::middleware::map_request(move |req| async move {
            bodies::announced_within(req, department_body_max)
        }))
        // Refuse requests without a valid token before their bodies are read.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        // Officers' answers carry personal data (the QR text, its image, the card): no
        // cache may keep them, refusals included.
        .layer(axum::middleware::map_response(no_store));
    let public = Router::new()
        .listed("GET", "/v1/licences/{id}", public::status)
        .listed("GET", "/v1/licences/{id}/history", public::history)
        .listed("POST", "/v1/verify", public::verify_qr)
        .listed("GET", "/v1/chains", public::chains)
        .listed("GET", "/v1/evidence", public::evidence)
        .listed("GET", "/v1/checkpoints", checkpoints::checkpoints)
        .listed("GET", "/v1/bundle", bundle::bundle)
        .listed("GET", "/v1/peers", public::peers)
        .listed("GET", "/v1/network", governance::network)
        .listed("GET", "/v1/governance", governance::export)
        .layer(DefaultBodyLimit::max(public_body_max))
        .layer(axum::middleware::map_request(move |req| async move {
            bodies::announced_within(req, public_body_max)
        }))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::middleware,
        ));
    Router::new()
        .merge(department)
        .merge(public)
        .listed("GET", "/healthz", public::healthz)
        .listed("GET", "/", crate::web::index)
        .listed("GET", "/assets/{file}", crate::web::asset)
        .listed("GET", "/metrics", public::metrics)
        .listed("GET", "/openapi.json", openapi_json)
        .fallback(|| async {
            error::ApiError::new(
                huren_api::ErrorCode::NotFound,
                "no such endpoint; see /openapi.json",
            )
        })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                huren_api::ErrorCode::MethodNotAllowed,
                "this endpoint does not accept that method; see /openapi.json",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_route,
        ))
        .layer(axum::middleware::map_response(nosniff))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        // A body that trickles in is cut off at one deadline for the whole body, rather
        // than holding a connection; an answer given before the body was read closes the
        // connection (api::bodies).
        .layer(axum::middleware::from_fn(move |req, next| {
            bodies::bounded(body_read, req, next)
        }))
        .with_state(state)
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "public",
    responses((status = 200, description = "This document: OpenAPI 3.1, every route the node serves", content_type = "application/json")))]
async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

/// `Cache-Control: no-store` on every department answer.
async fn no_store(mut r: axum::response::Response) -> axum::response::Response {
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

/// `X-Content-Type-Options: nosniff` on every answer: a JSON error or a PNG is never
/// run as a page, whatever a browser would guess from its bytes.
async fn nosniff(mut r: axum::response::Response) -> axum::response::Response {
    r.headers_mut()
        .entry(axum::http::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(axum::http::HeaderValue::from_static("nosniff"));
    r
}

/// Counts requests per matched route (`huren_api_requests_total{route=…}`).
async fn count_route(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    state.metrics.api_requests.inc(&route);
    next.run(req).await
}

/// Serves the API until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve::serve(state, listener, shutdown).await
}

#[cfg(test)]
mod card_tests;
#[cfg(test)]
mod openapi_tests;
#[cfg(test)]
pub(crate) mod tests;
