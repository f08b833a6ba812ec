//! The catalogue of config keys: for each `section.key` its kind and the values it accepts.
//!
//! File values and environment strings are both checked here, before serde sees them, so a
//! bad value is reported against the key or variable the operator wrote, with what would have
//! been accepted. A unit test keeps this catalogue and the `Config` structs in step.

use std::net::SocketAddr;

use toml::Value;

use super::error::{ConfigError, Origin};
use super::{DigestAlgorithm, LogFormat};

/// Prefix of every environment variable that sets a config key.
pub(super) const ENV_PREFIX: &str = "TONGDAI_";

/// The largest extension number `[demo]` may generate (eight digits).
pub(super) const MAX_DEMO_EXTENSION: u64 = 99_999_999;

/// What a key holds and which values pass.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// `IP:port` to listen on, or `""` / `"off"` to disable the listener.
    Listen,
    /// `IP:port`, required.
    SocketAddr,
    /// Unsigned integer in `min..=max`.
    UInt {
        min: u64,
        max: u64,
    },
    Bool,
    /// A node name: letters, digits, `.`, `_`, `-`.
    NodeName,
    /// A digest realm: non-empty, no quote, backslash or control character.
    Realm,
    /// Any string without control characters, possibly empty.
    Text,
    /// A tracing filter: a level or `tracing-subscriber` directives.
    LogLevel,
    LogFormat,
    /// A non-empty list of digest algorithm names, no duplicates.
    Algorithms,
}

#[derive(Debug)]
pub(super) struct KeySpec {
    /// `section.key`
    pub dotted: &'static str,
    pub kind: Kind,
}

impl KeySpec {
    pub fn section(&self) -> &'static str {
        self.dotted
            .split_once('.')
            .map_or(self.dotted, |(section, _)| section)
    }

    pub fn key(&self) -> &'static str {
        self.dotted.split_once('.').map_or("", |(_, key)| key)
    }

    pub fn env_var(&self) -> String {
        Origin::env_var(self.dotted)
    }
}

const fn key(dotted: &'static str, kind: Kind) -> KeySpec {
    KeySpec { dotted, kind }
}

const fn uint(min: u64, max: u64) -> Kind {
    Kind::UInt { min, max }
}

/// Sections in the order they are documented and printed.
pub(super) const SECTIONS: &[&str] = &[
    "node",
    "sip",
    "registrar",
    "http",
    "log",
    "control_plane",
    "replica",
    "media",
    "calls",
    "cdr",
    "records",
    "demo",
];

pub(super) const KEYS: &[KeySpec] = &[
    key("node.name", Kind::NodeName),
    key("sip.listen_udp", Kind::Listen),
    key("sip.listen_tcp", Kind::Listen),
    key("sip.max_message_size", uint(1024, 1 << 20)),
    key("sip.udp_recv_buffer", uint(4096, 1 << 30)),
    key("sip.udp_send_buffer", uint(4096, 1 << 30)),
    key("sip.udp_workers", uint(1, 1024)),
    key("sip.reuse_port", Kind::Bool),
    key("sip.tcp_idle_timeout_secs", uint(1, 86_400)),
    key("sip.max_tcp_connections", uint(1, 10_000_000)),
    key("sip.max_transactions", uint(1_000, 100_000_000)),
    key("registrar.realm", Kind::Realm),
    key("registrar.min_expires", uint(1, u32::MAX as u64)),
    key("registrar.max_expires", uint(1, u32::MAX as u64)),
    key("registrar.default_expires", uint(1, u32::MAX as u64)),
    key("registrar.nonce_lifetime_secs", uint(1, 86_400)),
    key("registrar.algorithms", Kind::Algorithms),
    key("http.listen", Kind::SocketAddr),
    key("log.level", Kind::LogLevel),
    key("log.format", Kind::LogFormat),
    key("control_plane.replicas", Kind::Text),
    key("control_plane.certs_dir", Kind::Text),
    key("control_plane.cert_name", Kind::Text),
    key("replica.id", uint(1, 1 << 48)),
    key("replica.listen", Kind::SocketAddr),
    key("replica.api_listen", Kind::SocketAddr),
    key("replica.data_dir", Kind::Text),
    key("replica.initial_members", Kind::Text),
    key("replica.operator_token", Kind::Text),
    key("replica.snapshot_every", uint(10, 100_000_000)),
    key("media.rtp_ports", Kind::Text),
    key("media.bind", Kind::Text),
    key("media.advertise", Kind::Text),
    key("media.workers", uint(0, 1024)),
    key("media.rtp_timeout_secs", uint(0, 86_400)),
    key("media.spool_dir", Kind::Text),
    key("media.recordings_dir", Kind::Text),
    key("calls.min_session_expires", uint(90, 86_400)),
    key("calls.drain_grace_secs", uint(0, 86_400)),
    key("cdr.spool_dir", Kind::Text),
    key("cdr.dir", Kind::Text),
    key("cdr.batch_max_ms", uint(0, 1_000)),
    key("cdr.batch_max_records", uint(1, 100_000)),
    key("cdr.segment_max_bytes", uint(4_096, 1 << 30)),
    key("cdr.segment_max_ms", uint(10, 3_600_000)),
    key("records.cdr_dir", Kind::Text),
    key("records.recordings_dir", Kind::Text),
    key("demo.realm", Kind::Realm),
    key("demo.first_extension", uint(1, MAX_DEMO_EXTENSION)),
    key("demo.count", uint(1, 1_000_000)),
    key("demo.password_prefix", Kind::Text),
];

