//! The worked example of docs/credential-format.md, rebuilt from the public API.
//!
//! Ed25519 signatures are deterministic, so a credential built from a fixed key, fixed
//! times and a fixed salt has exactly one encoding. This test rebuilds the example and
//! asserts that every value the document prints (key, kid, claims in CBOR diagnostic
//! notation, COSE bytes, commitment, QR text, and the ledger block that records it)
//! appears there verbatim, so the specification cannot drift from the code.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ciborium::value::Value;
use huren_core::ledger::{Block, BlockHeader, Issue, Record};
use huren_core::{
    Credential, DepartmentId, Hash32, LicenceId, LicenceType, OfficerId, RegionCode, SecretKey,
    SignedCredential, UnverifiedCredential,
};

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/credential-format.md");

/// The specification, read when the test runs, so an edited document is checked as it is.
fn doc() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        std::fs::read_to_string(DOC_PATH).unwrap_or_else(|e| panic!("reading {DOC_PATH}: {e}"))
    })
}

/// 2025-06-15T15:06:40Z.
const ISSUED_AT: i64 = 1_750_000_000;
/// 2190 days (six years) later: 2031-06-14T15:06:40Z.
const EXPIRES_AT: i64 = ISSUED_AT + 2190 * 86_400;
const SALT: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
];

fn key() -> SecretKey {
    SecretKey::from_seed(&[1; 32])
}

fn example() -> Credential {
    let dept = DepartmentId::parse("gd.transport").expect("department id");
    let mut holder = BTreeMap::new();
    holder.insert("name".to_owned(), "张三".to_owned());
    holder.insert("id_number".to_owned(), "44010619900101123X".to_owned());
    holder.insert("class".to_owned(), "C1".to_owned());
    Credential {
        issuer: dept.clone(),
        licence_id: LicenceId::new(dept, LicenceType::parse("mvdl").expect("type"), 1),
        region: RegionCode::parse("440000").expect("region"),
        issued_at: ISSUED_AT,
        not_before: ISSUED_AT,
        expires_at: EXPIRES_AT,
        holder,
        fields: BTreeMap::new(),
        salt: SALT,
    }
}

fn signed() -> SignedCredential {
    example()
        .sign(&key())
        .expect("the example is within bounds")
}

/// The block that records the example's issuance: height 1 of gd.transport in a network
/// whose genesis hash is SHA-256("huren example genesis").
fn example_block(s: &SignedCredential) -> Block {
    let genesis = Hash32::digest(b"huren example genesis");
    BlockHeader {
        version: 1,
        genesis,
        department: DepartmentId::parse("gd.transport").expect("department id"),
        height: 1,
        prev: genesis,
        time_ms: ISSUED_AT as u64 * 1000,
        gov: 0,
        records: vec![Record::Issue(Issue {
            licence_id: example().licence_id,
            valid_from: ISSUED_AT,
            valid_until: EXPIRES_AT,
            commitment: s.commitment,
            officer: OfficerId::parse("officer-1").expect("officer"),
            origin: None,
        })],
    }
    .sign(&key())
}

/// CBOR diagnostic notation (RFC 8949 §8), one map entry per line.
fn diag(v: &Value, indent: usize, out: &mut String) {
    let pad = |n: usize| "  ".repeat(n);
    match v {
        Value::Integer(i) => out.push_str(&i128::from(*i).to_string()),
        Value::Text(s) => out.push_str(&format!("{s:?}")),
        Value::Bytes(b) => out.push_str(&format!("h'{}'", hex::encode(b))),
        Value::Map(entries) => {
            out.push_str("{\n");
            for (n, (k, val)) in entries.iter().enumerate() {
                out.push_str(&pad(indent + 1));
                diag(k, indent + 1, out);
                out.push_str(": ");
                diag(val, indent + 1, out);
                if n + 1 < entries.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&pad(indent));
            out.push('}');
        }
        other => panic!("the example holds no {other:?}"),
    }
}

fn cbor(bytes: &[u8]) -> Value {
    ciborium::de::from_reader(bytes).expect("CBOR")
}

