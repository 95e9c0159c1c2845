//! The oneM2M side of the contract's events as a sans-IO state machine: which resources an event asks for
//! ([`job_for`]: a device's tree, its deletion, contentInstances named by their id), one queue per device AE (a
//! tree is made before values are written into it; AEs in parallel), and the retries of a transient failure.
//! Inputs in ([`Onem2mCore::handle`] with the current time), [`Onem2mCommand`]s out; the shell performs the
//! CSE requests and feeds the results back.
//!
//! ```text
//!  Job(seq, ae, job) ─► the AE's queue ─► (one job of an AE at a time) ─► Perform(ae, job)
//!  Done: ok ─► EventHandled(seq) ─► the AE's next job
//!        transient failure (5000, 5103) ─► Perform again after ONEM2M_RETRY's delay (drawn from the
//!                                          shell's random number), at most 4 times
//!        other failure, or the retries used up ─► Failed (logged) ─► EventHandled(seq) ─► next job
//! ```
//!
//! Writing again is harmless: contentInstances are named by their request/report id (a second create is
//! 4105), a tree is made only where it is missing, a deletion of what is gone is fine.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use ipe::IpeEvent;
use ipe::events::{DeviceEvent, DeviceRequestEvent};
use ipe::mapping::Cin;
use serde_json::json;

use super::{EventSeq, UnixMillis};

/// Up to 4 retries of a oneM2M-side write, waiting up to 150 ms doubling to 1 s (drawn: 1 s in all on
/// average).
pub const ONEM2M_RETRY: retry::Backoff =
    retry::Backoff::new(Duration::from_millis(150), Duration::from_secs(1)).with_max_retries(4);

/// What the oneM2M side must do for an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Onem2mJob {
    /// Make (or bring up to date) the device's tree, then remove the containers it no longer declares.
    Tree(Box<DeviceEvent>),
    /// Delete the device's AE.
    Delete(String),
    /// Write the contentInstances, in order, each named `rn` in its container.
    Cins(Vec<Cin>, String),
}

/// The device AE and the job of an event the oneM2M side handles (`None`: nothing to do there).
pub fn job_for(ev: IpeEvent) -> Option<(String, Onem2mJob)> {
    Some(match ev {
        IpeEvent::DeviceRegistered(d) | IpeEvent::DeviceUpdated(d) => {
            (d.tree.ae.rn.clone(), Onem2mJob::Tree(Box::new(d)))
        }
        IpeEvent::DeviceDeregistered(d) => (d.tree.ae.rn.clone(), Onem2mJob::Delete(d.tree.ae.rn.clone())),
        IpeEvent::Report(r) => {
            let rn = super::cmd::cin_name(&r.report_id);
            (r.ae_id, Onem2mJob::Cins(r.cins, rn))
        }
        IpeEvent::Response(r) => {
            let rn = super::cmd::cin_name(&r.request_id);
            (r.ae_id, Onem2mJob::Cins(answer_last(r.cins), rn))
        }
        IpeEvent::DeviceRequest(d) => {
            let rn = super::cmd::cin_name(&d.request_id);
            (d.ae_id.clone(), Onem2mJob::Cins(vec![device_request_cin(&d)], rn))
        }
        _ => return None,
    })
}

/// A response's contentInstances with the answer (the `rsp` container's) written last, so an application that
/// sees the answer finds the values of a read in their data containers too.
pub fn answer_last(mut cins: Vec<Cin>) -> Vec<Cin> {
    let rsp = format!("/{}", ipe::mapping::RSP);
    cins.sort_by_key(|c| c.container.ends_with(&rsp)); // stable: the data containers keep their order
    cins
}

/// What the `rsp` container shows applications when a device asks something (scenario 2): they answer by
/// writing `{"op": "answer", "request_id": …, "status": "ok", "content": {…}}` into the device's `cmd`.
fn device_request_cin(d: &DeviceRequestEvent) -> Cin {
    Cin {
        container: format!("{}/{}", d.ae_id, ipe::mapping::RSP),
        con: json!({"device_request": {"request_id": d.request_id, "endpoint": d.endpoint, "topic": d.topic,
            "content": d.content, "to": d.to, "expires_at": d.expires_at}}),
    }
}

/// Why a oneM2M-side request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Onem2mFailure {
    /// A transport problem or the CSE's internal error (retried); else for good (a missing tree is rebuilt
    /// by the next registration).
    pub transient: bool,
    /// What the CSE said.
    pub message: String,
}

