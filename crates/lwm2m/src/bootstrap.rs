//! The bootstrap interface (LwM2M 1.1 §5.2, client-initiated bootstrap), server side, without I/O.
//!
//! A client sends Bootstrap-Request (`POST /bs?ep=NAME[&pct=FORMAT]`); the server answers 2.04 and then
//! drives the client through a [`BootstrapSession`]: Bootstrap-Delete of `/0` and `/1` (the client keeps its
//! Bootstrap-Server account), Bootstrap-Discover of `/0` (which instance ids are still taken), one
//! Bootstrap-Write of an Security (0) and a Server (1) instance per LwM2M server account, and
//! Bootstrap-Finish (`POST /bs`). The session turns each step into a neutral [`CoapRequest`] and each answer
//! into the next step; the shell sends them and keeps the time.
//!
//! Lenient where clients differ: Discover is optional (a 1.0 client may reset it or answer 4.xx: the
//! default instance ids are used), and a Delete of something the client does not have (4.04) is fine.
//! Everything else that is not 2.xx ends the session as failed, with the reason.

use crate::codec::{self, Record};
use crate::format::ContentFormat;
use crate::link;
use crate::ops::{CoapRequest, Method, ResponseCode};
use crate::path::LwM2mPath;
use crate::value::Value;

/// A parsed Bootstrap-Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapRequest {
    /// The endpoint name (`ep`).
    pub endpoint: String,
    /// The content format the client prefers for Bootstrap-Write (`pct`, LwM2M 1.1).
    pub preferred_format: Option<ContentFormat>,
}

/// Why a Bootstrap-Request is refused (4.00).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapRequestError {
    /// No `ep`, or an empty, too long or non-printable one.
    #[error("missing or invalid endpoint name (ep)")]
    Endpoint,
    /// `pct` is not a number.
    #[error("invalid preferred content format (pct)")]
    PreferredFormat,
}

/// Longest endpoint name accepted (bytes), as for Register.
const MAX_ENDPOINT: usize = 255;

/// Parses the Uri-Query options of `POST /bs`.
pub fn parse_request(queries: &[String]) -> Result<BootstrapRequest, BootstrapRequestError> {
    let get = |k: &str| queries.iter().find_map(|q| q.strip_prefix(k).and_then(|r| r.strip_prefix('=')));
    let endpoint = get("ep").unwrap_or("");
    if endpoint.is_empty()
        || endpoint.len() > MAX_ENDPOINT
        || endpoint.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(BootstrapRequestError::Endpoint);
    }
    let preferred_format = match get("pct") {
        Some(p) => Some(ContentFormat(p.parse().map_err(|_| BootstrapRequestError::PreferredFormat)?)),
        None => None,
    };
    Ok(BootstrapRequest { endpoint: endpoint.to_owned(), preferred_format })
}

/// The Security object's Security Mode resource (0/x/2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityMode {
    /// 0: pre-shared key.
    Psk,
    /// 1: raw public key.
    Rpk,
    /// 2: X.509 certificate.
    Certificate,
    /// 3: no security.
    NoSec,
}

impl SecurityMode {
    /// The resource value.
    pub fn code(self) -> i64 {
        match self {
            SecurityMode::Psk => 0,
            SecurityMode::Rpk => 1,
            SecurityMode::Certificate => 2,
            SecurityMode::NoSec => 3,
        }
    }
}

/// One LwM2M server account to provision: a Security and a Server instance tied by the short server id.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerAccount {
    /// Short Server ID (1..=65534).
    pub short_server_id: u16,
    /// LwM2M Server URI, e.g. `coaps://gateway.example:5684`.
    pub uri: String,
    /// Security mode.
    pub mode: SecurityMode,
    /// Public Key or Identity (0/x/3): the PSK identity's bytes for PSK.
    pub identity: Vec<u8>,
    /// Server Public Key (0/x/4), empty when not used.
    pub server_public_key: Vec<u8>,
    /// Secret Key (0/x/5): the PSK for PSK. Never printed.
    pub secret_key: Vec<u8>,
    /// Registration lifetime (1/x/1), seconds.
    pub lifetime: u32,
    /// Binding (1/x/7), e.g. `U`.
    pub binding: String,
    /// Notification Storing When Disabled or Offline (1/x/6).
    pub notification_storing: bool,
}

impl std::fmt::Debug for ServerAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAccount")
            .field("short_server_id", &self.short_server_id)
            .field("uri", &self.uri)
            .field("mode", &self.mode)
            .field("identity", &String::from_utf8_lossy(&self.identity))
            .field("secret_key", &format_args!("<{} bytes>", self.secret_key.len()))
            .field("lifetime", &self.lifetime)
            .field("binding", &self.binding)
            .finish()
    }
}

