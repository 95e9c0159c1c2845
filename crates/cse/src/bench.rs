//! Load generator for the CSE benchmark (`ipechain bench cse`, `examples/bench.rs`): contentInstance CREATEs/s and
//! `la` RETRIEVEs/s against any Mca HTTP endpoint, with N concurrent clients, each on its own connection and
//! container (so that CSEs that corrupt counters under concurrent writes to one container are measured fairly).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::SystemClock;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchOp {
    /// CREATE a contentInstance (`mni=100` containers).
    CreateCin,
    /// RETRIEVE `<container>/la`.
    RetrieveLatest,
}

/// A benchmark failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A request failed.
    #[error("request failed: {0}")]
    Request(String),
    /// The CSE answered an unexpected status.
    #[error("unexpected answer {rsc} to {what}")]
    Status {
        /// The RSC.
        rsc: u16,
        /// The request.
        what: String,
    },
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The originator of the measured requests (the default admin, allowed everywhere in ACME and the embedded CSE).
const ADMIN: &str = "CAdmin";

async fn send(
    c: &HttpClient,
    auth: &str,
    origin: &str,
    method: http::Method,
    path: &str,
    ty: Option<u16>,
    body: Option<Value>,
) -> Result<u16, BenchError> {
    let err = |e: &dyn std::fmt::Display| BenchError::Request(e.to_string());
    let mut b = http::Request::builder()
        .method(method)
        .uri(format!("http://{auth}{path}"))
        .header("X-M2M-Origin", origin)
        .header("X-M2M-RI", "b")
        .header("X-M2M-RVI", "3");
    if let Some(t) = ty {
        b = b.header("Content-Type", format!("application/json;ty={t}"));
    }
    let body = body.map(|v| v.to_string().into_bytes()).unwrap_or_default();
    let req = b.body(Full::new(Bytes::from(body))).map_err(|e| err(&e))?;
    let rsp = c.request(req).await.map_err(|e| err(&e))?;
    let rsc = rsp
        .headers()
        .get("x-m2m-rsc")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    rsp.into_body().collect().await.map_err(|e| err(&e))?;
    Ok(rsc)
}

fn expect(rsc: u16, ok: &[u16], what: &str) -> Result<(), BenchError> {
    if ok.contains(&rsc) { Ok(()) } else { Err(BenchError::Status { rsc, what: what.to_owned() }) }
}

/// Registers the benchmark AE `Cbench` (`cse-in/bench`) at the CSE at `authority` (`host:port`).
pub async fn prepare(authority: &str) -> Result<(), BenchError> {
    let c: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let ae = json!({"m2m:ae": {"rn": "bench", "api": "Nbench", "rr": false, "srv": ["3"]}});
    let rsc = send(&c, authority, "Cbench", http::Method::POST, "/cse-in", Some(2), Some(ae)).await?;
    expect(rsc, &[2001, 4105, 4117], "AE registration")
}

/// Runs `clients` concurrent request loops for `duration` and returns requests per second. `tag` makes the
/// container names of this run unique.
#[allow(clippy::disallowed_methods)] // a benchmark measures elapsed time
pub async fn measure(
    authority: &str,
    op: BenchOp,
    clients: usize,
    duration: Duration,
    tag: &str,
) -> Result<f64, BenchError> {
    let mut setups = Vec::new();
    for i in 0..clients {
        let c: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let rn = format!("{tag}{i}");
        let cnt = json!({"m2m:cnt": {"rn": rn, "mni": 100}});
        let rsc = send(&c, authority, ADMIN, http::Method::POST, "/cse-in/bench", Some(3), Some(cnt)).await?;
        expect(rsc, &[2001], "container CREATE")?;
        let path = format!("/cse-in/bench/{rn}");
        let rsc = send(
            &c,
            authority,
            ADMIN,
            http::Method::POST,
            &path,
            Some(4),
            Some(json!({"m2m:cin": {"con": "0"}})),
        )
        .await?;
        expect(rsc, &[2001], "contentInstance CREATE")?;
        setups.push((c, path));
    }
    let clock = SystemClock;
    let start = clock.instant();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for (c, path) in setups {
        let auth = authority.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let la = format!("{path}/la");
            while clock.instant() < deadline {
                let rsc = match op {
                    BenchOp::CreateCin => {
                        let cin = json!({"m2m:cin": {"con": n.to_string()}});
                        send(&c, &auth, ADMIN, http::Method::POST, &path, Some(4), Some(cin)).await?
                    }
                    BenchOp::RetrieveLatest => {
                        send(&c, &auth, ADMIN, http::Method::GET, &la, None, None).await?
                    }
                };
                expect(rsc, &[2000, 2001], "benchmark request")?;
                n += 1;
            }
            Ok::<u64, BenchError>(n)
        }));
    }
    let mut total = 0u64;
    for t in tasks {
        total += t.await.map_err(|e| BenchError::Request(e.to_string()))??;
    }
    let secs = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // request counts stay far below 2^52
    Ok(total as f64 / secs)
}

/// What one durable write costs on the disk under `dir` right now: `n` times a small write into already
/// zero-filled space plus `fdatasync`, as the CSE's WAL does for one commit group, on a thread of its own (as the
/// WAL's writer thread). Returns syncs per second and the median latency in microseconds, scheduling delays after
/// each sync included. A single client's durable CREATEs/s cannot exceed what the disk allows here.
pub fn fsync_floor(dir: &std::path::Path, n: usize) -> std::io::Result<(f64, f64)> {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || fsync_loop(&dir, n))
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("probe")))
}

#[allow(clippy::disallowed_methods)] // a benchmark measures elapsed time
fn fsync_loop(dir: &std::path::Path, n: usize) -> std::io::Result<(f64, f64)> {
    use std::os::unix::fs::FileExt;
    let path = dir.join("fsync-probe");
    let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
    let rec = [0x5au8; 512];
    f.write_all_at(&vec![0u8; rec.len() * n.max(1)], 0)?;
    f.sync_all()?;
    let clock = SystemClock;
    let mut lat = Vec::with_capacity(n);
    let start = clock.instant();
    for i in 0..n {
        let t = clock.instant();
        f.write_all_at(&rec, (i * rec.len()) as u64)?;
        f.sync_data()?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let secs = start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    #[allow(clippy::cast_precision_loss)] // small counts
    Ok((n as f64 / secs, median(lat)))
}

/// The median of `v` (0 for an empty list).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
