//! Ledger types and their canonical encoding.
//!
//! Every record and block has exactly one byte encoding: deterministic CBOR (RFC 8949
//! §4.2.1) built only from arrays, unsigned/negative integers in shortest form, text and
//! byte strings of definite length. No maps appear, so key ordering never arises. The
//! decoder re-encodes what it parsed and refuses input that is not byte-identical, so a
//! block has one hash however it travelled. docs/credential-format.md spells this out.
//!
//! ```text
//! record   = [0, licence_id, valid_from, valid_until, commitment(32), officer ?, origin]  ; issue
//!          / [1, licence_id, suspend_reason, officer ?, until]                   ; suspend
//!          / [2, licence_id, officer]                                            ; reinstate
//!          / [3, licence_id, revoke_reason, officer]                             ; revoke
//!          / [4, licence_id, valid_from, valid_until, commitment(32), officer]   ; renew      (v2)
//!          / [5, licence_id, commitment(32), officer]                            ; reissue    (v2)
//!          / [6, licence_id, commitment(32), officer]                            ; amend      (v2)
//!          / [7, licence_id, to_department, officer]                             ; transfer out (v2)
//!          / [8, licence_id, height, index, annul_reason, officer]               ; annul      (v2)
//! header   = ["huren-block/" version, genesis(32), department, height, prev(32), time_ms, gov, [record…]]
//! block    = [header, signature(64)]
//! hash     = SHA-256(cbor(header))         signature = Ed25519(issuer key, "huren/block/v1\0\0" ‖ hash)
//! ```

use std::fmt;

use ciborium::value::Value;
use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, PublicKey, SecretKey, Signature};
use crate::ids::{DepartmentId, LicenceId};

/// Protocol upper bound on records in one block; nodes may configure a lower one.
pub const BLOCK_RECORDS_MAX: usize = 8192;
/// Protocol upper bound on an encoded block.
pub const BLOCK_BYTES_MAX: usize = 4 * 1024 * 1024;
pub const OFFICER_CHARS_MAX: usize = 64;
const BLOCK_TAG_PREFIX: &str = "huren-block/";

/// The newest protocol version this code reads and writes (docs/lifecycle.md): 1 has the
/// record kinds issue, suspend, reinstate and revoke; 2 adds renew, reissue, amend,
/// transfer out, annul, an issue's `origin` and a suspension's `until`. A block names its
/// version in its tag; the network's version in force is a governance parameter.
pub const PROTOCOL_VERSION: u32 = 2;

/// A department officer's staff code: who acted, without personal data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OfficerId(String);

impl OfficerId {
    pub fn parse(s: &str) -> Result<Self, CodecError> {
        let ok = (1..=OFFICER_CHARS_MAX).contains(&s.len())
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(CodecError::Field(
                "officer id: 1-64 characters of a-z, 0-9, '.', '_', '-'",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OfficerId {
    type Error = CodecError;
    fn try_from(s: String) -> Result<Self, CodecError> {
        Self::parse(&s)
    }
}

impl From<OfficerId> for String {
    fn from(o: OfficerId) -> String {
        o.0
    }
}

impl fmt::Display for OfficerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a licence was suspended (暂扣). A code, not free text: the ledger carries no
/// personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SuspendReason {
    /// Administrative penalty (行政处罚暂扣).
    Penalty,
    /// Under investigation (调查中).
    Investigation,
    /// Other, documented in the department's own files.
    Other,
}

/// Why a licence was revoked. Revocation is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// 撤销: the licence should not have been granted.
    Withdrawn,
    /// 注销: cancelled (holder's request, death, entity dissolved, expiry of need).
    Cancelled,
    /// 吊销: revoked as a penalty.
    Penalty,
}

/// Why a revocation or suspension was annulled: the decision was overturned, never
/// edited away (the annulled record stays on the chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AnnulReason {
    /// Overturned on administrative reconsideration (行政复议).
    Reconsideration,
    /// Overturned by a court (行政诉讼).
    Court,
    /// Withdrawn by the department itself as made in error (自行纠错).
    Error,
}

impl AnnulReason {
    fn code(self) -> u64 {
        match self {
            Self::Reconsideration => 0,
            Self::Court => 1,
            Self::Error => 2,
        }
    }
    fn from_code(c: u64) -> Option<Self> {
        [Self::Reconsideration, Self::Court, Self::Error]
            .into_iter()
            .find(|r| r.code() == c)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Reconsideration => "复议撤销",
            Self::Court => "判决撤销",
            Self::Error => "自行纠错",
        }
    }
}

impl SuspendReason {
    fn code(self) -> u64 {
        match self {
            Self::Penalty => 0,
            Self::Investigation => 1,
            Self::Other => 2,
        }
    }
    fn from_code(c: u64) -> Option<Self> {
        [Self::Penalty, Self::Investigation, Self::Other]
            .into_iter()
            .find(|r| r.code() == c)
    }
}

