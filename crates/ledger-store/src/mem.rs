//! In-memory stores for unit tests of other crates: simple, fast and held to the same conformance suite as
//! the on-disk ones. Nothing survives the process.

use crate::chain::{block_tx_locations, check_next};
use ledger_types::BlockExt;
use ledger_types::proto::{Block, Version};
use ledger_types::store::{
    BlockStore, StateSnapshot, StateStore, StoreError, TxLocation, UpdateBatch, VersionedValue,
};
use ledger_types::{Hash32, TxId};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock};

#[derive(Debug, Default)]
struct Blocks {
    blocks: Vec<Block>,
    last_hash: Option<Hash32>,
    txs: HashMap<TxId, TxLocation>,
}

/// A [`BlockStore`] in memory.
#[derive(Debug, Default)]
pub struct MemBlockStore {
    inner: RwLock<Blocks>,
}

impl MemBlockStore {
    /// An empty store.
    pub fn new() -> MemBlockStore {
        MemBlockStore::default()
    }
}

impl BlockStore for MemBlockStore {
    fn height(&self) -> u64 {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).blocks.len() as u64
    }

    fn last_hash(&self) -> Option<Hash32> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).last_hash
    }

    fn append(&self, block: &Block) -> Result<(), StoreError> {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        check_next(block, inner.blocks.len() as u64, inner.last_hash)?;
        for (id, loc) in block_tx_locations(block) {
            inner.txs.entry(id).or_insert(loc);
        }
        inner.last_hash = Some(block.header_hash());
        inner.blocks.push(block.clone());
        Ok(())
    }

    fn block(&self, number: u64) -> Result<Option<Block>, StoreError> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        Ok(usize::try_from(number).ok().and_then(|n| inner.blocks.get(n)).cloned())
    }

    fn tx_location(&self, tx_id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        Ok(self.inner.read().unwrap_or_else(PoisonError::into_inner).txs.get(tx_id).copied())
    }
}

type Namespaces = BTreeMap<String, BTreeMap<String, VersionedValue>>;

#[derive(Debug, Default, Clone)]
struct State {
    data: Namespaces,
    /// The history index: per (namespace, key), the writers' versions in commit order.
    history: BTreeMap<(String, String), Vec<Version>>,
    savepoint: Option<u64>,
}

/// A [`StateStore`] in memory. Snapshots share the state copy-on-write: taking one is O(1), and the next
/// `apply` copies the state only while an older snapshot is still alive.
#[derive(Debug, Default)]
pub struct MemStateStore {
    inner: RwLock<Arc<State>>,
}

impl MemStateStore {
    /// An empty state.
    pub fn new() -> MemStateStore {
        MemStateStore::default()
    }
}

/// A snapshot of a [`MemStateStore`].
#[derive(Debug, Clone)]
pub struct MemSnapshot {
    state: Arc<State>,
}

impl MemSnapshot {
    /// The savepoint this snapshot reflects.
    pub fn savepoint(&self) -> Option<u64> {
        self.state.savepoint
    }
}

impl StateSnapshot for MemSnapshot {
    fn get(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>, StoreError> {
        Ok(self.state.data.get(ns).and_then(|m| m.get(key)).cloned())
    }

    fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>, StoreError> {
        let Some(m) = self.state.data.get(ns) else { return Ok(Vec::new()) };
        let upper = if end.is_empty() { Bound::Unbounded } else { Bound::Excluded(end) };
        if !end.is_empty() && end <= start {
            return Ok(Vec::new());
        }
        Ok(m.range::<str, _>((Bound::Included(start), upper))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn history(&self, ns: &str, key: &str, limit: usize) -> Result<Vec<Version>, StoreError> {
        let all = self.state.history.get(&(ns.to_owned(), key.to_owned()));
        Ok(all.map(|v| v.iter().rev().take(limit).copied().collect()).unwrap_or_default())
    }
}

impl StateStore for MemStateStore {
    type Snapshot = MemSnapshot;

    fn snapshot(&self) -> Result<MemSnapshot, StoreError> {
        Ok(MemSnapshot { state: self.inner.read().unwrap_or_else(PoisonError::into_inner).clone() })
    }

    fn apply(&self, batch: &UpdateBatch, savepoint: u64) -> Result<(), StoreError> {
        let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let state = Arc::make_mut(&mut guard);
        for ((ns, key), update) in &batch.updates {
            match update {
                Some(v) => {
                    state.data.entry(ns.clone()).or_default().insert(key.clone(), v.clone());
                }
                None => {
                    if let Some(m) = state.data.get_mut(ns) {
                        m.remove(key);
                        if m.is_empty() {
                            state.data.remove(ns);
                        }
                    }
                }
            }
        }
        for (ns, key, version) in &batch.history {
            state.history.entry((ns.clone(), key.clone())).or_default().push(*version);
        }
        state.savepoint = Some(savepoint);
        Ok(())
    }

    fn savepoint(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.inner.read().unwrap_or_else(PoisonError::into_inner).savepoint)
    }

    fn clear(&self) -> Result<(), StoreError> {
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(State::default());
        Ok(())
    }
}
