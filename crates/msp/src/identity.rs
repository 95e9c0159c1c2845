//! `LocalIdentity`: the signing identity a node or client holds (key, certificate, MSP id), plus
//! its TLS material. Loaded from bytes; the CLI does the file I/O.

use std::path::{Path, PathBuf};

use p256::pkcs8::der::pem::{LineEnding, encode_string};

use crate::msp::{IdentityError, Role, cert_der_from_bytes, extract_role};
use crate::sig::{KeyError, PublicKey, Signature, SigningKey};

/// Why a local identity could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A certificate is malformed or lacks a role.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A private key is malformed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A required file is missing from the given set.
    #[error("missing {0}")]
    Missing(&'static str),
    /// The private key does not belong to the certificate.
    #[error("private key does not match the certificate's public key")]
    KeyMismatch,
}

/// PEM-encodes a DER certificate.
pub fn cert_pem(cert_der: &[u8]) -> String {
    encode_string("CERTIFICATE", LineEnding::LF, cert_der).expect("PEM encoding of a DER certificate")
}

/// TLS material of a node or user, in the PEM forms rustls loaders take.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsIdentity {
    /// The TLS certificate (DER), serverAuth + clientAuth.
    pub cert_der: Vec<u8>,
    /// Its private key, PKCS#8 DER.
    pub key_pkcs8_der: Vec<u8>,
    /// The organization's TLS CA certificate (DER).
    pub ca_der: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// The TLS certificate as PEM.
    pub fn cert_pem(&self) -> String {
        cert_pem(&self.cert_der)
    }

    /// The TLS private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        encode_string("PRIVATE KEY", LineEnding::LF, &self.key_pkcs8_der).expect("PEM encoding of a DER key")
    }

    /// The TLS CA certificate as PEM.
    pub fn ca_pem(&self) -> String {
        cert_pem(&self.ca_der)
    }
}

/// A signing identity: MSP id, certificate and the matching private key.
#[derive(Clone)]
pub struct LocalIdentity {
    msp_id: String,
    role: Role,
    common_name: String,
    key: SigningKey,
    public_key: PublicKey,
    cert_der: Vec<u8>,
    tls: Option<TlsIdentity>,
}

impl std::fmt::Debug for LocalIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIdentity")
            .field("msp_id", &self.msp_id)
            .field("role", &self.role)
            .field("common_name", &self.common_name)
            .finish_non_exhaustive()
    }
}

impl LocalIdentity {
    /// Builds an identity from a certificate (DER) and its key; checks that they match and that the
    /// certificate carries a role OU. Does not check the chain (the verifier's MSP does that).
    pub fn new(
        msp_id: impl Into<String>,
        cert_der: Vec<u8>,
        key: SigningKey,
        tls: Option<TlsIdentity>,
    ) -> Result<Self, LoadError> {
        let (role, common_name, public_key) = inspect(&cert_der)?;
        if public_key != key.public_key() {
            return Err(LoadError::KeyMismatch);
        }
        Ok(LocalIdentity { msp_id: msp_id.into(), role, common_name, key, public_key, cert_der, tls })
    }

    /// From a PEM certificate and a PKCS#8 PEM key (no TLS material).
    pub fn from_pem(msp_id: impl Into<String>, cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, LoadError> {
        let cert = cert_der_from_bytes(cert_pem)?;
        let key = SigningKey::from_pkcs8_pem(key_pem)?;
        Self::new(msp_id, cert, key, None)
    }

    /// From the files of a node or user folder as `cryptogen` lays it out (paths relative to the
    /// folder): `msp/signcerts/*`, `msp/keystore/*`, and if present `tls/ca.crt` with
    /// `tls/server.{crt,key}` or `tls/client.{crt,key}`.
    pub fn from_files(msp_id: impl Into<String>, files: &[(PathBuf, Vec<u8>)]) -> Result<Self, LoadError> {
        let find =
            |pred: &dyn Fn(&Path) -> bool| files.iter().find(|(p, _)| pred(p)).map(|(_, b)| b.as_slice());
        let under = |dir: &'static [&'static str]| {
            move |p: &Path| {
                let comps: Vec<_> = p.components().map(|c| c.as_os_str()).collect();
                comps.len() == dir.len() + 1 && comps.iter().zip(dir).all(|(c, d)| c == d)
            }
        };
        let cert = find(&under(&["msp", "signcerts"])).ok_or(LoadError::Missing("msp/signcerts"))?;
        let key = find(&under(&["msp", "keystore"])).ok_or(LoadError::Missing("msp/keystore"))?;
        let named = |name: &'static str| move |p: &Path| p == Path::new("tls").join(name);
        let tls = match (
            find(&named("ca.crt")),
            find(&named("server.crt")).or_else(|| find(&named("client.crt"))),
            find(&named("server.key")).or_else(|| find(&named("client.key"))),
        ) {
            (Some(ca), Some(crt), Some(key)) => Some(TlsIdentity {
                cert_der: cert_der_from_bytes(crt)?,
                key_pkcs8_der: SigningKey::from_pkcs8_pem(key)?.to_pkcs8_der(),
                ca_der: cert_der_from_bytes(ca)?,
            }),
            _ => None,
        };
        let cert = cert_der_from_bytes(cert)?;
        let key = SigningKey::from_pkcs8_pem(key)?;
        Self::new(msp_id, cert, key, tls)
    }

    /// Signs `msg` with the identity's key.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        self.key.sign(msg)
    }

    /// The MSP id the identity claims.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The role from the certificate's OU.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The certificate's common name.
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// The certificate (DER): what goes into a proposal's creator field.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        cert_pem(&self.cert_der)
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The public key of the certificate.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The TLS material, if loaded.
    pub fn tls(&self) -> Option<&TlsIdentity> {
        self.tls.as_ref()
    }
}

/// A certificate's role (from its OU) and subject common name, without checking its chain (a chaincode
/// reads its caller this way: the peer validated the creator before running it).
pub fn cert_role_and_name(cert_der: &[u8]) -> Result<(Role, String), LoadError> {
    inspect(cert_der).map(|(role, cn, _)| (role, cn))
}

fn inspect(cert_der: &[u8]) -> Result<(Role, String, PublicKey), LoadError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| IdentityError::Malformed(e.to_string()))?;
    let role = extract_role(&cert)?;
    let cn =
        cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok()).unwrap_or_default().to_owned();
    let pk = PublicKey::from_spki_der(cert.tbs_certificate.subject_pki.raw)?;
    Ok((role, cn, pk))
}
