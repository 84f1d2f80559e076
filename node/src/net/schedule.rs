//! The network actor's decisions that depend on time, kept apart from the swarm so that
//! they are tested with a manual clock: when the node's data goes stale (no peer for
//! `STALE_AFTER`), and whom to ask for which department's blocks.
//!
//! Catch-up rests on what peers claim (their `Heads` answers) and on signed blocks they
//! relayed, but a claim only decides whom to ask, never what is true. One fetch per
//! department runs at a time; when it has gone `HEDGE_AFTER` without an answer, a second
//! peer is asked too (at most `FETCH_PEERS_MAX`), so a peer that claims a high head and
//! never answers cannot hold a department's catch-up. A peer that failed a department
//! (no answer, or an answer that does not back its claim) is not asked for it again for
//! `COOLDOWN`, and its claim is forgotten.
//!
//! It never reads a clock: every call takes `now`, which the actor reads from the node's
//! one clock (`crate::clock`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use huren_core::DepartmentId;
use libp2p::PeerId;

/// Without any peer for this long, the node says its data may be stale.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(300);
/// A catch-up request unanswered for this long no longer holds its slot (the request
/// itself times out sooner, `swarm::CATCHUP_REQUEST_TIMEOUT`; this is the backstop).
pub(crate) const CATCHUP_INFLIGHT_MAX: Duration = Duration::from_secs(30);
/// A fetch unanswered for this long lets a second peer be asked for the same blocks (an
/// answer normally takes milliseconds; after a partition heals, a peer busy catching up
/// itself may take seconds).
pub(crate) const HEDGE_AFTER: Duration = Duration::from_secs(1);
/// Peers asked at once for one department's blocks: one more each `HEDGE_AFTER` while
/// none answers. After a partition heals, connections re-made from both sides at once may
/// swallow a request until its timeout, so two were seen stuck together.
pub(crate) const FETCH_PEERS_MAX: usize = 4;
/// Fetches asked of one peer at once, all departments together: each answer may be
/// `catchup_bytes_max` (8 MiB), and all of them must arrive within the request timeout
/// (10 s), or an honest peer on a modest link would be taken for a liar.
pub(crate) const FETCHES_PER_PEER_MAX: usize = 4;
/// How long a peer that failed a department is not asked for it again.
pub(crate) const COOLDOWN: Duration = Duration::from_secs(60);
/// How long a peer that answered busy (or could not read its store) is not asked again.
pub(crate) const BUSY_BACKOFF: Duration = Duration::from_secs(2);

/// What a tick decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tick {
    /// The node has not been in touch with any peer for `STALE_AFTER`.
    pub(crate) stale: bool,
}

#[derive(Debug)]
pub(crate) struct Schedule {
    last_peer_seen: Instant,
    /// Catch-up fetches under way per department: from whom, since when.
    inflight: HashMap<DepartmentId, Vec<(PeerId, Instant)>>,
    /// The head height each peer claims (or proved by relaying a block) per department.
    claims: HashMap<DepartmentId, HashMap<PeerId, u64>>,
    /// Peers that failed a department, and until when they are not asked for it.
    failed: HashMap<(DepartmentId, PeerId), Instant>,
    /// Whether genesis names any node but this one (a lone node is never stale).
    has_peers: bool,
}

impl Schedule {
    pub(crate) fn new(now: Instant, has_peers: bool) -> Self {
        Self {
            last_peer_seen: now,
            inflight: HashMap::new(),
            claims: HashMap::new(),
            failed: HashMap::new(),
            has_peers,
        }
    }

    /// A peer is connected (or just connected) at `now`.
    pub(crate) fn peer_seen(&mut self, now: Instant) {
        self.last_peer_seen = now;
    }

    /// `peer` claims (or proved) `dept`'s chain reaches `height`.
    pub(crate) fn claim(&mut self, dept: &DepartmentId, peer: PeerId, height: u64) {
        let claims = self.claims.entry(dept.clone()).or_default();
        let c = claims.entry(peer).or_default();
        *c = (*c).max(height);
    }

    /// What `peer` claims for `dept`, if anything.
    pub(crate) fn claimed(&self, dept: &DepartmentId, peer: &PeerId) -> Option<u64> {
        self.claims.get(dept)?.get(peer).copied()
    }

    /// `peer` is gone: its claims and fetches with it.
    pub(crate) fn forget_peer(&mut self, peer: &PeerId) {
        for claims in self.claims.values_mut() {
            claims.remove(peer);
        }
        for fetches in self.inflight.values_mut() {
            fetches.retain(|(p, _)| p != peer);
        }
    }

