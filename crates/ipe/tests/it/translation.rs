//! Value translation both ways: LwM2M values ⇄ oneM2M readings, through codecs too.

use ipe::translate::{
    base64_encode, decode_payload, reading, record_from_reading, records_from_json, records_to_json,
};
use lwm2m::{ContentFormat, LwM2mPath, Record, Registry, Value};
use proptest::prelude::*;
use serde_json::json;

fn p(s: &str) -> LwM2mPath {
    s.parse().unwrap()
}

/// Every type, on a registry-typed path and on an untyped (vendor) path.
fn cases() -> Vec<(LwM2mPath, Value, serde_json::Value)> {
    vec![
        (p("/3/0/9"), Value::Integer(87), json!(87)),
        (p("/3303/0/5700"), Value::Float(-12.75), json!(-12.75)),
        (p("/3311/0/5850"), Value::Boolean(false), json!(false)),
        (p("/3/0/0"), Value::String("ACME Ltd".into()), json!("ACME Ltd")),
        (p("/5/0/0"), Value::Opaque(vec![0, 1, 2, 255]), json!("AAEC/w==")),
        (p("/3/0/13"), Value::Time(1_700_000_123), json!(1_700_000_123)),
        (p("/3/0/11/0"), Value::Integer(0), json!(0)),
        (p("/4/0/0"), Value::Integer(41), json!(41)),
        (p("/9999/0/1"), Value::Objlnk(3, 0), json!("3:0")),
        (p("/9999/0/2"), Value::Unsigned(u64::MAX), json!(u64::MAX)),
    ]
}

#[test]
fn every_type_translates_both_ways() {
    let reg = Registry::builtin();
    for (path, value, v) in cases() {
        let rec = Record::new(path, value.clone());
        let r = reading(&reg, &rec, 1000).unwrap();
        assert_eq!(r["v"], v, "{path}");
        assert_eq!(r["type"], value.resource_type().name(), "{path}");
        assert_eq!(r["t"], 1000);
        let back = record_from_reading(&reg, &path, &r).unwrap();
        assert_eq!(back.value, value, "{path}");
        // The typed list form gateways use.
        let list = records_to_json(std::slice::from_ref(&rec)).unwrap();
        assert_eq!(records_from_json(&reg, &list).unwrap()[0].value, value, "{path}");
    }
}

#[test]
fn registry_types_win_and_bad_values_are_errors() {
    let reg = Registry::builtin();
    // A string "42" written to an integer resource is an integer; "abc" is an error.
    assert_eq!(record_from_reading(&reg, &p("/1/0/1"), &json!("42")).unwrap().value, Value::Integer(42));
    assert!(record_from_reading(&reg, &p("/1/0/1"), &json!("abc")).is_err());
    assert!(record_from_reading(&reg, &p("/1/0/1"), &json!({"v": [1]})).is_err());
    assert!(record_from_reading(&reg, &p("/9999/0/1"), &json!({"v": 1, "type": "NOPE"})).is_err());
    assert!(record_from_reading(&reg, &p("/5/0/0"), &json!("not base64!")).is_err());
    assert!(record_from_reading(&reg, &p("/3311/0/5850"), &json!(2)).is_err());
    assert!(record_from_reading(&reg, &p("/3/0/4"), &json!(1)).is_err(), "executable");
    assert!(reading(&reg, &Record::new(p("/3303/0/5700"), Value::Float(f64::NAN)), 0).is_err());
}

