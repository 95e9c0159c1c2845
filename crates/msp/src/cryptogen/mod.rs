//! `cryptogen`: a [`NetworkSpec`] in, the whole network's crypto material out.
//!
//! Per organization: a signing CA (`ca.<domain>`) and a TLS CA (`tlsca.<domain>`). Per node and
//! user: a signing certificate with the role OU (`peer`, `orderer`, `client`, `admin`) and a TLS
//! certificate (serverAuth + clientAuth; SANs `localhost`, `127.0.0.1`, and for nodes the host
//! name and the short node name). Every key comes from the RNG passed in, and every certificate is
//! signed by this crate's deterministic signers (Ed25519, or RFC 6979 ECDSA with low-S), so the
//! same seed, spec and time give byte-identical material.
//!
//! [`CryptoMaterial::files`] lays the material out like Fabric's cryptogen:
//!
//! ```text
//! crypto-config.toml
//! peerOrganizations/<domain>/ca/{ca.<domain>-cert.pem, priv_sk}
//! peerOrganizations/<domain>/tlsca/{tlsca.<domain>-cert.pem, priv_sk}
//! peerOrganizations/<domain>/msp/{cacerts,tlscacerts}/…, config.yaml
//! peerOrganizations/<domain>/peers/<host>/msp/{signcerts,keystore,cacerts,tlscacerts}/…, config.yaml
//! peerOrganizations/<domain>/peers/<host>/tls/{ca.crt, server.crt, server.key}
//! peerOrganizations/<domain>/users/<user>@<domain>/msp/…, tls/{ca.crt, client.crt, client.key}
//! ordererOrganizations/<domain>/orderers/<host>/…   (same shape)
//! ```

mod files;
mod spec;
#[cfg(test)]
mod tests;

use rand_core::CryptoRngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyUsagePurpose, SanType, SerialNumber,
};

pub use files::{FilesError, SPEC_FILE, is_private_key_path};
pub use spec::{Names, NetworkSpec, OrgSpec, SpecError};

use crate::identity::{LoadError, LocalIdentity, TlsIdentity};
use crate::manager::MspManager;
use crate::msp::{IdentityError, Msp, Role};
use crate::sig::{Algorithm, PublicKey, SigningKey};
use crate::time::UnixTime;

/// Certificates start this long before the generation time, to tolerate clock skew between hosts.
pub const BACKDATE_SECS: i64 = 300;

/// Why generation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptogenError {
    /// The spec is inconsistent.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Certificate generation failed (a name rcgen cannot encode, a time out of range, ...).
    #[error("certificate generation: {0}")]
    Cert(String),
}

impl From<rcgen::Error> for CryptogenError {
    fn from(e: rcgen::Error) -> Self {
        CryptogenError::Cert(e.to_string())
    }
}

/// Whether an organization runs peers or orderers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgKind {
    /// A peer (application) organization.
    Peer,
    /// An orderer organization.
    Orderer,
}

/// A CA: its certificate and key.
#[derive(Debug, Clone)]
pub struct CaMaterial {
    /// The common name (`ca.<domain>` or `tlsca.<domain>`).
    pub common_name: String,
    /// The self-signed CA certificate (DER).
    pub cert_der: Vec<u8>,
    /// The CA's private key.
    pub key: SigningKey,
}

/// A node's or user's material.
#[derive(Debug, Clone)]
pub struct MemberMaterial {
    /// Short name: `peer0`, `orderer1`, `Admin`, `User1`, `Gateway`.
    pub name: String,
    /// Certificate common name and folder name: `peer0.<domain>` or `Admin@<domain>`.
    pub common_name: String,
    /// Role OU in the signing certificate.
    pub role: Role,
    /// Signing certificate (DER), issued by the org's CA.
    pub cert_der: Vec<u8>,
    /// Signing key.
    pub key: SigningKey,
    /// TLS certificate (DER), issued by the org's TLS CA.
    pub tls_cert_der: Vec<u8>,
    /// TLS key.
    pub tls_key: SigningKey,
}

impl MemberMaterial {
    /// Whether this is a node (peer or orderer) rather than a user.
    pub fn is_node(&self) -> bool {
        matches!(self.role, Role::Peer | Role::Orderer)
    }
}

/// One organization's material.
#[derive(Debug, Clone)]
pub struct OrgMaterial {
    /// Peer or orderer organization.
    pub kind: OrgKind,
    /// The organization's spec.
    pub spec: OrgSpec,
    /// Signing CA.
    pub ca: CaMaterial,
    /// TLS CA.
    pub tls_ca: CaMaterial,
    /// Peers or orderers, in spec order.
    pub nodes: Vec<MemberMaterial>,
    /// Users: `Admin` first, then the spec's users.
    pub users: Vec<MemberMaterial>,
}

