//! Verification of a presented credential: the verdict and why.
//!
//! Two steps, so that a caller can check many signatures at once between them (the node's
//! batch checker): `prepare` decides everything it can from genesis and the ledger facts
//! and either finishes (`Step::Done`) or asks for one signature check
//! (`Step::Signature`); `PendingSignature::finish` takes the answer and decides the rest.
//! `decide` runs both steps with a strict check here, for callers with nothing to batch
//! (the offline CLI, the card). The verdict is always one of three families that are
//! never conflated: valid, invalid with a reason, undetermined with a reason (DESIGN.md,
//! "Verification"). The report a clerk reads is built from a `Decision` by `huren-api`.
//!
//! A decision also says what verification proved about the credential itself, whatever
//! the verdict: `Decision::credential` when its origin is proven, and
//! `Decision::into_genuine` when, besides, its issuer may issue it. A `GenuineCredential`
//! is what the printable card is made from, so that the card never checks trust itself.
//!
//! This module must never read a clock or the network: the time and the ledger facts are
//! passed in.

use serde::{Deserialize, Serialize};

use crate::credential::{SignatureInput, UnverifiedCredential, VerifiedCredential};
use crate::crypto::Hash32;
use crate::genesis::{Department, LicenceTypeDef, Network, Recognition, Region};
use crate::ids::{DepartmentId, RegionCode};
use crate::validate::{
    Head, LicencePhase, LicenceState, LicenceStatus, Transfer, FUTURE_SKEW_MS_MAX,
};
use crate::Credential;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InvalidReason {
    Revoked,
    Suspended,
    Expired,
    NotYetValid,
    UnknownIssuer,
    /// Signed by a genesis key, but `iss` names another department than the key's owner.
    IssuerMismatch,
    BadSignature,
    TypeNotGranted,
    /// The credential's region is not its issuer's region.
    RegionMismatch,
    /// The credential's validity period breaks its licence type's rule in genesis
    /// (longer than the type's maximum, or empty).
    BadValidity,
    CommitmentMismatch,
    NotRecognised,
    NotOnLedger,
    /// Signed with a key declared compromised (`governance`), and not vouched for by the
    /// ledger as issued at or below the key's last good height.
    KeyCompromised,
    /// Signed with a key of the issuer, but not the key that signed the block that
    /// issued the licence (a rotated-out key used after its rotation, say).
    KeyNotInForce,
    /// An earlier credential of the licence: renewed, reissued or amended since. The
    /// report names where the licence stands now.
    Superseded,
    /// The licence was transferred out (转出) to another region's department; the report
    /// names its new id there once that department has recorded it.
    Transferred,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UndeterminedReason {
    /// No block of the issuer's chain has reached this node yet.
    ChainUnknown,
    /// This node has not heard from the network recently enough to vouch for status.
    Stale,
    /// The input could not be decoded.
    Undecodable,
    /// The licence is not on the issuer's chain yet, and the chain is not yet past its iat.
    NotYetSeen,
    /// The issuer signed two different blocks at one height; its chain past that height
    /// cannot be trusted until the founders resolve it.
    Equivocation,
    /// Offline with a bundle whose data of the issuer is past the hard age limit
    /// (genesis `bundle_hard_max_secs`): refresh the bundle.
    BundleExpired,
}

impl InvalidReason {
    pub const ALL: [InvalidReason; 17] = [
        Self::Revoked,
        Self::Suspended,
        Self::Expired,
        Self::NotYetValid,
        Self::UnknownIssuer,
        Self::IssuerMismatch,
        Self::BadSignature,
        Self::TypeNotGranted,
        Self::RegionMismatch,
        Self::BadValidity,
        Self::CommitmentMismatch,
        Self::NotRecognised,
        Self::NotOnLedger,
        Self::KeyCompromised,
        Self::KeyNotInForce,
        Self::Superseded,
        Self::Transferred,
    ];

    /// The reason code as serialised (`revoked`, `not_on_ledger`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Suspended => "suspended",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::UnknownIssuer => "unknown_issuer",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::BadSignature => "bad_signature",
            Self::TypeNotGranted => "type_not_granted",
            Self::RegionMismatch => "region_mismatch",
            Self::BadValidity => "bad_validity",
            Self::CommitmentMismatch => "commitment_mismatch",
            Self::NotRecognised => "not_recognised",
            Self::NotOnLedger => "not_on_ledger",
            Self::KeyCompromised => "key_compromised",
            Self::KeyNotInForce => "key_not_in_force",
            Self::Superseded => "superseded",
            Self::Transferred => "transferred",
        }
    }
}

impl UndeterminedReason {
    pub const ALL: [UndeterminedReason; 6] = [
        Self::ChainUnknown,
        Self::Stale,
        Self::Undecodable,
        Self::NotYetSeen,
        Self::Equivocation,
        Self::BundleExpired,
    ];

    /// The reason code as serialised (`stale`, `not_yet_seen`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChainUnknown => "chain_unknown",
            Self::Stale => "stale",
            Self::Undecodable => "undecodable",
            Self::NotYetSeen => "not_yet_seen",
            Self::Equivocation => "equivocation",
            Self::BundleExpired => "bundle_expired",
        }
    }
}

/// The verdict's family, as the report's `verdict` field names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Valid,
    Invalid,
    Undetermined,
}

/// The report's `reason` field: an invalid or an undetermined reason. The two sets of
/// codes are disjoint, so the JSON string alone says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Reason {
    Invalid(InvalidReason),
    Undetermined(UndeterminedReason),
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Invalid(r) => r.as_str(),
            Reason::Undetermined(r) => r.as_str(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid(InvalidReason),
    Undetermined(UndeterminedReason),
}

impl Verdict {
    pub fn family(&self) -> Family {
        match self {
            Verdict::Valid => Family::Valid,
            Verdict::Invalid(_) => Family::Invalid,
            Verdict::Undetermined(_) => Family::Undetermined,
        }
    }

    pub fn reason(&self) -> Option<Reason> {
        match *self {
            Verdict::Valid => None,
            Verdict::Invalid(r) => Some(Reason::Invalid(r)),
            Verdict::Undetermined(r) => Some(Reason::Undetermined(r)),
        }
    }

    /// The verdict a report's two fields name, or `None` when they contradict each other
    /// (`valid` with a reason, `invalid` with an undetermined reason…).
    pub fn from_parts(family: Family, reason: Option<Reason>) -> Option<Verdict> {
        match (family, reason) {
            (Family::Valid, None) => Some(Verdict::Valid),
            (Family::Invalid, Some(Reason::Invalid(r))) => Some(Verdict::Invalid(r)),
            (Family::Undetermined, Some(Reason::Undetermined(r))) => Some(Verdict::Undetermined(r)),
            _ => None,
        }
    }

