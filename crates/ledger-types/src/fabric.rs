//! Fabric's transaction formats (issue 14, `docs/fabric-migration.md` step 4): the twin of [`crate::tx`]
//! built on [`fabric_protos`] messages and Fabric's hashing rules ([`fabric_protos::hash`]). Nothing in the
//! ledger uses it yet; the peer, orderer and SDK switch to it with the data-dir format change (step 5).
//!
//! ```text
//!  client (as @hyperledger/fabric-gateway)     endorsing peer                      committing peer
//!  ---------------------------------------     --------------                      ---------------
//!  FabricProposalBuilder::sign ─► SignedProposal ─► unpack_proposal (fabric_protos::tx)
//!                                               ─► response_payload + endorse ─► ProposalResponse
//!  assemble (same payload everywhere) ─► prepared Envelope ─► sign_envelope ─► … ─► FabricDecodedTx::decode
//! ```
//!
//! The [`Signer`]'s `serialized_identity()` must be an encoded `msp.SerializedIdentity{mspid, id_bytes = PEM
//! certificate}` ([`serialize_identity`]), as fabric-gateway sends it. Like [`crate::tx`], this module signs
//! only through [`Signer`] and verifies nothing: it gives the validator the exact bytes that are signed and
//! hashed, as received (never re-encoded).

use crate::proto::{
    ContractEvent, KvRead, KvWrite, NsRwSet, RangeQueryInfo, Response, Timestamp, TxRwSet, Version,
};
use crate::tx::Signer;
use crate::{ChannelId, TxId, TxValidationCode};
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

/// Why a Fabric proposal, response or transaction cannot be built or taken apart.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FabricTxError {
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

fn decode<M: Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M, FabricTxError> {
    M::decode(bytes).map_err(|source| FabricTxError::Decode { what, source })
}

/// Encodes a Fabric identity (`msp.SerializedIdentity{mspid, id_bytes}`); `pem` is the PEM certificate, as
/// in fabric-gateway's `Identity.credentials`.
pub fn serialize_identity(msp_id: &str, pem: &[u8]) -> Vec<u8> {
    msp::SerializedIdentity { mspid: msp_id.to_owned(), id_bytes: pem.to_vec() }.encode_to_vec()
}

