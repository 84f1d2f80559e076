//! The command-line grammar: every subcommand, flag and value parser, and nothing else.
//!
//! Values are parsed into validated types here (department ids, licence types, licence
//! ids, node URLs, `name=value` fields), so a malformed argument is a usage error (64)
//! with clap's message before any file is read or any request is sent.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use huren_core::credential::{FIELD_NAME_BYTES_MAX, FIELD_VALUE_BYTES_MAX};
use huren_core::{DepartmentId, LicenceId, LicenceType, RegionCode};
use reqwest::Url;

use crate::exit::EXIT_HELP;

const ABOUT: &str = "Huren (互认): electronic licences that verify across regions.";

fn long_about() -> String {
    format!(
        "{ABOUT}\n\n\
         Departments generate keys, issue, suspend, reinstate and revoke licences; service \
         windows verify a licence QR (text or image), offline against the genesis file or \
         online on any node; citizens render their QR as an image.\n\n\
         Online commands talk to a huren-node given with --node URL; department commands \
         need an officer's bearer token (--token or the HUREN_TOKEN environment \
         variable).\n\n{EXIT_HELP}"
    )
}

#[derive(Debug, Parser)]
#[command(
    name = "huren",
    version,
    about = ABOUT,
    long_about = long_about(),
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Found a network: generate keys, build and check the genesis document.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Issue a licence on your department's node, or offline with the issuer key.
    Issue(IssueArgs),
    /// Verify a licence QR (text or image), offline against genesis or on a node.
    #[command(after_help = "Exit status: 0 valid, 1 invalid, 2 undetermined, 64+ error.")]
    Verify(VerifyArgs),
    /// Render QR text as an image, or read the text back from an image.
    #[command(subcommand)]
    Qr(QrCommand),
    /// Show where a licence stands on the ledger (no personal data).
    Status(StatusArgs),
    /// Suspend a licence (暂扣).
    Suspend(SuspendArgs),
    /// Reinstate a suspended licence (发还).
    Reinstate(ReinstateArgs),
    /// Revoke a licence (撤销 / 注销 / 吊销). Revocation is final.
    Revoke(RevokeArgs),
    /// Renew licences (延续): a new period from now and a new QR; the old QR is
    /// superseded. One ID, or --file with one ID per line (bulk renewals).
    Renew(RenewArgs),
    /// Reissue a lost or damaged licence (补领 / 换证): a new QR with the same facts; the
    /// old QR is superseded.
    Reissue(ReissueArgs),
    /// Amend a licence's holder or licence fields (变更 / 更正): a new QR; the old one is
    /// superseded.
    Amend(AmendArgs),
    /// Transfer a licence out to a department of another region (转出). Final for this
    /// id: the receiving department issues it anew with `huren accept-transfer`.
    Transfer(TransferArgs),
    /// Accept a licence transferred to your department (转入): the holder's current QR
    /// is issued here under a new id naming it as its origin.
    AcceptTransfer(AcceptTransferArgs),
    /// Annul the revocation or suspension a licence stands on (an overturned decision:
    /// 复议, 诉讼, 自行纠错). The annulled record stays on the ledger.
    Annul(AnnulArgs),
    /// Show every record of a licence on the ledger, its origin and where it went (no
    /// personal data).
    History(HistoryArgs),
    /// Issue licences in bulk from a CSV file on your department's node.
    Import(ImportArgs),
    /// Make a citizen's printable licence card (SVG, HTML, PNG) from a licence QR.
    ///
    /// The QR is verified against genesis first (issuer signature, mandate, validity);
    /// a licence that does not verify gets no card. The card is an ID-1 card, 85.6 × 54
    /// mm, with the QR 38.5 mm square so it scans from paper.
    #[command(
        after_help = "Exit status: 0 card written, 1 the licence does not verify (no card), \
        65 not a licence QR or no QR in the image, 64+ other errors."
    )]
    Card(CardArgs),
    /// Change the network on the ledger: propose a record, co-sign it, submit it; show
    /// the network in force; export the governance chain (docs/governance.md).
    #[command(subcommand)]
    Gov(GovCommand),
    /// Fetch the offline bundle from a node into FILE, or bring FILE up to date with a
    /// delta: every department's witnessed checkpoint and its revoked and suspended
    /// licences, for `huren verify --offline --bundle FILE` (docs/operations.md).
    #[command(
        after_help = "The bundle is checked against --genesis before it replaces FILE: every checkpoint signed by its department and cosigned by the witness quorum, every set hashing to its checkpoint, no department moved back. A refused bundle leaves FILE as it was.\n\nExit status: 0 written, 65 refused (FILE kept), 69 node unreachable, 76 not a bundle."
    )]
    Bundle(BundleArgs),
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Base URL of any huren-node, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL", value_parser = parse_node_url)]
    pub node: Url,
    /// The bundle file: updated by a delta when it exists, written whole when not.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The genesis file: the trust anchor the bundle is checked against.
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// Seconds to wait for the node's answer.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,
}

