//! Starts ACME with an acme.ini in a temporary base directory (see shared/peers/acme.md).

use std::time::Duration;

use test_support::ChildGuard;

pub(crate) struct Acme {
    pub(crate) authority: String,
    _child: ChildGuard,
    _dir: tempfile::TempDir,
}

pub(crate) async fn start() -> Acme {
    let exe = test_support::acmecse();
    let dir = tempfile::tempdir().unwrap();
    let port = test_support::free_tcp_port();
    let ini = format!(
        "[basic.config]\ncseType=IN\ncseID=id-in\ncseName=cse-in\nadminID=CAdmin\nnetworkInterface=127.0.0.1\n\
         cseHost=127.0.0.1\nhttpPort={port}\ndatabaseType=memory\nlogLevel=warning\n[cse]\nenableRemoteCSE=false\n\
         [database]\nresetOnStartup=true\n[http]\nenable=true\n[coap]\nenable=false\n[mqtt]\nenable=false\n\
         [websocket]\nenable=false\n[cse.statistics]\nenable=false\n[textui]\nenable=false\nstartWithTUI=false\n\
         [webui]\nenable=false\n[console]\nheadless=true\nconfirmQuit=false\n"
    );
    std::fs::write(dir.path().join("acme.ini"), ini).unwrap();
    let child = ChildGuard::spawn(
        std::process::Command::new(exe)
            .current_dir(dir.path())
            .args(["--base-directory", ".", "--config", "acme.ini", "--headless", "--http", "--http-port"])
            .arg(port.to_string())
            .args(["--http-address", &format!("http://127.0.0.1:{port}")])
            .args(["--network-interface", "127.0.0.1", "--db-type", "memory", "--db-reset", "--no-coap"])
            .args(["--no-mqtt", "--no-ws", "--no-remote-cse", "--no-statistics", "--log-level", "warn"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    )
    .unwrap();
    let authority = format!("127.0.0.1:{port}");
    let probe = mca_client::McaClient::new(mca_client::McaConfig::new(authority.clone(), "CAdmin"));
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
            && probe.retrieve("cse-in").await.is_ok()
        {
            return Acme { authority, _child: child, _dir: dir };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("ACME did not come up on port {port}");
}
