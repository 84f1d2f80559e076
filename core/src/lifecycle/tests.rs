use super::*;
use crate::crypto::{Hash32, KeyId};
use crate::genesis::tests::sample;
use crate::genesis::Network;
use crate::ids::{DepartmentId, LicenceId};
use crate::ledger::tests::{lid, officer};
use crate::ledger::{AnnulReason, Issue, SuspendReason};
use crate::validate::{
    next_state, BlockError, Disposition, LicenceState, MemoryChain, Place, Transfer,
};

const GD: &str = "gd.transport";
const SH: &str = "sh.transport";
/// Block time of the records under test, unix seconds.
const NOW: i64 = 1_760_000_000;

fn net() -> Network {
    Network::from_document(sample().0).expect("genesis")
}

fn dept(d: &str) -> DepartmentId {
    DepartmentId::parse(d).expect("dept")
}

/// A licence of gd.transport valid over [NOW - 100 days, NOW + 100 days), standing as
/// asked, its status set by record 0 of block 4.
fn state(standing: Standing) -> Option<LicenceState> {
    let status = match standing {
        Standing::Unknown => return None,
        Standing::Active => LicenceStatus::Active,
        Standing::Suspended => LicenceStatus::Suspended(SuspendReason::Penalty),
        Standing::Revoked => LicenceStatus::Revoked(RevokeReason::Penalty),
        Standing::Transferred => LicenceStatus::Transferred,
    };
    Some(LicenceState {
        status,
        commitment: Hash32::digest(b"first"),
        valid_from: NOW - 100 * 86_400,
        valid_until: NOW + 100 * 86_400,
        issued_height: 1,
        issued_index: 0,
        updated_height: 4,
        issuer_key: KeyId([1; 8]),
        suspended_until: None,
        status_height: if standing == Standing::Active { 0 } else { 4 },
        status_index: 0,
    })
}

/// A record of `kind` about licence `n` that passes every rule after the table's.
fn record(kind: RecordKind, n: u64) -> Record {
    let licence_id = lid(GD, "mvdl", n);
    let commitment = Hash32::digest(b"second");
    let officer = officer();
    match kind {
        RecordKind::Issue => Record::Issue(Issue {
            licence_id,
            valid_from: NOW,
            valid_until: NOW + 365 * 86_400,
            commitment,
            officer,
            origin: None,
        }),
        // Issued by sh.transport, continuing gd.transport's licence 1.
        RecordKind::TransferIn => Record::Issue(Issue {
            licence_id: lid(SH, "mvdl", n),
            valid_from: NOW,
            valid_until: NOW + 365 * 86_400,
            commitment,
            officer,
            origin: Some(lid(GD, "mvdl", 1)),
        }),
        RecordKind::Suspend => Record::Suspend {
            licence_id,
            reason: SuspendReason::Investigation,
            officer,
            until: Some(NOW + 180 * 86_400),
        },
        RecordKind::Reinstate => Record::Reinstate {
            licence_id,
            officer,
        },
        RecordKind::Revoke => Record::Revoke {
            licence_id,
            reason: RevokeReason::Cancelled,
            officer,
        },
        RecordKind::Renew => Record::Renew {
            licence_id,
            valid_from: NOW,
            valid_until: NOW + 3000 * 86_400,
            commitment,
            officer,
        },
        RecordKind::Reissue => Record::Reissue {
            licence_id,
            commitment,
            officer,
        },
        RecordKind::Amend => Record::Amend {
            licence_id,
            commitment,
            officer,
        },
        RecordKind::TransferOut => Record::TransferOut {
            licence_id,
            to: dept(SH),
            officer,
        },
        RecordKind::Annul => Record::Annul {
            licence_id,
            height: 4,
            index: 0,
            reason: AnnulReason::Court,
            officer,
        },
    }
}

/// Runs `record` in block 9 of the chain it belongs on, at NOW, over `current`, with
/// gd.transport's licence 1 transferred out to sh.transport (not yet accepted).
fn apply(
    net: &Network,
    record: &Record,
    current: Option<LicenceState>,
    version: u32,
    view: &MemoryChain,
) -> Result<LicenceState, BlockError> {
    let department = record.licence_id().department().clone();
    let key = KeyId([2; 8]);
    let place = Place {
        department: &department,
        height: 9,
        time_ms: NOW as u64 * 1000,
        version,
        key: &key,
    };
    next_state(net, &place, 3, record, current, view)
}

fn transferred_view() -> MemoryChain {
    let mut view = MemoryChain::default();
    view.transfers.insert(
        lid(GD, "mvdl", 1),
        Transfer {
            to: dept(SH),
            accepted_as: None,
        },
    );
    view
}

