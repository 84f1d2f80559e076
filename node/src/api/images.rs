//! The one gate photos pass through before they are decoded.
//!
//! Decoding a photo of a QR costs tens to hundreds of milliseconds of CPU and tens of MB of
//! memory, and anyone may upload one. Without a bound, a few hundred concurrent uploads
//! take every core and all memory, and issuance and replication with them. So at most
//! `image_decodes_max` photos are decoded at once (one per core by default); a few more
//! (`image_queue_max`) may wait, each at most `image_queue_wait_ms`; the rest are refused
//! at once with 503 `unavailable`, before their decode costs anything.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a photo was not let through: too many decoding and waiting, or waited too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Busy {
    QueueFull,
    WaitedTooLong,
}

pub(crate) struct ImageGate {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue_max: usize,
    wait: Duration,
}

impl ImageGate {
    /// `decodes_max` 0 means one per core.
    pub(crate) fn new(decodes_max: usize, queue_max: usize, wait: Duration) -> Self {
        let decodes = if decodes_max == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            decodes_max
        };
        Self {
            permits: Arc::new(Semaphore::new(decodes)),
            waiting: AtomicUsize::new(0),
            queue_max,
            wait,
        }
    }

    /// A permit to decode one photo, held until the decode is done.
    pub(crate) async fn enter(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Ok(p);
        }
        // Count ourselves among the waiting first, so that the bound holds under a race.
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue_max {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy::QueueFull);
        }
        let got = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match got {
            Ok(Ok(p)) => Ok(p),
            // The semaphore is never closed; a timeout is the only way to get here.
            Ok(Err(_)) | Err(_) => Err(Busy::WaitedTooLong),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_most_so_many_decode_and_so_many_wait_the_rest_are_refused_at_once() {
        let gate = Arc::new(ImageGate::new(1, 1, Duration::from_millis(200)));
        let first = gate.enter().await.expect("a free decoder");
        // One may wait…
        let g = gate.clone();
        let waiter = tokio::spawn(async move { g.enter().await.map(drop) });
        while gate.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // …the next is refused without waiting.
        assert_eq!(gate.enter().await.map(drop), Err(Busy::QueueFull));
        // The waiter gets the decoder when it is free.
        drop(first);
        assert_eq!(waiter.await.expect("join"), Ok(()));
        // And one that waits past its time is refused.
        let held = gate.enter().await.expect("free again");
        assert_eq!(gate.enter().await.map(drop), Err(Busy::WaitedTooLong));
        drop(held);
        assert_eq!(gate.waiting.load(Ordering::SeqCst), 0);
    }
}