// ---------------------------------------------------------------------------------------
// genesis

#[derive(Debug, Subcommand)]
pub enum GenesisCommand {
    /// Generate a department's (or observer's) issuer and node keys.
    ///
    /// Writes <name>.issuer.key and <name>.node.key (secret, mode 0600, never
    /// overwritten) and <name>.public.json, the file to hand to the founders.
    Keygen(KeygenArgs),
    /// Build the genesis document from a template and the departments' public key files.
    Build(BuildArgs),
    /// Check a genesis file and print a summary of the network it defines.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("who").required(true).args(["department", "observer"])))]
pub struct KeygenArgs {
    /// The department the keys are for, e.g. gd.transport.
    #[arg(long, value_name = "ID", value_parser = parse_department)]
    pub department: Option<DepartmentId>,
    /// An observer node's name (a read-only node that serves verification).
    #[arg(long, value_name = "NAME")]
    pub observer: Option<String>,
    /// Directory for the key files (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The founders' TOML template (see genesis/example.toml).
    #[arg(value_name = "TEMPLATE")]
    pub template: PathBuf,
    /// Directory holding every <name>.public.json the template needs.
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// Where to write the genesis file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The genesis file to check.
    #[arg(value_name = "GENESIS")]
    pub genesis: PathBuf,
}

// ---------------------------------------------------------------------------------------
// issue

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["offline", "node"])))]
pub struct IssueArgs {
    #[command(flatten)]
    pub mode: IssueMode,
    #[command(flatten)]
    pub licence: LicenceArgs,
    #[command(flatten)]
    pub output: QrFiles,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Offline issuing (no node; the licence is not on the ledger)")]
pub struct IssueMode {
    /// Sign the credential here with the department's issuer key.
    #[arg(long)]
    pub offline: bool,
    /// The genesis file.
    #[arg(
        long,
        value_name = "FILE",
        requires = "offline",
        required_if_eq("offline", "true")
    )]
    pub genesis: Option<PathBuf>,
    /// The department's issuer key file (<department>.issuer.key).
    #[arg(
        long,
        value_name = "FILE",
        requires = "offline",
        required_if_eq("offline", "true")
    )]
    pub key: Option<PathBuf>,
    /// Serial number for the licence id; random below 10^12 if not given.
    #[arg(long, value_name = "N", requires = "offline")]
    pub serial: Option<u64>,

    #[command(flatten)]
    pub online: IssueOnline,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Issuing on a node")]
