//! Fabric's `orderer.AtomicBroadcast` (Broadcast and Deliver streams) with Fabric's own messages, statuses
//! and seek semantics, beside ipechain's service on the same listener.

use crate::support::{CHANNEL, Cluster, FakeSigner, envelope};
use fabric_protos::common::{Envelope, Status};
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use fabric_protos::orderer::{
    BroadcastResponse, DeliverResponse, SeekInfo, SeekNewest, SeekNextCommit, SeekOldest, SeekPosition,
    SeekSpecified, deliver_response, seek_info, seek_position,
};
use ledger_types::BlockExt;
use ledger_types::proto::Block;
use ledger_types::tx::{DecodedTx, Signer};
use orderer::{Denied, EnvelopeAuthorizer};
use prost::Message;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::Streaming;

fn pos(t: seek_position::Type) -> Option<SeekPosition> {
    Some(SeekPosition { r#type: Some(t) })
}

fn specified(n: u64) -> Option<SeekPosition> {
    pos(seek_position::Type::Specified(SeekSpecified { number: n }))
}

/// A signed `DELIVER_SEEK_INFO` envelope, as Fabric's deliver clients send it.
fn seek(
    channel: &str,
    start: Option<SeekPosition>,
    stop: Option<SeekPosition>,
    behavior: i32,
    content: i32,
) -> Envelope {
    let reader = FakeSigner::new("Org1MSP", "reader");
    let info = SeekInfo { start, stop, behavior, error_response: 0, content_type: content };
    ledger_types::tx::seek_envelope(&reader, channel, &info, now())
}

#[allow(clippy::disallowed_methods)] // the client's clock, as a deliver client's
fn now() -> ledger_types::proto::Timestamp {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    ledger_types::proto::Timestamp { seconds: d.as_secs() as i64, nanos: 0 }
}

/// The same seek request signed with a timestamp 16 minutes old (Fabric's deliver allows 15).
fn stale(env: Envelope) -> Envelope {
    use fabric_protos::common::{ChannelHeader, Payload};
    let mut payload = Payload::decode(env.payload.as_ref()).unwrap();
    let header = payload.header.as_mut().unwrap();
    let mut ch = ChannelHeader::decode(header.channel_header.as_ref()).unwrap();
    ch.timestamp.as_mut().unwrap().seconds -= 16 * 60;
    header.channel_header = ch.encode_to_vec().into();
    let payload = payload.encode_to_vec();
    Envelope {
        signature: FakeSigner::new("Org1MSP", "reader").sign(&payload).into(),
        payload: payload.into(),
    }
}

fn until_ready(channel: &str, start: Option<SeekPosition>, stop: Option<SeekPosition>) -> Envelope {
    seek(channel, start, stop, seek_info::SeekBehavior::BlockUntilReady as i32, 0)
}

/// One bidirectional stream: requests go in through the sender, answers come out of the stream.
struct Duplex<T> {
    tx: mpsc::Sender<Envelope>,
    rx: Streaming<T>,
}

fn requests(rx: mpsc::Receiver<Envelope>) -> impl futures::Stream<Item = Envelope> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
}

async fn broadcast_stream(c: &Cluster, i: usize) -> Duplex<BroadcastResponse> {
    let (tx, rx) = mpsc::channel(16);
    let rx = AtomicBroadcastClient::new(c.channel(i)).broadcast(requests(rx)).await.unwrap().into_inner();
    Duplex { tx, rx }
}

async fn deliver_stream(c: &Cluster, i: usize) -> Duplex<DeliverResponse> {
    let (tx, rx) = mpsc::channel(16);
    let rx = AtomicBroadcastClient::new(c.channel(i)).deliver(requests(rx)).await.unwrap().into_inner();
    Duplex { tx, rx }
}

async fn next<T>(d: &mut Duplex<T>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(20), d.rx.message()).await.expect("an answer in time").unwrap()
}

