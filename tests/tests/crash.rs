//! Crash safety: acknowledged means durable.
//!
//! Runs a real `huren-node` process, issues and changes licences through the API from two
//! client threads, SIGKILLs the node at a random moment, runs `huren-node check`, restarts
//! it and asserts that every acknowledged issuance is present with its acknowledged
//! status (or, for a change whose answer was lost in the crash, either the old or the new
//! status). `HUREN_CRASH_CYCLES` sets the number of cycles (default 20);
//! scripts/crash-drill.sh runs any number in release mode.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use huren_tests::{check, client, driving_body, NodeProcess, TestNetwork, TOKEN};
use rand::Rng;

#[derive(Debug, Clone)]
struct Expect {
    qr: String,
    /// Statuses the licence may be in after a crash.
    allowed: Vec<&'static str>,
}

type Ledger = Arc<Mutex<HashMap<String, Expect>>>;
/// Ids acknowledged since the last check.
type Fresh = Arc<Mutex<Vec<String>>>;

/// Issues and changes licences until the node stops answering. Returns counts of
/// acknowledged operations.
fn worker(url: String, ledger: Ledger, fresh: Fresh, seed: u64) -> (u64, u64) {
    let http = client();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut mine: Vec<String> = Vec::new();
    let (mut issued, mut changed) = (0, 0);
    for n in 0.. {
        if !mine.is_empty() && rng.gen_bool(0.3) {
            let id = mine[rng.gen_range(0..mine.len())].clone();
            let current = ledger.lock().expect("lock")[&id].allowed.clone();
            if current.len() != 1 || current[0] == "revoked" {
                continue;
            }
            let (action, body, target) = match (current[0], rng.gen_range(0..4)) {
                ("active", 0) => (
                    "revoke",
                    serde_json::json!({"reason": "cancelled"}),
                    "revoked",
                ),
                ("active", _) => (
                    "suspend",
                    serde_json::json!({"reason": "penalty"}),
                    "suspended",
                ),
                ("suspended", 0) => (
                    "revoke",
                    serde_json::json!({"reason": "penalty"}),
                    "revoked",
                ),
                (_, _) => ("reinstate", serde_json::json!({}), "active"),
            };
            // Until the answer arrives, either outcome is possible.
            ledger
                .lock()
                .expect("lock")
                .get_mut(&id)
                .expect("known")
                .allowed = vec![current[0], target];
            match http
                .post(format!("{url}/v1/licences/{id}/{action}"))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
            {
                Ok(r) if r.status().is_success() => {
                    ledger
                        .lock()
                        .expect("lock")
                        .get_mut(&id)
                        .expect("known")
                        .allowed = vec![target];
                    changed += 1;
                }
                Ok(r) => panic!(
                    "{action} {id} answered {}: {}",
                    r.status(),
                    r.text().unwrap_or_default()
                ),
                Err(_) => return (issued, changed),
            }
        } else {
            match http
                .post(format!("{url}/v1/licences"))
                .bearer_auth(TOKEN)
                .json(&driving_body(seed * 1_000_000 + n))
                .send()
            {
                Ok(r) if r.status().as_u16() == 201 => {
                    let v: serde_json::Value = r.json().expect("json");
                    let id = v["licence_id"].as_str().expect("id").to_owned();
                    let qr = v["qr"].as_str().expect("qr").to_owned();
                    ledger.lock().expect("lock").insert(
                        id.clone(),
                        Expect {
                            qr,
                            allowed: vec!["active"],
                        },
                    );
                    fresh.lock().expect("lock").push(id.clone());
                    mine.push(id);
                    issued += 1;
                }
                Ok(r) => panic!(
                    "issue answered {}: {}",
                    r.status(),
                    r.text().unwrap_or_default()
                ),
                Err(_) => return (issued, changed),
            }
        }
    }
    (issued, changed)
}

