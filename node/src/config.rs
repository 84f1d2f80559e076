//! Node configuration: a TOML file with `#[serde(default)]` everywhere, overridden by
//! command-line flags. Every limit lives in `Limits`, with its unit last in the name and
//! the reason for its default beside it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use huren_core::{DepartmentId, RegionCode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// sled data directory.
    pub data_dir: PathBuf,
    /// Genesis file of the network.
    pub genesis: PathBuf,
    /// This department's id; absent for an observer node (see `role`).
    #[serde(
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub department: Option<DepartmentId>,
    /// Issuer key file; a department node's, absent for an observer.
    #[serde(
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub issuer_key: Option<PathBuf>,
    /// A second issuer key file, for a scheduled rotation: generate it, propose
    /// `rotate_issuer_key` with its public key, configure it here; the node signs with it
    /// from its first block cut under the record (docs/governance.md).
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub issuer_key_next: Option<PathBuf>,
    /// A governance export (`huren gov export`, `GET /v1/governance`): records made since
    /// founding, each checked against its quorum and applied at start. A department added
    /// after founding starts with it, since genesis does not name it.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub governance: Option<PathBuf>,
    /// libp2p node key file; without it the node runs without networking.
    #[serde(
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub node_key: Option<PathBuf>,
    /// The verifying region of this node, for the recognition policy. Defaults to the
    /// department's (or observer's) region in genesis.
    #[serde(
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub region: Option<RegionCode>,
    /// The newest protocol version this node reads and signs: this release's
    /// (`ledger::PROTOCOL_VERSION`). Set lower only to drill an upgrade: the node then
    /// behaves as an older release would (it ignores newer blocks and, once the network
    /// has moved on, signs nothing).
    pub protocol_max: u32,
    pub api: ApiConfig,
    pub network: NetworkConfig,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            genesis: PathBuf::from("genesis.json"),
            department: None,
            issuer_key: None,
            issuer_key_next: None,
            governance: None,
            node_key: None,
            region: None,
            protocol_max: huren_core::ledger::PROTOCOL_VERSION,
            api: ApiConfig::default(),
            network: NetworkConfig::default(),
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// Officers' bearer tokens, stored as SHA-256 hashes.
    pub tokens: Vec<TokenConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid literal address"),
            tokens: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The officer's staff code, recorded on the ledger with every action.
    pub officer: String,
    /// `issue` (issue and bulk import), `lifecycle` (suspend, reinstate, revoke) or `all`.
    pub scope: Scope,
    /// Hex SHA-256 of the token.
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Issue,
    Lifecycle,
    All,
}

impl Scope {
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::All || self == needed
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// libp2p listen addresses (multiaddr).
    pub listen: Vec<String>,
    /// Peers to dial at start (multiaddr ending in /p2p/<peer id>).
    pub bootstrap: Vec<String>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            bootstrap: Vec::new(),
        }
    }
}

/// Every bound the node enforces.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Group commit window: how long the first request of a block waits for company.
    /// 5 ms keeps single-request latency low while a burst shares one fsync.
    pub batch_window_ms: u64,
    /// Records per block cut by this node (protocol maximum 8192). 4096 keeps a block
    /// under ~1 MiB, well inside gossip_message_bytes_max.
    pub block_records_max: usize,
    /// Pending requests waiting for block production; past this, 503.
    pub producer_queue_max: usize,
    /// JSON bodies of department endpoints (batch import included).
    pub body_bytes_max: usize,
    /// Uploaded images on /v1/verify (phone photos).
    pub image_bytes_max: usize,
    /// Photos decoded at once, node-wide; 0 means one per core (api::images).
    pub image_decodes_max: usize,
    /// Photos that may wait for a decoder; past this, 503 at once.
    pub image_queue_max: usize,
    /// How long a photo waits for a decoder before 503.
    pub image_queue_wait_ms: u64,
    /// How long the answer to a photo waits for its decode; past it the verdict is
    /// undetermined · undecodable (the decode keeps its decoder until it ends).
    pub image_decode_ms_max: u64,
    /// Licences in one bulk import request.
    pub batch_licences_max: usize,
    /// Records of one licence a history, status `?at=` or verify answer reads at most.
    /// A licence gathers a record every few years (renewals) or months (suspensions);
    /// 256 covers decades and bounds the work one public request can cause.
    pub history_records_max: usize,
    /// Public requests per client IP per minute (verify, status); bursts up to this.
    pub public_requests_per_minute: u32,
    /// Client IPs tracked by the rate limiter before the oldest are forgotten.
    pub rate_clients_max: usize,
    /// Largest gossip message (one encoded block).
    pub gossip_message_bytes_max: usize,
    /// Blocks per catch-up response.
    pub catchup_blocks_max: usize,
    /// Bytes per catch-up response.
    pub catchup_bytes_max: usize,
    /// Early blocks held aside while the gap before them is fetched.
    pub pending_blocks_max: usize,
    /// Established connections in total (and pending incoming); per peer at most 2.
    pub connections_max: u32,
    /// Open HTTP connections; past this the node stops accepting until one closes (the
    /// kernel's backlog holds the rest). Keeps descriptors for libp2p and sled.
    pub http_connections_max: usize,
    /// How long a client may take to send a request's headers before its connection is
    /// closed (slow clients, slowloris).
    pub http_header_read_ms_max: u64,
    /// How long a client may take to send a request's body.
    pub http_body_read_ms_max: u64,
    /// The department signs a checkpoint of its chain at most this often while it grows
    /// (each one is a status-set scan and a gossip message per witness).
    pub checkpoint_spacing_ms: u64,
    /// ... and at least this often while idle, so witnesses see it alive and verifiers'
    /// "as of" stays recent.
    pub checkpoint_interval_ms: u64,
    /// Verifying another department's licence, a node with no counted checkpoint of it
    /// newer than this says undetermined · stale: it may be cut off from that department.
    /// Several intervals, so a lost checkpoint or two do not flap verdicts.
    pub checkpoint_age_ms_max: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            batch_window_ms: 5,
            block_records_max: 4096,
            producer_queue_max: 65_536,
            body_bytes_max: 4 * 1024 * 1024,
            image_bytes_max: huren_render::qr::IMAGE_BYTES_MAX,
            image_decodes_max: 0,
            image_queue_max: 16,
            image_queue_wait_ms: 2000,
            image_decode_ms_max: 5000,
            batch_licences_max: 1000,
            history_records_max: 256,
            public_requests_per_minute: 6000,
            rate_clients_max: 100_000,
            gossip_message_bytes_max: huren_core::ledger::BLOCK_BYTES_MAX,
            catchup_blocks_max: 64,
            catchup_bytes_max: 8 * 1024 * 1024,
            pending_blocks_max: 1024,
            connections_max: 64,
            http_connections_max: 1024,
            http_header_read_ms_max: 10_000,
            http_body_read_ms_max: 30_000,
            checkpoint_spacing_ms: 1000,
            checkpoint_interval_ms: 60_000,
            checkpoint_age_ms_max: 600_000,
        }
    }
}

