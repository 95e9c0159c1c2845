//! LwM2M → ledger: the shell of the uplink flow ([`crate::core::uplink::UplinkCore`]). One task owns the core:
//! it feeds it the LwM2M server's events, the downlink's observations (through the uplink task's channel), the
//! results of its commands (each submission and durable journal append in a task of its own, reporting back
//! through the same channel) and its timer (the devices' requests' expiries).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lwm2m_server::ServerEvent;
use tokio::sync::{broadcast, mpsc};

use crate::core::JournalFailure;
use crate::core::uplink::{UplinkCommand, UplinkCore, UplinkInput, UplinkOutcome, UplinkSubmitResult};
use crate::core::{LedgerFailure, UnixMillis};
use crate::{Shared, ledger};

/// Runs until the bridge stops. `open_device_requests` are the journal's (their timers are armed again);
/// `inbox` is the receiving end of [`Shared::uplink`].
pub(crate) async fn run(
    shared: Arc<Shared>,
    open_device_requests: Vec<(String, i64)>,
    mut inbox: mpsc::UnboundedReceiver<UplinkInput>,
) {
    let mut core = UplinkCore::new(
        shared.cfg.name.clone(),
        crate::boot_tag(),
        shared.cfg.device_request_timeout,
        open_device_requests,
    );
    let mut rx = shared.cfg.lwm2m.subscribe_events();
    // Devices that registered before the bridge subscribed (a restart): register them again (a re-registration
    // keeps the AE-ID and only refreshes the record).
    for c in shared.cfg.lwm2m.clients().await {
        feed(&shared, &mut core, UplinkInput::Server(ServerEvent::Registered(c)));
    }
    let mut server_open = true;
    loop {
        let input = tokio::select! {
            () = shared.stop.cancelled() => return,
            ev = rx.recv(), if server_open => match ev {
                Ok(ev) => UplinkInput::Server(ev),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // Events were lost in the server's channel: re-sync the registrations; lost notifications
                    // cannot be recovered (the next one carries the current value).
                    tracing::warn!(
                        lost = n,
                        "LwM2M events lost (the ledger is slower than the devices); re-syncing"
                    );
                    shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                    for c in shared.cfg.lwm2m.clients().await {
                        feed(&shared, &mut core, UplinkInput::Server(ServerEvent::Updated(c)));
                    }
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    server_open = false;
                    continue;
                }
            },
            i = inbox.recv() => match i { Some(i) => i, None => return },
            () = crate::events::sleep_until(core.poll_timeout()) => UplinkInput::Timer,
        };
        feed(&shared, &mut core, input);
    }
}

fn feed(shared: &Arc<Shared>, core: &mut UplinkCore, input: UplinkInput) {
    core.handle(crate::unix_now_ms(), input);
    while let Some(cmd) = core.poll_command() {
        perform(shared, cmd);
    }
}

fn submit_result(r: Result<Option<Vec<u8>>, ledger::SubmitError>) -> UplinkSubmitResult {
    match r {
        Ok(b) => UplinkSubmitResult::Committed(b),
        Err(ledger::SubmitError::Refused { status, message, .. }) => {
            UplinkSubmitResult::Refused { status, message }
        }
        Err(e) => UplinkSubmitResult::Failed(LedgerFailure(e.to_string())),
    }
}

/// Performs one of the core's commands; what has a result reports back through [`Shared::uplink`].
fn perform(shared: &Arc<Shared>, cmd: UplinkCommand) {
    let s = shared.clone();
    match cmd {
        UplinkCommand::Submit { endpoint, call } => {
            tokio::spawn(async move {
                let ipe = s.cfg.lwm2m_ledger.contract(&s.cfg.ipe_contract);
                let result = submit_result(ledger::submit(&ipe, &call).await);
                let _ = s.uplink.send(UplinkInput::Submitted { endpoint, result });
            });
        }
        UplinkCommand::Journal { entry, durable: false, .. } => shared.journal.append(entry),
        UplinkCommand::Journal { endpoint, entry, durable: true } => {
            tokio::spawn(async move {
                let result = s.journal.append_durable(entry).await.map_err(|e| {
                    tracing::error!(error = %e, "journal");
                    JournalFailure(e.to_string())
                });
                let _ = s.uplink.send(UplinkInput::Journaled { endpoint, result });
            });
        }
        UplinkCommand::SubmitTimeout { request_id, call } => {
            tokio::spawn(async move {
                let ipe = s.cfg.lwm2m_ledger.contract(&s.cfg.ipe_contract);
                let result = submit_result(ledger::submit(&ipe, &call).await);
                if let UplinkSubmitResult::Failed(e) = &result {
                    tracing::warn!(request = %request_id, error = %e, "closing a device request; retrying");
                }
                let _ = s.uplink.send(UplinkInput::TimeoutSubmitted { request_id, result });
            });
        }
        UplinkCommand::Outcome { outcome: UplinkOutcome::Recorded, .. } => {
            shared.stats.uplink_tx.fetch_add(1, Ordering::Relaxed);
        }
        UplinkCommand::Outcome { outcome: UplinkOutcome::TimedOut, .. } => {
            shared.stats.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        UplinkCommand::Outcome { subject, outcome: UplinkOutcome::NotRecorded(why) } => {
            shared.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(subject = %subject, error = %why, "LwM2M event not recorded on the ledger");
        }
    }
}

/// The time until `t` (zero if it passed).
pub(crate) fn until(t: UnixMillis) -> Duration {
    Duration::from_millis(u64::try_from(t.0.saturating_sub(crate::unix_now_ms().0)).unwrap_or(0))
}
