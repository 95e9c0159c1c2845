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
    /// A peer's `[endorsers]` names an organization that is not an application member of the channel (a
    /// key meant for the top of the file, written after the table, lands there too).
    #[error(
        "{node}: [endorsers] names {msp_id:?}, which is not an application organization of the channel ({members}); \
         top-level keys such as client_auth go before the [endorsers] table"
    )]
    UnknownEndorser { node: String, msp_id: String, members: String },
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
    start_peer_with_metrics(node, contracts, ops::PeerMetrics::default(), shutdown).await
}

/// [`start_peer`], counting into `metrics` (the process's operations service).
pub async fn start_peer_with_metrics(
    node: LoadedNode,
    contracts: Vec<Arc<dyn Contract>>,
    metrics: ops::PeerMetrics,
    shutdown: CancellationToken,
) -> Result<DiskPeer, RunError> {
    if node.config.role != NodeRole::Peer {
        return Err(RunError::WrongRole(node.config.name.clone(), NodeRole::Peer));
    }
    let members = node.channel.member_msp_ids();
    if let Some(msp_id) = node.config.endorsers.keys().find(|m| !members.contains(m)) {
        return Err(RunError::UnknownEndorser {
            node: node.config.name.clone(),
            msp_id: msp_id.clone(),
            members: members.join(", "),
        });
    }
    let dir = node.config.data_dir.clone();
    let store_err = |source| RunError::Store { dir: dir.clone(), source };
    std::fs::create_dir_all(&dir).map_err(|e| store_err(StoreError::Io(e)))?;
    let blocks = FileBlockStore::open(dir.join("blocks")).map_err(store_err)?;
    let state = RedbStateStore::open(dir.join("state.redb")).map_err(store_err)?;
    let durable = metrics.for_peer(&node.config.name);
    state.on_durable_commit(move |c| durable.state_durable_commit(c.durable.as_secs_f64()));
    let ids = Arc::new(node.identities()?);
    let cfg = PeerNodeConfig {
        name: node.config.name.clone(),
        msp_id: node.config.msp_id.clone(),
        listen: node.config.listen,
        address: None,
        client_auth_optional: node.config.client_auth == crate::layout::ClientAuth::Optional,
        tls: node.tls.clone(),
        orderers: node.config.orderers.clone(),
        endorsers: node.config.endorsers.clone().into_iter().collect(),
        genesis: node.genesis.clone(),
        validation_threads: threads(&node),
        metrics,
        known_signatures: peer::known::process_signatures(),
    };
    let signer = Arc::new(IdentitySigner::new(node.identity));
    let mut contracts = contracts;
    for (name, server) in &node.config.chaincodes {
        // A contract the channel does not define yet is allowed, as a Fabric peer with a package installed:
        // it runs once a definition of that name is committed.
        let tls_ca_pem = match &server.tls_ca {
            Some(p) => Some(std::fs::read(p).map_err(|e| {
                RunError::Load(LoadError::Identity { path: p.clone(), message: e.to_string() })
            })?),
            None => None,
        };
        contracts.retain(|c| c.name() != name);
        let mut cc = peer::ccaas::ExternalChaincode::new(
            name,
            peer::ccaas::ChaincodeEndpoint {
                address: server.address.clone(),
                tls_ca_pem,
                client_identity: (!node.tls.cert_pem.is_empty())
                    .then(|| (node.tls.cert_pem.clone(), node.tls.key_pem.clone())),
            },
        );
        if let Some(secs) = server.execute_timeout_secs {
            cc = cc.with_timeout(std::time::Duration::from_secs(secs.max(1)));
        }
        if let Some(b) = &node.channel.batch {
            cc = cc.with_max_value(b.absolute_max_bytes as usize);
        }
        contracts.push(Arc::new(cc));
    }
    Ok(PeerNode::start(cfg, blocks, state, ids, signer, contracts, shutdown).await?)
}

/// The orderer's broadcast check: the creator must be a valid member of a writer organization and its
/// signature over the envelope must verify. (The orderer's check is admission control; the peers'
/// validation decides.)
pub struct MspAuthorizer {
    ids: Arc<dyn peer::identity::Identities>,
    writers: std::collections::HashSet<String>,
    readers: std::collections::HashSet<String>,
    gate: peer::tls_gate::TlsGate,
}

impl MspAuthorizer {
    /// An authorizer over the channel's identities, writer organizations and TLS CAs.
    pub fn new(
        ids: Arc<dyn peer::identity::Identities>,
        channel: &ledger_types::proto::ChannelConfig,
    ) -> Result<MspAuthorizer, String> {
        Ok(MspAuthorizer {
            ids,
            writers: channel.writers.iter().cloned().collect(),
            readers: channel.readers.iter().cloned().collect(),
            gate: peer::tls_gate::TlsGate::from_config(channel)?,
        })
    }

    /// Validates a creator at the orderer's clock.
    fn creator(&self, bytes: &[u8]) -> Result<Arc<peer::identity::ValidatedIdentity>, orderer::Denied> {
        self.ids.validate(bytes, crate::unix_now().as_secs()).map_err(orderer::Denied)
    }
}

impl orderer::EnvelopeAuthorizer for MspAuthorizer {
    fn authorize_seek(&self, creator: &[u8], signed: &[u8], signature: &[u8]) -> Result<(), orderer::Denied> {
        let id = self.creator(creator)?;
        if !self.readers.contains(&id.msp_id) {
            return Err(orderer::Denied(format!("{} is not a reader of this channel", id.msp_id)));
        }
        if !self.ids.verify(&id, signed, signature) {
            return Err(orderer::Denied("the seek request's signature does not verify".into()));
        }
        Ok(())
    }