/// Decodes an encoded `msp.SerializedIdentity`.
pub fn deserialize_identity(bytes: &[u8]) -> Result<msp::SerializedIdentity, FabricTxError> {
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
pub struct FabricProposalBuilder {
    channel: ChannelId,
    chaincode: String,
    transaction: String,
    args: Vec<Vec<u8>>,
    transient: BTreeMap<String, Vec<u8>>,
}

impl FabricProposalBuilder {
    /// A proposal to call transaction `transaction` of chaincode `chaincode` on `channel`.
    pub fn new(channel: ChannelId, chaincode: impl Into<String>, transaction: impl Into<String>) -> Self {
        FabricProposalBuilder {
            channel,
            chaincode: chaincode.into(),
            transaction: transaction.into(),
            args: Vec::new(),
            transient: BTreeMap::new(),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<Vec<u8>>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args(mut self, args: impl IntoIterator<Item = Vec<u8>>) -> Self {
        self.args.extend(args);
        self
    }

    /// Adds an entry of transient data (sent to the endorsers, never written to the ledger).
    pub fn transient(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
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
            extension: extension.encode_to_vec(),
            tls_cert_hash: Vec::new(),
        };
        let signature_header = SignatureHeader { creator, nonce };
        let header = common::Header {
            channel_header: channel_header.encode_to_vec(),
            signature_header: signature_header.encode_to_vec(),
        };
        let mut args = Vec::with_capacity(1 + self.args.len());
        args.push(self.transaction.into_bytes());
        args.extend(self.args);
        let spec = ChaincodeSpec {
            r#type: protos::chaincode_spec::Type::Node as i32,
            chaincode_id: Some(chaincode_id),
            input: Some(ChaincodeInput { args, ..Default::default() }),
            ..Default::default()
        };
        let invocation = ChaincodeInvocationSpec { chaincode_spec: Some(spec) };
        let payload =
            ChaincodeProposalPayload { input: invocation.encode_to_vec(), transient_map: self.transient };
        let proposal = Proposal {
            header: header.encode_to_vec(),
            payload: payload.encode_to_vec(),
            extension: Vec::new(),
        };
        (proposal, tx_id)
    }

    /// Builds the proposal for the signer's own identity and signs its bytes.
    pub fn sign(self, signer: &dyn Signer, nonce: Vec<u8>, timestamp: Timestamp) -> (SignedProposal, TxId) {
        let (proposal, tx_id) = self.proposal(signer.serialized_identity().to_vec(), nonce, timestamp);
        let proposal_bytes = proposal.encode_to_vec();
        let signature = signer.sign(&proposal_bytes);
        (SignedProposal { proposal_bytes, signature }, tx_id)
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
                        value: w.value.clone(),
                    })
                    .collect(),
                metadata_writes: Vec::new(),
            };
            rwset::NsReadWriteSet {
                namespace: ns.namespace.clone(),
                rwset: kv.encode_to_vec(),
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
pub fn rwset_from_fabric(rwset: &rwset::TxReadWriteSet) -> Result<TxRwSet, FabricTxError> {
    if rwset.data_model != rwset::tx_read_write_set::DataModel::Kv as i32 {
        return Err(FabricTxError::DataModel(rwset.data_model));
    }
    let mut ns_rwsets = Vec::with_capacity(rwset.ns_rwset.len());
    for ns in &rwset.ns_rwset {
        let unsupported = |what| FabricTxError::Unsupported { namespace: ns.namespace.clone(), what };
        if !ns.collection_hashed_rwset.is_empty() {
            return Err(unsupported("private data collections"));
        }
        let kv: kvrwset::KvrwSet = decode("KVRWSet", &ns.rwset)?;
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
                .map(|w| KvWrite { key: w.key, is_delete: w.is_delete, value: w.value })
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
        payload: event.payload.clone(),
    }
}

/// Fabric's `ChaincodeEvent` as ipechain's contract event.
pub fn event_from_fabric(event: ChaincodeEvent) -> ContractEvent {
    ContractEvent {
        contract: event.chaincode_id,
        tx_id: event.tx_id,
        event_name: event.event_name,
        payload: event.payload,
    }
}

fn response_to_fabric(r: &Response) -> protos::Response {
    protos::Response { status: r.status, message: r.message.clone(), payload: r.payload.clone() }
}

fn response_from_fabric(r: protos::Response) -> Response {
    Response { status: r.status, message: r.message, payload: r.payload }
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
) -> Result<ProposalResponsePayload, FabricTxError> {
    let proposal_hash = hash::proposal_hash(&proposal.proposal)?;
    let action = ChaincodeAction {
        results: rwset_to_fabric(results).encode_to_vec(),
        events: event.map(|e| event_to_fabric(e).encode_to_vec()).unwrap_or_default(),
        response: Some(response_to_fabric(response)),
        chaincode_id: Some(ChaincodeId {
            name: proposal.chaincode_name().to_owned(),
            version: chaincode_version.to_owned(),
            ..Default::default()
        }),
    };
    Ok(ProposalResponsePayload { proposal_hash: proposal_hash.to_vec(), extension: action.encode_to_vec() })
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
        payload,
        endorsement: Some(Endorsement { endorser, signature }),
        interest: None,
    }
}

/// The prepared (unsigned) transaction for a signed proposal and its endorsements, as Fabric's gateway
/// returns it from `Endorse` ([`fabric_protos::tx::prepare_transaction`]). Every response must have a status
/// in 200..400 (Fabric's gateway), an endorsement, and exactly the first response's payload bytes.
pub fn assemble(
    proposal: &SignedProposal,
    responses: &[ProposalResponse],
) -> Result<common::Envelope, FabricTxError> {
    let unpacked = fabric_protos::tx::unpack_proposal(proposal)?;
    let first = responses.first().ok_or(FabricTxError::NoEndorsements)?;
    let mut endorsements = Vec::with_capacity(responses.len());
    for (index, r) in responses.iter().enumerate() {
        let status = r.response.as_ref().map_or(0, |s| s.status);
        if !(200..400).contains(&status) {
            let message = r.response.as_ref().map(|s| s.message.clone()).unwrap_or_default();
            return Err(FabricTxError::Refused { index, status, message });
        }
        if r.payload != first.payload {
            return Err(FabricTxError::Mismatch { index });
        }
        endorsements.push(r.endorsement.clone().ok_or(FabricTxError::Missing("endorsement"))?);
    }
    let action = ChaincodeEndorsedAction { proposal_response_payload: first.payload.clone(), endorsements };
    Ok(fabric_protos::tx::prepare_transaction(&unpacked.header, &unpacked.payload, action))
}

/// Signs a prepared transaction as its creator: the signature goes over `Envelope.payload` as it is.
pub fn sign_envelope(signer: &dyn Signer, prepared: &common::Envelope) -> common::Envelope {
    common::Envelope { payload: prepared.payload.clone(), signature: signer.sign(&prepared.payload) }
}

/// One endorsement of a decoded transaction, with the exact bytes its signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FabricEndorsement {
    /// The endorser's encoded `msp.SerializedIdentity`, as received.
    pub endorser: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
    /// `proposal_response_payload` ‖ `endorser`, both as received.
    pub signed_bytes: Vec<u8>,
}

