//! LwM2M → ledger: the LwM2M server's events become IPE transactions, in order per device (a report never
//! overtakes the registration it depends on), concurrently across devices.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ipe::model::{DeregisterArgs, DeviceRequestArgs, RegisterArgs, ReportArgs, UpdateArgs};
use ipe::translate::records_to_json;
use ipe::{IpeCall, Refusal};
use lwm2m::codec::Record;
use lwm2m_server::{ClientInfo, ServerEvent};
use serde_json::{Value as Json, json};
use tokio::sync::{broadcast, mpsc};

use crate::journal::Entry;
use crate::{DEVICE_REQUEST_OBJECT, Shared, ledger};

/// Runs until the bridge stops.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut rx = shared.cfg.lwm2m.subscribe_events();
    let mut workers: HashMap<String, mpsc::UnboundedSender<ServerEvent>> = HashMap::new();
    // Devices that registered before the bridge subscribed (a restart): register them again (a re-registration
    // keeps the AE-ID and only refreshes the record).
    for c in shared.cfg.lwm2m.clients().await {
        dispatch(&shared, &mut workers, ServerEvent::Registered(c));
    }
    loop {
        let ev = tokio::select! {
            () = shared.stop.cancelled() => return,
            ev = rx.recv() => ev,
        };
        match ev {
            Ok(ev) => dispatch(&shared, &mut workers, ev),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // Events were lost in the server's channel: re-sync the registrations; lost notifications
                // cannot be recovered (the next one carries the current value).
                tracing::warn!(
                    lost = n,
                    "LwM2M events lost (the ledger is slower than the devices); re-syncing"
                );
                shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                for c in shared.cfg.lwm2m.clients().await {
                    dispatch(&shared, &mut workers, ServerEvent::Updated(c));
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn endpoint_of(ev: &ServerEvent) -> Option<&str> {
    Some(match ev {
        ServerEvent::Registered(c) | ServerEvent::Updated(c) => &c.endpoint,
        ServerEvent::Deregistered { endpoint, .. }
        | ServerEvent::Expired { endpoint, .. }
        | ServerEvent::Notification { endpoint, .. }
        | ServerEvent::Send { endpoint, .. } => endpoint,
        _ => return None,
    })
}

fn dispatch(
    shared: &Arc<Shared>,
    workers: &mut HashMap<String, mpsc::UnboundedSender<ServerEvent>>,
    ev: ServerEvent,
) {
    let Some(ep) = endpoint_of(&ev).map(str::to_owned) else { return };
    let tx = workers.entry(ep).or_insert_with(|| {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(worker(shared.clone(), rx));
        tx
    });
    let _ = tx.send(ev);
}

async fn worker(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<ServerEvent>) {
    while let Some(ev) = rx.recv().await {
        if let Err(e) = handle(&shared, ev).await {
            shared.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "LwM2M event not recorded on the ledger");
        }
    }
}

fn register_call(c: &ClientInfo) -> IpeCall {
    IpeCall::RegisterDevice(RegisterArgs {
        endpoint: c.endpoint.clone(),
        lwm2m_version: Some(c.version.as_str().to_owned()),
        lifetime: Some(c.lifetime),
        binding: Some(c.binding.clone()),
        queue_mode: c.queue_mode,
        links: lwm2m::link::format(&c.links),
        mode: None,
    })
}

fn deregister_call(endpoint: String, reason: &str) -> IpeCall {
    IpeCall::DeregisterDevice(DeregisterArgs { endpoint, reason: Some(reason.to_owned()) })
}

fn report_call(
    report_id: String,
    endpoint: String,
    kind: &str,
    observe_request_id: Option<String>,
    path: String,
    records: &[Record],
) -> IpeCall {
    IpeCall::Report(ReportArgs {
        report_id,
        endpoint,
        kind: kind.to_owned(),
        observe_request_id,
        path: Some(path),
        records: Some(records_json(records)),
        payload: None,
        content_format: None,
    })
}

async fn handle(shared: &Arc<Shared>, ev: ServerEvent) -> Result<(), ledger::SubmitError> {
    let ipe = shared.cfg.lwm2m_ledger.contract(&shared.cfg.ipe_contract);
    match ev {
        ServerEvent::Registered(c) => {
            ledger::submit(&ipe, &register_call(&c)).await?;
        }
        ServerEvent::Updated(c) => {
            let update = IpeCall::UpdateDevice(UpdateArgs {
                endpoint: c.endpoint.clone(),
                lifetime: Some(c.lifetime),
                binding: Some(c.binding.clone()),
                queue_mode: Some(c.queue_mode),
                links: Some(lwm2m::link::format(&c.links)),
            });
            match ledger::submit(&ipe, &update).await {
                // Not on the ledger yet (its registration was lost): register it.
                Err(e) if e.refusal() == Some(Refusal::NotFound) => {
                    ledger::submit(&ipe, &register_call(&c)).await?;
                }
                r => {
                    r?;
                }
            }
        }
        ServerEvent::Deregistered { endpoint, .. } => {
            forget_observations(shared, &endpoint);
            ignore_404(ledger::submit(&ipe, &deregister_call(endpoint, "deregistered")).await)?;
        }
        ServerEvent::Expired { endpoint, .. } => {
            forget_observations(shared, &endpoint);
            ignore_404(ledger::submit(&ipe, &deregister_call(endpoint, "expired")).await)?;
        }
        ServerEvent::Notification { endpoint, path, code, records } => {
            if !code.is_success() {
                return Ok(());
            }
            let observe =
                shared.observations.lock().ok().and_then(|m| m.get(&(endpoint.clone(), path)).cloned());
            let call =
                report_call(shared.next_id("n"), endpoint, "notify", observe, path.to_string(), &records);
            ledger::submit(&ipe, &call).await?;
        }
        ServerEvent::Send { endpoint, records } => {
            let (req, data): (Vec<Record>, Vec<Record>) =
                records.into_iter().partition(|r| r.path.object() == Some(DEVICE_REQUEST_OBJECT));
            if !data.is_empty() {
                let call =
                    report_call(shared.next_id("s"), endpoint.clone(), "send", None, "/".into(), &data);
                ledger::submit(&ipe, &call).await?;
            }
            if !req.is_empty() {
                device_request(shared, &ipe, &endpoint, &req).await?;
            }
        }
        _ => return Ok(()),
    }
    shared.stats.uplink_tx.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn ignore_404(r: Result<Option<Vec<u8>>, ledger::SubmitError>) -> Result<(), ledger::SubmitError> {
    match r {
        Err(e) if e.refusal() == Some(Refusal::NotFound) => Ok(()),
        r => r.map(|_| ()),
    }
}

fn forget_observations(shared: &Shared, endpoint: &str) {
    if let Ok(mut m) = shared.observations.lock() {
        m.retain(|(ep, _), _| ep != endpoint);
    }
}

fn records_json(records: &[Record]) -> Json {
    records_to_json(records).unwrap_or_else(|_| Json::Array(Vec::new()))
}

/// A device's request (scenario 2): topic `/32769/x/0`, body `/32769/x/2` (JSON text, or any text).
async fn device_request(
    shared: &Arc<Shared>,
    ipe: &ledger_client::ContractClient,
    endpoint: &str,
    records: &[Record],
) -> Result<(), ledger::SubmitError> {
    let field = |res: u16| {
        records.iter().find(|r| r.path.resource() == Some(res)).and_then(|r| match &r.value {
            lwm2m::Value::String(s) => Some(s.clone()),
            _ => None,
        })
    };
    let topic = field(0).unwrap_or_else(|| "request".into());
    let body = field(2).unwrap_or_default();
    let body_json: Json = serde_json::from_str(&body).unwrap_or(Json::String(body));
    let id = shared.next_id("d");
    let call = IpeCall::DeviceRequest(DeviceRequestArgs {
        request_id: id.clone(),
        endpoint: endpoint.to_owned(),
        target: body_json.get("target").and_then(Json::as_str).map(str::to_owned),
        topic,
        records: Some(json!([{"path": format!("/{DEVICE_REQUEST_OBJECT}/0/2"), "type": "STRING",
                              "v": body_json.to_string()}])),
        payload: None,
        content_format: None,
        timeout: Some(shared.cfg.device_request_timeout),
    });
    let rec = ledger::submit(ipe, &call).await?;
    let exp = rec
        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
        .and_then(|r| r.get("expires_at").and_then(Json::as_i64))
        .unwrap_or_else(|| crate::unix_now() + i64::from(shared.cfg.device_request_timeout));
    if let Err(e) = shared.journal.append_durable(Entry::Dreq { id: id.clone(), exp }).await {
        tracing::error!(error = %e, "journal");
    }
    tokio::spawn(crate::events::device_request_timer(shared.clone(), id, exp));
    Ok(())
}
