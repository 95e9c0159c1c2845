//! The registration interface: Register (`POST /rd?ep=…`), Update (`POST /rd/{id}`) and De-register
//! (`DELETE /rd/{id}`) parsed from URI queries and a link-format payload, leniently as real clients need.
//!
//! Lenient: no Content-Format, no `b=` (defaults to `U`), no `lwm2m=` (1.0) or `lwm2m=1.0.0`, no root link,
//! vendor objects.
//! Strict: a missing or empty `ep`, a non-numeric or zero `lt`, an unknown binding letter and unparsable
//! links are 4.00; an LwM2M version other than 1.0 and 1.1 is 4.12 (so a 1.2 client falls back); a
//! Content-Format other than link format (or text) is 4.15.

use crate::format::ContentFormat;
use crate::link::{self, Link};
use crate::path::LwM2mPath;

/// LwM2M enabler versions this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LwM2mVersion {
    /// 1.0
    V1_0,
    /// 1.1
    V1_1,
}

impl LwM2mVersion {
    /// `"1.0"` or `"1.1"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            LwM2mVersion::V1_0 => "1.0",
            LwM2mVersion::V1_1 => "1.1",
        }
    }
}

/// Why a registration message is refused, with its CoAP response code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// No `ep` (or an empty or too long one).
    #[error("missing or invalid endpoint name (ep)")]
    Endpoint,
    /// A parameter has a bad value.
    #[error("invalid value for registration parameter {0}")]
    Parameter(&'static str),
    /// `lwm2m=` names a version this server does not support.
    #[error("unsupported LwM2M version {0:?}")]
    UnsupportedVersion(String),
    /// The payload is not link format.
    #[error(transparent)]
    Links(#[from] link::LinkError),
    /// The Content-Format is not link format.
    #[error("registration payload in content format {0}")]
    ContentFormat(u16),
}

impl RegistrationError {
    /// The CoAP response code as `(class, detail)`: 4.00, 4.12 or 4.15.
    pub fn coap_code(&self) -> (u8, u8) {
        match self {
            RegistrationError::UnsupportedVersion(_) => (4, 12),
            RegistrationError::ContentFormat(_) => (4, 15),
            _ => (4, 0),
        }
    }
}

/// An object or object instance the client declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLink {
    /// `/3` or `/3/0`.
    pub path: LwM2mPath,
    /// `ver=` attribute, if any.
    pub version: Option<String>,
}

/// The link-format part of a Register or Update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectLinks {
    /// Alternate root path (from `rt="oma.lwm2m"`), `/` by default.
    pub root_path: String,
    /// Declared objects and instances.
    pub objects: Vec<ObjectLink>,
    /// Content formats the client advertised with `ct=` on its root link.
    pub supported_formats: Vec<ContentFormat>,
    /// All links as sent.
    pub links: Vec<Link>,
}

impl ObjectLinks {
    /// Parses a Register/Update payload.
    pub fn parse(payload: &[u8]) -> Result<Self, RegistrationError> {
        let text = String::from_utf8_lossy(payload);
        let links = link::parse(&text)?;
        let mut out = ObjectLinks { root_path: "/".into(), ..Default::default() };
        for l in &links {
            if l.attr("rt").is_some_and(|rt| rt.split(' ').any(|t| t == "oma.lwm2m")) {
                out.root_path =
                    if l.target.ends_with('/') { l.target.clone() } else { format!("{}/", l.target) };
                if let Some(ct) = l.attr("ct") {
                    out.supported_formats = ct
                        .split([' ', ','])
                        .filter_map(|c| c.trim().parse().ok())
                        .map(ContentFormat)
                        .collect();
                }
            }
        }
        for l in &links {
            let rel = l.target.strip_prefix(out.root_path.as_str()).unwrap_or(&l.target);
            let segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
            if segs.is_empty() || segs.len() > 2 {
                continue;
            }
            if let Ok(path) = LwM2mPath::from_segments(&segs) {
                out.objects.push(ObjectLink { path, version: l.attr("ver").map(str::to_owned) });
            }
        }
        out.links = links;
        Ok(out)
    }

