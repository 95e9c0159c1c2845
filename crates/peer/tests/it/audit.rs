use crate::support::*;
use contract::samples::KvContract;
use ledger_types::BlockExt;
use ledger_types::store::{BlockStore, StateStore};
use ledger_types::tx;
use peer::audit::{AuditError, audit_chain};
use peer::endorser::Endorser;
use peer::ledger::PeerLedger;
use peer::validator::{ChannelRules, RulesCell};
use prost::Message;
use std::sync::Arc;

fn chain() -> (PeerLedger<MemBlocks, MemState>, Vec<ledger_types::proto::Block>) {
    let alg = msp::Algorithm::Ed25519;
    let ledger =
        PeerLedger::open(&genesis(alg, "ANY"), MemBlocks::default(), MemState::default(), ids(alg), 1)
            .unwrap();
    let rules = Arc::new(RulesCell::new(ChannelRules::from_config(ledger.config()).unwrap()));
    let e = Endorser::new(
        rules,
        ids(alg),
        vec![Arc::new(KvContract)],
        Arc::new(TestSigner::new(alg, "Org1MSP", "peer0")),
    );
    let client = TestSigner::new(alg, "Org2MSP", "User1");
    for round in 0..3 {
        let mut envs = Vec::new();
        for k in 0..4 {
            let (sp, _) = proposal(&client, "incr", &[&format!("k{}", k % 2)]);
            let snap = ledger.state().snapshot().unwrap();
            let r = e.process(&sp, &snap, &|id| ledger.contains_tx(id), NOW).unwrap();
            envs.push(tx::sign_envelope(&client, &tx::assemble(&sp, &[r]).unwrap()).encode_to_vec());
        }
        let _ = round;
        ledger.commit(block_at(&orderer(alg), ledger.height(), ledger.head_hash(), envs, NOW)).unwrap();
    }
    let blocks = (0..ledger.height()).map(|n| ledger.blocks().block(n).unwrap().unwrap()).collect();
    (ledger, blocks)
}

fn audit(
    blocks: &[ledger_types::proto::Block],
    state: &MemState,
) -> Result<peer::audit::AuditReport, AuditError> {
    let snap = state.snapshot().unwrap();
    audit_chain(
        blocks.iter().cloned().map(Ok),
        ids(msp::Algorithm::Ed25519).as_ref(),
        &MemState::default(),
        Some(&snap),
        2,
    )
}

#[test]
fn a_sound_chain_passes_and_matches_the_ledger() {
    let (ledger, blocks) = chain();
    let r = audit(&blocks, &MemState::default()).map(|_| ()).unwrap_err();
    assert!(matches!(r, AuditError::State(_)), "an empty state database differs from the blocks");
    let live = {
        // The ledger's own state.
        let snap = ledger.state().snapshot().unwrap();
        audit_chain(
            blocks.iter().cloned().map(Ok),
            ids(msp::Algorithm::Ed25519).as_ref(),
            &MemState::default(),
            Some(&snap),
            2,
        )
        .unwrap()
    };
    assert_eq!(live.height, 4);
    assert_eq!(live.head_hash, ledger.head_hash());
    assert_eq!(live.commit_hash, ledger.commit_hash());
    assert_eq!(live.transactions, 12);
    assert!(live.valid >= 3 && live.valid < 12, "incr on two keys conflicts within blocks: {}", live.valid);
}

#[test]
fn damage_is_reported_at_the_first_bad_block() {
    let (ledger, blocks) = chain();
    let snap = ledger.state().snapshot().unwrap();
    let run = |b: Vec<ledger_types::proto::Block>| {
        audit_chain(
            b.into_iter().map(Ok),
            ids(msp::Algorithm::Ed25519).as_ref(),
            &MemState::default(),
            Some(&snap),
            1,
        )
        .unwrap_err()
    };
    let mut flipped = blocks.clone();
    let entry = &mut flipped[2].data.as_mut().unwrap().data[1];
    let mut bytes = entry.to_vec();
    bytes[5] ^= 0x40;
    *entry = bytes.into();
    assert!(matches!(run(flipped), AuditError::BadBlock { block: 2, .. }));

    let mut recoded = blocks.clone();
    let mut codes = recoded[3].validation_codes().to_vec();
    codes[0] = if codes[0] == 0 { 11 } else { 0 };
    recoded[3].set_validation_codes(codes);
    let e = run(recoded);
    assert!(matches!(&e, AuditError::BadBlock { block: 3, what } if what.contains("re-derived")), "{e}");

    let mut unsigned = blocks.clone();
    let time = unsigned[1].time();
    ledger_types::block::stamp(&mut unsigned[1], time);
    assert!(matches!(run(unsigned), AuditError::BadBlock { block: 1, .. }));

    let mut missing = blocks.clone();
    missing.remove(2);
    assert!(matches!(run(missing), AuditError::BadBlock { block: 2, .. }));
}
