//! The same representative messages built here and by `fabric_messages.js` with Fabric's JavaScript
//! classes, independently, from the same values. Fabric's bytes must decode here to exactly our messages
//! (every field, every nested layer) and be byte-identical to our encoding; our bytes must decode in
//! Fabric's JavaScript to exactly its messages. Hashes computed there with node's crypto must equal ours.

use std::collections::{BTreeMap, HashMap};

use fabric_protos::common::{
    Block, BlockData, BlockHeader, BlockMetadata, BlockMetadataIndex, ChannelHeader, Envelope, Header,
    HeaderType, LastConfig, Metadata, MetadataSignature, OrdererBlockMetadata, Payload, SignatureHeader,
};
use fabric_protos::error_details::{self, ERROR_DETAIL_TYPE_URL};
use fabric_protos::gateway::{ChaincodeEventsRequest, CommitStatusResponse, EndorseRequest, ErrorDetail};
use fabric_protos::google::rpc::Status as RpcStatus;
use fabric_protos::hash;
use fabric_protos::kvrwset::{
    KvMetadataEntry, KvMetadataWrite, KvRead, KvWrite, KvrwSet, QueryReads, RangeQueryInfo, Version,
    range_query_info::ReadsInfo,
};
use fabric_protos::msp::SerializedIdentity;
use fabric_protos::orderer::{
    SeekInfo, SeekNewest, SeekNextCommit, SeekPosition, SeekSpecified, seek_info, seek_position,
};
use fabric_protos::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeCall, ChaincodeEndorsedAction, ChaincodeEvent,
    ChaincodeHeaderExtension, ChaincodeId, ChaincodeInput, ChaincodeInterest, ChaincodeInvocationSpec,
    ChaincodeMessage, ChaincodeProposalPayload, ChaincodeSpec, DeliverResponse, Endorsement, FilteredBlock,
    FilteredChaincodeAction, FilteredTransaction, FilteredTransactionActions, ProcessedTransaction, Proposal,
    ProposalResponse, ProposalResponsePayload, PutState, Response, SignedProposal, Transaction,
    TransactionAction, TxValidationCode, chaincode_message, chaincode_spec, deliver_response,
    filtered_transaction,
};
use fabric_protos::rwset::{NsReadWriteSet, TxReadWriteSet, tx_read_write_set};
use prost::Message;

use crate::node;

const CHANNEL: &str = "mychannel";
const CHAINCODE: &str = "ipe";
const MSP_ID: &str = "Org1MSP";
const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBfakeCertificateForTests\n-----END CERTIFICATE-----\n";
const NONCE: &[u8] = b"0123456789abcdef01234567";

fn timestamp() -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: 1_700_000_000, nanos: 123_456_789 }
}

fn creator() -> Vec<u8> {
    SerializedIdentity { mspid: MSP_ID.into(), id_bytes: PEM.as_bytes().to_vec().into() }.encode_to_vec()
}

fn tx_id() -> String {
    hash::tx_id(NONCE, &creator())
}

fn chaincode_id() -> ChaincodeId {
    ChaincodeId { name: CHAINCODE.into(), version: "1.0".into(), path: String::new() }
}

fn channel_header() -> Vec<u8> {
    let ext = ChaincodeHeaderExtension {
        chaincode_id: Some(ChaincodeId { name: CHAINCODE.into(), ..Default::default() }),
    };
    ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        version: 1,
        timestamp: Some(timestamp()),
        channel_id: CHANNEL.into(),
        tx_id: tx_id(),
        epoch: 7,
        extension: ext.encode_to_vec().into(),
        tls_cert_hash: b"tls cert hash".to_vec().into(),
    }
    .encode_to_vec()
}

fn signature_header() -> Vec<u8> {
    SignatureHeader { creator: creator().into(), nonce: NONCE.to_vec().into() }.encode_to_vec()
}

fn header() -> Header {
    Header { channel_header: channel_header().into(), signature_header: signature_header().into() }
}

