//! huren-api: the HTTP wire format of `huren-node`, defined once.
//!
//! Every request body, answer body and error body of the node's API is a type here. The
//! node builds its answers from these types, the `huren` client parses every answer into
//! them, and the tests use them too, so a changed field breaks the build of every side
//! instead of a user. With the `openapi` feature (the node's) each type also carries its
//! OpenAPI schema, so `/openapi.json` documents exactly what the client parses.
//!
//! API Boundary: this crate is the only definition of the wire format. It knows JSON
//! (serde) but no HTTP stack: no axum, hyper or reqwest here. Request types refuse unknown
//! fields (a client cannot set what the server owns); answer types accept unknown fields,
//! so an older client keeps working against a node that adds one.

pub mod checkpoints;
pub mod error;
pub mod governance;
pub mod licences;
pub mod network;
pub mod verify;

pub use checkpoints::{
    AsOf, CheckpointView, CheckpointsAnswer, ConflictView, CosignerView, DepartmentCheckpoints,
    Freshness, RecordProofView, StatusProofView, VerifyProof,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use governance::{
    DepartmentView, GovSubmit, GovSubmitAnswer, GovernanceExport, KeyView, NetworkView,
};
pub use licences::{
    AcceptTransferRequest, AmendRequest, AnnulRequest, AtAnswer, BatchAnswer, BatchItem,
    BatchRequest, BlockRef, HistoryAnswer, HistoryEntry, IssueAnswer, IssueRequest,
    LifecycleAnswer, Lineage, RecordRef, ReinstateRequest, ReissueRequest, RenewBatchRequest,
    RenewItem, RenewRequest, RevokeRequest, StatusAnswer, SuspendRequest, TransferRequest,
    TransferView,
};
pub use network::{
    ChainHead, ChainsAnswer, EvidenceItem, EvidencePage, EvidenceQuery, Health, HealthStatus,
    PeerInfo, ProtocolView, EVIDENCE_PAGE_DEFAULT, EVIDENCE_PAGE_MAX,
};
pub use verify::{LedgerView, LicenceView, Report, VerifyImage, VerifyRequest};
