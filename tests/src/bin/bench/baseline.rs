//! The central-database baseline (issue 15 item 5, docs/performance.md §5): what a
//! ministry might build instead of Huren, measured in the same run with the same work as
//! the one-node phase. `huren-baseline` (bench/baseline) serves the node's batch-issue and
//! verify API over one PostgreSQL database; this module starts a PostgreSQL cluster of its
//! own from Debian's packages (installing them when missing), starts the service on it,
//! and drives it with the one-node phase's own bulk import and verify load.
//!
//! Must never run while a node does: the two would share the machine's cores, and each
//! figure would be the other's loss. Leaves nothing behind: the cluster is stopped and its
//! directory removed when `Postgres` drops, the service killed when `Service` drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use anyhow::Context;
use serde_json::{json, Value};

use super::{aget, bulk_import, verify_load, wait_for, Generator, Load, Run};

/// The database the service uses, in the cluster started here.
const DATABASE: &str = "huren";

/// A PostgreSQL cluster in a temporary directory, stopped (fast) and removed on drop.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    /// Holds the data directory and the unix socket; removed last.
    dir: tempfile::TempDir,
    /// `postgres --version` without the program's name, for the report.
    version: String,
    as_root: bool,
}

/// The newest PostgreSQL server Debian's packages installed: /usr/lib/postgresql/<v>/bin.
fn find_server() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("postgres").is_file() && bin.join("initdb").is_file()).then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn run_ok(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Postgres {
    /// A command of the server's, run as the `postgres` user when this process is root
    /// (initdb and postgres refuse to run as root), as this user otherwise.
    fn command(&self, program: &str) -> Command {
        command_as(self.as_root, &self.bin.join(program))
    }

    /// Installs PostgreSQL from Debian if no server is found, then founds a cluster and
    /// starts it listening only on a unix socket in its own directory.
    fn start() -> anyhow::Result<Postgres> {
        let bin = match find_server() {
            Some(bin) => bin,
            None => {
                eprintln!("installing PostgreSQL from Debian for the central-database baseline");
                run_ok(
                    Command::new("sh")
                        .args([
                            "-c",
                            "apt-get update -q && apt-get install -y -q postgresql",
                        ])
                        .env("DEBIAN_FRONTEND", "noninteractive"),
                    "apt-get install postgresql (needs root and apt-get)",
                )?;
                find_server().context(
                    "no server under /usr/lib/postgresql/*/bin after installing postgresql",
                )?
            }
        };
        let as_root = run_ok(Command::new("id").arg("-u"), "id -u")?.trim() == "0";
        let dir = tempfile::Builder::new()
            .prefix("huren-pg-")
            .tempdir()
            .context("creating the cluster's directory")?;
        if as_root {
            run_ok(
                Command::new("chown").arg("postgres:").arg(dir.path()),
                "chown postgres: on the cluster's directory",
            )?;
        }
        let version = run_ok(
            Command::new(bin.join("postgres")).arg("--version"),
            "postgres --version",
        )?;
        // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        let version = version
            .trim()
            .trim_start_matches("postgres (PostgreSQL)")
            .trim();
        let version = format!("PostgreSQL {version}");
        let pg = Postgres {
            data: dir.path().join("data"),
            bin,
            dir,
            version,
            as_root,
        };
        run_ok(
            pg.command("initdb").arg("-D").arg(&pg.data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]),
            "initdb",
        )?;
        // Defaults are what a ministry gets from Debian's package, with two exceptions:
        // durability is stated rather than assumed (synchronous_commit, fsync and
        // full_page_writes are on, as by default), and shared_buffers is 256 MB instead of
        // 128 MB, to match the node's sled cache of 256 MiB. No TCP: only the socket.
        let options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c synchronous_commit=on -c fsync=on -c full_page_writes=on -c shared_buffers=256MB",
            pg.dir.path().display()
        );
        run_ok(
            pg.command("pg_ctl")
                .arg("-D")
                .arg(&pg.data)
                .arg("-l")
                .arg(pg.dir.path().join("postgres.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]),
            "pg_ctl start",
        )
        .with_context(|| {
            std::fs::read_to_string(pg.dir.path().join("postgres.log")).unwrap_or_default()
        })?;
        run_ok(
            Command::new(pg.bin.join("createdb"))
                .arg("-h")
                .arg(pg.dir.path())
                .args(["-U", "postgres", DATABASE]),
            "createdb",
        )?;
        Ok(pg)
    }

    /// The libpq connection string of the cluster's database.
    fn connection(&self) -> String {
        format!(
            "host={} user=postgres dbname={DATABASE}",
            self.dir.path().display()
        )
    }
}

fn command_as(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let stopped = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            eprintln!(
                "warning: could not stop the baseline's PostgreSQL in {}",
                self.data.display()
            );
        }
    }
}

