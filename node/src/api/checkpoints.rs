//! `GET /v1/checkpoints`, and the freshness every verify report carries: the issuer's
//! counted checkpoint the answer rests on, and whether it is too old to vouch for
//! (docs/checkpoints.md).

use axum::extract::State;
use axum::Json;
use huren_api::{
    AsOf, CheckpointView, CheckpointsAnswer, ConflictView, DepartmentCheckpoints, ErrorBody,
    Freshness,
};
use huren_core::verify::Stale;
use huren_core::DepartmentId;

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
    let counted = state.checkpoints.known(dept).counted;
    let own = state.department.as_ref() == Some(dept);
    let age_ms = state.checkpoints.age_ms(dept);
    let stale =
        (!own && age_ms > state.limits.checkpoint_age_ms_max).then_some(Stale::Checkpoint {
            age_secs: age_ms / 1000,
        });
    let as_of = counted.map(|c| {
        let freshness = if stale.is_some() {
            Freshness::Stale
        } else {
            Freshness::Fresh
        };
        AsOf::new(&state.net(), &c, now, "node", freshness)
    });
    (as_of, stale)
}
