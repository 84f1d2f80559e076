//! Fault drills that cut real links (issue 11, part B): a scenario drawn from a seed runs
//! the example network's six nodes under issuance load at every department and
//! revocations at random moments, while partitions (two-way and one-way), links set down,
//! SIGKILLs with restarts, slow lossy links and clock offsets happen to them; then every
//! fault heals and the checks run.
//!
//! - `plan`: the scenario drawn from a seed, printable and replayable.
//! - `lab`: where the nodes run: a network namespace each (`netns`, faults as blackhole
//!   routes and links down, below the process) or the loopback fallback, and `apply`,
//!   which makes the network what the current faults say, live.
//! - `relay`: the userspace TCP relay for slow links (and the fallback's partitions).
//! - `load`: issuance, revocations, acknowledged records, revocation arrival times.
//! - `checks`: convergence of heads, then every data directory read back.
//!
//! The checks, after the last heal: heads identical on every node within
//! [`CONVERGENCE_MAX`]; every acknowledged issuance and revocation in the block its
//! answer named, on every node; the same block at every height of every chain on every
//! node, and no equivocation evidence; `huren-node check` passing on every data
//! directory; every node stopping cleanly on SIGTERM; every revocation reaching every
//! node connected to its issuer (arrival times measured and reported; the goal is 2 s,
//! reported, never asserted).
//!
//! A scenario never outlives its lab: namespaces, veths, relays and processes go when
//! `run_plan` returns or unwinds.

pub mod checks;
pub mod lab;
pub mod load;
pub mod netns;
pub mod plan;
pub mod relay;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::{Launch, NodeProcess, TestNetwork};
use lab::{Lab, LabChoice, Topology};
use load::{Arrival, Record, World};
use plan::{FaultKind, Plan};

/// Heads must be identical everywhere this long after the last heal (issue 11).
pub const CONVERGENCE_MAX: Duration = Duration::from_secs(10);
/// The goal for a revocation to reach every connected node (reported, not asserted).
pub const PROPAGATION_GOAL: Duration = Duration::from_secs(2);

/// Where libfaketime is looked for (Debian's `faketime` package); `HUREN_FAKETIME_LIB`
/// names another.
const FAKETIME_LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
];

/// libfaketime's preload library, if installed.
pub fn faketime_lib() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HUREN_FAKETIME_LIB") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    FAKETIME_LIBS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The environment that shifts a process's wall clock by `minutes` with libfaketime.
/// Only the wall clock: CLOCK_MONOTONIC (tokio's timers, the node's `Instant`s) stays
/// real, as it does when an operator's clock is wrong.
fn clock_env(lib: &Path, minutes: i32) -> Vec<(OsString, OsString)> {
    vec![
        ("LD_PRELOAD".into(), lib.as_os_str().to_owned()),
        ("FAKETIME".into(), format!("{minutes:+}m").into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        // The offset is fixed for the process's life: no need to re-read it.
        ("FAKETIME_NO_CACHE".into(), "0".into()),
    ]
}

/// How scenarios run.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long load and faults run before the final heal.
    pub phase: Duration,
    pub lab: LabChoice,
    /// Each scenario's plan and node logs go to `<out>/seed-<seed>/`, kept when it fails.
    pub out: PathBuf,
    pub keep_logs: bool,
    /// RUST_LOG for the nodes.
    pub node_log: String,
    /// Print the plan and progress to stdout.
    pub verbose: bool,
}

impl Options {
    pub fn new(phase: Duration, out: PathBuf) -> anyhow::Result<Self> {
        Ok(Self {
            phase,
            lab: LabChoice::from_env()?,
            out,
            keep_logs: false,
            node_log: std::env::var("HUREN_CHAOS_NODE_LOG").unwrap_or_else(|_| "info".into()),
            verbose: true,
        })
    }
}

