//! The IPE contract (oneM2M *interworking proxy entity*) of ipechain, and the TS-0014 mapping as a library.
//!
//! [`IpeContract`] implements [`contract::Contract`] under the name `ipe`. It keeps on chain:
//!
//! - the **device registry** (`dev/<endpoint>`, with the AE-ID index `ae/<ae-id>`), written by the bridge
//!   gateway that serves each LwM2M endpoint;
//! - the **access policy** (`pol/policy`), written only by admin transactions;
//! - **device credentials** (`dcred/<endpoint>`, index `dcid/<mode>/<identity>`): each endpoint's security
//!   mode and credential fingerprint (never a secret), written only by admin transactions;
//! - **requests** of oneM2M applications to devices (`req/<request-id>`) with their translated answers;
//! - **reports** of devices (`rpt/<report-id>`) and **device requests** (`dreq/<request-id>`) with their answers.
//!
//! Every function takes its argument as one JSON document (queries: a plain id) and returns JSON. Each
//! transaction emits at most one contract event, addressed (`"to"`) to the gateway or application that must
//! act. `docs/ipe-contract.md` lists the functions, events and errors; `docs/bridge-mapping.md` the oneM2M
//! resource tree and content shapes.
//!
//! ```text
//!  oneM2M app ──submit_request──► ledger ──event "request" (to gateway)──► gateway ──LwM2M──► device
//!  oneM2M app ◄──event "response" (to originator)── ledger ◄──submit_response── gateway ◄─────┘
//! ```
//!
//! The core is pure: no I/O, no clock, no randomness. Everything is derived from the arguments, the state,
//! the caller and the proposal's timestamp, so every peer computes the same read/write set.
//!
//! ```
//! use contract::{Caller, Contract, TxContext};
//! use ipe::IpeContract;
//! # use ledger_types::store::{StateSnapshot, StoreError, VersionedValue};
//! # struct Empty;
//! # impl StateSnapshot for Empty {
//! #     fn get(&self, _: &str, _: &str) -> Result<Option<VersionedValue>, StoreError> { Ok(None) }
//! #     fn range(&self, _: &str, _: &str, _: &str, _: usize) -> Result<Vec<(String, VersionedValue)>, StoreError> { Ok(vec![]) }
//! # }
//! let ipe = IpeContract::default();
//! let gw = Caller { msp_id: "Org1MSP".into(), role: "client".into(), subject: "gw1".into(), cert_der: vec![] };
//! let mut ctx = TxContext::new("ipe", &Empty, "0".repeat(64), 1_700_000_000, &gw);
//! let reg = br#"{"endpoint":"imei:356938035643809","lwm2m_version":"1.1","links":"</3/0>,</3303/0>"}"#;
//! let out = ipe.invoke(&mut ctx, "register_device", &[reg.to_vec()]).unwrap();
//! let dev: serde_json::Value = serde_json::from_slice(&out).unwrap();
//! assert_eq!(dev["ae_id"], "Cimei-356938035643809");
//! let (_, event) = ctx.into_results();
//! assert_eq!(event.unwrap().0, "device.registered");
//! ```

pub mod call;
pub mod credentials;
pub mod events;
pub mod mapping;
pub mod model;
pub mod policy;
mod registry;
mod requests;
pub mod translate;

#[cfg(test)]
mod tests;

use contract::{Caller, Contract, ContractError, TxContext};
use lwm2m::Registry;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use call::{IpeCall, Refusal};

pub use credentials::{BootstrapCredentials, DeviceCredentials, SecurityMode, SetBootstrap, SetCredentials};
pub use events::IpeEvent;
pub use mapping::{MappingMode, ResourceTree, ae_id_for, resource_tree};
pub use model::{Device, GatewayRef, Operation, RequestRecord};
pub use policy::{Permission, Policy, Rule};
pub use requests::request_id_used;

/// The contract's name (and state namespace).
pub const NAME: &str = "ipe";

