//! DTLS (`coaps://`): libcoap's `coap-client-openssl` and `coap-client-gnutls` register with PSK and with a
//! certificate; refusals (wrong key, unknown identity or certificate, identity bound to another endpoint,
//! NoSec under a credentialed name, NoSec off); a DTLS device (an OpenSSL client driven by this test) whose
//! session survives replayed, forged and malformed records and a flood of ClientHellos from 100 source
//! addresses, and that the server reads a resource from through its session.

use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lwm2m_server::{Credential, DtlsConfig, FileCredentialStore, Identity, ServerEvent};
use openssl::ssl::{SslContext, SslContextBuilder, SslMethod, SslVersion};

use crate::common::{TestServer, wait_event};
pub(crate) use test_support::dtls::{Device, psk_context};

pub(crate) struct DtlsServer {
    pub(crate) server: TestServer,
    pub(crate) creds: Arc<FileCredentialStore>,
    _dir: tempfile::TempDir,
}

impl DtlsServer {
    pub(crate) async fn start(nosec: bool) -> DtlsServer {
        Self::start_idle(nosec, Duration::from_secs(3600)).await
    }

    pub(crate) async fn start_idle(nosec: bool, idle: Duration) -> DtlsServer {
        let dir = tempfile::tempdir().unwrap();
        let creds = Arc::new(FileCredentialStore::open(dir.path()).unwrap());
        let c = creds.clone();
        let server = TestServer::start_with(move |cfg| {
            let mut d = DtlsConfig::new(c);
            d.addr = SocketAddr::from(([127, 0, 0, 1], 0));
            d.handshake_timeout = Duration::from_secs(2);
            d.idle_timeout = idle;
            cfg.dtls = Some(d);
            cfg.nosec = nosec;
        })
        .await;
        DtlsServer { server, creds, _dir: dir }
    }

    pub(crate) fn psk(&self, ep: &str, identity: &str, key: &[u8]) {
        self.creds.set(ep, Credential::Psk { identity: identity.into(), key: key.to_vec() }).unwrap();
    }

    pub(crate) fn coaps(&self) -> String {
        format!("coaps://127.0.0.1:{}", self.server.handle.dtls_addr().unwrap().port())
    }

    pub(crate) fn stat(&self, f: impl Fn(&lwm2m_server::Stats) -> &std::sync::atomic::AtomicU64) -> u64 {
        f(self.server.handle.stats()).load(Ordering::Relaxed)
    }
}

/// Runs a libcoap client binary; returns stdout + stderr.
async fn libcoap(bin: std::path::PathBuf, args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || Command::new(bin).args(["-B", "4"]).args(&args).output())
        .await
        .unwrap()
        .expect("libcoap client runs");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn register_args(base: &str, ep: &str, auth: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = auth.iter().map(|s| s.to_string()).collect();
    v.extend(
        ["-m", "post", "-t", "40", "-e", "</3/0>,</3/0/0>", &format!("{base}/rd?ep={ep}&lt=60&b=U")]
            .iter()
            .map(|s| s.to_string()),
    );
    v
}

async fn dtls_session(events: &mut tokio::sync::broadcast::Receiver<ServerEvent>) -> (Identity, String) {
    wait_event(events, 10, |e| match e {
        ServerEvent::DtlsSession { identity, cipher, .. } => Some((identity.clone(), cipher.clone())),
        _ => None,
    })
    .await
}

