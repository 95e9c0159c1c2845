//! The block store's index: derived data, rebuilt from the segment files whenever it lags or is lost.
//!
//! On disk (redb), both tables keyed by block number, so every append is a sequential insert at the
//! right edge of its B-tree (a few pages written per block, whatever the chain's length):
//! - `blocks`: block number → (segment, offset of the record header, payload length);
//! - `block_txs`: block number → the block's transactions as 37-byte entries `id (32) | index (u32 LE) |
//!   validation code (u8)`, first occurrence of an id within the block only.
//!
//! In memory, [`TxMap`]: the first 8 bytes of every indexed tx id → the block holding its first
//! occurrence, rebuilt from `block_txs` on open. A lookup is one hash probe: a miss (the common case:
//! the duplicate checks of endorsers, orderers and validators) touches no page; a hit reads that block's
//! entries and compares the full id. An earlier design keyed a redb table by tx id: every insert of a
//! random key copied a leaf page (one 4 KiB page write per transaction once the tree outgrew a block)
//! and every lookup walked the tree; it was ~10% of a node's CPU under `bench ledger`. The price of the
//! map is memory: about 25 bytes per committed transaction (a 10-million-transaction chain: ~250 MB).
//!
//! Index commits use `Durability::None` (no fsync: the block is already durable in its segment and the
//! index is re-derived on open), with a durable commit every `sync_every` blocks and when the store is
//! dropped, so a crash loses at most that many index entries, which the next open re-indexes.

use super::record::RecordPos;
use crate::redb_err;
use ledger_types::store::{StoreError, TxLocation};
use ledger_types::{Hash32, TxId, TxValidationCode};
use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    TableHandle,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

const BLOCKS: TableDefinition<u64, (u32, u64, u32)> = TableDefinition::new("blocks");
const BLOCK_TXS: TableDefinition<u64, &[u8]> = TableDefinition::new("block_txs");
/// The table of the earlier format (tx id → location); an index that has it is rebuilt.
const OLD_TXS: &str = "txs";

/// Bytes of one `block_txs` entry.
const TX_ENTRY: usize = 37;

/// The 32 bytes of a tx id (64 hex digits by construction).
fn tx_key(id: &TxId) -> [u8; 32] {
    Hash32::from_hex(id.as_str()).map_or([0; 32], |h| h.0)
}

/// The map key of a tx id: its first 8 bytes (ids are SHA-256 digests).
fn prefix(key: &[u8; 32]) -> u64 {
    let mut p = [0u8; 8];
    p.copy_from_slice(&key[..8]);
    u64::from_le_bytes(p)
}

/// Where a block's record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub(crate) pos: RecordPos,
    /// Payload length.
    pub(crate) len: u32,
}

/// One block's index entries.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) number: u64,
    pub(crate) loc: Loc,
    pub(crate) txs: Vec<(TxId, TxLocation)>,
}

enum Open {
    Fatal(StoreError),
    Unusable(String),
}

/// The index as of its last commit, with both tables open: lookups cost one B-tree search, without
/// beginning a read transaction each time. Replaced after every commit.
struct View {
    blocks: ReadOnlyTable<u64, (u32, u64, u32)>,
    block_txs: ReadOnlyTable<u64, &'static [u8]>,
    _txn: ReadTransaction,
}

impl View {
    /// The location of `key` in block `number`, if that block has it.
    fn find(&self, number: u64, key: &[u8; 32]) -> Result<Option<TxLocation>, StoreError> {
        let Some(v) = self.block_txs.get(number).map_err(redb_err)? else { return Ok(None) };
        Ok(v.value().chunks_exact(TX_ENTRY).find(|e| e[..32] == key[..]).map(|e| {
            let index = u32::from_le_bytes([e[32], e[33], e[34], e[35]]);
            let code = TxValidationCode::from_u8(e[36]).unwrap_or(TxValidationCode::InvalidOtherReason);
            TxLocation { block: number, index, code }
        }))
    }
}

