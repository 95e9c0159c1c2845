//! cryptogen: layout, parse-back, chains, determinism, loaders.

use std::path::{Path, PathBuf};

use msp::cryptogen::{OrgKind, SPEC_FILE};
use msp::{Algorithm, CryptoMaterial, LocalIdentity, Msp, NetworkSpec, PublicKey, Role};
use x509_parser::extensions::GeneralName;

use crate::{NOW, network, network_of};

fn file<'a>(files: &'a [(PathBuf, Vec<u8>)], p: &str) -> &'a [u8] {
    files
        .iter()
        .find(|(q, _)| q == Path::new(p))
        .map(|(_, b)| b.as_slice())
        .unwrap_or_else(|| panic!("missing {p}"))
}

/// The files under `dir`, with paths relative to it (what the CLI would read from a folder).
fn subtree(files: &[(PathBuf, Vec<u8>)], dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
    files.iter().filter_map(|(p, b)| Some((p.strip_prefix(dir).ok()?.to_path_buf(), b.clone()))).collect()
}

#[test]
fn default_network_has_the_expected_members() {
    let m = network(1);
    let summary: Vec<_> = m
        .orgs
        .iter()
        .map(|o| {
            let names: Vec<_> = o.nodes.iter().chain(&o.users).map(|n| n.common_name.clone()).collect();
            (o.kind, o.msp_id().to_owned(), names)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                OrgKind::Orderer,
                "OrdererMSP".to_owned(),
                vec![
                    "orderer0.ipechain.local".to_owned(),
                    "orderer1.ipechain.local".to_owned(),
                    "orderer2.ipechain.local".to_owned(),
                    "Admin@ipechain.local".to_owned(),
                ]
            ),
            (
                OrgKind::Peer,
                "Org1MSP".to_owned(),
                vec![
                    "peer0.org1.ipechain.local".to_owned(),
                    "Admin@org1.ipechain.local".to_owned(),
                    "Gateway@org1.ipechain.local".to_owned(),
                    "User1@org1.ipechain.local".to_owned(),
                ]
            ),
            (
                OrgKind::Peer,
                "Org2MSP".to_owned(),
                vec![
                    "peer0.org2.ipechain.local".to_owned(),
                    "Admin@org2.ipechain.local".to_owned(),
                    "Gateway@org2.ipechain.local".to_owned(),
                    "User1@org2.ipechain.local".to_owned(),
                ]
            ),
        ]
    );
}

#[test]
fn every_member_validates_with_its_role() {
    let m = network(2);
    let nodes: Vec<_> = m.nodes().map(|(o, n)| format!("{}:{}", o.msp_id(), n.name)).collect();
    assert_eq!(
        nodes,
        [
            "OrdererMSP:orderer0",
            "OrdererMSP:orderer1",
            "OrdererMSP:orderer2",
            "Org1MSP:peer0",
            "Org2MSP:peer0"
        ]
    );
    let mgr = m.msp_manager().expect("manager");
    for org in &m.orgs {
        for member in org.nodes.iter().chain(&org.users) {
            let id = mgr.validate(org.msp_id(), &member.cert_der, NOW).expect("valid");
            assert_eq!(id.role(), member.role);
            assert_eq!(id.common_name(), member.common_name);
            assert_eq!(id.public_key(), &member.key.public_key());
            assert_eq!(id.public_key().algorithm(), Algorithm::Ed25519);
        }
        let roles: Vec<_> = org.users.iter().map(|u| u.role).collect();
        assert!(org.nodes.iter().all(|n| n.is_node()) && org.users.iter().all(|u| !u.is_node()));
        assert_eq!(roles[0], Role::Admin);
        assert!(roles[1..].iter().all(|r| *r == Role::Client));
    }
}

