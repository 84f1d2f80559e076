//! The ledger: admission of blocks between their sources (the network, the producer) and
//! the store.
//!
//! A block reaches the store only through here. The ledger validates it with
//! `huren_core::validate` against the store's read view and hands the store the resulting
//! `ValidatedBlock` to append. Validation reads the state the block will be appended to,
//! so validate-then-append runs under one write lock: no other block can land in between.
//! A validly signed block at a height already held, with a different hash, is
//! equivocation: the ledger proves it (`core::evidence`) and has the store keep the proof.
//!
//! It must never let anything but a `ValidatedBlock` reach the store, and it answers only
//! after the store has flushed (one block = one sled transaction + fsync).
//!
//! The ledger also holds the governance chain (`core::governance::GovChain`): governance
//! blocks are admitted here, under the same write lock, so a department block is always
//! judged by a governance state that no record changes halfway. The network in force is
//! read from here (`network()`), never kept elsewhere; a new record is seen by every part
//! of the node at its next read, and `subscribe` wakes those that must act on it (the
//! network actor: allow-list, disconnecting removed peers).

use std::sync::{Arc, Mutex, RwLock};

use huren_core::governance::{GovAdmission, GovBlock, GovChain, GovError, GovRecord};
use huren_core::validate::{next_state, LicenceState};
use huren_core::validate::{validate_block, validate_own_block, BlockError, Disposition, Head};
use huren_core::{Block, DepartmentId, Equivocation, LicenceId, LicenceType, Network};
use tokio::sync::watch;

use crate::store::{Corruption, Store, StoreError};

/// What became of a block received from a peer.
#[derive(Debug)]
pub enum Admission {
    /// The block extended its chain and is durable.
    Applied(Head),
    /// The block conflicts with the one held at its height: proof that its department
    /// equivocated, now durable.
    Equivocation(Box<Equivocation>),
    /// This exact block is held already.
    Duplicate,
    /// The block conflicts with the one held at its height, and that equivocation is
    /// proven here already (or its department's evidence is full): nothing was written,
    /// and a replay is neither news nor progress.
    KnownEquivocation,
    /// The block may be fine but does not fit now (`Disposition::Ignore`): blocks before it
    /// are missing (`BlockError::Gap`) or its time is ahead of this node's clock.
    Ignored(BlockError),
    /// The block breaks a rule (`Disposition::Reject`): whoever sent it misbehaved.
    Rejected(BlockError),
}

/// A page of evidence, each as its two conflicting blocks, and the key of the last one
/// when more may follow.
pub type EvidencePage = (Vec<(Block, Block)>, Option<crate::store::EvidenceKey>);

