//! Verification of a presented credential: the verdict and the report a clerk reads.
//!
//! One function, `verify`, decides for both the offline path (genesis only) and the
//! online path (genesis plus what this node's ledger says). The verdict is always one of
//! three families that are never conflated: valid, invalid with a reason, undetermined
//! with a reason (DESIGN.md, "Verification").

use std::collections::BTreeMap;

use serde::Serialize;

use crate::credential::{SignatureInput, UnverifiedCredential, VerifiedCredential};
use crate::genesis::{Network, Recognition};
use crate::ids::{DepartmentId, LicenceId, RegionCode};
use crate::validate::{Head, LicenceState, LicenceStatus, FUTURE_SKEW_MS_MAX};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    CommitmentMismatch,
    NotRecognised,
    NotOnLedger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid(InvalidReason),
    Undetermined(UndeterminedReason),
}

impl Verdict {
    pub fn family(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid(_) => "invalid",
            Verdict::Undetermined(_) => "undetermined",
        }
    }

    /// The reason code, as serialised (`revoked`, `not_yet_seen`…).
    pub fn reason(&self) -> Option<&'static str> {
        Some(match self {
            Verdict::Valid => return None,
            Verdict::Invalid(r) => match r {
                InvalidReason::Revoked => "revoked",
                InvalidReason::Suspended => "suspended",
                InvalidReason::Expired => "expired",
                InvalidReason::NotYetValid => "not_yet_valid",
                InvalidReason::UnknownIssuer => "unknown_issuer",
                InvalidReason::IssuerMismatch => "issuer_mismatch",
                InvalidReason::BadSignature => "bad_signature",
                InvalidReason::TypeNotGranted => "type_not_granted",
                InvalidReason::RegionMismatch => "region_mismatch",
                InvalidReason::CommitmentMismatch => "commitment_mismatch",
                InvalidReason::NotRecognised => "not_recognised",
                InvalidReason::NotOnLedger => "not_on_ledger",
            },
            Verdict::Undetermined(r) => match r {
                UndeterminedReason::ChainUnknown => "chain_unknown",
                UndeterminedReason::Stale => "stale",
                UndeterminedReason::Undecodable => "undecodable",
                UndeterminedReason::NotYetSeen => "not_yet_seen",
                UndeterminedReason::Equivocation => "equivocation",
            },
        })
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

/// What the verifying node's ledger says, or `Offline` when there is no ledger.
#[derive(Debug, Clone, Copy)]
pub enum LedgerFacts {
    Offline,
    Online {
        /// The licence's state on its issuer's chain, if it is there.
        licence: Option<LicenceState>,
        /// Head of the issuer's chain at this node.
        issuer_head: Option<Head>,
        /// Height of the first equivocation proven against the issuer, if any.
        equivocation_height: Option<u64>,
        /// The node has not been in touch with the network recently.
        stale: bool,
    },
}

/// Where and when verification happens.
#[derive(Debug, Clone)]
pub struct VerifyContext {
    /// Unix seconds.
    pub now: i64,
    /// The verifying region, for the recognition policy; `None` skips that check.
    pub region: Option<RegionCode>,
}

/// The licence as shown to the clerk: what the credential discloses plus genesis names.
#[derive(Debug, Clone, Serialize)]
pub struct LicenceView {
    pub id: LicenceId,
    pub licence_type: String,
    pub type_name: String,
    pub type_name_en: String,
    pub issuer: DepartmentId,
    pub issuer_name: String,
    pub region: RegionCode,
    pub region_name: String,
    pub holder: BTreeMap<String, String>,
    pub fields: BTreeMap<String, String>,
    pub issued_at: String,
    pub valid_from: String,
    pub valid_until: String,
}

/// Where the licence stands on the ledger (no personal data).
#[derive(Debug, Clone, Serialize)]
pub struct LedgerView {
    pub status: LicenceStatus,
    pub issued_height: u64,
    pub updated_height: u64,
    pub commitment: String,
}

