//! Governance on the ledger with real `huren-node` processes and the `huren` command line:
//! a running network adds a department, rotates a key, answers a stolen key, retires a
//! department into its successor, and refuses records that break the rules, each with a
//! typed reason; offline verification with a governance export knows all of it.
//!
//! Records are made the way departments make them: `huren gov propose` against a node,
//! `huren gov sign` by each department with its issuer key file, `huren gov submit`.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use huren_core::ledger::{BlockHeader, Issue, Record};
use huren_core::{DepartmentId, Hash32, OfficerId, UnverifiedCredential};
use huren_tests::gov::{
    add_jiangsu_maritime, config_with, export, huren, ok, text, until_gov, Gov,
};
use huren_tests::rogue::{drive_until, node_peer, swarm_for};
use huren_tests::{
    client, driving_body, eventually, get_json, heads, issue, start_mesh, until_verdict, verify,
    NodeProcess, TestNetwork, TOKEN,
};
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::swarm::SwarmEvent;
use serde_json::{json, Value};

/// The example network's departments other than gd.transport: with quorum 3, any three
/// of them carry a record about gd.transport.
const OTHERS: [&str; 3] = ["gd.market", "gd.health", "sh.transport"];

/// gd.market, gd.transport (with a second key of its own made into `dir`, configured as
/// `issuer_key_next`) and sh.transport, joined; and `dir`.
fn with_next_key(
    net: &TestNetwork,
    dir: &str,
) -> anyhow::Result<(NodeProcess, NodeProcess, NodeProcess, std::path::PathBuf)> {
    let dir = net.path(dir);
    ok(&[
        "genesis",
        "keygen",
        "--department",
        "gd.transport",
        "--out",
        text(&dir),
    ])?;
    let next = huren_genesis::keys::issuer_key_path(&dir, "gd.transport");
    let market = NodeProcess::start(&net.node_config("gd.market", Some(&[]), "")?)?;
    let boot = vec![market.p2p.clone().context("p2p")?];
    let gd = NodeProcess::start(&config_with(
        net,
        "gd.transport",
        &boot,
        &format!("issuer_key_next = \"{}\"", text(&next)),
    )?)?;
    let sh = NodeProcess::start(&net.node_config("sh.transport", Some(&boot), "")?)?;
    Ok((gd, market, sh, dir))
}

/// Verifies offline with genesis and a governance export: the report.
fn verify_offline(net: &TestNetwork, export: &Path, qr: &str) -> anyhow::Result<Value> {
    let (_, out, err) = huren(&[
        "verify",
        qr,
        "--offline",
        "--genesis",
        text(&net.genesis),
        "--governance",
        text(export),
    ])?;
    serde_json::from_str(&out).with_context(|| format!("the report: {out} {err}"))
}

/// A new region, a new licence type with a recognition rule, and a new department, to a
/// running network; the department generates its keys after founding, starts its node
/// with the governance export, joins, issues, and its licence is valid where the rule
/// says. No node restarts.
#[test]
fn a_running_network_adds_a_department() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let nodes = start_mesh(
        &net,
        &["gd.transport", "gd.market", "gd.health", "sh.transport"],
    )?;
    let pids: Vec<u32> = nodes.iter().map(NodeProcess::pid).collect();
    let http = client();
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    let (js, h) = add_jiangsu_maritime(&net, &nodes[1], &all, "440000")?;
    assert_eq!(h, 5);
    // `huren gov show` reads the network in force from any node.
    let shown = ok(&["gov", "show", "--node", &nodes[3].url])?;
    assert!(
        shown.contains("js.maritime 江苏海事局 (region 320000), grants ship"),
        "{shown}"
    );
    let lic = issue(
        &http,
        &js,
        json!({"licence_type": "ship", "holder": {"name": "王五", "id_number": "320102199001011234"}, "valid_days": 365}),
    )?;
    let qr = lic["qr"].as_str().context("qr")?;
    until_verdict(&http, &nodes[0], qr, "valid", None)?;
    until_verdict(&http, &nodes[3], qr, "invalid", Some("not_recognised"))?;
    // No node of the network restarted for any of it.
    let still: Vec<u32> = nodes.iter().map(NodeProcess::pid).collect();
    assert_eq!(pids, still);
    for n in &nodes {
        assert!(Path::new(&format!("/proc/{}", n.pid())).exists());
    }
    js.stop()?;
    for n in nodes {
        n.stop()?;
    }
    Ok(())
}

