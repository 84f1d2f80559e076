//! huren-bench: every performance figure of Huren in one run on one machine.
//!
//! 1. The machine's limits, in-process: Ed25519 sign, verify and batch-verify rates (one
//!    core and all cores), SHA-256 bytes/s, fdatasync rate of 4 KiB appends in the data
//!    directory's file system.
//! 2. One node: verify requests/s and p50/p99 for licences on the ledger (fast path) and
//!    for credentials whose signature must be checked; durable issuance/s with single
//!    requests at concurrency 64 and with bulk import.
//! 3. Scale: verify p99 and disk bytes per licence at 10,000 and at `--licences` (default
//!    1,000,000) licences.
//! 4. Catch-up: a fresh node syncing that ledger: records/s.
//! 5. Replication: 4 nodes, sustained issuance at one: records/s reaching every node and
//!    p50/p99 propagation delay (block cut → applied at a peer, from the nodes' metrics).
//! 6. QR size and version for each licence type of the example genesis.
//! 7. A central-database baseline (`baseline`): the same bulk import, verify load and
//!    ledger size against PostgreSQL behind `huren-baseline`, as Huren ÷ baseline.
//!
//! Figures are written to `<out>/results.json` and `<out>/results.md`, with ratios to
//! the machine's limits so runs can be compared on noisy shared machines. Load generator
//! and nodes share the cores; the generator's CPU share is reported. Release build:
//! scripts/bench.sh.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::FutureExt;
use huren_core::{Credential, DepartmentId, LicenceId, LicenceType, RegionCode, SecretKey};
use huren_tests::{driving_body, NodeProcess, TestNetwork, TOKEN};
use serde_json::{json, Value};

// A binary's root declares modules beside itself (src/bin/baseline.rs), where cargo would
// take the file for another binary: under bench/ it is only this binary's.
#[path = "bench/baseline.rs"]
mod baseline;
#[path = "bench/instructions.rs"]
mod instructions;

#[derive(Parser)]
#[command(about = "Measure Huren against the limits of this machine")]
struct Args {
    /// Small and fast (under 3 minutes): a smoke test, figures are indicative only.
    #[arg(long)]
    quick: bool,
    /// Ledger size for the scale and catch-up figures (10,000,000 is possible, slowly).
    #[arg(long, conflicts_with = "scale")]
    licences: Option<u64>,
    /// The same as --licences, written as `1m`, `10m` or `500k`: `--scale 10m` is the
    /// 10-million run (about an hour on 2 cores, not part of the default run).
    #[arg(long, value_parser = parse_scale)]
    scale: Option<u64>,
    /// Seconds per throughput measurement.
    #[arg(long)]
    seconds: Option<u64>,
    /// Where to write results.json and results.md.
    #[arg(long, default_value = "bench")]
    out: std::path::PathBuf,
}

/// `10m`, `1m`, `500k` or a plain number of licences.
fn parse_scale(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let (digits, unit) = match t.strip_suffix('m') {
        Some(d) => (d, 1_000_000),
        None => match t.strip_suffix('k') {
            Some(d) => (d, 1_000),
            None => (t.as_str(), 1),
        },
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| *n >= 20_000)
        .ok_or_else(|| format!("{text}: give a number of licences of at least 20k, such as 10m"))
}

/// Resident memory of process `pid` in bytes (VmRSS), if it can be read.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

// ----------------------------------------------------------------------------------------
// Helpers

/// CPU seconds from /proc/self/stat: this process's (`children` false: utime + stime) or
/// its waited-for children's (`children` true: cutime + cstime).
fn stat_cpu_seconds(children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces): utime, stime, cutime and
    // cstime are the 12th to 15th, in clock ticks of 100 Hz (USER_HZ).
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let first = if children { 13 } else { 11 };
    (t(first) + t(first + 1)) / 100.0
}

fn cpu_seconds() -> f64 {
    stat_cpu_seconds(false)
}

