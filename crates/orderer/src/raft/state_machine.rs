//! The replicated state machine: applies committed block entries to the orderer's [`BlockStore`].
//!
//! A block entry is appended only if it extends the chain (number == height, previous hash == last hash,
//! data hash correct); otherwise it is skipped. The decision depends only on the log and the chain, so
//! every orderer makes the same one. The block's `metadata[ORDERER]` gets the entry's Raft term and index
//! (that entry is outside what the leader signed, so its signature stays valid).
//!
//! Positions kept next to the Raft log (see `docs/ordering.md`):
//! - `applied` (log id, membership, height, head), saved without fsync after every applied batch: a hint
//!   used at start only if the block store really holds that chain;
//! - `snapshot`, saved durably when openraft takes one: the same position, which lets openraft purge the
//!   log before it. The blocks are not in the snapshot: an orderer that installs one (or restarts with a
//!   block store behind it) fetches the missing blocks from another orderer's `Deliver`.

use super::fetch::BlockFetcher;
use super::log_store::{read_meta, write_meta};
use super::{ApplyOutcome, TypeConfig, from_cbor, to_cbor};
use crate::sequencer::{ChainEvent, Errored, set_errored};
use ledger_types::BlockExt;
use ledger_types::Hash32;
use ledger_types::proto::Block;
use ledger_types::store::{BlockStore, StoreError};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use prost::Message;
use redb::{Database, Durability};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

type SErr = StorageError<u64>;

/// What a snapshot holds: the applied position and the chain head it corresponds to.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SnapshotData {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    height: u64,
    head: Option<[u8; 32]>,
}

/// The state machine; its durable state is the [`BlockStore`].
pub(crate) struct StateMachine {
    store: Arc<dyn BlockStore>,
    db: Arc<Database>,
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    events: mpsc::UnboundedSender<ChainEvent>,
    height: Arc<watch::Sender<u64>>,
    errored: Errored,
    fetcher: BlockFetcher,
}

/// How long an orderer keeps trying to fetch the blocks a snapshot stands for.
const FETCH_PATIENCE: Duration = Duration::from_secs(60);

/// A snapshot as persisted: openraft's meta and our data bytes.
type StoredSnapshot = (SnapshotMeta<u64, BasicNode>, Vec<u8>);

fn stored_snapshot(db: &Database) -> Option<StoredSnapshot> {
    read_meta(db, "snapshot").ok().flatten()
}

async fn save_snapshot(db: Arc<Database>, snap: &StoredSnapshot) -> Result<(), SErr> {
    let bytes =
        to_cbor(snap).map_err(|e| StorageIOError::write_snapshot(Some(snap.0.signature()), any(e)))?;
    write_meta(db, Durability::Immediate, "snapshot", bytes)
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(snap.0.signature()), e).into())
}

fn head_at(store: &dyn BlockStore, height: u64) -> Option<[u8; 32]> {
    height.checked_sub(1).and_then(|n| store.block(n).ok().flatten()).map(|b| b.header_hash().0)
}

fn any<E: std::fmt::Display>(e: E) -> AnyError {
    AnyError::error(e.to_string())
}

enum Verdict {
    Append(Block),
    AlreadyStored,
    Skip { number: u64, hash: Hash32, reason: String },
}

