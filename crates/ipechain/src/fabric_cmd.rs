//! `ipechain fabric profile`: what Fabric tools need to connect to the local network: a Fabric common
//! connection profile (the JSON `connection-org1.json` of Fabric's test network: the organization, its peers
//! with their TLS CA and host-name override, the orderers) and, for Hyperledger Caliper, a network
//! configuration (v2) that names the profile and a user's key and certificate.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use network::{DataDir, NetworkConfig};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub(crate) enum FabricCommand {
    /// Print a Fabric connection profile (JSON) for one organization of the local network; with
    /// `--caliper FILE`, also write a Caliper network configuration that uses it.
    Profile {
        #[command(flatten)]
        dir: crate::DataDirArg,
        /// The organization: its name (`Org1`) or MSP id (`Org1MSP`).
        #[arg(long)]
        org: String,
        /// Write the profile to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Also write a Caliper network configuration (JSON, which Caliper reads as YAML) for channel and
        /// contracts of the network, with `--user`'s identity; it names the profile by `--out`'s path.
        #[arg(long, value_name = "FILE", requires = "out")]
        caliper: Option<PathBuf>,
        /// The organization's user whose key and certificate Caliper signs with.
        #[arg(long, default_value = "User1")]
        user: String,
    },
}

pub(crate) fn run(cmd: FabricCommand) -> Result<()> {
    match cmd {
        FabricCommand::Profile { dir, org, out, caliper, user } => {
            let dir = dir.resolve();
            let net = load_network(&dir)?;
            let profile = connection_profile(&dir, &net, &org)?;
            let text = serde_json::to_string_pretty(&profile)?;
            match &out {
                Some(path) => {
                    std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?
                }
                None => println!("{text}"),
            }
            if let (Some(caliper), Some(out)) = (caliper, out) {
                let config = caliper_network(&dir, &net, &org, &user, &absolute(&out)?)?;
                std::fs::write(&caliper, serde_json::to_string_pretty(&config)?)
                    .with_context(|| format!("writing {}", caliper.display()))?;
            }
            Ok(())
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) })
}

fn load_network(dir: &DataDir) -> Result<NetworkConfig> {
    let path = dir.network_file();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (generate the network first: `ipechain keys generate` or `ipechain up`)",
            path.display()
        )
    })?;
    NetworkConfig::from_toml(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The organization named `org` (name or MSP id) among the network's peer organizations.
fn find_org<'a>(net: &'a NetworkConfig, org: &str) -> Result<&'a msp::cryptogen::OrgSpec> {
    match net.crypto.peer_orgs.iter().find(|o| o.name == org || o.msp_id == org) {
        Some(o) => Ok(o),
        None => bail!(
            "no peer organization {org:?} in this network (it has {})",
            net.crypto.peer_orgs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The first PEM file in a directory.
fn first_pem(dir: &Path) -> Result<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .collect();
    files.sort();
    files.into_iter().next().with_context(|| format!("no PEM file in {}", dir.display()))
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Fabric's common connection profile for `org`: its peers (`grpcs://host:port`, the org's TLS CA,
/// `ssl-target-name-override` = the peer's name, which its TLS certificate carries) and the orderers.
fn connection_profile(dir: &DataDir, net: &NetworkConfig, org: &str) -> Result<Value> {
    let spec = find_org(net, org)?;
    let crypto = dir.crypto_dir();
    let org_dir = crypto.join("peerOrganizations").join(&spec.domain);
    let tls_ca = read_text(&first_pem(&org_dir.join("tlsca"))?)?;
    let mut peers = serde_json::Map::new();
    let mut names = Vec::new();
    for p in net.peers.iter().filter(|p| p.msp_id == spec.msp_id) {
        let name = format!("{}.{}", p.name, spec.domain);
        peers.insert(
            name.clone(),
            json!({
                "url": format!("grpcs://{}", p.endpoint()),
                "tlsCACerts": {"pem": tls_ca},
                "grpcOptions": {"ssl-target-name-override": name, "hostnameOverride": name},
            }),
        );
        names.push(name);
    }
    if names.is_empty() {
        bail!("organization {} has no peer in this network", spec.name);
    }
    let mut orderers = serde_json::Map::new();
    for (o, ospec) in net
        .orderers
        .iter()
        .filter_map(|o| net.crypto.orderer_orgs.iter().find(|s| s.msp_id == o.msp_id).map(|s| (o, s)))
    {
        let name = format!("{}.{}", o.name, ospec.domain);
        let ca =
            read_text(&first_pem(&crypto.join("ordererOrganizations").join(&ospec.domain).join("tlsca"))?)?;
        orderers.insert(
            name.clone(),
            json!({
                "url": format!("grpcs://{}", o.endpoint()),
                "tlsCACerts": {"pem": ca},
                "grpcOptions": {"ssl-target-name-override": name, "hostnameOverride": name},
            }),
        );
    }
    Ok(json!({
        "name": format!("ipechain-{}", spec.name.to_lowercase()),
        "version": "1.0.0",
        "client": {
            "organization": spec.name,
            "connection": {"timeout": {"peer": {"endorser": "300"}}},
        },
        "organizations": {
            spec.name.clone(): {"mspid": spec.msp_id, "peers": names},
        },
        "channels": {
            net.channel.clone(): {"orderers": orderers.keys().cloned().collect::<Vec<_>>(), "peers": names.iter().map(|n| (n.clone(), json!({}))).collect::<serde_json::Map<_, _>>()},
        },
        "peers": peers,
        "orderers": orderers,
    }))
}

/// A Caliper network configuration (v2, Fabric connector) for `org`'s `user`, using the profile at
/// `profile` (static: service discovery is not offered).
fn caliper_network(
    dir: &DataDir,
    net: &NetworkConfig,
    org: &str,
    user: &str,
    profile: &Path,
) -> Result<Value> {
    let spec = find_org(net, org)?;
    // Absolute paths: Caliper resolves relative ones against its workspace, not against this directory.
    let user_dir = absolute(&dir.crypto_dir())?
        .join("peerOrganizations")
        .join(&spec.domain)
        .join("users")
        .join(format!("{user}@{}", spec.domain));
    let cert = first_pem(&user_dir.join("msp/signcerts"))?;
    let key = user_dir.join("msp/keystore/priv_sk");
    if !key.is_file() {
        bail!("no private key at {}", key.display());
    }
    Ok(json!({
        "name": "ipechain",
        "version": "2.0.0",
        "caliper": {"blockchain": "fabric"},
        "channels": [{
            "channelName": net.channel,
            "contracts": net.contracts.iter().map(|c| json!({"id": c.name})).collect::<Vec<_>>(),
        }],
        "organizations": [{
            "mspid": spec.msp_id,
            "identities": {"certificates": [{
                "name": user,
                "clientPrivateKey": {"path": key},
                "clientSignedCert": {"path": cert},
            }]},
            "connectionProfile": {"path": profile, "discover": false},
        }],
    }))
}
