//! The bridge's shell: one loop (`run`) over one channel of messages (`Msg`) that owns the four cores and
//! performs their commands. Ledger → gateway: the IPE contract's events, consumed from a persisted checkpoint;
//! the requests applications write into `cmd` containers; and the LwM2M server's events (their commands in
//! [`crate::uplink`]).
//!
//! ```text
//!  contract events (read_events task) ──┐                   ┌─► DownlinkCore ─► device ops, answers; events
//!  LwM2M server events (broadcast) ─────┤                   │     handled elsewhere ─► Onem2mCore ─► trees,
//!  CSE notifications (read in tasks) ───┼─► run: select! ──►│     contentInstances (a queue per AE, retries)
//!  cmd backlog scan (task) ─────────────┤   + cores' timer  ├─► CmdCore ─► submit_request, rejections
//!  command results (tasks) ─────────────┘   + 200 ms save   └─► UplinkCore ─► register, report,
//!                                                                 device_request, timeouts
//! ```
//!
//! The checkpoint is the last event of an unbroken run of fully handled events (a low watermark): events are
//! handled concurrently, and a restart resumes after the watermark, so an event that was being handled when the
//! gateway died is handled again. That is harmless by construction (see the crate docs).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ipe::IpeEvent;
use ipe::events::{DeviceAnswerEvent, RequestEvent};
use ipe::model::{Address, ListDevicesArgs, Operation};
use ipe::{IpeCall, Refusal};
use ledger_client::{Checkpoint, FileCheckpointer};
use lwm2m::ops::{Attributes, WriteMode};
use lwm2m::{ContentFormat, LwM2mPath, Record};
use lwm2m_server::{OpError, OpResponse};
use serde_json::Value as Json;
use tokio::sync::mpsc;

use crate::journal::Entry;
use crate::{Shared, ledger};

use crate::core::cmd::{CmdCommand, CmdCore, CmdInput, CmdOutcome, CmdSubmitResult, Known};
pub use crate::core::cmd::{CmdSubmission, cin_name, cmd_submission};
pub use crate::core::onem2m::answer_last;
use crate::core::onem2m::{Onem2mCommand, Onem2mCore, Onem2mFailure, Onem2mInput, Onem2mJob, job_for};
use crate::core::uplink::{UplinkCore, UplinkInput};
use crate::core::{
    Command, DownlinkCore, EventSeq, EventWork, Input, JournalFailure, LedgerFailure, RequestStatus,
    SubmitResult,
};
pub use crate::core::{Tracker, response_args};
use lwm2m_server::ServerEvent;
use tokio::sync::broadcast;

/// What the shell's loop hears: the event stream's events (with the contract's reading of them), and every
/// other input of the four cores (the results of their commands, performed in tasks, come back here too).
pub(crate) enum Msg {
    Event { block: u64, tx_id: String, event: Option<Box<IpeEvent>> },
    Input(Input),
    Cmd(CmdInput),
    Uplink(UplinkInput),
    Onem2m(Onem2mInput),
}

/// Where the shell's work reports back to the loop.
#[derive(Clone)]
pub(crate) struct Inbox(pub(crate) mpsc::UnboundedSender<Msg>);

impl Inbox {
    fn input(&self, i: Input) {
        let _ = self.0.send(Msg::Input(i));
    }

    pub(crate) fn done(&self, seq: EventSeq) {
        self.input(Input::EventHandled { seq });
    }

    pub(crate) fn cmd(&self, i: CmdInput) {
        let _ = self.0.send(Msg::Cmd(i));
    }

    pub(crate) fn uplink(&self, i: UplinkInput) {
        let _ = self.0.send(Msg::Uplink(i));
    }

    fn onem2m(&self, i: Onem2mInput) {
        let _ = self.0.send(Msg::Onem2m(i));
    }
}