pub struct IssueOnline {
    /// Base URL of your department's huren-node, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL", value_parser = parse_node_url)]
    pub node: Option<Url>,
    /// The officer's bearer token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HUREN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print the node's whole answer as JSON instead of only the QR text.
    #[arg(long, requires = "node")]
    pub json: bool,
    /// Seconds to wait for the node's answer.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Licence")]
pub struct LicenceArgs {
    /// Licence type code from genesis, e.g. mvdl.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_licence_type)]
    pub licence_type: LicenceType,
    /// A holder field shown to the clerk, NAME=VALUE; repeat for each (name=张三).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_field)]
    pub holder: Vec<(String, String)>,
    /// A further licence field, NAME=VALUE; repeat for each.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_field)]
    pub field: Vec<(String, String)>,
    /// Validity in days from now; the default and the maximum come from genesis.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub valid_days: Option<u32>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct QrFiles {
    /// Also write the QR as a PNG image.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
    /// Also write the QR as an SVG image.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Replace --png / --svg files that exist.
    #[arg(long)]
    pub force: bool,
}

// ---------------------------------------------------------------------------------------
// verify

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["offline", "node"])))]
#[command(group(ArgGroup::new("input").required(true).args(["text", "image"])))]
pub struct VerifyArgs {
    /// The QR text as scanned (HZ1:…), or - to read one line from standard input.
    #[arg(value_name = "TEXT")]
    pub text: Option<String>,
    /// A PNG or JPEG image with the QR in it, instead of TEXT.
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    #[command(flatten)]
    pub mode: VerifyOffline,
    #[command(flatten)]
    pub online: VerifyOnline,
}

