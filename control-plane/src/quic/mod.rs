//! QUIC with mutual TLS between replicas, nodes and admin tools, and a small typed RPC
//! on top of it.
//!
//! - [`certs`]: the dev PKI (`tongdai certs init | issue`, `tongdai up`) and [`Identity`],
//!   the CA + certificate + key a process presents. A certificate names its holder (CN)
//!   and [`Role`] (OU).
//! - [`tls`]: rustls configs. Both sides must present a certificate from the cluster CA;
//!   clients verify the server as [`CLUSTER_NAME`], so any address can be dialed.
//! - [`RpcEndpoint`]: one UDP socket that serves and dials. [`serve`] runs a [`Service`],
//!   which sees every call's authenticated [`Peer`] and answers through a [`Reply`]
//!   (once, or as a stream). [`Client`] calls one peer: `call` for request/response,
//!   `subscribe` for server streaming; it reconnects by itself (see [`client`] for the
//!   retry rule).
//!
//! On the wire each call is one bidirectional QUIC stream carrying length-prefixed
//! postcard frames; messages larger than [`RpcOptions::max_frame`] are
//! refused, not allocated.
//!
//! ```no_run
//! # use std::{sync::Arc, time::Duration};
//! # use tongdai_control_plane::quic::*;
//! # async fn example(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
//! struct Echo;
//! impl Service for Echo {
//!     type Request = String;
//!     async fn handle(&self, peer: &Peer, request: String, reply: Reply) {
//!         let _ = reply.send_one(&format!("{}: {request}", peer.name)).await;
//!     }
//! }
//! let identity = Identity::from_dir(dir, "replica-1")?;
//! let endpoint = RpcEndpoint::bind("127.0.0.1:0".parse()?, &identity, RpcOptions::default())?;
//! tokio::spawn(serve(endpoint.clone(), Arc::new(Echo)));
//! let client = endpoint.client(endpoint.local_addr().to_string());
//! let answer: String = client.call("hi", Duration::from_secs(1)).await?;
//! # Ok(()) }
//! ```

pub mod certs;
pub mod client;
mod der;
mod endpoint;
mod error;
mod frame;
mod server;
pub mod tls;

#[cfg(test)]
mod tests;

pub use certs::{CLUSTER_NAME, CertError, Identity, Role, Written, ensure_dev_pki, init_ca, issue};
pub use client::{Client, Subscription};
pub use endpoint::{EndpointError, RpcEndpoint, RpcOptions};
pub use error::RpcError;
pub use server::{Reply, ReplyStream, Service, serve};
pub use tls::{ALPN, Peer, TlsError};