impl RevokeReason {
    fn code(self) -> u64 {
        match self {
            Self::Withdrawn => 0,
            Self::Cancelled => 1,
            Self::Penalty => 2,
        }
    }
    fn from_code(c: u64) -> Option<Self> {
        [Self::Withdrawn, Self::Cancelled, Self::Penalty]
            .into_iter()
            .find(|r| r.code() == c)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Withdrawn => "撤销",
            Self::Cancelled => "注销",
            Self::Penalty => "吊销",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub licence_id: LicenceId,
    /// Unix seconds, as in the credential's `nbf` and `exp`.
    pub valid_from: i64,
    pub valid_until: i64,
    /// SHA-256 of the credential's COSE bytes.
    pub commitment: Hash32,
    pub officer: OfficerId,
    /// For a transfer in (转入): the licence of another region's department this one
    /// continues, which that department's chain shows transferred out to this one.
    pub origin: Option<LicenceId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Issue(Issue),
    Suspend {
        licence_id: LicenceId,
        reason: SuspendReason,
        officer: OfficerId,
        /// Unix seconds at which the suspension ends by itself (暂扣 for six months);
        /// `None` until a reinstate record.
        until: Option<i64>,
    },
    Reinstate {
        licence_id: LicenceId,
        officer: OfficerId,
    },
    Revoke {
        licence_id: LicenceId,
        reason: RevokeReason,
        officer: OfficerId,
    },
    /// 延续: a new validity period and a new credential for the same licence.
    Renew {
        licence_id: LicenceId,
        valid_from: i64,
        valid_until: i64,
        commitment: Hash32,
        officer: OfficerId,
    },
    /// 补领 / 换证: a new credential (new salt, same facts) for a lost or damaged one.
    Reissue {
        licence_id: LicenceId,
        commitment: Hash32,
        officer: OfficerId,
    },
    /// 变更 / 更正: changed holder or licence fields, in a new credential.
    Amend {
        licence_id: LicenceId,
        commitment: Hash32,
        officer: OfficerId,
    },
    /// 转出: the licence moves to `to`, a department of another region, which issues it
    /// anew (an issue record naming this one as its origin). Final for this id.
    TransferOut {
        licence_id: LicenceId,
        to: DepartmentId,
        officer: OfficerId,
    },
    /// An overturned decision: the revocation or suspension at record `index` of block
    /// `height` (on the chain that recorded it) is void, and the licence is active again.
    Annul {
        licence_id: LicenceId,
        height: u64,
        index: u32,
        reason: AnnulReason,
        officer: OfficerId,
    },
}

/// A record's kind, without its fields: what the transition table (`core::lifecycle`)
/// and the protocol version speak of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Issue,
    /// An issue naming its origin: 转入.
    TransferIn,
    Suspend,
    Reinstate,
    Revoke,
    Renew,
    Reissue,
    Amend,
    TransferOut,
    Annul,
}

impl RecordKind {
    pub const ALL: [RecordKind; 10] = [
        RecordKind::Issue,
        RecordKind::TransferIn,
        RecordKind::Suspend,
        RecordKind::Reinstate,
        RecordKind::Revoke,
        RecordKind::Renew,
        RecordKind::Reissue,
        RecordKind::Amend,
        RecordKind::TransferOut,
        RecordKind::Annul,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Issue => "issue",
            RecordKind::TransferIn => "transfer_in",
            RecordKind::Suspend => "suspend",
            RecordKind::Reinstate => "reinstate",
            RecordKind::Revoke => "revoke",
            RecordKind::Renew => "renew",
            RecordKind::Reissue => "reissue",
            RecordKind::Amend => "amend",
            RecordKind::TransferOut => "transfer_out",
            RecordKind::Annul => "annul",
        }
    }
}

impl Record {
    /// The record's leaf in its department's Merkle tree (docs/checkpoints.md): the
    /// deterministic CBOR of `[department height, index in the block, record]`, so that a
    /// proof also says which block carried it.
    pub fn leaf(&self, height: u64, index: usize) -> Vec<u8> {
        to_bytes(&Value::Array(vec![
            Value::Integer(height.into()),
            Value::Integer((index as u64).into()),
            self.to_value(),
        ]))
    }

    /// Reads a leaf (`leaf`), bounded: its department height, index in the block and
    /// record. Only the canonical encoding is accepted: the leaf is hashed as given.
    pub fn from_leaf(bytes: &[u8]) -> Result<(u64, u64, Record), CodecError> {
        /// A record is a few hundred bytes; its leaf a few more.
        const LEAF_BYTES_MAX: usize = 4096;
        if bytes.len() > LEAF_BYTES_MAX {
            return Err(CodecError::TooLarge {
                bytes: bytes.len(),
                max: LEAF_BYTES_MAX,
            });
        }
        let v: Value =
            ciborium::de::from_reader(bytes).map_err(|e| CodecError::Cbor(e.to_string()))?;
        let mut items = array(v, "leaf")?.into_iter();
        let (Some(h), Some(i), Some(r), None) =
            (items.next(), items.next(), items.next(), items.next())
        else {
            return Err(CodecError::Shape("a leaf is [height, index, record]"));
        };
        let (height, index) = (uint(h, "leaf height")?, uint(i, "leaf index")?);
        let record = Record::from_value(r)?;
        let index_usize = usize::try_from(index).map_err(|_| CodecError::Field("leaf index"))?;
        if record.leaf(height, index_usize) != bytes {
            return Err(CodecError::Shape("the leaf is not in canonical form"));
        }
        Ok((height, index, record))
    }

    pub fn licence_id(&self) -> &LicenceId {
        match self {
            Record::Issue(i) => &i.licence_id,
            Record::Suspend { licence_id, .. }
            | Record::Reinstate { licence_id, .. }
            | Record::Revoke { licence_id, .. }
            | Record::Renew { licence_id, .. }
            | Record::Reissue { licence_id, .. }
            | Record::Amend { licence_id, .. }
            | Record::TransferOut { licence_id, .. }
            | Record::Annul { licence_id, .. } => licence_id,
        }
    }

