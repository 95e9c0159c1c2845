//! The embedded oneM2M CSE: Mca over HTTP with JSON, the resource tree persisted in a write-ahead log (one
//! `fdatasync` per commit group, before any answer) checkpointed into redb.
//!
//! Supported: CSEBase, AE (registration rules, re-registration 4117), container (`mni`, `mbs`, `mia`, `cni`, `cbs`,
//! `st`, virtual `la`/`ol`), contentInstance, subscription (URL or AE-ID `nu`, verification request, `enc.net`,
//! `nct`, `exc`, deletion notice to `su`, retries), accessControlPolicy (`pv`/`pvs`, creator and admin always
//! allowed), expiration (`et`), discovery (`fu=1`) and the `rcn` variants.
//!
//! ```text
//!   HTTP (axum) ─► onem2m::http binding ─► Cse::handle ─► Engine (tree, under a mutex)
//!                                               │             │ writes        │ notifications
//!                                               │             ▼               ▼
//!                                               │        store (WAL,     notify queues
//!                                               │        group commit,   (after commit)
//!                                               │        redb checkpts)
//!                                               ◄── answer after commit ──┘
//! ```
//!
//! The gateway uses the same path in-process: [`Cse::handle`] takes a [`RequestPrimitive`]. To receive
//! notifications in-process, call [`Cse::local_poa`] with a name and register an AE whose `poa` is
//! `local://<name>`; subscriptions with that AE's AE-ID in `nu` then deliver to the returned channel.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cse::CseError> {
//! let cse = cse::Cse::open(cse::CseConfig::default()).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.map_err(cse::CseError::Io)?;
//! cse::serve(cse, listener, std::future::pending()).await.map_err(cse::CseError::Io)?;
//! # Ok(()) }
//! ```

pub mod bench;
mod clock;
mod engine;
mod notify;
mod store;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use onem2m::{Operation, RequestPrimitive, ResponsePrimitive, Rsc, http as binding};
use tokio::sync::mpsc;

pub use clock::SystemClock;
pub use notify::LocalNotification;
pub use store::StoreError;

use engine::{Engine, NotifyTarget};
use notify::Notifier;
use store::Store;

/// How the CSE is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CseConfig {
    /// CSE-ID without the leading `/` (`id-in`).
    pub cse_id: String,
    /// The CSEBase resource name (`cse-in`).
    pub rn: String,
    /// The M2M service provider id for absolute addresses.
    pub sp_id: String,
    /// The admin originator, allowed everything (`CAdmin`).
    pub admin: String,
    /// The CSE's own point of access, shown in the CSEBase `poa`.
    pub poa: Vec<String>,
    /// Where the WAL files and the redb database live; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Largest HTTP request body accepted.
    pub max_body_bytes: usize,
    /// Whether any originator may RETRIEVE the CSEBase (otherwise only the admin and registered AEs, as in ACME).
    pub public_cse_base: bool,
    /// How notifications reach `https://` targets (`nu` URLs, AE `poa`s): the trusted CAs and an optional client
    /// certificate. Without CAs, `https://` targets cannot be verified and are unreachable (5204 at
    /// subscription time).
    pub notify_tls: mca_client::tls::TlsClient,
    /// Where the request counters go (`Default`: a private set; docs/operations.md).
    pub metrics: ops::CseMetrics,
}

impl Default for CseConfig {
    fn default() -> Self {
        CseConfig {
            cse_id: "id-in".into(),
            rn: "cse-in".into(),
            sp_id: "ipechain.example".into(),
            admin: "CAdmin".into(),
            poa: vec!["http://127.0.0.1:8080".into()],
            data_dir: None,
            max_body_bytes: 1 << 20,
            public_cse_base: false,
            notify_tls: mca_client::tls::TlsClient::default(),
            metrics: ops::CseMetrics::default(),
        }
    }
}

/// Why the CSE could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CseError {
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A stored resource could not be read.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// I/O.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The stored CSE has another CSE-ID or CSEBase name than the configuration.
    #[error("{0}")]
    Identity(String),
    /// TLS material (`notify_tls`, or the HTTPS server's) could not be used.
    #[error("TLS: {0}")]
    Tls(#[from] mca_client::tls::TlsError),
}

