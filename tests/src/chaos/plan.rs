//! A scenario drawn from a seed: which nodes run with a clock offset or behind a slow,
//! lossy link, which faults happen when and for how long, how fast each department
//! issues, and when revocations are made. The same seed always draws the same plan (rand
//! is pinned in the workspace, and `StdRng` is deterministic for one rand version).
//!
//! The plan is what is replayable; the interleaving of real processes under it is not.
//! It must never draw anything the checks cannot judge: every fault ends inside the
//! fault phase, and clock offsets of one scenario all point the same way, so that no two
//! nodes are further apart than the tolerated block-time skew.

use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// The nodes of every scenario: the example network's five departments and its observer.
/// The Guangdong nodes play the western region, whose links are the slow ones.
pub const NODES: [&str; 6] = [
    "gd.transport",
    "gd.market",
    "gd.health",
    "sh.transport",
    "sh.market",
    "sh.observer",
];

/// The clock offset drawn for a skewed node, in minutes (issue 11: ±10 minutes).
pub const CLOCK_OFFSET_MIN: i32 = 10;

/// Shortest and longest fault phase a plan may ask for.
pub const PHASE_SECS_MIN: u64 = 8;
pub const PHASE_SECS_MAX: u64 = 600;

/// How one node's links are slowed, emulated by the harness's relay: every byte the node
/// exchanges with a peer is held for `delay` (one way) ± `jitter`, and a segment that is
/// "lost" (with probability `loss_pct` %) arrives one TCP retransmission timeout late,
/// as it would over a lossy path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    pub delay: Duration,
    pub jitter: Duration,
    pub loss_pct: f64,
}

impl Impairment {
    /// The extra time one segment takes: delay, jitter, and for each loss (a geometric
    /// number of them) one retransmission timeout, doubling as TCP backs off.
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        let jitter_ms = self.jitter.as_secs_f64() * 1000.0;
        let base_ms = self.delay.as_secs_f64() * 1000.0 + rng.gen_range(-jitter_ms..=jitter_ms);
        // Linux: RTO = srtt + 4 rttvar, at least 200 ms.
        let mut rto_ms = (2.0 * self.delay.as_secs_f64() * 1000.0 + 4.0 * jitter_ms).max(200.0);
        let mut penalty_ms = 0.0;
        // Bounded: a segment lost eight times in a row would have killed the connection.
        for _ in 0..8 {
            if !rng.gen_bool((self.loss_pct / 100.0).clamp(0.0, 1.0)) {
                break;
            }
            penalty_ms += rto_ms;
            rto_ms *= 2.0;
        }
        Duration::from_secs_f64((base_ms.max(0.0) + penalty_ms) / 1000.0)
    }
}

/// One node of the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePlan {
    pub name: &'static str,
    /// Added to the node's wall clock for its whole life (restarts too), in minutes.
    pub clock_offset_min: i32,
    /// Its links to every peer go through the relay, slowed so.
    pub impaired: Option<Impairment>,
    /// How often its officers issue; `None` for the observer.
    pub issue_every: Option<Duration>,
}

/// What a fault does while it lasts.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// `a` and `b` cannot reach each other; `one_way`: only `a`'s packets to `b` are
    /// dropped, `b`'s still arrive.
    Partition {
        a: Vec<usize>,
        b: Vec<usize>,
        one_way: bool,
    },
    /// The node's link is down: nothing in or out, the API included.
    Isolate(usize),
    /// SIGKILL, and a restart (same data directory, same config) when it ends.
    Kill(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// From the start of the fault phase.
    pub at: Duration,
    pub lasts: Duration,
    pub kind: FaultKind,
}

impl Fault {
    pub fn ends(&self) -> Duration {
        self.at + self.lasts
    }
}

/// A whole scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub seed: u64,
    /// Load, revocations and faults run this long; then everything heals and the checks run.
    pub phase: Duration,
    pub nodes: Vec<NodePlan>,
    /// In order of `at`.
    pub faults: Vec<Fault>,
    /// When a revocation is made (of a licence acknowledged by then), from the phase start.
    pub revocations: Vec<Duration>,
}

