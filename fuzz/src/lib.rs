//! The bodies of Huren's fuzz targets, one function per decoder that takes outside bytes.
//!
//! Each drives the function production calls on those bytes, with the bounds production
//! applies, and then what production does next with a decoded value (verify a credential,
//! validate a block, answer a report), so a panic anywhere on that path is found. Where a
//! decoder promises one encoding per value, the body also checks that decoding and
//! encoding again gives back the input.
//!
//! The binaries in `fuzz_targets/` call these through libFuzzer; the workspace test
//! `tests/tests/fuzz_corpus.rs` includes this file and replays every seed and every kept
//! crash input (`fuzz/seeds/<target>/`, `fuzz/regressions/<target>/`) through the same
//! functions, so a crash once found stays fixed in `cargo test --workspace`.
//!
//! It must never hold a rule of its own: every check it makes is a call into the crates.

use std::path::Path;
use std::sync::OnceLock;

use huren_core::credential::{cose_to_qr, UnverifiedCredential, QR_TEXT_CHARS_MAX};
use huren_core::ledger::BLOCK_RECORDS_MAX;
use huren_core::validate::{self, Head, LicenceState, LicenceStatus, MemoryChain};
use huren_core::verify::{self, LedgerFacts, VerifyContext};
use huren_core::{Block, Equivocation, Hash32, Network};

/// A target's body: it returns when the input was handled, and panics on a defect.
pub type Body = fn(&[u8]);

/// Every target, by the name of its binary and its corpus directories.
pub const TARGETS: &[(&str, Body)] = &[
    ("qr_text", qr_text),
    ("cose", cose),
    ("block", block),
    ("gossip", gossip),
    ("catchup_request", catchup_request),
    ("catchup_response", catchup_response),
    ("evidence", evidence),
    ("genesis_json", genesis_json),
    ("node_config", node_config),
    ("image", image),
    ("gov_block", gov_block),
    ("gov_export", gov_export),
    ("checkpoint_note", checkpoint_note),
    ("bundle", bundle),
];

/// The example network the seeds were signed in (written by the seed generator with the
/// seeds, so that seeded blocks, evidence and credentials carry keys this network knows).
pub const EXAMPLE_GENESIS: &str = include_str!("../seeds/genesis_json/example.json");

/// The time the seeds were made and every verification here happens at (unix seconds):
/// fixed, so that a run is reproducible.
pub const NOW: i64 = 1_763_000_000;

/// The example network, loaded once per process (parsing genesis costs milliseconds; an
/// execution should cost microseconds).
pub fn network() -> &'static Network {
    static NET: OnceLock<Network> = OnceLock::new();
    NET.get_or_init(|| {
        huren_genesis::parse(EXAMPLE_GENESIS.as_bytes(), "example.json")
            .expect("the committed example genesis loads")
    })
}

/// QR text as a scanner types it into the verify page or the API (a JSON string, so
/// UTF-8: other bytes are read as the lossy text a browser would send).
pub fn qr_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(un) = UnverifiedCredential::from_qr(&text) {
        verify_every_way(un, &text);
    }
}

/// COSE_Sign1 bytes, the credential inside the QR text.
pub fn cose(data: &[u8]) {
    let Ok(un) = UnverifiedCredential::from_cose(data) else {
        return;
    };
    // The same bytes carried as QR text decode to the same credential.
    let text = cose_to_qr(data);
    if text.len() <= QR_TEXT_CHARS_MAX {
        let again = UnverifiedCredential::from_qr(&text).expect("QR text of readable COSE reads");
        assert_eq!(again.commitment, un.commitment);
        assert_eq!(again.credential, un.credential);
    }
    verify_every_way(un, &text);
}