/// What one scenario did and found.
#[derive(Debug)]
pub struct Outcome {
    pub seed: u64,
    pub plan: String,
    pub lab: String,
    /// Why the lab fell back, or what could not be applied (clock offsets without
    /// libfaketime).
    pub notes: Vec<String>,
    pub failures: Vec<String>,
    pub issued: usize,
    pub revoked: usize,
    pub arrivals: Vec<Arrival>,
    /// From the last heal (or the end of load, if later) to identical heads.
    pub convergence: Option<Duration>,
    pub refusals: BTreeMap<String, u64>,
    pub revocations_skipped: u64,
    /// The kept logs, when the scenario failed or `keep_logs`.
    pub logs: Option<PathBuf>,
    pub elapsed: Duration,
}

/// The `p`-th percentile (0–100, nearest rank) of `v`.
pub fn percentile(v: &[Duration], p: f64) -> Option<Duration> {
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s.get(rank.clamp(1, s.len().max(1)) - 1).copied()
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("–".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn delays(&self, settled_only: bool) -> Vec<Duration> {
        self.arrivals
            .iter()
            .filter(|a| a.settled || !settled_only)
            .map(|a| a.delay)
            .collect()
    }

    /// One line: verdict, counts, convergence and revocation arrival times.
    pub fn summary(&self) -> String {
        let all = self.delays(false);
        format!(
            "seed {:>4}: {}  {:>4} issued, {:>2} revoked; heads identical {} after the last heal (or end of load); \
             revocation arrival p50 {} p99 {} max {} (n={}){}",
            self.seed,
            if self.passed() { "PASS" } else { "FAIL" },
            self.issued,
            self.revoked,
            secs(self.convergence),
            secs(percentile(&all, 50.0)),
            secs(percentile(&all, 99.0)),
            secs(all.iter().max().copied()),
            all.len(),
            if self.passed() {
                String::new()
            } else {
                format!("  ({} failures)", self.failures.len())
            }
        )
    }

    /// The summary, the plan, the notes, the failures and what was refused.
    pub fn report(&self) -> String {
        let mut s = format!("{}\n  lab: {}\n", self.summary(), self.lab);
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        s.push_str(&self.plan);
        let _ = writeln!(
            s,
            "  answers other than success: {:?}; revocations skipped (no department answered): {}",
            self.refusals, self.revocations_skipped
        );
        for f in &self.failures {
            let _ = writeln!(s, "  FAILED: {f}");
        }
        if let Some(l) = &self.logs {
            let _ = writeln!(s, "  logs: {}", l.display());
        }
        s
    }
}

/// Draws the plan of `seed` and runs it.
pub fn run(seed: u64, opts: &Options) -> anyhow::Result<Outcome> {
    run_plan(&Plan::draw(seed, opts.phase), opts)
}

/// How long after a partition begins its probe takes the first look: blocks already on
/// their way when the cut came (in a socket buffer, or held by the relay of a slow link)
/// may still arrive until then.
const PROBE_GRACE: Duration = Duration::from_millis(1500);

/// The harness checking itself: a partition of `a` from `b` (both ways or one way, `a`'s
/// packets to `b` are dropped) must stop `b` from learning anything new of `a`'s chains
/// between `from` and `to` while `a` goes on issuing. The view of `b` is the highest
/// height any of its nodes holds. The probe only judges when every node of `b` answered
/// both looks (a node of `b` that was down or cut off at the first look could come back
/// with what it knew before the partition); otherwise it says it could not judge. Other
/// faults beginning or ending in between cannot open this partition's cut.
#[allow(clippy::too_many_arguments)]
fn probe_partition(
    k: usize,
    names: &[&str],
    a: &[usize],
    b: &[usize],
    urls: &[String],
    from: Instant,
    to: Instant,
    end: Instant,
    record: &Record,
) -> String {
    let http = load::http(Duration::from_secs(2));
    // department of a → (highest height a's own node holds, highest height b holds), and
    // whether every node of b that is up answered.
    let look = |at: Instant| {
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        let mut view: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut complete = true;
        // The cut-off side first: its look must end before the partition does.
        let mut b_done = Instant::now();
        for (group, side) in [(b, 1), (a, 0)] {
            if side == 0 {
                b_done = Instant::now();
            }
            for &i in group {
                let heads = checks::heads_at(&http, &urls[i]);
                if side == 1 && heads.is_err() {
                    complete = false;
                }
                for (dept, height, _) in heads.unwrap_or_default() {
                    let is_a = a.iter().any(|&j| names[j] == dept);
                    if !is_a || (side == 0 && names[i] != dept) {
                        continue;
                    }
                    let e = view.entry(dept).or_default();
                    if side == 0 {
                        e.0 = e.0.max(height);
                    } else {
                        e.1 = e.1.max(height);
                    }
                }
            }
        }
        (view, complete, b_done)
    };
    let (before, complete_before, _) = look(from);
    let (after, complete_after, b_done) = look(to);
    if !complete_before || !complete_after {
        return "could not judge (a node of the cut-off side did not answer)".into();
    }
    if b_done >= end {
        return "could not judge (the nodes answered after the partition ended)".into();
    }
    let mut seen_text = Vec::new();
    for (dept, &(own, seen)) in &after {
        let Some(&(own0, seen0)) = before.get(dept) else {
            continue;
        };
        seen_text.push(format!(
            "{dept} own #{own0}→#{own}, other side #{seen0}→#{seen}"
        ));
        if seen > seen0 && own > own0 {
            record.failures.lock().expect("record lock").push(format!(
                "harness: partition {k} did not cut: the other side learned {dept} #{seen0} → #{seen} \
                 while it lasted"
            ));
        }
    }
    seen_text.join("; ")
}

/// The topology the active faults make.
fn topology(plan: &Plan, active: &BTreeSet<usize>) -> Topology {
    let mut t = Topology {
        nodes: plan.nodes.len(),
        ..Topology::default()
    };
    for &k in active {
        match &plan.faults[k].kind {
            FaultKind::Partition { a, b, one_way } => {
                for &i in a {
                    for &j in b {
                        t.cuts.insert((i, j));
                        if !one_way {
                            t.cuts.insert((j, i));
                        }
                    }
                }
            }
            FaultKind::Isolate(i) => {
                t.isolated.insert(*i);
            }
            FaultKind::Kill(i) => {
                t.dead.insert(*i);
            }
        }
    }
    t
}

/// The node processes of a scenario, with what it takes to restart each.
struct Nodes {
    procs: Vec<Option<NodeProcess>>,
    configs: Vec<PathBuf>,
    launches: Vec<Launch>,
}

impl Nodes {
    fn start_all(configs: Vec<PathBuf>, launches: Vec<Launch>) -> anyhow::Result<Self> {
        let started: Vec<anyhow::Result<NodeProcess>> = std::thread::scope(|s| {
            let handles: Vec<_> = configs
                .iter()
                .zip(&launches)
                .map(|(c, l)| s.spawn(move || NodeProcess::start_with(c, l)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("start panicked")))
                })
                .collect()
        });
        let mut procs = Vec::new();
        for (p, c) in started.into_iter().zip(&configs) {
            procs.push(Some(
                p.with_context(|| format!("starting {}", c.display()))?,
            ));
        }
        Ok(Self {
            procs,
            configs,
            launches,
        })
    }

    fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(p) = self.procs[i].take() {
            p.kill9()?;
        }
        Ok(())
    }

    fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        if self.procs[i].is_none() {
            self.procs[i] = Some(NodeProcess::start_with(
                &self.configs[i],
                &self.launches[i],
            )?);
        }
        Ok(())
    }
}

