//! Checkpoints at this node: its department signs its own (every block at most once a
//! `checkpoint_spacing_ms`, and every `checkpoint_interval_ms` while idle, so that
//! witnesses see it alive); as a witness it cosigns other departments' checkpoints that
//! its own copy of their chain shows; it keeps the newest checkpoint of every department
//! and the newest that carries its quorum, and the evidence of any department that
//! signed two conflicting ones (docs/checkpoints.md).
//!
//! What a checkpoint says and when a witness may cosign are `core::checkpoint`'s rules;
//! this module holds the state and the order of the steps. It must never release a
//! cosignature before `Store::set_witnessed` has flushed what it cosigns, and it never
//! cosigns for a chain it does not hold at exactly the checkpoint's height.
//!
//! Calls that change a chain (the producer for its own, the applier for others) come
//! here after the change, on the thread that made it, so a witness's copy cannot move
//! between the check and the cosignature.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use huren_core::checkpoint::{
    self, ChainCopy, CheckpointConflict, Cosigned, DeptCheckpoint, SignedCheckpoint, WitnessRefusal,
};
use huren_core::validate::ChainView;
use huren_core::{DepartmentId, SecretKey};

use crate::clock::SharedClock;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// The checkpoints known of one department.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// The newest seen, with the cosignatures gathered for it.
    pub newest: Option<SignedCheckpoint>,
    /// The newest that carries its quorum: what verdicts and bundles rest on.
    pub counted: Option<SignedCheckpoint>,
}

/// The status set of a department at a checkpoint's height, taken when this node held
/// the chain at exactly that height (it signed or witnessed the checkpoint then): what
/// bundles and status proofs are cut from.
#[derive(Debug, Clone)]
pub struct StatusSnapshot {
    pub height: u64,
    pub entries: Arc<Vec<[u8; 18]>>,
    /// Its tree with every subtree hash, built the first time a proof needs it.
    tree: Arc<std::sync::OnceLock<huren_core::proof::StatusTree>>,
}

impl StatusSnapshot {
    fn new(height: u64, entries: Vec<[u8; 18]>) -> Self {
        Self {
            height,
            entries: Arc::new(entries),
            tree: Arc::default(),
        }
    }

    /// The set's tree, for proofs of a licence's place in it.
    pub fn tree(&self) -> &huren_core::proof::StatusTree {
        self.tree
            .get_or_init(|| huren_core::proof::StatusTree::new(self.entries.to_vec()))
    }
}

/// What came of a checkpoint received from a peer.
#[derive(Debug, Default)]
pub struct Received {
    /// The checkpoint (or cosignatures) was new here: forward it.
    pub new: bool,
    /// This node's cosignature, to gossip.
    pub cosigned: Option<SignedCheckpoint>,
    /// New evidence of a department that signed two conflicting checkpoints, to gossip.
    pub conflict: Option<CheckpointConflict>,
}

/// This node's witness identity: its node name (department id or observer name) and its
/// libp2p Ed25519 key.
pub struct WitnessKey {
    pub node: String,
    pub key: SecretKey,
}

pub struct Checkpoints {
    ledger: Arc<Ledger>,
    store: Arc<Store>,
    witness: Option<WitnessKey>,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
    /// When this node started, unix ms: before any checkpoint of a department is seen,
    /// its age counts from here.
    pub started_ms: u64,
}

#[derive(Default)]
struct State {
    /// The governance height the held checkpoints were read under: a key fenced since
    /// may have made some of them void, so they are read again from the store.
    gov: u64,
    known: HashMap<DepartmentId, Known>,
    /// Each department's counted checkpoint and its cosigners, counted once: what every
    /// verification reads (checking the cosignatures per verification would cost more
    /// than the verification).
    counted: HashMap<DepartmentId, (DeptCheckpoint, usize)>,
    /// A checkpoint of a chain this witness holds below its height, to cosign once the
    /// chain gets there.
    waiting: HashMap<DepartmentId, SignedCheckpoint>,
    snapshots: HashMap<DepartmentId, StatusSnapshot>,
    /// When this node's department last signed, unix ms, and at which height.
    own_signed: Option<(u64, u64)>,
    /// When kept status entries past their end were last pruned, unix ms.
    pruned_ms: u64,
}

/// Kept status entries past their end by more than this are dropped: no checkpoint a
/// witness still cosigns is that old, and a bundle delta from a window that old fails
/// its root check and the window fetches a whole bundle.
const PRUNE_AFTER_MS: u64 = 7 * 24 * 3600 * 1000;
/// How often the store is searched for them.
const PRUNE_EVERY_MS: u64 = 3600 * 1000;

