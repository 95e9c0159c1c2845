//! Typed calls of the IPE contract: one [`IpeCall`] variant per function, holding its argument as the
//! `ipe::model` type the contract reads.
//!
//! This is the one place that reads a function name and its arguments ([`IpeCall::parse`], what the
//! contract dispatches on) and the one place that writes them ([`IpeCall::function`], [`IpeCall::args`],
//! what Rust callers submit). The wire format is unchanged and stays the one of `docs/ipe-contract.md`:
//! callers in other languages (Fabric's SDKs, the Node apps in `examples/`) call the same functions by name
//! with the same JSON.
//!
//! Arguments are written as JSON objects with their keys in lexicographic order and optional fields that are
//! absent left out (a few that gateways have always sent, such as a response's `code`, are written as
//! `null`), which is byte for byte what the gateway wrote before its calls were typed (tested).
//!
//! ```
//! use ipe::call::IpeCall;
//! use ipe::model::DeregisterArgs;
//! let call = IpeCall::DeregisterDevice(DeregisterArgs { endpoint: "ep1".into(), reason: Some("expired".into()) });
//! assert_eq!(call.function(), "deregister_device");
//! let args = call.args().unwrap();
//! assert_eq!(args, [br#"{"endpoint":"ep1","reason":"expired"}"#.to_vec()]);
//! assert_eq!(IpeCall::parse(call.function(), &args).unwrap(), call);
//! ```

use contract::ContractError;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::credentials::SetCredentials;
use crate::model::{
    AnswerArgs, DeregisterArgs, DeviceRequestArgs, ListCredentialsArgs, ListDevicesArgs, RegisterArgs,
    ReportArgs, RequestArgs, ResponseArgs, UpdateArgs,
};
use crate::policy::{Policy, Rule};

/// A call of one of the IPE contract's functions with its argument.
#[derive(Debug, Clone, PartialEq)]
pub enum IpeCall {
    /// `register_device`.
    RegisterDevice(RegisterArgs),
    /// `update_device`.
    UpdateDevice(UpdateArgs),
    /// `deregister_device`.
    DeregisterDevice(DeregisterArgs),
    /// `get_device` (query): an endpoint name or AE-ID.
    GetDevice {
        /// Endpoint name or AE-ID.
        endpoint: String,
    },
    /// `get_mapping` (query): an endpoint name or AE-ID.
    GetMapping {
        /// Endpoint name or AE-ID.
        endpoint: String,
    },
    /// `list_devices` (query).
    ListDevices(ListDevicesArgs),
    /// `submit_request`.
    SubmitRequest(RequestArgs),
    /// `submit_response`.
    SubmitResponse(ResponseArgs),
    /// `get_request` (query).
    GetRequest {
        /// Request id.
        request_id: String,
    },
    /// `report`.
    Report(ReportArgs),
    /// `device_request`.
    DeviceRequest(DeviceRequestArgs),
    /// `answer_device_request`.
    AnswerDeviceRequest(AnswerArgs),
    /// `get_device_request` (query).
    GetDeviceRequest {
        /// Device request id.
        request_id: String,
    },
    /// `set_policy` (admin).
    SetPolicy(Policy),
    /// `grant` (admin).
    Grant(Rule),
    /// `revoke` (admin).
    Revoke {
        /// Rule id.
        rule_id: String,
    },
    /// `get_policy` (query).
    GetPolicy,
    /// `set_device_credentials` (admin).
    SetDeviceCredentials(SetCredentials),
    /// `remove_device_credentials` (admin).
    RemoveDeviceCredentials {
        /// Endpoint name.
        endpoint: String,
    },
    /// `get_device_credentials` (query).
    GetDeviceCredentials {
        /// Endpoint name.
        endpoint: String,
    },
    /// `list_device_credentials` (query).
    ListDeviceCredentials(ListCredentialsArgs),
}

/// How the IPE contract refuses a call: the status the SDK reports (`ClientError::Refused { status, .. }`,
/// `docs/ipe-contract.md` "Errors → status"). These are stable; callers match on them as data, never on a
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// 400: malformed argument, unknown function, a value that does not translate.
    BadRequest,
    /// 403: the policy denies, or the caller may not act for the device or change the policy.
    Forbidden,
    /// 404: unknown device, request, device request, rule or credentials.
    NotFound,
    /// 409: an id used before, a second answer, an identity bound to another endpoint.
    Conflict,
    /// 500: the state could not be read or holds an invalid record (never caused by input).
    Internal,
}

impl Refusal {
    /// Its status.
    pub const fn status(self) -> i32 {
        match self {
            Refusal::BadRequest => 400,
            Refusal::Forbidden => 403,
            Refusal::NotFound => 404,
            Refusal::Conflict => 409,
            Refusal::Internal => 500,
        }
    }

