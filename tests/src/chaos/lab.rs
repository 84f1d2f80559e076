//! Where the scenario's nodes run and how its faults reach them: a namespace lab (a
//! network namespace per node, faults as blackhole routes and links set down, slow links
//! through the relay) or, where namespaces cannot be made, the loopback fallback (every
//! link through the relay, which severs connections for a partition and holds bytes for a
//! one-way cut). The rest of the harness sees one interface: addresses, bootstrap lists,
//! how to launch a node, and `apply(topology)`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;

use super::netns::{self, Netns};
use super::plan::Plan;
use super::relay::{self, Link, LinkState, Route};

/// The node's p2p and API ports inside a namespace (each node has its own address).
const P2P_PORT: u16 = 7000;
const API_PORT: u16 = 8080;

/// Which lab to use: `HUREN_CHAOS_LAB=netns|loopback|auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabChoice {
    /// Namespaces where the machine allows them, else the loopback fallback.
    Auto,
    Netns,
    Loopback,
}

impl LabChoice {
    /// From `HUREN_CHAOS_LAB`; `Auto` when unset.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::parse(&std::env::var("HUREN_CHAOS_LAB").unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("HUREN_CHAOS_LAB: {e}"))
    }

    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "" | "auto" => Ok(Self::Auto),
            "netns" => Ok(Self::Netns),
            "loopback" => Ok(Self::Loopback),
            other => anyhow::bail!("{other}: expected netns, loopback or auto"),
        }
    }
}

/// Who can reach whom right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub nodes: usize,
    /// Processes that are down (killed, not yet restarted).
    pub dead: BTreeSet<usize>,
    /// Nodes whose link is down.
    pub isolated: BTreeSet<usize>,
    /// (i, j): i's packets to j are dropped.
    pub cuts: BTreeSet<(usize, usize)>,
}

impl Topology {
    /// Both processes up and packets flowing both ways between them.
    pub fn connected(&self, i: usize, j: usize) -> bool {
        !self.dead.contains(&i)
            && !self.dead.contains(&j)
            && !self.isolated.contains(&i)
            && !self.isolated.contains(&j)
            && !self.cuts.contains(&(i, j))
            && !self.cuts.contains(&(j, i))
    }
}

enum Kind {
    Netns {
        netns: Netns,
        /// Pair (i < j) → the relay address its traffic goes through, for impaired nodes.
        relayed: BTreeMap<(usize, usize), Ipv4Addr>,
    },
    Loopback {
        p2p_ports: Vec<u16>,
        api_ports: Vec<u16>,
        /// (dialer, target) → the relay port the dialer's bootstrap names for target.
        relay_ports: BTreeMap<(usize, usize), u16>,
    },
}

pub struct Lab {
    kind: Kind,
    /// Pair (i < j) → its link state, for every relayed pair.
    links: BTreeMap<(usize, usize), Arc<Link>>,
    /// The impairment of each node's links, from the plan.
    impaired: Vec<Option<super::plan::Impairment>>,
    peer_ids: Vec<String>,
    runtime: tokio::runtime::Runtime,
    /// Why the lab is not the one asked for, when it fell back.
    pub note: Option<String>,
}

fn pair(i: usize, j: usize) -> (usize, usize) {
    (i.min(j), i.max(j))
}

/// A port the kernel says is free now, and the listener that holds it: kept until the
/// relays have bound theirs, so that no relay is handed a node's port (the kernel reuses
/// a port released a moment ago, and a node that cannot bind its port does not start).
fn free_port() -> anyhow::Result<(std::net::TcpListener, u16)> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    Ok((l, port))
}

