//! The `huren` CLI against a real `huren-node` process: issue, verify (text and image),
//! status, suspend, reinstate, revoke, bulk import from CSV, and `huren-node check`, with
//! the exit codes a script relies on (0 valid, 1 invalid, 2 undetermined).

use std::process::{Command, Output};

use huren_tests::{binary, check, NodeProcess, TestNetwork, TOKEN};

fn huren(args: &[&str]) -> Output {
    Command::new(binary("huren"))
        .args(args)
        .env("HUREN_TOKEN", TOKEN)
        .output()
        .expect("running huren")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "huren failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn verdict(node: &str, qr: &str) -> (i32, serde_json::Value) {
    let out = huren(&["verify", "--node", node, qr]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn cli_drives_a_real_node() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let config = net.config("gd.transport", "")?;
    let node = NodeProcess::start(&config)?;
    let url = node.url.as_str();
    let dir = tempfile::tempdir()?;
    let png = dir.path().join("licence.png");
    let png_s = png.to_string_lossy().into_owned();

    // Issue: stdout is only the QR text.
    let qr = ok(&huren(&[
        "issue",
        "--node",
        url,
        "--type",
        "mvdl",
        "--holder",
        "name=张三",
        "--holder",
        "id_number=44010619900101123X",
        "--holder",
        "class=C1",
        "--valid-days",
        "2190",
        "--png",
        &png_s,
    ]))
    .trim()
    .to_owned();
    assert!(qr.starts_with("HZ1:"), "{qr}");
    let (code, v) = verdict(url, &qr);
    assert_eq!((code, v["verdict"].as_str()), (0, Some("valid")), "{v}");
    let id = v["licence"]["id"].as_str().expect("licence id").to_owned();

    // Verify from the PNG the CLI wrote.
    let out = huren(&["verify", "--node", url, "--image", &png_s]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Status: public, no personal data.
    let status = ok(&huren(&["status", "--node", url, &id]));
    assert!(
        status.contains("active") && !status.contains("张三"),
        "{status}"
    );

    // Lifecycle, with the verdict and exit code after each step.
    ok(&huren(&[
        "suspend", "--node", url, &id, "--reason", "penalty",
    ]));
    let (code, v) = verdict(url, &qr);
    assert_eq!((code, v["reason"].as_str()), (1, Some("suspended")), "{v}");
    ok(&huren(&["reinstate", "--node", url, &id]));
    assert_eq!(verdict(url, &qr).0, 0);
    ok(&huren(&[
        "revoke",
        "--node",
        url,
        &id,
        "--reason",
        "cancelled",
    ]));
    let (code, v) = verdict(url, &qr);
    assert_eq!((code, v["reason"].as_str()), (1, Some("revoked")), "{v}");
    // Revocation is final: the CLI reports the node's refusal and exits non-zero.
    let out = huren(&["reinstate", "--node", url, &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already_revoked"));
    // Garbage: undetermined.
    assert_eq!(verdict(url, "not a licence").0, 2);
    // A wrong token.
    let out = Command::new(binary("huren"))
        .args([
            "issue",
            "--node",
            url,
            "--token",
            "wrong",
            "--type",
            "mvdl",
            "--holder",
            "name=x",
            "--holder",
            "id_number=y",
            "--holder",
            "class=C1",
        ])
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));

    // Bulk import: 250 good rows and 2 bad ones.
    let csv = dir.path().join("licences.csv");
    let mut text = String::from("type,holder.name,holder.id_number,holder.class,valid_days\n");
    for i in 0..250 {
        text.push_str(&format!("mvdl,持证人{i},4401061990{i:08},C1,365\n"));
    }
    text.push_str("mvdl,缺字段,,C1,365\n");
    text.push_str("food,某公司,,,365\n");
    std::fs::write(&csv, text)?;
    let out_csv = dir.path().join("issued.csv");
    let out = huren(&[
        "import",
        "--node",
        url,
        csv.to_str().expect("path"),
        "--batch",
        "100",
        "--out",
        out_csv.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(1), "some rows fail: exit 1");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("250"), "{summary}");
    let issued = std::fs::read_to_string(&out_csv)?;
    assert_eq!(issued.lines().count(), 251, "header + 250 issued rows");
    let sample = issued
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(2))
        .expect("qr column")
        .to_owned();
    assert_eq!(verdict(url, &sample).0, 0);

    node.stop()?;
    let (ok_check, out) = check(&config)?;
    assert!(ok_check, "{out}");
    assert!(out.contains("ok"), "{out}");
    Ok(())
}
