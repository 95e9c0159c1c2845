use crate::support::*;
use contract::samples::KvContract;
use ledger_types::proto::SignedProposal;
use ledger_types::store::{BlockStore, StateStore};
use ledger_types::tx::{self, Signer};
use ledger_types::{BlockExt, Hash32, TxValidationCode as C};
use msp::Algorithm;
use peer::endorser::{EndorseError, Endorser};
use peer::ledger::{CommitError, PeerLedger};
use peer::validator::{ChannelRules, RulesCell};
use prost::Message;
use std::sync::Arc;

const ALGS: [Algorithm; 2] = [Algorithm::Ed25519, Algorithm::EcdsaP256];

struct Net {
    alg: Algorithm,
    ledger: PeerLedger<MemBlocks, MemState>,
    e1: Endorser,
    e2: Endorser,
    client: TestSigner,
    orderer: TestSigner,
}

fn net(policy: &str) -> Net {
    net_with(Algorithm::Ed25519, policy)
}

fn net_with(alg: Algorithm, policy: &str) -> Net {
    let g = genesis(alg, policy);
    let ledger = PeerLedger::open(&g, MemBlocks::default(), MemState::default(), ids(alg), 2).unwrap();
    let rules = Arc::new(RulesCell::new(ChannelRules::from_config(ledger.config()).unwrap()));
    let endorser = |msp: &str| {
        Endorser::new(
            rules.clone(),
            ids(alg),
            vec![Arc::new(KvContract)],
            Arc::new(TestSigner::new(alg, msp, "peer0")),
        )
    };
    Net {
        alg,
        e1: endorser("Org1MSP"),
        e2: endorser("Org2MSP"),
        ledger,
        client: TestSigner::new(alg, "Org1MSP", "User1"),
        orderer: orderer(alg),
    }
}

impl Net {
    /// Endorses with the given endorsers and returns the signed envelope bytes.
    fn tx(&self, sp: &SignedProposal, endorsers: &[&Endorser]) -> Vec<u8> {
        let snap = self.ledger.state().snapshot().unwrap();
        let responses: Vec<_> = endorsers
            .iter()
            .map(|e| e.process(sp, &snap, &|id| self.ledger.contains_tx(id), NOW).unwrap())
            .collect();
        let payload = tx::assemble(sp, &responses).unwrap();
        tx::sign_envelope(&self.client, &payload).encode_to_vec()
    }

    /// Has `e1` endorse whatever the proposal's time (as a peer with a wrong clock, or a colluding one,
    /// would): the contract runs for a creator validated at NOW, and the client signs the envelope.
    fn tx_anyway(&self, sp: &SignedProposal) -> Vec<u8> {
        use peer::identity::Identities as _;
        let proposal = ledger_types::fabric_protos::tx::unpack_proposal(sp).unwrap();
        let checked = peer::endorser::CheckedProposal {
            tx_id: ledger_types::TxId::parse(&proposal.channel_header.tx_id).unwrap(),
            creator: ids(self.alg).validate(&proposal.signature_header.creator, NOW).unwrap(),
            proposal,
            signed: None,
        };
        let snap = self.ledger.state().snapshot().unwrap();
        let r = self.e1.sign(self.e1.run(checked, &snap, &|_| Ok(false)).unwrap());
        tx::sign_envelope(&self.client, &tx::assemble(sp, &[r]).unwrap()).encode_to_vec()
    }

    fn put(&self, k: &str, v: &str) -> Vec<u8> {
        self.tx(&proposal(&self.client, "put", &[k, v]).0, &[&self.e1])
    }

    fn commit(&self, envs: Vec<Vec<u8>>) -> Vec<C> {
        self.commit_at(envs, NOW)
    }

    /// Commits a block the orderer cut at `time`.
    fn commit_at(&self, envs: Vec<Vec<u8>>, time: i64) -> Vec<C> {
        let b = block_at(&self.orderer, self.ledger.height(), self.ledger.head_hash(), envs, time);
        let c = self.ledger.commit(b).unwrap();
        c.txs.iter().map(|t| t.1).collect()
    }
}

