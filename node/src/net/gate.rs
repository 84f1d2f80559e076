//! The p2p port's first gate: pending incoming connections per source address.
//!
//! Before its handshake a connection has no peer id, so the allow-list of genesis peers
//! cannot judge it yet; until then it holds one of the `connections_max` pending slots.
//! Without this gate, one stranger holding that many idle TCP connections (each dropped
//! by the handshake timeout and opened again) locks every genesis peer out. Here one
//! source, an IPv4 address or an IPv6 /64 (what one host or one customer line usually
//! has), holds at most `PENDING_PER_SOURCE_MAX` of them.
//!
//! It never sees established connections: from the handshake on, the allow-list and the
//! connection limits decide.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::ListenFailure;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

use crate::source::Source;

/// Handshakes under way from one source at most. Genesis peers dial once (twice when
/// both sides dial at once); a few more leave room for a NAT shared by two nodes.
pub(crate) const PENDING_PER_SOURCE_MAX: usize = 4;

/// The source of a pending connection: its first address component.
fn source_of(addr: &Multiaddr) -> Source {
    match addr.iter().next() {
        Some(Protocol::Ip4(a)) => Source::of(IpAddr::V4(a)),
        Some(Protocol::Ip6(a)) => Source::of(IpAddr::V6(a)),
        _ => Source::Other,
    }
}

/// Why a connection was refused here.
#[derive(Debug, thiserror::Error)]
#[error("{pending} handshakes already under way from {from:?} (at most {PENDING_PER_SOURCE_MAX})")]
pub struct TooManyPending {
    from: Source,
    pending: usize,
}

#[derive(Default)]
pub struct PendingGate {
    by_connection: HashMap<ConnectionId, Source>,
    by_source: HashMap<Source, usize>,
}

impl PendingGate {
    fn release(&mut self, connection: ConnectionId) {
        if let Some(source) = self.by_connection.remove(&connection) {
            if let Some(n) = self.by_source.get_mut(&source) {
                *n -= 1;
                if *n == 0 {
                    self.by_source.remove(&source);
                }
            }
        }
    }

    /// Takes a pending slot for `connection` from `remote`, unless its source holds all
    /// of its own.
    pub(crate) fn admit(
        &mut self,
        connection: ConnectionId,
        remote: &Multiaddr,
    ) -> Result<(), TooManyPending> {
        let source = source_of(remote);
        let pending = self.by_source.get(&source).copied().unwrap_or(0);
        if pending >= PENDING_PER_SOURCE_MAX {
            return Err(TooManyPending {
                from: source,
                pending,
            });
        }
        self.by_source.insert(source, pending + 1);
        self.by_connection.insert(connection, source);
        Ok(())
    }
}

impl NetworkBehaviour for PendingGate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.admit(connection_id, remote)
            .map_err(ConnectionDenied::new)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _local: &Multiaddr,
        _remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // The handshake is over: the slot is free, whatever the next behaviour decides.
        self.release(connection_id);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) = event {
            self.release(connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        libp2p::core::util::unreachable(event)
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_holds_at_most_its_share_of_pending_handshakes() {
        let mut gate = PendingGate::default();
        let stranger: Multiaddr = "/ip4/203.0.113.9/tcp/50000".parse().expect("addr");
        let peer: Multiaddr = "/ip4/198.51.100.2/tcp/4001".parse().expect("addr");
        let ids: Vec<ConnectionId> = (0..PENDING_PER_SOURCE_MAX + 2)
            .map(|_| ConnectionId::new_unchecked(rand_id()))
            .collect();
        for id in &ids[..PENDING_PER_SOURCE_MAX] {
            gate.admit(*id, &stranger).expect("within the share");
        }
        let refused = gate
            .admit(ids[PENDING_PER_SOURCE_MAX], &stranger)
            .expect_err("over the share");
        assert!(
            refused.to_string().contains("handshakes already under way"),
            "{refused}"
        );
        // Another source is not held back by the stranger.
        gate.admit(ids[PENDING_PER_SOURCE_MAX + 1], &peer)
            .expect("another source");
        // A handshake that ends (failed, or established) frees its slot.
        gate.release(ids[0]);
        gate.admit(ConnectionId::new_unchecked(rand_id()), &stranger)
            .expect("a slot was freed");
    }

    fn rand_id() -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(1_000_000);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}
