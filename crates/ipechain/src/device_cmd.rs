//! `ipechain device`: LwM2M device credentials bound on chain by admin transactions of the IPE contract
//! (signed here as the first peer organization's Admin). The chain holds fingerprints only; the PSK secret
//! goes into the gateway's key file `<data-dir>/lwm2m/lwm2m-keys` (mode 0600), written only after the
//! transaction committed. A PSK is never printed or logged. A bootstrap credential (what the device shows the
//! bootstrap server, which then hands it the server credential) is bound the same way; its PSK goes into
//! `<data-dir>/lwm2m/lwm2m-bootstrap-keys`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ipe::IpeCall;
use ipe::model::ListCredentialsArgs;
use ipe::{SetBootstrap, SetCredentials};
use lwm2m_server::{Credential, CredentialStore, FileCredentialStore, Identity};
use serde_json::Value;

use crate::DataDirArg;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum DeviceCommand {
    /// Bind an endpoint to its DTLS credential: `--psk-identity ID --psk-key HEX`, `--cert FILE` or
    /// `--rpk-public-key FILE`.
    Add {
        #[command(flatten)]
        dir: DataDirArg,
        /// LwM2M endpoint name.
        #[arg(long)]
        endpoint: String,
        /// PSK identity (with `--psk-key`).
        #[arg(long, requires = "psk_key", conflicts_with_all = ["cert", "rpk_public_key"])]
        psk_identity: Option<String>,
        /// PSK key in hex, 1 to 64 bytes (with `--psk-identity`); `-` reads it from standard input (keeps it
        /// out of the process list and shell history); `random` makes a 16-byte key that only the bootstrap
        /// server hands out (needs a bootstrap credential). Kept in the gateway's key file only.
        #[arg(long, requires = "psk_identity", value_name = "HEX")]
        psk_key: Option<String>,
        /// Bootstrap PSK identity (with `--bootstrap-psk-key`): the device bootstraps with it on UDP 5784 and
        /// receives its server credential.
        #[arg(long, requires = "bootstrap_psk_key", conflicts_with_all = ["bootstrap_cert", "bootstrap_rpk_public_key"])]
        bootstrap_psk_identity: Option<String>,
        /// Bootstrap PSK in hex (or `-`: from standard input, read after `--psk-key -`); must differ from the
        /// server PSK.
        #[arg(long, requires = "bootstrap_psk_identity", value_name = "HEX")]
        bootstrap_psk_key: Option<String>,
        /// The device's bootstrap X.509 client certificate (PEM or DER), pinned by fingerprint.
        #[arg(long, value_name = "FILE", conflicts_with = "bootstrap_rpk_public_key")]
        bootstrap_cert: Option<PathBuf>,
        /// The device's bootstrap raw public key (RFC 7250; PEM or DER SubjectPublicKeyInfo), pinned by the
        /// SHA-256 of its DER SubjectPublicKeyInfo.
        #[arg(long, value_name = "FILE")]
        bootstrap_rpk_public_key: Option<PathBuf>,
        /// The device's X.509 client certificate (PEM or DER), pinned by the SHA-256 of its DER.
        #[arg(long, value_name = "FILE", conflicts_with = "rpk_public_key")]
        cert: Option<PathBuf>,
        /// The device's raw public key (RFC 7250): a PEM (`-----BEGIN PUBLIC KEY-----`) or DER
        /// SubjectPublicKeyInfo, EC (P-256 for the LwM2M suites) or Ed25519; pinned by the SHA-256 of its DER
        /// SubjectPublicKeyInfo. Never the private key: that stays on the device.
        #[arg(long, value_name = "FILE")]
        rpk_public_key: Option<PathBuf>,
    },
    /// List the bindings on chain: endpoint, mode, identity, fingerprint.
    List {
        #[command(flatten)]
        dir: DataDirArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove an endpoint's binding (and its PSK from the gateway's key file).
    Remove {
        #[command(flatten)]
        dir: DataDirArg,
        /// LwM2M endpoint name.
        #[arg(long)]
        endpoint: String,
    },
}

/// What `add` binds: the on-chain argument and what goes into the key file.
struct Binding {
    arg: SetCredentials,
    local: Credential,
    identity: Identity,
}

