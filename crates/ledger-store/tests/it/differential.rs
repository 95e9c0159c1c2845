//! Differential property test: the in-memory and redb state stores agree on every get and range after
//! random batches of puts and deletes.

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
