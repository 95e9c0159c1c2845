//! Fabric's seek semantics as pure functions: which blocks a Deliver request asks for (`orderer.SeekInfo`,
//! as Fabric's `common/deliver` and `fileledger.Iterator` resolve it) and where a gateway `ChaincodeEvents`
//! stream starts and which events it passes (Fabric's `internal/pkg/gateway/chaincodeevents.go`). The
//! ledger height comes in as an argument; the shells own the waiting.

use crate::common::{ChannelHeader, Status};
use crate::orderer::{SeekInfo, SeekPosition, seek_info, seek_position};
use crate::protos::ChaincodeEvent;

/// Where a Deliver stream stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After sending this block (inclusive); then the stream answers `SUCCESS`.
    At(u64),
    /// Never: Fabric's loop stops only on a block whose number equals the stop, and this stop lies before
    /// the start (a `newest` stop resolved below a later start), so it streams on.
    Never,
}

/// A resolved Deliver request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverPlan {
    /// The first block to send.
    pub start: u64,
    /// Where to stop.
    pub stop: Stop,
    /// `FAIL_IF_NOT_READY`: answer `NOT_FOUND` instead of waiting when the next block is beyond the height.
    pub fail_if_not_ready: bool,
    /// `HEADER_WITH_SIG`: send blocks without their data.
    pub headers_only: bool,
}

/// A Deliver request refused before any block is sent, with the status Fabric answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeekError {
    /// `start` or `stop` is missing, or the stop position has no type (Fabric's own handling of an untyped
    /// stop is an unbounded stream; ipechain refuses it).
    #[error("seekInfo has a missing start or stop")]
    MissingPosition,
    /// A specified stop below the start.
    #[error("start number {start} greater than stop number {stop}")]
    StopBeforeStart {
        /// The resolved start.
        start: u64,
        /// The requested stop.
        stop: u64,
    },
    /// The start lies beyond the ledger's height (or the start position has no type, or the ledger is
    /// empty and the start is `newest`).
    #[error("start position not found")]
    StartNotFound,
}

impl SeekError {
    /// The `common.Status` Fabric's deliver service answers with.
    pub fn status(&self) -> Status {
        match self {
            SeekError::MissingPosition | SeekError::StopBeforeStart { .. } => Status::BadRequest,
            SeekError::StartNotFound => Status::NotFound,
        }
    }
}

/// Resolves a `SeekInfo` against a ledger of `height` blocks (numbers `0..height`).
///
/// Start: `oldest` → 0, `newest` → height − 1, `specified(n)` → n (n > height: not found; n = height waits),
/// `next_commit` → height. Stop: `oldest` → the start, `newest` → height − 1 (the start itself when start is
/// `newest` too), `specified(n)` → n (below the start: bad request).
pub fn plan_deliver(seek: &SeekInfo, height: u64) -> Result<DeliverPlan, SeekError> {
    let (Some(start), Some(stop)) = (&seek.start, &seek.stop) else {
        return Err(SeekError::MissingPosition);
    };
    let start_num = match &start.r#type {
        Some(seek_position::Type::Oldest(_)) => 0,
        Some(seek_position::Type::Newest(_)) => height.checked_sub(1).ok_or(SeekError::StartNotFound)?,
        Some(seek_position::Type::Specified(s)) if s.number > height => return Err(SeekError::StartNotFound),
        Some(seek_position::Type::Specified(s)) => s.number,
        Some(seek_position::Type::NextCommit(_)) => height,
        None => return Err(SeekError::StartNotFound),
    };
    let stop = match &stop.r#type {
        Some(seek_position::Type::Oldest(_)) => Stop::At(start_num),
        Some(seek_position::Type::Newest(_)) if start == stop => Stop::At(start_num),
        Some(seek_position::Type::Newest(_)) => match height.checked_sub(1) {
            Some(newest) if newest >= start_num => Stop::At(newest),
            _ => Stop::Never,
        },
        Some(seek_position::Type::Specified(s)) if s.number < start_num => {
            return Err(SeekError::StopBeforeStart { start: start_num, stop: s.number });
        }
        Some(seek_position::Type::Specified(s)) => Stop::At(s.number),
        Some(seek_position::Type::NextCommit(_)) | None => return Err(SeekError::MissingPosition),
    };
    Ok(DeliverPlan {
        start: start_num,
        stop,
        fail_if_not_ready: seek.behavior() == seek_info::SeekBehavior::FailIfNotReady,
        headers_only: seek.content_type() == seek_info::SeekContentType::HeaderWithSig,
    })
}

