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
    /// The `as_of` of a verdict that rests on checkpoint `c` with `cosigners` witness
    /// cosignatures (counted once, where the checkpoint is kept: checking them per
    /// verification would cost more than the verification), at unix ms `now_ms`.
    pub fn new(
        c: &huren_core::checkpoint::DeptCheckpoint,
        cosigners: usize,
        now_ms: u64,
        source: &str,
        freshness: Freshness,
    ) -> Self {
        Self {
            department: c.department.clone(),
            height: c.height,
            size: c.size,
            time: rfc3339((c.time_ms / 1000) as i64),
            age_secs: now_ms.saturating_sub(c.time_ms) / 1000,
            cosigners,
            source: source.to_owned(),
            freshness,
        }
    }
}

/// A record's inclusion in its department's record tree (`core::proof`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordProofView {
    /// The leaf data, hex: CBOR [department height, index in the block, record].
    pub leaf: String,
    pub index: u64,
    pub path: Vec<Hash32>,
}

/// A status set entry's inclusion in the set's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusProofView {
    /// The 18-byte entry, hex: key, status byte, reason byte.
    pub entry: String,
    pub index: u64,
    pub path: Vec<Hash32>,
}

impl StatusProofView {
    fn of(s: &huren_core::proof::StatusInclusion) -> Self {
        Self {
            entry: hex::encode(s.entry),
            index: s.index,
            path: s.path.clone(),
        }
    }
}

/// `POST /v1/verify?proof=1`: what a verifier that does not trust the node checks the
/// answer against (`huren verify --proof`, docs/checkpoints.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyProof {
    /// The issuer's counted checkpoint: the signed note with its cosignatures.
    pub checkpoint: String,
    /// The licence's issue record in the checkpoint's tree; `null` when the checkpoint
    /// does not hold it (issued after it, or never).
    pub issue: Option<RecordProofView>,
    /// The licence's entry in the status set, or its neighbours there.
    pub status: Vec<StatusProofView>,
    /// The presented credential's place in the same set: its entry when it was
    /// superseded (renewed, reissued or amended since), or its neighbours. Absent from
    /// nodes of earlier releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialProofView>,
}

/// Where a credential's key (`tlog::credential_status_key`) is in the status set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialProofView {
    /// The 16-byte key, hex.
    pub key: String,
    /// Its entry, or its neighbours.
    pub place: Vec<StatusProofView>,
}

/// Why a proof was refused as it came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofShapeError {
    #[error("the checkpoint: {0}")]
    Checkpoint(huren_core::checkpoint::CheckpointError),
    #[error("{0} is not hex")]
    Hex(&'static str),
    #[error("a status entry is not 18 bytes")]
    EntryLength,
    #[error("more than {0} hashes in a path")]
    PathLength(usize),
}

/// Hashes in one inclusion path at most: a tree of 2^64 leaves.
const PATH_HASHES_MAX: usize = 64;

impl VerifyProof {
    pub fn of(p: &huren_core::proof::LicenceProof) -> Self {
        Self {
            checkpoint: p.checkpoint.encode(),
            issue: p.issue.as_ref().map(|i| RecordProofView {
                leaf: hex::encode(&i.leaf),
                index: i.index,
                path: i.path.clone(),
            }),
            status: p.status.iter().map(StatusProofView::of).collect(),
            credential: p
                .credential
                .as_ref()
                .map(|(key, place)| CredentialProofView {
                    key: hex::encode(key),
                    place: place.iter().map(StatusProofView::of).collect(),
                }),
        }
    }

    /// The proof as `core::proof` checks it, its checkpoint's department signature
    /// checked under `net`; bounded.
    pub fn read(&self, net: &Network) -> Result<huren_core::proof::LicenceProof, ProofShapeError> {
        let path = |p: &Vec<Hash32>| {
            if p.len() > PATH_HASHES_MAX {
                Err(ProofShapeError::PathLength(PATH_HASHES_MAX))
            } else {
                Ok(p.clone())
            }
        };
        if self.status.len() > 2 || self.credential.as_ref().is_some_and(|c| c.place.len() > 2) {
            return Err(ProofShapeError::PathLength(2));
        }
        let entries = |v: &[StatusProofView]| {
            v.iter()
                .map(|s| {
                    let bytes =
                        hex::decode(&s.entry).map_err(|_| ProofShapeError::Hex("an entry"))?;
                    Ok(huren_core::proof::StatusInclusion {
                        entry: bytes.try_into().map_err(|_| ProofShapeError::EntryLength)?,
                        index: s.index,
                        path: path(&s.path)?,
                    })
                })
                .collect::<Result<Vec<_>, ProofShapeError>>()
        };
        let credential = match &self.credential {
            None => None,
            Some(c) => {
                let key: [u8; 16] = hex::decode(&c.key)
                    .ok()
                    .and_then(|k| k.try_into().ok())
                    .ok_or(ProofShapeError::Hex("the credential key"))?;
                Some((key, entries(&c.place)?))
            }
        };
        Ok(huren_core::proof::LicenceProof {
            checkpoint: SignedCheckpoint::parse(net, &self.checkpoint)
                .map_err(ProofShapeError::Checkpoint)?,
            issue: match &self.issue {
                None => None,
                Some(i) => Some(huren_core::proof::RecordInclusion {
                    leaf: hex::decode(&i.leaf).map_err(|_| ProofShapeError::Hex("the leaf"))?,
                    index: i.index,
                    path: path(&i.path)?,
                }),
            },
            status: entries(&self.status)?,
            credential,
        })
    }
}
