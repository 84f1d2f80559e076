//! Department routes: issue, bulk import, suspend, reinstate, revoke, the QR of an issued
//! licence. Officers only, own department only. Clients never set server-owned fields
//! (licence id, serial, issue time, officer): the bodies refuse unknown fields.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use huren_core::validate::{BlockError, LicenceStatus};
use huren_core::verify::{parse_rfc3339, rfc3339};
use huren_core::{LicenceId, LicenceType, OfficerId, RevokeReason, SuspendReason};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::authorize;
use super::error::{ApiError, ApiJson, ErrorBody, ErrorDetail};
use super::AppState;
use crate::config::Scope;
use crate::producer::{Action, IssueRequest, Job, ProduceError, ProducerHandle, Receipt};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    /// Licence type code from genesis, e.g. `mvdl`.
    pub licence_type: String,
    /// Holder fields; genesis names the required ones for each type.
    pub holder: BTreeMap<String, String>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Validity in days from `valid_from` (default: the type's maximum).
    pub valid_days: Option<u32>,
    /// RFC 3339; default now. For importing licences issued before.
    pub valid_from: Option<String>,
    /// RFC 3339; overrides `valid_days`.
    pub valid_until: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    pub licences: Vec<IssueBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockRefBody {
    pub department: String,
    pub height: u64,
    pub hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssueResponse {
    pub licence_id: String,
    /// The credential as QR text (`HZ1:…`): give it to the holder.
    pub qr: String,
    /// Path of the QR as PNG (department token required).
    pub png: String,
    /// SHA-256 of the credential, as recorded on the ledger.
    pub commitment: String,
    pub valid_from: String,
    pub valid_until: String,
    pub block: BlockRefBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    pub index: usize,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licence_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchItem>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendBody {
    /// `penalty`, `investigation` or `other`.
    #[schema(value_type = String)]
    pub reason: SuspendReason,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReinstateBody {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// `withdrawn` (撤销), `cancelled` (注销) or `penalty` (吊销). Final.
    #[schema(value_type = String)]
    pub reason: RevokeReason,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LifecycleResponse {
    pub licence_id: String,
    /// `{"status": "active"}`, `{"status": "suspended", "reason": …}` or `{"status": "revoked", "reason": …}`.
    #[schema(value_type = Object)]
    pub status: LicenceStatus,
    pub block: BlockRefBody,
}

fn producer(state: &AppState) -> Result<&ProducerHandle, ApiError> {
    state.producer.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "observer_node",
            "this is an observer node; it issues for no department",
        )
    })
}

/// Maps a producer refusal to a status and code clients can act on.
fn produce_error(e: ProduceError) -> ApiError {
    match e {
        ProduceError::Refused(b) => {
            let status = match &b {
                BlockError::UnknownLicence { .. } => StatusCode::NOT_FOUND,
                BlockError::TypeNotGranted { .. } | BlockError::ForeignLicence { .. } => {
                    StatusCode::FORBIDDEN
                }
                BlockError::BadValidity { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::CONFLICT,
            };
            let code = match &b {
                BlockError::UnknownLicence { .. } => "licence_not_found",
                other => other.code(),
            };
            ApiError::new(status, code, b.to_string())
        }
        ProduceError::Invalid(m) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_licence", m)
        }
        ProduceError::Unavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
        ProduceError::CatchingUp { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "catching_up",
            e.to_string(),
        ),
        ProduceError::Storage(m) => ApiError::internal(m),
    }
}

fn block_ref(r: &Receipt) -> BlockRefBody {
    BlockRefBody {
        department: r.block.department.to_string(),
        height: r.block.height,
        hash: r.block.hash.to_hex(),
    }
}

fn issue_request(body: IssueBody, officer: &OfficerId) -> Result<IssueRequest, ApiError> {
    let licence_type = LicenceType::parse(&body.licence_type)
        .map_err(|e| ApiError::bad_request("bad_licence_type", e.to_string()))?;
    let time = |s: Option<String>, name: &str| -> Result<Option<i64>, ApiError> {
        s.map(|s| {
            parse_rfc3339(&s).ok_or_else(|| {
                ApiError::bad_request(
                    "bad_time",
                    format!("{name} must be RFC 3339, e.g. 2026-01-31T00:00:00Z"),
                )
            })
        })
        .transpose()
    };
    Ok(IssueRequest {
        licence_type,
        holder: body.holder,
        fields: body.fields,
        valid_from: time(body.valid_from, "valid_from")?,
        valid_until: time(body.valid_until, "valid_until")?,
        valid_days: body.valid_days,
        officer: officer.clone(),
    })
}

fn issue_response(r: Receipt) -> IssueResponse {
    let id = r.licence_id.to_string();
    IssueResponse {
        png: format!("/v1/licences/{id}/qr.png"),
        qr: r.qr.clone().unwrap_or_default(),
        commitment: r.state.commitment.to_hex(),
        valid_from: rfc3339(r.state.valid_from),
        valid_until: rfc3339(r.state.valid_until),
        block: block_ref(&r),
        licence_id: id,
    }
}

#[utoipa::path(post, path = "/v1/licences", tag = "department", request_body = IssueBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Issued and durable on the department's chain", body = IssueResponse),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Scope, observer node, or type not granted", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Missing holder field, bad validity", body = ErrorBody),
    ))]
