//! The offline bundle (docs/checkpoints.md, "The offline bundle"): what a service window
//! downloads so that it can answer "revoked" or "suspended" without reaching a node, and
//! the deltas that bring a held bundle up to date.
//!
//! A bundle carries, for each department, its cosigned checkpoint and its status set at
//! that checkpoint (the suspended and revoked licences, sorted by `tlog::status_key`). A
//! `VerifiedBundle` exists only as the result of checking it against the verifier's own
//! network: every checkpoint signed by its department and cosigned by the quorum of
//! witnesses, every set hashing to its checkpoint's status root. Nothing in it is taken
//! on the word of the node that served it, except `made_ms` and the governance export,
//! which the caller checks (it is what the caller builds its `Network` from).
//!
//! Encoding (CBOR, one map with text keys, in this order):
//!
//! ```text
//! bundle: { "kind": "huren-bundle/v1", "genesis": bytes(32), "made_ms": uint,
//!           ? "gov": bytes, "depts": [ { "cp": text, "set": bytes(18·n) }, … ] }
//! delta:  { "kind": "huren-bundle-delta/v1", "genesis": bytes(32), "made_ms": uint,
//!           ? "gov": bytes, "depts": [ { "from": uint, "cp": text, "changes": bytes(18·n) }, … ] }
//! ```
//!
//! `cp` is the signed note with its cosignatures; `set` and `changes` are the 18-byte
//! entries (16-byte key, status byte, reason byte) concatenated into one byte string, so
//! that a million licences with 2% revoked fit in 400 KB. In a delta an entry with the
//! status bytes of an active licence removes the key (a reinstatement); any other entry
//! inserts or replaces.
//!
//! This module must never do I/O or read a clock (callers pass `now_ms`), never panic on
//! input, and never answer "not revoked" for a licence whose department it holds no
//! verified checkpoint of: that is `BundleStatus::NotCovered`, never `Active`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::checkpoint::{self, CheckpointError, SignedCheckpoint};
use crate::crypto::Hash32;
use crate::genesis::{CheckpointRules, Network, DEPARTMENTS_MAX};
use crate::ids::{DepartmentId, LicenceId};
use crate::ledger::{RevokeReason, SuspendReason};
use crate::tlog;
use crate::validate::LicenceStatus;

/// The `kind` of a full bundle.
pub const BUNDLE_KIND: &str = "huren-bundle/v1";
/// The `kind` of a delta.
pub const DELTA_KIND: &str = "huren-bundle-delta/v1";
/// An encoded bundle or delta at most, checked before decoding: 4096 departments of a
/// million licences each at 2% would be 1.5 GB, but no window needs that; 64 MiB holds
/// 3.7 million suspended or revoked licences.
pub const BUNDLE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// A checkpoint's note at most: what `tlog::Note::parse` accepts.
pub const CHECKPOINT_BYTES_MAX: usize = tlog::NOTE_TEXT_BYTES_MAX + tlog::NOTE_SIGNATURES_MAX * 512;
/// The governance export at most.
pub const GOVERNANCE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// One status set entry: the 16-byte key, the status byte, the reason byte.
pub const ENTRY_BYTES: usize = 18;

const _: () = assert!(GOVERNANCE_BYTES_MAX < BUNDLE_BYTES_MAX);

/// One department in a bundle: its checkpoint and its status set at that checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleDepartment {
    /// The signed note (`SignedCheckpoint::encode`) with its cosignatures.
    pub checkpoint: String,
    /// The status set, sorted strictly by key (the first 16 bytes, `tlog::status_key`):
    /// key ‖ status byte ‖ reason byte (`LicenceStatus::to_bytes`).
    pub status: Vec<[u8; ENTRY_BYTES]>,
}

/// Everything a window needs to answer revoked / suspended offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The network's genesis hash.
    pub genesis: Hash32,
    /// When the node made it (its clock, unix ms). Informational: freshness is the
    /// checkpoints' signed times, never this.
    pub made_ms: u64,
    /// A governance export's bytes, opaque here: the caller checks it.
    pub governance: Option<Vec<u8>>,
    pub departments: Vec<BundleDepartment>,
}

/// What changed since a bundle: new checkpoints and the set entries that differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub genesis: Hash32,
    pub made_ms: u64,
    /// Replaces the held bundle's governance export if present.
    pub governance: Option<Vec<u8>>,
    pub departments: Vec<DeltaDepartment>,
}