/// The cores the loop owns.
struct Cores {
    downlink: DownlinkCore,
    cmd: CmdCore,
    uplink: UplinkCore,
    onem2m: Onem2mCore,
}

impl Cores {
    fn poll_timeout(&self) -> Option<crate::core::UnixMillis> {
        [
            self.downlink.poll_timeout(),
            self.cmd.poll_timeout(),
            self.uplink.poll_timeout(),
            self.onem2m.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// The bridge's one loop, until the bridge stops: it owns the cores ([`DownlinkCore`]: the downlink flow and
/// the watermark; [`CmdCore`]: requests from `cmd` containers; [`UplinkCore`]: the LwM2M server's events;
/// [`Onem2mCore`]: the oneM2M side of events), feeds them the contract's events, the LwM2M server's events,
/// the CSE's notifications, the results of their commands and their timers, and performs their commands (those
/// doing I/O in tasks of their own, reporting back through the [`Inbox`]). `interrupted` and
/// `open_device_requests` are the journal's open entries.
pub(crate) async fn run(
    shared: Arc<Shared>,
    interrupted: Vec<String>,
    open_device_requests: Vec<(String, i64)>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    mut notifications: mpsc::UnboundedReceiver<crate::Notified>,
) {
    let cp_file = FileCheckpointer::new(shared.cfg.state_dir.join("events.checkpoint"));
    let start = match cp_file.load().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "unreadable event checkpoint; starting from the chain's beginning");
            Checkpoint::default()
        }
    };
    let mut cores = Cores {
        downlink: DownlinkCore::new(shared.cfg.lwm2m_identity.clone(), start.clone(), interrupted),
        cmd: CmdCore::new(shared.cfg.onem2m.no_creator_reason()),
        uplink: UplinkCore::new(
            shared.cfg.name.clone(),
            crate::boot_tag(),
            shared.cfg.device_request_timeout,
            open_device_requests,
        ),
        onem2m: Onem2mCore::new(),
    };
    let inbox = shared.inbox.clone();
    // The watched peers' streams: the LwM2M side's from the checkpoint's block (it learns which blocks hold
    // IPE events), the others from their next block (reachability only).
    let mut tasks: Vec<_> = shared
        .cfg
        .watch
        .iter()
        .zip(shared.view.peers())
        .map(|(link, status)| {
            let lwm2m = link.side == crate::head::Side::Lwm2m;
            tokio::spawn(crate::head::watch(
                link.clone(),
                status.clone(),
                shared.view.clone(),
                lwm2m.then(|| shared.cfg.ipe_contract.clone()),
                lwm2m.then_some(start.block),
                shared.cfg.metrics.clone(),
                shared.stop.clone(),
            ))
        })
        .collect();
    tasks.push(tokio::spawn(read_events(shared.clone(), start, inbox.clone())));
    tasks.push(tokio::spawn(cmd_backlog(shared.clone(), inbox.clone())));
    let mut server = shared.cfg.lwm2m.subscribe_events();
    // Devices that registered before the bridge subscribed (a restart): register them again (a re-registration
    // keeps the AE-ID and only refreshes the record).
    for c in shared.cfg.lwm2m.clients().await {
        feed_uplink(&shared, &mut cores, UplinkInput::Server(ServerEvent::Registered(c)));
    }
    let mut to_save: Option<Checkpoint> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut server_open, mut notifications_open) = (true, true);
    loop {
        let msg = tokio::select! {
            () = shared.stop.cancelled() => break,
            m = rx.recv() => match m { Some(m) => m, None => break },
            ev = server.recv(), if server_open => match ev {
                Ok(ev) => {
                    if let ServerEvent::Registered(c) = &ev {
                        // Requests waiting for the device to come online are performed now.
                        let endpoint = c.endpoint.clone();
                        let input = Input::DeviceRegistered { endpoint };
                        feed_downlink(&shared, &mut cores, &mut to_save, input, None);
                    }
                    Msg::Uplink(UplinkInput::Server(ev))
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // Events were lost in the server's channel: re-sync the registrations; lost notifications
                    // cannot be recovered (the next one carries the current value).
                    tracing::warn!(
                        lost = n,
                        "LwM2M events lost (the ledger is slower than the devices); re-syncing"
                    );
                    shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                    for c in shared.cfg.lwm2m.clients().await {
                        feed_uplink(&shared, &mut cores, UplinkInput::Server(ServerEvent::Updated(c)));
                    }
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    server_open = false;
                    continue;
                }
            },
            n = notifications.recv(), if notifications_open => {
                match n {
                    // Who created the contentInstance is read from the CSE in a task; the core hears the result.
                    Some(body) => {
                        let (s, inbox) = (shared.clone(), inbox.clone());
                        tokio::spawn(async move {
                            if let Some(req) = read_notified(&s, &body).await {
                                inbox.cmd(CmdInput::Notified(Box::new(req)));
                            }
                        });
                    }
                    None => notifications_open = false,
                }
                continue;
            }
            () = sleep_until(cores.poll_timeout()) => {
                // Each core acts only on what is due.
                feed_downlink(&shared, &mut cores, &mut to_save, Input::Timer, None);
                feed_cmd(&shared, &mut cores, CmdInput::Timer);
                feed_onem2m(&shared, &mut cores, Onem2mInput::Timer);
                Msg::Uplink(UplinkInput::Timer)
            }
            _ = tick.tick() => {
                save(&shared, &cores.downlink, &cp_file, &mut to_save).await;
                continue;
            }
        };
        match msg {
            Msg::Event { block, tx_id, event } => {
                shared.stats.events.fetch_add(1, Ordering::Relaxed);
                let mut elsewhere = None;
                let work = match event.map(|e| *e) {
                    Some(IpeEvent::Request(r)) => EventWork::Request(Box::new(r)),
                    Some(ev) if handled_elsewhere(&shared, &ev) => {
                        elsewhere = Some(ev);
                        EventWork::Elsewhere
                    }
                    _ => EventWork::Nothing,
                };
                let input = Input::Event { block, tx_id, work };
                feed_downlink(&shared, &mut cores, &mut to_save, input, elsewhere);
            }
            Msg::Input(i) => feed_downlink(&shared, &mut cores, &mut to_save, i, None),
            Msg::Cmd(i) => feed_cmd(&shared, &mut cores, i),
            Msg::Uplink(i) => feed_uplink(&shared, &mut cores, i),
            Msg::Onem2m(i) => feed_onem2m(&shared, &mut cores, i),
        }
    }
    for t in tasks {
        t.abort();
    }
    save(&shared, &cores.downlink, &cp_file, &mut to_save).await;
}

