//! Unit tests of the file block store internals.

use super::*;
use crate::conformance::{append_chain, next_block};

#[test]
fn records_roll_into_new_segments_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileStoreOptions {
        segment_size: 600,
        index_sync_every: 3,
        verify_all_on_open: false,
        ..Default::default()
    };
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

/// A tx id whose first 8 bytes are shared with every other id made by this function.
fn colliding_id(last: u8) -> TxId {
    TxId::parse(&format!("{}{:02x}", "ab".repeat(31), last)).unwrap()
}

#[test]
fn ids_sharing_their_map_prefix_are_told_apart() {
    use crate::conformance::envelope;
    use ledger_types::TxValidationCode::{MvccReadConflict, Valid};
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    let (a, b, c) = (colliding_id(1), colliding_id(2), colliding_id(3));
    let b0 = next_block(None, vec![envelope(&a, 5)], &[Valid]);
    let b1 = next_block(Some(&b0), vec![envelope(&b, 5), envelope(&a, 5)], &[MvccReadConflict, Valid]);
    store.append(&b0).unwrap();
    store.append(&b1).unwrap();
    let check = |s: &FileBlockStore, when: &str| {
        let loc = |id: &TxId| s.tx_location(id).unwrap().map(|l| (l.block, l.index, l.code));
        assert_eq!(loc(&a), Some((0, 0, Valid)), "{when}: first occurrence of a");
        assert_eq!(loc(&b), Some((1, 0, MvccReadConflict)), "{when}: b");
        assert_eq!(loc(&c), None, "{when}: c shares the prefix but was never stored");
    };
    check(&store, "after append");
    drop(store);
    check(&FileBlockStore::open(dir.path()).unwrap(), "after reopen");
}

#[test]
fn an_index_of_the_earlier_format_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    let chain = append_chain(&store, 4, 3);
    drop(store);
    {
        // The earlier format had a `txs` table keyed by tx id.
        let db = redb::Database::open(dir.path().join("index.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let old: redb::TableDefinition<&[u8], (u64, u32, u8)> = redb::TableDefinition::new("txs");
        txn.open_table(old).unwrap().insert([0u8; 32].as_slice(), (0, 0, 0)).unwrap();
        txn.commit().unwrap();
    }
    let store = FileBlockStore::open(dir.path()).unwrap();
    assert_eq!(store.height(), 4);
    assert_eq!(store.block(3).unwrap().as_ref(), Some(&chain[3]));
    let loc = store.tx_location(&crate::conformance::tx_id(2001)).unwrap();
    assert_eq!(loc.map(|l| (l.block, l.index)), Some((2, 1)), "re-indexed from the segments");
}

#[test]
fn a_store_of_sha256_records_opens_reads_and_goes_on_with_crc_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    let chain = append_chain(&store, 3, 2);
    drop(store);
    // Rewrite every record as a store before commit 2503043 wrote it: magic IPB2 and a SHA-256.
    let seg = segments_dir(dir.path()).join(record::segment_name(0));
    let mut bytes = std::fs::read(&seg).unwrap();
    let mut at = 0;
    while at < bytes.len() {
        let head: [u8; record::HEADER_LEN] = bytes[at..at + record::HEADER_LEN].try_into().unwrap();
        let len = record::decode_header(&head).unwrap().len as usize;
        bytes[at..at + 4].copy_from_slice(&record::SHA256_MAGIC);
        let payload = &bytes[at + record::HEADER_LEN..at + record::HEADER_LEN + len];
        let sum = ledger_types::Hash32::of_parts([&bytes[at..at + 16], payload]).0;
        bytes[at + 16..at + 48].copy_from_slice(&sum);
        at += record::HEADER_LEN + len;
    }
    std::fs::write(&seg, &bytes).unwrap();
    let opts = FileStoreOptions { verify_all_on_open: true, ..Default::default() };
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    assert_eq!(store.height(), 3);
    for b in &chain {
        assert_eq!(store.block(b.number()).unwrap().as_ref(), Some(b));
    }
    let next = next_block(chain.last(), vec![], &[]);
    store.append(&next).unwrap();
    drop(store);
    let after = std::fs::read(&seg).unwrap();
    assert_eq!(&after[bytes.len()..bytes.len() + 4], b"IPB3", "the new record is a CRC record");
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    assert_eq!(store.height(), 4);
    assert_eq!(store.block(3).unwrap().as_ref(), Some(&next));
    assert_eq!(store.block(0).unwrap().as_ref(), Some(&chain[0]));
}

#[test]
fn older_records_leave_the_page_cache_and_still_read_back() {
    let dir = tempfile::tempdir().unwrap();
    // Keep a few records' bytes cached; every older one is released after a later append.
    let keep = 4_000;
    let opts = FileStoreOptions { segment_size: 6_000, cache_newest_bytes: Some(keep), ..Default::default() };
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    let chain = append_chain(&store, 12, 2);
    assert!(
        list_segments(&segments_dir(dir.path())).unwrap().unwrap().len() >= 2,
        "records in several segments"
    );
    {
        let w = store.writer.lock().unwrap();
        assert!(w.cached_bytes <= keep, "{} bytes still tracked as cached", w.cached_bytes);
        assert_eq!(w.cached.iter().map(|c| c.2).sum::<u64>(), w.cached_bytes);
        assert!(!w.cached.is_empty() && w.cached.len() < chain.len(), "{} of 12 kept", w.cached.len());
    }
    for b in &chain {
        assert_eq!(store.block(b.number()).unwrap().as_ref(), Some(b), "block {} reads back", b.number());
    }
    // Nothing is tracked when the page cache is left to the kernel.
    let dir = tempfile::tempdir().unwrap();
    let store =
        FileBlockStore::open_with(dir.path(), FileStoreOptions { cache_newest_bytes: None, ..opts }).unwrap();
    append_chain(&store, 4, 2);
    assert!(store.writer.lock().unwrap().cached.is_empty());
}
