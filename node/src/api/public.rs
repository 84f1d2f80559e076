//! Public routes: verification, licence status, chain heads, evidence, peers, health,
//! metrics. Nothing here returns personal data that the caller did not present.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use huren_api::{
    ChainHead, ChainsAnswer, ErrorBody, ErrorCode, EvidenceItem, EvidencePage, EvidenceQuery,
    Health, HealthStatus, HistoryAnswer, PeerInfo, Report, StatusAnswer, VerifyImage,
    VerifyRequest, EVIDENCE_PAGE_DEFAULT, EVIDENCE_PAGE_MAX,
};
use huren_core::verify::{self, rfc3339, Decision, LedgerFacts, Step, VerifyContext};
use huren_core::{
    ChainView, DepartmentId, LicenceId, LicenceState, LicenceStatus, UnverifiedCredential,
};

use super::error::{ApiError, ApiJson};
use super::AppState;

/// `?at=RFC3339` of the status and history routes.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AtQuery {
    /// RFC 3339: where the licence stood at that moment, by its history (撤销: never
    /// valid; 吊销 and 注销: valid until the record).
    pub at: Option<String>,
}

fn licence_on_ledger(state: &AppState, id: &str) -> Result<(LicenceId, LicenceState), ApiError> {
    let id =
        LicenceId::parse(id).map_err(|e| ApiError::new(ErrorCode::BadLicenceId, e.to_string()))?;
    let s = state.store.licence(&id).ok_or_else(|| {
        ApiError::new(
            ErrorCode::LicenceNotFound,
            format!("{id} is not on the ledger at this node"),
        )
    })?;
    Ok((id, s))
}

#[utoipa::path(get, path = "/v1/licences/{id}", tag = "public",
    params(("id" = String, Path, description = "Licence id, e.g. gd.transport:mvdl:00000001"), AtQuery),
    responses(
        (status = 200, description = "Where the licence stands on this node's ledger (and, with `at`, where it stood then); no personal data", body = StatusAnswer),
        (status = 400, description = "`bad_licence_id`, `bad_query`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`: not on the ledger at this node", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<AtQuery>, QueryRejection>,
) -> Result<Json<StatusAnswer>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(ErrorCode::BadQuery, e.body_text()))?;
    let (id, s) = licence_on_ledger(&state, &id)?;
    let at = match q.at.as_deref() {
        None => None,
        Some(at) => {
            let at = super::lineage::parse_at(at)?;
            let story = super::lineage::events(&state, &id)?;
            Some(super::lineage::at_answer(&story.events, at))
        }
    };
    Ok(Json(StatusAnswer {
        suspended_until: s.suspended_until.map(rfc3339),
        at,
        department: id.department().clone(),
        licence_type: id.licence_type().clone(),
        status: s.status,
        state: s.phase(state.clock.now_secs()),
        valid_from: rfc3339(s.valid_from),
        valid_until: rfc3339(s.valid_until),
        commitment: s.commitment,
        issued_height: s.issued_height,
        updated_height: s.updated_height,
        licence_id: id,
    }))
}

fn context(state: &AppState) -> VerifyContext {
    VerifyContext {
        now: state.clock.now_secs(),
        region: Some(state.region.clone()),
    }
}

