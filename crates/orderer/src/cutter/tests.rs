//! Unit tests of the block cutter.

use super::*;

fn cfg() -> CutterConfig {
    CutterConfig {
        max_message_count: 3,
        preferred_max_bytes: 100,
        absolute_max_bytes: 1000,
        batch_timeout: Duration::from_millis(50),
    }
}

/// Tests need some instant to start from; only offsets from it matter.
#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

fn sizes(batches: &[Vec<usize>]) -> Vec<Vec<usize>> {
    batches.to_vec()
}

#[test]
fn cuts_at_max_message_count() {
    let t0 = t0();
    let mut c = BlockCutter::new(cfg());
    assert!(c.ordered(t0, 1, 10).unwrap().is_empty());
    assert!(c.ordered(t0, 2, 10).unwrap().is_empty());
    assert_eq!(c.ordered(t0, 3, 10).unwrap(), vec![vec![1, 2, 3]]);
    assert_eq!(c.pending_len(), 0);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn overflowing_message_cuts_pending_first() {
    let t0 = t0();
    let mut c = BlockCutter::new(cfg());
    assert!(c.ordered(t0, 1, 60).unwrap().is_empty());
    // 60 + 50 > 100: the pending batch is cut, the new message starts the next one.
    assert_eq!(sizes(&c.ordered(t0, 2, 50).unwrap()), vec![vec![1]]);
    assert_eq!(c.pending_len(), 1);
    assert_eq!(c.pending_bytes(), 50);
    // exactly at the preferred maximum is still allowed
    assert!(c.ordered(t0, 3, 50).unwrap().is_empty());
    assert_eq!(c.pending_bytes(), 100);
}

#[test]
fn message_larger_than_preferred_is_cut_alone() {
    let t0 = t0();
    let mut c = BlockCutter::new(cfg());
    assert!(c.ordered(t0, 1, 10).unwrap().is_empty());
    assert_eq!(c.ordered(t0, 2, 500).unwrap(), vec![vec![1], vec![2]]);
    assert_eq!(c.pending_len(), 0);
    assert_eq!(c.poll_timeout(), None);
    // alone, with nothing pending: one batch
    assert_eq!(c.ordered(t0, 3, 101).unwrap(), vec![vec![3]]);
}

#[test]
fn larger_than_absolute_is_refused_and_changes_nothing() {
    let t0 = t0();
    let mut c = BlockCutter::new(cfg());
    assert!(c.ordered(t0, 1, 10).unwrap().is_empty());
    assert_eq!(c.ordered(t0, 2, 1001), Err(TooLarge { size: 1001, max: 1000 }));
    assert_eq!(c.pending_len(), 1);
    // exactly the absolute maximum is accepted (cut alone: above preferred)
    assert_eq!(c.ordered(t0, 3, 1000).unwrap(), vec![vec![1], vec![3]]);
}

#[test]
fn first_message_arms_the_timer() {
    let t0 = t0();
    let mut c = BlockCutter::new(cfg());
    assert_eq!(c.poll_timeout(), None);
    c.ordered(t0, 1, 10).unwrap();
    let deadline = t0 + Duration::from_millis(50);
    assert_eq!(c.poll_timeout(), Some(deadline));
    // a later message does not re-arm it
    c.ordered(t0 + Duration::from_millis(30), 2, 10).unwrap();
    assert_eq!(c.poll_timeout(), Some(deadline));
    assert_eq!(c.handle_timeout(t0 + Duration::from_millis(49)), None);
    assert_eq!(c.handle_timeout(deadline), Some(vec![1, 2]));
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.handle_timeout(deadline + Duration::from_secs(1)), None);
}

#[test]
fn timer_rearms_for_the_batch_after_a_size_cut() {
    let t0 = t0();
    let mut c = BlockCutter::new(cfg());
    c.ordered(t0, 1, 60).unwrap();
    let t1 = t0 + Duration::from_millis(20);
    c.ordered(t1, 2, 60).unwrap();
    assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_millis(50)));
}

#[test]
fn from_batch_config() {
    let c = CutterConfig::from(BatchConfig {
        max_message_count: 0,
        preferred_max_bytes: 5,
        absolute_max_bytes: 9,
        batch_timeout_ms: 7,
    });
    assert_eq!(c.max_message_count, 1);
    assert_eq!(c.batch_timeout, Duration::from_millis(7));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// For any sequence of message sizes: nothing is lost or reordered, oversized messages are refused,
        /// every batch respects the count limit, and a batch exceeds the preferred size only when it is a
        /// single message.
        #[test]
        fn batches_respect_the_limits(sizes in proptest::collection::vec(0usize..300, 0..200)) {
            let config = cfg();
            let mut c = BlockCutter::new(CutterConfig { absolute_max_bytes: 250, ..config });
            let t0 = t0();
            let mut out: Vec<Vec<(usize, usize)>> = Vec::new();
            let mut accepted = Vec::new();
            for (i, size) in sizes.iter().copied().enumerate() {
                match c.ordered(t0, (i, size), size) {
                    Ok(batches) => {
                        accepted.push(i);
                        out.extend(batches);
                    }
                    Err(e) => prop_assert!(size > 250 && e.size == size),
                }
            }
            out.extend(c.cut());
            let flat: Vec<usize> = out.iter().flatten().map(|(i, _)| *i).collect();
            prop_assert_eq!(flat, accepted);
            for b in &out {
                prop_assert!(!b.is_empty() && b.len() <= config.max_message_count);
                let bytes: usize = b.iter().map(|(_, s)| *s).sum();
                prop_assert!(bytes <= config.preferred_max_bytes || b.len() == 1);
            }
        }
    }
}
