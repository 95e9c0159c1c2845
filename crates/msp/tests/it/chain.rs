//! Chain validation: foreign CAs, validity periods, CA constraints, roles, intermediates.

use msp::{IdentityError, Msp, NetworkSpec, Role, UnixTime};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ED25519,
};

use crate::{NOW, network, network_of};

#[test]
fn foreign_ca_is_refused() {
    let ours = network(10);
    let theirs = network(11); // same names, different keys
    let org1 = ours.org("Org1MSP").expect("org1").msp().expect("msp");
    let impostor = &theirs.org("Org1MSP").expect("org1").member("User1").expect("user").cert_der;
    // Same issuer name, but our CA's key does not verify their CA's signature.
    assert_eq!(
        org1.validate(impostor, NOW),
        Err(IdentityError::BadChainSignature { msp_id: "Org1MSP".into() })
    );
    // A member of another organization of our own network cannot claim Org1MSP either.
    let org2_user = &ours.org("Org2MSP").expect("org2").member("User1").expect("user").cert_der;
    assert_eq!(
        org1.validate(org2_user, NOW),
        Err(IdentityError::UntrustedChain { msp_id: "Org1MSP".into() })
    );
    // An entirely different network (other domain names).
    let mut spec = NetworkSpec::default_network();
    spec.peer_orgs[0].domain = "elsewhere.example".into();
    let other = network_of(&spec, 10);
    let stranger = &other.org("Org1MSP").expect("org1").member("User1").expect("user").cert_der;
    assert_eq!(org1.validate(stranger, NOW), Err(IdentityError::UntrustedChain { msp_id: "Org1MSP".into() }));
}

#[test]
fn validity_period_is_checked_at_the_given_time() {
    let m = network(12);
    let org = m.org("Org1MSP").expect("org1");
    let msp = org.msp().expect("msp");
    let cert = &org.member("peer0").expect("peer").cert_der;
    let expiry = NOW.plus_days(3650);
    assert!(msp.validate(cert, expiry).is_ok());
    match msp.validate(cert, UnixTime::from_secs(expiry.as_secs() + 1)) {
        Err(IdentityError::Expired { not_after, .. }) => assert_eq!(not_after, expiry),
        other => panic!("expected Expired, got {other:?}"),
    }
    let start = UnixTime::from_secs(NOW.as_secs() - msp::cryptogen::BACKDATE_SECS);
    assert!(msp.validate(cert, start).is_ok());
    assert!(matches!(
        msp.validate(cert, UnixTime::from_secs(start.as_secs() - 1)),
        Err(IdentityError::NotYetValid { .. })
    ));
    let id = msp.validate(cert, NOW).expect("valid");
    assert_eq!((id.not_before(), id.not_after()), (start, expiry));
}

#[test]
fn ca_certificate_is_not_an_identity_and_garbage_is_malformed() {
    let m = network(13);
    let org = m.org("Org1MSP").expect("org1");
    let msp = org.msp().expect("msp");
    assert_eq!(msp.validate(&org.ca.cert_der, NOW), Err(IdentityError::CaAsIdentity));
    assert!(matches!(msp.validate(b"not a certificate", NOW), Err(IdentityError::Malformed(_))));
    let mut trailing = org.member("User1").expect("user").cert_der.clone();
    trailing.push(0);
    assert!(matches!(msp.validate(&trailing, NOW), Err(IdentityError::Malformed(_))));
    // A flipped bit in the signed part breaks the CA signature.
    let mut tampered = org.member("User1").expect("user").cert_der.clone();
    let n = tampered.len();
    tampered[n - 80] ^= 1;
    assert!(msp.validate(&tampered, NOW).is_err());
}

#[test]
fn role_requirements() {
    let m = network(14);
    let org = m.org("Org2MSP").expect("org2");
    let msp = org.msp().expect("msp");
    let admin = msp.validate(&org.member("Admin").expect("admin").cert_der, NOW).expect("admin");
    assert_eq!(admin.role(), Role::Admin);
    assert!(admin.require_role(&[Role::Admin, Role::Client]).is_ok());
    assert_eq!(
        admin.require_role(&[Role::Peer]),
        Err(IdentityError::WrongRole { role: Role::Admin, allowed: vec![Role::Peer] })
    );
}

fn ed_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ED25519).expect("keygen")
}

fn ca_params(cn: &str, bc: BasicConstraints) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(bc);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    p
}

fn leaf_params(cn: &str, ou: Option<&str>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    if let Some(ou) = ou {
        p.distinguished_name.push(DnType::OrganizationalUnitName, ou);
    }
    p
}