impl StateMachine {
    /// Opens the state machine at the best position the block store supports: the saved applied position
    /// if the store holds that chain, the last snapshot if it is further (fetching the blocks it stands for
    /// from the other orderers when the store is behind it), else the start of the log.
    pub(crate) async fn open(
        store: Arc<dyn BlockStore>,
        db: Arc<Database>,
        events: mpsc::UnboundedSender<ChainEvent>,
        height: Arc<watch::Sender<u64>>,
        errored: Errored,
        fetcher: BlockFetcher,
    ) -> Result<StateMachine, String> {
        let saved: Option<SnapshotData> = read_meta(&db, "applied").ok().flatten();
        let mut pos =
            saved.filter(|s| s.height <= store.height() && head_at(store.as_ref(), s.height) == s.head);
        if let Some((_, bytes)) = stored_snapshot(&db) {
            let snap: SnapshotData = from_cbor(&bytes).map_err(|e| format!("stored snapshot: {e}"))?;
            if pos.as_ref().is_none_or(|p| p.last_applied < snap.last_applied) {
                if store.height() < snap.height {
                    tracing::info!(
                        from = store.height(),
                        to = snap.height,
                        "fetching blocks behind the snapshot"
                    );
                    fetcher.catch_up(&store, snap.height, snap.head, FETCH_PATIENCE).await?;
                }
                if head_at(store.as_ref(), snap.height) != snap.head {
                    return Err(format!("block store differs from the snapshot at height {}", snap.height));
                }
                pos = Some(snap);
            }
        }
        if let Some(p) = &pos {
            tracing::info!(height = p.height, applied = ?p.last_applied, "resuming from a saved position");
        }
        height.send_replace(store.height());
        let (last_applied, membership) =
            pos.map_or((None, StoredMembership::default()), |s| (s.last_applied, s.membership));
        Ok(StateMachine { store, db, last_applied, membership, events, height, errored, fetcher })
    }

    fn judge(&self, bytes: &bytes::Bytes, log_id: &LogId<u64>) -> Result<Verdict, StoreError> {
        // Decoded from the shared entry: the envelopes are slices of it, not copies.
        let mut block = match Block::decode(bytes.clone()) {
            Ok(b) => b,
            Err(e) => {
                return Ok(Verdict::Skip {
                    number: 0,
                    hash: Hash32::ZERO,
                    reason: format!("undecodable block: {e}"),
                });
            }
        };
        let number = block.number();
        let hash = block.header_hash();
        let height = self.store.height();
        if number < height {
            let same = self.store.block(number)?.is_some_and(|b| b.header_hash() == hash);
            if same {
                return Ok(Verdict::AlreadyStored);
            }
            return Ok(Verdict::Skip {
                number,
                hash,
                reason: format!("number {number} below height {height}"),
            });
        }
        if number > height {
            return Ok(Verdict::Skip {
                number,
                hash,
                reason: format!("number {number} above height {height}"),
            });
        }
        let last = self.store.last_hash().map(|h| h.0.to_vec()).unwrap_or_default();
        let header = block.header.clone().unwrap_or_default();
        if header.previous_hash != last {
            return Ok(Verdict::Skip {
                number,
                hash,
                reason: "previous hash does not match the chain".into(),
            });
        }
        let empty = ledger_types::fabric_protos::common::BlockData::default();
        let data = block.data.as_ref().unwrap_or(&empty);
        if !ledger_types::block::data_hash_matches(&header.data_hash, data) {
            return Ok(Verdict::Skip { number, hash, reason: "data hash mismatch".into() });
        }
        block.set_raft_position(ledger_types::proto::RaftPosition {
            term: log_id.leader_id.term,
            index: log_id.index,
        });
        Ok(Verdict::Append(block))
    }

    async fn apply_block(&mut self, bytes: &bytes::Bytes, log_id: &LogId<u64>) -> Result<ApplyOutcome, SErr> {
        let verdict = self.judge(bytes, log_id).map_err(|e| StorageIOError::read_state_machine(any(e)))?;
        match verdict {
            Verdict::AlreadyStored => Ok(ApplyOutcome::default()),
            Verdict::Skip { number, hash, reason } => {
                tracing::debug!(number, %reason, index = log_id.index, "skipping block entry");
                let _ = self.events.send(ChainEvent::Skipped { number, hash });
                Ok(ApplyOutcome::default())
            }
            Verdict::Append(block) => {
                let number = block.number();
                let hash = block.header_hash();
                if let Err(e) = crate::failpoints::hit(&self.fetcher.dir, crate::failpoints::BLOCK_APPLY) {
                    set_errored(&self.errored, format!("appending block {number} failed: {e}"));
                    return Err(StorageIOError::write_state_machine(AnyError::error(e)).into());
                }
                let store = self.store.clone();
                let res = tokio::task::spawn_blocking(move || store.append(&block))
                    .await
                    .map_err(|e| StorageIOError::write_state_machine(any(e)))?;
                match res {
                    Ok(()) => {}
                    Err(StoreError::NotNext(reason)) => {
                        tracing::warn!(number, %reason, "store refused block entry; skipping");
                        let _ = self.events.send(ChainEvent::Skipped { number, hash });
                        return Ok(ApplyOutcome::default());
                    }
                    Err(e) => {
                        // Fatal for this orderer: it must not go on with a hole in its chain. Raft stops;
                        // the reason is kept for `Chain::errored` and `status`.
                        set_errored(&self.errored, format!("appending block {number} failed: {e}"));
                        return Err(StorageIOError::write_state_machine(any(e)).into());
                    }
                }
                self.height.send_replace(self.store.height());
                let _ = self.events.send(ChainEvent::Applied { number, hash });
                Ok(ApplyOutcome { appended: Some(number) })
            }
        }
    }