impl OrgMaterial {
    /// The MSP id.
    pub fn msp_id(&self) -> &str {
        &self.spec.msp_id
    }

    /// The organization's MSP (its signing CA as the only root).
    pub fn msp(&self) -> Result<Msp, IdentityError> {
        Msp::new(self.spec.msp_id.clone(), [self.ca.cert_der.clone()], [])
    }

    /// The organization's TLS MSP (its TLS CA as root), for checking TLS client certificates.
    pub fn tls_msp(&self) -> Result<Msp, IdentityError> {
        Msp::new(self.spec.msp_id.clone(), [self.tls_ca.cert_der.clone()], [])
    }

    /// A node or user by short name (`peer0`, `Admin`) or common name.
    pub fn member(&self, name: &str) -> Option<&MemberMaterial> {
        self.nodes.iter().chain(&self.users).find(|m| m.name == name || m.common_name == name)
    }

    /// The local identity (with TLS material) of a node or user.
    pub fn identity(&self, name: &str) -> Option<Result<LocalIdentity, LoadError>> {
        let m = self.member(name)?;
        Some(LocalIdentity::new(
            self.spec.msp_id.clone(),
            m.cert_der.clone(),
            m.key.clone(),
            Some(TlsIdentity {
                cert_der: m.tls_cert_der.clone(),
                key_pkcs8_der: m.tls_key.to_pkcs8_der(),
                ca_der: self.tls_ca.cert_der.clone(),
            }),
        ))
    }
}

/// The crypto material of a whole network.
#[derive(Debug, Clone)]
pub struct CryptoMaterial {
    /// The description it was generated from.
    pub spec: NetworkSpec,
    /// Orderer organizations first, then peer organizations, each in spec order.
    pub orgs: Vec<OrgMaterial>,
}

impl CryptoMaterial {
    /// The organization with this MSP id.
    pub fn org(&self, msp_id: &str) -> Option<&OrgMaterial> {
        self.orgs.iter().find(|o| o.spec.msp_id == msp_id)
    }

    /// The local identity of member `name` (short or common name) of organization `msp_id`.
    pub fn identity(&self, msp_id: &str, name: &str) -> Option<Result<LocalIdentity, LoadError>> {
        self.org(msp_id)?.identity(name)
    }

    /// An [`MspManager`] over every organization (orderer and peer orgs).
    pub fn msp_manager(&self) -> Result<MspManager, IdentityError> {
        Ok(MspManager::new(self.orgs.iter().map(OrgMaterial::msp).collect::<Result<Vec<_>, _>>()?))
    }

    /// An [`MspManager`] over the named organizations only (e.g. a channel's members).
    /// Unknown ids are an error.
    pub fn msp_manager_for(&self, msp_ids: &[&str]) -> Result<MspManager, IdentityError> {
        let msps = msp_ids
            .iter()
            .map(|id| self.org(id).ok_or_else(|| IdentityError::UnknownMsp((*id).to_owned()))?.msp())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MspManager::new(msps))
    }

    /// Every node (peer or orderer) with its organization, orderer organizations first.
    pub fn nodes(&self) -> impl Iterator<Item = (&OrgMaterial, &MemberMaterial)> {
        self.orgs.iter().flat_map(|o| o.nodes.iter().map(move |n| (o, n)))
    }

    /// Every organization's TLS CA certificate (DER): the trust roots for mTLS between nodes.
    pub fn tls_root_certs(&self) -> Vec<Vec<u8>> {
        self.orgs.iter().map(|o| o.tls_ca.cert_der.clone()).collect()
    }
}

/// An rcgen signer backed by this crate's deterministic [`SigningKey`].
struct Signer<'a> {
    key: &'a SigningKey,
    raw_public: Vec<u8>,
}

impl<'a> Signer<'a> {
    fn new(key: &'a SigningKey) -> Self {
        Signer { key, raw_public: key.public_key().raw_bytes() }
    }
}

fn rcgen_alg(alg: Algorithm) -> &'static rcgen::SignatureAlgorithm {
    match alg {
        Algorithm::Ed25519 => &rcgen::PKCS_ED25519,
        Algorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
    }
}

impl rcgen::PublicKeyData for Signer<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.raw_public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        rcgen_alg(self.key.algorithm())
    }
}

impl rcgen::SigningKey for Signer<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.key.sign(msg).to_vec())
    }
}

/// The public half of a subject key, for rcgen.
struct Subject {
    alg: Algorithm,
    raw_public: Vec<u8>,
}