    /// The refusal a status stands for; `None` for a status the IPE contract never answers with.
    pub const fn from_status(status: i32) -> Option<Refusal> {
        Some(match status {
            400 => Refusal::BadRequest,
            403 => Refusal::Forbidden,
            404 => Refusal::NotFound,
            409 => Refusal::Conflict,
            500 => Refusal::Internal,
            _ => return None,
        })
    }

    /// The refusal a contract error becomes.
    pub fn of(e: &ContractError) -> Option<Refusal> {
        Refusal::from_status(e.status())
    }
}

/// An argument that could not be written as JSON.
#[derive(Debug, thiserror::Error)]
#[error("{function}: the argument cannot be written as JSON: {source}")]
pub struct EncodeError {
    /// The function.
    pub function: &'static str,
    /// Why.
    pub source: serde_json::Error,
}

impl IpeCall {
    /// The function's name on the contract.
    pub fn function(&self) -> &'static str {
        match self {
            IpeCall::RegisterDevice(_) => "register_device",
            IpeCall::UpdateDevice(_) => "update_device",
            IpeCall::DeregisterDevice(_) => "deregister_device",
            IpeCall::GetDevice { .. } => "get_device",
            IpeCall::GetMapping { .. } => "get_mapping",
            IpeCall::ListDevices(_) => "list_devices",
            IpeCall::SubmitRequest(_) => "submit_request",
            IpeCall::SubmitResponse(_) => "submit_response",
            IpeCall::GetRequest { .. } => "get_request",
            IpeCall::Report(_) => "report",
            IpeCall::DeviceRequest(_) => "device_request",
            IpeCall::AnswerDeviceRequest(_) => "answer_device_request",
            IpeCall::GetDeviceRequest { .. } => "get_device_request",
            IpeCall::SetPolicy(_) => "set_policy",
            IpeCall::Grant(_) => "grant",
            IpeCall::Revoke { .. } => "revoke",
            IpeCall::GetPolicy => "get_policy",
            IpeCall::SetDeviceCredentials(_) => "set_device_credentials",
            IpeCall::RemoveDeviceCredentials { .. } => "remove_device_credentials",
            IpeCall::GetDeviceCredentials { .. } => "get_device_credentials",
            IpeCall::ListDeviceCredentials(_) => "list_device_credentials",
        }
    }

    /// Whether the function only reads (evaluated, never submitted).
    pub fn is_query(&self) -> bool {
        matches!(
            self,
            IpeCall::GetDevice { .. }
                | IpeCall::GetMapping { .. }
                | IpeCall::ListDevices(_)
                | IpeCall::GetRequest { .. }
                | IpeCall::GetDeviceRequest { .. }
                | IpeCall::GetPolicy
                | IpeCall::GetDeviceCredentials { .. }
                | IpeCall::ListDeviceCredentials(_)
        )
    }

    /// The arguments as they go on the wire: one JSON document, one plain string (queries by id), or none
    /// (`get_policy`).
    pub fn args(&self) -> Result<Vec<Vec<u8>>, EncodeError> {
        let json = |v: &dyn erased::Serialize| sorted_json(self.function(), v);
        Ok(match self {
            IpeCall::RegisterDevice(a) => vec![json(a)?],
            IpeCall::UpdateDevice(a) => vec![json(a)?],
            IpeCall::DeregisterDevice(a) => vec![json(a)?],
            IpeCall::ListDevices(a) => vec![json(a)?],
            IpeCall::SubmitRequest(a) => vec![json(a)?],
            IpeCall::SubmitResponse(a) => vec![json(a)?],
            IpeCall::Report(a) => vec![json(a)?],
            IpeCall::DeviceRequest(a) => vec![json(a)?],
            IpeCall::AnswerDeviceRequest(a) => vec![json(a)?],
            IpeCall::SetPolicy(a) => vec![json(a)?],
            IpeCall::Grant(a) => vec![json(a)?],
            IpeCall::SetDeviceCredentials(a) => vec![json(a)?],
            IpeCall::ListDeviceCredentials(a) => vec![json(a)?],
            IpeCall::GetDevice { endpoint }
            | IpeCall::GetMapping { endpoint }
            | IpeCall::RemoveDeviceCredentials { endpoint }
            | IpeCall::GetDeviceCredentials { endpoint } => vec![endpoint.clone().into_bytes()],
            IpeCall::GetRequest { request_id } | IpeCall::GetDeviceRequest { request_id } => {
                vec![request_id.clone().into_bytes()]
            }
            IpeCall::Revoke { rule_id } => vec![rule_id.clone().into_bytes()],
            IpeCall::GetPolicy => Vec::new(),
        })
    }

    /// Reads a call as the contract receives it. The errors are the contract's refusals of malformed calls
    /// (400, `ContractError::BadRequest`), with the messages of `docs/ipe-contract.md`.
    pub fn parse(function: &str, args: &[Vec<u8>]) -> Result<IpeCall, ContractError> {
        Ok(match function {
            "register_device" => IpeCall::RegisterDevice(json_arg(args, function)?),
            "update_device" => IpeCall::UpdateDevice(json_arg(args, function)?),
            "deregister_device" => IpeCall::DeregisterDevice(json_arg(args, function)?),
            "get_device" => IpeCall::GetDevice { endpoint: str_arg(args, "endpoint")? },
            "get_mapping" => IpeCall::GetMapping { endpoint: str_arg(args, "endpoint")? },
            "list_devices" => IpeCall::ListDevices(list_devices_arg(args)?),
            "submit_request" => IpeCall::SubmitRequest(json_arg(args, function)?),
            "submit_response" => IpeCall::SubmitResponse(json_arg(args, function)?),
            "get_request" => IpeCall::GetRequest { request_id: str_arg(args, "request_id")? },
            "report" => IpeCall::Report(json_arg(args, function)?),
            "device_request" => IpeCall::DeviceRequest(json_arg(args, function)?),
            "answer_device_request" => IpeCall::AnswerDeviceRequest(json_arg(args, function)?),
            "get_device_request" => IpeCall::GetDeviceRequest { request_id: str_arg(args, "request_id")? },
            "set_policy" => IpeCall::SetPolicy(json_arg(args, function)?),
            "grant" => IpeCall::Grant(json_arg(args, function)?),
            "revoke" => IpeCall::Revoke { rule_id: str_arg(args, "rule_id")? },
            "get_policy" => IpeCall::GetPolicy,
            "set_device_credentials" => IpeCall::SetDeviceCredentials(json_arg(args, function)?),
            "remove_device_credentials" => {
                IpeCall::RemoveDeviceCredentials { endpoint: str_arg(args, "endpoint")? }
            }
            "get_device_credentials" => {
                IpeCall::GetDeviceCredentials { endpoint: str_arg(args, "endpoint")? }
            }
            "list_device_credentials" => IpeCall::ListDeviceCredentials(optional_json_arg(args, function)?),
            other => return Err(bad(format!("ipe has no function {other:?}"))),
        })
    }
}

