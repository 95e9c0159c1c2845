//! The peer's shared service state, the ordering-service client pool, block following and the `Admin`
//! service. Fabric's client services (`gateway.Gateway`, `protos.Deliver`, `protos.Endorser`) are in
//! [`crate::fabric`].

use crate::endorser::{EndorseError, Endorser};
use crate::ledger::{CommittedBlock, PeerLedger};
use crate::unix_now;
use fabric_protos::protos::endorser_client::EndorserClient;
use futures::Stream;
use ledger_rpc::admin_server;
use ledger_rpc::atomic_broadcast_client::AtomicBroadcastClient;
use ledger_rpc::messages::{NodeStatus, StatusRequest};
use ledger_types::BlockExt;
use ledger_types::TxValidationCode;
use ledger_types::proto::{Block, ProposalResponse, SignedProposal};
use ledger_types::store::{BlockStore, StateStore, StoreError};
use ledger_types::tx::DecodedTx;
use prost::Message;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{broadcast, mpsc};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

pub(crate) fn store_status(e: StoreError) -> Status {
    tracing::error!(error = %e, "store failure");
    Status::internal(format!("ledger store failure: {e}"))
}

fn join_status(e: tokio::task::JoinError) -> Status {
    Status::internal(format!("task failed: {e}"))
}

/// A response stream fed by a task through `rx`.
pub(crate) fn receiver_stream<T: Send + 'static>(
    rx: mpsc::Receiver<Result<T, Status>>,
) -> Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>> {
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// The ordering service endpoints a peer submits to, tried in turn. Envelopes submitted concurrently are
/// sent together in one `BroadcastBatch` (whatever is queued when a batch leaves), so the orderer handles one
/// RPC and one batch of signature checks for many transactions.
///
/// A `BroadcastBatch` is answered only when the blocks of all its envelopes are committed by Raft (a cutter
/// timeout and a consensus round: 100 ms and more under load), so the number of batches in flight must not
/// bound the rate: with 8 slots, as before 2026-12-04, single envelopes arriving one by one took every slot
/// for a whole round while the queue behind them grew, and left together in one large batch when a slot
/// freed; the ordering service then ran in waves of large and tiny blocks, idle between them
/// (docs/ledger-perf.md, sixth round). Now a batch leaves at most every [`PACE`] (so batches stay few
/// under load, and the first envelope after a quiet spell leaves at once), takes its slot before it is
/// formed (what queued during a wait leaves in it), and slots are many ([`BATCHES_IN_FLIGHT`]: a bound on
/// memory, not on the rate).
#[derive(Clone)]
pub struct OrdererPool {
    inner: Arc<PoolInner>,
    queue: mpsc::UnboundedSender<Pending>,
}

struct PoolInner {
    clients: Vec<AtomicBroadcastClient<Channel>>,
    next: AtomicUsize,
    metrics: ops::PeerHandle,
}

struct Pending {
    /// The encoded envelope.
    envelope: bytes::Bytes,
    reply: tokio::sync::oneshot::Sender<Result<(), Status>>,
}

/// Most envelopes in one batch.
const BATCH_MAX: usize = 1024;
/// At most this many envelope bytes per `BroadcastBatch` (the orderer accepts far larger messages; this keeps
/// one batch's failure, and its memory, small).
const BATCH_MAX_BYTES: usize = 2 << 20;
/// Most batches in flight at once (at most 512 MiB of envelopes).
const BATCHES_IN_FLIGHT: usize = 256;
/// Least time between two batches leaving: at most 200 batches per second per peer instead of one per
/// envelope (20–45 per second of 30–40 envelopes each measured under the benchmarks); far below the block cutter's timeout (100 ms by default), so an envelope
/// still makes the block it would have made.
const PACE: std::time::Duration = std::time::Duration::from_millis(5);

fn batch_result(r: &ledger_rpc::messages::BroadcastResponse) -> Result<(), Status> {
    match r.status {
        200 => Ok(()),
        400 => Err(Status::invalid_argument(r.info.clone())),
        403 => Err(Status::permission_denied(r.info.clone())),
        409 => Err(Status::already_exists(r.info.clone())),
        413 => Err(Status::resource_exhausted(r.info.clone())),
        _ => Err(Status::unavailable(r.info.clone())),
    }
}

impl OrdererPool {
    /// A pool over already configured (lazily connecting) channels, counting its batches into `metrics`.
    /// Must be created inside a Tokio runtime (it spawns its batching task, which ends when the last clone of
    /// the pool is dropped).
    pub fn new(channels: Vec<Channel>, metrics: ops::PeerHandle) -> OrdererPool {
        let clients = channels
            .into_iter()
            .map(|c| AtomicBroadcastClient::new(c).max_decoding_message_size(256 << 20))
            .collect();
        let inner = Arc::new(PoolInner { clients, next: AtomicUsize::new(0), metrics });
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(batcher(inner.clone(), rx));
        OrdererPool { inner, queue }
    }

    /// The clients, starting with the preferred one.
    pub fn rotation(&self) -> Vec<AtomicBroadcastClient<Channel>> {
        let n = self.inner.clients.len();
        let start = self.inner.next.load(Ordering::Relaxed);
        (0..n).map(|i| self.inner.clients[(start + i) % n].clone()).collect()
    }

    /// Sends an envelope to the ordering service and waits until its block is committed by Raft (or it is
    /// refused), moving on to the next orderer when one is unavailable.
    pub async fn broadcast(&self, envelope: ledger_types::proto::Envelope) -> Result<(), Status> {
        self.broadcast_encoded(envelope.encode_to_vec().into()).await
    }

    /// [`broadcast`](Self::broadcast) of an already encoded envelope.
    pub async fn broadcast_encoded(&self, envelope: bytes::Bytes) -> Result<(), Status> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.queue
            .send(Pending { envelope, reply })
            .map_err(|_| Status::unavailable("the peer is shutting down"))?;
        rx.await.unwrap_or_else(|_| Err(Status::unavailable("the peer is shutting down")))
    }
}