/// One department's change in a delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaDepartment {
    /// The height of the checkpoint the changes apply to; 0 when the bundle holds none.
    pub from_height: u64,
    /// The new checkpoint, as in `BundleDepartment::checkpoint`.
    pub checkpoint: String,
    /// Sorted strictly by key: an entry with the active status bytes (`[0, 0]`) removes
    /// its key from the set, any other inserts or replaces.
    pub changes: Vec<[u8; ENTRY_BYTES]>,
}

/// Which department an error is about: its position in the list until its checkpoint has
/// been read, its id after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeptRef {
    Position(usize),
    Id(DepartmentId),
}

impl fmt::Display for DeptRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeptRef::Position(i) => write!(f, "the department at position {i}"),
            DeptRef::Id(d) => write!(f, "department {d}"),
        }
    }
}

/// A checkpoint's place in its department's history, for rollback errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointAt {
    pub height: u64,
    pub time_ms: u64,
}

impl fmt::Display for CheckpointAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "height {} signed at {} ms", self.height, self.time_ms)
    }
}

impl CheckpointAt {
    fn of(c: &SignedCheckpoint) -> Self {
        Self {
            height: c.checkpoint.height,
            time_ms: c.checkpoint.time_ms,
        }
    }
}

/// Which list of entries an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryList {
    /// A bundle's status set: suspensions and revocations.
    StatusSet,
    /// A delta's changes: suspensions, revocations and removals.
    Changes,
}

impl EntryList {
    /// What the list may hold, for error messages.
    fn holds(self) -> &'static str {
        match self {
            EntryList::StatusSet => "a status set holds only suspensions and revocations",
            EntryList::Changes => {
                "changes hold only suspensions, revocations and removals (the active status)"
            }
        }
    }
}

impl fmt::Display for EntryList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryList::StatusSet => "status set",
            EntryList::Changes => "changes",
        })
    }
}

/// What is wrong with a status set or a delta's changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetProblem {
    #[error("{bytes} bytes, not a whole number of {ENTRY_BYTES}-byte entries")]
    Length { bytes: usize },
    #[error("entry {index} does not sort strictly after the one before it")]
    Unsorted { index: usize },
    #[error("entry {index} has status bytes {bytes:?}: {}", .list.holds())]
    Status {
        index: usize,
        bytes: [u8; 2],
        list: EntryList,
    },
}

/// Why a bundle or a delta was refused: one variant per rule.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{bytes} bytes, more than the {BUNDLE_BYTES_MAX} a bundle or delta may have")]
    TooLarge { bytes: usize },
    #[error("not the CBOR of a bundle or delta: {0}")]
    Cbor(#[source] ciborium::de::Error<std::io::Error>),
    #[error("{bytes} bytes follow the CBOR value")]
    TrailingBytes { bytes: usize },
    #[error("its kind is {found:?}, not {expected:?}")]
    Kind {
        found: String,
        expected: &'static str,
    },
    #[error("the genesis hash is {bytes} bytes, not 32")]
    GenesisLength { bytes: usize },
    #[error("{count} departments, more than the {DEPARTMENTS_MAX} a network may have")]
    TooManyDepartments { count: usize },
    #[error("the governance export is {bytes} bytes, more than {GOVERNANCE_BYTES_MAX}")]
    GovernanceTooLarge { bytes: usize },
    #[error("{department}: its checkpoint is {bytes} bytes, more than {CHECKPOINT_BYTES_MAX}")]
    CheckpointTooLarge { department: DeptRef, bytes: usize },
    #[error("{department}: its {list}: {problem}")]
    Set {
        department: DeptRef,
        list: EntryList,
        #[source]
        problem: SetProblem,
    },
    #[error("made for network {}, this verifier's is {}", .found.short(), .expected.short())]
    Network { expected: Hash32, found: Hash32 },
    #[error("{department}: its checkpoint: {source}")]
    Checkpoint {
        department: DeptRef,
        #[source]
        source: CheckpointError,
    },
    #[error("department {department}: its checkpoint at height {height} has {cosigners} witness cosignatures that verify, {quorum} are needed")]
    Quorum {
        department: DepartmentId,
        height: u64,
        cosigners: usize,
        quorum: usize,
    },
    #[error("department {department} appears twice")]
    DuplicateDepartment { department: DepartmentId },
    #[error("department {department}: its status set has {entries} entries, its checkpoint at height {height} says {count}")]
    SetCount {
        department: DepartmentId,
        height: u64,
        entries: u64,
        count: u64,
    },
    #[error("department {department}: its status set hashes to {}, its checkpoint at height {height} says {}", .found.short(), .expected.short())]
    SetRoot {
        department: DepartmentId,
        height: u64,
        expected: Hash32,
        found: Hash32,
    },
    #[error("department {department}: the delta applies to height {from}, the bundle holds height {held}")]
    DeltaBase {
        department: DepartmentId,
        from: u64,
        held: u64,
    },
    #[error("department {department}: the bundle holds its checkpoint at {held}, the one offered is older ({offered})")]
    Rollback {
        department: DepartmentId,
        held: CheckpointAt,
        offered: CheckpointAt,
    },
    #[error("department {department}: the held bundle has its checkpoint, the new one does not")]
    Dropped { department: DepartmentId },
}

