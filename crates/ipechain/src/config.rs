//! The configuration of `ipechain up`: one [`UpConfig`] read from `--config FILE` (TOML), with every command
//! line flag (or its `IPECHAIN_*` environment variable) overriding the file, and the file overriding the
//! defaults. docs/config.md documents every key with its flag and variable; `--print-config` prints the
//! effective configuration in the same format.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::logging::{LogFormat, LogLevel};

/// Everything `ipechain up` can be told. Every field has a default, so a file names only what it changes.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct UpConfig {
    /// The data directory (`--data-dir`); absent: `$IPECHAIN_DATA_DIR`, else the per-user data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Simulated devices and an application (`--demo`).
    pub(crate) demo: bool,
    /// Run the IPE as an external chaincode (chaincode as a service over Fabric's shim protocol, served by
    /// this process on a loopback port) instead of built into the peers (`--ipe-external`).
    pub(crate) ipe_external: bool,
    pub(crate) log: LogSection,
    pub(crate) cse: CseSection,
    pub(crate) lwm2m: Lwm2mSection,
    pub(crate) gateway: GatewaySection,
    pub(crate) ops: OpsSection,
    /// `[ledger]`: the Fabric gateway peers the bridge uses (`ipechain gateway`); absent: the local network
    /// of the data directory, which `ipechain up` runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ledger: Option<LedgerSection>,
}

/// `[ledger]`: where the bridge gateway reaches the ledger when it runs on its own (`ipechain gateway`):
/// any Fabric Gateway endpoint (an ipechain peer, or a Fabric 2.4+ peer), the channel and the IPE
/// chaincode's name, and one connection and identity for each side.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct LedgerSection {
    /// The channel.
    pub(crate) channel: String,
    /// The IPE chaincode's name on that channel.
    #[serde(default = "ipe_name")]
    pub(crate) chaincode: String,
    /// The LwM2M side (it registers and serves the devices; devices are addressed by its MSP id and
    /// certificate CN).
    pub(crate) lwm2m: LedgerLink,
    /// The oneM2M side (it submits the applications' requests and answers).
    pub(crate) onem2m: LedgerLink,
}

fn ipe_name() -> String {
    ipe::NAME.to_owned()
}

/// `[ledger.lwm2m]`, `[ledger.onem2m]`: one side's gateway peer and signing identity, as a Fabric
/// application's connection details (the files of a cryptogen user folder: `msp/signcerts/*.pem`,
/// `msp/keystore/priv_sk`, `tls/ca.crt`, `tls/client.{crt,key}`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct LedgerLink {
    /// `host:port` of the peer's gateway service.
    pub(crate) peer: String,
    /// PEM file of the CA(s) that sign the peer's TLS certificate.
    pub(crate) tls_ca: PathBuf,
    /// The name the peer's TLS certificate must carry; default: the host of `peer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tls_server_name: Option<String>,
    /// Client TLS certificate and key (PEM), for a peer that asks for one (ipechain's peers do by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tls_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tls_key: Option<PathBuf>,
    /// The organization's MSP id.
    pub(crate) msp_id: String,
    /// The signing identity's certificate (PEM).
    pub(crate) cert: PathBuf,
    /// Its private key (PEM: PKCS#8 or SEC1).
    pub(crate) key: PathBuf,
}

/// `[log]`: the default level and the format (`IPECHAIN_LOG` and `RUST_LOG` override the level).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LogSection {
    pub(crate) level: LogLevel,
    pub(crate) format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection { level: LogLevel::Info, format: LogFormat::Text }
    }
}

/// `[cse]`: the embedded oneM2M CSE, or the remote one the gateway joins.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct CseSection {
    /// Mca over HTTP.
    pub(crate) addr: SocketAddr,
    /// Mca over HTTPS (peer0.org1's TLS certificate).
    pub(crate) https_addr: SocketAddr,
    /// CSE-ID, without the leading `/`.
    pub(crate) id: String,
    /// The CSEBase resource name.
    pub(crate) base_name: String,
    /// The admin originator, allowed everything.
    pub(crate) admin: String,
    /// The M2M service provider id of absolute addresses (`//SP-ID/CSE-ID/...`).
    pub(crate) sp_id: String,
    /// Join this CSE (the URL of its CSEBase) instead of serving the embedded one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) remote: Option<String>,
    /// PEM files of CAs trusted for `https://` Mca peers, on top of the network's TLS CAs.
    pub(crate) mca_ca: Vec<PathBuf>,
}

