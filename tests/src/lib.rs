//! Harness for multi-process tests: found a network from the example template in a
//! temporary directory, write node configs, start real `huren-node` processes on
//! 127.0.0.1, find their API port, and stop (or SIGKILL) them. Every process is killed
//! when its handle drops, so a failing test leaves nothing running.

pub mod chaos;
pub mod gov;
pub mod rogue;

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The officer token every test node accepts (scope all).
pub use huren_testkit::TOKEN;

/// A built binary of the workspace (`huren-node`, `huren`): next to the running
/// executable (a binary in target/<profile>/) or one level up (a test in
/// target/<profile>/deps/).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("executable directory");
    let candidates = [
        dir.join(name),
        dir.parent().map(|p| p.join(name)).unwrap_or_default(),
    ];
    for path in &candidates {
        if path.is_file() {
            return path.clone();
        }
    }
    panic!(
        "{name} is missing next to {}: run `cargo build --workspace --bins` first (the README's commands do)",
        exe.display()
    );
}

/// A founded network (the kit's), with the configs these tests write.
pub struct TestNetwork(huren_testkit::Founded);

impl std::ops::Deref for TestNetwork {
    type Target = huren_testkit::Founded;
    fn deref(&self) -> &huren_testkit::Founded {
        &self.0
    }
}

impl TestNetwork {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self(huren_testkit::Founded::example()?))
    }

    /// Writes a config for `department` (no libp2p) with its own data directory.
    pub fn config(&self, department: &str, limits: &str) -> anyhow::Result<PathBuf> {
        self.node_config(department, None, limits)
    }

    /// Writes a config for `name` (a department id, or an observer name from genesis)
    /// with libp2p on 127.0.0.1 when `bootstrap` is given; returns its path.
    pub fn node_config(
        &self,
        name: &str,
        bootstrap: Option<&[String]>,
        limits: &str,
    ) -> anyhow::Result<PathBuf> {
        self.0.write_config(
            name,
            &huren_testkit::NodeOptions {
                bootstrap: bootstrap.map(<[String]>::to_vec),
                limits: limits.to_owned(),
                ..Default::default()
            },
        )
    }
}

/// A running `huren-node run` process.
pub struct NodeProcess {
    child: Child,
    pub url: String,
    /// The libp2p address (with /p2p/<peer id>), when networking is configured.
    pub p2p: Option<String>,
    pub config: PathBuf,
}

/// mimalloc's delay before it returns freed memory to the OS; -1: never.
const PURGE_DELAY_VAR: &str = "MIMALLOC_PURGE_DELAY";

/// How a node process is started beyond its config: under a wrapper command (e.g.
/// `ip netns exec NS`, which execs the node in place, so the child is still the node),
/// with extra environment (e.g. libfaketime's), and with its log in a file.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Program and arguments the node's command line is appended to.
    pub wrapper: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    /// The node's stderr (its log), appended to; `None`: the test's stderr.
    pub log: Option<PathBuf>,
}

impl NodeProcess {
    /// Starts the node and waits (up to 30 s) for its "api listening" line.
    pub fn start(config: &Path) -> anyhow::Result<Self> {
        Self::start_with(config, &Launch::default())
    }

    /// Starts the node as `launch` says and waits (up to 30 s) for its "api listening" line.
    pub fn start_with(config: &Path, launch: &Launch) -> anyhow::Result<Self> {
        let mut cmd = match launch.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary("huren-node"));
                c
            }
            None => Command::new(binary("huren-node")),
        };
        let stderr = match &launch.log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening node log {}", path.display()))?,
            ),
            None => Stdio::inherit(),
        };
        if std::env::var_os(PURGE_DELAY_VAR).is_none() {
            // As scripts/huren-node.service runs it (docs/operations.md, "Memory").
            cmd.env(PURGE_DELAY_VAR, "-1");
        }
        let mut child = cmd
            .arg("run")
            .arg("--config")
            .arg(config)
            // HUREN_TEST_NODE_LOG (e.g. `huren_node=debug`) shows what the nodes log.
            .env(
                "RUST_LOG",
                std::env::var("HUREN_TEST_NODE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            // After RUST_LOG, so that a launch may set its own.
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("starting huren-node")?;
        let stdout = child.stdout.take().context("node stdout")?;
        let (tx, rx) = mpsc::channel();
        let networked = std::fs::read_to_string(config)?.contains("[network]");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("huren-node: api listening on ") {
                    let _ = tx.send((true, url.trim().to_owned()));
                } else if let Some(addr) = line.strip_prefix("huren-node: p2p listening on ") {
                    let _ = tx.send((false, addr.trim().to_owned()));
                }
            }
        });
        let (mut url, mut p2p) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while url.is_none() || (networked && p2p.is_none()) {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((true, u)) => url = Some(u),
                Ok((false, a)) => p2p = p2p.or(Some(a)),
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait()?;
                    bail!("huren-node did not start within 30 s ({status})")
                }
            }
        }
        Ok(Self {
            child,
            url: url.expect("loop exits only with a url"),
            p2p,
            config: config.to_owned(),
        })
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no flush. What a power cut does.
    pub fn kill9(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        // Already gone (e.g. Ctrl-C reached the whole process group): it must have exited cleanly.
        if let Some(status) = self.child.try_wait()? {
            anyhow::ensure!(status.success(), "huren-node exited with {status}");
            return Ok(());
        }
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
    check_with(config, &[])
}

