use std::collections::HashMap;

use super::*;

/// Stored hashes in a map: what the node keeps in sled.
#[derive(Default)]
struct Tree {
    hashes: HashMap<(u8, u64), Hash32>,
    size: u64,
}

impl HashReader for Tree {
    fn stored(&self, level: u8, index: u64) -> Option<Hash32> {
        self.hashes.get(&(level, index)).copied()
    }
}

impl Tree {
    fn push(&mut self, data: &[u8]) {
        for (level, index, h) in appended(self.size, leaf_hash(data), self).expect("stored") {
            self.hashes.insert((level, index), h);
        }
        self.size += 1;
    }

    fn of(leaves: &[Vec<u8>]) -> Self {
        let mut t = Tree::default();
        for l in leaves {
            t.push(l);
        }
        t
    }
}

fn h(hex: &str) -> Hash32 {
    Hash32::from_hex(hex).expect("hex")
}

/// The leaves of transparency-dev/merkle's test tree (testonly/constants.go).
fn leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|x| hex::decode(x).expect("hex"))
    .collect()
}

/// The RFC 6962 roots of the first 1..8 leaves, as published.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn roots_and_proofs_match_the_published_vectors() {
    assert_eq!(
        empty_root().to_hex(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        leaf_hash(b"L123456").to_hex(),
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    );
    let tree = Tree::of(&leaves());
    for (i, r) in ROOTS.iter().enumerate() {
        assert_eq!(
            root(i as u64 + 1, &tree).expect("root").to_hex(),
            *r,
            "size {}",
            i + 1
        );
    }
    // Inclusion proofs (cmd/proofgen, 0-based indices).
    let inclusion: &[(u64, u64, &[&str])] = &[
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (0, 1, &[]),
    ];
    for (index, size, want) in inclusion {
        let proof = inclusion_proof(*index, *size, &tree).expect("proof");
        let want: Vec<Hash32> = want.iter().map(|x| h(x)).collect();
        assert_eq!(proof, want, "inclusion {index} in {size}");
        let leaf = leaf_hash(&leaves()[*index as usize]);
        let r = h(ROOTS[*size as usize - 1]);
        verify_inclusion(&leaf, *index, *size, &proof, &r).expect("verifies");
    }
    let consistency: &[(u64, u64, &[&str])] = &[
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (1, 1, &[]),
    ];
    for (old, new, want) in consistency {
        let proof = consistency_proof(*old, *new, &tree).expect("proof");
        let want: Vec<Hash32> = want.iter().map(|x| h(x)).collect();
        assert_eq!(proof, want, "consistency {old} to {new}");
        let (r1, r2) = (h(ROOTS[*old as usize - 1]), h(ROOTS[*new as usize - 1]));
        verify_consistency(*old, *new, &r1, &r2, &proof).expect("verifies");
    }
}

/// The streaming root (`Frontier`) is the stored-hash root at every size.
#[test]
fn the_frontier_root_is_the_tree_root() {
    let data: Vec<Vec<u8>> = (0u32..70).map(|i| i.to_be_bytes().to_vec()).collect();
    let tree = Tree::of(&data);
    let mut f = Frontier::default();
    assert_eq!(f.root(), empty_root());
    for d in &data {
        for (level, index, h) in f.push(leaf_hash(d)) {
            assert_eq!(tree.stored(level, index), Some(h), "({level}, {index})");
        }
        assert_eq!(
            f.root(),
            root(f.size(), &tree).expect("root"),
            "size {}",
            f.size()
        );
    }
}

