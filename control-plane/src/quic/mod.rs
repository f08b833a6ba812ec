//! QUIC with mutual TLS between replicas, nodes and admin tools, and a small typed RPC
//! on top of it.
//!
//! - [`certs`]: the dev PKI (`tongdai certs init | issue`, `tongdai up`) and [`Identity`],
//!   the CA + certificate + key a process presents. A certificate names its holder (CN)
//!   and [`Role`] (OU).
//! - [`tls`]: rustls configs. Both sides must present a certificate from the cluster CA;
//!   clients verify the server as [`CLUSTER_NAME`], so any address can be dialed.
//!
//! The RPC layer on top comes next.

pub mod certs;
mod der;
pub mod tls;

#[cfg(test)]
mod tests;

pub use certs::{CLUSTER_NAME, CertError, Identity, Role, Written, ensure_dev_pki, init_ca, issue};
pub use tls::{ALPN, Peer, TlsError};
