//! The CoAP exchange layer fed arbitrary datagrams from a few peers, with time moving forward: never panics.
#![no_main]
use std::net::SocketAddr;
use std::time::{Duration, Instant};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    #[allow(clippy::disallowed_methods)] // fuzzing needs an arbitrary time origin
    let start = Instant::now();
    let mut ep = coap::Endpoint::new(coap::Config { max_body: 4096, ..coap::Config::default() });
    let mut now = start;
    for (i, chunk) in data.split(|b| *b == 0xA5).enumerate() {
        let from = SocketAddr::from(([127, 0, 0, 1], 1000 + (i % 3) as u16));
        ep.handle_datagram(now, from, chunk);
        while let Some(ev) = ep.poll_event() {
            if let coap::Event::Request { id, .. } = ev {
                ep.respond(now, id, coap::response(coap::lite::ResponseType::Content, chunk.to_vec()));
            }
        }
        while ep.poll_transmit().is_some() {}
        now += Duration::from_millis(u64::from(chunk.first().copied().unwrap_or(0)) * 100);
        ep.handle_timeout(now);
    }
});