fn ms(rng: &mut StdRng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.gen_range(lo..=hi))
}

impl Plan {
    /// Draws the scenario of `seed` with a fault phase of `phase` (clamped to
    /// [`PHASE_SECS_MIN`, `PHASE_SECS_MAX`] seconds).
    pub fn draw(seed: u64, phase: Duration) -> Self {
        let phase = phase.clamp(
            Duration::from_secs(PHASE_SECS_MIN),
            Duration::from_secs(PHASE_SECS_MAX),
        );
        let mut rng = StdRng::seed_from_u64(seed);
        let n = NODES.len();
        let mut nodes: Vec<NodePlan> = NODES
            .iter()
            .map(|&name| NodePlan {
                name,
                clock_offset_min: 0,
                impaired: None,
                issue_every: (!name.contains("observer")).then(|| ms(&mut rng, 80, 250)),
            })
            .collect();
        // Clock offsets: one direction per scenario (see the module doc).
        if rng.gen_bool(0.6) {
            let sign = if rng.gen_bool(0.5) { 1 } else { -1 };
            let count = rng.gen_range(1..=2);
            for i in rand::seq::index::sample(&mut rng, n, count).into_iter() {
                nodes[i].clock_offset_min = sign * CLOCK_OFFSET_MIN;
            }
        }
        // A western (Guangdong) node behind a slow, lossy link: 200–300 ms RTT, 2–5 % loss.
        if rng.gen_bool(0.6) {
            let west: Vec<usize> = (0..n).filter(|&i| NODES[i].starts_with("gd.")).collect();
            let i = *west
                .choose(&mut rng)
                .expect("the example network has western nodes");
            nodes[i].impaired = Some(Impairment {
                delay: ms(&mut rng, 100, 150),
                jitter: ms(&mut rng, 5, 40),
                loss_pct: f64::from(rng.gen_range(2u32..=5)),
            });
        }
        let phase_ms = phase.as_millis() as u64;
        // Faults start after the first second and end by the end of the phase.
        let window = |rng: &mut StdRng| {
            let at = ms(rng, 1000, phase_ms.saturating_sub(3000).max(1000));
            let lasts = ms(rng, 2000, 8000).min(phase.saturating_sub(at));
            (at, lasts)
        };
        let mut faults = Vec::new();
        for _ in 0..rng.gen_range(1..=3) {
            let (at, lasts) = window(&mut rng);
            let (a, b) = if rng.gen_bool(0.3) {
                // The two regions apart.
                (0..n).partition(|&i| NODES[i].starts_with("gd."))
            } else {
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut rng);
                let cut = rng.gen_range(1..n);
                let (a, b) = order.split_at(cut);
                let (mut a, mut b) = (a.to_vec(), b.to_vec());
                a.sort_unstable();
                b.sort_unstable();
                (a, b)
            };
            let one_way = rng.gen_bool(0.3);
            faults.push(Fault {
                at,
                lasts,
                kind: FaultKind::Partition { a, b, one_way },
            });
        }
        if rng.gen_bool(0.4) {
            let (at, lasts) = window(&mut rng);
            faults.push(Fault {
                at,
                lasts,
                kind: FaultKind::Isolate(rng.gen_range(0..n)),
            });
        }
        for _ in 0..rng.gen_range(1..=2) {
            let (at, lasts) = window(&mut rng);
            let node = rng.gen_range(0..n);
            // One kill of a node at a time: a second one while it is down would be no fault.
            let overlaps = faults
                .iter()
                .any(|f| f.kind == FaultKind::Kill(node) && f.at < at + lasts && at < f.ends());
            if !overlaps {
                faults.push(Fault {
                    at,
                    lasts,
                    kind: FaultKind::Kill(node),
                });
            }
        }
        faults.sort_by_key(|f| f.at);
        let mut revocations: Vec<Duration> = (0..rng.gen_range(4..=8))
            .map(|_| ms(&mut rng, 1500, phase_ms.saturating_sub(1000).max(1500)))
            .collect();
        revocations.sort_unstable();
        Self {
            seed,
            phase,
            nodes,
            faults,
            revocations,
        }
    }

    /// The scenario of `seed` (its load, offsets and slow link) with its faults replaced by
    /// one partition of the two regions lasting `lasts`, from 2 s into the phase: for
    /// asking how the network heals after a long cut, which the drawn plans (2–8 s cuts)
    /// do not.
    pub fn long_partition(seed: u64, lasts: Duration) -> Self {
        // The load stops at the heal: convergence is timed from the heal itself.
        let mut plan = Self::draw(seed, lasts + Duration::from_secs(2));
        let n = plan.nodes.len();
        let (a, b) = (0..n).partition(|&i| NODES[i].starts_with("gd."));
        plan.faults = vec![Fault {
            at: Duration::from_secs(2),
            lasts,
            kind: FaultKind::Partition {
                a,
                b,
                one_way: false,
            },
        }];
        plan
    }

    /// When the last fault ends (the last heal), from the phase start.
    pub fn last_heal(&self) -> Duration {
        self.faults
            .iter()
            .map(Fault::ends)
            .max()
            .unwrap_or_default()
    }

    fn names(&self, group: &[usize]) -> String {
        group
            .iter()
            .map(|&i| self.nodes[i].name)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: fault phase {:.0} s, {} nodes",
            self.seed,
            self.phase.as_secs_f64(),
            self.nodes.len()
        )?;
        for n in &self.nodes {
            write!(f, "  {:<13}", n.name)?;
            match n.issue_every {
                Some(d) => write!(f, " issues every {} ms", d.as_millis())?,
                None => write!(f, " observer")?,
            }
            if n.clock_offset_min != 0 {
                write!(f, ", clock {:+} min", n.clock_offset_min)?;
            }
            if let Some(i) = n.impaired {
                write!(
                    f,
                    ", slow link: {} ms RTT ± {} ms, {} % loss",
                    2 * i.delay.as_millis(),
                    i.jitter.as_millis(),
                    i.loss_pct
                )?;
            }
            writeln!(f)?;
        }
        for x in &self.faults {
            let (a, b) = (x.at.as_secs_f64(), x.ends().as_secs_f64());
            match &x.kind {
                FaultKind::Partition {
                    a: ga,
                    b: gb,
                    one_way,
                } => writeln!(
                    f,
                    "  {a:5.1}–{b:5.1} s  partition {} {} {}",
                    self.names(ga),
                    if *one_way { "-/->" } else { "<-/->" },
                    self.names(gb)
                )?,
                FaultKind::Isolate(i) => {
                    writeln!(f, "  {a:5.1}–{b:5.1} s  link down {}", self.nodes[*i].name)?
                }
                FaultKind::Kill(i) => writeln!(
                    f,
                    "  {a:5.1}–{b:5.1} s  SIGKILL {}, restart at the end",
                    self.nodes[*i].name
                )?,
            }
        }
        let revs: Vec<String> = self
            .revocations
            .iter()
            .map(|t| format!("{:.1}", t.as_secs_f64()))
            .collect();
        writeln!(f, "  revocations at {} s", revs.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_plan_every_time() {
        for seed in 0..50 {
            let a = Plan::draw(seed, Duration::from_secs(20));
            assert_eq!(a, Plan::draw(seed, Duration::from_secs(20)));
            assert!(a.last_heal() <= a.phase, "{a}");
            let offsets: Vec<i32> = a.nodes.iter().map(|n| n.clock_offset_min).collect();
            assert!(
                !(offsets.contains(&CLOCK_OFFSET_MIN) && offsets.contains(&-CLOCK_OFFSET_MIN)),
                "offsets of both signs: {a}"
            );
        }
        assert_ne!(
            Plan::draw(1, Duration::from_secs(20)),
            Plan::draw(2, Duration::from_secs(20))
        );
    }
}
