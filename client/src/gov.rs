//! `huren gov propose | sign | submit | show | export`: changing the network on the ledger.
//!
//! A proposal is a file holding one governance block (canonical CBOR in hex) and, for
//! people, the record it carries in JSON and in words. The block is the only thing read
//! back: `sign` decodes it, shows the record in words, and adds a cosignature, which does
//! not change the block's id; `submit` sends it to a node, which checks the quorum and
//! gossips it. Nothing here decides whether a record is allowed: the node (core's
//! `Network::apply`) does, and says why not.

use std::io::IsTerminal;
use std::path::Path;

use huren_api::governance::{decode_hex_block, GOV_EXPORT_BYTES_MAX};
use huren_api::{GovSubmit, GovSubmitAnswer, GovernanceExport, NetworkView};
use huren_core::genesis::{LicenceTypeDef, Observer, RecognitionRule, Region};
use huren_core::governance::{GovAdmission, GovBlock, GovChain, GovHeader, GovRecord};
use huren_core::{DepartmentId, Hash32, Network};
use huren_genesis::keys;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::args::{ExportArgs, GovSource, ProposalOut, RecordArgs, ShowArgs, SignArgs, SubmitArgs};
use crate::exit::{fail, Exit, WithExit};
use crate::online::Node;
use crate::{files, genesis};

/// A proposal file is one block and its description: far below this.
const PROPOSAL_BYTES_MAX: usize = 2 * 1024 * 1024;
/// A licence type or a set of recognition rules, as JSON.
const RECORD_FILE_BYTES_MAX: usize = 1024 * 1024;

/// What `huren gov propose` writes and `sign` and `submit` read.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalFile {
    /// The record in words, as `sign` shows it (for people; the block decides).
    pub record_in_words: String,
    /// The governance height the record will have, and the head it builds on.
    pub height: u64,
    pub prev: Hash32,
    /// The founding genesis hash of the network.
    pub genesis: Hash32,
    /// The record, as JSON (for people; the block decides).
    pub record: GovRecord,
    /// Departments that have signed so far.
    pub signed_by: Vec<DepartmentId>,
    /// The governance block with its cosignatures, canonical CBOR in hex.
    pub block: String,
}

impl ProposalFile {
    fn of(block: &GovBlock) -> Self {
        Self {
            record_in_words: block.header.record.describe(),
            height: block.height(),
            prev: block.header.prev,
            genesis: block.header.genesis,
            record: block.header.record.clone(),
            signed_by: block.signatures.keys().cloned().collect(),
            block: hex::encode(block.encode()),
        }
    }

    fn read(path: &Path) -> anyhow::Result<GovBlock> {
        let text = files::read_text(path, PROPOSAL_BYTES_MAX, "proposal")?;
        let p: ProposalFile = serde_json::from_str(&text).map_err(|e| {
            fail(
                Exit::DATA,
                format!("{}: not a proposal: {e}", path.display()),
            )
        })?;
        decode_hex_block(&p.block).map_err(|e| {
            fail(
                Exit::DATA,
                format!(
                    "{}: the block is not a governance block: {}",
                    path.display(),
                    e.map_or("not hex".into(), |e| e.to_string())
                ),
            )
        })
    }

    fn write(block: &GovBlock, path: &Path, force: bool) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(&Self::of(block)).code(Exit::INTERNAL)?;
        files::write_file(path, format!("{json}\n").as_bytes(), force, "proposal")
    }
}

/// Genesis with an export's blocks applied (each checked against its quorum), knowing
/// the credentials the export vouches for: the network offline verification uses.
pub fn apply_export(genesis: Network, path: &Path) -> anyhow::Result<Network> {
    let text = files::read_text(path, GOV_EXPORT_BYTES_MAX, "governance export")?;
    apply_export_text(genesis, &text, &path.display().to_string())
}