impl Default for CseSection {
    fn default() -> Self {
        let cse = cse::CseConfig::default();
        CseSection {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            https_addr: SocketAddr::from(([127, 0, 0, 1], 8443)),
            id: cse.cse_id,
            base_name: cse.rn,
            admin: cse.admin,
            sp_id: cse.sp_id,
            remote: None,
            mca_ca: Vec::new(),
        }
    }
}

/// `[lwm2m]`: the LwM2M server and bootstrap server.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Lwm2mSection {
    /// CoAP over UDP.
    pub(crate) addr: SocketAddr,
    /// CoAP over DTLS 1.2.
    pub(crate) dtls_addr: SocketAddr,
    /// NoSec registrations accepted (`--lwm2m-nosec on|off`).
    pub(crate) nosec: bool,
    /// The bootstrap server over NoSec CoAP.
    pub(crate) bootstrap_addr: SocketAddr,
    /// The bootstrap server over DTLS.
    pub(crate) bootstrap_dtls_addr: SocketAddr,
    /// The host written into the server URIs the bootstrap server hands out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) advertised_host: Option<String>,
    /// The admin REST API.
    pub(crate) admin_addr: SocketAddr,
    /// OMA object definition files or directories, on top of the built-in objects.
    pub(crate) objects: Vec<PathBuf>,
}

impl Default for Lwm2mSection {
    fn default() -> Self {
        Lwm2mSection {
            addr: SocketAddr::from(([0, 0, 0, 0], 5683)),
            dtls_addr: SocketAddr::from(([0, 0, 0, 0], 5684)),
            nosec: true,
            bootstrap_addr: SocketAddr::from(([0, 0, 0, 0], 5783)),
            bootstrap_dtls_addr: SocketAddr::from(([0, 0, 0, 0], 5784)),
            advertised_host: None,
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 8090)),
            objects: Vec::new(),
        }
    }
}

/// `[gateway]`: the bridge between the two sides.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct GatewaySection {
    /// Run the bridge gateway (`--no-gateway` turns it off).
    pub(crate) enabled: bool,
    /// Where the remote CSE's notifications arrive (port 0: any free port).
    pub(crate) notify_addr: SocketAddr,
    /// Receive them over HTTPS.
    pub(crate) notify_tls: bool,
    /// `/healthz` fails when the ledger peer stays unreachable, or the lag stays above `max_lag_blocks`,
    /// this many seconds.
    pub(crate) health_grace_secs: u64,
    /// The largest lag behind the chain's head (blocks) that is healthy.
    pub(crate) max_lag_blocks: u64,
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            enabled: true,
            notify_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            notify_tls: false,
            health_grace_secs: 30,
            max_lag_blocks: 100,
        }
    }
}

/// `[ops]`: the operations endpoints (`/metrics`, `/healthz`, `/readyz`, `/version`; docs/operations.md).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct OpsSection {
    /// Serve them (`--no-ops` turns them off).
    pub(crate) enabled: bool,
    /// Where (port 0: any free port).
    pub(crate) addr: SocketAddr,
    /// The listener's TLS certificate (PEM; with `tls_key`): HTTPS instead of plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tls_key: Option<PathBuf>,
    /// CA certificates (PEM): with TLS, every client must present a certificate one of them issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_ca: Option<PathBuf>,
}

impl Default for OpsSection {
    fn default() -> Self {
        OpsSection {
            enabled: true,
            addr: SocketAddr::from(([127, 0, 0, 1], 9443)),
            tls_cert: None,
            tls_key: None,
            client_ca: None,
        }
    }
}

/// A switch on the command line.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnOff {
    On,
    Off,
}

