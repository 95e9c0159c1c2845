//! The one place that reads the clock: wall time (microseconds since the Unix epoch) for timestamps, and a
//! monotonic instant for the benchmark.

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

    /// A monotonic instant (for measuring durations).
    #[allow(clippy::disallowed_methods)] // the CSE shell's single clock: the benchmark measures elapsed time
    pub fn instant(self) -> std::time::Instant {
        std::time::Instant::now()
    }
}