    pub fn record_kind(&self) -> RecordKind {
        match self {
            Record::Issue(i) if i.origin.is_some() => RecordKind::TransferIn,
            Record::Issue(_) => RecordKind::Issue,
            Record::Suspend { .. } => RecordKind::Suspend,
            Record::Reinstate { .. } => RecordKind::Reinstate,
            Record::Revoke { .. } => RecordKind::Revoke,
            Record::Renew { .. } => RecordKind::Renew,
            Record::Reissue { .. } => RecordKind::Reissue,
            Record::Amend { .. } => RecordKind::Amend,
            Record::TransferOut { .. } => RecordKind::TransferOut,
            Record::Annul { .. } => RecordKind::Annul,
        }
    }

    pub fn kind(&self) -> &'static str {
        self.record_kind().as_str()
    }

    /// The credential a record brings into force, if it brings one: issue, renew,
    /// reissue, amend.
    pub fn commitment(&self) -> Option<Hash32> {
        match self {
            Record::Issue(i) => Some(i.commitment),
            Record::Renew { commitment, .. }
            | Record::Reissue { commitment, .. }
            | Record::Amend { commitment, .. } => Some(*commitment),
            _ => None,
        }
    }

    pub fn officer(&self) -> &OfficerId {
        match self {
            Record::Issue(i) => &i.officer,
            Record::Suspend { officer, .. }
            | Record::Reinstate { officer, .. }
            | Record::Revoke { officer, .. }
            | Record::Renew { officer, .. }
            | Record::Reissue { officer, .. }
            | Record::Amend { officer, .. }
            | Record::TransferOut { officer, .. }
            | Record::Annul { officer, .. } => officer,
        }
    }

    /// The lowest protocol version whose blocks may carry this record.
    pub fn min_version(&self) -> u32 {
        match self {
            Record::Issue(Issue { origin: None, .. })
            | Record::Suspend { until: None, .. }
            | Record::Reinstate { .. }
            | Record::Revoke { .. } => 1,
            _ => 2,
        }
    }

    fn to_value(&self) -> Value {
        let text = |s: String| Value::Text(s);
        let uint = |n: u64| Value::Integer(n.into());
        match self {
            // The optional last fields are left out when absent, so version 1 records
            // keep their bytes.
            Record::Issue(i) => Value::Array(
                [
                    uint(0),
                    text(i.licence_id.to_string()),
                    Value::Integer(i.valid_from.into()),
                    Value::Integer(i.valid_until.into()),
                    Value::Bytes(i.commitment.0.to_vec()),
                    text(i.officer.to_string()),
                ]
                .into_iter()
                .chain(i.origin.as_ref().map(|o| text(o.to_string())))
                .collect(),
            ),
            Record::Suspend {
                licence_id,
                reason,
                officer,
                until,
            } => Value::Array(
                [
                    uint(1),
                    text(licence_id.to_string()),
                    uint(reason.code()),
                    text(officer.to_string()),
                ]
                .into_iter()
                .chain(until.map(|u| Value::Integer(u.into())))
                .collect(),
            ),
            Record::Reinstate {
                licence_id,
                officer,
            } => Value::Array(vec![
                uint(2),
                text(licence_id.to_string()),
                text(officer.to_string()),
            ]),
            Record::Revoke {
                licence_id,
                reason,
                officer,
            } => Value::Array(vec![
                uint(3),
                text(licence_id.to_string()),
                uint(reason.code()),
                text(officer.to_string()),
            ]),
            Record::Renew {
                licence_id,
                valid_from,
                valid_until,
                commitment,
                officer,
            } => Value::Array(vec![
                uint(4),
                text(licence_id.to_string()),
                Value::Integer((*valid_from).into()),
                Value::Integer((*valid_until).into()),
                Value::Bytes(commitment.0.to_vec()),
                text(officer.to_string()),
            ]),
            Record::Reissue {
                licence_id,
                commitment,
                officer,
            } => Value::Array(vec![
                uint(5),
                text(licence_id.to_string()),
                Value::Bytes(commitment.0.to_vec()),
                text(officer.to_string()),
            ]),
            Record::Amend {
                licence_id,
                commitment,
                officer,
            } => Value::Array(vec![
                uint(6),
                text(licence_id.to_string()),
                Value::Bytes(commitment.0.to_vec()),
                text(officer.to_string()),
            ]),
            Record::TransferOut {
                licence_id,
                to,
                officer,
            } => Value::Array(vec![
                uint(7),
                text(licence_id.to_string()),
                text(to.to_string()),
                text(officer.to_string()),
            ]),
            Record::Annul {
                licence_id,
                height,
                index,
                reason,
                officer,
            } => Value::Array(vec![
                uint(8),
                text(licence_id.to_string()),
                uint(*height),
                uint(u64::from(*index)),
                uint(reason.code()),
                text(officer.to_string()),
            ]),
        }
    }

    fn from_value(v: Value) -> Result<Self, CodecError> {
        let mut items = array(v, "record")?.into_iter().peekable();
        let kind = uint(
            items
                .next()
                .ok_or(CodecError::Shape("record is too short"))?,
            "record kind",
        )?;
        // Issue and suspend may end with one optional field (origin, until).
        let optional_last = matches!(kind, 0 | 1);
        let mut rest: Vec<Value> = items.by_ref().take(6).collect();
        if items.next().is_some() {
            return Err(CodecError::Shape("record is too long"));
        }
        let expected = match kind {
            0 | 4 | 8 => 5,
            1 | 3 | 5 | 6 | 7 => 3,
            2 => 2,
            _ => return Err(CodecError::Field("record kind")),
        };
        let optional = match rest.len() {
            n if n == expected => None,
            n if n == expected + 1 && optional_last => rest.pop(),
            n if n < expected => return Err(CodecError::Shape("record is too short")),
            _ => return Err(CodecError::Shape("record is too long")),
        };
        let mut items = rest.into_iter();
        let mut next = || items.next().ok_or(CodecError::Shape("record is too short"));
        let licence_id = LicenceId::parse(&text(next()?, "licence id")?)
            .map_err(|_| CodecError::Field("licence id"))?;
        let record = match kind {
            0 => {
                let valid_from = int(next()?, "valid_from")?;
                let valid_until = int(next()?, "valid_until")?;
                let commitment = Hash32(bytes_n(next()?, "commitment")?);
                let officer = OfficerId::parse(&text(next()?, "officer")?)?;
                let origin = optional
                    .map(|o| {
                        LicenceId::parse(&text(o, "origin")?)
                            .map_err(|_| CodecError::Field("origin"))
                    })
                    .transpose()?;
                Record::Issue(Issue {
                    licence_id,
                    valid_from,
                    valid_until,
                    commitment,
                    officer,
                    origin,
                })
            }
            1 => Record::Suspend {
                licence_id,
                reason: SuspendReason::from_code(uint(next()?, "suspend reason")?)
                    .ok_or(CodecError::Field("suspend reason"))?,
                officer: OfficerId::parse(&text(next()?, "officer")?)?,
                until: optional.map(|u| int(u, "until")).transpose()?,
            },
            2 => Record::Reinstate {
                licence_id,
                officer: OfficerId::parse(&text(next()?, "officer")?)?,
            },
            3 => Record::Revoke {
                licence_id,
                reason: RevokeReason::from_code(uint(next()?, "revoke reason")?)
                    .ok_or(CodecError::Field("revoke reason"))?,
                officer: OfficerId::parse(&text(next()?, "officer")?)?,
            },
            4 => Record::Renew {
                licence_id,
                valid_from: int(next()?, "valid_from")?,
                valid_until: int(next()?, "valid_until")?,
                commitment: Hash32(bytes_n(next()?, "commitment")?),
                officer: OfficerId::parse(&text(next()?, "officer")?)?,
            },
            5 => Record::Reissue {
                licence_id,
                commitment: Hash32(bytes_n(next()?, "commitment")?),
                officer: OfficerId::parse(&text(next()?, "officer")?)?,
            },
            6 => Record::Amend {
                licence_id,
                commitment: Hash32(bytes_n(next()?, "commitment")?),
                officer: OfficerId::parse(&text(next()?, "officer")?)?,
            },
            7 => Record::TransferOut {
                licence_id,
                to: DepartmentId::parse(&text(next()?, "to")?)
                    .map_err(|_| CodecError::Field("to"))?,
                officer: OfficerId::parse(&text(next()?, "officer")?)?,
            },
            8 => Record::Annul {
                licence_id,
                height: uint(next()?, "annulled height")?,
                index: u32::try_from(uint(next()?, "annulled index")?)
                    .map_err(|_| CodecError::Field("annulled index"))?,
                reason: AnnulReason::from_code(uint(next()?, "annul reason")?)
                    .ok_or(CodecError::Field("annul reason"))?,
                officer: OfficerId::parse(&text(next()?, "officer")?)?,
            },
            _ => return Err(CodecError::Field("record kind")),
        };
        Ok(record)
    }
}