/// The flags of `ipechain up`. Each is optional: given (or set by its environment variable), it overrides
/// `--config`; the help names the default that applies when neither sets it.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct UpArgs {
    /// Read the configuration from this TOML file (docs/config.md); flags given here override it.
    #[arg(long, value_name = "FILE", env = "IPECHAIN_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Print the effective configuration (defaults, then the file, then flags and variables) as TOML and
    /// exit without starting anything.
    #[arg(long)]
    pub(crate) print_config: bool,
    #[command(flatten)]
    pub(crate) dir: crate::DataDirArg,
    /// The embedded oneM2M CSE (Mca over HTTP). [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR", env = "IPECHAIN_CSE_ADDR")]
    pub(crate) cse_addr: Option<SocketAddr>,
    /// The embedded CSE also serves Mca over HTTPS here, with peer0.org1's TLS certificate; applications may
    /// present a client certificate from one of the network's TLS CAs (then their originator must be its CN).
    /// [default: 127.0.0.1:8443]
    #[arg(long, value_name = "ADDR", env = "IPECHAIN_CSE_HTTPS_ADDR")]
    pub(crate) cse_https_addr: Option<SocketAddr>,
    /// CSE-ID of the embedded CSE, without the leading `/`. Fixed by the first run of a data directory.
    /// [default: id-in]
    #[arg(long, value_name = "ID")]
    pub(crate) cse_id: Option<String>,
    /// CSEBase resource name of the embedded CSE. Fixed by the first run of a data directory.
    /// [default: cse-in]
    #[arg(long, value_name = "NAME")]
    pub(crate) cse_base_name: Option<String>,
    /// The embedded CSE's admin originator, allowed everything. [default: CAdmin]
    #[arg(long, value_name = "ORIGINATOR")]
    pub(crate) cse_admin: Option<String>,
    /// The embedded CSE's M2M service provider id (absolute addresses `//SP-ID/CSE-ID/…`).
    /// [default: ipechain.example]
    #[arg(long, value_name = "SP_ID")]
    pub(crate) cse_sp_id: Option<String>,
    /// PEM file of CA certificates trusted for `https://` Mca peers (an `https://` `--remote-cse`, and
    /// notification targets of the embedded CSE), on top of the network's TLS CAs. May be repeated; replaces
    /// the file's list.
    #[arg(long = "mca-ca", value_name = "FILE")]
    pub(crate) mca_ca: Vec<PathBuf>,
    /// The LwM2M server (CoAP over UDP). [default: 0.0.0.0:5683]
    #[arg(long, value_name = "ADDR", env = "IPECHAIN_LWM2M_ADDR")]
    pub(crate) lwm2m_addr: Option<SocketAddr>,
    /// The LwM2M server over DTLS 1.2 (`coaps://`, PSK or X.509). Device credentials are read from
    /// `<data dir>/lwm2m/lwm2m-keys` (mode 0600). [default: 0.0.0.0:5684]
    #[arg(long, value_name = "ADDR", env = "IPECHAIN_LWM2M_DTLS_ADDR")]
    pub(crate) lwm2m_dtls_addr: Option<SocketAddr>,
    /// NoSec CoAP registrations: `on` (endpoints that have credentials must use DTLS all the same) or `off`
    /// (also no NoSec bootstrap listener). [default: on]
    #[arg(long, value_enum)]
    pub(crate) lwm2m_nosec: Option<OnOff>,
    /// The LwM2M bootstrap server over NoSec CoAP: serves only endpoints without credentials, with a NoSec
    /// server account (a secret never goes out in the clear). [default: 0.0.0.0:5783]
    #[arg(long, value_name = "ADDR", env = "IPECHAIN_LWM2M_BOOTSTRAP_ADDR")]
    pub(crate) lwm2m_bootstrap_addr: Option<SocketAddr>,
    /// The LwM2M bootstrap server over DTLS 1.2: a device shows its bootstrap credential (`ipechain device add
    /// --bootstrap-psk-identity ...`) and receives its server credential. Bootstrap keys are read from
    /// `<data dir>/lwm2m/lwm2m-bootstrap-keys`. [default: 0.0.0.0:5784]
    #[arg(long, value_name = "ADDR", env = "IPECHAIN_LWM2M_BOOTSTRAP_DTLS_ADDR")]
    pub(crate) lwm2m_bootstrap_dtls_addr: Option<SocketAddr>,
    /// The host devices reach the LwM2M server at, written into the server URIs the bootstrap server hands
    /// out (`coaps://HOST:PORT`). Default: the LwM2M listener's address, or 127.0.0.1 when it listens on all
    /// interfaces (set this when devices are on other hosts).
    #[arg(long, value_name = "HOST", env = "IPECHAIN_LWM2M_ADVERTISED_HOST")]
    pub(crate) lwm2m_advertised_host: Option<String>,
    /// The LwM2M server's admin REST API (Leshan-style, local only). [default: 127.0.0.1:8090]
    #[arg(long, value_name = "ADDR", env = "IPECHAIN_LWM2M_ADMIN_ADDR")]
    pub(crate) lwm2m_admin_addr: Option<SocketAddr>,
    /// OMA object definition files (XML) or directories of them, loaded on top of the built-in objects
    /// (core 0–7 and IPSO 3300–3350). May be repeated; replaces the file's list.
    #[arg(long = "lwm2m-objects", value_name = "PATH")]
    pub(crate) lwm2m_objects: Vec<PathBuf>,
    /// Join an existing CSE (e.g. ACME) as the IPE AE `Cipechain-ipe` and mirror the devices there, instead
    /// of the embedded CSE: the URL of its CSEBase, e.g. `http://127.0.0.1:8081/cse-in` or
    /// `https://127.0.0.1:8443/cse-in` (verified against the network's TLS CAs and `--mca-ca`).
    #[arg(long, value_name = "URL", env = "IPECHAIN_REMOTE_CSE")]
    pub(crate) remote_cse: Option<String>,
    /// Where the gateway receives the remote CSE's notifications (port 0: any free port); only with a remote
    /// CSE. [default: 127.0.0.1:0]
    #[arg(long, value_name = "ADDR")]
    pub(crate) notify_addr: Option<SocketAddr>,
    /// Receive the remote CSE's notifications over HTTPS (with peer0.org1's TLS certificate; the gateway's
    /// `poa` and `nu` become `https://`); only with a remote CSE.
    #[arg(long)]
    pub(crate) notify_tls: bool,
    /// Do not start the bridge gateway (only the ledger, the CSE and the LwM2M server).
    #[arg(long)]
    pub(crate) no_gateway: bool,
    /// The operations endpoints (`/metrics` for Prometheus, `/healthz`, `/readyz`, `/version`; plain HTTP
    /// unless --ops-tls-cert is given, docs/operations.md). [default: 127.0.0.1:9443]
    #[arg(long, value_name = "ADDR", env = "IPECHAIN_OPS_ADDR")]
    pub(crate) ops_addr: Option<SocketAddr>,
    /// Serve the operations endpoints over TLS with this certificate (PEM; with --ops-tls-key).
    #[arg(long, value_name = "FILE", env = "IPECHAIN_OPS_TLS_CERT")]
    pub(crate) ops_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --ops-tls-cert.
    #[arg(long, value_name = "FILE", env = "IPECHAIN_OPS_TLS_KEY")]
    pub(crate) ops_tls_key: Option<PathBuf>,
    /// Require a client certificate issued by one of these CAs (PEM) on the operations endpoints (with TLS).
    #[arg(long, value_name = "FILE", env = "IPECHAIN_OPS_CLIENT_CA")]
    pub(crate) ops_client_ca: Option<PathBuf>,
    /// Do not serve the operations endpoints.
    #[arg(long)]
    pub(crate) no_ops: bool,
    /// Also start 3 simulated LwM2M devices and a oneM2M application, and print both flows as they cross
    /// the ledger.
    #[arg(long)]
    pub(crate) demo: bool,
    /// Run the IPE as an external chaincode: the peers drive it over Fabric's chaincode protocol (as
    /// `ipechain chaincode ipe` serves it), not built in.
    #[arg(long)]
    pub(crate) ipe_external: bool,
}