/// `check` with extra environment (e.g. the node's own libfaketime clock).
pub fn check_with(config: &Path, env: &[(OsString, OsString)]) -> anyhow::Result<(bool, String)> {
    let out = Command::new(binary("huren-node"))
        .arg("check")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
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

/// Polls `f` every 50 ms until it returns `Some`, or fails after `secs` seconds.
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {secs} s waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GET a JSON document.
pub fn get_json(http: &reqwest::blocking::Client, url: &str) -> anyhow::Result<serde_json::Value> {
    Ok(http.get(url).send()?.json()?)
}

/// POST /v1/verify with a QR text.
pub fn verify(
    http: &reqwest::blocking::Client,
    node: &NodeProcess,
    qr: &str,
) -> anyhow::Result<serde_json::Value> {
    Ok(http
        .post(format!("{}/v1/verify", node.url))
        .json(&serde_json::json!({ "qr": qr }))
        .send()?
        .json()?)
}

/// Chain heights by department at a node.
pub fn heads(
    http: &reqwest::blocking::Client,
    node: &NodeProcess,
) -> anyhow::Result<Vec<(String, u64, String)>> {
    chaos::checks::heads_at(http, &node.url).context("the node's /v1/chains answer")
}

/// Polls `/v1/verify` at `node` until it answers `verdict` with `reason` (30 s at most).
pub fn until_verdict(
    http: &reqwest::blocking::Client,
    node: &NodeProcess,
    qr: &str,
    verdict: &str,
    reason: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    eventually(30, &format!("{verdict}/{reason:?} at {}", node.url), || {
        let v = verify(http, node, qr).ok()?;
        (v["verdict"] == verdict && v["reason"].as_str() == reason).then_some(v)
    })
}

/// Starts nodes one after another, each bootstrapping to all the ones before it, and
/// waits until each has every other as a peer.
pub fn start_mesh(net: &TestNetwork, names: &[&str]) -> anyhow::Result<Vec<NodeProcess>> {
    start_mesh_with(net, names, "")
}

/// `start_mesh`, with `limits` (lines of the `[limits]` table) for every node.
pub fn start_mesh_with(
    net: &TestNetwork,
    names: &[&str],
    limits: &str,
) -> anyhow::Result<Vec<NodeProcess>> {
    let mut nodes: Vec<NodeProcess> = Vec::new();
    for name in names {
        let boot: Vec<String> = nodes.iter().filter_map(|n| n.p2p.clone()).collect();
        nodes.push(NodeProcess::start(&net.node_config(
            name,
            Some(&boot),
            limits,
        )?)?);
    }
    let http = client();
    for n in &nodes {
        eventually(30, "peers to connect", || {
            let v = get_json(&http, &format!("{}/v1/peers", n.url)).ok()?;
            (v.as_array()?.len() + 1 >= names.len()).then_some(())
        })?;
    }
    Ok(nodes)
}

/// Issues at `node`, waiting while the node is still catching up its own chain (503);
/// the answer.
pub fn issue(
    http: &reqwest::blocking::Client,
    node: &NodeProcess,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let mut last = String::new();
    let r = eventually(30, "the node to accept issuance", || {
        let r = http
            .post(format!("{}/v1/licences", node.url))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .ok()?;
        if r.status().as_u16() == 503 {
            last = r.text().unwrap_or_default();
            return None;
        }
        Some(r)
    })
    .map_err(|e| anyhow::anyhow!("{e}; last answer: {last}"))?;
    let status = r.status();
    let v: serde_json::Value = r.json()?;
    anyhow::ensure!(status.as_u16() == 201, "issue failed: {v}");
    Ok(v)
}

/// Takes licence `qr` in at `node` (`POST /v1/transfers`), waiting until the node holds
/// the transfer out (30 s at most); the answer.
pub fn accept_transfer(
    http: &reqwest::blocking::Client,
    node: &NodeProcess,
    qr: &str,
) -> anyhow::Result<serde_json::Value> {
    eventually(30, &format!("{} to take the transfer in", node.url), || {
        let r = http
            .post(format!("{}/v1/transfers", node.url))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "qr": qr }))
            .send()
            .ok()?;
        (r.status().as_u16() == 201)
            .then(|| r.json().ok())
            .flatten()
    })
}

/// A node that lies: an HTTP server of the test's own on 127.0.0.1 that answers each
/// path with the bytes the test gives it (a stale or forged answer), reading each request
/// whole first. It serves until dropped.
pub struct FakeNode {
    pub url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeNode {
    /// Serves `routes` (path without query → content type and body); any other path 404.
    pub fn serve(routes: Vec<(&'static str, &'static str, Vec<u8>)>) -> anyhow::Result<Self> {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .split('?')
                    .next()
                    .unwrap_or("/")
                    .to_owned();
                let (status, kind, bytes) = match routes.iter().find(|(p, _, _)| *p == path) {
                    Some((_, kind, bytes)) => ("200 OK", *kind, bytes.clone()),
                    None => ("404 Not Found", "text/plain", b"no such path".to_vec()),
                };
                let mut stream = reader.into_inner();
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    bytes.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&bytes);
            }
        });
        Ok(Self {
            url,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