#[derive(Debug, Args)]
#[command(
    next_help_heading = "Offline verification (signature, validity and recognition; not revocation)"
)]
pub struct VerifyOffline {
    /// Verify against the genesis file only, without a node.
    #[arg(long)]
    pub offline: bool,
    /// The genesis file (also the trust anchor of --proof).
    #[arg(long, value_name = "FILE", required_if_eq_any([("offline", "true"), ("proof", "true")]))]
    pub genesis: Option<PathBuf>,
    /// The verifying region (6-digit code), to apply the recognition policy.
    #[arg(long, value_name = "CODE", value_parser = parse_region, requires = "offline")]
    pub region: Option<RegionCode>,
    /// Verify as of this time (RFC 3339, e.g. 2030-01-01T00:00:00Z) instead of now. With
    /// --node, the node answers by the licence's history: 撤销 never valid, 吊销 and 注销
    /// valid until their record.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// A governance export (`huren gov export`): the network's rotations, compromises
    /// and other changes since founding are applied to genesis first.
    #[arg(long, value_name = "FILE", requires = "offline")]
    pub governance: Option<PathBuf>,
    /// An offline bundle (`huren bundle`): answers revoked and suspended as of its
    /// checkpoints, within the age limits genesis sets; its governance export is applied
    /// unless --governance is given.
    #[arg(long, value_name = "FILE", requires = "offline")]
    pub bundle: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Verification on a node (also checks the ledger)")]
pub struct VerifyOnline {
    /// Base URL of any huren-node, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL", value_parser = parse_node_url)]
    pub node: Option<Url>,
    /// Seconds to wait for the node's answer.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,
    /// Do not trust the node: ask for the proof of its answer and check it against
    /// --genesis and the witness quorum (docs/checkpoints.md). A node whose answer its
    /// proof does not bear out is refused (exit 65).
    #[arg(long, requires = "node")]
    pub proof: bool,
    /// With --proof: the oldest checkpoint accepted, in seconds (an older one could hide a
    /// newer revocation).
    #[arg(long, value_name = "SECS", default_value_t = 900, requires = "proof", value_parser = clap::value_parser!(u64).range(1..=30 * 86_400))]
    pub proof_age_max_secs: u64,
}

// ---------------------------------------------------------------------------------------
// gov

#[derive(Debug, Subcommand)]
pub enum GovCommand {
    /// Write a proposal file: one record, building on the governance head now in force.
    Propose(ProposeArgs),
    /// Co-sign a proposal with your department's issuer key, after reading it in words.
    Sign(SignArgs),
    /// Submit a proposal with its quorum to a node, which checks and gossips it.
    Submit(SubmitArgs),
    /// Show the network in force: departments and their keys, regions, types, rules.
    Show(ShowArgs),
    /// Write the governance chain (and the credentials vouched for under compromised
    /// keys) to a file, for offline verification and for a new node.
    Export(ExportArgs),
}

/// Where the governance head comes from: a node, or genesis plus an export.
#[derive(Debug, Args)]
#[command(next_help_heading = "The network")]
#[command(group(ArgGroup::new("source").required(true).args(["node", "genesis"])))]
pub struct GovSource {
    /// Base URL of any huren-node of the network.
    #[arg(long, value_name = "URL", value_parser = parse_node_url)]
    pub node: Option<Url>,
    /// The genesis file (offline).
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// A governance export to apply to genesis (offline).
    #[arg(long, value_name = "FILE", requires = "genesis")]
    pub governance: Option<PathBuf>,
    /// Seconds to wait for the node's answer.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,
}

#[derive(Debug, Args)]
pub struct ProposeArgs {
    #[command(subcommand)]
    pub record: RecordArgs,
}

/// The record a proposal carries, and where to write it.
#[derive(Debug, Args)]
pub struct ProposalOut {
    /// The proposal file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub source: GovSource,
}

#[derive(Debug, Subcommand)]
pub enum RecordArgs {
    /// Add a department (its keys made with `huren genesis keygen`).
    AddDepartment {
        /// The department's public key file (`<id>.public.json`).
        #[arg(long, value_name = "FILE")]
        public: PathBuf,
        /// Its name, e.g. 广州市交通运输局.
        #[arg(long)]
        name: String,
        #[arg(long, value_name = "CODE", value_parser = parse_region)]
        region: RegionCode,
        /// A licence type it may issue (repeat).
        #[arg(long = "grant", value_name = "TYPE", value_parser = parse_licence_type)]
        grants: Vec<LicenceType>,
        #[command(flatten)]
        out: ProposalOut,
    },
    /// Retire a department after its block LAST; a successor takes over its licences.
    RetireDepartment {
        #[arg(long, value_parser = parse_department)]
        department: DepartmentId,
        #[arg(long, value_name = "LAST")]
        last_height: u64,
        #[arg(long, value_parser = parse_department)]
        successor: Option<DepartmentId>,
        #[command(flatten)]
        out: ProposalOut,
    },
    /// Add an observer node (its keys made with `huren genesis keygen --observer`).
    AddObserver {
        #[arg(long, value_name = "FILE")]
        public: PathBuf,
        #[arg(long, value_name = "CODE", value_parser = parse_region)]
        region: RegionCode,
        #[command(flatten)]
        out: ProposalOut,
    },
    RemoveObserver {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        out: ProposalOut,
    },
    AddRegion {
        #[arg(long, value_name = "CODE", value_parser = parse_region)]
        code: RegionCode,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        out: ProposalOut,
    },
    /// Add a licence type, given as genesis writes one (JSON: code, names, holder fields
    /// and labels, validity_days_max).
    AddLicenceType {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        out: ProposalOut,
    },
    /// Replace a department's grants.
    SetGrants {
        #[arg(long, value_parser = parse_department)]
        department: DepartmentId,
        #[arg(long = "grant", value_name = "TYPE", value_parser = parse_licence_type)]
        grants: Vec<LicenceType>,
        #[command(flatten)]
        out: ProposalOut,
    },
    /// Replace the recognition rules whole (JSON: a list of rules as genesis writes them).
    SetRecognition {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        out: ProposalOut,
    },
    /// A department signs with a new key from its first block cut under this record.
    RotateIssuerKey {
        #[arg(long, value_parser = parse_department)]
        department: DepartmentId,
        /// The new key's public file (`huren genesis keygen` into another directory).
        #[arg(long, value_name = "FILE")]
        public: PathBuf,
        #[command(flatten)]
        out: ProposalOut,
    },
    /// A department's or observer's node gets a new libp2p key (peer id).
    RotateNodeKey {
        /// Whose node: a department id or an observer's name.
        #[arg(long, value_name = "DEPARTMENT_OR_OBSERVER")]
        name: String,
        /// The public file whose node peer id to use.
        #[arg(long, value_name = "FILE")]
        public: PathBuf,
        #[command(flatten)]
        out: ProposalOut,
    },
    /// A department's key was stolen: its blocks above LAST_GOOD signed with it are
    /// refused everywhere, and the replacement signs from LAST_GOOD + 1.
    KeyCompromised {
        #[arg(long, value_parser = parse_department)]
        department: DepartmentId,
        #[arg(long, value_name = "LAST_GOOD")]
        last_good: u64,
        /// The replacement key's public file.
        #[arg(long, value_name = "FILE")]
        replacement: PathBuf,
        #[command(flatten)]
        out: ProposalOut,
    },
    ChangeQuorum {
        #[arg(long)]
        quorum: u32,
        #[command(flatten)]
        out: ProposalOut,
    },
    /// The checkpoint rules: witness cosignatures a checkpoint needs, and the offline
    /// bundle's soft and hard age limits (docs/checkpoints.md).
    SetCheckpointRules {
        #[arg(long)]
        witness_quorum: u32,
        #[arg(long, value_name = "SECS")]
        bundle_soft_max_secs: u64,
        #[arg(long, value_name = "SECS")]
        bundle_hard_max_secs: u64,
        #[command(flatten)]
        out: ProposalOut,
    },
    /// Switch the network to a newer protocol version (new record kinds, accepted
    /// everywhere at once): only after every department's node runs a release that knows
    /// it (its /healthz `protocol.supported`); a node that does not stops signing.
    SetProtocolVersion {
        /// The version to switch to.
        #[arg(long, value_name = "VERSION")]
        to: u32,
        #[command(flatten)]
        out: ProposalOut,
    },
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The proposal file; the signature is added to it.
    #[arg(value_name = "PROPOSAL")]
    pub proposal: PathBuf,
    /// Your department's issuer key file.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Sign without asking (the record is still printed).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[arg(value_name = "PROPOSAL")]
    pub proposal: PathBuf,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub token: TokenArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub source: GovSource,
    /// Print the network as JSON (`GET /v1/network`'s shape).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
}

// ---------------------------------------------------------------------------------------
// qr

#[derive(Debug, Subcommand)]
pub enum QrCommand {
    /// Render QR text as a PNG, an SVG or blocks on the terminal.
    Render(RenderArgs),
    /// Read the QR text from a PNG or JPEG image.
    Decode(DecodeArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("format").required(true).args(["png", "svg", "terminal"])))]
