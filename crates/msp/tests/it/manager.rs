//! MspManager: membership, unknown MSPs, the cache.

use std::sync::Arc;

use msp::{IdentityError, MspManager, Role, UnixTime};

use crate::{NOW, network};

#[test]
fn unknown_msp_and_membership() {
    let m = network(20);
    let mgr = m.msp_manager().expect("manager");
    assert_eq!(mgr.msp_ids(), ["OrdererMSP", "Org1MSP", "Org2MSP"]);
    let user = &m.org("Org1MSP").expect("org1").member("User1").expect("user").cert_der;
    assert_eq!(mgr.validate("Org9MSP", user, NOW), Err(IdentityError::UnknownMsp("Org9MSP".into())));
    // A manager for a channel with only Org2 refuses Org1's members.
    let only_org2 = m.msp_manager_for(&["Org2MSP"]).expect("org2 only");
    assert_eq!(only_org2.msp_ids(), ["Org2MSP"]);
    assert!(matches!(m.msp_manager_for(&["Nope"]), Err(IdentityError::UnknownMsp(_))));
    assert!(matches!(only_org2.validate("Org1MSP", user, NOW), Err(IdentityError::UnknownMsp(_))));
    let id = mgr.validate_role("Org1MSP", user, NOW, &[Role::Client]).expect("client");
    assert_eq!(id.msp_id(), "Org1MSP");
    assert!(matches!(
        mgr.validate_role("Org1MSP", user, NOW, &[Role::Peer, Role::Orderer]),
        Err(IdentityError::WrongRole { .. })
    ));
}

#[test]
fn cache_hits_share_the_result_but_still_check_time() {
    let m = network(21);
    let mgr = m.msp_manager().expect("manager");
    let cert = &m.org("Org1MSP").expect("org1").member("peer0").expect("peer").cert_der;
    let first = mgr.validate("Org1MSP", cert, NOW).expect("valid");
    assert_eq!(mgr.cached(), 1);
    let second = mgr.validate("Org1MSP", cert, NOW).expect("valid");
    assert!(Arc::ptr_eq(&first, &second), "second validation is a cache hit");
    // The cached entry still expires.
    let late = UnixTime::from_secs(first.not_after().as_secs() + 1);
    assert!(matches!(mgr.validate("Org1MSP", cert, late), Err(IdentityError::Expired { .. })));
    // The cache key includes the MSP id: the same certificate under another id is re-validated.
    assert!(mgr.validate("Org2MSP", cert, NOW).is_err());
    assert_eq!(mgr.cached(), 1);
}

#[test]
fn cache_is_bounded() {
    let m = network(22);
    let org = m.org("Org1MSP").expect("org1");
    let mgr = MspManager::with_cache_capacity([org.msp().expect("msp")], 2);
    for member in org.nodes.iter().chain(&org.users) {
        mgr.validate("Org1MSP", &member.cert_der, NOW).expect("valid");
    }
    assert_eq!(org.nodes.len() + org.users.len(), 4);
    assert_eq!(mgr.cached(), 2);
    let off = MspManager::with_cache_capacity([org.msp().expect("msp")], 0);
    off.validate("Org1MSP", &org.users[0].cert_der, NOW).expect("valid");
    assert_eq!(off.cached(), 0);
}

#[test]
fn concurrent_validation() {
    let m = network(23);
    let mgr = m.msp_manager().expect("manager");
    let certs: Vec<_> = m
        .orgs
        .iter()
        .flat_map(|o| o.users.iter().map(move |u| (o.msp_id().to_owned(), u.cert_der.clone())))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    for (id, cert) in &certs {
                        mgr.validate(id, cert, NOW).expect("valid");
                    }
                }
            });
        }
    });
    assert_eq!(mgr.cached(), certs.len());
}