/// Feeds the downlink core and performs its commands; `elsewhere` is the event just fed, if the shell handles
/// it ([`Command::HandleElsewhere`]).
fn feed_downlink(
    shared: &Arc<Shared>,
    cores: &mut Cores,
    to_save: &mut Option<Checkpoint>,
    input: Input,
    mut elsewhere: Option<IpeEvent>,
) {
    cores.downlink.handle(crate::unix_now_ms(), input);
    while let Some(cmd) = cores.downlink.poll_command() {
        match cmd {
            Command::HandleElsewhere { seq } => match elsewhere.take() {
                // Fed to the uplink core (the loop's next message), which writes it to the device.
                Some(IpeEvent::DeviceAnswer(a)) if is_me(shared, &a.to) => {
                    let writes = crate::core::uplink::answer_writes(&shared.cfg.registry, &a);
                    let DeviceAnswerEvent { endpoint, request_id, .. } = a;
                    shared.inbox.uplink(UplinkInput::Answer { seq, endpoint, request_id, writes });
                }
                Some(ev) => match job_for(ev) {
                    // Fed to the oneM2M core by the loop (not from here: this core is being drained).
                    Some((ae, job)) => shared.inbox.onem2m(Onem2mInput::Job { seq, ae, job }),
                    None => shared.inbox.done(seq),
                },
                None => shared.inbox.done(seq),
            },
            Command::SaveCheckpoint(cp) => *to_save = Some(cp),
            other => perform_command(shared, &shared.inbox, other),
        }
    }
}

