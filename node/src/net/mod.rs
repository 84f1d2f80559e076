//! The department network: libp2p (TCP, Noise, Yamux), run as an actor.
//!
//! Only the event loop in `run` owns the `Swarm`; the rest of the node holds a cloneable
//! `NetHandle` that sends commands over a bounded channel. Received blocks go through the
//! ledger on a separate thread (`applier`), because applying means an fsync and the event
//! loop must keep serving the swarm meanwhile; the verdict comes back to the loop, which
//! tells gossipsub to forward (Accept), drop (Ignore) or drop and penalise (Reject).
//!
//! - `wire`: the messages (gossip framing, catch-up requests and answers) and their bounds.
//! - `swarm`: the behaviour (allow-list of genesis peers first, connection limits,
//!   gossipsub with manual validation, catch-up request-response) and building the swarm.
//! - `applier`: the huren-applier thread, and the one mapping to Accept / Ignore / Reject.
//! - `peers`: connected peers, their genesis roles, penalty points and bans.
//! - `schedule`: whom to ask for which department's blocks, and staleness, by the clock.
//! - `lag`: chains a signed block proves ahead of this node's (verification reads it).
//! - here: the actor (`run`), its handle and commands.
//!
//! Catch-up: every tick the node asks each peer for its chain heads, then "blocks of
//! department D from height h" in bounded batches, repeated until caught up, so a node that
//! starts fresh, restarts or rejoins after a partition converges without operator action.
//! A peer's heads are claims: they decide whom to ask, never what is true, and a peer
//! that does not back its claim (no answer in time, or no blocks) earns a penalty point
//! and is not asked for that department for a while (`schedule`). A second peer is asked
//! when the first is slow, so no single peer holds a department's catch-up.
//!
//! Architecture Invariant: only this module knows libp2p; a block is forwarded only after
//! the ledger (`core::validate`) accepted it.

mod applier;
/// The wire decoders for the fuzz targets in `fuzz/`; the node never calls it.
#[doc(hidden)]
pub mod fuzzing;
mod gate;
mod lag;
mod peers;
mod schedule;
mod swarm;
mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use huren_core::validate::ChainView;
use huren_core::{Block, DepartmentId, Network};
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};

use crate::clock::SharedClock;
use crate::config::{Limits, NetworkConfig};
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::store::Store;
use applier::{Applier, ApplyJob, ApplyOutcome};
pub use lag::Lag;
use peers::Peers;
use schedule::Schedule;

/// A connected peer, as `/v1/peers` shows it.
pub use huren_api::PeerInfo;
/// The protocol as a peer speaks it: the multi-process adversary test drives its own swarm
/// with these.
pub use swarm::{build_swarm, Behaviour, BehaviourEvent};
pub use wire::{
    block_message, CatchupRequest, CatchupResponse, CATCHUP_BLOCKS_MAX, CATCHUP_BYTES_MAX, TOPIC,
};

/// How often the node redials bootstrap peers and compares chain heads with every peer.
const TICK: Duration = Duration::from_secs(2);
/// How often fetches gone unanswered are hedged with another peer (`schedule`).
const HEDGE_TICK: Duration = Duration::from_millis(250);
/// How long a peer a governance record removed (a retired department's node, a rotated
/// node key, a removed observer) stays connected: long enough to learn the record itself
/// by gossip or catch-up, so that a retired department's node knows to stop signing.
const REMOVED_GRACE: Duration = Duration::from_secs(10);
/// Commands queued for the actor (gossip of own blocks, peer listings).
const COMMANDS_MAX: usize = 1024;
/// The applier's queue holds at least this many jobs, whatever `pending_blocks_max` says.
const APPLY_QUEUE_MIN: usize = 16;
/// Catch-up answers being read from the store for one peer at once; its further requests
/// wait in its queue (`SERVE_QUEUE_PER_PEER`), past that they are answered busy.
const SERVING_PER_PEER: usize = 2;
const SERVE_QUEUE_PER_PEER: usize = 64;
/// Bytes queued for the applier at most: jobs are counted too, but one job may be a
/// catch-up batch of `catchup_bytes_max`, so a count alone would allow gigabytes.
const APPLY_QUEUE_BYTES_MAX: usize = 128 << 20;