/// Serialisation through `serde_json::Value`, whose objects keep their keys sorted: the key order of the
/// `json!` documents the gateway used to build.
fn sorted_json(function: &'static str, v: &dyn erased::Serialize) -> Result<Vec<u8>, EncodeError> {
    v.to_value().and_then(|v| serde_json::to_vec(&v)).map_err(|source| EncodeError { function, source })
}

mod erased {
    /// A serialisable argument, as a trait object.
    pub(super) trait Serialize {
        fn to_value(&self) -> Result<serde_json::Value, serde_json::Error>;
    }

    impl<T: serde::Serialize> Serialize for T {
        fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
            serde_json::to_value(self)
        }
    }
}

fn bad(e: impl std::fmt::Display) -> ContractError {
    ContractError::BadRequest(e.to_string())
}

/// The single JSON argument of a function.
fn json_arg<T: DeserializeOwned>(args: &[Vec<u8>], what: &str) -> Result<T, ContractError> {
    let raw = args.first().ok_or_else(|| bad(format!("{what}: missing JSON argument")))?;
    serde_json::from_slice(raw).map_err(|e| bad(format!("{what}: {e}")))
}

/// The optional JSON argument of a listing (absent or empty: the default).
fn optional_json_arg<T: DeserializeOwned + Default>(
    args: &[Vec<u8>],
    what: &str,
) -> Result<T, ContractError> {
    match args.first() {
        Some(raw) if !raw.is_empty() => serde_json::from_slice(raw).map_err(|e| bad(format!("{what}: {e}"))),
        _ => Ok(T::default()),
    }
}

/// `list_devices`' optional filter: any JSON object, read leniently.
fn list_devices_arg(args: &[Vec<u8>]) -> Result<ListDevicesArgs, ContractError> {
    let filter: Json = match args.first() {
        Some(raw) if !raw.is_empty() => {
            serde_json::from_slice(raw).map_err(|e| bad(format!("list_devices: {e}")))?
        }
        _ => Json::Object(serde_json::Map::new()),
    };
    ListDevicesArgs::from_json(&filter).ok_or_else(|| bad("list_devices: argument must be a JSON object"))
}

/// The single string argument of a query.
fn str_arg(args: &[Vec<u8>], what: &str) -> Result<String, ContractError> {
    let raw = args.first().ok_or_else(|| bad(format!("missing argument {what}")))?;
    String::from_utf8(raw.clone()).map_err(|_| bad(format!("{what} must be UTF-8")))
}

#[cfg(test)]
mod tests;
