//! Benchmarks of a running network, as a black box through the client SDK.
//!
//! Figures are reported as medians and percentiles of what was measured, never as pass/fail thresholds.

pub mod ledger;
pub mod report;
pub mod stats;
