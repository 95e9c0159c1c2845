//! The peer: endorses proposals by running contracts, validates and commits every ordered block, and
//! serves clients (gateway, events).

pub mod audit;
pub mod endorser;
pub mod identity;
pub mod ledger;
pub mod node;
pub mod registry;
pub mod service;
pub mod sigbatch;
pub mod tls_gate;
pub mod validator;
