//! The block cutter: Fabric's `blockcutter` semantics as a pure state machine (no I/O, time as an argument).
//!
//! ```text
//!  ordered(now, msg) ──► size > absolute max?  ── yes ──► Err(TooLarge)  (413)
//!                        size > preferred max? ── yes ──► cut pending (if any), then cut msg alone
//!                        pending + size > preferred? ─ yes ► cut pending, then msg starts a new batch
//!                        append msg; count == max count? ─ yes ► cut
//!  the first message of a pending batch arms the timer: poll_timeout() says when,
//!  handle_timeout(now) cuts the pending batch once that instant has passed.
//! ```
//!
//! After every call to [`BlockCutter::ordered`] or [`BlockCutter::handle_timeout`] the caller must ask
//! [`BlockCutter::poll_timeout`] again, since either may arm or disarm the timer.

use ledger_types::proto::BatchConfig;
use std::time::{Duration, Instant};

/// Limits the cutter applies (Fabric's `BatchSize` and `BatchTimeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutterConfig {
    /// A batch is cut as soon as it holds this many messages (at least 1).
    pub max_message_count: usize,
    /// A batch is cut before it would exceed this many bytes; a larger message is cut alone.
    pub preferred_max_bytes: usize,
    /// Messages larger than this are refused.
    pub absolute_max_bytes: usize,
    /// A non-empty batch is cut at the latest this long after its first message arrived.
    pub batch_timeout: Duration,
}

impl From<BatchConfig> for CutterConfig {
    fn from(b: BatchConfig) -> CutterConfig {
        CutterConfig {
            max_message_count: (b.max_message_count as usize).max(1),
            preferred_max_bytes: b.preferred_max_bytes as usize,
            absolute_max_bytes: b.absolute_max_bytes as usize,
            batch_timeout: Duration::from_millis(u64::from(b.batch_timeout_ms)),
        }
    }
}

/// A message exceeds the absolute maximum size (HTTP-like status 413).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message of {size} bytes exceeds the absolute maximum of {max} bytes")]
pub struct TooLarge {
    /// Size of the refused message.
    pub size: usize,
    /// The configured absolute maximum.
    pub max: usize,
}

/// Accumulates messages into batches. `T` is whatever the caller keeps per message (bytes, ids, waiters).
#[derive(Debug)]
pub struct BlockCutter<T> {
    config: CutterConfig,
    pending: Vec<T>,
    pending_bytes: usize,
    deadline: Option<Instant>,
}

impl<T> BlockCutter<T> {
    /// An empty cutter.
    pub fn new(config: CutterConfig) -> BlockCutter<T> {
        BlockCutter { config, pending: Vec::new(), pending_bytes: 0, deadline: None }
    }

    /// The limits in force.
    pub fn config(&self) -> CutterConfig {
        self.config
    }

    /// Adds a message of `size` bytes received at `now`. Returns the batches cut by it (zero, one or two,
    /// oldest first), or refuses it when it is larger than the absolute maximum.
    pub fn ordered(&mut self, now: Instant, msg: T, size: usize) -> Result<Vec<Vec<T>>, TooLarge> {
        if size > self.config.absolute_max_bytes {
            return Err(TooLarge { size, max: self.config.absolute_max_bytes });
        }
        let mut batches = Vec::new();
        if size > self.config.preferred_max_bytes {
            if let Some(b) = self.cut() {
                batches.push(b);
            }
            batches.push(vec![msg]);
            return Ok(batches);
        }
        if self.pending_bytes + size > self.config.preferred_max_bytes
            && let Some(b) = self.cut()
        {
            batches.push(b);
        }
        if self.pending.is_empty() {
            self.deadline = Some(now + self.config.batch_timeout);
        }
        self.pending.push(msg);
        self.pending_bytes += size;
        if self.pending.len() >= self.config.max_message_count
            && let Some(b) = self.cut()
        {
            batches.push(b);
        }
        Ok(batches)
    }

    /// When the pending batch must be cut, if there is one: call [`BlockCutter::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Cuts the pending batch if its timer has expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Vec<T>> {
        match self.deadline {
            Some(d) if now >= d => self.cut(),
            _ => None,
        }
    }

    /// Cuts whatever is pending now (None when nothing is) and disarms the timer.
    pub fn cut(&mut self) -> Option<Vec<T>> {
        self.deadline = None;
        self.pending_bytes = 0;
        if self.pending.is_empty() { None } else { Some(std::mem::take(&mut self.pending)) }
    }

    /// Number of messages waiting in the pending batch.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Total size of the pending batch in bytes.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }
}

#[cfg(test)]
mod tests;
