//! huren-demo: the whole mission on one machine.
//!
//! Founds a network from genesis/example.toml with fresh keys, starts one real
//! `huren-node` per department (and the observer) on 127.0.0.1, each with its own sled
//! directory, joined over libp2p; then issues a driving licence in Guangdong, verifies it
//! in Shanghai, suspends, reinstates and revokes it, verifying after each step; renews a
//! second licence and transfers it from Guangdong to Shanghai (转出 / 转入); the
//! departments then change the network on the ledger (a new region, licence type and
//! department, which joins and issues), and it shows every department's chain head. It keeps the network running until Ctrl-C, then stops
//! every node it started. `scripts/demo.sh` builds and runs it.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use huren_tests::{
    client, eventually, get_json, heads, until_verdict, NodeProcess, TestNetwork, TOKEN,
};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Run a local Huren network and walk through a licence's life")]
struct Args {
    /// Exit after the walk-through instead of serving until Ctrl-C (for tests and CI).
    #[arg(long)]
    no_wait: bool,
    /// Where to write the licence QR as PNG.
    #[arg(long, default_value = "huren-demo-licence.png")]
    png: std::path::PathBuf,
}

const NODES: [(&str, &str); 6] = [
    ("gd.transport", "广东省公安厅交通管理局 Guangdong transport"),
    (
        "gd.market",
        "广东省市场监督管理局 Guangdong market regulation",
    ),
    ("gd.health", "广东省卫生健康委员会 Guangdong health"),
    (
        "sh.transport",
        "上海市公安局交通警察总队 Shanghai transport",
    ),
    (
        "sh.market",
        "上海市市场监督管理局 Shanghai market regulation",
    ),
    ("sh.observer", "上海 observer node (verification only)"),
];

fn step(n: u32, text: &str) {
    println!("\n\x1b[1m{n}. {text}\x1b[0m");
}

