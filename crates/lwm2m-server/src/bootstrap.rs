//! The LwM2M bootstrap server (LwM2M 1.1 §5.2, client-initiated bootstrap) on UDP: NoSec CoAP (5783 in the
//! default network) and DTLS 1.2 (5784), the same OpenSSL DTLS as the LwM2M server's.
//!
//! One task owns both sockets, a sans-IO CoAP [`Endpoint`] and one [`BootstrapSession`] per client. A
//! Bootstrap-Request (`POST /bs?ep=NAME`) is admitted by the [`Provisioner`] for the security context it
//! arrived in (the DTLS identity, or NoSec), answered 2.04, and the session then writes the client's server
//! accounts and finishes. Refusals are 4.03 with the reason as payload, logged and counted; every outcome is
//! also a [`BootstrapEvent`].
//!
//! [`CredentialProvisioner`] is the provisioning rule of `ipechain up`: bootstrap credentials and server
//! credentials are separate (a device proves itself to the bootstrap server with its bootstrap credential
//! and receives its LwM2M server credential), and a secret never leaves over NoSec.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coap::lite::{MessageClass, Packet, RequestType};
use coap::{Endpoint, Event as CoapEvent, IncomingId, RequestId};
use lwm2m::bootstrap::{
    BootstrapConfig as Provisioning, BootstrapSession, Progress, SecurityMode, ServerAccount, parse_request,
};
use lwm2m::ops::ResponseCode;
use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::creds::{BoundCredentialStore, CredentialStore, Identity};
use crate::dtls::{Dtls, DtlsConfig};
use crate::handle::Stats;
use crate::packet::{packet_of, reply_packet};

/// Decides what a client is provisioned with, or why it is refused.
pub trait Provisioner: Send + Sync + std::fmt::Debug + 'static {
    /// The accounts for `endpoint`, asked over a DTLS session authenticated as `identity` (`None`: NoSec).
    /// `Err` is the reason for a 4.03.
    fn provision(&self, endpoint: &str, identity: Option<&Identity>) -> Result<Provisioning, String>;
}

/// The provisioning rule of `ipechain up`, over a [`BoundCredentialStore`]:
///
/// - over DTLS, the session's bootstrap identity must be bound to the requested endpoint; the endpoint is
///   then given its LwM2M server account: PSK (identity and key from the key file) at `dtls_uri`, or, for an
///   endpoint without server credentials, NoSec at `nosec_uri` (if NoSec is on). An endpoint whose server
///   credential is an X.509 certificate or a raw public key is refused: its private key is the device's
///   own, provisioned at the factory, not by a bootstrap server that never holds it.
/// - over NoSec, only an endpoint without any credentials (server or bootstrap) is served, and only with a
///   NoSec account: a PSK is never sent in the clear.
#[derive(Debug, Clone)]
pub struct CredentialProvisioner {
    /// Device credentials.
    pub store: Arc<BoundCredentialStore>,
    /// `coaps://HOST:PORT` of the LwM2M server.
    pub dtls_uri: String,
    /// `coap://HOST:PORT` of the LwM2M server, or `None` when NoSec is off.
    pub nosec_uri: Option<String>,
    /// Short Server ID of the provisioned account (default 1).
    pub short_server_id: u16,
    /// Registration lifetime written into the Server object (default 300 s).
    pub lifetime: u32,
    /// What Bootstrap-Delete removes first (default `/0` and `/1`, as Leshan's demo; `/` suits clients that
    /// cannot delete an object path, such as coap-node 0.2.5).
    pub delete: Vec<lwm2m::LwM2mPath>,
}

impl CredentialProvisioner {
    /// With the default short server id (1) and lifetime (300 s).
    pub fn new(store: Arc<BoundCredentialStore>, dtls_uri: String, nosec_uri: Option<String>) -> Self {
        let delete = Provisioning::new(vec![]).delete;
        CredentialProvisioner { store, dtls_uri, nosec_uri, short_server_id: 1, lifetime: 300, delete }
    }

    fn account(&self, uri: String, mode: SecurityMode, identity: Vec<u8>, key: Vec<u8>) -> ServerAccount {
        ServerAccount {
            short_server_id: self.short_server_id,
            uri,
            mode,
            identity,
            server_public_key: vec![],
            secret_key: key,
            lifetime: self.lifetime,
            binding: "U".into(),
            notification_storing: true,
        }
    }