fn refusal_code(r: Refusal) -> &'static str {
    match r {
        Refusal::UnknownLicence => "unknown_licence",
        Refusal::DuplicateIssue => "duplicate_issue",
        Refusal::AlreadyRevoked => "already_revoked",
        Refusal::AlreadyTransferred => "already_transferred",
        Refusal::WrongStatus => "wrong_status",
    }
}

#[test]
fn the_table_has_one_row_for_every_kind_and_standing() {
    for kind in RecordKind::ALL {
        for standing in Standing::ALL {
            let rows = TRANSITIONS
                .iter()
                .filter(|(k, s, _)| *k == kind && *s == standing)
                .count();
            assert_eq!(rows, 1, "{kind:?} in {standing:?}");
        }
    }
    assert_eq!(
        TRANSITIONS.len(),
        RecordKind::ALL.len() * Standing::ALL.len()
    );
}

/// Every row of the table, through the rules blocks are validated with: an allowed row
/// moves the licence to the standing it names; a refused one fails with its typed reason
/// and a penalty for the sender (each is wrong by construction).
#[test]
fn every_row_of_the_table_is_what_validation_does() {
    let net = net();
    let view = transferred_view();
    for (kind, standing, expected) in TRANSITIONS {
        let r = record(kind, 1);
        let got = apply(&net, &r, state(standing), 2, &view);
        match expected {
            Ok(to) => {
                let s = got.unwrap_or_else(|e| panic!("{kind:?} in {standing:?}: {e}"));
                assert_eq!(s.standing(NOW), to, "{kind:?} in {standing:?}");
            }
            Err(refusal) => {
                let e = got.expect_err("refused");
                assert_eq!(
                    e.code(),
                    refusal_code(refusal),
                    "{kind:?} in {standing:?}: {e}"
                );
                assert_eq!(e.disposition(), Disposition::Reject, "{e}");
            }
        }
    }
}

/// The rules each kind adds after the table allowed it, one row each: the record, the
/// licence's state, and the error code (`None`: admitted).
#[test]
fn each_kind_checks_its_own_rules() {
    let net = net();
    let view = transferred_view();
    let active = state(Standing::Active);
    let with = |kind, f: &dyn Fn(&mut Record)| {
        let mut r = record(kind, 1);
        f(&mut r);
        r
    };
    let accepted = {
        let mut v = transferred_view();
        v.transfers.insert(
            lid(GD, "mvdl", 1),
            Transfer {
                to: dept(SH),
                accepted_as: Some(lid(SH, "mvdl", 7)),
            },
        );
        v
    };
    let lapsed = active.map(|mut s| {
        s.status = LicenceStatus::Suspended(SuspendReason::Penalty);
        s.suspended_until = Some(NOW - 1);
        s.status_height = 4;
        s
    });
    #[rustfmt::skip]
    let rows: Vec<(&str, Record, Option<LicenceState>, &MemoryChain, Option<&str>)> = vec![
        ("transfer in as the origin's transfer names", record(RecordKind::TransferIn, 5), None, &view, None),
        ("  its origin not transferred (yet, as held)", with(RecordKind::TransferIn, &|r| if let Record::Issue(i) = r { i.origin = Some(lid(GD, "mvdl", 2)) }), None, &view, Some("bad_transfer")),
        ("  a second transfer in of the same origin", record(RecordKind::TransferIn, 5), None, &accepted, Some("bad_transfer")),
        ("  origin of another type",     with(RecordKind::TransferIn, &|r| if let Record::Issue(i) = r { i.origin = Some(lid(GD, "food", 1)) }), None, &view, Some("bad_transfer")),
        ("transfer out to another region", record(RecordKind::TransferOut, 1), active, &view, None),
        ("  to the same region",         with(RecordKind::TransferOut, &|r| if let Record::TransferOut { to, .. } = r { *to = dept("gd.market") }), active, &view, Some("bad_transfer")),
        ("  to a department not in genesis", with(RecordKind::TransferOut, &|r| if let Record::TransferOut { to, .. } = r { *to = dept("xx.nowhere") }), active, &view, Some("bad_transfer")),
        ("renew for longer",             record(RecordKind::Renew, 1), active, &view, None),
        ("  not past the current end",   with(RecordKind::Renew, &|r| if let Record::Renew { valid_until, .. } = r { *valid_until = NOW + 100 * 86_400 }), active, &view, Some("bad_validity")),
        ("  past the type's maximum",    with(RecordKind::Renew, &|r| if let Record::Renew { valid_until, .. } = r { *valid_until = NOW + 4000 * 86_400 }), active, &view, Some("bad_validity")),
        ("  after a timed suspension ended", record(RecordKind::Renew, 1), lapsed, &view, None),
        ("suspend until a later date",   record(RecordKind::Suspend, 1), active, &view, None),
        ("  until a date already past",  with(RecordKind::Suspend, &|r| if let Record::Suspend { until, .. } = r { *until = Some(NOW) }), active, &view, Some("bad_suspension")),
        ("  again, once the last one ended", record(RecordKind::Suspend, 1), lapsed, &view, None),
        ("reinstate once a timed suspension ended", record(RecordKind::Reinstate, 1), lapsed, &view, Some("wrong_status")),
        ("annul the record the status stands on", record(RecordKind::Annul, 1), state(Standing::Revoked), &view, None),
        ("  another record",             with(RecordKind::Annul, &|r| if let Record::Annul { index, .. } = r { *index = 1 }), state(Standing::Revoked), &view, Some("annul_mismatch")),
    ];
    for (what, record, current, view, expected) in rows {
        let got = apply(&net, &record, current, 2, view);
        assert_eq!(
            got.as_ref().err().map(BlockError::code),
            expected,
            "{what}: {got:?}"
        );
    }
    // A transfer in whose origin this node has not seen transferred is early, not wrong.
    let early = apply(
        &net,
        &with(RecordKind::TransferIn, &|r| {
            if let Record::Issue(i) = r {
                i.origin = Some(lid(GD, "mvdl", 2))
            }
        }),
        None,
        2,
        &view,
    )
    .expect_err("refused");
    assert_eq!(early.disposition(), Disposition::Ignore);
    let second =
        apply(&net, &record(RecordKind::TransferIn, 5), None, 2, &accepted).expect_err("refused");
    assert_eq!(second.disposition(), Disposition::Reject);
}

