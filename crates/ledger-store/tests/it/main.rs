//! Integration tests of ledger-store: the conformance suite for every store, crash and fault tests.

// A test binary: helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used)]

mod conformance;
mod crash;
mod differential;
mod state_faults;
