//! Transparency-log pieces (docs/checkpoints.md): RFC 6962 Merkle trees over a
//! department's records, kept as stored hashes, with inclusion and consistency proofs;
//! and the C2SP note formats that carry checkpoints and witness cosignatures
//! (signed-note, tlog-checkpoint, tlog-cosignature).
//!
//! Stored hashes: the hash of every complete, aligned subtree, addressed by
//! `(level, index)`: level 0 holds the leaf hashes, and `(k, i)` the subtree of leaves
//! `i·2ᵏ .. (i+1)·2ᵏ`. Appending a leaf adds that leaf and the subtrees it completes
//! (`appended`); a root or a proof reads O(log n) of them through a `HashReader`, so the
//! caller decides where they live (sled in the node, a map in tests).
//!
//! This module does no I/O and never reads a clock: times are passed in. Every parser is
//! bounded and total.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::crypto::{Hash32, PublicKey, SecretKey, Signature};

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash32 {
    Hash32(Sha256::digest([]).into())
}

/// RFC 6962 leaf hash: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Hash32(h.finalize().into())
}

/// RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash32(h.finalize().into())
}

/// Why a tree could not answer, or a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogError {
    #[error("leaf {index} is not in a tree of {size}")]
    IndexPastSize { index: u64, size: u64 },
    #[error("a tree of {new} cannot follow one of {old}")]
    SizesOutOfOrder { old: u64, new: u64 },
    #[error("the stored hash at level {level}, index {index} is missing")]
    Missing { level: u8, index: u64 },
    #[error("the proof has {got} hashes where {expected} were expected")]
    ProofLength { got: usize, expected: usize },
    #[error("the proof does not lead to the root")]
    RootMismatch,
}

/// Where the stored hashes are read from.
pub trait HashReader {
    /// The stored hash of the complete subtree at `(level, index)`, if stored.
    fn stored(&self, level: u8, index: u64) -> Option<Hash32>;
}

/// The stored hashes to add when the leaf with hash `leaf` is appended as leaf number
/// `index` (the tree had `index` leaves): the leaf, then each subtree it completes.
pub fn appended(
    index: u64,
    leaf: Hash32,
    read: &impl HashReader,
) -> Result<Vec<(u8, u64, Hash32)>, TlogError> {
    let mut out = vec![(0u8, index, leaf)];
    let (mut level, mut i, mut h) = (0u8, index, leaf);
    while i & 1 == 1 {
        let left = read.stored(level, i - 1).ok_or(TlogError::Missing {
            level,
            index: i - 1,
        })?;
        h = node_hash(&left, &h);
        level += 1;
        i >>= 1;
        out.push((level, i, h));
    }
    Ok(out)
}

/// How many stored hashes a tree of `size` leaves holds: leaf x adds level 0 and the
/// `trailing_ones(x)` subtrees it completes, so level ℓ holds ⌊size/2^ℓ⌋ of them, and
/// Σ_ℓ ⌊size/2^ℓ⌋ = 2·size − popcount(size). (u128: a tree of 2^64 − 1 leaves holds
/// more than 2^64 hashes.)
pub fn stored_count(size: u64) -> u128 {
    2 * u128::from(size) - u128::from(size.count_ones())
}

/// The leaf whose append completes the subtree `(level, index)` (its last leaf,
/// `(index + 1)·2^level − 1`), so the one that adds its stored hash; `None` when that is
/// past the last leaf a u64 numbers.
pub fn completing_leaf(level: u8, index: u64) -> Option<u64> {
    let n = index.checked_add(1)?;
    if u32::from(level) > n.leading_zeros() {
        return None;
    }
    Some((n << level) - 1)
}

/// Where the stored hash `(level, index)` stands among the hashes `appended` adds for
/// leaves `start, start + 1, …` in turn, concatenated (how the node keeps a block's
/// hashes together): after everything the leaves `start..L` added, L being its completing
/// leaf, and `level` places into what L adds (level 0 first, then each subtree it
/// completes, upwards). `None` when L comes before `start`.
pub fn appended_position(start: u64, level: u8, index: u64) -> Option<u64> {
    let leaf = completing_leaf(level, index)?;
    if leaf < start {
        return None;
    }
    u64::try_from(stored_count(leaf) - stored_count(start) + u128::from(level)).ok()
}