/// The embedded CSE. Cheap to clone; all clones share one tree.
#[derive(Clone)]
pub struct Cse {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Mutex<(Engine, Store)>,
    notifier: Notifier,
    clock: SystemClock,
    cfg: CseConfig,
    rqi_counter: std::sync::atomic::AtomicU64,
    /// Set when a commit failed (or after `close`): the tree in memory may hold writes the disk does not, so every
    /// later request is refused (5000) until the CSE is restarted from its durable state.
    failed: std::sync::atomic::AtomicBool,
}

impl Cse {
    /// Opens the CSE: loads the stored tree (or creates the CSEBase). Must run inside a tokio runtime.
    pub async fn open(cfg: CseConfig) -> Result<Cse, CseError> {
        let clock = SystemClock;
        let (mut store, rows) = match &cfg.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let path = dir.clone();
                tokio::task::spawn_blocking(move || Store::open(&path))
                    .await
                    .map_err(|e| CseError::Corrupt(e.to_string()))??
            }
            None => (Store::memory(), Vec::new()),
        };
        let mut engine = Engine::new(cfg.clone(), rows, clock.now_micros())?;
        let fx = engine.take_effects();
        let (_, pending) = store.submit(fx.ops);
        pending.wait().await.map_err(|e| CseError::Store(StoreError::Db(e)))?;
        // No TLS settings: no CA is trusted, so https:// targets are unreachable (the notifier says so).
        let notify_tls = if cfg.notify_tls == mca_client::tls::TlsClient::default() {
            None
        } else {
            Some(cfg.notify_tls.rustls_config()?)
        };
        let notifier = Notifier::new(store.committed(), engine.csi(), notify_tls);
        let cse = Cse {
            inner: Arc::new(Inner {
                engine: Mutex::new((engine, store)),
                notifier,
                clock,
                cfg,
                rqi_counter: std::sync::atomic::AtomicU64::new(0),
                failed: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        // Expired resources (`et`, `mia`) are removed once a second even when no request comes in.
        let weak = Arc::downgrade(&cse.inner);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.engine.lock().map_or(true, |g| g.1.is_closed()) {
                    return;
                }
                Cse { inner }.expire_now().await;
            }
        });
        Ok(cse)
    }

    /// Commits what is queued and closes the database; afterwards every request answers 5000. Call it on shutdown
    /// (dropping the last `Cse` clone does the same, but tasks may still hold clones for a moment).
    pub async fn close(&self) {
        self.inner.failed.store(true, std::sync::atomic::Ordering::Release);
        let store = {
            let Ok(mut g) = self.inner.engine.lock() else { return };
            let committed = g.1.committed();
            std::mem::replace(&mut g.1, Store::closed(committed))
        };
        let _ = tokio::task::spawn_blocking(move || drop(store)).await;
    }

    /// Removes what has expired by now (also done at the start of every request).
    async fn expire_now(&self) {
        let now = self.inner.clock.now_micros();
        let (batch, pending, notes) = {
            let Ok(mut g) = self.inner.engine.lock() else { return };
            let (engine, store) = &mut *g;
            engine.expire(now);
            let fx = engine.take_effects();
            let (batch, pending) = store.submit(fx.ops);
            (batch, pending, fx.notes)
        };
        self.dispatch_notes(batch, notes);
        if let Err(e) = pending.wait().await {
            tracing::error!(error = %e, "storing expirations failed");
        }
    }

    fn dispatch_notes(&self, batch: u64, notes: Vec<engine::Note>) {
        for n in notes {
            for t in n.targets {
                match n.batch {
                    Some(p) => self.inner.notifier.enqueue_batched(t, &n.sur, batch, p, &n.body),
                    None => self.inner.notifier.enqueue(
                        t,
                        batch,
                        self.next_rqi(),
                        n.body.clone(),
                        n.creator.clone(),
                    ),
                }
            }
            tracing::trace!(sur = %n.sur, "notification queued");
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CseConfig {
        &self.inner.cfg
    }

    /// Registers an in-process notification receiver: an AE whose `poa` contains `local://<name>` gets its
    /// notifications here (and subscriptions may use `local://<name>` directly in `nu`).
    pub fn local_poa(&self, name: &str) -> mpsc::UnboundedReceiver<LocalNotification> {
        self.inner.notifier.register_local(name)
    }

    /// The originator that created the resource with resource identifier `ri` (the `X-M2M-Origin` of its
    /// CREATE, as the CSE checked it), whether or not the creator asked for `cr`; `None` if there is no such
    /// resource (any more). In-process callers (the gateway) take a request's originator from here, never from
    /// the request's content.
    pub fn creator_of(&self, ri: &str) -> Option<String> {
        self.inner.engine.lock().ok()?.0.creator_of(ri).map(str::to_owned)
    }

    /// Number of resources in the tree (the CSEBase included).
    pub fn resource_count(&self) -> usize {
        self.inner.engine.lock().map_or(0, |g| g.0.len())
    }

    /// Handles one request primitive; the HTTP handler uses the same path. Answers after the request's writes are
    /// durable.
    pub async fn handle(&self, req: RequestPrimitive) -> ResponsePrimitive {
        let timer = ops::Stopwatch::start();
        let op = op_name(req.op);
        let res = self.handle_untimed(req).await;
        self.inner.cfg.metrics.request(op, res.rsc.code(), timer.seconds());
        res
    }

    /// Handles requests in order as one: up to and including the first answer `proceed` refuses, with the writes of
    /// all of them in one durable batch (a crash keeps all or none) and their notifications in order; answers once
    /// that batch is durable. For a writer of resources that belong together, such as the gateway's
    /// contentInstances of one event (the answer last). Requests that need a notification target verified first
    /// (a subscription CREATE, an UPDATE) are handled one by one, as [`Cse::handle`] does.
    pub async fn handle_in_order(
        &self,
        reqs: Vec<RequestPrimitive>,
        proceed: impl Fn(&ResponsePrimitive) -> bool,
    ) -> Vec<ResponsePrimitive> {
        let verifies = |r: &RequestPrimitive| {
            r.op == Operation::Update
                || (r.op == Operation::Create && r.ty == Some(onem2m::ResourceType::Subscription.code()))
        };
        let mut out = Vec::with_capacity(reqs.len());
        if reqs.iter().any(verifies) {
            for req in reqs {
                let rsp = self.handle(req).await;
                let go = proceed(&rsp);
                out.push(rsp);
                if !go {
                    break;
                }
            }
            return out;
        }
        let Some(first) = reqs.first() else { return out };
        let timer = ops::Stopwatch::start();
        if self.inner.failed.load(std::sync::atomic::Ordering::Acquire) {
            out.push(closed(first));
            return out;
        }
        let (rsps, batch, pending, notes) = {
            let Ok(mut g) = self.inner.engine.lock() else {
                out.push(poisoned(first));
                return out;
            };
            let (engine, store) = &mut *g;
            let (rsps, fx) = engine.handle_in_order(&reqs, self.inner.clock.now_micros(), proceed);
            let (batch, pending) = store.submit(fx.ops);
            (rsps, batch, pending, fx.notes)
        };
        self.dispatch_notes(batch, notes);
        let rsps = match pending.wait().await {
            Ok(()) => rsps,
            Err(e) => reqs.iter().take(rsps.len()).map(|r| self.storage_failed(r, &e)).collect(),
        };
        let seconds = timer.seconds();
        for (req, rsp) in reqs.iter().zip(&rsps) {
            self.inner.cfg.metrics.request(op_name(req.op), rsp.rsc.code(), seconds);
        }
        rsps
    }

    async fn handle_untimed(&self, req: RequestPrimitive) -> ResponsePrimitive {
        if self.inner.failed.load(std::sync::atomic::Ordering::Acquire) {
            return closed(&req);
        }
        let now = self.inner.clock.now_micros();
        // A subscription is verified before it is created, outside the lock.
        let mut reserved = None;
        if req.op == Operation::Create && req.ty == Some(onem2m::ResourceType::Subscription.code()) {
            let (pre, batch, pending, notes) = {
                let Ok(mut g) = self.inner.engine.lock() else { return poisoned(&req) };
                let (engine, store) = &mut *g;
                let pre = engine.precheck_subscription(&req, now).map(|t| (t, engine.reserve_sub_ri()));
                // What expired on the way is gone from memory: store its removal (and notify) whatever the answer.
                let fx = engine.take_effects();
                let (batch, pending) = store.submit(fx.ops);
                (pre, batch, pending, fx.notes)
            };
            self.dispatch_notes(batch, notes);
            if let Err(e) = pending.wait().await {
                return self.storage_failed(&req, &e);
            }
            match pre {
                Err(rsp) => return rsp,
                Ok((targets, ri)) => {
                    let body = {
                        let Ok(g) = self.inner.engine.lock() else { return poisoned(&req) };
                        g.0.verification_body(&ri, req.fr.as_deref().unwrap_or_default())
                    };
                    for t in &targets {
                        let rqi = self.next_rqi();
                        match self.inner.notifier.send_once(t, &rqi, &body).await {
                            Ok(Rsc::Ok) => {}
                            Ok(rsc) => {
                                return verification_failed(&req, t, &format!("receiver answered {rsc}"));
                            }
                            Err(e) => return verification_failed(&req, t, &e),
                        }
                    }
                    reserved = Some(ri);
                }
            }
        }
        // New notification targets of a subscription UPDATE are verified first, too.
        if req.op == Operation::Update {
            let check = {
                let Ok(g) = self.inner.engine.lock() else { return poisoned(&req) };
                g.0.update_nu_targets(&req)
                    .map(|(ri, t)| (g.0.verification_body(&ri, req.fr.as_deref().unwrap_or_default()), t))
            };
            if let Some((body, targets)) = check {
                let targets = match targets {
                    Ok(t) => t,
                    Err(why) => return verification_refused(&req, why),
                };
                for t in &targets {
                    let rqi = self.next_rqi();
                    match self.inner.notifier.send_once(t, &rqi, &body).await {
                        Ok(Rsc::Ok) => {}
                        Ok(rsc) => return verification_failed(&req, t, &format!("receiver answered {rsc}")),
                        Err(e) => return verification_failed(&req, t, &e),
                    }
                }
            }
        }
        let (rsp, batch, pending, notes) = {
            let Ok(mut g) = self.inner.engine.lock() else { return poisoned(&req) };
            let (engine, store) = &mut *g;
            if let Some(ri) = reserved {
                engine.use_reserved_ri(ri);
            }
            let (rsp, fx) = engine.handle(&req, self.inner.clock.now_micros());
            let (batch, pending) = store.submit(fx.ops);
            (rsp, batch, pending, fx.notes)
        };
        self.dispatch_notes(batch, notes);
        match pending.wait().await {
            Ok(()) => rsp,
            Err(e) => self.storage_failed(&req, &e),
        }
    }

    /// After a failed write nothing more is acknowledged: the CSE refuses every request until restarted.
    fn storage_failed(&self, req: &RequestPrimitive, e: &str) -> ResponsePrimitive {
        self.inner.failed.store(true, std::sync::atomic::Ordering::Release);
        tracing::error!(error = %e, "CSE storage failed; refusing further requests");
        ResponsePrimitive::error(Rsc::InternalServerError, req.rqi.clone(), format!("storage failed: {e}"))
    }

    fn next_rqi(&self) -> String {
        let n = self.inner.rqi_counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("ntf-{n}")
    }

    /// The axum router serving Mca over HTTP.
    pub fn router(&self) -> Router {
        Router::new().fallback(http_handler).with_state(self.clone())
    }
}

// The public async types can be shared between tasks.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Cse>();
    assert_send_sync::<CseConfig>();
};