/// Verification as the node and the offline CLI run it, under every kind of ledger answer,
/// including the fast path (the ledger vouches for these exact bytes, so no signature
/// check stands between arbitrary claims and the verdict), then the report and, for what
/// verification calls genuine, the printable card (`huren card` draws it from a citizen's
/// QR text): holder text of any shape is cleaned, fitted and escaped there.
fn verify_every_way(un: UnverifiedCredential, qr_text: &str) {
    let net = network();
    let c = &un.credential;
    let vouched = LicenceState {
        status: LicenceStatus::Active,
        commitment: un.commitment,
        valid_from: c.not_before,
        valid_until: c.expires_at,
        issued_height: 1,
        issued_index: 0,
        updated_height: 1,
        issuer_key: un.kid,
        suspended_until: None,
        status_height: 0,
        status_index: 0,
    };
    let head = Head {
        height: 3,
        hash: Hash32([7; 32]),
        time_ms: u64::try_from(NOW).unwrap_or(0) * 1000,
        gov: 0,
    };
    let facts = [
        LedgerFacts::Offline,
        LedgerFacts::Online {
            licence: None,
            issuer_head: Some(head),
            equivocation_height: None,
            stale: None,
            behind: None,
            lineage: Default::default(),
        },
        LedgerFacts::Online {
            licence: Some(vouched),
            issuer_head: Some(head),
            equivocation_height: None,
            stale: None,
            behind: None,
            lineage: Default::default(),
        },
        LedgerFacts::Online {
            licence: Some(LicenceState {
                status: LicenceStatus::Suspended(huren_core::SuspendReason::Penalty),
                ..vouched
            }),
            issuer_head: Some(head),
            equivocation_height: Some(1),
            stale: Some(huren_core::verify::Stale::NoPeers),
            behind: Some(4),
            lineage: Default::default(),
        },
    ];
    let regions = [None, net.document().regions.first().map(|r| r.code.clone())];
    // Drawing a card costs a QR encoding (milliseconds): once per input is enough.
    let mut card_drawn = false;
    for f in facts {
        for region in &regions {
            let ctx = VerifyContext {
                now: NOW,
                region: region.clone(),
            };
            let d = verify::decide(net, un.clone(), f.clone(), &ctx);
            let _ = huren_api::Report::new(net, &d);
            if card_drawn {
                continue;
            }
            if let Some(genuine) = d.into_genuine(net) {
                card_drawn = true;
                if let Ok(card) = huren_render::card::Card::new(&genuine, qr_text) {
                    let _ = card.svg();
                    let _ = card.html();
                }
            }
        }
    }
}

/// A block as the store, catch-up and gossip read it; then the admission rules. A decoded
/// block re-encodes to the same bytes (the canonical encoding has one form per block).
pub fn block(data: &[u8]) {
    let Ok(b) = Block::decode(data) else {
        return;
    };
    assert_eq!(b.encode(), data, "a decoded block re-encodes to its bytes");
    let now_ms = u64::try_from(NOW).unwrap_or(0) * 1000;
    let chain = MemoryChain::default();
    // The signature is what stops a mutated block, so the structure and record rules are
    // also run as for the node's own blocks, which skip it.
    let _ = validate::validate_block(network(), &chain, b.clone(), now_ms, BLOCK_RECORDS_MAX);
    let _ = validate::validate_own_block(network(), &chain, b, now_ms, BLOCK_RECORDS_MAX);
}

/// A gossip message from a peer (a tag byte, then a block or evidence), as the applier
/// reads it.
pub fn gossip(data: &[u8]) {
    if let Ok(again) = huren_node::net::fuzzing::gossip(network(), data) {
        assert_eq!(
            again, data,
            "a decoded gossip message re-encodes to its bytes"
        );
    }
}

/// A catch-up request from a peer, through the request-response codec and its bound.
pub fn catchup_request(data: &[u8]) {
    let _ = huren_node::net::fuzzing::catchup_request(data);
}

/// A catch-up answer from a peer, through the codec with the protocol's bounds, then the
/// heads and batch bounds and every block's decoder.
pub fn catchup_response(data: &[u8]) {
    if let Ok(huren_node::net::fuzzing::CatchupRead::Blocks(blocks)) =
        huren_node::net::fuzzing::catchup_response(network(), data)
    {
        for b in blocks.into_iter().flatten() {
            block(&b);
        }
    }
}

/// Equivocation evidence, as gossip and the store carry it.
pub fn evidence(data: &[u8]) {
    if let Ok(ev) = Equivocation::decode(network(), data) {
        assert_eq!(
            ev.encode(),
            data,
            "decoded evidence re-encodes to its bytes"
        );
    }
}

/// A genesis file, as `huren-node` and `huren` load it. A document whose claimed hash is
/// wrong stops at the hash; so that the fuzzer also reaches the rules behind it, the
/// document is validated again under its true hash.
pub fn genesis_json(data: &[u8]) {
    let _ = huren_genesis::parse(data, "fuzz.json");
    if data.len() <= huren_core::genesis::GENESIS_JSON_BYTES_MAX {
        if let Ok(file) = serde_json::from_slice::<huren_genesis::GenesisFile>(data) {
            let file = huren_genesis::GenesisFile::new(file.document);
            if let Ok(net) = huren_genesis::validate(file, "fuzz.json") {
                // What a valid document says is what its JSON says.
                let json = huren_genesis::GenesisFile::new(net.document().clone()).to_json();
                let again = huren_genesis::parse(json.as_bytes(), "again.json")
                    .expect("a valid genesis written out loads");
                assert_eq!(again.hash(), net.hash());
            }
        }
    }
}

