//! Department routes: issue, bulk import, suspend, reinstate, revoke, renew (one or in
//! bulk), reissue, amend, transfer out and in, annul, the QR of an issued licence.
//! Officers only, own department only. Clients never set server-owned fields (licence id,
//! serial, issue time, officer): the bodies refuse unknown fields.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use huren_api::{
    AcceptTransferRequest, AmendRequest, AnnulRequest, BatchAnswer, BatchItem, BatchRequest,
    BlockRef, ErrorBody, ErrorCode, IssueAnswer, IssueRequest as IssueBody, LifecycleAnswer,
    ReinstateRequest, ReissueRequest, RenewBatchRequest, RenewRequest, RevokeRequest,
    SuspendRequest, TransferRequest,
};
use huren_core::issuance::Change;
use huren_core::issuance::PolicyError;
use huren_core::validate::BlockError;
use huren_core::verify::{parse_rfc3339, rfc3339};
use huren_core::{ChainView, LicenceId, LicenceType, OfficerId};

use super::auth::authorize;
use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::config::Scope;
use crate::producer::{Action, IssueRequest, Job, ProduceError, ProducerHandle, Receipt};

fn producer(state: &AppState) -> Result<&ProducerHandle, ApiError> {
    state.producer.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::ObserverNode,
            "this is an observer node; it issues for no department",
        )
    })
}

/// Maps a producer refusal to the code clients act on (its status comes with the code).
fn produce_error(e: ProduceError) -> ApiError {
    let code = match &e {
        ProduceError::Refused(b) => match b {
            BlockError::UnknownLicence { .. } => ErrorCode::LicenceNotFound,
            BlockError::TypeNotGranted { .. } => ErrorCode::TypeNotGranted,
            BlockError::ForeignLicence { .. } => ErrorCode::ForeignLicence,
            BlockError::BadValidity { .. } => ErrorCode::BadValidity,
            BlockError::DuplicateIssue { .. } => ErrorCode::DuplicateIssue,
            BlockError::AlreadyRevoked { .. } => ErrorCode::AlreadyRevoked,
            BlockError::WrongStatus { .. } => ErrorCode::WrongStatus,
            BlockError::AlreadyTransferred { .. } => ErrorCode::AlreadyTransferred,
            BlockError::BadTransfer { .. } => ErrorCode::BadTransfer,
            BlockError::AnnulMismatch { .. } => ErrorCode::AnnulMismatch,
            BlockError::BadSuspension { .. } => ErrorCode::BadSuspension,
            // Block-level rules: the producer builds its blocks itself, so one of these
            // failing on a single request is a fault here, not the officer's.
            other => return ApiError::internal(format!("producer refused a request: {other}")),
        },
        ProduceError::Policy(p) => match p {
            PolicyError::NotGranted { .. } => ErrorCode::TypeNotGranted,
            PolicyError::Validity(_) => ErrorCode::BadValidity,
            PolicyError::UnknownType { .. }
            | PolicyError::MissingHolderFields { .. }
            | PolicyError::Bounds(_) => ErrorCode::InvalidLicence,
            // The producer is bound to its own department, which genesis names.
            PolicyError::UnknownIssuer(_) => return ApiError::internal(p),
        },
        // The draft passed the bounds check; failing to encode it is a fault here.
        ProduceError::Credential(_) => return ApiError::internal(e),
        ProduceError::Unavailable => ErrorCode::Unavailable,
        ProduceError::CatchingUp { .. } => ErrorCode::CatchingUp,
        // The operator's to fix (configure the key in force): unavailable until then.
        ProduceError::NoKey { .. } => ErrorCode::Unavailable,
        ProduceError::Retired { .. } => ErrorCode::DepartmentRetired,
        ProduceError::ClockBehind { .. } => ErrorCode::ClockBehind,
        ProduceError::Stopped => ErrorCode::ProducerStopped,
        ProduceError::ProtocolTooOld { .. } => ErrorCode::ProtocolTooOld,
        ProduceError::NoCredential(_) => ErrorCode::NoCredential,
        // Nothing in the batch was acknowledged; the officer can retry.
        ProduceError::Storage(_)
        | ProduceError::BlockRefused(_)
        | ProduceError::SigningRecord(_) => return ApiError::internal(e),
    };
    ApiError::new(code, e.to_string())
}

