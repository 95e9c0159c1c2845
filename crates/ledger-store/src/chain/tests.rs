//! Unit tests of the shared chain rules.

use super::*;
use crate::conformance::{envelope, next_block, tx_id};
use ledger_types::block::BlockBuilder;
use ledger_types::proto::{ChannelHeader, Header, HeaderType};

#[test]
fn tx_ids_come_from_well_formed_endorser_transactions_only() {
    let header = ChannelHeader { r#type: HeaderType::Config as i32, ..Default::default() };
    let payload = Payload {
        header: Some(Header {
            channel_header: header.encode_to_vec().into(),
            signature_header: vec![].into(),
        }),
        data: vec![].into(),
    };
    let config =
        Envelope { payload: payload.encode_to_vec().into(), signature: vec![].into() }.encode_to_vec();
    assert_eq!(envelope_tx_id(&config), None, "config transaction");
    assert_eq!(envelope_tx_id(b"\xff\xff"), None, "garbage");
    assert_eq!(envelope_tx_id(&envelope(&tx_id(5), 0)), Some(tx_id(5)));
}

#[test]
fn codes_missing_or_unknown_read_as_named_codes() {
    let envs = vec![envelope(&tx_id(1), 0), envelope(&tx_id(2), 0), envelope(&tx_id(1), 0)];
    let mut block = next_block(None, envs, &[]);
    block.set_validation_codes(vec![TxValidationCode::Valid.as_u8(), 200]);
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

#[test]
fn the_in_place_reading_agrees_with_a_full_decode_on_unusual_shapes() {
    let good = envelope(&tx_id(7), 3);
    // A repeated field goes through the full decode (protobuf: the last one wins).
    let mut twice = good.clone();
    twice.extend_from_slice(&good);
    assert!(matches!(fast_tx_id(&twice), Fast::Decode));
    assert_eq!(envelope_tx_id(&twice), decoded_tx_id(&twice));
    // The payload field with another wire type, a truncated envelope, a group.
    assert!(matches!(fast_tx_id(&[0x08, 0x01]), Fast::None), "payload as a varint");
    assert_eq!(envelope_tx_id(&good[..good.len() - 1]), None, "truncated");
    assert!(matches!(fast_tx_id(&[0x1b, 0x1c]), Fast::Decode), "a group");
    assert_eq!(envelope_tx_id(&[]), None, "empty");
}

proptest::proptest! {
    /// Whatever id a full decode finds, the in-place reading finds too (an indexed id is never missed), and
    /// when both find one it is the same.
    #[test]
    fn the_in_place_reading_never_misses_or_changes_an_id(
        seed in 0u64..1000,
        filler in 0usize..40,
        flips in proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 0..3),
        cut in proptest::option::of(0usize..4096),
    ) {
        let mut bytes = envelope(&tx_id(seed), filler);
        for (at, x) in flips {
            let n = bytes.len();
            bytes[at % n] ^= x;
        }
        if let Some(c) = cut {
            let n = bytes.len();
            bytes.truncate(c % (n + 1));
        }
        let full = decoded_tx_id(&bytes);
        let fast = envelope_tx_id(&bytes);
        if let Some(id) = &full {
            proptest::prop_assert_eq!(fast.as_ref(), Some(id));
        }
    }
}