/// The root of a tree fed one leaf at a time, in O(log n) memory: the hashes of its
/// complete subtrees along the right edge (what `huren-node check` uses to recompute a
/// chain's root from its blocks without holding every hash).
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    size: u64,
    /// (level, hash) of complete subtrees, largest first.
    edge: Vec<(u8, Hash32)>,
}

impl Frontier {
    /// Adds the next leaf; the complete subtrees it makes, as `(level, index, hash)`:
    /// exactly the stored hashes `appended` adds for it.
    pub fn push(&mut self, leaf: Hash32) -> Vec<(u8, u64, Hash32)> {
        let n = self.size;
        let mut made = vec![(0u8, n, leaf)];
        let mut h = (0u8, leaf);
        while let Some(&(level, left)) = self.edge.last() {
            if level != h.0 {
                break;
            }
            self.edge.pop();
            h = (level + 1, node_hash(&left, &h.1));
            made.push((h.0, n >> h.0, h.1));
        }
        self.edge.push(h);
        self.size += 1;
        made
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The RFC 6962 root of the leaves pushed so far.
    pub fn root(&self) -> Hash32 {
        let mut it = self.edge.iter().rev();
        let Some(&(_, mut r)) = it.next() else {
            return empty_root();
        };
        for (_, left) in it {
            r = node_hash(left, &r);
        }
        r
    }
}

/// The largest power of two strictly less than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[lo:hi]) from the stored hashes: the RFC's left subtrees are complete and aligned,
/// so each is one read.
fn subtree(lo: u64, hi: u64, read: &impl HashReader) -> Result<Hash32, TlogError> {
    let n = hi - lo;
    if n.is_power_of_two() && lo % n == 0 {
        let level = n.trailing_zeros() as u8;
        let index = lo >> level;
        return read
            .stored(level, index)
            .ok_or(TlogError::Missing { level, index });
    }
    let k = split(n);
    Ok(node_hash(
        &subtree(lo, lo + k, read)?,
        &subtree(lo + k, hi, read)?,
    ))
}

/// The root of the tree's first `size` leaves.
pub fn root(size: u64, read: &impl HashReader) -> Result<Hash32, TlogError> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree(0, size, read)
}

/// RFC 6962 PATH(index, D[0:size]): the inclusion proof of leaf `index`.
pub fn inclusion_proof(
    index: u64,
    size: u64,
    read: &impl HashReader,
) -> Result<Vec<Hash32>, TlogError> {
    if index >= size {
        return Err(TlogError::IndexPastSize { index, size });
    }
    let mut out = Vec::new();
    let (mut lo, mut hi) = (0u64, size);
    // Top-down, then reversed: the RFC's recursion appends on the way back up.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            out.push(subtree(lo + k, hi, read)?);
            hi = lo + k;
        } else {
            out.push(subtree(lo, lo + k, read)?);
            lo += k;
        }
    }
    out.reverse();
    Ok(out)
}

