use proptest::prelude::*;

use super::*;
use crate::checkpoint::tests::network;
use crate::checkpoint::DeptCheckpoint;
use crate::crypto::SecretKey;
use crate::genesis::tests::sample;
use crate::ids::LicenceType;
use crate::tlog::Note;

/// When the test checkpoints are signed.
const T0: u64 = 1_700_000_000_000;
/// The witnesses of `network`, in the order of their keys: the departments' nodes, then
/// the observer's.
const WITNESSES: [&str; 4] = ["gd.transport", "gd.market", "sh.transport", "nation.audit"];

/// The network and its keys; departments by index: 0 gd.transport, 1 gd.market,
/// 2 sh.transport.
struct Fixture {
    net: Network,
    keys: Vec<(DepartmentId, SecretKey)>,
    nodes: Vec<SecretKey>,
}

impl Fixture {
    fn new() -> Self {
        let (net, keys, nodes) = network(2);
        Self { net, keys, nodes }
    }

    fn dept(&self, i: usize) -> &DepartmentId {
        &self.keys[i].0
    }

    /// Department `i`'s checkpoint at `height` over `set`, signed at `time_ms` and
    /// cosigned by the first two witnesses other than its own node.
    fn checkpoint(&self, i: usize, height: u64, time_ms: u64, set: &[[u8; 18]]) -> String {
        let (status_count, status_root) = tlog::status_root(set.iter().copied());
        let cp = DeptCheckpoint {
            department: self.dept(i).clone(),
            size: height * 10,
            root: Hash32([height as u8; 32]),
            height,
            status_count,
            status_root,
            time_ms,
        };
        let mut s = SignedCheckpoint::sign(&self.net, cp, &self.keys[i].1);
        for w in (0..WITNESSES.len()).filter(|&w| w != i).take(2) {
            s.cosign(&self.net, WITNESSES[w], &self.nodes[w], time_ms / 1000);
        }
        s.encode()
    }

    fn department(
        &self,
        i: usize,
        height: u64,
        time_ms: u64,
        set: &[[u8; 18]],
    ) -> BundleDepartment {
        BundleDepartment {
            checkpoint: self.checkpoint(i, height, time_ms, set),
            status: set.to_vec(),
        }
    }

    fn bundle(&self, departments: Vec<BundleDepartment>) -> Bundle {
        Bundle {
            genesis: self.net.hash(),
            made_ms: T0 + 1000,
            governance: None,
            departments,
        }
    }
}

fn licence(dept: &DepartmentId, serial: u64) -> LicenceId {
    LicenceId::new(
        dept.clone(),
        LicenceType::parse("mvdl").expect("type"),
        serial,
    )
}

const REVOKED: LicenceStatus = LicenceStatus::Revoked(RevokeReason::Penalty);
const SUSPENDED: LicenceStatus = LicenceStatus::Suspended(SuspendReason::Investigation);

