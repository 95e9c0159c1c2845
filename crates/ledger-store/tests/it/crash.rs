//! Crash and fault tests of the file block store: injected I/O failures at every write-path step, torn
//! final records, flipped bytes, a lost or stale index.

use ledger_store::conformance::{append_chain, envelope, next_block, tx_id};
use ledger_store::file::{RecordError, ScanProblem, scan};
use ledger_store::{FileBlockStore, FileStoreOptions};
use ledger_types::BlockExt;
use ledger_types::proto::Block;
use ledger_types::store::{BlockStore, StoreError};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

fn seg(dir: &Path, n: u32) -> PathBuf {
    dir.join("blocks").join(format!("{n:06}.seg"))
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

fn flip_byte(p: &Path, at: u64) {
    let f = OpenOptions::new().read(true).write(true).open(p).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x40;
    f.write_all_at(&b, at).unwrap();
    f.sync_all().unwrap();
}

/// Every block of the store reads back as in `chain`, the scan agrees, and the tx index finds block
/// `n`'s first transaction for every block.
fn assert_intact(store: &FileBlockStore, chain: &[Block]) {
    assert_eq!(store.height(), chain.len() as u64, "height");
    assert_eq!(store.last_hash(), chain.last().map(Block::header_hash), "last hash");
    for b in chain {
        assert_eq!(store.block(b.number()).unwrap().as_ref(), Some(b), "block {}", b.number());
        if !b.envelopes().is_empty() {
            let loc = store.tx_location(&tx_id(1000 * b.number())).unwrap();
            assert_eq!(loc.map(|l| (l.block, l.index)), Some((b.number(), 0)), "tx of block {}", b.number());
        }
    }
    let scanned: Vec<_> = scan(store.dir()).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(scanned.len(), chain.len(), "scan length");
}

fn extend(store: &FileBlockStore, chain: &mut Vec<Block>) {
    let number = chain.last().map_or(0, |b| b.number() + 1);
    let b = next_block(chain.last(), vec![envelope(&tx_id(1000 * number), 50)], &[]);
    store.append(&b).unwrap();
    chain.push(b);
}

/// Fails the `n`-th write-path operation of one append, "crashes" (drops the store), reopens, and checks
/// the outcome. Returns the height after reopening.
fn fail_append_at(opts: FileStoreOptions, n: u64) -> (u64, bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    let mut chain = append_chain(&store, 3, 2);
    let next = next_block(chain.last(), vec![envelope(&tx_id(3000), 300)], &[]);
    store.fail_after(n);
    let result = store.append(&next);
    let failed = result.is_err();
    if failed {
        assert_eq!(store.height(), 3, "op {n}: a failed append does not advance the height");
        let again = store.append(&next);
        assert!(again.is_err(), "op {n}: the store refuses appends after a failed write");
        assert!(store.block(2).unwrap().is_some(), "op {n}: reads still work");
    }
    drop(store);
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    let height = store.height();
    assert!(height == 3 || height == 4, "op {n}: height {height} after reopen");
    if height == 4 {
        chain.push(next);
    }
    assert_intact(&store, &chain);
    extend(&store, &mut chain);
    drop(store);
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    assert_intact(&store, &chain);
    (height, failed)
}

#[test]
fn a_failure_at_each_write_step_leaves_a_recoverable_store() {
    // Same segment: write record (0, half written), sync (1), index commit (2); then no failure (3).
    let opts = FileStoreOptions::default();
    assert_eq!(fail_append_at(opts, 0), (3, true), "torn write: the half record is truncated on open");
    assert_eq!(fail_append_at(opts, 1), (4, true), "failed sync: the complete record is kept on open");
    assert_eq!(fail_append_at(opts, 2), (4, true), "failed index commit: the block is durable, re-indexed");
    assert_eq!(fail_append_at(opts, 3), (4, false), "no failure");
    // Rolling to a new segment: create (0), sync dir (1), write (2), sync (3), index (4).
    let opts = FileStoreOptions { segment_size: 1024, ..Default::default() };
    assert_eq!(fail_append_at(opts, 0), (3, true), "failed segment creation");
    assert_eq!(fail_append_at(opts, 1), (3, true), "failed directory sync");
    assert_eq!(fail_append_at(opts, 2), (3, true), "torn write at the start of a new segment");
    assert_eq!(fail_append_at(opts, 3), (4, true), "failed sync in a new segment");
    assert_eq!(fail_append_at(opts, 4), (4, true), "failed index commit in a new segment");
    assert_eq!(fail_append_at(opts, 5), (4, false), "no failure");
}

#[test]
fn a_truncated_unacknowledged_tail_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    let mut chain = append_chain(&store, 5, 3);
    let before_last = scan(dir.path()).unwrap().nth(4).unwrap().unwrap().pos.offset;
    drop(store);
    // A crash mid-append of block 4 that was never acknowledged: part of its record is on disk and
    // the index does not know it (here: the index is gone altogether).
    let s0 = seg(dir.path(), 0);
    let full = file_len(&s0);
    OpenOptions::new().write(true).open(&s0).unwrap().set_len(full - 10).unwrap();
    std::fs::remove_file(dir.path().join("index.redb")).unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    assert_eq!(file_len(&s0), before_last, "the torn record is truncated");
    chain.pop();
    assert_intact(&store, &chain);
    assert_eq!(store.tx_location(&tx_id(4000)).unwrap(), None, "the torn block's txs are not indexed");
    extend(&store, &mut chain);
    assert_intact(&store, &chain);

    // Only a few bytes of a header: also torn.
    drop(store);
    let s0_len = file_len(&s0);
    let f = OpenOptions::new().write(true).open(&s0).unwrap();
    f.write_all_at(b"IPB1\x10", s0_len).unwrap();
    drop(f);
    let store = FileBlockStore::open(dir.path()).unwrap();
    assert_eq!(file_len(&s0), s0_len, "a partial header is truncated");
    assert_intact(&store, &chain);
}

