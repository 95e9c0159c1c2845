//! The DTLS record header parser and ClientHello detection on arbitrary datagrams: never panics, and what
//! parses is consistent (the fragment fits in the datagram; a ClientHello is an epoch-0 handshake record).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let hello = dtls_record::is_client_hello(data);
    if dtls_record::client_hello_random(data).is_some() {
        assert!(hello);
    }
    match dtls_record::parse_header(data) {
        Ok(h) => {
            assert!(data.len() >= dtls_record::HEADER_LEN + usize::from(h.length));
            if hello {
                assert_eq!((h.content_type, h.epoch), (dtls_record::ContentType::Handshake, 0));
            }
        }
        Err(_) => assert!(!hello),
    }
});
