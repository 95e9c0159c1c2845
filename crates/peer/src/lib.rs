//! The peer: endorses proposals by running contracts, validates and commits every ordered block, and
//! serves clients over Fabric's services (`gateway.Gateway`, `protos.Deliver`, `protos.Endorser`).

pub mod audit;
pub mod ccaas;
pub mod endorser;
pub mod fabric;
pub mod identity;
pub mod known;
pub mod ledger;
pub mod lifecycle;
pub mod node;
pub mod service;
pub mod sigbatch;
pub mod tls_gate;
pub mod validator;

/// The nodes' one wall-clock read for admission checks (endorsement, reads, TLS roles, broadcast), Unix
/// seconds. Validation never calls it: it judges a transaction at its own timestamp.
#[allow(clippy::disallowed_methods)] // the shell's clock, for admission only
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
