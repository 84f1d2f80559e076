//! Instructions per fast-path verify and per issued licence, counted by valgrind's
//! callgrind in a real `huren-node` (issue 15): figures that a later change can be
//! compared with on any machine, free of the timing noise the throughput figures carry.
//!
//! The node runs under `valgrind --tool=callgrind --instr-atstart=no`, so nothing is
//! counted while it starts. Once it serves, `callgrind_control` turns instrumentation on
//! and zeroes the counters; the harness (outside valgrind) sends exactly N requests one
//! after another on one keep-alive connection; `callgrind_control -d` dumps the total,
//! which is divided by N. What a count includes: every user-space instruction the node
//! executes in that window, on every thread (`--separate-threads=no`): hyper's HTTP
//! parsing, axum routing, JSON, the verify or issue logic, Ed25519 and SHA-256, sled,
//! tokio's scheduler, mimalloc, and libc's side of each system call. The kernel's side
//! (epoll, socket reads and writes, `fsync`) is not counted, nor is anything in the
//! client. Nothing is subtracted.
//!
//! Two choices keep the count a property of the code rather than of the clock, because
//! valgrind runs the node about 50 times slower than natively and anything driven by wall
//! time would be charged 50 times too often:
//! - no libp2p (its ticks run every 250 ms whether or not requests come), and
//! - checkpoints an hour apart: a department signs at most one a `checkpoint_spacing_ms`
//!   however many licences it issues, so their cost per licence depends on the issuance
//!   rate, not on the code of an issue. They are measured by the throughput figures.
//!
//! Issuance is sequential (one batch of 1000 in flight): the bench's bulk import keeps
//! four in flight, which lets the producer merge batches into larger blocks depending on
//! timing; one in flight makes every block exactly one batch.
//!
//! The idle rate (instructions per second with no requests) bounds what timers still add;
//! it is reported so a reader can see that it is negligible against the windows.
//!
//! Valgrind presents its own CPU (no SHA extensions, for example, so SHA-256 runs in
//! software), so these counts are comparable with each other for the same valgrind
//! version, build profile and host CPU family, not with `perf stat` on the bare machine.
//! Two runs on one machine differed by under 1 % (verify) and 0.2 % (issue): which tokio
//! worker takes a request, and so what the allocator finds, still varies.
//!
//! This module must never share a data directory or an issuer key with another node: it
//! founds its own network.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use huren_api::licences::{BatchAnswer, BatchOutcome, BatchRequest, IssueRequest};
use huren_api::verify::{Report, VerifyRequest};
use huren_core::verify::Verdict;
use huren_tests::{driving_body, Launch, NodeProcess, TestNetwork, TOKEN};
use serde_json::{json, Value};

/// Fast-path verifies counted: about 3 s under callgrind on the release build.
pub const VERIFY_N: u64 = 2_000;
/// Licences issued (bulk import) in the counted window: about 30 s under callgrind. With
/// the start, the warm-up and the idle window, `measure` takes about 40 s.
pub const ISSUE_N: u64 = 5_000;

/// Licences per `POST /v1/licences:batch`, as the bench's bulk import sends them (the
/// node's default `batch_licences_max`).
const BATCH_LICENCES: u64 = 1000;
/// Licences issued and verified before counting starts, so that one-off work (lazy
/// statics, the connection, the rate limiter's entry for this client, the first block's
/// allocations) falls outside the windows.
const WARMUP_LICENCES: u64 = 1000;
const WARMUP_VERIFIES: usize = 50;
/// How long the idle rate is measured.
const IDLE: Duration = Duration::from_secs(2);
/// The department whose node is measured.
const DEPARTMENT: &str = "gd.transport";
/// No per-client throttling, and checkpoints as good as off (see the module doc).
const LIMITS: &str = "public_requests_per_minute = 1000000000\n\
checkpoint_spacing_ms = 3600000\ncheckpoint_interval_ms = 3600000\ncheckpoint_age_ms_max = 3600001\n";
/// Holder numbers of the measured licences, apart from the warm-up's.
const FIRST_MEASURED: u64 = 1_000_000;

