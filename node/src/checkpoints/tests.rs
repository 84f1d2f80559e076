use super::*;
use crate::clock::ManualClock;
use crate::ledger::tests::{TestLedger, GD, NOW};
use huren_core::ledger::{Record, RevokeReason};
use huren_core::Block;

const SH: &str = "sh.transport";

/// gd.transport's own ledger and checkpoints, and a second node (sh.transport's, a
/// witness) holding gd's chain as it receives it.
struct Pair {
    t: TestLedger,
    gd: Checkpoints,
    sh_ledger: Arc<Ledger>,
    sh: Checkpoints,
    clock: Arc<ManualClock>,
}

fn node_key(t: &TestLedger, name: &str) -> SecretKey {
    huren_genesis::keys::read_node_secret(&huren_genesis::keys::node_key_path(
        &t.founded.keys,
        name,
    ))
    .expect("node key")
    .1
}

fn witness_at(t: &TestLedger, dir: &str, clock: &Arc<ManualClock>) -> (Arc<Ledger>, Checkpoints) {
    let net = Arc::new(t.founded.network().expect("genesis"));
    let store = Arc::new(Store::open(&t.founded.path(dir), &net).expect("store"));
    let ledger = Arc::new(Ledger::new(net, store).expect("ledger"));
    let cps = Checkpoints::new(
        ledger.clone(),
        Some(WitnessKey {
            node: SH.into(),
            key: node_key(t, SH),
        }),
        clock.clone(),
        Arc::new(Metrics::default()),
    )
    .expect("checkpoints");
    (ledger, cps)
}

impl Pair {
    fn new() -> Self {
        let t = TestLedger::new();
        let clock = ManualClock::at(NOW);
        let gd = Checkpoints::new(
            t.ledger.clone(),
            Some(WitnessKey {
                node: GD.into(),
                key: node_key(&t, GD),
            }),
            clock.clone(),
            Arc::new(Metrics::default()),
        )
        .expect("checkpoints");
        let (sh_ledger, sh) = witness_at(&t, "sh", &clock);
        Self {
            t,
            gd,
            sh_ledger,
            sh,
            clock,
        }
    }

    fn dept() -> DepartmentId {
        DepartmentId::parse(GD).expect("dept")
    }

    /// gd's next block with `records`, on gd's chain; the witness gets it when `both`.
    fn block(&self, height: u64, records: Vec<Record>, both: bool) -> Block {
        let b = self.t.block(GD, GD, height, records);
        self.t.receive(b.clone());
        if both {
            self.to_witness(&b);
        }
        b
    }

    fn to_witness(&self, b: &Block) {
        self.sh_ledger
            .receive(b.clone(), NOW, huren_core::ledger::BLOCK_RECORDS_MAX)
            .expect("storage");
    }

    /// gd signs its checkpoint now (due or not: a minute passes first).
    fn sign(&self) -> SignedCheckpoint {
        self.clock.advance(std::time::Duration::from_secs(60));
        let key = self.t.key(GD);
        self.gd
            .sign_own(&Self::dept(), |_| Some(key.clone()), 1000, 30_000)
            .expect("storage")
            .expect("due")
    }
}

#[test]
fn a_witness_cosigns_a_checkpoint_its_copy_shows_and_the_department_counts_it() {
    let p = Pair::new();
    p.block(
        1,
        vec![TestLedger::issue(GD, 1), TestLedger::issue(GD, 2)],
        true,
    );
    let revoke = Record::Revoke {
        licence_id: huren_core::LicenceId::new(
            Pair::dept(),
            huren_core::LicenceType::parse("mvdl").expect("t"),
            1,
        ),
        reason: RevokeReason::Penalty,
        officer: huren_core::OfficerId::parse("officer-1").expect("officer"),
    };
    p.block(2, vec![revoke], true);
    let cp = p.sign();
    assert_eq!((cp.checkpoint.height, cp.checkpoint.size), (2, 3));
    assert_eq!(cp.checkpoint.status_count, 1);

    let got = p.sh.receive(cp.clone()).expect("storage");
    let mine = got.cosigned.expect("the witness cosigns");
    assert!(got.new);
    let net = p.t.ledger.network();
    assert_eq!(mine.cosigners(&net)[0].node, SH);
    // What it cosigned is on disk before the cosignature left.
    assert_eq!(
        p.sh_ledger
            .store()
            .witnessed(&Pair::dept())
            .expect("read")
            .map(|c| c.height),
        Some(2)
    );
    // The same checkpoint again is not cosigned twice.
    assert!(p
        .sh
        .receive(cp.clone())
        .expect("storage")
        .cosigned
        .is_none());

    // The example network's quorum is 2: one cosignature does not count yet.
    assert_eq!(checkpoint::quorum(&net, &Pair::dept()), 2);
    p.gd.receive(mine).expect("storage");
    let k = p.gd.known(&Pair::dept());
    assert!(k.counted.is_none());
    assert_eq!(k.newest.expect("held").cosigners(&net).len(), 1);
    // A second witness (sh.market) makes the quorum.
    let mut other = cp.clone();
    other.cosign(&net, "sh.market", &node_key(&p.t, "sh.market"), NOW / 1000);
    p.gd.receive(other).expect("storage");
    let counted = p.gd.known(&Pair::dept()).counted.expect("counted");
    assert_eq!(counted.cosigners(&net).len(), 2);
    assert!(counted.has_quorum(&net));
    // Its status set was kept with it, for bundles.
    assert_eq!(
        p.gd.snapshot(&Pair::dept()).map(|s| s.entries.len()),
        Some(1)
    );
}