/// gd.transport rotates its key: licences issued before stay valid everywhere, new ones
/// are signed with the new key, and a credential signed with the old key for a licence
/// issued after the rotation is invalid (`key_not_in_force`). Offline, with the export,
/// both keys' licences verify.
#[test]
fn rotating_an_issuer_key_keeps_licences_valid() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    // The new key, made beforehand and configured as the next one.
    let (gd, market, sh, next_dir) = with_next_key(&net, "next-keys")?;
    let next_key = huren_genesis::keys::issuer_key_path(&next_dir, "gd.transport");
    let http = client();
    let before = issue(&http, &gd, driving_body(1))?;
    let old_qr = before["qr"].as_str().context("qr")?.to_owned();
    until_verdict(&http, &sh, &old_qr, "valid", None)?;

    let gov = Gov::new(&net);
    let public = huren_genesis::keys::public_path(&next_dir, "gd.transport");
    gov.record(
        &market,
        &[
            "rotate-issuer-key",
            "--department",
            "gd.transport",
            "--public",
            text(&public),
        ],
        &OTHERS,
    )?;
    until_gov(&http, &[&gd, &market, &sh], 1)?;
    let after = issue(&http, &gd, driving_body(2))?;
    let new_qr = after["qr"].as_str().context("qr")?.to_owned();
    let (old_key, new_key) = (
        huren_genesis::keys::read_issuer_key(&net.issuer_key("gd.transport"))?.1,
        huren_genesis::keys::read_issuer_key(&next_key)?.1,
    );
    let kid = |qr: &str| UnverifiedCredential::from_qr(qr).map(|u| u.kid);
    assert_eq!(kid(&new_qr).ok(), Some(new_key.public().key_id()));
    assert_eq!(kid(&old_qr).ok(), Some(old_key.public().key_id()));
    for n in [&gd, &market, &sh] {
        until_verdict(&http, n, &old_qr, "valid", None)?;
        until_verdict(&http, n, &new_qr, "valid", None)?;
    }
    // The licence issued after the rotation, signed again with the old key.
    let mut c = UnverifiedCredential::from_qr(&new_qr)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .credential;
    c.salt = [9; huren_core::credential::SALT_BYTES];
    let forged = c.sign(&old_key).map_err(|e| anyhow::anyhow!("{e}"))?;
    until_verdict(
        &http,
        &sh,
        &forged.qr_text,
        "invalid",
        Some("key_not_in_force"),
    )?;

    // Offline, with genesis and the export: both keys' licences are valid.
    let exported = export(&net, &sh, "governance.json")?;
    assert_eq!(
        verify_offline(&net, &exported, &old_qr)?["verdict"],
        "valid"
    );
    assert_eq!(
        verify_offline(&net, &exported, &new_qr)?["verdict"],
        "valid"
    );
    for n in [gd, market, sh] {
        n.stop()?;
    }
    Ok(())
}

