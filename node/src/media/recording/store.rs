//! The recordings store: where finished recordings live, per tenant, once they leave the
//! spool.
//!
//! Layout (both kinds): `<tenant>/<YYYY-MM-DD>/<id>.wav` and `.json`, the date being the
//! recording's UTC start day; S3 keys carry the configured prefix in front. Shipping
//! writes the audio, then the metadata, checks both are there at the right size, and only
//! then removes them from the spool, so a crash at any point leaves at least one whole
//! copy; shipping again after such a crash finishes the job (the audio may already be in
//! the store and gone from the spool).
//!
//! Lookups take the tenant with the id: a recording is found only under its own tenant.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use super::config::{S3Config, StoreConfig};
use super::spool::{FinishedRecording, RecordingSummary, sync_dir};
use super::{MetaError, is_filename_safe};

/// S3 objects larger than this go up as a multipart upload in parts of this size (S3
/// wants parts of at least 5 MiB).
pub const S3_PART_SIZE: usize = 8 * 1024 * 1024;

/// Where a recording ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecording {
    pub summary: RecordingSummary,
    /// The audio's path (local) or `s3://bucket/key`.
    pub location: String,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Name(#[from] MetaError),
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("object store: cannot {op} {key}: {source}")]
    Object {
        op: &'static str,
        key: String,
        source: object_store::Error,
    },
    #[error("{location} has {found} bytes after shipping, expected {expected}")]
    SizeMismatch {
        location: String,
        expected: u64,
        found: u64,
    },
    #[error("recording {id}: its audio is neither in the spool nor in the store")]
    AudioMissing { id: String },
    #[error("{location} is not recording metadata: {message}")]
    BadMetadata { location: String, message: String },
    #[error("cannot set up the S3 client: {0}")]
    S3Setup(object_store::Error),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn obj_err(op: &'static str, key: &ObjectPath) -> impl FnOnce(object_store::Error) -> StoreError {
    let key = key.to_string();
    move |source| StoreError::Object { op, key, source }
}

/// The recordings store.
#[derive(Clone)]
pub enum RecordingStore {
    /// A local directory (the default).
    Local { dir: PathBuf },
    /// S3 or an S3-compatible server, through `object_store`.
    S3 {
        store: Arc<dyn ObjectStore>,
        bucket: String,
        /// Key prefix without leading or trailing `/`; may be empty.
        prefix: String,
    },
}

impl std::fmt::Debug for RecordingStore {
    // Names where recordings go; the client (and whatever it holds) stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordingStore::Local { dir } => f.debug_struct("Local").field("dir", dir).finish(),
            RecordingStore::S3 { bucket, prefix, .. } => f
                .debug_struct("S3")
                .field("bucket", bucket)
                .field("prefix", prefix)
                .finish_non_exhaustive(),
        }
    }
}

