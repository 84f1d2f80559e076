//! Block production by group commit, in two stages.
//!
//! Department requests (issue, bulk import, the licence's later records: suspend,
//! reinstate, revoke, renew, reissue, amend, transfer, annul) queue on a bounded
//! channel. The producer thread takes the first waiting request, keeps collecting for
//! `batch_window_ms` or until `block_records_max` records, checks each request on its own
//! against the chain plus the records already in the batch (so a bad request fails alone),
//! signs the credentials and the block. The committer thread then applies the block in
//! one sled transaction, flushes, moves the signing record, and only then answers every
//! waiting request and publishes the block. One signature and one fsync cover the lot.
//!
//! The stages overlap: while the committer writes block h, the producer prepares block
//! h+1 on the chain as it will be once h is appended (`Ahead`: h's changes over the
//! store, h's hash as `prev`). Block h+1 goes to the committer only after h is durable;
//! if h failed, h+1 is dropped unsent and its requests are refused, and serials go back.
//! So at most one block is being written and one prepared.
//!
//! Invariants: it never answers success for a record that is not flushed to disk; it
//! never builds a block that leaves the process on a block that is not durable; the
//! signing record reaches a height before any block at that height leaves the process
//! (a block signed in the producer but never written, after a crash, was seen by no one).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use huren_core::issuance::Change;
use huren_core::ledger::{AnnulReason, BlockHeader, Issue, Record, RevokeReason, SuspendReason};
use huren_core::validate::{BlockError, ChainView, Head, LicenceState, Overlay, Place, Transfer};
use huren_core::{
    Block, Credential, DecodeError, DepartmentId, Hash32, LicenceId, LicenceType, Network,
    OfficerId, SecretKey,
};
use tokio::sync::oneshot;

use crate::ledger::{AppendError, Ledger};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// What the officer asks for, checked by `core::issuance::draft`.
    pub terms: huren_core::issuance::Terms,
    pub officer: OfficerId,
    /// For a transfer in (转入): the other region's licence this one continues.
    pub origin: Option<LicenceId>,
}

/// A change of a licence's standing: a record without a new credential.
#[derive(Debug, Clone)]
pub enum Action {
    /// 暂扣, until a reinstate or, with an end, until then (unix seconds).
    Suspend(SuspendReason, Option<i64>),
    Reinstate,
    Revoke(RevokeReason),
    /// 转出 to a department of another region.
    TransferOut(DepartmentId),
    /// The revocation or suspension the licence's status stands on is annulled.
    Annul(AnnulReason),
}

#[derive(Debug, Clone)]
pub enum Job {
    Issue(IssueRequest),
    Lifecycle {
        licence_id: LicenceId,
        action: Action,
        officer: OfficerId,
    },
    /// A new credential for a licence this department issued (renew, reissue, amend),
    /// drafted from the one in force.
    Recredential {
        licence_id: LicenceId,
        change: Change,
        officer: OfficerId,
    },
}

/// Where a record landed.
#[derive(Debug, Clone)]
pub struct BlockRef {
    pub department: DepartmentId,
    pub height: u64,
    pub hash: Hash32,
}