impl Subject {
    fn new(key: &PublicKey) -> Self {
        Subject { alg: key.algorithm(), raw_public: key.raw_bytes() }
    }
}

impl rcgen::PublicKeyData for Subject {
    fn der_bytes(&self) -> &[u8] {
        &self.raw_public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        rcgen_alg(self.alg)
    }
}

/// An rcgen issuer for `ca`: from the parameters it was just made with, or from its certificate.
fn make_issuer<'a>(
    ca: &'a CaMaterial,
    params: Option<&'a CertificateParams>,
) -> Result<Issuer<'a, Signer<'a>>, CryptogenError> {
    let signer = Signer::new(&ca.key);
    match params {
        Some(p) => Ok(Issuer::from_params(p, signer)),
        None => Ok(Issuer::from_ca_cert_der(&ca.cert_der.as_slice().into(), signer)?),
    }
}

struct Gen<'r, R> {
    rng: &'r mut R,
    /// Validity window and key-identifier settings shared by every certificate.
    base: CertificateParams,
    alg: Algorithm,
    tls_alg: Algorithm,
}

impl<R: CryptoRngCore> Gen<'_, R> {
    fn serial(&mut self) -> SerialNumber {
        let mut b = [0u8; 16];
        self.rng.fill_bytes(&mut b);
        // Positive and minimally encoded: first byte in 1..=0x7f.
        b[0] = (b[0] & 0x7f).max(1);
        SerialNumber::from_slice(&b)
    }

    fn params(&mut self, dn: DistinguishedName) -> CertificateParams {
        let mut p = self.base.clone();
        p.distinguished_name = dn;
        p.serial_number = Some(self.serial());
        p
    }

    fn ca(
        &mut self,
        org: &OrgSpec,
        cn: String,
        alg: Algorithm,
    ) -> Result<(CaMaterial, CertificateParams), CryptogenError> {
        let key = SigningKey::generate(alg, self.rng);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, org.domain.clone());
        dn.push(DnType::CommonName, cn.clone());
        let mut p = self.params(dn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&Signer::new(&key))?;
        Ok((CaMaterial { common_name: cn, cert_der: cert.der().to_vec(), key }, p))
    }

    fn member(
        &mut self,
        org: &OrgSpec,
        ca: &Issuer<'_, Signer<'_>>,
        tls_ca: &Issuer<'_, Signer<'_>>,
        name: &str,
        common_name: String,
        role: Role,
    ) -> Result<MemberMaterial, CryptogenError> {
        let is_node = matches!(role, Role::Peer | Role::Orderer);

        // Signing certificate: role OU, digitalSignature.
        let key = SigningKey::generate(self.alg, self.rng);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, org.domain.clone());
        dn.push(DnType::OrganizationalUnitName, role.ou());
        dn.push(DnType::CommonName, common_name.clone());
        let mut p = self.params(dn);
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(&Subject::new(&key.public_key()), ca)?;

        // TLS certificate: server + client auth, loopback and host-name SANs, and the member's role OU so
        // that a TLS connection can be authorized by role (the orderers' Cluster service: orderers only;
        // the Admin service: admins only).
        let tls_key = SigningKey::generate(self.tls_alg, self.rng);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, org.domain.clone());
        dn.push(DnType::OrganizationalUnitName, role.ou());
        dn.push(DnType::CommonName, common_name.clone());
        let mut p = self.params(dn);
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        p.use_authority_key_identifier_extension = true;
        let mut sans = vec![SanType::DnsName("localhost".try_into()?)];
        if is_node {
            sans.push(SanType::DnsName(common_name.clone().try_into()?));
            sans.push(SanType::DnsName(name.to_owned().try_into()?));
        }
        sans.push(SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)));
        if is_node {
            for extra in org.sans.get(name).into_iter().flatten() {
                let san = match extra.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName(extra.clone().try_into()?),
                };
                if !sans.contains(&san) {
                    sans.push(san);
                }
            }
        }
        p.subject_alt_names = sans;
        let tls_cert = p.signed_by(&Subject::new(&tls_key.public_key()), tls_ca)?;

        Ok(MemberMaterial {
            name: name.to_owned(),
            common_name,
            role,
            cert_der: cert.der().to_vec(),
            key,
            tls_cert_der: tls_cert.der().to_vec(),
            tls_key,
        })
    }

    /// Material for `org`; with `existing`, its CAs and members are kept and only the members the
    /// spec adds are issued.
    fn org(
        &mut self,
        org: &OrgSpec,
        kind: OrgKind,
        existing: Option<&OrgMaterial>,
    ) -> Result<OrgMaterial, CryptogenError> {
        let (ca, tls_ca, ca_params, tls_params) = match existing {
            Some(e) => (e.ca.clone(), e.tls_ca.clone(), None, None),
            None => {
                let (ca, p) = self.ca(org, format!("ca.{}", org.domain), self.alg)?;
                let (tls_ca, tp) = self.ca(org, format!("tlsca.{}", org.domain), self.tls_alg)?;
                (ca, tls_ca, Some(p), Some(tp))
            }
        };
        let (nodes, users) = {
            let ca_issuer = make_issuer(&ca, ca_params.as_ref())?;
            let tls_issuer = make_issuer(&tls_ca, tls_params.as_ref())?;
            let (prefix, node_role) = match kind {
                OrgKind::Peer => ("peer", Role::Peer),
                OrgKind::Orderer => ("orderer", Role::Orderer),
            };
            let wanted = org
                .nodes
                .expand(prefix, 0)
                .into_iter()
                .map(|n| (format!("{n}.{}", org.domain), n, node_role))
                .chain(std::iter::once("Admin".to_owned()).chain(org.users.expand("User", 1)).map(|u| {
                    let role = if u == "Admin" { Role::Admin } else { Role::Client };
                    (format!("{u}@{}", org.domain), u, role)
                }));
            let (mut nodes, mut users) = (Vec::new(), Vec::new());
            for (cn, name, role) in wanted {
                let kept = existing.and_then(|e| e.member(&cn)).filter(|m| m.role == role);
                let m = match kept {
                    Some(m) => m.clone(),
                    None => self.member(org, &ca_issuer, &tls_issuer, &name, cn, role)?,
                };
                if m.is_node() {
                    nodes.push(m);
                } else {
                    users.push(m);
                }
            }
            (nodes, users)
        };
        Ok(OrgMaterial { kind, spec: org.clone(), ca, tls_ca, nodes, users })
    }
}

