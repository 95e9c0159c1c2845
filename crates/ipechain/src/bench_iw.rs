//! `ipechain bench interworking`: the paper's Fig. 3 on the running default network. oneM2M applications
//! (each on its own gRPC connection, signing its own transactions, as the paper's Fabric SDK apps) ask
//! simulated LwM2M devices for their temperature through the ledger and wait for the answers, while the
//! devices also report data with LwM2M Send.
//!
//! One round trip: the app submits `submit_request` → the ledger commits it → the gateway reads the device
//! over CoAP → submits `submit_response` → the ledger commits it → the app sees the `response` event. The
//! apps share one event stream of the bench process (an application server's event service), which routes
//! each `response` to the app waiting for it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bench::report::{LineChart, Marker, Series, csv_table};
use bench::stats::Latencies;
use ipe::model::{Operation, RequestArgs};
use ipe::{IpeCall, IpeEvent};
use ledger_client::{Checkpoint, Gateway};
use serde_json::json;
use tokio::sync::oneshot;

/// The paper's figures (Hyperledger Fabric, 16-core i7): one-way interworking TPS at 1,000 and 2,000 apps.
const PAPER: &[(usize, f64)] = &[(1000, 206.0), (2000, 148.0)];
/// The bound's unit per round trip: two transactions of 6 verifications each in a Fabric network (endorser,
/// orderer, 2 × 2 on peers). `ipechain up` verifies two (the application's proposal and envelope; the bridge's
/// own transaction none, peer::known).
const VERIFIES_PER_ROUND_TRIP: f64 = 12.0;

#[derive(clap::Args, Debug)]
pub(crate) struct IwArgs {
    #[command(flatten)]
    dir: crate::DataDirArg,
    /// Application counts, one measurement each.
    #[arg(long, value_delimiter = ',', default_value = "1000,1250,1500,1750,2000")]
    apps: Vec<usize>,
    /// Measured seconds per application count.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Seconds of load before measuring, per application count.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Simulated LwM2M devices.
    #[arg(long, default_value_t = 200)]
    devices: usize,
    /// How often every device Sends its sensors (ms; 0: never).
    #[arg(long, default_value_t = 1000)]
    report_interval_ms: u64,
    /// The LwM2M server of `ipechain up`.
    #[arg(long, default_value = "127.0.0.1:5683")]
    lwm2m_addr: SocketAddr,
    /// CSV output (default: <data-dir>/bench/interworking.csv).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// SVG plot (default: <data-dir>/bench/interworking.svg).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    apps: usize,
    round_trips_per_s: f64,
    ipe_tx_per_s: f64,
    reports_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    completed: u64,
    failed: u64,
    paper_tps: Option<f64>,
    /// How far the orderers' Raft term rose during this count's load (`None`: unknown); see
    /// [`crate::bench_cmd::raft_term`].
    raft_elections: Option<u64>,
}

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<bool>>>>;

#[derive(Default)]
struct Counters {
    measuring: AtomicBool,
    completed: AtomicU64,
    failed: AtomicU64,
    events: AtomicU64,
    reports: AtomicU64,
    /// Times the event stream had to be resumed.
    stream_restarts: AtomicU64,
    latencies: Mutex<Latencies>,
}

