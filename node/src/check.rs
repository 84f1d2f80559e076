//! `huren-node check`: the integrity check.
//!
//! Re-walks every department's chain from height 1: decodes each block (which re-checks
//! its canonical form), recomputes its hash, re-validates it with the core rules
//! (signature, height, previous hash, time, records) against a chain state rebuilt in
//! memory, then compares the rebuilt heads and licence index with the stored ones. Any
//! difference is a mismatch; the command exits non-zero if there is one.

use std::collections::BTreeMap;

use huren_core::validate::{validate_block, MemoryChain};
use huren_core::{DepartmentId, Network};
use serde::Serialize;

use crate::store::Store;

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub departments: usize,
    pub blocks: u64,
    pub records: u64,
    pub licences: usize,
    pub mismatches: Vec<String>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Mismatches past this are counted, not listed: a corrupt store must not flood the terminal.
const MISMATCHES_LISTED_MAX: usize = 100;

/// Re-walks every chain in `store`, with `clock`'s wall-clock time for the block time rule.
pub fn run(
    net: &Network,
    store: &Store,
    clock: &dyn crate::clock::Clock,
) -> anyhow::Result<Summary> {
    let mut s = Summary::default();
    let mismatch = |s: &mut Summary, m: String| {
        if s.mismatches.len() < MISMATCHES_LISTED_MAX {
            s.mismatches.push(m);
        } else if s.mismatches.len() == MISMATCHES_LISTED_MAX {
            s.mismatches.push("… more mismatches not listed".into());
        }
    };
    let mut rebuilt = MemoryChain::default();
    let now_ms = clock.now_ms();

    // Walk the chain index in key order: department, then height ascending.
    let mut referenced = 0usize;
    for entry in store.chain_entries() {
        let (key, hash) = entry?;
        referenced += 1;
        let Some(sep) = key.iter().position(|&b| b == 0) else {
            mismatch(
                &mut s,
                format!("chain index key {} is malformed", hex::encode(&key)),
            );
            continue;
        };
        let dept = std::str::from_utf8(&key[..sep])
            .ok()
            .and_then(|d| DepartmentId::parse(d).ok());
        let height = key
            .get(sep + 1..)
            .and_then(|h| h.try_into().ok())
            .map(u64::from_be_bytes);
        let (Some(dept), Some(height)) = (dept, height) else {
            mismatch(
                &mut s,
                format!("chain index key {} is malformed", hex::encode(&key)),
            );
            continue;
        };
        let block = match store.block_by_hash(&hash) {
            Ok(Some(b)) => b,
            Ok(None) => {
                mismatch(
                    &mut s,
                    format!("{dept}#{height}: block {} is missing", hex::encode(&hash)),
                );
                continue;
            }
            Err(e) => {
                mismatch(&mut s, format!("{dept}#{height}: {e}"));
                continue;
            }
        };
        if block.hash().0.as_slice() != hash.as_slice() {
            mismatch(
                &mut s,
                format!(
                    "{dept}#{height}: stored under hash {}, but hashes to {}",
                    hex::encode(&hash),
                    block.hash()
                ),
            );
            continue;
        }
        if block.department() != &dept || block.height() != height {
            mismatch(
                &mut s,
                format!(
                    "{dept}#{height}: index points at block {}#{}",
                    block.department(),
                    block.height()
                ),
            );
            continue;
        }
        let records = block.header.records.len() as u64;
        match validate_block(
            net,
            &rebuilt,
            block,
            now_ms,
            huren_core::ledger::BLOCK_RECORDS_MAX,
        ) {
            Ok(v) => {
                rebuilt.apply(&v);
                s.blocks += 1;
                s.records += records;
            }
            Err(e) => mismatch(&mut s, format!("{dept}#{height}: {e}")),
        }
    }
    if store.block_count() != referenced {
        mismatch(
            &mut s,
            format!(
                "{} blocks stored, {} in the chain index",
                store.block_count(),
                referenced
            ),
        );
    }

    // Heads.
    let stored_heads: BTreeMap<_, _> = store.heads()?.into_iter().collect();
    for (dept, head) in &stored_heads {
        if rebuilt.heads.get(dept) != Some(head) {
            mismatch(
                &mut s,
                format!(
                    "head of {dept}: stored {head:?}, rebuilt {:?}",
                    rebuilt.heads.get(dept)
                ),
            );
        }
    }
    for dept in rebuilt.heads.keys() {
        if !stored_heads.contains_key(dept) {
            mismatch(&mut s, format!("head of {dept} is missing"));
        }
    }
    s.departments = rebuilt.heads.len();

    // Licence index.
    let mut seen = 0usize;
    for entry in store.licences() {
        let (id, state) = entry?;
        seen += 1;
        let rebuilt_state = huren_core::LicenceId::parse(&id)
            .ok()
            .and_then(|id| rebuilt.licences.get(&id).copied());
        match (state, rebuilt_state) {
            (Some(a), Some(b)) if a == b => {}
            (stored, rebuilt) => mismatch(
                &mut s,
                format!("licence {id}: stored {stored:?}, rebuilt {rebuilt:?}"),
            ),
        }
    }
    if seen != rebuilt.licences.len() {
        mismatch(
            &mut s,
            format!(
                "licence index has {seen} entries, the chains give {}",
                rebuilt.licences.len()
            ),
        );
    }
    s.licences = rebuilt.licences.len();
    Ok(s)
}