fn block_ref(r: &Receipt) -> BlockRef {
    BlockRef {
        department: r.block.department.clone(),
        height: r.block.height,
        hash: r.block.hash,
    }
}

fn issue_request(body: IssueBody, officer: &OfficerId) -> Result<IssueRequest, ApiError> {
    let licence_type = LicenceType::parse(&body.licence_type)
        .map_err(|e| ApiError::new(ErrorCode::BadLicenceType, e.to_string()))?;
    let time = |s: Option<String>, name: &str| body_time(s.as_deref(), name);
    Ok(IssueRequest {
        terms: huren_core::issuance::Terms {
            licence_type,
            holder: body.holder,
            fields: body.fields,
            valid_from: time(body.valid_from, "valid_from")?,
            valid_until: time(body.valid_until, "valid_until")?,
            valid_days: body.valid_days,
        },
        officer: officer.clone(),
        origin: None,
    })
}

/// An RFC 3339 time of a request body, read; `name` says which in the error.
fn body_time(s: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    s.map(|s| {
        parse_rfc3339(s).ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadTime,
                format!("{name} must be RFC 3339, e.g. 2026-01-31T00:00:00Z"),
            )
        })
    })
    .transpose()
}

fn renew_change(body: &RenewRequest) -> Result<Change, ApiError> {
    Ok(Change::Renew {
        valid_until: body_time(body.valid_until.as_deref(), "valid_until")?,
        valid_days: body.valid_days,
    })
}

/// One request to the producer; its one outcome.
async fn produce_one(state: &AppState, job: Job) -> Result<Receipt, ApiError> {
    producer(state)?
        .submit(vec![job])
        .await
        .pop()
        .unwrap_or(Err(ProduceError::Unavailable))
        .map_err(produce_error)
}

/// A new credential for `id` (renew, reissue, amend): the answer is the new QR, as at
/// issuance.
async fn recredential(
    state: AppState,
    headers: HeaderMap,
    id: String,
    change: Change,
) -> Result<Json<IssueAnswer>, ApiError> {
    let officer = authorize(&state, &headers, Scope::Issue)?;
    let licence_id = own_licence(&state, &id)?;
    let receipt = produce_one(
        &state,
        Job::Recredential {
            licence_id,
            change,
            officer,
        },
    )
    .await?;
    Ok(Json(issue_answer(receipt)?))
}

fn issue_answer(r: Receipt) -> Result<IssueAnswer, ApiError> {
    let qr =
        r.qr.clone()
            .ok_or_else(|| ApiError::internal(format!("issued {} without a QR", r.licence_id)))?;
    Ok(IssueAnswer {
        png: format!("/v1/licences/{}/qr.png", r.licence_id),
        qr,
        commitment: r.state.commitment,
        valid_from: rfc3339(r.state.valid_from),
        valid_until: rfc3339(r.state.valid_until),
        block: block_ref(&r),
        licence_id: r.licence_id,
    })
}

#[utoipa::path(post, path = "/v1/licences", tag = "department", request_body = IssueBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Issued and durable on the department's chain", body = IssueAnswer),
        (status = 400, description = "`malformed_body`, `bad_licence_type`, `bad_time`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or unknown token", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`, `type_not_granted`, `department_retired`", body = ErrorBody),
        (status = 409, description = "`duplicate_issue`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `invalid_licence` (missing holder field…), `bad_validity`", body = ErrorBody),
        (status = 500, description = "`internal`: nothing was acknowledged", body = ErrorBody),
        (status = 503, description = "`unavailable`, `catching_up`, `clock_behind`: retry; `producer_stopped`: the operator must restart the node", body = ErrorBody),
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
    Ok((StatusCode::CREATED, Json(issue_answer(receipt)?)).into_response())
}

#[utoipa::path(post, path = "/v1/licences:batch", tag = "department", request_body = BatchRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One result per licence, in order; each ok or with its error (any code of `POST /v1/licences`)", body = BatchAnswer),
        (status = 400, description = "`malformed_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or unknown token", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`", body = ErrorBody),
        (status = 413, description = "`body_too_large`, `batch_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`, `catching_up`, `clock_behind`: retry; `producer_stopped`: the operator must restart the node", body = ErrorBody),
    ))]