/// The status set of `licences` of `dept` (serial, status), sorted.
fn set(dept: &DepartmentId, licences: &[(u64, LicenceStatus)]) -> Vec<[u8; 18]> {
    let mut out: Vec<[u8; 18]> = licences
        .iter()
        .map(|&(n, s)| tlog::status_entry(&licence(dept, n), s).expect("not active"))
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------
// Encoding

#[test]
fn bundles_and_deltas_read_back_as_written() {
    let f = Fixture::new();
    let gd = set(f.dept(0), &[(1, REVOKED), (2, SUSPENDED)]);
    let mut bundle = f.bundle(vec![
        f.department(0, 5, T0, &gd),
        f.department(1, 3, T0, &[]),
    ]);
    bundle.governance = Some(vec![1, 2, 3]);
    let bytes = bundle.encode();
    assert_eq!(Bundle::decode(&bytes).expect("reads"), bundle);

    let delta = Delta {
        genesis: f.net.hash(),
        made_ms: T0 + 2000,
        governance: None,
        departments: vec![DeltaDepartment {
            from_height: 5,
            checkpoint: f.checkpoint(0, 6, T0 + 1000, &gd[..1]),
            changes: diff(&gd, &gd[..1]),
        }],
    };
    let delta_bytes = delta.encode();
    assert_eq!(Delta::decode(&delta_bytes).expect("reads"), delta);

    // One is never read as the other.
    assert!(matches!(
        Bundle::decode(&delta_bytes),
        Err(BundleError::Kind { expected: BUNDLE_KIND, ref found }) if found == DELTA_KIND
    ));
    assert!(matches!(
        Delta::decode(&bytes),
        Err(BundleError::Kind { expected: DELTA_KIND, ref found }) if found == BUNDLE_KIND
    ));
}

#[test]
fn malformed_encodings_are_refused_by_rule() {
    let f = Fixture::new();
    let gd = set(f.dept(0), &[(1, REVOKED), (2, SUSPENDED), (3, REVOKED)]);
    let good = f.bundle(vec![f.department(0, 5, T0, &gd)]);
    let encoded = |b: &Bundle| b.encode();

    let mut extra = encoded(&good);
    extra.push(0);
    assert!(matches!(
        Bundle::decode(&extra),
        Err(BundleError::TrailingBytes { bytes: 1 })
    ));
    let mut unsorted = good.clone();
    unsorted.departments[0].status.swap(0, 2);
    assert!(matches!(
        Bundle::decode(&encoded(&unsorted)),
        Err(BundleError::Set {
            department: DeptRef::Position(0),
            list: EntryList::StatusSet,
            problem: SetProblem::Unsorted { index: 1 },
        })
    ));
    let mut active = good.clone();
    active.departments[0].status[1][16..].copy_from_slice(&[0, 0]);
    assert!(matches!(
        Bundle::decode(&encoded(&active)),
        Err(BundleError::Set {
            problem: SetProblem::Status {
                index: 1,
                bytes: [0, 0],
                ..
            },
            ..
        })
    ));
    let mut big = good.clone();
    big.governance = Some(vec![0; GOVERNANCE_BYTES_MAX + 1]);
    assert!(matches!(
        Bundle::decode(&encoded(&big)),
        Err(BundleError::GovernanceTooLarge { .. })
    ));
    let mut many = good.clone();
    many.departments = vec![good.departments[0].clone(); DEPARTMENTS_MAX + 1];
    assert!(matches!(
        Bundle::decode(&encoded(&many)),
        Err(BundleError::TooManyDepartments { count }) if count == DEPARTMENTS_MAX + 1
    ));
    assert!(matches!(
        Bundle::decode(&vec![0; BUNDLE_BYTES_MAX + 1]),
        Err(BundleError::TooLarge { .. })
    ));

    // A set that is not a whole number of entries, or an array of integers instead of one
    // byte string: written by hand, since `encode` cannot make them.
    let raw = |set: ciborium::Value| {
        use ciborium::Value as V;
        let map = V::Map(vec![
            (V::Text("kind".into()), V::Text(BUNDLE_KIND.into())),
            (V::Text("genesis".into()), V::Bytes(f.net.hash().0.to_vec())),
            (V::Text("made_ms".into()), V::Integer(1.into())),
            (
                V::Text("depts".into()),
                V::Array(vec![V::Map(vec![
                    (V::Text("cp".into()), V::Text("x".into())),
                    (V::Text("set".into()), set),
                ])]),
            ),
        ]);
        let mut out = Vec::new();
        ciborium::into_writer(&map, &mut out).expect("writes");
        out
    };
    assert!(Bundle::decode(&raw(ciborium::Value::Bytes(vec![]))).is_ok());
    assert!(matches!(
        Bundle::decode(&raw(ciborium::Value::Bytes(vec![2; 19]))),
        Err(BundleError::Set {
            problem: SetProblem::Length { bytes: 19 },
            ..
        })
    ));
    assert!(matches!(
        Bundle::decode(&raw(ciborium::Value::Array(vec![]))),
        Err(BundleError::Cbor(_))
    ));
}

/// Any set of suspensions and revocations, sorted strictly by key; with `changes`,
/// removals too.
fn arb_set(changes: bool) -> impl Strategy<Value = Vec<[u8; 18]>> {
    let statuses: Vec<[u8; 2]> = [[1, 0], [1, 1], [1, 2], [2, 0], [2, 1], [2, 2]]
        .into_iter()
        .chain(changes.then_some([0, 0]))
        .collect();
    prop::collection::btree_map(any::<[u8; 16]>(), prop::sample::select(statuses), 0..24).prop_map(
        |m| {
            m.into_iter()
                .map(|(k, s)| {
                    let mut e = [0u8; 18];
                    e[..16].copy_from_slice(&k);
                    e[16..].copy_from_slice(&s);
                    e
                })
                .collect()
        },
    )
}

fn arb_bundle() -> impl Strategy<Value = Bundle> {
    let dept = ("[ -~]{0,80}", arb_set(false))
        .prop_map(|(checkpoint, status)| BundleDepartment { checkpoint, status });
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        prop::collection::vec(dept, 0..4),
    )
        .prop_map(|(g, made_ms, governance, departments)| Bundle {
            genesis: Hash32(g),
            made_ms,
            governance,
            departments,
        })
}

