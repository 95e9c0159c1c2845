//! Integration tests of the ledger data model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod blocks;
mod fabric_gateway;
mod genesis_config;
mod policies;
mod txs;
