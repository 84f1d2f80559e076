//! The fuzz targets' inputs in the test command: every seed (`fuzz/seeds/<target>/`) and
//! every crash input fuzzing found (`fuzz/regressions/<target>/`) goes through the same
//! target body libFuzzer runs (`fuzz/src/lib.rs`, included here), so a crash fixed once
//! stays fixed without nightly or cargo-fuzz.
//!
//! `write_fuzz_seeds` (ignored; `cargo test -p huren-tests --test fuzz_corpus -- --ignored`)
//! writes the seed corpora from a freshly founded example network: real QR texts, COSE,
//! blocks, gossip and catch-up messages, evidence, the genesis file, node configs and a
//! QR PNG. It writes the genesis the seeds were signed in, which the targets load, so
//! signatures in seeds check.

#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use huren_core::credential::{Credential, SALT_BYTES};
use huren_core::{
    BlockHeader, DepartmentId, Equivocation, Issue, LicenceId, LicenceType, OfficerId, Record,
    RegionCode, RevokeReason, SuspendReason,
};
use huren_node::net::fuzzing as wire;
use huren_node::net::{CatchupRequest, CatchupResponse};
use huren_testkit::{Founded, NodeOptions};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn every_seed_and_every_kept_crash_input_runs_without_a_panic() {
    let mut failed = Vec::new();
    for (name, body) in targets::TARGETS {
        let mut seeds = 0;
        for kind in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                let data = std::fs::read(&path).expect("an input file reads");
                if std::panic::catch_unwind(|| body(&data)).is_err() {
                    failed.push(path.display().to_string());
                }
                seeds += usize::from(kind == "seeds");
            }
        }
        assert!(seeds > 0, "fuzz target {name} has no seeds");
    }
    assert!(failed.is_empty(), "inputs that panic: {failed:#?}");
}

/// Seeds signed in another network would stop every target at "unknown key": the
/// committed seeds must verify in the genesis the targets load.
#[test]
fn seeds_are_signed_in_the_genesis_the_targets_load() {
    let net = targets::network();
    let seeds = fuzz_dir().join("seeds");
    let block = std::fs::read(seeds.join("block/1.block")).expect("block seed");
    let block = huren_core::Block::decode(&block).expect("block seed decodes");
    huren_core::validate::check_signature(net, &block).expect("block seed is signed");
    let ev = std::fs::read(seeds.join("evidence/equivocation.ev")).expect("evidence seed");
    Equivocation::decode(net, &ev).expect("evidence seed proves equivocation");
    let qr = std::fs::read_to_string(seeds.join("qr_text/0.txt")).expect("QR seed");
    let d = huren_core::verify::decide_text(
        net,
        &qr,
        &|_, _| huren_core::LedgerFacts::Offline,
        &huren_core::VerifyContext {
            now: targets::NOW,
            region: None,
        },
    );
    assert_eq!(d.verdict, huren_core::Verdict::Valid, "{}", d.detail);
}

/// The licences the seeds carry: one per licence type, in the departments granted them.
fn credentials() -> Vec<Credential> {
    let now = targets::NOW;
    let make = |dept: &str, region: &str, ty: &str, serial: u64, holder: &[(&str, &str)]| {
        let d = DepartmentId::parse(dept).expect("department id");
        Credential {
            issuer: d.clone(),
            licence_id: LicenceId::new(d, LicenceType::parse(ty).expect("type"), serial),
            region: RegionCode::parse(region).expect("region"),
            issued_at: now - 86_400,
            not_before: now - 86_400,
            expires_at: now + 2 * 365 * 86_400,
            holder: holder
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            fields: BTreeMap::from([("national_id".to_owned(), "4401-2025-000123".to_owned())]),
            salt: [serial as u8; SALT_BYTES],
        }
    };
    vec![
        make(
            "gd.transport",
            "440000",
            "mvdl",
            1,
            &[
                ("name", "张三"),
                ("id_number", "44010619900101123X"),
                ("class", "C1"),
            ],
        ),
        make(
            "gd.market",
            "440000",
            "food",
            2,
            &[
                ("entity", "广州市某餐饮有限公司"),
                ("credit_code", "91440101MA5ABCDE1X"),
            ],
        ),
        make(
            "gd.health",
            "440000",
            "physician",
            3,
            &[
                ("name", "李四"),
                ("id_number", "440106198001011234"),
                ("category", "临床"),
            ],
        ),
    ]
}