/// The endorsed chaincode action of a decoded endorser transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct FabricAction {
    /// `TransactionAction.header`: the proposal's encoded `SignatureHeader`, as received.
    pub action_header: Vec<u8>,
    /// `ChaincodeActionPayload.chaincode_proposal_payload` (transient-free), as received.
    pub chaincode_proposal_payload: Vec<u8>,
    /// `ChaincodeEndorsedAction.proposal_response_payload`: the bytes every endorser signed, as received.
    pub proposal_response_payload: Vec<u8>,
    /// The endorsements.
    pub endorsements: Vec<FabricEndorsement>,
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

impl FabricAction {
    /// Decodes the invocation (`ChaincodeInvocationSpec`) from the chaincode proposal payload; the
    /// validator does not need it, so [`FabricDecodedTx::decode`] leaves it encoded.
    pub fn invocation(&self) -> Result<ChaincodeInvocationSpec, FabricTxError> {
        let cpp: ChaincodeProposalPayload =
            decode("ChaincodeProposalPayload", &self.chaincode_proposal_payload)?;
        decode("ChaincodeInvocationSpec", &cpp.input)
    }
}

/// A Fabric `common.Envelope` taken apart into what ipechain's validator needs (decoding only; no
/// signature verified). The twin of [`crate::tx::DecodedTx`].
#[derive(Debug, Clone, PartialEq)]
pub struct FabricDecodedTx {
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
    pub action: Option<FabricAction>,
}

