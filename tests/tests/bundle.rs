//! The offline bundle end to end: real nodes on 127.0.0.1 witness each other's
//! checkpoints, `huren bundle` fetches and updates a bundle, and `huren verify --offline
//! --bundle` answers revoked, fresh, stale and expired from it, refusing a tampered or a
//! rolled-back one.

use std::path::Path;

use anyhow::Context;
use huren_core::bundle::{Bundle, Delta, DeltaDepartment};
use huren_tests::gov::huren;
use huren_tests::{
    client, driving_body, eventually, get_json, issue, start_mesh_with, FakeNode, TOKEN,
};
use serde_json::{json, Value};

const FAST: &str =
    "checkpoint_spacing_ms = 200\ncheckpoint_interval_ms = 1000\ncheckpoint_age_ms_max = 60000";

fn act(
    http: &reqwest::blocking::Client,
    url: &str,
    id: &str,
    action: &str,
    body: Value,
) -> anyhow::Result<()> {
    let r = http
        .post(format!("{url}/v1/licences/{id}/{action}"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()?;
    anyhow::ensure!(r.status().is_success(), "{action} failed: {}", r.text()?);
    Ok(())
}

/// `huren verify --offline` with the bundle: exit status and report.
fn offline(
    genesis: &Path,
    bundle: &Path,
    qr: &str,
    at: Option<&str>,
) -> anyhow::Result<(i32, Value)> {
    let (g, b) = (genesis.display().to_string(), bundle.display().to_string());
    let mut args = vec!["verify", "--offline", "--genesis", &g, "--bundle", &b];
    if let Some(at) = at {
        args.extend(["--at", at]);
    }
    args.push(qr);
    let (code, out, err) = huren(&args)?;
    let report = serde_json::from_str(&out).with_context(|| format!("report: {out} {err}"))?;
    Ok((code, report))
}

/// A node's counted checkpoint heights, once every department that issued has one at
/// least `min` high.
fn counted_at_least(
    http: &reqwest::blocking::Client,
    url: &str,
    dept: &str,
    min: u64,
) -> anyhow::Result<()> {
    eventually(
        30,
        &format!("a counted checkpoint of {dept} at {min}"),
        || {
            let v = get_json(http, &format!("{url}/v1/checkpoints")).ok()?;
            let d = v["departments"]
                .as_array()?
                .iter()
                .find(|d| d["department"] == dept)?
                .clone();
            (d["counted"]["height"].as_u64()? >= min).then_some(())
        },
    )
}

#[test]
fn a_window_offline_answers_from_its_bundle_and_refuses_a_tampered_or_older_one(
) -> anyhow::Result<()> {
    let net = huren_tests::TestNetwork::new()?;
    let nodes = start_mesh_with(&net, &["gd.transport", "gd.market", "sh.transport"], FAST)?;
    let (gd, sh) = (&nodes[0], &nodes[2]);
    let http = client();
    let keep = issue(&http, gd, driving_body(1))?;
    let gone = issue(&http, gd, driving_body(2))?;
    let paused = issue(&http, gd, driving_body(3))?;
    let id = |v: &Value| v["licence_id"].as_str().map(str::to_owned).context("id");
    let qr = |v: &Value| v["qr"].as_str().map(str::to_owned).context("qr");
    act(
        &http,
        &gd.url,
        &id(&gone)?,
        "revoke",
        json!({"reason": "penalty"}),
    )?;
    act(
        &http,
        &gd.url,
        &id(&paused)?,
        "suspend",
        json!({"reason": "investigation"}),
    )?;
    let height = |url: &str| gd_height(&http, url);
    let h = height(&gd.url)?;
    counted_at_least(&http, &sh.url, "gd.transport", h)?;

    // The window fetches its bundle from another region's node.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("window.bundle");
    let genesis = net.genesis.display().to_string();
    let out = file.display().to_string();
    let (code, stdout, stderr) = huren(&[
        "bundle",
        "--node",
        &sh.url,
        "--out",
        &out,
        "--genesis",
        &genesis,
    ])?;
    assert_eq!(code, 0, "{stdout} {stderr}");
    assert!(stderr.contains("(whole)"), "{stderr}");
    let first = std::fs::read(&file)?;

    // Offline: revoked and suspended as of the bundle, valid with its "as of".
    let (code, r) = offline(&net.genesis, &file, &qr(&gone)?, None)?;
    assert_eq!(
        (code, r["verdict"].as_str(), r["reason"].as_str()),
        (1, Some("invalid"), Some("revoked")),
        "{r}"
    );
    let (code, r) = offline(&net.genesis, &file, &qr(&paused)?, None)?;
    assert_eq!((code, r["reason"].as_str()), (1, Some("suspended")), "{r}");
    let (code, r) = offline(&net.genesis, &file, &qr(&keep)?, None)?;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["as_of"]["source"], "bundle");
    assert_eq!(r["as_of"]["freshness"], "fresh");
    assert_eq!(r["as_of"]["height"].as_u64(), Some(h));
    assert_eq!(r["offline"], false, "revocation was checked");

    // The same bundle two days on: valid stands, data as of (exit 3); four days on:
    // undetermined · bundle_expired, never valid. A revocation stays known.
    let at = |days: i64| {
        let t = time_now() + days * 86_400;
        huren_core::verify::rfc3339(t)
    };
    let (code, r) = offline(&net.genesis, &file, &qr(&keep)?, Some(&at(2)))?;
    assert_eq!((code, r["verdict"].as_str()), (3, Some("valid")), "{r}");
    assert_eq!(r["as_of"]["freshness"], "stale");
    let (code, r) = offline(&net.genesis, &file, &qr(&keep)?, Some(&at(4)))?;
    assert_eq!(
        (code, r["verdict"].as_str(), r["reason"].as_str()),
        (2, Some("undetermined"), Some("bundle_expired")),
        "{r}"
    );
    let (code, r) = offline(&net.genesis, &file, &qr(&gone)?, Some(&at(4)))?;
    assert_eq!((code, r["reason"].as_str()), (1, Some("revoked")), "{r}");

    // A tampered bundle (one byte of a status set, of a checkpoint) is refused.
    let b = Bundle::decode(&first)?;
    let mut set_changed = b.clone();
    let gd_index = set_changed
        .departments
        .iter()
        .position(|d| d.checkpoint.contains("/gd.transport\n"))
        .context("gd in bundle")?;
    set_changed.departments[gd_index].status[0][15] ^= 1;
    let mut cp_changed = b.clone();
    cp_changed.departments[gd_index].checkpoint = cp_changed.departments[gd_index]
        .checkpoint
        .replacen("\nheight ", "\nheight 1", 1);
    for (name, bad) in [("set", set_changed), ("checkpoint", cp_changed)] {
        let path = dir.path().join(format!("{name}.bundle"));
        std::fs::write(&path, bad.encode())?;
        let (code, out, err) = huren(&[
            "verify",
            "--offline",
            "--genesis",
            &genesis,
            "--bundle",
            &path.display().to_string(),
            &qr(&keep)?,
        ])?;
        assert_eq!(code, 65, "{name}: {out} {err}");
        assert!(
            err.contains("is refused") && err.contains("gd.transport"),
            "{name}: {err}"
        );
    }

    // A reinstatement and a revocation later, a delta brings the bundle up to date.
    act(&http, &gd.url, &id(&paused)?, "reinstate", json!({}))?;
    act(
        &http,
        &gd.url,
        &id(&keep)?,
        "revoke",
        json!({"reason": "cancelled"}),
    )?;
    counted_at_least(&http, &sh.url, "gd.transport", height(&gd.url)?)?;
    let (code, stdout, stderr) = huren(&[
        "bundle",
        "--node",
        &sh.url,
        "--out",
        &out,
        "--genesis",
        &genesis,
    ])?;
    assert_eq!(code, 0, "{stdout} {stderr}");
    assert!(stderr.contains("(delta)"), "{stderr}");
    let (_, r) = offline(&net.genesis, &file, &qr(&paused)?, None)?;
    assert_eq!(r["verdict"], "valid", "reinstated: {r}");
    let (_, r) = offline(&net.genesis, &file, &qr(&keep)?, None)?;
    assert_eq!(r["reason"], "revoked", "{r}");

    // A node that offers the older checkpoints as an update is refused; the file stays.
    let held = std::fs::read(&file)?;
    let newer = Bundle::decode(&held)?;
    let stale = Delta {
        genesis: b.genesis,
        made_ms: b.made_ms,
        governance: None,
        departments: b
            .departments
            .iter()
            .map(|d| {
                let dept_line = d.checkpoint.lines().next().unwrap_or_default().to_owned();
                let from = newer
                    .departments
                    .iter()
                    .find(|n| n.checkpoint.lines().next() == Some(dept_line.as_str()))
                    .and_then(|n| {
                        n.checkpoint
                            .lines()
                            .find_map(|l| l.strip_prefix("height ")?.parse().ok())
                    })
                    .unwrap_or(0);
                DeltaDepartment {
                    from_height: from,
                    checkpoint: d.checkpoint.clone(),
                    changes: Vec::new(),
                }
            })
            .collect(),
    };
    let fake = FakeNode::serve(vec![("/v1/bundle", "application/cbor", stale.encode())])?;
    let (code, stdout, stderr) = huren(&[
        "bundle",
        "--node",
        &fake.url,
        "--out",
        &out,
        "--genesis",
        &genesis,
    ])?;
    assert_eq!(code, 65, "{stdout} {stderr}");
    assert!(
        stderr.contains("older") && stderr.contains("kept"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file)?, held, "the held bundle is unchanged");
    Ok(())
}

/// gd.transport's chain height at the node at `url`.
fn gd_height(http: &reqwest::blocking::Client, url: &str) -> anyhow::Result<u64> {
    let v = get_json(http, &format!("{url}/v1/chains"))?;
    v["chains"]
        .as_array()
        .context("chains")?
        .iter()
        .find(|c| c["department"] == "gd.transport")
        .and_then(|c| c["height"].as_u64())
        .context("height")
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A window offline knows a replaced card (补领: the lost one is superseded) and a
/// suspension that ended by its date: both through a delta of the bundle it held from
/// before, each checked against the witnessed checkpoints.
#[test]
fn offline_a_lost_card_is_superseded_and_a_timed_suspension_ends_by_its_date() -> anyhow::Result<()>
{
    let net = huren_tests::TestNetwork::new()?;
    let nodes = start_mesh_with(&net, &["gd.transport", "gd.market", "sh.transport"], FAST)?;
    let (gd, sh) = (&nodes[0], &nodes[2]);
    let http = client();
    let lost = issue(&http, gd, driving_body(1))?;
    let paused = issue(&http, gd, driving_body(2))?;
    let id = |v: &Value| v["licence_id"].as_str().map(str::to_owned).context("id");
    let qr = |v: &Value| v["qr"].as_str().map(str::to_owned).context("qr");
    // Suspended for a few seconds only: its end passes while the test runs.
    let until = time_now() + 4;
    act(
        &http,
        &gd.url,
        &id(&paused)?,
        "suspend",
        json!({"reason": "penalty", "until": huren_core::verify::rfc3339(until)}),
    )?;
    let height = |url: &str| gd_height(&http, url);
    counted_at_least(&http, &sh.url, "gd.transport", height(&gd.url)?)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("window.bundle");
    let (genesis, out) = (
        net.genesis.display().to_string(),
        file.display().to_string(),
    );
    let fetch = || -> anyhow::Result<String> {
        let (code, stdout, stderr) = huren(&[
            "bundle",
            "--node",
            &sh.url,
            "--out",
            &out,
            "--genesis",
            &genesis,
        ])?;
        anyhow::ensure!(code == 0, "huren bundle: {stdout} {stderr}");
        Ok(stderr)
    };
    fetch()?;
    let (code, r) = offline(&net.genesis, &file, &qr(&paused)?, None)?;
    assert_eq!((code, r["reason"].as_str()), (1, Some("suspended")), "{r}");
    assert_eq!(offline(&net.genesis, &file, &qr(&lost)?, None)?.0, 0);

    // The holder reports the card lost: a reissue. The window updates by a delta once a
    // checkpoint past the reissue and past the suspension's end is witnessed.
    let r = http
        .post(format!("{}/v1/licences/{}/reissue", gd.url, id(&lost)?))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()?;
    anyhow::ensure!(r.status().is_success(), "reissue: {}", r.text()?);
    let new_card: Value = r.json()?;
    let h = height(&gd.url)?;
    eventually(
        30,
        "a counted checkpoint past the reissue and the end",
        || {
            let v = get_json(&http, &format!("{}/v1/checkpoints", sh.url)).ok()?;
            let c = v["departments"]
                .as_array()?
                .iter()
                .find(|d| d["department"] == "gd.transport")?["counted"]
                .clone();
            let time = huren_core::verify::parse_rfc3339(c["time"].as_str()?)?;
            (c["height"].as_u64()? >= h && time > until).then_some(())
        },
    )?;
    let stderr = fetch()?;
    assert!(stderr.contains("(delta)"), "{stderr}");
    let (code, r) = offline(&net.genesis, &file, &qr(&lost)?, None)?;
    assert_eq!(
        (code, r["verdict"].as_str(), r["reason"].as_str()),
        (1, Some("invalid"), Some("superseded")),
        "the lost card, offline: {r}"
    );
    let (code, r) = offline(&net.genesis, &file, &qr(&new_card)?, None)?;
    assert_eq!(code, 0, "the new card, offline: {r}");
    let (code, r) = offline(&net.genesis, &file, &qr(&paused)?, None)?;
    assert_eq!(
        (code, r["verdict"].as_str()),
        (0, Some("valid")),
        "the suspension ended by its date, offline too: {r}"
    );
    // The same from a whole bundle.
    std::fs::remove_file(&file)?;
    fetch()?;
    assert_eq!(
        offline(&net.genesis, &file, &qr(&lost)?, None)?.1["reason"],
        "superseded"
    );
    assert_eq!(offline(&net.genesis, &file, &qr(&paused)?, None)?.0, 0);
    Ok(())
}
