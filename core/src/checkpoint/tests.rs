use super::*;
use crate::genesis::tests::sample;
use crate::genesis::{CheckpointRules, Observer};

/// The sample network with real node keys (seeds 101..) and an observer, and those keys.
pub(crate) fn network(quorum: u32) -> (Network, Vec<(DepartmentId, SecretKey)>, Vec<SecretKey>) {
    network_with(quorum, true)
}

/// The sample network with real node keys (seeds 101.. for its departments, 120 for the
/// observer `nation.audit` when `observer`), `quorum` witnesses per checkpoint; the
/// departments' issuer keys and the node keys.
pub(crate) fn network_with(
    quorum: u32,
    observer: bool,
) -> (Network, Vec<(DepartmentId, SecretKey)>, Vec<SecretKey>) {
    let (mut doc, keys) = sample();
    let mut nodes = Vec::new();
    for (i, d) in doc.departments.iter_mut().enumerate() {
        let k = SecretKey::from_seed(&[101 + i as u8; 32]);
        d.node_peer_id = peer_id_of(&k.public());
        nodes.push(k);
    }
    if observer {
        let k = SecretKey::from_seed(&[120; 32]);
        doc.observers.push(Observer {
            name: "nation.audit".into(),
            region: doc.regions[0].code.clone(),
            node_peer_id: peer_id_of(&k.public()),
        });
        nodes.push(k);
    }
    doc.checkpoints = Some(CheckpointRules {
        witness_quorum: quorum,
        ..CheckpointRules::DEFAULT
    });
    (Network::from_document(doc).expect("valid"), keys, nodes)
}

fn cp(dept: &DepartmentId, height: u64, size: u64, root: u8) -> DeptCheckpoint {
    DeptCheckpoint {
        department: dept.clone(),
        size,
        root: Hash32([root; 32]),
        height,
        status_count: 1,
        status_root: Hash32([9; 32]),
        time_ms: 1_700_000_000_000,
    }
}

/// `c` with a status set of `count` entries and root `[root; 32]`.
fn status(c: DeptCheckpoint, count: u64, root: u8) -> DeptCheckpoint {
    DeptCheckpoint {
        status_count: count,
        status_root: Hash32([root; 32]),
        ..c
    }
}

/// `c` signed a minute later.
fn later(c: DeptCheckpoint) -> DeptCheckpoint {
    DeptCheckpoint {
        time_ms: c.time_ms + 60_000,
        ..c
    }
}

#[test]
fn peer_ids_carry_their_ed25519_key() {
    let k = SecretKey::from_seed(&[7; 32]).public();
    let id = peer_id_of(&k);
    assert!(id.starts_with("12D3KooW"), "{id}");
    assert_eq!(peer_public_key(&id), Some(k));
    for bad in [
        "",
        "peer-1",
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
        &"1".repeat(65),
    ] {
        assert_eq!(peer_public_key(bad), None, "{bad}");
    }
}

#[test]
fn a_signed_checkpoint_reads_back_and_names_its_network() {
    let (net, keys, _) = network(2);
    let (gd, key) = &keys[0];
    let s = SignedCheckpoint::sign(&net, cp(gd, 3, 10, 1), key);
    let text = s.encode();
    let origin = format!(
        "huren.network/{}/gd.transport\n",
        &net.hash().to_hex()[..16]
    );
    assert!(text.starts_with(&origin), "{text}");
    assert!(text.contains("\nheight 3\nstatus 1 "), "{text}");
    let back = SignedCheckpoint::parse(&net, &text).expect("reads");
    assert_eq!(back, s);
    assert_eq!(back.checkpoint.text(&net), s.note.text);
}

