//! Unit tests of the network spec.

use super::{Names, NetworkSpec, SpecError};
use crate::Algorithm;

#[test]
fn default_network_shape() {
    let spec = NetworkSpec::default_network();
    spec.check().expect("default spec is valid");
    assert_eq!(spec.orderer_orgs.len(), 1);
    assert_eq!(spec.orderer_orgs[0].nodes.expand("orderer", 0), ["orderer0", "orderer1", "orderer2"]);
    let ids: Vec<_> = spec.peer_orgs.iter().map(|o| o.msp_id.as_str()).collect();
    assert_eq!(ids, ["Org1MSP", "Org2MSP"]);
    assert_eq!(spec.peer_orgs[0].nodes.expand("peer", 0), ["peer0"]);
    assert_eq!(spec.key_algorithm, Algorithm::Ed25519);
}

#[test]
fn toml_round_trip_and_forms() {
    let spec = NetworkSpec::default_network();
    assert_eq!(NetworkSpec::from_toml(&spec.to_toml()), Ok(spec));

    let text = r#"
        key_algorithm = "p256"
        [[peer_orgs]]
        name = "Acme"
        msp_id = "AcmeMSP"
        domain = "acme.example"
        peers = ["alpha", "beta"]
        users = 3
    "#;
    let spec = NetworkSpec::from_toml(text).expect("valid");
    assert_eq!(spec.key_algorithm, Algorithm::EcdsaP256);
    assert_eq!(spec.tls_key_algorithm, Algorithm::EcdsaP256);
    assert_eq!(spec.peer_orgs[0].nodes, Names::List(vec!["alpha".into(), "beta".into()]));
    assert_eq!(spec.peer_orgs[0].users.expand("User", 1), ["User1", "User2", "User3"]);
    assert!(spec.orderer_orgs.is_empty());
}

#[test]
fn invalid_specs_are_refused() {
    let cases = [
        ("key_algorithm = \"rsa\"", true),
        ("bogus = 1", true),
        ("[[peer_orgs]]\nname='A'\nmsp_id='AMSP'\ndomain='bad domain'", false),
        (
            "[[peer_orgs]]\nname='A'\nmsp_id='AMSP'\ndomain='a.x'\n[[peer_orgs]]\nname='B'\nmsp_id='AMSP'\ndomain='b.x'",
            false,
        ),
        ("[[peer_orgs]]\nname='A'\nmsp_id='AMSP'\ndomain='a.x'\nnodes=['p','p']", false),
        ("[[peer_orgs]]\nname='A'\nmsp_id='AMSP'\ndomain='a.x'\nusers=['Admin']", false),
        ("validity_days = 0", false),
    ];
    for (text, is_toml) in cases {
        match NetworkSpec::from_toml(text) {
            Err(SpecError::Toml(_)) if is_toml => {}
            Err(SpecError::Invalid(_)) if !is_toml => {}
            other => panic!("{text:?}: unexpected {other:?}"),
        }
    }
}
