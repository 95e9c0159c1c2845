//! [`RedbStateStore`]: the versioned world state in one redb database.
//!
//! Tables:
//! - `state`: key = namespace bytes, `0x00`, key bytes; value = block number (u64 big-endian),
//!   transaction number (u64 big-endian), then the value bytes;
//! - `history`: key = namespace bytes, `0x00`, the key's length (u32 big-endian), key bytes, block number,
//!   transaction number (u64 big-endian each; the length keeps a key apart from longer keys it prefixes, as
//!   composite keys with their NUL separators do); empty value: the key history index (Fabric's history database), one entry per write
//!   or delete by a valid transaction, the values staying in the blocks;
//! - `meta`: `"savepoint"` → the number of the last block whose updates were applied.
//!
//! `apply` writes a whole batch and the savepoint in one write transaction. The state is derived data (a
//! peer re-applies every block above the durable savepoint when it opens), so `apply` commits with
//! `Durability::None` (visible to every reader at once, not fsynced), and [`StateStore::persist_due`], which
//! the peer calls after it has published a commit, makes them durable once [`SYNC_EVERY`] of them have passed,
//! as does the store's drop. A crash loses at most the blocks since the last durable commit, atomically (redb
//! reopens at its last durable commit, with the savepoint of that commit), and the peer replays them from its
//! blocks.
//!
//! **The durable commit runs beside the commits that follow it.** It writes redb's buffered pages of all the
//! blocks since the last one and fsyncs them: under `bench ledger --apps 2000` it grew from ~2 ms to 120–220
//! ms over a run (docs/ledger-perf.md, twelfth and fourteenth rounds). redb has one writer at a time, so
//! while it ran the next blocks' `apply`s waited for it, and their clients with them. Now `persist_due`
//! starts it on a thread of its own and returns; an `apply` that comes while it runs is kept in memory, in
//! order (the *overlay*), and visible at once to every snapshot taken after it returns; when the durable
//! commit is done, the same thread writes the overlay's batches to redb in one (non-durable) transaction and
//! empties it. A snapshot is a redb read transaction plus the overlay as it was at the same instant (both
//! taken under one lock, so a batch is in one of the two, or in both while the thread empties the overlay,
//! with the same values); its reads look in the overlay first, newest batch first. If the durable commit or
//! the overlay's write fails, every later `apply` fails (the peer stops committing, as it did when a
//! synchronous commit failed) and the peer replays from its blocks when it reopens.
//!
//! A snapshot is a redb read transaction with the `state` table opened once, so every `get` of a validation
//! pass is a single B-tree lookup (plus a map lookup per overlay batch while a durable commit runs).
//! Namespaces must not contain a NUL byte (it separates namespace and key); `apply` refuses them.

use crate::redb_err;
use ledger_types::proto::Version;
use ledger_types::store::{StateSnapshot, StateStore, StoreError, UpdateBatch, VersionedValue};
use redb::{Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, TableDefinition};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const HISTORY: TableDefinition<&[u8], ()> = TableDefinition::new("history");
const SAVEPOINT: &str = "savepoint";

/// [`StateStore::persist_due`] starts a durable commit once this many `apply`s have passed since the last
/// one started (see the module docs).
pub const SYNC_EVERY: u32 = 8;

/// The most batches the overlay holds: an `apply` that finds it full waits for the durable commit (a disk that
/// stalls slows the peer's commits instead of growing its memory).
pub const OVERLAY_MAX: usize = 64;

/// The world state in redb. See the module docs for the layout and the durable commits.
pub struct RedbStateStore {
    db: Arc<Database>,
    shared: Arc<Shared>,
    /// Held by the writers (`apply`, `persist_due`, `sync`, `clear`) for their whole call, so their effects
    /// are in call order; readers never take it. Holds the durable-commit thread while one was started.
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for RedbStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = lock(&self.shared.inner);
        f.debug_struct("RedbStateStore")
            .field("overlay", &inner.overlay.len())
            .field("durable_commit_running", &inner.busy)
            .field("unsynced", &inner.unsynced)
            .finish_non_exhaustive()
    }
}

