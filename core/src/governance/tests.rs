use super::*;
use crate::genesis::tests::sample;
use crate::genesis::Region;
use crate::ids::RegionCode;
use proptest::prelude::*;

/// The sample network (gd.transport, gd.market, sh.transport; quorum 2) at height 0,
/// and each department's key.
fn founded() -> (Network, Vec<(DepartmentId, SecretKey)>) {
    let (doc, keys) = sample();
    (Network::from_document(doc).expect("valid"), keys)
}

/// A block on `state`'s head carrying `record`, cosigned by the departments at `signers`
/// (indexes into `keys`).
fn block(
    state: &Network,
    keys: &[(DepartmentId, SecretKey)],
    signers: &[usize],
    record: GovRecord,
) -> GovBlock {
    let mut b = GovBlock::new(GovHeader {
        genesis: state.hash(),
        height: state.gov_height() + 1,
        prev: state.gov_head(),
        time_ms: 1_800_000_000_000 + state.gov_height(),
        record,
    });
    for &i in signers {
        b.cosign(keys[i].0.clone(), &keys[i].1);
    }
    b
}

fn dept(id: &str) -> DepartmentId {
    DepartmentId::parse(id).expect("department")
}

fn new_department(id: &str, seed: u8) -> (Department, SecretKey) {
    let key = SecretKey::from_seed(&[seed; 32]);
    (
        Department {
            id: dept(id),
            name: format!("department {id}"),
            region: RegionCode::parse("440000").expect("region"),
            grants: vec![LicenceType::parse("mvdl").expect("type")],
            issuer_key: key.public(),
            node_peer_id: format!("peer-{seed}"),
        },
        key,
    )
}

#[test]
fn a_record_applies_with_a_quorum_and_keeps_the_founding_hash() {
    let (g0, keys) = founded();
    let founding = g0.hash();
    let record = GovRecord::AddRegion {
        region: Region {
            code: RegionCode::parse("110000").expect("region"),
            name: "北京市".into(),
        },
    };
    let one = block(&g0, &keys, &[0], record.clone());
    assert_eq!(
        g0.apply(&one).expect_err("one signature"),
        GovError::NoQuorum {
            signatures: 1,
            quorum: 2
        }
    );
    let two = block(&g0, &keys, &[0, 2], record);
    let g1 = g0.apply(&two).expect("quorum");
    assert_eq!(g1.gov_height(), 1);
    assert_eq!(g1.gov_head(), two.id());
    assert_eq!(g1.hash(), founding, "blocks keep naming genesis");
    assert!(g1
        .region(&RegionCode::parse("110000").expect("region"))
        .is_some());
    assert!(
        g0.region(&RegionCode::parse("110000").expect("region"))
            .is_none(),
        "the old state is untouched: apply is pure"
    );
}

