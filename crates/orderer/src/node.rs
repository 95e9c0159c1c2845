//! The orderer shell: [`OrdererNode::start`] opens the Raft log, starts openraft, the sequencer and one
//! mutual-TLS gRPC listener serving `AtomicBroadcast`, `Cluster` and `Admin`.

use crate::authz::{AcceptAll, EnvelopeAuthorizer};
use crate::chain::Chain;
use crate::cutter::CutterConfig;
use crate::raft::fetch::BlockFetcher;
use crate::raft::log_store::{LogStore, OpenError};
use crate::raft::network::{MAX_RAFT_MESSAGE, Network};
use crate::raft::state_machine::StateMachine;
use crate::raft::{OrdererRaft, TypeConfig};
use crate::sequencer::{Errored, RaftChain, Sequencer, SequencerCore};
use crate::service::{Services, Shared};
use ledger_rpc::admin_server::AdminServer;
use ledger_rpc::atomic_broadcast_server::AtomicBroadcastServer;
use ledger_rpc::cluster_server::ClusterServer;
use ledger_rpc::tls::TlsMaterial;
use ledger_types::BlockExt;
use ledger_types::config::{ConfigError, config_from_genesis};
use ledger_types::proto::Block;
use ledger_types::store::{BlockStore, StoreError};
use ledger_types::tx::Signer;
use openraft::{BasicNode, SnapshotPolicy};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

/// Raft timing (milliseconds).
///
/// openraft 0.9 also uses the heartbeat interval as the timeout of every AppendEntries RPC, the ones that
/// carry blocks included: the follower must receive the entries, write them durably and answer within it.
/// A timeout puts that follower's replication in a 500 ms backoff, the next attempt carries more entries, and
/// a follower that gets no append through for an election timeout (plus the leader lease) starts an
/// election. With the former 100 ms, a ~1 MB block under load timed out in 5 of 8 `bench ledger`
/// invocations on the 2-core dev machine and set off election storms in some (docs/ledger-perf.md, tenth
/// round). The defaults give a block 250 ms, and elections 5 to 10 heartbeats (etcd's advice is about 10;
/// Fabric's etcdraft defaults are 500 ms heartbeats and a 5 s election timeout): a follower notices a lost
/// leader after the lease (`election_max_ms`) plus its election timeout, 3.75 to 5 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftTimings {
    /// Leader heartbeat interval, and the AppendEntries timeout.
    pub heartbeat_ms: u64,
    /// Election timeout is drawn from `[election_min_ms, election_max_ms)`.
    pub election_min_ms: u64,
    /// See `election_min_ms`.
    pub election_max_ms: u64,
}

impl Default for RaftTimings {
    fn default() -> RaftTimings {
        RaftTimings { heartbeat_ms: 250, election_min_ms: 1250, election_max_ms: 2500 }
    }
}

