//! The ledger's storage adapter: implementations of the `ledger-types` store traits.
//!
//! - [`MemBlockStore`], [`MemStateStore`]: in memory, for unit tests of other crates;
//! - [`FileBlockStore`]: blocks hash-chained in append-only, checksummed segment files, fsynced before
//!   `append` returns, with a redb index (block number → position, tx id → location) re-derived on open;
//!   [`file::scan`] reads every record in order without the index, for the audit tool;
//! - [`RedbStateStore`]: the versioned world state in redb, one durable write transaction per block;
//! - [`conformance`]: the suite every store passes (run by this crate's integration tests for each one).
//!
//! The byte format and the crash guarantees are in `docs/ledger-format.md`.
//!
//! ```
//! use ledger_store::{FileBlockStore, RedbStateStore};
//! use ledger_types::block::BlockBuilder;
//! use ledger_types::proto::Version;
//! use ledger_types::store::{BlockStore, StateSnapshot, StateStore, UpdateBatch};
//! use ledger_types::{BlockExt, Hash32};
//!
//! let dir = std::env::temp_dir().join(format!("ledger-store-doc-{}", std::process::id()));
//! let blocks = FileBlockStore::open(dir.join("ledger"))?;
//! let genesis = BlockBuilder::new(0, Hash32::ZERO).build();
//! blocks.append(&genesis)?; // durable when this returns
//! assert_eq!((blocks.height(), blocks.last_hash()), (1, Some(genesis.header_hash())));
//!
//! let state = RedbStateStore::open(dir.join("state.redb"))?;
//! let mut batch = UpdateBatch::default();
//! batch.put("ipe", "device/1", b"on".to_vec(), Version { block_num: 0, tx_num: 0 });
//! state.apply(&batch, 0)?; // updates and savepoint, atomically and durably
//! assert_eq!(state.snapshot()?.get("ipe", "device/1")?.map(|v| v.value), Some(b"on".to_vec()));
//! # drop((blocks, state));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), ledger_types::store::StoreError>(())
//! ```

mod chain;
pub mod conformance;
pub mod file;
mod mem;
mod redb_state;

pub use chain::{block_tx_locations, envelope_tx_id};
pub use file::{FileBlockStore, FileStoreOptions};
pub use mem::{MemBlockStore, MemSnapshot, MemStateStore};
pub use redb_state::{
    DurableCommit, OVERLAY_MAX as STATE_OVERLAY_MAX, RedbSnapshot, RedbStateStore,
    SYNC_EVERY as STATE_SYNC_EVERY,
};

use ledger_types::store::StoreError;

/// Maps a redb error to a store error (redb's corruption reports become [`StoreError::Corrupt`]).
pub(crate) fn redb_err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(msg) => StoreError::Corrupt(format!("redb: {msg}")),
        redb::Error::Io(io) => StoreError::Io(io),
        other => StoreError::Backend(other.to_string()),
    }
}
