//! `ipechain up --demo`: simulated LwM2M devices and a oneM2M application, and a live trace of both flows
//! crossing the ledger (block number, transaction id), so a newcomer sees the system work within seconds.
//!
//! - 3 simulated LwM2M 1.1 devices (`demo-dev-0..2`, the `lwm2m-sim` crate over real UDP) register with the
//!   LwM2M server; the gateway records them on the ledger and creates their AEs on the oneM2M side.
//! - The oneM2M application `Cdemo-app` (Mca over HTTP, as any oneM2M application) subscribes to each
//!   device's `rsp` container and, every few seconds, writes a read request into a device's `cmd` container
//!   (flow 1: oneM2M → LwM2M); every third round it asks a device to Send its sensors (flow 2: LwM2M →
//!   oneM2M data reports).
//! - Every IPE contract event is printed as it is committed: block, tx id, what it is.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use ipe::IpeEvent;
use ledger_client::Checkpoint;
use mca_client::{McaClient, McaConfig, NotificationListener};
use onem2m::{Operation, Rsc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const APP: &str = "Cdemo-app";
const DEVICES: usize = 3;

/// Runs the demo until `stop`.
pub(crate) async fn run(
    dir: network::DataDir,
    cse_authority: String,
    cse_base: String,
    coap: SocketAddr,
    stop: CancellationToken,
) -> Result<()> {
    let watcher = tokio::spawn(watch_ledger(dir, stop.clone()));
    let sim = lwm2m_sim::Simulator::start(lwm2m_sim::SimConfig {
        server: SocketAddr::from(([127, 0, 0, 1], coap.port())),
        clients: DEVICES,
        endpoint_prefix: "demo-dev-".into(),
        lifetime: 120,
        notify_interval: None,
        ..lwm2m_sim::SimConfig::default()
    })
    .await
    .context("starting the simulated devices")?;
    println!("[demo] {DEVICES} simulated LwM2M devices demo-dev-0..{} registering over CoAP", DEVICES - 1);

    let mut notes = NotificationListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let mca = McaClient::new(McaConfig::new(cse_authority, APP));
    mca.register_ae(&cse_base, "demo-app", "Ndemo", vec![notes.url()], vec![]).await?;
    println!("[demo] oneM2M application {APP} registered at the CSE");
    // Wait for the devices' AEs (made by the gateway from the ledger's device.registered events).
    for i in 0..DEVICES {
        let ae = format!("Cdemo-dev-{i}");
        loop {
            if stop.is_cancelled() {
                return Ok(());
            }
            let target = format!("{cse_base}/{ae}/rsp");
            if mca.create_subscription(&target, "demo-app", vec![notes.url()], &[3]).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        println!("[demo] {APP} subscribed to {ae}/rsp");
    }
    let printer = tokio::spawn(async move {
        while let Some(n) = notes.recv().await {
            let Some(con) = n.representation().and_then(|c| c.get("con")) else { continue };
            let con = match con {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                v => v.clone(),
            };
            if let Some(id) = con.get("request_id").and_then(Value::as_str) {
                let values = con.pointer("/content/values").map(short_values).unwrap_or_default();
                println!(
                    "[demo] {APP} ← rsp: {id} {} rsc {} {values}",
                    con["status"].as_str().unwrap_or("?"),
                    con["rsc"]
                );
            }
        }
    });
    // Request ids are used once forever: this run's ids carry its start time.
    #[allow(clippy::disallowed_methods)] // the demo's one clock read, for unique ids
    let run_tag =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut round = 0u64;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(3)) => {}
        }
        round += 1;
        let dev = (round as usize) % DEVICES;
        let ae = format!("Cdemo-dev-{dev}");
        let id = format!("demo-{run_tag:x}-{round}");
        let path = if round.is_multiple_of(2) { "/3304/0/5700" } else { "/3303/0/5700" };
        println!("[demo] {APP} → {ae}/cmd: read {path} (request {id})");
        let mut req = mca.request(Operation::Create, &format!("{cse_base}/{ae}/cmd"));
        req.ty = Some(4);
        req.pc =
            Some(json!({"m2m:cin": {"cr": null, "con": {"request_id": id, "op": "read", "path": path}}}));
        match mca.send(&req).await {
            Ok(r) if r.rsc == Rsc::Created => {}
            Ok(r) => println!("[demo] the CSE refused the request: {}", r.rsc),
            Err(e) => println!("[demo] the CSE is unreachable: {e}"),
        }
        if round.is_multiple_of(3) {
            println!("[demo] devices Send their temperature and humidity (LwM2M Send, SenML CBOR)");
            sim.send_all().await;
        }
    }
    sim.stop();
    printer.abort();
    watcher.abort();
    Ok(())
}

