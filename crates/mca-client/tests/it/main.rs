//! Integration tests of the Mca client against ACME and against the embedded CSE.

#![allow(clippy::unwrap_used)] // test harness: a failed unwrap is a failed test

mod acme;
mod flows;
