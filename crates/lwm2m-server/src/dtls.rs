//! DTLS 1.2 for the LwM2M server (`coaps://`), on OpenSSL through the `openssl` crate.
//!
//! The server task owns one UDP socket for DTLS and feeds its datagrams here; [`Dtls`] demultiplexes them by
//! peer address, drives one OpenSSL `SSL` per session over an in-memory datagram queue (no socket inside
//! OpenSSL), and hands back decrypted CoAP messages and datagrams to send:
//!
//! ```text
//!  datagram from P ──► session for P? ── yes ──► SSL (handshake or record decryption) ──► CoAP bytes
//!                         │ no                      └──► datagrams to P (flights, alerts)
//!                         ▼
//!                  epoch-0 ClientHello? ── no ──► dropped (counted)
//!                         │ yes
//!                         ▼
//!                  DTLSv1_listen on a fresh SSL: no/invalid cookie ──► HelloVerifyRequest, SSL dropped
//!                         │ valid cookie (HMAC of P under a per-process secret)
//!                         ▼
//!                  new session for P (handshake continues)
//! ```
//!
//! A peer without a valid cookie never gets state: the HelloVerifyRequest is computed and the fresh `SSL`
//! dropped. A session is admitted only for a known identity (the PSK callback and the certificate verify
//! callback, which also sees RFC 7250 raw public keys, ask the [`CredentialStore`]). OpenSSL's own replay window drops replayed records; malformed
//! records are dropped. Handshake flights are retransmitted by OpenSSL's timer, which the server drives by
//! calling [`Dtls::handle_timeout`] when [`Dtls::poll_timeout`] says.

#![allow(unsafe_code)] // one FFI call, `DTLSv1_listen`, which the `openssl` crate does not wrap (see `listen`)

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dtls_record::Datagrams;
use foreign_types::ForeignTypeRef;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslRef, SslStream, SslVerifyMode,
    SslVersion,
};
use openssl::x509::{X509, X509NameBuilder};

use crate::creds::{CredentialStore, Identity};
use crate::handle::Stats;
use crate::rpk;

/// The cipher suites offered, in OpenSSL's names: `TLS_PSK_WITH_AES_128_CCM_8`,
/// `TLS_PSK_WITH_AES_128_GCM_SHA256`, `TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8`,
/// `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256` (LwM2M 1.1 §5.2.8 mandatory and recommended suites). The
/// ECDHE-ECDSA suites serve both X.509 certificates and raw public keys (RFC 7250).
pub const CIPHER_SUITES: &str =
    "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-GCM-SHA256";

/// DTLS listener configuration.
#[derive(Clone)]
pub struct DtlsConfig {
    /// UDP address for `coaps://` (default `0.0.0.0:5684`).
    pub addr: SocketAddr,
    /// The server's certificate and key (PEM) for the ECDHE-ECDSA suites; `None` generates a self-signed
    /// P-256 certificate at start (clients that pin the server's certificate need a fixed one). A client
    /// that asks for the server's raw public key (RFC 7250 `server_certificate_type`) gets this
    /// certificate's key as a SubjectPublicKeyInfo.
    pub certificate: Option<ServerCertificate>,
    /// Device credentials.
    pub credentials: Arc<dyn CredentialStore>,
    /// A handshake not finished after this is dropped (default 30 s).
    pub handshake_timeout: Duration,
    /// An established session without traffic for this long is dropped (default 1 h) unless a live
    /// registration made over it still uses its address; the device then handshakes again (resuming its
    /// session if it kept it).
    pub idle_timeout: Duration,
    /// At most this many sessions (handshaking or established); ClientHellos beyond are dropped.
    pub max_sessions: usize,
    /// Path MTU assumed for handshake flights (default 1200).
    pub mtu: u32,
}

impl std::fmt::Debug for DtlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsConfig")
            .field("addr", &self.addr)
            .field("certificate", &self.certificate.as_ref().map(|_| "<pem>"))
            .field("credentials", &self.credentials)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_sessions", &self.max_sessions)
            .finish()
    }
}