pub async fn issue_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BatchRequest>,
) -> Result<Json<BatchAnswer>, ApiError> {
    let officer = authorize(&state, &headers, Scope::Issue)?;
    batch(&state, body.licences, |item| {
        issue_request(item, &officer).map(Job::Issue)
    })
    .await
}

/// Many requests of one kind in one block: each item read into its job on its own (a bad
/// one is refused alone), then all jobs submitted together; one result per item, in
/// order. At most `batch_licences_max` items.
async fn batch<T>(
    state: &AppState,
    items: Vec<T>,
    job: impl Fn(T) -> Result<Job, ApiError>,
) -> Result<Json<BatchAnswer>, ApiError> {
    let max = state.limits.batch_licences_max;
    if items.len() > max {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!("{} licences in one request; at most {max}", items.len()),
        ));
    }
    let mut results: Vec<Option<BatchItem>> = Vec::with_capacity(items.len());
    let mut jobs = Vec::new();
    let mut job_index = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match job(item) {
            Ok(j) => {
                jobs.push(j);
                job_index.push(index);
                results.push(None);
            }
            Err(e) => results.push(Some(BatchItem::refused(index, e.detail()))),
        }
    }
    if !jobs.is_empty() {
        let outcomes = producer(state)?.submit(jobs).await;
        for (index, outcome) in job_index.into_iter().zip(outcomes) {
            results[index] = Some(match outcome {
                Ok(r) => BatchItem::issued(index, r.licence_id, r.qr),
                Err(e) => BatchItem::refused(index, produce_error(e).detail()),
            });
        }
    }
    Ok(Json(BatchAnswer {
        results: results.into_iter().flatten().collect(),
    }))
}

pub(super) fn own_licence(state: &AppState, id: &str) -> Result<LicenceId, ApiError> {
    let id =
        LicenceId::parse(id).map_err(|e| ApiError::new(ErrorCode::BadLicenceId, e.to_string()))?;
    if Some(id.department()) != state.department.as_ref() {
        return Err(ApiError::new(
            ErrorCode::OtherDepartment,
            format!(
                "{id} belongs to {}; only its own department may change it",
                id.department()
            ),
        ));
    }
    Ok(id)
}

/// A licence this node's department may suspend, reinstate or revoke: its own, or one of
/// a department it succeeded (机构改革: `retire_department` with a successor).
fn changeable_licence(state: &AppState, id: &str) -> Result<LicenceId, ApiError> {
    let parsed =
        LicenceId::parse(id).map_err(|e| ApiError::new(ErrorCode::BadLicenceId, e.to_string()))?;
    if let Some(own) = &state.department {
        if state.net().acts_for(own, parsed.department()) {
            return Ok(parsed);
        }
    }
    own_licence(state, id)
}

async fn lifecycle(
    state: AppState,
    headers: HeaderMap,
    id: String,
    action: Action,
) -> Result<Json<LifecycleAnswer>, ApiError> {
    let officer = authorize(&state, &headers, Scope::Lifecycle)?;
    let licence_id = changeable_licence(&state, &id)?;
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
    Ok(Json(LifecycleAnswer {
        block: block_ref(&r),
        licence_id: r.licence_id,
        status: r.state.status,
    }))
}

#[utoipa::path(post, path = "/v1/licences/{id}/suspend", tag = "department", request_body = SuspendRequest,
    params(("id" = String, Path, description = "Licence id, e.g. gd.transport:mvdl:00000001")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Suspended (暂扣), durable", body = LifecycleAnswer),
        (status = 400, description = "`malformed_body`, `bad_licence_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`, `other_department`, `department_retired`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`: never issued", body = ErrorBody),
        (status = 409, description = "`wrong_status` (not active), `already_revoked`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`: unknown reason", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`, `catching_up`, `clock_behind`: retry; `producer_stopped`: the operator must restart the node", body = ErrorBody)))]
pub async fn suspend(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SuspendRequest>,
) -> Result<Json<LifecycleAnswer>, ApiError> {
    let until = body_time(body.until.as_deref(), "until")?;
    lifecycle(state, headers, id, Action::Suspend(body.reason, until)).await
}

#[utoipa::path(post, path = "/v1/licences/{id}/reinstate", tag = "department", request_body = ReinstateRequest,
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reinstated (发还), durable", body = LifecycleAnswer),
        (status = 400, description = "`malformed_body`, `bad_licence_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`, `other_department`, `department_retired`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`: never issued", body = ErrorBody),
        (status = 409, description = "`wrong_status` (not suspended), `already_revoked`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`, `catching_up`, `clock_behind`: retry; `producer_stopped`: the operator must restart the node", body = ErrorBody)))]