fn arb_delta() -> impl Strategy<Value = Delta> {
    let dept = (any::<u64>(), "[ -~]{0,80}", arb_set(true)).prop_map(
        |(from_height, checkpoint, changes)| DeltaDepartment {
            from_height,
            checkpoint,
            changes,
        },
    );
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        prop::collection::vec(dept, 0..4),
    )
        .prop_map(|(g, made_ms, governance, departments)| Delta {
            genesis: Hash32(g),
            made_ms,
            governance,
            departments,
        })
}

proptest! {
    #[test]
    fn decode_of_encode_is_identity(bundle in arb_bundle(), delta in arb_delta()) {
        prop_assert_eq!(Bundle::decode(&bundle.encode()).expect("reads"), bundle);
        prop_assert_eq!(Delta::decode(&delta.encode()).expect("reads"), delta);
    }

    #[test]
    fn arbitrary_bytes_are_refused_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(Bundle::decode(&bytes).is_err());
        prop_assert!(Delta::decode(&bytes).is_err());
    }

    /// Bytes close to a real encoding reach deeper into the decoder than random ones.
    #[test]
    fn damaged_encodings_never_panic(
        bundle in arb_bundle(),
        delta in arb_delta(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        for mut bytes in [bundle.encode(), delta.encode()] {
            for (at, x) in &flips {
                let i = at.index(bytes.len());
                bytes[i] ^= x;
            }
            let _ = Bundle::decode(&bytes);
            let _ = Delta::decode(&bytes);
            let cut = cut.index(bytes.len());
            let _ = Bundle::decode(&bytes[..cut]);
            let _ = Delta::decode(&bytes[..cut]);
        }
    }

    #[test]
    fn applying_the_diff_of_two_sets_gives_the_second(old in arb_set(false), new in arb_set(false)) {
        let changes = diff(&old, &new);
        prop_assert!(check_set(&changes, EntryList::Changes).is_ok());
        prop_assert_eq!(merge(&old, &changes), new);
    }
}

// ---------------------------------------------------------------------------------------
// Verification and lookups

#[test]
fn a_licence_reads_as_its_departments_set_says() {
    let f = Fixture::new();
    let (gd, market, sh) = (f.dept(0), f.dept(1), f.dept(2));
    let gd_set = set(
        gd,
        &[
            (1, REVOKED),
            (2, SUSPENDED),
            (3, LicenceStatus::Revoked(RevokeReason::Withdrawn)),
        ],
    );
    let bundle = f.bundle(vec![
        f.department(0, 5, T0, &gd_set),
        f.department(1, 3, T0, &[]),
    ]);
    let v = Bundle::decode(&bundle.encode())
        .expect("reads")
        .verify(&f.net)
        .expect("verifies");
    let check = |id: LicenceId, expected: BundleStatus| {
        assert_eq!(v.status(&id), expected, "{id}");
    };
    check(licence(gd, 1), BundleStatus::Revoked(RevokeReason::Penalty));
    check(
        licence(gd, 2),
        BundleStatus::Suspended(SuspendReason::Investigation),
    );
    check(
        licence(gd, 3),
        BundleStatus::Revoked(RevokeReason::Withdrawn),
    );
    check(licence(gd, 4), BundleStatus::Active);
    check(licence(market, 1), BundleStatus::Active);
    // No checkpoint of sh.transport: the bundle cannot say its licences are not revoked.
    check(licence(sh, 1), BundleStatus::NotCovered);
    assert!(v.checkpoint(sh).is_none());
    assert_eq!(
        v.checkpoint(gd).map(|c| c.checkpoint.height),
        Some(5),
        "the checkpoint held"
    );
}

