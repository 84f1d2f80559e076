//! The HTTP API.
//!
//! API Boundary: only this module knows HTTP and JSON. Handlers translate requests into
//! calls on the store and the producer handle, and their outcomes into JSON or
//! `ApiError`. Department routes need a bearer token of this node's own officers; public
//! routes (verify, status, chains) are rate-limited per client address and carry no
//! personal data except what the presented credential itself discloses.

mod auth;
mod card;
mod department;
pub mod error;
mod public;
mod ratelimit;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use huren_core::{DepartmentId, Network, RegionCode};
use utoipa::OpenApi;

use crate::config::Limits;
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
    pub net: Arc<Network>,
    pub store: Arc<Store>,
    /// `None` on an observer node: it issues nothing.
    pub producer: Option<ProducerHandle>,
    pub department: Option<DepartmentId>,
    /// The verifying region for the recognition policy.
    pub region: RegionCode,
    pub tokens: Vec<Token>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    pub limiter: ratelimit::RateLimiter,
    /// Set by the network layer when this node has lost touch with the network.
    pub stale: Arc<AtomicBool>,
    /// The network actor, when networking runs.
    pub network: Option<NetHandle>,
    /// Checks credential signatures for the verify API, in batches.
    pub signatures: SignatureChecker,
}

/// What the node assembles for its API.
pub struct Parts {
    pub net: Arc<Network>,
    pub store: Arc<Store>,
    /// `None` on an observer node.
    pub producer: Option<ProducerHandle>,
    pub department: Option<DepartmentId>,
    pub region: RegionCode,
    pub tokens: Vec<Token>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    pub network: Option<NetHandle>,
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
        Ok(Self(Arc::new(Shared {
            net: p.net,
            store: p.store,
            producer: p.producer,
            department: p.department,
            region: p.region,
            tokens: p.tokens,
            limits: p.limits,
            metrics: p.metrics,
            limiter,
            stale: Arc::new(AtomicBool::new(false)),
            network: p.network,
            signatures,
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
        department::qr_png,
        card::card_svg,
        card::card_html,
        card::card_png,
        public::status,
        public::verify_qr,
        public::chains,
        public::evidence,
        public::peers,
        public::healthz,
    ),
    modifiers(&BearerScheme),
    tags((name = "department", description = "The department's own officers (bearer token)"),
         (name = "public", description = "Anyone: rate-limited, no personal data"))
)]
pub struct ApiDoc;

pub fn router(state: AppState) -> Router {
    // The state is one Arc: a clone to read the limits from while the router is built.
    let shared = state.clone();
    let limits = &shared.limits;
    let department = Router::new()
        .route("/v1/licences", post(department::issue))
        .route("/v1/licences:batch", post(department::issue_batch))
        .route("/v1/licences/{id}/suspend", post(department::suspend))
        .route("/v1/licences/{id}/reinstate", post(department::reinstate))
        .route("/v1/licences/{id}/revoke", post(department::revoke))
        .route("/v1/licences/{id}/qr.png", get(department::qr_png))
        .route("/v1/licences/{id}/card.svg", get(card::card_svg))
        .route("/v1/licences/{id}/card.html", get(card::card_html))
        .route("/v1/licences/{id}/card.png", get(card::card_png))
        .layer(DefaultBodyLimit::max(limits.body_bytes_max))
        // Refuse requests without a valid token before their bodies are read.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let public = Router::new()
        .route("/v1/licences/{id}", get(public::status))
        .route("/v1/verify", post(public::verify_qr))
        .route("/v1/chains", get(public::chains))
        .route("/v1/evidence", get(public::evidence))
        .route("/v1/peers", get(public::peers))
        .layer(DefaultBodyLimit::max(limits.image_bytes_max + 64 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::middleware,
        ));
    Router::new()
        .merge(department)
        .merge(public)
        .route("/healthz", get(public::healthz))
        .route("/", get(crate::web::index))
        .route("/assets/{file}", get(crate::web::asset))
        .route("/metrics", get(public::metrics))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(ApiDoc::openapi()) }),
        )
        .fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see /openapi.json",
            )
        })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept that method; see /openapi.json",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_route,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
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
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

#[cfg(test)]
mod card_tests;
#[cfg(test)]
pub(crate) mod tests;
