use std::collections::BTreeSet;
use std::net::SocketAddr;

use toml::{Table, Value};

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(toml: &str, env_pairs: &[(&str, &str)]) -> Result<LoadedConfig, ConfigError> {
    Config::from_toml_str(toml, &env(env_pairs))
}

fn error(toml: &str, env_pairs: &[(&str, &str)]) -> String {
    match load(toml, env_pairs) {
        Ok(loaded) => panic!("expected an error, got {:?}", loaded.config),
        Err(e) => e.to_string(),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

#[test]
fn defaults_need_no_file_and_no_env() {
    let loaded = Config::load(None, &[]).expect("defaults are valid");
    let c = loaded.config;
    assert!(loaded.warnings.is_empty());
    assert!(!c.node.name.is_empty());
    assert_eq!(c.sip.listen_udp, Some(addr("127.0.0.1:5060")));
    assert_eq!(c.sip.listen_tcp, Some(addr("127.0.0.1:5060")));
    assert_eq!(c.sip.max_message_size, 65535);
    assert_eq!(c.sip.udp_recv_buffer, 4_194_304);
    assert_eq!(c.sip.udp_send_buffer, 4_194_304);
    assert!(c.sip.udp_workers >= 1);
    assert!(c.sip.reuse_port);
    assert_eq!(c.sip.tcp_idle_timeout(), Duration::from_secs(300));
    assert_eq!(c.sip.max_tcp_connections, 10_000);
    assert_eq!(c.registrar, RegistrarConfig::default());
    assert_eq!(c.registrar.realm, "tongdai");
    assert_eq!(
        (
            c.registrar.min_expires,
            c.registrar.max_expires,
            c.registrar.default_expires
        ),
        (60, 3600, 3600)
    );
    assert_eq!(c.registrar.nonce_lifetime(), Duration::from_secs(300));
    assert_eq!(
        c.registrar.algorithms,
        [DigestAlgorithm::Sha256, DigestAlgorithm::Md5]
    );
    assert_eq!(c.http.listen, addr("127.0.0.1:9060"));
    assert_eq!(c.log, LogConfig::default());
    assert_eq!(c.log.format, LogFormat::Text);
    assert!(c.demo.is_none());
    assert!(c.demo_users().is_empty());
    Config::default()
        .validate()
        .expect("Config::default() is valid");
}

#[test]
fn file_values_are_read() {
    let c = load(
        r#"
        [node]
        name = "edge-1"
        [sip]
        listen_udp = "0.0.0.0:5070"
        listen_tcp = "off"
        max_message_size = 4096
        udp_workers = 3
        reuse_port = false
        [registrar]
        realm = "acme.example.com"
        min_expires = 30
        max_expires = 600
        default_expires = 300
        algorithms = ["md5"]
        [http]
        listen = "[::1]:0"
        [log]
        level = "info,tongdai_node::sip=debug"
        format = "JSON"
        "#,
        &[],
    )
    .expect("valid file")
    .config;
    assert_eq!(c.node.name, "edge-1");
    assert_eq!(c.sip.listen_udp, Some(addr("0.0.0.0:5070")));
    assert_eq!(c.sip.listen_tcp, None);
    assert_eq!(c.sip.max_message_size, 4096);
    assert_eq!(c.sip.udp_workers, 3);
    assert!(!c.sip.reuse_port);
    assert_eq!(c.registrar.realm, "acme.example.com");
    assert_eq!(
        (
            c.registrar.min_expires,
            c.registrar.max_expires,
            c.registrar.default_expires
        ),
        (30, 600, 300)
    );
    assert_eq!(c.registrar.algorithms, [DigestAlgorithm::Md5]);
    assert_eq!(c.http.listen, addr("[::1]:0"));
    assert_eq!(c.log.level, "info,tongdai_node::sip=debug");
    assert_eq!(c.log.format, LogFormat::Json);
    // Keys not in the file keep their defaults.
    assert_eq!(c.sip.max_tcp_connections, 10_000);
}

#[test]
fn empty_string_disables_a_listener() {
    let c = load("[sip]\nlisten_udp = \"\"", &[]).expect("valid").config;
    assert_eq!(c.sip.listen_udp, None);
    assert!(c.sip.listen_tcp.is_some());
}

#[test]
fn env_overrides_file_and_defaults() {
    let loaded = load(
        "[sip]\nlisten_udp = \"127.0.0.1:5070\"\nmax_message_size = 4096",
        &[
            ("TONGDAI_SIP_LISTEN_UDP", "0.0.0.0:5060"),
            ("TONGDAI_SIP_LISTEN_TCP", "off"),
            ("TONGDAI_SIP_REUSE_PORT", "no"),
            ("TONGDAI_SIP_UDP_WORKERS", " 7 "),
            ("TONGDAI_REGISTRAR_ALGORITHMS", "MD5, sha-256"),
            ("TONGDAI_NODE_NAME", "pod-7"),
            ("TONGDAI_LOG_FORMAT", "json"),
            ("PATH", "/usr/bin"),
        ],
    )
    .expect("valid");
    let c = loaded.config;
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(c.sip.listen_udp, Some(addr("0.0.0.0:5060")));
    assert_eq!(c.sip.listen_tcp, None);
    assert!(!c.sip.reuse_port);
    assert_eq!(c.sip.udp_workers, 7);
    assert_eq!(
        c.sip.max_message_size, 4096,
        "file value kept where env is silent"
    );
    assert_eq!(
        c.registrar.algorithms,
        [DigestAlgorithm::Md5, DigestAlgorithm::Sha256]
    );
    assert_eq!(c.node.name, "pod-7");
    assert_eq!(c.log.format, LogFormat::Json);
}

#[test]
fn env_alone_without_a_file() {
    let c = Config::load(None, &env(&[("TONGDAI_HTTP_LISTEN", "0.0.0.0:0")]))
        .expect("valid")
        .config;
    assert_eq!(c.http.listen, addr("0.0.0.0:0"));
}

#[test]
fn unknown_env_vars_warn_but_do_not_fail() {
    let loaded = Config::load(
        None,
        &env(&[
            ("TONGDAI_SIP_LISTN_UDP", "0.0.0.0:5060"),
            ("TONGDAI_FOO", "1"),
            // Injected by Kubernetes for a Service named `tongdai`, and the CLI's own var.
            ("TONGDAI_SERVICE_HOST", "10.0.0.1"),
            ("TONGDAI_PORT", "udp://10.0.0.1:5060"),
            ("TONGDAI_PORT_5060_UDP_ADDR", "10.0.0.1"),
            ("TONGDAI_CONFIG", "/etc/tongdai/node.toml"),
        ]),
    )
    .expect("unknown env vars are not fatal");
    let messages: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with("ignoring environment variable TONGDAI_SIP_LISTN_UDP"),
        "{}",
        messages[0]
    );
    assert!(
        messages[0].contains("TONGDAI_SIP_LISTEN_UDP"),
        "{}",
        messages[0]
    );
    assert!(messages[1].contains("TONGDAI_FOO"), "{}", messages[1]);
    assert!(
        messages[1].contains("SECTION one of NODE, SIP"),
        "{}",
        messages[1]
    );
}

#[test]
fn bad_socket_address_in_file_names_the_key() {
    assert_eq!(
        error("[sip]\nlisten_udp = \"127.0.0.1:99999\"", &[]),
        "sip.listen_udp: \"127.0.0.1:99999\" is not a socket address \
         (expected IP:port, e.g. 0.0.0.0:5060 or [::]:5060, or \"off\" to disable)"
    );
}

#[test]
fn bad_socket_address_in_env_names_the_variable() {
    assert_eq!(
        error("", &[("TONGDAI_HTTP_LISTEN", "localhost")]),
        "TONGDAI_HTTP_LISTEN: \"localhost\" is not a socket address \
         (expected IP:port, e.g. 127.0.0.1:9060 or [::]:9060)"
    );
}

#[test]
fn min_expires_above_max_expires() {
    assert_eq!(
        error("[registrar]\nmin_expires = 30\nmax_expires = 10", &[]),
        "registrar.min_expires (30) must be <= registrar.max_expires (10)"
    );
    // The side that came from the env is named by its variable; the default by its key.
    assert_eq!(
        error("", &[("TONGDAI_REGISTRAR_MIN_EXPIRES", "5000")]),
        "TONGDAI_REGISTRAR_MIN_EXPIRES (5000) must be <= registrar.max_expires (3600)"
    );
}

#[test]
fn default_expires_outside_min_max() {
    assert_eq!(
        error("[registrar]\ndefault_expires = 10", &[]),
        "registrar.default_expires (10) must be >= registrar.min_expires (60)"
    );
    assert_eq!(
        error("[registrar]\nmax_expires = 600", &[]),
        "registrar.default_expires (3600) must be <= registrar.max_expires (600)"
    );
}

#[test]
fn unknown_key_lists_the_known_keys() {
    let e = error("[sip]\nlistn_udp = \"0.0.0.0:5060\"", &[]);
    assert!(
        e.starts_with("unknown key \"sip.listn_udp\" (known keys: sip.listen_udp, sip.listen_tcp,"),
        "{e}"
    );
    assert!(e.ends_with("sip.max_transactions)"), "{e}");
}

#[test]
fn unknown_section_and_key_outside_a_section() {
    assert_eq!(
        error("[sipp]\nlisten_udp = \"0.0.0.0:5060\"", &[]),
        "unknown section \"[sipp]\" (known sections: node, sip, registrar, http, log, control_plane, replica, media, calls, cdr, records, demo)"
    );
    assert_eq!(
        error("name = \"x\"", &[]),
        "unknown key \"name\" (known keys: every key belongs to a section, \
         one of node, sip, registrar, http, log, control_plane, replica, media, calls, cdr, records, demo)"
    );
    assert_eq!(
        error("sip = 5", &[]),
        "sip: expected a table ([sip]), found 5"
    );
}

#[test]
fn syntax_error_names_the_file_and_position() {
    let e = error("[sip\nlisten_udp = 1", &[]);
    assert!(
        e.starts_with("config file <string> is not valid TOML: "),
        "{e}"
    );
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn duplicate_key_is_a_syntax_error() {
    let e = error("[sip]\nreuse_port = true\nreuse_port = false", &[]);
    assert!(e.contains("is not valid TOML"), "{e}");
}

#[test]
fn wrong_types_in_file() {
    assert_eq!(
        error("[sip]\nmax_message_size = \"big\"", &[]),
        "sip.max_message_size: expected an integer from 1024 to 1048576, found string \"big\""
    );
    assert_eq!(
        error("[sip]\nreuse_port = \"yes\"", &[]),
        "sip.reuse_port: expected true or false, found string \"yes\""
    );
    assert_eq!(
        error("[sip]\nlisten_udp = 5060", &[]),
        "sip.listen_udp: expected a string such as \"0.0.0.0:5060\" or \"off\", found integer 5060"
    );
    assert_eq!(
        error("[registrar]\nalgorithms = \"MD5\"", &[]),
        "registrar.algorithms: expected a list of strings, e.g. [\"SHA-256\", \"MD5\"], \
         found string \"MD5\""
    );
    assert_eq!(
        error("[registrar]\nalgorithms = [5]", &[]),
        "registrar.algorithms: expected a list of strings, e.g. [\"SHA-256\", \"MD5\"], \
         found integer 5"
    );
}

#[test]
fn integers_out_of_range() {
    assert_eq!(
        error("[sip]\nmax_message_size = 100", &[]),
        "sip.max_message_size: 100 is out of range (expected an integer from 1024 to 1048576)"
    );
    assert_eq!(
        error("[sip]\nudp_workers = -1", &[]),
        "sip.udp_workers: -1 is out of range (expected an integer from 1 to 1024)"
    );
    assert_eq!(
        error("[registrar]\nmax_expires = 4294967296", &[]),
        "registrar.max_expires: 4294967296 is out of range \
         (expected an integer from 1 to 4294967295)"
    );
}

#[test]
fn env_values_that_do_not_parse() {
    assert_eq!(
        error("", &[("TONGDAI_SIP_MAX_MESSAGE_SIZE", "64k")]),
        "TONGDAI_SIP_MAX_MESSAGE_SIZE: \"64k\" is not an integer \
         (expected an integer from 1024 to 1048576)"
    );
    assert_eq!(
        error("", &[("TONGDAI_SIP_MAX_TCP_CONNECTIONS", "0")]),
        "TONGDAI_SIP_MAX_TCP_CONNECTIONS: 0 is out of range \
         (expected an integer from 1 to 10000000)"
    );
    assert_eq!(
        error("", &[("TONGDAI_SIP_REUSE_PORT", "maybe")]),
        "TONGDAI_SIP_REUSE_PORT: \"maybe\" is not a boolean (expected true or false)"
    );
    assert_eq!(
        error("", &[("TONGDAI_REGISTRAR_ALGORITHMS", "SHA-256,SHA1")]),
        "TONGDAI_REGISTRAR_ALGORITHMS: \"SHA1\" is not a supported digest algorithm \
         (expected a non-empty list of SHA-256, SHA-512-256, MD5, in order of preference)"
    );
    assert_eq!(
        error("", &[("TONGDAI_REGISTRAR_ALGORITHMS", "")]),
        "TONGDAI_REGISTRAR_ALGORITHMS: [] is empty \
         (expected a non-empty list of SHA-256, SHA-512-256, MD5, in order of preference)"
    );
    assert_eq!(
        error("", &[("TONGDAI_REGISTRAR_ALGORITHMS", "MD5,md5")]),
        "TONGDAI_REGISTRAR_ALGORITHMS: \"md5\" is listed twice \
         (expected a non-empty list of SHA-256, SHA-512-256, MD5, in order of preference)"
    );
}

#[test]
fn strings_with_rules() {
    assert_eq!(
        error("[log]\nformat = \"xml\"", &[]),
        "log.format: \"xml\" is not a log format (expected \"text\" or \"json\")"
    );
    let e = error("[log]\nlevel = \"verbose\"", &[]);
    assert!(
        e.starts_with("log.level: \"verbose\" is not a log level (expected one of trace,"),
        "{e}"
    );
    assert!(error("[log]\nlevel = \"info,x=loud\"", &[]).starts_with("log.level:"));
    assert!(
        error("[registrar]\nrealm = \"a\\\"b\"", &[])
            .starts_with("registrar.realm: \"a\\\"b\" is not a valid realm")
    );
    assert!(error("[registrar]\nrealm = \"\"", &[]).starts_with("registrar.realm: \"\""));
    assert!(
        error("[node]\nname = \"my node\"", &[])
            .starts_with("node.name: \"my node\" is not a valid node name")
    );
    assert!(
        error("", &[("TONGDAI_DEMO_PASSWORD_PREFIX", "a\nb")])
            .starts_with("TONGDAI_DEMO_PASSWORD_PREFIX: \"a\\nb\" contains a control character")
    );
}

#[test]
fn both_listeners_off() {
    assert_eq!(
        error(
            "[sip]\nlisten_udp = \"off\"",
            &[("TONGDAI_SIP_LISTEN_TCP", "")]
        ),
        "sip.listen_udp and TONGDAI_SIP_LISTEN_TCP are both off \
         (enable at least one, e.g. sip.listen_tcp = \"0.0.0.0:5060\")"
    );
}

#[test]
fn http_and_sip_tcp_on_the_same_address() {
    assert_eq!(
        error("[http]\nlisten = \"127.0.0.1:5060\"", &[]),
        "http.listen (127.0.0.1:5060) must be different from sip.listen_tcp (127.0.0.1:5060)"
    );
    // Port 0 means "any free port" and is fine for both.
    load(
        "[http]\nlisten = \"127.0.0.1:0\"\n[sip]\nlisten_tcp = \"127.0.0.1:0\"",
        &[],
    )
    .expect("port 0 twice is fine");
}

#[test]
fn several_problems_are_all_reported() {
    let e = load(
        "[sip]\nmax_message_size = 1\nreuse_port = 3\nbogus = 1",
        &[("TONGDAI_HTTP_LISTEN", "nope")],
    )
    .expect_err("invalid");
    assert_eq!(e.problems().len(), 4, "{e}");
    assert_eq!(e.to_string().lines().count(), 4, "{e}");
}

#[test]
fn unreadable_file() {
    let e = Config::load(Some(Path::new("/nonexistent/tongdai.toml")), &[]).expect_err("no file");
    let message = e.to_string();
    assert!(
        message.starts_with("cannot read config file /nonexistent/tongdai.toml: "),
        "{message}"
    );
}

#[test]
fn demo_section_enables_demo_users_with_prefix() {
    let c = load(
        "[demo]\nfirst_extension = 2001\ncount = 3\npassword_prefix = \"pw\"",
        &[],
    )
    .expect("valid")
    .config;
    let tenant = c.demo_tenant().expect("demo enabled");
    assert_eq!(tenant.realm, "tongdai");
    let users: Vec<(&str, &str)> = tenant
        .extensions
        .iter()
        .map(|u| (u.extension.as_str(), u.password.as_str()))
        .collect();
    assert_eq!(
        users,
        [("2001", "pw2001"), ("2002", "pw2002"), ("2003", "pw2003")]
    );
    assert!(!c.demo.as_ref().expect("demo").passwords_are_random());
}

#[test]
fn demo_env_var_enables_demo() {
    let c = Config::load(None, &env(&[("TONGDAI_DEMO_PASSWORD_PREFIX", "s3cret-")]))
        .expect("valid")
        .config;
    let users = c.demo_users();
    assert_eq!(users.len(), 10);
    assert_eq!(users[0].extension, "1001");
    assert_eq!(users[0].password, "s3cret-1001");
    assert_eq!(users[9].extension, "1010");
}

#[test]
fn random_demo_passwords_are_stable_per_config_and_differ_between_configs() {
    let a = Config::default().with_demo();
    let users = a.demo_users();
    assert_eq!(users.len(), 10);
    for user in &users {
        assert_eq!(user.password.len(), RANDOM_PASSWORD_LEN);
        assert!(user.password.chars().all(|c| c.is_ascii_alphanumeric()));
    }
    assert_eq!(a.demo_users(), users, "same config, same passwords");
    assert_eq!(a.clone().demo_users(), users, "a clone agrees too");
    let b = Config::default().with_demo();
    assert_ne!(
        b.demo_users(),
        users,
        "a fresh config draws fresh passwords"
    );
    assert!(
        format!("{users:?}").contains("<redacted>")
            && !format!("{users:?}").contains(&users[0].password),
        "passwords stay out of Debug output"
    );

    let mut seeded = Config::default().with_demo();
    if let Some(demo) = seeded.demo.as_mut() {
        demo.password_seed = PasswordSeed::from_bytes([7; 32]);
    }
    let mut seeded_again = Config::default().with_demo();
    if let Some(demo) = seeded_again.demo.as_mut() {
        demo.password_seed = PasswordSeed::from_bytes([7; 32]);
    }
    assert_eq!(seeded.demo_users(), seeded_again.demo_users());
}

#[test]
fn demo_extensions_must_not_overflow() {
    assert_eq!(
        error("[demo]\nfirst_extension = 99999995\ncount = 10", &[]),
        "demo.first_extension (99999995) + demo.count (10) - 1 must be <= 99999999 \
         (the largest demo extension number)"
    );
}

#[test]
fn validate_checks_configs_built_in_code() {
    let mut c = Config::default();
    c.sip.max_message_size = 10;
    c.registrar.algorithms.clear();
    let e = c.validate().expect_err("invalid");
    assert_eq!(e.problems().len(), 2, "{e}");
    assert!(
        e.to_string()
            .contains("sip.max_message_size: 10 is out of range"),
        "{e}"
    );
}

#[test]
fn effective_config_round_trips_through_toml() {
    let original = load(
        "[sip]\nlisten_tcp = \"off\"\n[demo]\ncount = 2",
        &[("TONGDAI_LOG_LEVEL", "debug")],
    )
    .expect("valid")
    .config;
    let text = original.to_toml();
    assert!(text.contains("listen_tcp = \"off\""), "{text}");
    assert!(text.contains("[demo]"), "{text}");
    let reparsed = load(&text, &[]).expect("printed config is valid").config;
    assert_eq!(reparsed.sip, original.sip);
    assert_eq!(reparsed.registrar, original.registrar);
    assert_eq!(reparsed.http, original.http);
    assert_eq!(reparsed.log, original.log);
    assert_eq!(reparsed.node, original.node);
    assert_eq!(reparsed.demo.map(|d| d.count), Some(2));
    // Without [demo], the printed config has none either.
    assert!(!Config::default().to_toml().contains("[demo]"));
}

/// The key catalogue and the serde structs must describe the same keys, and every default
/// must pass its own key's check.
#[test]
fn key_catalogue_matches_the_config_structs() {
    let rendered = Table::try_from(Config::default().with_demo()).expect("serializes");
    let mut from_structs = BTreeSet::new();
    for (section, body) in &rendered {
        let Value::Table(body) = body else {
            panic!("{section} is not a table")
        };
        for (key, value) in body {
            let spec = keys::find(section, key)
                .unwrap_or_else(|| panic!("{section}.{key} missing from the catalogue"));
            let origin = Origin::Default { key: spec.dotted };
            keys::check_file_value(spec, &origin, value)
                .unwrap_or_else(|e| panic!("default fails its own check: {e}"));
            from_structs.insert(format!("{section}.{key}"));
        }
    }
    let from_catalogue: BTreeSet<String> = keys::KEYS.iter().map(|k| k.dotted.to_owned()).collect();
    assert_eq!(from_structs, from_catalogue);
    let sections: BTreeSet<&str> = keys::KEYS.iter().map(|k| k.section()).collect();
    assert_eq!(sections, keys::SECTIONS.iter().copied().collect());
}

#[test]
fn every_key_is_settable_from_the_env() {
    // Feed each default back through its environment variable: all must parse and load.
    let rendered = Table::try_from(Config::default().with_demo()).expect("serializes");
    let mut vars = Vec::new();
    for spec in keys::KEYS {
        let value = &rendered[spec.section()][spec.key()];
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        vars.push((spec.env_var(), text));
    }
    let loaded = Config::load(None, &vars).expect("all defaults load from the env");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.sip, SipConfig::default());
    assert_eq!(loaded.config.registrar, RegistrarConfig::default());
    assert!(loaded.config.demo.is_some());
}

#[test]
fn cdr_directories_follow_the_data_dir_unless_set() {
    let c = load(
        "[node]\nname = \"n1\"\n[replica]\ndata_dir = \"/srv/td\"",
        &[],
    )
    .expect("valid")
    .config;
    // Spools are per node (each is locked by its process); stores are shared.
    assert_eq!(c.cdr.spool_dir, "/srv/td/spool/n1/cdrs");
    assert_eq!(c.cdr.dir, "/srv/td/cdrs");
    assert_eq!(c.media.spool_dir, "/srv/td/spool/n1/recordings");
    assert_eq!(c.media.recordings_dir, "/srv/td/recordings");
    assert_eq!(c.records.recordings_dir, "/srv/td/recordings");
    let c = load(
        "[node]\nname = \"n1\"\n[replica]\ndata_dir = \"/srv/td\"\n[cdr]\ndir = \"/mnt/cdrs\"",
        &[("TONGDAI_CDR_BATCH_MAX_MS", "20")],
    )
    .expect("valid")
    .config;
    assert_eq!(c.cdr.spool_dir, "/srv/td/spool/n1/cdrs");
    assert_eq!(c.cdr.dir, "/mnt/cdrs");
    assert_eq!(c.cdr.batch_max_ms, 20);
    // The printed config loads back to the same directories.
    let again = load(&c.to_toml(), &[]).expect("valid").config;
    assert_eq!(again.cdr, c.cdr);
    assert_eq!(again.records, c.records);
}

#[test]
fn cdr_mistakes_name_the_key() {
    let e = error("[cdr]\nspool_dir = \"/x\"\ndir = \"/x\"", &[]);
    assert!(
        e.contains("cdr.spool_dir (/x) must be different from cdr.dir (/x)"),
        "{e}"
    );
    let e = error("[cdr]\ndir = \"\"", &[]);
    assert!(e.contains("cdr.dir: \"\" is empty"), "{e}");
    let e = error("", &[("TONGDAI_CDR_BATCH_MAX_RECORDS", "0")]);
    assert!(
        e.contains("TONGDAI_CDR_BATCH_MAX_RECORDS: 0 is out of range"),
        "{e}"
    );
    let e = error("[cdr]\nsegment_max_ms = 5", &[]);
    assert!(e.contains("cdr.segment_max_ms: 5 is out of range"), "{e}");
    let e = error("[records]\ncdr = \"x\"", &[]);
    assert!(e.contains("unknown key \"records.cdr\""), "{e}");
}
