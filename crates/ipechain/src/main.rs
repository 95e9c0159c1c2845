//! `ipechain`: the command-line shell. It parses raw arguments into a validated configuration and calls
//! library crates; it holds no logic of its own (STYLE habit 9).

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "ipechain", version, about = "oneM2M ⇄ LwM2M interworking through a permissioned ledger")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole default network on this machine.
    Up,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Up => anyhow::bail!("`ipechain up` is not built yet (see issue 2)"),
    }
}
