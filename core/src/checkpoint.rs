//! Huren's checkpoints on top of `tlog`: what a department signs about its chain, who
//! may cosign it, when a checkpoint counts, when two of them convict their department,
//! and what a witness must check before it cosigns (docs/checkpoints.md).
//!
//! `tlog` knows the C2SP formats; this module knows the network: origins and witness
//! names derive from the genesis hash, a department signs with the issuer key in force
//! at the checkpoint's height, witnesses are the nodes genesis names (their libp2p
//! Ed25519 keys), and the quorum is in genesis. Pure: callers pass the time in.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::crypto::{Hash32, PublicKey, SecretKey};
use crate::genesis::Network;
use crate::ids::DepartmentId;
use crate::tlog::{self, Checkpoint, Note, NoteError, ALG_COSIGNATURE_V1};

/// Every origin and witness name starts with this.
pub const NAME_PREFIX: &str = "huren.network/";
/// A witness refuses a checkpoint whose time is further than this from its own clock
/// (the block time skew of `validate`).
pub const TIME_SKEW_MS_MAX: u64 = crate::validate::FUTURE_SKEW_MS_MAX;

/// The network part of every name: the prefix and the first 16 hex digits of the
/// genesis hash.
fn network_name(net: &Network) -> String {
    format!("{NAME_PREFIX}{}", &net.hash().to_hex()[..16])
}

/// The origin line (and key name) of `dept`'s checkpoints.
pub fn origin(net: &Network, dept: &DepartmentId) -> String {
    format!("{}/{dept}", network_name(net))
}

/// The key name of witness `node` (a department id or an observer's name).
pub fn witness_name(net: &Network, node: &str) -> String {
    format!("{}/witness/{node}", network_name(net))
}

/// The Ed25519 public key inside a libp2p peer id (base58 of the identity multihash of
/// the protobuf-encoded key), if it is an Ed25519 one.
pub fn peer_public_key(peer_id: &str) -> Option<PublicKey> {
    // identity multihash (0x00, length 36) of the protobuf PublicKey {Type: Ed25519 (1),
    // Data: 32 bytes}: 08 01 12 20.
    const PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    if peer_id.len() > 64 {
        return None;
    }
    let raw = bs58::decode(peer_id).into_vec().ok()?;
    let key = raw.strip_prefix(&PREFIX[..])?;
    PublicKey::from_bytes(key.try_into().ok()?).ok()
}

/// The peer id (base58) of the libp2p Ed25519 key `key`: the inverse of
/// `peer_public_key`.
pub fn peer_id_of(key: &PublicKey) -> String {
    let mut raw = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    raw.extend_from_slice(&key.to_bytes());
    bs58::encode(raw).into_string()
}

/// A witness of the network: its node name (department id or observer name), its key
/// name and its key.
#[derive(Debug, Clone)]
pub struct Witness {
    pub node: String,
    pub name: String,
    pub key: PublicKey,
}

/// The witnesses of `net`: every department's node that is not retired and every
/// observer's, whose peer id holds an Ed25519 key and whose name can be a key name.
pub fn witnesses(net: &Network) -> Vec<Witness> {
    net.peers()
        .into_iter()
        .filter_map(|(peer, role)| {
            let node = match role {
                crate::genesis::PeerRole::Department(d) => d.to_string(),
                crate::genesis::PeerRole::Observer(o) => o,
            };
            let name = witness_name(net, &node);
            let usable = !name.contains('+') && !name.chars().any(char::is_whitespace);
            Some(Witness {
                key: peer_public_key(&peer)?,
                name,
                node,
            })
            .filter(|_| usable)
        })
        .collect()
}

/// The cosignatures a checkpoint of `dept` needs: the genesis quorum, or every witness
/// other than `dept`'s own node where there are fewer.
pub fn quorum(net: &Network, dept: &DepartmentId) -> usize {
    let others = witnesses(net)
        .iter()
        .filter(|w| w.node != dept.as_str())
        .count();
    (net.checkpoint_rules().witness_quorum as usize).min(others)
}

/// What a department signs about its chain at one height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeptCheckpoint {
    pub department: DepartmentId,
    /// Records in the chain's blocks 1..=height.
    pub size: u64,
    /// The record tree's root at `size`.
    pub root: Hash32,
    pub height: u64,
    /// Entries in the status set (suspended and revoked licences) at `height`.
    pub status_count: u64,
    /// The status set's root.
    pub status_root: Hash32,
    /// When the department signed it, unix milliseconds.
    pub time_ms: u64,
}

