//! The ledger store: sled on disk behind a narrow interface.
//!
//! The rest of the node asks for "append this validated block", "status of this licence",
//! "blocks of department D from height h"; it never sees a sled tree. Every block is
//! appended in one sled transaction across all trees and flushed (fsync) before `append`
//! returns, so whatever the caller acknowledges afterwards survives a crash.
//!
//! The store knows sled and durability, nothing of the rules: it appends only a
//! `ValidatedBlock`, which the ledger (`crate::ledger`) obtained from `huren_core::validate`
//! against this store's read view (`ChainView`), and it keeps equivocation evidence the
//! ledger proved. It must never decide whether a block or a piece of evidence is valid.
//!
//! Trees (keys → values):
//! - `blocks`: block hash → canonical block bytes (the source of truth);
//! - `chain`: department ‖ 0x00 ‖ height (u64 BE) → block hash;
//! - `heads`: department → height ‖ hash ‖ time_ms ‖ gov;
//! - `licences`: licence id → `LicenceState` (about 58 bytes, see `encode_state`);
//! - `history`: licence id ‖ 0x00 ‖ height (u64 BE) ‖ index (u32 BE) → the department
//!   whose chain carried the record (empty: the licence's own): every record of every
//!   licence that has more than its issue (then its issue too), for
//!   `GET /v1/licences/{id}/history` and the "as of" answers. A licence with only its
//!   issue has no entry (most licences, most of their lives): its state says where the
//!   issue record is;
//! - `transfers`: origin licence id → the department it was transferred to ‖ 0x00 ‖ the
//!   id it was accepted as there (empty until then);
//! - `credentials`: licence id → COSE bytes of credentials this department issued
//!   (private: never gossiped or served publicly);
//! - `evidence`: department ‖ 0x00 ‖ height → equivocation evidence (`core::evidence`);
//! - `merkle`: the stored hashes of each department's record tree (`core::tlog`,
//!   docs/checkpoints.md), written with each block, one entry per block:
//!   department ‖ 0x00 ‖ 0xfd ‖ tree size after the block (u64 BE) → tree size before it
//!   (u64 BE) ‖ the hashes its leaves added (`BLOCK_HASHES_LEVEL`); data written before
//!   that holds one entry per hash, department ‖ 0x00 ‖ level (u8) ‖ index (u64 BE) → hash,
//!   read as a fallback. Per block by height also its tree size (`BLOCK_END_LEVEL`) and
//!   record offsets (`RECORD_OFFSETS_LEVEL`). `meta` `tree/<department>` → its size in
//!   records (u64 BE);
//! - `status`: department ‖ 0x00 ‖ 16-byte key → two status bytes, then for an entry
//!   that leaves the set by itself its end (unix seconds, i64 BE): each suspended,
//!   revoked or transferred licence (`tlog::status_key`; a timed suspension ends) and each
//!   superseded credential (`tlog::credential_status_key`; ends at its expiry). The
//!   department's status set at a time is the entries not past their end, in the order
//!   its root is taken (docs/checkpoints.md);
//! - `governance`: governance height (u64 BE) → governance block (`core::governance`), the
//!   source of truth of the network in force (the ledger replays it at start);
//! - `gov_evidence`: governance height ‖ signer → the two governance blocks it signed at
//!   that height (each length-prefixed, u32 BE);
//! - `meta`: `genesis` → genesis hash; `serial/<type>` → next serial (u64 BE);
//!   `licences` → entries in `licences` (u64 BE), kept with every block, because sled
//!   counts a tree by reading all of it and a node opened with a large ledger must not.
//!
//! `chain`, `heads`, `licences`, `history`, `transfers`, `merkle` and `status` are
//! indexes: `check::run` rebuilds them from `blocks`.
//!
//! Architecture Invariant: only this module knows sled.

use std::path::Path;

use huren_core::governance::GovBlock;
use huren_core::ledger::Record;
use huren_core::ledger::{Block, CodecError};
use huren_core::tlog;
use huren_core::validate::{
    ChainView, Head, LicenceState, LicenceStatus, Transfer, TransferEffect, ValidatedBlock,
};
use huren_core::{DepartmentId, Hash32, KeyId, LicenceId, LicenceType, Network};
use huren_core::{Equivocation, EvidenceError};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("data directory belongs to another network (genesis {found}, expected {expected})")]
    WrongNetwork { found: String, expected: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(#[from] Corruption),
    /// The transaction committed but the flush (fsync) failed: what is on disk is
    /// unknown. The block must not be acknowledged, published or built upon.
    #[error("flushing to disk failed after the write (the state on disk is unknown): {0}")]
    Flush(sled::Error),
}

/// What is wrong with data read back from the store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Corruption {
    #[error("block {hash}: {source}")]
    Block {
        /// Hex of the key the block is stored under.
        hash: String,
        source: CodecError,
    },
    #[error("chain of {0} names a missing block")]
    ChainNamesMissingBlock(DepartmentId),
    #[error("head of {department} is past {height} but the block is missing")]
    MissingBlock {
        department: DepartmentId,
        height: u64,
    },
    #[error("head key {0} is not a department id")]
    HeadKey(String),
    #[error("head of {0}")]
    Head(DepartmentId),
    #[error("serial counter of {0}")]
    Serial(LicenceType),
    #[error("the licence count in meta is not a u64")]
    LicenceCount,
    #[error("equivocation evidence: {0}")]
    Evidence(#[source] EvidenceError),
    #[error("governance block {key}: {error}")]
    Governance { key: String, error: String },
    #[error("the record tree of {0}: {1}")]
    Merkle(DepartmentId, tlog::TlogError),
    /// Two writers appended to one chain at once: the store's single-writer rule broken.
    #[error("the record tree of {department} holds {found} records, not the {expected} its block was hashed onto")]
    TreeMoved {
        department: DepartmentId,
        expected: u64,
        found: u64,
    },
    #[error("the counter {0} in meta is not a u64")]
    Counter(String),
    #[error("status set entry {0} is not a 16-byte key with two status bytes")]
    StatusEntry(String),
}

pub struct Store {
    db: sled::Db,
    blocks: sled::Tree,
    chain: sled::Tree,
    heads: sled::Tree,
    licences: sled::Tree,
    history: sled::Tree,
    transfers: sled::Tree,
    credentials: sled::Tree,
    evidence: sled::Tree,
    governance: sled::Tree,
    gov_evidence: sled::Tree,
    merkle: sled::Tree,
    status: sled::Tree,
    /// Signed checkpoints held: `n/<dept>` the newest seen, `c/<dept>` the newest that
    /// carries its quorum of cosignatures (encoded notes).
    checkpoints: sled::Tree,
    /// What this node cosigned last per department (`checkpoint::Cosigned`), written and
    /// flushed before the cosignature leaves.
    witnessed: sled::Tree,
    /// Conflicting checkpoints (`checkpoint::CheckpointConflict`), keyed department ‖
    /// SHA-256 of the evidence.
    checkpoint_evidence: sled::Tree,
    meta: sled::Tree,
    /// Entries in `licences`, as `meta` `licences` holds it (sled counts a tree by reading
    /// all of it).
    licence_count: std::sync::atomic::AtomicU64,
    /// Tests make the next flush fail, as a disk that reports an fsync error would.
    #[cfg(test)]
    fail_next_flush: std::sync::atomic::AtomicBool,
    /// Tests hold the next flush until they release it (`hold_next_flush`).
    #[cfg(test)]
    flush_gate: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

/// `meta` key of the number of entries in `licences`.
pub(crate) const LICENCE_COUNT_KEY: &str = "licences";

fn chain_key(dept: &DepartmentId, height: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(dept.as_str().len() + 9);
    k.extend_from_slice(dept.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(&height.to_be_bytes());
    k
}

/// The `merkle` key of `dept`'s stored hash at `(level, index)`.
fn merkle_key(dept: &DepartmentId, level: u8, index: u64) -> Vec<u8> {
    let mut k = dept_prefix(dept);
    k.push(level);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The `merkle` level under which each block's tree size is kept (records in blocks
/// 1..=height, keyed by height): no level of stored hashes reaches it (a tree of 2^64
/// leaves has 64 levels). A record's leaf index is its block's start plus its index.
pub(crate) const BLOCK_END_LEVEL: u8 = 0xff;

/// The `merkle` level under which each block's stored hashes are kept together, keyed by
/// the tree size after the block (u64 BE): the tree size before it (u64 BE), then every
/// hash its leaves added, 32 bytes each, in the order `tlog::appended` gives them (for
/// each leaf: level 0, then each subtree it completes). The block holding a leaf is the
/// first entry past it (one ordered seek), and a hash's place in it is
/// `tlog::appended_position`. One entry per block instead of one per hash: sled's
/// overhead per entry is several times a 32-byte hash. A block with no records has none.
/// Data written before kept one entry per hash, at its level and index; reads fall back
/// to those.
pub(crate) const BLOCK_HASHES_LEVEL: u8 = 0xfd;

/// The `merkle` level under which each block's record offsets are kept, keyed by height
/// (`Block::record_offsets`: every 64th record's byte offset, u32 big-endian each), so
/// that a proof reads one record out of a block of thousands quickly.
pub(crate) const RECORD_OFFSETS_LEVEL: u8 = 0xfe;

/// The `status` key of licence `id` (of its department's set).
fn status_set_key(id: &LicenceId) -> Vec<u8> {
    let mut k = dept_prefix(id.department());
    k.extend_from_slice(&tlog::status_key(id));
    k
}

/// The `status` key of a set entry of `dept`'s.
fn entry_key(dept: &DepartmentId, entry: &[u8; 18]) -> Vec<u8> {
    let mut k = dept_prefix(dept);
    k.extend_from_slice(&entry[..16]);
    k
}

/// The `status` key of licence `id`'s credential `commitment`, were it superseded.
fn superseded_key(id: &LicenceId, commitment: &Hash32) -> Vec<u8> {
    let mut k = dept_prefix(id.department());
    k.extend_from_slice(&tlog::credential_status_key(commitment));
    k
}

/// A `status` value: the entry's two status bytes, then its end if it has one.
fn status_value(entry: &[u8; 18], until: Option<i64>) -> Vec<u8> {
    let mut v = entry[16..].to_vec();
    if let Some(u) = until {
        v.extend_from_slice(&u.to_be_bytes());
    }
    v
}

/// The `meta` key of the size of `dept`'s record tree.
fn tree_size_key(dept: &DepartmentId) -> String {
    format!("tree/{dept}")
}

/// One block's stored hashes (a `BLOCK_HASHES_LEVEL` entry): those its leaves
/// `start..end` added, in the order `tlog::appended` gave them. The value is sled's
/// (reference counted): a hash is read as a slice of it, never by copying the whole.
struct BlockHashes {
    start: u64,
    end: u64,
    /// `start` (u64 BE) ‖ the hashes, 32 bytes each.
    value: sled::IVec,
}

impl BlockHashes {
    /// The entry `(key, value)`, if it is whole: its end from the key, its start from the
    /// value, and exactly as many hashes as leaves `start..end` add.
    fn parse(key: &[u8], value: sled::IVec) -> Option<Self> {
        let end = u64::from_be_bytes(key.get(key.len().checked_sub(8)?..)?.try_into().ok()?);
        let start = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
        let hashes = tlog::stored_count(end).checked_sub(tlog::stored_count(start))?;
        (start < end && value.len() as u128 == 8 + 32 * hashes).then_some(Self {
            start,
            end,
            value,
        })
    }

    /// Whether leaf `leaf` is one of this block's.
    fn holds(&self, leaf: u64) -> bool {
        (self.start..self.end).contains(&leaf)
    }

    /// The stored hash `(level, index)`, if this block's leaves added it.
    fn hash(&self, level: u8, index: u64) -> Option<Hash32> {
        if !self.holds(tlog::completing_leaf(level, index)?) {
            return None;
        }
        let at = usize::try_from(tlog::appended_position(self.start, level, index)?).ok()?;
        let from = at.checked_mul(32)?.checked_add(8)?;
        Some(Hash32(
            self.value
                .get(from..from.checked_add(32)?)?
                .try_into()
                .ok()?,
        ))
    }
}

/// `dept`'s stored hashes, read from the `merkle` tree: from the entry of the block whose
/// leaf completed the subtree (one ordered seek: the first entry ending past that leaf),
/// else, in data written before blocks' hashes were kept together, from the hash's own
/// entry.
struct MerkleReader<'a> {
    tree: &'a sled::Tree,
    dept: &'a DepartmentId,
    /// The block entry read last: a proof's or an append's hashes often lie in one block,
    /// and then the seek is saved.
    last: std::cell::RefCell<Option<BlockHashes>>,
}

impl<'a> MerkleReader<'a> {
    fn new(tree: &'a sled::Tree, dept: &'a DepartmentId) -> Self {
        Self {
            tree,
            dept,
            last: std::cell::RefCell::new(None),
        }
    }

    /// The entry of the block that holds leaf `leaf`, if that block's hashes are kept
    /// together. A storage error reads as absent, as a missing hash does.
    fn block_of(&self, leaf: u64) -> Option<BlockHashes> {
        let from = merkle_key(self.dept, BLOCK_HASHES_LEVEL, leaf.checked_add(1)?);
        let to = merkle_key(self.dept, BLOCK_HASHES_LEVEL, u64::MAX);
        let (k, v) = self.tree.range(from..=to).next()?.ok()?;
        BlockHashes::parse(&k, v).filter(|b| b.holds(leaf))
    }
}

impl tlog::HashReader for MerkleReader<'_> {
    fn stored(&self, level: u8, index: u64) -> Option<Hash32> {
        let leaf = tlog::completing_leaf(level, index)?;
        let mut last = self.last.borrow_mut();
        if !last.as_ref().is_some_and(|b| b.holds(leaf)) {
            *last = self.block_of(leaf);
        }
        if let Some(b) = last.as_ref() {
            return b.hash(level, index);
        }
        let v = self
            .tree
            .get(merkle_key(self.dept, level, index))
            .ok()
            .flatten()?;
        Some(Hash32(v.as_ref().try_into().ok()?))
    }
}

/// `dept`'s stored hashes while a block's leaves `start..` are appended: those the block
/// added so far (in `appended`'s order, so each is found by `tlog::appended_position`),
/// then the stored ones.
struct AppendReader<'a> {
    start: u64,
    added: &'a [Hash32],
    stored: &'a MerkleReader<'a>,
}

impl tlog::HashReader for AppendReader<'_> {
    fn stored(&self, level: u8, index: u64) -> Option<Hash32> {
        match tlog::appended_position(self.start, level, index) {
            Some(at) => self.added.get(usize::try_from(at).ok()?).copied(),
            None => self.stored.stored(level, index),
        }
    }
}

