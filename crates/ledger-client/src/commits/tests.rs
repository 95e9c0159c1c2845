//! Unit tests of the commit watcher.

use super::*;
use ledger_types::TxValidationCode::{MvccReadConflict, Valid};

#[tokio::test]
async fn registered_transactions_get_their_outcome_and_others_are_ignored() {
    let w = Arc::new(Watcher::default());
    let a = w.expect("a").unwrap();
    let b = w.expect("b").unwrap();
    w.block(7, vec![("x".into(), Valid), ("a".into(), Valid)]);
    w.block(8, vec![("b".into(), MvccReadConflict)]);
    assert_eq!(a.outcome().await, Some((Valid, 7)));
    assert_eq!(b.outcome().await, Some((MvccReadConflict, 8)));
    assert_eq!(w.pending(), 0, "outcomes of unregistered ids are not kept");
}

#[tokio::test]
async fn a_dropped_registration_is_forgotten_and_an_ended_stream_releases_waiters() {
    let w = Arc::new(Watcher::default());
    drop(w.expect("gone").unwrap());
    assert_eq!(w.pending(), 0);
    let waiting = w.expect("late").unwrap();
    w.end();
    assert_eq!(waiting.outcome().await, None, "released without an outcome: the caller falls back");
    assert!(!w.alive());
    assert!(w.expect("after").is_none(), "an ended watcher takes no registration");
}