fn invocation_spec() -> Vec<u8> {
    ChaincodeInvocationSpec {
        chaincode_spec: Some(ChaincodeSpec {
            r#type: chaincode_spec::Type::Node as i32,
            chaincode_id: Some(chaincode_id()),
            input: Some(ChaincodeInput {
                args: vec![
                    b"register".to_vec().into(),
                    b"dev-1".to_vec().into(),
                    br#"{"objects":[3303]}"#.to_vec().into(),
                ],
                decorations: BTreeMap::from([("decoration".to_owned(), b"value".to_vec().into())]),
                is_init: false,
            }),
            timeout: 30,
        }),
    }
    .encode_to_vec()
}

fn proposal_payload(with_transient: bool) -> Vec<u8> {
    let mut transient_map = BTreeMap::new();
    if with_transient {
        transient_map.insert("secret".to_owned(), b"s3cr3t".to_vec().into());
    }
    ChaincodeProposalPayload { input: invocation_spec().into(), transient_map }.encode_to_vec()
}

fn proposal() -> Proposal {
    Proposal {
        header: header().encode_to_vec().into(),
        payload: proposal_payload(true).into(),
        extension: Vec::new().into(),
    }
}

fn signed_proposal() -> SignedProposal {
    SignedProposal {
        proposal_bytes: proposal().encode_to_vec().into(),
        signature: b"proposal signature".to_vec().into(),
    }
}

fn chaincode_event() -> ChaincodeEvent {
    ChaincodeEvent {
        chaincode_id: CHAINCODE.into(),
        tx_id: tx_id(),
        event_name: "request".into(),
        payload: br#"{"id":"r-1"}"#.to_vec().into(),
    }
}

fn kv_read(key: &str, version: Option<(u64, u64)>) -> KvRead {
    KvRead { key: key.into(), version: version.map(|(block_num, tx_num)| Version { block_num, tx_num }) }
}

fn kv_rwset() -> KvrwSet {
    KvrwSet {
        reads: vec![kv_read("dev-1", Some((3, 1))), kv_read("missing", None)],
        range_queries_info: vec![RangeQueryInfo {
            start_key: "dev-".into(),
            end_key: "dev.".into(),
            itr_exhausted: true,
            reads_info: Some(ReadsInfo::RawReads(QueryReads {
                kv_reads: vec![kv_read("dev-1", Some((3, 0))), kv_read("dev-2", Some((4, 2)))],
            })),
        }],
        writes: vec![
            KvWrite {
                key: "dev-1".into(),
                is_delete: false,
                value: br#"{"state":"registered"}"#.to_vec().into(),
            },
            KvWrite { key: "old".into(), is_delete: true, value: Vec::new().into() },
        ],
        metadata_writes: vec![KvMetadataWrite {
            key: "dev-1".into(),
            entries: vec![KvMetadataEntry {
                name: "VALIDATION_PARAMETER".into(),
                value: b"policy bytes".to_vec().into(),
            }],
        }],
    }
}

