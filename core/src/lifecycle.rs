//! The whole life of a licence (docs/lifecycle.md): which record may follow which, and
//! where a licence stood at a moment, read from its history.
//!
//! `TRANSITIONS` is the one table of allowed and refused transitions: block validation
//! (`validate::next_state`) looks every record up in it before any other rule, and its
//! tests walk it row by row. `as_of` folds a licence's history (its records with their
//! block times) into its standing at a moment, the answer to "was it valid on that day?".
//! Nothing here does I/O or reads a clock.

use serde::{Deserialize, Serialize};

use crate::ledger::{Record, RecordKind, RevokeReason};
use crate::validate::LicenceStatus;

/// Where a licence stands on the ledger when a record applies to it, with the clock of
/// the record's block applied to a timed suspension (one past its end counts as active).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Not on the ledger.
    Unknown,
    Active,
    Suspended,
    Revoked,
    Transferred,
}

impl Standing {
    pub const ALL: [Standing; 5] = [
        Standing::Unknown,
        Standing::Active,
        Standing::Suspended,
        Standing::Revoked,
        Standing::Transferred,
    ];
}

/// Why the table refuses a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Only an issue may name a licence the ledger does not hold.
    UnknownLicence,
    /// An issue of a licence id already on the ledger.
    DuplicateIssue,
    /// Revocation is final (except by annulment).
    AlreadyRevoked,
    /// Transfer out is final: the licence lives on under its new id.
    AlreadyTransferred,
    /// The record does not apply in that standing (reinstate an active licence…).
    WrongStatus,
}

use RecordKind as K;
use Refusal as R;
use Standing as S;

/// Every (record kind, standing) pair once: the standing the licence moves to, or why the
/// record is refused. Renew, reissue and amend keep the standing; annul undoes a
/// revocation or suspension. Further rules (grants, validity, the transfer's other side,
/// which record an annulment names) apply after the table allows a row.
#[rustfmt::skip]
pub const TRANSITIONS: [(RecordKind, Standing, Result<Standing, Refusal>); 50] = [
    (K::Issue,       S::Unknown,     Ok(S::Active)),
    (K::Issue,       S::Active,      Err(R::DuplicateIssue)),
    (K::Issue,       S::Suspended,   Err(R::DuplicateIssue)),
    (K::Issue,       S::Revoked,     Err(R::DuplicateIssue)),
    (K::Issue,       S::Transferred, Err(R::DuplicateIssue)),
    (K::TransferIn,  S::Unknown,     Ok(S::Active)),
    (K::TransferIn,  S::Active,      Err(R::DuplicateIssue)),
    (K::TransferIn,  S::Suspended,   Err(R::DuplicateIssue)),
    (K::TransferIn,  S::Revoked,     Err(R::DuplicateIssue)),
    (K::TransferIn,  S::Transferred, Err(R::DuplicateIssue)),
    (K::Suspend,     S::Unknown,     Err(R::UnknownLicence)),
    (K::Suspend,     S::Active,      Ok(S::Suspended)),
    (K::Suspend,     S::Suspended,   Err(R::WrongStatus)),
    (K::Suspend,     S::Revoked,     Err(R::AlreadyRevoked)),
    (K::Suspend,     S::Transferred, Err(R::AlreadyTransferred)),
    (K::Reinstate,   S::Unknown,     Err(R::UnknownLicence)),
    (K::Reinstate,   S::Active,      Err(R::WrongStatus)),
    (K::Reinstate,   S::Suspended,   Ok(S::Active)),
    (K::Reinstate,   S::Revoked,     Err(R::AlreadyRevoked)),
    (K::Reinstate,   S::Transferred, Err(R::AlreadyTransferred)),
    (K::Revoke,      S::Unknown,     Err(R::UnknownLicence)),
    (K::Revoke,      S::Active,      Ok(S::Revoked)),
    (K::Revoke,      S::Suspended,   Ok(S::Revoked)),
    (K::Revoke,      S::Revoked,     Err(R::AlreadyRevoked)),
    (K::Revoke,      S::Transferred, Err(R::AlreadyTransferred)),
    (K::Renew,       S::Unknown,     Err(R::UnknownLicence)),
    (K::Renew,       S::Active,      Ok(S::Active)),
    (K::Renew,       S::Suspended,   Err(R::WrongStatus)),
    (K::Renew,       S::Revoked,     Err(R::AlreadyRevoked)),
    (K::Renew,       S::Transferred, Err(R::AlreadyTransferred)),
    (K::Reissue,     S::Unknown,     Err(R::UnknownLicence)),
    (K::Reissue,     S::Active,      Ok(S::Active)),
    (K::Reissue,     S::Suspended,   Ok(S::Suspended)),
    (K::Reissue,     S::Revoked,     Err(R::AlreadyRevoked)),
    (K::Reissue,     S::Transferred, Err(R::AlreadyTransferred)),
    (K::Amend,       S::Unknown,     Err(R::UnknownLicence)),
    (K::Amend,       S::Active,      Ok(S::Active)),
    (K::Amend,       S::Suspended,   Ok(S::Suspended)),
    (K::Amend,       S::Revoked,     Err(R::AlreadyRevoked)),
    (K::Amend,       S::Transferred, Err(R::AlreadyTransferred)),
    (K::TransferOut, S::Unknown,     Err(R::UnknownLicence)),
    (K::TransferOut, S::Active,      Ok(S::Transferred)),
    (K::TransferOut, S::Suspended,   Err(R::WrongStatus)),
    (K::TransferOut, S::Revoked,     Err(R::AlreadyRevoked)),
    (K::TransferOut, S::Transferred, Err(R::AlreadyTransferred)),
    (K::Annul,       S::Unknown,     Err(R::UnknownLicence)),
    (K::Annul,       S::Active,      Err(R::WrongStatus)),
    (K::Annul,       S::Suspended,   Ok(S::Active)),
    (K::Annul,       S::Revoked,     Ok(S::Active)),
    (K::Annul,       S::Transferred, Err(R::AlreadyTransferred)),
];

