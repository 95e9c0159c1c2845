//! Fault injection on the block store's write path, compiled only with the `failpoints` feature.
//!
//! Every write-path operation (create a segment, sync the directory, write a record, sync the segment,
//! commit the index) first calls [`Faults::check`]. Once armed with `fail_after(n)`, the first `n` checks
//! pass and the next one fails with an injected I/O error; a failing record write first writes half of the
//! record, as a crash in the middle of `write` would. Without the feature, `check` is a no-op.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

#[cfg(feature = "failpoints")]
use std::sync::atomic::{AtomicU64, Ordering};

/// The armed fault, if any.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Checks left before the failure; `0` = disarmed, `k > 0` = the `k`-th check from now fails.
    #[cfg(feature = "failpoints")]
    countdown: AtomicU64,
}

impl Faults {
    /// Makes the check after `n` more passing checks fail.
    #[cfg(feature = "failpoints")]
    pub(crate) fn fail_after(&self, n: u64) {
        self.countdown.store(n.saturating_add(1), Ordering::SeqCst);
    }

    /// Whether the operation `op` may proceed.
    #[cfg(feature = "failpoints")]
    pub(crate) fn check(&self, op: &'static str) -> io::Result<()> {
        let prev = self
            .countdown
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1))
            .unwrap_or(0);
        if prev == 1 { Err(io::Error::other(format!("injected fault at {op}"))) } else { Ok(()) }
    }

    /// Whether the operation `op` may proceed (always, without the `failpoints` feature).
    #[cfg(not(feature = "failpoints"))]
    #[inline]
    pub(crate) fn check(&self, _op: &'static str) -> io::Result<()> {
        Ok(())
    }

    /// Writes a record at `offset`: the "write record" operation. An injected failure writes the first
    /// half of the bytes before failing, as a crash in the middle of the write would leave them.
    pub(crate) fn write_at(&self, file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(feature = "failpoints")]
        if let Err(e) = self.check("write record") {
            file.write_all_at(&bytes[..bytes.len() / 2], offset)?;
            return Err(e);
        }
        file.write_all_at(bytes, offset)
    }
}