async fn registered(
    events: &mut tokio::sync::broadcast::Receiver<ServerEvent>,
    ep: &str,
) -> Arc<lwm2m_server::ClientInfo> {
    wait_event(events, 10, |e| match e {
        ServerEvent::Registered(c) if c.endpoint == ep => Some(c.clone()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libcoap_psk_registration_openssl_and_gnutls() {
    let s = DtlsServer::start(true).await;
    s.psk("psk-ossl", "id-ossl", b"secret-ossl-0123");
    s.psk("psk-gnutls", "id-gnutls", b"secret-gnutls-0123");
    let mut events = s.server.handle.subscribe_events();

    let auth = ["-u", "id-ossl", "-k", "secret-ossl-0123"];
    let out =
        libcoap(test_support::coap_client_openssl(), register_args(&s.coaps(), "psk-ossl", &auth)).await;
    let (id, cipher) = dtls_session(&mut events).await;
    assert_eq!(id, Identity::Psk("id-ossl".into()), "{out}");
    assert_eq!(cipher, "TLS_PSK_WITH_AES_128_CCM_8");
    let c = registered(&mut events, "psk-ossl").await;
    assert_eq!(c.identity, Some(Identity::Psk("id-ossl".into())));

    let auth = ["-u", "id-gnutls", "-k", "secret-gnutls-0123"];
    let out =
        libcoap(test_support::coap_client_gnutls(), register_args(&s.coaps(), "psk-gnutls", &auth)).await;
    let (id, cipher) = dtls_session(&mut events).await;
    eprintln!("coap-client-gnutls PSK negotiated {cipher}");
    assert_eq!(id, Identity::Psk("id-gnutls".into()), "{out}");
    assert!(cipher.starts_with("TLS_PSK_WITH_AES_128_"), "{cipher}");
    let c = registered(&mut events, "psk-gnutls").await;
    assert_eq!(c.identity, Some(Identity::Psk("id-gnutls".into())));
    assert_eq!(s.stat(|s| &s.dtls_handshakes), 2);
    assert_eq!(s.stat(|s| &s.refused), 0);
    s.server.stop().await;
}

/// A self-signed P-256 certificate and key (PEM) and the certificate's SHA-256.
pub(crate) fn client_certificate(
    dir: &Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, [u8; 32]) {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509, X509NameBuilder};
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, name).unwrap();
    let n = n.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&n).unwrap();
    b.set_issuer_name(&n).unwrap();
    b.set_pubkey(&key).unwrap();
    let serial = openssl::bn::BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    let (from, until) = (
        openssl::asn1::Asn1Time::days_from_now(0).unwrap(),
        openssl::asn1::Asn1Time::days_from_now(30).unwrap(),
    );
    b.set_not_before(&from).unwrap();
    b.set_not_after(&until).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    let fp: [u8; 32] = (*cert.digest(MessageDigest::sha256()).unwrap()).try_into().unwrap();
    let (cp, kp) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cp, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&kp, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cp, kp, fp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libcoap_certificate_registration_and_unknown_certificate() {
    let s = DtlsServer::start(true).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, fp) = client_certificate(dir.path(), "x509-dev");
    s.creds.set("x509-dev", Credential::X509 { sha256: fp }).unwrap();
    let mut events = s.server.handle.subscribe_events();

    for (bin, ep) in
        [(test_support::coap_client_openssl(), "x509-dev"), (test_support::coap_client_gnutls(), "x509-dev")]
    {
        let auth = ["-c", cert.to_str().unwrap(), "-j", key.to_str().unwrap(), "-n"];
        let out = libcoap(bin.clone(), register_args(&s.coaps(), ep, &auth)).await;
        let (id, cipher) = dtls_session(&mut events).await;
        eprintln!("{} certificate negotiated {cipher}", bin.display());
        assert_eq!(id, Identity::X509 { sha256: fp }, "{out}");
        assert!(cipher.starts_with("TLS_ECDHE_ECDSA_WITH_AES_128_"), "{cipher}");
        let c = registered(&mut events, ep).await;
        assert_eq!(c.identity, Some(Identity::X509 { sha256: fp }));
    }

    // A certificate the store does not know: no session, no registration.
    let (cert2, key2, _) = client_certificate(dir.path(), "stranger");
    let auth = ["-c", cert2.to_str().unwrap(), "-j", key2.to_str().unwrap(), "-n"];
    libcoap(test_support::coap_client_openssl(), register_args(&s.coaps(), "x509-dev", &auth)).await;
    assert_eq!(s.stat(|s| &s.dtls_handshakes), 2);
    assert!(s.stat(|s| &s.dtls_handshakes_failed) >= 1);
    assert_eq!(s.server.handle.registration_count(), 1);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_wrong_key_unknown_identity_other_endpoint_nosec() {
    let s = DtlsServer::start(true).await;
    s.psk("dev-a", "id-a", b"key-of-device-a");
    s.psk("dev-b", "id-b", b"key-of-device-b");
    let base = s.coaps();

    // Wrong key and unknown identity: the handshake fails, nothing registers.
    for auth in [["-u", "id-a", "-k", "not-the-key"], ["-u", "nobody", "-k", "key-of-device-a"]] {
        libcoap(test_support::coap_client_openssl(), register_args(&base, "dev-a", &auth)).await;
    }
    // The unknown identity fails at once (alert); a wrong key makes the client's Finished undecryptable,
    // which DTLS drops silently, so that handshake ends by the handshake timeout (2 s here).
    for _ in 0..40 {
        if s.stat(|s| &s.dtls_handshakes_failed) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.stat(|s| &s.dtls_handshakes), 0);
    assert_eq!(s.stat(|s| &s.dtls_handshakes_failed), 2);
    assert_eq!(s.stat(|s| &s.dtls_sessions), 0);
    assert_eq!(s.server.handle.registration_count(), 0);

    // A valid identity registering under another device's name: 4.03.
    let out = libcoap(
        test_support::coap_client_openssl(),
        register_args(&base, "dev-b", &["-u", "id-a", "-k", "key-of-device-a"]),
    )
    .await;
    assert!(out.contains("4.03"), "{out}");
    assert_eq!(s.stat(|s| &s.dtls_handshakes), 1);

    // NoSec Register of a credentialed endpoint: 4.03; of an endpoint without credentials: 2.01.
    let plain = format!("coap://127.0.0.1:{}", s.server.coap().port());
    let out = libcoap(test_support::coap_client(), register_args(&plain, "dev-a", &[])).await;
    assert!(out.contains("4.03"), "{out}");
    assert_eq!(s.stat(|s| &s.refused), 2);
    let mut events = s.server.handle.subscribe_events();
    libcoap(test_support::coap_client(), register_args(&plain, "open-dev", &[])).await;
    assert_eq!(registered(&mut events, "open-dev").await.identity, None);
    assert_eq!(s.server.handle.registration_count(), 1);
    s.server.stop().await;

    // NoSec switched off: even an endpoint without credentials is refused.
    let s = DtlsServer::start(false).await;
    let plain = format!("coap://127.0.0.1:{}", s.server.coap().port());
    let out = libcoap(test_support::coap_client(), register_args(&plain, "open-dev", &[])).await;
    assert!(out.contains("4.03"), "{out}");
    assert_eq!((s.stat(|s| &s.refused), s.server.handle.registration_count()), (1, 0));
    s.server.stop().await;
}

// ---- a DTLS device driven by this test (OpenSSL client over a std UDP socket) ---------------------------

/// A syntactically valid DTLS 1.2 ClientHello without cookie (PSK CCM_8 only, no extensions).
fn client_hello(seed: u8) -> Vec<u8> {
    client_hello_with(seed, &[], 0)
}

/// A ClientHello with `cookie`, handshake message_seq and record sequence number `seq`.
fn client_hello_with(seed: u8, cookie: &[u8], seq: u8) -> Vec<u8> {
    let mut body = vec![0xfe, 0xfd];
    body.extend_from_slice(&[seed; 32]); // random
    body.push(0); // session id: empty
    body.push(cookie.len() as u8);
    body.extend_from_slice(cookie);
    body.extend_from_slice(&[0, 2, 0xc0, 0xa8, 1, 0]); // TLS_PSK_WITH_AES_128_CCM_8, null compression
    let n = body.len() as u32;
    let len = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    let mut hs = vec![1, len[0], len[1], len[2], 0, seq, 0, 0, 0, len[0], len[1], len[2]];
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, seq];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_survives_replays_forgeries_garbage_and_a_hello_flood() {
    let s = DtlsServer::start(true).await;
    s.psk("dev-r", "id-r", b"key-of-device-r");
    let dtls = s.server.handle.dtls_addr().unwrap();
    let mut events = s.server.handle.subscribe_events();

    let dev = tokio::task::spawn_blocking(move || {
        let mut d = Device::connect(dtls, "id-r", b"key-of-device-r");
        let ack = d.register("dev-r");
        assert_eq!(ack[1], 0x41, "2.01 Created");
        d
    })
    .await
    .unwrap();
    let c = registered(&mut events, "dev-r").await;
    assert_eq!(c.identity, Some(Identity::Psk("id-r".into())));

    // The encrypted Register again (a replay), with a flipped byte (forged), truncated, and garbage: all
    // dropped, nothing answered, nothing registered twice.
    let dev = tokio::task::spawn_blocking(move || {
        let mut dev = dev;
        let rec = dev.last_sent();
        dev.raw(&rec);
        let mut forged = rec.clone();
        let last = forged.len() - 1;
        forged[last] ^= 0x55;
        dev.raw(&forged);
        dev.raw(&rec[..rec.len() / 2]);
        dev.raw(&[23, 0xfe, 0xfd, 0, 9, 0, 0, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]); // unknown epoch
        dev.raw(b"\xff\x00garbage that is not a record");
        dev.raw(&[]);
        assert_eq!(dev.recv(1500), None, "nothing answers a replayed, forged or malformed record");
        dev
    })
    .await
    .unwrap();
    assert_eq!(s.server.handle.registration_count(), 1);
    assert_eq!(s.stat(|s| &s.registrations), 1);

    // 300 ClientHellos from 100 source addresses: each answered by a HelloVerifyRequest, no session kept.
    let hvr = tokio::task::spawn_blocking(move || {
        let mut hvr = 0;
        for i in 0..100u8 {
            let sock = UdpSocket::bind((std::net::Ipv4Addr::new(127, 0, 1, i + 1), 0)).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            for k in 0..3 {
                sock.send_to(&client_hello(i.wrapping_add(k)), dtls).unwrap();
                let mut buf = [0u8; 512];
                let (n, _) = sock.recv_from(&mut buf).expect("a HelloVerifyRequest");
                assert!(n > 25 && buf[0] == 22 && buf[13] == 3, "HelloVerifyRequest: {:?}", &buf[..n]);
                hvr += 1;
            }
        }
        hvr
    })
    .await
    .unwrap();
    assert_eq!(hvr, 300);
    assert_eq!(s.stat(|s| &s.dtls_hello_verify), 301, "the flood's 300 and the device's own first hello");
    assert_eq!(s.stat(|s| &s.dtls_sessions), 1, "only the device's session is held");

    // The device's session is undisturbed: the server reads a resource from it, and its Update passes.
    let handle = s.server.handle.clone();
    let read = tokio::spawn(async move { handle.read("dev-r", "/3/0/0".parse().unwrap(), None, None).await });
    let reg_id = c.registration_id.clone();
    tokio::task::spawn_blocking(move || {
        let mut dev = dev;
        let req = dev.recv(3000).expect("the server's Read through the session");
        assert_eq!(req[1], 0x01, "GET");
        let tkl = usize::from(req[0] & 0x0f);
        let mut ack = vec![0x60 | req[0] & 0x0f, 0x45, req[2], req[3]];
        ack.extend_from_slice(&req[4..4 + tkl]);
        ack.extend_from_slice(&[0xc0, 0xff]); // Content-Format 0 (text)
        ack.extend_from_slice(b"ACME");
        dev.send(&ack);
        let upd = dev.request(0x02, &["rd", &reg_id], &["lt=90"], b"");
        dev.send(&upd);
        let resp = dev.recv(3000).expect("an answer to Update");
        assert_eq!(resp[1], 0x44, "2.04 Changed");
    })
    .await
    .unwrap();
    let r = read.await.unwrap().expect("read through DTLS");
    assert_eq!(r.records.len(), 1, "{:?}", r.records);
    assert_eq!(
        (r.records[0].path.to_string(), &r.records[0].value),
        ("/3/0/0".to_owned(), &lwm2m_server::lwm2m::Value::String("ACME".into()))
    );
    assert_eq!(s.stat(|s| &s.refused), 0);
    s.server.stop().await;
}

/// aiocoap over its tinydtls transport registers with PSK (TLS_PSK_WITH_AES_128_CCM_8), then the server reads
/// and observes a resource it serves, through the session the client opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiocoap_tinydtls_psk_registers_and_is_read() {
    let s = DtlsServer::start(true).await;
    s.psk("aio-dtls", "id-aio", b"secret-of-aiocoap");
    let mut events = s.server.handle.subscribe_events();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/scripts/aiocoap_dtls_client.py");
    let mut cmd = Command::new(test_support::aiocoap_python());
    cmd.arg(&script)
        .arg(format!("127.0.0.1:{}", s.server.handle.dtls_addr().unwrap().port()))
        .args(["aio-dtls", "id-aio", "secret-of-aiocoap"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = test_support::ChildGuard::spawn(&mut cmd).expect("python runs the aiocoap DTLS client");

    let (id, cipher) =
        tokio::time::timeout(Duration::from_secs(20), dtls_session(&mut events)).await.unwrap_or_else(|_| {
            let _ = child.0.kill();
            let mut err = String::new();
            if let Some(mut e) = child.0.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("no DTLS session from aiocoap; stderr: {err}");
        });
    assert_eq!((id, cipher.as_str()), (Identity::Psk("id-aio".into()), "TLS_PSK_WITH_AES_128_CCM_8"));
    let c = registered(&mut events, "aio-dtls").await;
    assert_eq!(c.identity, Some(Identity::Psk("id-aio".into())));
    let r = s
        .server
        .handle
        .read("aio-dtls", "/3303/0/5700".parse().unwrap(), None, Some(Duration::from_secs(8)))
        .await
        .expect("read through the aiocoap DTLS session");
    eprintln!("aiocoap over DTLS: registered from {}, read {:?}", c.address, r.records);
    assert_eq!(r.code.to_string(), "2.05");
    assert_eq!(r.records[0].value, lwm2m_server::lwm2m::Value::Float(22.5));

    // Observe through the same session: aiocoap notifies a rising value.
    let o = s
        .server
        .handle
        .observe("aio-dtls", "/3303/0/5700".parse().unwrap(), None, Some(Duration::from_secs(8)))
        .await
        .expect("observe through the aiocoap DTLS session");
    assert_eq!(o.code.to_string(), "2.05");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let v = wait_event(&mut events, 10, |e| match e {
            ServerEvent::Notification { endpoint, records, .. } if endpoint == "aio-dtls" => {
                Some(records[0].value.clone())
            }
            _ => None,
        })
        .await;
        seen.push(v);
    }
    match (&seen[0], &seen[1]) {
        (lwm2m_server::lwm2m::Value::Float(a), lwm2m_server::lwm2m::Value::Float(b)) => {
            assert!(*a > 22.5 && b > a, "{seen:?}")
        }
        other => panic!("notifications {other:?}"),
    }
    drop(child);
    s.server.stop().await;
}

async fn session_event(
    events: &mut tokio::sync::broadcast::Receiver<ServerEvent>,
) -> (Identity, String, bool) {
    wait_event(events, 10, |e| match e {
        ServerEvent::DtlsSession { identity, cipher, resumed, .. } => {
            Some((identity.clone(), cipher.clone(), *resumed))
        }
        _ => None,
    })
    .await
}

/// A DTLS 1.2 client context with a client certificate.
fn cert_context(cert: &Path, key: &Path, ciphers: &str) -> SslContext {
    let mut b = SslContextBuilder::new(SslMethod::dtls_client()).unwrap();
    b.set_min_proto_version(Some(SslVersion::DTLS1_2)).unwrap();
    b.set_security_level(0);
    b.set_cipher_list(ciphers).unwrap();
    b.set_certificate_file(cert, openssl::ssl::SslFiletype::PEM).unwrap();
    b.set_private_key_file(key, openssl::ssl::SslFiletype::PEM).unwrap();
    b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    b.build()
}

/// The GCM suites (a client that offers only them), and an abbreviated handshake that resumes a session
/// from a new port (a NAT rebinding without connection ids): the registration follows by location.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcm_suites_and_session_resumption_from_a_new_port() {
    let s = DtlsServer::start(true).await;
    s.psk("gcm-dev", "id-gcm", b"key-of-gcm-device");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, fp) = client_certificate(dir.path(), "gcm-x509");
    s.creds.set("gcm-x509", Credential::X509 { sha256: fp }).unwrap();
    let dtls = s.server.handle.dtls_addr().unwrap();
    let mut events = s.server.handle.subscribe_events();

    let ctx = cert_context(&cert, &key, "ECDHE-ECDSA-AES128-GCM-SHA256");
    let dev = tokio::task::spawn_blocking(move || {
        let mut d = Device::handshake(ctx, dtls, None);
        assert_eq!(d.register("gcm-x509")[1], 0x41, "2.01 Created");
    });
    assert_eq!(
        session_event(&mut events).await,
        (Identity::X509 { sha256: fp }, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(), false)
    );
    dev.await.unwrap();
    registered(&mut events, "gcm-x509").await;

    let ctx = psk_context("id-gcm", b"key-of-gcm-device", "PSK-AES128-GCM-SHA256");
    let dev = tokio::task::spawn_blocking(move || {
        let mut d = Device::handshake(ctx, dtls, None);
        assert_eq!(d.register("gcm-dev")[1], 0x41, "2.01 Created");
        d
    })
    .await
    .unwrap();
    let (id, cipher, resumed) = session_event(&mut events).await;
    assert_eq!(
        (id, cipher.as_str(), resumed),
        (Identity::Psk("id-gcm".into()), "TLS_PSK_WITH_AES_128_GCM_SHA256", false)
    );
    let c = registered(&mut events, "gcm-dev").await;

    // Same device, new port, abbreviated handshake; its Update by location moves the registration there.
    let reg_id = c.registration_id.clone();
    let moved = tokio::task::spawn_blocking(move || {
        let mut d2 = dev.resume(dtls);
        let upd = d2.request(0x02, &["rd", &reg_id], &["lt=120"], b"");
        d2.send(&upd);
        assert_eq!(d2.recv(3000).expect("an answer to Update")[1], 0x44, "2.04 Changed");
        d2.socket().local_addr().unwrap()
    })
    .await
    .unwrap();
    let (id, _, resumed) = session_event(&mut events).await;
    assert_eq!((id, resumed), (Identity::Psk("id-gcm".into()), true));
    let u = wait_event(&mut events, 10, |e| match e {
        ServerEvent::Updated(c) if c.endpoint == "gcm-dev" => Some(c.clone()),
        _ => None,
    })
    .await;
    assert_eq!((u.address, u.lifetime, u.registration_id.as_str()), (moved, 120, c.registration_id.as_str()));
    assert_eq!(s.stat(|s| &s.dtls_handshakes), 3);
    s.server.stop().await;
}

