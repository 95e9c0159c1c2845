//! TLS for the operations listener, as Fabric's `operations.tls`: the listener's certificate and key, and
//! optionally the CAs whose client certificates it then requires (`clientAuthRequired` with
//! `clientRootCAFiles`). rustls with the ring provider, TLS 1.2 and 1.3.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::OpsError;

/// The operations listener's TLS material, PEM-encoded (as read from the files the configuration names).
#[derive(Clone, PartialEq, Eq)]
pub struct OpsTls {
    /// The listener's certificate chain, leaf first.
    pub cert_pem: Vec<u8>,
    /// Its private key (PKCS#8, SEC1 or PKCS#1).
    pub key_pem: Vec<u8>,
    /// CA certificates: when given, every client must present a certificate one of them issued; absent:
    /// clients are not asked for one.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for OpsTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsTls")
            .field("client_auth_required", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

fn tls_err(what: &'static str, message: impl ToString) -> OpsError {
    OpsError::Tls { what, message: message.to_string() }
}

fn certs(what: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, OpsError> {
    let certs =
        CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| tls_err(what, e))?;
    if certs.is_empty() {
        return Err(tls_err(what, "no CERTIFICATE block"));
    }
    Ok(certs)
}

impl OpsTls {
    /// The rustls server configuration: HTTP/1.1 by ALPN; client certificates required and verified against
    /// `client_ca_pem` when it is given. Unreadable PEM, a key that does not belong to the certificate, or
    /// unusable client CAs are errors naming the material.
    pub fn rustls_config(&self) -> Result<Arc<rustls::ServerConfig>, OpsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("TLS versions", e))?;
        let builder = match &self.client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for c in certs("client CA", pem)? {
                    roots.add(c).map_err(|e| tls_err("client CA", e))?;
                }
                // Without `allow_unauthenticated`: a client that presents no certificate is refused.
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| tls_err("client CA", e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let chain = certs("certificate", &self.cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| tls_err("private key", e))?;
        let mut cfg = builder.with_single_cert(chain, key).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                tls_err("private key", "it does not belong to the certificate (the public keys differ)")
            }
            e => tls_err("certificate and key", e),
        })?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}
