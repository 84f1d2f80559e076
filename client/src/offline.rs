//! Offline issuing and verifying: genesis and key files only, no node.
//!
//! Offline issuing is for a department without its node at hand (a field office, a
//! test network): it checks everything genesis says about the mandate before signing,
//! because a credential that breaks a genesis rule would only be refused later at a
//! service window. The credential it makes is not on the ledger; the department must
//! not hand it out as a ledger-backed licence.
//!
//! Offline verification checks signature, issuer mandate, validity period and the
//! recognition policy; without a bundle it cannot see revocation, which the report says
//! (`offline: true`). With one (`--bundle`, `crate::bundle`) it answers revoked and
//! suspended as of the bundle's checkpoints, and the report's `as_of` says how old they are.

use std::collections::BTreeMap;

use huren_api::{AsOf, Freshness, Report};
use huren_core::bundle;
use huren_core::credential::{QR_TEXT_CHARS_MAX, SALT_BYTES};
use huren_core::issuance::{self, PolicyError};
use huren_core::verify::{self, LedgerFacts, VerifyContext};
use huren_core::DepartmentId;
use huren_genesis::keys::{self, KeyFileError};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};

use crate::args::{IssueArgs, VerifyArgs};
use crate::exit::{fail, Exit, WithExit};
use crate::{files, genesis, qr};

/// Offline serials are random in [1, 10^12): 12 digits keep the QR short, and with a few
/// thousand offline licences per department a collision is about one in a million. A
/// collision would be refused by the ledger as a double issue, never silently accepted.
const OFFLINE_SERIAL_END: u64 = 1_000_000_000_000;

/// Collects repeated `--holder` / `--field` values, refusing a name given twice.
pub fn to_map(what: &str, pairs: &[(String, String)]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for (k, v) in pairs {
        if m.insert(k.clone(), v.clone()).is_some() {
            return Err(fail(Exit::USAGE, format!("--{what} {k} is given twice")));
        }
    }
    Ok(m)
}

pub fn issue(a: IssueArgs) -> anyhow::Result<Exit> {
    // clap makes both required with --offline; this only guards the grammar.
    let (Some(genesis_path), Some(key_path)) = (&a.mode.genesis, &a.mode.key) else {
        return Err(fail(Exit::USAGE, "--offline needs --genesis and --key"));
    };
    qr::check_files(&a.output)?;
    let net = genesis::load(genesis_path)?;
    let (name, key) = keys::read_issuer_key(key_path).map_err(|e| {
        let exit = match &e {
            KeyFileError::Io { .. } => Exit::NO_INPUT,
            _ => Exit::DATA,
        };
        fail(exit, format!("issuer key: {e}"))
    })?;
    let department = DepartmentId::parse(&name).map_err(|_| {
        fail(
            Exit::DATA,
            format!(
                "{} is the key of {name:?}, which is not a department id; observers cannot issue",
                key_path.display()
            ),
        )
    })?;
    let network = &net.document().network;
    if net.document().observers.iter().any(|o| o.name == name) {
        return Err(fail(
            Exit::DATA,
            format!("{name} is an observer in genesis; observers verify but cannot issue"),
        ));
    }
    let Some(dept) = net.department(&department) else {
        return Err(fail(
            Exit::DATA,
            format!("department {department} is not in genesis (network {network})"),
        ));
    };
    if dept.issuer_key != key.public() {
        return Err(fail(
            Exit::DATA,
            format!(
                "{} is not the issuer key genesis names for {department}: genesis has key id {}, the file has {}",
                key_path.display(),
                dept.issuer_key.key_id(),
                key.public().key_id()
            ),
        ));
    }
    let holder = to_map("holder", &a.licence.holder)?;
    let fields = to_map("field", &a.licence.field)?;
    let t = &a.licence.licence_type;
    if let Some(def) = net.licence_type(t) {
        for extra in holder.keys().filter(|k| !def.holder_fields.contains(k)) {
            eprintln!(
                "note: holder field {extra} is not one genesis lists for {t}; it is included anyway"
            );
        }
    }
    let terms = issuance::Terms {
        licence_type: t.clone(),
        holder,
        fields,
        valid_from: None,
        valid_until: None,
        valid_days: a.licence.valid_days,
    };
    let serial = match a.mode.serial {
        Some(s) => s,
        None => OsRng.gen_range(1..OFFLINE_SERIAL_END),
    };
    let mut salt = [0u8; SALT_BYTES];
    OsRng.fill_bytes(&mut salt);
    let now = genesis::now_unix_secs()?;
    // The same policy the node's producer applies (huren_core::issuance).
    let credential =
        issuance::draft(&net, &department, &terms, now, serial, salt).map_err(|e| {
            let hint = match &e {
                PolicyError::MissingHolderFields { .. } => " (give each as --holder NAME=VALUE)",
                PolicyError::Validity(_) => " (see --valid-days)",
                _ => "",
            };
            fail(Exit::USAGE, format!("{e}{hint}"))
        })?;
    let signed = credential
        .sign(&key)
        .map_err(|e| fail(Exit::USAGE, format!("cannot sign the credential: {e}")))?;
    qr::write_files(&signed.qr_text, &a.output)?;
    files::print_line(&signed.qr_text)?;
    eprintln!(
        "issued {} offline, valid {} to {}, commitment {}\n\
         note: an offline licence is not on the ledger; online verification will not find it",
        credential.licence_id,
        verify::rfc3339(credential.not_before),
        verify::rfc3339(credential.expires_at),
        signed.commitment
    );
    Ok(Exit::OK)
}

