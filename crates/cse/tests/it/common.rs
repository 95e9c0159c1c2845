//! Test harness: an Mca HTTP client, the embedded CSE on an ephemeral port, ACME as a child process, and a
//! notification receiver.

#![allow(clippy::unwrap_used)] // test harness: a failed unwrap is a failed test

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::mpsc;

/// An answer as the tests see it.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) rsc: u16,
    pub(crate) http: u16,
    pub(crate) pc: Value,
}

impl Answer {
    /// The resource representation inside `{"m2m:xxx": {...}}`.
    pub(crate) fn res(&self) -> &Value {
        self.pc.as_object().and_then(|o| o.values().next()).unwrap_or(&Value::Null)
    }
}

/// A raw Mca HTTP client.
#[derive(Clone)]
pub(crate) struct Mca {
    pub(crate) authority: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Mca {
    pub(crate) fn new(authority: String) -> Self {
        Mca { authority, client: Client::builder(TokioExecutor::new()).build_http() }
    }

    /// Sends a request with the standard headers; `ty` sets `Content-Type: application/json;ty=N`.
    pub(crate) async fn req(
        &self,
        method: &str,
        path: &str,
        origin: Option<&str>,
        ty: Option<u16>,
        body: Option<Value>,
    ) -> Answer {
        let mut headers: Vec<(&str, String)> = vec![("X-M2M-RI", "rq".into()), ("X-M2M-RVI", "3".into())];
        if let Some(o) = origin {
            headers.push(("X-M2M-Origin", o.into()));
        }
        headers.push((
            "Content-Type",
            ty.map_or("application/json".into(), |t| format!("application/json;ty={t}")),
        ));
        let body = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        self.raw(method, path, &headers, body).await
    }

    /// Like [`Mca::req`], but `None` when the connection fails (the CSE went away).
    pub(crate) async fn try_req(
        &self,
        method: &str,
        path: &str,
        origin: Option<&str>,
        ty: Option<u16>,
        body: Option<Value>,
    ) -> Option<Answer> {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{}", self.authority, path))
            .header("X-M2M-RI", "rq")
            .header("X-M2M-RVI", "3")
            .header(
                "Content-Type",
                ty.map_or("application/json".into(), |t| format!("application/json;ty={t}")),
            );
        if let Some(o) = origin {
            b = b.header("X-M2M-Origin", o);
        }
        let body = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        let rsp = self.client.request(b.body(Full::new(Bytes::from(body))).unwrap()).await.ok()?;
        let http = rsp.status().as_u16();
        let rsc =
            rsp.headers().get("x-m2m-rsc").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())?;
        let bytes = rsp.into_body().collect().await.ok()?.to_bytes();
        let pc = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Some(Answer { rsc, http, pc })
    }

    /// Sends exactly the given headers and body.
    pub(crate) async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Answer {
        let mut b = http::Request::builder().method(method).uri(format!("http://{}{}", self.authority, path));
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        let req = b.body(Full::new(Bytes::from(body))).unwrap();
        let rsp =
            tokio::time::timeout(Duration::from_secs(20), self.client.request(req)).await.unwrap().unwrap();
        let http = rsp.status().as_u16();
        let rsc = rsp
            .headers()
            .get("x-m2m-rsc")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bytes = rsp.into_body().collect().await.unwrap().to_bytes();
        let pc = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Answer { rsc, http, pc }
    }
}

/// The embedded CSE served on an ephemeral port.
pub(crate) struct Embedded {
    pub(crate) cse: cse::Cse,
    pub(crate) mca: Mca,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Embedded {
    pub(crate) async fn start(data_dir: Option<PathBuf>) -> Embedded {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cfg =
            cse::CseConfig { data_dir, poa: vec![format!("http://127.0.0.1:{port}")], ..Default::default() };
        let cse = cse::Cse::open(cfg).await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let c2 = cse.clone();
        let task = tokio::spawn(async move {
            cse::serve(c2, listener, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Embedded { cse, mca: Mca::new(format!("127.0.0.1:{port}")), shutdown: Some(tx), task: Some(task) }
    }

    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.cse.close().await;
    }
}

/// ACME started with an acme.ini in a temporary base directory.
pub(crate) struct Acme {
    pub(crate) mca: Mca,
    _process: test_support::AcmeProcess,
}

impl Acme {
    pub(crate) async fn start() -> Acme {
        let process = test_support::AcmeProcess::spawn(true).unwrap();
        let port = process.port;
        let mca = Mca::new(format!("127.0.0.1:{port}"));
        let acme = Acme { mca, _process: process };
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                let a = acme.mca.req("GET", "/cse-in", Some("CAdmin"), None, None).await;
                if a.rsc == 2000 {
                    return acme;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("ACME did not come up on port {port}");
    }

    /// Wipes every resource (`/__ut__` Reset).
    pub(crate) async fn reset(&self) {
        let a = self
            .mca
            .raw(
                "POST",
                "/__ut__",
                &[
                    ("X-M2M-UTCMD", "Reset".into()),
                    ("X-M2M-Origin", "CAdmin".into()),
                    ("X-M2M-RI", "ut".into()),
                    ("X-M2M-RVI", "3".into()),
                ],
                Vec::new(),
            )
            .await;
        assert!(a.http < 300, "ACME reset failed: {a:?}");
    }
}

/// A notification receiver: answers 2000 to everything and forwards the bodies.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) rx: mpsc::UnboundedReceiver<Value>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let tx = tx.clone();
            async move {
                let ri = req.headers().get("x-m2m-ri").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let b = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
                let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                let _ = tx.send(v);
                http::Response::builder()
                    .status(200)
                    .header("X-M2M-RSC", "2000")
                    .header("X-M2M-RI", ri)
                    .body(axum::body::Body::empty())
                    .unwrap()
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url: format!("http://127.0.0.1:{port}"), rx }
    }

    /// The next notification body, within 10 s.
    pub(crate) async fn next(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("notification in time")
            .unwrap()
    }

    /// The next notification that carries a contentInstance (others, e.g. a new child subscription, are skipped).
    pub(crate) async fn next_cin(&mut self) -> Value {
        loop {
            let n = self.next().await;
            if n.pointer("/m2m:sgn/nev/rep/m2m:cin").is_some() {
                return n;
            }
        }
    }

    /// The next notification body within 3 s, or `Null`.
    pub(crate) async fn next_or_null(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(3), self.rx.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or(Value::Null)
    }

    /// Collects notifications until none arrives for `quiet`.
    pub(crate) async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(Some(v)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            out.push(v);
        }
        out
    }
}
