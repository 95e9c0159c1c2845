//! Store benchmarks: appending 500-transaction blocks (about 200 bytes per transaction) with fsync,
//! applying 500-key batches durably, reading a block back, and snapshot gets as the validator does them.
//!
//! Run with `cargo bench -p ledger-store --bench store`. Files go under the target directory (a real disk,
//! not a tmpfs, so the fsyncs cost what they cost).

// A benchmark binary: it unwraps and prints the block size it measures.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ledger_store::conformance::{envelope, tx_id};
use ledger_store::{FileBlockStore, RedbStateStore, block_tx_locations};
use ledger_types::Hash32;
use ledger_types::block::BlockBuilder;
use ledger_types::proto::{Block, Version};
use ledger_types::store::{BlockStore, StateSnapshot, StateStore, UpdateBatch};
use prost::Message;
use std::hint::black_box;

const TXS: u64 = 500;

/// The next block for `store`, of 500 transactions.
fn next(store: &FileBlockStore) -> Block {
    let number = store.height();
    // ~200 bytes per encoded envelope: a 64-digit tx id, header fields, a 64-byte signature, filler.
    let envs = (0..TXS).map(|i| envelope(&tx_id(number * TXS + i), 20));
    BlockBuilder::new(number, store.last_hash().unwrap_or(Hash32::ZERO)).envelopes(envs).build()
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    let genesis = next(&store);
    store.append(&genesis).unwrap();
    let size = genesis.encoded_len();
    println!("block of {TXS} txs: {size} bytes encoded, {} bytes per tx", size as u64 / TXS);
    c.bench_function("parts/encode + checksum 500-tx block", |b| {
        b.iter(|| {
            let bytes = genesis.encode_to_vec();
            black_box(Hash32::of(&bytes))
        })
    });
    c.bench_function("parts/extract 500 tx ids", |b| b.iter(|| black_box(block_tx_locations(&genesis))));
    c.bench_function("file_block_store/append 500-tx block (fsync)", |b| {
        b.iter_batched(|| next(&store), |block| store.append(&block).unwrap(), BatchSize::PerIteration)
    });
    let height = store.height();
    c.bench_function("file_block_store/read 500-tx block", |b| {
        let mut n = 0;
        b.iter(|| {
            n = (n + 1) % height;
            black_box(store.block(n).unwrap())
        })
    });
    c.bench_function("file_block_store/tx_location (unknown id)", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            black_box(store.tx_location(&tx_id(u64::MAX - i)).unwrap())
        })
    });
    c.bench_function("file_block_store/tx_location", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 7919) % (height * TXS);
            black_box(store.tx_location(&tx_id(i)).unwrap())
        })
    });
}

fn batch(block: u64) -> UpdateBatch {
    let mut b = UpdateBatch::default();
    for i in 0..500u64 {
        let key = format!("device/{:08}/resource/{}", (block * 500 + i) % 20_000, i % 7);
        b.put("ipe", &key, vec![0xab; 100], Version { block_num: block, tx_num: i });
    }
    b
}

fn apply(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = RedbStateStore::open(dir.path().join("state.redb")).unwrap();
    let mut block = 0;
    c.bench_function("redb_state_store/apply 500-key batch (durable)", |b| {
        b.iter_batched(
            || {
                block += 1;
                (batch(block), block)
            },
            |(batch, n)| store.apply(&batch, n).unwrap(),
            BatchSize::PerIteration,
        )
    });
    c.bench_function("redb_state_store/500 gets on one snapshot", |b| {
        b.iter(|| {
            let snap = store.snapshot().unwrap();
            for i in 0..500u64 {
                let key = format!("device/{:08}/resource/{}", (i * 37) % 20_000, i % 7);
                black_box(snap.get("ipe", &key).unwrap());
            }
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = append, apply
}
criterion_main!(benches);
