//! Fault tests of the redb state store: a storage backend that fails every write after N operations (as a
//! process killed at that point would stop writing), at every N through one `apply`; after reopening, the
//! state is exactly the one before the batch or exactly the one after it, with the matching savepoint. And
//! the durable commit that runs beside later applies: snapshots stay consistent while batches pass through
//! its overlay, and a failed durable commit stops later applies without losing what readers saw.

use ledger_store::RedbStateStore;
use ledger_types::proto::Version;
use ledger_types::store::{StateSnapshot, StateStore, UpdateBatch, VersionedValue};
use redb::StorageBackend;
use redb::backends::FileBackend;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts write-side operations (write, set_len, sync_data); once `budget` is spent, every later one
/// fails. `u64::MAX` = unlimited.
#[derive(Debug)]
struct FailingBackend {
    inner: FileBackend,
    budget: Arc<AtomicU64>,
}

impl FailingBackend {
    fn spend(&self, op: &str) -> io::Result<()> {
        match self.budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1)) {
            Ok(_) => Ok(()),
            Err(_) => Err(io::Error::other(format!("injected failure at {op}"))),
        }
    }
}

impl StorageBackend for FailingBackend {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.spend("set_len")?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.spend("sync_data")?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.spend("write")?;
        self.inner.write(offset, data)
    }
}

fn open_failing(path: &Path, budget: &Arc<AtomicU64>) -> RedbStateStore {
    let file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).unwrap();
    let backend = FailingBackend { inner: FileBackend::new(file).unwrap(), budget: budget.clone() };
    RedbStateStore::open_with_backend(backend).unwrap()
}

/// A failing-backend store in a new directory (`state.redb`) with block 0's batch applied and made durable;
/// its write budget is unlimited until the caller sets it.
fn durable_first_batch(keys: u64) -> (tempfile::TempDir, Arc<AtomicU64>, RedbStateStore) {
    let dir = tempfile::tempdir().unwrap();
    let budget = Arc::new(AtomicU64::new(u64::MAX));
    let store = open_failing(&dir.path().join("state.redb"), &budget);
    store.apply(&batch(0, keys), 0).unwrap();
    store.sync().unwrap();
    (dir, budget, store)
}

fn batch(block: u64, keys: u64) -> UpdateBatch {
    let mut b = UpdateBatch::default();
    for i in 0..keys {
        let value = format!("block {block} value {i} {}", "x".repeat(100)).into_bytes();
        b.put("ns", &format!("key{i:04}"), value, Version { block_num: block, tx_num: i });
    }
    if block > 0 {
        b.delete("ns", "key0000");
    }
    b
}

/// Applies `batch(b, keys)` for every block `b` of `blocks`, calling `persist_due` after each if `persist`.
fn apply_blocks(store: &RedbStateStore, blocks: std::ops::RangeInclusive<u64>, keys: u64, persist: bool) {
    for b in blocks {
        store.apply(&batch(b, keys), b).unwrap();
        if persist {
            store.persist_due().unwrap();
        }
    }
}

fn state_is(store: &RedbStateStore, block: u64, keys: u64) -> bool {
    let snap = store.snapshot().unwrap();
    let got = snap.range("ns", "", "", usize::MAX).unwrap();
    let want: Vec<(String, VersionedValue)> =
        batch(block, keys).updates.into_iter().filter_map(|((_, k), v)| v.map(|v| (k, v))).collect();
    store.savepoint().unwrap() == Some(block) && got == want
}

#[test]
fn apply_is_all_or_nothing_under_a_failure_at_any_write() {
    let keys = 300;
    let mut saw_old = 0;
    let mut saw_new = 0;
    for n in 0.. {
        let (dir, budget, store) = durable_first_batch(keys);
        let path = dir.path().join("state.redb");
        budget.store(n, Ordering::SeqCst);
        // Most commits are not durable until the next durable one: the batch counts as kept once both
        // returned Ok.
        let result = store.apply(&batch(1, keys), 1).and_then(|()| store.sync());
        drop(store); // every later write fails: nothing more reaches the file, as after a kill
        let store = RedbStateStore::open(&path).unwrap();
        if state_is(&store, 0, keys) {
            assert!(result.is_err(), "budget {n}: apply returned Ok but the batch is missing");
            saw_old += 1;
        } else {
            assert!(state_is(&store, 1, keys), "budget {n}: the state is neither before nor after the batch");
            saw_new += 1;
        }
        if result.is_ok() {
            break;
        }
        assert!(n < 10_000, "apply never succeeded");
    }
    eprintln!("failure points: {saw_old} lost the batch, {saw_new} kept it");
    assert!(saw_old > 0, "some failure point must lose the batch");
    assert!(saw_new > 0, "the final, successful apply must be seen");
}

