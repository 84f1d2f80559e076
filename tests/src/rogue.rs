//! A peer of the test's own: the node's libp2p behaviour driven by the test, holding a
//! genesis peer's node key (or a stranger's), to play a member of the network gone bad.

use std::time::Duration;

use futures::StreamExt;
use huren_node::config::Limits;
use huren_node::net::{build_swarm, Behaviour, BehaviourEvent, TOPIC};
use libp2p::gossipsub::IdentTopic;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};

use crate::TestNetwork;

/// A swarm with `keypair`, allowing the peers genesis names, subscribed to the blocks
/// topic.
pub fn swarm_for(
    net: &TestNetwork,
    keypair: libp2p::identity::Keypair,
) -> anyhow::Result<Swarm<Behaviour>> {
    let network = huren_genesis::load(&net.genesis)?;
    let mut swarm = build_swarm(keypair, &network, &Limits::default())?;
    swarm
        .behaviour_mut()
        .gossipsub()
        .subscribe(&IdentTopic::new(TOPIC))?;
    Ok(swarm)
}

/// Drives the swarm until `done` says so or `secs` pass.
pub async fn drive_until(
    swarm: &mut Swarm<Behaviour>,
    secs: u64,
    mut done: impl FnMut(&SwarmEvent<BehaviourEvent>) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, swarm.select_next_some()).await {
            Ok(ev) => {
                if done(&ev) {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
}

/// The peer id at the end of a node's p2p address, and the address.
pub fn node_peer(addr: &str) -> anyhow::Result<(PeerId, Multiaddr)> {
    let addr: Multiaddr = addr.parse()?;
    let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() else {
        anyhow::bail!("no peer id in {addr}")
    };
    Ok((peer, addr))
}
