//! DTLS 1.2 with a pre-shared key for simulated devices: a transport wrapper under the unchanged CoAP logic.
//!
//! Each DTLS device has its own UDP socket (the server keys sessions by peer address) and one OpenSSL `SSL`
//! in client mode over an in-memory datagram queue, as the server's side does: datagrams from the socket
//! are queued for OpenSSL, the records it writes are sent by the group task. The CoAP endpoint sees the
//! decrypted messages only. OpenSSL retransmits a lost handshake flight when its DTLS timer has run out
//! and the handshake is driven with nothing to read (the check `DTLSv1_handle_timeout` makes); the group
//! drives it every [`HANDSHAKE_POLL`] while handshaking. A handshake not finished within
//! [`DtlsPsk::handshake_timeout`] is counted as failed and started again with a new `SSL`.
//!
//! Identity and key of each device come from [`DtlsPsk::credentials`], a function of the endpoint name:
//! [`DtlsPsk::derived`] gives identity = endpoint name and key = [`derive_key`] (SHA-256 of a secret and the
//! name), which a test or benchmark writes into the server's key file with the same function.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls_record::Datagrams;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode, SslStream,
    SslVersion,
};
use sha2::{Digest, Sha256};

use crate::SimError;

/// How often a handshake in progress is driven so that OpenSSL's retransmission timer (1 s, doubling) is
/// checked.
pub(crate) const HANDSHAKE_POLL: Duration = Duration::from_millis(100);

/// Path MTU assumed for handshake flights (as the server's default).
const MTU: u32 = 1200;

/// A PSK identity and key. The key never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Psk {
    /// PSK identity (at most 128 bytes).
    pub identity: String,
    /// The key (at most 64 bytes).
    pub key: Vec<u8>,
}

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Psk").field("identity", &self.identity).field("key", &"<secret>").finish()
    }
}

/// The PSK of a device, from its endpoint name.
pub type PskFn = Arc<dyn Fn(&str) -> Psk + Send + Sync>;

/// DTLS PSK mode of the simulator.
#[derive(Clone)]
pub struct DtlsPsk {
    /// Identity and key of each device, from its endpoint name.
    pub credentials: PskFn,
    /// Cipher suites offered, OpenSSL names (default `PSK-AES128-CCM8:PSK-AES128-GCM-SHA256`, i.e.
    /// `TLS_PSK_WITH_AES_128_CCM_8` first).
    pub ciphers: String,
    /// A handshake not finished after this is counted as failed and started again (default 10 s).
    pub handshake_timeout: Duration,
}

impl std::fmt::Debug for DtlsPsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsPsk")
            .field("ciphers", &self.ciphers)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// The default cipher list: the suite LwM2M makes mandatory, then its GCM sibling.
pub const DEFAULT_CIPHERS: &str = "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256";

impl DtlsPsk {
    /// Identity = endpoint name, key = [`derive_key`]`(secret, endpoint)`.
    pub fn derived(secret: &[u8]) -> Self {
        let secret = secret.to_vec();
        DtlsPsk::with(move |ep| Psk { identity: ep.to_owned(), key: derive_key(&secret, ep) })
    }

