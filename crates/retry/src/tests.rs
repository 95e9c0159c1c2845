use std::time::Duration;

use proptest::prelude::*;

use super::*;

const MS: Duration = Duration::from_millis(1);

#[test]
fn ceilings_double_up_to_the_cap() {
    let b = Backoff::new(50 * MS, 2000 * MS);
    let ceilings: Vec<_> = (0..8).map(|n| b.ceiling(n)).collect();
    assert_eq!(ceilings, [50, 100, 200, 400, 800, 1600, 2000, 2000].map(|m| m * MS));
    // Shifts and products that overflow stay at the cap.
    assert_eq!(b.ceiling(31), 2000 * MS);
    assert_eq!(b.ceiling(32), 2000 * MS);
    assert_eq!(b.ceiling(u32::MAX), 2000 * MS);
    assert_eq!(Backoff::new(Duration::MAX, Duration::MAX).ceiling(3), Duration::MAX);
    // A base above the cap waits the cap.
    assert_eq!(Backoff::new(5000 * MS, 2000 * MS).ceiling(0), 2000 * MS);
}

#[test]
fn full_jitter_spans_zero_to_the_ceiling() {
    let b = Backoff::new(100 * MS, Duration::from_secs(10));
    assert_eq!(b.delay(0, 0), Some(Duration::ZERO));
    assert_eq!(b.delay(0, u64::MAX), Some(100 * MS));
    assert_eq!(b.delay(3, u64::MAX), Some(800 * MS));
    assert_eq!(b.delay(3, 1 << 63), Some(400 * MS));
    // Ceilings beyond u64 nanoseconds draw up to that.
    let huge = Backoff::new(Duration::MAX, Duration::MAX);
    assert_eq!(huge.delay(0, u64::MAX), Some(Duration::from_nanos(u64::MAX)));
}

#[test]
fn limits_end_the_retries() {
    let b = Backoff::new(MS, MS).with_max_retries(2);
    assert_eq!(b.max_retries(), Some(2));
    assert!(b.delay(1, 7).is_some());
    assert_eq!(b.delay(2, 7), None);
    let mut r = b.retries();
    assert!(r.next_delay(1).is_some() && r.next_delay(1).is_some());
    assert_eq!((r.next_delay(1), r.count()), (None, 2));
    r.reset();
    assert_eq!((r.next_delay(u64::MAX), r.count()), (Some(MS), 1));
    assert_eq!(Backoff::never().retries().next_delay(0), None);
    // Without a limit, retries go on at the cap.
    let mut r = Backoff::new(MS, 4 * MS).retries();
    let waits: Vec<_> = (0..100).map_while(|_| r.next_delay(u64::MAX)).collect();
    assert_eq!((waits.len(), waits[99]), (100, 4 * MS));
}

proptest! {
    #[test]
    fn waits_stay_within_the_ceiling_and_grow_with_the_draw(
        base_ms in 0u32..10_000, cap_ms in 0u32..100_000, retry in 0u32..80, a: u64, b: u64,
    ) {
        let p = Backoff::new(base_ms * MS, cap_ms * MS);
        let (lo, hi) = (a.min(b), a.max(b));
        let (dl, dh) = (p.delay(retry, lo).unwrap_or_default(), p.delay(retry, hi).unwrap_or_default());
        prop_assert!(dl <= dh && dh <= p.ceiling(retry) && p.ceiling(retry) <= p.cap());
    }
}
