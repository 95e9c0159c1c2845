//! Shared helpers: start a server on ephemeral ports, a tiny HTTP/1.1 client, raw CoAP packets.

use std::net::SocketAddr;
use std::time::Duration;

use lwm2m_server::{LwM2mServer, LwM2mServerHandle, ServerConfig, ServerEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub(crate) struct TestServer {
    pub(crate) handle: LwM2mServerHandle,
    pub(crate) join: Option<JoinHandle<()>>,
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(f: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let mut cfg = ServerConfig {
            coap_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            default_timeout: Duration::from_secs(4),
            ..ServerConfig::default()
        };
        f(&mut cfg);
        let (handle, join) = LwM2mServer::start(cfg).await.expect("server starts");
        TestServer { handle, join: Some(join) }
    }

    pub(crate) fn coap(&self) -> SocketAddr {
        self.handle.coap_addr()
    }

    pub(crate) fn admin(&self) -> SocketAddr {
        self.handle.admin_addr().expect("admin enabled")
    }

    pub(crate) async fn stop(mut self) {
        self.handle.shutdown();
        if let Some(j) = self.join.take() {
            tokio::time::timeout(Duration::from_secs(5), j).await.expect("server stops").expect("join");
        }
    }
}

/// Waits for the first event matching `f`.
pub(crate) async fn wait_event<T>(
    rx: &mut broadcast::Receiver<ServerEvent>,
    secs: u64,
    mut f: impl FnMut(&ServerEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Some(t) = f(&e) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel: {e}"),
            }
        }
    })
    .await
    .expect("expected event in time")
}

/// One HTTP/1.1 request; returns (status, body).
pub(crate) async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect admin API");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write request");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("HTTP answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

pub(crate) fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}
