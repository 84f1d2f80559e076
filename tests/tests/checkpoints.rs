//! Witnessed checkpoints with real `huren-node` processes on 127.0.0.1: a quorum of
//! witnesses cosigns each department's checkpoint and verdicts say what they rest on; a
//! node cut off from an issuer stops vouching for its licences; a department that shows
//! two halves of the network two histories is caught once they meet.

use anyhow::Context;
use huren_tests::{
    client, driving_body, eventually, get_json, issue, start_mesh_with, until_verdict, verify,
    FakeNode, NodeProcess, TestNetwork, TOKEN,
};
use serde_json::{json, Value};

/// Checkpoints every second while idle, at most five a second, stale after 6 s.
const FAST: &str =
    "checkpoint_spacing_ms = 200\ncheckpoint_interval_ms = 1000\ncheckpoint_age_ms_max = 6000";

fn checkpoint_of(
    http: &reqwest::blocking::Client,
    node: &NodeProcess,
    dept: &str,
) -> Option<Value> {
    let v = get_json(http, &format!("{}/v1/checkpoints", node.url)).ok()?;
    v["departments"]
        .as_array()?
        .iter()
        .find(|d| d["department"] == dept)
        .cloned()
}

fn revoke(http: &reqwest::blocking::Client, node: &NodeProcess, id: &str) -> anyhow::Result<()> {
    let r = http
        .post(format!("{}/v1/licences/{id}/revoke", node.url))
        .bearer_auth(TOKEN)
        .json(&json!({"reason": "penalty"}))
        .send()?;
    anyhow::ensure!(r.status().is_success(), "revoke failed: {}", r.text()?);
    Ok(())
}

#[test]
fn a_quorum_of_witnesses_cosigns_and_every_verdict_says_what_it_rests_on() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let nodes = start_mesh_with(&net, &["gd.transport", "gd.market", "sh.transport"], FAST)?;
    let (gd, sh) = (&nodes[0], &nodes[2]);
    let http = client();
    let lic = issue(&http, gd, driving_body(1))?;
    let qr = lic["qr"].as_str().context("qr")?;
    let height = lic["block"]["height"].as_u64().context("height")?;

    // Every node comes to hold gd.transport's checkpoint at the licence's block, with
    // the example network's quorum of two cosignatures by the other departments' nodes.
    for n in &nodes {
        let cp = eventually(30, "a counted checkpoint at the licence's height", || {
            let d = checkpoint_of(&http, n, "gd.transport")?;
            let c = d["counted"].clone();
            (c["height"].as_u64()? >= height).then_some(c)
        })?;
        assert_eq!(cp["quorum"], 2);
        let witnesses: Vec<&str> = cp["cosigners"]
            .as_array()
            .context("cosigners")?
            .iter()
            .filter_map(|c| c["witness"].as_str())
            .collect();
        assert!(witnesses.len() >= 2, "{cp}");
        assert!(
            !witnesses.contains(&"gd.transport"),
            "a department does not witness itself"
        );
        let note = cp["note"].as_str().context("note")?;
        assert!(note.starts_with("huren.network/"), "{note}");
        assert!(note.contains("\n\n\u{2014} huren.network/"), "{note}");
    }

    // The verdict at another region's window says which checkpoint it rests on.
    let v = verify(&http, sh, qr)?;
    assert_eq!(v["verdict"], "valid", "{v}");
    assert_eq!(v["as_of"]["department"], "gd.transport", "{v}");
    assert!(v["as_of"]["height"].as_u64() >= Some(height), "{v}");
    assert!(v["as_of"]["cosigners"].as_u64() >= Some(2), "{v}");
    assert_eq!(v["as_of"]["freshness"], "fresh");
    assert_eq!(v["as_of"]["source"], "node");
    Ok(())
}

#[test]
fn a_node_cut_off_from_the_issuer_stops_vouching_within_the_configured_time() -> anyhow::Result<()>
{
    let net = TestNetwork::new()?;
    let mut nodes = start_mesh_with(&net, &["gd.transport", "gd.market", "sh.transport"], FAST)?;
    let http = client();
    let lic = issue(&http, &nodes[0], driving_body(2))?;
    let (qr, id) = (
        lic["qr"].as_str().context("qr")?.to_owned(),
        lic["licence_id"].as_str().context("id")?.to_owned(),
    );
    until_verdict(&http, &nodes[2], &qr, "valid", None)?;
    eventually(30, "sh to count a checkpoint with the licence", || {
        let v = verify(&http, &nodes[2], &qr).ok()?;
        v["as_of"]["height"].as_u64().filter(|h| *h >= 1)
    })?;

    // sh.transport loses the network: it comes back on a new port with nobody to dial
    // and nobody dialling it. The issuer meanwhile revokes the licence elsewhere.
    let sh = nodes.pop().context("sh")?;
    let config = sh.config.clone();
    sh.stop()?;
    let text = std::fs::read_to_string(&config)?;
    let alone = regex_free_bootstrap(&text);
    std::fs::write(&config, alone)?;
    let sh = NodeProcess::start(&config)?;
    revoke(&http, &nodes[0], &id)?;
    until_verdict(&http, &nodes[1], &qr, "invalid", Some("revoked"))?;

    // Within the configured 6 s (and the time to notice), sh's answer for the issuer is
    // no longer valid: undetermined · stale, with the age.
    let v = until_verdict(&http, &sh, &qr, "undetermined", Some("stale"))?;
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no checkpoint of gd.transport"),
        "{message}"
    );
    assert_eq!(v["as_of"]["freshness"], "stale", "{v}");
    // Its own department's licences it still vouches for.
    let own = issue(&http, &sh, driving_body(3))?;
    let v = verify(&http, &sh, own["qr"].as_str().context("qr")?)?;
    assert_eq!(v["verdict"], "valid", "{v}");
    Ok(())
}

