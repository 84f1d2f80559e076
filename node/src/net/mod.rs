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
//! - here: the actor (`run`), its handle and commands, catch-up scheduling.
//!
//! Catch-up: every tick the node asks each peer for its chain heads, then "blocks of
//! department D from height h" in bounded batches, repeated until caught up, so a node that
//! starts fresh, restarts or rejoins after a partition converges without operator action.
//!
//! Architecture Invariant: only this module knows libp2p; a block is forwarded only after
//! the ledger (`core::validate`) accepted it.

mod applier;
/// The wire decoders for the fuzz targets in `fuzz/`; the node never calls it.
#[doc(hidden)]
pub mod fuzzing;
mod peers;
mod schedule;
mod swarm;
mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
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
use peers::Peers;
use schedule::Schedule;

/// A connected peer, as `/v1/peers` shows it.
pub use huren_api::PeerInfo;
/// The protocol as a peer speaks it: the multi-process adversary test drives its own swarm
/// with these.
pub use swarm::{build_swarm, Behaviour, BehaviourEvent};
pub use wire::{block_message, CatchupRequest, CatchupResponse, TOPIC};

/// How often the node redials bootstrap peers and compares chain heads with every peer.
const TICK: Duration = Duration::from_secs(2);
/// Commands queued for the actor (gossip of own blocks, peer listings).
const COMMANDS_MAX: usize = 1024;
/// The applier's queue holds at least this many jobs, whatever `pending_blocks_max` says.
const APPLY_QUEUE_MIN: usize = 16;

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
}

impl NetHandle {
    /// Gossips a block this node produced. Never blocks: if the queue is full the block is
    /// dropped here and peers fetch it by catch-up on their next tick.
    pub fn publish_block(&self, block: &Block) {
        let _ = self.tx.try_send(Command::Publish(block_message(block)));
    }

