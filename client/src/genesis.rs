//! `huren genesis keygen | build | check`: founding a network from the command line.
//!
//! Thin wrappers over `huren_genesis`: this module reads and writes the files, chooses
//! the exit codes and prints what the founders need to read. It never writes a secret key
//! anywhere but the key files `huren_genesis::keys` creates.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use huren_core::genesis::Network;
use huren_genesis::keys::{self, KeyFileError};
use huren_genesis::{GenesisFile, LoadError, Template};

use crate::args::{BuildArgs, CheckArgs, KeygenArgs};
use crate::exit::{fail, Exit, WithExit};
use crate::files;

/// Templates are small hand-written files; huren-genesis refuses anything over 1 MiB, and
/// reading a little more lets it give its own message.
const TEMPLATE_BYTES_MAX: usize = 1024 * 1024 + 1;

pub fn now_unix_secs() -> anyhow::Result<i64> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    i64::try_from(d.as_secs()).context("the system clock is out of range")
}

pub fn keygen(a: KeygenArgs) -> anyhow::Result<Exit> {
    let name = match (&a.department, &a.observer) {
        (Some(d), _) => d.to_string(),
        (None, Some(o)) => o.clone(),
        // clap's "who" group makes one of them required.
        (None, None) => return Err(fail(Exit::USAGE, "give --department or --observer")),
    };
    let g = keys::generate(&name, &a.out).map_err(|e| {
        let exit = match &e {
            KeyFileError::Name(_) => Exit::USAGE,
            _ => Exit::CANT_CREATE,
        };
        fail(exit, format!("cannot generate keys for {name}: {e}"))
    })?;
    let mut out = String::new();
    let _ = writeln!(out, "keys for            {name}");
    let _ = writeln!(out, "issuer public key   {}", g.issuer_public.to_hex());
    let _ = writeln!(out, "issuer key id       {}", g.issuer_public.key_id());
    let _ = writeln!(out, "node peer id        {}", g.node_peer_id);
    let _ = writeln!(out, "issuer key (secret) {}", g.issuer_key.display());
    let _ = writeln!(out, "node key (secret)   {}", g.node_key.display());
    let _ = write!(
        out,
        "public file         {}  (give this one to the founders)",
        g.public.display()
    );
    files::print_line(&out)?;
    Ok(Exit::OK)
}

pub fn build(a: BuildArgs) -> anyhow::Result<Exit> {
    // Refuse before reading anything, so a mistyped --out never costs a rebuild.
    files::check_new(&a.out, a.force)?;
    let text = files::read_text(&a.template, TEMPLATE_BYTES_MAX, "template")?;
    let tpl = Template::parse(&text)
        .with_context(|| format!("template {}", a.template.display()))
        .code(Exit::DATA)?;
    let doc = huren_genesis::build(&tpl, &a.keys, now_unix_secs()?)
        .with_context(|| {
            format!(
                "cannot build genesis from {} with the keys in {}",
                a.template.display(),
                a.keys.display()
            )
        })
        .code(Exit::DATA)?;
    let file = GenesisFile::new(doc);
    files::write_file(&a.out, file.to_json().as_bytes(), a.force, "genesis file")?;
    files::print_line(&format!(
        "wrote {}\nnetwork {}\ngenesis hash {}",
        a.out.display(),
        file.document.network,
        file.hash
    ))?;
    Ok(Exit::OK)
}

pub fn check(a: CheckArgs) -> anyhow::Result<Exit> {
    let net = load(&a.genesis)?;
    files::print_line(&summary(&net))?;
    Ok(Exit::OK)
}

/// Loads a genesis file: unreadable → 66, anything wrong with its content → 65.
pub fn load(path: &Path) -> anyhow::Result<Network> {
    huren_genesis::load(path).map_err(|e| {
        let exit = match &e {
            LoadError::Io { .. } => Exit::NO_INPUT,
            _ => Exit::DATA,
        };
        fail(exit, format!("genesis: {e}"))
    })
}

/// A human summary of the network: what the founders and auditors check by eye.
pub fn summary(net: &Network) -> String {
    let doc = net.document();
    let mut s = String::new();
    let _ = writeln!(s, "network      {}", doc.network);
    let _ = writeln!(s, "hash         {}", net.hash());
    let _ = writeln!(
        s,
        "created      {}",
        huren_core::verify::rfc3339(doc.created_at)
    );
    let _ = writeln!(
        s,
        "quorum       {} of {} departments",
        doc.governance.quorum,
        doc.departments.len()
    );
    let _ = writeln!(s, "\nregions ({})", doc.regions.len());
    for r in &doc.regions {
        let _ = writeln!(s, "  {}  {}", r.code, r.name);
    }
    let _ = writeln!(s, "\nlicence types ({})", doc.licence_types.len());
    for t in &doc.licence_types {
        let _ = writeln!(
            s,
            "  {:<12} {} / {}; holder fields: {}; at most {} days",
            t.code.as_str(),
            t.name,
            t.name_en,
            t.holder_fields.join(", "),
            t.validity_days_max
        );
    }
    let _ = writeln!(s, "\ndepartments ({})", doc.departments.len());
    for d in &doc.departments {
        let grants: Vec<&str> = d.grants.iter().map(|g| g.as_str()).collect();
        let _ = writeln!(
            s,
            "  {:<16} {}  region {}  grants {}  key id {}",
            d.id.as_str(),
            d.name,
            d.region,
            grants.join(", "),
            d.issuer_key.key_id()
        );
    }
    if !doc.observers.is_empty() {
        let _ = writeln!(s, "\nobservers ({})", doc.observers.len());
        for o in &doc.observers {
            let _ = writeln!(s, "  {:<16} region {}", o.name, o.region);
        }
    }
    let _ = writeln!(
        s,
        "\nrecognition (a region always accepts its own licences) ({})",
        doc.recognition.len()
    );
    for r in &doc.recognition {
        let from = if r.from.iter().any(|f| f == "*") {
            "every region".to_owned()
        } else {
            r.from.join(", ")
        };
        let _ = writeln!(
            s,
            "  region {} accepts {} from {}",
            r.region, r.licence_type, from
        );
    }
    s.trim_end().to_owned()
}