/// What to provision into one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapConfig {
    /// Paths to Bootstrap-Delete first (`/0` and `/1` by default; the client keeps its bootstrap account).
    pub delete: Vec<LwM2mPath>,
    /// The LwM2M server accounts to write.
    pub servers: Vec<ServerAccount>,
}

impl BootstrapConfig {
    /// Deletes `/0` and `/1`, then writes `servers`.
    pub fn new(servers: Vec<ServerAccount>) -> Self {
        let path = |id| LwM2mPath::new(&[id]).unwrap_or(LwM2mPath::ROOT);
        BootstrapConfig { delete: vec![path(0), path(1)], servers }
    }
}

/// The formats this server can write Security and Server instances in, most preferred first.
const WRITE_FORMATS: [ContentFormat; 5] = [
    ContentFormat::TLV,
    ContentFormat::SENML_CBOR,
    ContentFormat::SENML_JSON,
    ContentFormat::LWM2M_CBOR,
    ContentFormat::OLD_TLV,
];

/// The step a session is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Bootstrap-Delete of `config.delete[i]`.
    Delete(usize),
    /// Bootstrap-Discover of `/0`.
    Discover,
    /// Bootstrap-Write of server `i`'s Security instance.
    WriteSecurity(usize),
    /// Bootstrap-Write of server `i`'s Server instance.
    WriteServer(usize),
    /// Bootstrap-Finish.
    Finish,
}

/// Where a session stands after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Send [`BootstrapSession::request`] next.
    Continue,
    /// The client accepted Bootstrap-Finish: provisioned.
    Done,
    /// The session ended without provisioning; the reason names the step and the client's answer.
    Failed(String),
}

/// One client's bootstrap sequence.
#[derive(Debug, Clone)]
pub struct BootstrapSession {
    config: BootstrapConfig,
    format: ContentFormat,
    step: Step,
    /// Instance ids chosen for each account's Security and Server instances.
    ids: Vec<(u16, u16)>,
}

impl BootstrapSession {
    /// Starts a session; `preferred` is the client's `pct`, used when this server can write it.
    pub fn new(config: BootstrapConfig, preferred: Option<ContentFormat>) -> Self {
        let format = preferred.filter(|f| WRITE_FORMATS.contains(f)).unwrap_or(ContentFormat::TLV);
        let ids = Self::allocate(&config, None);
        let step = if config.delete.is_empty() { Step::Discover } else { Step::Delete(0) };
        BootstrapSession { config, format, step, ids }
    }

    /// The format Bootstrap-Writes use.
    pub fn format(&self) -> ContentFormat {
        self.format
    }

    /// The current step.
    pub fn step(&self) -> Step {
        self.step
    }

    /// Security instance ids: the lowest ids that Discover did not list (`taken`), or from 1 when Discover
    /// told nothing (the bootstrap account is usually `/0/0`). Server instance ids from 0 (all deleted).
    fn allocate(config: &BootstrapConfig, taken: Option<&[u16]>) -> Vec<(u16, u16)> {
        let (mut next_sec, taken) = match taken {
            Some(t) => (0u16, t),
            None => (1u16, &[][..]),
        };
        let mut out = Vec::with_capacity(config.servers.len());
        for (i, _) in config.servers.iter().enumerate() {
            while taken.contains(&next_sec) {
                next_sec = next_sec.saturating_add(1);
            }
            out.push((next_sec, u16::try_from(i).unwrap_or(u16::MAX)));
            next_sec = next_sec.saturating_add(1);
        }
        out
    }

    /// The request for the current step.
    pub fn request(&self) -> Result<CoapRequest, codec::CodecError> {
        let mut req = CoapRequest {
            method: Method::Get,
            uri_path: vec![],
            uri_query: vec![],
            content_format: None,
            accept: None,
            observe: None,
            payload: vec![],
        };
        match self.step {
            Step::Delete(i) => {
                req.method = Method::Delete;
                if let Some(p) = self.config.delete.get(i) {
                    req.uri_path = p.ids().iter().map(u16::to_string).collect();
                }
            }
            Step::Discover => {
                req.uri_path = vec!["0".into()];
                req.accept = Some(ContentFormat::LINK);
            }
            Step::WriteSecurity(i) | Step::WriteServer(i) => {
                let (object, iid) = match self.step {
                    Step::WriteSecurity(_) => (0, self.ids[i].0),
                    _ => (1, self.ids[i].1),
                };
                let base =
                    LwM2mPath::new(&[object, iid]).map_err(|e| codec::CodecError::Path(e.to_string()))?;
                let records = match self.step {
                    Step::WriteSecurity(_) => self.security_records(i, &base)?,
                    _ => self.server_records(i, &base)?,
                };
                req.method = Method::Put;
                req.uri_path = vec![object.to_string(), iid.to_string()];
                req.content_format = Some(self.format);
                req.payload = codec::encode(self.format, &records, &base)?;
            }
            Step::Finish => {
                req.method = Method::Post;
                req.uri_path = vec!["bs".into()];
            }
        }
        Ok(req)
    }

