//! Network namespaces for the chaos harness: one per node, joined by veth pairs to a
//! bridge in a hub namespace of their own, so that faults happen below the process, as
//! they would in production: a blackhole route drops a node's packets to a peer and a
//! link set down takes the node off the network, while its live TCP connections stay
//! open and find out the hard way.
//!
//! Layout of one lab (X is the lab's number, 1–254, unique on the machine while it runs):
//!
//! ```text
//!   root namespace            hub namespace hzcX-hub        node namespace hzcX-n<i>
//!   hzcXh 10.77.X.1/24  ──veth──  hzcXhb ─┐
//!         (+ relay addresses              br0 ─── hzcXn<i>b ──veth── hzcXn<i> 10.77.X.(10+i)/24
//!          10.77.X.(100+k))  ─────────────┘
//! ```
//!
//! The test process (root namespace) reaches every node's API at its own address through
//! the bridge, and the harness's relay listens on extra addresses of `hzcXh`. Node
//! namespaces have no default route: a node can reach the lab's /24 and its own loopback,
//! nothing else, so no traffic leaves the machine. Every name starts with `hzcX`, and a
//! lab claims X (a pid file) while it lives; a new lab removes what a dead lab (one
//! whose process is gone) left behind. Dropping the lab removes its namespaces and veths.
//!
//! It must never touch a namespace, link or address it did not create: everything it
//! deletes carries its prefix and an X it has claimed.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

/// The prefix of every name a lab creates.
const PREFIX: &str = "hzc";
/// The lab's subnet is 10.77.X.0/24.
const NET: [u8; 2] = [10, 77];
const NODE_HOST_OFFSET: u8 = 10;
const RELAY_HOST_OFFSET: u8 = 100;

/// Runs `ip` with `args`; an error carries what it printed.
fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (Debian package iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn lock_dir() -> PathBuf {
    let run = PathBuf::from("/run");
    if run.is_dir() {
        run.join("huren-chaos")
    } else {
        std::env::temp_dir().join("huren-chaos")
    }
}

/// The claim of lab number X by a living process: the file `X.pid` (created exclusively)
/// holds its process id; a claim whose process is gone is stale and may be taken over.
/// (No `flock`: the workspace forbids unsafe code and its MSRV predates `File::lock`.)
pub(crate) struct Claim {
    x: u8,
    path: PathBuf,
}

/// Lab numbers claimed by this process (a pid file cannot tell two labs of one process
/// apart).
static CLAIMED: std::sync::Mutex<BTreeSet<u8>> = std::sync::Mutex::new(BTreeSet::new());

fn alive(pid: u32) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}

/// Claims lab number `x` if no living lab holds it.
fn try_claim(x: u8) -> anyhow::Result<Option<Claim>> {
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    if claimed.contains(&x) {
        return Ok(None);
    }
    let dir = lock_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{x}.pid"));
    for _ in 0..2 {
        match File::options().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                use std::io::Write;
                write!(f, "{}", std::process::id())
                    .with_context(|| format!("writing {}", path.display()))?;
                claimed.insert(x);
                return Ok(Some(Claim { x, path }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok());
                match holder {
                    Some(pid) if alive(pid) => return Ok(None),
                    // Stale (its process died), or half-written: take it over.
                    _ => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    Ok(None)
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        CLAIMED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.x);
    }
}

/// Why this machine cannot run namespace labs, or `Ok` if it can: root, `ip`, and a
/// namespace that can be made and removed.
pub fn probe() -> Result<(), String> {
    let probe = format!("{PREFIX}-probe-{}", std::process::id());
    match ip(&["netns", "add", &probe]) {
        Ok(_) => {
            let _ = ip(&["netns", "del", &probe]);
            Ok(())
        }
        Err(e) => Err(format!("{e:#}")),
    }
}

/// Removes what dead labs left behind: namespaces and root links named `hzcX…` whose
/// claim X is stale. Leftovers of living labs (in this process or another) are left alone.
fn clean_leftovers() -> anyhow::Result<()> {
    let mut numbers = BTreeSet::new();
    let namespaces = ip(&["netns", "list"])?;
    let links = ip(&["-o", "link", "show"])?;
    let names: Vec<String> = namespaces
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .chain(links.lines().filter_map(|l| {
            l.split(':')
                .nth(1)
                .map(|n| n.trim().split('@').next().unwrap_or_default().to_owned())
        }))
        .collect();
    for name in &names {
        if let Some(rest) = name.strip_prefix(PREFIX) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(x) = digits.parse::<u8>() {
                numbers.insert(x);
            }
        }
    }
    for x in numbers {
        if let Some(claim) = try_claim(x)? {
            remove_lab(x, &names);
            drop(claim);
        }
    }
    Ok(())
}

