//! Key files.
//!
//! Each department (or observer) has two secret keys: the issuer key that signs
//! credentials and blocks, and the node key that is its libp2p identity. `generate`
//! writes them as `<name>.issuer.key` and `<name>.node.key` (mode 0600, never
//! overwritten) plus `<name>.public.json`, the only file that leaves the department:
//! the founders feed it to `genesis build`.

use std::io::Write;
use std::path::{Path, PathBuf};

use huren_core::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};

const KEY_FILE_BYTES_MAX: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} already exists; refusing to overwrite a key")]
    Exists(String),
    #[error("{path} is not a Huren {expected} key file: {problem}")]
    Format {
        path: String,
        expected: &'static str,
        problem: String,
    },
    #[error(
        "{0:?} is not a valid key name (a department id like gd.transport or an observer name)"
    )]
    Name(String),
    /// A secret key file others may read: refused rather than used, since the key may
    /// already be copied; `chmod 600` it (and consider rotating it).
    #[error("{path} is readable by others (mode {mode:o}); a key file must be 0600: chmod 600 it, and consider the key exposed")]
    Exposed { path: String, mode: u32 },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    name: String,
    kind: String,
    secret: String,
}

/// What a department hands to the founders.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicFile {
    pub name: String,
    pub issuer_public: PublicKey,
    pub node_peer_id: String,
}

/// Paths and public halves of freshly generated keys.
#[derive(Debug, Clone)]
pub struct Generated {
    pub issuer_key: PathBuf,
    pub node_key: PathBuf,
    pub public: PathBuf,
    pub issuer_public: PublicKey,
    pub node_peer_id: String,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
        && !name.starts_with('.')
}

pub fn issuer_key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.issuer.key"))
}
pub fn node_key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.node.key"))
}
pub fn public_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.public.json"))
}

/// The libp2p identity for a node key seed.
pub fn node_keypair(seed: &[u8; 32]) -> libp2p_identity::Keypair {
    libp2p_identity::Keypair::ed25519_from_bytes(*seed)
        .expect("any 32 bytes are a valid ed25519 secret key")
}

/// Generates issuer and node keys for `name` into `dir` (created if missing).
pub fn generate(name: &str, dir: &Path) -> Result<Generated, KeyFileError> {
    if !valid_name(name) {
        return Err(KeyFileError::Name(name.into()));
    }
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| KeyFileError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let issuer = SecretKey::generate();
    let node = SecretKey::generate();
    let node_peer_id = node_keypair(&node.seed()).public().to_peer_id().to_string();
    let (ip, np, pp) = (
        issuer_key_path(dir, name),
        node_key_path(dir, name),
        public_path(dir, name),
    );
    for p in [&ip, &np, &pp] {
        if p.exists() {
            return Err(KeyFileError::Exists(p.display().to_string()));
        }
    }
    for (p, kind, key) in [(&ip, "issuer", &issuer), (&np, "node", &node)] {
        let body = serde_json::to_string_pretty(&SecretFile {
            name: name.into(),
            kind: kind.into(),
            secret: key.seed_hex(),
        })
        .expect("key file serialises");
        write_secret(p, body.as_bytes()).map_err(io(p))?;
    }
    let public = PublicFile {
        name: name.into(),
        issuer_public: issuer.public(),
        node_peer_id: node_peer_id.clone(),
    };
    let body = serde_json::to_string_pretty(&public).expect("public file serialises");
    std::fs::write(&pp, body).map_err(io(&pp))?;
    Ok(Generated {
        issuer_key: ip,
        node_key: np,
        public: pp,
        issuer_public: issuer.public(),
        node_peer_id,
    })
}

/// Creates a file readable only by its owner, and syncs it: a key must not be lost.
fn write_secret(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(body)?;
    f.sync_all()
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > KEY_FILE_BYTES_MAX {
        return Err(KeyFileError::Format {
            path: path.display().to_string(),
            expected: "key",
            problem: format!("{len} bytes is too large"),
        });
    }
    std::fs::read(path).map_err(io)
}

