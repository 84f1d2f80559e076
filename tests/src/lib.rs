//! Harness for multi-process tests: found a network from the example template in a
//! temporary directory, write node configs, start real `huren-node` processes on
//! 127.0.0.1, find their API port, and stop (or SIGKILL) them. Every process is killed
//! when its handle drops, so a failing test leaves nothing running.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

/// The officer token every test node accepts (scope all).
pub const TOKEN: &str = "hrt_test_token_for_all_scopes";

/// A built binary of the workspace (`huren-node`, `huren`), next to the test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test>  →  target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests (the README's test command does)",
        path.display()
    );
    path
}

/// A founded network: keys and genesis in a temporary directory.
pub struct TestNetwork {
    pub dir: tempfile::TempDir,
    pub genesis: PathBuf,
    pub keys: PathBuf,
}

impl TestNetwork {
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("huren-test-").tempdir()?;
        let keys = dir.path().join("keys");
        let tpl = huren_genesis::Template::parse(huren_genesis::EXAMPLE_TEMPLATE)?;
        for n in tpl.node_names() {
            huren_genesis::keys::generate(&n, &keys)?;
        }
        let doc = huren_genesis::build(&tpl, &keys, 1_700_000_000)?;
        let genesis = dir.path().join("genesis.json");
        std::fs::write(&genesis, huren_genesis::GenesisFile::new(doc).to_json())?;
        Ok(Self { dir, genesis, keys })
    }

    /// Writes a config for `department` with its own data directory; returns its path.
    pub fn config(&self, department: &str, extra: &str) -> anyhow::Result<PathBuf> {
        let dir = self.dir.path().join(department);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("node.toml");
        let token_hash = hex::encode(Sha256::digest(TOKEN.as_bytes()));
        let text = format!(
            r#"data_dir = "{data}"
genesis = "{genesis}"
department = "{department}"
issuer_key = "{issuer}"
node_key = "{node}"

[api]
listen = "127.0.0.1:0"

[[api.tokens]]
officer = "officer-1"
scope = "all"
sha256 = "{token_hash}"

[limits]
public_requests_per_minute = 1000000
{extra}
"#,
            data = dir.join("data").display(),
            genesis = self.genesis.display(),
            issuer = huren_genesis::keys::issuer_key_path(&self.keys, department).display(),
            node = huren_genesis::keys::node_key_path(&self.keys, department).display(),
        );
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

/// A running `huren-node run` process.
pub struct NodeProcess {
    child: Child,
    pub url: String,
    pub config: PathBuf,
}

impl NodeProcess {
    /// Starts the node and waits (up to 30 s) for its "api listening" line.
    pub fn start(config: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(binary("huren-node"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting huren-node")?;
        let stdout = child.stdout.take().context("node stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("huren-node: api listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => Ok(Self {
                child,
                url,
                config: config.to_owned(),
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait()?;
                bail!("huren-node did not start within 30 s ({status})")
            }
        }
    }

    /// SIGKILL: no shutdown, no flush. What a power cut does.
    pub fn kill9(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "could not signal huren-node");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                anyhow::ensure!(status.success(), "huren-node exited with {status}");
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("huren-node did not stop within 20 s of SIGTERM")
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `huren-node check --config` and returns (success, output).
pub fn check(config: &Path) -> anyhow::Result<(bool, String)> {
    let out = Command::new(binary("huren-node"))
        .arg("check")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .output()
        .context("running huren-node check")?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// A blocking HTTP client with sane timeouts for tests.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// A driving licence issuance body.
pub fn driving_body(n: u64) -> serde_json::Value {
    serde_json::json!({
        "licence_type": "mvdl",
        "holder": {"name": format!("测试{n}"), "id_number": format!("4401061990{n:08}"), "class": "C1"},
        "valid_days": 2190
    })
}