impl Lab {
    /// Builds the lab for `plan`'s nodes, whose libp2p peer ids are `peer_ids`.
    pub fn new(choice: LabChoice, plan: &Plan, peer_ids: Vec<String>) -> anyhow::Result<Self> {
        let n = plan.nodes.len();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("chaos-relay")
            .enable_all()
            .build()
            .context("the relay's runtime")?;
        let impaired: Vec<_> = plan.nodes.iter().map(|p| p.impaired).collect();
        let (use_netns, note) = match choice {
            LabChoice::Loopback => (
                false,
                Some("loopback lab chosen (--lab loopback or HUREN_CHAOS_LAB=loopback)".to_owned()),
            ),
            LabChoice::Netns => (true, None),
            LabChoice::Auto => match netns::probe() {
                Ok(()) => (true, None),
                Err(why) => (
                    false,
                    Some(format!(
                        "network namespaces are not available here ({why}); falling back to \
                         loopback faults: SIGKILL and restart, and a TCP relay that drops and \
                         stalls connections (run as root with iproute2 for real partitions)"
                    )),
                ),
            },
        };
        let mut links = BTreeMap::new();
        let kind = if use_netns {
            let mut netns = Netns::create(n)?;
            let mut relayed = BTreeMap::new();
            for (s, imp) in impaired.iter().enumerate() {
                if imp.is_none() {
                    continue;
                }
                for p in (0..n).filter(|&p| p != s) {
                    let key = pair(s, p);
                    if relayed.contains_key(&key) {
                        continue;
                    }
                    let addr = netns.add_relay_addr()?;
                    let ends = [
                        SocketAddr::new(IpAddr::V4(netns.node_ip(key.0)), P2P_PORT),
                        SocketAddr::new(IpAddr::V4(netns.node_ip(key.1)), P2P_PORT),
                    ];
                    let link = Link::new(LinkState::default());
                    let listen = SocketAddr::new(IpAddr::V4(addr), P2P_PORT);
                    // The address was just added: binding may need a moment (DAD is
                    // IPv6-only, so one try is enough for IPv4).
                    let listener = runtime
                        .block_on(tokio::net::TcpListener::bind(listen))
                        .with_context(|| format!("relay on {listen}"))?;
                    let _guard = runtime.enter();
                    relay::spawn(
                        listener,
                        Route::BySource { ends },
                        Some(IpAddr::V4(addr)),
                        link.clone(),
                    );
                    links.insert(key, link);
                    relayed.insert(key, addr);
                }
            }
            Kind::Netns { netns, relayed }
        } else {
            let (held_p2p, p2p_ports): (Vec<_>, Vec<_>) = (0..n)
                .map(|_| free_port())
                .collect::<anyhow::Result<Vec<_>>>()?
                .into_iter()
                .unzip();
            let (held_api, api_ports): (Vec<_>, Vec<_>) = (0..n)
                .map(|_| free_port())
                .collect::<anyhow::Result<Vec<_>>>()?
                .into_iter()
                .unzip();
            let mut relay_ports = BTreeMap::new();
            let _guard = runtime.enter();
            for i in 0..n {
                for j in (0..n).filter(|&j| j != i) {
                    let link = links
                        .entry(pair(i, j))
                        .or_insert_with(|| Link::new(LinkState::default()))
                        .clone();
                    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
                    std_listener.set_nonblocking(true)?;
                    relay_ports.insert((i, j), std_listener.local_addr()?.port());
                    let listener = tokio::net::TcpListener::from_std(std_listener)?;
                    let target = SocketAddr::from(([127, 0, 0, 1], p2p_ports[j]));
                    let from_end = usize::from(i != pair(i, j).0);
                    relay::spawn(listener, Route::Fixed { target, from_end }, None, link);
                }
            }
            // The relays hold their ports now: the nodes' are released for the nodes.
            drop((held_p2p, held_api));
            Kind::Loopback {
                p2p_ports,
                api_ports,
                relay_ports,
            }
        };
        let mut lab = Self {
            kind,
            links,
            impaired,
            peer_ids,
            runtime,
            note,
        };
        lab.apply(&Topology {
            nodes: n,
            ..Topology::default()
        })?;
        Ok(lab)
    }

