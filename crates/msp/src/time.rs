//! `UnixTime`: the instant at which a certificate is checked, passed in by the caller.
//!
//! The crate never reads the clock; the shell passes `now` (or, when re-validating a block, the
//! transaction's timestamp).

/// Seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(i64);

impl UnixTime {
    /// From seconds since the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        UnixTime(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> i64 {
        self.0
    }

    /// This instant plus `days` days (saturating).
    pub const fn plus_days(self, days: i64) -> Self {
        UnixTime(self.0.saturating_add(days.saturating_mul(86_400)))
    }
}

impl std::fmt::Display for UnixTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}s", self.0)
    }
}
