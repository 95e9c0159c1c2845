//! The registration table and the registration interface: Register, Update, De-register and Send from
//! clients, expiry, and the queue of operations waiting for a client in queue mode.
//!
//! [`Registrations`] is the table alone (a registration by its location, its endpoint name and its current
//! address), with no socket, clock or CoAP state; the handlers are the [`Server`]'s, which also ends a
//! registration's operations and observations ([`Server::remove_registration`]).

use std::collections::HashMap;
use std::collections::hash_map;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use coap::lite::{CoapOption, Packet};
use coap::{IncomingId, RequestId};
use lwm2m::registration::{parse_register, parse_update};
use lwm2m::{ContentFormat, LwM2mPath, codec};

use super::ops::{OpSpec, Reply};
use super::{EXPIRY_GRACE, Server, content_format_of};
use crate::clock;
use crate::packet::reply_packet;
use crate::types::{ClientInfo, OpError, ServerEvent};

/// One registration.
pub(super) struct Registration {
    pub(super) info: Arc<ClientInfo>,
    pub(super) expires: Instant,
    /// The client ignored a request with Accept at least once: send no Accept any more.
    pub(super) accept_dropped: bool,
    pub(super) observations: Vec<RequestId>,
    /// Queue mode: reachable until then.
    pub(super) awake_until: Instant,
    /// Queue mode: operations waiting for the client to wake up (spec, overall deadline, reply).
    pub(super) queued: Vec<(OpSpec, Instant, Reply)>,
}

/// The registrations by location (the registration id, **Architecture Invariant**: a registration is
/// identified by its location, never by its source address), with indexes by endpoint name and by the
/// address the client last spoke from.
#[derive(Default)]
pub(super) struct Registrations {
    regs: HashMap<String, Registration>,
    by_endpoint: HashMap<String, String>,
    by_addr: HashMap<SocketAddr, String>,
    next_reg: u64,
}

impl Registrations {
    /// A fresh registration id (the location `/rd/<id>`).
    pub(super) fn next_id(&mut self) -> String {
        self.next_reg += 1;
        format!("{:x}{:04x}", self.next_reg, (self.next_reg.wrapping_mul(0x9E37_79B9) >> 7) & 0xFFFF)
    }

    /// Adds `reg` under `reg_id`, indexed by its endpoint and address.
    pub(super) fn insert(&mut self, reg_id: String, reg: Registration) {
        self.by_endpoint.insert(reg.info.endpoint.clone(), reg_id.clone());
        self.by_addr.insert(reg.info.address, reg_id.clone());
        self.regs.insert(reg_id, reg);
    }

    /// Removes a registration and the index entries that still point at it.
    pub(super) fn remove(&mut self, reg_id: &str) -> Option<Registration> {
        let reg = self.regs.remove(reg_id)?;
        Some(reg)
    }

    /// Replaces a registration's info; the address index follows the client to `info.address`.
    pub(super) fn set_info(&mut self, reg_id: &str, info: Arc<ClientInfo>) {
        let Some(reg) = self.regs.get_mut(reg_id) else { return };
        if reg.info.address != info.address {
            self.by_addr.remove(&reg.info.address);
        }
        self.by_addr.insert(info.address, reg_id.to_owned());
        reg.info = info;
    }

    pub(super) fn get(&self, reg_id: &str) -> Option<&Registration> {
        self.regs.get(reg_id)
    }

    pub(super) fn get_mut(&mut self, reg_id: &str) -> Option<&mut Registration> {
        self.regs.get_mut(reg_id)
    }

    /// The registration id of `endpoint`.
    pub(super) fn id_of(&self, endpoint: &str) -> Option<&String> {
        self.by_endpoint.get(endpoint)
    }

    /// The registration of `endpoint`.
    pub(super) fn of_endpoint(&self, endpoint: &str) -> Option<&Registration> {
        self.by_endpoint.get(endpoint).and_then(|id| self.regs.get(id))
    }

    /// The registration of `endpoint`, to change.
    pub(super) fn of_endpoint_mut(&mut self, endpoint: &str) -> Option<&mut Registration> {
        self.by_endpoint.get(endpoint).and_then(|id| self.regs.get_mut(id))
    }

