//! The department routes' bodies (issue, batch, suspend, reinstate, revoke, renew,
//! reissue, amend, transfer, accept a transfer, annul) and the public licence status and
//! history.
//!
//! Request fields that the node must check itself and report per row of a batch (type
//! code, times) stay text here: a bad one fails its own row with a clear code
//! (`bad_licence_type`, `bad_time`) instead of the whole request.

use std::collections::BTreeMap;

use huren_core::ledger::{AnnulReason, RecordKind};
use huren_core::lifecycle::StandingAt;
use huren_core::{
    DepartmentId, Hash32, LicenceId, LicenceStatus, LicenceType, RegionCode, RevokeReason,
    SuspendReason,
};
use serde::{Deserialize, Serialize};

use crate::error::ErrorDetail;

/// `POST /v1/licences`, and each entry of a batch. Server-owned fields (licence id,
/// serial, issue time, officer) cannot be set: unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// Licence type code from genesis, e.g. `mvdl`.
    pub licence_type: String,
    /// Holder fields; genesis names the required ones for each type.
    pub holder: BTreeMap<String, String>,
    /// Further licence fields (national 证照标识, scope…).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Validity in days from `valid_from` (default: the type's maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_days: Option<u32>,
    /// RFC 3339; default now. For importing licences issued before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    /// RFC 3339; overrides `valid_days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

/// `POST /v1/licences:batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub licences: Vec<IssueRequest>,
}

/// Where a record landed: the department's chain, the block's height and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockRef {
    pub department: DepartmentId,
    pub height: u64,
    pub hash: Hash32,
}

/// `201` to `POST /v1/licences`: the licence is in a signed block flushed to disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueAnswer {
    pub licence_id: LicenceId,
    /// The credential as QR text (`HZ1:…`): give it to the holder.
    pub qr: String,
    /// Path of the QR as PNG (department token required).
    pub png: String,
    /// SHA-256 of the credential, as recorded on the ledger.
    pub commitment: Hash32,
    /// RFC 3339.
    pub valid_from: String,
    /// RFC 3339.
    pub valid_until: String,
    pub block: BlockRef,
}

/// One entry of a batch answer: issued (`ok`, with its id and QR) or refused (`error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchItem {
    /// Position of the entry in the request, from 0.
    pub index: usize,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence_id: Option<LicenceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// What one batch entry came to, read from a `BatchItem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome<'a> {
    /// Issued; the QR text may be left out (it can be fetched again as `qr.png`).
    Issued {
        licence_id: &'a LicenceId,
        qr: Option<&'a str>,
    },
    Refused(&'a ErrorDetail),
}

impl BatchItem {
    pub fn issued(index: usize, licence_id: LicenceId, qr: Option<String>) -> Self {
        Self {
            index,
            ok: true,
            licence_id: Some(licence_id),
            qr,
            error: None,
        }
    }

    pub fn refused(index: usize, error: ErrorDetail) -> Self {
        Self {
            index,
            ok: false,
            licence_id: None,
            qr: None,
            error: Some(error),
        }
    }

    /// The entry's outcome, or `None` when the fields contradict each other (`ok`
    /// without a licence id, or a refusal without an error).
    pub fn outcome(&self) -> Option<BatchOutcome<'_>> {
        match (self.ok, &self.licence_id, &self.error) {
            (true, Some(licence_id), None) => Some(BatchOutcome::Issued {
                licence_id,
                qr: self.qr.as_deref(),
            }),
            (false, None, Some(e)) => Some(BatchOutcome::Refused(e)),
            _ => None,
        }
    }
}

/// `200` to `POST /v1/licences:batch`: one result per entry, each ok or with its error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchAnswer {
    pub results: Vec<BatchItem>,
}

/// `POST /v1/licences/{id}/suspend` (暂扣).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SuspendRequest {
    pub reason: SuspendReason,
    /// RFC 3339: the suspension ends by itself then (暂扣六个月), without a record.
    /// Absent: until reinstated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// `POST /v1/licences/{id}/renew` (延续): a new period from now and a new credential;
/// the old one is superseded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// Days from now (default: the type's maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_days: Option<u32>,
    /// RFC 3339; overrides `valid_days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

/// One licence of `POST /v1/licences:renew` (bulk renewals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenewItem {
    pub licence_id: String,
    #[serde(flatten)]
    pub renew: RenewRequest,
}

/// `POST /v1/licences:renew`: many renewals in one block; one result each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenewBatchRequest {
    pub licences: Vec<RenewItem>,
}

/// `POST /v1/licences/{id}/reissue` (补领 / 换证): an empty object. The same facts in a
/// new credential; the lost or damaged one is superseded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReissueRequest {}

/// `POST /v1/licences/{id}/amend` (变更 / 更正): the holder and licence fields that
/// change; the others stay. An empty licence field value removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AmendRequest {
    #[serde(default)]
    pub holder: BTreeMap<String, String>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// `POST /v1/licences/{id}/transfer` (转出): to a department of another region, granted
/// the type. Final for this id; the receiving department issues it anew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub to: DepartmentId,
}

/// `POST /v1/transfers` (转入): the holder's current QR of the licence transferred to
/// this department; it is issued here under a new id naming it as its origin, with the
/// same holder and licence fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AcceptTransferRequest {
    /// The QR text (`HZ1:…`) the origin department issued.
    pub qr: String,
    /// Days from now (default: what is left of the origin's validity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_days: Option<u32>,
    /// RFC 3339; overrides `valid_days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