fn response() -> Response {
    Response { status: 200, message: "OK".into(), payload: br#"{"ok":true}"#.to_vec().into() }
}

fn proposal_response_payload() -> Vec<u8> {
    let results = TxReadWriteSet {
        data_model: tx_read_write_set::DataModel::Kv as i32,
        ns_rwset: vec![NsReadWriteSet {
            namespace: CHAINCODE.into(),
            rwset: kv_rwset().encode_to_vec().into(),
            collection_hashed_rwset: Vec::new(),
        }],
    };
    let action = ChaincodeAction {
        results: results.encode_to_vec().into(),
        events: chaincode_event().encode_to_vec().into(),
        response: Some(response()),
        chaincode_id: Some(chaincode_id()),
    };
    ProposalResponsePayload {
        proposal_hash: hash::proposal_hash(&proposal()).expect("our proposal hashes").to_vec().into(),
        extension: action.encode_to_vec().into(),
    }
    .encode_to_vec()
}

fn endorsement(who: &str) -> Endorsement {
    let id = SerializedIdentity {
        mspid: who.into(),
        id_bytes: format!("-----BEGIN CERTIFICATE-----\n{who} peer\n-----END CERTIFICATE-----\n")
            .into_bytes()
            .into(),
    };
    Endorsement {
        endorser: id.encode_to_vec().into(),
        signature: format!("{who} signature").into_bytes().into(),
    }
}

fn proposal_response() -> ProposalResponse {
    ProposalResponse {
        version: 1,
        timestamp: Some(timestamp()),
        response: Some(response()),
        payload: proposal_response_payload().into(),
        endorsement: Some(endorsement("Org1MSP")),
        interest: Some(ChaincodeInterest {
            chaincodes: vec![ChaincodeCall {
                name: CHAINCODE.into(),
                no_private_reads: true,
                ..Default::default()
            }],
        }),
    }
}

fn transaction_envelope() -> Envelope {
    let cap = ChaincodeActionPayload {
        chaincode_proposal_payload: hash::proposal_payload_for_tx(&proposal_payload(true))
            .expect("our payload decodes")
            .into(),
        action: Some(ChaincodeEndorsedAction {
            proposal_response_payload: proposal_response_payload().into(),
            endorsements: vec![endorsement("Org1MSP"), endorsement("Org2MSP")],
        }),
    };
    let tx = Transaction {
        actions: vec![TransactionAction {
            header: signature_header().into(),
            payload: cap.encode_to_vec().into(),
        }],
    };
    let payload = Payload { header: Some(header()), data: tx.encode_to_vec().into() };
    Envelope { payload: payload.encode_to_vec().into(), signature: b"envelope signature".to_vec().into() }
}

fn endorse_request() -> EndorseRequest {
    EndorseRequest {
        transaction_id: tx_id(),
        channel_id: CHANNEL.into(),
        proposed_transaction: Some(signed_proposal()),
        endorsing_organizations: vec!["Org1MSP".into(), "Org2MSP".into()],
    }
}

fn block_data() -> BlockData {
    BlockData { data: vec![transaction_envelope().encode_to_vec().into(), b"second entry".to_vec().into()] }
}

fn block() -> Block {
    let data = block_data();
    let obm = OrdererBlockMetadata {
        last_config: Some(LastConfig { index: 0 }),
        consenter_metadata: b"raft term 2 index 9".to_vec().into(),
    };
    let sh = SignatureHeader {
        creator: b"orderer identity".to_vec().into(),
        nonce: b"orderer nonce".to_vec().into(),
    };
    let md = Metadata {
        value: obm.encode_to_vec().into(),
        signatures: vec![MetadataSignature {
            signature_header: sh.encode_to_vec().into(),
            signature: b"orderer signature".to_vec().into(),
            identifier_header: Vec::new().into(),
        }],
    };
    let codes = vec![TxValidationCode::Valid as u8, TxValidationCode::MvccReadConflict as u8];
    Block {
        header: Some(BlockHeader {
            number: 5,
            previous_hash: vec![0xab; 32].into(),
            data_hash: hash::block_data_hash(&data).to_vec().into(),
        }),
        data: Some(data),
        metadata: Some(BlockMetadata {
            metadata: vec![
                md.encode_to_vec().into(),
                Default::default(),
                codes.into(),
                Default::default(),
                b"commit hash".to_vec().into(),
            ],
        }),
    }
}

fn seek_position(kind: seek_position::Type) -> SeekPosition {
    SeekPosition { r#type: Some(kind) }
}

fn seek_info() -> SeekInfo {
    SeekInfo {
        start: Some(seek_position(seek_position::Type::Specified(SeekSpecified { number: 5 }))),
        stop: Some(seek_position(seek_position::Type::Newest(SeekNewest {}))),
        behavior: seek_info::SeekBehavior::FailIfNotReady as i32,
        error_response: seek_info::SeekErrorResponse::BestEffort as i32,
        content_type: seek_info::SeekContentType::HeaderWithSig as i32,
    }
}

fn chaincode_events_request() -> ChaincodeEventsRequest {
    ChaincodeEventsRequest {
        channel_id: CHANNEL.into(),
        chaincode_id: CHAINCODE.into(),
        identity: creator().into(),
        start_position: Some(seek_position(seek_position::Type::NextCommit(SeekNextCommit {}))),
        after_transaction_id: tx_id(),
    }
}

fn commit_status_response() -> CommitStatusResponse {
    CommitStatusResponse { result: TxValidationCode::MvccReadConflict as i32, block_number: 12 }
}

fn error_detail() -> ErrorDetail {
    ErrorDetail {
        address: "peer0.org2.example.com:7051".into(),
        msp_id: "Org2MSP".into(),
        message: "chaincode response 500, boom".into(),
    }
}

fn filtered_deliver_response() -> DeliverResponse {
    DeliverResponse {
        r#type: Some(deliver_response::Type::FilteredBlock(FilteredBlock {
            channel_id: CHANNEL.into(),
            number: 5,
            filtered_transactions: vec![FilteredTransaction {
                txid: tx_id(),
                r#type: HeaderType::EndorserTransaction as i32,
                tx_validation_code: TxValidationCode::EndorsementPolicyFailure as i32,
                data: Some(filtered_transaction::Data::TransactionActions(FilteredTransactionActions {
                    chaincode_actions: vec![FilteredChaincodeAction {
                        chaincode_event: Some(chaincode_event()),
                    }],
                })),
            }],
        })),
    }
}