#[test]
fn a_crash_before_the_durable_commit_reopens_at_the_last_durable_savepoint() {
    let keys = 50;
    let (dir, budget, store) = durable_first_batch(keys);
    let path = dir.path().join("state.redb");
    store.apply(&batch(1, keys), 1).unwrap();
    assert!(state_is(&store, 1, keys), "a non-durable commit is visible at once");
    budget.store(0, Ordering::SeqCst); // killed: nothing more reaches the file
    drop(store);
    let store = RedbStateStore::open(&path).unwrap();
    assert!(state_is(&store, 0, keys), "reopened at the durable savepoint 0, whole");
}

#[test]
fn apply_defers_durability_to_persist_due_which_syncs_every_state_sync_every_blocks() {
    let keys = 5;
    let every = u64::from(ledger_store::STATE_SYNC_EVERY);
    // apply alone never makes anything durable: a crash after many blocks reopens at block 0.
    let (dir, budget, store) = durable_first_batch(keys);
    let path = dir.path().join("state.redb");
    apply_blocks(&store, 1..=every + 3, keys, false);
    assert!(state_is(&store, every + 3, keys));
    budget.store(0, Ordering::SeqCst);
    drop(store);
    let store = RedbStateStore::open(&path).unwrap();
    assert!(state_is(&store, 0, keys), "nothing after the first durable commit survived the crash");
    drop(store);

    // With persist_due after each apply (as the peer does), the state is durable every STATE_SYNC_EVERY blocks.
    let (dir, budget, store) = durable_first_batch(keys);
    let path = dir.path().join("state.redb");
    apply_blocks(&store, 1..=every + 3, keys, true);
    // persist_due starts the durable commit on a thread of its own: let it finish before the "crash".
    store.wait_durable().unwrap();
    budget.store(0, Ordering::SeqCst);
    drop(store);
    let store = RedbStateStore::open(&path).unwrap();
    assert!(state_is(&store, every, keys), "reopened at the last durable savepoint, {every}");
}

/// A batch that writes `sp` = its block number (and one more key of its own).
fn marked(block: u64) -> UpdateBatch {
    let mut b = UpdateBatch::default();
    let version = Version { block_num: block, tx_num: 0 };
    b.put("ns", "sp", block.to_be_bytes().to_vec(), version);
    b.put("ns", &format!("k{block:05}"), vec![7; 40], version);
    b.touched("ns", "sp", version);
    b
}

#[test]
fn snapshots_stay_consistent_while_batches_pass_through_the_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStateStore::open(dir.path().join("state.redb")).unwrap();
    let every = u64::from(ledger_store::STATE_SYNC_EVERY);
    let blocks = 6 * every;
    let saw_overlay = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for b in 0..blocks {
                // The durable commit persist_due starts after block 2 * every - 1 is held back until block
                // 3 * every, so the blocks between wait in its overlay; the others race with the durable
                // commits persist_due starts every `every` blocks.
                if b == 2 * every - 1 {
                    store.wait_durable().unwrap(); // the one started after block every - 1
                    store.hold_durable_commits(true);
                }
                if b == 3 * every {
                    saw_overlay.store(store.overlay_len() > 0, Ordering::SeqCst);
                    store.hold_durable_commits(false);
                }
                store.apply(&marked(b), b).unwrap();
                store.persist_due().unwrap();
            }
        });
        scope.spawn(|| {
            let mut last = 0;
            while last + 1 < blocks {
                let snap = store.snapshot().unwrap();
                let Some(sp) = snap.savepoint() else { continue };
                let v = snap.get("ns", "sp").unwrap().expect("sp is written by every block");
                assert_eq!(v.value, sp.to_be_bytes(), "a snapshot mixed two savepoints");
                assert_eq!(v.version.block_num, sp);
                assert!(sp >= last, "a later snapshot went back from {last} to {sp}");
                let keys = snap.range("ns", "k", "l", usize::MAX).unwrap();
                assert_eq!(keys.len() as u64, sp + 1, "at savepoint {sp}, every block's key and no other");
                let history = snap.history("ns", "sp", usize::MAX).unwrap();
                let want: Vec<u64> = (0..=sp).rev().collect();
                assert_eq!(history.iter().map(|v| v.block_num).collect::<Vec<_>>(), want, "history at {sp}");
                last = sp;
            }
        });
    });
    assert!(saw_overlay.load(Ordering::SeqCst), "the blocks 2 * every .. 3 * every waited in the overlay");
    store.wait_durable().unwrap();
    assert_eq!(store.overlay_len(), 0);
    assert_eq!(store.savepoint().unwrap(), Some(blocks - 1));
}

