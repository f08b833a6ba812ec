//! The registrar (RFC 3261 section 10): authenticates REGISTER requests and keeps
//! each address-of-record's contact bindings in a [`LocationService`].

pub mod bindings;
pub mod location;

pub use bindings::{Binding, BindingError, ContactUpdate, RegisterOp, RegisterRequest};
pub use location::{LocationError, LocationService};
pub mod handler;
#[cfg(test)]
pub mod local;

pub use handler::{AuthOutcome, Registrar, RegistrarPolicy, UserDirectory};

#[cfg(test)]
mod tests;