fn endorse_error_details() -> Vec<ErrorDetail> {
    ["Org1MSP", "Org2MSP"]
        .iter()
        .enumerate()
        .map(|(i, msp)| ErrorDetail {
            address: format!("peer0.org{}.example.com:7051", i + 1),
            msp_id: (*msp).into(),
            message: format!("chaincode response 500, asset {i} does not exist"),
        })
        .collect()
}

/// The `grpc-status-details-bin` trailer of a failed Endorse, made by our helper.
fn rpc_status() -> tonic::Status {
    error_details::status_with_details(
        tonic::Code::Aborted,
        "failed to endorse transaction, see attached details for more info",
        &endorse_error_details(),
    )
}

fn chaincode_message() -> ChaincodeMessage {
    let put = PutState {
        key: "dev-1".into(),
        value: br#"{"state":"registered"}"#.to_vec().into(),
        collection: String::new(),
    };
    ChaincodeMessage {
        r#type: chaincode_message::Type::PutState as i32,
        timestamp: Some(timestamp()),
        payload: put.encode_to_vec().into(),
        txid: tx_id(),
        proposal: Some(signed_proposal()),
        chaincode_event: Some(chaincode_event()),
        channel_id: CHANNEL.into(),
    }
}

fn processed_transaction() -> ProcessedTransaction {
    ProcessedTransaction {
        transaction_envelope: Some(transaction_envelope()),
        validation_code: TxValidationCode::PhantomReadConflict as i32,
    }
}

/// Our messages, encoded, under the names the node script uses.
fn ours() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("signed_proposal", signed_proposal().encode_to_vec()),
        ("transaction_envelope", transaction_envelope().encode_to_vec()),
        ("proposal_response", proposal_response().encode_to_vec()),
        ("endorse_request", endorse_request().encode_to_vec()),
        ("block", block().encode_to_vec()),
        ("chaincode_event", chaincode_event().encode_to_vec()),
        ("kv_rwset", kv_rwset().encode_to_vec()),
        ("seek_info", seek_info().encode_to_vec()),
        ("chaincode_events_request", chaincode_events_request().encode_to_vec()),
        ("commit_status_response", commit_status_response().encode_to_vec()),
        ("error_detail", error_detail().encode_to_vec()),
        ("filtered_deliver_response", filtered_deliver_response().encode_to_vec()),
        ("rpc_status", rpc_status().details().to_vec()),
        ("chaincode_message", chaincode_message().encode_to_vec()),
        ("processed_transaction", processed_transaction().encode_to_vec()),
    ]
}

