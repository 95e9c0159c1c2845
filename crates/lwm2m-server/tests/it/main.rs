//! Integration tests of the LwM2M server over real UDP and HTTP on 127.0.0.1: the simulator, raw CoAP bad
// Test helpers outside #[test] functions: a panic there is a test failure, as in the tests.
#![allow(clippy::unwrap_used)]
//! input, the REST API, and the real peers lwm2m-node-lib, libcoap's coap-client and aiocoap.

mod aiocoap;
mod bootstrap;
mod coap_client;
mod common;
mod dtls;
mod models;
mod node_lib;
mod raw;
mod rest;
mod sim_dtls;
mod with_sim;
