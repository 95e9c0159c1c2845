//! The gateway connection and contract handles.

use crate::checkpoint::Checkpoint;
use crate::commits::Watcher;
use crate::session;
use fabric_protos::error_details::error_details;
use fabric_protos::gateway::gateway_client::GatewayClient;
use fabric_protos::gateway::{
    ChaincodeEventsRequest, ChaincodeEventsResponse, CommitStatusRequest, EndorseRequest, EndorseResponse,
    ErrorDetail, EvaluateRequest, SignedChaincodeEventsRequest, SignedCommitStatusRequest, SubmitRequest,
};
use fabric_protos::orderer::{SeekPosition, SeekSpecified, seek_position};
use fabric_protos::protos::deliver_client::DeliverClient;
use fabric_protos::protos::{DeliverResponse, deliver_response};
use ledger_rpc::gateway_session_client::GatewaySessionClient;
use ledger_rpc::messages::SessionRequest;
use ledger_rpc::tls::{TlsMaterial, channel};
use ledger_types::proto::{Block, ContractEvent, Envelope, Timestamp};
use ledger_types::tx::{
    ProposalBuilder, Signer, event_from_fabric, prepared_response, seek_envelope, seek_range, sign_envelope,
};
use ledger_types::{ChannelId, TxValidationCode};
use prost::Message;
use rand_core::RngCore;
use std::collections::VecDeque;
use std::sync::Arc;
use tonic::transport::Channel;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Connection setup failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The peer answered with an error status (Fabric's gateway statuses; see [`ClientError::details`]).
    #[error("{}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// The contract refused the proposal: its status (400, 403, 404, 409, 500, …) and message, as the
    /// endorsing peer reported them (Fabric's error detail `chaincode response <status>, <message>`).
    #[error("the contract refused (status {status}): {message}")]
    Refused {
        /// The contract's status.
        status: i32,
        /// Its message.
        message: String,
        /// The peer that reported it (`host:port`).
        address: String,
    },
    /// A malformed argument (e.g. channel name).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The transaction was committed but marked invalid.
    #[error("transaction {tx_id} committed as invalid in block {block}: {code}")]
    NotValid { tx_id: String, code: TxValidationCode, block: u64 },
    /// The peer's answer did not make sense.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The gateway's error details of a failed call: one per endpoint (peer or orderer) that failed, as
    /// Fabric's gateway attaches them (empty for other errors).
    pub fn details(&self) -> Vec<ErrorDetail> {
        match self {
            ClientError::Status(s) => error_details(s).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// The contract's status of a refusal.
    pub fn contract_status(&self) -> Option<i32> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A gateway error status as the SDK reports it: a contract's refusal (an error detail reading `chaincode
/// response <status>, <message>`) becomes [`ClientError::Refused`]; anything else stays a status.
fn from_status(s: tonic::Status) -> ClientError {
    for d in error_details(&s).unwrap_or_default() {
        if let Some(rest) = d.message.strip_prefix("chaincode response ")
            && let Some((status, message)) = rest.split_once(", ")
            && let Ok(status) = status.parse()
        {
            return ClientError::Refused { status, message: message.to_owned(), address: d.address };
        }
    }
    ClientError::Status(s)
}

/// A transaction that was submitted for ordering (not yet known to be committed).
#[derive(Clone, Debug)]
pub struct Submitted {
    /// Its id.
    pub tx_id: String,
    /// The contract's response payload as simulated.
    pub payload: Vec<u8>,
}

/// A transaction that was committed as valid.
#[derive(Clone, Debug)]
pub struct Committed {
    /// Its id.
    pub tx_id: String,
    /// The contract's response payload.
    pub payload: Vec<u8>,
    /// The block holding it.
    pub block: u64,
}

/// A contract event with its position in the chain.
#[derive(Clone, Debug)]
pub struct TxEvent {
    /// The block holding the transaction.
    pub block: u64,
    /// The event (its `tx_id` names the transaction).
    pub event: ContractEvent,
}

/// A connection to a peer's gateway on one channel, signing as one identity.
#[derive(Clone)]
pub struct Gateway {
    client: GatewayClient<Channel>,
    deliver: DeliverClient<Channel>,
    signer: Arc<dyn Signer>,
    channel: ChannelId,
    /// The commit watcher of `submit` (started on first use, shared by clones).
    watcher: Arc<tokio::sync::Mutex<Option<Arc<Watcher>>>>,
    sessions: GatewaySessionClient<Channel>,
    /// The `GatewaySession` stream for Endorse and Submit (opened on first use, shared by clones).
    session: Arc<std::sync::Mutex<session::Slot>>,
}

#[allow(clippy::disallowed_methods)] // the SDK's one clock read: proposal timestamps come from the client
fn now() -> Timestamp {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

/// The largest message the SDK sends or accepts (a block).
const MAX_MESSAGE: usize = 256 << 20;

impl Gateway {
    /// Connects (lazily) to a peer at `endpoint` (`host:port`) with mutual TLS.
    pub fn connect(
        endpoint: &str,
        tls: &TlsMaterial,
        signer: Arc<dyn Signer>,
        channel_id: &str,
    ) -> Result<Gateway, ClientError> {
        let ch = channel(endpoint, tls)?;
        Gateway::with_channel(ch, signer, channel_id)
    }

    /// Uses an existing gRPC channel (several gateways may share one connection).
    pub fn with_channel(
        ch: Channel,
        signer: Arc<dyn Signer>,
        channel_id: &str,
    ) -> Result<Gateway, ClientError> {
        let channel = ChannelId::parse(channel_id).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let client = GatewayClient::new(ch.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let deliver = DeliverClient::new(ch.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let sessions = GatewaySessionClient::new(ch)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Ok(Gateway {
            client,
            deliver,
            signer,
            channel,
            watcher: Arc::default(),
            sessions,
            session: Arc::default(),
        })
    }

    /// Endorse and Submit as Fabric's unary gateway calls only, never on ipechain's `GatewaySession`
    /// stream (for comparison; the outcomes are the same either way).
    pub fn unary_only(self) -> Gateway {
        session::disable(&self.session);
        self
    }

    /// Whether Endorse and Submit currently travel on a `GatewaySession` stream (one is opened by the first
    /// of them when the peer offers sessions; false with a Fabric peer or after [`Gateway::unary_only`]).
    pub fn on_session(&self) -> bool {
        session::is_open(&self.session)
    }

    /// Fabric's gateway `Endorse`, on the session stream when the peer offers one.
    async fn endorse(&self, req: EndorseRequest) -> Result<EndorseResponse, ClientError> {
        if let Some(s) = session::get(&self.session, &self.sessions).await {
            let r = s
                .call(SessionRequest { endorse: Some(req), ..Default::default() })
                .await
                .map_err(from_status)?;
            return r.endorse.ok_or_else(|| ClientError::Protocol("no endorse response".into()));
        }
        Ok(self.client.clone().endorse(req).await.map_err(from_status)?.into_inner())
    }

    /// Fabric's gateway `Submit`, on the session stream when the peer offers one.
    async fn submit(&self, req: SubmitRequest) -> Result<(), ClientError> {
        if let Some(s) = session::get(&self.session, &self.sessions).await {
            s.call(SessionRequest { submit: Some(req), ..Default::default() }).await.map_err(from_status)?;
            return Ok(());
        }
        self.client.clone().submit(req).await.map_err(from_status)?;
        Ok(())
    }

    /// The running commit watcher, started if needed (see [`crate::commits`]); `None` when it cannot be
    /// started (the caller then asks `CommitStatus`).
    async fn watcher(&self) -> Option<Arc<Watcher>> {
        let mut slot = self.watcher.lock().await;
        if let Some(w) = slot.as_ref().filter(|w| w.alive()) {
            return Some(w.clone());
        }
        // The stream starts at the peer's height before any transaction is registered with the new watcher.
        let mut stream = match self.commits_from_now().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "commit watcher: no filtered-block stream; using CommitStatus");
                return None;
            }
        };
        let w = Arc::new(Watcher::default());
        let weak = Arc::downgrade(&w);
        tokio::spawn(async move {
            // Runs while a gateway clone holds the watcher and the stream lasts.
            while let Ok(Some((number, txs))) = stream.next().await {
                let Some(w) = weak.upgrade() else { return };
                w.block(number, txs);
            }
            if let Some(w) = weak.upgrade() {
                w.end();
            }
        });
        *slot = Some(w.clone());
        Some(w)
    }

    /// The signing identity.
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// A handle on a contract of the channel.
    pub fn contract(&self, name: &str) -> ContractClient {
        ContractClient { gw: self.clone(), name: name.to_owned() }
    }

    /// Waits until `tx_id` is committed; returns its validation code and block.
    pub async fn commit_status(&self, tx_id: &str) -> Result<(TxValidationCode, u64), ClientError> {
        let request = CommitStatusRequest {
            transaction_id: tx_id.to_owned(),
            channel_id: self.channel.to_string(),
            identity: self.signer.serialized_identity().to_vec().into(),
        }
        .encode_to_vec();
        let signature = self.signer.sign(&request);
        let r = self
            .client
            .clone()
            .commit_status(SignedCommitStatusRequest { request: request.into(), signature: signature.into() })
            .await
            .map_err(from_status)?
            .into_inner();
        let code = TxValidationCode::from_i32(r.result)
            .ok_or_else(|| ClientError::Protocol(format!("unknown validation code {}", r.result)))?;
        Ok((code, r.block_number))
    }

    /// Contract events of `contract` after `checkpoint`, in chain order, with no gaps and no duplicates.
    pub async fn contract_events(
        &self,
        contract: &str,
        checkpoint: Checkpoint,
    ) -> Result<EventStream, ClientError> {
        let request = ChaincodeEventsRequest {
            channel_id: self.channel.to_string(),
            chaincode_id: contract.to_owned(),
            identity: self.signer.serialized_identity().to_vec().into(),
            start_position: Some(SeekPosition {
                r#type: Some(seek_position::Type::Specified(SeekSpecified { number: checkpoint.block })),
            }),
            after_transaction_id: checkpoint.tx_id.unwrap_or_default(),
        }
        .encode_to_vec();
        let signature = self.signer.sign(&request);
        let stream = self
            .client
            .clone()
            .chaincode_events(SignedChaincodeEventsRequest {
                request: request.into(),
                signature: signature.into(),
            })
            .await
            .map_err(from_status)?
            .into_inner();
        Ok(EventStream { stream, pending: VecDeque::new() })
    }

    /// A `protos.Deliver` stream of one kind for blocks `start..=stop` (`start` `None`: the next block
    /// the peer commits; `stop` `None`: forever).
    async fn seek(
        &self,
        start: Option<u64>,
        stop: Option<u64>,
        filtered: bool,
    ) -> Result<tonic::Streaming<DeliverResponse>, ClientError> {
        let env = seek_envelope(self.signer.as_ref(), self.channel.as_str(), &seek_range(start, stop), now());
        let req = open_request(env);
        let mut d = self.deliver.clone();
        let r = if filtered { d.deliver_filtered(req).await } else { d.deliver(req).await };
        Ok(r.map_err(from_status)?.into_inner())
    }

    /// Commit notifications from `start`, then live: per block, each transaction's id and validation code
    /// (Fabric's filtered blocks; far lighter than whole blocks).
    pub async fn commits(&self, start: u64, stop: Option<u64>) -> Result<FilteredStream, ClientError> {
        Ok(FilteredStream { stream: self.seek(Some(start), stop, true).await? })
    }

    /// Filtered blocks from the next one the peer commits, then live (Fabric's `next_commit` seek: no
    /// Admin rights needed to know where the chain ends).
    pub async fn commits_from_now(&self) -> Result<FilteredStream, ClientError> {
        Ok(FilteredStream { stream: self.seek(None, None, true).await? })
    }

    /// Committed blocks (with validation codes) from `start`, then live.
    pub async fn blocks(&self, start: u64, stop: Option<u64>) -> Result<BlockStream, ClientError> {
        Ok(BlockStream { stream: self.seek(Some(start), stop, false).await? })
    }
}

/// A request stream of one message that stays open (the server may take further requests on it; the
/// SDK sends none).
fn open_request(env: Envelope) -> impl tokio_stream::Stream<Item = Envelope> + Send + 'static {
    use tokio_stream::StreamExt;
    tokio_stream::iter([env]).chain(tokio_stream::pending())
}

/// A handle on one contract.
#[derive(Clone)]
pub struct ContractClient {
    gw: Gateway,
    name: String,
}

impl ContractClient {
    /// A signed proposal (Fabric's, as `@hyperledger/fabric-gateway` builds it: 24 random nonce bytes, the
    /// function name as the first argument) and its transaction id.
    fn proposal(&self, function: &str, args: &[Vec<u8>]) -> (ledger_types::proto::SignedProposal, String) {
        let mut nonce = vec![0u8; 24];
        rand_core::OsRng.fill_bytes(&mut nonce);
        let (sp, tx_id) = ProposalBuilder::new(self.gw.channel.clone(), self.name.clone(), function)
            .args(args.iter().cloned())
            .sign(self.gw.signer.as_ref(), nonce, now());
        (sp, tx_id.to_string())
    }

    /// Like [`ContractClient::submit`], as the chaincode's initialization (`is_init`: the first
    /// transaction a definition with `init_required` takes, Fabric's `--isInit`).
    pub async fn submit_init(&self, function: &str, args: &[Vec<u8>]) -> Result<Committed, ClientError> {
        let mut nonce = vec![0u8; 24];
        rand_core::OsRng.fill_bytes(&mut nonce);
        let (sp, tx_id) = ProposalBuilder::new(self.gw.channel.clone(), self.name.clone(), function)
            .args(args.iter().cloned())
            .init()
            .sign(self.gw.signer.as_ref(), nonce, now());
        self.submit_proposal(sp, tx_id.to_string()).await
    }

    /// Runs a function on one peer without ordering it (a query). A contract's refusal is
    /// [`ClientError::Refused`].
    pub async fn evaluate(&self, function: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, ClientError> {
        let (sp, tx_id) = self.proposal(function, args);
        let req = EvaluateRequest {
            transaction_id: tx_id,
            channel_id: self.gw.channel.to_string(),
            proposed_transaction: Some(sp),
            target_organizations: Vec::new(),
        };
        let r = self.gw.client.clone().evaluate(req).await.map_err(from_status)?.into_inner();
        let r = r.result.ok_or_else(|| ClientError::Protocol("no result".into()))?;
        Ok(r.payload.into())
    }

    /// Endorses, signs and submits for ordering (Fabric's gateway `Endorse` and `Submit`); returns once
    /// the ordering service has the transaction, without waiting for the peers' commit. A contract's
    /// refusal is [`ClientError::Refused`].
    pub async fn submit_async(&self, function: &str, args: &[Vec<u8>]) -> Result<Submitted, ClientError> {
        let (sp, tx_id) = self.proposal(function, args);
        self.send(sp, tx_id).await
    }

    /// Endorses and submits a signed proposal.
    async fn send(
        &self,
        sp: ledger_types::proto::SignedProposal,
        tx_id: String,
    ) -> Result<Submitted, ClientError> {
        let channel_id = self.gw.channel.to_string();
        let endorse = EndorseRequest {
            transaction_id: tx_id.clone(),
            channel_id: channel_id.clone(),
            proposed_transaction: Some(sp),
            endorsing_organizations: Vec::new(),
        };
        let endorsed = self.gw.endorse(endorse).await?;
        let prepared = endorsed
            .prepared_transaction
            .ok_or_else(|| ClientError::Protocol("no prepared transaction".into()))?;
        let payload = prepared_response(&prepared)
            .map_err(|e| ClientError::Protocol(format!("prepared transaction: {e}")))?
            .payload;
        let envelope: Envelope = sign_envelope(self.gw.signer.as_ref(), &prepared);
        let submit =
            SubmitRequest { transaction_id: tx_id.clone(), channel_id, prepared_transaction: Some(envelope) };
        self.gw.submit(submit).await?;
        Ok(Submitted { tx_id, payload: payload.into() })
    }

    /// Endorses, submits and waits until committed; an invalid commit is an error.
    ///
    /// The commit is learnt from the gateway's commit watcher (one filtered-block stream for all its
    /// submissions), else from a `CommitStatus` call.
    pub async fn submit(&self, function: &str, args: &[Vec<u8>]) -> Result<Committed, ClientError> {
        let (sp, tx_id) = self.proposal(function, args);
        self.submit_proposal(sp, tx_id).await
    }

    async fn submit_proposal(
        &self,
        sp: ledger_types::proto::SignedProposal,
        tx_id: String,
    ) -> Result<Committed, ClientError> {
        let pending = match self.gw.watcher().await {
            Some(w) => w.expect(&tx_id),
            None => None,
        };
        let s = self.send(sp, tx_id).await?;
        let seen = match pending {
            Some(p) => p.outcome().await,
            None => None,
        };
        let (code, block) = match seen {
            Some(outcome) => outcome,
            None => self.gw.commit_status(&s.tx_id).await?,
        };
        if !code.is_valid() {
            return Err(ClientError::NotValid { tx_id: s.tx_id, code, block });
        }
        Ok(Committed { tx_id: s.tx_id, payload: s.payload, block })
    }
}

/// A stream of contract events.
pub struct EventStream {
    stream: tonic::Streaming<ChaincodeEventsResponse>,
    pending: VecDeque<TxEvent>,
}

impl EventStream {
    /// The next event; `None` when the peer closed the stream.
    pub async fn next(&mut self) -> Result<Option<TxEvent>, ClientError> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(Some(e));
            }
            match self.stream.message().await.map_err(from_status)? {
                Some(r) => {
                    let block = r.block_number;
                    self.pending
                        .extend(r.events.into_iter().map(|e| TxEvent { block, event: event_from_fabric(e) }));
                }
                None => return Ok(None),
            }
        }
    }
}

