//! The checks after a scenario: heads identical on every node, then, once every node has
//! stopped, every data directory read back: the same block hash at every height of every
//! chain on every node (so no department signed two blocks at one height that both
//! survived anywhere), no equivocation evidence, and every acknowledged issuance and
//! revocation in the very block its acknowledgement named, on every node.
//!
//! Each check says what it saw in its failure: the department, the height, the hashes,
//! the node. None of them ever changes a data directory other than by opening it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use huren_core::ledger::Record as LedgerRecord;

use super::load::Ack;

/// Chain heads at a node, as (department, height, hash).
pub type Heads = Vec<(String, u64, String)>;

pub fn heads_at(client: &reqwest::blocking::Client, url: &str) -> anyhow::Result<Heads> {
    let v: huren_api::ChainsAnswer = client
        .get(format!("{url}/v1/chains"))
        .send()?
        .error_for_status()?
        .json()?;
    Ok(v.chains
        .into_iter()
        .map(|c| {
            (
                c.department.to_string(),
                c.height,
                c.hash.map(|h| h.to_hex()).unwrap_or_default(),
            )
        })
        .collect())
}

/// Polls every node's heads until they are identical (returns when, and the heads), or
/// `deadline` passes (returns what each node last said).
pub fn converge(
    client: &reqwest::blocking::Client,
    urls: &[String],
    deadline: Instant,
) -> Result<(Instant, Heads), Vec<Result<Heads, String>>> {
    loop {
        let all: Vec<Result<Heads, String>> = urls
            .iter()
            .map(|u| heads_at(client, u).map_err(|e| format!("{e:#}")))
            .collect();
        if let Some(Ok(first)) = all.first() {
            if all.iter().all(|h| h.as_ref().ok() == Some(first)) {
                return Ok((Instant::now(), first.clone()));
            }
        }
        if Instant::now() > deadline {
            return Err(all);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What one node's data directory holds: the hash at each (department, height), and the
/// licence ids each block records as issued and revoked.
struct Chains {
    hashes: BTreeMap<String, Vec<String>>,
    issued: BTreeMap<(String, u64), Vec<String>>,
    revoked: BTreeMap<(String, u64), Vec<String>>,
    evidence: Vec<(String, u64)>,
}

fn read(dir: &Path, net: &huren_core::Network) -> anyhow::Result<Chains> {
    let store = huren_node::store::Store::open(dir, net)?;
    let mut c = Chains {
        hashes: BTreeMap::new(),
        issued: BTreeMap::new(),
        revoked: BTreeMap::new(),
        evidence: Vec::new(),
    };
    for (dept, head) in store.heads()? {
        let d = dept.to_string();
        let mut hashes = Vec::new();
        for h in 1..=head.height {
            let block = store
                .block_at(&dept, h)?
                .ok_or_else(|| anyhow::anyhow!("{d}#{h} missing below head {}", head.height))?;
            hashes.push(block.hash().to_hex());
            for r in &block.header.records {
                match r {
                    LedgerRecord::Issue(i) => c
                        .issued
                        .entry((d.clone(), h))
                        .or_default()
                        .push(i.licence_id.to_string()),
                    LedgerRecord::Revoke { licence_id, .. } => c
                        .revoked
                        .entry((d.clone(), h))
                        .or_default()
                        .push(licence_id.to_string()),
                    _ => {}
                }
            }
        }
        if let Some(h) = store.equivocation_height(&dept) {
            c.evidence.push((d.clone(), h));
        }
        c.hashes.insert(d, hashes);
    }
    Ok(c)
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

/// Reads every node's data directory (`dirs[i]` of node `names[i]`, stopped) and returns
/// every violation found (at most a few of each kind, then a count). `agreed`: the heads
/// every node reported when they last agreed; what lies beyond them goes to `notes`.
pub fn data_directories(
    names: &[&str],
    dirs: &[std::path::PathBuf],
    net: &huren_core::Network,
    issued: &[Ack],
    revoked: &[Ack],
    agreed: Option<&Heads>,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut chains = Vec::new();
    for (name, dir) in names.iter().zip(dirs) {
        match read(dir, net) {
            Ok(c) => chains.push((*name, c)),
            Err(e) => failures.push(format!("{name}: reading {}: {e:#}", dir.display())),
        }
    }
    // Acknowledged blocks that disagree with each other: two acknowledgements naming
    // different blocks at one height are an equivocation by themselves.
    let mut named: BTreeMap<(String, u64), (String, String)> = BTreeMap::new();
    for a in issued.iter().chain(revoked) {
        let key = (a.block.department.clone(), a.block.height);
        match named.get(&key) {
            Some((hash, licence)) if *hash != a.block.hash => failures.push(format!(
                "{}#{} acknowledged in two different blocks: {} (for {licence}) and {} (for {})",
                key.0,
                key.1,
                short(hash),
                short(&a.block.hash),
                a.licence
            )),
            Some(_) => {}
            None => {
                named.insert(key, (a.block.hash.clone(), a.licence.clone()));
            }
        }
    }
    // No two nodes hold different blocks at one height.
    for (x, (name_a, a)) in chains.iter().enumerate() {
        for (name_b, b) in &chains[x + 1..] {
            for (dept, ha) in &a.hashes {
                let hb = b.hashes.get(dept).map(Vec::as_slice).unwrap_or_default();
                if let Some(k) = (0..ha.len().min(hb.len())).find(|&k| ha[k] != hb[k]) {
                    failures.push(format!(
                        "{dept}#{}: {name_a} holds {}, {name_b} holds {}",
                        k + 1,
                        short(&ha[k]),
                        short(&hb[k])
                    ));
                }
            }
        }
    }
    // Every node holds at least what the heads agreed on (nothing it reported was lost
    // by stopping). Beyond that, a block cut after the heads agreed (a request the
    // harness had given up on, delivered late) may have reached only some nodes before
    // they stopped; without an agreement, every chain must be the same length.
    for (name, c) in &chains {
        match agreed {
            Some(agreed) => {
                for (dept, height, hash) in agreed {
                    let held = c.hashes.get(dept).map(Vec::as_slice).unwrap_or_default();
                    let at = (*height as usize).checked_sub(1).and_then(|k| held.get(k));
                    if *height > 0 && at != Some(hash) {
                        failures.push(format!(
                            "{name} holds {dept} up to #{} after stopping, but the heads had agreed on #{height} {}",
                            held.len(),
                            short(hash)
                        ));
                    }
                }
                for (dept, held) in &c.hashes {
                    let h = agreed
                        .iter()
                        .find(|(d, _, _)| d == dept)
                        .map_or(0, |(_, h, _)| *h as usize);
                    if held.len() > h {
                        notes.push(format!(
                            "{name} holds {dept} #{}–#{} cut after the heads agreed",
                            h + 1,
                            held.len()
                        ));
                    }
                }
            }
            None => {
                if let Some((first_name, first)) = chains.first() {
                    for (dept, hashes) in &first.hashes {
                        let other = c.hashes.get(dept).map_or(0, Vec::len);
                        if other != hashes.len() {
                            failures.push(format!(
                                "{dept}: {first_name} holds {} blocks, {name} {other}",
                                hashes.len()
                            ));
                        }
                    }
                }
            }
        }
    }
    for (name, c) in &chains {
        for (dept, h) in &c.evidence {
            failures.push(format!(
                "{name} holds equivocation evidence against {dept}#{h}"
            ));
        }
    }
    let mut missing = 0usize;
    for (kind, acks) in [("issuance", issued), ("revocation", revoked)] {
        for a in acks {
            for (name, c) in &chains {
                let b = &a.block;
                let hash = c
                    .hashes
                    .get(&b.department)
                    .and_then(|v| v.get((b.height as usize).wrapping_sub(1)));
                let records = if kind == "issuance" {
                    &c.issued
                } else {
                    &c.revoked
                };
                let recorded = records
                    .get(&(b.department.clone(), b.height))
                    .is_some_and(|ids| ids.contains(&a.licence));
                if hash != Some(&b.hash) || !recorded {
                    missing += 1;
                    if missing <= 10 {
                        failures.push(format!(
                            "acknowledged {kind} of {} in {}#{} {} is not on {name} (it holds {} there{})",
                            a.licence,
                            b.department,
                            b.height,
                            short(&b.hash),
                            hash.map_or("nothing", |s| short(s)),
                            if recorded { "" } else { ", without the record" }
                        ));
                    }
                }
            }
        }
    }
    if missing > 10 {
        failures.push(format!("… {missing} acknowledged records missing in all"));
    }
    failures
}
