//! huren-node: run a department's node, write a starter config, check a data directory.

use std::path::PathBuf;

// sled copies tree nodes and the codecs build small values per record: under glibc's
// allocator, malloc and free were about 40% of catch-up CPU (perf, 2026-11-22).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use huren_core::DepartmentId;
use huren_node::config::{Config, Scope, TokenConfig};
use huren_node::{api, check, node, store::Store};

#[derive(Parser)]
#[command(
    name = "huren-node",
    version,
    about = "A Huren department node: ledger in sled, verification and department API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a starter config (and a first officer token, printed once).
    Init(InitArgs),
    /// Run the node.
    Run(RunArgs),
    /// Re-walk every chain, rebuild the indexes in memory and compare with the stored ones.
    Check(CheckArgs),
    /// What the data directory holds, tree by tree (entries, key and value bytes) and on
    /// disk. Run it with the node stopped (sled locks its directory).
    Usage(UsageArgs),
    /// Make a new officer token: prints the token (give it to the officer) and the config lines.
    Token {
        #[arg(long)]
        officer: String,
        #[arg(long, value_enum, default_value = "all")]
        scope: ScopeArg,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ScopeArg {
    Issue,
    Lifecycle,
    All,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Issue => Scope::Issue,
            ScopeArg::Lifecycle => Scope::Lifecycle,
            ScopeArg::All => Scope::All,
        }
    }
}

#[derive(Args)]
struct InitArgs {
    /// Where to write the config file.
    #[arg(long, default_value = "huren-node.toml")]
    config: PathBuf,
    #[arg(long)]
    genesis: PathBuf,
    /// This node's department; omit for an observer node.
    #[arg(long)]
    department: Option<String>,
    /// Directory with the key files from `huren genesis keygen`.
    #[arg(long)]
    keys: PathBuf,
    /// Key name for an observer node (its keygen name).
    #[arg(long)]
    observer: Option<String>,
    #[arg(long, default_value = "data")]
    data: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Officer id of the first token.
    #[arg(long, default_value = "officer-1")]
    officer: String,
}

#[derive(Args)]
struct RunArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// Overrides `data_dir`.
    #[arg(long, help_heading = "Overrides")]
    data: Option<PathBuf>,
    /// Overrides `api.listen` (port 0 picks a free port; the address is printed).
    #[arg(long, help_heading = "Overrides")]
    listen: Option<std::net::SocketAddr>,
    /// Overrides `limits.batch_window_ms`.
    #[arg(long, help_heading = "Overrides")]
    batch_window_ms: Option<u64>,
}

/// Which data directory a command reads: a node's config, or a directory and genesis.
#[derive(Args)]
struct DataArgs {
    /// Config file (for data_dir and genesis).
    #[arg(long, short, required_unless_present = "data")]
    config: Option<PathBuf>,
    /// Data directory (with --genesis, instead of --config).
    #[arg(long, requires = "genesis")]
    data: Option<PathBuf>,
    #[arg(long)]
    genesis: Option<PathBuf>,
}

impl DataArgs {
    /// The data directory, the genesis file, and the config when one was given.
    fn resolve(self) -> anyhow::Result<(PathBuf, PathBuf, Option<Config>)> {
        match (self.config, self.data, self.genesis) {
            (Some(c), None, g) => {
                let cfg = Config::load(&c)?;
                Ok((
                    cfg.data_dir.clone(),
                    g.unwrap_or(cfg.genesis.clone()),
                    Some(cfg),
                ))
            }
            (None, Some(d), Some(g)) => Ok((d, g, None)),
            _ => anyhow::bail!("give --config, or --data with --genesis"),
        }
    }
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    source: DataArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// This node's department (with --data; --config names it): every licence its chain
    /// issued must have its credential stored.
    #[arg(long, conflicts_with = "config")]
    department: Option<String>,
    /// Check only what was appended after this checkpoint (`department:height:hash,…`, as
    /// an earlier check printed it), plus a random sample of older blocks.
    #[arg(long)]
    since: Option<String>,
    /// Older blocks re-read per department with --since.
    #[arg(long, default_value_t = check::SAMPLE_BLOCKS_DEFAULT, requires = "since")]
    sample_blocks: usize,
}