    /// The reason code, or `valid`: one label per verdict, for metrics.
    pub fn label(&self) -> &'static str {
        self.reason().map_or("valid", Reason::as_str)
    }

    /// Exit status for command-line tools: 0 valid, 1 invalid, 2 undetermined.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid(_) => 1,
            Verdict::Undetermined(_) => 2,
        }
    }
}

/// How far a verifier's clock may be behind a credential's `nbf` and still take it as
/// started: clocks of windows and nodes drift; the same bound as the block time skew.
pub const NBF_SKEW_SECS: i64 = (FUTURE_SKEW_MS_MAX / 1000) as i64;

/// Why a node cannot vouch that its copy of an issuer's chain is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// It has not been in touch with any peer recently.
    NoPeers,
    /// No checkpoint of the issuer carrying its witness quorum has reached it for this
    /// long (seconds): it may be cut off from the issuer, which may have changed the
    /// licence since.
    Checkpoint { age_secs: u64 },
}

/// What the ledger knows of a licence beyond its state: whether the presented credential
/// is an earlier one of it, and where a transferred licence went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineage {
    /// The presented credential was carried by an earlier record of this licence: the
    /// kind of record that brought the credential in force now (renew, reissue, amend).
    pub superseded_by: Option<crate::ledger::RecordKind>,
    /// The licence was transferred out: to which department, and its new id there once
    /// recorded.
    pub transfer: Option<crate::validate::Transfer>,
}

/// What the verifying node's ledger says, or `Offline` when there is no ledger.
#[derive(Debug, Clone)]
pub enum LedgerFacts {
    Offline,
    Online {
        /// The licence's state on its issuer's chain, if it is there.
        licence: Option<LicenceState>,
        /// Head of the issuer's chain at this node.
        issuer_head: Option<Head>,
        /// Height of the first equivocation proven against the issuer, if any.
        equivocation_height: Option<u64>,
        /// The node cannot vouch that it is up to date with the issuer: why, if so.
        stale: Option<Stale>,
        /// A block signed by the issuer proves its chain reached this height, above
        /// `issuer_head`: the blocks between have not reached this node yet (a peer holds
        /// them back, or they are on their way), and one of them may change the licence.
        behind: Option<u64>,
        lineage: Lineage,
    },
    /// Offline, with a bundle (`core::bundle`) verified against this network: the
    /// licence's status in the issuer's status set at the bundle's checkpoint.
    Bundle {
        /// `None`: the bundle holds no checkpoint of the issuer, so it cannot say.
        status: Option<LicenceStatus>,
        /// The bundle's checkpoint of the issuer is past the hard age limit.
        expired: bool,
        /// When the issuer signed that checkpoint, unix seconds.
        as_of: i64,
        /// The bundle's set holds the presented credential as superseded (renewed,
        /// reissued or amended since): an old or lost card.
        superseded: bool,
    },
}

impl LedgerFacts {
    /// The licence's ledger state, when online and on the ledger.
    pub fn licence(&self) -> Option<LicenceState> {
        match self {
            LedgerFacts::Online { licence, .. } => *licence,
            LedgerFacts::Offline | LedgerFacts::Bundle { .. } => None,
        }
    }
}

/// Where and when verification happens.
#[derive(Debug, Clone)]
pub struct VerifyContext {
    /// Unix seconds.
    pub now: i64,
    /// The verifying region, for the recognition policy; `None` skips that check.
    pub region: Option<RegionCode>,
}

/// Everything a report is built from: the verdict, a detail sentence, and what may be
/// shown. The credential is there only when its origin is proven (a verdict about an
/// unproven credential must not display its claims as if they were true); it is private
/// so that only verification can say a credential is proven.
#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: Verdict,
    /// A sentence saying why, empty for a plain valid.
    pub detail: String,
    proven: Option<Proven>,
    /// The licence's state on this node's ledger (online only).
    pub ledger: Option<LicenceState>,
    /// Decided without a ledger: signature, validity and recognition only.
    pub offline: bool,
    /// Unix seconds at which it was decided.
    pub checked_at: i64,
    pub verifier_region: Option<RegionCode>,
}

/// A credential whose origin verification proved: the genesis key of the department it
/// names signed it, or that department's block, validated here, commits to its exact bytes.
#[derive(Debug, Clone)]
struct Proven {
    verified: VerifiedCredential,
    /// The network whose keys proved it.
    genesis: Hash32,
}

impl Decision {
    /// The credential, when its origin is proven; `None` for input that did not decode,
    /// an unknown key, an issuer mismatch or a bad signature.
    pub fn credential(&self) -> Option<&Credential> {
        self.proven.as_ref().map(|p| p.verified.credential())
    }

    /// The credential as genuine under `net`: its origin is proven and its issuer may
    /// issue its type in its region. `None` otherwise, and when `net` is not the network
    /// this decision was made under. Says nothing about whether the licence is valid
    /// today: that is the verdict.
    pub fn into_genuine(self, net: &Network) -> Option<GenuineCredential<'_>> {
        let Proven { verified, genesis } = self.proven?;
        if genesis != net.hash() {
            return None;
        }
        GenuineCredential::new(net, verified)
    }
}

/// A credential that verification found genuine under a network: signed with the genesis
/// key of the department it names (or committed to, byte for byte, in that department's
/// validated block), and that department may issue its type in its region. It says
/// nothing about validity today (period, ledger status, recognition): the verdict does.
///
/// Only `Decision::into_genuine` makes one, so what is built from it (the printable card)
/// needs no trust check of its own. It borrows the network's definitions of the issuer,
/// the type and the region, so they cannot come from another network.
#[derive(Debug, Clone)]
pub struct GenuineCredential<'n> {
    verified: VerifiedCredential,
    issuer: &'n Department,
    licence_type: &'n LicenceTypeDef,
    region: &'n Region,
}

impl<'n> GenuineCredential<'n> {
    fn new(net: &'n Network, verified: VerifiedCredential) -> Option<Self> {
        let c = verified.credential();
        let issuer = mandate(net, c).ok()?;
        // Both exist once the mandate holds: `Network` refuses grants of undefined types
        // and departments in undefined regions.
        let licence_type = net.licence_type(c.licence_type())?;
        let region = net.region(&issuer.region)?;
        Some(Self {
            verified,
            issuer,
            licence_type,
            region,
        })
    }

    pub fn credential(&self) -> &Credential {
        self.verified.credential()
    }

    /// SHA-256 of the credential's COSE bytes, the ledger's commitment.
    pub fn commitment(&self) -> Hash32 {
        self.verified.commitment()
    }

    /// The department that issued it, as genesis defines it.
    pub fn issuer(&self) -> &'n Department {
        self.issuer
    }

    /// Its licence type, as genesis defines it (names, holder fields, labels).
    pub fn licence_type(&self) -> &'n LicenceTypeDef {
        self.licence_type
    }

    /// The region it was issued in, which is its issuer's.
    pub fn region(&self) -> &'n Region {
        self.region
    }
}

