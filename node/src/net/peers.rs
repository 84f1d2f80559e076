//! Bookkeeping of peers: whom the node is connected to, the role genesis gives each peer,
//! and the penalty points and bans of peers that sent invalid blocks.
//!
//! Pure bookkeeping with the time passed in: it must never touch the swarm. The event loop
//! acts on its answers (refuses a peer `penalise` bans, readmits the peers `expire_bans`
//! returns).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use huren_api::PeerInfo;
use huren_core::genesis::PeerRole;
use huren_core::Network;
use libp2p::{Multiaddr, PeerId};

/// Misbehaviour points after which a peer is disconnected and refused for a while.
pub(crate) const PENALTY_DISCONNECT: u32 = 10;
/// How long a peer that reached `PENALTY_DISCONNECT` is refused.
pub(crate) const PENALTY_BAN: Duration = Duration::from_secs(60);
/// Catch-up requests a peer may send per second, on average… (a node catching up after a
/// partition asks for 64 blocks at a time, one answer after another, on every chain it
/// missed: the drills saw 20 a second run dry and stall convergence)…
pub(crate) const REQUESTS_PER_SEC: f64 = 100.0;
/// …and at once (a node catching up asks for every department on its first tick).
pub(crate) const REQUESTS_BURST: f64 = 200.0;

#[derive(Debug)]
pub(crate) struct Peers {
    /// What genesis says each peer is: a department id, or `observer:<name>`.
    roles: HashMap<PeerId, String>,
    connected: HashMap<PeerId, (Multiaddr, Instant)>,
    penalties: HashMap<PeerId, u32>,
    banned: HashMap<PeerId, Instant>,
    /// Each peer's catch-up request allowance: tokens left, and when last counted. Kept
    /// across reconnections (a fresh burst per connection would be no limit); only genesis
    /// peers connect, so it holds a few entries.
    allowance: HashMap<PeerId, (f64, Instant)>,
}

impl Peers {
    pub(crate) fn new(net: &Network) -> Self {
        let mut peers = Self {
            roles: HashMap::new(),
            connected: HashMap::new(),
            penalties: HashMap::new(),
            banned: HashMap::new(),
            allowance: HashMap::new(),
        };
        peers.set_roles(net);
        peers
    }

    /// The roles of the network in force (after a governance record, a new one).
    pub(crate) fn set_roles(&mut self, net: &Network) {
        self.roles = net
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
    }

    pub(crate) fn role(&self, peer: &PeerId) -> Option<&str> {
        self.roles.get(peer).map(String::as_str)
    }

    pub(crate) fn connected(&mut self, peer: PeerId, addr: Multiaddr, now: Instant) {
        self.connected.insert(peer, (addr, now));
    }

    /// The peer's last connection closed.
    pub(crate) fn disconnected(&mut self, peer: &PeerId) {
        self.connected.remove(peer);
    }