fn feed_cmd(shared: &Arc<Shared>, cores: &mut Cores, input: CmdInput) {
    cores.cmd.handle(crate::unix_now_ms(), input);
    while let Some(cmd) = cores.cmd.poll_command() {
        perform_cmd_command(shared, cmd);
    }
}

fn feed_onem2m(shared: &Arc<Shared>, cores: &mut Cores, input: Onem2mInput) {
    cores.onem2m.handle(crate::unix_now_ms(), input);
    while let Some(cmd) = cores.onem2m.poll_command() {
        match cmd {
            Onem2mCommand::Perform { ae, job } => {
                let s = shared.clone();
                tokio::spawn(async move {
                    let result = onem2m_job(&s, &ae, &job).await.map_err(|e| Onem2mFailure {
                        transient: e.rsc == onem2m::Rsc::TargetNotReachable
                            || e.rsc == onem2m::Rsc::InternalServerError,
                        message: e.to_string(),
                    });
                    s.inbox.onem2m(Onem2mInput::Done { ae, result, random: retry::os_random() });
                });
            }
            // Through the channel: the loop feeds the downlink core (and keeps its checkpoint).
            Onem2mCommand::EventHandled { seq } => shared.inbox.done(seq),
            Onem2mCommand::Failed { ae, message } => {
                shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(ae = %ae, error = %message, "oneM2M side");
            }
        }
    }
}

fn feed_uplink(shared: &Arc<Shared>, cores: &mut Cores, input: UplinkInput) {
    cores.uplink.handle(crate::unix_now_ms(), input);
    while let Some(cmd) = cores.uplink.poll_command() {
        crate::uplink::perform(shared, cmd);
    }
}

/// Sleeps until `t`, or forever when there is no `t` (a core with no timer).
pub(crate) async fn sleep_until(t: Option<crate::core::UnixMillis>) {
    match t {
        Some(t) => tokio::time::sleep(crate::uplink::until(t)).await,
        None => std::future::pending().await,
    }
}

/// Saves the checkpoint the core asked for, after the journal (see [`Command::SaveCheckpoint`]), and updates
/// the metrics of the event stream.
async fn save(
    shared: &Shared,
    core: &DownlinkCore,
    file: &FileCheckpointer,
    to_save: &mut Option<Checkpoint>,
) {
    let m = &shared.cfg.metrics;
    let t = core.tracker();
    m.set_events_in_flight(t.in_flight() as u64);
    if let Some(lag) = shared.view.update_lag(&t.received(), t.oldest_pending_block()) {
        m.set_chain_lag(lag);
    }
    let Some(cp) = to_save.take() else { return };
    if let Err(e) = shared.journal.sync().await {
        tracing::error!(error = %e, "syncing the journal before the event checkpoint");
        *to_save = Some(cp);
        return;
    }
    if let Err(e) = file.save(&cp).await {
        tracing::error!(error = %e, "saving the event checkpoint");
    }
}

