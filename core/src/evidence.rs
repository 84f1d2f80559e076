//! Equivocation evidence: proof that a department signed two different blocks at one
//! height, and its one byte encoding (gossiped between nodes, kept in the node's store).
//!
//! An `Equivocation` exists only once both blocks were checked: same department, same
//! height, different hashes, each validly signed by that department's issuer key for this
//! network. `decode` checks all of that again, so bytes from a peer or from disk never
//! become evidence they do not prove. It must never accept a pair it has not checked.
//!
//! ```text
//! evidence = len(first) (u32 big-endian) ‖ first ‖ second     ; canonical block bytes
//! ```
//!
//! `encode` writes the block with the lower hash first, so one pair is always the same
//! bytes. `decode` takes the two blocks in either order and orders them the same way.

use crate::genesis::Network;
use crate::ids::DepartmentId;
use crate::ledger::{Block, CodecError, BLOCK_BYTES_MAX};
use crate::validate::{check_signature, BlockError};

/// Upper bound on encoded evidence: the length prefix and two blocks of the largest size.
pub const EVIDENCE_BYTES_MAX: usize = 4 + 2 * BLOCK_BYTES_MAX;

/// Proof that a department signed two different blocks at one height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    department: DepartmentId,
    height: u64,
    /// The block with the lower hash.
    first: Block,
    second: Block,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("evidence of {bytes} bytes, at most {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("evidence is truncated: its length prefix runs past the end")]
    Truncated,
    #[error("first block of the evidence: {0}")]
    First(CodecError),
    #[error("second block of the evidence: {0}")]
    Second(CodecError),
    #[error("the two blocks are of different departments or heights")]
    Mismatch,
    #[error("the two blocks are the same block")]
    SameBlock,
    /// Boxed: the rule's values are rarely needed, and every `Result` carrying this
    /// error stays small.
    #[error("a block of the evidence is not validly signed: {0}")]
    Signature(Box<BlockError>),
}

impl Equivocation {
    /// Builds and checks evidence: both blocks validly signed by the same department for
    /// this network, at the same height, with different hashes.
    pub fn new(net: &Network, first: Block, second: Block) -> Result<Self, EvidenceError> {
        if first.department() != second.department() || first.height() != second.height() {
            return Err(EvidenceError::Mismatch);
        }
        if first.hash() == second.hash() {
            return Err(EvidenceError::SameBlock);
        }
        for block in [&first, &second] {
            check_signature(net, block).map_err(|e| EvidenceError::Signature(Box::new(e)))?;
        }
        // Order canonically so that the same pair is always the same evidence.
        let (first, second) = if first.hash() < second.hash() {
            (first, second)
        } else {
            (second, first)
        };
        Ok(Self {
            department: first.department().clone(),
            height: first.height(),
            first,
            second,
        })
    }

    pub fn department(&self) -> &DepartmentId {
        &self.department
    }

    pub fn height(&self) -> u64 {
        self.height
    }

    /// The block with the lower hash.
    pub fn first(&self) -> &Block {
        &self.first
    }

    /// The block with the higher hash.
    pub fn second(&self) -> &Block {
        &self.second
    }

