//! Mutual TLS: who is refused, and that the refusal is what fails the call.

use quinn::crypto::rustls::QuicClientConfig;

use super::*;

/// A client endpoint with a hand-made rustls config.
fn custom_client(identity: &Identity, config: rustls::ClientConfig, target: &str) -> Client {
    let crypto = QuicClientConfig::try_from(config).expect("QUIC-capable config");
    let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
    quic.transport_config(endpoint::transport(&RpcOptions::default()).expect("transport"));
    RpcEndpoint::from_parts(any_port(), None, quic, identity, RpcOptions::default())
        .expect("bind")
        .client(target)
}

/// Expects `result` to be a TLS refusal whose reason contains `expected`.
fn assert_refused<T: std::fmt::Debug>(result: Result<T, RpcError>, expected: &str) {
    match result {
        Err(RpcError::Refused { reason, .. }) => {
            assert!(
                reason.contains(expected),
                "reason {reason:?} lacks {expected:?}"
            );
        }
        other => panic!("expected a TLS refusal mentioning {expected:?}, got {other:?}"),
    }
}

/// A server trusted by the test's clients keeps serving them after refusing a stranger.
async fn assert_still_serves(pki: &Pki, server: &Server) {
    let client = client(&pki.identity("node-1"), &server.addr());
    let answer: String = client
        .call(&TestRequest::Echo("member".into()), CALL)
        .await
        .expect("a member is still served");
    assert_eq!(answer, "member");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    within(async {
        let pki = Pki::new("no-cert");
        let server = Server::start(
            &pki.identity("replica-1"),
            any_port(),
            RpcOptions::default(),
        );
        let identity = pki.identity("node-1");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(identity.ca().clone()).expect("CA");
        let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN.to_vec()];
        let anonymous = custom_client(&identity, config, &server.addr());
        let result = anonymous
            .call::<_, String>(&TestRequest::Echo("let me in".into()), CALL)
            .await;
        assert_refused(result, "requires a client certificate");
        assert_eq!(server.calls(), 0);
        assert_still_serves(&pki, &server).await;
    })
    .await;
}

#[tokio::test]
async fn a_client_with_a_certificate_from_another_ca_is_refused() {
    within(async {
        let pki = Pki::new("client-ca");
        let other = Pki::new("client-ca-other");
        let server = Server::start(
            &pki.identity("replica-1"),
            any_port(),
            RpcOptions::default(),
        );
        // Trusts the right CA (so it accepts the server) but presents a stranger's cert.
        let stranger = Identity::load_unchecked(
            &pki.path().join("ca.pem"),
            &other.path().join("replica-1.pem"),
            &other.path().join("replica-1.key"),
        )
        .expect("identity");
        let result = client(&stranger, &server.addr())
            .call::<_, String>(&TestRequest::Echo("let me in".into()), CALL)
            .await;
        assert_refused(result, "does not know the CA of our certificate");
        assert_eq!(server.calls(), 0);
        assert_still_serves(&pki, &server).await;
    })
    .await;
}

#[tokio::test]
async fn a_server_with_a_certificate_from_another_ca_is_refused() {
    within(async {
        let pki = Pki::new("server-ca");
        let other = Pki::new("server-ca-other");
        // The impostor would even accept our client; our client must not accept it.
        let impostor = Identity::load_unchecked(
            &pki.path().join("ca.pem"),
            &other.path().join("replica-1.pem"),
            &other.path().join("replica-1.key"),
        )
        .expect("identity");
        let server = Server::start(&impostor, any_port(), RpcOptions::default());
        let result = client(&pki.identity("node-1"), &server.addr())
            .call::<_, String>(&TestRequest::Echo("secret".into()), CALL)
            .await;
        assert_refused(result, "UnknownIssuer");
        assert_eq!(server.calls(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_node_certificate_cannot_serve() {
    within(async {
        let pki = Pki::new("node-serves");
        let server = Server::start(&pki.identity("node-1"), any_port(), RpcOptions::default());
        let result = client(&pki.identity("replica-2"), &server.addr())
            .call::<_, String>(&TestRequest::Echo("secret".into()), CALL)
            .await;
        assert_refused(result, "we refused the peer");
        assert_eq!(server.calls(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_target_without_a_port_is_a_connect_error() {
    within(async {
        let pki = Pki::new("no-port");
        let result = client(&pki.identity("node-1"), "127.0.0.1")
            .call::<_, String>(&TestRequest::WhoAmI, CALL)
            .await;
        assert!(
            matches!(&result, Err(RpcError::Connect { reason, .. }) if reason.contains("host:port")),
            "{result:?}"
        );
    })
    .await;
}
