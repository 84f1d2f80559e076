//! Governance: the network changes on the ledger (docs/governance.md).
//!
//! A governance block carries one record, co-signed by a quorum of departments, and names
//! the governance head it builds on. The effective network at governance height g is
//! genesis folded with records 1..g by `Network::apply`, the one pure function that
//! changes a network; nothing else edits a `Network` after founding. A `Network` carries
//! its governance height and head, and every key each department has had (`KeySpan`).
//!
//! Invariants:
//! - every state satisfies the quorum rule `n/2 < q ≤ n` (n: departments able to vote),
//!   so two different records at one height can both reach quorum only if a department
//!   signed both (`GovEquivocation`);
//! - a department a record is about does not count toward that record's quorum;
//! - the network keeps its founding genesis hash whatever is applied: blocks name it;
//! - a department's key history only grows: which key signs a department block is decided
//!   by the block's height and the governance height it names (`Network::signing_key`),
//!   the same answer on every node that holds the records.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ciborium::value::Value;
use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, KeyId, PublicKey, SecretKey, Signature};
use crate::genesis::{
    Department, GenesisDocument, GenesisError, LicenceTypeDef, Network, Observer, RecognitionRule,
    Region,
};
use crate::ids::{DepartmentId, LicenceType};

/// The first element of every governance block's payload.
pub const GOV_TAG: &str = "huren-gov/1";
/// Largest encoded governance block: a licence type with its labels, or recognition rules
/// replaced whole, fit many times over.
pub const GOV_BLOCK_BYTES_MAX: usize = 256 * 1024;
/// Cosignatures on one block at most (one per department).
pub const GOV_SIGNATURES_MAX: usize = crate::genesis::DEPARTMENTS_MAX;

/// One change to the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GovRecord {
    /// A new department; its chain starts empty.
    AddDepartment {
        department: Department,
    },
    /// No blocks of `department` past `last_height`; `successor` may suspend, reinstate
    /// and revoke its licences from then on (机构改革).
    RetireDepartment {
        department: DepartmentId,
        last_height: u64,
        successor: Option<DepartmentId>,
    },
    AddObserver {
        observer: Observer,
    },
    RemoveObserver {
        name: String,
    },
    AddRegion {
        region: Region,
    },
    AddLicenceType {
        licence_type: LicenceTypeDef,
    },
    /// The licence types `department` may issue from now on, replaced whole.
    SetGrants {
        department: DepartmentId,
        grants: Vec<LicenceType>,
    },
    /// The recognition rules, replaced whole.
    SetRecognition {
        rules: Vec<RecognitionRule>,
    },
    /// `department` signs with `key` the blocks it cuts under this record or a later
    /// one (naming this governance height or above); blocks naming a lower one keep its
    /// previous key. A department's blocks never name a lower governance height than
    /// their parent, so once it has signed with the new key the old one is done.
    RotateIssuerKey {
        department: DepartmentId,
        key: PublicKey,
    },
    /// A department's node (its id) or an observer's (its name) gets a new libp2p peer id.
    RotateNodeKey {
        node: String,
        peer_id: String,
    },
    /// `department`'s current key is bad past department height `last_good`: blocks above
    /// it signed with that key are refused; `replacement` signs from `last_good + 1`.
    KeyCompromised {
        department: DepartmentId,
        last_good: u64,
        replacement: PublicKey,
    },
    ChangeQuorum {
        quorum: u32,
    },
    /// The checkpoint rules (witness quorum, bundle age limits), replaced whole.
    SetCheckpointRules {
        rules: crate::genesis::CheckpointRules,
    },
    /// The protocol version in force from the next department block cut under this
    /// record: new record kinds are accepted everywhere at once. Only ever raised.
    SetProtocolVersion {
        version: u32,
    },
}

impl GovRecord {
    /// The department this record is about, which does not count toward its quorum.
    pub fn subject(&self) -> Option<&DepartmentId> {
        match self {
            GovRecord::RetireDepartment { department, .. }
            | GovRecord::RotateIssuerKey { department, .. }
            | GovRecord::KeyCompromised { department, .. } => Some(department),
            _ => None,
        }
    }

