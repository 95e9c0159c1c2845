//! CoAP message decoding: never panics; what decodes re-encodes and decodes to the same packet.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(p) = coap::decode(data)
        && let Some(bytes) = coap::encode(&p)
    {
        let q = coap::decode(&bytes).expect("re-encoded message decodes");
        assert_eq!(p.payload, q.payload);
        assert_eq!(p.get_token(), q.get_token());
    }
    let _ = coap::BlockValue::decode(data);
});
