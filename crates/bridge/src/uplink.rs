//! LwM2M → ledger: the commands of the uplink flow ([`crate::core::uplink::UplinkCore`], owned by the shell's
//! loop in [`crate::events`]): each submission and durable journal append in a task of its own, reporting back
//! to the loop.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lwm2m_server::lwm2m::ops::WriteMode;

use crate::core::JournalFailure;
use crate::core::uplink::{UplinkCommand, UplinkInput, UplinkOutcome, UplinkSubmitResult, WriteResult};
use crate::core::{LedgerFailure, UnixMillis};
use crate::{Shared, ledger};

fn submit_result(r: Result<Option<Vec<u8>>, ledger::SubmitError>) -> UplinkSubmitResult {
    match r {
        Ok(b) => UplinkSubmitResult::Committed(b),
        Err(ledger::SubmitError::Refused { status, message, .. }) => {
            UplinkSubmitResult::Refused { status, message }
        }
        Err(e) => UplinkSubmitResult::Failed(LedgerFailure(e.to_string())),
    }
}

/// How long one write of an answer waits for the device (a device in queue mode is written when it wakes).
const ANSWER_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Performs one of the uplink core's commands; what has a result reports back to the loop.
pub(crate) fn perform(shared: &Arc<Shared>, cmd: UplinkCommand) {
    let s = shared.clone();
    match cmd {
        UplinkCommand::Submit { endpoint, call } => {
            tokio::spawn(async move {
                let ipe = s.cfg.lwm2m_ledger.contract(&s.cfg.ipe_contract);
                let result = submit_result(ledger::submit(&ipe, &call).await);
                s.inbox.uplink(UplinkInput::Submitted { endpoint, result });
            });
        }
        UplinkCommand::Journal { entry, durable: false, .. } => shared.journal.append(entry),
        UplinkCommand::Journal { endpoint, entry, durable: true } => {
            tokio::spawn(async move {
                let result = s.journal.append_durable(entry).await.map_err(|e| {
                    tracing::error!(error = %e, "journal");
                    JournalFailure(e.to_string())
                });
                s.inbox.uplink(UplinkInput::Journaled { endpoint, result });
            });
        }
        UplinkCommand::SubmitTimeout { request_id, call } => {
            tokio::spawn(async move {
                let ipe = s.cfg.lwm2m_ledger.contract(&s.cfg.ipe_contract);
                let result = submit_result(ledger::submit(&ipe, &call).await);
                if let UplinkSubmitResult::Failed(e) = &result {
                    tracing::warn!(request = %request_id, error = %e, "closing a device request; retrying");
                }
                s.inbox.uplink(UplinkInput::TimeoutSubmitted { request_id, result });
            });
        }
        UplinkCommand::WriteDevice { seq, endpoint, path, records } => {
            tokio::spawn(async move {
                let timeout = Some(ANSWER_WRITE_TIMEOUT);
                let result = match s
                    .cfg
                    .lwm2m
                    .write(&endpoint, path, WriteMode::Update, records, None, timeout)
                    .await
                {
                    Ok(r) if r.code.is_success() => WriteResult::Written,
                    Ok(r) => WriteResult::Refused(r.code.to_string()),
                    Err(e) => {
                        tracing::debug!(endpoint = %endpoint, path = %path, error = %e, "answer not written");
                        WriteResult::Unreachable(e.to_string())
                    }
                };
                s.inbox.uplink(UplinkInput::Written { seq, result });
            });
        }
        UplinkCommand::Delivered { seq } => shared.inbox.done(seq),
        UplinkCommand::AnswerSend { receipt, answer } => {
            tokio::spawn(async move { s.cfg.lwm2m.answer_send(receipt, answer).await });
        }
        UplinkCommand::Outcome { outcome: UplinkOutcome::Recorded, .. } => {
            shared.stats.uplink_tx.fetch_add(1, Ordering::Relaxed);
        }
        UplinkCommand::Outcome { outcome: UplinkOutcome::TimedOut, .. } => {
            shared.stats.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        UplinkCommand::Outcome { subject, outcome: UplinkOutcome::NotRecorded(why) } => {
            shared.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(subject = %subject, error = %why, "LwM2M event not recorded on the ledger");
        }
    }
}

/// The time until `t` (zero if it passed).
pub(crate) fn until(t: UnixMillis) -> Duration {
    Duration::from_millis(u64::try_from(t.0.saturating_sub(crate::unix_now_ms().0)).unwrap_or(0))
}
