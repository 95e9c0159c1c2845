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

    /// After the credential store changed: ends the registrations and DTLS sessions it no longer admits
    /// (a DTLS identity unbound or bound elsewhere; a NoSec registration of an endpoint that now has
    /// credentials, or any NoSec registration with NoSec off). Each is logged and counted as a refusal, and
    /// the registration ends with `Deregistered`.
    pub(super) fn revalidate(&mut self) {
        let Some(creds) = self.creds.clone() else { return };
        let generation = creds.generation();
        if generation == self.creds_seen {
            return;
        }
        self.creds_seen = generation;
        let nosec = self.nosec;
        let stale: Vec<(String, String)> = self
            .regs
            .iter()
            .filter(|(_, r)| match &r.info.identity {
                Some(id) => creds.endpoint_of(id).as_deref() != Some(r.info.endpoint.as_str()),
                None => !nosec || creds.has_credentials(&r.info.endpoint),
            })
            .map(|(id, r)| (id.clone(), r.info.endpoint.clone()))
            .collect();
        for (reg_id, endpoint) in stale {
            if let Some(info) = self.remove_registration(&reg_id) {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("registration of {endpoint} ended: its credentials changed on chain");
                let _ = self.events.send(ServerEvent::Deregistered {
                    endpoint: info.endpoint.clone(),
                    registration_id: info.registration_id.clone(),
                });
            }
        }
        if let Some((_, d)) = self.dtls.as_mut() {
            for peer in d.retain_identities(|id| creds.endpoint_of(id).is_some()) {
                tracing::warn!("DTLS session with {peer} ended: its identity is no longer admitted");
            }
            self.stats.dtls_sessions.store(d.sessions() as u64, Ordering::Relaxed);
        }
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
