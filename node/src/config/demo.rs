//! The demo tenant: a block of extensions with passwords, for `tongdai up` and benchmarks.
//!
//! Passwords are either `password_prefix` + extension number (deterministic, for scripted
//! load tests) or random. Random passwords come from a seed drawn once when the config is
//! built, so every call to [`Config::demo_tenant`](super::Config::demo_tenant) on the same
//! config (and its clones) yields the same passwords: the banner and the registrar agree.

use std::fmt;

use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::DemoConfig;

/// Length of a generated demo password.
pub const RANDOM_PASSWORD_LEN: usize = 12;

/// One demo extension: the SIP user name (`1001`) and its digest password.
#[derive(Clone, PartialEq, Eq)]
pub struct DemoUser {
    pub extension: String,
    pub password: String,
}

impl fmt::Debug for DemoUser {
    // Passwords stay out of logs that print config structures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoUser")
            .field("extension", &self.extension)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The demo tenant: its realm (the SIP domain the extensions register in) and its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoTenant {
    pub realm: String,
    pub extensions: Vec<DemoUser>,
}

/// 32 bytes of OS randomness from which random demo passwords are derived.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordSeed([u8; 32]);

impl Default for PasswordSeed {
    fn default() -> Self {
        PasswordSeed(rand::random())
    }
}

impl PasswordSeed {
    /// A fixed seed, for tests that need reproducible random passwords.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PasswordSeed(bytes)
    }
}

impl fmt::Debug for PasswordSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordSeed(<redacted>)")
    }
}

pub(super) fn build(config: &DemoConfig) -> DemoTenant {
    let first = u64::from(config.first_extension);
    let numbers = (0..u64::from(config.count)).map(|i| first + i);
    let extensions = if config.password_prefix.is_empty() {
        let mut rng = StdRng::from_seed(config.password_seed.0);
        numbers
            .map(|n| DemoUser {
                extension: n.to_string(),
                password: (&mut rng)
                    .sample_iter(Alphanumeric)
                    .take(RANDOM_PASSWORD_LEN)
                    .map(char::from)
                    .collect(),
            })
            .collect()
    } else {
        numbers
            .map(|n| DemoUser {
                extension: n.to_string(),
                password: format!("{}{n}", config.password_prefix),
            })
            .collect()
    };
    DemoTenant {
        realm: config.realm.clone(),
        extensions,
    }
}
