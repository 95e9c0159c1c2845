//! A group of devices sharing one UDP socket, one CoAP endpoint and one task. In DTLS mode a group is one
//! device, and its datagrams pass through the device's DTLS session ([`crate::dtls::Link`]).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use coap::lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use coap::{Endpoint, Event, RequestId};
use lwm2m::{ContentFormat, LwM2mPath, Registry, codec};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::device::{Device, OBJECT_LINKS, Observation};
use crate::dtls::{ClientContext, DtlsPsk, HANDSHAKE_POLL, Link, LinkError, LinkOutput};
use crate::{GroupCommand, SimConfig, SimStats};

const TICK: Duration = Duration::from_millis(10);
/// After a failed handshake or a lost session, a device waits this long before its next ClientHello.
const DTLS_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
enum Kind {
    Register,
    Update,
    Deregister,
    Send,
}

pub(crate) struct Group {
    socket: UdpSocket,
    coap: Endpoint,
    server: SocketAddr,
    prefix: String,
    lifetime: u32,
    notify_every: Option<u64>,
    window: usize,
    shared: bool,
    devices: Vec<Device>,
    next_update: Vec<Option<Instant>>,
    to_register: VecDeque<usize>,
    inflight: HashMap<RequestId, (usize, Kind)>,
    registering: usize,
    registry: Arc<Registry>,
    stats: Arc<SimStats>,
    mid: u16,
    ticks: u64,
    recent: VecDeque<(u16, usize, Vec<u8>)>,
    tls: Option<Tls>,
}

/// The DTLS side of a one-device group.
struct Tls {
    ctx: ClientContext,
    config: DtlsPsk,
    /// The session (handshaking or established); `None` between a failure and the retry.
    link: Option<Link>,
    /// When the handshake is next driven (retransmission, timeout) or, without a link, retried.
    next_poll: Instant,
    /// Records to send.
    out: Vec<Vec<u8>>,
}

