//! Fabric's client services on the peer: `gateway.Gateway` (Evaluate, Endorse, Submit, CommitStatus,
//! ChaincodeEvents), `protos.Deliver` (Deliver, DeliverFiltered, DeliverWithPrivateData) and
//! `protos.Endorser/ProcessProposal`, with Fabric's messages, status codes and error details
//! (docs/fabric-migration.md §5), so `@hyperledger/fabric-gateway` and the other Fabric SDKs connect
//! unchanged. ipechain's own SDK (`ledger-client`), the bridge and the benchmarks speak the same services.
//!
//! Errors, as Fabric's gateway returns them (a gRPC status; endpoint failures also carry one
//! `gateway.ErrorDetail{address, msp_id, message}` each in `grpc-status-details-bin`):
//!
//! | what | status |
//! |---|---|
//! | malformed request or proposal | `INVALID_ARGUMENT` ("failed to unpack transaction proposal: …") |
//! | a channel this peer does not serve | `NOT_FOUND` |
//! | a chaincode not defined on the channel | `FAILED_PRECONDITION` |
//! | Evaluate: the endorser refused (chaincode status ≥ 400, access denied) | `UNKNOWN` "evaluate call to endorser returned error: …" + detail |
//! | Endorse: an endorser refused | `ABORTED` "failed to endorse transaction, see attached details for more info" + details |
//! | Endorse: too few endorsers reachable for the policy | `ABORTED` "failed to collect enough transaction endorsements, …" + details |
//! | Submit: the orderer refused | `ABORTED` "received unsuccessful response from orderer: status=…, info=…" |
//! | Submit: no orderer reachable | `UNAVAILABLE` "no orderers could successfully process transaction" + detail |
//! | CommitStatus, ChaincodeEvents: not a channel reader, bad signature | `PERMISSION_DENIED` |
//!
//! A chaincode's refusal reads `chaincode response <status>, <message>` in its detail, as in Fabric
//! (`ledger_client::ClientError::Refused` reads it back as data).
//!
//! **Where ipechain differs.** `Submit` answers once the ordering service has committed the block holding
//! the transaction (Fabric's once the orderer enqueued it), so an acknowledged transaction is never lost;
//! submitting a transaction that is already in the ledger succeeds (its outcome is the earlier one's, which
//! `CommitStatus` reports) instead of committing a `DUPLICATE_TXID` copy.

use crate::endorser::EndorseError;
use crate::ledger::CommittedBlock;
use crate::service::{Followed, PeerServices, follow_blocks, store_status};
use crate::unix_now;
use fabric_protos::common::{
    ChannelHeader, Envelope, HeaderType, Payload, SignatureHeader, Status as CStatus,
};
use fabric_protos::error_details::status_with_details;
use fabric_protos::gateway::gateway_server::Gateway;
use fabric_protos::gateway::{
    ChaincodeEventsRequest, ChaincodeEventsResponse, CommitStatusRequest, CommitStatusResponse,
    EndorseRequest, EndorseResponse, ErrorDetail, EvaluateRequest, EvaluateResponse,
    SignedChaincodeEventsRequest, SignedCommitStatusRequest, SubmitRequest, SubmitResponse,
};
use fabric_protos::orderer::SeekInfo;
use fabric_protos::protos::deliver_server::Deliver;
use fabric_protos::protos::endorser_server::Endorser as EndorserApi;
use fabric_protos::protos::{
    self as pb, BlockAndPrivateData, DeliverResponse, FilteredBlock, FilteredChaincodeAction,
    FilteredTransaction, FilteredTransactionActions, deliver_response, filtered_transaction,
};
use fabric_protos::seek::{Stop, chaincode_events_start, check_seek_time, plan_deliver};
use futures::Stream;
use ledger_rpc::gateway_session_server::GatewaySession;
use ledger_rpc::messages::{SessionRequest, SessionResponse};
use ledger_types::TxId;
use ledger_types::policy::Endorser as PolicyEndorser;
use ledger_types::proto::{ProposalResponse, SignedProposal};
use ledger_types::store::{BlockStore, StateStore};
use ledger_types::tx::{self, DecodedTx};
use prost::Message;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::{Code, Request, Response, Status, Streaming};

