//! Building and taking apart proposals, endorsements and transactions in Hyperledger Fabric's formats
//! ([`fabric_protos`] messages, Fabric's hashing rules in [`fabric_protos::hash`]), without any crypto of
//! its own: signing goes through the [`Signer`] trait and verification is the validator's job.
//!
//! ```text
//!  client (as @hyperledger/fabric-gateway)     endorsing peer                      committing peer
//!  ---------------------------------------     --------------                      ---------------
//!  ProposalBuilder::sign ─► SignedProposal ─► unpack_proposal (fabric_protos::tx)
//!                                           ─► response_payload + endorse ─► ProposalResponse
//!  assemble (same payload everywhere) ─► prepared Envelope ─► sign_envelope ─► … ─► DecodedTx::decode
//! ```
//!
//! The [`Signer`]'s `serialized_identity()` is an encoded `msp.SerializedIdentity{mspid, id_bytes = PEM
//! certificate}` ([`serialize_identity`]), as fabric-gateway sends it. Everything handed to the validator is
//! the exact bytes that are signed and hashed, as received (never re-encoded).

use crate::proto::{
    ContractEvent, KvRead, KvWrite, NsRwSet, RangeQueryInfo, Response, Timestamp, TxRwSet, Version,
};
use crate::{ChannelId, TxId};
use bytes::Bytes;
use fabric_protos::common::{self, ChannelHeader, HeaderType, SignatureHeader};
use fabric_protos::hash::{self, ProposalHashError};
use fabric_protos::protos::{
    self, ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeEvent,
    ChaincodeHeaderExtension, ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec, ChaincodeProposalPayload,
    ChaincodeSpec, Endorsement, Proposal, ProposalResponse, ProposalResponsePayload, SignedProposal,
    Transaction,
};
use fabric_protos::tx::{UnpackError, UnpackedProposal};
use fabric_protos::{kvrwset, msp, rwset};
use prost::Message;
use std::collections::BTreeMap;

/// Something that signs on behalf of an identity (a client, a peer, an orderer).
pub trait Signer: Send + Sync {
    /// The encoded `msp.SerializedIdentity{mspid, id_bytes = PEM certificate}` this signer signs as
    /// ([`serialize_identity`]).
    fn serialized_identity(&self) -> &[u8];
    /// Signs `msg`.
    fn sign(&self, msg: &[u8]) -> Vec<u8>;
}

