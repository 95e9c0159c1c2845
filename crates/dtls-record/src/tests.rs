use super::*;

fn record(ct: u8, version: u16, epoch: u16, body: &[u8]) -> Vec<u8> {
    let mut r = vec![ct];
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&epoch.to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0, 0, 7]);
    r.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    r.extend_from_slice(body);
    r
}

const HELLO_HS: [u8; 12] = [1, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 40];

#[test]
fn header_fields() {
    let r = record(23, 0xfefd, 1, b"abc");
    let h = parse_header(&r).unwrap();
    assert_eq!(
        h,
        RecordHeader {
            content_type: ContentType::ApplicationData,
            version: 0xfefd,
            epoch: 1,
            sequence: 7,
            length: 3
        }
    );
}

#[test]
fn malformed_headers() {
    assert_eq!(parse_header(&[22, 0xfe]), Err(RecordError::Truncated));
    assert_eq!(parse_header(&record(99, 0xfefd, 0, b"")), Err(RecordError::ContentType(99)));
    assert_eq!(parse_header(&record(22, 0x0303, 0, b"")), Err(RecordError::Version(0x0303)));
    let mut short = record(22, 0xfefd, 0, b"abcd");
    short.pop();
    assert_eq!(parse_header(&short), Err(RecordError::Truncated));
    let mut long = record(22, 0xfefd, 0, b"");
    long[11..13].copy_from_slice(&u16::MAX.to_be_bytes());
    assert_eq!(parse_header(&long), Err(RecordError::TooLong(u16::MAX)));
}

#[test]
fn client_hello_detection() {
    assert!(is_client_hello(&record(22, 0xfefd, 0, &HELLO_HS)));
    assert!(is_client_hello(&record(22, 0xfeff, 0, &HELLO_HS)));
    // Another epoch, another handshake type, a later fragment, application data, a short body.
    assert!(!is_client_hello(&record(22, 0xfefd, 1, &HELLO_HS)));
    let mut finished = HELLO_HS;
    finished[0] = 20;
    assert!(!is_client_hello(&record(22, 0xfefd, 0, &finished)));
    let mut frag = HELLO_HS;
    frag[8] = 5;
    assert!(!is_client_hello(&record(22, 0xfefd, 0, &frag)));
    assert!(!is_client_hello(&record(23, 0xfefd, 0, &HELLO_HS)));
    assert!(!is_client_hello(&record(22, 0xfefd, 0, &HELLO_HS[..5])));
    assert!(!is_client_hello(b"\x40\x01\x00\x01"));
}

#[test]
fn client_hello_random_is_read_from_the_first_fragment() {
    let mut body = HELLO_HS.to_vec();
    body.extend_from_slice(&[0xfe, 0xfd]);
    body.extend((0..32).map(|i| i as u8));
    let r = record(22, 0xfefd, 0, &body);
    let want: [u8; 32] = core::array::from_fn(|i| i as u8);
    assert_eq!(client_hello_random(&r), Some(want));
    // Too short to hold the random, or not a ClientHello.
    assert_eq!(client_hello_random(&record(22, 0xfefd, 0, &body[..40])), None);
    assert_eq!(client_hello_random(&record(23, 0xfefd, 0, &body)), None);
}