type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Fabric's top-level messages for endpoint failures.
const ENDORSE_FAILED: &str = "failed to endorse transaction, see attached details for more info";
const TOO_FEW_ENDORSEMENTS: &str =
    "failed to collect enough transaction endorsements, see attached details for more info";

/// The detail message of an endorser's unsuccessful response, as Fabric's gateway words it.
fn chaincode_response(r: &pb::Response) -> String {
    format!("chaincode response {}, {}", r.status, r.message)
}

fn success(r: Option<&pb::Response>) -> bool {
    r.is_some_and(|r| (200..400).contains(&r.status))
}

/// How the endorsement of one proposal failed.
enum Failure {
    /// Refused before any endorser was asked: the status as is.
    Request(Status),
    /// An endorser (this peer or another) refused or failed: its detail.
    Endpoint(ErrorDetail),
}

impl<B: BlockStore + 'static, S: StateStore + 'static> PeerServices<B, S>
where
    S::Snapshot: 'static,
{
    fn detail(&self, message: impl Into<String>) -> ErrorDetail {
        ErrorDetail { address: self.address.clone(), msp_id: self.msp_id.clone(), message: message.into() }
    }

    /// What an [`EndorseError`] of this peer's endorser becomes at the gateway.
    fn endorse_failure(&self, e: EndorseError) -> Failure {
        match e {
            EndorseError::BadProposal(m) => Failure::Request(Status::invalid_argument(m)),
            EndorseError::UnknownChannel(c) => {
                Failure::Request(Status::not_found(format!("channel {c:?} is not served by this peer")))
            }
            EndorseError::UnknownContract(c) => Failure::Request(Status::failed_precondition(format!(
                "no peers available to endorse chaincode {c:?} on channel {:?}",
                self.ledger.rules().channel_id
            ))),
            EndorseError::Store(e) => Failure::Request(store_status(e)),
            e @ (EndorseError::Denied(_) | EndorseError::Duplicate(_)) => {
                Failure::Endpoint(self.detail(e.to_string()))
            }
        }
    }

    /// Endorsement by this peer and, when the policy needs them, by other organizations' peers (those of
    /// `orgs` only, when given). Returns the prepared, unsigned transaction.
    async fn endorse(&self, sp: SignedProposal, orgs: &[String]) -> Result<Envelope, Status> {
        let timer = ops::Stopwatch::start();
        let r = self.endorse_untimed(sp, orgs).await;
        self.metrics.endorsed(timer.seconds(), r.is_ok());
        r
    }

    async fn endorse_untimed(&self, sp: SignedProposal, orgs: &[String]) -> Result<Envelope, Status> {
        let failed = |detail: ErrorDetail| status_with_details(Code::Aborted, ENDORSE_FAILED, &[detail]);
        let (local, contract, rwset) = match self.endorse_locally(sp.clone()).await {
            Ok(r) => r,
            Err(e) => {
                return Err(match self.endorse_failure(e) {
                    Failure::Request(s) => s,
                    Failure::Endpoint(d) => failed(d),
                });
            }
        };
        if !success(local.response.as_ref()) || local.endorsement.is_none() {
            return Err(failed(
                self.detail(local.response.as_ref().map(chaincode_response).unwrap_or_default()),
            ));
        }
        let rules = self.ledger.rules();
        let policies = rules.required_policies(&contract, &rwset.ns_rwsets).ok_or_else(|| {
            Status::failed_precondition(format!(
                "chaincode {contract:?}: its simulation touched namespaces no endorsement policy covers"
            ))
        })?;
        let satisfied = |e: &[PolicyEndorser]| policies.iter().all(|p| p.is_satisfied_by(e));
        let mut responses = vec![local];
        let mut endorsers = vec![PolicyEndorser::new(self.msp_id.clone(), "peer")];
        let mut details = Vec::new();
        if !satisfied(&endorsers) {
            for (msp, remote) in &self.remote_endorsers {
                if !orgs.is_empty() && !orgs.contains(msp) {
                    continue;
                }
                let detail = |message: String| ErrorDetail {
                    address: remote.address.clone(),
                    msp_id: msp.clone(),
                    message,
                };
                match remote.client.clone().process_proposal(sp.clone()).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        if !success(r.response.as_ref()) || r.endorsement.is_none() {
                            let message = r.response.as_ref().map(chaincode_response).unwrap_or_default();
                            return Err(failed(detail(message)));
                        }
                        responses.push(r);
                        endorsers.push(PolicyEndorser::new(msp.clone(), "peer"));
                        if satisfied(&endorsers) {
                            break;
                        }
                    }
                    Err(s) => {
                        tracing::warn!(org = %msp, status = %s, "remote endorser failed");
                        details.push(detail(s.message().to_owned()));
                    }
                }
            }
            if !satisfied(&endorsers) {
                let policy: Vec<String> = policies.iter().map(ToString::to_string).collect();
                details.push(self.detail(format!(
                    "endorsements of {} do not satisfy the policy {}",
                    endorsers.iter().map(|e| e.msp_id.as_str()).collect::<Vec<_>>().join(", "),
                    policy.join(" and ")
                )));
                return Err(status_with_details(Code::Aborted, TOO_FEW_ENDORSEMENTS, &details));
            }
        }
        tx::assemble(&sp, &responses)
            .map_err(|e| Status::aborted(format!("failed to assemble transaction: {e}")))
    }

    /// Runs a proposal on this peer without endorsing or ordering it.
    async fn evaluate(self: Arc<Self>, sp: SignedProposal) -> Result<pb::Response, Status> {
        let svc = self.clone();
        let slot = self.endorser.blocking_slots().clone().acquire_owned().await;
        let sim = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let snapshot = svc.ledger.state().snapshot().map_err(EndorseError::Store)?;
            svc.endorser.simulate(&sp, &snapshot, &|_| Ok(false), unix_now())
        })
        .await
        .map_err(|e| Status::internal(format!("task failed: {e}")))?;
        let failed = |detail: ErrorDetail| {
            let message = format!("evaluate call to endorser returned error: {}", detail.message);
            status_with_details(Code::Unknown, &message, &[detail])
        };
        let response = match sim {
            Ok(sim) => tx::response_to_fabric(&sim.response),
            Err(e) => {
                return Err(match self.endorse_failure(e) {
                    Failure::Request(s) => s,
                    Failure::Endpoint(d) => failed(d),
                });
            }
        };
        if !success(Some(&response)) {
            return Err(failed(self.detail(chaincode_response(&response))));
        }
        Ok(response)
    }

    /// Structural checks, then ordering (waits until the ordering service committed the block).
    async fn submit(&self, env: Option<Envelope>) -> Result<(), Status> {
        let timer = ops::Stopwatch::start();
        let r = self.submit_untimed(env).await;
        self.metrics.submitted(timer.seconds(), r.is_ok());
        r
    }

    async fn submit_untimed(&self, env: Option<Envelope>) -> Result<(), Status> {
        let env = env.ok_or_else(|| Status::invalid_argument("a prepared transaction is required"))?;
        if env.signature.is_empty() {
            return Err(Status::invalid_argument("prepared transaction must be signed"));
        }
        let encoded = bytes::Bytes::from(env.encode_to_vec());
        let decoded = DecodedTx::decode_bytes(encoded.clone())
            .map_err(|e| Status::invalid_argument(format!("failed to unpack prepared transaction: {e}")))?;
        if decoded.channel_id() != self.ledger.rules().channel_id {
            return Err(Status::not_found(format!(
                "channel {:?} is not served by this peer",
                decoded.channel_id()
            )));
        }
        if self.ledger.contains_tx(decoded.tx_id()).map_err(store_status)? {
            // Already ordered and committed: its outcome stands (CommitStatus reports it).
            return Ok(());
        }
        match self.orderers.broadcast_encoded(encoded).await {
            Ok(()) => Ok(()),
            Err(s) => {
                let fabric = match s.code() {
                    Code::InvalidArgument | Code::ResourceExhausted => Some(CStatus::BadRequest),
                    Code::PermissionDenied => Some(CStatus::Forbidden),
                    Code::NotFound => Some(CStatus::NotFound),
                    Code::AlreadyExists => return Ok(()),
                    _ => None,
                };
                Err(match fabric {
                    Some(st) => Status::aborted(format!(
                        "received unsuccessful response from orderer: status={}, info={}",
                        st.as_str_name(),
                        s.message()
                    )),
                    None => status_with_details(
                        Code::Unavailable,
                        "no orderers could successfully process transaction",
                        &[ErrorDetail {
                            address: String::new(),
                            msp_id: String::new(),
                            message: s.message().to_owned(),
                        }],
                    ),
                })
            }
        }
    }

    /// Checks a signed request's identity (a channel reader, valid now) and its signature over `request`.
    fn authorize_reader(&self, identity: &[u8], request: &[u8], signature: &[u8]) -> Result<(), String> {
        let ids = self.ledger.identities();
        let id = ids.validate(identity, unix_now())?;
        if !self.ledger.rules().readers.contains(&id.msp_id) {
            return Err(format!("{} is not a reader of this channel", id.msp_id));
        }
        if !ids.verify(&id, request, signature) {
            return Err("the request's signature does not verify".into());
        }
        Ok(())
    }

    fn check_channel(&self, channel_id: &str) -> Result<(), Status> {
        if channel_id != self.ledger.rules().channel_id {
            return Err(Status::not_found(format!("channel {channel_id:?} is not served by this peer")));
        }
        Ok(())
    }

    /// A seek request of `protos.Deliver`, taken apart and authorized; the refusal status otherwise.
    fn check_seek(&self, env: &Envelope) -> Result<SeekInfo, CStatus> {
        let payload = Payload::decode(env.payload.as_ref()).map_err(|_| CStatus::BadRequest)?;
        let header = payload.header.ok_or(CStatus::BadRequest)?;
        let ch = ChannelHeader::decode(header.channel_header.as_ref()).map_err(|_| CStatus::BadRequest)?;
        if ch.channel_id != self.ledger.rules().channel_id {
            return Err(CStatus::NotFound);
        }
        if ch.r#type != HeaderType::DeliverSeekInfo as i32 {
            return Err(CStatus::BadRequest);
        }
        check_seek_time(&ch, unix_now()).map_err(|e| {
            tracing::debug!(reason = %e, "deliver request refused");
            CStatus::BadRequest
        })?;
        let sh =
            SignatureHeader::decode(header.signature_header.as_ref()).map_err(|_| CStatus::BadRequest)?;
        self.authorize_reader(&sh.creator, &env.payload, &env.signature).map_err(|e| {
            tracing::debug!(reason = %e, "deliver request refused");
            CStatus::Forbidden
        })?;
        SeekInfo::decode(payload.data.as_ref()).map_err(|_| CStatus::BadRequest)
    }
}

