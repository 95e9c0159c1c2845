//! Integration tests of the orderer: a 3-node Raft cluster over loopback gRPC with mutual TLS, crash and
//! restart of the leader, refusals, Deliver, and the Solo chain behind the same seam.

// Fixtures outside #[test] functions unwrap too: a failing fixture is a failing test.
#![allow(clippy::unwrap_used)]

mod cluster;
#[cfg(feature = "failpoints")]
mod failpoints;
mod refusals;
mod solo;
mod support;