/// Tx id prefix → block(s) of first occurrence. `more` holds the further blocks of a prefix shared by
/// several ids (8-byte prefixes of digests collide only by chance or by a client grinding nonces).
#[derive(Default)]
struct TxMap {
    first: HashMap<u64, u64>,
    more: HashMap<u64, Vec<u64>>,
}

impl TxMap {
    /// Candidate blocks for a prefix, ascending.
    fn candidates(&self, p: u64) -> impl Iterator<Item = u64> + '_ {
        self.first.get(&p).copied().into_iter().chain(self.more.get(&p).into_iter().flatten().copied())
    }

    fn insert(&mut self, p: u64, block: u64) {
        match self.first.entry(p) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(block);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                if *o.get() != block {
                    let more = self.more.entry(p).or_default();
                    if more.last() != Some(&block) {
                        more.push(block);
                    }
                }
            }
        }
    }
}

pub(crate) struct Index {
    /// Declared first so it is dropped before the database.
    view: RwLock<Arc<View>>,
    /// Updated after the commit that adds a block and after the view is refreshed, so every block it
    /// names is in the current view.
    map: RwLock<TxMap>,
    db: Database,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").finish_non_exhaustive()
    }
}

fn view(db: &Database) -> Result<View, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let blocks = txn.open_table(BLOCKS).map_err(redb_err)?;
    let block_txs = txn.open_table(BLOCK_TXS).map_err(redb_err)?;
    Ok(View { blocks, block_txs, _txn: txn })
}

/// The map of every indexed block's transactions.
fn load_map(view: &View) -> Result<TxMap, StoreError> {
    let mut map = TxMap::default();
    for row in view.block_txs.iter().map_err(redb_err)? {
        let (number, txs) = row.map_err(redb_err)?;
        let number = number.value();
        for e in txs.value().chunks_exact(TX_ENTRY) {
            let mut key = [0u8; 32];
            key.copy_from_slice(&e[..32]);
            map.insert(prefix(&key), number);
        }
    }
    Ok(map)
}

impl Index {
    /// Opens the index, replacing it with an empty one (to be rebuilt from the segments) when the file is
    /// unusable: damaged, of another format, or with tables of other types. A lock held by another open
    /// store is an error, never a reason to replace the file.
    pub(crate) fn open(path: &Path) -> Result<Index, StoreError> {
        match Index::try_open(path) {
            Ok(index) => Ok(index),
            Err(Open::Fatal(e)) => Err(e),
            Err(Open::Unusable(why)) => {
                tracing::warn!(path = %path.display(), %why, "block index unusable; rebuilding it from the segments");
                std::fs::remove_file(path)?;
                Index::try_open(path).map_err(|e| match e {
                    Open::Fatal(e) => e,
                    Open::Unusable(why) => StoreError::Backend(format!("new block index unusable: {why}")),
                })
            }
        }
    }