/// `apply_export` of an export's text (`what` names where it came from in errors).
pub fn apply_export_text(genesis: Network, text: &str, what: &str) -> anyhow::Result<Network> {
    let export =
        GovernanceExport::parse(text).map_err(|e| fail(Exit::DATA, format!("{}: {e}", what)))?;
    if export.genesis != genesis.hash() {
        return Err(fail(
            Exit::DATA,
            format!(
                "{} is the governance of another network (genesis {}, this genesis {})",
                what,
                export.genesis,
                genesis.hash()
            ),
        ));
    }
    let blocks = export
        .decode_blocks()
        .map_err(|e| fail(Exit::DATA, format!("{}: {e}", what)))?;
    let mut chain = GovChain::new(genesis);
    for block in blocks {
        let height = block.height();
        match chain.admit(block) {
            Ok(GovAdmission::Applied(_)) => {}
            Ok(other) => {
                return Err(fail(
                    Exit::DATA,
                    format!("{}: block {height}: {other:?}", what),
                ))
            }
            Err(e) => {
                return Err(fail(
                    Exit::DATA,
                    format!("{}: block {height} does not apply: {e}", what),
                ))
            }
        }
    }
    Ok((**chain.newest()).clone().with_vouched(export.vouched))
}

/// The network in force offline: genesis, and the export if given.
fn offline_network(source: &GovSource) -> anyhow::Result<Network> {
    let Some(g) = &source.genesis else {
        return Err(fail(Exit::USAGE, "give --node URL or --genesis FILE"));
    };
    let net = genesis::load(g)?;
    match &source.governance {
        Some(e) => apply_export(net, e),
        None => Ok(net),
    }
}

pub fn propose(record: RecordArgs) -> anyhow::Result<Exit> {
    let (record, out) = record_of(record)?;
    files::check_new(&out.out, out.force)?;
    let (genesis, height, prev) = head_of(&out.source)?;
    let time_ms = u64::try_from(genesis::now_unix_secs()?)
        .unwrap_or(0)
        .saturating_mul(1000);
    let block = GovBlock::new(GovHeader {
        genesis,
        height: height + 1,
        prev,
        time_ms,
        record,
    });
    ProposalFile::write(&block, &out.out, out.force)?;
    eprintln!(
        "proposal for governance height {}: {}\nwritten to {}; each department signs it with `huren gov sign`",
        block.height(),
        block.header.record.describe(),
        out.out.display()
    );
    Ok(Exit::OK)
}

