//! What travels between nodes: gossip messages (a tag byte, then a block or equivocation
//! evidence) and catch-up requests and answers, with the bounds that apply to each.
//!
//! Every decoder here is bounded and total: a peer's bytes give a value or a `WireError`,
//! never a panic. This module must never apply or store anything; it only reads and
//! writes messages.

use huren_core::checkpoint::{CheckpointConflict, CheckpointError, SignedCheckpoint};
use huren_core::governance::{GovBlock, GovCodecError};
use huren_core::tlog::NoteError;
use huren_core::{Block, DepartmentId, Equivocation, EvidenceError, Network};
use libp2p::request_response;
use serde::{Deserialize, Serialize};

/// The gossipsub topic of new blocks and equivocation evidence.
pub const TOPIC: &str = "huren/1";
/// The request-response protocol of catch-up.
pub(crate) const CATCHUP_PROTOCOL: &str = "/huren/catchup/1";
/// A catch-up request names a department and a height: far below this.
pub(crate) const CATCHUP_REQUEST_BYTES_MAX: u64 = 64 * 1024;
/// Room above `catchup_bytes_max` for the CBOR framing of an answer: a server may send one
/// block past its byte budget (at least one block if any exists).
const CATCHUP_FRAMING_BYTES: u64 = 64 * 1024;
/// Room above `gossip_message_bytes_max` for the tag byte and gossipsub's own framing.
pub(crate) const GOSSIP_FRAMING_BYTES: usize = 1024;

const TAG_BLOCK: u8 = 1;
const TAG_EVIDENCE: u8 = 2;
const TAG_GOV: u8 = 3;
const TAG_CHECKPOINT: u8 = 4;
const TAG_CHECKPOINT_CONFLICT: u8 = 5;
/// The name the governance chain goes by in a heads answer: not a department id (those
/// have a dot), so a node that does not know it passes over it.
pub(crate) const GOV_CHAIN: &str = "gov";
/// Governance blocks in one catch-up answer at most.
pub(crate) const GOV_CATCHUP_BLOCKS_MAX: usize = 64;

/// A catch-up request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatchupRequest {
    /// The height of every chain the peer holds.
    Heads,
    /// Encoded blocks of `department` from height `from`, in order, in a bounded batch.
    Blocks { department: String, from: u64 },
    /// Encoded governance blocks from height `from`, in order, at most
    /// `GOV_CATCHUP_BLOCKS_MAX`.
    Governance { from: u64 },
    /// The checkpoints the peer holds: each department's newest and newest counted.
    Checkpoints,
}

/// A catch-up answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatchupResponse {
    Heads(Vec<(String, u64)>),
    Blocks(Vec<serde_bytes::ByteBuf>),
    /// Signed checkpoint notes, at most `CHECKPOINTS_ANSWER_MAX`.
    Checkpoints(Vec<String>),
    Error(String),
}

/// Checkpoint notes in one answer at most: two per department of the largest network.
pub(crate) const CHECKPOINTS_ANSWER_MAX: usize = 2 * huren_core::genesis::DEPARTMENTS_MAX;

/// The protocol's bounds on a catch-up answer, whatever a node's limits say: every node's
/// `catchup_blocks_max` and `catchup_bytes_max` must lie within them (`Config::validate`),
/// so that an answer a peer was configured to send is never taken for a lie here.
pub const CATCHUP_BLOCKS_MAX: usize = 256;
pub const CATCHUP_BYTES_MAX: usize = 32 * 1024 * 1024;

/// The catch-up codec, bounded on both sides: requests by `CATCHUP_REQUEST_BYTES_MAX`,
/// answers by the protocol's `CATCHUP_BYTES_MAX` plus framing (a peer may be configured
/// to send more than this node would). Longer input fails to decode.
pub(crate) fn catchup_codec(
) -> request_response::cbor::codec::Codec<CatchupRequest, CatchupResponse> {
    request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(CATCHUP_REQUEST_BYTES_MAX)
        .set_response_size_maximum(CATCHUP_BYTES_MAX as u64 + CATCHUP_FRAMING_BYTES)
}

