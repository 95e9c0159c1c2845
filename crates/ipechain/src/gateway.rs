//! Wiring of the bridge gateway into `ipechain up`, and ledger client identities of the local network.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use ipe::IpeCall;
use ipe::model::GatewayRef;
use ledger_client::Gateway;
use ledger_types::tx::Signer;
use network::layout::{NodeRole, load_identity, tls_material};
use network::{DataDir, IdentitySigner};

/// A client identity connected to a peer's gateway: of the local network, or as `[ledger]` configures.
pub(crate) struct Client {
    pub(crate) gateway: Gateway,
    pub(crate) who: GatewayRef,
    /// The IPE chaincode's name.
    pub(crate) chaincode: String,
    /// The peer's `host:port`, the gateway's gRPC connection and the channel, for the bridge's watch of the
    /// chain head ([`Client::peer_link`]).
    peer: String,
    grpc: tonic::transport::Channel,
    channel: String,
}

impl Client {
    /// The IPE chaincode.
    pub(crate) fn ipe(&self) -> ledger_client::ContractClient {
        self.gateway.contract(&self.chaincode)
    }

    /// The bridge's watch of this connection's peer, as `side`.
    pub(crate) fn peer_link(&self, side: bridge::Side) -> bridge::PeerLink {
        bridge::PeerLink {
            side,
            peer: self.peer.clone(),
            channel: self.grpc.clone(),
            channel_id: self.channel.clone(),
            signer: self.gateway.signer().clone(),
        }
    }
}

/// Connects as `user` (`Gateway`, `Admin`, `User1`, …) of peer organization `org` (0-based, in network.toml
/// order) to that organization's first peer.
pub(crate) fn client(dir: &DataDir, org: usize, user: &str) -> Result<Client> {
    client_signing(dir, org, user, |s| s)
}

/// [`client`], its signer wrapped by `wrap`.
fn client_signing(
    dir: &DataDir,
    org: usize,
    user: &str,
    wrap: impl FnOnce(Arc<dyn Signer>) -> Arc<dyn Signer>,
) -> Result<Client> {
    let c = connector(dir, org, user)?;
    let who = GatewayRef {
        org: c.signer.identity().msp_id().to_owned(),
        id: c.signer.identity().common_name().to_owned(),
    };
    let grpc = ledger_rpc::tls::channel(&c.endpoint, &c.tls)
        .with_context(|| format!("the connection to {}", c.endpoint))?;
    let gateway = Gateway::with_channel(grpc.clone(), wrap(c.signer.clone()), &c.channel)?;
    Ok(Client {
        gateway,
        who,
        chaincode: ipe::NAME.to_owned(),
        peer: c.endpoint.clone(),
        grpc,
        channel: c.channel.clone(),
    })
}

/// Connects one side as `[ledger.lwm2m]` or `[ledger.onem2m]` says: any Fabric gateway peer, with the
/// identity and TLS files of a Fabric application.
pub(crate) fn link_client(
    link: &crate::config::LedgerLink,
    channel: &str,
    chaincode: &str,
) -> Result<Client> {
    let read = |p: &PathBuf, what: &str| {
        std::fs::read(p).with_context(|| format!("reading the {what} {}", p.display()))
    };
    let files = vec![
        (PathBuf::from("msp/signcerts/cert.pem"), read(&link.cert, "certificate")?),
        (PathBuf::from("msp/keystore/priv_sk"), read(&link.key, "private key")?),
    ];
    let id = msp::LocalIdentity::from_files(link.msp_id.clone(), &files)
        .with_context(|| format!("the identity of {} and {}", link.cert.display(), link.key.display()))?;
    let (cert_pem, key_pem) = match (&link.tls_cert, &link.tls_key) {
        (Some(c), Some(k)) => (read(c, "TLS client certificate")?, read(k, "TLS client key")?),
        _ => (Vec::new(), Vec::new()),
    };
    let tls =
        ledger_rpc::tls::TlsMaterial { cert_pem, key_pem, ca_pems: vec![read(&link.tls_ca, "TLS CA")?] };
    let host = link.peer.rsplit_once(':').map_or(link.peer.as_str(), |(h, _)| h);
    let name = link.tls_server_name.as_deref().unwrap_or(host.trim_start_matches('[').trim_end_matches(']'));
    let ch = ledger_rpc::tls::channel_named(&link.peer, &tls, name)
        .with_context(|| format!("the connection to {}", link.peer))?;
    let who = GatewayRef { org: id.msp_id().to_owned(), id: id.common_name().to_owned() };
    let gateway = Gateway::with_channel(ch.clone(), Arc::new(IdentitySigner::new(id)), channel)?;
    Ok(Client {
        gateway,
        who,
        chaincode: chaincode.to_owned(),
        peer: link.peer.clone(),
        grpc: ch,
        channel: channel.to_owned(),
    })
}