/// Generates the crypto material of `spec`. Certificates are valid from `now` minus
/// [`BACKDATE_SECS`] for `spec.validity_days`. All keys and serial numbers come from `rng`:
/// the same seed, spec and `now` give byte-identical material.
pub fn generate(
    spec: &NetworkSpec,
    now: UnixTime,
    rng: &mut impl CryptoRngCore,
) -> Result<CryptoMaterial, CryptogenError> {
    build(spec, None, now, rng)
}

/// Like Fabric's `cryptogen extend`: material for `spec` that keeps everything `existing`
/// already has (CAs, keys, certificates of members still in the spec, matched by MSP id and
/// common name) and issues only what the spec adds, from the existing CAs. An organization that
/// is new in the spec gets new CAs. An organization's domain and kind cannot change.
pub fn extend(
    existing: &CryptoMaterial,
    spec: &NetworkSpec,
    now: UnixTime,
    rng: &mut impl CryptoRngCore,
) -> Result<CryptoMaterial, CryptogenError> {
    build(spec, Some(existing), now, rng)
}

fn build(
    spec: &NetworkSpec,
    existing: Option<&CryptoMaterial>,
    now: UnixTime,
    rng: &mut impl CryptoRngCore,
) -> Result<CryptoMaterial, CryptogenError> {
    spec.check()?;
    let time = |t: UnixTime| {
        x509_parser::time::ASN1Time::from_timestamp(t.as_secs())
            .map(|t| t.to_datetime())
            .map_err(|e| CryptogenError::Cert(format!("time {t}: {e}")))
    };
    let mut base = CertificateParams::default();
    base.not_before = time(UnixTime::from_secs(now.as_secs() - BACKDATE_SECS))?;
    base.not_after = time(now.plus_days(i64::from(spec.validity_days)))?;
    base.distinguished_name = DistinguishedName::new();
    let mut g = Gen { rng, base, alg: spec.key_algorithm, tls_alg: spec.tls_key_algorithm };
    let mut orgs = Vec::new();
    for (o, kind) in spec
        .orderer_orgs
        .iter()
        .map(|o| (o, OrgKind::Orderer))
        .chain(spec.peer_orgs.iter().map(|o| (o, OrgKind::Peer)))
    {
        let old = existing.and_then(|e| e.org(&o.msp_id));
        if let Some(old) = old
            && (old.kind != kind || old.spec.domain != o.domain)
        {
            return Err(CryptogenError::Spec(SpecError::Invalid(format!(
                "{}: an existing organization's domain and kind cannot change",
                o.msp_id
            ))));
        }
        orgs.push(g.org(o, kind, old)?);
    }
    Ok(CryptoMaterial { spec: spec.clone(), orgs })
}
