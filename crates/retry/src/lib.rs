//! Retry timing: exponential back-off with full jitter, a cap, and an optional limit on retries.
//!
//! Retry `n` (counted from 0) waits a uniformly drawn time in `[0, min(cap, base · 2ⁿ)]` ("full jitter": clients
//! that failed together do not retry together). The policy is pure: it reads no clock, sleeps nowhere and draws no
//! randomness of its own. The caller, a shell, passes one random `u64` per retry and does the sleeping:
//!
//! ```
//! use std::time::Duration;
//! let policy = retry::Backoff::new(Duration::from_millis(100), Duration::from_secs(2)).with_max_retries(3);
//! let mut retries = policy.retries();
//! let mut waits = Vec::new();
//! while let Some(wait) = retries.next_delay(u64::MAX) {
//!     waits.push(wait); // a shell sleeps `wait` here, then tries again
//! }
//! assert_eq!(waits, [100, 200, 400].map(Duration::from_millis));
//! ```

use std::time::Duration;

/// How long to wait before each retry, and how many retries there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    max_retries: Option<u32>,
}

impl Backoff {
    /// Retries without limit; retry `n` waits at most `min(cap, base · 2ⁿ)`.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Backoff { base, cap, max_retries: None }
    }

    /// No retries at all: the first failure is final.
    pub const fn never() -> Self {
        Backoff { base: Duration::ZERO, cap: Duration::ZERO, max_retries: Some(0) }
    }

    /// At most `n` retries (`n + 1` attempts in all).
    #[must_use]
    pub const fn with_max_retries(self, n: u32) -> Self {
        Backoff { max_retries: Some(n), ..self }
    }

    /// The first retry's longest wait.
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// No wait is longer.
    pub const fn cap(&self) -> Duration {
        self.cap
    }

    /// The limit on retries, if any.
    pub const fn max_retries(&self) -> Option<u32> {
        self.max_retries
    }

    /// The longest wait before retry `retry` (0: the first): `min(cap, base · 2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        match 1u32.checked_shl(retry) {
            Some(factor) => self.base.saturating_mul(factor).min(self.cap),
            None => self.cap,
        }
    }

    /// The wait before retry `retry`, drawn from `random` (uniform over `u64` gives a uniform wait in
    /// `[0, ceiling(retry)]`, to the nanosecond); `None` once the retries are used up.
    pub fn delay(&self, retry: u32, random: u64) -> Option<Duration> {
        if self.max_retries.is_some_and(|max| retry >= max) {
            return None;
        }
        // Multiply-shift maps `random` onto 0..=span without division; waits beyond 584 years are not drawn.
        let span = u64::try_from(self.ceiling(retry).as_nanos()).unwrap_or(u64::MAX);
        let pick = (u128::from(random) * (u128::from(span) + 1)) >> 64;
        Some(Duration::from_nanos(u64::try_from(pick).unwrap_or(span)))
    }

    /// A counter of one operation's retries under this policy.
    pub const fn retries(self) -> Retries {
        Retries { policy: self, done: 0 }
    }
}

/// The retries of one operation so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    policy: Backoff,
    done: u32,
}

impl Retries {
    /// The wait before the next retry (counting it), or `None`: no retry is left.
    pub fn next_delay(&mut self, random: u64) -> Option<Duration> {
        let wait = self.policy.delay(self.done, random)?;
        self.done = self.done.saturating_add(1);
        Some(wait)
    }

    /// Retries granted so far.
    pub const fn count(&self) -> u32 {
        self.done
    }

    /// Starts over, after a success.
    pub fn reset(&mut self) {
        self.done = 0;
    }

    /// The policy.
    pub const fn policy(&self) -> Backoff {
        self.policy
    }
}

/// A random draw for [`Retries::next_delay`] from the operating system (feature `os-random`, for shells: cores
/// take the draw as an argument). Mid-range, so no jitter, in the unlikely case the system cannot give one.
#[cfg(feature = "os-random")]
pub fn os_random() -> u64 {
    use rand_core::RngCore as _;
    let mut b = [0u8; 8];
    match rand_core::OsRng.try_fill_bytes(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => u64::MAX / 2,
    }
}

#[cfg(test)]
mod tests;
