//! Test fixtures: certificates (rcgen), an in-memory block store, a fake signer, envelopes, a cluster.

use ledger_rpc::admin_client::AdminClient;
use ledger_rpc::atomic_broadcast_client::AtomicBroadcastClient;
use ledger_rpc::messages::{DeliverRequest, NodeStatus, StatusRequest};
use ledger_rpc::tls::TlsMaterial;
use ledger_types::BlockExt;
use ledger_types::config::genesis_block;
use ledger_types::hash::Hash32;
use ledger_types::proto::{
    BatchConfig, Block, ChannelConfig, Consenter, Envelope, OrgConfig, Response, Timestamp, TxRwSet,
};
use ledger_types::store::{BlockStore, StoreError, TxLocation};
use ledger_types::tx::{
    DecodedTx, ProposalBuilder, Signer, assemble, endorse, response_payload, serialize_identity,
    sign_envelope,
};
use ledger_types::{ChannelId, TxId, TxValidationCode};
use orderer::{EnvelopeAuthorizer, OrdererConfig, OrdererHandle, OrdererNode, RaftTimings};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

pub(crate) const CHANNEL: &str = "iot";

/// One CA; every node and client gets a certificate for localhost / 127.0.0.1 from it.
pub(crate) struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki { ca }
    }

    pub(crate) fn ca_der(&self) -> Vec<u8> {
        self.ca.der().to_vec()
    }

    pub(crate) fn issue(&self) -> TlsMaterial {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.ca).unwrap();
        TlsMaterial {
            cert_pem: cert.pem().into_bytes(),
            key_pem: key.serialize_pem().into_bytes(),
            ca_pems: vec![self.ca.pem().into_bytes()],
        }
    }
}

/// A BlockStore in memory (the real ones are in `ledger-store`).
#[derive(Default)]
pub(crate) struct MemStore {
    inner: Mutex<(Vec<Block>, HashMap<String, TxLocation>)>,
}

impl BlockStore for MemStore {
    fn height(&self) -> u64 {
        self.inner.lock().unwrap().0.len() as u64
    }

    fn last_hash(&self) -> Option<Hash32> {
        self.inner.lock().unwrap().0.last().map(Block::header_hash)
    }

    fn append(&self, block: &Block) -> Result<(), StoreError> {
        let mut g = self.inner.lock().unwrap();
        let height = g.0.len() as u64;
        if block.number() != height {
            return Err(StoreError::NotNext(format!("number {} at height {height}", block.number())));
        }
        block.check_links(g.0.last()).map_err(|e| StoreError::NotNext(e.to_string()))?;
        for (i, env) in block.envelopes().iter().enumerate() {
            if let Ok(tx) = DecodedTx::decode(env) {
                g.1.entry(tx.tx_id().to_owned()).or_insert(TxLocation {
                    block: height,
                    index: i as u32,
                    code: TxValidationCode::NotValidated,
                });
            }
        }
        g.0.push(block.clone());
        Ok(())
    }

    fn block(&self, number: u64) -> Result<Option<Block>, StoreError> {
        Ok(self.inner.lock().unwrap().0.get(number as usize).cloned())
    }

    fn tx_location(&self, tx_id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        Ok(self.inner.lock().unwrap().1.get(tx_id.as_str()).copied())
    }
}

impl MemStore {
    pub(crate) fn blocks(&self) -> Vec<Block> {
        self.inner.lock().unwrap().0.clone()
    }
}

/// A signer that is not cryptography: "signature" = SHA-256(secret || msg).
pub(crate) struct FakeSigner {
    identity: Vec<u8>,
    secret: Vec<u8>,
}

impl FakeSigner {
    pub(crate) fn new(msp: &str, name: &str) -> FakeSigner {
        FakeSigner { identity: serialize_identity(msp, name.as_bytes()), secret: name.as_bytes().to_vec() }
    }
}

impl Signer for FakeSigner {
    fn serialized_identity(&self) -> &[u8] {
        &self.identity
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        Hash32::of_parts([self.secret.as_slice(), msg]).0.to_vec()
    }
}

/// A signed, endorsed transaction envelope on `channel` carrying `arg`.
pub(crate) fn envelope(channel: &str, arg: &[u8], seq: u64) -> (Envelope, String) {
    let client = FakeSigner::new("Org1MSP", "client");
    let peer = FakeSigner::new("Org1MSP", "peer0");
    let (sp, tx_id) = ProposalBuilder::new(ChannelId::parse(channel).unwrap(), "sample", "put")
        .arg(arg.to_vec())
        .sign(&client, seq.to_be_bytes().to_vec(), Timestamp { seconds: 1, nanos: 0 });
    let unpacked = ledger_types::fabric_protos::tx::unpack_proposal(&sp).unwrap();
    let ok = Response { status: 200, message: String::new(), payload: Vec::new() };
    let payload = response_payload(&unpacked, "", &TxRwSet::default(), None, &ok).unwrap();
    let resp = endorse(&peer, &ok, &payload);
    let tx = assemble(&sp, &[resp]).unwrap();
    (sign_envelope(&client, &tx), tx_id.as_str().to_owned())
}

