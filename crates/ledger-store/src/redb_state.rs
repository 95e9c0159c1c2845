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
//! the peer calls after it has published a commit, makes them durable with a `Durability::Immediate` commit
//! once [`SYNC_EVERY`] of them have passed, as does the store's drop. A crash loses at most that many
//! blocks' updates, atomically (redb reopens at its last durable commit, with the savepoint of that commit),
//! and the peer replays them from its blocks. So no block's clients wait for a durable commit: one after 32
//! blocks took up to 150–220 ms under `bench ledger --apps 2000`, growing with the database, and used to
//! delay that block's publication (docs/ledger-perf.md, twelfth round). A snapshot is a redb read
//! transaction with the `state` table opened once, so every `get` of a validation pass is a single B-tree
//! lookup.
//! Namespaces must not contain a NUL byte (it separates namespace and key); `apply` refuses them.

use crate::redb_err;
use ledger_types::proto::Version;
use ledger_types::store::{StateSnapshot, StateStore, StoreError, UpdateBatch, VersionedValue};
use redb::{Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, TableDefinition};
use std::path::Path;

const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const HISTORY: TableDefinition<&[u8], ()> = TableDefinition::new("history");
const SAVEPOINT: &str = "savepoint";

/// [`StateStore::persist_due`] makes the applied state durable once this many `apply`s have passed since the
/// last durable commit (see the module docs).
pub const SYNC_EVERY: u32 = 32;

/// The world state in redb. See the module docs for the layout.
#[derive(Debug)]
pub struct RedbStateStore {
    db: Database,
    /// Commits since the last durable one.
    unsynced: std::sync::atomic::AtomicU32,
}

impl Drop for RedbStateStore {
    fn drop(&mut self) {
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

    /// Makes every earlier `apply` durable (a durable empty commit).
    pub fn sync(&self) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(redb_err)?;
        txn.set_durability(Durability::Immediate).map_err(redb_err)?;
        txn.commit().map_err(redb_err)?;
        self.unsynced.store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
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
        Ok(RedbStateStore { db, unsynced: std::sync::atomic::AtomicU32::new(0) })
    }
}

/// A consistent view of a [`RedbStateStore`]: a redb read transaction with the state table open.
pub struct RedbSnapshot {
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
    history: ReadOnlyTable<&'static [u8], ()>,
    savepoint: Option<u64>,
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

impl StateSnapshot for RedbSnapshot {
    fn get(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>, StoreError> {
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
        let mut out = Vec::new();
        for item in self.table.range::<&[u8]>(lo.as_slice()..hi.as_slice()).map_err(redb_err)? {
            let (k, v) = item.map_err(redb_err)?;
            let key = k.value().get(prefix..).unwrap_or_default();
            let key = String::from_utf8(key.to_vec())
                .map_err(|_| StoreError::Corrupt(format!("state key in {ns:?} is not UTF-8")))?;
            out.push((key, decode_value(v.value())?));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn history(&self, ns: &str, key: &str, limit: usize) -> Result<Vec<Version>, StoreError> {
        let lo = history_prefix(ns, key);
        let mut hi = lo.clone();
        hi.extend_from_slice(&[0xff; 17]);
        let mut out = Vec::new();
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
            out.push(Version { block_num: num(b), tx_num: num(t) });
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
        let txn = self.db.begin_read().map_err(redb_err)?;
        let table = txn.open_table(STATE).map_err(redb_err)?;
        let meta = txn.open_table(META).map_err(redb_err)?;
        let savepoint = meta.get(SAVEPOINT).map_err(redb_err)?.map(|v| v.value());
        let history = txn.open_table(HISTORY).map_err(redb_err)?;
        Ok(RedbSnapshot { table, history, savepoint, _txn: txn })
    }

    fn apply(&self, batch: &UpdateBatch, savepoint: u64) -> Result<(), StoreError> {
        if let Some((ns, _)) = batch.updates.keys().find(|(ns, _)| ns.as_bytes().contains(&0)) {
            return Err(StoreError::Backend(format!("namespace {ns:?} contains a NUL byte")));
        }
        use std::sync::atomic::Ordering;
        let mut txn = self.db.begin_write().map_err(redb_err)?;
        txn.set_durability(Durability::None).map_err(redb_err)?;
        {
            let mut state = txn.open_table(STATE).map_err(redb_err)?;
            let mut key = Vec::new();
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
            if !batch.history.is_empty() {
                let mut history = txn.open_table(HISTORY).map_err(redb_err)?;
                for (ns, k, v) in &batch.history {
                    key = history_prefix(ns, k);
                    key.extend_from_slice(&v.block_num.to_be_bytes());
                    key.extend_from_slice(&v.tx_num.to_be_bytes());
                    history.insert(key.as_slice(), ()).map_err(redb_err)?;
                }
            }
            let mut meta = txn.open_table(META).map_err(redb_err)?;
            meta.insert(SAVEPOINT, savepoint).map_err(redb_err)?;
        }
        txn.commit().map_err(redb_err)?;
        self.unsynced.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn persist_due(&self) -> Result<(), StoreError> {
        if self.unsynced.load(std::sync::atomic::Ordering::Relaxed) >= SYNC_EVERY {
            self.sync()
        } else {
            Ok(())
        }
    }

    fn savepoint(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(redb_err)?;
        let meta = txn.open_table(META).map_err(redb_err)?;
        Ok(meta.get(SAVEPOINT).map_err(redb_err)?.map(|v| v.value()))
    }

    fn clear(&self) -> Result<(), StoreError> {
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