impl UpConfig {
    /// Parses a config file's text; an unknown key is an error that names it.
    pub(crate) fn from_toml(text: &str) -> Result<UpConfig> {
        Ok(toml::from_str(text)?)
    }

    /// Reads `path`. Relative paths in it (`data_dir`, `mca_ca`, `objects`) are relative to the file's
    /// directory, as in node configs; relative paths on the command line are relative to the working directory.
    pub(crate) fn load(path: &Path) -> Result<UpConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut c = UpConfig::from_toml(&text)
            .with_context(|| format!("{}: invalid configuration", path.display()))?;
        c.relative_to(path.parent().unwrap_or(Path::new(".")));
        Ok(c)
    }

    /// Joins the relative paths of the configuration to `base`.
    fn relative_to(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(d) = self.data_dir.as_mut() {
            join(d);
        }
        self.cse.mca_ca.iter_mut().for_each(join);
        self.lwm2m.objects.iter_mut().for_each(join);
        [&mut self.ops.tls_cert, &mut self.ops.tls_key, &mut self.ops.client_ca]
            .into_iter()
            .flatten()
            .for_each(join);
        if let Some(l) = self.ledger.as_mut() {
            for link in [&mut l.lwm2m, &mut l.onem2m] {
                join(&mut link.tls_ca);
                join(&mut link.cert);
                join(&mut link.key);
                link.tls_cert.iter_mut().for_each(join);
                link.tls_key.iter_mut().for_each(join);
            }
        }
    }

    /// The configuration as TOML, as `--print-config` shows it.
    pub(crate) fn to_toml(&self) -> Result<String> {
        toml::to_string(self).context("writing the configuration as TOML")
    }

    /// The effective configuration: `args` (flags and their variables) over the file over the defaults, and
    /// the log settings of the global flags. The data directory is resolved (`$IPECHAIN_DATA_DIR`, else the
    /// per-user data directory) so that the printed configuration names it.
    pub(crate) fn resolve(
        args: &UpArgs,
        log_level: Option<LogLevel>,
        log_format: Option<LogFormat>,
    ) -> Result<UpConfig> {
        let file = match &args.config {
            Some(path) => UpConfig::load(path)?,
            None => UpConfig::default(),
        };
        let mut c = file.merge(args, log_level, log_format);
        if c.data_dir.is_none() {
            c.data_dir = Some(crate::default_data_dir());
        }
        c.validate()?;
        Ok(c)
    }

    /// `args` over `self` (each flag given replaces the file's value; lists replace whole lists; a switch
    /// given on the command line turns its setting on, `--no-gateway` off).
    pub(crate) fn merge(
        self,
        a: &UpArgs,
        log_level: Option<LogLevel>,
        log_format: Option<LogFormat>,
    ) -> UpConfig {
        let f = self;
        let list = |cli: &Vec<PathBuf>, file: Vec<PathBuf>| if cli.is_empty() { file } else { cli.clone() };
        UpConfig {
            data_dir: a.dir.data_dir.clone().or(f.data_dir),
            demo: a.demo || f.demo,
            ipe_external: a.ipe_external || f.ipe_external,
            log: LogSection {
                level: log_level.unwrap_or(f.log.level),
                format: log_format.unwrap_or(f.log.format),
            },
            cse: CseSection {
                addr: a.cse_addr.unwrap_or(f.cse.addr),
                https_addr: a.cse_https_addr.unwrap_or(f.cse.https_addr),
                id: a.cse_id.clone().unwrap_or(f.cse.id),
                base_name: a.cse_base_name.clone().unwrap_or(f.cse.base_name),
                admin: a.cse_admin.clone().unwrap_or(f.cse.admin),
                sp_id: a.cse_sp_id.clone().unwrap_or(f.cse.sp_id),
                remote: a.remote_cse.clone().or(f.cse.remote),
                mca_ca: list(&a.mca_ca, f.cse.mca_ca),
            },
            lwm2m: Lwm2mSection {
                addr: a.lwm2m_addr.unwrap_or(f.lwm2m.addr),
                dtls_addr: a.lwm2m_dtls_addr.unwrap_or(f.lwm2m.dtls_addr),
                nosec: a.lwm2m_nosec.map_or(f.lwm2m.nosec, |s| s == OnOff::On),
                bootstrap_addr: a.lwm2m_bootstrap_addr.unwrap_or(f.lwm2m.bootstrap_addr),
                bootstrap_dtls_addr: a.lwm2m_bootstrap_dtls_addr.unwrap_or(f.lwm2m.bootstrap_dtls_addr),
                advertised_host: a.lwm2m_advertised_host.clone().or(f.lwm2m.advertised_host),
                admin_addr: a.lwm2m_admin_addr.unwrap_or(f.lwm2m.admin_addr),
                objects: list(&a.lwm2m_objects, f.lwm2m.objects),
            },
            gateway: GatewaySection {
                enabled: !a.no_gateway && f.gateway.enabled,
                notify_addr: a.notify_addr.unwrap_or(f.gateway.notify_addr),
                notify_tls: a.notify_tls || f.gateway.notify_tls,
                health_grace_secs: f.gateway.health_grace_secs,
                max_lag_blocks: f.gateway.max_lag_blocks,
            },
            ops: OpsSection {
                enabled: !a.no_ops && f.ops.enabled,
                addr: a.ops_addr.unwrap_or(f.ops.addr),
                tls_cert: a.ops_tls_cert.clone().or(f.ops.tls_cert),
                tls_key: a.ops_tls_key.clone().or(f.ops.tls_key),
                client_ca: a.ops_client_ca.clone().or(f.ops.client_ca),
            },
            ledger: f.ledger,
        }
    }

    /// Rules that involve several settings, checked on the effective configuration.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.demo && !self.gateway.enabled {
            bail!("--demo needs the gateway: drop --no-gateway (or `[gateway] enabled = false`)");
        }
        match &self.cse.remote {
            Some(url) => {
                crate::gateway::parse_cse_url(url)?;
            }
            None => {
                if self.gateway.notify_tls
                    || self.gateway.notify_addr != GatewaySection::default().notify_addr
                {
                    bail!(
                        "--notify-addr and --notify-tls (`[gateway] notify_addr`, `notify_tls`) apply only to a \
                         remote CSE: set --remote-cse (`[cse] remote`) or drop them"
                    );
                }
            }
        }
        if self.ops.tls_cert.is_some() != self.ops.tls_key.is_some() {
            bail!("--ops-tls-cert and --ops-tls-key (`[ops] tls_cert`, `tls_key`) go together");
        }
        if self.ops.client_ca.is_some() && self.ops.tls_cert.is_none() {
            bail!(
                "--ops-client-ca (`[ops] client_ca`) needs TLS on the operations endpoints: set --ops-tls-cert and \
                 --ops-tls-key (`[ops] tls_cert`, `tls_key`)"
            );
        }
        if let Some(l) = &self.ledger {
            if self.ipe_external {
                bail!("--ipe-external applies to the local network's peers: drop it with `[ledger]`");
            }
            if self.demo {
                bail!("--demo runs on the local network: drop `[ledger]` (or run `ipechain up --demo`)");
            }
            if !self.gateway.enabled {
                bail!("`[ledger]` configures the bridge gateway: it cannot be turned off here");
            }
            for (side, link) in [("lwm2m", &l.lwm2m), ("onem2m", &l.onem2m)] {
                if link.peer.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
                    bail!("`[ledger.{side}] peer` must be host:port, not {:?}", link.peer);
                }
                if link.tls_cert.is_some() != link.tls_key.is_some() {
                    bail!("`[ledger.{side}]`: tls_cert and tls_key go together");
                }
                if link.msp_id.is_empty() {
                    bail!("`[ledger.{side}] msp_id` is empty");
                }
            }
            ledger_types::ChannelId::parse(&l.channel)
                .map_err(|e| anyhow::anyhow!("`[ledger] channel` {:?}: {e}", l.channel))?;
            if l.chaincode.is_empty() {
                bail!("`[ledger] chaincode` is empty");
            }
        }
        for (what, v) in [
            ("--cse-id (`[cse] id`)", &self.cse.id),
            ("--cse-base-name (`[cse] base_name`)", &self.cse.base_name),
            ("--cse-admin (`[cse] admin`)", &self.cse.admin),
            ("--cse-sp-id (`[cse] sp_id`)", &self.cse.sp_id),
        ] {
            if v.is_empty() || v.contains('/') || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                bail!("{what} must be a non-empty name without `/` or spaces, not {v:?}");
            }
        }
        Ok(())
    }

    /// The resolved data directory.
    pub(crate) fn data_dir(&self) -> network::DataDir {
        network::DataDir::new(self.data_dir.clone().unwrap_or_else(crate::default_data_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The first ```toml block of docs/config.md: the documented example `ipechain.toml`.
    fn documented_example() -> &'static str {
        let doc = include_str!("../../../docs/config.md");
        let start = doc.find("```toml\n").expect("docs/config.md has a ```toml block") + "```toml\n".len();
        let len = doc[start..].find("```").expect("the block ends");
        &doc[start..start + len]
    }

    fn keys(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in t {
            let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                toml::Value::Table(t) => keys(&name, t, out),
                _ => out.push(name),
            }
        }
    }

    #[test]
    fn the_documented_example_parses_and_names_every_key() {
        let c = UpConfig::from_toml(documented_example()).unwrap();
        assert_eq!(c.cse.addr, "127.0.0.1:8080".parse().unwrap());
        c.validate().unwrap();
        // Every key of the configuration appears in the example (the optional ones commented out).
        let mut full = UpConfig { data_dir: Some("/x".into()), ..UpConfig::default() };
        full.cse.remote = Some("http://h:1/b".into());
        full.lwm2m.advertised_host = Some("h".into());
        full.ops.tls_cert = Some("c".into());
        full.ops.tls_key = Some("k".into());
        full.ops.client_ca = Some("ca".into());
        let link = LedgerLink {
            peer: "h:1".into(),
            tls_ca: "ca".into(),
            tls_server_name: Some("h".into()),
            tls_cert: Some("c".into()),
            tls_key: Some("k".into()),
            msp_id: "M".into(),
            cert: "c".into(),
            key: "k".into(),
        };
        full.ledger = Some(LedgerSection {
            channel: "iot".into(),
            chaincode: "ipe".into(),
            lwm2m: link.clone(),
            onem2m: link,
        });
        let mut all = Vec::new();
        keys("", &toml::from_str(&full.to_toml().unwrap()).unwrap(), &mut all);
        let uncommented: String = documented_example()
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.starts_with('[') && rest.ends_with(']') => rest,
                Some(rest)
                    if rest
                        .split_once(" = ")
                        .is_some_and(|(k, _)| k.chars().all(|c| c == '_' || c.is_ascii_lowercase())) =>
                {
                    rest
                }
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let mut example = Vec::new();
        keys("", &toml::from_str(&uncommented).unwrap(), &mut example);
        all.sort();
        example.sort();
        assert_eq!(
            all, example,
            "docs/config.md's example names every key once (optional ones as `# key = …`)"
        );
    }

    #[test]
    fn the_packaged_config_parses() {
        let c = UpConfig::from_toml(include_str!("../../../packaging/ipechain.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.data_dir.as_deref(), Some(Path::new("/var/lib/ipechain")));
    }

    #[test]
    fn an_unknown_key_is_named() {
        let e = UpConfig::from_toml("[cse]\naddr = \"127.0.0.1:1\"\nbase = \"x\"\n").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("unknown field `base`"), "{msg}");
        let e = UpConfig::from_toml("cse_addr = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("unknown field `cse_addr`"), "{e:#}");
        let e = UpConfig::from_toml("[cse]\naddr = \"nowhere\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("addr"), "{e:#}");
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let file = UpConfig::from_toml(
            "demo = true\n[cse]\naddr = \"127.0.0.1:1\"\nid = \"id-file\"\nmca_ca = [\"a.pem\"]\n\
             [lwm2m]\nnosec = false\naddr = \"127.0.0.1:2\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        let args = UpArgs {
            cse_addr: Some("127.0.0.1:3".parse().unwrap()),
            mca_ca: vec!["b.pem".into()],
            lwm2m_nosec: Some(OnOff::On),
            no_gateway: true,
            ..UpArgs::default()
        };
        let c = file.clone().merge(&args, Some(LogLevel::Debug), None);
        assert_eq!(c.cse.addr, "127.0.0.1:3".parse().unwrap()); // flag
        assert_eq!(c.cse.id, "id-file"); // file
        assert_eq!(c.cse.base_name, "cse-in"); // default
        assert_eq!(c.cse.mca_ca, [PathBuf::from("b.pem")]); // a list from flags replaces the file's
        assert_eq!(c.lwm2m.addr, "127.0.0.1:2".parse().unwrap());
        assert!(c.lwm2m.nosec);
        assert_eq!(c.log, LogSection { level: LogLevel::Debug, format: LogFormat::Json });
        assert!(!c.gateway.enabled);
        assert!(c.validate().is_err(), "--demo (from the file) needs the gateway");
        let c = file.merge(&UpArgs::default(), None, None);
        assert_eq!(c.cse.mca_ca, [PathBuf::from("a.pem")]);
        assert!(!c.lwm2m.nosec);
        c.validate().unwrap();
    }

    #[test]
    fn relative_paths_of_a_file_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ipechain.toml");
        std::fs::write(
            &path,
            "data_dir = \"data\"\n[cse]\nmca_ca = [\"/abs/ca.pem\", \"ca.pem\"]\n[lwm2m]\nobjects = [\"obj\"]\n",
        )
        .unwrap();
        let c = UpConfig::load(&path).unwrap();
        assert_eq!(c.data_dir, Some(dir.path().join("data")));
        assert_eq!(c.cse.mca_ca, [PathBuf::from("/abs/ca.pem"), dir.path().join("ca.pem")]);
        assert_eq!(c.lwm2m.objects, [dir.path().join("obj")]);
    }

    #[test]
    fn validation_names_the_setting() {
        let mut c = UpConfig::default();
        c.gateway.notify_tls = true;
        assert!(format!("{:#}", c.validate().unwrap_err()).contains("only to a remote CSE"));
        c.cse.remote = Some("http://127.0.0.1:8081/cse-in".into());
        c.validate().unwrap();
        c.cse.remote = Some("ftp://x".into());
        assert!(c.validate().is_err());
        let mut c = UpConfig::default();
        c.cse.base_name = "a/b".into();
        assert!(format!("{:#}", c.validate().unwrap_err()).contains("--cse-base-name"));
        let mut c = UpConfig::default();
        c.ops.tls_cert = Some("c.pem".into());
        assert!(format!("{:#}", c.validate().unwrap_err()).contains("go together"));
        c.ops.tls_key = Some("k.pem".into());
        c.validate().unwrap();
        c.ops.tls_cert = None;
        c.ops.tls_key = None;
        c.ops.client_ca = Some("ca.pem".into());
        assert!(format!("{:#}", c.validate().unwrap_err()).contains("needs TLS"));
    }

    #[test]
    fn a_ledger_section_is_checked_and_its_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.toml");
        let link = |org: &str| {
            format!(
                "peer = \"localhost:7051\"\ntls_ca = \"{org}/ca.crt\"\nmsp_id = \"{org}MSP\"\n\
                 cert = \"{org}/cert.pem\"\nkey = \"/abs/{org}/priv_sk\"\n"
            )
        };
        let text = format!(
            "[ledger]\nchannel = \"iot\"\n[ledger.lwm2m]\n{}[ledger.onem2m]\n{}",
            link("Org2"),
            link("Org1")
        );
        std::fs::write(&path, &text).unwrap();
        let c = UpConfig::load(&path).unwrap();
        let l = c.ledger.as_ref().unwrap();
        assert_eq!(l.chaincode, "ipe");
        assert_eq!(l.lwm2m.tls_ca, dir.path().join("Org2/ca.crt"));
        assert_eq!(l.lwm2m.key, PathBuf::from("/abs/Org2/priv_sk"));
        c.validate().unwrap();
        let mut bad = c.clone();
        bad.ledger.as_mut().unwrap().onem2m.peer = "no-port".into();
        assert!(format!("{:#}", bad.validate().unwrap_err()).contains("[ledger.onem2m] peer"));
        let mut bad = c.clone();
        bad.ledger.as_mut().unwrap().lwm2m.tls_cert = Some("c".into());
        assert!(format!("{:#}", bad.validate().unwrap_err()).contains("tls_cert and tls_key"));
        let mut bad = c.clone();
        bad.demo = true;
        assert!(bad.validate().is_err());
        let e = UpConfig::from_toml("[ledger]\nchannel = \"iot\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("lwm2m"), "{e:#}");
    }

    #[test]
    fn printed_configuration_reads_back() {
        let mut c = UpConfig { data_dir: Some("/var/lib/ipechain".into()), ..UpConfig::default() };
        c.cse.remote = Some("https://127.0.0.1:8443/cse-in".into());
        c.lwm2m.objects = vec!["/etc/ipechain/objects".into()];
        let text = c.to_toml().unwrap();
        assert_eq!(UpConfig::from_toml(&text).unwrap(), c);
    }

    /// The defaults named in `up --help` are the defaults of [`UpConfig`].
    #[test]
    fn help_names_the_real_defaults() {
        let d = UpConfig::default();
        let cmd = crate::Cli::command();
        let up = cmd.find_subcommand("up").unwrap();
        let expect = [
            ("cse_addr", d.cse.addr.to_string()),
            ("cse_https_addr", d.cse.https_addr.to_string()),
            ("cse_id", d.cse.id.clone()),
            ("cse_base_name", d.cse.base_name.clone()),
            ("cse_admin", d.cse.admin.clone()),
            ("cse_sp_id", d.cse.sp_id.clone()),
            ("lwm2m_addr", d.lwm2m.addr.to_string()),
            ("lwm2m_dtls_addr", d.lwm2m.dtls_addr.to_string()),
            ("lwm2m_nosec", if d.lwm2m.nosec { "on" } else { "off" }.to_owned()),
            ("lwm2m_bootstrap_addr", d.lwm2m.bootstrap_addr.to_string()),
            ("lwm2m_bootstrap_dtls_addr", d.lwm2m.bootstrap_dtls_addr.to_string()),
            ("lwm2m_admin_addr", d.lwm2m.admin_addr.to_string()),
            ("notify_addr", d.gateway.notify_addr.to_string()),
            ("ops_addr", d.ops.addr.to_string()),
        ];
        for (id, default) in expect {
            let arg = up.get_arguments().find(|a| a.get_id() == id).unwrap_or_else(|| panic!("no --{id}"));
            let help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
            assert!(help.contains(&format!("[default: {default}]")), "--{id}: {help}");
        }
    }
}
