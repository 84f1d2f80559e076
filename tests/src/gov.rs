//! Governance as departments do it, for tests and the demo: `huren gov propose` against a
//! node, `huren gov sign` by each department with its issuer key file, `huren gov submit`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use reqwest::blocking::Client;
use serde_json::Value;

use crate::{binary, eventually, get_json, NodeProcess, TestNetwork, TOKEN};

/// Runs `huren` with `args`; its exit status, stdout and stderr.
pub fn huren(args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let out = Command::new(binary("huren"))
        .args(args)
        .output()
        .context("running huren")?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

pub fn ok(args: &[&str]) -> anyhow::Result<String> {
    let (code, out, err) = huren(args)?;
    anyhow::ensure!(code == 0, "huren {args:?} exited {code}: {err}");
    Ok(out)
}

pub fn text(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Governance records for one founded network, written under its directory.
pub struct Gov<'a> {
    net: &'a TestNetwork,
    n: std::cell::Cell<u32>,
}

impl<'a> Gov<'a> {
    pub fn new(net: &'a TestNetwork) -> Self {
        Self {
            net,
            n: std::cell::Cell::new(0),
        }
    }

    /// `huren gov propose <record…>` against `node`: the proposal file.
    pub fn propose(&self, node: &NodeProcess, record: &[&str]) -> anyhow::Result<PathBuf> {
        self.n.set(self.n.get() + 1);
        let path = self.net.path(&format!("proposal-{}.json", self.n.get()));
        let mut args = vec!["gov", "propose"];
        args.extend_from_slice(record);
        args.extend_from_slice(&["--node", &node.url, "--out", text(&path)]);
        ok(&args)?;
        Ok(path)
    }

    /// `huren gov sign` by each of `signers`, with its issuer key file.
    pub fn sign(&self, proposal: &Path, signers: &[&str]) -> anyhow::Result<()> {
        for s in signers {
            let key = self.net.issuer_key(s);
            ok(&["gov", "sign", text(proposal), "--key", text(&key), "--yes"])?;
        }
        Ok(())
    }

    /// `huren gov submit` to `node`: its exit status, and the answer or the error.
    pub fn submit(&self, proposal: &Path, node: &NodeProcess) -> anyhow::Result<(i32, String)> {
        let (code, out, err) = huren(&[
            "gov",
            "submit",
            text(proposal),
            "--node",
            &node.url,
            "--token",
            TOKEN,
        ])?;
        Ok((code, if code == 0 { out } else { err }))
    }

    /// Proposes, signs and submits a record; the governance height it reached.
    pub fn record(
        &self,
        at: &NodeProcess,
        record: &[&str],
        signers: &[&str],
    ) -> anyhow::Result<u64> {
        let p = self.propose(at, record)?;
        self.sign(&p, signers)?;
        let (code, answer) = self.submit(&p, at)?;
        anyhow::ensure!(code == 0, "submitting {record:?}: {answer}");
        let v: Value = serde_json::from_str(&answer)?;
        v["height"].as_u64().context("the answer's height")
    }
}

pub fn gov_height(http: &Client, node: &NodeProcess) -> Option<u64> {
    get_json(http, &format!("{}/v1/network", node.url)).ok()?["gov_height"].as_u64()
}

/// Waits until every node holds governance height `h`.
pub fn until_gov(http: &Client, nodes: &[&NodeProcess], h: u64) -> anyhow::Result<()> {
    for n in nodes {
        eventually(30, &format!("governance height {h} at {}", n.url), || {
            (gov_height(http, n)? >= h).then_some(())
        })?;
    }
    Ok(())
}

/// A config for `name` with extra top-level settings (`governance = …`,
/// `issuer_key_next = …`), written beside the kit's.
pub fn config_with(
    net: &TestNetwork,
    name: &str,
    boot: &[String],
    extra: &str,
) -> anyhow::Result<PathBuf> {
    let path = net.node_config(name, Some(boot), "")?;
    let cfg = std::fs::read_to_string(&path)?;
    std::fs::write(&path, cfg.replacen('\n', &format!("\n{extra}\n"), 1))?;
    Ok(path)
}

/// `huren gov export` from `node` to `<network dir>/<name>`.
pub fn export(net: &TestNetwork, node: &NodeProcess, name: &str) -> anyhow::Result<PathBuf> {
    let path = net.path(name);
    ok(&[
        "gov",
        "export",
        "--node",
        &node.url,
        "--out",
        text(&path),
        "--force",
    ])?;
    Ok(path)
}

/// The records that bring a new department into the running example network, as the
/// runbook in docs/governance.md says: the quorum raised to 4 (six departments), region
/// 320000 江苏省, licence type `ship` with a rule that `recognising` accepts it from
/// there, and js.maritime (江苏海事局, keys generated now into the network's key
/// directory), granted `ship`. Submitted at `at`; then the new department's node is
/// started from genesis plus an export, bootstrapping to `peers`, and returned with the
/// governance height reached.
pub fn add_jiangsu_maritime(
    net: &TestNetwork,
    at: &NodeProcess,
    peers: &[&NodeProcess],
    recognising: &str,
) -> anyhow::Result<(NodeProcess, u64)> {
    let http = crate::client();
    let gov = Gov::new(net);
    let three = ["gd.transport", "gd.health", "sh.transport"];
    let four = ["gd.transport", "gd.health", "sh.transport", "sh.market"];
    gov.record(at, &["change-quorum", "--quorum", "4"], &three)?;
    gov.record(
        at,
        &["add-region", "--code", "320000", "--name", "江苏省"],
        &four,
    )?;
    let ship = net.path("ship.json");
    std::fs::write(
        &ship,
        serde_json::json!({
            "code": "ship", "name": "船员适任证书", "name_en": "Seafarer certificate",
            "holder_fields": ["name", "id_number"], "validity_days_max": 1830,
            "labels": {"name": {"zh": "姓名", "en": "Name"}, "id_number": {"zh": "身份证号", "en": "ID No."}}
        })
        .to_string(),
    )?;
    gov.record(at, &["add-licence-type", "--file", text(&ship)], &four)?;
    let mut rules: Vec<Value> = get_json(&http, &format!("{}/v1/network", at.url))?["document"]
        ["recognition"]
        .as_array()
        .context("the recognition rules")?
        .clone();
    rules.push(
        serde_json::json!({"region": recognising, "licence_type": "ship", "from": ["320000"]}),
    );
    let rules_file = net.path("rules.json");
    std::fs::write(&rules_file, Value::Array(rules).to_string())?;
    gov.record(at, &["set-recognition", "--file", text(&rules_file)], &four)?;
    // The new department makes its keys now, after founding.
    ok(&[
        "genesis",
        "keygen",
        "--department",
        "js.maritime",
        "--out",
        text(&net.keys),
    ])?;
    let public = huren_genesis::keys::public_path(&net.keys, "js.maritime");
    let height = gov.record(
        at,
        &[
            "add-department",
            "--public",
            text(&public),
            "--name",
            "江苏海事局",
            "--region",
            "320000",
            "--grant",
            "ship",
        ],
        &four,
    )?;
    until_gov(&http, peers, height)?;
    // Its node starts from genesis plus the export, and joins.
    let exported = export(net, at, "governance.json")?;
    let boot: Vec<String> = peers.iter().filter_map(|n| n.p2p.clone()).collect();
    let cfg = config_with(
        net,
        "js.maritime",
        &boot,
        &format!("governance = \"{}\"", text(&exported)),
    )?;
    Ok((NodeProcess::start(&cfg)?, height))
}