/// A block's signed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockHeader {
    /// The protocol version the block is written in (its tag, `huren-block/<version>`):
    /// the version in force at the governance height it names.
    pub version: u32,
    /// The network this block belongs to: a block cannot be replayed into another network.
    pub genesis: Hash32,
    pub department: DepartmentId,
    /// 1 for a department's first block.
    pub height: u64,
    /// The previous block's hash, or the genesis hash for height 1.
    pub prev: Hash32,
    /// Unix milliseconds when the block was cut.
    pub time_ms: u64,
    /// The governance height the block was cut under (`core::governance`): its records
    /// are judged by the network at that height, and it is never below its parent's.
    pub gov: u64,
    pub records: Vec<Record>,
}

impl BlockHeader {
    fn to_value(&self) -> Value {
        Value::Array(vec![
            Value::Text(format!("{BLOCK_TAG_PREFIX}{}", self.version)),
            Value::Bytes(self.genesis.0.to_vec()),
            Value::Text(self.department.to_string()),
            Value::Integer(self.height.into()),
            Value::Bytes(self.prev.0.to_vec()),
            Value::Integer(self.time_ms.into()),
            Value::Integer(self.gov.into()),
            Value::Array(self.records.iter().map(Record::to_value).collect()),
        ])
    }

    pub fn encode(&self) -> Vec<u8> {
        to_bytes(&self.to_value())
    }

    pub fn hash(&self) -> Hash32 {
        Hash32::digest(&self.encode())
    }

    /// Signs the header with the department's issuer key.
    pub fn sign(self, key: &SecretKey) -> Block {
        let hash = self.hash();
        let signature = key.sign(&signing_message(&hash));
        Block {
            header: self,
            signature,
            hash,
        }
    }
}

fn signing_message(hash: &Hash32) -> [u8; 48] {
    let mut m = [0u8; 48];
    m[..16].copy_from_slice(b"huren/block/v1\0\0");
    m[16..].copy_from_slice(&hash.0);
    m
}

/// A signed block. The hash is computed once, at construction or decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub header: BlockHeader,
    pub signature: Signature,
    hash: Hash32,
}

impl Block {
    pub fn hash(&self) -> Hash32 {
        self.hash
    }

    pub fn department(&self) -> &DepartmentId {
        &self.header.department
    }

    pub fn height(&self) -> u64 {
        self.header.height
    }

    pub fn signature_valid(&self, key: &PublicKey) -> bool {
        key.verify(&signing_message(&self.hash), &self.signature)
    }