/// Everything an orderer needs; built by `ipechain node`/`ipechain up`.
#[derive(Clone)]
pub struct OrdererConfig {
    /// Node name shown by `status` (e.g. `orderer1.example.com`).
    pub name: String,
    /// MSP id of the orderer's organization.
    pub msp_id: String,
    /// This orderer's Raft id: one of the genesis block's consenter ids.
    pub node_id: u64,
    /// Where to listen (the consenter's host:port, or port 0 in tests that read [`OrdererHandle::local_addr`]).
    pub listen: SocketAddr,
    /// The channel's genesis block (its config names the consenters and batch limits).
    pub genesis: Block,
    /// Directory of the Raft log (`raft-log.redb`); created if missing.
    pub data_dir: PathBuf,
    /// The orderer's chain of blocks; the genesis block is appended when it is empty.
    pub block_store: Arc<dyn BlockStore>,
    /// Signs the header hash of every block this orderer cuts (its identity should be its consenter identity).
    pub signer: Arc<dyn Signer>,
    /// Mutual-TLS material for the listener and for connections to the other orderers.
    pub tls: TlsMaterial,
    /// Name to verify in the other orderers' certificates; `None`: each consenter's host.
    pub tls_server_name: Option<String>,
    /// Authorizes Broadcast and Deliver callers.
    pub authorizer: Arc<dyn EnvelopeAuthorizer>,
    /// Raft timing.
    pub raft: RaftTimings,
    /// How long `Broadcast` waits for the envelope's block to be committed before answering Unavailable.
    pub order_timeout: Duration,
    /// Take a Raft snapshot every this many log entries and purge the log before it, keeping this many
    /// entries for orderers that lag a little; 0: never snapshot, never purge. Default
    /// [`DEFAULT_SNAPSHOT_EVERY`].
    pub snapshot_every: u64,
    /// Where the sequencer's metrics go (`Default`: a private set nobody reads; docs/operations.md).
    pub metrics: ops::SequencerMetrics,
    /// Early cuts at low load: while fewer than this many envelopes arrived within the last ten batch
    /// timeouts, the Raft leader cuts the pending batch as soon as none of its blocks is in flight
    /// (docs/ordering.md, "How blocks are cut"). 0: never, only the cutter's rules (Fabric's behaviour).
    /// Default [`DEFAULT_EARLY_CUT_BELOW`]. Only the leader's timing depends on it: orderers need not agree.
    pub early_cut_below: usize,
}

/// The default of [`OrdererConfig::early_cut_below`]: 32 envelopes per batch timeout on average.
/// `bench ledger --apps 2000` brings ~380 per 100 ms, `bench interworking --apps 1000` ~250, a single
/// sequential client one.
pub const DEFAULT_EARLY_CUT_BELOW: usize = 320;

/// Raft log entries between snapshots, and entries kept after one. An entry is a whole block (up to
/// `absolute_max_bytes`, about 1 MB under load), so the log holds at most about twice this many blocks:
/// 64 keeps it near 128 MB per orderer. Fabric's etcdraft snapshots by size for the same reason
/// (`SnapshotIntervalSize`, 16 MB by default). Keeping 1,000 entries, as `up` did before, let the log's redb
/// file grow past a gigabyte during a benchmark, and its writes grew dearer per block as it did (1.8 times
/// after 70 s, measured against the peers' state commits of the same profile; docs/ledger-perf.md, eighth
/// round). An orderer further behind than the kept entries installs a snapshot and fetches the blocks from
/// the others' `Deliver` (docs/ordering.md), which costs it the same block transfers, not more.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 64;

impl OrdererConfig {
    /// A config with defaults for the optional parts (accept-all authorizer, default timings, 10 s timeout,
    /// a snapshot every [`DEFAULT_SNAPSHOT_EVERY`] entries).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: impl Into<String>,
        msp_id: impl Into<String>,
        node_id: u64,
        listen: SocketAddr,
        genesis: Block,
        data_dir: impl Into<PathBuf>,
        block_store: Arc<dyn BlockStore>,
        signer: Arc<dyn Signer>,
        tls: TlsMaterial,
    ) -> OrdererConfig {
        OrdererConfig {
            name: name.into(),
            msp_id: msp_id.into(),
            node_id,
            listen,
            genesis,
            data_dir: data_dir.into(),
            block_store,
            signer,
            tls,
            tls_server_name: None,
            authorizer: Arc::new(AcceptAll),
            raft: RaftTimings::default(),
            order_timeout: Duration::from_secs(10),
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            metrics: ops::SequencerMetrics::default(),
            early_cut_below: DEFAULT_EARLY_CUT_BELOW,
        }
    }
}

