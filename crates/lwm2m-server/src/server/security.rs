//! The server's security side: the DTLS socket's datagrams, the NoSec socket's filter, and the admission
//! rules' helpers (the security context of a message, refusals that are logged and counted).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use coap::lite::Packet;
use tokio::net::UdpSocket;

use super::{Server, reply_packet};
use crate::creds::{CredentialStore, Identity};
use crate::dtls::Dtls;
use crate::types::ServerEvent;

impl Server {
    /// Adds the DTLS listener, the NoSec switch and the credential store the admission rules ask.
    pub(crate) fn with_security(
        mut self,
        dtls: Option<(Arc<UdpSocket>, Dtls)>,
        nosec: bool,
        creds: Option<Arc<dyn CredentialStore>>,
    ) -> Self {
        self.dtls = dtls;
        self.nosec = nosec;
        self.creds = creds;
        self
    }

    /// The security context a message from `from` arrived in: the DTLS identity of its session, or NoSec.
    pub(super) fn identity_at(&self, from: &SocketAddr) -> Option<Identity> {
        self.dtls.as_ref().and_then(|(_, d)| d.identity_of(from)).cloned()
    }

    pub(super) fn refuse(&self, from: SocketAddr, what: &str, why: &str) -> Packet {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("{what} from {from} refused (4.03): {why}");
        let mut p = reply_packet(4, 3);
        p.payload = why.as_bytes().to_vec();
        p
    }

    /// A datagram on the DTLS socket: handshake, or records whose CoAP messages go to the endpoint.
    pub(super) fn dtls_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Some((_, dtls)) = self.dtls.as_mut() else { return };
        let out = dtls.handle_datagram(now, from, bytes);
        self.stats.dtls_sessions.store(dtls.sessions() as u64, Ordering::Relaxed);
        self.dtls_out.extend(out.transmit.into_iter().map(|d| (from, d)));
        if let Some((identity, cipher, resumed)) = out.established {
            let _ = self.events.send(ServerEvent::DtlsSession { peer: from, identity, cipher, resumed });
        }
        for m in out.plain {
            self.coap.handle_datagram(now, from, &m);
        }
    }

    /// A datagram on the NoSec socket. One from an address that has a DTLS session is dropped: a peer is
    /// either secured or not, and a spoofed cleartext message must not pass as the secured device's.
    pub(super) fn nosec_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.identity_at(&from).is_some() {
            self.stats.nosec_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("NoSec datagram from {from}, which has a DTLS session: dropped");
            return;
        }
        self.coap.handle_datagram(now, from, bytes);
    }
}