/// Inputs of the oneM2M side.
#[derive(Debug, Clone, PartialEq)]
pub enum Onem2mInput {
    /// An event's job for device AE `ae`; [`Onem2mCommand::EventHandled`] with `seq` when it is done.
    Job {
        /// The event.
        seq: EventSeq,
        /// The device AE.
        ae: String,
        /// What to do.
        job: Onem2mJob,
    },
    /// The result of [`Onem2mCommand::Perform`] for `ae`, with a random number for the retry's delay.
    Done {
        /// The device AE.
        ae: String,
        /// Done, or why not.
        result: Result<(), Onem2mFailure>,
        /// Uniform over `u64`.
        random: u64,
    },
    /// The time of [`Onem2mCore::poll_timeout`] has passed.
    Timer,
}

/// What the shell must do for the oneM2M side.
#[derive(Debug, Clone, PartialEq)]
pub enum Onem2mCommand {
    /// Perform the job on the CSE; feed [`Onem2mInput::Done`] for `ae`.
    Perform {
        /// The device AE.
        ae: String,
        /// What to do.
        job: Onem2mJob,
    },
    /// The event is handled (feed the downlink core's `EventHandled`).
    EventHandled {
        /// The event.
        seq: EventSeq,
    },
    /// A job failed for good (for the logs and counters).
    Failed {
        /// The device AE.
        ae: String,
        /// Why.
        message: String,
    },
}

#[derive(Debug)]
struct Current {
    seq: EventSeq,
    job: Onem2mJob,
    retries: u32,
    /// Waiting to be performed again at the time; `None`: in flight.
    again_at: Option<UnixMillis>,
}

#[derive(Debug, Default)]
struct AeQueue {
    waiting: VecDeque<(EventSeq, Onem2mJob)>,
    current: Option<Current>,
}

/// The oneM2M side's queues (see the module docs).
#[derive(Debug, Default)]
pub struct Onem2mCore {
    queues: HashMap<String, AeQueue>,
    commands: VecDeque<Onem2mCommand>,
}

impl Onem2mCore {
    /// Empty queues.
    pub fn new() -> Self {
        Onem2mCore::default()
    }

    /// The next command to perform.
    pub fn poll_command(&mut self) -> Option<Onem2mCommand> {
        self.commands.pop_front()
    }

    /// When the shell must feed [`Onem2mInput::Timer`]: the earliest retry.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.queues.values().filter_map(|q| q.current.as_ref().and_then(|c| c.again_at)).min()
    }

    /// Jobs in flight or waiting.
    pub fn jobs(&self) -> usize {
        self.queues.values().map(|q| q.waiting.len() + usize::from(q.current.is_some())).sum()
    }

    /// Processes one input.
    pub fn handle(&mut self, now: UnixMillis, input: Onem2mInput) {
        match input {
            Onem2mInput::Job { seq, ae, job } => {
                self.queues.entry(ae.clone()).or_default().waiting.push_back((seq, job));
                self.next(&ae);
            }
            Onem2mInput::Done { ae, result, random } => self.on_done(now, ae, result, random),
            Onem2mInput::Timer => {
                let mut due: Vec<String> = self
                    .queues
                    .iter()
                    .filter(|(_, q)| q.current.as_ref().and_then(|c| c.again_at).is_some_and(|t| t <= now))
                    .map(|(ae, _)| ae.clone())
                    .collect();
                due.sort(); // deterministic order
                for ae in due {
                    let Some(c) = self.queues.get_mut(&ae).and_then(|q| q.current.as_mut()) else { continue };
                    c.again_at = None;
                    self.commands.push_back(Onem2mCommand::Perform { ae, job: c.job.clone() });
                }
            }
        }
    }

    /// Starts the AE's next job unless one is in flight or waiting for its retry.
    fn next(&mut self, ae: &str) {
        let Some(q) = self.queues.get_mut(ae) else { return };
        if q.current.is_some() {
            return;
        }
        let Some((seq, job)) = q.waiting.pop_front() else {
            self.queues.remove(ae);
            return;
        };
        q.current = Some(Current { seq, job: job.clone(), retries: 0, again_at: None });
        self.commands.push_back(Onem2mCommand::Perform { ae: ae.to_owned(), job });
    }

    fn on_done(&mut self, now: UnixMillis, ae: String, result: Result<(), Onem2mFailure>, random: u64) {
        let Some(q) = self.queues.get_mut(&ae) else { return };
        let Some(c) = q.current.as_mut() else { return };
        if c.again_at.is_some() {
            return; // not in flight
        }
        if let Err(e) = result {
            let wait = if e.transient { ONEM2M_RETRY.delay(c.retries, random) } else { None };
            if let Some(wait) = wait {
                c.retries += 1;
                let ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                c.again_at = Some(now.plus_ms(ms));
                return;
            }
            self.commands.push_back(Onem2mCommand::Failed { ae: ae.clone(), message: e.message });
        }
        if let Some(c) = q.current.take() {
            self.commands.push_back(Onem2mCommand::EventHandled { seq: c.seq });
        }
        self.next(&ae);
    }
}

#[cfg(test)]
mod tests;
