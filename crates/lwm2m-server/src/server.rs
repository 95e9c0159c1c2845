//! The event loop: one task owns the UDP socket, the sans-IO CoAP endpoint, the registration store and the
//! operations in flight. It selects over a closed set of inputs (datagram, command, timer, shutdown).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use coap::lite::{CoapOption, MessageClass, Packet, RequestType};
use coap::{Endpoint, Event as CoapEvent, IncomingId, RequestId};
use lwm2m::codec::{self, Record};
use lwm2m::ops::{Downlink, OperationError, ResponseCode, WriteMode};
use lwm2m::registration::{LwM2mVersion, parse_register, parse_update};
use lwm2m::{ContentFormat, LwM2mPath, Registry, link};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

mod security;

use crate::clock;
use crate::creds::CredentialStore;
use crate::dtls::Dtls;
use crate::handle::Stats;
use crate::packet::{packet_of, reply_packet};
use crate::types::{ClientInfo, OpError, OpResponse, ServerEvent};

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

/// Inputs from handles.
pub(crate) enum Command {
    Op { endpoint: String, op: OpSpec, timeout: Duration, reply: Reply },
    CancelObserve { endpoint: String, path: LwM2mPath, reply: oneshot::Sender<usize> },
    Clients(oneshot::Sender<Vec<Arc<ClientInfo>>>),
    Client(String, oneshot::Sender<Option<Arc<ClientInfo>>>),
}

struct Registration {
    info: Arc<ClientInfo>,
    expires: Instant,
    /// The client ignored a request with Accept at least once: send no Accept any more.
    accept_dropped: bool,
    observations: Vec<RequestId>,
    /// Queue mode: reachable until then.
    awake_until: Instant,
    /// Queue mode: operations waiting for the client to wake up (spec, overall deadline, reply).
    queued: Vec<(OpSpec, Instant, Reply)>,
}

struct Pending {
    reg_id: String,
    op: Downlink,
    /// When to give up on this attempt.
    deadline: Instant,
    /// When to give up altogether (after a fallback without Accept).
    final_deadline: Instant,
    /// The server chose the Accept (the caller did not ask for a format): it may retry without.
    auto_accept: bool,
    reply: Reply,
}

struct Observation {
    endpoint: String,
    path: LwM2mPath,
}

pub(crate) struct Server {
    socket: Arc<UdpSocket>,
    coap: Endpoint,
    registry: Arc<Registry>,
    regs: HashMap<String, Registration>,
    by_endpoint: HashMap<String, String>,
    by_addr: HashMap<SocketAddr, String>,
    pending: HashMap<RequestId, Pending>,
    deadlines: BinaryHeap<Reverse<(Instant, RequestId)>>,
    observations: HashMap<RequestId, Observation>,
    events: broadcast::Sender<ServerEvent>,
    stats: Arc<Stats>,
    next_reg: u64,
    next_sweep: Instant,
    queue_awake: Duration,
    /// The DTLS socket and sessions, if DTLS is on.
    dtls: Option<(Arc<UdpSocket>, Dtls)>,
    /// Datagrams for the DTLS socket (handshake flights, encrypted CoAP).
    dtls_out: Vec<(SocketAddr, Vec<u8>)>,
    /// NoSec registrations accepted at all.
    nosec: bool,
    creds: Option<Arc<dyn CredentialStore>>,
    /// The credential store's generation the registrations were last checked against.
    creds_seen: u64,
}

const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Extra time past the lifetime before a registration expires (network delay, retransmissions).
const EXPIRY_GRACE: Duration = Duration::from_secs(2);

fn content_format_of(p: &Packet, opt: CoapOption) -> Option<ContentFormat> {
    p.get_first_option(opt).map(|v| ContentFormat(v.iter().fold(0u16, |a, b| (a << 8) | u16::from(*b))))
}