#[derive(Args)]
struct UsageArgs {
    #[command(flatten)]
    source: DataArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sled=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Init(a) => init(a),
        Command::Run(a) => run(a),
        Command::Check(a) => return check_cmd(a),
        Command::Usage(a) => usage(a),
        Command::Token { officer, scope } => {
            let (token, hash) = huren_node::api::generate_token();
            let t = TokenConfig {
                officer,
                scope: scope.into(),
                sha256: hash,
            };
            println!(
                "token: {token}\n\n[[api.tokens]]\n{}",
                toml::to_string(&t).unwrap_or_default()
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("huren-node: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init(a: InitArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !a.config.exists(),
        "{} already exists; refusing to overwrite",
        a.config.display()
    );
    let name = match (&a.department, &a.observer) {
        (Some(d), None) => d.clone(),
        (None, Some(o)) => o.clone(),
        _ => anyhow::bail!("give exactly one of --department or --observer"),
    };
    let (token, hash) = huren_node::api::generate_token();
    let mut cfg = Config {
        data_dir: a.data,
        genesis: a.genesis,
        department: a
            .department
            .as_deref()
            .map(huren_core::DepartmentId::parse)
            .transpose()
            .context("--department")?,
        node_key: Some(huren_genesis::keys::node_key_path(&a.keys, &name)),
        ..Config::default()
    };
    if a.department.is_some() {
        cfg.issuer_key = Some(huren_genesis::keys::issuer_key_path(&a.keys, &name));
    }
    cfg.api.listen = a.listen;
    cfg.api.tokens.push(TokenConfig {
        officer: a.officer,
        scope: Scope::All,
        sha256: hash,
    });
    let text = format!(
        "# huren-node configuration. Relative paths are relative to this file.\n{}",
        toml::to_string_pretty(&cfg).context("serialising config")?
    );
    std::fs::write(&a.config, text).with_context(|| format!("writing {}", a.config.display()))?;
    println!("wrote {}", a.config.display());
    println!("officer token (shown once; only its SHA-256 is stored): {token}");
    Ok(())
}

fn run(a: RunArgs) -> anyhow::Result<()> {
    let mut cfg = Config::load(&a.config)?;
    if let Some(d) = a.data {
        cfg.data_dir = d;
    }
    if let Some(l) = a.listen {
        cfg.api.listen = l;
    }
    if let Some(w) = a.batch_window_ms {
        cfg.limits.batch_window_ms = w;
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let mut assembled = node::assemble(&cfg)?;
        node::spawn_network(&mut assembled);
        let listener = tokio::net::TcpListener::bind(cfg.api.listen)
            .await
            .with_context(|| format!("binding API address {}", cfg.api.listen))?;
        let addr = listener.local_addr().context("reading the API address")?;
        // Tests and scripts read this line to learn the port.
        println!("huren-node: api listening on http://{addr}");
        tracing::info!(%addr, department = ?assembled.state.department, "node running");
        let store = assembled.store.clone();
        api::serve(assembled.state, listener, shutdown_signal()).await?;
        store.flush().context("flushing the store at shutdown")?;
        tracing::info!("stopped cleanly");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn usage(a: UsageArgs) -> anyhow::Result<()> {
    let (data, genesis, _) = a.source.resolve()?;
    let net = huren_genesis::load(&genesis)
        .with_context(|| format!("loading genesis {}", genesis.display()))?;
    let store = Store::open(&data, &net).with_context(|| format!("opening {}", data.display()))?;
    let trees = store.usage().context("reading the trees")?;
    let licences = store.licence_count();
    let disk = dir_bytes(&data).with_context(|| format!("measuring {}", data.display()))?;
    if a.json {
        let v = serde_json::json!({
            "licences": licences,
            "disk_bytes": disk,
            "trees": trees,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let per = |b: u64| {
        if licences == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}", b as f64 / licences as f64)
        }
    };
    println!(
        "{:<20} {:>12} {:>14} {:>14} {:>14}",
        "tree", "entries", "key bytes", "value bytes", "bytes/licence"
    );
    let mut logical = 0;
    for t in trees.iter().filter(|t| t.entries > 0) {
        logical += t.key_bytes + t.value_bytes;
        println!(
            "{:<20} {:>12} {:>14} {:>14} {:>14}",
            t.tree,
            t.entries,
            t.key_bytes,
            t.value_bytes,
            per(t.key_bytes + t.value_bytes)
        );
    }
    println!(
        "{:<20} {:>12} {:>14} {:>14} {:>14}",
        "keys and values",
        "",
        "",
        logical,
        per(logical)
    );
    println!(
        "{:<20} {:>12} {:>14} {:>14} {:>14}",
        "on disk",
        "",
        "",
        disk,
        per(disk)
    );
    println!("licences: {licences}");
    Ok(())
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

fn check_cmd(a: CheckArgs) -> ExitCode {
    let result = (|| -> anyhow::Result<check::Summary> {
        let (data, genesis, cfg) = a.source.resolve()?;
        let own = match cfg {
            Some(cfg) => cfg.department,
            None => a
                .department
                .as_deref()
                .map(DepartmentId::parse)
                .transpose()
                .context("--department")?,
        };
        let since = a
            .since
            .as_deref()
            .map(check::Checkpoint::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
        let net = huren_genesis::load(&genesis)
            .with_context(|| format!("loading genesis {}", genesis.display()))?;
        let store =
            Store::open(&data, &net).with_context(|| format!("opening {}", data.display()))?;
        let opts = check::Options {
            own: own.as_ref(),
            since: since.as_ref(),
            sample_blocks: a.sample_blocks,
        };
        check::run(&net, &store, &huren_node::clock::SystemClock, opts)
    })();
    match result {
        Ok(s) => {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                println!(
                    "checked ({}) {} chains, {} blocks, {} records, {} licences, {} credentials, {} evidence, {} sampled blocks: {}",
                    s.mode,
                    s.departments,
                    s.blocks,
                    s.records,
                    s.licences,
                    s.credentials,
                    s.evidence,
                    s.sampled_blocks,
                    if s.ok() { "ok" } else { "MISMATCH" }
                );
                if s.ok() {
                    println!("checkpoint: {}", s.checkpoint);
                }
                for m in &s.mismatches {
                    println!("  mismatch: {m}");
                }
                if s.missing_credentials_count > 0 {
                    println!(
                        "  note: {} licences this department issued have no stored credential here \
                         (a restored data directory, or its chain fetched from peers): the ledger is \
                         whole, but their QR codes cannot be shown again from this node; first: {}",
                        s.missing_credentials_count,
                        s.missing_credentials.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                    );
                }
            }
            if s.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("huren-node check: {e:#}");
            ExitCode::from(2)
        }
    }
}
