//! Validation is a pure function of the block's bytes: blocks mixing honest signatures with adversarial
//! ones (bit flips, non-canonical `S`, `R` with a torsion component in creator and endorser signatures)
//! get the same validation codes and the same state updates on 1, 2, 3, 4 and 8 threads.

use crate::support::*;
use contract::samples::KvContract;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use ledger_store::MemStateStore;
use ledger_types::store::StateStore;
use ledger_types::tx::{self, Signer};
use ledger_types::{Hash32, TxValidationCode as C};
use msp::Algorithm;
use peer::endorser::Endorser;
use peer::identity::{Identities, SigCheck, ValidatedIdentity};
use peer::known::{
    KNOWN_MESSAGE_MAX, KNOWN_SIGNATURES, KnownSignatures, RecognisingIdentities, RecordingSigner,
};
use peer::validator::{ChannelRules, RulesCell, validate_block};
use proptest::prelude::*;
use prost::Message;
use sha2::{Digest, Sha512};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// An Ed25519 signature by `signer` over `msg` whose `R` carries a torsion point: valid under the
/// cofactored (ZIP-215) rule, refused by cofactorless verification, and accepted by a cofactorless batch
/// one time in eight (the fork this test guards against).
fn torsion_signature(signer: &TestSigner, msg: &[u8], nonce: u64) -> Vec<u8> {
    let msp::SigningKey::Ed25519(k) = signer.identity().signing_key() else { panic!("ed25519 key") };
    let a = k.to_scalar();
    let a_enc = k.verifying_key().to_bytes();
    let r = Scalar::from(nonce.wrapping_mul(0x9e37_79b9) | 1);
    let r_enc = (B * r + EIGHT_TORSION[1]).compress().to_bytes();
    let mut h = Sha512::new();
    h.update(r_enc);
    h.update(a_enc);
    h.update(msg);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    [r_enc, (r + k * a).to_bytes()].concat()
}

/// `S + ℓ`: the same signature with a non-canonical scalar.
fn non_canonical_s(mut sig: Vec<u8>) -> Vec<u8> {
    const ELL: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(sig[32 + i]) + u16::from(ELL[i]) + carry;
        sig[32 + i] = v as u8;
        carry = v >> 8;
    }
    sig
}

/// Builds a block of `kinds.len()` transactions: kind 0 honest, 1 creator signature flipped, 2 creator
/// signature with a torsion `R`, 3 endorsement with a torsion `R`, 4 creator `S` non-canonical, 5
/// endorsement flipped, 6 endorsement signature taken from the transaction before (a signature of the
/// endorser's, over another message).
fn block(kinds: &[u8], keys: &[u8]) -> ledger_types::proto::Block {
    let alg = Algorithm::Ed25519;
    block_endorsed_by(kinds, keys, Arc::new(TestSigner::new(alg, "Org1MSP", "peer0")))
}

/// [`block`] with the endorsements signed by `signer` (Org1's peer0).
fn block_endorsed_by(kinds: &[u8], keys: &[u8], signer: Arc<dyn Signer>) -> ledger_types::proto::Block {
    let alg = Algorithm::Ed25519;
    let rules = Arc::new(RulesCell::new(ChannelRules::from_config(&config(alg, "ANY")).unwrap()));
    let peer0 = TestSigner::new(alg, "Org1MSP", "peer0");
    let endorser = Endorser::new(rules, ids(alg), vec![Arc::new(KvContract)], signer);
    let client = TestSigner::new(alg, "Org2MSP", "User1");
    let state = MemStateStore::default();
    let snap = state.snapshot().unwrap();
    let mut envs = Vec::new();
    let mut previous = None;
    for (i, (&kind, &key)) in kinds.iter().zip(keys).enumerate() {
        let (sp, _) = proposal(&client, "incr", &[&format!("k{}", key % 4)]);
        let mut r = endorser.process(&sp, &snap, &|_| Ok(false), NOW).unwrap();
        let own = r.endorsement.as_ref().unwrap().signature.clone();
        if kind == 3 || kind == 5 || (kind == 6 && previous.is_some()) {
            let e = r.endorsement.as_mut().unwrap();
            let msg = ledger_types::fabric_protos::hash::endorsement_signed_bytes(&r.payload, &e.endorser);
            e.signature = match kind {
                3 => torsion_signature(&peer0, &msg, i as u64).into(),
                5 => flip(e.signature.to_vec()).into(),
                _ => previous.clone().unwrap_or_default(),
            };
        }
        previous = Some(own);
        let payload = tx::assemble(&sp, &[r]).unwrap();
        let mut env = tx::sign_envelope(&client, &payload);
        env.signature = match kind {
            1 => flip(env.signature.to_vec()).into(),
            2 => torsion_signature(&client, &env.payload, i as u64).into(),
            4 => non_canonical_s(env.signature.to_vec()).into(),
            _ => env.signature,
        };
        envs.push(env.encode_to_vec());
    }
    block_at(&orderer(alg), 1, Hash32::of(b"genesis"), envs, NOW)
}

