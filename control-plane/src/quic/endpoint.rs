//! [`RpcEndpoint`]: one UDP socket and one quinn endpoint per process that serves
//! ([`super::serve`]) and dials ([`RpcEndpoint::client`]) at once, as a replica does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};

use super::certs::Identity;
use super::client::Client;
use super::tls::{self, TlsError};

/// Tuning shared by both sides of a connection. The defaults suit Raft: a dead peer is
/// noticed within `idle_timeout`, and a frame can carry a whole snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcOptions {
    /// Largest message accepted or sent, in bytes (default 64 MiB).
    pub max_frame: u32,
    /// How long dialing (resolve, QUIC + TLS handshake) may take before it fails
    /// (default 5 s). A call's own timeout bounds it too.
    pub connect_timeout: Duration,
    /// How often an idle connection is pinged (default 2 s).
    pub keep_alive: Duration,
    /// Silence after which a connection is declared dead (default 10 s).
    pub idle_timeout: Duration,
    /// Calls (streams) a peer may have in flight on one connection (default 1024).
    pub max_concurrent_calls: u32,
}

impl Default for RpcOptions {
    fn default() -> Self {
        RpcOptions {
            max_frame: 64 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            max_concurrent_calls: 1024,
        }
    }
}

/// Why an endpoint could not be created.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot bind UDP {addr}: {source}; is another process using the port?")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid RPC options: {0}")]
    Options(String),
}

/// A QUIC endpoint with this process's identity. Cheap to clone; all clones share the
/// socket. Dropping the last clone does not stop it while connections remain: call
/// [`RpcEndpoint::close`].
#[derive(Debug, Clone)]
pub struct RpcEndpoint {
    pub(crate) quinn: quinn::Endpoint,
    pub(crate) client_config: quinn::ClientConfig,
    pub(crate) options: Arc<RpcOptions>,
    local_addr: SocketAddr,
}

impl RpcEndpoint {
    /// Binds `addr` (port 0 picks a free port, see [`RpcEndpoint::local_addr`]) to serve
    /// and dial. Must be called inside a tokio runtime.
    pub fn bind(
        addr: SocketAddr,
        identity: &Identity,
        options: RpcOptions,
    ) -> Result<RpcEndpoint, EndpointError> {
        let mut server =
            quinn::ServerConfig::with_crypto(Arc::new(tls::quic_server_crypto(identity)?));
        server.transport_config(transport(&options)?);
        let client = client_config(identity, &options)?;
        RpcEndpoint::from_parts(addr, Some(server), client, identity, options)
    }

    /// Binds `addr` to dial only (a node or an admin tool); incoming connections are
    /// refused. Use `0.0.0.0:0` or `[::]:0`.
    pub fn bind_client(
        addr: SocketAddr,
        identity: &Identity,
        options: RpcOptions,
    ) -> Result<RpcEndpoint, EndpointError> {
        let client = client_config(identity, &options)?;
        RpcEndpoint::from_parts(addr, None, client, identity, options)
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn options(&self) -> &RpcOptions {
        &self.options
    }

    /// A client for the peer at `target` (`host:port`). It dials lazily, on first use.
    pub fn client(&self, target: impl Into<String>) -> Client {
        Client::new(self.clone(), target.into())
    }

    /// Closes every connection at once (peers see "closed by peer") and stops serving.
    pub fn close(&self) {
        self.quinn.close(VarInt::from_u32(0), b"endpoint closed");
    }

    /// Waits until closed connections have told their peers and the socket is free.
    pub async fn wait_idle(&self) {
        self.quinn.wait_idle().await;
    }

    pub(crate) fn from_parts(
        addr: SocketAddr,
        server: Option<quinn::ServerConfig>,
        client_config: quinn::ClientConfig,
        identity: &Identity,
        options: RpcOptions,
    ) -> Result<RpcEndpoint, EndpointError> {
        let bind_error = |source| EndpointError::Bind { addr, source };
        let socket = std::net::UdpSocket::bind(addr).map_err(bind_error)?;
        let local_addr = socket.local_addr().map_err(bind_error)?;
        let mut config = quinn::EndpointConfig::default();
        config
            .reset_key(reset_key(identity))
            .cid_generator(|| Box::new(RestartableCids));
        let quinn = quinn::Endpoint::new(config, server, socket, Arc::new(quinn::TokioRuntime))
            .map_err(bind_error)?;
        Ok(RpcEndpoint {
            quinn,
            client_config,
            options: Arc::new(options),
            local_addr,
        })
    }
}

fn client_config(
    identity: &Identity,
    options: &RpcOptions,
) -> Result<quinn::ClientConfig, EndpointError> {
    let mut client = quinn::ClientConfig::new(Arc::new(tls::quic_client_crypto(identity)?));
    client.transport_config(transport(options)?);
    Ok(client)
}

pub(crate) fn transport(options: &RpcOptions) -> Result<Arc<TransportConfig>, EndpointError> {
    let idle = IdleTimeout::try_from(options.idle_timeout).map_err(|_| {
        EndpointError::Options(format!(
            "idle_timeout {:?} is too long",
            options.idle_timeout
        ))
    })?;
    if options.keep_alive >= options.idle_timeout {
        return Err(EndpointError::Options(format!(
            "keep_alive ({:?}) must be shorter than idle_timeout ({:?})",
            options.keep_alive, options.idle_timeout
        )));
    }
    let mut transport = TransportConfig::default();
    transport
        .keep_alive_interval(Some(options.keep_alive))
        .max_idle_timeout(Some(idle))
        .max_concurrent_bidi_streams(VarInt::from_u32(options.max_concurrent_calls))
        .max_concurrent_uni_streams(VarInt::from_u32(0));
    Ok(Arc::new(transport))
}

/// The key that signs stateless resets, derived from the identity's private key so it
/// survives a restart: a replica that restarts on the same address answers packets of
/// its old connections with a reset its peers accept, and they redial at once instead of
/// waiting out the idle timeout. [`RestartableCids`] makes it answer them at all.
fn reset_key(identity: &Identity) -> Arc<ring::hmac::Key> {
    let master = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, identity.key().secret_der());
    let derived = ring::hmac::sign(&master, b"tongdai/1 QUIC stateless reset key");
    Arc::new(ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        derived.as_ref(),
    ))
}

/// Random 8-byte connection IDs that every endpoint takes as possibly its own. quinn's
/// default generator signs its IDs with a per-process key and silently drops packets
/// whose ID it did not sign, so a restarted endpoint would never send the stateless
/// reset that tells peers their connection is gone. Resets stay rate-limited and smaller
/// than the packet that caused them.
#[derive(Debug)]
struct RestartableCids;

impl quinn::ConnectionIdGenerator for RestartableCids {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        quinn::ConnectionId::new(&rand::random::<[u8; 8]>())
    }

    fn cid_len(&self) -> usize {
        8
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}