/// Formats unix seconds as RFC 3339 UTC; out-of-range values print as the raw number.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// Parses an RFC 3339 timestamp into unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// The decision for input that could not be decoded.
pub fn undecodable(detail: &str, ctx: &VerifyContext) -> Decision {
    Decision {
        verdict: Verdict::Undetermined(UndeterminedReason::Undecodable),
        detail: detail.to_owned(),
        proven: None,
        ledger: None,
        offline: false,
        checked_at: ctx.now,
        verifier_region: ctx.region.clone(),
    }
}

/// Decodes QR text and decides, checking a signature (if one is needed) here, strictly.
/// `ledger` gives the facts for the licence id the credential names.
pub fn decide_text(
    net: &Network,
    text: &str,
    ledger: &dyn Fn(&crate::LicenceId, &Hash32) -> LedgerFacts,
    ctx: &VerifyContext,
) -> Decision {
    match UnverifiedCredential::from_qr(text) {
        Ok(un) => {
            let facts = ledger(&un.credential.licence_id, &un.commitment);
            decide(net, un, facts, ctx)
        }
        Err(e) => undecodable(&e.to_string(), ctx),
    }
}

/// Both steps, with the signature (if the ledger does not vouch for the bytes) checked
/// here with strict Ed25519.
pub fn decide(
    net: &Network,
    un: UnverifiedCredential,
    facts: LedgerFacts,
    ctx: &VerifyContext,
) -> Decision {
    match prepare(net, un, facts, ctx) {
        Step::Done(d) => d,
        Step::Signature(p) => p.finish_strict(net),
    }
}

/// The outcome of `prepare`.
#[derive(Debug)]
pub enum Step {
    /// Decided without a signature check: an unknown key, or the ledger vouches for the
    /// exact bytes (the fast path).
    Done(Decision),
    /// One signature check is needed to go on.
    Signature(PendingSignature),
}

/// A verification waiting for its credential's signature check. Its `input` was computed
/// here from the credential and the issuer key genesis names for its kid, so an answer
/// about `input` is an answer about this credential and nothing else.
#[derive(Debug)]
pub struct PendingSignature {
    un: UnverifiedCredential,
    input: SignatureInput,
    facts: LedgerFacts,
    ctx: VerifyContext,
}

impl PendingSignature {
    /// The check to make: key, message (the COSE Sig_structure) and signature.
    pub fn input(&self) -> &SignatureInput {
        &self.input
    }

    /// Decides with the signature check's answer. The caller must have checked exactly
    /// `self.input()`; a batch check (`crypto::verify_many`) qualifies.
    pub fn finish(self, net: &Network, signature_ok: bool) -> Decision {
        let PendingSignature {
            un,
            input,
            facts,
            ctx,
        } = self;
        match un.accept_checked(&input, signature_ok) {
            Ok(v) => judge(net, v, &facts, &ctx),
            Err(un) => refuse(
                I::BadSignature,
                format!("not signed by {}", un.credential.issuer),
                &facts,
                &ctx,
            ),
        }
    }

    /// Decides with a strict check made here.
    pub fn finish_strict(self, net: &Network) -> Decision {
        let ok = self
            .input
            .key
            .verify(&self.input.message, &self.input.signature);
        self.finish(net, ok)
    }
}

use InvalidReason as I;
use UndeterminedReason as U;

/// A decision that shows nothing of the credential: its origin is not proven.
fn refuse(
    reason: InvalidReason,
    detail: String,
    facts: &LedgerFacts,
    ctx: &VerifyContext,
) -> Decision {
    Decision {
        verdict: Verdict::Invalid(reason),
        detail,
        proven: None,
        ledger: facts.licence(),
        offline: matches!(facts, LedgerFacts::Offline),
        checked_at: ctx.now,
        verifier_region: ctx.region.clone(),
    }
}

/// The first step: the key and issuer, then the fast path; a signature check when the
/// ledger does not vouch for the bytes.
pub fn prepare(
    net: &Network,
    un: UnverifiedCredential,
    facts: LedgerFacts,
    ctx: &VerifyContext,
) -> Step {
    let Some((dept, span)) = net.key_span(&un.kid) else {
        return Step::Done(refuse(
            I::UnknownIssuer,
            format!("key id {} is not in genesis", un.kid),
            &facts,
            ctx,
        ));
    };
    if dept.id != un.credential.issuer {
        return Step::Done(refuse(
            I::IssuerMismatch,
            format!(
                "signed with the key of {}, but claims issuer {}",
                dept.id, un.credential.issuer
            ),
            &facts,
            ctx,
        ));
    }
    // Fast path: the issuer's signed block already vouches for these exact bytes.
    let un = match facts.licence() {
        Some(s) => match un.vouched_by_ledger(&s.commitment) {
            Ok(v) => return Step::Done(judge(net, v, &facts, ctx)),
            Err(un) => un,
        },
        None => un,
    };
    match un.signature_input(&span.key) {
        Some(input) => Step::Signature(PendingSignature {
            un,
            input,
            facts,
            ctx: ctx.clone(),
        }),
        // Not a 64-byte signature: no check can pass.
        None => Step::Done(refuse(
            I::BadSignature,
            format!("not signed by {}", dept.id),
            &facts,
            ctx,
        )),
    }
}

/// The rest of the decision, for a credential whose origin is proven.
fn judge(
    net: &Network,
    verified: VerifiedCredential,
    facts: &LedgerFacts,
    ctx: &VerifyContext,
) -> Decision {
    let (verdict, detail) = rules(net, &verified, facts, ctx);
    Decision {
        verdict,
        detail,
        proven: Some(Proven {
            verified,
            genesis: net.hash(),
        }),
        ledger: facts.licence(),
        offline: matches!(facts, LedgerFacts::Offline),
        checked_at: ctx.now,
        verifier_region: ctx.region.clone(),
    }
}

