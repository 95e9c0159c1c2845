//! The gRPC services of an orderer: `AtomicBroadcast` (Broadcast, Deliver), `Cluster` (Raft, Forward)
//! and `Admin` (Status). This is the one place where errors become gRPC statuses:
//!
//! | failure | status |
//! |---|---|
//! | envelope does not decode, bad tx id, config transaction | `InvalidArgument` (400) |
//! | envelope for another channel | `InvalidArgument` (400) |
//! | creator not authorized | `PermissionDenied` (403) |
//! | envelope larger than the absolute maximum | `ResourceExhausted` (413) |
//! | tx id already in the chain (replay, or retry after a lost answer) | `AlreadyExists` (409; message names the block) |
//! | no leader reachable, time limit, shutting down | `Unavailable` (503; metadata `leader-hint`) |
//!
//! `Admin.Status` reports `raft_state` as `leader`, `follower`, `candidate`, `learner`, `shutdown`, or
//! `halted: <reason>` once the orderer stopped for good (e.g. its block store failed).

use crate::authz::EnvelopeAuthorizer;
use crate::chain::{Chain, OrderError};
use crate::raft::OrdererRaft;
use crate::raft::network::handle_inbound;
use crate::sequencer::RaftChain;
use bytes::Bytes;
use futures::Stream;
use ledger_rpc::admin_server::Admin;
use ledger_rpc::atomic_broadcast_server::AtomicBroadcast;
use ledger_rpc::cluster_server::Cluster;
use ledger_rpc::messages::{
    BroadcastBatchRequest, BroadcastBatchResponse, BroadcastResponse, DeliverRequest, DeliverResponse,
    ForwardRequest, NodeStatus, RaftMessage, StatusRequest,
};
use ledger_types::proto::{Envelope, HeaderType};
use ledger_types::store::BlockStore;
use ledger_types::tx::DecodedTx;
use ledger_types::{Hash32, TxId};
use openraft::ServerState;
use prost::Message;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// What the services share.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) msp_id: String,
    pub(crate) channel_id: String,
    pub(crate) absolute_max_bytes: usize,
    pub(crate) chain: Arc<RaftChain>,
    pub(crate) raft: OrdererRaft,
    pub(crate) store: Arc<dyn BlockStore>,
    pub(crate) height: watch::Receiver<u64>,
    pub(crate) authorizer: Arc<dyn EnvelopeAuthorizer>,
    pub(crate) cancel: CancellationToken,
    /// The tasks behind the services' streams (they hold the block store): `OrdererHandle::shutdown` waits
    /// for them, so the data directory can be opened again once it returns.
    pub(crate) streams: tokio_util::task::TaskTracker,
}

/// The three services over one [`Shared`].
#[derive(Clone)]
pub(crate) struct Services(pub(crate) Arc<Shared>);

/// The client's TLS certificate chain (DER, leaf first; empty without mutual TLS).
pub(crate) fn client_certs<T>(request: &Request<T>) -> Vec<Vec<u8>> {
    request.peer_certs().map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect()).unwrap_or_default()
}

/// A server stream of what a task sends into `rx`.
pub(crate) fn receiver_stream<T: Send + 'static>(
    rx: mpsc::Receiver<Result<T, Status>>,
) -> Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>> {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) }))
}

fn leader_hint(s: &Shared) -> u64 {
    s.raft.metrics().borrow().current_leader.unwrap_or(0)
}

fn unavailable(msg: String, hint: u64) -> Status {
    let mut st = Status::unavailable(format!("503: {msg}"));
    if let Ok(v) = hint.to_string().parse() {
        st.metadata_mut().insert("leader-hint", v);
    }
    st
}

fn order_status(e: OrderError, hint: u64) -> Status {
    match e {
        OrderError::TooLarge { size, max } => {
            Status::resource_exhausted(format!("413: envelope of {size} bytes exceeds {max} bytes"))
        }
        OrderError::AlreadyOrdered { block } => {
            Status::already_exists(format!("409: transaction already ordered in block {block}"))
        }
        OrderError::NotLeader { leader } => {
            unavailable(format!("no leader reachable (leader hint: {leader:?})"), leader.unwrap_or(hint))
        }
        other => unavailable(other.to_string(), hint),
    }
}

