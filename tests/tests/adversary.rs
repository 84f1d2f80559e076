//! A hostile or broken peer against real nodes: a stranger cannot connect; bad blocks are
//! rejected and change nothing; an equivocating department is caught by every node.
//!
//! The test drives its own libp2p swarm (the node's own behaviour, so it speaks the same
//! protocols) and holds issuer keys from the founded network, as a compromised
//! department would.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use huren_core::ledger::{BlockHeader, Issue, Record};
use huren_core::{Credential, DepartmentId, Hash32, LicenceId, LicenceType, OfficerId, RegionCode};
use huren_node::config::Limits;
use huren_node::net::{
    block_message, build_swarm, Behaviour, BehaviourEvent, CatchupRequest, CatchupResponse, TOPIC,
};
use huren_tests::{
    client, driving_body, eventually, get_json, heads, verify, NodeProcess, TestNetwork, TOKEN,
};
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};

fn start_pair(net: &TestNetwork) -> anyhow::Result<(NodeProcess, NodeProcess)> {
    let gd = NodeProcess::start(&net.node_config("gd.transport", Some(&[]), "")?)?;
    let boot = vec![gd.p2p.clone().unwrap_or_default()];
    let sh = NodeProcess::start(&net.node_config("sh.transport", Some(&boot), "")?)?;
    Ok((gd, sh))
}

fn swarm_for(
    net: &TestNetwork,
    keypair: libp2p::identity::Keypair,
) -> anyhow::Result<Swarm<Behaviour>> {
    let network = huren_genesis::load(&net.genesis)?;
    let mut swarm = build_swarm(keypair, &network, &Limits::default())?;
    swarm
        .behaviour_mut()
        .gossipsub()
        .subscribe(&IdentTopic::new(TOPIC))?;
    Ok(swarm)
}

