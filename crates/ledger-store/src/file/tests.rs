//! Unit tests of the file block store internals.

use super::*;
use crate::conformance::{append_chain, next_block};

#[test]
fn records_roll_into_new_segments_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileStoreOptions { segment_size: 600, index_sync_every: 3, verify_all_on_open: false };
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    let chain = append_chain(&store, 10, 2);
    let segs = list_segments(&segments_dir(dir.path())).unwrap().unwrap();
    assert!(segs.len() >= 4, "expected several segments, got {segs:?}");
    drop(store);
    let opts = FileStoreOptions { verify_all_on_open: true, ..opts };
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    assert_eq!(store.height(), 10);
    for b in &chain {
        assert_eq!(store.block(b.number()).unwrap().as_ref(), Some(b));
    }
    let next = next_block(chain.last(), vec![], &[]);
    store.append(&next).unwrap();
    assert_eq!(store.height(), 11);
}

#[test]
fn a_block_larger_than_a_segment_gets_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileStoreOptions { segment_size: 100, ..Default::default() };
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    let chain = append_chain(&store, 3, 3);
    assert_eq!(list_segments(&segments_dir(dir.path())).unwrap().unwrap().len(), 3);
    drop(store);
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    assert_eq!(store.block(2).unwrap().as_ref(), Some(&chain[2]));
}

#[test]
fn a_gap_in_segment_numbers_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileStoreOptions { segment_size: 100, ..Default::default() };
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    append_chain(&store, 3, 1);
    drop(store);
    std::fs::remove_file(segments_dir(dir.path()).join("000001.seg")).unwrap();
    let err = FileBlockStore::open_with(dir.path(), opts).unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("000001.seg")), "{err}");
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = FileBlockStore::open(dir.path()).unwrap();
    append_chain(&first, 2, 1);
    let second = FileBlockStore::open(dir.path());
    assert!(matches!(second, Err(StoreError::Backend(_))), "{second:?}");
    assert_eq!(first.height(), 2);
    drop(first);
    assert_eq!(FileBlockStore::open(dir.path()).unwrap().height(), 2);
}