/// Proof of a durable, acknowledged change.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub licence_id: LicenceId,
    /// The QR text, for issuance.
    pub qr: Option<String>,
    pub state: LicenceState,
    pub block: BlockRef,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProduceError {
    /// The request breaks a ledger rule (unknown licence, already revoked, type not
    /// granted…). Nothing was written for it.
    #[error("{0}")]
    Refused(BlockError),
    /// The request breaks the issuance policy genesis sets (type not defined or not
    /// granted, a required holder field missing, validity too long…). Nothing was signed.
    #[error("{0}")]
    Policy(huren_core::issuance::PolicyError),
    /// The drafted credential could not be encoded for signing (it passed the bounds
    /// check, so this is a fault in the codec). Nothing was signed.
    #[error("{0}")]
    Credential(#[from] DecodeError),
    #[error("the block producer is overloaded or stopping; try again")]
    Unavailable,
    /// The signing record beside the key could not be written after a block: the block
    /// is durable but is not released, and the producer stops.
    #[error("the signing record could not be written: {0}")]
    SigningRecord(String),
    /// A block's flush failed earlier; the producer stopped rather than build on a block
    /// whose durability is unknown.
    #[error("issuing has stopped after a disk failure: restart the node and run huren-node check")]
    Stopped,
    /// The department retired after its block `last_height` (a governance record).
    #[error("this department retired after its block {last_height}; it signs nothing more")]
    Retired { last_height: u64 },
    /// The network names a key for the next block that this node does not hold.
    #[error("the key in force for block {height} of this department is {key}, which this node does not hold: configure it as issuer_key (or issuer_key_next) and restart")]
    NoKey { height: u64, key: String },
    /// This node's clock reads earlier than its own chain's newest block.
    #[error("this node's clock ({now_ms} ms) is behind its chain's newest block ({head_ms} ms); it signs nothing until the clock has caught up: check the node's time synchronisation")]
    ClockBehind { now_ms: u64, head_ms: u64 },
    /// Peers hold this department's chain beyond our head (restored backup, fresh data
    /// directory): signing now would fork our own chain. Catch-up is under way.
    #[error("this node is catching up its own department's chain (local height {local}, its key has signed up to {signed}); try again shortly")]
    CatchingUp { local: u64, signed: u64 },
    /// The network's protocol version is newer than this release: it signs nothing (its
    /// blocks would be refused) until the node is upgraded.
    #[error("the network runs protocol version {network}; this node knows up to {supported}: upgrade the node (it follows the network but signs nothing until then)")]
    ProtocolTooOld { network: u32, supported: u32 },
    /// A renewal, reissue or amendment needs the credential in force, which this node
    /// does not hold (the licence was issued elsewhere, or before its data directory).
    #[error("this node does not hold the credential in force of {0}; renew, reissue and amend start from it")]
    NoCredential(LicenceId),
    /// Storage failed; nothing in the batch was acknowledged.
    #[error("storage failure: {0}")]
    Storage(#[from] StoreError),
    /// The block built for the batch broke a ledger rule as a whole: a fault in block
    /// production, caught by the ledger before anything was written or acknowledged.
    #[error("block production failed: {0}")]
    BlockRefused(BlockError),
}

impl From<AppendError> for ProduceError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Refused(e) => ProduceError::BlockRefused(e),
            AppendError::Store(e) => ProduceError::Storage(e),
        }
    }
}

type Reply = oneshot::Sender<Vec<Result<Receipt, ProduceError>>>;

/// Cloneable handle to the producer thread.
#[derive(Clone)]
pub struct ProducerHandle {
    tx: SyncSender<(Vec<Job>, Reply)>,
}

impl ProducerHandle {
    /// Queues jobs that go into the same block and waits until they are durable.
    pub async fn submit(&self, jobs: Vec<Job>) -> Vec<Result<Receipt, ProduceError>> {
        let n = jobs.len();
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send((jobs, reply)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                return vec![Err(ProduceError::Unavailable); n];
            }
        }
        rx.await
            .unwrap_or_else(|_| vec![Err(ProduceError::Unavailable); n])
    }
}

/// How far the clock may read behind the chain's head and still sign (at the head's
/// time): small steps of time synchronisation, not a clock set back.
const CLOCK_BEHIND_TOLERANCE_MS: u64 = 1_000;

/// How often the producer looks whether the block in flight was written while it waits
/// for the next request (it wakes as soon as a request comes).
const IN_FLIGHT_POLL: Duration = Duration::from_millis(1);

pub struct ProducerConfig {
    pub department: DepartmentId,
    /// The department's issuer keys this node holds: its key in force, and the one a
    /// scheduled rotation will bring in (`issuer_key_next`). Each block and its
    /// credentials are signed with the key the network in force names for its height.
    pub keys: Vec<SecretKey>,
    pub batch_window: Duration,
    pub block_records_max: usize,
    pub queue_max: usize,
    /// The highest height the issuer key has signed, kept beside the key.
    pub signing: crate::signing::SigningRecord,
    /// The node's clock: block and credential times come from its wall-clock reading.
    pub clock: crate::clock::SharedClock,
    /// Where this department's checkpoints are signed and kept.
    pub checkpoints: Arc<crate::checkpoints::Checkpoints>,
    pub checkpoint_spacing: Duration,
    pub checkpoint_interval: Duration,
    /// The newest protocol version this node signs (`PROTOCOL_VERSION`; lower only to
    /// drill an upgrade: the node then behaves as an older release would).
    pub protocol_max: u32,
}

/// What the producer hands the network layer to gossip.
// One value per block or checkpoint, moved straight to the network handle: its size does
// not matter.
#[allow(clippy::large_enum_variant)]
pub enum Published {
    /// A block, once it is durable.
    Block(huren_core::Block),
    /// A checkpoint this department signed (its encoded note).
    Checkpoint(String),
}

/// Called with every block after it is durable and with every checkpoint signed (the
/// network layer gossips them), from the committer and the producer threads.
pub type OnPublish = Arc<dyn Fn(Published) + Send + Sync>;

