//! HTTPS for Mca: rustls (ring provider) configurations built from PEM material, an HTTP(S) client, and an
//! HTTPS server loop for axum routers (the embedded CSE, the notification listener).
//!
//! ```text
//!  TlsClient { CA roots, optional identity } ──► rustls ClientConfig ──► hyper-rustls connector (http + https)
//!  TlsServer { identity, optional client CAs } ──► rustls ServerConfig ──► serve_tls(listener, router)
//!                                                                   (peer certificate as a request extension)
//! ```
//!
//! The material is the network's (e.g. a node's `tls/server.crt`, `tls/server.key` and the organizations' TLS
//! CAs, see docs/msp.md) or any PEM files: certificates as `CERTIFICATE` blocks, keys as PKCS#8, SEC1 or PKCS#1.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// TLS material that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM block could not be read.
    #[error("{what}: {message}")]
    Pem {
        /// Which material.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// rustls refused the material (e.g. a key that does not match the certificate).
    #[error("{what}: {source}")]
    Rustls {
        /// Which material.
        what: &'static str,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built.
    #[error("client CAs: {0}")]
    Verifier(String),
}

/// An identity to present: a certificate chain (leaf first) and its private key, PEM-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemIdentity {
    /// The certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// The private key, PEM.
    pub key_pem: Vec<u8>,
}

/// How a client connects to `https://` URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsClient {
    /// Trusted root CAs, PEM (each entry may hold several certificates). Empty: `https://` URLs are refused.
    pub ca_pems: Vec<Vec<u8>>,
    /// A client certificate to present when the server asks for one.
    pub identity: Option<PemIdentity>,
}

/// How a server serves HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsServer {
    /// The server's certificate chain and key.
    pub identity: PemIdentity,
    /// CAs whose client certificates are accepted. Empty: clients are not asked for one. Otherwise a client
    /// may present one (it is then verified, and handed to the handler as [`PeerCertificate`]) or none.
    pub client_ca_pems: Vec<Vec<u8>>,
}

/// The verified client certificate of an HTTPS request (leaf, DER), as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate(pub CertificateDer<'static>);

fn certs(what: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem { what, message: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { what, message: "no CERTIFICATE block".into() });
    }
    Ok(certs)
}

fn key(what: &'static str, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem { what, message: e.to_string() })
}

fn roots(what: &'static str, pems: &[Vec<u8>]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for pem in pems {
        for c in certs(what, pem)? {
            store.add(c).map_err(|source| TlsError::Rustls { what, source })?;
        }
    }
    Ok(store)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsClient {
    /// The rustls client configuration (ring provider, TLS 1.2 and 1.3).
    pub fn rustls_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Rustls { what: "TLS versions", source })?
            .with_root_certificates(roots("client CA", &self.ca_pems)?);
        let cfg = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(
                    certs("client certificate", &id.cert_pem)?,
                    key("client key", &id.key_pem)?,
                )
                .map_err(|source| TlsError::Rustls { what: "client certificate", source })?,
        };
        Ok(Arc::new(cfg))
    }
}

impl TlsServer {
    /// The rustls server configuration (ring provider, TLS 1.2 and 1.3, HTTP/1.1 by ALPN).
    pub fn rustls_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let p = provider();
        let builder = rustls::ServerConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Rustls { what: "TLS versions", source })?;
        let builder = if self.client_ca_pems.is_empty() {
            builder.with_no_client_auth()
        } else {
            let roots = Arc::new(roots("client CA", &self.client_ca_pems)?);
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, p)
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        };
        let mut cfg = builder
            .with_single_cert(
                certs("server certificate", &self.identity.cert_pem)?,
                key("server key", &self.identity.key_pem)?,
            )
            .map_err(|source| TlsError::Rustls { what: "server certificate", source })?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// A client configuration that trusts no CA (every server certificate is refused).
fn no_roots() -> Arc<rustls::ClientConfig> {
    static CFG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CFG.get_or_init(|| {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            // Not input-dependent: the ring provider supports the default versions (TLS 1.2 and 1.3).
            .expect("the ring provider supports TLS 1.2 and 1.3");
        Arc::new(builder.with_root_certificates(RootCertStore::empty()).with_no_client_auth())
    })
    .clone()
}

/// The HTTP client type for `http://` and `https://` URLs.
pub type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A pooled HTTP/1.1 client for `http://` and, with `tls`, `https://` URLs (without it an `https://` URL fails
/// to connect with a message saying so).
pub fn client(tls: Option<Arc<rustls::ClientConfig>>) -> HttpsClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let cfg = tls.unwrap_or_else(no_roots);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*cfg).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Serves `router` over HTTPS on `listener` until `shutdown` completes, then lets open connections finish
/// (up to 5 s). Each connection's TLS handshake runs on its own task (a slow client holds up no one); a
/// verified client certificate is added to each request as [`PeerCertificate`].
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use tower::Service;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "HTTPS accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, router, watcher) = (acceptor.clone(), router.clone(), graceful.watcher());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            };
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| PeerCertificate(c.clone().into_owned()));
            let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                if let Some(p) = &peer {
                    req.extensions_mut().insert(p.clone());
                }
                router.clone().call(req)
            });
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "HTTPS connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}
