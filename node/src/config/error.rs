//! Config errors and warnings. Each variant names the key (or the environment variable) it is
//! about, says what is wrong with it and what would be accepted, so an operator can fix the
//! file without reading our code.

use std::fmt;
use std::path::PathBuf;

/// Where a config value came from, so an error can point at the thing the operator wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Not set anywhere: the built-in default of `key` (e.g. `registrar.max_expires`).
    Default { key: &'static str },
    /// Set in the config file as `key` (e.g. `sip.listen_udp`, or a section name).
    File { key: &'static str },
    /// Set by the environment variable for `key` (see [`Origin::env_var`]).
    Env { key: &'static str },
}

impl Origin {
    /// The dotted config key (`section.key`), wherever the value came from.
    pub fn key(&self) -> &'static str {
        match self {
            Origin::Default { key } | Origin::File { key } | Origin::Env { key } => key,
        }
    }

    /// The environment variable that sets a dotted key: `sip.listen_udp` ->
    /// `TONGDAI_SIP_LISTEN_UDP`.
    pub fn env_var(key: &str) -> String {
        format!("TONGDAI_{}", key.replace('.', "_")).to_ascii_uppercase()
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default { key } | Origin::File { key } => f.write_str(key),
            Origin::Env { key } => f.write_str(&Origin::env_var(key)),
        }
    }
}

/// Why a configuration was rejected. The `Display` text is the whole message shown to the
/// operator; the binary prints it and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read. The message includes the OS error.
    #[error("cannot read config file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The config file is not valid TOML. `message` is the parser's, with line and column.
    #[error("config file {source_name} is not valid TOML: {message}")]
    Syntax {
        source_name: String,
        message: String,
    },
    /// A `[section]` we do not know.
    #[error("unknown section \"[{section}]\" (known sections: {known})")]
    UnknownSection { section: String, known: String },
    /// A key we do not know; `key` is dotted (`sip.listn_udp`), `known` lists the keys that
    /// would be accepted in its place.
    #[error("unknown key \"{key}\" (known keys: {known})")]
    UnknownKey { key: String, known: String },
    /// A value of the wrong TOML type (a number where a string was expected, ...).
    #[error("{origin}: expected {expected}, found {found}")]
    WrongType {
        origin: Origin,
        expected: String,
        found: String,
    },
    /// A value of the right type that is not acceptable.
    #[error("{origin}: {value} {problem} (expected {expected})")]
    InvalidValue {
        origin: Origin,
        /// The value as written (strings quoted).
        value: String,
        /// What is wrong, e.g. `is not a socket address`.
        problem: String,
        expected: String,
    },
    /// Two values that are each fine but contradict each other.
    #[error("{left} ({left_value}) must be {relation} {right} ({right_value})")]
    Conflict {
        left: Origin,
        left_value: String,
        /// `<=`, `>=`, `different from`, ...
        relation: &'static str,
        right: Origin,
        right_value: String,
    },
    /// Both SIP listeners are switched off, so the node could not take any traffic.
    #[error(
        "{udp} and {tcp} are both off (enable at least one, e.g. {tcp_key} = \"0.0.0.0:5060\")",
        tcp_key = tcp.key()
    )]
    NoSipListener { udp: Origin, tcp: Origin },
    /// The demo extension numbers would run past the largest allowed extension.
    #[error(
        "{first} ({first_value}) + {count} ({count_value}) - 1 must be <= {max} \
         (the largest demo extension number)"
    )]
    DemoExtensionsOverflow {
        first: Origin,
        first_value: u64,
        count: Origin,
        count_value: u64,
        max: u64,
    },
    /// More than one problem; each is shown on its own line.
    #[error("{}", display_all(.0))]
    Several(Vec<ConfigError>),
}

fn display_all(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// One error for a non-empty list: the error itself when there is only one.
    pub(super) fn from_list(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfigError::Several(errors)),
        }
    }

    /// The individual problems (one for every error but [`ConfigError::Several`]).
    pub fn problems(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Several(all) => all.iter().flat_map(ConfigError::problems).collect(),
            other => vec![other],
        }
    }
}

/// Something in the environment that was ignored. Not fatal: Kubernetes and shells inject
/// variables we do not control, and a warning keeps a typo visible without taking the node
/// down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigWarning {
    /// A `TONGDAI_*` variable that names no config key.
    #[error("ignoring environment variable {var}: no such config key ({hint})")]
    UnknownEnvVar { var: String, hint: String },
}
