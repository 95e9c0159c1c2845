//! CoRE link format: never panics; what parses prints and parses to the same links.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(links) = lwm2m::link::parse(&text) {
        let printed = lwm2m::link::format(&links);
        let again = lwm2m::link::parse(&printed).expect("printed links parse");
        assert_eq!(again.len(), links.len());
    }
});