/// A node's config file (TOML; the node reads it as UTF-8 text), then its checks.
pub fn node_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = huren_node::config::Config::parse(text, Path::new("/etc/huren")) {
        let _ = cfg.validate();
        let _ = cfg.role();
    }
}

/// A photo or PNG of a QR uploaded to the verify API or read by `huren verify --image`;
/// the text it holds then goes the way of typed QR text.
pub fn image(data: &[u8]) {
    if let Ok(text) = huren_render::qr::decode_image(data) {
        qr_text(text.as_bytes());
    }
}

/// A governance block, as gossip, catch-up, the store and a proposal file carry it: it
/// re-encodes to its bytes, and is then admitted to the example network's governance
/// chain (quorum, head, the record applied) as a node admits it.
pub fn gov_block(data: &[u8]) {
    let Ok(b) = huren_core::governance::GovBlock::decode(data) else {
        return;
    };
    assert_eq!(
        b.encode(),
        data,
        "a decoded governance block re-encodes to its bytes"
    );
    let _ = b.header.record.describe();
    let mut chain = huren_core::governance::GovChain::new(network().clone());
    if let Ok(huren_core::governance::GovAdmission::Applied(net)) = chain.admit(b) {
        // What a record made is a network like any other.
        let _ = huren_api::NetworkView::of(&net);
    }
}

/// A governance export (`huren gov export`, `GET /v1/governance`, a node's `governance`
/// file), as offline verification and a starting node read it.
pub fn gov_export(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(export) = huren_api::GovernanceExport::parse(text) else {
        return;
    };
    if let Ok(blocks) = export.decode_blocks() {
        let mut chain = huren_core::governance::GovChain::new(network().clone());
        for b in blocks {
            if chain.admit(b).is_err() {
                break;
            }
        }
    }
}

/// A signed note carrying a checkpoint (C2SP signed-note and tlog-checkpoint), as
/// witnesses and offline verifiers will read them: a parsed note re-encodes to its bytes,
/// and its text is then read as a checkpoint and its signatures checked.
pub fn checkpoint_note(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(note) = huren_core::tlog::Note::parse(text) else {
        return;
    };
    assert_eq!(note.encode(), text, "a parsed note re-encodes to its text");
    if let Ok(cp) = huren_core::tlog::Checkpoint::parse(&note.text) {
        assert_eq!(
            huren_core::tlog::Checkpoint::parse(&cp.text()).as_ref(),
            Ok(&cp),
            "a checkpoint written out reads back"
        );
    }
    for d in network().departments() {
        let _ = note.verify(&d.id.to_string(), &d.issuer_key);
        let _ = note.verify_cosignature(&d.id.to_string(), &d.issuer_key);
    }
    // As a Huren checkpoint: its department's signature, then the witnesses'.
    if let Ok(cp) = huren_core::checkpoint::SignedCheckpoint::from_note(network(), note) {
        let _ = cp.cosigners(network());
        assert_eq!(
            huren_core::checkpoint::SignedCheckpoint::parse(network(), &cp.encode()).as_ref(),
            Ok(&cp),
            "a checkpoint written out reads back"
        );
    }
}

/// An offline bundle or a delta (`core::bundle`), as `huren bundle` and `huren verify
/// --offline --bundle` read a file or a node's answer: decoded within its bounds, written
/// out and read back the same, then checked against the example network.
pub fn bundle(data: &[u8]) {
    use huren_core::bundle::{Bundle, Delta};
    if let Ok(b) = Bundle::decode(data) {
        assert_eq!(
            Bundle::decode(&b.encode()).ok().as_ref(),
            Some(&b),
            "a bundle written out reads back"
        );
        let _ = b.verify(network());
    }
    if let Ok(d) = Delta::decode(data) {
        assert_eq!(
            Delta::decode(&d.encode()).ok().as_ref(),
            Some(&d),
            "a delta written out reads back"
        );
    }
    let _ = huren_core::checkpoint::CheckpointConflict::decode(network(), data);
}
