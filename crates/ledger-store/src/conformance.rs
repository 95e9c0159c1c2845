//! The conformance suite every [`BlockStore`] and [`StateStore`] passes (after TiKV's `engine_traits_tests`
//! and openraft's log-store suite). A store crate runs it from its integration tests:
//!
//! ```
//! use ledger_store::{MemBlockStore, MemStateStore, conformance::{self, Fixture}};
//! conformance::test_all_block_stores(|| Fixture::in_memory(MemBlockStore::new()));
//! conformance::test_all_state_stores(|| Fixture::in_memory(MemStateStore::new()));
//! ```
//!
//! On-disk stores build a [`Fixture::persistent`] with a guard (a temporary directory) and a reopen hook,
//! so the suite also checks that everything survives dropping and reopening the store. Failures panic
//! with a message naming the check, as test assertions do.

#![allow(clippy::unwrap_used)]

use ledger_types::BlockExt;
use ledger_types::block::BlockBuilder;
use ledger_types::proto::{Block, Envelope, Payload, Version};
use ledger_types::proto::{ChannelHeader, Header, HeaderType};
use ledger_types::store::{
    BlockStore, StateSnapshot, StateStore, StoreError, TxLocation, UpdateBatch, VersionedValue,
};
use ledger_types::{Hash32, TxId, TxValidationCode};
use prost::Message;
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};

type Reopen<S> = Box<dyn Fn() -> Result<S, StoreError>>;

/// A fresh, empty store under test, with what keeps its resources alive and, for a persistent store, how
/// to open it again.
pub struct Fixture<S> {
    /// The store (dropped first).
    pub store: S,
    reopen: Option<Reopen<S>>,
    _guard: Box<dyn Any>,
}

impl<S> Fixture<S> {
    /// A store that keeps nothing across a reopen (the reopen checks are skipped).
    pub fn in_memory(store: S) -> Fixture<S> {
        Fixture { store, reopen: None, _guard: Box::new(()) }
    }

    /// A persistent store: `guard` (e.g. a `TempDir`) is dropped after the store, and `reopen` opens the
    /// same store again once the previous instance is dropped.
    pub fn persistent<G: 'static>(
        store: S,
        guard: G,
        reopen: impl Fn() -> Result<S, StoreError> + 'static,
    ) -> Fixture<S> {
        Fixture { store, reopen: Some(Box::new(reopen)), _guard: Box::new(guard) }
    }

    /// Drops the store and opens it again; `None` for in-memory stores.
    fn reopened(mut self) -> Option<Fixture<S>> {
        let reopen = self.reopen.take()?;
        let Fixture { store, _guard, .. } = self;
        drop(store);
        let store = reopen().unwrap_or_else(|e| panic!("reopening the store failed: {e}"));
        Some(Fixture { store, reopen: Some(reopen), _guard })
    }
}

/// An encoded endorser-transaction envelope claiming `tx_id` (unsigned: stores do not verify).
pub fn envelope(tx_id: &TxId, filler: usize) -> Vec<u8> {
    let channel_header = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        channel_id: "iot".into(),
        tx_id: tx_id.as_str().to_owned(),
        ..Default::default()
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: channel_header.encode_to_vec().into(),
            signature_header: Vec::new().into(),
        }),
        data: vec![0x5a; filler].into(),
    };
    Envelope { payload: payload.encode_to_vec().into(), signature: vec![7; 64].into() }.encode_to_vec()
}

/// The tx id derived from a seed (distinct seeds, distinct ids).
pub fn tx_id(seed: u64) -> TxId {
    TxId::compute(&seed.to_le_bytes(), b"conformance")
}

/// A block after `previous` (None: genesis) with these envelopes and validation codes.
pub fn next_block(previous: Option<&Block>, envelopes: Vec<Vec<u8>>, codes: &[TxValidationCode]) -> Block {
    let (number, prev) = previous.map_or((0, Hash32::ZERO), |p| (p.number() + 1, p.header_hash()));
    let mut block = BlockBuilder::new(number, prev).envelopes(envelopes).build();
    let mut filter = block.validation_codes().to_vec();
    for (slot, code) in filter.iter_mut().zip(codes) {
        *slot = code.as_u8();
    }
    block.set_validation_codes(filter);
    block
}