/// RFC 6962 PROOF(old, D[0:new]): the consistency proof from the first `old` leaves to
/// the first `new`.
pub fn consistency_proof(
    old: u64,
    new: u64,
    read: &impl HashReader,
) -> Result<Vec<Hash32>, TlogError> {
    if old > new {
        return Err(TlogError::SizesOutOfOrder { old, new });
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let (mut m, mut lo, mut hi, mut whole) = (old, 0u64, new, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push(subtree(lo, hi, read)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            out.push(subtree(lo + k, hi, read)?);
            hi = lo + k;
        } else {
            out.push(subtree(lo, lo + k, read)?);
            lo += k;
            m -= k;
            whole = false;
        }
    }
    out.reverse();
    Ok(out)
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash32,
    index: u64,
    size: u64,
    proof: &[Hash32],
    root: &Hash32,
) -> Result<(), TlogError> {
    if index >= size {
        return Err(TlogError::IndexPastSize { index, size });
    }
    let (mut f, mut s, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if s == 0 {
            return Err(TlogError::ProofLength {
                got: proof.len(),
                expected: inclusion_len(index, size),
            });
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(TlogError::ProofLength {
            got: proof.len(),
            expected: inclusion_len(index, size),
        });
    }
    if r != *root {
        return Err(TlogError::RootMismatch);
    }
    Ok(())
}

/// How many hashes an inclusion proof of `index` in a tree of `size` has.
fn inclusion_len(index: u64, size: u64) -> usize {
    let (mut lo, mut hi, mut n) = (0u64, size, 0usize);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            hi = lo + k;
        } else {
            lo += k;
        }
        n += 1;
    }
    n
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2): the tree of `new` leaves with root
/// `new_root` extends the tree of `old` leaves with root `old_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash32,
    new_root: &Hash32,
    proof: &[Hash32],
) -> Result<(), TlogError> {
    if old > new {
        return Err(TlogError::SizesOutOfOrder { old, new });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(TlogError::ProofLength {
                got: proof.len(),
                expected: 0,
            });
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(TlogError::RootMismatch)
        };
    }
    if old == 0 {
        // Every tree extends the empty one.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(TlogError::ProofLength {
                got: proof.len(),
                expected: 0,
            })
        };
    }
    let bad_len = || TlogError::ProofLength {
        got: proof.len(),
        expected: 0,
    };
    let mut path: Vec<Hash32> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(bad_len());
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(bad_len());
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(bad_len());
    }
    if fr != *old_root || sr != *new_root {
        return Err(TlogError::RootMismatch);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The status set of a department: its suspended and revoked licences

/// A licence's place in its department's status set: the first 16 bytes of
/// SHA-256("huren/status-id/v1" ‖ licence id). The set is sorted by it, so that a licence
/// that is not in the set can be shown not to be (two neighbours and their proofs).
pub fn status_key(id: &crate::ids::LicenceId) -> [u8; 16] {
    let d = Hash32::digest_parts(&[b"huren/status-id/v1", id.to_string().as_bytes()]);
    let mut k = [0u8; 16];
    k.copy_from_slice(&d.0[..16]);
    k
}

/// A superseded credential's place in its department's status set: the first 16 bytes of
/// SHA-256("huren/status-credential/v1" ‖ commitment). A renewal, reissue or amendment
/// puts the credential it replaces there until that credential's own expiry, so that an
/// offline verifier holding the set refuses a lost card (docs/lifecycle.md).
pub fn credential_status_key(commitment: &Hash32) -> [u8; 16] {
    let d = Hash32::digest_parts(&[b"huren/status-credential/v1", &commitment.0]);
    let mut k = [0u8; 16];
    k.copy_from_slice(&d.0[..16]);
    k
}

/// The first status byte of a superseded credential's entry; the second says what
/// replaced it (`superseded_code`).
pub const SUPERSEDED: u8 = 4;

/// The second status byte of a superseded credential's entry: 0 renew, 1 reissue, 2
/// amend; `None` for a kind that brings in no replacing credential.
pub fn superseded_code(kind: crate::ledger::RecordKind) -> Option<u8> {
    use crate::ledger::RecordKind as K;
    match kind {
        K::Renew => Some(0),
        K::Reissue => Some(1),
        K::Amend => Some(2),
        _ => None,
    }
}

/// Whether two status bytes are a superseded credential's.
pub fn is_superseded(bytes: [u8; 2]) -> bool {
    bytes[0] == SUPERSEDED && bytes[1] <= 2
}

/// A status set entry: the key, then the status and reason bytes; none for an active
/// licence (the set holds only suspended, revoked and transferred licences, and the
/// credentials superseded under `credential_status_key`).
pub fn status_entry(
    id: &crate::ids::LicenceId,
    status: crate::validate::LicenceStatus,
) -> Option<[u8; 18]> {
    if status == crate::validate::LicenceStatus::Active {
        return None;
    }
    let mut e = [0u8; 18];
    e[..16].copy_from_slice(&status_key(id));
    e[16..].copy_from_slice(&status.to_bytes());
    Some(e)
}

/// The root of a status set given in key order: the RFC 6962 root of its entries as
/// leaves. How many entries, and the root.
pub fn status_root(sorted: impl IntoIterator<Item = [u8; 18]>) -> (u64, Hash32) {
    let mut f = Frontier::default();
    for e in sorted {
        f.push(leaf_hash(&e));
    }
    (f.size(), f.root())
}

// ---------------------------------------------------------------------------------------
// Notes (C2SP signed-note), checkpoints (tlog-checkpoint), cosignatures (tlog-cosignature)

/// Signature type of an Ed25519 note signature.
pub const ALG_ED25519: u8 = 0x01;
/// Signature type of a timestamped Ed25519 witness cosignature.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// A note's text at most: a checkpoint is a few hundred bytes.
pub const NOTE_TEXT_BYTES_MAX: usize = 16 * 1024;
/// Signatures on one note at most (the spec asks verifiers to accept at least 16).
pub const NOTE_SIGNATURES_MAX: usize = 64;
/// A key name at most.
pub const NOTE_NAME_BYTES_MAX: usize = 256;

/// A signed-note key id: the first four bytes, big-endian, of
/// SHA-256(name ‖ 0x0A ‖ type ‖ public key).
pub fn key_id(name: &str, alg: u8, key: &PublicKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', alg]);
    h.update(key.to_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A signed-note verifier key string: `<name>+<key id, 8 hex>+<base64(type ‖ key)>`.
pub fn verifier_key(name: &str, alg: u8, key: &PublicKey) -> String {
    let mut k = vec![alg];
    k.extend_from_slice(&key.to_bytes());
    format!("{name}+{:08x}+{}", key_id(name, alg, key), B64.encode(k))
}

/// One signature line of a note: `— <name> <base64(key id ‖ signature bytes)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: u32,
    pub bytes: Vec<u8>,
}

/// A signed note: its text (ending in a newline) and its signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

/// Why a note, a checkpoint or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the note is {0} bytes, more than allowed")]
    TooLarge(usize),
    #[error("more than {NOTE_SIGNATURES_MAX} signatures")]
    TooManySignatures,
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("malformed checkpoint: {0}")]
    Checkpoint(&'static str),
    #[error("no signature by {0} verifies")]
    Unsigned(String),
    #[error("the signature by {0} does not verify")]
    BadSignature(String),
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NOTE_NAME_BYTES_MAX
        && !name.contains('+')
        && !name.chars().any(char::is_whitespace)
}

impl Note {
    /// The note with no signatures yet; `text` must end in a newline and hold no other
    /// control character.
    pub fn new(text: String) -> Result<Self, NoteError> {
        check_text(&text)?;
        Ok(Self {
            text,
            signatures: Vec::new(),
        })
    }

    /// Reads a note, bounded: the text is what comes before the last blank line.
    pub fn parse(input: &str) -> Result<Self, NoteError> {
        if input.len() > NOTE_TEXT_BYTES_MAX + NOTE_SIGNATURES_MAX * 512 {
            return Err(NoteError::TooLarge(input.len()));
        }
        let split = input
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, sigs) = (&input[..split + 1], &input[split + 2..]);
        check_text(text)?;
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "the last signature line has no newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == NOTE_SIGNATURES_MAX {
                return Err(NoteError::TooManySignatures);
            }
            let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed(
                "a signature line must start with '— '",
            ))?;
            let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
                "a signature line is '— name signature'",
            ))?;
            if !name_ok(name) {
                return Err(NoteError::Malformed("bad key name"));
            }
            let raw = B64
                .decode(b64)
                .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
            if raw.len() < 5 {
                return Err(NoteError::Malformed("a signature is too short"));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
                bytes: raw[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signature"));
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note as text: its text, a blank line, its signature lines.
    pub fn encode(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            let mut raw = s.key_id.to_be_bytes().to_vec();
            raw.extend_from_slice(&s.bytes);
            out.push_str(&format!("\u{2014} {} {}\n", s.name, B64.encode(raw)));
        }
        out
    }

    /// Adds an Ed25519 signature by `name`'s `key` over the text.
    pub fn sign(&mut self, name: &str, key: &SecretKey) {
        let sig = key.sign(self.text.as_bytes());
        self.signatures.push(NoteSignature {
            name: name.to_owned(),
            key_id: key_id(name, ALG_ED25519, &key.public()),
            bytes: sig.to_bytes().to_vec(),
        });
    }

    /// Checks the Ed25519 signature by `name` with `key`: there must be one with that
    /// name and key id, and it must verify.
    pub fn verify(&self, name: &str, key: &PublicKey) -> Result<(), NoteError> {
        let id = key_id(name, ALG_ED25519, key);
        let s = self
            .signatures
            .iter()
            .find(|s| s.name == name && s.key_id == id)
            .ok_or_else(|| NoteError::Unsigned(name.to_owned()))?;
        let sig = Signature::from_slice(&s.bytes)
            .ok_or_else(|| NoteError::BadSignature(name.to_owned()))?;
        if key.verify(self.text.as_bytes(), &sig) {
            Ok(())
        } else {
            Err(NoteError::BadSignature(name.to_owned()))
        }
    }

    /// Adds a witness cosignature (tlog-cosignature v1) by `name`'s `key` at `time`
    /// (unix seconds).
    pub fn cosign(&mut self, name: &str, key: &SecretKey, time: u64) {
        let sig = key.sign(&cosigned_message(&self.text, time));
        let mut bytes = time.to_be_bytes().to_vec();
        bytes.extend_from_slice(&sig.to_bytes());
        self.signatures.push(NoteSignature {
            name: name.to_owned(),
            key_id: key_id(name, ALG_COSIGNATURE_V1, &key.public()),
            bytes,
        });
    }

    /// Checks the cosignature by witness `name` with `key`; its time (unix seconds).
    pub fn verify_cosignature(&self, name: &str, key: &PublicKey) -> Result<u64, NoteError> {
        let id = key_id(name, ALG_COSIGNATURE_V1, key);
        let s = self
            .signatures
            .iter()
            .find(|s| s.name == name && s.key_id == id)
            .ok_or_else(|| NoteError::Unsigned(name.to_owned()))?;
        let bad = || NoteError::BadSignature(name.to_owned());
        if s.bytes.len() != 72 {
            return Err(bad());
        }
        let time = u64::from_be_bytes(s.bytes[..8].try_into().map_err(|_| bad())?);
        if time > i64::MAX as u64 {
            return Err(bad());
        }
        let sig = Signature::from_slice(&s.bytes[8..]).ok_or_else(bad)?;
        if key.verify(&cosigned_message(&self.text, time), &sig) {
            Ok(time)
        } else {
            Err(bad())
        }
    }
}