pub(super) fn find(section: &str, key: &str) -> Option<&'static KeySpec> {
    KEYS.iter()
        .find(|k| k.section() == section && k.key() == key)
}

pub(super) fn find_by_env_var(var: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.env_var() == var)
}

/// The dotted keys of one section, comma-separated, for "known keys" hints.
pub(super) fn known_keys_of(section: &str) -> String {
    KEYS.iter()
        .filter(|k| k.section() == section)
        .map(|k| k.dotted)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn known_sections() -> String {
    SECTIONS.join(", ")
}

/// Environment variables with our prefix that are not config keys and are ignored silently.
///
/// `TONGDAI_CONFIG` is the CLI's `--config`. A Kubernetes Service named `tongdai` makes the
/// kubelet inject Docker-link style variables (`TONGDAI_SERVICE_HOST`, `TONGDAI_PORT`,
/// `TONGDAI_PORT_5060_UDP_ADDR`, ...) into every pod of the namespace; warning about those
/// would only teach operators to ignore warnings.
pub(super) fn is_ignored_env_var(var: &str) -> bool {
    var == "TONGDAI_CONFIG"
        || var == "TONGDAI_PORT"
        || var.starts_with("TONGDAI_PORT_")
        || var.starts_with("TONGDAI_SERVICE_")
}

/// A hint for an unknown `TONGDAI_*` variable: the keys of the section it seems to aim at, or
/// the sections.
pub(super) fn env_hint(var: &str) -> String {
    let rest = var
        .strip_prefix(ENV_PREFIX)
        .unwrap_or(var)
        .to_ascii_lowercase();
    let section = SECTIONS
        .iter()
        .find(|s| rest.starts_with(&format!("{s}_")) || rest == **s);
    match section {
        Some(section) => {
            let vars = KEYS
                .iter()
                .filter(|k| k.section() == *section)
                .map(KeySpec::env_var)
                .collect::<Vec<_>>()
                .join(", ");
            format!("known variables for [{section}]: {vars}")
        }
        None => format!(
            "expected {ENV_PREFIX}<SECTION>_<KEY> with SECTION one of {}",
            SECTIONS.join(", ").to_ascii_uppercase()
        ),
    }
}

const LISTEN_EXPECTED: &str = "IP:port, e.g. 0.0.0.0:5060 or [::]:5060, or \"off\" to disable";
const ADDR_EXPECTED: &str = "IP:port, e.g. 127.0.0.1:9060 or [::]:9060";
const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

fn type_name(value: &Value) -> String {
    match value {
        Value::String(s) => format!("string {s:?}"),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(x) => format!("float {x}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

fn wrong_type(origin: &Origin, expected: &str, found: &Value) -> ConfigError {
    ConfigError::WrongType {
        origin: origin.clone(),
        expected: expected.to_owned(),
        found: type_name(found),
    }
}

fn invalid(origin: &Origin, value: String, problem: &str, expected: &str) -> ConfigError {
    ConfigError::InvalidValue {
        origin: origin.clone(),
        value,
        problem: problem.to_owned(),
        expected: expected.to_owned(),
    }
}

fn expected_uint(min: u64, max: u64) -> String {
    format!("an integer from {min} to {max}")
}

/// Checks a value from the config file and returns it normalized (e.g. `"OFF"` -> `"off"`).
pub(super) fn check_file_value(
    spec: &KeySpec,
    origin: &Origin,
    value: &Value,
) -> Result<Value, ConfigError> {
    match spec.kind {
        Kind::UInt { min, max } => match value {
            Value::Integer(i) => check_uint(origin, i128::from(*i), min, max),
            other => Err(wrong_type(origin, &expected_uint(min, max), other)),
        },
        Kind::Bool => match value {
            Value::Boolean(b) => Ok(Value::Boolean(*b)),
            other => Err(wrong_type(origin, "true or false", other)),
        },
        Kind::Algorithms => match value {
            Value::Array(items) => {
                let mut names = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => names.push(s.as_str()),
                        other => {
                            return Err(wrong_type(
                                origin,
                                "a list of strings, e.g. [\"SHA-256\", \"MD5\"]",
                                other,
                            ));
                        }
                    }
                }
                check_algorithms(origin, &names)
            }
            other => Err(wrong_type(
                origin,
                "a list of strings, e.g. [\"SHA-256\", \"MD5\"]",
                other,
            )),
        },
        _ => match value {
            Value::String(s) => check_string(spec.kind, origin, s),
            other => Err(wrong_type(origin, expected_string(spec.kind), other)),
        },
    }
}

/// Parses an environment variable's text into the value the key would have in a file.
pub(super) fn parse_env_value(
    spec: &KeySpec,
    origin: &Origin,
    raw: &str,
) -> Result<Value, ConfigError> {
    match spec.kind {
        Kind::UInt { min, max } => match raw.trim().parse::<i128>() {
            Ok(n) => check_uint(origin, n, min, max),
            Err(_) => Err(invalid(
                origin,
                format!("{raw:?}"),
                "is not an integer",
                &expected_uint(min, max),
            )),
        },
        Kind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(invalid(
                origin,
                format!("{raw:?}"),
                "is not a boolean",
                "true or false",
            )),
        },
        Kind::Algorithms => {
            let names: Vec<&str> = if raw.trim().is_empty() {
                Vec::new()
            } else {
                raw.split(',').map(str::trim).collect()
            };
            check_algorithms(origin, &names)
        }
        // Text is taken verbatim: a password prefix may legitimately start with a space.
        Kind::Text => check_string(spec.kind, origin, raw),
        _ => check_string(spec.kind, origin, raw.trim()),
    }
}

fn expected_string(kind: Kind) -> &'static str {
    match kind {
        Kind::Listen => "a string such as \"0.0.0.0:5060\" or \"off\"",
        Kind::SocketAddr => "a string such as \"127.0.0.1:9060\"",
        Kind::LogFormat => "\"text\" or \"json\"",
        _ => "a string",
    }
}

