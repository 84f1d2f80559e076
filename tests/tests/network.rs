//! The department network with real `huren-node` processes on 127.0.0.1: cross-region
//! recognition, revocation propagation, catch-up, permissioning, bad blocks, equivocation
//! and partitions.

use std::time::Duration;

use huren_tests::{
    client, driving_body, eventually, heads, issue, start_mesh, until_verdict, verify, NodeProcess,
    TestNetwork, TOKEN,
};
use serde_json::{json, Value};

fn act(
    http: &reqwest::blocking::Client,
    node: &NodeProcess,
    id: &str,
    action: &str,
    body: Value,
) -> anyhow::Result<()> {
    let r = http
        .post(format!("{}/v1/licences/{id}/{action}", node.url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()?;
    anyhow::ensure!(r.status().is_success(), "{action} failed: {}", r.text()?);
    Ok(())
}

fn all_heads_equal(http: &reqwest::blocking::Client, nodes: &[&NodeProcess]) -> Option<()> {
    let first = heads(http, nodes[0]).ok()?;
    nodes[1..]
        .iter()
        .all(|n| heads(http, n).ok().as_ref() == Some(&first))
        .then_some(())
}

#[test]
fn licence_issued_in_one_region_is_recognised_and_revoked_in_another() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let nodes = start_mesh(
        &net,
        &["gd.transport", "gd.market", "sh.transport", "sh.market"],
    )?;
    let (gd, gdm, sh) = (&nodes[0], &nodes[1], &nodes[2]);
    let http = client();
    eventually(20, "peers to connect", || {
        let v: Value = http
            .get(format!("{}/v1/peers", sh.url))
            .send()
            .ok()?
            .json()
            .ok()?;
        (v.as_array()?.len() >= 3).then_some(())
    })?;

    let lic = issue(&http, gd, driving_body(1))?;
    let (id, qr) = (
        lic["licence_id"].as_str().unwrap_or_default().to_owned(),
        lic["qr"].as_str().unwrap_or_default().to_owned(),
    );
    // Shanghai recognises Guangdong driving licences.
    let v = until_verdict(&http, sh, &qr, "valid", None)?;
    assert_eq!(v["verifier_region"], "310000");
    assert_eq!(v["licence"]["region"], "440000");

    act(&http, gd, &id, "suspend", json!({"reason": "penalty"}))?;
    until_verdict(&http, sh, &qr, "invalid", Some("suspended"))?;
    act(&http, gd, &id, "reinstate", json!({}))?;
    until_verdict(&http, sh, &qr, "valid", None)?;
    act(&http, gd, &id, "revoke", json!({"reason": "penalty"}))?;
    until_verdict(&http, sh, &qr, "invalid", Some("revoked"))?;
    // Every node agrees.
    for n in &nodes {
        until_verdict(&http, n, &qr, "invalid", Some("revoked"))?;
    }

    // A Guangdong food business licence is not recognised in Shanghai, and the verdict names
    // the policy; it is valid at home.
    let food = issue(
        &http,
        gdm,
        json!({"licence_type": "food", "holder": {"entity": "广州市某餐饮有限公司", "credit_code": "91440101MA5XXXXXX1"}}),
    )?;
    let fqr = food["qr"].as_str().unwrap_or_default();
    let v = until_verdict(&http, sh, fqr, "invalid", Some("not_recognised"))?;
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("recognition policy of region 310000"),
        "{v}"
    );
    until_verdict(&http, gd, fqr, "valid", None)?;

    let peers: Value = http.get(format!("{}/v1/peers", gd.url)).send()?.json()?;
    let roles: Vec<&str> = peers
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["role"].as_str()).collect())
        .unwrap_or_default();
    assert!(roles.contains(&"sh.transport"), "{peers}");
    let metrics = http.get(format!("{}/metrics", sh.url)).send()?.text()?;
    assert!(
        metrics.contains("huren_net_blocks_received_total"),
        "{metrics}"
    );
    Ok(())
}

