//! Unit tests of the shared chain rules.

use super::*;
use crate::conformance::{envelope, next_block, tx_id};
use ledger_types::block::BlockBuilder;
use ledger_types::proto::HeaderType;

#[test]
fn tx_ids_come_from_well_formed_endorser_transactions_only() {
    let config = Envelope {
        payload: TxPayload { header_type: HeaderType::Config as i32, ..Default::default() }.encode_to_vec(),
        signature: vec![],
    }
    .encode_to_vec();
    assert_eq!(envelope_tx_id(&config), None, "config transaction");
    assert_eq!(envelope_tx_id(b"\xff\xff"), None, "garbage");
    assert_eq!(envelope_tx_id(&envelope(&tx_id(5), 0)), Some(tx_id(5)));
}

#[test]
fn codes_missing_or_unknown_read_as_named_codes() {
    let envs = vec![envelope(&tx_id(1), 0), envelope(&tx_id(2), 0), envelope(&tx_id(1), 0)];
    let mut block = next_block(None, envs, &[]);
    if let Some(m) = block.metadata.as_mut() {
        m.tx_validation_codes = vec![TxValidationCode::Valid.as_u8(), 200];
    }
    let locs = block_tx_locations(&block);
    assert_eq!(locs.len(), 2, "the repeated id is listed once");
    assert_eq!(locs[0], (tx_id(1), TxLocation { block: 0, index: 0, code: TxValidationCode::Valid }));
    assert_eq!(locs[1].1.code, TxValidationCode::InvalidOtherReason, "unknown code byte");
    assert_eq!(code_at(&[], 0), TxValidationCode::NotValidated, "missing code");
}

#[test]
fn next_block_rules_name_what_is_wrong() {
    let g = BlockBuilder::new(0, Hash32::ZERO).build();
    assert!(check_next(&g, 0, None).is_ok());
    let e = check_next(&g, 1, Some(g.header_hash())).unwrap_err().to_string();
    assert!(e.contains("block number 0 but the store holds 1 blocks"), "{e}");
    let b = BlockBuilder::new(1, Hash32::of(b"x")).build();
    let e = check_next(&b, 1, Some(g.header_hash())).unwrap_err().to_string();
    assert!(e.contains("previous hash") && e.contains(&g.header_hash().to_hex()), "{e}");
}
