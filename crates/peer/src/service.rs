//! The peer's gRPC services: `Gateway` (clients), `Endorser` (other peers' gateways) and `Admin`.
//!
//! Error mapping, in one place: malformed input → `InvalidArgument`; unknown CA, not a writer/reader, bad
//! signature → `PermissionDenied`; replayed tx id → `AlreadyExists`; unknown contract → `NotFound`;
//! contract refusal → `Aborted` with the contract's status and message; ordering service unreachable →
//! `Unavailable`; store failure → `Internal`.
//!
//! `Gateway.Session` is a long-lived bidirectional stream of Endorse and Submit requests from one client,
//! each answered under its id with the same checks and the status code the unary call would return (in the
//! answer's `code`): one HTTP/2 stream per client instead of two per transaction.

use crate::endorser::{EndorseError, Endorser};
use crate::identity::Identities;
use crate::ledger::{CommittedBlock, PeerLedger};
use crate::unix_now;
use ledger_rpc::atomic_broadcast_client::AtomicBroadcastClient;
use ledger_rpc::endorser_client::EndorserClient;
use ledger_rpc::messages::{
    BlocksRequest, ChaincodeEventsRequest, ChaincodeEventsResponse, CommitStatusRequest,
    CommitStatusResponse, DeliverResponse, EndorseRequest, EndorseResponse, EvaluateRequest,
    EvaluateResponse, FilteredBlock, FilteredTx, NodeStatus, SessionRequest, SessionResponse, SignedRequest,
    StatusRequest, SubmitRequest, SubmitResponse,
};
use ledger_rpc::{admin_server, endorser_server, gateway_server};
use ledger_types::BlockExt;
use ledger_types::TxValidationCode;
use ledger_types::policy::Endorser as PolicyEndorser;
use ledger_types::proto::{Block, ContractEvent, ProposalResponse, SignedProposal};
use ledger_types::store::{BlockStore, StateStore, StoreError};
use ledger_types::tx::{self, DecodedTx};
use prost::Message;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

fn endorse_status(e: EndorseError) -> Status {
    match e {
        EndorseError::BadProposal(m) => Status::invalid_argument(m),
        EndorseError::Denied(m) => Status::permission_denied(m),
        EndorseError::Duplicate(m) => Status::already_exists(format!("transaction {m} already committed")),
        EndorseError::UnknownContract(c) => Status::not_found(format!("contract {c:?} is not available")),
        EndorseError::Store(e) => store_status(e),
    }
}

fn store_status(e: StoreError) -> Status {
    tracing::error!(error = %e, "store failure");
    Status::internal(format!("ledger store failure: {e}"))
}

fn join_status(e: tokio::task::JoinError) -> Status {
    Status::internal(format!("task failed: {e}"))
}

/// The ordering service endpoints a peer submits to, tried in turn. Envelopes submitted concurrently are
/// sent together in one `BroadcastBatch` (whatever is queued when a batch leaves; nothing waits for a
/// timer), so the orderer handles one RPC and one batch of signature checks for many transactions.
#[derive(Clone)]
pub struct OrdererPool {
    inner: Arc<PoolInner>,
    queue: mpsc::UnboundedSender<Pending>,
}

struct PoolInner {
    clients: Vec<AtomicBroadcastClient<Channel>>,
    next: AtomicUsize,
}

struct Pending {
    /// The encoded envelope.
    envelope: bytes::Bytes,
    reply: tokio::sync::oneshot::Sender<Result<(), Status>>,
}

/// Most envelopes in one batch, and most batches in flight at once.
const BATCH_MAX: usize = 1024;
/// At most this many envelope bytes per `BroadcastBatch` (the orderer accepts far larger messages; this keeps
/// one batch's failure, and its memory, small).
const BATCH_MAX_BYTES: usize = 2 << 20;
const BATCHES_IN_FLIGHT: usize = 8;

