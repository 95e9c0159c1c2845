//! The exchange layer: message ids, tokens, retransmission, deduplication, Observe and block-wise transfer.
//!
//! ```text
//!  datagram ──► handle_datagram ──► dedup ─► Block1 reassembly ─► Event::Request ──► respond()
//!                     │                                                          (piggy-backed ACK,
//!                     └─► ACK/RST/response ─► token match ─► Block2 follow-up      or separate CON/NON)
//!                                                   └─► Event::Response / Notification / Timeout / Reset
//!  send_request ─► CON retransmit (ACK_TIMEOUT · 2^n, randomised) until ACK, RST or MAX_RETRANSMIT
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, ResponseType};

use crate::block::BlockValue;
use crate::msg::{decode, encode, response, unknown_critical_option};
use crate::observe::is_fresh;

/// Transmission parameters (RFC 7252 §4.8) and limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ACK_TIMEOUT` (2 s).
    pub ack_timeout: Duration,
    /// `ACK_RANDOM_FACTOR` in thousandths (1500 = 1.5).
    pub ack_random_factor_milli: u32,
    /// `MAX_RETRANSMIT` (4).
    pub max_retransmit: u32,
    /// `EXCHANGE_LIFETIME` (247 s): how long a request's message id is remembered for deduplication.
    pub exchange_lifetime: Duration,
    /// How long a confirmable request may wait for `respond` before an empty ACK is sent (separate response).
    pub separate_ack_after: Duration,
    /// How long to wait for a separate response (or any response to a NON request) before `Event::Timeout`.
    pub response_timeout: Duration,
    /// Block size used for our block-wise transfers (16..=1024).
    pub block_size: usize,
    /// Largest request body reassembled from Block1 transfers; larger gets 4.13.
    pub max_body: usize,
    /// Seed of the generator for message ids, tokens and back-off jitter.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ack_timeout: Duration::from_secs(2),
            ack_random_factor_milli: 1500,
            max_retransmit: 4,
            exchange_lifetime: Duration::from_secs(247),
            separate_ack_after: Duration::from_millis(1000),
            response_timeout: Duration::from_secs(93),
            block_size: 1024,
            max_body: 1 << 20,
            seed: 0x5eed_c0a9,
        }
    }
}

/// A request this endpoint sent ([`Endpoint::send_request`]); also names its observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A request this endpoint received, to be answered with [`Endpoint::respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IncomingId(pub u64);

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// Encoded CoAP message.
    pub bytes: Vec<u8>,
}

/// What the endpoint reports to its user.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new request (duplicates are filtered, Block1 bodies reassembled). Answer it with `respond`.
    Request {
        /// Handle for `respond`.
        id: IncomingId,
        /// Source address.
        from: SocketAddr,
        /// The request, with the full payload.
        request: Packet,
    },
    /// The (first) response to one of our requests, Block2 bodies reassembled.
    Response {
        /// Which request.
        id: RequestId,
        /// The response.
        response: Packet,
    },
    /// A fresh notification of an observation established by `id` (stale or duplicate ones are dropped).
    Notification {
        /// Which observation.
        id: RequestId,
        /// Sender (clients may change ports).
        from: SocketAddr,
        /// The notification; an error code ends the observation.
        response: Packet,
    },
    /// No (complete) response in time: MAX_RETRANSMIT reached or `response_timeout` passed.
    Timeout {
        /// Which request.
        id: RequestId,
    },
    /// The peer rejected our message with a Reset.
    Reset {
        /// Which request (or observation).
        id: RequestId,
    },
}

#[derive(Debug)]
struct Outgoing {
    to: SocketAddr,
    /// The request as the user gave it (payload = the whole body).
    request: Packet,
    token: Vec<u8>,
    /// Current message id and bytes, while unacknowledged.
    mid: u16,
    bytes: Vec<u8>,
    confirmable: bool,
    acked: bool,
    attempt: u32,
    timeout: Duration,
    deadline: Instant,
    /// Block1 state: offset of the block in flight when the body is sent in blocks.
    block1: Option<(u32, u8)>,
    /// Block2 reassembly buffer.
    block2_body: Vec<u8>,
    wants_observe: bool,
    observing: Option<(u32, Instant)>,
    /// Separate CON response we send (no user-visible events, only retransmission).
    is_response: bool,
    /// For a fetch of the remaining Block2 blocks of a notification: the observation, the sender and the
    /// first block (its header and options) to complete.
    parent: Option<(RequestId, SocketAddr, Packet)>,
    /// An observation whose first response is still being completed block-wise.
    first_pending: bool,
}

