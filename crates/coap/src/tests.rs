//! Unit tests of the small pure pieces: block values, freshness, strict decoding.
// Tests pick an arbitrary origin for their virtual clock.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::{BlockValue, DecodeError, decode, is_fresh};

#[test]
fn block_value_golden() {
    // RFC 7959 figure examples: NUM=0 M=1 SZX=6 -> 0x0E; NUM=1 M=0 SZX=2 -> 0x12.
    assert_eq!(BlockValue { num: 0, more: true, szx: 6 }.encode(), vec![0x0E]);
    assert_eq!(BlockValue { num: 1, more: false, szx: 2 }.encode(), vec![0x12]);
    assert_eq!(BlockValue { num: 0, more: false, szx: 0 }.encode(), Vec::<u8>::new());
    assert_eq!(BlockValue::decode(&[]), Some(BlockValue { num: 0, more: false, szx: 0 }));
    assert_eq!(BlockValue::decode(&[0x07]), None, "SZX 7 is reserved");
    assert_eq!(BlockValue::decode(&[1, 2, 3, 4]), None);
    assert_eq!(BlockValue::szx_for(1024), 6);
    assert_eq!(BlockValue::szx_for(1000), 5);
    assert_eq!(BlockValue::szx_for(1), 0);
}

proptest! {
    #[test]
    fn block_value_round_trip(num in 0u32..(1 << 20), more: bool, szx in 0u8..7) {
        let b = BlockValue { num, more, szx };
        prop_assert_eq!(BlockValue::decode(&b.encode()), Some(b));
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(&bytes);
    }
}

#[test]
fn freshness_window() {
    let t = Instant::now();
    assert!(is_fresh(1, t, 2, t));
    assert!(!is_fresh(2, t, 1, t));
    assert!(!is_fresh(5, t, 5, t));
    // wrap-around: 2^24-1 then 0 is newer
    assert!(is_fresh((1 << 24) - 1, t, 0, t));
    // after 128 s anything is fresh
    assert!(is_fresh(10, t, 3, t + Duration::from_secs(129)));
}

#[test]
fn strict_decode() {
    assert_eq!(decode(&[0x40, 0x01]), Err(DecodeError::Truncated));
    assert_eq!(decode(&[0x80, 0x01, 0, 1]), Err(DecodeError::Version(2)));
    assert!(matches!(decode(&[0x40, 0x20, 0, 1]), Err(DecodeError::Malformed(_))), "class 1 reserved");
    assert!(matches!(decode(&[0x41, 0x00, 0, 1, 7]), Err(DecodeError::Malformed(_))), "empty with token");
    assert!(
        matches!(decode(&[0x40, 0x01, 0, 1, 0xFF]), Err(DecodeError::Malformed(_))),
        "marker, no payload"
    );
    assert!(matches!(decode(&[0x49, 0x01, 0, 1]), Err(DecodeError::Malformed(_))), "tkl 9");
    assert!(matches!(decode(&[0x40, 0x01, 0, 1, 0xF1]), Err(DecodeError::Malformed(_))), "delta 15");
    // An option value ending in 0xFF is not a payload marker.
    let p = decode(&[0x40, 0x01, 0, 1, 0xB1, 0xFF]).unwrap();
    assert!(p.payload.is_empty());
    let p = decode(&[0x40, 0x01, 0, 1, 0xFF, b'x']).unwrap();
    assert_eq!(p.payload, b"x");
}
