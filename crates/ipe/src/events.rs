//! The contract's events: names, typed payloads, and [`IpeEvent::parse`] for consumers (gateways and SDK
//! applications) that receive `(name, payload)` from the ledger's event stream.
//!
//! Every payload has a `to` [`Address`]; a consumer acts on the events addressed to it and ignores the rest:
//!
//! ```
//! use ipe::events::{IpeEvent, REQUEST};
//! use ipe::model::Address;
//! let payload = br#"{"to":{"kind":"gateway","org":"Org1MSP","id":"gw1"},"request_id":"r1","originator":"Capp1",
//!   "endpoint":"imei:1","ae_id":"Cimei-1","downlink":{"op":"read","path":"/3/0/0","partial":false,
//!   "records":null,"payload":null,"content_format":null,"args":null,"observe_request_id":null,
//!   "attributes":null},"submitted_at":1,"expires_at":61}"#;
//! let ev = IpeEvent::parse(REQUEST, payload).unwrap().expect("a known event");
//! assert_eq!(ev.to(), &Address::Gateway { org: "Org1MSP".into(), id: "gw1".into() });
//! let IpeEvent::Request(r) = ev else { unreachable!() };
//! assert_eq!(r.downlink.path, "/3/0/0");
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::credentials::DeviceCredentials;
use crate::mapping::{Cin, ResourceTree};
use crate::model::{Address, Device, DeviceAnswer, Downlink, Operation, Outcome};

/// A device registered (or re-registered): create its AE and containers.
pub const DEVICE_REGISTERED: &str = "device.registered";
/// A device's registration changed: create new containers, delete removed ones.
pub const DEVICE_UPDATED: &str = "device.updated";
/// A device left (de-registered or expired): delete its AE.
pub const DEVICE_DEREGISTERED: &str = "device.deregistered";
/// A request for a gateway to perform on a device.
pub const REQUEST: &str = "request";
/// The answer to a request, for its originator.
pub const RESPONSE: &str = "response";
/// Data a device reported (Notify / Send), for the oneM2M side.
pub const REPORT: &str = "report";
/// A device asks the oneM2M side something.
pub const DEVICE_REQUEST: &str = "device.request";
/// The answer to a device's request, for its gateway.
pub const DEVICE_ANSWER: &str = "device.answer";
/// The access policy changed.
pub const POLICY_CHANGED: &str = "policy.changed";
/// An endpoint's credentials were bound, replaced or removed (to every gateway).
pub const DEVICE_CREDENTIALS: &str = "device.credentials";

/// `device.registered`, `device.updated`, `device.deregistered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceEvent {
    /// Always [`Address::Onem2m`].
    pub to: Address,
    /// The device (as it is now; as it was for a de-registration).
    pub device: Device,
    /// Its oneM2M resource tree.
    pub tree: ResourceTree,
    /// Container paths a re-registration or update dropped.
    pub removed: Vec<String>,
    /// De-registration: `deregistered` or `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `request`: for the gateway that serves the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestEvent {
    /// The gateway.
    pub to: Address,
    /// Request id (quote it in `submit_response`).
    pub request_id: String,
    /// oneM2M originator.
    pub originator: String,
    /// Endpoint name.
    pub endpoint: String,
    /// AE-ID.
    pub ae_id: String,
    /// What to do on the device.
    pub downlink: Downlink,
    /// Submission timestamp.
    pub submitted_at: i64,
    /// Answer `timeout` if the device has not answered by then.
    pub expires_at: i64,
}

/// `response`: for the request's originator; `cins` for the oneM2M side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseEvent {
    /// The originator.
    pub to: Address,
    /// Request id.
    pub request_id: String,
    /// Endpoint name.
    pub endpoint: String,
    /// AE-ID.
    pub ae_id: String,
    /// The operation answered.
    pub op: Operation,
    /// Its path.
    pub path: String,
    /// The translated answer.
    pub outcome: Outcome,
    /// contentInstances to write: the `rsp` one first, then values for data containers.
    pub cins: Vec<Cin>,
}

/// `report`: device data for the oneM2M side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportEvent {
    /// Always [`Address::Onem2m`].
    pub to: Address,
    /// Report id.
    pub report_id: String,
    /// Endpoint name.
    pub endpoint: String,
    /// AE-ID.
    pub ae_id: String,
    /// `notify` or `send`.
    pub kind: String,
    /// The observation a Notify belongs to.
    pub observe_request_id: Option<String>,
    /// That observation's originator (SDK applications filter on it).
    pub originator: Option<String>,
    /// Path the payload was about.
    pub path: String,
    /// `{"values": {path: reading}}`.
    pub content: Json,
    /// Timestamp.
    pub at: i64,
    /// Transaction id.
    pub tx_id: String,
    /// contentInstances to write.
    pub cins: Vec<Cin>,
}

