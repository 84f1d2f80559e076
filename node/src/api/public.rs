//! Public routes: verification, licence status, chain heads, evidence, peers, health,
//! metrics. Nothing here returns personal data that the caller did not present.

use crate::now_secs;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use huren_core::verify::{
    rfc3339, undecodable, verify_with, LedgerFacts, Report, SignatureCheck, VerifyContext,
};
use huren_core::{ChainView, LicenceId, UnverifiedCredential};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ErrorBody};
use super::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    pub licence_id: String,
    pub department: String,
    pub licence_type: String,
    /// `{"status": "active"}`, `{"status": "suspended", "reason": "penalty"}`, `{"status": "revoked", "reason": "withdrawn"}`.
    #[schema(value_type = Object)]
    pub status: huren_core::LicenceStatus,
    pub valid_from: String,
    pub valid_until: String,
    /// SHA-256 of the credential the holder carries.
    pub commitment: String,
    pub issued_height: u64,
    pub updated_height: u64,
}

#[utoipa::path(get, path = "/v1/licences/{id}", tag = "public",
    params(("id" = String, Path, description = "Licence id, e.g. gd.transport:mvdl:00000001")),
    responses((status = 200, body = StatusResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StatusResponse>, ApiError> {
    let id = LicenceId::parse(&id)
        .map_err(|e| ApiError::bad_request("bad_licence_id", e.to_string()))?;
    let s = state.store.licence(&id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "licence_not_found",
            format!("{id} is not on the ledger at this node"),
        )
    })?;
    Ok(Json(StatusResponse {
        department: id.department().to_string(),
        licence_type: id.licence_type().to_string(),
        licence_id: id.to_string(),
        status: s.status,
        valid_from: rfc3339(s.valid_from),
        valid_until: rfc3339(s.valid_until),
        commitment: s.commitment.to_hex(),
        issued_height: s.issued_height,
        updated_height: s.updated_height,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The QR text, `HZ1:…` (surrounding whitespace is ignored).
    pub qr: String,
}

/// Verifies QR text against genesis and this node's ledger.
pub async fn verify_text(state: &AppState, text: &str) -> Report {
    let ctx = VerifyContext {
        now: now_secs(),
        region: Some(state.region.clone()),
    };
    let report = match UnverifiedCredential::from_qr(text) {
        Err(e) => undecodable(&e.to_string(), &ctx),
        Ok(un) => {
            let id = un.credential.licence_id.clone();
            let licence = state.store.licence(&id);
            // Fast path: the ledger vouches for these bytes. Otherwise the signature is
            // checked, batched with the other requests waiting for one.
            let check = if licence.is_some_and(|s| s.commitment == un.commitment) {
                state.metrics.verify_fast_path.inc();
                SignatureCheck::Strict
            } else {
                let input = state
                    .net
                    .department_by_key(&un.kid)
                    .and_then(|d| un.signature_input(&d.issuer_key));
                match input {
                    Some(input) => {
                        let ok = state.signatures.check(&input).await;
                        SignatureCheck::Checked(Box::new(input), ok)
                    }
                    None => SignatureCheck::Strict,
                }
            };
            let facts = LedgerFacts::Online {
                licence,
                issuer_head: state.store.head(id.department()),
                equivocation_height: state.store.equivocation_height(id.department()),
                stale: state.stale.load(std::sync::atomic::Ordering::Relaxed),
            };
            verify_with(&state.net, un, facts, &ctx, check)
        }
    };
    state
        .metrics
        .verify_verdicts
        .inc(report.reason.unwrap_or("valid"));
    report
}

/// A multipart body that could not be read, in the API's error shape.
fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        "body_too_large"
    } else {
        "malformed_body"
    };
    ApiError::new(e.status(), code, e.body_text())
}

#[utoipa::path(post, path = "/v1/verify", tag = "public",
    request_body(content = VerifyBody, description = "JSON `{\"qr\": \"HZ1:…\"}`, or multipart/form-data with a part named `image` holding a PNG or JPEG photo of the QR"),
    responses(
        (status = 200, description = "The verdict report: verdict (valid | invalid | undetermined), reason, message, message_zh, licence (issuer, region, type, holder fields), ledger position. See docs/api.md.", content_type = "application/json"),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn verify_qr(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<Report>, ApiError> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let text = if is_multipart {
        let mut mp = Multipart::from_request(req, &state)
            .await
            .map_err(|e| ApiError::new(e.status(), "malformed_body", e.body_text()))?;
        let mut image = None;
        while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
            if field.name() == Some("image") {
                let bytes = field.bytes().await.map_err(multipart_error)?;
                image = Some(bytes);
                break;
            }
        }
        let image = image.ok_or_else(|| {
            ApiError::bad_request("missing_image", "multipart body needs a part named 'image'")
        })?;
        // Image decoding is CPU-heavy; keep it off the async workers.
        let decoded = tokio::task::spawn_blocking(move || huren_core::qr::decode_image(&image))
            .await
            .map_err(ApiError::internal)?;
        match decoded {
            Ok(t) => t,
            Err(e) => {
                let ctx = VerifyContext {
                    now: now_secs(),
                    region: Some(state.region.clone()),
                };
                return Ok(Json(undecodable(&e.to_string(), &ctx)));
            }
        }
    } else {
        let ApiJson(body) = ApiJson::<VerifyBody>::from_request(req, &state).await?;
        body.qr
    };
    Ok(Json(verify_text(&state, &text).await))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChainHead {
    pub department: String,
    pub region: String,
    pub height: u64,
    /// Empty before the department's first block.
    pub hash: String,
    pub time: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChainsResponse {
    pub genesis: String,
    pub chains: Vec<ChainHead>,
}

#[utoipa::path(get, path = "/v1/chains", tag = "public", responses((status = 200, body = ChainsResponse)))]
pub async fn chains(State(state): State<AppState>) -> Result<Json<ChainsResponse>, ApiError> {
    let chains = state
        .net
        .departments()
        .iter()
        .map(|d| {
            let head = state.store.head(&d.id);
            ChainHead {
                department: d.id.to_string(),
                region: d.region.to_string(),
                height: head.map_or(0, |h| h.height),
                hash: head.map(|h| h.hash.to_hex()).unwrap_or_default(),
                time: head.map(|h| rfc3339((h.time_ms / 1000) as i64)),
            }
        })
        .collect();
    Ok(Json(ChainsResponse {
        genesis: state.net.hash().to_hex(),
        chains,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceItem {
    pub department: String,
    pub height: u64,
    pub first_hash: String,
    pub second_hash: String,
    /// Both blocks, canonical CBOR in hex: anyone can check the two signatures.
    pub first_block: String,
    pub second_block: String,
}

#[utoipa::path(get, path = "/v1/evidence", tag = "public", responses((status = 200, body = [EvidenceItem])))]
pub async fn evidence(State(state): State<AppState>) -> Result<Json<Vec<EvidenceItem>>, ApiError> {
    let items = state
        .store
        .evidence(&state.net)
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|e| EvidenceItem {
            department: e.department.to_string(),
            height: e.height,
            first_hash: e.first.hash().to_hex(),
            second_hash: e.second.hash().to_hex(),
            first_block: hex::encode(e.first.encode()),
            second_block: hex::encode(e.second.encode()),
        })
        .collect();
    Ok(Json(items))
}

#[utoipa::path(get, path = "/v1/peers", tag = "public", responses((status = 200, body = [crate::net::PeerInfo])))]
pub async fn peers(State(state): State<AppState>) -> Json<Vec<crate::net::PeerInfo>> {
    match &state.network {
        Some(n) => Json(n.peers().await),
        None => Json(Vec::new()),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub network: String,
    pub department: Option<String>,
    pub region: String,
    pub licences: usize,
}

#[utoipa::path(get, path = "/healthz", tag = "public", responses((status = 200, body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        network: state.net.document().network.clone(),
        department: state.department.as_ref().map(ToString::to_string),
        region: state.region.to_string(),
        licences: state.store.licence_count(),
    })
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    state
        .metrics
        .licences
        .set(state.store.licence_count() as u64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
