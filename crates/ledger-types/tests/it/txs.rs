//! `ledger_types::tx`: Fabric proposals, endorsements and transactions built and taken apart.

use fabric_protos::common::{self, ChannelHeader, HeaderType, SignatureHeader};
use fabric_protos::protos::{
    self, ChaincodeActionPayload, ChaincodeHeaderExtension, ChaincodeProposalPayload, ProposalResponse,
    SignedProposal, Transaction,
};
use fabric_protos::{hash, kvrwset, rwset};
use ledger_types::proto::{
    ContractEvent, KvRead, KvWrite, NsRwSet, RangeQueryInfo, Response, Timestamp, TxRwSet, Version,
};
use ledger_types::tx::Signer;
use ledger_types::tx::{self, DecodedTx, ProposalBuilder, TxError};
use ledger_types::{ChannelId, TxId, TxValidationCode as C};
use proptest::prelude::*;
use prost::Message;

const PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIBfakeCertificateForTests\n-----END CERTIFICATE-----\n";
const NONCE: &[u8; 24] = b"0123456789abcdef01234567";
const TS: Timestamp = Timestamp { seconds: 1_700_000_000, nanos: 123_456_789 };

/// A fake signer: "signature" = identity ‖ msg reversed. Enough to check what gets signed.
struct Fake(Vec<u8>);
impl Signer for Fake {
    fn serialized_identity(&self) -> &[u8] {
        &self.0
    }
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let mut v = self.0.clone();
        v.extend(msg.iter().rev());
        v
    }
}

fn client() -> Fake {
    Fake(tx::serialize_identity("Org1MSP", PEM))
}

fn peer(org: &str) -> Fake {
    Fake(tx::serialize_identity(&format!("{org}MSP"), format!("PEM of {org}'s peer").as_bytes()))
}

fn channel() -> ChannelId {
    ChannelId::parse("mychannel").unwrap()
}

fn builder() -> ProposalBuilder {
    ProposalBuilder::new(channel(), "ipe", "register")
        .arg(b"dev-1".to_vec())
        .args([b"{\"a\":1}".to_vec()])
        .transient("secret", b"psk".to_vec())
}

fn results() -> TxRwSet {
    let v = |b, t| Some(Version { block_num: b, tx_num: t });
    TxRwSet {
        ns_rwsets: vec![
            NsRwSet {
                namespace: "ipe".into(),
                reads: vec![
                    KvRead { key: "a".into(), version: v(3, 1) },
                    KvRead { key: "new".into(), version: None },
                ],
                range_queries: vec![
                    RangeQueryInfo {
                        start_key: "dev/".into(),
                        end_key: "dev0".into(),
                        itr_exhausted: true,
                        reads: vec![KvRead { key: "dev/1".into(), version: v(2, 0) }],
                    },
                    RangeQueryInfo {
                        start_key: "x".into(),
                        end_key: String::new(),
                        itr_exhausted: false,
                        reads: vec![],
                    },
                ],
                writes: vec![
                    KvWrite { key: "a".into(), is_delete: false, value: b"1".to_vec() },
                    KvWrite { key: "gone".into(), is_delete: true, value: Vec::new() },
                ],
            },
            NsRwSet {
                namespace: "_lifecycle".into(),
                reads: vec![KvRead { key: "ipe".into(), version: v(0, 0) }],
                ..Default::default()
            },
        ],
    }
}

fn event(tx_id: &TxId) -> ContractEvent {
    ContractEvent {
        contract: "ipe".into(),
        tx_id: tx_id.as_str().into(),
        event_name: "registered".into(),
        payload: b"{}".to_vec(),
    }
}

fn ok() -> Response {
    Response { status: 200, message: String::new(), payload: b"result".to_vec() }
}

fn endorsed(
    sp: &SignedProposal,
    endorser: &Fake,
    results: &TxRwSet,
    event: Option<&ContractEvent>,
) -> ProposalResponse {
    let unpacked = fabric_protos::tx::unpack_proposal(sp).unwrap();
    let payload = tx::response_payload(&unpacked, "1.0", results, event, &ok()).unwrap();
    tx::endorse(endorser, &ok(), &payload)
}