/// Fabric's `gateway.Gateway` on a peer.
pub struct FabricGateway<B: BlockStore + 'static, S: StateStore + 'static>(pub Arc<PeerServices<B, S>>);

#[tonic::async_trait]
impl<B: BlockStore + 'static, S: StateStore + 'static> Gateway for FabricGateway<B, S>
where
    S::Snapshot: 'static,
{
    async fn endorse(&self, request: Request<EndorseRequest>) -> Result<Response<EndorseResponse>, Status> {
        let r = request.into_inner();
        let sp = r
            .proposed_transaction
            .ok_or_else(|| Status::invalid_argument("a signed proposal is required"))?;
        let prepared = self.0.endorse(sp, &r.endorsing_organizations).await?;
        Ok(Response::new(EndorseResponse { prepared_transaction: Some(prepared) }))
    }

    async fn submit(&self, request: Request<SubmitRequest>) -> Result<Response<SubmitResponse>, Status> {
        self.0.submit(request.into_inner().prepared_transaction).await?;
        Ok(Response::new(SubmitResponse {}))
    }

    async fn commit_status(
        &self,
        request: Request<SignedCommitStatusRequest>,
    ) -> Result<Response<CommitStatusResponse>, Status> {
        let signed = request.into_inner();
        if signed.request.is_empty() {
            return Err(Status::invalid_argument("a commit status request is required"));
        }
        let req = CommitStatusRequest::decode(signed.request.as_ref())
            .map_err(|e| Status::invalid_argument(format!("failed to unpack commit status request: {e}")))?;
        self.0
            .authorize_reader(&req.identity, &signed.request, &signed.signature)
            .map_err(Status::permission_denied)?;
        self.0.check_channel(&req.channel_id)?;
        TxId::parse(&req.transaction_id).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (code, block) = self.0.ledger.wait_for_tx(&req.transaction_id).await.map_err(store_status)?;
        Ok(Response::new(CommitStatusResponse { result: i32::from(code.as_u8()), block_number: block }))
    }

    async fn evaluate(
        &self,
        request: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        let sp = request
            .into_inner()
            .proposed_transaction
            .ok_or_else(|| Status::invalid_argument("a signed proposal is required"))?;
        let result = self.0.clone().evaluate(sp).await?;
        Ok(Response::new(EvaluateResponse { result: Some(result) }))
    }

    type ChaincodeEventsStream = Out<ChaincodeEventsResponse>;

    /// Events of valid transactions of one chaincode, one response per block that has any. Starts at the
    /// block of `after_transaction_id` when the ledger has it (skipping that transaction and those before
    /// it in the block), else at `start_position` (`specified`, or `next_commit`/unset: the next block).
    async fn chaincode_events(
        &self,
        request: Request<SignedChaincodeEventsRequest>,
    ) -> Result<Response<Self::ChaincodeEventsStream>, Status> {
        let signed = request.into_inner();
        let req = ChaincodeEventsRequest::decode(signed.request.as_ref()).map_err(|e| {
            Status::invalid_argument(format!("failed to unpack chaincode events request: {e}"))
        })?;
        self.0
            .authorize_reader(&req.identity, &signed.request, &signed.signature)
            .map_err(Status::permission_denied)?;
        self.0.check_channel(&req.channel_id)?;
        if req.chaincode_id.is_empty() {
            return Err(Status::invalid_argument("a chaincode id is required"));
        }
        let ledger = self.0.ledger.clone();
        let height = ledger.height();
        let after = req.after_transaction_id.clone();
        let after_block = match TxId::parse(&after) {
            Ok(id) => ledger
                .blocks()
                .tx_location(&id)
                .map_err(store_status)?
                .map(|l| l.block)
                .filter(|&b| b < height),
            Err(_) => None,
        };
        let start = chaincode_events_start(req.start_position.as_ref(), after_block, height)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let chaincode = req.chaincode_id;
        let (tx, rx) = mpsc::channel(64);
        let stop = self.0.shutdown.clone();
        tokio::spawn(async move {
            let map = move |cb: &CommittedBlock| {
                // In the block of `after`, skip it and everything before it; later blocks are whole.
                let skip = match after_block {
                    Some(b) if b == cb.number => {
                        cb.txs.iter().position(|t| t.0 == after).map_or(0, |p| p + 1)
                    }
                    _ => 0,
                };
                let events: Vec<pb::ChaincodeEvent> = cb
                    .txs
                    .iter()
                    .skip(skip)
                    .filter(|(_, code, _)| code.is_valid())
                    .filter_map(|(_, _, ev)| ev.as_ref())
                    .filter(|ev| ev.contract == chaincode)
                    .map(tx::event_to_fabric)
                    .collect();
                (!events.is_empty()).then(|| Ok(ChaincodeEventsResponse { events, block_number: cb.number }))
            };
            follow_blocks(ledger, stop, start, None, false, map, tx).await;
        });
        Ok(Response::new(crate::service::receiver_stream(rx)))
    }
}