/// The server retransmits its flight on its own timer when the client goes quiet after its ClientHello
/// (the flight was lost): a raw client sends ClientHello, answers the HelloVerifyRequest, and then only
/// listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_retransmits_its_handshake_flight() {
    let s = DtlsServer::start(true).await;
    s.psk("rt-dev", "id-rt", b"key-of-rt-device");
    let dtls = s.server.handle.dtls_addr().unwrap();
    let hellos = tokio::task::spawn_blocking(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(dtls).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        sock.send(&client_hello(9)).unwrap();
        let mut buf = [0u8; 1500];
        let n = sock.recv(&mut buf).expect("HelloVerifyRequest");
        assert_eq!((buf[0], buf[13]), (22, 3), "HelloVerifyRequest");
        // HelloVerifyRequest body after the 12-byte handshake header: server_version(2), cookie<1..>.
        let cookie_len = usize::from(buf[13 + 12 + 2]);
        let cookie = buf[13 + 12 + 3..13 + 12 + 3 + cookie_len].to_vec();
        assert!(n >= 13 + 12 + 3 + cookie_len);
        sock.send(&client_hello_with(9, &cookie, 1)).unwrap();
        // Count ServerHellos for ~3.5 s without sending anything more.
        let mut server_hellos = 0;
        for _ in 0..12 {
            if let Ok(n) = sock.recv(&mut buf)
                && n > 25
                && buf[0] == 22
                && buf[13] == 2
            {
                server_hellos += 1;
            }
        }
        server_hellos
    })
    .await
    .unwrap();
    assert!(hellos >= 2, "the first flight and at least one retransmission, got {hellos}");
    // The half-open handshake is dropped after the handshake timeout (2 s in these tests) and counted.
    for _ in 0..30 {
        if s.stat(|s| &s.dtls_sessions) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((s.stat(|s| &s.dtls_sessions), s.stat(|s| &s.dtls_handshakes_failed)), (0, 1));
    s.server.stop().await;
}

