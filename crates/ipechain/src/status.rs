//! `ipechain status`: asks every node of the local network for its Admin status.

use anyhow::{Context, Result};
use ledger_client::node_status;
use ledger_rpc::messages::NodeStatus;
use ledger_rpc::tls::{TlsMaterial, channel};
use network::layout::{NodeConfig, NodeRole, load_identity, tls_material};
use network::{DataDir, NetworkConfig};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Serialize)]
struct Row {
    name: String,
    role: String,
    org: String,
    endpoint: String,
    reachable: bool,
    height: Option<u64>,
    head_hash: Option<String>,
    raft_state: Option<String>,
    raft_leader: Option<u64>,
    raft_term: Option<u64>,
    commit_hash: Option<String>,
    error: Option<String>,
}

/// The network description and a client identity's TLS material (the first peer org's admin).
pub(crate) fn admin_tls(dir: &DataDir) -> Result<(NetworkConfig, Vec<NodeConfig>, TlsMaterial)> {
    let text = std::fs::read_to_string(dir.network_file()).with_context(|| {
        format!("no network in {} (run `ipechain up` or `ipechain keys generate`)", dir.root().display())
    })?;
    let net = NetworkConfig::from_toml(&text).context("parsing network.toml")?;
    let mut nodes = Vec::new();
    for o in net.orderers.iter().chain(&net.peers) {
        let org = net.crypto.orderer_orgs.iter().chain(&net.crypto.peer_orgs).find(|g| g.msp_id == o.msp_id);
        let domain = org.map(|g| g.domain.clone()).unwrap_or_default();
        let path = dir.node_config(&format!("{}.{}", o.name, domain));
        nodes.push(NodeConfig::read(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    let org = net.crypto.peer_orgs.first().context("the network has no peer organization")?;
    let admin_dir: PathBuf = dir
        .crypto_dir()
        .join("peerOrganizations")
        .join(&org.domain)
        .join("users")
        .join(format!("Admin@{}", org.domain));
    let admin = load_identity(&org.msp_id, &admin_dir)?;
    let genesis = nodes.first().map(|n| n.genesis.clone()).context("no nodes")?;
    let (_, channel_cfg) = network::layout::read_genesis(&genesis)?;
    let tls = tls_material(&admin, &channel_cfg).context("admin has no TLS material")?;
    Ok((net, nodes, tls))
}

/// One node's Admin status, waiting at most 3 s: `Err` when the channel cannot be built, the inner `Err` when
/// the node did not answer (why, for people).
pub(crate) async fn query(n: &NodeConfig, tls: &TlsMaterial) -> Result<Result<NodeStatus, String>> {
    let ch = channel(&n.listen.to_string(), tls)?;
    Ok(match tokio::time::timeout(Duration::from_secs(3), node_status(ch)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("no answer within 3 s".into()),
    })
}

pub(crate) async fn run(dir: DataDir, json: bool) -> Result<()> {
    let (_net, nodes, tls) = admin_tls(&dir)?;
    let mut rows = Vec::new();
    for n in &nodes {
        let role = match n.role {
            NodeRole::Orderer => "orderer",
            NodeRole::Peer => "peer",
        };
        let mut row = Row {
            name: n.name.clone(),
            role: role.into(),
            org: n.msp_id.clone(),
            endpoint: n.listen.to_string(),
            reachable: false,
            height: None,
            head_hash: None,
            raft_state: None,
            raft_leader: None,
            raft_term: None,
            commit_hash: None,
            error: None,
        };
        match query(n, &tls).await? {
            Ok(s) => {
                row.reachable = true;
                row.height = Some(s.height);
                row.head_hash = Some(s.head_hash);
                if n.role == NodeRole::Orderer {
                    row.raft_state = Some(s.raft_state);
                    row.raft_leader = Some(s.raft_leader);
                    row.raft_term = Some(s.raft_term);
                } else {
                    row.commit_hash = Some(s.commit_hash);
                }
            }
            Err(e) => row.error = Some(e),
        }
        rows.push(row);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<28} {:<8} {:<11} {:>7}  {:<18} {:<10} {:>6}",
        "NODE", "ROLE", "ORG", "HEIGHT", "HEAD", "RAFT", "LEADER"
    );
    for r in &rows {
        if !r.reachable {
            println!(
                "{:<28} {:<8} {:<11} {:>7}  unreachable: {}",
                r.name,
                r.role,
                r.org,
                "-",
                r.error.as_deref().unwrap_or("")
            );
            continue;
        }
        let head = r.head_hash.as_deref().map(|h| h.get(..16).unwrap_or(h)).unwrap_or("-");
        println!(
            "{:<28} {:<8} {:<11} {:>7}  {:<18} {:<10} {:>6}",
            r.name,
            r.role,
            r.org,
            r.height.unwrap_or(0),
            head,
            r.raft_state.as_deref().unwrap_or("-"),
            r.raft_leader.map_or_else(|| "-".to_owned(), |l| l.to_string()),
        );
    }
    Ok(())
}