#[test]
fn a_checkpoint_not_signed_by_its_department_is_refused() {
    let (net, keys, _) = network(2);
    let (gd, _) = &keys[0];
    let (_, other_key) = &keys[1];
    let forged = SignedCheckpoint::sign(&net, cp(gd, 3, 10, 1), other_key).encode();
    assert!(matches!(
        SignedCheckpoint::parse(&net, &forged),
        Err(CheckpointError::Unsigned { height: 3, .. })
    ));
    // Another network's checkpoint names another origin.
    let (mut doc, _) = sample();
    doc.network = "elsewhere".into();
    let other = Network::from_document(doc).expect("valid");
    let theirs = SignedCheckpoint::sign(&other, cp(gd, 3, 10, 1), &keys[0].1).encode();
    assert!(matches!(
        SignedCheckpoint::parse(&net, &theirs),
        Err(CheckpointError::Origin(_))
    ));
}

#[test]
fn extension_lines_are_exactly_height_status_time() {
    let (net, keys, _) = network(2);
    let (gd, key) = &keys[0];
    let good = cp(gd, 3, 10, 1).checkpoint(&net);
    let check = |edit: fn(&mut Vec<String>)| {
        let mut c = good.clone();
        edit(&mut c.extensions);
        let mut note = Note::new(c.text()).expect("note");
        note.sign(&origin(&net, gd), key);
        SignedCheckpoint::parse(&net, &note.encode())
    };
    assert!(check(|_| {}).is_ok());
    let bad: [fn(&mut Vec<String>); 6] = [
        |e| e.truncate(2),
        |e| e.push("more 1".into()),
        |e| e.swap(0, 2),
        |e| e[0] = "height 03".into(),
        |e| e[1] = "status 1 AAAA".into(),
        |e| e[2] = "time -1".into(),
    ];
    for edit in bad {
        assert!(
            matches!(check(edit), Err(CheckpointError::Extensions(_))),
            "{:?}",
            check(edit)
        );
    }
}

#[test]
fn cosignatures_count_toward_the_quorum_once_per_other_witness() {
    let (net, keys, nodes) = network(2);
    let (gd, key) = &keys[0];
    let mut s = SignedCheckpoint::sign(&net, cp(gd, 3, 10, 1), key);
    assert_eq!(quorum(&net, gd), 2);
    assert!(!s.has_quorum(&net));
    // The department's own node does not witness its own checkpoint.
    s.cosign(&net, "gd.transport", &nodes[0], 100);
    assert!(s.cosigners(&net).is_empty());
    s.cosign(&net, "gd.market", &nodes[1], 100);
    // A cosignature with the wrong key does not count.
    s.cosign(&net, "sh.transport", &nodes[0], 100);
    assert_eq!(s.cosigners(&net).len(), 1);
    s.cosign(&net, "nation.audit", &nodes[3], 101);
    assert!(s.has_quorum(&net));
    let back = SignedCheckpoint::parse(&net, &s.encode()).expect("reads");
    assert_eq!(
        back.cosigners(&net),
        vec![
            Cosigner {
                node: "nation.audit".into(),
                time: 101
            },
            Cosigner {
                node: "gd.market".into(),
                time: 100
            }
        ]
    );
    // The quorum is at most the other witnesses there are.
    let (net5, _, _) = network(9);
    assert_eq!(quorum(&net5, gd), 3);
}

#[test]
fn merging_keeps_verified_cosignatures_newest_per_witness() {
    let (net, keys, nodes) = network(2);
    let (gd, key) = &keys[0];
    let base = SignedCheckpoint::sign(&net, cp(gd, 3, 10, 1), key);
    let mut a = base.clone();
    a.cosign(&net, "gd.market", &nodes[1], 100);
    let mut b = base.clone();
    b.cosign(&net, "gd.market", &nodes[1], 200);
    b.cosign(&net, "sh.transport", &nodes[2], 150);
    b.cosign(&net, "nation.audit", &nodes[0], 150); // wrong key: dropped
    assert!(a.merge(&net, &b));
    let got: Vec<_> = a
        .cosigners(&net)
        .into_iter()
        .map(|c| (c.node, c.time))
        .collect();
    assert_eq!(
        got,
        vec![("gd.market".into(), 200), ("sh.transport".into(), 150)]
    );
    assert_eq!(
        a.note.signatures.len(),
        3,
        "the department's and two cosignatures"
    );
    assert!(!a.merge(&net, &b), "nothing new the second time");
    let other = SignedCheckpoint::sign(&net, cp(gd, 4, 11, 1), key);
    assert!(
        !a.merge(&net, &other),
        "another checkpoint's cosignatures do not apply"
    );
}