#[utoipa::path(get, path = "/v1/licences/{id}/history", tag = "public",
    params(("id" = String, Path, description = "Licence id")),
    responses(
        (status = 200, description = "Every record of the licence with its block (kind, time, reason; no personal data), its origin (transferred in) and where it went (transferred out)", body = HistoryAnswer),
        (status = 400, description = "`bad_licence_id`", body = ErrorBody),
        (status = 404, description = "`licence_not_found`: not on the ledger at this node", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<HistoryAnswer>, ApiError> {
    let (id, _) = licence_on_ledger(&state, &id)?;
    let story = super::lineage::events(&state, &id)?;
    Ok(Json(super::lineage::lineage(&state, &id, &story)))
}

/// Verifies QR text against genesis and this node's ledger. Core decides; when the ledger
/// does not vouch for the credential's bytes, its signature goes to the batch checker
/// between the two steps. With `at` (unix seconds), the verdict as of that moment: the
/// credential's own rules at `at` (as offline), then its licence's history at `at`
/// (`lifecycle::verdict_at`).
///
/// The licence's story (history, origin, where it went) is read only when it decides or
/// is asked for (`with_history`, or a superseded or transferred card, whose report says
/// where the licence stands now): the common answer costs no history lookup.
pub async fn verify_text(
    state: &AppState,
    text: &str,
    at: Option<i64>,
    with_history: bool,
) -> Report {
    let mut ctx = context(state);
    let mut as_of = None;
    let mut lineage = None;
    let mut at_answer = None;
    let decision: Decision = match UnverifiedCredential::from_qr(text) {
        Err(e) => verify::undecodable(&e.to_string(), &ctx),
        Ok(un) => {
            let id = un.credential.licence_id.clone();
            let issuer_head = state.store.head(id.department());
            let (found_as_of, checkpoint_stale) =
                super::checkpoints::freshness(state, id.department());
            as_of = found_as_of;
            let current = state.store.licence(&id);
            // Its history decides a moment asked about, and whether a card the ledger does
            // not hold as current is an earlier one of this licence; a transferred card's
            // report says where the licence went.
            let moved = current.is_some_and(|s| s.status == LicenceStatus::Transferred);
            let needs_story = current.is_some_and(|s| {
                at.is_some() || with_history || moved || s.commitment != un.commitment
            });
            let story = if needs_story {
                super::lineage::events(state, &id).ok()
            } else {
                None
            };
            let events: &[huren_core::lifecycle::Event] = story.as_ref().map_or(&[], |s| &s.events);
            if let Some(story) = &story {
                lineage = Some(super::lineage::lineage(state, &id, story));
            }
            if let Some(at) = at {
                ctx.now = at;
                at_answer = Some(super::lineage::at_answer(events, at));
                let d = verify_at(state, un, events, &ctx).await;
                state.metrics.verify_verdicts.inc(d.verdict.label());
                let mut report = Report::new(&state.net(), &d);
                report.as_of = as_of;
                report.lineage = lineage;
                report.at = at_answer;
                return report;
            }
            let lineage_facts = huren_core::verify::Lineage {
                superseded_by: super::lineage::superseded_by(
                    un.commitment,
                    current.as_ref(),
                    events,
                ),
                transfer: if moved {
                    state.store.transfer(&id)
                } else {
                    None
                },
            };
            let facts = LedgerFacts::Online {
                lineage: lineage_facts,
                licence: current,
                issuer_head,
                equivocation_height: state.store.equivocation_height(id.department()),
                // The network decides staleness; a node without networking has no peers to
                // fall behind.
                stale: if state.network.as_ref().is_some_and(|n| n.is_stale()) {
                    Some(huren_core::verify::Stale::NoPeers)
                } else {
                    checkpoint_stale
                },
                behind: state
                    .network
                    .as_ref()
                    .and_then(|n| n.behind(id.department(), issuer_head.map_or(0, |h| h.height))),
            };
            match verify::prepare(&state.net(), un, facts, &ctx) {
                Step::Done(d) => {
                    if d.credential().is_some() && d.ledger.is_some() {
                        state.metrics.verify_fast_path.inc();
                    }
                    d
                }
                Step::Signature(pending) => {
                    let ok = state.signatures.check(pending.input()).await;
                    pending.finish(&state.net(), ok)
                }
            }
        }
    };
    state.metrics.verify_verdicts.inc(decision.verdict.label());
    let mut report = Report::new(&state.net(), &decision);
    report.as_of = as_of;
    report.lineage = lineage;
    report.at = at_answer;
    report
}

/// The verdict at `ctx.now` (a moment asked about): the credential's own rules (its
/// signature always checked), then what its licence's history says of that moment.
async fn verify_at(
    state: &AppState,
    un: UnverifiedCredential,
    events: &[huren_core::lifecycle::Event],
    ctx: &VerifyContext,
) -> Decision {
    let commitment = un.commitment;
    let mut d = match verify::prepare(&state.net(), un, LedgerFacts::Offline, ctx) {
        Step::Done(d) => d,
        Step::Signature(pending) => {
            let ok = state.signatures.check(pending.input()).await;
            pending.finish(&state.net(), ok)
        }
    };
    d.offline = false;
    if d.verdict == verify::Verdict::Valid {
        if let Some((reason, detail)) =
            huren_core::lifecycle::verdict_at(events, ctx.now, commitment)
        {
            d.verdict = verify::Verdict::Invalid(reason);
            d.detail = detail;
        }
    }
    d
}

/// A multipart body that could not be read, in the API's error shape.
fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ErrorCode::BodyTooLarge
    } else {
        ErrorCode::MalformedBody
    };
    ApiError::new(code, e.body_text())
}

