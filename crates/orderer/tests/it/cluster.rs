//! A 3-orderer Raft cluster over loopback gRPC with mutual TLS.

use crate::support::{CHANNEL, Cluster, FailAfter, MemStore, envelope, load_until, load_worker, tx_counts};
use futures::StreamExt;
use ledger_types::BlockExt;
use ledger_types::store::BlockStore;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_orderers_agree_on_1000_envelopes() {
    let mut c = Cluster::new(3);
    c.start_all().await;
    let leader = c.leader().await;

    // Follow new blocks on orderer 1 from the start, while the load runs.
    let mut follow = c.deliver(0, 0, None).await;

    let total = 1000u64;
    let workers = 20u64;
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let mut client = c.broadcaster((w % 3) as usize);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for k in 0..total / workers {
                let (env, id) = envelope(CHANNEL, format!("w{w}k{k}").as_bytes(), w * 1_000_000 + k);
                let resp = client.broadcast(env).await.expect("broadcast accepted").into_inner();
                assert_eq!(resp.status, 200, "{resp:?}");
                ids.push(id);
            }
            ids
        }));
    }
    let mut acked = HashSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert_eq!(acked.len() as u64, total);
    // A figure for the log, not an assertion.
    eprintln!("{total} envelopes acknowledged in {:?} by {workers} sequential clients", started.elapsed());

    let height = c.converge(2).await;
    let blocks = c.store(0).blocks();
    for i in 1..3 {
        assert_eq!(c.store(i).blocks(), blocks, "orderer {} holds a different chain", i + 1);
    }
    let counts = tx_counts(&blocks);
    assert_eq!(counts.len() as u64, total);
    let consenters = ledger_types::config::config_from_genesis(&blocks[0]).unwrap().consenters;
    for id in &acked {
        assert_eq!(counts.get(id), Some(&1), "tx {id} must be in exactly one block");
    }
    for i in 0..3 {
        let m = c.handle(i).raft().metrics().borrow().clone();
        assert!(m.snapshot.is_some() && m.purged.is_some(), "orderer {} snapshots and purges its log", i + 1);
    }
    for (i, b) in blocks.iter().enumerate().skip(1) {
        b.check_links(Some(&blocks[i - 1])).unwrap();
        let sigs = ledger_types::fabric_protos::hash::block_signatures(b).unwrap();
        assert_eq!(sigs.len(), 1, "block {i} is signed by its leader");
        let ledger_types::fabric_protos::hash::BlockSigner::Creator(signer) = &sigs[0].signer else {
            panic!("block {i} names its signer by id")
        };
        assert!(consenters.iter().any(|c| &c.identity == signer), "block {i} is signed by a consenter");
        let pos = b.raft_position().unwrap();
        assert!(pos.term > 0 && pos.index > 0);
        assert!(b.envelopes().len() <= 50, "max message count respected");
    }

    // The follower stream saw every block exactly once, in order.
    for want in 0..height {
        let msg =
            tokio::time::timeout(Duration::from_secs(5), follow.next()).await.unwrap().unwrap().unwrap();
        let b = msg.block.unwrap();
        assert_eq!(b.number(), want);
        assert_eq!(b.header_hash(), blocks[want as usize].header_hash());
    }

    // A bounded Deliver ends with a status message.
    let mut bounded = c.deliver(2, 1, Some(height - 1)).await;
    let mut n = 1;
    while let Some(msg) = bounded.next().await {
        let msg = msg.unwrap();
        match msg.block {
            Some(b) => {
                assert_eq!(b.number(), n);
                n += 1;
            }
            None => {
                assert_eq!(msg.status, 200);
                break;
            }
        }
    }
    assert_eq!(n, height);

    // Status agrees with the chain; all three name the same leader (which may have changed since the
    // start if an election happened under load, so look until the view is stable).
    let _ = leader;
    let mut agreed = false;
    for _ in 0..40 {
        let sts = [c.status(0).await, c.status(1).await, c.status(2).await];
        for st in &sts {
            assert_eq!(st.role, "orderer");
            assert_eq!(st.channel_id, CHANNEL);
            assert_eq!(st.height, height);
            assert_eq!(st.head_hash, blocks.last().unwrap().header_hash().to_hex());
            assert!(st.raft_term > 0);
        }
        let l = sts[0].raft_leader;
        if l != 0
            && sts.iter().all(|s| s.raft_leader == l)
            && sts
                .iter()
                .enumerate()
                .all(|(i, s)| s.raft_state == if i as u64 + 1 == l { "leader" } else { "follower" })
        {
            agreed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(agreed, "status never showed one agreed leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_crash_then_restart_catches_up() {
    let mut c = Cluster::new(3);
    c.start_all().await;
    c.leader().await;

    // Clients keep submitting (each envelope retried through the orderers in turn until acknowledged)
    // until told to stop; progress is measured in acknowledgements, not in time.
    let acked_count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3).map(|i| c.broadcaster(i)).collect();
    let tasks: Vec<_> = (0..12)
        .map(|w| tokio::spawn(load_until(clients.clone(), w, 10_000, acked_count.clone(), stop.clone())))
        .collect();
    let wait_acks = |n: usize| {
        let acked_count = acked_count.clone();
        async move {
            while acked_count.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };

    // Crash the leader mid-load; the others elect a new one and go on.
    wait_acks(150).await;
    let old_leader = c.leader().await;
    let old_idx = (old_leader - 1) as usize;
    let before_crash = c.store(old_idx).height();
    c.kill(old_idx);
    let new_leader = c.leader().await;
    assert_ne!(new_leader, old_leader);
    let at_crash = acked_count.load(Ordering::Relaxed);
    wait_acks(at_crash + 150).await;

    // Restart the old leader from its data dir while the load goes on (its in-memory blocks were lost
    // with the crash: it gets them back from the log and the others' Deliver).
    c.start(old_idx).await;
    let at_restart = acked_count.load(Ordering::Relaxed);
    wait_acks(at_restart + 100).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = HashSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let height = c.converge(before_crash).await;
    let blocks = c.store(0).blocks();
    for i in 1..3 {
        assert_eq!(c.store(i).blocks(), blocks, "orderer {} holds a different chain", i + 1);
    }
    assert_eq!(blocks.len() as u64, height);
    let counts = tx_counts(&blocks);
    for id in &acked {
        assert_eq!(counts.get(id), Some(&1), "acknowledged tx {id} must be in exactly one block");
    }
    assert!(counts.values().all(|n| *n == 1), "no envelope ordered twice");
    // Blocks were cut (and signed) by the crashed leader and by its successor. (openraft identifies a
    // leader by term *and* node id, so the signer, not the term, tells them apart.)
    let signers: HashSet<Vec<u8>> = blocks.iter().skip(1).map(block_signer).collect();
    assert!(signers.len() >= 2, "blocks cut by {} leader(s), {before_crash} before the crash", signers.len());

    // The restarted node orders again: broadcast through it.
    let (env, id) = envelope(CHANNEL, b"after restart", 999_999_999);
    let resp = c.broadcaster(old_idx).broadcast(env).await.unwrap().into_inner();
    assert_eq!(resp.status, 200);
    let h = c.converge(height + 1).await;
    assert_eq!(tx_counts(&c.store(old_idx).blocks()).get(&id), Some(&1));
    assert!(h > height);
}

/// Checks the end state: identical chains, every acknowledged tx exactly once, nothing twice.
pub(crate) fn check_chains(c: &Cluster, acked: &HashSet<String>) -> Vec<ledger_types::proto::Block> {
    let blocks = c.store(0).blocks();
    for i in 1..3 {
        assert_eq!(c.store(i).blocks(), blocks, "orderer {} holds a different chain", i + 1);
    }
    for (i, b) in blocks.iter().enumerate().skip(1) {
        b.check_links(Some(&blocks[i - 1])).unwrap();
    }
    let counts = tx_counts(&blocks);
    for id in acked {
        assert_eq!(counts.get(id), Some(&1), "acknowledged tx {id} must be in exactly one block");
    }
    assert!(counts.values().all(|n| *n == 1), "no envelope ordered twice");
    blocks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_one_orderer_may_crash_repeatedly() {
    let mut c = Cluster::new(3);
    c.start_all().await;
    c.leader().await;
    let (workers, per) = (9u64, 40u64);
    let acked_count = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..3).map(|i| c.broadcaster(i)).collect();
    let tasks: Vec<_> = (0..workers)
        .map(|w| tokio::spawn(load_worker(clients.clone(), w, per, acked_count.clone())))
        .collect();

    // Crash the leader, then a follower, then the leader again, each restarted from its data dir. The
    // follower keeps its block store (a durable one resumes from its saved applied position); the
    // leaders lose theirs (rebuilt from the Raft log).
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let leader = (c.leader().await - 1) as usize;
        let victim = if round % 2 == 0 { leader } else { (leader + 1) % 3 };
        let kept = c.store(victim);
        c.kill(victim);
        tokio::time::sleep(Duration::from_millis(400)).await;
        if round % 2 == 0 {
            c.start(victim).await;
        } else {
            c.start_with(victim, kept.clone(), kept).await;
        }
    }
    let mut acked = HashSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert_eq!(acked.len() as u64, workers * per);
    c.converge(2).await;
    check_chains(&c, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_disk_halts_one_orderer_and_the_others_go_on() {
    let mut c = Cluster::new(3);
    c.start(0).await;
    c.start(1).await;
    // Orderer 3 can store genesis and two more blocks, then its disk fails.
    let inner = Arc::new(MemStore::default());
    let failing = Arc::new(FailAfter { inner: inner.clone(), ok: AtomicUsize::new(3) });
    c.start_with(2, failing, inner).await;
    c.leader().await;

    let acked_count = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..2).map(|i| c.broadcaster(i)).collect();
    let tasks: Vec<_> =
        (0..4).map(|w| tokio::spawn(load_worker(clients.clone(), w, 50, acked_count.clone()))).collect();
    let mut acked = HashSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert_eq!(acked.len(), 200);

    // Orderer 3 halted with a clear reason instead of going on with a hole in its chain.
    let reason = c.handle(2).chain().errored();
    assert!(reason.as_deref().is_some_and(|r| r.contains("injected: disk failed")), "{reason:?}");
    assert_eq!(c.store(2).blocks().len(), 3);
    let st = c.status(2).await;
    assert!(st.raft_state.starts_with("halted: ") && st.raft_state.contains("injected"), "{st:?}");

    // Replaced by a healthy disk, it catches up from the log.
    c.kill(2);
    c.start(2).await;
    c.converge(4).await;
    check_chains(&c, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_orderer_installs_a_snapshot_and_fetches_the_blocks() {
    let mut c = Cluster::new(3);
    c.start(0).await;
    c.start(1).await;
    c.leader().await;
    let acked_count = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..2).map(|i| c.broadcaster(i)).collect();
    let tasks: Vec<_> =
        (0..6).map(|w| tokio::spawn(load_worker(clients.clone(), w, 50, acked_count.clone()))).collect();
    let mut acked = HashSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    // The leader snapshots and purges the start of its log in the background, soon after the load (which
    // is fast: at this rate the leader cuts a block as soon as none is in flight).
    let leader = (c.leader().await - 1) as usize;
    let purged = c
        .handle(leader)
        .raft()
        .wait(Some(Duration::from_secs(15)))
        .metrics(|m| m.purged.is_some_and(|p| p.index > 0), "the leader purged the start of its log")
        .await
        .map(|m| m.purged);
    assert!(purged.is_ok(), "leader purged its log: {purged:?}");

    // Orderer 3 starts with nothing: it cannot get the purged entries, only a snapshot, and fetches
    // the blocks the snapshot stands for from the others' Deliver.
    c.start(2).await;
    let height = c.converge(2).await;
    check_chains(&c, &acked);
    let m = c.handle(2).raft().metrics().borrow().clone();
    assert!(m.snapshot.is_some(), "orderer 3 installed a snapshot");

    // It takes part in ordering afterwards.
    let (env, _) = envelope(CHANNEL, b"after snapshot", 888_888_888);
    assert_eq!(c.broadcaster(2).broadcast(env).await.unwrap().into_inner().status, 200);
    c.converge(height + 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliver_resumes_at_another_orderer_without_gaps_or_duplicates() {
    let mut c = Cluster::new(3);
    c.start_all().await;
    let leader = (c.leader().await - 1) as usize;
    let acked_count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3).map(|i| c.broadcaster(i)).collect();
    let tasks: Vec<_> = (0..6)
        .map(|w| tokio::spawn(load_until(clients.clone(), w, 10_000, acked_count.clone(), stop.clone())))
        .collect();

    // A reader follows the leader; the leader crashes; the reader resumes at the next block elsewhere.
    let mut seen: Vec<ledger_types::proto::Block> = Vec::new();
    let mut stream = c.deliver(leader, 0, None).await;
    while seen.len() < 10 {
        let b = stream.next().await.unwrap().unwrap().block.unwrap();
        seen.push(b);
    }
    c.kill(leader);
    // Whatever was already in flight on the old stream may still arrive, then the stream ends.
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(2), stream.next()).await {
        if let Some(b) = msg.block {
            seen.push(b);
        }
    }
    let other = (leader + 1) % 3;
    let mut resumed = c.deliver(other, seen.len() as u64, None).await;
    let target = seen.len() + 10;
    while seen.len() < target {
        let b =
            tokio::time::timeout(Duration::from_secs(10), resumed.next()).await.unwrap().unwrap().unwrap();
        seen.push(b.block.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    for (i, b) in seen.iter().enumerate() {
        assert_eq!(b.number(), i as u64, "no gap, no duplicate");
        if i > 0 {
            b.check_links(Some(&seen[i - 1])).unwrap();
        }
    }
    let chain = c.store(other).blocks();
    for b in &seen {
        assert_eq!(chain[b.number() as usize].header_hash(), b.header_hash());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_envelope_is_refused_and_nothing_changes() {
    let mut c = Cluster::new(3);
    c.start_all().await;
    c.leader().await;
    let (env, id) = envelope(CHANNEL, b"once", 5);
    let first = c.broadcaster(0).broadcast(env.clone()).await.unwrap().into_inner();
    assert_eq!(first.status, 200);
    let height = c.converge(2).await;
    // Replayed through every orderer (leader or follower): refused with the block it is in.
    for i in 0..3 {
        let st = c.broadcaster(i).broadcast(env.clone()).await.unwrap_err();
        assert_eq!(st.code(), tonic::Code::AlreadyExists, "{st:?}");
        assert!(st.message().contains(&format!("block {}", height - 1)), "{st:?}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(c.converge(height).await, height, "nothing new was ordered");
    assert_eq!(tx_counts(&c.store(0).blocks()).get(&id), Some(&1));
}

/// Early cuts follow the orderers' setting: by default a lone envelope at an idle leader is cut at once (the
/// leader counts it), with 0 never (the cutter's timer cuts it: Fabric's behaviour). Ordered either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn early_cuts_follow_the_orderers_setting() {
    for setting in [None, Some(0)] {
        let mut c = Cluster::new(3);
        if let Some(n) = setting {
            c.early_cut_below = n;
        }
        c.start_all().await;
        c.leader().await;
        for seq in 0..4 {
            let (env, _) = envelope(CHANNEL, b"lone", seq);
            assert_eq!(c.broadcaster(0).broadcast(env).await.unwrap().into_inner().status, 200);
        }
        assert_eq!(c.converge(5).await, 5);
        let cuts: u64 = c.metrics.iter().map(ops::SequencerMetrics::early_cuts).sum();
        match setting {
            None => assert!(cuts >= 1, "no early cut with the default setting"),
            Some(_) => assert_eq!(cuts, 0, "early cuts with early_cut_below = 0"),
        }
    }
}

/// The identity that signed a block (its first orderer signature).
pub(crate) fn block_signer(block: &ledger_types::proto::Block) -> Vec<u8> {
    match &ledger_types::fabric_protos::hash::block_signatures(block).unwrap()[0].signer {
        ledger_types::fabric_protos::hash::BlockSigner::Creator(c) => c.clone(),
        other => panic!("unexpected signer {other:?}"),
    }
}

/// The Raft terms of the running orderers.
fn terms(c: &Cluster) -> Vec<u64> {
    c.nodes.iter().flatten().map(|n| n.0.raft().metrics().borrow().current_term).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_cluster_elects_one_leader_and_keeps_it() {
    // The default timings, as `ipechain up` runs them: every first start used to hold a second election a
    // couple of seconds after the first leader (all consenters initialized and campaigned).
    let mut c = Cluster::new(3);
    c.raft = orderer::RaftTimings::default();
    c.start_all().await;
    let leader = c.leader().await;
    let before = terms(&c);
    // Longer than the bootstrap patience (three election timeouts) and than the old second election.
    tokio::time::sleep(Duration::from_millis(3 * c.raft.election_max_ms + 1_000)).await;
    assert_eq!(c.leader().await, leader, "the first leader stays leader");
    let after = terms(&c);
    assert_eq!(
        after, before,
        "no election after the first leader (terms before {before:?}, after {after:?})"
    );
    assert!(after.iter().all(|t| *t == after[0]), "all orderers in one term: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_cluster_forms_without_its_lowest_consenter() {
    let mut c = Cluster::new(3);
    // Orderer 1 (the lowest id, which bootstraps the cluster) is down at the first start.
    c.start(1).await;
    c.start(2).await;
    let leader = c.leader().await;
    assert_ne!(leader, 1);
    let mut client = c.broadcaster(1);
    let (env, _) = envelope(CHANNEL, b"without-1", 1);
    let resp = client.broadcast(env).await.expect("broadcast").into_inner();
    assert_eq!(resp.status, 200, "{resp:?}");
    // Orderer 1 joins later as a follower and catches up.
    c.start(0).await;
    c.converge(2).await;
}