/// Appends `n` blocks of `txs` transactions each (tx ids from seeds `1000 * number + i`) and returns them.
pub fn append_chain<S: BlockStore>(store: &S, n: u64, txs: u64) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for _ in 0..n {
        let number = out.last().map_or(0, |b| b.number() + 1);
        let envs = (0..txs).map(|i| envelope(&tx_id(1000 * number + i), 40)).collect();
        let block = next_block(out.last(), envs, &[]);
        store.append(&block).unwrap_or_else(|e| panic!("append block {number}: {e}"));
        out.push(block);
    }
    out
}

/// Runs every block-store check, each on a fresh store from `builder`.
pub fn test_all_block_stores<S: BlockStore>(builder: impl Fn() -> Fixture<S>) {
    empty_block_store(builder());
    append_then_read_back(builder());
    refuses_blocks_that_do_not_extend_the_chain(builder());
    tx_index_first_occurrence_wins(builder());
    blocks_survive_reopen(builder());
    readers_run_while_the_writer_appends(builder());
    large_block_round_trips(builder());
}

/// Runs every state-store check, each on a fresh store from `builder`.
pub fn test_all_state_stores<S: StateStore>(builder: impl Fn() -> Fixture<S>) {
    empty_state_store(builder());
    apply_sets_values_versions_and_savepoint(builder());
    deletes_remove_keys(builder());
    range_bounds_and_limit(builder());
    namespaces_are_isolated(builder());
    snapshot_isolation(builder());
    clear_removes_everything(builder());
    state_survives_reopen(builder());
    snapshots_run_while_applies_commit(builder());
    history_lists_the_writers_of_a_key(builder());
}

fn empty_block_store<S: BlockStore>(f: Fixture<S>) {
    let s = &f.store;
    assert_eq!(s.height(), 0, "empty store: height");
    assert_eq!(s.last_hash(), None, "empty store: last hash");
    assert!(s.block(0).unwrap().is_none(), "empty store: block 0");
    assert!(s.block(u64::MAX).unwrap().is_none(), "empty store: block u64::MAX");
    assert!(s.tx_location(&tx_id(1)).unwrap().is_none(), "empty store: tx location");
    if let Some(f) = f.reopened() {
        assert_eq!(f.store.height(), 0, "reopened empty store: height");
    }
}

fn append_then_read_back<S: BlockStore>(f: Fixture<S>) {
    let s = &f.store;
    let chain = append_chain(s, 4, 3);
    assert_eq!(s.height(), 4, "height after 4 appends");
    assert_eq!(s.last_hash(), Some(chain[3].header_hash()), "last hash after 4 appends");
    for b in &chain {
        assert_eq!(s.block(b.number()).unwrap().as_ref(), Some(b), "block {} reads back", b.number());
    }
    assert!(s.block(4).unwrap().is_none(), "block past the end");
}

fn refuses_blocks_that_do_not_extend_the_chain<S: BlockStore>(f: Fixture<S>) {
    let s = &f.store;
    let not_next = |r: Result<(), StoreError>, what: &str| {
        assert!(matches!(r, Err(StoreError::NotNext(_))), "{what}: expected NotNext, got {r:?}");
    };
    not_next(
        s.append(&BlockBuilder::new(0, Hash32::of(b"x")).build()),
        "genesis with a non-zero previous hash",
    );
    not_next(s.append(&BlockBuilder::new(1, Hash32::ZERO).build()), "first block numbered 1");
    not_next(s.append(&Block::default()), "block without a header");
    let chain = append_chain(s, 2, 1);
    not_next(s.append(&chain[1]), "the last block again");
    not_next(s.append(&BlockBuilder::new(3, chain[1].header_hash()).build()), "a skipped number");
    not_next(s.append(&BlockBuilder::new(2, chain[0].header_hash()).build()), "a wrong previous hash");
    assert_eq!(s.height(), 2, "refused appends leave the height");
    assert_eq!(s.last_hash(), Some(chain[1].header_hash()), "refused appends leave the last hash");
    let b2 = next_block(Some(&chain[1]), vec![], &[]);
    s.append(&b2).unwrap();
    assert_eq!(s.block(2).unwrap(), Some(b2), "the right block is accepted after refusals");
}