/// The founding genesis hash, the governance height and the head, from the source.
fn head_of(source: &GovSource) -> anyhow::Result<(Hash32, u64, Hash32)> {
    match &source.node {
        Some(url) => {
            let node = Node::new(url, None, source.timeout_secs)?;
            let view: NetworkView = node
                .get(&["v1", "network"])?
                .parse(&[StatusCode::OK], Exit::REFUSED)?;
            Ok((view.genesis, view.gov_height, view.gov_head))
        }
        None => {
            let net = offline_network(source)?;
            Ok((net.hash(), net.gov_height(), net.gov_head()))
        }
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text = files::read_text(path, RECORD_FILE_BYTES_MAX, what)?;
    serde_json::from_str(&text)
        .map_err(|e| fail(Exit::DATA, format!("{}: not a {what}: {e}", path.display())))
}

fn public(path: &Path) -> anyhow::Result<keys::PublicFile> {
    keys::read_public(path).map_err(|e| {
        let exit = match &e {
            keys::KeyFileError::Io { .. } => Exit::NO_INPUT,
            _ => Exit::DATA,
        };
        fail(exit, format!("public key file {}: {e}", path.display()))
    })
}

fn record_of(a: RecordArgs) -> anyhow::Result<(GovRecord, ProposalOut)> {
    Ok(match a {
        RecordArgs::AddDepartment {
            public: p,
            name,
            region,
            grants,
            out,
        } => {
            let p = public(&p)?;
            let id = DepartmentId::parse(&p.name).map_err(|_| {
                fail(
                    Exit::DATA,
                    format!("{} is an observer's key file, not a department's", p.name),
                )
            })?;
            (
                GovRecord::AddDepartment {
                    department: huren_core::genesis::Department {
                        id,
                        name,
                        region,
                        grants,
                        issuer_key: p.issuer_public,
                        node_peer_id: p.node_peer_id,
                    },
                },
                out,
            )
        }
        RecordArgs::RetireDepartment {
            department,
            last_height,
            successor,
            out,
        } => (
            GovRecord::RetireDepartment {
                department,
                last_height,
                successor,
            },
            out,
        ),
        RecordArgs::AddObserver {
            public: p,
            region,
            out,
        } => {
            let p = public(&p)?;
            (
                GovRecord::AddObserver {
                    observer: Observer {
                        name: p.name,
                        region,
                        node_peer_id: p.node_peer_id,
                    },
                },
                out,
            )
        }
        RecordArgs::RemoveObserver { name, out } => (GovRecord::RemoveObserver { name }, out),
        RecordArgs::AddRegion { code, name, out } => (
            GovRecord::AddRegion {
                region: Region { code, name },
            },
            out,
        ),
        RecordArgs::AddLicenceType { file, out } => (
            GovRecord::AddLicenceType {
                licence_type: read_json::<LicenceTypeDef>(&file, "licence type")?,
            },
            out,
        ),
        RecordArgs::SetGrants {
            department,
            grants,
            out,
        } => (GovRecord::SetGrants { department, grants }, out),
        RecordArgs::SetRecognition { file, out } => (
            GovRecord::SetRecognition {
                rules: read_json::<Vec<RecognitionRule>>(&file, "list of recognition rules")?,
            },
            out,
        ),
        RecordArgs::RotateIssuerKey {
            department,
            public: p,
            out,
        } => (
            GovRecord::RotateIssuerKey {
                department,
                key: public(&p)?.issuer_public,
            },
            out,
        ),
        RecordArgs::RotateNodeKey {
            name,
            public: p,
            out,
        } => (
            GovRecord::RotateNodeKey {
                node: name,
                peer_id: public(&p)?.node_peer_id,
            },
            out,
        ),
        RecordArgs::KeyCompromised {
            department,
            last_good,
            replacement,
            out,
        } => (
            GovRecord::KeyCompromised {
                department,
                last_good,
                replacement: public(&replacement)?.issuer_public,
            },
            out,
        ),
        RecordArgs::ChangeQuorum { quorum, out } => (GovRecord::ChangeQuorum { quorum }, out),
        RecordArgs::SetCheckpointRules {
            witness_quorum,
            bundle_soft_max_secs,
            bundle_hard_max_secs,
            out,
        } => (
            GovRecord::SetCheckpointRules {
                rules: huren_core::genesis::CheckpointRules {
                    witness_quorum,
                    bundle_soft_max_secs,
                    bundle_hard_max_secs,
                },
            },
            out,
        ),
        RecordArgs::SetProtocolVersion { to, out } => {
            (GovRecord::SetProtocolVersion { version: to }, out)
        }
    })
}

pub fn sign(a: SignArgs) -> anyhow::Result<Exit> {
    let mut block = ProposalFile::read(&a.proposal)?;
    let (name, key) = keys::read_issuer_key(&a.key).map_err(|e| {
        let exit = match &e {
            keys::KeyFileError::Io { .. } => Exit::NO_INPUT,
            _ => Exit::DATA,
        };
        fail(exit, format!("issuer key {}: {e}", a.key.display()))
    })?;
    let department = DepartmentId::parse(&name).map_err(|_| {
        fail(
            Exit::DATA,
            format!("{name} is not a department: only departments sign governance records"),
        )
    })?;
    eprintln!(
        "governance record {} (on head {}):\n  {}\nsigned so far by: {}",
        block.height(),
        block.header.prev.short(),
        block.header.record.describe(),
        if block.signatures.is_empty() {
            "nobody".to_owned()
        } else {
            block
                .signatures
                .keys()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            return Err(fail(
                Exit::USAGE,
                "not signed: read the record above, then sign with --yes (no terminal to ask on)",
            ));
        }
        eprint!("sign it as {department}? [y/N] ");
        let answer = files::read_stdin_line(16)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("not signed");
            return Ok(Exit::REFUSED);
        }
    }
    block.cosign(department.clone(), &key);
    ProposalFile::write(&block, &a.proposal, true)?;
    eprintln!(
        "signed as {department} (key {}); {} signatures",
        key.public().key_id(),
        block.signatures.len()
    );
    Ok(Exit::OK)
}