pub struct RenderArgs {
    /// The text to encode (HZ1:…), or - to read one line from standard input.
    #[arg(value_name = "TEXT")]
    pub text: String,
    /// Write a PNG image.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
    /// Write an SVG image.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Print the QR on the terminal.
    #[arg(long)]
    pub terminal: bool,
    /// PNG pixels per QR module.
    #[arg(long, value_name = "PX", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub module_px: u32,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The image to read.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
}

// ---------------------------------------------------------------------------------------
// department commands on a node

#[derive(Debug, Args)]
#[command(next_help_heading = "Node")]
pub struct NodeArgs {
    /// Base URL of the huren-node, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL", value_parser = parse_node_url)]
    pub node: Url,
    /// Seconds to wait for the node's answer.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Node")]
pub struct TokenArgs {
    /// The officer's bearer token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HUREN_TOKEN",
        hide_env_values = true
    )]
    pub token: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The licence id, e.g. gd.transport:mvdl:00000042.
    #[arg(value_name = "ID", value_parser = parse_licence_id)]
    pub id: LicenceId,
    /// Also say where it stood at this time (RFC 3339): 撤销 never valid, 吊销 and 注销
    /// valid until their record.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "file"])))]
pub struct RenewArgs {
    /// The licence id, e.g. gd.transport:mvdl:00000042.
    #[arg(value_name = "ID", value_parser = parse_licence_id)]
    pub id: Option<LicenceId>,
    /// Renew every licence id in FILE (one per line; blank lines and # comments skipped),
    /// in requests of --batch; write the new QR texts as CSV (licence_id, qr) to --out.
    #[arg(long, value_name = "FILE", requires = "out")]
    pub file: Option<PathBuf>,
    /// With --file: where the renewed licences' new QR texts go (CSV).
    #[arg(long, value_name = "FILE.csv")]
    pub out: Option<PathBuf>,
    /// With --file: licences per request.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=IMPORT_BATCH_MAX))]
    pub batch: u64,
    /// Days from now (default: the type's maximum).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub valid_days: Option<u32>,
    /// The new end of validity (RFC 3339); overrides --valid-days.
    #[arg(long, value_name = "TIME")]
    pub valid_until: Option<String>,
    #[command(flatten)]
    pub output: QrFiles,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub token: TokenArgs,
}

