//! Credential signatures for the verify API, checked in batches.
//!
//! A verification the ledger does not vouch for (the licence is not on this node's ledger,
//! or its bytes differ from the commitment) needs the issuer's Ed25519 signature checked.
//! Handlers hand the check to checker threads (half the cores); each takes every check
//! waiting in the queue (up to `crypto::BATCH_MAX`) and answers them with one batch
//! equation (`crypto::verify_many`), about twice as fast per signature as checking them
//! one by one. Under light load a batch is one signature, checked strictly; the batches
//! grow with the queue, so the saving comes when it is needed.
//!
//! Online, this check never makes a credential valid on its own: without a ledger
//! commitment the verdict is at best "not yet seen" (see `huren_core::verify`). So the one
//! way batch verification differs from strict verification (a signature deliberately built
//! by the issuer's key holder with a small-order component) can change only which
//! "invalid"/"undetermined" reason such a credential gets.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use huren_core::crypto::{verify_many, BATCH_MAX};
use huren_core::SignatureInput;
use tokio::sync::oneshot;

use crate::metrics::Metrics;

struct Job {
    input: SignatureInput,
    reply: oneshot::Sender<bool>,
}

/// The queue to the checker threads. Cloning shares it; the threads stop when the last
/// clone is dropped. Each job is a request waiting for its answer, so the queue never
/// holds more than the requests in flight: like them, it is bounded by the per-IP rate
/// limit and the process's open-file limit (there is no separate cap on connections).
#[derive(Clone)]
pub struct SignatureChecker {
    tx: Sender<Job>,
}

impl SignatureChecker {
    /// Starts `threads` checker threads.
    pub fn spawn(threads: usize, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let (rx, metrics) = (rx.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("huren-sigcheck-{i}"))
                .spawn(move || run(&rx, &metrics))?;
        }
        Ok(Self { tx })
    }

    /// Whether the signature verifies. Checked here, strictly, if the checker threads are
    /// gone (the node is stopping).
    pub async fn check(&self, input: &SignatureInput) -> bool {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            input: input.clone(),
            reply,
        };
        if self.tx.send(job).is_err() {
            return input.key.verify(&input.message, &input.signature);
        }
        match answer.await {
            Ok(ok) => ok,
            Err(_) => input.key.verify(&input.message, &input.signature),
        }
    }
}

fn run(rx: &Mutex<Receiver<Job>>, metrics: &Metrics) {
    loop {
        // Take the first job waiting (blocking), then whatever else is already queued.
        let batch = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            let Ok(first) = rx.recv() else {
                return; // every sender dropped: the node is stopping
            };
            let mut batch = vec![first];
            while batch.len() < BATCH_MAX {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let items: Vec<_> = batch
            .iter()
            .map(|j| (&j.input.key, j.input.message.as_slice(), &j.input.signature))
            .collect();
        let answers = verify_many(&items);
        metrics.signatures_checked.add(batch.len() as u64);
        metrics.signature_batches.inc();
        for (job, ok) in batch.into_iter().zip(answers) {
            // A requester that went away (client disconnected) needs no answer.
            let _ = job.reply.send(ok);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huren_core::{SecretKey, Signature};

    fn input(key: &SecretKey, message: &[u8], tamper: bool) -> SignatureInput {
        let mut sig = key.sign(message).to_bytes();
        if tamper {
            sig[10] ^= 4;
        }
        SignatureInput {
            key: key.public(),
            message: message.to_vec(),
            signature: Signature::from_bytes(&sig),
        }
    }

    /// Many concurrent checks, some forged: each gets its own answer, and they were
    /// checked in fewer batches than checks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_checks_get_their_own_answers() {
        let metrics = Arc::new(Metrics::default());
        let checker = SignatureChecker::spawn(1, metrics.clone()).expect("threads");
        let key = SecretKey::generate();
        let tasks: Vec<_> = (0..400u32)
            .map(|i| {
                let (checker, input) = (checker.clone(), input(&key, &i.to_be_bytes(), i % 7 == 3));
                tokio::spawn(async move { (i, checker.check(&input).await) })
            })
            .collect();
        for t in tasks {
            let (i, ok) = t.await.expect("task");
            assert_eq!(ok, i % 7 != 3, "check {i}");
        }
        assert_eq!(metrics.signatures_checked.get(), 400);
        let batches = metrics.signature_batches.get();
        assert!((1..=400).contains(&batches), "{batches} batches");
    }

    #[tokio::test]
    async fn checks_go_on_when_the_threads_are_gone() {
        let (tx, rx) = mpsc::channel::<Job>();
        drop(rx);
        let checker = SignatureChecker { tx };
        let key = SecretKey::generate();
        assert!(checker.check(&input(&key, b"m", false)).await);
        assert!(!checker.check(&input(&key, b"m", true)).await);
    }
}
