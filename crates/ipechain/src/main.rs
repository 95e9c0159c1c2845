//! `ipechain`: the command-line shell. It parses raw arguments into a validated configuration and calls
//! library crates; it holds no protocol or ledger logic of its own (STYLE habit 9).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI prints

mod bench_cmd;
mod bench_iw;
mod cli_docs;
mod config;
mod contract_cmd;
mod demo;
mod device_cmd;
mod embedded_cse;
mod fabric_cmd;
mod gateway;
mod keys;
mod logging;
mod node;
mod operations;
mod policy_cmd;
mod status;
mod verify;

use anyhow::{Context, Result};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "ipechain", version, about = "oneM2M ⇄ LwM2M interworking through a permissioned ledger")]
struct Cli {
    /// Log lines as human-readable text or as one JSON object per line (on stderr). For `up`, overrides
    /// `[log] format` of --config. [default: text]
    #[arg(long, global = true, value_enum, value_name = "FORMAT", env = "IPECHAIN_LOG_FORMAT")]
    log_format: Option<logging::LogFormat>,
    /// Log level of ipechain's own crates (chatty dependencies stay quieter). `IPECHAIN_LOG` (a tracing
    /// `EnvFilter` directive string such as `info,bridge=debug`), else `RUST_LOG`, takes precedence; for
    /// `up`, this overrides `[log] level` of --config. [default: info]
    #[arg(long, global = true, value_enum, value_name = "LEVEL")]
    log_level: Option<logging::LogLevel>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone, Default)]
struct DataDirArg {
    /// Data directory of the local network (default: $IPECHAIN_DATA_DIR, else $XDG_DATA_HOME/ipechain, else
    /// ~/.local/share/ipechain).
    #[arg(long, value_name = "DIR", env = "IPECHAIN_DATA_DIR")]
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
enum ChaincodeCommand {
    /// The IPE (interworking proxy) contract.
    Ipe {
        /// Where to listen, e.g. 0.0.0.0:9999.
        #[arg(long, value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// The chaincode id it registers with (Fabric's package id, `label:hash`).
        #[arg(long, default_value = "ipe:1")]
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole default network (3 orderers, 2 peers, channel `iot`) in this process.
    ///
    /// Besides the ledger nodes: the embedded oneM2M CSE (or a remote one), the LwM2M server and bootstrap
    /// server, and the bridge gateway. Settings come from flags, then `IPECHAIN_*` variables, then `--config
    /// FILE` (TOML), then defaults (docs/config.md); `--print-config` shows the result.
    Up {
        #[command(flatten)]
        args: Box<config::UpArgs>,
    },
    /// Run the bridge gateway on its own: the CSE (embedded, or `--remote-cse`), the LwM2M server and the
    /// bridge, against the ledger `[ledger]` in `--config FILE` names (any Fabric gateway peer: address,
    /// TLS CA, MSP id, certificate, key, channel, chaincode; docs/config.md). No ledger node runs here.
    Gateway {
        #[command(flatten)]
        args: Box<config::UpArgs>,
    },
    /// Serve a contract as a Fabric chaincode server (chaincode as a service): peers dial it and drive it
    /// over Fabric's chaincode protocol (`[chaincodes.<name>] address` in an ipechain peer's node config, a
    /// ccaas `connection.json` on a Fabric peer).
    Chaincode {
        #[command(subcommand)]
        command: ChaincodeCommand,
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
    /// The contract lifecycle on chain: approve, readiness, commit, list, deploy (Fabric's `_lifecycle`).
    Contract {
        #[command(subcommand)]
        command: contract_cmd::ContractCommand,
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
    /// What Fabric tools need to connect: a connection profile, a Caliper network configuration.
    Fabric {
        #[command(subcommand)]
        command: fabric_cmd::FabricCommand,
    },
    /// Benchmarks against the running local network.
    Bench {
        #[command(subcommand)]
        command: bench_cmd::BenchCommand,
    },
    /// Print a shell completion script for ipechain (docs/packaging.md says where to put it).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages for ipechain and every subcommand (ipechain.1, ipechain-up.1, ...) into a directory.
    Man {
        /// Where to write them (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Installs logging: `IPECHAIN_LOG`, else `RUST_LOG`, else the level (`level`, with where it came from).
fn init_logging(format: logging::LogFormat, level: Option<(logging::LogLevel, &'static str)>) -> Result<()> {
    let var = |name: &str| std::env::var(name).ok();
    let filter = logging::directives(var("IPECHAIN_LOG").as_deref(), var("RUST_LOG").as_deref(), level);
    logging::init(format, &filter)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // `up` reads its configuration first: its `[log]` section counts (below the flags).
    let up_config = match &cli.command {
        Command::Up { args } | Command::Gateway { args } => {
            let cfg = config::UpConfig::resolve(args, cli.log_level, cli.log_format)?;
            match (&cli.command, &cfg.ledger) {
                (Command::Up { .. }, Some(_)) => anyhow::bail!(
                    "the configuration has a `[ledger]` section (a ledger elsewhere): run `ipechain gateway` \
                     with it, or drop the section to run the local network"
                ),
                (Command::Gateway { .. }, None) => anyhow::bail!(
                    "`ipechain gateway` needs the ledger it connects to: a `[ledger]` section in --config FILE \
                     (docs/config.md); `ipechain up` runs a local one"
                ),
                _ => {}
            }
            if args.print_config {
                print!("{}", cfg.to_toml()?);
                return Ok(());
            }
            let from = if cli.log_level.is_some() { "--log-level" } else { "[log] level" };
            init_logging(cfg.log.format, Some((cfg.log.level, from)))?;
            Some(cfg)
        }
        _ => {
            init_logging(cli.log_format.unwrap_or_default(), cli.log_level.map(|l| (l, "--log-level")))?;
            None
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Up { .. } | Command::Gateway { .. } => {
            let cfg = up_config.context("the configuration of `up`")?;
            rt.block_on(node::up(cfg))
        }
        Command::Completions { shell } => cli_docs::completions(shell, &mut std::io::stdout().lock()),
        Command::Man { dir } => cli_docs::man_pages(&dir).map(|written| {
            for p in written {
                println!("{}", p.display());
            }
        }),
        Command::Node { config } => rt.block_on(node::run_one(&config)),
        Command::Chaincode { command: ChaincodeCommand::Ipe { listen, id } } => {
            rt.block_on(node::serve_chaincode(listen, &id))
        }
        Command::Keys { command } => keys::run(command),
        Command::Status { dir, json } => rt.block_on(status::run(dir.resolve(), json)),
        Command::Verify { dir, threads } => verify::run(dir.resolve(), threads.map(usize::from)),
        Command::Bench { command } => rt.block_on(bench_cmd::run(command)),
        Command::Fabric { command } => fabric_cmd::run(command),
        Command::Contract { command } => rt.block_on(contract_cmd::run(command)),
        Command::Policy { command } => rt.block_on(policy_cmd::run(command)),
        Command::Device { command } => rt.block_on(device_cmd::run(command)),
    }
}