/// Starts the producer and committer threads.
pub fn spawn(
    ledger: Arc<Ledger>,
    cfg: ProducerConfig,
    metrics: Arc<Metrics>,
    on_publish: OnPublish,
) -> ProducerHandle {
    let (tx, rx) = sync_channel(cfg.queue_max);
    // One block in the committer's hands at a time: the producer sends the next only
    // after the one before answered.
    let (commit_tx, commit_rx) = sync_channel::<Prepared>(1);
    let (done_tx, done_rx) = sync_channel::<Committed>(1);
    let signed = Arc::new(AtomicU64::new(cfg.signing.highest()));
    let ProducerConfig {
        department,
        keys,
        batch_window,
        block_records_max,
        queue_max: _,
        signing,
        clock,
        checkpoints,
        checkpoint_spacing,
        checkpoint_interval,
        protocol_max,
    } = cfg;
    let committer = Committer {
        ledger: ledger.clone(),
        signing,
        signed: signed.clone(),
        metrics: metrics.clone(),
        on_publish: on_publish.clone(),
        records_max: block_records_max,
    };
    std::thread::Builder::new()
        .name("huren-committer".into())
        .spawn(move || committer.run(commit_rx, done_tx))
        .expect("spawning the committer thread");
    std::thread::Builder::new()
        .name("huren-producer".into())
        .spawn(move || {
            Producer {
                net: ledger.network().clone(),
                store: ledger.store().clone(),
                ledger,
                cfg: Settings {
                    department,
                    keys,
                    batch_window,
                    block_records_max,
                    clock,
                    checkpoints,
                    checkpoint_spacing,
                    checkpoint_interval,
                    protocol_max,
                },
                metrics,
                on_publish,
                serials: HashMap::new(),
                stopped: false,
                signed,
                commit_tx,
                done_rx,
                in_flight: None,
                last_checkpoint: Instant::now(),
            }
            .run(rx)
        })
        .expect("spawning the producer thread");
    ProducerHandle { tx }
}

/// The producer's part of `ProducerConfig` (the signing record is the committer's).
struct Settings {
    department: DepartmentId,
    keys: Vec<SecretKey>,
    batch_window: Duration,
    block_records_max: usize,
    clock: crate::clock::SharedClock,
    checkpoints: Arc<crate::checkpoints::Checkpoints>,
    checkpoint_spacing: Duration,
    checkpoint_interval: Duration,
    protocol_max: u32,
}

struct Producer {
    net: Arc<Network>,
    /// For reads: heads, licence states, serial counters.
    store: Arc<Store>,
    /// Governance, and checkpoints' reads; blocks reach the store through the committer.
    ledger: Arc<Ledger>,
    cfg: Settings,
    metrics: Arc<Metrics>,
    on_publish: OnPublish,
    /// Next serial per type, loaded from the store on first use and written with blocks.
    serials: HashMap<LicenceType, u64>,
    /// Set when a block's flush failed: the state on disk is unknown, so this producer
    /// signs nothing more until the node is restarted (and `huren-node check` run).
    stopped: bool,
    /// The highest height the signing record holds (the committer moves it).
    signed: Arc<AtomicU64>,
    commit_tx: SyncSender<Prepared>,
    done_rx: Receiver<Committed>,
    /// The block the committer is writing, as the next block is prepared on it.
    in_flight: Option<InFlight>,
    /// When checkpoints were last looked at: under a load that keeps a block always in
    /// flight, the producer waits for it once a spacing to sign a checkpoint.
    last_checkpoint: Instant,
}

/// The block the committer is writing: what the chain will be once it is appended.
struct InFlight {
    head: Head,
    licences: HashMap<LicenceId, LicenceState>,
    transfers: HashMap<LicenceId, Transfer>,
    credentials: HashMap<LicenceId, Vec<u8>>,
    /// The serial counters before it: what they go back to if it fails.
    serials_before: HashMap<LicenceType, u64>,
}

/// The chain as the next block sees it: the block in flight (if any) over the store.
struct Ahead<'a> {
    store: &'a Store,
    department: &'a DepartmentId,
    in_flight: Option<&'a InFlight>,
}

impl ChainView for Ahead<'_> {
    fn head(&self, department: &DepartmentId) -> Option<Head> {
        match self.in_flight {
            Some(f) if department == self.department => Some(f.head),
            _ => self.store.head(department),
        }
    }
    fn licence(&self, id: &LicenceId) -> Option<LicenceState> {
        self.in_flight
            .and_then(|f| f.licences.get(id).copied())
            .or_else(|| self.store.licence(id))
    }
    fn transfer(&self, origin: &LicenceId) -> Option<Transfer> {
        self.in_flight
            .and_then(|f| f.transfers.get(origin).cloned())
            .or_else(|| self.store.transfer(origin))
    }
}

impl Ahead<'_> {
    /// The credential in force of a licence this department issued.
    fn credential(&self, id: &LicenceId) -> Result<Option<Vec<u8>>, StoreError> {
        match self.in_flight.and_then(|f| f.credentials.get(id)) {
            Some(c) => Ok(Some(c.clone())),
            None => self.store.credential(id),
        }
    }
}