/// What a verified bundle says of a licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleStatus {
    /// The bundle holds no checkpoint of the licence's department: it cannot say.
    NotCovered,
    /// Neither suspended nor revoked as of its department's checkpoint. (Whether the
    /// licence was ever issued is not the bundle's to say: its credential's signature is.)
    Active,
    Suspended(SuspendReason),
    Revoked(RevokeReason),
    /// Transferred out to a department of another region (which id it lives on under is
    /// the online answer's to say).
    Transferred,
}

impl BundleStatus {
    /// The licence's status as the ledger names it, or `None` when the bundle cannot say
    /// (what verification takes as `LedgerFacts::Bundle`'s status).
    pub fn ledger_status(self) -> Option<LicenceStatus> {
        match self {
            BundleStatus::NotCovered => None,
            BundleStatus::Active => Some(LicenceStatus::Active),
            BundleStatus::Suspended(r) => Some(LicenceStatus::Suspended(r)),
            BundleStatus::Revoked(r) => Some(LicenceStatus::Revoked(r)),
            BundleStatus::Transferred => Some(LicenceStatus::Transferred),
        }
    }
}

/// How old a department's checkpoint is against the network's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Up to `bundle_soft_max_secs`: verdicts stand as they are.
    Fresh,
    /// Up to `bundle_hard_max_secs`: verdicts stand, saying "data as of".
    Stale,
    /// Past it: undetermined, never valid.
    Expired,
}

/// A bundle whose every checkpoint and set held against the verifier's network. Its
/// departments are in department order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle {
    bundle: Bundle,
    /// The parsed checkpoints, one for each of `bundle.departments`, in the same order.
    checkpoints: Vec<SignedCheckpoint>,
}

// ---------------------------------------------------------------------------------------
// Encoding

impl Bundle {
    pub fn encode(&self) -> Vec<u8> {
        let depts = self
            .departments
            .iter()
            .map(|d| WireDept {
                cp: Cow::Borrowed(&d.checkpoint),
                set: Bytes(Cow::Borrowed(d.status.as_flattened())),
            })
            .collect();
        write(&Wire {
            kind: Cow::Borrowed(BUNDLE_KIND),
            genesis: Bytes(Cow::Borrowed(&self.genesis.0)),
            made_ms: self.made_ms,
            gov: self.governance.as_deref().map(|g| Bytes(Cow::Borrowed(g))),
            depts: Listed::of(depts),
        })
    }

    /// Reads a bundle, bounded; checks its shape (sizes, counts, sorted sets of suspended
    /// and revoked entries), not its signatures: that is `verify`.
    pub fn decode(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let wire: Wire<WireDept> = read(bytes, BUNDLE_KIND)?;
        let (genesis, governance) = wire.check()?;
        let departments = (wire.depts.items.into_iter().enumerate())
            .map(|(i, d)| {
                let at = || DeptRef::Position(i);
                let status = entries(&d.set.0, EntryList::StatusSet).map_err(|problem| {
                    BundleError::Set {
                        department: at(),
                        list: EntryList::StatusSet,
                        problem,
                    }
                })?;
                Ok(BundleDepartment {
                    checkpoint: d.cp.into_owned(),
                    status,
                })
            })
            .collect::<Result<_, BundleError>>()?;
        Ok(Bundle {
            genesis,
            made_ms: wire.made_ms,
            governance,
            departments,
        })
    }
}