fn tx_index_first_occurrence_wins<S: BlockStore>(f: Fixture<S>) {
    use TxValidationCode::{DuplicateTxId, MvccReadConflict, Valid};
    let s = &f.store;
    let (a, b, c) = (tx_id(1), tx_id(2), tx_id(3));
    let genesis = next_block(None, vec![b"not an envelope".to_vec()], &[Valid]);
    s.append(&genesis).unwrap();
    let b1 = next_block(
        Some(&genesis),
        vec![envelope(&a, 10), envelope(&b, 10), envelope(&a, 10)],
        &[Valid, MvccReadConflict, DuplicateTxId],
    );
    s.append(&b1).unwrap();
    let b2 = next_block(Some(&b1), vec![envelope(&b, 10), envelope(&c, 10)], &[DuplicateTxId, Valid]);
    s.append(&b2).unwrap();
    let check = |s: &S, when: &str| {
        let loc = |id: &TxId| s.tx_location(id).unwrap();
        assert_eq!(loc(&a), Some(TxLocation { block: 1, index: 0, code: Valid }), "{when}: tx a");
        assert_eq!(loc(&b), Some(TxLocation { block: 1, index: 1, code: MvccReadConflict }), "{when}: tx b");
        assert_eq!(loc(&c), Some(TxLocation { block: 2, index: 1, code: Valid }), "{when}: tx c");
        assert_eq!(loc(&tx_id(4)), None, "{when}: unknown tx");
    };
    check(s, "after append");
    if let Some(f) = f.reopened() {
        check(&f.store, "after reopen");
    }
}

fn blocks_survive_reopen<S: BlockStore>(f: Fixture<S>) {
    let chain = append_chain(&f.store, 5, 2);
    let Some(f) = f.reopened() else { return };
    let s = &f.store;
    assert_eq!(s.height(), 5, "height after reopen");
    assert_eq!(s.last_hash(), Some(chain[4].header_hash()), "last hash after reopen");
    for b in &chain {
        assert_eq!(s.block(b.number()).unwrap().as_ref(), Some(b), "block {} after reopen", b.number());
    }
    let loc = s.tx_location(&tx_id(3001)).unwrap();
    assert_eq!(loc.map(|l| (l.block, l.index)), Some((3, 1)), "tx index after reopen");
    let b5 = next_block(Some(&chain[4]), vec![envelope(&tx_id(99), 5)], &[]);
    s.append(&b5).unwrap();
    let f = f.reopened().unwrap();
    assert_eq!(f.store.height(), 6, "append after reopen, reopened again");
    assert_eq!(f.store.block(5).unwrap(), Some(b5), "block appended after reopen");
}

fn readers_run_while_the_writer_appends<S: BlockStore>(f: Fixture<S>) {
    let s = &f.store;
    let first = append_chain(s, 1, 1);
    let done = AtomicBool::new(false);
    struct SetOnDrop<'a>(&'a AtomicBool);
    impl Drop for SetOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let _done = SetOnDrop(&done);
            let mut last = first[0].clone();
            for _ in 0..40 {
                let number = last.number() + 1;
                let b = next_block(Some(&last), vec![envelope(&tx_id(500_000 + number), 100)], &[]);
                s.append(&b).unwrap();
                last = b;
            }
        });
        for _ in 0..2 {
            scope.spawn(|| {
                let mut seen = 0;
                while seen < 41 {
                    let finished = done.load(Ordering::SeqCst);
                    let h = s.height();
                    assert!(h >= seen, "height went backwards");
                    for n in seen..h {
                        let b =
                            s.block(n).unwrap().unwrap_or_else(|| panic!("block {n} < height {h} missing"));
                        assert_eq!(b.number(), n, "concurrent read of block {n}");
                    }
                    seen = h;
                    if finished && seen == s.height() {
                        break;
                    }
                    std::thread::yield_now();
                }
            });
        }
        writer.join().unwrap();
    });
    assert_eq!(s.height(), 41, "height after concurrent appends");
}

