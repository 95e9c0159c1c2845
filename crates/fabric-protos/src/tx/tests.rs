use super::*;
use crate::protos::{ChaincodeId, ChaincodeInput, ChaincodeSpec, Endorsement};

fn signed(channel: &str, spec: Option<ChaincodeSpec>) -> SignedProposal {
    let channel_header =
        ChannelHeader { channel_id: channel.into(), tx_id: "tx".into(), ..Default::default() };
    let header = Header {
        channel_header: channel_header.encode_to_vec().into(),
        signature_header: SignatureHeader { creator: b"me".to_vec().into(), nonce: b"n".to_vec().into() }
            .encode_to_vec()
            .into(),
    };
    let input = ChaincodeInvocationSpec { chaincode_spec: spec }.encode_to_vec();
    let mut payload = ChaincodeProposalPayload { input: input.into(), transient_map: Default::default() };
    payload.transient_map.insert("k".into(), b"secret".to_vec().into());
    let proposal = Proposal {
        header: header.encode_to_vec().into(),
        payload: payload.encode_to_vec().into(),
        extension: Vec::new().into(),
    };
    SignedProposal { proposal_bytes: proposal.encode_to_vec().into(), signature: b"sig".to_vec().into() }
}

fn spec(name: &str) -> Option<ChaincodeSpec> {
    Some(ChaincodeSpec {
        chaincode_id: Some(ChaincodeId { name: name.into(), ..Default::default() }),
        input: Some(ChaincodeInput {
            args: vec![b"fn".to_vec().into(), b"a".to_vec().into()],
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[test]
fn unpacks_a_chaincode_proposal() {
    let p = unpack_proposal(&signed("mychannel", spec("ipe"))).expect("unpacks");
    assert_eq!((p.channel_id(), p.chaincode_name()), ("mychannel", "ipe"));
    assert_eq!(p.args(), [b"fn".to_vec(), b"a".to_vec()]);
    assert!(p.has_transient_data());
    assert_eq!(&p.signature_header.creator[..], b"me");
    assert_eq!(p.channel_header.tx_id, "tx");
}

#[test]
fn refusals_carry_fabrics_messages() {
    let cases: [(SignedProposal, &str); 5] = [
        (SignedProposal::default(), "a signed proposal is required"),
        (signed("", spec("ipe")), "no channel id provided"),
        (signed("ch", None), "no chaincode spec is provided, channel id [ch]"),
        (
            signed("ch", Some(ChaincodeSpec { chaincode_id: None, ..Default::default() })),
            "no chaincode id is provided, channel id [ch]",
        ),
        (signed("ch", spec("")), "no chaincode name is provided, channel id [ch]"),
    ];
    for (proposal, message) in cases {
        assert_eq!(unpack_proposal(&proposal).expect_err(message).to_string(), message);
    }
    let garbage = SignedProposal { proposal_bytes: vec![0x0a, 0x05].into(), signature: Vec::new().into() };
    assert!(matches!(unpack_proposal(&garbage), Err(UnpackError::Decode { what: "Proposal", .. })));
}

#[test]
fn prepared_transaction_drops_the_transient_map_and_reuses_the_header() {
    let p = unpack_proposal(&signed("mychannel", spec("ipe"))).expect("unpacks");
    let action = ChaincodeEndorsedAction {
        proposal_response_payload: b"prp".to_vec().into(),
        endorsements: vec![Endorsement { endorser: b"e".to_vec().into(), signature: b"s".to_vec().into() }],
    };
    let env = prepare_transaction(&p.header, &p.payload, action.clone());
    assert!(env.signature.is_empty(), "the client signs it");
    let payload = Payload::decode(env.payload.as_ref()).expect("payload");
    assert_eq!(payload.header.as_ref(), Some(&p.header));
    let tx = Transaction::decode(payload.data.as_ref()).expect("transaction");
    assert_eq!(tx.actions.len(), 1);
    assert_eq!(tx.actions[0].header, p.header.signature_header);
    let cap = ChaincodeActionPayload::decode(tx.actions[0].payload.as_ref()).expect("action payload");
    assert_eq!(cap.action, Some(action));
    let cpp = ChaincodeProposalPayload::decode(cap.chaincode_proposal_payload.as_ref()).expect("cpp");
    assert!(cpp.transient_map.is_empty());
    assert_eq!(cpp.input, p.payload.input);
    // The committer's proposal hash over the carried payload equals the endorser's over the proposal.
    assert_eq!(
        crate::hash::proposal_hash_for_tx(&p.header, &cap.chaincode_proposal_payload),
        crate::hash::proposal_hash(&p.proposal)
    );
}