/// The key prefix of `dept`'s entries in trees keyed by `chain_key`.
fn dept_prefix(dept: &DepartmentId) -> Vec<u8> {
    let mut k = dept.as_str().as_bytes().to_vec();
    k.push(0);
    k
}

/// The department and height of a `chain_key`, if it is one.
fn split_chain_key(k: &[u8]) -> Option<(DepartmentId, u64)> {
    let (dept, height) = k.split_at_checked(k.len().checked_sub(9)?)?;
    let (zero, height) = height.split_first()?;
    if *zero != 0 {
        return None;
    }
    let dept = DepartmentId::parse(std::str::from_utf8(dept).ok()?).ok()?;
    Some((dept, u64::from_be_bytes(height.try_into().ok()?)))
}

/// Where a piece of evidence is kept: its department and height (a page cursor).
pub type EvidenceKey = (DepartmentId, u64);

/// Equivocations kept per department: one proves its key was misused; a few more show
/// the extent; past that a stolen key could fill the disk with proof of itself.
pub(crate) const EVIDENCE_PER_DEPARTMENT_MAX: usize = 16;
/// A kept governance equivocation: height, signer, the two encoded blocks it signed.
pub type GovEvidence = (u64, String, Vec<u8>, Vec<u8>);

/// Governance equivocations kept at most: each is a department's proven double signature.
pub(crate) const GOV_EVIDENCE_MAX: usize = 64;

fn encode_head(h: &Head) -> [u8; 56] {
    let mut b = [0u8; 56];
    b[..8].copy_from_slice(&h.height.to_be_bytes());
    b[8..40].copy_from_slice(&h.hash.0);
    b[40..48].copy_from_slice(&h.time_ms.to_be_bytes());
    b[48..].copy_from_slice(&h.gov.to_be_bytes());
    b
}

fn decode_head(b: &[u8]) -> Option<Head> {
    if b.len() != 56 {
        return None;
    }
    Some(Head {
        height: u64::from_be_bytes(b[..8].try_into().ok()?),
        hash: Hash32(b[8..40].try_into().ok()?),
        time_ms: u64::from_be_bytes(b[40..48].try_into().ok()?),
        gov: u64::from_be_bytes(b[48..].try_into().ok()?),
    })
}

/// A state written before the compact form (issue 15), fixed 99 bytes: status, reason,
/// commitment, valid_from, valid_until, issued_height, updated_height (integers
/// big-endian), issuer_key, issued_index, then a flag and the suspension's end (i64), the
/// status record's height and index.
const STATE_BYTES_V3: usize = 99;
/// A state written before the status record and a suspension's end were kept: it reads
/// with neither (a suspension without an end, the status record unknown).
const STATE_BYTES_V2: usize = 78;
/// A state written before the issue record's index was kept: it reads with the index
/// unknown (`u32::MAX`), and proofs find the record by reading its block.
const STATE_BYTES_V1: usize = 74;

/// The compact form's first byte has this bit set (the fixed forms start with a status
/// kind, 0 to 3); its low bits are `STATE_*` flags.
const STATE_COMPACT: u8 = 0x80;
/// The suspension has an end (a varint follows).
const STATE_UNTIL: u8 = 0x01;
/// The status record is neither the issue record nor unknown: its height and index follow.
const STATE_STATUS_RECORD: u8 = 0x02;
/// The status record is the issue record.
const STATE_STATUS_IS_ISSUE: u8 = 0x04;
/// The last record about the licence is its issue (`updated_height` = `issued_height`).
const STATE_UPDATED_IS_ISSUED: u8 = 0x08;
/// The longest compact state: flags, status, commitment, key and seven varints of at most
/// ten bytes.
const STATE_COMPACT_MAX: usize = 1 + 2 + 32 + 8 + 7 * 10;

/// The compact form: a flags byte, the status (2 bytes), the commitment, the issuer key,
/// then LEB128 varints (times zigzag-encoded): valid_from, valid_until, issued_height,
/// issued_index, and only where the flags say so updated_height, the suspension's end and
/// the status record. About 58 bytes for a licence with only its issue, against 99 in
/// the fixed form: the `licences` tree holds one entry per licence, and sled stores small
/// entries at three times their size (docs/performance.md, "Disk").
fn encode_state(s: &LicenceState) -> Vec<u8> {
    let mut flags = STATE_COMPACT;
    if s.suspended_until.is_some() {
        flags |= STATE_UNTIL;
    }
    let status_record = (s.status_height, s.status_index);
    if status_record == (s.issued_height, s.issued_index) {
        flags |= STATE_STATUS_IS_ISSUE;
    } else if status_record != (0, 0) {
        flags |= STATE_STATUS_RECORD;
    }
    if s.updated_height == s.issued_height {
        flags |= STATE_UPDATED_IS_ISSUED;
    }
    let mut b = Vec::with_capacity(64);
    b.push(flags);
    b.extend_from_slice(&s.status.to_bytes());
    b.extend_from_slice(&s.commitment.0);
    b.extend_from_slice(&s.issuer_key.0);
    put_varint(&mut b, zigzag(s.valid_from));
    put_varint(&mut b, zigzag(s.valid_until));
    put_varint(&mut b, s.issued_height);
    put_varint(&mut b, u64::from(s.issued_index));
    if flags & STATE_UPDATED_IS_ISSUED == 0 {
        put_varint(&mut b, s.updated_height);
    }
    if let Some(u) = s.suspended_until {
        put_varint(&mut b, zigzag(u));
    }
    if flags & STATE_STATUS_RECORD != 0 {
        put_varint(&mut b, s.status_height);
        put_varint(&mut b, u64::from(s.status_index));
    }
    b
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

/// Reads a LEB128 varint from the front of `b`; `None` when it is cut short or does not
/// fit in a u64.
fn take_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        let part = u64::from(byte & 0x7f);
        if shift == 63 && part > 1 {
            return None;
        }
        v |= part << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn decode_state(b: &[u8]) -> Option<LicenceState> {
    match b.first() {
        Some(&f) if f & STATE_COMPACT != 0 => decode_compact_state(b),
        _ => decode_fixed_state(b),
    }
}

fn decode_compact_state(b: &[u8]) -> Option<LicenceState> {
    if b.len() > STATE_COMPACT_MAX {
        return None;
    }
    let flags = b[0];
    if flags
        & !(STATE_COMPACT
            | STATE_UNTIL
            | STATE_STATUS_RECORD
            | STATE_STATUS_IS_ISSUE
            | STATE_UPDATED_IS_ISSUED)
        != 0
        || flags & STATE_STATUS_RECORD != 0 && flags & STATE_STATUS_IS_ISSUE != 0
    {
        return None;
    }
    let status = LicenceStatus::from_bytes([*b.get(1)?, *b.get(2)?])?;
    let commitment = Hash32(b.get(3..35)?.try_into().ok()?);
    let issuer_key = KeyId(b.get(35..43)?.try_into().ok()?);
    let mut rest = b.get(43..)?;
    let valid_from = unzigzag(take_varint(&mut rest)?);
    let valid_until = unzigzag(take_varint(&mut rest)?);
    let issued_height = take_varint(&mut rest)?;
    let issued_index = u32::try_from(take_varint(&mut rest)?).ok()?;
    let updated_height = if flags & STATE_UPDATED_IS_ISSUED != 0 {
        issued_height
    } else {
        take_varint(&mut rest)?
    };
    let suspended_until = if flags & STATE_UNTIL != 0 {
        Some(unzigzag(take_varint(&mut rest)?))
    } else {
        None
    };
    let (status_height, status_index) = if flags & STATE_STATUS_RECORD != 0 {
        (
            take_varint(&mut rest)?,
            u32::try_from(take_varint(&mut rest)?).ok()?,
        )
    } else if flags & STATE_STATUS_IS_ISSUE != 0 {
        (issued_height, issued_index)
    } else {
        (0, 0)
    };
    if !rest.is_empty() {
        return None;
    }
    Some(LicenceState {
        status,
        commitment,
        valid_from,
        valid_until,
        issued_height,
        updated_height,
        issuer_key,
        issued_index,
        suspended_until,
        status_height,
        status_index,
    })
}

/// The fixed forms written before the compact one (74, 78 or 99 bytes).
fn decode_fixed_state(b: &[u8]) -> Option<LicenceState> {
    let issued_index = match b.len() {
        STATE_BYTES_V3 | STATE_BYTES_V2 => u32::from_be_bytes(b[74..78].try_into().ok()?),
        STATE_BYTES_V1 => u32::MAX,
        _ => return None,
    };
    let (suspended_until, status_height, status_index) = if b.len() == STATE_BYTES_V3 {
        let until = match b[78] {
            0 => None,
            1 => Some(i64::from_be_bytes(b[79..87].try_into().ok()?)),
            _ => return None,
        };
        (
            until,
            u64::from_be_bytes(b[87..95].try_into().ok()?),
            u32::from_be_bytes(b[95..99].try_into().ok()?),
        )
    } else {
        (None, 0, 0)
    };
    let status = LicenceStatus::from_bytes([b[0], b[1]])?;
    let u = |r: std::ops::Range<usize>| -> Option<[u8; 8]> { b[r].try_into().ok() };
    Some(LicenceState {
        status,
        commitment: Hash32(b[2..34].try_into().ok()?),
        valid_from: i64::from_be_bytes(u(34..42)?),
        valid_until: i64::from_be_bytes(u(42..50)?),
        issued_height: u64::from_be_bytes(u(50..58)?),
        updated_height: u64::from_be_bytes(u(58..66)?),
        issuer_key: KeyId(u(66..74)?),
        issued_index,
        suspended_until,
        status_height,
        status_index,
    })
}

/// The `history` key of record `index` of block `height` about licence `id`.
fn history_key(id: &LicenceId, height: u64, index: u32) -> Vec<u8> {
    let mut k = id.to_string().into_bytes();
    k.push(0);
    k.extend_from_slice(&height.to_be_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The `history` entry of a record after its issue: key, and the carrying department
/// when it is not the licence's own (a successor's record).
fn history_entry(block: &Block, index: usize, r: &Record) -> (Vec<u8>, Vec<u8>) {
    let id = r.licence_id();
    let carrier = if id.department() == block.department() {
        Vec::new()
    } else {
        block.department().as_str().as_bytes().to_vec()
    };
    (
        history_key(id, block.height(), u32::try_from(index).unwrap_or(u32::MAX)),
        carrier,
    )
}

/// The keys of the `history` entries of `block`'s records after an issue (an issue
/// record alone has none).
fn history_keys(block: &Block) -> Vec<Vec<u8>> {
    block
        .header
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| !matches!(r, Record::Issue(_)))
        .map(|(i, r)| history_entry(block, i, r).0)
        .collect()
}

fn encode_transfer(t: &Transfer) -> Vec<u8> {
    let mut v = t.to.as_str().as_bytes().to_vec();
    v.push(0);
    if let Some(a) = &t.accepted_as {
        v.extend_from_slice(a.to_string().as_bytes());
    }
    v
}

fn decode_transfer(b: &[u8]) -> Option<Transfer> {
    let s = std::str::from_utf8(b).ok()?;
    let (to, accepted) = s.split_once('\0')?;
    Some(Transfer {
        to: DepartmentId::parse(to).ok()?,
        accepted_as: match accepted {
            "" => None,
            a => Some(LicenceId::parse(a).ok()?),
        },
    })
}

/// One tree's share of the store (`Store::usage`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TreeUsage {
    pub tree: &'static str,
    pub entries: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
}

/// One record of a licence's history as kept: where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPlace {
    /// The chain that carried it.
    pub department: DepartmentId,
    pub height: u64,
    pub index: u32,
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// A transaction's outcome as the store's error.
fn committed<T>(res: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    res.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    })
}

