//! Proofs for a verifier that does not trust its node (docs/checkpoints.md): with an
//! answer about a licence, a node gives the issuer's cosigned checkpoint, the inclusion
//! of the licence's issue record in the issuer's record tree, and the licence's place in
//! the issuer's status set (its entry, or the two entries around where it would be).
//! `check` verifies all of it against the verifier's own network and says what is proven
//! as of that checkpoint; `StatusTree` is how a node makes the status part.
//!
//! Pure: no I/O, no clock. A proof that does not add up is an error naming the rule it
//! broke, never a verdict.

use crate::checkpoint::{self, SignedCheckpoint};
use crate::crypto::Hash32;
use crate::genesis::Network;
use crate::ids::LicenceId;
use crate::ledger::Record;
use crate::tlog::{self, HashReader, TlogError};
use crate::validate::LicenceStatus;

/// A record's inclusion in its department's record tree at the checkpoint's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInclusion {
    /// The leaf data: CBOR [department height, index in the block, record].
    pub leaf: Vec<u8>,
    /// The leaf's index in the tree.
    pub index: u64,
    pub path: Vec<Hash32>,
}

/// A status set entry's inclusion in the set's tree at the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusInclusion {
    pub entry: [u8; 18],
    pub index: u64,
    pub path: Vec<Hash32>,
}

/// What a node gives with an answer about one licence.
#[derive(Debug, Clone)]
pub struct LicenceProof {
    pub checkpoint: SignedCheckpoint,
    /// `None` when the licence is not in the checkpoint (issued after it, or never).
    pub issue: Option<RecordInclusion>,
    /// The licence's entry (it is suspended or revoked), or its neighbours in key order
    /// (it is not): none when the set is empty, one at either end, two in between.
    pub status: Vec<StatusInclusion>,
    /// The presented credential's place in the same set (`tlog::credential_status_key`),
    /// as `status` places the licence: its entry when it was superseded, or its
    /// neighbours. With the key it places; `None` from a node that gave none.
    pub credential: Option<([u8; 16], Vec<StatusInclusion>)>,
}

/// What a proof establishes as of its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenLicence {
    /// The record that brought the licence's credential in force (its issue, or a later
    /// renew, reissue or amend) and the department height that carried it; `None`: the
    /// checkpoint does not show it.
    pub issued: Option<(u64, Record)>,
    /// The licence's status in the issuer's status set: active when it is not there.
    pub status: LicenceStatus,
    /// The credential key the proof placed, and whether the set holds it as superseded;
    /// `None` when the proof places no credential.
    pub credential: Option<([u8; 16], bool)>,
}

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the checkpoint is of {got}, the licence of {expected}")]
    Department { got: String, expected: String },
    #[error("the checkpoint carries {got} witness cosignatures; it needs {quorum}")]
    Quorum { got: usize, quorum: usize },
    #[error("the issue record: {0}")]
    Leaf(String),
    #[error("the issue record is not a record of {0} that brings in a credential")]
    NotTheIssue(LicenceId),
    #[error("the issue record is at height {height}, past the checkpoint's {checkpoint}")]
    PastCheckpoint { height: u64, checkpoint: u64 },
    #[error("the issue record is not in the checkpoint's tree: {0}")]
    Inclusion(TlogError),
    #[error("a status set entry is not in the checkpoint's status set: {0}")]
    StatusInclusion(TlogError),
    #[error("the status set entries do not place the licence: {0}")]
    Placement(&'static str),
    #[error("a status set entry has status bytes {0:?}, which are not a suspension or revocation")]
    StatusBytes([u8; 2]),
}

/// Checks `proof` about licence `id` under `net`: a checkpoint of the licence's
/// department with its witness quorum, the issue record (if given) in its tree, and the
/// licence's place in its status set. What that proves, as of the checkpoint.
pub fn check(
    net: &Network,
    id: &LicenceId,
    proof: &LicenceProof,
) -> Result<ProvenLicence, ProofError> {
    let cp = &proof.checkpoint.checkpoint;
    if &cp.department != id.department() {
        return Err(ProofError::Department {
            got: cp.department.to_string(),
            expected: id.department().to_string(),
        });
    }
    let (got, quorum) = (
        proof.checkpoint.cosigners(net).len(),
        checkpoint::quorum(net, &cp.department),
    );
    if got < quorum {
        return Err(ProofError::Quorum { got, quorum });
    }
    let issued = match &proof.issue {
        None => None,
        Some(inc) => {
            let (height, _, record) =
                Record::from_leaf(&inc.leaf).map_err(|e| ProofError::Leaf(e.to_string()))?;
            if record.licence_id() != id || record.commitment().is_none() {
                return Err(ProofError::NotTheIssue(id.clone()));
            }
            if height > cp.height {
                return Err(ProofError::PastCheckpoint {
                    height,
                    checkpoint: cp.height,
                });
            }
            tlog::verify_inclusion(
                &tlog::leaf_hash(&inc.leaf),
                inc.index,
                cp.size,
                &inc.path,
                &cp.root,
            )
            .map_err(ProofError::Inclusion)?;
            Some((height, record))
        }
    };
    let status = match place(
        tlog::status_key(id),
        cp.status_count,
        &cp.status_root,
        &proof.status,
    )? {
        None => LicenceStatus::Active,
        Some(bytes) => match LicenceStatus::from_bytes(bytes) {
            Some(s) if s != LicenceStatus::Active => s,
            _ => return Err(ProofError::StatusBytes(bytes)),
        },
    };
    let credential = match &proof.credential {
        None => None,
        Some((key, entries)) => {
            let superseded = match place(*key, cp.status_count, &cp.status_root, entries)? {
                None => false,
                Some(bytes) if tlog::is_superseded(bytes) => true,
                Some(bytes) => return Err(ProofError::StatusBytes(bytes)),
            };
            Some((*key, superseded))
        }
    };
    Ok(ProvenLicence {
        issued,
        status,
        credential,
    })
}

