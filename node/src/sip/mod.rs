//! SIP: message codec, transactions, transports, digest authentication.
//!
//! The codec and validation here are sans-IO: bytes in, typed messages out, and back.

pub mod auth;
pub mod dialog;
pub mod header;
pub mod message;
pub mod parse;
pub mod transaction;
pub mod transport;
pub mod uri;
pub mod validate;

pub use header::{CSeq, ContactList, HeaderError, NameAddr, Via};
pub use message::{Header, HeaderName, Headers, Message, Method, Request, Response, SipHeaders};
pub use parse::{ParseError, parse_datagram, parse_stream};
pub use uri::{Host, Uri, UriError};
pub use validate::{Rejection, validate_request};