#[derive(Debug)]
struct Incoming {
    from: SocketAddr,
    mid: u16,
    token: Vec<u8>,
    confirmable: bool,
    acked: bool,
    block1_echo: Option<BlockValue>,
}

#[derive(Debug)]
struct Assembly {
    body: Vec<u8>,
    next: u32,
    szx: u8,
    expires: Instant,
}

/// A CoAP endpoint (client and server at once).
///
/// Driving it: after every call to `handle_datagram`, `handle_timeout`, `send_request`, `respond`, `cancel`
/// or `cancel_observation`, drain `poll_transmit` (send each datagram) and `poll_event` until both return
/// `None`, then arm one timer for `poll_timeout` and call `handle_timeout` when it fires. The endpoint keeps
/// no reference to time between calls: every `now` must be monotonic.
#[derive(Debug)]
pub struct Endpoint {
    config: Config,
    rng: u64,
    next_mid: u16,
    next_id: u64,
    outgoing: HashMap<RequestId, Outgoing>,
    by_mid: HashMap<u16, RequestId>,
    by_token: HashMap<Vec<u8>, RequestId>,
    incoming: HashMap<IncomingId, Incoming>,
    /// (peer, mid) → cached reply bytes (None while the request is being processed).
    dedup: HashMap<(SocketAddr, u16), Option<Vec<u8>>>,
    dedup_order: VecDeque<(Instant, SocketAddr, u16)>,
    assemblies: HashMap<(SocketAddr, Vec<String>), Assembly>,
    timers: BinaryHeap<Reverse<(Instant, u8, u64)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

const T_OUT: u8 = 0;
const T_IN: u8 = 1;

impl Endpoint {
    /// A new endpoint with `config`.
    pub fn new(config: Config) -> Self {
        let rng = config.seed | 1;
        let mut ep = Endpoint {
            config,
            rng,
            next_mid: 0,
            next_id: 1,
            outgoing: HashMap::new(),
            by_mid: HashMap::new(),
            by_token: HashMap::new(),
            incoming: HashMap::new(),
            dedup: HashMap::new(),
            dedup_order: VecDeque::new(),
            assemblies: HashMap::new(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        ep.next_mid = (ep.random() & 0xFFFF) as u16;
        ep
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn mid(&mut self) -> u16 {
        self.next_mid = self.next_mid.wrapping_add(1);
        self.next_mid
    }

    /// Number of requests in flight plus active observations (for metrics and tests).
    pub fn open_exchanges(&self) -> usize {
        self.outgoing.len()
    }

    /// Next datagram to send. Call after every `handle_*`, `send_request`, `respond` until it returns `None`.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event. Call after every `handle_*` until it returns `None`.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next (ask again after every call into the endpoint).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((t, _, _))| *t);
        let dedup = self.dedup_order.front().map(|(t, _, _)| *t + self.config.exchange_lifetime);
        match (timer, dedup) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends `request` to `to` as CON (`confirmable`) or NON. The endpoint sets message id, token and type;
    /// a payload larger than the block size goes out block-wise (Block1). A request with Observe = 0 stays
    /// registered after its response and yields `Event::Notification`s until `cancel`.
    pub fn send_request(
        &mut self,
        now: Instant,
        to: SocketAddr,
        request: Packet,
        confirmable: bool,
    ) -> RequestId {
        let id = RequestId(self.next_id);
        let token = (self.random() as u32 ^ id.0 as u32).to_be_bytes().to_vec();
        self.send_with_token(now, to, request, confirmable, token)
    }

    /// Cancels observation `id` actively (RFC 7641 §3.6): forgets it and sends its request again with
    /// Observe = 1 and the same token. The answer comes as `Event::Response` for the returned id (a
    /// notification still in flight may take its place). `None` if `id` is not an established observation.
    pub fn cancel_observation(&mut self, now: Instant, id: RequestId) -> Option<RequestId> {
        let out = self.outgoing.get(&id)?;
        out.observing?;
        let (to, token, confirmable) = (out.to, out.token.clone(), out.confirmable);
        let mut request = out.request.clone();
        request.clear_option(CoapOption::Observe);
        request.set_observe_value(1);
        self.cancel(id);
        Some(self.send_with_token(now, to, request, confirmable, token))
    }

    fn send_with_token(
        &mut self,
        now: Instant,
        to: SocketAddr,
        request: Packet,
        confirmable: bool,
        token: Vec<u8>,
    ) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let wants_observe = matches!(request.get_observe_value(), Some(Ok(0)));
        let block1 = (request.payload.len() > self.config.block_size)
            .then(|| (0, BlockValue::szx_for(self.config.block_size)));
        let mut out = Outgoing {
            to,
            request,
            token: token.clone(),
            mid: 0,
            bytes: Vec::new(),
            confirmable,
            acked: false,
            attempt: 0,
            timeout: Duration::ZERO,
            deadline: now,
            block1,
            block2_body: Vec::new(),
            wants_observe,
            observing: None,
            is_response: false,
            parent: None,
            first_pending: false,
        };
        let wire = self.wire_request(&out, None);
        self.by_token.insert(token, id);
        self.transmit_new(now, id, &mut out, wire);
        self.outgoing.insert(id, out);
        id
    }

    /// The packet for the current block of `out` (`block2`: the Block2 block we ask for next).
    fn wire_request(&self, out: &Outgoing, block2: Option<BlockValue>) -> Packet {
        let mut p = out.request.clone();
        p.set_token(out.token.clone());
        if let Some((num, szx)) = out.block1 {
            let size = 1usize << (szx + 4);
            let start = (num as usize).saturating_mul(size).min(out.request.payload.len());
            let end = start.saturating_add(size).min(out.request.payload.len());
            let more = end < out.request.payload.len();
            p.payload = out.request.payload[start..end].to_vec();
            p.add_option(CoapOption::Block1, BlockValue { num, more, szx }.encode());
            if num == 0 {
                p.add_option(CoapOption::Size1, (out.request.payload.len() as u32).to_be_bytes().to_vec());
            }
        }
        if let Some(b2) = block2 {
            p.clear_option(CoapOption::Observe);
            p.clear_option(CoapOption::Block2);
            p.add_option(CoapOption::Block2, b2.encode());
        }
        p
    }

    /// Gives `packet` a new message id and sends it, arming retransmission (CON) or the response timeout.
    fn transmit_new(&mut self, now: Instant, id: RequestId, out: &mut Outgoing, mut packet: Packet) {
        if out.mid != 0 || !out.bytes.is_empty() {
            self.by_mid.remove(&out.mid);
        }
        let mid = self.mid();
        packet.header.message_id = mid;
        packet.header.set_type(if out.confirmable {
            MessageType::Confirmable
        } else {
            MessageType::NonConfirmable
        });
        let Some(bytes) = encode(&packet) else {
            self.events.push_back(Event::Timeout { id });
            return;
        };
        out.mid = mid;
        out.acked = false;
        out.attempt = 0;
        self.by_mid.insert(mid, id);
        self.transmits.push_back(Transmit { to: out.to, bytes: bytes.clone() });
        if out.confirmable {
            let base = self.config.ack_timeout.as_millis() as u64;
            let spread = base * u64::from(self.config.ack_random_factor_milli.saturating_sub(1000)) / 1000;
            let jitter = if spread == 0 { 0 } else { self.random() % spread };
            out.timeout = Duration::from_millis(base + jitter);
            out.bytes = bytes;
        } else {
            out.timeout = self.config.response_timeout;
            out.bytes = Vec::new();
        }
        out.deadline = now + out.timeout;
        self.timers.push(Reverse((out.deadline, T_OUT, id.0)));
    }

    /// Forgets request or observation `id`: no more events for it; later notifications are answered with Reset.
    pub fn cancel(&mut self, id: RequestId) {
        if let Some(out) = self.outgoing.remove(&id) {
            self.by_mid.remove(&out.mid);
            self.by_token.remove(&out.token);
        }
    }

    /// Answers request `id` with `response` (its code, options and payload; the endpoint sets type, message id
    /// and token): piggy-backed on the ACK if none was sent yet, else as a separate response. Unknown ids
    /// (already answered) are ignored.
    pub fn respond(&mut self, now: Instant, id: IncomingId, mut response: Packet) {
        let Some(inc) = self.incoming.remove(&id) else { return };
        response.set_token(inc.token.clone());
        if let Some(b1) = inc.block1_echo {
            response.clear_option(CoapOption::Block1);
            response.add_option(CoapOption::Block1, b1.encode());
        }
        if inc.confirmable && !inc.acked {
            response.header.set_type(MessageType::Acknowledgement);
            response.header.message_id = inc.mid;
            if let Some(bytes) = encode(&response) {
                self.dedup.insert((inc.from, inc.mid), Some(bytes.clone()));
                self.transmits.push_back(Transmit { to: inc.from, bytes });
            }
        } else {
            // Separate response: CON if the request was CON (retransmitted until ACKed), else NON.
            let rid = RequestId(self.next_id);
            self.next_id += 1;
            let mut out = Outgoing {
                to: inc.from,
                request: response.clone(),
                token: inc.token.clone(),
                mid: 0,
                bytes: Vec::new(),
                confirmable: inc.confirmable,
                acked: false,
                attempt: 0,
                timeout: Duration::ZERO,
                deadline: now,
                block1: None,
                block2_body: Vec::new(),
                wants_observe: false,
                observing: None,
                is_response: true,
                parent: None,
                first_pending: false,
            };
            self.transmit_new(now, rid, &mut out, response);
            if inc.confirmable {
                self.outgoing.insert(rid, out);
            }
        }
    }

    /// Processes retransmissions, empty ACKs for slow requests, timeouts and cache expiry due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((t, _, _)) = self.dedup_order.front() {
            if *t + self.config.exchange_lifetime > now {
                break;
            }
            if let Some((_, peer, mid)) = self.dedup_order.pop_front() {
                self.dedup.remove(&(peer, mid));
            }
        }
        self.assemblies.retain(|_, a| a.expires > now);
        while let Some(Reverse((t, kind, raw))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            if kind == T_IN {
                self.incoming_timer(now, IncomingId(raw));
            } else {
                self.outgoing_timer(now, RequestId(raw), t);
            }
        }
    }

