//! Chaincode as a service: a chaincode written with Fabric's `fabric-contract-api` (npm), served by
//! `fabric-shim` in server mode, driven by both peers over Fabric's shim protocol (`peer::ccaas`).

use crate::cluster::{Cluster, node_configs};
use fabric_protos::protos::chaincode_message::Type as MsgType;
use fabric_protos::protos::chaincode_server::{Chaincode, ChaincodeServer};
use fabric_protos::protos::{
    ChaincodeId, ChaincodeInput, ChaincodeMessage, PutState, Response as PbResponse,
};
use ledger_client::{Checkpoint, ClientError};
use network::ContractSettings;
use prost::Message;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;
use test_support::ChildGuard;

/// `fabric-chaincode-node server` for the `assets` chaincode of scripts/chaincode on `port`.
fn chaincode_server(port: u16, log: &std::path::Path) -> ChildGuard {
    chaincode_server_with(port, log, &[])
}

/// The same with more command-line options (TLS).
fn chaincode_server_with(port: u16, log: &std::path::Path, extra: &[&std::ffi::OsStr]) -> ChildGuard {
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
            .args(extra)
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

    // Fabric's own Node client calls the same chaincode through org 1's peer.
    let (node, modules) = test_support::fabric_gateway_node();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/scripts/fabric_chaincode_client.js");
    let user =
        c.dir.crypto_dir().join("peerOrganizations/org1.ipechain.local/users/User1@org1.ipechain.local");
    let mut cmd = Command::new(node);
    cmd.arg(script)
        .arg(user)
        .args(["Org1MSP", &c.net.peers[0].endpoint(), "iot", "a9"])
        .env("NODE_PATH", modules);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("node runs")).await.unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out.stdout);
    assert_eq!(r["created"], json!({"id": "a9", "color": "green", "owner": "zoe"}), "{r}");
    assert_eq!(r["asset"]["owner"], "zoe", "{r}");
    assert_eq!(
        (r["event"]["name"].clone(), r["event"]["block"].clone()),
        (json!("AssetCreated"), r["block"].clone()),
        "{r}"
    );
    c.converged(r["block"].as_u64().unwrap() + 1).await;
    let seen = gw2.contract("assets").evaluate("read", &[b"a9".to_vec()]).await.unwrap();
    assert_eq!(json(&seen)["owner"], "zoe");
    drop(server);
    c.shutdown().await;
}

/// `_lifecycle` arguments for `assets` at `sequence` with `policy`, run by the server at `address`.
fn assets_definition(sequence: i64, policy: &str, address: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    assets_definition_tls(sequence, policy, address, Vec::new())
}

/// The same, over TLS with a server certificate `tls_root_cert` (PEM) issued.
fn assets_definition_tls(
    sequence: i64,
    policy: &str,
    address: &str,
    tls_root_cert: Vec<u8>,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use fabric_protos::lifecycle::{
        ApproveChaincodeDefinitionForMyOrgArgs, ChaincodeRuntime, CheckCommitReadinessArgs,
        CommitChaincodeDefinitionArgs, chaincode_runtime,
    };
    let members = ["Org1MSP".to_owned(), "Org2MSP".to_owned()];
    let vp = ledger_types::policy::Policy::parse(policy).unwrap().to_application_policy(&members);
    let runtime = Some(ChaincodeRuntime {
        kind: Some(chaincode_runtime::Kind::External(chaincode_runtime::External {
            address: address.into(),
            tls_root_cert: tls_root_cert.into(),
        })),
    });
    let approve = ApproveChaincodeDefinitionForMyOrgArgs {
        sequence,
        name: "assets".into(),
        version: format!("{sequence}.0"),
        validation_parameter: vp.clone().into(),
        ipechain_runtime: runtime.clone(),
        ..Default::default()
    };
    let ready = CheckCommitReadinessArgs {
        sequence,
        name: "assets".into(),
        version: format!("{sequence}.0"),
        validation_parameter: vp.clone().into(),
        ipechain_runtime: runtime.clone(),
        ..Default::default()
    };
    let commit = CommitChaincodeDefinitionArgs {
        sequence,
        name: "assets".into(),
        version: format!("{sequence}.0"),
        validation_parameter: vp.into(),
        ipechain_runtime: runtime,
        ..Default::default()
    };
    (approve.encode_to_vec(), ready.encode_to_vec(), commit.encode_to_vec())
}

