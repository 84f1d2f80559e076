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