/// The bridge's two ledger connections: as `[ledger]` configures, else the local network's `Gateway`
/// users (Org2's for the LwM2M side, Org1's for the oneM2M side).
pub(crate) fn bridge_clients(
    dir: &DataDir,
    ledger: Option<&crate::config::LedgerSection>,
) -> Result<(Client, Client)> {
    match ledger {
        Some(l) => Ok((
            link_client(&l.lwm2m, &l.channel, &l.chaincode).context("`[ledger.lwm2m]`")?,
            link_client(&l.onem2m, &l.channel, &l.chaincode).context("`[ledger.onem2m]`")?,
        )),
        // The local network runs in this process (`ipechain up`): the bridge's signatures are known to its
        // peers and orderers, which recognise them instead of verifying them (peer::known).
        None => {
            let known = |s: Arc<dyn Signer>| -> Arc<dyn Signer> {
                Arc::new(peer::known::RecordingSigner::new(s, peer::known::process_signatures()))
            };
            Ok((
                client_signing(dir, 1, "Gateway", known)
                    .context("the LwM2M side's ledger identity (Org2 Gateway)")?,
                client_signing(dir, 0, "Gateway", known)
                    .context("the oneM2M side's ledger identity (Org1 Gateway)")?,
            ))
        }
    }
}

/// Where the oneM2M side is.
pub(crate) enum Onem2mChoice {
    /// The embedded CSE.
    Embedded(cse::Cse),
    /// A remote CSE.
    Remote(Box<RemoteCse>),
}

/// How the gateway joins a remote CSE.
pub(crate) struct RemoteCse {
    /// `host:port`.
    pub(crate) authority: String,
    /// The CSEBase resource name.
    pub(crate) base: String,
    /// Speak HTTPS to it, with `tls`.
    pub(crate) https: bool,
    /// The CAs that verify it.
    pub(crate) tls: mca_client::tls::TlsClient,
    /// Our notification listener's address.
    pub(crate) listen: SocketAddr,
    /// Its certificate, if it serves HTTPS.
    pub(crate) listen_tls: Option<mca_client::tls::TlsServer>,
}

/// Parses `http://host:port/cse-in` (or `https://…`; no path: `cse-in`) into (`host:port`, `cse-in`, HTTPS).
pub(crate) fn parse_cse_url(url: &str) -> Result<(String, String, bool)> {
    let u = match mca_client::CseUrl::parse(url) {
        Ok(u) => u,
        Err(mca_client::UrlError::Scheme) => bail!(
            "--remote-cse must be an http:// or https:// URL of the CSEBase, e.g. http://127.0.0.1:8080/cse-in"
        ),
        Err(e) => bail!("--remote-cse {url}: {e}; expected http://host:port/<CSEBase name>"),
    };
    let base = if u.path.is_empty() { "cse-in".to_owned() } else { u.path };
    if base.contains('/') {
        bail!("--remote-cse {url}: expected http://host:port/<CSEBase name>");
    }
    Ok((u.authority, base, u.https))
}