fn psk_binding(endpoint: &str, identity: String, key_hex: &str) -> Result<Binding> {
    let key = read_key(key_hex, "--psk-key", true)?;
    psk_binding_of(endpoint, identity, key)
}

/// A PSK from hex, from standard input (`-`) or, where allowed, `random` (16 bytes from OpenSSL's CSPRNG).
fn read_key(key_hex: &str, flag: &str, random_ok: bool) -> Result<Vec<u8>> {
    if key_hex == "random" && random_ok {
        let mut key = vec![0u8; 16];
        openssl::rand::rand_bytes(&mut key).context("generating a PSK")?;
        return Ok(key);
    }
    let mut from_stdin = String::new();
    let key_hex = if key_hex == "-" {
        std::io::stdin()
            .read_line(&mut from_stdin)
            .with_context(|| format!("reading {flag} from standard input"))?;
        from_stdin.as_str()
    } else {
        key_hex
    };
    let key = hex::decode(key_hex.trim()).map_err(|_| anyhow::anyhow!("{flag} must be hex"))?;
    if key.is_empty() || key.len() > 64 {
        bail!("{flag} must be 1 to 64 bytes, got {}", key.len());
    }
    Ok(key)
}

fn set_credentials(
    endpoint: &str,
    mode: &str,
    identity: Option<String>,
    fingerprint: String,
) -> SetCredentials {
    SetCredentials {
        endpoint: endpoint.to_owned(),
        mode: mode.to_owned(),
        identity,
        fingerprint,
        bootstrap: None,
    }
}

fn psk_binding_of(endpoint: &str, identity: String, key: Vec<u8>) -> Result<Binding> {
    let fingerprint = hex::encode(openssl::sha::sha256(&key));
    Ok(Binding {
        arg: set_credentials(endpoint, "psk", Some(identity.clone()), fingerprint),
        identity: Identity::Psk(identity.clone()),
        local: Credential::Psk { identity, key },
    })
}

fn cert_binding(endpoint: &str, file: &std::path::Path) -> Result<Binding> {
    let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let cert = if raw.starts_with(b"-----BEGIN") {
        openssl::x509::X509::from_pem(&raw)
    } else {
        openssl::x509::X509::from_der(&raw)
    }
    .with_context(|| format!("{} is not an X.509 certificate (PEM or DER)", file.display()))?;
    let sha256 = openssl::sha::sha256(&cert.to_der().context("encoding the certificate")?);
    Ok(Binding {
        arg: set_credentials(endpoint, "x509", None, hex::encode(sha256)),
        identity: Identity::X509 { sha256 },
        local: Credential::X509 { sha256 },
    })
}

/// The SHA-256 of a public key's DER SubjectPublicKeyInfo, from a PEM or DER SubjectPublicKeyInfo file.
fn rpk_fingerprint(file: &std::path::Path) -> Result<[u8; 32]> {
    let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    if raw.windows(11).any(|w| w == b"PRIVATE KEY") {
        bail!(
            "{} holds a private key: give the public key only (`openssl pkey -in KEY -pubout`); the private \
             key stays on the device",
            file.display()
        );
    }
    let key = if raw.starts_with(b"-----BEGIN") {
        openssl::pkey::PKey::public_key_from_pem(&raw)
    } else {
        openssl::pkey::PKey::public_key_from_der(&raw)
    }
    .map_err(|_| {
        anyhow::anyhow!(
            "{} is not a public key (a PEM `-----BEGIN PUBLIC KEY-----` or DER SubjectPublicKeyInfo)",
            file.display()
        )
    })?;
    if !matches!(key.id(), openssl::pkey::Id::EC | openssl::pkey::Id::ED25519) {
        bail!(
            "{}: a {:?} key cannot authenticate with the LwM2M DTLS suites (ECDHE-ECDSA): give an EC (P-256) key",
            file.display(),
            key.id()
        );
    }
    lwm2m_server::rpk::spki_sha256(&key).context("encoding the public key")
}

fn rpk_binding(endpoint: &str, file: &std::path::Path) -> Result<Binding> {
    let sha256 = rpk_fingerprint(file)?;
    Ok(Binding {
        arg: set_credentials(endpoint, "rpk", None, hex::encode(sha256)),
        identity: Identity::Rpk { sha256 },
        local: Credential::Rpk { sha256 },
    })
}