/// The gossip message that carries a block.
pub fn block_message(block: &Block) -> Vec<u8> {
    let mut data = vec![TAG_BLOCK];
    data.extend_from_slice(&block.encode());
    data
}

/// The gossip message that carries a governance block.
pub(crate) fn gov_message(block: &GovBlock) -> Vec<u8> {
    let mut data = vec![TAG_GOV];
    data.extend_from_slice(&block.encode());
    data
}

/// The gossip message that carries a signed checkpoint with the cosignatures that go
/// with it (a witness sends the department's signature and its own).
pub(crate) fn checkpoint_message(note: &str) -> Vec<u8> {
    let mut data = vec![TAG_CHECKPOINT];
    data.extend_from_slice(note.as_bytes());
    data
}

/// The gossip message that carries two conflicting checkpoints of one department.
pub(crate) fn checkpoint_conflict_message(ev: &CheckpointConflict) -> Vec<u8> {
    let mut data = vec![TAG_CHECKPOINT_CONFLICT];
    data.extend_from_slice(&ev.encode());
    data
}

/// The gossip message that carries equivocation evidence (`core::evidence`).
pub(crate) fn evidence_message(ev: &Equivocation) -> Vec<u8> {
    let mut data = vec![TAG_EVIDENCE];
    data.extend_from_slice(&ev.encode());
    data
}

/// A gossip message, decoded (and, for evidence, checked: `Equivocation` exists only as
/// a proof).
#[derive(Debug, Clone, PartialEq, Eq)]
// A decoded message lives only while the applier handles it: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Gossip {
    Block(Block),
    Evidence(Equivocation),
    Gov(GovBlock),
    /// A checkpoint its department's signature proves (cosignatures not yet checked).
    Checkpoint(SignedCheckpoint),
    /// Two checkpoints proven to conflict.
    CheckpointConflict(CheckpointConflict),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("empty gossip message")]
    Empty,
    #[error("gossip message with unknown tag {0}")]
    UnknownTag(u8),
    #[error("undecodable block: {0}")]
    Block(huren_core::ledger::CodecError),
    #[error("bad equivocation evidence: {0}")]
    Evidence(EvidenceError),
    #[error("undecodable governance block: {0}")]
    Gov(GovCodecError),
    #[error("bad checkpoint: {0}")]
    Checkpoint(CheckpointError),
}

impl Gossip {
    /// Reads a gossip message. Blocks are bounded by `Block::decode`, evidence by
    /// `Equivocation::decode`; gossipsub bounds the whole message before this.
    pub(crate) fn decode(net: &Network, data: &[u8]) -> Result<Self, WireError> {
        match data.split_first() {
            None => Err(WireError::Empty),
            Some((&TAG_BLOCK, body)) => Block::decode(body)
                .map(Gossip::Block)
                .map_err(WireError::Block),
            Some((&TAG_EVIDENCE, body)) => Equivocation::decode(net, body)
                .map(Gossip::Evidence)
                .map_err(WireError::Evidence),
            Some((&TAG_GOV, body)) => GovBlock::decode(body)
                .map(Gossip::Gov)
                .map_err(WireError::Gov),
            Some((&TAG_CHECKPOINT, body)) => std::str::from_utf8(body)
                .map_err(|_| CheckpointError::Note(NoteError::Malformed("not UTF-8")))
                .and_then(|text| SignedCheckpoint::parse(net, text))
                .map(Gossip::Checkpoint)
                .map_err(WireError::Checkpoint),
            Some((&TAG_CHECKPOINT_CONFLICT, body)) => CheckpointConflict::decode(net, body)
                .map(Gossip::CheckpointConflict)
                .map_err(WireError::Checkpoint),
            Some((&tag, _)) => Err(WireError::UnknownTag(tag)),
        }
    }
}

