//! The event loop: one task owns the UDP socket, the sans-IO CoAP endpoint, the registration store and the
//! operations in flight. It selects over a closed set of inputs (datagram, command, timer, shutdown).
//!
//! This module is the socket loop (datagrams in and out, timers, commands from handles, CoAP requests routed
//! to their handlers); the rest is split by seam, each module adding handlers to [`Server`]:
//!
//! - `registrations`: the registration table ([`registrations::Registrations`]) and the registration
//!   interface (Register, Update, De-register, Send, expiry, queue mode);
//! - `ops`: operations in flight ([`ops::InFlight`]: pending requests, deadlines, observations), their answers
//!   and notifications;
//! - `security`: the DTLS socket, the NoSec filter, the admission rules.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use coap::lite::{CoapOption, MessageClass, Packet, RequestType};
use coap::{Endpoint, Event as CoapEvent, IncomingId, RequestId};
use lwm2m::{ContentFormat, LwM2mPath, Registry};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

mod ops;
mod registrations;
mod security;

use crate::clock;
use crate::creds::CredentialStore;
use crate::dtls::Dtls;
use crate::handle::Stats;
use crate::packet::reply_packet;
use crate::types::{ClientInfo, OpError, SendAnswer, SendReceipt, ServerEvent};

use ops::InFlight;
pub(crate) use ops::{OpSpec, Reply, invalid};
use registrations::Registrations;

/// Inputs from handles.
pub(crate) enum Command {
    Op { endpoint: String, op: OpSpec, timeout: Duration, reply: Reply },
    CancelObserve { endpoint: String, path: LwM2mPath, reply: oneshot::Sender<usize> },
    Clients(oneshot::Sender<Vec<Arc<ClientInfo>>>),
    Client(String, oneshot::Sender<Option<Arc<ClientInfo>>>),
    AnswerSend(SendReceipt, SendAnswer),
}

pub(crate) struct Server {
    socket: Arc<UdpSocket>,
    coap: Endpoint,
    registry: Arc<Registry>,
    /// The registrations.
    regs: Registrations,
    /// Operations sent and observations.
    ops: InFlight,
    events: broadcast::Sender<ServerEvent>,
    stats: Arc<Stats>,
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
    /// How long a Send waits for its receipt's answer (`None`: Sends are answered at once).
    send_receipts: Option<Duration>,
    /// Sends waiting for their answer: receipt → (the CoAP exchange, when it is answered 5.03 instead, the
    /// endpoint).
    pending_sends: std::collections::BTreeMap<SendReceipt, (IncomingId, Instant, String)>,
    /// Sends waiting per endpoint (at most [`MAX_PENDING_SENDS`] each).
    pending_per_endpoint: std::collections::HashMap<String, usize>,
    next_receipt: u64,
}