    /// The record in words, as `huren gov sign` shows it before signing.
    pub fn describe(&self) -> String {
        match self {
            GovRecord::AddDepartment { department: d } => format!(
                "add department {} ({}) in region {}, granted {}, key {}, node {}",
                d.id,
                d.name,
                d.region,
                list(&d.grants),
                d.issuer_key.key_id(),
                d.node_peer_id
            ),
            GovRecord::RetireDepartment {
                department,
                last_height,
                successor,
            } => format!(
                "retire department {department} after its block {last_height}{}",
                successor
                    .as_ref()
                    .map(|s| format!("; {s} takes over its licences"))
                    .unwrap_or_default()
            ),
            GovRecord::AddObserver { observer: o } => {
                format!("add observer {} in region {}, node {}", o.name, o.region, o.node_peer_id)
            }
            GovRecord::RemoveObserver { name } => format!("remove observer {name}"),
            GovRecord::AddRegion { region } => {
                format!("add region {} ({})", region.code, region.name)
            }
            GovRecord::AddLicenceType { licence_type: t } => format!(
                "add licence type {} ({} / {}), at most {} days, holder fields {}",
                t.code,
                t.name,
                t.name_en,
                t.validity_days_max,
                t.holder_fields.join(", ")
            ),
            GovRecord::SetGrants { department, grants } => {
                format!("{department} may issue {} from now on", list(grants))
            }
            GovRecord::SetRecognition { rules } => {
                format!("replace the recognition rules ({} rules)", rules.len())
            }
            GovRecord::RotateIssuerKey { department, key } => format!(
                "{department} signs with key {} from its first block cut under this record",
                key.key_id()
            ),
            GovRecord::RotateNodeKey { node, peer_id } => {
                format!("node of {node} becomes peer {peer_id}")
            }
            GovRecord::KeyCompromised {
                department,
                last_good,
                replacement,
            } => format!(
                "{department}'s key is COMPROMISED after its block {last_good}: later blocks signed with it are refused, and any it holds above are taken off its chain; key {} signs from block {}",
                replacement.key_id(),
                last_good.saturating_add(1)
            ),
            GovRecord::ChangeQuorum { quorum } => format!("quorum becomes {quorum}"),
            GovRecord::SetCheckpointRules { rules } => format!(
                "checkpoints need {} witness cosignatures; bundles fresh {} s, expired past {} s",
                rules.witness_quorum, rules.bundle_soft_max_secs, rules.bundle_hard_max_secs
            ),
            GovRecord::SetProtocolVersion { version } => format!(
                "the network switches to protocol version {version}: every department's node must run a release that knows it (nodes that do not stop signing)"
            ),
        }
    }
}

fn list(types: &[LicenceType]) -> String {
    if types.is_empty() {
        return "nothing".into();
    }
    types
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the quorum signs: a record at a height, on a head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovHeader {
    pub genesis: Hash32,
    /// 1 for the first record.
    pub height: u64,
    /// The governance head this builds on: the previous block's id, or the genesis hash.
    pub prev: Hash32,
    pub time_ms: u64,
    pub record: GovRecord,
}

impl GovHeader {
    fn to_value(&self) -> Value {
        Value::Array(vec![
            Value::Text(GOV_TAG.into()),
            Value::Bytes(self.genesis.0.to_vec()),
            Value::Integer(self.height.into()),
            Value::Bytes(self.prev.0.to_vec()),
            Value::Integer(self.time_ms.into()),
            Value::serialized(&self.record).expect("a record always serialises to CBOR"),
        ])
    }

    /// The deterministic CBOR of the header.
    pub fn encode(&self) -> Vec<u8> {
        to_bytes(&self.to_value())
    }

    /// The block's id: what every cosignature signs, unchanged by adding one.
    pub fn id(&self) -> Hash32 {
        Hash32::digest(&self.encode())
    }
}

fn signing_message(id: &Hash32) -> [u8; 48] {
    let mut m = [0u8; 48];
    m[..16].copy_from_slice(b"huren/gov/v1\0\0\0\0");
    m[16..].copy_from_slice(&id.0);
    m
}

/// A governance record with the cosignatures gathered so far (a proposal until it has a
/// quorum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovBlock {
    pub header: GovHeader,
    pub signatures: BTreeMap<DepartmentId, Signature>,
    id: Hash32,
}

