//! The replicated state machine: applies committed block entries to the orderer's [`BlockStore`].
//!
//! A block entry is appended only if it extends the chain (number == height, previous hash == last hash,
//! data hash correct); otherwise it is skipped. The decision depends only on the log and the chain, so
//! every orderer makes the same one. The block's metadata gets the entry's Raft term and index (the
//! metadata is not hashed, so the leader's signature over the header hash stays valid).
//!
//! The applied position (log id, membership, chain height and head) is saved after every applied batch,
//! without fsync, next to the Raft log. At start it is used only if the block store really holds that
//! chain (height and head hash match); otherwise (a lost or older block store) openraft re-applies the log
//! from the start, and blocks the store already holds are recognised and passed over. The log is never
//! purged (no snapshots are taken), so this always works; see `docs/ordering.md`.

use super::log_store::{read_meta, write_meta};
use super::{ApplyOutcome, TypeConfig, from_cbor, to_cbor};
use crate::sequencer::{ChainEvent, Errored, set_errored};
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
    snapshot: Option<(SnapshotMeta<u64, BasicNode>, Vec<u8>)>,
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
    pub(crate) fn new(
        store: Arc<dyn BlockStore>,
        db: Arc<Database>,
        events: mpsc::UnboundedSender<ChainEvent>,
        height: Arc<watch::Sender<u64>>,
        errored: Errored,
    ) -> StateMachine {
        let saved: Option<SnapshotData> = read_meta(&db, "applied").ok().flatten();
        let saved = saved.filter(|s| {
            let head = s
                .height
                .checked_sub(1)
                .and_then(|n| store.block(n).ok().flatten())
                .map(|b| b.header_hash().0);
            s.height <= store.height() && head == s.head
        });
        if let Some(s) = &saved {
            tracing::info!(height = s.height, applied = ?s.last_applied, "resuming from the saved applied position");
        }
        let (last_applied, membership) =
            saved.map_or((None, StoredMembership::default()), |s| (s.last_applied, s.membership));
        StateMachine { store, db, last_applied, membership, events, height, errored, snapshot: None }
    }

    fn judge(&self, bytes: &[u8], log_id: &LogId<u64>) -> Result<Verdict, StoreError> {
        let mut block = match Block::decode(bytes) {
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
        let last = self.store.last_hash().unwrap_or(Hash32::ZERO);
        let header = block.header.clone().unwrap_or_default();
        if header.previous_hash != last.0 {
            return Ok(Verdict::Skip {
                number,
                hash,
                reason: "previous hash does not match the chain".into(),
            });
        }
        let data = block.data.clone().unwrap_or_default();
        if header.data_hash != Hash32::of(&data.encode_to_vec()).0 {
            return Ok(Verdict::Skip { number, hash, reason: "data hash mismatch".into() });
        }
        let meta = block.metadata.get_or_insert_with(Default::default);
        meta.raft_term = log_id.leader_id.term;
        meta.raft_index = log_id.index;
        Ok(Verdict::Append(block))
    }

    async fn apply_block(&mut self, bytes: &[u8], log_id: &LogId<u64>) -> Result<ApplyOutcome, SErr> {
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

/// Builds snapshots of the applied position (used only if the log is ever purged).
pub(crate) struct SnapshotBuilder {
    data: SnapshotData,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        let bytes = to_cbor(&self.data).map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        let meta = SnapshotMeta {
            last_log_id: self.data.last_applied,
            last_membership: self.data.membership.clone(),
            snapshot_id: format!("height-{}", self.data.height),
        };
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
        SnapshotBuilder { data: self.snapshot_data() }
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
        let data: SnapshotData =
            from_cbor(&bytes).map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), any(e)))?;
        // The blocks themselves are not in the snapshot. Since the log is never purged, a leader never
        // needs to send one; refuse rather than pretend to be caught up.
        if self.store.height() < data.height {
            return Err(StorageIOError::read_snapshot(
                Some(meta.signature()),
                AnyError::error(format!(
                    "snapshot at height {} but local chain has height {}; fetching blocks for snapshots is not implemented",
                    data.height,
                    self.store.height()
                )),
            )
            .into());
        }
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.snapshot = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        Ok(self.snapshot.as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(bytes.clone())),
        }))
    }
}