/// A signed block on its way to the committer, with the answers it owes.
struct Prepared {
    block: Block,
    credentials: Vec<(LicenceId, Vec<u8>)>,
    serials: Vec<(LicenceType, u64)>,
    now: u64,
    started: Instant,
    replies: Vec<(Reply, Vec<Answer>)>,
}

/// One request's answer once its block is durable (or not).
enum Answer {
    /// Settled without the block (refused, or failed on its own).
    Done(Result<Receipt, ProduceError>),
    /// Good if and only if the block is durable.
    Pending(Receipt),
}

/// Answers every request: pending ones with their receipts, or with `failure`.
fn answer(replies: Vec<(Reply, Vec<Answer>)>, failure: Option<&ProduceError>) {
    for (reply, answers) in replies {
        let answers = answers
            .into_iter()
            .map(|a| match (a, failure) {
                (Answer::Done(r), _) => r,
                (Answer::Pending(receipt), None) => Ok(receipt),
                (Answer::Pending(_), Some(e)) => Err(e.clone()),
            })
            .collect();
        // A requester that went away (client disconnected) is fine: the record is durable.
        let _ = reply.send(answers);
    }
}

/// The committer's word on a block: durable, or failed (and whether issuing stops).
type Committed = Result<(), Stop>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The block was not written; the next one may be tried.
    No,
    /// Whether the block is on disk is unknown, or the signing record could not move:
    /// nothing more is signed until the node restarts.
    Yes,
}

/// The second stage: writes each prepared block, moves the signing record, answers and
/// publishes; the only writer of this department's chain.
struct Committer {
    ledger: Arc<Ledger>,
    /// The highest height the issuer key has signed, kept beside the key.
    signing: crate::signing::SigningRecord,
    signed: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    on_publish: OnPublish,
    records_max: usize,
}

impl Committer {
    fn run(mut self, rx: Receiver<Prepared>, done: SyncSender<Committed>) {
        // Ends when the producer goes (the node is stopping).
        for prepared in rx {
            let outcome = self.commit(prepared);
            if done.send(outcome).is_err() {
                return;
            }
        }
    }

    fn commit(&mut self, p: Prepared) -> Committed {
        let Prepared {
            block,
            credentials,
            serials,
            now,
            started,
            replies,
        } = p;
        let written = self
            .ledger
            .append_own(block, &credentials, &serials, now, self.records_max)
            .map_err(ProduceError::from)
            .and_then(|(head, block)| {
                // Durable before the block is acknowledged or gossiped.
                self.signing
                    .signed(head.height)
                    .map_err(|e| ProduceError::SigningRecord(e.to_string()))?;
                self.signed.store(head.height, Ordering::Release);
                Ok(block)
            });
        match written {
            Ok(block) => {
                let n = block.header.records.len();
                self.metrics.blocks_produced.inc();
                self.metrics.records_produced.add(n as u64);
                self.metrics
                    .block_production_seconds
                    .observe(started.elapsed().as_secs_f64());
                tracing::debug!(height = block.height(), records = n, "block produced");
                answer(replies, None);
                (self.on_publish)(Published::Block(block));
                Ok(())
            }
            Err(e) => {
                let stop = match &e {
                    ProduceError::SigningRecord(_) => {
                        tracing::error!(error = %e, "issuing stops until the node is restarted");
                        Stop::Yes
                    }
                    ProduceError::Storage(StoreError::Flush(_)) => {
                        // Fail-stop: the block may or may not be on disk. Acknowledging it,
                        // building the next block on it or letting a retry issue the same
                        // licence again would each be wrong in one of the two cases.
                        tracing::error!(error = %e, "flushing a block failed; the state on disk is unknown: issuing stops until the node is restarted and checked");
                        Stop::Yes
                    }
                    _ => {
                        tracing::error!(error = %e, "block production failed; nothing in the batch was acknowledged");
                        Stop::No
                    }
                };
                if stop == Stop::Yes {
                    self.metrics.producer_stopped.set(1);
                }
                answer(replies, Some(&e));
                Err(stop)
            }
        }
    }
}

/// What a credential-changing request becomes on the ledger.
#[derive(Debug, Clone, Copy)]
enum Recredential {
    Renew,
    Reissue,
    Amend,
}

/// A request after the first, sequential pass.
enum Draft {
    Failed(ProduceError),
    /// A new licence (with its origin, for a transfer in).
    Issue(Credential, OfficerId, Option<LicenceId>),
    /// A new credential for a licence on the ledger.
    Recredential(Credential, OfficerId, Recredential),
    Lifecycle(Record),
}