const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Sends of one endpoint that may wait for their receipts at once; a further one is answered 4.29 Too Many
/// Requests (RFC 8516) at once, so a device cannot fill the server with held exchanges.
pub(crate) const MAX_PENDING_SENDS: usize = 16;
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
            regs: Registrations::default(),
            ops: InFlight::default(),
            events,
            stats,
            next_sweep: now + SWEEP_EVERY,
            queue_awake,
            dtls: None,
            dtls_out: Vec::new(),
            nosec: true,
            creds: None,
            creds_seen: 0,
            send_receipts: None,
            pending_sends: Default::default(),
            pending_per_endpoint: Default::default(),
            next_receipt: 0,
        }
    }

    /// Sends wait up to `timeout` for their receipt's answer (see `ServerConfig::send_receipt_timeout`).
    pub(crate) fn with_send_receipts(mut self, timeout: Option<Duration>) -> Self {
        self.send_receipts = timeout;
        self
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
                self.ops.next_deadline(),
                // Receipts are numbered in arrival order and share one timeout: the first is due first.
                self.pending_sends.first_key_value().map(|(_, (_, due, _))| *due),
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
                        let regs = &self.regs;
                        let in_use = |p: &SocketAddr| regs.at(p).is_some_and(|r| r.info.identity.is_some());
                        self.dtls_out.extend(d.handle_timeout(now, in_use));
                        self.stats.dtls_sessions.store(d.sessions() as u64, Ordering::Relaxed);
                    }
                    self.expire_ops(now);
                    self.expire_sends(now);
                    if now >= self.next_sweep {
                        self.sweep(now);
                        self.next_sweep = now + SWEEP_EVERY;
                    }
                    self.process(now);
                }
            }
            self.flush().await;
        }
        for p in self.ops.drain() {
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
            if self.regs.at(&t.to).is_some_and(|r| r.info.identity.is_some()) {
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
            (["dp"], RequestType::Post) => match self.send_op(now, id, from, &req) {
                Some(resp) => resp,
                None => return, // answered when its receipt is
            },
            (["rd"] | ["rd", _] | ["dp"], _) => reply_packet(4, 5),
            _ => reply_packet(4, 4),
        };
        self.coap.respond(now, id, resp);
    }

    fn command(&mut self, now: Instant, c: Command) {
        match c {
            Command::Clients(tx) => {
                let _ = tx.send(self.regs.values().map(|r| r.info.clone()).collect());
            }
            Command::Client(ep, tx) => {
                let info = self.regs.of_endpoint(&ep).map(|r| r.info.clone());
                let _ = tx.send(info);
            }
            Command::CancelObserve { endpoint, path, reply } => {
                let Some(reg) = self.regs.of_endpoint_mut(&endpoint) else {
                    let _ = reply.send(0);
                    return;
                };
                let (gone, keep): (Vec<RequestId>, Vec<RequestId>) = reg
                    .observations
                    .iter()
                    .partition(|o| self.ops.observation(o).is_some_and(|x| x.path == path));
                reg.observations = keep;
                for o in &gone {
                    self.ops.end_observation(o);
                    // Active cancel (GET with Observe 1); its answer has no pending operation and is dropped.
                    if self.coap.cancel_observation(now, *o).is_none() {
                        self.coap.cancel(*o);
                    }
                }
                let _ = reply.send(gone.len());
            }
            Command::Op { endpoint, op, timeout, reply } => self.start_op(now, endpoint, op, timeout, reply),
            Command::AnswerSend(receipt, answer) => {
                // Unknown: answered already, or 5.03 after its timeout.
                if let Some(id) = self.take_pending_send(receipt) {
                    self.coap.respond(now, id, send_answer_packet(&answer));
                }
            }
        }
    }

    /// Answers 5.03 the Sends whose receipt was not answered in time.
    fn expire_sends(&mut self, now: Instant) {
        while let Some((&receipt, (_, due, _))) = self.pending_sends.first_key_value() {
            if *due > now {
                // Receipts are numbered in arrival order and share one timeout: the first is the earliest.
                break;
            }
            let Some(id) = self.take_pending_send(receipt) else { break };
            tracing::warn!(receipt = receipt.0, "Send not answered in time: 5.03");
            let answer = SendAnswer::Unavailable("not recorded in time".into());
            self.coap.respond(now, id, send_answer_packet(&answer));
        }
    }

    /// Holds a Send's exchange for its receipt; `None` when its endpoint has [`MAX_PENDING_SENDS`] waiting.
    pub(super) fn hold_send(&mut self, id: IncomingId, due: Instant, endpoint: &str) -> Option<SendReceipt> {
        let waiting = self.pending_per_endpoint.entry(endpoint.to_owned()).or_default();
        if *waiting >= MAX_PENDING_SENDS {
            return None;
        }
        *waiting += 1;
        let receipt = SendReceipt(self.next_receipt);
        self.next_receipt += 1;
        self.pending_sends.insert(receipt, (id, due, endpoint.to_owned()));
        Some(receipt)
    }

    /// Forgets a held Send; its exchange, if it was still held.
    pub(super) fn take_pending_send(&mut self, receipt: SendReceipt) -> Option<IncomingId> {
        let (id, _, endpoint) = self.pending_sends.remove(&receipt)?;
        if let std::collections::hash_map::Entry::Occupied(mut e) = self.pending_per_endpoint.entry(endpoint)
        {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        Some(id)
    }
}

/// The CoAP response of a Send's answer.
fn send_answer_packet(answer: &SendAnswer) -> Packet {
    let ((class, detail), why) = answer.code();
    let mut p = reply_packet(class, detail);
    p.payload = why.as_bytes().to_vec();
    p
}

#[cfg(test)]
mod tests;
