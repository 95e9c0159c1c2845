//! Faults injected at the send and persist boundaries (only with the `failpoints` feature; run by
//! `scripts/test.d/orderer-failpoints.sh`).

use crate::cluster::check_chains;
use crate::support::{Cluster, load_until};
use orderer::failpoints::{RAFT_LOG_APPEND, RAFT_SEND, arm, disarm};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

async fn wait_acks(acked: &AtomicUsize, n: usize) {
    while acked.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A node other than `not` that reports itself leader.
async fn other_leader(c: &Cluster, not: usize) -> usize {
    for _ in 0..400 {
        for i in (0..3).filter(|i| *i != not) {
            if c.handle(i).raft().metrics().borrow().state == openraft::ServerState::Leader {
                return i;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no other leader elected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_that_cannot_send_is_replaced_and_rejoins() {
    let mut c = Cluster::new(3);
    c.start_all().await;
    c.leader().await;
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3).map(|i| c.broadcaster(i)).collect();
    let tasks: Vec<_> = (0..9)
        .map(|w| tokio::spawn(load_until(clients.clone(), w, 10_000, acked.clone(), stop.clone())))
        .collect();
    wait_acks(&acked, 100).await;

    // The leader's outgoing Raft messages fail from now on (a one-way partition).
    let old = (c.leader().await - 1) as usize;
    arm(&c.data_dir(old), RAFT_SEND, 0);
    let new = other_leader(&c, old).await;
    assert_ne!(new, old);
    let n = acked.load(Ordering::Relaxed);
    wait_acks(&acked, n + 100).await;

    // Healed: the old leader follows the new one and catches up.
    disarm(&c.data_dir(old), RAFT_SEND);
    let n = acked.load(Ordering::Relaxed);
    wait_acks(&acked, n + 50).await;
    stop.store(true, Ordering::Relaxed);
    let mut ids = HashSet::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    c.converge(2).await;
    let blocks = check_chains(&c, &ids);
    let signers: HashSet<Vec<u8>> = blocks.iter().skip(1).map(crate::cluster::block_signer).collect();
    assert!(signers.len() >= 2, "blocks cut by both leaders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_whose_log_write_fails_halts_and_recovers_after_restart() {
    let mut c = Cluster::new(3);
    c.start_all().await;
    let leader = (c.leader().await - 1) as usize;
    let follower = (leader + 1) % 3;
    arm(&c.data_dir(follower), RAFT_LOG_APPEND, 3);

    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3).map(|i| c.broadcaster(i)).collect();
    let tasks: Vec<_> = (0..6)
        .map(|w| tokio::spawn(load_until(clients.clone(), w, 30, acked.clone(), stop.clone())))
        .collect();
    let mut ids = HashSet::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    assert_eq!(ids.len(), 180);
    let reason = c.handle(follower).chain().errored();
    assert!(reason.is_some(), "the follower halted");

    disarm(&c.data_dir(follower), RAFT_LOG_APPEND);
    let kept = c.store(follower);
    c.kill(follower);
    c.start_with(follower, kept.clone(), kept).await;
    c.converge(2).await;
    check_chains(&c, &ids);
}