/// The verdict rules for a proven credential, in the order docs/api.md lists them.
fn rules(
    net: &Network,
    verified: &VerifiedCredential,
    facts: &LedgerFacts,
    ctx: &VerifyContext,
) -> (Verdict, String) {
    let c = verified.credential();
    let dept = match mandate(net, c) {
        Ok(dept) => dept,
        Err(refused) => return refused,
    };
    if let Err(refused) = key_in_force(net, verified, facts) {
        return refused;
    }

    if let LedgerFacts::Bundle {
        status,
        expired,
        as_of,
        superseded,
    } = facts
    {
        match status {
            None => {
                return (
                    Verdict::Undetermined(U::ChainUnknown),
                    format!("the offline bundle holds no checkpoint of {}", dept.id),
                )
            }
            // A revocation is for good: an old bundle still knows it.
            Some(LicenceStatus::Revoked(r)) => {
                return (
                    Verdict::Invalid(I::Revoked),
                    format!(
                        "{} ({r:?}) as of {}, by the offline bundle",
                        r.label_zh(),
                        rfc3339(*as_of)
                    ),
                )
            }
            Some(_) if *expired => {
                return (
                    Verdict::Undetermined(U::BundleExpired),
                    format!(
                        "the offline bundle's data of {} is as of {}, past the network's hard limit; refresh the bundle",
                        dept.id,
                        rfc3339(*as_of)
                    ),
                )
            }
            Some(LicenceStatus::Suspended(r)) => {
                return (
                    Verdict::Invalid(I::Suspended),
                    format!("{r:?} as of {}, by the offline bundle", rfc3339(*as_of)),
                )
            }
            // A replaced card stays replaced: an old bundle still knows it.
            Some(_) if *superseded => {
                return (
                    Verdict::Invalid(I::Superseded),
                    format!(
                        "a newer credential of {} was in force as of {}, by the offline bundle: this card was renewed, reissued or amended since",
                        c.licence_id,
                        rfc3339(*as_of)
                    ),
                )
            }
            // Final, as a revocation: an old bundle still knows it.
            Some(LicenceStatus::Transferred) => {
                return (
                    Verdict::Invalid(I::Transferred),
                    format!(
                        "transferred out as of {}, by the offline bundle; verify online for its new id",
                        rfc3339(*as_of)
                    ),
                )
            }
            Some(LicenceStatus::Active) => {}
        }
    }

    if let LedgerFacts::Online {
        licence,
        issuer_head,
        equivocation_height,
        stale,
        behind,
        lineage,
    } = facts
    {
        if let Some(h) = equivocation_height {
            let past_fork = licence.is_none_or(|s| s.updated_height >= *h);
            if past_fork {
                return (
                    Verdict::Undetermined(U::Equivocation),
                    format!("{} signed two different blocks at height {h}", dept.id),
                );
            }
        }
        match licence {
            Some(s) => {
                let now_state = s.phase(ctx.now);
                if s.commitment != verified.commitment() {
                    if let Some(by) = lineage.superseded_by {
                        return (
                            Verdict::Invalid(I::Superseded),
                            format!(
                                "a newer credential of {} is in force ({} at block {}#{}); the licence is {} now",
                                c.licence_id,
                                by.as_str(),
                                dept.id,
                                s.issued_height,
                                phase_words(now_state)
                            ),
                        );
                    }
                    return (
                        Verdict::Invalid(I::CommitmentMismatch),
                        "the ledger records a different credential under this licence id".into(),
                    );
                }
                match s.status {
                    LicenceStatus::Revoked(r) => {
                        return (
                            Verdict::Invalid(I::Revoked),
                            format!(
                                "{} ({:?}) at block {}#{}",
                                r.label_zh(),
                                r,
                                dept.id,
                                s.updated_height
                            ),
                        )
                    }
                    LicenceStatus::Suspended(r) if now_state == LicencePhase::Suspended => {
                        let until = s
                            .suspended_until
                            .map(|u| format!(", until {}", rfc3339(u)))
                            .unwrap_or_default();
                        return (
                            Verdict::Invalid(I::Suspended),
                            format!(
                                "{r:?} at block {}#{}{until}",
                                dept.id,
                                s.status_record_height()
                            ),
                        );
                    }
                    LicenceStatus::Transferred => {
                        let whereto = match &lineage.transfer {
                            Some(Transfer {
                                to,
                                accepted_as: Some(new),
                            }) => format!("transferred to {to}, now licence {new}"),
                            Some(Transfer { to, .. }) => {
                                format!("transferred to {to}, which has not recorded it yet as seen here")
                            }
                            None => "transferred out".into(),
                        };
                        return (Verdict::Invalid(I::Transferred), whereto);
                    }
                    LicenceStatus::Suspended(_) | LicenceStatus::Active => {}
                }
            }
            None => {
                let Some(head) = issuer_head else {
                    return (
                        Verdict::Undetermined(U::ChainUnknown),
                        format!("no block of {} has reached this node yet", dept.id),
                    );
                };
                let deadline_ms = c
                    .issued_at
                    .saturating_mul(1000)
                    .saturating_add(FUTURE_SKEW_MS_MAX as i64);
                if (head.time_ms as i64) > deadline_ms {
                    return (
                        Verdict::Invalid(I::NotOnLedger),
                        format!(
                            "{} issued no such licence; its chain here is at height {}, newer than the credential",
                            dept.id, head.height
                        ),
                    );
                }
                return (
                    Verdict::Undetermined(U::NotYetSeen),
                    format!(
                        "{} has not recorded it on its chain yet as seen here",
                        dept.id
                    ),
                );
            }
        }
        match stale {
            None => {}
            Some(Stale::NoPeers) => {
                return (
                    Verdict::Undetermined(U::Stale),
                    "this node has not heard from the network recently".into(),
                )
            }
            Some(Stale::Checkpoint { age_secs }) => {
                return (
                    Verdict::Undetermined(U::Stale),
                    format!(
                        "no checkpoint of {} cosigned by its witnesses has reached this node for {}: it may be cut off from {}, which may have changed the licence since",
                        dept.id,
                        human_age(*age_secs),
                        dept.id
                    ),
                )
            }
        }
        if let Some(signed) = behind {
            return (
                Verdict::Undetermined(U::Stale),
                format!(
                    "this node holds {}'s chain to height {}, but {} has signed height {signed}: a newer change of this licence may not have reached this node",
                    dept.id,
                    issuer_head.map_or(0, |h| h.height),
                    dept.id
                ),
            );
        }
    }

    // A verifier's clock a few minutes slow must not call a licence issued a moment ago
    // "not yet valid": the same skew peers allow between block times.
    if ctx.now.saturating_add(NBF_SKEW_SECS) < c.not_before {
        return (
            Verdict::Invalid(I::NotYetValid),
            format!("valid from {}", rfc3339(c.not_before)),
        );
    }
    if ctx.now >= c.expires_at {
        return (
            Verdict::Invalid(I::Expired),
            format!("expired at {}", rfc3339(c.expires_at)),
        );
    }
    if let Some(region) = &ctx.region {
        if net.recognition(region, c.licence_type(), &c.region) == Recognition::NotRecognised {
            let region_name = net.region(region).map_or("", |r| r.name.as_str());
            return (
                Verdict::Invalid(I::NotRecognised),
                format!(
                    "recognition policy of region {region} {region_name} in genesis does not accept {} from region {}",
                    c.licence_type(),
                    c.region
                ),
            );
        }
    }
    (Verdict::Valid, String::new())
}

