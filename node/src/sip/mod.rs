//! SIP: message codec, transactions, transports, digest authentication.

pub mod auth;
