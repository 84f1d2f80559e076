//! Pure admission rules for blocks: may this block extend this department's chain?
//!
//! `validate_block` takes the network (genesis), a read-only view of the chain state so
//! far and the current time, and either returns a `ValidatedBlock` (the only thing the
//! store accepts) or a `BlockError` naming the first rule that failed. Each error knows
//! whether the sender misbehaved (`Disposition::Reject`, penalise) or the block is merely
//! early, late or already known (`Disposition::Ignore`). Nothing here does I/O.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, KeyId};
use crate::genesis::Network;
use crate::ids::{DepartmentId, LicenceId, LicenceType};
use crate::ledger::{Block, Record, RevokeReason, SuspendReason};
use crate::lifecycle::{transition, Refusal, Standing};

/// The tip of one department's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub height: u64,
    pub hash: Hash32,
    pub time_ms: u64,
    /// The governance height the block names: the chain's next block may not name less.
    pub gov: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum LicenceStatus {
    Active,
    Suspended(SuspendReason),
    Revoked(RevokeReason),
    /// Transferred out (转出) to a department of another region: final for this id.
    Transferred,
}

impl LicenceStatus {
    /// The two bytes that stand for the status and its reason wherever it is stored or
    /// hashed (the store's licence index, the status set of a checkpoint).
    pub fn to_bytes(self) -> [u8; 2] {
        match self {
            LicenceStatus::Active => [0, 0],
            LicenceStatus::Suspended(r) => [
                1,
                match r {
                    SuspendReason::Penalty => 0,
                    SuspendReason::Investigation => 1,
                    SuspendReason::Other => 2,
                },
            ],
            LicenceStatus::Revoked(r) => [
                2,
                match r {
                    RevokeReason::Withdrawn => 0,
                    RevokeReason::Cancelled => 1,
                    RevokeReason::Penalty => 2,
                },
            ],
            LicenceStatus::Transferred => [3, 0],
        }
    }

    /// The status two bytes stand for, if any.
    pub fn from_bytes(b: [u8; 2]) -> Option<Self> {
        Some(match b {
            [0, 0] => LicenceStatus::Active,
            [1, 0] => LicenceStatus::Suspended(SuspendReason::Penalty),
            [1, 1] => LicenceStatus::Suspended(SuspendReason::Investigation),
            [1, 2] => LicenceStatus::Suspended(SuspendReason::Other),
            [2, 0] => LicenceStatus::Revoked(RevokeReason::Withdrawn),
            [2, 1] => LicenceStatus::Revoked(RevokeReason::Cancelled),
            [2, 2] => LicenceStatus::Revoked(RevokeReason::Penalty),
            [3, 0] => LicenceStatus::Transferred,
            _ => return None,
        })
    }
}

/// What the ledger knows of one licence: no personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceState {
    pub status: LicenceStatus,
    pub commitment: Hash32,
    pub valid_from: i64,
    pub valid_until: i64,
    /// Height of the block that issued it.
    pub issued_height: u64,
    /// Index of the issue record in that block (`u32::MAX`: not known, a state written
    /// before it was kept): with the height, where its leaf is in the record tree.
    pub issued_index: u32,
    /// Height of the block that last changed it (on the chain of the department that
    /// changed it: the issuer, or its successor after a retirement).
    pub updated_height: u64,
    /// The key that signed the block that issued it: the one key its credential may be
    /// signed with.
    pub issuer_key: KeyId,
    /// When a timed suspension ends by itself (unix seconds); `None` for none, or one
    /// that lasts until reinstated.
    pub suspended_until: Option<i64>,
    /// Where the record that set its status is: block height (on the chain that carried
    /// it) and index; (0, 0) while it stands as issued. What an annulment must name.
    pub status_height: u64,
    pub status_index: u32,
}

/// Where a licence stands at a moment: its ledger status with the clock applied, derived,
/// never stored (a licence lapses without a record). A revocation is final and comes
/// first; a lapsed licence is expired whether or not it was suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LicencePhase {
    Active,
    /// 未生效: its validity has not started.
    NotYetValid,
    /// 失效: its validity has passed.
    Expired,
    Suspended,
    Revoked,
    /// Transferred out: it lives on under another department's id.
    Transferred,
}

impl LicenceState {
    /// Where it stands at `now` (unix seconds).
    pub fn phase(&self, now: i64) -> LicencePhase {
        match self.standing(now) {
            Standing::Revoked => LicencePhase::Revoked,
            Standing::Transferred => LicencePhase::Transferred,
            _ if now >= self.valid_until => LicencePhase::Expired,
            Standing::Suspended => LicencePhase::Suspended,
            _ if now < self.valid_from => LicencePhase::NotYetValid,
            _ => LicencePhase::Active,
        }
    }

    /// Its ledger status at `now` (unix seconds), with a timed suspension that has ended
    /// counted as active: what the transition table is read with.
    pub fn standing(&self, now: i64) -> Standing {
        match self.status {
            LicenceStatus::Active => Standing::Active,
            LicenceStatus::Suspended(_) if self.suspended_until.is_some_and(|u| now >= u) => {
                Standing::Active
            }
            LicenceStatus::Suspended(_) => Standing::Suspended,
            LicenceStatus::Revoked(_) => Standing::Revoked,
            LicenceStatus::Transferred => Standing::Transferred,
        }
    }

    /// The height of the block whose record set its status (the issue's, for a state
    /// kept before status records were tracked).
    pub fn status_record_height(&self) -> u64 {
        if self.status_height > 0 {
            self.status_height
        } else {
            self.updated_height
        }
    }

    /// The ledger status at `now`: a timed suspension that has ended reads as active.
    pub fn status_at(&self, now: i64) -> LicenceStatus {
        match self.standing(now) {
            Standing::Active => LicenceStatus::Active,
            _ => self.status,
        }
    }
}

/// The networks a block is judged by: the newest this node holds (which key signs which
/// department height, retirements) and the one at the governance height the block names
/// (grants, licence types, successors). A `Network` alone is a view with one height.
pub trait GovView {
    fn newest(&self) -> &Network;
    /// The network at governance height `gov`, if held.
    fn at(&self, gov: u64) -> Option<&Network>;
}

impl GovView for Network {
    fn newest(&self) -> &Network {
        self
    }
    fn at(&self, gov: u64) -> Option<&Network> {
        (gov == self.gov_height()).then_some(self)
    }
}

/// Read access to the chain state that validation needs. The node's store implements
/// it; tests implement it over a `HashMap`.
pub trait ChainView {
    fn head(&self, department: &DepartmentId) -> Option<Head>;
    fn licence(&self, id: &LicenceId) -> Option<LicenceState>;
    /// Where a transferred-out licence went: the department its transfer names, and the
    /// id the receiving department issued for it once that is on the ledger.
    fn transfer(&self, origin: &LicenceId) -> Option<Transfer>;
}

/// A transfer out (转出) and, once recorded, its transfer in (转入).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub to: DepartmentId,
    pub accepted_as: Option<LicenceId>,
}