pub fn verify(a: VerifyArgs) -> anyhow::Result<Exit> {
    let Some(genesis_path) = &a.mode.genesis else {
        return Err(fail(Exit::USAGE, "--offline needs --genesis"));
    };
    let founding = genesis::load(genesis_path)?;
    // The bundle is read first: its governance export is the network's, unless the
    // clerk's own --governance overrides it.
    let held = match &a.mode.bundle {
        None => None,
        Some(path) => {
            let bytes = files::read_bounded(path, bundle::BUNDLE_BYTES_MAX, "bundle")?;
            let b = bundle::Bundle::decode(&bytes)
                .map_err(|e| fail(Exit::DATA, format!("bundle {}: {e}", path.display())))?;
            Some((path, b))
        }
    };
    let net = match (&a.mode.governance, &held) {
        (Some(export), _) => crate::gov::apply_export(founding, export)?,
        (None, Some((path, b))) => crate::bundle::network_of(
            founding,
            b.governance.as_deref(),
            &format!("bundle {}", path.display()),
        )?,
        (None, None) => founding,
    };
    let held = match held {
        None => None,
        Some((path, b)) => Some(b.verify(&net).map_err(|e| {
            fail(
                Exit::DATA,
                format!("bundle {} is refused: {e}", path.display()),
            )
        })?),
    };
    if let Some(r) = &a.mode.region {
        if net.region(r).is_none() {
            return Err(fail(
                Exit::USAGE,
                format!(
                    "region {r} is not defined in genesis (network {})",
                    net.document().network
                ),
            ));
        }
    }
    let now = match &a.mode.at {
        Some(at) => verify::parse_rfc3339(at).ok_or_else(|| {
            fail(
                Exit::USAGE,
                format!("--at {at:?} is not an RFC 3339 time such as 2030-01-01T08:00:00+08:00"),
            )
        })?,
        None => genesis::now_unix_secs()?,
    };
    let ctx = VerifyContext {
        now,
        region: a.mode.region.clone(),
    };
    let now_ms = u64::try_from(now).unwrap_or(0).saturating_mul(1000);
    let rules = net.checkpoint_rules();
    // The issuer the answer was about, for the report's "as of".
    let asked = std::cell::RefCell::new(None);
    let facts = |id: &huren_core::LicenceId, commitment: &huren_core::Hash32| -> LedgerFacts {
        let Some(v) = &held else {
            return LedgerFacts::Offline;
        };
        let dept = id.department();
        *asked.borrow_mut() = Some(dept.clone());
        let Some(cp) = v.checkpoint(dept) else {
            return LedgerFacts::Bundle {
                status: None,
                expired: false,
                as_of: 0,
                superseded: false,
            };
        };
        LedgerFacts::Bundle {
            status: v.status(id).ledger_status(),
            expired: v.freshness(dept, now_ms, &rules) == Some(bundle::Freshness::Expired),
            as_of: (cp.checkpoint.time_ms / 1000) as i64,
            superseded: v.superseded(id, commitment),
        }
    };
    let mut decision = match (&a.text, &a.image) {
        (Some(text), _) => {
            let text = if text == "-" {
                files::read_stdin_line(QR_TEXT_CHARS_MAX)?
            } else {
                text.clone()
            };
            verify::decide_text(&net, &text, &facts, &ctx)
        }
        (None, Some(image)) => match qr::read_image(image) {
            Ok(text) => verify::decide_text(&net, &text, &facts, &ctx),
            // A photo without a readable QR is the "could not decode" verdict, not a
            // failure of the command: the clerk asks for a better picture.
            Err(e) if crate::exit::code_of(&e) == Exit::DATA => {
                verify::undecodable(&format!("{e:#}"), &ctx)
            }
            Err(e) => return Err(e),
        },
        (None, None) => return Err(fail(Exit::USAGE, "give TEXT or --image FILE")),
    };
    // Also for input that could not be decoded: this answer came from no ledger. With a
    // bundle, revocation was checked as of its checkpoints: the report's as_of says so.
    decision.offline = held.is_none();
    let mut report = Report::new(&net, &decision);
    let mut stale = false;
    if let (Some(v), Some(dept)) = (&held, asked.borrow().as_ref()) {
        if let (Some(cp), Some(f)) = (v.checkpoint(dept), v.freshness(dept, now_ms, &rules)) {
            let freshness = match f {
                bundle::Freshness::Fresh => Freshness::Fresh,
                bundle::Freshness::Stale => Freshness::Stale,
                bundle::Freshness::Expired => Freshness::Expired,
            };
            stale = freshness == Freshness::Stale;
            report.as_of = Some(AsOf::new(
                &cp.checkpoint,
                cp.cosigners(&net).len(),
                now_ms,
                "bundle",
                freshness,
            ));
        }
    }
    print_report(&report)?;
    if stale {
        if let Some(a) = &report.as_of {
            files::tell_terminal(&format!(
                "data as of {} (the bundle is past its soft limit of {} h; refresh it with huren bundle)",
                a.time,
                rules.bundle_soft_max_secs / 3600
            ));
        }
        if decision.verdict == huren_core::Verdict::Valid {
            return Ok(Exit::VALID_STALE);
        }
    }
    Ok(verdict_exit(decision.verdict.exit_code()))
}

/// The exit status for a verdict's code (0, 1 or 2).
pub fn verdict_exit(code: i32) -> Exit {
    match code {
        0 => Exit::OK,
        1 => Exit::INVALID,
        2 => Exit::UNDETERMINED,
        _ => Exit::INTERNAL,
    }
}

fn print_report(report: &Report) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report).code(Exit::INTERNAL)?;
    files::print_line(&json)?;
    files::tell_terminal(&report.message);
    Ok(())
}