/// A device that reboots and handshakes again from the same address and port gets a new session (RFC 6347
/// §4.2.8) once its ClientHello carries a valid cookie; its registration goes on through the new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_handshake_from_the_same_address_replaces_the_session() {
    let s = DtlsServer::start(true).await;
    s.psk("reboot-dev", "id-reboot", b"key-of-reboot-device");
    let dtls = s.server.handle.dtls_addr().unwrap();
    let mut events = s.server.handle.subscribe_events();
    let dev = tokio::task::spawn_blocking(move || {
        let mut d = Device::connect(dtls, "id-reboot", b"key-of-reboot-device");
        assert_eq!(d.register("reboot-dev")[1], 0x41, "2.01 Created");
        d
    })
    .await
    .unwrap();
    let c = registered(&mut events, "reboot-dev").await;
    let reg_id = c.registration_id.clone();
    tokio::task::spawn_blocking(move || {
        let mut d2 = dev.restart();
        assert_eq!(d2.socket().local_addr().unwrap(), dev.socket().local_addr().unwrap());
        let upd = d2.request(0x02, &["rd", &reg_id], &["lt=90"], b"");
        d2.send(&upd);
        assert_eq!(d2.recv(3000).expect("an answer to Update")[1], 0x44, "2.04 Changed");
    })
    .await
    .unwrap();
    assert_eq!(s.stat(|s| &s.dtls_handshakes), 2);
    assert_eq!(s.stat(|s| &s.dtls_sessions), 1);
    assert_eq!(s.stat(|s| &s.refused), 0);
    s.server.stop().await;
}

