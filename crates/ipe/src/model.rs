//! The records the contract keeps in state and the JSON arguments its functions take. Field order is the
//! serialisation order, so every peer writes the same bytes.

use lwm2m::LwM2mPath;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::mapping::MappingMode;

/// The gateway that serves a device: its organization (caller MSP id) and id (caller certificate subject).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRef {
    /// MSP id of the gateway's organization.
    pub org: String,
    /// The gateway's certificate subject (common name).
    pub id: String,
}

/// A registered LwM2M endpoint (state key `dev/<endpoint>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// LwM2M endpoint client name, as the device sent it.
    pub endpoint: String,
    /// The oneM2M AE-ID (and AE resource name) derived from it.
    pub ae_id: String,
    /// `1.0` or `1.1`.
    pub lwm2m_version: String,
    /// Registration lifetime (s).
    pub lifetime: u32,
    /// Binding (`U`, `UQ`, …).
    pub binding: String,
    /// Queue mode (sleeping device).
    pub queue_mode: bool,
    /// Declared objects and instances (`/3/0`, `/5`), from the registration's link format.
    pub objects: Vec<String>,
    /// Content formats advertised with `ct=`.
    pub formats: Vec<u16>,
    /// The registration's link format, as sent.
    pub links: String,
    /// Mapping mode on the oneM2M side.
    pub mode: MappingMode,
    /// The gateway serving it.
    pub gateway: GatewayRef,
    /// Transaction timestamp of the first registration (s).
    pub registered_at: i64,
    /// Transaction timestamp of the last register/update (s).
    pub updated_at: i64,
}

impl Device {
    /// Declared object-instance paths, in declaration order.
    pub fn instance_paths(&self) -> Vec<LwM2mPath> {
        self.objects.iter().filter_map(|o| o.parse::<LwM2mPath>().ok()).filter(|p| p.depth() == 2).collect()
    }
}

/// `register_device` argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterArgs {
    /// Endpoint name.
    pub endpoint: String,
    /// `1.0` (default) or `1.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lwm2m_version: Option<String>,
    /// Lifetime in seconds (default 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<u32>,
    /// Binding (default `U`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    /// Queue mode.
    #[serde(default)]
    pub queue_mode: bool,
    /// The registration payload (CoRE link format).
    #[serde(default)]
    pub links: String,
    /// Mapping mode (default: the contract's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MappingMode>,
}

/// `update_device` argument: only what the Update carried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// Endpoint name.
    pub endpoint: String,
    /// New lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<u32>,
    /// New binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    /// New queue mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_mode: Option<bool>,
    /// New object links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
}

/// `deregister_device` argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeregisterArgs {
    /// Endpoint name.
    pub endpoint: String,
    /// `deregistered` (default) or `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An operation a oneM2M application asks of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Read.
    Read,
    /// Write (replace; `"partial": true` for a partial update).
    Write,
    /// Execute.
    Execute,
    /// Observe.
    Observe,
    /// Cancel an observation.
    CancelObserve,
    /// Discover.
    Discover,
    /// Create an object instance.
    Create,
    /// Delete an object instance.
    Delete,
    /// Write-Attributes (notification attributes `pmin`, `pmax`, `gt`, `lt`, `st`, `epmin`, `epmax`).
    WriteAttributes,
}

impl Operation {
    /// The permission it needs.
    pub fn permission(self) -> crate::policy::Permission {
        use crate::policy::Permission as P;
        match self {
            Operation::Read | Operation::Discover => P::Read,
            Operation::Write | Operation::Create | Operation::Delete => P::Write,
            Operation::Execute => P::Execute,
            Operation::Observe | Operation::CancelObserve | Operation::WriteAttributes => P::Observe,
        }
    }
}

