//! The dev PKI: files, refusals, what a certificate says, and how errors read.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls_pki_types::{ServerName, UnixTime};

use super::*;
use crate::quic::certs::{CA_CERT_FILE, CA_KEY_FILE};

#[test]
fn init_refuses_to_overwrite_a_ca_unless_forced() {
    let dir = TempDir::new("init");
    let written = init_ca(dir.path(), false).expect("first init");
    assert_eq!(written.files.len(), 2);
    assert!(written.to_string().contains("ca.pem"), "{written}");
    let original = std::fs::read(dir.path().join(CA_CERT_FILE)).expect("ca.pem");

    let error = init_ca(dir.path(), false).expect_err("second init");
    assert!(matches!(error, CertError::CaExists(_)));
    let message = error.to_string();
    assert!(
        message.contains("ca.pem") && message.contains("--force"),
        "{message}"
    );
    assert!(error.is_usage());
    assert_eq!(
        std::fs::read(dir.path().join(CA_CERT_FILE)).expect("ca.pem"),
        original,
        "untouched"
    );

    init_ca(dir.path(), true).expect("forced init");
    assert_ne!(
        std::fs::read(dir.path().join(CA_CERT_FILE)).expect("ca.pem"),
        original
    );
}

#[test]
fn an_issued_certificate_reads_back_its_name_and_role() {
    let pki = Pki::new("roles");
    for (name, role) in [
        ("replica-1", Role::Replica),
        ("node-1", Role::Node),
        ("admin-1", Role::Admin),
    ] {
        let identity = pki.identity(name);
        assert_eq!(identity.name(), name);
        assert_eq!(identity.role(), role);
        let leaf = &identity.chain()[0];
        assert_eq!(
            crate::quic::certs::name_and_role(leaf),
            Ok((name.to_owned(), role))
        );
    }
}

#[test]
fn replica_certificates_serve_as_the_cluster_name_and_given_sans() {
    let dir = TempDir::new("sans");
    init_ca(dir.path(), false).expect("init");
    let sans = ["10.1.2.3".to_owned(), "cp-0.tongdai.svc".to_owned()];
    issue(dir.path(), "cp-0", Role::Replica, &sans, dir.path()).expect("issue");
    let identity = Identity::from_dir(dir.path(), "cp-0").expect("load");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(identity.ca().clone()).expect("CA");
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), tls::provider())
        .build()
        .expect("verifier");
    let verify = |name: &str| {
        let name = ServerName::try_from(name.to_owned()).expect("server name");
        verifier.verify_server_cert(&identity.chain()[0], &[], &name, &[], UnixTime::now())
    };
    for name in [
        CLUSTER_NAME,
        "localhost",
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "cp-0.tongdai.svc",
    ] {
        verify(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(verify("elsewhere.example").is_err());
    assert!(verify("10.9.9.9").is_err());
}

#[test]
fn node_and_admin_certificates_are_client_only() {
    let pki = Pki::new("client-only");
    for name in ["node-1", "admin-1"] {
        let identity = pki.identity(name);
        assert!(tls::verify_leaf(identity.ca(), &identity.chain()[0], &[], Role::Node).is_ok());
        let as_server = tls::verify_leaf(identity.ca(), &identity.chain()[0], &[], Role::Replica);
        assert!(as_server.is_err(), "{name} must not serve");
    }
}

#[test]
fn issue_without_a_ca_says_how_to_create_one() {
    let dir = TempDir::new("no-ca");
    let error = issue(dir.path(), "node-1", Role::Node, &[], dir.path()).expect_err("no CA");
    let message = error.to_string();
    assert!(message.contains(CA_CERT_FILE), "{message}");
    assert!(message.contains("tongdai certs init"), "{message}");
    assert!(error.is_usage());
    assert!(!dir.path().join("node-1.pem").exists());
}

#[test]
fn issue_refuses_bad_names_sans_and_roles() {
    let pki = Pki::new("bad-input");
    for name in ["", "ca", "../etc/passwd", "a b", ".hidden", &"x".repeat(65)] {
        let error = issue(pki.path(), name, Role::Node, &[], pki.path()).expect_err(name);
        assert!(
            matches!(error, CertError::InvalidName(_)),
            "{name}: {error}"
        );
    }
    for san in ["bad san", "", "a..b", "ünïcode.example"] {
        let error =
            issue(pki.path(), "n", Role::Node, &[san.to_owned()], pki.path()).expect_err(san);
        assert!(matches!(error, CertError::InvalidSan(_)), "{san}: {error}");
    }
    let error = "operator".parse::<Role>().expect_err("unknown role");
    assert_eq!(
        error.to_string(),
        "unknown role \"operator\" (expected replica, node or admin)"
    );
    assert_eq!("admin".parse::<Role>().expect("role"), Role::Admin);
}

#[test]
fn load_errors_name_the_file_and_what_to_do() {
    let pki = Pki::new("load");
    let ca = pki.path().join(CA_CERT_FILE);
    let cert = pki.path().join("node-1.pem");
    let key = pki.path().join("node-1.key");
    let missing = pki.path().join("nobody.pem");

    let error = Identity::load(&missing, &cert, &key).expect_err("missing CA");
    let message = error.to_string();
    assert!(message.contains("nobody.pem"), "{message}");
    assert!(message.contains("tongdai certs init"), "{message}");

    let error = Identity::load(&ca, &missing, &key).expect_err("missing cert");
    let message = error.to_string();
    assert!(message.contains("nobody.pem"), "{message}");
    assert!(message.contains("tongdai certs issue"), "{message}");

    // A key where the certificate should be, and a certificate where the key should be.
    let error = Identity::load(&ca, &key, &key).expect_err("not a cert");
    assert!(error.to_string().contains("node-1.key"), "{error}");
    let error = Identity::load(&ca, &cert, &cert).expect_err("not a key");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("{} is not usable", cert.display())),
        "{message}"
    );

    // A certificate from another CA is refused at load time, not at the first handshake.
    let other = Pki::new("load-other");
    let error = Identity::load(
        &ca,
        &other.path().join("node-1.pem"),
        &other.path().join("node-1.key"),
    )
    .expect_err("foreign certificate");
    let message = error.to_string();
    assert!(message.contains("is not valid under the CA"), "{message}");
    assert!(message.contains("tongdai certs issue"), "{message}");

    // The CA certificate itself has no tongdai role: it is no identity.
    let error = Identity::load(&ca, &ca, &pki.path().join(CA_KEY_FILE)).expect_err("CA");
    assert!(error.to_string().contains("no tongdai role"), "{error}");
}

