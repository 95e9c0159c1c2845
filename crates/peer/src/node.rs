//! The peer node shell: serves the gRPC services over mutual TLS and pulls blocks from the ordering
//! service, committing them in order.

use crate::endorser::Endorser;
use crate::fabric::{FabricDeliver, FabricEndorser, FabricGateway, GatewaySessions};
use crate::identity::Identities;
use crate::ledger::{CommitError, PeerLedger};
use crate::service::{AdminService, OrdererPool, PeerServices, RemoteEndorser};
use contract::Contract;
use fabric_protos::gateway::gateway_server::GatewayServer;
use fabric_protos::protos::deliver_server::DeliverServer;
use fabric_protos::protos::endorser_client::EndorserClient;
use fabric_protos::protos::endorser_server::EndorserServer;
use ledger_rpc::admin_server::AdminServer;
use ledger_rpc::gateway_session_server::GatewaySessionServer;
use ledger_rpc::messages::DeliverRequest;
use ledger_rpc::tls::{TlsMaterial, channel};
use ledger_types::BlockExt;
use ledger_types::proto::Block;
use ledger_types::store::{BlockStore, StateStore};
use ledger_types::tx::Signer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The largest gRPC message a peer accepts or sends (a block).
pub const MAX_MESSAGE: usize = 256 << 20;

/// What a peer node needs besides its stores and crypto.
#[derive(Clone, Debug)]
pub struct PeerNodeConfig {
    /// Node name, e.g. `peer0.org1`.
    pub name: String,
    /// Its organization.
    pub msp_id: String,
    /// Where to serve gRPC.
    pub listen: SocketAddr,
    /// The address clients reach this peer at, named in gateway error details (`None`: `listen`).
    pub address: Option<String>,
    /// TLS material (server and client side).
    pub tls: TlsMaterial,
    /// Let clients connect without a TLS certificate (Fabric's default; see `network::ClientAuth`). A
    /// certificate a client presents must still chain to a channel TLS CA; `Admin` demands an admin's.
    pub client_auth_optional: bool,
    /// Orderer endpoints `host:port`.
    pub orderers: Vec<String>,
    /// Peers of other organizations, by MSP id, for endorsements their policy needs.
    pub endorsers: HashMap<String, String>,
    /// The channel's genesis block.
    pub genesis: Block,
    /// Threads for signature verification.
    pub validation_threads: usize,
    /// Where the peer's metrics go (`Default`: a private set nobody reads; `docs/operations.md`).
    pub metrics: ops::PeerMetrics,
    /// Signatures known to be valid, recognised instead of verified (`crate::known`): the process's
    /// ([`crate::known::process_signatures`]) to share them with its other nodes, or a memory of its own.
    pub known_signatures: Arc<crate::known::KnownSignatures>,
}

/// Why a peer could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The ledger could not be opened or a commit failed fatally.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// gRPC transport setup or serving failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The channel configuration's TLS CAs are unusable.
    #[error("channel TLS CAs: {0}")]
    TlsCas(String),
}

/// A running peer.
pub struct PeerNode<B: BlockStore + 'static, S: StateStore + 'static> {
    /// The channel ledger.
    pub ledger: Arc<PeerLedger<B, S>>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    puller: JoinHandle<()>,
}