/// Starts a node of a network of its own under callgrind, counts the instructions of
/// `n_issue` licences issued through the batch API and of `n_verify` fast-path verifies of
/// some of them, and returns the figures for results.json.
pub async fn measure(n_verify: u64, n_issue: u64) -> anyhow::Result<Value> {
    ensure!(
        n_verify >= 1 && n_issue >= n_verify,
        "instructions: verify 1..={n_issue} of the licences issued, not {n_verify}"
    );
    let tool = valgrind_version()?;
    let net = TestNetwork::new()?;
    let config = net.config(DEPARTMENT, LIMITS)?;
    let dumps = net.path("callgrind");
    std::fs::create_dir_all(&dumps).with_context(|| format!("creating {}", dumps.display()))?;
    let log = net.path("valgrind.log");
    let launch = Launch {
        wrapper: [
            "valgrind",
            "--tool=callgrind",
            // Uninstrumented until `callgrind_control -i on`: the node starts about 5×
            // slower than natively instead of 50×, and its start is not counted.
            "--instr-atstart=no",
            // One total over the tokio workers, the producer and its signing threads.
            "--separate-threads=no",
        ]
        .into_iter()
        .map(OsString::from)
        .chain([format!("--callgrind-out-file={}/callgrind.out.%p", dumps.display()).into()])
        .collect(),
        env: Vec::new(),
        log: Some(log.clone()),
    };
    let node = NodeProcess::start_with(&config, &launch).with_context(|| {
        format!(
            "starting huren-node under callgrind (its log: {})",
            log.display()
        )
    })?;
    let counted = count(&node, &dumps, n_verify, n_issue)
        .await
        .with_context(|| format!("counting instructions (valgrind's log: {})", log.display()));
    // Instrumentation off first: the node then stops at near native speed.
    let stopped = callgrind_control(&node, &["-i", "off"])
        .await
        .and_then(|()| node.stop());
    let counted = counted?;
    stopped.context("stopping huren-node under callgrind")?;
    let per_verify = counted.verify as f64 / n_verify as f64;
    let per_licence = counted.issue as f64 / n_issue as f64;
    let idle_per_s = counted.idle as f64 / counted.idle_secs;
    eprintln!(
        "instructions ({tool}): {per_verify:.0} per fast-path verify, {per_licence:.0} per issued licence; idle {idle_per_s:.0}/s"
    );
    Ok(json!({
        "tool": tool,
        "profile": profile(),
        "verify_fast_path_instructions": per_verify.round() as u64,
        "issue_instructions_per_licence": per_licence.round() as u64,
        "n_verify": n_verify,
        "n_issue": n_issue,
        "issue_batch_licences": BATCH_LICENCES,
        "verify_instructions_total": counted.verify,
        "issue_instructions_total": counted.issue,
        "verify_window_s": counted.verify_secs,
        "issue_window_s": counted.issue_secs,
        "idle_instructions_per_s": idle_per_s.round() as u64,
    }))
}

/// Instruction totals of the three windows.
struct Counted {
    issue: u64,
    issue_secs: f64,
    verify: u64,
    verify_secs: f64,
    idle: u64,
    idle_secs: f64,
}

async fn count(
    node: &NodeProcess,
    dumps: &Path,
    n_verify: u64,
    n_issue: u64,
) -> anyhow::Result<Counted> {
    // One connection, kept alive: every counted request pays for its own parsing, none
    // for a connection's set-up.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(600))
        .build()?;
    let url = node.url.as_str();

    let warm = issue(&http, url, 0, WARMUP_LICENCES, WARMUP_VERIFIES).await?;
    verify_all(&http, url, &warm).await?;
    callgrind_control(node, &["-i", "on"]).await?;

    callgrind_control(node, &["-z"]).await?;
    let t0 = Instant::now();
    let qrs = issue(&http, url, FIRST_MEASURED, n_issue, n_verify as usize).await?;
    let issue_secs = t0.elapsed().as_secs_f64();
    let issue_total = dump(node, dumps, "issue").await?;

    let fast_before = fast_path_count(&http, url).await?;
    callgrind_control(node, &["-z"]).await?;
    let t0 = Instant::now();
    verify_all(&http, url, &qrs).await?;
    let verify_secs = t0.elapsed().as_secs_f64();
    let verify_total = dump(node, dumps, "verify").await?;
    let fast = fast_path_count(&http, url)
        .await?
        .saturating_sub(fast_before);
    ensure!(
        fast == n_verify,
        "{fast} of the {n_verify} verifies took the fast path: the count would not be the fast path's"
    );

    callgrind_control(node, &["-z"]).await?;
    let t0 = Instant::now();
    tokio::time::sleep(IDLE).await;
    let idle_secs = t0.elapsed().as_secs_f64();
    let idle = dump(node, dumps, "idle").await?;
    Ok(Counted {
        issue: issue_total,
        issue_secs,
        verify: verify_total,
        verify_secs,
        idle,
        idle_secs,
    })
}