#[test]
fn version_age_and_oldest_come_from_the_checkpoints() {
    let f = Fixture::new();
    // Given out of department order: the verified bundle is in department order.
    let v = f
        .bundle(vec![
            f.department(2, 7, T0 + 5_000, &[]),
            f.department(0, 5, T0, &[]),
        ])
        .verify(&f.net)
        .expect("verifies");
    assert_eq!(
        v.version(),
        vec![(f.dept(0).clone(), 5), (f.dept(2).clone(), 7)]
    );
    assert_eq!(v.bundle().departments.len(), 2);
    assert_eq!(v.age(f.dept(0), T0 + 60_000), Some(60_000));
    assert_eq!(v.age(f.dept(2), T0 + 60_000), Some(55_000));
    // A checkpoint from a clock ahead of the verifier's is not of negative age.
    assert_eq!(v.age(f.dept(2), T0), Some(0));
    assert_eq!(v.age(f.dept(1), T0), None);
    assert_eq!(v.oldest_ms(), Some(T0));
    let empty = f.bundle(vec![]).verify(&f.net).expect("verifies");
    assert_eq!(empty.oldest_ms(), None);
}

#[test]
fn freshness_limits_are_inclusive() {
    let f = Fixture::new();
    let rules = f.net.checkpoint_rules();
    let (soft, hard) = (
        rules.bundle_soft_max_secs * 1000,
        rules.bundle_hard_max_secs * 1000,
    );
    let v = f
        .bundle(vec![f.department(0, 5, T0, &[])])
        .verify(&f.net)
        .expect("verifies");
    let cases = [
        (T0 - 1, Freshness::Fresh),
        (T0, Freshness::Fresh),
        (T0 + soft, Freshness::Fresh),
        (T0 + soft + 1, Freshness::Stale),
        (T0 + hard, Freshness::Stale),
        (T0 + hard + 1, Freshness::Expired),
        (u64::MAX, Freshness::Expired),
    ];
    for (now, expected) in cases {
        assert_eq!(
            v.freshness(f.dept(0), now, &rules),
            Some(expected),
            "at {now}"
        );
    }
    assert_eq!(v.freshness(f.dept(1), T0, &rules), None);
}

/// Drops the last signature line of a note: the last cosignature.
fn drop_last_signature(text: &str) -> String {
    let mut note = Note::parse(text).expect("a note");
    note.signatures.pop();
    note.encode()
}

#[test]
fn tampered_bundles_are_refused_naming_the_department() {
    let f = Fixture::new();
    let gd_set = set(f.dept(0), &[(1, REVOKED), (2, SUSPENDED), (3, REVOKED)]);
    let good = f.bundle(vec![
        f.department(0, 5, T0, &gd_set),
        f.department(1, 3, T0, &[]),
    ]);
    good.verify(&f.net).expect("the untampered bundle verifies");

    type Tamper = fn(&mut Bundle);
    type Expect = fn(&BundleError) -> bool;
    let cases: [(&str, Tamper, Expect, &str); 9] = [
        (
            "a status entry changed",
            |b| b.departments[0].status[0][16..].copy_from_slice(&[1, 2]),
            |e| matches!(e, BundleError::SetRoot { height: 5, .. }),
            "department gd.transport: its status set hashes to",
        ),
        (
            "an entry dropped",
            |b| {
                b.departments[0].status.remove(1);
            },
            |e| {
                matches!(
                    e,
                    BundleError::SetCount {
                        entries: 2,
                        count: 3,
                        ..
                    }
                )
            },
            "department gd.transport: its status set has 2 entries",
        ),
        (
            "an entry added",
            |b| {
                let gd = DepartmentId::parse("gd.transport").expect("id");
                let extra = tlog::status_entry(&licence(&gd, 9), REVOKED).expect("entry");
                b.departments[0].status.push(extra);
                b.departments[0].status.sort();
            },
            |e| {
                matches!(
                    e,
                    BundleError::SetCount {
                        entries: 4,
                        count: 3,
                        ..
                    }
                )
            },
            "department gd.transport",
        ),
        (
            "entries out of order",
            |b| b.departments[0].status.swap(0, 1),
            |e| {
                matches!(
                    e,
                    BundleError::Set {
                        problem: SetProblem::Unsorted { index: 1 },
                        ..
                    }
                )
            },
            "department gd.transport: its status set: entry 1",
        ),
        (
            "the checkpoint's text changed",
            |b| {
                let t = &mut b.departments[0].checkpoint;
                *t = t.replacen("\nheight 5\n", "\nheight 6\n", 1);
            },
            |e| {
                matches!(
                    e,
                    BundleError::Checkpoint {
                        department: DeptRef::Position(0),
                        source: CheckpointError::Unsigned { height: 6, .. },
                    }
                )
            },
            "the department at position 0: its checkpoint: no key of gd.transport",
        ),
        (
            "a cosignature removed",
            |b| b.departments[1].checkpoint = drop_last_signature(&b.departments[1].checkpoint),
            |e| {
                matches!(
                    e,
                    BundleError::Quorum {
                        height: 3,
                        cosigners: 1,
                        quorum: 2,
                        ..
                    }
                )
            },
            "department gd.market: its checkpoint at height 3 has 1 witness cosignatures",
        ),
        (
            "a cosignature forged",
            |b| {
                let mut note = Note::parse(&b.departments[1].checkpoint).expect("a note");
                let last = note.signatures.last_mut().expect("a cosignature");
                last.bytes[20] ^= 1;
                b.departments[1].checkpoint = note.encode();
            },
            |e| matches!(e, BundleError::Quorum { cosigners: 1, .. }),
            "department gd.market",
        ),
        (
            "another network's genesis",
            |b| b.genesis = Hash32::digest(b"another network"),
            |e| matches!(e, BundleError::Network { .. }),
            "made for network",
        ),
        (
            "a department twice",
            |b| b.departments.push(b.departments[1].clone()),
            |e| matches!(e, BundleError::DuplicateDepartment { .. }),
            "department gd.market appears twice",
        ),
    ];
    for (what, tamper, expected, message) in cases {
        let mut b = good.clone();
        tamper(&mut b);
        let err = b.verify(&f.net).expect_err(what);
        assert!(expected(&err), "{what}: {err:?}");
        assert!(
            err.to_string().contains(message),
            "{what}: {err} does not say {message:?}"
        );
        // Read from its bytes, it is refused as well (or, for an unsorted set, already
        // when read).
        assert!(
            Bundle::decode(&b.encode())
                .and_then(|b| b.verify(&f.net))
                .is_err(),
            "{what}"
        );
    }
}