    fn authorize_cluster(&self, client_certs: &[Vec<u8>]) -> Result<(), orderer::Denied> {
        self.gate.authorize_cluster(client_certs, crate::unix_now().as_secs()).map_err(orderer::Denied)
    }

    fn authorize_admin(&self, client_certs: &[Vec<u8>]) -> Result<(), orderer::Denied> {
        self.gate.authorize_admin(client_certs, crate::unix_now().as_secs()).map_err(orderer::Denied)
    }

    fn authorize_broadcast(&self, tx: &ledger_types::tx::DecodedTx) -> Result<(), orderer::Denied> {
        let creator = self.creator(tx.creator())?;
        if !self.writers.contains(&creator.msp_id) {
            return Err(orderer::Denied(format!("{} is not a writer of this channel", creator.msp_id)));
        }
        if !self.ids.verify(&creator, tx.signed_bytes(), tx.signature()) {
            return Err(orderer::Denied("the envelope's creator signature does not verify".into()));
        }
        Ok(())
    }

    fn authorize_broadcast_batch(
        &self,
        txs: &[ledger_types::tx::DecodedTx],
    ) -> Vec<Result<(), orderer::Denied>> {
        use peer::identity::SigCheck;
        let mut verdicts: Vec<Result<(), orderer::Denied>> = Vec::with_capacity(txs.len());
        let mut creators = Vec::with_capacity(txs.len());
        for tx in txs {
            match self.creator(tx.creator()) {
                Ok(c) if self.writers.contains(&c.msp_id) => {
                    verdicts.push(Ok(()));
                    creators.push(Some(c));
                }
                Ok(c) => {
                    verdicts
                        .push(Err(orderer::Denied(format!("{} is not a writer of this channel", c.msp_id))));
                    creators.push(None);
                }
                Err(e) => {
                    verdicts.push(Err(e));
                    creators.push(None);
                }
            }
        }
        let (idx, checks): (Vec<usize>, Vec<SigCheck<'_>>) = txs
            .iter()
            .zip(&creators)
            .enumerate()
            .filter_map(|(i, (tx, c))| {
                c.as_ref().map(|c| (i, SigCheck { identity: c, msg: tx.signed_bytes(), sig: tx.signature() }))
            })
            .unzip();
        for (i, ok) in idx.into_iter().zip(self.ids.verify_batch(&checks)) {
            if !ok {
                verdicts[i] = Err(orderer::Denied("the envelope's creator signature does not verify".into()));
            }
        }
        verdicts
    }
}

/// Opens an orderer's block store and Raft log under its data dir and starts it.
pub async fn start_orderer(
    node: LoadedNode,
    shutdown: CancellationToken,
) -> Result<orderer::OrdererHandle, RunError> {
    Ok(start_orderer_with_store(node, ops::OrdererMetrics::default(), shutdown).await?.0)
}

/// [`start_orderer`], counting into `metrics` (the process's operations service) and also returning its block
/// store (for the operations service's block height).
pub async fn start_orderer_with_store(
    node: LoadedNode,
    metrics: ops::OrdererMetrics,
    shutdown: CancellationToken,
) -> Result<(orderer::OrdererHandle, Arc<FileBlockStore>), RunError> {
    if node.config.role != NodeRole::Orderer {
        return Err(RunError::WrongRole(node.config.name.clone(), NodeRole::Orderer));
    }
    let dir = node.config.data_dir.clone();
    let store_err = |source| RunError::Store { dir: dir.clone(), source };
    std::fs::create_dir_all(&dir).map_err(|e| store_err(StoreError::Io(e)))?;
    let blocks = Arc::new(FileBlockStore::open(dir.join("blocks")).map_err(store_err)?);
    // The envelopes this orderer admits come back to the process's peers in blocks: what it verifies is
    // remembered for them, and the block signatures it makes are known to them (peer::known).
    let known = peer::known::process_signatures();
    let ids: Arc<dyn peer::identity::Identities> =
        Arc::new(peer::known::RecognisingIdentities::new(Arc::new(node.identities()?), known.clone()));
    let authorizer = Arc::new(MspAuthorizer::new(ids, &node.channel).map_err(RunError::Orderer)?);
    // The other orderers will admit this one to the cluster only by its TLS certificate's role: say so now
    // rather than fail every Raft call (material made before TLS certificates carried the role OU).
    let own_tls = msp::certs_from_pem(&node.tls.cert_pem).map_err(|e| RunError::Orderer(e.to_string()))?;
    if let Err(e) = authorizer.gate.authorize_cluster(&own_tls, crate::unix_now().as_secs()) {
        return Err(RunError::Orderer(format!(
            "{}: its TLS certificate would not be admitted to the ordering cluster ({e}); material made by an \
             ipechain before 2026-12 has no role in its TLS certificates: generate the network again \
             (`ipechain keys generate`, or `ipechain up` with a new --data-dir)",
            node.config.name
        )));
    }
    let raft_id = node.config.raft_id.ok_or_else(|| {
        RunError::Orderer(format!("{}: raft_id missing in the node config", node.config.name))
    })?;
    let mut cfg = orderer::OrdererConfig::new(
        node.config.name.clone(),
        node.config.msp_id.clone(),
        raft_id,
        node.config.listen,
        node.genesis.clone(),
        dir.join("raft"),
        blocks.clone(),
        Arc::new(peer::known::RecordingSigner::new(Arc::new(IdentitySigner::new(node.identity)), known)),
        node.tls.clone(),
    );
    cfg.authorizer = authorizer;
    cfg.metrics = metrics.for_orderer(&node.config.name);
    if let Some(n) = node.config.early_cut_below {
        cfg.early_cut_below = n;
    }
    let handle =
        orderer::OrdererNode::start(cfg, shutdown).await.map_err(|e| RunError::Orderer(e.to_string()))?;
    Ok((handle, blocks))
}