#[test]
fn conflicting_checkpoints_convict_their_department() {
    let (net, keys, _) = network(2);
    let (gd, key) = &keys[0];
    let sign = |c| SignedCheckpoint::sign(&net, c, key);
    let cases = [
        (cp(gd, 3, 10, 1), cp(gd, 3, 10, 2), true), // one height, two roots
        (cp(gd, 3, 10, 1), cp(gd, 4, 10, 2), true), // one size, two roots
        (cp(gd, 3, 10, 1), cp(gd, 4, 9, 2), true),  // higher, fewer records
        (cp(gd, 3, 10, 1), cp(gd, 4, 12, 2), false), // growth
        (cp(gd, 3, 10, 1), cp(gd, 3, 10, 1), false), // the same
        // One height, two status sets: signed at one time, or the later holding more,
        // convicts; the later holding fewer is an entry past its end leaving the set.
        (cp(gd, 3, 10, 1), status(cp(gd, 3, 10, 1), 2, 0), true),
        (
            cp(gd, 3, 10, 1),
            later(status(cp(gd, 3, 10, 1), 2, 0)),
            true,
        ),
        (
            cp(gd, 3, 10, 1),
            later(status(cp(gd, 3, 10, 1), 0, 0)),
            false,
        ),
        (
            later(cp(gd, 3, 10, 1)),
            status(cp(gd, 3, 10, 1), 2, 0),
            false,
        ),
    ];
    for (a, b, conflict) in cases {
        let ev = CheckpointConflict::of(&net, &sign(a.clone()), &sign(b.clone()));
        assert_eq!(ev.is_some(), conflict, "{a:?} {b:?}");
        if let Some(ev) = ev {
            let back = CheckpointConflict::decode(&net, &ev.encode()).expect("verifies");
            assert_eq!(back, ev);
        }
    }
    // Evidence that does not convict is refused.
    let ev = CheckpointConflict {
        department: gd.clone(),
        first: sign(cp(gd, 3, 10, 1)).encode(),
        second: sign(cp(gd, 4, 12, 1)).encode(),
    };
    assert_eq!(
        CheckpointConflict::decode(&net, &ev.encode()),
        Err(CheckpointError::NoConflict)
    );
    assert!(CheckpointConflict::decode(&net, &[0xff; 10]).is_err());
    assert!(CheckpointConflict::decode(&net, &vec![0; CONFLICT_BYTES_MAX + 1]).is_err());
}

