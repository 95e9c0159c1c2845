//! Peer tests: endorsement, validation and commit of blocks over in-memory stores, with real identities
//! (cryptogen material, Ed25519 and ECDSA P-256 keys).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod determinism;
mod orderer_pool;
mod support;
mod validation;
