//! Public types of the server: configuration, client information, events, operation results and errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lwm2m::codec::{CodecError, Record};
use lwm2m::link::Link;
use lwm2m::ops::{OperationError, ResponseCode};
use lwm2m::registration::LwM2mVersion;
use lwm2m::{ContentFormat, LwM2mPath, Registry};

/// Server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// UDP address for CoAP (default `0.0.0.0:5683`).
    pub coap_addr: SocketAddr,
    /// Admin REST API address (default `127.0.0.1:8090`); `None` disables it.
    pub admin_addr: Option<SocketAddr>,
    /// Default timeout of a device operation (default 5 s); the REST API's `timeout=` overrides it.
    pub default_timeout: Duration,
    /// CoAP transmission parameters.
    pub coap: coap::Config,
    /// Object definitions used to type values.
    pub registry: Arc<Registry>,
    /// Capacity of the event broadcast channel.
    pub event_capacity: usize,
    /// Queue mode: how long a client in queue mode (`b=UQ` or `Q`) stays reachable after it sent something
    /// (default 93 s, CoAP MAX_TRANSMIT_WAIT). Operations for a sleeping client wait for it to wake up.
    pub queue_awake: Duration,
    /// DTLS (`coaps://`, UDP 5684 in the default network) with its credential store; `None` disables it.
    pub dtls: Option<crate::dtls::DtlsConfig>,
    /// Whether NoSec registrations are accepted (default `true`). Even when on, an endpoint that has
    /// credentials in the DTLS credential store may not register over NoSec.
    pub nosec: bool,
    /// Send receipts: `None` (default) answers a Send (`POST /dp`) 2.04 as soon as its payload decodes. With
    /// `Some(t)`, the answer waits for [`crate::LwM2mServerHandle::answer_send`] with the event's
    /// [`SendReceipt`] (a consumer that records the data answers once it is recorded), as a separate CoAP
    /// response after an empty ACK when it takes over a second; unanswered after `t`, the Send is answered
    /// 5.03 Service Unavailable, so the device knows to send it again.
    pub send_receipt_timeout: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            coap_addr: SocketAddr::from(([0, 0, 0, 0], 5683)),
            admin_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8090))),
            default_timeout: Duration::from_secs(5),
            coap: coap::Config { max_body: 64 * 1024, ..coap::Config::default() },
            registry: Arc::new(Registry::builtin()),
            event_capacity: 4096,
            queue_awake: Duration::from_secs(93),
            dtls: None,
            nosec: true,
            send_receipt_timeout: None,
        }
    }
}

/// What the server knows about a registered client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientInfo {
    /// Endpoint name.
    pub endpoint: String,
    /// Registration id (location `/rd/<id>`).
    pub registration_id: String,
    /// Last source address.
    pub address: SocketAddr,
    /// Lifetime (s).
    pub lifetime: u32,
    /// LwM2M version.
    pub version: LwM2mVersion,
    /// Binding mode.
    pub binding: String,
    /// Queue mode (the client sleeps between its messages).
    pub queue_mode: bool,
    /// Root path (`/` usually).
    pub root_path: String,
    /// Object links as sent.
    pub links: Vec<Link>,
    /// Objects and instances declared.
    pub objects: Vec<LwM2mPath>,
    /// Content formats advertised (`ct=`).
    pub supported_formats: Vec<ContentFormat>,
    /// First registration.
    pub registered_at: SystemTime,
    /// Last Register or Update.
    pub last_update: SystemTime,
    /// The DTLS identity the registration was made with; `None` for NoSec. Update, De-register, Send and
    /// notifications are taken only from the same security context.
    pub identity: Option<crate::creds::Identity>,
}

