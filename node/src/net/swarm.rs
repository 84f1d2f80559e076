//! The libp2p behaviour and the swarm built from it: the allow-list of genesis peers,
//! connection limits, gossipsub with manual validation, and catch-up request-response;
//! and reading the configured listen and bootstrap addresses.
//!
//! It must never let a peer that genesis does not name past the allow-list: the allow-list
//! comes right after the pending-handshake gate (which only counts handshakes per source,
//! before any peer id is known), so such a peer is refused before anything else sees it.

use std::time::Duration;

use huren_core::Network;
use libp2p::gossipsub::{self, MessageId};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, connection_limits, identity, Multiaddr, PeerId, StreamProtocol, Swarm,
};

use super::wire::{self, CatchupRequest, CatchupResponse, CATCHUP_PROTOCOL};
use crate::config::{Limits, NetworkConfig};

/// Connections to one peer: one each way when both dial at once.
const CONNECTIONS_PER_PEER_MAX: u32 = 2;
/// gossipsub messages in one RPC frame.
const GOSSIP_MESSAGES_PER_RPC_MAX: usize = 64;
const GOSSIP_HEARTBEAT: Duration = Duration::from_millis(500);
/// A catch-up answer is at most `catchup_bytes_max` of blocks (8 MiB by default: under a
/// second on any link between departments). A peer silent this long has not backed the
/// head it claimed, and another is asked (`schedule`).
pub(crate) const CATCHUP_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP connect, Noise handshake and Yamux negotiation together; a stranger that opens
/// connections and never speaks holds a pending slot this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Peers are few and known: an idle connection stays up for an hour.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);
/// Liveness: every connection is pinged this often, and a ping unanswered this long closes
/// it (`net::mod`), so that a link cut silently (a partition drops packets, it does not
/// reset connections) is noticed within 15 s and redialled, instead of waiting out TCP's
/// retransmission backoff, which after a long cut is minutes.
const PING_INTERVAL: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP_USER_TIMEOUT on every p2p socket: data unacknowledged this long aborts the
/// connection. Without it, closing a connection whose peer is unreachable waits for the
/// close to be acknowledged, which TCP retries for a quarter of an hour, and meanwhile the
/// dead connection holds one of the peer's two connection slots: the chaos drills saw
/// peers refused "limit" for minutes after a partition healed.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Handshakes under way per source address, before any peer id is known.
    gate: super::gate::PendingGate,
    /// Right after, so that peers outside genesis are refused before anything else sees
    /// them.
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    catchup: request_response::cbor::Behaviour<CatchupRequest, CatchupResponse>,
    ping: libp2p::ping::Behaviour,
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

    /// Refuses `peer` from now on and closes its connections (a ban).
    pub(crate) fn refuse(&mut self, peer: PeerId) {
        self.allow.disallow_peer(peer);
    }

    /// Accepts `peer` again once its ban is over.
    pub(crate) fn readmit(&mut self, peer: PeerId) {
        self.allow.allow_peer(peer);
    }
}

/// Why a connection was refused, as the `huren_net_connections_refused_total` label.
pub(crate) fn refusal_reason(cause: &libp2p::swarm::ConnectionDenied) -> &'static str {
    if cause
        .downcast_ref::<super::gate::TooManyPending>()
        .is_some()
    {
        "pending_per_source"
    } else if cause
        .downcast_ref::<connection_limits::Exceeded>()
        .is_some()
    {
        "limit"
    } else {
        // The allow-list: not in genesis, or banned for a while.
        "not_in_genesis"
    }
}

/// The peer ids genesis names (departments' and observers' nodes): the allow-list.
pub(crate) fn genesis_peers(net: &Network) -> Vec<PeerId> {
    net.peers().keys().filter_map(|p| p.parse().ok()).collect()
}

/// A gossip message is identified by its bytes: the same block from two peers is one
/// message.
fn message_id(m: &gossipsub::Message) -> MessageId {
    MessageId::from(huren_core::Hash32::digest(&m.data).0.to_vec())
}

