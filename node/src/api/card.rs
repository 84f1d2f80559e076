//! The citizen's printable card of a licence this node issued, for the department's own
//! officers: `GET /v1/licences/{id}/card.svg | card.html | card.png`, with the same
//! authorisation as `qr.png`. The credential in the node's private `credentials` tree is
//! verified by `huren_core::verify` against this node's ledger, as a service window would,
//! and the card is drawn by `huren_render::card` from the genuine credential that
//! verification hands out: an officer never prints a card a window would refuse (revoked,
//! suspended, expired), nor one for bytes the ledger does not vouch for.
//!
//! The PNG needs fonts. The installed fonts are scanned once, on the first PNG, and the
//! few files the card uses are kept in memory for the life of the process (about 45 MB
//! with Noto Sans CJK, 5 MB with WenQuanYi Micro Hei), so that rendering reads no file.

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use huren_core::credential::{cose_to_qr, UnverifiedCredential};
use huren_core::verify::{self, InvalidReason, LedgerFacts, VerifyContext};
use huren_core::{ChainView, LicenceId, Verdict};
use huren_render::card::{self, Card, CardError};
use huren_render::fonts::{self, fontdb, Fonts};

use super::auth::authorize;
use super::department::own_licence;
use super::error::ApiError;
use super::AppState;
use crate::config::Scope;
use huren_api::{ErrorBody, ErrorCode};

/// The card is personal data: no cache may keep it, and a browser that opens the SVG or
/// the HTML runs nothing and fetches nothing (the text is escaped anyway).
const NO_STORE: &str = "no-store";
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