/// The most envelopes one `BroadcastBatch` may carry.
pub const MAX_BATCH: usize = 4096;

/// A per-envelope refusal as an HTTP-like status in a batch answer.
fn refusal(st: &Status) -> BroadcastResponse {
    let status = match st.code() {
        tonic::Code::InvalidArgument => 400,
        tonic::Code::PermissionDenied => 403,
        tonic::Code::AlreadyExists => 409,
        tonic::Code::ResourceExhausted => 413,
        tonic::Code::Unavailable => 503,
        _ => 500,
    };
    BroadcastResponse { status, info: st.message().to_owned(), leader_hint: 0 }
}

/// Why an envelope failed the structural checks (before authorization).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Larger than the channel's absolute maximum.
    #[error("envelope of {size} bytes exceeds the absolute maximum of {max} bytes")]
    TooLarge {
        /// Envelope size.
        size: usize,
        /// The channel's absolute maximum.
        max: usize,
    },
    /// It does not decode as a Fabric transaction.
    #[error("{0}")]
    Malformed(String),
    /// Not an endorser transaction.
    #[error("only endorser transactions can be broadcast")]
    NotEndorserTransaction,
    /// For a channel this orderer does not serve.
    #[error("channel {got:?} is not served by this orderer (it serves {served:?})")]
    UnknownChannel {
        /// The channel the envelope names.
        got: String,
        /// The channel served here.
        served: String,
    },
    /// The tx id is malformed or not hex SHA-256(nonce ‖ creator).
    #[error("tx id: {0}")]
    BadTxId(String),
}

impl EnvelopeError {
    /// The status of ipechain's own `AtomicBroadcast` (HTTP-like code in the message).
    pub fn status(&self) -> Status {
        match self {
            EnvelopeError::TooLarge { .. } => Status::resource_exhausted(format!("413: {self}")),
            _ => Status::invalid_argument(format!("400: {self}")),
        }
    }

    /// The `common.Status` Fabric's broadcast answers with (`ClassifyError`: an unknown channel is
    /// `NOT_FOUND`, everything else here `BAD_REQUEST`, also an envelope over the absolute maximum).
    pub fn fabric_status(&self) -> ledger_types::fabric_protos::common::Status {
        use ledger_types::fabric_protos::common::Status as S;
        match self {
            EnvelopeError::UnknownChannel { .. } => S::NotFound,
            _ => S::BadRequest,
        }
    }
}

/// Structural checks of an envelope (everything but authorization). Returns the decoded tx.
pub fn check_envelope(
    bytes: &Bytes,
    channel_id: &str,
    absolute_max: usize,
) -> Result<DecodedTx, EnvelopeError> {
    if bytes.len() > absolute_max {
        return Err(EnvelopeError::TooLarge { size: bytes.len(), max: absolute_max });
    }
    let tx = DecodedTx::decode_bytes(bytes.clone()).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    if tx.channel_id() != channel_id {
        return Err(EnvelopeError::UnknownChannel {
            got: tx.channel_id().to_owned(),
            served: channel_id.to_owned(),
        });
    }
    if tx.header_type() != HeaderType::EndorserTransaction as i32 {
        return Err(EnvelopeError::NotEndorserTransaction);
    }
    TxId::parse(tx.tx_id()).map_err(|e| EnvelopeError::BadTxId(e.to_string()))?;
    if !tx.tx_id_matches() {
        return Err(EnvelopeError::BadTxId("not the hash of nonce and creator".into()));
    }
    Ok(tx)
}

