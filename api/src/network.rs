//! The public routes about the network: chain heads, equivocation evidence, peers and
//! health.

use huren_core::{DepartmentId, Hash32, RegionCode};
use serde::{Deserialize, Serialize};

/// One department's chain as this node holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainHead {
    pub department: DepartmentId,
    pub region: RegionCode,
    /// 0 before the department's first block.
    pub height: u64,
    /// `null` before the department's first block.
    pub hash: Option<Hash32>,
    /// RFC 3339 time of the head block; `null` before the first block.
    pub time: Option<String>,
}

/// `GET /v1/chains`: the genesis hash and the head of every department's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainsAnswer {
    pub genesis: Hash32,
    pub chains: Vec<ChainHead>,
}

/// One proven equivocation: two blocks a department signed at one height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidenceItem {
    pub department: DepartmentId,
    pub height: u64,
    pub first_hash: Hash32,
    pub second_hash: Hash32,
    /// The first block, canonical CBOR in hex: anyone can check its signature.
    pub first_block: String,
    /// The second block, canonical CBOR in hex.
    pub second_block: String,
}

/// `GET /v1/evidence`: one page of proven equivocations, in department and height order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidencePage {
    pub evidence: Vec<EvidenceItem>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `GET /v1/evidence`'s query: `department` to see one department's, `limit` items per
/// page (1 to `EVIDENCE_PAGE_MAX`, default `EVIDENCE_PAGE_DEFAULT`), `after` a previous
/// page's `next`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<DepartmentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

pub const EVIDENCE_PAGE_DEFAULT: usize = 16;
pub const EVIDENCE_PAGE_MAX: usize = 64;

/// A connected libp2p peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeerInfo {
    pub peer_id: String,
    /// The department whose node it is, or `observer:<name>`.
    pub role: String,
    pub address: String,
    pub connected_for_secs: u64,
}

/// `status` of `/healthz`: the node answers, so it is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    /// Up and following the network, but the network runs a protocol version newer than
    /// this node knows: it signs nothing until upgraded (`protocol`).
    ProtocolTooOld,
}

/// The protocol versions: the network's in force and the newest this node knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProtocolView {
    pub network: u32,
    pub supported: u32,
}

/// `GET /healthz`: liveness, which network and department, and a licence count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub status: HealthStatus,
    /// The network's name from genesis.
    pub network: String,
    /// `null` on an observer node.
    pub department: Option<DepartmentId>,
    /// The region whose recognition policy this node's verify answers apply.
    pub region: RegionCode,
    /// Licences on this node's ledger, every department's.
    pub licences: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtocolView>,
}