impl Delta {
    pub fn encode(&self) -> Vec<u8> {
        let depts = self
            .departments
            .iter()
            .map(|d| WireDeltaDept {
                from: d.from_height,
                cp: Cow::Borrowed(&d.checkpoint),
                changes: Bytes(Cow::Borrowed(d.changes.as_flattened())),
            })
            .collect();
        write(&Wire {
            kind: Cow::Borrowed(DELTA_KIND),
            genesis: Bytes(Cow::Borrowed(&self.genesis.0)),
            made_ms: self.made_ms,
            gov: self.governance.as_deref().map(|g| Bytes(Cow::Borrowed(g))),
            depts: Listed::of(depts),
        })
    }

    /// Reads a delta, bounded; checks its shape as `Bundle::decode` does.
    pub fn decode(bytes: &[u8]) -> Result<Delta, BundleError> {
        let wire: Wire<WireDeltaDept> = read(bytes, DELTA_KIND)?;
        let (genesis, governance) = wire.check()?;
        let departments = (wire.depts.items.into_iter().enumerate())
            .map(|(i, d)| {
                let changes = entries(&d.changes.0, EntryList::Changes).map_err(|problem| {
                    BundleError::Set {
                        department: DeptRef::Position(i),
                        list: EntryList::Changes,
                        problem,
                    }
                })?;
                Ok(DeltaDepartment {
                    from_height: d.from,
                    checkpoint: d.cp.into_owned(),
                    changes,
                })
            })
            .collect::<Result<_, BundleError>>()?;
        Ok(Delta {
            genesis,
            made_ms: wire.made_ms,
            governance,
            departments,
        })
    }
}

/// The CBOR map of a bundle or a delta (`D` is the department's map). One definition for
/// writing and reading: serde, rather than a `ciborium::Value` tree, so that reading
/// allocates only what the input holds (a `Value` per byte of a hostile 64 MiB array
/// would be gigabytes).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a, D> {
    kind: Cow<'a, str>,
    genesis: Bytes<'a>,
    made_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gov: Option<Bytes<'a>>,
    depts: Listed<D>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDept<'a> {
    cp: Cow<'a, str>,
    set: Bytes<'a>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDeltaDept<'a> {
    from: u64,
    cp: Cow<'a, str>,
    changes: Bytes<'a>,
}

/// What is read first, to say "a delta, not a bundle" before anything else.
#[derive(Deserialize)]
struct Envelope {
    kind: String,
}

impl<D: HasCheckpoint> Wire<'_, D> {
    /// The bounds every bundle and delta keeps; its genesis hash and governance export.
    fn check(&self) -> Result<(Hash32, Option<Vec<u8>>), BundleError> {
        check_sizes(
            self.depts.count,
            self.gov.as_ref().map(|g| g.0.len()),
            self.depts.items.iter().map(HasCheckpoint::checkpoint),
        )?;
        let genesis = <[u8; 32]>::try_from(self.genesis.0.as_ref()).map_err(|_| {
            BundleError::GenesisLength {
                bytes: self.genesis.0.len(),
            }
        })?;
        Ok((Hash32(genesis), self.gov.as_ref().map(|g| g.0.to_vec())))
    }
}

trait HasCheckpoint {
    fn checkpoint(&self) -> &str;
}

impl HasCheckpoint for WireDept<'_> {
    fn checkpoint(&self) -> &str {
        &self.cp
    }
}

impl HasCheckpoint for WireDeltaDept<'_> {
    fn checkpoint(&self) -> &str {
        &self.cp
    }
}

/// The bounds on departments, governance and checkpoints, for decoded and built bundles
/// and deltas alike.
fn check_sizes<'a>(
    count: usize,
    governance: Option<usize>,
    checkpoints: impl Iterator<Item = &'a str>,
) -> Result<(), BundleError> {
    if count > DEPARTMENTS_MAX {
        return Err(BundleError::TooManyDepartments { count });
    }
    if let Some(bytes) = governance.filter(|&b| b > GOVERNANCE_BYTES_MAX) {
        return Err(BundleError::GovernanceTooLarge { bytes });
    }
    for (i, cp) in checkpoints.enumerate() {
        if cp.len() > CHECKPOINT_BYTES_MAX {
            return Err(BundleError::CheckpointTooLarge {
                department: DeptRef::Position(i),
                bytes: cp.len(),
            });
        }
    }
    Ok(())
}