fn key_store(dir: &network::DataDir) -> Result<FileCredentialStore> {
    Ok(FileCredentialStore::open(&dir.root().join("lwm2m"))?)
}

fn bootstrap_key_store(dir: &network::DataDir) -> Result<FileCredentialStore> {
    Ok(FileCredentialStore::open_bootstrap(&dir.root().join("lwm2m"))?)
}

async fn submit(dir: &network::DataDir, call: &IpeCall) -> Result<(Value, u64)> {
    let committed = crate::gateway::submit_as_admin(dir, call).await?;
    Ok((serde_json::from_slice(&committed.payload)?, committed.block))
}

pub(crate) async fn run(cmd: DeviceCommand) -> Result<()> {
    match cmd {
        DeviceCommand::Add {
            dir,
            endpoint,
            psk_identity,
            psk_key,
            cert,
            rpk_public_key,
            bootstrap_psk_identity,
            bootstrap_psk_key,
            bootstrap_cert,
            bootstrap_rpk_public_key,
        } => {
            let bootstraps = bootstrap_psk_identity.is_some()
                || bootstrap_cert.is_some()
                || bootstrap_rpk_public_key.is_some();
            if psk_key.as_deref() == Some("random") && !bootstraps {
                bail!(
                    "--psk-key random needs a bootstrap credential (--bootstrap-psk-identity/--bootstrap-psk-key, \
                     --bootstrap-cert or --bootstrap-rpk-public-key): only the bootstrap server can hand the \
                     device a key nobody typed"
                );
            }
            let mut b = match (psk_identity, psk_key, cert, rpk_public_key) {
                (Some(id), Some(key), None, None) => psk_binding(&endpoint, id, &key)?,
                (None, None, Some(file), None) => cert_binding(&endpoint, &file)?,
                (None, None, None, Some(file)) => rpk_binding(&endpoint, &file)?,
                _ => {
                    bail!("give one of --psk-identity ID --psk-key HEX, --cert FILE or --rpk-public-key FILE")
                }
            };
            let bs = match (
                bootstrap_psk_identity,
                bootstrap_psk_key,
                bootstrap_cert,
                bootstrap_rpk_public_key,
            ) {
                (Some(id), Some(key), None, None) => {
                    Some(psk_binding_of(&endpoint, id, read_key(&key, "--bootstrap-psk-key", false)?)?)
                }
                (None, None, Some(file), None) => Some(cert_binding(&endpoint, &file)?),
                (None, None, None, Some(file)) => Some(rpk_binding(&endpoint, &file)?),
                (None, None, None, None) => None,
                _ => bail!(
                    "give one of --bootstrap-psk-identity ID --bootstrap-psk-key HEX, --bootstrap-cert FILE or \
                     --bootstrap-rpk-public-key FILE"
                ),
            };
            if let Some(bs) = &bs {
                let SetCredentials { mode, identity, fingerprint, .. } = bs.arg.clone();
                b.arg.bootstrap = Some(SetBootstrap { mode, identity, fingerprint });
            }
            let dir = dir.resolve();
            // The key files must accept them too; check before the chain changes.
            let keys = key_store(&dir)?;
            if let Some(other) = keys.endpoint_of(&b.identity).filter(|e| *e != endpoint) {
                bail!("{} is already bound to endpoint {other} in {}", b.identity, keys.path().display());
            }
            let bs_keys = bootstrap_key_store(&dir)?;
            if let Some(bs) = &bs
                && let Some(other) = bs_keys.endpoint_of(&bs.identity).filter(|e| *e != endpoint)
            {
                bail!("{} is already bound to endpoint {other} in {}", bs.identity, bs_keys.path().display());
            }
            let (rec, block) = submit(&dir, &IpeCall::SetDeviceCredentials(b.arg)).await?;
            keys.set(&endpoint, b.local).with_context(|| {
                format!("committed on chain in block {block}, but the key file was not written")
            })?;
            match bs {
                Some(bs) => bs_keys.set(&endpoint, bs.local).with_context(|| {
                    format!("committed on chain in block {block}, but the bootstrap key file was not written")
                })?,
                None => {
                    bs_keys.remove(&endpoint)?;
                }
            }
            println!("{}", serde_json::to_string_pretty(&rec)?);
            eprintln!("committed in block {block}; credential in {}", keys.path().display());
        }
        DeviceCommand::List { dir, json } => {
            let c = crate::gateway::client(&dir.resolve(), 0, "User1")?;
            let mut all: Vec<Value> = Vec::new();
            loop {
                let list = IpeCall::ListDeviceCredentials(ListCredentialsArgs {
                    after: all.last().and_then(|last| last["endpoint"].as_str()).map(str::to_owned),
                    limit: Some(1000),
                });
                let b = c.gateway.contract(ipe::NAME).evaluate(list.function(), &list.args()?).await?;
                let page: Vec<Value> = serde_json::from_slice(&b)?;
                let n = page.len();
                all.extend(page);
                if n < 1000 {
                    break;
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!(
                    "{:<32} {:<5} {:<32} {:<64} BOOTSTRAP",
                    "ENDPOINT", "MODE", "IDENTITY", "FINGERPRINT (SHA-256)"
                );
                for r in &all {
                    let s = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
                    let bs = match r.get("bootstrap") {
                        Some(b) => format!(
                            "{} {}",
                            b["mode"].as_str().unwrap_or("-"),
                            b["identity"].as_str().or(b["fingerprint"].as_str()).unwrap_or("-")
                        ),
                        None => "-".to_owned(),
                    };
                    println!(
                        "{:<32} {:<5} {:<32} {:<64} {bs}",
                        s("endpoint"),
                        s("mode"),
                        s("identity"),
                        s("fingerprint")
                    );
                }
            }
        }
        DeviceCommand::Remove { dir, endpoint } => {
            let dir = dir.resolve();
            let keys = key_store(&dir)?;
            let (rec, block) =
                submit(&dir, &IpeCall::RemoveDeviceCredentials { endpoint: endpoint.clone() }).await?;
            let removed = keys.remove(&endpoint).with_context(|| {
                format!("removed on chain in block {block}, but the key file was not updated")
            })?;
            bootstrap_key_store(&dir)?.remove(&endpoint).with_context(|| {
                format!("removed on chain in block {block}, but the bootstrap key file was not updated")
            })?;
            println!("{}", serde_json::to_string_pretty(&rec)?);
            eprintln!(
                "committed in block {block}{}",
                if removed {
                    format!("; credential removed from {}", keys.path().display())
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}

/// How often the running gateway re-reads the chain's bindings and the key file.
pub(crate) const REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// The chain's bindings, as the LwM2M server's credential store takes them.
async fn bindings(c: &crate::gateway::Client) -> Result<Vec<lwm2m_server::Binding>> {
    let contract = c.ipe();
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let list =
            IpeCall::ListDeviceCredentials(ListCredentialsArgs { after: after.take(), limit: Some(1000) });
        let b = contract.evaluate(list.function(), &list.args()?).await?;
        let page: Vec<ipe::DeviceCredentials> = serde_json::from_slice(&b)?;
        let n = page.len();
        after = page.last().map(|r| r.endpoint.clone());
        for r in page {
            let mut fp = [0u8; 32];
            hex::decode_to_slice(&r.fingerprint, &mut fp)
                .with_context(|| format!("the binding of {} has a bad fingerprint", r.endpoint))?;
            if let Some(b) = &r.bootstrap {
                let mut bfp = [0u8; 32];
                hex::decode_to_slice(&b.fingerprint, &mut bfp).with_context(|| {
                    format!("the bootstrap binding of {} has a bad fingerprint", r.endpoint)
                })?;
                out.push(match b.mode {
                    ipe::SecurityMode::Psk => lwm2m_server::Binding::BootstrapPsk {
                        endpoint: r.endpoint.clone(),
                        identity: b.identity.clone().unwrap_or_default(),
                        key_sha256: bfp,
                    },
                    ipe::SecurityMode::X509 => {
                        lwm2m_server::Binding::BootstrapX509 { endpoint: r.endpoint.clone(), sha256: bfp }
                    }
                    ipe::SecurityMode::Rpk => {
                        lwm2m_server::Binding::BootstrapRpk { endpoint: r.endpoint.clone(), sha256: bfp }
                    }
                });
            }
            out.push(match r.mode {
                ipe::SecurityMode::Psk => lwm2m_server::Binding::Psk {
                    endpoint: r.endpoint,
                    identity: r.identity.unwrap_or_default(),
                    key_sha256: fp,
                },
                ipe::SecurityMode::X509 => lwm2m_server::Binding::X509 { endpoint: r.endpoint, sha256: fp },
                ipe::SecurityMode::Rpk => lwm2m_server::Binding::Rpk { endpoint: r.endpoint, sha256: fp },
            });
        }
        if n < 1000 {
            return Ok(out);
        }
    }
}

/// Keeps `store` in step with the chain's bindings and the key file (every [`REFRESH`]) until `stop`.
/// Problems (a bound PSK without its key here, or with another key) are logged when they change.
pub(crate) async fn refresh_loop(
    connect: impl Fn() -> Result<crate::gateway::Client>,
    store: std::sync::Arc<lwm2m_server::BoundCredentialStore>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut client = None;
    let mut last = lwm2m_server::RefreshReport::default();
    let mut last_err = String::new();
    loop {
        let result = async {
            if client.is_none() {
                client = Some(connect()?);
            }
            let c = client.as_ref().context("no ledger client")?;
            bindings(c).await
        }
        .await;
        match result.map(|b| store.refresh(&b)) {
            Ok(Err(e)) => {
                // The key file is unreadable or malformed: the last good state stays in force.
                let e = e.to_string();
                if e != last_err {
                    tracing::warn!("device credentials not refreshed: {e}");
                    last_err = e;
                }
            }
            Ok(Ok(report)) => {
                if report != last {
                    if !report.missing_key.is_empty() || !report.wrong_key.is_empty() {
                        tracing::warn!(
                            missing_key = ?report.missing_key,
                            wrong_key = ?report.wrong_key,
                            "device credentials bound on chain that this gateway's key file cannot serve"
                        );
                    }
                    if !report.missing_bootstrap_key.is_empty() || !report.wrong_bootstrap_key.is_empty() {
                        tracing::warn!(
                            missing_key = ?report.missing_bootstrap_key,
                            wrong_key = ?report.wrong_bootstrap_key,
                            "bootstrap credentials bound on chain that this gateway's bootstrap key file cannot serve"
                        );
                    }
                    tracing::info!(bound = report.bound, "device credentials refreshed from the chain");
                    last = report;
                }
                last_err.clear();
            }
            Err(e) => {
                let e = format!("{e:#}");
                if e != last_err {
                    tracing::debug!("device credentials not refreshed: {e}");
                    last_err = e;
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(REFRESH) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn rpk_fingerprint_takes_pem_or_der_public_keys_only() {
        let dir = tempfile::tempdir().unwrap();
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        let der = key.public_key_to_der().unwrap();
        let want = openssl::sha::sha256(&der);
        let pem = write(dir.path(), "k.pub.pem", &key.public_key_to_pem().unwrap());
        let der_file = write(dir.path(), "k.pub.der", &der);
        assert_eq!(rpk_fingerprint(&pem).unwrap(), want);
        assert_eq!(rpk_fingerprint(&der_file).unwrap(), want);
        let ed = openssl::pkey::PKey::generate_ed25519().unwrap();
        let ed_file = write(dir.path(), "ed.pub.pem", &ed.public_key_to_pem().unwrap());
        assert_eq!(
            rpk_fingerprint(&ed_file).unwrap(),
            openssl::sha::sha256(&ed.public_key_to_der().unwrap())
        );

        let private = write(dir.path(), "k.key", &key.private_key_to_pem_pkcs8().unwrap());
        assert!(format!("{:#}", rpk_fingerprint(&private).unwrap_err()).contains("holds a private key"));
        let rsa = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let rsa_file = write(dir.path(), "rsa.pub.pem", &rsa.public_key_to_pem().unwrap());
        assert!(format!("{:#}", rpk_fingerprint(&rsa_file).unwrap_err()).contains("give an EC (P-256) key"));
        let junk = write(dir.path(), "junk", b"-----BEGIN PUBLIC KEY-----\nnot base64\n");
        assert!(format!("{:#}", rpk_fingerprint(&junk).unwrap_err()).contains("is not a public key"));
        assert!(rpk_fingerprint(&dir.path().join("missing")).is_err());
    }
}
