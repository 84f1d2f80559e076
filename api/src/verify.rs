//! The verify report: the answer to "is this licence good here and now?", as
//! `POST /v1/verify` sends it and `huren verify` (online or offline) prints it.
//!
//! The verdict itself is decided in `huren_core::verify`; this module only turns a
//! `Decision` into what a clerk reads: the verdict and its reason, a sentence in English
//! and Chinese, the licence as the credential discloses it (only when its origin is
//! proven) and where it stands on the ledger.

use std::collections::BTreeMap;

use huren_core::genesis::FieldLabel;
use huren_core::verify::{labels, rfc3339, Decision, Family, Reason};
use huren_core::{
    Credential, DepartmentId, Hash32, LicenceId, LicenceStatus, LicenceType, Network, RegionCode,
    Verdict,
};
use serde::{Deserialize, Serialize};

/// `POST /v1/verify` with a JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The QR text, `HZ1:…` (surrounding whitespace is ignored).
    pub qr: String,
}

/// `POST /v1/verify` as `multipart/form-data`: a photo of the QR in a part named `image`
/// (PNG or JPEG). Only the form's shape, for the OpenAPI document: the node reads the
/// part itself, bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyImage {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Binary))]
    pub image: Vec<u8>,
}

/// The licence as shown to the clerk: what the credential discloses, with genesis names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicenceView {
    pub id: LicenceId,
    pub licence_type: LicenceType,
    /// The type's name in genesis (Chinese).
    pub type_name: String,
    pub type_name_en: String,
    pub issuer: DepartmentId,
    pub issuer_name: String,
    pub region: RegionCode,
    pub region_name: String,
    /// The holder fields the credential discloses, for the clerk to compare with the person.
    pub holder: BTreeMap<String, String>,
    /// How to label the holder fields (中文 / English), from the licence type in genesis;
    /// a field without one is shown by its name.
    #[serde(default)]
    pub labels: BTreeMap<String, FieldLabel>,
    pub fields: BTreeMap<String, String>,
    /// RFC 3339.
    pub issued_at: String,
    /// RFC 3339.
    pub valid_from: String,
    /// RFC 3339.
    pub valid_until: String,
}

impl LicenceView {
    pub fn new(net: &Network, c: &Credential) -> Self {
        let t = net.licence_type(c.licence_type());
        let d = net.department(&c.issuer);
        Self {
            id: c.licence_id.clone(),
            licence_type: c.licence_type().clone(),
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
            labels: t.map(|t| t.labels.clone()).unwrap_or_default(),
            fields: c.fields.clone(),
            issued_at: rfc3339(c.issued_at),
            valid_from: rfc3339(c.not_before),
            valid_until: rfc3339(c.expires_at),
        }
    }
}

/// Where the licence stands on the ledger (no personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerView {
    pub status: LicenceStatus,
    pub issued_height: u64,
    pub updated_height: u64,
    pub commitment: Hash32,
}

/// The verify report. `verdict` and `reason` always agree (`Report::kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    /// `valid`, `invalid` or `undetermined`: never conflated.
    pub verdict: Family,
    /// Why, for invalid and undetermined; `null` for valid.
    pub reason: Option<Reason>,
    /// The verdict in English, with the detail.
    pub message: String,
    /// The verdict in Chinese, as a clerk reads it.
    pub message_zh: String,
    /// Verified offline: signature, validity and recognition only; revocation not checked.
    pub offline: bool,
    /// RFC 3339.
    pub checked_at: String,
    /// The region whose recognition policy was applied; `null` when none was.
    pub verifier_region: Option<RegionCode>,
    /// The licence, only when the issuer's signature (or its commitment on the ledger)
    /// proves the credential's origin.
    pub licence: Option<LicenceView>,
    /// The licence on this node's ledger, when it is there.
    pub ledger: Option<LedgerView>,
    /// The issuer's checkpoint the answer rests on (docs/checkpoints.md); `null` when
    /// none is held (offline without a bundle, or before the first one).
    #[serde(default)]
    pub as_of: Option<crate::checkpoints::AsOf>,
    /// With `?proof=1`: the proof of the answer (docs/checkpoints.md); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<crate::checkpoints::VerifyProof>,
    /// With `?proof=1`, when the node cannot prove its answer: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_unavailable: Option<String>,
    /// Online: the licence's story on the ledger (its records, where it came from and
    /// where it went), for the window to show where it stands now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<crate::licences::Lineage>,
    /// With `?at=`: where the licence stood at that moment, by its history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<crate::licences::AtAnswer>,
}

impl Report {
    pub fn new(net: &Network, d: &Decision) -> Self {
        let (en, zh) = labels(d.verdict);
        let message = if d.detail.is_empty() {
            en.to_owned()
        } else {
            format!("{en}: {}", d.detail)
        };
        Self {
            verdict: d.verdict.family(),
            reason: d.verdict.reason(),
            message,
            message_zh: zh.to_owned(),
            offline: d.offline,
            checked_at: rfc3339(d.checked_at),
            verifier_region: d.verifier_region.clone(),
            licence: d.credential().map(|c| LicenceView::new(net, c)),
            ledger: d.ledger.map(|s| LedgerView {
                status: s.status,
                issued_height: s.issued_height,
                updated_height: s.updated_height,
                commitment: s.commitment,
            }),
            as_of: None,
            proof: None,
            proof_unavailable: None,
            lineage: None,
            at: None,
        }
    }

    /// The verdict, or `None` when `verdict` and `reason` contradict each other (a report
    /// that did not come from `Report::new`).
    pub fn kind(&self) -> Option<Verdict> {
        Verdict::from_parts(self.verdict, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huren_core::verify::{InvalidReason, UndeterminedReason};
    use serde_json::json;

    #[test]
    fn the_verdict_fields_keep_their_wire_names() {
        let r: Report = serde_json::from_value(json!({
            "verdict": "invalid", "reason": "revoked", "message": "Invalid: revoked",
            "message_zh": "无效", "offline": false, "checked_at": "2026-01-01T00:00:00Z",
            "verifier_region": "310000", "licence": null, "ledger": {
                "status": {"status": "revoked", "reason": "penalty"},
                "issued_height": 1, "updated_height": 2,
                "commitment": "00".repeat(32)
            }
        }))
        .expect("parse");
        assert_eq!(r.kind(), Some(Verdict::Invalid(InvalidReason::Revoked)));
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["verdict"], "invalid");
        assert_eq!(v["reason"], "revoked");

        let mut odd = r.clone();
        odd.reason = Some(Reason::Undetermined(UndeterminedReason::Stale));
        assert_eq!(odd.kind(), None);
    }
}