/// Most requests of one client session handled at once (more wait until one is answered). A submit holds
/// its slot until its block is ordered (~100-300 ms), and one client may be a gateway multiplexing thousands
/// of requests: 256 capped such a client near 1,000 submits/s.
const SESSION_IN_FLIGHT: usize = 8192;

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
    /// A pool over already configured (lazily connecting) channels. Must be created inside a Tokio runtime
    /// (it spawns its batching task, which ends when the last clone of the pool is dropped).
    pub fn new(channels: Vec<Channel>) -> OrdererPool {
        let clients = channels
            .into_iter()
            .map(|c| AtomicBroadcastClient::new(c).max_decoding_message_size(256 << 20))
            .collect();
        let inner = Arc::new(PoolInner { clients, next: AtomicUsize::new(0) });
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

async fn batcher(inner: Arc<PoolInner>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
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
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let inner = inner.clone();
        tokio::spawn(async move {
            inner.send_batch(batch).await;
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

/// Everything the services share.
pub struct PeerServices<B: BlockStore + 'static, S: StateStore + 'static> {
    /// Node name, e.g. `peer0.org1`.
    pub name: String,
    /// This peer's organization.
    pub msp_id: String,
    /// The channel ledger.
    pub ledger: Arc<PeerLedger<B, S>>,
    /// The local endorser.
    pub endorser: Arc<Endorser>,
    /// Endorsers of other organizations (for policies that need more than this org).
    pub remote_endorsers: HashMap<String, EndorserClient<Channel>>,
    /// Where to submit transactions.
    pub orderers: OrdererPool,
    /// Fires when the node shuts down: open streams end then.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Batches the proposal signature checks of concurrent endorsements.
    pub sig_batcher: crate::sigbatch::SigBatcher,
}

impl<B: BlockStore + 'static, S: StateStore + 'static> PeerServices<B, S>
where
    S::Snapshot: 'static,
{
    fn ids(&self) -> &Arc<dyn Identities> {
        self.ledger.identities()
    }

    /// Checks the proposal, verifies its signature together with those of concurrent endorsements, then
    /// runs the contract and signs on the calling task: that takes tens of microseconds, less than handing
    /// it to the blocking pool costs when thousands of clients endorse at once (measured: the pool grew to
    /// hundreds of threads).
    async fn endorse_locally(&self, sp: SignedProposal) -> Result<(ProposalResponse, String), Status> {
        let checked = self.endorser.check(&sp, unix_now()).map_err(endorse_status)?;
        let contract = checked.contract().to_owned();
        let ok = self
            .sig_batcher
            .verify(checked.creator.clone(), sp.proposal_bytes.clone(), sp.signature.clone())
            .await;
        if !ok {
            return Err(Status::permission_denied("proposal signature does not verify"));
        }
        let snapshot = self.ledger.state().snapshot().map_err(store_status)?;
        let sim = self
            .endorser
            .run(checked, &snapshot, &|id| self.ledger.contains_tx(id))
            .map_err(endorse_status)?;
        Ok((self.endorser.sign(sim), contract))
    }

    /// Checks a signed request's identity (must be a channel reader) and signature; returns the inner bytes.
    fn authorize_reader(&self, req: &SignedRequest) -> Result<(), Status> {
        let id = self.ids().validate(&req.identity, unix_now()).map_err(Status::permission_denied)?;
        if !self.ledger.rules().readers.contains(&id.msp_id) {
            return Err(Status::permission_denied(format!("{} is not a reader of this channel", id.msp_id)));
        }
        if !self.ids().verify(&id, &req.request, &req.signature) {
            return Err(Status::permission_denied("request signature does not verify"));
        }
        Ok(())
    }

    /// The Endorse call: endorsement by this peer and, when the policy needs them, other organizations'.
    async fn endorse_request(&self, req: EndorseRequest) -> Result<EndorseResponse, Status> {
        let sp = req.proposal.ok_or_else(|| Status::invalid_argument("missing proposal"))?;
        let svc = self;
        let (local, contract) = svc.endorse_locally(sp.clone()).await?;
        if local.endorsement.is_none() {
            return Err(Self::contract_refusal(&local));
        }
        let policy = svc
            .ledger
            .rules()
            .policies
            .get(&contract)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("contract {contract:?} is not defined")))?;
        let mut responses = vec![local];
        let mut endorsers = vec![PolicyEndorser::new(svc.msp_id.clone(), "peer")];
        let mut remote_errors = Vec::new();
        if !policy.is_satisfied_by(&endorsers) {
            for (msp, client) in &svc.remote_endorsers {
                if !req.endorsing_orgs.is_empty() && !req.endorsing_orgs.contains(msp) {
                    continue;
                }
                let mut c = client.clone();
                match c.process_proposal(sp.clone()).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        if r.endorsement.is_none() {
                            return Err(Self::contract_refusal(&r));
                        }
                        responses.push(r);
                        endorsers.push(PolicyEndorser::new(msp.clone(), "peer"));
                        if policy.is_satisfied_by(&endorsers) {
                            break;
                        }
                    }
                    Err(s) => {
                        tracing::warn!(org = %msp, status = %s, "remote endorser failed");
                        remote_errors.push(format!("{msp}: {}", s.message()));
                    }
                }
            }
            if !policy.is_satisfied_by(&endorsers) {
                return Err(Status::unavailable(format!(
                    "could not gather endorsements satisfying {policy} (got {}; {})",
                    endorsers.iter().map(|e| e.msp_id.as_str()).collect::<Vec<_>>().join(", "),
                    remote_errors.join("; ")
                )));
            }
        }
        let result = responses[0].response.clone().map(tx::response_from_fabric);
        let prepared = tx::assemble(&sp, &responses).map_err(|e| Status::aborted(e.to_string()))?;
        Ok(EndorseResponse { prepared: Some(prepared), result })
    }

    /// The Submit call: structural checks, then ordering (waits until the orderer answered).
    async fn submit_request(&self, request: SubmitRequest) -> Result<(), Status> {
        let env = request.envelope.ok_or_else(|| Status::invalid_argument("missing envelope"))?;
        if env.signature.is_empty() {
            return Err(Status::invalid_argument("envelope is not signed"));
        }
        let encoded = env.encode_to_vec();
        let decoded = DecodedTx::decode(&encoded)
            .map_err(|e| Status::invalid_argument(format!("malformed transaction: {e}")))?;
        if decoded.channel_id() != self.ledger.rules().channel_id {
            return Err(Status::invalid_argument(format!("unknown channel {:?}", decoded.channel_id())));
        }
        if self.ledger.contains_tx(decoded.tx_id()).map_err(store_status)? {
            return Err(Status::already_exists(format!(
                "transaction {} is already committed",
                decoded.tx_id()
            )));
        }
        self.orderers.broadcast_encoded(encoded.into()).await?;
        Ok(())
    }

    /// One request of a `Session` stream, answered as its unary counterpart would be.
    async fn session_request(&self, req: SessionRequest) -> SessionResponse {
        let id = req.id;
        let outcome = match (req.endorse, req.submit) {
            (Some(e), None) => self.endorse_request(e).await.map(Some),
            (None, Some(s)) => self.submit_request(s).await.map(|()| None),
            _ => Err(Status::invalid_argument("a session request carries exactly one of endorse and submit")),
        };
        match outcome {
            Ok(endorse) => SessionResponse { id, code: 0, message: String::new(), endorse },
            Err(st) => SessionResponse {
                id,
                code: st.code() as i32,
                message: st.message().to_owned(),
                endorse: None,
            },
        }
    }

    fn contract_refusal(resp: &ProposalResponse) -> Status {
        let (status, message) =
            resp.response.as_ref().map_or((500, String::new()), |r| (r.status, r.message.clone()));
        Status::aborted(format!("contract refused the proposal (status {status}): {message}"))
    }
}

