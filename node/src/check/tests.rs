//! The integrity check on real sled directories: a node (store, producer, API) issues and
//! changes licences through its router, then each test corrupts one tree below the store's
//! interface and sees `check::run` fail with a message that names what is wrong.

use axum::http::StatusCode;
use huren_core::ledger::{Block, BlockHeader};
use huren_core::{DepartmentId, LicenceId};
use serde_json::{json, Value};

use super::{run, Checkpoint, Options, Summary};
use crate::api::tests::{fixture_with_clock, Fixture};
use crate::clock::{Clock, ManualClock};
use crate::store::Store;

const TOKEN: &str = huren_testkit::TOKEN;
/// The fixed time of these tests (Unix ms), well after the kit's genesis.
const NOW_MS: u64 = 1_760_000_000_000;

fn gd() -> DepartmentId {
    DepartmentId::parse("gd.transport").expect("id")
}

/// A gd.transport node on a manual clock with `n` licences issued (one block each) and
/// the second one suspended.
async fn node_with(n: u64) -> (Fixture, std::sync::Arc<ManualClock>, Vec<LicenceId>) {
    let clock = ManualClock::at(NOW_MS);
    let f = fixture_with_clock("gd.transport", clock.clone(), |_| {});
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(issue(&f).await);
    }
    if n >= 2 {
        let (s, _, b) = f
            .send(
                "POST",
                &format!("/v1/licences/{}/suspend", ids[1]),
                Some(TOKEN),
                Some(json!({"reason": "penalty"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    }
    (f, clock, ids)
}

async fn issue(f: &Fixture) -> LicenceId {
    let body = json!({
        "licence_type": "mvdl",
        "holder": {"name": "张三", "id_number": "44010619900101123X", "class": "C1"},
        "valid_days": 2190
    });
    let (s, _, b) = f
        .send("POST", "/v1/licences", Some(TOKEN), Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    let v: Value = serde_json::from_slice(&b).expect("json");
    LicenceId::parse(v["licence_id"].as_str().expect("id")).expect("licence id")
}

fn full(f: &Fixture, clock: &dyn Clock) -> Summary {
    let own = gd();
    let net = f.dir.network().expect("genesis");
    run(
        &net,
        &f.store,
        clock,
        Options {
            own: Some(&own),
            ..Options::default()
        },
    )
    .expect("check runs")
}

fn since(f: &Fixture, clock: &dyn Clock, cp: &Checkpoint) -> Summary {
    let own = gd();
    let net = f.dir.network().expect("genesis");
    run(
        &net,
        &f.store,
        clock,
        Options {
            own: Some(&own),
            since: Some(cp),
            // Every older block, so that the tests do not depend on the draw.
            sample_blocks: 1000,
        },
    )
    .expect("check runs")
}

/// The check fails and one of its mismatches contains `expected`.
#[track_caller]
fn fails_with(s: &Summary, expected: &str) {
    assert!(
        !s.ok(),
        "the check passed; expected a mismatch with {expected:?}"
    );
    assert!(
        s.mismatches.iter().any(|m| m.contains(expected)),
        "no mismatch says {expected:?}: {:#?}",
        s.mismatches
    );
}

#[track_caller]
fn passes(s: &Summary) {
    assert!(s.ok(), "{:#?}", s.mismatches);
}

#[tokio::test]
async fn an_intact_store_passes_in_full_and_since_a_checkpoint() {
    let (f, clock, ids) = node_with(3).await;
    let s = full(&f, &*clock);
    passes(&s);
    assert_eq!(
        (s.mode, s.blocks, s.licences, s.credentials),
        ("full", 4, 3, 3)
    );
    let cp = Checkpoint::parse(&s.checkpoint).expect("its own checkpoint parses");
    assert_eq!(cp.to_string(), s.checkpoint);

    // More work after the checkpoint, some of it on licences issued before it: the check
    // since the checkpoint validates only the new blocks and still passes.
    issue(&f).await;
    let (st, _, _) = f
        .send(
            "POST",
            &format!("/v1/licences/{}/reinstate", ids[1]),
            Some(TOKEN),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let s = since(&f, &*clock, &cp);
    passes(&s);
    assert_eq!((s.mode, s.blocks, s.licences), ("since", 2, 2));
    assert_eq!(s.sampled_blocks, 4);
    // And a later check since the new checkpoint has nothing new to validate.
    let cp = Checkpoint::parse(&s.checkpoint).expect("checkpoint");
    let s = since(&f, &*clock, &cp);
    passes(&s);
    assert_eq!(s.blocks, 0);
}

/// The clock is the caller's: a check whose clock reads an hour before the blocks were
/// cut finds them from the future.
#[tokio::test]
async fn the_block_time_rule_uses_the_clock_passed_in() {
    let (f, clock, _) = node_with(1).await;
    passes(&full(&f, &*clock));
    let early = ManualClock::at(NOW_MS - 3_600_000);
    fails_with(&full(&f, &*early), "gd.transport#1");
}

#[tokio::test]
async fn a_credential_that_is_not_the_committed_one_fails() {
    let (f, clock, ids) = node_with(2).await;
    let cose = |id: &LicenceId| f.store.credential(id).expect("read").expect("stored");
    let key = |id: &LicenceId| id.to_string().into_bytes();
    // Another licence's credential under this licence's id.
    f.store
        .corrupt("credentials", &key(&ids[0]), Some(&cose(&ids[1])));
    fails_with(
        &full(&f, &*clock),
        &format!(
            "credential stored under {} is the credential of {}",
            ids[0], ids[1]
        ),
    );
    // Bytes that are not a credential.
    f.store
        .corrupt("credentials", &key(&ids[0]), Some(b"not cose"));
    fails_with(
        &full(&f, &*clock),
        &format!("credential of {} does not decode", ids[0]),
    );
    // Gone: lost, not corrupt (a data directory restored, or its chain fetched back from
    // peers): the check passes and says which.
    f.store.corrupt("credentials", &key(&ids[0]), None);
    let s = full(&f, &*clock);
    assert!(s.ok(), "{:#?}", s.mismatches);
    assert_eq!(s.missing_credentials, vec![ids[0].to_string()]);
    assert_eq!(s.missing_credentials_count, 1);
    // A credential for a licence no chain issued.
    let stray = LicenceId::parse("gd.transport:mvdl:00000099").expect("id");
    f.store
        .corrupt("credentials", &key(&stray), Some(&cose(&ids[1])));
    fails_with(
        &full(&f, &*clock),
        &format!(
            "credential stored under {stray} is the credential of {}",
            ids[1]
        ),
    );
}

/// A credential whose bytes decode as the right licence but differ from what was
/// committed (one bit of the signature flipped): the commitment tells.
#[tokio::test]
async fn a_credential_altered_after_issue_fails_in_full_and_since_a_checkpoint() {
    let (f, clock, ids) = node_with(1).await;
    let cp = Checkpoint::parse(&full(&f, &*clock).checkpoint).expect("cp");
    let id = issue(&f).await;
    let mut cose = f.store.credential(&id).expect("read").expect("stored");
    let last = cose.len() - 1;
    cose[last] ^= 1;
    f.store
        .corrupt("credentials", id.to_string().as_bytes(), Some(&cose));
    let expected = format!("credential of {id} hashes to");
    fails_with(&full(&f, &*clock), &expected);
    // The check since the checkpoint sees it among what changed…
    fails_with(&since(&f, &*clock, &cp), &expected);
    // …and in its sample of older blocks once it is older than the checkpoint.
    assert_eq!(ids.len(), 1);
    let cp = Checkpoint::parse(&full(&f, &*clock).checkpoint).expect("cp");
    fails_with(&since(&f, &*clock, &cp), &expected);
}

#[tokio::test]
async fn evidence_that_proves_no_conflict_fails() {
    let (f, clock, _) = node_with(1).await;
    let net = f.dir.network().expect("genesis");
    let block = f.store.block_at(&gd(), 1).expect("read").expect("block 1");
    let key = Store::chain_key(&gd(), 1);
    let evidence = |a: &Block, b: &Block| {
        let (a, b) = (a.encode(), b.encode());
        let mut out = (a.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&a);
        out.extend_from_slice(&b);
        out
    };
    // Not evidence at all.
    f.store.corrupt("evidence", &key, Some(b"\x00\x00"));
    fails_with(
        &full(&f, &*clock),
        "is not proof of an equivocation: evidence is truncated",
    );
    // The same block twice: no conflict.
    f.store
        .corrupt("evidence", &key, Some(&evidence(&block, &block)));
    fails_with(
        &full(&f, &*clock),
        "is not proof of an equivocation: the two blocks are the same block",
    );
    // A second block at height 1 signed by a key that is not gd.transport's in genesis.
    let other = huren_genesis::keys::read_issuer_key(&f.dir.issuer_key("sh.transport"))
        .expect("key")
        .1;
    let mut header: BlockHeader = block.header.clone();
    header.time_ms += 1;
    let forged = header.clone().sign(&other);
    f.store
        .corrupt("evidence", &key, Some(&evidence(&block, &forged)));
    fails_with(
        &full(&f, &*clock),
        "a block of the evidence is not validly signed",
    );
    // Real evidence (gd.transport's own key signed both), stored under another height.
    let own = huren_genesis::keys::read_issuer_key(&f.dir.issuer_key("gd.transport"))
        .expect("key")
        .1;
    let second = header.clone().sign(&own);
    let real = evidence(&block, &second);
    assert!(huren_core::Equivocation::decode(&net, &real).is_ok());
    f.store.corrupt("evidence", &key, None);
    f.store
        .corrupt("evidence", &Store::chain_key(&gd(), 7), Some(&real));
    fails_with(
        &full(&f, &*clock),
        "proves an equivocation of gd.transport#1",
    );
    // Under its own key it is what a node keeps: the check passes.
    f.store
        .corrupt("evidence", &Store::chain_key(&gd(), 7), None);
    f.store.corrupt("evidence", &key, Some(&real));
    let s = full(&f, &*clock);
    passes(&s);
    assert_eq!(s.evidence, 1);
    // More pieces against one department than the store ever keeps.
    let max = crate::store::EVIDENCE_PER_DEPARTMENT_MAX as u64;
    for height in 2..=max + 1 {
        let mut h = header.clone();
        h.height = height;
        let a = h.clone().sign(&own);
        h.time_ms += 1;
        let b = h.sign(&own);
        f.store.corrupt(
            "evidence",
            &Store::chain_key(&gd(), height),
            Some(&evidence(&a, &b)),
        );
    }
    fails_with(
        &full(&f, &*clock),
        &format!(
            "{} pieces of evidence against gd.transport; the store keeps at most {max}",
            max + 1
        ),
    );
}

#[tokio::test]
async fn metadata_out_of_step_with_the_chains_fails() {
    let (f, clock, ids) = node_with(3).await;
    passes(&full(&f, &*clock));
    // A serial counter set back: the next issue would reuse a licence id.
    f.store
        .corrupt("meta", b"serial/mvdl", Some(&2u64.to_be_bytes()));
    fails_with(
        &full(&f, &*clock),
        "serial counter of mvdl is 2, but the chain already issued serial 3",
    );
    f.store.corrupt("meta", b"serial/mvdl", None);
    fails_with(&full(&f, &*clock), "serial counter of mvdl is missing");
    f.store
        .corrupt("meta", b"serial/mvdl", Some(&4u64.to_be_bytes()));
    passes(&full(&f, &*clock));
    // A licence count the chains do not give.
    f.store
        .corrupt("meta", b"licences", Some(&7u64.to_be_bytes()));
    fails_with(
        &full(&f, &*clock),
        "meta licence count is 7, the chains give 3 licences",
    );
    f.store
        .corrupt("meta", b"licences", Some(&3u64.to_be_bytes()));
    passes(&full(&f, &*clock));
    // Keys the store never writes, and another network's genesis.
    f.store.corrupt("meta", b"owner", Some(b"me"));
    fails_with(
        &full(&f, &*clock),
        "meta \"owner\" is not a key the store writes",
    );
    f.store.corrupt("meta", b"owner", None);
    f.store.corrupt("meta", b"genesis", Some(&[7; 32]));
    fails_with(&full(&f, &*clock), "meta genesis is 0707");
    let net = f.dir.network().expect("genesis");
    f.store.corrupt("meta", b"genesis", Some(&net.hash().0));
    passes(&full(&f, &*clock));

    // The head moved back, and a licence's index entry rewritten: both indexes are
    // compared with the chains, in full and since a checkpoint.
    let cp = Checkpoint::parse(&full(&f, &*clock).checkpoint).expect("cp");
    let (s, _, _) = f
        .send(
            "POST",
            &format!("/v1/licences/{}/revoke", ids[0]),
            Some(TOKEN),
            Some(json!({"reason": "penalty"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Another licence's entry (valid bytes, but not this licence's state).
    let other = f
        .store
        .raw("licences", ids[2].to_string().as_bytes())
        .expect("entry");
    f.store
        .corrupt("licences", ids[0].to_string().as_bytes(), Some(&other));
    fails_with(&full(&f, &*clock), &format!("licence {}: stored", ids[0]));
    // Since the checkpoint: the replay of the revoked licence starts at its first record
    // (the history index), so the lying entry is found against what the replay gives,
    // and the sample of older blocks finds the issue record and the entry disagree.
    let s = since(&f, &*clock, &cp);
    fails_with(&s, &format!("licence {}: stored", ids[0]));
    fails_with(
        &s,
        &format!(
            "licence {}: credential brought in at gd.transport#1",
            ids[0]
        ),
    );
}

#[tokio::test]
async fn a_head_or_chain_index_out_of_step_fails() {
    let (f, clock, _) = node_with(3).await;
    let cp = Checkpoint::parse(&full(&f, &*clock).checkpoint).expect("cp");
    // The head names block 3 while the chain has 4 (3 issues and a suspension).
    let head3 = f.store.block_at(&gd(), 3).expect("read").expect("block");
    let mut head = 3u64.to_be_bytes().to_vec();
    head.extend_from_slice(&head3.hash().0);
    head.extend_from_slice(&head3.header.time_ms.to_be_bytes());
    head.extend_from_slice(&head3.header.gov.to_be_bytes());
    f.store.corrupt("heads", b"gd.transport", Some(&head));
    fails_with(&full(&f, &*clock), "head of gd.transport: stored");
    fails_with(&since(&f, &*clock, &cp), "head of gd.transport: stored");
    // The chain index rewritten below the checkpoint: the check since it says so.
    let block4 = f.store.block_at(&gd(), 4).expect("read").expect("block");
    f.store
        .corrupt("chain", &Store::chain_key(&gd(), 4), Some(&head3.hash().0));
    fails_with(
        &full(&f, &*clock),
        "gd.transport#4: index points at block gd.transport#3",
    );
    fails_with(
        &since(&f, &*clock, &cp),
        &format!(
            "gd.transport#4: the checkpoint verified block {}",
            block4.hash()
        ),
    );
}

/// A stored hash of a record tree changed, or its size, is a mismatch of the full check.
#[tokio::test]
async fn a_record_tree_out_of_step_with_the_blocks_fails() {
    let (f, clock, _) = node_with(3).await;
    passes(&full(&f, &*clock));
    let (key, at) = f.store.stored_hash_place(&gd(), 0, 1).expect("a place");
    let stored = f.store.raw("merkle", &key).expect("a stored leaf hash");
    let mut wrong = stored.clone();
    wrong[at..at + 32].copy_from_slice(&[7u8; 32]);
    f.store.corrupt("merkle", &key, Some(&wrong));
    fails_with(
        &full(&f, &*clock),
        "record tree of gd.transport: 1 stored hashes differ",
    );
    f.store.corrupt("merkle", &key, Some(&stored));
    passes(&full(&f, &*clock));
    f.store
        .corrupt("meta", b"tree/gd.transport", Some(&9u64.to_be_bytes()));
    fails_with(
        &full(&f, &*clock),
        "record tree of gd.transport: 9 records stored, 4 in its blocks",
    );
}

/// The status set (suspended and revoked licences) out of step with the blocks is a
/// mismatch of the full check: an entry missing, or one too many.
#[tokio::test]
async fn a_status_set_out_of_step_with_the_blocks_fails() {
    let (f, clock, ids) = node_with(3).await;
    // node_with suspends one licence: the set holds it.
    passes(&full(&f, &*clock));
    assert_eq!(
        f.store
            .status_root(&gd(), clock.now_secs())
            .expect("root")
            .0,
        1
    );
    let key = |id: &LicenceId| {
        let mut k = gd().as_str().as_bytes().to_vec();
        k.push(0);
        k.extend_from_slice(&huren_core::tlog::status_key(id));
        k
    };
    let suspended = ids
        .iter()
        .find(|id| f.store.raw("status", &key(id)).is_some())
        .expect("the suspended licence is in the set")
        .clone();
    f.store.corrupt("status", &key(&suspended), None);
    fails_with(
        &full(&f, &*clock),
        "status set of gd.transport: 0 entries stored, its blocks give 1",
    );
    f.store.corrupt("status", &key(&suspended), Some(&[1, 0]));
    passes(&full(&f, &*clock));
    let other = ids
        .iter()
        .find(|id| **id != suspended)
        .expect("another licence");
    f.store.corrupt("status", &key(other), Some(&[2, 1]));
    fails_with(
        &full(&f, &*clock),
        "status set of gd.transport: 2 entries stored",
    );
}
