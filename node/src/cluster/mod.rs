//! The node's side of the control plane: a local cache of tenants, credentials and
//! registrations fed by a watch stream, and the client that proposes changes (REGISTERs)
//! to the Raft leader.

pub mod cache;
pub mod client;
pub mod store;

pub use cache::Cache;
pub use client::{Committed, ControlPlaneClient, ProposeError};
pub use store::ClusterStore;
