//! The notification listener: an HTTP server that answers oneM2M notifications.
//!
//! Verification requests (`m2m:sgn` with `vrq: true`) are answered 2000 and not forwarded; every other NOTIFY is
//! answered 2000 after it was handed to the channel (or 5000 if the receiver is gone, so the CSE retries).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use onem2m::{Rsc, http as binding};
use serde_json::Value;
use tokio::sync::mpsc;

/// A received notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// `X-M2M-Origin` (the CSE).
    pub origin: String,
    /// The request path it was sent to (e.g. `/Cipe` for an AE-ID target).
    pub path: String,
    /// The content, `{"m2m:sgn": {...}}`.
    pub body: Value,
}

impl Notification {
    /// True for a subscription deletion notice (`sud`).
    pub fn is_deletion(&self) -> bool {
        self.body.pointer("/m2m:sgn/sud").and_then(Value::as_bool) == Some(true)
    }

    /// The subscription reference `sur`.
    pub fn sur(&self) -> Option<&str> {
        self.body.pointer("/m2m:sgn/sur").and_then(Value::as_str)
    }

    /// The resource carried in `nev.rep`, unwrapped (e.g. the contentInstance).
    pub fn representation(&self) -> Option<&Value> {
        let rep = self.body.pointer("/m2m:sgn/nev/rep")?;
        rep.as_object().and_then(|o| o.values().next())
    }
}

/// A running listener.
pub struct NotificationListener {
    addr: SocketAddr,
    https: bool,
    rx: mpsc::Receiver<Notification>,
    task: tokio::task::JoinHandle<()>,
}

impl NotificationListener {
    /// Binds `addr` (use port 0 for an ephemeral port) and starts serving HTTP.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Self::start(addr, None).await
    }

    /// Binds `addr` and serves HTTPS with `tls` (see [`crate::tls::TlsServer`]); [`Self::url`] is `https://…`.
    pub async fn bind_tls(
        addr: SocketAddr,
        tls: std::sync::Arc<rustls::ServerConfig>,
    ) -> std::io::Result<Self> {
        Self::start(addr, Some(tls)).await
    }

    async fn start(
        addr: SocketAddr,
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(1024);
        let app = axum::Router::new().fallback(handle).with_state(tx);
        let https = tls.is_some();
        let task = tokio::spawn(async move {
            let r = match tls {
                Some(tls) => crate::tls::serve_tls(listener, app, tls, std::future::pending()).await,
                None => axum::serve(listener, app).await,
            };
            if let Err(e) = r {
                tracing::warn!(error = %e, "notification listener stopped");
            }
        });
        Ok(NotificationListener { addr, https, rx, task })
    }

    /// The URL to give a CSE as `poa` or `nu`.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.addr)
    }

    /// The next notification (`None` when the listener stopped).
    pub async fn recv(&mut self) -> Option<Notification> {
        self.rx.recv().await
    }
}

impl Drop for NotificationListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(rsc: Rsc, rqi: &str) -> Response {
    let mut b = Response::builder()
        .status(rsc.http_status())
        .header(binding::X_M2M_RSC, rsc.code())
        .header(binding::X_M2M_RVI, "3");
    if let Ok(v) = http::HeaderValue::from_str(rqi) {
        b = b.header(binding::X_M2M_RI, v);
    }
    b.body(Body::empty()).unwrap_or_default()
}

async fn handle(State(tx): State<mpsc::Sender<Notification>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let rqi = parts.headers.get(binding::X_M2M_RI).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let origin =
        parts.headers.get(binding::X_M2M_ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if parts.method != http::Method::POST {
        return answer(Rsc::OperationNotAllowed, &rqi);
    }
    let Ok(bytes) = axum::body::to_bytes(body, 4 << 20).await else {
        return answer(Rsc::BadRequest, &rqi);
    };
    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
        return answer(Rsc::BadRequest, &rqi);
    };
    if body.pointer("/m2m:sgn").is_none() {
        return answer(Rsc::BadRequest, &rqi);
    }
    if body.pointer("/m2m:sgn/vrq").and_then(Value::as_bool) == Some(true) {
        return answer(Rsc::Ok, &rqi);
    }
    let n = Notification { origin, path: parts.uri.path().to_owned(), body };
    match tx.send(n).await {
        Ok(()) => answer(Rsc::Ok, &rqi),
        Err(_) => answer(Rsc::InternalServerError, &rqi),
    }
}
