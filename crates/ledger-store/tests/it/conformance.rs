//! Every store implementation passes the conformance suite.

use ledger_store::conformance::{Fixture, test_all_block_stores, test_all_state_stores};
use ledger_store::{FileBlockStore, FileStoreOptions, MemBlockStore, MemStateStore, RedbStateStore};

#[test]
fn mem_block_store() {
    test_all_block_stores(|| Fixture::in_memory(MemBlockStore::new()));
}

#[test]
fn mem_state_store() {
    test_all_state_stores(|| Fixture::in_memory(MemStateStore::new()));
}

#[test]
fn file_block_store() {
    test_all_block_stores(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let store = FileBlockStore::open(&path).unwrap();
        Fixture::persistent(store, dir, move || FileBlockStore::open(&path))
    });
}

#[test]
fn file_block_store_small_segments() {
    let opts = FileStoreOptions {
        segment_size: 4096,
        index_sync_every: 2,
        verify_all_on_open: true,
        ..Default::default()
    };
    test_all_block_stores(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let store = FileBlockStore::open_with(&path, opts).unwrap();
        Fixture::persistent(store, dir, move || FileBlockStore::open_with(&path, opts))
    });
}

#[test]
fn redb_state_store() {
    test_all_state_stores(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let store = RedbStateStore::open(&path).unwrap();
        Fixture::persistent(store, dir, move || RedbStateStore::open(&path))
    });
}