enum Command {
    Publish(Vec<u8>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
}

/// Cloneable handle to the network actor.
#[derive(Clone)]
pub struct NetHandle {
    tx: mpsc::Sender<Command>,
    /// Written by the actor only: it alone knows when it last heard from a peer.
    stale: Arc<AtomicBool>,
    /// Written by the applier only: it alone sees signed blocks ahead of the chain.
    lag: Arc<Lag>,
}

impl NetHandle {
    /// Gossips a block this node produced. Never blocks: if the queue is full the block is
    /// dropped here and peers fetch it by catch-up on their next tick.
    pub fn publish_block(&self, block: &Block) {
        let _ = self.tx.try_send(Command::Publish(block_message(block)));
    }

    /// Gossips a checkpoint this node's department signed.
    pub fn publish_checkpoint(&self, note: &str) {
        let _ = self
            .tx
            .try_send(Command::Publish(wire::checkpoint_message(note)));
    }

    /// Gossips a governance block this node admitted (submitted through its API).
    pub fn publish_gov(&self, block: &huren_core::governance::GovBlock) {
        let _ = self.tx.try_send(Command::Publish(wire::gov_message(block)));
    }

    /// Whether the node has been out of touch with every peer for too long to vouch for
    /// the status of other departments' licences.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// The height a block signed by `department` proves its chain has reached, when this
    /// node's chain of it ends below, at `head`, for longer than a moment (`lag`).
    pub fn behind(&self, department: &DepartmentId, head: u64) -> Option<u64> {
        self.lag.behind(department, head)
    }