impl GovBlock {
    pub fn new(header: GovHeader) -> Self {
        Self {
            id: header.id(),
            header,
            signatures: BTreeMap::new(),
        }
    }

    pub fn id(&self) -> Hash32 {
        self.id
    }

    pub fn height(&self) -> u64 {
        self.header.height
    }

    /// Adds (or replaces) `department`'s cosignature with `key`.
    pub fn cosign(&mut self, department: DepartmentId, key: &SecretKey) {
        let sig = key.sign(&signing_message(&self.id));
        self.signatures.insert(department, sig);
    }

    pub fn encode(&self) -> Vec<u8> {
        to_bytes(&Value::Array(vec![
            self.header.to_value(),
            Value::Array(
                self.signatures
                    .iter()
                    .map(|(d, s)| {
                        Value::Array(vec![
                            Value::Text(d.to_string()),
                            Value::Bytes(s.to_bytes().to_vec()),
                        ])
                    })
                    .collect(),
            ),
        ]))
    }

    /// Decodes a block, refusing anything over `GOV_BLOCK_BYTES_MAX`, more signatures
    /// than departments can give, and anything not in canonical form. Bounded and
    /// total: any input gives a value or an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, GovCodecError> {
        if bytes.len() > GOV_BLOCK_BYTES_MAX {
            return Err(GovCodecError::TooLarge {
                bytes: bytes.len(),
                max: GOV_BLOCK_BYTES_MAX,
            });
        }
        let v: Value =
            ciborium::de::from_reader(bytes).map_err(|e| GovCodecError::Cbor(e.to_string()))?;
        let Value::Array(outer) = v else {
            return Err(GovCodecError::Shape(
                "a governance block is [header, signatures]",
            ));
        };
        let [header, signatures]: [Value; 2] = outer
            .try_into()
            .map_err(|_| GovCodecError::Shape("a governance block is [header, signatures]"))?;
        let Value::Array(h) = header else {
            return Err(GovCodecError::Shape("header"));
        };
        let [tag, genesis, height, prev, time_ms, record]: [Value; 6] = h
            .try_into()
            .map_err(|_| GovCodecError::Shape("header has six fields"))?;
        if tag.as_text() != Some(GOV_TAG) {
            return Err(GovCodecError::Field("tag (expected huren-gov/1)"));
        }
        let hash = |v: Value, what| -> Result<Hash32, GovCodecError> {
            match v {
                Value::Bytes(b) => Ok(Hash32(
                    b.try_into().map_err(|_| GovCodecError::Field(what))?,
                )),
                _ => Err(GovCodecError::Field(what)),
            }
        };
        let uint = |v: Value, what| -> Result<u64, GovCodecError> {
            v.as_integer()
                .and_then(|i| u64::try_from(i).ok())
                .ok_or(GovCodecError::Field(what))
        };
        let header = GovHeader {
            genesis: hash(genesis, "genesis")?,
            height: uint(height, "height")?,
            prev: hash(prev, "prev")?,
            time_ms: uint(time_ms, "time_ms")?,
            record: record
                .deserialized()
                .map_err(|e| GovCodecError::Record(e.to_string()))?,
        };
        let Value::Array(sigs) = signatures else {
            return Err(GovCodecError::Shape("signatures"));
        };
        if sigs.len() > GOV_SIGNATURES_MAX {
            return Err(GovCodecError::TooManySignatures(sigs.len()));
        }
        let mut block = GovBlock::new(header);
        for s in sigs {
            let Value::Array(pair) = s else {
                return Err(GovCodecError::Shape("a signature is [department, bytes]"));
            };
            let [d, sig]: [Value; 2] = pair
                .try_into()
                .map_err(|_| GovCodecError::Shape("a signature is [department, bytes]"))?;
            let d = d
                .as_text()
                .and_then(|t| DepartmentId::parse(t).ok())
                .ok_or(GovCodecError::Field("signing department"))?;
            let sig = match sig {
                Value::Bytes(b) => Signature::from_slice(&b),
                _ => None,
            }
            .ok_or(GovCodecError::Field("signature"))?;
            block.signatures.insert(d, sig);
        }
        if block.encode() != bytes {
            return Err(GovCodecError::NotCanonical);
        }
        Ok(block)
    }
}