fn write<D: Serialize>(wire: &Wire<'_, D>) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(wire, &mut out).expect("writing CBOR to a Vec cannot fail");
    out
}

/// Reads one CBOR value of kind `kind` that is all of `bytes`.
fn read<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    kind: &'static str,
) -> Result<T, BundleError> {
    if bytes.len() > BUNDLE_BYTES_MAX {
        return Err(BundleError::TooLarge { bytes: bytes.len() });
    }
    let Envelope { kind: found } = read_all(bytes)?;
    if found != kind {
        return Err(BundleError::Kind {
            found: found.chars().take(64).collect(),
            expected: kind,
        });
    }
    read_all(bytes)
}

fn read_all<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, BundleError> {
    let mut rest = bytes;
    let value = ciborium::from_reader(&mut rest).map_err(BundleError::Cbor)?;
    if !rest.is_empty() {
        return Err(BundleError::TrailingBytes { bytes: rest.len() });
    }
    Ok(value)
}

/// A byte string (never an array of integers: that would be twice the size and is
/// refused).
struct Bytes<'a>(Cow<'a, [u8]>);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes<'_> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        Ok(Bytes(Cow::Owned(d.deserialize_byte_buf(V)?)))
    }
}

/// The departments' list, read keeping at most `DEPARTMENTS_MAX` of them: the rest are
/// skipped and counted, so that a hostile list costs no memory and is refused by its
/// count with a typed error.
struct Listed<T> {
    items: Vec<T>,
    count: usize,
}

impl<T> Listed<T> {
    fn of(items: Vec<T>) -> Self {
        Self {
            count: items.len(),
            items,
        }
    }
}

impl<T: Serialize> Serialize for Listed<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.items.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Listed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Listed<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of departments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Listed<T>, A::Error> {
                let mut items = Vec::new();
                while items.len() < DEPARTMENTS_MAX {
                    match seq.next_element()? {
                        Some(item) => items.push(item),
                        None => return Ok(Listed::of(items)),
                    }
                }
                let mut count = items.len();
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
                Ok(Listed { items, count })
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// The entries of a byte string, checked as `list`.
fn entries(bytes: &[u8], list: EntryList) -> Result<Vec<[u8; ENTRY_BYTES]>, SetProblem> {
    if bytes.len() % ENTRY_BYTES != 0 {
        return Err(SetProblem::Length { bytes: bytes.len() });
    }
    let out: Vec<[u8; ENTRY_BYTES]> = bytes
        .chunks_exact(ENTRY_BYTES)
        .map(|c| c.try_into().expect("chunks_exact gives whole entries"))
        .collect();
    check_set(&out, list)?;
    Ok(out)
}

/// A status set (or a delta's changes) is sorted strictly by key and holds only
/// suspensions and revocations (and, in changes, removals).
fn check_set(entries: &[[u8; ENTRY_BYTES]], list: EntryList) -> Result<(), SetProblem> {
    let mut previous: Option<&[u8]> = None;
    for (index, e) in entries.iter().enumerate() {
        let bytes = [e[16], e[17]];
        let known = entry_status(bytes).is_some() || tlog::is_superseded(bytes);
        let removal = list == EntryList::Changes && is_removal(bytes);
        if !known && !removal {
            return Err(SetProblem::Status { index, bytes, list });
        }
        if previous.is_some_and(|p| p >= &e[..16]) {
            return Err(SetProblem::Unsorted { index });
        }
        previous = Some(&e[..16]);
    }
    Ok(())
}

/// What a set entry's status bytes say: a suspension or a revocation, or nothing (an
/// active licence is never in a set; other bytes mean nothing).
fn entry_status(bytes: [u8; 2]) -> Option<BundleStatus> {
    match LicenceStatus::from_bytes(bytes)? {
        LicenceStatus::Active => None,
        LicenceStatus::Suspended(r) => Some(BundleStatus::Suspended(r)),
        LicenceStatus::Revoked(r) => Some(BundleStatus::Revoked(r)),
        LicenceStatus::Transferred => Some(BundleStatus::Transferred),
    }
}

/// In a delta, the active status bytes remove the key: the licence was reinstated.
fn is_removal(bytes: [u8; 2]) -> bool {
    LicenceStatus::from_bytes(bytes) == Some(LicenceStatus::Active)
}

// ---------------------------------------------------------------------------------------
// Verification

impl Bundle {
    /// Checks the bundle against the verifier's own network: its genesis; for each
    /// department, its checkpoint signed by the department and cosigned by the witness
    /// quorum, no department twice, and its set sorted, as long as the checkpoint says
    /// and hashing to its status root.
    pub fn verify(&self, net: &Network) -> Result<VerifiedBundle, BundleError> {
        self.clone().into_verified(net)
    }

