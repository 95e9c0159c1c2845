//! Benchmark (not a timed test) of the DTLS edge: full PSK handshakes per second, and notifications ingested
//! per second over DTLS against NoSec with the same devices and the same observe load, in one run.
//!
//! `cargo bench -p lwm2m-server --bench dtls [-- handshakes|ingest] [--rounds R] [--secs S]
//! [--hs-clients C] [--devices N] [--interval-ms I]`
//!
//! The server runs in this process (tokio, 2 worker threads) with a NoSec and a DTLS socket on 127.0.0.1 and
//! a key file (`FileCredentialStore`) holding every simulated identity. The simulated clients run in child
//! processes (this binary in a client mode), so that each side is measured apart: every round prints, beside
//! the server's rate, the rate the clients themselves reached (handshakes they saw finish, notifications they
//! sent), the kernel's UDP receive-buffer drops, and the CPU each process used (cores, and µs per operation).
//! Clients sending more than the server ingests, with drops, means the server sets the rate; clients
//! reaching only what the server ingests, with no drops, means the clients do.
//!
//! - handshakes: C clients (own socket each) handshake in a loop with a fresh `SSL` each time (full
//!   handshake with cookie exchange, no resumption), then close_notify; the rate is the server's count of
//!   admitted handshakes over the round.
//! - ingest: N NoSec devices and N DTLS devices (one socket each, both; default 2,000 each notifying every
//!   10 ms: 200,000/s offered, more than either the devices or the server get through on 2 cores, so both
//!   rates are capacities), registered once; each round observes
//!   `/3303/0/5700` on all N devices of one mode (each then notifies every I ms, NON), measures the server's
//!   notification count, cancels, and does the same for the other mode (alternating which goes first).
#![allow(clippy::disallowed_methods)] // a benchmark harness times its own rounds
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)] // a bench binary reports on stdout

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lwm2m_server::{DtlsConfig, FileCredentialStore, LwM2mServer, LwM2mServerHandle, ServerConfig};
use lwm2m_sim::{DtlsPsk, HandshakeLoadConfig, SimConfig, Simulator, derive_key, handshake_load};

const SECRET: &[u8] = b"ipechain dtls bench";