fn to_bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).expect("writing CBOR to a Vec cannot fail");
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovCodecError {
    #[error("not valid CBOR: {0}")]
    Cbor(String),
    #[error("{bytes} bytes, at most {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("{0} signatures, more than there can be departments")]
    TooManySignatures(usize),
    #[error("wrong structure: {0}")]
    Shape(&'static str),
    #[error("bad field: {0}")]
    Field(&'static str),
    #[error("not a governance record: {0}")]
    Record(String),
    #[error("not in canonical form (re-encoding gives different bytes)")]
    NotCanonical,
}

/// One key of a department, and which of its blocks it signs: those naming governance
/// height `from_gov` or above, from department height `from_height`, up to
/// `until_height` (set when a compromise fenced the department's keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpan {
    pub key: PublicKey,
    /// The governance height of the record that brought the key in (0: genesis).
    pub from_gov: u64,
    /// The first department height this key may sign.
    pub from_height: u64,
    /// The last, once a compromise ended the span.
    pub until_height: Option<u64>,
    /// Declared compromised: blocks it signed past `until_height` are refused, and
    /// credentials it signed are judged by their issue record's height.
    pub compromised: bool,
}

impl KeySpan {
    fn signs(&self, height: u64, gov: u64) -> bool {
        self.from_gov <= gov
            && self.from_height <= height
            && self.until_height.is_none_or(|u| height <= u)
    }
}

/// A retired department: its last block and its successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    pub last_height: u64,
    pub successor: Option<DepartmentId>,
}

/// What governance made of a network beyond its document: kept in `Network`.
#[derive(Debug, Clone)]
pub(crate) struct GovFacts {
    pub(crate) height: u64,
    pub(crate) head: Hash32,
    pub(crate) keys: BTreeMap<DepartmentId, Vec<KeySpan>>,
    pub(crate) retired: BTreeMap<DepartmentId, Retirement>,
    /// Offline only (a governance export brings it): commitments of credentials whose
    /// licences were issued at or below the last good height of a key since declared
    /// compromised, which stay valid.
    pub(crate) vouched: BTreeSet<Hash32>,
}

impl GovFacts {
    /// Governance height 0: each department's genesis key signs all its blocks.
    pub(crate) fn founding(doc: &GenesisDocument, hash: Hash32) -> Self {
        let keys = doc
            .departments
            .iter()
            .map(|d| {
                (
                    d.id.clone(),
                    vec![KeySpan {
                        key: d.issuer_key,
                        from_gov: 0,
                        from_height: 1,
                        until_height: None,
                        compromised: false,
                    }],
                )
            })
            .collect();
        Self {
            height: 0,
            head: hash,
            keys,
            retired: BTreeMap::new(),
            vouched: BTreeSet::new(),
        }
    }
}

/// Why a governance block or record was refused. Nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovError {
    #[error("governance block of another network (genesis {0})")]
    OtherNetwork(String),
    #[error("governance block {height} does not build on the head here (height {head_height}, {head}): rebase the proposal and sign it again")]
    NotOnHead {
        height: u64,
        head_height: u64,
        head: String,
    },
    #[error("{signer} is not a department that can sign this record")]
    NotAVoter { signer: DepartmentId },
    #[error("{signer}'s signature does not verify")]
    BadSignature { signer: DepartmentId },
    #[error("{signatures} valid signatures of departments that may sign it, quorum {quorum}")]
    NoQuorum { signatures: usize, quorum: u32 },
    #[error("{0} is not a department of this network")]
    UnknownDepartment(DepartmentId),
    #[error("{0} is retired")]
    Retired(DepartmentId),
    #[error("observer {0} is not in this network")]
    UnknownObserver(String),
    #[error("no node named {0} (a department id or an observer name)")]
    UnknownNode(String),
    #[error("{department}'s new key would start at height {from}, before its current key's first height {after}")]
    KeyChangeTooEarly {
        department: DepartmentId,
        from: u64,
        after: u64,
    },
    #[error("the key is already in use in this network")]
    KeyInUse,
    #[error("quorum {quorum} with {voters} departments able to vote: it must be more than half of them and at most all (n/2 < q ≤ n)")]
    QuorumRule { quorum: u32, voters: usize },
    #[error("the network after this record is not valid: {0}")]
    Invalid(GenesisError),
    #[error("protocol version {version} is not above the version in force, {current}: versions are only raised")]
    VersionNotRaised { version: u32, current: u32 },
}