/// Why an orderer could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The genesis block or its channel config is unusable.
    #[error("genesis: {0}")]
    Genesis(#[from] ConfigError),
    /// `node_id` is not among the consenters.
    #[error("node id {0} is not a consenter of the channel")]
    NotConsenter(u64),
    /// The block store holds a different chain.
    #[error("block store holds another chain: {0}")]
    OtherChain(String),
    /// The block store failed.
    #[error("block store: {0}")]
    Store(#[from] StoreError),
    /// The Raft log could not be opened.
    #[error(transparent)]
    Log(#[from] OpenError),
    /// Filesystem or socket.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// Raft refused the configuration or failed to start.
    #[error("raft: {0}")]
    Raft(String),
    /// The TLS material is unusable.
    #[error("tls: {0}")]
    Tls(String),
    /// The block store is behind the last Raft snapshot and the missing blocks could not be fetched.
    #[error("catching up the block store: {0}")]
    CatchUp(String),
}

/// Starts orderers.
#[derive(Debug, Clone, Copy)]
pub struct OrdererNode;

/// A running orderer. Dropping it stops it abruptly (like a crash, but the process lives on); call
/// [`OrdererHandle::shutdown`] to stop it cleanly.
pub struct OrdererHandle {
    local_addr: SocketAddr,
    chain: Arc<RaftChain>,
    raft: OrdererRaft,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    streams: tokio_util::task::TaskTracker,
}

impl OrdererNode {
    /// Starts an orderer: opens its Raft log, joins the cluster of the genesis block's consenters, and
    /// serves gRPC on `config.listen` until [`OrdererHandle::shutdown`] or `shutdown` is cancelled.
    pub async fn start(
        config: OrdererConfig,
        shutdown: CancellationToken,
    ) -> Result<OrdererHandle, StartError> {
        let channel = config_from_genesis(&config.genesis)?;
        let batch = channel.batch.ok_or_else(|| ConfigError::Invalid("no batch config".into()))?;
        let Some(me) = channel.consenters.iter().find(|c| c.id == config.node_id) else {
            return Err(StartError::NotConsenter(config.node_id));
        };
        if me.identity != config.signer.serialized_identity() {
            tracing::warn!(
                id = config.node_id,
                "the signer's identity is not this consenter's identity in the channel config: peers checking \
                 block signatures against the consenters will refuse the blocks this orderer cuts"
            );
        }
        let store = config.block_store.clone();
        if store.height() == 0 {
            store.append(&config.genesis)?;
        } else {
            let ours = store.block(0)?.map(|b| b.header_hash());
            if ours != Some(config.genesis.header_hash()) {
                return Err(StartError::OtherChain(format!(
                    "genesis hash {:?} differs from the configured {}",
                    ours,
                    config.genesis.header_hash()
                )));
            }
        }
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::Io {
            what: format!("creating {}", config.data_dir.display()),
            source,
        })?;
        let log = LogStore::open(&config.data_dir.join("raft-log.redb")).await?;

        let peers: BTreeMap<u64, String> =
            channel.consenters.iter().map(|c| (c.id, format!("{}:{}", c.host, c.port))).collect();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (height_tx, height_rx) = watch::channel(store.height());
        let errored: Errored = Arc::new(Mutex::new(None));
        let network =
            Network::new(config.tls.clone(), config.tls_server_name.clone(), config.data_dir.clone());
        let fetcher = BlockFetcher {
            network: network.clone(),
            peers: peers.clone(),
            self_id: config.node_id,
            channel_id: channel.channel_id.clone(),
            dir: config.data_dir.clone(),
        };
        let sm = StateMachine::open(
            store.clone(),
            log.db(),
            events_tx.clone(),
            Arc::new(height_tx),
            errored.clone(),
            fetcher,
        )
        .await
        .map_err(StartError::CatchUp)?;
        let (snapshot_policy, keep) = match config.snapshot_every {
            0 => (SnapshotPolicy::Never, u64::MAX),
            n => (SnapshotPolicy::LogsSinceLast(n), n),
        };
        let raft_config = openraft::Config {
            cluster_name: channel.channel_id.clone(),
            heartbeat_interval: config.raft.heartbeat_ms,
            election_timeout_min: config.raft.election_min_ms,
            election_timeout_max: config.raft.election_max_ms,
            // A snapshot is the applied position; the log before it (less `keep` entries) is purged. An
            // orderer behind the purged part gets the snapshot and fetches the blocks (docs/ordering.md).
            snapshot_policy,
            max_in_snapshot_log_to_keep: keep,
            purge_batch_size: (keep / 4).clamp(1, 1024),
            install_snapshot_timeout: 30_000,
            // Entries per AppendEntries: each is a block of up to `absolute_max_bytes`, and the RPC must finish
            // within the heartbeat interval (above), so a follower catching up gets them a few at a time.
            max_payload_entries: 8,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let raft = openraft::Raft::<TypeConfig>::new(
            config.node_id,
            Arc::new(raft_config),
            network.clone(),
            log,
            sm,
        )
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let cancel = shutdown.child_token();
        let initialized = raft.is_initialized().await.map_err(|e| StartError::Raft(e.to_string()))?;
        // Started later, with the other tasks, so that shutdown stops it.
        let mut bootstrap = None;
        if !initialized {
            let members: BTreeMap<u64, BasicNode> =
                peers.iter().map(|(id, addr)| (*id, BasicNode { addr: addr.clone() })).collect();
            bootstrap = Some(Bootstrap {
                raft: raft.clone(),
                members,
                first: peers.keys().next() == Some(&config.node_id),
                settle: Duration::from_millis(config.raft.heartbeat_ms),
                patience: Duration::from_millis(config.raft.election_max_ms.saturating_mul(3)),
            });
        }

        let chain = Arc::new(RaftChain::new(
            config.node_id,
            channel.channel_id.clone(),
            raft.clone(),
            events_tx.clone(),
            peers,
            network,
            config.order_timeout,
            errored.clone(),
        ));
        let sequencer = Sequencer::new(
            raft.clone(),
            store.clone(),
            config.signer.clone(),
            SequencerCore::new(CutterConfig::from(batch), config.early_cut_below),
            events_tx,
            errored,
            config.metrics.clone(),
        );
        let mut tasks = vec![tokio::spawn(sequencer.run(events_rx, cancel.clone()))];
        if let Some(b) = bootstrap {
            tasks.push(tokio::spawn(b.run(cancel.clone())));
        }

        let streams = tokio_util::task::TaskTracker::new();
        let shared = Arc::new(Shared {
            name: config.name.clone(),
            msp_id: config.msp_id.clone(),
            channel_id: channel.channel_id.clone(),
            absolute_max_bytes: batch.absolute_max_bytes as usize,
            chain: chain.clone(),
            raft: raft.clone(),
            store,
            height: height_rx,
            authorizer: config.authorizer.clone(),
            cancel: cancel.clone(),
            streams: streams.clone(),
        });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Io { what: format!("binding {}", config.listen), source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartError::Io { what: "local address".into(), source })?;
        let fabric = crate::fabric_ab::FabricAtomicBroadcast(shared.clone());
        let services = Services(shared);
        let server = tonic::transport::Server::builder()
            .tls_config(config.tls.server_config())
            .map_err(|e| StartError::Tls(e.to_string()))?
            .add_service(
                // Batches of envelopes from peers can exceed tonic's 4 MiB default.
                AtomicBroadcastServer::new(services.clone())
                    .max_decoding_message_size(MAX_RAFT_MESSAGE)
                    .max_encoding_message_size(MAX_RAFT_MESSAGE),
            )
            // Fabric's orderer.AtomicBroadcast, for Fabric's SDKs and tools.
            .add_service(
                fabric_protos::orderer::atomic_broadcast_server::AtomicBroadcastServer::new(fabric)
                    .max_decoding_message_size(MAX_RAFT_MESSAGE)
                    .max_encoding_message_size(MAX_RAFT_MESSAGE),
            )
            // Cluster and Admin refuse callers that are not orderers (admins) before decoding anything.
            .add_service(InterceptedService::new(
                ClusterServer::new(services.clone())
                    .max_decoding_message_size(MAX_RAFT_MESSAGE)
                    .max_encoding_message_size(MAX_RAFT_MESSAGE),
                gate(config.authorizer.clone(), |a, c| a.authorize_cluster(c)),
            ))
            .add_service(InterceptedService::new(
                AdminServer::new(services),
                gate(config.authorizer.clone(), |a, c| a.authorize_admin(c)),
            ));
        let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let stop = cancel.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = server.serve_with_incoming_shutdown(incoming, stop.cancelled_owned()).await {
                tracing::error!("orderer gRPC server: {e}");
            }
        }));
        tracing::info!(name = %config.name, id = config.node_id, %local_addr, "orderer started");
        Ok(OrdererHandle { local_addr, chain, raft, cancel, tasks, streams })
    }
}