impl RecordingStore {
    /// The store a config names, with S3 credentials missing from the config taken from
    /// the process environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...).
    pub fn from_config(config: &StoreConfig) -> Result<RecordingStore, StoreError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        RecordingStore::from_config_with_env(config, &env)
    }

    /// As [`RecordingStore::from_config`], with the environment passed in.
    pub fn from_config_with_env(
        config: &StoreConfig,
        env: &[(String, String)],
    ) -> Result<RecordingStore, StoreError> {
        match config {
            StoreConfig::Local { dir } => Ok(RecordingStore::Local { dir: dir.clone() }),
            StoreConfig::S3(s3) => Ok(RecordingStore::S3 {
                store: Arc::new(s3_client(s3, env)?),
                bucket: s3.bucket.clone(),
                prefix: s3.prefix.clone(),
            }),
        }
    }

    /// Where a recording's file with extension `ext` goes, relative to the store's root.
    fn relative(tenant: &str, day: &str, id: &str, ext: &str) -> String {
        format!("{tenant}/{day}/{id}.{ext}")
    }

    fn object_key(prefix: &str, relative: &str) -> ObjectPath {
        if prefix.is_empty() {
            ObjectPath::from(relative)
        } else {
            ObjectPath::from(format!("{prefix}/{relative}"))
        }
    }

    /// Moves a finished recording from the spool into the store. Safe to repeat after a
    /// crash part-way through.
    pub async fn ship(&self, recording: &FinishedRecording) -> Result<StoredRecording, StoreError> {
        let summary = &recording.summary;
        check_names(&summary.tenant, &summary.id)?;
        let day = utc_day(summary.started_unix_ms);
        let wav_rel = Self::relative(&summary.tenant, &day, &summary.id, "wav");
        let json_rel = Self::relative(&summary.tenant, &day, &summary.id, "json");
        let location = match self {
            RecordingStore::Local { dir } => {
                let wav_dst = dir.join(&wav_rel);
                let json_dst = dir.join(&json_rel);
                let dst_dir = wav_dst.parent().unwrap_or(dir);
                fs::create_dir_all(dst_dir).map_err(io_err("create", dst_dir))?;
                if recording.wav.exists() {
                    move_file(&recording.wav, &wav_dst, false)?;
                } else if !wav_dst.exists() {
                    return Err(StoreError::AudioMissing {
                        id: summary.id.clone(),
                    });
                }
                let found = fs::metadata(&wav_dst)
                    .map_err(io_err("read the size of", &wav_dst))?
                    .len();
                if found != summary.bytes {
                    return Err(StoreError::SizeMismatch {
                        location: wav_dst.display().to_string(),
                        expected: summary.bytes,
                        found,
                    });
                }
                if recording.json.exists() {
                    move_file(&recording.json, &json_dst, false)?;
                } else {
                    write_file_synced(&json_dst, &summary_json(summary))?;
                }
                sync_dir(dst_dir).map_err(io_err("sync", dst_dir))?;
                if let Some(spool) = recording.wav.parent() {
                    sync_dir(spool).map_err(io_err("sync", spool))?;
                }
                wav_dst.display().to_string()
            }
            RecordingStore::S3 {
                store,
                bucket,
                prefix,
            } => {
                let wav_key = Self::object_key(prefix, &wav_rel);
                let json_key = Self::object_key(prefix, &json_rel);
                if recording.wav.exists() {
                    upload_file(store.as_ref(), &recording.wav, &wav_key).await?;
                }
                let head = match store.head(&wav_key).await {
                    Ok(head) => head,
                    Err(object_store::Error::NotFound { .. }) => {
                        return Err(StoreError::AudioMissing {
                            id: summary.id.clone(),
                        });
                    }
                    Err(e) => return Err(obj_err("check", &wav_key)(e)),
                };
                if head.size != summary.bytes {
                    return Err(StoreError::SizeMismatch {
                        location: format!("s3://{bucket}/{wav_key}"),
                        expected: summary.bytes,
                        found: head.size,
                    });
                }
                let json = summary_json(summary);
                let json_len = json.len() as u64;
                store
                    .put(&json_key, PutPayload::from(json))
                    .await
                    .map_err(obj_err("upload", &json_key))?;
                let head = store
                    .head(&json_key)
                    .await
                    .map_err(obj_err("check", &json_key))?;
                if head.size != json_len {
                    return Err(StoreError::SizeMismatch {
                        location: format!("s3://{bucket}/{json_key}"),
                        expected: json_len,
                        found: head.size,
                    });
                }
                // Audio first: a crash between the two leaves the metadata, which is
                // how the next start finds the recording to finish shipping.
                remove_if_present(&recording.wav)?;
                remove_if_present(&recording.json)?;
                if let Some(spool) = recording.wav.parent() {
                    sync_dir(spool).map_err(io_err("sync", spool))?;
                }
                format!("s3://{bucket}/{wav_key}")
            }
        };
        Ok(StoredRecording {
            summary: summary.clone(),
            location,
        })
    }

    /// A tenant's recordings, oldest first.
    pub async fn list(&self, tenant: &str) -> Result<Vec<RecordingSummary>, StoreError> {
        if !is_filename_safe(tenant) {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for day in self.days(tenant).await? {
            match self {
                RecordingStore::Local { dir } => {
                    let folder = dir.join(tenant).join(&day);
                    let mut entries = tokio::fs::read_dir(&folder)
                        .await
                        .map_err(io_err("list", &folder))?;
                    while let Some(entry) = entries
                        .next_entry()
                        .await
                        .map_err(io_err("list", &folder))?
                    {
                        let path = entry.path();
                        if path.extension().is_some_and(|e| e == "json") {
                            let bytes = tokio::fs::read(&path)
                                .await
                                .map_err(io_err("read", &path))?;
                            found.push(parse_summary(&bytes, &path.display().to_string())?);
                        }
                    }
                }
                RecordingStore::S3 { store, prefix, .. } => {
                    let folder = Self::object_key(prefix, &format!("{tenant}/{day}"));
                    let listing = store
                        .list_with_delimiter(Some(&folder))
                        .await
                        .map_err(obj_err("list", &folder))?;
                    for object in listing.objects {
                        if object.location.extension() == Some("json") {
                            let bytes = get_bytes(store.as_ref(), &object.location).await?;
                            found.push(parse_summary(&bytes, object.location.as_ref())?);
                        }
                    }
                }
            }
        }
        found.retain(|s| s.tenant == tenant);
        found.sort_by(|a, b| (a.started_unix_ms, &a.id).cmp(&(b.started_unix_ms, &b.id)));
        Ok(found)
    }

    /// The metadata of one of a tenant's recordings.
    pub async fn summary(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<RecordingSummary>, StoreError> {
        Ok(self.find(tenant, id).await?.map(|(summary, _)| summary))
    }

    /// The WAV file of one of a tenant's recordings.
    pub async fn audio(&self, tenant: &str, id: &str) -> Result<Option<Bytes>, StoreError> {
        let Some((_, day)) = self.find(tenant, id).await? else {
            return Ok(None);
        };
        let rel = Self::relative(tenant, &day, id, "wav");
        match self {
            RecordingStore::Local { dir } => {
                let path = dir.join(rel);
                match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Some(Bytes::from(bytes))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_err("read", &path)(e)),
                }
            }
            RecordingStore::S3 { store, prefix, .. } => {
                let key = Self::object_key(prefix, &rel);
                match get_bytes(store.as_ref(), &key).await {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(StoreError::Object {
                        source: object_store::Error::NotFound { .. },
                        ..
                    }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Deletes one of a tenant's recordings; false when there was none.
    pub async fn delete(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let Some((_, day)) = self.find(tenant, id).await? else {
            return Ok(false);
        };
        // Metadata first: once it is gone the recording is not listed, even if removing
        // the audio then fails.
        for ext in ["json", "wav"] {
            let rel = Self::relative(tenant, &day, id, ext);
            match self {
                RecordingStore::Local { dir } => {
                    let path = dir.join(rel);
                    match tokio::fs::remove_file(&path).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io_err("delete", &path)(e)),
                    }
                }
                RecordingStore::S3 { store, prefix, .. } => {
                    let key = Self::object_key(prefix, &rel);
                    match store.delete(&key).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(obj_err("delete", &key)(e)),
                    }
                }
            }
        }
        Ok(true)
    }

    /// The recording's metadata and its day folder, if the tenant has it.
    async fn find(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<(RecordingSummary, String)>, StoreError> {
        if !is_filename_safe(tenant) || !is_filename_safe(id) {
            return Ok(None);
        }
        let mut days = self.days(tenant).await?;
        // Our own ids carry their start time: look in that day first.
        if let Some(day) = day_from_generated_id(tenant, id)
            && let Some(i) = days.iter().position(|d| *d == day)
        {
            let day = days.remove(i);
            days.insert(0, day);
        }
        for day in days {
            let rel = Self::relative(tenant, &day, id, "json");
            let bytes = match self {
                RecordingStore::Local { dir } => {
                    let path = dir.join(&rel);
                    match tokio::fs::read(&path).await {
                        Ok(bytes) => Bytes::from(bytes),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io_err("read", &path)(e)),
                    }
                }
                RecordingStore::S3 { store, prefix, .. } => {
                    let key = Self::object_key(prefix, &rel);
                    match get_bytes(store.as_ref(), &key).await {
                        Ok(bytes) => bytes,
                        Err(StoreError::Object {
                            source: object_store::Error::NotFound { .. },
                            ..
                        }) => continue,
                        Err(e) => return Err(e),
                    }
                }
            };
            let summary = parse_summary(&bytes, &rel)?;
            if summary.tenant == tenant && summary.id == id {
                return Ok(Some((summary, day)));
            }
        }
        Ok(None)
    }

    /// The day folders a tenant has, newest first.
    async fn days(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let mut days = Vec::new();
        match self {
            RecordingStore::Local { dir } => {
                let folder = dir.join(tenant);
                let mut entries = match tokio::fs::read_dir(&folder).await {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(days),
                    Err(e) => return Err(io_err("list", &folder)(e)),
                };
                while let Some(entry) = entries
                    .next_entry()
                    .await
                    .map_err(io_err("list", &folder))?
                {
                    if let Some(name) = entry.file_name().to_str()
                        && is_day(name)
                    {
                        days.push(name.to_owned());
                    }
                }
            }
            RecordingStore::S3 { store, prefix, .. } => {
                let folder = Self::object_key(prefix, tenant);
                let listing = store
                    .list_with_delimiter(Some(&folder))
                    .await
                    .map_err(obj_err("list", &folder))?;
                for p in listing.common_prefixes {
                    if let Some(name) = p.filename()
                        && is_day(name)
                    {
                        days.push(name.to_owned());
                    }
                }
            }
        }
        days.sort_unstable_by(|a, b| b.cmp(a));
        Ok(days)
    }
}

fn check_names(tenant: &str, id: &str) -> Result<(), MetaError> {
    for (field, value) in [("tenant", tenant), ("id", id)] {
        if !is_filename_safe(value) {
            return Err(MetaError::NotFilenameSafe {
                field,
                value: value.to_owned(),
            });
        }
    }
    Ok(())
}

fn summary_json(summary: &RecordingSummary) -> Vec<u8> {
    // Serialising a struct of strings and integers cannot fail.
    serde_json::to_vec_pretty(summary).unwrap_or_default()
}

fn parse_summary(bytes: &[u8], location: &str) -> Result<RecordingSummary, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::BadMetadata {
        location: location.to_owned(),
        message: e.to_string(),
    })
}