/// The governance height a peer reported among its heads, if any (the first entry named
/// `GOV_CHAIN`).
pub(crate) fn gov_head(heads: &[(String, u64)]) -> Option<u64> {
    heads.iter().find(|(c, _)| c == GOV_CHAIN).map(|(_, h)| *h)
}

/// The heads a peer reported, kept only for departments genesis names, and no more
/// entries read than genesis has departments (plus the governance chain's).
pub(crate) fn known_heads(net: &Network, heads: Vec<(String, u64)>) -> Vec<(DepartmentId, u64)> {
    let known = net.departments().len() + 1;
    heads
        .into_iter()
        .take(known)
        .filter_map(|(dept, height)| {
            let d = DepartmentId::parse(&dept).ok()?;
            net.department(&d).is_some().then_some((d, height))
        })
        .collect()
}

/// The blocks of a catch-up answer, if the batch is within the protocol's bounds: at
/// least one block, at most `CATCHUP_BLOCKS_MAX` (a peer may be configured larger than
/// this node, never larger than that).
pub(crate) fn catchup_batch(blocks: Vec<serde_bytes::ByteBuf>) -> Option<Vec<Vec<u8>>> {
    if blocks.is_empty() || blocks.len() > CATCHUP_BLOCKS_MAX {
        return None;
    }
    Some(blocks.into_iter().map(|b| b.into_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{TestLedger, GD};
    use futures::executor::block_on;
    use libp2p::request_response::Codec;
    use libp2p::StreamProtocol;
    use proptest::prelude::*;

    fn blocks(t: &TestLedger) -> (Block, Block) {
        (
            t.block(GD, GD, 1, vec![TestLedger::issue(GD, 1)]),
            t.block(GD, GD, 1, vec![TestLedger::issue(GD, 2)]),
        )
    }

    #[test]
    fn gossip_messages_round_trip() {
        let t = TestLedger::new();
        let net = &*t.ledger.network();
        let (a, b) = blocks(&t);
        assert_eq!(
            Gossip::decode(net, &block_message(&a)),
            Ok(Gossip::Block(a.clone()))
        );
        let ev = Equivocation::new(net, a, b).expect("evidence");
        assert_eq!(
            Gossip::decode(net, &evidence_message(&ev)),
            Ok(Gossip::Evidence(ev))
        );
    }

    /// Every way a gossip message can be wrong, and the error that names it.
    #[test]
    fn bad_gossip_messages() {
        let t = TestLedger::new();
        let net = &*t.ledger.network();
        let (a, _) = blocks(&t);
        let block = block_message(&a);
        let mut forged_evidence = vec![TAG_EVIDENCE];
        forged_evidence.extend_from_slice(&(block.len() as u32 - 1).to_be_bytes());
        forged_evidence.extend_from_slice(&block[1..]);
        forged_evidence.extend_from_slice(&block[1..]);
        type Case = (&'static str, Vec<u8>, fn(&WireError) -> bool);
        let cases: Vec<Case> = vec![
            ("empty", vec![], |e| *e == WireError::Empty),
            ("unknown tag", vec![9, 1, 2], |e| {
                *e == WireError::UnknownTag(9)
            }),
            ("block tag alone", vec![TAG_BLOCK], |e| {
                matches!(e, WireError::Block(_))
            }),
            ("truncated block", block[..block.len() - 1].to_vec(), |e| {
                matches!(e, WireError::Block(_))
            }),
            ("evidence tag alone", vec![TAG_EVIDENCE], |e| {
                *e == WireError::Evidence(EvidenceError::Truncated)
            }),
            ("one block twice as evidence", forged_evidence, |e| {
                *e == WireError::Evidence(EvidenceError::SameBlock)
            }),
        ];
        for (name, data, expected) in cases {
            let err = Gossip::decode(net, &data).expect_err(name);
            assert!(expected(&err), "{name}: {err}");
        }
    }

    #[test]
    fn heads_are_read_for_genesis_departments_only() {
        let t = TestLedger::new();
        let net = &*t.ledger.network();
        let n = net.departments().len();
        let mut heads = vec![
            ("gd.transport".to_owned(), 4),
            ("nowhere.dept".to_owned(), 9),
            ("Not An Id".to_owned(), 9),
            ("sh.transport".to_owned(), 2),
        ];
        let got = known_heads(net, heads.clone());
        let names: Vec<(&str, u64)> = got.iter().map(|(d, h)| (d.as_str(), *h)).collect();
        assert_eq!(names, vec![("gd.transport", 4), ("sh.transport", 2)]);
        // A peer cannot make this node read more entries than genesis has departments.
        heads.splice(0..0, (0..=n).map(|i| (format!("pad.{i}"), 1)));
        assert!(known_heads(net, heads).is_empty());
    }

    #[test]
    fn catchup_batches_are_bounded() {
        let batch = |n: usize| vec![serde_bytes::ByteBuf::from(vec![1u8]); n];
        assert_eq!(catchup_batch(batch(0)), None);
        assert_eq!(catchup_batch(batch(1)), Some(vec![vec![1u8]]));
        assert_eq!(
            catchup_batch(batch(CATCHUP_BLOCKS_MAX)).map(|b| b.len()),
            Some(CATCHUP_BLOCKS_MAX)
        );
        assert_eq!(catchup_batch(batch(CATCHUP_BLOCKS_MAX + 1)), None);
    }

    #[test]
    fn catchup_codec_round_trips_and_refuses_oversized_answers() {
        let protocol = StreamProtocol::new(CATCHUP_PROTOCOL);
        let mut codec = catchup_codec();
        let request = CatchupRequest::Blocks {
            department: GD.into(),
            from: 7,
        };
        let mut bytes = Vec::new();
        block_on(codec.write_request(
            &protocol,
            &mut futures::io::Cursor::new(&mut bytes),
            request.clone(),
        ))
        .expect("write");
        let back = block_on(codec.read_request(&protocol, &mut futures::io::Cursor::new(bytes)));
        assert_eq!(back.expect("read"), request);

        let answer = |size: usize| {
            CatchupResponse::Blocks(vec![serde_bytes::ByteBuf::from(vec![7u8; size])])
        };
        let write = |codec: &mut request_response::cbor::codec::Codec<_, _>, r| {
            let mut bytes = Vec::new();
            block_on(codec.write_response(&protocol, &mut futures::io::Cursor::new(&mut bytes), r))
                .expect("write");
            bytes
        };
        let small = write(&mut codec, answer(1000));
        let back = block_on(codec.read_response(&protocol, &mut futures::io::Cursor::new(small)));
        assert_eq!(back.expect("read"), answer(1000));
        let big = write(
            &mut codec,
            answer(CATCHUP_BYTES_MAX + CATCHUP_FRAMING_BYTES as usize),
        );
        let back = block_on(codec.read_response(&protocol, &mut futures::io::Cursor::new(big)));
        assert!(back.is_err(), "an answer past the bound must not decode");
    }

    proptest! {
        #[test]
        fn arbitrary_gossip_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let net = shared_network();
            let _ = Gossip::decode(&net, &data);
        }

        #[test]
        fn tagged_arbitrary_bodies_are_errors(tag in 1u8..=2, body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let net = shared_network();
            let data = [&[tag][..], &body].concat();
            prop_assert!(Gossip::decode(&net, &data).is_err());
        }
    }

    /// One founded network for all proptest cases: founding generates keys.
    fn shared_network() -> std::sync::Arc<Network> {
        static NET: std::sync::OnceLock<std::sync::Arc<Network>> = std::sync::OnceLock::new();
        NET.get_or_init(|| {
            let founded = huren_testkit::Founded::example().expect("founded");
            std::sync::Arc::new(founded.network().expect("genesis"))
        })
        .clone()
    }
}