/// `POST /v1/licences/{id}/annul`: the revocation or suspension the licence stands on
/// was overturned (复议 / 诉讼 / 自行纠错); the licence is active again. The annulled
/// record stays on the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AnnulRequest {
    pub reason: AnnulReason,
}

/// A record's place: block height on the chain that carried it, and index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordRef {
    pub height: u64,
    pub index: u32,
}

/// One record of a licence's history: what happened, when and where; no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    pub kind: RecordKind,
    /// The chain that carried it (the licence's department, or its successor's).
    pub department: DepartmentId,
    pub height: u64,
    pub index: u32,
    /// The block's time, RFC 3339.
    pub time: String,
    /// The suspend, revoke or annul reason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A timed suspension's end, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Issue and renew: the validity, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// A transfer out: the receiving department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DepartmentId>,
    /// A transfer in: the licence it continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<LicenceId>,
    /// An annulment: the record it annuls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annuls: Option<RecordRef>,
    /// Annulled later by an annul record: it never took effect.
    #[serde(default)]
    pub annulled: bool,
}

/// Where a transferred licence went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferView {
    pub to: DepartmentId,
    /// The receiving department's name, as genesis gives it.
    pub to_name: String,
    pub to_region: Option<RegionCode>,
    pub to_region_name: String,
    /// Its new id there, once the receiving department recorded it.
    pub accepted_as: Option<LicenceId>,
}

/// A licence's story: its records, where it came from and where it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lineage {
    pub licence_id: LicenceId,
    /// Every record of the licence, oldest first (at most the node's
    /// `history_records_max`).
    pub history: Vec<HistoryEntry>,
    /// Transferred in: the licence of another region it continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<LicenceId>,
    /// Transferred out: where it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferView>,
}

/// `GET /v1/licences/{id}/history`.
pub type HistoryAnswer = Lineage;

/// Where a licence stood at the moment `?at=` asked about, by its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AtAnswer {
    /// RFC 3339, as asked.
    pub at: String,
    pub standing: StandingAt,
    /// Valid at that moment: issued, in force, within its validity.
    pub valid: bool,
}

/// `POST /v1/licences/{id}/reinstate` (发还): an empty object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReinstateRequest {}

/// `POST /v1/licences/{id}/revoke`: `withdrawn` (撤销), `cancelled` (注销) or `penalty`
/// (吊销). Final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub reason: RevokeReason,
}

/// `200` to suspend, reinstate and revoke: the licence's new status and its block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LifecycleAnswer {
    pub licence_id: LicenceId,
    pub status: LicenceStatus,
    pub block: BlockRef,
}

/// `GET /v1/licences/{id}`: where a licence stands on this node's ledger. No personal
/// data: the ledger holds none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusAnswer {
    pub licence_id: LicenceId,
    pub department: DepartmentId,
    pub licence_type: LicenceType,
    /// On the ledger: active, suspended or revoked (with the reason).
    pub status: LicenceStatus,
    /// Where it stands now, by the node's clock: `active`, `not_yet_valid`, `expired`
    /// (失效: its validity has passed; no record says so), `suspended` or `revoked`.
    pub state: huren_core::validate::LicencePhase,
    /// RFC 3339.
    pub valid_from: String,
    /// RFC 3339.
    pub valid_until: String,
    /// SHA-256 of the credential the holder carries.
    pub commitment: Hash32,
    /// Height of the block that issued it.
    pub issued_height: u64,
    /// Height of the block that last changed it.
    pub updated_height: u64,
    /// A timed suspension's end, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_until: Option<String>,
    /// With `?at=`: where it stood then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<AtAnswer>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde_json::json;

    #[test]
    fn status_is_the_tagged_object_the_node_sends() {
        let a = LifecycleAnswer {
            licence_id: LicenceId::parse("gd.transport:mvdl:1").expect("id"),
            status: LicenceStatus::Suspended(SuspendReason::Penalty),
            block: BlockRef {
                department: DepartmentId::parse("gd.transport").expect("id"),
                height: 3,
                hash: Hash32::digest(b"b"),
            },
        };
        let v = serde_json::to_value(&a).expect("json");
        assert_eq!(v["licence_id"], "gd.transport:mvdl:00000001");
        assert_eq!(
            v["status"],
            json!({"status": "suspended", "reason": "penalty"})
        );
        assert_eq!(
            serde_json::from_value::<LifecycleAnswer>(v).expect("parse"),
            a
        );
    }

    #[test]
    fn requests_refuse_unknown_fields_and_answers_accept_them() {
        let r = serde_json::from_value::<IssueRequest>(json!({
            "licence_type": "mvdl", "holder": {}, "officer": "me"
        }));
        assert!(r.is_err());
        let item: BatchItem = serde_json::from_value(json!({
            "index": 0, "ok": true, "licence_id": "gd.transport:mvdl:1", "later": 1
        }))
        .expect("parse");
        assert!(matches!(
            item.outcome(),
            Some(BatchOutcome::Issued { qr: None, .. })
        ));
    }

    #[test]
    fn contradictory_batch_items_have_no_outcome() {
        let e = ErrorDetail::new(ErrorCode::InvalidLicence, "x");
        let mut item = BatchItem::refused(0, e.clone());
        assert_eq!(item.outcome(), Some(BatchOutcome::Refused(&e)));
        item.ok = true;
        assert_eq!(item.outcome(), None);
        let mut item = BatchItem::issued(1, LicenceId::parse("a.b:c:1").expect("id"), None);
        item.licence_id = None;
        assert_eq!(item.outcome(), None);
    }
}
