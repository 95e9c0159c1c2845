//! The Raft log and vote in redb. Every write is a durable redb commit (fsync) that completes before
//! openraft is told the I/O is done, so nothing is acknowledged to a leader, and no vote is granted, before
//! it is on disk (persist before send).
//!
//! Tables: `log` (index → CBOR `Entry`), `meta` (`vote`, `last_purged`, `committed`, and the state
//! machine's `applied` position → CBOR). redb calls are blocking, so they run on tokio's blocking pool.
//! `committed` and `applied` are hints written without fsync (they only shorten the replay after a
//! restart); the log and the vote are always durable.
//!
//! The newest entries are also kept in memory ([`Recent`], up to [`RECENT_BYTES`]), added only after the
//! durable commit that wrote them: replication to the followers and the state machine read them from
//! there instead of reading and decoding the CBOR back from redb (6-7% of a node's CPU under
//! `bench interworking` before: docs/ledger-perf.md, "Fourth round").

use super::{TypeConfig, from_cbor, to_cbor, to_cbor_sized};
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, StorageError, StorageIOError, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::VecDeque;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

type SErr = StorageError<u64>;

/// Why the log database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("raft log database {path}: {reason}")]
pub struct OpenError {
    path: String,
    reason: String,
}

/// How many bytes of block entries [`Recent`] keeps (a few blocks of the largest size).
const RECENT_BYTES: usize = 64 << 20;
/// How many entries [`Recent`] keeps at most.
const RECENT_ENTRIES: usize = 4096;

/// The newest log entries, contiguous by index and ending at the log's last durable entry whenever it is
/// not empty (appends, truncations and purges keep it so; openraft calls them one at a time).
#[derive(Default)]
struct Recent {
    entries: VecDeque<Entry<TypeConfig>>,
    bytes: usize,
}

fn entry_bytes(e: &Entry<TypeConfig>) -> usize {
    match &e.payload {
        openraft::EntryPayload::Normal(b) => b.0.len(),
        _ => 0,
    }
}

impl Recent {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|e| e.log_id.index)
    }

    /// Adds durable entries; a gap clears what was kept (a follower whose log was truncated or that
    /// installed a snapshot starts a new run).
    fn push(&mut self, new: Vec<Entry<TypeConfig>>) {
        for e in new {
            if self
                .entries
                .back()
                .is_some_and(|last| last.log_id.index.checked_add(1) != Some(e.log_id.index))
            {
                self.entries.clear();
                self.bytes = 0;
            }
            self.bytes += entry_bytes(&e);
            self.entries.push_back(e);
        }
        while self.entries.len() > RECENT_ENTRIES || (self.bytes > RECENT_BYTES && self.entries.len() > 1) {
            if let Some(e) = self.entries.pop_front() {
                self.bytes -= entry_bytes(&e);
            }
        }
    }

    /// Drops the entries at `from` and after.
    fn truncate(&mut self, from: u64) {
        while self.entries.back().is_some_and(|e| e.log_id.index >= from) {
            if let Some(e) = self.entries.pop_back() {
                self.bytes -= entry_bytes(&e);
            }
        }
    }

    /// Drops the entries up to and including `upto`.
    fn purge(&mut self, upto: u64) {
        while self.entries.front().is_some_and(|e| e.log_id.index <= upto) {
            if let Some(e) = self.entries.pop_front() {
                self.bytes -= entry_bytes(&e);
            }
        }
    }

    /// The entries `start..end` if every one of them is kept.
    fn get(&self, start: u64, end: u64) -> Option<Vec<Entry<TypeConfig>>> {
        let first = self.first_index()?;
        let last = self.entries.back()?.log_id.index;
        if start < first || end > last.saturating_add(1) {
            return None;
        }
        if end <= start {
            return Some(Vec::new());
        }
        let from = usize::try_from(start - first).ok()?;
        let n = usize::try_from(end - start).ok()?;
        Some(self.entries.iter().skip(from).take(n).cloned().collect())
    }
}

/// The redb-backed Raft log; cheap to clone (the reader is a clone).
#[derive(Clone)]
pub(crate) struct LogStore {
    db: Arc<Database>,
    recent: Arc<Mutex<Recent>>,
    /// The orderer's data directory (names its failpoints).
    dir: Arc<std::path::PathBuf>,
}

fn any<E: std::fmt::Display>(e: E) -> AnyError {
    AnyError::error(e.to_string())
}

