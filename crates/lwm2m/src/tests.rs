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

#[test]
fn base64_lenient_decoding() {
    // Either alphabet, even mixed; padding optional, and extra padding ignored.
    assert_eq!(b64::decode("-_8").unwrap(), [0xFB, 0xFF]);
    assert_eq!(b64::decode("+/8=").unwrap(), [0xFB, 0xFF]);
    assert_eq!(b64::decode("-/8").unwrap(), [0xFB, 0xFF]);
    assert_eq!(b64::decode("Zm8").unwrap(), b"fo");
    assert_eq!(b64::decode("Zm8====").unwrap(), b"fo");
    assert_eq!(b64::decode("====").unwrap(), b"");
    // Non-zero bits after the last byte are tolerated.
    assert_eq!(b64::decode("Zm9").unwrap(), b"fo");
    // A lone trailing character, padding inside the text, characters of neither alphabet.
    for bad in ["Z", "Zm9vY", "Zm=8", "Zm 8", "Zm9v\n", "Zm9é"] {
        assert_eq!(b64::decode(bad), None, "{bad:?}");
    }
}

/// The decoder this crate had before it used the `base64` crate: the library must agree with it.
fn reference_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from(acc >> bits).ok()?);
            acc &= (1 << bits) - 1;
        }
    }
    (bits < 6).then_some(out)
}

proptest! {
    #[test]
    fn base64_decodes_as_before(s in "[A-Za-z0-9+/_=-]{0,13}|\\PC{0,8}") {
        prop_assert_eq!(b64::decode(&s), reference_decode(&s));
    }

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
