//! Property tests: arbitrary or mutated input never panics and never verifies by accident.

use msp::{Algorithm, SigningKey, VerifyItem, verify_batch};
use proptest::prelude::*;
use rand::SeedableRng as _;

use crate::{NOW, network};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_are_not_identities(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let m = network(40);
        let msp = m.org("Org1MSP").expect("org1").msp().expect("msp");
        prop_assert!(msp.validate(&bytes, NOW).is_err());
        prop_assert!(SigningKey::from_pkcs8_der(&bytes).is_err());
    }

    #[test]
    fn mutated_certificates_never_pass_as_someone_else(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let m = network(41);
        let org = m.org("Org1MSP").expect("org1");
        let msp = org.msp().expect("msp");
        let original = &org.member("User1").expect("user").cert_der;
        let mut cert = original.clone();
        let i = pos.index(cert.len());
        cert[i] ^= 1 << bit;
        // Either refused, or (a flip in an unsigned field such as the outer signature
        // algorithm encoding that still parses) the same key and name come out.
        if let Ok(id) = msp.validate(&cert, NOW) {
            let orig = msp.validate(original, NOW).expect("original valid");
            prop_assert_eq!(id.public_key(), orig.public_key());
            prop_assert_eq!(id.common_name(), orig.common_name());
        }
    }

    #[test]
    fn mutated_signatures_fail(alg_p256 in any::<bool>(), pos in any::<prop::sample::Index>(), bit in 0u8..8, seed in any::<u64>()) {
        let alg = if alg_p256 { Algorithm::EcdsaP256 } else { Algorithm::Ed25519 };
        let key = SigningKey::generate(alg, &mut rand::rngs::StdRng::seed_from_u64(seed));
        let pk = key.public_key();
        let mut sig = key.sign(b"payload").to_vec();
        let i = pos.index(sig.len());
        sig[i] ^= 1 << bit;
        prop_assert!(pk.verify(b"payload", &sig).is_err());
        let err = verify_batch(&[VerifyItem::new(&pk, b"payload", &sig)]).expect_err("bad");
        prop_assert_eq!(err.failed_indices().collect::<Vec<_>>(), vec![0]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn spec_parser_never_panics(text in "\\PC{0,200}") {
        let _ = msp::NetworkSpec::from_toml(&text);
    }

    #[test]
    fn any_small_valid_spec_generates_a_consistent_network(
        peers in 0u32..3,
        orderers in 0u32..3,
        users in proptest::collection::vec("[A-Za-z][A-Za-z0-9_.-]{0,8}", 0..3),
        p256 in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut spec = msp::NetworkSpec::default_network();
        spec.orderer_orgs[0].nodes = msp::cryptogen::Names::Count(orderers);
        spec.peer_orgs[0].nodes = msp::cryptogen::Names::Count(peers);
        spec.peer_orgs[1].users = msp::cryptogen::Names::List(users.clone());
        if p256 {
            spec.key_algorithm = Algorithm::EcdsaP256;
        }
        let valid = spec.check().is_ok();
        let mut dedup = users.clone();
        dedup.sort();
        dedup.dedup();
        prop_assert_eq!(valid, dedup.len() == users.len() && !users.iter().any(|u| u == "Admin"));
        prop_assume!(valid);
        let m = crate::network_of(&spec, seed);
        let mgr = m.msp_manager().expect("manager");
        for org in &m.orgs {
            for member in org.nodes.iter().chain(&org.users) {
                let id = mgr.validate(org.msp_id(), &member.cert_der, NOW).expect("valid");
                prop_assert_eq!(id.role(), member.role);
            }
        }
        let back = msp::CryptoMaterial::from_files(&m.files()).expect("reads back");
        prop_assert_eq!(back.files(), m.files());
    }
}
