//! huren-chaos: fault drills that cut real links (issue 11, part B), seed after seed.
//!
//! Each seed draws a scenario (printed before it runs: clock offsets, slow links,
//! partitions, links down, kills, revocation times) and runs the example network's six
//! nodes through it in network namespaces (or on loopback where namespaces cannot be
//! made), then checks what they left. `scripts/chaos.sh` builds and runs it; see
//! docs/chaos.md.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use huren_tests::chaos::{self, lab::LabChoice, Options};

#[derive(Parser)]
#[command(about = "Run seeded fault drills against real huren-node processes")]
struct Args {
    /// Run this many seeds, from --first on.
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    first: u64,
    /// Run exactly these seeds (repeatable; overrides --seeds/--first), e.g. to replay one.
    #[arg(long = "seed")]
    seed: Vec<u64>,
    /// How long load and faults run per seed, in seconds.
    #[arg(long, default_value_t = 20)]
    phase_secs: u64,
    /// netns, loopback or auto (default: HUREN_CHAOS_LAB, else auto).
    #[arg(long)]
    lab: Option<String>,
    /// Where each seed's plan and node logs go (kept for failed seeds).
    #[arg(long, default_value = "target/chaos")]
    out: PathBuf,
    /// Keep the logs of passing seeds too.
    #[arg(long)]
    keep_logs: bool,
    /// Print only one line per seed.
    #[arg(long)]
    quiet: bool,
    /// Instead of the drawn faults, one partition of the two regions lasting this many
    /// seconds (the fault phase is made long enough).
    #[arg(long)]
    long_partition_secs: Option<u64>,
    /// Print the seeds' plans and exit, running nothing.
    #[arg(long)]
    plan_only: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut opts = Options::new(Duration::from_secs(args.phase_secs), args.out.clone())?;
    if let Some(l) = &args.lab {
        opts.lab = LabChoice::parse(l)?;
    }
    opts.keep_logs = args.keep_logs;
    opts.verbose = !args.quiet;
    if opts.lab == LabChoice::Auto {
        if let Err(why) = chaos::netns::probe() {
            println!(
                "huren-chaos: network namespaces are not available here ({why}); the drills \
                 fall back to loopback faults (kill, restart, a relay that drops connections)"
            );
        }
    }
    let seeds: Vec<u64> = if args.seed.is_empty() {
        (args.first..args.first + args.seeds).collect()
    } else {
        args.seed.clone()
    };
    let plan = |seed: u64| match args.long_partition_secs {
        Some(s) => chaos::plan::Plan::long_partition(seed, Duration::from_secs(s)),
        None => chaos::plan::Plan::draw(seed, opts.phase),
    };
    if args.plan_only {
        for &seed in &seeds {
            print!("{}", plan(seed));
        }
        return Ok(());
    }
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for &seed in &seeds {
        match chaos::run_plan(&plan(seed), &opts) {
            Ok(o) => {
                if opts.verbose || !o.passed() {
                    print!("{}", o.report());
                } else {
                    println!("{}", o.summary());
                }
                outcomes.push(Ok(o));
            }
            Err(e) => {
                println!("seed {seed:>4}: HARNESS ERROR {e:#}");
                outcomes.push(Err((seed, format!("{e:#}"))));
            }
        }
    }
    println!(
        "\n== huren-chaos: {} seeds in {:.0} s ==",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    let mut all = Vec::new();
    let mut settled = Vec::new();
    let (mut pass, mut fail) = (Vec::new(), Vec::new());
    for o in &outcomes {
        match o {
            Ok(o) => {
                println!("{}", o.summary());
                all.extend(o.delays(false));
                settled.extend(o.delays(true));
                if o.passed() {
                    pass.push(o.seed);
                } else {
                    fail.push(o.seed);
                }
            }
            Err((seed, e)) => {
                println!("seed {seed:>4}: HARNESS ERROR {e}");
                fail.push(*seed);
            }
        }
    }
    let fmt = |d: Option<Duration>| d.map_or("–".into(), |d| format!("{:.3} s", d.as_secs_f64()));
    println!(
        "passed {} of {}; failed seeds: {:?}",
        pass.len(),
        seeds.len(),
        fail
    );
    println!(
        "revocation arrival at connected nodes: n={} p50 {} p99 {} max {}; pairs connected ≥ 3 s before: n={} p99 {} (goal {} s)",
        all.len(),
        fmt(chaos::percentile(&all, 50.0)),
        fmt(chaos::percentile(&all, 99.0)),
        fmt(all.iter().max().copied()),
        settled.len(),
        fmt(chaos::percentile(&settled, 99.0)),
        chaos::PROPAGATION_GOAL.as_secs()
    );
    if !fail.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
