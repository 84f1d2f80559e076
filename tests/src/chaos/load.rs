//! What the officers do during a scenario, and what the harness remembers of it: each
//! department issues at its own pace, revocations come at the plan's moments, and every
//! answer that says "done" is kept as an acknowledged record with the block it names.
//! A watcher polls every node connected to the issuer for each acknowledged revocation
//! and measures how long it took to arrive.
//!
//! Only acknowledged records are promised: a request that timed out or failed may or may
//! not have been recorded, and the checks never count it either way.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::lab::Topology;

/// How long a revocation may take to reach a connected node before it counts as not
/// reached (the goal is 2 s; this bound only ends the wait).
pub const PROPAGATION_WAIT_MAX: Duration = Duration::from_secs(30);
/// A pair connected for at least this long before a revocation is "settled": its
/// connections had time to come back after the last fault.
pub const SETTLED_AFTER: Duration = Duration::from_secs(3);
const POLL_EVERY: Duration = Duration::from_millis(20);

/// The block an answer named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRef {
    pub department: String,
    pub height: u64,
    pub hash: String,
}

/// An acknowledged issuance or revocation.
#[derive(Debug, Clone)]
pub struct Ack {
    pub licence: String,
    pub node: usize,
    pub block: BlockRef,
    /// When the answer came.
    pub at: Instant,
}

/// One revocation's arrival at one node.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub licence: String,
    pub node: usize,
    pub delay: Duration,
    pub settled: bool,
}

/// Who is connected now, and since when, shared by the driver and the watcher.
pub struct World {
    inner: Mutex<(Topology, Vec<Vec<Option<Instant>>>)>,
}

impl World {
    pub fn new(nodes: usize) -> Self {
        let now = Instant::now();
        Self {
            inner: Mutex::new((
                Topology {
                    nodes,
                    ..Topology::default()
                },
                vec![vec![Some(now); nodes]; nodes],
            )),
        }
    }

    pub fn topology(&self) -> Topology {
        self.inner.lock().expect("world lock").0.clone()
    }

    pub fn set(&self, t: Topology) {
        let mut g = self.inner.lock().expect("world lock");
        let now = Instant::now();
        for i in 0..t.nodes {
            for j in 0..t.nodes {
                let c = t.connected(i, j);
                let since = &mut g.1[i][j];
                match (c, since.is_some()) {
                    (true, false) => *since = Some(now),
                    (false, true) => *since = None,
                    _ => {}
                }
            }
        }
        g.0 = t;
    }

    /// Since when i and j have been connected without a break, if they are now.
    pub fn connected_since(&self, i: usize, j: usize) -> Option<Instant> {
        self.inner.lock().expect("world lock").1[i][j]
    }
}

/// Everything acknowledged and measured during a scenario.
#[derive(Default)]
pub struct Record {
    pub issued: Mutex<Vec<Ack>>,
    pub revoked: Mutex<Vec<Ack>>,
    pub arrivals: Mutex<Vec<Arrival>>,
    /// Problems seen while the scenario ran (a revocation that never reached a connected
    /// node).
    pub failures: Mutex<Vec<String>>,
    /// Answers other than success, by "status code: error code", for the report.
    pub refusals: Mutex<std::collections::BTreeMap<String, u64>>,
    /// Revocations the plan asked for that no department could make (all down).
    pub revocations_skipped: Mutex<u64>,
}

impl Record {
    fn refused(&self, what: String) {
        *self
            .refusals
            .lock()
            .expect("record lock")
            .entry(what)
            .or_default() += 1;
    }
}

pub fn http(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(1))
        // The lab's addresses must never go to a proxy from the environment.
        .no_proxy()
        .build()
        .expect("http client")
}

/// The issue request body for a department's licence type (the example network's).
fn issue_body(department: &str, n: u64) -> serde_json::Value {
    if department.ends_with(".market") {
        json!({"licence_type": "food", "holder": {"entity": format!("测试餐饮{n}有限公司"), "credit_code": format!("9144010{n:011}")}})
    } else if department.ends_with(".health") {
        json!({"licence_type": "physician", "holder": {"name": format!("医师{n}"), "id_number": format!("4401061980{n:08}"), "category": "临床"}})
    } else {
        crate::driving_body(n)
    }
}

fn block_ref(b: &huren_api::BlockRef) -> BlockRef {
    BlockRef {
        department: b.department.to_string(),
        height: b.height,
        hash: b.hash.to_hex(),
    }
}

fn refusal(r: reqwest::blocking::Response) -> String {
    let status = r.status().as_u16();
    let code = r
        .json::<huren_api::ErrorBody>()
        .map(|e| e.error.code.to_string())
        .unwrap_or_else(|_| "?".into());
    format!("{status} {code}")
}

/// Issues at `url` every `every` until `stop`.
pub fn issue_loop(
    node: usize,
    department: String,
    url: String,
    every: Duration,
    stop: Arc<AtomicBool>,
    record: Arc<Record>,
) {
    let client = http(Duration::from_secs(5));
    let mut n = (node as u64) * 1_000_000;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let started = Instant::now();
        match client
            .post(format!("{url}/v1/licences"))
            .bearer_auth(crate::TOKEN)
            .json(&issue_body(&department, n))
            .send()
        {
            Ok(r) if r.status().as_u16() == 201 => match r.json::<huren_api::IssueAnswer>() {
                Ok(a) => record.issued.lock().expect("record lock").push(Ack {
                    licence: a.licence_id.to_string(),
                    node,
                    block: block_ref(&a.block),
                    at: Instant::now(),
                }),
                Err(e) => record.refused(format!("{department}: 201 unreadable: {e}")),
            },
            Ok(r) => record.refused(format!("{department}: {}", refusal(r))),
            Err(e) if e.is_timeout() => record.refused(format!("{department}: timeout")),
            Err(_) => record.refused(format!("{department}: no connection")),
        }
        std::thread::sleep(every.saturating_sub(started.elapsed()));
    }
}