    /// Identity and key given by the caller for each endpoint name.
    pub fn with(f: impl Fn(&str) -> Psk + Send + Sync + 'static) -> Self {
        DtlsPsk {
            credentials: Arc::new(f),
            ciphers: DEFAULT_CIPHERS.to_owned(),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// A 16-byte key for `endpoint`: the first 16 bytes of SHA-256(`secret` ‖ 0x00 ‖ `endpoint`). Test keys for
/// simulated devices, reproducible by whoever knows the secret (the server's key file is written with it).
pub fn derive_key(secret: &[u8], endpoint: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(secret);
    h.update([0u8]);
    h.update(endpoint.as_bytes());
    h.finalize()[..16].to_vec()
}

/// The client context shared by all devices of a simulator; each `SSL` carries its device's [`Psk`].
#[derive(Clone)]
pub(crate) struct ClientContext {
    ctx: SslContext,
    psk_idx: openssl::ex_data::Index<Ssl, Psk>,
}

impl ClientContext {
    pub(crate) fn new(ciphers: &str) -> Result<Self, SimError> {
        let psk_idx = Ssl::new_ex_index::<Psk>()?;
        let mut b = SslContextBuilder::new(SslMethod::dtls_client())?;
        b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
        b.set_max_proto_version(Some(SslVersion::DTLS1_2))?;
        // CCM_8 suites have a 64-bit tag: OpenSSL 3 puts them below its default security level.
        b.set_security_level(0);
        b.set_cipher_list(ciphers)?;
        // Every handshake is a full one: no session cache, no tickets.
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        b.set_options(SslOptions::NO_QUERY_MTU | SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION);
        b.set_psk_client_callback(move |ssl, _hint, id_out, psk_out| {
            let Some(psk) = ssl.ex_data(psk_idx) else { return Ok(0) };
            let id = psk.identity.as_bytes();
            // The identity is written NUL-terminated.
            if id.len() >= id_out.len() || psk.key.len() > psk_out.len() {
                return Ok(0);
            }
            id_out[..id.len()].copy_from_slice(id);
            id_out[id.len()] = 0;
            psk_out[..psk.key.len()].copy_from_slice(&psk.key);
            Ok(psk.key.len())
        });
        Ok(ClientContext { ctx: b.build(), psk_idx })
    }
}

/// Why a DTLS session of a device ended or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The handshake did not finish within the handshake timeout.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// OpenSSL ended the handshake or the session (alert, bad record, close_notify).
    #[error("DTLS: {0}")]
    Tls(String),
}

/// What one input or poll of a link produced.
#[derive(Debug, Default)]
pub(crate) struct LinkOutput {
    /// Datagrams to send to the server.
    pub(crate) transmit: Vec<Vec<u8>>,
    /// Decrypted application data (CoAP messages).
    pub(crate) plain: Vec<Vec<u8>>,
    /// The handshake finished with this input.
    pub(crate) established: bool,
    /// The session ended or the handshake failed.
    pub(crate) failed: Option<LinkError>,
}

/// One device's DTLS client session over in-memory datagrams.
pub(crate) struct Link {
    ssl: SslStream<Datagrams>,
    started: Instant,
    established: bool,
    timeout: Duration,
    buf: Vec<u8>,
}

impl Link {
    /// A new client `SSL` for `psk`; [`Link::start`] sends the first ClientHello.
    pub(crate) fn new(
        ctx: &ClientContext,
        psk: Psk,
        now: Instant,
        timeout: Duration,
    ) -> Result<Self, SimError> {
        let mut ssl = Ssl::new(&ctx.ctx)?;
        ssl.set_ex_data(ctx.psk_idx, psk);
        ssl.set_mtu(MTU)?;
        ssl.set_connect_state();
        let ssl = SslStream::new(ssl, Datagrams::default())?;
        Ok(Link { ssl, started: now, established: false, timeout, buf: vec![0u8; 4096] })
    }

    /// The handshake has finished.
    pub(crate) fn is_established(&self) -> bool {
        self.established
    }

    /// Sends the ClientHello.
    pub(crate) fn start(&mut self) -> LinkOutput {
        let mut out = LinkOutput::default();
        self.handshake(&mut out);
        out
    }

    /// Takes one datagram from the server.
    pub(crate) fn input(&mut self, datagram: &[u8]) -> LinkOutput {
        let mut out = LinkOutput::default();
        if datagram.is_empty() {
            // OpenSSL would take an empty read as the end of the stream.
            return out;
        }
        self.ssl.get_mut().inbound.push_back(datagram.to_vec());
        if !self.established {
            self.handshake(&mut out);
        }
        if self.established && out.failed.is_none() {
            loop {
                match self.ssl.ssl_read(&mut self.buf) {
                    Ok(0) => break,
                    Ok(n) => out.plain.push(self.buf[..n].to_vec()),
                    Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => break,
                    Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                        out.failed = Some(LinkError::Tls("the server closed the session".into()));
                        break;
                    }
                    Err(e) => {
                        out.failed = Some(LinkError::Tls(e.to_string()));
                        break;
                    }
                }
            }
        }
        out.transmit.append(&mut self.ssl.get_mut().outbound);
        out
    }

    /// While handshaking: lets OpenSSL retransmit its last flight if its timer ran out, and fails the
    /// handshake after the timeout.
    pub(crate) fn poll(&mut self, now: Instant) -> LinkOutput {
        let mut out = LinkOutput::default();
        if self.established {
            return out;
        }
        if now.duration_since(self.started) > self.timeout {
            out.failed = Some(LinkError::HandshakeTimeout);
            return out;
        }
        self.handshake(&mut out);
        out
    }

    /// Encrypts one CoAP message: the record(s) to send, or why the session cannot.
    pub(crate) fn write(&mut self, plain: &[u8]) -> Result<Vec<Vec<u8>>, LinkError> {
        if !self.established {
            return Err(LinkError::Tls("no session yet".into()));
        }
        self.ssl.ssl_write(plain).map_err(|e| LinkError::Tls(e.to_string()))?;
        Ok(std::mem::take(&mut self.ssl.get_mut().outbound))
    }

    /// Ends the session with a close_notify alert: the datagram(s) to send.
    pub(crate) fn close(&mut self) -> Vec<Vec<u8>> {
        if self.established {
            let _ = self.ssl.shutdown();
        }
        std::mem::take(&mut self.ssl.get_mut().outbound)
    }

    fn handshake(&mut self, out: &mut LinkOutput) {
        match self.ssl.do_handshake() {
            Ok(()) => {
                self.established = true;
                out.established = true;
            }
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {}
            Err(e) => out.failed = Some(LinkError::Tls(e.to_string())),
        }
        out.transmit.append(&mut self.ssl.get_mut().outbound);
    }
}
