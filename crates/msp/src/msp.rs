//! `Msp`: one organization's membership service provider.
//!
//! An MSP is an organization's id (`Org1MSP`) plus the CA certificates that issue its members'
//! certificates. [`Msp::validate`] checks that a certificate chains to those CAs at a given time
//! and extracts what the ledger needs: the role (Fabric NodeOUs: `OU=peer|orderer|client|admin`),
//! the subject common name and the public key.
//!
//! ```text
//!  leaf (not a CA, one role OU) ──signed by──▶ intermediate CA* ──signed by──▶ root CA (self-signed)
//!  every certificate on the path: valid at `at`; every issuer: basicConstraints CA=true,
//!  keyCertSign if keyUsage is present, pathLenConstraint respected
//! ```

use std::path::{Path, PathBuf};

use sha2::Digest as _;
use x509_parser::certificate::X509Certificate;

use crate::sig::{KeyError, PublicKey};
use crate::time::UnixTime;

/// Longest accepted chain: leaf plus this many CA certificates (intermediates and the root).
pub const MAX_CHAIN_CAS: usize = 5;

/// A member's role, carried in the certificate subject as an organizational unit (Fabric NodeOUs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A peer (endorses, validates, commits).
    Peer,
    /// An ordering node.
    Orderer,
    /// An application or gateway identity.
    Client,
    /// An organization administrator.
    Admin,
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 4] = [Role::Peer, Role::Orderer, Role::Client, Role::Admin];

    /// The OU value that carries this role: `peer`, `orderer`, `client` or `admin`.
    pub fn ou(self) -> &'static str {
        match self {
            Role::Peer => "peer",
            Role::Orderer => "orderer",
            Role::Client => "client",
            Role::Admin => "admin",
        }
    }

    /// The role an OU value names, if any.
    pub fn from_ou(ou: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.ou() == ou)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.ou())
    }
}

/// Why an identity (or an MSP definition) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The MSP id is not one of the channel's member organizations.
    #[error("unknown MSP id {0:?}")]
    UnknownMsp(String),
    /// The certificate (or a CA certificate) is not valid DER X.509.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// No CA of this MSP issued the certificate (a foreign CA, or a self-signed certificate).
    #[error("certificate does not chain to a CA of {msp_id}")]
    UntrustedChain {
        /// The MSP the certificate claimed.
        msp_id: String,
    },
    /// A CA with the issuer's name exists, but its signature on the certificate does not verify.
    #[error("bad certificate signature on the chain to {msp_id}")]
    BadChainSignature {
        /// The MSP the certificate claimed.
        msp_id: String,
    },
    /// An issuing certificate is not allowed to issue (not a CA, no keyCertSign, path length).
    #[error("issuer {subject} may not issue this certificate: {reason}")]
    NotACa {
        /// The issuer's subject.
        subject: String,
        /// What is missing.
        reason: &'static str,
    },
    /// A CA certificate was presented as a member identity (Fabric refuses these too).
    #[error("a CA certificate cannot be used as an identity")]
    CaAsIdentity,
    /// A certificate on the chain is not valid yet at the given time.
    #[error("certificate {subject} not valid before {not_before} (checked at {at})")]
    NotYetValid {
        /// The certificate's subject.
        subject: String,
        /// Start of its validity.
        not_before: UnixTime,
        /// The time of the check.
        at: UnixTime,
    },
    /// A certificate on the chain has expired at the given time.
    #[error("certificate {subject} expired at {not_after} (checked at {at})")]
    Expired {
        /// The certificate's subject.
        subject: String,
        /// End of its validity.
        not_after: UnixTime,
        /// The time of the check.
        at: UnixTime,
    },
    /// The subject carries no role OU (`peer`, `orderer`, `client`, `admin`).
    #[error("certificate has no role OU (peer, orderer, client or admin)")]
    MissingRole,
    /// The subject carries more than one role OU.
    #[error("certificate has more than one role OU")]
    AmbiguousRole,
    /// The identity is valid but its role is not allowed here.
    #[error("role {role} not allowed (allowed: {allowed:?})")]
    WrongRole {
        /// The identity's role.
        role: Role,
        /// The roles that would have been accepted.
        allowed: Vec<Role>,
    },
    /// The public key is neither Ed25519 nor P-256, or is a weak key.
    #[error("unsupported public key: {0}")]
    UnsupportedKey(#[from] KeyError),
    /// More than [`MAX_CHAIN_CAS`] CA certificates between the leaf and a root.
    #[error("certificate chain too long")]
    ChainTooLong,
    /// The MSP definition itself is unusable (no root, a root that is not a self-signed CA, ...).
    #[error("invalid MSP definition for {msp_id}: {reason}")]
    InvalidMsp {
        /// The MSP being defined.
        msp_id: String,
        /// What is wrong.
        reason: String,
    },
}

