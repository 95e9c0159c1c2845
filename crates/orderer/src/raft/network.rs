//! openraft's network over the `Cluster.Raft` gRPC method (mutual TLS). Each RPC travels as a
//! [`RaftMessage`] whose `kind` names the RPC (`append`, `vote`, `snapshot`) and whose payload is the CBOR
//! request; the answer's payload is the CBOR `Result<response, RaftError>`.

use super::{OrdererRaft, TypeConfig, entries_size_hint, from_cbor, to_cbor, to_cbor_sized};
use ledger_rpc::cluster_client::ClusterClient;
use ledger_rpc::messages::RaftMessage;
use ledger_rpc::tls::TlsMaterial;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode};
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
        let msg = RaftMessage { kind: kind.to_owned(), payload: payload.into() };
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
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call("append", &rpc, entries_size_hint(&rpc.entries), &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>>
    {
        self.call("snapshot", &rpc, rpc.data.len() + 256, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call("vote", &rpc, 0, &option).await
    }
}

/// Why an incoming Raft message could not be handled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InboundError {
    #[error("unknown raft message kind {0:?}")]
    Kind(String),
    #[error("malformed raft message: {0}")]
    Malformed(#[from] super::CborError),
}

/// Handles one incoming Raft RPC: decodes it, hands it to the local Raft node, encodes its answer.
pub(crate) async fn handle_inbound(
    raft: &OrdererRaft,
    msg: RaftMessage,
) -> Result<RaftMessage, InboundError> {
    let payload = match msg.kind.as_str() {
        "append" => {
            let req: AppendEntriesRequest<TypeConfig> = from_cbor(&msg.payload)?;
            to_cbor(&raft.append_entries(req).await)?
        }
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
    Ok(RaftMessage { kind: "result".into(), payload: payload.into() })
}