#[derive(Debug, Args)]
pub struct ReissueArgs {
    /// The licence id, e.g. gd.transport:mvdl:00000042.
    #[arg(value_name = "ID", value_parser = parse_licence_id)]
    pub id: LicenceId,
    #[command(flatten)]
    pub output: QrFiles,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub token: TokenArgs,
}

#[derive(Debug, Args)]
pub struct AmendArgs {
    /// The licence id, e.g. gd.transport:mvdl:00000042.
    #[arg(value_name = "ID", value_parser = parse_licence_id)]
    pub id: LicenceId,
    /// A holder field that changes, NAME=VALUE; repeat for each.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_field)]
    pub holder: Vec<(String, String)>,
    /// A licence field that changes, NAME=VALUE (NAME= removes it); repeat for each.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_field)]
    pub field: Vec<(String, String)>,
    #[command(flatten)]
    pub output: QrFiles,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub token: TokenArgs,
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The licence id, e.g. gd.transport:mvdl:00000042.
    #[arg(value_name = "ID", value_parser = parse_licence_id)]
    pub id: LicenceId,
    /// The receiving department, in another region, e.g. sh.transport.
    #[arg(long, value_name = "DEPARTMENT", value_parser = parse_department)]
    pub to: DepartmentId,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub token: TokenArgs,
}

