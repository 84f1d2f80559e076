//! The huren-applier thread: takes received gossip messages and catch-up batches one at a
//! time, in order, through the ledger, and tells the event loop what came of each.
//!
//! It runs apart from the event loop because applying a block means an fsync, and the
//! loop must keep serving the swarm meanwhile. `Handled::acceptance` is the one place
//! where what the ledger made of a message becomes gossipsub's Accept / Ignore / Reject.
//! This module must never touch the swarm: it only sends `ApplyOutcome`s back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use huren_core::governance::{GovBlock, GovError};
use huren_core::ledger::CodecError;
use huren_core::validate::BlockError;
use huren_core::{Block, DepartmentId, Equivocation};
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::PeerId;
use tokio::sync::mpsc;

use super::wire::{self, Gossip, WireError};
use crate::checkpoints::Checkpoints;
use crate::ledger::{Admission, GovReceipt, Ledger};
use crate::metrics::Metrics;
use huren_core::checkpoint::SignedCheckpoint;
use huren_core::validate::ChainView as _;

/// Work for the applier.
pub(crate) enum ApplyJob {
    /// A gossip message, to validate before gossipsub may forward it.
    Gossip {
        id: MessageId,
        source: PeerId,
        data: Vec<u8>,
    },
    /// A catch-up batch of `department`'s blocks from `peer`, in height order.
    Catchup {
        peer: PeerId,
        department: DepartmentId,
        blocks: Vec<Vec<u8>>,
    },
    /// A catch-up batch of governance blocks from `peer`, in height order.
    GovCatchup { peer: PeerId, blocks: Vec<Vec<u8>> },
    /// The checkpoint notes `peer` holds.
    Checkpoints { peer: PeerId, notes: Vec<String> },
}

impl ApplyJob {
    /// The bytes the job holds, for the queue's byte bound.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            ApplyJob::Gossip { data, .. } => data.len(),
            ApplyJob::Catchup { blocks, .. } | ApplyJob::GovCatchup { blocks, .. } => {
                blocks.iter().map(Vec::len).sum()
            }
            ApplyJob::Checkpoints { notes, .. } => notes.iter().map(String::len).sum(),
        }
    }
}

/// What the applier asks of the event loop.
#[derive(Debug)]
pub(crate) enum ApplyOutcome {
    /// Tell gossipsub what to do with message `id`.
    Validation {
        id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    },
    /// A gap before a received block at `height`, signed by `department`: ask `peer`
    /// (which relayed it) or another for the blocks before it.
    Fetch {
        peer: PeerId,
        department: DepartmentId,
        height: u64,
    },
    /// A catch-up batch is through; `progressed` if any block of it extended the chain
    /// (then there may be more to fetch).
    CatchupDone {
        peer: PeerId,
        department: DepartmentId,
        progressed: bool,
    },
    /// A governance block or a department block names a governance height past this
    /// node's: ask `peer` for the governance blocks from here.
    FetchGov { peer: PeerId },
    /// A governance catch-up batch is through; `progressed` if any block applied.
    GovCatchupDone { peer: PeerId, progressed: bool },
    /// `peer` sent an invalid block: one penalty point.
    Misbehaved { peer: PeerId },
    /// A message to gossip: evidence detected here, this witness's cosignature.
    Publish(Vec<u8>),
}

/// What the applier made of one received message or block.
#[derive(Debug)]
pub(crate) enum Handled {
    /// A block went through the ledger.
    Block(Admission),
    /// Equivocation evidence from a peer: kept now (`new`), or known already.
    Evidence { new: bool },
    /// A governance block went through the ledger.
    Gov(GovReceipt),
    /// A checkpoint (or conflict evidence) was taken: `new` if it told this node
    /// anything (a newer checkpoint, new cosignatures, new evidence).
    Checkpoint { new: bool },
    /// The bytes are not a message (or block) of this protocol.
    Undecodable(WireError),
    /// Storage failed: nothing changed, and the sender is not to blame.
    StorageFailed,
}

