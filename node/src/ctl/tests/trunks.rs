//! `tongdai ctl trunk ...`, tenants' call settings and numbers' recording flags.

use tongdai_control_plane::model::{Codec, RecordingPolicy, Transport};

use super::*;

#[test]
fn trunk_round_trip() {
    let cluster = MemoryCluster::new();
    let s = server(&cluster);
    ctl(&s, &["tenant", "create", "acme", "--name", "ACME"]);
    let acme = |line: &str| -> Vec<String> {
        let mut argv = vec!["-t".to_owned(), "acme".to_owned()];
        argv.extend(line.split_whitespace().map(str::to_owned));
        argv
    };
    let run_line = |line: &str| {
        let argv = acme(line);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        ctl(&s, &argv)
    };
    run_line("trunk create backup --address [2001:db8::9]:5060 --transport tcp --max-calls 5");
    let created = run_line(
        "trunk create viettel --address 203.0.113.7:5060 --trust 203.0.113.0/24,2001:DB8::7 \
         --max-calls 30 --failover backup --register-user acme --register-domain sip.viettel.example \
         --register-password carrier-secret --register-expires 300",
    );
    assert_eq!(
        rows(&created),
        [
            vec![
                "ID",
                "ADDRESS",
                "TRANSPORT",
                "TRUSTED_SOURCES",
                "MAX_CALLS",
                "FAILOVER",
                "REGISTRATION"
            ],
            vec![
                "viettel",
                "203.0.113.7:5060",
                "udp",
                "203.0.113.0/24,2001:db8::7",
                "30",
                "backup",
                "acme@sip.viettel.example (300s)"
            ],
        ]
    );
    assert!(!created.contains("carrier-secret"));
    let stored = || {
        cluster
            .state()
            .trunk(&id("acme"), &id("viettel"))
            .cloned()
            .expect("stored")
    };
    assert_eq!(
        stored().registration.map(|r| r.password).as_deref(),
        Some("carrier-secret")
    );
    // An update changes what it names and keeps the password it does not.
    let json = {
        let argv = acme(
            "--json trunk update viettel --transport tls --register-expires 900 --no-failover",
        );
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        ctl(&s, &argv)
    };
    let v: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        v,
        json!({"tenant": "acme", "id": "viettel", "address": "203.0.113.7:5060", "transport": "tls",
            "trusted_sources": ["203.0.113.0/24", "2001:db8::7"],
            "registration": {"username": "acme", "password_set": true,
                             "domain": "sip.viettel.example", "expires_secs": 900},
            "max_concurrent_calls": 30})
    );
    let t = stored();
    assert_eq!(t.transport, Transport::Tls);
    assert_eq!(t.failover, None);
    assert_eq!(
        t.registration.map(|r| r.password).as_deref(),
        Some("carrier-secret")
    );
    run_line("trunk update viettel --trust 198.51.100.7:5060 --register-password rotated");
    let t = stored();
    assert_eq!(t.trusted_sources, ["198.51.100.7:5060"]);
    assert_eq!(
        t.registration.map(|r| r.password).as_deref(),
        Some("rotated")
    );
    run_line("trunk update viettel --no-trust --no-registration --max-calls 0");
    let t = stored();
    assert!(t.trusted_sources.is_empty() && t.registration.is_none());
    assert_eq!(t.max_concurrent_calls, 0);
    assert_eq!(
        rows(&run_line("trunk get viettel"))[1],
        ["viettel", "203.0.113.7:5060", "tls", "-", "0", "-", "-"]
    );
    assert_eq!(rows(&run_line("trunk list")).len(), 3);
    // Registering anew needs the password, named as the field to fix.
    let argv = acme("trunk update viettel --register-user u --register-domain d.example");
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let err = ctl_as(&s.url(), OPERATOR, &argv).expect_err("no password");
    assert!(
        matches!(&err, CtlError::Api { status: 422, field: Some(f), .. } if f == "registration.password"),
        "{err:?}"
    );
    // In use as a failover: refused until released.
    run_line("trunk update viettel --failover backup");
    let argv = acme("trunk delete backup");
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let err = ctl_as(&s.url(), OPERATOR, &argv).expect_err("in use");
    assert!(
        matches!(&err, CtlError::Api { status: 409, code, .. } if code == "trunk_in_use"),
        "{err:?}"
    );
    assert_eq!(run_line("trunk delete viettel"), "deleted trunk viettel\n");
    assert_eq!(run_line("trunk delete backup"), "deleted trunk backup\n");
    assert_eq!(cluster.state().trunks(&id("acme")).count(), 0);
}

