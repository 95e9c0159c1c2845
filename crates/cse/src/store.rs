//! Durable storage of resources in redb with group commit.
//!
//! ```text
//!  handlers ──(batch id, ops)──► writer thread ──► one redb write txn per group, fsync, commit
//!     ▲                                              │
//!     └──────── oneshot ack after commit ◄───────────┘   + watch: last committed batch id
//! ```
//! A request is answered only after the batch holding its writes is committed, so nothing acknowledged is lost.
//! Batches reach the writer in the order the engine produced them (they are sent under the engine's lock).

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{oneshot, watch};

const RESOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("resources");

/// How many queued batches one commit may take.
const MAX_GROUP: usize = 4096;

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

/// The store handle kept by the engine.
pub(crate) struct Store {
    tx: Option<std::sync::mpsc::Sender<Batch>>,
    thread: Option<std::thread::JoinHandle<()>>,
    next_id: u64,
    committed: watch::Receiver<u64>,
    _committed_tx: Option<watch::Sender<u64>>,
    closed: bool,
}

/// Waits for one batch's commit.
pub(crate) enum Pending {
    Ready,
    Wait(oneshot::Receiver<Result<(), String>>),
    Failed(String),
}

impl Pending {
    pub(crate) async fn wait(self) -> Result<(), String> {
        match self {
            Pending::Ready => Ok(()),
            Pending::Failed(e) => Err(e),
            Pending::Wait(rx) => rx.await.unwrap_or_else(|_| Err("storage writer stopped".to_owned())),
        }
    }
}

impl Store {
    /// A store that keeps nothing (in-memory CSE).
    pub(crate) fn memory() -> Self {
        let (tx, rx) = watch::channel(u64::MAX);
        Store { tx: None, thread: None, next_id: 0, committed: rx, _committed_tx: Some(tx), closed: false }
    }

    /// Opens (or creates) the database at `path`, returns the store and every stored record.
    pub(crate) fn open(path: &Path) -> Result<(Self, Vec<Row>), StoreError> {
        // redb's default cache is 1 GiB; the CSE's working set is far smaller.
        let db = redb::Builder::new().set_cache_size(64 << 20).create(path).map_err(db_err)?;
        let mut rows = Vec::new();
        {
            let w = db.begin_write().map_err(db_err)?;
            w.open_table(RESOURCES).map_err(db_err)?;
            w.commit().map_err(db_err)?;
            let r = db.begin_read().map_err(db_err)?;
            let t = r.open_table(RESOURCES).map_err(db_err)?;
            for row in t.iter().map_err(db_err)? {
                let (k, v) = row.map_err(db_err)?;
                rows.push((k.value().to_owned(), v.value().to_vec()));
            }
        }
        let (tx, rx) = std::sync::mpsc::channel::<Batch>();
        let (ctx, crx) = watch::channel(0u64);
        let thread = std::thread::Builder::new()
            .name("cse-store".into())
            .spawn(move || writer(db, rx, ctx))
            .map_err(db_err)?;
        Ok((
            Store {
                tx: Some(tx),
                thread: Some(thread),
                next_id: 1,
                committed: crx,
                _committed_tx: None,
                closed: false,
            },
            rows,
        ))
    }

    /// Queues `ops` as the next batch. Returns the batch id (for [`Store::committed`]) and its ack.
    pub(crate) fn submit(&mut self, ops: Vec<Op>) -> (u64, Pending) {
        if self.closed {
            return (
                0,
                if ops.is_empty() { Pending::Ready } else { Pending::Failed("the CSE is closed".into()) },
            );
        }
        let Some(tx) = &self.tx else { return (0, Pending::Ready) };
        if ops.is_empty() {
            return (self.next_id.saturating_sub(1), Pending::Ready);
        }
        let id = self.next_id;
        self.next_id += 1;
        let (done, rx) = oneshot::channel();
        match tx.send(Batch { id, ops, done }) {
            Ok(()) => (id, Pending::Wait(rx)),
            Err(_) => (id, Pending::Failed(StoreError::Stopped.to_string())),
        }
    }

    /// A store that refuses every write (after [`crate::Cse::close`]).
    pub(crate) fn closed(committed: watch::Receiver<u64>) -> Self {
        Store { tx: None, thread: None, next_id: 0, committed, _committed_tx: None, closed: true }
    }

    /// True after [`crate::Cse::close`].
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// A watch of the last committed batch id.
    pub(crate) fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }
}

impl Drop for Store {
    /// Stops the writer after it has committed everything queued, and closes the database.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer(db: redb::Database, rx: std::sync::mpsc::Receiver<Batch>, committed: watch::Sender<u64>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(b) => group.push(b),
                Err(_) => break,
            }
        }
        let result = write_group(&db, &group).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "CSE storage commit failed");
        }
        let last = group.last().map_or(0, |b| b.id);
        for b in group {
            let _ = b.done.send(result.clone());
        }
        if result.is_ok() {
            committed.send_replace(last);
        }
    }
}

fn write_group(db: &redb::Database, group: &[Batch]) -> Result<(), StoreError> {
    let w = db.begin_write().map_err(db_err)?;
    {
        let mut t = w.open_table(RESOURCES).map_err(db_err)?;
        for op in group.iter().flat_map(|b| b.ops.iter()) {
            match op {
                Op::Put(k, v) => {
                    t.insert(k.as_str(), v.as_slice()).map_err(db_err)?;
                }
                Op::Del(k) => {
                    t.remove(k.as_str()).map_err(db_err)?;
                }
            }
        }
    }
    w.commit().map_err(db_err)
}
