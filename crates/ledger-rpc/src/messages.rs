//! Request and response messages of the gRPC services (the ledger's own messages are in
//! `ledger_types::proto`).

#![allow(missing_docs)]

use ledger_types::proto::Block;

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
    #[prost(bytes = "bytes", tag = "2")]
    pub payload: bytes::Bytes,
    /// Large opaque parts carried beside the payload rather than inside its encoding (an orderer's
    /// AppendEntries sends its blocks here, so they are neither copied into nor out of the payload).
    #[prost(bytes = "bytes", repeated, tag = "3")]
    pub blobs: Vec<bytes::Bytes>,
}

/// Envelopes a follower forwards to the leader.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ForwardRequest {
    #[prost(string, tag = "1")]
    pub channel_id: String,
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub envelopes: Vec<bytes::Bytes>,
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

/// One request on a client's `GatewaySession` stream: exactly one of `endorse` and `submit` (Fabric's
/// gateway messages, unchanged). `id` is chosen by the client and echoed in the answer (the requests of one
/// session are answered as they complete, not in order).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionRequest {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(message, optional, tag = "2")]
    pub endorse: Option<fabric_protos::gateway::EndorseRequest>,
    #[prost(message, optional, tag = "3")]
    pub submit: Option<fabric_protos::gateway::SubmitRequest>,
}

/// The answer to the [`SessionRequest`] with the same `id`. `code` 0: success, with `endorse` set for an
/// endorse request (a submit's success carries nothing, as Fabric's `SubmitResponse`). Otherwise the gRPC
/// status the unary call would have failed with: `code`, `message`, and `details` (the bytes of its
/// `grpc-status-details-bin`, a `google.rpc.Status` carrying Fabric's `gateway.ErrorDetail`s).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionResponse {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int32, tag = "2")]
    pub code: i32,
    #[prost(string, tag = "3")]
    pub message: String,
    #[prost(message, optional, tag = "4")]
    pub endorse: Option<fabric_protos::gateway::EndorseResponse>,
    #[prost(bytes = "bytes", tag = "5")]
    pub details: bytes::Bytes,
}
