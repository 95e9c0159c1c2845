//! Starts ACME with an acme.ini in a temporary base directory (see shared/peers/acme.md).

use std::time::Duration;

pub(crate) struct Acme {
    pub(crate) authority: String,
    _process: test_support::AcmeProcess,
}

pub(crate) async fn start() -> Acme {
    let process = test_support::AcmeProcess::spawn(false).unwrap();
    let (port, authority) = (process.port, process.authority());
    let probe = mca_client::McaClient::new(mca_client::McaConfig::new(authority.clone(), "CAdmin"));
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
            && probe.retrieve("cse-in").await.is_ok()
        {
            return Acme { authority, _process: process };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("ACME did not come up on port {port}");
}