fn short_values(v: &Value) -> String {
    let Some(o) = v.as_object() else { return String::new() };
    o.iter()
        .map(|(p, r)| {
            let unit = r.get("unit").and_then(Value::as_str).unwrap_or("");
            format!("{p} = {} {unit}", r.get("v").cloned().unwrap_or(Value::Null)).trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints every IPE event as it is committed.
async fn watch_ledger(dir: network::DataDir, stop: CancellationToken) {
    let c = match crate::gateway::client(&dir, 0, "User1") {
        Ok(c) => c,
        Err(e) => {
            println!("[ledger] cannot watch the ledger: {e:#}");
            return;
        }
    };
    let height = crate::gateway::height(&dir).await.unwrap_or(0);
    let Ok(mut events) =
        c.gateway.contract_events(ipe::NAME, Checkpoint { block: height, tx_id: None }).await
    else {
        return;
    };
    loop {
        let ev = tokio::select! {
            () = stop.cancelled() => return,
            ev = events.next() => ev,
        };
        let Ok(Some(ev)) = ev else { return };
        let tx = ev.event.tx_id.get(..8).unwrap_or(&ev.event.tx_id).to_owned();
        let what = match IpeEvent::parse(&ev.event.event_name, &ev.event.payload) {
            Ok(Some(IpeEvent::DeviceRegistered(d))) => {
                format!("device.registered {} → AE {}", d.device.endpoint, d.device.ae_id)
            }
            Ok(Some(IpeEvent::DeviceUpdated(d))) => format!("device.updated {}", d.device.endpoint),
            Ok(Some(IpeEvent::DeviceDeregistered(d))) => format!("device.deregistered {}", d.device.endpoint),
            Ok(Some(IpeEvent::Request(r))) => format!(
                "request {} from {}: {:?} {} on {} → gateway",
                r.request_id, r.originator, r.downlink.op, r.downlink.path, r.endpoint
            ),
            Ok(Some(IpeEvent::Response(r))) => format!(
                "response {}: {} ({}) {} → {}",
                r.request_id,
                r.outcome.status,
                r.outcome.rsc,
                r.outcome.content.get("values").map(short_values).unwrap_or_default(),
                match &r.to {
                    ipe::model::Address::Originator { id } => id.as_str(),
                    _ => "?",
                }
            ),
            Ok(Some(IpeEvent::Report(r))) => {
                format!(
                    "report ({}) from {}: {}",
                    r.kind,
                    r.endpoint,
                    r.content.get("values").map(short_values).unwrap_or_default()
                )
            }
            Ok(Some(IpeEvent::DeviceRequest(d))) => {
                format!("device.request {} from {}: {}", d.request_id, d.endpoint, d.topic)
            }
            Ok(Some(IpeEvent::DeviceAnswer(a))) => {
                format!("device.answer {}: {}", a.request_id, a.answer.status)
            }
            Ok(Some(IpeEvent::PolicyChanged(p))) => format!("policy.changed version {}", p.version),
            _ => ev.event.event_name.clone(),
        };
        println!("[ledger] block {:>5} tx {tx}  {what}", ev.block);
    }
}