/// A registration made over DTLS is never touched in the clear: a NoSec Update of it (4.03), a NoSec
/// datagram from the device's own address (dropped), and, after the device closed its session, a Read is
/// not sent unencrypted (it times out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dtls_registration_is_never_touched_in_the_clear() {
    let s = DtlsServer::start(true).await;
    s.psk("clear-dev", "id-clear", b"key-of-clear-device");
    let dtls = s.server.handle.dtls_addr().unwrap();
    let nosec = s.server.coap();
    let mut events = s.server.handle.subscribe_events();
    let dev = tokio::task::spawn_blocking(move || {
        let mut d = Device::connect(dtls, "id-clear", b"key-of-clear-device");
        assert_eq!(d.register("clear-dev")[1], 0x41, "2.01 Created");
        d
    })
    .await
    .unwrap();
    let c = registered(&mut events, "clear-dev").await;

    // An impostor's NoSec Update of the registration: 4.03, nothing changes.
    let loc = format!("coap://127.0.0.1:{}/rd/{}?lt=5", nosec.port(), c.registration_id);
    let out = libcoap(test_support::coap_client(), vec!["-m".into(), "post".into(), loc]).await;
    assert!(out.contains("4.03"), "{out}");
    assert_eq!(s.stat(|s| &s.refused), 1);

    let reg_id = c.registration_id.clone();
    let dev = tokio::task::spawn_blocking(move || {
        let mut dev = dev;
        // A cleartext Update from the device's own address to the NoSec port: dropped, unanswered.
        let upd = dev.request(0x02, &["rd", &reg_id], &["lt=5"], b"");
        dev.socket().send_to(&upd, nosec).unwrap();
        let mut buf = [0u8; 512];
        assert!(dev.socket().recv(&mut buf).is_err(), "no answer to a cleartext datagram");
        // The device ends its session.
        dev.close();
        dev
    })
    .await
    .unwrap();
    assert_eq!(s.stat(|s| &s.nosec_dropped), 1);
    for _ in 0..20 {
        if s.stat(|s| &s.dtls_sessions) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.stat(|s| &s.dtls_sessions), 0, "close_notify ends the session");

    let handle = s.server.handle.clone();
    let read = tokio::spawn(async move {
        handle.read("clear-dev", "/3/0/0".parse().unwrap(), None, Some(Duration::from_secs(2))).await
    });
    let got = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 512];
        let mut got = Vec::new();
        for _ in 0..5 {
            if let Ok(n) = dev.socket().recv(&mut buf) {
                got.push(buf[..n].to_vec());
            }
        }
        got
    })
    .await
    .unwrap();
    assert!(got.is_empty(), "nothing reaches the device without its session: {got:?}");
    assert!(matches!(read.await.unwrap(), Err(lwm2m_server::OpError::Timeout)));
    let info = s.server.handle.client("clear-dev").await.unwrap();
    assert_eq!((info.lifetime, info.identity.clone()), (60, Some(Identity::Psk("id-clear".into()))));
    s.server.stop().await;
}