/// What the writers and the durable-commit thread share.
#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
    /// Told of every finished background durable commit ([`RedbStateStore::on_durable_commit`]).
    observer: std::sync::OnceLock<DurableObserver>,
    /// Fault-injection tests: while `true`, a started durable commit waits before it writes.
    #[cfg(feature = "failpoints")]
    hold: (Mutex<bool>, std::sync::Condvar),
}

#[derive(Default)]
struct Inner {
    /// Batches applied while a durable commit ran, oldest first, not yet written to redb.
    overlay: Vec<Arc<Applied>>,
    /// A durable commit (and the write of the overlay after it) is running.
    busy: bool,
    /// `apply`s since the last durable commit started.
    unsynced: u32,
    /// Why a durable commit or an overlay write failed: every later `apply` fails with it.
    failed: Option<String>,
}

/// One applied batch of the overlay.
#[derive(Debug)]
struct Applied {
    batch: UpdateBatch,
    savepoint: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for RedbStateStore {
    fn drop(&mut self) {
        #[cfg(feature = "failpoints")]
        self.hold_durable_commits(false);
        // Makes every earlier commit durable; on failure the next open replays them from the blocks.
        if let Err(e) = self.sync() {
            tracing::warn!(error = %e, "state store: final durable commit failed; its blocks are replayed on open");
        }
    }
}

fn composite(ns: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + 1 + key.len());
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The history index's key prefix of one key (see the module docs).
fn history_prefix(ns: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + 5 + key.len() + 16);
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    k.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes());
    k.extend_from_slice(key.as_bytes());
    k
}

fn encode_value(v: &VersionedValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + v.value.len());
    out.extend_from_slice(&v.version.block_num.to_be_bytes());
    out.extend_from_slice(&v.version.tx_num.to_be_bytes());
    out.extend_from_slice(&v.value);
    out
}

fn decode_value(bytes: &[u8]) -> Result<VersionedValue, StoreError> {
    let (Some(b), Some(t)) = (bytes.get(0..8), bytes.get(8..16)) else {
        return Err(StoreError::Corrupt(format!("state value of {} bytes has no version", bytes.len())));
    };
    let mut n = [0u8; 8];
    n.copy_from_slice(b);
    let block_num = u64::from_be_bytes(n);
    n.copy_from_slice(t);
    let tx_num = u64::from_be_bytes(n);
    Ok(VersionedValue { value: bytes[16..].to_vec(), version: Version { block_num, tx_num } })
}

