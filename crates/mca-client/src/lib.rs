//! A oneM2M Mca client over HTTP for the bridge gateway: join an existing CSE (ACME and others) as an IPE AE.
//!
//! - [`McaClient::send`] sends any [`RequestPrimitive`], retrying transport failures under a [`Backoff`]
//!   (exponential, full jitter; a CREATE only when the connection could not be made, so it never acts twice);
//!   the connection pool reconnects.
//! - Helpers: [`McaClient::register_ae`], [`McaClient::create_container`], [`McaClient::create_cin`],
//!   [`McaClient::create_subscription`], [`McaClient::retrieve`], [`McaClient::delete`].
//! - Writes to one container are serialized ([`McaClient::create_cin`] holds a per-container lock): some CSEs
//!   (ACME) corrupt `cni`/`st` under concurrent writes to one container.
//! - [`NotificationListener`] receives notifications on its own HTTP port, answers verification requests
//!   (`vrq`) with 2000 and hands every other notification to a channel.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mca_client::McaError> {
//! use mca_client::{McaClient, McaConfig, NotificationListener};
//! let listener = NotificationListener::bind("127.0.0.1:0".parse().unwrap()).await?;
//! let cse = McaClient::new(McaConfig::new("127.0.0.1:8080", "Cipechain-ipe"));
//! cse.register_ae("cse-in", "ipechain-ipe", "Nipechain.ipe", vec![listener.url()], vec![]).await?;
//! cse.create_container("cse-in/ipechain-ipe", "cmd", None).await?;
//! cse.create_subscription("cse-in/ipechain-ipe/cmd", "sub", vec![listener.url()], &[3]).await?;
//! # Ok(()) }
//! ```

mod listener;
pub mod tls;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use onem2m::{Operation, RequestPrimitive, ResponsePrimitive, Rsc, http as binding};
use serde_json::{Value, json};

pub use listener::{Notification, NotificationListener};
pub use retry::Backoff;

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McaError {
    /// The CSE could not be reached (after retries).
    #[error("CSE not reachable: {0}")]
    Transport(String),
    /// The CSE answered with an error status.
    #[error("CSE answered {rsc}: {message}")]
    Status {
        /// The status.
        rsc: Rsc,
        /// The CSE's debug message, if any.
        message: String,
    },
    /// The answer could not be read.
    #[error("bad answer: {0}")]
    Protocol(String),
    /// The notification listener could not start.
    #[error("listener: {0}")]
    Listen(#[from] std::io::Error),
    /// TLS material could not be used.
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct McaConfig {
    /// `host:port` of the CSE.
    pub authority: String,
    /// The originator used for requests (the IPE's AE-ID).
    pub origin: String,
    /// `X-M2M-RVI`.
    pub rvi: String,
    /// Waits between attempts on transport failures.
    pub retry: Backoff,
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Speak HTTPS to the CSE (`https://<authority>`), verified with [`McaConfig::tls`].
    pub https: bool,
    /// TLS client settings (trusted CAs, optional client certificate) for `https://`, built with
    /// [`tls::TlsClient::rustls_config`]. `None`: no CA is trusted, so HTTPS connections fail.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl McaConfig {
    /// Settings with defaults (release 3, 10 s per attempt, [`McaConfig::DEFAULT_RETRY`]).
    pub fn new(authority: impl Into<String>, origin: impl Into<String>) -> Self {
        McaConfig {
            authority: authority.into(),
            origin: origin.into(),
            rvi: "3".into(),
            retry: Self::DEFAULT_RETRY,
            timeout: Duration::from_secs(10),
            https: false,
            tls: None,
        }
    }

    /// Up to 6 retries, waiting up to 0.2, 0.4, 0.8, 1.6, 3 and 3 s (drawn: 4.5 s in all on average, as the fixed
    /// 0.1, 0.3, 1 and 3 s before).
    pub const DEFAULT_RETRY: Backoff =
        Backoff::new(Duration::from_millis(200), Duration::from_secs(3)).with_max_retries(6);

    /// Settings for the CSE at `url` (`http://host:port` or `https://host:port`, a path after it is ignored);
    /// `tls` is used for `https://`.
    pub fn from_url(
        url: &str,
        origin: impl Into<String>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Option<Self> {
        let url = CseUrl::parse(url).ok()?;
        let mut cfg = McaConfig::new(url.authority, origin);
        cfg.https = url.https;
        cfg.tls = tls;
        Some(cfg)
    }
}

/// A CSE's URL, `http://host:port/path` or `https://…`, as `http::Uri` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CseUrl {
    /// `https://`.
    pub https: bool,
    /// `host:port` (a user part included, if any).
    pub authority: String,
    /// The path without its leading and trailing `/` (empty: none).
    pub path: String,
}

/// Why a CSE URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not a URL at all.
    #[error("not a URL: {0}")]
    Syntax(String),
    /// A scheme other than `http` or `https`, or none.
    #[error("the scheme must be http:// or https://")]
    Scheme,
    /// No `host:port`.
    #[error("no host in the URL")]
    NoHost,
}

impl CseUrl {
    /// Reads `url`; a query is ignored.
    pub fn parse(url: &str) -> Result<CseUrl, UrlError> {
        let uri: http::Uri =
            url.parse().map_err(|e: http::uri::InvalidUri| UrlError::Syntax(e.to_string()))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(UrlError::Scheme),
        };
        let authority = uri.authority().map(http::uri::Authority::as_str).filter(|a| !a.is_empty());
        Ok(CseUrl {
            https,
            authority: authority.ok_or(UrlError::NoHost)?.to_owned(),
            path: uri.path().trim_matches('/').to_owned(),
        })
    }
}