    fn into_verified(self, net: &Network) -> Result<VerifiedBundle, BundleError> {
        if self.genesis != net.hash() {
            return Err(BundleError::Network {
                expected: net.hash(),
                found: self.genesis,
            });
        }
        check_sizes(
            self.departments.len(),
            self.governance.as_ref().map(Vec::len),
            self.departments.iter().map(|d| d.checkpoint.as_str()),
        )?;
        let mut held: BTreeMap<DepartmentId, (SignedCheckpoint, BundleDepartment)> =
            BTreeMap::new();
        for (i, d) in self.departments.into_iter().enumerate() {
            let cp = verify_checkpoint(net, i, &d.checkpoint)?;
            verify_set(&cp, &d.status)?;
            let department = cp.checkpoint.department.clone();
            if held.insert(department.clone(), (cp, d)).is_some() {
                return Err(BundleError::DuplicateDepartment { department });
            }
        }
        let (checkpoints, departments) = held.into_values().unzip();
        Ok(VerifiedBundle {
            bundle: Bundle {
                departments,
                ..self
            },
            checkpoints,
        })
    }
}

/// The checkpoint of the department at `position`: signed by it, cosigned by the quorum.
fn verify_checkpoint(
    net: &Network,
    position: usize,
    text: &str,
) -> Result<SignedCheckpoint, BundleError> {
    let cp = SignedCheckpoint::parse(net, text).map_err(|source| BundleError::Checkpoint {
        department: DeptRef::Position(position),
        source,
    })?;
    if !cp.has_quorum(net) {
        let department = cp.checkpoint.department.clone();
        return Err(BundleError::Quorum {
            height: cp.checkpoint.height,
            cosigners: cp.cosigners(net).len(),
            quorum: checkpoint::quorum(net, &department),
            department,
        });
    }
    Ok(cp)
}

/// The set is what `cp` says: well formed, as many entries, the same root.
fn verify_set(cp: &SignedCheckpoint, set: &[[u8; ENTRY_BYTES]]) -> Result<(), BundleError> {
    let c = &cp.checkpoint;
    check_set(set, EntryList::StatusSet).map_err(|problem| BundleError::Set {
        department: DeptRef::Id(c.department.clone()),
        list: EntryList::StatusSet,
        problem,
    })?;
    let entries = set.len() as u64;
    if entries != c.status_count {
        return Err(BundleError::SetCount {
            department: c.department.clone(),
            height: c.height,
            entries,
            count: c.status_count,
        });
    }
    let (_, root) = tlog::status_root(set.iter().copied());
    if root != c.status_root {
        return Err(BundleError::SetRoot {
            department: c.department.clone(),
            height: c.height,
            expected: c.status_root,
            found: root,
        });
    }
    Ok(())
}

impl VerifiedBundle {
    /// The verified bundle itself, its departments in department order: to save it, or
    /// to ask a node for a delta from it.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    fn index(&self, dept: &DepartmentId) -> Option<usize> {
        self.checkpoints
            .binary_search_by(|c| c.checkpoint.department.cmp(dept))
            .ok()
    }

    /// `dept`'s checkpoint, if the bundle holds one.
    pub fn checkpoint(&self, dept: &DepartmentId) -> Option<&SignedCheckpoint> {
        self.index(dept).map(|i| &self.checkpoints[i])
    }