async fn get_bytes(store: &dyn ObjectStore, key: &ObjectPath) -> Result<Bytes, StoreError> {
    let result = store.get(key).await.map_err(obj_err("read", key))?;
    result.bytes().await.map_err(obj_err("read", key))
}

/// Uploads a spool file: in one request when small, else as a multipart upload read from
/// the file part by part (an hour of audio is over 100 MB; it is never held whole).
async fn upload_file(
    store: &dyn ObjectStore,
    path: &Path,
    key: &ObjectPath,
) -> Result<(), StoreError> {
    let mut file = fs::File::open(path).map_err(io_err("open", path))?;
    let len = file
        .metadata()
        .map_err(io_err("read the size of", path))?
        .len();
    if len <= S3_PART_SIZE as u64 {
        let mut buf = Vec::with_capacity(len as usize);
        file.read_to_end(&mut buf).map_err(io_err("read", path))?;
        store
            .put(key, PutPayload::from(buf))
            .await
            .map_err(obj_err("upload", key))?;
        return Ok(());
    }
    let mut upload = store
        .put_multipart(key)
        .await
        .map_err(obj_err("start uploading", key))?;
    let result = async {
        loop {
            let mut part = Vec::with_capacity(S3_PART_SIZE);
            (&mut file)
                .take(S3_PART_SIZE as u64)
                .read_to_end(&mut part)
                .map_err(io_err("read", path))?;
            if part.is_empty() {
                break;
            }
            upload
                .put_part(PutPayload::from(part))
                .await
                .map_err(obj_err("upload a part of", key))?;
        }
        upload
            .complete()
            .await
            .map_err(obj_err("finish uploading", key))?;
        Ok(())
    }
    .await;
    if result.is_err() {
        // Parts of an abandoned upload cost storage until aborted.
        let _ = upload.abort().await;
    }
    result
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let write = || -> io::Result<()> {
        let mut f = fs::File::create(path)?;
        io::Write::write_all(&mut f, bytes)?;
        f.sync_all()
    };
    write().map_err(io_err("write", path))
}