/// Why a checkpoint, a cosignature or a piece of checkpoint evidence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("the checkpoint's origin {0:?} is not a department of this network")]
    Origin(String),
    #[error("checkpoint extension lines: {0}")]
    Extensions(&'static str),
    #[error("no key of {department} in force at height {height} signed the checkpoint")]
    Unsigned {
        department: DepartmentId,
        height: u64,
    },
    #[error("the two checkpoints do not conflict")]
    NoConflict,
    #[error("the two checkpoints are of different departments")]
    Departments,
    #[error("malformed checkpoint evidence: {0}")]
    Evidence(String),
}

impl DeptCheckpoint {
    /// The checkpoint in the C2SP format, with Huren's three extension lines.
    pub fn checkpoint(&self, net: &Network) -> Checkpoint {
        Checkpoint {
            origin: origin(net, &self.department),
            size: self.size,
            root: self.root,
            extensions: vec![
                format!("height {}", self.height),
                format!(
                    "status {} {}",
                    self.status_count,
                    B64.encode(self.status_root.0)
                ),
                format!("time {}", self.time_ms),
            ],
        }
    }

    /// The note text the department signs.
    pub fn text(&self, net: &Network) -> String {
        self.checkpoint(net).text()
    }

    /// Reads a checkpoint of one of `net`'s departments: its origin must be one, and
    /// its extension lines exactly Huren's three, in order.
    pub fn from_checkpoint(net: &Network, cp: &Checkpoint) -> Result<Self, CheckpointError> {
        let prefix = format!("{}/", network_name(net));
        let department = cp
            .origin
            .strip_prefix(&prefix)
            .and_then(|d| DepartmentId::parse(d).ok())
            .filter(|d| net.department(d).is_some())
            .ok_or_else(|| CheckpointError::Origin(cp.origin.clone()))?;
        let bad = CheckpointError::Extensions;
        let [height, status, time] = cp.extensions.as_slice() else {
            return Err(bad("expected height, status and time"));
        };
        let number = |s: Option<&str>, what| -> Result<u64, CheckpointError> {
            let s = s.ok_or(bad(what))?;
            if s.is_empty()
                || !s.bytes().all(|b| b.is_ascii_digit())
                || (s.len() > 1 && s.starts_with('0'))
            {
                return Err(bad(what));
            }
            s.parse().map_err(|_| bad(what))
        };
        let height = number(height.strip_prefix("height "), "height")?;
        let time_ms = number(time.strip_prefix("time "), "time")?;
        let (count, root) = status
            .strip_prefix("status ")
            .and_then(|s| s.split_once(' '))
            .ok_or(bad("status"))?;
        let status_count = number(Some(count), "status count")?;
        let status_root = B64
            .decode(root)
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .map(Hash32)
            .ok_or(bad("status root"))?;
        Ok(Self {
            department,
            size: cp.size,
            root: cp.root,
            height,
            status_count,
            status_root,
            time_ms,
        })
    }

    /// Whether `self` and `other` of one department cannot both be true: two trees at
    /// one height, two roots at one size, or a higher height with fewer records; or, at
    /// one height, two status sets signed at the same time, or a later one that holds
    /// more entries. (The status set is taken at the checkpoint's time: an entry with an
    /// end, a timed suspension or a superseded credential, leaves it then without a
    /// block, so at one height a later set may hold fewer entries, never more.) A
    /// department that signed both forked its chain or its status set.
    pub fn conflicts_with(&self, other: &DeptCheckpoint) -> bool {
        if self.department != other.department {
            return false;
        }
        let tree = |c: &DeptCheckpoint| (c.size, c.root);
        let status = |c: &DeptCheckpoint| (c.status_count, c.status_root);
        let (earlier, later) = if self.time_ms <= other.time_ms {
            (self, other)
        } else {
            (other, self)
        };
        let status_conflict = status(self) != status(other)
            && (self.time_ms == other.time_ms || later.status_count > earlier.status_count);
        (self.height == other.height && (tree(self) != tree(other) || status_conflict))
            || (self.size == other.size && self.root != other.root)
            || (self.height < other.height && self.size > other.size)
            || (other.height < self.height && other.size > self.size)
    }