type DeliverStream = Pin<Box<dyn Stream<Item = Result<DeliverResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AtomicBroadcast for Services {
    async fn broadcast(&self, request: Request<Envelope>) -> Result<Response<BroadcastResponse>, Status> {
        let s = &self.0;
        let bytes = Bytes::from(request.into_inner().encode_to_vec());
        let tx = check_envelope(&bytes, &s.channel_id, s.absolute_max_bytes).map_err(|e| e.status())?;
        s.authorizer.authorize_broadcast(&tx).map_err(|e| Status::permission_denied(format!("403: {e}")))?;
        let tx_id = tx.tx_id().to_owned();
        match s.chain.order(bytes, tx_id).await {
            Ok(o) => Ok(Response::new(BroadcastResponse {
                status: 200,
                info: format!("ordered in block {}", o.block),
                leader_hint: leader_hint(s),
            })),
            Err(e) => Err(order_status(e, leader_hint(s))),
        }
    }

    async fn broadcast_batch(
        &self,
        request: Request<BroadcastBatchRequest>,
    ) -> Result<Response<BroadcastBatchResponse>, Status> {
        let s = self.0.clone();
        let envelopes = request.into_inner().envelopes;
        if envelopes.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!("400: at most {MAX_BATCH} envelopes per batch")));
        }
        // Structural checks, then one authorization pass (a batch of signature checks) off the runtime.
        let mut results: Vec<Option<BroadcastResponse>> = vec![None; envelopes.len()];
        let mut checked = Vec::with_capacity(envelopes.len());
        let mut txs = Vec::with_capacity(envelopes.len());
        for (i, env) in envelopes.into_iter().enumerate() {
            match check_envelope(&env, &s.channel_id, s.absolute_max_bytes) {
                Ok(tx) => {
                    checked.push((i, env));
                    txs.push(tx);
                }
                Err(e) => results[i] = Some(refusal(&e.status())),
            }
        }
        let authorizer = s.authorizer.clone();
        let (txs, verdicts) = tokio::task::spawn_blocking(move || {
            let verdicts = authorizer.authorize_broadcast_batch(&txs);
            (txs, verdicts)
        })
        .await
        .map_err(|e| Status::internal(format!("authorization task failed: {e}")))?;
        let mut orders = Vec::new();
        for (((i, bytes), tx), verdict) in checked.into_iter().zip(txs).zip(verdicts) {
            match verdict {
                Ok(()) => {
                    let chain = s.chain.clone();
                    let tx_id = tx.tx_id().to_owned();
                    orders.push(async move { (i, chain.order(bytes, tx_id).await) });
                }
                Err(e) => {
                    results[i] = Some(BroadcastResponse { status: 403, info: e.to_string(), leader_hint: 0 })
                }
            }
        }
        let hint = leader_hint(&s);
        for (i, outcome) in futures::future::join_all(orders).await {
            results[i] = Some(match outcome {
                Ok(o) => BroadcastResponse {
                    status: 200,
                    info: format!("ordered in block {}", o.block),
                    leader_hint: hint,
                },
                Err(e) => refusal(&order_status(e, hint)),
            });
        }
        let results = results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| BroadcastResponse {
                    status: 500,
                    info: "not processed".into(),
                    leader_hint: hint,
                })
            })
            .collect();
        Ok(Response::new(BroadcastBatchResponse { results, leader_hint: hint }))
    }

    type DeliverStream = DeliverStream;

    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverStream>, Status> {
        let s = self.0.clone();
        let certs = client_certs(&request);
        s.authorizer.authorize_deliver(&certs).map_err(|e| Status::permission_denied(format!("403: {e}")))?;
        let req = request.into_inner();
        if req.channel_id != s.channel_id {
            return Err(Status::not_found(format!("404: channel {:?} is not served here", req.channel_id)));
        }
        if req.stop.is_some_and(|stop| stop < req.start) {
            return Err(Status::invalid_argument("400: stop is before start"));
        }
        let (tx, rx) = mpsc::channel(16);
        s.streams.clone().spawn(stream_blocks(s, req, tx));
        Ok(Response::new(receiver_stream(rx)))
    }
}

/// Streams blocks `start..=stop` (or forever), waiting for blocks not yet committed: no gaps, no duplicates.
async fn stream_blocks(
    s: Arc<Shared>,
    req: DeliverRequest,
    tx: mpsc::Sender<Result<DeliverResponse, Status>>,
) {
    let mut height = s.height.clone();
    let mut n = req.start;
    loop {
        if req.stop.is_some_and(|stop| n > stop) {
            let _ = tx.send(Ok(DeliverResponse { block: None, status: 200 })).await;
            return;
        }
        height.borrow_and_update();
        if n < s.store.height() {
            match s.store.block(n) {
                Ok(Some(b)) => {
                    if tx.send(Ok(DeliverResponse { block: Some(b), status: 0 })).await.is_err() {
                        return;
                    }
                    n += 1;
                    continue;
                }
                Ok(None) => {
                    let _ =
                        tx.send(Err(Status::internal(format!("500: block {n} missing from store")))).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(Status::internal(format!("500: reading block {n}: {e}")))).await;
                    return;
                }
            }
        }
        tokio::select! {
            r = height.changed() => if r.is_err() {
                let _ = tx.send(Err(Status::unavailable("503: orderer stopping"))).await;
                return;
            },
            () = tx.closed() => return,
            () = s.cancel.cancelled() => {
                let _ = tx.send(Err(Status::unavailable("503: orderer stopping"))).await;
                return;
            }
        }
    }
}

