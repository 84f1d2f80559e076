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

/// The licence's later life through the CLI, against real nodes in two regions: reissue,
/// renew (one, and in bulk from a file), amend, suspend until a date, revoke and annul,
/// history, status and verify `--at` a moment, and a transfer from Guangdong to Shanghai.
#[test]
fn cli_walks_a_licence_through_its_later_life() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let nodes = huren_tests::start_mesh(&net, &["gd.transport", "sh.transport"])?;
    let (gd, sh) = (nodes[0].url.as_str(), nodes[1].url.as_str());
    let dir = tempfile::tempdir()?;
    let issue = |n: u32| -> String {
        ok(&huren(&[
            "issue",
            "--node",
            gd,
            "--type",
            "mvdl",
            "--holder",
            &format!("name=持证人{n}"),
            "--holder",
            &format!("id_number=4401061990{n:08}"),
            "--holder",
            "class=C1",
            "--valid-days",
            "2190",
        ]))
        .trim()
        .to_owned()
    };
    let id_of = |qr: &str| -> String {
        verdict(gd, qr).1["licence"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    let first = issue(1);
    let id = id_of(&first);

    // Reissue: stdout is the new QR; the old one is invalid · superseded (exit 1).
    let second = ok(&huren(&["reissue", "--node", gd, &id]))
        .trim()
        .to_owned();
    assert!(second.starts_with("HZ1:") && second != first);
    let (code, v) = verdict(gd, &first);
    assert_eq!((code, v["reason"].as_str()), (1, Some("superseded")), "{v}");
    assert_eq!(verdict(gd, &second).0, 0);

    // Renew and amend, each a new QR.
    let third = ok(&huren(&[
        "renew",
        "--node",
        gd,
        &id,
        "--valid-days",
        "3000",
    ]))
    .trim()
    .to_owned();
    assert_eq!(verdict(gd, &second).1["reason"], "superseded");
    let fourth = ok(&huren(&[
        "amend", "--node", gd, &id, "--holder", "class=B2",
    ]))
    .trim()
    .to_owned();
    let (code, v) = verdict(gd, &fourth);
    assert_eq!(
        (code, v["licence"]["holder"]["class"].as_str()),
        (0, Some("B2")),
        "{v}"
    );
    assert_eq!(verdict(gd, &third).1["reason"], "superseded");
    let out = huren(&["amend", "--node", gd, &id]);
    assert_eq!(
        out.status.code(),
        Some(64),
        "amend without a change is a usage error"
    );

    // A timed suspension, a revocation as penalty, and its annulment by a court.
    ok(&huren(&[
        "suspend",
        "--node",
        gd,
        &id,
        "--reason",
        "penalty",
        "--until",
        "2099-01-01T00:00:00Z",
    ]));
    let (code, v) = verdict(gd, &fourth);
    assert_eq!((code, v["reason"].as_str()), (1, Some("suspended")), "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("2099-01-01"),
        "{v}"
    );
    ok(&huren(&[
        "revoke", "--node", gd, &id, "--reason", "penalty",
    ]));
    assert_eq!(verdict(gd, &fourth).1["reason"], "revoked");
    ok(&huren(&["annul", "--node", gd, &id, "--reason", "court"]));
    assert_eq!(
        verdict(gd, &fourth).0,
        0,
        "the overturned penalty never took effect"
    );

    // History and "as of": public, no personal data.
    let history: serde_json::Value =
        serde_json::from_str(&ok(&huren(&["history", "--node", gd, &id])))?;
    let kinds: Vec<&str> = history["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["issue", "reissue", "renew", "amend", "suspend", "revoke", "annul"]
    );
    assert!(!history.to_string().contains("持证人1"), "{history}");
    let status: serde_json::Value = serde_json::from_str(&ok(&huren(&[
        "status",
        "--node",
        gd,
        &id,
        "--at",
        "2000-01-01T00:00:00Z",
    ])))?;
    assert_eq!(status["at"]["standing"], "not_issued", "{status}");
    let out = huren(&[
        "verify",
        "--node",
        gd,
        "--at",
        "2000-01-01T00:00:00Z",
        &fourth,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["at"]["standing"], "not_issued", "{v}");

    // Bulk renewal from a file: one line refused, the others renewed, new QRs in a CSV.
    let (a, b) = (issue(2), issue(3));
    let list = dir.path().join("renewals.txt");
    std::fs::write(
        &list,
        format!(
            "# today's renewals\n{}\n{}\nsh.transport:mvdl:99\n",
            id_of(&a),
            id_of(&b)
        ),
    )?;
    let out_csv = dir.path().join("renewed.csv");
    let out = huren(&[
        "renew",
        "--node",
        gd,
        "--file",
        &list.to_string_lossy(),
        "--out",
        &out_csv.to_string_lossy(),
        "--valid-days",
        "3000",
    ]);
    assert_eq!(out.status.code(), Some(1), "one refusal: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 4: other_department"));
    let renewed = std::fs::read_to_string(&out_csv)?;
    assert_eq!(renewed.lines().count(), 3, "{renewed}");
    for line in renewed.lines().skip(1) {
        let qr = line.split(',').nth(1).expect("qr");
        assert_eq!(verdict(gd, qr).0, 0, "{line}");
    }
    assert_eq!(verdict(gd, &a).1["reason"], "superseded");

    // Transfer out at Guangdong, accept at Shanghai with the holder's QR.
    ok(&huren(&[
        "transfer",
        "--node",
        gd,
        &id,
        "--to",
        "sh.transport",
    ]));
    let moved = huren_tests::eventually(30, "sh.transport to accept the transfer", || {
        let out = huren(&["accept-transfer", "--node", sh, &fourth]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    })?;
    let (code, v) = verdict(sh, &moved);
    assert_eq!(code, 0, "{v}");
    let new_id = v["licence"]["id"].as_str().expect("new id").to_owned();
    let history: serde_json::Value =
        serde_json::from_str(&ok(&huren(&["history", "--node", sh, &new_id])))?;
    assert_eq!(history["origin"], id.as_str(), "{history}");
    let out = huren(&["accept-transfer", "--node", sh, &fourth]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a second transfer in is refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad_transfer"));
    // A card superseded before the transfer is not the holder's current one.
    let out = huren(&["accept-transfer", "--node", sh, &third]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid_licence") && err.contains("not the current card"),
        "{err}"
    );
    Ok(())
}
