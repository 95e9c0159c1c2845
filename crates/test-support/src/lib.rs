//! Dev-only helpers shared by the integration tests of every crate.
//!
//! The real interop peers (ACME, aiocoap, lwm2m-node-lib, libcoap's coap-client) are installed by
//! `scripts/test.sh` under `target/peers/`. A test that needs one calls the matching function here; when the
//! peer is missing the function panics with a message that says how to install it. A missing peer is a test
//! failure, never a skip.

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

/// libcoap's `coap-client-notls` (Debian `libcoap3-bin`), looked up on `PATH`.
pub fn coap_client() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("coap-client-notls");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("coap-client-notls (Debian libcoap3-bin) is not on PATH: run `scripts/test.sh`");
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral TCP port on 127.0.0.1")
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral UDP port on 127.0.0.1")
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