/// `submit_request` argument (also the content an application writes into a device's `cmd` container).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestArgs {
    /// Request id chosen by the originator (1..=128 of `A-Z a-z 0-9 - . _ : ~`), unique forever.
    pub request_id: String,
    /// oneM2M originator (AE-ID).
    pub originator: String,
    /// Target endpoint name or its AE-ID.
    pub endpoint: String,
    /// Target LwM2M path.
    pub path: String,
    /// Operation.
    pub op: Operation,
    /// oneM2M content: `{"v": …}` / `{"values": {…}}` for write and create, `{"args": "…"}` for execute,
    /// `{"attributes": {"pmin": 10, …}}` for write-attributes and (optionally) observe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Json>,
    /// Write as a partial update (POST) instead of replace (PUT).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// For cancel-observe: the observe request being cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observe_request_id: Option<String>,
    /// Seconds the gateway may keep trying (default 60, at most 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
}

/// Where an event goes. Consumers filter on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Address {
    /// The gateway serving a device.
    Gateway {
        /// MSP id.
        org: String,
        /// Subject.
        id: String,
    },
    /// A oneM2M originator (AE-ID).
    Originator {
        /// AE-ID.
        id: String,
    },
    /// Whoever maintains the oneM2M side (every gateway's CSE side; the one whose org serves the device
    /// writes it).
    Onem2m,
    /// Every gateway (device credentials: each gateway's LwM2M server admits by them).
    Gateways,
}

/// Who submitted a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitter {
    /// MSP id.
    pub msp: String,
    /// Certificate subject.
    pub subject: String,
}

/// The LwM2M side of a request, as the gateway should perform it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Downlink {
    /// `read`, `write`, …
    pub op: Operation,
    /// Target path.
    pub path: String,
    /// Write: replace (`false`) or partial update (`true`).
    pub partial: bool,
    /// Write / create: typed records `[{"path","type","v"}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Json>,
    /// Write / create: the records encoded (base64) in [`Downlink::content_format`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Content format of [`Downlink::payload`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_format: Option<u16>,
    /// Execute arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// Cancel-observe: the observe request it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observe_request_id: Option<String>,
    /// Write-attributes, or observe with attributes: the Uri-Query options (`["pmin=10", "pmax=60"]`),
    /// validated; for an observe the gateway writes them before observing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<String>>,
}

/// The outcome of a request, translated for oneM2M (stored in the request record and sent to the
/// originator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// `ok`, `error` or `timeout`.
    pub status: String,
    /// LwM2M (CoAP) response code `"2.05"`, when the device answered.
    pub code: Option<String>,
    /// oneM2M response status code (TS-0004).
    pub rsc: u16,
    /// oneM2M content: `{"values": {path: reading}}` (read/observe), `{"links": …}` (discover),
    /// `{"location": …}` (create), `{}` otherwise.
    pub content: Json,
    /// Error text.
    pub message: Option<String>,
    /// Who answered.
    pub by: Submitter,
    /// Transaction timestamp of the answer.
    pub at: i64,
    /// Transaction id of the answer.
    pub tx_id: String,
}

/// A request and its state (state key `req/<request_id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Request id.
    pub request_id: String,
    /// oneM2M originator.
    pub originator: String,
    /// Who submitted it.
    pub submitter: Submitter,
    /// Endpoint name.
    pub endpoint: String,
    /// The device's AE-ID.
    pub ae_id: String,
    /// The device's mapping mode when the request was made.
    pub mode: MappingMode,
    /// Gateway that must act.
    pub gateway: GatewayRef,
    /// The operation to perform.
    pub downlink: Downlink,
    /// `pending`, `ok`, `error`, `timeout`; an observe that succeeded is `observing` until cancelled, then
    /// `cancelled`.
    pub status: String,
    /// Submission timestamp.
    pub submitted_at: i64,
    /// After this timestamp the request may be answered `timeout` by its submitter too.
    pub expires_at: i64,
    /// Transaction id of the submission.
    pub tx_id: String,
    /// The answer, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Outcome>,
}