/// A certificate that passed [`Msp::validate`], with what the ledger needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedIdentity {
    msp_id: String,
    role: Role,
    common_name: String,
    public_key: PublicKey,
    cert_hash: [u8; 32],
    not_before: UnixTime,
    not_after: UnixTime,
}

impl ValidatedIdentity {
    /// The organization's MSP id.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The role from the subject's OU.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The subject common name (empty if the certificate has none).
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// The key that verifies this identity's signatures.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// SHA-256 of the certificate's DER encoding.
    pub fn cert_hash(&self) -> &[u8; 32] {
        &self.cert_hash
    }

    /// The latest `notBefore` on the chain: the identity is valid from then on.
    pub fn not_before(&self) -> UnixTime {
        self.not_before
    }

    /// The earliest `notAfter` on the chain: the identity is valid until then (inclusive).
    pub fn not_after(&self) -> UnixTime {
        self.not_after
    }

    /// Whether the whole chain is within its validity period at `at`.
    pub fn is_valid_at(&self, at: UnixTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }

    /// Accepts the identity only if its role is one of `allowed`.
    pub fn require_role(&self, allowed: &[Role]) -> Result<(), IdentityError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(IdentityError::WrongRole { role: self.role, allowed: allowed.to_vec() })
        }
    }

    /// Checks validity at `at` with the same errors [`Msp::validate`] would give.
    pub(crate) fn check_time(&self, at: UnixTime) -> Result<(), IdentityError> {
        if at < self.not_before {
            Err(IdentityError::NotYetValid {
                subject: self.common_name.clone(),
                not_before: self.not_before,
                at,
            })
        } else if at > self.not_after {
            Err(IdentityError::Expired { subject: self.common_name.clone(), not_after: self.not_after, at })
        } else {
            Ok(())
        }
    }
}

/// A CA certificate of an MSP, kept as DER and re-parsed on use (validation results are cached by
/// [`crate::MspManager`], so this is off the hot path).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CaCert {
    der: Vec<u8>,
    subject_raw: Vec<u8>,
    is_root: bool,
}

/// What a successful chain check yields.
struct Chain {
    common_name: String,
    public_key: PublicKey,
    not_before: UnixTime,
    not_after: UnixTime,
}

/// One organization's MSP: its id and the CA certificates its members chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msp {
    msp_id: String,
    cas: Vec<CaCert>,
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, IdentityError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(IdentityError::Malformed("trailing bytes after certificate".into())),
        Err(e) => Err(IdentityError::Malformed(e.to_string())),
    }
}

fn subject_string(cert: &X509Certificate<'_>) -> String {
    cert.subject().to_string()
}

fn check_validity(cert: &X509Certificate<'_>, at: UnixTime) -> Result<(), IdentityError> {
    let v = cert.validity();
    let nb = UnixTime::from_secs(v.not_before.timestamp());
    let na = UnixTime::from_secs(v.not_after.timestamp());
    if at < nb {
        return Err(IdentityError::NotYetValid { subject: subject_string(cert), not_before: nb, at });
    }
    if at > na {
        return Err(IdentityError::Expired { subject: subject_string(cert), not_after: na, at });
    }
    Ok(())
}

/// Refuses a certificate with a critical extension this crate does not understand (RFC 5280
/// §4.2). Name constraints are parsed but not enforced: no MSP decision depends on names.
fn check_critical(cert: &X509Certificate<'_>) -> Result<(), IdentityError> {
    for ext in cert.extensions() {
        if ext.critical
            && matches!(
                ext.parsed_extension(),
                x509_parser::extensions::ParsedExtension::UnsupportedExtension { .. }
                    | x509_parser::extensions::ParsedExtension::ParseError { .. }
            )
        {
            return Err(IdentityError::Malformed(format!("unsupported critical extension {}", ext.oid)));
        }
    }
    Ok(())
}

/// Checks that `cert` may act as a CA; returns its pathLenConstraint.
fn check_ca(cert: &X509Certificate<'_>) -> Result<Option<u32>, IdentityError> {
    let subject = || subject_string(cert);
    let bc = cert.basic_constraints().map_err(|e| IdentityError::Malformed(e.to_string()))?;
    let Some(bc) = bc.filter(|bc| bc.value.ca) else {
        return Err(IdentityError::NotACa { subject: subject(), reason: "basicConstraints CA is not set" });
    };
    if let Some(ku) = cert.key_usage().map_err(|e| IdentityError::Malformed(e.to_string()))?
        && !ku.value.key_cert_sign()
    {
        return Err(IdentityError::NotACa { subject: subject(), reason: "keyUsage lacks keyCertSign" });
    }
    Ok(bc.value.path_len_constraint)
}