#[derive(Debug, Args)]
pub struct AcceptTransferArgs {
    /// The holder's current QR text (HZ1:…), or - to read one line from standard input.
    #[arg(value_name = "TEXT")]
    pub text: String,
    /// Days from now (default: what is left of the origin's validity).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub valid_days: Option<u32>,
    #[command(flatten)]
    pub output: QrFiles,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub token: TokenArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AnnulReason {
    /// Overturned on administrative reconsideration (行政复议).
    Reconsideration,
    /// Overturned by a court (行政诉讼).
    Court,
    /// Withdrawn by the department as made in error (自行纠错).
    Error,
}

impl From<AnnulReason> for huren_core::ledger::AnnulReason {
    fn from(r: AnnulReason) -> Self {
        match r {
            AnnulReason::Reconsideration => Self::Reconsideration,
            AnnulReason::Court => Self::Court,
            AnnulReason::Error => Self::Error,
        }
    }
}

#[derive(Debug, Args)]
pub struct AnnulArgs {
    /// The licence id, e.g. gd.transport:mvdl:00000042.
    #[arg(value_name = "ID", value_parser = parse_licence_id)]
    pub id: LicenceId,
    /// Why the decision was overturned.
    #[arg(long, value_enum)]
    pub reason: AnnulReason,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub token: TokenArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The licence id, e.g. gd.transport:mvdl:00000042.
    #[arg(value_name = "ID", value_parser = parse_licence_id)]
    pub id: LicenceId,
    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SuspendReason {
    /// Administrative penalty (行政处罚暂扣).
    Penalty,
    /// Under investigation (调查中).
    Investigation,
    /// Other, documented in the department's own files.
    Other,
}

/// The command line's names for the ledger's reasons: clap needs its own enum to list
/// them in `--help`; the wire value is core's.
impl From<SuspendReason> for huren_core::SuspendReason {
    fn from(r: SuspendReason) -> Self {
        match r {
            SuspendReason::Penalty => Self::Penalty,
            SuspendReason::Investigation => Self::Investigation,
            SuspendReason::Other => Self::Other,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RevokeReason {
    /// 撤销: the licence should not have been granted.
    Withdrawn,
    /// 注销: cancelled (holder's request, death, entity dissolved).
    Cancelled,
    /// 吊销: revoked as a penalty.
    Penalty,
}

impl From<RevokeReason> for huren_core::RevokeReason {
    fn from(r: RevokeReason) -> Self {
        match r {
            RevokeReason::Withdrawn => Self::Withdrawn,
            RevokeReason::Cancelled => Self::Cancelled,
            RevokeReason::Penalty => Self::Penalty,
        }
    }
}

#[derive(Debug, Args)]
pub struct SuspendArgs {
    /// The licence id, e.g. gd.transport:mvdl:00000042.
    #[arg(value_name = "ID", value_parser = parse_licence_id)]
    pub id: LicenceId,
    /// Why the licence is suspended.
    #[arg(long, value_enum)]
    pub reason: SuspendReason,
    /// The suspension ends by itself at this time (RFC 3339; 暂扣六个月), without a
    /// reinstate record.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub token: TokenArgs,
}

#[derive(Debug, Args)]
pub struct ReinstateArgs {
    /// The licence id, e.g. gd.transport:mvdl:00000042.
    #[arg(value_name = "ID", value_parser = parse_licence_id)]
    pub id: LicenceId,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub token: TokenArgs,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The licence id, e.g. gd.transport:mvdl:00000042.
    #[arg(value_name = "ID", value_parser = parse_licence_id)]
    pub id: LicenceId,
    /// Why the licence is revoked.
    #[arg(long, value_enum)]
    pub reason: RevokeReason,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub token: TokenArgs,
}

/// Most licences one batch request may carry; the node enforces the same bound.
pub const IMPORT_BATCH_MAX: u64 = 1000;

#[derive(Debug, Args)]
#[command(after_long_help = crate::import::CSV_HELP)]
pub struct ImportArgs {
    /// The CSV file: a header row, then one licence per row.
    #[arg(value_name = "FILE.csv")]
    pub file: PathBuf,
    /// Licences per request to the node.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=IMPORT_BATCH_MAX))]
    pub batch: u64,
    /// Write the issued licence ids and QR texts here (CSV: row, licence_id, qr).
    #[arg(long, value_name = "FILE.csv")]
    pub out: Option<PathBuf>,
    /// Write every row that was not imported here (CSV: row, code, message).
    #[arg(long, value_name = "FILE.csv")]
    pub failed: Option<PathBuf>,
    /// Replace --out and --failed if they exist.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub token: TokenArgs,
}

// ---------------------------------------------------------------------------------------
// card

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["text", "image"])))]
#[command(group(ArgGroup::new("format").required(true).multiple(true).args(["svg", "html", "png"])))]
pub struct CardArgs {
    /// The QR text (HZ1:…), or - to read one line from standard input.
    #[arg(value_name = "TEXT")]
    pub text: Option<String>,
    /// A PNG or JPEG image with the QR in it, instead of TEXT.
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// The genesis file the licence must verify against.
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// Write the card as an SVG image (85.6 × 54 mm).
    #[arg(long, value_name = "FILE", help_heading = "Output (at least one)")]
    pub svg: Option<PathBuf>,
    /// Write the card as an HTML page that prints exactly the card from a browser.
    #[arg(long, value_name = "FILE", help_heading = "Output (at least one)")]
    pub html: Option<PathBuf>,
    /// Write the card as a 300 dpi PNG (1011 × 638 px).
    #[arg(long, value_name = "FILE", help_heading = "Output (at least one)")]
    pub png: Option<PathBuf>,
    /// Replace output files that exist.
    #[arg(long, help_heading = "Output (at least one)")]
    pub force: bool,
    /// Also look for fonts in this directory, for the PNG (e.g. a CJK font that is not
    /// installed system-wide); repeat for several.
    #[arg(long, value_name = "DIR")]
    pub font_dir: Vec<PathBuf>,
}

// ---------------------------------------------------------------------------------------
// value parsers

fn parse_department(s: &str) -> Result<DepartmentId, String> {
    DepartmentId::parse(s).map_err(|e| e.to_string())
}

fn parse_region(s: &str) -> Result<RegionCode, String> {
    RegionCode::parse(s).map_err(|e| e.to_string())
}

fn parse_licence_type(s: &str) -> Result<LicenceType, String> {
    LicenceType::parse(s).map_err(|e| e.to_string())
}

fn parse_licence_id(s: &str) -> Result<LicenceId, String> {
    LicenceId::parse(s).map_err(|e| e.to_string())
}

/// A node base URL: http or https, no query or fragment (paths are appended to it).
pub fn parse_node_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{s:?}: the node URL must start with http:// or https://"
        ));
    }
    if url.host_str().is_none() {
        return Err(format!("{s:?}: the node URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{s:?}: the node URL must not have a query or fragment"
        ));
    }
    Ok(url)
}

