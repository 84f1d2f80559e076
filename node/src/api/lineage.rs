//! A licence's story on this node's ledger: its records (the history index), where it
//! came from and where it went, and where it stood at a moment (`?at=`). What the status,
//! history and verify routes add to their answers; no personal data (the ledger has none).

use huren_api::{AtAnswer, ErrorCode, HistoryEntry, Lineage, RecordRef, TransferView};
use huren_core::ledger::Record;
use huren_core::lifecycle::{as_of, Event};
use huren_core::validate::LicenceState;
use huren_core::verify::{parse_rfc3339, rfc3339};
use huren_core::{ChainView, Hash32, LicenceId};

use super::error::ApiError;
use super::AppState;

/// A licence's records as kept: each with the chain that carried it, oldest first.
pub(crate) struct Story {
    pub(crate) chains: Vec<huren_core::DepartmentId>,
    pub(crate) events: Vec<Event>,
}

/// The licence's records with where and when each was recorded, oldest first.
pub(crate) fn events(state: &AppState, id: &LicenceId) -> Result<Story, ApiError> {
    let (chains, events) = state
        .store
        .history_events(id, state.limits.history_records_max)
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|(p, e)| (p.department, e))
        .unzip();
    Ok(Story { chains, events })
}

/// `?at=RFC3339`, read: unix seconds.
pub(crate) fn parse_at(at: &str) -> Result<i64, ApiError> {
    parse_rfc3339(at).ok_or_else(|| {
        ApiError::new(
            ErrorCode::BadQuery,
            format!("at={at:?} is not RFC 3339, e.g. 2026-03-01T00:00:00Z"),
        )
    })
}

/// Where the licence stood at `at` (unix seconds), by its history.
pub(crate) fn at_answer(events: &[Event], at: i64) -> AtAnswer {
    let standing = as_of(events, at);
    AtAnswer {
        at: rfc3339(at),
        valid: standing.is_valid(),
        standing,
    }
}

/// One record as the history shows it.
fn entry(e: &Event, department: &huren_core::DepartmentId, annulled: bool) -> HistoryEntry {
    let mut h = HistoryEntry {
        kind: e.record.record_kind(),
        department: department.clone(),
        height: e.height,
        index: e.index,
        time: rfc3339((e.time_ms / 1000) as i64),
        reason: None,
        until: None,
        valid_from: None,
        valid_until: None,
        to: None,
        origin: None,
        annuls: None,
        annulled,
    };
    let code = |v: serde_json::Value| v.as_str().map(str::to_owned);
    match &e.record {
        Record::Issue(i) => {
            h.valid_from = Some(rfc3339(i.valid_from));
            h.valid_until = Some(rfc3339(i.valid_until));
            h.origin = i.origin.clone();
        }
        Record::Renew {
            valid_from,
            valid_until,
            ..
        } => {
            h.valid_from = Some(rfc3339(*valid_from));
            h.valid_until = Some(rfc3339(*valid_until));
        }
        Record::Suspend { reason, until, .. } => {
            h.reason = serde_json::to_value(reason).ok().and_then(code);
            h.until = until.map(rfc3339);
        }
        Record::Revoke { reason, .. } => {
            h.reason = serde_json::to_value(reason).ok().and_then(code);
        }
        Record::TransferOut { to, .. } => h.to = Some(to.clone()),
        Record::Annul {
            height,
            index,
            reason,
            ..
        } => {
            h.reason = serde_json::to_value(reason).ok().and_then(code);
            h.annuls = Some(RecordRef {
                height: *height,
                index: *index,
            });
        }
        Record::Reinstate { .. } | Record::Reissue { .. } | Record::Amend { .. } => {}
    }
    h
}

/// The licence's story: every record, its origin (a transfer in) and where it went (a
/// transfer out), as this node holds them.
pub(crate) fn lineage(state: &AppState, id: &LicenceId, story: &Story) -> Lineage {
    let events = &story.events;
    let history = events
        .iter()
        .zip(&story.chains)
        .map(|(e, dept)| {
            let annulled = events.iter().any(|a| {
                matches!(a.record, Record::Annul { height, index, .. } if height == e.height && index == e.index)
            });
            entry(e, dept, annulled)
        })
        .collect();
    let origin = events.iter().find_map(|e| match &e.record {
        Record::Issue(i) => i.origin.clone(),
        _ => None,
    });
    let net = state.net();
    let transfer = state.store.transfer(id).map(|t| {
        let dept = net.department(&t.to);
        let region = dept.map(|d| d.region.clone());
        TransferView {
            to_name: dept.map_or_else(String::new, |d| d.name.clone()),
            to_region_name: region
                .as_ref()
                .and_then(|r| net.region(r))
                .map_or_else(String::new, |r| r.name.clone()),
            to_region: region,
            to: t.to,
            accepted_as: t.accepted_as,
        }
    });
    Lineage {
        licence_id: id.clone(),
        history,
        origin,
        transfer,
    }
}

/// The kind of record that brought in the credential in force, when the presented one
/// (`presented`) is not it but an earlier record of the licence carried it: the card was
/// superseded. `events` is the licence's history (read only when the commitments differ).
pub(crate) fn superseded_by(
    presented: Hash32,
    current: Option<&LicenceState>,
    events: &[Event],
) -> Option<huren_core::ledger::RecordKind> {
    let s = current.filter(|s| s.commitment != presented)?;
    let carried_before = events
        .iter()
        .any(|e| e.record.commitment() == Some(presented));
    let now_by = events
        .iter()
        .rev()
        .find(|e| e.record.commitment() == Some(s.commitment))
        .map(|e| e.record.record_kind());
    carried_before.then_some(now_by).flatten()
}