#[test]
fn losing_an_acknowledged_block_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    append_chain(&store, 5, 1);
    drop(store);
    let s0 = seg(dir.path(), 0);
    OpenOptions::new().write(true).open(&s0).unwrap().set_len(file_len(&s0) - 10).unwrap();
    // The index (made durable on drop) says block 4 was acknowledged: not a torn write.
    let err = FileBlockStore::open(dir.path()).unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt(m) if m.starts_with("block 4 at 000000.seg")), "{err}");
}

#[test]
fn a_flipped_byte_in_an_earlier_block_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    let chain = append_chain(&store, 6, 2);
    drop(store);
    let pos = scan(dir.path()).unwrap().nth(2).unwrap().unwrap().pos;
    let s0 = seg(dir.path(), 0);
    flip_byte(&s0, pos.offset + 48 + 20); // inside block 2's payload
    let damaged_len = file_len(&s0);

    // Open checks headers only: it succeeds, and reading block 2 reports the damage.
    let store = FileBlockStore::open(dir.path()).unwrap();
    assert_eq!(store.block(1).unwrap().as_ref(), Some(&chain[1]));
    assert_eq!(store.block(3).unwrap().as_ref(), Some(&chain[3]));
    let err = store.block(2).unwrap_err();
    let want = format!("block 2 at 000000.seg offset {}: checksum mismatch", pos.offset);
    assert!(matches!(&err, StoreError::Corrupt(m) if *m == want), "{err}");
    drop(store);

    // The audit scan yields blocks 0 and 1, then names block 2.
    let items: Vec<_> = scan(dir.path()).unwrap().collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[1].is_ok());
    let e = items[2].as_ref().unwrap_err();
    assert_eq!((e.block, e.pos), (2, pos));
    assert!(matches!(e.problem, ScanProblem::Record(RecordError::Checksum)), "{e}");
    assert_eq!(e.to_string(), want);
    let blocks: Vec<_> = scan(dir.path()).unwrap().into_blocks().collect();
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[2].as_ref().unwrap_err(), &(2, want.clone()));

    // Full verification on open names it too.
    let opts = FileStoreOptions { verify_all_on_open: true, ..Default::default() };
    let err = FileBlockStore::open_with(dir.path(), opts).unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt(m) if *m == want), "{err}");

    // Without the index, re-indexing meets it; good records follow, so it is not taken for a torn tail.
    std::fs::remove_file(dir.path().join("index.redb")).unwrap();
    let err = FileBlockStore::open(dir.path()).unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt(m) if *m == want), "{err}");
    assert_eq!(file_len(&s0), damaged_len, "nothing was truncated");
}

#[test]
fn a_flipped_header_byte_fails_open_naming_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    append_chain(&store, 4, 1);
    drop(store);
    let pos = scan(dir.path()).unwrap().nth(1).unwrap().unwrap().pos;
    flip_byte(&seg(dir.path(), 0), pos.offset + 1); // block 1's magic
    let err = FileBlockStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.starts_with("block 1 at 000000.seg") && m.contains("magic")),
        "{err}"
    );
    let first_bad = scan(dir.path()).unwrap().find_map(Result::err).unwrap();
    assert_eq!(first_bad.block, 1);
}

#[test]
fn a_deleted_index_is_rebuilt_from_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileStoreOptions { segment_size: 2048, ..Default::default() };
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    let mut chain = append_chain(&store, 12, 3);
    drop(store);
    assert!(seg(dir.path(), 1).exists(), "the chain spans several segments");
    std::fs::remove_file(dir.path().join("index.redb")).unwrap();
    let store = FileBlockStore::open_with(dir.path(), opts).unwrap();
    assert_intact(&store, &chain);
    let loc = store.tx_location(&tx_id(7002)).unwrap().unwrap();
    assert_eq!((loc.block, loc.index), (7, 2), "tx lookups work after the rebuild");
    extend(&store, &mut chain);
    assert_intact(&store, &chain);
}

