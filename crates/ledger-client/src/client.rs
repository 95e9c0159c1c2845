//! The gateway connection and contract handles.

use crate::checkpoint::Checkpoint;
use crate::commits::Watcher;
use ledger_rpc::gateway_client::GatewayClient;
use ledger_rpc::messages::{
    BlocksRequest, ChaincodeEventsRequest, ChaincodeEventsResponse, CommitStatusRequest, DeliverResponse,
    EndorseRequest, EndorseResponse, EvaluateRequest, SessionRequest, SignedRequest, SubmitRequest,
};
use ledger_rpc::tls::{TlsMaterial, channel};
use ledger_types::proto::{Block, ContractEvent, Envelope, Timestamp};
use ledger_types::tx::{ProposalBuilder, Signer, sign_envelope};
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
    /// The peer answered with an error status.
    #[error("{}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
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
    signer: Arc<dyn Signer>,
    channel: ChannelId,
    /// The Endorse/Submit session (opened on first use, shared by clones).
    session: Arc<std::sync::Mutex<crate::session::Slot>>,
    /// The commit watcher of `submit` (started on first use, shared by clones).
    watcher: Arc<tokio::sync::Mutex<Option<Arc<Watcher>>>>,
}

#[allow(clippy::disallowed_methods)] // the SDK's one clock read: proposal timestamps come from the client
fn now() -> Timestamp {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

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
        let client =
            GatewayClient::new(ch).max_decoding_message_size(256 << 20).max_encoding_message_size(256 << 20);
        Ok(Gateway { client, signer, channel, session: Arc::default(), watcher: Arc::default() })
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

    fn sign_request(&self, request: Vec<u8>) -> SignedRequest {
        let signature = self.signer.sign(&request);
        SignedRequest { request, identity: self.signer.serialized_identity().to_vec(), signature }
    }

    /// Waits until `tx_id` is committed; returns its validation code and block.
    pub async fn commit_status(&self, tx_id: &str) -> Result<(TxValidationCode, u64), ClientError> {
        let req = CommitStatusRequest { channel_id: self.channel.to_string(), tx_id: tx_id.to_owned() };
        let r = self.client.clone().commit_status(self.sign_request(req.encode_to_vec())).await?.into_inner();
        let code = u8::try_from(r.code)
            .ok()
            .and_then(TxValidationCode::from_u8)
            .ok_or_else(|| ClientError::Protocol(format!("unknown validation code {}", r.code)))?;
        Ok((code, r.block_number))
    }

    /// Contract events of `contract` after `checkpoint`, in chain order, with no gaps and no duplicates.
    pub async fn contract_events(
        &self,
        contract: &str,
        checkpoint: Checkpoint,
    ) -> Result<EventStream, ClientError> {
        let req = ChaincodeEventsRequest {
            channel_id: self.channel.to_string(),
            contract: contract.to_owned(),
            start_block: checkpoint.block,
            after_tx_id: checkpoint.tx_id.unwrap_or_default(),
        };
        let stream =
            self.client.clone().chaincode_events(self.sign_request(req.encode_to_vec())).await?.into_inner();
        Ok(EventStream { stream, pending: VecDeque::new() })
    }

    /// Commit notifications from `start`, then live: per block, each transaction's id and validation code
    /// (Fabric's filtered blocks; far lighter than whole blocks).
    pub async fn commits(&self, start: u64, stop: Option<u64>) -> Result<FilteredStream, ClientError> {
        let req = BlocksRequest { channel_id: self.channel.to_string(), start, stop, from_now: false };
        let stream =
            self.client.clone().deliver_filtered(self.sign_request(req.encode_to_vec())).await?.into_inner();
        Ok(FilteredStream { stream })
    }

    /// Filtered blocks from the next one the peer commits, then live (no Admin rights needed to know where
    /// the chain ends).
    pub async fn commits_from_now(&self) -> Result<FilteredStream, ClientError> {
        let req =
            BlocksRequest { channel_id: self.channel.to_string(), start: 0, stop: None, from_now: true };
        let stream =
            self.client.clone().deliver_filtered(self.sign_request(req.encode_to_vec())).await?.into_inner();
        Ok(FilteredStream { stream })
    }

    /// Committed blocks (with validation codes) from `start`, then live.
    pub async fn blocks(&self, start: u64, stop: Option<u64>) -> Result<BlockStream, ClientError> {
        let req = BlocksRequest { channel_id: self.channel.to_string(), start, stop, from_now: false };
        let stream = self.client.clone().deliver(self.sign_request(req.encode_to_vec())).await?.into_inner();
        Ok(BlockStream { stream })
    }
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

    /// Runs a function on one peer without ordering it (a query).
    pub async fn evaluate(&self, function: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, ClientError> {
        let (sp, _) = self.proposal(function, args);
        let r = self.gw.client.clone().evaluate(EvaluateRequest { proposal: Some(sp) }).await?.into_inner();
        let r = r.result.ok_or_else(|| ClientError::Protocol("no result".into()))?;
        if r.status >= 400 {
            return Err(ClientError::Status(tonic::Status::aborted(format!(
                "contract refused (status {}): {}",
                r.status, r.message
            ))));
        }
        Ok(r.payload)
    }

    /// Endorses, signs and submits for ordering; does not wait for the commit. Both steps travel on the
    /// gateway's session stream when the peer offers one (else as unary calls); the peer handles them the
    /// same way either way.
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
        let session = crate::session::get(&self.gw.session, &self.gw.client).await;
        let endorse = EndorseRequest { proposal: Some(sp), endorsing_orgs: Vec::new() };
        let endorsed: EndorseResponse = match &session {
            Some(s) => s
                .call(SessionRequest { id: 0, endorse: Some(endorse), submit: None })
                .await?
                .endorse
                .ok_or_else(|| ClientError::Protocol("no endorsement in the session answer".into()))?,
            None => self.gw.client.clone().endorse(endorse).await?.into_inner(),
        };
        let prepared =
            endorsed.prepared.ok_or_else(|| ClientError::Protocol("no prepared transaction".into()))?;
        let envelope: Envelope = sign_envelope(self.gw.signer.as_ref(), &prepared);
        let submit = SubmitRequest { envelope: Some(envelope) };
        match &session {
            Some(s) => {
                s.call(SessionRequest { id: 0, endorse: None, submit: Some(submit) }).await?;
            }
            None => {
                self.gw.client.clone().submit(submit).await?;
            }
        }
        Ok(Submitted { tx_id, payload: endorsed.result.map(|r| r.payload).unwrap_or_default() })
    }

    /// Endorses, submits and waits until committed; an invalid commit is an error.
    ///
    /// The commit is learnt from the gateway's commit watcher (one filtered-block stream for all its
    /// submissions), else from a `CommitStatus` call.
    pub async fn submit(&self, function: &str, args: &[Vec<u8>]) -> Result<Committed, ClientError> {
        let (sp, tx_id) = self.proposal(function, args);
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
            match self.stream.message().await? {
                Some(r) => {
                    let block = r.block_number;
                    self.pending.extend(r.events.into_iter().map(|event| TxEvent { block, event }));
                }
                None => return Ok(None),
            }
        }
    }
}

/// A stream of filtered blocks: `(block number, [(tx id, code)])`.
pub struct FilteredStream {
    stream: tonic::Streaming<ledger_rpc::messages::FilteredBlock>,
}

impl FilteredStream {
    /// The next block's commit outcomes; `None` when the stream ended.
    pub async fn next(&mut self) -> Result<Option<(u64, Vec<(String, TxValidationCode)>)>, ClientError> {
        match self.stream.message().await? {
            Some(b) => {
                let txs = b
                    .txs
                    .into_iter()
                    .map(|t| {
                        let code = u8::try_from(t.code)
                            .ok()
                            .and_then(TxValidationCode::from_u8)
                            .unwrap_or(TxValidationCode::InvalidOtherReason);
                        (t.tx_id, code)
                    })
                    .collect();
                Ok(Some((b.number, txs)))
            }
            None => Ok(None),
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
            match self.stream.message().await? {
                Some(DeliverResponse { block: Some(b), .. }) => return Ok(Some(b)),
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
