//! The department network: libp2p (TCP, Noise, Yamux), run as an actor.
//!
//! Only the event loop in `run` owns the `Swarm`; the rest of the node holds a cloneable
//! `NetHandle` that sends commands over a bounded channel. Received blocks are validated
//! and applied on a separate thread (`applier`), because applying means an fsync and the
//! event loop must keep serving the swarm meanwhile; the verdict comes back to the loop,
//! which tells gossipsub to forward (Accept), drop (Ignore) or drop and penalise (Reject).
//!
//! - Permissioned: the allow-list behaviour refuses every connection whose peer id genesis
//!   does not name; connection limits cap the rest.
//! - gossipsub (topic `huren/1`) carries new blocks and equivocation evidence, with manual
//!   validation: nothing is forwarded before it validates.
//! - request-response (`/huren/catchup/1`) carries catch-up: a peer's chain heads, then
//!   "blocks of department D from height h" in bounded batches, repeated until caught up.
//!   Every tick the node asks each peer for its heads, so a node that starts fresh,
//!   restarts or rejoins after a partition converges without operator action.

use crate::now_ms;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use huren_core::genesis::PeerRole;
use huren_core::validate::{BlockError, ChainView};
use huren_core::Equivocation;
use huren_core::{Block, DepartmentId, Network};
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, connection_limits, identity, Multiaddr, PeerId, StreamProtocol, Swarm,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::config::{Limits, NetworkConfig};
use crate::ledger::{Admission, Ledger};
use crate::metrics::Metrics;
use crate::store::Store;

pub const TOPIC: &str = "huren/1";
const CATCHUP_PROTOCOL: &str = "/huren/catchup/1";
const TAG_BLOCK: u8 = 1;
const TAG_EVIDENCE: u8 = 2;
/// How often the node redials bootstrap peers and compares chain heads with every peer.
const TICK: Duration = Duration::from_secs(2);
/// Without any peer for this long, the node says its data may be stale.
const STALE_AFTER: Duration = Duration::from_secs(300);
/// How long a department node waits for a peer's view of its own chain before it
/// signs blocks anyway (a network where no bootstrap peer is up).
const OWN_CHAIN_WAIT: Duration = Duration::from_secs(10);
/// Misbehaviour points after which a peer is disconnected and refused for a while.
const PENALTY_DISCONNECT: u32 = 10;
const PENALTY_BAN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CatchupRequest {
    Heads,
    Blocks { department: String, from: u64 },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CatchupResponse {
    Heads(Vec<(String, u64)>),
    Blocks(Vec<serde_bytes::ByteBuf>),
    Error(String),
}

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// First, so that peers outside genesis are refused before anything else sees them.
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    catchup: request_response::cbor::Behaviour<CatchupRequest, CatchupResponse>,
}

impl Behaviour {
    pub fn gossipsub(&mut self) -> &mut gossipsub::Behaviour {
        &mut self.gossipsub
    }
    pub fn catchup(
        &mut self,
    ) -> &mut request_response::cbor::Behaviour<CatchupRequest, CatchupResponse> {
        &mut self.catchup
    }
}

/// The gossip message that carries a block.
pub fn block_message(block: &Block) -> Vec<u8> {
    let mut data = vec![TAG_BLOCK];
    data.extend_from_slice(&block.encode());
    data
}