    /// The object ids declared, without duplicates, in order.
    pub fn object_ids(&self) -> Vec<u16> {
        let mut ids: Vec<u16> = self.objects.iter().filter_map(|o| o.path.object()).collect();
        ids.dedup();
        ids
    }

    /// Serialises the links back (for storage or the REST API).
    pub fn to_link_format(&self) -> String {
        link::format(&self.links)
    }
}

/// A parsed Register request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    /// Endpoint client name (`ep`).
    pub endpoint: String,
    /// Lifetime in seconds (`lt`, default 86400).
    pub lifetime: u32,
    /// LwM2M version (`lwm2m`, default 1.0).
    pub version: LwM2mVersion,
    /// Binding mode (`b`, default `U`).
    pub binding: String,
    /// MSISDN (`sms`).
    pub sms: Option<String>,
    /// Queue mode (`Q` in 1.1, or `Q` in a 1.0 binding).
    pub queue_mode: bool,
    /// Objects and attributes.
    pub links: ObjectLinks,
}

/// A parsed Update request: only what the client sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateRequest {
    /// New lifetime.
    pub lifetime: Option<u32>,
    /// New binding.
    pub binding: Option<String>,
    /// New MSISDN.
    pub sms: Option<String>,
    /// New objects (when a payload was sent).
    pub links: Option<ObjectLinks>,
}

fn query<'a>(queries: &'a [String], key: &str) -> Option<&'a str> {
    queries.iter().find_map(|q| match q.split_once('=') {
        Some((k, v)) if k == key => Some(v),
        None if q == key => Some(""),
        _ => None,
    })
}

fn lifetime(queries: &[String]) -> Result<Option<u32>, RegistrationError> {
    query(queries, "lt")
        .map(|v| v.parse::<u32>().ok().filter(|l| *l > 0).ok_or(RegistrationError::Parameter("lt")))
        .transpose()
}

fn binding(queries: &[String]) -> Result<Option<String>, RegistrationError> {
    match query(queries, "b") {
        None => Ok(None),
        Some(b) if !b.is_empty() && b.chars().all(|c| "UQSNT".contains(c)) => Ok(Some(b.to_owned())),
        Some(_) => Err(RegistrationError::Parameter("b")),
    }
}

fn check_format(content_format: Option<u16>) -> Result<(), RegistrationError> {
    match content_format {
        None | Some(0) | Some(40) => Ok(()),
        Some(other) => Err(RegistrationError::ContentFormat(other)),
    }
}

/// Parses a Register from its Uri-Query options, Content-Format and payload.
pub fn parse_register(
    queries: &[String],
    content_format: Option<u16>,
    payload: &[u8],
) -> Result<RegisterRequest, RegistrationError> {
    let version = match query(queries, "lwm2m") {
        // `1.0.0`: some 1.0 clients (coap-node) write a patch number; the enabler version is 1.0.
        None | Some("1.0" | "1.0.0") => LwM2mVersion::V1_0,
        Some("1.1") => LwM2mVersion::V1_1,
        Some(other) => return Err(RegistrationError::UnsupportedVersion(other.to_owned())),
    };
    let endpoint = query(queries, "ep").unwrap_or("");
    if endpoint.is_empty() || endpoint.len() > 255 || endpoint.chars().any(char::is_control) {
        return Err(RegistrationError::Endpoint);
    }
    check_format(content_format)?;
    let binding = binding(queries)?.unwrap_or_else(|| "U".into());
    Ok(RegisterRequest {
        endpoint: endpoint.to_owned(),
        lifetime: lifetime(queries)?.unwrap_or(86400),
        version,
        queue_mode: binding.contains('Q') || query(queries, "Q").is_some(),
        binding,
        sms: query(queries, "sms").map(str::to_owned),
        links: ObjectLinks::parse(payload)?,
    })
}

/// Parses an Update.
pub fn parse_update(
    queries: &[String],
    content_format: Option<u16>,
    payload: &[u8],
) -> Result<UpdateRequest, RegistrationError> {
    check_format(content_format)?;
    Ok(UpdateRequest {
        lifetime: lifetime(queries)?,
        binding: binding(queries)?,
        sms: query(queries, "sms").map(str::to_owned),
        links: if payload.is_empty() { None } else { Some(ObjectLinks::parse(payload)?) },
    })
}