    fn nosec_account(&self, endpoint: &str) -> Result<ServerAccount, String> {
        match &self.nosec_uri {
            Some(uri) => Ok(self.account(uri.clone(), SecurityMode::NoSec, vec![], vec![])),
            None => Err(format!("NoSec is off and endpoint {endpoint} has no server credential")),
        }
    }
}

impl Provisioner for CredentialProvisioner {
    fn provision(&self, endpoint: &str, identity: Option<&Identity>) -> Result<Provisioning, String> {
        let account = match identity {
            Some(id) => {
                if self.store.bootstrap_endpoint_of(id).as_deref() != Some(endpoint) {
                    return Err(format!("{id} is not a bootstrap credential of endpoint {endpoint}"));
                }
                match self.store.server_psk(endpoint) {
                    Some((psk_id, key)) => {
                        self.account(self.dtls_uri.clone(), SecurityMode::Psk, psk_id.into_bytes(), key)
                    }
                    None if self.store.has_credentials(endpoint) => {
                        return Err(format!(
                            "endpoint {endpoint} authenticates to the server with a certificate or a raw public \
                             key (or its PSK is missing from the key file): not provisioned by bootstrap"
                        ));
                    }
                    None => self.nosec_account(endpoint)?,
                }
            }
            None => {
                if self.store.has_credentials(endpoint) || self.store.has_bootstrap_credentials(endpoint) {
                    return Err(format!("endpoint {endpoint} has credentials: bootstrap over DTLS"));
                }
                self.nosec_account(endpoint)?
            }
        };
        let mut p = Provisioning::new(vec![account]);
        p.delete = self.delete.clone();
        Ok(p)
    }
}

/// Bootstrap server configuration.
#[derive(Debug, Clone)]
pub struct BootstrapServerConfig {
    /// NoSec CoAP (default `0.0.0.0:5783`); `None`: no NoSec listener.
    pub nosec_addr: Option<SocketAddr>,
    /// DTLS (its `addr` default here is `0.0.0.0:5784`); `None`: no DTLS listener.
    pub dtls: Option<DtlsConfig>,
    /// Who gets what.
    pub provisioner: Arc<dyn Provisioner>,
    /// CoAP transmission parameters.
    pub coap: coap::Config,
    /// A bootstrap sequence not finished after this is abandoned (default 120 s).
    pub session_timeout: Duration,
}

impl BootstrapServerConfig {
    /// NoSec on `0.0.0.0:5783`, no DTLS.
    pub fn new(provisioner: Arc<dyn Provisioner>) -> Self {
        BootstrapServerConfig {
            nosec_addr: Some(SocketAddr::from(([0, 0, 0, 0], 5783))),
            dtls: None,
            provisioner,
            coap: coap::Config { max_body: 16 * 1024, ..coap::Config::default() },
            session_timeout: Duration::from_secs(120),
        }
    }
}

/// Counters of the bootstrap server.
#[derive(Debug, Default)]
pub struct BootstrapStats {
    /// Bootstrap-Requests admitted.
    pub requests: AtomicU64,
    /// Bootstrap-Requests refused (4.00 malformed, 4.03 not admitted).
    pub refused: AtomicU64,
    /// Sequences the client finished (2.04 to Bootstrap-Finish).
    pub finished: AtomicU64,
    /// Sequences that failed (a refused step, no answer, or the session timeout).
    pub failed: AtomicU64,
}

