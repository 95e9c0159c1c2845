//! The operations service of `up`, `gateway` and `node` (docs/operations.md): the listener, and the
//! peers' and orderers' gauges and health checks fed from the running nodes.

use anyhow::{Context, Result};
use ledger_types::store::BlockStore;
use network::run::DiskPeer;
use ops::{LeaderWatch, Ops, ProgressWatch, Stopwatch, SustainedWatch};
use std::net::SocketAddr;
use std::path::Path;
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

/// The operations listener's TLS configuration from the files `cert`, `key` and `client_ca` name (`what`
/// says where they were configured): `None` without `cert` and `key`. Unreadable files, a key that is not
/// the certificate's, or a client CA file without certificates fail here, at startup, naming the file.
pub(crate) fn load_tls(
    cert: Option<&Path>,
    key: Option<&Path>,
    client_ca: Option<&Path>,
    what: &str,
) -> Result<Option<Arc<rustls::ServerConfig>>> {
    let read = |p: &Path, which: &str| {
        std::fs::read(p).with_context(|| format!("reading the operations {which} {} ({what})", p.display()))
    };
    let (cert, key) = match (cert, key) {
        (None, None) if client_ca.is_some() => {
            anyhow::bail!(
                "{what}: a client CA for the operations endpoints needs their TLS certificate and key"
            )
        }
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        _ => anyhow::bail!("{what}: the operations TLS certificate and key go together"),
    };
    let tls = ops::OpsTls {
        cert_pem: read(cert, "TLS certificate")?,
        key_pem: read(key, "TLS key")?,
        client_ca_pem: client_ca.map(|p| read(p, "client CA")).transpose()?,
    };
    let names = match client_ca {
        Some(ca) => format!("{}, {} and {}", cert.display(), key.display(), ca.display()),
        None => format!("{} and {}", cert.display(), key.display()),
    };
    Ok(Some(tls.rustls_config().with_context(|| format!("{names} ({what})"))?))
}

/// Binds `addr` and serves `ops` there (over TLS with `tls`) until `stop` fires. Returns the endpoints'
/// base URL (`http://` or `https://` and the bound address).
pub(crate) async fn serve(
    ops: &Ops,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: CancellationToken,
) -> Result<(String, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the operations endpoints to {addr}"))?;
    let bound = listener.local_addr()?;
    let ops = ops.clone();
    let url = format!("{}://{bound}", if tls.is_some() { "https" } else { "http" });
    let task = tokio::spawn(async move {
        let shutdown = async move { stop.cancelled().await };
        let served = match tls {
            Some(tls) => ops::serve_tls(listener, ops, tls, shutdown).await,
            None => ops::serve(listener, ops, shutdown).await,
        };
        if let Err(e) = served {
            tracing::error!("{e}");
        }
    });
    Ok((url, task))
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
        // The last leader known (an interval without one does not count as a change by itself).
        let mut last_leader = None;
        loop {
            {
                let m = rx.borrow_and_update();
                if m.current_leader.is_some() && m.current_leader != last_leader {
                    last_leader = m.current_leader;
                    metrics.leader_changed(&name);
                }
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

/// The bridge's health checks and readiness: each ledger peer it uses must not stay unreachable, nor its lag
/// behind the chain's head stay above `max_lag` blocks, for `grace`; it is ready while its event stream is
/// open.
pub(crate) fn watch_bridge_health(ops: &Ops, bridge: &bridge::Bridge, grace: Duration, max_lag: u64) {
    let view = bridge.ledger_view();
    for peer in view.peers() {
        let p = peer.clone();
        let watch = SustainedWatch::default();
        ops.health.add_fn(format!("ledger peer {} ({} side)", p.peer, p.side.as_str()), move || {
            let bad = (!p.connected()).then(|| match p.last_error() {
                Some(e) => format!("unreachable ({e})"),
                None => "not connected yet".to_owned(),
            });
            watch.check(bad, Stopwatch::now(), grace)
        });
    }
    let v = view.clone();
    let watch = SustainedWatch::default();
    ops.health.add_fn("bridge chain lag", move || {
        let bad = v
            .lag_blocks()
            .filter(|&lag| lag > max_lag)
            .map(|lag| format!("{lag} blocks behind the chain's head (more than {max_lag})"));
        watch.check(bad, Stopwatch::now(), grace)
    });
    let v = view;
    ops.readiness.add_fn("bridge event stream", move || {
        if v.events_connected() { Ok(()) } else { Err("the IPE event stream is not open".to_owned()) }
    });
}

/// Readiness while a task runs (a listener's serving loop): `/readyz` fails naming `component` once it ended.
pub(crate) fn ready_while_running(ops: &Ops, component: &str, task: tokio::task::AbortHandle) {
    ops.readiness.add_fn(
        component,
        move || {
            if task.is_finished() { Err("stopped".to_owned()) } else { Ok(()) }
        },
    );
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