/// Every proof between every pair of sizes up to 70 verifies, and none verifies once
/// any hash in it, the index, the sizes or the root is changed.
#[test]
fn every_proof_verifies_and_no_altered_one_does() {
    let data: Vec<Vec<u8>> = (0u32..70).map(|i| i.to_be_bytes().to_vec()).collect();
    let tree = Tree::of(&data);
    let roots: Vec<Hash32> = (0..=70).map(|n| root(n, &tree).expect("root")).collect();
    let flip = |mut x: Hash32| {
        x.0[0] ^= 1;
        x
    };
    for size in 1..=70u64 {
        for index in 0..size {
            let leaf = leaf_hash(&data[index as usize]);
            let p = inclusion_proof(index, size, &tree).expect("proof");
            let r = roots[size as usize];
            verify_inclusion(&leaf, index, size, &p, &r).expect("inclusion");
            assert!(verify_inclusion(&flip(leaf), index, size, &p, &r).is_err());
            assert!(verify_inclusion(&leaf, index, size, &p, &flip(r)).is_err());
            if size > 1 {
                assert!(verify_inclusion(&leaf, (index + 1) % size, size, &p, &r).is_err());
            }
            for k in 0..p.len() {
                let mut bad = p.clone();
                bad[k] = flip(bad[k]);
                assert!(verify_inclusion(&leaf, index, size, &bad, &r).is_err());
            }
            let mut longer = p.clone();
            longer.push(r);
            assert!(verify_inclusion(&leaf, index, size, &longer, &r).is_err());
        }
        for old in 0..=size {
            let p = consistency_proof(old, size, &tree).expect("proof");
            let (r1, r2) = (roots[old as usize], roots[size as usize]);
            verify_consistency(old, size, &r1, &r2, &p).expect("consistency");
            if old > 0 && old < size {
                assert!(verify_consistency(old, size, &flip(r1), &r2, &p).is_err());
                assert!(verify_consistency(old, size, &r1, &flip(r2), &p).is_err());
                for k in 0..p.len() {
                    let mut bad = p.clone();
                    bad[k] = flip(bad[k]);
                    assert!(verify_consistency(old, size, &r1, &r2, &bad).is_err());
                }
            }
        }
    }
    assert!(consistency_proof(5, 4, &tree).is_err());
    assert!(inclusion_proof(70, 70, &tree).is_err());
}

/// The signed-note spec's own example: its key id and signature check here.
#[test]
fn the_signed_note_example_of_the_spec_verifies() {
    let vkey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    let raw = B64
        .decode(vkey.rsplit('+').next().expect("key"))
        .expect("b64");
    assert_eq!(raw[0], ALG_ED25519);
    let key = PublicKey::from_bytes(&raw[1..].try_into().expect("32")).expect("key");
    assert_eq!(verifier_key("example.com/foo", ALG_ED25519, &key), vkey);
    let text = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    let note = Note::parse(text).expect("parses");
    assert_eq!(note.text, "This is an example message.\n");
    note.verify("example.com/foo", &key).expect("verifies");
    assert_eq!(note.encode(), text);
}

/// A checkpoint signed and cosigned here verifies with an independent implementation of
/// the formats (the `signed_note` and `tlog_tiles` crates), and theirs reads ours.
#[test]
fn checkpoints_and_cosignatures_verify_with_an_independent_implementation() {
    let log = SecretKey::from_seed(&[3; 32]);
    let witness = SecretKey::from_seed(&[4; 32]);
    let origin = "huren.network/0123456789abcdef/gd.transport";
    let wname = "huren.network/0123456789abcdef/witness/gd.market";
    let tree = Tree::of(&leaves());
    let cp = Checkpoint {
        origin: origin.into(),
        size: 8,
        root: root(8, &tree).expect("root"),
        extensions: vec![
            "height 3".into(),
            "status 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".into(),
        ],
    };
    let mut note = Note::new(cp.text()).expect("text");
    note.sign(origin, &log);
    note.cosign(wname, &witness, 1_764_000_000);
    let encoded = note.encode();

    // Theirs: the log's signature with a standard verifier key…
    let theirs = signed_note::Note::from_bytes(encoded.as_bytes()).expect("their parse");
    let v = signed_note::StandardVerifier::new(&verifier_key(origin, ALG_ED25519, &log.public()))
        .expect("their verifier key");
    let (verified, _) = theirs
        .verify(&signed_note::VerifierList::new(vec![Box::new(v)]))
        .expect("their verification");
    assert_eq!(verified.len(), 1);
    // …the checkpoint text…
    let parsed = tlog_tiles::Checkpoint::from_bytes(theirs.text()).expect("their checkpoint");
    assert_eq!(parsed.origin(), origin);
    assert_eq!(parsed.size(), 8);
    assert_eq!(parsed.hash().0, cp.root.0);
    // …and the cosignature, checked by hand over the spec's message with their parse.
    let line = encoded
        .lines()
        .find(|l| l.contains("/witness/"))
        .expect("cosignature line");
    let raw = B64
        .decode(line.rsplit(' ').next().expect("b64"))
        .expect("b64");
    assert_eq!(
        u32::from_be_bytes(raw[..4].try_into().expect("4")),
        key_id(wname, ALG_COSIGNATURE_V1, &witness.public())
    );
    let time = u64::from_be_bytes(raw[4..12].try_into().expect("8"));
    let mut msg = format!("cosignature/v1\ntime {time}\n").into_bytes();
    msg.extend_from_slice(theirs.text());
    let sig = ed25519_dalek::Signature::from_slice(&raw[12..]).expect("64");
    ed25519_dalek::Verifier::verify(witness.public().dalek(), &msg, &sig).expect("cosignature");

    // Ours reads what we wrote, and refuses what was changed.
    let again = Note::parse(&encoded).expect("ours");
    again.verify(origin, &log.public()).expect("log signature");
    assert_eq!(
        again.verify_cosignature(wname, &witness.public()),
        Ok(1_764_000_000)
    );
    assert_eq!(Checkpoint::parse(&again.text).expect("checkpoint"), cp);
    let tampered = Note::parse(&encoded.replacen("\n8\n", "\n9\n", 1)).expect("parses");
    assert!(tampered.verify(origin, &log.public()).is_err());
    assert!(tampered
        .verify_cosignature(wname, &witness.public())
        .is_err());
    // A witness key is not the log's: a log signature does not pass as a cosignature.
    assert!(again.verify_cosignature(origin, &log.public()).is_err());
}