#[tonic::async_trait]
impl Cluster for Services {
    async fn raft(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        handle_inbound(&self.0.raft, request.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }

    async fn forward(&self, request: Request<ForwardRequest>) -> Result<Response<BroadcastResponse>, Status> {
        let s = &self.0;
        let req = request.into_inner();
        if req.channel_id != s.channel_id {
            return Err(Status::invalid_argument(format!(
                "400: channel {:?} is not served here",
                req.channel_id
            )));
        }
        // The same checks as Broadcast: a forwarding orderer is trusted to order, not to vouch for creators.
        let mut txs = Vec::with_capacity(req.envelopes.len());
        for env in &req.envelopes {
            txs.push(check_envelope(env, &s.channel_id, s.absolute_max_bytes).map_err(|e| e.status())?);
        }
        let authorizer = s.authorizer.clone();
        let verdicts = tokio::task::spawn_blocking(move || {
            let v = authorizer.authorize_broadcast_batch(&txs);
            (txs, v)
        })
        .await
        .map_err(|e| Status::internal(format!("authorization task failed: {e}")))?;
        let (txs, verdicts) = verdicts;
        let mut futs = Vec::with_capacity(req.envelopes.len());
        for ((env, tx), verdict) in req.envelopes.into_iter().zip(txs).zip(verdicts) {
            verdict.map_err(|e| Status::permission_denied(format!("403: {e}")))?;
            futs.push(s.chain.order_local(env, tx.tx_id().to_owned()));
        }
        let results = futures::future::join_all(futs).await;
        let hint = leader_hint(s);
        let mut last_block = 0;
        for r in results {
            match r {
                Ok(o) => last_block = o.block,
                Err(OrderError::NotLeader { leader }) => {
                    return Ok(Response::new(BroadcastResponse {
                        status: 503,
                        info: "not the leader".into(),
                        leader_hint: leader.unwrap_or(hint),
                    }));
                }
                Err(OrderError::AlreadyOrdered { block }) => {
                    return Ok(Response::new(BroadcastResponse {
                        status: 409,
                        info: block.to_string(),
                        leader_hint: hint,
                    }));
                }
                Err(OrderError::TooLarge { size, max }) => {
                    return Ok(Response::new(BroadcastResponse {
                        status: 413,
                        info: format!("envelope of {size} bytes exceeds {max}"),
                        leader_hint: hint,
                    }));
                }
                Err(e) => {
                    return Ok(Response::new(BroadcastResponse {
                        status: 503,
                        info: e.to_string(),
                        leader_hint: hint,
                    }));
                }
            }
        }
        Ok(Response::new(BroadcastResponse { status: 200, info: last_block.to_string(), leader_hint: hint }))
    }
}

#[tonic::async_trait]
impl Admin for Services {
    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<NodeStatus>, Status> {
        let s = &self.0;
        let m = s.raft.metrics().borrow().clone();
        let raft_state = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        // A halted orderer says so (and why) instead of looking like a healthy follower.
        let raft_state = match s.chain.errored() {
            Some(reason) => format!("halted: {reason}"),
            None => raft_state.to_owned(),
        };
        Ok(Response::new(NodeStatus {
            name: s.name.clone(),
            role: "orderer".into(),
            msp_id: s.msp_id.clone(),
            channel_id: s.channel_id.clone(),
            height: s.store.height(),
            head_hash: s.store.last_hash().unwrap_or(Hash32::ZERO).to_hex(),
            raft_state,
            raft_leader: m.current_leader.unwrap_or(0),
            raft_term: m.current_term,
            commit_hash: String::new(),
        }))
    }
}
