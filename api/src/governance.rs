//! The governance routes: the network in force (`GET /v1/network`), the governance chain
//! as an export (`GET /v1/governance`), and submitting a co-signed record
//! (`POST /v1/governance`). The export is also the file `huren gov export` writes, that
//! `huren verify --offline --governance` and a node's `governance` setting read.

use huren_core::governance::{GovBlock, GovCodecError, GOV_BLOCK_BYTES_MAX};
use huren_core::{DepartmentId, Hash32, KeyId, Network, PublicKey};
use serde::{Deserialize, Serialize};

/// Governance blocks in one export at most: records come monthly; this is centuries.
pub const GOV_EXPORT_BLOCKS_MAX: usize = 4096;
/// Commitments an export vouches for at most (credentials of licences issued before a
/// key was declared compromised).
pub const GOV_EXPORT_VOUCHED_MAX: usize = 4_000_000;
/// The largest export text read: every block at its largest would not fit; real exports
/// are kilobytes plus 67 bytes per vouched commitment.
pub const GOV_EXPORT_BYTES_MAX: usize = 512 * 1024 * 1024;

/// The governance chain of a network, from genesis to its head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GovernanceExport {
    /// The founding genesis hash the records build on.
    pub genesis: Hash32,
    /// The governance height: how many records.
    pub height: u64,
    /// The id of the newest record (the genesis hash before any).
    pub head: Hash32,
    /// Every governance block from height 1, canonical CBOR in hex.
    pub blocks: Vec<String>,
    /// Commitments of credentials signed with a key since declared compromised whose
    /// licences the ledger holds as issued at or below that key's last good height: an
    /// offline verifier accepts those and no other credential of that key.
    #[serde(default)]
    pub vouched: Vec<Hash32>,
    /// Proven governance equivocations: a department signed two different records at
    /// one height (the node keeps the first it saw).
    #[serde(default)]
    pub equivocations: Vec<GovEquivocationView>,
}

/// Two governance blocks at one height, both signed by `signer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GovEquivocationView {
    pub height: u64,
    pub signer: String,
    /// The block held, canonical CBOR in hex.
    pub first_block: String,
    /// The conflicting block, canonical CBOR in hex.
    pub second_block: String,
}

/// Why an export could not be read. Nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("the export is {0} bytes, more than {GOV_EXPORT_BYTES_MAX}")]
    TooLarge(usize),
    #[error("not a governance export: {0}")]
    Json(String),
    #[error("{0} blocks, more than {GOV_EXPORT_BLOCKS_MAX}")]
    TooManyBlocks(usize),
    #[error("{0} vouched commitments, more than {GOV_EXPORT_VOUCHED_MAX}")]
    TooManyVouched(usize),
    #[error("{0} equivocations, more than {GOV_EXPORT_BLOCKS_MAX}")]
    TooManyEquivocations(usize),
    #[error("block {index}: not hex")]
    Hex { index: usize },
    #[error("block {index}: {error}")]
    Block { index: usize, error: GovCodecError },
    #[error("block {index} has height {height}; an export runs from 1 without gaps")]
    Height { index: usize, height: u64 },
}

impl GovernanceExport {
    /// Reads an export, bounded in bytes, blocks and commitments.
    pub fn parse(text: &str) -> Result<Self, ExportError> {
        if text.len() > GOV_EXPORT_BYTES_MAX {
            return Err(ExportError::TooLarge(text.len()));
        }
        let e: GovernanceExport =
            serde_json::from_str(text).map_err(|e| ExportError::Json(e.to_string()))?;
        if e.blocks.len() > GOV_EXPORT_BLOCKS_MAX {
            return Err(ExportError::TooManyBlocks(e.blocks.len()));
        }
        if e.vouched.len() > GOV_EXPORT_VOUCHED_MAX {
            return Err(ExportError::TooManyVouched(e.vouched.len()));
        }
        if e.equivocations.len() > GOV_EXPORT_BLOCKS_MAX {
            return Err(ExportError::TooManyEquivocations(e.equivocations.len()));
        }
        Ok(e)
    }