/// A thief holds gd.transport's key and appends its own blocks. The departments declare
/// the key compromised after the last good height: every node takes the thief's blocks
/// off and refuses the next, licences at or below the height stay valid, the thief's
/// credentials are invalid `key_compromised` online and offline, and gd.transport goes
/// on with its replacement key. The time until every node refuses is measured.
#[test]
fn a_stolen_key_is_declared_compromised() -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let _guard = rt.enter();
    let net = TestNetwork::new()?;
    // The replacement, made by the department and configured as its next key.
    let (gd, market, sh, replacement_dir) = with_next_key(&net, "replacement-keys")?;
    let http = client();
    let good = issue(&http, &gd, driving_body(1))?;
    let good_qr = good["qr"].as_str().context("qr")?.to_owned();
    until_verdict(&http, &sh, &good_qr, "valid", None)?;
    let gd_head = |n: &NodeProcess| -> Option<(u64, String)> {
        heads(&http, n)
            .ok()?
            .into_iter()
            .find(|(d, _, _)| d == "gd.transport")
            .map(|(_, h, hash)| (h, hash))
    };
    let all = [&gd, &market, &sh];
    for n in all {
        eventually(30, "gd's block 1 everywhere", || {
            (gd_head(n)?.0 == 1).then_some(())
        })?;
    }

    // The thief: a member's node key (the observer's) and gd.transport's issuer key.
    let stolen = huren_genesis::keys::read_issuer_key(&net.issuer_key("gd.transport"))?.1;
    let (_, observer_key) = huren_genesis::keys::read_node_key(
        &huren_genesis::keys::node_key_path(&net.keys, "sh.observer"),
    )?;
    let mut thief = swarm_for(&net, observer_key)?;
    let (market_peer, market_addr) = node_peer(market.p2p.as_deref().context("p2p")?)?;
    thief.dial(market_addr)?;
    let subscribed = rt.block_on(drive_until(&mut thief, 15, |ev| {
        matches!(ev, SwarmEvent::Behaviour(huren_node::net::BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. })) if *peer_id == market_peer)
    }));
    anyhow::ensure!(subscribed, "the thief's peer never joined the topic");
    let network = huren_genesis::load(&net.genesis)?;
    let gd_id = DepartmentId::parse("gd.transport")?;
    // A licence the thief mints: its credential, and its issue record in block 2.
    let mut evil = UnverifiedCredential::from_qr(&good_qr)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .credential;
    evil.licence_id =
        huren_core::LicenceId::new(gd_id.clone(), evil.licence_id.licence_type().clone(), 900);
    let evil = evil.sign(&stolen).map_err(|e| anyhow::anyhow!("{e}"))?;
    let thief_block = |height: u64, prev: Hash32, serial: u64, commitment| {
        let c = UnverifiedCredential::from_qr(&evil.qr_text)
            .expect("decodes")
            .credential;
        BlockHeader {
            version: network.protocol_version(),
            genesis: network.hash(),
            department: gd_id.clone(),
            height,
            prev,
            time_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis() as u64,
            gov: 0,
            records: vec![Record::Issue(Issue {
                licence_id: huren_core::LicenceId::new(
                    gd_id.clone(),
                    c.licence_id.licence_type().clone(),
                    serial,
                ),
                valid_from: c.not_before,
                valid_until: c.expires_at,
                commitment,
                officer: OfficerId::parse("thief").expect("officer"),
                origin: None,
            })],
        }
        .sign(&stolen)
    };
    let (_, prev) = gd_head(&market).context("gd head")?;
    let b2 = thief_block(
        2,
        Hash32::from_hex(&prev).map_err(|e| anyhow::anyhow!("{e}"))?,
        900,
        evil.commitment,
    );
    let topic = IdentTopic::new(huren_node::net::TOPIC);
    thief
        .behaviour_mut()
        .gossipsub()
        .publish(topic.clone(), huren_node::net::block_message(&b2))?;
    rt.block_on(drive_until(&mut thief, 2, |_| false));
    for n in all {
        eventually(30, "the thief's block everywhere", || {
            (gd_head(n)?.0 == 2).then_some(())
        })?;
    }
    until_verdict(&http, &sh, &evil.qr_text, "valid", None)?;

    // The other departments declare the key compromised after block 1.
    let gov = Gov::new(&net);
    let public = huren_genesis::keys::public_path(&replacement_dir, "gd.transport");
    let p = gov.propose(
        &market,
        &[
            "key-compromised",
            "--department",
            "gd.transport",
            "--last-good",
            "1",
            "--replacement",
            text(&public),
        ],
    )?;
    gov.sign(&p, &OTHERS)?;
    let submitted = Instant::now();
    let (code, answer) = gov.submit(&p, &market)?;
    anyhow::ensure!(code == 0, "{answer}");
    for n in all {
        eventually(30, "the thief's block off every chain", || {
            (gd_head(n)?.0 == 1).then_some(())
        })?;
    }
    let refused_after = submitted.elapsed();
    eprintln!(
        "governance test: every node refused the thief's blocks {} ms after the compromise record was submitted",
        refused_after.as_millis()
    );
    // The thief's next block is refused by every node, and its credential is invalid.
    let (_, prev) = gd_head(&market).context("gd head")?;
    let b2_again = thief_block(
        2,
        Hash32::from_hex(&prev).map_err(|e| anyhow::anyhow!("{e}"))?,
        901,
        evil.commitment,
    );
    thief
        .behaviour_mut()
        .gossipsub()
        .publish(topic, huren_node::net::block_message(&b2_again))?;
    rt.block_on(drive_until(&mut thief, 3, |_| false));
    for n in all {
        assert_eq!(gd_head(n).map(|h| h.0), Some(1), "{}", n.url);
        until_verdict(&http, n, &evil.qr_text, "invalid", Some("key_compromised"))?;
        until_verdict(&http, n, &good_qr, "valid", None)?;
    }
    let metrics = http.get(format!("{}/metrics", market.url)).send()?.text()?;
    assert!(
        metrics.contains("huren_net_blocks_rejected_total{reason=\"key_compromised\"}"),
        "{metrics}"
    );
    // gd.transport goes on, with the replacement key from block 2.
    let next = issue(&http, &gd, driving_body(3))?;
    let next_qr = next["qr"].as_str().context("qr")?.to_owned();
    assert_eq!(next["block"]["height"], 2);
    until_verdict(&http, &sh, &next_qr, "valid", None)?;
    // Offline, with the export: the licence before the compromise (vouched for), the
    // replacement's, and the thief's.
    let exported = export(&net, &market, "governance.json")?;
    assert_eq!(
        verify_offline(&net, &exported, &good_qr)?["verdict"],
        "valid"
    );
    assert_eq!(
        verify_offline(&net, &exported, &next_qr)?["verdict"],
        "valid"
    );
    let v = verify_offline(&net, &exported, &evil.qr_text)?;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("invalid"), Some("key_compromised"))
    );
    // Without the export, genesis alone cannot know: the offline check says valid.
    let (_, plain, _) = huren(&[
        "verify",
        &evil.qr_text,
        "--offline",
        "--genesis",
        text(&net.genesis),
    ])?;
    assert!(plain.contains("\"valid\""), "{plain}");
    for n in [gd, market, sh] {
        n.stop()?;
    }
    Ok(())
}

