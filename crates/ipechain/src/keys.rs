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
            match write_gateway_config(&dir, &net)? {
                Some(path) => println!("  {:<28} {}", "gateway (ipechain gateway)", path.display()),
                None => {
                    println!("  (no gateway.toml: the gateway needs a `Gateway` user in a peer organization)")
                }
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

/// The file `ipechain keys generate` writes for `ipechain gateway --config`.
pub(crate) const GATEWAY_CONFIG: &str = "gateway.toml";

/// Writes `<dir>/gateway.toml`: `ipechain gateway`'s configuration for this network, its `[ledger]` naming
/// the first peer of the second organization for the LwM2M side and of the first for the oneM2M side (as
/// `ipechain up` connects them), each with its organization's `Gateway` user, by paths relative to the
/// file. With a `[gateway] host` in network.toml the CSE listens on that host (every interface for a host
/// name), else on 127.0.0.1. `None` when no peer organization has a `Gateway` user.
pub(crate) fn write_gateway_config(dir: &DataDir, net: &NetworkConfig) -> Result<Option<PathBuf>> {
    use crate::config::{LedgerLink, LedgerSection, UpConfig};
    let orgs = &net.crypto.peer_orgs;
    let link = |org: &msp::cryptogen::OrgSpec| -> Result<Option<LedgerLink>> {
        if !org.users.expand("User", 1).iter().any(|u| u == "Gateway") {
            return Ok(None);
        }
        let Some(peer) = net.peers.iter().find(|p| p.msp_id == org.msp_id) else { return Ok(None) };
        let user = PathBuf::from("crypto/peerOrganizations")
            .join(&org.domain)
            .join("users")
            .join(format!("Gateway@{}", org.domain));
        let signcerts = dir.root().join(&user).join("msp/signcerts");
        let cert = std::fs::read_dir(&signcerts)
            .with_context(|| format!("reading {}", signcerts.display()))?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .next()
            .with_context(|| format!("no certificate in {}", signcerts.display()))?;
        Ok(Some(LedgerLink {
            peer: peer.endpoint(),
            tls_ca: user.join("tls/ca.crt"),
            tls_server_name: None,
            tls_cert: Some(user.join("tls/client.crt")),
            tls_key: Some(user.join("tls/client.key")),
            msp_id: org.msp_id.clone(),
            cert: user.join("msp/signcerts").join(cert),
            key: user.join("msp/keystore/priv_sk"),
        }))
    };
    let onem2m = match orgs.first() {
        Some(o) => link(o)?,
        None => None,
    };
    let lwm2m = match orgs.get(1).or(orgs.first()) {
        Some(o) => link(o)?,
        None => None,
    };
    let (Some(lwm2m), Some(onem2m)) = (lwm2m, onem2m) else { return Ok(None) };
    let mut cfg = UpConfig {
        ledger: Some(LedgerSection {
            channel: net.channel.clone(),
            chaincode: ipe::NAME.to_owned(),
            lwm2m,
            onem2m,
        }),
        ..UpConfig::default()
    };
    if let Some(g) = &net.gateway {
        let ip = g.host.parse().unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        cfg.cse.addr = std::net::SocketAddr::new(ip, cfg.cse.addr.port());
        cfg.lwm2m.advertised_host = Some(g.host.clone());
    }
    let path = dir.root().join(GATEWAY_CONFIG);
    let text = format!(
        "# `ipechain gateway --config {GATEWAY_CONFIG} --data-dir <state dir>` on the gateway's host: the CSE, the \
         LwM2M server\n# and the bridge against this network's peers. Paths are relative to this file \
         (copy the crypto/ files it names\n# along). docs/config.md has every key; docs/deploy.md the walk-through.\n{}",
        cfg.to_toml()?
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(path))
}