pub(crate) fn batch() -> BatchConfig {
    BatchConfig {
        max_message_count: 50,
        preferred_max_bytes: 32 * 1024,
        absolute_max_bytes: 64 * 1024,
        batch_timeout_ms: 30,
    }
}

pub(crate) fn genesis(pki: &Pki, ports: &[u16]) -> Block {
    let org = |msp: &str| OrgConfig {
        msp_id: msp.into(),
        name: msp.into(),
        root_certs: vec![pki.ca_der()],
        tls_root_certs: vec![pki.ca_der()],
        peer_endpoints: vec![],
    };
    let config = ChannelConfig {
        channel_id: CHANNEL.into(),
        orgs: vec![org("Org1MSP")],
        orderer_orgs: vec![org("OrdererMSP")],
        consenters: ports
            .iter()
            .enumerate()
            .map(|(i, p)| Consenter {
                id: i as u64 + 1,
                host: "127.0.0.1".into(),
                port: u32::from(*p),
                identity: serialize_identity("OrdererMSP", format!("orderer{}", i + 1).as_bytes()),
            })
            .collect(),
        batch: Some(batch()),
        readers: vec!["Org1MSP".into()],
        writers: vec!["Org1MSP".into()],
        admins: vec!["Org1MSP".into()],
        contracts: vec![],
    };
    genesis_block(&config).unwrap()
}

/// A cluster of orderers in this process.
pub(crate) struct Cluster {
    pub(crate) pki: Pki,
    pub(crate) genesis: Block,
    pub(crate) ports: Vec<u16>,
    pub(crate) dirs: tempfile::TempDir,
    pub(crate) nodes: Vec<Option<(OrdererHandle, Arc<MemStore>)>>,
    pub(crate) client_tls: TlsMaterial,
    pub(crate) cancel: CancellationToken,
    pub(crate) authorizer: Option<Arc<dyn EnvelopeAuthorizer>>,
    pub(crate) order_timeout: Duration,
    pub(crate) snapshot_every: u64,
    /// Faster than the defaults, so that failover tests run quickly.
    pub(crate) raft: RaftTimings,
    /// Each orderer's `early_cut_below` (default: the orderer's default).
    pub(crate) early_cut_below: usize,
    /// Each orderer's sequencer metrics.
    pub(crate) metrics: Vec<ops::SequencerMetrics>,
}

impl Cluster {
    pub(crate) fn new(n: usize) -> Cluster {
        let pki = Pki::new();
        let ports: Vec<u16> = (0..n).map(|_| test_support::free_tcp_port()).collect();
        let genesis = genesis(&pki, &ports);
        let client_tls = pki.issue();
        Cluster {
            pki,
            genesis,
            ports,
            dirs: tempfile::tempdir().unwrap(),
            nodes: (0..n).map(|_| None).collect(),
            client_tls,
            cancel: CancellationToken::new(),
            authorizer: None,
            order_timeout: Duration::from_secs(10),
            // Small, so that every cluster test snapshots and purges its Raft logs.
            snapshot_every: 16,
            raft: RaftTimings { heartbeat_ms: 100, election_min_ms: 500, election_max_ms: 1000 },
            early_cut_below: orderer::DEFAULT_EARLY_CUT_BELOW,
            metrics: (0..n).map(|_| ops::SequencerMetrics::default()).collect(),
        }
    }

    /// Starts orderer `i` (0-based) on a fresh in-memory block store and its persistent data dir.
    pub(crate) async fn start(&mut self, i: usize) {
        let store = Arc::new(MemStore::default());
        self.start_with(i, store.clone(), store).await;
    }

    /// Starts orderer `i` on `node_store`, whose blocks end up in `inspect` (for wrappers injecting faults).
    pub(crate) async fn start_with(
        &mut self,
        i: usize,
        node_store: Arc<dyn BlockStore>,
        inspect: Arc<MemStore>,
    ) {
        let store = inspect;
        let addr: SocketAddr = format!("127.0.0.1:{}", self.ports[i]).parse().unwrap();
        let dir = self.data_dir(i);
        let mut cfg = OrdererConfig::new(
            format!("orderer{}", i + 1),
            "OrdererMSP",
            i as u64 + 1,
            addr,
            self.genesis.clone(),
            dir,
            node_store,
            Arc::new(FakeSigner::new("OrdererMSP", &format!("orderer{}", i + 1))),
            self.pki.issue(),
        );
        cfg.tls_server_name = Some("localhost".into());
        cfg.raft = self.raft;
        cfg.order_timeout = self.order_timeout;
        cfg.snapshot_every = self.snapshot_every;
        cfg.early_cut_below = self.early_cut_below;
        cfg.metrics = self.metrics[i].clone();
        if let Some(a) = &self.authorizer {
            cfg.authorizer = a.clone();
        }
        let handle = OrdererNode::start(cfg, self.cancel.child_token()).await.unwrap();
        self.nodes[i] = Some((handle, store));
    }