/// Idle sessions are dropped, except those a live registration talks through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_are_dropped_unless_a_registration_uses_them() {
    let s = DtlsServer::start_idle(true, Duration::from_secs(1)).await;
    s.psk("idle-dev", "id-idle", b"key-of-idle-device");
    s.psk("other-dev", "id-other", b"key-of-other-device");
    let dtls = s.server.handle.dtls_addr().unwrap();
    let mut events = s.server.handle.subscribe_events();
    let (dev, _silent) = tokio::task::spawn_blocking(move || {
        let mut d = Device::connect(dtls, "id-idle", b"key-of-idle-device");
        assert_eq!(d.register("idle-dev")[1], 0x41, "2.01 Created");
        (d, Device::connect(dtls, "id-other", b"key-of-other-device"))
    })
    .await
    .unwrap();
    let c = registered(&mut events, "idle-dev").await;
    assert_eq!(s.stat(|s| &s.dtls_sessions), 2);
    let mut left = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = s.stat(|s| &s.dtls_sessions);
        if left == 1 {
            break;
        }
    }
    assert_eq!(left, 1, "the unregistered session went idle and was dropped");
    let reg_id = c.registration_id.clone();
    tokio::task::spawn_blocking(move || {
        let mut dev = dev;
        let upd = dev.request(0x02, &["rd", &reg_id], &[], b"");
        dev.send(&upd);
        assert_eq!(dev.recv(3000).expect("an answer to Update")[1], 0x44, "2.04 Changed");
    })
    .await
    .unwrap();
    s.server.stop().await;
}

