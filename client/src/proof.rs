//! `huren verify --node URL --proof`: the node's answer is not taken on its word. Its
//! proof (the issuer's checkpoint with the witness cosignatures, the issue record's
//! inclusion, the licence's place in the status set) is checked against the clerk's own
//! genesis, and the verdict is worked out again from what the proof establishes. A node
//! that answers valid without a proof, with a proof that does not hold, with a checkpoint
//! too old, or with a verdict its own proof contradicts, is refused.
//!
//! Negative answers (invalid, undetermined) are shown as the node gave them: a node can
//! always refuse service; what it must never do is make a revoked or unknown licence look
//! valid.

use std::path::Path;

use huren_api::{GovernanceExport, Report};
use huren_core::verify::{self, LedgerFacts, VerifyContext};
use huren_core::{Network, UnverifiedCredential, Verdict};
use reqwest::StatusCode;

use crate::exit::{fail, Exit};
use crate::online::Node;
use crate::{genesis, gov};

/// The network the proof is checked under: genesis with the governance records, from
/// `governance` or else from the node (each record is checked against its quorum, so the
/// node cannot make them up).
fn network(node: &Node, genesis_path: &Path, governance: Option<&Path>) -> anyhow::Result<Network> {
    let founding = genesis::load(genesis_path)?;
    match governance {
        Some(p) => gov::apply_export(founding, p),
        None => {
            let export: GovernanceExport = node
                .get_bounded(
                    &["v1", "governance"],
                    huren_api::governance::GOV_EXPORT_BYTES_MAX as u64,
                )?
                .parse(&[StatusCode::OK], Exit::DATA)?;
            let text =
                serde_json::to_string(&export).map_err(|e| fail(Exit::INTERNAL, e.to_string()))?;
            gov::apply_export_text(founding, &text, "the node's governance export")
        }
    }
}

/// Checks the node's `report` about QR `text` against its proof; a line saying what was
/// checked, or a refusal (exit 65).
pub fn check(
    node: &Node,
    genesis_path: &Path,
    governance: Option<&Path>,
    report: &Report,
    text: &str,
    now_ms: u64,
    age_max_secs: u64,
) -> anyhow::Result<String> {
    let said_valid = report.kind() == Some(Verdict::Valid);
    let refuse = |why: String| fail(Exit::DATA, format!("the node's answer is refused: {why}"));
    let Some(p) = &report.proof else {
        let why = report
            .proof_unavailable
            .clone()
            .unwrap_or_else(|| "none was given".into());
        if said_valid {
            return Err(refuse(format!("it answered valid without a proof ({why})")));
        }
        return Ok(format!(
            "no proof ({why}); a negative answer is shown as the node gave it"
        ));
    };
    let Ok(un) = UnverifiedCredential::from_qr(text) else {
        if said_valid {
            return Err(refuse(
                "it answered valid for input that is not a licence".into(),
            ));
        }
        return Ok("the input is not a licence: nothing to prove".into());
    };
    let net = network(node, genesis_path, governance)?;
    let id = un.credential.licence_id.clone();
    let commitment = un.commitment;
    let lp = p
        .read(&net)
        .map_err(|e| refuse(format!("its proof does not read: {e}")))?;
    let proven = huren_core::proof::check(&net, &id, &lp)
        .map_err(|e| refuse(format!("its proof does not hold: {e}")))?;
    let cp = &lp.checkpoint.checkpoint;
    let as_of = verify::rfc3339((cp.time_ms / 1000) as i64);
    let summary = format!(
        "proof checked: as of {} #{} ({as_of}), {} witness cosignatures",
        cp.department,
        cp.height,
        lp.checkpoint.cosigners(&net).len()
    );
    if !said_valid {
        return Ok(summary);
    }
    let age_ms = now_ms.saturating_sub(cp.time_ms);
    let age_secs = age_ms / 1000;
    if age_ms > age_max_secs.saturating_mul(1000) {
        return Err(refuse(format!(
            "it answered valid, but its proof is as of {as_of}, {age_secs} s ago, older than {age_max_secs} s: a newer revocation could be hidden"
        )));
    }
    match &proven.issued {
        None => {
            return Err(refuse(format!(
                "it answered valid, but its checkpoint ({} #{}) does not hold the licence's issue",
                cp.department, cp.height
            )))
        }
        Some(_) if proven.credential.map(|(k, _)| k)
            != Some(huren_core::tlog::credential_status_key(&commitment)) =>
        {
            return Err(refuse(
                "it answered valid, but its proof does not place the presented credential in the status set"
                    .into(),
            ))
        }
        Some(_) if proven.credential.is_some_and(|(_, superseded)| superseded) => {
            return Err(refuse(
                "it answered valid, but its proof shows the credential superseded (renewed, reissued or amended since)"
                    .into(),
            ))
        }
        Some((_, record)) if record.commitment() != Some(commitment) => return Err(refuse(
            "it answered valid, but the issue record in its proof commits to another credential"
                .into(),
        )),
        Some(_) => {}
    }
    let ctx = VerifyContext {
        now: (now_ms / 1000) as i64,
        region: report.verifier_region.clone(),
    };
    let facts = LedgerFacts::Bundle {
        status: Some(proven.status),
        expired: false,
        as_of: (cp.time_ms / 1000) as i64,
        // The proof shows the credential brought in by the licence's newest credential
        // record (checked above), so it is not a superseded one.
        superseded: false,
    };
    let own = verify::decide(&net, un, facts, &ctx);
    if own.verdict != Verdict::Valid {
        return Err(refuse(format!(
            "it answered valid, but its own proof shows {}: {}",
            own.verdict.label(),
            own.detail
        )));
    }
    Ok(summary)
}