impl Server {
    pub(crate) fn new(
        socket: Arc<UdpSocket>,
        config: coap::Config,
        registry: Arc<Registry>,
        events: broadcast::Sender<ServerEvent>,
        stats: Arc<Stats>,
        queue_awake: Duration,
    ) -> Self {
        let now = clock::now();
        Server {
            socket,
            coap: Endpoint::new(config),
            registry,
            regs: HashMap::new(),
            by_endpoint: HashMap::new(),
            by_addr: HashMap::new(),
            pending: HashMap::new(),
            deadlines: BinaryHeap::new(),
            observations: HashMap::new(),
            events,
            stats,
            next_reg: 0,
            next_sweep: now + SWEEP_EVERY,
            queue_awake,
            dtls: None,
            dtls_out: Vec::new(),
            nosec: true,
            creds: None,
            creds_seen: 0,
        }
    }

    /// Runs until `shutdown` is cancelled or every handle is gone.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        let mut buf = vec![0u8; 65536];
        let mut dbuf = vec![0u8; 65536];
        let dtls_socket = self.dtls.as_ref().map(|(s, _)| s.clone());
        loop {
            let wake = [
                self.coap.poll_timeout(),
                self.dtls.as_ref().and_then(|(_, d)| d.poll_timeout()),
                self.deadlines.peek().map(|Reverse((t, _))| *t),
                Some(self.next_sweep),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.next_sweep);
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(wake));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let now = clock::now();
                        self.nosec_datagram(now, from, &buf[..n]);
                        // Drain what else is queued without waking up again.
                        for _ in 0..64 {
                            match self.socket.try_recv_from(&mut buf) {
                                Ok((n, from)) => self.nosec_datagram(now, from, &buf[..n]),
                                Err(_) => break,
                            }
                        }
                        self.process(now);
                    }
                    Err(e) => tracing::debug!("udp receive error: {e}"),
                },
                r = async {
                    match &dtls_socket {
                        Some(s) => s.recv_from(&mut dbuf).await,
                        None => std::future::pending().await,
                    }
                } => match r {
                    Ok((n, from)) => {
                        let now = clock::now();
                        self.dtls_datagram(now, from, &dbuf[..n]);
                        // Drain what else is queued without waking up again, as for NoSec.
                        if let Some(sock) = &dtls_socket {
                            for _ in 0..64 {
                                match sock.try_recv_from(&mut dbuf) {
                                    Ok((n, from)) => self.dtls_datagram(now, from, &dbuf[..n]),
                                    Err(_) => break,
                                }
                            }
                        }
                        self.process(now);
                    }
                    Err(e) => tracing::debug!("dtls udp receive error: {e}"),
                },
                c = commands.recv() => match c {
                    Some(c) => { let now = clock::now(); self.command(now, c); self.process(now); }
                    None => break,
                },
                _ = sleep => {
                    let now = clock::now();
                    self.coap.handle_timeout(now);
                    if let Some((_, d)) = self.dtls.as_mut() {
                        // A session that a live DTLS registration talks through is kept however idle.
                        let (regs, by_addr) = (&self.regs, &self.by_addr);
                        let in_use = |p: &SocketAddr| {
                            by_addr.get(p).and_then(|r| regs.get(r)).is_some_and(|r| r.info.identity.is_some())
                        };
                        self.dtls_out.extend(d.handle_timeout(now, in_use));
                        self.stats.dtls_sessions.store(d.sessions() as u64, Ordering::Relaxed);
                    }
                    self.expire_ops(now);
                    if now >= self.next_sweep {
                        self.sweep(now);
                        self.next_sweep = now + SWEEP_EVERY;
                    }
                    self.process(now);
                }
            }
            self.flush().await;
        }
        for (_, p) in self.pending.drain() {
            let _ = p.reply.send(Err(OpError::Stopped));
        }
    }

    async fn flush(&mut self) {
        while let Some(t) = self.coap.poll_transmit() {
            // A peer with a DTLS session hears only through it; a DTLS registration without a session
            // (it ended) is not sent to in the clear.
            if let Some((_, d)) = self.dtls.as_mut()
                && d.identity_of(&t.to).is_some()
            {
                if let Some(records) = d.send(t.to, &t.bytes) {
                    self.dtls_out.extend(records.into_iter().map(|r| (t.to, r)));
                }
                continue;
            }
            if self
                .by_addr
                .get(&t.to)
                .and_then(|r| self.regs.get(r))
                .is_some_and(|r| r.info.identity.is_some())
            {
                tracing::debug!("no DTLS session with {}: message dropped", t.to);
                continue;
            }
            if let Err(e) = self.socket.send_to(&t.bytes, t.to).await {
                tracing::debug!("udp send to {} failed: {e}", t.to);
            }
        }
        if let Some((sock, _)) = &self.dtls {
            for (to, d) in self.dtls_out.drain(..) {
                if let Err(e) = sock.send_to(&d, to).await {
                    tracing::debug!("dtls udp send to {to} failed: {e}");
                }
            }
        }
    }

    fn process(&mut self, now: Instant) {
        while let Some(ev) = self.coap.poll_event() {
            match ev {
                CoapEvent::Request { id, from, request } => self.on_request(now, id, from, request),
                CoapEvent::Response { id, response } => self.on_response(now, id, response),
                CoapEvent::Notification { id, from, response } => self.on_notification(id, from, response),
                CoapEvent::Timeout { id } => self.on_failure(now, id, OpError::Timeout),
                CoapEvent::Reset { id } => self.on_failure(now, id, OpError::Reset),
            }
        }
    }

    // ---- registration interface and Send ---------------------------------------------------------------

    fn on_request(&mut self, now: Instant, id: IncomingId, from: SocketAddr, req: Packet) {
        let path = coap::path_of(&req);
        let method = match req.header.code {
            MessageClass::Request(m) => m,
            _ => return,
        };
        let segs: Vec<&str> = path.iter().map(String::as_str).collect();
        let resp = match (segs.as_slice(), method) {
            (["rd"], RequestType::Post) => self.register(now, from, &req),
            (["rd", reg], RequestType::Post) => self.update(now, from, reg, &req),
            (["rd", reg], RequestType::Delete) => self.deregister(from, reg),
            (["dp"], RequestType::Post) => self.send_op(from, &req),
            (["rd"] | ["rd", _] | ["dp"], _) => reply_packet(4, 5),
            _ => reply_packet(4, 4),
        };
        self.coap.respond(now, id, resp);
    }

    fn register(&mut self, now: Instant, from: SocketAddr, req: &Packet) -> Packet {
        let queries = coap::queries_of(req);
        let cf = content_format_of(req, CoapOption::ContentFormat).map(|c| c.0);
        let r = match parse_register(&queries, cf, &req.payload) {
            Ok(r) => r,
            Err(e) => {
                let (c, d) = e.coap_code();
                tracing::debug!("register from {from} refused: {e}");
                let mut p = reply_packet(c, d);
                p.payload = e.to_string().into_bytes();
                return p;
            }
        };
        let identity = self.identity_at(&from);
        match &identity {
            Some(id) => {
                let bound = self.creds.as_ref().and_then(|c| c.endpoint_of(id));
                if bound.as_deref() != Some(r.endpoint.as_str()) {
                    return self.refuse(
                        from,
                        "DTLS Register",
                        &format!("{id} is not bound to endpoint {}", r.endpoint),
                    );
                }
            }
            None if !self.nosec => return self.refuse(from, "NoSec Register", "NoSec is off"),
            None if self.creds.as_ref().is_some_and(|c| c.has_credentials(&r.endpoint)) => {
                return self.refuse(
                    from,
                    "NoSec Register",
                    &format!("endpoint {} has credentials: register over DTLS", r.endpoint),
                );
            }
            None => {}
        }
        // A new Register of the same endpoint replaces the old registration.
        if let Some(old) = self.by_endpoint.get(&r.endpoint).cloned()
            && let Some(info) = self.remove_registration(&old)
        {
            let _ = self.events.send(ServerEvent::Deregistered {
                endpoint: info.endpoint.clone(),
                registration_id: info.registration_id.clone(),
            });
        }
        self.next_reg += 1;
        let reg_id =
            format!("{:x}{:04x}", self.next_reg, (self.next_reg.wrapping_mul(0x9E37_79B9) >> 7) & 0xFFFF);
        let wall = clock::wall();
        let info = Arc::new(ClientInfo {
            endpoint: r.endpoint.clone(),
            registration_id: reg_id.clone(),
            address: from,
            lifetime: r.lifetime,
            version: r.version,
            binding: r.binding,
            queue_mode: r.queue_mode,
            root_path: r.links.root_path.clone(),
            objects: r.links.objects.iter().map(|o| o.path).collect(),
            supported_formats: r.links.supported_formats.clone(),
            links: r.links.links,
            registered_at: wall,
            last_update: wall,
            identity,
        });
        self.regs.insert(
            reg_id.clone(),
            Registration {
                info: info.clone(),
                expires: now + Duration::from_secs(u64::from(r.lifetime)) + EXPIRY_GRACE,
                accept_dropped: false,
                observations: Vec::new(),
                awake_until: now + self.queue_awake,
                queued: Vec::new(),
            },
        );
        self.by_endpoint.insert(r.endpoint, reg_id.clone());
        self.by_addr.insert(from, reg_id.clone());
        self.stats.registrations.fetch_add(1, Ordering::Relaxed);
        let _ = self.events.send(ServerEvent::Registered(info));
        let mut p = reply_packet(2, 1);
        p.add_option(CoapOption::LocationPath, b"rd".to_vec());
        p.add_option(CoapOption::LocationPath, reg_id.into_bytes());
        p
    }

    fn update(&mut self, now: Instant, from: SocketAddr, reg_id: &str, req: &Packet) -> Packet {
        let queries = coap::queries_of(req);
        let cf = content_format_of(req, CoapOption::ContentFormat).map(|c| c.0);
        let u = match parse_update(&queries, cf, &req.payload) {
            Ok(u) => u,
            Err(e) => {
                let (c, d) = e.coap_code();
                return reply_packet(c, d);
            }
        };
        let identity = self.identity_at(&from);
        match self.regs.get(reg_id) {
            None => return reply_packet(4, 4),
            Some(reg) if reg.info.identity != identity => {
                return self.refuse(from, "Update", "not the security context of the registration");
            }
            Some(_) => {}
        }
        let Some(reg) = self.regs.get_mut(reg_id) else { return reply_packet(4, 4) };
        let mut info = (*reg.info).clone();
        if info.address != from {
            self.by_addr.remove(&info.address);
            info.address = from;
        }
        if let Some(lt) = u.lifetime {
            info.lifetime = lt;
        }
        if let Some(b) = u.binding {
            info.binding = b;
        }
        if let Some(l) = u.links {
            info.objects = l.objects.iter().map(|o| o.path).collect();
            if !l.supported_formats.is_empty() {
                info.supported_formats = l.supported_formats.clone();
            }
            info.links = l.links;
        }
        info.last_update = clock::wall();
        reg.expires = now + Duration::from_secs(u64::from(info.lifetime)) + EXPIRY_GRACE;
        if info.binding.contains('Q') {
            info.queue_mode = true;
        }
        reg.awake_until = now + self.queue_awake;
        let queued = std::mem::take(&mut reg.queued);
        let info = Arc::new(info);
        reg.info = info.clone();
        self.by_addr.insert(from, reg_id.to_owned());
        let _ = self.events.send(ServerEvent::Updated(info.clone()));
        // A client in queue mode is awake now: send what waited for it.
        for (op, deadline, reply) in queued {
            match deadline.checked_duration_since(now) {
                Some(left) if !left.is_zero() => self.start_op(now, info.endpoint.clone(), op, left, reply),
                _ => {
                    let _ = reply.send(Err(OpError::Timeout));
                }
            }
        }
        reply_packet(2, 4)
    }

    fn deregister(&mut self, from: SocketAddr, reg_id: &str) -> Packet {
        if let Some(reg) = self.regs.get(reg_id)
            && reg.info.identity != self.identity_at(&from)
        {
            return self.refuse(from, "De-register", "not the security context of the registration");
        }
        match self.remove_registration(reg_id) {
            Some(info) => {
                let _ = self.events.send(ServerEvent::Deregistered {
                    endpoint: info.endpoint.clone(),
                    registration_id: info.registration_id.clone(),
                });
                reply_packet(2, 2)
            }
            None => reply_packet(4, 4),
        }
    }

    fn remove_registration(&mut self, reg_id: &str) -> Option<Arc<ClientInfo>> {
        let reg = self.regs.remove(reg_id)?;
        if self.by_endpoint.get(&reg.info.endpoint).is_some_and(|r| r == reg_id) {
            self.by_endpoint.remove(&reg.info.endpoint);
        }
        if self.by_addr.get(&reg.info.address).is_some_and(|r| r == reg_id) {
            self.by_addr.remove(&reg.info.address);
        }
        for (_, _, reply) in reg.queued {
            let _ = reply.send(Err(OpError::Stopped));
        }
        for obs in reg.observations {
            self.observations.remove(&obs);
            self.coap.cancel(obs);
        }
        self.stats.registrations.fetch_sub(1, Ordering::Relaxed);
        Some(reg.info)
    }

    fn sweep(&mut self, now: Instant) {
        self.revalidate();
        for reg in self.regs.values_mut().filter(|r| !r.queued.is_empty()) {
            let (late, keep): (Vec<_>, Vec<_>) =
                std::mem::take(&mut reg.queued).into_iter().partition(|q| q.1 <= now);
            reg.queued = keep;
            for (_, _, reply) in late {
                let _ = reply.send(Err(OpError::Timeout));
            }
        }
        let expired: Vec<String> =
            self.regs.iter().filter(|(_, r)| r.expires <= now).map(|(k, _)| k.clone()).collect();
        for id in expired {
            if let Some(info) = self.remove_registration(&id) {
                let _ = self.events.send(ServerEvent::Expired {
                    endpoint: info.endpoint.clone(),
                    registration_id: info.registration_id.clone(),
                });
            }
        }
    }

    fn send_op(&mut self, from: SocketAddr, req: &Packet) -> Packet {
        let Some(reg) = self.by_addr.get(&from).and_then(|id| self.regs.get(id)) else {
            return reply_packet(4, 4);
        };
        if reg.info.identity != self.identity_at(&from) {
            return self.refuse(from, "Send", "not the security context of the registration");
        }
        let Some(cf) = content_format_of(req, CoapOption::ContentFormat) else { return reply_packet(4, 0) };
        if !matches!(cf, ContentFormat::SENML_JSON | ContentFormat::SENML_CBOR | ContentFormat::LWM2M_CBOR) {
            return reply_packet(4, 15);
        }
        match codec::decode(cf, &req.payload, &LwM2mPath::ROOT, &self.registry) {
            Ok(records) => {
                self.stats.sends.fetch_add(1, Ordering::Relaxed);
                let _ = self.events.send(ServerEvent::Send { endpoint: reg.info.endpoint.clone(), records });
                reply_packet(2, 4)
            }
            Err(e) => {
                let mut p = reply_packet(4, 0);
                p.payload = e.to_string().into_bytes();
                p
            }
        }
    }

    // ---- device management ------------------------------------------------------------------------------

    fn command(&mut self, now: Instant, c: Command) {
        match c {
            Command::Clients(tx) => {
                let _ = tx.send(self.regs.values().map(|r| r.info.clone()).collect());
            }
            Command::Client(ep, tx) => {
                let info = self.by_endpoint.get(&ep).and_then(|id| self.regs.get(id)).map(|r| r.info.clone());
                let _ = tx.send(info);
            }
            Command::CancelObserve { endpoint, path, reply } => {
                let Some(reg) = self.by_endpoint.get(&endpoint).and_then(|id| self.regs.get_mut(id)) else {
                    let _ = reply.send(0);
                    return;
                };
                let (gone, keep): (Vec<RequestId>, Vec<RequestId>) = reg
                    .observations
                    .iter()
                    .partition(|o| self.observations.get(o).is_some_and(|x| x.path == path));
                reg.observations = keep;
                for o in &gone {
                    self.observations.remove(o);
                    // Active cancel (GET with Observe 1); its answer has no pending operation and is dropped.
                    if self.coap.cancel_observation(now, *o).is_none() {
                        self.coap.cancel(*o);
                    }
                }
                let _ = reply.send(gone.len());
            }
            Command::Op { endpoint, op, timeout, reply } => self.start_op(now, endpoint, op, timeout, reply),
        }
    }

    fn choose_format(&self, reg: &Registration, path: &LwM2mPath, for_write: bool) -> Option<ContentFormat> {
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

    fn start_op(&mut self, now: Instant, endpoint: String, spec: OpSpec, timeout: Duration, reply: Reply) {
        let Some(reg_id) = self.by_endpoint.get(&endpoint).cloned() else {
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

    fn send_pending(&mut self, now: Instant, pending: Pending) {
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
        self.deadlines.push(Reverse((pending.deadline, id)));
        self.pending.insert(id, pending);
    }

    /// Retries a Read/Observe without the Accept the server chose, if that is still possible; gives the
    /// pending back otherwise. `ignored`: the client did not answer at all (remember to send no Accept);
    /// otherwise it answered 4.06.
    fn fallback(&mut self, now: Instant, mut p: Pending, ignored: bool) -> Option<Pending> {
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

    fn expire_ops(&mut self, now: Instant) {
        while let Some(Reverse((t, id))) = self.deadlines.peek().copied() {
            if t > now {
                break;
            }
            self.deadlines.pop();
            if self.pending.get(&id).is_none_or(|p| p.deadline != t) {
                continue;
            }
            if let Some(p) = self.pending.remove(&id) {
                self.coap.cancel(id);
                if let Some(p) = self.fallback(now, p, true) {
                    let _ = p.reply.send(Err(OpError::Timeout));
                }
            }
        }
    }

    fn on_failure(&mut self, now: Instant, id: RequestId, err: OpError) {
        if let Some(obs) = self.observations.remove(&id) {
            if let Some(reg) = self.by_endpoint.get(&obs.endpoint).and_then(|r| self.regs.get_mut(r)) {
                reg.observations.retain(|o| *o != id);
            }
            return;
        }
        if let Some(p) = self.pending.remove(&id) {
            let p = if err == OpError::Timeout { self.fallback(now, p, true) } else { Some(p) };
            if let Some(p) = p {
                let _ = p.reply.send(Err(err));
            }
        }
    }

    fn on_response(&mut self, now: Instant, id: RequestId, resp: Packet) {
        let Some(p) = self.pending.remove(&id) else { return };
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
            self.observations
                .insert(id, Observation { endpoint: reg.info.endpoint.clone(), path: *p.op.path() });
        }
        self.finish(id, p, rc, resp);
    }

    fn finish(&mut self, _id: RequestId, p: Pending, rc: ResponseCode, resp: Packet) {
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

    fn on_notification(&mut self, id: RequestId, from: SocketAddr, resp: Packet) {
        let Some(obs) = self.observations.get(&id) else { return };
        if self
            .by_endpoint
            .get(&obs.endpoint)
            .and_then(|r| self.regs.get(r))
            .is_some_and(|r| r.info.identity != self.identity_at(&from))
        {
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
        if let Some(reg_id) = self.by_endpoint.get(&obs.endpoint).cloned()
            && let Some(reg) = self.regs.get_mut(&reg_id)
            && reg.info.address != from
        {
            let mut info = (*reg.info).clone();
            self.by_addr.remove(&info.address);
            info.address = from;
            reg.info = Arc::new(info);
            self.by_addr.insert(from, reg_id);
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