/// The config with its bootstrap list emptied: networking on, no one to dial.
fn regex_free_bootstrap(config: &str) -> String {
    config
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("bootstrap") {
                "bootstrap = []".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_department_showing_two_histories_is_caught_when_the_halves_meet() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let http = client();
    // Half A: gd.transport's node with gd.market and sh.transport as witnesses.
    let a = start_mesh_with(&net, &["gd.transport", "gd.market", "sh.transport"], FAST)?;
    // Half B: a second copy of gd.transport's node (its keys, another data directory)
    // with sh.market and gd.health, never connected to half A.
    let rogue_config = net.path("rogue-gd.toml");
    let a_config = std::fs::read_to_string(&a[0].config)?;
    // Its own copy of the issuer key file: the signing record kept beside the key would
    // (rightly) refuse to sign height 1 twice.
    let key = net.issuer_key("gd.transport");
    let rogue_key = net.path("rogue-gd.issuer.key");
    std::fs::copy(&key, &rogue_key)?;
    let rogue_text = regex_free_bootstrap(&a_config)
        .replace(
            &net.path("gd.transport").join("data").display().to_string(),
            &net.path("rogue-gd").join("data").display().to_string(),
        )
        .replace(&key.display().to_string(), &rogue_key.display().to_string());
    anyhow::ensure!(
        rogue_text.contains("rogue-gd/data") && rogue_text.contains("rogue-gd.issuer.key"),
        "the rogue copy's config: {rogue_text}"
    );
    std::fs::write(&rogue_config, rogue_text)?;
    let rogue = NodeProcess::start(&rogue_config)?;
    let rogue_p2p = rogue.p2p.clone().context("rogue p2p")?;
    let mut b = vec![NodeProcess::start(&net.node_config(
        "sh.market",
        Some(std::slice::from_ref(&rogue_p2p)),
        FAST,
    )?)?];
    let b0 = b[0].p2p.clone().context("p2p")?;
    b.push(NodeProcess::start(&net.node_config(
        "gd.health",
        Some(&[rogue_p2p.clone(), b0]),
        FAST,
    )?)?);

    // Each copy issues a different licence as block 1: two histories, each cosigned by
    // its half.
    issue(&http, &a[0], driving_body(10))?;
    issue(&http, &rogue, driving_body(20))?;
    let counted_root = |n: &NodeProcess| {
        eventually(30, "a counted checkpoint of gd.transport", || {
            let c = checkpoint_of(&http, n, "gd.transport")?["counted"].clone();
            (c["height"].as_u64()? >= 1).then(|| c["root"].as_str().map(str::to_owned))?
        })
    };
    let (root_a, root_b) = (counted_root(&a[1])?, counted_root(&b[0])?);
    assert_ne!(root_a, root_b, "the halves hold different histories");
    for n in a.iter().chain(&b) {
        let v = get_json(&http, &format!("{}/v1/checkpoints", n.url))?;
        assert_eq!(v["conflicts"], json!([]), "no one knows yet");
    }

    // The rogue copy leaves; sh.transport restarts bridging the halves.
    rogue.stop()?;
    let mut a = a;
    let sh = a.pop().context("sh")?;
    let config = sh.config.clone();
    sh.stop()?;
    let boot: Vec<String> = a.iter().chain(&b).filter_map(|n| n.p2p.clone()).collect();
    let text = std::fs::read_to_string(&config)?;
    let bridged = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("bootstrap") {
                format!(
                    "bootstrap = {}",
                    serde_json::to_string(&boot).unwrap_or_default()
                )
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&config, bridged)?;
    a.push(NodeProcess::start(&config)?);

    // Every node, on both sides, serves the evidence: two checkpoints gd.transport
    // signed at one height with different roots.
    for n in a.iter().chain(&b) {
        let conflicts = eventually(60, &format!("evidence at {}", n.url), || {
            let v = get_json(&http, &format!("{}/v1/checkpoints", n.url)).ok()?;
            let c = v["conflicts"].as_array()?.clone();
            (!c.is_empty()).then_some(c)
        })?;
        assert_eq!(conflicts[0]["department"], "gd.transport");
        let (first, second) = (
            conflicts[0]["first"].as_str().context("first")?,
            conflicts[0]["second"].as_str().context("second")?,
        );
        assert_ne!(first, second);
        assert!(first.contains("\nheight ") && second.contains("\nheight "));
    }
    Ok(())
}

/// The node's report with its proof (`POST /v1/verify?proof=1`).
fn verify_with_proof(
    http: &reqwest::blocking::Client,
    node: &NodeProcess,
    qr: &str,
) -> anyhow::Result<Value> {
    Ok(http
        .post(format!("{}/v1/verify?proof=1", node.url))
        .json(&json!({ "qr": qr }))
        .send()?
        .json()?)
}

#[test]
fn a_verifier_with_proof_refuses_a_node_that_lies_or_serves_stale_answers() -> anyhow::Result<()> {
    use huren_tests::gov::huren;
    let net = TestNetwork::new()?;
    let nodes = start_mesh_with(&net, &["gd.transport", "gd.market", "sh.transport"], FAST)?;
    let (gd, sh) = (&nodes[0], &nodes[2]);
    let http = client();
    let keep = issue(&http, gd, driving_body(1))?;
    let gone = issue(&http, gd, driving_body(2))?;
    let (keep_qr, gone_qr) = (
        keep["qr"].as_str().context("qr")?.to_owned(),
        gone["qr"].as_str().context("qr")?.to_owned(),
    );
    let genesis = net.genesis.display().to_string();
    let checked = |url: &str, qr: &str, extra: &[&str]| {
        let mut args = vec!["verify", "--node", url, "--proof", "--genesis", &genesis];
        args.extend_from_slice(extra);
        args.push(qr);
        huren(&args)
    };

    // An honest node's answer and its proof agree.
    let valid = eventually(30, "a proven valid answer", || {
        let v = verify_with_proof(&http, sh, &keep_qr).ok()?;
        (v["verdict"] == "valid" && v["proof"]["issue"].is_object()).then_some(v)
    })?;
    let (code, out, err) = checked(&sh.url, &keep_qr, &[])?;
    assert_eq!(code, 0, "{out} {err}");
    assert!(err.contains("proof checked: as of gd.transport"), "{err}");

    // Revoked, and proven revoked.
    let r = http
        .post(format!(
            "{}/v1/licences/{}/revoke",
            gd.url,
            gone["licence_id"].as_str().context("id")?
        ))
        .bearer_auth(TOKEN)
        .json(&json!({"reason": "penalty"}))
        .send()?;
    anyhow::ensure!(r.status().is_success(), "revoke: {}", r.text()?);
    let revoked = eventually(30, "a proven revoked answer", || {
        let v = verify_with_proof(&http, sh, &gone_qr).ok()?;
        let status = v["proof"]["status"].as_array()?;
        (v["reason"] == "revoked" && status.len() == 1).then_some(v)
    })?;
    let (code, out, err) = checked(&sh.url, &gone_qr, &[])?;
    assert_eq!(code, 1, "{out} {err}");

    let export = http
        .get(format!("{}/v1/governance", sh.url))
        .send()?
        .bytes()?
        .to_vec();
    let lying = |report: &Value| -> anyhow::Result<FakeNode> {
        FakeNode::serve(vec![
            (
                "/v1/verify",
                "application/json",
                serde_json::to_vec(report)?,
            ),
            ("/v1/governance", "application/json", export.clone()),
        ])
    };
    let refused = |fake: &FakeNode, qr: &str, extra: &[&str], why: &str| -> anyhow::Result<()> {
        let (code, out, err) = checked(&fake.url, qr, extra)?;
        assert_eq!(code, 65, "{why}: {out} {err}");
        assert!(
            err.contains("the node's answer is refused") && err.contains(why),
            "{why}: {err}"
        );
        Ok(())
    };
    // A node that calls the revoked licence valid, with its genuine proof.
    let mut forged = revoked.clone();
    forged["verdict"] = json!("valid");
    forged["reason"] = Value::Null;
    refused(
        &lying(&forged)?,
        &gone_qr,
        &[],
        "its own proof shows revoked",
    )?;
    // ... or with the revocation cut out of the proof.
    let mut hidden = forged.clone();
    hidden["proof"]["status"] = json!([]);
    refused(&lying(&hidden)?, &gone_qr, &[], "its proof does not hold")?;
    // ... or with no proof at all.
    let mut bare = forged.clone();
    bare.as_object_mut().context("report")?.remove("proof");
    refused(&lying(&bare)?, &gone_qr, &[], "without a proof")?;
    // A stale answer: the valid one from before, replayed once its checkpoint is old.
    let signed_ms = {
        let note = valid["proof"]["checkpoint"].as_str().context("note")?;
        note.lines()
            .find_map(|l| l.strip_prefix("time ")?.parse::<u64>().ok())
            .context("time line")?
    };
    eventually(30, "the replayed checkpoint to be 3 s old", || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        (now.as_millis() as u64 > signed_ms + 3000).then_some(())
    })?;
    let mut replayed = valid.clone();
    replayed["licence"] = revoked["licence"].clone();
    refused(
        &lying(&valid)?,
        &keep_qr,
        &["--proof-age-max-secs", "1"],
        "older than 1 s",
    )?;
    // The same replay of the valid licence's proof for the revoked one does not hold.
    refused(&lying(&replayed)?, &gone_qr, &[], "its proof does not hold")?;
    Ok(())
}
