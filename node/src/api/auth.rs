//! Bearer tokens of the department's officers: stored as SHA-256 hashes in the config,
//! compared in constant time, each with an officer id and a scope.

use axum::http::HeaderMap;
use huren_api::ErrorCode;
use huren_core::OfficerId;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::error::ApiError;
use super::AppState;
use crate::config::Scope;

#[derive(Debug, Clone)]
pub struct Token {
    pub sha256: [u8; 32],
    pub officer: OfficerId,
    pub scope: Scope,
}

/// A new random token (shown once) and its SHA-256 in hex (stored in the config).
pub fn generate_token() -> (String, String) {
    let mut raw = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    let token = format!("hrt_{}", hex::encode(raw));
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    (token, hash)
}

/// The configured token the request presents, or 401.
fn token_of<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<&'a Token, ApiError> {
    let unauthorized = |m: &str| ApiError::new(ErrorCode::Unauthorized, m);
    let mut values = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let value = values
        .next()
        .ok_or_else(|| unauthorized("an officer's bearer token is required"))?;
    // Two credentials make the officer ambiguous: a proxy that logs the last one and a
    // node that acts on the first would name different people for one action.
    if values.next().is_some() {
        return Err(unauthorized("give one Authorization header, not several"));
    }
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("Authorization must be 'Bearer <token>'"))?;
    let presented: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
    // Compare against every token so the time taken does not reveal which one matched.
    let mut found: Option<&Token> = None;
    for t in state.tokens.iter() {
        if bool::from(t.sha256.ct_eq(&presented)) {
            found = Some(t);
        }
    }
    found.ok_or_else(|| unauthorized("the token is not valid on this node"))
}

/// Checks the bearer token and its scope; returns the officer who acts.
pub fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    needed: Scope,
) -> Result<OfficerId, ApiError> {
    let t = token_of(state, headers)?;
    if state.department.is_none() || state.producer.is_none() {
        return Err(ApiError::new(
            ErrorCode::ObserverNode,
            "this is an observer node; it issues for no department",
        ));
    }
    if !t.scope.allows(needed) {
        return Err(ApiError::new(
            ErrorCode::InsufficientScope,
            format!(
                "officer {} has scope {:?}, this needs {:?}",
                t.officer, t.scope, needed
            ),
        ));
    }
    Ok(t.officer.clone())
}

/// Middleware for department routes: a request without a token this node knows is
/// refused with 401 before its body is read. Scopes are checked by the handler.
pub async fn require_token(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Err(e) = token_of(&state, req.headers()) {
        return e.into_response();
    }
    next.run(req).await
}

/// Adds the bearer scheme to the OpenAPI document.
pub struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
