//! Wiring a node together from its config: genesis, keys, store, ledger, producer, API.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use huren_core::{Network, OfficerId, RegionCode};
use sha2::{Digest, Sha256};

use crate::api::{AppState, Parts, Token};
use crate::clock::SharedClock;
use crate::config::{Config, Role};
use crate::ledger::{GovReceipt, Ledger};
use crate::metrics::Metrics;
use crate::net::{NetInbox, NetParams};
use crate::producer::{self, ProducerConfig};
use crate::store::Store;

/// A node's parts, assembled but not yet serving.
pub struct Assembled {
    pub state: AppState,
    pub store: Arc<Store>,
    /// The one way blocks reach the store, shared by the producer and the network.
    pub(crate) ledger: Arc<Ledger>,
    /// The network actor's parameters and inbox, when a node key is configured.
    pub(crate) network: Option<(NetParams, NetInbox)>,
}

/// Starts the network actor (if configured) on the current tokio runtime.
pub fn spawn_network(a: &mut Assembled) {
    if let Some((params, inbox)) = a.network.take() {
        let (ledger, metrics) = (a.ledger.clone(), a.state.metrics.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::net::run(ledger, metrics, params, inbox).await {
                tracing::error!(error = %format!("{e:#}"), "network stopped");
            }
        });
    }
}

/// Reads genesis and keys, opens the store, starts the producer (department nodes), all on
/// the system clock.
pub fn assemble(cfg: &Config) -> anyhow::Result<Assembled> {
    assemble_with_clock(cfg, crate::clock::system())
}

