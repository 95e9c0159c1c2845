//! Generates the gRPC service stubs with tonic-build's manual API: the messages are hand-written prost
//! structs (see `src/messages.rs` and `ledger-types`), so no `protoc` is needed to build.

use tonic_build::manual::{Builder, Method, Service};

fn method(name: &str, route: &str, input: &str, output: &str, server_streaming: bool) -> Method {
    let b = method_builder(name, route, input, output);
    if server_streaming { b.server_streaming().build() } else { b.build() }
}

fn method_builder(name: &str, route: &str, input: &str, output: &str) -> tonic_build::manual::MethodBuilder {
    Method::builder()
        .name(name)
        .route_name(route)
        .input_type(input)
        .output_type(output)
        .codec_path("tonic_prost::ProstCodec")
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
    let endorser = Service::builder()
        .name("Endorser")
        .package("ipechain.peer")
        .method(method(
            "process_proposal",
            "ProcessProposal",
            &format!("{t}::SignedProposal"),
            &format!("{t}::ProposalResponse"),
            false,
        ))
        .build();
    let gateway = Service::builder()
        .name("Gateway")
        .package("ipechain.gateway")
        .method(method(
            "evaluate",
            "Evaluate",
            &format!("{m}::EvaluateRequest"),
            &format!("{m}::EvaluateResponse"),
            false,
        ))
        .method(method(
            "endorse",
            "Endorse",
            &format!("{m}::EndorseRequest"),
            &format!("{m}::EndorseResponse"),
            false,
        ))
        .method(method(
            "submit",
            "Submit",
            &format!("{m}::SubmitRequest"),
            &format!("{m}::SubmitResponse"),
            false,
        ))
        .method(
            method_builder(
                "session",
                "Session",
                &format!("{m}::SessionRequest"),
                &format!("{m}::SessionResponse"),
            )
            .client_streaming()
            .server_streaming()
            .build(),
        )
        .method(method(
            "commit_status",
            "CommitStatus",
            &format!("{m}::SignedRequest"),
            &format!("{m}::CommitStatusResponse"),
            false,
        ))
        .method(method(
            "chaincode_events",
            "ChaincodeEvents",
            &format!("{m}::SignedRequest"),
            &format!("{m}::ChaincodeEventsResponse"),
            true,
        ))
        .method(method(
            "deliver",
            "Deliver",
            &format!("{m}::SignedRequest"),
            &format!("{m}::DeliverResponse"),
            true,
        ))
        .method(method(
            "deliver_filtered",
            "DeliverFiltered",
            &format!("{m}::SignedRequest"),
            &format!("{m}::FilteredBlock"),
            true,
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
    Builder::new().compile(&[orderer, cluster, endorser, gateway, status]);
}
