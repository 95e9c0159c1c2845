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
