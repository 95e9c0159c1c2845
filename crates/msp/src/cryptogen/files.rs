//! The Fabric-like file layout of [`CryptoMaterial`]: writing it as `(path, bytes)` pairs and
//! reading it back. No file I/O here; the CLI reads and writes the files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{CaMaterial, CryptoMaterial, MemberMaterial, NetworkSpec, OrgKind, OrgMaterial, SpecError};
use crate::identity::cert_pem;
use crate::msp::{Role, cert_der_from_bytes};
use crate::sig::{KeyError, SigningKey};

/// Name of the network description stored at the root of the layout.
pub const SPEC_FILE: &str = "crypto-config.toml";

/// Why a file set could not be read back into [`CryptoMaterial`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilesError {
    /// `crypto-config.toml` is missing or invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// An expected file is not in the set.
    #[error("missing file {0}")]
    Missing(PathBuf),
    /// A certificate file is not a certificate.
    #[error("{path}: {reason}")]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key file is not a PKCS#8 key.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: KeyError,
    },
}

/// Whether a path of [`CryptoMaterial::files`] holds a private key (`priv_sk`, `*.key`): the CLI
/// writes those with owner-only permissions.
pub fn is_private_key_path(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "priv_sk") || path.extension().is_some_and(|e| e == "key")
}

fn org_base(kind: OrgKind, domain: &str) -> PathBuf {
    match kind {
        OrgKind::Peer => Path::new("peerOrganizations").join(domain),
        OrgKind::Orderer => Path::new("ordererOrganizations").join(domain),
    }
}

fn node_dir(kind: OrgKind) -> &'static str {
    match kind {
        OrgKind::Peer => "peers",
        OrgKind::Orderer => "orderers",
    }
}

fn member_dir(org: &OrgMaterial, m_is_node: bool, cn: &str) -> PathBuf {
    let base = org_base(org.kind, &org.spec.domain);
    if m_is_node { base.join(node_dir(org.kind)).join(cn) } else { base.join("users").join(cn) }
}

fn node_ous(ca_file: &str) -> String {
    let mut s = String::from("NodeOUs:\n  Enable: true\n");
    for (key, ou) in [
        ("ClientOUIdentifier", "client"),
        ("PeerOUIdentifier", "peer"),
        ("AdminOUIdentifier", "admin"),
        ("OrdererOUIdentifier", "orderer"),
    ] {
        s.push_str(&format!(
            "  {key}:\n    Certificate: cacerts/{ca_file}\n    OrganizationalUnitIdentifier: {ou}\n"
        ));
    }
    s
}

