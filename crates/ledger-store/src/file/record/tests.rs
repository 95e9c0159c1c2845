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

/// A record as stores wrote them before commit 2503043: magic `IPB2`, a SHA-256 over the header's first 16 bytes
/// and the payload.
fn sha256_record(number: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&SHA256_MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&number.to_le_bytes());
    let sum = Hash32::of_parts([&out[..16], payload]).0;
    out.extend_from_slice(&sum);
    out.extend_from_slice(payload);
    out
}

#[test]
fn new_records_carry_a_crc_and_zeros_and_old_sha256_records_are_still_read() {
    let rec = encode(5, b"a block").unwrap();
    assert_eq!(&rec[..4], b"IPB3");
    let mut crc = crc32fast::Hasher::new();
    crc.update(&rec[..16]);
    crc.update(b"a block");
    assert_eq!(rec[16..20], crc.finalize().to_le_bytes());
    assert_eq!(rec[20..48], [0u8; 28]);
    assert_eq!(verify(&rec).unwrap().0.kind, ChecksumKind::Crc32);

    let old = sha256_record(5, b"a block");
    let (h, p) = verify(&old).unwrap();
    assert_eq!((h.number, h.kind, p), (5, ChecksumKind::Sha256, &b"a block"[..]));
    for i in 0..old.len() {
        let mut bad = old.clone();
        bad[i] ^= 0x80;
        assert!(verify(&bad).is_err(), "flip at byte {i} of an IPB2 record not detected");
    }
    // A CRC record whose magic is turned into IPB2 (or the reverse) fails its checksum.
    let mut swapped = rec;
    swapped[..4].copy_from_slice(&SHA256_MAGIC);
    assert_eq!(verify(&swapped), Err(RecordError::Checksum));
    assert!(is_magic(b"IPB3") && is_magic(b"IPB2") && !is_magic(b"IPB1"));
}

#[test]
fn a_payload_written_in_place_makes_the_same_record_and_a_wrong_length_is_refused() {
    let payload = b"an encoded block";
    let in_place = encode_with(3, payload.len(), |out| out.extend_from_slice(payload)).unwrap();
    assert_eq!(in_place, encode(3, payload).unwrap());
    let short = encode_with(3, payload.len() + 1, |out| out.extend_from_slice(payload));
    assert!(matches!(short, Err(RecordError::Truncated { .. })), "{short:?}");
}