fn check_uint(origin: &Origin, n: i128, min: u64, max: u64) -> Result<Value, ConfigError> {
    if n < i128::from(min) || n > i128::from(max) {
        return Err(invalid(
            origin,
            n.to_string(),
            "is out of range",
            &expected_uint(min, max),
        ));
    }
    // In range of a u64 bounded by our maxima, all of which fit an i64.
    i64::try_from(n).map(Value::Integer).map_err(|_| {
        invalid(
            origin,
            n.to_string(),
            "is too large",
            &expected_uint(min, max),
        )
    })
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn check_string(kind: Kind, origin: &Origin, s: &str) -> Result<Value, ConfigError> {
    let quoted = || format!("{s:?}");
    match kind {
        Kind::Listen => {
            if s.is_empty() || s.eq_ignore_ascii_case("off") {
                return Ok(Value::String("off".to_owned()));
            }
            match s.parse::<SocketAddr>() {
                Ok(addr) => Ok(Value::String(addr.to_string())),
                Err(_) => Err(invalid(
                    origin,
                    quoted(),
                    "is not a socket address",
                    LISTEN_EXPECTED,
                )),
            }
        }
        Kind::SocketAddr => match s.parse::<SocketAddr>() {
            Ok(addr) => Ok(Value::String(addr.to_string())),
            Err(_) => Err(invalid(
                origin,
                quoted(),
                "is not a socket address",
                ADDR_EXPECTED,
            )),
        },
        Kind::NodeName => {
            let ok = !s.is_empty()
                && s.len() <= 253
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if ok {
                Ok(Value::String(s.to_owned()))
            } else {
                Err(invalid(
                    origin,
                    quoted(),
                    "is not a valid node name",
                    "1 to 253 characters: letters, digits, '.', '_' or '-'",
                ))
            }
        }
        Kind::Realm => {
            if s.is_empty() || s.len() > 255 || has_control(s) || s.contains(['"', '\\']) {
                Err(invalid(
                    origin,
                    quoted(),
                    "is not a valid realm",
                    "1 to 255 characters without quotes, backslashes or control characters, \
                     e.g. \"tongdai\" or \"acme.example.com\"",
                ))
            } else {
                Ok(Value::String(s.to_owned()))
            }
        }
        Kind::Text => {
            if has_control(s) {
                Err(invalid(
                    origin,
                    quoted(),
                    "contains a control character",
                    "printable text",
                ))
            } else {
                Ok(Value::String(s.to_owned()))
            }
        }
        Kind::LogLevel => check_log_level(origin, s),
        Kind::LogFormat => match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Value::String(LogFormat::Text.as_str().to_owned())),
            "json" => Ok(Value::String(LogFormat::Json.as_str().to_owned())),
            _ => Err(invalid(
                origin,
                quoted(),
                "is not a log format",
                "\"text\" or \"json\"",
            )),
        },
        Kind::UInt { .. } | Kind::Bool | Kind::Algorithms => {
            unreachable!("non-string kinds are checked before check_string")
        }
    }
}

