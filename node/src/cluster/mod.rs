//! The node's side of the control plane: a local cache of tenants, credentials,
//! registrations, numbers and trunks fed by a watch stream, and the client that
//! proposes changes (REGISTERs) to the Raft leader.

pub mod cache;
pub mod client;
mod sources;
pub mod store;

pub use cache::Cache;
pub use client::{Committed, ControlPlaneClient, ProposeError};
pub use store::ClusterStore;
