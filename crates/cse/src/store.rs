//! Durable storage of resources: a write-ahead log with group commit, checkpointed into redb.
//!
//! ```text
//!  handler ─(under the engine lock)─► queue of batches
//!  handler ─(after the lock)─► log free? ─yes─► write one WAL record for everything queued, fdatasync, ack all
//!                                        └─no──► wake the writer thread (it does the same once the log is free)
//!  every ROTATE_AT bytes: the WAL file's ops ──► checkpoint thread ──► redb, one durable commit ──► file free
//! ```
//! A request is answered only after the WAL record holding its writes is synced, so nothing acknowledged is lost.
//! Batches are queued in the order the engine produced them (under the engine's lock) and leave the queue in that
//! order, all at once, so one record holds every batch queued while the previous sync ran (group commit).
//! A single client pays one `fdatasync` and no thread hand-off per request: the request's own task writes and syncs
//! when nobody else is (a bounded blocking call, like a disk read); when the log is busy, or the last such sync was
//! slow, the request waits asynchronously and the writer thread syncs the next group.
//!
//! The WAL has two files. When the one being written passes [`ROTATE_AT`] bytes and the other is free, the writer
//! switches files and the checkpoint thread writes everything the old file holds into redb in one durable commit,
//! together with the last sequence number it covers (`applied`); then the old file may be written over. On open,
//! the records of both files with a sequence number above `applied` are replayed over redb's rows, in order, and
//! checkpointed at once; the checkpoint thread also zero-fills a freed file for its next turn. See [`wal`] for the
//! record format and how a torn tail is told apart.

mod wal;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{oneshot, watch};

const RESOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("resources");
/// `applied`: the last WAL sequence number whose writes redb holds.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const APPLIED: &str = "applied";

/// A WAL file is handed to the checkpoint thread once it holds this many bytes. Larger turns mean fewer redb
/// commits (and, with writes that cancel out such as `mni` deleting old contentInstances, fewer rows written) at
/// the cost of a longer replay after a crash.
pub(crate) const ROTATE_AT: u64 = 16 << 20;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb failed.
    #[error("database: {0}")]
    Db(String),
    /// The writer thread is gone.
    #[error("storage writer stopped")]
    Stopped,
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// A stored row: resource identifier and record.
pub(crate) type Row = (String, Vec<u8>);

/// One write.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Put(String, Vec<u8>),
    Del(String),
}

struct Batch {
    id: u64,
    ops: Vec<Op>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Tuning of a durable store (tests use small values to exercise rotation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// See [`ROTATE_AT`].
    pub(crate) rotate_at: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { rotate_at: ROTATE_AT }
    }
}

/// What the handlers, the writer thread and the store share.
struct Shared {
    /// Batches not yet written, in engine order.
    queue: Mutex<Vec<Batch>>,
    log: Mutex<Log>,
    /// The last batch id whose record is synced.
    committed: watch::Sender<u64>,
    /// Wakes the writer thread.
    wake: std::sync::mpsc::Sender<()>,
    /// Set when the store is dropped: the writer thread syncs what is queued and stops.
    closing: AtomicBool,
    /// Set by tests to stop like a killed process: no final checkpoint.
    abandon: AtomicBool,
    /// How many more flushes go to the writer thread before a request's own task writes again.
    defer: AtomicU32,
}

/// A write and sync by the request's own task slower than this means the machine is busy; see
/// [`Shared::flush_or_wake`].
const SLOW_INLINE: std::time::Duration = std::time::Duration::from_micros(400);
/// How many flushes are then left to the writer thread.
const DEFER_FLUSHES: u32 = 256;