/// The same approval and commit arguments with `init_required` set.
fn init_required(approve: Vec<u8>, commit: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    use fabric_protos::lifecycle::{ApproveChaincodeDefinitionForMyOrgArgs, CommitChaincodeDefinitionArgs};
    let mut a = ApproveChaincodeDefinitionForMyOrgArgs::decode(approve.as_slice()).unwrap();
    let mut c = CommitChaincodeDefinitionArgs::decode(commit.as_slice()).unwrap();
    a.init_required = true;
    c.init_required = true;
    (a.encode_to_vec(), c.encode_to_vec())
}

/// How many endorsements transaction `tx_id` of block `number` carries.
async fn endorsements(c: &Cluster, number: u64, tx_id: &str) -> usize {
    use ledger_types::BlockExt;
    let mut blocks = c.gateway(1).blocks(number, Some(number)).await.unwrap();
    let block = blocks.next().await.unwrap().unwrap();
    block
        .envelopes()
        .iter()
        .filter_map(|e| ledger_types::tx::DecodedTx::decode(e).ok())
        .find(|d| d.tx_id() == tx_id)
        .and_then(|d| d.action.map(|a| a.endorsements.len()))
        .unwrap_or_else(|| panic!("{tx_id} is not in block {number}"))
}

fn refused(e: &ClientError) -> (i32, String) {
    match e {
        ClientError::Refused { status, message, .. } => (*status, message.clone()),
        other => panic!("not a contract refusal: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_deploys_a_fabric_chaincode_and_upgrades_its_policy() {
    use fabric_protos::lifecycle::{
        CheckCommitReadinessResult, QueryChaincodeDefinitionArgs, QueryChaincodeDefinitionResult,
        QueryChaincodeDefinitionsResult,
    };
    let port = test_support::free_tcp_port();
    let address = format!("127.0.0.1:{port}");
    let logs = tempfile::tempdir().unwrap();
    let server = chaincode_server(port, &logs.path().join("chaincode.log"));
    wait_listening(port).await;
    // A network whose genesis block knows nothing of `assets`, and whose peers have no server configured.
    let c = Cluster::start(43).await;
    let (admin1, admin2) = (c.admin_gateway(1), c.admin_gateway(2));
    let (lc1, lc2) = (admin1.contract("_lifecycle"), admin2.contract("_lifecycle"));
    let assets = c.gateway(1).contract("assets");
    let create = |id: &str| vec![id.as_bytes().to_vec(), b"red".to_vec(), b"alice".to_vec()];
    let e = assets.submit("create", &create("a0")).await.unwrap_err();
    assert!(e.to_string().contains("assets"), "undefined chaincode: {e}");

    let (approve1, ready1, commit1) = assets_definition(1, "AND('Org1MSP.peer','Org2MSP.peer')", &address);
    // Only an organization's admin approves; the sequence must be the next one.
    let user_lc = c.gateway(1).contract("_lifecycle");
    let e = user_lc
        .submit("ApproveChaincodeDefinitionForMyOrg", std::slice::from_ref(&approve1))
        .await
        .unwrap_err();
    let (status, message) = refused(&e);
    assert_eq!(status, 403, "{message}");
    let (approve_wrong, _, _) = assets_definition(2, "ANY", &address);
    let (status, message) =
        refused(&lc1.submit("ApproveChaincodeDefinitionForMyOrg", &[approve_wrong]).await.unwrap_err());
    assert_eq!(status, 400);
    assert!(message.contains("must be sequence 1"), "{message}");
    // One organization of two is not a majority: the commit is refused and changes nothing.
    lc1.submit("ApproveChaincodeDefinitionForMyOrg", std::slice::from_ref(&approve1)).await.unwrap();
    let ready = lc1.evaluate("CheckCommitReadiness", std::slice::from_ref(&ready1)).await.unwrap();
    let ready = CheckCommitReadinessResult::decode(ready.as_slice()).unwrap().approvals;
    assert_eq!(ready.into_iter().collect::<Vec<_>>(), [("Org1MSP".into(), true), ("Org2MSP".into(), false)]);
    let (status, message) =
        refused(&lc1.submit("CommitChaincodeDefinition", std::slice::from_ref(&commit1)).await.unwrap_err());
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("not agreed"), "{message}");
    assert!(assets.submit("create", &create("a0")).await.is_err());

    // Org2 approves through its own peer; the commit is in force from the next block.
    lc2.submit("ApproveChaincodeDefinitionForMyOrg", &[approve1]).await.unwrap();
    let committed = lc1.submit("CommitChaincodeDefinition", std::slice::from_ref(&commit1)).await.unwrap();
    let created = assets.submit("create", &create("a1")).await.unwrap();
    assert!(created.block > committed.block);
    assert_eq!(json(&created.payload)["owner"], "alice");
    let seen = c.gateway(2).contract("assets").evaluate("read", &[b"a1".to_vec()]).await.unwrap();
    assert_eq!(json(&seen)["color"], "red");
    // A call into another chaincode (the built-in `kv`): its write commits under kv's namespace.
    let noted = assets.submit("note", &[b"noted".to_vec(), b"by-assets".to_vec()]).await.unwrap();
    assert_eq!(json(&noted.payload), json!({"put": 200, "got": "by-assets", "missing": 404}));
    let v = c.gateway(2).contract("kv").evaluate("get", &[b"noted".to_vec()]).await.unwrap();
    assert_eq!(v, b"by-assets");
    // The same definition cannot be committed twice.
    let (status, message) = refused(&lc2.submit("CommitChaincodeDefinition", &[commit1]).await.unwrap_err());
    assert_eq!(status, 400, "{message}");

    // What the lifecycle reports.
    let q = QueryChaincodeDefinitionArgs { name: "assets".into() }.encode_to_vec();
    let def = QueryChaincodeDefinitionResult::decode(
        c.gateway(2)
            .contract("_lifecycle")
            .evaluate("QueryChaincodeDefinition", &[q])
            .await
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    assert_eq!((def.sequence, def.version.as_str()), (1, "1.0"));
    assert!(def.approvals.values().all(|ok| *ok), "{:?}", def.approvals);
    let all = lc1.evaluate("QueryChaincodeDefinitions", &[Vec::new()]).await.unwrap();
    let names: Vec<(String, i64)> = QueryChaincodeDefinitionsResult::decode(all.as_slice())
        .unwrap()
        .chaincode_definitions
        .into_iter()
        .map(|d| (d.name, d.sequence))
        .collect();
    assert_eq!(names, [("assets".into(), 1), ("ipe".into(), 1), ("kv".into(), 1)]);

    // Upgrade: sequence 2 lets Org1 endorse alone. Before it, an Org1-only endorsement cannot be had.
    let (approve2, _, commit2) = assets_definition(2, "OR('Org1MSP.peer')", &address);
    lc1.submit("ApproveChaincodeDefinitionForMyOrg", std::slice::from_ref(&approve2)).await.unwrap();
    lc2.submit("ApproveChaincodeDefinitionForMyOrg", &[approve2]).await.unwrap();
    lc2.submit("CommitChaincodeDefinition", &[commit2]).await.unwrap();
    let moved = assets.submit("transfer", &[b"a1".to_vec(), b"bob".to_vec()]).await.unwrap();
    let (height, _) = c.converged(moved.block + 1).await;
    assert!(height > moved.block);
    let a1 = c.gateway(2).contract("assets").evaluate("read", &[b"a1".to_vec()]).await.unwrap();
    assert_eq!(json(&a1)["owner"], "bob");
    // The key's history: both writes, newest first, with their transactions; then its delete.
    let h = json(&c.gateway(2).contract("assets").evaluate("history", &[b"a1".to_vec()]).await.unwrap());
    let row = |i: usize| (h[i]["tx"].clone(), h[i]["owner"].clone(), h[i]["deleted"].clone());
    assert_eq!(h.as_array().map(Vec::len), Some(2), "{h}");
    assert_eq!(row(0), (json!(moved.tx_id), json!("bob"), json!(false)), "{h}");
    assert_eq!(row(1), (json!(created.tx_id), json!("alice"), json!(false)), "{h}");
    assert!(h[0]["seconds"].as_i64().is_some_and(|s| s > 1_700_000_000), "{h}");
    let removed = assets.submit("remove", &[b"a1".to_vec()]).await.unwrap();
    c.converged(removed.block + 1).await;
    let h = json(&assets.evaluate("history", &[b"a1".to_vec()]).await.unwrap());
    assert_eq!((h[0]["tx"].clone(), h[0]["deleted"].clone()), (json!(removed.tx_id), json!(true)), "{h}");
    assert_eq!(h.as_array().map(Vec::len), Some(3), "{h}");
    // The policy in force shows in the blocks: two endorsements under sequence 1, Org1's alone under 2.
    assert_eq!(endorsements(&c, created.block, &created.tx_id).await, 2);
    assert_eq!(endorsements(&c, moved.block, &moved.tx_id).await, 1);
    // Sequence 3 requires initialization: nothing else runs before one `is_init` call, which runs once.
    let (approve3, _, commit3) = assets_definition(3, "OR('Org1MSP.peer')", &address);
    let (approve3, commit3) = init_required(approve3, commit3);
    lc1.submit("ApproveChaincodeDefinitionForMyOrg", std::slice::from_ref(&approve3)).await.unwrap();
    lc2.submit("ApproveChaincodeDefinitionForMyOrg", &[approve3]).await.unwrap();
    lc1.submit("CommitChaincodeDefinition", &[commit3]).await.unwrap();
    let (status, message) = refused(&assets.submit("create", &create("a5")).await.unwrap_err());
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("call it as init first"), "{message}");
    let init = assets.submit_init("create", &create("a5")).await.unwrap();
    assert_eq!(json(&init.payload)["id"], "a5");
    let (status, message) = refused(&assets.submit_init("create", &create("a6")).await.unwrap_err());
    assert!(status == 400 && message.contains("already initialized"), "{status} {message}");
    assets.submit("create", &create("a6")).await.unwrap();

    // Built-in contracts keep working beside it, and refuse an initialization they do not require.
    c.gateway(2).contract("kv").submit("put", &[b"k".to_vec(), b"v".to_vec()]).await.unwrap();
    let (status, message) = refused(
        &c.gateway(2).contract("kv").submit_init("put", &[b"k".to_vec(), b"w".to_vec()]).await.unwrap_err(),
    );
    assert!(status == 400 && message.contains("does not require initialization"), "{status} {message}");
    drop(server);
    c.shutdown().await;
}

/// Approves `approve` as both organizations' admins and commits `commit`.
async fn define(c: &Cluster, approve: &[u8], commit: &[u8]) -> u64 {
    for org in [1, 2] {
        let admin = c.admin_gateway(org);
        admin
            .contract("_lifecycle")
            .submit("ApproveChaincodeDefinitionForMyOrg", &[approve.to_vec()])
            .await
            .unwrap();
    }
    let admin = c.admin_gateway(1);
    admin.contract("_lifecycle").submit("CommitChaincodeDefinition", &[commit.to_vec()]).await.unwrap().block
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_server_with_mutual_tls_is_reached_by_every_peer() {
    let c = Cluster::start(45).await;
    // The server's certificate comes from its own CA; it admits only clients the organizations' TLS CAs
    // issued (fabric-shim's --chaincode-tls-client-cacert-file): the peers present their TLS identities.
    let ca = test_support::pki::Ca::new("chaincode CA");
    let server = ca.issue("assets.local", &["127.0.0.1"]);
    let files = tempfile::tempdir().unwrap();
    let mut client_cas = Vec::new();
    for org in ["org1", "org2"] {
        let d = c.dir.crypto_dir().join(format!("peerOrganizations/{org}.ipechain.local/msp/tlscacerts"));
        for e in std::fs::read_dir(&d).unwrap() {
            client_cas.extend(std::fs::read(e.unwrap().path()).unwrap());
        }
    }
    let (cert, key, cas) = (
        files.path().join("server.crt"),
        files.path().join("server.key"),
        files.path().join("client-cas.pem"),
    );
    std::fs::write(&cert, &server.cert_pem).unwrap();
    std::fs::write(&key, &server.key_pem).unwrap();
    std::fs::write(&cas, &client_cas).unwrap();
    let port = test_support::free_tcp_port();
    let address = format!("127.0.0.1:{port}");
    let args: Vec<&std::ffi::OsStr> = vec![
        "--chaincode-tls-cert-file".as_ref(),
        cert.as_os_str(),
        "--chaincode-tls-key-file".as_ref(),
        key.as_os_str(),
        "--chaincode-tls-client-cacert-file".as_ref(),
        cas.as_os_str(),
    ];
    let _server = chaincode_server_with(port, &files.path().join("chaincode.log"), &args);
    wait_listening(port).await;

    let (approve, _, commit) =
        assets_definition_tls(1, "AND('Org1MSP.peer','Org2MSP.peer')", &address, ca.cert_pem.clone());
    define(&c, &approve, &commit).await;
    let assets = c.gateway(1).contract("assets");
    let created =
        assets.submit("create", &[b"t1".to_vec(), b"blue".to_vec(), b"tls".to_vec()]).await.unwrap();
    assert_eq!(json(&created.payload)["owner"], "tls");
    let seen = c.gateway(2).contract("assets").evaluate("read", &[b"t1".to_vec()]).await.unwrap();
    assert_eq!(json(&seen)["color"], "blue");

    // A definition naming a CA that did not issue the server's certificate: the peers refuse the server,
    // the proposal fails with the reason, nothing is committed, the peers stay up.
    let other = test_support::pki::Ca::new("another CA");
    let (approve, _, commit) = assets_definition_tls(2, "ANY", &address, other.cert_pem.clone());
    define(&c, &approve, &commit).await;
    let e = assets.submit("create", &[b"t2".to_vec(), b"red".to_vec(), b"x".to_vec()]).await.unwrap_err();
    assert!(e.to_string().contains(&address), "{e}");
    c.gateway(2).contract("kv").submit("put", &[b"after".to_vec(), b"tls".to_vec()]).await.unwrap();
    let (approve, _, commit) = assets_definition_tls(3, "ANY", &address, ca.cert_pem.clone());
    define(&c, &approve, &commit).await;
    let e = assets.evaluate("read", &[b"t2".to_vec()]).await.unwrap_err();
    assert!(e.to_string().contains("does not exist"), "t2 was never committed: {e}");
    c.shutdown().await;
}

/// A chaincode server that misbehaves on request: the function name says how.
struct Rogue;

type RogueStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl Chaincode for Rogue {
    type ConnectStream = RogueStream;

    async fn connect(
        &self,
        request: tonic::Request<tonic::Streaming<ChaincodeMessage>>,
    ) -> Result<tonic::Response<RogueStream>, tonic::Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let register = ChaincodeId { name: "rogue:1".into(), ..Default::default() }.encode_to_vec();
        tx.send(Ok(msg(MsgType::Register, register, "", ""))).await.unwrap();
        tokio::spawn(async move {
            // What each transaction waits for: its function name.
            let mut pending = std::collections::HashMap::new();
            while let Ok(Some(m)) = inbound.message().await {
                let (txid, ch) = (m.txid.clone(), m.channel_id.clone());
                let done = |status: i32, message: &str, payload: &[u8]| {
                    let r = PbResponse { status, message: message.into(), payload: payload.to_vec().into() };
                    msg(MsgType::Completed, r.encode_to_vec(), &txid, &ch)
                };
                let out = match MsgType::try_from(m.r#type) {
                    Ok(MsgType::Transaction) => {
                        let input = ChaincodeInput::decode(m.payload.as_ref()).unwrap();
                        let f = String::from_utf8(input.args[0].to_vec()).unwrap();
                        let first = match f.as_str() {
                            "hang" => None,
                            "garbage" => Some(msg(MsgType::Completed, vec![0xff, 0xff, 0x01], &txid, &ch)),
                            "weird" => Some(ChaincodeMessage {
                                r#type: 99,
                                ..msg(MsgType::Undefined, vec![], &txid, &ch)
                            }),
                            "big" => Some(msg(
                                MsgType::PutState,
                                PutState {
                                    key: "big".into(),
                                    value: vec![b'x'; 17 << 20].into(),
                                    ..Default::default()
                                }
                                .encode_to_vec(),
                                &txid,
                                &ch,
                            )),
                            "ok" => Some(msg(
                                MsgType::PutState,
                                PutState {
                                    key: "k".into(),
                                    value: b"v".to_vec().into(),
                                    ..Default::default()
                                }
                                .encode_to_vec(),
                                &txid,
                                &ch,
                            )),
                            "crash" => {
                                let _ = tx.send(Err(tonic::Status::internal("the chaincode crashed"))).await;
                                return;
                            }
                            other => Some(done(400, &format!("no function {other}"), b"")),
                        };
                        pending.insert(txid.clone(), f);
                        first
                    }
                    Ok(MsgType::Response | MsgType::Error) => {
                        let text = String::from_utf8_lossy(&m.payload).into_owned();
                        match (pending.remove(&txid).as_deref(), m.r#type == MsgType::Error as i32) {
                            (Some("weird"), true) => Some(done(200, "", b"survived")),
                            (Some("big"), true) => Some(done(500, &format!("write refused: {text}"), b"")),
                            (Some("ok"), false) => Some(done(200, "", b"fine")),
                            (f, _) => {
                                Some(done(500, &format!("{f:?} got an unexpected answer: {text}"), b""))
                            }
                        }
                    }
                    _ => None,
                };
                if let Some(o) = out
                    && tx.send(Ok(o)).await.is_err()
                {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

fn msg(kind: MsgType, payload: Vec<u8>, txid: &str, channel_id: &str) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: kind as i32,
        payload: payload.into(),
        txid: txid.into(),
        channel_id: channel_id.into(),
        ..Default::default()
    }
}

/// A chaincode that never answers, answers garbage, sends unknown messages, writes a value over the
/// channel's maximum or crashes mid-transaction fails that proposal only, with a clear error; the peer stays
/// up, reconnects, and nothing is committed but the proposals that succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_chaincode_fails_its_own_proposals_only() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ChaincodeServer::new(Rogue).max_decoding_message_size(64 << 20))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let generated = crate::generated_custom(41, |net| {
        net.contracts.push(ContractSettings { name: "rogue".into(), policy: "ANY".into() });
    });
    for path in node_configs(&generated.1) {
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("role = \"peer\"") {
            let add =
                format!("\n[chaincodes.rogue]\naddress = \"127.0.0.1:{port}\"\nexecute_timeout_secs = 2\n");
            std::fs::write(&path, text + &add).unwrap();
        }
    }
    let c = Cluster::start_generated(generated).await;
    let gw = c.gateway(1);
    let first = gw.contract("kv").submit("put", &[b"before".to_vec(), b"1".to_vec()]).await.unwrap();
    let rogue = gw.contract("rogue");
    let refused = |e: ClientError, what: &str| {
        assert!(
            matches!(&e, ClientError::Refused { status: 500, message, .. } if message.contains(what)),
            "{e}"
        );
    };
    refused(rogue.submit("hang", &[]).await.unwrap_err(), "did not complete within 2s");
    refused(rogue.submit("garbage", &[]).await.unwrap_err(), "COMPLETED payload");
    let weird = rogue.submit("weird", &[]).await.unwrap();
    assert_eq!(weird.payload, b"survived");
    refused(rogue.submit("big", &[]).await.unwrap_err(), "over the channel's maximum");
    refused(rogue.submit("crash", &[]).await.unwrap_err(), "connection lost");
    let ok = rogue.submit("ok", &[]).await.unwrap();
    assert_eq!(ok.payload, b"fine");
    let last = gw.contract("kv").submit("put", &[b"after".to_vec(), b"2".to_vec()]).await.unwrap();

    // Only the proposals that succeeded were ordered and committed.
    let mut committed = Vec::new();
    let mut blocks = gw.commits(first.block, Some(last.block)).await.unwrap();
    while let Some((_, txs)) = blocks.next().await.unwrap() {
        committed.extend(txs.into_iter().map(|(id, code)| (id, code.is_valid())));
    }
    let expected: Vec<_> = [&first.tx_id, &weird.tx_id, &ok.tx_id, &last.tx_id]
        .into_iter()
        .map(|id| (id.clone(), true))
        .collect();
    assert_eq!(committed, expected);
    c.shutdown().await;
}