    /// Whether `self` says more than `other`: a higher height, or the same height signed
    /// later.
    pub fn newer_than(&self, other: &DeptCheckpoint) -> bool {
        (self.height, self.time_ms) > (other.height, other.time_ms)
    }
}

/// A witness cosignature that verifies: whose, and when (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigner {
    pub node: String,
    pub time: u64,
}

/// A checkpoint its department signed, with whatever cosignatures came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: DeptCheckpoint,
    pub note: Note,
}

impl SignedCheckpoint {
    /// The department signs `cp` with `key` (its issuer key in force at `cp.height`).
    pub fn sign(net: &Network, cp: DeptCheckpoint, key: &SecretKey) -> Self {
        let mut note = Note::new(cp.text(net)).expect("a checkpoint's text is a note's text");
        note.sign(&origin(net, &cp.department), key);
        Self {
            checkpoint: cp,
            note,
        }
    }

    /// Reads a signed note as a checkpoint of `net`: its department's signature with a
    /// key in force at its height must verify. Cosignatures are kept as they came;
    /// `cosigners` says which verify.
    pub fn parse(net: &Network, input: &str) -> Result<Self, CheckpointError> {
        let note = Note::parse(input)?;
        Self::from_note(net, note)
    }

    /// As `parse`, from a note already read.
    pub fn from_note(net: &Network, note: Note) -> Result<Self, CheckpointError> {
        let cp = Checkpoint::parse(&note.text)?;
        let checkpoint = DeptCheckpoint::from_checkpoint(net, &cp)?;
        let name = origin(net, &checkpoint.department);
        let height = checkpoint.height.max(1);
        let signed = net
            .key_history(&checkpoint.department)
            .iter()
            .filter(|s| s.from_height <= height && s.until_height.is_none_or(|u| height <= u))
            .any(|s| note.verify(&name, &s.key).is_ok());
        if !signed {
            return Err(CheckpointError::Unsigned {
                department: checkpoint.department,
                height: checkpoint.height,
            });
        }
        Ok(Self { checkpoint, note })
    }

    /// The checkpoint with its department's signature only.
    pub fn bare(&self, net: &Network) -> Note {
        let name = origin(net, &self.checkpoint.department);
        Note {
            text: self.note.text.clone(),
            signatures: self
                .note
                .signatures
                .iter()
                .filter(|s| s.name == name)
                .cloned()
                .collect(),
        }
    }

    /// Adds witness `node`'s cosignature at `time` (unix seconds).
    pub fn cosign(&mut self, net: &Network, node: &str, key: &SecretKey, time: u64) {
        let name = witness_name(net, node);
        self.note.signatures.retain(|s| s.name != name);
        self.note.cosign(&name, key, time);
    }

    /// The witnesses whose cosignature verifies, other than the department's own node,
    /// one each (the newest time), newest first.
    pub fn cosigners(&self, net: &Network) -> Vec<Cosigner> {
        let mut out: Vec<Cosigner> = witnesses(net)
            .into_iter()
            .filter(|w| w.node != self.checkpoint.department.as_str())
            .filter_map(|w| {
                let time = self.note.verify_cosignature(&w.name, &w.key).ok()?;
                Some(Cosigner { node: w.node, time })
            })
            .collect();
        out.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.node.cmp(&b.node)));
        out
    }

    /// Whether it carries the cosignatures `quorum` asks of its department.
    pub fn has_quorum(&self, net: &Network) -> bool {
        self.cosigners(net).len() >= quorum(net, &self.checkpoint.department)
    }

    /// Takes the cosignatures of `other` (the same checkpoint) that verify and that this
    /// one lacks; keeps only signatures that verify. Whether anything was added.
    pub fn merge(&mut self, net: &Network, other: &SignedCheckpoint) -> bool {
        if other.note.text != self.note.text {
            return false;
        }
        let before = self.cosigners(net);
        let mut signatures = self.bare(net).signatures;
        let mut merged: Vec<Cosigner> = before.clone();
        for c in other.cosigners(net) {
            match merged.iter_mut().find(|m| m.node == c.node) {
                Some(m) if m.time >= c.time => {}
                Some(m) => m.time = c.time,
                None => merged.push(c),
            }
        }
        merged.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.node.cmp(&b.node)));
        merged.truncate(tlog::NOTE_SIGNATURES_MAX - signatures.len());
        for c in &merged {
            let name = witness_name(net, &c.node);
            let from = if before.contains(c) {
                &self.note
            } else {
                &other.note
            };
            if let Some(s) = from.signatures.iter().find(|s| {
                s.name == name && s.bytes.len() == 72 && s.bytes[..8] == c.time.to_be_bytes()
            }) {
                signatures.push(s.clone());
            }
        }
        self.note.signatures = signatures;
        self.cosigners(net) != before
    }

    /// The note as text, with every signature it carries.
    pub fn encode(&self) -> String {
        self.note.encode()
    }
}

