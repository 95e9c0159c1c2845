//! A Rust chaincode shim: serves an ipechain [`Contract`] as a Fabric chaincode server ("chaincode as a
//! service", `protos.Chaincode/Connect`), the way `fabric-shim`'s server mode serves a Node chaincode. A peer
//! (ipechain's `peer::ccaas`, or a Fabric 2.4+ peer with the `ccaas` builder) dials it; the shim registers
//! (REGISTER with its chaincode id, then waits for REGISTERED and READY) and runs each TRANSACTION (or INIT)
//! on a blocking thread:
//!
//! - the contract sees a [`TxContext`] whose state reads are the peer's answers to GET_STATE and
//!   GET_STATE_BY_RANGE (+ QUERY_STATE_NEXT / QUERY_STATE_CLOSE) messages, so the read set the peer records
//!   is what the contract read; its own writes are read back locally (the contract semantics of a built-in
//!   contract);
//! - when it returns, its writes go to the peer as PUT_STATE / DEL_STATE, one per key in key order, then
//!   COMPLETED carries its `Response` (200 and the payload, or its error status and message) and its event.
//!
//! The caller ([`contract::Caller`]) comes from the proposal's creator (MSP id, the certificate's role OU and
//! common name), the timestamp from its channel header: the peer validated both before running the
//! chaincode. Versions in the snapshot are zero (the peer tracks them).

use contract::{Caller, Contract, TxContext};
use fabric_protos::common::{ChannelHeader, Header, SignatureHeader};
use fabric_protos::msp::SerializedIdentity;
use fabric_protos::protos::chaincode_message::Type as MsgType;
use fabric_protos::protos::chaincode_server::{Chaincode, ChaincodeServer};
use fabric_protos::protos::{
    ChaincodeEvent, ChaincodeId, ChaincodeInput, ChaincodeMessage, DelState, GetState, GetStateByRange,
    Proposal, PutState, QueryResponse, QueryStateClose, Response,
};
use fabric_protos::queryresult::Kv;
use ledger_types::proto::Version;
use ledger_types::store::{StateSnapshot, StoreError, VersionedValue};
use prost::Message;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response as TonicResponse, Status, Streaming};

