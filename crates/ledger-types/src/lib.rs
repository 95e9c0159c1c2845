//! The ledger's data model, shared by every node, the client SDK and the audit tool.
//!
//! Everything that travels or is stored is Hyperledger Fabric's (`fabric_protos`: `common.Block`,
//! `common.Envelope`, `peer.SignedProposal`, `msp.SerializedIdentity` with a PEM certificate, …), hashed and
//! signed by Fabric's rules (`fabric_protos::hash`). Signatures and hashes are always taken over the *bytes
//! as received*, never over a re-encoding. [`proto`] adds ipechain's in-memory model of read/write sets and
//! events and the channel configuration.
//!
//! ```text
//!  client                 endorsing peer                 orderers (Raft)          every peer
//!  ------                 --------------                 ---------------          ----------
//!  Proposal ──sign──► SignedProposal ──► run contract ──► ProposalResponse
//!                                        (read/write set, event, endorsement)
//!  Payload{header, Transaction{action}} ──sign──► Envelope ──► block cutter ──► Block
//!                                                                                  │
//!                              validate: signatures, policy, MVCC ◄─── Deliver ◄───┘
//!                              commit: block file (fsync), then state (redb)
//! ```
//!
//! ```
//! use ledger_types::{block::{BlockBuilder, BlockExt}, hash::Hash32};
//! let genesis = BlockBuilder::new(0, Hash32::ZERO).build();
//! let next = BlockBuilder::new(1, genesis.header_hash()).push_envelope(b"tx".to_vec()).build();
//! assert_eq!(next.check_links(Some(&genesis)), Ok(()));
//! ```

pub mod block;
pub mod codes;
pub mod config;
pub mod hash;
pub mod ids;
pub mod policy;
pub mod proto;
pub mod store;
pub mod tx;
pub mod wire;

pub use block::BlockExt;
pub use codes::TxValidationCode;
pub use fabric_protos;
pub use hash::Hash32;
pub use ids::{BlockNumber, ChannelId, TxId};