#[allow(clippy::disallowed_methods)] // a benchmark measures time
pub(crate) async fn run(a: IwArgs) -> Result<()> {
    let dir = a.dir.resolve();
    let tag = {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        format!("{:x}", t.as_secs())
    };
    let max_apps = a.apps.iter().copied().max().unwrap_or(0);
    // The bound: three one-second samples now and three after the load (the node is quiet at both times); the
    // figure is their median, so one slow or fast second of the machine does not move every share.
    let mut bounds = tokio::task::spawn_blocking(|| crate::bench_cmd::bound_samples(3)).await?;
    eprintln!(
        "crypto bound: {:.0} Ed25519 verifications/s ({:.0} round trips/s; measured again after the load)",
        bench::stats::median(&bounds),
        bench::stats::median(&bounds) / VERIFIES_PER_ROUND_TRIP
    );

    // Devices.
    let prefix = format!("bench-{tag}-");
    let sim = lwm2m_sim::Simulator::start(lwm2m_sim::SimConfig {
        server: a.lwm2m_addr,
        clients: a.devices,
        // One socket per device: a Send (POST /dp) is attributed to its device by source address.
        clients_per_socket: 1,
        endpoint_prefix: prefix.clone(),
        lifetime: 600,
        notify_interval: None,
        ..lwm2m_sim::SimConfig::default()
    })
    .await
    .context("starting the simulated devices")?;
    let n = sim.wait_registered(a.devices as u64, Duration::from_secs(120)).await;
    anyhow::ensure!(
        n as usize >= a.devices,
        "only {n} of {} devices registered with {}",
        a.devices,
        a.lwm2m_addr
    );
    let probe = crate::gateway::client(&dir, 0, "User1")?;
    for i in 0..a.devices {
        let ep = format!("{prefix}{i}");
        let mut tries = 0;
        let get = IpeCall::GetDevice { endpoint: ep.clone() };
        while probe.gateway.contract(ipe::NAME).evaluate(get.function(), &get.args()?).await.is_err() {
            tries += 1;
            anyhow::ensure!(tries < 600, "device {ep} did not reach the ledger (is the gateway running?)");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!("{} simulated devices registered and on the ledger", a.devices);

    // One event stream routes answers to the apps.
    let waiters: Waiters = Arc::default();
    let counters = Arc::new(Counters::default());
    let height = crate::gateway::height(&dir).await?;
    let mut position = Checkpoint { block: height, tx_id: None };
    let mut events = probe.gateway.contract_events(ipe::NAME, position.clone()).await?;
    let (w, c, gw) = (waiters.clone(), counters.clone(), probe.gateway.clone());
    let router = tokio::spawn(async move {
        loop {
            let ev = match events.next().await {
                Ok(Some(ev)) => ev,
                // A stream that ends is resumed from the last event seen (every answer still reaches its app);
                // the reason is printed, so a run that lost its stream says so.
                end => {
                    let why = match end {
                        Ok(_) => "closed by the peer".to_owned(),
                        Err(e) => e.to_string(),
                    };
                    eprintln!("event stream ended ({why}); resuming after block {}", position.block);
                    c.stream_restarts.fetch_add(1, Ordering::Relaxed);
                    loop {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        match gw.contract_events(ipe::NAME, position.clone()).await {
                            Ok(s) => {
                                events = s;
                                break;
                            }
                            Err(e) => eprintln!("event stream not resumed yet: {e}"),
                        }
                    }
                    continue;
                }
            };
            position.handled(ev.block, &ev.event.tx_id);
            if c.measuring.load(Ordering::Relaxed) {
                c.events.fetch_add(1, Ordering::Relaxed);
            }
            match IpeEvent::parse(&ev.event.event_name, &ev.event.payload) {
                Ok(Some(IpeEvent::Response(r))) => {
                    let waiter = w.lock().ok().and_then(|mut m| m.remove(&r.request_id));
                    if let Some(tx) = waiter {
                        let _ = tx.send(r.outcome.status == "ok");
                    }
                }
                Ok(Some(IpeEvent::Report(_))) if c.measuring.load(Ordering::Relaxed) => {
                    c.reports.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    });

    // Application connections (each its own TLS connection and signer).
    let connector = crate::gateway::connector(&dir, 0, "User1")?;
    let mut apps: Vec<Gateway> = Vec::with_capacity(max_apps);
    for _ in 0..max_apps {
        apps.push(connector.connect()?);
    }
    let reporter = {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let interval = a.report_interval_ms;
        let sim = Arc::new(sim);
        let sim2 = sim.clone();
        let task = tokio::spawn(async move {
            if interval == 0 {
                return;
            }
            while !s.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(interval)).await;
                sim2.send_all().await;
            }
        });
        (stop, task, sim)
    };

    let mut rows = Vec::new();
    // The phase's number is in every request id: a count given twice (`--apps 2000,2000`) must not reuse the
    // ids of its first measurement, which the contract refuses as duplicates (each refusal was a failed
    // submission and a 200 ms pause, so the second measurement started seconds late).
    for (phase, &n_apps) in a.apps.iter().enumerate() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (i, gw) in apps.iter().take(n_apps).enumerate() {
            let (gw, waiters, counters, stop) = (gw.clone(), waiters.clone(), counters.clone(), stop.clone());
            let device = format!("{prefix}{}", i % a.devices);
            let origin = format!("Cbench-app-{i}");
            let tag = tag.clone();
            tasks.push(tokio::spawn(async move {
                let ipe = gw.contract(ipe::NAME);
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    let id = format!("bi-{tag}-{phase}-{n_apps}-{i}-{seq}");
                    let (tx, rx) = oneshot::channel();
                    if let Ok(mut m) = waiters.lock() {
                        m.insert(id.clone(), tx);
                    }
                    let read = IpeCall::SubmitRequest(RequestArgs {
                        request_id: id.clone(),
                        originator: origin.clone(),
                        endpoint: device.clone(),
                        path: "/3303/0/5700".into(),
                        op: Operation::Read,
                        content: None,
                        partial: false,
                        observe_request_id: None,
                        timeout: Some(30),
                    });
                    let start = std::time::Instant::now();
                    let submitted = match read.args() {
                        Ok(args) => ipe.submit_async(read.function(), &args).await.is_ok(),
                        Err(_) => false,
                    };
                    let ok = submitted
                        && matches!(tokio::time::timeout(Duration::from_secs(40), rx).await, Ok(Ok(true)));
                    if let Ok(mut m) = waiters.lock() {
                        m.remove(&id);
                    }
                    if counters.measuring.load(Ordering::Relaxed) {
                        if ok {
                            counters.completed.fetch_add(1, Ordering::Relaxed);
                            let latency = start.elapsed();
                            if let Ok(mut l) = counters.latencies.lock() {
                                l.record(latency);
                            }
                        } else {
                            counters.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if !ok {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }));
        }
        let term_before = crate::bench_cmd::raft_term(&dir).await;
        // Warm-up, then measure with progress every second.
        let t0 = std::time::Instant::now();
        let mut last = (0u64, std::time::Instant::now());
        let total = a.warmup + a.duration;
        let mut measure_start = None;
        while t0.elapsed() < Duration::from_secs(total) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if measure_start.is_none() && t0.elapsed() >= Duration::from_secs(a.warmup) {
                counters.completed.store(0, Ordering::Relaxed);
                counters.failed.store(0, Ordering::Relaxed);
                counters.events.store(0, Ordering::Relaxed);
                counters.reports.store(0, Ordering::Relaxed);
                if let Ok(mut l) = counters.latencies.lock() {
                    l.clear();
                }
                counters.measuring.store(true, Ordering::Relaxed);
                measure_start = Some(std::time::Instant::now());
                last = (0, std::time::Instant::now());
            }
            if !a.json {
                let done = counters.completed.load(Ordering::Relaxed);
                let rate = (done - last.0) as f64 / last.1.elapsed().as_secs_f64().max(1e-3);
                eprintln!(
                    "  apps {n_apps:>5}  {:>5.1}s {}  round trips {:>8}  now {:>7.0}/s  failed {:>5}",
                    t0.elapsed().as_secs_f64(),
                    if measure_start.is_some() { "measuring" } else { "warm-up  " },
                    done,
                    if measure_start.is_some() { rate } else { 0.0 },
                    counters.failed.load(Ordering::Relaxed),
                );
                last = (done, std::time::Instant::now());
            }
        }
        counters.measuring.store(false, Ordering::Relaxed);
        let secs = measure_start.map_or(1.0, |s| s.elapsed().as_secs_f64());
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(45), t).await;
        }
        let raft_elections =
            crate::bench_cmd::elections(term_before, crate::bench_cmd::raft_term(&dir).await);
        if let Some(w) = crate::bench_cmd::election_warning(&format!("{n_apps} apps"), raft_elections) {
            eprintln!("{w}");
        }
        let l = counters.latencies.lock().map(|l| l.clone()).unwrap_or_default();
        let pct = |p: f64| l.percentile(p).as_secs_f64() * 1000.0;
        let completed = counters.completed.load(Ordering::Relaxed);
        rows.push(Row {
            apps: n_apps,
            round_trips_per_s: completed as f64 / secs,
            ipe_tx_per_s: counters.events.load(Ordering::Relaxed) as f64 / secs,
            reports_per_s: counters.reports.load(Ordering::Relaxed) as f64 / secs,
            p50_ms: pct(50.0),
            p99_ms: pct(99.0),
            completed,
            failed: counters.failed.load(Ordering::Relaxed),
            paper_tps: PAPER.iter().find(|(n, _)| *n == n_apps).map(|(_, t)| *t),
            raft_elections,
        });
    }
    reporter.0.store(true, Ordering::Relaxed);
    let _ = reporter.1.await;
    reporter.2.stop();
    router.abort();
    bounds.extend(tokio::task::spawn_blocking(|| crate::bench_cmd::bound_samples(3)).await?);
    let bound = bench::stats::median(&bounds);

    let out_dir = dir.root().join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let csv = a.csv.unwrap_or_else(|| out_dir.join("interworking.csv"));
    let svg = a.svg.unwrap_or_else(|| out_dir.join("interworking.svg"));
    std::fs::write(&csv, to_csv(&rows)?).with_context(|| format!("writing {}", csv.display()))?;
    std::fs::write(&svg, to_svg(&rows)?).with_context(|| format!("writing {}", svg.display()))?;
    let rt_bound = bound / VERIFIES_PER_ROUND_TRIP;
    if a.json {
        let out = json!({"rows": rows, "devices": a.devices, "report_interval_ms": a.report_interval_ms,
            "event_stream_restarts": counters.stream_restarts.load(Ordering::Relaxed),
            "crypto_verifies_per_s": bound, "crypto_verifies_per_s_samples": bounds,
            "crypto_bound_round_trips_per_s": rt_bound,
            "csv": csv, "svg": svg});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "apps  round trips/s  IPE tx/s  reports/s  p50 ms  p99 ms  failed  share of crypto bound  paper TPS"
        );
        for r in &rows {
            println!(
                "{:>4}  {:>13.0}  {:>8.0}  {:>9.0}  {:>6.0}  {:>6.0}  {:>6}  {:>21.1}%  {:>9}",
                r.apps,
                r.round_trips_per_s,
                r.ipe_tx_per_s,
                r.reports_per_s,
                r.p50_ms,
                r.p99_ms,
                r.failed,
                r.round_trips_per_s / rt_bound * 100.0,
                r.paper_tps.map_or_else(|| "-".to_owned(), |t| format!("{t:.0}")),
            );
        }
        println!(
            "({} devices, each Sending every {} ms; crypto bound {bound:.0} verifications/s = {rt_bound:.0} round trips/s)",
            a.devices, a.report_interval_ms
        );
        for r in &rows {
            if let Some(w) = crate::bench_cmd::election_warning(&format!("{} apps", r.apps), r.raft_elections)
            {
                println!("{w}");
            }
        }
        let restarts = counters.stream_restarts.load(Ordering::Relaxed);
        if restarts > 0 {
            println!("(the event stream was resumed {restarts} times: see the messages above)");
        }
        println!("CSV: {}\nSVG: {}", csv.display(), svg.display());
    }
    Ok(())
}

fn to_csv(rows: &[Row]) -> Result<Vec<u8>, bench::report::ReportError> {
    let header = [
        "apps",
        "round_trips_per_s",
        "ipe_tx_per_s",
        "reports_per_s",
        "p50_ms",
        "p99_ms",
        "completed",
        "failed",
        "paper_tps",
        "raft_elections",
    ];
    csv_table(
        &header,
        rows.iter().map(|r| {
            [
                r.apps.to_string(),
                format!("{:.1}", r.round_trips_per_s),
                format!("{:.1}", r.ipe_tx_per_s),
                format!("{:.1}", r.reports_per_s),
                format!("{:.1}", r.p50_ms),
                format!("{:.1}", r.p99_ms),
                r.completed.to_string(),
                r.failed.to_string(),
                r.paper_tps.map_or_else(String::new, |t| format!("{t:.0}")),
                r.raft_elections.map_or_else(String::new, |n| n.to_string()),
            ]
        }),
    )
}

/// A line chart: round trips/s against applications, with the paper's points.
fn to_svg(rows: &[Row]) -> Result<String, bench::report::ReportError> {
    LineChart {
        title: "Interworking round trips/s vs. connected applications".into(),
        x_label: "applications".into(),
        y_label: "per second".into(),
        series: vec![
            Series {
                label: "ipechain (round trips/s)".into(),
                points: rows.iter().map(|r| (r.apps as f64, r.round_trips_per_s)).collect(),
                color: (0x1f, 0x77, 0xb4),
                dashed: false,
                marker: Marker::Circle,
            },
            Series {
                label: "paper, Fabric (TPS one way)".into(),
                points: PAPER.iter().map(|&(n, t)| (n as f64, t)).collect(),
                color: (0xd6, 0x27, 0x28),
                dashed: true,
                marker: Marker::Square,
            },
        ],
    }
    .to_svg()
}

#[cfg(test)]
mod tests {
    use super::{Row, to_csv, to_svg};

    fn row(apps: usize, rt: f64, paper: Option<f64>) -> Row {
        Row {
            apps,
            round_trips_per_s: rt,
            ipe_tx_per_s: 2.0 * rt,
            reports_per_s: 12.34,
            p50_ms: 5.06,
            p99_ms: 20.0,
            completed: 100,
            failed: 0,
            paper_tps: paper,
            raft_elections: if paper.is_some() { Some(0) } else { None },
        }
    }

    #[test]
    fn csv_and_svg_of_the_rows() {
        let rows = [row(1000, 180.04, Some(206.0)), row(1250, 170.0, None)];
        let csv = String::from_utf8(to_csv(&rows).unwrap()).unwrap();
        assert_eq!(
            csv,
            "apps,round_trips_per_s,ipe_tx_per_s,reports_per_s,p50_ms,p99_ms,completed,failed,paper_tps,raft_elections\n\
             1000,180.0,360.1,12.3,5.1,20.0,100,0,206,0\n\
             1250,170.0,340.0,12.3,5.1,20.0,100,0,,\n"
        );
        let svg = to_svg(&rows).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "{svg}");
    }
}
