//! Device-management and information-reporting operations as types, and how each maps onto a CoAP request
//! (method, Uri-Path, Uri-Query, Content-Format, Accept, Observe, payload) without depending on a CoAP stack.

use crate::codec::{self, CodecError, Record};
use crate::format::ContentFormat;
use crate::path::LwM2mPath;

/// CoAP request methods used by LwM2M.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
}

/// A CoAP request in neutral form; the server shell turns it into a packet.
#[derive(Debug, Clone, PartialEq)]
pub struct CoapRequest {
    /// Method.
    pub method: Method,
    /// Uri-Path segments (the client's root path included).
    pub uri_path: Vec<String>,
    /// Uri-Query options.
    pub uri_query: Vec<String>,
    /// Content-Format of the payload.
    pub content_format: Option<ContentFormat>,
    /// Accept.
    pub accept: Option<ContentFormat>,
    /// Observe option (0 register, 1 deregister).
    pub observe: Option<u32>,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Write mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// PUT: replace the instance or resource.
    Replace,
    /// POST: partial update of an instance.
    Update,
}

/// Notification attributes (Write-Attributes): `pmin`, `pmax`, `gt`, `lt`, `st`, `epmin`, `epmax`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attributes {
    /// Minimum period (s).
    pub pmin: Option<u32>,
    /// Maximum period (s).
    pub pmax: Option<u32>,
    /// Greater than.
    pub gt: Option<f64>,
    /// Less than.
    pub lt: Option<f64>,
    /// Step.
    pub st: Option<f64>,
    /// Minimum evaluation period (1.1).
    pub epmin: Option<u32>,
    /// Maximum evaluation period (1.1).
    pub epmax: Option<u32>,
}

/// Why an operation is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperationError {
    /// The path does not fit the operation (e.g. Execute on an instance).
    #[error("{op} is not allowed on {path}")]
    Path {
        /// Operation.
        op: &'static str,
        /// Path.
        path: LwM2mPath,
    },
    /// An attribute name or value is not valid.
    #[error("invalid attribute {0:?}")]
    Attribute(String),
    /// Execute arguments do not follow the grammar `0='text',1`.
    #[error("invalid execute arguments")]
    ExecuteArgs,
    /// The payload could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl Attributes {
    /// Parses `name=value` pairs (a REST query or Uri-Query options); unknown names are errors.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, OperationError> {
        let mut a = Attributes::default();
        for (k, v) in pairs {
            let bad = || OperationError::Attribute(format!("{k}={v}"));
            let int = || v.parse::<u32>().map_err(|_| bad());
            let float = || v.parse::<f64>().ok().filter(|f| f.is_finite()).ok_or_else(bad);
            match k {
                "pmin" => a.pmin = Some(int()?),
                "pmax" => a.pmax = Some(int()?),
                "epmin" => a.epmin = Some(int()?),
                "epmax" => a.epmax = Some(int()?),
                "gt" => a.gt = Some(float()?),
                "lt" => a.lt = Some(float()?),
                "st" => a.st = Some(float()?),
                _ => return Err(bad()),
            }
        }
        if let (Some(lt), Some(gt)) = (a.lt, a.gt)
            && lt >= gt
            && a.st.is_some_and(|st| lt + 2.0 * st >= gt)
        {
            return Err(OperationError::Attribute("lt + 2*st must be below gt".into()));
        }
        Ok(a)
    }

    /// The Uri-Query options.
    pub fn to_queries(&self) -> Vec<String> {
        let mut q = Vec::new();
        let mut push = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                q.push(format!("{k}={v}"));
            }
        };
        push("pmin", self.pmin.map(|v| v.to_string()));
        push("pmax", self.pmax.map(|v| v.to_string()));
        push("gt", self.gt.map(|v| v.to_string()));
        push("lt", self.lt.map(|v| v.to_string()));
        push("st", self.st.map(|v| v.to_string()));
        push("epmin", self.epmin.map(|v| v.to_string()));
        push("epmax", self.epmax.map(|v| v.to_string()));
        q
    }
}

/// Checks Execute arguments against LwM2M 1.1 §5.4.5: `arg *( "," arg )`, `arg = DIGIT [ "=" "'" text "'" ]`.
pub fn valid_execute_args(args: &str) -> bool {
    if args.is_empty() {
        return true;
    }
    let mut rest = args;
    loop {
        let mut chars = rest.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_digit()) {
            return false;
        }
        rest = &rest[1..];
        if let Some(r) = rest.strip_prefix("='") {
            let Some(end) = r.find('\'') else { return false };
            if r[..end].chars().any(|c| c.is_control()) {
                return false;
            }
            rest = &r[end + 1..];
        }
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None => return rest.is_empty(),
        }
    }
}

/// A server-initiated operation on a client.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Downlink {
    /// Read (GET).
    Read {
        /// Target.
        path: LwM2mPath,
        /// Accept, or none to let the client choose.
        accept: Option<ContentFormat>,
    },
    /// Discover (GET with Accept: link format).
    Discover {
        /// Target.
        path: LwM2mPath,
    },
    /// Write (PUT replace / POST partial update).
    Write {
        /// Target (instance or resource).
        path: LwM2mPath,
        /// Mode.
        mode: WriteMode,
        /// Payload format.
        format: ContentFormat,
        /// Values.
        records: Vec<Record>,
    },
    /// Execute (POST on a resource).
    Execute {
        /// Resource.
        path: LwM2mPath,
        /// Arguments (checked with [`valid_execute_args`]).
        args: String,
    },
    /// Write-Attributes (PUT with Uri-Query).
    WriteAttributes {
        /// Target.
        path: LwM2mPath,
        /// Attributes.
        attributes: Attributes,
    },
    /// Create (POST on an object).
    Create {
        /// Object path.
        path: LwM2mPath,
        /// Payload format.
        format: ContentFormat,
        /// Values; their instance id is the new instance's.
        records: Vec<Record>,
    },
    /// Delete (DELETE on an instance).
    Delete {
        /// Instance.
        path: LwM2mPath,
    },
    /// Observe (GET with Observe 0).
    Observe {
        /// Target.
        path: LwM2mPath,
        /// Accept.
        accept: Option<ContentFormat>,
    },
}