    fn try_open(path: &Path) -> Result<Index, Open> {
        use redb::{DatabaseError, StorageError, TableError};
        // The index is small and mostly appended: a modest cache (redb's default is 1 GiB per database).
        let db = redb::Builder::new().set_cache_size(32 << 20).create(path).map_err(|e| match e {
            DatabaseError::Storage(StorageError::Corrupted(_))
            | DatabaseError::UpgradeRequired(_)
            | DatabaseError::RepairAborted => Open::Unusable(e.to_string()),
            DatabaseError::Storage(StorageError::Io(io))
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                Open::Unusable(io.to_string())
            }
            e => Open::Fatal(redb_err(e)),
        })?;
        let table_err = |e: TableError| match e {
            TableError::TableTypeMismatch { .. }
            | TableError::TypeDefinitionChanged { .. }
            | TableError::TableIsMultimap(_) => Open::Unusable(e.to_string()),
            e => Open::Fatal(redb_err(e)),
        };
        let txn = db.begin_write().map_err(|e| Open::Fatal(redb_err(e)))?;
        let old_format =
            txn.list_tables().map_err(|e| Open::Fatal(redb_err(e)))?.any(|t| t.name() == OLD_TXS);
        if old_format {
            return Err(Open::Unusable("index of an earlier format (tx id table)".into()));
        }
        txn.open_table(BLOCKS).map_err(table_err)?;
        txn.open_table(BLOCK_TXS).map_err(table_err)?;
        txn.commit().map_err(|e| Open::Fatal(redb_err(e)))?;
        let view = view(&db).map_err(Open::Fatal)?;
        let map = load_map(&view).map_err(Open::Fatal)?;
        Ok(Index { view: RwLock::new(Arc::new(view)), map: RwLock::new(map), db })
    }

    /// The highest indexed block and its location.
    pub(crate) fn last(&self) -> Result<Option<(u64, Loc)>, StoreError> {
        let txn = self.db.begin_read().map_err(redb_err)?;
        let table = txn.open_table(BLOCKS).map_err(redb_err)?;
        Ok(table.last().map_err(redb_err)?.map(|(k, v)| (k.value(), to_loc(v.value()))))
    }

    fn view(&self) -> Arc<View> {
        self.view.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn refresh(&self) -> Result<(), StoreError> {
        let fresh = Arc::new(view(&self.db)?);
        *self.view.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    pub(crate) fn get(&self, number: u64) -> Result<Option<Loc>, StoreError> {
        let view = self.view();
        Ok(view.blocks.get(number).map_err(redb_err)?.map(|v| to_loc(v.value())))
    }

    pub(crate) fn tx(&self, id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        let key = tx_key(id);
        let candidates: Vec<u64> = {
            let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
            map.candidates(prefix(&key)).collect()
        };
        if candidates.is_empty() {
            return Ok(None);
        }
        let view = self.view();
        for number in candidates {
            if let Some(loc) = view.find(number, &key)? {
                return Ok(Some(loc));
            }
        }
        Ok(None)
    }

    /// Adds the entries of consecutive blocks in one transaction (first occurrence of a tx id wins).
    pub(crate) fn add(&self, entries: &[Entry], durable: bool) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(redb_err)?;
        txn.set_durability(if durable { Durability::Immediate } else { Durability::None })
            .map_err(redb_err)?;
        let mut keys: Vec<(u64, Vec<[u8; 32]>)> = Vec::with_capacity(entries.len());
        {
            let mut blocks = txn.open_table(BLOCKS).map_err(redb_err)?;
            let mut block_txs = txn.open_table(BLOCK_TXS).map_err(redb_err)?;
            let mut buf = Vec::new();
            for e in entries {
                let Loc { pos, len } = e.loc;
                blocks.insert(e.number, (pos.segment, pos.offset, len)).map_err(redb_err)?;
                buf.clear();
                buf.reserve(e.txs.len() * TX_ENTRY);
                let mut block_keys = Vec::with_capacity(e.txs.len());
                for (id, loc) in &e.txs {
                    let key = tx_key(id);
                    buf.extend_from_slice(&key);
                    buf.extend_from_slice(&loc.index.to_le_bytes());
                    buf.push(loc.code.as_u8());
                    block_keys.push(key);
                }
                block_txs.insert(e.number, buf.as_slice()).map_err(redb_err)?;
                keys.push((e.number, block_keys));
            }
        }
        txn.commit().map_err(redb_err)?;
        if !entries.is_empty() {
            self.refresh()?;
            let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
            for (number, block_keys) in keys {
                for key in &block_keys {
                    map.insert(prefix(key), number);
                }
            }
        }
        Ok(())
    }

    /// Makes every earlier commit durable.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        self.add(&[], true)
    }

    /// Drops every entry (the index is then rebuilt from the segments).
    pub(crate) fn clear(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(redb_err)?;
        txn.delete_table(BLOCKS).map_err(redb_err)?;
        txn.delete_table(BLOCK_TXS).map_err(redb_err)?;
        txn.open_table(BLOCKS).map_err(redb_err)?;
        txn.open_table(BLOCK_TXS).map_err(redb_err)?;
        txn.commit().map_err(redb_err)?;
        self.refresh()?;
        *self.map.write().unwrap_or_else(PoisonError::into_inner) = TxMap::default();
        Ok(())
    }
}

fn to_loc((segment, offset, len): (u32, u64, u32)) -> Loc {
    Loc { pos: RecordPos { segment, offset }, len }
}