impl Handled {
    /// The one mapping to gossipsub: forward (Accept), drop (Ignore), or drop and count
    /// against the sender (Reject). Catch-up reads it the same way: Accept is progress,
    /// Reject ends the batch.
    pub(crate) fn acceptance(&self) -> MessageAcceptance {
        match self {
            Handled::Block(Admission::Applied(_) | Admission::Equivocation(_))
            | Handled::Evidence { new: true }
            | Handled::Checkpoint { new: true }
            | Handled::Gov(GovReceipt::Applied(_)) => MessageAcceptance::Accept,
            // New proof of a governance double signature: the conflicting block is the
            // proof, and every node should see it.
            Handled::Gov(GovReceipt::Equivocation(new)) if *new > 0 => MessageAcceptance::Accept,
            Handled::Block(
                Admission::Duplicate | Admission::KnownEquivocation | Admission::Ignored(_),
            )
            | Handled::Evidence { new: false }
            | Handled::Checkpoint { new: false }
            | Handled::Gov(
                GovReceipt::Duplicate
                | GovReceipt::Equivocation(_)
                | GovReceipt::Ahead { .. }
                | GovReceipt::Refused(GovError::NotOnHead { .. }),
            )
            | Handled::StorageFailed
            // A block of a protocol newer than this node reads: this node is too old, the
            // sender did nothing wrong.
            | Handled::Undecodable(WireError::Block(CodecError::UnsupportedVersion(_))) => {
                MessageAcceptance::Ignore
            }
            Handled::Block(Admission::Rejected(_))
            | Handled::Gov(GovReceipt::Refused(_))
            | Handled::Undecodable(_) => MessageAcceptance::Reject,
        }
    }

    /// Whether the sender earns a penalty point. Points count invalid blocks (rejected
    /// or undecodable); a message that is not a block is rejected without one.
    fn penalised(&self) -> bool {
        if matches!(
            self,
            Handled::Undecodable(WireError::Block(CodecError::UnsupportedVersion(_)))
        ) {
            return false;
        }
        matches!(
            self,
            Handled::Block(Admission::Rejected(_))
                | Handled::Undecodable(WireError::Block(_) | WireError::Gov(_))
        ) || matches!(self, Handled::Gov(GovReceipt::Refused(e)) if !matches!(e, GovError::NotOnHead { .. }))
    }

    /// The `huren_net_blocks_rejected_total` reason, if this counts as one. A block
    /// already held does not.
    fn rejected_reason(&self) -> Option<&'static str> {
        match self {
            Handled::Block(Admission::Ignored(e) | Admission::Rejected(e)) => Some(e.code()),
            Handled::Undecodable(WireError::Evidence(_)) => Some("bad_evidence"),
            Handled::Undecodable(WireError::Checkpoint(_)) => Some("bad_checkpoint"),
            Handled::Undecodable(WireError::Block(CodecError::UnsupportedVersion(_))) => {
                Some("version_too_new")
            }
            Handled::Undecodable(_) => Some("malformed"),
            Handled::Gov(GovReceipt::Refused(_)) => Some("governance_refused"),
            Handled::Block(_)
            | Handled::Evidence { .. }
            | Handled::Checkpoint { .. }
            | Handled::Gov(_)
            | Handled::StorageFailed => None,
        }
    }
}

pub(crate) struct Applier {
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) metrics: Arc<Metrics>,
    /// The node's clock: block times are checked against its wall-clock reading.
    pub(crate) clock: crate::clock::SharedClock,
    pub(crate) records_max: usize,
    pub(crate) pending_max: usize,
    /// Early blocks held while the gap before them is fetched, at most `pending_max` of
    /// them and `pending_bytes_max` of their encodings.
    pub(crate) pending: HashMap<(DepartmentId, u64), (Block, usize)>,
    pub(crate) pending_bytes_max: usize,
    pub(crate) pending_bytes: usize,
    /// Chains a signed early block proves ahead of this node's.
    pub(crate) lag: Arc<super::Lag>,
    /// Bytes of the jobs queued for this thread; the event loop adds, this thread takes
    /// away what it has handled.
    pub(crate) queued_bytes: Arc<AtomicUsize>,
    pub(crate) out: mpsc::UnboundedSender<ApplyOutcome>,
    /// Checkpoints: witnessed here as the chains they name reach them.
    pub(crate) checkpoints: Option<Arc<Checkpoints>>,
}