/// The Gateway service.
pub struct GatewayService<B: BlockStore + 'static, S: StateStore + 'static>(pub Arc<PeerServices<B, S>>);

#[tonic::async_trait]
impl<B: BlockStore + 'static, S: StateStore + 'static> gateway_server::Gateway for GatewayService<B, S>
where
    S::Snapshot: 'static,
{
    async fn evaluate(
        &self,
        request: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        let sp = request.into_inner().proposal.ok_or_else(|| Status::invalid_argument("missing proposal"))?;
        let svc = self.0.clone();
        let sim = tokio::task::spawn_blocking(move || {
            let snapshot = svc.ledger.state().snapshot().map_err(store_status)?;
            svc.endorser.simulate(&sp, &snapshot, &|_| Ok(false), unix_now()).map_err(endorse_status)
        })
        .await
        .map_err(join_status)??;
        Ok(Response::new(EvaluateResponse { result: Some(sim.response) }))
    }

    async fn endorse(&self, request: Request<EndorseRequest>) -> Result<Response<EndorseResponse>, Status> {
        Ok(Response::new(self.0.endorse_request(request.into_inner()).await?))
    }

    async fn submit(&self, request: Request<SubmitRequest>) -> Result<Response<SubmitResponse>, Status> {
        self.0.submit_request(request.into_inner()).await?;
        Ok(Response::new(SubmitResponse {}))
    }

    type SessionStream = ReceiverStream<Result<SessionResponse, Status>>;

    /// Endorse and Submit requests of one client on one long-lived stream: each is handled exactly as
    /// the unary call (same checks, same signatures, same ordering wait) on its own task, and answered
    /// under its id. Saves a new HTTP/2 stream (headers, trailers, routing) per request.
    async fn session(
        &self,
        request: Request<tonic::Streaming<SessionRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(SESSION_IN_FLIGHT);
        let svc = self.0.clone();
        let stop = svc.shutdown.clone();
        let slots = Arc::new(tokio::sync::Semaphore::new(SESSION_IN_FLIGHT));
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    () = stop.cancelled() => break,
                    m = inbound.message() => m,
                };
                let req = match msg {
                    Ok(Some(req)) => req,
                    Ok(None) | Err(_) => break,
                };
                let Ok(permit) = slots.clone().acquire_owned().await else { break };
                let svc = svc.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let resp = svc.session_request(req).await;
                    let _ = tx.send(Ok(resp)).await;
                    drop(permit);
                });
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn commit_status(
        &self,
        request: Request<SignedRequest>,
    ) -> Result<Response<CommitStatusResponse>, Status> {
        let req = request.into_inner();
        self.0.authorize_reader(&req)?;
        let inner = CommitStatusRequest::decode(req.request.as_slice())
            .map_err(|e| Status::invalid_argument(format!("bad commit status request: {e}")))?;
        if inner.channel_id != self.0.ledger.rules().channel_id {
            return Err(Status::not_found(format!("unknown channel {:?}", inner.channel_id)));
        }
        ledger_types::TxId::parse(&inner.tx_id).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (code, block) = self.0.ledger.wait_for_tx(&inner.tx_id).await.map_err(store_status)?;
        Ok(Response::new(CommitStatusResponse { code: code.as_u8() as u32, block_number: block }))
    }

    type ChaincodeEventsStream = ReceiverStream<Result<ChaincodeEventsResponse, Status>>;

    async fn chaincode_events(
        &self,
        request: Request<SignedRequest>,
    ) -> Result<Response<Self::ChaincodeEventsStream>, Status> {
        let req = request.into_inner();
        self.0.authorize_reader(&req)?;
        let inner = ChaincodeEventsRequest::decode(req.request.as_slice())
            .map_err(|e| Status::invalid_argument(format!("bad events request: {e}")))?;
        if inner.channel_id != self.0.ledger.rules().channel_id {
            return Err(Status::not_found(format!("unknown channel {:?}", inner.channel_id)));
        }
        let (tx, rx) = mpsc::channel(64);
        let ledger = self.0.ledger.clone();
        let stop = self.0.shutdown.clone();
        tokio::spawn(async move {
            let start = inner.start_block.max(1);
            let after = inner.after_tx_id.clone();
            follow_blocks(
                ledger,
                stop,
                start,
                None,
                |cb| {
                    // Checkpoint semantics: in the first block, skip everything up to and including `after`
                    // (when it is there); later blocks are delivered whole.
                    let skip = if cb.number == start && !after.is_empty() {
                        cb.txs.iter().position(|t| t.0 == after).map_or(0, |p| p + 1)
                    } else {
                        0
                    };
                    let mut events: Vec<ContractEvent> = Vec::new();
                    for (_, code, ev) in cb.txs.iter().skip(skip) {
                        if *code == TxValidationCode::Valid
                            && let Some(ev) = ev
                            && ev.contract == inner.contract
                        {
                            events.push(ev.clone());
                        }
                    }
                    (!events.is_empty())
                        .then(|| Ok(ChaincodeEventsResponse { block_number: cb.number, events }))
                },
                tx,
            )
            .await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type DeliverStream = ReceiverStream<Result<DeliverResponse, Status>>;

    async fn deliver(
        &self,
        request: Request<SignedRequest>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        let inner = self.blocks_request(&request.into_inner())?;
        Ok(Response::new(self.stream_blocks(inner, 16, |cb| {
            Some(Ok(DeliverResponse { block: Some((*cb.block).clone()), status: 0 }))
        })))
    }

    type DeliverFilteredStream = ReceiverStream<Result<FilteredBlock, Status>>;

    async fn deliver_filtered(
        &self,
        request: Request<SignedRequest>,
    ) -> Result<Response<Self::DeliverFilteredStream>, Status> {
        let inner = self.blocks_request(&request.into_inner())?;
        Ok(Response::new(self.stream_blocks(inner, 64, |cb| {
            let txs = cb
                .txs
                .iter()
                .map(|(id, code, _)| FilteredTx { tx_id: id.clone(), code: u32::from(code.as_u8()) })
                .collect();
            Some(Ok(FilteredBlock { number: cb.number, txs }))
        })))
    }
}

impl<B: BlockStore + 'static, S: StateStore + 'static> GatewayService<B, S>
where
    S::Snapshot: 'static,
{
    fn blocks_request(&self, req: &SignedRequest) -> Result<BlocksRequest, Status> {
        self.0.authorize_reader(req)?;
        let inner = BlocksRequest::decode(req.request.as_slice())
            .map_err(|e| Status::invalid_argument(format!("bad deliver request: {e}")))?;
        if inner.channel_id != self.0.ledger.rules().channel_id {
            return Err(Status::not_found(format!("unknown channel {:?}", inner.channel_id)));
        }
        let mut inner = inner;
        if inner.from_now {
            inner.start = self.0.ledger.height();
        }
        Ok(inner)
    }

    /// Streams the requested blocks, each turned into a message by `map`, with `capacity` messages of
    /// buffer.
    fn stream_blocks<T: Send + 'static>(
        &self,
        inner: BlocksRequest,
        capacity: usize,
        map: impl FnMut(&CommittedBlock) -> Option<Result<T, Status>> + Send + 'static,
    ) -> ReceiverStream<Result<T, Status>> {
        let (tx, rx) = mpsc::channel(capacity);
        let ledger = self.0.ledger.clone();
        let stop = self.0.shutdown.clone();
        tokio::spawn(async move {
            follow_blocks(ledger, stop, inner.start, inner.stop, map, tx).await;
        });
        ReceiverStream::new(rx)
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
            match DecodedTx::decode(env) {
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

/// Streams committed blocks from `start` (through `stop`, or forever), first from the store, then live,
/// with no gaps and no duplicates; `map` turns each block into at most one message. Ends when the receiver
/// goes away or `stop` is reached.
async fn follow_blocks<B, S, T, F>(
    ledger: Arc<PeerLedger<B, S>>,
    shutdown: tokio_util::sync::CancellationToken,
    start: u64,
    stop: Option<u64>,
    mut map: F,
    tx: mpsc::Sender<Result<T, Status>>,
) where
    B: BlockStore + 'static,
    S: StateStore + 'static,
    F: FnMut(&CommittedBlock) -> Option<Result<T, Status>>,
{
    let mut live = ledger.subscribe();
    let mut next = start;
    loop {
        if stop.is_some_and(|s| next > s) {
            return;
        }
        if next < ledger.height() {
            let l = ledger.clone();
            let n = next;
            let block = match tokio::task::spawn_blocking(move || l.blocks().block(n)).await {
                Ok(Ok(Some(b))) => b,
                Ok(Ok(None)) => continue,
                Ok(Err(e)) => {
                    let _ = tx.send(Err(store_status(e))).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(join_status(e))).await;
                    return;
                }
            };
            let cb = committed_from_store(block);
            if let Some(m) = map(&cb)
                && tx.send(m).await.is_err()
            {
                return;
            }
            next += 1;
            continue;
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = shutdown.cancelled() => {
                let _ = tx.send(Err(Status::unavailable("the peer is shutting down"))).await;
                return;
            }
            got = live.recv() => match got {
                Ok(cb) if cb.number == next => {
                    if let Some(m) = map(&cb)
                        && tx.send(m).await.is_err()
                    {
                        return;
                    }
                    next += 1;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {} // catch up from the store
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// The Endorser service, called by other peers' gateways.
pub struct EndorserService<B: BlockStore + 'static, S: StateStore + 'static>(pub Arc<PeerServices<B, S>>);

#[tonic::async_trait]
impl<B: BlockStore + 'static, S: StateStore + 'static> endorser_server::Endorser for EndorserService<B, S>
where
    S::Snapshot: 'static,
{
    async fn process_proposal(
        &self,
        request: Request<SignedProposal>,
    ) -> Result<Response<ProposalResponse>, Status> {
        Ok(Response::new(self.0.endorse_locally(request.into_inner()).await?.0))
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
