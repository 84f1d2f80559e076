//! Governance: the network changes on the ledger (docs/governance.md).
//!
//! A governance block carries one record, co-signed by a quorum of departments, and names
//! the governance head it builds on. The effective network at governance height g is
//! genesis folded with records 1..g by `Governed::apply`, the one pure function that
//! changes a network; nothing else edits a `Network` after founding.
//!
//! Invariants:
//! - every state satisfies the quorum rule `n/2 < q ≤ n` (n: departments able to vote),
//!   so two different records at one height can both reach quorum only if a department
//!   signed both (`GovEquivocation`);
//! - a department a record is about does not count toward that record's quorum;
//! - the network keeps its founding genesis hash whatever is applied: blocks name it;
//! - a department's key history only grows: which key signed a department block is
//!   decided by that block's height alone.

use std::collections::{BTreeMap, BTreeSet};

use ciborium::value::Value;
use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, PublicKey, SecretKey, Signature};
use crate::genesis::{
    Department, GenesisError, LicenceTypeDef, Network, Observer, RecognitionRule, Region,
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
    /// From department height `from_height` on, `department` signs with `key`.
    RotateIssuerKey {
        department: DepartmentId,
        key: PublicKey,
        from_height: u64,
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
            GovRecord::RotateIssuerKey {
                department,
                key,
                from_height,
            } => format!(
                "{department} signs with key {} from its block {from_height} on",
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
                "{department}'s key is COMPROMISED after its block {last_good}: later blocks signed with it are refused; key {} signs from block {}",
                replacement.key_id(),
                last_good.saturating_add(1)
            ),
            GovRecord::ChangeQuorum { quorum } => format!("quorum becomes {quorum}"),
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

/// Which key signs a department's blocks over a range of its heights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpan {
    pub key: PublicKey,
    /// The first department height this key signs.
    pub from_height: u64,
    /// The last, once a rotation or compromise ended the span.
    pub until_height: Option<u64>,
    /// Declared compromised: blocks it signed past `until_height` are refused, and
    /// credentials it signed are judged by their issue record's height.
    pub compromised: bool,
}

/// A retired department: its last block and its successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    pub last_height: u64,
    pub successor: Option<DepartmentId>,
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
    #[error("{department}'s key change must start past its last key change (height {after}), got {from}")]
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
}

/// The network in force at a governance height: genesis plus every record up to it.
#[derive(Debug, Clone)]
pub struct Governed {
    network: Network,
    height: u64,
    head: Hash32,
    keys: BTreeMap<DepartmentId, Vec<KeySpan>>,
    retired: BTreeMap<DepartmentId, Retirement>,
}

impl Governed {
    /// Governance height 0: genesis as founded.
    pub fn genesis(network: Network) -> Self {
        let keys = network
            .departments()
            .iter()
            .map(|d| {
                (
                    d.id.clone(),
                    vec![KeySpan {
                        key: d.issuer_key,
                        from_height: 1,
                        until_height: None,
                        compromised: false,
                    }],
                )
            })
            .collect();
        Self {
            head: network.hash(),
            network,
            height: 0,
            keys,
            retired: BTreeMap::new(),
        }
    }

    /// The effective network (departments carry their current key).
    pub fn network(&self) -> &Network {
        &self.network
    }

    pub fn height(&self) -> u64 {
        self.height
    }

    /// The id of the newest record, or the genesis hash before any.
    pub fn head(&self) -> Hash32 {
        self.head
    }

    /// Every key `dept` has had, oldest first.
    pub fn key_history(&self, dept: &DepartmentId) -> &[KeySpan] {
        self.keys.get(dept).map_or(&[], Vec::as_slice)
    }

    /// The span whose key signs `dept`'s block at `height`.
    pub fn key_at(&self, dept: &DepartmentId, height: u64) -> Option<&KeySpan> {
        self.key_history(dept)
            .iter()
            .rev()
            .find(|s| s.from_height <= height && s.until_height.is_none_or(|u| height <= u))
    }

    pub fn retirement(&self, dept: &DepartmentId) -> Option<&Retirement> {
        self.retired.get(dept)
    }