    pub fn encode(&self) -> Vec<u8> {
        to_bytes(&Value::Array(vec![
            self.header.to_value(),
            Value::Bytes(self.signature.to_bytes().to_vec()),
        ]))
    }

    /// Decodes a block, refusing anything over `BLOCK_BYTES_MAX` or `BLOCK_RECORDS_MAX`
    /// and anything that is not in canonical form.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > BLOCK_BYTES_MAX {
            return Err(CodecError::TooLarge {
                bytes: bytes.len(),
                max: BLOCK_BYTES_MAX,
            });
        }
        let v: Value =
            ciborium::de::from_reader(bytes).map_err(|e| CodecError::Cbor(e.to_string()))?;
        let mut outer = array(v, "block")?.into_iter();
        let (Some(header), Some(sig), None) = (outer.next(), outer.next(), outer.next()) else {
            return Err(CodecError::Shape("block must be [header, signature]"));
        };
        let signature = Signature::from_bytes(&bytes_n::<64>(sig, "signature")?);
        let mut h = array(header, "header")?.into_iter();
        let mut next = || h.next().ok_or(CodecError::Shape("header is too short"));
        let version = parse_tag(&text(next()?, "tag")?)?;
        let genesis = Hash32(bytes_n(next()?, "genesis")?);
        let department = DepartmentId::parse(&text(next()?, "department")?)
            .map_err(|_| CodecError::Field("department"))?;
        let height = uint(next()?, "height")?;
        let prev = Hash32(bytes_n(next()?, "prev")?);
        let time_ms = uint(next()?, "time_ms")?;
        let gov = uint(next()?, "gov")?;
        let records = array(next()?, "records")?;
        if next().is_ok() {
            return Err(CodecError::Shape("header is too long"));
        }
        if records.len() > BLOCK_RECORDS_MAX {
            return Err(CodecError::TooManyRecords {
                records: records.len(),
                max: BLOCK_RECORDS_MAX,
            });
        }
        let records = records
            .into_iter()
            .map(Record::from_value)
            .collect::<Result<Vec<_>, _>>()?;
        let header = BlockHeader {
            version,
            genesis,
            department,
            height,
            prev,
            time_ms,
            gov,
            records,
        };
        let block = Block {
            hash: header.hash(),
            header,
            signature,
        };
        if block.encode() != bytes {
            return Err(CodecError::NotCanonical);
        }
        Ok(block)
    }
}

impl Block {
    /// The record at `index` of an encoded block, read without building the others (a
    /// block holds up to 8192): what a proof of one licence needs. The block is not
    /// checked as `decode` checks it: it comes from this node's own store, and the record
    /// proves itself by its leaf's inclusion.
    pub fn record_at(bytes: &[u8], index: usize) -> Result<Record, CodecError> {
        Self::record_at_from(bytes, &[], index)
    }

    /// Where every `RECORD_OFFSET_EVERY`th record of an encoded block starts (records 0,
    /// 64, 128…), as byte offsets: kept beside a block, they let `record_at_from` step
    /// over at most 63 records instead of thousands.
    pub fn record_offsets(bytes: &[u8]) -> Result<Vec<u32>, CodecError> {
        let (mut pos, records) = records_start(bytes)?;
        let mut out = Vec::with_capacity(records.div_ceil(RECORD_OFFSET_EVERY));
        for i in 0..records {
            if i % RECORD_OFFSET_EVERY == 0 {
                out.push(u32::try_from(pos).map_err(|_| CodecError::Shape("block too large"))?);
            }
            pos = skip_item(bytes, pos, 0)?;
        }
        Ok(out)
    }

    /// `record_at`, starting from the nearest offset in `offsets` (`record_offsets`; empty
    /// for none). Wrong offsets give an error or another record, never a panic: the caller
    /// checks the record it gets.
    pub fn record_at_from(
        bytes: &[u8],
        offsets: &[u32],
        index: usize,
    ) -> Result<Record, CodecError> {
        if bytes.len() > BLOCK_BYTES_MAX {
            return Err(CodecError::TooLarge {
                bytes: bytes.len(),
                max: BLOCK_BYTES_MAX,
            });
        }
        let (first, records) = records_start(bytes)?;
        if index >= records {
            return Err(CodecError::Shape("no record at that index"));
        }
        let (mut pos, skip) = match offsets.get(index / RECORD_OFFSET_EVERY) {
            Some(&o) => (o as usize, index % RECORD_OFFSET_EVERY),
            None => (first, index),
        };
        for _ in 0..skip {
            pos = skip_item(bytes, pos, 0)?;
        }
        let end = skip_item(bytes, pos, 0)?;
        let v: Value = ciborium::de::from_reader(&bytes[pos..end])
            .map_err(|e| CodecError::Cbor(e.to_string()))?;
        Record::from_value(v)
    }
}

impl Block {
    /// The time (unix milliseconds) of an encoded block, read without decoding its
    /// records: what a licence's history shows beside each record. Unchecked, as
    /// `record_at`: the bytes come from this node's own store.
    pub fn time_ms_of(bytes: &[u8]) -> Result<u64, CodecError> {
        /// tag, genesis, department, height, prev come before time_ms.
        const FIELDS_BEFORE_TIME: usize = 5;
        let (mut pos, _) = array_at(bytes, 0, 2)?;
        (pos, _) = array_at(bytes, pos, 8)?;
        for _ in 0..FIELDS_BEFORE_TIME {
            pos = skip_item(bytes, pos, 0)?;
        }
        let mut d = ciborium_ll::Decoder::from(
            bytes
                .get(pos..)
                .ok_or(CodecError::Shape("not the block's structure"))?,
        );
        match d.pull() {
            Ok(ciborium_ll::Header::Positive(t)) => Ok(t),
            _ => Err(CodecError::Shape("not the block's structure")),
        }
    }
}

