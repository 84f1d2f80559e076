use std::collections::HashMap;

use super::*;
use crate::checkpoint::DeptCheckpoint;
use crate::crypto::SecretKey;
use crate::ids::{DepartmentId, LicenceType};
use crate::ledger::{Issue, OfficerId};
use crate::ledger::{RevokeReason, SuspendReason};

struct Map(HashMap<(u8, u64), Hash32>);

impl HashReader for Map {
    fn stored(&self, level: u8, index: u64) -> Option<Hash32> {
        self.0.get(&(level, index)).copied()
    }
}

struct World {
    net: Network,
    gd: DepartmentId,
    issuer: SecretKey,
    nodes: Vec<SecretKey>,
    /// gd.transport's records: licences 1..=9 issued at height 1, one each.
    leaves: Vec<Vec<u8>>,
    tree: Map,
    status: StatusTree,
}

fn id(serial: u64) -> LicenceId {
    LicenceId::new(
        DepartmentId::parse("gd.transport").expect("dept"),
        LicenceType::parse("mvdl").expect("type"),
        serial,
    )
}

fn world(revoked: &[u64]) -> World {
    let (net, keys, nodes) = crate::checkpoint::tests::network_with(2, false);
    let leaves: Vec<Vec<u8>> = (1..=9)
        .map(|n| {
            Record::Issue(Issue {
                licence_id: id(n),
                valid_from: 1,
                valid_until: 2,
                commitment: Hash32::digest(&n.to_be_bytes()),
                officer: OfficerId::parse("officer-1").expect("officer"),
                origin: None,
            })
            .leaf(1, (n - 1) as usize)
        })
        .collect();
    let mut f = tlog::Frontier::default();
    let mut map = HashMap::new();
    for l in &leaves {
        for (level, index, h) in f.push(tlog::leaf_hash(l)) {
            map.insert((level, index), h);
        }
    }
    let mut entries: Vec<[u8; 18]> = revoked
        .iter()
        .map(|&n| {
            tlog::status_entry(&id(n), LicenceStatus::Revoked(RevokeReason::Penalty))
                .expect("entry")
        })
        .collect();
    entries.sort();
    World {
        net,
        gd: keys[0].0.clone(),
        issuer: keys[0].1.clone(),
        nodes,
        leaves,
        tree: Map(map),
        status: StatusTree::new(entries),
    }
}

impl World {
    fn checkpoint(&self, cosigners: usize) -> SignedCheckpoint {
        let size = self.leaves.len() as u64;
        let (status_count, status_root) = self.status.root();
        let mut cp = SignedCheckpoint::sign(
            &self.net,
            DeptCheckpoint {
                department: self.gd.clone(),
                size,
                root: tlog::root(size, &self.tree).expect("root"),
                height: 1,
                status_count,
                status_root,
                time_ms: 1_700_000_000_000,
            },
            &self.issuer,
        );
        for (name, key) in [
            ("gd.market", &self.nodes[1]),
            ("sh.transport", &self.nodes[2]),
        ]
        .into_iter()
        .take(cosigners)
        {
            cp.cosign(&self.net, name, key, 1_700_000_000);
        }
        cp
    }

    fn proof(&self, serial: u64) -> LicenceProof {
        let index = serial - 1;
        LicenceProof {
            checkpoint: self.checkpoint(2),
            issue: Some(RecordInclusion {
                leaf: self.leaves[index as usize].clone(),
                index,
                path: tlog::inclusion_proof(index, self.leaves.len() as u64, &self.tree)
                    .expect("path"),
            }),
            status: self.status.place(&id(serial)),
            credential: {
                let key = tlog::credential_status_key(&Hash32::digest(&serial.to_be_bytes()));
                Some((key, self.status.place_key(key)))
            },
        }
    }
}

#[test]
fn the_status_tree_root_is_the_status_sets() {
    let w = world(&[2, 5, 7]);
    assert_eq!(
        w.status.root(),
        tlog::status_root(w.status.entries().iter().copied())
    );
    assert_eq!(StatusTree::new(Vec::new()).root(), (0, tlog::empty_root()));
}

#[test]
fn a_proof_shows_a_revoked_licence_revoked_and_every_other_active() {
    let w = world(&[2, 5, 7]);
    for serial in 1..=9 {
        let proven = check(&w.net, &id(serial), &w.proof(serial)).expect("the proof holds");
        let expected = if [2, 5, 7].contains(&serial) {
            LicenceStatus::Revoked(RevokeReason::Penalty)
        } else {
            LicenceStatus::Active
        };
        assert_eq!(proven.status, expected, "licence {serial}");
        assert_eq!(
            proven.credential.map(|(_, superseded)| superseded),
            Some(false),
            "licence {serial}: its credential is not superseded"
        );
        assert_eq!(
            proven.issued.map(|(h, r)| (h, r.licence_id().clone())),
            Some((1, id(serial)))
        );
    }
    // An empty set, and a set of one.
    for revoked in [&[][..], &[4][..]] {
        let w = world(revoked);
        for serial in 1..=9 {
            assert!(
                check(&w.net, &id(serial), &w.proof(serial)).is_ok(),
                "{serial}"
            );
        }
    }
}

