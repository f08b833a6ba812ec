//! Digest auth tests: RFC vectors, header parsing, nonce lifetime and replay, round trips.

use std::time::Duration;

use super::*;

const T0: u64 = 1_700_000_000_000;
const REALM: &str = "demo";

fn manager() -> NonceManager {
    NonceManager::new([7u8; 32], NonceConfig::default())
}

fn manager_with(config: NonceConfig) -> NonceManager {
    NonceManager::new([7u8; 32], config)
}

/// A phone answering the first challenge of a registrar's 401 for user 1001.
fn answer(ch: &Challenge, password: &str, nc: u32) -> Credentials {
    let header = ch.to_string();
    let parsed = Challenge::parse(&header).expect("our own challenge parses");
    assert_eq!(&parsed, ch);
    Credentials::answer(
        &parsed, "1001", password, "REGISTER", "sip:demo", "c0ffee", nc,
    )
}

/// The server side: parse the header the phone sent and verify it.
fn server_verify(nm: &NonceManager, creds: &Credentials, now: u64) -> Result<(), VerifyError> {
    let parsed = Credentials::parse(&creds.to_string()).expect("client header parses");
    assert_eq!(&parsed, creds);
    let alg = parsed.algorithm().expect("supported algorithm");
    let stored = ha1(alg, "1001", REALM, "secret");
    verify(nm, &parsed, "REGISTER", REALM, &stored, now)
}

#[test]
fn rfc2617_md5_vector() {
    let ha1 = ha1(
        Algorithm::Md5,
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
    );
    let qop = QopParams {
        qop: "auth",
        nc: "00000001",
        cnonce: "0a4f113b",
    };
    let response = compute_response(
        Algorithm::Md5,
        &ha1,
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "GET",
        "/dir/index.html",
        Some(&qop),
    );
    assert_eq!(response, "6629fae49393a05397450978507c4ef1");
}

const RFC7616_AUTHORIZATION: &str = "Digest username=\"Mufasa\",\t realm=\"http-auth@example.org\", \
     uri=\"/dir/index.html\", algorithm=SHA-256, \
     nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
     cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
     response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
     opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";

