//! `huren-node check`: the integrity check.
//!
//! **Full** (the default). Re-walks every department's chain from height 1: decodes each
//! block (which re-checks its canonical form), recomputes its hash, re-validates it with
//! the core rules (signature, height, previous hash, time, records) against a chain state
//! rebuilt in memory, then compares the rebuilt heads and licence index with the stored
//! ones. The trees that are not rebuilt from blocks are checked against the chains:
//! - `credentials`: every stored credential decodes, names the licence it is stored
//!   under, and hashes to the commitment the ledger holds for that licence; when the
//!   node's own department is known, every licence its chain issued has its credential
//!   (the store keeps the credentials of this department's own licences, nothing else);
//! - `evidence`: every piece decodes and proves a conflict (two blocks at one height,
//!   both signed by the department's key in genesis), stored under that department and
//!   height, at most `EVIDENCE_PER_DEPARTMENT_MAX` per department;
//! - `meta`: the genesis hash is this network's, every key is one the store writes, the
//!   licence count is the number of licences the chains issued, and each serial counter
//!   of the own department lies past every serial its chain issued (else the next issue
//!   would reuse a licence id).
//!
//! **Since a checkpoint** (`Options::since`: the heads an earlier check verified, as it
//! printed them). The blocks appended after the checkpoint are validated exactly as the
//! full check does, against a state seeded from the checkpoint's heads and, for the
//! licences those blocks change, from a replay of those licences' records up to the
//! checkpoint; then the heads, the licence index entries and the credentials of what
//! changed are compared, and a bounded random sample of older blocks is re-read (hash,
//! index, signature, their licences' index entries and credentials). Evidence and meta are
//! checked in full (both are small). Its cost is what changed plus the sample, not the
//! whole ledger; what it does not re-read (older blocks outside the sample, index entries
//! of licences nothing touched since) only a full check sees. The SIGKILL drill runs it
//! after every crash and a full check at the end.
//!
//! The check never writes to the store and reads no clock: the caller passes the clock
//! (the block time rule needs "now"). Any difference is a mismatch; the command exits
//! non-zero if there is one.

use std::collections::{BTreeMap, HashMap, HashSet};

use huren_core::credential::UnverifiedCredential;
use huren_core::governance::{GovAdmission, GovChain};
use huren_core::ledger::{Block, Record};
use huren_core::validate::{check_signature, next_state, validate_block, Head, MemoryChain};
use huren_core::{ChainView, DepartmentId, Hash32, LicenceId, LicenceType, Network};
use serde::Serialize;

use crate::store::Store;

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// `full`, or `since` a checkpoint.
    pub mode: &'static str,
    pub departments: usize,
    /// Governance blocks replayed onto genesis.
    pub gov_height: u64,
    /// Blocks validated (in `since` mode: those after the checkpoint).
    pub blocks: u64,
    pub records: u64,
    /// Licence index entries compared with the rebuilt state.
    pub licences: usize,
    /// Stored credentials compared with the ledger's commitments.
    pub credentials: usize,
    /// Pieces of equivocation evidence proven again.
    pub evidence: usize,
    /// Older blocks re-read at random (`since` mode).
    pub sampled_blocks: u64,
    /// The heads this check verified, to pass as `--since` to a later check.
    pub checkpoint: String,
    pub mismatches: Vec<String>,
    /// What is lost but not corrupt: the check still passes. Licences this department
    /// issued whose credential this data directory does not hold (it was restored, or its
    /// chain came back from peers: the ledger is whole, the personal data never left the
    /// issuing node), so their QR codes cannot be shown again from here.
    pub missing_credentials: Vec<String>,
    /// All of them, listed or not.
    pub missing_credentials_count: u64,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
    }

    fn missing_credential(&mut self, id: &LicenceId) {
        if self.missing_credentials.len() < MISMATCHES_LISTED_MAX {
            self.missing_credentials.push(id.to_string());
        }
        self.missing_credentials_count += 1;
    }

    fn mismatch(&mut self, m: String) {
        if self.mismatches.len() < MISMATCHES_LISTED_MAX {
            self.mismatches.push(m);
        } else if self.mismatches.len() == MISMATCHES_LISTED_MAX {
            self.mismatches.push("… more mismatches not listed".into());
        }
    }
}

/// Mismatches past this are counted, not listed: a corrupt store must not flood the terminal.
const MISMATCHES_LISTED_MAX: usize = 100;

/// Older blocks re-read per department by a check since a checkpoint, by default.
pub const SAMPLE_BLOCKS_DEFAULT: usize = 32;