    /// Whether the node has been out of touch with every peer for too long to vouch for
    /// the status of other departments' licences.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
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

/// Creates the handle and the receiving end for `run`.
pub fn channel() -> (NetHandle, NetInbox) {
    let (tx, rx) = mpsc::channel(COMMANDS_MAX);
    let stale = Arc::new(AtomicBool::new(false));
    (
        NetHandle {
            tx,
            stale: stale.clone(),
        },
        NetInbox { rx, stale },
    )
}

/// The actor's end of the command channel, and the stale flag it alone writes.
pub struct NetInbox {
    rx: mpsc::Receiver<Command>,
    stale: Arc<AtomicBool>,
}

pub struct NetParams {
    pub keypair: identity::Keypair,
    pub config: NetworkConfig,
    pub limits: Limits,
    /// The node's one clock.
    pub clock: SharedClock,
}

struct Actor {
    swarm: Swarm<Behaviour>,
    net: Arc<Network>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    limits: Limits,
    topic: IdentTopic,
    peers: Peers,
    bootstrap: Vec<(PeerId, Multiaddr)>,
    /// Catch-up in flight per department: only one at a time.
    /// Staleness, catch-up retries and the own-chain wait, decided by the clock.
    schedule: Schedule,
    clock: SharedClock,
    requests: HashMap<OutboundRequestId, (PeerId, CatchupRequest)>,
    apply_tx: SyncSender<ApplyJob>,
    stale: Arc<AtomicBool>,
}

/// Runs the network until the inbox closes. Prints the listen addresses to stdout.
pub async fn run(
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
    params: NetParams,
    inbox: NetInbox,
) -> anyhow::Result<()> {
    let (net, store) = (ledger.network().clone(), ledger.store().clone());
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
    let applier = Applier {
        net: net.clone(),
        ledger,
        metrics: metrics.clone(),
        clock: params.clock.clone(),
        records_max: huren_core::ledger::BLOCK_RECORDS_MAX,
        pending_max: params.limits.pending_blocks_max,
        pending: HashMap::new(),
        out: out_tx,
    };
    std::thread::Builder::new()
        .name("huren-applier".into())
        .spawn(move || applier.run(apply_rx))?;
    let mut actor = Actor {
        swarm,
        peers: Peers::new(&net),
        net,
        store,
        metrics,
        limits: params.limits,
        topic,
        bootstrap,
        schedule: Schedule::new(params.clock.instant(), has_peers),
        clock: params.clock,
        requests: HashMap::new(),
        apply_tx,
        stale: inbox.stale.clone(),
    };
    actor.dial_bootstrap();
    let mut inbox = inbox.rx;
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            cmd = inbox.recv() => match cmd {
                Some(c) => actor.command(c),
                None => return Ok(()),
            },
            ev = actor.swarm.select_next_some() => actor.event(ev),
            Some(out) = out_rx.recv() => actor.outcome(out),
            _ = tick.tick() => actor.tick(),
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
        for p in self.peers.expire_bans(now) {
            self.swarm.behaviour_mut().readmit(p);
        }
        let t = self.schedule.tick(now, self.peers.connected_count());
        self.dial_bootstrap();
        for p in self.peers.connected_peers() {
            self.request(p, CatchupRequest::Heads);
        }
        self.stale.store(t.stale, Ordering::Relaxed);
        self.count_peers();
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

    fn fetch(&mut self, peer: PeerId, dept: DepartmentId) {
        if self.schedule.fetching(&dept) || !self.peers.is_connected(&peer) {
            return;
        }
        let from = self.store.head(&dept).map_or(1, |h| h.height + 1);
        self.schedule.start_fetch(&dept, peer, self.clock.instant());
        self.request(
            peer,
            CatchupRequest::Blocks {
                department: dept.to_string(),
                from,
            },
        );
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
            ApplyOutcome::Fetch { peer, department } => self.fetch(peer, department),
            ApplyOutcome::CatchupDone {
                peer,
                department,
                progressed,
            } => {
                self.schedule.fetch_done(&department);
                if progressed {
                    self.fetch(peer, department);
                }
            }
            ApplyOutcome::Misbehaved { peer } => self.penalise(peer),
            ApplyOutcome::Evidence(data) => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub()
                    .publish(self.topic.clone(), data);
            }
        }
    }

    fn submit(&mut self, job: ApplyJob) -> bool {
        match self.apply_tx.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.metrics.blocks_rejected.inc("overloaded");
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
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
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.peers.disconnected(&peer_id);
                self.count_peers();
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                if matches!(error, libp2p::swarm::ListenError::Denied { .. }) {
                    self.metrics.connections_refused.inc();
                    tracing::info!(error = %error, "refused a connection: peer not in genesis");
                }
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                if matches!(error, libp2p::swarm::DialError::Denied { .. }) {
                    self.metrics.connections_refused.inc();
                }
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
                } => self.serve(request, channel),
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
                request_response::Event::OutboundFailure { request_id, .. },
            )) => {
                if let Some((_, CatchupRequest::Blocks { department, .. })) =
                    self.requests.remove(&request_id)
                {
                    if let Ok(d) = DepartmentId::parse(&department) {
                        self.schedule.fetch_done(&d);
                    }
                }
            }
            _ => {}
        }
    }

    fn serve(&mut self, request: CatchupRequest, channel: ResponseChannel<CatchupResponse>) {
        let response = match request {
            CatchupRequest::Heads => match self.store.heads() {
                Ok(h) => CatchupResponse::Heads(
                    h.into_iter()
                        .map(|(d, h)| (d.to_string(), h.height))
                        .collect(),
                ),
                Err(e) => CatchupResponse::Error(e.to_string()),
            },
            CatchupRequest::Blocks { department, from } => {
                self.metrics.catchup_requests_served.inc();
                match DepartmentId::parse(&department) {
                    Ok(d) => match self.store.blocks_from(
                        &d,
                        from,
                        self.limits.catchup_blocks_max,
                        self.limits.catchup_bytes_max,
                    ) {
                        Ok(blocks) => CatchupResponse::Blocks(
                            blocks.into_iter().map(serde_bytes::ByteBuf::from).collect(),
                        ),
                        Err(e) => CatchupResponse::Error(e.to_string()),
                    },
                    Err(e) => CatchupResponse::Error(e.to_string()),
                }
            }
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .catchup()
            .send_response(channel, response);
    }

    fn response(&mut self, peer: PeerId, req: CatchupRequest, response: CatchupResponse) {
        match (req, response) {
            (CatchupRequest::Heads, CatchupResponse::Heads(heads)) => {
                // What a peer claims of any chain, ours included, only makes us fetch the
                // signed blocks; it never opens or closes our own signing (the signing
                // record beside the key does).
                for (d, height) in wire::known_heads(&self.net, heads) {
                    let ours = self.store.head(&d).map_or(0, |h| h.height);
                    if height > ours {
                        self.fetch(peer, d);
                    }
                }
            }
            (CatchupRequest::Blocks { department, .. }, CatchupResponse::Blocks(blocks)) => {
                let Ok(d) = DepartmentId::parse(&department) else {
                    return;
                };
                let Some(blocks) = wire::catchup_batch(blocks, &self.limits) else {
                    self.schedule.fetch_done(&d);
                    return;
                };
                let job = ApplyJob::Catchup {
                    peer,
                    department: d.clone(),
                    blocks,
                };
                if !self.submit(job) {
                    self.schedule.fetch_done(&d);
                }
            }
            (CatchupRequest::Blocks { department, .. }, _) => {
                if let Ok(d) = DepartmentId::parse(&department) {
                    self.schedule.fetch_done(&d);
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
        let (handle, NetInbox { rx: mut inbox, .. }) = channel();
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