/// The table's row for `kind` in `standing`.
pub fn transition(kind: RecordKind, standing: Standing) -> Result<Standing, Refusal> {
    TRANSITIONS
        .iter()
        .find(|(k, s, _)| *k == kind && *s == standing)
        .map(|(_, _, to)| *to)
        .expect("TRANSITIONS has a row for every kind and standing (tested)")
}

/// One record of a licence's history: what `as_of` reads. The node builds these from
/// its history index; a verifier may build them from blocks it checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unix milliseconds of the block that carried it.
    pub time_ms: u64,
    /// The block's height on the chain that carried it, and the record's index there:
    /// what an annulment names.
    pub height: u64,
    pub index: u32,
    pub record: Record,
}

/// Where a licence stood at a moment, by its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StandingAt {
    /// Not issued yet at that moment.
    NotIssued,
    /// Issued and in force: active, within its validity.
    Valid,
    /// Before its validity began.
    NotYetValid,
    /// Its validity had passed (失效).
    Expired,
    Suspended,
    /// Revoked before that moment as a penalty (吊销) or cancelled (注销): valid until
    /// then, not after.
    Revoked,
    /// Withdrawn (撤销): void from the start, so never valid on any date.
    Void,
    /// Transferred out before that moment: it lives on under another id.
    Transferred,
}

impl StandingAt {
    pub fn is_valid(self) -> bool {
        self == StandingAt::Valid
    }
}

