//! `[media.recordings]`: where recordings are spooled and which store they are shipped to.
//!
//! ```toml
//! [media.recordings]
//! spool_dir = "tongdai-data/spool/recordings"  # local disk, written while calls run
//! store = "local"                               # or "s3"
//! dir = "tongdai-data/recordings"              # store = "local": <dir>/<tenant>/<date>/<id>.wav
//! # store = "s3":
//! # bucket = "recordings"
//! # prefix = "tongdai"                          # keys <prefix>/<tenant>/<date>/<id>.wav
//! # endpoint = "http://127.0.0.1:9000"          # S3-compatible server; omit for AWS
//! # region = "us-east-1"
//! # access_key_id = "..."                       # else AWS_ACCESS_KEY_ID from the environment
//! # secret_access_key = "..."                   # else AWS_SECRET_ACCESS_KEY
//! ```
//!
//! The file form is flat (one table, `store` picks the kind), and [`RecordingConfig`] is
//! the checked, typed form: a key of the other store kind, a missing bucket or half a pair
//! of credentials is an error that says which key to fix.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where recordings are spooled and shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRecordingConfig", into = "RawRecordingConfig")]
pub struct RecordingConfig {
    /// Local directory for recordings in progress and not yet shipped.
    pub spool_dir: PathBuf,
    pub store: StoreConfig,
}

/// The recordings store: the final home of finished recordings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// A local (or mounted) directory.
    Local { dir: PathBuf },
    /// An S3-compatible object store.
    S3(S3Config),
}

/// An S3-compatible bucket.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix without leading or trailing `/`; may be empty.
    pub prefix: String,
    /// `http(s)://host:port` of an S3-compatible server; `None` for AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    /// When unset, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and the rest of the
    /// usual AWS environment) are used.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl S3Config {
    /// Plain HTTP is allowed only when the operator wrote an `http://` endpoint (a local
    /// MinIO or test server); AWS itself is always HTTPS.
    pub fn allow_http(&self) -> bool {
        self.endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
    }
}

impl fmt::Debug for S3Config {
    // The secret stays out of logs that print config structures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

pub const DEFAULT_SPOOL_DIR: &str = "tongdai-data/spool/recordings";
pub const DEFAULT_STORE_DIR: &str = "tongdai-data/recordings";
pub const DEFAULT_REGION: &str = "us-east-1";

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            spool_dir: PathBuf::from(DEFAULT_SPOOL_DIR),
            store: StoreConfig::Local {
                dir: PathBuf::from(DEFAULT_STORE_DIR),
            },
        }
    }
}

/// Why a `[media.recordings]` section was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingConfigError {
    #[error("media.recordings.store = {0:?} is not a store kind: use \"local\" or \"s3\"")]
    UnknownStore(String),
    #[error(
        "media.recordings.{key} applies to store = \"{applies_to}\", not to store = \"{store}\"; remove it or change `store`"
    )]
    KeyForOtherStore {
        key: &'static str,
        applies_to: &'static str,
        store: &'static str,
    },
    #[error("media.recordings.{0} is empty; give a directory")]
    EmptyDir(&'static str),
    #[error(
        "media.recordings.spool_dir and media.recordings.dir are the same directory; the spool must be a directory of its own"
    )]
    SpoolIsStore,
    #[error("store = \"s3\" needs media.recordings.bucket")]
    MissingBucket,
    #[error("media.recordings.bucket = {0:?} is not a bucket name: use 3 to 63 of a-z 0-9 . -")]
    BadBucket(String),
    #[error(
        "media.recordings.endpoint = {0:?} is not usable: give http://host:port or https://host[:port]"
    )]
    BadEndpoint(String),
    #[error(
        "media.recordings.prefix = {0:?} is not usable: use parts of A-Z a-z 0-9 . _ - separated by /"
    )]
    BadPrefix(String),
    #[error(
        "media.recordings.region is empty; give the bucket's region (any name, e.g. us-east-1, for most S3-compatible servers)"
    )]
    EmptyRegion,
    #[error(
        "media.recordings.access_key_id and secret_access_key go together: set both, or neither to use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment"
    )]
    HalfCredentials,
}

/// The flat form of the TOML table.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRecordingConfig {
    spool_dir: PathBuf,
    store: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_access_key: Option<String>,
}