/// What a transfer in must match on the origin's side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferProblem {
    #[error("{to} is not a department of this network")]
    UnknownDepartment { to: DepartmentId },
    #[error("{to} has retired")]
    Retired { to: DepartmentId },
    #[error("{to} is in the same region; a transfer moves a licence between regions")]
    SameRegion { to: DepartmentId },
    #[error("{to} may not issue {licence_type}")]
    NotGranted {
        to: DepartmentId,
        licence_type: LicenceType,
    },
    #[error("the origin {origin} is of another licence type")]
    OtherType { origin: LicenceId },
    #[error("the origin {origin} has not been transferred out (as this node holds its chain)")]
    NotTransferred { origin: LicenceId },
    #[error("the origin {origin} was transferred to {to}, not to this department")]
    ToAnother { origin: LicenceId, to: DepartmentId },
    #[error("the origin {origin} was already transferred in as {accepted_as}")]
    AlreadyAccepted {
        origin: LicenceId,
        accepted_as: LicenceId,
    },
}

/// How far ahead of this node's clock a block's time may be (clock skew between nodes).
/// Fifteen minutes: a node whose time synchronisation failed drifts or is set minutes off
/// (the fault drills run nodes ±10 minutes off), and a bound tighter than that would make
/// its peers ignore every block it signs. A licence's validity is counted in days and years,
/// so starting one fifteen minutes early changes nothing a window cares about.
pub const FUTURE_SKEW_MS_MAX: u64 = 15 * 60 * 1000;

/// What to do with the sender of a block that failed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The block is invalid by construction: drop it and penalise whoever sent it.
    Reject,
    /// The block may be fine but does not fit now (already known, early, clock skew).
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block {department}#{height} belongs to another network (genesis {found}, expected {expected})")]
    WrongNetwork {
        department: DepartmentId,
        height: u64,
        found: String,
        expected: String,
    },
    #[error("block from {0}, which genesis does not name")]
    UnknownDepartment(DepartmentId),
    #[error("block {department}#{height}: signature is not by the department's issuer key")]
    BadSignature {
        department: DepartmentId,
        height: u64,
    },
    #[error("block {department}#{height}: signed with a key declared compromised after height {last_good}")]
    KeyCompromised {
        department: DepartmentId,
        height: u64,
        last_good: u64,
    },
    #[error("block {department}#{height}: {department} retired after its block {last_height}")]
    Retired {
        department: DepartmentId,
        height: u64,
        last_height: u64,
    },
    #[error("block {department}#{height} names governance height {gov}; this node holds {held}")]
    GovAhead {
        department: DepartmentId,
        height: u64,
        gov: u64,
        held: u64,
    },
    #[error(
        "block {department}#{height} names governance height {gov}, below its parent's {parent}"
    )]
    GovBackwards {
        department: DepartmentId,
        height: u64,
        gov: u64,
        parent: u64,
    },
    #[error("block {department}#{height}: already have the chain up to height {head}")]
    AlreadyHave {
        department: DepartmentId,
        height: u64,
        head: u64,
    },
    #[error("block {department}#{height}: chain is only at height {head}, blocks in between are missing")]
    Gap {
        department: DepartmentId,
        height: u64,
        head: u64,
    },
    #[error("block {department}#{height}: previous hash {prev} does not match head {head}")]
    Fork {
        department: DepartmentId,
        height: u64,
        prev: String,
        head: String,
    },
    #[error("block {department}#{height} has no records")]
    Empty {
        department: DepartmentId,
        height: u64,
    },
    #[error("block {department}#{height} has {records} records, at most {max}")]
    TooManyRecords {
        department: DepartmentId,
        height: u64,
        records: usize,
        max: usize,
    },
    #[error("block {department}#{height}: time {time_ms} is before its parent's {parent_ms}")]
    TimeBeforeParent {
        department: DepartmentId,
        height: u64,
        time_ms: u64,
        parent_ms: u64,
    },
    #[error("block {department}#{height}: time {time_ms} is more than {FUTURE_SKEW_MS_MAX} ms ahead of now ({now_ms})")]
    FromFuture {
        department: DepartmentId,
        height: u64,
        time_ms: u64,
        now_ms: u64,
    },
    #[error("block {department}#{height}: record {index} concerns {licence}, which belongs to another department")]
    ForeignLicence {
        department: DepartmentId,
        height: u64,
        index: usize,
        licence: LicenceId,
    },
    #[error("block {department}#{height}: record {index} issues {licence_type}, which genesis does not grant to {department}")]
    TypeNotGranted {
        department: DepartmentId,
        height: u64,
        index: usize,
        licence_type: LicenceType,
    },
    #[error(
        "block {department}#{height}: record {index} issues {licence}, which was already issued"
    )]
    DuplicateIssue {
        department: DepartmentId,
        height: u64,
        index: usize,
        licence: LicenceId,
    },
    #[error("block {department}#{height}: record {index}: validity of {licence} is {problem}")]
    BadValidity {
        department: DepartmentId,
        height: u64,
        index: usize,
        licence: LicenceId,
        problem: crate::genesis::ValidityProblem,
    },
    #[error("block {department}#{height}: record {index} ({kind}) concerns {licence}, which was never issued")]
    UnknownLicence {
        department: DepartmentId,
        height: u64,
        index: usize,
        kind: &'static str,
        licence: LicenceId,
    },
    #[error("block {department}#{height}: record {index} ({kind}) concerns {licence}, which is revoked for good")]
    AlreadyRevoked {
        department: DepartmentId,
        height: u64,
        index: usize,
        kind: &'static str,
        licence: LicenceId,
    },
    #[error("block {department}#{height}: record {index} ({kind}) concerns {licence}, which was transferred out for good")]
    AlreadyTransferred {
        department: DepartmentId,
        height: u64,
        index: usize,
        kind: &'static str,
        licence: LicenceId,
    },
    #[error("block {department}#{height}: record {index} transfers {licence}: {problem}")]
    BadTransfer {
        department: DepartmentId,
        height: u64,
        index: usize,
        licence: LicenceId,
        problem: TransferProblem,
    },
    #[error("block {department}#{height}: record {index} annuls record {annuls_index} of block {annuls_height} of {licence}, which is not the record its status stands on ({status_index} of block {status_height})")]
    AnnulMismatch {
        department: DepartmentId,
        height: u64,
        index: usize,
        licence: LicenceId,
        annuls_height: u64,
        annuls_index: u32,
        status_height: u64,
        status_index: u32,
    },
    #[error("block {department}#{height}: record {index} suspends {licence} until {until}, which is not after the block's time")]
    BadSuspension {
        department: DepartmentId,
        height: u64,
        index: usize,
        licence: LicenceId,
        until: i64,
    },
    #[error("block {department}#{height} is written in protocol version {version}, but the network's version at governance height {gov} is {expected}")]
    WrongVersion {
        department: DepartmentId,
        height: u64,
        gov: u64,
        version: u32,
        expected: u32,
    },
    #[error("block {department}#{height} is written in protocol version {version}; this node reads up to {supported}: upgrade it")]
    VersionTooNew {
        department: DepartmentId,
        height: u64,
        version: u32,
        supported: u32,
    },
    #[error("block {department}#{height}: record {index} ({kind}) needs protocol version {needs}; the block is version {version}")]
    KindNotInVersion {
        department: DepartmentId,
        height: u64,
        index: usize,
        kind: &'static str,
        needs: u32,
        version: u32,
    },
    #[error("block {department}#{height}: record {index} ({kind}) does not apply to {licence} in state {status:?}")]
    WrongStatus {
        department: DepartmentId,
        height: u64,
        index: usize,
        kind: &'static str,
        licence: LicenceId,
        status: LicenceStatus,
    },
}

