//! tongdai node: the SIP edge, the registrar, and (later) the B2BUA and media engine.
//!
//! Protocol logic is sans-IO: [`sip`] parses and serializes messages and runs
//! transactions with time passed in; sockets and tasks live at the edge
//! ([`sip::transport`], [`server`]).

pub mod b2bua;
pub mod cdr;
pub mod cluster;
pub mod config;
pub mod ctl;
pub mod demo_carrier;
pub mod media;
pub mod registrar;
pub mod replica;
pub mod server;
pub mod sip;
pub mod telemetry;
pub mod trunk;
