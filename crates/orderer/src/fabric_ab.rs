//! Fabric's `orderer.AtomicBroadcast` (Broadcast and Deliver, both bidirectional streams), beside ipechain's
//! own `ipechain.orderer.AtomicBroadcast` on the same listener, so that Fabric's SDKs and tools (a
//! `peer channel fetch`, a block explorer, Caliper's non-gateway bindings) can order and read blocks.
//!
//! **Broadcast** (Fabric's `orderer/common/broadcast`): one `BroadcastResponse{status, info}` per envelope,
//! in order. The structural checks and the authorizer decide first (`EnvelopeError::fabric_status`: an
//! unknown channel is `NOT_FOUND`, a malformed or oversized envelope `BAD_REQUEST`; a creator that is not a
//! writer or whose signature fails `FORBIDDEN`); then the envelope is ordered. Unlike Fabric, `SUCCESS`
//! comes once the block holding it is committed by the Raft cluster, not when it is enqueued (so an
//! acknowledged envelope is never lost); an envelope whose tx id is already in the chain is `SUCCESS` too
//! (it is ordered at most once, and its outcome is the earlier one's). No leader or a halted chain is
//! `SERVICE_UNAVAILABLE`.
//!
//! **Deliver** (Fabric's `common/deliver`): each request is a signed `DELIVER_SEEK_INFO` envelope; the seek
//! semantics are `fabric_protos::seek::plan_deliver`. An unknown channel is `NOT_FOUND`, a creator that is
//! not a reader or whose signature fails `FORBIDDEN`, an undecodable request, a bad range or a timestamp more
//! than 15 minutes from the orderer's clock (`check_seek_time`) `BAD_REQUEST`; then the blocks are sent
//! (waiting for missing ones unless `FAIL_IF_NOT_READY`, which answers `NOT_FOUND`; `HEADER_WITH_SIG` without
//! their data), then `SUCCESS`, and the stream takes the next seek request. A refusal ends the stream after
//! its status, as Fabric's handler does.

use crate::chain::{Chain, OrderError};
use crate::service::{Shared, check_envelope, client_certs, receiver_stream};
use fabric_protos::common::{
    ChannelHeader, Envelope, HeaderType, Payload, SignatureHeader, Status as CStatus,
};
use fabric_protos::orderer::atomic_broadcast_server::AtomicBroadcast;
use fabric_protos::orderer::{BroadcastResponse, DeliverResponse, SeekInfo, deliver_response};
use fabric_protos::seek::{Stop, check_seek_time, plan_deliver};
use futures::Stream;
use prost::Message;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

/// Fabric's `orderer.AtomicBroadcast` over an orderer's shared state.
#[derive(Clone)]
pub(crate) struct FabricAtomicBroadcast(pub(crate) Arc<Shared>);

type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The next envelope of a request stream; None when the client closed it, it failed, or the orderer stops.
async fn next_envelope(inbound: &mut Streaming<Envelope>, s: &Shared) -> Option<Envelope> {
    tokio::select! {
        m = inbound.message() => m.ok().flatten(),
        () = s.cancel.cancelled() => None,
    }
}

fn answer(status: CStatus, info: impl Into<String>) -> BroadcastResponse {
    BroadcastResponse { status: status as i32, info: info.into() }
}

/// Checks, authorizes and orders one envelope; the answer Fabric's broadcast gives for it.
async fn broadcast_one(s: &Shared, env: Envelope) -> BroadcastResponse {
    let bytes = bytes::Bytes::from(env.encode_to_vec());
    let tx = match check_envelope(&bytes, &s.channel_id, s.absolute_max_bytes) {
        Ok(tx) => tx,
        Err(e) => return answer(e.fabric_status(), e.to_string()),
    };
    if let Err(e) = s.authorizer.authorize_broadcast(&tx) {
        return answer(CStatus::Forbidden, e.to_string());
    }
    match s.chain.order(bytes, tx.tx_id().to_owned()).await {
        Ok(_) => answer(CStatus::Success, ""),
        Err(OrderError::AlreadyOrdered { block }) => {
            answer(CStatus::Success, format!("already ordered in block {block}"))
        }
        Err(e @ OrderError::TooLarge { .. }) => answer(CStatus::BadRequest, e.to_string()),
        Err(e) => answer(CStatus::ServiceUnavailable, e.to_string()),
    }
}