impl BlockError {
    pub fn disposition(&self) -> Disposition {
        match self {
            BlockError::AlreadyHave { .. }
            | BlockError::Gap { .. }
            | BlockError::GovAhead { .. }
            | BlockError::FromFuture { .. }
            // Too new for this node: its sender is ahead, not wrong.
            | BlockError::VersionTooNew { .. } => Disposition::Ignore,
            // A successor acting on its predecessor's licence before the predecessor's
            // chain has reached this node: early, not wrong.
            BlockError::UnknownLicence {
                department,
                licence,
                ..
            } if licence.department() != department => Disposition::Ignore,
            // A transfer in whose origin's transfer out has not reached this node yet.
            BlockError::BadTransfer {
                problem: TransferProblem::NotTransferred { .. },
                ..
            } => Disposition::Ignore,
            _ => Disposition::Reject,
        }
    }

    /// A short stable code for metrics labels and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            BlockError::WrongNetwork { .. } => "wrong_network",
            BlockError::UnknownDepartment(_) => "unknown_department",
            BlockError::BadSignature { .. } => "bad_signature",
            BlockError::KeyCompromised { .. } => "key_compromised",
            BlockError::Retired { .. } => "retired",
            BlockError::GovAhead { .. } => "gov_ahead",
            BlockError::GovBackwards { .. } => "gov_backwards",
            BlockError::AlreadyHave { .. } => "already_have",
            BlockError::Gap { .. } => "gap",
            BlockError::Fork { .. } => "fork",
            BlockError::Empty { .. } => "empty",
            BlockError::TooManyRecords { .. } => "too_many_records",
            BlockError::TimeBeforeParent { .. } => "time_before_parent",
            BlockError::FromFuture { .. } => "from_future",
            BlockError::ForeignLicence { .. } => "foreign_licence",
            BlockError::TypeNotGranted { .. } => "type_not_granted",
            BlockError::DuplicateIssue { .. } => "duplicate_issue",
            BlockError::BadValidity { .. } => "bad_validity",
            BlockError::UnknownLicence { .. } => "unknown_licence",
            BlockError::AlreadyRevoked { .. } => "already_revoked",
            BlockError::WrongStatus { .. } => "wrong_status",
            BlockError::AlreadyTransferred { .. } => "already_transferred",
            BlockError::BadTransfer { .. } => "bad_transfer",
            BlockError::AnnulMismatch { .. } => "annul_mismatch",
            BlockError::BadSuspension { .. } => "bad_suspension",
            BlockError::WrongVersion { .. } => "wrong_version",
            BlockError::VersionTooNew { .. } => "version_too_new",
            BlockError::KindNotInVersion { .. } => "kind_not_in_version",
        }
    }
}

/// A block that passed every rule against the chain state it was validated with, plus
/// the resulting state of every licence it touched. The store applies exactly this.
#[derive(Debug, Clone)]
pub struct ValidatedBlock {
    block: Block,
    changes: Vec<(LicenceId, LicenceState)>,
    superseded: Vec<(LicenceId, Superseded)>,
}

/// A credential a renewal, reissue or amendment replaced: its department's status set
/// holds it (`tlog::credential_status_key`) until its own expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superseded {
    pub commitment: Hash32,
    /// What replaced it: renew, reissue or amend.
    pub by: crate::ledger::RecordKind,
    /// The replaced credential's expiry (unix seconds): the entry leaves the set then.
    pub until: i64,
}

impl Superseded {
    /// Its status set entry: key and status bytes.
    pub fn entry(&self) -> [u8; 18] {
        let mut e = [0u8; 18];
        e[..16].copy_from_slice(&crate::tlog::credential_status_key(&self.commitment));
        e[16] = crate::tlog::SUPERSEDED;
        e[17] = crate::tlog::superseded_code(self.by).unwrap_or(u8::MAX);
        e
    }
}

impl LicenceState {
    /// The licence's status set entry and when it leaves the set by itself (a timed
    /// suspension's end), or `None` for an active licence.
    pub fn status_entry(&self, id: &LicenceId) -> Option<([u8; 18], Option<i64>)> {
        let e = crate::tlog::status_entry(id, self.status)?;
        let until = match self.status {
            LicenceStatus::Suspended(_) => self.suspended_until,
            _ => None,
        };
        Some((e, until))
    }
}

impl ValidatedBlock {
    pub fn block(&self) -> &Block {
        &self.block
    }
    pub fn into_block(self) -> Block {
        self.block
    }
    /// Final state of each licence the block touched, in first-touched order.
    pub fn changes(&self) -> &[(LicenceId, LicenceState)] {
        &self.changes
    }
    /// The credentials its renewals, reissues and amendments replaced, each with the
    /// licence it was of.
    pub fn superseded(&self) -> &[(LicenceId, Superseded)] {
        &self.superseded
    }
    pub fn head(&self) -> Head {
        Head {
            height: self.block.height(),
            hash: self.block.hash(),
            time_ms: self.block.header.time_ms,
            gov: self.block.header.gov,
        }
    }
}

/// Checks everything except the signature; `validate_block` adds that. Split so that a
/// node producing its own block (which it just signed) does not verify its own signature.
fn check_structure(
    gov: &impl GovView,
    view: &impl ChainView,
    block: &Block,
    now_ms: u64,
    records_max: usize,
) -> Result<(Vec<(LicenceId, LicenceState)>, Vec<(LicenceId, Superseded)>), BlockError> {
    let h = &block.header;
    let department = h.department.clone();
    let height = h.height;
    let newest = gov.newest();
    let Some(net) = gov.at(h.gov) else {
        return Err(BlockError::GovAhead {
            department,
            height,
            gov: h.gov,
            held: newest.gov_height(),
        });
    };
    let key = newest
        .signing_key(&department, height, h.gov)
        .map(|s| s.key.key_id())
        .ok_or_else(|| BlockError::BadSignature {
            department: department.clone(),
            height,
        })?;
    let head = view.head(&department);
    let head_height = head.map_or(0, |hd| hd.height);
    if height <= head_height {
        return Err(BlockError::AlreadyHave {
            department,
            height,
            head: head_height,
        });
    }
    if Some(height) != head_height.checked_add(1) {
        return Err(BlockError::Gap {
            department,
            height,
            head: head_height,
        });
    }
    let expected_prev = head.map_or(newest.hash(), |hd| hd.hash);
    if h.prev != expected_prev {
        return Err(BlockError::Fork {
            department,
            height,
            prev: h.prev.short(),
            head: expected_prev.short(),
        });
    }
    if h.records.is_empty() {
        return Err(BlockError::Empty { department, height });
    }
    if h.records.len() > records_max {
        return Err(BlockError::TooManyRecords {
            department,
            height,
            records: h.records.len(),
            max: records_max,
        });
    }
    if let Some(parent) = head {
        if h.gov < parent.gov {
            return Err(BlockError::GovBackwards {
                department,
                height,
                gov: h.gov,
                parent: parent.gov,
            });
        }
        if h.time_ms < parent.time_ms {
            return Err(BlockError::TimeBeforeParent {
                department,
                height,
                time_ms: h.time_ms,
                parent_ms: parent.time_ms,
            });
        }
    }
    if h.time_ms > now_ms.saturating_add(FUTURE_SKEW_MS_MAX) {
        return Err(BlockError::FromFuture {
            department,
            height,
            time_ms: h.time_ms,
            now_ms,
        });
    }

    let expected = net.protocol_version();
    if h.version != expected {
        return Err(BlockError::WrongVersion {
            department,
            height,
            gov: h.gov,
            version: h.version,
            expected,
        });
    }

    // Licence changes within this block, layered over the view.
    let place = Place {
        department: &department,
        height,
        time_ms: h.time_ms,
        version: h.version,
        key: &key,
    };
    let mut overlay = Overlay::new(view);
    for (index, record) in h.records.iter().enumerate() {
        overlay.admit(net, &place, index, record)?;
    }
    Ok(overlay.into_parts())
}