#[test]
fn valid_transactions_commit_with_events_and_versions() {
    let n = net("ANY");
    let codes = n.commit(vec![n.put("a", "1"), n.put("b", "2")]);
    assert_eq!(codes, vec![C::Valid, C::Valid]);
    assert_eq!(value(n.ledger.state(), "kv", "a").unwrap().0, b"1");
    let (_, v) = value(n.ledger.state(), "kv", "b").unwrap();
    assert_eq!((v.block_num, v.tx_num), (1, 1));
    assert_eq!(n.ledger.height(), 2);
    assert_eq!(n.ledger.commit_hash().len(), 32);
    let stored = n.ledger.blocks().block(1).unwrap().unwrap();
    assert_eq!(stored.validation_codes(), &[0, 0]);
}

#[test]
fn mvcc_counts_earlier_valid_transactions_of_the_same_block() {
    let n = net("ANY");
    n.commit(vec![n.put("ctr", "5")]);
    let a = n.tx(&proposal(&n.client, "incr", &["ctr"]).0, &[&n.e1]);
    let b = n.tx(&proposal(&n.client, "incr", &["ctr"]).0, &[&n.e1]);
    assert_eq!(n.commit(vec![a, b]), vec![C::Valid, C::MvccReadConflict]);
    assert_eq!(value(n.ledger.state(), "kv", "ctr").unwrap().0, b"6");
    // A stale read across blocks conflicts as well.
    let stale = n.tx(&proposal(&n.client, "incr", &["ctr"]).0, &[&n.e1]);
    n.commit(vec![n.put("ctr", "100")]);
    assert_eq!(n.commit(vec![stale]), vec![C::MvccReadConflict]);
}

#[test]
fn phantom_reads_are_detected() {
    let n = net("ANY");
    n.commit(vec![n.put("k1", "x")]);
    let scan = n.tx(&proposal(&n.client, "range", &["k", "l"]).0, &[&n.e1]);
    assert_eq!(n.commit(vec![n.put("k2", "y"), scan]), vec![C::Valid, C::PhantomReadConflict]);
}

#[test]
fn duplicates_and_replays_are_marked() {
    let n = net("ANY");
    let t = n.put("a", "1");
    assert_eq!(n.commit(vec![t.clone(), t.clone()]), vec![C::Valid, C::DuplicateTxId]);
    assert_eq!(n.commit(vec![t]), vec![C::DuplicateTxId]);
    // The endorser refuses a proposal whose tx id is already committed.
    let (sp, _) = proposal(&n.client, "put", &["z", "1"]);
    let env = n.tx(&sp, &[&n.e1]);
    n.commit(vec![env]);
    let snap = n.ledger.state().snapshot().unwrap();
    let err = n.e1.process(&sp, &snap, &|id| n.ledger.contains_tx(id), NOW).unwrap_err();
    assert!(matches!(err, EndorseError::Duplicate(_)));
}

#[test]
fn endorsement_policy_is_enforced() {
    let n = net("AND('Org1MSP.peer','Org2MSP.peer')");
    let (sp, _) = proposal(&n.client, "put", &["a", "1"]);
    let one = n.tx(&sp, &[&n.e1]);
    let (sp2, _) = proposal(&n.client, "put", &["b", "1"]);
    let both = n.tx(&sp2, &[&n.e1, &n.e2]);
    let (sp3, _) = proposal(&n.client, "put", &["c", "1"]);
    let twice_same = n.tx(&sp3, &[&n.e1, &n.e1]);
    assert_eq!(
        n.commit(vec![one, both, twice_same]),
        vec![C::EndorsementPolicyFailure, C::Valid, C::EndorsementPolicyFailure]
    );
}

