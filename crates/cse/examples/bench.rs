//! Benchmark: contentInstance creates/s and `la` retrieves/s at 1 and 16 concurrent clients, against the embedded
//! CSE (durable, redb with fsync) and ACME, in the same run on the same machine. Prints medians of several runs
//! and the ratio.
//!
//! `cargo run --release -p cse --example bench -- [seconds-per-run] [runs]` (ACME from `scripts/test.sh`).

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark program: prints its table, fails loudly

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn send(
    c: &HttpClient,
    auth: &str,
    method: &str,
    path: &str,
    origin: &str,
    ty: Option<u16>,
    body: Option<serde_json::Value>,
) -> u16 {
    let mut b = http::Request::builder()
        .method(method)
        .uri(format!("http://{auth}{path}"))
        .header("X-M2M-Origin", origin)
        .header("X-M2M-RI", "b")
        .header("X-M2M-RVI", "3");
    if let Some(t) = ty {
        b = b.header("Content-Type", format!("application/json;ty={t}"));
    }
    let body = body.map(|v| serde_json::to_vec(&v).unwrap()).unwrap_or_default();
    let rsp = c.request(b.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
    let rsc = rsp
        .headers()
        .get("x-m2m-rsc")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let _ = rsp.into_body().collect().await;
    rsc
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Create,
    Latest,
}

/// Runs `clients` concurrent loops for `secs`; each client has its own connection and its own container.
async fn measure(auth: &str, op: Op, clients: usize, secs: f64, tag: &str) -> f64 {
    let origin = "CAdmin";
    let mut setups = Vec::new();
    for i in 0..clients {
        let c: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let path = format!("/cse-in/bench/{tag}{i}");
        let rsc = send(
            &c,
            auth,
            "POST",
            "/cse-in/bench",
            origin,
            Some(3),
            Some(json!({"m2m:cnt": {"rn": format!("{tag}{i}"), "mni": 100}})),
        )
        .await;
        assert_eq!(rsc, 2001, "container create");
        let rsc =
            send(&c, auth, "POST", &path, origin, Some(4), Some(json!({"m2m:cin": {"con": "seed"}}))).await;
        assert_eq!(rsc, 2001);
        setups.push((c, path));
    }
    #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for (c, path) in setups {
        let auth = auth.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
            while Instant::now() < deadline {
                let rsc = match op {
                    Op::Create => {
                        send(
                            &c,
                            &auth,
                            "POST",
                            &path,
                            origin,
                            Some(4),
                            Some(json!({"m2m:cin": {"con": format!("{n}")}})),
                        )
                        .await
                    }
                    Op::Latest => send(&c, &auth, "GET", &format!("{path}/la"), origin, None, None).await,
                };
                assert!(rsc == 2001 || rsc == 2000, "unexpected rsc {rsc}");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn prepare(auth: &str) {
    let c: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let rsc = send(
        &c,
        auth,
        "POST",
        "/cse-in",
        "Cbench",
        Some(2),
        Some(json!({"m2m:ae": {"rn": "bench", "api": "Nbench", "rr": false, "srv": ["3"]}})),
    )
    .await;
    assert!(rsc == 2001 || rsc == 4117 || rsc == 4105, "AE create {rsc}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);

    // Embedded CSE, durable.
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emb = listener.local_addr().unwrap().to_string();
    // `BENCH_MEMORY=1`: the embedded CSE without storage (to see the cost of durability).
    let durable = std::env::var_os("BENCH_MEMORY").is_none();
    let data_dir = durable.then(|| dir.path().to_path_buf());
    let cfg = cse::CseConfig { data_dir, ..Default::default() };
    let c = cse::Cse::open(cfg).await.unwrap();
    tokio::spawn(cse::serve(c, listener, std::future::pending()));

    // ACME.
    let acme_dir = tempfile::tempdir().unwrap();
    let port = test_support::free_tcp_port();
    let ini = format!(
        "[basic.config]\ncseType=IN\ncseID=id-in\ncseName=cse-in\nadminID=CAdmin\nnetworkInterface=127.0.0.1\n\
         cseHost=127.0.0.1\nhttpPort={port}\ndatabaseType=memory\nlogLevel=warning\n[cse]\nenableRemoteCSE=false\n\
         [database]\nresetOnStartup=true\n[http]\nenable=true\n[coap]\nenable=false\n[mqtt]\nenable=false\n\
         [websocket]\nenable=false\n[cse.statistics]\nenable=false\n[textui]\nenable=false\nstartWithTUI=false\n\
         [webui]\nenable=false\n[console]\nheadless=true\nconfirmQuit=false\n"
    );
    std::fs::write(acme_dir.path().join("acme.ini"), ini).unwrap();
    let _acme = test_support::ChildGuard::spawn(
        std::process::Command::new(test_support::acmecse())
            .current_dir(acme_dir.path())
            .args(["--base-directory", ".", "--config", "acme.ini", "--headless", "--http", "--http-port"])
            .arg(port.to_string())
            .args(["--http-address", &format!("http://127.0.0.1:{port}")])
            .args(["--network-interface", "127.0.0.1", "--db-type", "memory", "--db-reset", "--no-coap"])
            .args(["--no-mqtt", "--no-ws", "--no-remote-cse", "--no-statistics", "--log-level", "warn"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    )
    .unwrap();
    let acme = format!("127.0.0.1:{port}");
    let probe: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
            && send(&probe, &acme, "GET", "/cse-in", "CAdmin", None, None).await == 2000
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    prepare(&emb).await;
    prepare(&acme).await;

    let mode = if durable { "durable: redb, fsync before each answer" } else { "in-memory" };
    println!("oneM2M CSE benchmark: {runs} runs of {secs} s each, medians (requests/s); embedded CSE {mode}");
    println!("{:<28} {:>8} {:>12} {:>10} {:>8}", "operation", "clients", "embedded", "ACME", "ratio");
    let mut k = 0;
    for (op, name) in [(Op::Create, "contentInstance CREATE"), (Op::Latest, "la RETRIEVE")] {
        for clients in [1usize, 16] {
            let (mut e, mut a) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                k += 1;
                e.push(measure(&emb, op, clients, secs, &format!("e{k}x")).await);
                a.push(measure(&acme, op, clients, secs, &format!("a{k}x")).await);
            }
            let (e, a) = (median(e), median(a));
            println!("{name:<28} {clients:>8} {e:>12.0} {a:>10.0} {:>7.1}x", e / a);
        }
    }
}
