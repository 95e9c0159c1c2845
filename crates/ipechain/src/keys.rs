//! `ipechain keys generate`.

use anyhow::{Context, Result};
use clap::Subcommand;
use network::{DataDir, NetworkConfig, generate, unix_now};
use rand::SeedableRng;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub(crate) enum KeysCommand {
    /// Generate CAs, certificates, keys, the genesis block and one config per node (like Fabric's
    /// cryptogen + configtxgen). Without --config, the default network of `ipechain up`.
    Generate {
        #[command(flatten)]
        dir: crate::DataDirArg,
        /// Network description (TOML); `ipechain keys default-config` prints the default one.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Signing keys of every node and user: ed25519 (the default) or ecdsa-p256 (Fabric's default).
        /// Overrides the description's `key_algorithm`.
        #[arg(long, value_name = "TYPE", value_parser = parse_key_type)]
        key_type: Option<msp::Algorithm>,
    },
    /// Print the default network description, as a starting point for --config.
    DefaultConfig,
}

pub(crate) fn run(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Generate { dir, config, key_type } => {
            let mut net = match config {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    NetworkConfig::from_toml(&text).with_context(|| format!("parsing {}", path.display()))?
                }
                None => NetworkConfig::default_network(),
            };
            if let Some(alg) = key_type {
                net.crypto.key_algorithm = alg;
            }
            let dir = dir.resolve();
            let generated = generate_network(&dir, &net)?;
            println!("generated network in {}", dir.root().display());
            println!("  genesis block  {}", generated.genesis.display());
            for (name, path) in generated.nodes {
                println!("  {name:<28} {}", path.display());
            }
            Ok(())
        }
        KeysCommand::DefaultConfig => {
            print!("{}", NetworkConfig::default_network().to_toml());
            Ok(())
        }
    }
}

fn parse_key_type(s: &str) -> Result<msp::Algorithm, String> {
    match s {
        "ed25519" => Ok(msp::Algorithm::Ed25519),
        "ecdsa-p256" | "p256" => Ok(msp::Algorithm::EcdsaP256),
        other => Err(format!("unknown key type {other:?}: ed25519 or ecdsa-p256")),
    }
}

/// Generates `net` into `dir` with keys from the operating system's RNG.
pub(crate) fn generate_network(dir: &DataDir, net: &NetworkConfig) -> Result<network::Generated> {
    let mut rng = rand::rngs::StdRng::from_entropy();
    Ok(generate(dir, net, unix_now(), &mut rng)?)
}
