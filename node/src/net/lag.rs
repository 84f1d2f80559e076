//! What this node knows, from signed blocks, about chains it has not caught up with.
//!
//! A block that arrives ahead of the chain here (a gap before it) was checked against its
//! department's key before the gap was found (`core::validate`), so it proves that the
//! department's chain reached its height: not a peer's claim, the issuer's own signature.
//! While the blocks between are missing, a licence of that department may have changed
//! in one of them, so verification says `undetermined · stale` instead of `valid`
//! (`core::verify`, `behind`), once the gap has lasted `GRACE`: blocks gossiped out of
//! order fill such a gap within milliseconds, and a verdict must not flicker for that.
//!
//! Written by the applier thread, read by verification; it never reads a clock itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use huren_core::DepartmentId;

use crate::clock::SharedClock;

/// How long a proven gap may last before verification says so.
pub(crate) const GRACE: Duration = Duration::from_secs(3);

/// Departments whose chain is proven ahead of this node's: the highest signed height seen
/// above the head, and since when the node has been behind.
pub struct Lag {
    clock: SharedClock,
    proven: Mutex<HashMap<DepartmentId, (u64, Instant)>>,
}

impl Lag {
    pub(crate) fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            proven: Mutex::new(HashMap::new()),
        }
    }

    fn proven(&self) -> std::sync::MutexGuard<'_, HashMap<DepartmentId, (u64, Instant)>> {
        self.proven.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A block of `dept` at `height`, signed by `dept`, arrived while the chain here ends
    /// below it.
    pub(crate) fn signed(&self, dept: &DepartmentId, height: u64) {
        let now = self.clock.instant();
        let mut proven = self.proven();
        let entry = proven.entry(dept.clone()).or_insert((height, now));
        entry.0 = entry.0.max(height);
    }

    /// `dept`'s chain here reached `head`: a gap at or below it is closed.
    pub(crate) fn reached(&self, dept: &DepartmentId, head: u64) {
        let mut proven = self.proven();
        if proven.get(dept).is_some_and(|(h, _)| *h <= head) {
            proven.remove(dept);
        }
    }

    /// Forgets what was proven of `dept`'s chain: its key was declared compromised, and
    /// blocks signed with it prove nothing any more.
    pub(crate) fn forget(&self, dept: &DepartmentId) {
        self.proven().remove(dept);
    }

    /// The signed height `dept`'s chain is proven to have reached, when that is above
    /// `head` (the chain here) and has been for `GRACE`.
    pub fn behind(&self, dept: &DepartmentId, head: u64) -> Option<u64> {
        let now = self.clock.instant();
        self.proven()
            .get(dept)
            .filter(|(h, since)| *h > head && now.saturating_duration_since(*since) >= GRACE)
            .map(|(h, _)| *h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_proven_gap_shows_after_the_grace_and_closes_when_the_chain_catches_up() {
        let clock = ManualClock::at(0);
        let lag = Lag::new(clock.clone());
        let gd = DepartmentId::parse("gd.transport").expect("dept");
        let sh = DepartmentId::parse("sh.transport").expect("dept");
        assert_eq!(lag.behind(&gd, 0), None, "nothing known");
        lag.signed(&gd, 7);
        assert_eq!(
            lag.behind(&gd, 5),
            None,
            "within the grace: gossip out of order"
        );
        clock.advance(GRACE);
        assert_eq!(lag.behind(&gd, 5), Some(7));
        assert_eq!(lag.behind(&sh, 0), None, "per department");
        // A later signed block raises the height but not the start of the gap.
        lag.signed(&gd, 9);
        assert_eq!(lag.behind(&gd, 5), Some(9));
        // Partly caught up: still behind; the head passed in is the chain's own.
        lag.reached(&gd, 8);
        assert_eq!(lag.behind(&gd, 8), Some(9));
        lag.reached(&gd, 9);
        assert_eq!(lag.behind(&gd, 9), None);
        // A new gap starts its own grace.
        lag.signed(&gd, 12);
        assert_eq!(lag.behind(&gd, 10), None);
        clock.advance(GRACE);
        assert_eq!(lag.behind(&gd, 10), Some(12));
        // A head read after the gap closed (a race with the applier) is not behind.
        assert_eq!(lag.behind(&gd, 12), None);
    }
}