/// What happened to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootstrapEvent {
    /// The client accepted Bootstrap-Finish.
    Finished {
        /// Endpoint.
        endpoint: String,
        /// The DTLS identity it bootstrapped with (`None`: NoSec).
        identity: Option<Identity>,
    },
    /// The sequence failed.
    Failed {
        /// Endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The Bootstrap-Request was refused (4.00 or 4.03).
    Refused {
        /// Source address.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// Why the bootstrap server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapStartError {
    /// A socket could not be bound.
    #[error("binding the bootstrap server to {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// DTLS setup failed.
    #[error(transparent)]
    Dtls(#[from] crate::dtls::DtlsError),
}

/// A running bootstrap server.
#[derive(Clone)]
pub struct BootstrapHandle {
    nosec_addr: Option<SocketAddr>,
    dtls_addr: Option<SocketAddr>,
    stats: Arc<BootstrapStats>,
    dtls_stats: Arc<Stats>,
    events: broadcast::Sender<BootstrapEvent>,
    shutdown: CancellationToken,
}

impl BootstrapHandle {
    /// The NoSec listener's address.
    pub fn nosec_addr(&self) -> Option<SocketAddr> {
        self.nosec_addr
    }

    /// The DTLS listener's address.
    pub fn dtls_addr(&self) -> Option<SocketAddr> {
        self.dtls_addr
    }

    /// Bootstrap counters.
    pub fn stats(&self) -> &BootstrapStats {
        &self.stats
    }

    /// DTLS counters of the bootstrap listener (handshakes, refusals, sessions).
    pub fn dtls_stats(&self) -> &Stats {
        &self.dtls_stats
    }

    /// Every outcome from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BootstrapEvent> {
        self.events.subscribe()
    }

    /// Stops the server.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

/// Entry point.
pub struct BootstrapServer;

impl BootstrapServer {
    /// Binds the sockets and spawns the server on the current tokio runtime.
    pub async fn start(
        config: BootstrapServerConfig,
    ) -> Result<(BootstrapHandle, JoinHandle<()>), BootstrapStartError> {
        let bind = |addr: SocketAddr| async move {
            let s =
                UdpSocket::bind(addr).await.map_err(|source| BootstrapStartError::Bind { addr, source })?;
            let local = s.local_addr().map_err(|source| BootstrapStartError::Bind { addr, source })?;
            Ok::<_, BootstrapStartError>((Arc::new(s), local))
        };
        let nosec = match config.nosec_addr {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let dtls_stats = Arc::new(Stats::default());
        let dtls = match &config.dtls {
            Some(d) => {
                let (s, local) = bind(d.addr).await?;
                Some((s, local, Dtls::new(clock::now(), d, dtls_stats.clone())?))
            }
            None => None,
        };
        let (events, _) = broadcast::channel(1024);
        let stats = Arc::new(BootstrapStats::default());
        let shutdown = CancellationToken::new();
        let handle = BootstrapHandle {
            nosec_addr: nosec.as_ref().map(|(_, a)| *a),
            dtls_addr: dtls.as_ref().map(|(_, a, _)| *a),
            stats: stats.clone(),
            dtls_stats: dtls_stats.clone(),
            events: events.clone(),
            shutdown: shutdown.clone(),
        };
        let task = Task {
            nosec: nosec.map(|(s, _)| s),
            dtls: dtls.map(|(s, _, d)| (s, d)),
            dtls_out: Vec::new(),
            coap: Endpoint::new(config.coap.clone()),
            provisioner: config.provisioner.clone(),
            sessions: HashMap::new(),
            by_request: HashMap::new(),
            session_timeout: config.session_timeout,
            stats,
            dtls_stats,
            events,
        };
        Ok((handle, tokio::spawn(task.run(shutdown))))
    }
}

struct Session {
    endpoint: String,
    identity: Option<Identity>,
    bs: BootstrapSession,
    /// The request in flight.
    request: Option<RequestId>,
    deadline: Instant,
}

struct Task {
    nosec: Option<Arc<UdpSocket>>,
    dtls: Option<(Arc<UdpSocket>, Dtls)>,
    dtls_out: Vec<(SocketAddr, Vec<u8>)>,
    coap: Endpoint,
    provisioner: Arc<dyn Provisioner>,
    sessions: HashMap<SocketAddr, Session>,
    by_request: HashMap<RequestId, SocketAddr>,
    session_timeout: Duration,
    stats: Arc<BootstrapStats>,
    dtls_stats: Arc<Stats>,
    events: broadcast::Sender<BootstrapEvent>,
}

const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl Task {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut buf = vec![0u8; 65536];
        let mut dbuf = vec![0u8; 65536];
        let nosec = self.nosec.clone();
        let dtls_socket = self.dtls.as_ref().map(|(s, _)| s.clone());
        let mut next_sweep = clock::now() + SWEEP_EVERY;
        loop {
            let wake = [
                self.coap.poll_timeout(),
                self.dtls.as_ref().and_then(|(_, d)| d.poll_timeout()),
                Some(next_sweep),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_sweep);
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(wake));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = async {
                    match &nosec {
                        Some(s) => s.recv_from(&mut buf).await,
                        None => std::future::pending().await,
                    }
                } => match r {
                    Ok((n, from)) => {
                        let now = clock::now();
                        // A peer is either secured or not: cleartext from an address with a DTLS session is
                        // dropped.
                        if self.dtls.as_ref().and_then(|(_, d)| d.identity_of(&from)).is_none() {
                            self.coap.handle_datagram(now, from, &buf[..n]);
                        }
                        self.process(now);
                    }
                    Err(e) => tracing::debug!("bootstrap udp receive error: {e}"),
                },
                r = async {
                    match &dtls_socket {
                        Some(s) => s.recv_from(&mut dbuf).await,
                        None => std::future::pending().await,
                    }
                } => match r {
                    Ok((n, from)) => {
                        let now = clock::now();
                        if let Some((_, d)) = self.dtls.as_mut() {
                            let out = d.handle_datagram(now, from, &dbuf[..n]);
                            self.dtls_out.extend(out.transmit.into_iter().map(|x| (from, x)));
                            for m in out.plain {
                                self.coap.handle_datagram(now, from, &m);
                            }
                            self.dtls_stats.dtls_sessions.store(d.sessions() as u64, Ordering::Relaxed);
                        }
                        self.process(now);
                    }
                    Err(e) => tracing::debug!("bootstrap dtls receive error: {e}"),
                },
                _ = sleep => {
                    let now = clock::now();
                    self.coap.handle_timeout(now);
                    if let Some((_, d)) = self.dtls.as_mut() {
                        let sessions = &self.sessions;
                        self.dtls_out.extend(d.handle_timeout(now, |p| sessions.contains_key(p)));
                    }
                    if now >= next_sweep {
                        self.sweep(now);
                        next_sweep = now + SWEEP_EVERY;
                    }
                    self.process(now);
                }
            }
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        while let Some(t) = self.coap.poll_transmit() {
            if let Some((_, d)) = self.dtls.as_mut()
                && d.identity_of(&t.to).is_some()
            {
                if let Some(records) = d.send(t.to, &t.bytes) {
                    self.dtls_out.extend(records.into_iter().map(|r| (t.to, r)));
                }
                continue;
            }
            // A client that bootstrapped over DTLS hears nothing in the clear (its session ended).
            if self.sessions.get(&t.to).is_some_and(|s| s.identity.is_some()) {
                continue;
            }
            if let Some(s) = &self.nosec
                && let Err(e) = s.send_to(&t.bytes, t.to).await
            {
                tracing::debug!("bootstrap udp send to {} failed: {e}", t.to);
            }
        }
        if let Some((sock, _)) = &self.dtls {
            for (to, d) in self.dtls_out.drain(..) {
                if let Err(e) = sock.send_to(&d, to).await {
                    tracing::debug!("bootstrap dtls send to {to} failed: {e}");
                }
            }
        }
    }

    fn process(&mut self, now: Instant) {
        while let Some(ev) = self.coap.poll_event() {
            match ev {
                CoapEvent::Request { id, from, request } => self.on_request(now, id, from, request),
                CoapEvent::Response { id, response } => {
                    let code = ResponseCode::from_byte(u8::from(response.header.code));
                    self.advance(now, id, |bs| bs.on_response(code, &response.payload));
                }
                CoapEvent::Timeout { id } => self.advance(now, id, |bs| bs.on_no_answer("no answer")),
                CoapEvent::Reset { id } => self.advance(now, id, |bs| bs.on_no_answer("reset")),
                CoapEvent::Notification { .. } => {}
            }
        }
    }

    fn on_request(&mut self, now: Instant, id: IncomingId, from: SocketAddr, req: Packet) {
        let path = coap::path_of(&req);
        let is_post = matches!(req.header.code, MessageClass::Request(RequestType::Post));
        if path != ["bs"] {
            self.coap.respond(now, id, reply_packet(4, 4));
            return;
        }
        if !is_post {
            self.coap.respond(now, id, reply_packet(4, 5));
            return;
        }
        let request = match parse_request(&coap::queries_of(&req)) {
            Ok(r) => r,
            Err(e) => return self.refuse(now, id, from, (4, 0), e.to_string()),
        };
        let identity = self.dtls.as_ref().and_then(|(_, d)| d.identity_of(&from)).cloned();
        let config = match self.provisioner.provision(&request.endpoint, identity.as_ref()) {
            Ok(c) => c,
            Err(why) => return self.refuse(now, id, from, (4, 3), why),
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "bootstrap of {} from {from} ({})",
            request.endpoint,
            identity.as_ref().map_or("NoSec".to_owned(), |i| i.to_string())
        );
        self.coap.respond(now, id, reply_packet(2, 4));
        // A client that starts again replaces its unfinished sequence.
        if let Some(old) = self.sessions.remove(&from)
            && let Some(r) = old.request
        {
            self.by_request.remove(&r);
            self.coap.cancel(r);
        }
        let session = Session {
            endpoint: request.endpoint,
            identity,
            bs: BootstrapSession::new(config, request.preferred_format),
            request: None,
            deadline: now + self.session_timeout,
        };
        self.sessions.insert(from, session);
        self.send_step(now, from);
    }

    fn refuse(&mut self, now: Instant, id: IncomingId, from: SocketAddr, code: (u8, u8), why: String) {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("Bootstrap-Request from {from} refused ({}.{:02}): {why}", code.0, code.1);
        let mut p = reply_packet(code.0, code.1);
        p.payload = why.clone().into_bytes();
        self.coap.respond(now, id, p);
        let _ = self.events.send(BootstrapEvent::Refused { peer: from, reason: why });
    }

    /// Sends the request of `peer`'s current step.
    fn send_step(&mut self, now: Instant, peer: SocketAddr) {
        let Some(s) = self.sessions.get_mut(&peer) else { return };
        match s.bs.request() {
            Ok(req) => {
                let id = self.coap.send_request(now, peer, packet_of(&req), true);
                s.request = Some(id);
                self.by_request.insert(id, peer);
            }
            Err(e) => {
                let why = format!("cannot encode {:?}: {e}", s.bs.step());
                self.end(peer, Progress::Failed(why));
            }
        }
    }

    fn advance(&mut self, now: Instant, id: RequestId, f: impl FnOnce(&mut BootstrapSession) -> Progress) {
        let Some(peer) = self.by_request.remove(&id) else { return };
        let Some(s) = self.sessions.get_mut(&peer) else { return };
        s.request = None;
        match f(&mut s.bs) {
            Progress::Continue => self.send_step(now, peer),
            done => self.end(peer, done),
        }
    }

    fn end(&mut self, peer: SocketAddr, progress: Progress) {
        let Some(s) = self.sessions.remove(&peer) else { return };
        if let Some(r) = s.request {
            self.by_request.remove(&r);
            self.coap.cancel(r);
        }
        let event = match progress {
            Progress::Done => {
                self.stats.finished.fetch_add(1, Ordering::Relaxed);
                tracing::info!("bootstrap of {} finished", s.endpoint);
                BootstrapEvent::Finished { endpoint: s.endpoint, identity: s.identity }
            }
            Progress::Failed(reason) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("bootstrap of {} failed: {reason}", s.endpoint);
                BootstrapEvent::Failed { endpoint: s.endpoint, reason }
            }
            Progress::Continue => return,
        };
        let _ = self.events.send(event);
    }

    fn sweep(&mut self, now: Instant) {
        let late: Vec<SocketAddr> =
            self.sessions.iter().filter(|(_, s)| s.deadline <= now).map(|(p, _)| *p).collect();
        for p in late {
            self.end(p, Progress::Failed("the bootstrap sequence took too long".into()));
        }
    }
}

/// Builds the bootstrap server's DTLS listener configuration: the bootstrap credentials of `store`.
pub fn bootstrap_dtls(store: &Arc<BoundCredentialStore>, addr: SocketAddr) -> DtlsConfig {
    let creds: Arc<dyn CredentialStore> = store.bootstrap();
    let mut d = DtlsConfig::new(creds);
    d.addr = addr;
    d
}