impl FabricDecodedTx {
    /// Decodes an encoded `common.Envelope` and, for an `ENDORSER_TRANSACTION`, its single action.
    pub fn decode(envelope_bytes: &[u8]) -> Result<FabricDecodedTx, FabricTxError> {
        let envelope: common::Envelope = decode("Envelope", envelope_bytes)?;
        if envelope.payload.is_empty() {
            return Err(FabricTxError::Missing("envelope payload"));
        }
        let payload: common::Payload = decode("Payload", &envelope.payload)?;
        let header = payload.header.ok_or(FabricTxError::Missing("payload header"))?;
        let channel_header: ChannelHeader = decode("ChannelHeader", &header.channel_header)?;
        let signature_header: SignatureHeader = decode("SignatureHeader", &header.signature_header)?;
        let action = if channel_header.r#type == HeaderType::EndorserTransaction as i32 {
            Some(decode_action(&header.channel_header, &payload.data)?)
        } else {
            None
        };
        Ok(FabricDecodedTx { envelope, header, channel_header, signature_header, action })
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

fn decode_action(channel_header: &[u8], data: &[u8]) -> Result<FabricAction, FabricTxError> {
    let tx: Transaction = decode("Transaction", data)?;
    if tx.actions.len() != 1 {
        return Err(FabricTxError::ActionCount(tx.actions.len()));
    }
    let Some(ta) = tx.actions.into_iter().next() else {
        return Err(FabricTxError::ActionCount(0));
    };
    let cap: ChaincodeActionPayload = decode("ChaincodeActionPayload", &ta.payload)?;
    let endorsed = cap.action.ok_or(FabricTxError::Missing("chaincode endorsed action"))?;
    let prp: ProposalResponsePayload =
        decode("ProposalResponsePayload", &endorsed.proposal_response_payload)?;
    let cc_action: ChaincodeAction = decode("ChaincodeAction", &prp.extension)?;
    let results: rwset::TxReadWriteSet = decode("TxReadWriteSet", &cc_action.results)?;
    let results = rwset_from_fabric(&results)?;
    let event = if cc_action.events.is_empty() {
        None
    } else {
        Some(event_from_fabric(decode("ChaincodeEvent", &cc_action.events)?))
    };
    // Fabric's committer (GetProposalHash2): the payload's channel header with the action's signature
    // header, over the chaincode proposal payload as carried.
    let hash_header =
        common::Header { channel_header: channel_header.to_vec(), signature_header: ta.header.clone() };
    let proposal_hash_matches = hash::proposal_hash_for_tx(&hash_header, &cap.chaincode_proposal_payload)
        .is_ok_and(|h| h.as_slice() == prp.proposal_hash.as_slice());
    let endorsements = endorsed
        .endorsements
        .into_iter()
        .map(|e| FabricEndorsement {
            signed_bytes: hash::endorsement_signed_bytes(&endorsed.proposal_response_payload, &e.endorser),
            endorser: e.endorser,
            signature: e.signature,
        })
        .collect();
    let (chaincode_name, chaincode_version) =
        cc_action.chaincode_id.map(|c| (c.name, c.version)).unwrap_or_default();
    Ok(FabricAction {
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

/// ipechain's validation code as Fabric's `protos.TxValidationCode` (`docs/fabric-migration.md` §1). 0–14,
/// 20, 254 and 255 are the same numbers; `BadRwset` (21) is `BAD_RWSET` (22), `IllegalWriteset` (25)
/// `ILLEGAL_WRITESET` (23), `InvalidContract` (23) `INVALID_CHAINCODE` (25). Two have no Fabric code and map
/// to the code Fabric reports in their place: `BadCreator` → `BAD_CREATOR_SIGNATURE` (4), and `ContractError`
/// → `INVALID_OTHER_REASON` (255; provisional until step 5 decides it from Fabric's validator). These two
/// therefore do not come back from [`code_from_fabric`].
pub fn code_to_fabric(code: TxValidationCode) -> protos::TxValidationCode {
    use TxValidationCode as I;
    use protos::TxValidationCode as F;
    match code {
        I::Valid => F::Valid,
        I::NilEnvelope => F::NilEnvelope,
        I::BadPayload => F::BadPayload,
        I::BadCommonHeader => F::BadCommonHeader,
        I::BadCreatorSignature | I::BadCreator => F::BadCreatorSignature,
        I::InvalidEndorserTransaction => F::InvalidEndorserTransaction,
        I::InvalidConfigTransaction => F::InvalidConfigTransaction,
        I::UnsupportedTxPayload => F::UnsupportedTxPayload,
        I::BadProposalTxId => F::BadProposalTxid,
        I::DuplicateTxId => F::DuplicateTxid,
        I::EndorsementPolicyFailure => F::EndorsementPolicyFailure,
        I::MvccReadConflict => F::MvccReadConflict,
        I::PhantomReadConflict => F::PhantomReadConflict,
        I::UnknownTxType => F::UnknownTxType,
        I::TargetChainNotFound => F::TargetChainNotFound,
        I::BadChannelHeader => F::BadChannelHeader,
        I::BadRwset => F::BadRwset,
        I::InvalidContract => F::InvalidChaincode,
        I::IllegalWriteset => F::IllegalWriteset,
        I::NotValidated => F::NotValidated,
        I::ContractError | I::InvalidOtherReason => F::InvalidOtherReason,
    }
}

/// A Fabric `protos.TxValidationCode` number as ipechain's code; None for Fabric codes ipechain never
/// assigns (15–19 `MARSHAL_TX_ERROR` … `BAD_HEADER_EXTENSION`, 21 `BAD_RESPONSE_PAYLOAD`, 24
/// `INVALID_WRITESET`) and for numbers that are no code at all.
pub fn code_from_fabric(code: i32) -> Option<TxValidationCode> {
    use TxValidationCode as I;
    use protos::TxValidationCode as F;
    Some(match F::try_from(code).ok()? {
        F::Valid => I::Valid,
        F::NilEnvelope => I::NilEnvelope,
        F::BadPayload => I::BadPayload,
        F::BadCommonHeader => I::BadCommonHeader,
        F::BadCreatorSignature => I::BadCreatorSignature,
        F::InvalidEndorserTransaction => I::InvalidEndorserTransaction,
        F::InvalidConfigTransaction => I::InvalidConfigTransaction,
        F::UnsupportedTxPayload => I::UnsupportedTxPayload,
        F::BadProposalTxid => I::BadProposalTxId,
        F::DuplicateTxid => I::DuplicateTxId,
        F::EndorsementPolicyFailure => I::EndorsementPolicyFailure,
        F::MvccReadConflict => I::MvccReadConflict,
        F::PhantomReadConflict => I::PhantomReadConflict,
        F::UnknownTxType => I::UnknownTxType,
        F::TargetChainNotFound => I::TargetChainNotFound,
        F::BadChannelHeader => I::BadChannelHeader,
        F::BadRwset => I::BadRwset,
        F::IllegalWriteset => I::IllegalWriteset,
        F::InvalidChaincode => I::InvalidContract,
        F::NotValidated => I::NotValidated,
        F::InvalidOtherReason => I::InvalidOtherReason,
        F::MarshalTxError
        | F::NilTxaction
        | F::ExpiredChaincode
        | F::ChaincodeVersionConflict
        | F::BadHeaderExtension
        | F::BadResponsePayload
        | F::InvalidWriteset => return None,
    })
}