/// Why a proposal, response or transaction cannot be built or taken apart.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// Bytes did not decode as the expected message.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// Which message.
        what: &'static str,
        /// The decoding error.
        source: prost::DecodeError,
    },
    /// A required field is missing or empty.
    #[error("missing {0}")]
    Missing(&'static str),
    /// The signed proposal does not unpack as Fabric's gateway requires.
    #[error("failed to unpack transaction proposal: {0}")]
    Unpack(#[from] UnpackError),
    /// The proposal hash cannot be computed.
    #[error("proposal hash: {0}")]
    ProposalHash(#[from] ProposalHashError),
    /// No endorsement was given.
    #[error("no endorsements")]
    NoEndorsements,
    /// An endorser returned a different `ProposalResponse.payload` than the first one.
    #[error("ProposalResponsePayloads do not match: endorser {index} returned a different payload")]
    Mismatch {
        /// Position of the disagreeing response.
        index: usize,
    },
    /// An endorser or the chaincode refused the proposal (status outside 200..400, or none).
    #[error("endorser {index} returned error {status}: {message}")]
    Refused {
        /// Position of the refusing response.
        index: usize,
        /// `Response.status` (0 when absent).
        status: i32,
        /// `Response.message`.
        message: String,
    },
    /// A transaction carries other than exactly one action (Fabric accepts one only).
    #[error("only one action per transaction is supported, got {0}")]
    ActionCount(usize),
    /// A read/write set in a data model other than `KV`.
    #[error("unsupported read/write set data model {0}")]
    DataModel(i32),
    /// A read/write set part ipechain does not support (private data collections, key metadata writes,
    /// Merkle summaries of range reads).
    #[error("unsupported in namespace `{namespace}`: {what}")]
    Unsupported {
        /// The namespace that carries it.
        namespace: String,
        /// What it is.
        what: &'static str,
    },
}

/// Decodes one message. Given a `Bytes`, its `bytes` fields are slices of it, not copies.
fn decode<M: Message + Default>(what: &'static str, bytes: impl bytes::Buf) -> Result<M, TxError> {
    M::decode(bytes).map_err(|source| TxError::Decode { what, source })
}

/// Encodes a Fabric identity (`msp.SerializedIdentity{mspid, id_bytes}`); `pem` is the PEM certificate, as
/// in fabric-gateway's `Identity.credentials`.
pub fn serialize_identity(msp_id: &str, pem: &[u8]) -> Vec<u8> {
    msp::SerializedIdentity { mspid: msp_id.to_owned(), id_bytes: pem.to_vec().into() }.encode_to_vec()
}

/// Decodes an encoded `msp.SerializedIdentity`.
pub fn deserialize_identity(bytes: &[u8]) -> Result<msp::SerializedIdentity, TxError> {
    decode("SerializedIdentity", bytes)
}

fn to_prost_timestamp(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.seconds, nanos: t.nanos }
}

fn from_prost_timestamp(t: &prost_types::Timestamp) -> Timestamp {
    Timestamp { seconds: t.seconds, nanos: t.nanos }
}

/// A chaincode proposal being put together by a client, as `@hyperledger/fabric-gateway` builds it.
#[derive(Debug, Clone)]
pub struct ProposalBuilder {
    channel: ChannelId,
    chaincode: String,
    transaction: String,
    args: Vec<Bytes>,
    transient: BTreeMap<String, Bytes>,
    is_init: bool,
}

impl ProposalBuilder {
    /// A proposal to call transaction `transaction` of chaincode `chaincode` on `channel`.
    pub fn new(channel: ChannelId, chaincode: impl Into<String>, transaction: impl Into<String>) -> Self {
        ProposalBuilder {
            channel,
            chaincode: chaincode.into(),
            transaction: transaction.into(),
            args: Vec::new(),
            transient: BTreeMap::new(),
            is_init: false,
        }
    }

    /// Marks the proposal as the chaincode's initialization (`ChaincodeInput.is_init`, Fabric's
    /// `peer chaincode invoke --isInit`), for a definition with `init_required`.
    pub fn init(mut self) -> Self {
        self.is_init = true;
        self
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<Bytes>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<A: Into<Bytes>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an entry of transient data (sent to the endorsers, never written to the ledger).
    pub fn transient(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.transient.insert(key.into(), value.into());
        self
    }

    /// The unsigned proposal for `creator` (an encoded `msp.SerializedIdentity`) and its tx id
    /// (hex SHA-256(`nonce` ‖ `creator`)). `nonce` should be 24 fresh random bytes and `timestamp` the
    /// client's clock; both are arguments so this stays pure. The encoding is fabric-gateway's:
    /// `ChannelHeader{ENDORSER_TRANSACTION, version 0, timestamp, channel_id, tx_id, epoch 0, extension =
    /// ChaincodeHeaderExtension{chaincode_id{name}}}`, `SignatureHeader{creator, nonce}`,
    /// `ChaincodeProposalPayload{input = ChaincodeInvocationSpec{ChaincodeSpec{NODE, chaincode_id{name},
    /// input{args = [transaction, ...args]}}}, TransientMap}`.
    pub fn proposal(self, creator: Vec<u8>, nonce: Vec<u8>, timestamp: Timestamp) -> (Proposal, TxId) {
        let tx_id = TxId::from_fabric_hex(hash::tx_id(&nonce, &creator));
        let chaincode_id = ChaincodeId { name: self.chaincode, ..Default::default() };
        let extension = ChaincodeHeaderExtension { chaincode_id: Some(chaincode_id.clone()) };
        let channel_header = ChannelHeader {
            r#type: HeaderType::EndorserTransaction as i32,
            version: 0,
            timestamp: Some(to_prost_timestamp(timestamp)),
            channel_id: self.channel.as_str().to_owned(),
            tx_id: tx_id.as_str().to_owned(),
            epoch: 0,
            extension: extension.encode_to_vec().into(),
            tls_cert_hash: Vec::new().into(),
        };
        let signature_header = SignatureHeader { creator: creator.into(), nonce: nonce.into() };
        let header = common::Header {
            channel_header: channel_header.encode_to_vec().into(),
            signature_header: signature_header.encode_to_vec().into(),
        };
        let mut args = Vec::with_capacity(1 + self.args.len());
        args.push(self.transaction.into_bytes().into());
        args.extend(self.args);
        let spec = ChaincodeSpec {
            r#type: protos::chaincode_spec::Type::Node as i32,
            chaincode_id: Some(chaincode_id),
            input: Some(ChaincodeInput { args, is_init: self.is_init, ..Default::default() }),
            ..Default::default()
        };
        let invocation = ChaincodeInvocationSpec { chaincode_spec: Some(spec) };
        let payload = ChaincodeProposalPayload {
            input: invocation.encode_to_vec().into(),
            transient_map: self.transient,
        };
        let proposal = Proposal {
            header: header.encode_to_vec().into(),
            payload: payload.encode_to_vec().into(),
            extension: Vec::new().into(),
        };
        (proposal, tx_id)
    }

    /// Builds the proposal for the signer's own identity and signs its bytes.
    pub fn sign(self, signer: &dyn Signer, nonce: Vec<u8>, timestamp: Timestamp) -> (SignedProposal, TxId) {
        let (proposal, tx_id) = self.proposal(signer.serialized_identity().to_vec(), nonce, timestamp);
        let proposal_bytes = proposal.encode_to_vec();
        let signature = signer.sign(&proposal_bytes);
        (SignedProposal { proposal_bytes: proposal_bytes.into(), signature: signature.into() }, tx_id)
    }
}

/// ipechain's read/write set as Fabric's: `TxReadWriteSet{KV, [NsReadWriteSet{namespace, rwset = encoded
/// KVRWSet}]}`, range reads as `raw_reads = QueryReads{kv_reads}`.
pub fn rwset_to_fabric(rwset: &TxRwSet) -> rwset::TxReadWriteSet {
    let ns_rwset = rwset
        .ns_rwsets
        .iter()
        .map(|ns| {
            let kv = kvrwset::KvrwSet {
                reads: ns.reads.iter().map(kv_read_to_fabric).collect(),
                range_queries_info: ns
                    .range_queries
                    .iter()
                    .map(|q| kvrwset::RangeQueryInfo {
                        start_key: q.start_key.clone(),
                        end_key: q.end_key.clone(),
                        itr_exhausted: q.itr_exhausted,
                        reads_info: Some(kvrwset::range_query_info::ReadsInfo::RawReads(
                            kvrwset::QueryReads { kv_reads: q.reads.iter().map(kv_read_to_fabric).collect() },
                        )),
                    })
                    .collect(),
                writes: ns
                    .writes
                    .iter()
                    .map(|w| kvrwset::KvWrite {
                        key: w.key.clone(),
                        is_delete: w.is_delete,
                        value: w.value.clone().into(),
                    })
                    .collect(),
                metadata_writes: Vec::new(),
            };
            rwset::NsReadWriteSet {
                namespace: ns.namespace.clone(),
                rwset: kv.encode_to_vec().into(),
                collection_hashed_rwset: Vec::new(),
            }
        })
        .collect();
    rwset::TxReadWriteSet { data_model: rwset::tx_read_write_set::DataModel::Kv as i32, ns_rwset }
}

fn kv_read_to_fabric(r: &KvRead) -> kvrwset::KvRead {
    kvrwset::KvRead {
        key: r.key.clone(),
        version: r.version.map(|v| kvrwset::Version { block_num: v.block_num, tx_num: v.tx_num }),
    }
}

fn kv_read_from_fabric(r: kvrwset::KvRead) -> KvRead {
    KvRead { key: r.key, version: r.version.map(|v| Version { block_num: v.block_num, tx_num: v.tx_num }) }
}

/// Fabric's read/write set as ipechain's. Refuses what ipechain cannot validate: another data model,
/// private data collections, key metadata writes and Merkle summaries of range reads.
pub fn rwset_from_fabric(rwset: &rwset::TxReadWriteSet) -> Result<TxRwSet, TxError> {
    if rwset.data_model != rwset::tx_read_write_set::DataModel::Kv as i32 {
        return Err(TxError::DataModel(rwset.data_model));
    }
    let mut ns_rwsets = Vec::with_capacity(rwset.ns_rwset.len());
    for ns in &rwset.ns_rwset {
        let unsupported = |what| TxError::Unsupported { namespace: ns.namespace.clone(), what };
        if !ns.collection_hashed_rwset.is_empty() {
            return Err(unsupported("private data collections"));
        }
        let kv: kvrwset::KvrwSet = decode("KVRWSet", ns.rwset.clone())?;
        if !kv.metadata_writes.is_empty() {
            return Err(unsupported("key metadata writes"));
        }
        let mut range_queries = Vec::with_capacity(kv.range_queries_info.len());
        for q in kv.range_queries_info {
            let reads = match q.reads_info {
                None => Vec::new(),
                Some(kvrwset::range_query_info::ReadsInfo::RawReads(r)) => {
                    r.kv_reads.into_iter().map(kv_read_from_fabric).collect()
                }
                Some(kvrwset::range_query_info::ReadsInfo::ReadsMerkleHashes(_)) => {
                    return Err(unsupported("Merkle summary of range reads"));
                }
            };
            range_queries.push(RangeQueryInfo {
                start_key: q.start_key,
                end_key: q.end_key,
                itr_exhausted: q.itr_exhausted,
                reads,
            });
        }
        ns_rwsets.push(NsRwSet {
            namespace: ns.namespace.clone(),
            reads: kv.reads.into_iter().map(kv_read_from_fabric).collect(),
            range_queries,
            writes: kv
                .writes
                .into_iter()
                .map(|w| KvWrite { key: w.key, is_delete: w.is_delete, value: w.value.into() })
                .collect(),
        });
    }
    Ok(TxRwSet { ns_rwsets })
}

/// ipechain's contract event as Fabric's `ChaincodeEvent` (same fields).
pub fn event_to_fabric(event: &ContractEvent) -> ChaincodeEvent {
    ChaincodeEvent {
        chaincode_id: event.contract.clone(),
        tx_id: event.tx_id.clone(),
        event_name: event.event_name.clone(),
        payload: event.payload.clone().into(),
    }
}

/// Fabric's `ChaincodeEvent` as ipechain's contract event.
pub fn event_from_fabric(event: ChaincodeEvent) -> ContractEvent {
    ContractEvent {
        contract: event.chaincode_id,
        tx_id: event.tx_id,
        event_name: event.event_name,
        payload: event.payload.into(),
    }
}

/// ipechain's response as Fabric's `protos.Response` (same fields).
pub fn response_to_fabric(r: &Response) -> protos::Response {
    protos::Response { status: r.status, message: r.message.clone(), payload: r.payload.clone().into() }
}

/// Fabric's `protos.Response` as ipechain's.
pub fn response_from_fabric(r: protos::Response) -> Response {
    Response { status: r.status, message: r.message, payload: r.payload.into() }
}

/// What an endorser signs for a simulated proposal: `ProposalResponsePayload{proposal_hash (Fabric's
/// rule over the proposal as received), extension = ChaincodeAction{results, events, response,
/// chaincode_id{name, version}}}`. `events` is empty without an event, as Fabric's endorser leaves it.
/// `chaincode_version` is the definition's version (Fabric's endorser puts it there; may be empty).
pub fn response_payload(
    proposal: &UnpackedProposal,
    chaincode_version: &str,
    results: &TxRwSet,
    event: Option<&ContractEvent>,
    response: &Response,
) -> Result<ProposalResponsePayload, TxError> {
    let proposal_hash = hash::proposal_hash(&proposal.proposal)?;
    let action = ChaincodeAction {
        results: rwset_to_fabric(results).encode_to_vec().into(),
        events: event.map(|e| event_to_fabric(e).encode_to_vec()).unwrap_or_default().into(),
        response: Some(response_to_fabric(response)),
        chaincode_id: Some(ChaincodeId {
            name: proposal.chaincode_name().to_owned(),
            version: chaincode_version.to_owned(),
            ..Default::default()
        }),
    };
    Ok(ProposalResponsePayload {
        proposal_hash: proposal_hash.to_vec().into(),
        extension: action.encode_to_vec().into(),
    })
}

/// Signs a response payload as an endorser:
/// `ProposalResponse{version 1, response, payload, endorsement{endorser, signature over payload ‖ endorser}}`.
pub fn endorse(
    signer: &dyn Signer,
    response: &Response,
    payload: &ProposalResponsePayload,
) -> ProposalResponse {
    endorse_as(signer, signer.serialized_identity().to_vec(), response, payload)
}

/// [`endorse`] naming the endorser by the encoded identity `endorser`.
pub fn endorse_as(
    signer: &dyn Signer,
    endorser: Vec<u8>,
    response: &Response,
    payload: &ProposalResponsePayload,
) -> ProposalResponse {
    let payload = payload.encode_to_vec();
    let signature = signer.sign(&hash::endorsement_signed_bytes(&payload, &endorser));
    ProposalResponse {
        version: 1,
        timestamp: None,
        response: Some(response_to_fabric(response)),
        payload: payload.into(),
        endorsement: Some(Endorsement { endorser: endorser.into(), signature: signature.into() }),
        interest: None,
    }
}

/// The prepared (unsigned) transaction for a signed proposal and its endorsements, as Fabric's gateway
/// returns it from `Endorse` ([`fabric_protos::tx::prepare_transaction`]). Every response must have a status
/// in 200..400 (Fabric's gateway), an endorsement, and exactly the first response's payload bytes.
pub fn assemble(
    proposal: &SignedProposal,
    responses: &[ProposalResponse],
) -> Result<common::Envelope, TxError> {
    let unpacked = fabric_protos::tx::unpack_proposal(proposal)?;
    let first = responses.first().ok_or(TxError::NoEndorsements)?;
    let mut endorsements = Vec::with_capacity(responses.len());
    for (index, r) in responses.iter().enumerate() {
        let status = r.response.as_ref().map_or(0, |s| s.status);
        if !(200..400).contains(&status) {
            let message = r.response.as_ref().map(|s| s.message.clone()).unwrap_or_default();
            return Err(TxError::Refused { index, status, message });
        }
        if r.payload != first.payload {
            return Err(TxError::Mismatch { index });
        }
        endorsements.push(r.endorsement.clone().ok_or(TxError::Missing("endorsement"))?);
    }
    let action = ChaincodeEndorsedAction { proposal_response_payload: first.payload.clone(), endorsements };
    Ok(fabric_protos::tx::prepare_transaction(&unpacked.header, &unpacked.payload, action))
}

/// The chaincode's response inside a prepared (endorsed) transaction, read as fabric-gateway reads a
/// submit's result: `Payload.data` → `Transaction.actions[0]` → `ChaincodeActionPayload.action` →
/// `ProposalResponsePayload.extension` → `ChaincodeAction.response`.
pub fn prepared_response(prepared: &common::Envelope) -> Result<protos::Response, TxError> {
    let payload: common::Payload = decode("Payload", prepared.payload.clone())?;
    let tx: Transaction = decode("Transaction", payload.data.clone())?;
    let action = tx.actions.first().ok_or(TxError::Missing("transaction action"))?;
    let cap: ChaincodeActionPayload = decode("ChaincodeActionPayload", action.payload.clone())?;
    let endorsed = cap.action.ok_or(TxError::Missing("endorsed action"))?;
    let prp: ProposalResponsePayload =
        decode("ProposalResponsePayload", endorsed.proposal_response_payload.clone())?;
    let ca: ChaincodeAction = decode("ChaincodeAction", prp.extension.clone())?;
    ca.response.ok_or(TxError::Missing("chaincode response"))
}

/// Signs a prepared transaction as its creator: the signature goes over `Envelope.payload` as it is.
pub fn sign_envelope(signer: &dyn Signer, prepared: &common::Envelope) -> common::Envelope {
    common::Envelope { payload: prepared.payload.clone(), signature: signer.sign(&prepared.payload).into() }
}

/// A signed `DELIVER_SEEK_INFO` envelope, as Fabric's deliver clients (fabric-gateway's block events, `peer
/// channel fetch`) send it to a peer's `protos.Deliver` or an orderer's `AtomicBroadcast/Deliver`:
/// `ChannelHeader{type DELIVER_SEEK_INFO, channel_id, timestamp}`, `SignatureHeader{creator}` (no nonce),
/// data = the `SeekInfo`, signed over the payload. `timestamp` is the client's clock (servers refuse one far
/// from theirs: [`fabric_protos::seek::check_seek_time`]).
pub fn seek_envelope(
    signer: &dyn Signer,
    channel_id: &str,
    seek: &fabric_protos::orderer::SeekInfo,
    timestamp: Timestamp,
) -> common::Envelope {
    let ch = ChannelHeader {
        r#type: HeaderType::DeliverSeekInfo as i32,
        channel_id: channel_id.to_owned(),
        timestamp: Some(to_prost_timestamp(timestamp)),
        ..Default::default()
    };
    let sh =
        SignatureHeader { creator: signer.serialized_identity().to_vec().into(), nonce: Vec::new().into() };
    let payload = common::Payload {
        header: Some(common::Header {
            channel_header: ch.encode_to_vec().into(),
            signature_header: sh.encode_to_vec().into(),
        }),
        data: seek.encode_to_vec().into(),
    }
    .encode_to_vec();
    common::Envelope { signature: signer.sign(&payload).into(), payload: payload.into() }
}

/// A `SeekInfo` for blocks `start..=stop` (`None`: forever), waiting for blocks not cut yet
/// (`BLOCK_UNTIL_READY`); `start` `None` is `next_commit` (the first block committed after the request).
pub fn seek_range(start: Option<u64>, stop: Option<u64>) -> fabric_protos::orderer::SeekInfo {
    use fabric_protos::orderer::{SeekInfo, SeekNextCommit, SeekPosition, SeekSpecified, seek_position};
    let specified = |number| seek_position::Type::Specified(SeekSpecified { number });
    let start = match start {
        Some(n) => specified(n),
        None => seek_position::Type::NextCommit(SeekNextCommit {}),
    };
    SeekInfo {
        start: Some(SeekPosition { r#type: Some(start) }),
        stop: Some(SeekPosition { r#type: Some(specified(stop.unwrap_or(u64::MAX))) }),
        ..Default::default()
    }
}

/// One endorsement of a decoded transaction, with the exact bytes its signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedEndorsement {
    /// The endorser's encoded `msp.SerializedIdentity`, as received.
    pub endorser: Bytes,
    /// The signature.
    pub signature: Bytes,
    /// `proposal_response_payload` ‖ `endorser`, both as received.
    pub signed_bytes: Vec<u8>,
}

/// The endorsed chaincode action of a decoded endorser transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAction {
    /// `TransactionAction.header`: the proposal's encoded `SignatureHeader`, as received.
    pub action_header: Bytes,
    /// `ChaincodeActionPayload.chaincode_proposal_payload` (transient-free), as received.
    pub chaincode_proposal_payload: Bytes,
    /// `ChaincodeEndorsedAction.proposal_response_payload`: the bytes every endorser signed, as received.
    pub proposal_response_payload: Bytes,
    /// The endorsements.
    pub endorsements: Vec<DecodedEndorsement>,
    /// `ChaincodeAction.chaincode_id.name`: the namespace the endorsers simulated (empty when absent).
    pub chaincode_name: String,
    /// `ChaincodeAction.chaincode_id.version`.
    pub chaincode_version: String,
    /// The read/write set, as ipechain's.
    pub results: TxRwSet,
    /// The chaincode event (None when `ChaincodeAction.events` is empty).
    pub event: Option<ContractEvent>,
    /// The chaincode's response.
    pub response: Option<Response>,
    /// Whether `ProposalResponsePayload.proposal_hash` equals Fabric's `proposal_hash_for_tx` over the
    /// transaction's channel header, action header and chaincode proposal payload (as received).
    pub proposal_hash_matches: bool,
}

impl DecodedAction {
    /// Decodes the invocation (`ChaincodeInvocationSpec`) from the chaincode proposal payload; the
    /// validator does not need it, so [`DecodedTx::decode`] leaves it encoded.
    pub fn invocation(&self) -> Result<ChaincodeInvocationSpec, TxError> {
        let cpp: ChaincodeProposalPayload =
            decode("ChaincodeProposalPayload", self.chaincode_proposal_payload.clone())?;
        decode("ChaincodeInvocationSpec", cpp.input)
    }
}

/// A Fabric `common.Envelope` taken apart into what ipechain's validator needs (decoding only; no
/// signature verified).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedTx {
    /// The envelope as received: `payload` is the creator-signed bytes, `signature` its signature.
    pub envelope: common::Envelope,
    /// `Payload.header`, its two parts still as received.
    pub header: common::Header,
    /// `header.channel_header`, decoded.
    pub channel_header: ChannelHeader,
    /// `header.signature_header`, decoded.
    pub signature_header: SignatureHeader,
    /// The endorsed action of an `ENDORSER_TRANSACTION` (None for every other header type, whose `data`
    /// is left to its own decoder).
    pub action: Option<DecodedAction>,
}

impl DecodedTx {
    /// Decodes an encoded `common.Envelope` and, for an `ENDORSER_TRANSACTION`, its single action. Copies
    /// the bytes once; [`DecodedTx::decode_bytes`] takes shared bytes and copies nothing.
    pub fn decode(envelope_bytes: &[u8]) -> Result<DecodedTx, TxError> {
        Self::decode_bytes(Bytes::copy_from_slice(envelope_bytes))
    }

    /// [`DecodedTx::decode`] of shared bytes: every byte field of the result (and of the nested messages
    /// it decodes on the way) is a slice of `envelope_bytes`, so a transaction is decoded without copying
    /// its certificates and payloads. The slices keep `envelope_bytes` alive.
    pub fn decode_bytes(envelope_bytes: Bytes) -> Result<DecodedTx, TxError> {
        let envelope: common::Envelope = decode("Envelope", envelope_bytes)?;
        if envelope.payload.is_empty() {
            return Err(TxError::Missing("envelope payload"));
        }
        let payload: common::Payload = decode("Payload", envelope.payload.clone())?;
        let header = payload.header.ok_or(TxError::Missing("payload header"))?;
        let channel_header: ChannelHeader = decode("ChannelHeader", header.channel_header.clone())?;
        let signature_header: SignatureHeader = decode("SignatureHeader", header.signature_header.clone())?;
        let action = if channel_header.r#type == HeaderType::EndorserTransaction as i32 {
            Some(decode_action(&header.channel_header, payload.data)?)
        } else {
            None
        };
        Ok(DecodedTx { envelope, header, channel_header, signature_header, action })
    }

    /// The channel the transaction names.
    pub fn channel_id(&self) -> &str {
        &self.channel_header.channel_id
    }

    /// The transaction id the channel header states.
    pub fn tx_id(&self) -> &str {
        &self.channel_header.tx_id
    }

    /// Whether the stated tx id is hex SHA-256(nonce ‖ creator) of the signature header (Fabric's
    /// `CheckTxID`; else `BAD_PROPOSAL_TXID`).
    pub fn tx_id_matches(&self) -> bool {
        hash::check_tx_id(self.tx_id(), &self.signature_header.nonce, &self.signature_header.creator).is_ok()
    }

    /// `ChannelHeader.type` (a `common.HeaderType` number).
    pub fn header_type(&self) -> i32 {
        self.channel_header.r#type
    }

    /// The creator's timestamp, if any.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.channel_header.timestamp.as_ref().map(from_prost_timestamp)
    }

    /// The creator: an encoded `msp.SerializedIdentity`, as received.
    pub fn creator(&self) -> &[u8] {
        &self.signature_header.creator
    }

    /// The bytes the creator signed: `Envelope.payload` as received.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.envelope.payload
    }

    /// The creator's signature over [`signed_bytes`](Self::signed_bytes).
    pub fn signature(&self) -> &[u8] {
        &self.envelope.signature
    }

    /// Whether the endorsed action refers to this transaction's proposal (false without an action).
    pub fn proposal_hash_matches(&self) -> bool {
        self.action.as_ref().is_some_and(|a| a.proposal_hash_matches)
    }
}