/// The status bytes of `key`'s entry in the status set of `size` entries and `root`, or
/// `None` when `entries` show it is not there.
fn place(
    key: [u8; 16],
    size: u64,
    root: &Hash32,
    entries: &[StatusInclusion],
) -> Result<Option<[u8; 2]>, ProofError> {
    for e in entries {
        tlog::verify_inclusion(&tlog::leaf_hash(&e.entry), e.index, size, &e.path, root)
            .map_err(ProofError::StatusInclusion)?;
    }
    let k = |e: &StatusInclusion| -> [u8; 16] {
        e.entry[..16]
            .try_into()
            .expect("an entry starts with its 16-byte key")
    };
    let bad = ProofError::Placement;
    match entries {
        [] if size == 0 => Ok(None),
        [] => Err(bad("no entry given, and the set is not empty")),
        [e] if k(e) == key => Ok(Some([e.entry[16], e.entry[17]])),
        [e] if e.index == 0 && key < k(e) => Ok(None),
        [e] if e.index + 1 == size && key > k(e) => Ok(None),
        [_] => Err(bad(
            "one entry, neither the licence's nor an end of the set past it",
        )),
        [a, b] if a.index + 1 == b.index && k(a) < key && key < k(b) => Ok(None),
        [_, _] => Err(bad(
            "two entries that are not neighbours around the licence",
        )),
        _ => Err(bad("more than two entries")),
    }
}

/// A status set with every subtree hash, so that a node proves any licence's place in it
/// with a few lookups: built once per checkpoint (2n hashes), then read.
#[derive(Debug, Clone)]
pub struct StatusTree {
    entries: Vec<[u8; 18]>,
    /// `levels[l][i]`: the hash of the complete subtree of 2^l entries at index i.
    levels: Vec<Vec<Hash32>>,
}

impl HashReader for StatusTree {
    fn stored(&self, level: u8, index: u64) -> Option<Hash32> {
        self.levels
            .get(level as usize)?
            .get(usize::try_from(index).ok()?)
            .copied()
    }
}

impl StatusTree {
    /// The tree of `entries`, which must be sorted by key (a status set as the store
    /// keeps it).
    pub fn new(entries: Vec<[u8; 18]>) -> Self {
        let mut levels: Vec<Vec<Hash32>> =
            vec![entries.iter().map(|e| tlog::leaf_hash(e)).collect()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("a level exists");
            let next = below
                .chunks_exact(2)
                .map(|p| tlog::node_hash(&p[0], &p[1]))
                .collect();
            levels.push(next);
        }
        Self { entries, levels }
    }

    pub fn entries(&self) -> &[[u8; 18]] {
        &self.entries
    }

    /// The set's size and root.
    pub fn root(&self) -> (u64, Hash32) {
        let n = self.entries.len() as u64;
        let root = tlog::root(n, self).expect("every complete subtree is held");
        (n, root)
    }

    fn inclusion(&self, index: usize) -> StatusInclusion {
        let n = self.entries.len() as u64;
        StatusInclusion {
            entry: self.entries[index],
            index: index as u64,
            path: tlog::inclusion_proof(index as u64, n, self)
                .expect("every complete subtree is held"),
        }
    }

    /// The licence's place: its entry, or its neighbours (see `LicenceProof::status`).
    pub fn place(&self, id: &LicenceId) -> Vec<StatusInclusion> {
        self.place_key(tlog::status_key(id))
    }

    /// A key's place: its entry, or its neighbours.
    pub fn place_key(&self, key: [u8; 16]) -> Vec<StatusInclusion> {
        match self.entries.binary_search_by(|e| e[..16].cmp(&key[..])) {
            Ok(i) => vec![self.inclusion(i)],
            Err(i) => {
                let below = i.checked_sub(1).map(|j| self.inclusion(j));
                let above = (i < self.entries.len()).then(|| self.inclusion(i));
                below.into_iter().chain(above).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests;
