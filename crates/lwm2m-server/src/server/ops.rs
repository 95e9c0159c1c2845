//! Operations in flight: device-management operations sent to clients (formats chosen, a fallback without
//! Accept, deadlines), their answers, and observations with their notifications.
//!
//! [`InFlight`] is the bookkeeping alone (pending requests by CoAP request id, their deadlines, active
//! observations); the handlers are the [`Server`]'s.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use coap::RequestId;
use coap::lite::{CoapOption, Packet};
use lwm2m::codec::{self, Record};
use lwm2m::ops::{Downlink, OperationError, ResponseCode, WriteMode};
use lwm2m::registration::LwM2mVersion;
use lwm2m::{ContentFormat, LwM2mPath, Registry, link};
use tokio::sync::oneshot;

use super::registrations::Registration;
use super::{Server, content_format_of};
use crate::clock;
use crate::packet::packet_of;
use crate::types::{OpError, OpResponse, ServerEvent};

/// Replies to an operation.
pub(crate) type Reply = oneshot::Sender<Result<OpResponse, OpError>>;

/// An operation before the server has picked formats for it.
#[derive(Debug)]
pub(crate) enum OpSpec {
    /// Read or Observe; `format: None` lets the server choose the Accept.
    Read { path: LwM2mPath, format: Option<ContentFormat>, observe: bool },
    /// Write; `format: None` lets the server choose.
    Write { path: LwM2mPath, mode: WriteMode, format: Option<ContentFormat>, records: Vec<Record> },
    /// Create; `format: None` lets the server choose.
    Create { path: LwM2mPath, format: Option<ContentFormat>, records: Vec<Record> },
    /// Anything fully specified.
    Other(Downlink),
}

/// An operation sent and not answered yet.
pub(super) struct Pending {
    pub(super) reg_id: String,
    pub(super) op: Downlink,
    /// When to give up on this attempt.
    pub(super) deadline: Instant,
    /// When to give up altogether (after a fallback without Accept).
    pub(super) final_deadline: Instant,
    /// The server chose the Accept (the caller did not ask for a format): it may retry without.
    pub(super) auto_accept: bool,
    pub(super) reply: Reply,
}

/// An active observation.
pub(super) struct Observation {
    pub(super) endpoint: String,
    pub(super) path: LwM2mPath,
}

/// What is in flight: pending operations with their deadlines, and observations, by CoAP request id.
#[derive(Default)]
pub(super) struct InFlight {
    pending: HashMap<RequestId, Pending>,
    deadlines: BinaryHeap<Reverse<(Instant, RequestId)>>,
    observations: HashMap<RequestId, Observation>,
}

impl InFlight {
    /// Tracks request `id`, sent for `pending`, until its deadline.
    pub(super) fn track(&mut self, id: RequestId, pending: Pending) {
        self.deadlines.push(Reverse((pending.deadline, id)));
        self.pending.insert(id, pending);
    }

    /// The operation request `id` was sent for, no longer tracked.
    pub(super) fn take(&mut self, id: &RequestId) -> Option<Pending> {
        self.pending.remove(id)
    }

    /// The earliest deadline (possibly of an operation answered since).
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((t, _))| *t)
    }

    /// The next operation whose deadline passed at `now`, no longer tracked.
    pub(super) fn pop_expired(&mut self, now: Instant) -> Option<(RequestId, Pending)> {
        while let Some(Reverse((t, id))) = self.deadlines.peek().copied() {
            if t > now {
                break;
            }
            self.deadlines.pop();
            if self.pending.get(&id).is_none_or(|p| p.deadline != t) {
                continue;
            }
            if let Some(p) = self.pending.remove(&id) {
                return Some((id, p));
            }
        }
        None
    }

    /// Every pending operation, no longer tracked (the server stops).
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Pending> + '_ {
        self.pending.drain().map(|(_, p)| p)
    }

    pub(super) fn observe(&mut self, id: RequestId, obs: Observation) {
        self.observations.insert(id, obs);
    }

    pub(super) fn observation(&self, id: &RequestId) -> Option<&Observation> {
        self.observations.get(id)
    }

    pub(super) fn end_observation(&mut self, id: &RequestId) -> Option<Observation> {
        self.observations.remove(id)
    }
}

