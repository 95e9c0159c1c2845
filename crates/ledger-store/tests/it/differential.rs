//! Differential property tests: the in-memory and redb state stores agree on every get, range, history and
//! savepoint after random batches of puts and deletes, and so they do while some of the batches sit in the
//! redb store's overlay (applied while a durable commit runs), after the overlay is written, and after a
//! reopen.

use ledger_store::{MemStateStore, RedbStateStore};
use ledger_types::proto::Version;
use ledger_types::store::{StateSnapshot, StateStore, UpdateBatch};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = (u8, u8, Option<u8>)> {
    // Few namespaces and keys, so puts, overwrites and deletes collide often.
    (0u8..3, 0u8..12, proptest::option::of(any::<u8>()))
}

const NS: [&str; 3] = ["a", "ab", "b"];

fn key(k: u8) -> String {
    ["", "k", "k0", "k1", "k10", "k2", "x", "x\u{0}", "é", "z", "zz", "\u{7f}"][k as usize].to_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn mem_and_redb_agree(blocks in proptest::collection::vec(proptest::collection::vec(op(), 0..20), 1..6),
                          start in 0u8..12, end in 0u8..12, limit in 0usize..8) {
        let dir = tempfile::tempdir().unwrap();
        let redb = RedbStateStore::open(dir.path().join("state.redb")).unwrap();
        let mem = MemStateStore::new();
        for (n, ops) in blocks.iter().enumerate() {
            let mut batch = UpdateBatch::default();
            for (i, (ns, k, v)) in ops.iter().enumerate() {
                match v {
                    Some(v) => batch.put(NS[*ns as usize], &key(*k), vec![*v; *v as usize % 5],
                        Version { block_num: n as u64, tx_num: i as u64 }),
                    None => batch.delete(NS[*ns as usize], &key(*k)),
                }
            }
            redb.apply(&batch, n as u64).unwrap();
            mem.apply(&batch, n as u64).unwrap();
        }
        prop_assert_eq!(redb.savepoint().unwrap(), mem.savepoint().unwrap());
        let (rs, ms) = (redb.snapshot().unwrap(), mem.snapshot().unwrap());
        for ns in NS {
            for k in 0..12 {
                prop_assert_eq!(rs.get(ns, &key(k)).unwrap(), ms.get(ns, &key(k)).unwrap());
            }
            let (s, e) = (key(start), key(end));
            prop_assert_eq!(rs.range(ns, &s, &e, limit).unwrap(), ms.range(ns, &s, &e, limit).unwrap());
            prop_assert_eq!(rs.range(ns, &s, "", 100).unwrap(), ms.range(ns, &s, "", 100).unwrap());
        }
    }
}

fn block_batch(n: u64, ops: &[(u8, u8, Option<u8>)]) -> UpdateBatch {
    let mut batch = UpdateBatch::default();
    for (i, (ns, k, v)) in ops.iter().enumerate() {
        let version = Version { block_num: n, tx_num: i as u64 };
        match v {
            Some(v) => batch.put(NS[*ns as usize], &key(*k), vec![*v; *v as usize % 5], version),
            None => batch.delete(NS[*ns as usize], &key(*k)),
        }
        batch.touched(NS[*ns as usize], &key(*k), version);
    }
    batch
}

fn agree(
    redb: &RedbStateStore,
    mem: &MemStateStore,
    start: u8,
    end: u8,
    limit: usize,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(redb.savepoint().unwrap(), mem.savepoint().unwrap());
    let (rs, ms) = (redb.snapshot().unwrap(), mem.snapshot().unwrap());
    prop_assert_eq!(rs.savepoint(), mem.savepoint().unwrap());
    for ns in NS {
        for k in 0..12 {
            prop_assert_eq!(rs.get(ns, &key(k)).unwrap(), ms.get(ns, &key(k)).unwrap());
            prop_assert_eq!(rs.history(ns, &key(k), limit).unwrap(), ms.history(ns, &key(k), limit).unwrap());
            prop_assert_eq!(rs.history(ns, &key(k), 100).unwrap(), ms.history(ns, &key(k), 100).unwrap());
        }
        let (s, e) = (key(start), key(end));
        prop_assert_eq!(rs.range(ns, &s, &e, limit).unwrap(), ms.range(ns, &s, &e, limit).unwrap());
        prop_assert_eq!(rs.range(ns, &s, "", 100).unwrap(), ms.range(ns, &s, "", 100).unwrap());
        prop_assert_eq!(rs.range(ns, "", "", limit).unwrap(), ms.range(ns, "", "", limit).unwrap());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn the_overlay_of_a_running_durable_commit_reads_as_the_store(
        before in proptest::collection::vec(proptest::collection::vec(op(), 0..20), 0..4),
        during in proptest::collection::vec(proptest::collection::vec(op(), 0..20), 1..5),
        start in 0u8..12, end in 0u8..12, limit in 0usize..8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let redb = RedbStateStore::open(&path).unwrap();
        let mem = MemStateStore::new();
        // Blocks 0..SYNC_EVERY fill another namespace, so the next persist_due starts a durable commit.
        let every = u64::from(ledger_store::STATE_SYNC_EVERY);
        let mut n = 0;
        while n < every {
            let mut b = UpdateBatch::default();
            b.put("filler", &n.to_string(), vec![1], Version { block_num: n, tx_num: 0 });
            redb.apply(&b, n).unwrap();
            mem.apply(&b, n).unwrap();
            n += 1;
        }
        for ops in &before {
            let b = block_batch(n, ops);
            redb.apply(&b, n).unwrap();
            mem.apply(&b, n).unwrap();
            n += 1;
        }
        redb.hold_durable_commits(true);
        redb.persist_due().unwrap();
        for ops in &during {
            let b = block_batch(n, ops);
            redb.apply(&b, n).unwrap();
            mem.apply(&b, n).unwrap();
            n += 1;
        }
        let waiting = redb.overlay_len();
        let during_agree = agree(&redb, &mem, start, end, limit);
        // Released before any failure returns: the store's drop waits for the durable commit.
        redb.hold_durable_commits(false);
        prop_assert_eq!(waiting, during.len(), "the blocks after the start wait in the overlay");
        during_agree?;
        redb.wait_durable().unwrap();
        prop_assert_eq!(redb.overlay_len(), 0, "the overlay is written once the durable commit is done");
        agree(&redb, &mem, start, end, limit)?;
        drop(redb);
        let redb = RedbStateStore::open(&path).unwrap();
        agree(&redb, &mem, start, end, limit)?;
    }
}