impl Checkpoints {
    pub fn new(
        ledger: Arc<Ledger>,
        witness: Option<WitnessKey>,
        clock: SharedClock,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let started_ms = clock.now_ms();
        let cps = Self {
            store: ledger.store().clone(),
            ledger,
            witness,
            clock,
            metrics,
            state: Mutex::new(State::default()),
            started_ms,
        };
        cps.reload(&mut cps.lock())?;
        Ok(cps)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state, read again from the store if governance moved since.
    fn state(&self) -> MutexGuard<'_, State> {
        let mut st = self.lock();
        if st.gov != self.ledger.network().gov_height() {
            if let Err(e) = self.reload(&mut st) {
                tracing::error!(error = %e, "reading the checkpoints held");
            }
        }
        st
    }

    fn reload(&self, st: &mut State) -> Result<(), StoreError> {
        let net = self.ledger.network();
        st.gov = net.gov_height();
        st.known.clear();
        st.counted.clear();
        st.waiting.clear();
        for (dept, counted, text) in self.store.checkpoints()? {
            // A checkpoint whose key was fenced since no longer verifies: it is dropped.
            let Ok(cp) = SignedCheckpoint::parse(&net, &text) else {
                continue;
            };
            if counted {
                let n = cp.cosigners(&net).len();
                st.counted.insert(dept.clone(), (cp.checkpoint.clone(), n));
                st.known.entry(dept).or_default().counted = Some(cp);
            } else {
                st.known.entry(dept).or_default().newest = Some(cp);
            }
        }
        Ok(())
    }

    /// The checkpoints known of `dept`.
    pub fn known(&self, dept: &DepartmentId) -> Known {
        self.state().known.get(dept).cloned().unwrap_or_default()
    }

