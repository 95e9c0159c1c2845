//! Interop with lwm2m-node-lib 1.4.0 (npm) as a real LwM2M 1.0 client, driven through its interactive
//! command-line client and operated through the REST API: register, read, write, execute, discover,
//! observe (notifications), cancel, de-register.

use std::process::Stdio;

use lwm2m_server::ServerEvent;
use test_support::ChildGuard;
use tokio::io::AsyncWriteExt;

use crate::common::{TestServer, http, json, wait_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lwm2m_node_lib_client_through_the_rest_api() {
    let server = TestServer::start().await;
    let api = server.admin();
    let mut events = server.handle.subscribe_events();
    let script = test_support::lwm2m_node_client();
    let mut cmd = std::process::Command::new("node");
    cmd.arg(&script).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = ChildGuard::spawn(&mut cmd).expect("node runs the lwm2m-node-lib client");
    let mut stdin =
        tokio::process::ChildStdin::from_std(child.0.stdin.take().expect("stdin")).expect("async stdin");
    let port = server.coap().port();
    let script = format!(
        "create /3/0\nset /3/0 0 Acme\nset /3/0 4 reboot\ncreate /3303/0\nset /3303/0 5700 21.5\nconnect 127.0.0.1 {port} node-ep-1 /\n"
    );
    stdin.write_all(script.as_bytes()).await.unwrap();
    let info = wait_event(&mut events, 20, |e| match e {
        ServerEvent::Registered(c) if c.endpoint == "node-ep-1" => Some(c.clone()),
        _ => None,
    })
    .await;
    assert_eq!(info.version.as_str(), "1.0");
    assert!(info.objects.contains(&"/3303/0".parse().unwrap()), "{:?}", info.objects);

    // Read: the first request carries Accept TLV, which this client drops silently; the server falls back.
    let (st, body) = http(api, "GET", "/api/clients/node-ep-1/3303/0/5700?timeout=8", "").await;
    assert_eq!(st, 200, "{body}");
    let j = json(&body);
    assert_eq!(j["code"], "2.05", "{body}");
    assert_eq!(j["values"]["/3303/0/5700"].as_f64(), Some(21.5), "{body}");
    let (_, body) = http(api, "GET", "/api/clients/node-ep-1/3/0/0", "").await;
    assert_eq!(json(&body)["values"]["/3/0/0"], "Acme", "{body}");

    // Write, then read back.
    let (_, body) = http(api, "PUT", "/api/clients/node-ep-1/3/0/0", r#"{"value": "Zeta"}"#).await;
    assert_eq!(json(&body)["code"], "2.04", "{body}");
    let (_, body) = http(api, "GET", "/api/clients/node-ep-1/3/0/0", "").await;
    assert_eq!(json(&body)["values"]["/3/0/0"], "Zeta", "{body}");

    // Execute and Discover.
    let (_, body) = http(api, "POST", "/api/clients/node-ep-1/3/0/4", "").await;
    assert_eq!(json(&body)["code"], "2.04", "{body}");
    let (_, body) = http(api, "GET", "/api/clients/node-ep-1/3/0/discover", "").await;
    let j = json(&body);
    assert_eq!(j["code"], "2.05", "{body}");
    assert!(j["objectLinks"].as_array().unwrap().iter().any(|l| l["url"] == "/3/0/0"), "{body}");

    // Observe, change the value on the device, get the notification.
    let (_, body) = http(api, "POST", "/api/clients/node-ep-1/3303/0/5700/observe", "").await;
    assert_eq!(json(&body)["code"], "2.05", "{body}");
    stdin.write_all(b"set /3303/0 5700 23.5\n").await.unwrap();
    let v = wait_event(&mut events, 15, |e| match e {
        ServerEvent::Notification { endpoint, records, .. } if endpoint == "node-ep-1" => {
            records.first().map(|r| r.value.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(v, lwm2m::Value::Float(23.5));
    let (_, body) = http(api, "DELETE", "/api/clients/node-ep-1/3303/0/5700/observe", "").await;
    assert_eq!(json(&body)["cancelled"], 1);

    // De-register.
    stdin.write_all(b"disconnect\n").await.unwrap();
    wait_event(&mut events, 15, |e| {
        matches!(e, ServerEvent::Deregistered { endpoint, .. } if endpoint == "node-ep-1").then_some(())
    })
    .await;
    assert_eq!(http(api, "GET", "/api/clients/node-ep-1", "").await.0, 404);
    let _ = stdin.write_all(b"quit\n").await;
    server.stop().await;
}
