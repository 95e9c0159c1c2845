//! Integration tests of ledger-store: the conformance suite for every store, crash and fault tests.

mod conformance;