/// The heads of every chain a check verified: `department:height:hash`, comma-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint(BTreeMap<DepartmentId, (u64, Hash32)>);

impl Checkpoint {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut heads = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut f = part.split(':');
            let (Some(d), Some(h), Some(x), None) = (f.next(), f.next(), f.next(), f.next()) else {
                return Err(format!("{part:?} is not department:height:hash"));
            };
            let d = DepartmentId::parse(d).map_err(|e| format!("{part:?}: {e}"))?;
            let h = h
                .parse::<u64>()
                .map_err(|e| format!("{part:?}: height: {e}"))?;
            let x = Hash32::from_hex(x).map_err(|e| format!("{part:?}: hash: {e}"))?;
            if heads.insert(d, (h, x)).is_some() {
                return Err(format!("{part:?}: department named twice"));
            }
        }
        Ok(Self(heads))
    }

    fn of(heads: &HashMap<DepartmentId, Head>) -> Self {
        Self(
            heads
                .iter()
                .map(|(d, h)| (d.clone(), (h.height, h.hash)))
                .collect(),
        )
    }

    fn height(&self, d: &DepartmentId) -> u64 {
        self.0.get(d).map_or(0, |(h, _)| *h)
    }
}

impl std::fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(d, (h, x))| format!("{d}:{h}:{}", x.to_hex()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// What to check.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The node's own department, whose issued credentials the store keeps: every licence
    /// its chain issued must have one. `None` (an observer, or a data directory checked
    /// without its config): stored credentials are still checked, missing ones are not
    /// looked for.
    pub own: Option<&'a DepartmentId>,
    /// Check only what was appended after this checkpoint, plus a sample (module doc).
    pub since: Option<&'a Checkpoint>,
    /// Older blocks re-read per department in `since` mode.
    pub sample_blocks: usize,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self {
            own: None,
            since: None,
            sample_blocks: SAMPLE_BLOCKS_DEFAULT,
        }
    }
}

/// Checks `store`, with `clock`'s wall-clock time for the block time rule.
pub fn run(
    net: &Network,
    store: &Store,
    clock: &dyn crate::clock::Clock,
    opts: Options<'_>,
) -> anyhow::Result<Summary> {
    let mut s = Summary::default();
    // The governance chain, replayed onto genesis: the network each block names.
    let mut gov = GovChain::new(net.clone());
    for block in store.gov_blocks()? {
        let height = block.height();
        match gov.admit(block) {
            Ok(GovAdmission::Applied(_)) => {}
            other => s.mismatch(format!(
                "governance block {height} does not apply: {other:?}"
            )),
        }
    }
    s.gov_height = gov.height();
    let mut c = Checker {
        gov,
        store,
        now_ms: clock.now_ms(),
        own: opts.own,
        s,
        rebuilt: MemoryChain::default(),
        trees: BTreeMap::new(),
        after_issue: HashMap::new(),
    };
    match opts.since {
        None => c.full()?,
        Some(cp) => c.since(cp, opts.sample_blocks)?,
    }
    c.evidence()?;
    c.s.departments = c.rebuilt.heads.len();
    c.s.checkpoint = Checkpoint::of(&c.rebuilt.heads).to_string();
    Ok(c.s)
}

struct Checker<'a> {
    gov: GovChain,
    store: &'a Store,
    now_ms: u64,
    own: Option<&'a DepartmentId>,
    s: Summary,
    rebuilt: MemoryChain,
    /// Each chain's record tree, recomputed from its blocks (full check only), and the
    /// stored hashes found wrong on the way.
    trees: BTreeMap<DepartmentId, (huren_core::tlog::Frontier, u64)>,
    /// Records after its issue, per licence that has any (full check only): what the
    /// history index holds, with each one's issue.
    after_issue: HashMap<LicenceId, u64>,
}

