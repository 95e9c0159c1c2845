//! The operations service of `up`, `gateway` and `node` (docs/operations.md): the listener, and the
//! peers' and orderers' gauges and health checks fed from the running nodes.

use anyhow::{Context, Result};
use ledger_types::store::BlockStore;
use network::run::DiskPeer;
use ops::{LeaderWatch, Ops, ProgressWatch, Stopwatch};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a peer may stay at its height while blocks wait, and an orderer without a known leader,
/// before `/healthz` calls it unhealthy.
pub(crate) const GRACE: Duration = Duration::from_secs(30);

/// A fresh service for this build.
pub(crate) fn new_ops() -> Ops {
    Ops::new(ops::VersionInfo::new("ipechain", env!("CARGO_PKG_VERSION")))
}

/// Binds `addr` and serves `ops` there until `stop` fires. Returns the bound address.
pub(crate) async fn serve(
    ops: &Ops,
    addr: SocketAddr,
    stop: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the operations endpoints to {addr}"))?;
    let bound = listener.local_addr()?;
    let ops = ops.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = ops::serve(listener, ops, async move { stop.cancelled().await }).await {
            tracing::error!("{e}");
        }
    });
    Ok((bound, task))
}

/// The heights of the orderers this process runs (their block stores), for the peers' health.
#[derive(Clone, Default)]
pub(crate) struct OrdererHeights(Vec<Arc<dyn BlockStore>>);

impl OrdererHeights {
    pub(crate) fn add(&mut self, store: Arc<dyn BlockStore>) {
        self.0.push(store);
    }

    fn max(&self) -> u64 {
        self.0.iter().map(|s| s.height()).max().unwrap_or(0)
    }
}

/// Watches an orderer's Raft metrics into the gauges, and adds its health check (a known leader).
pub(crate) fn watch_orderer(
    ops: &Ops,
    name: &str,
    handle: &orderer::OrdererHandle,
    blocks: Arc<dyn BlockStore>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let mut rx = handle.raft().metrics();
    let health_rx = rx.clone();
    let leader = LeaderWatch::default();
    ops.health.add_fn(format!("orderer {name}"), move || {
        leader.check(health_rx.borrow().current_leader, Stopwatch::now(), GRACE)
    });
    let metrics = ops.metrics.orderer.clone();
    let name = name.to_owned();
    tokio::spawn(async move {
        loop {
            {
                let m = rx.borrow_and_update();
                let applied = m.last_applied.as_ref().map_or(0, |l| l.index);
                metrics.set(&name, m.current_term, m.current_leader, m.id, applied, blocks.height());
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
                // The block store's height moves after the Raft entry is applied: catch up within a second.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    })
}

/// Adds a peer's health check: not healthy when blocks wait (on its Deliver stream, or in the orderers
/// of this process) and its height has not moved for [`GRACE`].
pub(crate) fn watch_peer(ops: &Ops, name: &str, peer: &DiskPeer, orderers: OrdererHeights) {
    let ledger = peer.ledger.clone();
    let handle = ops.metrics.peer.for_peer(name);
    let progress = ProgressWatch::default();
    ops.health.add_fn(format!("peer {name}"), move || {
        let height = ledger.height();
        let waiting = handle.delivered_height().max(orderers.max());
        progress.check(height, waiting, Stopwatch::now(), GRACE)
    });
}

/// The bridge's counters (kept by the bridge) as metrics read at scrape time.
pub(crate) fn watch_bridge(ops: &Ops, bridge: &bridge::Bridge) {
    use std::sync::atomic::Ordering::Relaxed;
    let s = bridge.stats();
    let m = &ops.metrics;
    let c = s.clone();
    m.counter_fn(
        "ipechain_bridge_uplink_transactions",
        "LwM2M events the bridge turned into IPE transactions",
        move || c.uplink_tx.load(Relaxed),
    );
    let c = s.clone();
    m.counter_fn(
        "ipechain_bridge_cmd_requests",
        "Requests taken from oneM2M cmd containers and submitted to the ledger",
        move || c.cmd_requests.load(Relaxed),
    );
    let c = s.clone();
    m.counter_fn("ipechain_bridge_events", "Contract events the bridge handled", move || {
        c.events.load(Relaxed)
    });
    let c = s.clone();
    m.counter_fn(
        "ipechain_bridge_content_instances",
        "oneM2M contentInstances the bridge wrote",
        move || c.cins.load(Relaxed),
    );
    let c = s.clone();
    m.counter_fn("ipechain_bridge_errors", "Errors the bridge logged", move || c.errors.load(Relaxed));
}

/// The LwM2M server's counters (kept by the server) as metrics read at scrape time.
pub(crate) fn watch_lwm2m(ops: &Ops, server: &lwm2m_server::LwM2mServerHandle) {
    use std::sync::atomic::Ordering::Relaxed;
    let m = &ops.metrics;
    let h = server.clone();
    m.gauge_fn("ipechain_lwm2m_registrations", "LwM2M clients registered with the server now", move || {
        h.stats().registrations.load(Relaxed)
    });
    let h = server.clone();
    m.counter_fn(
        "ipechain_lwm2m_notifications",
        "LwM2M notifications received for active observations",
        move || h.stats().notifications.load(Relaxed),
    );
    let h = server.clone();
    m.counter_fn("ipechain_lwm2m_sends", "LwM2M Send operations accepted", move || {
        h.stats().sends.load(Relaxed)
    });
    let (ok, failed) = (server.clone(), server.clone());
    m.counters_fn(
        "ipechain_lwm2m_dtls_handshakes",
        "DTLS handshakes of the LwM2M server by outcome: ok (an admitted identity, full or resumed), failed \
         (refused or timed out)",
        "outcome",
        vec![
            ("ok", Box::new(move || ok.stats().dtls_handshakes.load(Relaxed))),
            ("failed", Box::new(move || failed.stats().dtls_handshakes_failed.load(Relaxed))),
        ],
    );
    let h = server.clone();
    m.counter_fn(
        "ipechain_lwm2m_refused",
        "LwM2M requests refused by the admission rules (4.03)",
        move || h.stats().refused.load(Relaxed),
    );
}