impl RedbStateStore {
    /// Opens (creating it and its parent directories if needed) the state database file at `path`
    /// (e.g. `<data>/state.redb`). A second open of the same file, in this process or another, fails while
    /// the first is open (redb locks the file).
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStateStore, StoreError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        // redb's default cache is 1 GiB per database; a node runs several.
        RedbStateStore::init(redb::Builder::new().set_cache_size(128 << 20).create(path).map_err(redb_err)?)
    }

    /// Makes every earlier `apply` durable, now: waits for a durable commit already running (and the
    /// write of its overlay), then commits durably. Fails if an earlier durable commit failed.
    pub fn sync(&self) -> Result<(), StoreError> {
        let mut worker = lock(&self.writer);
        join(&self.shared, &mut worker);
        if let Some(e) = &lock(&self.shared.inner).failed {
            return Err(failed(e));
        }
        // Not under `inner`: snapshots take it, and the durable commit can take a while.
        durable_commit(&self.db)?;
        lock(&self.shared.inner).unsynced = 0;
        Ok(())
    }

    /// Waits until no durable commit runs (the one [`StateStore::persist_due`] may have started, and the
    /// write of its overlay); returns its failure, if it failed.
    pub fn wait_durable(&self) -> Result<(), StoreError> {
        join(&self.shared, &mut lock(&self.writer));
        match &lock(&self.shared.inner).failed {
            Some(e) => Err(failed(e)),
            None => Ok(()),
        }
    }

    /// Fault-injection tests: while `on`, a durable commit that `persist_due` starts waits before it
    /// writes, so the test can apply batches into the overlay and read them back.
    #[cfg(feature = "failpoints")]
    pub fn hold_durable_commits(&self, on: bool) {
        *lock(&self.shared.hold.0) = on;
        self.shared.hold.1.notify_all();
    }

    /// Calls `f` after every durable commit started by [`StateStore::persist_due`] (for a metric; it runs on
    /// the durable-commit thread, so it must be quick). One observer per store: `false` if one was set.
    pub fn on_durable_commit(&self, f: impl Fn(&DurableCommit) + Send + Sync + 'static) -> bool {
        self.shared.observer.set(Box::new(f)).is_ok()
    }

    /// Batches applied while a durable commit runs, not yet in redb (tests and diagnostics).
    pub fn overlay_len(&self) -> usize {
        lock(&self.shared.inner).overlay.len()
    }

    /// Opens a state store on a custom redb storage backend (fault-injection tests).
    #[cfg(feature = "failpoints")]
    pub fn open_with_backend(backend: impl redb::StorageBackend) -> Result<RedbStateStore, StoreError> {
        RedbStateStore::init(Database::builder().create_with_backend(backend).map_err(redb_err)?)
    }

    fn init(db: Database) -> Result<RedbStateStore, StoreError> {
        let txn = db.begin_write().map_err(redb_err)?;
        txn.open_table(STATE).map_err(redb_err)?;
        txn.open_table(META).map_err(redb_err)?;
        txn.open_table(HISTORY).map_err(redb_err)?;
        txn.commit().map_err(redb_err)?;
        Ok(RedbStateStore { db: Arc::new(db), shared: Arc::default(), writer: Mutex::new(None) })
    }
}

/// Joins the durable-commit thread, if one was started (it ends on its own once its work is done).
fn join(shared: &Shared, worker: &mut Option<JoinHandle<()>>) {
    if let Some(h) = worker.take()
        && h.join().is_err()
    {
        tracing::error!("state store: the durable-commit thread panicked");
        let mut inner = lock(&shared.inner);
        inner.busy = false;
        inner.failed.get_or_insert_with(|| "the durable-commit thread panicked".to_owned());
    }
}

/// The error of every `apply` after a durable commit failed.
fn failed(e: &str) -> StoreError {
    StoreError::Backend(format!("an earlier durable commit of the state failed: {e}"))
}

/// A durable empty commit: makes every earlier non-durable commit durable.
fn durable_commit(db: &Database) -> Result<(), StoreError> {
    let mut txn = db.begin_write().map_err(redb_err)?;
    txn.set_durability(Durability::Immediate).map_err(redb_err)?;
    txn.commit().map_err(redb_err)
}

/// Writes batches, in order, and the last one's savepoint in one non-durable write transaction.
fn write_batches<'a>(
    db: &Database,
    batches: impl IntoIterator<Item = (&'a UpdateBatch, u64)>,
) -> Result<(), StoreError> {
    let mut txn = db.begin_write().map_err(redb_err)?;
    txn.set_durability(Durability::None).map_err(redb_err)?;
    {
        let mut state = txn.open_table(STATE).map_err(redb_err)?;
        let mut history = txn.open_table(HISTORY).map_err(redb_err)?;
        let mut last = None;
        let mut key = Vec::new();
        for (batch, savepoint) in batches {
            for ((ns, k), update) in &batch.updates {
                key.clear();
                key.extend_from_slice(ns.as_bytes());
                key.push(0);
                key.extend_from_slice(k.as_bytes());
                match update {
                    Some(v) => {
                        state.insert(key.as_slice(), encode_value(v).as_slice()).map_err(redb_err)?;
                    }
                    None => {
                        state.remove(key.as_slice()).map_err(redb_err)?;
                    }
                }
            }
            for (ns, k, v) in &batch.history {
                key = history_prefix(ns, k);
                key.extend_from_slice(&v.block_num.to_be_bytes());
                key.extend_from_slice(&v.tx_num.to_be_bytes());
                history.insert(key.as_slice(), ()).map_err(redb_err)?;
            }
            last = Some(savepoint);
        }
        if let Some(savepoint) = last {
            let mut meta = txn.open_table(META).map_err(redb_err)?;
            meta.insert(SAVEPOINT, savepoint).map_err(redb_err)?;
        }
    }
    txn.commit().map_err(redb_err)
}