#[cfg(unix)]
#[test]
fn private_keys_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let pki = Pki::new("modes");
    for file in [CA_KEY_FILE, "replica-1.key", "node-1.key"] {
        let mode = std::fs::metadata(pki.path().join(file))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let mode = std::fs::metadata(pki.path().join("replica-1.pem"))
        .expect("cert file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0o044, "certificates are public");
}

#[test]
fn ensure_dev_pki_creates_what_is_missing_and_reuses_the_rest() {
    let dir = TempDir::new("dev");
    let wanted = [("replica-1", Role::Replica), ("node-1", Role::Node)];
    let first = ensure_dev_pki(dir.path(), &wanted).expect("create");
    assert_eq!(first.files.len(), 6, "{first}");
    let cert = std::fs::read(dir.path().join("replica-1.pem")).expect("cert");

    let second = ensure_dev_pki(dir.path(), &wanted).expect("reuse");
    assert!(second.files.is_empty(), "{second}");
    assert_eq!(
        std::fs::read(dir.path().join("replica-1.pem")).expect("cert"),
        cert
    );

    // A new name gets a certificate; a role change gets a new one.
    let third = ensure_dev_pki(
        dir.path(),
        &[("replica-1", Role::Admin), ("admin-1", Role::Admin)],
    )
    .expect("extend");
    assert_eq!(third.files.len(), 4, "{third}");
    assert_eq!(
        Identity::from_dir(dir.path(), "replica-1")
            .expect("load")
            .role(),
        Role::Admin
    );

    // Certificates from a replaced CA no longer verify and are reissued.
    init_ca(dir.path(), true).expect("new CA");
    let fourth = ensure_dev_pki(dir.path(), &wanted).expect("reissue");
    assert_eq!(fourth.files.len(), 4, "{fourth}");
    for (name, role) in wanted {
        let identity = Identity::from_dir(dir.path(), name).expect("load");
        tls::verify_leaf(identity.ca(), &identity.chain()[0], &[], role).expect("verifies");
    }
}