/// The block a record is in, as the rules need it.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub department: &'a DepartmentId,
    pub height: u64,
    /// The block's time, unix milliseconds: the clock a timed suspension is read by.
    pub time_ms: u64,
    /// The block's protocol version.
    pub version: u32,
    /// The key that signs the block (and the credentials its records bring in).
    pub key: &'a KeyId,
}

/// The chain as a block being built or checked sees it: the view below, plus the
/// block's own records so far. Block validation and block production both admit records
/// through it, so the two cannot judge a record differently.
pub struct Overlay<'v, V: ChainView> {
    view: &'v V,
    licences: HashMap<LicenceId, LicenceState>,
    transfers: HashMap<LicenceId, Transfer>,
    order: Vec<LicenceId>,
    superseded: Vec<(LicenceId, Superseded)>,
}

impl<V: ChainView> ChainView for Overlay<'_, V> {
    fn head(&self, department: &DepartmentId) -> Option<Head> {
        self.view.head(department)
    }
    fn licence(&self, id: &LicenceId) -> Option<LicenceState> {
        self.licences
            .get(id)
            .copied()
            .or_else(|| self.view.licence(id))
    }
    fn transfer(&self, origin: &LicenceId) -> Option<Transfer> {
        self.transfers
            .get(origin)
            .cloned()
            .or_else(|| self.view.transfer(origin))
    }
}

impl<'v, V: ChainView> Overlay<'v, V> {
    pub fn new(view: &'v V) -> Self {
        Self {
            view,
            licences: HashMap::new(),
            transfers: HashMap::new(),
            order: Vec::new(),
            superseded: Vec::new(),
        }
    }

    /// Admits `record` (number `index` of the block at `place`): the licence's next
    /// state, which later records of the block see; or the rule it breaks, and nothing
    /// changes.
    pub fn admit(
        &mut self,
        net: &Network,
        place: &Place<'_>,
        index: usize,
        record: &Record,
    ) -> Result<LicenceState, BlockError> {
        let id = record.licence_id();
        let current = self.licence(id);
        let next = next_state(net, place, index, record, current, self)?;
        // A credential replaced while it is still within its validity goes into the
        // status set until its expiry; one already expired needs no entry.
        if let (Some(by), Some(before)) =
            (record.commitment().map(|_| record.record_kind()), current)
        {
            let block_secs = (place.time_ms / 1000) as i64;
            if before.valid_until > block_secs {
                self.superseded.push((
                    id.clone(),
                    Superseded {
                        commitment: before.commitment,
                        by,
                        until: before.valid_until,
                    },
                ));
            }
        }
        if let Some(effect) = record.transfer_effect() {
            let (origin, t) = effect.apply(self.transfer(effect.origin()));
            self.transfers.insert(origin, t);
        }
        if self.licences.insert(id.clone(), next).is_none() {
            self.order.push(id.clone());
        }
        Ok(next)
    }

    /// What the admitted records changed, for a view of the chain as it will be once
    /// their block is appended (block production prepares the next block on it while
    /// this one is written): each licence's final state and each transfer entry.
    pub fn into_changes(
        self,
    ) -> (
        HashMap<LicenceId, LicenceState>,
        HashMap<LicenceId, Transfer>,
    ) {
        (self.licences, self.transfers)
    }

    /// The final state of each licence the records touched, in first-touched order, and
    /// the credentials the records replaced.
    fn into_parts(self) -> (Vec<(LicenceId, LicenceState)>, Vec<(LicenceId, Superseded)>) {
        let Overlay {
            mut licences,
            order,
            superseded,
            ..
        } = self;
        let changes = order
            .into_iter()
            .map(|id| {
                let s = licences.remove(&id).expect("every ordered id has a state");
                (id, s)
            })
            .collect();
        (changes, superseded)
    }
}

/// What a record does to the transfer index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEffect {
    /// `origin` was transferred out to `to`.
    Out { origin: LicenceId, to: DepartmentId },
    /// `origin` was transferred in as `accepted_as`.
    In {
        origin: LicenceId,
        accepted_as: LicenceId,
    },
}

impl TransferEffect {
    pub fn origin(&self) -> &LicenceId {
        match self {
            TransferEffect::Out { origin, .. } | TransferEffect::In { origin, .. } => origin,
        }
    }

    /// The index entry of the origin after this effect, given the one before.
    pub fn apply(&self, before: Option<Transfer>) -> (LicenceId, Transfer) {
        match self {
            TransferEffect::Out { origin, to } => (
                origin.clone(),
                Transfer {
                    to: to.clone(),
                    accepted_as: None,
                },
            ),
            TransferEffect::In {
                origin,
                accepted_as,
            } => (
                origin.clone(),
                Transfer {
                    // An accepted transfer names its receiver: validation saw the origin's
                    // transfer out to it.
                    to: before.map_or_else(|| accepted_as.department().clone(), |b| b.to),
                    accepted_as: Some(accepted_as.clone()),
                },
            ),
        }
    }
}

impl Record {
    /// What this record does to the transfer index, if anything.
    pub fn transfer_effect(&self) -> Option<TransferEffect> {
        match self {
            Record::TransferOut { licence_id, to, .. } => Some(TransferEffect::Out {
                origin: licence_id.clone(),
                to: to.clone(),
            }),
            Record::Issue(crate::ledger::Issue {
                licence_id,
                origin: Some(origin),
                ..
            }) => Some(TransferEffect::In {
                origin: origin.clone(),
                accepted_as: licence_id.clone(),
            }),
            _ => None,
        }
    }
}

