//! Tests of the WAL-backed store: record format, torn tails, stale records, reopening after a clean stop and
//! after a stop without the final checkpoint (as after a kill), across WAL file turns.

use std::collections::BTreeMap;
use std::path::Path;

use super::wal::{self, HEADER};
use super::{Op, Store, Tuning};

fn ops(seed: u64, n: usize) -> Vec<Op> {
    (0..n)
        .map(|i| {
            let k = format!("r{}", (seed * 7 + i as u64) % 50);
            if (seed + i as u64).is_multiple_of(5) {
                Op::Del(k)
            } else {
                Op::Put(k, format!("value {seed} {i} {}", "x".repeat((seed % 40) as usize)).into_bytes())
            }
        })
        .collect()
}

fn apply(model: &mut BTreeMap<String, Vec<u8>>, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Put(k, v) => {
                model.insert(k.clone(), v.clone());
            }
            Op::Del(k) => {
                model.remove(k);
            }
        }
    }
}

fn records(seqs: std::ops::Range<u64>) -> Vec<u8> {
    let mut buf = Vec::new();
    for s in seqs {
        wal::encode(&mut buf, s, ops(s, 3).iter());
    }
    buf
}

fn same_ops(a: &[Op], b: &[Op]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Op::Put(k, v), Op::Put(k2, v2)) => k == k2 && v == v2,
            (Op::Del(k), Op::Del(k2)) => k == k2,
            _ => false,
        })
}

#[test]
fn crc32c_matches_the_reference_value() {
    // RFC 3720 B.4 / the usual check value.
    assert_eq!(wal::crc32c(0, b"123456789"), 0xE306_9283);
    assert_eq!(wal::crc32c(wal::crc32c(0, b"1234"), b"56789"), 0xE306_9283);
}

#[test]
fn records_read_back_in_order() {
    let buf = records(5..25);
    let got = wal::scan(&buf);
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), (5..25).collect::<Vec<_>>());
    for r in &got {
        assert!(same_ops(&r.ops, &ops(r.seq, 3)));
    }
}

#[test]
fn a_torn_tail_ends_the_log_at_the_last_whole_record() {
    let whole = records(1..6);
    let four = wal::scan(&whole[..]).len();
    assert_eq!(four, 5);
    let last_start = records(1..5).len();
    // Every prefix of the last record, followed by zeros (unwritten space) or by nothing.
    for cut in last_start..whole.len() {
        let mut torn = whole[..cut].to_vec();
        assert_eq!(wal::scan(&torn).len(), 4, "cut at {cut}");
        torn.resize(whole.len() + 64, 0);
        assert_eq!(wal::scan(&torn).len(), 4, "cut at {cut}, zeros after");
    }
    // A flipped bit anywhere in the last record.
    for at in last_start..whole.len() {
        let mut bad = whole.clone();
        bad[at] ^= 0x10;
        assert_eq!(wal::scan(&bad).len(), 4, "flip at {at}");
    }
    // Garbage where the next record would be.
    let mut junk = whole.clone();
    junk.extend((0..200u8).map(|b| b.wrapping_mul(37)));
    assert_eq!(wal::scan(&junk).len(), 5);
}

#[test]
fn older_records_after_a_newer_chain_are_not_read() {
    // A file's previous turn held 1..40; the new turn wrote 50..53 from offset 0 over it.
    let mut file = records(1..40);
    let newer = records(50..53);
    file[..newer.len()].copy_from_slice(&newer);
    let got = wal::scan(&file);
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![50, 51, 52]);
    // Even if the stale record right after happens to start at a record boundary.
    let mut file = records(1..40);
    let newer = records(50..52);
    let boundary = records(1..3).len();
    file.splice(..boundary, newer.iter().copied());
    let got = wal::scan(&file);
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![50, 51]);
}

