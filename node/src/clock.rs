//! The node's one clock, passed to the producer, the network and the API.
//!
//! Two readings: the wall clock (`now_ms`, Unix milliseconds: block times, credential
//! times, verification) and a monotonic instant (`instant`: timeouts, bans, staleness).
//! The running node uses `SystemClock`; tests use `ManualClock`, which moves only when
//! told to, so behaviour that takes minutes of real time (a node going stale, a ban
//! expiring, the own-chain wait) is tested in microseconds.
//!
//! What deliberately stays on the real clock: the producer's group-commit window and
//! the network's tick interval, which are ways of waiting, not decisions about time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A source of time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Wall-clock time in Unix milliseconds.
    fn now_ms(&self) -> u64;
    /// A monotonic instant, for durations.
    fn instant(&self) -> Instant;

    /// Wall-clock time in Unix seconds.
    fn now_secs(&self) -> i64 {
        (self.now_ms() / 1000) as i64
    }
}

/// The clock every part of one node shares.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until a test moves it. Both readings move together.
#[derive(Debug)]
pub struct ManualClock {
    wall_ms: AtomicU64,
    base: Instant,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    /// A clock showing `wall_ms` (Unix milliseconds).
    pub fn at(wall_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            wall_ms: AtomicU64::new(wall_ms),
            base: Instant::now(),
            elapsed: Mutex::new(Duration::ZERO),
        })
    }

    /// Moves both readings forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.wall_ms
            .fetch_add(d.as_millis() as u64, Ordering::SeqCst);
        *self.elapsed.lock().unwrap_or_else(|p| p.into_inner()) += d;
    }

    /// Sets the wall clock (as an operator or NTP would step it); the monotonic reading
    /// does not move, as on a real machine.
    pub fn set_wall_ms(&self, wall_ms: u64) {
        self.wall_ms.store(wall_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.wall_ms.load(Ordering::SeqCst)
    }

    fn instant(&self) -> Instant {
        self.base + *self.elapsed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::at(1_000_000);
        let (w, i) = (c.now_ms(), c.instant());
        assert_eq!(c.now_ms(), w);
        assert_eq!(c.instant(), i);
        c.advance(Duration::from_secs(90));
        assert_eq!(c.now_ms(), w + 90_000);
        assert_eq!(c.instant().duration_since(i), Duration::from_secs(90));
        assert_eq!(c.now_secs(), 1_090);
        c.set_wall_ms(5_000);
        assert_eq!(c.now_ms(), 5_000);
        assert_eq!(c.instant().duration_since(i), Duration::from_secs(90));
    }

    #[test]
    fn the_system_clock_is_after_2020() {
        assert!(SystemClock.now_secs() > 1_577_836_800);
    }
}