    /// "netns lab 7" or "loopback".
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Netns { netns, .. } => format!(
                "netns lab {} (10.77.{}.0/24, a namespace per node)",
                netns.number(),
                netns.number()
            ),
            Kind::Loopback { .. } => "loopback fallback (127.0.0.1, relay on every link)".into(),
        }
    }

    pub fn is_netns(&self) -> bool {
        matches!(self.kind, Kind::Netns { .. })
    }

    pub fn p2p_listen(&self, i: usize) -> String {
        match &self.kind {
            Kind::Netns { netns, .. } => format!("/ip4/{}/tcp/{P2P_PORT}", netns.node_ip(i)),
            Kind::Loopback { p2p_ports, .. } => format!("/ip4/127.0.0.1/tcp/{}", p2p_ports[i]),
        }
    }

    pub fn api_listen(&self, i: usize) -> String {
        match &self.kind {
            Kind::Netns { netns, .. } => format!("{}:{API_PORT}", netns.node_ip(i)),
            Kind::Loopback { api_ports, .. } => format!("127.0.0.1:{}", api_ports[i]),
        }
    }

    pub fn api_url(&self, i: usize) -> String {
        format!("http://{}", self.api_listen(i))
    }

    /// Node `i`'s bootstrap list: every other node, directly or through a relay.
    pub fn bootstrap(&self, i: usize) -> Vec<String> {
        (0..self.peer_ids.len())
            .filter(|&j| j != i)
            .map(|j| {
                let addr = match &self.kind {
                    Kind::Netns { netns, relayed } => match relayed.get(&pair(i, j)) {
                        Some(a) => format!("/ip4/{a}/tcp/{P2P_PORT}"),
                        None => format!("/ip4/{}/tcp/{P2P_PORT}", netns.node_ip(j)),
                    },
                    Kind::Loopback { relay_ports, .. } => {
                        format!("/ip4/127.0.0.1/tcp/{}", relay_ports[&(i, j)])
                    }
                };
                format!("{addr}/p2p/{}", self.peer_ids[j])
            })
            .collect()
    }

    /// The command node `i` runs under.
    pub fn wrapper(&self, i: usize) -> Vec<OsString> {
        match &self.kind {
            Kind::Netns { netns, .. } => ["ip", "netns", "exec", &netns.ns(i)]
                .iter()
                .map(OsString::from)
                .collect(),
            Kind::Loopback { .. } => Vec::new(),
        }
    }

    /// Makes the network what `t` says (processes are the caller's), live.
    pub fn apply(&mut self, t: &Topology) -> anyhow::Result<()> {
        for (&(i, j), link) in &self.links {
            let impairment = self.impaired[i].or(self.impaired[j]);
            let state = match &self.kind {
                // Partitions and links down are below the process here: routes and links.
                Kind::Netns { .. } => LinkState {
                    impairment,
                    ..LinkState::default()
                },
                Kind::Loopback { .. } => {
                    let (ij, ji) = (t.cuts.contains(&(i, j)), t.cuts.contains(&(j, i)));
                    let isolated = t.isolated.contains(&i) || t.isolated.contains(&j);
                    LinkState {
                        impairment,
                        stalled: [ij, ji],
                        severed: isolated || (ij && ji),
                    }
                }
            };
            link.set(state);
        }
        if let Kind::Netns { netns, relayed } = &mut self.kind {
            let mut want = BTreeSet::new();
            // A relayed pair never talks directly: its direct route is always blackholed.
            for &(i, j) in relayed.keys() {
                want.insert((i, netns.node_ip(j)));
                want.insert((j, netns.node_ip(i)));
            }
            for &(i, j) in &t.cuts {
                want.insert((i, netns.node_ip(j)));
                if let Some(&a) = relayed.get(&pair(i, j)) {
                    want.insert((i, a));
                }
            }
            netns.set_blackholes(&want)?;
            netns.set_down(&t.isolated)?;
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Relays first (their sockets are on the lab's addresses), then the lab itself.
        let runtime = std::mem::replace(
            &mut self.runtime,
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("an empty runtime"),
        );
        runtime.shutdown_background();
    }
}