#[test]
fn tenant_call_settings_and_number_recording() {
    let cluster = MemoryCluster::new();
    let s = server(&cluster);
    ctl(
        &s,
        &words("tenant create acme --name ACME --codecs pcma,telephone_event --recording always"),
    );
    let calls = || {
        cluster
            .state()
            .tenant(&id("acme"))
            .map(|t| t.calls.clone())
            .expect("acme")
    };
    assert_eq!(calls().codecs, [Codec::Pcma, Codec::TelephoneEvent]);
    assert_eq!(calls().recording, RecordingPolicy::Always);
    ctl(
        &s,
        &words("-t acme number create 02873001234 --dest external:0901234567 --recording never"),
    );
    ctl(
        &s,
        &words("-t acme number create 18001234 --dest external:0901234567"),
    );
    ctl(
        &s,
        &words("-t acme trunk create viettel --address sip.viettel.example:5060"),
    );
    let updated = ctl(
        &s,
        &words(
            "tenant update acme --outbound-trunk viettel --caller-id 02873001234 \
             --allow-other-codecs --recording on_demand",
        ),
    );
    assert_eq!(
        rows(&updated)[1][5..],
        [
            "pcma,telephone_event",
            "on_demand",
            "viettel",
            "02873001234"
        ]
    );
    assert!(calls().allow_other_codecs);
    // A 1800 number as caller ID: the API's reason reaches the user.
    let err = ctl_as(
        &s.url(),
        OPERATOR,
        &words("tenant update acme --caller-id 18001234"),
    )
    .expect_err("inbound only");
    assert!(
        err.to_string().contains("inbound only") && err.to_string().contains("calls.caller_id"),
        "{err}"
    );
    ctl(
        &s,
        &words(
            "tenant update acme --no-other-codecs --no-outbound-trunk --no-caller-id --codecs pcmu",
        ),
    );
    let c = calls();
    assert_eq!(
        (
            c.codecs.as_slice(),
            c.allow_other_codecs,
            c.outbound_trunk,
            c.caller_id
        ),
        (&[Codec::Pcmu][..], false, None, None)
    );
    assert_eq!(c.recording, RecordingPolicy::OnDemand, "untouched");

    let numbers = ctl(&s, &words("-t acme number list"));
    assert_eq!(rows(&numbers)[1][4], "never");
    assert_eq!(rows(&numbers)[2][4], "-");
    ctl(
        &s,
        &words("-t acme number update 18001234 --recording on-demand"),
    );
    ctl(
        &s,
        &words("-t acme number update 02873001234 --tenant-recording"),
    );
    let n = |d: &str| cluster.state().number(d).and_then(|n| n.recording);
    assert_eq!(n("18001234"), Some(RecordingPolicy::OnDemand));
    assert_eq!(n("02873001234"), None);
    // Bad values are usage errors caught by the parser.
    for bad in [
        "tenant create x --name X --codecs g729",
        "tenant update acme --recording sometimes",
        "tenant update acme --caller-id 02873001234 --no-caller-id",
        "-t acme trunk create t --address h:5060 --transport sctp",
        "-t acme trunk update t --no-registration --register-user u",
        "-t acme number update 18001234 --recording never --tenant-recording",
    ] {
        let mut argv = vec!["ctl"];
        argv.extend(words(bad));
        let err = TestCli::try_parse_from(argv).expect_err("usage error");
        assert_eq!(err.exit_code(), 2, "{bad:?}");
    }
}
