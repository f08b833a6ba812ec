//! Building a [`Config`] from its sources: defaults, the TOML file, then the environment.
//! Each value is checked against the key catalogue as it is read, so errors name what the
//! operator wrote; relations between keys are checked once everything is merged.

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::error::{ConfigError, ConfigWarning, Origin};
use super::{Config, LoadedConfig, keys};

pub(super) fn from_sources(
    file: Option<(&str, &str)>,
    env: &[(String, String)],
) -> Result<LoadedConfig, ConfigError> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    // Dotted key -> (catalogue entry, checked value, origin). Later sources replace earlier.
    let mut values: BTreeMap<&'static str, (&'static keys::KeySpec, Value, Origin)> =
        BTreeMap::new();
    let mut demo_enabled = false;

    if let Some((source_name, text)) = file {
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                source_name: source_name.to_owned(),
                message: e.to_string().trim_end().to_owned(),
            })?;
        for (section, body) in &table {
            let Some(section_name) = keys::SECTIONS.iter().find(|s| **s == section) else {
                errors.push(match body {
                    Value::Table(_) => ConfigError::UnknownSection {
                        section: section.clone(),
                        known: keys::known_sections(),
                    },
                    _ => ConfigError::UnknownKey {
                        key: section.clone(),
                        known: format!(
                            "every key belongs to a section, one of {}",
                            keys::known_sections()
                        ),
                    },
                });
                continue;
            };
            let Value::Table(body) = body else {
                errors.push(ConfigError::WrongType {
                    origin: Origin::File { key: section_name },
                    expected: format!("a table ([{section}])"),
                    found: format!("{body}"),
                });
                continue;
            };
            if *section_name == "demo" {
                demo_enabled = true;
            }
            for (key, value) in body {
                let Some(spec) = keys::find(section, key) else {
                    errors.push(ConfigError::UnknownKey {
                        key: format!("{section}.{key}"),
                        known: keys::known_keys_of(section),
                    });
                    continue;
                };
                let origin = Origin::File { key: spec.dotted };
                match keys::check_file_value(spec, &origin, value) {
                    Ok(value) => {
                        values.insert(spec.dotted, (spec, value, origin));
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
    }

    for (var, raw) in env {
        if !var.starts_with(keys::ENV_PREFIX) || keys::is_ignored_env_var(var) {
            continue;
        }
        let Some(spec) = keys::find_by_env_var(var) else {
            warnings.push(ConfigWarning::UnknownEnvVar {
                var: var.clone(),
                hint: keys::env_hint(var),
            });
            continue;
        };
        let origin = Origin::Env { key: spec.dotted };
        if spec.section() == "demo" {
            demo_enabled = true;
        }
        match keys::parse_env_value(spec, &origin, raw) {
            Ok(value) => {
                values.insert(spec.dotted, (spec, value, origin));
            }
            Err(e) => errors.push(e),
        }
    }

    if let Some(error) = ConfigError::from_list(errors) {
        return Err(error);
    }

    let mut root = Table::new();
    if demo_enabled {
        root.insert("demo".to_owned(), Value::Table(Table::new()));
    }
    let mut origins = BTreeMap::new();
    for (dotted, (spec, value, origin)) in values {
        let section = root
            .entry(spec.section())
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(section) = section {
            section.insert(spec.key().to_owned(), value);
        }
        origins.insert(dotted, origin);
    }
    // Every value was checked against the catalogue above, so this only fails if the
    // catalogue and the structs disagree; report it rather than panic all the same.
    let mut config: Config = root
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            source_name: "the merged configuration".to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
    super::records::derive_defaults(&mut config, &origins);
    validate(&config, &origins)?;
    Ok(LoadedConfig { config, warnings })
}

pub(super) fn validate(
    config: &Config,
    origins: &BTreeMap<&str, Origin>,
) -> Result<(), ConfigError> {
    let origin = |key: &'static str| origins.get(key).cloned().unwrap_or(Origin::Default { key });
    let mut errors = Vec::new();

    // Per-key checks, which matter for configs built in code; loaded values already pass.
    let rendered: Table = Table::try_from(config).map_err(|e| ConfigError::Syntax {
        source_name: "the configuration".to_owned(),
        message: e.to_string(),
    })?;
    for (section, body) in &rendered {
        let Value::Table(body) = body else { continue };
        for (key, value) in body {
            match keys::find(section, key) {
                Some(spec) => {
                    if let Err(e) = keys::check_file_value(spec, &origin(spec.dotted), value) {
                        errors.push(e);
                    }
                }
                None => errors.push(ConfigError::UnknownKey {
                    key: format!("{section}.{key}"),
                    known: keys::known_keys_of(section),
                }),
            }
        }
    }
    if let Some(error) = ConfigError::from_list(std::mem::take(&mut errors)) {
        return Err(error);
    }

    if config.sip.listen_udp.is_none() && config.sip.listen_tcp.is_none() {
        errors.push(ConfigError::NoSipListener {
            udp: origin("sip.listen_udp"),
            tcp: origin("sip.listen_tcp"),
        });
    }
    let r = &config.registrar;
    let conflict = |left: &'static str, lv: String, relation, right: &'static str, rv: String| {
        ConfigError::Conflict {
            left: origin(left),
            left_value: lv,
            relation,
            right: origin(right),
            right_value: rv,
        }
    };
    if r.min_expires > r.max_expires {
        errors.push(conflict(
            "registrar.min_expires",
            r.min_expires.to_string(),
            "<=",
            "registrar.max_expires",
            r.max_expires.to_string(),
        ));
    } else if r.default_expires < r.min_expires {
        errors.push(conflict(
            "registrar.default_expires",
            r.default_expires.to_string(),
            ">=",
            "registrar.min_expires",
            r.min_expires.to_string(),
        ));
    } else if r.default_expires > r.max_expires {
        errors.push(conflict(
            "registrar.default_expires",
            r.default_expires.to_string(),
            "<=",
            "registrar.max_expires",
            r.max_expires.to_string(),
        ));
    }
    // HTTP and SIP over TCP cannot share a socket; port 0 means "any free port" for both.
    if let Some(tcp) = config.sip.listen_tcp
        && tcp == config.http.listen
        && tcp.port() != 0
    {
        errors.push(conflict(
            "http.listen",
            config.http.listen.to_string(),
            "different from",
            "sip.listen_tcp",
            tcp.to_string(),
        ));
    }
    super::records::validate(config, &origin, &mut errors);
    if let Some(demo) = &config.demo {
        let last = u64::from(demo.first_extension) + u64::from(demo.count) - 1;
        if last > keys::MAX_DEMO_EXTENSION {
            errors.push(ConfigError::DemoExtensionsOverflow {
                first: origin("demo.first_extension"),
                first_value: demo.first_extension.into(),
                count: origin("demo.count"),
                count_value: demo.count.into(),
                max: keys::MAX_DEMO_EXTENSION,
            });
        }
    }
    match ConfigError::from_list(errors) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
