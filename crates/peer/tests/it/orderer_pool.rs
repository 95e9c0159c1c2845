//! `OrdererPool`, the peer's way to the ordering service, against small in-process `AtomicBroadcast`
//! servers (plaintext loopback gRPC): batching of concurrent submissions, a retry on the next orderer of what
//! one answered "unavailable", the leader hint, per-envelope statuses, and a short answer.

use bytes::Bytes;
use ledger_rpc::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
use ledger_rpc::messages::{
    BroadcastBatchRequest, BroadcastBatchResponse, BroadcastResponse, DeliverRequest, DeliverResponse,
};
use ledger_types::proto::Envelope;
use peer::service::OrdererPool;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

/// How a fake orderer answers a batch.
#[derive(Clone, Copy)]
enum Mode {
    /// Every envelope 503 ("not the leader and cannot forward"), naming orderer 2 as the leader.
    Unavailable,
    /// 200, or 400 for an envelope starting with `bad`; names itself (orderer 2) as the leader.
    Leader,
    /// Answers only the first envelope of each batch.
    Short,
}

#[derive(Clone)]
struct Fake {
    mode: Mode,
    batches: Arc<AtomicUsize>,
    envelopes: Arc<AtomicUsize>,
}

type DeliverStream = Pin<Box<dyn futures::Stream<Item = Result<DeliverResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AtomicBroadcast for Fake {
    async fn broadcast(&self, _: Request<Envelope>) -> Result<Response<BroadcastResponse>, Status> {
        Err(Status::unimplemented("the pool sends batches"))
    }

    async fn broadcast_batch(
        &self,
        request: Request<BroadcastBatchRequest>,
    ) -> Result<Response<BroadcastBatchResponse>, Status> {
        let envelopes = request.into_inner().envelopes;
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.envelopes.fetch_add(envelopes.len(), Ordering::SeqCst);
        let answer =
            |status: i32| BroadcastResponse { status, info: format!("status {status}"), leader_hint: 2 };
        let results = match self.mode {
            Mode::Unavailable => envelopes.iter().map(|_| answer(503)).collect(),
            Mode::Leader => {
                envelopes.iter().map(|e| answer(if e.starts_with(b"bad") { 400 } else { 200 })).collect()
            }
            Mode::Short => envelopes.iter().take(1).map(|_| answer(200)).collect(),
        };
        Ok(Response::new(BroadcastBatchResponse { results, leader_hint: 2 }))
    }

    type DeliverStream = DeliverStream;

    async fn deliver(&self, _: Request<DeliverRequest>) -> Result<Response<DeliverStream>, Status> {
        Err(Status::unimplemented("not used here"))
    }
}

impl Fake {
    fn new(mode: Mode) -> Fake {
        Fake { mode, batches: Arc::default(), envelopes: Arc::default() }
    }

    /// Serves on a free loopback port until the test's runtime ends; returns a lazy channel to it.
    async fn serve(&self) -> Channel {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let svc = AtomicBroadcastServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy()
    }
}

/// A channel to a loopback port nothing listens on.
fn closed_port() -> Channel {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_millis(500))
        .connect_lazy()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_leave_in_batches_and_move_to_the_leader() {
    let follower = Fake::new(Mode::Unavailable);
    let leader = Fake::new(Mode::Leader);
    let pool = OrdererPool::new(vec![follower.serve().await, leader.serve().await], Default::default());

    let n = 200;
    let mut tasks = Vec::new();
    for i in 0..n {
        let pool = pool.clone();
        let env = Bytes::from(if i % 10 == 0 { format!("bad-{i}") } else { format!("good-{i}") });
        tasks.push(tokio::spawn(async move { pool.broadcast_encoded(env).await }));
    }
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => {}
            Err(s) => {
                assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, n / 10, "exactly the bad envelopes are refused");
    // Everything reached the leader once; what the follower answered 503 was retried there.
    assert_eq!(leader.envelopes.load(Ordering::SeqCst), n);
    let batches = leader.batches.load(Ordering::SeqCst);
    assert!(batches < n / 2, "concurrent submissions share batches: {batches} batches for {n} envelopes");
    // The leader hint moved the pool: the next submission goes to orderer 2 first, and Deliver starts there.
    let before = follower.batches.load(Ordering::SeqCst);
    pool.broadcast_encoded(Bytes::from_static(b"good-after")).await.unwrap();
    assert_eq!(follower.batches.load(Ordering::SeqCst), before, "the follower is not asked again");
    assert_eq!(pool.rotation().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_without_an_answer_fails_and_no_orderer_is_unavailable() {
    let short = Fake::new(Mode::Short);
    let pool = OrdererPool::new(vec![short.serve().await], Default::default());
    let mut tasks = Vec::new();
    for i in 0..20 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move { pool.broadcast_encoded(Bytes::from(format!("e{i}"))).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(s) => assert_eq!(s.code(), Code::Internal, "{s:?}"),
        }
    }
    // One answer per batch: as many successes as batches, and every other envelope got an error.
    assert_eq!(ok, short.batches.load(Ordering::SeqCst));

    let nowhere = OrdererPool::new(vec![closed_port(), closed_port()], Default::default());
    let err = nowhere.broadcast_encoded(Bytes::from_static(b"e")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}