fn decode_action(channel_header: &Bytes, data: Bytes) -> Result<DecodedAction, TxError> {
    let tx: Transaction = decode("Transaction", data)?;
    if tx.actions.len() != 1 {
        return Err(TxError::ActionCount(tx.actions.len()));
    }
    let Some(ta) = tx.actions.into_iter().next() else {
        return Err(TxError::ActionCount(0));
    };
    let cap: ChaincodeActionPayload = decode("ChaincodeActionPayload", ta.payload)?;
    let endorsed = cap.action.ok_or(TxError::Missing("chaincode endorsed action"))?;
    let prp: ProposalResponsePayload =
        decode("ProposalResponsePayload", endorsed.proposal_response_payload.clone())?;
    let cc_action: ChaincodeAction = decode("ChaincodeAction", prp.extension)?;
    let results: rwset::TxReadWriteSet = decode("TxReadWriteSet", cc_action.results)?;
    let results = rwset_from_fabric(&results)?;
    let event = if cc_action.events.is_empty() {
        None
    } else {
        Some(event_from_fabric(decode("ChaincodeEvent", cc_action.events)?))
    };
    // Fabric's committer (GetProposalHash2): the payload's channel header with the action's signature
    // header, over the chaincode proposal payload as carried.
    let hash_header =
        common::Header { channel_header: channel_header.clone(), signature_header: ta.header.clone() };
    let proposal_hash_matches = hash::proposal_hash_for_tx(&hash_header, &cap.chaincode_proposal_payload)
        .is_ok_and(|h| h.as_slice() == prp.proposal_hash.as_ref());
    let endorsements = endorsed
        .endorsements
        .into_iter()
        .map(|e| DecodedEndorsement {
            signed_bytes: hash::endorsement_signed_bytes(&endorsed.proposal_response_payload, &e.endorser),
            endorser: e.endorser,
            signature: e.signature,
        })
        .collect();
    let (chaincode_name, chaincode_version) =
        cc_action.chaincode_id.map(|c| (c.name, c.version)).unwrap_or_default();
    Ok(DecodedAction {
        action_header: ta.header,
        chaincode_proposal_payload: cap.chaincode_proposal_payload,
        proposal_response_payload: endorsed.proposal_response_payload,
        endorsements,
        chaincode_name,
        chaincode_version,
        results,
        event,
        response: cc_action.response.map(response_from_fabric),
        proposal_hash_matches,
    })
}
