//! `huren card`: the citizen's printable card from an offline-issued licence, in every
//! format, and the refusals (a QR that does not verify gets no card).

mod common;

use std::collections::BTreeMap;

use common::Net;
use huren_core::credential::{cose_to_qr, qr_to_cose, SALT_BYTES};
use huren_core::{Credential, DepartmentId, LicenceId, LicenceType, RegionCode};

fn card(n: &Net, input: &[&str], outputs: &[&str]) -> common::Out {
    let mut args = vec!["card", "--genesis", "genesis.json"];
    args.extend_from_slice(input);
    args.extend_from_slice(outputs);
    n.huren(&args)
}

fn read(n: &Net, name: &str) -> Vec<u8> {
    std::fs::read(n.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn card_in_every_format() {
    let n = Net::new();
    let qr = n.issue_mvdl(&["--serial", "42"]);
    let out = card(
        &n,
        &[&qr],
        &[
            "--svg",
            "card.svg",
            "--html",
            "card.html",
            "--png",
            "card.png",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("gd.transport:mvdl:00000042"),
        "{}",
        out.stderr
    );
    // Without a CJK font the PNG is still made, and the warning names the package.
    if out.stderr.contains("warning: no font with Chinese") {
        assert!(out.stderr.contains("fonts-noto-cjk"), "{}", out.stderr);
    }

    let svg = String::from_utf8(read(&n, "card.svg")).expect("utf-8");
    for part in [
        "机动车驾驶证",
        "Motor vehicle driving licence",
        "张三",
        "44010619900101123X",
        "C1",
        "广东省公安厅交通管理局",
        "广东省 Guangdong",
        "gd.transport:mvdl:00000042",
        "Scan at any service window · 任何窗口扫码核验",
        r#"width="85.6mm" height="54mm""#,
    ] {
        assert!(svg.contains(part), "{part} missing from the SVG");
    }

    let html = String::from_utf8(read(&n, "card.html")).expect("utf-8");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("@page { size: 85.6mm 54mm; margin: 0; }"));
    assert!(html.contains("<svg") && html.contains("张三"));

    // The PNG is 300 dpi at the card's size and scans back to the very same QR text.
    let png = read(&n, "card.png");
    let img = image::load_from_memory(&png).expect("a PNG");
    assert_eq!((img.width(), img.height()), (1011, 638));
    assert_eq!(huren_render::qr::decode_image(&png).expect("scannable"), qr);

    // The same card from a photo of the QR, and from standard input.
    let photo = card(&n, &["--image", "card.png"], &["--svg", "again.svg"]);
    assert_eq!(photo.code, 0, "{photo:?}");
    let stdin = n.huren_stdin(
        &[
            "card",
            "--genesis",
            "genesis.json",
            "-",
            "--svg",
            "stdin.svg",
        ],
        &format!("{qr}\n"),
    );
    assert_eq!(stdin.code, 0, "{stdin:?}");
    // The salt is the same, so the cards are the same.
    assert_eq!(read(&n, "again.svg"), svg.as_bytes());
    assert_eq!(read(&n, "stdin.svg"), svg.as_bytes());

    // Existing files are kept unless --force.
    let again = card(&n, &[&qr], &["--png", "card.png"]);
    assert_eq!(again.code, 73, "{again:?}");
    assert_eq!(card(&n, &[&qr], &["--png", "card.png", "--force"]).code, 0);
}

#[test]
fn a_licence_that_does_not_verify_gets_no_card() {
    let n = Net::new();
    let qr = n.issue_mvdl(&[]);

    // One byte of the signed payload changed (class C1 → C2), re-compressed: the QR reads
    // fine but the signature no longer matches.
    let mut cose = qr_to_cose(&qr).expect("cose");
    let at = cose
        .windows(3)
        .position(|w| w == b"\x62C1")
        .expect("class in the payload");
    cose[at + 2] = b'2';
    let tampered = cose_to_qr(&cose);
    let out = card(&n, &[&tampered], &["--svg", "t.svg", "--png", "t.png"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("bad signature"), "{}", out.stderr);
    assert!(!n.path("t.svg").exists() && !n.path("t.png").exists());

    // A character changed in the QR text itself: it no longer decodes.
    let mut chars: Vec<char> = qr.chars().collect();
    chars[40] = if chars[40] == 'A' { 'B' } else { 'A' };
    let garbled: String = chars.into_iter().collect();
    let out = card(&n, &[&garbled], &["--svg", "t.svg"]);
    assert_eq!(out.code, 65, "{out:?}");
    assert!(!n.path("t.svg").exists());

    // Not a licence QR at all.
    let out = card(&n, &["hello"], &["--svg", "t.svg"]);
    assert_eq!(out.code, 65, "{out:?}");

    // Signed by gd.market's key while claiming to be gd.transport's licence.
    let forged = sign(&n, "gd.market", 0, 30);
    let out = card(&n, &[&forged], &["--svg", "t.svg"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!n.path("t.svg").exists());

    // Genuine but expired.
    let expired = sign(&n, "gd.transport", -400, -30);
    let out = card(&n, &[&expired], &["--svg", "t.svg"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("expired"), "{}", out.stderr);
    assert!(!n.path("t.svg").exists());

    // At least one output is required.
    assert_eq!(card(&n, &[&qr], &[]).code, 64);
}

/// A gd.transport driving licence signed with `signer`'s issuer key, valid from `from`
/// to `until` days from now.
fn sign(n: &Net, signer: &str, from: i64, until: i64) -> String {
    let (_, key) =
        huren_genesis::keys::read_issuer_key(&n.keys.join(format!("{signer}.issuer.key")))
            .expect("issuer key");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let dept = DepartmentId::parse("gd.transport").expect("id");
    let holder: BTreeMap<String, String> = [
        ("name", "李四"),
        ("id_number", "44010619850312002X"),
        ("class", "C1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let c = Credential {
        issuer: dept.clone(),
        licence_id: LicenceId::new(dept, LicenceType::parse("mvdl").expect("type"), 7),
        region: RegionCode::parse("440000").expect("region"),
        issued_at: now + from * 86_400,
        not_before: now + from * 86_400,
        expires_at: now + until * 86_400,
        holder,
        fields: BTreeMap::new(),
        salt: [3; SALT_BYTES],
    };
    c.sign(&key).expect("sign").qr_text
}