pub fn submit(a: SubmitArgs) -> anyhow::Result<Exit> {
    let block = ProposalFile::read(&a.proposal)?;
    let node = Node::new(&a.node.node, Some(&a.token.token), a.node.timeout_secs)?;
    let answer: GovSubmitAnswer = node
        .post_json(
            &["v1", "governance"],
            &GovSubmit {
                block: hex::encode(block.encode()),
            },
        )?
        .parse(&[StatusCode::OK], Exit::REFUSED)?;
    files::print_line(&serde_json::to_string_pretty(&answer).code(Exit::INTERNAL)?)?;
    Ok(Exit::OK)
}

pub fn show(a: ShowArgs) -> anyhow::Result<Exit> {
    let view = match &a.source.node {
        Some(url) => Node::new(url, None, a.source.timeout_secs)?
            .get(&["v1", "network"])?
            .parse::<NetworkView>(&[StatusCode::OK], Exit::REFUSED)?,
        None => NetworkView::of(&offline_network(&a.source)?),
    };
    if a.json {
        files::print_line(&serde_json::to_string_pretty(&view).code(Exit::INTERNAL)?)?;
    } else {
        files::print_line(&words(&view))?;
    }
    Ok(Exit::OK)
}

/// The network in force, for people.
fn words(v: &NetworkView) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let doc = &v.document;
    let _ = writeln!(
        out,
        "network {} (genesis {}), governance height {} (head {}), quorum {}",
        doc["network"].as_str().unwrap_or("?"),
        v.genesis.short(),
        v.gov_height,
        v.gov_head.short(),
        v.quorum
    );
    let _ = writeln!(out, "departments:");
    for d in &v.departments {
        let retired = match (&d.retired_after, &d.successor) {
            (Some(h), Some(s)) => format!(", retired after block {h}, succeeded by {s}"),
            (Some(h), None) => format!(", retired after block {h}"),
            _ => String::new(),
        };
        let grants: Vec<String> = d.grants.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "  {} {} (region {}), grants {}{retired}",
            d.id,
            d.name,
            d.region,
            grants.join(", ")
        );
        for k in &d.keys {
            let until = k
                .until_height
                .map_or("on".to_owned(), |u| format!("to {u}"));
            let _ = writeln!(
                out,
                "    key {} blocks {} {until}, cut under governance height {} or later{}",
                k.kid,
                k.from_height,
                k.from_gov,
                if k.compromised { ", COMPROMISED" } else { "" }
            );
        }
    }
    for (what, key) in [("regions", "regions"), ("licence types", "licence_types")] {
        let items: Vec<String> = doc[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        format!(
                            "{} {}",
                            r["code"].as_str().unwrap_or("?"),
                            r["name"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(out, "{what}: {}", items.join("; "));
    }
    let rules = doc["recognition"].as_array().map_or(0, Vec::len);
    let observers = doc["observers"].as_array().map_or(0, Vec::len);
    let _ = write!(out, "recognition rules: {rules}; observers: {observers}");
    out
}

pub fn export(a: ExportArgs) -> anyhow::Result<Exit> {
    files::check_new(&a.out, a.force)?;
    let node = Node::new(&a.node.node, None, a.node.timeout_secs)?;
    let export: GovernanceExport = node
        .get_bounded(&["v1", "governance"], GOV_EXPORT_BYTES_MAX as u64)?
        .parse(&[StatusCode::OK], Exit::REFUSED)?;
    let json = serde_json::to_string_pretty(&export).code(Exit::INTERNAL)?;
    files::write_file(&a.out, format!("{json}\n").as_bytes(), a.force, "export")?;
    eprintln!(
        "governance height {} ({} blocks, {} vouched credentials) written to {}",
        export.height,
        export.blocks.len(),
        export.vouched.len(),
        a.out.display()
    );
    Ok(Exit::OK)
}
