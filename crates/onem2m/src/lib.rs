//! oneM2M core: the vocabulary of the Mca reference point, without any I/O.
//!
//! - [`Rsc`]: response status codes (TS-0004) with their HTTP mapping.
//! - [`ResourceType`]: resource types, numeric `ty` and JSON short names (`m2m:cin`, ...).
//! - [`Target`], [`ResourceName`]: validated identifiers (CSE-relative, SP-relative, absolute).
//! - [`RequestPrimitive`], [`ResponsePrimitive`], [`FilterCriteria`]: the primitives.
//! - [`http`]: the HTTP binding (TS-0009) over the `http` crate's types.
//! - [`time`]: oneM2M timestamps from and to microseconds (the caller reads the clock).
//!
//! ```
//! use onem2m::{http as binding, Operation, Rsc};
//! let req = http::Request::builder()
//!     .method("POST")
//!     .uri("/cse-in/ae1?rcn=1")
//!     .header("X-M2M-Origin", "Cae1")
//!     .header("X-M2M-RI", "42")
//!     .header("X-M2M-RVI", "3")
//!     .header("Content-Type", "application/json;ty=4")
//!     .body(br#"{"m2m:cin":{"con":"21.5"}}"#.to_vec())
//!     .unwrap();
//! let p = binding::request_from_http(req.method(), req.uri(), req.headers(), req.body()).unwrap();
//! assert_eq!(p.op, Operation::Create);
//! assert_eq!(p.ty, Some(4));
//! assert_eq!(Rsc::Created.code(), 2001);
//! ```

pub mod http;
pub mod id;
pub mod primitive;
pub mod rsc;
pub mod time;
pub mod ty;

pub use id::{IdError, ResourceName, Target};
pub use primitive::{
    DiscResType, FilterCriteria, FilterUsage, Operation, RequestPrimitive, ResponsePrimitive, ResultContent,
};
pub use rsc::Rsc;
pub use ty::ResourceType;

#[cfg(test)]
mod tests;