#[test]
fn a_record_with_a_bad_payload_but_good_crc_is_not_read() {
    // Tag 9 is no op; the CRC is right, so only the decoder can refuse it.
    let mut buf = vec![0u8; HEADER];
    let payload = [1u8, 0, 0, 0, 9, 0, 0, 0, 0];
    buf.extend_from_slice(&payload);
    buf[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    buf[8..16].copy_from_slice(&1u64.to_le_bytes());
    let crc = wal::crc32c(0, &buf[8..]);
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    assert!(wal::scan(&buf).is_empty());
}

/// Writes `groups` batches, each acknowledged before the next, returning what the model holds.
async fn write(store: &mut Store, model: &mut BTreeMap<String, Vec<u8>>, from: u64, groups: u64) {
    for g in from..from + groups {
        let o = ops(g, 1 + (g % 4) as usize);
        apply(model, &o);
        let (_, p) = store.submit(o);
        p.wait().await.unwrap();
    }
}

/// Writes with several batches queued at once (one record for all of them), as concurrent requests do.
async fn write_grouped(store: &mut Store, model: &mut BTreeMap<String, Vec<u8>>, from: u64, groups: u64) {
    let mut waits = Vec::new();
    for g in from..from + groups {
        let o = ops(g, 2);
        apply(model, &o);
        let (_, p) = store.submit(o);
        waits.push(p);
    }
    for p in waits {
        p.wait().await.unwrap();
    }
}

fn reopen(dir: &Path, tuning: Tuning) -> (Store, BTreeMap<String, Vec<u8>>) {
    let (s, rows) = Store::open_tuned(dir, tuning).unwrap();
    (s, rows.into_iter().collect())
}

const SMALL: Tuning = Tuning { rotate_at: 2048 };

#[tokio::test]
async fn reopening_after_a_clean_stop_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    let (mut s, rows) = reopen(dir.path(), SMALL);
    assert!(rows.is_empty());
    write(&mut s, &mut model, 0, 300).await;
    write_grouped(&mut s, &mut model, 300, 50).await;
    drop(s);
    let (s, rows) = reopen(dir.path(), SMALL);
    assert_eq!(rows, model);
    drop(s);
    // The clean stop checkpointed everything: redb alone has it.
    let (s, rows) = reopen(dir.path(), Tuning::default());
    assert_eq!(rows, model);
    drop(s);
}

#[tokio::test]
async fn a_stop_without_checkpoint_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    // Several rounds: write (crossing WAL file turns), stop as if killed, reopen and compare, go on writing.
    let mut next = 0;
    for round in 0..4u64 {
        let (mut s, rows) = reopen(dir.path(), SMALL);
        assert_eq!(rows, model, "round {round}");
        // Fewer writes in later rounds, so older records stay behind the new ones in the files.
        let n = 200 / (round + 1);
        write(&mut s, &mut model, next, n).await;
        write_grouped(&mut s, &mut model, next + n, 20).await;
        next += n + 20;
        s.abandon();
    }
    // Both WAL files were written (the writes crossed file turns and checkpoints).
    for i in 0..2 {
        assert!(!wal::scan(&std::fs::read(wal_file(dir.path(), i)).unwrap()).is_empty());
    }
    let (_s, rows) = reopen(dir.path(), Tuning::default());
    assert_eq!(rows, model);
}

fn wal_file(dir: &Path, i: usize) -> std::path::PathBuf {
    dir.join(format!("cse.wal.{i}"))
}

/// The file the last record went to: the one whose chain holds the highest sequence number.
fn current_file(dir: &Path) -> (std::path::PathBuf, usize) {
    let mut best = (wal_file(dir, 0), 0usize, 0u64);
    for i in 0..2 {
        let data = std::fs::read(wal_file(dir, i)).unwrap();
        let recs = wal::scan(&data);
        if let Some(last) = recs.last()
            && last.seq >= best.2
        {
            best = (wal_file(dir, i), recs_len(&recs), last.seq);
        }
    }
    (best.0, best.1)
}

