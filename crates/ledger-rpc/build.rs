//! Generates the gRPC service stubs with tonic-build's manual API: the messages are hand-written prost
//! structs (see `src/messages.rs` and `ledger-types`), so no `protoc` is needed to build.

use tonic_build::manual::{Builder, Method, Service};

fn method(name: &str, route: &str, input: &str, output: &str, server_streaming: bool) -> Method {
    let b = Method::builder()
        .name(name)
        .route_name(route)
        .input_type(input)
        .output_type(output)
        .codec_path("tonic_prost::ProstCodec");
    if server_streaming { b.server_streaming().build() } else { b.build() }
}

fn main() {
    let t = "ledger_types::proto";
    let m = "crate::messages";
    let orderer = Service::builder()
        .name("AtomicBroadcast")
        .package("ipechain.orderer")
        .method(method(
            "broadcast",
            "Broadcast",
            &format!("{t}::Envelope"),
            &format!("{m}::BroadcastResponse"),
            false,
        ))
        .method(method(
            "broadcast_batch",
            "BroadcastBatch",
            &format!("{m}::BroadcastBatchRequest"),
            &format!("{m}::BroadcastBatchResponse"),
            false,
        ))
        .method(method(
            "deliver",
            "Deliver",
            &format!("{m}::DeliverRequest"),
            &format!("{m}::DeliverResponse"),
            true,
        ))
        .build();
    let cluster = Service::builder()
        .name("Cluster")
        .package("ipechain.orderer")
        .method(method("raft", "Raft", &format!("{m}::RaftMessage"), &format!("{m}::RaftMessage"), false))
        .method(method(
            "forward",
            "Forward",
            &format!("{m}::ForwardRequest"),
            &format!("{m}::BroadcastResponse"),
            false,
        ))
        .build();
    let status = Service::builder()
        .name("Admin")
        .package("ipechain.admin")
        .method(method(
            "status",
            "Status",
            &format!("{m}::StatusRequest"),
            &format!("{m}::NodeStatus"),
            false,
        ))
        .build();
    // ipechain's extension of Fabric's gateway (ledger-client uses it when the peer offers it, Fabric's
    // unary calls otherwise): Endorse and Submit requests of one client as messages of one stream.
    let session = Service::builder()
        .name("GatewaySession")
        .package("ipechain.gateway")
        .method(
            Method::builder()
                .name("session")
                .route_name("Session")
                .input_type(format!("{m}::SessionRequest"))
                .output_type(format!("{m}::SessionResponse"))
                .codec_path("tonic_prost::ProstCodec")
                .client_streaming()
                .server_streaming()
                .build(),
        )
        .build();
    Builder::new().compile(&[orderer, cluster, status, session]);
}