fn large_block_round_trips<S: BlockStore>(f: Fixture<S>) {
    let s = &f.store;
    let envs: Vec<Vec<u8>> = (0..8).map(|i| envelope(&tx_id(70_000 + i), 256 * 1024)).collect();
    let g = next_block(None, envs, &[]);
    s.append(&g).unwrap();
    assert_eq!(s.block(0).unwrap(), Some(g), "a 2 MiB block reads back");
}

fn vv(value: &[u8], block_num: u64, tx_num: u64) -> VersionedValue {
    VersionedValue { value: value.to_vec(), version: Version { block_num, tx_num } }
}

fn batch(entries: &[(&str, &str, Option<&[u8]>)], block: u64) -> UpdateBatch {
    let mut b = UpdateBatch::default();
    for (i, (ns, key, value)) in entries.iter().enumerate() {
        match value {
            Some(v) => b.put(ns, key, v.to_vec(), Version { block_num: block, tx_num: i as u64 }),
            None => b.delete(ns, key),
        }
    }
    b
}

fn keys(r: Vec<(String, VersionedValue)>) -> Vec<String> {
    r.into_iter().map(|(k, _)| k).collect()
}

fn empty_state_store<S: StateStore>(f: Fixture<S>) {
    let s = &f.store;
    assert_eq!(s.savepoint().unwrap(), None, "empty state: savepoint");
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.get("ns", "k").unwrap(), None, "empty state: get");
    assert!(snap.range("ns", "", "", 100).unwrap().is_empty(), "empty state: range");
}

fn apply_sets_values_versions_and_savepoint<S: StateStore>(f: Fixture<S>) {
    let s = &f.store;
    s.apply(
        &batch(&[("ns", "a", Some(b"1")), ("ns", "b", Some(b"2")), ("ns", "", Some(b"empty key"))], 1),
        1,
    )
    .unwrap();
    assert_eq!(s.savepoint().unwrap(), Some(1), "savepoint after apply");
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.get("ns", "a").unwrap(), Some(vv(b"1", 1, 0)), "value and version of a");
    assert_eq!(snap.get("ns", "b").unwrap(), Some(vv(b"2", 1, 1)), "value and version of b");
    assert_eq!(snap.get("ns", "").unwrap(), Some(vv(b"empty key", 1, 2)), "the empty key");
    assert_eq!(snap.get("other", "a").unwrap(), None, "same key, other namespace");
    s.apply(&batch(&[("ns", "a", Some(b""))], 2), 2).unwrap();
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.get("ns", "a").unwrap(), Some(vv(b"", 2, 0)), "overwrite with an empty value");
    assert_eq!(snap.get("ns", "b").unwrap(), Some(vv(b"2", 1, 1)), "untouched key keeps its version");
    s.apply(&UpdateBatch::default(), 3).unwrap();
    assert_eq!(s.savepoint().unwrap(), Some(3), "an empty batch still moves the savepoint");
}

fn deletes_remove_keys<S: StateStore>(f: Fixture<S>) {
    let s = &f.store;
    s.apply(&batch(&[("ns", "a", Some(b"1")), ("ns", "b", Some(b"2")), ("ns", "c", Some(b"3"))], 1), 1)
        .unwrap();
    s.apply(&batch(&[("ns", "b", None), ("ns", "missing", None), ("ns", "d", Some(b"4"))], 2), 2).unwrap();
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.get("ns", "b").unwrap(), None, "deleted key");
    assert_eq!(keys(snap.range("ns", "", "", 10).unwrap()), ["a", "c", "d"], "range skips deleted keys");
    assert_eq!(s.savepoint().unwrap(), Some(2), "savepoint after a batch with deletes");
}

