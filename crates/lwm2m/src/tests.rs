//! Unit tests of crate-private pieces (base64) and value text forms; codecs are tested in tests/it.

use proptest::prelude::*;

use crate::codec::base64 as b64;
use crate::{ResourceType, Value};

#[test]
fn base64_golden() {
    // RFC 4648 §10 test vectors.
    for (plain, std) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(b64::encode(plain.as_bytes(), false), std);
        assert_eq!(b64::decode(std).unwrap(), plain.as_bytes());
        assert_eq!(b64::encode(plain.as_bytes(), true), std.trim_end_matches('='));
    }
    assert_eq!(b64::encode(&[0xFB, 0xFF], true), "-_8");
    assert!(b64::decode("a*b").is_none());
}

proptest! {
    #[test]
    fn base64_round_trip(data in proptest::collection::vec(any::<u8>(), 0..64), url: bool) {
        prop_assert_eq!(b64::decode(&b64::encode(&data, url)).unwrap(), data);
    }
}

#[test]
fn value_text_forms() {
    assert_eq!(Value::from_text(ResourceType::Objlnk, "3:0"), Some(Value::Objlnk(3, 0)));
    assert_eq!(Value::from_text(ResourceType::Boolean, "2"), None);
    assert_eq!(Value::from_text(ResourceType::Integer, " 42 "), Some(Value::Integer(42)));
    assert_eq!(Value::Boolean(true).to_string(), "1");
    assert_eq!(Value::Opaque(vec![0xAB, 1]).to_string(), "ab01");
    assert_eq!(Value::Opaque(b"17".to_vec()).coerce(ResourceType::Integer), Value::Integer(17));
    assert_eq!(Value::String("x".into()).coerce(ResourceType::Float), Value::String("x".into()));
}