    /// What the bundle says of licence `id`, as of its department's checkpoint (see
    /// `freshness` for how old that is). Two binary searches; the only allocation is the
    /// licence id's text inside `tlog::status_key`.
    pub fn status(&self, id: &LicenceId) -> BundleStatus {
        let Some(i) = self.index(id.department()) else {
            return BundleStatus::NotCovered;
        };
        let key = tlog::status_key(id);
        let set = &self.bundle.departments[i].status;
        match set.binary_search_by(|e| e[..16].cmp(&key[..])) {
            Err(_) => BundleStatus::Active,
            Ok(j) => entry_status([set[j][16], set[j][17]])
                .expect("verification admits only suspensions and revocations into a set"),
        }
    }

    /// Whether the bundle's set of the credential's department holds `commitment` as a
    /// superseded credential (renewed, reissued or amended since, and not yet expired at
    /// the checkpoint): an old or lost card.
    pub fn superseded(&self, id: &LicenceId, commitment: &Hash32) -> bool {
        let Some(i) = self.index(id.department()) else {
            return false;
        };
        let key = tlog::credential_status_key(commitment);
        let set = &self.bundle.departments[i].status;
        set.binary_search_by(|e| e[..16].cmp(&key[..]))
            .is_ok_and(|j| tlog::is_superseded([set[j][16], set[j][17]]))
    }

    /// The height of each department's checkpoint, in department order: what a node
    /// needs to make a delta from this bundle.
    pub fn version(&self) -> Vec<(DepartmentId, u64)> {
        self.checkpoints
            .iter()
            .map(|c| (c.checkpoint.department.clone(), c.checkpoint.height))
            .collect()
    }

    /// Milliseconds from `dept`'s checkpoint to `now_ms` (0 for a checkpoint signed after
    /// `now_ms`, by a clock ahead of the verifier's).
    pub fn age(&self, dept: &DepartmentId, now_ms: u64) -> Option<u64> {
        self.checkpoint(dept)
            .map(|c| now_ms.saturating_sub(c.checkpoint.time_ms))
    }

    /// How `dept`'s checkpoint's age compares with the network's limits: fresh up to
    /// and at the soft limit, stale up to and at the hard one, expired past it.
    pub fn freshness(
        &self,
        dept: &DepartmentId,
        now_ms: u64,
        rules: &CheckpointRules,
    ) -> Option<Freshness> {
        let age = self.age(dept, now_ms)?;
        Some(if age <= rules.bundle_soft_max_secs.saturating_mul(1000) {
            Freshness::Fresh
        } else if age <= rules.bundle_hard_max_secs.saturating_mul(1000) {
            Freshness::Stale
        } else {
            Freshness::Expired
        })
    }

    /// The oldest checkpoint's time (unix ms), if the bundle holds any.
    pub fn oldest_ms(&self) -> Option<u64> {
        self.checkpoints.iter().map(|c| c.checkpoint.time_ms).min()
    }

    // -----------------------------------------------------------------------------------
    // Deltas

    /// This bundle brought up to date by `delta`, verified as a whole under `net`. Each
    /// department of the delta must apply to the checkpoint held (`from_height`, 0 where
    /// none is held) and must not move it back; departments the delta leaves out are kept.
    pub fn apply(&self, delta: &Delta, net: &Network) -> Result<VerifiedBundle, BundleError> {
        if delta.genesis != net.hash() {
            return Err(BundleError::Network {
                expected: net.hash(),
                found: delta.genesis,
            });
        }
        check_sizes(
            delta.departments.len(),
            delta.governance.as_ref().map(Vec::len),
            delta.departments.iter().map(|d| d.checkpoint.as_str()),
        )?;
        let mut sets: BTreeMap<DepartmentId, BundleDepartment> = (self.checkpoints.iter())
            .zip(&self.bundle.departments)
            .map(|(c, d)| (c.checkpoint.department.clone(), d.clone()))
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for (i, d) in delta.departments.iter().enumerate() {
            let offered = SignedCheckpoint::parse(net, &d.checkpoint).map_err(|source| {
                BundleError::Checkpoint {
                    department: DeptRef::Position(i),
                    source,
                }
            })?;
            let department = offered.checkpoint.department.clone();
            if !seen.insert(department.clone()) {
                return Err(BundleError::DuplicateDepartment { department });
            }
            check_set(&d.changes, EntryList::Changes).map_err(|problem| BundleError::Set {
                department: DeptRef::Id(department.clone()),
                list: EntryList::Changes,
                problem,
            })?;
            let held = self.checkpoint(&department);
            if let Some(held) = held.filter(|h| h.checkpoint.newer_than(&offered.checkpoint)) {
                return Err(BundleError::Rollback {
                    department,
                    held: CheckpointAt::of(held),
                    offered: CheckpointAt::of(&offered),
                });
            }
            let held_height = held.map_or(0, |h| h.checkpoint.height);
            if d.from_height != held_height {
                return Err(BundleError::DeltaBase {
                    department,
                    from: d.from_height,
                    held: held_height,
                });
            }
            let base = sets.get(&department).map_or(&[][..], |b| &b.status[..]);
            let status = merge(base, &d.changes);
            sets.insert(
                department,
                BundleDepartment {
                    checkpoint: d.checkpoint.clone(),
                    status,
                },
            );
        }
        Bundle {
            genesis: self.bundle.genesis,
            made_ms: delta.made_ms,
            governance: delta
                .governance
                .clone()
                .or_else(|| self.bundle.governance.clone()),
            departments: sets.into_values().collect(),
        }
        .into_verified(net)
    }
}

