//! The REST admin API over HTTP, against simulated devices: clients, read/write/execute/discover/attributes,
//! observe with the SSE stream, cancel, errors.

use std::time::Duration;

use lwm2m_sim::{SimConfig, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{TestServer, http, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_end_to_end() {
    let server = TestServer::start().await;
    let api = server.admin();
    let sim = Simulator::start(SimConfig {
        server: server.coap(),
        clients: 2,
        endpoint_prefix: "rest-".into(),
        notify_interval: Some(Duration::from_millis(100)),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(sim.wait_registered(2, Duration::from_secs(10)).await, 2);

    let (st, body) = http(api, "GET", "/api/clients", "").await;
    assert_eq!(st, 200);
    let list = json(&body);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["endpoint"], "rest-0");
    assert_eq!(list[0]["lwM2mVersion"], "1.1");
    let (st, body) = http(api, "GET", "/api/clients/rest-1", "").await;
    assert_eq!(st, 200);
    assert!(json(&body)["objectLinks"].as_array().unwrap().iter().any(|l| l["url"] == "/3303/0"));
    assert_eq!(http(api, "GET", "/api/clients/nobody", "").await.0, 404);

    // Read, in two formats
    for f in ["tlv", "senml-json", "senml-cbor", "json", "cbor"] {
        let (st, body) = http(api, "GET", &format!("/api/clients/rest-0/3303/0?format={f}"), "").await;
        assert_eq!(st, 200, "{f}: {body}");
        let j = json(&body);
        assert_eq!((j["status"].as_str(), j["code"].as_str()), (Some("CONTENT"), Some("2.05")), "{f}");
        assert_eq!(j["content"]["kind"], "instance");
        assert!(j["values"]["/3303/0/5700"].is_f64(), "{f}: {body}");
    }
    let (_, body) = http(api, "GET", "/api/clients/rest-0/3/0/0", "").await;
    let j = json(&body);
    assert_eq!(
        j["content"],
        serde_json::json!({"kind": "singleResource", "id": 0, "type": "STRING", "value": "ipechain"})
    );

    // Write then read back; partial update of an instance
    let (st, body) = http(api, "PUT", "/api/clients/rest-0/3311/0/5850", r#"{"value": true}"#).await;
    assert_eq!((st, json(&body)["code"].as_str()), (200, Some("2.04")), "{body}");
    let (st, body) = http(
        api,
        "PUT",
        "/api/clients/rest-0/3311/0?replace=false&format=senml-cbor",
        r#"{"resources": [{"id": 5851, "value": 30}]}"#,
    )
    .await;
    assert_eq!((st, json(&body)["code"].as_str()), (200, Some("2.04")), "{body}");
    let (_, body) = http(api, "GET", "/api/clients/rest-0/3311/0", "").await;
    let j = json(&body);
    assert_eq!(
        (j["values"]["/3311/0/5850"].as_bool(), j["values"]["/3311/0/5851"].as_i64()),
        (Some(true), Some(30))
    );
    assert_eq!(http(api, "PUT", "/api/clients/rest-0/3311/0/5851", "not json").await.0, 400);
    assert_eq!(http(api, "PUT", "/api/clients/rest-0/3311/0/5851", r#"{"value": "high"}"#).await.0, 400);

    // Execute, Discover, Write-Attributes
    let (_, body) = http(api, "POST", "/api/clients/rest-0/3/0/4", "").await;
    assert_eq!(json(&body)["code"], "2.04");
    let (_, body) = http(api, "GET", "/api/clients/rest-0/3303/0/discover", "").await;
    assert!(
        json(&body)["objectLinks"].as_array().unwrap().iter().any(|l| l["url"] == "/3303/0/5700"),
        "{body}"
    );
    let (_, body) = http(api, "PUT", "/api/clients/rest-0/3303/0/5700/attributes?pmin=1&pmax=5", "").await;
    assert_eq!(json(&body)["code"], "2.04");
    assert_eq!(http(api, "PUT", "/api/clients/rest-0/3303/0/5700/attributes?bogus=1", "").await.0, 400);

    // Create and Delete reach the device (this device model refuses both with 4.05).
    let (st, body) = http(
        api,
        "POST",
        "/api/clients/rest-0/3303",
        r#"{"id": 1, "resources": [{"id": 5700, "value": 1.5}]}"#,
    )
    .await;
    assert_eq!((st, json(&body)["code"].as_str()), (200, Some("4.05")), "{body}");
    let (st, body) = http(api, "DELETE", "/api/clients/rest-0/3303/0", "").await;
    assert_eq!((st, json(&body)["code"].as_str()), (200, Some("4.05")), "{body}");
    assert_eq!(http(api, "DELETE", "/api/clients/rest-0/3303", "").await.0, 400, "delete needs an instance");
    assert_eq!(http(api, "POST", "/api/clients/rest-0/3303", "[]").await.0, 400);

    // Errors: bad path, unknown format, bad timeout, unknown client, method not allowed
    assert_eq!(http(api, "GET", "/api/clients/rest-0/x/0", "").await.0, 400);
    assert_eq!(http(api, "GET", "/api/clients/rest-0/3/0?format=yaml", "").await.0, 400);
    assert_eq!(http(api, "GET", "/api/clients/rest-0/3/0?timeout=-1", "").await.0, 400);
    assert_eq!(http(api, "GET", "/api/clients/ghost/3/0", "").await.0, 404);
    assert_eq!(http(api, "PATCH", "/api/clients/rest-0/3/0", "").await.0, 405);

    // SSE: subscribe, observe, get NOTIFICATION events, cancel.
    let mut sse = tokio::net::TcpStream::connect(api).await.unwrap();
    sse.write_all(format!("GET /api/event?ep=rest-1 HTTP/1.1\r\nHost: {api}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (st, body) = http(api, "POST", "/api/clients/rest-1/3303/0/5700/observe", "").await;
    assert_eq!((st, json(&body)["code"].as_str()), (200, Some("2.05")), "{body}");
    let mut seen = String::new();
    let mut buf = vec![0; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while seen.matches("event: NOTIFICATION").count() < 2 {
            let n = sse.read(&mut buf).await.unwrap();
            assert!(n > 0, "SSE stream closed");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .expect("notifications on the SSE stream");
    assert!(seen.contains("\"res\":\"/3303/0/5700\""), "{seen}");
    let (_, body) = http(api, "DELETE", "/api/clients/rest-1/3303/0/5700/observe", "").await;
    assert_eq!(json(&body)["cancelled"], 1);
    server.stop().await;
}
