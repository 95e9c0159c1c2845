//! The ledger's data model, shared by every node, the client SDK and the audit tool.
//!
//! Everything that is hashed or signed is a prost message in [`proto`], encoded canonically: prost writes
//! fields in tag order, and none of the hashed messages contains a map, so the same value always yields the same
//! bytes. Signatures and hashes are always taken over the *bytes as received*, never over a re-encoding.
//!
//! ```text
//!  client                 endorsing peer                 orderers (Raft)          every peer
//!  ------                 --------------                 ---------------          ----------
//!  Proposal ──sign──► SignedProposal ──► run contract ──► ProposalResponse
//!                                        (read/write set, event, endorsement)
//!  TxPayload{proposal, response_payload, endorsements} ──sign──► Envelope ──► block cutter ──► Block
//!                                                                                  │
//!                              validate: signatures, policy, MVCC ◄─── Deliver ◄───┘
//!                              commit: block file (fsync), then state (redb)
//! ```
//!
//! ```
//! use ledger_types::{block::BlockBuilder, hash::Hash32};
//! let genesis = BlockBuilder::new(0, Hash32::ZERO).build();
//! let next = BlockBuilder::new(1, genesis.header_hash()).push_envelope(b"tx".to_vec()).build();
//! assert_eq!(next.check_links(Some(&genesis)), Ok(()));
//! ```

pub mod block;
pub mod codes;
pub mod config;
pub mod fabric;
pub mod hash;
pub mod identity;
pub mod ids;
pub mod policy;
pub mod proto;
pub mod store;
pub mod tx;
pub mod wire;

pub use codes::TxValidationCode;
pub use hash::Hash32;
pub use ids::{BlockNumber, ChannelId, TxId};