// ---- RFC 7250 raw public keys -----------------------------------------------------------------------------

/// A P-256 key pair for raw-public-key DTLS: a PEM file holding the SEC1 private key and the public key (what
/// `coap-client-gnutls -M` reads), and the SHA-256 of the public key's DER SubjectPublicKeyInfo (what is
/// bound).
pub(crate) fn rpk_key(
    dir: &Path,
    name: &str,
) -> (std::path::PathBuf, openssl::pkey::PKey<openssl::pkey::Private>, [u8; 32]) {
    use openssl::ec::{EcGroup, EcKey};
    let ec =
        EcKey::generate(&EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap()).unwrap();
    let key = openssl::pkey::PKey::from_ec_key(ec.clone()).unwrap();
    let spki = key.public_key_to_der().unwrap();
    let mut pem = ec.private_key_to_pem().unwrap();
    pem.extend_from_slice(&key.public_key_to_pem().unwrap());
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, pem).unwrap();
    (path, key, openssl::sha::sha256(&spki))
}

/// A DTLS 1.2 client context that authenticates with a raw public key (OpenSSL ≥ 3.2, as the server) and
/// accepts the server's raw public key.
pub(crate) fn rpk_context(key: &openssl::pkey::PKeyRef<openssl::pkey::Private>, ciphers: &str) -> SslContext {
    let mut b = SslContextBuilder::new(SslMethod::dtls_client()).unwrap();
    b.set_min_proto_version(Some(SslVersion::DTLS1_2)).unwrap();
    b.set_security_level(0);
    b.set_cipher_list(ciphers).unwrap();
    b.set_private_key(key).unwrap();
    let rpk = [lwm2m_server::rpk::CERT_TYPE_RPK];
    lwm2m_server::rpk::set_cert_types(&mut b, &rpk, &rpk).unwrap();
    b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    b.build()
}

