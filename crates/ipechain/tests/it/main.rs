//! End-to-end tests of the `ipechain` binary: several `ipechain node` processes, faults, `verify`.
#![allow(clippy::disallowed_methods)] // a test or benchmark harness times its own waits
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod caliper;
mod cli;
mod devices;
mod dtls;
mod interworking;
mod lifecycle;
mod multihost;
mod ops;
mod processes;