impl Server {
    pub(super) fn choose_format(
        &self,
        reg: &Registration,
        path: &LwM2mPath,
        for_write: bool,
    ) -> Option<ContentFormat> {
        let info = &reg.info;
        if !for_write && reg.accept_dropped {
            return None;
        }
        if for_write && path.depth() >= 3 && info.supported_formats.is_empty() {
            return Some(ContentFormat::TEXT);
        }
        let prefs = [
            ContentFormat::SENML_CBOR,
            ContentFormat::SENML_JSON,
            ContentFormat::LWM2M_CBOR,
            ContentFormat::TLV,
            ContentFormat::OLD_TLV,
            ContentFormat::JSON,
        ];
        if let Some(f) = prefs.iter().find(|f| info.supported_formats.contains(f)) {
            return Some(*f);
        }
        Some(match info.version {
            LwM2mVersion::V1_0 => ContentFormat::TLV,
            LwM2mVersion::V1_1 => ContentFormat::SENML_CBOR,
        })
    }

    pub(super) fn start_op(
        &mut self,
        now: Instant,
        endpoint: String,
        spec: OpSpec,
        timeout: Duration,
        reply: Reply,
    ) {
        let Some(reg_id) = self.regs.id_of(&endpoint).cloned() else {
            let _ = reply.send(Err(OpError::UnknownEndpoint(endpoint)));
            return;
        };
        let Some(reg) = self.regs.get_mut(&reg_id) else { return };
        if reg.info.queue_mode && now >= reg.awake_until {
            reg.queued.push((spec, now + timeout, reply));
            return;
        }
        let Some(reg) = self.regs.get(&reg_id) else { return };
        let mut auto_accept = false;
        let op = match spec {
            OpSpec::Read { path, format, observe } => {
                auto_accept = format.is_none();
                let accept = format.or_else(|| self.choose_format(reg, &path, false));
                if observe { Downlink::Observe { path, accept } } else { Downlink::Read { path, accept } }
            }
            OpSpec::Write { path, mode, format, records } => {
                let format =
                    format.or_else(|| self.choose_format(reg, &path, true)).unwrap_or(ContentFormat::TLV);
                Downlink::Write { path, mode, format, records }
            }
            OpSpec::Create { path, format, records } => {
                let format =
                    format.or_else(|| self.choose_format(reg, &path, true)).unwrap_or(ContentFormat::TLV);
                Downlink::Create { path, format, records }
            }
            OpSpec::Other(d) => d,
        };
        let has_accept =
            matches!(op, Downlink::Read { accept: Some(_), .. } | Downlink::Observe { accept: Some(_), .. });
        // First attempt gets half the time (at most 8 s, a few CoAP retransmissions) when a fallback without
        // Accept is possible: clients that drop an unsupported Accept never answer it.
        let first = (timeout / 2).min(Duration::from_secs(8));
        let deadline = if auto_accept && has_accept { now + first } else { now + timeout };
        let pending = Pending { reg_id, op, deadline, final_deadline: now + timeout, auto_accept, reply };
        self.send_pending(now, pending);
    }

    pub(super) fn send_pending(&mut self, now: Instant, pending: Pending) {
        let Some(reg) = self.regs.get(&pending.reg_id) else {
            let _ = pending.reply.send(Err(OpError::Stopped));
            return;
        };
        let req = match pending.op.to_coap(&reg.info.root_path) {
            Ok(r) => r,
            Err(e) => {
                let _ = pending.reply.send(Err(OpError::Invalid(e)));
                return;
            }
        };
        let p = packet_of(&req);
        let id = self.coap.send_request(now, reg.info.address, p, true);
        self.ops.track(id, pending);
    }

    /// Retries a Read/Observe without the Accept the server chose, if that is still possible; gives the
    /// pending back otherwise. `ignored`: the client did not answer at all (remember to send no Accept);
    /// otherwise it answered 4.06.
    pub(super) fn fallback(&mut self, now: Instant, mut p: Pending, ignored: bool) -> Option<Pending> {
        let accept = match &mut p.op {
            Downlink::Read { accept, .. } | Downlink::Observe { accept, .. } => accept,
            _ => return Some(p),
        };
        if !p.auto_accept || accept.is_none() || now >= p.final_deadline {
            return Some(p);
        }
        *accept = None;
        if let Some(reg) = self.regs.get_mut(&p.reg_id)
            && ignored
        {
            tracing::info!("{}: no answer to a request with Accept; retrying without", reg.info.endpoint);
            reg.accept_dropped = true;
        }
        p.deadline = p.final_deadline;
        self.send_pending(now, p);
        None
    }

    pub(super) fn expire_ops(&mut self, now: Instant) {
        while let Some((id, p)) = self.ops.pop_expired(now) {
            self.coap.cancel(id);
            if let Some(p) = self.fallback(now, p, true) {
                let _ = p.reply.send(Err(OpError::Timeout));
            }
        }
    }