/// A freshly downloaded full bundle `new` may replace the held `old` only if it moves no
/// department back (a lower height, or the same height signed earlier) and drops none.
pub fn check_not_rollback(old: &VerifiedBundle, new: &VerifiedBundle) -> Result<(), BundleError> {
    if new.bundle.genesis != old.bundle.genesis {
        return Err(BundleError::Network {
            expected: old.bundle.genesis,
            found: new.bundle.genesis,
        });
    }
    for held in &old.checkpoints {
        let department = &held.checkpoint.department;
        let Some(offered) = new.checkpoint(department) else {
            return Err(BundleError::Dropped {
                department: department.clone(),
            });
        };
        if held.checkpoint.newer_than(&offered.checkpoint) {
            return Err(BundleError::Rollback {
                department: department.clone(),
                held: CheckpointAt::of(held),
                offered: CheckpointAt::of(offered),
            });
        }
    }
    Ok(())
}

/// The changes that turn the sorted set `old` into the sorted set `new`: a removal (the
/// active status bytes) for each key only `old` has, `new`'s entry for each key that is
/// new or whose status changed; sorted by key. Both must be sorted strictly by key.
pub fn diff(old: &[[u8; ENTRY_BYTES]], new: &[[u8; ENTRY_BYTES]]) -> Vec<[u8; ENTRY_BYTES]> {
    let removal = |e: &[u8; ENTRY_BYTES]| {
        let mut r = *e;
        r[16..].copy_from_slice(&LicenceStatus::Active.to_bytes());
        r
    };
    let mut out = Vec::new();
    let (mut o, mut n) = (old.iter().peekable(), new.iter().peekable());
    loop {
        match (o.peek(), n.peek()) {
            (None, None) => break,
            (Some(a), None) => {
                out.push(removal(a));
                o.next();
            }
            (None, Some(b)) => {
                out.push(**b);
                n.next();
            }
            (Some(a), Some(b)) => match a[..16].cmp(&b[..16]) {
                std::cmp::Ordering::Less => {
                    out.push(removal(a));
                    o.next();
                }
                std::cmp::Ordering::Greater => {
                    out.push(**b);
                    n.next();
                }
                std::cmp::Ordering::Equal => {
                    if a != b {
                        out.push(**b);
                    }
                    o.next();
                    n.next();
                }
            },
        }
    }
    out
}

/// `set` with `changes` applied (both sorted strictly by key). A removal of a key the set
/// does not hold changes nothing: a node may name more removals than needed (an entry
/// past its end it cannot tell the bundle still held), and the result is checked against
/// the checkpoint's status root anyway.
fn merge(set: &[[u8; ENTRY_BYTES]], changes: &[[u8; ENTRY_BYTES]]) -> Vec<[u8; ENTRY_BYTES]> {
    let mut out = Vec::with_capacity(set.len() + changes.len());
    let mut held = set.iter().peekable();
    for c in changes {
        while let Some(e) = held.next_if(|e| e[..16] < c[..16]) {
            out.push(*e);
        }
        let _replaced = held.next_if(|e| e[..16] == c[..16]);
        if !is_removal([c[16], c[17]]) {
            out.push(*c);
        }
    }
    out.extend(held);
    out
}

#[cfg(test)]
mod tests;
