//! `ipechain policy`: the IPE contract's on-chain access policy (which oneM2M originators may do what on which
//! devices), read by anyone, changed only by admin transactions (signed here as Org1's Admin).

use anyhow::{Context, Result};
use ipe::IpeCall;
use serde_json::{Value, json};

use crate::DataDirArg;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum PolicyCommand {
    /// Print the policy in force (JSON).
    Show {
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Add a rule, or replace the rule with the same id.
    Grant {
        #[command(flatten)]
        dir: DataDirArg,
        /// Rule id.
        #[arg(long)]
        id: String,
        /// Originator patterns (AE-IDs; `*` or a prefix ending in `*`), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        originators: Vec<String>,
        /// Device patterns (endpoint names or AE-IDs), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "*")]
        devices: Vec<String>,
        /// Permissions: read, write, execute, observe, answer, `*`; comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "*")]
        ops: Vec<String>,
        /// Only members of these organizations (MSP ids) may submit under this rule.
        #[arg(long, value_delimiter = ',')]
        msps: Vec<String>,
    },
    /// Remove a rule.
    Revoke {
        #[command(flatten)]
        dir: DataDirArg,
        /// Rule id.
        id: String,
    },
    /// Replace the whole policy with the rules in a JSON file (`{"rules": [...]}`).
    Set {
        #[command(flatten)]
        dir: DataDirArg,
        /// The file.
        file: std::path::PathBuf,
    },
}

pub(crate) async fn run(cmd: PolicyCommand) -> Result<()> {
    let (dir, call) = match cmd {
        PolicyCommand::Show { dir } => {
            let c = crate::gateway::client(&dir.resolve(), 0, "User1")?;
            let get = IpeCall::GetPolicy;
            let b = c.gateway.contract(ipe::NAME).evaluate(get.function(), &get.args()?).await?;
            let v: Value = serde_json::from_slice(&b)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(());
        }
        PolicyCommand::Grant { dir, id, originators, devices, ops, msps } => {
            let mut rule = json!({"id": id, "originators": originators, "devices": devices, "ops": ops});
            if !msps.is_empty() {
                rule["msps"] = json!(msps);
            }
            (dir, contract_reads("grant", rule.to_string().into_bytes())?)
        }
        PolicyCommand::Revoke { dir, id } => (dir, IpeCall::Revoke { rule_id: id }),
        PolicyCommand::Set { dir, file } => {
            let text = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let _: Value = serde_json::from_slice(&text).context("the policy file is not JSON")?;
            (dir, contract_reads("set_policy", text)?)
        }
    };
    let committed = crate::gateway::submit_as_admin(&dir.resolve(), &call).await?;
    let v: Value = serde_json::from_slice(&committed.payload)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    eprintln!("committed in block {} (tx {})", committed.block, committed.tx_id);
    Ok(())
}

/// What the operator gave, read by the contract's own reader: a malformed rule or policy is refused here
/// exactly as the contract would refuse it (status and message), before anything is signed.
fn contract_reads(function: &str, arg: Vec<u8>) -> Result<IpeCall> {
    IpeCall::parse(function, &[arg])
        .map_err(|e| anyhow::anyhow!("the IPE contract refused {function} ({}): {e}", e.status()))
}