impl CryptoMaterial {
    /// The material as files, `(relative path, contents)`, in Fabric's cryptogen layout (see the
    /// module docs), plus `crypto-config.toml`. Private keys are PKCS#8 PEM (`priv_sk`,
    /// `server.key`, `client.key`); certificates are PEM.
    pub fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out: Vec<(PathBuf, Vec<u8>)> = vec![(SPEC_FILE.into(), self.spec.to_toml().into_bytes())];
        for org in &self.orgs {
            let base = org_base(org.kind, &org.spec.domain);
            let ca_file = format!("{}-cert.pem", org.ca.common_name);
            let tlsca_file = format!("{}-cert.pem", org.tls_ca.common_name);
            let ca_pem = cert_pem(&org.ca.cert_der).into_bytes();
            let tlsca_pem = cert_pem(&org.tls_ca.cert_der).into_bytes();
            let ous = node_ous(&ca_file).into_bytes();
            out.push((base.join("ca").join(&ca_file), ca_pem.clone()));
            out.push((base.join("ca/priv_sk"), org.ca.key.to_pkcs8_pem().into_bytes()));
            out.push((base.join("tlsca").join(&tlsca_file), tlsca_pem.clone()));
            out.push((base.join("tlsca/priv_sk"), org.tls_ca.key.to_pkcs8_pem().into_bytes()));
            let msp = base.join("msp");
            out.push((msp.join("cacerts").join(&ca_file), ca_pem.clone()));
            out.push((msp.join("tlscacerts").join(&tlsca_file), tlsca_pem.clone()));
            out.push((msp.join("config.yaml"), ous.clone()));
            for m in org.nodes.iter().chain(&org.users) {
                let dir = member_dir(org, m.is_node(), &m.common_name);
                let msp = dir.join("msp");
                out.push((
                    msp.join("signcerts").join(format!("{}-cert.pem", m.common_name)),
                    cert_pem(&m.cert_der).into_bytes(),
                ));
                out.push((msp.join("keystore/priv_sk"), m.key.to_pkcs8_pem().into_bytes()));
                out.push((msp.join("cacerts").join(&ca_file), ca_pem.clone()));
                out.push((msp.join("tlscacerts").join(&tlsca_file), tlsca_pem.clone()));
                out.push((msp.join("config.yaml"), ous.clone()));
                let side = if m.is_node() { "server" } else { "client" };
                let tls = dir.join("tls");
                out.push((tls.join("ca.crt"), tlsca_pem.clone()));
                out.push((tls.join(format!("{side}.crt")), cert_pem(&m.tls_cert_der).into_bytes()));
                out.push((tls.join(format!("{side}.key")), m.tls_key.to_pkcs8_pem().into_bytes()));
            }
        }
        out
    }

    /// Reads back what [`files`](Self::files) wrote (extra files are ignored).
    pub fn from_files(files: &[(PathBuf, Vec<u8>)]) -> Result<Self, FilesError> {
        let map: HashMap<&Path, &[u8]> = files.iter().map(|(p, b)| (p.as_path(), b.as_slice())).collect();
        let get = |p: &Path| map.get(p).copied().ok_or_else(|| FilesError::Missing(p.to_path_buf()));
        let cert = |p: PathBuf| {
            cert_der_from_bytes(get(&p)?)
                .map_err(|e| FilesError::Cert { path: p.clone(), reason: e.to_string() })
        };
        let key = |p: PathBuf| {
            SigningKey::from_pkcs8_pem(get(&p)?).map_err(|source| FilesError::Key { path: p, source })
        };
        let spec_text =
            std::str::from_utf8(get(Path::new(SPEC_FILE))?).map_err(|e| SpecError::Toml(e.to_string()))?;
        let spec = NetworkSpec::from_toml(spec_text)?;

        let mut orgs = Vec::new();
        for (kind, org) in spec
            .orderer_orgs
            .iter()
            .map(|o| (OrgKind::Orderer, o))
            .chain(spec.peer_orgs.iter().map(|o| (OrgKind::Peer, o)))
        {
            let base = org_base(kind, &org.domain);
            let load_ca = |dir: &str| -> Result<CaMaterial, FilesError> {
                let cn = format!("{dir}.{}", org.domain);
                Ok(CaMaterial {
                    cert_der: cert(base.join(dir).join(format!("{cn}-cert.pem")))?,
                    key: key(base.join(dir).join("priv_sk"))?,
                    common_name: cn,
                })
            };
            let ca = load_ca("ca")?;
            let tls_ca = load_ca("tlsca")?;
            let mut partial =
                OrgMaterial { kind, spec: org.clone(), ca, tls_ca, nodes: Vec::new(), users: Vec::new() };
            let (prefix, node_role) = match kind {
                OrgKind::Peer => ("peer", Role::Peer),
                OrgKind::Orderer => ("orderer", Role::Orderer),
            };
            let load_member = |name: String, cn: String, role: Role, o: &OrgMaterial| {
                let is_node = matches!(role, Role::Peer | Role::Orderer);
                let dir = member_dir(o, is_node, &cn);
                let side = if is_node { "server" } else { "client" };
                Ok::<_, FilesError>(MemberMaterial {
                    cert_der: cert(dir.join("msp/signcerts").join(format!("{cn}-cert.pem")))?,
                    key: key(dir.join("msp/keystore/priv_sk"))?,
                    tls_cert_der: cert(dir.join("tls").join(format!("{side}.crt")))?,
                    tls_key: key(dir.join("tls").join(format!("{side}.key")))?,
                    name,
                    common_name: cn,
                    role,
                })
            };
            for n in org.nodes.expand(prefix, 0) {
                let cn = format!("{n}.{}", org.domain);
                let m = load_member(n, cn, node_role, &partial)?;
                partial.nodes.push(m);
            }
            for u in std::iter::once("Admin".to_owned()).chain(org.users.expand("User", 1)) {
                let role = if u == "Admin" { Role::Admin } else { Role::Client };
                let cn = format!("{u}@{}", org.domain);
                let m = load_member(u, cn, role, &partial)?;
                partial.users.push(m);
            }
            orgs.push(partial);
        }
        Ok(CryptoMaterial { spec, orgs })
    }
}