/// A revocation to watch: acknowledged at `at` by `node`.
struct Watch {
    licence: String,
    issuer: usize,
    at: Instant,
    /// Nodes not yet seen with it revoked, and whether each pair was settled at `at`.
    waiting: Vec<(usize, bool)>,
}

/// Makes the plan's revocations (at `times` after `t0`) and watches them arrive, until
/// `stop` and every watch is resolved or abandoned.
#[allow(clippy::too_many_arguments)]
pub fn revoke_and_watch(
    seed: u64,
    t0: Instant,
    times: Vec<Duration>,
    urls: Vec<String>,
    departments: Vec<Option<String>>,
    world: Arc<World>,
    stop: Arc<AtomicBool>,
    record: Arc<Record>,
) {
    let client = http(Duration::from_secs(5));
    let poller = http(Duration::from_millis(500));
    // Runtime choices (which licence) depend on what was acknowledged by then, so they
    // cannot be replayed exactly; they are still drawn from the seed.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7265_766f_6b65);
    let mut revoked: BTreeSet<String> = BTreeSet::new();
    let mut watches: Vec<Watch> = Vec::new();
    let mut next = 0;
    loop {
        if next < times.len() && t0.elapsed() >= times[next] {
            next += 1;
            match revoke_one(
                &client,
                &mut rng,
                &urls,
                &departments,
                &mut revoked,
                &record,
            ) {
                Some((licence, issuer, at)) => {
                    let waiting = (0..urls.len())
                        .filter(|&j| j != issuer)
                        .filter_map(|j| {
                            world.connected_since(issuer, j).map(|since| {
                                (j, at.saturating_duration_since(since) >= SETTLED_AFTER)
                            })
                        })
                        .collect();
                    watches.push(Watch {
                        licence,
                        issuer,
                        at,
                        waiting,
                    });
                }
                None => *record.revocations_skipped.lock().expect("record lock") += 1,
            }
        }
        for w in &mut watches {
            w.waiting.retain(|&(j, settled)| {
                // A pair that lost its connection since the revocation is no longer
                // measured; the final checks still require the record everywhere.
                match world.connected_since(w.issuer, j) {
                    Some(since) if since <= w.at => {}
                    _ => return false,
                }
                let seen = poller
                    .get(format!("{}/v1/licences/{}", urls[j], w.licence))
                    .send()
                    .ok()
                    .filter(|r| r.status().is_success())
                    .and_then(|r| r.json::<huren_api::StatusAnswer>().ok())
                    .is_some_and(|s| {
                        matches!(s.status, huren_core::validate::LicenceStatus::Revoked(_))
                    });
                let waited = w.at.elapsed();
                if seen {
                    record.arrivals.lock().expect("record lock").push(Arrival {
                        licence: w.licence.clone(),
                        node: j,
                        delay: waited,
                        settled,
                    });
                    return false;
                }
                if waited > PROPAGATION_WAIT_MAX {
                    record.failures.lock().expect("record lock").push(format!(
                        "revocation of {} (node {}) did not reach connected node {j} in {} s",
                        w.licence,
                        w.issuer,
                        PROPAGATION_WAIT_MAX.as_secs()
                    ));
                    return false;
                }
                true
            });
        }
        watches.retain(|w| !w.waiting.is_empty());
        if stop.load(Ordering::Relaxed) && next >= times.len() && watches.is_empty() {
            return;
        }
        // After the phase, revocations not yet made are not made.
        if stop.load(Ordering::Relaxed) {
            next = times.len();
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// Revokes one acknowledged, not yet revoked licence of a random department whose node
/// answers; returns it, its issuer and when the acknowledgement came.
fn revoke_one(
    client: &reqwest::blocking::Client,
    rng: &mut StdRng,
    urls: &[String],
    departments: &[Option<String>],
    revoked: &mut BTreeSet<String>,
    record: &Record,
) -> Option<(String, usize, Instant)> {
    let issuers: Vec<usize> = (0..urls.len())
        .filter(|&i| departments[i].is_some())
        .collect();
    let first = rng.gen_range(0..issuers.len());
    for k in 0..issuers.len() {
        let node = issuers[(first + k) % issuers.len()];
        let candidates: Vec<String> = record
            .issued
            .lock()
            .expect("record lock")
            .iter()
            .filter(|a| a.node == node && !revoked.contains(&a.licence))
            .map(|a| a.licence.clone())
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let licence = candidates[rng.gen_range(0..candidates.len())].clone();
        let r = client
            .post(format!("{}/v1/licences/{licence}/revoke", urls[node]))
            .bearer_auth(crate::TOKEN)
            .json(&json!({"reason": "penalty"}))
            .send();
        match r {
            Ok(r) if r.status().is_success() => {
                let at = Instant::now();
                revoked.insert(licence.clone());
                match r.json::<huren_api::LifecycleAnswer>() {
                    Ok(a) => {
                        record.revoked.lock().expect("record lock").push(Ack {
                            licence: licence.clone(),
                            node,
                            block: block_ref(&a.block),
                            at,
                        });
                        return Some((licence, node, at));
                    }
                    Err(e) => record.refused(format!("revoke answer unreadable: {e}")),
                }
            }
            Ok(r) => record.refused(format!("revoke {}", refusal(r))),
            Err(_) => record.refused("revoke: no answer".into()),
        }
    }
    None
}