fn show(v: &Value) {
    let verdict = v["verdict"].as_str().unwrap_or("?");
    let colour = match verdict {
        "valid" => "32",
        "invalid" => "31",
        _ => "33",
    };
    let reason = v["reason"]
        .as_str()
        .map(|r| format!(" · {r}"))
        .unwrap_or_default();
    println!(
        "   → \x1b[1;{colour}m{verdict}{reason}\x1b[0m  {}  ({}; verified at region {})",
        v["message_zh"].as_str().unwrap_or_default(),
        v["message"].as_str().unwrap_or_default(),
        v["verifier_region"].as_str().unwrap_or("?"),
    );
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = client();
    step(
        1,
        "Founding the network: fresh keys for every department, genesis from genesis/example.toml",
    );
    let net = TestNetwork::new()?;
    let genesis = huren_genesis::load(&net.genesis)?;
    println!(
        "   network {} · genesis {}",
        genesis.document().network,
        genesis.hash().short()
    );
    println!("   files in {}", net.dir.path().display());

    step(2, "Starting one huren-node per department, each with its own sled directory, joined over libp2p");
    let mut nodes: Vec<NodeProcess> = Vec::new();
    for (name, label) in NODES {
        let boot: Vec<String> = nodes.iter().filter_map(|n| n.p2p.clone()).collect();
        let node = NodeProcess::start(&net.node_config(name, Some(&boot), "")?)
            .with_context(|| format!("starting {name}"))?;
        println!(
            "   {name:<13} {label}\n                 window page {}/",
            node.url
        );
        nodes.push(node);
    }
    let (gd, sh) = (&nodes[0], &nodes[3]);
    eventually(30, "every node to see its peers", || {
        nodes
            .iter()
            .all(|n| {
                get_json(&http, &format!("{}/v1/peers", n.url))
                    .ok()
                    .and_then(|v| v.as_array().map(|a| a.len() >= 2))
                    .unwrap_or(false)
            })
            .then_some(())
    })?;

    step(
        3,
        "Guangdong transport issues a motor-vehicle driving licence (机动车驾驶证)",
    );
    let body = json!({
        "licence_type": "mvdl",
        "holder": {"name": "张三", "id_number": "44010619900101123X", "class": "C1"},
        "valid_days": 2190
    });
    let r = http
        .post(format!("{}/v1/licences", gd.url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()?;
    anyhow::ensure!(r.status().as_u16() == 201, "issue failed: {}", r.text()?);
    let lic: Value = r.json()?;
    let id = lic["licence_id"].as_str().context("licence id")?.to_owned();
    let qr = lic["qr"].as_str().context("qr")?.to_owned();
    println!(
        "   licence {id}, block {}#{}",
        lic["block"]["department"].as_str().unwrap_or(""),
        lic["block"]["height"]
    );
    println!("   QR text ({} characters): {qr}", qr.len());
    println!("{}", huren_render::qr::terminal(&qr)?);
    std::fs::write(&args.png, huren_render::qr::png(&qr, 8)?)
        .with_context(|| format!("writing {}", args.png.display()))?;
    println!("   QR written to {}", args.png.display());

    step(4, "A service window in Shanghai scans it (跨省互认)");
    let v = until_verdict(&http, sh, &qr, "valid", None)?;
    show(&v);
    println!(
        "   issuer {} · {} {} · holder {} {}",
        v["licence"]["issuer_name"].as_str().unwrap_or(""),
        v["licence"]["type_name"].as_str().unwrap_or(""),
        v["licence"]["type_name_en"].as_str().unwrap_or(""),
        v["licence"]["holder"]["name"].as_str().unwrap_or(""),
        v["licence"]["holder"]["id_number"].as_str().unwrap_or(""),
    );

    let act = |action: &str, body: Value| -> anyhow::Result<()> {
        let r = http
            .post(format!("{}/v1/licences/{id}/{action}", gd.url))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()?;
        anyhow::ensure!(r.status().is_success(), "{action} failed: {}", r.text()?);
        Ok(())
    };
    step(5, "Guangdong suspends it (暂扣); Shanghai checks again");
    act("suspend", json!({"reason": "penalty"}))?;
    show(&until_verdict(
        &http,
        sh,
        &qr,
        "invalid",
        Some("suspended"),
    )?);

    step(6, "Guangdong reinstates it (发还); Shanghai checks again");
    act("reinstate", json!({}))?;
    show(&until_verdict(&http, sh, &qr, "valid", None)?);

    step(
        7,
        "Guangdong revokes it as a penalty (吊销); every node, in both regions, answers revoked",
    );
    act("revoke", json!({"reason": "penalty"}))?;
    for (n, (name, _)) in nodes.iter().zip(NODES) {
        let v = until_verdict(&http, n, &qr, "invalid", Some("revoked"))?;
        print!("   {name:<13}");
        show(&v);
    }

    step(
        8,
        "A window in Shanghai goes offline with a bundle: the revocation is known without a node",
    );
    let revoked_at = huren_tests::heads(&http, gd)?
        .into_iter()
        .find(|(d, _, _)| d == "gd.transport")
        .map_or(0, |(_, h, _)| h);
    eventually(60, "a witnessed checkpoint with the revocation", || {
        let v = get_json(&http, &format!("{}/v1/checkpoints", sh.url)).ok()?;
        let d = v["departments"]
            .as_array()?
            .iter()
            .find(|d| d["department"] == "gd.transport")?
            .clone();
        (d["counted"]["height"].as_u64()? >= revoked_at).then_some(())
    })?;
    let bundle = net.path("window.bundle");
    let (genesis, bundle_path) = (
        net.genesis.display().to_string(),
        bundle.display().to_string(),
    );
    let (code, _, err) = huren_tests::gov::huren(&[
        "bundle",
        "--node",
        &sh.url,
        "--out",
        &bundle_path,
        "--genesis",
        &genesis,
    ])?;
    anyhow::ensure!(code == 0, "huren bundle failed: {err}");
    println!(
        "   huren bundle --node {} --out window.bundle   ({} bytes: every department's witnessed checkpoint and its revoked and suspended licences)",
        sh.url,
        std::fs::metadata(&bundle)?.len()
    );
    let (code, out, err) = huren_tests::gov::huren(&[
        "verify",
        "--offline",
        "--genesis",
        &genesis,
        "--bundle",
        &bundle_path,
        "--region",
        "310000",
        &qr,
    ])?;
    let offline: Value = serde_json::from_str(&out)
        .with_context(|| format!("huren verify --offline exited {code}: {err}"))?;
    print!("   huren verify --offline --bundle (exit {code})");
    show(&offline);
    println!(
        "   data as of {} (gd.transport #{}, {} witness cosignatures)",
        offline["as_of"]["time"].as_str().unwrap_or("?"),
        offline["as_of"]["height"],
        offline["as_of"]["cosigners"]
    );

    step(
        9,
        "Another holder renews before expiry (延续): a new card; a Shanghai window finds the old one superseded",
    );
    let second = huren_tests::issue(
        &http,
        gd,
        json!({
            "licence_type": "mvdl",
            "holder": {"name": "李四", "id_number": "44010619920202456X", "class": "C1"},
            "valid_days": 2190
        }),
    )?;
    let second_id = second["licence_id"].as_str().context("id")?.to_owned();
    let second_qr = second["qr"].as_str().context("qr")?.to_owned();
    let r = http
        .post(format!("{}/v1/licences/{second_id}/renew", gd.url))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()?;
    anyhow::ensure!(r.status().is_success(), "renew failed: {}", r.text()?);
    let renewed: Value = r.json()?;
    let renewed_qr = renewed["qr"].as_str().context("qr")?.to_owned();
    println!(
        "   licence {second_id} renewed: valid {} to {}",
        renewed["valid_from"].as_str().unwrap_or(""),
        renewed["valid_until"].as_str().unwrap_or("")
    );
    print!("   the old card in Shanghai:  ");
    show(&until_verdict(
        &http,
        sh,
        &second_qr,
        "invalid",
        Some("superseded"),
    )?);
    print!("   the new card in Shanghai:  ");
    show(&until_verdict(&http, sh, &renewed_qr, "valid", None)?);

    step(
        10,
        "The holder moves to Shanghai: Guangdong transfers the licence out (转出), Shanghai takes it in (转入)",
    );
    let r = http
        .post(format!("{}/v1/licences/{second_id}/transfer", gd.url))
        .bearer_auth(TOKEN)
        .json(&json!({"to": "sh.transport"}))
        .send()?;
    anyhow::ensure!(r.status().is_success(), "transfer failed: {}", r.text()?);
    let moved = huren_tests::accept_transfer(&http, sh, &renewed_qr)?;
    let new_id = moved["licence_id"].as_str().context("new id")?.to_owned();
    let new_qr = moved["qr"].as_str().context("new qr")?.to_owned();
    println!("   {second_id} (Guangdong) is now {new_id} (Shanghai)");
    for (n, (name, _)) in nodes.iter().zip(NODES) {
        let old = eventually(30, "the old card to name the new licence", || {
            let v = huren_tests::verify(&http, n, &renewed_qr).ok()?;
            (v["lineage"]["transfer"]["accepted_as"] == new_id.as_str()).then_some(v)
        })?;
        let new = until_verdict(&http, n, &new_qr, "valid", None)?;
        print!("   {name:<13} old card ");
        show(&old);
        print!("   {name:<13} new card ");
        show(&new);
    }
    let history = get_json(
        &http,
        &format!("{}/v1/licences/{second_id}/history", sh.url),
    )?;
    let kinds: Vec<&str> = history["history"]
        .as_array()
        .map(|h| h.iter().filter_map(|e| e["kind"].as_str()).collect())
        .unwrap_or_default();
    println!("   history of {second_id}: {}", kinds.join(" → "));

    step(11, "Recognition policy: a physician certificate is recognised in Shanghai; a food business licence is not");
    let issue_at = |node: &NodeProcess, body: Value| -> anyhow::Result<String> {
        let r = http
            .post(format!("{}/v1/licences", node.url))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()?;
        anyhow::ensure!(r.status().as_u16() == 201, "issue failed: {}", r.text()?);
        let v: Value = r.json()?;
        Ok(v["qr"].as_str().context("qr")?.to_owned())
    };
    let physician = issue_at(
        &nodes[2],
        json!({"licence_type": "physician", "holder": {"name": "李医生", "id_number": "440106198505051234", "category": "临床"}}),
    )?;
    print!("   医师执业证书 at Shanghai   ");
    show(&until_verdict(&http, sh, &physician, "valid", None)?);
    let food = issue_at(
        &nodes[1],
        json!({"licence_type": "food", "holder": {"entity": "广州市某餐饮有限公司", "credit_code": "91440101MA5XXXXXX1"}}),
    )?;
    print!("   食品经营许可证 at Shanghai  ");
    show(&until_verdict(
        &http,
        sh,
        &food,
        "invalid",
        Some("not_recognised"),
    )?);
    print!("   食品经营许可证 at Guangdong ");
    show(&until_verdict(&http, gd, &food, "valid", None)?);

    step(
        12,
        "Governance on the ledger: the departments add 江苏省 and its maritime bureau (js.maritime), no node restarted",
    );
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    let (js, height) = huren_tests::gov::add_jiangsu_maritime(&net, &nodes[1], &all, "310000")?;
    println!("   five records (quorum 4, region 江苏省, licence type 船员适任证书, a recognition rule, department js.maritime), each proposed, signed by a quorum of departments and submitted: governance height {height}");
    println!("   js.maritime    江苏海事局 Jiangsu maritime (joined with the governance export)\n                 window page {}/", js.url);
    let seafarer = huren_tests::issue(
        &http,
        &js,
        json!({"licence_type": "ship", "holder": {"name": "王船长", "id_number": "320102198001011234"}, "valid_days": 365}),
    )?;
    let seafarer = seafarer["qr"].as_str().context("qr")?.to_owned();
    print!("   船员适任证书 at Shanghai    ");
    show(&until_verdict(&http, sh, &seafarer, "valid", None)?);
    nodes.push(js);
    let observer = &nodes[5];

    step(13, "Each department's chain head, as the observer sees it");
    for (dept, height, hash) in heads(&http, observer)? {
        println!(
            "   {dept:<13} height {height:>3}  {}",
            if hash.is_empty() {
                "(no blocks yet)".to_owned()
            } else {
                hash[..16].to_owned()
            }
        );
    }

    println!("\nService window pages (scan or paste a QR there):");
    for n in &nodes {
        println!("   {}/", n.url);
    }
    if args.no_wait {
        println!("\ndemo complete; stopping the network");
    } else {
        println!("\nThe network keeps running. Press Ctrl-C to stop every node.");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
        println!("\nstopping…");
    }
    for n in nodes {
        n.stop()?;
    }
    std::thread::sleep(Duration::from_millis(10));
    println!("all nodes stopped");
    Ok(())
}
