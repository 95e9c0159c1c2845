//! Benchmarks (not timed tests): notifications ingested per second from simulated devices, and the
//! server's resident memory with 100,000 registered clients. The simulator runs in a child process (this
//! same binary, `sim` mode) so the server's RSS is its own.
//!
//! `cargo bench -p lwm2m-server --bench ingest [-- ingest|rss] [--clients N] [--runs R]`
#![allow(clippy::disallowed_methods)] // a test or benchmark harness times its own waits
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)] // a bench binary reports on stdout

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::time::Duration;

use lwm2m_server::{LwM2mServer, LwM2mServerHandle, ServerConfig};
use lwm2m_sim::{SimConfig, Simulator};

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn spawn_sim(server: SocketAddr, clients: usize, per_socket: usize, interval_ms: u64) -> Guard {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args([
            "sim",
            &server.to_string(),
            &clients.to_string(),
            &per_socket.to_string(),
            &interval_ms.to_string(),
        ])
        .spawn()
        .expect("simulator child");
    Guard(child)
}

async fn start_server() -> (LwM2mServerHandle, tokio::task::JoinHandle<()>) {
    let cfg = ServerConfig {
        coap_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_addr: None,
        default_timeout: Duration::from_secs(20),
        event_capacity: 1 << 16,
        ..ServerConfig::default()
    };
    LwM2mServer::start(cfg).await.unwrap()
}

async fn wait_registrations(h: &LwM2mServerHandle, n: u64, secs: u64) -> u64 {
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while h.registration_count() < n && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.registration_count()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn ingest(args: &[String]) {
    let clients = arg(args, "--clients", 2000);
    let runs = arg(args, "--runs", 5);
    let interval = arg(args, "--interval-ms", 50) as u64;
    let (h, join) = start_server().await;
    // Keep the event channel drained, as a real consumer would.
    let mut rx = h.subscribe_events();
    tokio::spawn(async move { while rx.recv().await.is_ok() || !rx.is_closed() {} });
    let _sim = spawn_sim(h.coap_addr(), clients, 100, interval);
    let got = wait_registrations(&h, clients as u64, 120).await;
    assert_eq!(got, clients as u64, "all simulated clients registered");
    let path: lwm2m::LwM2mPath = "/3303/0/5700".parse().unwrap();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let h = h.clone();
        tasks.push(tokio::spawn(
            async move { h.observe(&format!("bench-{i}"), path, None, None).await.is_ok() },
        ));
    }
    let mut observed = 0;
    for t in tasks {
        observed += usize::from(t.await.unwrap());
    }
    println!("ingest: {clients} clients, {observed} observations, each notifying every {interval} ms");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut rates = Vec::new();
    for r in 0..runs {
        let a = h.stats().notifications.load(Ordering::Relaxed);
        let t = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let b = h.stats().notifications.load(Ordering::Relaxed);
        let rate = (b - a) as f64 / t.elapsed().as_secs_f64();
        println!("  run {r}: {rate:.0} notifications/s");
        rates.push(rate);
    }
    println!("ingest median: {:.0} notifications/s (target >= 20000)", median(rates));
    h.shutdown();
    let _ = join.await;
}

async fn rss(args: &[String]) {
    let clients = arg(args, "--clients", 100_000);
    let (h, join) = start_server().await;
    let mut rx = h.subscribe_events();
    tokio::spawn(async move { while rx.recv().await.is_ok() || !rx.is_closed() {} });
    let before = rss_mib();
    let t = tokio::time::Instant::now();
    let _sim = spawn_sim(h.coap_addr(), clients, 1000, 0);
    let got = wait_registrations(&h, clients as u64, 600).await;
    let took = t.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_mib();
    println!(
        "rss: {got} registered clients in {:.1} s ({:.0}/s); server RSS {before:.1} MiB before, {after:.1} MiB after (target <= 1024 MiB)",
        took.as_secs_f64(),
        got as f64 / took.as_secs_f64()
    );
    h.shutdown();
    let _ = join.await;
}

async fn sim(args: &[String]) {
    let server: SocketAddr = args[1].parse().unwrap();
    let clients: usize = args[2].parse().unwrap();
    let per_socket: usize = args[3].parse().unwrap();
    let interval: u64 = args[4].parse().unwrap();
    let sim = Simulator::start(SimConfig {
        server,
        clients,
        clients_per_socket: per_socket,
        endpoint_prefix: "bench-".into(),
        lifetime: 3600,
        notify_interval: (interval > 0).then(|| Duration::from_millis(interval)),
        register_window: 64,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let _ = sim.registered();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    match args.first().map(String::as_str) {
        Some("sim") => rt.block_on(sim(&args)),
        Some("ingest") => rt.block_on(ingest(&args)),
        Some("rss") => rt.block_on(rss(&args)),
        _ => {
            rt.block_on(ingest(&args));
            rt.block_on(rss(&args));
        }
    }
}