/// Drives the swarm until `done` says so or `secs` pass.
async fn drive_until(
    swarm: &mut Swarm<Behaviour>,
    secs: u64,
    mut done: impl FnMut(&SwarmEvent<BehaviourEvent>) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, swarm.select_next_some()).await {
            Ok(ev) => {
                if done(&ev) {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
}

fn node_peer(addr: &str) -> anyhow::Result<(PeerId, Multiaddr)> {
    let addr: Multiaddr = addr.parse()?;
    let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() else {
        anyhow::bail!("no peer id in {addr}")
    };
    Ok((peer, addr))
}

fn issuer(net: &TestNetwork, dept: &str) -> anyhow::Result<huren_core::SecretKey> {
    Ok(
        huren_genesis::keys::read_issuer_key(&huren_genesis::keys::issuer_key_path(
            &net.keys, dept,
        ))?
        .1,
    )
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A correctly signed driving licence of gd.transport with `serial`, and its issue record.
fn credential(key: &huren_core::SecretKey, serial: u64) -> anyhow::Result<(String, Record)> {
    let dept = DepartmentId::parse("gd.transport")?;
    let id = LicenceId::new(dept.clone(), LicenceType::parse("mvdl")?, serial);
    let now = now_s();
    let holder: BTreeMap<String, String> = [
        ("name", "甲"),
        ("id_number", "440106199001011234"),
        ("class", "C1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let cred = Credential {
        issuer: dept,
        licence_id: id.clone(),
        region: RegionCode::parse("440000")?,
        issued_at: now,
        not_before: now,
        expires_at: now + 86_400 * 365,
        holder,
        fields: BTreeMap::new(),
        salt: [serial as u8; 16],
    };
    let signed = cred.sign(key)?;
    let record = Record::Issue(Issue {
        licence_id: id,
        valid_from: now,
        valid_until: now + 86_400 * 365,
        commitment: signed.commitment,
        officer: OfficerId::parse("rogue")?,
    });
    Ok((signed.qr_text, record))
}

fn metric(http: &reqwest::blocking::Client, node: &NodeProcess, line: &str) -> bool {
    http.get(format!("{}/metrics", node.url))
        .send()
        .and_then(|r| r.text())
        .is_ok_and(|t| t.lines().any(|l| l.starts_with(line)))
}

#[test]
fn stranger_bad_blocks_and_equivocation() -> anyhow::Result<()> {
    // The test's own swarm runs on this runtime; HTTP checks use the blocking client
    // outside it.
    let rt = tokio::runtime::Runtime::new()?;
    let _guard = rt.enter();
    let net = TestNetwork::new()?;
    let (gd, sh) = (|| start_pair(&net))()?;
    let http = client();
    let first = (|| -> anyhow::Result<serde_json::Value> {
        let r = http
            .post(format!("{}/v1/licences", gd.url))
            .bearer_auth(TOKEN)
            .json(&driving_body(1))
            .send()?;
        Ok(r.json()?)
    })()?;
    let first_qr = first["qr"].as_str().unwrap_or_default().to_owned();
    (|| {
        eventually(20, "sh to have gd#1", || {
            heads(&http, &sh)
                .ok()?
                .iter()
                .any(|(d, h, _)| d == "gd.transport" && *h == 1)
                .then_some(())
        })
    })()?;
    let (sh_peer, sh_addr) = node_peer(sh.p2p.as_deref().unwrap_or_default())?;

    // 1. A peer whose key genesis does not name is refused at connection.
    let stranger_key = libp2p::identity::Keypair::generate_ed25519();
    let stranger_id = stranger_key.public().to_peer_id();
    let mut stranger = swarm_for(&net, stranger_key)?;
    stranger.dial(sh_addr.clone())?;
    rt.block_on(drive_until(&mut stranger, 3, |_| false));
    let peers = (|| get_json(&http, &format!("{}/v1/peers", sh.url)))()?;
    assert!(
        !peers.to_string().contains(&stranger_id.to_string()),
        "stranger is connected: {peers}"
    );
    assert!(!stranger.is_connected(&sh_peer), "stranger still connected");
    (|| {
        eventually(10, "refused connection metric", || {
            metric(&http, &sh, "huren_net_connections_refused_total 1").then_some(())
        })
    })()?;

    // 2. A genesis peer (the observer's key) sending bad blocks.
    let (_, observer_key) = huren_genesis::keys::read_node_key(
        &huren_genesis::keys::node_key_path(&net.keys, "sh.observer"),
    )?;
    let mut rogue = swarm_for(&net, observer_key)?;
    rogue.dial(sh_addr.clone())?;
    let subscribed = rt.block_on(drive_until(&mut rogue, 15, |ev| matches!(ev, SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. })) if *peer_id == sh_peer)));
    assert!(subscribed, "the node never subscribed to the rogue peer");

    let network = huren_genesis::load(&net.genesis)?;
    let gd_key = issuer(&net, "gd.transport")?;
    let sh_key = issuer(&net, "sh.transport")?;
    let gd_id = DepartmentId::parse("gd.transport")?;
    let head = heads(&http, &sh)?
        .into_iter()
        .find(|(d, _, _)| d == "gd.transport")
        .expect("gd head");
    let head_hash = Hash32::from_hex(&head.2).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now_ms = (now_s() * 1000) as u64;
    let header = |records: Vec<Record>| BlockHeader {
        genesis: network.hash(),
        department: gd_id.clone(),
        height: 2,
        prev: head_hash,
        time_ms: now_ms,
        records,
    };
    let (_, r100) = credential(&gd_key, 100)?;
    // (a) gd's block signed with sh.transport's key.
    let forged = header(vec![r100.clone()]).sign(&sh_key);
    // (b) gd signing a food licence, which genesis does not grant it.
    let food = Record::Issue(Issue {
        licence_id: LicenceId::new(gd_id.clone(), LicenceType::parse("food")?, 1),
        valid_from: now_s(),
        valid_until: now_s() + 86_400,
        commitment: Hash32::digest(b"food"),
        officer: OfficerId::parse("rogue")?,
    });
    let not_granted = header(vec![food]).sign(&gd_key);
    // (c) a replay of gd's block 1, fetched by catch-up like any peer would.
    rogue.behaviour_mut().catchup().send_request(
        &sh_peer,
        CatchupRequest::Blocks {
            department: "gd.transport".into(),
            from: 1,
        },
    );
    let mut old = None;
    rt.block_on(drive_until(&mut rogue, 10, |ev| {
        if let SwarmEvent::Behaviour(BehaviourEvent::Catchup(request_response::Event::Message {
            message:
                request_response::Message::Response {
                    response: CatchupResponse::Blocks(b),
                    ..
                },
            ..
        })) = ev
        {
            old = b.first().map(|x| x.to_vec());
            return true;
        }
        false
    }));
    let old = old.expect("catch-up answered with block 1");
    for data in [block_message(&forged), block_message(&not_granted), {
        let mut m = vec![1u8];
        m.extend_from_slice(&old);
        m
    }] {
        rogue
            .behaviour_mut()
            .gossipsub()
            .publish(IdentTopic::new(TOPIC), data)?;
    }
    rt.block_on(drive_until(&mut rogue, 2, |_| false));
    (|| -> anyhow::Result<()> {
        eventually(10, "rejections counted", || {
            (metric(
                &http,
                &sh,
                "huren_net_blocks_rejected_total{reason=\"bad_signature\"} 1",
            ) && metric(
                &http,
                &sh,
                "huren_net_blocks_rejected_total{reason=\"type_not_granted\"} 1",
            ))
            .then_some(())
        })?;
        // Nothing changed: gd is still at height 1 everywhere, the first licence is valid.
        for n in [&gd, &sh] {
            let h = heads(&http, n)?
                .into_iter()
                .find(|(d, _, _)| d == "gd.transport")
                .expect("gd");
            assert_eq!(h.1, 1, "a bad block changed the chain at {}", n.url);
            assert_eq!(verify(&http, n, &first_qr)?["verdict"], "valid");
        }
        Ok(())
    })()?;

    // 3. Equivocation: two validly signed gd blocks at height 2.
    let (qr_a, ra) = credential(&gd_key, 200)?;
    let (_, rb) = credential(&gd_key, 201)?;
    let a = header(vec![ra]).sign(&gd_key);
    let b = header(vec![rb]).sign(&gd_key);
    rogue
        .behaviour_mut()
        .gossipsub()
        .publish(IdentTopic::new(TOPIC), block_message(&a))?;
    rt.block_on(drive_until(&mut rogue, 1, |_| false));
    rogue
        .behaviour_mut()
        .gossipsub()
        .publish(IdentTopic::new(TOPIC), block_message(&b))?;
    rt.block_on(drive_until(&mut rogue, 2, |_| false));
    let deadline = Instant::now() + Duration::from_secs(20);
    (|| -> anyhow::Result<()> {
        for n in [&gd, &sh] {
            eventually(
                deadline
                    .saturating_duration_since(Instant::now())
                    .as_secs()
                    .max(1),
                "evidence at every node",
                || {
                    let ev = get_json(&http, &format!("{}/v1/evidence", n.url)).ok()?;
                    let item = ev.as_array()?.first()?.clone();
                    (item["department"] == "gd.transport" && item["height"] == 2).then_some(())
                },
            )?;
            assert!(metric(&http, n, "huren_net_equivocations_total"), "metric");
            // A licence past the fork cannot be decided; one before it still is.
            let v = verify(&http, n, &qr_a)?;
            assert_eq!(
                (v["verdict"].as_str(), v["reason"].as_str()),
                (Some("undetermined"), Some("equivocation")),
                "{v}"
            );
            assert_eq!(verify(&http, n, &first_qr)?["verdict"], "valid");
        }
        Ok(())
    })()?;
    Ok(())
}