/// Quorum − 1 signatures, a record not on the head, a retired department's signature,
/// and two conflicting records with a quorum each: each refused with its reason, and the
/// conflict kept as evidence.
#[test]
fn records_that_break_the_rules_are_refused_with_a_reason() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let node = NodeProcess::start(&net.node_config("gd.transport", None, "")?)?;
    // A second node, on its own: its governance chain goes another way.
    let other = NodeProcess::start(&net.node_config("gd.market", None, "")?)?;
    let http = client();
    let gov = Gov::new(&net);
    let region = |code: &str| -> Vec<String> {
        vec![
            "add-region".into(),
            "--code".into(),
            code.into(),
            "--name".into(),
            format!("region {code}"),
        ]
    };
    let args = |v: &[String]| v.iter().map(String::clone).collect::<Vec<_>>();
    let propose = |at: &NodeProcess, code: &str| {
        let v = args(&region(code));
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        gov.propose(at, &v)
    };
    let refused = |p: &Path, reason: &str| -> anyhow::Result<()> {
        let (code, err) = gov.submit(p, &node)?;
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(&format!("gov_refused ({reason})")), "{err}");
        Ok(())
    };
    // Quorum − 1; then with the quorum it applies.
    let p = propose(&node, "320000")?;
    gov.sign(&p, &["gd.market", "gd.health"])?;
    refused(&p, "no_quorum")?;
    gov.sign(&p, &["sh.transport"])?;
    let (code, answer) = gov.submit(&p, &node)?;
    assert_eq!(code, 0, "{answer}");
    // Not on the head: built on a governance block the node does not hold.
    let there = propose(&other, "330000")?;
    gov.sign(&there, &OTHERS)?;
    assert_eq!(gov.submit(&there, &other)?.0, 0);
    let next_there = propose(&other, "370000")?;
    gov.sign(&next_there, &OTHERS)?;
    refused(&next_there, "not_on_head")?;
    // sh.market retires; its signature then counts for nothing.
    gov.record(
        &node,
        &[
            "retire-department",
            "--department",
            "sh.market",
            "--last-height",
            "0",
        ],
        &OTHERS,
    )?;
    let p = propose(&node, "340000")?;
    gov.sign(&p, &["sh.market", "gd.market", "gd.health"])?;
    refused(&p, "retired")?;
    // Two different records at one height, each with a quorum: gd.market and gd.health
    // signed both.
    let a = propose(&node, "350000")?;
    let b = propose(&node, "360000")?;
    gov.sign(&a, &["gd.market", "gd.health", "sh.transport"])?;
    gov.sign(&b, &["gd.transport", "gd.market", "gd.health"])?;
    assert_eq!(gov.submit(&a, &node)?.0, 0);
    let (code, err) = gov.submit(&b, &node)?;
    assert_eq!(code, 1);
    assert!(err.contains("gov_equivocation"), "{err}");
    let export: Value = get_json(&http, &format!("{}/v1/governance", node.url))?;
    let mut signers: Vec<&str> = export["equivocations"]
        .as_array()
        .context("equivocations")?
        .iter()
        .filter_map(|e| e["signer"].as_str())
        .collect();
    signers.sort_unstable();
    assert_eq!(signers, ["gd.health", "gd.market"]);
    assert_eq!(export["height"], 3, "the first record stays");
    node.stop()?;
    other.stop()?;
    Ok(())
}

