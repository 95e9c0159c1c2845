//! `ipechain bench ledger`: N client applications, each on its own gRPC connection, submitting signed
//! transactions (`kv.put` of fresh keys) in a closed loop; commits are observed on each peer's
//! commit stream (filtered blocks). Reports committed tx/s, submit→commit latency percentiles and the invalid count.

use crate::stats::Latencies;
use ledger_client::{ClientError, Gateway};
use ledger_rpc::tls::{TlsMaterial, channel};
use ledger_types::TxValidationCode;
use ledger_types::tx::Signer;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A peer to submit to, with the identities its applications sign as.
#[derive(Clone)]
pub struct PeerTarget {
    /// `host:port` of the peer's gateway.
    pub endpoint: String,
    /// Client TLS material for the connection.
    pub tls: TlsMaterial,
    /// Client identities (of the peer's organization) the applications sign with, round-robin.
    pub signers: Vec<Arc<dyn Signer>>,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct LedgerBenchConfig {
    /// Concurrent applications (one gRPC connection each).
    pub apps: usize,
    /// Measured time.
    pub duration: Duration,
    /// Time before measuring starts (connections, warm caches).
    pub warmup: Duration,
    /// Value size in bytes.
    pub value_size: usize,
    /// Channel name.
    pub channel: String,
    /// Fabric's unary Endorse and Submit calls only (no `GatewaySession` stream).
    pub unary: bool,
}

/// A progress report, about once a second.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Since the start of the run (warm-up included).
    pub elapsed: Duration,
    /// Whether the measured window has started.
    pub measuring: bool,
    /// Valid commits so far.
    pub committed: u64,
    /// Invalid commits so far.
    pub invalid: u64,
    /// Failed submissions so far.
    pub errors: u64,
    /// Valid commits per second over the last interval.
    pub recent_tps: f64,
}

/// The measured outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LedgerBenchResult {
    /// Applications.
    pub apps: usize,
    /// Measured seconds.
    pub seconds: f64,
    /// Valid transactions committed in the measured window.
    pub committed: u64,
    /// Transactions committed as invalid in the window.
    pub invalid: u64,
    /// Submissions that failed (endorsement or ordering refused).
    pub errors: u64,
    /// Committed tx/s.
    pub tps: f64,
    /// Median submit→commit latency, ms.
    pub p50_ms: f64,
    /// 99th percentile submit→commit latency, ms.
    pub p99_ms: f64,
    /// Median proposal→commit latency (endorsement included), ms.
    pub e2e_p50_ms: f64,
    /// 99th percentile proposal→commit latency, ms.
    pub e2e_p99_ms: f64,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The network could not be reached.
    #[error("cannot reach the network: {0}")]
    Client(#[from] ClientError),
    /// gRPC setup failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Nothing to run.
    #[error("bad configuration: {0}")]
    Config(String),
}

#[allow(clippy::disallowed_methods)] // the benchmark's clock
fn now() -> Instant {
    Instant::now()
}

enum Slot {
    Waiting(oneshot::Sender<TxValidationCode>),
    Done(TxValidationCode),
}

/// Commit outcomes seen on a peer's block stream, matched to waiting applications.
#[derive(Default)]
struct Tracker {
    slots: Mutex<HashMap<String, Slot>>,
}

impl Tracker {
    fn wait(&self, tx_id: &str) -> oneshot::Receiver<TxValidationCode> {
        let (tx, rx) = oneshot::channel();
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        match slots.remove(tx_id) {
            Some(Slot::Done(code)) => {
                let _ = tx.send(code);
            }
            _ => {
                slots.insert(tx_id.to_owned(), Slot::Waiting(tx));
            }
        }
        rx
    }

    fn committed(&self, tx_id: String, code: TxValidationCode) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        match slots.remove(&tx_id) {
            Some(Slot::Waiting(w)) => {
                let _ = w.send(code);
            }
            _ => {
                slots.insert(tx_id, Slot::Done(code));
            }
        }
    }
}

#[derive(Default)]
struct Counters {
    committed: AtomicU64,
    invalid: AtomicU64,
    errors: AtomicU64,
    total_committed: AtomicU64,
}