pub async fn reinstate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(_body): ApiJson<ReinstateRequest>,
) -> Result<Json<LifecycleAnswer>, ApiError> {
    lifecycle(state, headers, id, Action::Reinstate).await
}

#[utoipa::path(post, path = "/v1/licences/{id}/revoke", tag = "department", request_body = RevokeRequest,
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Revoked, final, durable", body = LifecycleAnswer),
        (status = 400, description = "`malformed_body`, `bad_licence_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`, `other_department`, `department_retired`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`: never issued", body = ErrorBody),
        (status = 409, description = "`already_revoked`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`: unknown reason", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`, `catching_up`, `clock_behind`: retry; `producer_stopped`: the operator must restart the node", body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> Result<Json<LifecycleAnswer>, ApiError> {
    lifecycle(state, headers, id, Action::Revoke(body.reason)).await
}

#[utoipa::path(post, path = "/v1/licences/{id}/renew", tag = "department", request_body = RenewRequest,
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Renewed (延续): a new period from now and a new credential, durable; the old QR is superseded", body = IssueAnswer),
        (status = 400, description = "`malformed_body`, `bad_licence_id`, `bad_time`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`, `other_department`, `department_retired`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`", body = ErrorBody),
        (status = 409, description = "`wrong_status` (suspended), `already_revoked`, `already_transferred`, `no_credential`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `bad_validity` (not past the current end, or longer than the type allows)", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`, `catching_up`, `clock_behind`, `protocol_too_old`: retry or upgrade; `producer_stopped`", body = ErrorBody)))]
pub async fn renew(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RenewRequest>,
) -> Result<Json<IssueAnswer>, ApiError> {
    let change = renew_change(&body)?;
    recredential(state, headers, id, change).await
}

#[utoipa::path(post, path = "/v1/licences:renew", tag = "department", request_body = RenewBatchRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One result per licence, in order: renewed with its new QR, or refused with its error (any code of `POST /v1/licences/{id}/renew`)", body = BatchAnswer),
        (status = 400, description = "`malformed_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`", body = ErrorBody),
        (status = 413, description = "`body_too_large`, `batch_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`, `catching_up`, `clock_behind`, `protocol_too_old`, `producer_stopped`", body = ErrorBody)))]
pub async fn renew_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RenewBatchRequest>,
) -> Result<Json<BatchAnswer>, ApiError> {
    let officer = authorize(&state, &headers, Scope::Issue)?;
    batch(&state, body.licences, |item| {
        Ok(Job::Recredential {
            licence_id: own_licence(&state, &item.licence_id)?,
            change: renew_change(&item.renew)?,
            officer: officer.clone(),
        })
    })
    .await
}

#[utoipa::path(post, path = "/v1/licences/{id}/reissue", tag = "department", request_body = ReissueRequest,
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reissued (补领 / 换证): the same facts in a new credential, durable; the lost or damaged QR is superseded", body = IssueAnswer),
        (status = 400, description = "`malformed_body`, `bad_licence_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`, `other_department`, `department_retired`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`", body = ErrorBody),
        (status = 409, description = "`already_revoked`, `already_transferred`, `no_credential`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`, `catching_up`, `clock_behind`, `protocol_too_old`, `producer_stopped`", body = ErrorBody)))]
pub async fn reissue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(_body): ApiJson<ReissueRequest>,
) -> Result<Json<IssueAnswer>, ApiError> {
    recredential(state, headers, id, Change::Reissue).await
}

