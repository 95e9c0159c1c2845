//! Assembles a ledger network from files, the way an operator sees it:
//!
//! ```text
//! <data-dir>/
//!   network.toml              the network description (orgs, nodes, endpoints, channel, batch, contracts)
//!   crypto/                   CAs, certificates and keys in Fabric's cryptogen layout (`msp` crate)
//!   channel/<channel>.block   the channel's genesis block
//!   nodes/<node>.toml         one config per node, for `ipechain node --config`
//!   nodes/<node>/             each node's data (block files, state, Raft log)
//! ```
//!
//! [`generate`] writes all of it from a [`NetworkConfig`]; [`NodeConfig::load`] reads one node's config and
//! material back; [`MspIdentities`] and [`IdentitySigner`] adapt the `msp` crate to the ledger's seams.

mod config;
mod generate;
mod identities;
pub mod layout;
pub mod run;

pub use config::{BatchSettings, ContractSettings, GatewayHost, NetworkConfig, NodeSettings};
pub use generate::{GenerateError, Generated, channel_config, generate};
pub use identities::{IdentitySigner, unix_now};
pub use layout::{ClientAuth, DataDir, NodeConfig, NodeRole};
pub use peer::identity::MspIdentities;