impl DtlsConfig {
    /// Defaults on `0.0.0.0:5684` with the given credentials.
    pub fn new(credentials: Arc<dyn CredentialStore>) -> Self {
        DtlsConfig {
            addr: SocketAddr::from(([0, 0, 0, 0], 5684)),
            certificate: None,
            credentials,
            handshake_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(3600),
            max_sessions: 100_000,
            mtu: 1200,
        }
    }
}

/// PEM certificate chain (leaf first) and private key.
#[derive(Clone)]
pub struct ServerCertificate {
    /// Certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// Private key, PEM.
    pub key_pem: Vec<u8>,
}

/// Why DTLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DtlsError {
    /// OpenSSL refused the configuration (certificate, key, cipher list).
    #[error("DTLS setup: {0}")]
    Setup(#[from] openssl::error::ErrorStack),
}

struct Session {
    ssl: SslStream<Datagrams>,
    /// The random of the ClientHello that opened it: a retransmission of that ClientHello goes to this
    /// session; only a new ClientHello (another random) with a valid cookie replaces it.
    hello_random: [u8; 32],
    /// `Some` once the handshake finished and the identity was admitted.
    identity: Option<Identity>,
    started: Instant,
    last_seen: Instant,
}

/// What a datagram turned into.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Decrypted application data (CoAP messages) from the peer.
    pub(crate) plain: Vec<Vec<u8>>,
    /// Datagrams to send to the peer.
    pub(crate) transmit: Vec<Vec<u8>>,
    /// A session was established (identity admitted) by this datagram.
    pub(crate) established: Option<(Identity, String, bool)>,
    /// The peer's session ended (alert, close_notify, refusal).
    pub(crate) closed: bool,
}

/// All DTLS sessions of the server, keyed by peer address.
pub(crate) struct Dtls {
    ctx: SslContext,
    sessions: HashMap<SocketAddr, Session>,
    /// Sessions whose handshake is in progress (polled for retransmission).
    handshaking: HashSet<SocketAddr>,
    /// When handshaking sessions are next polled for retransmission (set while there are any).
    next_tick: Option<Instant>,
    /// When established sessions are next checked for idleness.
    next_idle_sweep: Option<Instant>,
    creds: Arc<dyn CredentialStore>,
    stats: Arc<Stats>,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    max_sessions: usize,
    mtu: u32,
    /// The peer address and cookie period of an `SSL`, for the cookie callbacks.
    peer_idx: openssl::ex_data::Index<Ssl, (SocketAddr, u64)>,
    /// Start of cookie period 0.
    origin: Instant,
    /// Where records are decrypted into (one buffer for all sessions, not one allocation per datagram).
    plain_buf: Vec<u8>,
}

/// How often handshaking sessions are polled for retransmission (OpenSSL's first timer is 1 s).
const HANDSHAKE_TICK: Duration = Duration::from_millis(200);
/// How often established sessions are checked for idleness.
const IDLE_SWEEP: Duration = Duration::from_secs(10);

fn self_signed() -> Result<(X509, PKey<Private>), openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, "ipechain-lwm2m-server")?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = openssl::bn::BigNum::new()?;
    serial.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let (from, until) =
        (openssl::asn1::Asn1Time::days_from_now(0)?, openssl::asn1::Asn1Time::days_from_now(3650)?);
    b.set_not_before(&from)?;
    b.set_not_after(&until)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((b.build(), key))
}

/// A cookie is valid in the period it was made in and the next one (between 1 and 2 periods).
const COOKIE_PERIOD: Duration = Duration::from_secs(60);

/// The cookie for `peer` in cookie period `period`: HMAC-SHA256 under the process's secret, 16 bytes.
fn cookie_for(
    secret: &PKey<Private>,
    peer: &SocketAddr,
    period: u64,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut s = Signer::new(MessageDigest::sha256(), secret)?;
    s.update(peer.to_string().as_bytes())?;
    s.update(&period.to_be_bytes())?;
    let mut mac = s.sign_to_vec()?;
    mac.truncate(16);
    Ok(mac)
}

/// The certificate's SHA-256, as the credential store knows it.
fn fingerprint(cert: &openssl::x509::X509Ref) -> Option<[u8; 32]> {
    cert.digest(MessageDigest::sha256()).ok().and_then(|d| (*d).try_into().ok())
}