impl Checker<'_> {
    fn mismatch(&mut self, m: String) {
        self.s.mismatch(m);
    }

    /// Reads the block a chain index entry names and checks that it is the block the key
    /// says (its hash, department and height). `None` after reporting a mismatch.
    fn indexed_block(&mut self, key: &[u8], hash: &[u8]) -> Option<(DepartmentId, u64, Block)> {
        let parsed = key.iter().position(|&b| b == 0).and_then(|sep| {
            let dept = std::str::from_utf8(&key[..sep])
                .ok()
                .and_then(|d| DepartmentId::parse(d).ok())?;
            let height = key
                .get(sep + 1..)
                .and_then(|h| h.try_into().ok())
                .map(u64::from_be_bytes)?;
            Some((dept, height))
        });
        let Some((dept, height)) = parsed else {
            self.mismatch(format!("chain index key {} is malformed", hex::encode(key)));
            return None;
        };
        let block = match self.store.block_by_hash(hash) {
            Ok(Some(b)) => b,
            Ok(None) => {
                self.mismatch(format!(
                    "{dept}#{height}: block {} is missing",
                    hex::encode(hash)
                ));
                return None;
            }
            Err(e) => {
                self.mismatch(format!("{dept}#{height}: {e}"));
                return None;
            }
        };
        if block.hash().0.as_slice() != hash {
            self.mismatch(format!(
                "{dept}#{height}: stored under hash {}, but hashes to {}",
                hex::encode(hash),
                block.hash()
            ));
            return None;
        }
        if block.department() != &dept || block.height() != height {
            self.mismatch(format!(
                "{dept}#{height}: index points at block {}#{}",
                block.department(),
                block.height()
            ));
            return None;
        }
        Some((dept, height, block))
    }

    /// Validates `block` against the rebuilt state with the core rules and applies it.
    /// False when it must wait: it changes a licence of another department (a successor
    /// acting for its predecessor) whose issue has not been replayed yet.
    fn admit(&mut self, dept: &DepartmentId, height: u64, block: Block) -> bool {
        let records = block.header.records.len() as u64;
        let later: Vec<LicenceId> = block
            .header
            .records
            .iter()
            .filter(|r| !matches!(r, Record::Issue(_)))
            .map(|r| r.licence_id().clone())
            .collect();
        let leaves: Vec<Hash32> = block
            .header
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| huren_core::tlog::leaf_hash(&r.leaf(height, i)))
            .collect();
        match validate_block(
            &self.gov,
            &self.rebuilt,
            block,
            self.now_ms,
            huren_core::ledger::BLOCK_RECORDS_MAX,
        ) {
            Ok(v) => {
                self.rebuilt.apply(&v);
                self.s.blocks += 1;
                self.s.records += records;
                for id in later {
                    *self.after_issue.entry(id).or_default() += 1;
                }
                if self.s.mode == "full" {
                    let (tree, wrong) = self.trees.entry(dept.clone()).or_default();
                    for leaf in leaves {
                        for (level, index, h) in tree.push(leaf) {
                            if self.store.stored_hash(dept, level, index) != Some(h) {
                                *wrong += 1;
                            }
                        }
                    }
                    // Where the block ends in the tree (proofs find records by it).
                    if self.store.tree_size_at(dept, height).ok().flatten() != Some(tree.size()) {
                        *wrong += 1;
                    }
                }
                true
            }
            // Early, not wrong: a successor acting on its predecessor's licence, or a
            // transfer in, before the other chain's block is replayed.
            Err(
                e @ (huren_core::validate::BlockError::UnknownLicence { .. }
                | huren_core::validate::BlockError::BadTransfer { .. }),
            ) if e.disposition() == huren_core::validate::Disposition::Ignore => false,
            Err(e) => {
                self.mismatch(format!("{dept}#{height}: {e}"));
                true
            }
        }
    }

    /// Chains that had to wait for another (`admit`), replayed from where each stopped
    /// until none moves; what still waits then is a mismatch.
    fn admit_waiting(&mut self, mut waiting: BTreeMap<DepartmentId, u64>) -> anyhow::Result<()> {
        loop {
            let mut moved = false;
            for (dept, from) in std::mem::take(&mut waiting) {
                let mut height = from;
                while let Some(block) = self.store.block_at(&dept, height)? {
                    if !self.admit(&dept, height, block) {
                        break;
                    }
                    height += 1;
                }
                if self.store.block_at(&dept, height)?.is_some() {
                    waiting.insert(dept, height);
                }
                moved |= height > from;
            }
            if waiting.is_empty() || !moved {
                break;
            }
        }
        for (dept, height) in waiting {
            self.mismatch(format!(
                "{dept}#{height}: changes a licence that no chain held here issued"
            ));
        }
        Ok(())
    }

    fn full(&mut self) -> anyhow::Result<()> {
        self.s.mode = "full";
        // Walk the chain index in key order: department, then height ascending.
        let mut referenced = 0usize;
        let mut waiting: BTreeMap<DepartmentId, u64> = BTreeMap::new();
        for entry in self.store.chain_entries() {
            let (key, hash) = entry?;
            referenced += 1;
            if let Some((dept, height, block)) = self.indexed_block(&key, &hash) {
                if waiting.contains_key(&dept) {
                    continue;
                }
                if !self.admit(&dept, height, block) {
                    waiting.insert(dept, height);
                }
            }
        }
        self.admit_waiting(waiting)?;
        self.record_trees()?;
        self.status_sets()?;
        let stored_blocks = self.store.block_count();
        if stored_blocks != referenced {
            self.mismatch(format!(
                "{stored_blocks} blocks stored, {referenced} in the chain index"
            ));
        }
        self.heads()?;

        // Licence index.
        let mut seen = 0usize;
        for entry in self.store.licences() {
            let (id, state) = entry?;
            seen += 1;
            let rebuilt_state = LicenceId::parse(&id)
                .ok()
                .and_then(|id| self.rebuilt.licences.get(&id).copied());
            match (state, rebuilt_state) {
                (Some(a), Some(b)) if a == b => {}
                (stored, rebuilt) => self.mismatch(format!(
                    "licence {id}: stored {stored:?}, rebuilt {rebuilt:?}"
                )),
            }
        }
        if seen != self.rebuilt.licences.len() {
            self.mismatch(format!(
                "licence index has {seen} entries, the chains give {}",
                self.rebuilt.licences.len()
            ));
        }
        self.s.licences = self.rebuilt.licences.len();

        // The transfer index, both ways.
        let mut stored_transfers: HashMap<LicenceId, huren_core::validate::Transfer> =
            self.store.transfer_entries()?.into_iter().collect();
        let mut rebuilt_transfers: Vec<_> = self
            .rebuilt
            .transfers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        rebuilt_transfers.sort_by(|a, b| a.0.cmp(&b.0));
        for (origin, t) in rebuilt_transfers {
            match stored_transfers.remove(&origin) {
                Some(s) if s == t => {}
                stored => self.mismatch(format!(
                    "transfer of {origin}: stored {stored:?}, rebuilt {t:?}"
                )),
            }
        }
        for origin in stored_transfers.keys() {
            self.mismatch(format!(
                "transfer of {origin}: stored, but no chain records it"
            ));
        }
        // The history index: every record after an issue, with that issue.
        let history = self.store.history_len() as u64;
        let expected: u64 = self.after_issue.values().map(|n| n + 1).sum();
        if history != expected {
            self.mismatch(format!(
                "the history index has {history} entries, the chains give {expected}"
            ));
        }

        // Credentials: every stored one against the ledger, then none missing.
        let mut with_credential = HashSet::new();
        for entry in self.store.credential_entries() {
            let (key, cose) = entry?;
            let rebuilt = &self.rebuilt.licences;
            let committed = LicenceId::parse(&key)
                .ok()
                .and_then(|id| rebuilt.get(&id))
                .map(|s| s.commitment);
            if let Some(id) = self.stored_credential(&key, &cose, |_| committed) {
                with_credential.insert(id);
            }
        }
        if let Some(own) = self.own {
            let mut missing: Vec<&LicenceId> = self
                .rebuilt
                .licences
                .keys()
                .filter(|id| id.department() == own && !with_credential.contains(*id))
                .collect();
            missing.sort();
            let missing: Vec<LicenceId> = missing.into_iter().cloned().collect();
            for id in &missing {
                self.s.missing_credential(id);
            }
        }

        // Serial counters against every serial the own chain issued.
        let mut issued: BTreeMap<LicenceType, u64> = BTreeMap::new();
        if let Some(own) = self.own {
            for id in self.rebuilt.licences.keys() {
                if id.department() == own {
                    let max = issued.entry(id.licence_type().clone()).or_default();
                    *max = (*max).max(id.serial());
                }
            }
        }
        self.meta(&issued)
    }

    /// Stored heads against the rebuilt ones, both ways.
    /// Every chain's stored record tree against the one recomputed from its blocks:
    /// the same size and the same root.
    fn record_trees(&mut self) -> anyhow::Result<()> {
        for (dept, (tree, wrong)) in std::mem::take(&mut self.trees) {
            if wrong > 0 {
                self.mismatch(format!(
                    "record tree of {dept}: {wrong} stored hashes differ from its blocks'"
                ));
            }
            let size = self.store.tree_size(&dept)?;
            if size != tree.size() {
                self.mismatch(format!(
                    "record tree of {dept}: {size} records stored, {} in its blocks",
                    tree.size()
                ));
                continue;
            }
            match self.store.tree_root(&dept, size) {
                Ok(root) if root == tree.root() => {}
                Ok(root) => self.mismatch(format!(
                    "record tree of {dept}: stored root {root}, its blocks give {}",
                    tree.root()
                )),
                Err(e) => self.mismatch(format!("record tree of {dept}: {e}")),
            }
        }
        Ok(())
    }

    /// Every chain's stored status set against the one its blocks give: the same
    /// entries, so the same root, as of now (an entry with an end, a timed suspension or
    /// a superseded credential, counts until then; kept entries long past their end may
    /// have been pruned).
    fn status_sets(&mut self) -> anyhow::Result<()> {
        let at = (self.now_ms / 1000) as i64;
        let departments: Vec<DepartmentId> = self.rebuilt.heads.keys().cloned().collect();
        for dept in departments {
            let expected = self.rebuilt.status_set(&dept, at);
            match self.store.status_entries(&dept, at) {
                Ok(stored) if stored == expected => {}
                Ok(stored) => self.mismatch(format!(
                    "status set of {dept}: {} entries stored, its blocks give {}",
                    stored.len(),
                    expected.len()
                )),
                Err(e) => self.mismatch(format!("status set of {dept}: {e}")),
            }
        }
        Ok(())
    }

    fn heads(&mut self) -> anyhow::Result<()> {
        let stored_heads: BTreeMap<_, _> = self.store.heads()?.into_iter().collect();
        for (dept, head) in &stored_heads {
            if self.rebuilt.heads.get(dept) != Some(head) {
                self.mismatch(format!(
                    "head of {dept}: stored {head:?}, rebuilt {:?}",
                    self.rebuilt.heads.get(dept)
                ));
            }
        }
        let missing: Vec<_> = self
            .rebuilt
            .heads
            .keys()
            .filter(|d| !stored_heads.contains_key(*d))
            .cloned()
            .collect();
        for dept in missing {
            self.mismatch(format!("head of {dept} is missing"));
        }
        Ok(())
    }

    /// Checks one stored credential: its key is a licence id of this department, its
    /// bytes decode as a credential of that licence and hash to `committed`, the
    /// commitment the chain holds for it (`None`: no chain issued it). Returns the licence
    /// id when all of that holds.
    fn stored_credential(
        &mut self,
        key: &str,
        cose: &[u8],
        committed: impl FnOnce(&LicenceId) -> Option<Hash32>,
    ) -> Option<LicenceId> {
        self.s.credentials += 1;
        let Ok(id) = LicenceId::parse(key) else {
            self.mismatch(format!("credential stored under {key:?}, not a licence id"));
            return None;
        };
        if let Some(own) = self.own {
            if id.department() != own {
                self.mismatch(format!(
                    "credential of {id}: a licence of {}, but this node issues for {own} only",
                    id.department()
                ));
                return None;
            }
        }
        let decoded = match UnverifiedCredential::from_cose(cose) {
            Ok(c) => c,
            Err(e) => {
                self.mismatch(format!("credential of {id} does not decode: {e}"));
                return None;
            }
        };
        if decoded.credential.licence_id != id {
            self.mismatch(format!(
                "credential stored under {id} is the credential of {}",
                decoded.credential.licence_id
            ));
            return None;
        }
        let Some(commitment) = committed(&id) else {
            self.mismatch(format!(
                "credential of {id} is stored, but no chain issued {id}"
            ));
            return None;
        };
        if decoded.commitment != commitment {
            self.mismatch(format!(
                "credential of {id} hashes to {}, but the ledger committed to {commitment}",
                decoded.commitment
            ));
            return None;
        }
        Some(id)
    }

    /// Every piece of evidence decodes (which proves the conflict again: two different
    /// blocks at one height, both signed by the department's key in genesis) and is
    /// stored under its own department and height.
    fn evidence(&mut self) -> anyhow::Result<()> {
        let mut per_department: BTreeMap<DepartmentId, usize> = BTreeMap::new();
        for entry in self.store.evidence_entries() {
            let (key, bytes) = entry?;
            self.s.evidence += 1;
            match huren_core::Equivocation::decode(self.gov.newest(), &bytes) {
                Ok(ev) => {
                    *per_department.entry(ev.department().clone()).or_default() += 1;
                    let expected = Store::chain_key(ev.department(), ev.height());
                    if key != expected {
                        self.mismatch(format!(
                            "evidence stored under {} proves an equivocation of {}#{}",
                            hex::encode(&key),
                            ev.department(),
                            ev.height()
                        ));
                    }
                }
                Err(e) => self.mismatch(format!(
                    "evidence stored under {} is not proof of an equivocation: {e}",
                    hex::encode(&key)
                )),
            }
        }
        let max = crate::store::EVIDENCE_PER_DEPARTMENT_MAX;
        for (dept, held) in per_department {
            if held > max {
                self.mismatch(format!(
                    "{held} pieces of evidence against {dept}; the store keeps at most {max}"
                ));
            }
        }
        Ok(())
    }

    /// `meta`: the genesis hash, keys the store writes, and each serial counter of the
    /// own department past the highest serial of its type in `issued`.
    fn meta(&mut self, issued: &BTreeMap<LicenceType, u64>) -> anyhow::Result<()> {
        let mut counters: BTreeMap<LicenceType, u64> = BTreeMap::new();
        let mut counted = None;
        for entry in self.store.meta_entries() {
            let (key, value) = entry?;
            let name = String::from_utf8_lossy(&key).into_owned();
            if name == "genesis" {
                if value.as_slice() != self.gov.newest().hash().0.as_slice() {
                    self.mismatch(format!(
                        "meta genesis is {}, this network's is {}",
                        hex::encode(&value),
                        self.gov.newest().hash()
                    ));
                }
            } else if name == crate::store::LICENCE_COUNT_KEY {
                match <[u8; 8]>::try_from(value.as_slice()) {
                    Ok(n) => counted = Some(u64::from_be_bytes(n)),
                    Err(_) => self.mismatch(format!(
                        "meta {name:?}: {} is not a licence count",
                        hex::encode(&value)
                    )),
                }
            } else if let Some(t) = name.strip_prefix("serial/") {
                let t = LicenceType::parse(t);
                let next = <[u8; 8]>::try_from(value.as_slice()).map(u64::from_be_bytes);
                match (t, next) {
                    (Ok(t), Ok(next)) => {
                        counters.insert(t, next);
                    }
                    _ => self.mismatch(format!(
                        "meta {name:?}: {} is not a serial counter of a licence type",
                        hex::encode(&value)
                    )),
                }
            } else if let Some(d) = name.strip_prefix("tree/") {
                // A record tree's size: compared with the blocks in `record_trees`.
                if DepartmentId::parse(d).is_err() || value.len() != 8 {
                    self.mismatch(format!(
                        "meta {name:?}: {} is not the record tree size of a department",
                        hex::encode(&value)
                    ));
                }
            } else {
                self.mismatch(format!("meta {name:?} is not a key the store writes"));
            }
        }
        // The licence count, where the whole index was compared (a check since a
        // checkpoint does not count the index).
        if self.s.mode == "full" {
            let entries = self.rebuilt.licences.len() as u64;
            match counted {
                Some(n) if n == entries => {}
                Some(n) => self.mismatch(format!(
                    "meta licence count is {n}, the chains give {entries} licences"
                )),
                None => self.mismatch(format!(
                    "meta licence count is missing; the chains give {entries} licences"
                )),
            }
        }
        for (t, max) in issued {
            match counters.get(t) {
                Some(next) if next > max => {}
                Some(next) => self.mismatch(format!(
                    "serial counter of {t} is {next}, but the chain already issued serial {max}: \
                     the next issue would reuse a licence id"
                )),
                None => self.mismatch(format!(
                    "serial counter of {t} is missing, but the chain issued up to serial {max}"
                )),
            }
        }
        Ok(())
    }

    fn since(&mut self, cp: &Checkpoint, sample_blocks: usize) -> anyhow::Result<()> {
        self.s.mode = "since";
        // The checkpoint's heads must still be there: the history below them is what the
        // earlier check verified.
        for (dept, (height, hash)) in &cp.0 {
            if self.gov.newest().department(dept).is_none() {
                self.mismatch(format!("checkpoint names {dept}, which genesis does not"));
                continue;
            }
            if *height == 0 {
                continue;
            }
            let stored = self.store.chain_hash_at(dept, *height)?;
            let key = Store::chain_key(dept, *height);
            match stored {
                Some(h) if h.as_slice() == hash.0.as_slice() => {
                    if let Some((_, _, block)) = self.indexed_block(&key, &h) {
                        self.rebuilt.heads.insert(
                            dept.clone(),
                            Head {
                                height: *height,
                                hash: *hash,
                                time_ms: block.header.time_ms,
                                gov: 0,
                            },
                        );
                    }
                }
                other => self.mismatch(format!(
                    "{dept}#{height}: the checkpoint verified block {}, the chain index now names {}",
                    hash,
                    other.map_or("nothing".into(), hex::encode)
                )),
            }
        }

        // What was appended after the checkpoint, chain by chain.
        let departments: Vec<DepartmentId> = self
            .gov
            .newest()
            .departments()
            .iter()
            .map(|d| d.id.clone())
            .collect();
        let mut new_blocks: Vec<(DepartmentId, u64, Block)> = Vec::new();
        for dept in &departments {
            let from = cp.height(dept);
            for entry in self.store.chain_entries_above(dept, from) {
                let (key, hash) = entry?;
                if let Some(b) = self.indexed_block(&key, &hash) {
                    new_blocks.push(b);
                }
            }
        }

        // The licences those blocks change, and their state at the checkpoint: replayed
        // from their issue records (the index entry says where each was issued; an entry
        // that lies makes the replay miss the issue, and validation then fails).
        let touched: HashSet<LicenceId> = new_blocks
            .iter()
            .flat_map(|(_, _, b)| b.header.records.iter().map(|r| r.licence_id().clone()))
            .collect();
        let mut replay_from: BTreeMap<DepartmentId, u64> = BTreeMap::new();
        for id in &touched {
            let at = cp.height(id.department());
            // Its first record (the issue), by the history index: a renewal since moves
            // the state's `issued_height` to the renewal.
            let first = self
                .store
                .history(id, 1)?
                .into_iter()
                .next()
                .filter(|p| p.department == *id.department())
                .map(|p| p.height);
            if let Some(first) = first {
                if first >= 1 && first <= at {
                    let from = replay_from
                        .entry(id.department().clone())
                        .or_insert(u64::MAX);
                    *from = (*from).min(first);
                }
            }
        }
        // Transfers in among the new blocks read their origin's transfer out, which may
        // be older than the checkpoint: taken from the index, as not yet accepted.
        for (_, _, b) in &new_blocks {
            for r in &b.header.records {
                if let Some(huren_core::validate::TransferEffect::In { origin, .. }) =
                    r.transfer_effect()
                {
                    if let Some(t) = self.store.transfer(&origin) {
                        self.rebuilt.transfers.insert(
                            origin,
                            huren_core::validate::Transfer {
                                accepted_as: None,
                                ..t
                            },
                        );
                    }
                }
            }
        }
        for (dept, from) in replay_from {
            for height in from..=cp.height(&dept) {
                let Some(block) = self.store.block_at(&dept, height)? else {
                    self.mismatch(format!("{dept}#{height}: block is missing"));
                    continue;
                };
                for (index, record) in block.header.records.iter().enumerate() {
                    let id = record.licence_id();
                    if !touched.contains(id) {
                        continue;
                    }
                    let current = self.rebuilt.licences.get(id).copied();
                    let gov = block.header.gov;
                    let (Some(net), Some(key)) = (
                        self.gov.state_at(gov).cloned(),
                        self.gov
                            .newest()
                            .signing_key(&dept, height, gov)
                            .map(|s| s.key.key_id()),
                    ) else {
                        self.mismatch(format!(
                            "{dept}#{height}: names governance height {gov}, or a key, not held"
                        ));
                        continue;
                    };
                    let place = huren_core::validate::Place {
                        department: &dept,
                        height,
                        time_ms: block.header.time_ms,
                        version: block.header.version,
                        key: &key,
                    };
                    match next_state(&net, &place, index, record, current, self.store) {
                        Ok(s) => {
                            self.rebuilt.licences.insert(id.clone(), s);
                        }
                        Err(e) => self.mismatch(format!("{dept}#{height}: {e}")),
                    }
                }
            }
        }

        // Validate the new blocks exactly as the full check does.
        let mut issued: BTreeMap<LicenceType, u64> = BTreeMap::new();
        let mut own_issues: Vec<LicenceId> = Vec::new();
        let mut waiting: BTreeMap<DepartmentId, u64> = BTreeMap::new();
        for (dept, height, block) in new_blocks {
            if waiting.contains_key(&dept) {
                continue;
            }
            if Some(&dept) == self.own {
                for r in &block.header.records {
                    if let Record::Issue(i) = r {
                        note_serial(&mut issued, &i.licence_id);
                    }
                    // Its credential is the one the newest such record brought in.
                    if r.commitment().is_some() && !own_issues.contains(r.licence_id()) {
                        own_issues.push(r.licence_id().clone());
                    }
                }
            }
            if !self.admit(&dept, height, block) {
                waiting.insert(dept, height);
            }
        }
        self.admit_waiting(waiting)?;
        self.heads()?;

        // The index entries of every licence the new blocks changed.
        let mut changed: Vec<(LicenceId, _)> = self
            .rebuilt
            .licences
            .iter()
            .map(|(id, s)| (id.clone(), *s))
            .collect();
        changed.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, rebuilt) in changed {
            self.s.licences += 1;
            match self.store.licence_entry(&id)? {
                Some(Some(stored)) if stored == rebuilt => {}
                Some(stored) => self.mismatch(format!(
                    "licence {id}: stored {stored:?}, rebuilt {rebuilt:?}"
                )),
                None => self.mismatch(format!("licence {id}: missing from the index")),
            }
        }
        for id in own_issues {
            if let Some(s) = self.rebuilt.licences.get(&id).copied() {
                self.credential_of(&id, s.commitment)?;
            }
        }

        // A bounded random sample of the older blocks.
        self.sample(cp, sample_blocks, &touched, &mut issued)?;
        self.meta(&issued)
    }

    /// The stored credential of `id`, a licence this node issued with `commitment`.
    fn credential_of(&mut self, id: &LicenceId, commitment: Hash32) -> anyhow::Result<()> {
        match self.store.credential(id)? {
            None => self.s.missing_credential(id),
            Some(cose) => {
                self.stored_credential(&id.to_string(), &cose, |_| Some(commitment));
            }
        }
        Ok(())
    }

    /// Re-reads `per_department` random blocks at or below the checkpoint of every chain:
    /// index, hash, signature; the index entry of every licence they name agrees with
    /// them; this node's own issues have their credential.
    fn sample(
        &mut self,
        cp: &Checkpoint,
        per_department: usize,
        touched: &HashSet<LicenceId>,
        issued: &mut BTreeMap<LicenceType, u64>,
    ) -> anyhow::Result<()> {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        for (dept, (top, _)) in &cp.0 {
            if *top == 0 {
                continue;
            }
            // Every height when the sample would cover the chain, else a random draw.
            let heights: Vec<u64> = if per_department as u64 >= *top {
                (1..=*top).collect()
            } else {
                (0..per_department)
                    .map(|_| rng.gen_range(1..=*top))
                    .collect()
            };
            for height in heights {
                let key = Store::chain_key(dept, height);
                let Some(hash) = self.store.chain_hash_at(dept, height)? else {
                    self.mismatch(format!("{dept}#{height}: missing from the chain index"));
                    continue;
                };
                let Some((_, _, block)) = self.indexed_block(&key, &hash) else {
                    continue;
                };
                self.s.sampled_blocks += 1;
                if let Err(e) = check_signature(self.gov.newest(), &block) {
                    self.mismatch(format!("{dept}#{height}: {e}"));
                    continue;
                }
                for r in &block.header.records {
                    let id = r.licence_id();
                    let stored = match self.store.licence_entry(id)? {
                        Some(Some(s)) => s,
                        Some(None) => {
                            self.mismatch(format!("licence {id}: index entry does not decode"));
                            continue;
                        }
                        None => {
                            self.mismatch(format!(
                                "licence {id}: {dept}#{height} names it, the index does not"
                            ));
                            continue;
                        }
                    };
                    // A record that brings in a credential: the index names it, or a later
                    // one (a renewal, reissue or amendment since).
                    if let Some(commitment) = r.commitment() {
                        // A later record the index names must be one of this licence's
                        // that brings in exactly the credential the index holds.
                        let newer = stored.issued_height > height
                            && self
                                .store
                                .record_at(dept, stored.issued_height, stored.issued_index as usize)
                                .ok()
                                .flatten()
                                .is_some_and(|later| {
                                    later.licence_id() == id
                                        && later.commitment() == Some(stored.commitment)
                                });
                        if !newer
                            && (stored.issued_height != height || stored.commitment != commitment)
                        {
                            self.mismatch(format!(
                                "licence {id}: credential brought in at {dept}#{height} with commitment {commitment}, \
                                 the index says height {} and {}",
                                stored.issued_height, stored.commitment
                            ));
                        }
                        if Some(dept) == self.own && !newer {
                            self.credential_of(id, commitment)?;
                        }
                    }
                    if let (Record::Issue(_), Some(own)) = (r, self.own) {
                        if own == dept {
                            note_serial(issued, id);
                        }
                    }
                    if stored.updated_height < height
                        || (!touched.contains(id) && stored.updated_height > *top)
                    {
                        self.mismatch(format!(
                            "licence {id}: {dept}#{height} changes it, the index says it was last \
                             changed at height {}",
                            stored.updated_height
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn note_serial(issued: &mut BTreeMap<LicenceType, u64>, id: &LicenceId) {
    let max = issued.entry(id.licence_type().clone()).or_default();
    *max = (*max).max(id.serial());
}

#[cfg(test)]
mod tests;