/// Why a block this node produced was not appended. Nothing was written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// The block breaks a ledger rule: a fault in block production, caught here.
    #[error("own block refused: {0}")]
    Refused(BlockError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of a governance block.
#[derive(Debug)]
pub enum GovReceipt {
    /// It extended the governance chain and is durable: the network now in force.
    Applied(Arc<Network>),
    /// This exact block is held.
    Duplicate,
    /// A different block with a quorum at a height held: proof against each department
    /// that signed both, kept (how many were new here).
    Equivocation(usize),
    /// Past the head here: the blocks between are missing.
    Ahead { height: u64, held: u64 },
    /// It breaks a rule: nothing was written.
    Refused(GovError),
}

pub struct Ledger {
    gov: RwLock<Arc<GovChain>>,
    /// The governance height, for those woken by a new record.
    gov_tx: watch::Sender<u64>,
    store: Arc<Store>,
    /// One writer at a time: see the module doc.
    write: Mutex<()>,
    /// The newest protocol version this node reads (`Config::protocol_max`): a block of
    /// a newer one is too new for it, never its sender's fault.
    protocol_max: std::sync::atomic::AtomicU32,
}

impl Ledger {
    /// The ledger over `store`, whose governance blocks are applied to `genesis` again
    /// (each checked as when it arrived): a stored block that does not apply is corruption.
    pub fn new(genesis: Arc<Network>, store: Arc<Store>) -> Result<Self, StoreError> {
        let mut chain = GovChain::new((*genesis).clone());
        for block in store.gov_blocks()? {
            let height = block.height();
            match chain.admit(block) {
                Ok(GovAdmission::Applied(_)) => {}
                other => {
                    return Err(Corruption::Governance {
                        key: height.to_string(),
                        error: format!("does not apply to the chain before it: {other:?}"),
                    }
                    .into())
                }
            }
        }
        let (gov_tx, _) = watch::channel(chain.height());
        let compromises: Vec<(DepartmentId, u64)> = (1..=chain.height())
            .filter_map(|h| match &chain.block(h)?.header.record {
                GovRecord::KeyCompromised {
                    department,
                    last_good,
                    ..
                } => Some((department.clone(), *last_good)),
                _ => None,
            })
            .collect();
        let ledger = Self {
            gov: RwLock::new(Arc::new(chain)),
            gov_tx,
            store,
            write: Mutex::new(()),
            protocol_max: std::sync::atomic::AtomicU32::new(huren_core::ledger::PROTOCOL_VERSION),
        };
        // A crash between storing a compromise record and taking the thief's blocks off
        // leaves them on the chain: take them off now (nothing, if that was done).
        let chain = ledger.governance();
        for (department, last_good) in compromises {
            let removed = ledger.fence(&chain, &department, last_good)?;
            if removed > 0 {
                tracing::warn!(%department, last_good, removed, "key compromised: blocks above the last good height taken off the chain at start");
            }
        }
        Ok(ledger)
    }

    /// The network in force now: genesis and every governance record held.
    pub fn network(&self) -> Arc<Network> {
        self.governance().newest().clone()
    }

    /// The governance chain held, with the network at each of its heights.
    pub fn governance(&self) -> Arc<GovChain> {
        self.gov.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Wakes on every governance record applied here, with the new height.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.gov_tx.subscribe()
    }

    /// Checks a governance block against the chain held and appends it if it extends
    /// it; a conflicting block with a quorum is kept as proof against its double signers.
    /// The newest protocol version this node reads and signs.
    pub fn protocol_max(&self) -> u32 {
        self.protocol_max.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets it lower than this release's, to behave as an older release (upgrade drills).
    pub fn set_protocol_max(&self, version: u32) {
        self.protocol_max
            .store(version, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the network in force runs a protocol newer than this node: it then signs
    /// nothing and says so (`/healthz`, the producer's refusals).
    pub fn protocol_too_old(&self) -> Option<(u32, u32)> {
        let network = self.governance().newest().protocol_version();
        let supported = self.protocol_max();
        (network > supported).then_some((network, supported))
    }

    pub fn receive_gov(&self, block: GovBlock) -> Result<GovReceipt, StoreError> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut chain = (*self.governance()).clone();
        let (height, held) = (block.height(), chain.height());
        if height > held + 1 {
            return Ok(GovReceipt::Ahead { height, held });
        }
        match chain.admit(block.clone()) {
            Ok(GovAdmission::Applied(net)) => {
                self.store.append_gov(&block)?;
                if let GovRecord::KeyCompromised {
                    department,
                    last_good,
                    ..
                } = &block.header.record
                {
                    // Blocks above the last good height were signed with the stolen key
                    // (the replacement did not exist): off the chain, before any block is
                    // judged under the new state.
                    let removed = self.fence(&chain, department, *last_good)?;
                    tracing::warn!(%department, last_good, removed, "key compromised: blocks above the last good height taken off the chain");
                }
                *self.gov.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(chain);
                self.gov_tx.send_replace(height);
                Ok(GovReceipt::Applied(net))
            }
            Ok(GovAdmission::Duplicate) => Ok(GovReceipt::Duplicate),
            Ok(GovAdmission::Equivocation(proofs)) => {
                let mut new = 0;
                for p in &proofs {
                    if self
                        .store
                        .record_gov_evidence(&p.signer, &p.first, &p.second)?
                    {
                        new += 1;
                    }
                }
                Ok(GovReceipt::Equivocation(new))
            }
            Err(e) => Ok(GovReceipt::Refused(e)),
        }
    }

    /// The store, for reads.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Takes `dept`'s blocks above `last_good` off the chain, with the licence states
    /// they made: the licences they touched get the state they had at `last_good`,
    /// replayed in one pass over the blocks from the earliest of their issue heights
    /// (those they issued go). Runs under the write lock.
    fn fence(
        &self,
        chain: &GovChain,
        dept: &DepartmentId,
        last_good: u64,
    ) -> Result<usize, StoreError> {
        use huren_core::validate::ChainView;
        let removed = self.store.blocks_above(dept, last_good)?;
        // Nothing above, or the chain already goes on with a key in force there (the
        // replacement's blocks, after a restart that ran this before): nothing to take off.
        match removed.first() {
            None => return Ok(0),
            Some(b) if huren_core::validate::check_signature(chain.newest(), b).is_ok() => {
                return Ok(0)
            }
            Some(_) => {}
        }
        let mut touched: std::collections::BTreeMap<LicenceId, Option<LicenceState>> = removed
            .iter()
            .flat_map(|b| {
                b.header
                    .records
                    .iter()
                    .map(|r| (r.licence_id().clone(), None))
            })
            .collect();
        // A successor's removed blocks may have changed its predecessors' licences:
        // those are replayed from their own chain first, then from this one's start.
        let mut owners: Vec<DepartmentId> = touched
            .keys()
            .map(|id| id.department().clone())
            .filter(|d| d != dept)
            .collect();
        owners.sort();
        owners.dedup();
        for owner in &owners {
            let head = self.store.head(owner).map_or(0, |h| h.height);
            self.replay(chain, owner, 1, head, &mut touched)?;
        }
        // Where the replay of this chain starts: the earliest issue, at or below
        // `last_good`, of a licence of its own the removed blocks touched (its first
        // block, when they touched another department's).
        let from = if owners.is_empty() {
            touched
                .keys()
                .filter_map(|id| self.store.licence(id))
                .map(|s| s.issued_height)
                .filter(|h| *h <= last_good)
                .min()
        } else {
            Some(1)
        };
        if let Some(from) = from {
            self.replay(chain, dept, from, last_good, &mut touched)?;
        }
        let states: Vec<(LicenceId, Option<LicenceState>)> = touched.into_iter().collect();
        let removed = self.store.truncate(dept, last_good, &states)?;
        // Checkpoints of the cut chain name blocks that are gone; what this node
        // cosigned of it too. The replacement key's checkpoints start afresh.
        self.store.forget_checkpoints(dept)?;
        Ok(removed)
    }

    /// Applies the records of `dept`'s blocks `from..=to` to the licences in `states`.
    ///
    /// (`Replayed` stands in for the chain view: a replay reads only the states it
    /// carries.)
    fn replay(
        &self,
        chain: &GovChain,
        dept: &DepartmentId,
        from: u64,
        to: u64,
        states: &mut std::collections::BTreeMap<LicenceId, Option<LicenceState>>,
    ) -> Result<(), StoreError> {
        for height in from..=to {
            let Some(block) = self.store.block_at(dept, height)? else {
                return Err(Corruption::MissingBlock {
                    department: dept.clone(),
                    height,
                }
                .into());
            };
            let gov = block.header.gov;
            let (Some(net), Some(key)) = (
                chain.state_at(gov),
                chain.newest().signing_key(dept, height, gov),
            ) else {
                continue;
            };
            let key = key.key.key_id();
            let place = huren_core::validate::Place {
                department: dept,
                height,
                time_ms: block.header.time_ms,
                version: block.header.version,
                key: &key,
            };
            // The chain held these blocks as valid, transfers in included: the replay
            // re-derives states, it does not judge the transfer again.
            let view = Replayed(dept);
            for (index, record) in block.header.records.iter().enumerate() {
                if let Some(state) = states.get_mut(record.licence_id()) {
                    // The replay cannot fail, and if it did, keeping the earlier state is
                    // the safe side.
                    if let Ok(next) = next_state(net, &place, index, record, *state, &view) {
                        *state = Some(next);
                    }
                }
            }
        }
        Ok(())
    }

    /// Validates a block received from a peer and appends it if it extends its chain. A
    /// different, validly signed block at a height already held is kept as evidence.
    pub fn receive(
        &self,
        block: Block,
        now_ms: u64,
        records_max: usize,
    ) -> Result<Admission, StoreError> {
        let supported = self.protocol_max();
        if block.header.version > supported {
            return Ok(Admission::Ignored(BlockError::VersionTooNew {
                department: block.department().clone(),
                height: block.height(),
                version: block.header.version,
                supported,
            }));
        }
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let gov = self.governance();
        match validate_block(&*gov, &*self.store, block.clone(), now_ms, records_max) {
            Ok(v) => {
                let head = v.head();
                self.store.append(&v, &[], &[])?;
                Ok(Admission::Applied(head))
            }
            Err(BlockError::AlreadyHave { .. }) => {
                let (department, height) = (block.department(), block.height());
                match self.store.block_at(department, height)? {
                    Some(ours) if ours.hash() == block.hash() => Ok(Admission::Duplicate),
                    Some(ours) => {
                        // validate_block checked the signature before the height, so both
                        // blocks are the department's own: this is proof, not a rumour.
                        let ev = Equivocation::new(gov.newest(), ours, block)
                            .map_err(Corruption::Evidence)?;
                        if self.store.record_evidence(&ev)? {
                            Ok(Admission::Equivocation(Box::new(ev)))
                        } else {
                            Ok(Admission::KnownEquivocation)
                        }
                    }
                    None => Err(Corruption::MissingBlock {
                        department: department.clone(),
                        height,
                    }
                    .into()),
                }
            }
            Err(e) => Ok(match e.disposition() {
                Disposition::Ignore => Admission::Ignored(e),
                Disposition::Reject => Admission::Rejected(e),
            }),
        }
    }

    /// Validates a block this node produced and appends it with the private credentials
    /// of the licences it issues and the next serial of each licence type it used.
    pub fn append_own(
        &self,
        block: Block,
        credentials: &[(LicenceId, Vec<u8>)],
        serials: &[(LicenceType, u64)],
        now_ms: u64,
        records_max: usize,
    ) -> Result<(Head, Block), AppendError> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let gov = self.governance();
        let v = validate_own_block(&*gov, &*self.store, block, now_ms, records_max)
            .map_err(AppendError::Refused)?;
        self.store.append(&v, credentials, serials)?;
        Ok((v.head(), v.into_block()))
    }

    /// Keeps evidence a peer sent (`Equivocation` exists only once proven); true if it
    /// was not known here yet.
    pub fn record_evidence(&self, ev: &Equivocation) -> Result<bool, StoreError> {
        self.store.record_evidence(ev)
    }

    /// Every piece of equivocation evidence held, proven again on the way out.
    /// One page of stored evidence as its two blocks each, not re-verified (it was proven
    /// when stored; `huren-node check` proves it again), and where the next page starts.
    pub fn evidence_page(
        &self,
        dept: Option<&DepartmentId>,
        after: Option<(&DepartmentId, u64)>,
        limit: usize,
    ) -> Result<EvidencePage, StoreError> {
        let (records, next) = self.store.evidence_page(dept, after, limit)?;
        let blocks = records
            .iter()
            .map(|bytes| Equivocation::blocks(bytes).map_err(|e| Corruption::Evidence(e).into()))
            .collect::<Result<_, StoreError>>()?;
        Ok((blocks, next))
    }

    pub fn evidence(&self) -> Result<Vec<Equivocation>, StoreError> {
        let net = self.network();
        self.store
            .evidence_records()?
            .iter()
            .map(|bytes| {
                Equivocation::decode(&net, bytes).map_err(|e| Corruption::Evidence(e).into())
            })
            .collect()
    }
}

/// The view a replay of held blocks runs with: every transfer in was admitted when its
/// block was, so each origin reads as transferred to the replayed chain, not yet accepted.
struct Replayed<'a>(&'a DepartmentId);

impl huren_core::ChainView for Replayed<'_> {
    fn head(&self, _: &DepartmentId) -> Option<huren_core::Head> {
        None
    }
    fn licence(&self, _: &LicenceId) -> Option<LicenceState> {
        None
    }
    fn transfer(&self, _: &LicenceId) -> Option<huren_core::validate::Transfer> {
        Some(huren_core::validate::Transfer {
            to: self.0.clone(),
            accepted_as: None,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use huren_core::ledger::{BlockHeader, Issue, OfficerId, Record};
    use huren_core::validate::ChainView;
    use huren_core::{DepartmentId, Hash32, SecretKey};

    /// A ledger on a fresh store in a temporary directory, in the example network the
    /// test kit founds, with every department's issuer key.
    pub(crate) struct TestLedger {
        pub ledger: Arc<Ledger>,
        pub founded: huren_testkit::Founded,
    }

    pub(crate) const NOW: u64 = 1_760_000_000_000;
    pub(crate) const GD: &str = "gd.transport";

    impl TestLedger {
        pub(crate) fn new() -> Self {
            let founded = huren_testkit::Founded::example().expect("founded network");
            let net = Arc::new(founded.network().expect("genesis"));
            let store = Arc::new(Store::open(&founded.path("data"), &net).expect("store opens"));
            Self {
                ledger: Arc::new(Ledger::new(net, store).expect("ledger opens")),
                founded,
            }
        }

        pub(crate) fn key(&self, department: &str) -> SecretKey {
            huren_genesis::keys::read_issuer_key(&self.founded.issuer_key(department))
                .expect("issuer key")
                .1
        }

        /// A licence of `department` (type mvdl) with `serial`, issued by a record.
        pub(crate) fn issue(department: &str, serial: u64) -> Record {
            Record::Issue(Issue {
                licence_id: LicenceId::new(
                    DepartmentId::parse(department).expect("department"),
                    LicenceType::parse("mvdl").expect("type"),
                    serial,
                ),
                valid_from: 1_750_000_000,
                valid_until: 1_750_000_000 + 86_400,
                commitment: Hash32::digest(&serial.to_be_bytes()),
                officer: OfficerId::parse("officer-1").expect("officer"),
                origin: None,
            })
        }

        /// `department`'s block at `height` (following the held chain when it reaches
        /// `height - 1`), signed with `signer`'s issuer key.
        pub(crate) fn block(
            &self,
            department: &str,
            signer: &str,
            height: u64,
            records: Vec<Record>,
        ) -> Block {
            let net = self.ledger.network();
            let d = DepartmentId::parse(department).expect("department");
            let prev = match self.ledger.store().head(&d) {
                Some(h) if h.height + 1 == height => h.hash,
                _ => net.hash(),
            };
            BlockHeader {
                version: net.protocol_version(),
                genesis: net.hash(),
                department: d,
                height,
                prev,
                time_ms: NOW,
                gov: 0,
                records,
            }
            .sign(&self.key(signer))
        }

        /// The block after `prev` on its chain, with `records`, signed by its department.
        pub(crate) fn next(&self, prev: &Block, records: Vec<Record>) -> Block {
            let mut h = prev.header.clone();
            h.height += 1;
            h.prev = prev.hash();
            h.records = records;
            h.sign(&self.key(prev.department().as_str()))
        }

        /// A governance block on the held head with `record`, signed by `signers`.
        pub(crate) fn gov(
            &self,
            signers: &[&str],
            record: huren_core::governance::GovRecord,
        ) -> GovBlock {
            let net = self.ledger.network();
            let mut b = GovBlock::new(huren_core::governance::GovHeader {
                genesis: net.hash(),
                height: net.gov_height() + 1,
                prev: net.gov_head(),
                time_ms: NOW,
                record,
            });
            for s in signers {
                b.cosign(DepartmentId::parse(s).expect("department"), &self.key(s));
            }
            b
        }

        pub(crate) fn receive(&self, block: Block) -> Admission {
            self.ledger
                .receive(block, NOW, huren_core::ledger::BLOCK_RECORDS_MAX)
                .expect("storage works")
        }
    }

    /// Equivocation evidence: a replayed conflicting block is neither stored again nor
    /// news; a department keeps its lowest `EVIDENCE_PER_DEPARTMENT_MAX` heights; pages
    /// walk them in order.
    #[test]
    fn evidence_is_bounded_per_department_and_paged() {
        use crate::store::EVIDENCE_PER_DEPARTMENT_MAX as MAX;
        let t = TestLedger::new();
        let top = MAX as u64 + 4;
        for h in 1..=top {
            let b = t.block(GD, GD, h, vec![TestLedger::issue(GD, h)]);
            assert!(matches!(t.receive(b), Admission::Applied(_)), "height {h}");
        }
        let conflict = |h: u64| t.block(GD, GD, h, vec![TestLedger::issue(GD, 1000 + h)]);
        // From the top down: the lowest heights replace the highest once full.
        for h in (1..=top).rev() {
            assert!(
                matches!(t.receive(conflict(h)), Admission::Equivocation(_)),
                "height {h}: new proof"
            );
        }
        assert!(
            matches!(t.receive(conflict(3)), Admission::KnownEquivocation),
            "a replay is not news"
        );
        let d = DepartmentId::parse(GD).expect("department");
        assert_eq!(t.ledger.store().equivocation_height(&d), Some(1));
        // Pages of 5: all MAX lowest heights, in order, each once.
        let (mut heights, mut after) = (Vec::new(), None::<(DepartmentId, u64)>);
        loop {
            let (page, next) = t
                .ledger
                .evidence_page(Some(&d), after.as_ref().map(|(d, h)| (d, *h)), 5)
                .expect("page");
            assert!(page.len() <= 5);
            heights.extend(page.iter().map(|(first, second)| {
                assert_eq!(first.height(), second.height());
                assert_ne!(first.hash(), second.hash());
                first.height()
            }));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(heights, (1..=MAX as u64).collect::<Vec<_>>());
        // Another department has none.
        let sh = DepartmentId::parse("sh.transport").expect("department");
        let (page, next) = t.ledger.evidence_page(Some(&sh), None, 5).expect("page");
        assert!(page.is_empty() && next.is_none());
        // A full department refuses a height above all it keeps, and stores nothing.
        let higher = t.block(GD, GD, top, vec![TestLedger::issue(GD, 5000)]);
        assert!(matches!(t.receive(higher), Admission::KnownEquivocation));
        assert_eq!(t.ledger.evidence().expect("evidence").len(), MAX);
    }

    #[test]
    fn received_blocks_are_admitted_by_the_core_rules() {
        let t = TestLedger::new();
        let b1 = t.block(GD, GD, 1, vec![TestLedger::issue(GD, 1)]);
        assert!(matches!(t.receive(b1.clone()), Admission::Applied(h) if h.height == 1));
        assert!(matches!(t.receive(b1), Admission::Duplicate));
        let gap = t.block(GD, GD, 3, vec![TestLedger::issue(GD, 3)]);
        assert!(matches!(
            t.receive(gap),
            Admission::Ignored(BlockError::Gap {
                height: 3,
                head: 1,
                ..
            })
        ));
        let forged = t.block(GD, "sh.transport", 2, vec![TestLedger::issue(GD, 2)]);
        assert!(matches!(
            t.receive(forged),
            Admission::Rejected(BlockError::BadSignature { .. })
        ));
        // Nothing but the valid block reached the store.
        let d = DepartmentId::parse(GD).expect("department");
        assert_eq!(t.ledger.store().head(&d).map(|h| h.height), Some(1));
    }

    #[test]
    fn a_second_block_at_a_held_height_is_kept_as_evidence() {
        let t = TestLedger::new();
        let ours = t.block(GD, GD, 1, vec![TestLedger::issue(GD, 1)]);
        let theirs = t.block(GD, GD, 1, vec![TestLedger::issue(GD, 2)]);
        assert!(matches!(t.receive(ours.clone()), Admission::Applied(_)));
        let Admission::Equivocation(ev) = t.receive(theirs.clone()) else {
            panic!("expected equivocation");
        };
        assert_eq!(ev.height(), 1);
        assert_eq!(t.ledger.evidence().expect("evidence"), vec![*ev.clone()]);
        // The held chain is untouched, and evidence from a peer is known already.
        let d = DepartmentId::parse(GD).expect("department");
        assert_eq!(t.ledger.store().head(&d).map(|h| h.hash), Some(ours.hash()));
        assert!(matches!(t.ledger.record_evidence(&ev), Ok(false)));
        assert_eq!(t.ledger.store().equivocation_height(&d), Some(1));
    }

    #[test]
    fn own_blocks_are_checked_before_they_are_written() {
        let t = TestLedger::new();
        let b1 = t.block(GD, GD, 1, vec![TestLedger::issue(GD, 1)]);
        let (head, _) = t
            .ledger
            .append_own(b1, &[], &[], NOW, 100)
            .expect("appended");
        assert_eq!(head.height, 1);
        // A duplicate issue in an own block is a production fault: refused, not written.
        let dup = t.block(GD, GD, 2, vec![TestLedger::issue(GD, 1)]);
        assert!(matches!(
            t.ledger.append_own(dup, &[], &[], NOW, 100),
            Err(AppendError::Refused(BlockError::DuplicateIssue { .. }))
        ));
        let d = DepartmentId::parse(GD).expect("department");
        assert_eq!(t.ledger.store().head(&d), Some(head));
        assert!(t
            .ledger
            .store()
            .licence(&LicenceId::new(
                d,
                LicenceType::parse("mvdl").expect("type"),
                1
            ))
            .is_some());
    }

    /// A stolen key: the thief's blocks above the last good height come off the chain
    /// with what they did (a revocation undone, an issue gone), the thief's next block is
    /// refused as signed with a compromised key, the replacement signs on, and all of it
    /// survives reopening the store (the governance chain is replayed at start).
    #[test]
    fn a_compromised_key_takes_the_thiefs_blocks_off_the_chain() {
        use huren_core::governance::GovRecord;
        use huren_core::validate::LicenceStatus;
        let t = TestLedger::new();
        let gd = DepartmentId::parse(GD).expect("gd");
        let lid = |n| LicenceId::new(gd.clone(), LicenceType::parse("mvdl").expect("t"), n);
        let b1 = t.block(GD, GD, 1, vec![TestLedger::issue(GD, 1)]);
        assert!(matches!(t.receive(b1.clone()), Admission::Applied(_)));
        let b2 = t.next(&b1, vec![TestLedger::issue(GD, 2)]);
        assert!(matches!(t.receive(b2.clone()), Admission::Applied(_)));
        // The thief (holding gd.transport's key) revokes licence 1 and issues licence 9.
        let revoke = Record::Revoke {
            licence_id: lid(1),
            reason: huren_core::RevokeReason::Penalty,
            officer: OfficerId::parse("thief").expect("officer"),
        };
        let b3 = t.next(&b2, vec![revoke]);
        let b4 = t.next(&b3, vec![TestLedger::issue(GD, 9)]);
        assert!(matches!(t.receive(b3), Admission::Applied(_)));
        assert!(matches!(t.receive(b4.clone()), Admission::Applied(_)));
        let store = t.ledger.store().clone();
        assert!(matches!(
            store.licence(&lid(1)).map(|s| s.status),
            Some(LicenceStatus::Revoked(_))
        ));
        let count = store.licence_count();
        let replacement = SecretKey::from_seed(&[77; 32]);
        let record = t.gov(
            &["gd.market", "gd.health", "sh.transport"],
            GovRecord::KeyCompromised {
                department: gd.clone(),
                last_good: 2,
                replacement: replacement.public(),
            },
        );
        assert!(matches!(
            t.ledger.receive_gov(record).expect("storage"),
            GovReceipt::Applied(_)
        ));
        let check = |store: &Store| {
            assert_eq!(store.head(&gd).map(|h| h.height), Some(2));
            assert_eq!(
                store.licence(&lid(1)).map(|s| s.status),
                Some(LicenceStatus::Active)
            );
            assert_eq!(store.licence(&lid(9)), None, "the thief's licence is gone");
            assert_eq!(store.licence_count(), count - 1);
        };
        check(&store);
        let again = t.next(&b4, vec![TestLedger::issue(GD, 10)]);
        match t.receive(again) {
            Admission::Rejected(e) => assert_eq!(e.code(), "key_compromised"),
            other => panic!("the thief's next block: {other:?}"),
        }
        // The department goes on from block 3 with the replacement key.
        let mut h = b2.header.clone();
        h.height = 3;
        h.prev = b2.hash();
        h.gov = 1;
        h.records = vec![TestLedger::issue(GD, 3)];
        assert!(matches!(
            t.receive(h.sign(&replacement)),
            Admission::Applied(_)
        ));
        // Reopened: the governance chain is replayed, and the state holds.
        let net = Arc::new(t.founded.network().expect("genesis"));
        let reopened = Ledger::new(net.clone(), store.clone()).expect("reopens");
        assert_eq!(reopened.governance().height(), 1);
        assert_eq!(store.head(&gd).map(|h| h.height), Some(3));
        // And the integrity check rebuilds the same state from the blocks.
        let summary = crate::check::run(
            &net,
            &store,
            &crate::clock::SystemClock,
            crate::check::Options::default(),
        )
        .expect("check runs");
        assert!(summary.mismatches.is_empty(), "{:?}", summary.mismatches);
        assert_eq!(summary.gov_height, 1);
    }

    /// A crash after the compromise record was stored but before the thief's blocks came
    /// off: the ledger takes them off when it opens, and only those (the replacement's
    /// blocks after them stay on a second opening).
    #[test]
    fn a_compromise_interrupted_by_a_crash_is_finished_at_start() {
        use huren_core::governance::GovRecord;
        let t = TestLedger::new();
        let gd = DepartmentId::parse(GD).expect("gd");
        let b1 = t.block(GD, GD, 1, vec![TestLedger::issue(GD, 1)]);
        let b2 = t.next(&b1, vec![TestLedger::issue(GD, 2)]);
        for b in [b1.clone(), b2] {
            assert!(matches!(t.receive(b), Admission::Applied(_)));
        }
        let replacement = SecretKey::from_seed(&[78; 32]);
        let record = t.gov(
            &["gd.market", "gd.health", "sh.transport"],
            GovRecord::KeyCompromised {
                department: gd.clone(),
                last_good: 1,
                replacement: replacement.public(),
            },
        );
        // The record is durable; the process dies before the truncation.
        let store = t.ledger.store().clone();
        store.append_gov(&record).expect("stored");
        assert_eq!(store.head(&gd).map(|h| h.height), Some(2));
        let net = Arc::new(t.founded.network().expect("genesis"));
        let reopened = Ledger::new(net.clone(), store.clone()).expect("reopens");
        assert_eq!(store.head(&gd).map(|h| h.height), Some(1));
        // The department goes on with the replacement; opening again keeps its block.
        let mut h = b1.header.clone();
        h.height = 2;
        h.prev = b1.hash();
        h.gov = 1;
        h.records = vec![TestLedger::issue(GD, 3)];
        let applied = reopened
            .receive(
                h.sign(&replacement),
                NOW,
                huren_core::ledger::BLOCK_RECORDS_MAX,
            )
            .expect("storage");
        assert!(matches!(applied, Admission::Applied(_)), "{applied:?}");
        drop(reopened);
        Ledger::new(net, store.clone()).expect("reopens again");
        assert_eq!(store.head(&gd).map(|h| h.height), Some(2));
    }

    /// Each block's records join its department's Merkle tree in the same write: the
    /// stored root is the root of the records' leaves, every record's inclusion proof and
    /// every consistency proof verify, and a compromise shrinks the tree with the chain.
    #[test]
    fn the_record_tree_follows_the_chain() {
        use huren_core::governance::GovRecord;
        use huren_core::tlog;
        let t = TestLedger::new();
        let gd = DepartmentId::parse(GD).expect("gd");
        let store = t.ledger.store().clone();
        let mut leaves = Vec::new();
        let mut prev: Option<Block> = None;
        for height in 1..=5u64 {
            let records: Vec<Record> = (0..height)
                .map(|i| TestLedger::issue(GD, height * 10 + i))
                .collect();
            for (i, r) in records.iter().enumerate() {
                leaves.push(tlog::leaf_hash(&r.leaf(height, i)));
            }
            let b = match &prev {
                None => t.block(GD, GD, 1, records),
                Some(p) => t.next(p, records),
            };
            assert!(matches!(t.receive(b.clone()), Admission::Applied(_)));
            prev = Some(b);
        }
        let size = leaves.len() as u64;
        assert_eq!(store.tree_size(&gd).expect("size"), size);
        // The root of the leaves, computed apart from the store.
        let mth = |leaves: &[huren_core::Hash32]| -> huren_core::Hash32 {
            fn rec(l: &[huren_core::Hash32]) -> huren_core::Hash32 {
                if l.len() == 1 {
                    return l[0];
                }
                let k = 1usize << (usize::BITS - 1 - (l.len() - 1).leading_zeros());
                tlog::node_hash(&rec(&l[..k]), &rec(&l[k..]))
            }
            rec(leaves)
        };
        for n in 1..=size {
            let root = store.tree_root(&gd, n).expect("root");
            assert_eq!(root, mth(&leaves[..n as usize]), "root at {n}");
            for i in 0..n {
                let p = store.inclusion_proof(&gd, i, n).expect("proof");
                tlog::verify_inclusion(&leaves[i as usize], i, n, &p, &root).expect("inclusion");
            }
            let full = store.tree_root(&gd, size).expect("root");
            let c = store.consistency_proof(&gd, n, size).expect("proof");
            tlog::verify_consistency(n, size, &root, &full, &c).expect("consistency");
        }
        // A compromise after block 3 takes blocks 4 and 5 off, and their records with them.
        let record = t.gov(
            &["gd.market", "gd.health", "sh.transport"],
            GovRecord::KeyCompromised {
                department: gd.clone(),
                last_good: 3,
                replacement: SecretKey::from_seed(&[79; 32]).public(),
            },
        );
        assert!(matches!(
            t.ledger.receive_gov(record).expect("storage"),
            GovReceipt::Applied(_)
        ));
        assert_eq!(store.tree_size(&gd).expect("size"), 6);
        assert_eq!(store.tree_root(&gd, 6).expect("root"), mth(&leaves[..6]));
        assert!(
            store.tree_root(&gd, 7).is_err(),
            "nothing is stored past the new size"
        );
    }
}