impl Default for RawRecordingConfig {
    fn default() -> Self {
        RawRecordingConfig {
            spool_dir: PathBuf::from(DEFAULT_SPOOL_DIR),
            store: "local".to_owned(),
            dir: None,
            bucket: None,
            prefix: None,
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
        }
    }
}

impl TryFrom<RawRecordingConfig> for RecordingConfig {
    type Error = RecordingConfigError;

    fn try_from(raw: RawRecordingConfig) -> Result<Self, Self::Error> {
        if raw.spool_dir.as_os_str().is_empty() {
            return Err(RecordingConfigError::EmptyDir("spool_dir"));
        }
        let store = match raw.store.as_str() {
            "local" => {
                for (key, set) in [
                    ("bucket", raw.bucket.is_some()),
                    ("prefix", raw.prefix.is_some()),
                    ("endpoint", raw.endpoint.is_some()),
                    ("region", raw.region.is_some()),
                    ("access_key_id", raw.access_key_id.is_some()),
                    ("secret_access_key", raw.secret_access_key.is_some()),
                ] {
                    if set {
                        return Err(RecordingConfigError::KeyForOtherStore {
                            key,
                            applies_to: "s3",
                            store: "local",
                        });
                    }
                }
                let dir = raw.dir.unwrap_or_else(|| PathBuf::from(DEFAULT_STORE_DIR));
                if dir.as_os_str().is_empty() {
                    return Err(RecordingConfigError::EmptyDir("dir"));
                }
                if dir == raw.spool_dir {
                    return Err(RecordingConfigError::SpoolIsStore);
                }
                StoreConfig::Local { dir }
            }
            "s3" => {
                if raw.dir.is_some() {
                    return Err(RecordingConfigError::KeyForOtherStore {
                        key: "dir",
                        applies_to: "local",
                        store: "s3",
                    });
                }
                let bucket = raw.bucket.ok_or(RecordingConfigError::MissingBucket)?;
                if !is_bucket_name(&bucket) {
                    return Err(RecordingConfigError::BadBucket(bucket));
                }
                let prefix = raw.prefix.unwrap_or_default();
                let prefix = prefix.trim_matches('/').to_owned();
                if !prefix.is_empty() && !prefix.split('/').all(super::is_filename_safe) {
                    return Err(RecordingConfigError::BadPrefix(prefix));
                }
                if let Some(endpoint) = &raw.endpoint
                    && !is_endpoint(endpoint)
                {
                    return Err(RecordingConfigError::BadEndpoint(endpoint.clone()));
                }
                let region = raw.region.unwrap_or_else(|| DEFAULT_REGION.to_owned());
                if region.trim().is_empty() {
                    return Err(RecordingConfigError::EmptyRegion);
                }
                if raw.access_key_id.is_some() != raw.secret_access_key.is_some() {
                    return Err(RecordingConfigError::HalfCredentials);
                }
                StoreConfig::S3(S3Config {
                    bucket,
                    prefix,
                    endpoint: raw.endpoint,
                    region,
                    access_key_id: raw.access_key_id,
                    secret_access_key: raw.secret_access_key,
                })
            }
            _ => return Err(RecordingConfigError::UnknownStore(raw.store)),
        };
        Ok(RecordingConfig {
            spool_dir: raw.spool_dir,
            store,
        })
    }
}

impl From<RecordingConfig> for RawRecordingConfig {
    fn from(config: RecordingConfig) -> Self {
        let mut raw = RawRecordingConfig {
            spool_dir: config.spool_dir,
            ..RawRecordingConfig::default()
        };
        match config.store {
            StoreConfig::Local { dir } => raw.dir = Some(dir),
            StoreConfig::S3(s3) => {
                raw.store = "s3".to_owned();
                raw.bucket = Some(s3.bucket);
                raw.prefix = Some(s3.prefix);
                raw.endpoint = s3.endpoint;
                raw.region = Some(s3.region);
                raw.access_key_id = s3.access_key_id;
                raw.secret_access_key = s3.secret_access_key;
            }
        }
        raw
    }
}

/// S3 bucket naming rules, loosely: what every S3-compatible server accepts.
fn is_bucket_name(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

fn is_endpoint(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        let host = rest.trim_end_matches('/');
        !host.is_empty() && !host.contains(char::is_whitespace)
    })
}