#[test]
fn a_node_cannot_hide_a_revocation_or_forge_an_issue() {
    let w = world(&[2, 5, 7]);
    let refused =
        |p: &LicenceProof, serial: u64| check(&w.net, &id(serial), p).expect_err("refused");

    // Licence 5 is revoked: the entries around it (2 and 7) are not neighbours.
    let mut hide = w.proof(5);
    hide.status = vec![
        w.status.place(&id(2))[0].clone(),
        w.status.place(&id(7))[0].clone(),
    ];
    assert!(matches!(refused(&hide, 5), ProofError::Placement(_)));
    // Nothing at all, for a set that is not empty.
    let mut nothing = w.proof(5);
    nothing.status.clear();
    assert!(matches!(refused(&nothing, 5), ProofError::Placement(_)));
    // An entry changed to look like a suspension does not hash into the set.
    let mut softer = w.proof(5);
    let s = LicenceStatus::Suspended(SuspendReason::Penalty).to_bytes();
    softer.status[0].entry[16..].copy_from_slice(&s);
    assert!(matches!(
        refused(&softer, 5),
        ProofError::StatusInclusion(_)
    ));
    // Another licence's issue record, or a broken path.
    let mut other = w.proof(3);
    other.issue = w.proof(4).issue;
    assert!(matches!(refused(&other, 3), ProofError::NotTheIssue(_)));
    let mut broken = w.proof(3);
    if let Some(i) = &mut broken.issue {
        i.path[0] = Hash32([0; 32]);
    }
    assert!(matches!(refused(&broken, 3), ProofError::Inclusion(_)));
    // A checkpoint short of its quorum, or of another department.
    let mut lonely = w.proof(3);
    lonely.checkpoint = w.checkpoint(1);
    assert!(matches!(
        refused(&lonely, 3),
        ProofError::Quorum { got: 1, quorum: 2 }
    ));
    let stranger = LicenceId::new(
        DepartmentId::parse("sh.transport").expect("dept"),
        LicenceType::parse("mvdl").expect("type"),
        3,
    );
    assert!(matches!(
        check(&w.net, &stranger, &w.proof(3)),
        Err(ProofError::Department { .. })
    ));
    // A leaf that is not canonical CBOR is refused before it is hashed.
    let mut garbled = w.proof(3);
    if let Some(i) = &mut garbled.issue {
        i.leaf.push(0);
    }
    assert!(matches!(refused(&garbled, 3), ProofError::Leaf(_)));
}

/// The worked example of docs/checkpoints.md, made again from its keys: the text between
/// the markers there must be exactly this.
fn worked_example() -> String {
    use crate::bundle::{Bundle, BundleDepartment};
    use std::fmt::Write;
    let w = world(&[2]);
    let cp = w.checkpoint(2);
    let mut out = String::new();
    let _ = writeln!(out, "genesis hash     {}", w.net.hash());
    let _ = writeln!(
        out,
        "issuer key       gd.transport: Ed25519 seed 01…01 (32 bytes of 0x01)"
    );
    let _ = writeln!(
        out,
        "witness keys     gd.market: seed 66…66 (0x66 = 102), sh.transport: seed 67…67"
    );
    let _ = writeln!(out, "\nrecords          licences gd.transport-mvdl-000001 … 000009, issued in block 1 (index 0…8)");
    let _ = writeln!(out, "leaf 0 (hex)     {}", hex::encode(&w.leaves[0]));
    let _ = writeln!(out, "leaf hash 0      {}", tlog::leaf_hash(&w.leaves[0]));
    let _ = writeln!(out, "\nstatus entry     licence 000002 revoked (penalty):");
    let entry = w.status.entries()[0];
    let _ = writeln!(out, "  key            {}", hex::encode(&entry[..16]));
    let _ = writeln!(out, "  status, reason {}", hex::encode(&entry[16..]));
    let _ = writeln!(
        out,
        "\nthe signed, cosigned checkpoint (a C2SP signed note):\n"
    );
    out.push_str(&cp.encode());
    let proof = w.proof(3);
    let issue = proof.issue.as_ref().expect("issue");
    let _ = writeln!(
        out,
        "\nproof of licence 000003 (POST /v1/verify?proof=1, `proof`):"
    );
    let _ = writeln!(out, "  issue.leaf     {}", hex::encode(&issue.leaf));
    let _ = writeln!(out, "  issue.index    {}", issue.index);
    for (i, h) in issue.path.iter().enumerate() {
        let _ = writeln!(out, "  issue.path[{i}]  {h}");
    }
    for s in &proof.status {
        let _ = writeln!(
            out,
            "  status         entry {} at index {}, path {:?}",
            hex::encode(s.entry),
            s.index,
            s.path.iter().map(|h| h.to_string()).collect::<Vec<_>>()
        );
    }
    let bundle = Bundle {
        genesis: w.net.hash(),
        made_ms: 1_700_000_000_000,
        governance: None,
        departments: vec![BundleDepartment {
            checkpoint: cp.encode(),
            status: w.status.entries().to_vec(),
        }],
    }
    .encode();
    let _ = writeln!(
        out,
        "\nbundle of that checkpoint and set (made_ms 1700000000000, no governance):\n  {} bytes, SHA-256 {}\n  first 64 bytes {}",
        bundle.len(),
        Hash32::digest(&bundle),
        hex::encode(&bundle[..64])
    );
    out
}

#[test]
fn the_worked_example_in_the_docs_is_what_the_code_makes() {
    let doc = include_str!("../../../docs/checkpoints.md");
    let begin = "<!-- worked example: begin -->\n```text\n";
    let end = "```\n<!-- worked example: end -->";
    let made = worked_example();
    let Some(start) = doc.find(begin) else {
        panic!("docs/checkpoints.md has no worked example; it should read:\n{made}");
    };
    let body = &doc[start + begin.len()..];
    let body = &body[..body.find(end).expect("the example's end marker")];
    assert_eq!(
        body, made,
        "docs/checkpoints.md's worked example is out of date"
    );
}