/// A level (`info`) or comma-separated `tracing-subscriber` directives in which every part is
/// a level or `target=level` (`info,tongdai_node::sip=debug`). A bare word that is not a level
/// is refused: the filter syntax would read `verbose` as "everything from target `verbose`",
/// silently logging nothing from us.
fn check_log_level(origin: &Origin, s: &str) -> Result<Value, ConfigError> {
    const EXPECTED: &str = "one of trace, debug, info, warn, error, off, \
                            or directives such as \"info,tongdai_node::sip=debug\"";
    let parts_ok = !s.is_empty()
        && s.split(',').all(|part| {
            let part = part.trim();
            LEVELS.contains(&part.to_ascii_lowercase().as_str()) || part.contains('=')
        });
    if parts_ok && tracing_subscriber::EnvFilter::builder().parse(s).is_ok() {
        Ok(Value::String(s.to_owned()))
    } else {
        Err(invalid(
            origin,
            format!("{s:?}"),
            "is not a log level",
            EXPECTED,
        ))
    }
}

fn check_algorithms(origin: &Origin, names: &[&str]) -> Result<Value, ConfigError> {
    let expected = format!(
        "a non-empty list of {}, in order of preference",
        DigestAlgorithm::ALL
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if names.is_empty() {
        return Err(invalid(origin, "[]".to_owned(), "is empty", &expected));
    }
    let mut seen: Vec<DigestAlgorithm> = Vec::with_capacity(names.len());
    for name in names {
        let Some(algorithm) = DigestAlgorithm::from_name(name) else {
            return Err(invalid(
                origin,
                format!("{name:?}"),
                "is not a supported digest algorithm",
                &expected,
            ));
        };
        if seen.contains(&algorithm) {
            return Err(invalid(
                origin,
                format!("{name:?}"),
                "is listed twice",
                &expected,
            ));
        }
        seen.push(algorithm);
    }
    Ok(Value::Array(
        seen.iter()
            .map(|a| Value::String(a.as_str().to_owned()))
            .collect(),
    ))
}