#[test]
fn forged_and_foreign_transactions_are_invalid() {
    for alg in ALGS {
        let n = net_with(alg, "ANY");
        // Creator signature does not match the payload.
        let (sp, _) = proposal(&n.client, "put", &["a", "1"]);
        let snap = n.ledger.state().snapshot().unwrap();
        let r = n.e1.process(&sp, &snap, &|_| Ok(false), NOW).unwrap();
        let payload = tx::assemble(&sp, std::slice::from_ref(&r)).unwrap();
        let mut env = tx::sign_envelope(&n.client, &payload);
        let mut sig = env.signature.to_vec();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        env.signature = sig.into();
        let bad_sig = env.encode_to_vec();
        // Endorsement signature forged: policy no longer met.
        let forged = edit_action(&payload, |a| {
            let mut sig = a.endorsements[0].signature.to_vec();
            let last = sig.len() - 1;
            sig[last] ^= 1;
            a.endorsements[0].signature = sig.into();
        });
        let forged = tx::sign_envelope(&n.client, &forged).encode_to_vec();
        // Someone else (a valid member with another key) signs the envelope of the client's proposal.
        let mallory = TestSigner::new(alg, "Org2MSP", "User1");
        let wrong_key = tx::sign_envelope(&mallory, &payload).encode_to_vec();
        // A creator whose certificate comes from a CA the channel does not trust, under a member's MSP id.
        let foreign = TestSigner::foreign(alg, "Org1MSP", "User1");
        let (fsp, _) = proposal(&foreign, "put", &["a", "1"]);
        let fpayload = tx::assemble(&fsp, std::slice::from_ref(&r)).unwrap_or_else(|_| unreachable!());
        let foreign_env = tx::sign_envelope(&foreign, &fpayload).encode_to_vec();
        // An endorsement by a peer of the foreign network: the policy is not met.
        let foreign_peer = Endorser::new(
            Arc::new(RulesCell::new(ChannelRules::from_config(n.ledger.config()).unwrap())),
            ids(alg),
            vec![Arc::new(KvContract)],
            Arc::new(TestSigner::foreign(alg, "Org1MSP", "peer0")),
        );
        let (sp2, _) = proposal(&n.client, "put", &["b", "1"]);
        let rf = foreign_peer.sign(foreign_peer.simulate(&sp2, &snap, &|_| Ok(false), NOW).unwrap());
        let foreign_endorsed =
            tx::sign_envelope(&n.client, &tx::assemble(&sp2, &[rf]).unwrap()).encode_to_vec();
        let codes =
            n.commit(vec![bad_sig, forged, wrong_key, foreign_env, foreign_endorsed, vec![], vec![1, 2, 3]]);
        assert_eq!(
            codes,
            vec![
                C::BadCreatorSignature,
                C::EndorsementPolicyFailure,
                C::BadCreatorSignature,
                C::BadCreatorSignature,
                C::EndorsementPolicyFailure,
                C::NilEnvelope,
                C::BadPayload
            ],
            "{alg}"
        );
        assert!(value(n.ledger.state(), "kv", "a").is_none(), "nothing invalid was applied");
        // The endorser refuses a foreign creator outright.
        let e = n.e1.process(&fsp, &snap, &|_| Ok(false), NOW).unwrap_err();
        assert!(matches!(e, EndorseError::Denied(_)), "{alg}");
    }
}

/// A prepared transaction with its single action's endorsed part edited.
fn edit_action(
    prepared: &ledger_types::proto::Envelope,
    edit: impl FnOnce(&mut ledger_types::fabric_protos::protos::ChaincodeEndorsedAction),
) -> ledger_types::proto::Envelope {
    use ledger_types::fabric_protos::protos::{ChaincodeActionPayload, Transaction};
    use ledger_types::proto::Payload;
    let mut payload = Payload::decode(prepared.payload.as_ref()).unwrap();
    let mut t = Transaction::decode(payload.data.as_ref()).unwrap();
    let mut cap = ChaincodeActionPayload::decode(t.actions[0].payload.as_ref()).unwrap();
    edit(cap.action.as_mut().unwrap());
    t.actions[0].payload = cap.encode_to_vec().into();
    payload.data = t.encode_to_vec().into();
    ledger_types::proto::Envelope { payload: payload.encode_to_vec().into(), signature: vec![].into() }
}

/// Adds an endorsement to a prepared transaction (its single action) and signs the envelope as `client`.
fn with_extra_endorsement(
    client: &TestSigner,
    prepared: &ledger_types::proto::Envelope,
    endorser: Vec<u8>,
    signer: &dyn Signer,
) -> Vec<u8> {
    let prepared = edit_action(prepared, |action| {
        let signature = signer.sign(&ledger_types::fabric_protos::hash::endorsement_signed_bytes(
            &action.proposal_response_payload,
            &endorser,
        ));
        action.endorsements.push(ledger_types::fabric_protos::protos::Endorsement {
            endorser: endorser.into(),
            signature: signature.into(),
        });
    });
    tx::sign_envelope(client, &prepared).encode_to_vec()
}