/// Checks every licence acknowledged since the last check (`fresh`) and every licence whose
/// last change went unanswered, plus a random sample of older ones (all of them when
/// `everything`): re-reading thousands of settled licences after every crash would make
/// the drill quadratic.
fn verify_all(url: &str, ledger: &Ledger, fresh: &mut Vec<String>, everything: bool) {
    let http = client();
    let mut rng = rand::thread_rng();
    let fresh_set: std::collections::HashSet<String> = fresh.drain(..).collect();
    let snapshot: Vec<(String, Expect)> = ledger
        .lock()
        .expect("lock")
        .iter()
        .filter(|(k, v)| {
            everything || v.allowed.len() > 1 || fresh_set.contains(*k) || rng.gen_bool(0.02)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (i, (id, e)) in snapshot.iter().enumerate() {
        let r = http
            .get(format!("{url}/v1/licences/{id}"))
            .send()
            .expect("status request");
        assert_eq!(
            r.status().as_u16(),
            200,
            "acknowledged licence {id} is missing after a crash"
        );
        let v: serde_json::Value = r.json().expect("json");
        let status = v["status"]["status"].as_str().expect("status").to_owned();
        assert!(
            e.allowed.contains(&status.as_str()),
            "{id}: status {status}, expected one of {:?}",
            e.allowed
        );
        // Check a sample of credentials end to end: the stored commitment matches the QR.
        if i % 10 == 0 {
            let r: serde_json::Value = http
                .post(format!("{url}/v1/verify"))
                .json(&serde_json::json!({"qr": e.qr}))
                .send()
                .expect("verify")
                .json()
                .expect("json");
            let expected = match status.as_str() {
                "active" => "valid",
                _ => "invalid",
            };
            assert_eq!(r["verdict"], expected, "{id}: {r}");
        }
        // Settle: what the node says now is the truth from here on.
        ledger
            .lock()
            .expect("lock")
            .get_mut(id)
            .expect("known")
            .allowed = vec![leak(status)];
    }
}

fn leak(s: String) -> &'static str {
    match s.as_str() {
        "active" => "active",
        "suspended" => "suspended",
        "revoked" => "revoked",
        other => panic!("unknown status {other}"),
    }
}

#[test]
fn sigkill_never_loses_acknowledged_licences() -> anyhow::Result<()> {
    let cycles: u32 = std::env::var("HUREN_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let net = TestNetwork::new()?;
    let config = net.config("gd.transport", "batch_window_ms = 2")?;
    let ledger: Ledger = Arc::default();
    let fresh: Fresh = Arc::default();
    let mut rng = rand::thread_rng();
    let started = Instant::now();
    let (mut issued, mut changed) = (0u64, 0u64);
    for cycle in 0..cycles {
        let node = NodeProcess::start(&config)?;
        verify_all(&node.url, &ledger, &mut fresh.lock().expect("lock"), false);
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (url, ledger, fresh) = (node.url.clone(), ledger.clone(), fresh.clone());
                std::thread::spawn(move || worker(url, ledger, fresh, u64::from(cycle) * 2 + w + 1))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..600)));
        node.kill9()?;
        for w in workers {
            let (i, c) = w.join().expect("worker panicked");
            issued += i;
            changed += c;
        }
        let (ok, out) = check(&config)?;
        assert!(
            ok,
            "cycle {cycle}: huren-node check failed after SIGKILL:\n{out}"
        );
    }
    let node = NodeProcess::start(&config)?;
    verify_all(&node.url, &ledger, &mut fresh.lock().expect("lock"), true);
    node.stop()?;
    let (ok, out) = check(&config)?;
    assert!(ok, "final check failed:\n{out}");
    assert!(issued > 0, "no issuance was acknowledged at all");
    println!(
        "crash drill: {cycles} SIGKILL cycles, {issued} issuances and {changed} changes acknowledged, all {} licences present with their acknowledged status, {:.1} s",
        ledger.lock().expect("lock").len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

use rand::SeedableRng;