    /// The checkpoints known of every department.
    pub fn all(&self) -> Vec<(DepartmentId, Known)> {
        let mut v: Vec<_> = self
            .state()
            .known
            .iter()
            .map(|(d, k)| (d.clone(), k.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The status set of `dept` at the height of its counted checkpoint, if this node took
    /// it then.
    pub fn snapshot(&self, dept: &DepartmentId) -> Option<StatusSnapshot> {
        let mut st = self.state();
        let counted = st.known.get(dept)?.counted.as_ref()?.checkpoint.clone();
        if let Some(s) = st
            .snapshots
            .get(dept)
            .filter(|s| s.height == counted.height)
        {
            return Some(s.clone());
        }
        // None taken (since a restart, say): this node's copy may still be at that height.
        if self.store.head(dept).map_or(0, |h| h.height) != counted.height {
            return None;
        }
        let at = (counted.time_ms / 1000) as i64;
        let entries = self.store.status_entries(dept, at).ok()?;
        let root = huren_core::tlog::status_root(entries.iter().copied());
        if root != (counted.status_count, counted.status_root) {
            return None;
        }
        let s = StatusSnapshot::new(counted.height, entries);
        st.snapshots.insert(dept.clone(), s.clone());
        Some(s)
    }

    /// Conflict evidence kept, decoded.
    pub fn conflicts(&self) -> Vec<CheckpointConflict> {
        let net = self.ledger.network();
        self.store
            .checkpoint_evidence()
            .unwrap_or_default()
            .iter()
            .filter_map(|b| CheckpointConflict::decode(&net, b).ok())
            .collect()
    }

    /// What this node holds of `dept`'s chain now, with its status set as of `at_ms`
    /// (a checkpoint's time), as a witness compares it.
    fn copy(
        &self,
        dept: &DepartmentId,
        at_ms: u64,
    ) -> Result<(ChainCopy, Vec<[u8; 18]>), StoreError> {
        let height = self.store.head(dept).map_or(0, |h| h.height);
        let size = self.store.tree_size(dept)?;
        let root = self.store.tree_root(dept, size)?;
        let entries = self.store.status_entries(dept, (at_ms / 1000) as i64)?;
        let (status_count, status_root) = huren_core::tlog::status_root(entries.iter().copied());
        Ok((
            ChainCopy {
                height,
                size,
                root,
                status_count,
                status_root,
            },
            entries,
        ))
    }

    /// This node's department signs a checkpoint of its chain as it is now, if it is
    /// due: the chain moved and `spacing_ms` passed since the last, or `interval_ms`
    /// passed. Called on the producer's thread, the only writer of this chain. `key`
    /// gives the issuer key in force at a height.
    pub fn sign_own(
        &self,
        dept: &DepartmentId,
        key: impl Fn(u64) -> Option<SecretKey>,
        spacing_ms: u64,
        interval_ms: u64,
    ) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.prune();
        let now = self.clock.now_ms();
        let height = self.store.head(dept).map_or(0, |h| h.height);
        let due = match self.lock().own_signed {
            None => true,
            Some((at, h)) => {
                let since = now.saturating_sub(at);
                (h != height && since >= spacing_ms) || since >= interval_ms
            }
        };
        if !due {
            return Ok(None);
        }
        let Some(key) = key(height.max(1)) else {
            return Ok(None);
        };
        let net = self.ledger.network();
        let (copy, entries) = self.copy(dept, now)?;
        let cp = DeptCheckpoint {
            department: dept.clone(),
            size: copy.size,
            root: copy.root,
            height: copy.height,
            status_count: copy.status_count,
            status_root: copy.status_root,
            time_ms: now,
        };
        let signed = SignedCheckpoint::sign(&net, cp, &key);
        let mut st = self.state();
        st.own_signed = Some((now, height));
        st.snapshots
            .insert(dept.clone(), StatusSnapshot::new(height, entries));
        self.keep(&mut st, &signed)?;
        self.metrics.checkpoints_signed.inc();
        Ok(Some(signed))
    }

    /// Takes `cp` as the newest of its department (merging cosignatures into the same
    /// checkpoint held), and as the counted one once it has its quorum. Whether anything
    /// changed.
    fn keep(&self, st: &mut State, cp: &SignedCheckpoint) -> Result<bool, StoreError> {
        let net = self.ledger.network();
        let dept = cp.checkpoint.department.clone();
        let k = st.known.entry(dept.clone()).or_default();
        let mut changed = false;
        match &mut k.newest {
            Some(held) if held.note.text == cp.note.text => {
                changed |= held.merge(&net, cp);
            }
            Some(held) if !cp.checkpoint.newer_than(&held.checkpoint) => {}
            _ => {
                let mut fresh = SignedCheckpoint {
                    checkpoint: cp.checkpoint.clone(),
                    note: cp.bare(&net),
                };
                fresh.merge(&net, cp);
                k.newest = Some(fresh);
                changed = true;
            }
        }
        let Some(newest) = k.newest.clone() else {
            return Ok(false);
        };
        if changed {
            self.store.put_checkpoint(&dept, false, &newest.encode())?;
        }
        let counts = newest.has_quorum(&net)
            && k.counted.as_ref().is_none_or(|c| {
                newest.checkpoint.newer_than(&c.checkpoint)
                    || (c.note.text == newest.note.text && changed)
            });
        if counts {
            self.store.put_checkpoint(&dept, true, &newest.encode())?;
            let n = newest.cosigners(&net).len();
            k.counted = Some(newest.clone());
            st.counted.insert(dept.clone(), (newest.checkpoint, n));
        }
        Ok(changed)
    }

    /// A checkpoint from a peer (its department's signature checked by the decoder).
    /// Called on the applier's thread.
    pub fn receive(&self, cp: SignedCheckpoint) -> Result<Received, StoreError> {
        let net = self.ledger.network();
        let dept = cp.checkpoint.department.clone();
        let mut out = Received::default();
        let mut st = self.state();
        // Two checkpoints the department signed that cannot both be true convict it.
        let held: Vec<SignedCheckpoint> = st
            .known
            .get(&dept)
            .map(|k| k.newest.iter().chain(k.counted.iter()).cloned().collect())
            .unwrap_or_default();
        for h in &held {
            if let Some(ev) = CheckpointConflict::of(&net, h, &cp) {
                if self.store.put_checkpoint_evidence(&dept, &ev.encode())? {
                    tracing::warn!(department = %dept, "a department signed two conflicting checkpoints");
                    self.metrics.checkpoint_conflicts.inc();
                    out.conflict = Some(ev);
                    out.new = true;
                }
                return Ok(out);
            }
        }
        out.new = self.keep(&mut st, &cp)?;
        let own_height = self.store.head(&dept).map_or(0, |h| h.height);
        if cp.checkpoint.height > own_height {
            st.waiting.insert(dept.clone(), cp.clone());
        }
        drop(st);
        out.cosigned = self.witness(&cp)?;
        Ok(out)
    }

    /// `dept`'s chain moved here (the applier applied blocks of it): a checkpoint waiting
    /// for this height is witnessed now. Called on the applier's thread.
    pub fn advanced(&self, dept: &DepartmentId) -> Result<Option<SignedCheckpoint>, StoreError> {
        let height = self.store.head(dept).map_or(0, |h| h.height);
        let cp = {
            let mut st = self.state();
            match st.waiting.get(dept) {
                Some(w) if w.checkpoint.height == height => st.waiting.remove(dept),
                Some(w) if w.checkpoint.height < height => {
                    st.waiting.remove(dept);
                    None
                }
                _ => None,
            }
        };
        match cp {
            Some(cp) => self.witness(&cp),
            None => Ok(None),
        }
    }

    /// Cosigns `cp` if this node is a witness of it and its copy shows it; the state
    /// cosigned is flushed first.
    /// Drops kept status entries long past their end (timed suspensions that ended,
    /// superseded credentials that expired), at most once every `PRUNE_EVERY_MS`, so the
    /// sets a checkpoint reads do not grow with every renewal ever made.
    fn prune(&self) {
        let now = self.clock.now_ms();
        {
            let mut st = self.lock();
            if now.saturating_sub(st.pruned_ms) < PRUNE_EVERY_MS {
                return;
            }
            st.pruned_ms = now;
        }
        let before = (now.saturating_sub(PRUNE_AFTER_MS) / 1000) as i64;
        match self.store.prune_status(before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "pruned status entries past their end"),
            Err(e) => tracing::warn!(error = %e, "pruning status entries"),
        }
    }

    fn witness(&self, cp: &SignedCheckpoint) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.prune();
        let Some(w) = &self.witness else {
            return Ok(None);
        };
        let dept = &cp.checkpoint.department;
        if w.node == dept.as_str() {
            return Ok(None);
        }
        let (copy, entries) = self.copy(dept, cp.checkpoint.time_ms)?;
        let last = self.store.witnessed(dept)?;
        match checkpoint::witness_check(&cp.checkpoint, &copy, last.as_ref(), self.clock.now_ms()) {
            Ok(()) => {}
            Err(
                WitnessRefusal::Behind { .. }
                | WitnessRefusal::Ahead { .. }
                | WitnessRefusal::Older { .. },
            ) => return Ok(None),
            Err(e) => {
                self.metrics
                    .checkpoints_refused
                    .inc(if e.is_misbehaviour() {
                        "mismatch"
                    } else {
                        "time"
                    });
                tracing::warn!(department = %dept, height = cp.checkpoint.height, error = %e, "checkpoint not cosigned");
                return Ok(None);
            }
        }
        // Persist-before-release: if this fails, nothing leaves.
        self.store
            .set_witnessed(dept, &Cosigned::of(&cp.checkpoint))?;
        let net = self.ledger.network();
        let mut mine = SignedCheckpoint {
            checkpoint: cp.checkpoint.clone(),
            note: cp.bare(&net),
        };
        mine.cosign(&net, &w.node, &w.key, self.clock.now_ms() / 1000);
        let mut st = self.state();
        st.snapshots
            .insert(dept.clone(), StatusSnapshot::new(copy.height, entries));
        self.keep(&mut st, &mine)?;
        self.metrics.checkpoints_cosigned.inc();
        Ok(Some(mine))
    }

    /// Evidence of a conflict from a peer (checked by the decoder); whether it is new.
    pub fn receive_conflict(&self, ev: &CheckpointConflict) -> Result<bool, StoreError> {
        let new = self
            .store
            .put_checkpoint_evidence(&ev.department, &ev.encode())?;
        if new {
            self.metrics.checkpoint_conflicts.inc();
            tracing::warn!(department = %ev.department, "checkpoint conflict evidence received");
        }
        Ok(new)
    }

    /// `dept`'s counted checkpoint and how many witnesses cosigned it: cheap, for every
    /// verification.
    pub fn counted(&self, dept: &DepartmentId) -> Option<(DeptCheckpoint, usize)> {
        self.state().counted.get(dept).cloned()
    }

    /// How old the newest counted checkpoint of `dept` is (from node start when none is
    /// held), in ms.
    pub fn age_ms(&self, dept: &DepartmentId) -> u64 {
        let since = self
            .state()
            .counted
            .get(dept)
            .map_or(self.started_ms, |(c, _)| c.time_ms);
        self.clock.now_ms().saturating_sub(since)
    }
}

#[cfg(test)]
mod tests;