#[test]
fn intermediate_chains_and_path_length() {
    let root_key = ed_key();
    let root_p = ca_params("root", BasicConstraints::Constrained(1));
    let root = root_p.self_signed(&root_key).expect("root");
    let root_issuer = Issuer::from_params(&root_p, &root_key);

    let int1_key = ed_key();
    let int1_p = ca_params("int1", BasicConstraints::Unconstrained);
    let int1 = int1_p.signed_by(&int1_key, &root_issuer).expect("int1");
    let int1_issuer = Issuer::from_params(&int1_p, &int1_key);

    let int2_key = ed_key();
    let int2_p = ca_params("int2", BasicConstraints::Unconstrained);
    let int2 = int2_p.signed_by(&int2_key, &int1_issuer).expect("int2");
    let int2_issuer = Issuer::from_params(&int2_p, &int2_key);

    let leaf1 = leaf_params("alice", Some("client")).signed_by(&ed_key(), &int1_issuer).expect("leaf1");
    let leaf2 = leaf_params("bob", Some("peer")).signed_by(&ed_key(), &int2_issuer).expect("leaf2");

    let msp = Msp::new("M", [root.der().to_vec()], [int1.der().to_vec(), int2.der().to_vec()]).expect("msp");
    let alice = msp.validate(leaf1.der(), NOW).expect("one intermediate is within pathLen 1");
    assert_eq!((alice.role(), alice.common_name()), (Role::Client, "alice"));
    assert_eq!(
        msp.validate(leaf2.der(), NOW),
        Err(IdentityError::NotACa { subject: "CN=root".into(), reason: "pathLenConstraint exceeded" })
    );

    // Without the intermediate, the leaf does not chain.
    let root_only = Msp::new("M", [root.der().to_vec()], []).expect("msp");
    assert_eq!(
        root_only.validate(leaf1.der(), NOW),
        Err(IdentityError::UntrustedChain { msp_id: "M".into() })
    );

    // A certificate without role OU, and one issued by a non-CA.
    let no_role = leaf_params("carol", Some("engineering")).signed_by(&ed_key(), &root_issuer).expect("leaf");
    assert_eq!(msp.validate(no_role.der(), NOW), Err(IdentityError::MissingRole));
    let plain_key = ed_key();
    let plain_p = leaf_params("plain", Some("client"));
    let plain = plain_p.signed_by(&plain_key, &root_issuer).expect("plain");
    let by_plain = leaf_params("dave", Some("client"))
        .signed_by(&ed_key(), &Issuer::from_params(&plain_p, &plain_key))
        .expect("by plain");
    assert!(matches!(
        Msp::new("M", [root.der().to_vec()], [plain.der().to_vec()]),
        Err(IdentityError::InvalidMsp { .. })
    ));
    // Even if the non-CA is smuggled in as a root, it is refused at definition time.
    assert!(matches!(Msp::new("M", [plain.der().to_vec()], []), Err(IdentityError::InvalidMsp { .. })));
    assert_eq!(msp.validate(by_plain.der(), NOW), Err(IdentityError::UntrustedChain { msp_id: "M".into() }));
}

#[test]
fn msp_from_pem_bundle() {
    let a = network(15);
    let b = network(16);
    let bundle = format!(
        "{}{}",
        msp::cert_pem(&a.org("Org1MSP").expect("a").ca.cert_der),
        msp::cert_pem(&b.org("Org1MSP").expect("b").ca.cert_der)
    );
    let msp = Msp::from_pem("Org1MSP", bundle.as_bytes(), None).expect("two roots");
    assert_eq!(msp.root_certs().count(), 2);
    for m in [&a, &b] {
        let cert = &m.org("Org1MSP").expect("org").member("User1").expect("user").cert_der;
        assert!(msp.validate(cert, NOW).is_ok());
    }
    assert!(Msp::from_pem("X", b"no pem here", None).is_err());
}

#[test]
fn unknown_critical_extension_is_refused() {
    let root_key = ed_key();
    let root_p = ca_params("root", BasicConstraints::Unconstrained);
    let root = root_p.self_signed(&root_key).expect("root");
    let issuer = Issuer::from_params(&root_p, &root_key);
    let msp = Msp::new("M", [root.der().to_vec()], []).expect("msp");

    let mut p = leaf_params("erin", Some("client"));
    let mut ext = rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![0x05, 0x00]);
    ext.set_criticality(true);
    p.custom_extensions = vec![ext];
    let critical = p.signed_by(&ed_key(), &issuer).expect("leaf");
    assert!(
        matches!(msp.validate(critical.der(), NOW), Err(IdentityError::Malformed(m)) if m.contains("critical"))
    );

    // The same extension, not critical, is ignored.
    let mut p = leaf_params("erin", Some("client"));
    p.custom_extensions =
        vec![rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![0x05, 0x00])];
    let benign = p.signed_by(&ed_key(), &issuer).expect("leaf");
    assert!(msp.validate(benign.der(), NOW).is_ok());
}