    fn incoming_timer(&mut self, _now: Instant, id: IncomingId) {
        let Some(inc) = self.incoming.get_mut(&id) else { return };
        if inc.confirmable && !inc.acked {
            inc.acked = true;
            let ack = empty(MessageType::Acknowledgement, inc.mid);
            let (from, mid) = (inc.from, inc.mid);
            if let Some(bytes) = encode(&ack) {
                self.dedup.insert((from, mid), Some(bytes.clone()));
                self.transmits.push_back(Transmit { to: from, bytes });
            }
        }
    }

    fn outgoing_timer(&mut self, now: Instant, id: RequestId, t: Instant) {
        let Some(out) = self.outgoing.get_mut(&id) else { return };
        if out.deadline != t || out.observing.is_some() {
            return;
        }
        if out.confirmable && !out.acked && out.attempt < self.config.max_retransmit {
            out.attempt += 1;
            out.timeout *= 2;
            out.deadline = now + out.timeout;
            self.transmits.push_back(Transmit { to: out.to, bytes: out.bytes.clone() });
            self.timers.push(Reverse((out.deadline, T_OUT, id.0)));
            return;
        }
        let internal = out.is_response || out.parent.is_some();
        self.cancel(id);
        if !internal {
            self.events.push_back(Event::Timeout { id });
        }
    }

