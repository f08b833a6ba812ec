//! tongdai control plane: the Raft-replicated, deterministic state machine that holds
//! registrations, tenants, numbers, extensions and hunt groups, and steers the nodes.
//!
//! What exists now: [`model`], the state machine itself, sans-IO. It applies log
//! entries ([`model::Entry`]: a [`model::Command`] stamped with the leader's time) to a
//! [`model::State`], validates every command (tenant isolation, number formats and
//! ownership, tariff bands, HA1 credentials, quotas, referential integrity) with typed
//! [`model::CommandError`]s, keeps registration bindings by the RFC 3261 10.3 rules,
//! and snapshots/restores itself with postcard, byte-identical on every replica.
//!
//! [`api`] is the REST admin API over any [`cluster::Cluster`] (axum, OpenAPI, bearer
//! tokens, JSON errors naming the field, 307 from followers to the leader).
//!
//! What comes next: the Raft layer (openraft with a redb log and snapshot store, QUIC
//! mTLS transport) that feeds this state machine and implements `Cluster`, then the
//! node-facing watch stream. Until then nodes keep registrations in memory
//! (`tongdai_node::registrar::MemoryLocationService`).

pub mod api;
pub mod cluster;
pub mod model;
pub mod quic;
pub mod raft;
pub mod service;
pub mod wire;