#[allow(clippy::disallowed_methods)] // the pacing clock of this shell task; no decision but when to send
async fn batcher(inner: Arc<PoolInner>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    let mut last_sent: Option<tokio::time::Instant> = None;
    while let Some(first) = rx.recv().await {
        if let Some(t) = last_sent {
            tokio::time::sleep_until(t + PACE).await;
        }
        // The slot first, then the batch: what arrives during a wait leaves in this batch.
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let mut bytes = first.envelope.len();
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX && bytes < BATCH_MAX_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.envelope.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        last_sent = Some(tokio::time::Instant::now());
        let inner = inner.clone();
        inner.metrics.broadcast_sent(batch.len());
        tokio::spawn(async move {
            inner.send_batch(batch).await;
            inner.metrics.broadcast_done();
            drop(permit);
        });
    }
}

impl PoolInner {
    /// Sends a batch, retrying what an orderer answered "unavailable" on the next one.
    async fn send_batch(&self, mut batch: Vec<Pending>) {
        let n = self.clients.len();
        let mut last = Status::unavailable("no orderer configured");
        let start = self.next.load(Ordering::Relaxed);
        for i in 0..n {
            if batch.is_empty() {
                return;
            }
            let idx = (start + i) % n;
            let envelopes = batch.iter().map(|p| p.envelope.clone()).collect();
            let req = ledger_rpc::messages::BroadcastBatchRequest { envelopes };
            match self.clients[idx].clone().broadcast_batch(req).await {
                Ok(r) => {
                    let r = r.into_inner();
                    // Prefer the Raft leader next time (consenter ids are 1-based, in endpoint order): a
                    // follower would forward to it, one more hop per transaction.
                    let leader = usize::try_from(r.leader_hint).unwrap_or(0);
                    let preferred = if (1..=n).contains(&leader) { leader - 1 } else { idx };
                    self.next.store(preferred, Ordering::Relaxed);
                    let mut retry = Vec::new();
                    let mut results = r.results.into_iter();
                    for p in batch {
                        match results.next().map(|res| batch_result(&res)) {
                            Some(Err(s)) if s.code() == tonic::Code::Unavailable => {
                                last = s;
                                retry.push(p);
                            }
                            Some(res) => {
                                let _ = p.reply.send(res);
                            }
                            None => {
                                let _ =
                                    p.reply.send(Err(Status::internal("the orderer skipped an envelope")));
                            }
                        }
                    }
                    batch = retry;
                }
                Err(s)
                    if matches!(s.code(), tonic::Code::InvalidArgument | tonic::Code::PermissionDenied) =>
                {
                    for p in batch {
                        let _ = p.reply.send(Err(s.clone()));
                    }
                    return;
                }
                Err(s) => last = s,
            }
        }
        for p in batch {
            let _ = p.reply.send(Err(last.clone()));
        }
    }
}