/// What a witness signs: `cosignature/v1\ntime <secs>\n` and the checkpoint's text.
fn cosigned_message(text: &str, time: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{text}").into_bytes()
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if text.len() > NOTE_TEXT_BYTES_MAX {
        return Err(NoteError::TooLarge(text.len()));
    }
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text must end in a newline"));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed("control characters in the text"));
    }
    Ok(())
}

/// A checkpoint (tlog-checkpoint): origin, tree size, root, extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash32,
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The checkpoint's note text.
    pub fn text(&self) -> String {
        let mut t = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root.0)
        );
        for e in &self.extensions {
            t.push_str(e);
            t.push('\n');
        }
        t
    }

    /// Reads a checkpoint from a note's text: three lines at least, the size in decimal
    /// without leading zeros, the root 32 bytes of base64; further lines are extensions.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        check_text(text)?;
        let mut lines = text[..text.len() - 1].split('\n');
        let bad = NoteError::Checkpoint;
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(bad("origin"))?;
        let size = lines.next().ok_or(bad("size"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad(
                "the size is not a decimal number without leading zeros",
            ));
        }
        let size: u64 = size.parse().map_err(|_| bad("size out of range"))?;
        let root = B64
            .decode(lines.next().ok_or(bad("root"))?)
            .map_err(|_| bad("the root is not base64"))?;
        let root = Hash32(
            root.try_into()
                .map_err(|_| bad("the root is not 32 bytes"))?,
        );
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

#[cfg(test)]
mod tests;