    /// The connected peers; none when the network is not running.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Peers(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

/// Creates the handle and the receiving end for `run`; `clock` is the node's one clock.
pub fn channel(clock: SharedClock) -> (NetHandle, NetInbox) {
    let (tx, rx) = mpsc::channel(COMMANDS_MAX);
    let stale = Arc::new(AtomicBool::new(false));
    let lag = Arc::new(Lag::new(clock));
    (
        NetHandle {
            tx,
            stale: stale.clone(),
            lag: lag.clone(),
        },
        NetInbox { rx, stale, lag },
    )
}

/// The actor's end of the command channel, and the stale flag and lag it alone writes.
pub struct NetInbox {
    rx: mpsc::Receiver<Command>,
    stale: Arc<AtomicBool>,
    lag: Arc<Lag>,
}

pub struct NetParams {
    pub keypair: identity::Keypair,
    /// The node's checkpoints, which the applier feeds and witnesses.
    pub checkpoints: Option<Arc<crate::checkpoints::Checkpoints>>,
    pub config: NetworkConfig,
    pub limits: Limits,
    /// The node's one clock.
    pub clock: SharedClock,
}

struct Actor {
    swarm: Swarm<Behaviour>,
    /// The network in force, refreshed when a governance record applies (`governance`).
    net: Arc<Network>,
    ledger: Arc<Ledger>,
    /// The peer asked for governance blocks, and since when: one such fetch at a time.
    gov_fetch: Option<(PeerId, std::time::Instant)>,
    /// Chains proven ahead of this node's (`lag`): forgotten for a department whose key
    /// is declared compromised.
    lag: Arc<Lag>,
    /// Peers a governance record removed, and when they are disconnected and refused.
    leaving: Vec<(PeerId, std::time::Instant)>,
    store: Arc<Store>,
    /// Checkpoints held, served to a peer on connection (`CatchupRequest::Checkpoints`).
    checkpoints: Option<Arc<crate::checkpoints::Checkpoints>>,
    metrics: Arc<Metrics>,
    limits: Limits,
    topic: IdentTopic,
    peers: Peers,
    bootstrap: Vec<(PeerId, Multiaddr)>,
    /// Staleness and whom to ask for which blocks, decided by the clock.
    schedule: Schedule,
    clock: SharedClock,
    requests: HashMap<OutboundRequestId, (PeerId, CatchupRequest)>,
    apply_tx: SyncSender<ApplyJob>,
    /// Bytes queued for the applier (`APPLY_QUEUE_BYTES_MAX`).
    apply_bytes: Arc<AtomicUsize>,
    /// Catch-up answers being read (off the event loop) and waiting, per peer.
    serving: HashMap<PeerId, Serving>,
    served_tx: mpsc::UnboundedSender<Served>,
    stale: Arc<AtomicBool>,
}

/// A peer's catch-up requests: how many are being read, which wait.
#[derive(Default)]
struct Serving {
    reading: usize,
    waiting: std::collections::VecDeque<(DepartmentId, u64, ResponseChannel<CatchupResponse>)>,
}

/// A catch-up answer read from the store, for the event loop to send.
struct Served {
    peer: PeerId,
    channel: ResponseChannel<CatchupResponse>,
    response: CatchupResponse,
}

/// Runs the network until the inbox closes. Prints the listen addresses to stdout.
pub async fn run(
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
    params: NetParams,
    inbox: NetInbox,
) -> anyhow::Result<()> {
    let (net, store) = (ledger.network(), ledger.store().clone());
    let mut gov_rx = ledger.subscribe();
    let has_peers = net.peers().len() > 1;
    let local = params.keypair.public().to_peer_id();
    let mut swarm = build_swarm(params.keypair, &net, &params.limits)?;
    let topic = IdentTopic::new(TOPIC);
    swarm.behaviour_mut().gossipsub().subscribe(&topic)?;
    for addr in swarm::listen_addrs(&params.config)? {
        swarm.listen_on(addr)?;
    }
    let bootstrap = swarm::bootstrap_peers(&params.config, local)?;
    let (apply_tx, apply_rx) = sync_channel(params.limits.pending_blocks_max.max(APPLY_QUEUE_MIN));
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let apply_bytes = Arc::new(AtomicUsize::new(0));
    let (served_tx, mut served_rx) = mpsc::unbounded_channel();
    let applier = Applier {
        ledger: ledger.clone(),
        metrics: metrics.clone(),
        clock: params.clock.clone(),
        records_max: huren_core::ledger::BLOCK_RECORDS_MAX,
        pending_max: params.limits.pending_blocks_max,
        pending: HashMap::new(),
        pending_bytes_max: applier::PENDING_BYTES_MAX,
        pending_bytes: 0,
        lag: inbox.lag.clone(),
        queued_bytes: apply_bytes.clone(),
        out: out_tx,
        checkpoints: params.checkpoints.clone(),
    };
    std::thread::Builder::new()
        .name("huren-applier".into())
        .spawn(move || applier.run(apply_rx))?;
    let mut actor = Actor {
        swarm,
        peers: Peers::new(&net),
        net,
        ledger,
        gov_fetch: None,
        lag: inbox.lag.clone(),
        leaving: Vec::new(),
        store,
        checkpoints: params.checkpoints.clone(),
        metrics,
        limits: params.limits,
        topic,
        bootstrap,
        schedule: Schedule::new(params.clock.instant(), has_peers),
        clock: params.clock,
        requests: HashMap::new(),
        apply_tx,
        apply_bytes,
        serving: HashMap::new(),
        served_tx,
        stale: inbox.stale.clone(),
    };
    actor.dial_bootstrap();
    let mut inbox = inbox.rx;
    let mut tick = tokio::time::interval(TICK);
    let mut hedge = tokio::time::interval(HEDGE_TICK);
    hedge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            cmd = inbox.recv() => match cmd {
                Some(c) => actor.command(c),
                None => return Ok(()),
            },
            ev = actor.swarm.select_next_some() => actor.event(ev),
            Some(out) = out_rx.recv() => actor.outcome(out),
            Some(served) = served_rx.recv() => actor.served(served),
            _ = tick.tick() => actor.tick(),
            _ = hedge.tick() => actor.hedge(),
            Ok(()) = gov_rx.changed() => actor.governance(),
        }
    }
}

