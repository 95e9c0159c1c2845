//! openraft's network over the `Cluster.Raft` gRPC method (mutual TLS). Each RPC travels as a
//! [`RaftMessage`] whose `kind` names the RPC (`append-blobs`, `vote`, `snapshot`) and whose payload is the
//! CBOR request; the answer's payload is the CBOR `Result<response, RaftError>`.
//!
//! AppendEntries (`append-blobs`) carries its blocks outside the CBOR: each block entry's bytes travel in
//! the message's `blobs`, in entry order, and the CBOR holds the entries with empty block payloads. The
//! blocks are then copied once on the way out (into the gRPC frame) and not at all on the way in (the
//! receiver's entries are slices of the received message), where CBOR cost a copy each way plus its
//! allocations (docs/ledger-perf.md, eleventh round). The receiver refuses a message whose blobs do not
//! match its block entries one to one. Kind `append` (blocks inside the CBOR, as sent before) is still
//! accepted; a receiver that predates `append-blobs` refuses it as an unknown kind, so a leader never
//! replicates empty blocks to it.

use super::{BlockEntry, OrdererRaft, TypeConfig, from_cbor, to_cbor, to_cbor_sized};
use ledger_rpc::cluster_client::ClusterClient;
use ledger_rpc::messages::RaftMessage;
use ledger_rpc::tls::TlsMaterial;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode, EntryPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Largest Raft message accepted or sent (several blocks of up to the absolute maximum size).
pub(crate) const MAX_RAFT_MESSAGE: usize = 256 * 1024 * 1024;

/// Opens channels to the other orderers.
#[derive(Clone)]
pub(crate) struct Network {
    tls: TlsMaterial,
    tls_server_name: Option<String>,
    /// The orderer's data directory (names its failpoints).
    dir: std::sync::Arc<std::path::PathBuf>,
}

impl Network {
    pub(crate) fn new(tls: TlsMaterial, tls_server_name: Option<String>, dir: std::path::PathBuf) -> Network {
        Network { tls, tls_server_name, dir: std::sync::Arc::new(dir) }
    }

    /// A lazily connecting mutual-TLS channel to `addr` (`host:port`).
    pub(crate) fn channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let name = self.tls_server_name.as_deref().unwrap_or(host);
        let ep = Endpoint::from_shared(format!("https://{addr}"))?
            .tls_config(self.tls.client_config(name))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true);
        Ok(ep.connect_lazy())
    }
}

/// A connection to one other orderer.
pub(crate) struct Peer {
    target: u64,
    dir: std::sync::Arc<std::path::PathBuf>,
    client: Result<ClusterClient<Channel>, String>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Peer {
        let client = self
            .channel(&node.addr)
            .map(|c| {
                ClusterClient::new(c)
                    .max_decoding_message_size(MAX_RAFT_MESSAGE)
                    .max_encoding_message_size(MAX_RAFT_MESSAGE)
            })
            .map_err(|e| e.to_string());
        Peer { target, client, dir: self.dir.clone() }
    }
}