/// Bytes of early blocks held at most (a block is at most `gossip_message_bytes_max`; a
/// count alone would allow 1024 of them, gigabytes).
pub(crate) const PENDING_BYTES_MAX: usize = 64 << 20;

impl Applier {
    /// Runs until every sender of `rx` is gone (the event loop stopped).
    pub(crate) fn run(mut self, rx: Receiver<ApplyJob>) {
        while let Ok(job) = rx.recv() {
            let bytes = job.bytes();
            self.job(job);
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    fn job(&mut self, job: ApplyJob) {
        match job {
            ApplyJob::Gossip { id, source, data } => {
                let acceptance = self.gossip(source, &data).acceptance();
                let _ = self.out.send(ApplyOutcome::Validation {
                    id,
                    source,
                    acceptance,
                });
            }
            ApplyJob::Catchup {
                peer,
                department,
                blocks,
            } => {
                let mut progressed = false;
                for bytes in blocks {
                    match self.catchup_block(peer, &bytes).acceptance() {
                        MessageAcceptance::Accept => progressed = true,
                        MessageAcceptance::Ignore => {}
                        MessageAcceptance::Reject => break,
                    }
                }
                let _ = self.out.send(ApplyOutcome::CatchupDone {
                    peer,
                    department,
                    progressed,
                });
            }
            ApplyJob::Checkpoints { peer, notes } => {
                let net = self.ledger.network();
                for note in notes {
                    let handled = match SignedCheckpoint::parse(&net, &note) {
                        Ok(cp) => self.checkpoint(cp),
                        Err(e) => Handled::Undecodable(WireError::Checkpoint(e)),
                    };
                    self.account(peer, &handled);
                }
            }
            ApplyJob::GovCatchup { peer, blocks } => {
                let mut progressed = false;
                for bytes in blocks {
                    let handled = match GovBlock::decode(&bytes) {
                        Ok(b) => self.gov(peer, b),
                        Err(e) => Handled::Undecodable(WireError::Gov(e)),
                    };
                    self.account(peer, &handled);
                    match handled.acceptance() {
                        MessageAcceptance::Accept => progressed = true,
                        MessageAcceptance::Ignore => {}
                        MessageAcceptance::Reject => break,
                    }
                }
                let _ = self
                    .out
                    .send(ApplyOutcome::GovCatchupDone { peer, progressed });
            }
        }
    }

    /// A governance block through the ledger; a new network in force is logged, and a
    /// block past the head makes the event loop fetch the ones before it.
    fn gov(&mut self, source: PeerId, block: GovBlock) -> Handled {
        let receipt = match self.ledger.receive_gov(block.clone()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "storage failure applying a governance block");
                return Handled::StorageFailed;
            }
        };
        match &receipt {
            GovReceipt::Applied(net) => {
                self.metrics.governance_height.set(net.gov_height());
                tracing::info!(height = net.gov_height(), record = %block.header.record.describe(), "governance record applied");
            }
            GovReceipt::Equivocation(new) if *new > 0 => {
                self.metrics.equivocations.inc();
                tracing::warn!(
                    height = block.height(),
                    "governance equivocation: a department signed two records at one height"
                );
            }
            GovReceipt::Ahead { .. } => {
                let _ = self.out.send(ApplyOutcome::FetchGov { peer: source });
            }
            _ => {}
        }
        Handled::Gov(receipt)
    }

    fn gossip(&mut self, source: PeerId, data: &[u8]) -> Handled {
        let handled = match Gossip::decode(&self.ledger.network(), data) {
            Ok(Gossip::Block(block)) => self.block(source, block, data.len(), true),
            Ok(Gossip::Evidence(ev)) => self.evidence(&ev),
            Ok(Gossip::Gov(block)) => self.gov(source, block),
            Ok(Gossip::Checkpoint(cp)) => self.checkpoint(cp),
            Ok(Gossip::CheckpointConflict(ev)) => match &self.checkpoints {
                None => Handled::Checkpoint { new: false },
                Some(c) => match c.receive_conflict(&ev) {
                    Ok(new) => Handled::Checkpoint { new },
                    Err(e) => {
                        tracing::error!(error = %e, "storage failure keeping checkpoint evidence");
                        Handled::StorageFailed
                    }
                },
            },
            Err(e) => Handled::Undecodable(e),
        };
        self.account(source, &handled);
        handled
    }

