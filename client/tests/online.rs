//! Online commands against the real node: `huren-node`'s router, sled store and block
//! producer in this process (common/live.rs), with a fault layer in front for what the
//! node cannot do on demand (a 5xx, a 429, a connection cut mid-answer, a slow answer).
//! These check that the client sends what the node takes (paths, bodies, token,
//! multipart part name) and reads every kind of answer into the right output and exit
//! status.

mod common;

use std::time::Duration;

use common::live::{Fault, LiveNode, Rule};
use common::*;
use huren_api::{ErrorCode, LifecycleAnswer, Report, StatusAnswer};
use huren_core::LicenceStatus;
use huren_testkit::{ISSUE_TOKEN, TOKEN};
use serde_json::{json, Value};

fn issue_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "issue",
        "--node",
        url,
        "--token",
        TOKEN,
        "--type",
        "mvdl",
        "--holder",
        "name=张三",
        "--holder",
        "id_number=44010619900101123X",
        "--holder",
        "class=C1",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn online_issue_status_suspend_reinstate_revoke() {
    let n = Net::new();
    let node = LiveNode::start(&n.founded, "");
    let url = node.url.as_str();
    let out = n.huren(&issue_args(
        url,
        &[
            "--field",
            "archive_no=A1",
            "--valid-days",
            "30",
            "--png",
            "online.png",
        ],
    ));
    assert_eq!(out.code, 0, "{out:?}");
    let qr = out.stdout.trim_end().to_owned();
    assert!(qr.starts_with("HZ1:"), "{qr}");
    let sent = node.seen().last().cloned().expect("request");
    assert_eq!(sent.path, "/v1/licences");
    assert_eq!(
        sent.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        sent.json(),
        json!({
            "licence_type": "mvdl",
            "holder": {"name": "张三", "id_number": "44010619900101123X", "class": "C1"},
            "fields": {"archive_no": "A1"},
            "valid_days": 30,
        })
    );
    // The QR the node issued verifies offline, and the PNG holds the same text.
    assert_eq!(n.verify(&[&qr]).code, 0);
    assert_eq!(
        n.huren(&["qr", "decode", "online.png"]).stdout.trim_end(),
        qr
    );

    // valid_days is left out when not given; --json prints the node's whole answer.
    let out = n.huren(&issue_args(url, &["--json"]));
    assert_eq!(out.code, 0, "{out:?}");
    let answer: huren_api::IssueAnswer = serde_json::from_str(&out.stdout).expect("json");
    let id = answer.licence_id.to_string();
    let last = node.seen().last().cloned().expect("req");
    assert!(last.json().get("valid_days").is_none(), "{:?}", last.json());

    // 4xx answers are printed as `error: <code>: <message>` and exit 1.
    let refused = n.huren(&[
        "issue", "--node", url, "--token", TOKEN, "--type", "food", "--holder", "entity=x",
    ]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.starts_with("error: type_not_granted: "),
        "{}",
        refused.stderr
    );
    let bad_token = n.huren(&["issue", "--node", url, "--token", "nope", "--type", "mvdl"]);
    assert_eq!(bad_token.code, 1);
    assert!(
        bad_token
            .stderr
            .contains("error: unauthorized: the token is not valid on this node"),
        "{}",
        bad_token.stderr
    );
    // A token of the wrong scope is refused by scope, before anything is done.
    let scoped = n.huren(&[
        "revoke",
        "--node",
        url,
        "--token",
        ISSUE_TOKEN,
        &id,
        "--reason",
        "penalty",
    ]);
    assert_eq!(scoped.code, 1, "{scoped:?}");
    assert!(
        scoped.stderr.contains("error: insufficient_scope:"),
        "{}",
        scoped.stderr
    );

    let status = n.huren(&["status", "--node", url, &id]);
    assert_eq!(status.code, 0, "{status:?}");
    let v: StatusAnswer = serde_json::from_str(&status.stdout).expect("status json");
    assert_eq!(v.status, LicenceStatus::Active);
    assert_eq!(v.licence_id, answer.licence_id);
    let missing = n.huren(&["status", "--node", url, "gd.transport:mvdl:99999999"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(
        missing.stderr.contains(
            "error: licence_not_found: gd.transport:mvdl:99999999 is not on the ledger at this node"
        ),
        "{}",
        missing.stderr
    );

    for (args, path, body, expected) in [
        (
            vec!["suspend", "--reason", "investigation"],
            "suspend",
            json!({"reason": "investigation"}),
            "suspended",
        ),
        (vec!["reinstate"], "reinstate", json!({}), "active"),
        (
            vec!["revoke", "--reason", "cancelled"],
            "revoke",
            json!({"reason": "cancelled"}),
            "revoked",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--node", url, &id]);
        let out = n.huren_env(&all, &[("HUREN_TOKEN", TOKEN)]);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        let v: LifecycleAnswer = serde_json::from_str(&out.stdout).expect("json");
        assert_eq!(v.licence_id, answer.licence_id);
        let status = serde_json::to_value(v.status).expect("status");
        assert_eq!(status["status"], expected, "{status}");
        let req = node.seen().last().cloned().expect("req");
        assert_eq!(req.path, format!("/v1/licences/{id}/{path}"));
        assert_eq!(req.json(), body);
    }
    // The revoked licence now verifies invalid online: exit 1.
    let out = n.huren(&["verify", "--node", url, &qr]);
    assert_eq!(out.code, 0, "the first licence is still good: {out:?}");
    let revoked = answer.qr.as_str();
    let out = n.huren(&["verify", "--node", url, revoked]);
    assert_eq!(out.code, 1, "{out:?}");
    let report: Report = serde_json::from_str(&out.stdout).expect("report");
    assert_eq!(
        report.kind(),
        Some(huren_core::Verdict::Invalid(
            huren_core::verify::InvalidReason::Revoked
        ))
    );
    let unknown = n.huren(&[
        "revoke",
        "--node",
        url,
        "--token",
        TOKEN,
        "gd.transport:mvdl:42",
        "--reason",
        "penalty",
    ]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(
        unknown.stderr.contains("error: licence_not_found:"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn online_verify_text_and_image() {
    let n = Net::new();
    // A small image limit: a photo of more bytes is refused, though the route's body
    // limit (this plus 64 KiB for the form's framing) would take it.
    let node = LiveNode::start(&n.founded, "image_bytes_max = 2048");
    let url = node.url.as_str();
    let out = n.huren(&issue_args(url, &["--png", "dl.png"]));
    assert_eq!(out.code, 0, "{out:?}");
    let qr = out.stdout.trim_end().to_owned();
    let out = n.huren_env(&["verify", "--node", url, &qr], &[("HUREN_TOKEN", TOKEN)]);
    assert_eq!(out.code, 0, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["verdict"], "valid");
    assert_eq!(v["licence"]["holder"]["name"], "张三");
    assert_eq!(node.seen().last().expect("req").json(), json!({ "qr": qr }));
    // Verification is public: no token is sent even if one is in the environment.
    let last = node.seen().last().cloned().expect("req");
    assert!(!last.headers.contains_key("authorization"));

    // Garbage is undetermined (2); a credential the ledger never saw is not valid.
    let garbage = n.huren(&["verify", "--node", url, "garbage"]);
    assert_eq!(garbage.code, 2, "{garbage:?}");
    let offline = n.issue_mvdl(&[]);
    let out = n.huren(&["verify", "--node", url, &offline]);
    assert!(matches!(out.code, 1 | 2), "{out:?}");

    // A photo: the multipart part is named image. This one is over the node's limit,
    // and a refused verification request is an error (65), never a verdict.
    let mut big = std::fs::read(n.path("dl.png")).expect("png");
    big.resize(10 * 1024, 0);
    std::fs::write(n.path("big.png"), big).expect("write");
    let out = n.huren(&["verify", "--node", url, "--image", "big.png"]);
    let req = node.seen().last().cloned().expect("req");
    assert!(req.headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("multipart/form-data"));
    assert!(
        req.body
            .windows(b"name=\"image\"".len())
            .any(|w| w == b"name=\"image\""),
        "the part is named image"
    );
    assert_eq!(out.code, 65, "{out:?}");
    assert!(
        out.stderr.contains("error: body_too_large:"),
        "{}",
        out.stderr
    );
}

#[test]
fn online_verify_reads_a_photo() {
    let n = Net::new();
    let node = LiveNode::start(&n.founded, "");
    let url = node.url.as_str();
    let out = n.huren(&issue_args(url, &["--png", "dl.png"]));
    assert_eq!(out.code, 0, "{out:?}");
    let out = n.huren(&["verify", "--node", url, "--image", "dl.png"]);
    assert_eq!(out.code, 0, "{out:?}");
    // Not an image: the node answers undetermined · undecodable (2), the clerk retakes it.
    std::fs::write(n.path("blank.png"), b"not an image").expect("write");
    let out = n.huren(&["verify", "--node", url, "--image", "blank.png"]);
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn faults_in_front_of_the_node_get_their_own_exit_status() {
    let n = Net::new();
    let node = LiveNode::start(&n.founded, "");
    let url = node.url.as_str();
    // A 503 from the node (or in front of it): 69, with the node's code.
    node.add_rule(Rule {
        path_suffix: "/v1/licences",
        body_contains: "",
        fault: Fault::Refuse(ErrorCode::Unavailable),
        times: 1,
    });
    let out = n.huren(&issue_args(url, &[]));
    assert_eq!(out.code, 69, "{out:?}");
    assert!(out.stderr.contains("error: unavailable:"), "{}", out.stderr);
    // The connection cut in the middle of the answer: 69, outcome unknown.
    node.add_rule(Rule {
        path_suffix: "/v1/licences",
        body_contains: "",
        fault: Fault::DropMidAnswer,
        times: 1,
    });
    let out = n.huren(&issue_args(url, &[]));
    assert_eq!(out.code, 69, "{out:?}");
    assert!(
        out.stderr.contains("broke while reading the answer")
            || out.stderr.contains("may or may not have been carried out"),
        "{}",
        out.stderr
    );
    // A node slower than --timeout: 69, "may or may not have been carried out".
    node.add_rule(Rule {
        path_suffix: "/v1/licences",
        body_contains: "",
        fault: Fault::Delay(Duration::from_secs(4)),
        times: 1,
    });
    let mut args = issue_args(url, &[]);
    args.extend(["--timeout-secs", "1"]);
    let out = n.huren(&args);
    assert_eq!(out.code, 69, "{out:?}");
    assert!(
        out.stderr.contains("did not answer within 1 s"),
        "{}",
        out.stderr
    );
    // And with nothing in the way, the same command works.
    assert_eq!(n.huren(&issue_args(url, &[])).code, 0);
}

#[test]
fn import_sends_batches_and_reports_failures() {
    let n = Net::new();
    let node = LiveNode::start(&n.founded, "");
    let url = node.url.as_str();
    std::fs::write(
        n.path("in.csv"),
        "type,holder.name,holder.id_number,holder.class,field.archive_no,valid_days\n\
         mvdl,张三,44010619900101123X,C1,A1,\n\
         mvdl,李四,44010619900101124X,C2,,365\n\
         mvdl,bad,,C1,,\n\
         mvdl,王五,44010619900101125X,C1,,ten\n\
         mvdl,赵六,44010619900101126X,C1,,\n\
         mvdl,\"钱,七\",44010619900101127X,C1,,\n\
         mvdl,孙八,44010619900101128X,A1,,\n",
    )
    .expect("csv");
    let out = n.huren(&[
        "import",
        "--node",
        url,
        "--token",
        TOKEN,
        "in.csv",
        "--batch",
        "2",
        "--out",
        "issued.csv",
        "--failed",
        "failed.csv",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.starts_with("imported 5, failed 2 (of 7 rows)"),
        "{}",
        out.stdout
    );
    // The real node's code for a missing required holder field.
    assert!(out.stdout.contains("invalid_licence"), "{}", out.stdout);
    assert!(out.stdout.contains("valid_days \"ten\""), "{}", out.stdout);
    let failed_rows: Vec<&str> = out
        .stdout
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().next().expect("row"))
        .collect();
    assert_eq!(failed_rows, ["4", "5"], "{}", out.stdout);

    // Six well-formed rows in batches of two: three requests, in file order.
    let batches: Vec<_> = node
        .seen()
        .into_iter()
        .filter(|r| r.path == "/v1/licences:batch")
        .collect();
    assert_eq!(batches.len(), 3);
    let first = batches[0].json();
    assert_eq!(
        first["licences"][0],
        json!({
            "licence_type": "mvdl",
            "holder": {"name": "张三", "id_number": "44010619900101123X", "class": "C1"},
            "fields": {"archive_no": "A1"},
        })
    );
    assert_eq!(first["licences"][1]["valid_days"], 365);
    assert_eq!(batches[2].json()["licences"][0]["holder"]["name"], "钱,七");

    let issued = std::fs::read_to_string(n.path("issued.csv")).expect("out");
    // It holds holders' details: the officer's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["issued.csv", "failed.csv"] {
            let mode = std::fs::metadata(n.path(f))
                .expect("out")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
    let lines: Vec<&str> = issued.lines().collect();
    assert_eq!(lines[0], "row,licence_id,qr");
    assert_eq!(lines.len(), 6, "{issued}");
    assert!(lines[1].starts_with("2,gd.transport:mvdl:"), "{issued}");
    let rows: Vec<&str> = lines[1..].iter().map(|l| &l[..1]).collect();
    assert_eq!(rows, ["2", "3", "6", "7", "8"]);
    // Every QR the import wrote verifies at the node.
    let qr = lines[1].rsplit(',').next().expect("qr");
    assert_eq!(n.huren(&["verify", "--node", url, qr]).code, 0);
    let failed = std::fs::read_to_string(n.path("failed.csv")).expect("failed");
    assert_eq!(failed.lines().count(), 3, "{failed}");

    // --out is not overwritten without --force, before anything is sent.
    let before = node.seen().len();
    let again = n.huren(&[
        "import",
        "--node",
        url,
        "--token",
        TOKEN,
        "in.csv",
        "--out",
        "issued.csv",
    ]);
    assert_eq!(again.code, 73, "{again:?}");
    assert_eq!(node.seen().len(), before);

    // All good: exit 0.
    std::fs::write(
        n.path("good.csv"),
        "type,holder.name,holder.id_number,holder.class\nmvdl,a,1,C1\nmvdl,b,2,C1\n",
    )
    .expect("csv");
    let ok = n.huren(&["import", "--node", url, "--token", TOKEN, "good.csv"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert_eq!(ok.stdout.trim_end(), "imported 2, failed 0 (of 2 rows)");

    // A rejected token stops the import at the first batch.
    let denied = n.huren(&["import", "--node", url, "--token", "nope", "good.csv"]);
    assert_eq!(denied.code, 1, "{denied:?}");
    assert!(denied.stderr.contains("unauthorized"), "{}", denied.stderr);
    assert!(
        denied.stderr.contains("rows 2-3: not imported"),
        "{}",
        denied.stderr
    );
}

#[test]
fn import_shrinks_batches_the_node_finds_too_large() {
    let n = Net::new();
    // The node takes at most 3 licences per request: a real 413 batch_too_large.
    let node = LiveNode::start(&n.founded, "batch_licences_max = 3");
    let mut csv = String::from("type,holder.name,holder.id_number,holder.class\n");
    for i in 0..7 {
        csv.push_str(&format!("mvdl,p{i},{i},C1\n"));
    }
    std::fs::write(n.path("in.csv"), csv).expect("csv");
    let out = n.huren(&[
        "import",
        "--node",
        &node.url,
        "--token",
        TOKEN,
        "in.csv",
        "--batch",
        "5",
        "--out",
        "issued.csv",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim_end(), "imported 7, failed 0 (of 7 rows)");
    assert!(out.stderr.contains("sending 2 at a time"), "{}", out.stderr);
    let sizes: Vec<usize> = node
        .seen()
        .iter()
        .map(|r| r.json()["licences"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [5, 2, 2, 1, 2]);
    let issued = std::fs::read_to_string(n.path("issued.csv")).expect("out");
    assert_eq!(issued.lines().count(), 8, "{issued}");
}

#[test]
fn import_waits_out_a_rate_limit() {
    let n = Net::new();
    let node = LiveNode::start(&n.founded, "");
    node.add_rule(Rule {
        path_suffix: "/v1/licences:batch",
        body_contains: "",
        fault: Fault::Refuse(ErrorCode::RateLimited),
        times: 1,
    });
    std::fs::write(
        n.path("in.csv"),
        "type,holder.name,holder.id_number,holder.class\nmvdl,a,1,C1\n",
    )
    .expect("csv");
    let out = n.huren(&["import", "--node", &node.url, "--token", TOKEN, "in.csv"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("rate limiting; retrying row 2"),
        "{}",
        out.stderr
    );
    assert_eq!(
        node.seen().len(),
        2,
        "one refused try, one that went through"
    );
}

#[test]
fn import_stops_when_a_batch_outcome_is_unknown() {
    let n = Net::new();
    let node = LiveNode::start(&n.founded, "");
    // The node issues the batch with "boom" in it, but its answer is lost to a 500.
    node.add_rule(Rule {
        path_suffix: "/v1/licences:batch",
        body_contains: "boom",
        fault: Fault::FailAfter,
        times: 1,
    });
    std::fs::write(
        n.path("in.csv"),
        "type,holder.name,holder.id_number,holder.class\n\
         mvdl,a,1,C1\nmvdl,b,2,C1\nmvdl,boom,3,C1\nmvdl,c,4,C1\nmvdl,d,5,C1\n",
    )
    .expect("csv");
    let out = n.huren(&[
        "import",
        "--node",
        &node.url,
        "--token",
        TOKEN,
        "in.csv",
        "--batch",
        "2",
        "--out",
        "issued.csv",
    ]);
    assert_eq!(out.code, 69, "{out:?}");
    assert!(
        out.stdout.starts_with("imported 2, failed 0"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("rows 4-5: may or may not have been imported"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("row 6: not sent"), "{}", out.stderr);
    // What was imported before the stop is on disk.
    let issued = std::fs::read_to_string(n.path("issued.csv")).expect("out");
    assert_eq!(issued.lines().count(), 3, "{issued}");
}

#[test]
fn import_refuses_bad_files_before_sending() {
    let n = Net::new();
    let node = LiveNode::start(&n.founded, "");
    let url = node.url.as_str();
    std::fs::write(n.path("typo.csv"), "tpye,holder.name\nmvdl,a\n").expect("csv");
    let out = n.huren(&["import", "--node", url, "--token", TOKEN, "typo.csv"]);
    assert_eq!(out.code, 65, "{out:?}");
    assert!(
        out.stderr
            .contains("column 1 (\"tpye\") is not a known column"),
        "{}",
        out.stderr
    );

    let mut big = String::from("type,holder.name\n");
    for _ in 0..=1_000_000 {
        big.push_str("mvdl,a\n");
    }
    std::fs::write(n.path("big.csv"), big).expect("csv");
    let out = n.huren(&["import", "--node", url, "--token", TOKEN, "big.csv"]);
    assert_eq!(out.code, 65, "{out:?}");
    assert!(
        out.stderr.contains("more than 1000000 rows"),
        "{}",
        out.stderr
    );
    assert!(node.seen().is_empty(), "nothing may be sent");
}
