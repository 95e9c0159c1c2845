//! Unit tests of the pure helpers: AE-IDs, patterns, base64, type names.

use crate::mapping::{MAX_AE_ID, ae_id_for, with_hash};
use crate::policy::matches;
use crate::translate::{base64_decode, base64_encode, parse_type, rsc_for_code};
use lwm2m::ResourceType;

#[test]
fn ae_ids_use_only_characters_a_cse_accepts() {
    assert_eq!(ae_id_for("imei:356938035643809"), "Cimei-356938035643809");
    assert_eq!(ae_id_for("urn:dev:os:32473-123456"), "Curn-dev-os-32473-123456");
    assert_eq!(ae_id_for("sensor_1.a~b"), "Csensor_1.a~b");
    assert_eq!(ae_id_for("héllo wörld"), "Ch-llo-w-rld");
    let long = "x".repeat(200);
    let id = ae_id_for(&long);
    assert_eq!(id.len(), MAX_AE_ID);
    assert_ne!(id, ae_id_for(&"x".repeat(201)), "long names keep a hash of the full name");
    assert_ne!(with_hash("Ca-b", "a:b"), with_hash("Ca-b", "a-b"));
}

#[test]
fn patterns_are_exact_star_or_prefix() {
    assert!(matches("*", "anything"));
    assert!(matches("Capp-*", "Capp-1"));
    assert!(!matches("Capp-*", "Cother"));
    assert!(matches("Capp", "Capp"));
    assert!(!matches("Capp", "Capp2"));
}

#[test]
fn base64_round_trips_and_rejects_garbage() {
    for n in 0..20u8 {
        let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
        assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
    }
    assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64_encode(b"fo"), "Zm8=");
    assert_eq!(base64_decode("Zm8"), Some(b"fo".to_vec()));
    assert_eq!(base64_decode("Z"), None);
    assert_eq!(base64_decode("Zm9v!"), None);
}

#[test]
fn type_names_and_codes() {
    assert_eq!(parse_type("float"), Some(ResourceType::Float));
    assert_eq!(parse_type("UNSIGNED_INTEGER"), Some(ResourceType::Unsigned));
    assert_eq!(parse_type("unsigned integer"), Some(ResourceType::Unsigned));
    assert_eq!(parse_type("bogus"), None);
    assert_eq!(rsc_for_code("2.05"), 2000);
    assert_eq!(rsc_for_code("2.04"), 2004);
    assert_eq!(rsc_for_code("4.04"), 4004);
    assert_eq!(rsc_for_code("5.03"), 5000);
}

#[test]
fn timestamps_in_onem2m_and_rfc3339_form() {
    use crate::translate::parse_timestamp;
    assert_eq!(parse_timestamp("20231114T221320"), Some(1_700_000_000));
    assert_eq!(parse_timestamp("2023-11-14T22:13:20Z"), Some(1_700_000_000));
    assert_eq!(parse_timestamp("2023-11-14T22:13:20.123Z"), Some(1_700_000_000));
    assert_eq!(parse_timestamp("19700101T000000"), Some(0));
    assert_eq!(parse_timestamp("2000-02-29T00:00:00Z"), Some(951_782_400));
    assert_eq!(parse_timestamp("2023-11-14T22:13:20+02:00"), None, "offsets are not guessed");
    assert_eq!(parse_timestamp("2023-13-14T22:13:20Z"), None);
    assert_eq!(parse_timestamp("yesterday"), None);
    assert_eq!(parse_timestamp("2023-11-14T22:13:2é"), None);
}

#[test]
fn timestamp_edge_cases() {
    use crate::translate::parse_timestamp;
    const T: i64 = 1_700_000_000;
    // Fractions of any length with `.` or `,`, `Z` or `z`, `T`, `t` or a space.
    for ok in [
        "20231114T221320Z",
        "20231114T221320,5",
        "20231114T221320.123456789012Z",
        "2023-11-14t22:13:20z",
        "2023-11-14 22:13:20",
        "2023-11-14T22:13:20,5Z",
    ] {
        assert_eq!(parse_timestamp(ok), Some(T), "{ok:?}");
    }
    assert_eq!(parse_timestamp("20161231T235960"), Some(1_483_228_800), "a leap second");
    assert_eq!(parse_timestamp("2016-12-31T23:59:60Z"), Some(1_483_228_800), "a leap second");
    assert_eq!(parse_timestamp("2024-02-29T00:00:00Z"), Some(1_709_164_800));
    for bad in [
        // Dates that do not exist.
        "2023-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "20230431T000000",
        "2023-11-14T24:00:00Z",
        "2023-11-14T22:13:61Z",
        // Offsets other than Z, stray characters where digits belong, a fraction without digits.
        "2023-11-14T22:13:20-00:00",
        "20231114T221320+0200",
        "20231114Tab132000",
        "2023-11-14T22:13:20.Z",
        "2023-11-14T22:13:20.5.5",
        "20231114T2213201",
        "+2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20ZZ",
        "2023/11/14T22:13:20Z",
        "",
    ] {
        assert_eq!(parse_timestamp(bad), None, "{bad:?}");
    }
}

#[test]
fn whole_floats_fit_integers_but_fractions_do_not() {
    use crate::translate::json_to_value;
    use lwm2m::{LwM2mPath, Value};
    use serde_json::json;
    let p = LwM2mPath::ROOT;
    assert_eq!(json_to_value(&p, Some(ResourceType::Integer), &json!(20.0)).unwrap(), Value::Integer(20));
    assert!(json_to_value(&p, Some(ResourceType::Integer), &json!(20.5)).is_err());
    assert_eq!(json_to_value(&p, Some(ResourceType::Unsigned), &json!(7.0)).unwrap(), Value::Unsigned(7));
    assert!(json_to_value(&p, Some(ResourceType::Unsigned), &json!(-1)).is_err());
    assert_eq!(
        json_to_value(&p, Some(ResourceType::Time), &json!("20231114T221320")).unwrap(),
        Value::Time(1_700_000_000)
    );
}

#[test]
fn hashed_ae_ids_cut_at_character_boundaries() {
    let base = "é".repeat(40);
    let id = with_hash(&base, "x");
    // 55 bytes allowed before the suffix: 27 two-byte characters fit.
    assert_eq!(id.len(), 27 * 2 + 9);
    assert!(id.starts_with(&"é".repeat(27)));
    assert_eq!(id.as_bytes()[54], b'-');
}

#[test]
fn refused_requests_still_get_an_rsp_content_instance() {
    use crate::mapping::rejection_cin;
    let cin = rejection_cin("Cimei-1", "r9", "Capp1", 403, "the access policy does not let Capp1 Write");
    assert_eq!(cin.container, "Cimei-1/rsp");
    assert_eq!(cin.con["status"], "rejected");
    assert_eq!(cin.con["rsc"], 4103);
    assert_eq!(crate::mapping::rsc_for_contract_status(409), 4105);
    assert_eq!(crate::mapping::rsc_for_contract_status(500), 5000);
}
