//! The gRPC services and enums, compared with Fabric's JavaScript bindings: every method path and its
//! streaming shape, and every enum value, as Fabric's clients have them.

use std::collections::BTreeSet;

use fabric_protos::FILE_DESCRIPTOR_SET;
use prost::Message;
use prost_types::FileDescriptorSet;

use crate::node;

fn node_text(prefix: &str) -> Vec<(String, String)> {
    node::encode()
        .into_iter()
        .filter_map(|(name, bytes)| {
            let rest = name.strip_prefix(prefix)?.to_owned();
            Some((rest, String::from_utf8(bytes).expect("node printed UTF-8")))
        })
        .collect()
}

fn descriptors() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("the embedded descriptor set decodes")
}

#[test]
fn service_methods_are_fabrics() {
    let fds = descriptors();
    let ours: BTreeSet<String> = fds
        .file
        .iter()
        .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
        .flat_map(|(pkg, s)| {
            s.method.iter().map(move |m| {
                format!("/{pkg}.{}/{}:{}:{}", s.name(), m.name(), m.client_streaming(), m.server_streaming())
            })
        })
        .collect();
    let services = node_text("service:");
    assert_eq!(services.len(), 6, "{services:?}");
    let theirs: BTreeSet<String> =
        services.iter().flat_map(|(_, text)| text.split(',').map(str::to_owned)).collect();
    assert_eq!(ours, theirs);
    assert!(ours.contains("/gateway.Gateway/ChaincodeEvents:false:true"), "{ours:?}");
}

macro_rules! check_enum {
    ($theirs:expr, $name:literal, $ty:ty) => {{
        let text = $theirs
            .iter()
            .find(|(n, _)| n == $name)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("node printed no enum {}", $name));
        let mut count = 0;
        for pair in text.split(',') {
            let (name, number) = pair.split_once('=').expect("NAME=number");
            let number: i32 = number.parse().expect("a number");
            let ours = <$ty>::from_str_name(name).unwrap_or_else(|| panic!("{}: no {name} here", $name));
            assert_eq!(ours as i32, number, "{}::{name}", $name);
            count += 1;
        }
        let here = (-1..=1024).filter(|n| <$ty>::try_from(*n).is_ok()).count();
        assert_eq!(here, count, "{}: {here} values here, {count} in Fabric's bindings", $name);
    }};
}

#[test]
fn enums_are_fabrics() {
    use fabric_protos::{common, orderer::seek_info, protos, rwset};
    let theirs = node_text("enum:");
    assert_eq!(theirs.len(), 10);
    check_enum!(theirs, "common.Status", common::Status);
    check_enum!(theirs, "common.HeaderType", common::HeaderType);
    check_enum!(theirs, "common.BlockMetadataIndex", common::BlockMetadataIndex);
    check_enum!(theirs, "protos.TxValidationCode", protos::TxValidationCode);
    check_enum!(theirs, "protos.ChaincodeSpec.Type", protos::chaincode_spec::Type);
    check_enum!(theirs, "protos.ChaincodeMessage.Type", protos::chaincode_message::Type);
    check_enum!(theirs, "rwset.TxReadWriteSet.DataModel", rwset::tx_read_write_set::DataModel);
    check_enum!(theirs, "orderer.SeekInfo.SeekBehavior", seek_info::SeekBehavior);
    check_enum!(theirs, "orderer.SeekInfo.SeekErrorResponse", seek_info::SeekErrorResponse);
    check_enum!(theirs, "orderer.SeekInfo.SeekContentType", seek_info::SeekContentType);
}

mod in_process {
    //! Our generated clients call our generated servers in-process (the client's transport is the server's
    //! tower service, wrapped to record each request's path): every call arrives at the method it names,
    //! and the paths are the ones Fabric's JavaScript clients use.

    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use fabric_protos::common::{Block, BlockHeader, Envelope, Status as FabricStatus};
    use fabric_protos::gateway::gateway_client::GatewayClient;
    use fabric_protos::gateway::gateway_server::{Gateway, GatewayServer};
    use fabric_protos::gateway::{
        ChaincodeEventsResponse, CommitStatusResponse, EndorseRequest, EndorseResponse, ErrorDetail,
        EvaluateRequest, EvaluateResponse, SignedChaincodeEventsRequest, SignedCommitStatusRequest,
        SubmitRequest, SubmitResponse,
    };
    use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
    use fabric_protos::orderer::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
    use fabric_protos::orderer::{BroadcastResponse, DeliverResponse, deliver_response};
    use fabric_protos::protos::endorser_client::EndorserClient;
    use fabric_protos::protos::endorser_server::{Endorser, EndorserServer};
    use fabric_protos::protos::{
        ChaincodeEvent, ProposalResponse, Response, SignedProposal, TxValidationCode,
    };
    use tonic::codegen::tokio_stream::{self, Stream, StreamExt};
    use tonic::codegen::{Service, http};
    use tonic::{Request, Status, Streaming};

    /// A tower service that records the path of every request it passes on.
    #[derive(Clone)]
    struct Recorder<S> {
        inner: S,
        paths: Arc<Mutex<Vec<String>>>,
    }

