use super::*;
use crate::creds::FileCredentialStore;

/// A DTLS 1.2 ClientHello (PSK CCM_8 only, no extensions) with `cookie`, message_seq and record seq `seq`.
fn client_hello(cookie: &[u8], seq: u8) -> Vec<u8> {
    client_hello_random(3, cookie, seq, seq)
}

/// A ClientHello with `random` bytes, message_seq `seq` and record sequence number `rec`.
fn client_hello_random(random: u8, cookie: &[u8], seq: u8, rec: u8) -> Vec<u8> {
    let mut body = vec![0xfe, 0xfd];
    body.extend_from_slice(&[random; 32]);
    body.push(0);
    body.push(u8::try_from(cookie.len()).unwrap());
    body.extend_from_slice(cookie);
    body.extend_from_slice(&[0, 2, 0xc0, 0xa8, 1, 0]);
    let n = u32::try_from(body.len()).unwrap().to_be_bytes();
    let mut hs = vec![1, n[1], n[2], n[3], 0, seq, 0, 0, 0, n[1], n[2], n[3]];
    hs.extend_from_slice(&body);
    let mut out = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, rec];
    out.extend_from_slice(&u16::try_from(hs.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&hs);
    out
}

/// The cookie of a HelloVerifyRequest datagram.
fn cookie_of(hvr: &[u8]) -> Vec<u8> {
    assert_eq!((hvr[0], hvr[13]), (22, 3), "a HelloVerifyRequest");
    let len = usize::from(hvr[13 + 12 + 2]);
    hvr[13 + 12 + 3..13 + 12 + 3 + len].to_vec()
}

fn dtls(now: Instant) -> (Dtls, Arc<Stats>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let creds = Arc::new(FileCredentialStore::open(dir.path()).unwrap());
    let stats = Arc::new(Stats::default());
    (Dtls::new(now, &DtlsConfig::new(creds), stats.clone()).unwrap(), stats, dir)
}

#[test]
fn cookies_are_bound_to_the_address_and_expire() {
    #[allow(clippy::disallowed_methods)] // any origin will do: the layer only takes differences
    let t0 = Instant::now();
    let (mut d, stats, _dir) = dtls(t0);
    let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
    let out = d.handle_datagram(t0, peer, &client_hello(&[], 0));
    assert_eq!((out.transmit.len(), d.sessions()), (1, 0), "a HelloVerifyRequest and no state");
    let cookie = cookie_of(&out.transmit[0]);

    // The cookie from another address, or after it expired: another HelloVerifyRequest, still no state.
    let other = SocketAddr::from(([127, 0, 0, 2], 40000));
    let out = d.handle_datagram(t0, other, &client_hello(&cookie, 1));
    assert_eq!((cookie_of(&out.transmit[0]).len(), d.sessions()), (16, 0));
    let late = t0 + Duration::from_secs(121);
    let out = d.handle_datagram(late, peer, &client_hello(&cookie, 1));
    assert_eq!((cookie_of(&out.transmit[0]).len(), d.sessions()), (16, 0));
    assert_eq!(stats.dtls_hello_verify.load(Ordering::Relaxed), 3);

    // In time, from its address: a session starts (the server's flight goes out).
    let out = d.handle_datagram(t0 + Duration::from_secs(59), peer, &client_hello(&cookie, 1));
    assert_eq!(d.sessions(), 1);
    assert!(out.transmit.iter().any(|t| t[0] == 22 && t[13] == 2), "a ServerHello");
    assert_eq!(
        d.poll_timeout(),
        Some(t0 + Duration::from_secs(59) + HANDSHAKE_TICK),
        "handshakes are polled"
    );
}

#[test]
fn garbage_from_strangers_keeps_no_state() {
    #[allow(clippy::disallowed_methods)] // any origin will do
    let t0 = Instant::now();
    let (mut d, stats, _dir) = dtls(t0);
    for (i, junk) in
        [&b""[..], b"\x16\xfe\xfd", b"GET / HTTP/1.1", &client_hello(&[], 0)[..30]].iter().enumerate()
    {
        let peer = SocketAddr::from(([127, 0, 0, 1], 41000 + u16::try_from(i).unwrap()));
        let out = d.handle_datagram(t0, peer, junk);
        assert!(out.transmit.is_empty() && out.plain.is_empty());
    }
    assert_eq!((d.sessions(), stats.dtls_dropped.load(Ordering::Relaxed)), (0, 4));
    assert!(d.poll_timeout().is_none());
}

#[test]
fn a_retransmitted_client_hello_keeps_the_session_a_new_one_replaces_it() {
    #[allow(clippy::disallowed_methods)] // any origin will do
    let t0 = Instant::now();
    let (mut d, _stats, _dir) = dtls(t0);
    let peer = SocketAddr::from(([127, 0, 0, 1], 42000));
    let cookie = cookie_of(&d.handle_datagram(t0, peer, &client_hello(&[], 0)).transmit[0]);
    let out = d.handle_datagram(t0, peer, &client_hello(&cookie, 1));
    assert!(!out.closed && d.sessions() == 1);
    // The same ClientHello again in a new record (the client did not get our flight yet): the same
    // session goes on (OpenSSL resends its flight on its own timer, tested with a real socket).
    let out = d.handle_datagram(t0, peer, &client_hello_random(3, &cookie, 1, 2));
    assert!(!out.closed && d.sessions() == 1);
    // A new ClientHello (another random) with a valid cookie: a new session replaces the old one.
    let out = d.handle_datagram(t0, peer, &client_hello_random(4, &cookie, 1, 3));
    assert!(out.closed && d.sessions() == 1);
}
