//! Store traits, free of any backend (TiKV's `engine_traits` rule): the in-memory and on-disk implementations
//! live in the `ledger-store` crate, and every implementation passes its conformance suite.
//!
//! Crash contract: [`BlockStore::append`] returns only once the block is durable (fsynced);
//! [`StateStore::apply`] applies a whole block's updates and its savepoint atomically and durably. A peer
//! appends the block first, then applies the state, so after a crash the state is at most one block behind
//! the blocks and is caught up by replaying them.

use crate::hash::Hash32;
use crate::proto::{Block, Version};
use crate::{TxId, TxValidationCode};
use std::collections::BTreeMap;

/// A store failure: I/O, corruption, or a block that does not extend the chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Underlying I/O failed.
    #[error("store I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The backend database failed.
    #[error("store backend: {0}")]
    Backend(String),
    /// Stored bytes do not decode or do not match their checksum/hash.
    #[error("store corrupt: {0}")]
    Corrupt(String),
    /// An appended block is not the next one (wrong number or previous hash).
    #[error("block does not extend the chain: {0}")]
    NotNext(String),
    /// The store was written in a format this version does not read (the message says what to do).
    #[error("{0}")]
    Format(String),
}

/// Where a transaction is in the chain and how it was validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLocation {
    /// Block number.
    pub block: u64,
    /// Index of the transaction within the block.
    pub index: u32,
    /// The validation code recorded for it.
    pub code: TxValidationCode,
}

/// An append-only chain of blocks.
pub trait BlockStore: Send + Sync {
    /// Number of blocks stored (the next block's number).
    fn height(&self) -> u64;

    /// Header hash of the last block, `None` when empty.
    fn last_hash(&self) -> Option<Hash32>;

    /// Appends the next block (number == height, previous hash == last hash) and makes it durable before
    /// returning. Indexes its transaction ids (the first occurrence of an id wins).
    fn append(&self, block: &Block) -> Result<(), StoreError>;

    /// The block with this number.
    fn block(&self, number: u64) -> Result<Option<Block>, StoreError>;

    /// The location of a transaction id's first occurrence.
    fn tx_location(&self, tx_id: &TxId) -> Result<Option<TxLocation>, StoreError>;
}

/// A value with the version of the transaction that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedValue {
    /// The value bytes.
    pub value: Vec<u8>,
    /// Who wrote it.
    pub version: Version,
}

/// The state updates of one block: `(namespace, key) -> Some(new value) | None (delete)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateBatch {
    /// Ordered so every backend applies updates in the same order.
    pub updates: BTreeMap<(String, String), Option<VersionedValue>>,
    /// Every write of the block's valid transactions, deletes included, in block order: `(namespace, key,
    /// version)`, for the key history index (Fabric's history database: which transactions touched a key;
    /// the values stay in the blocks).
    pub history: Vec<(String, String, Version)>,
}

impl UpdateBatch {
    /// Records a write (later writes to the same key replace earlier ones).
    pub fn put(&mut self, ns: &str, key: &str, value: Vec<u8>, version: Version) {
        self.updates.insert((ns.to_owned(), key.to_owned()), Some(VersionedValue { value, version }));
    }

    /// Records a delete.
    pub fn delete(&mut self, ns: &str, key: &str) {
        self.updates.insert((ns.to_owned(), key.to_owned()), None);
    }

    /// Records that transaction `version` wrote or deleted a key (for the history index).
    pub fn touched(&mut self, ns: &str, key: &str, version: Version) {
        self.history.push((ns.to_owned(), key.to_owned(), version));
    }

    /// The pending update of a key, if any: `Some(None)` means deleted in this batch.
    pub fn get(&self, ns: &str, key: &str) -> Option<Option<&VersionedValue>> {
        self.updates.get(&(ns.to_owned(), key.to_owned())).map(Option::as_ref)
    }
}

/// A consistent read-only view of the state at one savepoint.
pub trait StateSnapshot: Send {
    /// A key's value and version.
    fn get(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>, StoreError>;

    /// Keys in `[start, end)` of a namespace in order (`end == ""`: to the end), at most `limit` of them.
    fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>, StoreError>;

    /// The transactions that wrote or deleted a key, newest first, at most `limit` (the history index,
    /// kept by the store as blocks are applied).
    fn history(&self, ns: &str, key: &str, limit: usize) -> Result<Vec<Version>, StoreError> {
        let _ = (ns, key, limit);
        Err(StoreError::Backend("this state store keeps no key history".into()))
    }
}

/// The versioned world state.
pub trait StateStore: Send + Sync {
    /// The snapshot type.
    type Snapshot: StateSnapshot;

    /// A consistent view of the current state.
    fn snapshot(&self) -> Result<Self::Snapshot, StoreError>;

    /// Applies a block's updates and records `savepoint` (the block number) atomically, visible to every
    /// snapshot taken after it returns. It may not be durable yet: a store may defer that to
    /// [`StateStore::persist_due`]; after a crash it reopens at an earlier savepoint, and the peer replays the
    /// blocks above it.
    fn apply(&self, batch: &UpdateBatch, savepoint: u64) -> Result<(), StoreError>;

    /// Makes the applied state durable when the store's own schedule says it is due (a no-op otherwise, and
    /// by default); a store may start that work and return before it is done. The peer calls it after it has
    /// published a commit, so that its clients do not wait for it.
    fn persist_due(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The number of the last block whose updates were applied, `None` when nothing was.
    fn savepoint(&self) -> Result<Option<u64>, StoreError>;

    /// Removes everything, so the state can be rebuilt from the blocks.
    fn clear(&self) -> Result<(), StoreError>;
}