    pub(crate) async fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i).await;
        }
    }

    /// Crashes orderer `i`: its tasks are aborted and its in-memory blocks are gone.
    pub(crate) fn kill(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// The data directory of orderer `i` (also names its failpoints).
    pub(crate) fn data_dir(&self, i: usize) -> PathBuf {
        self.dirs.path().join(format!("orderer{}", i + 1))
    }

    pub(crate) fn handle(&self, i: usize) -> &OrdererHandle {
        &self.nodes[i].as_ref().unwrap().0
    }

    pub(crate) fn store(&self, i: usize) -> Arc<MemStore> {
        self.nodes[i].as_ref().unwrap().1.clone()
    }

    pub(crate) fn channel(&self, i: usize) -> Channel {
        Endpoint::from_shared(format!("https://127.0.0.1:{}", self.ports[i]))
            .unwrap()
            .tls_config(self.client_tls.client_config("localhost"))
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy()
    }

    pub(crate) fn broadcaster(&self, i: usize) -> AtomicBroadcastClient<Channel> {
        AtomicBroadcastClient::new(self.channel(i))
    }

    pub(crate) async fn status(&self, i: usize) -> NodeStatus {
        AdminClient::new(self.channel(i)).status(StatusRequest {}).await.unwrap().into_inner()
    }

    /// The Raft id of the leader, once a running node reports one.
    pub(crate) async fn leader(&self) -> u64 {
        for _ in 0..200 {
            for n in self.nodes.iter().flatten() {
                let m = n.0.raft().metrics().borrow().clone();
                if m.state == openraft::ServerState::Leader {
                    return m.id;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no leader elected");
    }

    /// Waits until every running node has the same height (>= `min`) and head hash; returns the height.
    pub(crate) async fn converge(&self, min: u64) -> u64 {
        let mut last = Vec::new();
        for _ in 0..300 {
            last = self.nodes.iter().flatten().map(|n| (n.1.height(), n.1.last_hash())).collect();
            if last.iter().all(|x| *x == last[0]) && last[0].0 >= min {
                return last[0].0;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nodes did not converge: {last:?}");
    }

    /// Reads blocks `0..=stop` through Deliver from node `i`.
    pub(crate) async fn deliver(
        &self,
        i: usize,
        start: u64,
        stop: Option<u64>,
    ) -> tonic::Streaming<ledger_rpc::messages::DeliverResponse> {
        self.broadcaster(i)
            .deliver(DeliverRequest { channel_id: CHANNEL.into(), start, stop })
            .await
            .unwrap()
            .into_inner()
    }
}

/// Every tx id in the chain, with the number of times it occurs.
pub(crate) fn tx_counts(blocks: &[Block]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for b in blocks.iter().skip(1) {
        for env in b.envelopes() {
            let tx = DecodedTx::decode(env).unwrap();
            *counts.entry(tx.tx_id().to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

/// A block store that fails every append after the first `ok` ones (a full or broken disk).
pub(crate) struct FailAfter {
    pub(crate) inner: Arc<MemStore>,
    pub(crate) ok: std::sync::atomic::AtomicUsize,
}

impl BlockStore for FailAfter {
    fn height(&self) -> u64 {
        self.inner.height()
    }
    fn last_hash(&self) -> Option<Hash32> {
        self.inner.last_hash()
    }
    fn append(&self, block: &Block) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.ok.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err() {
            return Err(StoreError::Io(std::io::Error::other("injected: disk failed")));
        }
        self.inner.append(block)
    }
    fn block(&self, number: u64) -> Result<Option<Block>, StoreError> {
        self.inner.block(number)
    }
    fn tx_location(&self, tx_id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        self.inner.tx_location(tx_id)
    }
}

/// Broadcasts `n` envelopes from worker `w`, each retried through the orderers in turn until one
/// acknowledges it (retries are safe: ordering is idempotent per tx id). Returns the acknowledged tx ids.
pub(crate) async fn load_worker(
    clients: Vec<AtomicBroadcastClient<Channel>>,
    w: u64,
    n: u64,
    acked: Arc<std::sync::atomic::AtomicUsize>,
) -> Vec<String> {
    load_until(clients, w, n, acked, Arc::new(std::sync::atomic::AtomicBool::new(false))).await
}

/// Like [`load_worker`], but stops early once `stop` is set.
pub(crate) async fn load_until(
    clients: Vec<AtomicBroadcastClient<Channel>>,
    w: u64,
    n: u64,
    acked: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<String> {
    let mut ids = Vec::new();
    for k in 0..n {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let (env, id) = envelope(CHANNEL, format!("w{w}k{k}").as_bytes(), w * 1_000_000 + k);
        let mut attempt = w as usize;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let mut cl = clients[attempt % clients.len()].clone();
            match tokio::time::timeout(Duration::from_secs(3), cl.broadcast(env.clone())).await {
                Ok(Ok(r)) if r.get_ref().status == 200 => break,
                // A retry of an envelope that was ordered after all (its answer was lost).
                Ok(Err(st)) if st.code() == tonic::Code::AlreadyExists => break,
                _ => {
                    attempt += 1;
                    assert!(tokio::time::Instant::now() < deadline, "tx {id} never acknowledged");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ids.push(id);
    }
    ids
}