#[utoipa::path(post, path = "/v1/verify", tag = "public",
    params(VerifyQuery),
    request_body(content(
        (VerifyRequest = "application/json"),
        (VerifyImage = "multipart/form-data"),
    ), description = "The QR text as JSON, or a photo of the QR"),
    responses(
        (status = 200, description = "The verdict report (valid | invalid | undetermined, never conflated); see docs/api.md", body = Report),
        (status = 400, description = "`malformed_body`, `missing_image`, `bad_query`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`unavailable`: every photo decoder busy and the queue full; retry, or send the text", body = ErrorBody)))]
pub async fn verify_qr(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<Report>, ApiError> {
    let VerifyQuery { proof, at, history } = Query::<VerifyQuery>::try_from_uri(req.uri())
        .map_err(|e| ApiError::new(ErrorCode::BadQuery, e.body_text()))?
        .0;
    let with_proof = match proof {
        None | Some(0) => false,
        Some(1) => true,
        Some(n) => {
            return Err(ApiError::new(
                ErrorCode::BadQuery,
                format!("proof={n}: it is 0 or 1"),
            ))
        }
    };
    let at = at.as_deref().map(super::lineage::parse_at).transpose()?;
    let history = match history {
        None | Some(0) => false,
        Some(1) => true,
        Some(n) => {
            return Err(ApiError::new(
                ErrorCode::BadQuery,
                format!("history={n}: it is 0 or 1"),
            ))
        }
    };
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let text = if is_multipart {
        let mut mp = Multipart::from_request(req, &state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::MalformedBody, e.body_text()))?;
        let mut image = None;
        while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
            if field.name() == Some("image") {
                let bytes = field.bytes().await.map_err(multipart_error)?;
                image = Some(bytes);
                break;
            }
        }
        let image = image.ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingImage,
                "multipart body needs a part named 'image'",
            )
        })?;
        // The route's body limit leaves room for the multipart framing; the photo itself
        // gets exactly `image_bytes_max`.
        if image.len() > state.limits.image_bytes_max {
            return Err(ApiError::new(
                ErrorCode::BodyTooLarge,
                format!(
                    "the photo is {} bytes; at most {}",
                    image.len(),
                    state.limits.image_bytes_max
                ),
            ));
        }
        // Decoding is CPU-heavy: at most so many at once node-wide (api::images), off the
        // async workers, so a flood of photos cannot starve issuance and replication.
        let permit = state.images.enter().await.map_err(|_| {
            state.metrics.verify_images_refused.inc();
            ApiError::new(
                ErrorCode::Unavailable,
                "too many photos are being read right now; try again in a moment, or type or scan the QR text",
            )
        })?;
        // The permit goes with the decode: a photo that takes long keeps its decoder busy
        // (and later photos are refused) until it is done, but its answer does not wait
        // past the deadline.
        let decode = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            huren_render::qr::decode_image(&image)
        });
        let deadline = std::time::Duration::from_millis(state.limits.image_decode_ms_max);
        let decoded = match tokio::time::timeout(deadline, decode).await {
            Ok(joined) => joined.map_err(ApiError::internal)?,
            Err(_) => Err(huren_render::qr::QrError::Image(format!(
                "reading the photo took longer than {} ms",
                deadline.as_millis()
            ))),
        };
        match decoded {
            Ok(t) => t,
            Err(e) => {
                let d = verify::undecodable(&e.to_string(), &context(&state));
                state.metrics.verify_verdicts.inc(d.verdict.label());
                return Ok(Json(Report::new(&state.net(), &d)));
            }
        }
    } else {
        let ApiJson(body) = ApiJson::<VerifyRequest>::from_request(req, &state).await?;
        body.qr
    };
    let mut report = verify_text(&state, &text, at, history).await;
    if with_proof {
        if let Ok(un) = UnverifiedCredential::from_qr(&text) {
            let (id, commitment) = (un.credential.licence_id, un.commitment);
            let s = state.clone();
            let proof = tokio::task::spawn_blocking(move || {
                super::checkpoints::prove(&s, &id, &commitment)
            })
            .await
            .map_err(ApiError::internal)?;
            match proof {
                Ok(p) => report.proof = Some(huren_api::VerifyProof::of(&p)),
                Err(why) => report.proof_unavailable = Some(why),
            }
        } else {
            report.proof_unavailable = Some("the input names no licence".into());
        }
    }
    Ok(Json(report))
}