/// A witness's signature key type id for `key`, for tools that list verifier keys.
pub fn witness_verifier_key(net: &Network, node: &str, key: &PublicKey) -> String {
    tlog::verifier_key(&witness_name(net, node), ALG_COSIGNATURE_V1, key)
}

/// What a witness knows of a chain when a checkpoint of it arrives: its own copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCopy {
    pub height: u64,
    pub size: u64,
    pub root: Hash32,
    pub status_count: u64,
    pub status_root: Hash32,
}

/// The last checkpoint a witness cosigned for an origin, kept on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cosigned {
    pub height: u64,
    pub size: u64,
    pub root: Hash32,
    pub time_ms: u64,
}

impl Cosigned {
    pub const BYTES: usize = 56;

    pub fn of(cp: &DeptCheckpoint) -> Self {
        Self {
            height: cp.height,
            size: cp.size,
            root: cp.root,
            time_ms: cp.time_ms,
        }
    }

    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut b = [0u8; Self::BYTES];
        b[..8].copy_from_slice(&self.height.to_be_bytes());
        b[8..16].copy_from_slice(&self.size.to_be_bytes());
        b[16..48].copy_from_slice(&self.root.0);
        b[48..].copy_from_slice(&self.time_ms.to_be_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b: &[u8; Self::BYTES] = b.try_into().ok()?;
        let u = |r: std::ops::Range<usize>| u64::from_be_bytes(b[r].try_into().expect("8 bytes"));
        Some(Self {
            height: u(0..8),
            size: u(8..16),
            root: Hash32(b[16..48].try_into().expect("32 bytes")),
            time_ms: u(48..56),
        })
    }
}

/// Why a witness does not cosign a checkpoint. `Behind` and `Ahead` are timing (its copy
/// is not at the checkpoint's height); the rest say the checkpoint is wrong or old.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessRefusal {
    #[error("this witness holds the chain to height {own}, below the checkpoint's {height}")]
    Behind { own: u64, height: u64 },
    #[error("this witness holds the chain to height {own}, past the checkpoint's {height}")]
    Ahead { own: u64, height: u64 },
    #[error("at height {height} this witness's copy has {own} records and root {own_root}, the checkpoint {size} and {root}")]
    TreeMismatch {
        height: u64,
        own: u64,
        own_root: String,
        size: u64,
        root: String,
    },
    #[error("at height {height} this witness's status set has {own} entries and root {own_root}, the checkpoint {count} and {root}")]
    StatusMismatch {
        height: u64,
        own: u64,
        own_root: String,
        count: u64,
        root: String,
    },
    #[error(
        "older than the checkpoint this witness cosigned last (height {height}, time {time_ms})"
    )]
    Older { height: u64, time_ms: u64 },
    #[error("inconsistent with the checkpoint this witness cosigned last (height {height}, {size} records)")]
    Inconsistent { height: u64, size: u64 },
    #[error(
        "its time {time_ms} is more than {TIME_SKEW_MS_MAX} ms from this witness's clock {now_ms}"
    )]
    Time { time_ms: u64, now_ms: u64 },
}

impl WitnessRefusal {
    /// Whether the checkpoint is wrong, not merely early, late or old: the department
    /// signed something its own chain contradicts.
    pub fn is_misbehaviour(&self) -> bool {
        matches!(
            self,
            WitnessRefusal::TreeMismatch { .. }
                | WitnessRefusal::StatusMismatch { .. }
                | WitnessRefusal::Inconsistent { .. }
        )
    }
}

