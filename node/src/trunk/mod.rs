//! Trunks' outbound digest registration with their carriers.
//!
//! A trunk whose control-plane record has a `registration` is registered by every node
//! from its own advertised SIP address (Contact `sip:username@node-address`), so a
//! carrier holding several contacts for the account can send calls to any node.
//!
//! - [`params`]: what a registration is configured with.
//! - [`registration`]: the sans-IO state machine of one binding (REGISTER, digest
//!   answers, refresh, backoff, removal), tested with simulated time.
//! - [`service`]: the task around the machines: follows the trunks in the cache, sends
//!   through the SIP core, removes every binding when the node drains.
//! - [`status`]: the `tongdai_trunk_registered` gauge and `GET /trunks/registrations`.

pub mod params;
pub mod registration;
pub mod service;
pub mod status;

#[cfg(test)]
mod tests;

use tongdai_control_plane::model::Id;

pub use registration::{Failure, Params, Registration, State};
pub use service::TrunkRegistrations;
pub use status::StatusBoard;

/// (tenant, trunk id).
pub type TrunkKey = (Id, Id);