/// Reads the contract's event stream from `start`, reconnecting, into the core task.
async fn read_events(shared: Arc<Shared>, start: Checkpoint, inbox: Inbox) {
    let mut position = start;
    let gw = shared.cfg.lwm2m_ledger.clone();
    loop {
        let mut stream = match gw.contract_events(&shared.cfg.ipe_contract, position.clone()).await {
            Ok(s) => {
                shared.view.set_events_connected(true);
                shared.cfg.metrics.set_event_stream_up(true);
                s
            }
            Err(e) => {
                shared.view.set_events_connected(false);
                shared.cfg.metrics.set_event_stream_up(false);
                tracing::warn!(error = %e, "event stream unavailable; retrying");
                tokio::select! {
                    () = shared.stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            }
        };
        loop {
            let next = tokio::select! {
                () = shared.stop.cancelled() => return,
                n = stream.next() => n,
            };
            let ev = match next {
                Ok(Some(ev)) => ev,
                Ok(None) | Err(_) => {
                    shared.view.set_events_connected(false);
                    shared.cfg.metrics.set_event_stream_up(false);
                    tracing::warn!("event stream ended; reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            };
            position.handled(ev.block, &ev.event.tx_id);
            let event = match IpeEvent::parse(&ev.event.event_name, &ev.event.payload) {
                Ok(p) => p.map(Box::new),
                Err(e) => {
                    tracing::warn!(event = %ev.event.event_name, error = %e, "unreadable IPE event");
                    None
                }
            };
            if inbox.0.send(Msg::Event { block: ev.block, tx_id: ev.event.tx_id, event }).is_err() {
                return;
            }
        }
    }
}

fn is_me(shared: &Shared, to: &Address) -> bool {
    matches!(to, Address::Gateway { org, id } if *org == shared.cfg.lwm2m_identity.org && *id == shared.cfg.lwm2m_identity.id)
}

/// The events the shell handles itself (the oneM2M side, answers to devices' requests).
fn handled_elsewhere(shared: &Shared, ev: &IpeEvent) -> bool {
    match ev {
        IpeEvent::DeviceAnswer(a) => is_me(shared, &a.to),
        IpeEvent::DeviceRegistered(_)
        | IpeEvent::DeviceUpdated(_)
        | IpeEvent::DeviceDeregistered(_)
        | IpeEvent::Report(_)
        | IpeEvent::Response(_)
        | IpeEvent::DeviceRequest(_) => true,
        _ => false,
    }
}

/// One job on the CSE, as the device AE `ae`.
async fn onem2m_job(
    shared: &Shared,
    ae: &str,
    job: &Onem2mJob,
) -> Result<(), crate::onem2m_side::Onem2mError> {
    let side = &shared.cfg.onem2m;
    match job {
        Onem2mJob::Tree(d) => {
            side.ensure_tree(&d.tree).await?;
            side.remove(ae, &d.removed).await
        }
        Onem2mJob::Delete(ae) => side.delete_ae(ae).await,
        Onem2mJob::Cins(cins, rn) => {
            let (written, result) = side.write_cins(ae, cins, rn).await;
            shared.stats.cins.fetch_add(written as u64, Ordering::Relaxed);
            result
        }
    }
}

// ------------------------------------------------------------------------------------------------ downlink

/// Performs one of the core's commands in a task of its own; its result comes back through the inbox.
fn perform_command(shared: &Arc<Shared>, inbox: &Inbox, cmd: Command) {
    let (s, inbox) = (shared.clone(), inbox.clone());
    match cmd {
        Command::QueryRequest { call } => {
            let IpeCall::GetRequest { request_id } = &call else { return };
            let request_id = request_id.clone();
            tokio::spawn(async move {
                let ipe = s.cfg.lwm2m_ledger.contract(&s.cfg.ipe_contract);
                let result = match ledger::query(&ipe, &call).await {
                    Ok(Some(b)) => Ok(request_status(&b)),
                    Ok(None) => Ok(RequestStatus::Unknown),
                    Err(e) => {
                        tracing::warn!(request = %request_id, error = %e, "get_request; asking again");
                        Err(LedgerFailure(e.to_string()))
                    }
                };
                inbox.input(Input::RequestStatus { request_id, result });
            });
        }
        Command::Journal { entry, durable: false } => s.journal.append(entry),
        Command::Journal { entry, durable: true } => {
            tokio::spawn(async move {
                let request_id = match &entry {
                    Entry::Op { id } | Entry::Done { id } | Entry::Dreq { id, .. } => id.clone(),
                };
                let result = s.journal.append_durable(entry).await.map_err(|e| {
                    tracing::error!(error = %e, "journal");
                    JournalFailure(e.to_string())
                });
                inbox.input(Input::JournalDurable { request_id, result });
            });
        }
        Command::PerformDeviceOp { request, deadline } => {
            tokio::spawn(async move {
                let left = deadline.0.saturating_sub(crate::unix_now_ms().0);
                let result = match u64::try_from(left) {
                    Ok(ms) if ms > 0 => device_op(&s, &request, Duration::from_millis(ms)).await,
                    _ => Err(OpError::Timeout),
                };
                inbox.input(Input::DeviceResult { request_id: request.request_id.clone(), result });
            });
        }
        Command::SubmitAnswer { call, seen_at } => {
            tokio::spawn(async move {
                let IpeCall::SubmitResponse(args) = &call else { return };
                let (request_id, status) = (args.request_id.clone(), args.status.clone());
                let ipe = s.cfg.lwm2m_ledger.contract(&s.cfg.ipe_contract);
                let result = match ledger::submit(&ipe, &call).await {
                    Ok(_) => {
                        s.stats.answered.fetch_add(1, Ordering::Relaxed);
                        let ms = crate::unix_now_ms().0.saturating_sub(seen_at.0).max(0);
                        s.cfg.metrics.answered(&status, ms as f64 / 1000.0);
                        if status == "timeout" {
                            s.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                        }
                        SubmitResult::Committed
                    }
                    // 409: answered already (a replay); other refusals will not change by retrying.
                    Err(e) if e.status().is_some() => {
                        if e.refusal() != Some(Refusal::Conflict) {
                            s.stats.errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(request = %request_id, error = %e, "answer refused");
                        }
                        SubmitResult::Refused(e.status().unwrap_or_default())
                    }
                    Err(e) => {
                        tracing::warn!(request = %request_id, error = %e, "answer not submitted yet; retrying");
                        SubmitResult::Failed(LedgerFailure(e.to_string()))
                    }
                };
                inbox.input(Input::Submitted { request_id, result });
            });
        }
        Command::HandleElsewhere { seq } => inbox.done(seq),
        Command::SaveCheckpoint(_) => {}
    }
}

/// Who made the request `get_request` answered with, and what it asks (the `cmd` core tells its own request
/// from an earlier one under the same id by them). A record this gateway cannot read is taken for the
/// contentInstance's own request: it is then neither submitted again nor rejected.
fn known_request(b: &[u8]) -> Known {
    match serde_json::from_slice::<ipe::RequestRecord>(b) {
        Ok(r) => Known::Request {
            originator: r.originator,
            endpoint: r.endpoint,
            ae_id: r.ae_id,
            op: r.downlink.op,
        },
        Err(e) => {
            tracing::warn!(error = %e, "unreadable request record on the ledger; taken as the cmd request's own");
            Known::Done
        }
    }
}

/// A request's status from `get_request`'s answer (anything unreadable counts as pending: the gateway acts).
fn request_status(b: &[u8]) -> RequestStatus {
    let pending = serde_json::from_slice::<Json>(b)
        .ok()
        .and_then(|v| v.get("status").and_then(Json::as_str).map(|s| s == "pending"))
        .unwrap_or(true);
    if pending { RequestStatus::Pending } else { RequestStatus::Answered }
}

/// The contract validated the attributes already; anything unparsable is dropped.
fn parse_attributes(list: &[String]) -> Attributes {
    Attributes::parse(list.iter().filter_map(|s| s.split_once('='))).unwrap_or_default()
}

/// An answer with only a CoAP code (`0x45` = 2.05).
fn code_only(code: u8) -> OpResponse {
    OpResponse {
        code: lwm2m::ops::ResponseCode::from_byte(code),
        format: None,
        records: Vec::new(),
        links: Vec::new(),
        location: None,
        payload: Vec::new(),
    }
}

async fn device_op(shared: &Arc<Shared>, r: &RequestEvent, budget: Duration) -> Result<OpResponse, OpError> {
    let lw = &shared.cfg.lwm2m;
    let ep = r.endpoint.as_str();
    let d = &r.downlink;
    let Ok(path) = d.path.parse::<LwM2mPath>() else {
        return Ok(code_only(0x80)); // 4.00: the contract validated the path, so this does not happen
    };
    let t = Some(budget);
    let records = || -> Vec<Record> {
        d.records
            .as_ref()
            .and_then(|j| ipe::translate::records_from_json(&shared.cfg.registry, j).ok())
            .unwrap_or_default()
    };
    let format = d.content_format.map(ContentFormat);
    match d.op {
        Operation::Read => lw.read(ep, path, None, t).await,
        Operation::Discover => lw.discover(ep, path, t).await,
        Operation::Write => {
            let mode = if d.partial { WriteMode::Update } else { WriteMode::Replace };
            lw.write(ep, path, mode, records(), format, t).await
        }
        Operation::Execute => lw.execute(ep, path, d.args.as_deref().unwrap_or(""), t).await,
        Operation::Create => lw.create(ep, path, records(), format, t).await,
        Operation::Delete => lw.delete(ep, path, t).await,
        Operation::WriteAttributes => {
            lw.write_attributes(ep, path, parse_attributes(d.attributes.as_deref().unwrap_or(&[])), t).await
        }
        Operation::Observe => {
            if let Some(attrs) = d.attributes.as_deref().filter(|a| !a.is_empty()) {
                let w = lw.write_attributes(ep, path, parse_attributes(attrs), t).await?;
                if !w.code.is_success() {
                    return Ok(w);
                }
            }
            let rsp = lw.observe(ep, path, None, t).await?;
            if rsp.code.is_success() {
                shared.inbox.uplink(UplinkInput::Observed {
                    endpoint: ep.to_owned(),
                    path,
                    request_id: r.request_id.clone(),
                });
            }
            Ok(rsp)
        }
        Operation::CancelObserve => {
            let n = lw.cancel_observe(ep, path).await;
            shared.inbox.uplink(UplinkInput::ObserveCancelled { endpoint: ep.to_owned(), path });
            Ok(code_only(if n > 0 { 0x45 } else { 0x84 }))
        }
    }
}

// ------------------------------------------------------------------- requests from cmd containers

/// After a start: the contentInstances in every device's `cmd` container (requests written while the gateway
/// was down had no one to notify) go to the core, which submits those whose id the ledger has not seen.
async fn cmd_backlog(shared: Arc<Shared>, inbox: Inbox) {
    let ipe = shared.cfg.onem2m_ledger.contract(&shared.cfg.ipe_contract);
    let mut after: Option<String> = None;
    let mut n = 0usize;
    loop {
        let list = IpeCall::ListDevices(ListDevicesArgs {
            after: after.take(),
            limit: Some(1000),
            ..Default::default()
        });
        let page: Vec<ipe::Device> = match ledger::query(&ipe, &list).await {
            Ok(b) => b.and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "listing devices for the cmd backlog");
                break;
            }
        };
        for d in &page {
            let backlog = match shared.cfg.onem2m.cmd_backlog(&d.ae_id).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!(ae = %d.ae_id, error = %e, "no cmd backlog");
                    continue;
                }
            };
            for req in backlog {
                n += 1;
                inbox.cmd(CmdInput::Backlog(Box::new(req)));
            }
        }
        if page.len() < 1000 {
            break;
        }
        after = page.last().map(|d| d.endpoint.clone());
    }
    tracing::debug!(cins = n, "cmd backlog scanned");
}