/// What a run collects as it goes: failures, notes, and the diagnosis kept with a failed
/// seed's logs.
struct Findings {
    failures: Vec<String>,
    notes: Vec<String>,
    diagnosis: String,
}

/// Sets the load's stop flags when dropped, so that an early return (a harness error)
/// never leaves load threads running.
struct StopOnDrop(Vec<Arc<AtomicBool>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        for f in &self.0 {
            f.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs `plan` and checks what it left. `Err` only when the harness itself could not run
/// (a lab that cannot be built, a node that does not start at all); what the nodes did
/// wrong is in `Outcome::failures`.
pub fn run_plan(plan: &Plan, opts: &Options) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let plan_text = plan.to_string();
    if opts.verbose {
        print!("{plan_text}");
    }
    let dir = opts.out.join(format!("seed-{}", plan.seed));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("plan.txt"), &plan_text)?;

    let net = TestNetwork::new()?;
    let network = net.network()?;
    let mut lab = Lab::new(opts.lab, plan, peer_ids(plan, &network)?)?;
    let mut found = Findings {
        failures: Vec::new(),
        notes: lab.note.iter().cloned().collect(),
        diagnosis: String::new(),
    };
    let faketime = faketime_lib();
    if faketime.is_none() && plan.nodes.iter().any(|p| p.clock_offset_min != 0) {
        found.notes.push(
            "clock offsets not applied: libfaketime is not installed (Debian package faketime)"
                .into(),
        );
    }
    let lab_text = lab.describe();
    if opts.verbose {
        println!("  lab: {lab_text}");
        for note in &found.notes {
            println!("  note: {note}");
        }
    }
    let (configs, launches) = configure(plan, opts, &net, &lab, faketime.as_deref(), &dir)?;
    let mut nodes = Nodes::start_all(configs, launches)?;
    let urls: Vec<String> = (0..plan.nodes.len()).map(|i| lab.api_url(i)).collect();

    // Load and revocations.
    let world = Arc::new(World::new(plan.nodes.len()));
    let record = Arc::new(Record::default());
    let stop_issuing = Arc::new(AtomicBool::new(false));
    let stop_revoking = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(vec![stop_issuing.clone(), stop_revoking.clone()]);
    let t0 = Instant::now();
    let mut loaders = Vec::new();
    for (i, p) in plan.nodes.iter().enumerate() {
        if let Some(every) = p.issue_every {
            let (dept, url, stop, rec) = (
                p.name.to_owned(),
                urls[i].clone(),
                stop_issuing.clone(),
                record.clone(),
            );
            loaders.push(std::thread::spawn(move || {
                load::issue_loop(i, dept, url, every, stop, rec)
            }));
        }
    }
    let revoker = {
        let (urls, world, stop, rec) = (
            urls.clone(),
            world.clone(),
            stop_revoking.clone(),
            record.clone(),
        );
        let departments: Vec<Option<String>> = plan
            .nodes
            .iter()
            .map(|p| p.issue_every.map(|_| p.name.to_owned()))
            .collect();
        let (seed, times) = (plan.seed, plan.revocations.clone());
        std::thread::spawn(move || {
            load::revoke_and_watch(seed, t0, times, urls, departments, world, stop, rec)
        })
    };
    let probes = start_probes(plan, t0, &urls, &record);

    let last_heal = drive_faults(plan, opts, t0, &mut lab, &mut nodes, &world, &mut found)?;
    std::thread::sleep((t0 + plan.phase).saturating_duration_since(Instant::now()));
    stop_issuing.store(true, Ordering::Relaxed);
    for l in loaders {
        let _ = l.join();
    }
    let quiet = last_heal.max(Instant::now());
    let (convergence, agreed) = await_agreement(plan, t0, quiet, &urls, &mut found);
    stop_revoking.store(true, Ordering::Relaxed);
    let _ = revoker.join();
    for (k, p) in probes {
        let seen = p.join().unwrap_or_default();
        if opts.verbose {
            println!("  probe of partition {k}: {seen}");
        }
    }
    found
        .failures
        .extend(record.failures.lock().expect("record lock").drain(..));

    let issued = record.issued.lock().expect("record lock").clone();
    let revoked = record.revoked.lock().expect("record lock").clone();
    stop_and_check(
        plan,
        nodes,
        lab,
        &net,
        &network,
        &issued,
        &revoked,
        agreed.as_ref(),
        &mut found,
    );

    let passed = found.failures.is_empty();
    let keep = !passed || opts.keep_logs;
    if keep {
        timeline(plan, t0, &issued, &revoked, &mut found.diagnosis);
    }
    let outcome = Outcome {
        seed: plan.seed,
        plan: plan_text,
        lab: lab_text,
        notes: found.notes,
        failures: found.failures,
        issued: issued.len(),
        revoked: revoked.len(),
        arrivals: record.arrivals.lock().expect("record lock").clone(),
        convergence,
        refusals: record.refusals.lock().expect("record lock").clone(),
        revocations_skipped: *record.revocations_skipped.lock().expect("record lock"),
        logs: keep.then(|| dir.clone()),
        elapsed: started.elapsed(),
    };
    if keep {
        // The outcome, what was acknowledged when, and every data directory.
        std::fs::write(dir.join("outcome.txt"), outcome.report())?;
        std::fs::write(dir.join("acks.txt"), &found.diagnosis)?;
        let _ = std::process::Command::new("cp")
            .arg("-a")
            .arg(net.0.dir.path())
            .arg(dir.join("network"))
            .status();
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(outcome)
}

/// The libp2p peer id of each of the plan's nodes, from genesis.
fn peer_ids(plan: &Plan, network: &huren_core::Network) -> anyhow::Result<Vec<String>> {
    let peers = network.peers();
    plan.nodes
        .iter()
        .map(|n| {
            peers
                .iter()
                .find(|(_, role)| match role {
                    huren_core::genesis::PeerRole::Department(d) => d.as_str() == n.name,
                    huren_core::genesis::PeerRole::Observer(o) => o == n.name,
                })
                .map(|(id, _)| id.clone())
                .with_context(|| format!("genesis names no node for {}", n.name))
        })
        .collect()
}

/// Writes every node's config (addresses and bootstrap list from the lab) and says how
/// each is launched (in its namespace, with its clock offset, logging to `dir`).
fn configure(
    plan: &Plan,
    opts: &Options,
    net: &TestNetwork,
    lab: &Lab,
    faketime: Option<&Path>,
    dir: &Path,
) -> anyhow::Result<(Vec<PathBuf>, Vec<Launch>)> {
    let mut configs = Vec::new();
    let mut launches = Vec::new();
    for (i, p) in plan.nodes.iter().enumerate() {
        configs.push(net.write_config(
            p.name,
            &huren_testkit::NodeOptions {
                bootstrap: Some(lab.bootstrap(i)),
                p2p_listen: Some(lab.p2p_listen(i)),
                api_listen: Some(lab.api_listen(i)),
                ..Default::default()
            },
        )?);
        let mut env: Vec<(OsString, OsString)> = vec![
            ("RUST_LOG".into(), opts.node_log.clone().into()),
            // Plain text in the log files.
            ("NO_COLOR".into(), "1".into()),
        ];
        if let (Some(lib), m) = (faketime, p.clock_offset_min) {
            if m != 0 {
                env.extend(clock_env(lib, m));
            }
        }
        launches.push(Launch {
            wrapper: lab.wrapper(i),
            env,
            log: Some(dir.join(format!("{}.log", p.name))),
        });
    }
    Ok((configs, launches))
}

/// Starts a probe for every partition long enough to judge (see `probe_partition`).
fn start_probes(
    plan: &Plan,
    t0: Instant,
    urls: &[String],
    record: &Arc<Record>,
) -> Vec<(usize, std::thread::JoinHandle<String>)> {
    let mut probes = Vec::new();
    for (k, f) in plan.faults.iter().enumerate() {
        if let FaultKind::Partition { a, b, .. } = &f.kind {
            if f.lasts >= PROBE_GRACE + Duration::from_secs(1) {
                let names: Vec<&'static str> = plan.nodes.iter().map(|p| p.name).collect();
                let (a, b, urls, rec) = (a.clone(), b.clone(), urls.to_vec(), record.clone());
                let (from, to, end) = (
                    t0 + f.at + PROBE_GRACE,
                    t0 + f.ends() - Duration::from_millis(500),
                    t0 + f.ends(),
                );
                probes.push((
                    k,
                    std::thread::spawn(move || {
                        probe_partition(k, &names, &a, &b, &urls, from, to, end, &rec)
                    }),
                ));
            }
        }
    }
    probes
}

/// Begins and ends every fault at its time (at equal times a fault ends before the next
/// begins); returns when the last one ended (the last heal).
fn drive_faults(
    plan: &Plan,
    opts: &Options,
    t0: Instant,
    lab: &mut Lab,
    nodes: &mut Nodes,
    world: &World,
    found: &mut Findings,
) -> anyhow::Result<Instant> {
    let mut steps: Vec<(Duration, bool, usize)> = Vec::new();
    for (k, f) in plan.faults.iter().enumerate() {
        steps.push((f.at, true, k));
        steps.push((f.ends(), false, k));
    }
    steps.sort_by_key(|&(t, start, k)| (t, start, k));
    let mut active = BTreeSet::new();
    let mut last_heal = t0;
    for (at, start, k) in steps {
        std::thread::sleep((t0 + at).saturating_duration_since(Instant::now()));
        let fault = &plan.faults[k];
        if start {
            active.insert(k);
            let t = topology(plan, &active);
            // The watcher stops measuring pairs before they are cut.
            world.set(t.clone());
            match fault.kind {
                FaultKind::Kill(i) => nodes.kill(i)?,
                _ => lab.apply(&t)?,
            }
        } else {
            active.remove(&k);
            let t = topology(plan, &active);
            match fault.kind {
                FaultKind::Kill(i) => {
                    if let Err(e) = nodes.restart(i) {
                        found
                            .failures
                            .push(format!("{} did not restart: {e:#}", plan.nodes[i].name));
                    }
                }
                _ => lab.apply(&t)?,
            }
            world.set(t);
            last_heal = Instant::now();
        }
        if opts.verbose {
            println!(
                "  {:5.1} s  {} fault {k}",
                t0.elapsed().as_secs_f64(),
                if start { "began" } else { "healed" }
            );
        }
    }
    Ok(last_heal)
}

/// Waits for identical heads on every node, at most `CONVERGENCE_MAX` after `quiet`;
/// returns how long it took and the heads they agreed on.
///
/// A request the client gave up on (a timeout) may still be carried out by its node after
/// the heads agreed: it looks again a moment later, and if a block came after all, it too
/// must reach every node within the bound.
fn await_agreement(
    plan: &Plan,
    t0: Instant,
    quiet: Instant,
    urls: &[String],
    found: &mut Findings,
) -> (Option<Duration>, Option<checks::Heads>) {
    let http = load::http(Duration::from_secs(3));
    let disagreement = |what: String, last: Vec<Result<checks::Heads, String>>| {
        let mut s = what;
        for (i, h) in last.iter().enumerate() {
            let _ = write!(s, "\n      {}: {:?}", plan.nodes[i].name, h);
        }
        s
    };
    let (at, first) = match checks::converge(&http, urls, quiet + CONVERGENCE_MAX) {
        Ok(agreed) => agreed,
        Err(last) => {
            found.failures.push(disagreement(
                format!(
                    "heads not identical {} s after the last heal and the end of load:",
                    CONVERGENCE_MAX.as_secs()
                ),
                last,
            ));
            return (None, None);
        }
    };
    let _ = writeln!(
        found.diagnosis,
        "heads identical at {:.3} s: {first:?}",
        at.saturating_duration_since(t0).as_secs_f64()
    );
    let convergence = Some(at.saturating_duration_since(quiet));
    let settled = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    match checks::converge(&http, urls, settled + CONVERGENCE_MAX) {
        Ok((_, heads)) if heads == first => (convergence, Some(first)),
        Ok((again, heads)) => {
            let _ = writeln!(
                found.diagnosis,
                "heads moved after they agreed (a late request); identical again at {:.3} s: {heads:?}",
                again.saturating_duration_since(t0).as_secs_f64()
            );
            found.notes.push(
                "a block was cut after the heads had agreed (a request the harness had given \
                 up on); the heads agreed again"
                    .into(),
            );
            (convergence, Some(heads))
        }
        Err(last) => {
            found.failures.push(disagreement(
                format!(
                    "heads agreed, then a block came (a request the harness had given up on) \
                     and the heads were not identical {} s later:",
                    CONVERGENCE_MAX.as_secs()
                ),
                last,
            ));
            (convergence, None)
        }
    }
}

/// Stops every node (each must exit cleanly), removes the lab, runs `huren-node check` on
/// every data directory and reads them all back (`checks::data_directories`).
#[allow(clippy::too_many_arguments)]
fn stop_and_check(
    plan: &Plan,
    mut nodes: Nodes,
    lab: Lab,
    net: &TestNetwork,
    network: &huren_core::Network,
    issued: &[load::Ack],
    revoked: &[load::Ack],
    agreed: Option<&checks::Heads>,
    found: &mut Findings,
) {
    for (i, p) in nodes.procs.iter_mut().enumerate() {
        if let Some(p) = p.take() {
            if let Err(e) = p.stop() {
                found.failures.push(format!(
                    "{} did not stop cleanly: {e:#}",
                    plan.nodes[i].name
                ));
            }
        }
    }
    drop(lab);
    for (i, c) in nodes.configs.iter().enumerate() {
        // Under the node's own clock, as its operator would run it.
        let env: Vec<_> = nodes.launches[i]
            .env
            .iter()
            .filter(|(k, _)| k != "RUST_LOG" && k != "NO_COLOR")
            .cloned()
            .collect();
        let name = plan.nodes[i].name;
        match crate::check_with(c, &env) {
            Ok((true, _)) => {}
            Ok((false, out)) => found
                .failures
                .push(format!("huren-node check failed on {name}: {}", out.trim())),
            Err(e) => found
                .failures
                .push(format!("huren-node check on {name}: {e:#}")),
        }
    }
    let names: Vec<&str> = plan.nodes.iter().map(|p| p.name).collect();
    let dirs: Vec<PathBuf> = names.iter().map(|n| net.path(n).join("data")).collect();
    let mut beyond = Vec::new();
    found.failures.extend(checks::data_directories(
        &names,
        &dirs,
        network,
        issued,
        revoked,
        agreed,
        &mut beyond,
    ));
    if !beyond.is_empty() {
        found.notes.push(format!(
            "blocks cut after the heads agreed (late requests), on some nodes only: {}",
            beyond.join("; ")
        ));
    }
}

/// Every acknowledgement in time order, for a failed seed's diagnosis.
fn timeline(
    plan: &Plan,
    t0: Instant,
    issued: &[load::Ack],
    revoked: &[load::Ack],
    out: &mut String,
) {
    let mut acks: Vec<(&str, &load::Ack)> = issued
        .iter()
        .map(|a| ("issue", a))
        .chain(revoked.iter().map(|a| ("revoke", a)))
        .collect();
    acks.sort_by_key(|(_, a)| a.at);
    for (kind, a) in acks {
        let _ = writeln!(
            out,
            "{:9.3} s  {kind:<6} {:<28} at {:<13} in {}#{} {}",
            a.at.saturating_duration_since(t0).as_secs_f64(),
            a.licence,
            plan.nodes[a.node].name,
            a.block.department,
            a.block.height,
            a.block.hash
        );
    }
}