/// The blocks one seek request returns, and its final status.
async fn blocks_then_status(d: &mut Duplex<DeliverResponse>) -> (Vec<Block>, Status) {
    let mut blocks = Vec::new();
    loop {
        match next(d).await.expect("the stream stays open until the status").r#type {
            Some(deliver_response::Type::Block(b)) => blocks.push(b),
            Some(deliver_response::Type::Status(s)) => return (blocks, Status::try_from(s).unwrap()),
            None => panic!("an empty deliver response"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabric_broadcast_and_deliver_follow_fabrics_semantics() {
    let mut c = Cluster::new(3);
    c.start_all().await;
    c.leader().await;

    // Broadcast: one answer per envelope, in order, with Fabric's statuses.
    let mut b = broadcast_stream(&c, 1).await;
    let (first, first_id) = envelope(CHANNEL, b"a", 1);
    let (second, _) = envelope(CHANNEL, b"b", 2);
    let (other_channel, _) = envelope("other", b"c", 3);
    // Over the channel's absolute maximum (64 KiB in these tests): Fabric's BAD_REQUEST.
    let (oversized, _) = envelope(CHANNEL, &vec![b'x'; 70 * 1024], 4);
    for env in [
        first.clone(),
        Envelope { payload: vec![0xff; 3].into(), signature: vec![].into() },
        other_channel,
        second,
        first,
        oversized,
    ] {
        b.tx.send(env).await.unwrap();
    }
    let mut answers = Vec::new();
    for _ in 0..6 {
        let r = next(&mut b).await.unwrap();
        answers.push((Status::try_from(r.status).unwrap(), r.info));
    }
    let statuses: Vec<Status> = answers.iter().map(|a| a.0).collect();
    assert_eq!(
        statuses,
        [
            Status::Success,
            Status::BadRequest,
            Status::NotFound,
            Status::Success,
            Status::Success,
            Status::BadRequest
        ],
        "{answers:?}"
    );
    assert!(answers[4].1.contains("already ordered"), "a repeated envelope is ordered once: {answers:?}");
    assert!(answers[5].1.contains("exceeds the absolute maximum"), "{answers:?}");
    let height = c.converge(3).await;

    // Deliver: oldest..newest, then on the same stream the next block, waiting for it.
    let mut d = deliver_stream(&c, 2).await;
    d.tx.send(until_ready(
        CHANNEL,
        pos(seek_position::Type::Oldest(SeekOldest {})),
        pos(seek_position::Type::Newest(SeekNewest {})),
    ))
    .await
    .unwrap();
    let (blocks, st) = blocks_then_status(&mut d).await;
    assert_eq!(st, Status::Success);
    assert_eq!(blocks.iter().map(|b| b.number()).collect::<Vec<_>>(), (0..height).collect::<Vec<_>>());
    for w in blocks.windows(2) {
        w[1].check_links(Some(&w[0])).unwrap();
    }
    let ids: Vec<String> = blocks
        .iter()
        .skip(1)
        .flat_map(|b| {
            b.envelopes().iter().map(|e| DecodedTx::decode(e).unwrap().tx_id().to_owned()).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ids.iter().filter(|i| **i == first_id).count(), 1);
    d.tx.send(until_ready(CHANNEL, specified(height), specified(height))).await.unwrap();
    let (third, third_id) = envelope(CHANNEL, b"d", 4);
    b.tx.send(third).await.unwrap();
    assert_eq!(Status::try_from(next(&mut b).await.unwrap().status).unwrap(), Status::Success);
    let (blocks, st) = blocks_then_status(&mut d).await;
    assert_eq!((blocks.len(), st), (1, Status::Success));
    assert_eq!(blocks[0].number(), height);
    assert!(blocks[0].envelopes().iter().any(|e| DecodedTx::decode(e).unwrap().tx_id() == third_id));
    // next_commit with FAIL_IF_NOT_READY: the block is not there, NOT_FOUND, and the stream ends.
    d.tx.send(seek(
        CHANNEL,
        pos(seek_position::Type::NextCommit(SeekNextCommit {})),
        specified(u64::MAX),
        seek_info::SeekBehavior::FailIfNotReady as i32,
        0,
    ))
    .await
    .unwrap();
    let (blocks, st) = blocks_then_status(&mut d).await;
    assert_eq!((blocks.len(), st), (0, Status::NotFound));
    assert!(next(&mut d).await.is_none(), "a refusal ends the stream");

    // Headers only; and refusals: a range backwards, a start beyond the height, another channel.
    let mut d = deliver_stream(&c, 0).await;
    d.tx.send(seek(CHANNEL, specified(1), specified(2), 0, seek_info::SeekContentType::HeaderWithSig as i32))
        .await
        .unwrap();
    let (blocks, st) = blocks_then_status(&mut d).await;
    assert_eq!(st, Status::Success);
    assert!(blocks.iter().all(|b| b.data.is_none() && b.header.is_some()) && blocks.len() == 2);
    for (req, want) in [
        (until_ready(CHANNEL, specified(2), specified(1)), Status::BadRequest),
        (until_ready(CHANNEL, specified(height + 5), specified(height + 6)), Status::NotFound),
        (until_ready("other", specified(0), specified(0)), Status::NotFound),
        (until_ready(CHANNEL, None, specified(0)), Status::BadRequest),
        (stale(until_ready(CHANNEL, specified(0), specified(0))), Status::BadRequest),
    ] {
        let mut d = deliver_stream(&c, 0).await;
        d.tx.send(req).await.unwrap();
        assert_eq!(blocks_then_status(&mut d).await, (vec![], want));
    }
}

/// Admits TLS clients and writers, but no seek request (the authorizer's default).
struct NoReaders;

impl EnvelopeAuthorizer for NoReaders {
    fn authorize_broadcast(&self, _tx: &DecodedTx) -> Result<(), Denied> {
        Ok(())
    }
    fn authorize_cluster(&self, _: &[Vec<u8>]) -> Result<(), Denied> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_request_the_authorizer_refuses_is_forbidden() {
    let mut c = Cluster::new(3);
    c.authorizer = Some(Arc::new(NoReaders));
    c.start(0).await;
    let mut d = deliver_stream(&c, 0).await;
    d.tx.send(until_ready(CHANNEL, specified(0), specified(0))).await.unwrap();
    assert_eq!(blocks_then_status(&mut d).await, (vec![], Status::Forbidden));
}