impl<B: BlockStore + 'static, S: StateStore + 'static> PeerNode<B, S>
where
    S::Snapshot: 'static,
{
    /// Opens the ledger (recovering it), starts serving and pulling blocks. Stops when `shutdown` fires.
    pub async fn start(
        config: PeerNodeConfig,
        blocks: B,
        state: S,
        ids: Arc<dyn Identities>,
        signer: Arc<dyn Signer>,
        contracts: Vec<Arc<dyn Contract>>,
        shutdown: CancellationToken,
    ) -> Result<PeerNode<B, S>, PeerError> {
        let threads = config.validation_threads.max(1);
        let genesis = config.genesis.clone();
        // The endorser remembers what it signs; validation recognises those signatures and the ones this
        // process verified already (an orderer's admission, the other peer's validation), and remembers what it
        // verifies; proposals are only recognised (crate::known).
        let known = config.known_signatures.clone();
        let ids2: Arc<dyn Identities> =
            Arc::new(crate::known::RecognisingIdentities::new(ids.clone(), known.clone()));
        let ids: Arc<dyn Identities> =
            Arc::new(crate::known::RecognisingIdentities::recognising_only(ids, known.clone()));
        let signer: Arc<dyn Signer> = Arc::new(crate::known::RecordingSigner::new(signer, known));
        let ledger =
            tokio::task::spawn_blocking(move || PeerLedger::open(&genesis, blocks, state, ids2, threads))
                .await
                .map_err(|e| CommitError::Store(ledger_types::store::StoreError::Backend(e.to_string())))??;
        let ledger = Arc::new(ledger);
        let metrics = config.metrics.for_peer(&config.name);
        metrics.set_height(ledger.height());
        let sig_batcher = crate::sigbatch::SigBatcher::start(ids.clone(), threads);
        let mut contracts = contracts;
        contracts.retain(|c| c.name() != crate::lifecycle::NAMESPACE);
        contracts.push(Arc::new(crate::lifecycle::LifecycleContract::new(ledger.config())));
        let max_value = ledger.config().batch.map_or(usize::MAX, |b| b.absolute_max_bytes as usize);
        let endorser = Arc::new(
            Endorser::new(ledger.rules_cell().clone(), ids, contracts, signer)
                .with_max_value(max_value)
                .with_modifications(ledger.clone())
                .with_chaincode_client_identity(config.tls.cert_pem.clone(), config.tls.key_pem.clone()),
        );
        let mut orderer_channels = Vec::new();
        for o in &config.orderers {
            orderer_channels.push(channel(o, &config.tls)?);
        }
        let orderers = OrdererPool::new(orderer_channels, metrics.clone());
        let mut remote_endorsers = HashMap::new();
        for (msp, ep) in &config.endorsers {
            if msp != &config.msp_id {
                let client =
                    EndorserClient::new(channel(ep, &config.tls)?).max_decoding_message_size(MAX_MESSAGE);
                remote_endorsers.insert(msp.clone(), RemoteEndorser { address: ep.clone(), client });
            }
        }
        let svc = Arc::new(PeerServices {
            name: config.name.clone(),
            msp_id: config.msp_id.clone(),
            address: config.address.clone().unwrap_or_else(|| config.listen.to_string()),
            ledger: ledger.clone(),
            endorser,
            remote_endorsers,
            orderers: orderers.clone(),
            shutdown: shutdown.clone(),
            sig_batcher,
            metrics: metrics.clone(),
        });
        let gate =
            Arc::new(crate::tls_gate::TlsGate::from_config(ledger.config()).map_err(PeerError::TlsCas)?);
        let router = tonic::transport::Server::builder()
            .tls_config(config.tls.server_config().client_auth_optional(config.client_auth_optional))?
            .tcp_nodelay(true)
            .add_service(
                GatewayServer::new(FabricGateway(svc.clone()))
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                DeliverServer::new(FabricDeliver(svc.clone()))
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                EndorserServer::new(FabricEndorser(svc.clone())).max_decoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                GatewaySessionServer::new(GatewaySessions(svc.clone()))
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            )
            .add_service(tonic::service::interceptor::InterceptedService::new(
                AdminServer::new(AdminService(svc.clone())),
                move |req: tonic::Request<()>| {
                    use crate::tls_gate::client_certs;
                    use crate::unix_now;
                    gate.authorize_admin(&client_certs(&req), unix_now())
                        .map(|()| req)
                        .map_err(|e| tonic::Status::permission_denied(format!("403: {e}")))
                },
            ));
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| CommitError::Store(ledger_types::store::StoreError::Io(e)))?;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            router.serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await }).await
        });
        let puller = tokio::spawn(pull_blocks(ledger.clone(), orderers, metrics, shutdown.clone()));
        tracing::info!(peer = %config.name, listen = %config.listen, height = ledger.height(), "peer started");
        Ok(PeerNode { ledger, server, puller })
    }

    /// Waits until the node has stopped (after its shutdown token fired). Connections still open after
    /// five seconds are dropped.
    pub async fn stopped(self) -> Result<(), PeerError> {
        let _ = self.puller.await;
        let abort = self.server.abort_handle();
        match tokio::time::timeout(Duration::from_secs(5), self.server).await {
            Ok(Ok(r)) => r.map_err(PeerError::from),
            Ok(Err(_)) => Ok(()),
            Err(_) => {
                abort.abort();
                Ok(())
            }
        }
    }
}

/// Between rounds over every orderer: exponential backoff with full jitter (the workspace's one retry policy).
const PULL_RETRY: retry::Backoff = retry::Backoff::new(Duration::from_millis(50), Duration::from_secs(2));