#[test]
fn proposal_is_built_as_fabric_gateway_builds_it() {
    let c = client();
    let (sp, tx_id) = builder().sign(&c, NONCE.to_vec(), TS);
    assert_eq!(sp.signature, c.sign(&sp.proposal_bytes));
    // The tx id rule: hex SHA-256(nonce ‖ creator), the creator a PEM SerializedIdentity.
    assert_eq!(tx_id.as_str(), hash::tx_id(NONCE, c.serialized_identity()));
    assert_eq!(tx_id, TxId::compute(NONCE, c.serialized_identity()));
    let creator = tx::deserialize_identity(c.serialized_identity()).unwrap();
    assert_eq!((creator.mspid.as_str(), creator.id_bytes.as_ref()), ("Org1MSP", PEM));

    // Golden: Fabric's own structure, layer by layer, with fabric_protos.
    let p = fabric_protos::tx::unpack_proposal(&sp).unwrap();
    let ch = &p.channel_header;
    assert_eq!(ch.r#type, HeaderType::EndorserTransaction as i32);
    assert_eq!(ch.r#type, 3);
    assert_eq!((ch.version, ch.epoch), (0, 0));
    assert!(ch.tls_cert_hash.is_empty());
    assert_eq!(ch.channel_id, "mychannel");
    assert_eq!(ch.tx_id, tx_id.as_str());
    let ts = ch.timestamp.unwrap();
    assert_eq!((ts.seconds, ts.nanos), (TS.seconds, TS.nanos));
    let ext = ChaincodeHeaderExtension::decode(ch.extension.as_ref()).unwrap();
    let ext_id = ext.chaincode_id.unwrap();
    assert_eq!((ext_id.name.as_str(), ext_id.version.as_str(), ext_id.path.as_str()), ("ipe", "", ""));
    assert_eq!(
        p.signature_header,
        SignatureHeader { creator: c.0.clone().into(), nonce: NONCE.to_vec().into() }
    );
    let spec = p.invocation.chaincode_spec.clone().unwrap();
    assert_eq!(spec.r#type, protos::chaincode_spec::Type::Node as i32);
    assert_eq!(spec.chaincode_id.unwrap(), ext_id);
    assert_eq!(p.args(), [b"register".to_vec(), b"dev-1".to_vec(), b"{\"a\":1}".to_vec()]);
    assert_eq!(p.payload.transient_map.get("secret").map(|v| &v[..]), Some(&b"psk"[..]));
    assert!(p.proposal.extension.is_empty());
    assert_eq!(p.chaincode_name(), "ipe");
}

#[test]
fn proposal_to_envelope_and_back() {
    let (c, p1, p2) = (client(), peer("Org1"), peer("Org2"));
    let (sp, tx_id) = builder().sign(&c, NONCE.to_vec(), TS);
    let ev = event(&tx_id);
    let r1 = endorsed(&sp, &p1, &results(), Some(&ev));
    let r2 = endorsed(&sp, &p2, &results(), Some(&ev));
    assert_eq!(r1.version, 1);
    assert_eq!(&r1.response.as_ref().unwrap().payload[..], b"result");
    let e1 = r1.endorsement.clone().unwrap();
    assert_eq!(e1.signature, p1.sign(&hash::endorsement_signed_bytes(&r1.payload, &e1.endorser)));

    let prepared = tx::assemble(&sp, &[r1.clone(), r2.clone()]).unwrap();
    assert!(prepared.signature.is_empty());
    let env = tx::sign_envelope(&c, &prepared);
    assert_eq!(env.payload, prepared.payload);
    assert_eq!(env.signature, c.sign(&env.payload));
    let bytes = env.encode_to_vec();

    let d = DecodedTx::decode(&bytes).unwrap();
    assert_eq!(d.channel_id(), "mychannel");
    assert_eq!(d.tx_id(), tx_id.as_str());
    assert!(d.tx_id_matches());
    assert_eq!(d.header_type(), HeaderType::EndorserTransaction as i32);
    assert_eq!(d.timestamp(), Some(TS));
    assert_eq!(d.creator(), c.serialized_identity());
    assert_eq!(d.signed_bytes(), env.payload.as_ref());
    assert_eq!(d.signature(), env.signature.as_ref());
    assert!(d.proposal_hash_matches());
    let a = d.action.as_ref().unwrap();
    assert_eq!(a.chaincode_name, "ipe");
    assert_eq!(a.chaincode_version, "1.0");
    assert_eq!(a.results, results());
    assert_eq!(a.event, Some(ev));
    assert_eq!(a.response, Some(ok()));
    assert_eq!(a.proposal_response_payload, r1.payload);
    assert_eq!(a.endorsements.len(), 2);
    for (e, (r, p)) in a.endorsements.iter().zip([(&r1, &p1), (&r2, &p2)]) {
        assert_eq!(e.endorser, p.serialized_identity());
        assert_eq!(e.signed_bytes, hash::endorsement_signed_bytes(&r.payload, &e.endorser));
        assert_eq!(e.signature, p.sign(&e.signed_bytes));
    }
    // The transaction carries the invocation but never the transient data.
    let spec = a.invocation().unwrap().chaincode_spec.unwrap();
    assert_eq!(&spec.input.unwrap().args[0][..], b"register");
    let cpp = ChaincodeProposalPayload::decode(a.chaincode_proposal_payload.as_ref()).unwrap();
    assert!(cpp.transient_map.is_empty());
    assert!(!bytes.windows(3).any(|w| w == b"psk"));
    assert_eq!(a.action_header, d.header.signature_header);
}

#[test]
fn no_event_and_empty_results_round_trip() {
    let (c, p) = (client(), peer("Org1"));
    let (sp, _) = ProposalBuilder::new(channel(), "kv", "get").sign(&c, NONCE.to_vec(), TS);
    let r = endorsed(&sp, &p, &TxRwSet::default(), None);
    let env = tx::sign_envelope(&c, &tx::assemble(&sp, &[r]).unwrap());
    let d = DecodedTx::decode(&env.encode_to_vec()).unwrap();
    let a = d.action.unwrap();
    assert_eq!((&a.event, &a.results), (&None, &TxRwSet::default()));
    assert_eq!(a.invocation().unwrap().chaincode_spec.unwrap().input.unwrap().args, [b"get".to_vec()]);
}

#[test]
fn range_reads_travel_in_a_query_reads_wrapper() {
    let f = tx::rwset_to_fabric(&results());
    assert_eq!(f.data_model, rwset::tx_read_write_set::DataModel::Kv as i32);
    let kv = kvrwset::KvrwSet::decode(f.ns_rwset[0].rwset.as_ref()).unwrap();
    let Some(kvrwset::range_query_info::ReadsInfo::RawReads(q)) = &kv.range_queries_info[0].reads_info else {
        panic!("range reads are raw_reads (field 4) = QueryReads");
    };
    assert_eq!(q.kv_reads[0].key, "dev/1");
    assert_eq!(tx::rwset_from_fabric(&f).unwrap(), results());

    // What ipechain cannot validate is refused, typed.
    let mut merkle = kv.clone();
    merkle.range_queries_info[0].reads_info = Some(kvrwset::range_query_info::ReadsInfo::ReadsMerkleHashes(
        kvrwset::QueryReadsMerkleSummary::default(),
    ));
    let mut g = f.clone();
    g.ns_rwset[0].rwset = merkle.encode_to_vec().into();
    assert!(matches!(tx::rwset_from_fabric(&g), Err(TxError::Unsupported { .. })));
    let mut g = f.clone();
    g.ns_rwset[1].collection_hashed_rwset.push(rwset::CollectionHashedReadWriteSet::default());
    assert!(matches!(tx::rwset_from_fabric(&g), Err(TxError::Unsupported { .. })));
    let mut g = f.clone();
    g.data_model = 7;
    assert_eq!(tx::rwset_from_fabric(&g), Err(TxError::DataModel(7)));
    let mut g = f;
    g.ns_rwset[0].rwset = vec![0xff].into();
    assert!(matches!(tx::rwset_from_fabric(&g), Err(TxError::Decode { what: "KVRWSet", .. })));
}

#[test]
fn proposal_hash_mismatch_is_detected() {
    let (c, p) = (client(), peer("Org1"));
    let (sp, _) = builder().sign(&c, NONCE.to_vec(), TS);
    // An endorsement of another proposal (another nonce) put into this transaction.
    let (other, _) = builder().sign(&c, b"another nonce, 24 bytes!".to_vec(), TS);
    let r = endorsed(&other, &p, &results(), None);
    let env = tx::sign_envelope(&c, &tx::assemble(&sp, &[r]).unwrap());
    let d = DecodedTx::decode(&env.encode_to_vec()).unwrap();
    assert!(!d.proposal_hash_matches());
    assert!(d.tx_id_matches());

    // Transient data does not enter the hash: a proposal differing only in it hashes the same.
    let (no_transient, _) = ProposalBuilder::new(channel(), "ipe", "register")
        .arg(b"dev-1".to_vec())
        .arg(b"{\"a\":1}".to_vec())
        .sign(&c, NONCE.to_vec(), TS);
    let r = endorsed(&no_transient, &p, &results(), None);
    let env = tx::sign_envelope(&c, &tx::assemble(&sp, &[r]).unwrap());
    assert!(DecodedTx::decode(&env.encode_to_vec()).unwrap().proposal_hash_matches());
}

#[test]
fn hashes_are_over_the_bytes_as_received() {
    // A channel header with a field prost does not know: a re-encoding would drop it and change the hash.
    let (c, p) = (client(), peer("Org1"));
    let (proposal, _) = builder().proposal(c.0.clone(), NONCE.to_vec(), TS);
    let mut header = common::Header::decode(proposal.header.as_ref()).unwrap();
    let mut channel_header = header.channel_header.to_vec();
    channel_header.extend_from_slice(&[0x78, 0x01]); // field 15, varint 1
    header.channel_header = channel_header.into();
    let proposal = protos::Proposal { header: header.encode_to_vec().into(), ..proposal };
    let proposal_bytes = proposal.encode_to_vec();
    let sp =
        SignedProposal { signature: c.sign(&proposal_bytes).into(), proposal_bytes: proposal_bytes.into() };
    let r = endorsed(&sp, &p, &results(), None);
    let env = tx::sign_envelope(&c, &tx::assemble(&sp, &[r]).unwrap());
    let d = DecodedTx::decode(&env.encode_to_vec()).unwrap();
    assert!(d.proposal_hash_matches());
    assert!(d.header.channel_header.ends_with(&[0x78, 0x01]));
}

#[test]
fn assemble_refuses_errors_and_disagreement() {
    let (c, p1, p2) = (client(), peer("Org1"), peer("Org2"));
    let (sp, _) = builder().sign(&c, NONCE.to_vec(), TS);
    assert_eq!(tx::assemble(&sp, &[]), Err(TxError::NoEndorsements));
    let a = endorsed(&sp, &p1, &results(), None);
    let mut other = results();
    other.ns_rwsets[0].writes[0].value = b"2".to_vec();
    let b = endorsed(&sp, &p2, &other, None);
    assert_eq!(tx::assemble(&sp, &[a.clone(), b]), Err(TxError::Mismatch { index: 1 }));

    let unpacked = fabric_protos::tx::unpack_proposal(&sp).unwrap();
    let failed = Response { status: 500, message: "boom".into(), payload: Vec::new() };
    let payload = tx::response_payload(&unpacked, "", &results(), None, &failed).unwrap();
    let bad = tx::endorse(&p2, &failed, &payload);
    assert_eq!(
        tx::assemble(&sp, &[a.clone(), bad]),
        Err(TxError::Refused { index: 1, status: 500, message: "boom".into() })
    );
    let mut unendorsed = a.clone();
    unendorsed.endorsement = None;
    assert_eq!(tx::assemble(&sp, &[unendorsed]), Err(TxError::Missing("endorsement")));
    let empty = SignedProposal::default();
    assert!(matches!(tx::assemble(&empty, &[a]), Err(TxError::Unpack(_))));
}

fn signed_envelope() -> Vec<u8> {
    let (c, p) = (client(), peer("Org1"));
    let (sp, tx_id) = builder().sign(&c, NONCE.to_vec(), TS);
    let r = endorsed(&sp, &p, &results(), Some(&event(&tx_id)));
    tx::sign_envelope(&c, &tx::assemble(&sp, &[r]).unwrap()).encode_to_vec()
}

#[test]
fn malformed_transactions_give_typed_errors() {
    let decode = DecodedTx::decode;
    assert!(matches!(decode(&[0xff, 0xff, 0xff]), Err(TxError::Decode { what: "Envelope", .. })));
    assert_eq!(decode(&[]), Err(TxError::Missing("envelope payload")));
    let env = |payload: common::Payload| {
        common::Envelope { payload: payload.encode_to_vec().into(), signature: vec![1].into() }
            .encode_to_vec()
    };
    assert_eq!(
        decode(&env(common::Payload { header: None, data: vec![1].into() })),
        Err(TxError::Missing("payload header"))
    );

    let good = common::Envelope::decode(signed_envelope().as_slice()).unwrap();
    let payload = common::Payload::decode(good.payload.as_ref()).unwrap();
    let with_data =
        |data: Vec<u8>| env(common::Payload { header: payload.header.clone(), data: data.into() });
    let tx = Transaction::decode(payload.data.as_ref()).unwrap();
    let two = Transaction { actions: vec![tx.actions[0].clone(), tx.actions[0].clone()] };
    assert_eq!(decode(&with_data(two.encode_to_vec())), Err(TxError::ActionCount(2)));
    assert_eq!(decode(&with_data(Vec::new())), Err(TxError::ActionCount(0)));
    let mut no_action = tx.clone();
    let mut cap = ChaincodeActionPayload::decode(no_action.actions[0].payload.as_ref()).unwrap();
    cap.action = None;
    no_action.actions[0].payload = cap.encode_to_vec().into();
    assert_eq!(
        decode(&with_data(no_action.encode_to_vec())),
        Err(TxError::Missing("chaincode endorsed action"))
    );
    let mut bad_prp = tx;
    let mut cap = ChaincodeActionPayload::decode(bad_prp.actions[0].payload.as_ref()).unwrap();
    cap.action.as_mut().unwrap().proposal_response_payload = vec![0x0a, 0x05].into();
    bad_prp.actions[0].payload = cap.encode_to_vec().into();
    assert!(matches!(
        decode(&with_data(bad_prp.encode_to_vec())),
        Err(TxError::Decode { what: "ProposalResponsePayload", .. })
    ));

    // Another header type: the common parts only, no action.
    let mut ch = ChannelHeader::decode(payload.header.as_ref().unwrap().channel_header.as_ref()).unwrap();
    ch.r#type = HeaderType::Config as i32;
    let header =
        common::Header { channel_header: ch.encode_to_vec().into(), ..payload.header.clone().unwrap() };
    let d = decode(&env(common::Payload { header: Some(header), data: vec![0xff].into() })).unwrap();
    assert_eq!(d.header_type(), 1);
    assert!(d.action.is_none());
    assert!(!d.proposal_hash_matches());
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = DecodedTx::decode(&bytes);
    }

    #[test]
    fn corrupted_envelopes_never_panic(i in any::<usize>(), flip in 1u8..=255, cut in any::<usize>()) {
        let mut bytes = signed_envelope();
        let n = bytes.len();
        bytes[i % n] ^= flip;
        let _ = DecodedTx::decode(&bytes);
        bytes.truncate(cut % n);
        let _ = DecodedTx::decode(&bytes);
    }
}

#[test]
fn validation_codes_are_fabrics_numbers_and_names() {
    use ledger_types::fabric_protos::protos::TxValidationCode as F;
    for c in C::ALL {
        let f = F::try_from(i32::from(c.as_u8())).unwrap_or_else(|_| panic!("{c} is no Fabric code"));
        assert_eq!(f.as_str_name(), c.name(), "{c:?}");
        assert_eq!(C::from_u8(c.as_u8()), Some(c));
    }
}