#[test]
fn records_of_version_2_are_refused_in_version_1_blocks() {
    let net = net();
    let view = transferred_view();
    for kind in [
        RecordKind::TransferIn,
        RecordKind::Renew,
        RecordKind::Reissue,
        RecordKind::Amend,
        RecordKind::TransferOut,
        RecordKind::Annul,
        RecordKind::Suspend, // with `until`
    ] {
        let e =
            apply(&net, &record(kind, 1), state(Standing::Active), 1, &view).expect_err("refused");
        assert_eq!(e.code(), "kind_not_in_version", "{kind:?}");
    }
}

#[test]
fn a_renewal_brings_in_a_new_credential_and_period_and_keeps_the_id() {
    let net = net();
    let view = MemoryChain::default();
    let s = apply(
        &net,
        &record(RecordKind::Renew, 1),
        state(Standing::Active),
        2,
        &view,
    )
    .expect("renewed");
    assert_eq!(s.commitment, Hash32::digest(b"second"));
    assert_eq!(s.valid_until, NOW + 3000 * 86_400);
    assert_eq!((s.issued_height, s.issued_index), (9, 3));
    assert_eq!(s.issuer_key, KeyId([2; 8]));
    // A successor may suspend its predecessor's licences, but never sign their credentials.
    let foreign = Record::Renew {
        licence_id: lid("gd.market", "food", 1),
        valid_from: NOW,
        valid_until: NOW + 10,
        commitment: Hash32::digest(b"x"),
        officer: officer(),
    };
    let department = dept(GD);
    let key = KeyId([2; 8]);
    let place = Place {
        department: &department,
        height: 9,
        time_ms: NOW as u64 * 1000,
        version: 2,
        key: &key,
    };
    let e =
        next_state(&net, &place, 0, &foreign, state(Standing::Active), &view).expect_err("refused");
    assert_eq!(e.code(), "foreign_licence");
}

fn event(day: i64, height: u64, record: Record) -> Event {
    Event {
        time_ms: ((NOW + day * 86_400) * 1000) as u64,
        height,
        index: 0,
        record,
    }
}

fn issued() -> Event {
    event(0, 1, record(RecordKind::Issue, 1))
}

fn revoked(day: i64, reason: RevokeReason) -> Event {
    event(
        day,
        2,
        Record::Revoke {
            licence_id: lid(GD, "mvdl", 1),
            reason,
            officer: officer(),
        },
    )
}

