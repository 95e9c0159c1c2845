use super::*;

#[test]
fn percentiles_by_nearest_rank() {
    let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
    assert_eq!(percentile(&mut v, 50.0), Duration::from_millis(50));
    assert_eq!(percentile(&mut v, 99.0), Duration::from_millis(99));
    assert_eq!(percentile(&mut v, 100.0), Duration::from_millis(100));
    assert_eq!(percentile(&mut [], 50.0), Duration::ZERO);
}

#[test]
fn medians() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    assert_eq!(median(&[]), 0.0);
}

#[test]
fn latencies_by_nearest_rank_to_the_microsecond() {
    let us = Duration::from_micros;
    // Nearest rank: ceil(p/100 · n), at least the first.
    let l: Latencies = [3, 1, 2, 4].into_iter().map(us).collect();
    assert_eq!(l.len(), 4);
    assert_eq!(
        [0.0, 25.0, 25.1, 50.0, 75.0, 99.9, 100.0].map(|p| l.percentile(p)),
        [1, 1, 2, 2, 3, 4, 4].map(us)
    );
    // Exact to the microsecond below 262 ms; within 0.001% above.
    let l: Latencies = [us(262_143), us(1), Duration::from_nanos(1_999)].into_iter().collect();
    assert_eq!(l.percentile(100.0), us(262_143));
    assert_eq!(l.percentile(0.0), us(1), "sub-microsecond parts are dropped");
    let long = Duration::from_secs(30);
    let got = [long].into_iter().collect::<Latencies>().percentile(50.0);
    assert!(got >= long && got - long <= long / 100_000, "{got:?}");
    // Merging, clearing, extremes.
    let mut a: Latencies = [us(10)].into_iter().collect();
    a.merge(&[us(20), us(30)].into_iter().collect());
    assert_eq!((a.len(), a.percentile(50.0)), (3, us(20)));
    a.clear();
    assert!(a.is_empty() && a.percentile(99.0) == Duration::ZERO);
    a.record(Duration::from_secs(3600));
    assert!(a.percentile(100.0) >= Duration::from_secs(3600));
}
