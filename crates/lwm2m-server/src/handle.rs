//! Starting the server and the in-process handle that the REST API, the bridge gateway and tests use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lwm2m::codec::Record;
use lwm2m::ops::{Attributes, Downlink, WriteMode};
use lwm2m::{ContentFormat, LwM2mPath};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::server::{Command, OpSpec, Server, invalid};
use crate::types::{ClientInfo, OpError, OpResponse, SendAnswer, SendReceipt, ServerConfig, ServerEvent};

/// Counters, readable at any time through [`LwM2mServerHandle::stats`].
#[derive(Debug, Default)]
pub struct Stats {
    /// Notifications received for active observations.
    pub notifications: AtomicU64,
    /// Send operations accepted.
    pub sends: AtomicU64,
    /// Registrations currently held.
    pub registrations: AtomicU64,
    /// DTLS handshakes finished with an admitted identity (full or resumed).
    pub dtls_handshakes: AtomicU64,
    /// DTLS handshakes refused (wrong key, unknown identity or certificate, bad messages) or timed out.
    pub dtls_handshakes_failed: AtomicU64,
    /// ClientHellos answered with a HelloVerifyRequest (no state kept).
    pub dtls_hello_verify: AtomicU64,
    /// Datagrams on the DTLS socket dropped before any session: not a ClientHello, malformed, or over the
    /// session limit.
    pub dtls_dropped: AtomicU64,
    /// Requests refused by the admission rules (4.03): Register over DTLS under an endpoint the identity is
    /// not bound to, NoSec Register of a credentialed endpoint or with NoSec off, Update/De-register/Send
    /// over another security context than the registration's.
    pub refused: AtomicU64,
    /// DTLS sessions held now (handshaking or established).
    pub dtls_sessions: AtomicU64,
    /// NoSec datagrams dropped because their source address has a DTLS session.
    pub nosec_dropped: AtomicU64,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The UDP socket could not be bound.
    #[error("cannot bind CoAP UDP socket on {addr}: {source}")]
    Coap {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The DTLS UDP socket could not be bound.
    #[error("cannot bind DTLS UDP socket on {addr}: {source}")]
    Dtls {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// OpenSSL refused the DTLS configuration.
    #[error(transparent)]
    DtlsSetup(#[from] crate::dtls::DtlsError),
    /// The admin HTTP listener could not be bound.
    #[error("cannot bind admin HTTP on {addr}: {source}")]
    Admin {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// Entry point.
pub struct LwM2mServer;

impl LwM2mServer {
    /// Binds the sockets and spawns the server (and the admin API if configured) on the current tokio
    /// runtime. The join handle completes after [`LwM2mServerHandle::shutdown`].
    pub async fn start(config: ServerConfig) -> Result<(LwM2mServerHandle, JoinHandle<()>), StartError> {
        let socket = UdpSocket::bind(config.coap_addr)
            .await
            .map_err(|source| StartError::Coap { addr: config.coap_addr, source })?;
        let coap_addr =
            socket.local_addr().map_err(|source| StartError::Coap { addr: config.coap_addr, source })?;
        let dtls = match &config.dtls {
            Some(d) => {
                let sock = UdpSocket::bind(d.addr)
                    .await
                    .map_err(|source| StartError::Dtls { addr: d.addr, source })?;
                let local = sock.local_addr().map_err(|source| StartError::Dtls { addr: d.addr, source })?;
                Some((sock, local, d))
            }
            None => None,
        };
        let admin = match config.admin_addr {
            Some(addr) => {
                let l = TcpListener::bind(addr).await.map_err(|source| StartError::Admin { addr, source })?;
                let local = l.local_addr().map_err(|source| StartError::Admin { addr, source })?;
                Some((l, local))
            }
            None => None,
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(1024);
        let (events, _) = broadcast::channel(config.event_capacity.max(16));
        let stats = Arc::new(Stats::default());
        let dtls_addr = dtls.as_ref().map(|(_, a, _)| *a);
        let dtls = match dtls {
            Some((sock, _, d)) => {
                Some((Arc::new(sock), crate::dtls::Dtls::new(crate::clock::now(), d, stats.clone())?))
            }
            None => None,
        };
        let shutdown = CancellationToken::new();
        let handle = LwM2mServerHandle {
            inner: Arc::new(Inner {
                cmd: cmd_tx,
                events: events.clone(),
                shutdown: shutdown.clone(),
                coap_addr,
                dtls_addr,
                admin_addr: admin.as_ref().map(|(_, a)| *a),
                default_timeout: config.default_timeout,
                stats: stats.clone(),
            }),
        };
        let server = Server::new(
            Arc::new(socket),
            config.coap.clone(),
            config.registry.clone(),
            events,
            stats,
            config.queue_awake,
        )
        .with_send_receipts(config.send_receipt_timeout)
        .with_security(dtls, config.nosec, config.dtls.as_ref().map(|d| d.credentials.clone()));
        let loop_task = tokio::spawn(server.run(cmd_rx, shutdown.clone()));
        let admin_task = admin.map(|(listener, _)| {
            let app = crate::rest::router(handle.clone(), config.registry.clone());
            let token = shutdown.clone();
            tokio::spawn(async move {
                let serve = axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned());
                if let Err(e) = serve.await {
                    tracing::warn!("admin API stopped: {e}");
                }
            })
        });
        let joined = tokio::spawn(async move {
            let _ = loop_task.await;
            if let Some(a) = admin_task {
                let _ = a.await;
            }
        });
        Ok((handle, joined))
    }
}

struct Inner {
    cmd: mpsc::Sender<Command>,
    events: broadcast::Sender<ServerEvent>,
    shutdown: CancellationToken,
    coap_addr: SocketAddr,
    dtls_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    default_timeout: Duration,
    stats: Arc<Stats>,
}

/// A cheap, cloneable handle to a running server. Every operation takes the endpoint name, a path and an
/// optional timeout (`None`: the configured default); formats left `None` are chosen from what the client
/// advertised, falling back to no Accept for clients that ignore one.
#[derive(Clone)]
pub struct LwM2mServerHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LwM2mServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LwM2mServerHandle").field("coap_addr", &self.inner.coap_addr).finish()
    }
}

impl LwM2mServerHandle {
    /// The bound CoAP UDP address.
    pub fn coap_addr(&self) -> SocketAddr {
        self.inner.coap_addr
    }

    /// The bound DTLS (`coaps://`) UDP address, if enabled.
    pub fn dtls_addr(&self) -> Option<SocketAddr> {
        self.inner.dtls_addr
    }

    /// The bound admin HTTP address, if enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.inner.admin_addr
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Number of registrations held now.
    pub fn registration_count(&self) -> u64 {
        self.inner.stats.registrations.load(Ordering::Relaxed)
    }

    /// A receiver of every event from now on (slow receivers lose the oldest events, see `broadcast`).
    pub fn subscribe_events(&self) -> broadcast::Receiver<ServerEvent> {
        self.inner.events.subscribe()
    }

    /// Stops the server; the join handle from `start` completes once it has.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// A token cancelled when the server is told to stop.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// All registered clients.
    pub async fn clients(&self) -> Vec<Arc<ClientInfo>> {
        let (tx, rx) = oneshot::channel();
        if self.inner.cmd.send(Command::Clients(tx)).await.is_err() {
            return vec![];
        }
        rx.await.unwrap_or_default()
    }

    /// One registered client.
    pub async fn client(&self, endpoint: &str) -> Option<Arc<ClientInfo>> {
        let (tx, rx) = oneshot::channel();
        self.inner.cmd.send(Command::Client(endpoint.to_owned(), tx)).await.ok()?;
        rx.await.ok().flatten()
    }

    async fn op(&self, endpoint: &str, op: OpSpec, timeout: Option<Duration>) -> Result<OpResponse, OpError> {
        let (tx, rx) = oneshot::channel();
        let timeout = timeout.unwrap_or(self.inner.default_timeout);
        let cmd = Command::Op { endpoint: endpoint.to_owned(), op, timeout, reply: tx };
        self.inner.cmd.send(cmd).await.map_err(|_| OpError::Stopped)?;
        rx.await.map_err(|_| OpError::Stopped)?
    }

    /// Read.
    pub async fn read(
        &self,
        endpoint: &str,
        path: LwM2mPath,
        format: Option<ContentFormat>,
        timeout: Option<Duration>,
    ) -> Result<OpResponse, OpError> {
        self.op(endpoint, OpSpec::Read { path, format, observe: false }, timeout).await
    }

    /// Observe: the first answer comes back here, later notifications as [`ServerEvent::Notification`].
    pub async fn observe(
        &self,
        endpoint: &str,
        path: LwM2mPath,
        format: Option<ContentFormat>,
        timeout: Option<Duration>,
    ) -> Result<OpResponse, OpError> {
        self.op(endpoint, OpSpec::Read { path, format, observe: true }, timeout).await
    }

    /// Answers the Send of `receipt` (see `ServerConfig::send_receipt_timeout`). A receipt answered
    /// already, or past its timeout (answered 5.03 then), is ignored.
    pub async fn answer_send(&self, receipt: SendReceipt, answer: SendAnswer) {
        let _ = self.inner.cmd.send(Command::AnswerSend(receipt, answer)).await;
    }

    /// Cancels the observations of `path`: the server forgets them and sends the client a GET with
    /// Observe 1 (RFC 7641 active cancel); any notification that still arrives is answered with Reset.
    /// Returns how many were cancelled.
    pub async fn cancel_observe(&self, endpoint: &str, path: LwM2mPath) -> usize {
        let (tx, rx) = oneshot::channel();
        let cmd = Command::CancelObserve { endpoint: endpoint.to_owned(), path, reply: tx };
        if self.inner.cmd.send(cmd).await.is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Write (replace or partial update).
    pub async fn write(
        &self,
        endpoint: &str,
        path: LwM2mPath,
        mode: WriteMode,
        records: Vec<Record>,
        format: Option<ContentFormat>,
        timeout: Option<Duration>,
    ) -> Result<OpResponse, OpError> {
        self.op(endpoint, OpSpec::Write { path, mode, format, records }, timeout).await
    }

    /// Execute with arguments (`""` for none).
    pub async fn execute(
        &self,
        endpoint: &str,
        path: LwM2mPath,
        args: &str,
        timeout: Option<Duration>,
    ) -> Result<OpResponse, OpError> {
        self.op(endpoint, OpSpec::Other(Downlink::Execute { path, args: args.to_owned() }), timeout).await
    }

    /// Discover.
    pub async fn discover(
        &self,
        endpoint: &str,
        path: LwM2mPath,
        timeout: Option<Duration>,
    ) -> Result<OpResponse, OpError> {
        self.op(endpoint, OpSpec::Other(Downlink::Discover { path }), timeout).await
    }

    /// Write-Attributes.
    pub async fn write_attributes(
        &self,
        endpoint: &str,
        path: LwM2mPath,
        attributes: Attributes,
        timeout: Option<Duration>,
    ) -> Result<OpResponse, OpError> {
        self.op(endpoint, OpSpec::Other(Downlink::WriteAttributes { path, attributes }), timeout).await
    }

    /// Create an instance of object `path` from `records` (their instance id is the new instance's).
    pub async fn create(
        &self,
        endpoint: &str,
        path: LwM2mPath,
        records: Vec<Record>,
        format: Option<ContentFormat>,
        timeout: Option<Duration>,
    ) -> Result<OpResponse, OpError> {
        if path.depth() != 1 {
            return Err(invalid(path, "create"));
        }
        self.op(endpoint, OpSpec::Create { path, format, records }, timeout).await
    }

    /// Delete an instance.
    pub async fn delete(
        &self,
        endpoint: &str,
        path: LwM2mPath,
        timeout: Option<Duration>,
    ) -> Result<OpResponse, OpError> {
        self.op(endpoint, OpSpec::Other(Downlink::Delete { path }), timeout).await
    }
}