#[test]
fn a_stale_index_is_caught_up_and_a_foreign_one_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index.redb");
    let saved = dir.path().join("index.saved");
    let store = FileBlockStore::open(dir.path()).unwrap();
    let mut chain = append_chain(&store, 3, 2);
    drop(store);
    std::fs::copy(&index, &saved).unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    for _ in 0..5 {
        extend(&store, &mut chain);
    }
    drop(store);
    // The index lags behind the files, as after a crash between non-durable index commits.
    std::fs::copy(&saved, &index).unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    assert_intact(&store, &chain);
    drop(store);

    // An index from another chain (positions do not match): rebuilt from the files.
    let other = tempfile::tempdir().unwrap();
    let s = FileBlockStore::open(other.path()).unwrap();
    let envs = vec![envelope(&tx_id(1), 5000)];
    let g = next_block(None, envs, &[]);
    s.append(&g).unwrap();
    drop(s);
    std::fs::copy(other.path().join("index.redb"), &index).unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    assert_intact(&store, &chain);
}

#[test]
fn an_unusable_index_file_is_replaced_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlockStore::open(dir.path()).unwrap();
    let chain = append_chain(&store, 4, 2);
    drop(store);
    let index = dir.path().join("index.redb");
    for garbage in [vec![0xab; 8192], b"not a database".to_vec()] {
        std::fs::write(&index, &garbage).unwrap();
        let store = FileBlockStore::open(dir.path()).unwrap();
        assert_intact(&store, &chain);
    }
    // An index with tables of other types (e.g. an older format): replaced too.
    {
        let db = redb::Database::create(&index).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(redb::TableDefinition::<u64, (u32, u64, u32)>::new("txs")).ok();
        txn.open_table(redb::TableDefinition::<&str, u64>::new("txs")).unwrap();
        txn.commit().unwrap();
    }
    let store = FileBlockStore::open(dir.path()).unwrap();
    assert_intact(&store, &chain);
}

const CHILD_ENV: &str = "LEDGER_STORE_CRASH_CHILD_DIR";

/// The child side of the kill test: appends 256 KiB blocks to the store in `dir`, printing each number
/// once `append` has returned, until it is killed (or a bound is reached).
#[allow(clippy::print_stdout)]
fn appender_child(dir: &str) {
    use std::io::Write;
    let store = FileBlockStore::open(dir).unwrap();
    for _ in 0..100_000 {
        let number = store.height();
        let envs = (0..8).map(|i| envelope(&tx_id(1000 * number + i), 32 * 1024)).collect::<Vec<_>>();
        let block = ledger_types::block::BlockBuilder::new(
            number,
            store.last_hash().unwrap_or(ledger_types::Hash32::ZERO),
        )
        .envelopes(envs)
        .build();
        store.append(&block).unwrap();
        println!("acked {number}");
        std::io::stdout().flush().unwrap();
    }
}

#[test]
fn kill_9_during_appends_loses_no_acknowledged_block() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        appender_child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acked_total = 0;
    for round in 0..4 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash::kill_9_during_appends_loses_no_acknowledged_block", "--exact", "--nocapture"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut last_acked = None;
        // Let it acknowledge a few blocks (more each round), then kill -9 it mid-stream.
        let mut seen = 0;
        while seen < 3 + round * 2 {
            let line = lines.next().expect("the child stopped early").unwrap();
            if let Some(n) = line.strip_prefix("acked ") {
                last_acked = Some(n.parse::<u64>().unwrap());
                seen += 1;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Acknowledgements printed before the kill landed still count.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("acked ") {
                last_acked = Some(n.parse::<u64>().unwrap());
            }
        }
        let last_acked = last_acked.unwrap();
        acked_total = last_acked + 1;
        let store = FileBlockStore::open(dir.path()).unwrap();
        let h = store.height();
        assert!(
            (acked_total..=acked_total + 1).contains(&h),
            "round {round}: height {h} after acknowledging blocks up to {last_acked}"
        );
        eprintln!("round {round}: acked up to {last_acked}, height {h}");
        let scanned = scan(dir.path()).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(scanned.len() as u64, h, "round {round}: the files hold exactly the chain");
        for s in &scanned {
            assert_eq!(store.block(s.number).unwrap().as_ref(), Some(&s.block));
            let loc = store.tx_location(&tx_id(1000 * s.number + 7)).unwrap();
            assert_eq!(loc.map(|l| (l.block, l.index)), Some((s.number, 7)), "round {round}: tx index");
        }
    }
    assert!(acked_total >= 12, "the child acknowledged {acked_total} blocks in all");
}

#[test]
fn a_store_in_the_earlier_block_format_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FileBlockStore::open(dir.path()).unwrap();
        append_chain(&store, 2, 1);
    }
    // The first record as ipechain's own block format (before Fabric's) wrote it.
    let path = seg(dir.path(), 0);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..4].copy_from_slice(b"IPB1");
    std::fs::write(&path, &bytes).unwrap();
    let Err(e) = FileBlockStore::open(dir.path()) else { panic!("an old-format store was opened") };
    assert!(matches!(e, StoreError::Format(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("earlier ledger format") && msg.contains("fresh data directory"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was changed");
}