/// Builds the swarm for `keypair`, allowing exactly the peers genesis names.
pub fn build_swarm(
    keypair: identity::Keypair,
    net: &Network,
    limits: &Limits,
) -> anyhow::Result<Swarm<Behaviour>> {
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(limits.gossip_message_bytes_max + wire::GOSSIP_FRAMING_BYTES)
        .max_messages_per_rpc(Some(GOSSIP_MESSAGES_PER_RPC_MAX))
        .heartbeat_interval(GOSSIP_HEARTBEAT)
        .message_id_fn(message_id)
        .build()
        .map_err(|e| anyhow::anyhow!("gossipsub config: {e}"))?;
    let peers = genesis_peers(net);
    let conn_limits = connection_limits::ConnectionLimits::default()
        .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
        .with_max_established(Some(limits.connections_max))
        .with_max_pending_incoming(Some(limits.connections_max));
    let codec = wire::catchup_codec();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_other_transport(
            |key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                use libp2p::core::transport::Transport as _;
                let tcp = libp2p::tcp::tokio::Transport::new(
                    libp2p::tcp::Config::default().nodelay(true),
                )
                .map(|stream: libp2p::tcp::tokio::TcpStream, _| {
                    // Best effort: a socket that refuses the option still works, only
                    // without the bound on a dead peer.
                    if let Err(e) = socket2::SockRef::from(&stream.0)
                        .set_tcp_user_timeout(Some(TCP_USER_TIMEOUT))
                    {
                        tracing::debug!(error = %e, "TCP_USER_TIMEOUT not set");
                    }
                    stream
                });
                Ok(tcp
                    .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                    .authenticate(libp2p::noise::Config::new(key)?)
                    .multiplex(libp2p::yamux::Config::default()))
            },
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
            let catchup = request_response::Behaviour::with_codec(
                codec,
                [(StreamProtocol::new(CATCHUP_PROTOCOL), ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(CATCHUP_REQUEST_TIMEOUT),
            );
            Ok(Behaviour {
                gate: super::gate::PendingGate::default(),
                allow,
                limits: connection_limits::Behaviour::new(conn_limits),
                gossipsub,
                catchup,
                ping: libp2p::ping::Behaviour::new(
                    libp2p::ping::Config::new()
                        .with_interval(PING_INTERVAL)
                        .with_timeout(PING_TIMEOUT),
                ),
            })
        })
        .map_err(|e| anyhow::anyhow!("building behaviour: {e}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .with_connection_timeout(HANDSHAKE_TIMEOUT)
        .build();
    Ok(swarm)
}

/// The configured listen addresses.
pub(crate) fn listen_addrs(config: &NetworkConfig) -> anyhow::Result<Vec<Multiaddr>> {
    config
        .listen
        .iter()
        .map(|l| {
            l.parse()
                .map_err(|e| anyhow::anyhow!("network.listen {l}: {e}"))
        })
        .collect()
}

/// The configured bootstrap peers other than this node (`local`): every address must end
/// in `/p2p/<peer id>`, so that the node knows whom it dials.
pub(crate) fn bootstrap_peers(
    config: &NetworkConfig,
    local: PeerId,
) -> anyhow::Result<Vec<(PeerId, Multiaddr)>> {
    let mut out = Vec::new();
    for b in &config.bootstrap {
        let addr: Multiaddr = b
            .parse()
            .map_err(|e| anyhow::anyhow!("network.bootstrap {b}: {e}"))?;
        let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() else {
            anyhow::bail!("network.bootstrap {b} must end in /p2p/<peer id>");
        };
        if peer != local {
            out.push((peer, addr));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::swarm::DialError;

    fn network() -> (Network, huren_testkit::Founded) {
        let founded = huren_testkit::Founded::example().expect("founded");
        (founded.network().expect("genesis"), founded)
    }

    #[test]
    fn the_allow_list_is_exactly_the_genesis_peers() {
        let (net, _f) = network();
        let peers = genesis_peers(&net);
        assert_eq!(
            peers.len(),
            net.peers().len(),
            "every genesis peer id parses"
        );
        let doc = net.document();
        for d in &doc.departments {
            assert!(peers.iter().any(|p| p.to_string() == d.node_peer_id));
        }
        for o in &doc.observers {
            assert!(peers.iter().any(|p| p.to_string() == o.node_peer_id));
        }
    }

    /// Dialling a stranger is refused by the allow-list before any socket is opened.
    #[tokio::test]
    async fn a_stranger_is_refused_before_any_socket() {
        let (net, _f) = network();
        let mut swarm = build_swarm(
            identity::Keypair::generate_ed25519(),
            &net,
            &Limits::default(),
        )
        .expect("swarm");
        let stranger = identity::Keypair::generate_ed25519().public().to_peer_id();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/9/p2p/{stranger}")
            .parse()
            .expect("address");
        assert!(matches!(swarm.dial(addr), Err(DialError::Denied { .. })));
        // A banned genesis peer is refused the same way.
        let genesis_peer = genesis_peers(&net)[0];
        swarm.behaviour_mut().refuse(genesis_peer);
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/9/p2p/{genesis_peer}")
            .parse()
            .expect("address");
        assert!(matches!(swarm.dial(addr), Err(DialError::Denied { .. })));
    }

    #[test]
    fn one_message_id_per_content() {
        let message = |source: Option<PeerId>, data: &[u8]| gossipsub::Message {
            source,
            data: data.to_vec(),
            sequence_number: Some(1),
            topic: gossipsub::TopicHash::from_raw(wire::TOPIC),
        };
        let (a, b) = (random_peer(), random_peer());
        assert_eq!(
            message_id(&message(Some(a), b"block")),
            message_id(&message(Some(b), b"block"))
        );
        assert_ne!(
            message_id(&message(Some(a), b"block")),
            message_id(&message(Some(a), b"other"))
        );
    }

    #[test]
    fn bootstrap_addresses_name_their_peer() {
        let (local, other) = (random_peer(), random_peer());
        let config = |bootstrap: Vec<String>| NetworkConfig {
            listen: vec![],
            bootstrap,
        };
        let peers = bootstrap_peers(
            &config(vec![
                format!("/ip4/127.0.0.1/tcp/4001/p2p/{other}"),
                format!("/ip4/127.0.0.1/tcp/4002/p2p/{local}"),
            ]),
            local,
        )
        .expect("valid");
        assert_eq!(peers.len(), 1, "this node does not dial itself");
        assert_eq!(peers[0].0, other);
        for bad in ["/ip4/127.0.0.1/tcp/4001", "not an address"] {
            assert!(
                bootstrap_peers(&config(vec![bad.into()]), local).is_err(),
                "{bad}"
            );
        }
        assert!(listen_addrs(&NetworkConfig::default()).is_ok());
        assert!(listen_addrs(&config_listen("nonsense")).is_err());
    }

    fn random_peer() -> PeerId {
        identity::Keypair::generate_ed25519().public().to_peer_id()
    }

    fn config_listen(addr: &str) -> NetworkConfig {
        NetworkConfig {
            listen: vec![addr.into()],
            bootstrap: vec![],
        }
    }
}