    pub(super) fn on_failure(&mut self, now: Instant, id: RequestId, err: OpError) {
        if let Some(obs) = self.ops.end_observation(&id) {
            if let Some(reg) = self.regs.of_endpoint_mut(&obs.endpoint) {
                reg.observations.retain(|o| *o != id);
            }
            return;
        }
        if let Some(p) = self.ops.take(&id) {
            let p = if err == OpError::Timeout { self.fallback(now, p, true) } else { Some(p) };
            if let Some(p) = p {
                let _ = p.reply.send(Err(err));
            }
        }
    }

    pub(super) fn on_response(&mut self, now: Instant, id: RequestId, resp: Packet) {
        let Some(p) = self.ops.take(&id) else { return };
        let rc = ResponseCode::from_byte(u8::from(resp.header.code));
        // 4.06 to a request with Accept: try again without.
        if (rc.class, rc.detail) == (4, 6) {
            match self.fallback(now, p, false) {
                None => return,
                Some(p) => return self.finish(id, p, rc, resp),
            }
        }
        if let Some(reg) = self.regs.get_mut(&p.reg_id)
            && matches!(p.op, Downlink::Observe { .. })
            && rc.is_success()
            && resp.get_observe_value().is_some()
        {
            reg.observations.push(id);
            self.ops.observe(id, Observation { endpoint: reg.info.endpoint.clone(), path: *p.op.path() });
        }
        self.finish(id, p, rc, resp);
    }

    pub(super) fn finish(&mut self, _id: RequestId, p: Pending, rc: ResponseCode, resp: Packet) {
        let format = content_format_of(&resp, CoapOption::ContentFormat);
        let path = *p.op.path();
        let mut out = OpResponse {
            code: rc,
            format,
            records: vec![],
            links: vec![],
            location: resp
                .get_option(CoapOption::LocationPath)
                .filter(|l| !l.is_empty())
                .map(|l| l.iter().map(|s| format!("/{}", String::from_utf8_lossy(s))).collect()),
            payload: resp.payload.clone(),
        };
        if rc.is_success() && !resp.payload.is_empty() {
            match &p.op {
                Downlink::Discover { .. } => match link::parse(&String::from_utf8_lossy(&resp.payload)) {
                    Ok(l) => out.links = l,
                    Err(e) => {
                        let _ = p.reply.send(Err(OpError::Decode(codec::CodecError::Path(e.to_string()))));
                        return;
                    }
                },
                Downlink::Read { .. } | Downlink::Observe { .. } => {
                    match decode_payload(format, &resp.payload, &path, &self.registry) {
                        Ok(r) => out.records = r,
                        Err(e) => {
                            let _ = p.reply.send(Err(OpError::Decode(e)));
                            return;
                        }
                    }
                }
                _ => {}
            }
        }
        let _ = p.reply.send(Ok(out));
    }

    pub(super) fn on_notification(&mut self, id: RequestId, from: SocketAddr, resp: Packet) {
        let Some(obs) = self.ops.observation(&id) else { return };
        if self.regs.of_endpoint(&obs.endpoint).is_some_and(|r| r.info.identity != self.identity_at(&from)) {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "notification for {} from {from} in another security context: ignored",
                obs.endpoint
            );
            return;
        }
        let rc = ResponseCode::from_byte(u8::from(resp.header.code));
        let format = content_format_of(&resp, CoapOption::ContentFormat);
        let records = decode_payload(format, &resp.payload, &obs.path, &self.registry).unwrap_or_default();
        self.stats.notifications.fetch_add(1, Ordering::Relaxed);
        let _ = self.events.send(ServerEvent::Notification {
            endpoint: obs.endpoint.clone(),
            path: obs.path,
            code: rc,
            records,
        });
        // Clients change ports: follow them.
        if let Some(reg_id) = self.regs.id_of(&obs.endpoint).cloned()
            && let Some(reg) = self.regs.get(&reg_id)
            && reg.info.address != from
        {
            let mut info = (*reg.info).clone();
            info.address = from;
            self.regs.set_info(&reg_id, Arc::new(info));
        }
        if !rc.is_success() || resp.get_observe_value().is_none() {
            self.on_failure(clock::now(), id, OpError::Reset);
        }
    }
}

/// Decodes a Read/Notify payload; no Content-Format means text for a resource, opaque otherwise.
fn decode_payload(
    format: Option<ContentFormat>,
    payload: &[u8],
    path: &LwM2mPath,
    registry: &Registry,
) -> Result<Vec<Record>, codec::CodecError> {
    if payload.is_empty() {
        return Ok(vec![]);
    }
    let format = format.unwrap_or(if path.depth() >= 3 { ContentFormat::TEXT } else { ContentFormat::TLV });
    codec::decode(format, payload, path, registry)
}

/// Maps an invalid-operation error for callers that build operations themselves.
pub(crate) fn invalid(path: LwM2mPath, op: &'static str) -> OpError {
    OpError::Invalid(OperationError::Path { op, path })
}
