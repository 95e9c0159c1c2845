//! The contract lifecycle on `ipechain up`: `ipechain contract deploy` brings a `fabric-contract-api`
//! chaincode (npm, served by fabric-shim) onto the channel, Fabric's own Node client calls it; then an
//! upgrade moves the IPE itself out of the peers onto `ipechain chaincode ipe`, and the interworking goes on
//! through it.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use test_support::ChildGuard;

use crate::interworking::{
    App, NodeClient, outcome, paper_app, spawn_up, stop, verify, wait_for, wait_ledger_up, wait_tree,
};
use crate::processes::{Net, bin};

fn contract(net: &Net, args: &[&str]) -> std::process::Output {
    Command::new(bin()).arg("contract").args(args).arg("--data-dir").arg(net.dir.root()).output().unwrap()
}

fn ok(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn wait_listening(port: u16) {
    wait_for("a chaincode server", 30, || std::net::TcpStream::connect(("127.0.0.1", port)).ok()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_are_deployed_on_up_through_the_lifecycle() {
    let net = Net::generate();
    let (cse, coap) = (test_support::free_tcp_port(), test_support::free_udp_port());
    let mut up = spawn_up(&net, cse, coap, &[]);
    wait_ledger_up(&net).await;

    // A Fabric developer's chaincode, served as Fabric's ccaas builder would run it.
    let port = test_support::free_tcp_port();
    let (node, gateway_modules) = test_support::fabric_gateway_node();
    let modules = test_support::fabric_chaincode_modules();
    let scripts = test_support::workspace_root().join("crates/network/tests/it/scripts");
    let log = std::fs::File::create(net.logs.join("assets.log")).unwrap();
    let _assets = ChildGuard::spawn(
        Command::new(&node)
            .arg(modules.join("fabric-shim/cli.js"))
            .args([
                "server",
                "--chaincode-address",
                &format!("127.0.0.1:{port}"),
                "--chaincode-id",
                "assets:1",
            ])
            .arg("--module-path")
            .arg(scripts.join("chaincode"))
            .env("NODE_PATH", &modules)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    )
    .unwrap();
    wait_listening(port).await;
    let address = format!("127.0.0.1:{port}");
    let before = contract(&net, &["list", "--json"]);
    assert!(!ok(before, "list").contains("assets"));
    let policy = "AND('Org1MSP.peer','Org2MSP.peer')";
    let out = ok(
        contract(
            &net,
            &["deploy", "--name", "assets", "--version", "1.0", "--address", &address, "--policy", policy],
        ),
        "deploy assets",
    );
    assert!(out.contains("committed assets version 1.0 sequence 1"), "{out}");

    // Fabric's own Node client, with nothing but its connection details.
    let user =
        net.dir.crypto_dir().join("peerOrganizations/org1.ipechain.local/users/User1@org1.ipechain.local");
    let mut cmd = Command::new(&node);
    cmd.arg(scripts.join("fabric_chaincode_client.js"))
        .arg(user)
        .args(["Org1MSP", &net.endpoint("peer0.org1.ipechain.local"), "iot", "a7"])
        .env("NODE_PATH", gateway_modules);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let r: Value = serde_json::from_str(&ok(out, "the fabric-gateway client")).unwrap();
    assert_eq!(r["created"], json!({"id": "a7", "color": "green", "owner": "zoe"}), "{r}");
    assert_eq!(r["event"]["name"], "AssetCreated", "{r}");

    // The IPE leaves the peers: sequence 2 of its definition names a chaincode server (the same crate,
    // served over Fabric's shim protocol).
    let ipe_port = test_support::free_tcp_port();
    let ipe_log = std::fs::File::create(net.logs.join("ipe-chaincode.log")).unwrap();
    let mut ipe_server = ChildGuard::spawn(
        Command::new(bin())
            .args(["chaincode", "ipe", "--listen", &format!("127.0.0.1:{ipe_port}")])
            .stdout(Stdio::null())
            .stderr(ipe_log),
    )
    .unwrap();
    wait_listening(ipe_port).await;
    let ipe_address = format!("127.0.0.1:{ipe_port}");
    let out = ok(
        contract(
            &net,
            &["deploy", "--name", "ipe", "--version", "2.0", "--address", &ipe_address, "--policy", "ANY"],
        ),
        "deploy ipe",
    );
    assert!(out.contains("committed ipe version 2.0 sequence 2"), "{out}");
    let list: Value = serde_json::from_str(&ok(contract(&net, &["list", "--json"]), "list")).unwrap();
    let row = |name: &str| list.as_array().unwrap().iter().find(|d| d["name"] == name).cloned().unwrap();
    assert_eq!((row("ipe")["sequence"].clone(), row("ipe")["runs"].clone()), (json!(2), json!(ipe_address)));
    assert_eq!(
        (row("assets")["sequence"].clone(), row("assets")["runs"].clone()),
        (json!(1), json!(address))
    );
    assert_eq!(row("kv")["runs"], "as installed");

    // An application reads a device through the IPE, now on its chaincode server.
    let _dev = NodeClient::start(&format!(
        "create /3303/0\nset /3303/0 5700 19.5\nconnect 127.0.0.1 {} lc-ep /\n",
        up.coap
    ))
    .await;
    wait_for("the device's AE tree", 60, wait_tree(up.cse, "cse-in", "Clc-ep/obj3303_0/res5700")).await;
    let mut app = App::register(up.cse, "cse-in", "Clcapp").await;
    app.subscribe_rsp("Clc-ep", "lcapp-rsp");
    app.request("Clc-ep", json!({"request_id": "lc-1", "op": "read", "path": "/3303/0/5700"}));
    let a = app.answer("lc-1", 60).await;
    assert_eq!(a["content"]["values"]["/3303/0/5700"]["v"], 19.5, "{a}");

    // The paper's Node.js application (Fabric's own client) reads the same device through it.
    let mut paper = paper_app(&net, &["scenario1", "--endpoint", "lc-ep", "--path", "/3303/0/5700"]);
    let out = tokio::task::spawn_blocking(move || paper.output().unwrap()).await.unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scenario 1 failed:\n{report}");
    let lines: Vec<Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let response = outcome(&lines, "response");
    assert_eq!(response["values"]["/3303/0/5700"]["v"].as_f64(), Some(19.5), "{response}");

    // Proof that the peers call the server: without it, the IPE does not answer.
    drop(ipe_server);
    let show =
        Command::new(bin()).args(["policy", "show", "--data-dir"]).arg(net.dir.root()).output().unwrap();
    assert!(!show.status.success(), "the IPE answered without its chaincode server");
    assert!(
        String::from_utf8_lossy(&show.stderr).contains(&ipe_address),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    ipe_server = ChildGuard::spawn(
        Command::new(bin())
            .args(["chaincode", "ipe", "--listen", &ipe_address])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    wait_listening(ipe_port).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let show =
        Command::new(bin()).args(["policy", "show", "--data-dir"]).arg(net.dir.root()).output().unwrap();
    assert!(show.status.success(), "{}", String::from_utf8_lossy(&show.stderr));
    drop(ipe_server);
    stop(&mut up).await;
    verify(&net);
}
