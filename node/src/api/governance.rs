//! Governance routes: the network in force, the governance chain as an export, and
//! submitting a co-signed record (docs/governance.md).
//!
//! A submitted block is admitted by the ledger exactly as one arriving by gossip (quorum,
//! head, record), then gossiped; the token only says which node's officer submitted it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use huren_api::governance::{decode_hex_block, GovEquivocationView};
use huren_api::{ErrorBody, ErrorCode, GovSubmit, GovSubmitAnswer, GovernanceExport, NetworkView};
use huren_core::governance::GovChain;
use huren_core::ledger::Record;
use huren_core::Hash32;

use super::auth::authorize;
use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::config::Scope;
use crate::ledger::GovReceipt;
use crate::store::Store;

#[utoipa::path(get, path = "/v1/network", tag = "public",
    responses(
        (status = 200, description = "The network in force at this node: genesis and every governance record held (departments with their key history, retirements, quorum, regions, licence types, recognition rules)", body = NetworkView),
        (status = 429, description = "`rate_limited`", body = ErrorBody)))]
pub async fn network(State(state): State<AppState>) -> Json<NetworkView> {
    Json(NetworkView::of(&state.net()))
}

#[utoipa::path(get, path = "/v1/governance", tag = "public",
    responses(
        (status = 200, description = "The governance chain from genesis to its head, and the credentials vouched for under keys since declared compromised: what `huren gov export` writes and offline verification reads", body = GovernanceExport),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody)))]
pub async fn export(State(state): State<AppState>) -> Result<Json<GovernanceExport>, ApiError> {
    governance_export(&state).await.map(Json)
}

/// The governance export as `GET /v1/governance` serves it (and bundles carry it).
pub(crate) async fn governance_export(state: &AppState) -> Result<GovernanceExport, ApiError> {
    let gov = state.ledger.governance();
    let (vouched, equivocations) = tokio::task::spawn_blocking({
        let (gov, state) = (gov.clone(), state.clone());
        move || -> Result<_, crate::store::StoreError> {
            let equivocations = state
                .store
                .gov_evidence()?
                .into_iter()
                .map(|(height, signer, first, second)| GovEquivocationView {
                    height,
                    signer,
                    first_block: hex::encode(first),
                    second_block: hex::encode(second),
                })
                .collect::<Vec<_>>();
            Ok((state.vouched.get(&gov, &state.store)?, equivocations))
        }
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(GovernanceExport {
        genesis: gov.newest().hash(),
        height: gov.height(),
        head: gov.newest().gov_head(),
        blocks: (1..=gov.height())
            .filter_map(|h| gov.block(h))
            .map(|b| hex::encode(b.encode()))
            .collect(),
        vouched: vouched.to_vec(),
        equivocations,
    })
}

/// What the vouched list depends on: the governance height, and how far each
/// compromised department's chain reaches below its last good height here (catch-up may
/// still bring blocks below it).
type VouchedKey = (u64, Vec<(huren_core::DepartmentId, u64)>);

/// The vouched list, computed once per `VouchedKey`: a public route must not make every
/// request scan the chains again.
#[derive(Default)]
pub(crate) struct VouchedCache(Mutex<Option<(VouchedKey, Arc<Vec<Hash32>>)>>);

impl VouchedCache {
    fn get(
        &self,
        gov: &GovChain,
        store: &Store,
    ) -> Result<Arc<Vec<Hash32>>, crate::store::StoreError> {
        use huren_core::validate::ChainView;
        let net = gov.newest();
        let reach = net
            .departments()
            .iter()
            .filter_map(|d| {
                let last = net
                    .key_history(&d.id)
                    .iter()
                    .filter(|s| s.compromised)
                    .filter_map(|s| s.until_height)
                    .max()?;
                let head = store.head(&d.id).map_or(0, |h| h.height);
                Some((d.id.clone(), head.min(last)))
            })
            .collect();
        let key = (gov.height(), reach);
        let mut cached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, list)) = cached.as_ref() {
            if *k == key {
                return Ok(list.clone());
            }
        }
        let list = Arc::new(vouched(gov, store)?);
        *cached = Some((key, list.clone()));
        Ok(list)
    }
}

/// Commitments of the licences issued, at or below its last good height, in blocks
/// signed with a key since declared compromised: offline verifiers accept those
/// credentials of that key and no other.
pub(crate) fn vouched(
    gov: &GovChain,
    store: &Store,
) -> Result<Vec<Hash32>, crate::store::StoreError> {
    let net = gov.newest();
    let mut out = BTreeSet::new();
    for d in net.departments() {
        for span in net.key_history(&d.id).iter().filter(|s| s.compromised) {
            let last = span.until_height.unwrap_or(0);
            for height in span.from_height..=last {
                let Some(block) = store.block_at(&d.id, height)? else {
                    break;
                };
                let signed_with = net
                    .signing_key(&d.id, height, block.header.gov)
                    .map(|s| s.key);
                if signed_with != Some(span.key) {
                    continue;
                }
                for r in &block.header.records {
                    if let Record::Issue(i) = r {
                        out.insert(i.commitment);
                    }
                }
                if out.len() >= huren_api::governance::GOV_EXPORT_VOUCHED_MAX {
                    return Ok(out.into_iter().collect());
                }
            }
        }
    }
    Ok(out.into_iter().collect())
}

#[utoipa::path(post, path = "/v1/governance", tag = "department", request_body = GovSubmit,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The record applies (or was held already): the governance height now in force here; the block is gossiped to every node", body = GovSubmitAnswer),
        (status = 400, description = "`malformed_body`, `bad_gov_block`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or unknown token", body = ErrorBody),
        (status = 403, description = "`observer_node`, `insufficient_scope`: submitting takes a token of scope all", body = ErrorBody),
        (status = 409, description = "`gov_refused` (the reason field says why), `gov_equivocation`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<GovSubmit>,
) -> Result<Json<GovSubmitAnswer>, ApiError> {
    let officer = authorize(&state, &headers, Scope::All)?;
    let block = decode_hex_block(&body.block).map_err(|e| {
        ApiError::new(
            ErrorCode::BadGovBlock,
            e.map_or("not hex".to_owned(), |e| e.to_string()),
        )
    })?;
    let record = block.header.record.describe();
    let ledger = state.ledger.clone();
    let submitted = block.clone();
    let receipt = tokio::task::spawn_blocking(move || ledger.receive_gov(submitted))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let refused = |reason: &'static str, message: String| {
        ApiError::new(ErrorCode::GovRefused, message).with_reason(reason)
    };
    let applied = match receipt {
        GovReceipt::Applied(net) => {
            tracing::info!(%officer, height = net.gov_height(), %record, "governance record submitted and applied");
            state.metrics.governance_height.set(net.gov_height());
            true
        }
        GovReceipt::Duplicate => false,
        GovReceipt::Equivocation(_) => {
            return Err(ApiError::new(
                ErrorCode::GovEquivocation,
                format!(
                    "another record with a quorum is held at governance height {}: the departments that signed both are proven to have equivocated",
                    block.height()
                ),
            ))
        }
        GovReceipt::Ahead { height, held } => {
            return Err(refused(
                "not_on_head",
                format!("the block has governance height {height}; this node holds {held}: wait for it to catch up, or rebase"),
            ))
        }
        GovReceipt::Refused(e) => return Err(refused(e.code(), e.to_string())),
    };
    if let Some(net) = &state.network {
        net.publish_gov(&block);
    }
    let gov = state.ledger.governance();
    Ok(Json(GovSubmitAnswer {
        height: gov.height(),
        head: gov.newest().gov_head(),
        applied,
        record,
    }))
}