fn flip(mut sig: Vec<u8>) -> Vec<u8> {
    sig[40] ^= 4;
    sig
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn codes_and_state_updates_do_not_depend_on_the_thread_count(
        kinds in prop::collection::vec(0u8..6, 64..160),
        keys in prop::collection::vec(any::<u8>(), 160),
    ) {
        let alg = Algorithm::Ed25519;
        let b = block(&kinds, &keys);
        let rules = ChannelRules::from_config(&config(alg, "ANY")).unwrap();
        let ids = ids(alg);
        let runs: Vec<_> = [1usize, 2, 3, 4, 8]
            .into_iter()
            .map(|threads| {
                let state = MemStateStore::default();
                let snap = state.snapshot().unwrap();
                let v = validate_block(&b, &rules, ids.as_ref(), &snap, &|_| Ok(false), threads)
                    .unwrap();
                (v.codes, v.batch)
            })
            .collect();
        for (codes, batch) in &runs[1..] {
            prop_assert_eq!(codes, &runs[0].0);
            prop_assert_eq!(batch, &runs[0].1);
        }
        // The verdicts are the rule's: torsion R is valid, flips and non-canonical S are not.
        for (kind, code) in kinds.iter().zip(&runs[0].0) {
            match kind {
                1 | 4 => prop_assert_eq!(*code, C::BadCreatorSignature),
                5 => prop_assert_eq!(*code, C::EndorsementPolicyFailure),
                _ => prop_assert!(matches!(code, C::Valid | C::MvccReadConflict), "kind {kind}: {code:?}"),
            }
        }
    }
}

/// A peer checks block N+1's signatures while block N commits (`PeerLedger::precheck`): the codes and
/// updates are those of validation in one step, and a precheck made under rules that changed since (here: a
/// contract that was not defined yet) is not used but done again.
#[test]
fn a_block_checked_ahead_gets_the_codes_of_validation_in_one_step() {
    use peer::validator::{finish_block, precheck_block};
    let alg = Algorithm::Ed25519;
    let kinds: Vec<u8> = (0..96u8).map(|i| i % 6).collect();
    let keys: Vec<u8> = (0..96u8).collect();
    let b = block(&kinds, &keys);
    let ids = ids(alg);
    let rules = Arc::new(ChannelRules::from_config(&config(alg, "ANY")).unwrap());
    let mut before = (*rules).clone();
    before.policies.retain(|name, _| name == "_lifecycle");
    let before = Arc::new(before);
    let state = MemStateStore::default();
    let snap = state.snapshot().unwrap();
    let one_step = validate_block(&b, &rules, ids.as_ref(), &snap, &|_| Ok(false), 2).unwrap();
    assert!(one_step.codes.contains(&C::Valid));

    let ahead = precheck_block(&b, rules.clone(), ids.as_ref(), 2).unwrap();
    let v = finish_block(&b, &rules, Some(ahead), ids.as_ref(), &snap, &|_| Ok(false), 2).unwrap();
    assert_eq!((&v.codes, &v.batch), (&one_step.codes, &one_step.batch));

    // Under the rules before the contract was defined every transaction is refused ...
    let stale = precheck_block(&b, before.clone(), ids.as_ref(), 2).unwrap();
    let refused = validate_block(&b, &before, ids.as_ref(), &snap, &|_| Ok(false), 2).unwrap();
    assert!(!refused.codes.contains(&C::Valid));
    // ... and that precheck is not used once the rules are the new ones.
    let v = finish_block(&b, &rules, Some(stale), ids.as_ref(), &snap, &|_| Ok(false), 2).unwrap();
    assert_eq!((&v.codes, &v.batch), (&one_step.codes, &one_step.batch));
    // A precheck of another block is not used either.
    let other = block(&[0, 0], &[1, 2]);
    let wrong = precheck_block(&other, rules.clone(), ids.as_ref(), 2).unwrap();
    let v = finish_block(&b, &rules, Some(wrong), ids.as_ref(), &snap, &|_| Ok(false), 2).unwrap();
    assert_eq!(v.codes, one_step.codes);
}

/// Counts the signatures an [`Identities`] is asked to verify, and those that fail.
struct Counting {
    inner: Arc<dyn Identities>,
    verified: AtomicUsize,
    refused: AtomicUsize,
}