pub async fn issue(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<IssueBody>,
) -> Result<Response, ApiError> {
    let officer = authorize(&state, &headers, Scope::Issue)?;
    let req = issue_request(body, &officer)?;
    let mut out = producer(&state)?.submit(vec![Job::Issue(req)]).await;
    let receipt = out
        .pop()
        .unwrap_or(Err(ProduceError::Unavailable))
        .map_err(produce_error)?;
    Ok((StatusCode::CREATED, Json(issue_response(receipt))).into_response())
}

#[utoipa::path(post, path = "/v1/licences:batch", tag = "department", request_body = BatchBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One result per licence, in order; each ok or with its error", body = BatchResponse),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 413, description = "Body or batch too large", body = ErrorBody),
    ))]
pub async fn issue_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Json<BatchResponse>, ApiError> {
    let officer = authorize(&state, &headers, Scope::Issue)?;
    let max = state.limits.batch_licences_max;
    if body.licences.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{} licences in one request; at most {max}",
                body.licences.len()
            ),
        ));
    }
    let mut results: Vec<Option<BatchItem>> = Vec::with_capacity(body.licences.len());
    let mut jobs = Vec::new();
    let mut job_index = Vec::new();
    for (index, item) in body.licences.into_iter().enumerate() {
        match issue_request(item, &officer) {
            Ok(req) => {
                jobs.push(Job::Issue(req));
                job_index.push(index);
                results.push(None);
            }
            Err(e) => results.push(Some(BatchItem {
                index,
                ok: false,
                licence_id: None,
                qr: None,
                error: Some(e.body().error),
            })),
        }
    }
    if !jobs.is_empty() {
        let outcomes = producer(&state)?.submit(jobs).await;
        for (index, outcome) in job_index.into_iter().zip(outcomes) {
            results[index] = Some(match outcome {
                Ok(r) => BatchItem {
                    index,
                    ok: true,
                    licence_id: Some(r.licence_id.to_string()),
                    qr: r.qr,
                    error: None,
                },
                Err(e) => BatchItem {
                    index,
                    ok: false,
                    licence_id: None,
                    qr: None,
                    error: Some(produce_error(e).body().error),
                },
            });
        }
    }
    Ok(Json(BatchResponse {
        results: results.into_iter().flatten().collect(),
    }))
}

pub(super) fn own_licence(state: &AppState, id: &str) -> Result<LicenceId, ApiError> {
    let id =
        LicenceId::parse(id).map_err(|e| ApiError::bad_request("bad_licence_id", e.to_string()))?;
    if Some(id.department()) != state.department.as_ref() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "other_department",
            format!(
                "{id} belongs to {}; only its own department may change it",
                id.department()
            ),
        ));
    }
    Ok(id)
}

async fn lifecycle(
    state: AppState,
    headers: HeaderMap,
    id: String,
    action: Action,
) -> Result<Json<LifecycleResponse>, ApiError> {
    let officer = authorize(&state, &headers, Scope::Lifecycle)?;
    let licence_id = own_licence(&state, &id)?;
    let mut out = producer(&state)?
        .submit(vec![Job::Lifecycle {
            licence_id,
            action,
            officer,
        }])
        .await;
    let r = out
        .pop()
        .unwrap_or(Err(ProduceError::Unavailable))
        .map_err(produce_error)?;
    Ok(Json(LifecycleResponse {
        licence_id: r.licence_id.to_string(),
        status: r.state.status,
        block: block_ref(&r),
    }))
}

#[utoipa::path(post, path = "/v1/licences/{id}/suspend", tag = "department", request_body = SuspendBody,
    params(("id" = String, Path, description = "Licence id, e.g. gd.transport:mvdl:00000001")),
    security(("bearer" = [])),
    responses((status = 200, body = LifecycleResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "Not active, or revoked", body = ErrorBody)))]
pub async fn suspend(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SuspendBody>,
) -> Result<Json<LifecycleResponse>, ApiError> {
    lifecycle(state, headers, id, Action::Suspend(body.reason)).await
}

#[utoipa::path(post, path = "/v1/licences/{id}/reinstate", tag = "department", request_body = ReinstateBody,
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses((status = 200, body = LifecycleResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "Not suspended, or revoked", body = ErrorBody)))]
pub async fn reinstate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(_body): ApiJson<ReinstateBody>,
) -> Result<Json<LifecycleResponse>, ApiError> {
    lifecycle(state, headers, id, Action::Reinstate).await
}

#[utoipa::path(post, path = "/v1/licences/{id}/revoke", tag = "department", request_body = RevokeBody,
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses((status = 200, body = LifecycleResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "Already revoked", body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<LifecycleResponse>, ApiError> {
    lifecycle(state, headers, id, Action::Revoke(body.reason)).await
}

#[utoipa::path(get, path = "/v1/licences/{id}/qr.png", tag = "department",
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses((status = 200, description = "PNG of the licence QR", content_type = "image/png"), (status = 404, body = ErrorBody)))]
pub async fn qr_png(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, Scope::Issue)?;
    let id = own_licence(&state, &id)?;
    let cose = state
        .store
        .credential(&id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "licence_not_found",
                format!("{id} was not issued by this node"),
            )
        })?;
    let text = huren_core::credential::cose_to_qr(&cose);
    let png = huren_core::qr::png(&text, 8).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}
