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
//!
//! The cutter is pure: the caller passes the time and polls for the timer.
//!
//! ```
//! use orderer::{BlockCutter, CutterConfig};
//! use std::time::{Duration, Instant};
//!
//! let config = CutterConfig {
//!     max_message_count: 2,
//!     preferred_max_bytes: 1000,
//!     absolute_max_bytes: 4000,
//!     batch_timeout: Duration::from_millis(50),
//! };
//! let mut cutter = BlockCutter::new(config);
//! let t0 = Instant::now();
//! assert!(cutter.ordered(t0, "a", 10).unwrap().is_empty()); // arms the timer
//! assert_eq!(cutter.poll_timeout(), Some(t0 + Duration::from_millis(50)));
//! assert_eq!(cutter.ordered(t0, "b", 10).unwrap(), vec![vec!["a", "b"]]); // max count
//! assert_eq!(cutter.ordered(t0, "big", 2000).unwrap(), vec![vec!["big"]]); // alone
//! assert!(cutter.ordered(t0, "huge", 5000).is_err()); // 413
//! ```
//!
//! A node starts an orderer with [`OrdererNode::start`] and an [`OrdererConfig`]; the rest of the node
//! orders through [`OrdererHandle::chain`].

pub mod authz;
pub mod chain;
pub mod cutter;
mod fabric_ab;
pub mod failpoints;
pub mod node;
pub mod raft;
pub mod sequencer;
mod service;
pub mod solo;

pub use authz::{AcceptAll, Denied, EnvelopeAuthorizer};
pub use chain::{Chain, OrderError, Ordered};
pub use cutter::{BlockCutter, CutterConfig, TooLarge};
pub use node::{
    DEFAULT_EARLY_CUT_BELOW, DEFAULT_SNAPSHOT_EVERY, OrdererConfig, OrdererHandle, OrdererNode, RaftTimings,
    StartError,
};
pub use service::{EnvelopeError, MAX_BATCH, check_envelope};