#[test]
fn every_refusal_is_typed_and_changes_nothing() {
    let (g0, keys) = founded();
    let record = GovRecord::ChangeQuorum { quorum: 3 };
    // Not building on the head.
    let mut stale = block(&g0, &keys, &[0, 1], record.clone());
    stale.header.prev = Hash32::digest(b"elsewhere");
    let stale = {
        let mut b = GovBlock::new(stale.header);
        b.cosign(keys[0].0.clone(), &keys[0].1);
        b.cosign(keys[1].0.clone(), &keys[1].1);
        b
    };
    assert!(matches!(g0.apply(&stale), Err(GovError::NotOnHead { .. })));
    // Another network.
    let mut other = block(&g0, &keys, &[], record.clone()).header;
    other.genesis = Hash32::digest(b"other network");
    assert!(matches!(
        g0.apply(&GovBlock::new(other)),
        Err(GovError::OtherNetwork(_))
    ));
    // A stranger's signature, and a forged one.
    let mut b = block(&g0, &keys, &[0, 1], record.clone());
    b.cosign(dept("bj.transport"), &SecretKey::from_seed(&[99; 32]));
    assert_eq!(
        g0.apply(&b).expect_err("stranger"),
        GovError::NotAVoter {
            signer: dept("bj.transport")
        }
    );
    let mut b = block(&g0, &keys, &[0], record.clone());
    b.cosign(keys[1].0.clone(), &keys[2].1);
    assert_eq!(
        g0.apply(&b).expect_err("wrong key"),
        GovError::BadSignature {
            signer: keys[1].0.clone()
        }
    );
    // A quorum the rule forbids: 4 of 3 voters, and 1 of 3 (not more than half).
    for quorum in [4, 1] {
        let b = block(&g0, &keys, &[0, 1], GovRecord::ChangeQuorum { quorum });
        assert_eq!(
            g0.apply(&b).expect_err("quorum rule"),
            GovError::QuorumRule { quorum, voters: 3 }
        );
    }
    // Unknown departments, observers and nodes.
    let b = block(
        &g0,
        &keys,
        &[0, 1],
        GovRecord::SetGrants {
            department: dept("xx.nobody"),
            grants: vec![],
        },
    );
    assert_eq!(
        g0.apply(&b).expect_err("unknown"),
        GovError::UnknownDepartment(dept("xx.nobody"))
    );
    let b = block(
        &g0,
        &keys,
        &[0, 1],
        GovRecord::RemoveObserver { name: "x".into() },
    );
    assert!(matches!(g0.apply(&b), Err(GovError::UnknownObserver(_))));
    // A network the record would make invalid: a grant of an undefined type.
    let b = block(
        &g0,
        &keys,
        &[0, 1],
        GovRecord::SetGrants {
            department: keys[0].0.clone(),
            grants: vec![LicenceType::parse("boat").expect("type")],
        },
    );
    assert!(matches!(g0.apply(&b), Err(GovError::Invalid(_))));
    assert_eq!(g0.gov_height(), 0);
}

/// Adding a department grows the voters: with quorum 2 a fourth department would leave
/// 2 of 4, which two halves could each reach; the quorum must rise first.
#[test]
fn the_quorum_rule_holds_through_every_change() {
    let (g0, mut keys) = founded();
    let (bj, bj_key) = new_department("bj.transport", 40);
    keys.push((bj.id.clone(), bj_key));
    let add = GovRecord::AddDepartment { department: bj };
    let refused = block(&g0, &keys, &[0, 1], add.clone());
    assert_eq!(
        g0.apply(&refused).expect_err("2 of 4"),
        GovError::QuorumRule {
            quorum: 2,
            voters: 4
        }
    );
    let g1 = g0
        .apply(&block(
            &g0,
            &keys,
            &[0, 1],
            GovRecord::ChangeQuorum { quorum: 3 },
        ))
        .expect("3 of 3");
    let g2 = g1
        .apply(&block(&g1, &keys, &[0, 1, 2], add))
        .expect("3 of 4");
    assert_eq!(g2.voters().count(), 4);
    // Retiring one leaves 3 voters, and 3 of 3 still holds. The department retired does
    // not count toward its own retirement: the other three sign.
    let retire = |d: usize| GovRecord::RetireDepartment {
        department: keys[d].0.clone(),
        last_height: 10,
        successor: Some(keys[0].0.clone()),
    };
    assert!(matches!(
        g2.apply(&block(&g2, &keys, &[0, 1, 2], retire(1))),
        Err(GovError::NoQuorum { signatures: 2, .. })
    ));
    let g3 = g2
        .apply(&block(&g2, &keys, &[0, 2, 3], retire(1)))
        .expect("retire");
    // A second retirement would leave 3 of 2: it cannot even gather its quorum.
    assert!(matches!(
        g3.apply(&block(&g3, &keys, &[0, 2, 3], retire(2))),
        Err(GovError::NoQuorum { signatures: 2, .. })
    ));
    assert_eq!(g3.voters().count(), 3);
    assert_eq!(
        g3.retirement(&keys[1].0),
        Some(&Retirement {
            last_height: 10,
            successor: Some(keys[0].0.clone())
        })
    );
    // A retired department no longer signs.
    let b = block(
        &g3,
        &keys,
        &[0, 1, 2],
        GovRecord::ChangeQuorum { quorum: 2 },
    );
    assert_eq!(
        g3.apply(&b).expect_err("retired signer"),
        GovError::Retired(keys[1].0.clone())
    );
}

