//! Observe (RFC 7641) notification freshness: sequence numbers with a 2^23 window and a 128 s escape.

use std::time::{Duration, Instant};

/// RFC 7641 §3.4: whether notification `v2` received at `t2` is newer than `v1` received at `t1`.
pub fn is_fresh(v1: u32, t1: Instant, v2: u32, t2: Instant) -> bool {
    const HALF: u32 = 1 << 23;
    (v1 < v2 && v2 - v1 < HALF)
        || (v1 > v2 && v1 - v2 > HALF)
        || t2.saturating_duration_since(t1) > Duration::from_secs(128)
}