#[test]
fn payloads_of_every_codec_decode_to_the_same_readings() {
    let reg = Registry::builtin();
    let base = p("/3/0");
    let records = vec![
        Record::new(p("/3/0/0"), Value::String("ACME".into())),
        Record::new(p("/3/0/9"), Value::Integer(80)),
        Record::new(p("/3/0/13"), Value::Time(1_700_000_000)),
    ];
    for ct in [
        ContentFormat::TLV,
        ContentFormat::SENML_JSON,
        ContentFormat::SENML_CBOR,
        ContentFormat::JSON,
        ContentFormat::LWM2M_CBOR,
    ] {
        let bytes = lwm2m::codec::encode(ct, &records, &base).unwrap();
        let got = decode_payload(&reg, ct.0, &base64_encode(&bytes), &base).unwrap();
        let vals: Vec<_> = got.iter().map(|r| (r.path, r.value.clone())).collect();
        let want: Vec<_> = records.iter().map(|r| (r.path, r.value.clone())).collect();
        assert_eq!(vals, want, "format {}", ct.name());
    }
    let text = decode_payload(&reg, 0, &base64_encode(b"21.5"), &p("/3303/0/5700")).unwrap();
    assert_eq!(text[0].value, Value::Float(21.5));
}

fn value_strategy() -> impl Strategy<Value = (String, Value)> {
    prop_oneof![
        any::<i64>().prop_map(|i| ("/9999/0/1".to_owned(), Value::Integer(i))),
        any::<i64>().prop_map(|i| ("/3/0/13".to_owned(), Value::Time(i))),
        any::<u64>().prop_map(|u| ("/9999/0/2".to_owned(), Value::Unsigned(u))),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| ("/3303/0/5700".to_owned(), Value::Float(f))),
        any::<bool>().prop_map(|b| ("/9999/0/3".to_owned(), Value::Boolean(b))),
        ".*".prop_map(|s| ("/9999/0/4".to_owned(), Value::String(s))),
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| ("/9999/0/5".to_owned(), Value::Opaque(b))),
        (0u16..=65534, 0u16..=65534).prop_map(|(a, b)| ("/9999/0/6".to_owned(), Value::Objlnk(a, b))),
    ]
}

proptest! {
    #[test]
    fn reading_round_trip((path, value) in value_strategy(), t in any::<i32>()) {
        let reg = Registry::builtin();
        let path = p(&path);
        let r = reading(&reg, &Record::new(path, value.clone()), i64::from(t)).unwrap();
        // Through the JSON text, as it travels.
        let text = serde_json::to_string(&r).unwrap();
        let r: serde_json::Value = serde_json::from_str(&text).unwrap();
        let back = record_from_reading(&reg, &path, &r).unwrap();
        prop_assert_eq!(back.value, value);
    }

    #[test]
    fn write_content_round_trips_through_tlv(i in any::<i64>(), f in -1e12f64..1e12, b in any::<bool>(), s in "[a-zA-Z0-9 ]{0,20}") {
        let reg = Registry::builtin();
        let base = p("/3311/0");
        let content = json!({"values": {"5851": i, "5850": b, "5750": s, "5805": f}});
        let recs = ipe::translate::records_from_content(&reg, &base, &content).unwrap();
        let bytes = lwm2m::codec::encode(ContentFormat::TLV, &recs, &base).unwrap();
        let back = decode_payload(&reg, ContentFormat::TLV.0, &base64_encode(&bytes), &base).unwrap();
        prop_assert_eq!(back.iter().map(|r| r.value.clone()).collect::<Vec<_>>(), recs.iter().map(|r| r.value.clone()).collect::<Vec<_>>());
    }

    #[test]
    fn garbage_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
        let reg = Registry::builtin();
        let _ = decode_payload(&reg, 11542, &base64_encode(&raw), &p("/3/0"));
        let _ = decode_payload(&reg, 112, &base64_encode(&raw), &p("/"));
        if let Ok(j) = serde_json::from_slice::<serde_json::Value>(&raw) {
            let _ = records_from_json(&reg, &j);
            let _ = ipe::translate::records_from_content(&reg, &p("/3/0"), &j);
        }
    }
}

proptest! {
    #[test]
    fn timestamp_parsing_never_panics(s in "\\PC{0,30}", prefix in "[0-9]{8}T[0-9]{6}") {
        let _ = ipe::translate::parse_timestamp(&s);
        let _ = ipe::translate::parse_timestamp(&format!("{prefix}{s}"));
        let _ = ipe::translate::parse_timestamp(&format!("2023-11-14T22:13:2{s}"));
    }
}
