//! Integration tests of the Mca client against ACME and against the embedded CSE, over HTTP and HTTPS.

#![allow(clippy::unwrap_used)] // test harness: a failed unwrap is a failed test

mod acme;
mod flows;
mod tls;