impl GovError {
    /// A short stable code, for API errors and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            GovError::OtherNetwork(_) => "other_network",
            GovError::NotOnHead { .. } => "not_on_head",
            GovError::NotAVoter { .. } => "not_a_voter",
            GovError::BadSignature { .. } => "bad_signature",
            GovError::NoQuorum { .. } => "no_quorum",
            GovError::UnknownDepartment(_) => "unknown_department",
            GovError::Retired(_) => "retired",
            GovError::UnknownObserver(_) => "unknown_observer",
            GovError::UnknownNode(_) => "unknown_node",
            GovError::KeyChangeTooEarly { .. } => "key_change_too_early",
            GovError::KeyInUse => "key_in_use",
            GovError::QuorumRule { .. } => "quorum_rule",
            GovError::Invalid(_) => "invalid_network",
            GovError::VersionNotRaised { .. } => "version_not_raised",
        }
    }
}

/// The governance side of a network: the network in force at governance height g is
/// genesis plus records 1..g, each applied by `apply`.
impl Network {
    /// The governance height: how many records made this network from genesis.
    pub fn gov_height(&self) -> u64 {
        self.gov.height
    }

    /// The id of the newest record, or the genesis hash before any.
    pub fn gov_head(&self) -> Hash32 {
        self.gov.head
    }

    /// Every key `dept` has had, oldest first.
    pub fn key_history(&self, dept: &DepartmentId) -> &[KeySpan] {
        self.gov.keys.get(dept).map_or(&[], Vec::as_slice)
    }

    /// The key that signs `dept`'s block at `height` cut under governance height `gov`:
    /// the newest span that covers both, if any.
    pub fn signing_key(&self, dept: &DepartmentId, height: u64, gov: u64) -> Option<&KeySpan> {
        self.key_history(dept)
            .iter()
            .rev()
            .find(|s| s.signs(height, gov))
    }

    /// The department that has or had the key `kid`, and that key's span.
    pub fn key_span(&self, kid: &KeyId) -> Option<(&Department, &KeySpan)> {
        let dept = self.department_by_key(kid)?;
        let span = self
            .key_history(&dept.id)
            .iter()
            .find(|s| s.key.key_id() == *kid)?;
        Some((dept, span))
    }

    pub fn retirement(&self, dept: &DepartmentId) -> Option<&Retirement> {
        self.gov.retired.get(dept)
    }

    /// Whether `actor` may change `owner`'s licences: itself, or its successor through
    /// one or more retirements (机构改革).
    pub fn acts_for(&self, actor: &DepartmentId, owner: &DepartmentId) -> bool {
        let mut d = owner;
        for _ in 0..=self.gov.retired.len() {
            if d == actor {
                return true;
            }
            match self.retirement(d).and_then(|r| r.successor.as_ref()) {
                Some(s) => d = s,
                None => return false,
            }
        }
        false
    }

    /// This network, knowing offline (from a governance export) which credentials signed
    /// with a key since declared compromised belong to licences issued before it was.
    pub fn with_vouched(mut self, commitments: impl IntoIterator<Item = Hash32>) -> Self {
        self.gov.vouched.extend(commitments);
        self
    }

    /// Whether a governance export vouched for the credential with this commitment.
    pub fn vouched(&self, commitment: &Hash32) -> bool {
        self.gov.vouched.contains(commitment)
    }

    /// Departments that may sign governance records: every department not retired.
    pub fn voters(&self) -> impl Iterator<Item = &Department> {
        self.departments()
            .iter()
            .filter(|d| !self.gov.retired.contains_key(&d.id))
    }

    /// Checks `block` against this state (network, head, signatures, quorum) and applies
    /// its record: the state at the block's height. Pure.
    pub fn apply(&self, block: &GovBlock) -> Result<Network, GovError> {
        let h = &block.header;
        if h.genesis != self.hash() {
            return Err(GovError::OtherNetwork(h.genesis.short()));
        }
        if h.height != self.gov.height + 1 || h.prev != self.gov.head {
            return Err(GovError::NotOnHead {
                height: h.height,
                head_height: self.gov.height,
                head: self.gov.head.short(),
            });
        }
        self.check_quorum(block)?;
        let mut next = self.apply_record(&h.record)?;
        next.gov.height = h.height;
        next.gov.head = block.id();
        Ok(next)
    }