    fn catchup_block(&mut self, source: PeerId, bytes: &[u8]) -> Handled {
        let handled = match Block::decode(bytes) {
            Ok(block) => self.block(source, block, bytes.len(), false),
            Err(e) => Handled::Undecodable(WireError::Block(e)),
        };
        self.account(source, &handled);
        handled
    }

    /// Counts a rejection by reason and penalises the sender where it misbehaved.
    fn account(&self, source: PeerId, handled: &Handled) {
        if let Some(reason) = handled.rejected_reason() {
            self.metrics.blocks_rejected.inc(reason);
        }
        match handled {
            Handled::Undecodable(e) => tracing::debug!(peer = %source, error = %e, "undecodable"),
            Handled::Block(Admission::Rejected(e)) => {
                tracing::info!(peer = %source, error = %e, "rejected block");
            }
            _ => {}
        }
        if handled.penalised() {
            let _ = self.out.send(ApplyOutcome::Misbehaved { peer: source });
        }
    }

    fn evidence(&mut self, ev: &Equivocation) -> Handled {
        match self.ledger.record_evidence(ev) {
            Ok(new) => {
                if new {
                    self.metrics.equivocations.inc();
                    tracing::warn!(department = %ev.department(), height = ev.height(), "equivocation evidence received");
                }
                Handled::Evidence { new }
            }
            Err(e) => {
                tracing::error!(error = %e, "storage failure keeping equivocation evidence");
                Handled::StorageFailed
            }
        }
    }