/// The hex bytes of an annotated listing in the document: the fenced block between
/// `<!-- NAME:begin -->` and `<!-- NAME:end -->`, with `#` comments and whitespace removed.
fn annotated_hex(name: &str) -> String {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let start = doc()
        .find(&begin)
        .unwrap_or_else(|| panic!("{begin} is missing from docs/credential-format.md"));
    let len = doc()[start..]
        .find(&end)
        .unwrap_or_else(|| panic!("{end} is missing from docs/credential-format.md"));
    doc()[start + begin.len()..start + len]
        .lines()
        .filter(|l| !l.trim_start().starts_with("```"))
        .map(|l| l.split('#').next().unwrap_or_default())
        .flat_map(|l| l.split_whitespace())
        .collect()
}

fn assert_in_doc(what: &str, text: &str) {
    assert!(
        doc().contains(text),
        "docs/credential-format.md no longer shows the {what}; the code now gives:\n{text}"
    );
}

/// The QR text must stand on a line of its own, exactly.
fn assert_line_in_doc(what: &str, line: &str) {
    assert!(
        doc().lines().any(|l| l == line),
        "docs/credential-format.md has no line with the {what}; the code now gives:\n{line}"
    );
}

#[test]
fn the_document_shows_the_credential_the_code_builds() {
    let s = signed();
    let public = key().public();
    let cose_hex = hex::encode(&s.cose);

    assert_in_doc("issuer public key", &public.to_hex());
    assert_eq!(s.kid, public.key_id());
    assert_in_doc("kid", &format!("kid         {}", s.kid.to_hex()));
    assert_line_in_doc("COSE bytes in hex", &cose_hex);
    assert_eq!(
        annotated_hex("cose-annotated"),
        cose_hex,
        "the annotated COSE listing does not add up to the COSE bytes"
    );
    assert_in_doc(
        "COSE length",
        &format!("annotated ({} bytes)", s.cose.len()),
    );
    assert_line_in_doc("commitment", &s.commitment.to_hex());
    assert_eq!(s.commitment, Hash32::digest(&s.cose));
    assert_line_in_doc("QR text", &s.qr_text);
    assert_in_doc(
        "QR text length",
        &format!("({} characters", s.qr_text.chars().count()),
    );

    // The structure the document describes: tag 18, protected {1: -8, 4: kid}, empty
    // unprotected map, the claims in diagnostic notation, a 64-byte signature.
    let Value::Tag(18, inner) = cbor(&s.cose) else {
        panic!("not a tagged COSE_Sign1")
    };
    let Value::Array(items) = *inner else {
        panic!("COSE_Sign1 is not an array")
    };
    let [Value::Bytes(protected), Value::Map(unprotected), Value::Bytes(payload), Value::Bytes(signature)] =
        &items[..]
    else {
        panic!("COSE_Sign1 does not have the documented four elements: {items:?}")
    };
    let mut expected_protected = vec![0xa2, 0x01, 0x27, 0x04, 0x48];
    expected_protected.extend_from_slice(&s.kid.0);
    assert_eq!(protected, &expected_protected);
    assert!(unprotected.is_empty());
    let mut claims = String::new();
    diag(&cbor(payload), 0, &mut claims);
    assert_in_doc("claims in CBOR diagnostic notation", &claims);

    // The signature is plain RFC 8032 Ed25519 over the RFC 9052 Sig_structure, checked
    // here without coset.
    let mut tbs = Vec::new();
    ciborium::ser::into_writer(
        &Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(protected.clone()),
            Value::Bytes(Vec::new()),
            Value::Bytes(payload.clone()),
        ]),
        &mut tbs,
    )
    .expect("Sig_structure");
    let signature = ed25519_dalek::Signature::from_slice(signature).expect("64 bytes");
    ed25519_dalek::Verifier::verify(public.dalek(), &tbs, &signature)
        .expect("the example's signature verifies as plain Ed25519");

    // And the public decoder reads back exactly what was signed.
    let decoded = UnverifiedCredential::from_qr(&s.qr_text).expect("decode");
    assert_eq!(decoded.credential, example());
    assert_eq!(decoded.commitment, s.commitment);
    decoded.verify(&public).expect("verify");
}