/// Configuration; every peer must run the contract with the same one.
#[derive(Debug, Clone)]
pub struct IpeConfig {
    /// MSP ids whose members may change the policy (besides any caller with role `admin`).
    pub admin_msps: Vec<String>,
    /// Mapping mode of devices that do not ask for one.
    pub default_mode: MappingMode,
    /// Object definitions used for types, units and the resource tree.
    pub registry: Registry,
}

impl Default for IpeConfig {
    fn default() -> Self {
        IpeConfig { admin_msps: Vec::new(), default_mode: MappingMode::Full, registry: Registry::builtin() }
    }
}

/// The IPE contract.
#[derive(Debug, Clone, Default)]
pub struct IpeContract {
    config: IpeConfig,
}

impl IpeContract {
    /// A contract with `config`.
    pub fn new(config: IpeConfig) -> Self {
        IpeContract { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &IpeConfig {
        &self.config
    }

    pub(crate) fn is_admin(&self, caller: &Caller) -> bool {
        caller.role == "admin" || self.config.admin_msps.contains(&caller.msp_id)
    }
}

pub(crate) fn bad(e: impl std::fmt::Display) -> ContractError {
    ContractError::BadRequest(e.to_string())
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, ContractError> {
    serde_json::to_vec(v).map_err(|e| ContractError::Internal(format!("serialise: {e}")))
}

pub(crate) fn load<T: DeserializeOwned>(
    ctx: &mut TxContext<'_>,
    key: &str,
) -> Result<Option<T>, ContractError> {
    match ctx.get_state(key)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| ContractError::Internal(format!("state {key} is not valid: {e}"))),
    }
}

pub(crate) fn store<T: Serialize>(ctx: &mut TxContext<'_>, key: &str, v: &T) -> Result<(), ContractError> {
    ctx.put_state(key, to_json(v)?)
}

pub(crate) fn emit<T: Serialize>(
    ctx: &mut TxContext<'_>,
    name: &str,
    payload: &T,
) -> Result<(), ContractError> {
    let bytes = to_json(payload)?;
    ctx.set_event(name, bytes);
    Ok(())
}

impl Contract for IpeContract {
    fn name(&self) -> &str {
        NAME
    }

    fn invoke(
        &self,
        ctx: &mut TxContext<'_>,
        function: &str,
        args: &[Vec<u8>],
    ) -> Result<Vec<u8>, ContractError> {
        match IpeCall::parse(function, args)? {
            IpeCall::RegisterDevice(a) => self.register_device(ctx, a),
            IpeCall::UpdateDevice(a) => self.update_device(ctx, a),
            IpeCall::DeregisterDevice(a) => self.deregister_device(ctx, a),
            IpeCall::GetDevice { endpoint } => self.get_device(ctx, &endpoint),
            IpeCall::GetMapping { endpoint } => self.get_mapping(ctx, &endpoint),
            IpeCall::ListDevices(filter) => self.list_devices(ctx, &filter),
            IpeCall::SubmitRequest(a) => self.submit_request(ctx, a),
            IpeCall::SubmitResponse(a) => self.submit_response(ctx, a),
            IpeCall::GetRequest { request_id } => self.get_request(ctx, &request_id),
            IpeCall::Report(a) => self.report(ctx, a),
            IpeCall::DeviceRequest(a) => self.device_request(ctx, a),
            IpeCall::AnswerDeviceRequest(a) => self.answer_device_request(ctx, a),
            IpeCall::GetDeviceRequest { request_id } => self.get_device_request(ctx, &request_id),
            IpeCall::SetPolicy(p) => self.set_policy(ctx, p),
            IpeCall::Grant(rule) => self.grant(ctx, rule),
            IpeCall::Revoke { rule_id } => self.revoke(ctx, &rule_id),
            IpeCall::GetPolicy => self.get_policy(ctx),
            IpeCall::SetDeviceCredentials(a) => self.set_device_credentials(ctx, a),
            IpeCall::RemoveDeviceCredentials { endpoint } => self.remove_device_credentials(ctx, &endpoint),
            IpeCall::GetDeviceCredentials { endpoint } => self.get_device_credentials(ctx, &endpoint),
            IpeCall::ListDeviceCredentials(filter) => self.list_device_credentials(ctx, &filter),
        }
    }
}