/// Refuses a secret key file that group or others may read or write.
fn check_private(path: &Path) -> Result<(), KeyFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|source| KeyFileError::Io {
                path: path.display().to_string(),
                source,
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Exposed {
                path: path.display().to_string(),
                mode: mode & 0o777,
            });
        }
    }
    Ok(())
}

fn read_secret(path: &Path, expected: &'static str) -> Result<(String, SecretKey), KeyFileError> {
    check_private(path)?;
    let bad = |problem: String| KeyFileError::Format {
        path: path.display().to_string(),
        expected,
        problem,
    };
    let f: SecretFile =
        serde_json::from_slice(&read_bounded(path)?).map_err(|e| bad(e.to_string()))?;
    if f.kind != expected {
        return Err(bad(format!("it is a {} key", f.kind)));
    }
    let key = SecretKey::from_hex(&f.secret).map_err(|e| bad(e.to_string()))?;
    Ok((f.name, key))
}

/// Reads an issuer key file: the name it was generated for and the key.
pub fn read_issuer_key(path: &Path) -> Result<(String, SecretKey), KeyFileError> {
    read_secret(path, "issuer")
}

/// Reads a node key file as a libp2p identity.
pub fn read_node_key(path: &Path) -> Result<(String, libp2p_identity::Keypair), KeyFileError> {
    let (name, key) = read_secret(path, "node")?;
    Ok((name, node_keypair(&key.seed())))
}

/// The node key as an Ed25519 signing key: the same key as `read_node_key`'s libp2p
/// identity (one seed), with which the node cosigns checkpoints as a witness.
pub fn read_node_secret(path: &Path) -> Result<(String, SecretKey), KeyFileError> {
    read_secret(path, "node")
}

pub fn read_public(path: &Path) -> Result<PublicFile, KeyFileError> {
    serde_json::from_slice(&read_bounded(path)?).map_err(|e| KeyFileError::Format {
        path: path.display().to_string(),
        expected: "public",
        problem: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_read_and_refuse_overwrite() {
        let dir = tempfile::tempdir().expect("tmp");
        let g = generate("gd.transport", dir.path()).expect("generate");
        let (name, key) = read_issuer_key(&g.issuer_key).expect("issuer");
        assert_eq!(name, "gd.transport");
        assert_eq!(key.public(), g.issuer_public);
        let (_, node) = read_node_key(&g.node_key).expect("node");
        assert_eq!(node.public().to_peer_id().to_string(), g.node_peer_id);
        // The witness key inside the peer id is the node key's Ed25519 key.
        let (_, secret) = read_node_secret(&g.node_key).expect("node");
        assert_eq!(
            huren_core::checkpoint::peer_public_key(&g.node_peer_id),
            Some(secret.public())
        );
        let public = read_public(&g.public).expect("public");
        assert_eq!(public.issuer_public, g.issuer_public);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&g.issuer_key)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            generate("gd.transport", dir.path()),
            Err(KeyFileError::Exists(_))
        ));
        assert!(matches!(
            read_issuer_key(&g.node_key),
            Err(KeyFileError::Format { .. })
        ));
        assert!(matches!(
            generate("../evil", dir.path()),
            Err(KeyFileError::Name(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let g = generate("gd.transport", dir.path()).expect("keys");
        assert!(read_issuer_key(&g.issuer_key).is_ok());
        for mode in [0o640, 0o604, 0o660] {
            std::fs::set_permissions(&g.issuer_key, std::fs::Permissions::from_mode(mode))
                .expect("chmod");
            let e = read_issuer_key(&g.issuer_key).expect_err("exposed");
            assert!(matches!(e, KeyFileError::Exposed { .. }), "{e}");
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        std::fs::set_permissions(&g.node_key, std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        assert!(matches!(
            read_node_key(&g.node_key),
            Err(KeyFileError::Exposed { .. })
        ));
    }
}