/// The state a licence moves to when `record` (number `index` of the block at `place`)
/// applies to it, given its `current` state; or the rule it breaks. `net` is the network
/// at the governance height the block names; `view` answers for other licences (a
/// transfer in reads its origin's). The transition table (`lifecycle::TRANSITIONS`)
/// decides first; the rules of each kind follow.
pub fn next_state(
    net: &Network,
    place: &Place<'_>,
    index: usize,
    record: &Record,
    current: Option<LicenceState>,
    view: &impl ChainView,
) -> Result<LicenceState, BlockError> {
    let department = place.department.clone();
    let height = place.height;
    let licence = record.licence_id();
    let kind = record.kind();
    let needs = record.min_version();
    if needs > place.version {
        return Err(BlockError::KindNotInVersion {
            department,
            height,
            index,
            kind,
            needs,
            version: place.version,
        });
    }
    let rkind = record.record_kind();
    // A successor (机构改革) suspends, reinstates, revokes, transfers and annuls its
    // predecessor's licences; only a department's own chain issues them or signs their
    // credentials (renew, reissue, amend), as a credential names its issuer.
    let signs_credential = record.commitment().is_some();
    let acts = licence.department() == &department
        || (!signs_credential && net.acts_for(&department, licence.department()));
    if !acts {
        return Err(BlockError::ForeignLicence {
            department,
            height,
            index,
            licence: licence.clone(),
        });
    }
    let now = (place.time_ms / 1000) as i64;
    let standing = current.map_or(Standing::Unknown, |s| s.standing(now));
    let to = transition(rkind, standing).map_err(|refusal| {
        let licence = licence.clone();
        let department = department.clone();
        match refusal {
            Refusal::UnknownLicence => BlockError::UnknownLicence {
                department,
                height,
                index,
                kind,
                licence,
            },
            Refusal::DuplicateIssue => BlockError::DuplicateIssue {
                department,
                height,
                index,
                licence,
            },
            Refusal::AlreadyRevoked => BlockError::AlreadyRevoked {
                department,
                height,
                index,
                kind,
                licence,
            },
            Refusal::AlreadyTransferred => BlockError::AlreadyTransferred {
                department,
                height,
                index,
                kind,
                licence,
            },
            Refusal::WrongStatus => BlockError::WrongStatus {
                department,
                height,
                index,
                kind,
                licence,
                status: current.map_or(LicenceStatus::Active, |s| s.status_at(now)),
            },
        }
    })?;
    let index32 = u32::try_from(index).unwrap_or(u32::MAX);
    let validity = |from: i64, until: i64| {
        let t = licence.licence_type();
        match net.validity_problem(t, from, until) {
            Some(problem) => Err(BlockError::BadValidity {
                department: department.clone(),
                height,
                index,
                licence: licence.clone(),
                problem,
            }),
            None => Ok(()),
        }
    };
    let bad_transfer = |problem| BlockError::BadTransfer {
        department: department.clone(),
        height,
        index,
        licence: licence.clone(),
        problem,
    };
    // The stored status after the record: the records that set one set it (with their
    // reason); renew, reissue and amend leave it as it is (a timed suspension that has
    // ended stays stored as it was, and reads as active by the clock), so that they never
    // change a department's status set.
    let status = |s: &LicenceState| match *record {
        Record::Suspend { reason, .. } => LicenceStatus::Suspended(reason),
        Record::Revoke { reason, .. } => LicenceStatus::Revoked(reason),
        Record::TransferOut { .. } => LicenceStatus::Transferred,
        Record::Reinstate { .. } | Record::Annul { .. } => LicenceStatus::Active,
        _ => s.status,
    };
    debug_assert!(to != Standing::Unknown);
    let Some(s) = current else {
        // The table admits only issues of an unknown licence.
        let Record::Issue(issue) = record else {
            unreachable!("TRANSITIONS refuses every other kind of an unknown licence")
        };
        let t = licence.licence_type();
        if !net.is_granted(&department, t) {
            return Err(BlockError::TypeNotGranted {
                department,
                height,
                index,
                licence_type: t.clone(),
            });
        }
        validity(issue.valid_from, issue.valid_until)?;
        if let Some(origin) = &issue.origin {
            check_transfer_in(net, &department, licence, origin, view).map_err(bad_transfer)?;
        }
        return Ok(LicenceState {
            status: LicenceStatus::Active,
            commitment: issue.commitment,
            valid_from: issue.valid_from,
            valid_until: issue.valid_until,
            issued_height: height,
            issued_index: index32,
            updated_height: height,
            issuer_key: *place.key,
            suspended_until: None,
            status_height: 0,
            status_index: 0,
        });
    };
    let mut next = LicenceState {
        status: status(&s),
        updated_height: height,
        ..s
    };
    // Every record that sets a status is what a later annulment names.
    if matches!(
        record,
        Record::Suspend { .. }
            | Record::Reinstate { .. }
            | Record::Revoke { .. }
            | Record::TransferOut { .. }
            | Record::Annul { .. }
    ) {
        next.status_height = height;
        next.status_index = index32;
        next.suspended_until = None;
    }
    match record {
        Record::Issue(_) => unreachable!("TRANSITIONS refuses an issue of a known licence"),
        Record::Suspend { until, .. } => {
            if let Some(u) = *until {
                if u <= now {
                    return Err(BlockError::BadSuspension {
                        department,
                        height,
                        index,
                        licence: licence.clone(),
                        until: u,
                    });
                }
            }
            next.suspended_until = *until;
        }
        Record::Reinstate { .. } | Record::Revoke { .. } => {}
        Record::Renew {
            valid_from,
            valid_until,
            commitment,
            ..
        } => {
            validity(*valid_from, *valid_until)?;
            if *valid_until <= s.valid_until {
                return Err(BlockError::BadValidity {
                    department,
                    height,
                    index,
                    licence: licence.clone(),
                    problem: crate::genesis::ValidityProblem::NotExtended,
                });
            }
            next.valid_from = *valid_from;
            next.valid_until = *valid_until;
            next.recredential(*commitment, height, index32, *place.key);
        }
        Record::Reissue { commitment, .. } | Record::Amend { commitment, .. } => {
            next.recredential(*commitment, height, index32, *place.key);
        }
        Record::TransferOut { to, .. } => {
            check_transfer_target(net, licence, to).map_err(bad_transfer)?;
        }
        Record::Annul {
            height: h,
            index: i,
            ..
        } => {
            if (*h, *i) != (s.status_height, s.status_index) {
                return Err(BlockError::AnnulMismatch {
                    department,
                    height,
                    index,
                    licence: licence.clone(),
                    annuls_height: *h,
                    annuls_index: *i,
                    status_height: s.status_height,
                    status_index: s.status_index,
                });
            }
        }
    }
    Ok(next)
}

impl LicenceState {
    /// A new credential (renew, reissue, amend) is in force from this record: the one a
    /// presented credential must match, signed with this block's key.
    fn recredential(&mut self, commitment: Hash32, height: u64, index: u32, key: KeyId) {
        self.commitment = commitment;
        self.issued_height = height;
        self.issued_index = index;
        self.issuer_key = key;
    }
}

/// `to` may receive `licence` by transfer: another department of another region, in
/// office, granted the type.
fn check_transfer_target(
    net: &Network,
    licence: &LicenceId,
    to: &DepartmentId,
) -> Result<(), TransferProblem> {
    let Some(target) = net.department(to) else {
        return Err(TransferProblem::UnknownDepartment { to: to.clone() });
    };
    if net.retirement(to).is_some() {
        return Err(TransferProblem::Retired { to: to.clone() });
    }
    let from_region = net.department(licence.department()).map(|d| &d.region);
    if from_region == Some(&target.region) {
        return Err(TransferProblem::SameRegion { to: to.clone() });
    }
    if !net.is_granted(to, licence.licence_type()) {
        return Err(TransferProblem::NotGranted {
            to: to.clone(),
            licence_type: licence.licence_type().clone(),
        });
    }
    Ok(())
}

/// An issue by `department` of `licence` naming `origin` matches a transfer out of
/// `origin` to `department`, not yet accepted (as `view` holds the origin's chain).
fn check_transfer_in(
    net: &Network,
    department: &DepartmentId,
    licence: &LicenceId,
    origin: &LicenceId,
    view: &impl ChainView,
) -> Result<(), TransferProblem> {
    if origin.licence_type() != licence.licence_type() {
        return Err(TransferProblem::OtherType {
            origin: origin.clone(),
        });
    }
    let _ = net;
    match view.transfer(origin) {
        None => Err(TransferProblem::NotTransferred {
            origin: origin.clone(),
        }),
        Some(t) if &t.to != department => Err(TransferProblem::ToAnother {
            origin: origin.clone(),
            to: t.to,
        }),
        Some(Transfer {
            accepted_as: Some(accepted_as),
            ..
        }) => Err(TransferProblem::AlreadyAccepted {
            origin: origin.clone(),
            accepted_as,
        }),
        Some(_) => Ok(()),
    }
}

