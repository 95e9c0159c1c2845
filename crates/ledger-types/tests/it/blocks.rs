use ledger_types::BlockExt;
use ledger_types::block::{BlockBuilder, LinkError};
use ledger_types::config::{config_from_genesis, genesis_block};
use ledger_types::proto::{BatchConfig, ChannelConfig, Consenter, ContractDefinition, OrgConfig};
use ledger_types::{Hash32, TxValidationCode};
use proptest::prelude::*;

pub(crate) fn sample_config() -> ChannelConfig {
    let org = |n: &str| OrgConfig {
        msp_id: format!("{n}MSP"),
        name: n.into(),
        root_certs: vec![vec![1, 2, 3]],
        tls_root_certs: vec![vec![4]],
        peer_endpoints: vec![],
    };
    ChannelConfig {
        channel_id: "iot".into(),
        orgs: vec![org("Org1"), org("Org2")],
        orderer_orgs: vec![org("Orderer")],
        consenters: (1..=3)
            .map(|id| Consenter { id, host: "127.0.0.1".into(), port: 7050 + id as u32, identity: vec![] })
            .collect(),
        batch: Some(BatchConfig {
            max_message_count: 500,
            preferred_max_bytes: 2 << 20,
            absolute_max_bytes: 10 << 20,
            batch_timeout_ms: 20,
        }),
        readers: vec!["Org1MSP".into(), "Org2MSP".into()],
        writers: vec!["Org1MSP".into(), "Org2MSP".into()],
        admins: vec!["Org1MSP".into()],
        contracts: vec![ContractDefinition {
            name: "ipe".into(),
            endorsement_policy: "ANY".into(),
            version: "1".into(),
        }],
    }
}

#[test]
fn chain_links_hold_and_breaks_are_named() {
    let g = BlockBuilder::new(0, Hash32::ZERO).build();
    let b1 = BlockBuilder::new(1, g.header_hash()).push_envelope(vec![1]).build();
    assert_eq!(b1.check_links(Some(&g)), Ok(()));
    assert_eq!(b1.validation_codes(), &[TxValidationCode::NotValidated.as_u8()]);

    let wrong_prev = BlockBuilder::new(1, Hash32::of(b"x")).build();
    assert!(matches!(wrong_prev.check_links(Some(&g)), Err(LinkError::PreviousHash { number: 1, .. })));

    let skip = BlockBuilder::new(2, g.header_hash()).build();
    assert_eq!(skip.check_links(Some(&g)), Err(LinkError::Number { number: 2, previous: 0 }));

    let mut tampered = b1.clone();
    tampered.data.as_mut().unwrap().data[0] = vec![2].into();
    assert!(matches!(tampered.check_links(Some(&g)), Err(LinkError::DataHash { number: 1, .. })));

    assert_eq!(b1.check_links(None), Err(LinkError::Genesis));
}

#[test]
fn genesis_round_trips_the_config() {
    let cfg = sample_config();
    let g = genesis_block(&cfg).unwrap();
    assert_eq!(g.validation_codes(), &[TxValidationCode::Valid.as_u8()]);
    assert_eq!(config_from_genesis(&g).unwrap(), cfg);
    assert_eq!(
        cfg.endorsement_policy("ipe").unwrap().to_string(),
        "OutOf(1, 'Org1MSP.member', 'Org2MSP.member')"
    );
    assert!(cfg.endorsement_policy("nope").is_none());
}

#[test]
fn bad_configs_are_refused() {
    let mut c = sample_config();
    c.channel_id = "Bad Name".into();
    assert!(genesis_block(&c).is_err());
    let mut c = sample_config();
    c.consenters[1].id = 1;
    assert!(c.validate().is_err());
    let mut c = sample_config();
    c.contracts[0].endorsement_policy = "AND(".into();
    assert!(c.validate().is_err());
    // `_` names are reserved for the ledger's own state namespaces.
    let mut c = sample_config();
    c.contracts[0].name = "_lifecycle".into();
    assert!(c.validate().unwrap_err().to_string().contains("'_'"));
}

#[test]
fn validation_codes_round_trip() {
    for c in TxValidationCode::ALL {
        assert_eq!(TxValidationCode::from_u8(c.as_u8()), Some(c));
    }
    assert_eq!(TxValidationCode::from_u8(77), None);
    assert_eq!(TxValidationCode::MvccReadConflict.to_string(), "MVCC_READ_CONFLICT");
}

proptest! {
    #[test]
    fn any_data_change_breaks_the_data_hash(txs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8), i in 0usize..8, flip in any::<u8>()) {
        let b = BlockBuilder::new(0, Hash32::ZERO).envelopes(txs.clone()).build();
        prop_assert!(b.check_links(None).is_ok());
        let i = i % txs.len();
        let mut t = b.clone();
        let d = &mut t.data.as_mut().unwrap().data[i];
        let mut v = d.to_vec();
        if v.is_empty() { v.push(flip) } else { v[0] ^= flip.max(1) }
        *d = v.into();
        prop_assert!(t.check_links(None).is_err());
    }
}

#[test]
fn hash_hex_round_trips_and_rejects_bad_digits() {
    let h = Hash32::of(b"round trip");
    assert_eq!(Hash32::from_hex(&h.to_hex()), Some(h));
    assert_eq!(Hash32::from_hex(&h.to_hex().to_uppercase()), Some(h));
    assert_eq!(Hash32::from_hex(&"0f".repeat(32)).map(|h| h.0), Some([0x0f; 32]));
    for bad in ["", "ab", &"0".repeat(63), &"0".repeat(65), &format!("{}g", "0".repeat(63)), &"é".repeat(32)]
    {
        assert_eq!(Hash32::from_hex(bad), None, "{bad:?}");
    }
}

/// A block's data hash is checked against data this process built or checked before by comparing bytes;
/// the verdict is hashing's in every case: equal bytes in other buffers match, any change does not, and
/// data split into envelopes differently (the same concatenation, so the same SHA-256) still matches.
#[test]
fn data_hash_checks_give_the_verdict_of_hashing() {
    use ledger_types::block::data_hash_matches;
    use ledger_types::fabric_protos::hash::block_data_hash;
    use prost::Message;
    let envs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 100 + i as usize]).collect();
    let b = BlockBuilder::new(7, Hash32::of(b"p")).envelopes(envs.clone()).build();
    let stated = b.header.as_ref().unwrap().data_hash.clone();
    let data = b.data.as_ref().unwrap();
    assert!(data_hash_matches(&stated, data));
    // The same bytes, decoded into buffers of their own (as a follower or a peer receives them).
    let decoded = ledger_types::proto::Block::decode(b.encode_to_vec().as_slice()).unwrap();
    assert!(data_hash_matches(&stated, decoded.data.as_ref().unwrap()));
    let mut changed = data.clone();
    changed.data[39] = vec![1; 139].into();
    assert!(!data_hash_matches(&stated, &changed));
    let mut dropped = data.clone();
    dropped.data.pop();
    assert!(!data_hash_matches(&stated, &dropped));
    let mut split = data.clone();
    let last = split.data.pop().unwrap();
    split.data.push(last.slice(..10));
    split.data.push(last.slice(10..));
    assert_eq!(block_data_hash(&split), block_data_hash(data));
    assert!(data_hash_matches(&stated, &split), "hashing says it matches, so the check does");
    assert!(!data_hash_matches(&[0; 32], data), "another stated hash");
}
