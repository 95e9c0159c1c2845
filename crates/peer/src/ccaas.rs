//! Chaincode as a service: a contract that runs outside the peer, in a chaincode server that speaks Fabric's
//! shim protocol (`protos.Chaincode/Connect`, `ChaincodeMessage`), as Fabric 2.4+ peers run chaincode with
//! the `ccaas` builder. The peer dials the server (plain or TLS), the chaincode registers (REGISTER →
//! REGISTERED, READY), and each proposal is a TRANSACTION message (INIT for an initialization) whose state calls (GET_STATE, PUT_STATE,
//! DEL_STATE, GET_STATE_BY_RANGE with pagination, QUERY_STATE_NEXT/CLOSE, GET_STATE_MULTIPLE,
//! WRITE_BATCH_STATE, GET_STATE_METADATA, GET_HISTORY_FOR_KEY, INVOKE_CHAINCODE on the same channel) the
//! peer answers from the
//! proposal's [`TxContext`], until the
//! chaincode's COMPLETED (its `Response` and event) or ERROR. The read/write set is recorded exactly as for a
//! built-in contract, so validation does not know the difference.
//!
//! Refused with a clear error (the chaincode sees an ERROR answer): private data (any call with a
//! collection), rich queries (`GET_QUERY_RESULT`: there is no CouchDB), state metadata writes,
//! calls into another channel. A chaincode that does not answer within the timeout, breaks the connection
//! or sends something that does not decode fails that proposal only (status 500); the next proposal dials
//! again.

