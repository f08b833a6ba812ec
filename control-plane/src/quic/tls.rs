//! rustls configuration for cluster QUIC: mutual TLS 1.3 where both sides must present
//! a certificate from the cluster CA and trust nothing else, ALPN [`ALPN`], the *ring*
//! provider passed explicitly (no process-wide default is read or installed), no session
//! resumption (connections are long-lived; a resumed session would skip the certificate
//! check against the CA loaded now).

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::crypto::rustls::{NoInitialCipherSuite, QuicClientConfig, QuicServerConfig};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::crypto::CryptoProvider;
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::certs::{self, CLUSTER_NAME, Identity, Role};

/// The application protocol both sides must agree on; bump it when the RPC framing
/// changes incompatibly.
pub const ALPN: &[u8] = b"tongdai/1";

/// Why TLS could not be configured from an [`Identity`].
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the cluster CA certificate cannot be a trust anchor: {0}")]
    Ca(rustls::Error),
    #[error("cannot verify client certificates: {0}")]
    Verifier(VerifierBuilderError),
    #[error(
        "the certificate and key of {name:?} cannot be used: {source}; check that the key \
         belongs to the certificate (reissue with `tongdai certs issue`)"
    )]
    Identity { name: String, source: rustls::Error },
    #[error("the *ring* provider lacks TLS 1.3 or AES-128-GCM: {0}")]
    Provider(String),
}

impl From<NoInitialCipherSuite> for TlsError {
    fn from(e: NoInitialCipherSuite) -> Self {
        TlsError::Provider(e.to_string())
    }
}

/// The authenticated other end of a connection, from its verified certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The certificate's common name, e.g. `replica-1`.
    pub name: String,
    pub role: Role,
    /// Its UDP address as this endpoint sees it.
    pub addr: SocketAddr,
}

/// The crypto provider every config here is built with.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &CertificateDer<'static>) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).map_err(TlsError::Ca)?;
    Ok(Arc::new(roots))
}

/// A server config that requires a client certificate chaining to the cluster CA.
pub fn server_config(identity: &Identity) -> Result<ServerConfig, TlsError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(identity.ca())?, provider())
        .build()
        .map_err(TlsError::Verifier)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Provider(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain().to_vec(), identity.key().clone_key())
        .map_err(|source| TlsError::Identity {
            name: identity.name().to_owned(),
            source,
        })?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// A client config that trusts only the cluster CA and presents this identity.
pub fn client_config(identity: &Identity) -> Result<rustls::ClientConfig, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Provider(e.to_string()))?
        .with_root_certificates(roots(identity.ca())?)
        .with_client_auth_cert(identity.chain().to_vec(), identity.key().clone_key())
        .map_err(|source| TlsError::Identity {
            name: identity.name().to_owned(),
            source,
        })?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// [`server_config`] for quinn.
pub fn quic_server_crypto(identity: &Identity) -> Result<QuicServerConfig, TlsError> {
    Ok(QuicServerConfig::try_from(server_config(identity)?)?)
}

/// [`client_config`] for quinn.
pub fn quic_client_crypto(identity: &Identity) -> Result<QuicClientConfig, TlsError> {
    Ok(QuicClientConfig::try_from(client_config(identity)?)?)
}

/// Checks that `leaf` is a certificate the cluster accepts from `role` today: it chains
/// to `ca` (through `intermediates`), is valid now, and (for a replica) may serve as
/// [`CLUSTER_NAME`].
pub(crate) fn verify_leaf(
    ca: &CertificateDer<'static>,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    role: Role,
) -> Result<(), String> {
    let roots = roots(ca).map_err(|e| e.to_string())?;
    let now = UnixTime::now();
    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| e.to_string())?
        .verify_client_cert(leaf, intermediates, now)
        .map_err(|e| e.to_string())?;
    if role == Role::Replica {
        let server_name = ServerName::try_from(CLUSTER_NAME).map_err(|e| e.to_string())?;
        WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| e.to_string())?
            .verify_server_cert(leaf, intermediates, &server_name, &[], now)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The verified peer of an established connection.
pub(crate) fn peer_of(connection: &quinn::Connection) -> Result<Peer, String> {
    let chain = connection
        .peer_identity()
        .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or("the peer presented no certificate")?;
    let leaf = chain.first().ok_or("the peer presented no certificate")?;
    let (name, role) = certs::name_and_role(leaf)?;
    Ok(Peer {
        name,
        role,
        addr: connection.remote_address(),
    })
}