/// Another organization's peer, asked for endorsements over Fabric's `protos.Endorser`.
#[derive(Clone)]
pub struct RemoteEndorser {
    /// Its address (`host:port`), named in error details.
    pub address: String,
    /// The client.
    pub client: EndorserClient<Channel>,
}

/// Everything the services share.
pub struct PeerServices<B: BlockStore + 'static, S: StateStore + 'static> {
    /// Node name, e.g. `peer0.org1`.
    pub name: String,
    /// This peer's organization.
    pub msp_id: String,
    /// The address clients reach this peer at (`host:port`), named in error details.
    pub address: String,
    /// The channel ledger.
    pub ledger: Arc<PeerLedger<B, S>>,
    /// The local endorser.
    pub endorser: Arc<Endorser>,
    /// Endorsers of other organizations (for policies that need more than this org).
    pub remote_endorsers: HashMap<String, RemoteEndorser>,
    /// Where to submit transactions.
    pub orderers: OrdererPool,
    /// Fires when the node shuts down: open streams end then.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Batches the proposal signature checks of concurrent endorsements.
    pub sig_batcher: crate::sigbatch::SigBatcher,
    /// This peer's metrics (gateway Endorse and Submit latencies).
    pub metrics: ops::PeerHandle,
}

impl<B: BlockStore + 'static, S: StateStore + 'static> PeerServices<B, S>
where
    S::Snapshot: 'static,
{
    /// Checks the proposal, verifies its signature together with those of concurrent endorsements, then
    /// runs the contract and signs on the calling task: that takes tens of microseconds, less than handing
    /// it to the blocking pool costs when thousands of clients endorse at once (measured: the pool grew to
    /// hundreds of threads). Returns the response (a contract's refusal: its status, no endorsement) and
    /// the chaincode's name.
    pub(crate) async fn endorse_locally(
        &self,
        sp: SignedProposal,
    ) -> Result<(ProposalResponse, String, ledger_types::proto::TxRwSet), EndorseError> {
        let checked = self.endorser.check(&sp, unix_now())?;
        let contract = checked.contract().to_owned();
        let ok = self
            .sig_batcher
            .verify(checked.creator.clone(), sp.proposal_bytes.clone(), sp.signature.clone())
            .await;
        if !ok {
            return Err(EndorseError::Denied("proposal signature does not verify".into()));
        }
        // An external chaincode blocks on its server's messages: it runs off the async worker, in one of the
        // endorser's blocking slots (built-in contracts are plain computation and run in place).
        let multi_thread =
            tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread;
        let external = checked.signed.is_some() && multi_thread;
        let _slot = if external { Some(self.endorser.blocking_slots().acquire().await) } else { None };
        let snapshot = self.ledger.state().snapshot()?;
        let run = || self.endorser.run(checked, &snapshot, &|id| self.ledger.contains_tx(id));
        let mut sim = if external { tokio::task::block_in_place(run)? } else { run()? };
        let rwset = std::mem::take(&mut sim.rwset);
        Ok((self.endorser.sign(sim), contract, rwset))
    }
}