use bytes::Bytes;
use contract::{Contract, ContractError, MAX_RANGE, TxContext};
use fabric_protos::protos::chaincode_client::ChaincodeClient;
use fabric_protos::protos::chaincode_message::Type as MsgType;
use fabric_protos::protos::{
    ChaincodeId, ChaincodeInput, ChaincodeMessage, ChaincodeSpec, DelState, GetHistoryForKey, GetState,
    GetStateByRange, GetStateMultiple, GetStateMultipleResult, PutState, QueryMetadata, QueryResponse,
    QueryResponseMetadata, QueryResultBytes, QueryStateClose, Response, StateMetadataResult, WriteBatchState,
    write_record,
};
use fabric_protos::queryresult::{KeyModification, Kv};
use prost::Message;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a chaincode may take over one proposal (Fabric's `chaincode.executetimeout` default).
pub const EXECUTE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long dialing and registering may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message exchanged with a chaincode.
const MAX_MESSAGE: usize = 100 << 20;

/// Where a chaincode server listens (Fabric's ccaas `connection.json`).
#[derive(Clone, Debug)]
pub struct ChaincodeEndpoint {
    /// `host:port`.
    pub address: String,
    /// PEM of the CA that signs the server's TLS certificate; `None`: plain TCP (`tls_required: false`).
    pub tls_ca_pem: Option<Vec<u8>>,
    /// Over TLS, the certificate and key (PEM) the peer presents when the server asks for one (Fabric's
    /// `client_auth_required` with `client_cert`/`client_key`): the peer's own TLS identity.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One registered connection to the chaincode server.
struct Session {
    out: mpsc::Sender<ChaincodeMessage>,
    /// Proposals in flight, by `channel/txid`: where the chaincode's messages for them go.
    waiters: Mutex<HashMap<String, std::sync::mpsc::Sender<ChaincodeMessage>>>,
    closed: AtomicBool,
    /// The name the chaincode registered with.
    registered_as: String,
}

/// A contract run by an external chaincode server.
pub struct ExternalChaincode {
    name: String,
    endpoint: ChaincodeEndpoint,
    runtime: tokio::runtime::Handle,
    session: Mutex<Option<Arc<Session>>>,
    timeout: Duration,
    max_value: usize,
}

/// The execution timeout's clock: this module is I/O (a connection to another process), not validation.
#[allow(clippy::disallowed_methods)]
fn clock() -> std::time::Instant {
    std::time::Instant::now()
}

fn key(channel: &str, txid: &str) -> String {
    format!("{channel}/{txid}")
}

fn internal(e: impl std::fmt::Display) -> ContractError {
    ContractError::Internal(e.to_string())
}

impl ExternalChaincode {
    /// The contract `name`, run by the server at `endpoint`. Must be created inside a tokio runtime (the
    /// connection's tasks run on it); connects on first use.
    pub fn new(name: &str, endpoint: ChaincodeEndpoint) -> ExternalChaincode {
        ExternalChaincode {
            name: name.to_owned(),
            endpoint,
            runtime: tokio::runtime::Handle::current(),
            session: Mutex::new(None),
            timeout: EXECUTE_TIMEOUT,
            max_value: MAX_MESSAGE,
        }
    }

    /// Another execution timeout (Fabric's `chaincode.executetimeout`).
    pub fn with_timeout(mut self, timeout: Duration) -> ExternalChaincode {
        self.timeout = timeout;
        self
    }

    /// The largest value the chaincode may write (the channel's absolute maximum transaction size: a larger
    /// write could never be ordered).
    pub fn with_max_value(mut self, max: usize) -> ExternalChaincode {
        self.max_value = max;
        self
    }

    /// The open session, dialing and registering when there is none (or the last one ended).
    fn session(&self) -> Result<Arc<Session>, ContractError> {
        let mut slot = lock(&self.session);
        if let Some(s) = slot.as_ref().filter(|s| !s.closed.load(Ordering::Acquire)) {
            return Ok(s.clone());
        }
        let endpoint = self.endpoint.clone();
        let name = self.name.clone();
        let s = self
            .runtime
            .block_on(async move { tokio::time::timeout(CONNECT_TIMEOUT, connect(&name, &endpoint)).await })
            .map_err(|_| {
                internal(format!(
                    "chaincode {} at {}: no registration within {CONNECT_TIMEOUT:?}",
                    self.name, self.endpoint.address
                ))
            })?
            .map_err(|e| internal(format!("chaincode {} at {}: {e}", self.name, self.endpoint.address)))?;
        tracing::info!(contract = %self.name, address = %self.endpoint.address, registered_as = %s.registered_as, "external chaincode connected");
        *slot = Some(s.clone());
        Ok(s)
    }
}

/// Dials, opens `Connect`, waits for REGISTER, answers REGISTERED and READY, and starts the reader.
async fn connect(name: &str, endpoint: &ChaincodeEndpoint) -> Result<Arc<Session>, String> {
    let scheme = if endpoint.tls_ca_pem.is_some() { "https" } else { "http" };
    let mut ep = tonic::transport::Endpoint::from_shared(format!("{scheme}://{}", endpoint.address))
        .map_err(|e| e.to_string())?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    if let Some(ca) = &endpoint.tls_ca_pem {
        let host = endpoint.address.rsplit_once(':').map_or(endpoint.address.as_str(), |(h, _)| h);
        ep = ep
            .tls_config({
                let tls = tonic::transport::ClientTlsConfig::new()
                    .domain_name(host.trim_start_matches('[').trim_end_matches(']'))
                    .ca_certificate(tonic::transport::Certificate::from_pem(ca));
                match &endpoint.client_identity {
                    Some((cert, key)) => tls.identity(tonic::transport::Identity::from_pem(cert, key)),
                    None => tls,
                }
            })
            .map_err(|e| e.to_string())?;
    }
    let channel = ep.connect().await.map_err(|e| format!("cannot connect: {e}"))?;
    let mut client = ChaincodeClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let (out, rx) = mpsc::channel(1024);
    let mut inbound = client
        .connect(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| format!("Connect refused: {}", s.message()))?
        .into_inner();
    let first = inbound
        .message()
        .await
        .map_err(|s| format!("before registering: {}", s.message()))?
        .ok_or("the chaincode closed the stream before registering")?;
    if first.r#type != MsgType::Register as i32 {
        return Err(format!("expected REGISTER first, got message type {}", first.r#type));
    }
    let id = ChaincodeId::decode(first.payload.as_ref()).map_err(|e| format!("REGISTER payload: {e}"))?;
    for t in [MsgType::Registered, MsgType::Ready] {
        out.send(ChaincodeMessage { r#type: t as i32, ..Default::default() })
            .await
            .map_err(|_| "the chaincode stream closed while registering".to_owned())?;
    }
    let session = Arc::new(Session {
        out,
        waiters: Mutex::new(HashMap::new()),
        closed: AtomicBool::new(false),
        registered_as: id.name,
    });
    let s = session.clone();
    let name = name.to_owned();
    tokio::spawn(async move {
        loop {
            match inbound.message().await {
                Ok(Some(m)) => {
                    if m.r#type == MsgType::Keepalive as i32 {
                        continue;
                    }
                    let waiter = lock(&s.waiters).get(&key(&m.channel_id, &m.txid)).cloned();
                    match waiter {
                        Some(w) => {
                            let _ = w.send(m);
                        }
                        None => {
                            tracing::debug!(contract = %name, txid = %m.txid, kind = m.r#type, "chaincode message for no proposal in flight")
                        }
                    }
                }
                Ok(None) => break,
                Err(st) => {
                    tracing::warn!(contract = %name, status = %st, "external chaincode stream failed");
                    break;
                }
            }
        }
        s.closed.store(true, Ordering::Release);
        // Waiting proposals see their channel disconnected.
        lock(&s.waiters).clear();
    });
    Ok(session)
}

/// Answers INVOKE_CHAINCODE: runs the named contract of the same channel within the transaction
/// ([`TxContext::invoke_contract`]) and returns, as Fabric's peer does, a COMPLETED message carrying the
/// callee's `Response` (its failure too, as a status ≥ 400, for the caller to judge). The target is Fabric's
/// `name[:version][/channel]`; another channel is refused.
fn invoke_chaincode(ctx: &mut TxContext<'_>, spec: ChaincodeSpec) -> Result<Vec<u8>, String> {
    let target = spec.chaincode_id.map(|c| c.name).unwrap_or_default();
    let channel = ctx.proposal().map(|(ch, _)| ch.to_owned()).unwrap_or_default();
    let (name, other) = match target.split_once('/') {
        Some((n, ch)) => (n, Some(ch)),
        None => (target.as_str(), None),
    };
    if let Some(ch) = other.filter(|ch| !ch.is_empty() && *ch != channel) {
        return Err(format!("calls into another channel ({ch}) are not supported"));
    }
    let name = name.split(':').next().unwrap_or_default();
    if name.is_empty() {
        return Err("InvokeChaincode names no chaincode".into());
    }
    let args = spec.input.map(|i| i.args).unwrap_or_default();
    let (function, rest) = match args.split_first() {
        Some((f, rest)) => (String::from_utf8_lossy(f).into_owned(), rest),
        None => (String::new(), &[][..]),
    };
    let rest: Vec<Vec<u8>> = rest.iter().map(|a| a.to_vec()).collect();
    let response = match ctx.invoke_contract(name, &function, &rest) {
        Ok(payload) => Response { status: 200, message: String::new(), payload: payload.into() },
        Err(e) => Response { status: e.status(), message: e.to_string(), payload: Vec::new().into() },
    };
    Ok(ChaincodeMessage {
        r#type: MsgType::Completed as i32,
        payload: response.encode_to_vec().into(),
        txid: ctx.tx_id().to_owned(),
        channel_id: channel,
        ..Default::default()
    }
    .encode_to_vec())
}

/// A range query's results still to hand out, by iterator id.
struct Iterators {
    next_id: u64,
    /// Encoded results (`queryresult.KV` or `KeyModification`) still to hand out.
    open: HashMap<String, Vec<Vec<u8>>>,
}

/// The chaincode's page size for QUERY_STATE_NEXT batches without explicit pagination (Fabric's
/// `ledger.state.totalQueryLimit`-like batch).
const BATCH: usize = 100;

impl Contract for ExternalChaincode {
    fn name(&self) -> &str {
        &self.name
    }

    fn wants_proposal(&self) -> bool {
        true
    }

    fn is_external(&self) -> bool {
        true
    }

    fn invoke(
        &self,
        ctx: &mut TxContext<'_>,
        function: &str,
        args: &[Vec<u8>],
    ) -> Result<Vec<u8>, ContractError> {
        let (channel_id, proposal) =
            ctx.proposal().ok_or_else(|| internal("an external chaincode needs the signed proposal"))?;
        let (channel_id, proposal) = (channel_id.to_owned(), proposal.clone());
        let txid = ctx.tx_id().to_owned();
        let session = self.session()?;
        let k = key(&channel_id, &txid);
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let mut w = lock(&session.waiters);
            if w.contains_key(&k) {
                return Err(ContractError::Conflict(format!("transaction {txid} is already being executed")));
            }
            w.insert(k.clone(), tx);
        }
        let result = self.run(ctx, &session, &channel_id, &txid, proposal, function, args, &rx);
        lock(&session.waiters).remove(&k);
        result
    }
}

impl ExternalChaincode {
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        ctx: &mut TxContext<'_>,
        session: &Session,
        channel_id: &str,
        txid: &str,
        proposal: ledger_types::proto::SignedProposal,
        function: &str,
        args: &[Vec<u8>],
        rx: &std::sync::mpsc::Receiver<ChaincodeMessage>,
    ) -> Result<Vec<u8>, ContractError> {
        let send = |m: ChaincodeMessage| {
            session
                .out
                .blocking_send(m)
                .map_err(|_| internal(format!("chaincode {}: connection lost", self.name)))
        };
        let reply = |kind: MsgType, payload: Vec<u8>| ChaincodeMessage {
            r#type: kind as i32,
            payload: payload.into(),
            txid: txid.to_owned(),
            channel_id: channel_id.to_owned(),
            ..Default::default()
        };
        let mut input_args = Vec::with_capacity(args.len() + 1);
        input_args.push(function.as_bytes().to_vec().into());
        input_args.extend(args.iter().map(|a| Bytes::copy_from_slice(a)));
        let input = ChaincodeInput { args: input_args, ..Default::default() };
        let kind = if ctx.is_init() { MsgType::Init } else { MsgType::Transaction };
        send(ChaincodeMessage {
            r#type: kind as i32,
            payload: input.encode_to_vec().into(),
            txid: txid.to_owned(),
            channel_id: channel_id.to_owned(),
            proposal: Some(proposal),
            ..Default::default()
        })?;
        let deadline = clock() + self.timeout;
        let mut iterators = Iterators { next_id: 0, open: HashMap::new() };
        loop {
            let left = deadline.saturating_duration_since(clock());
            let msg = match rx.recv_timeout(left) {
                Ok(m) => m,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(internal(format!(
                        "chaincode {} did not complete within {:?}",
                        self.name, self.timeout
                    )));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(internal(format!(
                        "chaincode {}: connection lost during the transaction",
                        self.name
                    )));
                }
            };
            let kind = MsgType::try_from(msg.r#type).unwrap_or(MsgType::Undefined);
            match kind {
                MsgType::Completed => {
                    let r = Response::decode(msg.payload.as_ref())
                        .map_err(|e| internal(format!("chaincode {}: COMPLETED payload: {e}", self.name)))?;
                    if let Some(ev) = msg.chaincode_event.filter(|e| !e.event_name.is_empty()) {
                        ctx.set_event(&ev.event_name, ev.payload.into());
                    }
                    if r.status >= 400 {
                        return Err(ContractError::Chaincode { status: r.status, message: r.message });
                    }
                    return Ok(r.payload.into());
                }
                MsgType::Error => {
                    return Err(ContractError::Chaincode {
                        status: 500,
                        message: String::from_utf8_lossy(&msg.payload).into_owned(),
                    });
                }
                _ => {
                    let answer = match self.state_call(ctx, kind, &msg.payload, &mut iterators) {
                        Ok(payload) => reply(MsgType::Response, payload),
                        Err(e) => reply(MsgType::Error, e.into_bytes()),
                    };
                    send(answer)?;
                }
            }
        }
    }

    /// Answers one of the chaincode's calls during a transaction: the RESPONSE payload, or the ERROR text.
    fn state_call(
        &self,
        ctx: &mut TxContext<'_>,
        kind: MsgType,
        payload: &[u8],
        iterators: &mut Iterators,
    ) -> Result<Vec<u8>, String> {
        let bad = |what: &str, e: prost::DecodeError| format!("malformed {what}: {e}");
        let no_private = |collection: &str| {
            if collection.is_empty() {
                Ok(())
            } else {
                Err(format!("private data (collection {collection:?}) is not supported by ipechain"))
            }
        };
        let text = |e: ContractError| e.to_string();
        match kind {
            MsgType::GetState => {
                let m = GetState::decode(payload).map_err(|e| bad("GetState", e))?;
                no_private(&m.collection)?;
                Ok(ctx.get_state(&m.key).map_err(text)?.unwrap_or_default())
            }
            MsgType::GetStateMultiple => {
                let m = GetStateMultiple::decode(payload).map_err(|e| bad("GetStateMultiple", e))?;
                no_private(&m.collection)?;
                let mut values = Vec::with_capacity(m.keys.len());
                for k in &m.keys {
                    values.push(ctx.get_state(k).map_err(text)?.unwrap_or_default().into());
                }
                Ok(GetStateMultipleResult { values }.encode_to_vec())
            }
            MsgType::PutState => {
                let m = PutState::decode(payload).map_err(|e| bad("PutState", e))?;
                no_private(&m.collection)?;
                self.check_value(&m.key, &m.value)?;
                ctx.put_state(&m.key, m.value.into()).map_err(text)?;
                Ok(Vec::new())
            }
            MsgType::DelState => {
                let m = DelState::decode(payload).map_err(|e| bad("DelState", e))?;
                no_private(&m.collection)?;
                ctx.delete_state(&m.key).map_err(text)?;
                Ok(Vec::new())
            }
            MsgType::WriteBatchState => {
                let m = WriteBatchState::decode(payload).map_err(|e| bad("WriteBatchState", e))?;
                for r in m.rec {
                    no_private(&r.collection)?;
                    match write_record::Type::try_from(r.r#type) {
                        Ok(write_record::Type::PutState) => {
                            self.check_value(&r.key, &r.value)?;
                            ctx.put_state(&r.key, r.value.into()).map_err(text)?
                        }
                        Ok(write_record::Type::DelState) => ctx.delete_state(&r.key).map_err(text)?,
                        _ => return Err(format!("write batch record type {} is not supported", r.r#type)),
                    }
                }
                Ok(Vec::new())
            }
            MsgType::GetStateByRange => {
                let m = GetStateByRange::decode(payload).map_err(|e| bad("GetStateByRange", e))?;
                no_private(&m.collection)?;
                let paging = if m.metadata.is_empty() {
                    None
                } else {
                    Some(QueryMetadata::decode(m.metadata.as_ref()).map_err(|e| bad("QueryMetadata", e))?)
                };
                match paging.filter(|p| p.page_size > 0) {
                    Some(p) => {
                        // One page: from the bookmark (the next key) on, `page_size` keys; the bookmark of
                        // the next page is the key after the last one returned.
                        let start =
                            if p.bookmark.is_empty() { m.start_key.clone() } else { p.bookmark.clone() };
                        let size = usize::try_from(p.page_size).unwrap_or(MAX_RANGE).min(MAX_RANGE);
                        let mut found = ctx.get_range(&start, &m.end_key, size + 1).map_err(text)?;
                        let bookmark = if found.len() > size {
                            found.pop().map(|(k, _)| k).unwrap_or_default()
                        } else {
                            String::new()
                        };
                        let meta = QueryResponseMetadata {
                            fetched_records_count: i32::try_from(found.len()).unwrap_or(i32::MAX),
                            bookmark,
                        };
                        let mut found = self.encode_kvs(found);
                        let n = found.len();
                        let mut r = page(&mut found, n, String::new());
                        r.metadata = meta.encode_to_vec().into();
                        Ok(r.encode_to_vec())
                    }
                    None => {
                        let found = ctx.get_range(&m.start_key, &m.end_key, MAX_RANGE).map_err(text)?;
                        let mut found = self.encode_kvs(found);
                        iterators.next_id += 1;
                        let id = format!("it{}", iterators.next_id);
                        let r = page(&mut found, BATCH, id.clone());
                        if r.has_more {
                            iterators.open.insert(id, found);
                        }
                        Ok(r.encode_to_vec())
                    }
                }
            }
            MsgType::QueryStateNext => {
                let m = QueryStateClose::decode(payload).map_err(|e| bad("QueryStateNext", e))?;
                let mut rest =
                    iterators.open.remove(&m.id).ok_or_else(|| format!("no open iterator {:?}", m.id))?;
                let r = page(&mut rest, BATCH, m.id.clone());
                if r.has_more {
                    iterators.open.insert(m.id, rest);
                }
                Ok(r.encode_to_vec())
            }
            MsgType::QueryStateClose => {
                let m = QueryStateClose::decode(payload).map_err(|e| bad("QueryStateClose", e))?;
                iterators.open.remove(&m.id);
                Ok(QueryResponse { id: m.id, ..Default::default() }.encode_to_vec())
            }
            MsgType::GetStateMetadata => Ok(StateMetadataResult::default().encode_to_vec()),
            MsgType::GetQueryResult => {
                Err("rich queries (GetQueryResult) are not supported: ipechain has no CouchDB state".into())
            }
            MsgType::GetHistoryForKey => {
                let m = GetHistoryForKey::decode(payload).map_err(|e| bad("GetHistoryForKey", e))?;
                let mut found: Vec<Vec<u8>> = ctx
                    .get_history(&m.key)
                    .map_err(text)?
                    .into_iter()
                    .map(|h| {
                        KeyModification {
                            tx_id: h.tx_id,
                            value: h.value.into(),
                            timestamp: Some(prost_types::Timestamp {
                                seconds: h.timestamp.0,
                                nanos: h.timestamp.1,
                            }),
                            is_delete: h.is_delete,
                        }
                        .encode_to_vec()
                    })
                    .collect();
                iterators.next_id += 1;
                let id = format!("it{}", iterators.next_id);
                let r = page(&mut found, BATCH, id.clone());
                if r.has_more {
                    iterators.open.insert(id, found);
                }
                Ok(r.encode_to_vec())
            }
            MsgType::InvokeChaincode => {
                let spec = ChaincodeSpec::decode(payload).map_err(|e| bad("ChaincodeSpec", e))?;
                invoke_chaincode(ctx, spec)
            }
            MsgType::PutStateMetadata => {
                Err("state metadata (key-level endorsement) is not supported".into())
            }
            MsgType::GetPrivateDataHash | MsgType::PurgePrivateData => {
                Err("private data is not supported by ipechain".into())
            }
            other => Err(format!("unexpected message {other:?} during a transaction")),
        }
    }

    fn check_value(&self, key: &str, value: &[u8]) -> Result<(), String> {
        if value.len() > self.max_value {
            return Err(format!(
                "the value of {key:?} is {} bytes, over the channel's maximum of {} bytes",
                value.len(),
                self.max_value
            ));
        }
        Ok(())
    }

    /// Range results as encoded `queryresult.KV`s.
    fn encode_kvs(&self, found: Vec<(String, Vec<u8>)>) -> Vec<Vec<u8>> {
        found
            .into_iter()
            .map(|(key, value)| Kv { namespace: self.name.clone(), key, value: value.into() }.encode_to_vec())
            .collect()
    }
}

/// Takes up to `n` encoded results off the front of `found` as a `QueryResponse` (`has_more` when some
/// remain).
fn page(found: &mut Vec<Vec<u8>>, n: usize, id: String) -> QueryResponse {
    let take = n.min(found.len());
    let results = found
        .drain(..take)
        .map(|result_bytes| QueryResultBytes { result_bytes: result_bytes.into() })
        .collect();
    QueryResponse { results, has_more: !found.is_empty(), id, metadata: Vec::new().into() }
}
