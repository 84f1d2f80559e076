//! The one test kit: founds the example network (genesis/example.toml) for every test
//! suite, with fresh keys in a temporary directory, and writes node configs with the
//! officer tokens the tests use.
//!
//! Node unit tests, the client's tests and the multi-process tests all found their network
//! here, so a change to founding (a new key file, a genesis field, a config option) is
//! made once. The kit knows genesis and the node's config file format (TOML text), but
//! not the node's code: it must never depend on `huren-node`, so that the node's own unit
//! tests can use it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

/// An officer token with scope `all` on every node the kit configures.
pub const TOKEN: &str = "hrt_test_token_for_all_scopes";
/// An officer token with scope `issue` only.
pub const ISSUE_TOKEN: &str = "hrt_test_token_for_issue_only";
/// The officer ids the two tokens act as.
pub const OFFICER: &str = "officer-1";
pub const ISSUE_OFFICER: &str = "clerk-2";

/// The time genesis says the network was founded (before any test's clock).
pub const FOUNDED_AT: i64 = 1_700_000_000;

/// Hex SHA-256 of a token, as a node config stores it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The example network, founded: a key pair for every department and observer, and the
/// genesis file, in a temporary directory removed when this drops.
pub struct Founded {
    pub dir: tempfile::TempDir,
    pub genesis: PathBuf,
    pub keys: PathBuf,
}

/// How a node the kit configures differs from the default one.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// libp2p on 127.0.0.1 with these bootstrap addresses; `None`: no networking.
    pub bootstrap: Option<Vec<String>>,
    /// Extra lines for the `[limits]` table, e.g. `batch_licences_max = 3`.
    pub limits: String,
    /// The verifying region (`region = …`); default the department's own.
    pub region: Option<String>,
    /// The libp2p listen multiaddr; default `/ip4/127.0.0.1/tcp/0` (the node picks a port).
    pub p2p_listen: Option<String>,
    /// The API listen address; default `127.0.0.1:0` (the node picks a port).
    pub api_listen: Option<String>,
}

impl Founded {
    /// Generates keys for every node of the example template and builds genesis.
    pub fn example() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("huren-test-").tempdir()?;
        let keys = dir.path().join("keys");
        let tpl = huren_genesis::Template::parse(huren_genesis::EXAMPLE_TEMPLATE)
            .context("the example template")?;
        for n in tpl.node_names() {
            huren_genesis::keys::generate(&n, &keys)
                .with_context(|| format!("generating keys for {n}"))?;
        }
        let doc = huren_genesis::build(&tpl, &keys, FOUNDED_AT).context("building genesis")?;
        let genesis = dir.path().join("genesis.json");
        std::fs::write(&genesis, huren_genesis::GenesisFile::new(doc).to_json())
            .with_context(|| format!("writing {}", genesis.display()))?;
        Ok(Self { dir, genesis, keys })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The network as a node sees it.
    pub fn network(&self) -> anyhow::Result<huren_core::Network> {
        Ok(huren_genesis::load(&self.genesis)?)
    }

    /// The issuer key file of a department.
    pub fn issuer_key(&self, department: &str) -> PathBuf {
        huren_genesis::keys::issuer_key_path(&self.keys, department)
    }

    /// The config file text for the node `name` (a department id, or an observer name
    /// from genesis), with its own data directory under `<dir>/<name>/data`, the API on
    /// 127.0.0.1 (port 0: the node picks one and prints it) unless `opts` names an
    /// address, both kit tokens, and the
    /// public rate limit lifted so that tests are never throttled by accident.
    pub fn config_text(&self, name: &str, opts: &NodeOptions) -> anyhow::Result<String> {
        let dir = self.dir.path().join(name);
        let observer = name.contains("observer");
        // An observer names no department and no issuer key; a node without networking
        // no node key.
        let role = if observer {
            String::new()
        } else {
            format!(
                "department = \"{name}\"\nissuer_key = \"{}\"\n",
                path_text(&self.issuer_key(name))?
            )
        };
        let (node_key, network) = match &opts.bootstrap {
            Some(b) => (
                format!(
                    "node_key = \"{}\"\n",
                    path_text(&huren_genesis::keys::node_key_path(&self.keys, name))?
                ),
                format!(
                    "[network]\nlisten = [{}]\nbootstrap = {}\n",
                    serde_json::to_string(
                        opts.p2p_listen.as_deref().unwrap_or("/ip4/127.0.0.1/tcp/0")
                    )?,
                    serde_json::to_string(b)?
                ),
            ),
            None => (String::new(), String::new()),
        };
        let region = opts
            .region
            .as_ref()
            .map_or(String::new(), |r| format!("region = \"{r}\"\n"));
        Ok(format!(
            r#"data_dir = "{data}"
genesis = "{genesis}"
{role}{node_key}{region}
[api]
listen = {api_listen}

[[api.tokens]]
officer = "{OFFICER}"
scope = "all"
sha256 = "{all}"

[[api.tokens]]
officer = "{ISSUE_OFFICER}"
scope = "issue"
sha256 = "{issue}"

{network}
[limits]
{rate}{limits}
"#,
            data = path_text(&dir.join("data"))?,
            genesis = path_text(&self.genesis)?,
            all = token_hash(TOKEN),
            issue = token_hash(ISSUE_TOKEN),
            limits = opts.limits,
            api_listen =
                serde_json::to_string(opts.api_listen.as_deref().unwrap_or("127.0.0.1:0"))?,
            // Lifted so tests are never throttled by accident, unless they set it.
            rate = if opts.limits.contains("public_requests_per_minute") {
                ""
            } else {
                "public_requests_per_minute = 1000000\n"
            },
        ))
    }

    /// Writes `config_text` to `<dir>/<name>/node.toml`; returns its path.
    pub fn write_config(&self, name: &str, opts: &NodeOptions) -> anyhow::Result<PathBuf> {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("node.toml");
        std::fs::write(&path, self.config_text(name, opts)?)?;
        Ok(path)
    }
}

/// A path as TOML string content (forward slashes, no quotes to escape).
fn path_text(p: &Path) -> anyhow::Result<String> {
    let s = p
        .to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))?;
    anyhow::ensure!(
        !s.contains('"') && !s.contains('\\'),
        "{s} cannot be written into a TOML string as is"
    );
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn founds_the_example_network() {
        let f = Founded::example().expect("founded");
        let net = f.network().expect("genesis loads");
        assert!(net.departments().len() >= 5);
        assert!(f.issuer_key("gd.transport").is_file());
        let text = f
            .config_text("gd.transport", &NodeOptions::default())
            .expect("config");
        assert!(text.contains("department = \"gd.transport\""), "{text}");
        assert!(text.contains(&token_hash(TOKEN)));
        assert!(!text.contains("[network]"));
    }
}