/// What [`RedbStateStore::on_durable_commit`] keeps.
type DurableObserver = Box<dyn Fn(&DurableCommit) + Send + Sync>;

/// A finished background durable commit, as [`RedbStateStore::on_durable_commit`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableCommit {
    /// The durable commit itself (the buffered pages written, then synced).
    pub durable: std::time::Duration,
    /// With the write of the overlay after it.
    pub total: std::time::Duration,
    /// Batches applied meanwhile (the overlay) and written after it.
    pub overlay_batches: usize,
}

/// The durable-commit thread: the durable commit, then the overlay written to redb until it is empty.
#[allow(clippy::disallowed_methods)] // reads the clock for a logged duration only, never for a decision
fn durable_worker(db: &Database, shared: &Shared) {
    #[cfg(feature = "failpoints")]
    {
        let mut held = lock(&shared.hold.0);
        while *held {
            held = shared.hold.1.wait(held).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
    let fail = |e: StoreError| {
        tracing::error!(error = %e, "making the world state durable failed");
        let mut inner = lock(&shared.inner);
        inner.failed = Some(e.to_string());
        inner.busy = false;
    };
    let started = std::time::Instant::now();
    if let Err(e) = durable_commit(db) {
        return fail(e);
    }
    let durable = started.elapsed();
    let mut written = 0;
    loop {
        let batches = {
            let mut inner = lock(&shared.inner);
            if inner.overlay.is_empty() {
                inner.busy = false;
                drop(inner);
                let done = DurableCommit { durable, total: started.elapsed(), overlay_batches: written };
                tracing::debug!(
                    durable_ms = done.durable.as_millis() as u64,
                    total_ms = done.total.as_millis() as u64,
                    overlay_batches = done.overlay_batches,
                    "state: durable commit done"
                );
                if let Some(observe) = shared.observer.get() {
                    observe(&done);
                }
                return;
            }
            inner.overlay.clone()
        };
        if let Err(e) = write_batches(db, batches.iter().map(|a| (&a.batch, a.savepoint))) {
            return fail(e);
        }
        // Snapshots taken until here see these batches twice (in redb and in the overlay), alike.
        lock(&shared.inner).overlay.drain(..batches.len());
        written += batches.len();
    }
}

/// A consistent view of a [`RedbStateStore`]: a redb read transaction with the state table open.
pub struct RedbSnapshot {
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
    history: ReadOnlyTable<&'static [u8], ()>,
    savepoint: Option<u64>,
    /// The batches applied while a durable commit ran and not in redb when this snapshot was taken (some may
    /// be in it too), oldest first.
    overlay: Vec<Arc<Applied>>,
    _txn: ReadTransaction,
}

impl std::fmt::Debug for RedbSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbSnapshot").field("savepoint", &self.savepoint).finish_non_exhaustive()
    }
}

impl RedbSnapshot {
    /// The savepoint this snapshot reflects.
    pub fn savepoint(&self) -> Option<u64> {
        self.savepoint
    }
}

impl RedbSnapshot {
    /// The overlay's entries of `ns` in `[start, end)` (`end == ""`: to the end), the newest batch's update of
    /// each key.
    fn overlay_range(&self, ns: &str, start: &str, end: &str) -> BTreeMap<String, Option<&VersionedValue>> {
        let mut out = BTreeMap::new();
        for a in &self.overlay {
            let from = (ns.to_owned(), start.to_owned());
            for ((n, k), v) in a.batch.updates.range(from..) {
                if n != ns || (!end.is_empty() && k.as_str() >= end) {
                    break;
                }
                out.insert(k.clone(), v.as_ref());
            }
        }
        out
    }
}