/// A department whose key a record changes does not count toward that record.
#[test]
fn the_subject_of_a_record_does_not_count_toward_its_quorum() {
    let (g0, keys) = founded();
    let rotate = GovRecord::RotateIssuerKey {
        department: keys[0].0.clone(),
        key: SecretKey::from_seed(&[50; 32]).public(),
    };
    let with_self = block(&g0, &keys, &[0, 1], rotate.clone());
    assert_eq!(
        g0.apply(&with_self)
            .expect_err("gd.transport signs its own rotation"),
        GovError::NoQuorum {
            signatures: 1,
            quorum: 2
        }
    );
    g0.apply(&block(&g0, &keys, &[1, 2], rotate))
        .expect("two others");
}

/// Which key signs a department block is decided by its height and the governance
/// height it names: a rotation applies to blocks cut under it, a compromise fences every
/// key of the department at the last good height.
#[test]
fn key_history_decides_by_height_and_governance_height() {
    let (g0, keys) = founded();
    let gd = keys[0].0.clone();
    let (old, new, replacement) = (
        keys[0].1.public(),
        SecretKey::from_seed(&[51; 32]).public(),
        SecretKey::from_seed(&[52; 32]).public(),
    );
    let g1 = g0
        .apply(&block(
            &g0,
            &keys,
            &[1, 2],
            GovRecord::RotateIssuerKey {
                department: gd.clone(),
                key: new,
            },
        ))
        .expect("rotation");
    let key = |g: &Network, height, gov| g.signing_key(&gd, height, gov).map(|s| s.key);
    assert_eq!(key(&g1, 9, 0), Some(old), "cut before the rotation");
    assert_eq!(key(&g1, 9, 1), Some(new), "cut under it");
    assert_eq!(key(&g1, 0, 1), None, "heights start at 1");
    assert_eq!(g1.department(&gd).map(|d| &d.issuer_key), Some(&new));
    assert_eq!(
        g1.key_span(&old.key_id())
            .map(|(d, s)| (&d.id, s.compromised)),
        Some((&gd, false)),
        "a rotated-out key still names its department"
    );
    // The old key may not come back, under any department.
    let reuse = GovRecord::RotateIssuerKey {
        department: gd.clone(),
        key: old,
    };
    assert_eq!(
        g1.apply(&block(&g1, &keys, &[1, 2], reuse))
            .expect_err("reuse"),
        GovError::KeyInUse
    );
    let g2 = g1
        .apply(&block(
            &g1,
            &keys,
            &[1, 2],
            GovRecord::KeyCompromised {
                department: gd.clone(),
                last_good: 20,
                replacement,
            },
        ))
        .expect("compromise");
    let spans = g2.key_history(&gd);
    assert_eq!(spans.len(), 3);
    assert_eq!(
        spans
            .iter()
            .map(|s| (s.until_height, s.compromised))
            .collect::<Vec<_>>(),
        vec![(Some(20), false), (Some(20), true), (None, false)],
        "every key is fenced at the last good height; the current one is compromised"
    );
    assert_eq!(key(&g2, 20, 1), Some(new));
    assert_eq!(key(&g2, 20, 0), Some(old));
    assert_eq!(key(&g2, 21, 2), Some(replacement));
    assert_eq!(
        key(&g2, 21, 1),
        None,
        "past the fence, only the replacement, cut under the record"
    );
    assert_eq!(key(&g2, 21, 0), None);
    // A later compromise cannot reach back before the replacement's first height.
    let early = GovRecord::KeyCompromised {
        department: gd.clone(),
        last_good: 5,
        replacement: SecretKey::from_seed(&[53; 32]).public(),
    };
    assert!(matches!(
        g2.apply(&block(&g2, &keys, &[1, 2], early)),
        Err(GovError::KeyChangeTooEarly { .. })
    ));
}

/// Two different records at one height, each with a quorum: with q > n/2 some
/// department signed both, and that is provable.
#[test]
fn conflicting_records_with_quorum_expose_a_double_signer() {
    let (g0, keys) = founded();
    let a = block(&g0, &keys, &[0, 1], GovRecord::ChangeQuorum { quorum: 3 });
    let b = block(
        &g0,
        &keys,
        &[1, 2],
        GovRecord::RemoveObserver {
            name: "nobody".into(),
        },
    );
    assert_eq!(double_signers(&g0, &a, &b), vec![keys[1].0.clone()]);
    assert!(
        double_signers(&g0, &a, &a).is_empty(),
        "one block is no conflict"
    );
}

