//! Full DTLS PSK handshakes in a loop, for benchmarks: `clients` concurrent clients, each on its own UDP
//! socket, each handshaking with a fresh `SSL` (no session resumption, so every handshake is a full one with
//! the cookie exchange), then ending the session with close_notify (the server frees it) and starting
//! again from the same address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::SimError;
use crate::dtls::{ClientContext, DtlsPsk, HANDSHAKE_POLL, Link, LinkOutput};
use crate::group::now;

/// What [`handshake_load`] runs.
#[derive(Debug, Clone)]
pub struct HandshakeLoadConfig {
    /// The server's `coaps://` address.
    pub server: SocketAddr,
    /// Concurrent clients (sockets).
    pub clients: usize,
    /// Client `i` authenticates with the PSK of endpoint `{prefix}{i}`.
    pub endpoint_prefix: String,
    /// Credentials, ciphers and handshake timeout.
    pub dtls: DtlsPsk,
}

/// Counters of a running [`handshake_load`].
#[derive(Debug, Default)]
pub struct HandshakeStats {
    /// Handshakes finished (the client saw the server's Finished).
    pub completed: AtomicU64,
    /// Handshakes that failed or timed out.
    pub failed: AtomicU64,
}

/// A running handshake load; stops when dropped.
#[derive(Debug)]
pub struct HandshakeLoad {
    stats: Arc<HandshakeStats>,
    stop: CancellationToken,
}

impl HandshakeLoad {
    /// Counters.
    pub fn stats(&self) -> &HandshakeStats {
        &self.stats
    }

    /// Stops every client.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for HandshakeLoad {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Binds `clients` sockets on 127.0.0.1 and starts handshaking on each, in a loop, until stopped.
pub async fn handshake_load(config: HandshakeLoadConfig) -> Result<HandshakeLoad, SimError> {
    let ctx = ClientContext::new(&config.dtls.ciphers)?;
    let stats = Arc::new(HandshakeStats::default());
    let stop = CancellationToken::new();
    for i in 0..config.clients {
        let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        socket.connect(config.server).await?;
        let ep = format!("{}{i}", config.endpoint_prefix);
        let client = Client {
            socket,
            ctx: ctx.clone(),
            dtls: config.dtls.clone(),
            endpoint: ep,
            stats: stats.clone(),
        };
        tokio::spawn(client.run(stop.clone()));
    }
    Ok(HandshakeLoad { stats, stop })
}

struct Client {
    socket: UdpSocket,
    ctx: ClientContext,
    dtls: DtlsPsk,
    endpoint: String,
    stats: Arc<HandshakeStats>,
}

impl Client {
    async fn run(self, stop: CancellationToken) {
        let mut buf = vec![0u8; 4096];
        let psk = (self.dtls.credentials)(&self.endpoint);
        loop {
            let mut link = match Link::new(&self.ctx, psk.clone(), now(), self.dtls.handshake_timeout) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("{}: cannot create a DTLS client: {e}", self.endpoint);
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            let mut out = link.start();
            loop {
                self.send(&mut out).await;
                if out.established {
                    self.stats.completed.fetch_add(1, Ordering::Relaxed);
                    for d in link.close() {
                        let _ = self.socket.send(&d).await;
                    }
                    break;
                }
                if let Some(e) = out.failed.take() {
                    tracing::debug!("{}: handshake failed: {e}", self.endpoint);
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                out = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = self.socket.recv(&mut buf) => match r {
                        Ok(n) => link.input(&buf[..n]),
                        Err(_) => LinkOutput::default(),
                    },
                    _ = tokio::time::sleep(HANDSHAKE_POLL) => link.poll(now()),
                };
            }
            if stop.is_cancelled() {
                return;
            }
        }
    }

    async fn send(&self, out: &mut LinkOutput) {
        for d in out.transmit.drain(..) {
            let _ = self.socket.send(&d).await;
        }
    }
}
