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

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = hex::decode(&s).map_err(serde::de::Error::custom)?;
        let id: [u8; 8] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a key id is 8 bytes (16 hex digits)"))?;
        Ok(KeyId(id))
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

/// The most signatures `verify_many` checks in one batch equation.
pub const BATCH_MAX: usize = 64;

/// Checks many signatures at once, about twice as fast per signature as one by one:
/// ed25519-dalek's batch equation over up to `BATCH_MAX` at a time; a batch that fails is
/// checked one by one with `PublicKey::verify`, so each answer is that signature's own.
///
/// Every signature `PublicKey::verify` accepts is accepted here, and every signature made
/// without the private key is refused here as there. The one difference: a signature its
/// key's holder deliberately built with a small-order component in R (which strict
/// verification refuses) can pass a batch. Small-order keys, which would let anyone forge,
/// never go into a batch.
pub fn verify_many(items: &[(&PublicKey, &[u8], &Signature)]) -> Vec<bool> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(BATCH_MAX) {
        let batchable = chunk.len() > 1 && chunk.iter().all(|(k, _, _)| !k.0.is_weak());
        let passed = batchable && {
            let messages: Vec<&[u8]> = chunk.iter().map(|(_, m, _)| *m).collect();
            let signatures: Vec<ed25519_dalek::Signature> =
                chunk.iter().map(|(_, _, s)| s.0).collect();
            let keys: Vec<ed25519_dalek::VerifyingKey> =
                chunk.iter().map(|(k, _, _)| k.0).collect();
            ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
        };
        if passed {
            out.extend(std::iter::repeat_n(true, chunk.len()));
        } else {
            out.extend(chunk.iter().map(|(k, m, s)| k.verify(m, s)));
        }
    }
    out
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
    fn verify_many_answers_each_signature_as_strict_verification_does() {
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::generate()).collect();
        let messages: Vec<Vec<u8>> = (0..150u32).map(|i| i.to_be_bytes().repeat(9)).collect();
        let mut sigs: Vec<Signature> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| keys[i % 3].sign(m))
            .collect();
        let publics: Vec<PublicKey> = keys.iter().map(SecretKey::public).collect();
        // Three batches (64 + 64 + 22), every one valid.
        let items = |sigs: &[Signature], messages: &[Vec<u8>]| -> Vec<bool> {
            let list: Vec<(&PublicKey, &[u8], &Signature)> = (0..messages.len())
                .map(|i| (&publics[i % 3], messages[i].as_slice(), &sigs[i]))
                .collect();
            verify_many(&list)
        };
        assert!(items(&sigs, &messages).iter().all(|ok| *ok));
        // One bad signature in the first batch, one wrong message in the third, one
        // signature under another key in the second: exactly those are refused.
        let mut bytes = sigs[5].to_bytes();
        bytes[40] ^= 1;
        sigs[5] = Signature::from_bytes(&bytes);
        sigs[71] = keys[0].sign(&messages[71]); // message 71 is checked under key 2
        let mut messages = messages;
        messages[140].push(0);
        let got = items(&sigs, &messages);
        for (i, ok) in got.iter().enumerate() {
            let strict = publics[i % 3].verify(&messages[i], &sigs[i]);
            assert_eq!(*ok, strict, "signature {i}");
            assert_eq!(*ok, ![5, 71, 140].contains(&i), "signature {i}");
        }
        // One signature alone is checked strictly, and nothing is an empty answer.
        assert_eq!(
            verify_many(&[(&publics[0], &messages[0], &sigs[0])]),
            vec![true]
        );
        assert!(verify_many(&[]).is_empty());
    }

    #[test]
    fn verify_many_never_batches_a_small_order_key() {
        // The identity point as a public key: with it, (R = B, S = 1) satisfies the plain
        // Ed25519 equation for every message. Strict verification refuses such keys, and a
        // batch would not notice; so weak keys are checked one by one, and refused.
        let weak = PublicKey::from_bytes(&{
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        })
        .expect("the identity point decodes");
        // R: the base point B, compressed (y = 4/5); S = 1.
        let mut forged = [0x66u8; 64];
        forged[0] = 0x58;
        forged[32..].fill(0);
        forged[32] = 1;
        let forged = Signature::from_bytes(&forged);
        assert!(
            weak.verify_rfc8032(b"anything", &forged),
            "the forgery is real"
        );
        let honest = SecretKey::generate();
        let (a, b) = (honest.sign(b"one"), honest.sign(b"two"));
        let hp = honest.public();
        let got = verify_many(&[
            (&hp, b"one", &a),
            (&weak, b"anything", &forged),
            (&hp, b"two", &b),
        ]);
        assert_eq!(got, vec![true, false, true]);
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
