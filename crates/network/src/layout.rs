//! Where things are in a data directory, and the per-node config file.

use ledger_rpc::tls::TlsMaterial;
use ledger_types::config::config_from_genesis;
use ledger_types::proto::{Block, ChannelConfig};
use msp::{LocalIdentity, Msp, MspManager, cert_pem};
use peer::identity::MspIdentities;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Paths inside a data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// A data directory rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `network.toml`.
    pub fn network_file(&self) -> PathBuf {
        self.root.join("network.toml")
    }

    /// The cryptogen tree.
    pub fn crypto_dir(&self) -> PathBuf {
        self.root.join("crypto")
    }

    /// A channel's genesis block.
    pub fn genesis_file(&self, channel: &str) -> PathBuf {
        self.root.join("channel").join(format!("{channel}.block"))
    }

    /// A node's config file.
    pub fn node_config(&self, node: &str) -> PathBuf {
        self.root.join("nodes").join(format!("{node}.toml"))
    }

    /// A node's data.
    pub fn node_data(&self, node: &str) -> PathBuf {
        self.root.join("nodes").join(node)
    }

    /// Whether the network has been generated here.
    pub fn exists(&self) -> bool {
        self.network_file().is_file()
    }
}

/// Orderer or peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// A Raft orderer.
    Orderer,
    /// A peer.
    Peer,
}

/// One node's configuration (`nodes/<name>.toml`). Relative paths are relative to the file's directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Node name (its certificate's common name).
    pub name: String,
    /// Orderer or peer.
    pub role: NodeRole,
    /// Its organization.
    pub msp_id: String,
    /// Where to serve gRPC.
    pub listen: SocketAddr,
    /// The node's folder in the cryptogen tree (`msp/` and `tls/` inside).
    pub identity_dir: PathBuf,
    /// The channel's genesis block.
    pub genesis: PathBuf,
    /// Where the node keeps its data.
    pub data_dir: PathBuf,
    /// Orderers only: the Raft id (a consenter id of the genesis block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_id: Option<u64>,
    /// Where to serve the operations endpoints (`/metrics`, `/healthz`, `/readyz`, `/version`;
    /// docs/operations.md); none when absent. Plain HTTP unless `ops_tls_cert` and `ops_tls_key` are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_listen: Option<SocketAddr>,
    /// The operations listener's TLS certificate (PEM; with `ops_tls_key`): HTTPS instead of HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_tls_key: Option<PathBuf>,
    /// CA certificates (PEM): with TLS, clients of the operations listener must then present a
    /// certificate one of them issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_client_ca: Option<PathBuf>,
    /// Peers only: orderer endpoints to pull blocks from and submit to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orderers: Vec<String>,
    /// Peers only: a peer of each other organization, for policies needing their endorsement.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endorsers: BTreeMap<String, String>,
    /// Threads for signature checks (default: the machine's cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_threads: Option<usize>,
    /// Orderers only: early cuts at low load. While fewer than this many envelopes arrived within the last ten
    /// batch timeouts, the Raft leader cuts a block as soon as none of its blocks is in flight (docs/ordering.md,
    /// "How blocks are cut"). Default 320 (32 per timeout); 0: never, only the cutter's rules (Fabric's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_cut_below: Option<usize>,
    /// Peers only: whether a client must present a TLS certificate (`required`, the default) or may connect
    /// without one (`optional`).
    #[serde(default, skip_serializing_if = "ClientAuth::is_required")]
    pub client_auth: ClientAuth,
    /// Peers only: contracts run by external chaincode servers (chaincode as a service), by contract name,
    /// as Fabric installs a ccaas package (`connection.json`) on each peer. The contract must be defined on
    /// the channel; its name here replaces a built-in contract of the same name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub chaincodes: BTreeMap<String, ChaincodeServer>,
}

/// Where a peer reaches an external chaincode (Fabric's ccaas `connection.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaincodeServer {
    /// `host:port` of the chaincode server.
    pub address: String,
    /// PEM file of the CA of the server's TLS certificate; absent: plain TCP (`tls_required: false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// How long one execution may take, in seconds (Fabric's `chaincode.executetimeout`; default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_timeout_secs: Option<u64>,
}

/// Whether a peer demands a TLS client certificate from everyone who connects.
///
/// `optional` is Fabric's default (`peer.tls.clientAuthRequired: false`), which Fabric tools without
/// client-certificate support (Caliper's gateway connector) need: every gateway, deliver and endorsement
/// request is still authenticated by its creator's signature and authorized by the channel's policies; the
/// `Admin` service still demands an admin's certificate. ipechain generates `required`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Every client presents a certificate of a channel member's TLS CA.
    #[default]
    Required,
    /// A client may connect without a certificate; one it presents must chain to a channel TLS CA.
    Optional,
}

impl ClientAuth {
    /// `required`.
    pub fn is_required(&self) -> bool {
        *self == ClientAuth::Required
    }
}