impl StateSnapshot for RedbSnapshot {
    fn get(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>, StoreError> {
        if !self.overlay.is_empty() {
            let k = (ns.to_owned(), key.to_owned());
            if let Some(update) = self.overlay.iter().rev().find_map(|a| a.batch.updates.get(&k)) {
                return Ok(update.clone());
            }
        }
        match self.table.get(composite(ns, key).as_slice()).map_err(redb_err)? {
            Some(v) => decode_value(v.value()).map(Some),
            None => Ok(None),
        }
    }

    fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>, StoreError> {
        let lo = composite(ns, start);
        let hi = if end.is_empty() {
            let mut hi = ns.as_bytes().to_vec();
            hi.push(1);
            hi
        } else {
            composite(ns, end)
        };
        if hi <= lo || limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = ns.len() + 1;
        let stored = self.table.range::<&[u8]>(lo.as_slice()..hi.as_slice()).map_err(redb_err)?.map(|item| {
            let (k, v) = item.map_err(redb_err)?;
            let key = k.value().get(prefix..).unwrap_or_default();
            let key = String::from_utf8(key.to_vec())
                .map_err(|_| StoreError::Corrupt(format!("state key in {ns:?} is not UTF-8")))?;
            Ok::<_, StoreError>((key, decode_value(v.value())?))
        });
        let mut stored = stored.peekable();
        let mut overlay = self.overlay_range(ns, start, end).into_iter().peekable();
        let mut out = Vec::new();
        // A merge of two sorted sequences (UTF-8 keys sort as their bytes); the overlay wins on equal keys,
        // and its deletes hide the stored keys.
        while out.len() < limit {
            let order = match (stored.peek(), overlay.peek()) {
                (None, None) => break,
                (Some(Err(_)), _) => {
                    if let Some(Err(e)) = stored.next() {
                        return Err(e);
                    }
                    continue;
                }
                (None, Some(_)) => Ordering::Greater,
                (Some(Ok(_)), None) => Ordering::Less,
                (Some(Ok((sk, _))), Some((ok, _))) => sk.cmp(ok),
            };
            if order == Ordering::Equal {
                stored.next(); // the overlay's newer update replaces it
            }
            let take_overlay = order != Ordering::Less;
            if take_overlay {
                if let Some((k, Some(v))) = overlay.next() {
                    out.push((k, v.clone()));
                }
            } else if let Some(Ok(kv)) = stored.next() {
                out.push(kv);
            }
        }
        Ok(out)
    }

    fn history(&self, ns: &str, key: &str, limit: usize) -> Result<Vec<Version>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for a in self.overlay.iter().rev() {
            for (n, k, v) in a.batch.history.iter().rev() {
                if n == ns && k == key {
                    out.push(*v);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        let lo = history_prefix(ns, key);
        let mut hi = lo.clone();
        hi.extend_from_slice(&[0xff; 17]);
        for item in self.history.range::<&[u8]>(lo.as_slice()..hi.as_slice()).map_err(redb_err)?.rev() {
            let (k, _) = item.map_err(redb_err)?;
            let tail = k.value().get(lo.len()..).unwrap_or_default();
            let (Some(b), Some(t)) = (tail.get(0..8), tail.get(8..16)) else {
                return Err(StoreError::Corrupt(format!("history entry of {ns:?}/{key:?} has no version")));
            };
            let num = |s: &[u8]| {
                let mut n = [0u8; 8];
                n.copy_from_slice(s);
                u64::from_be_bytes(n)
            };
            let version = Version { block_num: num(b), tx_num: num(t) };
            // While the overlay is being written, its entries are in both.
            if out.last().is_some_and(|last: &Version| {
                (last.block_num, last.tx_num) <= (version.block_num, version.tx_num)
            }) {
                continue;
            }
            out.push(version);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

impl StateStore for RedbStateStore {
    type Snapshot = RedbSnapshot;

    fn snapshot(&self) -> Result<RedbSnapshot, StoreError> {
        // Under the lock the durable-commit thread empties the overlay with, so every batch is in the read
        // transaction or in the overlay copy (or both).
        let (txn, overlay) = {
            let inner = lock(&self.shared.inner);
            (self.db.begin_read().map_err(redb_err)?, inner.overlay.clone())
        };
        let table = txn.open_table(STATE).map_err(redb_err)?;
        let meta = txn.open_table(META).map_err(redb_err)?;
        let savepoint = match overlay.last() {
            Some(a) => Some(a.savepoint),
            None => meta.get(SAVEPOINT).map_err(redb_err)?.map(|v| v.value()),
        };
        let history = txn.open_table(HISTORY).map_err(redb_err)?;
        Ok(RedbSnapshot { table, history, savepoint, overlay, _txn: txn })
    }

    fn apply(&self, batch: &UpdateBatch, savepoint: u64) -> Result<(), StoreError> {
        if let Some((ns, _)) = batch.updates.keys().find(|(ns, _)| ns.as_bytes().contains(&0)) {
            return Err(StoreError::Backend(format!("namespace {ns:?} contains a NUL byte")));
        }
        let mut worker = lock(&self.writer);
        for _ in 0..2 {
            let mut inner = lock(&self.shared.inner);
            if let Some(e) = &inner.failed {
                return Err(failed(e));
            }
            if !inner.busy {
                break;
            }
            if inner.overlay.len() < OVERLAY_MAX {
                inner.overlay.push(Arc::new(Applied { batch: batch.clone(), savepoint }));
                inner.unsynced += 1;
                return Ok(());
            }
            drop(inner);
            join(&self.shared, &mut worker); // the overlay is full: wait until it is written
        }
        // No durable commit runs, and none starts before this returns (`persist_due` takes the writer lock).
        write_batches(&self.db, [(batch, savepoint)])?;
        lock(&self.shared.inner).unsynced += 1;
        Ok(())
    }

    fn persist_due(&self) -> Result<(), StoreError> {
        let mut worker = lock(&self.writer);
        {
            let mut inner = lock(&self.shared.inner);
            if let Some(e) = &inner.failed {
                return Err(failed(e));
            }
            if inner.busy || inner.unsynced < SYNC_EVERY {
                return Ok(());
            }
            inner.busy = true;
            inner.unsynced = 0;
        }
        join(&self.shared, &mut worker); // an earlier thread that has finished
        let (db, shared) = (self.db.clone(), self.shared.clone());
        match std::thread::Builder::new()
            .name("state-durable".into())
            .spawn(move || durable_worker(&db, &shared))
        {
            Ok(h) => {
                *worker = Some(h);
                Ok(())
            }
            Err(e) => {
                // No thread: commit durably here instead.
                tracing::warn!(error = %e, "state store: no thread for the durable commit; committing inline");
                lock(&self.shared.inner).busy = false;
                durable_commit(&self.db)
            }
        }
    }

    fn savepoint(&self) -> Result<Option<u64>, StoreError> {
        let inner = lock(&self.shared.inner);
        if let Some(a) = inner.overlay.last() {
            return Ok(Some(a.savepoint));
        }
        let txn = self.db.begin_read().map_err(redb_err)?;
        drop(inner);
        let meta = txn.open_table(META).map_err(redb_err)?;
        Ok(meta.get(SAVEPOINT).map_err(redb_err)?.map(|v| v.value()))
    }

    fn clear(&self) -> Result<(), StoreError> {
        let mut worker = lock(&self.writer);
        join(&self.shared, &mut worker);
        {
            let mut inner = lock(&self.shared.inner);
            inner.overlay.clear();
            inner.failed = None;
            inner.unsynced = 0;
        }
        let mut txn = self.db.begin_write().map_err(redb_err)?;
        txn.set_durability(Durability::Immediate).map_err(redb_err)?;
        txn.delete_table(STATE).map_err(redb_err)?;
        txn.delete_table(META).map_err(redb_err)?;
        txn.delete_table(HISTORY).map_err(redb_err)?;
        txn.open_table(STATE).map_err(redb_err)?;
        txn.open_table(META).map_err(redb_err)?;
        txn.open_table(HISTORY).map_err(redb_err)?;
        txn.commit().map_err(redb_err)
    }
}