    /// Every signature verifies under a voter's current key, and those of departments
    /// other than the record's subject reach the quorum.
    pub fn check_quorum(&self, block: &GovBlock) -> Result<(), GovError> {
        let message = signing_message(&block.id());
        let subject = block.header.record.subject();
        let mut counted = 0usize;
        for (signer, sig) in &block.signatures {
            if self.gov.retired.contains_key(signer) {
                return Err(GovError::Retired(signer.clone()));
            }
            let voter =
                self.voters()
                    .find(|d| &d.id == signer)
                    .ok_or_else(|| GovError::NotAVoter {
                        signer: signer.clone(),
                    })?;
            if !voter.issuer_key.verify(&message, sig) {
                return Err(GovError::BadSignature {
                    signer: signer.clone(),
                });
            }
            if Some(signer) != subject {
                counted += 1;
            }
        }
        let quorum = self.document().governance.quorum;
        if counted < quorum as usize {
            return Err(GovError::NoQuorum {
                signatures: counted,
                quorum,
            });
        }
        Ok(())
    }

    /// The record's effect, checked: the network it makes (at the same governance height
    /// and head: `apply` moves those), or why it cannot apply.
    pub fn apply_record(&self, record: &GovRecord) -> Result<Network, GovError> {
        let mut doc = self.document().clone();
        let mut keys = self.gov.keys.clone();
        let mut retired = self.gov.retired.clone();
        // The height this record will have.
        let record_gov = self.gov.height + 1;
        let dept_index = |doc: &crate::genesis::GenesisDocument, id: &DepartmentId| {
            doc.departments
                .iter()
                .position(|d| &d.id == id)
                .ok_or_else(|| GovError::UnknownDepartment(id.clone()))
        };
        let active = |id: &DepartmentId| {
            if retired.contains_key(id) {
                Err(GovError::Retired(id.clone()))
            } else {
                Ok(())
            }
        };
        let key_used = |keys: &BTreeMap<DepartmentId, Vec<KeySpan>>, k: &PublicKey| {
            keys.values().flatten().any(|s| s.key == *k)
        };
        match record {
            GovRecord::AddDepartment { department } => {
                if key_used(&keys, &department.issuer_key) {
                    return Err(GovError::KeyInUse);
                }
                keys.insert(
                    department.id.clone(),
                    vec![KeySpan {
                        key: department.issuer_key,
                        from_gov: record_gov,
                        from_height: 1,
                        until_height: None,
                        compromised: false,
                    }],
                );
                doc.departments.push(department.clone());
            }
            GovRecord::RetireDepartment {
                department,
                last_height,
                successor,
            } => {
                dept_index(&doc, department)?;
                active(department)?;
                if let Some(s) = successor {
                    dept_index(&doc, s)?;
                    active(s)?;
                    if s == department {
                        return Err(GovError::Retired(s.clone()));
                    }
                }
                retired.insert(
                    department.clone(),
                    Retirement {
                        last_height: *last_height,
                        successor: successor.clone(),
                    },
                );
            }
            GovRecord::AddObserver { observer } => doc.observers.push(observer.clone()),
            GovRecord::RemoveObserver { name } => {
                let before = doc.observers.len();
                doc.observers.retain(|o| &o.name != name);
                if doc.observers.len() == before {
                    return Err(GovError::UnknownObserver(name.clone()));
                }
            }
            GovRecord::AddRegion { region } => doc.regions.push(region.clone()),
            GovRecord::AddLicenceType { licence_type } => {
                doc.licence_types.push(licence_type.clone());
            }
            GovRecord::SetGrants { department, grants } => {
                let i = dept_index(&doc, department)?;
                active(department)?;
                doc.departments[i].grants = grants.clone();
            }
            GovRecord::SetRecognition { rules } => doc.recognition = rules.clone(),
            GovRecord::RotateIssuerKey { department, key } => {
                let i = dept_index(&doc, department)?;
                active(department)?;
                if key_used(&keys, key) {
                    return Err(GovError::KeyInUse);
                }
                let from_height = current_span(&keys, department)?.from_height;
                push_span(&mut keys, department, key, record_gov, from_height);
                doc.departments[i].issuer_key = *key;
            }
            GovRecord::RotateNodeKey { node, peer_id } => {
                if let Some(d) = doc.departments.iter_mut().find(|d| d.id.as_str() == node) {
                    d.node_peer_id = peer_id.clone();
                } else if let Some(o) = doc.observers.iter_mut().find(|o| &o.name == node) {
                    o.node_peer_id = peer_id.clone();
                } else {
                    return Err(GovError::UnknownNode(node.clone()));
                }
            }
            GovRecord::KeyCompromised {
                department,
                last_good,
                replacement,
            } => {
                let i = dept_index(&doc, department)?;
                active(department)?;
                if key_used(&keys, replacement) {
                    return Err(GovError::KeyInUse);
                }
                let from = last_good.saturating_add(1);
                fence(&mut keys, department, *last_good)?;
                push_span(&mut keys, department, replacement, record_gov, from);
                doc.departments[i].issuer_key = *replacement;
            }
            GovRecord::ChangeQuorum { quorum } => doc.governance.quorum = *quorum,
            GovRecord::SetCheckpointRules { rules } => doc.checkpoints = Some(*rules),
            GovRecord::SetProtocolVersion { version } => {
                let current = doc.protocol_version.unwrap_or(1);
                if *version <= current {
                    return Err(GovError::VersionNotRaised {
                        version: *version,
                        current,
                    });
                }
                doc.protocol_version = Some(*version);
            }
        }
        let next = Network::evolved(doc, self.hash())
            .map_err(GovError::Invalid)?
            .with_gov(GovFacts {
                height: self.gov.height,
                head: self.gov.head,
                keys,
                retired,
                vouched: self.gov.vouched.clone(),
            });
        next.quorum_rule()?;
        Ok(next)
    }