/// Where the licence with history `events` (in chain order) stood at `at` (unix seconds).
///
/// The law decides how the past reads: a withdrawal (撤销) voids the licence from the
/// start, so it was never valid on any date; a penalty revocation (吊销) or cancellation
/// (注销) ends it from that record on. An annulled revocation or suspension (an
/// overturned decision) is void from the start too: it never took effect. Validity
/// periods come from the issue record and the renewals before `at`; a timed suspension
/// ends at its `until`.
pub fn as_of(events: &[Event], at: i64) -> StandingAt {
    let at_ms = at.saturating_mul(1000);
    let annulled = |e: &Event| {
        events.iter().any(|a| {
            matches!(a.record, Record::Annul { height, index, .. } if height == e.height && index == e.index)
        })
    };
    let withdrawn = events.iter().any(|e| {
        matches!(
            e.record,
            Record::Revoke {
                reason: RevokeReason::Withdrawn,
                ..
            }
        ) && !annulled(e)
    });
    if withdrawn {
        return StandingAt::Void;
    }
    let mut issued = false;
    let mut status = LicenceStatus::Active;
    let mut suspended_until: Option<i64> = None;
    let (mut from, mut until) = (i64::MAX, i64::MIN);
    for e in events {
        if e.time_ms as i64 > at_ms {
            break;
        }
        if annulled(e) {
            continue;
        }
        match &e.record {
            Record::Issue(i) => {
                issued = true;
                (from, until) = (i.valid_from, i.valid_until);
            }
            Record::Renew {
                valid_from,
                valid_until,
                ..
            } => (from, until) = (*valid_from, *valid_until),
            Record::Suspend {
                reason, until: u, ..
            } => {
                status = LicenceStatus::Suspended(*reason);
                suspended_until = *u;
            }
            Record::Reinstate { .. } | Record::Annul { .. } => {
                status = LicenceStatus::Active;
                suspended_until = None;
            }
            Record::Revoke { reason, .. } => status = LicenceStatus::Revoked(*reason),
            Record::TransferOut { .. } => status = LicenceStatus::Transferred,
            Record::Reissue { .. } | Record::Amend { .. } => {}
        }
    }
    if !issued {
        return StandingAt::NotIssued;
    }
    match status {
        LicenceStatus::Revoked(_) => StandingAt::Revoked,
        LicenceStatus::Transferred => StandingAt::Transferred,
        _ if at >= until => StandingAt::Expired,
        _ if at < from => StandingAt::NotYetValid,
        LicenceStatus::Suspended(_) if suspended_until.is_none_or(|u| at < u) => {
            StandingAt::Suspended
        }
        _ => StandingAt::Valid,
    }
}

/// What the ledger says of the credential committed to by `commitment` at `at` (unix
/// seconds), by its licence's history: `None` when it was the licence's credential in
/// force and the licence stood valid then; otherwise the invalid reason and why. The
/// credential's own rules (signature, issuer, period, recognition) are the verifier's:
/// this is the ledger's part of a verdict "as of" a moment.
pub fn verdict_at(
    events: &[Event],
    at: i64,
    commitment: crate::crypto::Hash32,
) -> Option<(crate::verify::InvalidReason, String)> {
    use crate::verify::{rfc3339, InvalidReason as I};
    let at_ms = at.saturating_mul(1000);
    let when = rfc3339(at);
    // The credential in force at `at`: the newest record before it that brought one in.
    let in_force = events
        .iter()
        .filter(|e| e.time_ms as i64 <= at_ms)
        .filter_map(|e| e.record.commitment())
        .next_back();
    if in_force != Some(commitment) {
        let carried = events
            .iter()
            .find(|e| e.record.commitment() == Some(commitment));
        return Some(match carried {
            Some(e) if (e.time_ms as i64) <= at_ms => (
                I::Superseded,
                format!("on {when} a newer credential of the licence was in force"),
            ),
            Some(e) => (
                I::NotOnLedger,
                format!(
                    "this credential was recorded only on {}, after {when}",
                    rfc3339((e.time_ms / 1000) as i64)
                ),
            ),
            None => (
                I::CommitmentMismatch,
                "the ledger records no such credential of this licence".into(),
            ),
        });
    }
    match as_of(events, at) {
        StandingAt::Valid => None,
        StandingAt::NotIssued => Some((I::NotOnLedger, format!("not yet issued on {when}"))),
        StandingAt::NotYetValid => Some((I::NotYetValid, format!("not yet valid on {when}"))),
        StandingAt::Expired => Some((I::Expired, format!("expired before {when}"))),
        StandingAt::Suspended => Some((I::Suspended, format!("suspended on {when}"))),
        StandingAt::Revoked => Some((
            I::Revoked,
            format!("revoked (吊销 or 注销) before {when}: valid until that record"),
        )),
        StandingAt::Void => Some((
            I::Revoked,
            "withdrawn (撤销): void from the start, never valid on any date".into(),
        )),
        StandingAt::Transferred => Some((I::Transferred, format!("transferred out before {when}"))),
    }
}

#[cfg(test)]
mod tests;
