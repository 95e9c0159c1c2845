//! The one place this crate reads clocks.

use std::time::{Instant, SystemTime};

/// Monotonic time for the CoAP endpoint, from tokio's clock so `start_paused` tests control it.
#[allow(clippy::disallowed_methods)] // the shell's single monotonic clock read
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Wall-clock time, only for registration dates shown to operators.
#[allow(clippy::disallowed_methods)] // the shell's single wall-clock read
pub(crate) fn wall() -> SystemTime {
    SystemTime::now()
}
