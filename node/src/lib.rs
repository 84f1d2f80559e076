//! huren-node: one department's node (or an observer).
//!
//! - `store`: the ledger in sled, behind a narrow interface; the only module that knows sled.
//! - `ledger`: block admission: validates with the core rules (and proves equivocation)
//!   before the store appends; the only way a block reaches the store.
//! - `producer`: block production by group commit; the only writer of this department's chain.
//! - `api`: the HTTP API (axum); the only module that knows HTTP and JSON.
//! - `net`: libp2p replication (gossip, catch-up, equivocation evidence) as an actor; the only
//!   module that knows libp2p. Its `wire`, `swarm`, `applier` and `peers` modules are
//!   internal; the rest of the node uses `run`, `channel`, `NetHandle` and `NetParams`.
//! - `checkpoints`: the department's signed checkpoints, witnessing (cosigning) other
//!   departments' against this node's copy of their chains, conflict evidence, the status
//!   snapshots bundles are cut from.
//! - `check`: the integrity check behind `huren-node check`.
//! - `config`, `metrics`: configuration with every limit in one place; Prometheus metrics.
//! - `node`: wiring: open the store, start the producer and the API, stop cleanly.
//! - `signing`: the signing record beside the issuer key (the highest height it signed).
//! - `clock`: the node's one clock (system, or manual in tests), passed to every part.
//! - `source`: a client's source address as limits count it (IPv4, or IPv6 /64).
//! - `web`: the service-window page (窗口核验页) at `/`, a client of the public API, assets embedded.

pub mod api;
pub mod check;
pub(crate) mod checkpoints;
pub mod clock;
pub mod config;
pub(crate) mod ledger;
pub(crate) mod metrics;
pub mod net;
pub mod node;
pub(crate) mod producer;
pub(crate) mod sigcheck;
pub(crate) mod signing;
pub(crate) mod source;
pub mod store;
pub(crate) mod web;