#[test]
fn an_endorser_counts_once_however_it_is_named() {
    for alg in ALGS {
        // Two distinct Org1 peers, or Org2's peer.
        let n = net_with(alg, "OR(AND('Org1MSP.peer','Org1MSP.peer'),'Org2MSP.peer')");
        // A prepared transaction endorsed by Org1's peer0 alone (each call a new transaction).
        let prepared = |key: &str| {
            let (sp, _) = proposal(&n.client, "put", &[key, "1"]);
            let snap = n.ledger.state().snapshot().unwrap();
            let r = n.e1.process(&sp, &snap, &|_| Ok(false), NOW).unwrap();
            tx::assemble(&sp, std::slice::from_ref(&r)).unwrap()
        };
        // peer0 of Org1 once more, its certificate in another PEM encoding (CRLF line ends): the same
        // certificate must not count as a second endorser.
        let pem = n.e1.signer().serialized_identity();
        let si = ledger_types::proto::SerializedIdentity::decode(pem).unwrap();
        let crlf = String::from_utf8(si.id_bytes.to_vec()).unwrap().replace('\n', "\r\n");
        let other_encoding = tx::serialize_identity(&si.mspid, crlf.as_bytes());
        assert_ne!(other_encoding, pem);
        let twice = with_extra_endorsement(&n.client, &prepared("a"), other_encoding, n.e1.signer().as_ref());
        // The same endorsement named twice with the same bytes counts once too.
        let repeated =
            with_extra_endorsement(&n.client, &prepared("b"), pem.to_vec(), n.e1.signer().as_ref());
        // Org2's peer beside it satisfies the policy (the check is not simply failing).
        let org2 = n.e2.signer();
        let two = with_extra_endorsement(
            &n.client,
            &prepared("c"),
            org2.serialized_identity().to_vec(),
            org2.as_ref(),
        );
        assert_eq!(
            n.commit(vec![twice, repeated, two]),
            vec![C::EndorsementPolicyFailure, C::EndorsementPolicyFailure, C::Valid],
            "{alg}"
        );
    }
}

