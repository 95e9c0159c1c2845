//! Unit tests of the core types.

use crate::{ResourceName, ResourceType, Rsc, Target, time};

#[test]
fn rsc_codes_round_trip_and_map_to_http() {
    for r in Rsc::ALL {
        assert_eq!(Rsc::from_code(r.code()), Some(*r));
    }
    assert_eq!(Rsc::OriginatorHasAlreadyRegistered.code(), 4117);
    assert_eq!(Rsc::OriginatorHasNoPrivilege.http_status(), http::StatusCode::FORBIDDEN);
    assert_eq!(Rsc::Created.http_status(), http::StatusCode::CREATED);
    assert_eq!(Rsc::ReleaseVersionNotSupported.http_status(), http::StatusCode::NOT_IMPLEMENTED);
    assert_eq!(Rsc::from_code(4999), None);
}

#[test]
fn resource_types() {
    assert_eq!(ResourceType::CseBase.code(), 5);
    assert_eq!(ResourceType::Subscription.code(), 23);
    assert_eq!(ResourceType::from_code(1), Some(ResourceType::AccessControlPolicy));
    assert_eq!(ResourceType::from_short_name("m2m:cin"), Some(ResourceType::ContentInstance));
    assert_eq!(ResourceType::Container.ri_prefix(), "cnt");
}

#[test]
fn targets_parse_and_print() {
    let cases = [
        ("cse-in/ae1/cnt", Target::CseRelative("cse-in/ae1/cnt".into())),
        ("/id-in/cse-in/ae1", Target::SpRelative { cse_id: "id-in".into(), rest: "cse-in/ae1".into() }),
        ("/id-in", Target::SpRelative { cse_id: "id-in".into(), rest: String::new() }),
        (
            "//sp.example/id-in/ri1",
            Target::Absolute { sp_id: "sp.example".into(), cse_id: "id-in".into(), rest: "ri1".into() },
        ),
    ];
    for (s, t) in cases {
        let parsed = Target::parse(s).unwrap();
        assert_eq!(parsed, t, "{s}");
        assert_eq!(parsed.to_string(), s);
    }
    for bad in ["", "a//b", "a b", "cse-in/\u{1}", "//", "/", "a?b"] {
        assert!(Target::parse(bad).is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn resource_names() {
    assert!(ResourceName::new("temp-1_x.y").is_ok());
    assert!(ResourceName::new("").is_err());
    assert!(ResourceName::new("a/b").is_err());
    assert!(ResourceName::new(&"x".repeat(256)).is_err());
}

#[test]
fn timestamps() {
    assert_eq!(time::format(0), "19700101T000000,000000");
    let t = time::parse("20261125T215300,123456").unwrap();
    assert_eq!(time::format(t), "20261125T215300,123456");
    assert_eq!(time::parse("20261125T215300"), Some(t - 123_456));
    assert_eq!(time::parse("2026112T215300"), None);
    assert_eq!(time::parse("20261325T215300"), None);
    assert_eq!(time::parse("20261125T215300,"), None);
}