const CONFIG_BYTES_MAX: u64 = 1024 * 1024;

/// What a node is: one department's, holding its issuer key, or an observer that follows
/// the network and verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role<'a> {
    Department {
        id: &'a DepartmentId,
        issuer_key: &'a Path,
    },
    Observer,
}

/// Reads `""` as absent: config files written before these fields were optional say
/// `department = ""` for an observer and `node_key = ""` for no networking.
fn empty_as_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match Option::<String>::deserialize(d)?.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

impl Config {
    /// The node's role, from `department` and `issuer_key`, which go together.
    pub fn role(&self) -> anyhow::Result<Role<'_>> {
        match (&self.department, &self.issuer_key) {
            (Some(id), Some(issuer_key)) => Ok(Role::Department { id, issuer_key }),
            (Some(id), None) => {
                anyhow::bail!("config: issuer_key is required for the department node of {id}")
            }
            (None, Some(k)) => anyhow::bail!(
                "config: issuer_key {} is set but department is not; an observer holds no issuer key",
                k.display()
            ),
            (None, None) => Ok(Role::Observer),
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let len = std::fs::metadata(path)
            .with_context(|| format!("reading config {}", path.display()))?
            .len();
        anyhow::ensure!(
            len <= CONFIG_BYTES_MAX,
            "config {} is larger than 1 MiB",
            path.display()
        );
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).with_context(|| format!("parsing config {}", path.display()))
    }

    /// Parses config text (bounded) read from a file in directory `base`: what `load` does
    /// once it has the text, and what the config fuzz target drives.
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            text.len() as u64 <= CONFIG_BYTES_MAX,
            "the config is larger than 1 MiB"
        );
        let mut cfg: Config = toml::from_str(text)?;
        // Relative paths in a config file are relative to the file, not to the shell.
        for p in [&mut cfg.data_dir, &mut cfg.genesis]
            .into_iter()
            .chain(cfg.issuer_key.as_mut())
            .chain(cfg.issuer_key_next.as_mut())
            .chain(cfg.governance.as_mut())
            .chain(cfg.node_key.as_mut())
        {
            if !p.as_os_str().is_empty() && p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.role()?;
        let l = &self.limits;
        anyhow::ensure!(
            (1..=huren_core::ledger::BLOCK_RECORDS_MAX).contains(&l.block_records_max),
            "limits.block_records_max must be 1..={}",
            huren_core::ledger::BLOCK_RECORDS_MAX
        );
        anyhow::ensure!(
            l.batch_window_ms <= 1000,
            "limits.batch_window_ms must be at most 1000"
        );
        anyhow::ensure!(
            (1..=l.block_records_max).contains(&l.batch_licences_max),
            "limits.batch_licences_max must be between 1 and limits.block_records_max ({}): a batch goes into one block",
            l.block_records_max
        );
        anyhow::ensure!(
            (100..=l.checkpoint_interval_ms).contains(&l.checkpoint_spacing_ms)
                && l.checkpoint_interval_ms < l.checkpoint_age_ms_max,
            "limits: checkpoint_spacing_ms must be at least 100 and at most checkpoint_interval_ms, which must be below checkpoint_age_ms_max"
        );
        anyhow::ensure!(
            l.producer_queue_max >= 1,
            "limits.producer_queue_max must be at least 1"
        );
        anyhow::ensure!(
            l.public_requests_per_minute >= 1,
            "limits.public_requests_per_minute must be at least 1"
        );
        // Peers read each other's catch-up answers within the protocol's bounds, so a
        // node may be configured anywhere inside them, never past them; and an answer
        // must hold at least the largest block, or that block could never be fetched.
        let blocks_max = crate::net::CATCHUP_BLOCKS_MAX;
        anyhow::ensure!(
            (1..=blocks_max).contains(&l.catchup_blocks_max),
            "limits.catchup_blocks_max must be 1..={blocks_max} (the catch-up protocol's bound)"
        );
        let (block_max, bytes_max) = (
            huren_core::ledger::BLOCK_BYTES_MAX,
            crate::net::CATCHUP_BYTES_MAX,
        );
        anyhow::ensure!(
            (block_max..=bytes_max).contains(&l.catchup_bytes_max),
            "limits.catchup_bytes_max must be {block_max}..={bytes_max}: at least one largest block, at most the catch-up protocol's bound"
        );
        anyhow::ensure!(
            (1024..=block_max).contains(&l.gossip_message_bytes_max),
            "limits.gossip_message_bytes_max must be 1024..={block_max} (the largest block)"
        );
        anyhow::ensure!(
            l.connections_max >= 1,
            "limits.connections_max must be at least 1"
        );
        for t in &self.api.tokens {
            anyhow::ensure!(
                t.sha256.len() == 64 && t.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                "token of officer {}: sha256 must be 64 hex characters",
                t.officer
            );
            huren_core::OfficerId::parse(&t.officer)
                .map_err(|e| anyhow::anyhow!("token officer {:?}: {e}", t.officer))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        toml::from_str(text).expect("config parses")
    }

    #[test]
    fn the_role_comes_from_department_and_issuer_key_together() {
        let dept = parse("department = \"gd.transport\"\nissuer_key = \"k\"");
        assert_eq!(
            dept.role().expect("role"),
            Role::Department {
                id: &DepartmentId::parse("gd.transport").expect("id"),
                issuer_key: Path::new("k"),
            }
        );
        assert_eq!(parse("").role().expect("role"), Role::Observer);
        let e = parse("department = \"gd.transport\"")
            .role()
            .expect_err("no key");
        assert!(e.to_string().contains("issuer_key is required"), "{e}");
        let e = parse("issuer_key = \"k\"")
            .role()
            .expect_err("no department");
        assert!(
            e.to_string().contains("observer holds no issuer key"),
            "{e}"
        );
        assert!(toml::from_str::<Config>("department = \"Not An Id\"").is_err());
    }

    #[test]
    fn configs_written_with_empty_strings_still_mean_absent() {
        let old = parse("department = \"\"\nissuer_key = \"\"\nnode_key = \"\"\nregion = \"\"");
        assert_eq!(old.role().expect("role"), Role::Observer);
        assert!(old.node_key.is_none() && old.region.is_none());
        // And a written config leaves absent fields out.
        let text = toml::to_string(&Config::default()).expect("toml");
        assert!(
            !text.contains("department") && !text.contains("node_key"),
            "{text}"
        );
    }

    /// Every limit checked against what the protocol and the other limits allow: a value
    /// out of bounds is refused with the limit's name and the bound, before anything runs.
    #[test]
    fn limits_outside_their_bounds_are_refused_by_name() {
        assert!(
            Config::default().validate().is_ok(),
            "the defaults are valid"
        );
        let cases = [
            ("catchup_blocks_max = 0", "catchup_blocks_max"),
            ("catchup_blocks_max = 257", "catchup_blocks_max"),
            ("catchup_bytes_max = 1024", "catchup_bytes_max"),
            ("catchup_bytes_max = 33554433", "catchup_bytes_max"),
            (
                "gossip_message_bytes_max = 4194305",
                "gossip_message_bytes_max",
            ),
            ("gossip_message_bytes_max = 10", "gossip_message_bytes_max"),
            ("connections_max = 0", "connections_max"),
            ("block_records_max = 0", "block_records_max"),
            ("batch_window_ms = 1001", "batch_window_ms"),
            (
                "public_requests_per_minute = 0",
                "public_requests_per_minute",
            ),
        ];
        for (line, name) in cases {
            let e = parse(&format!("[limits]\n{line}"))
                .validate()
                .expect_err(line);
            assert!(e.to_string().contains(name), "{line}: {e}");
        }
        for ok in ["catchup_blocks_max = 256", "catchup_bytes_max = 4194304"] {
            parse(&format!("[limits]\n{ok}")).validate().expect(ok);
        }
    }
}