/// `device.request`: for the addressed application (or any, `onem2m`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRequestEvent {
    /// The target originator, or [`Address::Onem2m`].
    pub to: Address,
    /// Id to quote in `answer_device_request`.
    pub request_id: String,
    /// Endpoint name.
    pub endpoint: String,
    /// AE-ID.
    pub ae_id: String,
    /// What is asked.
    pub topic: String,
    /// `{"values": {path: reading}}`.
    pub content: Json,
    /// Submission timestamp.
    pub submitted_at: i64,
    /// Deadline.
    pub expires_at: i64,
}

/// `device.answer`: for the gateway, to relay to the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceAnswerEvent {
    /// The gateway.
    pub to: Address,
    /// Device request id.
    pub request_id: String,
    /// Endpoint name.
    pub endpoint: String,
    /// The answer.
    pub answer: DeviceAnswer,
}

/// `policy.changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChangedEvent {
    /// Always [`Address::Onem2m`].
    pub to: Address,
    /// The new policy version.
    pub version: u64,
}

/// Any event of the contract.
/// Payload of `device.credentials`: the endpoint's binding now (`None`: removed). Fingerprints only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsEvent {
    /// Always [`Address::Gateways`].
    pub to: Address,
    /// LwM2M endpoint name.
    pub endpoint: String,
    /// The binding in force, or `None` when it was removed.
    pub credentials: Option<DeviceCredentials>,
}

#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum IpeEvent {
    /// `device.registered`.
    DeviceRegistered(DeviceEvent),
    /// `device.updated`.
    DeviceUpdated(DeviceEvent),
    /// `device.deregistered`.
    DeviceDeregistered(DeviceEvent),
    /// `request`.
    Request(RequestEvent),
    /// `response`.
    Response(ResponseEvent),
    /// `report`.
    Report(ReportEvent),
    /// `device.request`.
    DeviceRequest(DeviceRequestEvent),
    /// `device.answer`.
    DeviceAnswer(DeviceAnswerEvent),
    /// `policy.changed`.
    PolicyChanged(PolicyChangedEvent),
    /// `device.credentials`.
    DeviceCredentials(CredentialsEvent),
}

impl IpeEvent {
    /// Parses an event of this contract; `Ok(None)` for a name it does not emit.
    pub fn parse(name: &str, payload: &[u8]) -> Result<Option<IpeEvent>, serde_json::Error> {
        let p = payload;
        Ok(Some(match name {
            DEVICE_REGISTERED => IpeEvent::DeviceRegistered(serde_json::from_slice(p)?),
            DEVICE_UPDATED => IpeEvent::DeviceUpdated(serde_json::from_slice(p)?),
            DEVICE_DEREGISTERED => IpeEvent::DeviceDeregistered(serde_json::from_slice(p)?),
            REQUEST => IpeEvent::Request(serde_json::from_slice(p)?),
            RESPONSE => IpeEvent::Response(serde_json::from_slice(p)?),
            REPORT => IpeEvent::Report(serde_json::from_slice(p)?),
            DEVICE_REQUEST => IpeEvent::DeviceRequest(serde_json::from_slice(p)?),
            DEVICE_ANSWER => IpeEvent::DeviceAnswer(serde_json::from_slice(p)?),
            POLICY_CHANGED => IpeEvent::PolicyChanged(serde_json::from_slice(p)?),
            DEVICE_CREDENTIALS => IpeEvent::DeviceCredentials(serde_json::from_slice(p)?),
            _ => return Ok(None),
        }))
    }

    /// The event's name.
    pub fn name(&self) -> &'static str {
        match self {
            IpeEvent::DeviceRegistered(_) => DEVICE_REGISTERED,
            IpeEvent::DeviceUpdated(_) => DEVICE_UPDATED,
            IpeEvent::DeviceDeregistered(_) => DEVICE_DEREGISTERED,
            IpeEvent::Request(_) => REQUEST,
            IpeEvent::Response(_) => RESPONSE,
            IpeEvent::Report(_) => REPORT,
            IpeEvent::DeviceRequest(_) => DEVICE_REQUEST,
            IpeEvent::DeviceAnswer(_) => DEVICE_ANSWER,
            IpeEvent::PolicyChanged(_) => POLICY_CHANGED,
            IpeEvent::DeviceCredentials(_) => DEVICE_CREDENTIALS,
        }
    }

    /// Whom it is addressed to.
    pub fn to(&self) -> &Address {
        match self {
            IpeEvent::DeviceRegistered(e) | IpeEvent::DeviceUpdated(e) | IpeEvent::DeviceDeregistered(e) => {
                &e.to
            }
            IpeEvent::Request(e) => &e.to,
            IpeEvent::Response(e) => &e.to,
            IpeEvent::Report(e) => &e.to,
            IpeEvent::DeviceRequest(e) => &e.to,
            IpeEvent::DeviceAnswer(e) => &e.to,
            IpeEvent::PolicyChanged(e) => &e.to,
            IpeEvent::DeviceCredentials(e) => &e.to,
        }
    }
}