#[test]
fn a_witness_behind_cosigns_once_its_chain_reaches_the_checkpoint() {
    let p = Pair::new();
    p.block(1, vec![TestLedger::issue(GD, 1)], true);
    let b2 = p.block(2, vec![TestLedger::issue(GD, 2)], false);
    let cp = p.sign();
    let got = p.sh.receive(cp).expect("storage");
    assert!(got.cosigned.is_none(), "its copy ends at height 1");
    p.to_witness(&b2);
    let mine = p.sh.advanced(&Pair::dept()).expect("storage");
    assert_eq!(mine.map(|m| m.checkpoint.height), Some(2));
    assert!(p.sh.advanced(&Pair::dept()).expect("storage").is_none());
}

#[test]
fn a_witness_refuses_a_checkpoint_its_copy_contradicts() {
    let p = Pair::new();
    p.block(1, vec![TestLedger::issue(GD, 1)], true);
    let cp = p.sign();
    let net = p.t.ledger.network();
    let forged = SignedCheckpoint::sign(
        &net,
        DeptCheckpoint {
            root: huren_core::Hash32([7; 32]),
            ..cp.checkpoint.clone()
        },
        &p.t.key(GD),
    );
    assert!(p.sh.receive(forged).expect("storage").cosigned.is_none());
    assert!(p
        .sh_ledger
        .store()
        .witnessed(&Pair::dept())
        .expect("read")
        .is_none());
}

#[test]
fn a_failed_flush_releases_no_cosignature_and_the_persisted_state_survives_a_restart() {
    let p = Pair::new();
    p.block(1, vec![TestLedger::issue(GD, 1)], true);
    let cp1 = p.sign();
    p.sh_ledger.store().fail_next_flush();
    assert!(p.sh.receive(cp1.clone()).is_err(), "the flush failed");
    // No cosignature left: none is held either.
    let k = p.sh.known(&Pair::dept());
    assert!(k
        .newest
        .expect("held")
        .cosigners(&p.t.ledger.network())
        .is_empty());

    p.block(2, vec![TestLedger::issue(GD, 2)], true);
    let cp2 = p.sign();
    assert!(p.sh.receive(cp2).expect("storage").cosigned.is_some());
    // The witness restarts: what it cosigned is still on disk, and it never cosigns the
    // older checkpoint now.
    drop(p.sh);
    let store = p.sh_ledger.store().clone();
    drop(p.sh_ledger);
    drop(store);
    let (_, sh) = witness_at(&p.t, "sh", &p.clock);
    assert!(sh.receive(cp1).expect("storage").cosigned.is_none());
}

#[test]
fn two_conflicting_checkpoints_convict_their_department_with_evidence() {
    let p = Pair::new();
    p.block(1, vec![TestLedger::issue(GD, 1)], true);
    let cp = p.sign();
    let net = p.t.ledger.network();
    p.sh.receive(cp.clone()).expect("storage");
    let other = SignedCheckpoint::sign(
        &net,
        DeptCheckpoint {
            root: huren_core::Hash32([7; 32]),
            time_ms: cp.checkpoint.time_ms + 1,
            ..cp.checkpoint.clone()
        },
        &p.t.key(GD),
    );
    let got = p.sh.receive(other).expect("storage");
    let ev = got.conflict.expect("evidence");
    assert!(ev.verify(&net).is_ok());
    assert_eq!(p.sh.conflicts(), vec![ev.clone()]);
    // Another node takes the evidence as gossiped, once.
    assert!(p.gd.receive_conflict(&ev).expect("storage"));
    assert!(!p.gd.receive_conflict(&ev).expect("storage"));
}

#[test]
fn the_department_signs_when_its_chain_moves_and_when_idle_for_the_interval() {
    let p = Pair::new();
    let key = p.t.key(GD);
    let sign = |p: &Pair| {
        p.gd.sign_own(&Pair::dept(), |_| Some(key.clone()), 1000, 30_000)
            .expect("storage")
    };
    assert!(sign(&p).is_some(), "the first one at start");
    assert!(sign(&p).is_none(), "nothing new");
    p.block(1, vec![TestLedger::issue(GD, 1)], false);
    assert!(sign(&p).is_none(), "within the spacing");
    p.clock.advance(std::time::Duration::from_millis(1000));
    assert_eq!(sign(&p).map(|c| c.checkpoint.height), Some(1));
    p.clock.advance(std::time::Duration::from_secs(29));
    assert!(sign(&p).is_none(), "idle, within the interval");
    p.clock.advance(std::time::Duration::from_secs(1));
    assert!(sign(&p).is_some(), "idle for the interval: alive");
}