#[test]
fn tls_certificates_chain_to_the_tls_ca_with_sans_and_ekus() {
    let m = network(3);
    let org1 = m.org("Org1MSP").expect("org1");
    let peer = org1.member("peer0").expect("peer0");
    // The TLS CA is not the signing CA.
    let tls_msp = org1.tls_msp().expect("tls msp");
    let signing_msp = org1.msp().expect("msp");
    let (_, cert) = x509_parser::parse_x509_certificate(&peer.tls_cert_der).expect("parse");
    cert.verify_signature(Some(
        x509_parser::parse_x509_certificate(&org1.tls_ca.cert_der).expect("ca").1.public_key(),
    ))
    .expect("signed by the TLS CA");
    assert!(signing_msp.root_certs().all(|c| c != org1.tls_ca.cert_der.as_slice()));
    assert_eq!(tls_msp.root_certs().next(), Some(org1.tls_ca.cert_der.as_slice()));

    let eku = cert.extended_key_usage().expect("eku ok").expect("eku present").value;
    assert!(eku.server_auth && eku.client_auth);
    let san = cert.subject_alternative_name().expect("san ok").expect("san present").value;
    let names: Vec<String> = san
        .general_names
        .iter()
        .map(|g| match g {
            GeneralName::DNSName(d) => d.to_string(),
            GeneralName::IPAddress(ip) => format!("{ip:?}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["localhost", "peer0.org1.ipechain.local", "peer0", "[127, 0, 0, 1]"]);
    assert_eq!(
        PublicKey::from_certificate_der(&peer.tls_cert_der).expect("pk").algorithm(),
        Algorithm::EcdsaP256
    );
}

#[test]
fn files_use_fabric_layout_and_parse_back() {
    let m = network(4);
    let files = m.files();
    let paths: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    for expected in [
        SPEC_FILE,
        "peerOrganizations/org1.ipechain.local/ca/ca.org1.ipechain.local-cert.pem",
        "peerOrganizations/org1.ipechain.local/ca/priv_sk",
        "peerOrganizations/org1.ipechain.local/tlsca/tlsca.org1.ipechain.local-cert.pem",
        "peerOrganizations/org1.ipechain.local/msp/cacerts/ca.org1.ipechain.local-cert.pem",
        "peerOrganizations/org1.ipechain.local/msp/tlscacerts/tlsca.org1.ipechain.local-cert.pem",
        "peerOrganizations/org1.ipechain.local/msp/config.yaml",
        "peerOrganizations/org1.ipechain.local/peers/peer0.org1.ipechain.local/msp/signcerts/peer0.org1.ipechain.local-cert.pem",
        "peerOrganizations/org1.ipechain.local/peers/peer0.org1.ipechain.local/msp/keystore/priv_sk",
        "peerOrganizations/org1.ipechain.local/peers/peer0.org1.ipechain.local/msp/cacerts/ca.org1.ipechain.local-cert.pem",
        "peerOrganizations/org1.ipechain.local/peers/peer0.org1.ipechain.local/tls/ca.crt",
        "peerOrganizations/org1.ipechain.local/peers/peer0.org1.ipechain.local/tls/server.crt",
        "peerOrganizations/org1.ipechain.local/peers/peer0.org1.ipechain.local/tls/server.key",
        "peerOrganizations/org2.ipechain.local/users/Gateway@org2.ipechain.local/tls/client.crt",
        "peerOrganizations/org2.ipechain.local/users/Admin@org2.ipechain.local/msp/keystore/priv_sk",
        "ordererOrganizations/ipechain.local/orderers/orderer2.ipechain.local/tls/server.key",
    ] {
        assert!(paths.iter().any(|p| p == expected), "missing {expected}");
    }
    assert!(
        std::str::from_utf8(file(
            &files,
            "peerOrganizations/org1.ipechain.local/peers/peer0.org1.ipechain.local/tls/server.key"
        ))
        .expect("utf8")
        .starts_with("-----BEGIN PRIVATE KEY-----")
    );

    // Exactly the key files are flagged as secret, and they all hold PKCS#8 keys.
    for (p, bytes) in &files {
        let is_key = std::str::from_utf8(bytes).is_ok_and(|t| t.contains("PRIVATE KEY"));
        assert_eq!(msp::cryptogen::is_private_key_path(p), is_key, "{}", p.display());
    }

    // The org MSP folder alone defines the MSP; a node folder alone gives its local identity.
    let org_msp = Msp::from_files("Org1MSP", &subtree(&files, "peerOrganizations/org1.ipechain.local/msp"))
        .expect("msp from files");
    let node_files = subtree(&files, "peerOrganizations/org1.ipechain.local/peers/peer0.org1.ipechain.local");
    let peer = LocalIdentity::from_files("Org1MSP", &node_files).expect("identity from files");
    assert_eq!(peer.role(), Role::Peer);
    assert_eq!(peer.common_name(), "peer0.org1.ipechain.local");
    let tls = peer.tls().expect("tls material");
    assert_eq!(tls.ca_der, m.org("Org1MSP").expect("org1").tls_ca.cert_der);
    assert!(tls.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let id = org_msp.validate(peer.cert_der(), NOW).expect("peer validates");
    let sig = peer.sign(b"block 7");
    id.public_key().verify(b"block 7", sig.as_bytes()).expect("signature");

    // TLS certificates chain to the TLS CA and carry their member's role, so a TLS connection can be
    // authorized by role (Cluster: orderers, Admin: admins).
    let org_files = subtree(&files, "peerOrganizations/org1.ipechain.local/msp");
    let tls_msp = Msp::tls_from_files("Org1MSP", &org_files).expect("tls msp");
    assert_eq!(tls_msp.validate_chain(&tls.cert_der, NOW), Ok("peer0.org1.ipechain.local".to_owned()));
    assert_eq!(tls_msp.validate(&tls.cert_der, NOW).map(|v| v.role()), Ok(msp::Role::Peer));
    assert!(org_msp.validate_chain(&tls.cert_der, NOW).is_err(), "TLS CA is not the signing CA");

    // A user folder has client.{crt,key}.
    let user_files = subtree(&files, "peerOrganizations/org2.ipechain.local/users/User1@org2.ipechain.local");
    let user = LocalIdentity::from_files("Org2MSP", &user_files).expect("user");
    assert_eq!(user.role(), Role::Client);
    assert!(user.tls().is_some());

    // The whole set reads back to the same material.
    let back = CryptoMaterial::from_files(&files).expect("from_files");
    assert_eq!(back.files(), files);
}

#[test]
fn from_pem_checks_key_matches_certificate() {
    let m = network(5);
    let org1 = m.org("Org1MSP").expect("org1");
    let user = org1.member("User1").expect("user1");
    let admin = org1.member("Admin").expect("admin");
    let cert = msp::cert_pem(&user.cert_der);
    let ok =
        LocalIdentity::from_pem("Org1MSP", cert.as_bytes(), user.key.to_pkcs8_pem().as_bytes()).expect("ok");
    assert_eq!(ok.role(), Role::Client);
    assert!(ok.tls().is_none());
    let err = LocalIdentity::from_pem("Org1MSP", cert.as_bytes(), admin.key.to_pkcs8_pem().as_bytes())
        .expect_err("mismatch");
    assert_eq!(err, msp::LoadError::KeyMismatch);
    let missing = LocalIdentity::from_files("Org1MSP", &[]).expect_err("nothing");
    assert_eq!(missing, msp::LoadError::Missing("msp/signcerts"));
}

#[test]
fn same_seed_same_bytes_other_seed_other_keys() {
    let a = network(42).files();
    let b = network(42).files();
    assert_eq!(a, b, "seeded generation is byte-for-byte reproducible");
    let c = network(43).files();
    let key = "peerOrganizations/org1.ipechain.local/peers/peer0.org1.ipechain.local/msp/keystore/priv_sk";
    assert_ne!(file(&a, key), file(&c, key));

    // Also with ECDSA everywhere (RFC 6979 signing keeps certificates deterministic).
    let mut spec = NetworkSpec::default_network();
    spec.key_algorithm = Algorithm::EcdsaP256;
    assert_eq!(network_of(&spec, 9).files(), network_of(&spec, 9).files());
}

#[test]
fn p256_network_validates() {
    let spec = NetworkSpec::from_toml(
        r#"
        key_algorithm = "p256"
        tls_key_algorithm = "ed25519"
        validity_days = 30
        [[orderer_orgs]]
        name = "Ord"
        msp_id = "OrdMSP"
        domain = "ord.example"
        orderers = 1
        [[peer_orgs]]
        name = "Acme"
        msp_id = "AcmeMSP"
        domain = "acme.example"
        peers = ["alpha", "beta"]
        users = 2
    "#,
    )
    .expect("spec");
    let m = network_of(&spec, 6);
    let mgr = m.msp_manager().expect("manager");
    let acme = m.org("AcmeMSP").expect("acme");
    assert_eq!(acme.nodes.len(), 2);
    assert_eq!(acme.users.len(), 3);
    for member in acme.nodes.iter().chain(&acme.users) {
        let id = mgr.validate("AcmeMSP", &member.cert_der, NOW).expect("valid");
        assert_eq!(id.public_key().algorithm(), Algorithm::EcdsaP256);
        let sig = member.key.sign(b"m");
        id.public_key().verify(b"m", sig.as_bytes()).expect("verifies");
    }
    let beta = acme.member("beta.acme.example").expect("by common name");
    assert_eq!(
        PublicKey::from_certificate_der(&beta.tls_cert_der).expect("pk").algorithm(),
        Algorithm::Ed25519
    );
    // 30 days validity.
    assert!(mgr.validate("AcmeMSP", &beta.cert_der, NOW.plus_days(31)).is_err());
}

#[test]
fn extend_keeps_existing_material_and_adds_new_members() {
    let old = network(50);
    let mut spec = NetworkSpec::default_network();
    spec.peer_orgs[0].nodes = msp::cryptogen::Names::Count(2); // + peer1
    spec.peer_orgs[0].users = msp::cryptogen::Names::List(vec!["Gateway".into(), "User2".into()]); // - User1, + User2
    spec.peer_orgs.push(msp::cryptogen::OrgSpec {
        name: "Org3".into(),
        msp_id: "Org3MSP".into(),
        domain: "org3.ipechain.local".into(),
        nodes: msp::cryptogen::Names::Count(1),
        users: msp::cryptogen::Names::Count(0),
        sans: Default::default(),
    });
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(51);
    let later = msp::UnixTime::from_secs(NOW.as_secs() + 86_400);
    let new = msp::cryptogen::extend(&old, &spec, later, &mut rng).expect("extend");

    let (o1, n1) = (old.org("Org1MSP").expect("old"), new.org("Org1MSP").expect("new"));
    assert_eq!(o1.ca.cert_der, n1.ca.cert_der);
    assert_eq!(o1.tls_ca.cert_der, n1.tls_ca.cert_der);
    let kept = |name: &str| {
        let (a, b) = (o1.member(name).expect("old member"), n1.member(name).expect("new member"));
        a.cert_der == b.cert_der
            && a.tls_cert_der == b.tls_cert_der
            && a.key.to_pkcs8_der() == b.key.to_pkcs8_der()
    };
    assert!(kept("peer0") && kept("Admin") && kept("Gateway"));
    assert!(n1.member("User1").is_none());
    // New members chain to the old CAs: the old MSP definition accepts them.
    let old_msp = o1.msp().expect("msp");
    for name in ["peer1", "User2"] {
        let m = n1.member(name).expect("added");
        assert!(old_msp.validate(&m.cert_der, later).is_ok(), "{name}");
        assert!(o1.tls_msp().expect("tls").validate_chain(&m.tls_cert_der, later).is_ok());
    }
    // Untouched orgs are identical; the new org validates.
    assert_eq!(old.org("Org2MSP").expect("o").ca.cert_der, new.org("Org2MSP").expect("n").ca.cert_der);
    let mgr = new.msp_manager().expect("manager");
    let p = &new.org("Org3MSP").expect("org3").member("peer0").expect("peer").cert_der;
    assert!(mgr.validate("Org3MSP", p, later).is_ok());
    // The result reads back from its files.
    assert_eq!(CryptoMaterial::from_files(&new.files()).expect("back").files(), new.files());

    // An existing organization's domain cannot change.
    let mut bad = NetworkSpec::default_network();
    bad.peer_orgs[1].domain = "moved.example".into();
    assert!(matches!(
        msp::cryptogen::extend(&old, &bad, later, &mut rng),
        Err(msp::cryptogen::CryptogenError::Spec(_))
    ));
}
