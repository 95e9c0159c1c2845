//! The network description that `cryptogen` turns into crypto material (a small TOML file).
//!
//! ```toml
//! key_algorithm = "ed25519"      # signing keys: ed25519 (default) or p256
//! tls_key_algorithm = "p256"     # TLS keys: p256 (default) or ed25519
//! validity_days = 3650
//!
//! [[orderer_orgs]]
//! name = "Orderer"
//! msp_id = "OrdererMSP"
//! domain = "ipechain.local"
//! nodes = ["orderer0", "orderer1", "orderer2"]   # or a count: nodes = 3
//!
//! [[peer_orgs]]
//! name = "Org1"
//! msp_id = "Org1MSP"
//! domain = "org1.ipechain.local"
//! nodes = 1                      # peer0
//! users = ["Gateway", "User1"]   # or a count: users = 2 (User1, User2); Admin is always made
//! ```

use crate::sig::Algorithm;

/// Why a network description was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Not valid TOML for a [`NetworkSpec`].
    #[error("network spec TOML: {0}")]
    Toml(String),
    /// Valid TOML, but the description is inconsistent.
    #[error("network spec: {0}")]
    Invalid(String),
}

/// Node or user names: a count (`peer0..`, `orderer0..`, `User1..`) or explicit names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Names {
    /// This many, with generated names.
    Count(u32),
    /// Exactly these names.
    List(Vec<String>),
}

impl Default for Names {
    fn default() -> Self {
        Names::Count(0)
    }
}

impl Names {
    /// Expands to names: for a count, `prefix{first}`, `prefix{first+1}`, ...
    pub fn expand(&self, prefix: &str, first: u32) -> Vec<String> {
        match self {
            Names::Count(n) => (0..*n).map(|i| format!("{prefix}{}", first + i)).collect(),
            Names::List(l) => l.clone(),
        }
    }
}

/// One organization.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSpec {
    /// Human name (`Org1`).
    pub name: String,
    /// MSP id (`Org1MSP`).
    pub msp_id: String,
    /// DNS domain; node host names are `<node>.<domain>`, user names `<user>@<domain>`.
    pub domain: String,
    /// Peers (in `peer_orgs`) or orderers (in `orderer_orgs`).
    #[serde(default, alias = "peers", alias = "orderers")]
    pub nodes: Names,
    /// Client users besides the admin (`Admin@<domain>` is always generated).
    #[serde(default)]
    pub users: Names,
    /// Extra names in a node's TLS certificate, by node name (Fabric's `Specs[].SANS`): the host names or
    /// IP addresses the node is reached at on other machines. An entry that parses as an IP address is an
    /// IP SAN, anything else a DNS name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sans: std::collections::BTreeMap<String, Vec<String>>,
}

fn default_tls_alg() -> Algorithm {
    Algorithm::EcdsaP256
}

fn default_validity_days() -> u32 {
    3650
}

/// A whole network: orderer organizations and peer organizations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Algorithm of the CAs' and identities' signing keys.
    #[serde(default)]
    pub key_algorithm: Algorithm,
    /// Algorithm of the TLS CAs' and TLS keys (P-256 by default, for the widest TLS tooling).
    #[serde(default = "default_tls_alg")]
    pub tls_key_algorithm: Algorithm,
    /// Validity of every certificate, in days from generation.
    #[serde(default = "default_validity_days")]
    pub validity_days: u32,
    /// Organizations running orderers.
    #[serde(default)]
    pub orderer_orgs: Vec<OrgSpec>,
    /// Organizations running peers (the channel's application members).
    #[serde(default)]
    pub peer_orgs: Vec<OrgSpec>,
}

impl NetworkSpec {
    /// The default network of DESIGN §6: an orderer organization with three orderers, and Org1
    /// and Org2 with one peer (`peer0`) each, a `Gateway` and a `User1` client identity, and the
    /// admin. Ed25519 signing keys, P-256 TLS keys.
    ///
    /// The orderers form their own organization, as in Fabric's test network: the application
    /// policies (`MAJORITY`, `ANY`, `OutOf`) then range over exactly the two application orgs, and
    /// three orderers need not be split unevenly (2 + 1) between Org1 and Org2.
    pub fn default_network() -> Self {
        let peer_org = |n: u32| OrgSpec {
            name: format!("Org{n}"),
            msp_id: format!("Org{n}MSP"),
            domain: format!("org{n}.ipechain.local"),
            nodes: Names::Count(1),
            users: Names::List(vec!["Gateway".into(), "User1".into()]),
            sans: Default::default(),
        };
        NetworkSpec {
            key_algorithm: Algorithm::Ed25519,
            tls_key_algorithm: Algorithm::EcdsaP256,
            validity_days: default_validity_days(),
            orderer_orgs: vec![OrgSpec {
                name: "Orderer".into(),
                msp_id: "OrdererMSP".into(),
                domain: "ipechain.local".into(),
                nodes: Names::Count(3),
                users: Names::Count(0),
                sans: Default::default(),
            }],
            peer_orgs: vec![peer_org(1), peer_org(2)],
        }
    }

    /// Parses and checks a TOML description.
    pub fn from_toml(s: &str) -> Result<Self, SpecError> {
        let spec: NetworkSpec = toml::from_str(s).map_err(|e| SpecError::Toml(e.to_string()))?;
        spec.check()?;
        Ok(spec)
    }

    /// Renders the description as TOML (what `CryptoMaterial::files` writes as `crypto-config.toml`).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a NetworkSpec always serialises to TOML")
    }

    /// Checks names: non-empty DNS-safe domains and node names, unique MSP ids, domains and names.
    pub fn check(&self) -> Result<(), SpecError> {
        let bad = |m: String| Err(SpecError::Invalid(m));
        if self.validity_days == 0 {
            return bad("validity_days must be at least 1".into());
        }
        let mut msp_ids = std::collections::HashSet::new();
        let mut domains = std::collections::HashSet::new();
        for (org, is_orderer) in
            self.orderer_orgs.iter().map(|o| (o, true)).chain(self.peer_orgs.iter().map(|o| (o, false)))
        {
            if org.name.is_empty() || !org.msp_id.chars().all(is_id_char) || org.msp_id.is_empty() {
                return bad(format!("org {:?}: bad name or msp_id", org.name));
            }
            if !msp_ids.insert(org.msp_id.as_str()) {
                return bad(format!("duplicate msp_id {:?}", org.msp_id));
            }
            if !is_dns_name(&org.domain) {
                return bad(format!("org {}: bad domain {:?}", org.name, org.domain));
            }
            if !domains.insert((is_orderer, org.domain.as_str())) {
                return bad(format!("duplicate domain {:?}", org.domain));
            }
            let prefix = if is_orderer { "orderer" } else { "peer" };
            let nodes = org.nodes.expand(prefix, 0);
            let users = org.users.expand("User", 1);
            let mut seen = std::collections::HashSet::new();
            for n in &nodes {
                if !is_dns_label(n) || !seen.insert(n.clone()) {
                    return bad(format!("org {}: bad or duplicate node name {n:?}", org.name));
                }
            }
            let mut seen = std::collections::HashSet::from(["Admin".to_owned()]);
            for u in &users {
                if u.is_empty() || !u.chars().all(is_id_char) || !seen.insert(u.clone()) {
                    return bad(format!("org {}: bad or duplicate user name {u:?}", org.name));
                }
            }
        }
        Ok(())
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

fn is_dns_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

fn is_dns_name(d: &str) -> bool {
    !d.is_empty() && d.len() <= 253 && d.split('.').all(is_dns_label)
}
