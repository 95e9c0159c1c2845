//! Fabric's gateway error details: a failed gateway call is a gRPC status whose `grpc-status-details-bin`
//! trailer is an encoded `google.rpc.Status` with one `Any` per failing endpoint, each an encoded
//! `gateway.ErrorDetail{address, msp_id, message}` (type URL `type.googleapis.com/gateway.ErrorDetail`). This
//! is what `@hyperledger/fabric-gateway` decodes into `EndorseError.details` and friends.

use crate::gateway::ErrorDetail;
use crate::google::rpc::Status as RpcStatus;
use prost::Message;

/// The type URL of an `ErrorDetail` inside a `google.protobuf.Any`.
pub const ERROR_DETAIL_TYPE_URL: &str = "type.googleapis.com/gateway.ErrorDetail";

/// A gRPC status as Fabric's gateway returns it: `code` and `message`, and the `details` in the
/// `grpc-status-details-bin` trailer (none: no trailer).
pub fn status_with_details(code: tonic::Code, message: &str, details: &[ErrorDetail]) -> tonic::Status {
    if details.is_empty() {
        return tonic::Status::new(code, message);
    }
    let status = RpcStatus {
        code: code as i32,
        message: message.to_owned(),
        details: details
            .iter()
            .map(|d| prost_types::Any {
                type_url: ERROR_DETAIL_TYPE_URL.to_owned(),
                value: d.encode_to_vec(),
            })
            .collect(),
    };
    tonic::Status::with_details(code, message, status.encode_to_vec().into())
}

/// Why a status's details cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorDetailsError {
    /// The details trailer is not an encoded `google.rpc.Status`.
    #[error("grpc-status-details-bin is not a google.rpc.Status: {0}")]
    Status(prost::DecodeError),
    /// A detail is not an encoded `gateway.ErrorDetail`.
    #[error("detail {index} ({type_url}) is not a gateway.ErrorDetail: {source}")]
    Detail {
        /// Position in `Status.details`.
        index: usize,
        /// The detail's type URL.
        type_url: String,
        /// The decoding error.
        source: prost::DecodeError,
    },
}

/// The `ErrorDetail`s of a status (empty when it has no details trailer). Like fabric-gateway, every detail
/// is read as an `ErrorDetail`, whatever its type URL.
pub fn error_details(status: &tonic::Status) -> Result<Vec<ErrorDetail>, ErrorDetailsError> {
    if status.details().is_empty() {
        return Ok(Vec::new());
    }
    let rpc = RpcStatus::decode(status.details()).map_err(ErrorDetailsError::Status)?;
    rpc.details
        .into_iter()
        .enumerate()
        .map(|(index, any)| {
            ErrorDetail::decode(any.value.as_slice()).map_err(|source| ErrorDetailsError::Detail {
                index,
                type_url: any.type_url,
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
