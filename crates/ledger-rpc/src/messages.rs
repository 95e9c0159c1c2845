//! Request and response messages of the gRPC services (the ledger's own messages are in
//! `ledger_types::proto`).

#![allow(missing_docs)]

use ledger_types::proto::{Block, ContractEvent, Envelope, Response, SignedProposal};

/// Outcome of a broadcast: HTTP-like status (200 accepted, 400 bad request, 403 forbidden, 413 too large,
/// 503 no leader / not ready).
#[derive(Clone, PartialEq, prost::Message)]
pub struct BroadcastResponse {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(string, tag = "2")]
    pub info: String,
    /// Raft id of the leader, when known (0 otherwise).
    #[prost(uint64, tag = "3")]
    pub leader_hint: u64,
}

/// Many envelopes at once (a peer's gateway batches what its clients submit concurrently). Each entry is
/// an encoded [`Envelope`]: on the wire this is exactly `repeated Envelope envelopes = 1`, but neither side
/// decodes and re-encodes the envelopes (the orderer orders the bytes it checked), and the entries are
/// shared buffers (a peer keeps them for a retry on the next orderer without copying).
#[derive(Clone, PartialEq, prost::Message)]
pub struct BroadcastBatchRequest {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub envelopes: Vec<bytes::Bytes>,
}

/// One result per envelope of a [`BroadcastBatchRequest`], in order, each answered once its block is
/// committed (or refused); `status` is HTTP-like as in [`BroadcastResponse`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct BroadcastBatchResponse {
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<BroadcastResponse>,
    /// Raft id of the leader, when known (0 otherwise).
    #[prost(uint64, tag = "2")]
    pub leader_hint: u64,
}

/// Ask an orderer for blocks `start..=stop` (`stop` absent: keep streaming new blocks as they are cut).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeliverRequest {
    #[prost(string, tag = "1")]
    pub channel_id: String,
    #[prost(uint64, tag = "2")]
    pub start: u64,
    #[prost(uint64, optional, tag = "3")]
    pub stop: Option<u64>,
}

/// One streamed block, or a final status.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeliverResponse {
    #[prost(message, optional, tag = "1")]
    pub block: Option<Block>,
    /// Set (HTTP-like) only on a final status message.
    #[prost(int32, tag = "2")]
    pub status: i32,
}

/// An opaque Raft RPC between orderers (the encoding belongs to the orderer crate).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftMessage {
    #[prost(string, tag = "1")]
    pub kind: String,
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

/// Envelopes a follower forwards to the leader.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ForwardRequest {
    #[prost(string, tag = "1")]
    pub channel_id: String,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub envelopes: Vec<Vec<u8>>,
}

