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

#[test]
fn timestamp_edge_cases() {
    const S: i64 = 1_000_000;
    assert_eq!(time::parse("20261203T221000"), Some(1_796_335_800 * S));
    assert_eq!(time::parse("20261203T221000,5"), Some(1_796_335_800 * S + 500_000));
    assert_eq!(time::parse("20261203T221000,000001"), Some(1_796_335_800 * S + 1));
    assert_eq!(time::parse("19691231T235959,999999"), Some(-1));
    // Leap years by the Gregorian rule.
    assert_eq!(time::parse("20000229T000000"), Some(951_782_400 * S));
    assert!(time::parse("20240229T000000").is_some());
    // A leap second is the next minute's first, as before.
    assert_eq!(time::parse("20161231T235960"), Some(1_483_228_800 * S));
    assert_eq!(time::parse("20161231T235960,25"), Some(1_483_228_800 * S + 250_000));
    for bad in [
        // Dates that do not exist.
        "20230229T000000",
        "21000229T000000",
        "20260431T000000",
        "20260132T000000",
        "20260100T000000",
        // Times out of range.
        "20260101T240000",
        "20260101T236000",
        "20260101T235961",
        // Not the basic format: offsets, zone letters, separators, signs, lower case, length.
        "20261203T221000Z",
        "20261203T221000+0100",
        "2026-12-03T22:10:00",
        "20261203t221000",
        "+20261203T221000",
        "-2026120T221000",
        "20261203T22100",
        "202612031T221000",
        "20261203T221000,1234567",
        "20261203T221000,12a",
        "20261203T221000.5",
        "20261203T2210é0",
        "",
    ] {
        assert_eq!(time::parse(bad), None, "{bad:?}");
    }
    // Instants no four-digit year can name are written as the first or last one that can be.
    assert_eq!(time::format(-1), "19691231T235959,999999");
    assert_eq!(time::format(i64::MAX), "99991231T235959,999999");
    assert_eq!(time::format(i64::MIN), "00000101T000000,000000");
    assert_eq!(time::parse(&time::format(i64::MAX)), Some(253_402_300_799_999_999));
}

/// The day count this crate computed by hand before it used the `time` crate (Howard Hinnant's days from civil).
fn reference_days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

proptest::proptest! {
    /// Days that every month has: the same instant as the former hand-written calendar.
    #[test]
    fn timestamps_agree_with_the_former_calendar(
        y in 0i64..=9999, m in 1i64..=12, d in 1i64..=28, h in 0i64..24, mi in 0i64..60, se in 0i64..=60,
        frac in proptest::option::of("[0-9]{1,6}"),
    ) {
        let text = format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{se:02}{}", frac.as_ref().map_or(String::new(), |f| format!(",{f}")));
        let micros = frac.as_ref().map_or(0, |f| f.parse::<i64>().unwrap_or(0) * 10i64.pow(6 - f.len() as u32));
        let want = ((reference_days(y, m, d) * 86_400 + h * 3600 + mi * 60 + se) * 1_000_000) + micros;
        proptest::prop_assert_eq!(time::parse(&text), Some(want));
    }
}

#[test]
fn percent_decoding() {
    use crate::http::percent_decode;
    assert_eq!(percent_decode("a%20b%2Fc", false).as_deref(), Some("a b/c"));
    assert_eq!(percent_decode("%C3%a9", false).as_deref(), Some("é"));
    assert_eq!(percent_decode("a+b%2B", true).as_deref(), Some("a b+"));
    assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
    assert_eq!(percent_decode("", true).as_deref(), Some(""));
    // Malformed escapes and bytes that are not UTF-8 are errors, not passed through.
    for bad in ["%", "%4", "a%zz", "%+a", "%-1", "%%41", "%é1", "%FF", "%C3"] {
        assert_eq!(percent_decode(bad, true), None, "{bad:?}");
    }
}
