//! `ipechain`: the command-line shell. It parses raw arguments into a validated configuration and calls
//! library crates; it holds no protocol or ledger logic of its own (STYLE habit 9).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI prints

mod bench_cmd;
mod bench_iw;
mod demo;
mod device_cmd;
mod gateway;
mod keys;
mod node;
mod policy_cmd;
mod status;
mod verify;

use anyhow::Result;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "ipechain", version, about = "oneM2M ⇄ LwM2M interworking through a permissioned ledger")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct DataDirArg {
    /// Data directory of the local network (default: $IPECHAIN_DATA_DIR, else the per-user data directory).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

impl DataDirArg {
    fn resolve(&self) -> network::DataDir {
        network::DataDir::new(self.data_dir.clone().unwrap_or_else(default_data_dir))
    }
}

/// `$IPECHAIN_DATA_DIR`, else `$XDG_DATA_HOME/ipechain`, else `~/.local/share/ipechain`.
fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("IPECHAIN_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("ipechain");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/ipechain")
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole default network (3 orderers, 2 peers, channel `iot`) in this process.
    Up {
        #[command(flatten)]
        dir: DataDirArg,
        #[command(flatten)]
        edge: node::EdgeArgs,
    },
    /// Run one node (orderer or peer) from its config file, e.g. `<data-dir>/nodes/peer0.org1.ipechain.local.toml`.
    Node {
        /// The node's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Crypto material, genesis block and node configs.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Height, head hash and Raft state of every node of the local network.
    Status {
        #[command(flatten)]
        dir: DataDirArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Audit every peer's chain offline: hash links, signatures, validation codes, state.
    Verify {
        #[command(flatten)]
        dir: DataDirArg,
        /// Signature-checking threads (default: the machine's cores). The result does not depend on it.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
    },
    /// The IPE contract's access policy: show, grant, revoke, set.
    Policy {
        #[command(subcommand)]
        command: policy_cmd::PolicyCommand,
    },
    /// LwM2M device credentials bound on chain: add, list, remove.
    Device {
        #[command(subcommand)]
        command: device_cmd::DeviceCommand,
    },
    /// Benchmarks against the running local network.
    Bench {
        #[command(subcommand)]
        command: bench_cmd::BenchCommand,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=error,h2=warn,tower=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Up { dir, edge } => rt.block_on(node::up(dir.resolve(), edge)),
        Command::Node { config } => rt.block_on(node::run_one(&config)),
        Command::Keys { command } => keys::run(command),
        Command::Status { dir, json } => rt.block_on(status::run(dir.resolve(), json)),
        Command::Verify { dir, threads } => verify::run(dir.resolve(), threads.map(usize::from)),
        Command::Bench { command } => rt.block_on(bench_cmd::run(command)),
        Command::Policy { command } => rt.block_on(policy_cmd::run(command)),
        Command::Device { command } => rt.block_on(device_cmd::run(command)),
    }
}