#[test]
fn rfc7616_sha256_vector_parsed_from_header() {
    let creds = Credentials::parse(RFC7616_AUTHORIZATION).expect("RFC example parses");
    assert_eq!(creds.username(), "Mufasa");
    assert_eq!(creds.algorithm(), Some(Algorithm::Sha256));
    assert_eq!(creds.nc(), Some(1));
    assert_eq!(creds.qop(), Some("auth"));
    let ha1 = ha1(
        Algorithm::Sha256,
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
    );
    let qop = creds.qop_params().expect("qop given");
    let response = compute_response(
        Algorithm::Sha256,
        &ha1,
        creds.nonce(),
        "GET",
        creds.uri(),
        Some(&qop),
    );
    assert_eq!(
        response,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    assert_eq!(creds.response(), response);
    // RFC 7616 §3.9.1 gives the MD5 answer to the same challenge too.
    let md5 = compute_response(
        Algorithm::Md5,
        &super::ha1(
            Algorithm::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        ),
        creds.nonce(),
        "GET",
        creds.uri(),
        Some(&qop),
    );
    assert_eq!(md5, "8ca523f5e9506fed4657c9700eebdbec");
}

#[test]
fn parse_is_case_insensitive_and_tolerates_whitespace() {
    let v = "  dIgEsT   USERNAME = \"a\\\"b\\\\c\" ,REALM=\"demo\",\tNonce=\"n\" , Uri=\"sip:demo\", \
             Response=\"ABCDEF0123\", QOP=auth, NC=0000000A, CNonce=x, extra=\"ignored\", \
             Algorithm=md5";
    let c = Credentials::parse(v).expect("parses");
    assert_eq!(c.username(), "a\"b\\c");
    assert_eq!(c.realm(), "demo");
    assert_eq!(c.response(), "abcdef0123");
    assert_eq!(c.nc(), Some(10));
    assert_eq!(c.cnonce(), Some("x"));
    assert_eq!(c.algorithm(), Some(Algorithm::Md5));
    assert_eq!(c.opaque(), None);
}

#[test]
fn parse_keeps_unknown_algorithm_for_a_rechallenge() {
    let v = "Digest username=\"u\", realm=\"demo\", nonce=\"n\", uri=\"sip:d\", response=\"00\", algorithm=SHA3";
    let c = Credentials::parse(v).expect("unknown algorithm is not a syntax error");
    assert_eq!(c.algorithm(), None);
    assert_eq!(c.algorithm_token(), "SHA3");
    let nm = manager();
    assert_eq!(
        verify(&nm, &c, "REGISTER", REALM, "00", T0),
        Err(VerifyError::UnsupportedAlgorithm)
    );
}

#[test]
fn parse_errors_name_the_problem() {
    let full = "username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"00\"";
    let cases: &[(String, ParseError)] = &[
        (String::new(), ParseError::Empty),
        ("   ".into(), ParseError::Empty),
        (format!("Basic {full}"), ParseError::NotDigest),
        (
            "Digest username=\"u\", realm=\"r\", uri=\"sip:r\", response=\"00\"".into(),
            ParseError::MissingParam("nonce"),
        ),
        (
            format!("Digest {full}, qop=auth, nc=00000001"),
            ParseError::MissingParam("cnonce"),
        ),
        (
            format!("Digest {full}, qop=auth, cnonce=\"c\""),
            ParseError::MissingParam("nc"),
        ),
        (
            format!("Digest {full}, REALM=\"other\""),
            ParseError::DuplicateParam("realm".into()),
        ),
        (
            format!("Digest {full}, x=1, X=2"),
            ParseError::DuplicateParam("x".into()),
        ),
        ("Digest username=\"u".into(), ParseError::UnterminatedQuote),
        ("Digest username=\"u\\".into(), ParseError::BadEscape),
        (
            "Digest username=\"u\u{1}\"".into(),
            ParseError::ControlCharacter,
        ),
        (
            "Digest username".into(),
            ParseError::ExpectedEquals("username".into()),
        ),
        (
            "Digest username=".into(),
            ParseError::ExpectedValue("username".into()),
        ),
        (
            "Digest username=\"u\" realm=\"r\"".into(),
            ParseError::ExpectedComma(20),
        ),
        (format!("Digest {full},"), ParseError::ExpectedName(70)),
        ("Digest,username=\"u\"".into(), ParseError::ExpectedName(6)),
        (
            format!("Digest {full}, qop=auth, cnonce=\"c\", nc=1"),
            ParseError::InvalidNonceCount,
        ),
        (
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"xyz\""
                .into(),
            ParseError::InvalidResponse,
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            Credentials::parse(input).as_ref(),
            Err(expected),
            "input {input:?}"
        );
    }
    assert_eq!(
        ParseError::MissingParam("nonce").reason(),
        "Malformed Authorization header: missing nonce"
    );
    assert_eq!(
        ParseError::MissingParam("uri").reason_for("Proxy-Authorization"),
        "Malformed Proxy-Authorization header: missing uri"
    );
}

#[test]
fn parse_bounds_parameter_count() {
    let mut v = String::from("Digest ");
    for i in 0..40 {
        v.push_str(&format!("p{i}=1, "));
    }
    v.push_str("end=1");
    assert_eq!(Credentials::parse(&v), Err(ParseError::TooManyParams));
}

#[test]
fn challenge_header_format_and_dual_challenge() {
    let nm = manager();
    let [sha, md5] = nm.challenges(REALM, false, T0);
    assert_eq!(sha.algorithm, Algorithm::Sha256);
    assert_eq!(md5.algorithm, Algorithm::Md5);
    assert_eq!(sha.nonce, md5.nonce);
    let opaque = NonceManager::opaque_for(&sha.nonce);
    assert_eq!(
        sha.to_string(),
        format!(
            "Digest realm=\"demo\", nonce=\"{}\", opaque=\"{opaque}\", algorithm=SHA-256, qop=\"auth\"",
            sha.nonce
        )
    );
    let [stale, _] = nm.challenges(REALM, true, T0);
    assert!(stale.to_string().ends_with(", stale=true"));
    assert!(Challenge::parse(&stale.to_string()).expect("parses").stale);
    let quoted = Challenge {
        realm: "a\"b".into(),
        ..sha
    };
    assert!(quoted.to_string().starts_with("Digest realm=\"a\\\"b\""));
    assert_eq!(
        Challenge::parse(&quoted.to_string()).expect("parses").realm,
        "a\"b"
    );
}

#[test]
fn round_trip_sha256_and_md5() {
    let nm = manager();
    let [sha, md5] = nm.challenges(REALM, false, T0);
    assert_eq!(
        server_verify(&nm, &answer(&sha, "secret", 1), T0 + 1_000),
        Ok(())
    );
    // The phone's next request on the same nonce counts up.
    assert_eq!(
        server_verify(&nm, &answer(&sha, "secret", 2), T0 + 2_000),
        Ok(())
    );
    // Both challenges share the nonce, so switching algorithm does not reset the count.
    assert_eq!(
        server_verify(&nm, &answer(&md5, "secret", 2), T0 + 3_000),
        Err(VerifyError::Replay)
    );
    assert_eq!(
        server_verify(&nm, &answer(&md5, "secret", 3), T0 + 3_000),
        Ok(())
    );
    let [_, fresh_md5] = nm.challenges(REALM, false, T0 + 4_000);
    assert_eq!(
        server_verify(&nm, &answer(&fresh_md5, "secret", 1), T0 + 4_000),
        Ok(())
    );
}

#[test]
fn session_algorithms_round_trip() {
    let nm = manager();
    for alg in [
        Algorithm::Md5Sess,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
    ] {
        let ch = nm.challenge(REALM, alg, false, T0);
        let creds = answer(&ch, "secret", 1);
        assert_eq!(creds.algorithm(), Some(alg));
        assert_eq!(server_verify(&nm, &creds, T0), Ok(()), "{alg}");
    }
}

#[test]
fn wrong_password_realm_and_qop() {
    let nm = manager();
    let [ch, _] = nm.challenges(REALM, false, T0);
    let creds = answer(&ch, "guess", 1);
    assert_eq!(
        server_verify(&nm, &creds, T0),
        Err(VerifyError::WrongResponse)
    );
    let stored = ha1(Algorithm::Sha256, "1001", REALM, "secret");
    assert_eq!(
        verify(
            &nm,
            &answer(&ch, "secret", 1),
            "REGISTER",
            "other",
            &stored,
            T0
        ),
        Err(VerifyError::RealmMismatch)
    );
    // A wrong method changes HA2.
    assert_eq!(
        verify(&nm, &answer(&ch, "secret", 1), "INVITE", REALM, &stored, T0),
        Err(VerifyError::WrongResponse)
    );
    // Stored HA1 in upper case still matches.
    assert_eq!(
        verify(
            &nm,
            &answer(&ch, "secret", 1),
            "REGISTER",
            REALM,
            &stored.to_ascii_uppercase(),
            T0
        ),
        Ok(())
    );
    let int = Credentials::parse(
        &answer(&ch, "secret", 2)
            .to_string()
            .replace("qop=auth", "qop=auth-int"),
    )
    .expect("parses");
    assert_eq!(
        verify(&nm, &int, "REGISTER", REALM, &stored, T0),
        Err(VerifyError::UnsupportedQop)
    );
}

#[test]
fn rfc2069_only_when_allowed_and_only_md5() {
    let mut legacy = manager().challenge(REALM, Algorithm::Md5, false, T0);
    legacy.qop.clear();
    let creds = answer(&legacy, "secret", 1);
    assert_eq!(creds.qop(), None);
    assert_eq!(creds.nc(), None);
    assert_eq!(
        server_verify(&manager(), &creds, T0),
        Err(VerifyError::UnsupportedQop)
    );
    let permissive = manager_with(NonceConfig {
        allow_rfc2069: true,
        ..NonceConfig::default()
    });
    assert_eq!(server_verify(&permissive, &creds, T0), Ok(()));
    let mut sha = permissive.challenge(REALM, Algorithm::Sha256, false, T0);
    sha.qop.clear();
    assert_eq!(
        server_verify(&permissive, &answer(&sha, "secret", 1), T0),
        Err(VerifyError::UnsupportedQop)
    );
}

#[test]
fn nonce_expires_into_stale_only_with_right_password() {
    let nm = manager();
    let [ch, _] = nm.challenges(REALM, false, T0);
    let lifetime = 300_000;
    assert_eq!(
        server_verify(&nm, &answer(&ch, "secret", 1), T0 + lifetime - 1),
        Ok(())
    );
    assert_eq!(
        server_verify(&nm, &answer(&ch, "secret", 2), T0 + lifetime),
        Err(VerifyError::Stale)
    );
    assert!(VerifyError::Stale.is_stale());
    assert_eq!(
        server_verify(&nm, &answer(&ch, "guess", 3), T0 + lifetime),
        Err(VerifyError::WrongResponse)
    );
    // A nonce from well beyond the allowed clock skew is not trusted either.
    let future = nm.challenge(REALM, Algorithm::Sha256, false, T0 + 60_000);
    assert_eq!(
        server_verify(&nm, &answer(&future, "secret", 1), T0),
        Err(VerifyError::Stale)
    );
    let near_future = nm.challenge(REALM, Algorithm::Sha256, false, T0 + 2_000);
    assert_eq!(
        server_verify(&nm, &answer(&near_future, "secret", 1), T0),
        Ok(())
    );
}

#[test]
fn replayed_or_lower_nc_is_rejected() {
    let nm = manager();
    let [ch, _] = nm.challenges(REALM, false, T0);
    let first = answer(&ch, "secret", 1);
    assert_eq!(server_verify(&nm, &first, T0), Ok(()));
    assert_eq!(
        server_verify(&nm, &first, T0 + 10),
        Err(VerifyError::Replay)
    );
    assert_eq!(
        server_verify(&nm, &answer(&ch, "secret", 5), T0 + 20),
        Ok(())
    );
    assert_eq!(
        server_verify(&nm, &answer(&ch, "secret", 3), T0 + 30),
        Err(VerifyError::Replay)
    );
    assert_eq!(
        server_verify(&nm, &answer(&ch, "secret", 0), T0 + 30),
        Err(VerifyError::Replay)
    );
    // A failed attempt does not advance the counter.
    assert_eq!(
        server_verify(&nm, &answer(&ch, "guess", 9), T0 + 40),
        Err(VerifyError::WrongResponse)
    );
    assert_eq!(
        server_verify(&nm, &answer(&ch, "secret", 6), T0 + 50),
        Ok(())
    );
}

#[test]
fn tampered_foreign_and_garbled_nonces_are_invalid() {
    let nm = manager();
    let [ch, _] = nm.challenges(REALM, false, T0);
    let mut tampered = ch.clone();
    // Make the nonce look younger: flip a bit of the timestamp.
    let mut bytes = hex::decode(&ch.nonce).expect("hex nonce");
    bytes[7] ^= 1;
    tampered.nonce = hex::encode(&bytes);
    tampered.opaque = None;
    assert_eq!(
        server_verify(&nm, &answer(&tampered, "secret", 1), T0),
        Err(VerifyError::InvalidNonce)
    );
    for garbage in ["", "zz", "00", &ch.nonce[..62]] {
        let mut g = ch.clone();
        g.nonce = garbage.to_owned();
        g.opaque = None;
        assert_eq!(
            server_verify(&nm, &answer(&g, "secret", 1), T0),
            Err(VerifyError::InvalidNonce),
            "{garbage:?}"
        );
    }
    // Another cluster's secret.
    let other = NonceManager::new([8u8; 32], NonceConfig::default());
    let [foreign, _] = other.challenges(REALM, false, T0);
    assert_eq!(
        server_verify(&nm, &answer(&foreign, "secret", 1), T0),
        Err(VerifyError::InvalidNonce)
    );
    // A nonce for another tenant's realm, presented with our realm.
    let mut cross = nm.challenge("tenant-b", Algorithm::Sha256, false, T0);
    cross.realm = REALM.to_owned();
    assert_eq!(
        server_verify(&nm, &answer(&cross, "secret", 1), T0),
        Err(VerifyError::InvalidNonce)
    );
    // Wrong opaque.
    let mut wrong_opaque = ch.clone();
    wrong_opaque.opaque = Some("nope".into());
    assert_eq!(
        server_verify(&nm, &answer(&wrong_opaque, "secret", 1), T0),
        Err(VerifyError::OpaqueMismatch)
    );
}

#[test]
fn secret_rotation_keeps_outstanding_nonces() {
    let mut nm = manager();
    let [old, _] = nm.challenges(REALM, false, T0);
    nm.rotate_secret([9u8; 32]);
    let [new, _] = nm.challenges(REALM, false, T0);
    assert_eq!(server_verify(&nm, &answer(&old, "secret", 1), T0), Ok(()));
    assert_eq!(server_verify(&nm, &answer(&new, "secret", 1), T0), Ok(()));
    nm.rotate_secret([10u8; 32]);
    assert_eq!(
        server_verify(&nm, &answer(&old, "secret", 2), T0),
        Err(VerifyError::InvalidNonce)
    );
}

#[test]
fn replay_map_is_bounded_and_expires() {
    let nm = manager_with(NonceConfig {
        max_tracked: 3,
        lifetime: Duration::from_secs(10),
        ..NonceConfig::default()
    });
    let chs: Vec<Challenge> = (0..5)
        .map(|i| nm.challenge(REALM, Algorithm::Sha256, false, T0 + i * 100))
        .collect();
    for ch in &chs[1..4] {
        assert_eq!(
            server_verify(&nm, &answer(ch, "secret", 1), T0 + 500),
            Ok(())
        );
    }
    assert_eq!(nm.tracked_nonces(), 3);
    // Full: the newest nonce displaces the oldest tracked one (issued at +100).
    assert_eq!(
        server_verify(&nm, &answer(&chs[4], "secret", 1), T0 + 500),
        Ok(())
    );
    assert_eq!(nm.tracked_nonces(), 3);
    // The evicted nonce's history is gone, so it is stale rather than replayable.
    assert_eq!(
        server_verify(&nm, &answer(&chs[1], "secret", 1), T0 + 600),
        Err(VerifyError::Stale)
    );
    // An untracked nonce older than the evicted one is stale too, and is not recorded.
    assert_eq!(
        server_verify(&nm, &answer(&chs[0], "secret", 1), T0 + 600),
        Err(VerifyError::Stale)
    );
    // Tracked ones keep working.
    assert_eq!(
        server_verify(&nm, &answer(&chs[3], "secret", 2), T0 + 700),
        Ok(())
    );
    assert_eq!(nm.tracked_nonces(), 3);
    // After the lifetime everything is purged and new nonces are tracked normally.
    nm.purge_expired(T0 + 10_500);
    assert_eq!(nm.tracked_nonces(), 0);
    let late = nm.challenge(REALM, Algorithm::Sha256, false, T0 + 10_500);
    assert_eq!(
        server_verify(&nm, &answer(&late, "secret", 1), T0 + 10_600),
        Ok(())
    );
    assert_eq!(nm.tracked_nonces(), 1);
}

#[test]
fn full_map_refuses_a_nonce_older_than_all_tracked() {
    let nm = manager_with(NonceConfig {
        max_tracked: 1,
        ..NonceConfig::default()
    });
    let old = nm.challenge(REALM, Algorithm::Sha256, false, T0);
    let young = nm.challenge(REALM, Algorithm::Sha256, false, T0 + 100);
    assert_eq!(
        server_verify(&nm, &answer(&young, "secret", 1), T0 + 200),
        Ok(())
    );
    assert_eq!(
        server_verify(&nm, &answer(&old, "secret", 1), T0 + 200),
        Err(VerifyError::Stale)
    );
    assert_eq!(
        server_verify(&nm, &answer(&young, "secret", 2), T0 + 300),
        Ok(())
    );
}

#[test]
fn unix_millis_converts() {
    let t = std::time::SystemTime::UNIX_EPOCH + Duration::from_millis(T0);
    assert_eq!(unix_millis(t), T0);
    assert_eq!(
        unix_millis(std::time::SystemTime::UNIX_EPOCH - Duration::from_secs(1)),
        0
    );
}