/// The query `POST /v1/verify` takes; any other parameter is refused.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// 1: add the proof of the answer (the issuer's cosigned checkpoint, the record of
    /// the credential's inclusion, the licence's place in the status set) for
    /// `huren verify --proof`.
    pub proof: Option<u8>,
    /// RFC 3339: the verdict as of that moment, by the licence's history.
    pub at: Option<String>,
    /// 1: add the licence's story (`lineage`: its records, origin, where it went), as the
    /// window page shows it. A superseded or transferred card's report has it anyway.
    pub history: Option<u8>,
}

#[utoipa::path(get, path = "/v1/chains", tag = "public",
    responses(
        (status = 200, description = "The genesis hash and the head of every department's chain at this node", body = ChainsAnswer),
        (status = 429, description = "`rate_limited`", body = ErrorBody)))]
pub async fn chains(State(state): State<AppState>) -> Json<ChainsAnswer> {
    let chains = state
        .net()
        .departments()
        .iter()
        .map(|d| {
            let head = state.store.head(&d.id);
            ChainHead {
                department: d.id.clone(),
                region: d.region.clone(),
                height: head.map_or(0, |h| h.height),
                hash: head.map(|h| h.hash),
                time: head.map(|h| rfc3339((h.time_ms / 1000) as i64)),
            }
        })
        .collect();
    Json(ChainsAnswer {
        genesis: state.net().hash(),
        chains,
    })
}

#[utoipa::path(get, path = "/v1/evidence", tag = "public",
    params(EvidenceQuery),
    responses(
        (status = 200, description = "Proven equivocations, a page at a time: two blocks a department signed at one height", body = EvidencePage),
        (status = 400, description = "`bad_query`: an unknown parameter, a limit out of 1..=64, a cursor this node did not hand out", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody)))]
pub async fn evidence(
    State(state): State<AppState>,
    query: Result<Query<EvidenceQuery>, QueryRejection>,
) -> Result<Json<EvidencePage>, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::BadQuery, m);
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let limit = q.limit.unwrap_or(EVIDENCE_PAGE_DEFAULT);
    if !(1..=EVIDENCE_PAGE_MAX).contains(&limit) {
        return Err(bad(format!("limit must be 1..={EVIDENCE_PAGE_MAX}")));
    }
    let after = q
        .after
        .as_deref()
        .map(|c| {
            parse_cursor(c).ok_or_else(|| {
                bad(format!(
                    "after {c:?} is not a cursor this node hands out (department:height)"
                ))
            })
        })
        .transpose()?;
    let (pairs, next) = state
        .ledger
        .evidence_page(
            q.department.as_ref(),
            after.as_ref().map(|(d, h)| (d, *h)),
            limit,
        )
        .map_err(ApiError::internal)?;
    let evidence = pairs
        .into_iter()
        .map(|(first, second)| EvidenceItem {
            department: first.department().clone(),
            height: first.height(),
            first_hash: first.hash(),
            second_hash: second.hash(),
            first_block: hex::encode(first.encode()),
            second_block: hex::encode(second.encode()),
        })
        .collect();
    Ok(Json(EvidencePage {
        evidence,
        next: next.map(|(d, h)| format!("{d}:{h}")),
    }))
}

/// `department:height`, as `evidence` hands out in `next`.
fn parse_cursor(c: &str) -> Option<(DepartmentId, u64)> {
    let (d, h) = c.rsplit_once(':')?;
    Some((DepartmentId::parse(d).ok()?, h.parse().ok()?))
}

#[utoipa::path(get, path = "/v1/peers", tag = "public",
    responses(
        (status = 200, description = "Connected libp2p peers", body = [PeerInfo]),
        (status = 429, description = "`rate_limited`", body = ErrorBody)))]
pub async fn peers(State(state): State<AppState>) -> Json<Vec<PeerInfo>> {
    match &state.network {
        Some(n) => Json(n.peers().await),
        None => Json(Vec::new()),
    }
}

#[utoipa::path(get, path = "/healthz", tag = "public",
    responses((status = 200, description = "The node is up", body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let too_old = state.ledger.protocol_too_old();
    Json(Health {
        status: if too_old.is_some() {
            HealthStatus::ProtocolTooOld
        } else {
            HealthStatus::Ok
        },
        protocol: Some(huren_api::ProtocolView {
            network: state.net().protocol_version(),
            supported: state.ledger.protocol_max(),
        }),
        network: state.net().document().network.clone(),
        department: state.department.clone(),
        region: state.region.clone(),
        licences: state.store.licence_count() as u64,
    })
}

#[utoipa::path(get, path = "/metrics", tag = "public",
    responses((status = 200, description = "Prometheus text exposition (docs/operations.md lists the metrics)", content_type = "text/plain")))]
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