#[test]
fn the_document_shows_the_block_the_code_builds() {
    let s = signed();
    let block = example_block(&s);
    let bytes = block.encode();
    assert_eq!(
        annotated_hex("block-annotated"),
        hex::encode(&bytes),
        "the annotated block listing does not add up to the block bytes"
    );
    assert_in_doc(
        "stand-in genesis hash",
        &Hash32::digest(b"huren example genesis").to_hex(),
    );
    assert_line_in_doc("block hash", &block.hash().to_hex());
    // The documented hash and signing message, computed by hand.
    let header = block.header.encode();
    assert_eq!(bytes[1..1 + header.len()], header[..]);
    assert_eq!(block.hash(), Hash32::digest(&header));
    let mut message = b"huren/block/v1\0\0".to_vec();
    message.extend_from_slice(&block.hash().0);
    assert_eq!(message.len(), 48);
    let signature = ed25519_dalek::Signature::from_bytes(&block.signature.to_bytes());
    ed25519_dalek::Verifier::verify(key().public().dalek(), &message, &signature)
        .expect("the block signature is Ed25519 over the documented message");
    let back = Block::decode(&bytes).expect("canonical");
    assert_eq!(back, block);
}

/// The records protocol version 2 adds, one of each, as section 8.1 lists them: each
/// one's leaf (`[height, index, record]` at height 7, index 0) in hex on a line of its own.
fn version_2_records() -> Vec<(&'static str, Record)> {
    use huren_core::ledger::AnnulReason;
    use huren_core::SuspendReason;
    let id = example().licence_id;
    let officer = OfficerId::parse("officer-1").expect("officer");
    let renewed = Hash32::digest(b"renewed credential");
    vec![
        (
            "suspend until",
            Record::Suspend {
                licence_id: id.clone(),
                reason: SuspendReason::Penalty,
                officer: officer.clone(),
                until: Some(ISSUED_AT + 180 * 86_400),
            },
        ),
        (
            "renew",
            Record::Renew {
                licence_id: id.clone(),
                valid_from: EXPIRES_AT - 30 * 86_400,
                valid_until: EXPIRES_AT + 2160 * 86_400,
                commitment: renewed,
                officer: officer.clone(),
            },
        ),
        (
            "reissue",
            Record::Reissue {
                licence_id: id.clone(),
                commitment: renewed,
                officer: officer.clone(),
            },
        ),
        (
            "amend",
            Record::Amend {
                licence_id: id.clone(),
                commitment: renewed,
                officer: officer.clone(),
            },
        ),
        (
            "transfer out",
            Record::TransferOut {
                licence_id: id.clone(),
                to: DepartmentId::parse("sh.transport").expect("department"),
                officer: officer.clone(),
            },
        ),
        (
            "annul",
            Record::Annul {
                licence_id: id.clone(),
                height: 5,
                index: 2,
                reason: AnnulReason::Court,
                officer: officer.clone(),
            },
        ),
        (
            "transfer in",
            Record::Issue(Issue {
                licence_id: LicenceId::new(
                    DepartmentId::parse("sh.transport").expect("department"),
                    LicenceType::parse("mvdl").expect("type"),
                    42,
                ),
                valid_from: ISSUED_AT + 400 * 86_400,
                valid_until: EXPIRES_AT,
                commitment: renewed,
                officer,
                origin: Some(id),
            }),
        ),
    ]
}

#[test]
fn the_document_shows_the_version_2_records_the_code_encodes() {
    for (what, record) in version_2_records() {
        let leaf = record.leaf(7, 0);
        assert_eq!(record.min_version(), 2, "{what}");
        assert_line_in_doc(what, &hex::encode(&leaf));
        let (_, _, back) = Record::from_leaf(&leaf).expect("canonical");
        assert_eq!(back, record, "{what}");
    }
}