/// Validates a block received from elsewhere: network, department, signature, then
/// `check_structure`.
pub fn validate_block(
    gov: &impl GovView,
    view: &impl ChainView,
    block: Block,
    now_ms: u64,
    records_max: usize,
) -> Result<ValidatedBlock, BlockError> {
    check_signature(gov.newest(), &block)?;
    let (changes, superseded) = check_structure(gov, view, &block, now_ms, records_max)?;
    Ok(ValidatedBlock {
        block,
        changes,
        superseded,
    })
}

/// Validates a block this node just signed with its own key: the signature is known good,
/// so only the chain and record rules run. Still a full check of those rules, so a bug in
/// block production cannot write an invalid block.
pub fn validate_own_block(
    gov: &impl GovView,
    view: &impl ChainView,
    block: Block,
    now_ms: u64,
    records_max: usize,
) -> Result<ValidatedBlock, BlockError> {
    check_network(gov.newest(), &block)?;
    check_standing(gov.newest(), &block)?;
    let (changes, superseded) = check_structure(gov, view, &block, now_ms, records_max)?;
    Ok(ValidatedBlock {
        block,
        changes,
        superseded,
    })
}

fn check_network(net: &Network, block: &Block) -> Result<(), BlockError> {
    if block.header.genesis != net.hash() {
        return Err(BlockError::WrongNetwork {
            department: block.header.department.clone(),
            height: block.height(),
            found: block.header.genesis.short(),
            expected: net.hash().short(),
        });
    }
    Ok(())
}

/// The department exists and has not retired below this block's height.
fn check_standing(net: &Network, block: &Block) -> Result<(), BlockError> {
    let (department, height) = (block.department(), block.height());
    if net.department(department).is_none() {
        return Err(BlockError::UnknownDepartment(department.clone()));
    }
    if let Some(r) = net.retirement(department) {
        if height > r.last_height {
            return Err(BlockError::Retired {
                department: department.clone(),
                height,
                last_height: r.last_height,
            });
        }
    }
    Ok(())
}

/// Network, department and signature: the checks that do not depend on chain state.
/// A block that passes them was really signed by that department for this network, with
/// the key that signs its height under the governance height it names (`net` is the
/// newest network held: a compromise or retirement applies whatever height a block names).
pub fn check_signature(net: &Network, block: &Block) -> Result<(), BlockError> {
    check_network(net, block)?;
    check_standing(net, block)?;
    let (department, height) = (block.department(), block.height());
    let key = net.signing_key(department, height, block.header.gov);
    if key.is_some_and(|s| block.signature_valid(&s.key)) {
        return Ok(());
    }
    // Signed with a key fenced off below this height: the thief's block, named so.
    if let Some(bad) = net
        .key_history(department)
        .iter()
        .find(|s| s.compromised && block.signature_valid(&s.key))
    {
        return Err(BlockError::KeyCompromised {
            department: department.clone(),
            height,
            last_good: bad.until_height.unwrap_or(0),
        });
    }
    Err(BlockError::BadSignature {
        department: department.clone(),
        height,
    })
}

/// Chain state held in memory: for the integrity check (which rebuilds the indexes from
/// blocks and compares) and for tests.
#[derive(Debug, Default, Clone)]
pub struct MemoryChain {
    pub heads: HashMap<DepartmentId, Head>,
    pub licences: HashMap<LicenceId, LicenceState>,
    pub transfers: HashMap<LicenceId, Transfer>,
    /// Every credential superseded, by its status set key: its department, entry and end.
    pub superseded: HashMap<[u8; 16], (DepartmentId, [u8; 18], i64)>,
}

impl ChainView for MemoryChain {
    fn head(&self, d: &DepartmentId) -> Option<Head> {
        self.heads.get(d).copied()
    }
    fn licence(&self, id: &LicenceId) -> Option<LicenceState> {
        self.licences.get(id).copied()
    }
    fn transfer(&self, origin: &LicenceId) -> Option<Transfer> {
        self.transfers.get(origin).cloned()
    }
}

impl MemoryChain {
    pub fn apply(&mut self, v: &ValidatedBlock) {
        self.heads.insert(v.block().department().clone(), v.head());
        for (id, s) in v.changes() {
            self.licences.insert(id.clone(), *s);
        }
        for effect in v
            .block()
            .header
            .records
            .iter()
            .filter_map(Record::transfer_effect)
        {
            let (origin, t) = effect.apply(self.transfers.remove(effect.origin()));
            self.transfers.insert(origin, t);
        }
        for (id, s) in v.superseded() {
            let e = s.entry();
            let key: [u8; 16] = e[..16].try_into().expect("16 bytes");
            self.superseded
                .insert(key, (id.department().clone(), e, s.until));
        }
    }