#[test]
fn a_witness_cosigns_only_what_its_own_copy_shows() {
    let (_, keys, _) = network(2);
    let gd = &keys[0].0;
    let c = cp(gd, 3, 10, 1);
    let now = c.time_ms;
    let copy = ChainCopy {
        height: 3,
        size: 10,
        root: c.root,
        status_count: 1,
        status_root: c.status_root,
    };
    let check = |c: &DeptCheckpoint, copy: &ChainCopy, last: Option<Cosigned>, now| {
        witness_check(c, copy, last.as_ref(), now)
    };
    assert_eq!(check(&c, &copy, None, now), Ok(()));
    let refused = |r: Result<(), WitnessRefusal>| r.expect_err("refused");
    assert!(matches!(
        refused(check(
            &c,
            &ChainCopy {
                height: 2,
                ..copy.clone()
            },
            None,
            now
        )),
        WitnessRefusal::Behind { own: 2, height: 3 }
    ));
    assert!(matches!(
        refused(check(
            &c,
            &ChainCopy {
                height: 4,
                ..copy.clone()
            },
            None,
            now
        )),
        WitnessRefusal::Ahead { .. }
    ));
    let r = refused(check(
        &c,
        &ChainCopy {
            root: Hash32([2; 32]),
            ..copy.clone()
        },
        None,
        now,
    ));
    assert!(matches!(r, WitnessRefusal::TreeMismatch { .. }) && r.is_misbehaviour());
    let r = refused(check(
        &c,
        &ChainCopy {
            status_count: 0,
            ..copy.clone()
        },
        None,
        now,
    ));
    assert!(matches!(r, WitnessRefusal::StatusMismatch { .. }) && r.is_misbehaviour());
    let r = refused(check(&c, &copy, None, now + TIME_SKEW_MS_MAX + 1));
    assert!(matches!(r, WitnessRefusal::Time { .. }) && !r.is_misbehaviour());
    // Never an older one, nor the same one twice, nor one inconsistent with the last.
    let last = Cosigned::of(&c);
    assert!(matches!(
        refused(check(&c, &copy, Some(last), now)),
        WitnessRefusal::Older { .. }
    ));
    let later = DeptCheckpoint {
        time_ms: c.time_ms + 1000,
        ..c.clone()
    };
    assert_eq!(check(&later, &copy, Some(last), now), Ok(()));
    let shrunk = Cosigned {
        height: 2,
        size: 12,
        ..last
    };
    assert!(matches!(
        refused(check(&later, &copy, Some(shrunk), now)),
        WitnessRefusal::Inconsistent { .. }
    ));
    let forked = Cosigned {
        root: Hash32([7; 32]),
        ..last
    };
    assert!(refused(check(&later, &copy, Some(forked), now)).is_misbehaviour());
    assert_eq!(Cosigned::from_bytes(&last.to_bytes()), Some(last));
    assert_eq!(Cosigned::from_bytes(&[0; 55]), None);
}

#[test]
fn checkpoint_rules_are_checked_and_default_when_absent() {
    let (doc, _) = sample();
    let net = Network::from_document(doc.clone()).expect("valid");
    assert_eq!(net.checkpoint_rules(), CheckpointRules::DEFAULT);
    let mut bad = doc;
    bad.checkpoints = Some(CheckpointRules {
        bundle_soft_max_secs: 10 * 24 * 3600,
        ..CheckpointRules::DEFAULT
    });
    assert!(matches!(
        Network::from_document(bad),
        Err(crate::genesis::GenesisError::BadCheckpointRules(_))
    ));
}

/// What a department and a witness of a Huren network sign reads in someone else's
/// implementation of the C2SP formats: the note, its checkpoint with Huren's extension
/// lines, and the department's signature under its verifier key.
#[test]
fn a_huren_checkpoint_reads_in_an_independent_implementation() {
    let (net, keys, nodes) = network(2);
    let (gd, key) = &keys[0];
    let mut s = SignedCheckpoint::sign(&net, cp(gd, 3, 10, 1), key);
    s.cosign(&net, "gd.market", &nodes[1], 1_700_000_000);
    let encoded = s.encode();
    let theirs = signed_note::Note::from_bytes(encoded.as_bytes()).expect("their parse");
    let name = origin(&net, gd);
    let v = signed_note::StandardVerifier::new(&tlog::verifier_key(
        &name,
        tlog::ALG_ED25519,
        &key.public(),
    ))
    .expect("their verifier key");
    let (verified, _) = theirs
        .verify(&signed_note::VerifierList::new(vec![Box::new(v)]))
        .expect("their verification");
    assert_eq!(verified.len(), 1);
    let parsed = tlog_tiles::Checkpoint::from_bytes(theirs.text()).expect("their checkpoint");
    assert_eq!(parsed.origin(), name);
    assert_eq!(parsed.size(), 10);
    assert_eq!(parsed.hash().0, [1; 32]);
}