/// How often `Block::record_offsets` keeps a record's offset.
pub const RECORD_OFFSET_EVERY: usize = 64;

/// Where an encoded block's first record starts, and how many records it has.
fn records_start(bytes: &[u8]) -> Result<(usize, usize), CodecError> {
    /// Header fields before the records: tag, genesis, department, height, prev,
    /// time_ms, gov (`BlockHeader::to_value`).
    const FIELDS_BEFORE_RECORDS: usize = 7;
    // [header, signature]; header = [fields…, records].
    let (mut pos, _) = array_at(bytes, 0, 2)?;
    (pos, _) = array_at(bytes, pos, FIELDS_BEFORE_RECORDS + 1)?;
    for _ in 0..FIELDS_BEFORE_RECORDS {
        pos = skip_item(bytes, pos, 0)?;
    }
    array_at(bytes, pos, usize::MAX)
}

/// The definite-length array whose header starts at `pos` (of `len` items, or any number
/// when `len` is `usize::MAX`): where its first item starts, and its length.
fn array_at(bytes: &[u8], pos: usize, len: usize) -> Result<(usize, usize), CodecError> {
    let bad = CodecError::Shape("not the block's structure");
    let mut d = ciborium_ll::Decoder::from(bytes.get(pos..).ok_or(bad.clone())?);
    match d.pull() {
        Ok(ciborium_ll::Header::Array(Some(n))) if len == usize::MAX || n == len => {
            Ok((pos + d.offset(), n))
        }
        _ => Err(bad),
    }
}

/// Where the item that starts at `pos` ends, found by reading headers only (ciborium's
/// decoder): strings are stepped over, arrays and maps walked. Definite lengths only, as
/// canonical CBOR has them; nesting at most 16 deep.
fn skip_item(bytes: &[u8], pos: usize, depth: u8) -> Result<usize, CodecError> {
    use ciborium_ll::Header;
    let bad = || CodecError::Shape("an item that does not end inside the block");
    if depth > 16 {
        return Err(bad());
    }
    let mut d = ciborium_ll::Decoder::from(bytes.get(pos..).ok_or_else(bad)?);
    let header = d.pull().map_err(|_| bad())?;
    let mut pos = pos + d.offset();
    match header {
        Header::Positive(_) | Header::Negative(_) | Header::Float(_) | Header::Simple(_) => Ok(pos),
        Header::Tag(_) => skip_item(bytes, pos, depth + 1),
        Header::Bytes(Some(n)) | Header::Text(Some(n)) => pos
            .checked_add(n)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(bad),
        Header::Array(Some(n)) => {
            for _ in 0..n {
                pos = skip_item(bytes, pos, depth + 1)?;
            }
            Ok(pos)
        }
        Header::Map(Some(n)) => {
            for _ in 0..n.saturating_mul(2) {
                pos = skip_item(bytes, pos, depth + 1)?;
            }
            Ok(pos)
        }
        _ => Err(bad()),
    }
}

/// The version a block tag names: `huren-block/<n>`, `n` from 1 to `PROTOCOL_VERSION` in
/// shortest decimal form. A newer version is `UnsupportedVersion`, which a node treats as
/// "too new for me", never as a peer's misbehaviour.
fn parse_tag(tag: &str) -> Result<u32, CodecError> {
    let bad = CodecError::Field("block tag (expected huren-block/<version>)");
    let digits = tag.strip_prefix(BLOCK_TAG_PREFIX).ok_or(bad.clone())?;
    if digits.is_empty()
        || digits.len() > 9
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad);
    }
    let version: u32 = digits.parse().map_err(|_| bad)?;
    if version > PROTOCOL_VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    Ok(version)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("block of protocol version {0}, newer than this node's {PROTOCOL_VERSION}: upgrade the node")]
    UnsupportedVersion(u32),
    #[error("not valid CBOR: {0}")]
    Cbor(String),
    #[error("{bytes} bytes, at most {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("{records} records in one block, at most {max}")]
    TooManyRecords { records: usize, max: usize },
    #[error("wrong structure: {0}")]
    Shape(&'static str),
    #[error("bad field: {0}")]
    Field(&'static str),
    #[error("not in canonical form (re-encoding gives different bytes)")]
    NotCanonical,
}

fn to_bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).expect("writing CBOR to a Vec cannot fail");
    out
}

fn array(v: Value, what: &'static str) -> Result<Vec<Value>, CodecError> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(CodecError::Field(what)),
    }
}

fn text(v: Value, what: &'static str) -> Result<String, CodecError> {
    match v {
        Value::Text(s) => Ok(s),
        _ => Err(CodecError::Field(what)),
    }
}

fn uint(v: Value, what: &'static str) -> Result<u64, CodecError> {
    match v {
        Value::Integer(i) => u64::try_from(i).map_err(|_| CodecError::Field(what)),
        _ => Err(CodecError::Field(what)),
    }
}

fn int(v: Value, what: &'static str) -> Result<i64, CodecError> {
    match v {
        Value::Integer(i) => i64::try_from(i).map_err(|_| CodecError::Field(what)),
        _ => Err(CodecError::Field(what)),
    }
}