/// Up to 8 more reads of a notified `cmd` contentInstance when the CSE fails for a moment, waiting up to
/// 200 ms doubling to 5 s (about 12 s in all on average): a request whose read is given up waits in its
/// container for the next start's backlog scan.
const NOTIFIED_READ_RETRY: retry::Backoff =
    retry::Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).with_max_retries(8);

/// The request a `cmd` notification announces ([`crate::Onem2mSide::cmd_request`]), read again while the CSE
/// fails transiently.
async fn read_notified(
    shared: &Arc<Shared>,
    n: &crate::mca::Notified,
) -> Option<crate::onem2m_side::CmdRequest> {
    let mut retries = NOTIFIED_READ_RETRY.retries();
    loop {
        let e = match shared.cfg.onem2m.cmd_request(n).await {
            Ok(req) => return req,
            Err(e) => e,
        };
        match retries.next_delay(retry::os_random()) {
            Some(wait) if e.is_transient() => {
                tracing::debug!(error = %e, ?wait, "reading a notified cmd contentInstance; again");
                tokio::time::sleep(wait).await;
            }
            _ => {
                tracing::warn!(error = %e, "a notified cmd request could not be read: left for the next start's scan");
                return None;
            }
        }
    }
}

/// Performs one of the `cmd` core's commands (the ledger and CSE calls in tasks of their own, their results
/// sent back to the core's task).
fn perform_cmd_command(shared: &Arc<Shared>, cmd: CmdCommand) {
    let s = shared.clone();
    match cmd {
        CmdCommand::QueryKnown { key, call } => {
            tokio::spawn(async move {
                let ipe = s.cfg.onem2m_ledger.contract(&s.cfg.ipe_contract);
                let answer = matches!(call, IpeCall::GetDeviceRequest { .. });
                let result = match ledger::query(&ipe, &call).await {
                    Ok(None) => Ok(Known::No),
                    // A device request is known to an answer once it is answered (it exists before).
                    Ok(Some(b)) if answer => Ok(if request_status(&b) == RequestStatus::Answered {
                        Known::Done
                    } else {
                        Known::No
                    }),
                    Ok(Some(b)) => Ok(known_request(&b)),
                    Err(e) => {
                        tracing::warn!(error = %e, "looking up a cmd request; asking again");
                        Err(LedgerFailure(e.to_string()))
                    }
                };
                s.inbox.cmd(CmdInput::Known { key, result });
            });
        }
        CmdCommand::Submit { key, call } => {
            tokio::spawn(async move {
                let ipe = s.cfg.onem2m_ledger.contract(&s.cfg.ipe_contract);
                let result = match ledger::submit(&ipe, &call).await {
                    Ok(_) => CmdSubmitResult::Committed,
                    Err(ledger::SubmitError::Refused { status, message, .. }) => {
                        CmdSubmitResult::Refused { status, message }
                    }
                    Err(e) => {
                        s.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "request from a cmd container not submitted yet; retrying");
                        CmdSubmitResult::Failed(LedgerFailure(e.to_string()))
                    }
                };
                s.inbox.cmd(CmdInput::Submitted { key, result });
            });
        }
        CmdCommand::WriteCin { ae_id, cin, rn } => {
            tokio::spawn(async move {
                tracing::debug!(ae = %ae_id, rn, "a request from a cmd container rejected");
                if let Err(e) = s.cfg.onem2m.write_cin(&ae_id, &cin, &rn).await {
                    tracing::warn!(ae = %ae_id, error = %e, "writing a rejection");
                }
            });
        }
        CmdCommand::Outcome { outcome: CmdOutcome::Submitted, .. } => {
            shared.stats.cmd_requests.fetch_add(1, Ordering::Relaxed);
        }
        CmdCommand::Outcome { ae_id, request_id, outcome: CmdOutcome::AnswerRefused { status, message } } => {
            shared.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(ae = %ae_id, request_id, status, message, "answer from a cmd container refused");
        }
    }
}