fn recs_len(recs: &[wal::Record]) -> usize {
    let mut buf = Vec::new();
    for r in recs {
        wal::encode(&mut buf, r.seq, r.ops.iter());
    }
    buf.len()
}

#[tokio::test]
async fn killed_between_write_and_sync_loses_only_the_unacknowledged_record() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    let (mut s, _) = reopen(dir.path(), SMALL);
    write(&mut s, &mut model, 0, 120).await;
    s.abandon();
    // The process wrote the next record but died before its fdatasync: any prefix of it may be on disk.
    let (path, end) = current_file(dir.path());
    let seq = {
        let data = std::fs::read(&path).unwrap();
        wal::scan(&data).last().unwrap().seq + 1
    };
    let unacked = vec![Op::Put("unacked".into(), b"never answered".to_vec()), Op::Del("r1".into())];
    let mut rec = Vec::new();
    wal::encode(&mut rec, seq, unacked.iter());
    let backup = std::fs::read(&path).unwrap();
    for cut in [1, HEADER - 1, HEADER, HEADER + 3, rec.len() - 1] {
        std::fs::write(&path, &backup).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&rec[..cut], end as u64).unwrap();
        drop(f);
        // Copy the directory, so that every cut starts from the same state (opening replays and checkpoints).
        let copy = tempfile::tempdir().unwrap();
        for name in ["cse.redb", "cse.wal.0", "cse.wal.1"] {
            std::fs::copy(dir.path().join(name), copy.path().join(name)).unwrap();
        }
        let (s2, rows) = reopen(copy.path(), SMALL);
        assert_eq!(rows, model, "cut {cut}");
        drop(s2);
    }
    // The whole record reached the disk: it is kept (it was written, just never acknowledged).
    std::fs::write(&path, &backup).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&rec, end as u64).unwrap();
    drop(f);
    let (mut s, rows) = reopen(dir.path(), SMALL);
    apply(&mut model, &unacked);
    assert_eq!(rows, model);
    // And writing goes on above it.
    write(&mut s, &mut model, 1000, 30).await;
    s.abandon();
    let (_s, rows) = reopen(dir.path(), SMALL);
    assert_eq!(rows, model);
}

#[tokio::test]
async fn a_batch_dropped_without_waiting_is_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = reopen(dir.path(), Tuning::default());
    let (id, p) = s.submit(vec![Op::Put("k".into(), b"v".to_vec())]);
    let mut committed = s.committed();
    drop(p);
    committed.wait_for(|c| *c >= id).await.unwrap();
    drop(s);
    let (_s, rows) = reopen(dir.path(), Tuning::default());
    assert_eq!(rows.get("k").map(Vec::as_slice), Some(&b"v"[..]));
}

#[tokio::test]
async fn writes_after_the_store_stopped_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = reopen(dir.path(), Tuning::default());
    let (_, early) = s.submit(vec![Op::Put("a".into(), b"1".to_vec())]);
    // Take the shared state out, as a pending request still holds it when the store goes away.
    let shared = s.shared.clone().unwrap();
    drop(s);
    // Queued before the stop: written.
    early.wait().await.unwrap();
    let (done, rx) = tokio::sync::oneshot::channel();
    shared.queue.lock().unwrap().push(super::Batch { id: 99, ops: vec![Op::Del("a".into())], done });
    shared.flush_or_wake();
    assert!(rx.await.unwrap().is_err());
    // The same when the batch is left to the (stopped) writer thread.
    let (done, rx) = tokio::sync::oneshot::channel();
    shared.queue.lock().unwrap().push(super::Batch { id: 100, ops: vec![Op::Del("a".into())], done });
    shared.kick();
    assert!(rx.await.unwrap().is_err());
    let (_s, rows) = reopen(dir.path(), Tuning::default());
    assert_eq!(rows.get("a").map(Vec::as_slice), Some(&b"1"[..]));
}