/// coap-client-gnutls (an independent RFC 7250 implementation: GnuTLS 3.7) registers with a bound raw public
/// key; an OpenSSL RPK device is then read through its session. An unbound key gets no session; a key bound
/// to another endpoint gets a session but its Register under this endpoint is refused (4.03).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_public_keys_gnutls_registers_bound_key_only() {
    let s = DtlsServer::start(true).await;
    let dir = tempfile::tempdir().unwrap();
    let (pem, _, fp) = rpk_key(dir.path(), "rpk-dev");
    let (other_pem, _, other_fp) = rpk_key(dir.path(), "rpk-other");
    let (stranger_pem, _, _) = rpk_key(dir.path(), "stranger");
    s.creds.set("rpk-dev", Credential::Rpk { sha256: fp }).unwrap();
    s.creds.set("rpk-other", Credential::Rpk { sha256: other_fp }).unwrap();
    let mut events = s.server.handle.subscribe_events();

    let out = libcoap(
        test_support::coap_client_gnutls(),
        register_args(&s.coaps(), "rpk-dev", &["-M", pem.to_str().unwrap()]),
    )
    .await;
    let (id, cipher) = dtls_session(&mut events).await;
    eprintln!("coap-client-gnutls RPK negotiated {cipher}");
    assert_eq!(id, Identity::Rpk { sha256: fp }, "{out}");
    assert!(cipher.starts_with("TLS_ECDHE_ECDSA_WITH_AES_128_"), "{cipher}");
    let c = registered(&mut events, "rpk-dev").await;
    assert_eq!(c.identity, Some(Identity::Rpk { sha256: fp }));

    // A key that nothing binds: the handshake is refused, nothing registers.
    let before = s.stat(|s| &s.dtls_handshakes_failed);
    let out = libcoap(
        test_support::coap_client_gnutls(),
        register_args(&s.coaps(), "rpk-dev", &["-M", stranger_pem.to_str().unwrap()]),
    )
    .await;
    assert!(!out.contains("2.01"), "{out}");
    for _ in 0..40 {
        if s.stat(|s| &s.dtls_handshakes_failed) > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.stat(|s| &s.dtls_handshakes_failed), before + 1, "{out}");
    assert_eq!(s.stat(|s| &s.dtls_handshakes), 1);

    // A key bound to rpk-other registering as rpk-dev: the session is admitted, the Register refused.
    let out = libcoap(
        test_support::coap_client_gnutls(),
        register_args(&s.coaps(), "rpk-dev", &["-M", other_pem.to_str().unwrap()]),
    )
    .await;
    assert!(out.contains("4.03"), "{out}");
    assert_eq!(s.stat(|s| &s.dtls_handshakes), 2);
    assert_eq!(s.stat(|s| &s.refused), 1);
    assert_eq!(s.server.handle.registration_count(), 1);
    let c = s.server.handle.client("rpk-dev").await.expect("rpk-dev is still registered");
    assert_eq!(c.identity, Some(Identity::Rpk { sha256: fp }), "the refused Register replaced nothing");
    s.server.stop().await;
}

/// An OpenSSL client with a raw public key (both GCM and CCM_8): registers, is read through its session, and
/// its session resumes from a new port as the same key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_public_key_device_is_read_and_resumes() {
    let s = DtlsServer::start(true).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, key, fp) = rpk_key(dir.path(), "rpk-read");
    s.creds.set("rpk-read", Credential::Rpk { sha256: fp }).unwrap();
    let dtls = s.server.handle.dtls_addr().unwrap();
    let mut events = s.server.handle.subscribe_events();

    let ctx = rpk_context(&key, "ECDHE-ECDSA-AES128-CCM8");
    let dev = tokio::task::spawn_blocking(move || {
        let mut d = Device::handshake(ctx, dtls, None);
        let ack = d.register("rpk-read");
        assert_eq!(ack[1], 0x41, "2.01 Created");
        d
    })
    .await
    .unwrap();
    assert_eq!(
        session_event(&mut events).await,
        (Identity::Rpk { sha256: fp }, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8".into(), false)
    );
    let c = registered(&mut events, "rpk-read").await;
    assert_eq!(c.identity, Some(Identity::Rpk { sha256: fp }));

    let handle = s.server.handle.clone();
    let read =
        tokio::spawn(async move { handle.read("rpk-read", "/3/0/0".parse().unwrap(), None, None).await });
    let dev = tokio::task::spawn_blocking(move || {
        let mut dev = dev;
        let req = dev.recv(3000).expect("the server's Read through the session");
        assert_eq!(req[1], 0x01, "GET");
        let tkl = usize::from(req[0] & 0x0f);
        let mut ack = vec![0x60 | req[0] & 0x0f, 0x45, req[2], req[3]];
        ack.extend_from_slice(&req[4..4 + tkl]);
        ack.extend_from_slice(&[0xc0, 0xff]);
        ack.extend_from_slice(b"RPK device");
        dev.send(&ack);
        dev
    })
    .await
    .unwrap();
    let r = read.await.unwrap().expect("read through DTLS");
    assert_eq!(r.records[0].value, lwm2m_server::lwm2m::Value::String("RPK device".into()));

    // Resumption from a new port: the abbreviated handshake carries the raw public key's identity.
    let reg_id = c.registration_id.clone();
    tokio::task::spawn_blocking(move || {
        let mut again = dev.resume(dtls);
        let upd = again.request(0x02, &["rd", &reg_id], &["lt=90"], b"");
        again.send(&upd);
        assert_eq!(again.recv(3000).expect("an answer to Update")[1], 0x44, "2.04 Changed");
    })
    .await
    .unwrap();
    assert_eq!(
        session_event(&mut events).await,
        (Identity::Rpk { sha256: fp }, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8".into(), true)
    );

    // GCM with a raw public key.
    let ctx = rpk_context(&key, "ECDHE-ECDSA-AES128-GCM-SHA256");
    tokio::task::spawn_blocking(move || Device::handshake(ctx, dtls, None)).await.unwrap();
    assert_eq!(
        session_event(&mut events).await,
        (Identity::Rpk { sha256: fp }, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(), false)
    );
    assert_eq!(s.stat(|s| &s.refused), 0);
    s.server.stop().await;
}