/// 5000 to every request once the storage failed or the CSE was closed.
fn closed(req: &RequestPrimitive) -> ResponsePrimitive {
    ResponsePrimitive::error(
        Rsc::InternalServerError,
        req.rqi.clone(),
        "the CSE's storage failed or was closed; restart the CSE (it resumes from its durable state)",
    )
}

fn poisoned(req: &RequestPrimitive) -> ResponsePrimitive {
    ResponsePrimitive::error(Rsc::InternalServerError, req.rqi.clone(), "internal lock poisoned")
}

fn verification_failed(req: &RequestPrimitive, t: &NotifyTarget, why: &str) -> ResponsePrimitive {
    verification_refused(req, format!("verification of notification target {t:?} failed: {why}"))
}

/// 5204: a notification target of the request cannot be verified.
fn verification_refused(req: &RequestPrimitive, msg: String) -> ResponsePrimitive {
    let mut r = ResponsePrimitive::error(Rsc::SubscriptionVerificationInitiationFailed, req.rqi.clone(), msg);
    r.rvi.clone_from(&req.rvi);
    r
}

async fn http_handler(State(cse): State<Cse>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let limit = cse.inner.cfg.max_body_bytes;
    let rqi = parts.headers.get(binding::X_M2M_RI).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let bytes = match read_body(body, limit).await {
        Ok(b) => b,
        Err(why) => return to_axum(&ResponsePrimitive::error(Rsc::BadRequest, rqi, why)),
    };
    let rsp = match binding::request_from_http(&parts.method, &parts.uri, &parts.headers, &bytes) {
        Ok(p) => match parts.extensions.get::<mca_client::tls::PeerCertificate>() {
            Some(cert) => match certificate_refuses(cert, &p) {
                Some(refusal) => refusal,
                None => cse.handle(p).await,
            },
            None => cse.handle(p).await,
        },
        Err(e) => ResponsePrimitive::error(e.rsc, e.rqi, e.message),
    };
    to_axum(&rsp)
}