/// The licence count in `meta`, read inside a transaction.
fn tx_licence_count(meta: &sled::transaction::TransactionalTree) -> TxResult<u64> {
    tx_u64(meta, LICENCE_COUNT_KEY.as_bytes())
}

/// A u64 (big-endian) counter in `meta`, 0 when absent, read inside a transaction.
fn tx_u64(meta: &sled::transaction::TransactionalTree, key: &[u8]) -> TxResult<u64> {
    Ok(match meta.get(key)? {
        Some(v) => u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
            ConflictableTransactionError::Abort(StoreError::Corrupt(Corruption::Counter(
                String::from_utf8_lossy(key).into_owned(),
            )))
        })?),
        None => 0,
    })
}

impl Store {
    /// Opens (or creates) the store in `dir` for the network `net`. A directory created
    /// for another genesis is refused.
    pub fn open(dir: &Path, net: &Network) -> Result<Self, StoreError> {
        // The credentials tree holds personal data: a new data directory is the node
        // user's alone (0700). An existing one is left as its operator set it.
        #[cfg(unix)]
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| StoreError::Sled(sled::Error::Io(e)))?;
        }
        let db = sled::Config::new()
            .path(dir)
            // Durability comes from the explicit flush after every block, not from a timer.
            .flush_every_ms(None)
            .cache_capacity(256 * 1024 * 1024)
            .open()?;
        let store = Self {
            blocks: db.open_tree("blocks")?,
            chain: db.open_tree("chain")?,
            heads: db.open_tree("heads")?,
            licences: db.open_tree("licences")?,
            history: db.open_tree("history")?,
            transfers: db.open_tree("transfers")?,
            credentials: db.open_tree("credentials")?,
            evidence: db.open_tree("evidence")?,
            governance: db.open_tree("governance")?,
            gov_evidence: db.open_tree("gov_evidence")?,
            merkle: db.open_tree("merkle")?,
            status: db.open_tree("status")?,
            checkpoints: db.open_tree("checkpoints")?,
            witnessed: db.open_tree("witnessed")?,
            checkpoint_evidence: db.open_tree("checkpoint_evidence")?,
            meta: db.open_tree("meta")?,
            db,
            licence_count: std::sync::atomic::AtomicU64::new(0),
            #[cfg(test)]
            fail_next_flush: std::sync::atomic::AtomicBool::new(false),
            #[cfg(test)]
            flush_gate: std::sync::Mutex::new(None),
        };
        // A data directory written before the count was kept: count once, keep it.
        let count = match store.meta.get(LICENCE_COUNT_KEY)? {
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| Corruption::LicenceCount)?,
            ),
            None => {
                let n = store.licences.len() as u64;
                store.meta.insert(LICENCE_COUNT_KEY, &n.to_be_bytes())?;
                store.db.flush()?;
                n
            }
        };
        store
            .licence_count
            .store(count, std::sync::atomic::Ordering::Relaxed);
        match store.meta.get("genesis")? {
            Some(h) if h.as_ref() != net.hash().0 => {
                return Err(StoreError::WrongNetwork {
                    found: hex::encode(&h),
                    expected: net.hash().to_hex(),
                })
            }
            Some(_) => {}
            None => {
                store.meta.insert("genesis", &net.hash().0)?;
                store.db.flush()?;
            }
        }
        Ok(store)
    }

    /// Appends a block the ledger validated against this store's current state, with the
    /// private credentials of the licences it issues (own blocks) and the next serial of
    /// each licence type it used. One sled transaction across all trees, flushed before
    /// returning.
    pub(crate) fn append(
        &self,
        v: &ValidatedBlock,
        credentials: &[(LicenceId, Vec<u8>)],
        serials: &[(LicenceType, u64)],
    ) -> Result<(), StoreError> {
        let block = v.block();
        let bytes = block.encode();
        let head = encode_head(&v.head());
        let ck = chain_key(block.department(), block.height());
        // Licences this block issues.
        let issued = block
            .header
            .records
            .iter()
            .filter(|r| matches!(r, Record::Issue(_)))
            .count() as u64;
        let history = self.history_for(block)?;
        // The transfer index after this block: each effect over the entry before it
        // (read now: only the ledger's single writer appends, under its lock).
        let mut transfers: Vec<(String, Vec<u8>)> = Vec::new();
        for effect in block
            .header
            .records
            .iter()
            .filter_map(Record::transfer_effect)
        {
            let before = transfers
                .iter()
                .rev()
                .find(|(k, _)| k == &effect.origin().to_string())
                .and_then(|(_, v)| decode_transfer(v))
                .or_else(|| self.transfer(effect.origin()));
            let (origin, t) = effect.apply(before);
            transfers.push((origin.to_string(), encode_transfer(&t)));
        }
        let states: Vec<(String, Vec<u8>)> = v
            .changes()
            .iter()
            .map(|(id, s)| (id.to_string(), encode_state(s)))
            .collect();
        // Each licence's entry (none when active), and each credential its block
        // superseded.
        let statuses: Vec<(Vec<u8>, Option<Vec<u8>>)> = v
            .changes()
            .iter()
            .map(|(id, s)| {
                (
                    status_set_key(id),
                    s.status_entry(id).map(|(e, until)| status_value(&e, until)),
                )
            })
            .chain(v.superseded().iter().map(|(id, s)| {
                let e = s.entry();
                (
                    entry_key(id.department(), &e),
                    Some(status_value(&e, Some(s.until))),
                )
            }))
            .collect();
        let leaves: Vec<Hash32> = block
            .header
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| tlog::leaf_hash(&r.leaf(block.height(), i)))
            .collect();
        let dept = block.department();
        let size_key = tree_size_key(dept);
        // The block's records join its department's tree: the hashes their leaves add,
        // worked out here, outside the transaction (only the ledger's single writer
        // appends, under its lock; the transaction checks the tree did not move).
        let start = self.tree_size(dept)?;
        let end = start + leaves.len() as u64;
        let mut added: Vec<Hash32> = Vec::with_capacity(2 * leaves.len() + 1);
        let stored = self.merkle_reader(dept);
        for (x, leaf) in (start..).zip(&leaves) {
            let reader = AppendReader {
                start,
                added: &added,
                stored: &stored,
            };
            let new = tlog::appended(x, *leaf, &reader)
                .map_err(|e| Corruption::Merkle(dept.clone(), e))?;
            added.extend(new.into_iter().map(|(_, _, h)| h));
        }
        // Shared, not copied, should the transaction run again.
        let block_hashes: Option<sled::IVec> = (end > start).then(|| {
            let mut v = Vec::with_capacity(8 + 32 * added.len());
            v.extend_from_slice(&start.to_be_bytes());
            for h in &added {
                v.extend_from_slice(&h.0);
            }
            v.into()
        });
        // The block was just encoded here: its offsets cannot fail to read.
        let offsets: Vec<u8> = Block::record_offsets(&bytes)
            .unwrap_or_default()
            .iter()
            .flat_map(|o| o.to_be_bytes())
            .collect();
        let res: Result<(), TransactionError<StoreError>> = (
            &self.blocks,
            &self.chain,
            &self.heads,
            &self.licences,
            &self.credentials,
            &self.meta,
            &self.merkle,
            &self.status,
            &self.history,
            &self.transfers,
        )
            .transaction(
                |(blocks, chain, heads, licences, creds, meta, merkle, status, hist, xfers)| -> TxResult<()> {
                    for (k, carrier) in &history {
                        hist.insert(k.as_slice(), carrier.as_slice())?;
                    }
                    for (k, t) in &transfers {
                        xfers.insert(k.as_bytes(), t.as_slice())?;
                    }
                    for (k, value) in &statuses {
                        match value {
                            Some(v) => status.insert(k.as_slice(), v.as_slice())?,
                            None => status.remove(k.as_slice())?,
                        };
                    }
                    let size = tx_u64(meta, size_key.as_bytes())?;
                    if size != start {
                        return Err(ConflictableTransactionError::Abort(StoreError::Corrupt(
                            Corruption::TreeMoved {
                                department: dept.clone(),
                                expected: start,
                                found: size,
                            },
                        )));
                    }
                    if let Some(v) = &block_hashes {
                        merkle.insert(merkle_key(dept, BLOCK_HASHES_LEVEL, end), v.clone())?;
                    }
                    merkle.insert(
                        merkle_key(dept, BLOCK_END_LEVEL, block.height()),
                        &end.to_be_bytes()[..],
                    )?;
                    merkle.insert(
                        merkle_key(dept, RECORD_OFFSETS_LEVEL, block.height()),
                        offsets.as_slice(),
                    )?;
                    meta.insert(size_key.as_bytes(), &end.to_be_bytes())?;
                    blocks.insert(&block.hash().0, bytes.as_slice())?;
                    chain.insert(ck.as_slice(), &block.hash().0)?;
                    heads.insert(block.department().as_str().as_bytes(), &head[..])?;
                    for (id, s) in &states {
                        licences.insert(id.as_bytes(), &s[..])?;
                    }
                    for (id, cose) in credentials {
                        creds.insert(id.to_string().as_bytes(), cose.as_slice())?;
                    }
                    for (t, next) in serials {
                        meta.insert(format!("serial/{t}").as_bytes(), &next.to_be_bytes())?;
                    }
                    if issued > 0 {
                        let count = tx_licence_count(meta)?;
                        meta.insert(LICENCE_COUNT_KEY, &(count + issued).to_be_bytes())?;
                    }
                    Ok(())
                },
            );
        committed(res)?;
        self.flush_block()?;
        self.licence_count
            .fetch_add(issued, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Appends a governance block the ledger admitted (`GovChain::admit`), flushed before
    /// returning.
    pub(crate) fn append_gov(&self, block: &GovBlock) -> Result<(), StoreError> {
        self.governance
            .insert(block.height().to_be_bytes(), block.encode())?;
        self.flush_block()
    }

    /// Every governance block, in order of height.
    pub fn gov_blocks(&self) -> Result<Vec<GovBlock>, StoreError> {
        self.governance
            .iter()
            .map(|r| {
                let (k, v) = r?;
                GovBlock::decode(&v).map_err(|e| {
                    StoreError::Corrupt(Corruption::Governance {
                        key: hex::encode(&k),
                        error: e.to_string(),
                    })
                })
            })
            .collect()
    }

    /// Keeps proof that `signer` signed two governance blocks at one height, at most
    /// `GOV_EVIDENCE_MAX` in all. Whether it was new (and kept).
    pub(crate) fn record_gov_evidence(
        &self,
        signer: &DepartmentId,
        first: &GovBlock,
        second: &GovBlock,
    ) -> Result<bool, StoreError> {
        let mut key = first.height().to_be_bytes().to_vec();
        key.extend_from_slice(signer.as_str().as_bytes());
        if self.gov_evidence.contains_key(&key)? || self.gov_evidence.len() >= GOV_EVIDENCE_MAX {
            return Ok(false);
        }
        let mut value = Vec::new();
        for b in [first, second] {
            let bytes = b.encode();
            value.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            value.extend_from_slice(&bytes);
        }
        self.gov_evidence.insert(key, value)?;
        self.flush_block()?;
        Ok(true)
    }

    /// `dept`'s blocks above `last_good`, in order.
    pub(crate) fn blocks_above(
        &self,
        dept: &DepartmentId,
        last_good: u64,
    ) -> Result<Vec<Block>, StoreError> {
        let mut out = Vec::new();
        let start = chain_key(dept, last_good.saturating_add(1));
        let end = chain_key(dept, u64::MAX);
        for item in self.chain.range(start..=end) {
            let (_, hash) = item?;
            match self.block_by_hash(&hash)? {
                Some(b) => out.push(b),
                None => return Err(Corruption::ChainNamesMissingBlock(dept.clone()).into()),
            }
        }
        Ok(out)
    }

    /// Takes `dept`'s blocks above `last_good` off its chain (a key declared compromised
    /// signed them): their blocks and index entries go, the head becomes block
    /// `last_good`, and each licence in `states` gets its state at `last_good` (none: the
    /// removed blocks issued it, and it goes). The ledger computed `states`; this only
    /// writes them. One sled transaction, flushed. How many blocks were removed.
    pub(crate) fn truncate(
        &self,
        dept: &DepartmentId,
        last_good: u64,
        states: &[(LicenceId, Option<LicenceState>)],
    ) -> Result<usize, StoreError> {
        let removed = self.blocks_above(dept, last_good)?;
        if removed.is_empty() {
            return Ok(0);
        }
        let head = match last_good {
            0 => None,
            h => Some(
                self.block_at(dept, h)?
                    .ok_or_else(|| Corruption::MissingBlock {
                        department: dept.clone(),
                        height: h,
                    })?,
            ),
        };
        // Each licence's entry as of `last_good`, and the credentials superseded above it
        // no longer are: the one in force at `last_good` and any the removed records
        // brought in (removing a key the set does not hold changes nothing).
        let mut statuses: Vec<(Vec<u8>, Option<Vec<u8>>)> = states
            .iter()
            .map(|(id, s)| {
                (
                    status_set_key(id),
                    s.and_then(|s| s.status_entry(id))
                        .map(|(e, until)| status_value(&e, until)),
                )
            })
            .collect();
        for (id, s) in states {
            if let Some(s) = s {
                statuses.push((superseded_key(id, &s.commitment), None));
            }
        }
        for r in removed.iter().flat_map(|b| b.header.records.iter()) {
            if let Some(c) = r.commitment() {
                statuses.push((superseded_key(r.licence_id(), &c), None));
            }
        }
        let states: Vec<(String, Option<Vec<u8>>)> = states
            .iter()
            .map(|(id, s)| (id.to_string(), s.as_ref().map(encode_state)))
            .collect();
        let gone = states.iter().filter(|(_, s)| s.is_none()).count() as u64;
        // The record tree shrinks by the removed records: the stored hashes of subtrees
        // that reach past the new size go.
        let old_size = self.tree_size(dept)?;
        let records: u64 = removed.iter().map(|b| b.header.records.len() as u64).sum();
        let new_size = old_size.saturating_sub(records);
        // What the removed leaves added goes: the entries of the removed blocks' hashes
        // (`BLOCK_HASHES_LEVEL`, each ends past the new size) and, in data written before
        // those, the entries of single hashes whose subtrees reach past the new size.
        let mut gone_hashes: Vec<sled::IVec> = self
            .merkle
            .range(
                merkle_key(dept, BLOCK_HASHES_LEVEL, new_size.saturating_add(1))
                    ..=merkle_key(dept, BLOCK_HASHES_LEVEL, u64::MAX),
            )
            .keys()
            .collect::<Result<_, _>>()?;
        let mut level = 0u8;
        while level < 64 && (old_size >> level) > 0 {
            let from = merkle_key(dept, level, new_size >> level);
            let to = merkle_key(dept, level, old_size >> level);
            for k in self.merkle.range(from..to).keys() {
                gone_hashes.push(k?);
            }
            level += 1;
        }
        let size_key = tree_size_key(dept);
        let mut gone_history: Vec<Vec<u8>> = removed.iter().flat_map(history_keys).collect();
        // A licence left with its issue alone keeps no entry (see the `history` tree).
        for (id, s) in &states {
            if s.is_none() {
                continue;
            }
            let mut prefix = id.clone().into_bytes();
            prefix.push(0);
            let left: Vec<Vec<u8>> = self
                .history
                .scan_prefix(&prefix)
                .keys()
                .filter_map(Result::ok)
                .map(|k| k.to_vec())
                .filter(|k| !gone_history.contains(k))
                .collect();
            if left.len() == 1 {
                gone_history.extend(left);
            }
        }
        // Transfers the removed blocks made are undone: a transfer out goes, a transfer
        // in is no longer accepted.
        let mut undone_transfers: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        for effect in removed
            .iter()
            .flat_map(|b| b.header.records.iter())
            .filter_map(Record::transfer_effect)
        {
            match effect {
                TransferEffect::Out { origin, .. } => {
                    undone_transfers.push((origin.to_string(), None))
                }
                TransferEffect::In { origin, .. } => {
                    if let Some(t) = self.transfer(&origin) {
                        let t = Transfer {
                            accepted_as: None,
                            ..t
                        };
                        undone_transfers.push((origin.to_string(), Some(encode_transfer(&t))));
                    }
                }
            }
        }
        let res: Result<(), TransactionError<StoreError>> = (
            &self.blocks,
            &self.chain,
            &self.heads,
            &self.licences,
            &self.meta,
            &self.merkle,
            &self.status,
            &self.history,
            &self.transfers,
        )
            .transaction(
                |(blocks, chain, heads, licences, meta, merkle, status, hist, xfers)| -> TxResult<()> {
                    for k in &gone_history {
                        hist.remove(k.as_slice())?;
                    }
                    for (k, t) in &undone_transfers {
                        match t {
                            Some(t) => xfers.insert(k.as_bytes(), t.as_slice())?,
                            None => xfers.remove(k.as_bytes())?,
                        };
                    }
                    for k in &gone_hashes {
                        merkle.remove(k)?;
                    }
                    for b in &removed {
                        merkle.remove(merkle_key(dept, BLOCK_END_LEVEL, b.height()))?;
                        merkle.remove(merkle_key(dept, RECORD_OFFSETS_LEVEL, b.height()))?;
                    }
                    for (k, v) in &statuses {
                        match v {
                            Some(v) => status.insert(k.as_slice(), v.as_slice())?,
                            None => status.remove(k.as_slice())?,
                        };
                    }
                    meta.insert(size_key.as_bytes(), &new_size.to_be_bytes())?;
                    for b in &removed {
                        blocks.remove(&b.hash().0)?;
                        chain.remove(chain_key(dept, b.height()))?;
                    }
                    match &head {
                        Some(h) => {
                            let hd = Head {
                                height: h.height(),
                                hash: h.hash(),
                                time_ms: h.header.time_ms,
                                gov: h.header.gov,
                            };
                            heads.insert(dept.as_str().as_bytes(), &encode_head(&hd)[..])?;
                        }
                        None => {
                            heads.remove(dept.as_str().as_bytes())?;
                        }
                    }
                    for (id, s) in &states {
                        match s {
                            Some(s) => licences.insert(id.as_bytes(), &s[..])?,
                            None => licences.remove(id.as_bytes())?,
                        };
                    }
                    if gone > 0 {
                        let count = tx_licence_count(meta)?;
                        meta.insert(LICENCE_COUNT_KEY, &count.saturating_sub(gone).to_be_bytes())?;
                    }
                    Ok(())
                },
            );
        committed(res)?;
        self.flush_block()?;
        self.licence_count
            .fetch_sub(gone, std::sync::atomic::Ordering::Relaxed);
        Ok(removed.len())
    }

    /// The `history` entries `block` adds: every record after an issue, and the issue of
    /// a licence that gets its first such record (from its state before, or from this
    /// block when it issues it too). Read before the block's transaction: only the
    /// ledger's single writer appends.
    fn history_for(&self, block: &Block) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let mut started: std::collections::HashSet<&LicenceId> = Default::default();
        for (i, r) in block.header.records.iter().enumerate() {
            if matches!(r, Record::Issue(_)) {
                continue;
            }
            let id = r.licence_id();
            if !started.contains(id) {
                started.insert(id);
                let mut prefix = id.to_string().into_bytes();
                prefix.push(0);
                if self.history.scan_prefix(&prefix).next().is_none() {
                    let issued_here = block.header.records[..i]
                        .iter()
                        .position(|e| matches!(e, Record::Issue(x) if &x.licence_id == id));
                    let issue = match issued_here {
                        Some(j) => Some((block.height(), j as u32)),
                        None => self.issue_place(id)?,
                    };
                    if let Some((h, j)) = issue {
                        out.push((history_key(id, h, j), Vec::new()));
                    }
                }
            }
            out.push(history_entry(block, i, r));
        }
        Ok(out)
    }

    /// Where licence `id`'s issue record is, for a licence with no `history` entry yet
    /// (its state's issue position; a state kept before the index was, by its block).
    fn issue_place(&self, id: &LicenceId) -> Result<Option<(u64, u32)>, StoreError> {
        let Some(s) = self.licence(id) else {
            return Ok(None);
        };
        if s.issued_index != u32::MAX {
            return Ok(Some((s.issued_height, s.issued_index)));
        }
        let Some(block) = self.block_at(id.department(), s.issued_height)? else {
            return Ok(None);
        };
        Ok(block
            .header
            .records
            .iter()
            .position(|r| matches!(r, Record::Issue(x) if &x.licence_id == id))
            .map(|j| (s.issued_height, j as u32)))
    }

    /// Where every record of licence `id` is, at most `max` of them, in the order of
    /// their chain (a successor's records after the licence's own chain's).
    pub fn history(&self, id: &LicenceId, max: usize) -> Result<Vec<HistoryPlace>, StoreError> {
        let mut prefix = id.to_string().into_bytes();
        prefix.push(0);
        if self.history.scan_prefix(&prefix).next().is_none() {
            // Its issue alone.
            return Ok(self
                .issue_place(id)?
                .map(|(height, index)| HistoryPlace {
                    department: id.department().clone(),
                    height,
                    index,
                })
                .into_iter()
                .take(max)
                .collect());
        }
        let mut out = Vec::new();
        for item in self.history.scan_prefix(&prefix).take(max) {
            let (k, v) = item?;
            let bad = || Corruption::Counter(format!("history entry {}", hex::encode(&k)));
            let rest = &k[prefix.len()..];
            let (h, i) = rest.split_at_checked(8).ok_or_else(bad)?;
            let height = u64::from_be_bytes(h.try_into().map_err(|_| bad())?);
            let index = u32::from_be_bytes(i.try_into().map_err(|_| bad())?);
            let department = if v.is_empty() {
                id.department().clone()
            } else {
                std::str::from_utf8(&v)
                    .ok()
                    .and_then(|d| DepartmentId::parse(d).ok())
                    .ok_or_else(bad)?
            };
            out.push(HistoryPlace {
                department,
                height,
                index,
            });
        }
        // A successor's records come after its predecessor's retirement: order by chain
        // (own first), then height and index.
        out.sort_by(|a, b| {
            (&a.department != id.department(), a.height, a.index).cmp(&(
                &b.department != id.department(),
                b.height,
                b.index,
            ))
        });
        Ok(out)
    }

    /// The records of licence `id` (at most `max`) with where and when each was
    /// recorded: what its history and "as of" answers are made of.
    pub fn history_events(
        &self,
        id: &LicenceId,
        max: usize,
    ) -> Result<Vec<(HistoryPlace, huren_core::lifecycle::Event)>, StoreError> {
        let mut out = Vec::new();
        for place in self.history(id, max)? {
            let Some(hash) = self.chain.get(chain_key(&place.department, place.height))? else {
                return Err(Corruption::MissingBlock {
                    department: place.department.clone(),
                    height: place.height,
                }
                .into());
            };
            let Some(bytes) = self.blocks.get(&hash)? else {
                return Err(Corruption::ChainNamesMissingBlock(place.department.clone()).into());
            };
            let bad = |e: CodecError| {
                StoreError::from(Corruption::Counter(format!(
                    "history of {id} at {}#{}: {e}",
                    place.department, place.height
                )))
            };
            let time_ms = Block::time_ms_of(&bytes).map_err(bad)?;
            let record = self
                .record_at(&place.department, place.height, place.index as usize)?
                .ok_or_else(|| Corruption::MissingBlock {
                    department: place.department.clone(),
                    height: place.height,
                })?;
            if record.licence_id() != id {
                return Err(Corruption::Counter(format!(
                    "history of {id}: {}#{} record {} is of {}",
                    place.department,
                    place.height,
                    place.index,
                    record.licence_id()
                ))
                .into());
            }
            out.push((
                place.clone(),
                huren_core::lifecycle::Event {
                    time_ms,
                    height: place.height,
                    index: place.index,
                    record,
                },
            ));
        }
        Ok(out)
    }

    /// Entries in the history index (read whole: for the integrity check).
    pub(crate) fn history_len(&self) -> usize {
        self.history.len()
    }

    /// Every entry of the transfer index, for the integrity check.
    pub(crate) fn transfer_entries(&self) -> Result<Vec<(LicenceId, Transfer)>, StoreError> {
        let mut out = Vec::new();
        for item in self.transfers.iter() {
            let (k, v) = item?;
            let bad = || Corruption::Counter(format!("transfer entry {}", hex::encode(&k)));
            let origin = std::str::from_utf8(&k)
                .ok()
                .and_then(|s| LicenceId::parse(s).ok())
                .ok_or_else(bad)?;
            out.push((origin, decode_transfer(&v).ok_or_else(bad)?));
        }
        Ok(out)
    }

    /// How many records `dept`'s tree holds (every record of its chain here).
    pub fn tree_size(&self, dept: &DepartmentId) -> Result<u64, StoreError> {
        Ok(match self.meta.get(tree_size_key(dept).as_bytes())? {
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| Corruption::Counter(tree_size_key(dept)))?,
            ),
            None => 0,
        })
    }

    /// `dept`'s status set at `at` (unix seconds) in key order, as its entries: how many,
    /// and their root (docs/checkpoints.md).
    pub fn status_root(&self, dept: &DepartmentId, at: i64) -> Result<(u64, Hash32), StoreError> {
        Ok(tlog::status_root(self.status_entries(dept, at)?))
    }

    /// `dept`'s status set at `at` (unix seconds) in key order: 16-byte key, status byte,
    /// reason byte each; an entry with an end is in it only before its end.
    pub fn status_entries(
        &self,
        dept: &DepartmentId,
        at: i64,
    ) -> Result<Vec<[u8; 18]>, StoreError> {
        Ok(self
            .status_kept(dept)?
            .into_iter()
            .filter(|(_, until)| until.is_none_or(|u| at < u))
            .map(|(e, _)| e)
            .collect())
    }

    /// Removes every kept status entry (of any department) whose end is before `before`
    /// (unix seconds); how many. Index upkeep: no set at a time after `before` holds them.
    pub(crate) fn prune_status(&self, before: i64) -> Result<usize, StoreError> {
        let mut gone = 0;
        for item in self.status.iter() {
            let (k, v) = item?;
            if v.len() == 10 {
                let until = i64::from_be_bytes(v[2..].try_into().expect("8 bytes"));
                // Only the value read: a block may have written the key since.
                if until < before
                    && self
                        .status
                        .compare_and_swap(&k, Some(&v), None::<&[u8]>)?
                        .is_ok()
                {
                    gone += 1;
                }
            }
        }
        if gone > 0 {
            self.flush_block()?;
        }
        Ok(gone)
    }

    /// Every entry kept of `dept`'s status set, with its end, whatever the time: the
    /// integrity check and the bundle deltas read them.
    pub fn status_kept(
        &self,
        dept: &DepartmentId,
    ) -> Result<Vec<([u8; 18], Option<i64>)>, StoreError> {
        let prefix = dept_prefix(dept);
        let mut entries = Vec::new();
        for item in self.status.scan_prefix(&prefix) {
            let (k, v) = item?;
            let bad = || Corruption::StatusEntry(hex::encode(&k));
            let key = <[u8; 16]>::try_from(&k[prefix.len()..]).map_err(|_| bad())?;
            let (bytes, until) = match v.len() {
                2 => ([v[0], v[1]], None),
                10 => (
                    [v[0], v[1]],
                    Some(i64::from_be_bytes(v[2..].try_into().map_err(|_| bad())?)),
                ),
                _ => return Err(bad().into()),
            };
            let mut e = [0u8; 18];
            e[..16].copy_from_slice(&key);
            e[16..].copy_from_slice(&bytes);
            entries.push((e, until));
        }
        Ok(entries)
    }

    /// The checkpoints held: for each department, the newest seen and the newest counted
    /// (encoded notes; `None` where none is held).
    pub fn checkpoints(&self) -> Result<Vec<(DepartmentId, bool, String)>, StoreError> {
        let mut out = Vec::new();
        for item in self.checkpoints.iter() {
            let (k, v) = item?;
            let bad = || Corruption::Counter(format!("checkpoint {}", hex::encode(&k)));
            let key = std::str::from_utf8(&k).map_err(|_| bad())?;
            let (kind, dept) = key.split_once('/').ok_or_else(bad)?;
            let dept = DepartmentId::parse(dept).map_err(|_| bad())?;
            let text = String::from_utf8(v.to_vec()).map_err(|_| bad())?;
            out.push((dept, kind == "c", text));
        }
        Ok(out)
    }

    /// Keeps `dept`'s newest checkpoint (`counted`: the newest with its quorum). Not
    /// flushed: a checkpoint lost in a crash comes again with the next one.
    pub fn put_checkpoint(
        &self,
        dept: &DepartmentId,
        counted: bool,
        note: &str,
    ) -> Result<(), StoreError> {
        let key = format!("{}/{dept}", if counted { "c" } else { "n" });
        self.checkpoints.insert(key.as_bytes(), note.as_bytes())?;
        Ok(())
    }

    /// Forgets `dept`'s checkpoints and what this node cosigned of it (its key was
    /// declared compromised and its chain cut back: they may name blocks that are gone).
    pub fn forget_checkpoints(&self, dept: &DepartmentId) -> Result<(), StoreError> {
        for kind in ["n", "c"] {
            self.checkpoints
                .remove(format!("{kind}/{dept}").as_bytes())?;
        }
        self.witnessed.remove(dept.as_str().as_bytes())?;
        self.flush_block()
    }

    /// What this node cosigned last of `dept`.
    pub fn witnessed(
        &self,
        dept: &DepartmentId,
    ) -> Result<Option<huren_core::checkpoint::Cosigned>, StoreError> {
        match self.witnessed.get(dept.as_str().as_bytes())? {
            None => Ok(None),
            Some(v) => huren_core::checkpoint::Cosigned::from_bytes(&v)
                .map(Some)
                .ok_or_else(|| Corruption::Counter(format!("witnessed/{dept}")).into()),
        }
    }

    /// Records that this node cosigns `c` of `dept`, durably: the cosignature may leave
    /// only once this returned Ok.
    pub fn set_witnessed(
        &self,
        dept: &DepartmentId,
        c: &huren_core::checkpoint::Cosigned,
    ) -> Result<(), StoreError> {
        self.witnessed
            .insert(dept.as_str().as_bytes(), &c.to_bytes()[..])?;
        self.flush_block()
    }

    /// Keeps checkpoint conflict evidence; whether it is new. At most
    /// `EVIDENCE_PER_DEPARTMENT_MAX` per department.
    pub fn put_checkpoint_evidence(
        &self,
        dept: &DepartmentId,
        encoded: &[u8],
    ) -> Result<bool, StoreError> {
        let mut key = dept_prefix(dept);
        key.extend_from_slice(&Hash32::digest(encoded).0);
        if self.checkpoint_evidence.contains_key(&key)? {
            return Ok(false);
        }
        let held = self
            .checkpoint_evidence
            .scan_prefix(dept_prefix(dept))
            .keys()
            .count();
        if held >= EVIDENCE_PER_DEPARTMENT_MAX {
            return Ok(false);
        }
        self.checkpoint_evidence.insert(key, encoded)?;
        self.flush_block()?;
        Ok(true)
    }

    /// Every checkpoint conflict kept, encoded.
    pub fn checkpoint_evidence(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.checkpoint_evidence
            .iter()
            .values()
            .map(|v| Ok(v?.to_vec()))
            .collect()
    }

    fn merkle_reader<'a>(&'a self, dept: &'a DepartmentId) -> MerkleReader<'a> {
        MerkleReader::new(&self.merkle, dept)
    }

    /// The stored hash of `dept`'s record tree at `(level, index)`.
    pub fn stored_hash(&self, dept: &DepartmentId, level: u8, index: u64) -> Option<Hash32> {
        tlog::HashReader::stored(&self.merkle_reader(dept), level, index)
    }

    /// The root of `dept`'s record tree at `size` records.
    pub fn tree_root(&self, dept: &DepartmentId, size: u64) -> Result<Hash32, StoreError> {
        let reader = self.merkle_reader(dept);
        tlog::root(size, &reader).map_err(|e| Corruption::Merkle(dept.clone(), e).into())
    }

    /// Records in `dept`'s blocks 1..=`height` (0 for height 0), if the chain reaches it.
    pub fn tree_size_at(
        &self,
        dept: &DepartmentId,
        height: u64,
    ) -> Result<Option<u64>, StoreError> {
        if height == 0 {
            return Ok(Some(0));
        }
        match self.merkle.get(merkle_key(dept, BLOCK_END_LEVEL, height))? {
            None => Ok(None),
            Some(v) => Ok(Some(u64::from_be_bytes(v.as_ref().try_into().map_err(
                |_| Corruption::Counter(format!("tree size of {dept} at {height}")),
            )?))),
        }
    }

    /// The inclusion proof of record number `index` in `dept`'s tree at `size` records.
    pub fn inclusion_proof(
        &self,
        dept: &DepartmentId,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash32>, tlog::TlogError> {
        let reader = self.merkle_reader(dept);
        tlog::inclusion_proof(index, size, &reader)
    }

    /// The consistency proof of `dept`'s tree from `old` records to `new`.
    pub fn consistency_proof(
        &self,
        dept: &DepartmentId,
        old: u64,
        new: u64,
    ) -> Result<Vec<Hash32>, tlog::TlogError> {
        let reader = self.merkle_reader(dept);
        tlog::consistency_proof(old, new, &reader)
    }

    /// Governance equivocations kept: height, signer, and the two blocks it signed.
    pub fn gov_evidence(&self) -> Result<Vec<GovEvidence>, StoreError> {
        let bad = |k: &[u8]| {
            StoreError::Corrupt(Corruption::Governance {
                key: hex::encode(k),
                error: "governance evidence does not decode".into(),
            })
        };
        let mut out = Vec::new();
        for item in self.gov_evidence.iter() {
            let (k, v) = item?;
            let (h, signer) = k.split_at_checked(8).ok_or_else(|| bad(&k))?;
            let height = u64::from_be_bytes(h.try_into().map_err(|_| bad(&k))?);
            let mut rest: &[u8] = &v;
            let mut blocks = Vec::new();
            for _ in 0..2 {
                let (len, tail) = rest.split_at_checked(4).ok_or_else(|| bad(&k))?;
                let len = u32::from_be_bytes(len.try_into().map_err(|_| bad(&k))?) as usize;
                let (block, tail) = tail.split_at_checked(len).ok_or_else(|| bad(&k))?;
                blocks.push(block.to_vec());
                rest = tail;
            }
            let second = blocks.pop().ok_or_else(|| bad(&k))?;
            let first = blocks.pop().ok_or_else(|| bad(&k))?;
            out.push((
                height,
                String::from_utf8_lossy(signer).into_owned(),
                first,
                second,
            ));
        }
        Ok(out)
    }

    /// The fsync that makes a block durable.
    fn flush_block(&self) -> Result<(), StoreError> {
        #[cfg(test)]
        if let Some(release) = self
            .flush_gate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = release.recv();
        }
        #[cfg(test)]
        if self
            .fail_next_flush
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StoreError::Flush(sled::Error::Io(std::io::Error::other(
                "injected fsync failure",
            ))));
        }
        self.db.flush().map(drop).map_err(StoreError::Flush)
    }

    /// Makes the next block's flush wait until the returned sender sends (or is dropped):
    /// tests of what happens while a block is being written.
    #[cfg(test)]
    pub(crate) fn hold_next_flush(&self) -> std::sync::mpsc::Sender<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        *self.flush_gate.lock().unwrap_or_else(|p| p.into_inner()) = Some(rx);
        tx
    }

    /// Makes the next block's flush fail (tests of the producer's fail-stop).
    #[cfg(test)]
    pub(crate) fn fail_next_flush(&self) {
        self.fail_next_flush
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Keeps evidence the ledger proved, replacing any at its department and height.
    /// Flushed before returning.
    pub(crate) fn put_evidence(&self, ev: &Equivocation) -> Result<(), StoreError> {
        let key = chain_key(ev.department(), ev.height());
        self.evidence.insert(key, ev.encode())?;
        self.db.flush()?;
        Ok(())
    }

    /// Keeps evidence unless some is known at its department and height, or the
    /// department's `EVIDENCE_PER_DEPARTMENT_MAX` lowest heights are all proven already;
    /// true if it was kept. Flushed before returning.
    pub(crate) fn record_evidence(&self, ev: &Equivocation) -> Result<bool, StoreError> {
        let key = chain_key(ev.department(), ev.height());
        if self.evidence.contains_key(&key)? {
            return Ok(false);
        }
        let prefix = dept_prefix(ev.department());
        let held = self.evidence.scan_prefix(&prefix).keys().count();
        if held >= EVIDENCE_PER_DEPARTMENT_MAX {
            // Keep the lowest heights: the first fork is what verification uses.
            let highest = self
                .evidence
                .scan_prefix(&prefix)
                .keys()
                .next_back()
                .transpose()?;
            if highest.is_none_or(|h| h.as_ref() < key.as_slice()) {
                return Ok(false);
            }
        }
        self.put_evidence(ev)?;
        if held >= EVIDENCE_PER_DEPARTMENT_MAX {
            if let Some(highest) = self.evidence.scan_prefix(&prefix).keys().next_back() {
                self.evidence.remove(highest?)?;
                self.db.flush()?;
            }
        }
        Ok(true)
    }

    /// Stored evidence bytes in key order (department, then height), `limit` at most,
    /// of `dept` only if given, strictly after `after` (a department and height); and
    /// the key of the last one returned when more may follow.
    pub(crate) fn evidence_page(
        &self,
        dept: Option<&DepartmentId>,
        after: Option<(&DepartmentId, u64)>,
        limit: usize,
    ) -> Result<(Vec<Vec<u8>>, Option<EvidenceKey>), StoreError> {
        let prefix = dept.map(dept_prefix).unwrap_or_default();
        let start = match after {
            Some((d, h)) => {
                let mut k = chain_key(d, h);
                k.push(0); // the smallest key after it
                k
            }
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        let mut last = None;
        for item in self.evidence.range(start..) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            if out.len() == limit {
                return Ok((out, last));
            }
            last = split_chain_key(&k);
            out.push(v.to_vec());
        }
        Ok((out, None))
    }

    /// The stored bytes of every piece of equivocation evidence, in key order. The ledger
    /// decodes (and so re-checks) them.
    pub(crate) fn evidence_records(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.evidence
            .iter()
            .map(|item| Ok(item?.1.to_vec()))
            .collect()
    }

    /// Lowest equivocation height proven against `dept`, if any.
    pub fn equivocation_height(&self, dept: &DepartmentId) -> Option<u64> {
        let prefix = dept_prefix(dept);
        let (k, _) = self.evidence.scan_prefix(&prefix).next()?.ok()?;
        Some(u64::from_be_bytes(k.get(prefix.len()..)?.try_into().ok()?))
    }

    /// Record `index` of `dept`'s block at `height`, read out of the stored block without
    /// decoding the others (`Block::record_at`); `None` when there is no such block.
    pub fn record_at(
        &self,
        dept: &DepartmentId,
        height: u64,
        index: usize,
    ) -> Result<Option<huren_core::Record>, StoreError> {
        let Some(hash) = self.chain.get(chain_key(dept, height))? else {
            return Ok(None);
        };
        let Some(bytes) = self.blocks.get(&hash)? else {
            return Err(Corruption::ChainNamesMissingBlock(dept.clone()).into());
        };
        // Offsets are an index: missing (a block stored before they were kept) or odd,
        // the record is found by stepping from the first.
        let offsets: Vec<u32> = self
            .merkle
            .get(merkle_key(dept, RECORD_OFFSETS_LEVEL, height))?
            .map(|v| {
                v.chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            })
            .unwrap_or_default();
        Block::record_at_from(&bytes, &offsets, index)
            .map(Some)
            .map_err(|e| {
                Corruption::Counter(format!("record {index} of {dept}#{height}: {e}")).into()
            })
    }

    pub fn block_at(&self, dept: &DepartmentId, height: u64) -> Result<Option<Block>, StoreError> {
        let Some(hash) = self.chain.get(chain_key(dept, height))? else {
            return Ok(None);
        };
        self.block_by_hash(&hash)
    }

    pub fn block_by_hash(&self, hash: &[u8]) -> Result<Option<Block>, StoreError> {
        match self.blocks.get(hash)? {
            Some(b) => Block::decode(&b).map(Some).map_err(|source| {
                Corruption::Block {
                    hash: hex::encode(hash),
                    source,
                }
                .into()
            }),
            None => Ok(None),
        }
    }

    /// Encoded blocks of `dept` from height `from`, at most `count` blocks and about
    /// `bytes_max` bytes (at least one block if any exists).
    pub fn blocks_from(
        &self,
        dept: &DepartmentId,
        from: u64,
        count: usize,
        bytes_max: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        let mut total = 0;
        let start = chain_key(dept, from.max(1));
        let end = chain_key(dept, u64::MAX);
        for item in self.chain.range(start..=end) {
            let (_, hash) = item?;
            let Some(b) = self.blocks.get(&hash)? else {
                return Err(Corruption::ChainNamesMissingBlock(dept.clone()).into());
            };
            total += b.len();
            if !out.is_empty() && (total > bytes_max || out.len() >= count) {
                break;
            }
            out.push(b.to_vec());
        }
        Ok(out)
    }

    pub fn heads(&self) -> Result<Vec<(DepartmentId, Head)>, StoreError> {
        let mut out = Vec::new();
        for item in self.heads.iter() {
            let (k, v) = item?;
            let dept = std::str::from_utf8(&k)
                .ok()
                .and_then(|s| DepartmentId::parse(s).ok())
                .ok_or_else(|| Corruption::HeadKey(hex::encode(&k)))?;
            let head = decode_head(&v).ok_or_else(|| Corruption::Head(dept.clone()))?;
            out.push((dept, head));
        }
        Ok(out)
    }

    /// The private COSE bytes of a credential this department issued.
    pub fn credential(&self, id: &LicenceId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .credentials
            .get(id.to_string().as_bytes())?
            .map(|v| v.to_vec()))
    }

    /// The next unused serial for a licence type of this department.
    pub fn next_serial(&self, t: &LicenceType) -> Result<u64, StoreError> {
        Ok(match self.meta.get(format!("serial/{t}").as_bytes())? {
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| Corruption::Serial(t.clone()))?,
            ),
            None => 1,
        })
    }

    pub fn licence_count(&self) -> usize {
        self.licence_count
            .load(std::sync::atomic::Ordering::Relaxed) as usize
    }

    /// Every stored licence index entry, for the integrity check.
    pub fn licences(
        &self,
    ) -> impl Iterator<Item = Result<(String, Option<LicenceState>), StoreError>> + '_ {
        self.licences.iter().map(|r| {
            let (k, v) = r?;
            Ok((String::from_utf8_lossy(&k).into_owned(), decode_state(&v)))
        })
    }

    /// Every (department, height, hash) in the chain index, in key order.
    pub fn chain_entries(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + '_ {
        self.chain.iter().map(|r| {
            let (k, v) = r?;
            Ok((k.to_vec(), v.to_vec()))
        })
    }

    /// The block hash the chain index names at `dept`'s `height`, read as stored (the
    /// integrity check compares it with the block's own hash).
    pub fn chain_hash_at(
        &self,
        dept: &DepartmentId,
        height: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.chain.get(chain_key(dept, height))?.map(|v| v.to_vec()))
    }

    /// The chain index of `dept` above `height`, in height order, as stored.
    pub fn chain_entries_above(
        &self,
        dept: &DepartmentId,
        height: u64,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + '_ {
        let start = chain_key(dept, height.saturating_add(1));
        let end = chain_key(dept, u64::MAX);
        // `height + 1` overflowing means nothing lies above: an empty range.
        let empty = height == u64::MAX;
        self.chain
            .range(start..=end)
            .filter(move |_| !empty)
            .map(|r| {
                let (k, v) = r?;
                Ok((k.to_vec(), v.to_vec()))
            })
    }

    /// The licence index entry of `id` as stored: `None` when absent, `Some(None)` when
    /// its bytes do not decode (the integrity check reports the difference).
    pub fn licence_entry(
        &self,
        id: &LicenceId,
    ) -> Result<Option<Option<LicenceState>>, StoreError> {
        Ok(self
            .licences
            .get(id.to_string().as_bytes())?
            .map(|v| decode_state(&v)))
    }

    /// Every stored credential (key as stored, COSE bytes), for the integrity check.
    pub fn credential_entries(
        &self,
    ) -> impl Iterator<Item = Result<(String, Vec<u8>), StoreError>> + '_ {
        self.credentials.iter().map(|r| {
            let (k, v) = r?;
            Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
        })
    }

    /// Every piece of stored evidence (key, bytes), for the integrity check.
    pub fn evidence_entries(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + '_ {
        self.evidence.iter().map(|r| {
            let (k, v) = r?;
            Ok((k.to_vec(), v.to_vec()))
        })
    }

    /// Every `meta` entry (key, value), for the integrity check.
    pub fn meta_entries(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + '_ {
        self.meta.iter().map(|r| {
            let (k, v) = r?;
            Ok((k.to_vec(), v.to_vec()))
        })
    }

    /// Writes `value` under `key` in `tree` bypassing every rule: tests of the integrity
    /// check corrupt a real data directory with it. `None` removes the key.
    #[cfg(test)]
    pub(crate) fn corrupt(&self, tree: &str, key: &[u8], value: Option<&[u8]>) {
        let t = match tree {
            "blocks" => &self.blocks,
            "chain" => &self.chain,
            "heads" => &self.heads,
            "licences" => &self.licences,
            "credentials" => &self.credentials,
            "evidence" => &self.evidence,
            "meta" => &self.meta,
            "merkle" => &self.merkle,
            "status" => &self.status,
            other => panic!("no tree {other}"),
        };
        match value {
            Some(v) => t.insert(key, v).map(drop),
            None => t.remove(key).map(drop),
        }
        .expect("raw write");
        self.db.flush().expect("flush");
    }

    /// The bytes stored under `key` in `tree` (tests copy entries with it).
    #[cfg(test)]
    pub(crate) fn raw(&self, tree: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.db
            .open_tree(tree)
            .expect("tree")
            .get(key)
            .expect("read")
            .map(|v| v.to_vec())
    }

    /// Where `dept`'s stored hash `(level, index)` is: the `merkle` key of the entry
    /// holding it and its byte offset in the value (tests corrupt one hash with it).
    #[cfg(test)]
    pub(crate) fn stored_hash_place(
        &self,
        dept: &DepartmentId,
        level: u8,
        index: u64,
    ) -> Option<(Vec<u8>, usize)> {
        let leaf = tlog::completing_leaf(level, index)?;
        match self.merkle_reader(dept).block_of(leaf) {
            Some(b) => {
                let at = tlog::appended_position(b.start, level, index)?;
                Some((
                    merkle_key(dept, BLOCK_HASHES_LEVEL, b.end),
                    8 + 32 * at as usize,
                ))
            }
            None => Some((merkle_key(dept, level, index), 0)),
        }
    }

    /// Rewrites `dept`'s block entries of stored hashes as one entry per hash, as data
    /// directories written before blocks' hashes were kept together hold them.
    #[cfg(test)]
    pub(crate) fn unpack_block_hashes(&self, dept: &DepartmentId) {
        let from = merkle_key(dept, BLOCK_HASHES_LEVEL, 0);
        let to = merkle_key(dept, BLOCK_HASHES_LEVEL, u64::MAX);
        let entries: Vec<(sled::IVec, sled::IVec)> = self
            .merkle
            .range(from..=to)
            .collect::<Result<_, _>>()
            .expect("read");
        for (k, v) in entries {
            let b = BlockHashes::parse(&k, v).expect("a whole entry");
            for leaf in b.start..b.end {
                for level in 0..=leaf.trailing_ones() as u8 {
                    let index = leaf >> level;
                    let h = b.hash(level, index).expect("the leaf added it");
                    self.merkle
                        .insert(merkle_key(dept, level, index), &h.0[..])
                        .expect("write");
                }
            }
            self.merkle.remove(&k).expect("remove");
        }
        self.db.flush().expect("flush");
    }

    /// The chain index key of `dept` at `height` (evidence is keyed the same way).
    pub(crate) fn chain_key(dept: &DepartmentId, height: u64) -> Vec<u8> {
        chain_key(dept, height)
    }

    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// What each tree holds: entries and the bytes of their keys and values, as sled
    /// hands them over (before its own page and log overhead). Reads every tree whole:
    /// for `huren-node usage` and the benchmark's breakdown, never on a request path.
    pub fn usage(&self) -> Result<Vec<TreeUsage>, StoreError> {
        let trees = [
            ("blocks", &self.blocks),
            ("chain", &self.chain),
            ("heads", &self.heads),
            ("licences", &self.licences),
            ("history", &self.history),
            ("transfers", &self.transfers),
            ("credentials", &self.credentials),
            ("evidence", &self.evidence),
            ("governance", &self.governance),
            ("gov_evidence", &self.gov_evidence),
            ("merkle", &self.merkle),
            ("status", &self.status),
            ("checkpoints", &self.checkpoints),
            ("witnessed", &self.witnessed),
            ("checkpoint_evidence", &self.checkpoint_evidence),
            ("meta", &self.meta),
        ];
        let mut out = Vec::with_capacity(trees.len());
        for (name, tree) in trees {
            let mut u = TreeUsage {
                tree: name,
                entries: 0,
                key_bytes: 0,
                value_bytes: 0,
            };
            for kv in tree.iter() {
                let (k, v) = kv?;
                u.entries += 1;
                u.key_bytes += k.len() as u64;
                u.value_bytes += v.len() as u64;
            }
            out.push(u);
        }
        Ok(out)
    }

    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