    /// Departments that may sign governance records: every department not retired.
    pub fn voters(&self) -> impl Iterator<Item = &Department> {
        self.network
            .departments()
            .iter()
            .filter(|d| !self.retired.contains_key(&d.id))
    }

    /// Checks `block` against this state (network, head, signatures, quorum) and applies
    /// its record: the state at the block's height. Pure.
    pub fn apply(&self, block: &GovBlock) -> Result<Governed, GovError> {
        let h = &block.header;
        if h.genesis != self.network.hash() {
            return Err(GovError::OtherNetwork(h.genesis.short()));
        }
        if h.height != self.height + 1 || h.prev != self.head {
            return Err(GovError::NotOnHead {
                height: h.height,
                head_height: self.height,
                head: self.head.short(),
            });
        }
        self.check_quorum(block)?;
        let mut next = self.apply_record(&h.record)?;
        next.height = h.height;
        next.head = block.id();
        Ok(next)
    }

    /// Every signature verifies under a voter's current key, and those of departments
    /// other than the record's subject reach the quorum.
    pub fn check_quorum(&self, block: &GovBlock) -> Result<(), GovError> {
        let message = signing_message(&block.id());
        let subject = block.header.record.subject();
        let mut counted = 0usize;
        for (signer, sig) in &block.signatures {
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
        let quorum = self.network.document().governance.quorum;
        if counted < quorum as usize {
            return Err(GovError::NoQuorum {
                signatures: counted,
                quorum,
            });
        }
        Ok(())
    }

    /// The record's effect, checked: the state it makes, or why it cannot apply.
    pub fn apply_record(&self, record: &GovRecord) -> Result<Governed, GovError> {
        let mut doc = self.network.document().clone();
        let mut keys = self.keys.clone();
        let mut retired = self.retired.clone();
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
            GovRecord::RotateIssuerKey {
                department,
                key,
                from_height,
            } => {
                let i = dept_index(&doc, department)?;
                active(department)?;
                if key_used(&keys, key) {
                    return Err(GovError::KeyInUse);
                }
                end_span(&mut keys, department, *from_height, false)?;
                push_span(&mut keys, department, key, *from_height);
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
                end_span(&mut keys, department, from, true)?;
                push_span(&mut keys, department, replacement, from);
                doc.departments[i].issuer_key = *replacement;
            }
            GovRecord::ChangeQuorum { quorum } => doc.governance.quorum = *quorum,
        }
        let network = Network::evolved(doc, self.network.hash()).map_err(GovError::Invalid)?;
        let next = Governed {
            network,
            height: self.height,
            head: self.head,
            keys,
            retired,
        };
        next.quorum_rule()?;
        Ok(next)
    }

    /// `n/2 < q ≤ n`, n the departments able to vote.
    fn quorum_rule(&self) -> Result<(), GovError> {
        let voters = self.voters().count();
        let quorum = self.network.document().governance.quorum;
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

/// Ends `dept`'s current key span before `from` (which must be past its start), marking
/// it compromised if so.
fn end_span(
    keys: &mut BTreeMap<DepartmentId, Vec<KeySpan>>,
    dept: &DepartmentId,
    from: u64,
    compromised: bool,
) -> Result<(), GovError> {
    let spans = keys
        .get_mut(dept)
        .ok_or_else(|| GovError::UnknownDepartment(dept.clone()))?;
    let current = spans
        .last_mut()
        .ok_or_else(|| GovError::UnknownDepartment(dept.clone()))?;
    if from <= current.from_height {
        return Err(GovError::KeyChangeTooEarly {
            department: dept.clone(),
            from,
            after: current.from_height,
        });
    }
    current.until_height = Some(from - 1);
    current.compromised = compromised;
    Ok(())
}

fn push_span(
    keys: &mut BTreeMap<DepartmentId, Vec<KeySpan>>,
    dept: &DepartmentId,
    key: &PublicKey,
    from: u64,
) {
    keys.entry(dept.clone()).or_default().push(KeySpan {
        key: *key,
        from_height: from,
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
pub fn double_signers(state: &Governed, a: &GovBlock, b: &GovBlock) -> Vec<DepartmentId> {
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

#[cfg(test)]
mod tests;