    /// Whom to ask next for `dept`'s blocks past `ours`, if anyone may be asked now: the
    /// peer with the highest claim that is not already asked and has not failed `dept`
    /// lately; none while a fetch is younger than `HEDGE_AFTER` or `FETCH_PEERS_MAX` are
    /// under way.
    pub(crate) fn next_fetch(
        &self,
        dept: &DepartmentId,
        ours: u64,
        now: Instant,
    ) -> Option<PeerId> {
        let fetches = self.inflight.get(dept).map_or(&[][..], Vec::as_slice);
        if fetches.len() >= FETCH_PEERS_MAX
            || fetches
                .iter()
                .any(|(_, since)| now.saturating_duration_since(*since) < HEDGE_AFTER)
        {
            return None;
        }
        self.claims
            .get(dept)?
            .iter()
            .filter(|(p, h)| {
                **h > ours
                    && !fetches.iter().any(|(f, _)| f == *p)
                    && self.asked_of(p) < FETCHES_PER_PEER_MAX
                    && self
                        .failed
                        .get(&(dept.clone(), **p))
                        .is_none_or(|until| now >= *until)
            })
            .max_by_key(|(p, h)| (**h, p.to_bytes()))
            .map(|(p, _)| *p)
    }

    /// Fetches under way from `peer`, all departments together.
    fn asked_of(&self, peer: &PeerId) -> usize {
        self.inflight
            .values()
            .flatten()
            .filter(|(p, _)| p == peer)
            .count()
    }

