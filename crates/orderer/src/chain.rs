//! The narrow seam between the rest of the node and ordering (Fabric's `consensus.Chain`): the gRPC
//! `Broadcast` handler only ever calls [`Chain::order`], so a single-node [`crate::solo::SoloChain`] can stand
//! in for the Raft cluster in tests.

use bytes::Bytes;
use futures::future::BoxFuture;

/// Why an envelope was not ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// This node is not the leader and could not hand the envelope on; `leader` is the Raft id of the
    /// leader when known. Retrying (here or at the leader) is safe: ordering is idempotent per tx id.
    #[error("not the leader (leader: {leader:?}); retry")]
    NotLeader {
        /// Raft id of the current leader, if known.
        leader: Option<u64>,
    },
    /// No outcome within the time limit, or the cluster has no quorum; the envelope may still be ordered
    /// later. Retrying is safe (idempotent per tx id).
    #[error("ordering unavailable: {0}")]
    Unavailable(String),
    /// The envelope is larger than the channel's absolute maximum (HTTP-like 413).
    #[error("envelope of {size} bytes exceeds the absolute maximum of {max} bytes")]
    TooLarge {
        /// Envelope size.
        size: usize,
        /// The channel's absolute maximum.
        max: usize,
    },
    /// The transaction id is already in the chain (a replay, or a retry of an envelope that was ordered):
    /// nothing new is ordered.
    #[error("transaction already ordered in block {block}")]
    AlreadyOrdered {
        /// The block holding the earlier envelope with this tx id.
        block: u64,
    },
    /// The chain has halted for good (storage failure, Raft fatal error) and orders nothing any more.
    #[error("ordering halted: {0}")]
    Halted(String),
}

/// Where an ordered envelope ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ordered {
    /// Number of the committed block that holds the envelope.
    pub block: u64,
}

/// An ordering service as the rest of the node sees it.
///
/// `order` resolves only once the block holding the envelope is committed (for Raft: appended to a
/// majority's logs and applied locally), so an acknowledged envelope is never lost. A tx id is ordered at
/// most once: submitting it again while it is pending waits for the same block; once it is in the chain,
/// a new submission is refused with [`OrderError::AlreadyOrdered`] (which a retrying client may take as
/// success).
pub trait Chain: Send + Sync + 'static {
    /// Orders an encoded envelope whose transaction id is `tx_id` (the caller has decoded and authorized it).
    fn order(&self, envelope: Bytes, tx_id: String) -> BoxFuture<'_, Result<Ordered, OrderError>>;

    /// Resolves once the chain can accept envelopes (a leader is known), or with the halt reason.
    fn wait_ready(&self) -> BoxFuture<'_, Result<(), OrderError>>;

    /// `Some(reason)` once the chain has halted and will not order anything again.
    fn errored(&self) -> Option<String>;
}

/// The wall clock of the ordering shell, for block times (Unix seconds and nanoseconds).
#[allow(clippy::disallowed_methods)]
pub(crate) fn wall_clock() -> ledger_types::proto::Timestamp {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    ledger_types::proto::Timestamp { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

/// Gives a freshly cut block its time (the wall clock, but never before `last`, the time of the previous
/// block this orderer cut or found in its store) and signs it as `signer` by Fabric's rule
/// ([`ledger_types::block::stamp`], [`ledger_types::block::sign`]). Returns the time given.
pub(crate) fn stamp_and_sign(
    block: &mut ledger_types::proto::Block,
    last: Option<ledger_types::proto::Timestamp>,
    signer: &dyn ledger_types::tx::Signer,
) -> ledger_types::proto::Timestamp {
    let now = wall_clock();
    let time = match last {
        Some(l) if (l.seconds, l.nanos) > (now.seconds, now.nanos) => l,
        _ => now,
    };
    ledger_types::block::stamp(block, Some(time));
    ledger_types::block::sign(block, signer);
    time
}

/// The time of the last block in `store` (None: empty, genesis, or a block without a time).
pub(crate) fn last_block_time(
    store: &dyn ledger_types::store::BlockStore,
) -> Option<ledger_types::proto::Timestamp> {
    use ledger_types::BlockExt;
    let h = store.height();
    store.block(h.checked_sub(1)?).ok().flatten()?.time()
}