pub(crate) fn extract_role(cert: &X509Certificate<'_>) -> Result<Role, IdentityError> {
    let mut role = None;
    for ou in cert.subject().iter_organizational_unit() {
        if let Some(r) = ou.as_str().ok().and_then(Role::from_ou) {
            if role.is_some_and(|prev| prev != r) {
                return Err(IdentityError::AmbiguousRole);
            }
            role = Some(r);
        }
    }
    role.ok_or(IdentityError::MissingRole)
}

/// SHA-256 of a certificate's DER bytes (the cache key of [`crate::MspManager`]).
pub fn cert_hash(cert_der: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(cert_der).into()
}

/// Decodes every `CERTIFICATE` block of a PEM bundle into DER.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, IdentityError> {
    let mut out = Vec::new();
    for p in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let p = p.map_err(|e| IdentityError::Malformed(format!("PEM: {e}")))?;
        if p.label == "CERTIFICATE" {
            out.push(p.contents);
        }
    }
    if out.is_empty() {
        return Err(IdentityError::Malformed("no CERTIFICATE block in PEM".into()));
    }
    Ok(out)
}

/// Reads a certificate given as PEM or DER.
pub(crate) fn cert_der_from_bytes(bytes: &[u8]) -> Result<Vec<u8>, IdentityError> {
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    let mut certs = certs_from_pem(bytes)?;
    Ok(certs.swap_remove(0))
}