    /// Processes one received datagram from `from` at `now`. Malformed confirmable messages are answered with
    /// Reset, other malformed datagrams are dropped (RFC 7252 §4.2, §4.3).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let packet = match decode(bytes) {
            Ok(p) => p,
            Err(_) => {
                // A header we can read, type CON: reject with RST.
                if bytes.len() >= 4 && bytes[0] >> 6 == 1 && (bytes[0] >> 4) & 0x3 == 0 {
                    let mid = u16::from_be_bytes([bytes[2], bytes[3]]);
                    self.send_empty(from, MessageType::Reset, mid);
                }
                return;
            }
        };
        match packet.header.code {
            MessageClass::Empty => self.on_empty(now, from, &packet),
            MessageClass::Request(_) => self.on_request(now, from, packet),
            MessageClass::Response(_) => self.on_response(now, from, packet),
            MessageClass::Reserved(_) => {
                if packet.header.get_type() == MessageType::Confirmable {
                    self.send_empty(from, MessageType::Reset, packet.header.message_id);
                }
            }
        }
    }

    fn send_empty(&mut self, to: SocketAddr, t: MessageType, mid: u16) {
        if let Some(bytes) = encode(&empty(t, mid)) {
            self.transmits.push_back(Transmit { to, bytes });
        }
    }

    fn on_empty(&mut self, now: Instant, from: SocketAddr, packet: &Packet) {
        let mid = packet.header.message_id;
        match packet.header.get_type() {
            // CoAP ping: answer with RST.
            MessageType::Confirmable => self.send_empty(from, MessageType::Reset, mid),
            MessageType::Acknowledgement => {
                let Some(id) = self.by_mid.get(&mid).copied() else { return };
                let Some(out) = self.outgoing.get_mut(&id) else { return };
                out.acked = true;
                if out.is_response {
                    self.cancel(id);
                } else if out.observing.is_none() {
                    out.deadline = now + self.config.response_timeout;
                    self.timers.push(Reverse((out.deadline, T_OUT, id.0)));
                }
            }
            MessageType::Reset => {
                let Some(id) = self.by_mid.get(&mid).copied() else { return };
                let is_response = self.outgoing.get(&id).is_some_and(|o| o.is_response || o.parent.is_some());
                self.cancel(id);
                if !is_response {
                    self.events.push_back(Event::Reset { id });
                }
            }
            MessageType::NonConfirmable => {}
        }
    }

    fn on_request(&mut self, now: Instant, from: SocketAddr, mut packet: Packet) {
        let mid = packet.header.message_id;
        let t = packet.header.get_type();
        let confirmable = t == MessageType::Confirmable;
        if !matches!(t, MessageType::Confirmable | MessageType::NonConfirmable) {
            return; // a request in an ACK or RST is a format error: silently ignore
        }
        if confirmable {
            if let Some(cached) = self.dedup.get(&(from, mid)) {
                if let Some(bytes) = cached {
                    self.transmits.push_back(Transmit { to: from, bytes: bytes.clone() });
                }
                return;
            }
            self.dedup.insert((from, mid), None);
            self.dedup_order.push_back((now, from, mid));
        }
        let reply_now = |ep: &mut Endpoint, code: ResponseType, extra: Option<(CoapOption, Vec<u8>)>| {
            let mut r = response(code, Vec::new());
            if let Some((o, v)) = extra {
                r.add_option(o, v);
            }
            let id = ep.register_incoming(now, from, &packet, confirmable, None);
            ep.respond(now, id, r);
        };
        if unknown_critical_option(&packet).is_some() {
            return reply_now(self, ResponseType::BadOption, None);
        }
        let mut block1_echo = None;
        if let Some(raw) = packet.get_first_option(CoapOption::Block1).cloned() {
            let Some(b) = BlockValue::decode(&raw) else {
                return reply_now(self, ResponseType::BadOption, None);
            };
            let key = (from, crate::msg::path_of(&packet));
            let our_szx = BlockValue::szx_for(self.config.block_size).min(b.szx);
            if b.num == 0 {
                self.assemblies.insert(
                    key.clone(),
                    Assembly {
                        body: Vec::new(),
                        next: 0,
                        szx: b.szx,
                        expires: now + self.config.exchange_lifetime,
                    },
                );
            }
            let Some(asm) = self.assemblies.get_mut(&key) else {
                return reply_now(self, ResponseType::RequestEntityIncomplete, None);
            };
            // The client may switch to the smaller size we asked for after block 0.
            let offset = (b.num as usize) << (b.szx + 4);
            if offset != asm.body.len() || (b.more && packet.payload.len() != b.size()) {
                self.assemblies.remove(&key);
                return reply_now(self, ResponseType::RequestEntityIncomplete, None);
            }
            if asm.body.len() + packet.payload.len() > self.config.max_body {
                self.assemblies.remove(&key);
                let size1 = (self.config.max_body as u32).to_be_bytes().to_vec();
                return reply_now(
                    self,
                    ResponseType::RequestEntityTooLarge,
                    Some((CoapOption::Size1, size1)),
                );
            }
            asm.body.extend_from_slice(&packet.payload);
            asm.next = b.num + 1;
            asm.szx = b.szx;
            if b.more {
                let echo = BlockValue { num: b.num, more: true, szx: our_szx };
                return reply_now(self, ResponseType::Continue, Some((CoapOption::Block1, echo.encode())));
            }
            let Some(done) = self.assemblies.remove(&key) else { return };
            packet.payload = done.body;
            packet.clear_option(CoapOption::Block1);
            block1_echo = Some(BlockValue { num: b.num, more: false, szx: b.szx });
        } else if packet.payload.len() > self.config.max_body {
            let size1 = (self.config.max_body as u32).to_be_bytes().to_vec();
            return reply_now(self, ResponseType::RequestEntityTooLarge, Some((CoapOption::Size1, size1)));
        }
        let id = self.register_incoming(now, from, &packet, confirmable, block1_echo);
        self.events.push_back(Event::Request { id, from, request: packet });
    }

    fn register_incoming(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: &Packet,
        confirmable: bool,
        block1_echo: Option<BlockValue>,
    ) -> IncomingId {
        let id = IncomingId(self.next_id);
        self.next_id += 1;
        let ack_deadline = now + self.config.separate_ack_after;
        self.incoming.insert(
            id,
            Incoming {
                from,
                mid: packet.header.message_id,
                token: packet.get_token().to_vec(),
                confirmable,
                acked: false,
                block1_echo,
            },
        );
        if confirmable {
            self.timers.push(Reverse((ack_deadline, T_IN, id.0)));
        }
        id
    }

    fn on_response(&mut self, now: Instant, from: SocketAddr, packet: Packet) {
        let t = packet.header.get_type();
        let mid = packet.header.message_id;
        // A CON response (separate or notification) we have already seen: re-ACK it, no event.
        if t == MessageType::Confirmable
            && let Some(Some(bytes)) = self.dedup.get(&(from, mid))
        {
            self.transmits.push_back(Transmit { to: from, bytes: bytes.clone() });
            return;
        }
        let by_token = self.by_token.get(packet.get_token()).copied();
        let id = match t {
            MessageType::Acknowledgement => {
                // Piggy-backed: the mid must be ours and the token must match.
                match self.by_mid.get(&mid).copied() {
                    Some(id) if by_token == Some(id) => id,
                    _ => return,
                }
            }
            _ => match by_token {
                Some(id) => id,
                None => {
                    self.send_empty(from, MessageType::Reset, mid);
                    return;
                }
            },
        };
        if unknown_critical_option(&packet).is_some() {
            if t == MessageType::Confirmable {
                self.send_empty(from, MessageType::Reset, mid);
            }
            return;
        }
        if t == MessageType::Confirmable
            && let Some(bytes) = encode(&empty(MessageType::Acknowledgement, mid))
        {
            self.dedup.insert((from, mid), Some(bytes.clone()));
            self.dedup_order.push_back((now, from, mid));
            self.transmits.push_back(Transmit { to: from, bytes });
        }
        let Some(out) = self.outgoing.get_mut(&id) else { return };
        if out.is_response {
            return;
        }
        out.acked = true;
        self.by_mid.remove(&out.mid);
        // Block1: the server asks for the next block (possibly at a smaller size).
        if let (Some((num, old_szx)), MessageClass::Response(ResponseType::Continue)) =
            (out.block1, packet.header.code)
        {
            let theirs = packet.get_first_option(CoapOption::Block1).and_then(|v| BlockValue::decode(v));
            let szx = theirs.map_or(old_szx, |b| b.szx.min(old_szx));
            let offset = ((num as usize) + 1) << (old_szx + 4);
            if offset < out.request.payload.len() {
                out.block1 = Some(((offset >> (szx + 4)) as u32, szx));
                let next = self.wire_request_of(id, None);
                self.resend(now, id, next);
                return;
            }
        }
        // A notification (or first observe answer) larger than a block: fetch the rest with a plain GET under a
        // new token (reusing the observation's token without Observe would cancel it, RFC 7641 §4.1).
        if (out.wants_observe || out.observing.is_some())
            && let Some(b2) = packet.get_first_option(CoapOption::Block2).and_then(|v| BlockValue::decode(v))
            && b2.more
            && b2.num == 0
        {
            let seq = packet.get_observe_value().and_then(Result::ok);
            match (out.observing, seq) {
                (Some((last, at)), Some(seq)) if !is_fresh(last, at, seq, now) => return,
                (None, Some(_)) => out.first_pending = true,
                _ => {}
            }
            if let Some(seq) = seq {
                out.observing = Some((seq, now));
            }
            let (to, confirmable) = (out.to, out.confirmable);
            let mut req = out.request.clone();
            req.clear_option(CoapOption::Observe);
            req.clear_option(CoapOption::Block2);
            req.add_option(CoapOption::Block2, BlockValue { num: 1, more: false, szx: b2.szx }.encode());
            let sub = self.send_request(now, to, req, confirmable);
            if let Some(s) = self.outgoing.get_mut(&sub) {
                s.block2_body = packet.payload.clone();
                let mut template = packet;
                template.payload.clear();
                template.clear_option(CoapOption::Block2);
                s.parent = Some((id, from, template));
            }
            return;
        }
        // Block2: ask for the next block of the response.
        if let Some(b2) = packet.get_first_option(CoapOption::Block2).and_then(|v| BlockValue::decode(v)) {
            let offset = (b2.num as usize) << (b2.szx + 4);
            if offset == out.block2_body.len() && out.observing.is_none() {
                out.block2_body.extend_from_slice(&packet.payload);
                if out.block2_body.len() > self.config.max_body {
                    self.cancel(id);
                    self.events.push_back(Event::Timeout { id });
                    return;
                }
                if b2.more {
                    out.block1 = None;
                    let next_block = BlockValue { num: b2.num + 1, more: false, szx: b2.szx };
                    let next = self.wire_request_of(id, Some(next_block));
                    self.resend(now, id, next);
                    return;
                }
            }
        }
        let Some(out) = self.outgoing.get_mut(&id) else { return };
        let mut response = packet;
        if !out.block2_body.is_empty() {
            response.payload = std::mem::take(&mut out.block2_body);
            response.clear_option(CoapOption::Block2);
        }
        // The last block of a notification fetched block-wise: complete the observation's notification.
        if let Some((pid, pfrom, mut template)) = out.parent.take() {
            template.payload = response.payload;
            self.cancel(id);
            if let Some(parent) = self.outgoing.get_mut(&pid) {
                if std::mem::take(&mut parent.first_pending) {
                    self.events.push_back(Event::Response { id: pid, response: template });
                } else {
                    self.events.push_back(Event::Notification { id: pid, from: pfrom, response: template });
                }
            }
            return;
        }
        let seq = response.get_observe_value().and_then(Result::ok);
        let is_error = matches!(response.header.code, MessageClass::Response(r) if r.is_error());
        match (out.observing, seq) {
            (Some((last, at)), Some(seq)) => {
                if !is_fresh(last, at, seq, now) {
                    return;
                }
                out.observing = Some((seq, now));
                self.events.push_back(Event::Notification { id, from, response });
            }
            (Some(_), None) => {
                // A notification without Observe ends the observation.
                self.cancel(id);
                self.events.push_back(Event::Notification { id, from, response });
            }
            (None, Some(seq)) if out.wants_observe && !is_error => {
                out.observing = Some((seq, now));
                self.by_mid.remove(&out.mid);
                out.bytes = Vec::new();
                self.events.push_back(Event::Response { id, response });
            }
            (None, _) => {
                self.cancel(id);
                self.events.push_back(Event::Response { id, response });
            }
        }
        if is_error && self.outgoing.contains_key(&id) {
            self.cancel(id);
        }
    }

    fn wire_request_of(&self, id: RequestId, block2: Option<BlockValue>) -> Packet {
        match self.outgoing.get(&id) {
            Some(out) => self.wire_request(out, block2),
            None => Packet::new(),
        }
    }

    fn resend(&mut self, now: Instant, id: RequestId, packet: Packet) {
        if let Some(mut out) = self.outgoing.remove(&id) {
            self.transmit_new(now, id, &mut out, packet);
            self.outgoing.insert(id, out);
        }
    }
}

fn empty(t: MessageType, mid: u16) -> Packet {
    let mut p = Packet::new();
    p.header.set_type(t);
    p.header.code = MessageClass::Empty;
    p.header.message_id = mid;
    p
}
