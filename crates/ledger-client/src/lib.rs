//! The ipechain client SDK, shaped like Hyperledger Fabric's Gateway SDK and speaking Fabric's protocol:
//! the peer's `gateway.Gateway` (Evaluate, Endorse, Submit, CommitStatus, ChaincodeEvents) and
//! `protos.Deliver` (signed seek requests), so it can talk to any Fabric 2.4+ gateway peer, ipechain's or
//! Fabric's. The client signs the proposal and, after endorsement, the transaction envelope itself.
//! `submit` learns commits from one filtered-block stream per [`Gateway`] (started on first use) instead of
//! a signed `CommitStatus` call per transaction. A contract's refusal arrives as
//! [`ClientError::Refused`] with its status and message as data.
//!
//! Against an ipechain peer, Endorse and Submit travel on one long-lived `GatewaySession` stream per
//! [`Gateway`] (ipechain's one protocol extension: Fabric's request messages, each handled as the unary
//! call); against a Fabric peer, or after [`Gateway::unary_only`], they are Fabric's unary calls.
//!
//! ```no_run
//! # async fn demo(signer: std::sync::Arc<dyn ledger_types::tx::Signer>, tls: ledger_rpc::tls::TlsMaterial) -> Result<(), ledger_client::ClientError> {
//! use ledger_client::{Checkpoint, Gateway};
//! let gw = Gateway::connect("127.0.0.1:7051", &tls, signer, "iot")?;
//! let kv = gw.contract("kv");
//! let committed = kv.submit("put", &[b"key".to_vec(), b"value".to_vec()]).await?;
//! println!("{} in block {}", committed.tx_id, committed.block);
//! let value = kv.evaluate("get", &[b"key".to_vec()]).await?;
//! let mut events = gw.contract_events("kv", Checkpoint::default()).await?;
//! while let Some(ev) = events.next().await? {
//!     println!("{} {}", ev.block, ev.event.event_name);
//! }
//! # Ok(()) }
//! ```

mod checkpoint;
mod client;
mod commits;
mod session;

pub use checkpoint::{Checkpoint, FileCheckpointer};
pub use client::{
    BlockStream, ClientError, Committed, ContractClient, EventStream, Gateway, Submitted, TxEvent,
    node_status,
};