    /// The blocks, decoded, in order of height from 1. Their signatures and quorums are
    /// for the reader to check (`GovChain::admit`).
    pub fn decode_blocks(&self) -> Result<Vec<GovBlock>, ExportError> {
        self.blocks
            .iter()
            .enumerate()
            .map(|(index, hex)| {
                let block = decode_hex_block(hex).map_err(|e| match e {
                    None => ExportError::Hex { index },
                    Some(error) => ExportError::Block { index, error },
                })?;
                if block.height() != index as u64 + 1 {
                    return Err(ExportError::Height {
                        index,
                        height: block.height(),
                    });
                }
                Ok(block)
            })
            .collect()
    }
}

/// A governance block from hex: `None` if not hex (or too long to be a block).
pub fn decode_hex_block(hex: &str) -> Result<GovBlock, Option<GovCodecError>> {
    if hex.len() > 2 * GOV_BLOCK_BYTES_MAX {
        return Err(Some(GovCodecError::TooLarge {
            bytes: hex.len() / 2,
            max: GOV_BLOCK_BYTES_MAX,
        }));
    }
    let bytes = hex::decode(hex.trim()).map_err(|_| None)?;
    GovBlock::decode(&bytes).map_err(Some)
}

/// `POST /v1/governance`: a governance block with its cosignatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GovSubmit {
    /// The block, canonical CBOR in hex (the `block` of a proposal file).
    pub block: String,
}

/// The answer to a submitted governance block that the node applied (or held already).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GovSubmitAnswer {
    /// The governance height now in force at this node.
    pub height: u64,
    pub head: Hash32,
    /// False when the node held this block already.
    pub applied: bool,
    /// The record in words.
    pub record: String,
}

/// One key of a department and the blocks it signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyView {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub key: PublicKey,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kid: KeyId,
    /// It signs blocks naming this governance height or above…
    pub from_gov: u64,
    /// …from this department height…
    pub from_height: u64,
    /// …up to this one, when a compromise fenced the department's keys.
    pub until_height: Option<u64>,
    pub compromised: bool,
}

/// A department as the network in force has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DepartmentView {
    pub id: DepartmentId,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub region: huren_core::RegionCode,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub grants: Vec<huren_core::LicenceType>,
    pub node_peer_id: String,
    /// Every key it has had, oldest first.
    pub keys: Vec<KeyView>,
    /// Set once retired: its last block.
    pub retired_after: Option<u64>,
    /// Who takes over its licences, once retired.
    pub successor: Option<DepartmentId>,
}

/// `GET /v1/network`: the network in force at this node, genesis plus every governance
/// record held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkView {
    pub genesis: Hash32,
    pub gov_height: u64,
    pub gov_head: Hash32,
    pub quorum: u32,
    pub departments: Vec<DepartmentView>,
    /// The document in force (regions, licence types, observers, recognition rules), as
    /// genesis writes it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub document: serde_json::Value,
}

impl NetworkView {
    pub fn of(net: &Network) -> Self {
        let departments = net
            .departments()
            .iter()
            .map(|d| {
                let retired = net.retirement(&d.id);
                DepartmentView {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    region: d.region.clone(),
                    grants: d.grants.clone(),
                    node_peer_id: d.node_peer_id.clone(),
                    keys: net
                        .key_history(&d.id)
                        .iter()
                        .map(|s| KeyView {
                            key: s.key,
                            kid: s.key.key_id(),
                            from_gov: s.from_gov,
                            from_height: s.from_height,
                            until_height: s.until_height,
                            compromised: s.compromised,
                        })
                        .collect(),
                    retired_after: retired.map(|r| r.last_height),
                    successor: retired.and_then(|r| r.successor.clone()),
                }
            })
            .collect();
        Self {
            genesis: net.hash(),
            gov_height: net.gov_height(),
            gov_head: net.gov_head(),
            quorum: net.document().governance.quorum,
            departments,
            document: serde_json::to_value(net.document()).unwrap_or_default(),
        }
    }
}