impl Actor {
    fn command(&mut self, c: Command) {
        match c {
            Command::Publish(data) => {
                if let Err(e) = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub()
                    .publish(self.topic.clone(), data)
                {
                    // No peers yet, or a duplicate: peers fetch the block by catch-up.
                    tracing::debug!(error = %e, "publish");
                }
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.peers.info(self.clock.instant()));
            }
        }
    }

    /// A governance record applied: the allow-list and the peers' roles follow the
    /// network now in force; a peer no longer in it is disconnected and refused.
    fn governance(&mut self) {
        let net = self.ledger.network();
        let before: std::collections::HashSet<PeerId> =
            swarm::genesis_peers(&self.net).into_iter().collect();
        let after: std::collections::HashSet<PeerId> =
            swarm::genesis_peers(&net).into_iter().collect();
        for p in after.difference(&before) {
            tracing::info!(peer = %p, "governance: peer admitted");
            self.swarm.behaviour_mut().readmit(*p);
        }
        let leave_at = self.clock.instant() + REMOVED_GRACE;
        for p in before.difference(&after) {
            tracing::info!(peer = %p, "governance: peer removed from the network; disconnecting it shortly");
            self.leaving.push((*p, leave_at));
        }
        // A peer admitted again (a rotation undone) stays.
        self.leaving.retain(|(p, _)| !after.contains(p));
        self.peers.set_roles(&net);
        for d in net.departments() {
            if net.key_history(&d.id).iter().any(|s| s.compromised) {
                self.lag.forget(&d.id);
            }
        }
        self.metrics.governance_height.set(net.gov_height());
        self.net = net;
        // A fetch under way was answered or overtaken by gossip: the next claim of a
        // higher governance height may start another.
        self.gov_fetch = None;
    }

    /// Asks `peer` for the governance blocks past this node's head, unless a fetch is
    /// under way (and not older than the request timeout).
    fn fetch_gov(&mut self, peer: PeerId) {
        let now = self.clock.instant();
        if let Some((_, since)) = self.gov_fetch {
            if now.saturating_duration_since(since) < swarm::CATCHUP_REQUEST_TIMEOUT {
                return;
            }
        }
        self.gov_fetch = Some((peer, now));
        let from = self.ledger.governance().height() + 1;
        tracing::debug!(%peer, from, "governance catch-up fetch");
        self.request(peer, CatchupRequest::Governance { from });
    }

    fn dial_bootstrap(&mut self) {
        for (peer, addr) in self.bootstrap.clone() {
            if self.peers.is_connected(&peer) || self.peers.is_banned(&peer) {
                continue;
            }
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::debug!(%peer, error = %e, "dial");
            }
        }
    }

    fn tick(&mut self) {
        let now = self.clock.instant();
        let (gone, staying): (Vec<_>, Vec<_>) =
            self.leaving.drain(..).partition(|(_, at)| *at <= now);
        self.leaving = staying;
        for (p, _) in gone {
            tracing::info!(peer = %p, "governance: disconnecting and refusing a removed peer");
            self.swarm.behaviour_mut().refuse(p);
            let _ = self.swarm.disconnect_peer_id(p);
        }
        let members = swarm::genesis_peers(&self.net);
        for p in self.peers.expire_bans(now) {
            // Only a member of the network in force comes back.
            if members.contains(&p) {
                self.swarm.behaviour_mut().readmit(p);
            }
        }
        let t = self.schedule.tick(now, self.peers.connected_count());
        self.dial_bootstrap();
        for p in self.peers.connected_peers() {
            self.request(p, CatchupRequest::Heads);
        }
        self.hedge();
        self.stale.store(t.stale, Ordering::Relaxed);
        self.count_peers();
    }

    /// Asks another peer for every chain some peer claims ahead of ours, where the
    /// schedule allows (a fetch gone unanswered for `HEDGE_AFTER`, or none under way).
    fn hedge(&mut self) {
        let store = self.store.clone();
        for d in self
            .schedule
            .behind(|d| store.head(d).map_or(0, |h| h.height))
        {
            self.fetch(d);
        }
    }

    fn count_peers(&self) {
        self.metrics
            .peers_connected
            .set(self.peers.connected_count() as u64);
    }

    fn request(&mut self, peer: PeerId, req: CatchupRequest) {
        if let CatchupRequest::Blocks { .. } = req {
            self.metrics.catchup_requests_sent.inc();
        }
        let id = self
            .swarm
            .behaviour_mut()
            .catchup()
            .send_request(&peer, req.clone());
        self.requests.insert(id, (peer, req));
    }

    /// Asks the next peer the schedule names for `dept`'s blocks past the chain here, if
    /// any may be asked now.
    fn fetch(&mut self, dept: DepartmentId) {
        let ours = self.store.head(&dept).map_or(0, |h| h.height);
        let now = self.clock.instant();
        let Some(peer) = self.schedule.next_fetch(&dept, ours, now) else {
            return;
        };
        tracing::debug!(%peer, department = %dept, from = ours + 1, "catch-up fetch");
        self.schedule.start_fetch(&dept, peer, now);
        self.request(
            peer,
            CatchupRequest::Blocks {
                department: dept.to_string(),
                from: ours + 1,
            },
        );
    }

    /// `peer` did not back what it claimed of `dept` (no answer in time, no blocks): a
    /// penalty point, and another peer is asked.
    fn unbacked(&mut self, peer: PeerId, dept: DepartmentId, why: &'static str) {
        tracing::info!(%peer, department = %dept, why, "a peer did not back its head claim");
        self.metrics.catchup_unbacked.inc(why);
        self.schedule
            .fetch_failed(&dept, peer, self.clock.instant());
        self.penalise(peer);
        self.fetch(dept);
    }

    fn penalise(&mut self, peer: PeerId) {
        if self.peers.penalise(peer, self.clock.instant()) {
            tracing::warn!(%peer, "disconnecting a peer that sent too many invalid blocks");
            self.swarm.behaviour_mut().refuse(peer);
        }
    }

    fn outcome(&mut self, out: ApplyOutcome) {
        match out {
            ApplyOutcome::Validation {
                id,
                source,
                acceptance,
            } => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub()
                    .report_message_validation_result(&id, &source, acceptance);
            }
            ApplyOutcome::Fetch {
                peer,
                department,
                height,
            } => {
                // The peer relayed a block at `height`, signed by its department: it can
                // be asked for the blocks before it.
                self.schedule.claim(&department, peer, height);
                self.fetch(department);
            }
            ApplyOutcome::CatchupDone {
                peer,
                department,
                progressed,
            } => {
                self.schedule.fetch_done(&department, &peer);
                if progressed {
                    self.fetch(department);
                }
            }
            ApplyOutcome::FetchGov { peer } => self.fetch_gov(peer),
            ApplyOutcome::GovCatchupDone { peer, progressed } => {
                self.gov_fetch = None;
                if progressed {
                    self.fetch_gov(peer);
                }
            }
            ApplyOutcome::Misbehaved { peer } => self.penalise(peer),
            ApplyOutcome::Publish(data) => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub()
                    .publish(self.topic.clone(), data);
            }
        }
    }

    fn submit(&mut self, job: ApplyJob) -> bool {
        let bytes = job.bytes();
        if self.apply_bytes.load(Ordering::Relaxed) + bytes > APPLY_QUEUE_BYTES_MAX {
            self.metrics.blocks_rejected.inc("overloaded");
            return false;
        }
        // Counted before the applier can take it, so that its subtraction never comes first.
        self.apply_bytes.fetch_add(bytes, Ordering::Relaxed);
        match self.apply_tx.try_send(job) {
            Ok(()) => true,
            Err(e) => {
                self.apply_bytes.fetch_sub(bytes, Ordering::Relaxed);
                if let TrySendError::Full(_) = e {
                    self.metrics.blocks_rejected.inc("overloaded");
                }
                false
            }
        }
    }

    fn event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                let local = *self.swarm.local_peer_id();
                // Tests and scripts read this line to learn the address.
                println!("huren-node: p2p listening on {address}/p2p/{local}");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                let now = self.clock.instant();
                self.peers
                    .connected(peer_id, endpoint.get_remote_address().clone(), now);
                self.schedule.peer_seen(now);
                self.count_peers();
                tracing::info!(peer = %peer_id, role = self.peers.role(&peer_id).unwrap_or("?"), "peer connected");
                self.request(peer_id, CatchupRequest::Heads);
                // What each side holds of every department's checkpoints: two halves of
                // a network that meet find a department that showed each a different
                // history, and a node that was away learns the newest at once.
                self.request(peer_id, CatchupRequest::Checkpoints);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.peers.disconnected(&peer_id);
                self.schedule.forget_peer(&peer_id);
                if let Some(s) = self.serving.get_mut(&peer_id) {
                    // Nobody to answer: what is being read is sent into the void.
                    s.waiting.clear();
                }
                self.count_peers();
            }
            SwarmEvent::IncomingConnectionError {
                error: libp2p::swarm::ListenError::Denied { cause },
                send_back_addr,
                ..
            } => {
                // Counted by reason; logged at debug only: a flood of refusals must not
                // become a flood of log lines.
                let reason = swarm::refusal_reason(&cause);
                self.metrics.connections_refused.inc(reason);
                tracing::debug!(from = %send_back_addr, reason, error = %cause, "refused an incoming connection");
            }
            SwarmEvent::OutgoingConnectionError {
                error: libp2p::swarm::DialError::Denied { cause },
                ..
            } => {
                self.metrics
                    .connections_refused
                    .inc(swarm::refusal_reason(&cause));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(libp2p::ping::Event {
                peer,
                connection,
                result: Err(failure),
            })) => {
                // A silent link (a partition drops packets; nothing resets the
                // connection): close it, and the tick redials once the link is back.
                tracing::info!(%peer, %failure, "peer stopped answering pings; closing the connection");
                self.metrics.connections_unresponsive.inc();
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let job = ApplyJob::Gossip {
                    id: message_id.clone(),
                    source: propagation_source,
                    data: message.data,
                };
                if !self.submit(job) {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub()
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Catchup(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.serve(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some((_, req)) = self.requests.remove(&request_id) else {
                        return;
                    };
                    self.response(peer, req, response);
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Catchup(
                request_response::Event::OutboundFailure {
                    request_id,
                    peer,
                    error,
                    ..
                },
            )) => {
                let failed = self.requests.remove(&request_id);
                if let Some((_, CatchupRequest::Governance { .. })) = failed {
                    self.gov_fetch = None;
                }
                if let Some((_, CatchupRequest::Blocks { department, .. })) = failed {
                    let Ok(d) = DepartmentId::parse(&department) else {
                        return;
                    };
                    tracing::debug!(%peer, department = %d, %error, "catch-up request failed");
                    match error {
                        // Asked for blocks it claimed, and silent: the liar's stall.
                        request_response::OutboundFailure::Timeout => {
                            self.unbacked(peer, d, "timeout");
                        }
                        // Gone, or not speaking the protocol: ask someone else, no blame.
                        _ => {
                            self.schedule.fetch_deferred(&d, peer, self.clock.instant());
                            self.fetch(d);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Answers a peer's catch-up request: heads at once (they are a few entries kept in
    /// memory), blocks read from the store off the event loop, at most `SERVING_PER_PEER`
    /// at a time per peer; a peer over its request rate, or with a full queue, is answered
    /// busy.
    fn serve(
        &mut self,
        peer: PeerId,
        request: CatchupRequest,
        channel: ResponseChannel<CatchupResponse>,
    ) {
        if !self.peers.admit_request(peer, self.clock.instant()) {
            self.busy(channel, "over this peer's catch-up request rate");
            return;
        }
        match request {
            CatchupRequest::Heads => {
                let gov = self.ledger.governance().height();
                let response = match self.store.heads() {
                    Ok(h) => CatchupResponse::Heads(
                        h.into_iter()
                            .map(|(d, h)| (d.to_string(), h.height))
                            .chain(std::iter::once((wire::GOV_CHAIN.to_owned(), gov)))
                            .collect(),
                    ),
                    Err(e) => CatchupResponse::Error(e.to_string()),
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .catchup()
                    .send_response(channel, response);
            }
            CatchupRequest::Checkpoints => {
                // At most two short notes per department, held in memory.
                let notes = self
                    .checkpoints
                    .as_ref()
                    .map(|c| {
                        c.all()
                            .into_iter()
                            .flat_map(|(_, k)| k.newest.into_iter().chain(k.counted))
                            .map(|cp| cp.encode())
                            .take(wire::CHECKPOINTS_ANSWER_MAX)
                            .collect()
                    })
                    .unwrap_or_default();
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .catchup()
                    .send_response(channel, CatchupResponse::Checkpoints(notes));
            }
            CatchupRequest::Governance { from } => {
                // A few small blocks held in memory: answered at once.
                let gov = self.ledger.governance();
                let blocks = gov
                    .blocks_from(from, wire::GOV_CATCHUP_BLOCKS_MAX)
                    .iter()
                    .map(|b| serde_bytes::ByteBuf::from(b.encode()))
                    .collect();
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .catchup()
                    .send_response(channel, CatchupResponse::Blocks(blocks));
            }
            CatchupRequest::Blocks { department, from } => {
                let d = match DepartmentId::parse(&department) {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .catchup()
                            .send_response(channel, CatchupResponse::Error(e.to_string()));
                        return;
                    }
                };
                let serving = self.serving.entry(peer).or_default();
                if serving.reading < SERVING_PER_PEER {
                    serving.reading += 1;
                    self.read_blocks(peer, d, from, channel);
                } else if serving.waiting.len() < SERVE_QUEUE_PER_PEER {
                    serving.waiting.push_back((d, from, channel));
                } else {
                    self.busy(channel, "too many catch-up requests waiting from this peer");
                }
            }
        }
    }

    fn busy(&mut self, channel: ResponseChannel<CatchupResponse>, why: &str) {
        self.metrics.catchup_requests_refused.inc();
        let _ = self
            .swarm
            .behaviour_mut()
            .catchup()
            .send_response(channel, CatchupResponse::Error(format!("busy: {why}")));
    }

    /// Reads `dept`'s blocks from `from` on a blocking thread; the answer comes back to
    /// the loop as `Served`.
    fn read_blocks(
        &mut self,
        peer: PeerId,
        dept: DepartmentId,
        from: u64,
        channel: ResponseChannel<CatchupResponse>,
    ) {
        self.metrics.catchup_requests_served.inc();
        let (store, tx) = (self.store.clone(), self.served_tx.clone());
        let (blocks_max, bytes_max) = (
            self.limits.catchup_blocks_max,
            self.limits.catchup_bytes_max,
        );
        tokio::task::spawn_blocking(move || {
            let response = match store.blocks_from(&dept, from, blocks_max, bytes_max) {
                Ok(blocks) => CatchupResponse::Blocks(
                    blocks.into_iter().map(serde_bytes::ByteBuf::from).collect(),
                ),
                Err(e) => CatchupResponse::Error(e.to_string()),
            };
            let _ = tx.send(Served {
                peer,
                channel,
                response,
            });
        });
    }

    /// A catch-up answer is read: send it, and start the peer's next waiting request.
    fn served(&mut self, s: Served) {
        let _ = self
            .swarm
            .behaviour_mut()
            .catchup()
            .send_response(s.channel, s.response);
        let Some(serving) = self.serving.get_mut(&s.peer) else {
            return;
        };
        serving.reading = serving.reading.saturating_sub(1);
        if let Some((d, from, channel)) = serving.waiting.pop_front() {
            serving.reading += 1;
            self.read_blocks(s.peer, d, from, channel);
        } else if serving.reading == 0 {
            self.serving.remove(&s.peer);
        }
    }

    fn response(&mut self, peer: PeerId, req: CatchupRequest, response: CatchupResponse) {
        match (req, response) {
            (CatchupRequest::Heads, CatchupResponse::Heads(heads)) => {
                tracing::trace!(%peer, chains = heads.len(), "heads");
                if wire::gov_head(&heads).is_some_and(|h| h > self.ledger.governance().height()) {
                    self.fetch_gov(peer);
                }
                // What a peer claims of any chain, ours included, only makes us fetch the
                // signed blocks; it never opens or closes our own signing (the signing
                // record beside the key does).
                for (d, height) in wire::known_heads(&self.net, heads) {
                    let ours = self.store.head(&d).map_or(0, |h| h.height);
                    if height > ours {
                        self.schedule.claim(&d, peer, height);
                        self.fetch(d);
                    }
                }
            }
            (CatchupRequest::Blocks { department, from }, CatchupResponse::Blocks(blocks)) => {
                let Ok(d) = DepartmentId::parse(&department) else {
                    return;
                };
                tracing::debug!(%peer, department = %d, from, blocks = blocks.len(), "catch-up answer");
                if blocks.is_empty() {
                    // Nothing from `from` on, yet it claimed at least that far.
                    if self.schedule.claimed(&d, &peer).is_some_and(|c| c >= from) {
                        self.unbacked(peer, d, "no_blocks");
                    } else {
                        self.schedule.fetch_done(&d, &peer);
                    }
                    return;
                }
                let Some(blocks) = wire::catchup_batch(blocks) else {
                    // More than it may send: not what was asked for.
                    self.unbacked(peer, d, "oversized");
                    return;
                };
                let job = ApplyJob::Catchup {
                    peer,
                    department: d.clone(),
                    blocks,
                };
                if !self.submit(job) {
                    self.schedule.fetch_done(&d, &peer);
                }
            }
            (CatchupRequest::Governance { .. }, CatchupResponse::Blocks(blocks)) => {
                if blocks.is_empty() || blocks.len() > wire::GOV_CATCHUP_BLOCKS_MAX {
                    self.gov_fetch = None;
                    return;
                }
                let blocks = blocks.into_iter().map(|b| b.into_vec()).collect();
                if !self.submit(ApplyJob::GovCatchup { peer, blocks }) {
                    self.gov_fetch = None;
                }
            }
            (CatchupRequest::Governance { .. }, _) => self.gov_fetch = None,
            (CatchupRequest::Checkpoints, CatchupResponse::Checkpoints(notes)) => {
                if notes.len() <= wire::CHECKPOINTS_ANSWER_MAX {
                    let _ = self.submit(ApplyJob::Checkpoints { peer, notes });
                }
            }
            (CatchupRequest::Blocks { department, .. }, answer) => {
                // An error answer (the peer is busy, or its store failed): ask another.
                tracing::debug!(%peer, department, ?answer, "catch-up refused");
                if let Ok(d) = DepartmentId::parse(&department) {
                    self.schedule.fetch_deferred(&d, peer, self.clock.instant());
                    self.fetch(d);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{TestLedger, GD};

    /// Publishing never waits on the actor: with the queue full, or the actor gone, the
    /// block is dropped here and peers fetch it by catch-up.
    #[tokio::test]
    async fn the_handle_never_blocks_the_producer() {
        let t = TestLedger::new();
        let block = t.block(GD, GD, 1, vec![TestLedger::issue(GD, 1)]);
        let (handle, NetInbox { rx: mut inbox, .. }) = channel(crate::clock::system());
        for _ in 0..COMMANDS_MAX + 10 {
            handle.publish_block(&block);
        }
        let mut queued = 0;
        while let Ok(c) = inbox.try_recv() {
            let Command::Publish(data) = c else {
                panic!("only publications were sent");
            };
            assert_eq!(data, block_message(&block));
            queued += 1;
        }
        assert_eq!(queued, COMMANDS_MAX);
        drop(inbox);
        handle.publish_block(&block);
        assert!(handle.peers().await.is_empty(), "no actor, no peers");
    }
}
