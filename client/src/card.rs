//! `huren card`: the citizen's printable licence card, as SVG, HTML and PNG.
//!
//! The credential is verified offline against genesis first (signature by the issuer key
//! genesis names, the issuer's mandate, the validity period): a card is made only for a
//! licence a service window would accept, so the command cannot dress up a forged or
//! altered QR, nor reprint an expired licence. It cannot see revocation, which needs a
//! node; the window checks that when it scans the card.
//!
//! The card itself is `huren_render::card`, made from the `GenuineCredential` the
//! verification decision hands out. This module reads the input, finds the fonts for the
//! PNG (the installed ones, plus any `--font-dir`) and writes the files.

use std::path::PathBuf;

use huren_core::credential::QR_TEXT_CHARS_MAX;
use huren_core::verify::{self, InvalidReason, LedgerFacts, UndeterminedReason, VerifyContext};
use huren_core::Verdict;
use huren_render::card::{self, Card, CardError};
use huren_render::fonts::{self, Fonts};

use crate::args::CardArgs;
use crate::exit::{fail, Exit};
use crate::{files, genesis, qr};

pub fn run(a: CardArgs) -> anyhow::Result<Exit> {
    for p in [&a.svg, &a.html, &a.png].into_iter().flatten() {
        files::check_new(p, a.force)?;
    }
    for d in &a.font_dir {
        if !d.is_dir() {
            return Err(fail(
                Exit::NO_INPUT,
                format!("--font-dir {} is not a readable directory", d.display()),
            ));
        }
    }
    let net = genesis::load(&a.genesis)?;
    let text = match (&a.text, &a.image) {
        (Some(t), _) if t == "-" => files::read_stdin_line(QR_TEXT_CHARS_MAX)?,
        (Some(t), _) => t.trim().to_owned(),
        (None, Some(image)) => qr::read_image(image)?,
        (None, None) => return Err(fail(Exit::USAGE, "give TEXT or --image FILE")),
    };

    let now = genesis::now_unix_secs()?;
    let ctx = VerifyContext { now, region: None };
    let decision = verify::decide_text(&net, &text, &|_, _| LedgerFacts::Offline, &ctx);
    let report = huren_api::Report::new(&net, &decision);
    match decision.verdict {
        Verdict::Valid => {}
        // Issued to start later: the card shows the date it starts, so it is worth
        // printing now.
        Verdict::Invalid(InvalidReason::NotYetValid) => {
            eprintln!("note: {}; the card shows when it starts", report.message)
        }
        Verdict::Undetermined(UndeterminedReason::Undecodable) => {
            return Err(fail(Exit::DATA, format!("no card: {}", report.message)));
        }
        _ => {
            return Err(fail(
                Exit::INVALID,
                format!(
                    "no card: the licence does not verify against genesis ({}): {}",
                    report.message_zh, report.message
                ),
            ));
        }
    }

    // Valid or not yet valid: both prove the credential genuine.
    let genuine = decision.into_genuine(&net).ok_or_else(|| {
        fail(
            Exit::INTERNAL,
            "no card: the licence verified, but was not proven genuine",
        )
    })?;
    let card = Card::new(&genuine, &text).map_err(|e| {
        let exit = match e {
            CardError::Qr(_) | CardError::QrTooDense { .. } => Exit::DATA,
            _ => Exit::INTERNAL,
        };
        fail(exit, format!("no card: {e}"))
    })?;
    let mut written = Vec::new();
    if let Some(p) = &a.svg {
        files::write_file(p, card.svg().as_bytes(), a.force, "SVG card")?;
        written.push(format!("{} (SVG, 85.6 × 54 mm)", p.display()));
    }
    if let Some(p) = &a.html {
        files::write_file(p, card.html().as_bytes(), a.force, "HTML card")?;
        written.push(format!("{} (HTML, prints at 85.6 × 54 mm)", p.display()));
    }
    if let Some(p) = &a.png {
        let fonts = load_fonts(&a.font_dir);
        let png = card::png(&card.svg(), fonts.database()).map_err(|e| fail(Exit::INTERNAL, e))?;
        files::write_file(p, &png, a.force, "PNG card")?;
        written.push(format!("{} (PNG, 300 dpi)", p.display()));
    }
    eprintln!(
        "card for {} written: {}\nQR version {}, {:.2} mm modules, {} mm square with its quiet zone",
        card.credential().licence_id,
        written.join(", "),
        card.qr_version(),
        card.qr_module_mm(),
        card::QR_SIZE_MM
    );
    Ok(Exit::OK)
}

/// The fonts for the PNG, by the loader the node uses too: the installed fonts and
/// `extra_dirs` are scanned (metadata only), and the few files the card uses are read into
/// memory. A missing CJK font is a warning, not an error: the QR and the Latin text still
/// render.
fn load_fonts(extra_dirs: &[PathBuf]) -> Fonts {
    let loaded = fonts::load(extra_dirs);
    for e in loaded.skipped() {
        eprintln!("warning: {e}; the card is drawn without it");
    }
    if loaded.cjk_family().is_none() {
        eprintln!("warning: {}", fonts::MISSING_CJK_FONT);
    }
    loaded
}