#[test]
fn fresh_and_restarted_nodes_catch_up() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let mut nodes = start_mesh(&net, &["gd.transport", "sh.transport"])?;
    let http = client();
    // 1,000 licences before the third node exists.
    let mut qrs = Vec::new();
    for chunk in 0..2 {
        let licences: Vec<Value> = (0..500).map(|i| driving_body(chunk * 500 + i)).collect();
        let cfg = format!("{}/v1/licences:batch", nodes[0].url);
        let r: Value = http
            .post(cfg)
            .bearer_auth(TOKEN)
            .json(&json!({ "licences": licences }))
            .send()?
            .json()?;
        for item in r["results"].as_array().into_iter().flatten() {
            assert_eq!(item["ok"], true, "{item}");
            qrs.push(item["qr"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(qrs.len(), 1000);
    let boot: Vec<String> = nodes.iter().filter_map(|n| n.p2p.clone()).collect();
    let fresh = NodeProcess::start(&net.node_config("sh.market", Some(&boot), "")?)?;
    eventually(30, "the fresh node to reach the same heads", || {
        all_heads_equal(&http, &[&nodes[0], &fresh])
    })?;
    for qr in &qrs {
        let v = verify(&http, &fresh, qr)?;
        assert_eq!(v["verdict"], "valid", "{v}");
    }

    // Kill the Shanghai node, issue while it is down, restart it: it catches up.
    let sh = nodes.pop().expect("sh");
    let sh_cfg = sh.config.clone();
    sh.kill9()?;
    let missed = issue(&http, &nodes[0], driving_body(5000))?;
    let sh = NodeProcess::start(&sh_cfg)?;
    until_verdict(
        &http,
        &sh,
        missed["qr"].as_str().unwrap_or_default(),
        "valid",
        None,
    )?;
    eventually(30, "the restarted node to reach the same heads", || {
        all_heads_equal(&http, &[&nodes[0], &sh, &fresh])
    })?;
    Ok(())
}

#[test]
fn partition_heals_to_identical_heads() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let http = client();
    // Two groups that cannot reach each other: disjoint bootstrap lists.
    let west = start_mesh(&net, &["gd.transport", "gd.market"])?;
    let east = start_mesh(&net, &["sh.transport", "sh.market"])?;
    let a = issue(&http, &west[0], driving_body(1))?;
    let b = issue(&http, &east[0], driving_body(2))?;
    until_verdict(
        &http,
        &west[1],
        a["qr"].as_str().unwrap_or_default(),
        "valid",
        None,
    )?;
    until_verdict(
        &http,
        &east[1],
        b["qr"].as_str().unwrap_or_default(),
        "valid",
        None,
    )?;
    // Across the partition, the other side's chain is unknown.
    let v = verify(&http, &east[1], a["qr"].as_str().unwrap_or_default())?;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("undetermined"), Some("chain_unknown")),
        "{v}"
    );
    // Heal: restart the east side with the west in its bootstrap list.
    let boot: Vec<String> = west.iter().filter_map(|n| n.p2p.clone()).collect();
    let mut healed = Vec::new();
    for n in east {
        let name = if n.config.to_string_lossy().contains("sh.transport") {
            "sh.transport"
        } else {
            "sh.market"
        };
        n.stop()?;
        healed.push(NodeProcess::start(&net.node_config(
            name,
            Some(&boot),
            "",
        )?)?);
    }
    // Issue on both sides after healing too.
    issue(&http, &west[0], driving_body(3))?;
    issue(&http, &healed[0], driving_body(4))?;
    let all: Vec<&NodeProcess> = west.iter().chain(healed.iter()).collect();
    eventually(30, "identical heads after healing", || {
        all_heads_equal(&http, &all)
    })?;
    let v = verify(&http, &healed[1], a["qr"].as_str().unwrap_or_default())?;
    assert_eq!(v["verdict"], "valid", "{v}");
    std::thread::sleep(Duration::from_millis(10));
    Ok(())
}

#[test]
fn department_restored_from_nothing_catches_up_before_signing() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let nodes = start_mesh(&net, &["sh.transport", "gd.transport"])?;
    let http = client();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            issue(&http, &nodes[1], driving_body(i))?["licence_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    eventually(20, "sh to hold gd#3", || {
        heads(&http, &nodes[0])
            .ok()?
            .iter()
            .any(|(d, h, _)| d == "gd.transport" && *h == 3)
            .then_some(())
    })?;
    // gd loses its data directory and comes back empty while its only peer is down.
    let mut nodes = nodes;
    let gd = nodes.pop().expect("gd");
    let sh = nodes.pop().expect("sh");
    let (gd_cfg, sh_name) = (gd.config.clone(), "sh.transport");
    gd.stop()?;
    sh.stop()?;
    std::fs::remove_dir_all(gd_cfg.parent().expect("dir").join("data"))?;
    let gd = NodeProcess::start(&gd_cfg)?;
    // It must not sign: it does not know how far its own chain went.
    let r = http
        .post(format!("{}/v1/licences", gd.url))
        .bearer_auth(TOKEN)
        .json(&driving_body(10))
        .send()?;
    assert_eq!(
        r.status().as_u16(),
        503,
        "a node that lost its chain signed a block: {}",
        r.text()?
    );
    let v: Value = r.json()?;
    assert_eq!(v["error"]["code"], "catching_up", "{v}");
    // The peer comes back; gd fetches its own three blocks, then signs height 4.
    let sh = NodeProcess::start(&net.node_config(
        sh_name,
        Some(&[gd.p2p.clone().unwrap_or_default()]),
        "",
    )?)?;
    let next = issue(&http, &gd, driving_body(10))?;
    assert_eq!(next["block"]["height"], 4, "{next}");
    assert!(
        !ids.contains(&next["licence_id"].as_str().unwrap_or_default().to_owned()),
        "serial reused: {next}"
    );
    eventually(20, "identical heads", || {
        all_heads_equal(&http, &[&sh, &gd])
    })?;
    for n in [&sh, &gd] {
        let ev = huren_tests::get_json(&http, &format!("{}/v1/evidence", n.url))?;
        assert_eq!(
            ev["evidence"].as_array().map(Vec::len),
            Some(0),
            "the restored node forked its chain: {ev}"
        );
    }
    // Its ledger is whole again; only the credentials of the three licences it issued
    // before the loss are gone (they never left the node): check passes and says so.
    gd.stop()?;
    let (ok, out) = huren_tests::check(&gd_cfg)?;
    assert!(ok, "check of the restored data directory failed:\n{out}");
    assert!(
        out.contains("3 licences this department issued have no stored credential"),
        "{out}"
    );
    Ok(())
}