unsafe extern "C" {
    /// `int DTLSv1_listen(SSL *s, BIO_ADDR *client)` (OpenSSL ≥ 1.1.0): stateless cookie exchange.
    fn DTLSv1_listen(s: *mut openssl_sys::SSL, client: *mut std::ffi::c_void) -> std::ffi::c_int;
}

/// Runs OpenSSL's stateless listener on a fresh `SSL` holding one datagram: `Ok(true)` if it carried a
/// ClientHello with a valid cookie (the handshake may continue on this `SSL`), `Ok(false)` if OpenSSL
/// answered with a HelloVerifyRequest (now in the outbound queue) or dropped it.
fn listen(ssl: &SslStream<Datagrams>) -> Result<bool, ()> {
    // BIO_ADDR is a union of sockaddr types (at most 112 bytes); OpenSSL only clears or fills it here.
    let mut addr = [0u64; 32];
    // SAFETY: the SSL pointer is valid for the duration of the call (we hold the stream), it has its BIO
    // set (SslStream::new), and `addr` is a writable, 8-byte aligned buffer larger than any BIO_ADDR.
    let r = unsafe { DTLSv1_listen(ssl.ssl().as_ptr(), addr.as_mut_ptr().cast()) };
    match r {
        1 => Ok(true),
        0 => Ok(false),
        _ => Err(()),
    }
}

impl Dtls {
    pub(crate) fn new(now: Instant, config: &DtlsConfig, stats: Arc<Stats>) -> Result<Self, DtlsError> {
        let mut b = SslContextBuilder::new(SslMethod::dtls_server())?;
        b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
        b.set_max_proto_version(Some(SslVersion::DTLS1_2))?;
        // CCM_8 suites have a 64-bit tag; OpenSSL 3 puts them below its default security level, while
        // LwM2M makes TLS_PSK_WITH_AES_128_CCM_8 mandatory.
        b.set_security_level(0);
        b.set_cipher_list(CIPHER_SUITES)?;
        b.set_options(
            SslOptions::NO_QUERY_MTU
                | SslOptions::COOKIE_EXCHANGE
                | SslOptions::NO_RENEGOTIATION
                | SslOptions::CIPHER_SERVER_PREFERENCE,
        );
        b.set_session_id_context(b"ipechain-lwm2m")?;
        match &config.certificate {
            Some(c) => {
                let mut chain = X509::stack_from_pem(&c.cert_pem)?.into_iter();
                if let Some(leaf) = chain.next() {
                    b.set_certificate(&leaf)?;
                }
                for extra in chain {
                    b.add_extra_chain_cert(extra)?;
                }
                let key = PKey::private_key_from_pem(&c.key_pem)?;
                b.set_private_key(&key)?;
            }
            None => {
                let (cert, key) = self_signed()?;
                b.set_certificate(&cert)?;
                b.set_private_key(&key)?;
            }
        }
        b.check_private_key()?;
        // RFC 7250: raw public keys besides certificates, for the client's key and for ours. A client that
        // sends neither extension gets X.509 as before.
        rpk::set_cert_types(
            &mut b,
            &[rpk::CERT_TYPE_RPK, rpk::CERT_TYPE_X509],
            &[rpk::CERT_TYPE_RPK, rpk::CERT_TYPE_X509],
        )?;

        let creds = config.credentials.clone();
        b.set_psk_server_callback(move |_ssl, identity, psk| {
            let Some(id) = identity.and_then(|i| std::str::from_utf8(i).ok()) else { return Ok(0) };
            match creds.psk(id) {
                Some(key) if key.len() <= psk.len() => {
                    psk[..key.len()].copy_from_slice(&key);
                    Ok(key.len())
                }
                _ => {
                    tracing::info!("DTLS: unknown PSK identity {id:?}");
                    Ok(0)
                }
            }
        });
        let creds = config.credentials.clone();
        // Certificates are admitted by fingerprint (pinned, like LwM2M's "domain-issued certificate"
        // usage): only the leaf is checked, chain errors of a pinned leaf are ignored. A raw public key (no
        // certificate; OpenSSL calls this once with the key) is admitted by its SubjectPublicKeyInfo's SHA-256.
        b.set_verify_callback(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT, move |_ok, ctx| {
            if let Some(key) = rpk::store_ctx_rpk(ctx) {
                let known = rpk::spki_sha256(&key).is_some_and(|fp| creds.public_key_known(&fp));
                if !known {
                    tracing::info!("DTLS: unknown raw public key");
                }
                return known;
            }
            if ctx.error_depth() > 0 {
                return true;
            }
            let known =
                ctx.current_cert().and_then(fingerprint).is_some_and(|fp| creds.certificate_known(&fp));
            if !known {
                tracing::info!("DTLS: unknown client certificate");
            }
            known
        });

        let secret_bytes = {
            let mut s = [0u8; 32];
            openssl::rand::rand_bytes(&mut s)?;
            s
        };
        let secret = PKey::hmac(&secret_bytes)?;
        let peer_idx = Ssl::new_ex_index::<(SocketAddr, u64)>()?;
        let gen_secret = secret.clone();
        b.set_cookie_generate_cb(move |ssl, out| {
            let (peer, period) =
                ssl.ex_data(peer_idx).copied().unwrap_or((SocketAddr::from(([0, 0, 0, 0], 0)), 0));
            let c = cookie_for(&gen_secret, &peer, period)?;
            let n = c.len().min(out.len());
            out[..n].copy_from_slice(&c[..n]);
            Ok(n)
        });
        b.set_cookie_verify_cb(move |ssl, cookie| {
            let Some((peer, period)) = ssl.ex_data(peer_idx).copied() else { return false };
            [Some(period), period.checked_sub(1)].into_iter().flatten().any(|p| {
                cookie_for(&secret, &peer, p)
                    .is_ok_and(|c| c.len() == cookie.len() && openssl::memcmp::eq(&c, cookie))
            })
        });
        Ok(Dtls {
            ctx: b.build(),
            sessions: HashMap::new(),
            handshaking: HashSet::new(),
            next_tick: None,
            next_idle_sweep: None,
            creds: config.credentials.clone(),
            stats,
            handshake_timeout: config.handshake_timeout,
            idle_timeout: config.idle_timeout,
            max_sessions: config.max_sessions,
            mtu: config.mtu,
            peer_idx,
            origin: now,
            plain_buf: vec![0u8; 16 * 1024],
        })
    }

