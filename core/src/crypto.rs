//! Keys, signatures and hashes.
//!
//! Thin wrappers over ed25519-dalek 2.x and sha2 so that the rest of the protocol speaks
//! in Huren terms (an issuer key, a key id, a block hash) and always verifies with
//! `verify_strict`, which rejects malleable and small-order signatures.

use std::fmt;

use ed25519_dalek::{Signer, Verifier as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A SHA-256 digest: block hashes, credential commitments, genesis hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    pub fn digest(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Digest of several parts without concatenating them first.
    pub fn digest_parts(parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Self(h.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| KeyError::Hex {
            what: "hash",
            len: 64,
        })?;
        Ok(Self(out))
    }

    /// The first 6 bytes in hex, for log lines and error messages.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.short())
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{what} must be {len} hexadecimal characters")]
    Hex { what: &'static str, len: usize },
    #[error("public key is not a valid Ed25519 point")]
    BadPoint,
}

/// The key id carried in the COSE `kid` header: the first 8 bytes of SHA-256 of the
/// public key. Short enough for the QR, long enough that genesis can refuse collisions.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An Ed25519 public key (an issuer's, as named in genesis).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| KeyError::BadPoint)
    }

    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut b).map_err(|_| KeyError::Hex {
            what: "public key",
            len: 64,
        })?;
        Self::from_bytes(&b)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    pub fn key_id(&self) -> KeyId {
        let h = Hash32::digest(self.0.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&h.0[..8]);
        KeyId(id)
    }

    /// Strict verification: rejects non-canonical encodings and small-order keys, so that
    /// one message has exactly one valid signature under one key.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        self.0.verify_strict(message, &signature.0).is_ok()
    }

    /// Plain (non-strict) RFC 8032 verification, used only by tests that check the
    /// credential with an independent code path.
    #[doc(hidden)]
    pub fn verify_rfc8032(&self, message: &[u8], signature: &Signature) -> bool {
        self.0.verify(message, &signature.0).is_ok()
    }

    pub fn dalek(&self) -> &ed25519_dalek::VerifyingKey {
        &self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(ed25519_dalek::Signature);

impl Signature {
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        Self(ed25519_dalek::Signature::from_bytes(bytes))
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: &[u8; 64] = bytes.try_into().ok()?;
        Some(Self::from_bytes(arr))
    }

    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.to_bytes()
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.to_bytes()[..6]))
    }
}

/// An Ed25519 signing key. Never serialised by accident: no `Serialize`, and `Debug`
/// prints only the public half.
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    pub fn generate() -> Self {
        Self(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut b).map_err(|_| KeyError::Hex {
            what: "secret key",
            len: 64,
        })?;
        Ok(Self::from_seed(&b))
    }

    pub fn seed_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public().to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_tamper() {
        let k = SecretKey::generate();
        let sig = k.sign(b"hello");
        assert!(k.public().verify(b"hello", &sig));
        assert!(!k.public().verify(b"hellp", &sig));
        let other = SecretKey::generate();
        assert!(!other.public().verify(b"hello", &sig));
    }

    #[test]
    fn hex_round_trips() {
        let k = SecretKey::generate();
        let again = SecretKey::from_hex(&k.seed_hex()).expect("hex");
        assert_eq!(again.public(), k.public());
        assert_eq!(
            PublicKey::from_hex(&k.public().to_hex()).expect("hex"),
            k.public()
        );
        assert!(PublicKey::from_hex("zz").is_err());
        let h = Hash32::digest(b"x");
        assert_eq!(Hash32::from_hex(&h.to_hex()), Ok(h));
    }
}