impl ChainView for Store {
    fn head(&self, department: &DepartmentId) -> Option<Head> {
        // A storage error here reads as "unknown", which makes validation refuse the
        // block (gap/fork) rather than accept it: the safe direction.
        self.heads
            .get(department.as_str().as_bytes())
            .ok()
            .flatten()
            .and_then(|v| decode_head(&v))
    }

    fn licence(&self, id: &LicenceId) -> Option<LicenceState> {
        self.licences
            .get(id.to_string().as_bytes())
            .ok()
            .flatten()
            .and_then(|v| decode_state(&v))
    }

    fn transfer(&self, origin: &LicenceId) -> Option<Transfer> {
        self.transfers
            .get(origin.to_string().as_bytes())
            .ok()
            .flatten()
            .and_then(|v| decode_transfer(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huren_core::ledger::{BlockHeader, RevokeReason, SuspendReason};

    #[cfg(unix)]
    #[test]
    fn a_new_data_directory_is_the_node_users_alone() {
        use std::os::unix::fs::PermissionsExt;
        let founded = huren_testkit::Founded::example().expect("founded");
        let dir = founded.path("fresh").join("data");
        let _store = Store::open(&dir, &founded.network().expect("genesis")).expect("open");
        let mode = std::fs::metadata(&dir).expect("dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn usage_counts_every_entry_of_every_tree() {
        let founded = huren_testkit::Founded::example().expect("founded");
        let net = founded.network().expect("genesis");
        let store = Store::open(&founded.path("u").join("data"), &net).expect("open");
        let usage = store.usage().expect("usage");
        assert_eq!(usage.len(), 16, "every tree");
        let meta = usage.iter().find(|t| t.tree == "meta").expect("meta");
        // A new store holds the genesis hash and the licence count.
        assert_eq!(meta.entries, 2);
        assert_eq!(
            meta.key_bytes,
            ("genesis".len() + LICENCE_COUNT_KEY.len()) as u64
        );
        assert_eq!(meta.value_bytes, 32 + 8);
        assert!(usage
            .iter()
            .filter(|t| t.tree != "meta")
            .all(|t| t.entries == 0));
    }

    /// The `merkle` entries of `dept`'s tree: block entries (by where each ends) and
    /// single-hash entries (by level and index).
    fn merkle_entries(store: &Store, dept: &DepartmentId) -> (Vec<u64>, Vec<(u8, u64)>) {
        let (mut blocks, mut single) = (Vec::new(), Vec::new());
        for kv in store.merkle.scan_prefix(dept_prefix(dept)) {
            let (k, _) = kv.expect("read");
            let (level, n) = k[k.len() - 9..].split_first().expect("level");
            let n = u64::from_be_bytes(n.try_into().expect("u64"));
            match *level {
                BLOCK_HASHES_LEVEL => blocks.push(n),
                BLOCK_END_LEVEL | RECORD_OFFSETS_LEVEL => {}
                l => single.push((l, n)),
            }
        }
        (blocks, single)
    }

    /// Every root, inclusion proof and consistency proof of `dept`'s stored tree, against
    /// a tree recomputed from `leaves` apart from the store (`Frontier`, and proofs checked
    /// against its roots).
    fn tree_answers(store: &Store, dept: &DepartmentId, leaves: &[Hash32]) -> Vec<Vec<Hash32>> {
        let size = leaves.len() as u64;
        assert_eq!(store.tree_size(dept).expect("size"), size);
        let mut f = tlog::Frontier::default();
        let mut roots = vec![f.root()];
        for l in leaves {
            f.push(*l);
            roots.push(f.root());
        }
        let mut answers = Vec::new();
        for n in 0..=size {
            let root = store.tree_root(dept, n).expect("root");
            assert_eq!(root, roots[n as usize], "root at {n}");
            answers.push(vec![root]);
            for i in 0..n {
                let p = store.inclusion_proof(dept, i, n).expect("inclusion");
                tlog::verify_inclusion(&leaves[i as usize], i, n, &p, &root).expect("verifies");
                answers.push(p);
            }
            let c = store.consistency_proof(dept, n, size).expect("consistency");
            tlog::verify_consistency(n, size, &root, &roots[size as usize], &c).expect("verifies");
            answers.push(c);
        }
        assert!(
            store.tree_root(dept, size + 1).is_err(),
            "nothing past the size"
        );
        answers
    }

    /// A data directory written when each stored hash had its own entry still gives the
    /// same roots and proofs; blocks appended on top keep their hashes in one entry each;
    /// a compromise that cuts blocks of both kinds removes the entries of both; and the
    /// integrity check finds nothing wrong at any step.
    #[test]
    fn record_trees_stored_a_hash_per_entry_still_answer_and_grow() {
        use crate::ledger::tests::{TestLedger, GD, NOW};
        use crate::ledger::{Admission, GovReceipt};
        use huren_core::governance::GovRecord;
        let t = TestLedger::new();
        let gd = DepartmentId::parse(GD).expect("gd");
        let store = t.ledger.store().clone();
        let checked = || {
            let clock = crate::clock::ManualClock::at(NOW);
            let net = t.founded.network().expect("genesis");
            let s = crate::check::run(&net, &store, &*clock, crate::check::Options::default())
                .expect("check runs");
            assert!(s.ok(), "{:?}", s.mismatches);
            assert!(s.records > 0);
        };
        // Block `height` of `height` issues on `chain`, signed by `sign`, applied.
        let add = |height: u64,
                   sign: &dyn Fn(BlockHeader) -> Block,
                   chain: &mut Vec<Block>,
                   leaves: &mut Vec<Hash32>| {
            let mut h = match chain.last() {
                Some(p) => {
                    let mut h = p.header.clone();
                    h.prev = p.hash();
                    h
                }
                None => t.block(GD, GD, 1, vec![]).header,
            };
            h.height = height;
            h.records = (0..height)
                .map(|i| TestLedger::issue(GD, height * 10 + i))
                .collect();
            let b = sign(h);
            for (i, r) in b.header.records.iter().enumerate() {
                leaves.push(tlog::leaf_hash(&r.leaf(height, i)));
            }
            assert!(
                matches!(t.receive(b.clone()), Admission::Applied(_)),
                "block {height}"
            );
            chain.push(b);
        };
        let (mut chain, mut leaves) = (Vec::new(), Vec::new());
        let own = t.key(GD);
        let by_own = |h: BlockHeader| h.sign(&own);
        for height in 1..=5 {
            add(height, &by_own, &mut chain, &mut leaves);
        }
        let (packed, single) = merkle_entries(&store, &gd);
        assert_eq!(
            packed,
            vec![1, 3, 6, 10, 15],
            "one entry per block, by its end"
        );
        assert!(single.is_empty());
        let new_form = tree_answers(&store, &gd, &leaves);
        checked();

        // The same tree, written the old way.
        store.unpack_block_hashes(&gd);
        let (packed, single) = merkle_entries(&store, &gd);
        assert!(packed.is_empty());
        assert_eq!(single.len() as u128, tlog::stored_count(15));
        assert_eq!(tree_answers(&store, &gd, &leaves), new_form);
        checked();

        // Blocks on top, whose first hashes need the old entries along the right edge.
        for height in 6..=7 {
            add(height, &by_own, &mut chain, &mut leaves);
        }
        let (packed, single) = merkle_entries(&store, &gd);
        assert_eq!(packed, vec![21, 28]);
        assert_eq!(single.len() as u128, tlog::stored_count(15));
        tree_answers(&store, &gd, &leaves);
        checked();

        // A compromise after block 4 cuts block 5 (its hashes one per entry) and 6, 7.
        let replacement = huren_core::SecretKey::from_seed(&[81; 32]);
        let record = t.gov(
            &["gd.market", "gd.health", "sh.transport"],
            GovRecord::KeyCompromised {
                department: gd.clone(),
                last_good: 4,
                replacement: replacement.public(),
            },
        );
        assert!(matches!(
            t.ledger.receive_gov(record).expect("storage"),
            GovReceipt::Applied(_)
        ));
        chain.truncate(4);
        leaves.truncate(10);
        let (packed, single) = merkle_entries(&store, &gd);
        assert!(packed.is_empty(), "{packed:?}");
        assert_eq!(single.len() as u128, tlog::stored_count(10));
        tree_answers(&store, &gd, &leaves);
        checked();

        // The chain goes on under the replacement key, in the new form.
        let by_replacement = |mut h: BlockHeader| {
            h.gov = 1;
            h.sign(&replacement)
        };
        add(5, &by_replacement, &mut chain, &mut leaves);
        let (packed, _) = merkle_entries(&store, &gd);
        assert_eq!(packed, vec![15]);
        tree_answers(&store, &gd, &leaves);
        checked();
    }

    /// The fixed 99-byte form the node wrote before the compact one.
    fn fixed_state(s: &LicenceState) -> [u8; STATE_BYTES_V3] {
        let mut b = [0u8; STATE_BYTES_V3];
        b[..2].copy_from_slice(&s.status.to_bytes());
        b[2..34].copy_from_slice(&s.commitment.0);
        b[34..42].copy_from_slice(&s.valid_from.to_be_bytes());
        b[42..50].copy_from_slice(&s.valid_until.to_be_bytes());
        b[50..58].copy_from_slice(&s.issued_height.to_be_bytes());
        b[58..66].copy_from_slice(&s.updated_height.to_be_bytes());
        b[66..74].copy_from_slice(&s.issuer_key.0);
        b[74..78].copy_from_slice(&s.issued_index.to_be_bytes());
        if let Some(u) = s.suspended_until {
            b[78] = 1;
            b[79..87].copy_from_slice(&u.to_be_bytes());
        }
        b[87..95].copy_from_slice(&s.status_height.to_be_bytes());
        b[95..99].copy_from_slice(&s.status_index.to_be_bytes());
        b
    }

    fn a_state(status: LicenceStatus) -> LicenceState {
        LicenceState {
            status,
            commitment: Hash32::digest(b"c"),
            valid_from: -5,
            valid_until: 1_900_000_000,
            issued_height: 3,
            issued_index: 41,
            updated_height: 9,
            issuer_key: KeyId([7; 8]),
            suspended_until: Some(1_800_000_000),
            status_height: 8,
            status_index: 3,
        }
    }

    #[test]
    fn state_encoding_round_trips() {
        for status in [
            LicenceStatus::Active,
            LicenceStatus::Suspended(SuspendReason::Investigation),
            LicenceStatus::Revoked(RevokeReason::Penalty),
            LicenceStatus::Revoked(RevokeReason::Cancelled),
            LicenceStatus::Transferred,
        ] {
            let s = a_state(status);
            assert_eq!(decode_state(&encode_state(&s)), Some(s));
            let s_plain = LicenceState {
                suspended_until: None,
                ..s
            };
            assert_eq!(decode_state(&encode_state(&s_plain)), Some(s_plain));
            // A licence with only its issue: the status record and the last update are
            // the issue, and take no bytes.
            let issued = LicenceState {
                updated_height: 3,
                status_height: 3,
                status_index: 41,
                suspended_until: None,
                ..s
            };
            let b = encode_state(&issued);
            assert_eq!(decode_state(&b), Some(issued));
            assert!(b.len() <= 60, "{} bytes", b.len());
            // Nor an unknown status record (a state from before it was kept).
            let unknown = LicenceState {
                status_height: 0,
                status_index: 0,
                ..s
            };
            assert_eq!(decode_state(&encode_state(&unknown)), Some(unknown));
            // The fixed forms written before read as they always did.
            assert_eq!(decode_state(&fixed_state(&s)), Some(s));
            let v2 = &fixed_state(&s)[..STATE_BYTES_V2];
            assert_eq!(
                decode_state(v2),
                Some(LicenceState {
                    suspended_until: None,
                    status_height: 0,
                    status_index: 0,
                    ..s
                })
            );
            // A state written before the index was kept reads with it unknown.
            let old = &fixed_state(&s)[..STATE_BYTES_V1];
            assert_eq!(
                decode_state(old),
                Some(LicenceState {
                    issued_index: u32::MAX,
                    suspended_until: None,
                    status_height: 0,
                    status_index: 0,
                    ..s
                })
            );
        }
        // Extremes round-trip.
        let far = LicenceState {
            valid_from: i64::MIN,
            valid_until: i64::MAX,
            issued_height: u64::MAX,
            issued_index: u32::MAX,
            updated_height: u64::MAX - 1,
            suspended_until: Some(i64::MIN),
            status_height: u64::MAX,
            status_index: 0,
            ..a_state(LicenceStatus::Active)
        };
        assert_eq!(decode_state(&encode_state(&far)), Some(far));
        assert_eq!(decode_state(&[9; 74]), None);
        assert_eq!(
            decode_state(&[0; 99]).map(|s| s.suspended_until),
            Some(None)
        );
        let mut bad_flag = [0u8; 99];
        bad_flag[78] = 2;
        assert_eq!(decode_state(&bad_flag), None);
        assert_eq!(decode_state(&[9; 78]), None);
        assert_eq!(decode_state(&[0; 3]), None);
        // Compact forms cut short, with a byte too many, or with contradicting flags.
        let b = encode_state(&a_state(LicenceStatus::Active));
        for n in 0..b.len() {
            assert_eq!(decode_state(&b[..n]), None, "cut at {n}");
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(decode_state(&long), None);
        let mut both = b.clone();
        both[0] |= STATE_STATUS_RECORD | STATE_STATUS_IS_ISSUE;
        assert_eq!(decode_state(&both), None);
        let mut unknown_flag = b;
        unknown_flag[0] |= 0x40;
        assert_eq!(decode_state(&unknown_flag), None);
    }

    proptest::proptest! {
        #[test]
        fn compact_states_round_trip(
            valid_from: i64, valid_until: i64, issued_height: u64, issued_index: u32,
            updated_height: u64, until: Option<i64>, status_height: u64, status_index: u32,
        ) {
            let s = LicenceState {
                valid_from, valid_until, issued_height, issued_index, updated_height,
                suspended_until: until, status_height, status_index,
                ..a_state(LicenceStatus::Active)
            };
            proptest::prop_assert_eq!(decode_state(&encode_state(&s)), Some(s));
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..160)) {
            let _ = decode_state(&b);
        }
    }
}