    /// The admitted identity of `peer`'s session, if it has an established one.
    pub(crate) fn identity_of(&self, peer: &SocketAddr) -> Option<&Identity> {
        self.sessions.get(peer).and_then(|s| s.identity.as_ref())
    }

    /// Number of sessions (handshaking and established).
    pub(crate) fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// When [`Dtls::handle_timeout`] must run next: every 200 ms while a handshake is in progress (OpenSSL's
    /// retransmission timer), else `None` (idle sessions are checked whenever it runs, at most every 10 s).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick.filter(|_| !self.handshaking.is_empty())
    }

    /// Lets OpenSSL retransmit handshake flights whose timer ran out, drops handshakes older than the
    /// handshake timeout and (every 10 s, or the idle timeout if shorter) established sessions idle for
    /// longer than the idle timeout unless `in_use` says a live registration talks through them.
    /// Returns the datagrams to send.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        in_use: impl Fn(&SocketAddr) -> bool,
    ) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        let mut dead = Vec::new();
        let due = self.next_tick.is_some_and(|t| now >= t);
        if due {
            self.next_tick = Some(now + HANDSHAKE_TICK);
        }
        for peer in self.handshaking.iter().filter(|_| due) {
            let Some(s) = self.sessions.get_mut(peer) else { continue };
            if now.duration_since(s.started) > self.handshake_timeout {
                dead.push(*peer);
                continue;
            }
            // With nothing to read, OpenSSL checks its retransmission timer and resends the flight.
            if let Err(e) = s.ssl.do_handshake()
                && !matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE)
            {
                dead.push(*peer);
            }
            out.extend(s.ssl.get_mut().outbound.drain(..).map(|d| (*peer, d)));
        }
        for p in dead {
            self.stats.dtls_handshakes_failed.fetch_add(1, Ordering::Relaxed);
            tracing::info!("DTLS: handshake with {p} timed out or failed");
            self.remove(&p);
        }
        if self.next_idle_sweep.is_none_or(|t| now >= t) {
            self.next_idle_sweep = Some(now + IDLE_SWEEP.min(self.idle_timeout));
            let idle: Vec<SocketAddr> = self
                .sessions
                .iter()
                .filter(|(p, s)| {
                    s.identity.is_some() && now.duration_since(s.last_seen) > self.idle_timeout && !in_use(p)
                })
                .map(|(p, _)| *p)
                .collect();
            for p in idle {
                tracing::debug!("DTLS: session with {p} idle, dropped");
                self.remove(&p);
            }
        }
        out
    }

    /// Ends (silently) every established session whose identity `keep` no longer admits; returns their peers.
    pub(crate) fn retain_identities(&mut self, keep: impl Fn(&Identity) -> bool) -> Vec<SocketAddr> {
        let gone: Vec<SocketAddr> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.identity.as_ref().is_some_and(|i| !keep(i)))
            .map(|(p, _)| *p)
            .collect();
        for p in &gone {
            self.remove(p);
        }
        gone
    }

    fn remove(&mut self, peer: &SocketAddr) {
        self.sessions.remove(peer);
        self.handshaking.remove(peer);
    }

    /// Takes one datagram from `peer`.
    pub(crate) fn handle_datagram(&mut self, now: Instant, peer: SocketAddr, bytes: &[u8]) -> Output {
        let mut out = Output::default();
        // Whether the datagram is one record: then one record's plaintext is all it can yield.
        let mut single = false;
        let hello = dtls_record::client_hello_random(bytes);
        let retransmitted =
            hello.is_some_and(|r| self.sessions.get(&peer).is_some_and(|s| s.hello_random == r));
        // A new ClientHello from an address that has a session: a restarted client (RFC 6347 §4.2.8). It
        // opens a new session only with a valid cookie; until then the old session stays.
        if let Some(random) = hello.filter(|_| !retransmitted) {
            match self.accept_hello(now, peer, bytes) {
                Hello::Session(ssl) => {
                    if self.sessions.len() >= self.max_sessions && !self.sessions.contains_key(&peer) {
                        self.stats.dtls_dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "DTLS: {} sessions, dropping a new one from {peer}",
                            self.sessions.len()
                        );
                        return out;
                    }
                    if self
                        .sessions
                        .insert(
                            peer,
                            Session {
                                ssl,
                                hello_random: random,
                                identity: None,
                                started: now,
                                last_seen: now,
                            },
                        )
                        .is_some()
                    {
                        out.closed = true;
                    }
                    if self.handshaking.is_empty() {
                        self.next_tick = Some(now + HANDSHAKE_TICK);
                    }
                    self.handshaking.insert(peer);
                }
                Hello::Verify(hvr) => {
                    self.stats.dtls_hello_verify.fetch_add(1, Ordering::Relaxed);
                    out.transmit = hvr;
                    return out;
                }
                Hello::Bad => {
                    self.stats.dtls_dropped.fetch_add(1, Ordering::Relaxed);
                    return out;
                }
            }
        } else if let Some(s) = self.sessions.get_mut(&peer) {
            // Not even a record header (empty, truncated, another protocol): never reaches OpenSSL, which
            // would take an empty read as the end of the stream.
            match dtls_record::parse_header(bytes) {
                Ok(h) => single = dtls_record::HEADER_LEN + usize::from(h.length) == bytes.len(),
                Err(e) => {
                    self.stats.dtls_dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("DTLS: dropped a datagram from {peer}: {e}");
                    return out;
                }
            }
            s.ssl.get_mut().inbound.push_back(bytes.to_vec());
        } else {
            self.stats.dtls_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::trace!("DTLS: dropped a non-ClientHello datagram from {peer} without a session");
            return out;
        }
        self.drive(now, peer, &mut out, single);
        out
    }

    /// Encrypts one CoAP message for `peer`; `None` if it has no established session.
    pub(crate) fn send(&mut self, peer: SocketAddr, bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
        let s = self.sessions.get_mut(&peer)?;
        s.identity.as_ref()?;
        if let Err(e) = s.ssl.ssl_write(bytes) {
            tracing::debug!("DTLS: write to {peer} failed: {e}");
            return None;
        }
        Some(s.ssl.get_mut().outbound.drain(..).collect())
    }

    /// A ClientHello on a fresh `SSL`: OpenSSL's stateless listener checks the cookie.
    fn accept_hello(&self, now: Instant, peer: SocketAddr, bytes: &[u8]) -> Hello {
        let ssl = match Ssl::new(&self.ctx) {
            Ok(mut ssl) => {
                let period = now.duration_since(self.origin).as_secs() / COOKIE_PERIOD.as_secs();
                ssl.set_ex_data(self.peer_idx, (peer, period));
                if ssl.set_mtu(self.mtu).is_err() {
                    return Hello::Bad;
                }
                ssl
            }
            Err(e) => {
                tracing::warn!("DTLS: cannot create a session: {e}");
                return Hello::Bad;
            }
        };
        let mut dgrams = Datagrams::default();
        dgrams.inbound.push_back(bytes.to_vec());
        let Ok(mut stream) = SslStream::new(ssl, dgrams) else { return Hello::Bad };
        match listen(&stream) {
            Ok(true) => Hello::Session(stream),
            Ok(false) => Hello::Verify(std::mem::take(&mut stream.get_mut().outbound)),
            Err(()) => {
                tracing::debug!("DTLS: malformed ClientHello from {peer}");
                Hello::Bad
            }
        }
    }

    /// Advances `peer`'s session with what is queued: handshake, then records. `single`: what is queued is
    /// one record, so once its plaintext is read there is nothing more (no second read to learn so).
    fn drive(&mut self, now: Instant, peer: SocketAddr, out: &mut Output, single: bool) {
        let Some(s) = self.sessions.get_mut(&peer) else { return };
        s.last_seen = now;
        let mut failed = None;
        let mut closed = false;
        if s.identity.is_none() {
            match s.ssl.do_handshake() {
                Ok(()) => match admitted_identity(s.ssl.ssl(), &*self.creds) {
                    Some(id) => {
                        self.stats.dtls_handshakes.fetch_add(1, Ordering::Relaxed);
                        let cipher = s
                            .ssl
                            .ssl()
                            .current_cipher()
                            .map(|c| c.standard_name().unwrap_or(c.name()).to_owned())
                            .unwrap_or_default();
                        let resumed = s.ssl.ssl().session_reused();
                        tracing::info!("DTLS: {peer} authenticated as {id} ({cipher}, resumed: {resumed})");
                        s.identity = Some(id.clone());
                        self.handshaking.remove(&peer);
                        out.established = Some((id, cipher, resumed));
                    }
                    None => failed = Some("identity not bound to any endpoint".to_owned()),
                },
                Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {}
                Err(e) => failed = Some(e.to_string()),
            }
        }
        if failed.is_none() && s.identity.is_some() {
            let buf = &mut self.plain_buf;
            loop {
                match s.ssl.ssl_read(buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        out.plain.push(buf[..n].to_vec());
                        if single && s.ssl.get_ref().inbound.is_empty() {
                            break;
                        }
                    }
                    Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => break,
                    Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                        tracing::debug!("DTLS: {peer} closed its session");
                        closed = true;
                        break;
                    }
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
        }
        out.transmit.append(&mut s.ssl.get_mut().outbound);
        if let Some(why) = failed {
            if s.identity.is_none() {
                self.stats.dtls_handshakes_failed.fetch_add(1, Ordering::Relaxed);
                tracing::info!("DTLS: handshake with {peer} refused: {why}");
            } else {
                tracing::info!("DTLS: session with {peer} ended: {why}");
            }
            closed = true;
        }
        if closed {
            out.closed = true;
            self.remove(&peer);
        }
    }
}

enum Hello {
    Session(SslStream<Datagrams>),
    Verify(Vec<Vec<u8>>),
    Bad,
}

/// The identity a finished handshake authenticated, if the store binds it to an endpoint.
fn admitted_identity(ssl: &SslRef, creds: &dyn CredentialStore) -> Option<Identity> {
    let id = if let Some(key) = rpk::peer_rpk(ssl) {
        Identity::Rpk { sha256: rpk::spki_sha256(&key)? }
    } else if let Some(cert) = ssl.peer_certificate() {
        Identity::X509 { sha256: fingerprint(&cert)? }
    } else {
        Identity::Psk(String::from_utf8(ssl.psk_identity()?.to_vec()).ok()?)
    };
    creds.endpoint_of(&id).map(|_| id)
}

#[cfg(test)]
mod tests;