impl Shared {
    /// Writes what is queued now if the log is free; otherwise leaves it to the writer thread.
    ///
    /// Writing on the request's own task saves two thread hand-offs per request, which pays when the `fdatasync`
    /// is fast. When it is slow (the disk and CPUs are busy with other work), a dedicated writer thread that sleeps
    /// between syncs is woken and scheduled faster than a busy runtime worker, so measured on this 2-core machine
    /// a single client then got 2–3× more creates/s through the writer thread; a slow inline sync therefore sends
    /// the next [`DEFER_FLUSHES`] flushes there before the inline path is tried again.
    fn flush_or_wake(&self) {
        if self.defer.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| d.checked_sub(1)).is_ok() {
            self.kick();
            return;
        }
        match self.log.try_lock() {
            Ok(mut log) => {
                let clock = crate::SystemClock;
                let start = clock.instant();
                log.flush(self);
                #[allow(clippy::disallowed_methods)] // the shell times its own flush
                let slow = start.elapsed() > SLOW_INLINE;
                if slow {
                    self.defer.store(DEFER_FLUSHES, Ordering::Relaxed);
                }
            }
            Err(_) => self.kick(),
        }
    }

    /// Wakes the writer thread; once it has stopped, answers what is queued here (with an error).
    fn kick(&self) {
        if self.wake.send(()).is_err() {
            self.log.lock().unwrap_or_else(PoisonError::into_inner).flush(self);
        }
    }
}

/// The WAL's state, owned by whoever holds [`Shared::log`].
struct Log {
    files: [wal::LogFile; 2],
    cur: usize,
    /// The last sequence number written.
    seq: u64,
    /// Whether each file may be written over (its records are checkpointed).
    free: Arc<[AtomicBool; 2]>,
    /// The ops of the records since the last hand-over to the checkpoint thread.
    ops: Vec<Op>,
    ck: std::sync::mpsc::Sender<Ckpt>,
    tuning: Tuning,
    buf: Vec<u8>,
    /// After a failed write the log's state is unknown: everything after it is refused.
    failed: Option<String>,
    /// The writer thread has stopped; nothing more is written.
    stopped: bool,
}

impl Log {
    /// Writes every queued batch as one record, syncs, and answers them.
    fn flush(&mut self, shared: &Shared) {
        let group = std::mem::take(&mut *shared.queue.lock().unwrap_or_else(PoisonError::into_inner));
        if group.is_empty() {
            return;
        }
        let result = if self.stopped {
            Err(StoreError::Stopped.to_string())
        } else if let Some(e) = &self.failed {
            Err(e.clone())
        } else {
            self.write_group(&group).map_err(|e| e.to_string())
        };
        if let Err(e) = &result
            && self.failed.is_none()
            && !self.stopped
        {
            tracing::error!(error = %e, "CSE storage write failed");
            self.failed = Some(e.clone());
        }
        let last = group.last().map_or(0, |b| b.id);
        for b in group {
            let _ = b.done.send(result.clone());
            if result.is_ok() {
                self.ops.extend(b.ops);
            }
        }
        if result.is_ok() {
            shared.committed.send_replace(last);
            self.maybe_rotate();
        }
    }

    fn write_group(&mut self, group: &[Batch]) -> std::io::Result<()> {
        let seq = self.seq + 1;
        self.buf.clear();
        wal::encode(&mut self.buf, seq, group.iter().flat_map(|b| b.ops.iter()));
        self.files[self.cur].append_durable(&self.buf)?;
        self.seq = seq;
        Ok(())
    }

    fn maybe_rotate(&mut self) {
        let other = 1 - self.cur;
        if self.files[self.cur].end < self.tuning.rotate_at || !self.free[other].load(Ordering::Acquire) {
            return;
        }
        self.free[other].store(false, Ordering::Release);
        let ops = std::mem::take(&mut self.ops);
        let _ = self.ck.send(Ckpt::Rotate { ops, upto: self.seq, file: self.cur });
        self.cur = other;
        if let Err(e) = self.files[other].restart() {
            // Only the prepared length is unknown; the next record grows the file as needed.
            tracing::warn!(error = %e, "CSE WAL: file length unknown");
        }
    }
}

