use ledger_types::proto::{ProposalResponsePayload, Response, Timestamp, TxRwSet};
use ledger_types::tx::{self, DecodedTx, ProposalBuilder, Signer, TxError};
use ledger_types::{ChannelId, TxId};
use prost::Message;

/// A fake signer: "signature" = identity || msg reversed. Enough to check what gets signed.
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

fn payload(proposal_bytes: &[u8], status: i32) -> ProposalResponsePayload {
    ProposalResponsePayload {
        proposal_hash: tx::proposal_hash(proposal_bytes),
        results: Some(TxRwSet::default()),
        event: None,
        response: Some(Response { status, message: String::new(), payload: b"ok".to_vec() }),
    }
}

#[test]
fn proposal_to_envelope_and_back() {
    let client = Fake(tx::serialize_identity("Org1MSP", b"cert-c"));
    let peer = Fake(tx::serialize_identity("Org1MSP", b"cert-p"));
    let (sp, tx_id) = ProposalBuilder::new(ChannelId::parse("iot").unwrap(), "ipe", "put")
        .arg(b"k".to_vec())
        .arg(b"v".to_vec())
        .sign(&client, b"nonce".to_vec(), Timestamp { seconds: 5, nanos: 0 });
    assert_eq!(tx_id, TxId::compute(b"nonce", client.serialized_identity()));
    assert_eq!(sp.signature, client.sign(&sp.proposal_bytes));

    let resp = tx::endorse(&peer, &payload(&sp.proposal_bytes, 200));
    let e = resp.endorsement.clone().unwrap();
    assert_eq!(e.signature, peer.sign(&tx::endorsement_message(&resp.payload, &e.endorser)));

    let txp = tx::assemble(&sp, &[resp.clone(), resp]).unwrap();
    let env = tx::sign_envelope(&client, &txp);
    let d = DecodedTx::decode(&env.encode_to_vec()).unwrap();
    assert_eq!(d.tx_id(), tx_id.as_str());
    assert_eq!(d.input.function, "put");
    assert_eq!(d.input.args, vec![b"k".to_vec(), b"v".to_vec()]);
    assert!(d.proposal_hash_matches());
    assert_eq!(d.payload.endorsements.len(), 2);
}

#[test]
fn assemble_refuses_errors_and_disagreement() {
    let client = Fake(tx::serialize_identity("Org1MSP", b"c"));
    let peer = Fake(tx::serialize_identity("Org2MSP", b"p"));
    let (sp, _) = ProposalBuilder::new(ChannelId::parse("iot").unwrap(), "ipe", "f").sign(
        &client,
        b"n".to_vec(),
        Timestamp::default(),
    );
    assert_eq!(tx::assemble(&sp, &[]), Err(TxError::NoEndorsements));
    let bad = tx::endorse(&peer, &payload(&sp.proposal_bytes, 500));
    assert!(matches!(tx::assemble(&sp, &[bad]), Err(TxError::Refused { status: 500, .. })));
    let a = tx::endorse(&peer, &payload(&sp.proposal_bytes, 200));
    let mut other = payload(&sp.proposal_bytes, 200);
    other.response.as_mut().unwrap().payload = b"different".to_vec();
    let b = tx::endorse(&peer, &other);
    assert_eq!(tx::assemble(&sp, &[a, b]), Err(TxError::Mismatch { index: 1 }));
}

#[test]
fn garbage_does_not_decode() {
    assert!(DecodedTx::decode(&[0xff, 0xff, 0xff]).is_err());
    assert!(TxId::parse("abc").is_err());
    assert!(TxId::parse(&"A".repeat(64)).is_err());
    assert!(ChannelId::parse("iot").is_ok());
    assert!(ChannelId::parse("1iot").is_err());
}