/// Builds the swarm for `keypair`, allowing exactly the peers genesis names.
pub fn build_swarm(
    keypair: identity::Keypair,
    net: &Network,
    limits: &Limits,
) -> anyhow::Result<Swarm<Behaviour>> {
    let max_transmit = limits.gossip_message_bytes_max + 1024;
    let catchup_bytes = limits.catchup_bytes_max as u64 + 64 * 1024;
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(max_transmit)
        .max_messages_per_rpc(Some(64))
        .heartbeat_interval(Duration::from_millis(500))
        // A block is identified by its bytes: the same block from two peers is one message.
        .message_id_fn(|m: &gossipsub::Message| {
            MessageId::from(huren_core::Hash32::digest(&m.data).0.to_vec())
        })
        .build()
        .map_err(|e| anyhow::anyhow!("gossipsub config: {e}"))?;
    let peers: Vec<PeerId> = net.peers().keys().filter_map(|p| p.parse().ok()).collect();
    let conn_limits = connection_limits::ConnectionLimits::default()
        .with_max_established_per_peer(Some(2))
        .with_max_established(Some(limits.connections_max))
        .with_max_pending_incoming(Some(limits.connections_max));
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )?
        .with_behaviour(|key| {
            let mut allow =
                allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
            for p in &peers {
                allow.allow_peer(*p);
            }
            let gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_config,
            )
            .map_err(|e| anyhow::anyhow!("gossipsub: {e}"))?;
            let codec = request_response::cbor::codec::Codec::default()
                .set_request_size_maximum(64 * 1024)
                .set_response_size_maximum(catchup_bytes);
            let catchup = request_response::Behaviour::with_codec(
                codec,
                [(StreamProtocol::new(CATCHUP_PROTOCOL), ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            );
            Ok(Behaviour {
                allow,
                limits: connection_limits::Behaviour::new(conn_limits),
                gossipsub,
                catchup,
            })
        })
        .map_err(|e| anyhow::anyhow!("building behaviour: {e}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    Ok(swarm)
}

/// A connected peer, as `/v1/peers` shows it.
pub use huren_api::PeerInfo;

enum Command {
    Publish(Vec<u8>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
}

/// Cloneable handle to the network actor.
#[derive(Clone)]
pub struct NetHandle {
    tx: mpsc::Sender<Command>,
}

impl NetHandle {
    /// Gossips a block this node produced. Never blocks: if the queue is full the block is
    /// dropped here and peers fetch it by catch-up on their next tick.
    pub fn publish_block(&self, block: &Block) {
        let _ = self.tx.try_send(Command::Publish(block_message(block)));
    }

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
    let (tx, rx) = mpsc::channel(1024);
    (NetHandle { tx }, NetInbox(rx))
}

pub struct NetInbox(mpsc::Receiver<Command>);

fn evidence_message(ev: &Equivocation) -> Vec<u8> {
    let mut data = vec![TAG_EVIDENCE];
    data.extend_from_slice(&ev.encode());
    data
}

// ---------------------------------------------------------------------------------------
// The applier thread: validate and apply received blocks, one at a time, in order.

enum ApplyJob {
    Gossip {
        id: MessageId,
        source: PeerId,
        data: Vec<u8>,
    },
    Catchup {
        peer: PeerId,
        department: DepartmentId,
        blocks: Vec<Vec<u8>>,
    },
}

enum ApplyOutcome {
    Validation {
        id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    },
    /// A gap: ask `peer` for `department` from `from`.
    Fetch {
        peer: PeerId,
        department: DepartmentId,
    },
    CatchupDone {
        peer: PeerId,
        department: DepartmentId,
        progressed: bool,
    },
    Misbehaved {
        peer: PeerId,
    },
    Evidence(Vec<u8>),
}

struct Applier {
    net: Arc<Network>,
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
    records_max: usize,
    pending_max: usize,
    /// Early blocks held while the gap before them is fetched.
    pending: HashMap<(DepartmentId, u64), Block>,
    out: mpsc::UnboundedSender<ApplyOutcome>,
}

impl Applier {
    fn run(mut self, rx: Receiver<ApplyJob>) {
        while let Ok(job) = rx.recv() {
            match job {
                ApplyJob::Gossip { id, source, data } => {
                    let acceptance = self.gossip(source, &data);
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
                        match self.apply_bytes(peer, &bytes, false) {
                            Some(true) => progressed = true,
                            Some(false) => {}
                            None => break,
                        }
                    }
                    let _ = self.out.send(ApplyOutcome::CatchupDone {
                        peer,
                        department,
                        progressed,
                    });
                }
            }
        }
    }

    fn gossip(&mut self, source: PeerId, data: &[u8]) -> MessageAcceptance {
        match data.split_first() {
            Some((&TAG_BLOCK, body)) => match self.apply_bytes(source, body, true) {
                Some(true) => MessageAcceptance::Accept,
                Some(false) => MessageAcceptance::Ignore,
                None => MessageAcceptance::Reject,
            },
            Some((&TAG_EVIDENCE, body)) => match Equivocation::decode(&self.net, body) {
                Ok(ev) => match self.ledger.record_evidence(&ev) {
                    Ok(true) => {
                        self.metrics.equivocations.inc();
                        tracing::warn!(department = %ev.department(), height = ev.height(), "equivocation evidence received");
                        MessageAcceptance::Accept
                    }
                    _ => MessageAcceptance::Ignore,
                },
                Err(_) => {
                    self.metrics.blocks_rejected.inc("bad_evidence");
                    MessageAcceptance::Reject
                }
            },
            _ => {
                self.metrics.blocks_rejected.inc("malformed");
                MessageAcceptance::Reject
            }
        }
    }

    /// Some(true): applied (or equivocation proven); Some(false): ignored; None: rejected
    /// (the sender is penalised).
    fn apply_bytes(&mut self, source: PeerId, bytes: &[u8], gossiped: bool) -> Option<bool> {
        let block = match Block::decode(bytes) {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(peer = %source, error = %e, "undecodable block");
                self.metrics.blocks_rejected.inc("malformed");
                let _ = self.out.send(ApplyOutcome::Misbehaved { peer: source });
                return None;
            }
        };
        let dept = block.department().clone();
        let time_ms = block.header.time_ms;
        match self
            .ledger
            .receive(block.clone(), now_ms(), self.records_max)
        {
            Ok(Admission::Applied(head)) => {
                self.metrics.blocks_received.inc();
                if gossiped {
                    self.metrics
                        .propagation_seconds
                        .observe(now_ms().saturating_sub(time_ms) as f64 / 1000.0);
                }
                self.drain_pending(source, &dept, head.height);
                Some(true)
            }
            Ok(Admission::Duplicate) => Some(false),
            Ok(Admission::Equivocation(ev)) => {
                self.metrics.equivocations.inc();
                tracing::warn!(department = %ev.department(), height = ev.height(), "equivocation detected");
                let _ = self.out.send(ApplyOutcome::Evidence(evidence_message(&ev)));
                Some(true)
            }
            Ok(Admission::Ignored(e)) => {
                self.metrics.blocks_rejected.inc(e.code());
                if let BlockError::Gap { .. } = e {
                    if self.pending.len() < self.pending_max {
                        self.pending.insert((dept.clone(), block.height()), block);
                    }
                    let _ = self.out.send(ApplyOutcome::Fetch {
                        peer: source,
                        department: dept,
                    });
                }
                Some(false)
            }
            Ok(Admission::Rejected(e)) => {
                self.metrics.blocks_rejected.inc(e.code());
                tracing::info!(peer = %source, error = %e, "rejected block");
                let _ = self.out.send(ApplyOutcome::Misbehaved { peer: source });
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "storage failure applying a received block");
                Some(false)
            }
        }
    }

    fn drain_pending(&mut self, source: PeerId, dept: &DepartmentId, mut height: u64) {
        while let Some(next) = self.pending.remove(&(dept.clone(), height + 1)) {
            match self.ledger.receive(next, now_ms(), self.records_max) {
                Ok(Admission::Applied(h)) => {
                    self.metrics.blocks_received.inc();
                    height = h.height;
                }
                _ => break,
            }
        }
        // Drop anything now at or below the head: it can never apply.
        self.pending.retain(|(d, h), _| d != dept || *h > height);
        let _ = source;
    }
}