/// Signs credentials on every core. Threads are spawned per block: a few microseconds,
/// against tens of microseconds per signature.
fn sign_all(
    key: &SecretKey,
    creds: &[&Credential],
) -> Vec<Result<huren_core::SignedCredential, huren_core::DecodeError>> {
    const PER_THREAD_MIN: usize = 32;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(creds.len() / PER_THREAD_MIN)
        .max(1);
    if threads == 1 {
        return creds.iter().map(|c| c.sign(key)).collect();
    }
    let chunk = creds.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = creds
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|c| c.sign(key)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signing a credential does not panic"))
            .collect()
    })
}

impl Producer {
    fn run(mut self, rx: Receiver<(Vec<Job>, Reply)>) {
        let mut carry: Option<(Vec<Job>, Reply)> = None;
        loop {
            // Checkpoints read the tree, the status set and the head together: only with
            // no block in flight. Under a load that always has one, wait for it once a
            // spacing.
            if self.in_flight.is_none()
                || self.last_checkpoint.elapsed() >= self.cfg.checkpoint_spacing
            {
                self.settle();
                self.checkpoint();
                self.last_checkpoint = Instant::now();
            }
            let first = match carry.take() {
                Some(m) => m,
                // A block is being written: take the next request as soon as it comes (it
                // is prepared on the block in flight), or notice that the write finished.
                None if self.in_flight.is_some() => match rx.recv_timeout(IN_FLIGHT_POLL) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        self.poll_settled();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        // The node is stopping: let the block in flight finish.
                        self.settle();
                        return;
                    }
                },
                // Idle: wake for the next checkpoint due.
                None => match rx.recv_timeout(self.cfg.checkpoint_spacing) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
            };
            let mut batch = vec![first];
            let mut records: usize = batch[0].0.len();
            let deadline = Instant::now() + self.cfg.batch_window;
            while records < self.cfg.block_records_max {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(m) if records + m.0.len() > self.cfg.block_records_max => {
                        carry = Some(m);
                        break;
                    }
                    Ok(m) => {
                        records += m.0.len();
                        batch.push(m);
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            self.produce(batch);
        }
    }

    /// Waits for the block in flight, if any. False if it failed: then serials go back to
    /// before it, and after a failure of unknown outcome issuing stops.
    fn settle(&mut self) -> bool {
        let Some(f) = self.in_flight.take() else {
            return true;
        };
        let word = self.done_rx.recv();
        self.settled(f, word)
    }