/// `submit_response` argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseArgs {
    /// The request answered.
    pub request_id: String,
    /// `ok`, `error` or `timeout`.
    pub status: String,
    /// LwM2M response code (`"2.05"`).
    #[serde(default)]
    pub code: Option<String>,
    /// Values as typed records `[{"path","type"?,"v","t"?}]` …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Json>,
    /// … or the raw LwM2M payload (base64) with its content format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Content format of `payload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_format: Option<u16>,
    /// Discover: the link format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
    /// Create: the new instance's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `report` argument: data a device pushed (Notify of an observation, or Send).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportArgs {
    /// Report id chosen by the gateway (unique forever; a retried report is refused with Conflict).
    pub report_id: String,
    /// Endpoint name.
    pub endpoint: String,
    /// `notify` or `send`.
    pub kind: String,
    /// Notify: the observe request it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observe_request_id: Option<String>,
    /// Path the payload is about (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Typed records …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Json>,
    /// … or the raw payload (base64) with its content format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Content format of `payload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_format: Option<u16>,
}

/// `device_request` argument: an LwM2M client asks the oneM2M side something (scenario 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRequestArgs {
    /// Request id chosen by the gateway (unique forever).
    pub request_id: String,
    /// Endpoint name of the asking client.
    pub endpoint: String,
    /// The oneM2M application (AE-ID) it is for; absent: any application allowed to `answer` for the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What is asked (free text, e.g. `"config"`).
    pub topic: String,
    /// Values that came with it, as typed records …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Json>,
    /// … or the raw payload (base64) with its content format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Content format of `payload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_format: Option<u16>,
    /// Seconds to wait for an answer (default 60, at most 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
}

/// `answer_device_request` argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerArgs {
    /// The device request answered.
    pub request_id: String,
    /// The answering oneM2M originator (AE-ID). Absent for a gateway's `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originator: Option<String>,
    /// `ok`, `error` or `timeout`.
    pub status: String,
    /// The answer as oneM2M content; `{"v"}` / `{"values"}` become LwM2M records for the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Json>,
    /// Error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A device's request and its answer (state key `dreq/<request_id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRequestRecord {
    /// Request id.
    pub request_id: String,
    /// Endpoint.
    pub endpoint: String,
    /// AE-ID of the device.
    pub ae_id: String,
    /// The gateway that relays the answer.
    pub gateway: GatewayRef,
    /// Addressed application, if any.
    pub target: Option<String>,
    /// What is asked.
    pub topic: String,
    /// Translated values `{"values": {path: reading}}`.
    pub content: Json,
    /// `pending`, `ok`, `error`, `timeout`.
    pub status: String,
    /// Submission timestamp.
    pub submitted_at: i64,
    /// Deadline.
    pub expires_at: i64,
    /// Submission tx id.
    pub tx_id: String,
    /// The answer.
    pub answer: Option<DeviceAnswer>,
}

/// The answer to a device request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceAnswer {
    /// `ok`, `error`, `timeout`.
    pub status: String,
    /// Answering originator.
    pub originator: Option<String>,
    /// oneM2M content as given.
    pub content: Json,
    /// Translated for the device: typed records.
    pub records: Option<Json>,
    /// Error text.
    pub message: Option<String>,
    /// Who submitted the answer.
    pub by: Submitter,
    /// Timestamp.
    pub at: i64,
    /// Tx id.
    pub tx_id: String,
}

/// `list_devices` argument (optional): a page of devices in endpoint order, filtered by serving gateway.
///
/// Read leniently, as the contract always has: fields of the wrong type and unknown fields are ignored
/// ([`ListDevicesArgs::from_json`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListDevicesArgs {
    /// Start after this endpoint (written as `null` when absent, as the gateway always sent it).
    pub after: Option<String>,
    /// Page size, 1..=1000 (default 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Only devices served by the gateway with this id (certificate subject).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Only devices served by a gateway of this organization (MSP id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

impl ListDevicesArgs {
    /// The filter a JSON object names; `None` when `filter` is not an object.
    pub fn from_json(filter: &Json) -> Option<ListDevicesArgs> {
        let o = filter.as_object()?;
        let s = |k: &str| o.get(k).and_then(Json::as_str).map(str::to_owned);
        Some(ListDevicesArgs {
            after: s("after"),
            limit: o.get("limit").and_then(Json::as_u64),
            gateway: s("gateway"),
            org: s("org"),
        })
    }
}

/// `list_device_credentials` argument (optional): a page of bindings in endpoint order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListCredentialsArgs {
    /// Start after this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Page size, 1..=1000 (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}