/// The store handle kept by the engine.
pub(crate) struct Store {
    shared: Option<Arc<Shared>>,
    thread: Option<std::thread::JoinHandle<()>>,
    next_id: u64,
    committed: watch::Receiver<u64>,
    _committed_tx: Option<watch::Sender<u64>>,
    closed: bool,
}

/// Waits for one batch's commit. [`Pending::wait`] (or dropping it) gets the batch written.
pub(crate) struct Pending {
    state: PendingState,
    shared: Option<Arc<Shared>>,
}

enum PendingState {
    Ready,
    Wait(oneshot::Receiver<Result<(), String>>),
    Failed(String),
}

impl Pending {
    fn now(state: PendingState) -> Self {
        Pending { state, shared: None }
    }

    /// Writes the batch (and everything queued with it) right away if the log is free, then waits until it is
    /// durable. The write happens when `wait` is called, before the returned future is first polled.
    pub(crate) fn wait(mut self) -> impl std::future::Future<Output = Result<(), String>> + use<> {
        if let Some(s) = self.shared.take() {
            s.flush_or_wake();
        }
        let state = std::mem::replace(&mut self.state, PendingState::Ready);
        async move {
            match state {
                PendingState::Ready => Ok(()),
                PendingState::Failed(e) => Err(e),
                PendingState::Wait(rx) => rx.await.unwrap_or_else(|_| Err(StoreError::Stopped.to_string())),
            }
        }
    }
}

impl Drop for Pending {
    /// A batch nobody waits for is still written, by the writer thread.
    fn drop(&mut self) {
        if let Some(s) = self.shared.take() {
            s.kick();
        }
    }
}

impl Store {
    /// A store that keeps nothing (in-memory CSE).
    pub(crate) fn memory() -> Self {
        let (tx, rx) = watch::channel(u64::MAX);
        Store {
            shared: None,
            thread: None,
            next_id: 0,
            committed: rx,
            _committed_tx: Some(tx),
            closed: false,
        }
    }