/// What one kind of `protos.Deliver` stream sends for a block.
#[derive(Clone, Copy)]
enum Content {
    Block,
    Filtered,
    WithPrivateData,
}

fn deliver_status(status: CStatus) -> DeliverResponse {
    DeliverResponse { r#type: Some(deliver_response::Type::Status(status as i32)) }
}

/// A committed block as a filtered block: each transaction's id, type, validation code and chaincode event
/// without its payload. (ipechain channels have one configuration transaction, in the genesis block.)
fn filtered(channel_id: &str, cb: &CommittedBlock) -> FilteredBlock {
    let kind = if cb.number == 0 { HeaderType::Config } else { HeaderType::EndorserTransaction };
    let filtered_transactions = cb
        .txs
        .iter()
        .map(|(tx_id, code, ev)| FilteredTransaction {
            txid: tx_id.clone(),
            r#type: kind as i32,
            tx_validation_code: i32::from(code.as_u8()),
            data: (kind == HeaderType::EndorserTransaction).then(|| {
                let chaincode_actions = ev
                    .iter()
                    .map(|e| FilteredChaincodeAction {
                        chaincode_event: Some(pb::ChaincodeEvent {
                            chaincode_id: e.contract.clone(),
                            tx_id: e.tx_id.clone(),
                            event_name: e.event_name.clone(),
                            payload: Vec::new().into(),
                        }),
                    })
                    .collect();
                filtered_transaction::Data::TransactionActions(FilteredTransactionActions {
                    chaincode_actions,
                })
            }),
        })
        .collect();
    FilteredBlock { channel_id: channel_id.to_owned(), number: cb.number, filtered_transactions }
}

fn block_message(
    content: Content,
    channel_id: &str,
    headers_only: bool,
    cb: &CommittedBlock,
) -> DeliverResponse {
    let block = || {
        let mut b = (*cb.block).clone();
        if headers_only {
            b.data = None;
        }
        b
    };
    let t = match content {
        Content::Block => deliver_response::Type::Block(block()),
        Content::Filtered => deliver_response::Type::FilteredBlock(filtered(channel_id, cb)),
        Content::WithPrivateData => deliver_response::Type::BlockAndPrivateData(BlockAndPrivateData {
            block: Some(block()),
            private_data_map: Default::default(),
        }),
    };
    DeliverResponse { r#type: Some(t) }
}

/// Fabric's `protos.Deliver` on a peer: committed blocks (with their validation codes), filtered blocks,
/// or blocks with (always empty) private data, for signed `DELIVER_SEEK_INFO` requests from channel
/// readers; the seek semantics are the orderer's (`fabric_protos::seek::plan_deliver`), as in Fabric.
pub struct FabricDeliver<B: BlockStore + 'static, S: StateStore + 'static>(pub Arc<PeerServices<B, S>>);

impl<B: BlockStore + 'static, S: StateStore + 'static> FabricDeliver<B, S>
where
    S::Snapshot: 'static,
{
    /// Serves the seek requests of one stream in turn: each one's blocks, then its status; a refusal ends
    /// the stream after its status.
    fn serve(&self, mut inbound: Streaming<Envelope>, content: Content) -> Out<DeliverResponse> {
        let svc = self.0.clone();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let channel_id = svc.ledger.rules().channel_id.clone();
            loop {
                let env = tokio::select! {
                    m = inbound.message() => match m { Ok(Some(env)) => env, _ => break },
                    () = svc.shutdown.cancelled() => break,
                };
                let outcome = match svc.check_seek(&env) {
                    Err(st) => st,
                    Ok(seek) => match plan_deliver(&seek, svc.ledger.height()) {
                        Err(e) => e.status(),
                        Ok(plan) => {
                            let stop = match plan.stop {
                                Stop::At(n) => Some(n),
                                Stop::Never => None,
                            };
                            let headers_only = plan.headers_only;
                            let ch = channel_id.clone();
                            let map = move |cb: &CommittedBlock| {
                                Some(Ok(block_message(content, &ch, headers_only, cb)))
                            };
                            let followed = follow_blocks(
                                svc.ledger.clone(),
                                svc.shutdown.clone(),
                                plan.start,
                                stop,
                                plan.fail_if_not_ready,
                                map,
                                tx.clone(),
                            )
                            .await;
                            match followed {
                                Followed::Reached => CStatus::Success,
                                Followed::NotReady => CStatus::NotFound,
                                Followed::Failed => CStatus::InternalServerError,
                                Followed::Closed => break,
                            }
                        }
                    },
                };
                if tx.send(Ok(deliver_status(outcome))).await.is_err() || outcome != CStatus::Success {
                    break;
                }
            }
        });
        crate::service::receiver_stream(rx)
    }
}