    /// The evidence's bytes (see the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let first = self.first.encode();
        let second = self.second.encode();
        let len = u32::try_from(first.len())
            .expect("a block's canonical encoding is far below 4 GiB (BLOCK_BYTES_MAX)");
        let mut out = Vec::with_capacity(4 + first.len() + second.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&first);
        out.extend_from_slice(&second);
        out
    }

    /// Reads evidence and checks it as `new` does. Bounded and total: any input gives a
    /// value or an error, never a panic.
    pub fn decode(net: &Network, bytes: &[u8]) -> Result<Self, EvidenceError> {
        let (first, second) = Self::blocks(bytes)?;
        Self::new(net, first, second)
    }

    /// The two blocks of evidence bytes, read but NOT checked: for showing evidence this
    /// node checked (`decode`, `new`) when it stored it, without verifying two signatures
    /// per request. Bounded and total like `decode`.
    pub fn blocks(bytes: &[u8]) -> Result<(Block, Block), EvidenceError> {
        if bytes.len() > EVIDENCE_BYTES_MAX {
            return Err(EvidenceError::TooLarge {
                bytes: bytes.len(),
                max: EVIDENCE_BYTES_MAX,
            });
        }
        let (prefix, blocks) = bytes
            .split_first_chunk::<4>()
            .ok_or(EvidenceError::Truncated)?;
        let first_len =
            usize::try_from(u32::from_be_bytes(*prefix)).map_err(|_| EvidenceError::Truncated)?;
        if first_len > blocks.len() {
            return Err(EvidenceError::Truncated);
        }
        let (first, second) = blocks.split_at(first_len);
        let first = Block::decode(first).map_err(EvidenceError::First)?;
        let second = Block::decode(second).map_err(EvidenceError::Second)?;
        Ok((first, second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;
    use crate::genesis::tests::sample;
    use crate::ledger::tests::issue;
    use crate::ledger::{BlockHeader, Record};
    use proptest::prelude::*;

    const GD: &str = "gd.transport";

    struct Fixture {
        net: Network,
        keys: Vec<(DepartmentId, SecretKey)>,
    }

    impl Fixture {
        fn new() -> Self {
            let (doc, keys) = sample();
            Self {
                net: Network::from_document(doc).expect("genesis"),
                keys,
            }
        }

        /// Department `dept`'s block at `height` with `records`, signed by `signer`'s key.
        fn block(&self, dept: usize, signer: usize, height: u64, records: Vec<Record>) -> Block {
            BlockHeader {
                version: 1,
                genesis: self.net.hash(),
                department: self.keys[dept].0.clone(),
                height,
                prev: self.net.hash(),
                time_ms: 1_760_000_000_000,
                gov: 0,
                records,
            }
            .sign(&self.keys[signer].1)
        }

        fn pair(&self, height: u64) -> (Block, Block) {
            (
                self.block(0, 0, height, vec![issue(GD, "mvdl", 1)]),
                self.block(0, 0, height, vec![issue(GD, "mvdl", 2)]),
            )
        }
    }

    #[test]
    fn new_checks_the_proof_and_orders_the_pair() {
        let f = Fixture::new();
        let (a, b) = f.pair(1);
        let e = Equivocation::new(&f.net, a.clone(), b.clone()).expect("evidence");
        assert_eq!(
            e,
            Equivocation::new(&f.net, b.clone(), a.clone()).expect("same")
        );
        assert!(e.first().hash() < e.second().hash());
        assert_eq!((e.department(), e.height()), (&f.keys[0].0, 1));
        assert_eq!(
            Equivocation::new(&f.net, a.clone(), a.clone()),
            Err(EvidenceError::SameBlock)
        );
        let forged = f.block(0, 1, 1, vec![issue(GD, "mvdl", 3)]);
        assert!(matches!(
            Equivocation::new(&f.net, a.clone(), forged),
            Err(EvidenceError::Signature(e)) if matches!(*e, BlockError::BadSignature { .. })
        ));
        let other_dept = f.block(2, 2, 1, vec![issue("sh.transport", "mvdl", 1)]);
        assert_eq!(
            Equivocation::new(&f.net, a.clone(), other_dept),
            Err(EvidenceError::Mismatch)
        );
        let other_height = f.block(0, 0, 2, vec![issue(GD, "mvdl", 2)]);
        assert_eq!(
            Equivocation::new(&f.net, a, other_height),
            Err(EvidenceError::Mismatch)
        );
    }

    #[test]
    fn encoding_is_the_documented_layout() {
        let f = Fixture::new();
        let (a, b) = f.pair(4);
        let e = Equivocation::new(&f.net, a, b).expect("evidence");
        let (first, second) = (e.first().encode(), e.second().encode());
        let mut expected = (first.len() as u32).to_be_bytes().to_vec();
        expected.extend_from_slice(&first);
        expected.extend_from_slice(&second);
        assert_eq!(e.encode(), expected);
    }

    #[test]
    fn decode_takes_either_order() {
        let f = Fixture::new();
        let (a, b) = f.pair(1);
        let e = Equivocation::new(&f.net, a, b).expect("evidence");
        let second = e.second().encode();
        let mut swapped = (second.len() as u32).to_be_bytes().to_vec();
        swapped.extend_from_slice(&second);
        swapped.extend_from_slice(&e.first().encode());
        assert_eq!(Equivocation::decode(&f.net, &swapped), Ok(e));
    }

    /// Every way bytes can fail, each with the error that names it.
    #[test]
    fn decode_errors() {
        let f = Fixture::new();
        let (a, b) = f.pair(1);
        let good = Equivocation::new(&f.net, a.clone(), b)
            .expect("evidence")
            .encode();
        let first_len = a.encode().len();
        let with_prefix = |len: u32, rest: &[u8]| {
            let mut v = len.to_be_bytes().to_vec();
            v.extend_from_slice(rest);
            v
        };
        type Case = (&'static str, Vec<u8>, fn(&EvidenceError) -> bool);
        let cases: Vec<Case> = vec![
            ("empty", vec![], |e| *e == EvidenceError::Truncated),
            ("short prefix", vec![0, 0, 1], |e| {
                *e == EvidenceError::Truncated
            }),
            (
                "length past the end",
                with_prefix(u32::MAX, &good[4..]),
                |e| *e == EvidenceError::Truncated,
            ),
            ("no first block", with_prefix(0, &good[4..]), |e| {
                matches!(e, EvidenceError::First(_))
            }),
            ("no second block", good[..4 + first_len].to_vec(), |e| {
                matches!(e, EvidenceError::Second(_))
            }),
            ("trailing byte", [good.as_slice(), &[0]].concat(), |e| {
                matches!(e, EvidenceError::Second(CodecError::NotCanonical))
            }),
            ("too large", vec![0; EVIDENCE_BYTES_MAX + 1], |e| {
                matches!(e, EvidenceError::TooLarge { .. })
            }),
            (
                "one block twice",
                with_prefix(first_len as u32, &[a.encode(), a.encode()].concat()),
                |e| *e == EvidenceError::SameBlock,
            ),
        ];
        for (name, bytes, expected) in cases {
            let err = Equivocation::decode(&f.net, &bytes).expect_err(name);
            assert!(expected(&err), "{name}: {err}");
        }
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(height in 1u64..u64::MAX, x in 0u64..1000, y in 0u64..1000) {
            prop_assume!(x != y);
            let f = Fixture::new();
            let a = f.block(0, 0, height, vec![issue(GD, "mvdl", x)]);
            let b = f.block(0, 0, height, vec![issue(GD, "mvdl", x), issue(GD, "mvdl", y)]);
            let e = Equivocation::new(&f.net, a, b).expect("evidence");
            prop_assert_eq!(Equivocation::decode(&f.net, &e.encode()), Ok(e));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let f = Fixture::new();
            prop_assert!(Equivocation::decode(&f.net, &bytes).is_err());
        }

        #[test]
        fn mutated_evidence_never_panics(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let f = Fixture::new();
            let (a, b) = f.pair(1);
            let mut bytes = Equivocation::new(&f.net, a, b).expect("evidence").encode();
            let i = pos.index(bytes.len());
            bytes[i] = byte;
            let _ = Equivocation::decode(&f.net, &bytes);
        }
    }
}
