//! Hyperledger Caliper (npm `@hyperledger/caliper-cli` 0.6.0, Fabric connector bound to
//! `@hyperledger/fabric-gateway` 1.5.0: its peer-gateway connector) runs a benchmark round against `ipechain
//! up` from the connection profile and network configuration `ipechain fabric profile` writes, as a Fabric
//! user would run it against a Fabric network. The round is `caliper/benchmark.yaml` (kv puts at a fixed
//! load). Two things Caliper 0.6's gateway connector needs, and why:
//! - ECDSA P-256 keys (`keys generate --key-type ecdsa-p256`): it signs SHA-256 digests, which Ed25519 does
//!   not (fabric-gateway's Ed25519 signing needs `hash.none`, which the connector does not pass);
//! - `client_auth = "optional"` on the peer it uses (Fabric's default `clientAuthRequired: false`): it opens
//!   TLS with the peer's CA only, without a client certificate.
//!
//! Caliper's figures are logged (the round's row of its report); the test checks that every transaction
//! succeeded and that they are on the ledger.

use std::process::Command;

use crate::interworking::{sdk, spawn_up, stop, wait_ledger_up};
use crate::processes::{Net, bin};

/// One row of Caliper's report table: `| Name | Succ | Fail | Send Rate (TPS) | Max Latency (s) | Min
/// Latency (s) | Avg Latency (s) | Throughput (TPS) |`.
fn report_row<'a>(log: &'a str, round: &str) -> Option<Vec<&'a str>> {
    log.lines()
        .rev()
        .map(|l| l.split('|').map(str::trim).filter(|c| !c.is_empty()).collect::<Vec<_>>())
        .find(|cells| cells.len() == 8 && cells[0] == round)
}

/// `path` (under the test's temporary directory) relative to the data directory `data` beside it.
fn relative_to_data(path: &std::path::Path, data: &std::path::Path) -> std::path::PathBuf {
    let tmp = data.parent().unwrap();
    std::path::Path::new("..").join(path.strip_prefix(tmp).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caliper_runs_a_benchmark_round_on_ipechain_up_from_the_generated_profile() {
    let net = Net::generate_with(msp::Algorithm::EcdsaP256);
    // The peer Caliper uses lets clients connect without a TLS certificate (a top-level key, before tables).
    let peer_toml = net.dir.node_config("peer0.org1.ipechain.local");
    let text = std::fs::read_to_string(&peer_toml).unwrap();
    std::fs::write(&peer_toml, format!("client_auth = \"optional\"\n{text}")).unwrap();
    let work = net.logs.join("caliper");
    std::fs::create_dir_all(&work).unwrap();
    let (profile, network) = (work.join("connection-org1.json"), work.join("caliper-network.json"));
    // Run as a user would, from the data directory with relative paths: the files must still name absolute
    // ones (Caliper resolves relative paths against its workspace).
    let out = Command::new(bin())
        .current_dir(net.dir.root())
        .args(["fabric", "profile", "--org", "Org1", "--data-dir", "."])
        .arg("--out")
        .arg(relative_to_data(&profile, net.dir.root()))
        .arg("--caliper")
        .arg(&network)
        .output()
        .unwrap();
    assert!(out.status.success(), "fabric profile: {}", String::from_utf8_lossy(&out.stderr));

    let mut up = spawn_up(&net, test_support::free_tcp_port(), test_support::free_udp_port(), &[]);
    wait_ledger_up(&net).await;
    let (node, _) = test_support::fabric_gateway_node();
    let caliper = test_support::caliper_cli();
    let modules = caliper.ancestors().nth(3).unwrap().to_path_buf();
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/caliper");
    let mut cmd = Command::new(node);
    cmd.arg(&caliper)
        .args(["launch", "manager", "--caliper-flow-only-test"])
        .arg("--caliper-workspace")
        .arg(&workspace)
        .arg("--caliper-networkconfig")
        .arg(&network)
        .arg("--caliper-benchconfig")
        .arg(workspace.join("benchmark.yaml"))
        .arg("--caliper-report-path")
        .arg(work.join("report.html"))
        // The workload module finds @hyperledger/caliper-core there.
        .env("NODE_PATH", &modules);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "caliper failed:\n{log}");
    let row =
        report_row(&log, "kv-put").unwrap_or_else(|| panic!("no kv-put row in Caliper's report:\n{log}"));
    eprintln!("Caliper on ipechain up (debug build): {}", row.join(" | "));
    let (succ, fail): (u64, u64) = (row[1].parse().unwrap(), row[2].parse().unwrap());
    assert!(succ > 0 && fail == 0, "Caliper's round: {row:?}\n{log}");
    let throughput: f64 = row[7].parse().unwrap();
    assert!(throughput > 0.0, "{row:?}");
    // Its transactions are on the ledger (each worker's first key), as any client reads them.
    let kv = sdk(&net, 1, "User1").contract("kv");
    for worker in 0..2 {
        let key = format!("caliper-{worker}-1");
        assert_eq!(kv.evaluate("get", &[key.into_bytes()]).await.unwrap(), b"value");
    }
    stop(&mut up).await;
}
