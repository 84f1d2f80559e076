//! The wire decoders as the fuzz targets (`fuzz/`) and their regression tests drive them:
//! the same functions, in the same order and with the same bounds as the actor (`mod.rs`)
//! and the applier use on a peer's bytes. `wire` stays private to `net`; this is its one
//! window for fuzzing.
//!
//! The node itself must never call this module: it applies nothing and only reports what
//! was decoded, re-encoded, so that a fuzz target can check that decoding is canonical.

use futures::executor::block_on;
use huren_core::{Block, Network};
use libp2p::request_response::Codec;
use libp2p::StreamProtocol;

use super::wire::{self, CatchupRequest, CatchupResponse, Gossip};

/// A gossip message (topic `huren/1`) as the applier reads it. `Ok` holds the message
/// encoded again from what was decoded; `Err` the decoder's error.
pub fn gossip(net: &Network, data: &[u8]) -> Result<Vec<u8>, String> {
    match Gossip::decode(net, data) {
        Ok(Gossip::Block(b)) => Ok(wire::block_message(&b)),
        Ok(Gossip::Evidence(ev)) => Ok(wire::evidence_message(&ev)),
        Ok(Gossip::Gov(b)) => Ok(wire::gov_message(&b)),
        Ok(Gossip::Checkpoint(cp)) => Ok(wire::checkpoint_message(&cp.encode())),
        Ok(Gossip::CheckpointConflict(ev)) => Ok(wire::checkpoint_conflict_message(&ev)),
        Err(e) => Err(e.to_string()),
    }
}

/// A catch-up request as the codec reads it from a peer's stream, and the department it
/// names parsed as `serve` parses it.
pub fn catchup_request(data: &[u8]) -> std::io::Result<CatchupRequest> {
    let protocol = StreamProtocol::new(wire::CATCHUP_PROTOCOL);
    let mut codec = wire::catchup_codec();
    let request = block_on(codec.read_request(&protocol, &mut futures::io::Cursor::new(data)))?;
    if let CatchupRequest::Blocks { department, .. } = &request {
        let _ = huren_core::DepartmentId::parse(department);
    }
    Ok(request)
}

/// What a catch-up answer came to after the checks `response` and the applier make.
#[derive(Debug)]
pub enum CatchupRead {
    /// Heads kept for genesis departments (`wire::known_heads`).
    Heads(usize),
    /// A batch within bounds (`wire::catchup_batch`): each block re-encoded, or the
    /// decoder's error.
    Blocks(Vec<Result<Vec<u8>, String>>),
    /// Checkpoint notes within bounds, each read as the applier reads it: the note
    /// re-encoded, or the decoder's error.
    Checkpoints(Vec<Result<String, String>>),
    /// A batch out of bounds, or an error answer.
    Refused,
}

/// A catch-up answer as the codec reads it (within the protocol's bounds), then as the
/// actor and the applier read heads and blocks.
pub fn catchup_response(net: &Network, data: &[u8]) -> std::io::Result<CatchupRead> {
    let protocol = StreamProtocol::new(wire::CATCHUP_PROTOCOL);
    let mut codec = wire::catchup_codec();
    let response = block_on(codec.read_response(&protocol, &mut futures::io::Cursor::new(data)))?;
    Ok(match response {
        CatchupResponse::Heads(heads) => CatchupRead::Heads(wire::known_heads(net, heads).len()),
        CatchupResponse::Blocks(blocks) => match wire::catchup_batch(blocks) {
            Some(blocks) => CatchupRead::Blocks(
                blocks
                    .iter()
                    .map(|b| {
                        Block::decode(b)
                            .map(|b| b.encode())
                            .map_err(|e| e.to_string())
                    })
                    .collect(),
            ),
            None => CatchupRead::Refused,
        },
        CatchupResponse::Checkpoints(notes) if notes.len() <= wire::CHECKPOINTS_ANSWER_MAX => {
            CatchupRead::Checkpoints(
                notes
                    .iter()
                    .map(|n| {
                        huren_core::checkpoint::SignedCheckpoint::parse(net, n)
                            .map(|c| c.encode())
                            .map_err(|e| e.to_string())
                    })
                    .collect(),
            )
        }
        CatchupResponse::Checkpoints(_) | CatchupResponse::Error(_) => CatchupRead::Refused,
    })
}

/// A catch-up request as the codec writes it (for seed corpora).
pub fn write_catchup_request(request: CatchupRequest) -> Vec<u8> {
    let protocol = StreamProtocol::new(wire::CATCHUP_PROTOCOL);
    let mut codec = wire::catchup_codec();
    let mut bytes = Vec::new();
    block_on(codec.write_request(
        &protocol,
        &mut futures::io::Cursor::new(&mut bytes),
        request,
    ))
    .expect("writing to a Vec cannot fail");
    bytes
}

/// A catch-up answer as the codec writes it (for seed corpora).
pub fn write_catchup_response(response: CatchupResponse) -> Vec<u8> {
    let protocol = StreamProtocol::new(wire::CATCHUP_PROTOCOL);
    let mut codec = wire::catchup_codec();
    let mut bytes = Vec::new();
    block_on(codec.write_response(
        &protocol,
        &mut futures::io::Cursor::new(&mut bytes),
        response,
    ))
    .expect("writing to a Vec cannot fail");
    bytes
}

/// The gossip message of equivocation evidence (for seed corpora).
pub fn evidence_message(ev: &huren_core::Equivocation) -> Vec<u8> {
    wire::evidence_message(ev)
}

/// The gossip message that carries a governance block (for the seed writer).
pub fn gov_message(block: &huren_core::governance::GovBlock) -> Vec<u8> {
    wire::gov_message(block)
}

/// The gossip message that carries a checkpoint note (for the seed writer).
pub fn checkpoint_message(note: &str) -> Vec<u8> {
    wire::checkpoint_message(note)
}