/// The first start of a new cluster: which consenter initializes Raft, and when.
///
/// openraft's `initialize` writes the membership and campaigns at once. When every consenter did so at
/// start, the one started last campaigned for term 1 after term 1 had a leader; once the leader lease ran
/// out a node moved its vote to that newcomer and a term-2 election followed, a second or two after every
/// first `up`. Now only the consenter with the lowest id initializes at once; its leader replicates the
/// membership to the others, which then count as initialized. Another consenter initializes itself (with the
/// same membership, which openraft allows) only if no leader has reached it within three election timeouts,
/// so a cluster whose lowest consenter is down at its first start still forms. The lowest consenter waits
/// one heartbeat interval first: `ipechain up` starts the orderers a few milliseconds apart, and a vote
/// requested before the others listen fails (logged as errors by openraft) and costs an election timeout.
struct Bootstrap {
    raft: OrdererRaft,
    members: BTreeMap<u64, BasicNode>,
    first: bool,
    settle: Duration,
    patience: Duration,
}

impl Bootstrap {
    async fn run(self, cancel: CancellationToken) {
        let wait = if self.first { self.settle } else { self.patience };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        if !self.first {
            match self.raft.is_initialized().await {
                Ok(false) => {
                    tracing::info!("no leader reached this orderer: initializing the cluster itself")
                }
                Ok(true) | Err(_) => return,
            }
        }
        if let Err(e) = self.raft.initialize(self.members).await {
            tracing::info!("raft initialize: {e}");
        }
    }
}