#[utoipa::path(post, path = "/v1/licences/{id}/amend", tag = "department", request_body = AmendRequest,
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Amended (变更 / 更正): the changed fields in a new credential, durable; the old QR is superseded", body = IssueAnswer),
        (status = 400, description = "`malformed_body`, `bad_licence_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`, `other_department`, `department_retired`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`", body = ErrorBody),
        (status = 409, description = "`already_revoked`, `already_transferred`, `no_credential`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `invalid_licence` (a required holder field blank, a field too long)", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`, `catching_up`, `clock_behind`, `protocol_too_old`, `producer_stopped`", body = ErrorBody)))]
pub async fn amend(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AmendRequest>,
) -> Result<Json<IssueAnswer>, ApiError> {
    let change = Change::Amend {
        holder: body.holder,
        fields: body.fields,
    };
    recredential(state, headers, id, change).await
}

#[utoipa::path(post, path = "/v1/licences/{id}/transfer", tag = "department", request_body = TransferRequest,
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Transferred out (转出), final for this id, durable; the receiving department issues it anew (`POST /v1/transfers`)", body = LifecycleAnswer),
        (status = 400, description = "`malformed_body`, `bad_licence_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`, `other_department`, `department_retired`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`", body = ErrorBody),
        (status = 409, description = "`wrong_status` (suspended), `already_revoked`, `already_transferred`, `bad_transfer` (same region, not granted the type, not a department)", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`, `catching_up`, `clock_behind`, `protocol_too_old`, `producer_stopped`", body = ErrorBody)))]
pub async fn transfer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TransferRequest>,
) -> Result<Json<LifecycleAnswer>, ApiError> {
    lifecycle(state, headers, id, Action::TransferOut(body.to)).await
}

#[utoipa::path(post, path = "/v1/transfers", tag = "department", request_body = AcceptTransferRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Transferred in (转入): issued here under a new id naming its origin, durable", body = IssueAnswer),
        (status = 400, description = "`malformed_body`, `bad_time`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`, `type_not_granted`, `department_retired`", body = ErrorBody),
        (status = 409, description = "`bad_transfer`: the origin's chain here shows no transfer out to this department, or it was transferred in already", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `invalid_licence` (the QR is not a genuine credential of this network, or not the licence's current card), `bad_validity`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`, `catching_up`, `clock_behind`, `protocol_too_old`, `producer_stopped`", body = ErrorBody)))]
pub async fn accept_transfer(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AcceptTransferRequest>,
) -> Result<Response, ApiError> {
    let officer = authorize(&state, &headers, Scope::Issue)?;
    // The QR must be a genuine credential of this network, signed by its issuer: the
    // holder's fields come from it. Whether it was transferred here is the ledger's rule
    // (the issue record's origin), checked when the record is admitted.
    let net = state.net();
    let un = huren_core::UnverifiedCredential::from_qr(&body.qr)
        .map_err(|e| ApiError::new(ErrorCode::InvalidLicence, format!("the QR: {e}")))?;
    // The holder's current card: one superseded since (renewed, reissued, amended) would
    // carry fields the origin no longer vouches for.
    if let Some(s) = state.store.licence(&un.credential.licence_id) {
        if s.commitment != un.commitment {
            return Err(ApiError::new(
                ErrorCode::InvalidLicence,
                format!(
                    "the QR is not the current card of {}: it was renewed, reissued or amended since; ask for the newest card",
                    un.credential.licence_id
                ),
            ));
        }
    }
    let previous = net
        .key_span(&un.kid)
        .filter(|(d, _)| d.id == un.credential.issuer)
        .and_then(|(_, span)| un.verify(&span.key).ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidLicence,
                "the QR is not signed by its issuer's key in this network",
            )
        })?
        .credential()
        .clone();
    let mut terms = huren_core::issuance::terms_of(&previous);
    let now = state.clock.now_secs();
    terms.valid_from = Some(now);
    // What is left of the origin's validity, unless the officer sets a new period.
    terms.valid_until = body_time(body.valid_until.as_deref(), "valid_until")?
        .or(body.valid_days.is_none().then_some(previous.expires_at));
    terms.valid_days = body.valid_days;
    let receipt = produce_one(
        &state,
        Job::Issue(IssueRequest {
            terms,
            officer,
            origin: Some(previous.licence_id),
        }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(issue_answer(receipt)?)).into_response())
}

#[utoipa::path(post, path = "/v1/licences/{id}/annul", tag = "department", request_body = AnnulRequest,
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The revocation or suspension it stands on is annulled (an overturned decision); active again, durable; the annulled record stays on the chain", body = LifecycleAnswer),
        (status = 400, description = "`malformed_body`, `bad_licence_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`, `other_department`, `department_retired`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`", body = ErrorBody),
        (status = 409, description = "`wrong_status` (active: nothing to annul), `already_transferred`, `annul_mismatch`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`: unknown reason", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`, `catching_up`, `clock_behind`, `protocol_too_old`, `producer_stopped`", body = ErrorBody)))]
pub async fn annul(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AnnulRequest>,
) -> Result<Json<LifecycleAnswer>, ApiError> {
    lifecycle(state, headers, id, Action::Annul(body.reason)).await
}

#[utoipa::path(get, path = "/v1/licences/{id}/qr.png", tag = "department",
    params(("id" = String, Path, description = "Licence id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "PNG of the licence QR", content_type = "image/png"),
        (status = 400, description = "`bad_licence_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`, `other_department`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`: not issued by this node", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody)))]
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
                ErrorCode::LicenceNotFound,
                format!("{id} was not issued by this node"),
            )
        })?;
    let text = huren_core::credential::cose_to_qr(&cose);
    let png = huren_render::qr::png(&text, 8).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Corruption, StoreError};

    /// Every producer failure, the code the officer gets and the message shown: the HTTP
    /// answers depend on variants only, never on message text.
    #[test]
    fn produce_errors_map_to_codes_and_messages() {
        let d = huren_core::DepartmentId::parse("gd.transport").expect("department");
        let t = LicenceType::parse("mvdl").expect("type");
        let id = LicenceId::new(d.clone(), t.clone(), 7);
        let internal = "internal error; see the node's log";
        let cases: Vec<(ProduceError, ErrorCode, &str)> = vec![
            (
                ProduceError::Refused(BlockError::UnknownLicence {
                    department: d.clone(),
                    height: 3,
                    index: 0,
                    kind: "revoke",
                    licence: id.clone(),
                }),
                ErrorCode::LicenceNotFound,
                "block gd.transport#3: record 0 (revoke) concerns gd.transport:mvdl:00000007, which was never issued",
            ),
            (
                ProduceError::Refused(BlockError::Empty {
                    department: d.clone(),
                    height: 3,
                }),
                ErrorCode::Internal,
                internal,
            ),
            (
                ProduceError::Policy(PolicyError::MissingHolderFields {
                    licence_type: t.clone(),
                    required: vec!["name".into(), "id_number".into(), "class".into()],
                    missing: vec!["id_number".into(), "class".into()],
                }),
                ErrorCode::InvalidLicence,
                "mvdl requires holder fields name, id_number, class; missing: id_number, class",
            ),
            (
                ProduceError::Policy(PolicyError::UnknownType {
                    licence_type: LicenceType::parse("boat").expect("type"),
                    defined: vec![t.clone()],
                }),
                ErrorCode::InvalidLicence,
                "licence type boat is not defined in genesis; defined types: mvdl",
            ),
            (
                ProduceError::Policy(PolicyError::NotGranted {
                    department: d.clone(),
                    licence_type: LicenceType::parse("food").expect("type"),
                    granted: vec![t.clone()],
                }),
                ErrorCode::TypeNotGranted,
                "gd.transport may not issue food: genesis grants it only mvdl",
            ),
            (
                ProduceError::Policy(PolicyError::Validity(
                    huren_core::genesis::ValidityProblem::OutOfRange,
                )),
                ErrorCode::BadValidity,
                "validity out of range",
            ),
            (
                ProduceError::Unavailable,
                ErrorCode::Unavailable,
                "the block producer is overloaded or stopping; try again",
            ),
            (
                ProduceError::CatchingUp {
                    local: 1,
                    signed: 4,
                },
                ErrorCode::CatchingUp,
                "this node is catching up its own department's chain (local height 1, its key has signed up to 4); try again shortly",
            ),
            (
                StoreError::Corrupt(Corruption::Serial(t.clone())).into(),
                ErrorCode::Internal,
                internal,
            ),
            (
                ProduceError::BlockRefused(BlockError::Empty {
                    department: d,
                    height: 3,
                }),
                ErrorCode::Internal,
                internal,
            ),
        ];
        for (e, code, message) in cases {
            let shown = format!("{e}");
            let api = produce_error(e);
            assert_eq!((api.code, api.message.as_str()), (code, message), "{shown}");
        }
    }
}