fn children_cpu_seconds() -> f64 {
    stat_cpu_seconds(true)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f` on `threads` threads for `secs`; returns operations per second in total.
fn rate_threads(threads: usize, secs: f64, f: impl Fn(u64) -> u64 + Sync) -> f64 {
    let total = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (f, total) = (&f, &total);
            s.spawn(move || {
                let mut n = 0;
                let mut i = t as u64 * 1_000_000_000;
                while start.elapsed().as_secs_f64() < secs {
                    n += f(i);
                    i += 1;
                }
                total.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    total.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

#[derive(Debug)]
struct Load {
    ops: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    client_cpu_share: f64,
}

impl Load {
    fn per_s(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

/// Drives `make` with `concurrency` tasks for `secs`.
async fn drive<F, Fut>(secs: f64, concurrency: usize, make: F) -> Load
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (make, counter) = (make.clone(), counter.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let s = Instant::now();
                    if make(n).await {
                        lat.push(s.elapsed().as_secs_f64() * 1e3);
                    }
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let secs = t0.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Load {
        ops: all.len() as u64,
        secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        client_cpu_share: (cpu_seconds() - cpu0) / (secs * cores() as f64),
    }
}

fn dir_bytes(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Waits until the node has finished writing behind the last import (sled flushes and
/// merges pages in the background): the data directory's size holds for 2 s, at most 60 s.
/// Latency measured while that runs would be the importer's, not the ledger size's.
async fn settle(data_dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = dir_bytes(data_dir);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = dir_bytes(data_dir);
        if now == last {
            return;
        }
        last = now;
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Credentials correctly signed by gd.transport that no ledger holds: the signature path.
fn offline_credentials(key: &SecretKey, n: u64) -> anyhow::Result<Vec<String>> {
    let dept = DepartmentId::parse("gd.transport")?;
    (0..n)
        .map(|i| {
            let c = Credential {
                issuer: dept.clone(),
                licence_id: LicenceId::new(
                    dept.clone(),
                    LicenceType::parse("mvdl")?,
                    900_000_000 + i,
                ),
                region: RegionCode::parse("440000")?,
                issued_at: now_s(),
                not_before: now_s(),
                expires_at: now_s() + 86_400 * 365,
                holder: [
                    ("name", "测试"),
                    ("id_number", "440106199001011234"),
                    ("class", "C1"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
                fields: BTreeMap::new(),
                salt: [(i % 251) as u8; 16],
            };
            Ok(c.sign(key)?.qr_text)
        })
        .collect()
}

/// Imports `count` licences through the batch API: 1000 per request, `BULK_IN_FLIGHT`
/// requests in flight at all times (a new one goes out as soon as one is answered, so the
/// node parses the next batches while its producer signs and writes the current block).
/// Returns the QR texts of the first `keep` answered.
async fn bulk_import(
    http: &reqwest::Client,
    url: &str,
    start: u64,
    count: u64,
    keep: usize,
) -> anyhow::Result<(Vec<String>, f64)> {
    use futures::StreamExt;
    const BULK_IN_FLIGHT: usize = 4;
    let t0 = Instant::now();
    let mut kept = Vec::new();
    let batches: Vec<(u64, u64)> = (0..count.div_ceil(1000))
        .map(|b| (start + b * 1000, (count - b * 1000).min(1000)))
        .collect();
    let mut answers = futures::stream::iter(batches)
        .map(|(from, n)| {
            let licences: Vec<Value> = (from..from + n).map(driving_body).collect();
            let req = http
                .post(format!("{url}/v1/licences:batch"))
                .bearer_auth(TOKEN)
                .json(&json!({ "licences": licences }));
            async move {
                let v: Value = req.send().await?.error_for_status()?.json().await?;
                anyhow::Ok(v)
            }
        })
        .buffer_unordered(BULK_IN_FLIGHT);
    while let Some(v) = answers.next().await {
        let v = v?;
        for item in v["results"].as_array().context("results")? {
            anyhow::ensure!(item["ok"] == true, "bulk import item failed: {item}");
            if kept.len() < keep {
                kept.push(item["qr"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    Ok((kept, count as f64 / t0.elapsed().as_secs_f64()))
}

/// The load generator for the verify figures: `wrk` when it is installed (C, epoll; its
/// CPU cost per request is a fraction of an async Rust client's, so more of the shared
/// cores go to the node), else the project's HTTP client.
#[derive(Clone)]
enum Generator {
    Wrk {
        version: String,
        work: std::path::PathBuf,
    },
    Reqwest,
}

impl Generator {
    fn detect(work: &Path) -> Generator {
        match std::process::Command::new("wrk").arg("-v").output() {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                let version = text
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("unknown")
                    .to_owned();
                Generator::Wrk {
                    version,
                    work: work.to_owned(),
                }
            }
            Err(_) => Generator::Reqwest,
        }
    }

    fn describe(&self) -> String {
        match self {
            Generator::Wrk { version, .. } => format!("wrk {version}, 1 thread"),
            Generator::Reqwest => "reqwest (async, in the bench process)".to_owned(),
        }
    }
}

/// A wrk duration in the units it prints ("812.00us", "1.23ms", "1.05s") as milliseconds.
fn wrk_ms(v: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60e3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e3)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|x| x * scale)
}

/// Runs wrk against POST /v1/verify with the QR texts as bodies, in turn.
fn wrk_verify(
    work: &Path,
    url: &str,
    qrs: &[String],
    secs: f64,
    concurrency: usize,
) -> anyhow::Result<Load> {
    let bodies = work.join("wrk-bodies.txt");
    let mut text = String::new();
    for q in qrs {
        text.push_str(&serde_json::to_string(&json!({ "qr": q }))?);
        text.push('\n');
    }
    std::fs::write(&bodies, text)?;
    let script = work.join("wrk-verify.lua");
    std::fs::write(
        &script,
        format!(
            r#"local bodies = {{}}
for line in io.lines("{}") do bodies[#bodies + 1] = line end
local i = 0
local headers = {{ ["Content-Type"] = "application/json" }}
request = function()
  i = i + 1
  return wrk.format("POST", "/v1/verify", headers, bodies[(i % #bodies) + 1])
end
"#,
            bodies.display()
        ),
    )?;
    let cpu0 = children_cpu_seconds();
    let out = std::process::Command::new("wrk")
        .args(["-t1", "--latency", "--timeout", "10s"])
        .arg(format!("-c{concurrency}"))
        .arg(format!("-d{}s", secs.ceil().max(1.0) as u64))
        .arg("-s")
        .arg(&script)
        .arg(format!("{url}/v1/verify"))
        .output()
        .context("running wrk")?;
    let cpu = children_cpu_seconds() - cpu0;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut load = parse_wrk(&stdout)?;
    load.client_cpu_share = cpu / (load.secs * cores() as f64);
    Ok(load)
}

/// Requests, duration and latency quantiles from wrk's `--latency` report; an error when
/// any answer was not 2xx or the report cannot be read.
fn parse_wrk(stdout: &str) -> anyhow::Result<Load> {
    let mut requests = None;
    let mut secs = None;
    let (mut p50, mut p99) = (f64::NAN, f64::NAN);
    let mut refused = 0u64;
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [n, "requests", "in", t, ..] => {
                requests = n.parse::<u64>().ok();
                secs = wrk_ms(t.trim_end_matches(',')).map(|ms| ms / 1e3);
            }
            ["50%", v] => p50 = wrk_ms(v).unwrap_or(f64::NAN),
            ["99%", v] => p99 = wrk_ms(v).unwrap_or(f64::NAN),
            ["Non-2xx", "or", "3xx", "responses:", n] => refused = n.parse().unwrap_or(u64::MAX),
            _ => {}
        }
    }
    let (Some(requests), Some(secs)) = (requests, secs) else {
        anyhow::bail!("could not read wrk's output: {stdout}");
    };
    anyhow::ensure!(
        refused == 0,
        "{refused} of {requests} verify requests were not answered 2xx: {stdout}"
    );
    Ok(Load {
        ops: requests,
        secs,
        p50_ms: p50,
        p99_ms: p99,
        client_cpu_share: f64::NAN,
    })
}

async fn verify_load(
    generator: &Generator,
    http: &reqwest::Client,
    url: &str,
    qrs: Arc<Vec<String>>,
    secs: f64,
    concurrency: usize,
) -> anyhow::Result<Load> {
    if let Generator::Wrk { work, .. } = generator {
        let (work, url) = (work.clone(), url.to_owned());
        return tokio::task::spawn_blocking(move || {
            wrk_verify(&work, &url, &qrs, secs, concurrency)
        })
        .await?;
    }
    let (h, u) = (http.clone(), url.to_owned());
    Ok(drive(secs, concurrency, move |n| {
        let (h, u, q) = (h.clone(), u.clone(), qrs.clone());
        async move {
            let qr = &q[n as usize % q.len()];
            h.post(format!("{u}/v1/verify"))
                .json(&json!({ "qr": qr }))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await)
}

/// Concurrent requests for the scale latency figures: below saturation, so that p99 is the
/// ledger's service time rather than the length of the queue a saturating load builds.
const SCALE_CONCURRENCY: usize = 16;

/// Verify latency at one ledger size: a warm-up pass (caches filled after the import),
/// then the measurement at `SCALE_CONCURRENCY`. Both sizes are measured the same way.
async fn scale_load(
    generator: &Generator,
    http: &reqwest::Client,
    url: &str,
    qrs: Arc<Vec<String>>,
    secs: f64,
) -> anyhow::Result<Load> {
    verify_load(
        generator,
        http,
        url,
        qrs.clone(),
        (secs / 4.0).max(1.0),
        SCALE_CONCURRENCY,
    )
    .await?;
    verify_load(generator, http, url, qrs, secs, SCALE_CONCURRENCY).await
}

async fn aget(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(http.get(url).send().await?.json().await?)
}

/// Height of `dept`'s chain at the node at `url`.
async fn height_at(http: &reqwest::Client, url: &str, dept: &str) -> u64 {
    let Ok(v) = aget(http, &format!("{url}/v1/chains")).await else {
        return 0;
    };
    serde_json::from_value::<huren_api::ChainsAnswer>(v)
        .ok()
        .and_then(|a| a.chains.into_iter().find(|c| c.department.as_str() == dept))
        .map_or(0, |c| c.height)
}

/// Polls `check` every 20 ms until it holds, for at most `secs`.
async fn wait_for<F, Fut>(secs: u64, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// p50 and p99 from a Prometheus histogram in the node's /metrics text.
fn histogram_quantiles(metrics: &str, name: &str) -> (f64, f64, u64) {
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    let prefix = format!("{name}_bucket{{le=\"");
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix(&prefix) {
            let (le, count) = rest.split_once("\"} ").unwrap_or(("", "0"));
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::NAN)
            };
            buckets.push((le, count.trim().parse().unwrap_or(0)));
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map_or(0, |b| b.1);
    let q = |p: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c as f64 >= p * total as f64)
            .map_or(f64::NAN, |b| b.0)
    };
    (q(0.5), q(0.99), total)
}

// ----------------------------------------------------------------------------------------
// The run: one function per phase, called by `main` in the order they run.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let run = Run::new(Args::parse())?;
    let limits = machine_limits(&run)?;
    let qr = qr_sizes(&run)?;
    // The node keeps running after its own figures: the catch-up phase syncs a fresh node
    // from it.
    let (node, one) = one_node(&run).await?;
    let (sync, fresh) = catch_up(&run, &node, one.large.licences).await?;
    let cps = checkpoints(&run, &node, fresh, one.large.licences, &one.small.qrs).await?;
    node.stop()?;
    // Where the bytes are: each tree of the issuing node and of the replica, read with
    // `huren-node usage` now that both have stopped (sled locks a data directory).
    let disk = json!({
        "issuing": tree_usage(&run, "gd.transport")?,
        "replica": tree_usage(&run, "sh.market")?,
    });
    // The central-database baseline, with the cores to itself as the node had them. A
    // failure (no PostgreSQL and no way to install it) costs that section, not the run.
    let baseline = match baseline::measure(&run, one.issue.bulk_licences, one.large.licences).await
    {
        Ok(b) => b.json(
            one.issue.bulk_per_s,
            one.verify.fast.per_s(),
            one.verify.signature.per_s(),
            one.large.disk_bytes_per_licence,
        ),
        Err(e) => {
            eprintln!("warning: the central-database baseline was not measured: {e:#}");
            json!({ "error": format!("{e:#}") })
        }
    };
    // Instructions per fast-path verify and per issued licence under callgrind: figures
    // a later change compares against without the machine's noise.
    let (n_verify, n_issue) = if run.quick {
        (300, 2_000)
    } else {
        (instructions::VERIFY_N, instructions::ISSUE_N)
    };
    run.section("instruction counts (callgrind)");
    let instr = match instructions::measure(n_verify, n_issue).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("warning: instruction counts were not measured: {e:#}");
            json!({ "error": format!("{e:#}") })
        }
    };
    // Sustained replication with and without checkpoints, alternated twice (each run is a
    // fresh network; one pair alone differed by ±3 % from run to run).
    let propagation = replication(&run, "", true).await?;
    let off_1 = replication(&run, CHECKPOINTS_OFF, false).await?;
    let on_2 = replication(&run, "", false).await?;
    let off_2 = replication(&run, CHECKPOINTS_OFF, false).await?;
    let cps = cps.with_overhead(&[&propagation, &on_2], &[&off_1, &off_2]);
    let results = json!({
        "limits": limits.json(),
        "qr": qr.iter().map(QrSize::json).collect::<Vec<_>>(),
        "one_node": one.json(&limits),
        "scale": one.scale_json(),
        "catch_up": sync.json(),
        "replication": propagation.iter().map(Propagation::json).collect::<Vec<_>>(),
        "checkpoints": cps.json(),
        "baseline": baseline,
        "disk": disk,
        "instructions": instr,
        "machine": run.machine_json(),
    });
    report(&run.out, &results)
}

/// What every phase shares: the run's settings and clock, one HTTP client, and the test
/// network that the machine limits, QR sizes, one-node and catch-up phases use (the
/// replication phase founds its own).
struct Run {
    quick: bool,
    /// Seconds per throughput measurement.
    secs: f64,
    /// Ledger size for the scale and catch-up figures.
    licences: u64,
    out: std::path::PathBuf,
    started: Instant,
    http: reqwest::Client,
    net: TestNetwork,
}

impl Run {
    fn new(args: Args) -> anyhow::Result<Run> {
        let quick = args.quick;
        let secs = args
            .seconds
            .map_or(if quick { 2.0 } else { 10.0 }, |s| s as f64);
        let licences =
            args.licences
                .or(args.scale)
                .unwrap_or(if quick { 20_000 } else { 1_000_000 });
        let started = Instant::now();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(Run {
            quick,
            secs,
            licences,
            out: args.out,
            started,
            http,
            net: TestNetwork::new()?,
        })
    }

    /// Announces a phase on stderr, with the seconds since the run started.
    fn section(&self, name: &str) {
        eprintln!(
            "\n== {name} ({:.0} s)",
            self.started.elapsed().as_secs_f64()
        );
    }

    /// The machine and the run's settings; `total_seconds` is the time until this call.
    fn machine_json(&self) -> Value {
        json!({
            "cores": cores(),
            "memory": std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| m.lines().next().map(str::to_owned)),
            "cpu": std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned()),
            "quick": self.quick,
            "seconds_per_measurement": self.secs,
            "total_seconds": self.started.elapsed().as_secs_f64(),
        })
    }
}

// ---- 1. Limits of the machine.

/// The machine's limits: operations per second, except SHA-256 in bytes per second.
struct Limits {
    sign_per_s_one_core: f64,
    sign_per_s_all_cores: f64,
    verify_per_s_one_core: f64,
    verify_per_s_all_cores: f64,
    batch_verify_per_s_all_cores: f64,
    sha256_bytes_per_s: f64,
    fdatasync_4k_appends_per_s: f64,
}

impl Limits {
    // Targets are stated against 2 x the one-core rate: the machine's two cores doing
    // nothing but that operation.
    fn verify_cap(&self) -> f64 {
        2.0 * self.verify_per_s_one_core
    }

    fn sign_cap(&self) -> f64 {
        2.0 * self.sign_per_s_one_core
    }

    fn json(&self) -> Value {
        json!({
            "cores": cores(),
            "ed25519_sign_per_s_one_core": self.sign_per_s_one_core, "ed25519_sign_per_s_all_cores": self.sign_per_s_all_cores,
            "ed25519_verify_per_s_one_core": self.verify_per_s_one_core, "ed25519_verify_per_s_all_cores": self.verify_per_s_all_cores,
            "ed25519_batch_verify_per_s_all_cores": self.batch_verify_per_s_all_cores,
            "sha256_bytes_per_s": self.sha256_bytes_per_s, "fdatasync_4k_appends_per_s": self.fdatasync_4k_appends_per_s,
        })
    }
}

/// Ed25519, SHA-256 and fdatasync rates, in-process; the fdatasync probe appends in the
/// test network's directory, the file system the nodes write to.
fn machine_limits(run: &Run) -> anyhow::Result<Limits> {
    run.section("machine limits");
    let key = SecretKey::from_seed(&[7; 32]);
    let msg = [42u8; 32];
    let sig = key.sign(&msg);
    let pk = key.public();
    let lim_secs = if run.quick { 0.5 } else { 2.0 };
    let sign_1 = rate_threads(1, lim_secs, |_| {
        std::hint::black_box(key.sign(&msg));
        1
    });
    let verify_1 = rate_threads(1, lim_secs, |_| u64::from(pk.verify(&msg, &sig)));
    let verify_all = rate_threads(cores(), lim_secs, |_| u64::from(pk.verify(&msg, &sig)));
    let sign_all = rate_threads(cores(), lim_secs, |_| {
        std::hint::black_box(key.sign(&msg));
        1
    });
    let batch_n = 64;
    let msgs: Vec<[u8; 32]> = (0..batch_n).map(|i| [i as u8; 32]).collect();
    let sigs: Vec<ed25519_dalek::Signature> = msgs
        .iter()
        .map(|m| ed25519_dalek::Signature::from_bytes(&key.sign(m).to_bytes()))
        .collect();
    let keys = vec![*pk.dalek(); batch_n];
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let batch_all = rate_threads(cores(), lim_secs, |_| {
        if ed25519_dalek::verify_batch(&refs, &sigs, &keys).is_ok() {
            batch_n as u64
        } else {
            0
        }
    });
    let buf = vec![7u8; 1 << 20];
    let sha = rate_threads(1, lim_secs, |_| {
        std::hint::black_box(huren_core::Hash32::digest(&buf));
        1
    }) * (1 << 20) as f64;
    let fsync = {
        let path = run.net.dir.path().join("fsync-probe");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let block = [0u8; 4096];
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed().as_secs_f64() < lim_secs {
            f.write_all(&block)?;
            f.sync_data()?;
            n += 1;
        }
        let _ = std::fs::remove_file(&path);
        n as f64 / t0.elapsed().as_secs_f64()
    };
    eprintln!("sign {sign_1:.0}/s per core ({sign_all:.0}/s all), verify {verify_1:.0}/s per core ({verify_all:.0}/s all), batch verify {batch_all:.0}/s, sha256 {:.0} MB/s, fdatasync {fsync:.0}/s", sha / 1e6);
    Ok(Limits {
        sign_per_s_one_core: sign_1,
        sign_per_s_all_cores: sign_all,
        verify_per_s_one_core: verify_1,
        verify_per_s_all_cores: verify_all,
        batch_verify_per_s_all_cores: batch_all,
        sha256_bytes_per_s: sha,
        fdatasync_4k_appends_per_s: fsync,
    })
}

// ---- 6 (cheap, first). QR sizes.

/// One licence type's credential: its length as text and its QR version at level M.
struct QrSize {
    licence_type: &'static str,
    name: String,
    characters: usize,
    qr_version_m: i16,
}

impl QrSize {
    fn json(&self) -> Value {
        json!({"licence_type": self.licence_type, "name": self.name, "characters": self.characters, "qr_version_m": self.qr_version_m})
    }
}

/// A credential of each licence type of the example genesis, signed by its department.
fn qr_sizes(run: &Run) -> anyhow::Result<Vec<QrSize>> {
    run.section("QR sizes");
    let genesis = huren_genesis::load(&run.net.genesis)?;
    let mut qr_sizes = Vec::new();
    for (t, dept, holder) in [
        (
            "mvdl",
            "gd.transport",
            vec![
                ("name", "张三"),
                ("id_number", "44010619900101123X"),
                ("class", "C1"),
            ],
        ),
        (
            "food",
            "gd.market",
            vec![
                ("entity", "广州市美味餐饮有限公司"),
                ("credit_code", "91440101MA5XXXXXX1"),
            ],
        ),
        (
            "physician",
            "gd.health",
            vec![
                ("name", "李四"),
                ("id_number", "440106198505051234"),
                ("category", "临床"),
            ],
        ),
    ] {
        let key = huren_genesis::keys::read_issuer_key(&huren_genesis::keys::issuer_key_path(
            &run.net.keys,
            dept,
        ))?
        .1;
        let d = DepartmentId::parse(dept)?;
        let def = genesis
            .licence_type(&LicenceType::parse(t)?)
            .context("type")?;
        let c = Credential {
            issuer: d.clone(),
            licence_id: LicenceId::new(d, LicenceType::parse(t)?, 12_345_678),
            region: RegionCode::parse("440000")?,
            issued_at: now_s(),
            not_before: now_s(),
            expires_at: now_s() + i64::from(def.validity_days_max.min(3660)) * 86_400,
            holder: holder
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            fields: BTreeMap::new(),
            salt: [9; 16],
        };
        let qr = c.sign(&key)?.qr_text;
        let version = huren_render::qr::version(&qr)?;
        eprintln!(
            "{t}: {} characters, QR version {version} (level M)",
            qr.len()
        );
        qr_sizes.push(QrSize {
            licence_type: t,
            name: def.name.clone(),
            characters: qr.len(),
            qr_version_m: version,
        });
    }
    Ok(qr_sizes)
}

// ---- 2 + 3. One node: scale at 10k, throughput, scale at `--licences`.

/// The node the one-node phases measure, and the load generator for its verify figures.
struct Target {
    url: String,
    /// The node's process, for its resident memory.
    pid: u32,
    data_dir: std::path::PathBuf,
    generator: Generator,
}

/// The one-node figures: throughput (`json`) and scale (`scale_json`).
struct OneNode {
    verify_load_generator: String,
    small: SmallScale,
    issue: Issuance,
    verify: VerifyPaths,
    large: LargeScale,
}

impl OneNode {
    fn json(&self, limits: &Limits) -> Value {
        let (fast, slow, single, trivial) = (
            &self.verify.fast,
            &self.verify.signature,
            &self.issue.single,
            &self.verify.trivial,
        );
        let (fast_rate, slow_rate, single_rate) = (fast.per_s(), slow.per_s(), single.per_s());
        let trivial_rate = trivial.per_s();
        let (verify_cap, sign_cap) = (limits.verify_cap(), limits.sign_cap());
        let bulk_rate = self.issue.bulk_per_s;
        json!({
            "verify_load_generator": self.verify_load_generator,
            "verify_fast_path": {"per_s": fast_rate, "p50_ms": fast.p50_ms, "p99_ms": fast.p99_ms, "client_cpu_share": fast.client_cpu_share, "ratio_to_2x_verify": fast_rate / verify_cap, "ratio_to_trivial": fast_rate / trivial_rate},
            "verify_signature_path": {"per_s": slow_rate, "p50_ms": slow.p50_ms, "p99_ms": slow.p99_ms, "client_cpu_share": slow.client_cpu_share, "ratio_to_2x_verify": slow_rate / verify_cap, "ratio_to_fast": slow_rate / fast_rate},
            "trivial_handler": {"per_s": trivial_rate, "p50_ms": trivial.p50_ms, "p99_ms": trivial.p99_ms, "client_cpu_share": trivial.client_cpu_share},
            "issue_single_concurrency_64": {"per_s": single_rate, "p50_ms": single.p50_ms, "p99_ms": single.p99_ms, "client_cpu_share": single.client_cpu_share, "ratio_to_2x_sign": single_rate / sign_cap},
            "issue_bulk": {"per_s": bulk_rate, "licences": self.issue.bulk_licences, "ratio_to_2x_sign": bulk_rate / sign_cap},
        })
    }

    fn scale_json(&self) -> Value {
        let (small, large, spread) = (&self.small.load, &self.large.load, &self.large.spread);
        json!({
            "small": {"licences": self.small.licences, "verify_p99_ms": small.p99_ms, "verify_per_s": small.per_s(), "disk_bytes_per_licence": self.small.disk_bytes_per_licence},
            "large": {"licences": self.large.licences, "verify_p99_ms": large.p99_ms, "verify_per_s": large.per_s(), "disk_bytes_per_licence": self.large.disk_bytes_per_licence, "import_seconds": self.large.import_seconds, "node_rss_bytes": self.large.rss_bytes},
            "p99_ratio_large_to_small": large.p99_ms / small.p99_ms,
            "spread": {"licences_sampled": self.large.spread_sampled, "verify_p99_ms": spread.p99_ms, "verify_per_s": spread.per_s()},
            "p99_ratio_spread_to_small": spread.p99_ms / small.p99_ms,
            "alternated": {
                "rounds": self.large.alternated.iter().map(|(a, b)| json!({"p99_ms_10k": a, "p99_ms_large": b})).collect::<Vec<_>>(),
                "p99_ratio_median": median(self.large.alternated.iter().map(|r| r.1).collect()) / median(self.large.alternated.iter().map(|r| r.0).collect()),
            },
            "concurrency": SCALE_CONCURRENCY,
        })
    }
}

/// Starts one node and measures it at 10,000 licences, then its issuance and verify
/// throughput, then at `--licences`. Returns the node still running.
async fn one_node(run: &Run) -> anyhow::Result<(NodeProcess, OneNode)> {
    run.section("one node");
    // All load comes from one address. The benchmark measures the node, not its per-client
    // rate limit: at ~60k verifications/s the test kit's million per minute runs out within
    // the run, and 429s would be answered and counted instead of verdicts.
    let node = NodeProcess::start(&run.net.node_config(
        "gd.transport",
        Some(&[]),
        &format!("public_requests_per_minute = 1000000000\n{CHECKPOINTS_QUICK}"),
    )?)?;
    let target = Target {
        url: node.url.clone(),
        pid: node.pid(),
        data_dir: run.net.dir.path().join("gd.transport").join("data"),
        generator: Generator::detect(run.net.dir.path()),
    };
    eprintln!("verify load generator: {}", target.generator.describe());
    let small = scale_small(run, &target).await?;
    let issue = issuance(run, &target.url).await?;
    let verify = verify_paths(run, &target, small.qrs.clone()).await?;
    let have = small.licences + issue.single.ops + issue.bulk_licences;
    let large = scale_large(run, &target, have, &small.qrs).await?;
    let one = OneNode {
        verify_load_generator: target.generator.describe(),
        small,
        issue,
        verify,
        large,
    };
    Ok((node, one))
}

/// Verify latency and disk use with 10,000 licences on the ledger.
struct SmallScale {
    licences: u64,
    /// QR texts of 2,000 of them, verified again at the large size.
    qrs: Arc<Vec<String>>,
    load: Load,
    disk_bytes_per_licence: f64,
}

async fn scale_small(run: &Run, target: &Target) -> anyhow::Result<SmallScale> {
    let (http, url) = (&run.http, &target.url);
    let (qrs, _) = bulk_import(http, url, 0, 10_000, 2_000).await?;
    settle(&target.data_dir).await;
    // The same licences are verified again at the large size: the ratio then shows what
    // the ledger's size does, not what a larger working set does (measured too, in
    // `scale_large`).
    let qrs = Arc::new(qrs);
    let load = scale_load(&target.generator, http, url, qrs.clone(), run.secs).await?;
    let disk = dir_bytes(&target.data_dir) as f64 / 10_000.0;
    eprintln!(
        "at 10,000 licences: verify p99 {:.2} ms, {disk:.0} bytes/licence on disk",
        load.p99_ms
    );
    Ok(SmallScale {
        licences: 10_000,
        qrs,
        load,
        disk_bytes_per_licence: disk,
    })
}

/// Durable issuance: single requests at concurrency 64, then bulk import.
struct Issuance {
    single: Load,
    bulk_licences: u64,
    bulk_per_s: f64,
}

async fn issuance(run: &Run, url: &str) -> anyhow::Result<Issuance> {
    let (h, u) = (run.http.clone(), url.to_owned());
    let single = drive(run.secs, 64, move |n| {
        let (h, u) = (h.clone(), u.clone());
        async move {
            h.post(format!("{u}/v1/licences"))
                .bearer_auth(TOKEN)
                .json(&driving_body(50_000_000 + n))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 201)
        }
    })
    .await;
    let single_rate = single.per_s();
    eprintln!(
        "issue, single requests at concurrency 64: {single_rate:.0}/s (p99 {:.1} ms)",
        single.p99_ms
    );
    let bulk_n = if run.quick { 10_000 } else { 100_000 };
    let (_, bulk_rate) = bulk_import(&run.http, url, 60_000_000, bulk_n, 0).await?;
    eprintln!("issue, bulk import: {bulk_rate:.0}/s");
    Ok(Issuance {
        single,
        bulk_licences: bulk_n,
        bulk_per_s: bulk_rate,
    })
}

/// Verify throughput for licences on the ledger (fast path) and for credentials whose
/// signature must be checked, and a trivial axum JSON handler's under the same load (the
/// HTTP limit of the machine, `huren-trivial`).
struct VerifyPaths {
    fast: Load,
    signature: Load,
    trivial: Load,
}

/// `huren-trivial` running, killed when dropped.
struct Trivial {
    child: std::process::Child,
    url: String,
}

impl Trivial {
    fn start() -> anyhow::Result<Trivial> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(huren_tests::binary("huren-trivial"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting huren-trivial")?;
        let stdout = child.stdout.take().context("its stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let url = line.trim().to_owned();
        anyhow::ensure!(url.starts_with("http://"), "huren-trivial said {line:?}");
        Ok(Trivial { child, url })
    }
}

impl Drop for Trivial {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn verify_paths(
    run: &Run,
    target: &Target,
    ledger_qrs: Arc<Vec<String>>,
) -> anyhow::Result<VerifyPaths> {
    let (generator, http, url) = (&target.generator, &run.http, &target.url);
    let fast = verify_load(generator, http, url, ledger_qrs, run.secs, 64).await?;
    let sig_key = huren_genesis::keys::read_issuer_key(&huren_genesis::keys::issuer_key_path(
        &run.net.keys,
        "gd.transport",
    ))?
    .1;
    let sig_qrs = Arc::new(offline_credentials(&sig_key, 2_000)?);
    let slow = verify_load(generator, http, url, sig_qrs.clone(), run.secs, 64).await?;
    let baseline = Trivial::start()?;
    let trivial = verify_load(generator, http, &baseline.url, sig_qrs, run.secs, 64).await?;
    drop(baseline);
    let (fast_rate, slow_rate) = (fast.per_s(), slow.per_s());
    eprintln!("verify fast path {fast_rate:.0}/s (p99 {:.2} ms), signature path {slow_rate:.0}/s (p99 {:.2} ms), trivial handler {:.0}/s", fast.p99_ms, slow.p99_ms, trivial.per_s());
    Ok(VerifyPaths {
        fast,
        signature: slow,
        trivial,
    })
}

/// Verify latency and disk use at `--licences`.
struct LargeScale {
    /// Licences on the ledger, as the node counts them.
    licences: u64,
    /// The licences measured at the small size.
    load: Load,
    disk_bytes_per_licence: f64,
    /// Licences sampled across the whole ledger.
    spread: Load,
    spread_sampled: usize,
    /// Seconds to grow the ledger to this size through the batch API.
    import_seconds: f64,
    /// p99 (ms) of alternated rounds: a node holding 10,000 licences, then this one.
    alternated: Vec<(f64, f64)>,
    /// The node's resident memory after both measurements (the warm-up included).
    rss_bytes: Option<u64>,
}

/// Grows the ledger from `have` licences to `--licences` and measures again.
async fn scale_large(
    run: &Run,
    target: &Target,
    have: u64,
    first_qrs: &Arc<Vec<String>>,
) -> anyhow::Result<LargeScale> {
    let (generator, http, url, big) = (&target.generator, &run.http, &target.url, run.licences);
    let mut ledger_qrs = first_qrs.to_vec();
    let t0 = Instant::now();
    if big > have {
        let chunk = 100_000;
        let mut done = 0;
        while done < big - have {
            let n = chunk.min(big - have - done);
            // Keep some of every chunk, so the large measurement reads across the ledger.
            let (more, rate) = bulk_import(http, url, 100_000_000 + done, n, 2_000).await?;
            ledger_qrs.extend(more);
            done += n;
            eprintln!("  ledger at {} licences ({rate:.0}/s)", have + done);
        }
        eprintln!(
            "grew the ledger to {big} in {:.0} s",
            t0.elapsed().as_secs_f64()
        );
    }
    let total_licences = aget(http, &format!("{url}/healthz")).await?["licences"]
        .as_u64()
        .unwrap_or(0);
    // Once the node has finished writing behind the import (as before the small
    // measurement): the licences measured at 10,000, then licences spread across the
    // whole ledger.
    settle(&target.data_dir).await;
    let import_seconds = t0.elapsed().as_secs_f64();
    let large = scale_load(generator, http, url, first_qrs.clone(), run.secs).await?;
    let spread_n = ledger_qrs.len();
    let spread = scale_load(generator, http, url, Arc::new(ledger_qrs), run.secs).await?;
    let rss = rss_bytes(target.pid);
    let alternated = alternated_rounds(run, target, first_qrs).await?;
    let large_disk = dir_bytes(&target.data_dir) as f64 / total_licences.max(1) as f64;
    eprintln!(
        "at {total_licences} licences: verify p99 {:.2} ms, {large_disk:.0} bytes/licence on disk, node RSS {} MiB",
        large.p99_ms,
        rss.map_or(0, |b| b >> 20)
    );
    Ok(LargeScale {
        licences: total_licences,
        load: large,
        disk_bytes_per_licence: large_disk,
        spread,
        spread_sampled: spread_n,
        import_seconds,
        alternated,
        rss_bytes: rss,
    })
}

/// Rounds of the p99 comparison between sizes.
const ALTERNATED_ROUNDS: usize = 3;

/// The p99 at 16 in flight of a node with 10,000 licences and of the large node, measured
/// in alternated rounds while both are up: one sample per size, minutes apart, varied
/// from 0.4 to 2.4 ms at the same size on this machine, too much for a ratio of 1.5.
/// The small node is another department's (sh.transport), fed the same way.
async fn alternated_rounds(
    run: &Run,
    large: &Target,
    large_qrs: &Arc<Vec<String>>,
) -> anyhow::Result<Vec<(f64, f64)>> {
    let node = NodeProcess::start(&run.net.config(
        "sh.transport",
        &format!("public_requests_per_minute = 1000000000\n{CHECKPOINTS_QUICK}"),
    )?)?;
    let data_dir = run.net.path("sh.transport").join("data");
    let (qrs, _) = bulk_import(&run.http, &node.url, 0, 10_000, 2_000).await?;
    settle(&data_dir).await;
    let qrs = Arc::new(qrs);
    let mut rounds = Vec::with_capacity(ALTERNATED_ROUNDS);
    for _ in 0..ALTERNATED_ROUNDS {
        let small = scale_load(
            &large.generator,
            &run.http,
            &node.url,
            qrs.clone(),
            run.secs,
        )
        .await?;
        let big = scale_load(
            &large.generator,
            &run.http,
            &large.url,
            large_qrs.clone(),
            run.secs,
        )
        .await?;
        eprintln!(
            "  alternated round: p99 {:.2} ms at 10,000, {:.2} ms at the large size",
            small.p99_ms, big.p99_ms
        );
        rounds.push((small.p99_ms, big.p99_ms));
    }
    node.stop()?;
    Ok(rounds)
}

/// The median of `v` (the mean of the middle two for an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `huren-node usage --json` of the stopped node `name`'s data directory: entries, key
/// and value bytes per tree, the bytes on disk and the licences held.
fn tree_usage(run: &Run, name: &str) -> anyhow::Result<Value> {
    let out = std::process::Command::new(huren_tests::binary("huren-node"))
        .arg("usage")
        .arg("--json")
        .arg("--data")
        .arg(run.net.path(name).join("data"))
        .arg("--genesis")
        .arg(&run.net.genesis)
        .output()
        .context("running huren-node usage")?;
    anyhow::ensure!(
        out.status.success(),
        "huren-node usage failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The tree-by-tree table of `tree_usage`'s answer for results.md, per licence.
fn usage_rows(u: &Value) -> String {
    let n = u["licences"].as_f64().unwrap_or(0.0).max(1.0);
    let mut rows = String::new();
    let mut logical = 0.0;
    for t in u["trees"].as_array().into_iter().flatten() {
        let entries = t["entries"].as_u64().unwrap_or(0);
        if entries == 0 {
            continue;
        }
        let bytes =
            t["key_bytes"].as_f64().unwrap_or(0.0) + t["value_bytes"].as_f64().unwrap_or(0.0);
        logical += bytes;
        rows.push_str(&format!(
            "| {} | {entries} | {:.1} |\n",
            t["tree"].as_str().unwrap_or("?"),
            bytes / n
        ));
    }
    let disk = u["disk_bytes"].as_f64().unwrap_or(0.0);
    rows.push_str(&format!(
        "| keys and values, all trees | – | {:.1} |\n| on disk (sled's pages and log) | – | {:.1} (× {:.2} the keys and values) |\n",
        logical / n,
        disk / n,
        disk / logical.max(1.0)
    ));
    rows
}

// ---- 4. Catch-up of a fresh node.

struct CatchUp {
    licences: u64,
    blocks: u64,
    seconds: f64,
    records_per_s: f64,
    replica_disk_bytes_per_licence: f64,
}

impl CatchUp {
    fn json(&self) -> Value {
        json!({"licences": self.licences, "blocks": self.blocks, "seconds": self.seconds, "records_per_s": self.records_per_s, "replica_disk_bytes_per_licence": self.replica_disk_bytes_per_licence})
    }
}

/// A fresh node syncing the ledger of `node`, which holds `total_licences`; returns both
/// running (the checkpoint phase goes on with them).
async fn catch_up(
    run: &Run,
    node: &NodeProcess,
    total_licences: u64,
) -> anyhow::Result<(CatchUp, NodeProcess)> {
    run.section("catch-up");
    let http = &run.http;
    let boot = vec![node.p2p.clone().unwrap_or_default()];
    let target = height_at(http, &node.url, "gd.transport").await;
    let t0 = Instant::now();
    let fresh = NodeProcess::start(&run.net.node_config(
        "sh.market",
        Some(&boot),
        CHECKPOINTS_QUICK,
    )?)?;
    let fresh_url = fresh.url.clone();
    wait_for(3600, "the fresh node to catch up", || {
        height_at(http, &fresh_url, "gd.transport").then(|h| async move { h >= target })
    })
    .await?;
    let catchup_secs = t0.elapsed().as_secs_f64();
    let catchup_rate = total_licences as f64 / catchup_secs;
    eprintln!("fresh node synced {total_licences} licences ({target} blocks) in {catchup_secs:.1} s: {catchup_rate:.0} records/s");
    // A replica holds blocks and the index, not the issuer's private credentials.
    let replica_disk = dir_bytes(&run.net.dir.path().join("sh.market").join("data")) as f64
        / total_licences.max(1) as f64;
    eprintln!("replica: {replica_disk:.0} bytes/licence on disk");
    Ok((
        CatchUp {
            licences: total_licences,
            blocks: target,
            seconds: catchup_secs,
            records_per_s: catchup_rate,
            replica_disk_bytes_per_licence: replica_disk,
        },
        fresh,
    ))
}

// ---- 4b. Checkpoints, proofs and the offline bundle at the large ledger.

/// The department re-signs its checkpoint every 2 s while idle (instead of every minute),
/// so the phases below need not wait: a checkpoint with its quorum follows every change.
const CHECKPOINTS_QUICK: &str = "checkpoint_interval_ms = 2000";
/// Checkpoints as good as off: one an hour (the overhead comparison).
const CHECKPOINTS_OFF: &str =
    "checkpoint_spacing_ms = 3600000\ncheckpoint_interval_ms = 3600000\ncheckpoint_age_ms_max = 3600001";
/// Changes in "a day" for the delta figure: 2 % of a million licences revoked or suspended
/// over a six-year validity is about 10 a day; this is ten times that.
const DAY_CHANGES: u64 = 100;

struct CheckpointFigures {
    licences: u64,
    status_entries: u64,
    bundle_bytes: u64,
    delta_bytes: u64,
    delta_changes: u64,
    offline_verify_per_s_one_core: f64,
    proof: Load,
    revocations_per_s: f64,
    /// Sustained replication records/s with checkpoints, and without.
    replication_with: f64,
    replication_without: f64,
}

impl CheckpointFigures {
    /// The mean sustained rate of the runs with checkpoints and of those without.
    fn with_overhead(mut self, with: &[&Vec<Propagation>], without: &[&Vec<Propagation>]) -> Self {
        let sustained = |runs: &[&Vec<Propagation>]| {
            let rates: Vec<f64> = runs
                .iter()
                .filter_map(|v| v.iter().find(|p| p.load == "sustained"))
                .map(|p| p.records_per_s_all_nodes)
                .collect();
            rates.iter().sum::<f64>() / rates.len().max(1) as f64
        };
        self.replication_with = sustained(with);
        self.replication_without = sustained(without);
        self
    }

    fn json(&self) -> Value {
        let overhead = 1.0 - self.replication_with / self.replication_without.max(1.0);
        json!({
            "licences": self.licences,
            "status_entries": self.status_entries,
            "bundle_bytes": self.bundle_bytes,
            "delta_bytes": self.delta_bytes,
            "delta_changes": self.delta_changes,
            "offline_verify_per_s_one_core": self.offline_verify_per_s_one_core,
            "proof": {"per_s": self.proof.per_s(), "p50_ms": self.proof.p50_ms, "p99_ms": self.proof.p99_ms},
            "revocations_per_s": self.revocations_per_s,
            "replication_sustained_with_checkpoints": self.replication_with,
            "replication_sustained_without_checkpoints": self.replication_without,
            "checkpoint_overhead": overhead,
        })
    }
}

/// A department's lifecycle action on licence serial `n` of gd.transport's mvdl.
async fn lifecycle(http: &reqwest::Client, url: &str, n: u64, action: &str) -> bool {
    let body = match action {
        "revoke" => json!({"reason": "penalty"}),
        _ => json!({"reason": "investigation"}),
    };
    http.post(format!("{url}/v1/licences/gd.transport:mvdl:{n}/{action}"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// The height of gd.transport's counted checkpoint at `url`.
async fn counted_height(http: &reqwest::Client, url: &str) -> u64 {
    let Ok(v) = aget(http, &format!("{url}/v1/checkpoints")).await else {
        return 0;
    };
    v["departments"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["department"] == "gd.transport"))
        .and_then(|d| d["counted"]["height"].as_u64())
        .unwrap_or(0)
}

/// With the large ledger at gd.transport and a synced replica (sh.market): a second
/// witness (gd.market) syncs, 2 % of the licences are revoked, then the bundle, a day's
/// delta, offline verification with the bundle on one core, and proof serving.
async fn checkpoints(
    run: &Run,
    node: &NodeProcess,
    replica: NodeProcess,
    licences: u64,
    ledger_qrs: &Arc<Vec<String>>,
) -> anyhow::Result<CheckpointFigures> {
    run.section("checkpoints, proofs, bundle");
    let http = &run.http;
    let boot = vec![node.p2p.clone().unwrap_or_default()];
    let witness = NodeProcess::start(&run.net.node_config(
        "gd.market",
        Some(&boot),
        CHECKPOINTS_QUICK,
    )?)?;
    let target = height_at(http, &node.url, "gd.transport").await;
    let witness_url = witness.url.clone();
    wait_for(3600, "the second witness to catch up", || {
        height_at(http, &witness_url, "gd.transport").then(|h| async move { h >= target })
    })
    .await?;

    // 2 % revoked, 32 requests in flight (each revocation is its own request).
    let revoke: Vec<u64> = (1..=licences).filter(|n| n % 50 == 0).collect();
    let t0 = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let work = Arc::new(std::sync::Mutex::new(revoke.clone().into_iter()));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (http, url, work, done) =
                (http.clone(), node.url.clone(), work.clone(), done.clone());
            tokio::spawn(async move {
                loop {
                    let next = work.lock().map(|mut w| w.next()).unwrap_or(None);
                    let Some(n) = next else { break };
                    if lifecycle(&http, &url, n, "revoke").await {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let revocations_per_s = done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
    eprintln!(
        "revoked {} of {licences} licences at {revocations_per_s:.0}/s",
        done.load(Ordering::Relaxed)
    );

    let head = height_at(http, &node.url, "gd.transport").await;
    let replica_url = replica.url.clone();
    wait_for(120, "a counted checkpoint with the revocations", || {
        counted_height(http, &replica_url).then(|h| async move { h >= head })
    })
    .await?;
    let bundle = http
        .get(format!("{replica_url}/v1/bundle"))
        .send()
        .await?
        .bytes()
        .await?
        .to_vec();
    let net = run.net.network()?;
    let verified = huren_core::bundle::Bundle::decode(&bundle)?
        .verify(&net)
        .map_err(|e| anyhow::anyhow!("the bundle does not verify: {e}"))?;
    let status_entries = verified
        .checkpoint(&DepartmentId::parse("gd.transport")?)
        .map_or(0, |c| c.checkpoint.status_count);
    eprintln!(
        "bundle: {} bytes, {status_entries} revoked or suspended",
        bundle.len()
    );

    // A day: DAY_CHANGES more changes, half suspensions, half revocations.
    let since = verified
        .version()
        .iter()
        .map(|(d, h)| format!("{d}:{h}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut changed = 0;
    for i in 0..DAY_CHANGES {
        let n = 25 + 50 * i; // not among the 2 % revoked
        let action = if i % 2 == 0 { "suspend" } else { "revoke" };
        changed += u64::from(lifecycle(http, &node.url, n, action).await);
    }
    let head = height_at(http, &node.url, "gd.transport").await;
    wait_for(120, "a counted checkpoint with the day's changes", || {
        counted_height(http, &replica_url).then(|h| async move { h >= head })
    })
    .await?;
    let delta = http
        .get(format!("{replica_url}/v1/bundle"))
        .query(&[("since", since.as_str())])
        .send()
        .await?
        .bytes()
        .await?
        .to_vec();
    let next = verified
        .apply(&huren_core::bundle::Delta::decode(&delta)?, &net)
        .map_err(|e| anyhow::anyhow!("the delta does not apply: {e}"))?;
    eprintln!("one day's delta ({changed} changes): {} bytes", delta.len());

    // Offline verification with the bundle, one core: decode, signature, mandate,
    // validity, the status lookup.
    let key = huren_genesis::keys::read_issuer_key(&huren_genesis::keys::issuer_key_path(
        &run.net.keys,
        "gd.transport",
    ))?
    .1;
    let qrs = offline_credentials(&key, 2_000)?;
    let rules = net.checkpoint_rules();
    let now_ms = (now_s() as u64) * 1000;
    let ctx = huren_core::VerifyContext {
        now: now_s(),
        region: None,
    };
    let facts = |id: &LicenceId, commitment: &huren_core::Hash32| huren_core::LedgerFacts::Bundle {
        status: next.status(id).ledger_status(),
        expired: next.freshness(id.department(), now_ms, &rules)
            == Some(huren_core::bundle::Freshness::Expired),
        as_of: 0,
        superseded: next.superseded(id, commitment),
    };
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < run.secs {
        let d = huren_core::verify::decide_text(&net, &qrs[n as usize % qrs.len()], &facts, &ctx);
        anyhow::ensure!(
            d.verdict == huren_core::Verdict::Valid,
            "offline verdict {:?}: {}",
            d.verdict,
            d.detail
        );
        n += 1;
    }
    let offline_rate = n as f64 / t0.elapsed().as_secs_f64();
    eprintln!("offline verify with the bundle: {offline_rate:.0}/s on one core");

    // Proof serving at the replica: licences on the ledger, 16 in flight.
    let (h, u, q) = (http.clone(), replica_url.clone(), ledger_qrs.clone());
    let proof = drive(run.secs, 16, move |i| {
        let (h, u, q) = (h.clone(), u.clone(), q.clone());
        async move {
            let qr = &q[i as usize % q.len()];
            match h
                .post(format!("{u}/v1/verify?proof=1"))
                .json(&json!({ "qr": qr }))
                .send()
                .await
            {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["proof"].is_object()),
                Err(_) => false,
            }
        }
    })
    .await;
    eprintln!(
        "proofs: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        proof.per_s(),
        proof.p50_ms,
        proof.p99_ms
    );
    witness.stop()?;
    replica.stop()?;
    Ok(CheckpointFigures {
        licences,
        status_entries,
        bundle_bytes: bundle.len() as u64,
        delta_bytes: delta.len() as u64,
        delta_changes: changed,
        offline_verify_per_s_one_core: offline_rate,
        proof,
        revocations_per_s,
        replication_with: 0.0,
        replication_without: 0.0,
    })
}

// ---- 5. Replication across 4 nodes.

/// Records reaching every node and their propagation delay, under one load.
struct Propagation {
    load: &'static str,
    records: u64,
    records_per_s_all_nodes: f64,
    p50_ms_le: f64,
    p99_ms_le: f64,
    block_arrivals: u64,
}

impl Propagation {
    fn json(&self) -> Value {
        json!({"load": self.load, "records": self.records, "records_per_s_all_nodes": self.records_per_s_all_nodes, "propagation_p50_ms_le": self.p50_ms_le, "propagation_p99_ms_le": self.p99_ms_le, "block_arrivals": self.block_arrivals})
    }
}

/// Four connected nodes of a network of their own, issuance at the first one: light load,
/// then sustained load.
async fn replication(run: &Run, limits: &str, light: bool) -> anyhow::Result<Vec<Propagation>> {
    run.section(if limits.is_empty() {
        "replication, 4 nodes"
    } else {
        "replication, 4 nodes, checkpoints off"
    });
    let net4 = TestNetwork::new()?;
    let mut nodes: Vec<NodeProcess> = Vec::new();
    for name in ["gd.transport", "gd.market", "sh.transport", "sh.market"] {
        let boot: Vec<String> = nodes.iter().filter_map(|n| n.p2p.clone()).collect();
        nodes.push(NodeProcess::start(&net4.node_config(
            name,
            Some(&boot),
            limits,
        )?)?);
    }
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let (http, urls) = (&run.http, urls.as_slice());
    wait_for(30, "4 nodes to connect", || async move {
        for u in urls {
            let peers = aget(http, &format!("{u}/v1/peers"))
                .await
                .ok()
                .and_then(|v| v.as_array().map(Vec::len))
                .unwrap_or(0);
            if peers < 3 {
                return false;
            }
        }
        true
    })
    .await?;
    let mut repl = Vec::new();
    // Light load: one licence at a time; then sustained bulk load (only that when the
    // run is one of the comparison's).
    let loads: &[(&'static str, u64, usize)] = if light {
        &[("light", 1, 1), ("sustained", 200, 4)]
    } else {
        &[("sustained", 200, 4)]
    };
    for &(label, batch, conc) in loads {
        repl.push(propagation(run, urls, label, batch, conc).await?);
        // The histograms are cumulative: the sustained phase's quantiles include the
        // light phase's few dozen arrivals, which can only make them look better by a hair.
    }
    for n in nodes {
        n.stop()?;
    }
    Ok(repl)
}

/// Issues at `urls[0]` for `--seconds`, `batch` licences per request with `conc` requests
/// in flight, until every node holds the last block; the delays are the other nodes'.
async fn propagation(
    run: &Run,
    urls: &[String],
    label: &'static str,
    batch: u64,
    conc: usize,
) -> anyhow::Result<Propagation> {
    let http = &run.http;
    let (h, u) = (http.clone(), urls[0].clone());
    let t0 = Instant::now();
    let load = drive(run.secs, conc, move |n| {
        let (h, u) = (h.clone(), u.clone());
        async move {
            let licences: Vec<Value> = (0..batch)
                .map(|i| driving_body(200_000_000 + n * 1000 + i))
                .collect();
            let ok = h
                .post(format!("{u}/v1/licences:batch"))
                .bearer_auth(TOKEN)
                .json(&json!({ "licences": licences }))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if batch == 1 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            ok
        }
    })
    .await;
    let issued = load.ops * batch;
    let final_head = height_at(http, &urls[0], "gd.transport").await;
    wait_for(120, "every node to hold the last block", || async move {
        for u in &urls[1..] {
            if height_at(http, u, "gd.transport").await < final_head {
                return false;
            }
        }
        true
    })
    .await?;
    let all_secs = t0.elapsed().as_secs_f64();
    let (p50, p99, count) = propagation_quantiles(http, &urls[1..]).await?;
    let rate = issued as f64 / all_secs;
    eprintln!("{label}: {issued} records reached all 4 nodes at {rate:.0} records/s; propagation p50 ≤ {:.1} ms, p99 ≤ {:.1} ms ({count} block arrivals)", p50 * 1e3, p99 * 1e3);
    Ok(Propagation {
        load: label,
        records: issued,
        records_per_s_all_nodes: rate,
        p50_ms_le: p50 * 1e3,
        p99_ms_le: p99 * 1e3,
        block_arrivals: count,
    })
}

/// p50 and p99 (seconds, bucket upper bounds) and count of block arrivals at `peers`,
/// from their propagation histograms.
async fn propagation_quantiles(
    http: &reqwest::Client,
    peers: &[String],
) -> anyhow::Result<(f64, f64, u64)> {
    let mut merged = String::new();
    for u in peers {
        merged.push_str(
            &http
                .get(format!("{u}/metrics"))
                .send()
                .await?
                .text()
                .await?,
        );
    }
    // Sum the three peers' histograms bucket by bucket.
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    for line in merged
        .lines()
        .filter(|l| l.starts_with("huren_net_propagation_seconds_bucket"))
    {
        if let Some((k, v)) = line.rsplit_once(' ') {
            *sums.entry(k.to_owned()).or_default() += v.parse::<u64>().unwrap_or(0);
        }
    }
    let text: String = sums.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    Ok(histogram_quantiles(&text, "huren_net_propagation_seconds"))
}

// ---- Report.

/// Writes `results.json` and `results.md` to `out` and prints the table.
fn report(out: &Path, results: &Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let json_path = out.join("results.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(results)?)?;
    let md_path = out.join("results.md");
    std::fs::write(&md_path, markdown(results))?;
    println!("{}", markdown(results));
    println!("wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

fn markdown(r: &Value) -> String {
    let f = |v: &Value| {
        v.as_f64().map_or("–".to_owned(), |x| {
            if x >= 100.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.2}")
            }
        })
    };
    let l = &r["limits"];
    let o = &r["one_node"];
    let s = &r["scale"];
    let mut md = String::new();
    md.push_str("# Huren benchmark\n\n");
    md.push_str(&format!(
        "Machine: {} cores, {}, {}; quick = {}; {} s per measurement; run took {} s.\n\n",
        r["machine"]["cores"],
        r["machine"]["cpu"].as_str().unwrap_or("?"),
        r["machine"]["memory"].as_str().unwrap_or("?"),
        r["machine"]["quick"],
        r["machine"]["seconds_per_measurement"],
        f(&r["machine"]["total_seconds"])
    ));
    md.push_str("| limit | figure |\n|---|---|\n");
    for (k, name) in [
        ("ed25519_sign_per_s_one_core", "Ed25519 sign /s, one core"),
        ("ed25519_sign_per_s_all_cores", "Ed25519 sign /s, all cores"),
        (
            "ed25519_verify_per_s_one_core",
            "Ed25519 verify_strict /s, one core",
        ),
        (
            "ed25519_verify_per_s_all_cores",
            "Ed25519 verify_strict /s, all cores",
        ),
        (
            "ed25519_batch_verify_per_s_all_cores",
            "Ed25519 batch verify /s (64 per batch), all cores",
        ),
        ("sha256_bytes_per_s", "SHA-256 bytes/s, one core"),
        ("fdatasync_4k_appends_per_s", "4 KiB append + fdatasync /s"),
    ] {
        md.push_str(&format!("| {name} | {} |\n", f(&l[k])));
    }
    md.push_str(&format!(
        "\nVerify load from {}; the client CPU share is the load generator's part of all cores.\n",
        o["verify_load_generator"].as_str().unwrap_or("?")
    ));
    md.push_str("\n| measurement | per second | p50 ms | p99 ms | client CPU | ratio | target |\n|---|---|---|---|---|---|---|\n");
    let row = |md: &mut String, name: &str, v: &Value, ratio_key: &str, target: &str| {
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {target} |\n",
            f(&v["per_s"]),
            f(&v["p50_ms"]),
            f(&v["p99_ms"]),
            f(&v["client_cpu_share"]),
            f(&v[ratio_key])
        ));
    };
    row(
        &mut md,
        "trivial axum JSON handler (the HTTP baseline)",
        &o["trivial_handler"],
        "-",
        "–",
    );
    row(
        &mut md,
        "verify, fast path (on ledger); ratio to the trivial handler",
        &o["verify_fast_path"],
        "ratio_to_trivial",
        "≥ 0.8 × trivial",
    );
    row(
        &mut md,
        "verify, signature path; ratio to the fast path",
        &o["verify_signature_path"],
        "ratio_to_fast",
        "≥ 0.8 × fast",
    );
    row(
        &mut md,
        "issue, single requests, concurrency 64",
        &o["issue_single_concurrency_64"],
        "ratio_to_2x_sign",
        "–",
    );
    row(
        &mut md,
        "issue, bulk import (durable)",
        &o["issue_bulk"],
        "ratio_to_2x_sign",
        "≥ 0.3 × 2 × sign",
    );
    md.push_str("\n| replication (4 nodes) | records/s at all nodes | propagation p50 ms ≤ | p99 ms ≤ | target |\n|---|---|---|---|---|\n");
    for x in r["replication"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "| {} | {} | {} | {} | ≥ 5000/s, p99 < 500 ms |\n",
            x["load"].as_str().unwrap_or(""),
            f(&x["records_per_s_all_nodes"]),
            f(&x["propagation_p50_ms_le"]),
            f(&x["propagation_p99_ms_le"])
        ));
    }
    md.push_str(&format!(
        "\n| catch-up | {} licences in {} s: **{} records/s** (target ≥ 50,000); the replica stores {} bytes/licence |\n|---|---|\n",
        r["catch_up"]["licences"],
        f(&r["catch_up"]["seconds"]),
        f(&r["catch_up"]["records_per_s"]),
        f(&r["catch_up"]["replica_disk_bytes_per_licence"])
    ));
    md.push_str(&format!(
        "\nScale latency at {} concurrent requests, after a warm-up pass; small and large verify the same 2,000 licences, \"large, spread\" verifies {} licences sampled across the whole ledger.\n\n| scale | licences | verify /s | verify p99 ms | disk bytes/licence |\n|---|---|---|---|---|\n| small | {} | {} | {} | {} |\n| large | {} | {} | {} | {} |\n| large, spread | {} | {} | {} | – |\n\np99 ratio large/small: {} (target ≤ 1.5); spread/small: {}; in {} alternated rounds with a 10,000-licence node up beside the large one (p99 ms, 10,000 / large: {}), the ratio of the medians: **{}**; disk target ≤ 400 bytes/licence. Growing the ledger to {} licences took {} s; the node's resident memory after the measurements: {} MiB (goal at 10 M: ≤ 1 GiB).\n",
        s["concurrency"], s["spread"]["licences_sampled"], s["small"]["licences"], f(&s["small"]["verify_per_s"]), f(&s["small"]["verify_p99_ms"]), f(&s["small"]["disk_bytes_per_licence"]),
        s["large"]["licences"], f(&s["large"]["verify_per_s"]), f(&s["large"]["verify_p99_ms"]), f(&s["large"]["disk_bytes_per_licence"]),
        s["large"]["licences"], f(&s["spread"]["verify_per_s"]), f(&s["spread"]["verify_p99_ms"]),
        f(&s["p99_ratio_large_to_small"]), f(&s["p99_ratio_spread_to_small"]),
        s["alternated"]["rounds"].as_array().map_or(0, Vec::len),
        s["alternated"]["rounds"].as_array().into_iter().flatten().map(|r| format!("{} / {}", f(&r["p99_ms_10k"]), f(&r["p99_ms_large"]))).collect::<Vec<_>>().join(", "),
        f(&s["alternated"]["p99_ratio_median"]),
        s["large"]["licences"], f(&s["large"]["import_seconds"]),
        s["large"]["node_rss_bytes"].as_f64().map_or("?".to_owned(), |b| format!("{:.0}", b / 1048576.0))
    ));
    for (side, what) in [
        ("issuing", "the issuing node (gd.transport)"),
        ("replica", "the replica (sh.market, caught up)"),
    ] {
        let u = &r["disk"][side];
        md.push_str(&format!(
            "\nDisk of {what} at the end of the run, by tree ({} licences): bytes of keys and values per licence as sled holds them, and the directory on disk.\n\n| tree | entries | bytes/licence |\n|---|---|---|\n{}",
            u["licences"],
            usage_rows(u)
        ));
    }
    md.push_str(&baseline::markdown(r, &f));
    let ins = &r["instructions"];
    md.push_str(&match ins["error"].as_str() {
        Some(e) => format!("\nInstruction counts: not measured ({e}).\n"),
        None => format!(
            "\nInstructions (user space, all threads of the node, {}, {} build; repeatable to within about 1 %, unlike the rates above):\n\n| figure | instructions |\n|---|---|\n| one fast-path verify (HTTP, JSON, decode, ledger read, report), mean of {} | {} |\n| one issued licence in a bulk import (1,000 a request), mean of {} | {} |\n",
            ins["tool"].as_str().unwrap_or("?"),
            ins["profile"].as_str().unwrap_or("?"),
            ins["n_verify"],
            f(&ins["verify_fast_path_instructions"]),
            ins["n_issue"],
            f(&ins["issue_instructions_per_licence"]),
        ),
    });
    let c = &r["checkpoints"];
    md.push_str(&format!(
        "\nCheckpoints, proofs and the offline bundle at {} licences with {} revoked or suspended (three nodes: the issuer and two witnesses):\n\n| figure | value | target |\n|---|---|---|\n| bundle | {} bytes | ≤ 400 KB |\n| delta after a day ({} changes) | {} bytes | ≤ 10 KB |\n| offline verify with the bundle, one core | {} /s | ≥ 10,000 |\n| proof serving (`?proof=1`, 16 in flight) | {} /s, p50 {} ms, p99 {} ms | p99 < 5 ms |\n| sustained replication with / without checkpoints (mean of two runs each, alternated) | {} / {} records/s: overhead {} | ≤ 5 % |\n| revocations (one request each, 32 in flight) | {} /s | – |\n",
        c["licences"], c["status_entries"], c["bundle_bytes"], c["delta_changes"], c["delta_bytes"],
        f(&c["offline_verify_per_s_one_core"]), f(&c["proof"]["per_s"]), f(&c["proof"]["p50_ms"]), f(&c["proof"]["p99_ms"]),
        f(&c["replication_sustained_with_checkpoints"]), f(&c["replication_sustained_without_checkpoints"]),
        c["checkpoint_overhead"].as_f64().map_or("–".to_owned(), |x| format!("{:.1} %", x * 100.0)),
        f(&c["revocations_per_s"])
    ));
    md.push_str("\n| licence type | QR characters | QR version (M) |\n|---|---|---|\n");
    for q in r["qr"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "| {} {} | {} | {} |\n",
            q["licence_type"].as_str().unwrap_or(""),
            q["name"].as_str().unwrap_or(""),
            q["characters"],
            q["qr_version_m"]
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 1s test @ http://127.0.0.1:18080/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.79ms    2.67ms  16.20ms   73.03%
    Req/Sec   508.50     30.65   555.00     70.00%
  Latency Distribution
     50%  812.00us
     75%    9.52ms
     90%   10.81ms
     99%    1.20s
  507 requests in 1.00s, 2.31MB read
Requests/sec:    506.82
Transfer/sec:      2.31MB
";

    #[test]
    fn wrk_report_is_read() {
        let load = parse_wrk(REPORT).expect("parsed");
        assert_eq!(load.ops, 507);
        assert!((load.secs - 1.0).abs() < 1e-9);
        assert!((load.p50_ms - 0.812).abs() < 1e-9);
        assert!((load.p99_ms - 1200.0).abs() < 1e-9);
    }

    #[test]
    fn wrk_refusals_and_garbage_are_errors() {
        let refused = REPORT.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 3\nRequests/sec",
        );
        let e = parse_wrk(&refused).expect_err("refused answers");
        assert!(e.to_string().contains("3 of 507"), "{e}");
        assert!(parse_wrk("wrk: unknown option").is_err());
        assert_eq!(wrk_ms("2m"), Some(120_000.0));
        assert_eq!(wrk_ms("fast"), None);
    }
}
