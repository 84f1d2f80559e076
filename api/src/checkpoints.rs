//! Checkpoints on the wire: `GET /v1/checkpoints`, and the `as_of` of every verify report
//! (docs/checkpoints.md).

use huren_core::checkpoint::{self, CheckpointConflict, SignedCheckpoint};
use huren_core::verify::rfc3339;
use huren_core::{DepartmentId, Hash32, Network};
use serde::{Deserialize, Serialize};

/// One witness cosignature that verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CosignerView {
    /// The witness: a department id or an observer's name.
    pub witness: String,
    /// When it cosigned, RFC 3339.
    pub time: String,
}

/// A department's checkpoint and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckpointView {
    /// The signed note: the checkpoint text, a blank line, the department's signature
    /// and the witnesses' cosignatures (C2SP signed-note, tlog-checkpoint,
    /// tlog-cosignature).
    pub note: String,
    pub height: u64,
    /// Records in the department's chain to `height`.
    pub size: u64,
    pub root: Hash32,
    /// Suspended and revoked licences at `height`.
    pub status_count: u64,
    pub status_root: Hash32,
    /// When the department signed it, RFC 3339.
    pub time: String,
    /// The witnesses whose cosignature verifies, newest first.
    pub cosigners: Vec<CosignerView>,
    /// Cosignatures it needs to count.
    pub quorum: usize,
}

impl CheckpointView {
    pub fn new(net: &Network, cp: &SignedCheckpoint) -> Self {
        let c = &cp.checkpoint;
        Self {
            note: cp.encode(),
            height: c.height,
            size: c.size,
            root: c.root,
            status_count: c.status_count,
            status_root: c.status_root,
            time: rfc3339((c.time_ms / 1000) as i64),
            cosigners: cp
                .cosigners(net)
                .into_iter()
                .map(|w| CosignerView {
                    witness: w.node,
                    time: rfc3339(w.time as i64),
                })
                .collect(),
            quorum: checkpoint::quorum(net, &c.department),
        }
    }
}

/// What a node holds of one department's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DepartmentCheckpoints {
    pub department: DepartmentId,
    /// The newest checkpoint with its quorum of cosignatures: what verdicts rest on.
    pub counted: Option<CheckpointView>,
    /// The newest seen, when it is newer than `counted` (its cosignatures still coming).
    pub newest: Option<CheckpointView>,
    /// Seconds since `counted` was signed (since the node started when there is none).
    pub age_secs: u64,
}

/// Two checkpoints a department signed that cannot both be true.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConflictView {
    pub department: DepartmentId,
    /// The two signed notes; anyone can check the signatures and the conflict.
    pub first: String,
    pub second: String,
}

impl From<&CheckpointConflict> for ConflictView {
    fn from(c: &CheckpointConflict) -> Self {
        Self {
            department: c.department.clone(),
            first: c.first.clone(),
            second: c.second.clone(),
        }
    }
}

/// `GET /v1/checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckpointsAnswer {
    pub genesis: Hash32,
    pub departments: Vec<DepartmentCheckpoints>,
    /// Departments caught signing conflicting checkpoints.
    pub conflicts: Vec<ConflictView>,
}

/// The checkpoint a verdict rests on: the issuer's newest counted checkpoint the answer
/// is at or past.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AsOf {
    pub department: DepartmentId,
    pub height: u64,
    pub size: u64,
    /// When the issuer signed it, RFC 3339.
    pub time: String,
    /// Its age when the verdict was given, seconds.
    pub age_secs: u64,
    /// Witnesses that cosigned it.
    pub cosigners: usize,
    /// Where the answer came from: `node` (a node's copy of the chain) or `bundle` (an
    /// offline bundle).
    pub source: String,
    /// `fresh`, `stale` (past the bundle's soft limit: the verdict stands, the data is
    /// old) or `expired` (past the hard limit: no verdict).
    pub freshness: Freshness,
}

/// How old the data behind a verdict is against the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    Fresh,
    Stale,
    Expired,
}

impl AsOf {
    /// The `as_of` of a verdict that rests on `cp`, at unix ms `now_ms`.
    pub fn new(
        net: &Network,
        cp: &SignedCheckpoint,
        now_ms: u64,
        source: &str,
        freshness: Freshness,
    ) -> Self {
        let c = &cp.checkpoint;
        Self {
            department: c.department.clone(),
            height: c.height,
            size: c.size,
            time: rfc3339((c.time_ms / 1000) as i64),
            age_secs: now_ms.saturating_sub(c.time_ms) / 1000,
            cosigners: cp.cosigners(net).len(),
            source: source.to_owned(),
            freshness,
        }
    }
}