fn bytes_n<const N: usize>(v: Value, what: &'static str) -> Result<[u8; N], CodecError> {
    match v {
        Value::Bytes(b) => b.try_into().map_err(|_| CodecError::Field(what)),
        _ => Err(CodecError::Field(what)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ids::LicenceType;
    use proptest::prelude::*;

    pub(crate) fn lid(dept: &str, t: &str, n: u64) -> LicenceId {
        LicenceId::new(
            DepartmentId::parse(dept).expect("dept"),
            LicenceType::parse(t).expect("type"),
            n,
        )
    }

    pub(crate) fn officer() -> OfficerId {
        OfficerId::parse("officer-7").expect("officer")
    }

    pub(crate) fn issue(dept: &str, t: &str, n: u64) -> Record {
        Record::Issue(Issue {
            licence_id: lid(dept, t, n),
            valid_from: 1_750_000_000,
            valid_until: 1_850_000_000,
            commitment: Hash32::digest(&n.to_be_bytes()),
            officer: officer(),
            origin: None,
        })
    }

    fn sample_block() -> Block {
        BlockHeader {
            version: 1,
            genesis: Hash32::digest(b"g"),
            department: DepartmentId::parse("gd.transport").expect("dept"),
            height: 1,
            prev: Hash32::digest(b"g"),
            time_ms: 1_750_000_000_000,
            gov: 0,
            records: vec![
                issue("gd.transport", "mvdl", 1),
                Record::Suspend {
                    licence_id: lid("gd.transport", "mvdl", 1),
                    reason: SuspendReason::Investigation,
                    officer: officer(),
                    until: None,
                },
                Record::Reinstate {
                    licence_id: lid("gd.transport", "mvdl", 1),
                    officer: officer(),
                },
                Record::Revoke {
                    licence_id: lid("gd.transport", "mvdl", 1),
                    reason: RevokeReason::Penalty,
                    officer: officer(),
                },
            ],
        }
        .sign(&SecretKey::from_seed(&[1; 32]))
    }

    #[test]
    fn block_round_trip_and_signature() {
        let b = sample_block();
        let bytes = b.encode();
        let back = Block::decode(&bytes).expect("decode");
        assert_eq!(back, b);
        assert_eq!(back.hash(), b.hash());
        assert!(back.signature_valid(&SecretKey::from_seed(&[1; 32]).public()));
        assert!(!back.signature_valid(&SecretKey::from_seed(&[2; 32]).public()));
    }

    #[test]
    fn one_record_reads_out_of_an_encoded_block_as_decoding_it_all_would() {
        let b = sample_block();
        let bytes = b.encode();
        for (i, r) in b.header.records.iter().enumerate() {
            assert_eq!(Block::record_at(&bytes, i).as_ref(), Ok(r), "record {i}");
            let (height, index, leaf) = Record::from_leaf(&r.leaf(1, i)).expect("leaf");
            assert_eq!((height, index, &leaf), (1, i as u64, r));
        }
        assert!(Block::record_at(&bytes, 4).is_err(), "past the last record");
        assert_eq!(Block::time_ms_of(&bytes), Ok(b.header.time_ms));
        assert!(Block::time_ms_of(&bytes[..20]).is_err());
        assert!(Block::record_at(&bytes[..bytes.len() / 2], 0).is_err());
        assert!(Block::record_at(&[0xff; 10], 0).is_err());

        // A block of 200 records, read from its kept offsets (every 64th record's).
        let mut big = b.header.clone();
        big.records = (1..=200)
            .map(|n| issue("gd.transport", "mvdl", n))
            .collect();
        let big = big.sign(&SecretKey::from_seed(&[1; 32]));
        let bytes = big.encode();
        let offsets = Block::record_offsets(&bytes).expect("offsets");
        assert_eq!(offsets.len(), 4);
        for (i, r) in big.header.records.iter().enumerate() {
            assert_eq!(
                Block::record_at_from(&bytes, &offsets, i).as_ref(),
                Ok(r),
                "record {i}"
            );
        }
        // Wrong offsets give an error or another record, never a panic.
        for bad in [[0u32, 1, 2, 3], [u32::MAX; 4]] {
            for i in [0, 63, 64, 199] {
                let _ = Block::record_at_from(&bytes, &bad, i);
            }
        }
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        let b = sample_block();
        let bytes = b.encode();
        // Append a trailing byte.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Block::decode(&longer).is_err());
        // Re-encode the height (1) in a non-shortest form: 0x18 0x01 instead of 0x01.
        let v: Value = ciborium::de::from_reader(&bytes[..]).expect("cbor");
        let Value::Array(outer) = v else { panic!() };
        let Value::Array(header) = &outer[0] else {
            panic!()
        };
        let mut prefix = Vec::new();
        // header array head, tag, genesis, department
        prefix.push(0x88);
        for item in &header[..3] {
            ciborium::ser::into_writer(item, &mut prefix).expect("ser");
        }
        let mut non_canonical = vec![0x82];
        non_canonical.extend_from_slice(&prefix);
        non_canonical.extend_from_slice(&[0x18, 0x01]);
        for item in &header[4..] {
            ciborium::ser::into_writer(item, &mut non_canonical).expect("ser");
        }
        ciborium::ser::into_writer(&outer[1], &mut non_canonical).expect("ser");
        assert_eq!(Block::decode(&non_canonical), Err(CodecError::NotCanonical));
    }

    #[test]
    fn block_tags_name_the_protocol_version_and_newer_ones_are_unsupported_not_malformed() {
        assert_eq!(parse_tag("huren-block/1"), Ok(1));
        assert_eq!(parse_tag("huren-block/2"), Ok(2));
        assert_eq!(
            parse_tag("huren-block/3"),
            Err(CodecError::UnsupportedVersion(3))
        );
        for bad in [
            "huren-block/",
            "huren-block/01",
            "huren-block/0x2",
            "huren-block/-1",
            "huren-blok/1",
            "huren-block/99999999999",
        ] {
            assert!(matches!(parse_tag(bad), Err(CodecError::Field(_))), "{bad}");
        }
        // A version 1 block keeps its bytes: the tag of old blocks is what it was.
        let b = sample_block();
        assert!(b.encode().windows(13).any(|w| w == b"huren-block/1"));
    }

    #[test]
    fn optional_fields_are_left_out_when_absent_and_read_back_when_present() {
        let plain = issue("gd.transport", "mvdl", 1);
        let Record::Issue(mut i) = plain.clone() else {
            unreachable!()
        };
        i.origin = Some(lid("sh.transport", "mvdl", 9));
        let with_origin = Record::Issue(i);
        assert_eq!(plain.min_version(), 1);
        assert_eq!(with_origin.min_version(), 2);
        let leaf = with_origin.leaf(3, 0);
        assert!(leaf.len() > plain.leaf(3, 0).len());
        assert_eq!(Record::from_leaf(&leaf).expect("leaf").2, with_origin);
        // Two optional fields, or one on a kind without any, are refused.
        let too_long = Value::Array(vec![
            Value::Integer(2.into()),
            Value::Text("gd.transport:mvdl:00000001".into()),
            Value::Text("officer-7".into()),
            Value::Integer(5.into()),
        ]);
        assert!(Record::from_value(too_long).is_err());
        let unknown_kind = Value::Array(vec![
            Value::Integer(9.into()),
            Value::Text("gd.transport:mvdl:00000001".into()),
            Value::Text("officer-7".into()),
        ]);
        assert_eq!(
            Record::from_value(unknown_kind),
            Err(CodecError::Field("record kind"))
        );
    }

    #[test]
    fn limits_are_enforced() {
        assert!(matches!(
            Block::decode(&vec![0u8; BLOCK_BYTES_MAX + 1]),
            Err(CodecError::TooLarge { .. })
        ));
        let mut b = sample_block();
        b.header.records = (0..BLOCK_RECORDS_MAX as u64 + 1)
            .map(|n| issue("gd.transport", "mvdl", n))
            .collect();
        let big = b.header.sign(&SecretKey::from_seed(&[1; 32]));
        assert!(matches!(
            Block::decode(&big.encode()),
            Err(CodecError::TooManyRecords { .. })
        ));
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        let id = (0u64..1000).prop_map(|n| lid("gd.transport", "mvdl", n));
        let origin =
            proptest::option::of((0u64..1000).prop_map(|n| lid("sh.transport", "mvdl", n)));
        prop_oneof![
            (
                id.clone(),
                any::<i64>(),
                any::<i64>(),
                any::<[u8; 32]>(),
                origin
            )
                .prop_map(|(licence_id, a, b, c, origin)| Record::Issue(Issue {
                    licence_id,
                    valid_from: a,
                    valid_until: b,
                    commitment: Hash32(c),
                    officer: officer(),
                    origin,
                })),
            (id.clone(), 0u64..3, proptest::option::of(any::<i64>())).prop_map(
                |(licence_id, r, until)| Record::Suspend {
                    licence_id,
                    reason: SuspendReason::from_code(r).expect("code"),
                    officer: officer(),
                    until,
                }
            ),
            (id.clone(), any::<i64>(), any::<i64>(), any::<[u8; 32]>()).prop_map(
                |(licence_id, valid_from, valid_until, c)| Record::Renew {
                    licence_id,
                    valid_from,
                    valid_until,
                    commitment: Hash32(c),
                    officer: officer(),
                }
            ),
            (id.clone(), any::<[u8; 32]>(), any::<bool>()).prop_map(|(licence_id, c, amend)| {
                if amend {
                    Record::Amend {
                        licence_id,
                        commitment: Hash32(c),
                        officer: officer(),
                    }
                } else {
                    Record::Reissue {
                        licence_id,
                        commitment: Hash32(c),
                        officer: officer(),
                    }
                }
            }),
            id.clone().prop_map(|licence_id| Record::TransferOut {
                licence_id,
                to: DepartmentId::parse("sh.transport").expect("dept"),
                officer: officer(),
            }),
            (id.clone(), any::<u64>(), any::<u32>(), 0u64..3).prop_map(
                |(licence_id, height, index, r)| Record::Annul {
                    licence_id,
                    height,
                    index,
                    reason: AnnulReason::from_code(r).expect("code"),
                    officer: officer(),
                }
            ),
            id.clone().prop_map(|licence_id| Record::Reinstate {
                licence_id,
                officer: officer()
            }),
            (id, 0u64..3).prop_map(|(licence_id, r)| Record::Revoke {
                licence_id,
                reason: RevokeReason::from_code(r).expect("code"),
                officer: officer(),
            }),
        ]
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(records in proptest::collection::vec(arb_record(), 0..20),
                                    height in any::<u64>(), time_ms in any::<u64>()) {
            let block = BlockHeader {
                version: PROTOCOL_VERSION,
                genesis: Hash32::digest(b"g"),
                department: DepartmentId::parse("gd.transport").expect("dept"),
                height,
                prev: Hash32::digest(b"p"),
                time_ms,
                gov: 0,
                records,
            }.sign(&SecretKey::from_seed(&[4; 32]));
            let back = Block::decode(&block.encode()).expect("decode");
            prop_assert_eq!(back, block);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Block::decode(&bytes);
        }

        #[test]
        fn mutated_blocks_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = sample_block().encode();
            let i = pos.index(bytes.len());
            bytes[i] = byte;
            let _ = Block::decode(&bytes);
        }
    }
}