/// "Was it valid on that day?", row by row: 撤销 voids the licence from the start,
/// 吊销 and 注销 end it from their record on, an annulled decision never took effect.
#[test]
fn as_of_answers_by_the_law_of_each_record() {
    use StandingAt as A;
    let day = |d: i64| NOW + d * 86_400;
    let annul = event(
        40,
        3,
        Record::Annul {
            licence_id: lid(GD, "mvdl", 1),
            height: 2,
            index: 0,
            reason: AnnulReason::Court,
            officer: officer(),
        },
    );
    let suspended = event(
        10,
        2,
        Record::Suspend {
            licence_id: lid(GD, "mvdl", 1),
            reason: SuspendReason::Penalty,
            officer: officer(),
            until: Some(day(20)),
        },
    );
    let renewed = event(
        300,
        2,
        Record::Renew {
            licence_id: lid(GD, "mvdl", 1),
            valid_from: day(300),
            valid_until: day(2000),
            commitment: Hash32::digest(b"r"),
            officer: officer(),
        },
    );
    let transferred = event(30, 2, record(RecordKind::TransferOut, 1));
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<Event>, i64, StandingAt)> = vec![
        ("before issue",                   vec![issued()], day(-1), A::NotIssued),
        ("issued",                         vec![issued()], day(1), A::Valid),
        ("past its validity",              vec![issued()], day(366), A::Expired),
        ("吊销: valid before the record",   vec![issued(), revoked(30, RevokeReason::Penalty)], day(29), A::Valid),
        ("吊销: revoked after it",          vec![issued(), revoked(30, RevokeReason::Penalty)], day(31), A::Revoked),
        ("注销: valid before the record",   vec![issued(), revoked(30, RevokeReason::Cancelled)], day(29), A::Valid),
        ("注销: cancelled after it",        vec![issued(), revoked(30, RevokeReason::Cancelled)], day(31), A::Revoked),
        ("撤销: never valid, even before",  vec![issued(), revoked(30, RevokeReason::Withdrawn)], day(1), A::Void),
        ("撤销: never valid after",         vec![issued(), revoked(30, RevokeReason::Withdrawn)], day(31), A::Void),
        ("吊销 annulled: valid throughout", vec![issued(), revoked(30, RevokeReason::Penalty), annul.clone()], day(35), A::Valid),
        ("撤销 annulled: valid before",     vec![issued(), revoked(30, RevokeReason::Withdrawn), annul], day(1), A::Valid),
        ("in a timed suspension",          vec![issued(), suspended.clone()], day(15), A::Suspended),
        ("after it ended",                 vec![issued(), suspended], day(20), A::Valid),
        ("renewed: past the first period", vec![issued(), renewed.clone()], day(400), A::Valid),
        ("  short: the old period, before the renewal", vec![issued(), renewed], day(299), A::Valid),
        ("transferred out",                vec![issued(), transferred.clone()], day(31), A::Transferred),
        ("  short: before the transfer",   vec![issued(), transferred], day(29), A::Valid),
    ];
    for (what, events, at, expected) in rows {
        assert_eq!(as_of(&events, at), expected, "{what}");
    }
}

#[test]
fn a_standing_of_unknown_licences_is_only_ever_changed_by_an_issue() {
    for kind in RecordKind::ALL {
        let expect_ok = matches!(kind, RecordKind::Issue | RecordKind::TransferIn);
        assert_eq!(
            transition(kind, Standing::Unknown).is_ok(),
            expect_ok,
            "{kind:?}"
        );
    }
    let _ = LicenceId::parse("gd.transport:mvdl:1").expect("id");
}

#[test]
fn a_verdict_as_of_a_moment_follows_the_credential_in_force_then() {
    use crate::verify::InvalidReason as I;
    let first = Hash32::digest(b"second"); // the issue record's commitment (record())
    let renewed = Hash32::digest(b"r");
    let events = vec![
        issued(),
        event(
            300,
            2,
            Record::Renew {
                licence_id: lid(GD, "mvdl", 1),
                valid_from: NOW + 300 * 86_400,
                valid_until: NOW + 2000 * 86_400,
                commitment: renewed,
                officer: officer(),
            },
        ),
        revoked(500, RevokeReason::Penalty),
    ];
    let day = |d: i64| NOW + d * 86_400;
    let code = |at, c| verdict_at(&events, at, c).map(|(r, _)| r);
    assert_eq!(
        code(day(10), first),
        None,
        "the first card, before the renewal"
    );
    assert_eq!(code(day(310), first), Some(I::Superseded));
    assert_eq!(
        code(day(10), renewed),
        Some(I::NotOnLedger),
        "before it existed"
    );
    assert_eq!(code(day(310), renewed), None);
    assert_eq!(code(day(510), renewed), Some(I::Revoked));
    assert_eq!(
        code(day(10), Hash32::digest(b"forged")),
        Some(I::CommitmentMismatch)
    );
}