    /// Takes the committer's word on the block in flight if it has come.
    fn poll_settled(&mut self) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        match self.done_rx.try_recv() {
            Ok(word) => {
                self.settled(f, Ok(word));
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => self.in_flight = Some(f),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.settled(f, Err(std::sync::mpsc::RecvError));
            }
        }
    }

    fn settled(
        &mut self,
        f: InFlight,
        word: Result<Committed, std::sync::mpsc::RecvError>,
    ) -> bool {
        match word {
            Ok(Ok(())) => true,
            Ok(Err(stop)) => {
                // Serials handed out in the failed block (and any prepared on it) are
                // reused: nothing was written.
                self.serials = f.serials_before;
                if stop == Stop::Yes {
                    self.stopped = true;
                }
                false
            }
            Err(_) => {
                tracing::error!("the committer thread is gone; issuing stops");
                self.stopped = true;
                self.metrics.producer_stopped.set(1);
                false
            }
        }
    }

    /// Signs and publishes a checkpoint of this chain if one is due (the chain moved a
    /// spacing ago, or the interval passed). Only with no block in flight, so the tree,
    /// the status set and the head it reads belong together.
    fn checkpoint(&mut self) {
        if self.stopped {
            return;
        }
        debug_assert!(self.in_flight.is_none());
        let gov = self.ledger.governance().height();
        let signed = self.cfg.checkpoints.sign_own(
            &self.cfg.department,
            |height| self.key_for(height, gov).ok(),
            self.cfg.checkpoint_spacing.as_millis() as u64,
            self.cfg.checkpoint_interval.as_millis() as u64,
        );
        match signed {
            Ok(Some(cp)) => (self.on_publish)(Published::Checkpoint(cp.encode())),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "signing a checkpoint"),
        }
    }

    /// Prepares a block from `batch` on the chain as it will be after the block in
    /// flight, then hands it to the committer once that one is durable.
    fn produce(&mut self, batch: Vec<(Vec<Job>, Reply)>) {
        if self.stopped {
            for (jobs, reply) in batch {
                let _ = reply.send(vec![Err(ProduceError::Stopped); jobs.len()]);
            }
            return;
        }
        let in_flight = self.in_flight.take();
        let prepared = self.prepare(batch, in_flight.as_ref());
        self.in_flight = in_flight;
        let Some((prepared, next)) = prepared else {
            return;
        };
        if !self.settle() {
            // Built on a block that did not become durable: dropped unsent, and its
            // requests refused (a retry goes into a block on the real chain).
            let e = if self.stopped {
                ProduceError::Stopped
            } else {
                ProduceError::Unavailable
            };
            let Prepared { replies, .. } = prepared;
            answer(replies, Some(&e));
            return;
        }
        if let Err(std::sync::mpsc::SendError(p)) = self.commit_tx.send(prepared) {
            tracing::error!("the committer thread is gone; issuing stops");
            self.stopped = true;
            self.serials = next.serials_before;
            answer(p.replies, Some(&ProduceError::Stopped));
            return;
        }
        self.in_flight = Some(next);
    }

    /// Checks, drafts, signs and admits `batch` on the chain as `in_flight` leaves it:
    /// the block for the committer and what it will change, or `None` when every request
    /// was answered here (refused, or nothing could be signed).
    fn prepare(
        &mut self,
        batch: Vec<(Vec<Job>, Reply)>,
        in_flight: Option<&InFlight>,
    ) -> Option<(Prepared, InFlight)> {
        let started = Instant::now();
        let now = self.cfg.clock.now_ms();
        let store = self.store.clone();
        let department = self.cfg.department.clone();
        let ahead = Ahead {
            store: &store,
            department: &department,
            in_flight,
        };
        let head = ahead.head(&department);
        let height = head.map_or(1, |h| h.height + 1);
        // The network in force for this whole block: a governance record arriving
        // meanwhile applies from the next one.
        let gov = self.ledger.governance();
        let gov_height = gov.height();
        self.net = gov.newest().clone();
        let version = self.net.protocol_version();
        let refuse = |batch: Vec<(Vec<Job>, Reply)>, e: ProduceError| {
            for (jobs, reply) in batch {
                let _ = reply.send(vec![Err(e.clone()); jobs.len()]);
            }
        };
        if version > self.cfg.protocol_max {
            // Never sign a block this release cannot write correctly: say so, and keep
            // following the network (the ledger refuses nothing it cannot read).
            let e = ProduceError::ProtocolTooOld {
                network: version,
                supported: self.cfg.protocol_max,
            };
            tracing::error!(error = %e, "not signing");
            refuse(batch, e);
            return None;
        }
        let key = match self.key_for(height, gov_height) {
            Ok(k) => k,
            Err(e) => {
                refuse(batch, e);
                return None;
            }
        };
        let local = head.map_or(0, |h| h.height);
        // Chain time never decreases. A clock a moment behind the head (an NTP step of a
        // few milliseconds) signs at the head's time; a clock further behind (stepped
        // back, or the head was cut while the clock ran ahead) refuses to sign, with a
        // clear error and a metric, until it has caught up: signing at the head's time
        // would date blocks ahead of this clock and of every peer's.
        let head_ms = head.map_or(0, |h| h.time_ms);
        if now + CLOCK_BEHIND_TOLERANCE_MS < head_ms {
            self.metrics.producer_clock_behind.inc();
            tracing::warn!(
                now_ms = now,
                head_ms,
                "clock behind the chain's head; not signing"
            );
            refuse(
                batch,
                ProduceError::ClockBehind {
                    now_ms: now,
                    head_ms,
                },
            );
            return None;
        }
        let signed = self.signed.load(Ordering::Acquire);
        if local < signed {
            // Never sign at a height the key already used: this data directory is behind
            // the key (restored, copied or lost). Catch-up brings our own signed blocks
            // back from peers; then signing goes on.
            refuse(batch, ProduceError::CatchingUp { local, signed });
            return None;
        }
        let mut records: Vec<Record> = Vec::new();
        let mut credentials: Vec<(LicenceId, Vec<u8>)> = Vec::new();
        let mut overlay = Overlay::new(&ahead);
        let block_ms = now.max(head_ms);
        let serials_before = self.serials.clone();
        let mut used_types: Vec<LicenceType> = Vec::new();

        // Pass 1, in order: check each request and draft its credential (serials are
        // handed out here, so this pass is sequential).
        let mut drafts: Vec<Vec<Draft>> = Vec::with_capacity(batch.len());
        for (jobs, _) in &batch {
            let mut d = Vec::with_capacity(jobs.len());
            for job in jobs {
                d.push(self.draft(&ahead, job, now, &mut used_types));
            }
            drafts.push(d);
        }
        // Pass 2, on every core: sign the credentials (the expensive part of issuance).
        let to_sign: Vec<&Credential> = drafts
            .iter()
            .flatten()
            .filter_map(|d| match d {
                Draft::Issue(c, _, _) | Draft::Recredential(c, _, _) => Some(c),
                _ => None,
            })
            .collect();
        let mut signed = sign_all(&key, &to_sign).into_iter();
        let kid = key.public().key_id();
        let place = Place {
            department: &department,
            height,
            time_ms: block_ms,
            version,
            key: &kid,
        };
        // Pass 3, in order: records, and each one checked against the chain plus the batch.
        let mut slots: Vec<Vec<Result<(usize, Option<String>), ProduceError>>> =
            Vec::with_capacity(batch.len());
        for d in drafts {
            let mut out = Vec::with_capacity(d.len());
            for draft in d {
                let index = records.len();
                let prepared = match draft {
                    Draft::Failed(e) => Err(e),
                    Draft::Issue(cred, officer, origin) => match signed
                        .next()
                        .expect("sign_all answers every credential, in order")
                    {
                        Ok(sc) => {
                            let record = Record::Issue(Issue {
                                licence_id: cred.licence_id.clone(),
                                valid_from: cred.not_before,
                                valid_until: cred.expires_at,
                                commitment: sc.commitment,
                                officer,
                                origin,
                            });
                            admit(&self.net, &place, &mut overlay, record, index)
                                .map(|r| (r, Some((cred.licence_id, sc.cose, sc.qr_text))))
                        }
                        Err(e) => Err(ProduceError::Credential(e)),
                    },
                    Draft::Recredential(cred, officer, what) => match signed
                        .next()
                        .expect("sign_all answers every credential, in order")
                    {
                        Ok(sc) => {
                            let licence_id = cred.licence_id.clone();
                            let commitment = sc.commitment;
                            let record = match what {
                                Recredential::Renew => Record::Renew {
                                    licence_id,
                                    valid_from: cred.not_before,
                                    valid_until: cred.expires_at,
                                    commitment,
                                    officer,
                                },
                                Recredential::Reissue => Record::Reissue {
                                    licence_id,
                                    commitment,
                                    officer,
                                },
                                Recredential::Amend => Record::Amend {
                                    licence_id,
                                    commitment,
                                    officer,
                                },
                            };
                            admit(&self.net, &place, &mut overlay, record, index)
                                .map(|r| (r, Some((cred.licence_id, sc.cose, sc.qr_text))))
                        }
                        Err(e) => Err(ProduceError::Credential(e)),
                    },
                    Draft::Lifecycle(record) => {
                        admit(&self.net, &place, &mut overlay, record, index).map(|r| (r, None))
                    }
                };
                out.push(prepared.map(|(record, cred)| {
                    let qr = cred.as_ref().map(|(_, _, qr)| qr.clone());
                    if let Some((id, cose, _)) = cred {
                        credentials.push((id, cose));
                    }
                    records.push(record);
                    (records.len() - 1, qr)
                }));
            }
            slots.push(out);
        }

        if records.is_empty() {
            // No request made it into a block: each failed on its own.
            self.serials = serials_before;
            for ((_, reply), slots) in batch.into_iter().zip(slots) {
                let answers = slots
                    .into_iter()
                    .map(|s| s.map(|_| unreachable!("no record is in the block")))
                    .collect();
                let _ = reply.send(answers);
            }
            return None;
        }
        let header = BlockHeader {
            version,
            genesis: self.net.hash(),
            department: department.clone(),
            height,
            prev: head.map_or(self.net.hash(), |h| h.hash),
            time_ms: block_ms,
            gov: gov_height,
            records,
        };
        let block = header.sign(&key);
        self.metrics.blocks_signed.inc();
        let block_ref = BlockRef {
            department: department.clone(),
            height,
            hash: block.hash(),
        };
        let replies = batch
            .into_iter()
            .zip(slots)
            .map(|((_, reply), slots)| {
                let answers = slots
                    .into_iter()
                    .map(|slot| match slot {
                        Err(e) => Answer::Done(Err(e)),
                        Ok((i, qr)) => {
                            let id = block.header.records[i].licence_id().clone();
                            let state = overlay
                                .licence(&id)
                                .expect("every record in the block updated the overlay");
                            Answer::Pending(Receipt {
                                licence_id: id,
                                qr,
                                state,
                                block: block_ref.clone(),
                            })
                        }
                    })
                    .collect();
                (reply, answers)
            })
            .collect();
        let (licences, transfers) = overlay.into_changes();
        let next = InFlight {
            head: Head {
                height,
                hash: block_ref.hash,
                time_ms: block_ms,
                gov: gov_height,
            },
            licences,
            transfers,
            credentials: credentials.iter().cloned().collect(),
            serials_before,
        };
        let serials = used_types
            .iter()
            .map(|t| (t.clone(), self.serials[t]))
            .collect();
        Some((
            Prepared {
                block,
                credentials,
                serials,
                now,
                started,
                replies,
            },
            next,
        ))
    }

    /// Checks one job on its own and drafts what it needs: for issuance the credential to
    /// sign (with a fresh serial), for a lifecycle change its record.
    fn draft(
        &mut self,
        ahead: &Ahead<'_>,
        job: &Job,
        now_ms: u64,
        used_types: &mut Vec<LicenceType>,
    ) -> Draft {
        match self.try_draft(ahead, job, now_ms, used_types) {
            Ok(d) => d,
            Err(e) => Draft::Failed(e),
        }
    }

    fn try_draft(
        &mut self,
        ahead: &Ahead<'_>,
        job: &Job,
        now_ms: u64,
        used_types: &mut Vec<LicenceType>,
    ) -> Result<Draft, ProduceError> {
        let dept = &self.cfg.department;
        match job {
            Job::Issue(req) => {
                let t = &req.terms.licence_type;
                let now_s = (now_ms / 1000) as i64;
                let serial = match self.serials.get(t) {
                    Some(s) => *s,
                    None => self.store.next_serial(t)?,
                };
                // The counter is a hint: after restoring an old backup it may lag behind
                // the chain (caught up from peers), so skip serials already taken.
                let mut serial = serial;
                while ahead
                    .licence(&LicenceId::new(dept.clone(), t.clone(), serial))
                    .is_some()
                {
                    serial += 1;
                }
                let mut salt = [0u8; 16];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
                // The issuance policy (type, grant, holder fields, validity, bounds) is
                // core's, the same the offline CLI applies.
                let cred =
                    huren_core::issuance::draft(&self.net, dept, &req.terms, now_s, serial, salt)
                        .map_err(ProduceError::Policy)?;
                // Only a drafted licence uses up its serial.
                self.serials.insert(t.clone(), serial + 1);
                if !used_types.contains(t) {
                    used_types.push(t.clone());
                }
                Ok(Draft::Issue(cred, req.officer.clone(), req.origin.clone()))
            }
            Job::Recredential {
                licence_id,
                change,
                officer,
            } => {
                let cose = ahead
                    .credential(licence_id)?
                    .ok_or_else(|| ProduceError::NoCredential(licence_id.clone()))?;
                let previous = huren_core::UnverifiedCredential::from_cose(&cose)?.credential;
                let mut salt = [0u8; 16];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
                let now_s = (now_ms / 1000) as i64;
                let cred = huren_core::issuance::redraft(&self.net, &previous, change, now_s, salt)
                    .map_err(ProduceError::Policy)?;
                let what = match change {
                    Change::Renew { .. } => Recredential::Renew,
                    Change::Reissue => Recredential::Reissue,
                    Change::Amend { .. } => Recredential::Amend,
                };
                Ok(Draft::Recredential(cred, officer.clone(), what))
            }
            Job::Lifecycle {
                licence_id,
                action,
                officer,
            } => {
                let licence_id = licence_id.clone();
                let officer = officer.clone();
                Ok(Draft::Lifecycle(match action {
                    Action::Suspend(reason, until) => Record::Suspend {
                        licence_id,
                        reason: *reason,
                        officer,
                        until: *until,
                    },
                    Action::Reinstate => Record::Reinstate {
                        licence_id,
                        officer,
                    },
                    Action::Revoke(reason) => Record::Revoke {
                        licence_id,
                        reason: *reason,
                        officer,
                    },
                    Action::TransferOut(to) => Record::TransferOut {
                        licence_id,
                        to: to.clone(),
                        officer,
                    },
                    // The record it annuls is the one the licence's status stands on now;
                    // a change in the same batch before it makes admission refuse it.
                    Action::Annul(reason) => {
                        let (height, index) = ahead
                            .licence(&licence_id)
                            .map_or((0, 0), |s| (s.status_height, s.status_index));
                        Record::Annul {
                            licence_id,
                            height,
                            index,
                            reason: *reason,
                            officer,
                        }
                    }
                }))
            }
        }
    }

    /// The key that signs this department's block at `height` cut under governance height
    /// `gov`, if this node holds it.
    fn key_for(&self, height: u64, gov: u64) -> Result<SecretKey, ProduceError> {
        let dept = &self.cfg.department;
        if let Some(r) = self.net.retirement(dept) {
            if height > r.last_height {
                return Err(ProduceError::Retired {
                    last_height: r.last_height,
                });
            }
        }
        let Some(span) = self.net.signing_key(dept, height, gov) else {
            return Err(ProduceError::NoKey {
                height,
                key: "none (the department is retired or its keys fenced)".into(),
            });
        };
        self.cfg
            .keys
            .iter()
            .find(|k| k.public() == span.key)
            .cloned()
            .ok_or_else(|| ProduceError::NoKey {
                height,
                key: span.key.key_id().to_hex(),
            })
    }
}

/// Checks a record against the chain plus the records already in this block (the same
/// `Overlay` block validation admits records through), which then see it.
fn admit(
    net: &Network,
    place: &Place<'_>,
    overlay: &mut Overlay<'_, Ahead<'_>>,
    record: Record,
    index: usize,
) -> Result<Record, ProduceError> {
    overlay
        .admit(net, place, index, &record)
        .map_err(ProduceError::Refused)?;
    Ok(record)
}