/// What a witness checks before it cosigns `cp`: its copy of the chain is at the
/// checkpoint's height with the same tree and status set, the checkpoint is not older
/// than (nor inconsistent with) the last it cosigned for the origin, and its time is near
/// the witness's clock. The caller persists `Cosigned::of(cp)` before it releases the
/// cosignature.
pub fn witness_check(
    cp: &DeptCheckpoint,
    copy: &ChainCopy,
    last: Option<&Cosigned>,
    now_ms: u64,
) -> Result<(), WitnessRefusal> {
    if now_ms.abs_diff(cp.time_ms) > TIME_SKEW_MS_MAX {
        return Err(WitnessRefusal::Time {
            time_ms: cp.time_ms,
            now_ms,
        });
    }
    if let Some(last) = last {
        // One height with another tree, one size with another root, or growth in height
        // with fewer records.
        let inconsistent = (cp.height == last.height && cp.size != last.size)
            || (cp.size == last.size && cp.root != last.root)
            || (cp.height > last.height && cp.size < last.size);
        if inconsistent {
            return Err(WitnessRefusal::Inconsistent {
                height: last.height,
                size: last.size,
            });
        }
        if (cp.height, cp.time_ms) <= (last.height, last.time_ms) {
            return Err(WitnessRefusal::Older {
                height: last.height,
                time_ms: last.time_ms,
            });
        }
    }
    if copy.height < cp.height {
        return Err(WitnessRefusal::Behind {
            own: copy.height,
            height: cp.height,
        });
    }
    if copy.height > cp.height {
        return Err(WitnessRefusal::Ahead {
            own: copy.height,
            height: cp.height,
        });
    }
    if copy.size != cp.size || copy.root != cp.root {
        return Err(WitnessRefusal::TreeMismatch {
            height: cp.height,
            own: copy.size,
            own_root: copy.root.short(),
            size: cp.size,
            root: cp.root.short(),
        });
    }
    if copy.status_count != cp.status_count || copy.status_root != cp.status_root {
        return Err(WitnessRefusal::StatusMismatch {
            height: cp.height,
            own: copy.status_count,
            own_root: copy.status_root.short(),
            count: cp.status_count,
            root: cp.status_root.short(),
        });
    }
    Ok(())
}

/// Two checkpoints one department signed that cannot both be true: proof that it showed
/// different histories. Kept and gossiped like a forked chain's blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointConflict {
    pub department: DepartmentId,
    /// The two notes, with the department's signature only, in text order.
    pub first: String,
    pub second: String,
}

/// Evidence at most: two notes of a few hundred bytes.
pub const CONFLICT_BYTES_MAX: usize = 4 * 1024;

impl CheckpointConflict {
    /// The evidence that `a` and `b` convict their department, if they do.
    pub fn of(net: &Network, a: &SignedCheckpoint, b: &SignedCheckpoint) -> Option<Self> {
        if !a.checkpoint.conflicts_with(&b.checkpoint) {
            return None;
        }
        let (x, y) = (a.bare(net).encode(), b.bare(net).encode());
        let (first, second) = if x <= y { (x, y) } else { (y, x) };
        Some(Self {
            department: a.checkpoint.department.clone(),
            first,
            second,
        })
    }

    /// Checks the evidence under `net`: both notes are checkpoints its department signed,
    /// and they conflict.
    pub fn verify(&self, net: &Network) -> Result<(), CheckpointError> {
        let a = SignedCheckpoint::parse(net, &self.first)?;
        let b = SignedCheckpoint::parse(net, &self.second)?;
        if a.checkpoint.department != self.department || b.checkpoint.department != self.department
        {
            return Err(CheckpointError::Departments);
        }
        if !a.checkpoint.conflicts_with(&b.checkpoint) {
            return Err(CheckpointError::NoConflict);
        }
        Ok(())
    }

    /// CBOR: [department, first note, second note].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(
            &(self.department.as_str(), &self.first, &self.second),
            &mut out,
        )
        .expect("writing CBOR to a Vec cannot fail");
        out
    }

    /// Reads and checks evidence from its CBOR, bounded.
    pub fn decode(net: &Network, bytes: &[u8]) -> Result<Self, CheckpointError> {
        if bytes.len() > CONFLICT_BYTES_MAX {
            return Err(CheckpointError::Evidence(format!(
                "{} bytes, at most {CONFLICT_BYTES_MAX}",
                bytes.len()
            )));
        }
        let (dept, first, second): (String, String, String) =
            ciborium::from_reader(bytes).map_err(|e| CheckpointError::Evidence(e.to_string()))?;
        let department =
            DepartmentId::parse(&dept).map_err(|e| CheckpointError::Evidence(e.to_string()))?;
        let ev = Self {
            department,
            first,
            second,
        };
        ev.verify(net)?;
        Ok(ev)
    }
}

#[cfg(test)]
pub(crate) mod tests;
