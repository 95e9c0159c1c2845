//! The ordering service of ipechain, shaped like Hyperledger Fabric's etcdraft orderer.
//!
//! - [`cutter`]: the block cutter (max message count, preferred and absolute max bytes, batch timeout) as a
//!   pure state machine.
//! - [`chain`]: the narrow seam the rest of a node sees ([`Chain`]: `order`, `wait_ready`, `errored`), with
//!   [`solo::SoloChain`] for single-node tests and [`sequencer::RaftChain`] for the real thing.
//! - `raft`: openraft 0.9 storage (redb log, block-store state machine) and network (gRPC `Cluster.Raft`).
//! - [`node`]: [`OrdererNode::start`], the gRPC shell (Broadcast, Deliver, Cluster, Admin) on one mutual-TLS
//!   listener.
//!
//! Followers forward broadcasts to the leader; the leader cuts blocks, signs their header hash and proposes
//! each whole block as one Raft entry; every orderer appends a committed block entry to its block store only
//! if it extends the chain. `Broadcast` answers once the envelope's block is committed, so an acknowledged
//! envelope is never lost. See `docs/ordering.md` for the crash guarantees.

pub mod authz;
pub mod chain;
pub mod cutter;
pub mod node;
pub mod raft;
pub mod sequencer;
mod service;
pub mod solo;

pub use authz::{AcceptAll, Denied, EnvelopeAuthorizer};
pub use chain::{Chain, OrderError, Ordered};
pub use cutter::{BlockCutter, CutterConfig, TooLarge};
pub use node::{OrdererConfig, OrdererHandle, OrdererNode, RaftTimings, StartError};
pub use service::check_envelope;
