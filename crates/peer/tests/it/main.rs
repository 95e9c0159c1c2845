//! Peer tests: endorsement, validation and commit of blocks over in-memory stores with fake identities.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod support;
mod validation;