impl LogStore {
    /// Opens (or creates) the log at `path`. A database still held by a node that is shutting down in
    /// the same process is retried for a few seconds.
    pub(crate) async fn open(path: &Path) -> Result<LogStore, OpenError> {
        let mut tries = 0;
        loop {
            let p = path.to_owned();
            // Entries are read back once, for replication: a small cache (redb's default is 1 GiB).
            let res =
                tokio::task::spawn_blocking(move || redb::Builder::new().set_cache_size(32 << 20).create(&p))
                    .await
                    .map_err(|e| OpenError { path: path.display().to_string(), reason: e.to_string() })?;
            match res {
                Ok(db) => {
                    let dir = Arc::new(path.parent().map(Path::to_path_buf).unwrap_or_default());
                    let store = LogStore { db: Arc::new(db), dir, recent: Arc::default() };
                    store
                        .init_tables()
                        .map_err(|e| OpenError { path: path.display().to_string(), reason: e.to_string() })?;
                    return Ok(store);
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    return Err(OpenError { path: path.display().to_string(), reason: e.to_string() });
                }
            }
        }
    }

    /// The kept entries (a panic while the lock was held cannot leave them inconsistent: every method
    /// keeps the run contiguous at each step).
    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The database, shared with the state machine (which keeps its applied position in `meta`).
    pub(crate) fn db(&self) -> Arc<Database> {
        self.db.clone()
    }

    fn init_tables(&self) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        tx.open_table(LOG)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(())
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, AnyError> {
        read_meta(&self.db, key)
    }

    async fn write<F>(&self, f: F) -> Result<(), AnyError>
    where
        F: FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error> + Send + 'static,
    {
        write(self.db.clone(), Durability::Immediate, f).await
    }
}

/// Reads a CBOR value from the `meta` table.
pub(crate) fn read_meta<T: serde::de::DeserializeOwned>(
    db: &Database,
    key: &str,
) -> Result<Option<T>, AnyError> {
    let tx = db.begin_read().map_err(any)?;
    let t = tx.open_table(META).map_err(any)?;
    match t.get(key).map_err(any)? {
        Some(v) => Ok(Some(from_cbor(v.value()).map_err(any)?)),
        None => Ok(None),
    }
}

/// Runs `f` in a write transaction on the blocking pool. With [`Durability::Immediate`] the commit returns
/// after fsync; with [`Durability::None`] the data becomes durable with the next durable commit.
pub(crate) async fn write<F>(db: Arc<Database>, durability: Durability, f: F) -> Result<(), AnyError>
where
    F: FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error> + Send + 'static,
{
    tokio::task::spawn_blocking(move || -> Result<(), redb::Error> {
        let mut tx = db.begin_write()?;
        tx.set_durability(durability)
            .map_err(|e| redb::Error::from(redb::StorageError::Io(std::io::Error::other(e.to_string()))))?;
        f(&tx)?;
        tx.commit()?;
        Ok(())
    })
    .await
    .map_err(any)?
    .map_err(any)
}

