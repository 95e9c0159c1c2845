//! Unit tests of the record codec.

use super::*;

#[test]
fn round_trip_and_every_single_byte_flip_is_caught() {
    let rec = encode(7, b"hello block").unwrap();
    assert_eq!(rec.len(), HEADER_LEN + 11);
    let (h, p) = verify(&rec).unwrap();
    assert_eq!((h.number, h.len, p), (7, 11, &b"hello block"[..]));
    for i in 0..rec.len() {
        let mut bad = rec.clone();
        bad[i] ^= 0x01;
        assert!(verify(&bad).is_err(), "flip at byte {i} not detected");
    }
}

#[test]
fn short_and_oversized_records_are_named() {
    let rec = encode(1, &[9; 100]).unwrap();
    assert_eq!(verify(&rec[..20]), Err(RecordError::Truncated { needed: HEADER_LEN as u64, available: 20 }));
    assert_eq!(verify(&rec[..60]), Err(RecordError::Truncated { needed: 148, available: 60 }));
    let mut big = rec.clone();
    big[4..8].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
    assert_eq!(verify(&big), Err(RecordError::TooLong(MAX_PAYLOAD + 1)));
    let mut zero = rec;
    zero[..4].copy_from_slice(&[0; 4]);
    assert_eq!(verify(&zero), Err(RecordError::BadMagic([0; 4])));
}

#[test]
fn segment_names() {
    assert_eq!(segment_name(3), "000003.seg");
    assert_eq!(parse_segment_name("000003.seg"), Some(3));
    assert_eq!(parse_segment_name("1234567.seg"), Some(1_234_567));
    assert_eq!(parse_segment_name("3.seg"), None);
    assert_eq!(parse_segment_name("00000a.seg"), None);
    assert_eq!(parse_segment_name("000003.idx"), None);
}
