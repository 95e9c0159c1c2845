//! The bootstrap side: Bootstrap-Request queries, then a session fed arbitrary answers (codes, Discover
//! payloads, missing answers) until it ends. Never panics, always ends within its number of steps.
#![no_main]
use lwm2m::bootstrap::{BootstrapConfig, BootstrapSession, Progress, SecurityMode, ServerAccount, parse_request};
use lwm2m::ops::ResponseCode;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0xA5);
    let queries: Vec<String> = String::from_utf8_lossy(parts.next().unwrap_or_default())
        .split('&')
        .map(str::to_owned)
        .collect();
    let preferred = parse_request(&queries).ok().and_then(|r| r.preferred_format);
    let account = ServerAccount {
        short_server_id: 1,
        uri: "coaps://127.0.0.1:5684".into(),
        mode: SecurityMode::Psk,
        identity: b"id".to_vec(),
        server_public_key: vec![],
        secret_key: vec![7; 16],
        lifetime: 300,
        binding: "U".into(),
        notification_storing: true,
    };
    let mut s = BootstrapSession::new(BootstrapConfig::new(vec![account.clone(), account]), preferred);
    // 2 deletes + discover + 2 × 2 writes + finish.
    for step in 0..8 {
        let _ = s.request();
        let answer = parts.next();
        let progress = match answer {
            None => s.on_no_answer("timeout"),
            Some(a) => {
                let code = ResponseCode::from_byte(a.first().copied().unwrap_or(0x44));
                s.on_response(code, a.get(1..).unwrap_or_default())
            }
        };
        match progress {
            Progress::Continue => assert!(step < 7, "a session cannot outlast its steps"),
            Progress::Done | Progress::Failed(_) => return,
        }
    }
});