/// Issues `count` driving licences with holder numbers from `first`, in sequential
/// batches; the QR texts of the first `keep`.
async fn issue(
    http: &reqwest::Client,
    url: &str,
    first: u64,
    count: u64,
    keep: usize,
) -> anyhow::Result<Vec<String>> {
    let mut kept = Vec::with_capacity(keep);
    let end = first + count;
    for from in (first..end).step_by(BATCH_LICENCES as usize) {
        let licences = (from..end.min(from + BATCH_LICENCES))
            .map(|n| serde_json::from_value::<IssueRequest>(driving_body(n)))
            .collect::<Result<_, _>>()
            .context("the bench's driving licence body")?;
        let answer: BatchAnswer = http
            .post(format!("{url}/v1/licences:batch"))
            .bearer_auth(TOKEN)
            .json(&BatchRequest { licences })
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for item in &answer.results {
            match item.outcome() {
                Some(BatchOutcome::Issued { qr: Some(qr), .. }) => {
                    if kept.len() < keep {
                        kept.push(qr.to_owned());
                    }
                }
                _ => bail!(
                    "batch entry {} from {from} not issued: {item:?}",
                    item.index
                ),
            }
        }
    }
    Ok(kept)
}

/// Verifies each QR once, in order, and checks that each is valid.
async fn verify_all(http: &reqwest::Client, url: &str, qrs: &[String]) -> anyhow::Result<()> {
    for qr in qrs {
        let report: Report = http
            .post(format!("{url}/v1/verify"))
            .json(&VerifyRequest { qr: qr.clone() })
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ensure!(
            report.kind() == Some(Verdict::Valid),
            "a licence just issued verified as {:?}: {}",
            report.verdict,
            report.message
        );
    }
    Ok(())
}

/// The node's `huren_verify_fast_path_total`.
async fn fast_path_count(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("huren_verify_fast_path_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .context("huren_verify_fast_path_total missing from /metrics")
}

/// Runs `callgrind_control ARGS PID`; vgdb wakes the node even while it waits in a system
/// call, and the command returns once callgrind has done it.
async fn callgrind_control(node: &NodeProcess, args: &[&str]) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("callgrind_control")
        .args(args)
        .arg(node.pid().to_string())
        .output()
        .await
        .context("running callgrind_control (apt-get install valgrind)")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && text.contains("OK"),
        "callgrind_control {} said: {text}",
        args.join(" ")
    );
    Ok(())
}

/// Dumps (and zeroes) the counters under `name`; the instructions counted since the last
/// zeroing.
async fn dump(node: &NodeProcess, dumps: &Path, name: &str) -> anyhow::Result<u64> {
    callgrind_control(node, &["-d", name]).await?;
    let trigger = format!("desc: Trigger: dump {name}");
    for entry in std::fs::read_dir(dumps).with_context(|| format!("reading {}", dumps.display()))? {
        let path: PathBuf = entry?.path();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if text.lines().any(|l| l == trigger) {
            return total_ir(&text).with_context(|| format!("in {}", path.display()));
        }
    }
    bail!("no callgrind dump named {name} in {}", dumps.display())
}

/// The `Ir` total of a callgrind dump (`events:` names the columns of `totals:`).
fn total_ir(dump: &str) -> anyhow::Result<u64> {
    let field = |key: &str| {
        dump.lines()
            .find_map(|l| l.strip_prefix(key))
            .with_context(|| format!("no `{key}` line"))
    };
    let column = field("events:")?
        .split_whitespace()
        .position(|e| e == "Ir")
        .context("no Ir event")?;
    let total = field("totals:")?
        .split_whitespace()
        .nth(column)
        .context("no Ir total")?;
    total.parse().with_context(|| format!("Ir total {total:?}"))
}

/// "valgrind-3.19.0 callgrind", or an error saying how to install it.
fn valgrind_version() -> anyhow::Result<String> {
    let out = std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .context("running valgrind --version (apt-get install valgrind)")?;
    ensure!(out.status.success(), "valgrind --version failed");
    Ok(format!(
        "{} callgrind",
        String::from_utf8_lossy(&out.stdout).trim()
    ))
}

/// The cargo profile the node was built with (its directory under target/): counts differ
/// between release and production (LTO inlines across crates).
fn profile() -> String {
    huren_tests::binary("huren-node")
        .parent()
        .and_then(Path::file_name)
        .map_or_else(|| "unknown".into(), |p| p.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::total_ir;

    #[test]
    fn the_ir_total_is_read_from_its_column() {
        let dump = "version: 1\ncmd: huren-node run\npart: 2\ndesc: Trigger: dump verify\n\
                    events: Ir Dr\nsummary: 7 9\ntotals: 1234 99\nfl=(1) x.rs\n";
        assert_eq!(total_ir(dump).expect("read"), 1234);
        let ir_last = "events: Dr Ir\ntotals: 5 6\n";
        assert_eq!(total_ir(ir_last).expect("read"), 6);
        assert!(total_ir("events: Ir\n").is_err());
        assert!(total_ir("events: Dr\ntotals: 5\n").is_err());
    }
}