/// The answer to "is this licence good here and now?".
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: &'static str,
    pub reason: Option<&'static str>,
    pub message: String,
    pub message_zh: String,
    /// Verified offline: signature and validity only, revocation not checked.
    pub offline: bool,
    pub checked_at: String,
    pub verifier_region: Option<RegionCode>,
    pub licence: Option<LicenceView>,
    pub ledger: Option<LedgerView>,
    #[serde(skip)]
    pub kind: Verdict,
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

/// Decodes and verifies QR text. See `verify`.
pub fn verify_text(
    net: &Network,
    text: &str,
    ledger: &dyn Fn(&LicenceId) -> LedgerFacts,
    ctx: &VerifyContext,
) -> Report {
    match UnverifiedCredential::from_qr(text) {
        Ok(un) => {
            let facts = ledger(&un.credential.licence_id);
            verify(net, un, facts, ctx)
        }
        Err(e) => undecodable(&e.to_string(), ctx),
    }
}

/// The report for input that could not be decoded.
pub fn undecodable(detail: &str, ctx: &VerifyContext) -> Report {
    Report {
        verdict: "undetermined",
        reason: Some("undecodable"),
        message: format!("Could not decode: {detail}"),
        message_zh: "无法识别：不是有效的互认证照二维码".into(),
        offline: false,
        checked_at: rfc3339(ctx.now),
        verifier_region: ctx.region.clone(),
        licence: None,
        ledger: None,
        kind: Verdict::Undetermined(UndeterminedReason::Undecodable),
    }
}

/// How the credential's signature is checked, when the ledger does not vouch for it.
#[derive(Debug, Clone)]
pub enum SignatureCheck {
    /// Here, with strict Ed25519 verification.
    Strict,
    /// Already, by the caller (in a batch, `crypto::verify_many`), over this input from
    /// `UnverifiedCredential::signature_input`, with this result. An input that does not
    /// match the credential and its issuer key is ignored and the check made here.
    Checked(Box<SignatureInput>, bool),
}

/// Decides the verdict for a decoded credential.
pub fn verify(
    net: &Network,
    un: UnverifiedCredential,
    facts: LedgerFacts,
    ctx: &VerifyContext,
) -> Report {
    verify_with(net, un, facts, ctx, SignatureCheck::Strict)
}

/// `verify`, with the signature check made as `check` says.
pub fn verify_with(
    net: &Network,
    un: UnverifiedCredential,
    facts: LedgerFacts,
    ctx: &VerifyContext,
    check: SignatureCheck,
) -> Report {
    let (verdict, detail, verified) = decide(net, un, &facts, ctx, check);
    let offline = matches!(facts, LedgerFacts::Offline);
    let ledger = match facts {
        LedgerFacts::Online {
            licence: Some(s), ..
        } => Some(LedgerView {
            status: s.status,
            issued_height: s.issued_height,
            updated_height: s.updated_height,
            commitment: s.commitment.to_hex(),
        }),
        _ => None,
    };
    let licence = verified.map(|c| view(net, &c));
    let (en, zh) = labels(verdict);
    let message = if detail.is_empty() {
        en.to_owned()
    } else {
        format!("{en}: {detail}")
    };
    Report {
        verdict: verdict.family(),
        reason: verdict.reason(),
        message,
        message_zh: zh.to_owned(),
        offline,
        checked_at: rfc3339(ctx.now),
        verifier_region: ctx.region.clone(),
        licence,
        ledger,
        kind: verdict,
    }
}

fn view(net: &Network, c: &crate::credential::Credential) -> LicenceView {
    let t = net.licence_type(c.licence_type());
    let d = net.department(&c.issuer);
    LicenceView {
        id: c.licence_id.clone(),
        licence_type: c.licence_type().to_string(),
        type_name: t.map(|t| t.name.clone()).unwrap_or_default(),
        type_name_en: t.map(|t| t.name_en.clone()).unwrap_or_default(),
        issuer: c.issuer.clone(),
        issuer_name: d.map(|d| d.name.clone()).unwrap_or_default(),
        region: c.region.clone(),
        region_name: net
            .region(&c.region)
            .map(|r| r.name.clone())
            .unwrap_or_default(),
        holder: c.holder.clone(),
        fields: c.fields.clone(),
        issued_at: rfc3339(c.issued_at),
        valid_from: rfc3339(c.not_before),
        valid_until: rfc3339(c.expires_at),
    }
}

