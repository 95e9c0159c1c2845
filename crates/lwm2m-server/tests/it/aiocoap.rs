//! aiocoap (PyPI) as an LwM2M 1.1 client: registers, sends SenML CBOR with Send (`/dp`) in a payload larger
//! than one block (so aiocoap uses Block1), then answers a Read from its own socket.

use std::process::Stdio;
use std::time::Duration;

use lwm2m::{LwM2mPath, Value};
use lwm2m_server::ServerEvent;
use test_support::ChildGuard;

use crate::common::{TestServer, wait_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiocoap_client_registers_sends_senml_cbor_block_wise_and_is_read() {
    let server = TestServer::start().await;
    let mut events = server.handle.subscribe_events();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/scripts/aiocoap_client.py");
    let local = test_support::free_udp_port();
    let mut cmd = std::process::Command::new(test_support::aiocoap_python());
    cmd.arg(&script)
        .arg(format!("127.0.0.1:{}", server.coap().port()))
        .arg(local.to_string())
        .env("AIOCOAP_SERVER_TRANSPORT", "udp6")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildGuard::spawn(&mut cmd).expect("python runs the aiocoap client");
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for l in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });

    let c = wait_event(&mut events, 30, |e| match e {
        ServerEvent::Registered(c) if c.endpoint == "aio-ep" => Some(c.clone()),
        _ => None,
    })
    .await;
    assert_eq!(c.version.as_str(), "1.1");
    assert_eq!(c.supported_formats.iter().map(|f| f.0).collect::<Vec<_>>(), vec![0, 112]);
    let records = wait_event(&mut events, 30, |e| match e {
        ServerEvent::Send { endpoint, records, .. } if endpoint == "aio-ep" => Some(records.clone()),
        _ => None,
    })
    .await;
    assert_eq!(records.len(), 80);
    assert_eq!(records[3].path, "/3303/3/5700".parse::<LwM2mPath>().unwrap());
    assert_eq!(records[3].value, Value::Float(21.5));
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(l) = lines.recv().await {
            let done = l.starts_with("SEND ");
            out.push(l);
            if done {
                break;
            }
        }
    })
    .await
    .expect("script output");
    if out.len() < 3 {
        let mut err = String::new();
        if let Some(mut e) = child.0.stderr.take() {
            let _ = child.0.kill();
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        panic!("aiocoap client output {out:?}, stderr: {err}");
    }
    assert!(out[0].starts_with("REGISTER 2.01 Created /rd/"), "{out:?}");
    let size: usize = out[1].strip_prefix("SENDSIZE ").unwrap().parse().unwrap();
    assert!(size > 1024, "payload must need more than one block: {size}");
    assert_eq!(out[2], "SEND 2.04 Changed", "{out:?}");

    let r = server
        .handle
        .read("aio-ep", "/3303/0/5700".parse().unwrap(), None, Some(Duration::from_secs(8)))
        .await
        .unwrap();
    assert_eq!(r.code.to_string(), "2.05");
    assert_eq!(r.records[0].value, Value::Float(22.5));
    drop(child);
    server.stop().await;
}
