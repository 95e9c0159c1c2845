use crate::support::*;
use contract::samples::KvContract;
use ledger_types::identity;
use ledger_types::proto::SignedProposal;
use ledger_types::store::{BlockStore, StateSnapshot, StateStore};
use ledger_types::tx::{self, DecodedTx, Signer};
use ledger_types::{Hash32, TxValidationCode as C};
use msp::Algorithm;
use peer::endorser::{EndorseError, Endorser};
use peer::ledger::{CommitError, PeerLedger};
use peer::validator::ChannelRules;
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
    let rules = Arc::new(ChannelRules::from_config(ledger.config()).unwrap());
    let registry = ledger.registry().clone();
    let endorser = |msp: &str| {
        Endorser::new(
            rules.clone(),
            ids(alg),
            vec![Arc::new(KvContract)],
            Arc::new(TestSigner::new(alg, msp, "peer0")),
        )
        .with_registry(registry.clone())
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
        let p = ledger_types::proto::Proposal::decode(sp.proposal_bytes.as_slice()).unwrap();
        let header = p.header.unwrap();
        let checked = peer::endorser::CheckedProposal {
            tx_id: ledger_types::TxId::parse(&header.tx_id).unwrap(),
            creator: ids(self.alg).validate(&header.creator, NOW).unwrap(),
            header,
            input: p.input.unwrap_or_default(),
            creator_registered: false,
        };
        let snap = self.ledger.state().snapshot().unwrap();
        let r = self.e1.sign(self.e1.run(checked, sp, &snap, &|_| Ok(false)).unwrap());
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
        let last = env.signature.len() - 1;
        env.signature[last] ^= 1;
        let bad_sig = env.encode_to_vec();
        // Endorsement signature forged: policy no longer met.
        let mut forged = payload.clone();
        let last = forged.endorsements[0].signature.len() - 1;
        forged.endorsements[0].signature[last] ^= 1;
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
            Arc::new(ChannelRules::from_config(n.ledger.config()).unwrap()),
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
                C::BadCreator,
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

#[test]
fn an_endorser_counts_once_however_it_is_named() {
    for alg in ALGS {
        // Two distinct Org1 peers, or Org2's peer.
        let n = net_with(alg, "OR(AND('Org1MSP.peer','Org1MSP.peer'),'Org2MSP.peer')");
        // Register the client and both peers (a valid transaction carrying them in full).
        let (sp, _) = proposal(&n.client, "put", &["r", "1"]);
        let reg = n.tx(&sp, &[&n.e1, &n.e2]);
        assert_eq!(n.commit(vec![reg]), vec![C::Valid]);
        // peer0 of Org1 now names itself by reference; the same certificate named in full beside it must
        // not count as a second endorser.
        let (sp, _) = proposal(&n.client, "put", &["a", "1"]);
        let snap = n.ledger.state().snapshot().unwrap();
        let by_ref = n.e1.process(&sp, &snap, &|_| Ok(false), NOW).unwrap();
        drop(snap);
        let mut payload = tx::assemble(&sp, std::slice::from_ref(&by_ref)).unwrap();
        assert!(matches!(identity::form(&payload.endorsements[0].endorser), identity::Form::Reference(_)));
        let full = n.e1.signer().serialized_identity().to_vec();
        let signature = n.e1.signer().sign(&tx::endorsement_message(&payload.response_payload, &full));
        payload.endorsements.push(ledger_types::proto::Endorsement { endorser: full, signature });
        let twice = tx::sign_envelope(&n.client, &payload).encode_to_vec();
        assert_eq!(n.commit(vec![twice]), vec![C::EndorsementPolicyFailure], "{alg}");
        assert!(value(n.ledger.state(), "kv", "a").is_none());
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
    assert_eq!(n.commit_at(vec![early], NOW), vec![C::BadCreator]);
    // Within the window around the block's time, the transaction's own time decides; a client cannot
    // backdate a transaction past the window (to a time when its certificate was still valid).
    let block_time = NOW + expiry;
    let backdated = n.tx_anyway(&proposal_at(&n.client, "put", &["d", "1"], expiry - window - 20).0);
    let before_expiry = n.tx_anyway(&proposal_at(&n.client, "put", &["e", "1"], expiry - 10).0);
    let after_expiry = n.tx_anyway(&proposal_at(&n.client, "put", &["f", "1"], expiry + 10).0);
    assert_eq!(
        n.commit_at(vec![backdated, before_expiry, after_expiry], block_time),
        vec![C::BadChannelHeader, C::Valid, C::BadCreator]
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
    moved.metadata.as_mut().unwrap().timestamp.as_mut().unwrap().seconds += 1;
    assert!(matches!(n.ledger.commit(moved), Err(CommitError::Unsigned(_))));
    assert_eq!(n.commit(vec![ok]), vec![C::Valid]);
    drop(snap);
}

#[test]
fn blocks_must_be_signed_by_a_consenter_and_extend_the_chain() {
    let n = net("ANY");
    let mut unsigned = block_at(&n.orderer, 1, n.ledger.head_hash(), vec![n.put("a", "1")], NOW);
    unsigned.metadata.as_mut().unwrap().signatures.clear();
    assert!(matches!(n.ledger.commit(unsigned), Err(CommitError::Unsigned(1))));
    let mut self_signed = block_at(&n.orderer, 1, n.ledger.head_hash(), vec![n.put("a", "1")], NOW);
    let s = n.client.sign(&ledger_types::block::block_signing_bytes(&self_signed));
    self_signed.metadata.as_mut().unwrap().signatures =
        vec![ledger_types::proto::MetadataSignature { signer: n.client.id.clone(), signature: s }];
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
    // The identities the blocks registered are registered again.
    let client = TestSigner::new(alg, "Org1MSP", "User1");
    assert!(reopened.registry().knows(&client.id));
    assert_eq!(reopened.registry().len(), 2, "the client and the endorser");
}

#[test]
fn a_state_from_before_identity_registrations_is_rebuilt() {
    let n = net("ANY");
    n.commit(vec![n.put("a", "1")]);
    n.commit(vec![n.put("b", "2")]);
    // What an earlier version left: the contract's state at the same savepoint, no `_identities` namespace.
    let old = MemState::default();
    let mut rows = ledger_types::store::UpdateBatch::default();
    for (k, v) in n.ledger.state().snapshot().unwrap().range("kv", "", "", 100).unwrap() {
        rows.put("kv", &k, v.value, v.version);
    }
    old.apply(&rows, 2).unwrap();
    let Net { ledger, alg, .. } = n;
    let reopened = PeerLedger::open(&genesis(alg, "ANY"), ledger.into_blocks(), old, ids(alg), 1).unwrap();
    assert_eq!(reopened.registry().len(), 2, "registrations re-derived from the blocks");
    assert_eq!(value(reopened.state(), "kv", "b").unwrap().0, b"2");
}

/// A proposal naming `client` by reference.
fn ref_proposal(client: &TestSigner, function: &str, args: &[&str]) -> SignedProposal {
    let (sp, _) = proposal(client, function, args);
    let p = ledger_types::proto::Proposal::decode(sp.proposal_bytes.as_slice()).unwrap();
    let h = p.header.unwrap();
    let creator = identity::reference(&client.id).unwrap();
    tx::ProposalBuilder::new(ledger_types::ChannelId::parse("iot").unwrap(), "kv", function)
        .args(args.iter().map(|a| a.as_bytes().to_vec()))
        .sign_as(client, creator, h.nonce, h.timestamp.unwrap())
        .0
}

#[test]
fn identity_references_resolve_only_after_an_earlier_block_registered_them() {
    for alg in ALGS {
        references_resolve_only_after_registration(alg);
    }
}

fn references_resolve_only_after_registration(alg: Algorithm) {
    let a = net_with(alg, "ANY");
    let b = net_with(alg, "ANY");
    // A fresh ledger's endorser does not know the reference: the client has to send its identity in full.
    let snap = a.ledger.state().snapshot().unwrap();
    match a.e1.process(&ref_proposal(&a.client, "put", &["x", "0"]), &snap, &|_| Ok(false), NOW) {
        Err(EndorseError::UnknownIdentity(m)) => assert!(m.contains(identity::UNKNOWN_REFERENCE), "{m}"),
        other => panic!("expected an unknown reference, got {other:?}"),
    }
    drop(snap);
    // A valid transaction carrying the creator and the endorser in full registers both.
    let full = a.put("a", "1");
    assert_eq!(a.commit(vec![full.clone()]), vec![C::Valid]);
    assert!(a.ledger.registry().knows(&a.client.id));
    assert!(a.ledger.registry().knows(a.e1.signer().serialized_identity()));
    // From then on both may be named by reference (no certificate in the transaction), and that is valid.
    let r1 = a.tx(&ref_proposal(&a.client, "put", &["b", "2"]), &[&a.e1]);
    let d = DecodedTx::decode(&r1).unwrap();
    assert!(matches!(identity::form(&d.header.creator), identity::Form::Reference(_)));
    assert!(matches!(identity::form(&d.payload.endorsements[0].endorser), identity::Form::Reference(_)));
    let carries = |tx: &[u8], id: &[u8]| tx.windows(id.len()).any(|w| w == id);
    assert!(carries(&full, &a.client.id) && !carries(&r1, &a.client.id));
    assert!(!carries(&r1, a.e1.signer().serialized_identity()));
    assert_eq!(a.commit(vec![r1]), vec![C::Valid]);
    assert_eq!(value(a.ledger.state(), "kv", "b").unwrap().0, b"2");
    // A ledger that has not registered them marks such transactions invalid, also when a transaction of the
    // same block carries the identities in full: registrations count from the next block on.
    let r2 = a.tx(&ref_proposal(&a.client, "put", &["c", "3"]), &[&a.e1]);
    let r3 = a.tx(&ref_proposal(&a.client, "put", &["d", "4"]), &[&a.e1]);
    let r4 = a.tx(&ref_proposal(&a.client, "put", &["e", "5"]), &[&a.e1]);
    assert_eq!(b.commit(vec![r2]), vec![C::BadCreator]);
    assert_eq!(b.commit(vec![b.put("f", "6"), r3]), vec![C::Valid, C::BadCreator]);
    assert_eq!(b.commit(vec![r4]), vec![C::Valid]);
    // A reference stating another MSP than the registered identity's does not resolve.
    let mut wrong = ledger_types::proto::SerializedIdentity::decode(
        identity::reference(&b.client.id).unwrap().as_slice(),
    )
    .unwrap();
    wrong.msp_id = "Org2MSP".into();
    assert!(b.ledger.registry().resolve(&wrong.encode_to_vec()).is_err());
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
