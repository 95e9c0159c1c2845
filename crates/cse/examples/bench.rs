//! Benchmark: contentInstance creates/s and `la` retrieves/s at 1 and 16 concurrent clients, against the embedded
//! CSE (durable: WAL with one fdatasync per commit group, checkpointed into redb) and ACME, in the same run on the
//! same machine. Prints medians of several runs and the ratio, and an fsync probe (`cse::bench::fsync_floor`) run
//! right before each 1-client CREATE run: a single client waits for one `fdatasync` per CREATE. The load generator
//! is `cse::bench`.
//!
//! `cargo run --release -p cse --example bench -- [seconds-per-run] [runs]` (ACME from `scripts/test.sh`);
//! `BENCH_MEMORY=1` runs the embedded CSE without storage.

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark program: prints its table, fails loudly

use std::time::Duration;

use cse::bench::{self, BenchOp};

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

    // ACME, as the tests start it.
    let acme_process = test_support::AcmeProcess::spawn(false).unwrap();
    let acme = acme_process.authority();
    let mut up = false;
    for _ in 0..300 {
        if bench::prepare(&acme).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "ACME did not come up");
    bench::prepare(&emb).await.unwrap();

    let mode = if durable { "durable: WAL fdatasync before each answer" } else { "in-memory" };
    println!("oneM2M CSE benchmark: {runs} runs of {secs} s each, medians (requests/s); embedded CSE {mode}");
    println!("{:<28} {:>8} {:>12} {:>10} {:>8}", "operation", "clients", "embedded", "ACME", "ratio");
    let d = Duration::from_secs_f64(secs);
    let mut k = 0;
    let mut floors: Vec<(f64, f64)> = Vec::new();
    for (op, name) in
        [(BenchOp::CreateCin, "contentInstance CREATE"), (BenchOp::RetrieveLatest, "la RETRIEVE")]
    {
        for clients in [1usize, 16] {
            let (mut e, mut a) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                k += 1;
                if durable && op == BenchOp::CreateCin && clients == 1 {
                    floors.push(bench::fsync_floor(dir.path(), 300).unwrap());
                }
                e.push(bench::measure(&emb, op, clients, d, &format!("e{k}x")).await.unwrap());
                a.push(bench::measure(&acme, op, clients, d, &format!("a{k}x")).await.unwrap());
                if op == BenchOp::CreateCin && clients == 1 {
                    let (x, y) = (e[e.len() - 1], a[a.len() - 1]);
                    let floor = floors.last().map_or(String::new(), |f| {
                        format!("; fsync probe just before: {:.0} syncs/s, median {:.0} µs", f.0, f.1)
                    });
                    println!("  run {}: 1-client CREATE embedded {x:.0}/s, ACME {y:.0}/s{floor}", e.len());
                }
            }
            let (e, a) = (bench::median(e), bench::median(a));
            println!("{name:<28} {clients:>8} {e:>12.0} {a:>10.0} {:>7.1}x", e / a);
        }
    }
    if !floors.is_empty() {
        let rate = bench::median(floors.iter().map(|f| f.0).collect());
        let lat = bench::median(floors.iter().map(|f| f.1).collect());
        println!(
            "fsync probe before the 1-client CREATE runs (write + fdatasync loop on its own thread, median of {}): \
             {rate:.0} syncs/s, {lat:.0} µs each",
            floors.len()
        );
    }
}