#[test]
fn a_bundle_of_another_network_is_refused() {
    let f = Fixture::new();
    let (mut doc, _) = sample();
    doc.network = "elsewhere".into();
    let other = Network::from_document(doc).expect("valid");
    let theirs = f.bundle(vec![f.department(0, 5, T0, &[])]);
    assert!(matches!(
        theirs.verify(&other),
        Err(BundleError::Network { expected, found }) if expected == other.hash() && found == f.net.hash()
    ));
    // Relabelled with the other genesis, its checkpoints still name this network.
    let relabelled = Bundle {
        genesis: other.hash(),
        ..theirs
    };
    assert!(matches!(
        relabelled.verify(&other),
        Err(BundleError::Checkpoint {
            source: CheckpointError::Origin(_),
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------
// Deltas and rollback

/// A held bundle and a newer one: gd.transport moves from height 5 to 9 (a licence
/// reinstated, one revoked, one suspension turned into a revocation), gd.market stays,
/// sh.transport appears.
struct Versions {
    f: Fixture,
    old: VerifiedBundle,
    /// `old`'s departments as given: gd.transport, gd.market.
    old_departments: [BundleDepartment; 2],
    old_gd: Vec<[u8; 18]>,
    new_gd: Vec<[u8; 18]>,
    sh: Vec<[u8; 18]>,
    new: Bundle,
}

fn versions() -> Versions {
    let f = Fixture::new();
    let gd = f.dept(0).clone();
    let old_gd = set(&gd, &[(1, REVOKED), (2, SUSPENDED), (3, SUSPENDED)]);
    let new_gd = set(&gd, &[(1, REVOKED), (3, REVOKED), (4, REVOKED)]);
    let market = set(f.dept(1), &[(1, SUSPENDED)]);
    let sh = set(f.dept(2), &[(7, REVOKED)]);
    let old_departments = [
        f.department(0, 5, T0, &old_gd),
        f.department(1, 3, T0, &market),
    ];
    let old = f
        .bundle(old_departments.to_vec())
        .verify(&f.net)
        .expect("verifies");
    let mut new = f.bundle(vec![
        f.department(2, 2, T0 + 50_000, &sh),
        f.department(1, 3, T0, &market),
        f.department(0, 9, T0 + 60_000, &new_gd),
    ]);
    new.made_ms = T0 + 70_000;
    new.governance = Some(b"governance export".to_vec());
    Versions {
        f,
        old,
        old_departments,
        old_gd,
        new_gd,
        sh,
        new,
    }
}

impl Versions {
    /// The delta from `old` to `new`, as a node would make it.
    fn delta(&self) -> Delta {
        let cp = |i: usize| self.new.departments[i].checkpoint.clone();
        Delta {
            genesis: self.f.net.hash(),
            made_ms: self.new.made_ms,
            governance: self.new.governance.clone(),
            departments: vec![
                DeltaDepartment {
                    from_height: 5,
                    checkpoint: cp(2),
                    changes: diff(&self.old_gd, &self.new_gd),
                },
                DeltaDepartment {
                    from_height: 0,
                    checkpoint: cp(0),
                    changes: diff(&[], &self.sh),
                },
            ],
        }
    }
}

#[test]
fn applying_the_diff_gives_the_same_bundle_as_the_full_new_one() {
    let v = versions();
    let full = v.new.verify(&v.f.net).expect("verifies");
    let delta = Delta::decode(&v.delta().encode()).expect("reads");
    let applied = v.old.apply(&delta, &v.f.net).expect("applies");
    assert_eq!(applied, full);
    assert_eq!(applied.bundle().encode(), full.bundle().encode());
    check_not_rollback(&v.old, &applied).expect("moves forward");
    let gd = v.f.dept(0);
    assert_eq!(
        applied.status(&licence(gd, 2)),
        BundleStatus::Active,
        "reinstated"
    );
    assert_eq!(
        applied.status(&licence(gd, 3)),
        BundleStatus::Revoked(RevokeReason::Penalty)
    );

    // A delta without governance keeps the held export.
    let mut quiet = v.delta();
    quiet.governance = None;
    let held = Bundle {
        governance: Some(b"held".to_vec()),
        ..v.old.bundle().clone()
    }
    .verify(&v.f.net)
    .expect("verifies");
    let applied = held.apply(&quiet, &v.f.net).expect("applies");
    assert_eq!(applied.bundle().governance.as_deref(), Some(&b"held"[..]));
}

#[test]
fn a_delta_from_another_base_is_refused() {
    let v = versions();
    let mut stale = v.delta();
    stale.departments[0].from_height = 4;
    assert!(matches!(
        v.old.apply(&stale, &v.f.net),
        Err(BundleError::DeltaBase {
            from: 4,
            held: 5,
            ..
        })
    ));
    let mut absent = v.delta();
    absent.departments[1].from_height = 1;
    let err = v.old.apply(&absent, &v.f.net).expect_err("refused");
    assert!(
        matches!(
            err,
            BundleError::DeltaBase {
                from: 1,
                held: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("sh.transport"), "{err}");

    // Changes that do not lead to the checkpoint's set: the result is verified.
    let mut wrong = v.delta();
    wrong.departments[0].changes.pop();
    assert!(matches!(
        v.old.apply(&wrong, &v.f.net),
        Err(BundleError::SetCount { .. } | BundleError::SetRoot { .. })
    ));
    // A removal of a key the set does not hold changes nothing (a node may name more
    // removals than needed); the result is still the checkpoint's set.
    let mut absent_key = v.delta();
    let mut removal = [0u8; ENTRY_BYTES];
    removal[..16].copy_from_slice(&[0xff; 16]);
    absent_key.departments[0].changes.push(removal);
    let merged = v.old.apply(&absent_key, &v.f.net).expect("applies");
    assert_eq!(merged, v.new.verify(&v.f.net).expect("verifies"));
    let mut elsewhere = v.delta();
    elsewhere.genesis = Hash32::digest(b"another network");
    assert!(matches!(
        v.old.apply(&elsewhere, &v.f.net),
        Err(BundleError::Network { .. })
    ));
    let mut twice = v.delta();
    twice.departments.push(twice.departments[0].clone());
    assert!(matches!(
        v.old.apply(&twice, &v.f.net),
        Err(BundleError::DuplicateDepartment { .. })
    ));
}

#[test]
fn a_delta_that_moves_a_department_back_is_refused() {
    let v = versions();
    let f = &v.f;
    let older = set(f.dept(0), &[(1, REVOKED)]);
    for (height, time_ms) in [(4, T0 + 100_000), (5, T0 - 1)] {
        let delta = Delta {
            genesis: f.net.hash(),
            made_ms: T0 + 100_000,
            governance: None,
            departments: vec![DeltaDepartment {
                from_height: 5,
                checkpoint: f.checkpoint(0, height, time_ms, &older),
                changes: diff(&v.old_gd, &older),
            }],
        };
        let err = v.old.apply(&delta, &f.net).expect_err("refused");
        assert!(
            matches!(
                &err,
                BundleError::Rollback { held, offered, .. }
                    if held.height == 5 && offered.height == height && offered.time_ms == time_ms
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("gd.transport"), "{err}");
    }
    // The same checkpoint again, with nothing to change, is no rollback.
    let same = Delta {
        genesis: f.net.hash(),
        made_ms: T0 + 100_000,
        governance: None,
        departments: vec![DeltaDepartment {
            from_height: 5,
            checkpoint: v.old_departments[0].checkpoint.clone(),
            changes: vec![],
        }],
    };
    let applied = v.old.apply(&same, &f.net).expect("applies");
    assert_eq!(applied.version(), v.old.version());
}

#[test]
fn a_full_bundle_that_moves_back_or_drops_a_department_is_refused() {
    let v = versions();
    let f = &v.f;
    let new = v.new.verify(&f.net).expect("verifies");
    check_not_rollback(&v.old, &new).expect("forward");
    check_not_rollback(&new, &new).expect("the same bundle again");
    assert!(matches!(
        check_not_rollback(&new, &v.old),
        Err(BundleError::Rollback { held, offered, .. }) if held.height == 9 && offered.height == 5
    ));
    // Same height, signed earlier.
    let earlier = f
        .bundle(vec![
            f.department(0, 5, T0 - 1, &v.old_gd),
            v.old_departments[1].clone(),
        ])
        .verify(&f.net)
        .expect("verifies");
    assert!(matches!(
        check_not_rollback(&v.old, &earlier),
        Err(BundleError::Rollback { .. })
    ));
    // gd.market left out.
    let fewer = f
        .bundle(vec![f.department(0, 9, T0 + 60_000, &v.new_gd)])
        .verify(&f.net)
        .expect("verifies");
    let err = check_not_rollback(&v.old, &fewer).expect_err("refused");
    assert!(
        matches!(&err, BundleError::Dropped { department } if department == f.dept(1)),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Sizes

/// `n` revoked entries with keys from SHA-256 of a counter, sorted.
fn revoked_entries(n: u32, salt: u8) -> Vec<[u8; 18]> {
    let mut out: Vec<[u8; 18]> = (0..n)
        .map(|i| {
            let d = Hash32::digest_parts(&[&[salt], &i.to_be_bytes()]);
            let mut e = [0u8; 18];
            e[..16].copy_from_slice(&d.0[..16]);
            e[16..].copy_from_slice(&REVOKED.to_bytes());
            e
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_million_licences_at_two_percent_fit_in_400_kib_and_300_changes_in_10_kib() {
    let f = Fixture::new();
    let old_set = revoked_entries(20_000, 0);
    let bundle = f.bundle(vec![f.department(0, 5, T0, &old_set)]);
    let bytes = bundle.encode();
    assert!(bytes.len() <= 400 * 1024, "{} bytes", bytes.len());
    let held = Bundle::decode(&bytes)
        .expect("reads")
        .verify(&f.net)
        .expect("verifies");

    // 100 reinstated, 100 newly revoked, 100 revocations turned into suspensions.
    let mut new_set: Vec<[u8; 18]> = old_set[100..].to_vec();
    for e in &mut new_set[..100] {
        e[16..].copy_from_slice(&SUSPENDED.to_bytes());
    }
    new_set.extend(revoked_entries(100, 1));
    new_set.sort();
    let changes = diff(&old_set, &new_set);
    assert_eq!(changes.len(), 300);
    let delta = Delta {
        genesis: f.net.hash(),
        made_ms: T0 + 60_000,
        governance: None,
        departments: vec![DeltaDepartment {
            from_height: 5,
            checkpoint: f.checkpoint(0, 6, T0 + 60_000, &new_set),
            changes,
        }],
    };
    let delta_bytes = delta.encode();
    assert!(
        delta_bytes.len() <= 10 * 1024,
        "{} bytes",
        delta_bytes.len()
    );
    let applied = held
        .apply(&Delta::decode(&delta_bytes).expect("reads"), &f.net)
        .expect("applies");
    assert_eq!(applied.bundle().departments[0].status, new_set);
}