    /// The registration whose client last spoke from `addr`.
    pub(super) fn at(&self, addr: &SocketAddr) -> Option<&Registration> {
        self.by_addr.get(addr).and_then(|id| self.regs.get(id))
    }

    pub(super) fn iter(&self) -> hash_map::Iter<'_, String, Registration> {
        self.regs.iter()
    }

    pub(super) fn values(&self) -> hash_map::Values<'_, String, Registration> {
        self.regs.values()
    }

    pub(super) fn values_mut(&mut self) -> hash_map::ValuesMut<'_, String, Registration> {
        self.regs.values_mut()
    }
}

impl Server {
    pub(super) fn register(&mut self, now: Instant, from: SocketAddr, req: &Packet) -> Packet {
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
        if let Some(old) = self.regs.id_of(&r.endpoint).cloned()
            && let Some(info) = self.remove_registration(&old)
        {
            let _ = self.events.send(ServerEvent::Deregistered {
                endpoint: info.endpoint.clone(),
                registration_id: info.registration_id.clone(),
            });
        }
        let reg_id = self.regs.next_id();
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
        self.stats.registrations.fetch_add(1, Ordering::Relaxed);
        let _ = self.events.send(ServerEvent::Registered(info));
        let mut p = reply_packet(2, 1);
        p.add_option(CoapOption::LocationPath, b"rd".to_vec());
        p.add_option(CoapOption::LocationPath, reg_id.into_bytes());
        p
    }

    pub(super) fn update(&mut self, now: Instant, from: SocketAddr, reg_id: &str, req: &Packet) -> Packet {
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
        info.address = from;
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
        self.regs.set_info(reg_id, info.clone());
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

    pub(super) fn deregister(&mut self, from: SocketAddr, reg_id: &str) -> Packet {
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

    pub(super) fn remove_registration(&mut self, reg_id: &str) -> Option<Arc<ClientInfo>> {
        let reg = self.regs.remove(reg_id)?;
        for (_, _, reply) in reg.queued {
            let _ = reply.send(Err(OpError::Stopped));
        }
        for obs in reg.observations {
            self.ops.end_observation(&obs);
            self.coap.cancel(obs);
        }
        self.stats.registrations.fetch_sub(1, Ordering::Relaxed);
        Some(reg.info)
    }

    pub(super) fn sweep(&mut self, now: Instant) {
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

    /// Send (`POST /dp`): the answer, or `None` when it waits for its receipt (`send_receipts` on).
    pub(super) fn send_op(
        &mut self,
        now: Instant,
        id: IncomingId,
        from: SocketAddr,
        req: &Packet,
    ) -> Option<Packet> {
        let Some(reg) = self.regs.at(&from) else {
            return Some(reply_packet(4, 4));
        };
        if reg.info.identity != self.identity_at(&from) {
            return Some(self.refuse(from, "Send", "not the security context of the registration"));
        }
        let Some(cf) = content_format_of(req, CoapOption::ContentFormat) else {
            return Some(reply_packet(4, 0));
        };
        if !matches!(cf, ContentFormat::SENML_JSON | ContentFormat::SENML_CBOR | ContentFormat::LWM2M_CBOR) {
            return Some(reply_packet(4, 15));
        }
        match codec::decode(cf, &req.payload, &LwM2mPath::ROOT, &self.registry) {
            Ok(records) => {
                let endpoint = reg.info.endpoint.clone();
                let receipt = match self.send_receipts {
                    Some(timeout) => match self.hold_send(id, now + timeout, &endpoint) {
                        Some(r) => Some(r),
                        None => {
                            let mut p = reply_packet(4, 29);
                            p.payload = b"too many Sends waiting to be recorded".to_vec();
                            return Some(p);
                        }
                    },
                    None => None,
                };
                self.stats.sends.fetch_add(1, Ordering::Relaxed);
                // Nobody listening: a receipt would only wait for its timeout.
                if self.events.send(ServerEvent::Send { endpoint, records, receipt }).is_err()
                    && let Some(r) = receipt
                {
                    self.take_pending_send(r);
                    return Some(reply_packet(5, 3));
                }
                if receipt.is_some() { None } else { Some(reply_packet(2, 4)) }
            }
            Err(e) => {
                let mut p = reply_packet(4, 0);
                p.payload = e.to_string().into_bytes();
                Some(p)
            }
        }
    }
}
