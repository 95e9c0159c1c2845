//! A sans-IO CoAP (RFC 7252) endpoint on top of `coap-lite`'s message codec.
//!
//! [`Endpoint`] is a state machine: the shell feeds it datagrams ([`Endpoint::handle_datagram`]) and timer
//! expiries ([`Endpoint::handle_timeout`]) together with the current time, and drains what it wants done with
//! [`Endpoint::poll_transmit`], [`Endpoint::poll_event`] and [`Endpoint::poll_timeout`]. It never reads the
//! clock, never touches a socket and draws its randomness from a seed in [`Config`].
//!
//! It implements confirmable retransmission with exponential back-off, duplicate detection by message id
//! within `EXCHANGE_LIFETIME` (cached responses are replayed), token matching, piggy-backed and separate
//! responses, Observe (RFC 7641: sequence numbers, re-ordering, reactive cancel) and block-wise transfer
//! (RFC 7959: Block1 reassembly of incoming requests, Block2 follow-up of responses to our requests, Block1
//! segmentation of our own large requests).
//!
//! ```
//! use std::time::Instant;
//! use coap::{Config, Endpoint, Event};
//! use coap::lite::{Packet, RequestType, MessageClass, CoapOption};
//!
//! let now = Instant::now();
//! let mut client = Endpoint::new(Config::default());
//! let mut server = Endpoint::new(Config::default());
//! let (ca, sa) = ("127.0.0.1:1000".parse().unwrap(), "127.0.0.1:5683".parse().unwrap());
//! let mut req = Packet::new();
//! req.header.code = MessageClass::Request(RequestType::Get);
//! req.add_option(CoapOption::UriPath, b"hello".to_vec());
//! let id = client.send_request(now, sa, req, true);
//! let t = client.poll_transmit().unwrap();
//! server.handle_datagram(now, ca, &t.bytes);
//! let Some(Event::Request { id: rid, .. }) = server.poll_event() else { panic!() };
//! server.respond(now, rid, coap::response(coap::lite::ResponseType::Content, b"world".to_vec()));
//! let t = server.poll_transmit().unwrap();
//! client.handle_datagram(now, sa, &t.bytes);
//! let Some(Event::Response { id: got, response }) = client.poll_event() else { panic!() };
//! assert_eq!((got, response.payload), (id, b"world".to_vec()));
//! ```

mod block;
mod endpoint;
mod msg;
mod observe;

#[cfg(test)]
mod tests;

pub use block::BlockValue;
pub use endpoint::{Config, Endpoint, Event, IncomingId, RequestId, Transmit};
pub use msg::{
    DecodeError, code_string, decode, encode, is_critical, path_of, queries_of, response,
    unknown_critical_option,
};
pub use observe::is_fresh;

/// The message codec this crate builds on, re-exported so users need no direct dependency.
pub use coap_lite as lite;
