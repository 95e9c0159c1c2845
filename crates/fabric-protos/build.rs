//! Compiles Fabric's `.proto` files (in `protos/`) with protox, a pure-Rust protobuf compiler (no `protoc`),
//! and generates prost messages plus tonic clients and servers with tonic-prost-build.

use prost::Message;
use std::error::Error;
use std::path::PathBuf;

/// Every file, relative to `protos/`. Imports resolve against `protos/` and protox's built-in
/// `google/protobuf/*` well-known types.
const FILES: &[&str] = &[
    "common/common.proto",
    "common/policies.proto",
    "common/configtx.proto",
    "common/configuration.proto",
    "msp/msp_principal.proto",
    "msp/identities.proto",
    "msp/msp_config.proto",
    "ledger/rwset/rwset.proto",
    "ledger/rwset/kvrwset/kv_rwset.proto",
    "ledger/queryresult/kv_query_result.proto",
    "peer/chaincode.proto",
    "peer/chaincode_event.proto",
    "peer/proposal.proto",
    "peer/proposal_response.proto",
    "peer/transaction.proto",
    "peer/events.proto",
    "peer/peer.proto",
    "peer/chaincode_shim.proto",
    "peer/configuration.proto",
    "peer/lifecycle/lifecycle.proto",
    "orderer/ab.proto",
    "orderer/configuration.proto",
    "orderer/etcdraft/configuration.proto",
    "orderer/etcdraft/metadata.proto",
    "gateway/gateway.proto",
    "google/rpc/status.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=protos");
    let fds = protox::compile(FILES, ["protos"])?;
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    std::fs::write(out.join("fabric_protos.fds.bin"), fds.encode_to_vec())?;
    // Services only with the `grpc` feature: without it the generated code refers to no tonic item.
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        // Connection setup (TLS, endpoints) belongs to the shells that use these stubs.
        .build_transport(false)
        // Maps encode in key order, like Fabric's JavaScript bindings: deterministic bytes for what gets
        // hashed and signed (configuration trees, transient maps).
        .btree_map(".")
        // `bytes` fields as `bytes::Bytes`: decoding from a `Bytes` buffer (tonic hands prost one) slices
        // instead of copying, so a block or an envelope is not copied field by field on every hop.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