#[test]
#[ignore = "writes fuzz/seeds; run by hand when an encoding changes"]
fn write_fuzz_seeds() {
    let f = Founded::example().expect("founded");
    let net = f.network().expect("genesis");
    let seeds = fuzz_dir().join("seeds");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = seeds.join(target);
        std::fs::create_dir_all(&dir).expect("seed directory");
        std::fs::write(dir.join(name), bytes).expect("seed written");
    };
    for entry in std::fs::read_dir(&seeds).into_iter().flatten() {
        std::fs::remove_dir_all(entry.expect("entry").path()).expect("old seeds removed");
    }
    write(
        "genesis_json",
        "example.json",
        &std::fs::read(&f.genesis).expect("genesis"),
    );

    let key = |dept: &str| {
        huren_genesis::keys::read_issuer_key(&f.issuer_key(dept))
            .expect("issuer key")
            .1
    };
    let officer = OfficerId::parse("officer-1").expect("officer");
    let mut issued = Vec::new();
    for (i, c) in credentials().iter().enumerate() {
        let signed = c.sign(&key(c.issuer.as_str())).expect("signed");
        write("qr_text", &format!("{i}.txt"), signed.qr_text.as_bytes());
        write("cose", &format!("{i}.cose"), &signed.cose);
        issued.push((c.clone(), signed));
    }
    // A scanner's Enter after the text.
    write(
        "qr_text",
        "scanner.txt",
        format!("{}\r\n", issued[0].1.qr_text).as_bytes(),
    );
    write(
        "image",
        "qr.png",
        &huren_render::qr::png(&issued[0].1.qr_text, 2).expect("png"),
    );

    // gd.transport's chain: an issue block, then suspend, reinstate and revoke.
    let (c, signed) = &issued[0];
    let dept = c.issuer.clone();
    let time_ms = u64::try_from(targets::NOW - 3600).expect("positive") * 1000;
    let header = |height: u64, prev, records| BlockHeader {
        version: net.protocol_version(),
        genesis: net.hash(),
        department: dept.clone(),
        height,
        prev,
        time_ms: time_ms + height,
        gov: 0,
        records,
    };
    let issue = Record::Issue(Issue {
        licence_id: c.licence_id.clone(),
        valid_from: c.not_before,
        valid_until: c.expires_at,
        commitment: signed.commitment,
        officer: officer.clone(),
        origin: None,
    });
    let b1 = header(1, net.hash(), vec![issue.clone()]).sign(&key(dept.as_str()));
    let lid = c.licence_id.clone();
    let b2 = header(
        2,
        b1.hash(),
        vec![
            Record::Suspend {
                licence_id: lid.clone(),
                reason: SuspendReason::Penalty,
                officer: officer.clone(),
                until: None,
            },
            Record::Reinstate {
                licence_id: lid.clone(),
                officer: officer.clone(),
            },
            Record::Revoke {
                licence_id: lid,
                reason: RevokeReason::Withdrawn,
                officer: officer.clone(),
            },
        ],
    )
    .sign(&key(dept.as_str()));
    // A second block at height 1: the equivocation.
    let mut other = header(1, net.hash(), vec![issue]);
    other.time_ms += 1;
    let b1_other = other.sign(&key(dept.as_str()));
    let ev = Equivocation::new(&net, b1.clone(), b1_other).expect("evidence");

    for (name, b) in [("1", &b1), ("2", &b2)] {
        write("block", &format!("{name}.block"), &b.encode());
        write(
            "gossip",
            &format!("block{name}.msg"),
            &huren_node::net::block_message(b),
        );
    }
    write("evidence", "equivocation.ev", &ev.encode());

    // Governance: a record adding a region, with the quorum (3) of the example network,
    // and one short of it; the export that carries the first.
    let gov = |signers: &[&str]| {
        let mut b = huren_core::governance::GovBlock::new(huren_core::governance::GovHeader {
            genesis: net.hash(),
            height: 1,
            prev: net.gov_head(),
            time_ms,
            record: huren_core::governance::GovRecord::AddRegion {
                region: huren_core::genesis::Region {
                    code: RegionCode::parse("320000").expect("region"),
                    name: "江苏省".into(),
                },
            },
        });
        for s in signers {
            b.cosign(DepartmentId::parse(s).expect("department"), &key(s));
        }
        b
    };
    // A checkpoint of gd.transport's chain, signed by it and cosigned by a witness.
    let mut note = huren_core::tlog::Note::new(
        huren_core::tlog::Checkpoint {
            origin: format!("huren.network/{}/gd.transport", &net.hash().to_hex()[..16]),
            size: 4,
            root: huren_core::Hash32::digest(b"root"),
            extensions: vec!["height 2".into()],
        }
        .text(),
    )
    .expect("note text");
    note.sign("gd.transport", &key("gd.transport"));
    note.cosign("gd.market", &key("gd.market"), 1_764_000_000);
    write(
        "checkpoint_note",
        "checkpoint.note",
        note.encode().as_bytes(),
    );
    // A Huren checkpoint of gd.transport, cosigned by two witnesses' node keys, and a
    // bundle and a delta carrying it with one revoked licence.
    let node_key = |name: &str| {
        huren_genesis::keys::read_node_secret(&huren_genesis::keys::node_key_path(&f.keys, name))
            .expect("node key")
            .1
    };
    let revoked = huren_core::tlog::status_entry(
        &issued[0].0.licence_id,
        huren_core::validate::LicenceStatus::Revoked(RevokeReason::Penalty),
    )
    .expect("an entry");
    let (count, status_root) = huren_core::tlog::status_root([revoked]);
    let mut cp = huren_core::checkpoint::SignedCheckpoint::sign(
        &net,
        huren_core::checkpoint::DeptCheckpoint {
            department: DepartmentId::parse("gd.transport").expect("department"),
            size: 4,
            root: huren_core::Hash32::digest(b"root"),
            height: 2,
            status_count: count,
            status_root,
            time_ms: 1_764_000_000_000,
        },
        &key("gd.transport"),
    );
    for w in ["gd.market", "sh.transport"] {
        cp.cosign(&net, w, &node_key(w), 1_764_000_000);
    }
    write(
        "checkpoint_note",
        "huren_checkpoint.note",
        cp.encode().as_bytes(),
    );
    write(
        "gossip",
        "checkpoint.msg",
        &wire::checkpoint_message(&cp.encode()),
    );
    let bundle = huren_core::bundle::Bundle {
        genesis: net.hash(),
        made_ms: 1_764_000_000_000,
        governance: None,
        departments: vec![huren_core::bundle::BundleDepartment {
            checkpoint: cp.encode(),
            status: vec![revoked],
        }],
    };
    write("bundle", "one_department.bundle", &bundle.encode());
    let delta = huren_core::bundle::Delta {
        genesis: net.hash(),
        made_ms: 1_764_000_000_000,
        governance: None,
        departments: vec![huren_core::bundle::DeltaDepartment {
            from_height: 1,
            checkpoint: cp.encode(),
            changes: vec![revoked],
        }],
    };
    write("bundle", "one_department.delta", &delta.encode());
    let quorum = gov(&["gd.market", "gd.health", "sh.transport"]);
    write("gov_block", "add_region.gov", &quorum.encode());
    write(
        "gov_block",
        "short_of_quorum.gov",
        &gov(&["gd.market"]).encode(),
    );
    write("gossip", "gov.msg", &wire::gov_message(&quorum));
    let export = huren_api::GovernanceExport {
        genesis: net.hash(),
        height: 1,
        head: quorum.id(),
        blocks: vec![hex::encode(quorum.encode())],
        vouched: vec![signed.commitment],
        equivocations: Vec::new(),
    };
    write(
        "gov_export",
        "export.json",
        serde_json::to_string_pretty(&export)
            .expect("json")
            .as_bytes(),
    );
    write("gossip", "evidence.msg", &wire::evidence_message(&ev));

    write(
        "catchup_request",
        "heads.req",
        &wire::write_catchup_request(CatchupRequest::Heads),
    );
    write(
        "catchup_request",
        "governance.req",
        &wire::write_catchup_request(CatchupRequest::Governance { from: 1 }),
    );
    write(
        "catchup_request",
        "blocks.req",
        &wire::write_catchup_request(CatchupRequest::Blocks {
            department: dept.to_string(),
            from: 1,
        }),
    );
    write(
        "catchup_response",
        "heads.res",
        &wire::write_catchup_response(CatchupResponse::Heads(vec![
            (dept.to_string(), 2),
            ("sh.market".into(), 7),
            ("nowhere.dept".into(), 1),
        ])),
    );
    write(
        "catchup_response",
        "blocks.res",
        &wire::write_catchup_response(CatchupResponse::Blocks(vec![
            b1.encode().into(),
            b2.encode().into(),
        ])),
    );
    write(
        "catchup_response",
        "error.res",
        &wire::write_catchup_response(CatchupResponse::Error("store: unavailable".into())),
    );

    // Node configs: a department with networking and limits, and an observer. The kit's
    // temporary paths are replaced by fixed ones, so the seeds do not change per run.
    let tmp = f.dir.path().to_str().expect("utf-8").to_owned();
    let config = |name: &str, opts: &NodeOptions| {
        f.config_text(name, opts)
            .expect("config")
            .replace(&tmp, "/var/lib/huren")
    };
    write(
        "node_config",
        "department.toml",
        config(
            "gd.transport",
            &NodeOptions {
                bootstrap: Some(vec![
                    "/ip4/10.0.0.2/tcp/7000/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN".into(),
                ]),
                limits: "block_records_max = 512\nbatch_window_ms = 5\ncatchup_bytes_max = 4194304\n".into(),
                region: Some("440000".into()),
                ..NodeOptions::default()
            },
        )
        .as_bytes(),
    );
    write(
        "node_config",
        "observer.toml",
        config("sh.observer", &NodeOptions::default()).as_bytes(),
    );
}