/// The client. Cheap to clone.
#[derive(Clone)]
pub struct McaClient {
    cfg: Arc<McaConfig>,
    client: tls::HttpsClient,
    rqi: Arc<AtomicU64>,
    locks: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl McaClient {
    /// A client for the CSE at `cfg.authority`.
    pub fn new(cfg: McaConfig) -> Self {
        McaClient {
            client: tls::client(cfg.tls.clone()),
            cfg: Arc::new(cfg),
            rqi: Arc::new(AtomicU64::new(0)),
            locks: Arc::default(),
        }
    }

    /// A client for the same CSE that sends as `origin` (e.g. a device's AE-ID), sharing the connection pool and
    /// the per-container write order.
    pub fn with_origin(&self, origin: impl Into<String>) -> Self {
        let mut cfg = (*self.cfg).clone();
        cfg.origin = origin.into();
        McaClient {
            cfg: Arc::new(cfg),
            client: self.client.clone(),
            rqi: self.rqi.clone(),
            locks: self.locks.clone(),
        }
    }

    /// The originator this client uses.
    pub fn origin(&self) -> &str {
        &self.cfg.origin
    }

    /// A request with this client's originator and a fresh request id.
    pub fn request(&self, op: Operation, to: &str) -> RequestPrimitive {
        let n = self.rqi.fetch_add(1, Ordering::Relaxed);
        let mut r =
            RequestPrimitive::new(op, to, Some(self.cfg.origin.clone()), format!("{}-{n}", self.cfg.origin));
        r.rvi.clone_from(&self.cfg.rvi);
        r
    }

    /// Sends a request; retries transport failures (a CREATE or NOTIFY only when no connection was made).
    pub async fn send(&self, req: &RequestPrimitive) -> Result<ResponsePrimitive, McaError> {
        let idempotent = matches!(req.op, Operation::Retrieve | Operation::Update | Operation::Delete);
        let mut retries = self.cfg.retry.retries();
        loop {
            match self.send_once(req).await {
                Ok(r) => return Ok(r),
                Err((e, connect)) => {
                    let wait =
                        if idempotent || connect { retries.next_delay(retry::os_random()) } else { None };
                    let Some(wait) = wait else {
                        return Err(McaError::Transport(e));
                    };
                    tracing::debug!(error = %e, retry = retries.count(), ?wait, "Mca request failed, retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn send_once(&self, req: &RequestPrimitive) -> Result<ResponsePrimitive, (String, bool)> {
        let h = binding::request_to_http(req, &self.cfg.authority).map_err(|e| (e.to_string(), false))?;
        let (mut parts, body) = h.into_parts();
        if self.cfg.https {
            let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            parts.uri =
                format!("https://{}{pq}", self.cfg.authority).parse().map_err(|e| (format!("{e}"), false))?;
        }
        let h = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let rsp = match tokio::time::timeout(self.cfg.timeout, self.client.request(h)).await {
            Err(_) => return Err(("timed out".into(), false)),
            Ok(Err(e)) => return Err((e.to_string(), e.is_connect())),
            Ok(Ok(r)) => r,
        };
        let (parts, body) = rsp.into_parts();
        let bytes = body.collect().await.map_err(|e| (e.to_string(), false))?.to_bytes();
        binding::response_from_http(parts.status, &parts.headers, &bytes).map_err(|e| (e, false))
    }

    async fn expect(&self, req: &RequestPrimitive, ok: &[Rsc]) -> Result<ResponsePrimitive, McaError> {
        let r = self.send(req).await?;
        if ok.contains(&r.rsc) {
            Ok(r)
        } else {
            Err(McaError::Status { rsc: r.rsc, message: r.debug_message().unwrap_or_default().to_owned() })
        }
    }

    /// Registers this client's originator as an AE named `rn` under `cse_base` (e.g. `cse-in`). If the
    /// originator is already registered (4117), retrieves the AE instead, so a restarted gateway carries on.
    pub async fn register_ae(
        &self,
        cse_base: &str,
        rn: &str,
        api: &str,
        poa: Vec<String>,
        lbl: Vec<String>,
    ) -> Result<Value, McaError> {
        let mut ae = json!({"rn": rn, "api": api, "rr": !poa.is_empty(), "srv": ["3"]});
        if !poa.is_empty() {
            ae["poa"] = json!(poa);
        }
        if !lbl.is_empty() {
            ae["lbl"] = json!(lbl);
        }
        let mut req = self.request(Operation::Create, cse_base);
        req.ty = Some(2);
        req.pc = Some(json!({"m2m:ae": ae}));
        let r = self.expect(&req, &[Rsc::Created, Rsc::OriginatorHasAlreadyRegistered]).await?;
        if r.rsc == Rsc::OriginatorHasAlreadyRegistered {
            let r = self
                .expect(&self.request(Operation::Retrieve, &format!("{cse_base}/{rn}")), &[Rsc::Ok])
                .await?;
            return Ok(inner(r.pc));
        }
        Ok(inner(r.pc))
    }

    /// Creates a container `rn` under `parent`; an existing one (4105) is fine.
    pub async fn create_container(
        &self,
        parent: &str,
        rn: &str,
        mni: Option<u64>,
    ) -> Result<Value, McaError> {
        let mut cnt = json!({"rn": rn});
        if let Some(m) = mni {
            cnt["mni"] = json!(m);
        }
        let mut req = self.request(Operation::Create, parent);
        req.ty = Some(3);
        req.pc = Some(json!({"m2m:cnt": cnt}));
        let r = self.expect(&req, &[Rsc::Created, Rsc::Conflict]).await?;
        self.created_or_existing(r, parent, rn).await
    }

    /// The resource a CREATE made, or on 4105 (a resource of that name exists) the existing one, retrieved: the
    /// CSE's answer to a 4105 is an error message, not the resource.
    async fn created_or_existing(
        &self,
        r: ResponsePrimitive,
        parent: &str,
        rn: &str,
    ) -> Result<Value, McaError> {
        if r.rsc == Rsc::Conflict {
            return self.retrieve(&format!("{}/{rn}", parent.trim_end_matches('/'))).await;
        }
        Ok(inner(r.pc))
    }

    /// Writes a contentInstance to `container`, one request at a time per container (per address string: a
    /// gateway names each container in one form; two forms of one address are two queues).
    pub async fn create_cin(
        &self,
        container: &str,
        con: Value,
        cnf: Option<&str>,
    ) -> Result<Value, McaError> {
        let lock = {
            let mut locks = self.locks.lock().map_err(|_| McaError::Protocol("lock poisoned".into()))?;
            locks.entry(container.to_owned()).or_default().clone()
        };
        let _guard = lock.lock().await;
        let mut cin = json!({"con": con});
        if let Some(c) = cnf {
            cin["cnf"] = json!(c);
        }
        let mut req = self.request(Operation::Create, container);
        req.ty = Some(4);
        req.pc = Some(json!({"m2m:cin": cin}));
        let r = self.expect(&req, &[Rsc::Created]).await?;
        Ok(inner(r.pc))
    }

    /// Subscribes `nu` to `target` for the event types `net` (e.g. `[3]`: child created).
    pub async fn create_subscription(
        &self,
        target: &str,
        rn: &str,
        nu: Vec<String>,
        net: &[u8],
    ) -> Result<Value, McaError> {
        let mut req = self.request(Operation::Create, target);
        req.ty = Some(23);
        req.pc = Some(json!({"m2m:sub": {"rn": rn, "nu": nu, "enc": {"net": net}, "nct": 1}}));
        let r = self.expect(&req, &[Rsc::Created, Rsc::Conflict]).await?;
        self.created_or_existing(r, target, rn).await
    }

    /// Retrieves `target`; returns the resource representation.
    pub async fn retrieve(&self, target: &str) -> Result<Value, McaError> {
        let r = self.expect(&self.request(Operation::Retrieve, target), &[Rsc::Ok]).await?;
        Ok(inner(r.pc))
    }

    /// Updates `target` (of JSON short name `short_name`, e.g. `m2m:cnt`) with `attrs`; returns the new representation.
    pub async fn update(&self, target: &str, short_name: &str, attrs: Value) -> Result<Value, McaError> {
        let mut req = self.request(Operation::Update, target);
        let mut pc = serde_json::Map::new();
        pc.insert(short_name.to_owned(), attrs);
        req.pc = Some(Value::Object(pc));
        let r = self.expect(&req, &[Rsc::Updated]).await?;
        Ok(inner(r.pc))
    }

    /// Deletes `target`.
    pub async fn delete(&self, target: &str) -> Result<(), McaError> {
        self.expect(&self.request(Operation::Delete, target), &[Rsc::Deleted]).await.map(|_| ())
    }
}

/// `{"m2m:xxx": {...}}` → `{...}`.
pub(crate) fn inner(pc: Option<Value>) -> Value {
    match pc {
        Some(Value::Object(m)) if m.len() == 1 => m.into_iter().next().map_or(Value::Null, |(_, v)| v),
        Some(v) => v,
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests;