/// 机构改革: gd.transport retires into gd.market. gd.market revokes one of gd.transport's
/// licences, every node sees it, gd.transport's node is disconnected from the others and
/// its own issuing is refused.
#[test]
fn a_retired_department_hands_its_licences_to_its_successor() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let nodes = start_mesh(&net, &["gd.transport", "gd.market", "sh.transport"])?;
    let (gd, market, sh) = (&nodes[0], &nodes[1], &nodes[2]);
    let http = client();
    let lic = issue(&http, gd, driving_body(1))?;
    let (id, qr) = (
        lic["licence_id"].as_str().context("id")?.to_owned(),
        lic["qr"].as_str().context("qr")?.to_owned(),
    );
    until_verdict(&http, sh, &qr, "valid", None)?;
    until_verdict(&http, market, &qr, "valid", None)?;
    let gov = Gov::new(&net);
    gov.record(
        market,
        &[
            "retire-department",
            "--department",
            "gd.transport",
            "--last-height",
            "1",
            "--successor",
            "gd.market",
        ],
        &OTHERS,
    )?;
    until_gov(&http, &[gd, market, sh], 1)?;
    let r = http
        .post(format!("{}/v1/licences/{id}/revoke", market.url))
        .bearer_auth(TOKEN)
        .json(&json!({"reason": "cancelled"}))
        .send()?;
    anyhow::ensure!(
        r.status().is_success(),
        "the successor's revocation: {}",
        r.text()?
    );
    until_verdict(&http, sh, &qr, "invalid", Some("revoked"))?;
    // The retired department's node is no longer a peer of the others.
    let gd_peer = node_peer(gd.p2p.as_deref().context("p2p")?)?.0.to_string();
    for n in [market, sh] {
        eventually(30, "gd.transport's node disconnected", || {
            let peers = get_json(&http, &format!("{}/v1/peers", n.url)).ok()?;
            (!peers
                .as_array()?
                .iter()
                .any(|p| p["peer_id"] == gd_peer.as_str()))
            .then_some(())
        })?;
    }
    let r = http
        .post(format!("{}/v1/licences", gd.url))
        .bearer_auth(TOKEN)
        .json(&driving_body(2))
        .send()?;
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json()?;
    assert_eq!(body["error"]["code"], "department_retired");
    // The licence stays the successor's to manage; verification still names it.
    let v = verify(&http, sh, &qr)?;
    assert_eq!(v["reason"], "revoked");
    for n in nodes {
        n.stop()?;
    }
    Ok(())
}