#[utoipa::path(get, path = "/v1/licences/{id}/card.svg", tag = "department",
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The printable licence card, 85.6 × 54 mm (ID-1)", content_type = "image/svg+xml"),
        (status = 400, description = "`bad_licence_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or unknown token", body = ErrorBody),
        (status = 403, description = "`other_department`, `insufficient_scope`, `observer_node`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`: not issued by this node", body = ErrorBody),
        (status = 409, description = "`licence_revoked`, `licence_suspended`, `licence_expired`: no card", body = ErrorBody),
        (status = 422, description = "`card_qr_too_dense`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody)))]
pub async fn card_svg(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (id, card) = load(&state, &headers, &id)?;
    Ok(respond(
        &id,
        "svg",
        "image/svg+xml; charset=utf-8",
        card.svg(),
    ))
}

#[utoipa::path(get, path = "/v1/licences/{id}/card.html", tag = "department",
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An HTML page that prints exactly the card (@page 85.6 × 54 mm)", content_type = "text/html"),
        (status = 400, description = "`bad_licence_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or unknown token", body = ErrorBody),
        (status = 403, description = "`other_department`, `insufficient_scope`, `observer_node`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`: not issued by this node", body = ErrorBody),
        (status = 409, description = "`licence_revoked`, `licence_suspended`, `licence_expired`: no card", body = ErrorBody),
        (status = 422, description = "`card_qr_too_dense`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody)))]
pub async fn card_html(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (id, card) = load(&state, &headers, &id)?;
    Ok(respond(
        &id,
        "html",
        "text/html; charset=utf-8",
        card.html(),
    ))
}

#[utoipa::path(get, path = "/v1/licences/{id}/card.png", tag = "department",
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The card as a 300 dpi PNG, 1011 × 638 px", content_type = "image/png"),
        (status = 400, description = "`bad_licence_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or unknown token", body = ErrorBody),
        (status = 403, description = "`other_department`, `insufficient_scope`, `observer_node`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`: not issued by this node", body = ErrorBody),
        (status = 409, description = "`licence_revoked`, `licence_suspended`, `licence_expired`: no card", body = ErrorBody),
        (status = 422, description = "`card_qr_too_dense`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody)))]
pub async fn card_png(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (id, card) = load(&state, &headers, &id)?;
    // Scanning fonts (first time only) and rendering take tens of milliseconds of CPU and
    // disk: off the async workers.
    let png = tokio::task::spawn_blocking(move || card::png(&card.svg(), fonts()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(respond(&id, "png", "image/png", png))
}

/// Authorises, finds the credential, verifies it against the ledger and makes its card.
fn load(state: &AppState, headers: &HeaderMap, id: &str) -> Result<(LicenceId, Card), ApiError> {
    authorize(state, headers, Scope::Issue)?;
    let id = own_licence(state, id)?;
    let not_found = || {
        ApiError::new(
            ErrorCode::LicenceNotFound,
            format!("{id} was not issued by this node"),
        )
    };
    let cose = state
        .store
        .credential(&id)
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    let ledger = state.store.licence(&id).ok_or_else(not_found)?;
    // This node signed and stored the credential itself, and still it is verified: the
    // card is made only from what core accepts, and the verdict decides, as at a window.
    let un = UnverifiedCredential::from_cose(&cose)
        .map_err(|e| ApiError::internal(format!("stored credential of {id}: {e}")))?;
    let department = id.department();
    let facts = LedgerFacts::Online {
        licence: Some(ledger),
        issuer_head: state.store.head(department),
        equivocation_height: state.store.equivocation_height(department),
        // This node writes this chain: nothing about its own licences is fresher
        // anywhere else, so not having heard from peers lately does not matter here.
        stale: None,
        behind: None,
        lineage: Default::default(),
    };
    let ctx = VerifyContext {
        now: state.clock.now_secs(),
        // Recognition is the verifying window's business, not the card's.
        region: None,
    };
    let net = state.net();
    let decision = verify::decide(&net, un, facts, &ctx);
    let refuse = |code| {
        let (verdict, _) = verify::labels(decision.verdict);
        ApiError::new(
            code,
            format!(
                "{id}: {verdict} ({}); no card is made for it",
                decision.detail
            ),
        )
    };
    match decision.verdict {
        // Issued to start later: the card shows the date it starts.
        Verdict::Valid | Verdict::Invalid(InvalidReason::NotYetValid) => {}
        Verdict::Invalid(InvalidReason::Suspended) => {
            return Err(refuse(ErrorCode::LicenceSuspended))
        }
        Verdict::Invalid(InvalidReason::Revoked) => return Err(refuse(ErrorCode::LicenceRevoked)),
        Verdict::Invalid(InvalidReason::Expired) => return Err(refuse(ErrorCode::LicenceExpired)),
        // The stored credential is this node's own and on its own chain: any other
        // verdict (another commitment, a fork) is a fault here.
        other => {
            return Err(ApiError::internal(format!(
                "card for {id}: verified {}: {}",
                other.label(),
                decision.detail
            )))
        }
    }
    let genuine = decision.into_genuine(&net).ok_or_else(|| {
        ApiError::internal(format!("card for {id}: verified, but not proven genuine"))
    })?;
    let card = Card::new(&genuine, &cose_to_qr(&cose)).map_err(|e| match e {
        CardError::QrTooDense { .. } => ApiError::new(ErrorCode::CardQrTooDense, e.to_string()),
        other => ApiError::internal(format!("card for {id}: {other}")),
    })?;
    Ok((id, card))
}

fn respond(
    id: &LicenceId,
    ext: &str,
    content_type: &'static str,
    body: impl IntoResponse,
) -> Response {
    // Licence ids are `[a-z0-9._:]`; a colon is not allowed in Windows file names.
    let name = format!("card-{}.{ext}", id.to_string().replace(':', "_"));
    let disposition = HeaderValue::from_str(&format!("inline; filename=\"{name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("inline"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// The fonts for card PNGs, loaded on first use (by the loader the client uses too) and
/// kept for the life of the process.
fn fonts() -> &'static fontdb::Database {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let loaded = fonts::load(&[]);
            for e in loaded.skipped() {
                tracing::warn!(error = %e, "font for licence cards not loaded");
            }
            match loaded.cjk_family() {
                Some(family) => tracing::info!(
                    %family,
                    files = loaded.loaded().len(),
                    "fonts for licence cards loaded"
                ),
                None => tracing::warn!("licence card PNGs: {}", fonts::MISSING_CJK_FONT),
            }
            loaded
        })
        .database()
}