fn range_bounds_and_limit<S: StateStore>(f: Fixture<S>) {
    let s = &f.store;
    let ks = ["a", "b", "b\u{0}", "b1", "c", "d", "é", "\u{10FFFF}"];
    let entries: Vec<(&str, &str, Option<&[u8]>)> = ks.iter().map(|k| ("ns", *k, Some(&b"v"[..]))).collect();
    s.apply(&batch(&entries, 1), 1).unwrap();
    let snap = s.snapshot().unwrap();
    let r = |start: &str, end: &str, limit: usize| keys(snap.range("ns", start, end, limit).unwrap());
    assert_eq!(r("", "", 100), ks, "whole namespace, in byte order");
    assert_eq!(r("b", "d", 100), ["b", "b\u{0}", "b1", "c"], "start inclusive, end exclusive");
    assert_eq!(r("b0", "", 100), ["b1", "c", "d", "é", "\u{10FFFF}"], "start between keys, to the end");
    assert_eq!(r("", "b", 100), ["a"], "from the start");
    assert_eq!(r("a", "", 3), ["a", "b", "b\u{0}"], "limit");
    assert!(r("a", "", 0).is_empty(), "limit 0");
    assert!(r("c", "b", 100).is_empty(), "end before start");
    assert!(r("c", "c", 100).is_empty(), "empty interval");
    assert!(r("\u{10FFFF}\u{1}", "", 100).is_empty(), "start past the last key");
    let v = snap.range("ns", "c", "d", 10).unwrap();
    assert_eq!(v, vec![("c".to_owned(), vv(b"v", 1, 4))], "range returns values and versions");
}

fn namespaces_are_isolated<S: StateStore>(f: Fixture<S>) {
    let s = &f.store;
    s.apply(
        &batch(
            &[
                ("a", "x", Some(b"1")),
                ("ab", "y", Some(b"2")),
                ("a.b", "z", Some(b"3")),
                ("", "w", Some(b"4")),
            ],
            1,
        ),
        1,
    )
    .unwrap();
    let snap = s.snapshot().unwrap();
    assert_eq!(keys(snap.range("a", "", "", 10).unwrap()), ["x"], "namespace a");
    assert_eq!(keys(snap.range("ab", "", "", 10).unwrap()), ["y"], "namespace ab");
    assert_eq!(keys(snap.range("", "", "", 10).unwrap()), ["w"], "the empty namespace");
    assert!(snap.range("b", "", "", 10).unwrap().is_empty(), "absent namespace");
    assert_eq!(snap.get("a", "y").unwrap(), None, "key of ab not visible in a");
}

fn snapshot_isolation<S: StateStore>(f: Fixture<S>) {
    let s = &f.store;
    s.apply(&batch(&[("ns", "a", Some(b"old")), ("ns", "gone", Some(b"x"))], 1), 1).unwrap();
    let before = s.snapshot().unwrap();
    s.apply(&batch(&[("ns", "a", Some(b"new")), ("ns", "gone", None), ("ns", "added", Some(b"y"))], 2), 2)
        .unwrap();
    assert_eq!(before.get("ns", "a").unwrap(), Some(vv(b"old", 1, 0)), "old snapshot keeps the old value");
    assert!(before.get("ns", "gone").unwrap().is_some(), "old snapshot keeps a key deleted later");
    assert_eq!(before.get("ns", "added").unwrap(), None, "old snapshot does not see a later insert");
    assert_eq!(keys(before.range("ns", "", "", 10).unwrap()), ["a", "gone"], "old snapshot's range");
    let after = s.snapshot().unwrap();
    assert_eq!(after.get("ns", "a").unwrap(), Some(vv(b"new", 2, 0)), "new snapshot sees the apply");
    assert_eq!(keys(after.range("ns", "", "", 10).unwrap()), ["a", "added"], "new snapshot's range");
    s.clear().unwrap();
    assert_eq!(before.get("ns", "a").unwrap(), Some(vv(b"old", 1, 0)), "old snapshot survives clear");
}

fn clear_removes_everything<S: StateStore>(f: Fixture<S>) {
    let s = &f.store;
    s.apply(&batch(&[("ns", "a", Some(b"1")), ("other", "b", Some(b"2"))], 7), 7).unwrap();
    s.clear().unwrap();
    assert_eq!(s.savepoint().unwrap(), None, "savepoint after clear");
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.get("ns", "a").unwrap(), None, "value after clear");
    assert!(snap.range("other", "", "", 10).unwrap().is_empty(), "range after clear");
    s.apply(&batch(&[("ns", "a", Some(b"3"))], 0), 0).unwrap();
    assert_eq!(s.savepoint().unwrap(), Some(0), "rebuilding after clear starts at block 0");
    let f = match f.reopened() {
        Some(f) => f,
        None => return,
    };
    assert_eq!(f.store.snapshot().unwrap().get("other", "b").unwrap(), None, "clear is durable");
}