fn status(status: CStatus) -> DeliverResponse {
    DeliverResponse { r#type: Some(deliver_response::Type::Status(status as i32)) }
}

/// A seek request taken apart and authorized; the refusal status otherwise.
fn check_seek(s: &Shared, env: &Envelope) -> Result<SeekInfo, CStatus> {
    let payload = Payload::decode(env.payload.as_ref()).map_err(|_| CStatus::BadRequest)?;
    let header = payload.header.ok_or(CStatus::BadRequest)?;
    let ch = ChannelHeader::decode(header.channel_header.as_ref()).map_err(|_| CStatus::BadRequest)?;
    if ch.channel_id != s.channel_id {
        return Err(CStatus::NotFound);
    }
    if ch.r#type != HeaderType::DeliverSeekInfo as i32 {
        return Err(CStatus::BadRequest);
    }
    if let Err(e) = check_seek_time(&ch, crate::chain::wall_clock().seconds) {
        tracing::debug!(reason = %e, "deliver request refused");
        return Err(CStatus::BadRequest);
    }
    let sh = SignatureHeader::decode(header.signature_header.as_ref()).map_err(|_| CStatus::BadRequest)?;
    s.authorizer.authorize_seek(&sh.creator, &env.payload, &env.signature).map_err(|e| {
        tracing::debug!(reason = %e, "deliver request refused");
        CStatus::Forbidden
    })?;
    SeekInfo::decode(payload.data.as_ref()).map_err(|_| CStatus::BadRequest)
}

/// Serves one seek request: its blocks, then its final status. `Err(())` when the client went away or the
/// orderer stops (nothing more to send).
async fn serve_seek(
    s: &Shared,
    env: &Envelope,
    tx: &mpsc::Sender<Result<DeliverResponse, Status>>,
) -> Result<CStatus, ()> {
    let seek = match check_seek(s, env) {
        Ok(seek) => seek,
        Err(st) => return Ok(st),
    };
    let mut height = s.height.clone();
    let plan = match plan_deliver(&seek, s.store.height()) {
        Ok(plan) => plan,
        Err(e) => return Ok(e.status()),
    };
    let mut n = plan.start;
    loop {
        if let Stop::At(stop) = plan.stop
            && n > stop
        {
            return Ok(CStatus::Success);
        }
        height.borrow_and_update();
        if n < s.store.height() {
            let mut block = match s.store.block(n) {
                Ok(Some(b)) => b,
                Ok(None) | Err(_) => {
                    tracing::error!(block = n, "deliver: block missing from the store");
                    return Ok(CStatus::InternalServerError);
                }
            };
            if plan.headers_only {
                block.data = None;
            }
            let msg = DeliverResponse { r#type: Some(deliver_response::Type::Block(block)) };
            tx.send(Ok(msg)).await.map_err(|_| ())?;
            n += 1;
            continue;
        }
        if plan.fail_if_not_ready {
            return Ok(CStatus::NotFound);
        }
        tokio::select! {
            r = height.changed() => if r.is_err() { return Ok(CStatus::ServiceUnavailable) },
            () = tx.closed() => return Err(()),
            () = s.cancel.cancelled() => return Ok(CStatus::ServiceUnavailable),
        }
    }
}

#[tonic::async_trait]
impl AtomicBroadcast for FabricAtomicBroadcast {
    type BroadcastStream = Out<BroadcastResponse>;

    async fn broadcast(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        let s = self.0.clone();
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        s.streams.clone().spawn(async move {
            while let Some(env) = next_envelope(&mut inbound, &s).await {
                if tx.send(Ok(broadcast_one(&s, env).await)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(receiver_stream(rx)))
    }

    type DeliverStream = Out<DeliverResponse>;

    async fn deliver(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        let s = self.0.clone();
        s.authorizer
            .authorize_deliver(&client_certs(&request))
            .map_err(|e| Status::permission_denied(e.to_string()))?;
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        s.streams.clone().spawn(async move {
            while let Some(env) = next_envelope(&mut inbound, &s).await {
                let Ok(outcome) = serve_seek(&s, &env, &tx).await else { break };
                if tx.send(Ok(status(outcome))).await.is_err() || outcome != CStatus::Success {
                    break;
                }
            }
        });
        Ok(Response::new(receiver_stream(rx)))
    }
}
