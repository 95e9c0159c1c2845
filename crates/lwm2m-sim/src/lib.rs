//! A simulator of many LwM2M 1.1 devices over real UDP, for tests and benchmarks.
//!
//! Devices are grouped: each group is one tokio task with one UDP socket and one sans-IO [`coap::Endpoint`].
//! When a group holds more than one device, each registers with its own alternate root path (`</d17>;
//! rt="oma.lwm2m"`), so the server addresses them apart although they share a socket. Every device has the
//! Device object (3), temperature (3303), humidity (3304) and light control (3311); it answers Read (text,
//! TLV, SenML JSON/CBOR, LwM2M JSON/CBOR), Write, Execute (3/0/4 reboot), Discover, Write-Attributes and
//! Observe, sends non-confirmable notifications at a configurable interval, and Send (`/dp`) on request.
//!
//! With [`SimConfig::dtls`] every device talks DTLS 1.2 with a pre-shared key (`coaps://`, see [`dtls`]): each
//! then has its own socket and session, and the CoAP logic runs unchanged over the session.
//! [`handshake_load`] drives full PSK handshakes in a loop for benchmarks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lwm2m_sim::SimError> {
//! use lwm2m_sim::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig { server: "127.0.0.1:5683".parse().unwrap(), clients: 1000, ..SimConfig::default() }).await?;
//! sim.wait_registered(1000, std::time::Duration::from_secs(30)).await;
//! sim.stop();
//! # Ok(()) }
//! ```

mod device;
pub mod dtls;
mod group;
mod handshakes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use device::OBJECT_LINKS;
pub use dtls::{DtlsPsk, Psk, derive_key};
pub use handshakes::{HandshakeLoad, HandshakeLoadConfig, HandshakeStats, handshake_load};

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A UDP socket could not be bound.
    #[error("binding a UDP socket: {0}")]
    Bind(#[from] std::io::Error),
    /// OpenSSL refused the DTLS client configuration (cipher list, session parameters).
    #[error("DTLS client setup: {0}")]
    Dtls(#[from] openssl::error::ErrorStack),
}

/// Simulator configuration.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The LwM2M server.
    pub server: SocketAddr,
    /// Number of devices.
    pub clients: usize,
    /// Devices per UDP socket (1 = each device its own socket and root path `/`).
    pub clients_per_socket: usize,
    /// Endpoint names are `{prefix}{index}`.
    pub endpoint_prefix: String,
    /// Registration lifetime (s); devices send Update at 80 % of it.
    pub lifetime: u32,
    /// How often an observed resource notifies (None: only on change via the handle).
    pub notify_interval: Option<Duration>,
    /// Registrations in flight per group at most (paces start-up).
    pub register_window: usize,
    /// DTLS 1.2 PSK instead of NoSec (`server` is then the server's `coaps://` address). Each device gets its
    /// own socket and session whatever `clients_per_socket` says: the server keys sessions by address.
    pub dtls: Option<DtlsPsk>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            server: SocketAddr::from(([127, 0, 0, 1], 5683)),
            clients: 10,
            clients_per_socket: 1,
            endpoint_prefix: "sim-".into(),
            lifetime: 300,
            notify_interval: Some(Duration::from_secs(1)),
            register_window: 32,
            dtls: None,
        }
    }
}

/// Counters shared by all groups.
#[derive(Debug, Default)]
pub struct SimStats {
    /// Devices registered now.
    pub registered: AtomicU64,
    /// Notifications sent.
    pub notifications: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Send operations acknowledged by the server.
    pub sends_acked: AtomicU64,
    /// DTLS handshakes finished.
    pub handshakes: AtomicU64,
    /// DTLS handshakes that failed or timed out (each is started again), and sessions that ended.
    pub handshakes_failed: AtomicU64,
}

/// Commands to groups.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GroupCommand {
    SendAll,
    Deregister,
}

/// A running simulator.
pub struct Simulator {
    stats: Arc<SimStats>,
    groups: Vec<mpsc::Sender<GroupCommand>>,
    stop: CancellationToken,
}

impl Simulator {
    /// Binds the sockets (on 127.0.0.1, ephemeral ports) and starts registering every device (over DTLS
    /// once its handshake has finished, in DTLS mode).
    pub async fn start(config: SimConfig) -> Result<Simulator, SimError> {
        let stats = Arc::new(SimStats::default());
        let stop = CancellationToken::new();
        let tls = match &config.dtls {
            Some(d) => Some((dtls::ClientContext::new(&d.ciphers)?, d.clone())),
            None => None,
        };
        let per = if tls.is_some() { 1 } else { config.clients_per_socket.max(1) };
        let mut groups = Vec::new();
        let registry = Arc::new(lwm2m::Registry::builtin());
        let mut first = 0usize;
        while first < config.clients {
            let n = per.min(config.clients - first);
            let socket = tokio::net::UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let (tx, rx) = mpsc::channel(8);
            let mut g =
                group::Group::new(socket, &config, first as u32, n, per > 1, stats.clone(), registry.clone());
            if let Some((ctx, d)) = &tls {
                g = g.with_dtls(ctx.clone(), d.clone());
            }
            tokio::spawn(g.run(rx, stop.clone()));
            groups.push(tx);
            first += n;
        }
        Ok(Simulator { stats, groups, stop })
    }

    /// Counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Devices registered now.
    pub fn registered(&self) -> u64 {
        self.stats.registered.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` devices are registered or `timeout` passes; returns the count.
    #[allow(clippy::disallowed_methods)] // a deadline of a waiting helper in the shell
    pub async fn wait_registered(&self, n: u64, timeout: Duration) -> u64 {
        let until = tokio::time::Instant::now() + timeout;
        while self.registered() < n && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.registered()
    }

    /// Every device sends its temperature and humidity with the Send operation (SenML CBOR on `/dp`).
    pub async fn send_all(&self) {
        for g in &self.groups {
            let _ = g.send(GroupCommand::SendAll).await;
        }
    }

    /// Every device de-registers.
    pub async fn deregister_all(&self) {
        for g in &self.groups {
            let _ = g.send(GroupCommand::Deregister).await;
        }
    }

    /// Stops every group (without de-registering).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
