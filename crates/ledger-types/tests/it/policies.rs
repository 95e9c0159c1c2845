use ledger_types::policy::{Endorser, Policy};

fn e(m: &str, r: &str) -> Endorser {
    Endorser::new(m, r)
}

fn orgs() -> Vec<String> {
    vec!["Org1MSP".into(), "Org2MSP".into(), "Org3MSP".into()]
}

#[test]
fn and_or_outof() {
    let and = Policy::parse("AND('Org1MSP.peer', 'Org2MSP.member')").unwrap();
    assert!(and.is_satisfied_by(&[e("Org1MSP", "peer"), e("Org2MSP", "client")]));
    assert!(!and.is_satisfied_by(&[e("Org1MSP", "client"), e("Org2MSP", "peer")]), "role peer required");
    assert!(!and.is_satisfied_by(&[e("Org1MSP", "peer")]));

    let or = Policy::parse("OR('Org1MSP', 'Org2MSP')").unwrap();
    assert!(or.is_satisfied_by(&[e("Org2MSP", "peer")]));
    assert!(!or.is_satisfied_by(&[e("Org3MSP", "peer")]));
    assert!(!or.is_satisfied_by(&[]));

    let two = Policy::parse("OutOf(2, 'Org1MSP', 'Org2MSP', 'Org3MSP')").unwrap();
    assert!(two.is_satisfied_by(&[e("Org3MSP", "peer"), e("Org2MSP", "peer")]));
    assert!(!two.is_satisfied_by(&[e("Org3MSP", "peer"), e("Org3MSP", "peer")]));
}

#[test]
fn one_endorser_satisfies_one_principal() {
    let p = Policy::parse("AND('Org1MSP', 'Org1MSP')").unwrap();
    assert!(!p.is_satisfied_by(&[e("Org1MSP", "peer")]));
    assert!(p.is_satisfied_by(&[e("Org1MSP", "peer"), e("Org1MSP", "peer")]));
}

#[test]
fn any_and_majority_resolve_over_channel_orgs() {
    let any = Policy::Any.resolve(&orgs());
    assert!(any.is_satisfied_by(&[e("Org3MSP", "peer")]));
    assert!(!any.is_satisfied_by(&[e("Org9MSP", "peer")]));
    let maj = Policy::parse("MAJORITY").unwrap().resolve(&orgs());
    assert!(!maj.is_satisfied_by(&[e("Org1MSP", "peer")]));
    assert!(maj.is_satisfied_by(&[e("Org1MSP", "peer"), e("Org3MSP", "peer")]));
    assert!(!Policy::Any.is_satisfied_by(&[e("Org1MSP", "peer")]), "unresolved ANY never passes");
}

#[test]
fn nested_policy_and_display() {
    let p = Policy::parse(" AND('Org1MSP.peer', OR('Org2MSP.member','Org3MSP.member')) ").unwrap();
    assert_eq!(p.to_string(), "OutOf(2, 'Org1MSP.peer', OutOf(1, 'Org2MSP.member', 'Org3MSP.member'))");
    assert_eq!(Policy::parse(&p.to_string()).unwrap(), p);
    assert!(p.is_satisfied_by(&[e("Org3MSP", "peer"), e("Org1MSP", "peer")]));
}

#[test]
fn malformed_policies_are_errors() {
    for bad in [
        "",
        "AND(",
        "OR('Org1MSP'",
        "OutOf(3, 'A', 'B')",
        "XOR('A')",
        "'unterminated",
        "AND('A') extra",
        "'.peer'",
    ] {
        assert!(Policy::parse(bad).is_err(), "{bad:?} should not parse");
    }
    let deep = "AND(".repeat(40) + "'A'" + &")".repeat(40);
    assert!(Policy::parse(&deep).is_err());
}