    fn snapshot_data(&self) -> SnapshotData {
        SnapshotData {
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            height: self.store.height(),
            head: self.store.last_hash().map(|h| h.0),
        }
    }
}

/// Builds snapshots of the applied position and persists them durably before openraft may purge the log.
pub(crate) struct SnapshotBuilder {
    data: SnapshotData,
    db: Arc<Database>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        let bytes = to_cbor(&self.data).map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        let meta = SnapshotMeta {
            last_log_id: self.data.last_applied,
            last_membership: self.data.membership.clone(),
            snapshot_id: format!(
                "{}-{}-height-{}",
                self.data.last_applied.map_or(0, |l| l.leader_id.term),
                self.data.last_applied.map_or(0, |l| l.index),
                self.data.height
            ),
        };
        save_snapshot(self.db.clone(), &(meta.clone(), bytes.clone())).await?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), SErr> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyOutcome>, SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            let outcome = match entry.payload {
                EntryPayload::Blank => ApplyOutcome::default(),
                EntryPayload::Normal(block) => self.apply_block(&block.0, &log_id).await?,
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(log_id), m);
                    ApplyOutcome::default()
                }
            };
            self.last_applied = Some(log_id);
            out.push(outcome);
        }
        // A hint for the next start (see the module docs); losing it only means a longer replay.
        if let Ok(bytes) = to_cbor(&self.snapshot_data())
            && let Err(e) = write_meta(self.db.clone(), Durability::None, "applied", bytes).await
        {
            tracing::warn!("saving the applied position: {e}");
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { data: self.snapshot_data(), db: self.db.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, SErr> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), SErr> {
        let bytes = snapshot.into_inner();
        let sig = Some(meta.signature());
        let data: SnapshotData =
            from_cbor(&bytes).map_err(|e| StorageIOError::read_snapshot(sig.clone(), any(e)))?;
        // The snapshot stands for blocks 0..height: fetch those this orderer lacks from the others.
        if self.store.height() < data.height {
            tracing::info!(
                from = self.store.height(),
                to = data.height,
                "installing snapshot: fetching blocks"
            );
            if let Err(e) = self.fetcher.catch_up(&self.store, data.height, data.head, FETCH_PATIENCE).await {
                set_errored(&self.errored, format!("installing snapshot: {e}"));
                return Err(StorageIOError::read_snapshot(sig, AnyError::error(e)).into());
            }
        }
        if head_at(self.store.as_ref(), data.height) != data.head {
            let e = format!("block store differs from the snapshot at height {}", data.height);
            set_errored(&self.errored, e.clone());
            return Err(StorageIOError::read_snapshot(sig, AnyError::error(e)).into());
        }
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        save_snapshot(self.db.clone(), &(meta.clone(), bytes)).await?;
        if let Ok(b) = to_cbor(&self.snapshot_data()) {
            let _ = write_meta(self.db.clone(), Durability::None, "applied", b).await;
        }
        self.height.send_replace(self.store.height());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        Ok(stored_snapshot(&self.db)
            .map(|(meta, bytes)| Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) }))
    }
}