/// How far a Deliver request's timestamp may lie from the server's clock, in seconds: Fabric's deliver
/// handler's default `TimeWindow` (15 minutes). A signed seek request cannot be replayed much later.
pub const SEEK_TIME_WINDOW_SECS: i64 = 15 * 60;

/// A seek request's channel header timestamp missing, or more than [`SEEK_TIME_WINDOW_SECS`] from the
/// server's time (Fabric answers `BAD_REQUEST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeekTimeError {
    /// The channel header has no timestamp.
    #[error("channel header in envelope must contain timestamp")]
    Missing,
    /// The timestamp lies outside the window.
    #[error(
        "envelope timestamp {at} is more than {SEEK_TIME_WINDOW_SECS} s apart from current server time {now}"
    )]
    OutsideWindow {
        /// The request's time (Unix seconds).
        at: i64,
        /// The server's time (Unix seconds).
        now: i64,
    },
}

/// Checks a seek request's timestamp against the server's time `now` (Unix seconds), as Fabric's
/// `common/deliver` `validateChannelHeader` does.
pub fn check_seek_time(header: &ChannelHeader, now: i64) -> Result<(), SeekTimeError> {
    let at = header.timestamp.as_ref().ok_or(SeekTimeError::Missing)?.seconds;
    if at.abs_diff(now) > SEEK_TIME_WINDOW_SECS as u64 {
        return Err(SeekTimeError::OutsideWindow { at, now });
    }
    Ok(())
}

/// A `ChaincodeEventsRequest.start_position` Fabric's gateway does not accept (`INVALID_ARGUMENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid start position type")]
pub struct InvalidStartPosition;

/// The first block of a gateway `ChaincodeEvents` stream: the block holding `after_transaction_id` when the
/// ledger has it (`block_of_after_tx`), else the start position: `specified(n)` → n, `next_commit` or none →
/// the height; `oldest`/`newest` are refused.
pub fn chaincode_events_start(
    start_position: Option<&SeekPosition>,
    block_of_after_tx: Option<u64>,
    height: u64,
) -> Result<u64, InvalidStartPosition> {
    if let Some(block) = block_of_after_tx {
        return Ok(block);
    }
    match start_position.and_then(|p| p.r#type.as_ref()) {
        None | Some(seek_position::Type::NextCommit(_)) => Ok(height),
        Some(seek_position::Type::Specified(s)) => Ok(s.number),
        Some(seek_position::Type::Oldest(_) | seek_position::Type::Newest(_)) => Err(InvalidStartPosition),
    }
}

/// Which chaincode events a gateway `ChaincodeEvents` stream passes, fed the events of valid transactions in
/// ledger order: those of the requested chaincode, and, with an `after_transaction_id`, only after the event
/// of that transaction has gone by (it and everything before it are skipped).
#[derive(Debug, Clone)]
pub struct ChaincodeEventFilter {
    chaincode_id: String,
    after_tx_id: Option<String>,
}

impl ChaincodeEventFilter {
    /// A filter for `chaincode_id`, resuming after `after_transaction_id` (empty: from the start block).
    pub fn new(chaincode_id: &str, after_transaction_id: &str) -> ChaincodeEventFilter {
        let after_tx_id = (!after_transaction_id.is_empty()).then(|| after_transaction_id.to_owned());
        ChaincodeEventFilter { chaincode_id: chaincode_id.to_owned(), after_tx_id }
    }

    /// Whether `event` goes to the client.
    pub fn pass(&mut self, event: &ChaincodeEvent) -> bool {
        if let Some(after) = &self.after_tx_id {
            if event.tx_id == *after {
                self.after_tx_id = None;
            }
            return false;
        }
        event.chaincode_id == self.chaincode_id
    }
}

#[cfg(test)]
mod tests;
