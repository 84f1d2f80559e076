//! `GET /v1/bundle`: the offline bundle a service window downloads (every department's
//! counted checkpoint and its status set at that checkpoint, and the governance export),
//! or with `?since=` the delta from the bundle the window holds (docs/checkpoints.md).
//!
//! The node serves only what it can prove: a department whose status set it did not
//! take at its counted checkpoint's height is left out of a full bundle (the window keeps
//! what it has; a newer checkpoint comes within `checkpoint_interval_ms`). A delta's
//! changes are exact: the window's set with them applied must hash to the new
//! checkpoint's status root, which the window checks.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use huren_api::{ErrorBody, ErrorCode};
use huren_core::bundle::{Bundle, BundleDepartment, Delta, DeltaDepartment, ENTRY_BYTES};
use huren_core::ledger::Record;
use huren_core::validate::LicenceStatus;
use huren_core::{tlog, Block, DepartmentId};
use serde::Deserialize;

use super::error::ApiError;
use super::AppState;

/// `since` at most: a department id and a height per department.
const SINCE_CHARS_MAX: usize = 64 * 1024;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BundleQuery {
    /// The version of the bundle held: `department:height` for each department it has a
    /// checkpoint of, comma-separated (`huren bundle` sends it). Absent: a full bundle.
    pub since: Option<String>,
}

/// Reads `since`: department ids known to the network, each once, with a height.
fn parse_since(state: &AppState, since: &str) -> Result<BTreeMap<DepartmentId, u64>, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::BadQuery, m);
    if since.len() > SINCE_CHARS_MAX {
        return Err(bad(format!(
            "since is longer than {SINCE_CHARS_MAX} characters"
        )));
    }
    let net = state.net();
    let mut out = BTreeMap::new();
    for part in since.split(',').filter(|p| !p.is_empty()) {
        let (d, h) = part
            .split_once(':')
            .ok_or_else(|| bad(format!("since: {part:?} is not department:height")))?;
        let d = DepartmentId::parse(d).map_err(|e| bad(format!("since: {e}")))?;
        if net.department(&d).is_none() {
            return Err(bad(format!(
                "since: {d} is not a department of this network"
            )));
        }
        let h: u64 = h
            .parse()
            .map_err(|_| bad(format!("since: {h:?} is not a height")))?;
        if out.insert(d.clone(), h).is_some() {
            return Err(bad(format!("since: {d} is given twice")));
        }
    }
    Ok(out)
}