/// Something that happened on the LwM2M side.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A client registered.
    Registered(Arc<ClientInfo>),
    /// A DTLS handshake finished and its identity was admitted.
    DtlsSession {
        /// Peer address.
        peer: SocketAddr,
        /// Authenticated identity.
        identity: crate::creds::Identity,
        /// Negotiated cipher suite (IANA name, e.g. `TLS_PSK_WITH_AES_128_CCM_8`).
        cipher: String,
        /// An abbreviated handshake resumed an earlier session.
        resumed: bool,
    },
    /// A client sent an Update.
    Updated(Arc<ClientInfo>),
    /// A client de-registered.
    Deregistered {
        /// Endpoint name.
        endpoint: String,
        /// Registration id.
        registration_id: String,
    },
    /// A registration's lifetime passed without Update.
    Expired {
        /// Endpoint name.
        endpoint: String,
        /// Registration id.
        registration_id: String,
    },
    /// A notification of an observation.
    Notification {
        /// Endpoint name.
        endpoint: String,
        /// Observed path.
        path: LwM2mPath,
        /// CoAP code.
        code: ResponseCode,
        /// Decoded values.
        records: Vec<Record>,
    },
    /// Data a client sent with the Send operation (`POST /dp`).
    Send {
        /// Endpoint name.
        endpoint: String,
        /// Decoded values.
        records: Vec<Record>,
        /// With [`ServerConfig::send_receipt_timeout`] on: the device waits for the answer given with
        /// [`crate::LwM2mServerHandle::answer_send`] and this receipt. `None`: it was answered 2.04 already.
        receipt: Option<SendReceipt>,
    },
}

/// Names a Send whose answer waits (see [`ServerConfig::send_receipt_timeout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SendReceipt(pub u64);

impl SendReceipt {
    /// The receipt's number (unique within one server's run), for logs.
    pub fn number(self) -> u64 {
        self.0
    }
}

/// The answer to a Send that waits for its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendAnswer {
    /// The data is recorded: 2.04 Changed.
    Recorded,
    /// Refused for good, the same Send would be refused again: 4.00 Bad Request, with the reason as
    /// diagnostic payload.
    BadRequest(String),
    /// The device may not record this: 4.03 Forbidden, with the reason.
    Forbidden(String),
    /// Something the data needs is unknown (the device is not registered where it is recorded): 4.04 Not
    /// Found, with the reason.
    NotFound(String),
    /// Not recorded now (the recorder is unreachable or failed); sending it again later may succeed: 5.03
    /// Service Unavailable, with the reason.
    Unavailable(String),
}

impl SendAnswer {
    /// The CoAP response code (class, detail) and the diagnostic payload.
    pub(crate) fn code(&self) -> ((u8, u8), &str) {
        match self {
            SendAnswer::Recorded => ((2, 4), ""),
            SendAnswer::BadRequest(m) => ((4, 0), m),
            SendAnswer::Forbidden(m) => ((4, 3), m),
            SendAnswer::NotFound(m) => ((4, 4), m),
            SendAnswer::Unavailable(m) => ((5, 3), m),
        }
    }
}

/// The answer of a device to an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct OpResponse {
    /// CoAP response code.
    pub code: ResponseCode,
    /// Content-Format of the payload, if any.
    pub format: Option<ContentFormat>,
    /// Decoded values (Read, Observe).
    pub records: Vec<Record>,
    /// Decoded links (Discover).
    pub links: Vec<Link>,
    /// Location-Path of a Create, if any.
    pub location: Option<String>,
    /// The raw payload.
    pub payload: Vec<u8>,
}

/// Why an operation produced no device answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// No client registered under that endpoint name.
    #[error("no registered client {0:?}")]
    UnknownEndpoint(String),
    /// The request is not valid.
    #[error(transparent)]
    Invalid(#[from] OperationError),
    /// The device did not answer in time.
    #[error("the device did not answer in time")]
    Timeout,
    /// The device rejected the message with a CoAP Reset.
    #[error("the device answered with a CoAP Reset")]
    Reset,
    /// The device answered with a payload that could not be decoded.
    #[error("undecodable response: {0}")]
    Decode(CodecError),
    /// The server is shutting down.
    #[error("the server stopped")]
    Stopped,
}
