//! The network actor's decisions that depend on time, kept apart from the swarm so that
//! they are tested with a manual clock: when the node's data goes stale (no peer for
//! `STALE_AFTER`), when a catch-up request left unanswered frees its department's slot
//! for a retry (`CATCHUP_INFLIGHT_MAX`).
//!
//! It never reads a clock: every call takes `now`, which the actor reads from the node's
//! one clock (`crate::clock`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use huren_core::DepartmentId;
use libp2p::PeerId;

/// Without any peer for this long, the node says its data may be stale.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(300);
/// A catch-up request unanswered for this long no longer holds its department's slot.
pub(crate) const CATCHUP_INFLIGHT_MAX: Duration = Duration::from_secs(60);

/// What a tick decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tick {
    /// The node has not been in touch with any peer for `STALE_AFTER`.
    pub(crate) stale: bool,
}

#[derive(Debug)]
pub(crate) struct Schedule {
    last_peer_seen: Instant,
    /// One catch-up fetch per department at a time: from whom, since when.
    inflight: HashMap<DepartmentId, (PeerId, Instant)>,
    /// Whether genesis names any node but this one (a lone node is never stale).
    has_peers: bool,
}

impl Schedule {
    pub(crate) fn new(now: Instant, has_peers: bool) -> Self {
        Self {
            last_peer_seen: now,
            inflight: HashMap::new(),
            has_peers,
        }
    }

    /// A peer is connected (or just connected) at `now`.
    pub(crate) fn peer_seen(&mut self, now: Instant) {
        self.last_peer_seen = now;
    }

    /// Takes `dept`'s fetch slot for `peer` unless a fetch is already under way.
    pub(crate) fn start_fetch(&mut self, dept: &DepartmentId, peer: PeerId, now: Instant) -> bool {
        if self.inflight.contains_key(dept) {
            return false;
        }
        self.inflight.insert(dept.clone(), (peer, now));
        true
    }

    /// `dept`'s fetch ended (answered, failed or refused): its slot is free.
    pub(crate) fn fetch_done(&mut self, dept: &DepartmentId) {
        self.inflight.remove(dept);
    }

    pub(crate) fn fetching(&self, dept: &DepartmentId) -> bool {
        self.inflight.contains_key(dept)
    }

    /// The periodic decisions, with `connected` peers at `now`.
    pub(crate) fn tick(&mut self, now: Instant, connected: usize) -> Tick {
        self.inflight
            .retain(|_, (_, since)| now.duration_since(*since) < CATCHUP_INFLIGHT_MAX);
        if connected > 0 {
            self.last_peer_seen = now;
        }
        Tick {
            stale: self.has_peers && now.duration_since(self.last_peer_seen) > STALE_AFTER,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn dept() -> DepartmentId {
        DepartmentId::parse("gd.transport").expect("dept")
    }

    #[test]
    fn a_node_without_peers_goes_stale_after_five_minutes_and_recovers_at_once() {
        let clock = ManualClock::at(0);
        let mut s = Schedule::new(clock.instant(), true);
        assert!(!s.tick(clock.instant(), 1).stale);
        clock.advance(STALE_AFTER);
        assert!(
            !s.tick(clock.instant(), 0).stale,
            "exactly five minutes is not yet stale"
        );
        clock.advance(Duration::from_secs(1));
        assert!(s.tick(clock.instant(), 0).stale);
        // A peer again: fresh on the same tick.
        assert!(!s.tick(clock.instant(), 1).stale);
        // A node alone in its network has nobody to fall behind.
        let mut alone = Schedule::new(clock.instant(), false);
        clock.advance(STALE_AFTER * 10);
        assert!(!alone.tick(clock.instant(), 0).stale);
    }

    #[test]
    fn an_unanswered_catch_up_frees_its_slot_for_a_retry_after_a_minute() {
        let clock = ManualClock::at(0);
        let mut s = Schedule::new(clock.instant(), true);
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!(s.start_fetch(&dept(), a, clock.instant()));
        assert!(
            !s.start_fetch(&dept(), b, clock.instant()),
            "one fetch at a time"
        );
        clock.advance(CATCHUP_INFLIGHT_MAX - Duration::from_secs(1));
        s.tick(clock.instant(), 1);
        assert!(s.fetching(&dept()));
        clock.advance(Duration::from_secs(1));
        s.tick(clock.instant(), 1);
        assert!(!s.fetching(&dept()));
        assert!(
            s.start_fetch(&dept(), b, clock.instant()),
            "retried, from another peer"
        );
        s.fetch_done(&dept());
        assert!(!s.fetching(&dept()));
    }
}