/// A client child process and the count it last reported on its standard output (`count N` lines: handshakes
/// completed, or notifications sent).
struct Guard(Child, Arc<AtomicU64>);
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat` (clock ticks of 1/100 s).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn utc_now() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%d %H:%M:%S UTC"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default()
}

fn spawn_child(args: &[String]) -> Guard {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe).args(args).stdout(Stdio::piped()).spawn().expect("client child");
    let count = Arc::new(AtomicU64::new(0));
    let (c, out) = (count.clone(), child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("count ").and_then(|n| n.parse().ok()) {
                c.store(n, Ordering::Relaxed);
            }
        }
    });
    Guard(child, count)
}

/// Datagrams the kernel dropped for a full receive buffer (all UDP sockets), from `/proc/net/snmp`.
fn udp_drops() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else { return 0 };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The child reports its count every 100 ms.
fn report_count(n: u64) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "count {n}");
    let _ = out.flush();
}

/// Writes the key file with one PSK per endpoint (identity = endpoint name, derived key).
fn write_keys(dir: &std::path::Path, endpoints: impl Iterator<Item = String>) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join("lwm2m-keys"))
        .unwrap();
    for ep in endpoints {
        writeln!(f, "{ep} psk {ep} {}", hex::encode(derive_key(SECRET, &ep))).unwrap();
    }
}

async fn start_server(dir: &std::path::Path) -> (LwM2mServerHandle, tokio::task::JoinHandle<()>) {
    let creds = Arc::new(FileCredentialStore::open(dir).unwrap());
    let mut d = DtlsConfig::new(creds);
    d.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let cfg = ServerConfig {
        coap_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_addr: None,
        default_timeout: Duration::from_secs(20),
        event_capacity: 1 << 16,
        dtls: Some(d),
        ..ServerConfig::default()
    };
    let (h, join) = LwM2mServer::start(cfg).await.unwrap();
    // Keep the event channel drained, as a real consumer would.
    let mut rx = h.subscribe_events();
    tokio::spawn(async move { while rx.recv().await.is_ok() || !rx.is_closed() {} });
    (h, join)
}

/// One measured round: the server's rate, the clients' own rate, the kernel's UDP drops and the cores each
/// process used.
struct Round {
    rate: f64,
    client_rate: f64,
    drops: f64,
    server_cores: f64,
    client_cores: f64,
}

async fn measure(secs: u64, child: &Guard, counter: impl Fn() -> u64) -> Round {
    let (me, pid) = (std::process::id(), child.0.id());
    // The child's count lags by up to its 100 ms report period at both ends alike.
    let (a, k0, d0, s0, c0) =
        (counter(), child.1.load(Ordering::Relaxed), udp_drops(), cpu_secs(me), cpu_secs(pid));
    let t = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (b, k1, d1, s1, c1) =
        (counter(), child.1.load(Ordering::Relaxed), udp_drops(), cpu_secs(me), cpu_secs(pid));
    let el = t.elapsed().as_secs_f64();
    Round {
        rate: (b - a) as f64 / el,
        client_rate: k1.saturating_sub(k0) as f64 / el,
        drops: d1.saturating_sub(d0) as f64 / el,
        server_cores: (s1 - s0) / el,
        client_cores: (c1 - c0) / el,
    }
}

async fn handshakes(args: &[String]) -> f64 {
    let rounds = arg(args, "--rounds", 5);
    let secs = arg(args, "--secs", 5) as u64;
    let clients = arg(args, "--hs-clients", 64);
    let dir = tempfile::tempdir().unwrap();
    // The key file holds the handshake clients and as many other identities as the ingest part uses, so
    // that the credential lookups see a realistic file.
    let devices = arg(args, "--devices", 2000);
    write_keys(
        dir.path(),
        (0..clients).map(|i| format!("hs-{i}")).chain((0..devices).map(|i| format!("dev-{i}"))),
    );
    let (h, join) = start_server(dir.path()).await;
    let dtls = h.dtls_addr().unwrap();
    let child = spawn_child(&["hs-client".into(), dtls.to_string(), clients.to_string()]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "handshakes: {clients} concurrent clients, full PSK handshakes (cookie exchange, no resumption), \
         TLS_PSK_WITH_AES_128_CCM_8; {rounds} rounds of {secs} s from {}",
        utc_now()
    );
    let stats = h.stats();
    let mut rates = Vec::new();
    for r in 0..rounds {
        let failed0 = stats.dtls_handshakes_failed.load(Ordering::Relaxed);
        let m = measure(secs, &child, || stats.dtls_handshakes.load(Ordering::Relaxed)).await;
        let failed = stats.dtls_handshakes_failed.load(Ordering::Relaxed) - failed0;
        println!(
            "  round {r}: {:>7.0} handshakes/s  (clients saw {:.0}/s, failed {failed}, UDP drops {:.0}/s; CPU: \
             server {:.2} cores, clients {:.2} cores; {:.0} µs server CPU, {:.0} µs client CPU per handshake)",
            m.rate,
            m.client_rate,
            m.drops,
            m.server_cores,
            m.client_cores,
            m.server_cores * 1e6 / m.rate.max(1.0),
            m.client_cores * 1e6 / m.rate.max(1.0)
        );
        rates.push(m.rate);
    }
    let med = median(rates);
    println!("handshakes median: {med:.0} full PSK handshakes/s (target >= 2000), until {}", utc_now());
    drop(child);
    h.shutdown();
    let _ = join.await;
    med
}

async fn observe_all(h: &LwM2mServerHandle, prefix: &str, n: usize, on: bool) -> usize {
    let path: lwm2m::LwM2mPath = "/3303/0/5700".parse().unwrap();
    let mut tasks = Vec::new();
    for i in 0..n {
        let h = h.clone();
        let ep = format!("{prefix}{i}");
        tasks.push(tokio::spawn(async move {
            if on {
                h.observe(&ep, path, None, None).await.is_ok_and(|r| r.code.to_string() == "2.05")
            } else {
                h.cancel_observe(&ep, path).await > 0
            }
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    ok
}

async fn ingest(args: &[String]) -> (f64, f64) {
    let rounds = arg(args, "--rounds", 5);
    let secs = arg(args, "--secs", 5) as u64;
    let n = arg(args, "--devices", 2000);
    let interval = arg(args, "--interval-ms", 10);
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), (0..n).map(|i| format!("dev-{i}")));
    let (h, join) = start_server(dir.path()).await;
    let nosec = spawn_child(&[
        "sim".into(),
        h.coap_addr().to_string(),
        n.to_string(),
        interval.to_string(),
        "nosec-".into(),
    ]);
    let dtls = spawn_child(&[
        "sim".into(),
        h.dtls_addr().unwrap().to_string(),
        n.to_string(),
        interval.to_string(),
        "dev-".into(),
    ]);
    let until = tokio::time::Instant::now() + Duration::from_secs(120);
    while h.registration_count() < 2 * n as u64 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(h.registration_count(), 2 * n as u64, "all simulated devices registered");
    println!(
        "ingest: {n} NoSec and {n} DTLS PSK devices (one socket each), observed /3303/0/5700 notifying every \
         {interval} ms as NON (offered {:.0}/s); {rounds} rounds of {secs} s per mode from {}",
        n as f64 * 1000.0 / interval as f64,
        utc_now()
    );
    let stats = h.stats();
    let (mut plain, mut secure, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let order: [(&str, &Guard); 2] = if r % 2 == 0 {
            [("nosec-", &nosec), ("dev-", &dtls)]
        } else {
            [("dev-", &dtls), ("nosec-", &nosec)]
        };
        let mut got = [0.0f64; 2];
        for (prefix, child) in order {
            let observed = observe_all(&h, prefix, n, true).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let m = measure(secs, child, || stats.notifications.load(Ordering::Relaxed)).await;
            let cancelled = observe_all(&h, prefix, n, false).await;
            let mode = if prefix == "dev-" { "DTLS " } else { "NoSec" };
            println!(
                "  round {r} {mode}: {:>7.0} notifications/s  (devices sent {:.0}/s, UDP drops {:.0}/s; {observed} \
                 observed, {cancelled} cancelled; CPU: server {:.2} cores, devices {:.2} cores; {:.1} µs server \
                 CPU, {:.1} µs device CPU per notification)",
                m.rate,
                m.client_rate,
                m.drops,
                m.server_cores,
                m.client_cores,
                m.server_cores * 1e6 / m.rate.max(1.0),
                m.client_cores * 1e6 / m.client_rate.max(1.0)
            );
            got[usize::from(prefix == "dev-")] = m.rate;
            // Devices stop once their next notification is answered with Reset.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        plain.push(got[0]);
        secure.push(got[1]);
        ratios.push(got[1] / got[0].max(1.0));
    }
    let (p, s) = (median(plain), median(secure));
    println!(
        "ingest medians: NoSec {p:.0}/s, DTLS {s:.0}/s; DTLS/NoSec {:.2} (ratio of medians), {:.2} (median of \
         per-round ratios; target >= 0.50), until {}",
        s / p.max(1.0),
        median(ratios),
        utc_now()
    );
    drop((nosec, dtls));
    h.shutdown();
    let _ = join.await;
    (p, s)
}

/// Child: full handshakes in a loop until killed.
async fn hs_client(args: &[String]) {
    let server: SocketAddr = args[1].parse().unwrap();
    let clients: usize = args[2].parse().unwrap();
    let load = handshake_load(HandshakeLoadConfig {
        server,
        clients,
        endpoint_prefix: "hs-".into(),
        dtls: DtlsPsk::derived(SECRET),
    })
    .await
    .unwrap();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        report_count(load.stats().completed.load(Ordering::Relaxed));
    }
}

/// Child: simulated devices (DTLS when the prefix is `dev-`) until killed.
async fn sim(args: &[String]) {
    let server: SocketAddr = args[1].parse().unwrap();
    let clients: usize = args[2].parse().unwrap();
    let interval: u64 = args[3].parse().unwrap();
    let prefix = args[4].clone();
    let sim = Simulator::start(SimConfig {
        server,
        clients,
        clients_per_socket: 1,
        dtls: (prefix == "dev-").then(|| DtlsPsk::derived(SECRET)),
        endpoint_prefix: prefix,
        lifetime: 3600,
        notify_interval: Some(Duration::from_millis(interval)),
        register_window: 64,
    })
    .await
    .unwrap();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        report_count(sim.stats().notifications.load(Ordering::Relaxed));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    match args.first().map(String::as_str) {
        Some("hs-client") => rt.block_on(hs_client(&args)),
        Some("sim") => rt.block_on(sim(&args)),
        Some("handshakes") => {
            rt.block_on(handshakes(&args));
        }
        Some("ingest") => {
            rt.block_on(ingest(&args));
        }
        _ => {
            let hs = rt.block_on(handshakes(&args));
            let (p, s) = rt.block_on(ingest(&args));
            println!(
                "summary: {hs:.0} full PSK handshakes/s (target >= 2000); notifications NoSec {p:.0}/s, DTLS \
                 {s:.0}/s, ratio {:.2} (target >= 0.50)",
                s / p.max(1.0)
            );
        }
    }
}
