//! Integration tests of the orderer: a 3-node Raft cluster over loopback gRPC with mutual TLS, crash and
//! restart of the leader, refusals, Deliver, and the Solo chain behind the same seam.
#![allow(clippy::disallowed_methods)]
// a test or benchmark harness times its own waits

// Fixtures outside #[test] functions unwrap too: a failing fixture is a failing test.
#![allow(clippy::unwrap_used)]

mod cluster;
mod fabric_ab;
#[cfg(feature = "failpoints")]
mod failpoints;
mod refusals;
mod solo;
mod support;