    /// Whether `peer` may have one more catch-up request served at `now`: a token bucket
    /// of `REQUESTS_BURST`, refilled at `REQUESTS_PER_SEC`, per peer.
    pub(crate) fn admit_request(&mut self, peer: PeerId, now: Instant) -> bool {
        let (tokens, last) = self.allowance.entry(peer).or_insert((REQUESTS_BURST, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * REQUESTS_PER_SEC;
        *tokens = (*tokens + refill).min(REQUESTS_BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub(crate) fn is_connected(&self, peer: &PeerId) -> bool {
        self.connected.contains_key(peer)
    }

    pub(crate) fn connected_count(&self) -> usize {
        self.connected.len()
    }

    pub(crate) fn connected_peers(&self) -> Vec<PeerId> {
        self.connected.keys().copied().collect()
    }

    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.contains_key(peer)
    }

    /// Connected peers, as `/v1/peers` shows them.
    pub(crate) fn info(&self, now: Instant) -> Vec<PeerInfo> {
        self.connected
            .iter()
            .map(|(p, (addr, since))| PeerInfo {
                peer_id: p.to_string(),
                role: self.roles.get(p).cloned().unwrap_or_default(),
                address: addr.to_string(),
                connected_for_secs: now.saturating_duration_since(*since).as_secs(),
            })
            .collect()
    }

    /// Adds a penalty point; true when the peer has reached `PENALTY_DISCONNECT` and is
    /// (again) banned from `now`: the caller disconnects and refuses it.
    pub(crate) fn penalise(&mut self, peer: PeerId, now: Instant) -> bool {
        let points = self.penalties.entry(peer).or_default();
        *points += 1;
        if *points >= PENALTY_DISCONNECT {
            self.banned.insert(peer, now);
            return true;
        }
        false
    }

    /// Ends the bans older than `PENALTY_BAN` and forgives those peers' points; returns
    /// them, for the caller to accept again.
    pub(crate) fn expire_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) > PENALTY_BAN)
            .map(|(p, _)| *p)
            .collect();
        for p in &expired {
            self.banned.remove(p);
            self.penalties.remove(p);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers() -> (Peers, huren_testkit::Founded) {
        let founded = huren_testkit::Founded::example().expect("founded");
        (Peers::new(&founded.network().expect("genesis")), founded)
    }

    fn random_peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    #[test]
    fn penalties_accumulate_to_a_ban_that_expires() {
        let (mut p, _f) = peers();
        let (bad, other) = (random_peer(), random_peer());
        let t0 = Instant::now();
        for i in 1..PENALTY_DISCONNECT {
            assert!(!p.penalise(bad, t0), "banned after {i} points");
        }
        assert!(!p.penalise(other, t0), "points are per peer");
        assert!(p.penalise(bad, t0), "banned at {PENALTY_DISCONNECT} points");
        assert!(p.is_banned(&bad) && !p.is_banned(&other));
        // Every further point renews the ban.
        let t1 = t0 + Duration::from_secs(30);
        assert!(p.penalise(bad, t1));
        assert!(p.expire_bans(t1 + PENALTY_BAN).is_empty(), "not yet over");
        let later = t1 + PENALTY_BAN + Duration::from_secs(1);
        assert_eq!(p.expire_bans(later), vec![bad]);
        assert!(!p.is_banned(&bad));
        // Points were forgiven with the ban: one more is one point, not a ban.
        assert!(!p.penalise(bad, later));
    }

    #[test]
    fn catch_up_requests_are_rate_limited_per_peer() {
        let (mut p, _f) = peers();
        let (greedy, other) = (random_peer(), random_peer());
        let t0 = Instant::now();
        let burst = REQUESTS_BURST as usize;
        let admitted = (0..burst * 2)
            .filter(|_| p.admit_request(greedy, t0))
            .count();
        assert_eq!(admitted, burst, "the burst, then nothing");
        assert!(
            p.admit_request(other, t0),
            "another peer has its own allowance"
        );
        // A second refills REQUESTS_PER_SEC requests.
        let t1 = t0 + Duration::from_secs(1);
        let refilled = (0..burst).filter(|_| p.admit_request(greedy, t1)).count();
        assert_eq!(refilled, REQUESTS_PER_SEC as usize);
        // Reconnecting does not bring a fresh burst.
        p.disconnected(&greedy);
        assert!(!p.admit_request(greedy, t1));
    }

    #[test]
    fn connected_peers_show_their_genesis_role() {
        let (mut p, f) = peers();
        let net = f.network().expect("genesis");
        let doc = net.document();
        let dept: PeerId = doc.departments[0].node_peer_id.parse().expect("peer id");
        let observer: PeerId = doc.observers[0].node_peer_id.parse().expect("peer id");
        let t0 = Instant::now();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().expect("address");
        p.connected(dept, addr.clone(), t0);
        p.connected(observer, addr.clone(), t0 + Duration::from_secs(5));
        assert_eq!(p.role(&dept), Some(doc.departments[0].id.as_str()));
        let mut info = p.info(t0 + Duration::from_secs(12));
        info.sort_by_key(|i| i.connected_for_secs);
        let seen: Vec<(String, u64)> = info
            .iter()
            .map(|i| (i.role.clone(), i.connected_for_secs))
            .collect();
        assert_eq!(
            seen,
            vec![
                (format!("observer:{}", doc.observers[0].name), 7),
                (doc.departments[0].id.to_string(), 12),
            ]
        );
        assert_eq!(info[0].address, addr.to_string());
        p.disconnected(&dept);
        assert!(!p.is_connected(&dept) && p.is_connected(&observer));
        assert_eq!(p.connected_count(), 1);
    }
}