/// Pulls blocks from the orderers, one stream at a time, moving to the next orderer when a stream breaks.
async fn pull_blocks<B: BlockStore + 'static, S: StateStore + 'static>(
    ledger: Arc<PeerLedger<B, S>>,
    orderers: OrdererPool,
    metrics: ops::PeerHandle,
    shutdown: CancellationToken,
) {
    let channel_id = ledger.rules().channel_id.clone();
    let mut retries = PULL_RETRY.retries();
    while !shutdown.is_cancelled() {
        for mut client in orderers.rotation() {
            let req = DeliverRequest { channel_id: channel_id.clone(), start: ledger.height(), stop: None };
            let stream = tokio::select! {
                _ = shutdown.cancelled() => return,
                s = client.deliver(req) => s,
            };
            let mut stream = match stream {
                Ok(s) => s.into_inner(),
                Err(s) => {
                    tracing::debug!(status = %s, "orderer deliver unavailable");
                    continue;
                }
            };
            // Two blocks at a time: block N commits on a blocking thread while the signatures of block N+1
            // are checked on others (PeerLedger::precheck); commits stay strictly in order.
            let mut committing: Option<Committing> = None;
            let mut next = ledger.height();
            loop {
                let step = tokio::select! {
                    _ = shutdown.cancelled() => Step::Stop,
                    r = async { match committing.as_mut() { Some(c) => (&mut c.task).await, None => std::future::pending().await } },
                        if committing.is_some() => Step::Committed(r),
                    m = stream.message() => Step::Message(m),
                };
                let msg = match step {
                    Step::Stop => {
                        settle(&ledger, &metrics, &mut retries, committing.take()).await;
                        return;
                    }
                    Step::Committed(r) => {
                        let received = committing.take().map(|c| c.received);
                        match committed(&ledger, &metrics, &mut retries, r, received) {
                            Flow::Go => continue,
                            Flow::Switch => break,
                            Flow::Stop => return,
                        }
                    }
                    Step::Message(m) => m,
                };
                let block = match msg {
                    Ok(Some(m)) => match m.block {
                        Some(b) => b,
                        None => break,
                    },
                    Ok(None) => break,
                    Err(s) => {
                        tracing::debug!(status = %s, "deliver stream broke");
                        break;
                    }
                };
                if block.number() < next {
                    continue;
                }
                next = block.number() + 1;
                let received = ops::Stopwatch::start();
                metrics.delivered(block.number());
                let l = ledger.clone();
                let precheck = tokio::task::spawn_blocking(move || {
                    let pre = l.precheck(&block).ok();
                    (block, pre)
                });
                // The block before must be committed first (its result decides whether this one is).
                if let Some(Committing { mut task, received }) = committing.take() {
                    let r = tokio::select! {
                        _ = shutdown.cancelled() => {
                            let _ = task.await;
                            return;
                        }
                        r = &mut task => r,
                    };
                    match committed(&ledger, &metrics, &mut retries, r, Some(received)) {
                        Flow::Go => {}
                        Flow::Switch => break,
                        Flow::Stop => return,
                    }
                }
                let Ok((block, pre)) = precheck.await else {
                    tracing::error!("precheck task failed");
                    return;
                };
                let l = ledger.clone();
                committing = Some(Committing {
                    task: tokio::task::spawn_blocking(move || l.commit_prechecked(block, pre)),
                    received,
                });
            }
            // Before asking again from the ledger's height, the block in progress finishes.
            if !settle(&ledger, &metrics, &mut retries, committing.take()).await {
                return;
            }
        }
        let delay = retries.next_delay(retry::os_random()).unwrap_or(PULL_RETRY.cap());
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// A block being committed on a blocking thread by the puller.
struct Committing {
    task: tokio::task::JoinHandle<Result<Arc<crate::ledger::CommittedBlock>, CommitError>>,
    received: ops::Stopwatch,
}

enum Step {
    Stop,
    Committed(Result<Result<Arc<crate::ledger::CommittedBlock>, CommitError>, tokio::task::JoinError>),
    Message(Result<Option<ledger_rpc::messages::DeliverResponse>, tonic::Status>),
}

enum Flow {
    /// Go on with the next block.
    Go,
    /// The block was refused: ask another orderer.
    Switch,
    /// The store failed: the peer stops committing.
    Stop,
}

/// Records a commit's outcome.
fn committed<B: BlockStore, S: StateStore>(
    ledger: &PeerLedger<B, S>,
    metrics: &ops::PeerHandle,
    retries: &mut retry::Retries,
    r: Result<Result<Arc<crate::ledger::CommittedBlock>, CommitError>, tokio::task::JoinError>,
    received: Option<ops::Stopwatch>,
) -> Flow {
    match r {
        Ok(Ok(committed)) => {
            metrics.set_height(ledger.height());
            metrics.committed(
                received.map_or(0.0, |r| r.seconds()),
                committed.txs.iter().map(|(_, code, _)| code.name()),
            );
            retries.reset();
            Flow::Go
        }
        Ok(Err(CommitError::Store(e))) => {
            tracing::error!(error = %e, "store failure while committing: the peer stops committing");
            Flow::Stop
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "refused a block from the orderer; switching orderer");
            Flow::Switch
        }
        Err(e) => {
            tracing::error!(error = %e, "commit task failed");
            Flow::Stop
        }
    }
}

/// Waits for the block in progress, if any; false when the peer must stop committing.
async fn settle<B: BlockStore, S: StateStore>(
    ledger: &PeerLedger<B, S>,
    metrics: &ops::PeerHandle,
    retries: &mut retry::Retries,
    c: Option<Committing>,
) -> bool {
    let Some(c) = c else { return true };
    let r = c.task.await;
    !matches!(committed(ledger, metrics, retries, r, Some(c.received)), Flow::Stop)
}
