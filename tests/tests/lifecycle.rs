//! The licence's later life across real `huren-node` processes on 127.0.0.1: a driving
//! licence transferred from Guangdong to Shanghai (转出 / 转入) is recognised under its
//! new id everywhere, its old QR points there, and it cannot be transferred in twice; a
//! node too old for the network's protocol follows without penalising anyone and signs
//! nothing.

use anyhow::Context;
use huren_tests::{
    client, driving_body, eventually, get_json, issue, start_mesh, until_verdict, verify,
    NodeProcess, TestNetwork, TOKEN,
};
use serde_json::{json, Value};

fn post(
    http: &reqwest::blocking::Client,
    node: &NodeProcess,
    path: &str,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let r = http
        .post(format!("{}{path}", node.url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()?;
    Ok((r.status().as_u16(), r.json()?))
}

#[test]
fn a_driving_licence_moves_from_guangdong_to_shanghai_and_its_old_qr_points_there(
) -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let nodes = start_mesh(&net, &["gd.transport", "gd.market", "sh.transport"])?;
    let (gd, market, sh) = (&nodes[0], &nodes[1], &nodes[2]);
    let http = client();
    let lic = issue(&http, gd, driving_body(7))?;
    let old_id = lic["licence_id"].as_str().context("id")?.to_owned();
    let old_qr = lic["qr"].as_str().context("qr")?.to_owned();
    for n in &nodes {
        until_verdict(&http, n, &old_qr, "valid", None)?;
    }

    // sh.transport cannot take it in before gd.transport transferred it out.
    let (s, v) = post(&http, sh, "/v1/transfers", json!({"qr": old_qr}))?;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("bad_transfer")),
        "{v}"
    );
    // Nor may it go to a department of its own region.
    let (s, v) = post(
        &http,
        gd,
        &format!("/v1/licences/{old_id}/transfer"),
        json!({"to": "gd.market"}),
    )?;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("bad_transfer")),
        "{v}"
    );

    // 转出 at gd.transport, 转入 at sh.transport once its node holds the transfer out.
    let (s, v) = post(
        &http,
        gd,
        &format!("/v1/licences/{old_id}/transfer"),
        json!({"to": "sh.transport"}),
    )?;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"]["status"], "transferred", "{v}");
    let accepted = eventually(30, "sh.transport to accept the transfer", || {
        let (s, v) = post(&http, sh, "/v1/transfers", json!({"qr": old_qr})).ok()?;
        (s == 201).then_some(v)
    })?;
    let new_id = accepted["licence_id"]
        .as_str()
        .context("new id")?
        .to_owned();
    let new_qr = accepted["qr"].as_str().context("new qr")?.to_owned();
    assert!(new_id.starts_with("sh.transport:mvdl:"), "{accepted}");

    // At every node: the old QR is invalid · transferred, naming the new id and where it
    // lives; the new one is valid in both regions and names its origin.
    for n in &nodes {
        let v = eventually(30, "the old QR to name the new licence", || {
            let v = verify(&http, n, &old_qr).ok()?;
            (v["reason"] == "transferred"
                && v["lineage"]["transfer"]["accepted_as"] == new_id.as_str())
            .then_some(v)
        })?;
        assert_eq!(v["verdict"], "invalid", "{v}");
        assert!(
            v["message"].as_str().unwrap_or_default().contains(&new_id),
            "the clerk reads the new id: {v}"
        );
        assert_eq!(v["lineage"]["transfer"]["to"], "sh.transport", "{v}");
        assert_eq!(v["lineage"]["transfer"]["to_region"], "310000", "{v}");
        until_verdict(&http, n, &new_qr, "valid", None)?;
        // The window page asks for the story (`?history=1`): the new card names its origin.
        let v: Value = http
            .post(format!("{}/v1/verify?history=1", n.url))
            .json(&json!({ "qr": new_qr }))
            .send()?
            .json()?;
        assert_eq!(v["verdict"], "valid", "{v}");
        assert_eq!(v["lineage"]["origin"], old_id.as_str(), "{v}");
        assert_eq!(
            v["licence"]["holder"]["name"], "测试7",
            "the same holder: {v}"
        );
    }
    let st = get_json(&http, &format!("{}/v1/licences/{old_id}", market.url))?;
    assert_eq!(st["state"], "transferred", "{st}");
    let h = get_json(&http, &format!("{}/v1/licences/{new_id}/history", gd.url))?;
    assert_eq!(h["origin"], old_id.as_str(), "{h}");
    assert_eq!(h["history"][0]["kind"], "transfer_in", "{h}");

    // A second transfer in of the same licence is refused, and changes nothing.
    let (s, v) = post(&http, sh, "/v1/transfers", json!({"qr": old_qr}))?;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("bad_transfer")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&new_id),
        "{v}"
    );
    // And the old id takes no more changes.
    let (s, v) = post(
        &http,
        gd,
        &format!("/v1/licences/{old_id}/suspend"),
        json!({"reason": "penalty"}),
    )?;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("already_transferred")),
        "{v}"
    );
    Ok(())
}

/// A node whose release is older than the network's protocol version ignores the
/// blocks it cannot read (penalising no one: its peers stay connected), says so on
/// /healthz, and signs nothing instead of forking.
#[test]
fn a_node_too_old_for_the_network_follows_without_penalising_and_signs_nothing(
) -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let gd = NodeProcess::start(&net.node_config("gd.transport", Some(&[]), "")?)?;
    let boot = vec![gd.p2p.clone().context("gd p2p")?];
    let old_cfg = net.node_config("sh.transport", Some(&boot), "")?;
    let text = std::fs::read_to_string(&old_cfg)?;
    std::fs::write(&old_cfg, format!("protocol_max = 1\n{text}"))?;
    let old = NodeProcess::start(&old_cfg)?;
    let http = client();
    eventually(30, "the nodes to connect", || {
        let v = get_json(&http, &format!("{}/v1/peers", gd.url)).ok()?;
        (!v.as_array()?.is_empty()).then_some(())
    })?;
    let health = get_json(&http, &format!("{}/healthz", old.url))?;
    assert_eq!(health["status"], "protocol_too_old", "{health}");
    assert_eq!(health["protocol"], json!({"network": 2, "supported": 1}));
    let (s, v) = post(&http, &old, "/v1/licences", driving_body(1))?;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (503, Some("protocol_too_old")),
        "{v}"
    );

    let lic = issue(&http, &gd, driving_body(2))?;
    let qr = lic["qr"].as_str().context("qr")?;
    // The old node counts the block as too new for it, and holds no gd.transport chain.
    eventually(30, "the old node to see the newer block", || {
        let m = http
            .get(format!("{}/metrics", old.url))
            .send()
            .ok()?
            .text()
            .ok()?;
        m.contains("reason=\"version_too_new\"").then_some(())
    })?;
    let v = verify(&http, &old, qr)?;
    assert_eq!(
        v["verdict"], "undetermined",
        "never valid, never a fork: {v}"
    );
    // Neither side penalised the other: still connected after the block was refused.
    let peers = get_json(&http, &format!("{}/v1/peers", gd.url))?;
    assert_eq!(peers.as_array().map(Vec::len), Some(1), "{peers}");
    let peers = get_json(&http, &format!("{}/v1/peers", old.url))?;
    assert_eq!(peers.as_array().map(Vec::len), Some(1), "{peers}");
    Ok(())
}