    /// `n/2 < q ≤ n`, n the departments able to vote.
    fn quorum_rule(&self) -> Result<(), GovError> {
        let voters = self.voters().count();
        let quorum = self.document().governance.quorum;
        if !quorum_ok(quorum, voters) {
            return Err(GovError::QuorumRule { quorum, voters });
        }
        Ok(())
    }
}

/// The quorum rule: more than half of the voters, at most all of them.
pub fn quorum_ok(quorum: u32, voters: usize) -> bool {
    let q = quorum as usize;
    q >= 1 && 2 * q > voters && q <= voters
}

/// `dept`'s newest key span.
fn current_span<'k>(
    keys: &'k BTreeMap<DepartmentId, Vec<KeySpan>>,
    dept: &DepartmentId,
) -> Result<&'k KeySpan, GovError> {
    keys.get(dept)
        .and_then(|s| s.last())
        .ok_or_else(|| GovError::UnknownDepartment(dept.clone()))
}

/// A compromise of `dept`'s current key: none of its keys signs past `last_good` any
/// more, and the current one is marked compromised. `last_good` may not reach back before
/// the current key's first height (its blocks below are another key's).
fn fence(
    keys: &mut BTreeMap<DepartmentId, Vec<KeySpan>>,
    dept: &DepartmentId,
    last_good: u64,
) -> Result<(), GovError> {
    let current = current_span(keys, dept)?;
    if last_good.saturating_add(1) < current.from_height {
        return Err(GovError::KeyChangeTooEarly {
            department: dept.clone(),
            from: last_good.saturating_add(1),
            after: current.from_height,
        });
    }
    let spans = keys
        .get_mut(dept)
        .ok_or_else(|| GovError::UnknownDepartment(dept.clone()))?;
    for s in spans.iter_mut() {
        s.until_height = Some(s.until_height.map_or(last_good, |u| u.min(last_good)));
    }
    if let Some(current) = spans.last_mut() {
        current.compromised = true;
    }
    Ok(())
}

fn push_span(
    keys: &mut BTreeMap<DepartmentId, Vec<KeySpan>>,
    dept: &DepartmentId,
    key: &PublicKey,
    from_gov: u64,
    from_height: u64,
) {
    keys.entry(dept.clone()).or_default().push(KeySpan {
        key: *key,
        from_gov,
        from_height,
        until_height: None,
        compromised: false,
    });
}

/// Two different governance blocks at one height, both signed by one department: proof
/// that it signed two conflicting records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovEquivocation {
    pub signer: DepartmentId,
    pub first: GovBlock,
    pub second: GovBlock,
}