impl Peer {
    async fn call<Req: Serialize, Resp: DeserializeOwned, E: std::error::Error + DeserializeOwned>(
        &mut self,
        kind: &str,
        req: &Req,
        size_hint: usize,
        blobs: Vec<bytes::Bytes>,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, E>> {
        if let Err(e) = crate::failpoints::hit(&self.dir, crate::failpoints::RAFT_SEND) {
            return Err(RPCError::Unreachable(Unreachable::new(&AnyError::error(e))));
        }
        let client = self
            .client
            .as_mut()
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&AnyError::error(e.clone()))))?;
        let payload = to_cbor_sized(req, size_hint).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let msg = RaftMessage { kind: kind.to_owned(), payload: payload.into(), blobs };
        let fut = client.raft(msg);
        let resp = match tokio::time::timeout(option.hard_ttl(), fut).await {
            Err(_) => {
                return Err(RPCError::Unreachable(Unreachable::new(&AnyError::error(format!(
                    "{kind} to {} timed out",
                    self.target
                )))));
            }
            Ok(Err(status)) => {
                let e = AnyError::error(format!("{}: {}", status.code(), status.message()));
                return Err(match status.code() {
                    tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => {
                        RPCError::Unreachable(Unreachable::new(&e))
                    }
                    _ => RPCError::Network(NetworkError::new(&e)),
                });
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        let result: Result<Resp, E> =
            from_cbor(&resp.payload).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let blobs = take_blocks(&mut rpc);
        self.call(APPEND_BLOBS, &rpc, 256 + 128 * rpc.entries.len(), blobs, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>>
    {
        self.call("snapshot", &rpc, rpc.data.len() + 256, Vec::new(), &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call("vote", &rpc, 0, Vec::new(), &option).await
    }
}

/// The kind of an AppendEntries whose blocks travel in `blobs` (see the module docs).
const APPEND_BLOBS: &str = "append-blobs";

/// Moves the bytes of every block entry out of `rpc` (leaving empty payloads), in entry order. The bytes
/// are shared, not copied.
fn take_blocks(rpc: &mut AppendEntriesRequest<TypeConfig>) -> Vec<bytes::Bytes> {
    rpc.entries
        .iter_mut()
        .filter_map(|e| match &mut e.payload {
            EntryPayload::Normal(b) => Some(std::mem::take(&mut b.0)),
            _ => None,
        })
        .collect()
}

/// Puts `blobs` back into the block entries of `rpc`, in order; refuses a count that does not match and a
/// block entry that was not left empty.
fn restore_blocks(
    rpc: &mut AppendEntriesRequest<TypeConfig>,
    blobs: Vec<bytes::Bytes>,
) -> Result<(), InboundError> {
    let mut blocks: Vec<&mut BlockEntry> = rpc
        .entries
        .iter_mut()
        .filter_map(|e| match &mut e.payload {
            EntryPayload::Normal(b) => Some(b),
            _ => None,
        })
        .collect();
    if blocks.len() != blobs.len() {
        return Err(InboundError::Blobs(format!("{} block entries but {} blobs", blocks.len(), blobs.len())));
    }
    if blocks.iter().any(|b| !b.0.is_empty()) {
        return Err(InboundError::Blobs("a block entry carries its bytes in the CBOR too".into()));
    }
    for (b, bytes) in blocks.iter_mut().zip(blobs) {
        b.0 = bytes;
    }
    Ok(())
}

/// Why an incoming Raft message could not be handled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InboundError {
    #[error("unknown raft message kind {0:?}")]
    Kind(String),
    #[error("malformed raft message: {0}")]
    Malformed(#[from] super::CborError),
    #[error("malformed raft message: {0}")]
    Blobs(String),
}

/// The AppendEntries of an incoming message of either kind: `append-blobs` (the blocks beside the CBOR) or
/// `append` (the blocks inside it, as orderers before the blobs sent them).
fn decode_append(msg: RaftMessage) -> Result<AppendEntriesRequest<TypeConfig>, InboundError> {
    let mut req: AppendEntriesRequest<TypeConfig> = from_cbor(&msg.payload)?;
    if msg.kind == APPEND_BLOBS {
        restore_blocks(&mut req, msg.blobs)?;
    } else if !msg.blobs.is_empty() {
        return Err(InboundError::Blobs(format!(
            "{} blobs beside an {:?} message",
            msg.blobs.len(),
            msg.kind
        )));
    }
    Ok(req)
}

/// Handles one incoming Raft RPC: decodes it, hands it to the local Raft node, encodes its answer.
pub(crate) async fn handle_inbound(
    raft: &OrdererRaft,
    msg: RaftMessage,
) -> Result<RaftMessage, InboundError> {
    let payload = match msg.kind.as_str() {
        APPEND_BLOBS | "append" => to_cbor(&raft.append_entries(decode_append(msg)?).await)?,
        "vote" => {
            let req: VoteRequest<u64> = from_cbor(&msg.payload)?;
            to_cbor(&raft.vote(req).await)?
        }
        "snapshot" => {
            let req: InstallSnapshotRequest<TypeConfig> = from_cbor(&msg.payload)?;
            to_cbor(&raft.install_snapshot(req).await)?
        }
        other => return Err(InboundError::Kind(other.to_owned())),
    };
    Ok(RaftMessage { kind: "result".into(), payload: payload.into(), blobs: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Entry, LogId, Vote};

    fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
        Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload }
    }

    fn block(b: &'static [u8]) -> EntryPayload<TypeConfig> {
        EntryPayload::Normal(BlockEntry(bytes::Bytes::from_static(b)))
    }

    fn request() -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries: vec![
                entry(1, block(b"block one")),
                entry(2, EntryPayload::Blank),
                entry(3, block(b"block two")),
            ],
        }
    }

    #[test]
    fn blocks_travel_beside_the_cbor_and_come_back_in_order() {
        let mut rpc = request();
        let blobs = take_blocks(&mut rpc);
        assert_eq!(blobs, vec![&b"block one"[..], &b"block two"[..]]);
        let cbor = to_cbor(&rpc).unwrap();
        for b in [&b"block one"[..], b"block two"] {
            assert!(!cbor.windows(b.len()).any(|w| w == b), "the CBOR holds no block bytes");
        }
        let mut back: AppendEntriesRequest<TypeConfig> = from_cbor(&cbor).unwrap();
        restore_blocks(&mut back, blobs).unwrap();
        assert_eq!(back.entries, request().entries);
    }

    /// An orderer of an earlier release sends `append` with the blocks inside the CBOR: decoded to the same
    /// request as `append-blobs`; blobs beside an `append` are refused, not ignored.
    #[test]
    fn the_old_append_kind_decodes_to_the_same_request() {
        let old = RaftMessage {
            kind: "append".into(),
            payload: to_cbor(&request()).unwrap().into(),
            blobs: Vec::new(),
        };
        let mut rpc = request();
        let blobs = take_blocks(&mut rpc);
        let new = RaftMessage {
            kind: APPEND_BLOBS.into(),
            payload: to_cbor(&rpc).unwrap().into(),
            blobs: blobs.clone(),
        };
        assert_eq!(decode_append(old.clone()).unwrap().entries, request().entries);
        assert_eq!(decode_append(new).unwrap().entries, request().entries);
        let smuggled = RaftMessage { blobs, ..old };
        assert!(matches!(decode_append(smuggled), Err(InboundError::Blobs(_))));
    }

    #[test]
    fn blobs_that_do_not_match_the_block_entries_are_refused() {
        let mut rpc = request();
        let blobs = take_blocks(&mut rpc);
        let mut fewer = rpc.clone();
        assert!(matches!(restore_blocks(&mut fewer, blobs[..1].to_vec()), Err(InboundError::Blobs(_))));
        let mut more = rpc.clone();
        let mut extra = blobs.clone();
        extra.push(bytes::Bytes::from_static(b"smuggled"));
        assert!(matches!(restore_blocks(&mut more, extra), Err(InboundError::Blobs(_))));
        // A block entry that kept its bytes in the CBOR as well is not silently replaced.
        let mut both = request();
        assert!(matches!(restore_blocks(&mut both, blobs), Err(InboundError::Blobs(_))));
    }
}
