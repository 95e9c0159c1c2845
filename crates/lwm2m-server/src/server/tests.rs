//! The registration table and the operations in flight on their own (no socket, no CoAP endpoint).

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use coap::RequestId;
use lwm2m::LwM2mPath;
use lwm2m::ops::Downlink;
use lwm2m::registration::LwM2mVersion;

use super::ops::{InFlight, Pending};
use super::registrations::{Registration, Registrations};
use crate::types::ClientInfo;

fn info(endpoint: &str, reg_id: &str, port: u16) -> Arc<ClientInfo> {
    Arc::new(ClientInfo {
        endpoint: endpoint.into(),
        registration_id: reg_id.into(),
        address: ([127, 0, 0, 1], port).into(),
        lifetime: 60,
        version: LwM2mVersion::V1_1,
        binding: "U".into(),
        queue_mode: false,
        root_path: "/".into(),
        links: Vec::new(),
        objects: Vec::new(),
        supported_formats: Vec::new(),
        registered_at: UNIX_EPOCH,
        last_update: UNIX_EPOCH,
        identity: None,
    })
}

fn registration(info: Arc<ClientInfo>, now: Instant) -> Registration {
    Registration {
        info,
        expires: now,
        accept_dropped: false,
        observations: Vec::new(),
        awake_until: now,
        queued: Vec::new(),
    }
}

#[test]
fn the_table_finds_a_registration_by_location_endpoint_and_address() {
    #[allow(clippy::disallowed_methods)] // any origin will do: the table only compares instants
    let now = Instant::now();
    let mut t = Registrations::default();
    let (a, b) = (t.next_id(), t.next_id());
    assert_ne!(a, b);
    t.insert(a.clone(), registration(info("ep", &a, 5683), now));
    assert_eq!(t.id_of("ep"), Some(&a));
    assert!(t.at(&([127, 0, 0, 1], 5683).into()).is_some());
    // The client moved: found at its new address only.
    t.set_info(&a, info("ep", &a, 5684));
    assert!(t.at(&([127, 0, 0, 1], 5683).into()).is_none());
    assert_eq!(t.of_endpoint("ep").map(|r| r.info.address.port()), Some(5684));
    // A new registration of the same endpoint from the old address; removing the first one leaves the
    // indexes of the second alone.
    t.insert(b.clone(), registration(info("ep", &b, 5684), now));
    assert!(t.remove(&a).is_some());
    assert_eq!(t.id_of("ep"), Some(&b));
    assert_eq!(t.at(&([127, 0, 0, 1], 5684).into()).map(|r| r.info.registration_id.clone()), Some(b.clone()));
    assert!(t.remove(&a).is_none());
    assert_eq!(t.values().count(), 1);
}

fn pending(
    deadline: Instant,
) -> (Pending, tokio::sync::oneshot::Receiver<Result<crate::OpResponse, crate::OpError>>) {
    let (reply, rx) = tokio::sync::oneshot::channel();
    let op = Downlink::Read { path: LwM2mPath::ROOT, accept: None };
    let p = Pending { reg_id: "r".into(), op, deadline, final_deadline: deadline, auto_accept: false, reply };
    (p, rx)
}

#[test]
fn operations_expire_in_deadline_order_and_answered_ones_do_not() {
    #[allow(clippy::disallowed_methods)] // any origin will do
    let t0 = Instant::now();
    let mut f = InFlight::default();
    let (p1, _r1) = pending(t0 + Duration::from_secs(2));
    let (p2, _r2) = pending(t0 + Duration::from_secs(1));
    let (p3, _r3) = pending(t0 + Duration::from_secs(3));
    f.track(RequestId(1), p1);
    f.track(RequestId(2), p2);
    f.track(RequestId(3), p3);
    assert_eq!(f.next_deadline(), Some(t0 + Duration::from_secs(1)));
    assert!(f.take(&RequestId(2)).is_some(), "answered");
    assert!(f.pop_expired(t0).is_none());
    let expired: Vec<RequestId> =
        std::iter::from_fn(|| f.pop_expired(t0 + Duration::from_secs(2))).map(|(id, _)| id).collect();
    assert_eq!(expired, [RequestId(1)]);
    assert_eq!(f.drain().count(), 1);
}