impl OrdererHandle {
    /// The address the gRPC listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The ordering seam (what `Broadcast` calls), e.g. for an in-process gateway.
    pub fn chain(&self) -> Arc<dyn Chain> {
        self.chain.clone()
    }

    /// The Raft handle (metrics, leader).
    pub fn raft(&self) -> &OrdererRaft {
        &self.raft
    }

    /// Stops serving, stops Raft and waits for the tasks to end. Everything acknowledged is durable already.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for t in self.tasks.drain(..) {
            // The gRPC server drains open connections gracefully; do not wait on a stuck one for ever.
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), t).await.is_err() {
                abort.abort();
            }
        }
        let _ = self.raft.shutdown().await;
        // The streams' tasks end on the cancellation (or when their client goes); until they have, they hold
        // the block store, and a new start over the same directory would find its index locked.
        self.streams.close();
        if tokio::time::timeout(Duration::from_secs(5), self.streams.wait()).await.is_err() {
            tracing::warn!("orderer: stream tasks still running 5 s after shutdown");
        }
    }
}

impl Drop for OrdererHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
        for t in &self.tasks {
            t.abort();
        }
        let raft = self.raft.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = raft.shutdown().await;
            });
        }
    }
}

/// One of the authorizer's checks of a caller's TLS certificates.
type CertCheck = fn(&dyn EnvelopeAuthorizer, &[Vec<u8>]) -> Result<(), crate::authz::Denied>;

/// An interceptor that lets a request through only when `check` admits its client certificates.
fn gate(
    authorizer: Arc<dyn EnvelopeAuthorizer>,
    check: CertCheck,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |req: tonic::Request<()>| {
        check(authorizer.as_ref(), &crate::service::client_certs(&req))
            .map(|()| req)
            .map_err(|e| tonic::Status::permission_denied(format!("403: {e}")))
    }
}
