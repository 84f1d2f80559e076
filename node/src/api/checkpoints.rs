//! `GET /v1/checkpoints`, and the freshness every verify report carries: the issuer's
//! counted checkpoint the answer rests on, and whether it is too old to vouch for
//! (docs/checkpoints.md).

use axum::extract::State;
use axum::Json;
use huren_api::{
    AsOf, CheckpointView, CheckpointsAnswer, ConflictView, DepartmentCheckpoints, ErrorBody,
    Freshness,
};
use huren_core::ledger::Record;
use huren_core::proof::{LicenceProof, RecordInclusion};
use huren_core::validate::ChainView as _;
use huren_core::verify::Stale;
use huren_core::{DepartmentId, LicenceId};

use super::AppState;

#[utoipa::path(get, path = "/v1/checkpoints", tag = "public",
    responses(
        (status = 200, description = "Every department's newest checkpoint with its quorum of witness cosignatures (and a newer one still gathering them), and departments caught signing conflicting checkpoints", body = CheckpointsAnswer),
        (status = 429, description = "`rate_limited`", body = ErrorBody)))]
pub async fn checkpoints(State(state): State<AppState>) -> Json<CheckpointsAnswer> {
    let net = state.net();
    let departments = net
        .departments()
        .iter()
        .map(|d| {
            let k = state.checkpoints.known(&d.id);
            let newest = k.newest.filter(|n| {
                k.counted
                    .as_ref()
                    .is_none_or(|c| c.note.text != n.note.text)
            });
            DepartmentCheckpoints {
                department: d.id.clone(),
                counted: k.counted.as_ref().map(|c| CheckpointView::new(&net, c)),
                newest: newest.as_ref().map(|c| CheckpointView::new(&net, c)),
                age_secs: state.checkpoints.age_ms(&d.id) / 1000,
            }
        })
        .collect();
    Json(CheckpointsAnswer {
        genesis: net.hash(),
        departments,
        conflicts: state
            .checkpoints
            .conflicts()
            .iter()
            .map(ConflictView::from)
            .collect(),
    })
}

/// What a verdict about a licence of `dept` rests on here, and whether this node is too
/// far out of touch with `dept` to vouch for it: no counted checkpoint of it for
/// `checkpoint_age_ms_max`. The node's own department is never stale to itself.
pub(crate) fn freshness(state: &AppState, dept: &DepartmentId) -> (Option<AsOf>, Option<Stale>) {
    let now = state.clock.now_ms();
    let counted = state.checkpoints.counted(dept);
    let own = state.department.as_ref() == Some(dept);
    let age_ms = now.saturating_sub(
        counted
            .as_ref()
            .map_or(state.checkpoints.started_ms, |(c, _)| c.time_ms),
    );
    let stale =
        (!own && age_ms > state.limits.checkpoint_age_ms_max).then_some(Stale::Checkpoint {
            age_secs: age_ms / 1000,
        });
    let as_of = counted.map(|(c, cosigners)| {
        let freshness = if stale.is_some() {
            Freshness::Stale
        } else {
            Freshness::Fresh
        };
        AsOf::new(&c, cosigners, now, "node", freshness)
    });
    (as_of, stale)
}

/// The proof of what this node knows of licence `id` as of its issuer's counted
/// checkpoint (`core::proof`), or why it cannot give one. Reads the store: run it off the
/// async workers.
pub(crate) fn prove(
    state: &AppState,
    id: &LicenceId,
    commitment: &huren_core::Hash32,
) -> Result<LicenceProof, String> {
    let dept = id.department();
    let checkpoint = state.checkpoints.known(dept).counted.ok_or_else(|| {
        format!("no checkpoint of {dept} with its witness quorum is held here yet")
    })?;
    let cp = &checkpoint.checkpoint;
    let snapshot = state.checkpoints.snapshot(dept).ok_or_else(|| {
        format!(
            "this node holds no status set of {dept} at its checkpoint (height {}); ask again within a minute",
            cp.height
        )
    })?;
    let issue = match state.store.licence(id) {
        Some(s) if s.issued_height <= cp.height => Some(issue_inclusion(
            state,
            id,
            s.issued_height,
            s.issued_index,
            cp.size,
        )?),
        _ => None,
    };
    let credential_key = huren_core::tlog::credential_status_key(commitment);
    Ok(LicenceProof {
        issue,
        status: snapshot.tree().place(id),
        credential: Some((credential_key, snapshot.tree().place_key(credential_key))),
        checkpoint,
    })
}

/// The inclusion of `id`'s issue record, record `index` of its block at `height`, in the
/// tree of `size`. Only that record is read out of the block (a block holds thousands);
/// a state written before the index was kept (`u32::MAX`) has its block read whole.
fn issue_inclusion(
    state: &AppState,
    id: &LicenceId,
    height: u64,
    index: u32,
    size: u64,
) -> Result<RecordInclusion, String> {
    let dept = id.department();
    let internal = |e: String| {
        tracing::error!(department = %dept, height, error = %e, "making an inclusion proof");
        "this node could not read its own chain to prove it".to_owned()
    };
    // The record that brought the credential in force: the issue, or a renew, reissue or
    // amend since.
    let is_issue = |r: &Record| r.licence_id() == id && r.commitment().is_some();
    let known = match usize::try_from(index).ok().filter(|_| index != u32::MAX) {
        None => None,
        Some(i) => state
            .store
            .record_at(dept, height, i)
            .map_err(|e| internal(e.to_string()))?
            .filter(is_issue)
            .map(|r| (i, r)),
    };
    let (i, record) = match known {
        Some(found) => found,
        None => state
            .store
            .block_at(dept, height)
            .map_err(|e| internal(e.to_string()))?
            .ok_or_else(|| internal("the issuing block is missing".into()))?
            .header
            .records
            .into_iter()
            .enumerate()
            .find(|(_, r)| is_issue(r))
            .ok_or_else(|| internal("the issuing block has no issue of it".into()))?,
    };
    let record = &record;
    let start = state
        .store
        .tree_size_at(dept, height - 1)
        .map_err(|e| internal(e.to_string()))?
        .ok_or_else(|| internal("no tree size for the block before".into()))?;
    let index = start + i as u64;
    Ok(RecordInclusion {
        leaf: record.leaf(height, i),
        index,
        path: state
            .store
            .inclusion_proof(dept, index, size)
            .map_err(|e| internal(e.to_string()))?,
    })
}