/// A request signed by its sender's enrolment certificate (authorization uses this identity, as in
/// Fabric; the TLS certificate only authenticates the connection).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignedRequest {
    /// The encoded inner request ([`CommitStatusRequest`], [`ChaincodeEventsRequest`], [`BlocksRequest`]).
    #[prost(bytes = "vec", tag = "1")]
    pub request: Vec<u8>,
    /// Encoded `SerializedIdentity` of the sender.
    #[prost(bytes = "vec", tag = "2")]
    pub identity: Vec<u8>,
    /// Signature over `request`.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EvaluateRequest {
    #[prost(message, optional, tag = "1")]
    pub proposal: Option<SignedProposal>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EvaluateResponse {
    #[prost(message, optional, tag = "1")]
    pub result: Option<Response>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EndorseRequest {
    #[prost(message, optional, tag = "1")]
    pub proposal: Option<SignedProposal>,
    /// Restrict endorsement to these organizations (empty: as the policy needs).
    #[prost(string, repeated, tag = "2")]
    pub endorsing_orgs: Vec<String>,
}

/// The endorsed but unsigned transaction (Fabric's prepared `Envelope`, its signature empty); the client
/// signs `payload` and submits the envelope.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EndorseResponse {
    #[prost(message, optional, tag = "1")]
    pub prepared: Option<Envelope>,
    /// The contract's response (status, message, payload) as simulated.
    #[prost(message, optional, tag = "2")]
    pub result: Option<Response>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SubmitRequest {
    #[prost(message, optional, tag = "1")]
    pub envelope: Option<Envelope>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SubmitResponse {}

/// One request on a client's `Session` stream: exactly one of `endorse` and `submit` is set. `id` is chosen
/// by the client and echoed in the answer (requests of one session may be answered out of order).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionRequest {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(message, optional, tag = "2")]
    pub endorse: Option<EndorseRequest>,
    #[prost(message, optional, tag = "3")]
    pub submit: Option<SubmitRequest>,
}

/// The answer to the [`SessionRequest`] with the same `id`: `code` 0 with `endorse` set (an endorse
/// request) or not (a submit request, accepted as the unary `Submit` would be); otherwise `code` is the
/// gRPC status code the unary call would have failed with, and `message` its message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionResponse {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int32, tag = "2")]
    pub code: i32,
    #[prost(string, tag = "3")]
    pub message: String,
    #[prost(message, optional, tag = "4")]
    pub endorse: Option<EndorseResponse>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CommitStatusRequest {
    #[prost(string, tag = "1")]
    pub channel_id: String,
    #[prost(string, tag = "2")]
    pub tx_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CommitStatusResponse {
    /// A `TxValidationCode` byte.
    #[prost(uint32, tag = "1")]
    pub code: u32,
    #[prost(uint64, tag = "2")]
    pub block_number: u64,
}

/// Contract events from a checkpoint: blocks from `start_block`, skipping events up to and including
/// `after_tx_id` within that first block (empty: none skipped).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChaincodeEventsRequest {
    #[prost(string, tag = "1")]
    pub channel_id: String,
    #[prost(string, tag = "2")]
    pub contract: String,
    #[prost(uint64, tag = "3")]
    pub start_block: u64,
    #[prost(string, tag = "4")]
    pub after_tx_id: String,
}

/// The events of valid transactions of one block, in block order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChaincodeEventsResponse {
    #[prost(uint64, tag = "1")]
    pub block_number: u64,
    #[prost(message, repeated, tag = "2")]
    pub events: Vec<ContractEvent>,
}

/// Committed blocks (with validation codes) from a peer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlocksRequest {
    #[prost(string, tag = "1")]
    pub channel_id: String,
    #[prost(uint64, tag = "2")]
    pub start: u64,
    #[prost(uint64, optional, tag = "3")]
    pub stop: Option<u64>,
    /// Start at the peer's height when the request arrives (the next block it commits), ignoring `start`:
    /// Fabric's "newest" seek for a listener that only wants what commits from now on.
    #[prost(bool, tag = "4")]
    pub from_now: bool,
}

/// A committed block reduced to what a commit listener needs (Fabric's filtered block): each transaction's
/// id and validation code, in block order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FilteredBlock {
    #[prost(uint64, tag = "1")]
    pub number: u64,
    #[prost(message, repeated, tag = "2")]
    pub txs: Vec<FilteredTx>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FilteredTx {
    #[prost(string, tag = "1")]
    pub tx_id: String,
    /// A `TxValidationCode` byte.
    #[prost(uint32, tag = "2")]
    pub code: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {}

/// What `ipechain status` shows for a node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeStatus {
    #[prost(string, tag = "1")]
    pub name: String,
    /// `orderer` or `peer`.
    #[prost(string, tag = "2")]
    pub role: String,
    #[prost(string, tag = "3")]
    pub msp_id: String,
    #[prost(string, tag = "4")]
    pub channel_id: String,
    #[prost(uint64, tag = "5")]
    pub height: u64,
    #[prost(string, tag = "6")]
    pub head_hash: String,
    /// Orderers: `leader`, `follower`, `candidate`, `learner`, `shutdown`.
    #[prost(string, tag = "7")]
    pub raft_state: String,
    #[prost(uint64, tag = "8")]
    pub raft_leader: u64,
    #[prost(uint64, tag = "9")]
    pub raft_term: u64,
    /// Peers: the commit hash of the last block.
    #[prost(string, tag = "10")]
    pub commit_hash: String,
}