/// The next block-carrying message of a deliver stream; `None` once it ended with `SUCCESS` or closed.
async fn next_delivered(
    stream: &mut tonic::Streaming<DeliverResponse>,
) -> Result<Option<deliver_response::Type>, ClientError> {
    match stream.message().await.map_err(from_status)?.and_then(|m| m.r#type) {
        Some(deliver_response::Type::Status(s)) => {
            let status = fabric_protos::common::Status::try_from(s)
                .map_or_else(|_| s.to_string(), |s| s.as_str_name().to_owned());
            if s == fabric_protos::common::Status::Success as i32 {
                Ok(None)
            } else {
                Err(ClientError::Protocol(format!("deliver refused: {status}")))
            }
        }
        other => Ok(other),
    }
}

/// A stream of filtered blocks: `(block number, [(tx id, code)])`.
pub struct FilteredStream {
    stream: tonic::Streaming<DeliverResponse>,
}

impl FilteredStream {
    /// The next block's commit outcomes; `None` when the stream ended.
    pub async fn next(&mut self) -> Result<Option<(u64, Vec<(String, TxValidationCode)>)>, ClientError> {
        loop {
            match next_delivered(&mut self.stream).await? {
                Some(deliver_response::Type::FilteredBlock(b)) => {
                    let txs = b
                        .filtered_transactions
                        .into_iter()
                        .map(|t| {
                            let code = TxValidationCode::from_i32(t.tx_validation_code)
                                .unwrap_or(TxValidationCode::InvalidOtherReason);
                            (t.txid, code)
                        })
                        .collect();
                    return Ok(Some((b.number, txs)));
                }
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }
}

/// A stream of committed blocks.
pub struct BlockStream {
    stream: tonic::Streaming<DeliverResponse>,
}

impl BlockStream {
    /// The next block; `None` when the stream ended.
    pub async fn next(&mut self) -> Result<Option<Block>, ClientError> {
        loop {
            match next_delivered(&mut self.stream).await? {
                Some(deliver_response::Type::Block(b)) => return Ok(Some(b)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }
}

/// Asks a node (peer or orderer) for its status over the Admin service.
pub async fn node_status(ch: Channel) -> Result<ledger_rpc::messages::NodeStatus, ClientError> {
    let mut c = ledger_rpc::admin_client::AdminClient::new(ch);
    Ok(c.status(ledger_rpc::messages::StatusRequest {}).await?.into_inner())
}

#[cfg(test)]
mod tests;
