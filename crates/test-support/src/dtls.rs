//! A DTLS 1.2 client for tests (OpenSSL over a connected UDP socket, blocking): PSK or certificate
//! contexts, handshakes (new, resumed, restarted from the same port), CoAP requests through the session, and
//! raw datagrams beside it.

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslSessionRef, SslStream, SslVersion,
};

/// A connected UDP socket that remembers every datagram it sent.
struct Udp {
    sock: UdpSocket,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Read for Udp {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.sock.recv(buf)
    }
}

impl Write for Udp {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sent.lock().unwrap().push(buf.to_vec());
        self.sock.send(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct Device {
    ssl: SslStream<Udp>,
    raw: UdpSocket,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    mid: u16,
    ctx: SslContext,
}

/// A DTLS 1.2 client context for one PSK identity and cipher list.
pub fn psk_context(identity: &str, key: &[u8], ciphers: &str) -> SslContext {
    let mut b = SslContextBuilder::new(SslMethod::dtls_client()).unwrap();
    b.set_min_proto_version(Some(SslVersion::DTLS1_2)).unwrap();
    b.set_security_level(0);
    b.set_cipher_list(ciphers).unwrap();
    b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::CLIENT);
    let (identity, key) = (identity.to_owned(), key.to_vec());
    b.set_psk_client_callback(move |_ssl, _hint, id_out, psk_out| {
        id_out[..identity.len()].copy_from_slice(identity.as_bytes());
        id_out[identity.len()] = 0;
        psk_out[..key.len()].copy_from_slice(&key);
        Ok(key.len())
    });
    b.build()
}

impl Device {
    /// Handshakes with PSK and `TLS_PSK_WITH_AES_128_CCM_8` from 127.0.0.1 (blocking; call from
    /// `spawn_blocking`).
    pub fn connect(server: SocketAddr, identity: &str, key: &[u8]) -> Device {
        Device::handshake(psk_context(identity, key, "PSK-AES128-CCM8"), server, None)
    }

    /// Handshakes over a new socket with `ctx`, offering `session` for resumption.
    pub fn handshake(ctx: SslContext, server: SocketAddr, session: Option<&SslSessionRef>) -> Device {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(server).unwrap();
        Device::handshake_on(ctx, sock, session)
    }

    /// A full new handshake from the same address and port (a device that rebooted).
    pub fn restart(&self) -> Device {
        let mut d = Device::handshake_on(self.ctx.clone(), self.raw.try_clone().unwrap(), None);
        // New message ids: the server's CoAP deduplication remembers the old ones from this address.
        d.mid = self.mid.wrapping_add(0x1000);
        d
    }

    pub fn handshake_on(ctx: SslContext, sock: UdpSocket, session: Option<&SslSessionRef>) -> Device {
        sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let raw = sock.try_clone().unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let mut ssl = Ssl::new(&ctx).unwrap();
        if let Some(session) = session {
            // SAFETY: the session comes from a handshake made with this same context.
            #[allow(unsafe_code)]
            unsafe {
                ssl.set_session(session).unwrap();
            }
        }
        let mut ssl = SslStream::new(ssl, Udp { sock, sent: sent.clone() }).unwrap();
        let mut tries = 0;
        loop {
            match ssl.connect() {
                Ok(()) => break,
                Err(e) if e.code() == ErrorCode::WANT_READ && tries < 20 => tries += 1,
                Err(e) => panic!("DTLS handshake: {e}"),
            }
        }
        Device { ssl, raw, sent, mid: 0x1000, ctx }
    }

    /// A new connection from a new port that offers this session for resumption.
    pub fn resume(&self, server: SocketAddr) -> Device {
        let session = self.ssl.ssl().session().expect("a session to resume").to_owned();
        Device::handshake(self.ctx.clone(), server, Some(&session))
    }

    /// A CON request with Uri-Path / Uri-Query options and a payload.
    pub fn request(&mut self, code: u8, path: &[&str], query: &[&str], payload: &[u8]) -> Vec<u8> {
        self.mid += 1;
        let mut m = vec![0x44, code, (self.mid >> 8) as u8, self.mid as u8, 1, 2, 3, 4];
        let mut last = 0u8;
        for (num, v) in path.iter().map(|p| (11u8, p)).chain(query.iter().map(|q| (15u8, q))) {
            assert!(v.len() < 269);
            if v.len() < 13 {
                m.push(((num - last) << 4) | v.len() as u8);
            } else {
                m.push(((num - last) << 4) | 13);
                m.push((v.len() - 13) as u8);
            }
            m.extend_from_slice(v.as_bytes());
            last = num;
        }
        if !payload.is_empty() {
            m.push(0xff);
            m.extend_from_slice(payload);
        }
        m
    }

    /// Sends a CoAP message through the session.
    pub fn send(&mut self, coap: &[u8]) {
        self.ssl.ssl_write(coap).unwrap();
    }

    /// The next CoAP message through the session, if one comes within ~`ms`.
    pub fn recv(&mut self, ms: u64) -> Option<Vec<u8>> {
        let mut buf = [0u8; 2048];
        for _ in 0..(ms / 500).max(1) {
            match self.ssl.ssl_read(&mut buf) {
                Ok(n) => return Some(buf[..n].to_vec()),
                Err(e) if e.code() == ErrorCode::WANT_READ => continue,
                Err(e) => panic!("DTLS read: {e}"),
            }
        }
        None
    }

    pub fn register(&mut self, ep: &str) -> Vec<u8> {
        let ep = format!("ep={ep}");
        let req = self.request(0x02, &["rd"], &[&ep, "lt=60", "b=U"], b"</3/0>");
        self.send(&req);
        self.recv(3000).expect("an answer to Register")
    }

    /// Sends a raw datagram beside the session (replays, forgeries, garbage).
    pub fn raw(&self, bytes: &[u8]) {
        self.raw.send(bytes).unwrap();
    }

    /// Sends close_notify (the session ends).
    pub fn close(&mut self) {
        let _ = self.ssl.shutdown();
    }

    /// The UDP socket under the session (its address; datagrams beside the session).
    pub fn socket(&self) -> &UdpSocket {
        &self.raw
    }

    pub fn last_sent(&self) -> Vec<u8> {
        self.sent.lock().unwrap().last().unwrap().clone()
    }
}
