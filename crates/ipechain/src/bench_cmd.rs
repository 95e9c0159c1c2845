//! `ipechain bench ledger`: load against the running local network, with the crypto bound measured in the
//! same invocation.

use anyhow::{Context, Result};
use bench::ledger::{LedgerBenchConfig, LedgerBenchResult, PeerTarget, run as run_ledger};
use bench::stats::median;
use clap::Subcommand;
use ledger_types::tx::Signer;
use msp::{Algorithm, SigningKey, VerifyItem, verify_batch_parallel};
use network::layout::{NodeRole, load_identity, tls_material};
use network::{DataDir, IdentitySigner};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Subcommand, Debug)]
pub(crate) enum BenchCommand {
    /// Committed transactions per second and submit→commit latency with N concurrent client apps.
    Ledger {
        #[command(flatten)]
        dir: crate::DataDirArg,
        /// Concurrent client applications, each on its own gRPC connection.
        #[arg(long, default_value_t = 2000)]
        apps: usize,
        /// Measured seconds per run.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Seconds of load before measuring.
        #[arg(long, default_value_t = 5)]
        warmup: u64,
        /// Runs; figures are the medians over runs.
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Value size in bytes.
        #[arg(long, default_value_t = 100)]
        value_size: usize,
        /// Endorse and submit with Fabric's unary gateway calls only (as Fabric's SDKs do), not on
        /// ipechain's multiplexed `GatewaySession` stream.
        #[arg(long)]
        unary: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Interworking round trips (oneM2M app → ledger → LwM2M device → ledger → app) per second against the
    /// number of connected applications: the paper's Fig. 3. Table, CSV and SVG.
    Interworking(crate::bench_iw::IwArgs),
}

/// The bound's unit: the signature verifications a committed transaction costs a Fabric network of two peers
/// and one orderer admitting it (the endorser checks the proposal, the orderer the envelope, each peer the
/// envelope and the endorsement). `ipechain up` verifies two of them (peer::known: one process verifies a
/// signature once), so the share is the rate against what this machine could verify, not a count of checks.
const VERIFIES_PER_TX: f64 = 6.0;

/// Ed25519 verifications per second on all cores (batch verification), measured for about a second, over
/// signatures by 1,024 distinct keys: the ledger's creators are distinct applications, and a batch of one
/// key's signatures is cheaper than the ledger ever sees (ed25519-zebra coalesces the terms of one key).
#[allow(clippy::disallowed_methods)] // a benchmark measures time
pub(crate) fn crypto_bound() -> f64 {
    let mut rng = rand::rngs::OsRng;
    let keys: Vec<SigningKey> =
        (0..1024).map(|_| SigningKey::generate(Algorithm::Ed25519, &mut rng)).collect();
    let pks: Vec<_> = keys.iter().map(SigningKey::public_key).collect();
    let msgs: Vec<Vec<u8>> =
        (0..1024u32).map(|i| format!("transaction payload {i:08}").into_bytes().repeat(8)).collect();
    let sigs: Vec<_> = msgs.iter().zip(&keys).map(|(m, k)| k.sign(m)).collect();
    let items: Vec<VerifyItem<'_>> =
        msgs.iter().zip(&sigs).zip(&pks).map(|((m, s), pk)| VerifyItem::new(pk, m, s.as_bytes())).collect();
    let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < Duration::from_secs(1) {
        let _ = verify_batch_parallel(&items, threads);
        n += items.len();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// `n` one-second measurements of the crypto bound.
pub(crate) fn bound_samples(n: usize) -> Vec<f64> {
    (0..n).map(|_| crypto_bound()).collect()
}

/// The highest Raft term the orderers report (Admin status), or `None` when none answers. Every election
/// raises the term, so a benchmark reads it before and after its load: a rise means the figures straddle
/// one or more leader elections (ordering stalls during one), which makes them unfit for comparison.
pub(crate) async fn raft_term(dir: &DataDir) -> Option<u64> {
    let (_, nodes, tls) = crate::status::admin_tls(dir).ok()?;
    let mut best = None;
    for n in nodes.iter().filter(|n| n.role == NodeRole::Orderer) {
        if let Ok(Ok(s)) = crate::status::query(n, &tls).await {
            best = best.max(Some(s.raft_term));
        }
    }
    best
}

/// Elections between two [`raft_term`] readings (`None` when either is unknown).
pub(crate) fn elections(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

/// The line a benchmark prints when its load straddled elections.
pub(crate) fn election_warning(what: &str, n: Option<u64>) -> Option<String> {
    match n {
        Some(0) => None,
        Some(n) => Some(format!(
            "WARNING: {what}: the Raft term rose by {n} (leader elections; ordering stalls during each): \
             these figures are not comparable with runs without one"
        )),
        None => {
            Some(format!("WARNING: {what}: the orderers' Raft terms could not be read; elections unknown"))
        }
    }
}

fn targets(dir: &DataDir) -> Result<(String, Vec<PeerTarget>)> {
    let (net, nodes, _) = crate::status::admin_tls(dir)?;
    let (_, channel) = network::layout::read_genesis(&nodes[0].genesis)?;
    let mut out = Vec::new();
    for p in nodes.iter().filter(|n| n.role == NodeRole::Peer) {
        let org = net.crypto.peer_orgs.iter().find(|o| o.msp_id == p.msp_id).context("peer org missing")?;
        let users_dir = dir.crypto_dir().join("peerOrganizations").join(&org.domain).join("users");
        let mut signers: Vec<Arc<dyn Signer>> = Vec::new();
        let mut tls = None;
        for entry in
            std::fs::read_dir(&users_dir).with_context(|| format!("reading {}", users_dir.display()))?
        {
            let path = entry?.path();
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("Admin@")) {
                continue;
            }
            let id = load_identity(&p.msp_id, &path)?;
            if tls.is_none() {
                tls = tls_material(&id, &channel);
            }
            signers.push(Arc::new(IdentitySigner::new(id)));
        }
        out.push(PeerTarget {
            endpoint: p.listen.to_string(),
            tls: tls.context("no client TLS material")?,
            signers,
        });
    }
    Ok((net.channel, out))
}

pub(crate) async fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Interworking(a) => crate::bench_iw::run(a).await,
        BenchCommand::Ledger { dir, apps, duration, warmup, runs, value_size, unary, json } => {
            let dir = dir.resolve();
            let (channel, targets) = targets(&dir)?;
            let cfg = LedgerBenchConfig {
                apps,
                duration: Duration::from_secs(duration),
                warmup: Duration::from_secs(warmup),
                value_size,
                channel,
                unary,
            };
            let mut results: Vec<LedgerBenchResult> = Vec::new();
            let mut bounds = Vec::new();
            let mut run_elections = Vec::new();
            for r in 0..runs.max(1) {
                // Three one-second samples before each run and three after the last (the node is quiet at
                // both times), their median the bound: one second of the machine alone moved the share by
                // ±15% between invocations (docs/ledger-perf.md, sixteenth round), as in `bench interworking`.
                let samples = tokio::task::spawn_blocking(|| bound_samples(3)).await?;
                let bound = median(&samples);
                bounds.extend(samples);
                if !json {
                    eprintln!(
                        "run {}/{}: crypto bound {:.0} verifications/s; {apps} apps, {warmup}s warm-up, {duration}s measured",
                        r + 1,
                        runs.max(1),
                        bound
                    );
                }
                let term_before = raft_term(&dir).await;
                let res = run_ledger(&cfg, &targets, |p| {
                    if !json {
                        eprintln!(
                            "  {:>5.1}s {} committed {:>8}  invalid {:>5}  errors {:>5}  now {:>7.0} tx/s",
                            p.elapsed.as_secs_f64(),
                            if p.measuring { "measuring" } else { "warm-up  " },
                            p.committed,
                            p.invalid,
                            p.errors,
                            p.recent_tps
                        );
                    }
                })
                .await?;
                let n = elections(term_before, raft_term(&dir).await);
                if let Some(w) = election_warning(&format!("run {}", r + 1), n) {
                    eprintln!("{w}");
                }
                run_elections.push(n);
                results.push(res);
            }
            bounds.extend(tokio::task::spawn_blocking(|| bound_samples(3)).await?);
            let tps = median(&results.iter().map(|r| r.tps).collect::<Vec<_>>());
            let p50 = median(&results.iter().map(|r| r.p50_ms).collect::<Vec<_>>());
            let p99 = median(&results.iter().map(|r| r.p99_ms).collect::<Vec<_>>());
            let bound = median(&bounds);
            let tx_bound = bound / VERIFIES_PER_TX;
            let share = if tx_bound > 0.0 { tps / tx_bound } else { 0.0 };
            if json {
                let out = serde_json::json!({
                    "apps": apps, "unary": unary, "runs": results, "median_tps": tps, "median_p50_ms": p50, "median_p99_ms": p99,
                    "crypto_verifies_per_s": bound, "crypto_verifies_per_s_samples": bounds, "verifies_per_tx": VERIFIES_PER_TX,
                    "crypto_bound_tps": tx_bound, "share_of_crypto_bound": share,
                    "raft_elections_per_run": run_elections,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "apps  runs  committed tx/s (median)  p50 ms  p99 ms  invalid  errors  crypto bound tx/s  share"
                );
                let invalid: u64 = results.iter().map(|r| r.invalid).sum();
                let errors: u64 = results.iter().map(|r| r.errors).sum();
                println!(
                    "{apps:>4}  {:>4}  {tps:>23.0}  {p50:>6.1}  {p99:>6.1}  {invalid:>7}  {errors:>6}  {tx_bound:>17.0}  {:>4.0}%",
                    results.len(),
                    share * 100.0
                );
                println!(
                    "(crypto bound: {bound:.0} Ed25519 verifications/s on all cores, {VERIFIES_PER_TX} per transaction)"
                );
                for (i, n) in run_elections.iter().enumerate() {
                    if let Some(w) = election_warning(&format!("run {}", i + 1), *n) {
                        println!("{w}");
                    }
                }
            }
            Ok(())
        }
    }
}