#[test]
fn a_failed_durable_commit_stops_later_applies_and_the_reopen_replays() {
    let keys = 5;
    let every = u64::from(ledger_store::STATE_SYNC_EVERY);
    let (dir, budget, store) = durable_first_batch(keys);
    let path = dir.path().join("state.redb");
    apply_blocks(&store, 1..=every, keys, false);
    store.hold_durable_commits(true);
    store.persist_due().unwrap();
    store.apply(&batch(every + 1, keys), every + 1).unwrap();
    assert_eq!(store.overlay_len(), 1);
    budget.store(0, Ordering::SeqCst); // the disk fails under the durable commit
    store.hold_durable_commits(false);
    let failed = store.wait_durable();
    assert!(failed.is_err(), "the durable commit's failure is reported: {failed:?}");
    let refused = store.apply(&batch(every + 2, keys), every + 2);
    assert!(refused.is_err(), "an apply after a failed durable commit fails");
    assert!(store.persist_due().is_err(), "so does persist_due");
    // What readers saw stays readable: the overlay's batch is still the state.
    assert!(state_is(&store, every + 1, keys), "the applied batches stay visible");
    drop(store);
    let store = RedbStateStore::open(&path).unwrap();
    assert!(
        state_is(&store, 0, keys),
        "reopened at the last durable savepoint, 0; the peer replays the rest"
    );
}

#[test]
fn a_full_overlay_makes_apply_wait_for_the_durable_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStateStore::open(dir.path().join("state.redb")).unwrap();
    let every = u64::from(ledger_store::STATE_SYNC_EVERY);
    let max = ledger_store::STATE_OVERLAY_MAX as u64;
    for b in 0..every {
        store.apply(&marked(b), b).unwrap();
    }
    store.hold_durable_commits(true);
    store.persist_due().unwrap();
    for b in every..every + max {
        store.apply(&marked(b), b).unwrap();
    }
    assert_eq!(store.overlay_len() as u64, max, "the overlay holds at most STATE_OVERLAY_MAX batches");
    let released = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            released.store(true, Ordering::SeqCst);
            store.hold_durable_commits(false);
        });
        // The next apply waits until the held durable commit is done and the overlay written.
        store.apply(&marked(every + max), every + max).unwrap();
        assert!(released.load(Ordering::SeqCst), "the apply returned before the durable commit was released");
    });
    assert_eq!(store.overlay_len(), 0);
    assert_eq!(store.savepoint().unwrap(), Some(every + max));
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.range("ns", "k", "l", usize::MAX).unwrap().len() as u64, every + max + 1);
}

/// The observer of durable commits (the peer's `ipechain_peer_state_durable_commit_duration`) hears of each
/// background durable commit once it is done, and of nothing else; one observer per store.
#[test]
fn every_background_durable_commit_is_reported_once_done() {
    let every = u64::from(ledger_store::STATE_SYNC_EVERY);
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStateStore::open(dir.path().join("state.redb")).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    assert!(store.on_durable_commit(move |c| log.lock().unwrap().push(*c)));
    assert!(!store.on_durable_commit(|_| {}), "a second observer is refused");
    for b in 1..=3 * every {
        store.apply(&batch(b, 3), b).unwrap();
        store.persist_due().unwrap();
        store.wait_durable().unwrap();
        let n = seen.lock().unwrap().len() as u64;
        assert_eq!(n, b / every, "after block {b}: one per durable commit, each once it is done");
    }
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|c| c.total >= c.durable && c.overlay_batches == 0), "{seen:?}");
}