/// Wall-clock-free "now": the simulator is a shell and reads tokio's clock here only.
#[allow(clippy::disallowed_methods)] // the simulator shell's clock
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Group {
    pub(crate) fn new(
        socket: UdpSocket,
        config: &SimConfig,
        first: u32,
        n: usize,
        shared: bool,
        stats: Arc<SimStats>,
        registry: Arc<Registry>,
    ) -> Self {
        let slots = config.notify_interval.map(|i| (i.as_millis() / TICK.as_millis()).max(1) as u64);
        Group {
            socket,
            coap: Endpoint::new(coap::Config {
                seed: u64::from(first) * 7919 + 1,
                ..coap::Config::default()
            }),
            server: config.server,
            prefix: config.endpoint_prefix.clone(),
            lifetime: config.lifetime,
            notify_every: slots,
            window: config.register_window.max(1),
            shared,
            devices: (0..n as u32).map(|i| Device::new(first + i)).collect(),
            next_update: vec![None; n],
            to_register: (0..n).collect(),
            inflight: HashMap::new(),
            registering: 0,
            registry,
            stats,
            mid: (first as u16).wrapping_mul(31),
            ticks: 0,
            recent: VecDeque::new(),
            tls: None,
        }
    }

    /// Puts the group's one device behind a DTLS PSK session.
    pub(crate) fn with_dtls(mut self, ctx: ClientContext, config: DtlsPsk) -> Self {
        self.tls = Some(Tls { ctx, config, link: None, next_poll: now(), out: Vec::new() });
        self
    }

    /// NoSec, or a DTLS session that has finished its handshake.
    fn ready(&self) -> bool {
        self.tls.as_ref().is_none_or(|t| t.link.as_ref().is_some_and(Link::is_established))
    }

    /// Starts a handshake (a fresh `SSL`, no resumption) when there is no session and the retry time came;
    /// drives a handshake in progress.
    fn dtls_poll(&mut self, t: Instant) {
        let Some(tls) = self.tls.as_mut() else { return };
        if t < tls.next_poll {
            return;
        }
        tls.next_poll = t + HANDSHAKE_POLL;
        let out = match tls.link.as_mut() {
            Some(l) if l.is_established() => return,
            Some(l) => l.poll(t),
            None => {
                let ep = format!("{}{}", self.prefix, self.devices.first().map_or(0, |d| d.index));
                let psk = (tls.config.credentials)(&ep);
                match Link::new(&tls.ctx, psk, t, tls.config.handshake_timeout) {
                    Ok(l) => tls.link.insert(l).start(),
                    Err(e) => {
                        LinkOutput { failed: Some(LinkError::Tls(e.to_string())), ..LinkOutput::default() }
                    }
                }
            }
        };
        self.dtls_output(t, out);
    }

    /// A datagram on a DTLS device's socket: only the server's, through the session.
    fn dtls_datagram(&mut self, t: Instant, from: SocketAddr, bytes: &[u8]) {
        if from != self.server {
            return;
        }
        let Some(out) = self.tls.as_mut().and_then(|tls| tls.link.as_mut()).map(|l| l.input(bytes)) else {
            return;
        };
        self.dtls_output(t, out);
    }

    fn dtls_output(&mut self, t: Instant, out: LinkOutput) {
        let Some(tls) = self.tls.as_mut() else { return };
        tls.out.extend(out.transmit);
        if out.established {
            self.stats.handshakes.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(e) = out.failed {
            self.stats.handshakes_failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                "device {}: DTLS session ended: {e}",
                self.devices.first().map_or(0, |d| d.index)
            );
            tls.link = None;
            tls.next_poll = t + DTLS_RETRY;
        }
        for m in out.plain {
            self.datagram(t, self.server, &m);
        }
    }

    /// Sends one CoAP message now: in the clear, or through the device's session (dropped when it has
    /// none: CoAP retransmits confirmable messages).
    fn send_now(&mut self, bytes: &[u8]) {
        match self.tls.as_mut() {
            None => {
                let _ = self.socket.try_send_to(bytes, self.server);
            }
            Some(tls) => {
                if let Some(Ok(records)) = tls.link.as_mut().map(|l| l.write(bytes)) {
                    for r in records {
                        let _ = self.socket.try_send_to(&r, self.server);
                    }
                }
            }
        }
    }

    fn root(&self, i: usize) -> String {
        if self.shared { format!("/d{}", self.devices[i].index) } else { String::new() }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<GroupCommand>, stop: CancellationToken) {
        let mut buf = vec![0u8; 4096];
        let mut next_tick = now();
        self.dtls_poll(next_tick);
        self.flush_dtls().await;
        loop {
            let mut wake = self.coap.poll_timeout().map_or(next_tick, |t| t.min(next_tick));
            if let Some(tls) =
                self.tls.as_ref().filter(|t| t.link.as_ref().is_none_or(|l| !l.is_established()))
            {
                wake = wake.min(tls.next_poll);
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                r = self.socket.recv_from(&mut buf) => {
                    let t = now();
                    if let Ok((n, from)) = r {
                        self.incoming(t, from, &buf[..n]);
                        for _ in 0..64 {
                            match self.socket.try_recv_from(&mut buf) {
                                Ok((n, from)) => self.incoming(t, from, &buf[..n]),
                                Err(_) => break,
                            }
                        }
                    }
                    self.process(t);
                }
                c = commands.recv() => {
                    let t = now();
                    match c {
                        Some(GroupCommand::SendAll) => self.send_all(t),
                        Some(GroupCommand::Deregister) => self.deregister_all(t),
                        None => break,
                    }
                    self.process(t);
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                    let t = now();
                    self.coap.handle_timeout(t);
                    self.dtls_poll(t);
                    if t >= next_tick {
                        self.tick(t);
                        next_tick = t + TICK;
                    }
                    self.process(t);
                }
            }
            while let Some(tx) = self.coap.poll_transmit() {
                match self.tls.as_mut() {
                    None => {
                        let _ = self.socket.send_to(&tx.bytes, tx.to).await;
                    }
                    // Without a session the message is dropped; CoAP retransmits confirmable ones.
                    Some(tls) => {
                        if let Some(Ok(records)) = tls.link.as_mut().map(|l| l.write(&tx.bytes)) {
                            tls.out.extend(records);
                        }
                    }
                }
            }
            self.flush_dtls().await;
        }
        // A DTLS device that stops says so (close_notify), so that the server frees its session.
        if let Some(l) = self.tls.as_mut().and_then(|t| t.link.as_mut()) {
            for d in l.close() {
                let _ = self.socket.try_send_to(&d, self.server);
            }
        }
    }

    /// Sends the DTLS records and handshake flights queued.
    async fn flush_dtls(&mut self) {
        let Some(tls) = self.tls.as_mut() else { return };
        for d in std::mem::take(&mut tls.out) {
            let _ = self.socket.send_to(&d, self.server).await;
        }
    }

    /// A datagram from the socket: CoAP, or DTLS records of the device's session.
    fn incoming(&mut self, t: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.tls.is_some() {
            self.dtls_datagram(t, from, bytes);
        } else {
            self.datagram(t, from, bytes);
        }
    }

    fn datagram(&mut self, t: Instant, from: SocketAddr, bytes: &[u8]) {
        // A Reset to one of our notifications cancels that observation.
        if bytes.len() == 4 && (bytes[0] >> 4) & 0x3 == 3 {
            let mid = u16::from_be_bytes([bytes[2], bytes[3]]);
            if let Some(pos) = self.recent.iter().position(|(m, _, _)| *m == mid)
                && let Some((_, dev, token)) = self.recent.remove(pos)
            {
                self.devices[dev].observations.retain(|o| o.token != token);
            }
        }
        self.coap.handle_datagram(t, from, bytes);
    }

    fn request(
        &mut self,
        t: Instant,
        code: RequestType,
        path: &[&str],
        queries: &[String],
        cf: Option<u16>,
        payload: Vec<u8>,
    ) -> RequestId {
        let mut p = Packet::new();
        p.header.code = MessageClass::Request(code);
        for s in path {
            p.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        if let Some(cf) = cf {
            p.add_option(CoapOption::ContentFormat, cf.to_be_bytes().to_vec());
        }
        for q in queries {
            p.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
        }
        p.payload = payload;
        self.coap.send_request(t, self.server, p, true)
    }

    fn register(&mut self, t: Instant, i: usize) {
        let root = self.root(i);
        let objects: Vec<String> = OBJECT_LINKS.split(',').map(|l| format!("<{root}{}", &l[1..])).collect();
        let root_link = if root.is_empty() { "</>".to_owned() } else { format!("<{root}>") };
        let payload =
            format!("{root_link};rt=\"oma.lwm2m\";ct=\"110 112 11542 11543 11544\",{}", objects.join(","));
        let q = vec![
            format!("ep={}{}", self.prefix, self.devices[i].index),
            format!("lt={}", self.lifetime),
            "lwm2m=1.1".to_owned(),
            "b=U".to_owned(),
        ];
        let id = self.request(t, RequestType::Post, &["rd"], &q, Some(40), payload.into_bytes());
        self.inflight.insert(id, (i, Kind::Register));
        self.registering += 1;
    }

    fn tick(&mut self, t: Instant) {
        self.ticks += 1;
        if !self.ready() {
            return;
        }
        while self.registering < self.window {
            let Some(i) = self.to_register.pop_front() else { break };
            self.register(t, i);
        }
        if self.ticks.is_multiple_of(100) {
            for i in 0..self.devices.len() {
                if self.next_update[i].is_some_and(|u| u <= t)
                    && let Some(loc) = self.devices[i].location.clone()
                {
                    self.next_update[i] = None;
                    let segs: Vec<&str> = loc.split('/').filter(|s| !s.is_empty()).collect();
                    let id = self.request(t, RequestType::Post, &segs, &[], None, vec![]);
                    self.inflight.insert(id, (i, Kind::Update));
                }
            }
        }
        if let Some(slots) = self.notify_every {
            let slot = self.ticks % slots;
            for i in (0..self.devices.len()).filter(|i| (*i as u64) % slots == slot) {
                if self.devices[i].observations.is_empty() {
                    continue;
                }
                self.devices[i].step(self.ticks + i as u64);
                self.notify(i);
            }
        }
    }

    fn notify(&mut self, i: usize) {
        let dev = &mut self.devices[i];
        for o in dev.observations.iter_mut() {
            o.seq = (o.seq + 1) & 0xFF_FFFF;
        }
        let obs: Vec<(Vec<u8>, LwM2mPath, ContentFormat, u32)> =
            dev.observations.iter().map(|o| (o.token.clone(), o.path, o.format, o.seq)).collect();
        for (token, path, format, seq) in obs {
            let Some(body) = self.devices[i].encode(&path, format) else { continue };
            self.mid = self.mid.wrapping_add(1);
            let mut p = coap::response(ResponseType::Content, body);
            p.header.set_type(MessageType::NonConfirmable);
            p.header.message_id = self.mid;
            p.set_token(token.clone());
            p.set_observe_value(seq);
            p.add_option(CoapOption::ContentFormat, format.0.to_be_bytes().to_vec());
            if let Some(bytes) = coap::encode(&p) {
                // Sent directly: notifications are NON, outside the request/response exchanges.
                self.send_now(&bytes);
                self.stats.notifications.fetch_add(1, Ordering::Relaxed);
            }
            self.recent.push_back((self.mid, i, token));
            if self.recent.len() > 4096 {
                self.recent.pop_front();
            }
        }
    }

    fn send_all(&mut self, t: Instant) {
        for i in 0..self.devices.len() {
            if self.devices[i].location.is_none() {
                continue;
            }
            let recs: Vec<_> =
                self.devices[i].records().into_iter().filter(|r| r.path.resource() == Some(5700)).collect();
            if let Ok(body) = codec::encode(ContentFormat::SENML_CBOR, &recs, &LwM2mPath::ROOT) {
                let id = self.request(t, RequestType::Post, &["dp"], &[], Some(112), body);
                self.inflight.insert(id, (i, Kind::Send));
            }
        }
    }

    fn deregister_all(&mut self, t: Instant) {
        for i in 0..self.devices.len() {
            if let Some(loc) = self.devices[i].location.take() {
                let segs: Vec<&str> = loc.split('/').filter(|s| !s.is_empty()).collect();
                let id = self.request(t, RequestType::Delete, &segs, &[], None, vec![]);
                self.inflight.insert(id, (i, Kind::Deregister));
                self.next_update[i] = None;
            }
        }
    }

    fn process(&mut self, t: Instant) {
        while let Some(ev) = self.coap.poll_event() {
            match ev {
                Event::Request { id, request, .. } => {
                    let (resp, observe) = self.serve(&request);
                    let resp = match observe {
                        Some((dev, path, format)) => {
                            let token = request.get_token().to_vec();
                            let d = &mut self.devices[dev];
                            d.observations.retain(|o| o.path != path);
                            d.observations.push(Observation { token, path, format, seq: 1 });
                            let mut r = resp;
                            r.set_observe_value(1);
                            r
                        }
                        None => resp,
                    };
                    self.stats.requests.fetch_add(1, Ordering::Relaxed);
                    self.coap.respond(t, id, resp);
                }
                Event::Response { id, response } => self.on_response(t, id, &response),
                Event::Timeout { id } | Event::Reset { id } => {
                    if let Some((i, Kind::Register)) = self.inflight.remove(&id) {
                        self.registering -= 1;
                        self.to_register.push_back(i);
                    }
                }
                Event::Notification { .. } => {}
            }
        }
    }

    fn on_response(&mut self, t: Instant, id: RequestId, resp: &Packet) {
        let Some((i, kind)) = self.inflight.remove(&id) else { return };
        let ok = matches!(resp.header.code, MessageClass::Response(r) if !r.is_error());
        match kind {
            Kind::Register => {
                self.registering -= 1;
                if ok {
                    let loc: String = resp
                        .get_option(CoapOption::LocationPath)
                        .map(|l| l.iter().map(|s| format!("/{}", String::from_utf8_lossy(s))).collect())
                        .unwrap_or_default();
                    if self.devices[i].location.replace(loc.into_boxed_str()).is_none() {
                        self.stats.registered.fetch_add(1, Ordering::Relaxed);
                    }
                    self.next_update[i] = Some(t + Duration::from_secs(u64::from(self.lifetime) * 4 / 5));
                } else {
                    tracing::warn!(
                        "register of device {} refused: {}",
                        self.devices[i].index,
                        resp.header.code
                    );
                }
            }
            Kind::Update => {
                if ok {
                    self.next_update[i] = Some(t + Duration::from_secs(u64::from(self.lifetime) * 4 / 5));
                } else if self.devices[i].location.take().is_some() {
                    self.stats.registered.fetch_sub(1, Ordering::Relaxed);
                    self.to_register.push_back(i);
                }
            }
            Kind::Deregister => {
                self.stats.registered.fetch_sub(1, Ordering::Relaxed);
                self.devices[i].observations.clear();
            }
            Kind::Send => {
                if ok {
                    self.stats.sends_acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Routes a request to its device; returns the response and, for a new observation, what to record.
    fn serve(&mut self, req: &Packet) -> (Packet, Option<(usize, LwM2mPath, ContentFormat)>) {
        let segs = coap::path_of(req);
        let (dev, rest) = if self.shared {
            let Some(i) = segs
                .first()
                .and_then(|s| s.strip_prefix('d'))
                .and_then(|s| s.parse::<u32>().ok())
                .and_then(|idx| idx.checked_sub(self.devices.first().map_or(0, |d| d.index)))
                .map(|i| i as usize)
                .filter(|i| *i < self.devices.len())
            else {
                return (coap::response(ResponseType::NotFound, vec![]), None);
            };
            (i, &segs[1..])
        } else {
            (0, &segs[..])
        };
        let Ok(path) = LwM2mPath::from_segments(rest) else {
            return (coap::response(ResponseType::NotFound, vec![]), None);
        };
        if matches!(req.get_observe_value(), Some(Ok(1))) {
            self.devices[dev].observations.retain(|o| o.path != path);
        }
        let (resp, observe) = self.devices[dev].handle(req, &path, &self.registry);
        (resp, observe.map(|f| (dev, path, f)))
    }
}