/// Writes a CBOR value into the `meta` table.
pub(crate) async fn write_meta(
    db: Arc<Database>,
    durability: Durability,
    key: &'static str,
    value: Vec<u8>,
) -> Result<(), AnyError> {
    write(db, durability, move |tx| {
        tx.open_table(META)?.insert(key, value.as_slice())?;
        Ok(())
    })
    .await
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, SErr> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => Some(e.saturating_add(1)),
            Bound::Excluded(e) => Some(*e),
            Bound::Unbounded => None,
        };
        if let Some(e) = end
            && let Some(kept) = self.recent().get(start, e)
        {
            return Ok(kept);
        }
        let db = self.db.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<Vec<Entry<TypeConfig>>, AnyError> {
            let tx = db.begin_read().map_err(any)?;
            let t = tx.open_table(LOG).map_err(any)?;
            let iter = match end {
                Some(e) if e <= start => return Ok(Vec::new()),
                Some(e) => t.range(start..e).map_err(any)?,
                None => t.range(start..).map_err(any)?,
            };
            let mut out = Vec::new();
            for item in iter {
                let (_, v) = item.map_err(any)?;
                out.push(from_cbor(v.value()).map_err(any)?);
            }
            Ok(out)
        })
        .await
        .map_err(|e| StorageIOError::read_logs(any(e)))?;
        res.map_err(|e| StorageIOError::read_logs(e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, SErr> {
        let last_purged: Option<LogId<u64>> =
            self.read_meta("last_purged").map_err(StorageIOError::read_logs)?;
        let last = {
            let tx = self.db.begin_read().map_err(|e| StorageIOError::read_logs(any(e)))?;
            let t = tx.open_table(LOG).map_err(|e| StorageIOError::read_logs(any(e)))?;
            match t.last().map_err(|e| StorageIOError::read_logs(any(e)))? {
                Some((_, v)) => {
                    let e: Entry<TypeConfig> =
                        from_cbor(v.value()).map_err(|e| StorageIOError::read_logs(any(e)))?;
                    Some(e.log_id)
                }
                None => None,
            }
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last.or(last_purged) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), SErr> {
        let bytes = to_cbor(vote).map_err(|e| StorageIOError::write_vote(any(e)))?;
        self.write(move |tx| {
            tx.open_table(META)?.insert("vote", bytes.as_slice())?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_vote(e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, SErr> {
        self.read_meta("vote").map_err(|e| StorageIOError::read_vote(e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), SErr> {
        // A hint (not fsynced): lets a restarted orderer re-apply its log before it hears from a leader.
        let bytes = to_cbor(&committed).map_err(|e| StorageIOError::write_logs(any(e)))?;
        write_meta(self.db.clone(), Durability::None, "committed", bytes)
            .await
            .map_err(|e| StorageIOError::write_logs(e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, SErr> {
        let c: Option<Option<LogId<u64>>> = self.read_meta("committed").map_err(StorageIOError::read_logs)?;
        Ok(c.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let mut encoded = Vec::with_capacity(entries.len());
        for e in &entries {
            let bytes =
                to_cbor_sized(e, entry_bytes(e) + 96).map_err(|err| StorageIOError::write_logs(any(err)))?;
            encoded.push((e.log_id.index, bytes));
        }
        if let Err(e) = crate::failpoints::hit(&self.dir, crate::failpoints::RAFT_LOG_APPEND) {
            callback.log_io_completed(Err(std::io::Error::other(e.clone())));
            return Err(StorageIOError::write_logs(AnyError::error(e)).into());
        }
        let res = self
            .write(move |tx| {
                let mut t = tx.open_table(LOG)?;
                for (i, b) in &encoded {
                    t.insert(*i, b.as_slice())?;
                }
                Ok(())
            })
            .await;
        match res {
            Ok(()) => {
                // Durable now: only at this point may openraft count the entries as persisted, and may
                // readers see them in memory.
                self.recent().push(entries);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), SErr> {
        let from = log_id.index;
        // Out of memory first: a reader must never be served an entry the log no longer has.
        self.recent().truncate(from);
        self.write(move |tx| {
            let mut t = tx.open_table(LOG)?;
            t.retain_in(from.., |_, _| false)?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_logs(e).into())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), SErr> {
        let upto = log_id.index;
        self.recent().purge(upto);
        let bytes = to_cbor(&log_id).map_err(|e| StorageIOError::write_logs(any(e)))?;
        self.write(move |tx| {
            tx.open_table(META)?.insert("last_purged", bytes.as_slice())?;
            tx.open_table(LOG)?.retain_in(..=upto, |_, _| false)?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_logs(e).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::BlockEntry;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(index: u64, len: usize) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal(BlockEntry(vec![index as u8; len].into())),
        }
    }

    fn indexes(v: &[Entry<TypeConfig>]) -> Vec<u64> {
        v.iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn recent_entries_serve_only_ranges_they_hold_whole() {
        let mut r = Recent::default();
        assert!(r.get(1, 2).is_none(), "nothing kept yet");
        r.push((1..=5).map(|i| entry(i, 10)).collect());
        assert_eq!(indexes(&r.get(2, 5).expect("kept")), vec![2, 3, 4]);
        assert_eq!(indexes(&r.get(1, 6).expect("kept")), vec![1, 2, 3, 4, 5]);
        assert!(r.get(0, 3).is_none(), "starts before the first kept entry");
        assert!(r.get(4, 7).is_none(), "ends after the last kept entry");
        assert_eq!(r.get(3, 3).expect("empty range").len(), 0);
    }

    #[test]
    fn truncation_and_purge_drop_what_the_log_drops() {
        let mut r = Recent::default();
        r.push((1..=6).map(|i| entry(i, 10)).collect());
        r.truncate(4);
        assert!(r.get(3, 5).is_none(), "entry 4 is gone from the log");
        assert_eq!(indexes(&r.get(1, 4).expect("kept")), vec![1, 2, 3]);
        // A new leader's entries continue the log after the truncation point.
        r.push(vec![entry(4, 10)]);
        assert_eq!(indexes(&r.get(3, 5).expect("kept")), vec![3, 4]);
        r.purge(2);
        assert!(r.get(2, 4).is_none(), "entry 2 was purged");
        assert_eq!(r.bytes, 20);
    }

    #[test]
    fn a_gap_starts_a_new_run_and_the_size_bound_evicts_the_oldest() {
        let mut r = Recent::default();
        r.push((1..=3).map(|i| entry(i, 10)).collect());
        r.push(vec![entry(10, 10)]); // e.g. after a snapshot install
        assert!(r.get(1, 2).is_none());
        assert_eq!(indexes(&r.get(10, 11).expect("kept")), vec![10]);
        let big = RECENT_BYTES / 3 + 1;
        r.push((11..=14).map(|i| entry(i, big)).collect());
        assert!(r.bytes <= RECENT_BYTES);
        assert!(r.get(10, 12).is_none(), "the oldest entries were evicted");
        assert_eq!(indexes(&r.get(13, 15).expect("kept")), vec![13, 14]);
    }
}
