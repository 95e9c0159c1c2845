//! Starting nodes from their loaded configs.

use crate::identities::IdentitySigner;
use crate::layout::{LoadError, LoadedNode, NodeRole};
use contract::Contract;
use ledger_store::{FileBlockStore, RedbStateStore};
use ledger_types::store::StoreError;
use peer::node::{PeerError, PeerNode, PeerNodeConfig};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A running peer on disk stores.
pub type DiskPeer = PeerNode<FileBlockStore, RedbStateStore>;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Its config or material.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Its stores.
    #[error("opening stores in {dir}: {source}")]
    Store { dir: std::path::PathBuf, source: StoreError },
    /// The peer failed.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The orderer failed.
    #[error("orderer: {0}")]
    Orderer(String),
    /// The config is for the other kind of node.
    #[error("{0} is not a {1:?} config")]
    WrongRole(String, NodeRole),
}

/// The contracts every peer of the default network has installed.
pub fn installed_contracts() -> Vec<Arc<dyn Contract>> {
    vec![Arc::new(contract::samples::KvContract)]
}

/// Number of threads for signature checks: the config's, or the machine's cores.
fn threads(node: &LoadedNode) -> usize {
    node.config
        .validation_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Opens a peer's stores (block files and redb state under its data dir) and starts it.
pub async fn start_peer(
    node: LoadedNode,
    contracts: Vec<Arc<dyn Contract>>,
    shutdown: CancellationToken,
) -> Result<DiskPeer, RunError> {
    if node.config.role != NodeRole::Peer {
        return Err(RunError::WrongRole(node.config.name.clone(), NodeRole::Peer));
    }
    let dir = node.config.data_dir.clone();
    let store_err = |source| RunError::Store { dir: dir.clone(), source };
    std::fs::create_dir_all(&dir).map_err(|e| store_err(StoreError::Io(e)))?;
    let blocks = FileBlockStore::open(dir.join("blocks")).map_err(store_err)?;
    let state = RedbStateStore::open(dir.join("state.redb")).map_err(store_err)?;
    let ids = Arc::new(node.identities()?);
    let cfg = PeerNodeConfig {
        name: node.config.name.clone(),
        msp_id: node.config.msp_id.clone(),
        listen: node.config.listen,
        tls: node.tls.clone(),
        orderers: node.config.orderers.clone(),
        endorsers: node.config.endorsers.clone().into_iter().collect(),
        genesis: node.genesis.clone(),
        validation_threads: threads(&node),
    };
    let signer = Arc::new(IdentitySigner::new(node.identity));
    Ok(PeerNode::start(cfg, blocks, state, ids, signer, contracts, shutdown).await?)
}