impl Counting {
    fn new(inner: Arc<dyn Identities>) -> Counting {
        Counting { inner, verified: AtomicUsize::new(0), refused: AtomicUsize::new(0) }
    }
    fn verified(&self) -> usize {
        self.verified.load(Ordering::Relaxed)
    }
    fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Identities for Counting {
    fn validate(&self, serialized: &[u8], at: i64) -> Result<Arc<ValidatedIdentity>, String> {
        self.inner.validate(serialized, at)
    }
    fn verify_batch(&self, items: &[SigCheck<'_>]) -> Vec<bool> {
        self.verified.fetch_add(items.len(), Ordering::Relaxed);
        let v = self.inner.verify_batch(items);
        self.refused.fetch_add(v.iter().filter(|ok| !**ok).count(), Ordering::Relaxed);
        v
    }
}

/// Signatures the process made (a peer's endorsements, through its `RecordingSigner`) or verified already
/// (an orderer's admission, the other peer's validation) are recognised instead of verified (`peer::known`):
/// the codes and updates are those of verifying every signature, and only signatures known over exactly those
/// bytes under exactly that certificate are skipped; the peer's signature moved to another transaction's
/// endorsement (kind 6), altered ones (3, 5) and creator signatures never seen are verified.
#[test]
fn signatures_made_or_verified_in_the_process_are_recognised_with_the_codes_of_verification() {
    let alg = Algorithm::Ed25519;
    let known = Arc::new(KnownSignatures::new(KNOWN_SIGNATURES));
    let signer: Arc<dyn Signer> =
        Arc::new(RecordingSigner::new(Arc::new(TestSigner::new(alg, "Org1MSP", "peer0")), known.clone()));
    let kinds: Vec<u8> = (0..98u8).map(|i| i % 7).collect();
    let keys: Vec<u8> = (0..98u8).collect();
    let b = block_endorsed_by(&kinds, &keys, signer.clone());
    assert_eq!(known.len(), 98, "every endorsement signature is remembered");
    let rules = ChannelRules::from_config(&config(alg, "ANY")).unwrap();
    let state = MemStateStore::default();
    let snap = state.snapshot().unwrap();
    let verified = validate_block(&b, &rules, ids(alg).as_ref(), &snap, &|_| Ok(false), 2).unwrap();
    let counting = Arc::new(Counting::new(ids(alg)));

    // Recognising only: the 98 creator signatures and the 42 endorsements of kinds 3, 5 and 6 are verified,
    // the 56 others recognised, and nothing is added.
    let recognising = RecognisingIdentities::recognising_only(counting.clone(), known.clone());
    let v = validate_block(&b, &rules, &recognising, &snap, &|_| Ok(false), 2).unwrap();
    assert_eq!((&v.codes, &v.batch), (&verified.codes, &verified.batch));
    for (kind, code) in kinds.iter().zip(&v.codes) {
        match kind {
            1 | 4 => assert_eq!(*code, C::BadCreatorSignature),
            5 | 6 => assert_eq!(*code, C::EndorsementPolicyFailure, "kind {kind}"),
            _ => assert!(matches!(code, C::Valid | C::MvccReadConflict), "kind {kind}: {code:?}"),
        }
    }
    assert_eq!(counting.verified(), 98 + 42);
    assert_eq!(known.len(), 98);

    // Remembering what verifies: the same 140 are verified once, and a second validation (the other peer of the
    // process, or an orderer's admission before it) verifies only those that failed.
    let remembering = RecognisingIdentities::new(counting.clone(), known.clone());
    let (before, refused_before) = (counting.verified(), counting.refused());
    let v = validate_block(&b, &rules, &remembering, &snap, &|_| Ok(false), 2).unwrap();
    assert_eq!((&v.codes, &v.batch), (&verified.codes, &verified.batch));
    let refused = counting.refused() - refused_before;
    assert_eq!(counting.verified() - before, 98 + 42);
    assert!(refused >= 14 + 14 + 28, "kinds 1, 4 (creators), 5 and 6 (endorsements) fail: {refused}");
    assert_eq!(known.len(), 98 + 140 - refused, "what verified is remembered, what failed is not");
    let before = counting.verified();
    let again = validate_block(&b, &rules, &remembering, &snap, &|_| Ok(false), 2).unwrap();
    assert_eq!((&again.codes, &again.batch), (&verified.codes, &verified.batch));
    assert_eq!(counting.verified() - before, refused, "only the failed ones are verified again");

    // A known signature over its very message, claimed by another certificate, is verified (and fails).
    let tx0 = tx::DecodedTx::decode(&b.data.as_ref().unwrap().data[0]).unwrap();
    let e = &tx0.action.as_ref().unwrap().endorsements[0];
    let msg: &[u8] = &e.signed_bytes;
    let mine = recognising.validate(signer.serialized_identity(), NOW).unwrap();
    let other =
        recognising.validate(TestSigner::new(alg, "Org2MSP", "peer0").serialized_identity(), NOW).unwrap();
    let before = counting.verified();
    let check = |id| SigCheck { identity: id, msg, sig: &e.signature };
    assert_eq!(recognising.verify_batch(&[check(&mine), check(&other)]), vec![true, false]);
    assert_eq!(counting.verified(), before + 1);
    // Nothing is recognised once forgotten: a recogniser with an empty memory verifies everything.
    let forgetful = RecognisingIdentities::recognising_only(
        counting.clone(),
        Arc::new(KnownSignatures::new(KNOWN_SIGNATURES)),
    );
    let again = validate_block(&b, &rules, &forgetful, &snap, &|_| Ok(false), 2).unwrap();
    assert_eq!(again.codes, verified.codes);
    assert_eq!(counting.verified(), before + 1 + 98 + 98);
}

/// The memory is bounded in entries and bytes, the oldest forgotten first; a long message is not remembered.
#[test]
fn a_memory_of_signatures_keeps_the_newest_within_its_bounds() {
    let alg = Algorithm::Ed25519;
    let known = Arc::new(KnownSignatures::new(3));
    let signer = RecordingSigner::new(Arc::new(TestSigner::new(alg, "Org1MSP", "peer0")), known.clone());
    let mine = ids(alg).validate(signer.serialized_identity(), NOW).unwrap();
    let cert = mine.cert_der.as_slice();
    let sigs: Vec<(Vec<u8>, Vec<u8>)> = (0..5u8).map(|i| (vec![i; 100], signer.sign(&[i; 100]))).collect();
    assert_eq!(known.len(), 3);
    let made: Vec<bool> = sigs.iter().map(|(m, s)| known.knows(cert, m, s)).collect();
    assert_eq!(made, vec![false, false, true, true, true]);
    assert!(!known.knows(cert, &sigs[4].0[..99], &sigs[4].1), "another message is not recognised");
    assert!(!known.knows(&cert[1..], &sigs[4].0, &sigs[4].1), "another certificate is not recognised");

    // Bytes: room for two entries of this size, not three.
    let one = known.bytes() / 3;
    let known = Arc::new(KnownSignatures::with_max_bytes(100, 2 * one + one / 2));
    let signer = RecordingSigner::new(Arc::new(TestSigner::new(alg, "Org1MSP", "peer0")), known.clone());
    let sigs: Vec<(Vec<u8>, Vec<u8>)> = (0..3u8).map(|i| (vec![i; 100], signer.sign(&[i; 100]))).collect();
    assert_eq!((known.len(), known.bytes()), (2, 2 * one));
    assert!(!known.knows(cert, &sigs[0].0, &sigs[0].1) && known.knows(cert, &sigs[2].0, &sigs[2].1));
    let long = vec![7u8; KNOWN_MESSAGE_MAX + 1];
    let sig = signer.sign(&long);
    assert!(!known.knows(cert, &long, &sig), "a long message is not remembered");
    assert_eq!(known.len(), 2);
}

/// A signer whose key does not belong to its certificate: signs with one identity's key, claims another's.
struct Mismatched {
    claims: TestSigner,
    signs: TestSigner,
}

impl Signer for Mismatched {
    fn serialized_identity(&self) -> &[u8] {
        self.claims.serialized_identity()
    }
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.signs.sign(msg)
    }
}

/// A signature made with a key that is not the certificate's is not remembered: other processes' verification
/// refuses it, so this one must too.
#[test]
fn a_key_that_is_not_its_certificate_s_is_not_remembered() {
    let alg = Algorithm::Ed25519;
    let known = Arc::new(KnownSignatures::new(KNOWN_SIGNATURES));
    let wrong = Mismatched {
        claims: TestSigner::new(alg, "Org1MSP", "peer0"),
        signs: TestSigner::new(alg, "Org1MSP", "User1"),
    };
    let signer = RecordingSigner::new(Arc::new(wrong), known.clone());
    let sig = signer.sign(b"an endorsement");
    assert!(known.is_empty(), "nothing is remembered for a mismatched key");
    let ids = RecognisingIdentities::new(ids(alg), known.clone());
    let claimed = ids.validate(signer.serialized_identity(), NOW).unwrap();
    assert!(!ids.verify(&claimed, b"an endorsement", &sig), "verification refuses it");
    // The same with a matching key is remembered (the probe signature is not).
    let right = RecordingSigner::new(Arc::new(TestSigner::new(alg, "Org1MSP", "peer0")), known.clone());
    let sig = right.sign(b"an endorsement");
    assert_eq!(known.len(), 1);
    assert!(known.knows(&claimed.cert_der, b"an endorsement", &sig));
}
