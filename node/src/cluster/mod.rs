//! The node's side of the control plane: a local cache of tenants, credentials,
//! registrations, numbers, trunks and the other nodes' load fed by a watch stream, the
//! client that proposes changes (REGISTERs) to the Raft leader, and the task that
//! reports this node's load.

pub mod cache;
pub mod client;
pub mod load;
mod sources;
pub mod store;

pub use cache::Cache;
pub use client::{Committed, ControlPlaneClient, ProposeError};
pub use load::{OthersLoad, spawn_load_reporter};
pub use store::ClusterStore;
