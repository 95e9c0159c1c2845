//! Chaincode as a service: a chaincode written with Fabric's `fabric-contract-api` (npm), served by
//! `fabric-shim` in server mode, driven by both peers over Fabric's shim protocol (`peer::ccaas`).

use crate::cluster::{Cluster, node_configs};
use ledger_client::{Checkpoint, ClientError};
use network::ContractSettings;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;
use test_support::ChildGuard;

/// `fabric-chaincode-node server` for the `assets` chaincode of scripts/chaincode on `port`.
fn chaincode_server(port: u16, log: &std::path::Path) -> ChildGuard {
    let (node, _) = test_support::fabric_gateway_node();
    let modules = test_support::fabric_chaincode_modules();
    let module = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/scripts/chaincode");
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    ChildGuard::spawn(
        Command::new(node)
            .arg(modules.join("fabric-shim/cli.js"))
            .args([
                "server",
                "--chaincode-address",
                &format!("127.0.0.1:{port}"),
                "--chaincode-id",
                "assets:1",
            ])
            .arg("--module-path")
            .arg(module)
            .env("NODE_PATH", &modules)
            .env("CORE_CHAINCODE_LOGGING_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    )
    .expect("node runs fabric-shim's chaincode server")
}

async fn wait_listening(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the chaincode server does not listen on {port}");
}

fn json(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(b)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabric_contract_api_chaincode_runs_as_a_service_on_both_peers() {
    let port = test_support::free_tcp_port();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("chaincode.log");
    let mut server = chaincode_server(port, &log);
    wait_listening(port).await;

    // The channel defines `assets` with both organizations' endorsement; each peer runs it as a service.
    let generated = crate::generated_custom(40, |net| {
        net.contracts
            .push(ContractSettings { name: "assets".into(), policy: "AND('Org1MSP','Org2MSP')".into() });
    });
    for path in node_configs(&generated.1) {
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("role = \"peer\"") {
            std::fs::write(&path, format!("{text}\n[chaincodes.assets]\naddress = \"127.0.0.1:{port}\"\n"))
                .unwrap();
        }
    }
    let c = Cluster::start_generated(generated).await;
    let (gw1, gw2) = (c.gateway(1), c.gateway(2));
    let assets = gw1.contract("assets");

    // Submit: both peers run the chaincode and their endorsements agree; the event is the chaincode's.
    let created =
        assets.submit("create", &[b"a1".to_vec(), b"red".to_vec(), b"alice".to_vec()]).await.unwrap();
    assert_eq!(json(&created.payload), json!({"id": "a1", "color": "red", "owner": "alice"}));
    for (id, color, owner) in [("a2", "blue", "bob"), ("a3", "red", "carol")] {
        assets.submit("create", &[id.into(), color.into(), owner.into()]).await.unwrap();
    }
    let mut events = gw1.contract_events("assets", Checkpoint::default()).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), events.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.event.event_name, "AssetCreated");
    assert_eq!(first.event.tx_id, created.tx_id);
    assert_eq!(json(&first.event.payload)["owner"], "alice");

    // Reads and writes seen on both peers.
    assets.submit("transfer", &[b"a1".to_vec(), b"dave".to_vec()]).await.unwrap();
    let a1 = gw2.contract("assets").evaluate("read", &[b"a1".to_vec()]).await.unwrap();
    assert_eq!(json(&a1)["owner"], "dave");

    // Range queries: plain (simple keys only, as in Fabric), by partial composite key, paginated.
    let all = assets.evaluate("list", &[b"".to_vec(), b"".to_vec()]).await.unwrap();
    assert_eq!(json(&all), json!(["a1", "a2", "a3"]));
    let red = assets.evaluate("byColor", &[b"red".to_vec()]).await.unwrap();
    assert_eq!(json(&red), json!(["a1", "a3"]));
    let p1 = json(&assets.evaluate("page", &[b"2".to_vec(), b"".to_vec()]).await.unwrap());
    assert_eq!((p1["ids"].clone(), p1["count"].clone()), (json!(["a1", "a2"]), json!(2)), "{p1}");
    let bookmark = p1["bookmark"].as_str().unwrap().as_bytes().to_vec();
    let p2 = json(&assets.evaluate("page", &[b"2".to_vec(), bookmark]).await.unwrap());
    assert_eq!(p2["ids"], json!(["a3"]), "{p2}");

    // The chaincode sees the proposal: creator, tx id, channel.
    let me = json(&assets.evaluate("whoami", &[]).await.unwrap());
    assert_eq!((me["msp"].clone(), me["channel"].clone()), (json!("Org1MSP"), json!("iot")), "{me}");

    // Refusals: the chaincode's own error; a rich query ipechain cannot answer.
    let e = assets.submit("create", &[b"a1".to_vec(), b"red".to_vec(), b"x".to_vec()]).await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Refused { status: 500, message, .. } if message.contains("already exists")),
        "{e}"
    );
    let e = assets.evaluate("rich", &[]).await.unwrap_err();
    assert!(e.to_string().contains("rich queries"), "{e}");

    // Deletes.
    assets.submit("remove", &[b"a2".to_vec()]).await.unwrap();
    assert_eq!(
        json(&assets.evaluate("list", &[b"".to_vec(), b"".to_vec()]).await.unwrap()),
        json!(["a1", "a3"])
    );
    assert_eq!(json(&assets.evaluate("byColor", &[b"blue".to_vec()]).await.unwrap()), json!([]));

    // The chaincode server goes away: its proposals fail with a clear error, the peer and its other
    // contracts stay up; once it is back, the next proposal reconnects.
    drop(server);
    let e = assets.evaluate("read", &[b"a1".to_vec()]).await.unwrap_err();
    assert!(e.to_string().contains("assets"), "{e}");
    gw1.contract("kv").submit("put", &[b"still".to_vec(), b"up".to_vec()]).await.unwrap();
    server = chaincode_server(port, &log);
    wait_listening(port).await;
    let mut back = None;
    for _ in 0..50 {
        match assets.evaluate("read", &[b"a3".to_vec()]).await {
            Ok(b) => {
                back = Some(json(&b));
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(back.expect("the chaincode answers again")["owner"], "carol");
    assets.submit("transfer", &[b"a3".to_vec(), b"erin".to_vec()]).await.unwrap();
    drop(server);
    c.shutdown().await;
}
