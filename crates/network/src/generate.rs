//! `ipechain keys generate`: crypto material, the genesis block and one config per node.

use crate::config::NetworkConfig;
use crate::layout::{DataDir, NodeConfig, NodeRole};
use ledger_types::config::genesis_block;
use ledger_types::proto::{BatchConfig, ChannelConfig, Consenter, ContractDefinition, OrgConfig};
use ledger_types::tx::serialize_identity;
use msp::UnixTime;
use msp::cryptogen::{CryptoMaterial, OrgKind};
use prost::Message;
use rand::{CryptoRng, RngCore};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The description is inconsistent.
    #[error("network description: {0}")]
    Invalid(String),
    /// A network already exists there.
    #[error("{0} already holds a network (network.toml exists); use another --data-dir or remove it")]
    Exists(PathBuf),
    /// Certificate generation failed.
    #[error("cryptogen: {0}")]
    Crypto(String),
    /// Writing failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Node name and config file, orderers first.
    pub nodes: Vec<(String, PathBuf)>,
    /// The genesis block file.
    pub genesis: PathBuf,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), GenerateError> {
    let io = |source| GenerateError::Io { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let private = path.file_name().is_some_and(|n| {
        let n = n.to_string_lossy();
        n == "priv_sk" || n.ends_with(".key")
    });
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

fn common_name(material: &CryptoMaterial, msp_id: &str, short: &str) -> Result<String, GenerateError> {
    let org = material
        .org(msp_id)
        .ok_or_else(|| GenerateError::Invalid(format!("no organization {msp_id} in the crypto spec")))?;
    org.member(short)
        .map(|m| m.common_name.clone())
        .ok_or_else(|| GenerateError::Invalid(format!("{msp_id} has no node {short} in the crypto spec")))
}

/// The channel configuration for `net`, with the CAs of `material`.
pub fn channel_config(
    net: &NetworkConfig,
    material: &CryptoMaterial,
) -> Result<ChannelConfig, GenerateError> {
    let org_config = |o: &msp::cryptogen::OrgMaterial| OrgConfig {
        msp_id: o.msp_id().to_owned(),
        name: o.spec.name.clone(),
        root_certs: vec![o.ca.cert_der.clone()],
        tls_root_certs: vec![o.tls_ca.cert_der.clone()],
        // An application org's peers (Fabric's anchor peers), an orderer org's orderers (Fabric's Endpoints).
        peer_endpoints: net
            .peers
            .iter()
            .chain(&net.orderers)
            .filter(|n| n.msp_id == o.msp_id())
            .map(|n| n.endpoint())
            .collect(),
    };
    let orgs: Vec<OrgConfig> =
        material.orgs.iter().filter(|o| o.kind == OrgKind::Peer).map(org_config).collect();
    let orderer_orgs = material.orgs.iter().filter(|o| o.kind == OrgKind::Orderer).map(org_config).collect();
    let mut consenters = Vec::new();
    for (i, o) in net.orderers.iter().enumerate() {
        let org =
            material.org(&o.msp_id).ok_or_else(|| GenerateError::Invalid(format!("no org {}", o.msp_id)))?;
        let m = org
            .member(&o.name)
            .ok_or_else(|| GenerateError::Invalid(format!("{} has no orderer {}", o.msp_id, o.name)))?;
        consenters.push(Consenter {
            id: i as u64 + 1,
            host: o.host.clone(),
            port: u32::from(o.port),
            identity: serialize_identity(&o.msp_id, msp::cert_pem(&m.cert_der).as_bytes()),
        });
    }
    let members: Vec<String> = orgs.iter().map(|o| o.msp_id.clone()).collect();
    let b = net.batch;
    let config = ChannelConfig {
        channel_id: net.channel.clone(),
        orgs,
        orderer_orgs,
        consenters,
        batch: Some(BatchConfig {
            max_message_count: b.max_message_count,
            preferred_max_bytes: b.preferred_max_bytes,
            absolute_max_bytes: b.absolute_max_bytes,
            batch_timeout_ms: b.batch_timeout_ms,
        }),
        readers: members.clone(),
        writers: members.clone(),
        admins: members,
        contracts: net
            .contracts
            .iter()
            .map(|c| ContractDefinition {
                name: c.name.clone(),
                endorsement_policy: c.policy.clone(),
                version: "1".into(),
            })
            .collect(),
    };
    config.validate().map_err(|e| GenerateError::Invalid(e.to_string()))?;
    Ok(config)
}

/// Where a node listens: its host's address when `host` is an IP address, else every interface (a host
/// name resolves to an address of the machine; the node cannot bind a name).
fn listen_addr(n: &crate::config::NodeSettings) -> std::net::SocketAddr {
    let ip = n.host.parse().unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    std::net::SocketAddr::new(ip, n.port)
}

/// The crypto spec of `net` with each node's host among its TLS certificate's names (unless it is the
/// loopback the certificates always name), so that other machines can reach it by that host.
fn crypto_spec(net: &NetworkConfig) -> msp::NetworkSpec {
    let mut spec = net.crypto.clone();
    for n in net.orderers.iter().chain(&net.peers) {
        if matches!(n.host.as_str(), "127.0.0.1" | "localhost") {
            continue;
        }
        let org =
            spec.orderer_orgs.iter_mut().chain(spec.peer_orgs.iter_mut()).find(|o| o.msp_id == n.msp_id);
        if let Some(org) = org {
            let names = org.sans.entry(n.name.clone()).or_default();
            if !names.contains(&n.host) {
                names.push(n.host.clone());
            }
        }
    }
    spec
}

/// Generates the network `net` into `dir`: crypto material, genesis block, node configs and
/// `network.toml`. Refuses to overwrite an existing network.
pub fn generate(
    dir: &DataDir,
    net: &NetworkConfig,
    now: UnixTime,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Generated, GenerateError> {
    if dir.exists() {
        return Err(GenerateError::Exists(dir.root().to_path_buf()));
    }
    if net.orderers.is_empty() || net.peers.is_empty() {
        return Err(GenerateError::Invalid("a network needs at least one orderer and one peer".into()));
    }
    let material = msp::cryptogen::generate(&crypto_spec(net), now, rng)
        .map_err(|e| GenerateError::Crypto(e.to_string()))?;
    let config = channel_config(net, &material)?;
    let genesis = genesis_block(&config).map_err(|e| GenerateError::Invalid(e.to_string()))?;

    for (rel, bytes) in material.files() {
        write_file(&dir.crypto_dir().join(rel), &bytes)?;
    }
    let genesis_path = dir.genesis_file(&net.channel);
    write_file(&genesis_path, &genesis.encode_to_vec())?;

    let mut nodes = Vec::new();
    let identity_dir = |kind: &str, msp_id: &str, cn: &str| -> Result<PathBuf, GenerateError> {
        let org = material.org(msp_id).ok_or_else(|| GenerateError::Invalid(format!("no org {msp_id}")))?;
        let (top, sub) = if kind == "orderer" {
            ("ordererOrganizations", "orderers")
        } else {
            ("peerOrganizations", "peers")
        };
        Ok(PathBuf::from("../crypto").join(top).join(&org.spec.domain).join(sub).join(cn))
    };
    let genesis_rel = PathBuf::from("..").join("channel").join(format!("{}.block", net.channel));
    for (i, o) in net.orderers.iter().enumerate() {
        let cn = common_name(&material, &o.msp_id, &o.name)?;
        let nc = NodeConfig {
            ops_listen: None,
            ops_tls_cert: None,
            ops_tls_key: None,
            ops_client_ca: None,
            name: cn.clone(),
            role: NodeRole::Orderer,
            msp_id: o.msp_id.clone(),
            listen: listen_addr(o),
            identity_dir: identity_dir("orderer", &o.msp_id, &cn)?,
            genesis: genesis_rel.clone(),
            data_dir: PathBuf::from(&cn),
            raft_id: Some(i as u64 + 1),
            orderers: Vec::new(),
            endorsers: BTreeMap::new(),
            validation_threads: None,
            early_cut_below: None,
            client_auth: crate::layout::ClientAuth::Required,
            chaincodes: BTreeMap::new(),
        };
        let path = dir.node_config(&cn);
        write_file(&path, toml::to_string_pretty(&nc).unwrap_or_default().as_bytes())?;
        nodes.push((cn, path));
    }
    let orderer_endpoints: Vec<String> = net.orderers.iter().map(|o| o.endpoint()).collect();
    for p in &net.peers {
        let cn = common_name(&material, &p.msp_id, &p.name)?;
        let mut endorsers = BTreeMap::new();
        for other in &net.peers {
            if other.msp_id != p.msp_id {
                endorsers.entry(other.msp_id.clone()).or_insert_with(|| other.endpoint());
            }
        }
        let nc = NodeConfig {
            ops_listen: None,
            ops_tls_cert: None,
            ops_tls_key: None,
            ops_client_ca: None,
            name: cn.clone(),
            role: NodeRole::Peer,
            msp_id: p.msp_id.clone(),
            listen: listen_addr(p),
            identity_dir: identity_dir("peer", &p.msp_id, &cn)?,
            genesis: genesis_rel.clone(),
            data_dir: PathBuf::from(&cn),
            raft_id: None,
            orderers: orderer_endpoints.clone(),
            endorsers,
            validation_threads: None,
            early_cut_below: None,
            client_auth: crate::layout::ClientAuth::Required,
            chaincodes: BTreeMap::new(),
        };
        let path = dir.node_config(&cn);
        write_file(&path, toml::to_string_pretty(&nc).unwrap_or_default().as_bytes())?;
        nodes.push((cn, path));
    }
    // Last, so that a half-written directory is not taken for a network.
    write_file(&dir.network_file(), net.to_toml().as_bytes())?;
    Ok(Generated { nodes, genesis: genesis_path })
}