impl Msp {
    /// Defines an MSP from its root CA certificates and optional intermediate CA certificates (DER).
    ///
    /// Each root must be a self-signed CA certificate; each intermediate must be a CA certificate
    /// (whether it chains to a root is checked when an identity is validated).
    pub fn new(
        msp_id: impl Into<String>,
        roots: impl IntoIterator<Item = Vec<u8>>,
        intermediates: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<Self, IdentityError> {
        let msp_id = msp_id.into();
        let invalid = |reason: String| IdentityError::InvalidMsp { msp_id: msp_id.clone(), reason };
        let mut cas = Vec::new();
        for (der, is_root) in
            roots.into_iter().map(|d| (d, true)).chain(intermediates.into_iter().map(|d| (d, false)))
        {
            let cert = parse(&der).map_err(|e| invalid(e.to_string()))?;
            check_ca(&cert).map_err(|e| invalid(e.to_string()))?;
            if is_root {
                if cert.subject().as_raw() != cert.issuer().as_raw() {
                    return Err(invalid(format!("root {} is not self-issued", subject_string(&cert))));
                }
                cert.verify_signature(None)
                    .map_err(|e| invalid(format!("root {} self-signature: {e}", subject_string(&cert))))?;
            }
            let subject_raw = cert.subject().as_raw().to_vec();
            cas.push(CaCert { der, subject_raw, is_root });
        }
        if !cas.iter().any(|c| c.is_root) {
            return Err(invalid("no root CA certificate".into()));
        }
        Ok(Msp { msp_id, cas })
    }

    /// Defines an MSP from PEM bundles of root and intermediate CA certificates.
    pub fn from_pem(
        msp_id: impl Into<String>,
        roots_pem: &[u8],
        intermediates_pem: Option<&[u8]>,
    ) -> Result<Self, IdentityError> {
        let roots = certs_from_pem(roots_pem)?;
        let inters = match intermediates_pem {
            Some(p) => certs_from_pem(p)?,
            None => Vec::new(),
        };
        Self::new(msp_id, roots, inters)
    }

    /// Defines an MSP from the files of a Fabric-style MSP folder, given as `(path relative to the
    /// folder, contents)`: every file under `cacerts/` is a root, every file under
    /// `intermediatecerts/` an intermediate (PEM or DER). Other files are ignored.
    pub fn from_files(
        msp_id: impl Into<String>,
        files: &[(PathBuf, Vec<u8>)],
    ) -> Result<Self, IdentityError> {
        Self::from_dirs(msp_id, files, "cacerts", "intermediatecerts")
    }

    /// Like [`from_files`](Self::from_files), but the organization's TLS CAs: `tlscacerts/` and
    /// `tlsintermediatecerts/`. Check TLS certificates with [`validate_chain`](Self::validate_chain).
    pub fn tls_from_files(
        msp_id: impl Into<String>,
        files: &[(PathBuf, Vec<u8>)],
    ) -> Result<Self, IdentityError> {
        Self::from_dirs(msp_id, files, "tlscacerts", "tlsintermediatecerts")
    }

    fn from_dirs(
        msp_id: impl Into<String>,
        files: &[(PathBuf, Vec<u8>)],
        roots_dir: &str,
        inters_dir: &str,
    ) -> Result<Self, IdentityError> {
        let mut roots = Vec::new();
        let mut inters = Vec::new();
        for (path, bytes) in files {
            if in_dir(path, roots_dir) {
                roots.extend(certs_or_der(bytes)?);
            } else if in_dir(path, inters_dir) {
                inters.extend(certs_or_der(bytes)?);
            }
        }
        Self::new(msp_id, roots, inters)
    }

    /// The organization's MSP id.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The root CA certificates (DER).
    pub fn root_certs(&self) -> impl Iterator<Item = &[u8]> {
        self.cas.iter().filter(|c| c.is_root).map(|c| c.der.as_slice())
    }

    /// The intermediate CA certificates (DER).
    pub fn intermediate_certs(&self) -> impl Iterator<Item = &[u8]> {
        self.cas.iter().filter(|c| !c.is_root).map(|c| c.der.as_slice())
    }

    /// Validates a member certificate (DER) at time `at`: the chain to one of this MSP's roots
    /// (signatures, validity periods, CA constraints), exactly one role OU, a supported key.
    pub fn validate(&self, cert_der: &[u8], at: UnixTime) -> Result<ValidatedIdentity, IdentityError> {
        let leaf = parse(cert_der)?;
        let chain = self.check_chain(&leaf, at)?;
        let role = extract_role(&leaf)?;
        Ok(ValidatedIdentity {
            msp_id: self.msp_id.clone(),
            role,
            common_name: chain.common_name,
            public_key: chain.public_key,
            cert_hash: cert_hash(cert_der),
            not_before: chain.not_before,
            not_after: chain.not_after,
        })
    }

    /// Checks only that `cert_der` chains to this MSP's CAs at `at` (no role OU needed): for TLS
    /// certificates against a TLS MSP ([`crate::cryptogen::OrgMaterial::tls_msp`]). Returns the
    /// subject common name (empty if none).
    pub fn validate_chain(&self, cert_der: &[u8], at: UnixTime) -> Result<String, IdentityError> {
        let leaf = parse(cert_der)?;
        Ok(self.check_chain(&leaf, at)?.common_name)
    }

    fn check_chain(&self, leaf: &X509Certificate<'_>, at: UnixTime) -> Result<Chain, IdentityError> {
        if leaf.is_ca() {
            return Err(IdentityError::CaAsIdentity);
        }
        check_validity(leaf, at)?;
        check_critical(leaf)?;
        let public_key = PublicKey::from_spki_der(leaf.tbs_certificate.subject_pki.raw)?;
        let common_name = leaf
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut not_before = leaf.validity().not_before.timestamp();
        let mut not_after = leaf.validity().not_after.timestamp();

        let (mut ca, mut ca_cert) = self.find_issuer(leaf)?;
        let mut cas_seen = 0usize;
        loop {
            if let Some(max) = check_ca(&ca_cert)? {
                // `cas_seen` intermediates sit between `ca` and the leaf.
                if cas_seen > max as usize {
                    return Err(IdentityError::NotACa {
                        subject: subject_string(&ca_cert),
                        reason: "pathLenConstraint exceeded",
                    });
                }
            }
            check_validity(&ca_cert, at)?;
            check_critical(&ca_cert)?;
            not_before = not_before.max(ca_cert.validity().not_before.timestamp());
            not_after = not_after.min(ca_cert.validity().not_after.timestamp());
            if ca.is_root {
                break;
            }
            cas_seen += 1;
            if cas_seen >= MAX_CHAIN_CAS {
                return Err(IdentityError::ChainTooLong);
            }
            (ca, ca_cert) = self.find_issuer(&ca_cert)?;
        }
        Ok(Chain {
            common_name,
            public_key,
            not_before: UnixTime::from_secs(not_before),
            not_after: UnixTime::from_secs(not_after),
        })
    }

    /// The CA of this MSP whose subject is `cert`'s issuer and whose key verifies `cert`.
    fn find_issuer<'s>(
        &'s self,
        cert: &X509Certificate<'_>,
    ) -> Result<(&'s CaCert, X509Certificate<'s>), IdentityError> {
        let mut name_matched = false;
        for ca in &self.cas {
            if ca.subject_raw != cert.issuer().as_raw() {
                continue;
            }
            name_matched = true;
            let ca_cert = parse(&ca.der)?;
            if cert.verify_signature(Some(ca_cert.public_key())).is_ok() {
                return Ok((ca, ca_cert));
            }
        }
        if name_matched {
            Err(IdentityError::BadChainSignature { msp_id: self.msp_id.clone() })
        } else {
            Err(IdentityError::UntrustedChain { msp_id: self.msp_id.clone() })
        }
    }
}

fn in_dir(path: &Path, dir: &str) -> bool {
    path.parent().and_then(|p| p.file_name()).is_some_and(|n| n == dir)
}

fn certs_or_der(bytes: &[u8]) -> Result<Vec<Vec<u8>>, IdentityError> {
    if bytes.first() == Some(&0x30) { Ok(vec![bytes.to_vec()]) } else { certs_from_pem(bytes) }
}