/// Moves a file: a rename when both sides are on one filesystem, else a copy to a
/// temporary name beside the target, synced and renamed into place, then the source
/// removed. `force_copy` takes the second way (for tests on one filesystem).
pub(super) fn move_file(src: &Path, dst: &Path, force_copy: bool) -> Result<(), StoreError> {
    if !force_copy {
        match fs::rename(src, dst) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {}
            Err(e) => return Err(io_err("move", src)(e)),
        }
    }
    let mut tmp_name = dst.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dst.with_file_name(tmp_name);
    let copy = || -> io::Result<()> {
        fs::copy(src, &tmp)?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, dst)?;
        if let Some(dir) = dst.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    };
    copy().map_err(io_err("copy", src))?;
    fs::remove_file(src).map_err(io_err("remove", src))
}

fn s3_client(
    config: &S3Config,
    env: &[(String, String)],
) -> Result<object_store::aws::AmazonS3, StoreError> {
    // reqwest is built without a crypto provider of its own; rustls uses the process
    // default, which must be ring (the one quinn and our TLS already use). An error means
    // one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Client options first: `with_client_options` replaces every client setting made
    // before it (`allow_http` included).
    let mut builder = AmazonS3Builder::new().with_client_options(
        ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(120)),
    );
    // The usual AWS environment, as object_store's own `from_env` would read it, but from
    // the environment we were given.
    for (key, value) in env {
        if key.starts_with("AWS_")
            && let Ok(config_key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
        {
            builder = builder.with_config(config_key, value.clone());
        }
    }
    builder = builder
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_allow_http(config.allow_http())
        // Our shipper retries with its own backoff; a stuck request must not hold a
        // graceful shutdown for object_store's default three minutes.
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
        });
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
    }
    if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret);
    }
    builder.build().map_err(StoreError::S3Setup)
}

/// `YYYY-MM-DD` (UTC) of a Unix time in milliseconds.
pub fn utc_day(unix_ms: u64) -> String {
    let days = (unix_ms / 86_400_000) as i64;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Gregorian date of a day count since 1970-01-01 (the proleptic calendar, in 400-year
/// eras of 146,097 days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// The day of an id made by [`super::RecordingMeta::new`]: `<tenant>-<unix_ms>-<hex>`.
fn day_from_generated_id(tenant: &str, id: &str) -> Option<String> {
    let rest = id.strip_prefix(tenant)?.strip_prefix('-')?;
    let (ms, _) = rest.split_once('-')?;
    ms.parse::<u64>().ok().map(utc_day)
}