// ---------------------------------------------------------------------------------------
// The event loop.

pub struct NetParams {
    pub keypair: identity::Keypair,
    pub config: NetworkConfig,
    pub limits: Limits,
    pub stale: Arc<AtomicBool>,
    /// This node's department (None for observers) and the highest height of its chain
    /// any peer reported, which the producer reads before signing.
    pub own_department: Option<DepartmentId>,
    pub gate: Arc<crate::producer::OwnChainGate>,
}

struct Actor {
    swarm: Swarm<Behaviour>,
    net: Arc<Network>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    limits: Limits,
    topic: IdentTopic,
    roles: HashMap<PeerId, String>,
    bootstrap: Vec<(PeerId, Multiaddr)>,
    connected: HashMap<PeerId, (Multiaddr, Instant)>,
    /// Catch-up in flight per department: only one at a time.
    inflight: HashMap<DepartmentId, (PeerId, Instant)>,
    requests: HashMap<OutboundRequestId, (PeerId, CatchupRequest)>,
    penalties: HashMap<PeerId, u32>,
    banned: HashMap<PeerId, Instant>,
    apply_tx: SyncSender<ApplyJob>,
    last_peer_seen: Instant,
    stale: Arc<AtomicBool>,
    own_department: Option<DepartmentId>,
    gate: Arc<crate::producer::OwnChainGate>,
    started: Instant,
}