    /// Opens (or creates) the store in directory `dir` (`cse.redb`, `cse.wal.0`, `cse.wal.1`), replays the WAL,
    /// and returns the store and every stored record.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Vec<Row>), StoreError> {
        Self::open_tuned(dir, Tuning::default())
    }

    pub(crate) fn open_tuned(dir: &Path, tuning: Tuning) -> Result<(Self, Vec<Row>), StoreError> {
        // redb's default cache is 1 GiB; the CSE's working set is far smaller.
        let db =
            redb::Builder::new().set_cache_size(64 << 20).create(dir.join("cse.redb")).map_err(db_err)?;
        let mut rows = std::collections::BTreeMap::new();
        let applied;
        {
            let w = db.begin_write().map_err(db_err)?;
            w.open_table(RESOURCES).map_err(db_err)?;
            w.open_table(META).map_err(db_err)?;
            w.commit().map_err(db_err)?;
            let r = db.begin_read().map_err(db_err)?;
            let t = r.open_table(RESOURCES).map_err(db_err)?;
            for row in t.iter().map_err(db_err)? {
                let (k, v) = row.map_err(db_err)?;
                rows.insert(k.value().to_owned(), v.value().to_vec());
            }
            let m = r.open_table(META).map_err(db_err)?;
            applied = m.get(APPLIED).map_err(db_err)?.map_or(0, |v| v.value());
        }
        // Replay: the records of both files above `applied`, in sequence order, as far as they are consecutive.
        let (f0, r0) = wal::LogFile::open(&dir.join("cse.wal.0")).map_err(db_err)?;
        let (f1, r1) = wal::LogFile::open(&dir.join("cse.wal.1")).map_err(db_err)?;
        sync_dir(dir)?;
        let mut records: Vec<wal::Record> = r0.into_iter().chain(r1).filter(|r| r.seq > applied).collect();
        records.sort_by_key(|r| r.seq);
        // New records continue above every sequence number in the files, so none of them can be taken for a
        // continuation of the new chain later.
        let top = records.last().map_or(applied, |r| r.seq);
        let mut last = applied;
        let mut replay = Vec::new();
        for r in records {
            if r.seq != last + 1 {
                tracing::warn!(seq = r.seq, expected = last + 1, "CSE WAL: records after a gap ignored");
                break;
            }
            last = r.seq;
            replay.extend(r.ops);
        }
        if top > applied {
            tracing::info!(records = last - applied, "CSE WAL replayed");
            checkpoint(&db, &replay, top)?;
            for op in replay {
                match op {
                    Op::Put(k, v) => rows.insert(k, v),
                    Op::Del(k) => rows.remove(&k),
                };
            }
        }
        let (wake, wake_rx) = std::sync::mpsc::channel::<()>();
        let (ctx, crx) = watch::channel(0u64);
        let free = Arc::new([AtomicBool::new(false), AtomicBool::new(true)]);
        let (ck, ck_rx) = std::sync::mpsc::channel::<Ckpt>();
        let files = [f0.file.try_clone().map_err(db_err)?, f1.file.try_clone().map_err(db_err)?];
        let log = Log {
            files: [f0, f1],
            cur: 0,
            seq: top,
            free: free.clone(),
            ops: Vec::new(),
            ck,
            tuning,
            buf: Vec::new(),
            failed: None,
            stopped: false,
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            log: Mutex::new(log),
            committed: ctx,
            wake,
            closing: AtomicBool::new(false),
            abandon: AtomicBool::new(false),
            defer: AtomicU32::new(0),
        });
        let ck_thread = {
            let shared = shared.clone();
            let ck = Checkpointer { db, free, files, fill_to: tuning.rotate_at + wal::CHUNK };
            std::thread::Builder::new()
                .name("cse-checkpoint".into())
                .spawn(move || ck.run(&ck_rx, &shared.abandon))
                .map_err(db_err)?
        };
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("cse-store".into())
                .spawn(move || writer(&shared, &wake_rx, ck_thread))
                .map_err(db_err)?
        };
        Ok((
            Store {
                shared: Some(shared),
                thread: Some(thread),
                next_id: 1,
                committed: crx,
                _committed_tx: None,
                closed: false,
            },
            rows.into_iter().collect(),
        ))
    }

    /// Stops like a killed process would: what is queued is still written to the WAL, but no final checkpoint.
    #[cfg(test)]
    pub(crate) fn abandon(mut self) {
        if let Some(s) = &self.shared {
            s.abandon.store(true, Ordering::Release);
        }
        self.stop();
    }

    /// Queues `ops` as the next batch. Returns the batch id (for [`Store::committed`]) and its ack.
    pub(crate) fn submit(&mut self, ops: Vec<Op>) -> (u64, Pending) {
        if self.closed {
            return (
                0,
                Pending::now(if ops.is_empty() {
                    PendingState::Ready
                } else {
                    PendingState::Failed("the CSE is closed".into())
                }),
            );
        }
        let Some(shared) = &self.shared else { return (0, Pending::now(PendingState::Ready)) };
        if ops.is_empty() {
            return (self.next_id.saturating_sub(1), Pending::now(PendingState::Ready));
        }
        let id = self.next_id;
        self.next_id += 1;
        let (done, rx) = oneshot::channel();
        shared.queue.lock().unwrap_or_else(PoisonError::into_inner).push(Batch { id, ops, done });
        (id, Pending { state: PendingState::Wait(rx), shared: Some(shared.clone()) })
    }

    /// A store that refuses every write (after [`crate::Cse::close`]).
    pub(crate) fn closed(committed: watch::Receiver<u64>) -> Self {
        Store { shared: None, thread: None, next_id: 0, committed, _committed_tx: None, closed: true }
    }

    /// True after [`crate::Cse::close`].
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// A watch of the last committed batch id.
    pub(crate) fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    fn stop(&mut self) {
        if let Some(s) = self.shared.take() {
            s.closing.store(true, Ordering::Release);
            s.kick();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Store {
    /// Stops the writer after it has synced everything queued, checkpoints, and closes the database.
    fn drop(&mut self) {
        self.stop();
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(db_err)
}

/// The writer thread: writes what is queued whenever woken, until the store closes.
fn writer(shared: &Shared, wake: &std::sync::mpsc::Receiver<()>, ck_thread: std::thread::JoinHandle<()>) {
    while wake.recv().is_ok() {
        while wake.try_recv().is_ok() {}
        let mut log = shared.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.flush(shared);
        if shared.closing.load(Ordering::Acquire) {
            // Everything queued before the close is written; later batches are refused.
            log.stopped = true;
            let ops = std::mem::take(&mut log.ops);
            let _ = log.ck.send(Ckpt::Rotate { ops, upto: log.seq, file: log.cur });
            // Closes the checkpoint channel, so the checkpoint thread stops after this last one.
            let (dead, _) = std::sync::mpsc::channel();
            log.ck = dead;
            drop(log);
            let _ = ck_thread.join();
            return;
        }
    }
}

/// Work for the checkpoint thread.
enum Ckpt {
    /// Every record up to `upto` is in `file` or checkpointed, and `ops` are those records' writes: checkpoint
    /// them, then free `file`.
    Rotate { ops: Vec<Op>, upto: u64, file: usize },
}

struct Checkpointer {
    db: redb::Database,
    free: Arc<[AtomicBool; 2]>,
    /// The WAL files (for preparing a freed file's next turn).
    files: [std::fs::File; 2],
    fill_to: u64,
}

impl Checkpointer {
    fn run(self, rx: &std::sync::mpsc::Receiver<Ckpt>, abandon: &AtomicBool) {
        // Ops of a failed checkpoint, kept for the next one.
        let mut carry: Vec<Op> = Vec::new();
        while let Ok(Ckpt::Rotate { ops, upto, file }) = rx.recv() {
            if abandon.load(Ordering::Acquire) {
                return;
            }
            carry.extend(ops);
            match checkpoint(&self.db, &carry, upto) {
                Ok(()) => {
                    carry.clear();
                    // Zero-fill the file for its next turn now, off the request path.
                    if let Err(e) = wal::fill(&self.files[file], self.fill_to) {
                        tracing::warn!(error = %e, "CSE WAL: preparing a file failed; it grows when written");
                    }
                    self.free[file].store(true, Ordering::Release);
                }
                // The file stays in use (the writer keeps growing its current file) and the ops are retried with
                // the next checkpoint; the WAL still holds them.
                Err(e) => tracing::error!(error = %e, "CSE checkpoint failed"),
            }
        }
    }
}

/// Writes `ops` into redb and records `upto` as applied, in one durable commit.
/// Only the last write of each key is applied (in key order): a row written and deleted again within one WAL
/// turn never reaches redb.
fn checkpoint(db: &redb::Database, ops: &[Op], upto: u64) -> Result<(), StoreError> {
    let mut last: std::collections::BTreeMap<&str, Option<&[u8]>> = std::collections::BTreeMap::new();
    for op in ops {
        match op {
            Op::Put(k, v) => last.insert(k.as_str(), Some(v.as_slice())),
            Op::Del(k) => last.insert(k.as_str(), None),
        };
    }
    let w = db.begin_write().map_err(db_err)?;
    {
        let mut t = w.open_table(RESOURCES).map_err(db_err)?;
        for (k, v) in last {
            match v {
                Some(v) => {
                    t.insert(k, v).map_err(db_err)?;
                }
                None => {
                    t.remove(k).map_err(db_err)?;
                }
            }
        }
        let mut m = w.open_table(META).map_err(db_err)?;
        m.insert(APPLIED, upto).map_err(db_err)?;
    }
    w.commit().map_err(db_err)
}

#[cfg(test)]
mod tests;