fn theirs() -> HashMap<String, Vec<u8>> {
    node::encode().into_iter().collect()
}

fn get<'a>(theirs: &'a HashMap<String, Vec<u8>>, name: &str) -> &'a [u8] {
    theirs.get(name).unwrap_or_else(|| panic!("node printed no {name}"))
}

fn decode<M: Message + Default>(name: &str, bytes: &[u8]) -> M {
    M::decode(bytes).unwrap_or_else(|e| panic!("{name}: Fabric's encoding does not decode here: {e}"))
}

/// Decodes Fabric's bytes, checks they equal our message (every field) and our encoding (every byte).
fn check<M: Message + Default + PartialEq + std::fmt::Debug>(
    theirs: &HashMap<String, Vec<u8>>,
    name: &str,
    ours: &M,
) -> M {
    let bytes = get(theirs, name);
    let decoded: M = decode(name, bytes);
    assert_eq!(&decoded, ours, "{name}: Fabric's message decodes to other field values");
    assert_eq!(hex::encode(bytes), hex::encode(ours.encode_to_vec()), "{name}: bytes differ");
    decoded
}

#[test]
fn fabric_signed_proposal_decodes_layer_by_layer() {
    let theirs = theirs();
    let sp = check(&theirs, "signed_proposal", &signed_proposal());
    assert_eq!(&sp.signature[..], b"proposal signature");
    let p: Proposal = decode("proposal", &sp.proposal_bytes);
    let h: Header = decode("header", &p.header);
    let ch: ChannelHeader = decode("channel header", &h.channel_header);
    assert_eq!(ch.r#type, HeaderType::EndorserTransaction as i32);
    assert_eq!(ch.version, 1);
    assert_eq!(ch.timestamp, Some(timestamp()));
    assert_eq!(ch.channel_id, CHANNEL);
    assert_eq!(ch.epoch, 7);
    assert_eq!(&ch.tls_cert_hash[..], b"tls cert hash");
    let ext: ChaincodeHeaderExtension = decode("header extension", &ch.extension);
    assert_eq!(ext.chaincode_id.map(|c| c.name), Some(CHAINCODE.to_owned()));
    let sh: SignatureHeader = decode("signature header", &h.signature_header);
    assert_eq!(sh.nonce, NONCE);
    let id: SerializedIdentity = decode("creator", &sh.creator);
    assert_eq!((id.mspid.as_str(), id.id_bytes.as_ref()), (MSP_ID, PEM.as_bytes()));
    // The tx id node computed with its own SHA-256 is the one our rule gives over the bytes as sent.
    assert_eq!(hash::check_tx_id(&ch.tx_id, &sh.nonce, &sh.creator), Ok(()));
    assert_eq!(get(&theirs, "hash_tx_id"), ch.tx_id.as_bytes());

    let cpp: ChaincodeProposalPayload = decode("chaincode proposal payload", &p.payload);
    assert_eq!(cpp.transient_map, BTreeMap::from([("secret".to_owned(), b"s3cr3t".to_vec().into())]));
    let cis: ChaincodeInvocationSpec = decode("invocation spec", &cpp.input);
    let spec = cis.chaincode_spec.expect("chaincode spec");
    assert_eq!(spec.r#type, chaincode_spec::Type::Node as i32);
    assert_eq!(spec.chaincode_id, Some(chaincode_id()));
    assert_eq!(spec.timeout, 30);
    let input = spec.input.expect("input");
    assert_eq!(input.args, [b"register".as_slice(), b"dev-1", br#"{"objects":[3303]}"#]);
    assert_eq!(input.decorations, BTreeMap::from([("decoration".to_owned(), b"value".to_vec().into())]));
    assert!(!input.is_init);
    // The proposal hash node computed over Fabric's transient-free payload is ours.
    assert_eq!(hash::proposal_hash(&p).expect("hashes").as_slice(), get(&theirs, "hash_proposal"));
}

#[test]
fn fabric_transaction_envelope_decodes_layer_by_layer() {
    let theirs = theirs();
    let env = check(&theirs, "transaction_envelope", &transaction_envelope());
    assert_eq!(&env.signature[..], b"envelope signature");
    let payload: Payload = decode("payload", &env.payload);
    assert_eq!(payload.header, Some(header()));
    let tx: Transaction = decode("transaction", &payload.data);
    assert_eq!(tx.actions.len(), 1);
    assert_eq!(tx.actions[0].header, signature_header());
    let cap: ChaincodeActionPayload = decode("chaincode action payload", &tx.actions[0].payload);
    assert_eq!(cap.chaincode_proposal_payload, proposal_payload(false), "transient map left out");
    let endorsed = cap.action.expect("endorsed action");
    assert_eq!(endorsed.endorsements, [endorsement("Org1MSP"), endorsement("Org2MSP")]);
    let prp: ProposalResponsePayload =
        decode("proposal response payload", &endorsed.proposal_response_payload);
    // The committer's proposal hash (over the payload as carried) equals the endorser's.
    let h = payload.header.expect("header");
    assert_eq!(
        hash::proposal_hash_for_tx(&h, &cap.chaincode_proposal_payload).map(|d| d.to_vec()),
        Ok(prp.proposal_hash.to_vec())
    );
    let action: ChaincodeAction = decode("chaincode action", &prp.extension);
    assert_eq!(action.response, Some(response()));
    assert_eq!(action.chaincode_id, Some(chaincode_id()));
    let event: ChaincodeEvent = decode("chaincode event", &action.events);
    assert_eq!(event, chaincode_event());
}

#[test]
fn fabric_proposal_response_and_rwset_decode() {
    let theirs = theirs();
    let pr = check(&theirs, "proposal_response", &proposal_response());
    assert_eq!(pr.version, 1);
    assert_eq!(pr.timestamp, Some(timestamp()));
    assert_eq!(pr.response, Some(response()));
    assert_eq!(pr.endorsement, Some(endorsement("Org1MSP")));
    let call = &pr.interest.as_ref().expect("interest").chaincodes[0];
    assert_eq!((call.name.as_str(), call.no_private_reads, call.no_public_writes), (CHAINCODE, true, false));
    let prp: ProposalResponsePayload = decode("proposal response payload", &pr.payload);
    assert_eq!(prp.proposal_hash, get(&theirs, "hash_proposal"));
    let action: ChaincodeAction = decode("chaincode action", &prp.extension);
    let rw: TxReadWriteSet = decode("tx rwset", &action.results);
    assert_eq!(rw.data_model, tx_read_write_set::DataModel::Kv as i32);
    assert_eq!(rw.ns_rwset.len(), 1);
    assert_eq!(rw.ns_rwset[0].namespace, CHAINCODE);
    let kv: KvrwSet = decode("kv rwset", &rw.ns_rwset[0].rwset);
    assert_eq!(kv, kv_rwset());

    let kv = check(&theirs, "kv_rwset", &kv_rwset());
    assert_eq!(kv.reads[0].version, Some(Version { block_num: 3, tx_num: 1 }));
    assert_eq!(kv.reads[1].version, None, "a read of a missing key has no version");
    let range = &kv.range_queries_info[0];
    assert_eq!(
        (range.start_key.as_str(), range.end_key.as_str(), range.itr_exhausted),
        ("dev-", "dev.", true)
    );
    let Some(ReadsInfo::RawReads(raw)) = &range.reads_info else { panic!("raw reads: {range:?}") };
    assert_eq!(raw.kv_reads.len(), 2);
    assert_eq!((kv.writes[1].key.as_str(), kv.writes[1].is_delete), ("old", true));
    assert_eq!(kv.metadata_writes[0].entries[0].name, "VALIDATION_PARAMETER");

    let event = check(&theirs, "chaincode_event", &chaincode_event());
    assert_eq!(event.event_name, "request");
    assert_eq!(event.tx_id, tx_id());
}

#[test]
fn fabric_gateway_and_orderer_messages_decode() {
    let theirs = theirs();
    let req = check(&theirs, "endorse_request", &endorse_request());
    assert_eq!(req.transaction_id, tx_id());
    assert_eq!(req.channel_id, CHANNEL);
    assert_eq!(req.proposed_transaction, Some(signed_proposal()));
    assert_eq!(req.endorsing_organizations, ["Org1MSP", "Org2MSP"]);

    let seek = check(&theirs, "seek_info", &seek_info());
    assert_eq!(
        seek.start.and_then(|p| p.r#type),
        Some(seek_position::Type::Specified(SeekSpecified { number: 5 }))
    );
    assert_eq!(seek.stop.and_then(|p| p.r#type), Some(seek_position::Type::Newest(SeekNewest {})));
    assert_eq!(seek.behavior(), seek_info::SeekBehavior::FailIfNotReady);
    assert_eq!(seek.error_response(), seek_info::SeekErrorResponse::BestEffort);
    assert_eq!(seek.content_type(), seek_info::SeekContentType::HeaderWithSig);

    let events = check(&theirs, "chaincode_events_request", &chaincode_events_request());
    assert_eq!(
        events.start_position.and_then(|p| p.r#type),
        Some(seek_position::Type::NextCommit(SeekNextCommit {}))
    );
    assert_eq!(events.after_transaction_id, tx_id());
    assert_eq!(events.identity, creator());

    let status = check(&theirs, "commit_status_response", &commit_status_response());
    assert_eq!((status.result(), status.block_number), (TxValidationCode::MvccReadConflict, 12));

    let detail = check(&theirs, "error_detail", &error_detail());
    assert_eq!(detail.msp_id, "Org2MSP");

    let delivered = check(&theirs, "filtered_deliver_response", &filtered_deliver_response());
    let Some(deliver_response::Type::FilteredBlock(fb)) = delivered.r#type else {
        panic!("a filtered block")
    };
    assert_eq!((fb.channel_id.as_str(), fb.number), (CHANNEL, 5));
    let ftx = &fb.filtered_transactions[0];
    assert_eq!(ftx.tx_validation_code(), TxValidationCode::EndorsementPolicyFailure);
    assert_eq!(ftx.r#type(), HeaderType::EndorserTransaction);
}

#[test]
fn fabric_block_decodes_and_hashes_as_ours() {
    let theirs = theirs();
    let block = check(&theirs, "block", &block());
    let header = block.header.clone().expect("header");
    let data = block.data.clone().expect("data");
    assert_eq!(header.number, 5);
    assert_eq!(header.previous_hash[..], [0xab; 32]);
    // node's SHA-256 over the concatenated entries is our data hash.
    assert_eq!(hash::block_data_hash(&data).as_slice(), get(&theirs, "hash_block_data"));
    assert_eq!(header.data_hash, get(&theirs, "hash_block_data"));
    let env: Envelope = decode("first envelope", &data.data[0]);
    assert_eq!(env, transaction_envelope());
    assert_eq!(&data.data[1][..], b"second entry");

    let meta = block.metadata.clone().expect("metadata").metadata;
    assert_eq!(meta.len(), 5);
    assert_eq!(
        meta[BlockMetadataIndex::TransactionsFilter as usize][..],
        [TxValidationCode::Valid as u8, TxValidationCode::MvccReadConflict as u8]
    );
    assert_eq!(&meta[BlockMetadataIndex::CommitHash as usize][..], b"commit hash");
    let md: Metadata = decode("signatures metadata", &meta[BlockMetadataIndex::Signatures as usize]);
    let obm: OrdererBlockMetadata = decode("orderer block metadata", &md.value);
    assert_eq!(obm.last_config, Some(LastConfig { index: 0 }));
    assert_eq!(&obm.consenter_metadata[..], b"raft term 2 index 9");
    let sigs = hash::block_signatures(&block).expect("signatures");
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].signer, hash::BlockSigner::Creator(b"orderer identity".to_vec()));
    assert_eq!(sigs[0].signature, b"orderer signature");
    assert_eq!(
        sigs[0].signed_bytes,
        [md.value.as_ref(), &md.signatures[0].signature_header, &hash::block_header_bytes(&header)].concat()
    );
}

#[test]
fn fabric_javascript_decodes_our_encodings() {
    let ours = ours();
    let out = node::decode(&ours);
    for (name, _) in &ours {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("ok {name} "))),
            "node did not check {name}:\n{out}"
        );
    }
    // The nested layers (proposal, headers, payloads, actions, rwsets, metadata) were compared too.
    assert!(out.contains("ok signed_proposal (6 nested layers)"), "{out}");
    assert!(out.contains("ok transaction_envelope (7 nested layers)"), "{out}");
    assert!(out.contains("ok block (4 nested layers)"), "{out}");
    assert!(out.contains("ok rpc_status (2 nested layers)"), "{out}");
    assert!(out.contains("ok chaincode_message (1 nested layers)"), "{out}");
    assert!(out.contains("ok processed_transaction (1 nested layers)"), "{out}");
}

#[test]
fn fabric_error_details_decode_as_ours() {
    let theirs = theirs();
    let bytes = get(&theirs, "rpc_status");
    assert_eq!(hex::encode(bytes), hex::encode(rpc_status().details()), "rpc_status: bytes differ");
    let status: RpcStatus = decode("rpc_status", bytes);
    assert_eq!(status.code, tonic::Code::Aborted as i32);
    assert!(status.details.iter().all(|d| d.type_url == ERROR_DETAIL_TYPE_URL));
    let trailer = tonic::Status::with_details(tonic::Code::Aborted, &status.message, bytes.to_vec().into());
    assert_eq!(error_details::error_details(&trailer), Ok(endorse_error_details()));
}

#[test]
fn fabric_chaincode_message_and_processed_transaction_decode() {
    let theirs = theirs();
    let m = check(&theirs, "chaincode_message", &chaincode_message());
    assert_eq!(m.r#type(), chaincode_message::Type::PutState);
    assert_eq!((m.txid.as_str(), m.channel_id.as_str()), (tx_id().as_str(), CHANNEL));
    let put: PutState = decode("put state", &m.payload);
    assert_eq!((put.key.as_str(), put.value.as_ref()), ("dev-1", br#"{"state":"registered"}"#.as_slice()));
    assert_eq!(m.proposal, Some(signed_proposal()));
    assert_eq!(m.chaincode_event, Some(chaincode_event()));

    let p = check(&theirs, "processed_transaction", &processed_transaction());
    assert_eq!(p.validation_code, TxValidationCode::PhantomReadConflict as i32);
    assert_eq!(p.transaction_envelope, Some(transaction_envelope()));
}

#[test]
fn prepared_transaction_from_fabrics_proposal_is_fabrics_envelope() {
    let theirs = theirs();
    let sp: SignedProposal = decode("signed_proposal", get(&theirs, "signed_proposal"));
    let unpacked = fabric_protos::tx::unpack_proposal(&sp).expect("Fabric's proposal unpacks");
    assert_eq!((unpacked.channel_id(), unpacked.chaincode_name()), (CHANNEL, CHAINCODE));
    assert_eq!(unpacked.channel_header.tx_id, tx_id());
    let action = ChaincodeEndorsedAction {
        proposal_response_payload: proposal_response_payload().into(),
        endorsements: vec![endorsement("Org1MSP"), endorsement("Org2MSP")],
    };
    let prepared = fabric_protos::tx::prepare_transaction(&unpacked.header, &unpacked.payload, action);
    let env: Envelope = decode("transaction_envelope", get(&theirs, "transaction_envelope"));
    assert_eq!(hex::encode(prepared.payload), hex::encode(env.payload), "the payload the client signs");
}
