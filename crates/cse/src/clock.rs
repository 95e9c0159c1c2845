//! The one place that reads the wall clock: microseconds since the Unix epoch.

/// Reads the system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// Microseconds since the Unix epoch (0 if the clock is before 1970).
    #[allow(clippy::disallowed_methods)] // the CSE shell's single clock: timestamps `ct`/`lt`/`et` need wall time
    pub fn now_micros(self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }
}