/// Returns the verdict, a detail sentence, and the credential when its origin is proven
/// (a verdict about an unproven credential must not display its claims as if true).
fn decide(
    net: &Network,
    un: UnverifiedCredential,
    facts: &LedgerFacts,
    ctx: &VerifyContext,
    check: SignatureCheck,
) -> (Verdict, String, Option<crate::credential::Credential>) {
    use InvalidReason as I;
    use UndeterminedReason as U;
    let invalid = |r, d: String| (Verdict::Invalid(r), d, None);

    let Some(dept) = net.department_by_key(&un.kid) else {
        return invalid(
            I::UnknownIssuer,
            format!("key id {} is not in genesis", un.kid),
        );
    };
    if dept.id != un.credential.issuer {
        return invalid(
            I::IssuerMismatch,
            format!(
                "signed with the key of {}, but claims issuer {}",
                dept.id, un.credential.issuer
            ),
        );
    }
    let ledger_commitment = match facts {
        LedgerFacts::Online {
            licence: Some(s), ..
        } => Some(s.commitment),
        _ => None,
    };
    // Fast path: the issuer's signed block already vouches for these exact bytes.
    let verified = match ledger_commitment {
        Some(c) => un.vouched_by_ledger(&c),
        None => Err(un),
    }
    .or_else(|un| match &check {
        SignatureCheck::Strict => un.verify(&dept.issuer_key),
        SignatureCheck::Checked(input, ok) => un.verify_checked(&dept.issuer_key, input, *ok),
    });
    let verified: VerifiedCredential = match verified {
        Ok(v) => v,
        Err(_) => return invalid(I::BadSignature, format!("not signed by {}", dept.id)),
    };
    let c = verified.credential().clone();
    let with = |v: Verdict, d: String| (v, d, Some(c.clone()));

    if !net.is_granted(&dept.id, c.licence_type()) {
        return with(
            Verdict::Invalid(I::TypeNotGranted),
            format!("{} may not issue {}", dept.id, c.licence_type()),
        );
    }
    if c.region != dept.region {
        return with(
            Verdict::Invalid(I::RegionMismatch),
            format!(
                "credential says region {}, issuer is in {}",
                c.region, dept.region
            ),
        );
    }

    if let LedgerFacts::Online {
        licence,
        issuer_head,
        equivocation_height,
        stale,
    } = facts
    {
        if let Some(h) = equivocation_height {
            let past_fork = licence.is_none_or(|s| s.updated_height >= *h);
            if past_fork {
                return with(
                    Verdict::Undetermined(U::Equivocation),
                    format!("{} signed two different blocks at height {h}", dept.id),
                );
            }
        }
        match licence {
            Some(s) => {
                if s.commitment != verified.commitment() {
                    return with(
                        Verdict::Invalid(I::CommitmentMismatch),
                        "the ledger records a different credential under this licence id".into(),
                    );
                }
                match s.status {
                    LicenceStatus::Revoked(r) => {
                        return with(
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
                    LicenceStatus::Suspended(r) => {
                        return with(
                            Verdict::Invalid(I::Suspended),
                            format!("{r:?} at block {}#{}", dept.id, s.updated_height),
                        )
                    }
                    LicenceStatus::Active => {}
                }
            }
            None => {
                let Some(head) = issuer_head else {
                    return with(
                        Verdict::Undetermined(U::ChainUnknown),
                        format!("no block of {} has reached this node yet", dept.id),
                    );
                };
                let deadline_ms = c
                    .issued_at
                    .saturating_mul(1000)
                    .saturating_add(FUTURE_SKEW_MS_MAX as i64);
                if (head.time_ms as i64) > deadline_ms {
                    return with(
                        Verdict::Invalid(I::NotOnLedger),
                        format!(
                            "{} issued no such licence; its chain here is at height {}, newer than the credential",
                            dept.id, head.height
                        ),
                    );
                }
                return with(
                    Verdict::Undetermined(U::NotYetSeen),
                    format!(
                        "{} has not recorded it on its chain yet as seen here",
                        dept.id
                    ),
                );
            }
        }
        if *stale {
            return with(
                Verdict::Undetermined(U::Stale),
                "this node has not heard from the network recently".into(),
            );
        }
    }

    if ctx.now < c.not_before {
        return with(
            Verdict::Invalid(I::NotYetValid),
            format!("valid from {}", rfc3339(c.not_before)),
        );
    }
    if ctx.now >= c.expires_at {
        return with(
            Verdict::Invalid(I::Expired),
            format!("expired at {}", rfc3339(c.expires_at)),
        );
    }
    if let Some(region) = &ctx.region {
        if net.recognition(region, c.licence_type(), &c.region) == Recognition::NotRecognised {
            let region_name = net.region(region).map_or("", |r| r.name.as_str());
            return with(
                Verdict::Invalid(I::NotRecognised),
                format!(
                    "recognition policy of region {region} {region_name} in genesis does not accept {} from region {}",
                    c.licence_type(),
                    c.region
                ),
            );
        }
    }
    with(Verdict::Valid, String::new())
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
            I::CommitmentMismatch => ("Invalid: does not match the ledger", "无效：与账本记录不符"),
            I::NotRecognised => (
                "Invalid: not recognised in this region",
                "无效：本地区不互认此证照",
            ),
            I::NotOnLedger => ("Invalid: not on ledger", "无效：账本无此证照"),
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
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::tests::driving_licence;
    use crate::crypto::{Hash32, SecretKey};
    use crate::genesis::tests::sample;
    use crate::ledger::{RevokeReason, SuspendReason};

    struct F {
        net: Network,
        key: SecretKey,
    }

    fn f() -> F {
        let (doc, keys) = sample();
        F {
            net: Network::from_document(doc).expect("genesis"),
            key: keys[0].1.clone(),
        }
    }

    const T: i64 = 1_750_000_000;

    fn ctx(now: i64, region: Option<&str>) -> VerifyContext {
        VerifyContext {
            now,
            region: region.map(|r| RegionCode::parse(r).expect("region")),
        }
    }

    fn state(commitment: Hash32, status: LicenceStatus) -> LicenceState {
        LicenceState {
            status,
            commitment,
            valid_from: T,
            valid_until: T + 10,
            issued_height: 3,
            updated_height: 5,
        }
    }

    fn head(height: u64, time_ms: u64) -> Head {
        Head {
            height,
            hash: Hash32::default(),
            time_ms,
        }
    }

    fn online(
        licence: Option<LicenceState>,
        h: Option<Head>,
        eq: Option<u64>,
        stale: bool,
    ) -> LedgerFacts {
        LedgerFacts::Online {
            licence,
            issuer_head: h,
            equivocation_height: eq,
            stale,
        }
    }

    /// Runs verification of a driving licence signed by `key` and compares the verdict.
    fn check(
        f: &F,
        key: &SecretKey,
        facts: impl Fn(Hash32) -> LedgerFacts,
        c: VerifyContext,
        expected: Verdict,
    ) {
        let signed = driving_licence(1).sign(key).expect("sign");
        let report = verify_text(&f.net, &signed.qr_text, &|_| facts(signed.commitment), &c);
        assert_eq!(report.kind, expected, "{}", report.message);
        assert_eq!(report.verdict, expected.family());
        assert_eq!(report.reason, expected.reason());
        // Claims are shown only when the issuer's signature (or commitment) vouches for them.
        let shown = report.licence.is_some();
        let proven = !matches!(
            expected,
            Verdict::Invalid(
                InvalidReason::UnknownIssuer
                    | InvalidReason::BadSignature
                    | InvalidReason::IssuerMismatch
            ) | Verdict::Undetermined(UndeterminedReason::Undecodable)
        );
        assert_eq!(shown, proven);
    }

    #[test]
    fn a_signature_checked_elsewhere_counts_only_for_its_own_credential() {
        use InvalidReason as I;
        let f = f();
        let good = driving_licence(1).sign(&f.key).expect("sign");
        let other = driving_licence(2).sign(&f.key).expect("sign");
        let key = f.key.public();
        let un = |s: &crate::SignedCredential| {
            UnverifiedCredential::from_qr(&s.qr_text).expect("decodes")
        };
        let input = un(&good).signature_input(&key).expect("input");
        let run = |u: UnverifiedCredential, check: SignatureCheck| {
            verify_with(&f.net, u, LedgerFacts::Offline, &ctx(T + 1, None), check).kind
        };
        // The batch's answer is taken for the credential it was computed over.
        assert_eq!(
            run(
                un(&good),
                SignatureCheck::Checked(Box::new(input.clone()), true)
            ),
            Verdict::Valid
        );
        assert_eq!(
            run(
                un(&good),
                SignatureCheck::Checked(Box::new(input.clone()), false)
            ),
            Verdict::Invalid(I::BadSignature)
        );
        // An answer about another credential is ignored: the signature is checked here.
        assert_eq!(
            run(
                un(&other),
                SignatureCheck::Checked(Box::new(input.clone()), false)
            ),
            Verdict::Valid
        );
        let mut cose = other.cose.clone();
        let last = cose.len() - 1;
        cose[last] ^= 1; // the signature's last byte
        let forged = UnverifiedCredential::from_cose(&cose).expect("decodes");
        assert_eq!(
            run(forged, SignatureCheck::Checked(Box::new(input), true)),
            Verdict::Invalid(I::BadSignature)
        );
        // No input for a key the kid does not name.
        assert!(un(&good)
            .signature_input(&SecretKey::generate().public())
            .is_none());
    }

    #[test]
    fn offline_verdicts() {
        use InvalidReason as I;
        let f = f();
        let k = f.key.clone();
        let off = |_| LedgerFacts::Offline;
        check(&f, &k, off, ctx(T + 1, None), Verdict::Valid);
        check(
            &f,
            &k,
            off,
            ctx(T - 1, None),
            Verdict::Invalid(I::NotYetValid),
        );
        check(
            &f,
            &k,
            off,
            ctx(T + 7 * 365 * 86400, None),
            Verdict::Invalid(I::Expired),
        );
        check(&f, &k, off, ctx(T + 1, Some("440000")), Verdict::Valid);
        check(&f, &k, off, ctx(T + 1, Some("310000")), Verdict::Valid);
        check(
            &f,
            &SecretKey::from_seed(&[99; 32]),
            off,
            ctx(T + 1, None),
            Verdict::Invalid(I::UnknownIssuer),
        );
        // gd.market's genesis key signing a gd.transport credential.
        check(
            &f,
            &SecretKey::from_seed(&[2; 32]),
            off,
            ctx(T + 1, None),
            Verdict::Invalid(I::IssuerMismatch),
        );
    }

    #[test]
    fn recognition_policy() {
        let f = f();
        // A gd.market food licence presented in Shanghai: no rule accepts food from 440000.
        let key = SecretKey::from_seed(&[2; 32]);
        let mut c = driving_licence(1);
        c.issuer = DepartmentId::parse("gd.market").expect("id");
        c.licence_id = LicenceId::parse("gd.market:food:1").expect("id");
        let signed = c.sign(&key).expect("sign");
        let r = verify_text(
            &f.net,
            &signed.qr_text,
            &|_| LedgerFacts::Offline,
            &ctx(T + 1, Some("310000")),
        );
        assert_eq!(r.kind, Verdict::Invalid(InvalidReason::NotRecognised));
        assert!(
            r.message.contains("recognition policy of region 310000"),
            "{}",
            r.message
        );
        let r = verify_text(
            &f.net,
            &signed.qr_text,
            &|_| LedgerFacts::Offline,
            &ctx(T + 1, Some("440000")),
        );
        assert_eq!(r.kind, Verdict::Valid);
    }

    #[test]
    fn online_verdicts() {
        use InvalidReason as I;
        use UndeterminedReason as U;
        let f = f();
        let k = f.key.clone();
        let now = ctx(T + 1, Some("310000"));
        let late_ms = ((T + 3600) * 1000) as u64;
        let early_ms = (T * 1000) as u64;
        check(
            &f,
            &k,
            |c| {
                online(
                    Some(state(c, LicenceStatus::Active)),
                    Some(head(5, late_ms)),
                    None,
                    false,
                )
            },
            now.clone(),
            Verdict::Valid,
        );
        check(
            &f,
            &k,
            |c| {
                online(
                    Some(state(c, LicenceStatus::Suspended(SuspendReason::Penalty))),
                    Some(head(5, late_ms)),
                    None,
                    false,
                )
            },
            now.clone(),
            Verdict::Invalid(I::Suspended),
        );
        check(
            &f,
            &k,
            |c| {
                online(
                    Some(state(c, LicenceStatus::Revoked(RevokeReason::Penalty))),
                    Some(head(5, late_ms)),
                    None,
                    false,
                )
            },
            now.clone(),
            Verdict::Invalid(I::Revoked),
        );
        check(
            &f,
            &k,
            |_| {
                online(
                    Some(state(Hash32::digest(b"other"), LicenceStatus::Active)),
                    Some(head(5, late_ms)),
                    None,
                    false,
                )
            },
            now.clone(),
            Verdict::Invalid(I::CommitmentMismatch),
        );
        check(
            &f,
            &k,
            |_| online(None, Some(head(5, late_ms)), None, false),
            now.clone(),
            Verdict::Invalid(I::NotOnLedger),
        );
        check(
            &f,
            &k,
            |_| online(None, Some(head(5, early_ms)), None, false),
            now.clone(),
            Verdict::Undetermined(U::NotYetSeen),
        );
        check(
            &f,
            &k,
            |_| online(None, None, None, false),
            now.clone(),
            Verdict::Undetermined(U::ChainUnknown),
        );
        check(
            &f,
            &k,
            |c| {
                online(
                    Some(state(c, LicenceStatus::Active)),
                    Some(head(5, late_ms)),
                    Some(4),
                    false,
                )
            },
            now.clone(),
            Verdict::Undetermined(U::Equivocation),
        );
        // A licence last changed below the fork is still decided.
        check(
            &f,
            &k,
            |c| {
                online(
                    Some(state(c, LicenceStatus::Active)),
                    Some(head(9, late_ms)),
                    Some(8),
                    false,
                )
            },
            now.clone(),
            Verdict::Valid,
        );
        check(
            &f,
            &k,
            |c| {
                online(
                    Some(state(c, LicenceStatus::Active)),
                    Some(head(5, late_ms)),
                    None,
                    true,
                )
            },
            now.clone(),
            Verdict::Undetermined(U::Stale),
        );
        // Revocation beats expiry: the clerk learns the stronger fact.
        check(
            &f,
            &k,
            |c| {
                online(
                    Some(state(c, LicenceStatus::Revoked(RevokeReason::Withdrawn))),
                    Some(head(5, late_ms)),
                    None,
                    false,
                )
            },
            ctx(T + 7 * 365 * 86400, None),
            Verdict::Invalid(I::Revoked),
        );
    }

    #[test]
    fn bad_signature_and_garbage() {
        let f = f();
        let r = verify_text(&f.net, "hello", &|_| LedgerFacts::Offline, &ctx(T, None));
        assert_eq!(
            r.kind,
            Verdict::Undetermined(UndeterminedReason::Undecodable)
        );
        assert_eq!(r.verdict, "undetermined");
        // Re-sign the same claims with the right kid but a different key's signature bytes.
        let signed = driving_licence(1).sign(&f.key).expect("sign");
        let mut cose = crate::credential::qr_to_cose(&signed.qr_text).expect("cose");
        let n = cose.len();
        cose[n - 1] ^= 1;
        let text = crate::credential::cose_to_qr(&cose);
        let r = verify_text(&f.net, &text, &|_| LedgerFacts::Offline, &ctx(T + 1, None));
        assert_eq!(r.kind, Verdict::Invalid(InvalidReason::BadSignature));
        assert!(r.licence.is_none());
    }

    #[test]
    fn json_shape() {
        let f = f();
        let signed = driving_licence(1).sign(&f.key).expect("sign");
        let r = verify_text(
            &f.net,
            &signed.qr_text,
            &|_| LedgerFacts::Offline,
            &ctx(T + 1, None),
        );
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["verdict"], "valid");
        assert_eq!(v["licence"]["holder"]["name"], "张三");
        assert_eq!(v["licence"]["type_name"], "机动车驾驶证");
        assert_eq!(v["offline"], true);
    }
}