impl Downlink {
    /// The path it targets.
    pub fn path(&self) -> &LwM2mPath {
        match self {
            Downlink::Read { path, .. }
            | Downlink::Discover { path }
            | Downlink::Write { path, .. }
            | Downlink::Execute { path, .. }
            | Downlink::WriteAttributes { path, .. }
            | Downlink::Create { path, .. }
            | Downlink::Delete { path }
            | Downlink::Observe { path, .. } => path,
        }
    }

    /// Checks the path level and arguments, then builds the CoAP request under `root_path` (`/` usually).
    pub fn to_coap(&self, root_path: &str) -> Result<CoapRequest, OperationError> {
        let path = *self.path();
        let bad = |op| Err(OperationError::Path { op, path });
        let mut uri_path: Vec<String> =
            root_path.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        uri_path.extend(path.ids().iter().map(u16::to_string));
        let mut req = CoapRequest {
            method: Method::Get,
            uri_path,
            uri_query: vec![],
            content_format: None,
            accept: None,
            observe: None,
            payload: vec![],
        };
        match self {
            Downlink::Read { accept, .. } | Downlink::Observe { accept, .. } => {
                if path.is_root() {
                    return bad("read");
                }
                req.accept = *accept;
                if matches!(self, Downlink::Observe { .. }) {
                    req.observe = Some(0);
                }
            }
            Downlink::Discover { .. } => {
                if path.is_root() || path.is_resource_instance() {
                    return bad("discover");
                }
                req.accept = Some(ContentFormat::LINK);
            }
            Downlink::Write { mode, format, records, .. } => {
                if path.depth() < 2 || (*mode == WriteMode::Update && path.depth() != 2 && path.depth() != 3)
                {
                    return bad("write");
                }
                req.method = if *mode == WriteMode::Replace { Method::Put } else { Method::Post };
                req.content_format = Some(*format);
                req.payload = codec::encode(*format, records, &path)?;
            }
            Downlink::Execute { args, .. } => {
                if !path.is_resource() {
                    return bad("execute");
                }
                if !valid_execute_args(args) {
                    return Err(OperationError::ExecuteArgs);
                }
                req.method = Method::Post;
                req.payload = args.as_bytes().to_vec();
                if !args.is_empty() {
                    req.content_format = Some(ContentFormat::TEXT);
                }
            }
            Downlink::WriteAttributes { attributes, .. } => {
                if path.is_root() {
                    return bad("write-attributes");
                }
                req.method = Method::Put;
                req.uri_query = attributes.to_queries();
            }
            Downlink::Create { format, records, .. } => {
                if path.depth() != 1 {
                    return bad("create");
                }
                req.method = Method::Post;
                req.content_format = Some(*format);
                req.payload = codec::encode(*format, records, &path)?;
            }
            Downlink::Delete { .. } => {
                if path.depth() != 2 {
                    return bad("delete");
                }
                req.method = Method::Delete;
            }
        }
        Ok(req)
    }
}

/// A CoAP response code (class.detail) with Leshan's names for the REST API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseCode {
    /// Class (2, 4, 5).
    pub class: u8,
    /// Detail.
    pub detail: u8,
}

impl ResponseCode {
    /// From the raw code byte.
    pub fn from_byte(b: u8) -> Self {
        ResponseCode { class: b >> 5, detail: b & 0x1F }
    }

    /// Whether 2.xx.
    pub fn is_success(&self) -> bool {
        self.class == 2
    }

    /// Leshan-style name (`CONTENT`, `NOT_FOUND`, …).
    pub fn name(&self) -> &'static str {
        match (self.class, self.detail) {
            (2, 1) => "CREATED",
            (2, 2) => "DELETED",
            (2, 3) => "VALID",
            (2, 4) => "CHANGED",
            (2, 5) => "CONTENT",
            (2, 31) => "CONTINUE",
            (4, 0) => "BAD_REQUEST",
            (4, 1) => "UNAUTHORIZED",
            (4, 2) => "BAD_OPTION",
            (4, 3) => "FORBIDDEN",
            (4, 4) => "NOT_FOUND",
            (4, 5) => "METHOD_NOT_ALLOWED",
            (4, 6) => "NOT_ACCEPTABLE",
            (4, 8) => "REQUEST_ENTITY_INCOMPLETE",
            (4, 9) => "CONFLICT",
            (4, 12) => "PRECONDITION_FAILED",
            (4, 13) => "REQUEST_ENTITY_TOO_LARGE",
            (4, 15) => "UNSUPPORTED_CONTENT_FORMAT",
            (5, 0) => "INTERNAL_SERVER_ERROR",
            (5, 1) => "NOT_IMPLEMENTED",
            (5, 3) => "SERVICE_UNAVAILABLE",
            _ => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.class, self.detail)
    }
}