    impl<S: Service<http::Request<B>>, B> Service<http::Request<B>> for Recorder<S> {
        type Response = S::Response;
        type Error = S::Error;
        type Future = S::Future;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, req: http::Request<B>) -> Self::Future {
            self.paths.lock().expect("paths lock").push(req.uri().path().to_owned());
            self.inner.call(req)
        }
    }

    fn recorder<S>(inner: S) -> (Recorder<S>, Arc<Mutex<Vec<String>>>) {
        let paths = Arc::new(Mutex::new(Vec::new()));
        (Recorder { inner, paths: paths.clone() }, paths)
    }

    fn refusal() -> ErrorDetail {
        ErrorDetail {
            address: "peer0.org1.example.com:7051".into(),
            msp_id: "Org1MSP".into(),
            message: "chaincode response 500, no such device".into(),
        }
    }

    type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

    struct Stub;

    fn ok(payload: &str) -> Option<Response> {
        Some(Response { status: 200, message: String::new(), payload: payload.as_bytes().to_vec().into() })
    }

    #[tonic::async_trait]
    impl Gateway for Stub {
        async fn endorse(
            &self,
            r: Request<EndorseRequest>,
        ) -> Result<tonic::Response<EndorseResponse>, Status> {
            let r = r.into_inner();
            if r.transaction_id == "refused" {
                return Err(fabric_protos::error_details::status_with_details(
                    tonic::Code::Aborted,
                    "failed to endorse transaction, see attached details for more info",
                    &[refusal()],
                ));
            }
            let env =
                Envelope { payload: r.transaction_id.into_bytes().into(), signature: Vec::new().into() };
            Ok(tonic::Response::new(EndorseResponse { prepared_transaction: Some(env) }))
        }
        async fn submit(&self, r: Request<SubmitRequest>) -> Result<tonic::Response<SubmitResponse>, Status> {
            match r.into_inner().prepared_transaction {
                Some(_) => Ok(tonic::Response::new(SubmitResponse {})),
                None => Err(Status::invalid_argument("a prepared transaction is required")),
            }
        }
        async fn commit_status(
            &self,
            _: Request<SignedCommitStatusRequest>,
        ) -> Result<tonic::Response<CommitStatusResponse>, Status> {
            Ok(tonic::Response::new(CommitStatusResponse {
                result: TxValidationCode::MvccReadConflict as i32,
                block_number: 9,
            }))
        }
        async fn evaluate(
            &self,
            r: Request<EvaluateRequest>,
        ) -> Result<tonic::Response<EvaluateResponse>, Status> {
            Ok(tonic::Response::new(EvaluateResponse { result: ok(&r.into_inner().channel_id) }))
        }
        type ChaincodeEventsStream = BoxStream<ChaincodeEventsResponse>;
        async fn chaincode_events(
            &self,
            _: Request<SignedChaincodeEventsRequest>,
        ) -> Result<tonic::Response<Self::ChaincodeEventsStream>, Status> {
            let blocks = (3..5).map(|n| {
                Ok(ChaincodeEventsResponse {
                    events: vec![ChaincodeEvent { event_name: format!("e{n}"), ..Default::default() }],
                    block_number: n,
                })
            });
            Ok(tonic::Response::new(Box::pin(tokio_stream::iter(blocks.collect::<Vec<_>>()))))
        }
    }

    #[tonic::async_trait]
    impl Endorser for Stub {
        async fn process_proposal(
            &self,
            r: Request<SignedProposal>,
        ) -> Result<tonic::Response<ProposalResponse>, Status> {
            let payload = r.into_inner().proposal_bytes;
            Ok(tonic::Response::new(ProposalResponse {
                response: ok("endorsed"),
                payload,
                ..Default::default()
            }))
        }
    }

    #[tonic::async_trait]
    impl AtomicBroadcast for Stub {
        type BroadcastStream = BoxStream<BroadcastResponse>;
        async fn broadcast(
            &self,
            r: Request<Streaming<Envelope>>,
        ) -> Result<tonic::Response<Self::BroadcastStream>, Status> {
            let acks = r.into_inner().map(|env| {
                env.map(|e| BroadcastResponse {
                    status: FabricStatus::Success as i32,
                    info: String::from_utf8_lossy(&e.payload).into_owned(),
                })
            });
            Ok(tonic::Response::new(Box::pin(acks)))
        }
        type DeliverStream = BoxStream<DeliverResponse>;
        async fn deliver(
            &self,
            r: Request<Streaming<Envelope>>,
        ) -> Result<tonic::Response<Self::DeliverStream>, Status> {
            let mut requests = r.into_inner();
            let seek =
                requests.message().await?.ok_or_else(|| Status::invalid_argument("no seek envelope"))?;
            let block = Block {
                header: Some(BlockHeader { number: seek.payload.len() as u64, ..Default::default() }),
                ..Default::default()
            };
            let replies = vec![
                Ok(DeliverResponse { r#type: Some(deliver_response::Type::Block(block)) }),
                Ok(DeliverResponse {
                    r#type: Some(deliver_response::Type::Status(FabricStatus::Success as i32)),
                }),
            ];
            Ok(tonic::Response::new(Box::pin(tokio_stream::iter(replies))))
        }
    }

    fn fabric_paths(service: &str) -> Vec<String> {
        super::node_text("service:")
            .into_iter()
            .find(|(name, _)| name == service)
            .map(|(_, text)| {
                text.split(',').map(|m| m.split(':').next().expect("a path").to_owned()).collect()
            })
            .unwrap_or_else(|| panic!("node printed no service {service}"))
    }

    fn recorded(paths: &Mutex<Vec<String>>) -> Vec<String> {
        paths.lock().expect("paths lock").clone()
    }

    #[tokio::test]
    async fn gateway_client_reaches_gateway_server_on_fabrics_paths() {
        let (svc, paths) = recorder(GatewayServer::new(Stub));
        let mut client = GatewayClient::new(svc);
        let endorsed = client
            .endorse(EndorseRequest { transaction_id: "tx1".into(), ..Default::default() })
            .await
            .expect("endorse")
            .into_inner();
        assert_eq!(endorsed.prepared_transaction.map(|e| e.payload.to_vec()), Some(b"tx1".to_vec()));
        let refused = client
            .endorse(EndorseRequest { transaction_id: "refused".into(), ..Default::default() })
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::Aborted);
        assert_eq!(fabric_protos::error_details::error_details(&refused), Ok(vec![refusal()]));
        let refused = client.submit(SubmitRequest::default()).await.expect_err("no envelope");
        assert_eq!(
            (refused.code(), refused.message()),
            (tonic::Code::InvalidArgument, "a prepared transaction is required")
        );
        let status = client
            .commit_status(SignedCommitStatusRequest::default())
            .await
            .expect("commit status")
            .into_inner();
        assert_eq!((status.result(), status.block_number), (TxValidationCode::MvccReadConflict, 9));
        let evaluated = client
            .evaluate(EvaluateRequest { channel_id: "mychannel".into(), ..Default::default() })
            .await
            .expect("evaluate")
            .into_inner();
        assert_eq!(evaluated.result, ok("mychannel"));
        let mut events = client
            .chaincode_events(SignedChaincodeEventsRequest::default())
            .await
            .expect("events")
            .into_inner();
        let mut blocks = Vec::new();
        while let Some(r) = events.message().await.expect("event stream") {
            blocks.push((r.block_number, r.events[0].event_name.clone()));
        }
        assert_eq!(blocks, [(3, "e3".to_owned()), (4, "e4".to_owned())]);

        // Called above in the order of Fabric's definition (Endorse twice): Endorse, Submit, CommitStatus,
        // Evaluate, ChaincodeEvents.
        let mut want = fabric_paths("gateway.Gateway");
        want.insert(1, want[0].clone());
        assert_eq!(recorded(&paths), want);
    }

    #[tokio::test]
    async fn endorser_and_atomic_broadcast_clients_reach_their_servers_on_fabrics_paths() {
        let (svc, paths) = recorder(EndorserServer::new(Stub));
        let mut endorser = EndorserClient::new(svc);
        let sp = SignedProposal { proposal_bytes: b"proposal".to_vec().into(), signature: Vec::new().into() };
        let pr = endorser.process_proposal(sp).await.expect("process proposal").into_inner();
        assert_eq!((pr.payload.as_ref(), pr.response), (b"proposal".as_slice(), ok("endorsed")));
        assert_eq!(recorded(&paths), fabric_paths("protos.Endorser"));

        let (svc, paths) = recorder(AtomicBroadcastServer::new(Stub));
        let mut orderer = AtomicBroadcastClient::new(svc);
        let envs = ["a", "b"]
            .map(|p| Envelope { payload: p.as_bytes().to_vec().into(), signature: Vec::new().into() });
        let mut acks =
            orderer.broadcast(tokio_stream::iter(envs.clone())).await.expect("broadcast").into_inner();
        let mut infos = Vec::new();
        while let Some(ack) = acks.message().await.expect("ack stream") {
            assert_eq!(ack.status(), FabricStatus::Success);
            infos.push(ack.info);
        }
        assert_eq!(infos, ["a", "b"]);
        let seek = Envelope { payload: vec![0; 7].into(), signature: Vec::new().into() };
        let mut delivered = orderer.deliver(tokio_stream::iter([seek])).await.expect("deliver").into_inner();
        let first = delivered.message().await.expect("deliver stream").and_then(|r| r.r#type);
        let Some(deliver_response::Type::Block(block)) = first else { panic!("a block first: {first:?}") };
        assert_eq!(block.header.map(|h| h.number), Some(7));
        let last = delivered.message().await.expect("deliver stream").and_then(|r| r.r#type);
        assert_eq!(last, Some(deliver_response::Type::Status(FabricStatus::Success as i32)));
        assert_eq!(recorded(&paths), fabric_paths("orderer.AtomicBroadcast"));
    }
}
