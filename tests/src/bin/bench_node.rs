//! Load generator for one node: issuance (single requests at concurrency N, and bulk
//! import), and verification (fast path: licences on the ledger; signature path:
//! correctly signed credentials whose commitment the node does not hold).
//!
//! It founds a fresh network in a temporary directory, starts a real `huren-node`
//! (build with `cargo build --release --workspace --bins` and run this binary from the
//! same profile), drives it over HTTP on 127.0.0.1 and prints the figures as JSON.
//! scripts/bench-node.sh wraps it. Load generator and node share the machine's cores:
//! the client's CPU share is reported alongside.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use huren_tests::{driving_body, NodeProcess, TestNetwork, TOKEN};

#[derive(Parser)]
struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent requests.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Licences per bulk request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
}

/// CPU seconds this process used (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces, so split after ')').
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'.
    // Linux reports them in clock ticks of 100 Hz (USER_HZ).
    (ticks(11) + ticks(12)) / 100.0
}

struct Measured {
    ops: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    client_cpu_share: f64,
}

impl Measured {
    fn json(&self, name: &str, unit_per_op: u64) -> serde_json::Value {
        serde_json::json!({
            "name": name,
            "per_second": (self.ops * unit_per_op) as f64 / self.secs,
            "requests": self.ops,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "client_cpu_share": self.client_cpu_share,
        })
    }
}

/// Runs `make` concurrently for `seconds`, returning rate and latency percentiles.
async fn drive<F, Fut>(seconds: u64, concurrency: usize, make: F) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
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
    let cpu = cpu_seconds() - cpu0;
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Measured {
        ops: all.len() as u64,
        secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        // Share of the whole machine's CPU time the load generator used.
        client_cpu_share: cpu
            / (secs * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let net = TestNetwork::new()?;
    let config = net.config("gd.transport", "")?;
    let node = NodeProcess::start(&config)?;
    let url = node.url.clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let mut results = Vec::new();

    // Issuance, single requests.
    let (h, u) = (http.clone(), url.clone());
    let m = drive(args.seconds, args.concurrency, move |n| {
        let (h, u) = (h.clone(), u.clone());
        async move {
            h.post(format!("{u}/v1/licences"))
                .bearer_auth(TOKEN)
                .json(&driving_body(n))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 201)
        }
    })
    .await;
    eprintln!(
        "issue (single, concurrency {}): {:.0}/s",
        args.concurrency,
        m.ops as f64 / m.secs
    );
    results.push(m.json("issue_single", 1));

    // Bulk import.
    let batch = args.batch;
    let (h, u) = (http.clone(), url.clone());
    let m = drive(args.seconds, 2, move |n| {
        let (h, u) = (h.clone(), u.clone());
        async move {
            let licences: Vec<_> = (0..batch as u64)
                .map(|i| driving_body(10_000_000 + n * batch as u64 + i))
                .collect();
            h.post(format!("{u}/v1/licences:batch"))
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({ "licences": licences }))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    eprintln!(
        "issue (bulk, {batch} per request): {:.0}/s",
        m.ops as f64 * batch as f64 / m.secs
    );
    results.push(m.json("issue_bulk", batch as u64));

    // Collect QR texts of licences on the ledger for the fast path.
    let mut qrs = Vec::new();
    for i in 0..200u64 {
        let r: serde_json::Value = http
            .post(format!("{url}/v1/licences"))
            .bearer_auth(TOKEN)
            .json(&driving_body(90_000_000 + i))
            .send()
            .await?
            .json()
            .await?;
        qrs.push(r["qr"].as_str().context("qr")?.to_owned());
    }
    let qrs = Arc::new(qrs);
    let (h, u, q) = (http.clone(), url.clone(), qrs.clone());
    let m = drive(args.seconds, args.concurrency, move |n| {
        let (h, u, q) = (h.clone(), u.clone(), q.clone());
        async move {
            let qr = &q[n as usize % q.len()];
            h.post(format!("{u}/v1/verify"))
                .json(&serde_json::json!({ "qr": qr }))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    eprintln!("verify (fast path): {:.0}/s", m.ops as f64 / m.secs);
    results.push(m.json("verify_fast_path", 1));

    // Signature path: credentials signed offline with the issuer key, not on the ledger.
    let (_, key) = huren_genesis::keys::read_issuer_key(&huren_genesis::keys::issuer_key_path(
        &net.keys,
        "gd.transport",
    ))?;
    let mut offline = Vec::new();
    for i in 0..200u64 {
        let dept = huren_core::DepartmentId::parse("gd.transport")?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        let cred = huren_core::Credential {
            issuer: dept.clone(),
            licence_id: huren_core::LicenceId::new(
                dept,
                huren_core::LicenceType::parse("mvdl")?,
                500_000_000 + i,
            ),
            region: huren_core::RegionCode::parse("440000")?,
            issued_at: now,
            not_before: now,
            expires_at: now + 86_400,
            holder: [("name".to_owned(), "测试".to_owned())]
                .into_iter()
                .collect(),
            fields: Default::default(),
            salt: [i as u8; 16],
        };
        offline.push(cred.sign(&key)?.qr_text);
    }
    let offline = Arc::new(offline);
    let (h, u, q) = (http.clone(), url.clone(), offline.clone());
    let m = drive(args.seconds, args.concurrency, move |n| {
        let (h, u, q) = (h.clone(), u.clone(), q.clone());
        async move {
            let qr = &q[n as usize % q.len()];
            h.post(format!("{u}/v1/verify"))
                .json(&serde_json::json!({ "qr": qr }))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    eprintln!("verify (signature path): {:.0}/s", m.ops as f64 / m.secs);
    results.push(m.json("verify_signature_path", 1));

    node.stop()?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "machine": { "cores": std::thread::available_parallelism().map_or(1, |n| n.get()) },
            "results": results,
        }))?
    );
    Ok(())
}
