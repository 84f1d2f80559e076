//! huren-core: the Huren protocol as pure functions.
//!
//! Ids, keys and signatures, the credential codec (COSE/CWT and `HZ1:` QR text), ledger
//! types with their canonical encoding, genesis types, block validation, equivocation evidence
//! and credential verification.
//!
//! Architecture Invariant: this crate does no I/O. No files, sockets, clocks, threads or
//! async runtimes: callers pass the time in. Everything here can be tested and fuzzed
//! without a network or a disk.
//!
//! Architecture Invariant: no presentation either. QR images, the printable card and fonts
//! are `huren-render`; no image, QR, SVG or font crate is a dependency of this one.

pub mod bundle;
pub mod checkpoint;
pub mod credential;
pub mod crypto;
pub mod evidence;
pub mod genesis;
pub mod governance;
pub mod ids;
pub mod issuance;
pub mod ledger;
pub mod lifecycle;
pub mod proof;
#[cfg(feature = "openapi")]
mod schema;
pub mod tlog;
pub mod validate;
pub mod verify;

pub use credential::{
    Credential, DecodeError, SignatureInput, SignedCredential, UnverifiedCredential,
    VerifiedCredential,
};
pub use crypto::{Hash32, KeyId, PublicKey, SecretKey, Signature};
pub use evidence::{Equivocation, EvidenceError};
pub use genesis::{GenesisDocument, Network};
pub use ids::{DepartmentId, LicenceId, LicenceType, RegionCode};
pub use ledger::{Block, BlockHeader, Issue, OfficerId, Record, RevokeReason, SuspendReason};
pub use validate::{
    BlockError, ChainView, Disposition, GovView, Head, LicenceState, LicenceStatus, ValidatedBlock,
};
pub use verify::{Decision, GenuineCredential, LedgerFacts, Verdict, VerifyContext};