    fn record(base: &LwM2mPath, rid: u16, value: Value) -> Result<Record, codec::CodecError> {
        let path = base.child(rid).map_err(|e| codec::CodecError::Path(e.to_string()))?;
        Ok(Record { path, value, time: None })
    }

    fn security_records(&self, i: usize, base: &LwM2mPath) -> Result<Vec<Record>, codec::CodecError> {
        let s = &self.config.servers[i];
        Ok(vec![
            Self::record(base, 0, Value::String(s.uri.clone()))?,
            Self::record(base, 1, Value::Boolean(false))?,
            Self::record(base, 2, Value::Integer(s.mode.code()))?,
            Self::record(base, 3, Value::Opaque(s.identity.clone()))?,
            Self::record(base, 4, Value::Opaque(s.server_public_key.clone()))?,
            Self::record(base, 5, Value::Opaque(s.secret_key.clone()))?,
            Self::record(base, 10, Value::Integer(i64::from(s.short_server_id)))?,
        ])
    }

    fn server_records(&self, i: usize, base: &LwM2mPath) -> Result<Vec<Record>, codec::CodecError> {
        let s = &self.config.servers[i];
        Ok(vec![
            Self::record(base, 0, Value::Integer(i64::from(s.short_server_id)))?,
            Self::record(base, 1, Value::Integer(i64::from(s.lifetime)))?,
            Self::record(base, 6, Value::Boolean(s.notification_storing))?,
            Self::record(base, 7, Value::String(s.binding.clone()))?,
        ])
    }

    fn after_writes(&self, i: usize) -> Step {
        if i + 1 < self.config.servers.len() { Step::WriteSecurity(i + 1) } else { Step::Finish }
    }

    /// The client answered the current step's request.
    pub fn on_response(&mut self, code: ResponseCode, payload: &[u8]) -> Progress {
        let ok = code.is_success();
        let fail = |what: &str| Progress::Failed(format!("{what} answered {code} {}", code.name()));
        self.step = match self.step {
            Step::Delete(i) => {
                // Nothing to delete is not an error.
                if !ok && (code.class, code.detail) != (4, 4) {
                    let path = self.config.delete.get(i).map(|p| p.to_string()).unwrap_or_default();
                    return fail(&format!("Bootstrap-Delete {path}"));
                }
                if i + 1 < self.config.delete.len() { Step::Delete(i + 1) } else { Step::Discover }
            }
            Step::Discover => {
                if ok && let Some(taken) = discovered_security_instances(payload) {
                    self.ids = Self::allocate(&self.config, Some(&taken));
                }
                self.first_write()
            }
            Step::WriteSecurity(i) => {
                if !ok {
                    return fail(&format!("Bootstrap-Write /0/{}", self.ids[i].0));
                }
                Step::WriteServer(i)
            }
            Step::WriteServer(i) => {
                if !ok {
                    return fail(&format!("Bootstrap-Write /1/{}", self.ids[i].1));
                }
                self.after_writes(i)
            }
            Step::Finish => {
                return if ok { Progress::Done } else { fail("Bootstrap-Finish") };
            }
        };
        Progress::Continue
    }

    fn first_write(&self) -> Step {
        if self.config.servers.is_empty() { Step::Finish } else { Step::WriteSecurity(0) }
    }

    /// The client did not answer the current request (timeout) or reset it.
    pub fn on_no_answer(&mut self, what: &str) -> Progress {
        match self.step {
            // Bootstrap-Discover is optional for 1.0 clients: go on with the default ids.
            Step::Discover => {
                self.step = self.first_write();
                Progress::Continue
            }
            step => Progress::Failed(format!("{step:?}: {what}")),
        }
    }
}

/// The Security instance ids a Bootstrap-Discover of `/0` lists (`</0/1>`), after the optional leading
/// `lwm2m="1.1"` item; `None` for an answer that is not link format (then nothing is known).
fn discovered_security_instances(payload: &[u8]) -> Option<Vec<u16>> {
    let text = String::from_utf8_lossy(payload);
    let mut text = text.trim();
    if text.starts_with("lwm2m=") {
        text = text.split_once(',').map_or("", |(_, rest)| rest);
    }
    let links = link::parse(text).ok()?;
    let ids = links
        .iter()
        .filter_map(|l| {
            let mut segs = l.target.trim_start_matches('/').split('/');
            match (segs.next(), segs.next(), segs.next()) {
                (Some("0"), Some(iid), None) => iid.parse().ok(),
                _ => None,
            }
        })
        .collect();
    Some(ids)
}

#[cfg(test)]
mod tests;