    /// Departments some peer claims ahead of `ours` (the chain here).
    pub(crate) fn behind(&self, ours: impl Fn(&DepartmentId) -> u64) -> Vec<DepartmentId> {
        self.claims
            .iter()
            .filter(|(d, claims)| {
                let h = ours(d);
                claims.values().any(|c| *c > h)
            })
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// Records a fetch of `dept` from `peer` at `now`.
    pub(crate) fn start_fetch(&mut self, dept: &DepartmentId, peer: PeerId, now: Instant) {
        self.inflight
            .entry(dept.clone())
            .or_default()
            .push((peer, now));
    }

    /// `peer`'s fetch of `dept` ended (answered, failed or refused).
    pub(crate) fn fetch_done(&mut self, dept: &DepartmentId, peer: &PeerId) {
        if let Some(fetches) = self.inflight.get_mut(dept) {
            fetches.retain(|(p, _)| p != peer);
            if fetches.is_empty() {
                self.inflight.remove(dept);
            }
        }
    }

    /// `peer` failed `dept` at `now` (no answer, or an answer that does not back its
    /// claim): its claim is forgotten and it is not asked for `dept` for `COOLDOWN`.
    pub(crate) fn fetch_failed(&mut self, dept: &DepartmentId, peer: PeerId, now: Instant) {
        self.fetch_done(dept, &peer);
        if let Some(claims) = self.claims.get_mut(dept) {
            claims.remove(&peer);
        }
        self.failed.insert((dept.clone(), peer), now + COOLDOWN);
    }

    /// `peer` could not answer for `dept` now (busy, its store failed, gone): it keeps its
    /// claim and is asked again after `BUSY_BACKOFF`.
    pub(crate) fn fetch_deferred(&mut self, dept: &DepartmentId, peer: PeerId, now: Instant) {
        self.fetch_done(dept, &peer);
        self.failed.insert((dept.clone(), peer), now + BUSY_BACKOFF);
    }

    #[cfg(test)]
    pub(crate) fn fetching(&self, dept: &DepartmentId) -> bool {
        self.inflight.contains_key(dept)
    }

    /// The periodic decisions, with `connected` peers at `now`.
    pub(crate) fn tick(&mut self, now: Instant, connected: usize) -> Tick {
        for fetches in self.inflight.values_mut() {
            fetches
                .retain(|(_, since)| now.saturating_duration_since(*since) < CATCHUP_INFLIGHT_MAX);
        }
        self.inflight.retain(|_, f| !f.is_empty());
        self.failed.retain(|_, until| now < *until);
        if connected > 0 {
            self.last_peer_seen = now;
        }
        Tick {
            stale: self.has_peers
                && now.saturating_duration_since(self.last_peer_seen) > STALE_AFTER,
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
    fn a_peer_that_never_answers_cannot_hold_a_departments_catch_up() {
        let clock = ManualClock::at(0);
        let mut s = Schedule::new(clock.instant(), true);
        let (liar, honest, third) = (PeerId::random(), PeerId::random(), PeerId::random());
        let d = dept();
        assert_eq!(
            s.next_fetch(&d, 0, clock.instant()),
            None,
            "nobody claims anything"
        );
        s.claim(&d, liar, u64::MAX);
        s.claim(&d, honest, 5);
        s.claim(&d, third, 3);
        assert_eq!(
            s.next_fetch(&d, 5, clock.instant()),
            Some(liar),
            "only the liar claims more than 5"
        );
        // The highest claim is asked first.
        let first = s.next_fetch(&d, 0, clock.instant()).expect("someone");
        assert_eq!(first, liar);
        s.start_fetch(&d, liar, clock.instant());
        assert!(s.fetching(&d));
        assert_eq!(
            s.next_fetch(&d, 0, clock.instant()),
            None,
            "one fetch at a time at first"
        );
        // Unanswered for HEDGE_AFTER: a second peer is asked for the same blocks.
        clock.advance(HEDGE_AFTER);
        assert_eq!(s.next_fetch(&d, 0, clock.instant()), Some(honest));
        s.start_fetch(&d, honest, clock.instant());
        // Still nothing: one more peer each HEDGE_AFTER, up to FETCH_PEERS_MAX.
        let (p4, p5) = (PeerId::random(), PeerId::random());
        s.claim(&d, p4, 4);
        s.claim(&d, p5, 4);
        let mut asked = vec![liar, honest];
        for _ in asked.len()..FETCH_PEERS_MAX {
            clock.advance(HEDGE_AFTER);
            let next = s.next_fetch(&d, 0, clock.instant()).expect("another peer");
            assert!(!asked.contains(&next));
            s.start_fetch(&d, next, clock.instant());
            asked.push(next);
        }
        clock.advance(HEDGE_AFTER);
        assert_eq!(
            s.next_fetch(&d, 0, clock.instant()),
            None,
            "at most FETCH_PEERS_MAX at once"
        );
        for p in &asked[2..] {
            s.fetch_done(&d, p);
        }
        // The honest peer answers; the liar's request times out: it is not asked for this
        // department again for COOLDOWN, and its claim is forgotten.
        s.fetch_done(&d, &honest);
        s.fetch_failed(&d, liar, clock.instant());
        assert_eq!(s.claimed(&d, &liar), None);
        assert!(!s.fetching(&d));
        s.claim(&d, liar, u64::MAX);
        assert_eq!(
            s.next_fetch(&d, 3, clock.instant()),
            Some(honest),
            "the liar waits out its cooldown"
        );
        clock.advance(COOLDOWN);
        s.tick(clock.instant(), 2);
        assert_eq!(
            s.next_fetch(&d, 3, clock.instant()),
            Some(liar),
            "asked again after it"
        );
        // A busy peer keeps its claim and is asked again soon.
        s.start_fetch(&d, liar, clock.instant());
        s.fetch_deferred(&d, liar, clock.instant());
        assert_eq!(s.claimed(&d, &liar), Some(u64::MAX));
        assert_eq!(s.next_fetch(&d, 3, clock.instant()), Some(honest));
        clock.advance(BUSY_BACKOFF);
        assert_eq!(s.next_fetch(&d, 3, clock.instant()), Some(liar));
        // Departments some peer claims ahead of the chain here.
        assert_eq!(s.behind(|_| 3), vec![d.clone()]);
        s.forget_peer(&liar);
        assert_eq!(s.behind(|_| 5), Vec::<DepartmentId>::new());
        // One peer is asked for at most FETCHES_PER_PEER_MAX departments at once.
        let depts: Vec<DepartmentId> = (0..=FETCHES_PER_PEER_MAX)
            .map(|i| DepartmentId::parse(&format!("d{i}.transport")).expect("dept"))
            .collect();
        let busy = PeerId::random();
        for (i, d) in depts.iter().enumerate() {
            s.claim(d, busy, 10);
            let next = s.next_fetch(d, 0, clock.instant());
            if i < FETCHES_PER_PEER_MAX {
                assert_eq!(next, Some(busy), "department {i}");
                s.start_fetch(d, busy, clock.instant());
            } else {
                assert_eq!(next, None, "the peer has enough to send");
            }
        }
        s.fetch_done(&depts[0], &busy);
        assert_eq!(
            s.next_fetch(&depts[FETCHES_PER_PEER_MAX], 0, clock.instant()),
            Some(busy)
        );
        // A fetch nobody answers and no failure reported frees its slot at the backstop.
        s.start_fetch(&d, third, clock.instant());
        clock.advance(CATCHUP_INFLIGHT_MAX);
        s.tick(clock.instant(), 1);
        assert!(!s.fetching(&d));
    }
}