/// A committed block rebuilt from the store (for streams that start in the past).
fn committed_from_store(block: Block) -> CommittedBlock {
    let number = block.number();
    let codes = block.validation_codes().to_vec();
    let txs = block
        .envelopes()
        .iter()
        .enumerate()
        .map(|(i, env)| {
            let code = codes
                .get(i)
                .and_then(|c| TxValidationCode::from_u8(*c))
                .unwrap_or(TxValidationCode::NotValidated);
            match DecodedTx::decode_bytes(env.clone()) {
                Ok(d) => {
                    let tx_id = d.tx_id().to_owned();
                    let ev = match d.action {
                        Some(a) if code.is_valid() => a.event.map(|mut e| {
                            e.tx_id = tx_id.clone();
                            e.contract = a.chaincode_name;
                            e
                        }),
                        _ => None,
                    };
                    (tx_id, code, ev)
                }
                Err(_) => (String::new(), code, None),
            }
        })
        .collect();
    CommittedBlock { number, block: Arc::new(block), txs }
}

/// How [`follow_blocks`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Followed {
    /// The stop block was sent.
    Reached,
    /// The next block is not committed yet and the request said not to wait (`FAIL_IF_NOT_READY`).
    NotReady,
    /// A block could not be read from the store (an error status was sent).
    Failed,
    /// The receiver went away, or the peer is shutting down (an `UNAVAILABLE` status was sent).
    Closed,
}

/// Streams committed blocks from `start` (through `stop`, or forever), first from the store, then live,
/// with no gaps and no duplicates; `map` turns each block into at most one message. With
/// `fail_if_not_ready` it ends at the first block not committed yet instead of waiting for it.
pub(crate) async fn follow_blocks<B, S, T, F>(
    ledger: Arc<PeerLedger<B, S>>,
    shutdown: tokio_util::sync::CancellationToken,
    start: u64,
    stop: Option<u64>,
    fail_if_not_ready: bool,
    mut map: F,
    tx: mpsc::Sender<Result<T, Status>>,
) -> Followed
where
    B: BlockStore + 'static,
    S: StateStore + 'static,
    F: FnMut(&CommittedBlock) -> Option<Result<T, Status>>,
{
    let mut live = ledger.subscribe();
    let mut next = start;
    loop {
        if stop.is_some_and(|s| next > s) {
            return Followed::Reached;
        }
        if next < ledger.height() {
            let l = ledger.clone();
            let n = next;
            let block = match tokio::task::spawn_blocking(move || l.blocks().block(n)).await {
                Ok(Ok(Some(b))) => b,
                Ok(Ok(None)) => continue,
                Ok(Err(e)) => {
                    let _ = tx.send(Err(store_status(e))).await;
                    return Followed::Failed;
                }
                Err(e) => {
                    let _ = tx.send(Err(join_status(e))).await;
                    return Followed::Failed;
                }
            };
            let cb = committed_from_store(block);
            if let Some(m) = map(&cb)
                && tx.send(m).await.is_err()
            {
                return Followed::Closed;
            }
            next += 1;
            continue;
        }
        if fail_if_not_ready {
            return Followed::NotReady;
        }
        tokio::select! {
            _ = tx.closed() => return Followed::Closed,
            _ = shutdown.cancelled() => {
                let _ = tx.send(Err(Status::unavailable("the peer is shutting down"))).await;
                return Followed::Closed;
            }
            got = live.recv() => match got {
                Ok(cb) if cb.number == next => {
                    if let Some(m) = map(&cb)
                        && tx.send(m).await.is_err()
                    {
                        return Followed::Closed;
                    }
                    next += 1;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {} // catch up from the store
                Err(broadcast::error::RecvError::Closed) => return Followed::Closed,
            },
        }
    }
}

/// The Admin service.
pub struct AdminService<B: BlockStore + 'static, S: StateStore + 'static>(pub Arc<PeerServices<B, S>>);

#[tonic::async_trait]
impl<B: BlockStore + 'static, S: StateStore + 'static> admin_server::Admin for AdminService<B, S>
where
    S::Snapshot: 'static,
{
    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<NodeStatus>, Status> {
        let l = &self.0.ledger;
        Ok(Response::new(NodeStatus {
            name: self.0.name.clone(),
            role: "peer".into(),
            msp_id: self.0.msp_id.clone(),
            channel_id: l.rules().channel_id.clone(),
            height: l.height(),
            head_hash: l.head_hash().to_hex(),
            raft_state: String::new(),
            raft_leader: 0,
            raft_term: 0,
            commit_hash: hex::encode(l.commit_hash()),
        }))
    }
}