/// An age for a sentence: "3 h 20 min", "45 s".
pub fn human_age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// The issuer's mandate under genesis: the department the credential names exists, may
/// issue its type, is in the region the credential names, and gave it a validity period
/// its type allows. Every rule the credential alone can be checked against, online and
/// offline alike. The verdict rules and
/// `GenuineCredential` both ask here.
fn mandate<'n>(net: &'n Network, c: &Credential) -> Result<&'n Department, (Verdict, String)> {
    let issuer: &DepartmentId = &c.issuer;
    let Some(dept) = net.department(issuer) else {
        // The kid named this department a moment ago; genesis does not change under us.
        return Err((
            Verdict::Invalid(I::UnknownIssuer),
            format!("{issuer} is not in genesis"),
        ));
    };
    if !net.is_granted(&dept.id, c.licence_type()) {
        return Err((
            Verdict::Invalid(I::TypeNotGranted),
            format!("{} may not issue {}", dept.id, c.licence_type()),
        ));
    }
    if c.region != dept.region {
        return Err((
            Verdict::Invalid(I::RegionMismatch),
            format!(
                "credential says region {}, issuer is in {}",
                c.region, dept.region
            ),
        ));
    }
    // The same rule the ledger applies to issue records, so a credential the issuer
    // signed outside the ledger (offline, or with a stolen key) cannot claim more.
    if let Some(p) = net.validity_problem(c.licence_type(), c.not_before, c.expires_at) {
        return Err((Verdict::Invalid(I::BadValidity), format!("validity {p}")));
    }
    Ok(dept)
}

/// The credential's key was the issuer's key when its licence was issued: the key that
/// signed the issuing block (online), and never a key declared compromised unless the
/// ledger (online) or the governance export (offline, `Network::vouched`) shows the
/// licence issued at or below the key's last good height.
fn key_in_force(
    net: &Network,
    verified: &VerifiedCredential,
    facts: &LedgerFacts,
) -> Result<(), (Verdict, String)> {
    let kid = verified.kid();
    let Some((dept, span)) = net.key_span(&kid) else {
        // `prepare` found the key a moment ago in this same network.
        return Ok(());
    };
    let licence = facts.licence();
    if let Some(s) = licence {
        if s.issuer_key != kid {
            return Err((
                Verdict::Invalid(I::KeyNotInForce),
                format!(
                    "signed with {}'s key {kid}, but the licence was issued at block {}#{} under key {}",
                    dept.id, dept.id, s.issued_height, s.issuer_key
                ),
            ));
        }
    }
    if span.compromised {
        let last_good = span.until_height.unwrap_or(0);
        let vouched = match facts {
            LedgerFacts::Online { .. } => licence.is_some_and(|s| s.issued_height <= last_good),
            LedgerFacts::Offline | LedgerFacts::Bundle { .. } => {
                net.vouched(&verified.commitment())
            }
        };
        if !vouched {
            return Err((
                Verdict::Invalid(I::KeyCompromised),
                format!(
                    "signed with {}'s key {kid}, declared compromised after its block {last_good}",
                    dept.id
                ),
            ));
        }
    }
    Ok(())
}

/// Where a licence stands, in the words of a report's detail.
pub fn phase_words(p: LicencePhase) -> &'static str {
    match p {
        LicencePhase::Active => "active",
        LicencePhase::NotYetValid => "not yet valid",
        LicencePhase::Expired => "expired",
        LicencePhase::Suspended => "suspended",
        LicencePhase::Revoked => "revoked",
        LicencePhase::Transferred => "transferred",
    }
}

