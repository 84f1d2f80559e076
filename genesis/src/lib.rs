//! huren-genesis: founding a network.
//!
//! A human-written TOML template (regions, licence types, departments and their grants,
//! recognition policy, governance quorum) plus each department's public key file become
//! a genesis document: canonical JSON with its hash. This crate also owns the key files
//! (`keys`), since founding a network starts with every department generating its keys.
//!
//! The genesis file on disk is `{"hash": "<hex>", "document": {…}}`; `load` refuses a file
//! whose hash does not match its document, so a hand edit cannot slip through unnoticed.

pub mod keys;
pub mod template;

use std::path::Path;

use huren_core::genesis::{GenesisDocument, GenesisError, Network, GENESIS_JSON_BYTES_MAX};
use huren_core::Hash32;
use serde::{Deserialize, Serialize};

pub use template::{build, Template, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is {bytes} bytes; a genesis file is at most {GENESIS_JSON_BYTES_MAX}")]
    TooLarge { path: String, bytes: u64 },
    #[error("{path} is not a genesis file: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: hash field {claimed} does not match the document's hash {actual}; the document was changed after it was built")]
    HashMismatch {
        path: String,
        claimed: String,
        actual: String,
    },
    #[error("{path}: {source}")]
    Invalid { path: String, source: GenesisError },
    #[error("{path}: peer id {peer} of {owner} is not a valid libp2p peer id")]
    BadPeerId {
        path: String,
        owner: String,
        peer: String,
    },
}

/// The genesis file's JSON shape.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    pub hash: Hash32,
    pub document: GenesisDocument,
}

impl GenesisFile {
    pub fn new(document: GenesisDocument) -> Self {
        Self {
            hash: document.hash(),
            document,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a genesis file always serialises")
    }
}

/// Checks a parsed genesis file: hash, structural rules, peer ids.
pub fn validate(file: GenesisFile, path: &str) -> Result<Network, LoadError> {
    let actual = file.document.hash();
    if actual != file.hash {
        return Err(LoadError::HashMismatch {
            path: path.into(),
            claimed: file.hash.to_hex(),
            actual: actual.to_hex(),
        });
    }
    let net = Network::from_document(file.document).map_err(|source| LoadError::Invalid {
        path: path.into(),
        source,
    })?;
    for (peer, role) in net.peers() {
        if peer.parse::<libp2p_identity::PeerId>().is_err() {
            return Err(LoadError::BadPeerId {
                path: path.into(),
                owner: format!("{role:?}"),
                peer,
            });
        }
    }
    Ok(net)
}

/// Parses genesis JSON text (bounded) and validates it.
pub fn parse(json: &[u8], path: &str) -> Result<Network, LoadError> {
    if json.len() > GENESIS_JSON_BYTES_MAX {
        return Err(LoadError::TooLarge {
            path: path.into(),
            bytes: json.len() as u64,
        });
    }
    let file: GenesisFile = serde_json::from_slice(json).map_err(|source| LoadError::Json {
        path: path.into(),
        source,
    })?;
    validate(file, path)
}

/// Reads, parses and validates a genesis file.
pub fn load(path: &Path) -> Result<Network, LoadError> {
    let p = path.display().to_string();
    let io = |source| LoadError::Io {
        path: p.clone(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > GENESIS_JSON_BYTES_MAX as u64 {
        return Err(LoadError::TooLarge {
            path: p,
            bytes: len,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse(&bytes, &p)
}

/// The example template shipped with the repository (2 regions, 5 departments, 3 types).
pub const EXAMPLE_TEMPLATE: &str = include_str!("../example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_builds_loads_and_detects_edits() {
        let dir = tempfile::tempdir().expect("tmp");
        let tpl = Template::parse(EXAMPLE_TEMPLATE).expect("example template");
        for d in tpl.node_names() {
            keys::generate(&d, dir.path()).expect("keygen");
        }
        let doc = build(&tpl, dir.path(), 1_763_000_000).expect("build");
        let file = GenesisFile::new(doc);
        let json = file.to_json();
        let net = parse(json.as_bytes(), "g.json").expect("valid");
        assert!(net.departments().len() >= 4);
        assert!(net.document().licence_types.len() >= 3);
        assert!(net.document().regions.len() >= 2);

        let edited = json.replacen(
            "\"validity_days_max\": 3660",
            "\"validity_days_max\": 3661",
            1,
        );
        assert_ne!(edited, json);
        assert!(matches!(
            parse(edited.as_bytes(), "g.json"),
            Err(LoadError::HashMismatch { .. })
        ));
        assert!(matches!(parse(b"{", "g.json"), Err(LoadError::Json { .. })));
        assert!(matches!(
            parse(&vec![b' '; GENESIS_JSON_BYTES_MAX + 1], "g.json"),
            Err(LoadError::TooLarge { .. })
        ));
    }

    #[test]
    fn bad_peer_id_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let tpl = Template::parse(EXAMPLE_TEMPLATE).expect("example template");
        for d in tpl.node_names() {
            keys::generate(&d, dir.path()).expect("keygen");
        }
        let mut doc = build(&tpl, dir.path(), 1).expect("build");
        doc.departments[0].node_peer_id = "not-a-peer".into();
        let err = validate(GenesisFile::new(doc), "g.json").expect_err("bad peer");
        assert!(matches!(err, LoadError::BadPeerId { .. }), "{err}");
    }
}
