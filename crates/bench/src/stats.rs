//! Latency percentiles, one definition for every benchmark, and medians of run figures.
//!
//! Latencies go into an HDR histogram (`hdrhistogram`) to the microsecond with 5 significant digits: exact below
//! 262 ms, within 0.001% above, in memory bounded by the range of values rather than their count. A percentile
//! is taken by nearest rank: the smallest recorded latency that at least `p`% of all latencies do not exceed.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Significant decimal digits the histogram keeps.
const SIGFIG: u8 = 5;

/// Recorded latencies.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// None yet.
    pub fn new() -> Self {
        #[allow(clippy::expect_used)] // a constant within hdrhistogram's 0..=5
        Latencies(Histogram::new(SIGFIG).expect("5 significant digits are supported"))
    }

    /// Records one latency (to the microsecond; latencies beyond `u64` microseconds count as the longest).
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        // `record` grows the histogram as needed; past what it can grow to, the longest it tracks.
        if self.0.record(us).is_err() {
            self.0.saturating_record(us);
        }
    }

    /// Adds every latency of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        // Cannot fail: the histogram grows to what it is given.
        let _ = self.0.add(&other.0);
    }

    /// Forgets every latency.
    pub fn clear(&mut self) {
        self.0.reset();
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// No latency recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p`-th percentile (0.0..=100.0) by nearest rank; zero for no latencies.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.0.value_at_quantile(p / 100.0))
    }
}

impl Extend<Duration> for Latencies {
    fn extend<I: IntoIterator<Item = Duration>>(&mut self, latencies: I) {
        for l in latencies {
            self.record(l);
        }
    }
}

impl FromIterator<Duration> for Latencies {
    fn from_iter<I: IntoIterator<Item = Duration>>(latencies: I) -> Self {
        let mut l = Latencies::new();
        l.extend(latencies);
        l
    }
}

/// The `p`-th percentile (0.0..=100.0) of `samples` as [`Latencies::percentile`] takes it; zero for no samples.
/// (`&mut` is left from when this sorted in place; the samples are not changed.)
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.iter().copied().collect::<Latencies>().percentile(p)
}

/// The median of `values` (figures of whole runs, not latencies); zero for none.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

#[cfg(test)]
mod tests;