/// `assemble`, with every part reading `clock` (tests pass a manual one).
pub fn assemble_with_clock(cfg: &Config, clock: SharedClock) -> anyhow::Result<Assembled> {
    cfg.validate()?;
    let role = cfg.role()?;
    let net = Arc::new(
        huren_genesis::load(&cfg.genesis)
            .with_context(|| format!("loading genesis {}", cfg.genesis.display()))?,
    );
    let store = Arc::new(
        Store::open(&cfg.data_dir, &net)
            .with_context(|| format!("opening data directory {}", cfg.data_dir.display()))?,
    );
    let ledger = Arc::new(Ledger::new(net, store.clone()).with_context(|| {
        format!(
            "replaying the governance chain in {}",
            cfg.data_dir.display()
        )
    })?);
    ledger.set_protocol_max(cfg.protocol_max);
    if let Some((network, supported)) = ledger.protocol_too_old() {
        tracing::error!(
            network,
            supported,
            "the network runs protocol version {network}; this node knows up to {supported}: it follows the network but signs nothing until it is upgraded"
        );
    }
    if let Some(path) = &cfg.governance {
        import_governance(&ledger, path)
            .with_context(|| format!("importing the governance export {}", path.display()))?;
    }
    // The network in force: genesis and every governance record held. A department or
    // node key added or rotated since founding is found here, not in genesis.
    let net = ledger.network();
    let metrics = Arc::new(Metrics::default());
    metrics.governance_height.set(net.gov_height());

    // Every node that genesis names is a witness of the other departments' checkpoints,
    // with its node key; without one it keeps checkpoints but cosigns none.
    let witness = match &cfg.node_key {
        None => None,
        Some(path) => {
            let (_, key) = huren_genesis::keys::read_node_secret(path)
                .with_context(|| format!("reading node key {}", path.display()))?;
            let peer = huren_core::checkpoint::peer_id_of(&key.public());
            net.peers()
                .get(&peer)
                .map(|role| crate::checkpoints::WitnessKey {
                    node: match role {
                        huren_core::genesis::PeerRole::Department(d) => d.to_string(),
                        huren_core::genesis::PeerRole::Observer(o) => o.clone(),
                    },
                    key,
                })
        }
    };
    let checkpoints = Arc::new(
        crate::checkpoints::Checkpoints::new(
            ledger.clone(),
            witness,
            clock.clone(),
            metrics.clone(),
        )
        .context("reading the checkpoints held")?,
    );

    // Networking needs a node key, and the key must be the one genesis names for us.
    let (handle, inbox, keypair) = match &cfg.node_key {
        None => (None, None, None),
        Some(path) => {
            let (_, kp) = huren_genesis::keys::read_node_key(path)
                .with_context(|| format!("reading node key {}", path.display()))?;
            let (h, i) = crate::net::channel(clock.clone());
            (Some(h), Some(i), Some(kp))
        }
    };
    if let (Some(kp), Some(path)) = (&keypair, &cfg.node_key) {
        let peer = kp.public().to_peer_id().to_string();
        let expected = match role {
            Role::Observer => net
                .document()
                .observers
                .iter()
                .find(|o| o.node_peer_id == peer)
                .map(|o| o.node_peer_id.clone()),
            Role::Department { id, .. } => net.department(id).map(|d| d.node_peer_id.clone()),
        };
        if expected.as_deref() != Some(peer.as_str()) {
            bail!(
                "node key {} (peer id {peer}) is not the node key genesis names for this node",
                path.display()
            );
        }
    }

    let (department, producer, home_region) = match role {
        Role::Observer => {
            let region = observer_region(&net, cfg)?;
            (None, None, region)
        }
        Role::Department { id, issuer_key } => {
            let id = id.clone();
            let dept = net
                .department(&id)
                .with_context(|| {
                    format!(
                        "department {id} is not in genesis {}",
                        cfg.genesis.display()
                    )
                })?
                .clone();
            let mut keys = Vec::new();
            for path in std::iter::once(issuer_key).chain(cfg.issuer_key_next.as_deref()) {
                let (name, key) = huren_genesis::keys::read_issuer_key(path)
                    .with_context(|| format!("reading issuer key {}", path.display()))?;
                if name != id.as_str() {
                    bail!(
                        "issuer key {} was generated for {name}, not {id}",
                        path.display()
                    );
                }
                keys.push(key);
            }
            // The key in force must be one of them; the next may be proposed but not yet
            // recorded.
            if !keys.iter().any(|k| k.public() == dept.issuer_key) {
                bail!(
                    "issuer key {} is not the key in force for {id} ({}) in genesis and the governance records held",
                    issuer_key.display(),
                    dept.issuer_key.key_id()
                );
            }
            let handle = producer::spawn(
                ledger.clone(),
                ProducerConfig {
                    department: id.clone(),
                    keys,
                    batch_window: Duration::from_millis(cfg.limits.batch_window_ms),
                    block_records_max: cfg.limits.block_records_max,
                    queue_max: cfg.limits.producer_queue_max,
                    signing: crate::signing::SigningRecord::open(
                        issuer_key,
                        &id,
                        huren_core::ChainView::head(&*store, &id).map_or(0, |h| h.height),
                    )
                    .context("opening the signing record beside the issuer key")?,
                    clock: clock.clone(),
                    checkpoints: checkpoints.clone(),
                    protocol_max: cfg.protocol_max,
                    checkpoint_spacing: Duration::from_millis(cfg.limits.checkpoint_spacing_ms),
                    checkpoint_interval: Duration::from_millis(cfg.limits.checkpoint_interval_ms),
                },
                metrics.clone(),
                match handle.clone() {
                    Some(h) => std::sync::Arc::new(move |p| match p {
                        producer::Published::Block(b) => h.publish_block(&b),
                        producer::Published::Checkpoint(note) => h.publish_checkpoint(&note),
                    }),
                    None => std::sync::Arc::new(|_| {}),
                },
            );
            (Some(id), Some(handle), dept.region)
        }
    };
    let region = match &cfg.region {
        None => home_region,
        Some(r) => {
            anyhow::ensure!(
                net.region(r).is_some(),
                "config: region {r} is not in genesis"
            );
            r.clone()
        }
    };
    let tokens = cfg
        .api
        .tokens
        .iter()
        .map(|t| {
            let mut sha256 = [0u8; 32];
            hex::decode_to_slice(&t.sha256, &mut sha256).context("config: token sha256")?;
            Ok(Token {
                sha256,
                officer: OfficerId::parse(&t.officer).map_err(|e| anyhow::anyhow!("{e}"))?,
                scope: t.scope,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let state = AppState::new(Parts {
        store: store.clone(),
        ledger: ledger.clone(),
        producer,
        department,
        region,
        tokens,
        limits: cfg.limits.clone(),
        metrics,
        network: handle,
        clock: clock.clone(),
        checkpoints: checkpoints.clone(),
    })
    .context("starting the signature checker threads")?;
    let network = match (keypair, inbox) {
        (Some(keypair), Some(inbox)) => Some((
            NetParams {
                keypair,
                checkpoints: Some(checkpoints),
                config: cfg.network.clone(),
                limits: cfg.limits.clone(),
                clock,
            },
            inbox,
        )),
        _ => None,
    };
    Ok(Assembled {
        state,
        store,
        ledger,
        network,
    })
}

/// Applies the governance blocks of an export file (each checked against its quorum and
/// the chain before it; blocks held already are skipped).
fn import_governance(ledger: &Ledger, path: &std::path::Path) -> anyhow::Result<()> {
    let text = read_bounded(path, huren_api::governance::GOV_EXPORT_BYTES_MAX)?;
    let export = huren_api::GovernanceExport::parse(&text)?;
    anyhow::ensure!(
        export.genesis == ledger.network().hash(),
        "the export is of another network (genesis {})",
        export.genesis
    );
    for (i, block) in export.decode_blocks()?.into_iter().enumerate() {
        match ledger.receive_gov(block)? {
            GovReceipt::Applied(_) | GovReceipt::Duplicate => {}
            other => bail!("block {} of the export: {other:?}", i + 1),
        }
    }
    Ok(())
}

/// A text file of at most `max` bytes.
pub(crate) fn read_bounded(path: &std::path::Path, max: usize) -> anyhow::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max as u64 + 1)
        .read_to_string(&mut text)?;
    anyhow::ensure!(text.len() <= max, "larger than {max} bytes");
    Ok(text)
}

/// An observer's region: the one genesis names for its node key, else the config's.
fn observer_region(net: &Network, cfg: &Config) -> anyhow::Result<RegionCode> {
    if let Some(path) = &cfg.node_key {
        let (_, kp) = huren_genesis::keys::read_node_key(path)
            .with_context(|| format!("reading node key {}", path.display()))?;
        let peer = kp.public().to_peer_id().to_string();
        if let Some(o) = net
            .document()
            .observers
            .iter()
            .find(|o| o.node_peer_id == peer)
        {
            return Ok(o.region.clone());
        }
    }
    if let Some(r) = &cfg.region {
        return Ok(r.clone());
    }
    bail!("an observer node needs its node key listed in genesis observers, or a region in the config")
}

/// Hex SHA-256 of a token, as stored in the config.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
