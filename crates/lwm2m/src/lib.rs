//! LwM2M 1.0/1.1 core, without I/O: what a server needs to understand devices.
//!
//! - [`LwM2mPath`]: validated paths (`/3/0/1`).
//! - [`node::Node`]: the tree view (object, instance, resource, resource instance) of decoded records.
//! - [`Registry`]: object definitions from OMA XML, with the core objects 0–7 and IPSO 3300–3350 built in.
//! - [`codec`]: text, opaque, TLV, SenML JSON/CBOR, LwM2M JSON and LwM2M CBOR as pure functions, and
//!   [`link`] for CoRE link format.
//! - [`registration`]: Register / Update parsing with the leniency real clients need.
//! - [`ops`]: device-management operations as types, mapped onto neutral CoAP requests.
//! - [`bootstrap`]: the bootstrap interface (Bootstrap-Request parsing and a server-side session state machine).
//!
//! ```
//! use lwm2m::{codec, ContentFormat, LwM2mPath, Registry, Value};
//! let reg = Registry::builtin();
//! let base: LwM2mPath = "/3303/0".parse().unwrap();
//! let records = codec::decode(ContentFormat::TLV, &[0xE4, 0x16, 0x44, 0x41, 0xAC, 0x00, 0x00], &base, &reg).unwrap();
//! assert_eq!(records[0].path.to_string(), "/3303/0/5700");
//! assert_eq!(records[0].value, Value::Float(21.5));
//! ```

pub mod bootstrap;
mod builtin;
pub mod codec;
mod format;
pub mod link;
mod model;
pub mod node;
pub mod ops;
mod path;
pub mod registration;
mod value;

#[cfg(test)]
mod tests;

pub use codec::Record;
pub use format::ContentFormat;
pub use model::{ModelError, ObjectModel, Operations, Registry, ResourceModel};
pub use path::{LwM2mPath, MAX_ID, PathError};
pub use value::{ResourceType, Value};