#[utoipa::path(get, path = "/v1/bundle", tag = "public",
    params(BundleQuery),
    responses(
        (status = 200, description = "The offline bundle (CBOR, `huren-bundle/v1`), or with `since` the delta from that version (`huren-bundle-delta/v1`); docs/checkpoints.md", content_type = "application/cbor"),
        (status = 400, description = "`bad_query`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody)))]
pub async fn bundle(
    State(state): State<AppState>,
    Query(q): Query<BundleQuery>,
) -> Result<Response, ApiError> {
    let since = q
        .since
        .as_deref()
        .map(|s| parse_since(&state, s))
        .transpose()?;
    let export = super::governance::governance_export(&state).await?;
    let governance = (export.height > 0)
        .then(|| serde_json::to_vec(&export))
        .transpose()
        .map_err(ApiError::internal)?;
    let body = tokio::task::spawn_blocking(move || build(&state, since, governance))
        .await
        .map_err(ApiError::internal)??;
    Ok(([(header::CONTENT_TYPE, "application/cbor")], body).into_response())
}

fn build(
    state: &AppState,
    since: Option<BTreeMap<DepartmentId, u64>>,
    governance: Option<Vec<u8>>,
) -> Result<Vec<u8>, ApiError> {
    let net = state.net();
    let made_ms = state.clock.now_ms();
    let mut full = Vec::new();
    let mut delta = Vec::new();
    for d in net.departments() {
        let Some(counted) = state.checkpoints.known(&d.id).counted else {
            continue;
        };
        let Some(snapshot) = state.checkpoints.snapshot(&d.id) else {
            tracing::debug!(department = %d.id, "no status set at its counted checkpoint: left out of the bundle");
            continue;
        };
        let height = counted.checkpoint.height;
        match &since {
            None => full.push(BundleDepartment {
                checkpoint: counted.encode(),
                status: snapshot.entries.to_vec(),
            }),
            Some(since) => {
                let from = since.get(&d.id).copied().unwrap_or(0);
                if from > height {
                    // The window holds a newer checkpoint than this node: it keeps it.
                    continue;
                }
                let changes = if from == 0 {
                    snapshot.entries.to_vec()
                } else {
                    let at = (counted.checkpoint.time_ms / 1000) as i64;
                    changes(state, &d.id, from, height, &snapshot.entries, at)?
                };
                delta.push(DeltaDepartment {
                    from_height: from,
                    checkpoint: counted.encode(),
                    changes,
                });
            }
        }
    }
    let genesis = net.hash();
    Ok(match since {
        None => Bundle {
            genesis,
            made_ms,
            governance,
            departments: full,
        }
        .encode(),
        Some(_) => Delta {
            genesis,
            made_ms,
            governance,
            departments: delta,
        }
        .encode(),
    })
}

/// The changes from `dept`'s status set at height `from` to `set` (its set at `to`,
/// taken at `at`, the counted checkpoint's time in unix seconds): every key a record in
/// blocks `from+1..=to` may have changed (its licence's; for a renewal, reissue or
/// amendment also the credential it superseded, found in the licence's history), and
/// every kept entry past its end at `at` (it left the set without a block), each as it
/// stands in `set`, or a removal. A removal of a key the window's set does not hold
/// changes nothing there, and the result is checked against the checkpoint's root: a
/// delta that does not add up is refused and the window fetches a whole bundle.
fn changes(
    state: &AppState,
    dept: &DepartmentId,
    from: u64,
    to: u64,
    set: &[[u8; ENTRY_BYTES]],
    at: i64,
) -> Result<Vec<[u8; ENTRY_BYTES]>, ApiError> {
    let mut touched: BTreeSet<[u8; 16]> = BTreeSet::new();
    let mut next = from + 1;
    while next <= to {
        let blocks = state
            .store
            .blocks_from(dept, next, 256, 16 << 20)
            .map_err(ApiError::internal)?;
        if blocks.is_empty() {
            break;
        }
        for bytes in &blocks {
            let b = Block::decode(bytes).map_err(ApiError::internal)?;
            if b.height() > to {
                next = to + 1;
                break;
            }
            next = b.height() + 1;
            for (index, r) in b.header.records.iter().enumerate() {
                let id = r.licence_id();
                if id.department() != dept {
                    continue;
                }
                touched.insert(tlog::status_key(id));
                if r.commitment().is_some() && !matches!(r, Record::Issue(_)) {
                    if let Some(c) = replaced(state, id, b.height(), index as u32)? {
                        touched.insert(tlog::credential_status_key(&c));
                    }
                }
            }
        }
    }
    for (e, until) in state.store.status_kept(dept).map_err(ApiError::internal)? {
        if until.is_some_and(|u| u <= at) {
            touched.insert(e[..16].try_into().expect("16 bytes"));
        }
    }
    let active = LicenceStatus::Active.to_bytes();
    let mut out = Vec::with_capacity(touched.len());
    for key in touched {
        match set.binary_search_by(|e| e[..16].cmp(&key)) {
            Ok(i) => out.push(set[i]),
            Err(_) => {
                let mut e = [0u8; ENTRY_BYTES];
                e[..16].copy_from_slice(&key);
                e[16..].copy_from_slice(&active);
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// The credential the record at (`height`, `index`) of licence `id` replaced: the one the
/// licence's newest earlier record brought in.
fn replaced(
    state: &AppState,
    id: &huren_core::LicenceId,
    height: u64,
    index: u32,
) -> Result<Option<huren_core::Hash32>, ApiError> {
    let events = state
        .store
        .history_events(id, state.limits.history_records_max)
        .map_err(ApiError::internal)?;
    Ok(events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| (e.height, e.index) < (height, index))
        .filter_map(|e| e.record.commitment())
        .next_back())
}