/// `huren-baseline` running over the cluster, killed when dropped.
struct Service {
    child: Child,
    url: String,
}

impl Service {
    fn start(run: &Run, pg: &Postgres) -> anyhow::Result<Service> {
        use std::io::BufRead;
        let exe = std::env::current_exe()?.with_file_name("huren-baseline");
        anyhow::ensure!(
            exe.is_file(),
            "{} is missing: build it with the benchmark (cargo build --bin huren-baseline)",
            exe.display()
        );
        let key = huren_genesis::keys::issuer_key_path(&run.net.keys, "gd.transport");
        let mut child = Command::new(&exe)
            .arg("--postgres")
            .arg(pg.connection())
            .arg("--genesis")
            .arg(&run.net.genesis)
            .arg("--key-file")
            .arg(&key)
            .args(["--token", huren_tests::TOKEN])
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stdout = child.stdout.take().context("its stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let service = Service {
            child,
            url: line.trim().to_owned(),
        };
        anyhow::ensure!(
            service.url.starts_with("http://"),
            "huren-baseline said {line:?}"
        );
        Ok(service)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The baseline's figures, measured as the one-node phase measures Huren's.
pub(crate) struct Baseline {
    database: String,
    bulk_licences: u64,
    bulk_per_s: f64,
    verify: Load,
    disk_licences: u64,
    disk_bytes: u64,
}

impl Baseline {
    fn disk_bytes_per_licence(&self) -> f64 {
        self.disk_bytes as f64 / self.disk_licences.max(1) as f64
    }

    /// The figures and Huren ÷ baseline for each, given Huren's bulk-import rate,
    /// fast-path verify rate and issuing node's bytes per licence. Every ratio reads the
    /// same way: above 1 Huren does better. For disk that is baseline ÷ Huren bytes.
    /// `huren_verify` is the fast path (what Huren answers for a licence on its ledger);
    /// `huren_signature` the signature path, which checks a signature per verify as the
    /// baseline does.
    pub(crate) fn json(
        &self,
        huren_bulk: f64,
        huren_verify: f64,
        huren_signature: f64,
        huren_disk: f64,
    ) -> Value {
        let v = &self.verify;
        let disk = self.disk_bytes_per_licence();
        json!({
            "database": self.database,
            "issue_bulk": {"per_s": self.bulk_per_s, "licences": self.bulk_licences},
            "verify": {"per_s": v.per_s(), "p50_ms": v.p50_ms, "p99_ms": v.p99_ms, "client_cpu_share": v.client_cpu_share},
            "disk_licences": self.disk_licences,
            "disk_bytes": self.disk_bytes,
            "disk_bytes_per_licence": disk,
            "ratios": {
                "durable_issuance": huren_bulk / self.bulk_per_s,
                "verify": huren_verify / v.per_s(),
                "verify_signature_path": huren_signature / v.per_s(),
                "disk": disk / huren_disk,
                "target": "≥ 1.0",
            },
        })
    }
}

/// The baseline against Huren's figures in `results.json` (`r`), as a table for
/// results.md; `f` formats a number as the rest of the report does.
pub(crate) fn markdown(r: &Value, f: &dyn Fn(&Value) -> String) -> String {
    let b = &r["baseline"];
    if let Some(e) = b["error"].as_str() {
        return format!("\nCentral-database baseline: not measured ({e}).\n");
    }
    let (o, s, q) = (&r["one_node"], &r["scale"], &b["ratios"]);
    format!(
        "\nCentral-database baseline ({}, bench/baseline): the same bulk import, verify load and ledger size against one PostgreSQL database (synchronous_commit = on) behind a minimal axum service that signs each credential and checks each verify's signature. Ratios are Huren ÷ baseline, so above 1 Huren does better; for disk, baseline bytes ÷ Huren bytes.\n\n| figure | Huren | baseline | ratio | target |\n|---|---|---|---|---|\n| durable issuance, bulk import /s | {} | {} | {} | ≥ 1.0 |\n| verify /s (Huren: fast path), concurrency 64 | {} | {} | {} | ≥ 1.0 |\n| verify /s, Huren's signature path (a signature checked per verify on both sides) | {} | {} | {} | – |\n| verify p99 ms | {} | {} | – | – |\n| disk bytes/licence (Huren: issuing node), at {} licences | {} | {} | {} | ≥ 1.0 |\n",
        b["database"].as_str().unwrap_or("?"),
        f(&o["issue_bulk"]["per_s"]),
        f(&b["issue_bulk"]["per_s"]),
        f(&q["durable_issuance"]),
        f(&o["verify_fast_path"]["per_s"]),
        f(&b["verify"]["per_s"]),
        f(&q["verify"]),
        f(&o["verify_signature_path"]["per_s"]),
        f(&b["verify"]["per_s"]),
        f(&q["verify_signature_path"]),
        f(&o["verify_fast_path"]["p99_ms"]),
        f(&b["verify"]["p99_ms"]),
        b["disk_licences"],
        f(&s["large"]["disk_bytes_per_licence"]),
        f(&b["disk_bytes_per_licence"]),
        f(&q["disk"]),
    )
}

/// The one-node phase's work against the baseline: 10,000 licences imported (2,000 of
/// their QR texts kept, as for Huren's fast path), then `bulk_licences` timed, then the
/// verify load on the kept licences (same generator, seconds, concurrency 64), then more
/// licences to `ledger_licences` (Huren's large ledger) and the table's size.
pub(crate) async fn measure(
    run: &Run,
    bulk_licences: u64,
    ledger_licences: u64,
) -> anyhow::Result<Baseline> {
    run.section("central-database baseline (PostgreSQL)");
    let pg = Postgres::start()?;
    eprintln!("{}, cluster in {}", pg.version, pg.dir.path().display());
    let service = Service::start(run, &pg)?;
    let (http, url) = (&run.http, service.url.as_str());
    wait_for(30, "huren-baseline to answer /healthz", || async move {
        aget(http, &format!("{url}/healthz")).await.is_ok()
    })
    .await?;
    let generator = Generator::detect(run.net.dir.path());
    let first = 10_000;
    let (qrs, _) = bulk_import(http, url, 0, first, 2_000).await?;
    let (_, bulk_per_s) = bulk_import(http, url, 60_000_000, bulk_licences, 0).await?;
    eprintln!("baseline: bulk import {bulk_per_s:.0}/s");
    let verify = verify_load(&generator, http, url, Arc::new(qrs), run.secs, 64).await?;
    eprintln!(
        "baseline: verify {:.0}/s (p99 {:.2} ms)",
        verify.per_s(),
        verify.p99_ms
    );
    let mut have = first + bulk_licences;
    while have < ledger_licences {
        let n = (ledger_licences - have).min(100_000);
        bulk_import(http, url, 100_000_000 + have, n, 0).await?;
        have += n;
    }
    let size = aget(http, &format!("{url}/size")).await?;
    let disk_bytes = size["bytes"].as_u64().context("/size bytes")?;
    let disk_licences = size["rows"].as_u64().context("/size rows")?;
    eprintln!(
        "baseline: {disk_licences} licences in {disk_bytes} bytes ({:.0} bytes/licence)",
        disk_bytes as f64 / disk_licences.max(1) as f64
    );
    drop(service);
    let database = pg.version.clone();
    drop(pg);
    Ok(Baseline {
        database,
        bulk_licences,
        bulk_per_s,
        verify,
        disk_licences,
        disk_bytes,
    })
}
