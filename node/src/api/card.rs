//! The citizen's printable card of a licence this node issued, for the department's own
//! officers: `GET /v1/licences/{id}/card.svg | card.html | card.png`, with the same
//! authorisation as `qr.png`. The card is built from the credential in the node's private
//! `credentials` tree by `huren_render::card`, after checking that the ledger still has the
//! licence active and that it has not expired: an officer never prints a card a service
//! window would refuse.
//!
//! The PNG needs fonts. The installed fonts are scanned once, on the first PNG, and the
//! few files the card uses are kept in memory for the life of the process (about 45 MB
//! with Noto Sans CJK, 5 MB with WenQuanYi Micro Hei), so that rendering reads no file.

use crate::now_secs;
use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use huren_core::validate::LicenceStatus;
use huren_core::verify::rfc3339;
use huren_core::{ChainView, LicenceId};
use huren_render::card::{self, fontdb, Card, CardError};

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

/// Authorises, finds the credential and checks the licence may have a card.
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
    let refuse =
        |code, why: String| ApiError::new(code, format!("{id} {why}; no card is made for it"));
    match ledger.status {
        LicenceStatus::Active => {}
        LicenceStatus::Suspended(r) => {
            return Err(refuse(
                ErrorCode::LicenceSuspended,
                format!("is suspended ({r:?})"),
            ))
        }
        LicenceStatus::Revoked(r) => {
            return Err(refuse(
                ErrorCode::LicenceRevoked,
                format!("is revoked ({r:?})"),
            ))
        }
    }
    if now_secs() >= ledger.valid_until {
        return Err(refuse(
            ErrorCode::LicenceExpired,
            format!("expired at {}", rfc3339(ledger.valid_until)),
        ));
    }
    let text = huren_core::credential::cose_to_qr(&cose);
    let card = Card::new(&state.net, &text).map_err(|e| match e {
        CardError::QrTooDense { .. } => ApiError::new(ErrorCode::CardQrTooDense, e.to_string()),
        // This node signed the credential itself: failing to verify it is a fault here.
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

/// The fonts for card PNGs, loaded on first use and kept for the life of the process.
fn fonts() -> &'static fontdb::Database {
    static FONTS: OnceLock<fontdb::Database> = OnceLock::new();
    FONTS.get_or_init(|| {
        let mut scan = fontdb::Database::new();
        scan.load_system_fonts();
        let choice = card::choose_fonts(&scan);
        let mut db = fontdb::Database::new();
        for path in &choice.files {
            match read_font(path) {
                Ok(bytes) => db.load_font_data(bytes),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "font for licence cards not loaded"),
            }
        }
        match &choice.cjk_family {
            Some(family) => tracing::info!(%family, files = choice.files.len(), "fonts for licence cards loaded"),
            None => tracing::warn!("licence card PNGs: {}", card::MISSING_CJK_FONT),
        }
        db
    })
}

/// Reads a font file of at most `card::FONT_FILE_BYTES_MAX` bytes.
fn read_font(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(card::FONT_FILE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > card::FONT_FILE_BYTES_MAX {
        return Err(std::io::Error::other(format!(
            "larger than {} bytes",
            card::FONT_FILE_BYTES_MAX
        )));
    }
    Ok(bytes)
}