/// Why a node's config or material could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The config file is not valid TOML for a node.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// The identity material is unusable.
    #[error("{path}: {message}")]
    Identity { path: PathBuf, message: String },
    /// The genesis block is unusable.
    #[error("{path}: {message}")]
    Genesis { path: PathBuf, message: String },
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })
}

/// Every file under `dir`, as `(path relative to dir, bytes)`.
pub(crate) fn read_tree(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, LoadError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| LoadError::Io { path: d.clone(), source })?;
        for e in entries {
            let e = e.map_err(|source| LoadError::Io { path: d.clone(), source })?;
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).map(Path::to_path_buf).unwrap_or_else(|_| p.clone());
                out.push((rel, read(&p)?));
            }
        }
    }
    Ok(out)
}

/// A node's config with its material loaded.
pub struct LoadedNode {
    /// The config, with absolute paths.
    pub config: NodeConfig,
    /// The node's signing identity (with TLS material).
    pub identity: LocalIdentity,
    /// TLS material trusting every organization of the channel.
    pub tls: TlsMaterial,
    /// The genesis block.
    pub genesis: Block,
    /// The channel configuration in it.
    pub channel: ChannelConfig,
}

impl LoadedNode {
    /// The channel's identities (every org, orderer orgs included), validated against the genesis CAs.
    pub fn identities(&self) -> Result<MspIdentities, LoadError> {
        channel_identities(&self.channel)
            .map_err(|message| LoadError::Genesis { path: self.config.genesis.clone(), message })
    }
}

/// An identity service over every organization of a channel configuration.
pub fn channel_identities(channel: &ChannelConfig) -> Result<MspIdentities, String> {
    let mut msps = Vec::new();
    for org in channel.orgs.iter().chain(&channel.orderer_orgs) {
        msps.push(Msp::new(org.msp_id.clone(), org.root_certs.clone(), []).map_err(|e| e.to_string())?);
    }
    Ok(MspIdentities::new(MspManager::new(msps)))
}

/// TLS material of `identity`, trusting the TLS CAs of every organization of the channel.
pub fn tls_material(identity: &LocalIdentity, channel: &ChannelConfig) -> Option<TlsMaterial> {
    let tls = identity.tls()?;
    let ca_pems = channel
        .orgs
        .iter()
        .chain(&channel.orderer_orgs)
        .flat_map(|o| o.tls_root_certs.iter())
        .map(|der| cert_pem(der).into_bytes())
        .collect();
    Some(TlsMaterial { cert_pem: tls.cert_pem().into_bytes(), key_pem: tls.key_pem().into_bytes(), ca_pems })
}

/// Reads a genesis block file.
pub fn read_genesis(path: &Path) -> Result<(Block, ChannelConfig), LoadError> {
    let bytes = read(path)?;
    let block = Block::decode(bytes.as_slice())
        .map_err(|e| LoadError::Genesis { path: path.to_path_buf(), message: e.to_string() })?;
    let channel = config_from_genesis(&block)
        .map_err(|e| LoadError::Genesis { path: path.to_path_buf(), message: e.to_string() })?;
    Ok((block, channel))
}

/// Loads a user's or node's identity from its cryptogen folder.
pub fn load_identity(msp_id: &str, dir: &Path) -> Result<LocalIdentity, LoadError> {
    let files = read_tree(dir)?;
    LocalIdentity::from_files(msp_id, &files)
        .map_err(|e| LoadError::Identity { path: dir.to_path_buf(), message: e.to_string() })
}

impl NodeConfig {
    /// Parses a node config file and resolves its paths against the file's directory.
    pub fn read(path: &Path) -> Result<NodeConfig, LoadError> {
        let text = String::from_utf8(read(path)?)
            .map_err(|e| LoadError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        let mut c: NodeConfig = toml::from_str(&text)
            .map_err(|e| LoadError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut c.identity_dir, &mut c.genesis, &mut c.data_dir]
            .into_iter()
            .chain(c.chaincodes.values_mut().filter_map(|cc| cc.tls_ca.as_mut()))
            .chain([&mut c.ops_tls_cert, &mut c.ops_tls_key, &mut c.ops_client_ca].into_iter().flatten())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(c)
    }

    /// Reads the config and everything it points at.
    pub fn load(path: &Path) -> Result<LoadedNode, LoadError> {
        let config = NodeConfig::read(path)?;
        let identity = load_identity(&config.msp_id, &config.identity_dir)?;
        let (genesis, channel) = read_genesis(&config.genesis)?;
        let tls = tls_material(&identity, &channel).ok_or_else(|| LoadError::Identity {
            path: config.identity_dir.clone(),
            message: "no TLS material (tls/ca.crt, tls/server.crt, tls/server.key)".into(),
        })?;
        Ok(LoadedNode { config, identity, tls, genesis, channel })
    }
}
