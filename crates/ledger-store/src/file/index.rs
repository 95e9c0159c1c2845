//! The block store's index in redb: derived data, rebuilt from the segment files whenever it lags or is lost.
//!
//! Tables:
//! - `blocks`: block number → (segment, offset of the record header, payload length);
//! - `txs`: transaction id (its 32 bytes) → (block number, index in the block, validation code byte),
//!   first occurrence only.
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
};
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

const BLOCKS: TableDefinition<u64, (u32, u64, u32)> = TableDefinition::new("blocks");
const TXS: TableDefinition<&[u8], (u64, u32, u8)> = TableDefinition::new("txs");

/// The 32 bytes of a tx id (64 hex digits by construction), half the size of the text as a key.
fn tx_key(id: &TxId) -> [u8; 32] {
    Hash32::from_hex(id.as_str()).map_or([0; 32], |h| h.0)
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
    txs: ReadOnlyTable<&'static [u8], (u64, u32, u8)>,
    _txn: ReadTransaction,
}

pub(crate) struct Index {
    /// Declared first so it is dropped before the database.
    view: RwLock<Arc<View>>,
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
    let txs = txn.open_table(TXS).map_err(redb_err)?;
    Ok(View { blocks, txs, _txn: txn })
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
        txn.open_table(BLOCKS).map_err(table_err)?;
        txn.open_table(TXS).map_err(table_err)?;
        txn.commit().map_err(|e| Open::Fatal(redb_err(e)))?;
        let view = view(&db).map_err(Open::Fatal)?;
        Ok(Index { view: RwLock::new(Arc::new(view)), db })
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
        let view = self.view();
        let Some(v) = view.txs.get(tx_key(id).as_slice()).map_err(redb_err)? else { return Ok(None) };
        let (block, index, code) = v.value();
        let code = TxValidationCode::from_u8(code).unwrap_or(TxValidationCode::InvalidOtherReason);
        Ok(Some(TxLocation { block, index, code }))
    }

    /// Adds the entries of consecutive blocks in one transaction (first occurrence of a tx id wins).
    pub(crate) fn add(&self, entries: &[Entry], durable: bool) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(redb_err)?;
        txn.set_durability(if durable { Durability::Immediate } else { Durability::None })
            .map_err(redb_err)?;
        {
            let mut blocks = txn.open_table(BLOCKS).map_err(redb_err)?;
            let mut txs = txn.open_table(TXS).map_err(redb_err)?;
            for e in entries {
                let Loc { pos, len } = e.loc;
                blocks.insert(e.number, (pos.segment, pos.offset, len)).map_err(redb_err)?;
                // Sorted keys: consecutive inserts share most of their B-tree path. One insert per tx; in
                // the rare case the id was indexed before, its first location is put back.
                let mut sorted: Vec<([u8; 32], &TxLocation)> =
                    e.txs.iter().map(|(id, loc)| (tx_key(id), loc)).collect();
                sorted.sort_unstable_by_key(|e| e.0);
                for (key, loc) in sorted {
                    let earlier = txs
                        .insert(key.as_slice(), (loc.block, loc.index, loc.code.as_u8()))
                        .map_err(redb_err)?
                        .map(|old| old.value());
                    if let Some(first) = earlier {
                        txs.insert(key.as_slice(), first).map_err(redb_err)?;
                    }
                }
            }
        }
        txn.commit().map_err(redb_err)?;
        if !entries.is_empty() {
            self.refresh()?;
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
        txn.delete_table(TXS).map_err(redb_err)?;
        txn.open_table(BLOCKS).map_err(redb_err)?;
        txn.open_table(TXS).map_err(redb_err)?;
        txn.commit().map_err(redb_err)?;
        self.refresh()
    }
}

fn to_loc((segment, offset, len): (u32, u64, u32)) -> Loc {
    Loc { pos: RecordPos { segment, offset }, len }
}
