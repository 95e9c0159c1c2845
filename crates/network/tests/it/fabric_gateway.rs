//! Fabric's own Node client, `@hyperledger/fabric-gateway` 1.12.1 on Node 22 (both from npm, installed by
//! `scripts/test.sh`), as a Fabric application uses it against a running ipechain network: a user's
//! cryptogen folder, its MSP id and a peer's address are all it is given. Once with Ed25519 keys, once with
//! ECDSA P-256 (Fabric's default). The script is `scripts/fabric_gateway_client.js`.

use crate::cluster::Cluster;
use ledger_types::TxValidationCode;
use serde_json::Value;
use std::process::Command;

/// Runs the Node application as org 1's `User1` against org 1's peer; its JSON report.
async fn run_node_app(c: &Cluster) -> Value {
    let (node, modules) = test_support::fabric_gateway_node();
    let script =
        test_support::workspace_root().join("crates/network/tests/it/scripts/fabric_gateway_client.js");
    let user =
        c.dir.crypto_dir().join("peerOrganizations/org1.ipechain.local/users/User1@org1.ipechain.local");
    let mut cmd = Command::new(node);
    cmd.arg(script).arg(user).args(["Org1MSP", &c.net.peers[0].endpoint(), "iot"]).env("NODE_PATH", modules);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("node runs")).await.unwrap();
    assert!(
        out.status.success(),
        "the Fabric application failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON report")
}

fn keys(events: &Value) -> Vec<&str> {
    events.as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect()
}

async fn fabric_application_runs_against(c: Cluster, key: &str) {
    let r = run_node_app(&c).await;
    tracing::info!(ms = %r["ms"], "the Node application ran (milliseconds per part)");
    assert_eq!(r["key"], key);
    // Submit, evaluate, submitAsync + getStatus.
    assert_eq!((r["submitted"].as_str(), r["evaluated"].as_str()), (Some("js-value"), Some("js-value")));
    let status = &r["async"]["status"];
    assert_eq!(r["async"]["result"], "1");
    assert_eq!((status["successful"].as_bool(), status["code"].as_i64()), (Some(true), Some(0)));
    assert_eq!(status["transactionId"], r["async"]["transactionId"]);
    let start = status["blockNumber"].as_u64().unwrap();
    // The same outcome on this side, and on the other organization's peer.
    let tx = r["async"]["transactionId"].as_str().unwrap();
    assert_eq!(c.gateway(1).commit_status(tx).await.unwrap(), (TxValidationCode::Valid, start));
    c.converged(start + 1).await;
    assert_eq!(
        c.gateway(2).contract("kv").evaluate("get", &[b"js-key".to_vec()]).await.unwrap(),
        b"js-value"
    );
    // Chaincode events from the start block, then resumed from a checkpoint: every event once, in order.
    let ev = &r["events"];
    assert_eq!(keys(&ev["first"]), ["js-counter", "ev-1"]);
    assert_eq!(ev["first"][0]["tx"], r["async"]["transactionId"]);
    assert_eq!(ev["first"][0]["block"].as_u64(), Some(start));
    assert_eq!(keys(&ev["resumed"]), ["ev-2", "ev-3", "ev-4"]);
    assert_eq!(ev["resumed"][0]["tx"], ev["puts"][1]);
    assert_eq!(ev["resumed"][2]["tx"], ev["late"]);
    // Block events of the three kinds start where asked; the filtered block names the transaction.
    let b = &r["blocks"];
    assert_eq!((b["block"].as_u64(), b["filtered"].as_u64()), (Some(start), Some(start)));
    assert_eq!((b["withPrivateData"].as_u64(), b["privateDataEntries"].as_u64()), (Some(start), Some(0)));
    assert!(b["transactions"].as_u64().unwrap() >= 1);
    let filtered = b["filteredTransactions"].as_array().unwrap();
    assert!(filtered.iter().any(|t| t["id"].as_str() == Some(tx) && t["code"] == 0), "{filtered:?}");
    // Refusals: the chaincode's (EndorseError), an evaluation's (GatewayError), the orderer's
    // (SubmitError), an MVCC conflict (CommitError), each with Fabric's code and details.
    let e = &r["errors"];
    assert_eq!(
        (e["endorse"]["kind"].as_str(), e["endorse"]["endorseError"].as_bool()),
        (Some("EndorseError"), Some(true)),
        "{e}"
    );
    assert_eq!(e["endorse"]["code"], 10, "ABORTED: {e}");
    let detail = &e["endorse"]["details"][0];
    assert!(detail["message"].as_str().unwrap().starts_with("chaincode response 400, "), "{e}");
    assert_eq!(detail["mspId"], "Org1MSP");
    assert_eq!(detail["address"].as_str(), Some(c.net.peers[0].endpoint().as_str()));
    assert_eq!(e["evaluate"]["kind"], "GatewayError", "{e}");
    assert_eq!(e["evaluate"]["code"], 2, "UNKNOWN: {e}");
    assert!(e["evaluate"]["details"][0]["message"].as_str().unwrap().starts_with("chaincode response 404, "));
    assert_eq!(
        (e["submit"]["kind"].as_str(), e["submit"]["gatewayError"].as_bool()),
        (Some("SubmitError"), Some(true)),
        "{e}"
    );
    assert_eq!(e["submit"]["code"], 10, "ABORTED: {e}");
    assert!(e["submit"]["message"].as_str().unwrap().contains("status=FORBIDDEN"), "{e}");
    let race = e["commit"].as_array().unwrap();
    let committed: Vec<&Value> = race.iter().filter(|x| x.get("ok").is_some()).collect();
    let conflicts: Vec<&Value> = race.iter().filter(|x| x["commitError"] == true).collect();
    assert_eq!((committed.len(), conflicts.len()), (1, 1), "{race:?}");
    assert_eq!(committed[0]["ok"], "1");
    let code = conflicts[0]["code"].as_i64();
    assert_eq!(code, Some(i64::from(TxValidationCode::MvccReadConflict.as_u8())), "{race:?}");
    // Nothing the refusals touched changed.
    let kv = c.gateway(1).contract("kv");
    assert!(kv.evaluate("get", &[b"forged".to_vec()]).await.is_err());
    assert_eq!(kv.evaluate("get", &[b"race".to_vec()]).await.unwrap(), b"1");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabric_gateway_application_with_ed25519_keys_runs_on_ipechain() {
    fabric_application_runs_against(Cluster::start(61).await, "ed25519").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabric_gateway_application_with_p256_keys_runs_on_ipechain() {
    fabric_application_runs_against(Cluster::start_with(62, msp::Algorithm::EcdsaP256).await, "prime256v1")
        .await;
}