/// An application that presents a client certificate (HTTPS) is the subject of that certificate: a request whose
/// originator is not the certificate's common name is refused with 4103 before it reaches the engine.
fn certificate_refuses(
    cert: &mca_client::tls::PeerCertificate,
    req: &RequestPrimitive,
) -> Option<ResponsePrimitive> {
    let cn = match x509_parser::parse_x509_certificate(cert.0.as_ref()) {
        Ok((_, c)) => c.subject().iter_common_name().next().and_then(|n| n.as_str().ok()).map(str::to_owned),
        Err(_) => None,
    };
    let origin = req.fr.as_deref().unwrap_or_default();
    let why = match cn {
        Some(cn) if cn == origin => return None,
        Some(cn) => format!("the client certificate is issued to {cn:?}, not to the originator {origin:?}"),
        None => "the client certificate has no subject common name to match the originator".to_owned(),
    };
    let mut r = ResponsePrimitive::error(Rsc::OriginatorHasNoPrivilege, req.rqi.clone(), why);
    r.rvi.clone_from(&req.rvi);
    Some(r)
}

/// Reads at most `limit` bytes of content. A larger body is read on and discarded (up to 16 times the limit) so
/// that the client, still sending, gets the error answer instead of a reset connection.
async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, String> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("request content could not be read: {e}"))?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > limit.saturating_mul(16) {
                break;
            }
        }
    }
    if seen > limit {
        return Err(format!("request content is larger than {limit} bytes"));
    }
    Ok(buf.freeze())
}

