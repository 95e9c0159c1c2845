//! `ipechain node` (one node from its config) and `ipechain up` (the whole default network in one process,
//! every node on its own loopback gRPC endpoint with mutual TLS, exactly as on separate hosts).

use anyhow::{Context, Result};
use network::NetworkConfig;
use network::layout::{NodeConfig, NodeRole};
use network::run::{start_orderer_with_store, start_peer_with_metrics};

use crate::config::UpConfig;
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// How long a device's LwM2M Send waits for the bridge to record it on the ledger before it is answered 5.03
/// (the device sends it again later). Commits take well under a second; this covers the SDK's retries and a
/// device's earlier events queued before it.
const SEND_RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits for Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    ShutdownSignal::install().wait().await;
}

/// Ctrl-C / SIGTERM, caught from the moment it is installed (a signal during start-up is not fatal).
struct ShutdownSignal {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    fn install() -> Self {
        ShutdownSignal {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        if let Some(term) = self.term.as_mut() {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(crate) async fn run_one(config: &Path) -> Result<()> {
    let node = NodeConfig::load(config).with_context(|| format!("loading {}", config.display()))?;
    let stop = CancellationToken::new();
    let name = node.config.name.clone();
    let listen = node.config.listen;
    let ops = crate::operations::new_ops();
    let ops_stop = CancellationToken::new();
    let ops_tls = crate::operations::load_tls(
        node.config.ops_tls_cert.as_deref(),
        node.config.ops_tls_key.as_deref(),
        node.config.ops_client_ca.as_deref(),
        &format!("ops_tls_cert, ops_tls_key, ops_client_ca of {}", config.display()),
    )?;
    let ops_task = match node.config.ops_listen {
        Some(addr) => {
            let (url, task) = crate::operations::serve(&ops, addr, ops_tls, ops_stop.clone()).await?;
            println!("operations endpoints on {url} (/metrics, /healthz, /readyz, /version)");
            Some(task)
        }
        None if ops_tls.is_some() => {
            anyhow::bail!("{}: ops_tls_cert and ops_tls_key without ops_listen", config.display())
        }
        None => None,
    };
    match node.config.role {
        NodeRole::Orderer => {
            let (h, blocks) =
                start_orderer_with_store(node, ops.metrics.orderer.clone(), stop.clone()).await?;
            let watch = crate::operations::watch_orderer(&ops, &name, &h, blocks, stop.clone());
            ops.set_ready();
            println!("orderer {name} serving on {listen}");
            shutdown_signal().await;
            tracing::info!("shutting down {name}");
            stop.cancel();
            let _ = watch.await;
            h.shutdown().await;
        }
        NodeRole::Peer => {
            let p =
                start_peer_with_metrics(node, installed_contracts(), ops.metrics.peer.clone(), stop.clone())
                    .await?;
            crate::operations::watch_peer(&ops, &name, &p, Default::default());
            ops.set_ready();
            println!("peer {name} serving on {listen} (height {})", p.ledger.height());
            shutdown_signal().await;
            tracing::info!("shutting down {name}");
            stop.cancel();
            p.stopped().await?;
        }
    }
    ops_stop.cancel();
    if let Some(t) = ops_task {
        let _ = t.await;
    }
    Ok(())
}

/// `ipechain chaincode ipe`: the IPE contract as a chaincode server until SIGINT/SIGTERM.
pub(crate) async fn serve_chaincode(listen: std::net::SocketAddr, id: &str) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the chaincode server to {listen}"))?;
    println!("chaincode {id} (the IPE) serving on {}", listener.local_addr()?);
    shim::serve(Arc::new(ipe::IpeContract::default()), id, listener, shutdown_signal()).await?;
    Ok(())
}

/// The Tokio runtimes of the orderers `up` runs: each on its own, as the separate process it models.
///
/// On one shared runtime, an orderer's consensus path (AppendEntries in, the log write, the vote back, the
/// leader's commit and apply: each step a task wake-up) queued behind the thousands of tasks of the
/// peers' client connections, and a block took 240 ms on average from proposal to applied under `bench ledger
/// --apps 2000` on two cores; on runtimes of their own the orderers' threads are scheduled by the kernel
/// beside the shared runtime's, and it took 53 ms (docs/ledger-perf.md, seventh round). One worker thread
/// each: their heavy work (signature checks, block store writes) runs on their blocking pools, and two
/// workers measured the same. Peers stay on the shared runtime: on runtimes of their own they measured no
/// faster, with a higher p99.
#[derive(Default)]
struct NodeRuntimes(Vec<tokio::runtime::Runtime>);

impl NodeRuntimes {
    /// Runs `start` (a node's start, which spawns the node's tasks) on a new runtime named after the node,
    /// which lives until [`shutdown`](Self::shutdown).
    async fn run<T, E>(
        &mut self,
        name: &str,
        start: impl std::future::Future<Output = Result<T, E>> + Send + 'static,
    ) -> Result<T>
    where
        T: Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .context("building the node's runtime")?;
        let started = rt.spawn(start);
        self.0.push(rt);
        Ok(started.await.context("the node's start task failed")??)
    }

    /// Stops the runtimes, waiting up to 10 s for their blocking work (a block store write) to end.
    async fn shutdown(mut self) {
        let rts = std::mem::take(&mut self.0);
        let _ = tokio::task::spawn_blocking(move || {
            for rt in rts {
                rt.shutdown_timeout(std::time::Duration::from_secs(10));
            }
        })
        .await;
    }
}

impl Drop for NodeRuntimes {
    /// On an early return (a failed start): a runtime cannot be dropped on an async thread, only let go.
    fn drop(&mut self) {
        for rt in self.0.drain(..) {
            rt.shutdown_background();
        }
    }
}

/// `ipechain up` (no `[ledger]`: the local network of the data directory, generated on first run, with the
/// CSE, the LwM2M server and the bridge) and `ipechain gateway` (`[ledger]`: only the CSE, the LwM2M
/// server and the bridge, against the Fabric gateway peers the configuration names; the data directory
/// holds the CSE's database, the device key files and the bridge's checkpoint and journal).
pub(crate) async fn up(cfg: UpConfig) -> Result<()> {
    let signal = ShutdownSignal::install();
    let dir = cfg.data_dir();
    let UpConfig { cse: cse_cfg, lwm2m: lw, gateway: gw, demo, ledger, ops: ops_cfg, ipe_external, .. } = cfg;
    // The operations endpoints first: a taken port is reported before anything starts, and `/readyz`
    // says 503 until everything has.
    let ops = crate::operations::new_ops();
    let ops_stop = CancellationToken::new();
    let ops_running = if ops_cfg.enabled {
        let tls = crate::operations::load_tls(
            ops_cfg.tls_cert.as_deref(),
            ops_cfg.tls_key.as_deref(),
            ops_cfg.client_ca.as_deref(),
            "--ops-tls-cert, --ops-tls-key, --ops-client-ca (`[ops] tls_cert`, `tls_key`, `client_ca`)",
        )?;
        Some(crate::operations::serve(&ops, ops_cfg.addr, tls, ops_stop.clone()).await?)
    } else {
        None
    };
    let mut mca_cas = Vec::new();
    let mut channel_name = None;
    // `[ledger]`'s connections, made first so that a bad file or address is reported before anything starts.
    let mut configured_clients = None;
    let nodes = match &ledger {
        None => {
            if !dir.exists() {
                let net = NetworkConfig::default_network();
                crate::keys::generate_network(&dir, &net)?;
                println!(
                    "first run: generated keys, genesis block and node configs in {}",
                    dir.root().display()
                );
            } else {
                println!("reusing the network in {}", dir.root().display());
            }
            let (net, nodes, admin_tls) = crate::status::admin_tls(&dir)?;
            // Mca over TLS: the network's TLS CAs, and what the operator adds.
            mca_cas.extend(admin_tls.ca_pems.iter().cloned());
            channel_name = Some(net.channel);
            nodes
        }
        Some(l) => {
            configured_clients = Some(crate::gateway::bridge_clients(&dir, Some(l))?);
            std::fs::create_dir_all(dir.root())
                .with_context(|| format!("creating the data directory {}", dir.root().display()))?;
            println!(
                "gateway: ledger channel `{}` through {} (LwM2M side, {}) and {} (oneM2M side, {}); state in {}",
                l.channel,
                l.lwm2m.peer,
                l.lwm2m.msp_id,
                l.onem2m.peer,
                l.onem2m.msp_id,
                dir.root().display()
            );
            Vec::new()
        }
    };
    for f in &cse_cfg.mca_ca {
        mca_cas.push(std::fs::read(f).with_context(|| format!("reading --mca-ca {}", f.display()))?);
    }
    let mca_client_tls = mca_client::tls::TlsClient { ca_pems: mca_cas, identity: None };
    let mut cse_server_tls = None;
    let stop = CancellationToken::new();
    let mut orderers = Vec::new();
    let mut orderer_runtimes = NodeRuntimes::default();
    let mut peers = Vec::new();
    let mut orderer_heights = crate::operations::OrdererHeights::default();
    let mut watches = Vec::new();
    for n in nodes.iter().filter(|n| n.role == NodeRole::Orderer) {
        let path = dir.node_config(&n.name);
        let loaded = NodeConfig::load(&path).with_context(|| format!("loading {}", path.display()))?;
        let (metrics, st) = (ops.metrics.orderer.clone(), stop.clone());
        let (h, blocks) = orderer_runtimes
            .run(&n.name, async move { start_orderer_with_store(loaded, metrics, st).await })
            .await
            .with_context(|| format!("starting {}", n.name))?;
        watches.push(crate::operations::watch_orderer(&ops, &n.name, &h, blocks.clone(), stop.clone()));
        orderer_heights.add(blocks);
        orderers.push((n.name.clone(), n.listen, h));
    }
    // With --ipe-external, the IPE runs as a chaincode server on a loopback port, and every peer drives it
    // over the chaincode protocol. The server gets a runtime (and blocking pool) of its own, as the separate
    // process it would be: sharing the nodes' pool, peers waiting on the chaincode could hold every blocking
    // thread the chaincode's transactions need.
    let mut chaincode_task = None;
    let ipe_server = if ipe_external {
        let std_listener =
            std::net::TcpListener::bind(("127.0.0.1", 0)).context("binding the IPE chaincode server")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let cc_stop = stop.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ipe-chaincode")
            .enable_all()
            .build()
            .context("the IPE chaincode server's runtime")?;
        chaincode_task = Some(std::thread::spawn(move || {
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener)?;
                shim::serve(Arc::new(ipe::IpeContract::default()), "ipe:1", listener, async move {
                    cc_stop.cancelled().await
                })
                .await
                .map_err(anyhow::Error::from)
            })
        }));
        Some(addr)
    } else {
        None
    };
    for n in nodes.iter().filter(|n| n.role == NodeRole::Peer) {
        let path = dir.node_config(&n.name);
        let mut loaded = NodeConfig::load(&path).with_context(|| format!("loading {}", path.display()))?;
        if let Some(addr) = ipe_server {
            loaded.config.chaincodes.insert(
                ipe::NAME.to_owned(),
                network::layout::ChaincodeServer {
                    address: addr.to_string(),
                    tls_ca: None,
                    execute_timeout_secs: None,
                },
            );
        }
        if cse_server_tls.is_none() {
            // The first peer's (peer0 of the first organization, which runs the oneM2M side) TLS identity.
            cse_server_tls = Some(mca_client::tls::TlsServer {
                identity: mca_client::tls::PemIdentity {
                    cert_pem: loaded.tls.cert_pem.clone(),
                    key_pem: loaded.tls.key_pem.clone(),
                },
                client_ca_pems: loaded.tls.ca_pems.clone(),
            });
        }
        let p =
            start_peer_with_metrics(loaded, installed_contracts(), ops.metrics.peer.clone(), stop.clone())
                .await?;
        crate::operations::watch_peer(&ops, &n.name, &p, orderer_heights.clone());
        peers.push((n.name.clone(), n.listen, p));
    }
    // The oneM2M side: the embedded CSE, persisted under the data directory (unless a remote CSE is used).
    let remote = cse_cfg.remote.as_deref().map(crate::gateway::parse_cse_url).transpose()?;
    let mut cse_running = None;
    let mut cse_https = None;
    if remote.is_none() {
        let cse_listener = tokio::net::TcpListener::bind(cse_cfg.addr)
            .await
            .with_context(|| format!("binding the CSE to {}", cse_cfg.addr))?;
        // HTTPS with peer0.org1's certificate: only where this process runs the local network.
        let https_listener = match &cse_server_tls {
            Some(_) => Some(
                tokio::net::TcpListener::bind(cse_cfg.https_addr)
                    .await
                    .with_context(|| format!("binding the CSE's HTTPS listener to {}", cse_cfg.https_addr))?,
            ),
            None => None,
        };
        let https_addr = https_listener.as_ref().map(tokio::net::TcpListener::local_addr).transpose()?;
        let mut poa = vec![format!("http://{}", cse_cfg.addr)];
        poa.extend(https_addr.map(|a| format!("https://{a}")));
        let cse = cse::Cse::open(cse::CseConfig {
            data_dir: Some(dir.root().join("cse")),
            poa,
            notify_tls: mca_client_tls.clone(),
            cse_id: cse_cfg.id.clone(),
            rn: cse_cfg.base_name.clone(),
            admin: cse_cfg.admin.clone(),
            sp_id: cse_cfg.sp_id.clone(),
            metrics: ops.metrics.cse.clone(),
            ..Default::default()
        })
        .await
        .map_err(|e| match e {
            cse::CseError::Identity(msg) => anyhow::anyhow!(
                "{msg} (in {}): start with --cse-id and --cse-base-name (`[cse] id`, `base_name`) as stored, \
                 or with a fresh data directory",
                dir.root().join("cse").display()
            ),
            e => anyhow::Error::new(e).context("opening the embedded CSE"),
        })?;
        let cse_stop = stop.clone();
        let cse_task =
            tokio::spawn(cse::serve(cse.clone(), cse_listener, async move { cse_stop.cancelled().await }));
        crate::operations::ready_while_running(&ops, "CSE (Mca over HTTP)", cse_task.abort_handle());
        if let (Some(tls), Some(listener), Some(addr)) = (&cse_server_tls, https_listener, https_addr) {
            let server_tls = tls.rustls_config().context("the CSE's HTTPS certificate")?;
            let https_stop = stop.clone();
            let https_task = tokio::spawn(cse::serve_tls(cse.clone(), listener, server_tls, async move {
                https_stop.cancelled().await
            }));
            cse_https = Some((addr, https_task));
        }
        cse_running = Some((cse, cse_task));
    }
    // The LwM2M side.
    let registry =
        lwm2m_server::load_object_definitions(&lw.objects).context("loading LwM2M object definitions")?;
    let registry = std::sync::Arc::new(registry);
    // Device credentials: the chain's bindings (fingerprints) with the key file's secrets, kept in step.
    let keys = std::sync::Arc::new(
        lwm2m_server::BoundCredentialStore::open(&dir.root().join("lwm2m"))
            .context("opening the LwM2M device key store")?,
    );
    let creds_connect = {
        let (dir, ledger) = (dir.clone(), ledger.clone());
        move || match &ledger {
            None => crate::gateway::client(&dir, 0, "User1"),
            Some(l) => crate::gateway::link_client(&l.lwm2m, &l.channel, &l.chaincode),
        }
    };
    let creds_task = tokio::spawn(crate::device_cmd::refresh_loop(creds_connect, keys.clone(), stop.clone()));
    let mut dtls = lwm2m_server::DtlsConfig::new(keys.clone());
    dtls.addr = lw.dtls_addr;
    let (lwm2m, lwm2m_task) = lwm2m_server::LwM2mServer::start(lwm2m_server::ServerConfig {
        coap_addr: lw.addr,
        admin_addr: Some(lw.admin_addr),
        registry: registry.clone(),
        dtls: Some(dtls),
        nosec: lw.nosec,
        // A device's Send is acknowledged once the bridge has it on the ledger (or refused, or 5.03).
        send_receipt_timeout: Some(SEND_RECEIPT_TIMEOUT),
        ..Default::default()
    })
    .await
    .context("starting the LwM2M server")?;
    crate::operations::watch_lwm2m(&ops, &lwm2m);
    crate::operations::ready_while_running(&ops, "LwM2M server", lwm2m_task.abort_handle());
    // The bootstrap server, provisioning from the same credentials.
    let host = match &lw.advertised_host {
        Some(h) => h.clone(),
        None if lw.addr.ip().is_unspecified() => "127.0.0.1".to_owned(),
        None => lw.addr.ip().to_string(),
    };
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
    let dtls_port = lwm2m.dtls_addr().map_or(lw.dtls_addr.port(), |a| a.port());
    let dtls_uri = format!("coaps://{host}:{dtls_port}");
    let nosec_uri = (lw.nosec).then(|| format!("coap://{host}:{}", lwm2m.coap_addr().port()));
    let provisioner = lwm2m_server::CredentialProvisioner::new(keys.clone(), dtls_uri.clone(), nosec_uri);
    let mut bs_config = lwm2m_server::BootstrapServerConfig::new(std::sync::Arc::new(provisioner));
    bs_config.nosec_addr = (lw.nosec).then_some(lw.bootstrap_addr);
    bs_config.dtls = Some(lwm2m_server::bootstrap::bootstrap_dtls(&keys, lw.bootstrap_dtls_addr));
    let (bootstrap, bootstrap_task) = lwm2m_server::BootstrapServer::start(bs_config)
        .await
        .context("starting the LwM2M bootstrap server")?;
    // The bridge gateway between them, through the ledger.
    let mut gateway = None;
    if gw.enabled {
        // The local network's starter policy; a ledger elsewhere is governed by its own admins.
        let (version, installed) =
            if ledger.is_none() { crate::gateway::starter_policy(&dir).await? } else { (0, false) };
        if installed {
            println!(
                "installed the starter access policy (version {version}): every application `C*` may do \
                 everything on every device; change it with `ipechain policy`"
            );
        }
        let choice = match (&remote, &cse_running) {
            (Some((authority, base, https)), _) => {
                crate::gateway::Onem2mChoice::Remote(Box::new(crate::gateway::RemoteCse {
                    authority: authority.clone(),
                    base: base.clone(),
                    https: *https,
                    tls: mca_client_tls.clone(),
                    listen: gw.notify_addr,
                    listen_tls: if gw.notify_tls {
                        Some(
                            cse_server_tls
                                .clone()
                                .context("no peer TLS material for the notification listener")?,
                        )
                    } else {
                        None
                    },
                }))
            }
            (None, Some((cse, _))) => crate::gateway::Onem2mChoice::Embedded(cse.clone()),
            (None, None) => anyhow::bail!("no oneM2M side"),
        };
        let clients = match configured_clients.take() {
            Some(c) => c,
            None => crate::gateway::bridge_clients(&dir, None)?,
        };
        let g = crate::gateway::start(
            &dir,
            clients,
            lwm2m.clone(),
            registry.clone(),
            choice,
            ops.metrics.bridge.clone(),
        )
        .await?;
        crate::operations::watch_bridge(&ops, &g);
        crate::operations::watch_bridge_health(
            &ops,
            &g,
            std::time::Duration::from_secs(gw.health_grace_secs),
            gw.max_lag_blocks,
        );
        gateway = Some(g);
    }
    ops.set_ready();

    println!();
    match (&channel_name, &ledger) {
        (Some(c), _) => println!("ipechain is up: channel `{c}`"),
        (None, Some(l)) => {
            println!("ipechain gateway is up: channel `{}`, chaincode `{}`", l.channel, l.chaincode)
        }
        (None, None) => {}
    }
    match (&remote, cse_cfg.remote.as_deref()) {
        (Some(_), Some(url)) => {
            println!(
                "  oneM2M   remote CSE (Mca/HTTP)         {url}   (joined as IPE AE {})",
                crate::gateway::IPE_AE
            );
        }
        _ => {
            println!(
                "  oneM2M   embedded CSE (Mca/HTTP)       http://{}/{}   (CSE-ID {}, admin {})",
                cse_cfg.addr, cse_cfg.base_name, cse_cfg.id, cse_cfg.admin
            );
            if let Some((a, _)) = &cse_https {
                println!(
                    "  oneM2M   embedded CSE (Mca/HTTPS)      https://{a}/{}   (peer0.org1's TLS certificate)",
                    cse_cfg.base_name
                );
            }
        }
    }
    if gateway.is_some() {
        println!(
            "  gateway  bridge: devices appear as AEs `C<endpoint>`; write requests into <AE>/cmd, answers \
             arrive in <AE>/rsp"
        );
    }
    println!("  LwM2M    server (CoAP/UDP)             coap://{}", lwm2m.coap_addr());
    if let Some(a) = lwm2m.dtls_addr() {
        println!(
            "  LwM2M    server (CoAP/DTLS)            coaps://{a}   (`ipechain device add` binds devices)"
        );
    }
    if let Some(a) = bootstrap.nosec_addr() {
        println!("  LwM2M    bootstrap (CoAP/UDP)          coap://{a}   (endpoints without credentials)");
    }
    if let Some(a) = bootstrap.dtls_addr() {
        println!("  LwM2M    bootstrap (CoAP/DTLS)         coaps://{a}   (hands out {dtls_uri})");
    }
    if let Some(a) = lwm2m.admin_addr() {
        println!("  LwM2M    admin REST API                http://{a}/api/clients");
    }
    if let Some((a, _)) = &ops_running {
        println!("  ops      /metrics /healthz /readyz     {a}");
    }
    for (name, addr, _) in &orderers {
        println!("  orderer  {name:<28} grpcs://{addr}");
    }
    for (name, addr, p) in &peers {
        println!("  peer     {name:<28} grpcs://{addr}   (height {})", p.ledger.height());
    }
    if let Some(a) = ipe_server {
        println!("  chaincode ipe (external, chaincode as a service)  grpc://{a}");
    }
    if ledger.is_none() {
        println!(
            "  client identities and TLS material: {}",
            dir.crypto_dir().join("peerOrganizations").display()
        );
        println!("  `ipechain status --data-dir {}` shows every node; Ctrl-C stops.", dir.root().display());
    } else {
        println!("  Ctrl-C stops.");
    }
    let demo_stop = CancellationToken::new();
    let demo = if demo {
        let (authority, base) = match &remote {
            Some((a, b, _)) => (a.clone(), b.clone()),
            None => (cse_cfg.addr.to_string(), cse_cfg.base_name.clone()),
        };
        println!();
        println!(
            "demo: simulated devices and a oneM2M application; every IPE transaction is printed as it commits"
        );
        Some(tokio::spawn(crate::demo::run(
            dir.clone(),
            authority,
            base,
            lwm2m.coap_addr(),
            demo_stop.clone(),
        )))
    } else {
        None
    };
    signal.wait().await;
    tracing::info!("shutting down");
    demo_stop.cancel();
    if let Some(d) = demo {
        match d.await {
            Ok(Err(e)) => tracing::error!("demo: {e:#}"),
            Err(e) => tracing::error!("demo task: {e}"),
            Ok(Ok(())) => {}
        }
    }
    if let Some(g) = gateway {
        g.shutdown().await;
    }
    stop.cancel();
    let _ = creds_task.await;
    lwm2m.shutdown();
    let _ = lwm2m_task.await;
    bootstrap.shutdown();
    let _ = bootstrap_task.await;
    if let Some((_, t)) = cse_https {
        match t.await {
            Ok(Err(e)) => tracing::error!("CSE (HTTPS): {e}"),
            Err(e) => tracing::error!("CSE HTTPS task: {e}"),
            Ok(Ok(())) => {}
        }
    }
    if let Some((cse, cse_task)) = cse_running {
        match cse_task.await {
            Ok(Err(e)) => tracing::error!("CSE: {e}"),
            Err(e) => tracing::error!("CSE task: {e}"),
            Ok(Ok(())) => {}
        }
        cse.close().await;
    }
    for (name, _, p) in peers {
        if let Err(e) = p.stopped().await {
            tracing::error!("{name}: {e}");
        }
    }
    for w in watches {
        let _ = w.await;
    }
    for (_, _, o) in orderers {
        o.shutdown().await;
    }
    orderer_runtimes.shutdown().await;
    if let Some(t) = chaincode_task {
        match tokio::task::spawn_blocking(move || t.join()).await {
            Ok(Ok(Err(e))) => tracing::error!("IPE chaincode server: {e:#}"),
            Ok(Err(_)) | Err(_) => tracing::error!("the IPE chaincode server's thread failed"),
            Ok(Ok(Ok(()))) => {}
        }
    }
    ops_stop.cancel();
    if let Some((_, t)) = ops_running {
        let _ = t.await;
    }
    Ok(())
}

/// The contracts every peer of an ipechain network has built in: the IPE (interworking proxy) and the `kv`
/// sample used by tests and the ledger benchmark. The ledger's node assembly (`network`) takes them from
/// here: it knows no contract of its own.
pub(crate) fn installed_contracts() -> Vec<std::sync::Arc<dyn contract::Contract>> {
    vec![std::sync::Arc::new(ipe::IpeContract::default()), std::sync::Arc::new(contract::samples::KvContract)]
}