/// The departments that signed both `a` and `b` (different blocks at one height) with
/// signatures that verify under `state`'s keys: each of them equivocated.
pub fn double_signers(state: &Network, a: &GovBlock, b: &GovBlock) -> Vec<DepartmentId> {
    if a.height() != b.height() || a.id() == b.id() {
        return Vec::new();
    }
    let (ma, mb) = (signing_message(&a.id()), signing_message(&b.id()));
    let both: BTreeSet<&DepartmentId> = a
        .signatures
        .keys()
        .filter(|d| b.signatures.contains_key(*d))
        .collect();
    both.into_iter()
        .filter(|d| {
            state.voters().any(|v| {
                &&v.id == d
                    && v.issuer_key.verify(&ma, &a.signatures[*d])
                    && v.issuer_key.verify(&mb, &b.signatures[*d])
            })
        })
        .cloned()
        .collect()
}

/// What became of a governance block offered to a `GovChain`.
#[derive(Debug, Clone)]
pub enum GovAdmission {
    /// It extended the chain: the network now in force.
    Applied(Arc<Network>),
    /// This exact block is held.
    Duplicate,
    /// A different block with a quorum at a height held: the departments that signed
    /// both. The block held stays.
    Equivocation(Vec<GovEquivocation>),
}

/// The governance chain as a node holds it: its blocks, and the network in force at every
/// governance height (a department block is judged by the one it names). Records come
/// monthly, not per second: every state is kept.
#[derive(Debug, Clone)]
pub struct GovChain {
    /// `states[g]`: the network at governance height g.
    states: Vec<Arc<Network>>,
    /// `blocks[g - 1]`: the block of height g.
    blocks: Vec<GovBlock>,
}

impl GovChain {
    pub fn new(genesis: Network) -> Self {
        Self {
            states: vec![Arc::new(genesis)],
            blocks: Vec::new(),
        }
    }

    /// The network in force now.
    pub fn newest(&self) -> &Arc<Network> {
        self.states
            .last()
            .expect("a governance chain holds genesis at least")
    }

    pub fn height(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// The network at governance height `gov`.
    pub fn state_at(&self, gov: u64) -> Option<&Arc<Network>> {
        usize::try_from(gov).ok().and_then(|g| self.states.get(g))
    }

    /// The block of governance height `height`.
    pub fn block(&self, height: u64) -> Option<&GovBlock> {
        let i = usize::try_from(height.checked_sub(1)?).ok()?;
        self.blocks.get(i)
    }

    /// The blocks from height `from`, at most `max`.
    pub fn blocks_from(&self, from: u64, max: usize) -> &[GovBlock] {
        let start = usize::try_from(from.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(self.blocks.len());
        let end = start.saturating_add(max).min(self.blocks.len());
        &self.blocks[start..end]
    }

    /// Checks `block` and appends it if it extends the chain. At a height held, the same
    /// block is a duplicate, and a different one with a quorum proves who signed both.
    /// Past the head (a gap) it is `NotOnHead`: fetch the blocks between first.
    pub fn admit(&mut self, block: GovBlock) -> Result<GovAdmission, GovError> {
        let h = block.height();
        if h >= 1 && h <= self.height() {
            let held = self.block(h).expect("a height held has its block");
            if held.id() == block.id() {
                return Ok(GovAdmission::Duplicate);
            }
            let parent = self.state_at(h - 1).expect("a height held has its parent");
            parent.check_quorum(&block)?;
            let held = held.clone();
            let proofs = double_signers(parent, &held, &block)
                .into_iter()
                .map(|signer| GovEquivocation {
                    signer,
                    first: held.clone(),
                    second: block.clone(),
                })
                .collect();
            return Ok(GovAdmission::Equivocation(proofs));
        }
        let next = Arc::new(self.newest().apply(&block)?);
        self.states.push(next.clone());
        self.blocks.push(block);
        Ok(GovAdmission::Applied(next))
    }
}

impl crate::validate::GovView for GovChain {
    fn newest(&self) -> &Network {
        GovChain::newest(self)
    }
    fn at(&self, gov: u64) -> Option<&Network> {
        self.state_at(gov).map(|n| &**n)
    }
}

#[cfg(test)]
mod tests;