#[test]
fn blocks_round_trip_and_refuse_non_canonical_bytes() {
    let (g0, keys) = founded();
    let (bj, _) = new_department("bj.transport", 41);
    for record in [
        GovRecord::AddDepartment { department: bj },
        GovRecord::ChangeQuorum { quorum: 3 },
        GovRecord::RetireDepartment {
            department: keys[1].0.clone(),
            last_height: 3,
            successor: None,
        },
    ] {
        let b = block(&g0, &keys, &[0, 2], record.clone());
        let bytes = b.encode();
        let back = GovBlock::decode(&bytes).expect("decodes");
        assert_eq!(back, b);
        assert_eq!(back.id(), b.id());
        assert!(!record.describe().is_empty());
    }
    let b = block(&g0, &keys, &[0], GovRecord::ChangeQuorum { quorum: 3 });
    let mut bytes = b.encode();
    bytes.push(0);
    assert!(GovBlock::decode(&bytes).is_err(), "trailing bytes");
    assert!(matches!(
        GovBlock::decode(&vec![0u8; GOV_BLOCK_BYTES_MAX + 1]),
        Err(GovCodecError::TooLarge { .. })
    ));
    // An unknown record kind is a typed error.
    let v = Value::Array(vec![
        Value::Array(vec![
            Value::Text(GOV_TAG.into()),
            Value::Bytes(vec![0; 32]),
            Value::Integer(1.into()),
            Value::Bytes(vec![0; 32]),
            Value::Integer(1.into()),
            Value::Map(vec![(
                Value::Text("kind".into()),
                Value::Text("dissolve".into()),
            )]),
        ]),
        Value::Array(vec![]),
    ]);
    assert!(matches!(
        GovBlock::decode(&to_bytes(&v)),
        Err(GovCodecError::Record(_))
    ));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = GovBlock::decode(&data);
    }
}

/// New record kinds switch on everywhere at once: by a quorum record that raises the
/// protocol version, never lowers it.
#[test]
fn the_protocol_version_is_raised_by_a_record_and_never_lowered() {
    let (g0, keys) = founded();
    assert_eq!(
        g0.protocol_version(),
        1,
        "a document without a version is version 1"
    );
    let b = block(
        &g0,
        &keys,
        &[0, 1],
        GovRecord::SetProtocolVersion { version: 2 },
    );
    let g1 = g0.apply(&b).expect("applies");
    assert_eq!(g1.protocol_version(), 2);
    assert_eq!(g1.hash(), g0.hash(), "the founding hash stays");
    for version in [1, 2] {
        let b = block(
            &g1,
            &keys,
            &[0, 1],
            GovRecord::SetProtocolVersion { version },
        );
        assert_eq!(
            g1.apply(&b).map(|_| ()).map_err(|e| e.code()),
            Err("version_not_raised")
        );
    }
}

#[test]
fn the_checkpoint_rules_change_by_a_record_within_their_bounds() {
    use crate::genesis::CheckpointRules;
    let (g0, keys) = founded();
    assert_eq!(g0.checkpoint_rules(), CheckpointRules::DEFAULT);
    let rules = CheckpointRules {
        witness_quorum: 1,
        bundle_soft_max_secs: 3600,
        bundle_hard_max_secs: 7200,
    };
    let b = block(&g0, &keys, &[0, 1], GovRecord::SetCheckpointRules { rules });
    let g1 = g0.apply(&b).expect("applies");
    assert_eq!(g1.checkpoint_rules(), rules);
    assert_eq!(g1.hash(), g0.hash(), "the founding hash stays");
    // A soft limit past the hard one is refused, and changes nothing.
    let bad = CheckpointRules {
        bundle_soft_max_secs: 9000,
        ..rules
    };
    let b = block(
        &g1,
        &keys,
        &[0, 1],
        GovRecord::SetCheckpointRules { rules: bad },
    );
    assert!(g1.apply(&b).is_err());
    assert_eq!(g1.checkpoint_rules(), rules);
}