/// Malformed notes and checkpoints are refused with a reason, never a panic.
#[test]
fn malformed_notes_and_checkpoints_are_refused() {
    let notes = [
        "no blank line\n\u{2014} a AAAAAAA=\n",
        "text\n\n",
        "text\n\nnot a signature\n",
        "text\n\n\u{2014} a not-base64!\n",
        "text\n\n\u{2014} a AAAA\n",
        "text\n\n\u{2014} a+b AAAAAAA=\n",
        "te\u{1}xt\n\n\u{2014} a AAAAAAA=\n",
        "text\n\n\u{2014} a AAAAAAA=",
    ];
    for n in notes {
        assert!(Note::parse(n).is_err(), "{n:?}");
    }
    let checkpoints = [
        "o\n",
        "\n8\nAAAA\n",
        "o\n08\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "o\n99999999999999999999999\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "o\n8\nAAAA\n",
        "o\n8\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\nx\n",
        "o\n8\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    ];
    for c in checkpoints {
        assert!(Checkpoint::parse(c).is_err(), "{c:?}");
    }
    assert!(Checkpoint::parse("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n").is_ok());
}

proptest::proptest! {
    /// Arbitrary text is a note or an error, never a panic; a parsed note re-encodes to
    /// what it was read from.
    #[test]
    fn any_text_parses_or_fails_cleanly(s in "(?s).{0,300}") {
        if let Ok(n) = Note::parse(&s) {
            proptest::prop_assert_eq!(n.encode(), s.clone());
        }
        let _ = Checkpoint::parse(&s);
    }
}

/// A status set holds suspended and revoked licences only, each under a key that does
/// not reveal the licence id, and its root depends on every entry.
#[test]
fn status_sets_hold_suspended_and_revoked_licences() {
    use crate::ids::{DepartmentId, LicenceId, LicenceType};
    use crate::ledger::{RevokeReason, SuspendReason};
    use crate::validate::LicenceStatus;
    let id = |n| {
        LicenceId::new(
            DepartmentId::parse("gd.transport").expect("dept"),
            LicenceType::parse("mvdl").expect("type"),
            n,
        )
    };
    assert_eq!(status_entry(&id(1), LicenceStatus::Active), None);
    let s = status_entry(&id(1), LicenceStatus::Suspended(SuspendReason::Penalty)).expect("entry");
    let r = status_entry(&id(1), LicenceStatus::Revoked(RevokeReason::Cancelled)).expect("entry");
    assert_eq!(s[..16], r[..16], "one key per licence");
    assert_ne!(s, r);
    assert_ne!(status_key(&id(1)), status_key(&id(2)));
    let (n, root) = status_root([s]);
    assert_eq!((n, root), (1, leaf_hash(&s)));
    assert_ne!(status_root([r]).1, root);
    assert_eq!(status_root([]), (0, empty_root()));
    let two = status_root([
        s,
        status_entry(&id(2), LicenceStatus::Revoked(RevokeReason::Penalty)).expect("entry"),
    ]);
    assert_eq!(two.0, 2);
    assert_ne!(two.1, root);
}

/// The hashes `appended` adds for leaves `start..end`, concatenated in the order it gives
/// them, with each one's `(level, index)`: what a node keeps for one block.
fn appended_run(start: u64, end: u64) -> Vec<(u8, u64)> {
    let mut tree = Tree::default();
    let mut run = Vec::new();
    for x in 0..end {
        let added = appended(tree.size, leaf_hash(&x.to_be_bytes()), &tree).expect("stored");
        for (level, index, h) in added {
            tree.hashes.insert((level, index), h);
            if x >= start {
                run.push((level, index));
            }
        }
        tree.size += 1;
    }
    run
}

/// Every stored hash a run of appended leaves adds is found where `appended_position`
/// says, and a hash added before the run is not placed in it.
#[test]
fn appended_positions_are_where_appended_puts_each_hash() {
    for (start, end) in [
        (0, 1),
        (0, 70),
        (1, 2),
        (3, 4),
        (5, 17),
        (7, 64),
        (64, 65),
        (63, 200),
    ] {
        let run = appended_run(start, end);
        assert_eq!(
            run.len() as u128,
            stored_count(end) - stored_count(start),
            "{start}..{end}"
        );
        for (pos, &(level, index)) in run.iter().enumerate() {
            assert_eq!(
                appended_position(start, level, index),
                Some(pos as u64),
                "({level}, {index}) in {start}..{end}"
            );
        }
        for (level, index) in appended_run(0, start) {
            assert_eq!(appended_position(start, level, index), None);
        }
    }
    // Subtrees past what a u64 numbers have no completing leaf.
    assert_eq!(completing_leaf(64, 0), None);
    assert_eq!(completing_leaf(0, u64::MAX), None);
    assert_eq!(completing_leaf(1, 1 << 62), Some((1 << 63) + 1));
    assert_eq!(completing_leaf(1, 1 << 63), None);
    assert_eq!(completing_leaf(63, 0), Some((1 << 63) - 1));
    assert_eq!(completing_leaf(63, 1), None);
    assert_eq!(completing_leaf(0, u64::MAX - 1), Some(u64::MAX - 1));
    assert_eq!(stored_count(u64::MAX), 2 * u128::from(u64::MAX) - 64);
}

proptest::proptest! {
    /// The position of every hash of a run of appended leaves, against `appended` itself.
    #[test]
    fn appended_positions_match_appended(start in 0u64..600, len in 1u64..300) {
        let run = appended_run(start, start + len);
        for (pos, &(level, index)) in run.iter().enumerate() {
            proptest::prop_assert_eq!(appended_position(start, level, index), Some(pos as u64));
        }
    }

    /// The closed form of the count against the sum it stands for, Σ_ℓ (⌊L/2^ℓ⌋ −
    /// ⌊start/2^ℓ⌋) hashes added by leaves start..L, at any size.
    #[test]
    fn stored_counts_are_the_sum_over_levels(
        start in proptest::num::u64::ANY,
        len in 0u64..1 << 20,
        level in 0u8..64,
    ) {
        let leaf = start.saturating_add(len);
        let sum: u128 = (0..64).map(|l| u128::from((leaf >> l) - (start >> l))).sum();
        proptest::prop_assert_eq!(stored_count(leaf) - stored_count(start), sum);
        // The subtree at `level` that `leaf` completes, when it completes one.
        if leaf != u64::MAX && (leaf + 1).trailing_zeros() >= u32::from(level) {
            let index = leaf >> level;
            proptest::prop_assert_eq!(completing_leaf(level, index), Some(leaf));
            proptest::prop_assert_eq!(
                appended_position(start, level, index),
                u64::try_from(sum + u128::from(level)).ok()
            );
        }
    }
}
