//! Commit outcomes for [`ContractClient::submit`](crate::ContractClient::submit), from one filtered-block
//! stream per [`Gateway`](crate::Gateway) instead of one signed `CommitStatus` call per transaction.
//!
//! ```text
//!  submit(tx) ── expect(tx id) ──► endorse ─► submit ─► await outcome
//!                    │                                    ▲
//!  watcher task: DeliverFiltered from the height read ────┘ (block, [(tx id, code)]): pending ids only
//!                before the first expect()
//! ```
//!
//! The stream starts at the peer's height read *before* the first transaction was registered, so every
//! transaction registered later commits in a block the stream delivers: none can be missed. Outcomes of
//! transactions nobody registered (other clients') are ignored, so memory is bounded by the waiting
//! submissions. When the stream ends or fails, every waiter is released without an outcome and falls back
//! to a `CommitStatus` call; the next submission starts a new watcher.

use ledger_types::TxValidationCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// A commit outcome: validation code and block number.
pub(crate) type Outcome = (TxValidationCode, u64);

#[derive(Default)]
struct State {
    pending: HashMap<String, oneshot::Sender<Outcome>>,
    /// False once the stream ended: registrations are refused then.
    ended: bool,
}

/// The pending transactions of one filtered-block stream.
#[derive(Default)]
pub(crate) struct Watcher {
    state: Mutex<State>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Watcher {
    /// Whether the stream still runs.
    pub(crate) fn alive(&self) -> bool {
        !lock(&self.state).ended
    }

    /// Registers a transaction before it is submitted; `None` when the stream already ended. Dropping the
    /// returned guard unregisters it.
    pub(crate) fn expect(self: &Arc<Self>, tx_id: &str) -> Option<Pending> {
        let (tx, rx) = oneshot::channel();
        let mut s = lock(&self.state);
        if s.ended {
            return None;
        }
        s.pending.insert(tx_id.to_owned(), tx);
        Some(Pending { watcher: self.clone(), tx_id: tx_id.to_owned(), rx: Some(rx) })
    }

    /// A block's outcomes.
    pub(crate) fn block(&self, number: u64, txs: Vec<(String, TxValidationCode)>) {
        let mut s = lock(&self.state);
        if s.pending.is_empty() {
            return;
        }
        for (id, code) in txs {
            if let Some(w) = s.pending.remove(&id) {
                let _ = w.send((code, number));
            }
        }
    }

    /// The stream ended: every waiter is released without an outcome.
    pub(crate) fn end(&self) {
        let mut s = lock(&self.state);
        s.ended = true;
        s.pending.clear();
    }

    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        lock(&self.state).pending.len()
    }
}

/// A registered transaction.
pub(crate) struct Pending {
    watcher: Arc<Watcher>,
    tx_id: String,
    rx: Option<oneshot::Receiver<Outcome>>,
}

impl Pending {
    /// The outcome, or `None` when the stream ended first.
    pub(crate) async fn outcome(mut self) -> Option<Outcome> {
        self.rx.take()?.await.ok()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        lock(&self.watcher.state).pending.remove(&self.tx_id);
    }
}

#[cfg(test)]
mod tests;