/// Whether `name` is a valid credential field name (the rule `huren_core` enforces when
/// signing, checked here so the officer hears it before anything is issued).
/// Whether `name` is a field name a credential may carry (the rule is
/// `huren_core::ids::FieldName`'s).
pub fn field_name_ok(name: &str) -> bool {
    huren_core::ids::FieldName::parse(name).is_ok()
}

/// Checks a field value against the credential's bounds.
pub fn field_value_problem(value: &str) -> Option<String> {
    if value.len() > FIELD_VALUE_BYTES_MAX {
        Some(format!(
            "is {} bytes; at most {FIELD_VALUE_BYTES_MAX}",
            value.len()
        ))
    } else if value.chars().any(char::is_control) {
        Some("contains a control character".into())
    } else {
        None
    }
}

/// `NAME=VALUE`, split at the first `=`.
pub fn parse_field(s: &str) -> Result<(String, String), String> {
    let Some((name, value)) = s.split_once('=') else {
        return Err(format!("{s:?} must be NAME=VALUE"));
    };
    if !field_name_ok(name) {
        return Err(format!(
            "field name {name:?} must be 1-{FIELD_NAME_BYTES_MAX} characters of a-z, 0-9 and '_'"
        ));
    }
    if let Some(problem) = field_value_problem(value) {
        return Err(format!("the value of {name} {problem}"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn fields_and_urls() {
        assert_eq!(
            parse_field("name=张三=x"),
            Ok(("name".into(), "张三=x".into()))
        );
        assert_eq!(parse_field("class="), Ok(("class".into(), String::new())));
        assert!(parse_field("name").is_err());
        assert!(parse_field("Name=x").is_err());
        assert!(parse_field("name=a\nb").is_err());
        assert!(parse_field(&format!("name={}", "x".repeat(300))).is_err());
        assert!(parse_node_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_node_url("https://node.example/huren/").is_ok());
        assert!(parse_node_url("ftp://x").is_err());
        assert!(parse_node_url("127.0.0.1:8080").is_err());
        assert!(parse_node_url("http://x/?a=b").is_err());
    }
}