/// Runs the benchmark against running peers; `progress` is called about once a second.
#[allow(clippy::disallowed_methods)] // a benchmark measures elapsed time
pub async fn run(
    cfg: &LedgerBenchConfig,
    targets: &[PeerTarget],
    mut progress: impl FnMut(&Progress),
) -> Result<LedgerBenchResult, BenchError> {
    if cfg.apps == 0 || targets.is_empty() || targets.iter().any(|t| t.signers.is_empty()) {
        return Err(BenchError::Config("need at least one app, one peer and one signer per peer".into()));
    }
    // One block listener per peer, started at the peer's current height.
    let mut trackers = Vec::new();
    for t in targets {
        let ch = channel(&t.endpoint, &t.tls)?;
        let gw = Gateway::with_channel(ch, t.signers[0].clone(), &cfg.channel)?;
        let mut commits = gw.commits_from_now().await?;
        let tracker = Arc::new(Tracker::default());
        let tr = tracker.clone();
        tokio::spawn(async move {
            while let Ok(Some((_, txs))) = commits.next().await {
                for (id, code) in txs {
                    if !id.is_empty() {
                        tr.committed(id, code);
                    }
                }
            }
        });
        trackers.push(tracker);
    }

    let start = now();
    let measure_from = start + cfg.warmup;
    let deadline = measure_from + cfg.duration;
    let counters = Arc::new(Counters::default());
    let latencies = Arc::new(Mutex::new((Latencies::new(), Latencies::new())));
    let value = vec![b'v'; cfg.value_size];
    let mut apps = Vec::with_capacity(cfg.apps);
    for app in 0..cfg.apps {
        let ti = app % targets.len();
        let t = &targets[ti];
        let signer = t.signers[(app / targets.len()) % t.signers.len()].clone();
        let mut gw = Gateway::with_channel(channel(&t.endpoint, &t.tls)?, signer, &cfg.channel)?;
        if cfg.unary {
            gw = gw.unary_only();
        }
        let tracker = trackers[ti].clone();
        let counters = counters.clone();
        let latencies = latencies.clone();
        let value = value.clone();
        apps.push(tokio::spawn(async move {
            let kv = gw.contract("kv");
            let mut seq = 0u64;
            let mut local = (Vec::new(), Vec::new());
            while now() < deadline {
                seq += 1;
                let key = format!("bench-{app}-{seq}-{}", start.elapsed().as_nanos());
                let t0 = now();
                let submitted = kv.submit_async("put", &[key.into_bytes(), value.clone()]).await;
                let t1 = now();
                let s = match submitted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, "submit failed");
                        if t0 >= measure_from {
                            counters.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let code = match tokio::time::timeout(Duration::from_secs(30), tracker.wait(&s.tx_id)).await {
                    Ok(Ok(code)) => code,
                    _ => {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                let t2 = now();
                let in_window = t0 >= measure_from && t2 <= deadline;
                if code.is_valid() {
                    counters.total_committed.fetch_add(1, Ordering::Relaxed);
                }
                if in_window {
                    if code.is_valid() {
                        counters.committed.fetch_add(1, Ordering::Relaxed);
                        local.0.push(t2 - t1);
                        local.1.push(t2 - t0);
                    } else {
                        counters.invalid.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let mut l = latencies.lock().unwrap_or_else(|p| p.into_inner());
            l.0.extend(local.0);
            l.1.extend(local.1);
        }));
    }

    let mut last = (now(), 0u64);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = now();
        let total = counters.total_committed.load(Ordering::Relaxed);
        let recent_tps = (total - last.1) as f64 / (t - last.0).as_secs_f64();
        last = (t, total);
        progress(&Progress {
            elapsed: t - start,
            measuring: t >= measure_from,
            committed: counters.committed.load(Ordering::Relaxed),
            invalid: counters.invalid.load(Ordering::Relaxed),
            errors: counters.errors.load(Ordering::Relaxed),
            recent_tps,
        });
        if t >= deadline {
            break;
        }
    }
    for a in apps {
        let _ = a.await;
    }
    let seconds = cfg.duration.as_secs_f64();
    let committed = counters.committed.load(Ordering::Relaxed);
    let l = latencies.lock().unwrap_or_else(|p| p.into_inner());
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(LedgerBenchResult {
        apps: cfg.apps,
        seconds,
        committed,
        invalid: counters.invalid.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        tps: committed as f64 / seconds,
        p50_ms: ms(l.0.percentile(50.0)),
        p99_ms: ms(l.0.percentile(99.0)),
        e2e_p50_ms: ms(l.1.percentile(50.0)),
        e2e_p99_ms: ms(l.1.percentile(99.0)),
    })
}
