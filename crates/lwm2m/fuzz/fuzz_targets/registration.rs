//! Register/Update parsing from arbitrary queries and payloads: never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (q, payload) = data.split_at(data.len().min(usize::from(data.first().copied().unwrap_or(0))));
    let queries: Vec<String> = String::from_utf8_lossy(q).split('&').map(str::to_owned).collect();
    let cf = data.get(1).map(|b| u16::from(*b % 64));
    let _ = lwm2m::registration::parse_register(&queries, cf, payload);
    let _ = lwm2m::registration::parse_update(&queries, cf, payload);
});