/// English and Chinese labels for each verdict, as a clerk reads them.
pub fn labels(v: Verdict) -> (&'static str, &'static str) {
    use InvalidReason as I;
    use UndeterminedReason as U;
    match v {
        Verdict::Valid => ("Valid", "有效"),
        Verdict::Invalid(r) => match r {
            I::Revoked => ("Invalid: revoked", "无效：已吊销/撤销/注销"),
            I::Suspended => ("Invalid: suspended", "无效：已暂扣"),
            I::Expired => ("Invalid: expired", "无效：已过期"),
            I::NotYetValid => ("Invalid: not yet valid", "无效：尚未生效"),
            I::UnknownIssuer => ("Invalid: unknown issuer", "无效：发证机关未知"),
            I::IssuerMismatch => ("Invalid: issuer mismatch", "无效：发证机关不符"),
            I::BadSignature => ("Invalid: bad signature", "无效：签名错误"),
            I::TypeNotGranted => (
                "Invalid: type not granted to the issuer",
                "无效：发证机关无权签发此类证照",
            ),
            I::RegionMismatch => ("Invalid: region mismatch", "无效：地区不符"),
            I::BadValidity => (
                "Invalid: validity period not allowed for its type",
                "无效：有效期超出该类证照的规定",
            ),
            I::CommitmentMismatch => ("Invalid: does not match the ledger", "无效：与账本记录不符"),
            I::NotRecognised => (
                "Invalid: not recognised in this region",
                "无效：本地区不互认此证照",
            ),
            I::NotOnLedger => ("Invalid: not on ledger", "无效：账本无此证照"),
            I::KeyCompromised => (
                "Invalid: signed with a compromised key",
                "无效：签发密钥已泄露",
            ),
            I::KeyNotInForce => (
                "Invalid: signed with a key not in force at issuance",
                "无效：签发密钥与签发时不符",
            ),
            I::Superseded => (
                "Invalid: superseded by a newer card",
                "无效：此证已被新证取代（延续/补领/变更）",
            ),
            I::Transferred => (
                "Invalid: transferred to another region",
                "无效：证照已转出至外地",
            ),
        },
        Verdict::Undetermined(r) => match r {
            U::ChainUnknown => (
                "Undetermined: issuer's chain not known here yet",
                "待定：本节点尚无该发证机关账本",
            ),
            U::Stale => ("Undetermined: local data is stale", "待定：本地数据过旧"),
            U::Undecodable => ("Undetermined: could not decode", "待定：无法识别"),
            U::NotYetSeen => (
                "Undetermined: not yet seen on the ledger",
                "待定：账本尚未同步此证照",
            ),
            U::Equivocation => (
                "Undetermined: issuer's chain is forked",
                "待定：发证机关账本分叉",
            ),
            U::BundleExpired => ("Undetermined: offline data expired", "待定：离线数据已过期"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::tests::driving_licence;
    use crate::crypto::{Hash32, KeyId, SecretKey};
    use crate::genesis::tests::sample;
    use crate::ids::{LicenceId, LicenceType};
    use crate::ledger::{RevokeReason, SuspendReason};
    use crate::SignedCredential;

    const T: i64 = 1_750_000_000;
    const EXPIRES: i64 = T + 6 * 365 * 86400;
    const LATE_MS: u64 = ((T + 3600) * 1000) as u64;

    /// The sample network after two governance records: gd.transport's genesis key
    /// (seed 1) rotated to seed 41, then seed 41 declared compromised after gd.transport's
    /// block 4, replaced by seed 42.
    fn net() -> Network {
        use crate::governance::{GovBlock, GovHeader, GovRecord};
        let (doc, keys) = sample();
        let mut net = Network::from_document(doc).expect("genesis");
        let gd = keys[0].0.clone();
        for record in [
            GovRecord::RotateIssuerKey {
                department: gd.clone(),
                key: key(41).public(),
            },
            GovRecord::KeyCompromised {
                department: gd.clone(),
                last_good: 4,
                replacement: key(42).public(),
            },
        ] {
            let mut b = GovBlock::new(GovHeader {
                genesis: net.hash(),
                height: net.gov_height() + 1,
                prev: net.gov_head(),
                time_ms: 1,
                record,
            });
            for (d, k) in &keys[1..] {
                b.cosign(d.clone(), k);
            }
            net = net.apply(&b).expect("record");
        }
        net
    }

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_seed(&[seed; 32])
    }

    /// What a row presents: the claims and who signs them.
    #[derive(Clone, Copy)]
    enum Presented {
        /// gd.transport's driving licence, signed by the key of this seed (1 is
        /// gd.transport's own, 2 gd.market's, 99 nobody's).
        Mvdl(u8),
        /// A food licence of gd.market, signed by gd.market.
        Food,
        /// gd.transport's key on a food licence it is not granted.
        FoodByTransport,
        /// gd.transport's driving licence claiming region 310000.
        WrongRegion,
        /// gd.transport's driving licence valid this many days (the type allows 3660).
        Days(i64),
        /// The driving licence with its signature's last byte flipped.
        Forged,
        Garbage,
    }

    fn present(p: Presented) -> String {
        let signed =
            |c: Credential, seed: u8| -> SignedCredential { c.sign(&key(seed)).expect("sign") };
        let food = |issuer: &str| {
            let mut c = driving_licence(1);
            c.issuer = DepartmentId::parse(issuer).expect("id");
            c.licence_id = LicenceId::new(
                c.issuer.clone(),
                LicenceType::parse("food").expect("type"),
                1,
            );
            // Within food's 1830 days.
            c.expires_at = c.not_before + 365 * 86_400;
            c
        };
        match p {
            Presented::Mvdl(seed) => signed(driving_licence(1), seed).qr_text,
            Presented::Food => signed(food("gd.market"), 2).qr_text,
            Presented::FoodByTransport => signed(food("gd.transport"), 1).qr_text,
            Presented::WrongRegion => {
                let mut c = driving_licence(1);
                c.region = RegionCode::parse("310000").expect("region");
                signed(c, 1).qr_text
            }
            Presented::Days(days) => {
                let mut c = driving_licence(1);
                c.expires_at = c.not_before + days * 86_400;
                signed(c, 1).qr_text
            }
            Presented::Forged => {
                let s = signed(driving_licence(1), 1);
                let mut cose = s.cose.clone();
                let last = cose.len() - 1;
                cose[last] ^= 1;
                crate::credential::cose_to_qr(&cose)
            }
            Presented::Garbage => "hello".into(),
        }
    }

    /// What this node's ledger says, relative to the presented credential's commitment.
    #[derive(Clone, Copy)]
    enum Ledger {
        Offline,
        /// On the ledger with this status, its last change at height 5, head time late.
        On(LicenceStatus),
        /// On the ledger under another commitment.
        OtherCommitment,
        /// Not on the ledger; the issuer's head is at this time (ms), or unknown.
        Absent(Option<u64>),
        /// Active, with an equivocation proven at this height.
        Forked(u64),
        Stale,
        /// Active, but a signed block of the issuer at height 9 is known here.
        Behind,
        /// Active, issued in a block signed with the key of this seed.
        IssuedUnder(u8),
        /// Active, issued at this height.
        IssuedAt(u64),
        /// Active under a newer credential: the presented one was reissued since.
        Superseded,
        /// Transferred out to sh.transport, not yet accepted there.
        Transferred,
        /// Suspended until this time (unix seconds).
        SuspendedUntil(i64),
        /// Offline with a bundle: this status (`None`: no checkpoint of the issuer), and
        /// whether the bundle is past its hard limit.
        Bundle(Option<LicenceStatus>, bool),
        /// Offline with a bundle that holds the presented credential as superseded.
        BundleSuperseded,
    }

    /// `kid`: the presented credential's key, which the ledger names as the key of the
    /// licence's issuing block, unless `l` says otherwise.
    fn facts(l: Ledger, commitment: Hash32, kid: KeyId) -> LedgerFacts {
        let issuer_key = match l {
            Ledger::IssuedUnder(seed) => key(seed).public().key_id(),
            _ => kid,
        };
        let issued_height = match l {
            Ledger::IssuedAt(h) => h,
            _ => 3,
        };
        let state = |status, commitment| LicenceState {
            status,
            commitment,
            valid_from: T,
            valid_until: EXPIRES,
            issued_height,
            issued_index: 0,
            updated_height: 5.max(issued_height),
            issuer_key,
            suspended_until: None,
            status_height: 5,
            status_index: 0,
        };
        let head = |time_ms| Head {
            height: 5,
            hash: Hash32::default(),
            time_ms,
            gov: 0,
        };
        let online = |licence, issuer_head, equivocation_height, stale: bool| LedgerFacts::Online {
            licence,
            issuer_head,
            equivocation_height,
            stale: stale.then_some(Stale::NoPeers),
            behind: None,
            lineage: Lineage::default(),
        };
        match l {
            Ledger::Offline => LedgerFacts::Offline,
            Ledger::Bundle(status, expired) => LedgerFacts::Bundle {
                status,
                expired,
                as_of: T,
                superseded: false,
            },
            Ledger::BundleSuperseded => LedgerFacts::Bundle {
                status: Some(LicenceStatus::Active),
                expired: false,
                as_of: T,
                superseded: true,
            },
            Ledger::On(s) => online(Some(state(s, commitment)), Some(head(LATE_MS)), None, false),
            Ledger::OtherCommitment => online(
                Some(state(LicenceStatus::Active, Hash32::digest(b"other"))),
                Some(head(LATE_MS)),
                None,
                false,
            ),
            Ledger::Absent(h) => online(None, h.map(head), None, false),
            Ledger::Forked(h) => online(
                Some(state(LicenceStatus::Active, commitment)),
                Some(head(LATE_MS)),
                Some(h),
                false,
            ),
            Ledger::Stale => online(
                Some(state(LicenceStatus::Active, commitment)),
                Some(head(LATE_MS)),
                None,
                true,
            ),
            Ledger::Behind => LedgerFacts::Online {
                licence: Some(state(LicenceStatus::Active, commitment)),
                issuer_head: Some(head(LATE_MS)),
                equivocation_height: None,
                stale: None,
                behind: Some(9),
                lineage: Lineage::default(),
            },
            Ledger::Superseded => LedgerFacts::Online {
                licence: Some(state(LicenceStatus::Active, Hash32::digest(b"newer"))),
                issuer_head: Some(head(LATE_MS)),
                equivocation_height: None,
                stale: None,
                behind: None,
                lineage: Lineage {
                    superseded_by: Some(crate::ledger::RecordKind::Reissue),
                    transfer: None,
                },
            },
            Ledger::Transferred => LedgerFacts::Online {
                licence: Some(state(LicenceStatus::Transferred, commitment)),
                issuer_head: Some(head(LATE_MS)),
                equivocation_height: None,
                stale: None,
                behind: None,
                lineage: Lineage {
                    superseded_by: None,
                    transfer: Some(Transfer {
                        to: DepartmentId::parse("sh.transport").expect("dept"),
                        accepted_as: None,
                    }),
                },
            },
            Ledger::SuspendedUntil(until) => {
                let mut s = state(LicenceStatus::Suspended(SuspendReason::Penalty), commitment);
                s.suspended_until = Some(until);
                online(Some(s), Some(head(LATE_MS)), None, false)
            }
            Ledger::IssuedUnder(_) | Ledger::IssuedAt(_) => online(
                Some(state(LicenceStatus::Active, commitment)),
                Some(head(LATE_MS)),
                None,
                false,
            ),
        }
    }

    fn run(p: Presented, l: Ledger, now: i64, region: Option<&str>) -> Decision {
        let ctx = VerifyContext {
            now,
            region: region.map(|r| RegionCode::parse(r).expect("region")),
        };
        let text = present(p);
        decide_text(
            &net(),
            &text,
            &|_, _| {
                let (commitment, kid) = UnverifiedCredential::from_qr(&text)
                    .map(|u| (u.commitment, u.kid))
                    .unwrap_or((Hash32::default(), KeyId([0; 8])));
                facts(l, commitment, kid)
            },
            &ctx,
        )
    }

    /// One row per verdict and reason of docs/api.md, each with the case one step short of
    /// it (which must decide otherwise).
    #[test]
    fn every_verdict_and_the_case_one_step_short_of_it() {
        use InvalidReason as I;
        use Ledger as L;
        use Presented as P;
        use UndeterminedReason as U;
        use Verdict::{Invalid, Undetermined, Valid};
        let active = L::On(LicenceStatus::Active);
        let deadline_ms = (T * 1000) as u64 + FUTURE_SKEW_MS_MAX;
        #[rustfmt::skip]
        let table: &[(&str, Presented, Ledger, i64, Option<&str>, Verdict)] = &[
            ("valid offline",                P::Mvdl(1), L::Offline, T + 1, None, Valid),
            ("valid online",                 P::Mvdl(1), active, T + 1, Some("310000"), Valid),
            ("not yet valid",                P::Mvdl(1), L::Offline, T - NBF_SKEW_SECS - 1, None, Invalid(I::NotYetValid)),
            ("  short: a clock fifteen minutes slow", P::Mvdl(1), L::Offline, T - NBF_SKEW_SECS, None, Valid),
            ("expired",                      P::Mvdl(1), L::Offline, EXPIRES, None, Invalid(I::Expired)),
            ("  short: the last second",     P::Mvdl(1), L::Offline, EXPIRES - 1, None, Valid),
            ("unknown issuer",               P::Mvdl(99), L::Offline, T + 1, None, Invalid(I::UnknownIssuer)),
            ("signed with a compromised key", P::Mvdl(41), L::Offline, T + 1, None, Invalid(I::KeyCompromised)),
            ("  online, issued above its last good height", P::Mvdl(41), L::IssuedAt(5), T + 1, None, Invalid(I::KeyCompromised)),
            ("  short: issued at its last good height", P::Mvdl(41), L::IssuedAt(4), T + 1, None, Valid),
            ("  short: the replacement key",  P::Mvdl(42), L::Offline, T + 1, None, Valid),
            ("  short: the rotated-out key",  P::Mvdl(1), L::Offline, T + 1, None, Valid),
            ("key not in force at issuance",  P::Mvdl(1), L::IssuedUnder(42), T + 1, None, Invalid(I::KeyNotInForce)),
            ("  short: the key of its block", P::Mvdl(42), L::IssuedUnder(42), T + 1, None, Valid),
            ("issuer mismatch",              P::Mvdl(2), L::Offline, T + 1, None, Invalid(I::IssuerMismatch)),
            ("bad signature",                P::Forged, L::Offline, T + 1, None, Invalid(I::BadSignature)),
            ("  online, ledger holds another", P::Forged, L::OtherCommitment, T + 1, None, Invalid(I::BadSignature)),
            ("type not granted",             P::FoodByTransport, L::Offline, T + 1, None, Invalid(I::TypeNotGranted)),
            ("  short: granted to gd.market", P::Food, L::Offline, T + 1, None, Valid),
            ("region mismatch",              P::WrongRegion, L::Offline, T + 1, None, Invalid(I::RegionMismatch)),
            ("validity longer than the type's", P::Days(3661), L::Offline, T + 1, None, Invalid(I::BadValidity)),
            ("  online too",                 P::Days(3661), L::Absent(None), T + 1, None, Invalid(I::BadValidity)),
            ("  short: the type's maximum",  P::Days(3660), L::Offline, T + 1, None, Valid),
            ("not recognised",               P::Food, L::Offline, T + 1, Some("310000"), Invalid(I::NotRecognised)),
            ("  short: in its own region",   P::Food, L::Offline, T + 1, Some("440000"), Valid),
            ("revoked",                      P::Mvdl(1), L::On(LicenceStatus::Revoked(RevokeReason::Penalty)), T + 1, None, Invalid(I::Revoked)),
            ("  revocation beats expiry",    P::Mvdl(1), L::On(LicenceStatus::Revoked(RevokeReason::Withdrawn)), EXPIRES, None, Invalid(I::Revoked)),
            ("suspended",                    P::Mvdl(1), L::On(LicenceStatus::Suspended(SuspendReason::Penalty)), T + 1, None, Invalid(I::Suspended)),
            ("commitment mismatch",          P::Mvdl(1), L::OtherCommitment, T + 1, None, Invalid(I::CommitmentMismatch)),
            ("superseded",                   P::Mvdl(1), L::Superseded, T + 1, None, Invalid(I::Superseded)),
            ("transferred",                  P::Mvdl(1), L::Transferred, T + 1, None, Invalid(I::Transferred)),
            ("transferred, by the offline bundle", P::Mvdl(1), L::Bundle(Some(LicenceStatus::Transferred), false), T + 1, None, Invalid(I::Transferred)),
            ("superseded, by the offline bundle", P::Mvdl(1), L::BundleSuperseded, T + 1, None, Invalid(I::Superseded)),
            ("suspended until a date",       P::Mvdl(1), L::SuspendedUntil(T + 100), T + 99, None, Invalid(I::Suspended)),
            ("  short: the suspension has ended", P::Mvdl(1), L::SuspendedUntil(T + 100), T + 100, None, Valid),
            ("not on ledger",                P::Mvdl(1), L::Absent(Some(deadline_ms + 1)), T + 1, None, Invalid(I::NotOnLedger)),
            ("not yet seen",                 P::Mvdl(1), L::Absent(Some(deadline_ms)), T + 1, None, Undetermined(U::NotYetSeen)),
            ("chain unknown",                P::Mvdl(1), L::Absent(None), T + 1, None, Undetermined(U::ChainUnknown)),
            ("equivocation",                 P::Mvdl(1), L::Forked(5), T + 1, None, Undetermined(U::Equivocation)),
            ("  short: last change below the fork", P::Mvdl(1), L::Forked(6), T + 1, None, Valid),
            ("stale",                        P::Mvdl(1), L::Stale, T + 1, None, Undetermined(U::Stale)),
            ("  behind a signed block",      P::Mvdl(1), L::Behind, T + 1, None, Undetermined(U::Stale)),
            ("undecodable",                  P::Garbage, L::Offline, T + 1, None, Undetermined(U::Undecodable)),
            ("revoked, by the offline bundle", P::Mvdl(1), L::Bundle(Some(LicenceStatus::Revoked(RevokeReason::Penalty)), false), T + 1, None, Invalid(I::Revoked)),
            ("suspended, by the offline bundle", P::Mvdl(1), L::Bundle(Some(LicenceStatus::Suspended(SuspendReason::Penalty)), false), T + 1, None, Invalid(I::Suspended)),
            ("  short: active in the bundle", P::Mvdl(1), L::Bundle(Some(LicenceStatus::Active), false), T + 1, None, Valid),
            ("bundle expired",               P::Mvdl(1), L::Bundle(Some(LicenceStatus::Active), true), T + 1, None, Undetermined(U::BundleExpired)),
            ("  even for a suspended licence", P::Mvdl(1), L::Bundle(Some(LicenceStatus::Suspended(SuspendReason::Penalty)), true), T + 1, None, Undetermined(U::BundleExpired)),
            ("  short: a revocation is for good", P::Mvdl(1), L::Bundle(Some(LicenceStatus::Revoked(RevokeReason::Penalty)), true), T + 1, None, Invalid(I::Revoked)),
            ("bundle without the issuer",    P::Mvdl(1), L::Bundle(None, false), T + 1, None, Undetermined(U::ChainUnknown)),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for &(name, p, l, now, region, expected) in table {
            let d = run(p, l, now, region);
            assert_eq!(d.verdict, expected, "{name}: {}", d.detail);
            seen.insert(expected.label());
            // Claims are shown only when the issuer's signature (or commitment) vouches
            // for them.
            let proven = !matches!(
                expected,
                Invalid(I::UnknownIssuer | I::BadSignature | I::IssuerMismatch)
                    | Undetermined(U::Undecodable)
            );
            assert_eq!(d.credential().is_some(), proven, "{name}");
            // A card can be made only when, besides, the issuer may issue it.
            let genuine = proven
                && !matches!(
                    expected,
                    Invalid(I::TypeNotGranted | I::RegionMismatch | I::BadValidity)
                );
            assert_eq!(d.clone().into_genuine(&net()).is_some(), genuine, "{name}");
            // Undecodable input names no licence, so no ledger was asked: the caller says
            // whether it had one.
            assert_eq!(
                d.offline,
                matches!(l, L::Offline) && !matches!(p, P::Garbage),
                "{name}"
            );
        }
        // Every reason docs/api.md lists has a row.
        let all: Vec<&str> = InvalidReason::ALL
            .iter()
            .map(|r| r.as_str())
            .chain(UndeterminedReason::ALL.iter().map(|r| r.as_str()))
            .chain(["valid"])
            .collect();
        for r in all {
            assert!(seen.contains(r), "no row decides {r}");
        }
    }

    #[test]
    fn the_fast_path_needs_no_signature_check_and_the_rest_asks_for_one() {
        let net = net();
        let ctx = VerifyContext {
            now: T + 1,
            region: None,
        };
        let signed = driving_licence(1).sign(&key(1)).expect("sign");
        let un = || UnverifiedCredential::from_qr(&signed.qr_text).expect("decodes");
        // The ledger vouches for these bytes: decided at once.
        let on = facts(
            Ledger::On(LicenceStatus::Active),
            signed.commitment,
            key(1).public().key_id(),
        );
        assert!(
            matches!(prepare(&net, un(), on, &ctx), Step::Done(d) if d.verdict == Verdict::Valid)
        );
        // Not on the ledger: one check, over exactly this credential's Sig_structure.
        let Step::Signature(p) = prepare(&net, un(), LedgerFacts::Offline, &ctx) else {
            panic!("a signature check is needed")
        };
        let expected = un().signature_input(&key(1).public()).expect("input");
        assert_eq!(p.input().message, expected.message);
        assert_eq!(p.input().signature, expected.signature);
        assert_eq!(p.input().key, key(1).public());
        // The answer decides: no means bad signature, with nothing of the claims shown.
        let d = p.finish(&net, false);
        assert_eq!(d.verdict, Verdict::Invalid(InvalidReason::BadSignature));
        assert!(d.credential().is_none());
        let Step::Signature(p) = prepare(&net, un(), LedgerFacts::Offline, &ctx) else {
            panic!("a signature check is needed")
        };
        assert_eq!(p.finish(&net, true).verdict, Verdict::Valid);
    }

    #[test]
    fn a_genuine_credential_is_genuine_only_under_its_own_network() {
        let ctx = VerifyContext {
            now: T + 1,
            region: None,
        };
        let text = present(Presented::Mvdl(1));
        let d = decide_text(&net(), &text, &|_, _| LedgerFacts::Offline, &ctx);
        let net = net();
        let genuine = d.clone().into_genuine(&net).expect("genuine");
        assert_eq!(genuine.credential(), d.credential().expect("proven"));
        assert_eq!(genuine.issuer().id.as_str(), "gd.transport");
        assert_eq!(genuine.licence_type().name, "机动车驾驶证");
        assert_eq!(genuine.region().name, "广东省");
        assert_eq!(
            Some(genuine.commitment()),
            UnverifiedCredential::from_qr(&text)
                .ok()
                .map(|u| u.commitment)
        );
        // The same departments and keys, but another network: not genuine there.
        let (mut doc, _) = sample();
        doc.network = "another".into();
        let other = Network::from_document(doc).expect("genesis");
        assert!(d.into_genuine(&other).is_none());
    }

    #[test]
    fn reason_codes_are_their_serialised_names() {
        for r in InvalidReason::ALL {
            let json = serde_json::to_value(Reason::Invalid(r)).expect("json");
            assert_eq!(json, r.as_str());
            let back: Reason = serde_json::from_value(json).expect("parse");
            assert_eq!(back, Reason::Invalid(r));
        }
        for r in UndeterminedReason::ALL {
            let json = serde_json::to_value(Reason::Undetermined(r)).expect("json");
            assert_eq!(json, r.as_str());
            let back: Reason = serde_json::from_value(json).expect("parse");
            assert_eq!(back, Reason::Undetermined(r));
        }
        let v = Verdict::Invalid(InvalidReason::Revoked);
        assert_eq!(Verdict::from_parts(v.family(), v.reason()), Some(v));
        assert_eq!(Verdict::from_parts(Family::Valid, v.reason()), None);
        assert_eq!(
            Verdict::from_parts(
                Family::Invalid,
                Some(Reason::Undetermined(UndeterminedReason::Stale))
            ),
            None
        );
    }
}
