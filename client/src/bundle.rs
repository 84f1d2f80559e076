//! `huren bundle`: fetches the offline bundle from a node, or brings a held one up to date
//! with a delta, checked against the window's own genesis before it replaces anything;
//! and the bundle as `huren verify --offline --bundle` reads it.
//!
//! The node is not trusted: every checkpoint in a bundle must be signed by its department
//! and cosigned by the genesis witness quorum, every status set must hash to its
//! checkpoint, and a bundle never moves a department back to an older checkpoint. A
//! bundle that fails any of that is refused and the held one is kept.

use std::path::Path;

use huren_core::bundle::{self, Bundle, BundleError, Delta, VerifiedBundle, BUNDLE_BYTES_MAX};
use huren_core::Network;
use reqwest::StatusCode;

use crate::args::BundleArgs;
use crate::exit::{fail, Exit};
use crate::online::Node;
use crate::{files, genesis};

/// The network a bundle is checked under: genesis, with the bundle's governance export
/// (each record checked against its quorum) when it carries one.
pub fn network_of(
    genesis: Network,
    governance: Option<&[u8]>,
    what: &str,
) -> anyhow::Result<Network> {
    match governance {
        None => Ok(genesis),
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                fail(
                    Exit::DATA,
                    format!("{what}: its governance export is not UTF-8"),
                )
            })?;
            crate::gov::apply_export_text(genesis, text, &format!("{what}'s governance export"))
        }
    }
}

/// Reads and checks a bundle file against `genesis`: the verified bundle and the network
/// it was checked under.
pub fn load(path: &Path, genesis: &Network) -> anyhow::Result<(VerifiedBundle, Network)> {
    let bytes = files::read_bounded(path, BUNDLE_BYTES_MAX, "bundle")?;
    let what = format!("bundle {}", path.display());
    let b = Bundle::decode(&bytes).map_err(|e| fail(Exit::DATA, format!("{what}: {e}")))?;
    let net = network_of(genesis.clone(), b.governance.as_deref(), &what)?;
    let v = b
        .verify(&net)
        .map_err(|e| fail(Exit::DATA, format!("{what} is refused: {e}")))?;
    Ok((v, net))
}

pub fn fetch(a: BundleArgs) -> anyhow::Result<Exit> {
    let founding = genesis::load(&a.genesis)?;
    let node = Node::new(&a.node, None, a.timeout_secs)?;
    let held = if a.out.exists() {
        Some(load(&a.out, &founding).map_err(|e| {
            fail(
                Exit::DATA,
                format!(
                    "{e:#}; the held bundle is kept as it is (remove it to fetch a whole new one)"
                ),
            )
        })?)
    } else {
        None
    };
    let what = format!("the bundle from {}", a.node);
    let whole = || -> anyhow::Result<VerifiedBundle> {
        let answer = node.get_query(&["v1", "bundle"], &[], BUNDLE_BYTES_MAX as u64)?;
        let bytes = answer.bytes(&[StatusCode::OK], Exit::DATA)?;
        let b = Bundle::decode(&bytes).map_err(|e| fail(Exit::PROTOCOL, format!("{what}: {e}")))?;
        let net = network_of(founding.clone(), b.governance.as_deref(), &what)?;
        b.verify(&net)
            .map_err(|e| fail(Exit::DATA, format!("{what} is refused: {e}")))
    };
    let (next, kind) = match &held {
        None => (whole()?, "whole"),
        Some((old, old_net)) => {
            let since = old
                .version()
                .iter()
                .map(|(d, h)| format!("{d}:{h}"))
                .collect::<Vec<_>>()
                .join(",");
            let answer = node.get_query(
                &["v1", "bundle"],
                &[("since", since.as_str())],
                BUNDLE_BYTES_MAX as u64,
            )?;
            let bytes = answer.bytes(&[StatusCode::OK], Exit::DATA)?;
            let delta =
                Delta::decode(&bytes).map_err(|e| fail(Exit::PROTOCOL, format!("{what}: {e}")))?;
            let net = match &delta.governance {
                Some(g) => network_of(founding.clone(), Some(g), &what)?,
                None => old_net.clone(),
            };
            let (v, kind) = match old.apply(&delta, &net) {
                Ok(v) => (v, "delta"),
                // A delta whose sets do not add up to the new checkpoints' (the window's
                // bundle is older than the entries the node still keeps past their end):
                // the whole bundle, checked as a first one is, and never a step back.
                Err(e @ (BundleError::SetRoot { .. } | BundleError::SetCount { .. })) => {
                    eprintln!("the delta does not add up ({e}); fetching the whole bundle");
                    (whole()?, "whole, after a delta that did not add up")
                }
                Err(e) => {
                    return Err(fail(
                        Exit::DATA,
                        format!("{what} is refused, the held bundle is kept: {e}"),
                    ))
                }
            };
            bundle::check_not_rollback(old, &v).map_err(|e| {
                fail(
                    Exit::DATA,
                    format!("{what} is refused, the held bundle is kept: {e}"),
                )
            })?;
            (v, kind)
        }
    };
    let encoded = next.bundle().encode();
    files::write_file(&a.out, &encoded, true, "bundle")?;
    let oldest = next.oldest_ms().map_or_else(
        || "-".to_owned(),
        |ms| huren_core::verify::rfc3339((ms / 1000) as i64),
    );
    eprintln!(
        "{} ({kind}): {} departments, {} bytes, data as of {oldest} at the oldest",
        a.out.display(),
        next.version().len(),
        encoded.len()
    );
    for (d, h) in next.version() {
        files::print_line(&format!("{d}\t{h}"))?;
    }
    Ok(Exit::OK)
}