/// Deletes lab `x`'s namespaces and its root veth (best effort: a part may be gone).
fn remove_lab(x: u8, names: &[String]) {
    let ns_prefix = format!("{PREFIX}{x}-");
    // The root end first: deleting a namespace frees its veths only later, asynchronously.
    let _ = ip(&["link", "del", &format!("{PREFIX}{x}h")]);
    for name in names.iter().filter(|n| n.starts_with(&ns_prefix)) {
        // Nodes a dead harness left running in the namespace (it was SIGKILLed and could
        // not stop them) would outlive it: they are that harness's, and go with the lab.
        if let Ok(pids) = ip(&["netns", "pids", name]) {
            for pid in pids.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = ip(&["netns", "del", name]);
    }
}

/// A lab of `nodes` node namespaces. See the module doc.
pub struct Netns {
    x: u8,
    nodes: usize,
    relay_addrs: u8,
    /// (node, address) pairs blackholed in the node's namespace now.
    blackholes: BTreeSet<(usize, Ipv4Addr)>,
    /// Nodes whose link is down now.
    down: BTreeSet<usize>,
    /// Dropped after `Drop::drop` has removed the lab: the number is free only then.
    _claim: Claim,
}

impl Netns {
    /// Builds a lab with a free number and a subnet no interface of the root namespace uses.
    pub fn create(nodes: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(nodes <= 80, "a lab has at most 80 nodes");
        clean_leftovers().context("removing leftovers of dead chaos labs")?;
        let used = ip(&["-o", "-4", "addr", "show"])?;
        for x in 1..=254u8 {
            if used.contains(&format!(" {}.{}.{x}.", NET[0], NET[1])) {
                continue;
            }
            let Some(claim) = try_claim(x)? else {
                continue;
            };
            let mut lab = Self {
                x,
                nodes,
                relay_addrs: 0,
                blackholes: BTreeSet::new(),
                down: BTreeSet::new(),
                _claim: claim,
            };
            // On failure the lab drops here and removes what was built.
            lab.build()
                .with_context(|| format!("building chaos lab {x}"))?;
            return Ok(lab);
        }
        bail!("no free chaos lab number (10.77.1–254.0/24 all in use)")
    }

    fn build(&mut self) -> anyhow::Result<()> {
        let hub = self.hub();
        let host = format!("{PREFIX}{}h", self.x);
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        // The root namespace's leg of the bridge, then one leg per node namespace.
        self.veth_to_hub(&host, None, self.host_ip())?;
        for i in 0..self.nodes {
            let ns = self.ns(i);
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            self.veth_to_hub(&self.dev(i), Some(&ns), self.node_ip(i))?;
        }
        Ok(())
    }

    /// A veth pair: `dev` in `ns` (the root namespace when `None`) with `ip`/24 and up,
    /// its peer `<dev>b` in the hub, enslaved to the bridge and up.
    fn veth_to_hub(&self, dev: &str, ns: Option<&str>, ip_addr: Ipv4Addr) -> anyhow::Result<()> {
        let hub = self.hub();
        let peer = format!("{dev}b");
        let mut add = vec!["link", "add", dev];
        if let Some(ns) = ns {
            add.extend(["netns", ns]);
        }
        add.extend(["type", "veth", "peer", "name", &peer, "netns", &hub]);
        ip(&add)?;
        ip(&["-n", &hub, "link", "set", &peer, "master", "br0", "up"])?;
        let in_ns = |args: &[&str]| -> anyhow::Result<String> {
            match ns {
                Some(ns) => ip(&[&["-n", ns][..], args].concat()),
                None => ip(args),
            }
        };
        in_ns(&["addr", "add", &format!("{ip_addr}/24"), "dev", dev])?;
        in_ns(&["link", "set", dev, "up"])?;
        Ok(())
    }

    fn hub(&self) -> String {
        format!("{PREFIX}{}-hub", self.x)
    }

    /// The namespace of node `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("{PREFIX}{}-n{i}", self.x)
    }

    /// Node `i`'s interface (in its namespace).
    fn dev(&self, i: usize) -> String {
        format!("{PREFIX}{}n{i}", self.x)
    }

    pub fn number(&self) -> u8 {
        self.x
    }

    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(NET[0], NET[1], self.x, NODE_HOST_OFFSET + i as u8)
    }

    /// The root namespace's address on the lab's bridge.
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(NET[0], NET[1], self.x, 1)
    }

    /// Adds one more address to the root end, for a relay to listen on and send from.
    pub fn add_relay_addr(&mut self) -> anyhow::Result<Ipv4Addr> {
        anyhow::ensure!(self.relay_addrs < 150, "too many relay addresses");
        let a = Ipv4Addr::new(NET[0], NET[1], self.x, RELAY_HOST_OFFSET + self.relay_addrs);
        ip(&[
            "addr",
            "add",
            &format!("{a}/24"),
            "dev",
            &format!("{PREFIX}{}h", self.x),
        ])?;
        self.relay_addrs += 1;
        Ok(a)
    }

    /// Makes the blackhole routes exactly `want`: (node, address) means node's packets to
    /// address are dropped in its namespace. Routes are added and removed live; nothing
    /// is restarted.
    pub fn set_blackholes(&mut self, want: &BTreeSet<(usize, Ipv4Addr)>) -> anyhow::Result<()> {
        for (i, a) in self
            .blackholes
            .difference(want)
            .copied()
            .collect::<Vec<_>>()
        {
            ip(&[
                "-n",
                &self.ns(i),
                "route",
                "del",
                "blackhole",
                &format!("{a}/32"),
            ])?;
            self.blackholes.remove(&(i, a));
        }
        for (i, a) in want
            .difference(&self.blackholes)
            .copied()
            .collect::<Vec<_>>()
        {
            ip(&[
                "-n",
                &self.ns(i),
                "route",
                "add",
                "blackhole",
                &format!("{a}/32"),
            ])?;
            self.blackholes.insert((i, a));
        }
        Ok(())
    }

    /// Sets the links of exactly the nodes in `want` down, the others up.
    pub fn set_down(&mut self, want: &BTreeSet<usize>) -> anyhow::Result<()> {
        for i in 0..self.nodes {
            let (is, should) = (self.down.contains(&i), want.contains(&i));
            if is != should {
                let state = if should { "down" } else { "up" };
                ip(&["-n", &self.ns(i), "link", "set", &self.dev(i), state])?;
                if should {
                    self.down.insert(i);
                } else {
                    self.down.remove(&i);
                }
            }
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let names: Vec<String> = std::iter::once(self.hub())
            .chain((0..self.nodes).map(|i| self.ns(i)))
            .collect();
        remove_lab(self.x, &names);
    }
}