/// The IPE AE's AE-ID on the oneM2M side.
pub(crate) const IPE_AE: &str = "Cipechain-ipe";

/// Starts the bridge with its two ledger connections (`lw` for the LwM2M side, `om` for the oneM2M side);
/// its checkpoint and journal live in `<dir>/gateway`.
pub(crate) async fn start(
    dir: &DataDir,
    (lw, om): (Client, Client),
    lwm2m: lwm2m_server::LwM2mServerHandle,
    registry: Arc<lwm2m::Registry>,
    onem2m: Onem2mChoice,
    metrics: ops::BridgeMetrics,
) -> Result<bridge::Bridge> {
    let (side, notifications) = match onem2m {
        Onem2mChoice::Embedded(cse) => {
            let rx = cse.local_poa("ipe-bridge");
            let base = cse.config().rn.clone();
            let side = bridge::Onem2mSide::new(
                Arc::new(crate::embedded_cse::EmbeddedCse(cse)),
                &base,
                IPE_AE,
                "local://ipe-bridge".into(),
            );
            (side, crate::embedded_cse::notifications(rx))
        }
        Onem2mChoice::Remote(remote) => {
            let RemoteCse { authority, base, https, tls, listen, listen_tls } = *remote;
            let listener = match listen_tls {
                Some(t) => {
                    let cfg = t.rustls_config().context("the notification listener's TLS certificate")?;
                    mca_client::NotificationListener::bind_tls(listen, cfg).await
                }
                None => mca_client::NotificationListener::bind(listen).await,
            }
            .with_context(|| format!("binding the notification listener on {listen}"))?;
            let url = listener.url();
            let mut cfg = mca_client::McaConfig::new(authority, IPE_AE);
            if https {
                cfg.https = true;
                cfg.tls = Some(tls.rustls_config().context("TLS settings for the remote CSE")?);
            }
            let mca = mca_client::McaClient::new(cfg);
            let side = bridge::Onem2mSide::new(Arc::new(mca), &base, IPE_AE, url);
            (side, bridge::mca::notifications_remote(listener))
        }
    };
    let watch = vec![lw.peer_link(bridge::Side::Lwm2m), om.peer_link(bridge::Side::Onem2m)];
    let cfg = bridge::BridgeConfig {
        name: "gw1".into(),
        state_dir: dir.root().join("gateway"),
        lwm2m_ledger: lw.gateway,
        lwm2m_identity: lw.who,
        onem2m_ledger: om.gateway,
        ipe_contract: lw.chaincode,
        lwm2m,
        registry,
        onem2m: side,
        device_request_timeout: 60,
        metrics,
        watch,
    };
    bridge::Bridge::start(cfg, notifications).await.context("starting the bridge gateway")
}