fn to_axum(rsp: &ResponsePrimitive) -> Response {
    let (parts, body) = binding::response_to_http(rsp).into_parts();
    Response::from_parts(parts, Body::from(body)).into_response()
}

/// Serves the CSE over HTTPS on `listener` until `shutdown` completes, with the server certificate (and the
/// optional client CAs) of `tls`. An application that presents a client certificate must use the certificate's
/// common name as its originator (otherwise 4103); one without a certificate is served as over HTTP.
///
/// ```no_run
/// # async fn demo(cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Result<(), cse::CseError> {
/// use mca_client::tls::{PemIdentity, TlsServer};
/// let cse = cse::Cse::open(cse::CseConfig::default()).await?;
/// let tls = TlsServer { identity: PemIdentity { cert_pem, key_pem }, client_ca_pems: vec![] }.rustls_config()?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// cse::serve_tls(cse, listener, tls, std::future::pending()).await?;
/// # Ok(()) }
/// ```
pub async fn serve_tls(
    cse: Cse,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    mca_client::tls::serve_tls(listener, cse.router(), tls, shutdown).await
}

/// Serves the CSE on `listener` until `shutdown` completes.
pub async fn serve(
    cse: Cse,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, cse.router()).with_graceful_shutdown(shutdown).await
}

/// The metrics' name of an operation.
fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "create",
        Operation::Retrieve => "retrieve",
        Operation::Update => "update",
        Operation::Delete => "delete",
        Operation::Notify => "notify",
    }
}