#[test]
fn certificates_are_judged_at_the_transactions_time_never_the_clock() {
    // The test material's certificates are valid from NOW - 360 s to NOW - 60 s + one day, expired long before the
    // machine's clock: every valid transaction of these tests was judged at its own time.
    let n = net("ANY");
    assert_eq!(n.commit(vec![n.put("a", "1")]), vec![C::Valid]);
    let day = 24 * 3600;
    let window = ledger_types::block::TX_TIME_WINDOW_SECS;
    let expiry = day - 60; // certificates were made at NOW - 60 s (valid from 5 min before), for one day
    // A transaction from before the client's certificate was valid is refused, in a block of a time when
    // the certificate is valid.
    let early = n.tx_anyway(&proposal_at(&n.client, "put", &["c", "1"], -400).0);
    assert_eq!(n.commit_at(vec![early], NOW), vec![C::BadCreatorSignature]);
    // Within the window around the block's time, the transaction's own time decides; a client cannot
    // backdate a transaction past the window (to a time when its certificate was still valid).
    let block_time = NOW + expiry;
    let backdated = n.tx_anyway(&proposal_at(&n.client, "put", &["d", "1"], expiry - window - 20).0);
    let before_expiry = n.tx_anyway(&proposal_at(&n.client, "put", &["e", "1"], expiry - 10).0);
    let after_expiry = n.tx_anyway(&proposal_at(&n.client, "put", &["f", "1"], expiry + 10).0);
    assert_eq!(
        n.commit_at(vec![backdated, before_expiry, after_expiry], block_time),
        vec![C::BadChannelHeader, C::Valid, C::BadCreatorSignature]
    );
    // The endorser refuses a proposal far from its own clock, with a message about the client's clock.
    let snap = n.ledger.state().snapshot().unwrap();
    let (sp, _) = proposal_at(&n.client, "put", &["h", "1"], -(window + 1));
    match n.e1.process(&sp, &snap, &|_| Ok(false), NOW) {
        Err(EndorseError::BadProposal(m)) => assert!(m.contains("clock"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // An orderer signature is judged at the block's time, and the time is covered by the signature.
    let ok = n.tx(&proposal(&n.client, "put", &["g", "1"]).0, &[&n.e1]);
    let expired_orderer =
        block_at(&n.orderer, n.ledger.height(), n.ledger.head_hash(), vec![ok.clone()], NOW + 2 * day);
    assert!(matches!(n.ledger.commit(expired_orderer), Err(CommitError::Unsigned(_))));
    let mut moved = block_at(&n.orderer, n.ledger.height(), n.ledger.head_hash(), vec![ok.clone()], NOW);
    edit_signed_metadata(&mut moved, |time| time.seconds += 1);
    assert_eq!(moved.time_secs(), Some(NOW + 1));
    assert!(matches!(n.ledger.commit(moved), Err(CommitError::Unsigned(_))));
    assert_eq!(n.commit(vec![ok]), vec![C::Valid]);
    drop(snap);
}

#[test]
fn blocks_must_be_signed_by_a_consenter_and_extend_the_chain() {
    let n = net("ANY");
    let mut unsigned = block_at(&n.orderer, 1, n.ledger.head_hash(), vec![n.put("a", "1")], NOW);
    ledger_types::block::stamp(
        &mut unsigned,
        Some(ledger_types::proto::Timestamp { seconds: NOW, nanos: 0 }),
    );
    assert!(matches!(n.ledger.commit(unsigned), Err(CommitError::Unsigned(1))));
    let mut self_signed = block_at(&n.orderer, 1, n.ledger.head_hash(), vec![n.put("a", "1")], NOW);
    ledger_types::block::stamp(
        &mut self_signed,
        Some(ledger_types::proto::Timestamp { seconds: NOW, nanos: 0 }),
    );
    ledger_types::block::sign(&mut self_signed, &n.client);
    assert!(matches!(n.ledger.commit(self_signed), Err(CommitError::Unsigned(1))));
    let wrong_prev = block_at(&n.orderer, 1, Hash32::of(b"nope"), vec![], NOW);
    assert!(matches!(n.ledger.commit(wrong_prev), Err(CommitError::Link(_))));
    assert_eq!(n.ledger.height(), 1, "nothing was committed");
}

#[test]
fn lost_state_is_rebuilt_from_blocks() {
    let n = net("ANY");
    n.commit(vec![n.put("a", "1"), n.put("b", "2")]);
    n.commit(vec![n.put("a", "3")]);
    let before = (value(n.ledger.state(), "kv", "a"), value(n.ledger.state(), "kv", "b"));
    let Net { ledger, alg, .. } = n;
    let g = genesis(alg, "ANY");
    let blocks = ledger.into_blocks();
    // The state database was deleted: an empty one is rebuilt from the blocks.
    let reopened = PeerLedger::open(&g, blocks, MemState::default(), ids(alg), 1).unwrap();
    assert_eq!(reopened.height(), 3);
    let state = reopened.state();
    assert_eq!((value(state, "kv", "a"), value(state, "kv", "b")), before);
    assert_eq!(value(state, "kv", "a").unwrap().0, b"3");
}

/// Changes the block time inside `metadata[SIGNATURES]` without signing again.
fn edit_signed_metadata(
    block: &mut ledger_types::proto::Block,
    edit: impl FnOnce(&mut ledger_types::proto::Timestamp),
) {
    use ledger_types::fabric_protos::common::{BlockMetadataIndex, Metadata, OrdererBlockMetadata};
    use ledger_types::proto::ConsenterMetadata;
    let entry = &mut block.metadata.as_mut().unwrap().metadata[BlockMetadataIndex::Signatures as usize];
    let mut md = Metadata::decode(entry.as_ref()).unwrap();
    let mut obm = OrdererBlockMetadata::decode(md.value.as_ref()).unwrap();
    let mut cm = ConsenterMetadata::decode(obm.consenter_metadata.as_ref()).unwrap();
    edit(cm.timestamp.as_mut().unwrap());
    obm.consenter_metadata = cm.encode_to_vec().into();
    md.value = obm.encode_to_vec().into();
    *entry = md.encode_to_vec().into();
}

#[tokio::test]
async fn commit_status_waits_for_the_block() {
    let n = Arc::new(net("ANY"));
    let (sp, tx_id) = proposal(&n.client, "put", &["w", "1"]);
    let env = n.tx(&sp, &[&n.e1]);
    let waiter = {
        let n = n.clone();
        let id = tx_id.to_string();
        tokio::spawn(async move { n.ledger.wait_for_tx(&id).await.unwrap() })
    };
    tokio::task::yield_now().await;
    n.commit(vec![env]);
    assert_eq!(waiter.await.unwrap(), (C::Valid, 1));
    // Already committed: answers at once.
    assert_eq!(n.ledger.wait_for_tx(tx_id.as_str()).await.unwrap(), (C::Valid, 1));
}