/// On a fresh chain (policy version 0) installs the starter access policy: every application (originator
/// `C*`) may do everything on every device. Returns the policy version in force.
pub(crate) async fn starter_policy(dir: &DataDir) -> Result<(u64, bool)> {
    let admin = client(dir, 0, "Admin").context("Org1 Admin")?;
    let ipe = admin.ipe();
    let mut last = None;
    for _ in 0..50 {
        match ipe.evaluate(IpeCall::GetPolicy.function(), &IpeCall::GetPolicy.args()?).await {
            Ok(b) => {
                let v: serde_json::Value = serde_json::from_slice(&b)?;
                let version = v.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
                if version > 0 {
                    return Ok((version, false));
                }
                let grant = IpeCall::Grant(ipe::Rule {
                    id: "starter-all-apps".into(),
                    originators: vec!["C*".into()],
                    devices: vec!["*".into()],
                    ops: vec![ipe::Permission::All],
                    msps: Vec::new(),
                });
                let c = ipe.submit(grant.function(), &grant.args()?).await?;
                let v: serde_json::Value = serde_json::from_slice(&c.payload)?;
                return Ok((v.get("version").and_then(serde_json::Value::as_u64).unwrap_or(1), true));
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(last.map_or_else(|| anyhow::anyhow!("no answer"), anyhow::Error::from)).context("reading the policy")
}

/// The chain height of the first peer.
pub(crate) async fn height(dir: &DataDir) -> Result<u64> {
    let (_, nodes, tls) = crate::status::admin_tls(dir)?;
    let peer = nodes.iter().find(|n| n.role == NodeRole::Peer).context("no peer")?;
    let ch = ledger_rpc::tls::channel(&peer.listen.to_string(), &tls)?;
    Ok(ledger_client::node_status(ch).await?.height)
}

/// Opens connections as one identity (each `connect` is its own TLS connection).
pub(crate) struct Connector {
    endpoint: String,
    tls: ledger_rpc::tls::TlsMaterial,
    signer: Arc<IdentitySigner>,
    channel: String,
}

impl Connector {
    pub(crate) fn connect(&self) -> Result<Gateway> {
        Ok(Gateway::connect(&self.endpoint, &self.tls, self.signer.clone(), &self.channel)?)
    }
}

/// A [`Connector`] for `user` of peer organization `org` to that organization's first peer.
pub(crate) fn connector(dir: &DataDir, org: usize, user: &str) -> Result<Connector> {
    let (net, nodes, _) = crate::status::admin_tls(dir)?;
    let o = net.crypto.peer_orgs.get(org).with_context(|| format!("no peer organization #{org}"))?;
    let peer = nodes
        .iter()
        .find(|n| n.role == NodeRole::Peer && n.msp_id == o.msp_id)
        .with_context(|| format!("{} has no peer", o.msp_id))?;
    let (_, channel) = network::layout::read_genesis(&peer.genesis)?;
    let path: PathBuf = dir
        .crypto_dir()
        .join("peerOrganizations")
        .join(&o.domain)
        .join("users")
        .join(format!("{user}@{}", o.domain));
    let id = load_identity(&o.msp_id, &path).with_context(|| format!("loading {}", path.display()))?;
    let tls = tls_material(&id, &channel).context("no client TLS material")?;
    Ok(Connector {
        endpoint: peer.listen.to_string(),
        tls,
        signer: Arc::new(IdentitySigner::new(id)),
        channel: net.channel.clone(),
    })
}

/// Submits `call` of the IPE contract as Org1's Admin (policy and device credentials are admin
/// transactions); a refusal by the contract says which function and why.
pub(crate) async fn submit_as_admin(dir: &DataDir, call: &IpeCall) -> Result<ledger_client::Committed> {
    let c = client(dir, 0, "Admin")?;
    let function = call.function();
    c.gateway.contract(ipe::NAME).submit(function, &call.args()?).await.map_err(|e| {
        match bridge::ledger::contract_status(&e) {
            Some((status, message)) => {
                anyhow::anyhow!("the IPE contract refused {function} ({status}): {message}")
            }
            None => anyhow::Error::from(e),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::parse_cse_url;

    #[test]
    fn remote_cse_urls() {
        let ok = |u: &str| parse_cse_url(u).map_err(|e| e.to_string());
        assert_eq!(ok("http://127.0.0.1:8080/cse-in"), Ok(("127.0.0.1:8080".into(), "cse-in".into(), false)));
        assert_eq!(ok("https://acme:8443/id-in/"), Ok(("acme:8443".into(), "id-in".into(), true)));
        assert_eq!(ok("http://127.0.0.1:8080"), Ok(("127.0.0.1:8080".into(), "cse-in".into(), false)));
        for bad in
            ["127.0.0.1:8080/cse-in", "ftp://h:1/cse-in", "http:///cse-in", "http://h:1/a/b", "http://h 1/x"]
        {
            assert!(parse_cse_url(bad).is_err(), "{bad}");
        }
    }
}