    /// `dept`'s status set at `at` (unix seconds), sorted by key: its suspended, revoked
    /// and transferred licences and its superseded credentials, each with an end only
    /// while before it. What the store's set must equal.
    pub fn status_set(&self, dept: &DepartmentId, at: i64) -> Vec<[u8; 18]> {
        let mut out: Vec<[u8; 18]> = self
            .licences
            .iter()
            .filter(|(id, _)| id.department() == dept)
            .filter_map(|(id, s)| s.status_entry(id))
            .chain(
                self.superseded
                    .values()
                    .filter(|(d, _, _)| d == dept)
                    .map(|(_, e, until)| (*e, Some(*until))),
            )
            .filter(|(_, until)| until.is_none_or(|u| at < u))
            .map(|(e, _)| e)
            .collect();
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod phase_tests {
    use super::*;
    use crate::ledger::{RevokeReason, SuspendReason};

    /// Where a licence valid over [100, 200) stands, row by row.
    #[test]
    fn a_licence_phase_follows_its_status_and_the_clock() {
        let state = |status| LicenceState {
            status,
            commitment: Hash32::default(),
            valid_from: 100,
            valid_until: 200,
            issued_height: 1,
            issued_index: 0,
            updated_height: 1,
            issuer_key: KeyId([0; 8]),
            suspended_until: None,
            status_height: 0,
            status_index: 0,
        };
        use LicencePhase as P;
        let active = LicenceStatus::Active;
        let suspended = LicenceStatus::Suspended(SuspendReason::Penalty);
        let revoked = LicenceStatus::Revoked(RevokeReason::Cancelled);
        for (status, now, expected) in [
            (active, 99, P::NotYetValid),
            (active, 100, P::Active),
            (active, 199, P::Active),
            (active, 200, P::Expired),
            (suspended, 150, P::Suspended),
            (suspended, 99, P::Suspended),
            (suspended, 200, P::Expired),
            (revoked, 150, P::Revoked),
            (revoked, 500, P::Revoked),
        ] {
            assert_eq!(state(status).phase(now), expected, "{status:?} at {now}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;
    use crate::genesis::tests::sample;
    use crate::ledger::tests::{issue, lid, officer};
    use crate::ledger::BlockHeader;

    type Mem = MemoryChain;

    const NOW: u64 = 1_760_000_000_000;

    struct Fixture {
        net: Network,
        keys: Vec<(DepartmentId, SecretKey)>,
        mem: Mem,
    }

    impl Fixture {
        fn new() -> Self {
            let (doc, keys) = sample();
            Self {
                net: Network::from_document(doc).expect("genesis"),
                keys,
                mem: Mem::default(),
            }
        }

        fn next_header(&self, dept: usize, records: Vec<Record>) -> BlockHeader {
            let d = &self.keys[dept].0;
            let head = self.mem.head(d);
            BlockHeader {
                version: self.net.protocol_version(),
                genesis: self.net.hash(),
                department: d.clone(),
                height: head.map_or(1, |h| h.height + 1),
                prev: head.map_or(self.net.hash(), |h| h.hash),
                time_ms: NOW,
                gov: 0,
                records,
            }
        }

        fn block(&self, dept: usize, records: Vec<Record>) -> Block {
            self.next_header(dept, records).sign(&self.keys[dept].1)
        }

        fn validate(&self, b: Block) -> Result<ValidatedBlock, BlockError> {
            validate_block(&self.net, &self.mem, b, NOW, 1000)
        }

        /// Validates and applies, panicking if the block is refused.
        fn push(&mut self, dept: usize, records: Vec<Record>) {
            let b = self.block(dept, records);
            let v = self.validate(b).expect("block must be accepted");
            self.mem.apply(&v);
        }

        /// Expects the next block with these records to fail with `code`.
        fn check(&self, dept: usize, records: Vec<Record>, code: &str, d: Disposition) {
            let err = self
                .validate(self.block(dept, records))
                .expect_err("block must be refused");
            assert_eq!(err.code(), code, "{err}");
            assert_eq!(err.disposition(), d, "{err}");
        }
    }

    const GD: &str = "gd.transport";

    /// Department blocks under governance: the key by height and governance height, a
    /// compromised key refused past its last good height, a retired department's blocks
    /// refused, a governance height not held ignored (fetch it), one below the parent's
    /// rejected, and a successor changing its predecessor's licences.
    #[test]
    fn governance_decides_keys_retirement_and_successors() {
        use crate::governance::{GovBlock, GovChain, GovHeader, GovRecord};
        let mut f = Fixture::new();
        let mut chain = GovChain::new(f.net.clone());
        let record = |chain: &mut GovChain,
                      keys: &[(DepartmentId, SecretKey)],
                      signers: &[usize],
                      record| {
            let net = chain.newest().clone();
            let mut b = GovBlock::new(GovHeader {
                genesis: net.hash(),
                height: net.gov_height() + 1,
                prev: net.gov_head(),
                time_ms: NOW,
                record,
            });
            for &i in signers {
                b.cosign(keys[i].0.clone(), &keys[i].1);
            }
            chain.admit(b).expect("record applies");
        };
        f.push(0, vec![issue(GD, "mvdl", 1)]);
        f.push(0, vec![issue(GD, "mvdl", 2)]);
        let keys = f.keys.clone();
        let (gd, market) = (keys[0].0.clone(), keys[1].0.clone());
        let new_key = SecretKey::from_seed(&[61; 32]);
        record(
            &mut chain,
            &keys,
            &[1, 2],
            GovRecord::RotateIssuerKey {
                department: gd.clone(),
                key: new_key.public(),
            },
        );
        let validate = |f: &Fixture, chain: &GovChain, h: BlockHeader, key: &SecretKey| {
            validate_block(chain, &f.mem, h.sign(key), NOW, 1000)
        };
        // Under governance height 1, the new key signs; under 0, the old one still does.
        let mut h = f.next_header(0, vec![issue(GD, "mvdl", 3)]);
        h.gov = 1;
        assert_eq!(
            validate(&f, &chain, h.clone(), &keys[0].1)
                .map(|_| ())
                .expect_err("refused")
                .code(),
            "bad_signature"
        );
        let v = validate(&f, &chain, h, &new_key).expect("the new key under the rotation");
        assert_eq!(v.changes()[0].1.issuer_key, new_key.public().key_id());
        f.mem.apply(&v);
        // Never below the parent's governance height.
        let h = f.next_header(0, vec![issue(GD, "mvdl", 4)]);
        let e = validate(&f, &chain, h, &keys[0].1).expect_err("refused");
        assert_eq!(
            (e.code(), e.disposition()),
            ("gov_backwards", Disposition::Reject)
        );
        // A governance height not held here: early, not wrong.
        let mut h = f.next_header(0, vec![issue(GD, "mvdl", 4)]);
        h.gov = 2;
        let e = validate(&f, &chain, h, &new_key).expect_err("refused");
        assert_eq!(
            (e.code(), e.disposition()),
            ("gov_ahead", Disposition::Ignore)
        );
        // The new key is stolen after block 3: its blocks above are refused as such.
        let replacement = SecretKey::from_seed(&[62; 32]);
        record(
            &mut chain,
            &keys,
            &[1, 2],
            GovRecord::KeyCompromised {
                department: gd.clone(),
                last_good: 3,
                replacement: replacement.public(),
            },
        );
        let mut h = f.next_header(0, vec![issue(GD, "mvdl", 4)]);
        h.gov = 1;
        let e = validate(&f, &chain, h.clone(), &new_key).expect_err("refused");
        assert_eq!(
            (e.code(), e.disposition()),
            ("key_compromised", Disposition::Reject)
        );
        h.gov = 2;
        let v = validate(&f, &chain, h, &replacement).expect("the replacement from block 4");
        f.mem.apply(&v);
        // gd.transport retires after block 4; gd.market succeeds it.
        record(
            &mut chain,
            &keys,
            &[1, 2],
            GovRecord::RetireDepartment {
                department: gd.clone(),
                last_height: 4,
                successor: Some(market.clone()),
            },
        );
        let mut h = f.next_header(0, vec![issue(GD, "mvdl", 5)]);
        h.gov = 3;
        let e = validate(&f, &chain, h, &replacement).expect_err("refused");
        assert_eq!(
            (e.code(), e.disposition()),
            ("retired", Disposition::Reject)
        );
        let revoke = Record::Revoke {
            licence_id: lid(GD, "mvdl", 1),
            reason: RevokeReason::Withdrawn,
            officer: officer(),
        };
        let mut h = f.next_header(1, vec![revoke.clone()]);
        let e = validate(&f, &chain, h.clone(), &keys[1].1).expect_err("refused");
        assert_eq!(e.code(), "foreign_licence", "before the retirement: {e}");
        h.gov = 3;
        let v = validate(&f, &chain, h, &keys[1].1).expect("the successor revokes");
        assert!(matches!(v.changes()[0].1.status, LicenceStatus::Revoked(_)));
        // A successor may not issue in its predecessor's name.
        let mut h = f.next_header(1, vec![issue(GD, "mvdl", 9)]);
        h.gov = 3;
        let e = validate(&f, &chain, h, &keys[1].1).expect_err("refused");
        assert_eq!(e.code(), "foreign_licence");
        // A successor's change to a licence whose issue has not arrived here: early.
        let mut h = f.next_header(
            1,
            vec![Record::Revoke {
                licence_id: lid(GD, "mvdl", 7),
                reason: RevokeReason::Withdrawn,
                officer: officer(),
            }],
        );
        h.gov = 3;
        let e = validate(&f, &chain, h, &keys[1].1).expect_err("refused");
        assert_eq!(
            (e.code(), e.disposition()),
            ("unknown_licence", Disposition::Ignore)
        );
    }

    fn suspend(n: u64) -> Record {
        Record::Suspend {
            licence_id: lid(GD, "mvdl", n),
            reason: SuspendReason::Penalty,
            officer: officer(),
            until: None,
        }
    }
    fn reinstate(n: u64) -> Record {
        Record::Reinstate {
            licence_id: lid(GD, "mvdl", n),
            officer: officer(),
        }
    }
    fn revoke(n: u64) -> Record {
        Record::Revoke {
            licence_id: lid(GD, "mvdl", n),
            reason: RevokeReason::Withdrawn,
            officer: officer(),
        }
    }

    #[test]
    fn lifecycle_passes() {
        let mut f = Fixture::new();
        f.push(0, vec![issue(GD, "mvdl", 1), issue(GD, "mvdl", 2)]);
        f.push(0, vec![suspend(1)]);
        f.push(0, vec![reinstate(1), suspend(1), reinstate(1)]);
        f.push(0, vec![revoke(1), suspend(2), revoke(2)]);
        let s = f.mem.licence(&lid(GD, "mvdl", 1)).expect("known");
        assert_eq!(s.status, LicenceStatus::Revoked(RevokeReason::Withdrawn));
        assert_eq!((s.issued_height, s.updated_height), (1, 4));
    }

    /// A block is written in the version in force at the governance height it names:
    /// another version is refused (and penalised), as is a newer kind in an older block.
    #[test]
    fn blocks_are_written_in_the_version_in_force() {
        let mut f = Fixture::new();
        f.push(0, vec![issue(GD, "mvdl", 1)]);
        let mut h = f.next_header(0, vec![issue(GD, "mvdl", 2)]);
        h.version = 2;
        let e = f.validate(h.sign(&f.keys[0].1)).expect_err("refused");
        assert_eq!(
            (e.code(), e.disposition()),
            ("wrong_version", Disposition::Reject)
        );
        let renew = Record::Renew {
            licence_id: lid(GD, "mvdl", 1),
            valid_from: 1_750_000_000,
            valid_until: 1_850_000_001,
            commitment: Hash32::digest(b"renewed"),
            officer: officer(),
        };
        f.check(0, vec![renew], "kind_not_in_version", Disposition::Reject);
    }

    #[test]
    fn signature_rules() {
        let f = Fixture::new();
        // Signed by another department's key.
        let forged = f
            .next_header(0, vec![issue(GD, "mvdl", 1)])
            .sign(&f.keys[1].1);
        let err = f.validate(forged).expect_err("forged");
        assert_eq!(
            (err.code(), err.disposition()),
            ("bad_signature", Disposition::Reject)
        );
        // A department genesis does not name.
        let mut h = f.next_header(0, vec![issue("xx.nobody", "mvdl", 1)]);
        h.department = DepartmentId::parse("xx.nobody").expect("id");
        let err = f.validate(h.sign(&f.keys[0].1)).expect_err("unknown");
        assert_eq!(err.code(), "unknown_department");
        // Another network.
        let mut h = f.next_header(0, vec![issue(GD, "mvdl", 1)]);
        h.genesis = Hash32::digest(b"other network");
        let err = f.validate(h.sign(&f.keys[0].1)).expect_err("network");
        assert_eq!(err.code(), "wrong_network");
        // And a good one passes.
        assert!(f.validate(f.block(0, vec![issue(GD, "mvdl", 1)])).is_ok());
    }

    #[test]
    fn chain_rules() {
        let mut f = Fixture::new();
        f.push(0, vec![issue(GD, "mvdl", 1)]);
        let replay = {
            let mut h = f.next_header(0, vec![issue(GD, "mvdl", 2)]);
            h.height = 1;
            h.prev = f.net.hash();
            h.sign(&f.keys[0].1)
        };
        let err = f.validate(replay).expect_err("replay");
        assert_eq!(
            (err.code(), err.disposition()),
            ("already_have", Disposition::Ignore)
        );

        let mut h = f.next_header(0, vec![issue(GD, "mvdl", 2)]);
        h.height = 5;
        let err = f.validate(h.sign(&f.keys[0].1)).expect_err("gap");
        assert_eq!(
            (err.code(), err.disposition()),
            ("gap", Disposition::Ignore)
        );

        let mut h = f.next_header(0, vec![issue(GD, "mvdl", 2)]);
        h.prev = Hash32::digest(b"elsewhere");
        let err = f.validate(h.sign(&f.keys[0].1)).expect_err("fork");
        assert_eq!(
            (err.code(), err.disposition()),
            ("fork", Disposition::Reject)
        );

        let mut h = f.next_header(0, vec![issue(GD, "mvdl", 2)]);
        h.time_ms = NOW - 1;
        let err = f.validate(h.sign(&f.keys[0].1)).expect_err("time");
        assert_eq!(err.code(), "time_before_parent");

        let mut h = f.next_header(0, vec![issue(GD, "mvdl", 2)]);
        h.time_ms = NOW + FUTURE_SKEW_MS_MAX + 1;
        let err = f.validate(h.sign(&f.keys[0].1)).expect_err("future");
        assert_eq!(
            (err.code(), err.disposition()),
            ("from_future", Disposition::Ignore)
        );

        f.check(0, vec![], "empty", Disposition::Reject);
        let many: Vec<Record> = (10..1011).map(|n| issue(GD, "mvdl", n)).collect();
        f.check(0, many, "too_many_records", Disposition::Reject);
        // The next correct block still passes after all that.
        f.push(0, vec![issue(GD, "mvdl", 2)]);
    }

    #[test]
    fn record_rules() {
        let mut f = Fixture::new();
        f.push(0, vec![issue(GD, "mvdl", 1)]);
        let r = Disposition::Reject;
        f.check(0, vec![issue("gd.market", "food", 1)], "foreign_licence", r);
        f.check(0, vec![issue(GD, "food", 1)], "type_not_granted", r);
        f.check(0, vec![issue(GD, "mvdl", 1)], "duplicate_issue", r);
        f.check(
            0,
            vec![issue(GD, "mvdl", 2), issue(GD, "mvdl", 2)],
            "duplicate_issue",
            r,
        );
        let mut long = issue(GD, "mvdl", 3);
        if let Record::Issue(i) = &mut long {
            i.valid_until = i.valid_from + 3661 * 86_400;
        }
        f.check(0, vec![long], "bad_validity", r);
        let mut inverted = issue(GD, "mvdl", 3);
        if let Record::Issue(i) = &mut inverted {
            i.valid_until = i.valid_from;
        }
        f.check(0, vec![inverted], "bad_validity", r);
        let mut overflow = issue(GD, "mvdl", 3);
        if let Record::Issue(i) = &mut overflow {
            i.valid_from = i64::MIN;
            i.valid_until = i64::MAX;
        }
        f.check(0, vec![overflow], "bad_validity", r);
        f.check(0, vec![suspend(9)], "unknown_licence", r);
        f.check(0, vec![revoke(9)], "unknown_licence", r);
        f.check(0, vec![reinstate(1)], "wrong_status", r);
        f.check(0, vec![suspend(1), suspend(1)], "wrong_status", r);
        f.push(0, vec![revoke(1)]);
        f.check(0, vec![reinstate(1)], "already_revoked", r);
        f.check(0, vec![suspend(1)], "already_revoked", r);
        f.check(0, vec![revoke(1)], "already_revoked", r);
        // Nothing un-revokes, not even a fresh issue of the same id.
        f.check(0, vec![issue(GD, "mvdl", 1)], "duplicate_issue", r);
    }
}