/// How long the shim waits for the peer's answer to one of its calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest message exchanged with a peer.
const MAX_MESSAGE: usize = 100 << 20;

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShimError {
    /// The gRPC server failed.
    #[error("chaincode server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long connections get to end once the server is told to stop (a peer keeps its stream open).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Serves `contract` as the chaincode `chaincode_id` (Fabric's package id, e.g. `ipe:1`) on `listener`
/// until `shutdown` resolves; connections still open [`SHUTDOWN_GRACE`] later are dropped.
pub async fn serve(
    contract: Arc<dyn Contract>,
    chaincode_id: &str,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ShimError> {
    let svc = ChaincodeService { contract, chaincode_id: chaincode_id.to_owned() };
    let stop = tokio_util::sync::CancellationToken::new();
    let graceful = stop.clone();
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(
            ChaincodeServer::new(svc)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async move {
            graceful.cancelled().await
        });
    tokio::select! {
        r = server => r?,
        () = async {
            shutdown.await;
            stop.cancel();
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {}
    }
    Ok(())
}

struct ChaincodeService {
    contract: Arc<dyn Contract>,
    chaincode_id: String,
}

type Out = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send>>;

/// Transactions in flight on one connection: where the peer's answers for each go.
type Waiters = Arc<Mutex<HashMap<String, std::sync::mpsc::Sender<ChaincodeMessage>>>>;

fn key(channel: &str, txid: &str) -> String {
    format!("{channel}/{txid}")
}

#[tonic::async_trait]
impl Chaincode for ChaincodeService {
    type ConnectStream = Out;

    async fn connect(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<TonicResponse<Self::ConnectStream>, Status> {
        let mut inbound = request.into_inner();
        let (out, rx) = mpsc::channel::<Result<ChaincodeMessage, Status>>(1024);
        let register = ChaincodeMessage {
            r#type: MsgType::Register as i32,
            payload: ChaincodeId { name: self.chaincode_id.clone(), ..Default::default() }
                .encode_to_vec()
                .into(),
            ..Default::default()
        };
        out.send(Ok(register)).await.map_err(|_| Status::internal("stream closed"))?;
        let contract = self.contract.clone();
        tokio::spawn(async move {
            let waiters: Waiters = Arc::default();
            let mut ready = false;
            loop {
                let msg = match inbound.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(s) => {
                        tracing::warn!(status = %s, "the peer's chaincode stream failed");
                        break;
                    }
                };
                let kind = MsgType::try_from(msg.r#type).unwrap_or(MsgType::Undefined);
                match kind {
                    MsgType::Registered => {}
                    MsgType::Ready => ready = true,
                    MsgType::Keepalive => {
                        let _ = out
                            .send(Ok(ChaincodeMessage {
                                r#type: MsgType::Keepalive as i32,
                                ..Default::default()
                            }))
                            .await;
                    }
                    MsgType::Transaction | MsgType::Init if ready => {
                        let k = key(&msg.channel_id, &msg.txid);
                        let (tx, rx) = std::sync::mpsc::channel();
                        if lock(&waiters).insert(k.clone(), tx).is_some() {
                            tracing::warn!(txid = %msg.txid, "a transaction id already in flight");
                        }
                        let (contract, out, waiters) = (contract.clone(), out.clone(), waiters.clone());
                        tokio::task::spawn_blocking(move || {
                            let done = execute(contract.as_ref(), &msg, &out, rx);
                            lock(&waiters).remove(&k);
                            let _ = out.blocking_send(Ok(done));
                        });
                    }
                    MsgType::Response | MsgType::Error => {
                        let w = lock(&waiters).get(&key(&msg.channel_id, &msg.txid)).cloned();
                        match w {
                            Some(w) => {
                                let _ = w.send(msg);
                            }
                            None => {
                                tracing::debug!(txid = %msg.txid, "an answer for no transaction in flight")
                            }
                        }
                    }
                    other => tracing::warn!(kind = ?other, ready, "unexpected message from the peer"),
                }
            }
            // Transactions still running see their answers' channel close.
            lock(&waiters).clear();
        });
        Ok(TonicResponse::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

/// The peer's side of one transaction: sends the shim's calls and waits for the answers.
struct PeerCalls<'a> {
    out: &'a mpsc::Sender<Result<ChaincodeMessage, Status>>,
    answers: std::sync::mpsc::Receiver<ChaincodeMessage>,
    txid: &'a str,
    channel_id: &'a str,
}

impl PeerCalls<'_> {
    /// Sends one call and returns the RESPONSE payload (an ERROR answer is an error with its text).
    fn call(&self, kind: MsgType, payload: Vec<u8>) -> Result<Vec<u8>, String> {
        let msg = ChaincodeMessage {
            r#type: kind as i32,
            payload: payload.into(),
            txid: self.txid.to_owned(),
            channel_id: self.channel_id.to_owned(),
            ..Default::default()
        };
        self.out.blocking_send(Ok(msg)).map_err(|_| "the peer's stream closed".to_owned())?;
        let answer = self.answers.recv_timeout(CALL_TIMEOUT).map_err(|e| match e {
            std::sync::mpsc::RecvTimeoutError::Timeout => {
                format!("no answer from the peer within {CALL_TIMEOUT:?}")
            }
            std::sync::mpsc::RecvTimeoutError::Disconnected => "the peer's stream closed".to_owned(),
        })?;
        if answer.r#type == MsgType::Response as i32 {
            Ok(answer.payload.into())
        } else {
            Err(String::from_utf8_lossy(&answer.payload).into_owned())
        }
    }
}

/// The state as the peer answers for it during one transaction.
struct RemoteSnapshot<'a> {
    calls: Mutex<PeerCalls<'a>>,
}

/// Versions are the peer's business: the shim's snapshot reports zero.
const ZERO: Version = Version { block_num: 0, tx_num: 0 };

impl StateSnapshot for RemoteSnapshot<'_> {
    fn get(&self, _ns: &str, key: &str) -> Result<Option<VersionedValue>, StoreError> {
        let calls = lock(&self.calls);
        let v = calls
            .call(
                MsgType::GetState,
                GetState { key: key.to_owned(), collection: String::new() }.encode_to_vec(),
            )
            .map_err(StoreError::Backend)?;
        // As in Fabric, an empty value is no value.
        Ok((!v.is_empty()).then_some(VersionedValue { value: v, version: ZERO }))
    }

    fn range(
        &self,
        _ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>, StoreError> {
        let calls = lock(&self.calls);
        let decode =
            |b: Vec<u8>| QueryResponse::decode(b.as_slice()).map_err(|e| StoreError::Backend(e.to_string()));
        let mut page = decode(
            calls
                .call(
                    MsgType::GetStateByRange,
                    GetStateByRange {
                        start_key: start.to_owned(),
                        end_key: end.to_owned(),
                        ..Default::default()
                    }
                    .encode_to_vec(),
                )
                .map_err(StoreError::Backend)?,
        )?;
        let mut out = Vec::new();
        loop {
            for r in &page.results {
                if out.len() >= limit {
                    break;
                }
                let kv =
                    Kv::decode(r.result_bytes.as_ref()).map_err(|e| StoreError::Backend(e.to_string()))?;
                out.push((kv.key, VersionedValue { value: kv.value.into(), version: ZERO }));
            }
            if out.len() >= limit || !page.has_more {
                break;
            }
            page = decode(
                calls
                    .call(MsgType::QueryStateNext, QueryStateClose { id: page.id.clone() }.encode_to_vec())
                    .map_err(StoreError::Backend)?,
            )?;
        }
        if page.has_more {
            calls
                .call(MsgType::QueryStateClose, QueryStateClose { id: page.id }.encode_to_vec())
                .map_err(StoreError::Backend)?;
        }
        Ok(out)
    }
}

/// The caller and timestamp a proposal names (the peer validated the creator).
fn caller_of(msg: &ChaincodeMessage) -> Result<(Caller, i64), String> {
    let sp = msg.proposal.as_ref().ok_or("the transaction carries no proposal")?;
    let proposal = Proposal::decode(sp.proposal_bytes.as_ref()).map_err(|e| format!("proposal: {e}"))?;
    let header = Header::decode(proposal.header.as_ref()).map_err(|e| format!("proposal header: {e}"))?;
    let ch =
        ChannelHeader::decode(header.channel_header.as_ref()).map_err(|e| format!("channel header: {e}"))?;
    let sh = SignatureHeader::decode(header.signature_header.as_ref())
        .map_err(|e| format!("signature header: {e}"))?;
    let creator = SerializedIdentity::decode(sh.creator.as_ref()).map_err(|e| format!("creator: {e}"))?;
    let der = msp::certs_from_pem(&creator.id_bytes)
        .map_err(|e| format!("creator certificate: {e}"))?
        .into_iter()
        .next()
        .ok_or("the creator has no certificate")?;
    let (role, subject) = msp::cert_role_and_name(&der).map_err(|e| format!("creator certificate: {e}"))?;
    let caller = Caller { msp_id: creator.mspid, role: role.ou().to_owned(), subject, cert_der: der };
    Ok((caller, ch.timestamp.map_or(0, |t| t.seconds)))
}

/// Runs one TRANSACTION or INIT; returns the COMPLETED (or ERROR) message to send.
fn execute(
    contract: &dyn Contract,
    msg: &ChaincodeMessage,
    out: &mpsc::Sender<Result<ChaincodeMessage, Status>>,
    answers: std::sync::mpsc::Receiver<ChaincodeMessage>,
) -> ChaincodeMessage {
    let finish = |kind: MsgType, payload: Vec<u8>, event: Option<ChaincodeEvent>| ChaincodeMessage {
        r#type: kind as i32,
        payload: payload.into(),
        txid: msg.txid.clone(),
        channel_id: msg.channel_id.clone(),
        chaincode_event: event,
        ..Default::default()
    };
    let failed = |status: i32, message: String| {
        finish(
            MsgType::Completed,
            Response { status, message, payload: Vec::new().into() }.encode_to_vec(),
            None,
        )
    };
    let input = match ChaincodeInput::decode(msg.payload.as_ref()) {
        Ok(i) => i,
        Err(e) => return failed(400, format!("malformed chaincode input: {e}")),
    };
    let (caller, timestamp) = match caller_of(msg) {
        Ok(c) => c,
        Err(e) => return failed(400, e),
    };
    let (function, args) = match input.args.split_first() {
        Some((f, rest)) => (
            String::from_utf8_lossy(f).into_owned(),
            rest.iter().map(|a| a.to_vec()).collect::<Vec<Vec<u8>>>(),
        ),
        None => (String::new(), Vec::new()),
    };
    let calls = PeerCalls { out, answers, txid: &msg.txid, channel_id: &msg.channel_id };
    let snapshot = RemoteSnapshot { calls: Mutex::new(calls) };
    let mut ctx = TxContext::new(contract.name(), &snapshot, msg.txid.clone(), timestamp, &caller);
    let result = contract.invoke(&mut ctx, &function, &args);
    let (rwset, event) = ctx.into_results();
    let payload = match result {
        Ok(p) => p,
        Err(e) => return failed(e.status(), e.to_string()),
    };
    // The writes, in key order, then the outcome.
    let calls = lock(&snapshot.calls);
    for w in rwset.writes {
        let sent = if w.is_delete {
            calls.call(MsgType::DelState, DelState { key: w.key, collection: String::new() }.encode_to_vec())
        } else {
            calls.call(
                MsgType::PutState,
                PutState { key: w.key, value: w.value.into(), collection: String::new() }.encode_to_vec(),
            )
        };
        if let Err(e) = sent {
            return failed(500, format!("the peer refused a write: {e}"));
        }
    }
    let event = event.map(|(event_name, payload)| ChaincodeEvent {
        chaincode_id: contract.name().to_owned(),
        tx_id: msg.txid.clone(),
        event_name,
        payload: payload.into(),
    });
    finish(
        MsgType::Completed,
        Response { status: 200, message: String::new(), payload: payload.into() }.encode_to_vec(),
        event,
    )
}