    fn block(&mut self, source: PeerId, block: Block, size: usize, gossiped: bool) -> Handled {
        let dept = block.department().clone();
        let (height, time_ms) = (block.height(), block.header.time_ms);
        let admission =
            match self
                .ledger
                .receive(block.clone(), self.clock.now_ms(), self.records_max)
            {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(error = %e, "storage failure applying a received block");
                    return Handled::StorageFailed;
                }
            };
        match &admission {
            Admission::Applied(head) => {
                self.metrics.blocks_received.inc();
                if gossiped {
                    self.metrics
                        .propagation_seconds
                        .observe(self.clock.now_ms().saturating_sub(time_ms) as f64 / 1000.0);
                }
                let height = self.drain_pending(&dept, head.height);
                self.lag.reached(&dept, height);
                self.advanced(&dept);
            }
            Admission::Equivocation(ev) => {
                self.metrics.equivocations.inc();
                tracing::warn!(department = %ev.department(), height = ev.height(), "equivocation detected");
                let _ = self
                    .out
                    .send(ApplyOutcome::Publish(wire::evidence_message(ev)));
            }
            Admission::Ignored(BlockError::Gap { .. }) => {
                // Its signature was checked before the gap was found: the department's
                // chain has reached `height`, past this node's.
                self.lag.signed(&dept, height);
                if self.pending.len() < self.pending_max
                    && self.pending_bytes + size <= self.pending_bytes_max
                    && !self.pending.contains_key(&(dept.clone(), height))
                {
                    self.pending.insert((dept.clone(), height), (block, size));
                    self.pending_bytes += size;
                }
                let _ = self.out.send(ApplyOutcome::Fetch {
                    peer: source,
                    department: dept,
                    height,
                });
            }
            Admission::Ignored(BlockError::GovAhead { .. }) => {
                // Cut under a governance record this node does not hold yet.
                let _ = self.out.send(ApplyOutcome::FetchGov { peer: source });
            }
            Admission::Duplicate
            | Admission::KnownEquivocation
            | Admission::Ignored(_)
            | Admission::Rejected(_) => {}
        }
        Handled::Block(admission)
    }

    /// A checkpoint from a peer: kept, witnessed if this node's copy shows it; this
    /// witness's cosignature and any conflict evidence go out.
    fn checkpoint(&mut self, cp: SignedCheckpoint) -> Handled {
        let Some(c) = &self.checkpoints else {
            return Handled::Checkpoint { new: false };
        };
        let (dept, height) = (cp.checkpoint.department.clone(), cp.checkpoint.height);
        match c.receive(cp) {
            Ok(got) => {
                if got.new && height > self.ledger.store().head(&dept).map_or(0, |h| h.height) {
                    // Signed by the department: its chain reached this height.
                    self.lag.signed(&dept, height);
                }
                if let Some(mine) = got.cosigned {
                    let _ = self
                        .out
                        .send(ApplyOutcome::Publish(wire::checkpoint_message(
                            &mine.encode(),
                        )));
                }
                if let Some(ev) = got.conflict {
                    let _ =
                        self.out
                            .send(ApplyOutcome::Publish(wire::checkpoint_conflict_message(
                                &ev,
                            )));
                }
                Handled::Checkpoint { new: got.new }
            }
            Err(e) => {
                tracing::error!(error = %e, "storage failure taking a checkpoint");
                Handled::StorageFailed
            }
        }
    }

    /// `dept`'s chain moved: a checkpoint waiting for this height is witnessed.
    fn advanced(&mut self, dept: &DepartmentId) {
        let Some(c) = &self.checkpoints else {
            return;
        };
        match c.advanced(dept) {
            Ok(Some(mine)) => {
                let _ = self
                    .out
                    .send(ApplyOutcome::Publish(wire::checkpoint_message(
                        &mine.encode(),
                    )));
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "storage failure cosigning a checkpoint"),
        }
    }

    /// Applies the held blocks that now follow `dept`'s head at `height`, in order;
    /// returns the head reached.
    fn drain_pending(&mut self, dept: &DepartmentId, mut height: u64) -> u64 {
        while let Some((next, size)) = self.pending.remove(&(dept.clone(), height + 1)) {
            self.pending_bytes -= size;
            match self
                .ledger
                .receive(next, self.clock.now_ms(), self.records_max)
            {
                Ok(Admission::Applied(h)) => {
                    self.metrics.blocks_received.inc();
                    height = h.height;
                }
                _ => break,
            }
        }
        // Drop anything now at or below the head: it can never apply.
        let mut freed = 0;
        self.pending.retain(|(d, h), (_, size)| {
            let keep = d != dept || *h > height;
            if !keep {
                freed += *size;
            }
            keep
        });
        self.pending_bytes -= freed;
        height
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{TestLedger, GD};
    use huren_core::validate::ChainView;

    struct Fixture {
        t: TestLedger,
        applier: Applier,
        out: mpsc::UnboundedReceiver<ApplyOutcome>,
        peer: PeerId,
    }

    impl Fixture {
        fn new() -> Self {
            let t = TestLedger::new();
            let (tx, out) = mpsc::unbounded_channel();
            let applier = Applier {
                checkpoints: None,
                ledger: t.ledger.clone(),
                metrics: Arc::new(Metrics::default()),
                clock: crate::clock::system(),
                records_max: huren_core::ledger::BLOCK_RECORDS_MAX,
                pending_max: 16,
                pending: HashMap::new(),
                pending_bytes_max: PENDING_BYTES_MAX,
                pending_bytes: 0,
                lag: Arc::new(super::super::Lag::new(crate::clock::system())),
                queued_bytes: Arc::default(),
                out: tx,
            };
            let peer = libp2p::identity::Keypair::generate_ed25519()
                .public()
                .to_peer_id();
            Self {
                t,
                applier,
                out,
                peer,
            }
        }

        /// Gossips `data` from the fixture's peer; returns gossipsub's verdict and what
        /// else the applier asked of the event loop.
        fn gossip(&mut self, data: Vec<u8>) -> (&'static str, Vec<ApplyOutcome>) {
            let id = MessageId::from(data.clone());
            let source = self.peer;
            self.applier.job(ApplyJob::Gossip { id, source, data });
            let mut outcomes = self.drain();
            let Some(ApplyOutcome::Validation { acceptance, .. }) = outcomes.pop() else {
                panic!("the validation result comes last: {outcomes:?}");
            };
            (verdict(acceptance), outcomes)
        }

        fn drain(&mut self) -> Vec<ApplyOutcome> {
            std::iter::from_fn(|| self.out.try_recv().ok()).collect()
        }

        fn head(&self) -> Option<u64> {
            let d = DepartmentId::parse(GD).expect("department");
            self.t.ledger.store().head(&d).map(|h| h.height)
        }

        fn rejected(&self, reason: &str) -> u64 {
            self.applier
                .metrics
                .blocks_rejected
                .snapshot()
                .get(reason)
                .copied()
                .unwrap_or(0)
        }

        /// gd.transport's first block, issuing `serial`.
        fn first(&self, serial: u64) -> Block {
            self.t.block(GD, GD, 1, vec![TestLedger::issue(GD, serial)])
        }

        /// The block after `prev`, issuing `serial`.
        fn next(&self, prev: &Block, serial: u64) -> Block {
            self.t.next(prev, vec![TestLedger::issue(GD, serial)])
        }
    }

    /// What comes back to the event loop besides the verdict, as a short tag per outcome.
    fn kinds(outcomes: &[ApplyOutcome]) -> Vec<&'static str> {
        outcomes
            .iter()
            .map(|o| match o {
                ApplyOutcome::Validation { .. } => "validation",
                ApplyOutcome::Fetch { .. } => "fetch",
                ApplyOutcome::CatchupDone { .. } => "catchup_done",
                ApplyOutcome::Misbehaved { .. } => "misbehaved",
                ApplyOutcome::Publish(_) => "evidence",
                ApplyOutcome::FetchGov { .. } => "fetch_gov",
                ApplyOutcome::GovCatchupDone { .. } => "gov_catchup_done",
            })
            .collect()
    }

    /// gossipsub's verdict by name (`MessageAcceptance` has no `PartialEq`).
    fn verdict(a: MessageAcceptance) -> &'static str {
        match a {
            MessageAcceptance::Accept => "accept",
            MessageAcceptance::Ignore => "ignore",
            MessageAcceptance::Reject => "reject",
        }
    }

    /// Gossip in sequence, each message with the verdict gossipsub gets and what else goes
    /// back to the event loop.
    #[test]
    fn gossip_outcomes_map_to_accept_ignore_reject() {
        let mut f = Fixture::new();
        let b1 = f.first(1);
        let b2 = f.next(&b1, 2);
        let b2_other = f.next(&b1, 20);
        let forged =
            f.t.block(GD, "sh.transport", 2, vec![TestLedger::issue(GD, 2)]);
        let future = {
            let mut h = b1.header.clone();
            h.time_ms =
                crate::clock::system().now_ms() + huren_core::validate::FUTURE_SKEW_MS_MAX + 60_000;
            h.sign(&f.t.key(GD))
        };
        let evidence = wire::evidence_message(
            &Equivocation::new(&f.t.ledger.network(), b1.clone(), future.clone())
                .expect("evidence"),
        );
        let cases: Vec<(&str, Vec<u8>, &str, Vec<&str>)> = vec![
            ("first block", wire::block_message(&b1), "accept", vec![]),
            ("the same again", wire::block_message(&b1), "ignore", vec![]),
            (
                "forged signature",
                wire::block_message(&forged),
                "reject",
                vec!["misbehaved"],
            ),
            (
                "undecodable block",
                vec![1, 0xff, 0],
                "reject",
                vec!["misbehaved"],
            ),
            ("unknown tag", vec![9, 9], "reject", vec![]),
            ("bad evidence", vec![2, 0, 0], "reject", vec![]),
            ("evidence", evidence.clone(), "accept", vec![]),
            ("known evidence", evidence, "ignore", vec![]),
            (
                "a block from the future",
                {
                    let mut h = b2.header.clone();
                    h.time_ms = crate::clock::system().now_ms()
                        + huren_core::validate::FUTURE_SKEW_MS_MAX
                        + 60_000;
                    wire::block_message(&h.sign(&f.t.key(GD)))
                },
                "ignore",
                vec![],
            ),
            ("next block", wire::block_message(&b2), "accept", vec![]),
            (
                "equivocation",
                wire::block_message(&b2_other),
                "accept",
                vec!["evidence"],
            ),
        ];
        for (name, data, acceptance, outcomes) in cases {
            let (got, others) = f.gossip(data);
            assert_eq!((got, kinds(&others)), (acceptance, outcomes), "{name}");
        }
        assert_eq!(f.head(), Some(2));
        for (reason, n) in [
            ("bad_signature", 1),
            ("malformed", 2),
            ("bad_evidence", 1),
            ("from_future", 1),
            ("already_have", 0),
        ] {
            assert_eq!(f.rejected(reason), n, "{reason}");
        }
        assert_eq!(f.applier.metrics.equivocations.get(), 2);
        assert_eq!(f.applier.metrics.blocks_received.get(), 2);
    }

    #[test]
    fn an_early_block_waits_for_the_gap_to_be_fetched() {
        let mut f = Fixture::new();
        let b1 = f.first(1);
        let b2 = f.next(&b1, 2);
        let b3 = f.next(&b2, 3);
        assert_eq!(f.gossip(wire::block_message(&b1)).0, "accept");
        let (verdict, others) = f.gossip(wire::block_message(&b3));
        assert_eq!((verdict, kinds(&others)), ("ignore", vec!["fetch"]));
        assert_eq!(f.rejected("gap"), 1);
        // The fetched block arrives by catch-up: it applies, and so does the held one.
        f.applier.job(ApplyJob::Catchup {
            peer: f.peer,
            department: b2.department().clone(),
            blocks: vec![b2.encode()],
        });
        assert!(matches!(
            f.drain().as_slice(),
            [ApplyOutcome::CatchupDone {
                progressed: true,
                ..
            }]
        ));
        assert_eq!(f.head(), Some(3));
        assert!(f.applier.pending.is_empty());
        assert_eq!(f.applier.pending_bytes, 0);
    }

    /// Early blocks are held within a byte budget as well as a count: past it they are
    /// dropped (and fetched again later), and the budget is given back as they apply.
    #[test]
    fn early_blocks_are_held_within_a_byte_budget() {
        let mut f = Fixture::new();
        let b1 = f.first(1);
        let b2 = f.next(&b1, 2);
        let b3 = f.next(&b2, 3);
        let b4 = f.next(&b3, 4);
        let size = wire::block_message(&b3).len();
        f.applier.pending_bytes_max = size + size / 2;
        assert_eq!(f.gossip(wire::block_message(&b1)).0, "accept");
        assert_eq!(f.gossip(wire::block_message(&b3)).0, "ignore");
        assert_eq!(f.gossip(wire::block_message(&b4)).0, "ignore");
        assert_eq!(
            f.applier.pending.len(),
            1,
            "the second early block is over the budget"
        );
        assert_eq!(f.applier.pending_bytes, size);
        // The same early block again takes no second share.
        assert_eq!(f.gossip(wire::block_message(&b3)).0, "ignore");
        assert_eq!(f.applier.pending_bytes, size);
        // The gap fills: the held block applies and its bytes are free again.
        assert_eq!(f.gossip(wire::block_message(&b2)).0, "accept");
        assert_eq!(f.head(), Some(3));
        assert_eq!(f.applier.pending_bytes, 0);
        // A proven gap (b4 signed at height 4) showed in the lag until the chain passed it.
        assert_eq!(
            f.applier.lag.behind(b4.department(), 3),
            None,
            "within the grace"
        );
    }

    #[test]
    fn a_catchup_batch_stops_at_the_first_invalid_block() {
        let mut f = Fixture::new();
        let b1 = f.first(1);
        let b2 = f.next(&b1, 2);
        let department = b1.department().clone();
        f.applier.job(ApplyJob::Catchup {
            peer: f.peer,
            department: department.clone(),
            blocks: vec![b1.encode(), vec![0xff], b2.encode()],
        });
        assert_eq!(
            kinds(&f.drain()),
            vec!["misbehaved", "catchup_done"],
            "penalised, then done"
        );
        assert_eq!(f.head(), Some(1), "nothing after the bad block applied");
        // A batch of blocks already held makes no progress and asks for no more.
        f.applier.job(ApplyJob::Catchup {
            peer: f.peer,
            department,
            blocks: vec![b1.encode()],
        });
        assert!(matches!(
            f.drain().as_slice(),
            [ApplyOutcome::CatchupDone {
                progressed: false,
                ..
            }]
        ));
    }
}
