//! Integration tests of the ledger data model.

mod blocks;
mod policies;
mod txs;