/// Runs the network until the inbox closes. Prints the listen addresses to stdout.
pub async fn run(
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
    params: NetParams,
    inbox: NetInbox,
) -> anyhow::Result<()> {
    let (net, store) = (ledger.network().clone(), ledger.store().clone());
    let local = params.keypair.public().to_peer_id();
    let mut swarm = build_swarm(params.keypair, &net, &params.limits)?;
    let topic = IdentTopic::new(TOPIC);
    swarm.behaviour_mut().gossipsub.subscribe(&topic)?;
    for l in &params.config.listen {
        let addr: Multiaddr = l
            .parse()
            .map_err(|e| anyhow::anyhow!("network.listen {l}: {e}"))?;
        swarm.listen_on(addr)?;
    }
    let mut bootstrap = Vec::new();
    for b in &params.config.bootstrap {
        let addr: Multiaddr = b
            .parse()
            .map_err(|e| anyhow::anyhow!("network.bootstrap {b}: {e}"))?;
        let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() else {
            anyhow::bail!("network.bootstrap {b} must end in /p2p/<peer id>");
        };
        if peer != local {
            bootstrap.push((peer, addr));
        }
    }
    let roles = net
        .peers()
        .into_iter()
        .filter_map(|(p, role)| {
            let role = match role {
                PeerRole::Department(d) => d.to_string(),
                PeerRole::Observer(o) => format!("observer:{o}"),
            };
            Some((p.parse().ok()?, role))
        })
        .collect();
    let (apply_tx, apply_rx) = sync_channel(params.limits.pending_blocks_max.max(16));
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let applier = Applier {
        net: net.clone(),
        ledger,
        metrics: metrics.clone(),
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
        net,
        store,
        metrics,
        limits: params.limits,
        topic,
        roles,
        bootstrap,
        connected: HashMap::new(),
        inflight: HashMap::new(),
        requests: HashMap::new(),
        penalties: HashMap::new(),
        banned: HashMap::new(),
        apply_tx,
        last_peer_seen: Instant::now(),
        stale: params.stale,
        own_department: params.own_department,
        gate: params.gate,
        started: Instant::now(),
    };
    if actor.bootstrap.is_empty() {
        // Nobody to ask about our own chain: this node is the first of its network.
        actor.gate.mark_checked();
    }
    actor.dial_bootstrap();
    let mut inbox = inbox.0;
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
                    .gossipsub
                    .publish(self.topic.clone(), data)
                {
                    // No peers yet, or a duplicate: peers fetch the block by catch-up.
                    tracing::debug!(error = %e, "publish");
                }
            }
            Command::Peers(reply) => {
                let list = self
                    .connected
                    .iter()
                    .map(|(p, (addr, since))| PeerInfo {
                        peer_id: p.to_string(),
                        role: self.roles.get(p).cloned().unwrap_or_default(),
                        address: addr.to_string(),
                        connected_for_secs: since.elapsed().as_secs(),
                    })
                    .collect();
                let _ = reply.send(list);
            }
        }
    }

    fn dial_bootstrap(&mut self) {
        for (peer, addr) in self.bootstrap.clone() {
            if self.connected.contains_key(&peer) || self.banned.contains_key(&peer) {
                continue;
            }
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::debug!(%peer, error = %e, "dial");
            }
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, t)| now.duration_since(**t) > PENALTY_BAN)
            .map(|(p, _)| *p)
            .collect();
        for p in expired {
            self.banned.remove(&p);
            self.penalties.remove(&p);
            self.swarm.behaviour_mut().allow.allow_peer(p);
        }
        self.inflight
            .retain(|_, (_, since)| now.duration_since(*since) < Duration::from_secs(60));
        if now.duration_since(self.started) > OWN_CHAIN_WAIT {
            // No peer answered in time: go on rather than refuse issuance forever.
            self.gate.mark_checked();
        }
        self.dial_bootstrap();
        let peers: Vec<PeerId> = self.connected.keys().copied().collect();
        for p in peers {
            self.request(p, CatchupRequest::Heads);
        }
        if !self.connected.is_empty() {
            self.last_peer_seen = now;
        }
        self.stale.store(
            self.net.peers().len() > 1 && now.duration_since(self.last_peer_seen) > STALE_AFTER,
            Ordering::Relaxed,
        );
        self.metrics
            .peers_connected
            .set(self.connected.len() as u64);
    }

    fn request(&mut self, peer: PeerId, req: CatchupRequest) {
        if let CatchupRequest::Blocks { .. } = req {
            self.metrics.catchup_requests_sent.inc();
        }
        let id = self
            .swarm
            .behaviour_mut()
            .catchup
            .send_request(&peer, req.clone());
        self.requests.insert(id, (peer, req));
    }

    fn fetch(&mut self, peer: PeerId, dept: DepartmentId) {
        if self.inflight.contains_key(&dept) || !self.connected.contains_key(&peer) {
            return;
        }
        let from = self.store.head(&dept).map_or(1, |h| h.height + 1);
        self.inflight.insert(dept.clone(), (peer, Instant::now()));
        self.request(
            peer,
            CatchupRequest::Blocks {
                department: dept.to_string(),
                from,
            },
        );
    }

    fn penalise(&mut self, peer: PeerId) {
        let points = self.penalties.entry(peer).or_default();
        *points += 1;
        if *points >= PENALTY_DISCONNECT {
            tracing::warn!(%peer, "disconnecting a peer that sent too many invalid blocks");
            self.swarm.behaviour_mut().allow.disallow_peer(peer);
            self.banned.insert(peer, Instant::now());
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
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
            }
            ApplyOutcome::Fetch { peer, department } => self.fetch(peer, department),
            ApplyOutcome::CatchupDone {
                peer,
                department,
                progressed,
            } => {
                self.inflight.remove(&department);
                if progressed {
                    self.fetch(peer, department);
                }
            }
            ApplyOutcome::Misbehaved { peer } => self.penalise(peer),
            ApplyOutcome::Evidence(data) => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
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
                self.connected.insert(
                    peer_id,
                    (endpoint.get_remote_address().clone(), Instant::now()),
                );
                self.last_peer_seen = Instant::now();
                self.metrics
                    .peers_connected
                    .set(self.connected.len() as u64);
                tracing::info!(peer = %peer_id, role = self.roles.get(&peer_id).map_or("?", String::as_str), "peer connected");
                self.request(peer_id, CatchupRequest::Heads);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                if num_established == 0 {
                    self.connected.remove(&peer_id);
                    self.metrics
                        .peers_connected
                        .set(self.connected.len() as u64);
                }
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
                        .gossipsub
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
                        self.inflight.remove(&d);
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
            .catchup
            .send_response(channel, response);
    }

    fn response(&mut self, peer: PeerId, req: CatchupRequest, response: CatchupResponse) {
        match (req, response) {
            (CatchupRequest::Heads, CatchupResponse::Heads(heads)) => {
                // Record what the peer says of our chain before opening the gate.
                if let Some(own) = &self.own_department {
                    if let Some((_, h)) = heads.iter().find(|(d, _)| d == own.as_str()) {
                        self.gate.peer_reports(*h);
                    }
                }
                self.gate.mark_checked();
                let known = self.net.departments().len();
                for (dept, height) in heads.into_iter().take(known) {
                    let Ok(d) = DepartmentId::parse(&dept) else {
                        continue;
                    };
                    if self.net.department(&d).is_none() {
                        continue;
                    }
                    if self.own_department.as_ref() == Some(&d) {
                        self.gate.peer_reports(height);
                    }
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
                if blocks.is_empty() || blocks.len() > self.limits.catchup_blocks_max.max(1) * 2 {
                    self.inflight.remove(&d);
                    return;
                }
                let job = ApplyJob::Catchup {
                    peer,
                    department: d.clone(),
                    blocks: blocks.into_iter().map(|b| b.into_vec()).collect(),
                };
                if !self.submit(job) {
                    self.inflight.remove(&d);
                }
            }
            (CatchupRequest::Blocks { department, .. }, _) => {
                if let Ok(d) = DepartmentId::parse(&department) {
                    self.inflight.remove(&d);
                }
            }
            _ => {}
        }
    }
}