#[tonic::async_trait]
impl<B: BlockStore + 'static, S: StateStore + 'static> Deliver for FabricDeliver<B, S>
where
    S::Snapshot: 'static,
{
    type DeliverStream = Out<DeliverResponse>;

    async fn deliver(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        Ok(Response::new(self.serve(request.into_inner(), Content::Block)))
    }

    type DeliverFilteredStream = Out<DeliverResponse>;

    async fn deliver_filtered(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverFilteredStream>, Status> {
        Ok(Response::new(self.serve(request.into_inner(), Content::Filtered)))
    }

    type DeliverWithPrivateDataStream = Out<DeliverResponse>;

    async fn deliver_with_private_data(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverWithPrivateDataStream>, Status> {
        Ok(Response::new(self.serve(request.into_inner(), Content::WithPrivateData)))
    }
}

/// Fabric's `protos.Endorser` on a peer, called by other peers' gateways (and pre-gateway Fabric SDKs).
/// As Fabric's endorser, a proposal refused by the checks is answered with a `Response{500, reason}` and
/// no endorsement, not a gRPC error; only a store failure is an error status.
pub struct FabricEndorser<B: BlockStore + 'static, S: StateStore + 'static>(pub Arc<PeerServices<B, S>>);

#[tonic::async_trait]
impl<B: BlockStore + 'static, S: StateStore + 'static> EndorserApi for FabricEndorser<B, S>
where
    S::Snapshot: 'static,
{
    async fn process_proposal(
        &self,
        request: Request<SignedProposal>,
    ) -> Result<Response<ProposalResponse>, Status> {
        match self.0.endorse_locally(request.into_inner()).await {
            Ok((r, _, _)) => Ok(Response::new(r)),
            Err(EndorseError::Store(e)) => Err(store_status(e)),
            Err(e) => Ok(Response::new(ProposalResponse {
                version: 1,
                response: Some(pb::Response {
                    status: 500,
                    message: e.to_string(),
                    payload: Vec::new().into(),
                }),
                ..Default::default()
            })),
        }
    }
}

/// Most requests of one client session handled at once (more wait until one is answered). A submit holds
/// its slot until its block is ordered (~100-300 ms), and one client may be a gateway multiplexing thousands
/// of requests.
const SESSION_IN_FLIGHT: usize = 8192;

/// ipechain's `GatewaySession` extension (ledger-rpc): a client's Endorse and Submit requests as messages
/// of one long-lived stream. Each is handled exactly as the unary `gateway.Gateway` call (same checks, same
/// signatures, same wait for ordering) on its own task and answered under its id with the unary call's
/// outcome, error details included. It saves a new HTTP/2 stream (headers, trailers, routing, on both
/// sides) per request: measured in docs/ledger-perf.md.
pub struct GatewaySessions<B: BlockStore + 'static, S: StateStore + 'static>(pub Arc<PeerServices<B, S>>);

impl<B: BlockStore + 'static, S: StateStore + 'static> PeerServices<B, S>
where
    S::Snapshot: 'static,
{
    /// One request of a session, answered as its unary counterpart would be.
    async fn session_request(&self, req: SessionRequest) -> SessionResponse {
        let id = req.id;
        let outcome = match (req.endorse, req.submit) {
            (Some(e), None) => match e.proposed_transaction {
                Some(sp) => self
                    .endorse(sp, &e.endorsing_organizations)
                    .await
                    .map(|p| Some(EndorseResponse { prepared_transaction: Some(p) })),
                None => Err(Status::invalid_argument("a signed proposal is required")),
            },
            (None, Some(s)) => self.submit(s.prepared_transaction).await.map(|()| None),
            _ => Err(Status::invalid_argument("a session request carries exactly one of endorse and submit")),
        };
        match outcome {
            Ok(endorse) => SessionResponse { id, endorse, ..Default::default() },
            Err(st) => SessionResponse {
                id,
                code: st.code() as i32,
                message: st.message().to_owned(),
                endorse: None,
                details: st.details().to_vec().into(),
            },
        }
    }
}

#[tonic::async_trait]
impl<B: BlockStore + 'static, S: StateStore + 'static> GatewaySession for GatewaySessions<B, S>
where
    S::Snapshot: 'static,
{
    type SessionStream = Out<SessionResponse>;

    async fn session(
        &self,
        request: Request<Streaming<SessionRequest>>,
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
                    Ok(None) => break,
                    Err(s) => {
                        // A malformed message ends the session with the decoder's status (requests already
                        // taken are still carried out; their answers may be cut off with the stream).
                        tracing::debug!(status = %s, "gateway session ended by a bad message");
                        let _ = tx.send(Err(s)).await;
                        break;
                    }
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
        Ok(Response::new(crate::service::receiver_stream(rx)))
    }
}
