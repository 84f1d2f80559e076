//! Prometheus metrics, named `huren_<area>_<what>_<unit>`, rendered in the text
//! exposition format at `/metrics`. A handful of atomics: the node needs no metrics
//! framework for this.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters with one label, e.g. rejected blocks by reason.
#[derive(Default)]
pub struct LabelledCounter(Mutex<BTreeMap<String, u64>>);

impl LabelledCounter {
    pub fn inc(&self, label: &str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Labels are few and repeat: allocate only the first time one is seen.
        match m.get_mut(label) {
            Some(n) => *n += 1,
            None => {
                m.insert(label.to_owned(), 1);
            }
        }
    }
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A histogram of seconds with fixed buckets.
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, secs: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

#[derive(Default)]
pub struct Metrics {
    pub blocks_produced: Counter,
    /// Blocks the producer signed, written or not: one ahead of `blocks_produced` while
    /// a block is prepared as the one before is written; more only after failed writes.
    pub blocks_signed: Counter,
    pub records_produced: Counter,
    pub producer_clock_behind: Counter,
    pub producer_stopped: Gauge,
    pub block_production_seconds: Histogram,
    pub api_requests: LabelledCounter,
    pub api_rate_limited: Counter,
    pub verify_verdicts: LabelledCounter,
    pub verify_fast_path: Counter,
    pub verify_images_refused: Counter,
    pub signatures_checked: Counter,
    pub signature_batches: Counter,
    pub blocks_received: Counter,
    pub blocks_rejected: LabelledCounter,
    pub catchup_requests_sent: Counter,
    pub catchup_requests_served: Counter,
    pub catchup_requests_refused: Counter,
    pub catchup_unbacked: LabelledCounter,
    pub equivocations: Counter,
    /// The governance height in force here (records applied since founding).
    pub governance_height: Gauge,
    pub checkpoints_signed: Counter,
    pub checkpoints_cosigned: Counter,
    pub checkpoints_refused: LabelledCounter,
    pub checkpoint_conflicts: Counter,
    pub peers_connected: Gauge,
    pub connections_refused: LabelledCounter,
    pub connections_unresponsive: Counter,
    pub propagation_seconds: Histogram,
    pub licences: Gauge,
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let labelled =
            |out: &mut String, name: &str, help: &str, label: &str, c: &LabelledCounter| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for (k, v) in c.snapshot() {
                    let _ = writeln!(out, "{name}{{{label}=\"{k}\"}} {v}");
                }
            };
        counter(
            &mut out,
            "huren_verify_images_refused_total",
            "Photos refused with 503 because every decoder was busy and the queue full or too slow.",
            self.verify_images_refused.get(),
        );
        gauge(
            &mut out,
            "huren_producer_stopped",
            "1 when issuing has stopped after a failed flush (restart the node and run huren-node check).",
            self.producer_stopped.get(),
        );
        counter(
            &mut out,
            "huren_producer_clock_behind_total",
            "Batches refused because this node's clock is behind its own chain's head.",
            self.producer_clock_behind.get(),
        );
        counter(
            &mut out,
            "huren_ledger_blocks_produced_total",
            "Blocks this node signed and stored.",
            self.blocks_produced.get(),
        );
        counter(
            &mut out,
            "huren_producer_blocks_signed_total",
            "Blocks the producer signed, including those never written (prepared on a block whose write then failed).",
            self.blocks_signed.get(),
        );
        counter(
            &mut out,
            "huren_ledger_records_produced_total",
            "Records in blocks this node produced.",
            self.records_produced.get(),
        );
        self.block_production_seconds.render(
            &mut out,
            "huren_ledger_block_production_seconds",
            "Time from cutting a block to durable.",
        );
        gauge(
            &mut out,
            "huren_ledger_licences",
            "Licences in the index (all departments).",
            self.licences.get(),
        );
        labelled(
            &mut out,
            "huren_api_requests_total",
            "HTTP requests by route.",
            "route",
            &self.api_requests,
        );
        counter(
            &mut out,
            "huren_api_rate_limited_total",
            "Public requests refused with 429.",
            self.api_rate_limited.get(),
        );
        labelled(
            &mut out,
            "huren_verify_verdicts_total",
            "Verification verdicts by reason.",
            "reason",
            &self.verify_verdicts,
        );
        counter(
            &mut out,
            "huren_verify_fast_path_total",
            "Verifications that matched a ledger commitment.",
            self.verify_fast_path.get(),
        );
        counter(
            &mut out,
            "huren_verify_signatures_checked_total",
            "Credential signatures checked (verifications the ledger did not vouch for).",
            self.signatures_checked.get(),
        );
        counter(
            &mut out,
            "huren_verify_signature_batches_total",
            "Batches those signatures were checked in; checked/batches is the mean batch size.",
            self.signature_batches.get(),
        );
        counter(
            &mut out,
            "huren_net_blocks_received_total",
            "Blocks received from peers and applied.",
            self.blocks_received.get(),
        );
        labelled(
            &mut out,
            "huren_net_blocks_rejected_total",
            "Blocks received and not applied, by reason.",
            "reason",
            &self.blocks_rejected,
        );
        counter(
            &mut out,
            "huren_net_catchup_requests_sent_total",
            "Catch-up requests sent.",
            self.catchup_requests_sent.get(),
        );
        counter(
            &mut out,
            "huren_net_catchup_requests_served_total",
            "Catch-up requests answered.",
            self.catchup_requests_served.get(),
        );
        counter(
            &mut out,
            "huren_net_catchup_requests_refused_total",
            "Catch-up requests from a peer over its rate, answered busy.",
            self.catchup_requests_refused.get(),
        );
        labelled(
            &mut out,
            "huren_net_catchup_unbacked_total",
            "Peers that did not back their head claim: no answer in time, no blocks, an oversized answer.",
            "why",
            &self.catchup_unbacked,
        );
        counter(
            &mut out,
            "huren_net_equivocations_total",
            "Equivocations detected or received.",
            self.equivocations.get(),
        );
        gauge(
            &mut out,
            "huren_governance_height",
            "Governance records applied here since founding: nodes of one network should agree.",
            self.governance_height.get(),
        );
        counter(
            &mut out,
            "huren_checkpoints_signed_total",
            "Checkpoints this node's department signed.",
            self.checkpoints_signed.get(),
        );
        counter(
            &mut out,
            "huren_checkpoints_cosigned_total",
            "Other departments' checkpoints this node cosigned as a witness.",
            self.checkpoints_cosigned.get(),
        );
        labelled(
            &mut out,
            "huren_checkpoints_refused_total",
            "Checkpoints this witness would not cosign, by reason: mismatch (its copy of the chain shows otherwise), time.",
            "reason",
            &self.checkpoints_refused,
        );
        counter(
            &mut out,
            "huren_checkpoint_conflicts_total",
            "Departments caught signing two conflicting checkpoints (evidence kept).",
            self.checkpoint_conflicts.get(),
        );
        gauge(
            &mut out,
            "huren_net_peers",
            "Connected genesis peers.",
            self.peers_connected.get(),
        );
        labelled(
            &mut out,
            "huren_net_connections_refused_total",
            "p2p connections refused, by reason: not_in_genesis (or banned), pending_per_ip, limit.",
            "reason",
            &self.connections_refused,
        );
        counter(
            &mut out,
            "huren_net_connections_unresponsive_total",
            "Connections closed because the peer stopped answering pings (a silent link).",
            self.connections_unresponsive.get(),
        );
        self.propagation_seconds.render(
            &mut out,
            "huren_net_propagation_seconds",
            "Block time to applied here, for gossiped blocks.",
        );
        out
    }
}
