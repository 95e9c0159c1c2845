//! Benchmark: contentInstance creates/s and `la` retrieves/s at 1 and 16 concurrent clients, against the embedded
//! CSE (durable: WAL with one fdatasync per commit group, checkpointed into redb) and ACME twice, in the same run on
//! the same machine: ACME in memory (`databaseType=memory`, nothing on disk) and ACME with its default persistent
//! database (`tinydb`: JSON files written by a background thread about a second after a change, so ACME answers
//! before its write is on disk). Prints medians of several runs and both ratios, and an fsync probe
//! (`cse::bench::fsync_floor`) run right before each 1-client CREATE run: a single client waits for one
//! `fdatasync` per CREATE. The load generator is `cse::bench`. A last line gives the upper bound of one client's
//! durable CREATEs on this machine: client and CSE on one thread, so that only the sync sleeps.
//!
//! `cargo run --release -p cse --example bench -- [seconds-per-run] [runs]` (ACME from `scripts/test.sh`);
//! `BENCH_MEMORY=1` runs the embedded CSE without storage.

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark program: prints its table, fails loudly

use std::time::Duration;

use cse::bench::{self, BenchOp};
use test_support::{AcmeDb, AcmeProcess};

async fn wait_up(authority: &str, what: &str) {
    let mut last = None;
    for _ in 0..300 {
        match bench::prepare(authority).await {
            Ok(()) => return,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not come up: {last:?}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);

    // Embedded CSE, durable unless BENCH_MEMORY is set.
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emb = listener.local_addr().unwrap().to_string();
    let durable = std::env::var_os("BENCH_MEMORY").is_none();
    let cfg = cse::CseConfig { data_dir: durable.then(|| dir.path().to_path_buf()), ..Default::default() };
    let c = cse::Cse::open(cfg).await.unwrap();
    tokio::spawn(cse::serve(c, listener, std::future::pending()));

    // ACME in memory (as the tests start it) and with its default persistent database.
    let acme_mem_process = AcmeProcess::spawn_with(false, AcmeDb::Memory).unwrap();
    let acme_disk_process = AcmeProcess::spawn_with(false, AcmeDb::Default).unwrap();
    let (acme_mem, acme_disk) = (acme_mem_process.authority(), acme_disk_process.authority());
    wait_up(&acme_mem, "ACME (memory)").await;
    wait_up(&acme_disk, "ACME (tinydb)").await;
    bench::prepare(&emb).await.unwrap();

    let mode = if durable { "durable: WAL fdatasync before each answer" } else { "in-memory" };
    println!("oneM2M CSE benchmark: {runs} runs of {secs} s each, medians (requests/s); embedded CSE {mode}");
    println!(
        "ACME mem = databaseType memory; ACME disk = ACME's default tinydb (written ~1 s after the answer)"
    );
    println!(
        "{:<24} {:>7} {:>10} {:>10} {:>8} {:>10} {:>8}",
        "operation", "clients", "embedded", "ACME mem", "ratio", "ACME disk", "ratio"
    );
    let d = Duration::from_secs_f64(secs);
    let mut k = 0;
    let mut floors: Vec<(f64, f64)> = Vec::new();
    let mut acme_create1 = None;
    for (op, name) in
        [(BenchOp::CreateCin, "contentInstance CREATE"), (BenchOp::RetrieveLatest, "la RETRIEVE")]
    {
        for clients in [1usize, 16] {
            let (mut e, mut a, mut p) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                k += 1;
                if durable && op == BenchOp::CreateCin && clients == 1 {
                    floors.push(bench::fsync_floor(dir.path(), 300).unwrap());
                }
                e.push(bench::measure(&emb, op, clients, d, &format!("e{k}x")).await.unwrap());
                a.push(bench::measure(&acme_mem, op, clients, d, &format!("a{k}x")).await.unwrap());
                p.push(bench::measure(&acme_disk, op, clients, d, &format!("p{k}x")).await.unwrap());
                if op == BenchOp::CreateCin && clients == 1 {
                    let (x, y, z) = (e[e.len() - 1], a[a.len() - 1], p[p.len() - 1]);
                    let floor = floors.last().map_or(String::new(), |f| {
                        format!("; fsync probe just before: {:.0} syncs/s, median {:.0} µs", f.0, f.1)
                    });
                    println!(
                        "  run {}: 1-client CREATE embedded {x:.0}/s, ACME mem {y:.0}/s, ACME disk {z:.0}/s{floor}",
                        e.len()
                    );
                }
            }
            let (e, a, p) = (bench::median(e), bench::median(a), bench::median(p));
            if op == BenchOp::CreateCin && clients == 1 {
                acme_create1 = Some((a, p));
            }
            println!("{name:<24} {clients:>7} {e:>10.0} {a:>10.0} {:>7.1}x {p:>10.0} {:>7.1}x", e / a, e / p);
        }
    }
    // ACME's tinydb really wrote its files (the "disk" column is not a second in-memory ACME).
    let data = acme_disk_process.base_dir().join("data");
    let files = std::fs::read_dir(&data).map(Iterator::count).unwrap_or(0);
    assert!(files > 0, "ACME (tinydb) wrote nothing under {}", data.display());
    println!("ACME disk: {files} database files under its data/ directory");
    if !floors.is_empty() {
        let rate = bench::median(floors.iter().map(|f| f.0).collect());
        let lat = bench::median(floors.iter().map(|f| f.1).collect());
        println!(
            "fsync probe before the 1-client CREATE runs (write + fdatasync loop on its own thread, median of {}): \
             {rate:.0} syncs/s, {lat:.0} µs each",
            floors.len()
        );
    }
    if durable && let Some((a, p)) = acme_create1 {
        let one = bench::median(same_thread_creates(secs, runs));
        println!(
            "upper bound: 1-client CREATE with the client on the CSE's own thread (no wake-ups but the sync's): \
             {one:.0}/s = {:.1}x ACME mem, {:.1}x ACME disk",
            one / a,
            one / p
        );
    }
}

/// One client's durable CREATEs/s against a second durable CSE that shares one thread (a current-thread runtime)
/// with the client: no thread or process wakes another on the way, only the `fdatasync` sleeps. A client in a
/// thread or process of its own adds a wake-up each way to every request, so this is what one client at a time
/// can get at best from the durable CSE on this machine.
fn same_thread_creates(secs: f64, runs: usize) -> Vec<f64> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let auth = listener.local_addr().unwrap().to_string();
            let cfg = cse::CseConfig { data_dir: Some(dir.path().to_path_buf()), ..Default::default() };
            let c = cse::Cse::open(cfg).await.unwrap();
            tokio::spawn(cse::serve(c.clone(), listener, std::future::pending()));
            bench::prepare(&auth).await.unwrap();
            let mut v = Vec::new();
            for k in 0..runs {
                let d = Duration::from_secs_f64(secs);
                v.push(bench::measure(&auth, BenchOp::CreateCin, 1, d, &format!("s{k}x")).await.unwrap());
            }
            c.close().await;
            v
        })
    })
    .join()
    .unwrap()
}