fn history_lists_the_writers_of_a_key<S: StateStore>(f: Fixture<S>) {
    let v = |block_num, tx_num| Version { block_num, tx_num };
    let s = &f.store;
    let mut b1 = batch(&[("ns", "a", Some(b"1"))], 1);
    b1.touched("ns", "a", v(1, 0));
    b1.touched("ns", "a", v(1, 3)); // written twice in one block: both count
    b1.touched("ns", "a\0x", v(1, 4)); // a composite key that extends "a" is another key
    s.apply(&b1, 1).unwrap();
    let before = s.snapshot().unwrap();
    let mut b2 = batch(&[("ns", "a", None)], 2);
    b2.touched("ns", "a", v(2, 1));
    b2.touched("other", "a", v(2, 2));
    s.apply(&b2, 2).unwrap();
    let snap = s.snapshot().unwrap();
    assert_eq!(
        snap.history("ns", "a", 10).unwrap(),
        [v(2, 1), v(1, 3), v(1, 0)],
        "newest first, deletes too"
    );
    assert_eq!(snap.history("ns", "a", 2).unwrap(), [v(2, 1), v(1, 3)], "limit");
    assert_eq!(snap.history("other", "a", 10).unwrap(), [v(2, 2)], "namespaces are apart");
    assert!(snap.history("ns", "b", 10).unwrap().is_empty(), "an untouched key");
    assert_eq!(before.history("ns", "a", 10).unwrap(), [v(1, 3), v(1, 0)], "a snapshot sees its own past");
    s.clear().unwrap();
    assert!(s.snapshot().unwrap().history("ns", "a", 10).unwrap().is_empty(), "clear removes the history");
}

fn state_survives_reopen<S: StateStore>(f: Fixture<S>) {
    s_apply_many(&f.store, 5);
    let Some(f) = f.reopened() else { return };
    let s = &f.store;
    assert_eq!(s.savepoint().unwrap(), Some(4), "savepoint after reopen");
    let snap = s.snapshot().unwrap();
    for block in 0..5u64 {
        let v = snap.get("ns", &format!("k{block}")).unwrap();
        assert_eq!(
            v,
            Some(vv(format!("v{block}").as_bytes(), block, 0)),
            "key of block {block} after reopen"
        );
    }
    assert_eq!(snap.get("ns", "deleted").unwrap(), None, "a delete survives reopen");
}

fn s_apply_many<S: StateStore>(s: &S, n: u64) {
    for block in 0..n {
        let mut b = UpdateBatch::default();
        b.put(
            "ns",
            &format!("k{block}"),
            format!("v{block}").into_bytes(),
            Version { block_num: block, tx_num: 0 },
        );
        if block == 1 {
            b.put("ns", "deleted", b"x".to_vec(), Version { block_num: 1, tx_num: 1 });
        }
        if block == 3 {
            b.delete("ns", "deleted");
        }
        s.apply(&b, block).unwrap();
    }
}

fn snapshots_run_while_applies_commit<S: StateStore>(f: Fixture<S>) {
    let s = &f.store;
    // Every batch writes the same value to both keys: a snapshot must never see them differ.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for block in 0..30u64 {
                let v = block.to_le_bytes().to_vec();
                let mut b = UpdateBatch::default();
                b.put("ns", "x", v.clone(), Version { block_num: block, tx_num: 0 });
                b.put("ns", "y", v, Version { block_num: block, tx_num: 1 });
                s.apply(&b, block).unwrap();
            }
        });
        scope.spawn(|| {
            let mut last = None;
            while last != Some(29) {
                let snap = s.snapshot().unwrap();
                let x = snap.get("ns", "x").unwrap().map(|v| v.value);
                let y = snap.get("ns", "y").unwrap().map(|v| v.value);
                assert_eq!(x, y, "a snapshot saw half of a batch");
                last = x.map(|v| u64::from_le_bytes(v.try_into().unwrap()));
                std::thread::yield_now();
            }
        });
    });
    assert_eq!(s.savepoint().unwrap(), Some(29), "savepoint after concurrent applies");
}
