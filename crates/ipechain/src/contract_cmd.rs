//! `ipechain contract`: the contract lifecycle on chain (Fabric's `_lifecycle`): organization admins approve
//! a chaincode definition, anyone commits it once a majority of organizations approved, and `deploy` does
//! both for a single-operator network (approves as every local organization's admin, then commits).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ledger_types::fabric_protos::lifecycle::{
    ChaincodeRuntime, CheckCommitReadinessResult, CommitChaincodeDefinitionArgs,
    QueryChaincodeDefinitionArgs, QueryChaincodeDefinitionResult, QueryChaincodeDefinitionsArgs,
    QueryChaincodeDefinitionsResult, chaincode_runtime,
};
use ledger_types::policy::Policy;
use prost::Message;

use crate::DataDirArg;

const LIFECYCLE: &str = "_lifecycle";

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct DefinitionArgs {
    /// The contract's name (letters and digits, parts joined by - or _).
    #[arg(long)]
    name: String,
    /// Its version label.
    #[arg(long)]
    version: String,
    /// The definition's sequence: 1 for a new contract, one more than the committed one for an upgrade
    /// (default: that).
    #[arg(long)]
    sequence: Option<i64>,
    /// Endorsement policy, Fabric's syntax or ANY / MAJORITY (default: MAJORITY, Fabric's default).
    #[arg(long, value_name = "EXPR")]
    policy: Option<String>,
    /// The chaincode server's `host:port` (chaincode as a service): every peer dials it, unless the peer
    /// names its own server for this contract in `[chaincodes.<name>]`.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "built_in")]
    address: Option<String>,
    /// PEM of the CA of the chaincode server's TLS certificate (default: plain TCP).
    #[arg(long, value_name = "FILE", requires = "address")]
    tls_ca: Option<PathBuf>,
    /// The contract is built into the peers (`kv`, `ipe`).
    #[arg(long)]
    built_in: bool,
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum ContractCommand {
    /// Approve a definition for one organization, signed by its admin.
    Approve {
        #[command(flatten)]
        dir: DataDirArg,
        #[command(flatten)]
        def: DefinitionArgs,
        /// The approving organization (its name in network.toml or MSP id; default: the first).
        #[arg(long)]
        org: Option<String>,
    },
    /// Which organizations approved exactly this definition.
    Readiness {
        #[command(flatten)]
        dir: DataDirArg,
        #[command(flatten)]
        def: DefinitionArgs,
    },
    /// Commit a definition that enough organizations approved (MAJORITY); in force from the next block.
    Commit {
        #[command(flatten)]
        dir: DataDirArg,
        #[command(flatten)]
        def: DefinitionArgs,
        /// The submitting organization's admin (default: the first organization's).
        #[arg(long)]
        org: Option<String>,
    },
    /// The definitions in force.
    List {
        #[command(flatten)]
        dir: DataDirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve as every organization's admin of the local network, then commit.
    Deploy {
        #[command(flatten)]
        dir: DataDirArg,
        #[command(flatten)]
        def: DefinitionArgs,
    },
}

/// The local network's organizations: (index, name, MSP id).
fn orgs(dir: &network::DataDir) -> Result<Vec<(usize, String, String)>> {
    let (net, _, _) = crate::status::admin_tls(dir)?;
    Ok(net.crypto.peer_orgs.iter().enumerate().map(|(i, o)| (i, o.name.clone(), o.msp_id.clone())).collect())
}

fn org_index(dir: &network::DataDir, org: Option<&str>) -> Result<usize> {
    let all = orgs(dir)?;
    match org {
        None => Ok(0),
        Some(o) => all.iter().find(|(_, n, m)| n == o || m == o).map(|(i, _, _)| *i).with_context(|| {
            let names: Vec<&str> = all.iter().map(|(_, n, _)| n.as_str()).collect();
            format!("no organization {o:?} in this network ({})", names.join(", "))
        }),
    }
}

/// The definition's fields in `_lifecycle`'s terms.
struct Definition {
    name: String,
    version: String,
    sequence: i64,
    validation_parameter: Vec<u8>,
    runtime: Option<ChaincodeRuntime>,
}

async fn definition(dir: &network::DataDir, a: &DefinitionArgs) -> Result<Definition> {
    let members: Vec<String> = orgs(dir)?.into_iter().map(|(_, _, m)| m).collect();
    let policy = match &a.policy {
        Some(p) => Policy::parse(p).with_context(|| format!("--policy {p:?}"))?,
        None => Policy::Majority,
    };
    let runtime = if a.built_in {
        Some(chaincode_runtime::Kind::BuiltIn(chaincode_runtime::BuiltIn {}))
    } else if let Some(address) = &a.address {
        let tls_root_cert = match &a.tls_ca {
            Some(p) => std::fs::read(p).with_context(|| format!("reading --tls-ca {}", p.display()))?,
            None => Vec::new(),
        };
        Some(chaincode_runtime::Kind::External(chaincode_runtime::External {
            address: address.clone(),
            tls_root_cert: tls_root_cert.into(),
        }))
    } else {
        None
    };
    let sequence = match a.sequence {
        Some(s) => s,
        None => committed_sequence(dir, &a.name).await? + 1,
    };
    Ok(Definition {
        name: a.name.clone(),
        version: a.version.clone(),
        sequence,
        validation_parameter: policy.to_application_policy(&members),
        runtime: runtime.map(|k| ChaincodeRuntime { kind: Some(k) }),
    })
}

impl Definition {
    /// The definition as `_lifecycle`'s argument. Approve, CheckCommitReadiness and Commit share fields 1–8
    /// and 1000 (Approve's `source`, field 9, stays unset), so one encoding serves all three.
    fn arg(&self) -> Vec<u8> {
        CommitChaincodeDefinitionArgs {
            sequence: self.sequence,
            name: self.name.clone(),
            version: self.version.clone(),
            validation_parameter: self.validation_parameter.clone().into(),
            ipechain_runtime: self.runtime.clone(),
            ..Default::default()
        }
        .encode_to_vec()
    }
}

/// The committed definition's sequence (0 when none).
async fn committed_sequence(dir: &network::DataDir, name: &str) -> Result<i64> {
    let c = crate::gateway::client(dir, 0, "User1")?;
    let arg = QueryChaincodeDefinitionArgs { name: name.to_owned() }.encode_to_vec();
    match c.gateway.contract(LIFECYCLE).evaluate("QueryChaincodeDefinition", &[arg]).await {
        Ok(bytes) => Ok(QueryChaincodeDefinitionResult::decode(bytes.as_slice())?.sequence),
        Err(e) if e.contract_status() == Some(404) => Ok(0),
        Err(e) => Err(refused("QueryChaincodeDefinition", e)),
    }
}

fn refused(function: &str, e: ledger_client::ClientError) -> anyhow::Error {
    match bridge::ledger::contract_status(&e) {
        Some((status, message)) => anyhow::anyhow!("_lifecycle refused {function} ({status}): {message}"),
        None => anyhow::Error::from(e).context(format!("_lifecycle {function}")),
    }
}

async fn approve(dir: &network::DataDir, org: usize, d: &Definition) -> Result<()> {
    let c = crate::gateway::client(dir, org, "Admin")?;
    let arg = d.arg();
    let done = c
        .gateway
        .contract(LIFECYCLE)
        .submit("ApproveChaincodeDefinitionForMyOrg", &[arg])
        .await
        .map_err(|e| refused("ApproveChaincodeDefinitionForMyOrg", e))?;
    eprintln!(
        "{} approved {} sequence {} (block {}, tx {})",
        c.who.org, d.name, d.sequence, done.block, done.tx_id
    );
    Ok(())
}

async fn readiness(dir: &network::DataDir, d: &Definition) -> Result<BTreeMap<String, bool>> {
    let c = crate::gateway::client(dir, 0, "User1")?;
    let arg = d.arg();
    let bytes = c
        .gateway
        .contract(LIFECYCLE)
        .evaluate("CheckCommitReadiness", &[arg])
        .await
        .map_err(|e| refused("CheckCommitReadiness", e))?;
    Ok(CheckCommitReadinessResult::decode(bytes.as_slice())?.approvals)
}

async fn commit(dir: &network::DataDir, org: usize, d: &Definition) -> Result<()> {
    let c = crate::gateway::client(dir, org, "Admin")?;
    let arg = d.arg();
    let done = c
        .gateway
        .contract(LIFECYCLE)
        .submit("CommitChaincodeDefinition", &[arg])
        .await
        .map_err(|e| refused("CommitChaincodeDefinition", e))?;
    println!(
        "committed {} version {} sequence {} in block {} (tx {}); in force from block {}",
        d.name,
        d.version,
        d.sequence,
        done.block,
        done.tx_id,
        done.block + 1
    );
    Ok(())
}

fn runs(runtime: Option<&ChaincodeRuntime>) -> String {
    match runtime.and_then(|r| r.kind.as_ref()) {
        None => "as installed".into(),
        Some(chaincode_runtime::Kind::BuiltIn(_)) => "built in".into(),
        Some(chaincode_runtime::Kind::External(e)) => {
            format!("{}{}", e.address, if e.tls_root_cert.is_empty() { "" } else { " (TLS)" })
        }
    }
}

fn policy_text(vp: &[u8]) -> String {
    Policy::from_application_policy(vp).map_or_else(|e| format!("<{e}>"), |p| p.to_string())
}

async fn list(dir: &network::DataDir, json: bool) -> Result<()> {
    let c = crate::gateway::client(dir, 0, "User1")?;
    let bytes = c
        .gateway
        .contract(LIFECYCLE)
        .evaluate("QueryChaincodeDefinitions", &[QueryChaincodeDefinitionsArgs {}.encode_to_vec()])
        .await
        .map_err(|e| refused("QueryChaincodeDefinitions", e))?;
    let defs = QueryChaincodeDefinitionsResult::decode(bytes.as_slice())?.chaincode_definitions;
    if json {
        let v: Vec<serde_json::Value> = defs
            .iter()
            .map(|d| {
                serde_json::json!({"name": d.name, "sequence": d.sequence, "version": d.version,
                    "policy": policy_text(&d.validation_parameter), "runs": runs(d.ipechain_runtime.as_ref())})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{:<16} {:>8} {:<10} {:<24} POLICY", "NAME", "SEQUENCE", "VERSION", "RUNS");
    for d in &defs {
        println!(
            "{:<16} {:>8} {:<10} {:<24} {}",
            d.name,
            d.sequence,
            d.version,
            runs(d.ipechain_runtime.as_ref()),
            policy_text(&d.validation_parameter)
        );
    }
    Ok(())
}

pub(crate) async fn run(cmd: ContractCommand) -> Result<()> {
    match cmd {
        ContractCommand::Approve { dir, def, org } => {
            let dir = dir.resolve();
            let org = org_index(&dir, org.as_deref())?;
            let d = definition(&dir, &def).await?;
            approve(&dir, org, &d).await
        }
        ContractCommand::Readiness { dir, def } => {
            let dir = dir.resolve();
            let d = definition(&dir, &def).await?;
            for (msp, ok) in readiness(&dir, &d).await? {
                println!("{msp}: {ok}");
            }
            Ok(())
        }
        ContractCommand::Commit { dir, def, org } => {
            let dir = dir.resolve();
            let org = org_index(&dir, org.as_deref())?;
            let d = definition(&dir, &def).await?;
            commit(&dir, org, &d).await
        }
        ContractCommand::List { dir, json } => list(&dir.resolve(), json).await,
        ContractCommand::Deploy { dir, def } => {
            let dir = dir.resolve();
            if !def.built_in && def.address.is_none() {
                bail!(
                    "deploy needs where the contract runs: --address HOST:PORT (a chaincode server) or --built-in"
                );
            }
            let d = definition(&dir, &def).await?;
            for (i, _, _) in orgs(&dir)? {
                approve(&dir, i, &d).await?;
            }
            commit(&dir, 0, &d).await
        }
    }
}
