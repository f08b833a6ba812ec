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
//! [`raft`] replicates it: openraft over a redb log and snapshot store
//! ([`raft::store`]), Raft RPCs over QUIC with mutual TLS ([`quic`],
//! [`raft::network`]), and [`raft::Replica`], which batches proposals, sweeps expired
//! registrations on the leader and implements [`cluster::Cluster`]. [`service`] is
//! what a replica serves over QUIC: Raft RPCs from peers, proposals and watch streams
//! ([`wire`]) from nodes.

pub mod acd_metrics;
pub mod api;
pub mod batch;
pub mod cluster;
pub mod model;
pub mod quic;
pub mod raft;
pub mod service;
pub mod wire;
